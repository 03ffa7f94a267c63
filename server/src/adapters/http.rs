//! HTTP helpers shared by the adapters that call vendors over HTTP (the OpenAI-compatible chat
//! model, the helpdesks): `Retry-After`, and the helpdesk reading of statuses and transport
//! errors. Not an adapter: adapters depend on it, never on each other.

use crate::ports::helpdesk::HelpdeskError;
use std::time::Duration;

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3). A date in the past is 0.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The `Retry-After` of a response, when it has a valid one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// A helpdesk request that got no answer: retryable.
pub fn helpdesk_transport_error(err: reqwest::Error) -> HelpdeskError {
    HelpdeskError::Unavailable(if err.is_timeout() {
        "no answer in time".to_string()
    } else {
        err.to_string()
    })
}

/// Reads a helpdesk answer: the JSON body of a 2xx, else the [`HelpdeskError`] its status
/// stands for, with `message` (the vendor's error text) built from the JSON body or the raw
/// text.
pub async fn helpdesk_answer(
    response: reqwest::Response,
    message: impl Fn(&serde_json::Value, &str) -> String,
) -> Result<serde_json::Value, HelpdeskError> {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let text = response.text().await.map_err(helpdesk_transport_error)?;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    match status {
        200..=299 => Ok(json),
        429 => Err(HelpdeskError::RateLimited { retry_after }),
        401 | 403 => Err(HelpdeskError::Unauthorized(message(&json, &text))),
        500..=599 => Err(HelpdeskError::Unavailable(format!(
            "HTTP {status}: {}",
            message(&json, &text)
        ))),
        _ => Err(HelpdeskError::Rejected {
            status,
            message: message(&json, &text),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        let header =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let parsed = parse_retry_after(&header).unwrap();
        assert!(
            parsed <= Duration::from_secs(30) && parsed >= Duration::from_secs(28),
            "{parsed:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
