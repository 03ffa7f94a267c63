//! The HTTP and WebSocket API (actix-web 4, actix-ws 0.4). The only module that knows actix,
//! HTTP and the JSON wire format; it converts wire frames to engine calls by hand.
//!
//! Routes: `GET /` (demo page with the widget), `GET /widget.js`, `GET /healthz`,
//! `GET /readyz`, `GET /v1/ws` (the WebSocket protocol of `PROTOCOL.md`), `GET /inbox` and
//! `/v1/inbox/…` (the built-in inbox and its JSON API), `POST /v1/webhooks/{zendesk, freshdesk,
//! intercom}` (helpdesk updates in).

pub mod inbox;
pub mod pages;
pub mod webhook_auth;
pub mod webhooks;
pub mod wire;
pub mod ws;

use crate::config::WsSettings;
use crate::engine::{Engine, EngineError};
use crate::ports::answer::GenerateError;
use crate::ports::retriever::RetrieveError;
use crate::ports::store::StoreError;
use actix_web::{HttpRequest, HttpResponse, web};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wire::ErrorCode;

/// Shared state of every request handler.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub ws: WsSettings,
    /// Cancelled when the server starts shutting down: sockets finish their turn and close (1001).
    pub shutdown: CancellationToken,
    pub trusted_proxies: Vec<IpNet>,
    /// Public key embedded in the demo page (the `demo` site, else the first site).
    pub demo_site_key: String,
    /// Where tickets go, with the webhook secrets.
    pub helpdesk: crate::config::HelpdeskSettings,
}

/// Largest JSON body of the inbox API, and largest webhook body, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Registers every route. JSON and body-size errors answer the documented `{"code","message"}`.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .app_data(
            web::JsonConfig::default()
                .limit(MAX_BODY_BYTES)
                .error_handler(|err, _request| {
                    let response = http_error(
                        ErrorCode::BadRequest,
                        format!("the body is not the JSON this route takes: {err}"),
                        None,
                    );
                    actix_web::error::InternalError::from_response(err, response).into()
                }),
        )
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .route("/", web::get().to(pages::index))
        .route("/widget.js", web::get().to(pages::widget_js))
        .route("/healthz", web::get().to(pages::healthz))
        .route("/readyz", web::get().to(pages::readyz))
        .route("/v1/ws", web::get().to(ws::upgrade))
        .route("/inbox", web::get().to(inbox::page))
        .route("/v1/webhooks/zendesk", web::post().to(webhooks::zendesk))
        .route("/v1/webhooks/intercom", web::post().to(webhooks::intercom))
        .route(
            "/v1/webhooks/freshdesk",
            web::post().to(webhooks::freshdesk),
        )
        .route("/v1/inbox/session", web::post().to(inbox::sign_in))
        .route("/v1/inbox/queue", web::get().to(inbox::queue))
        .route(
            "/v1/inbox/conversations/{site}/{id}",
            web::get().to(inbox::conversation),
        )
        .route(
            "/v1/inbox/conversations/{site}/{id}/{action}",
            web::post().to(inbox::action),
        )
        .default_service(web::to(pages::not_found));
}

/// An HTTP error body `{"code","message"}` with its status (and `Retry-After` when given).
pub fn http_error(
    code: ErrorCode,
    message: impl Into<String>,
    retry_after: Option<Duration>,
) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(code.http_status())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if let Some(retry_after) = retry_after {
        response.insert_header(("Retry-After", retry_after.as_secs().max(1).to_string()));
    }
    response.json(serde_json::json!({ "code": code, "message": message.into() }))
}

fn millis_rounded_up(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The wire error for an engine error: code, visitor-safe message, `retry_after_ms`.
/// Server-side failures are logged here, once, with their cause chain.
pub fn error_reply(err: &EngineError) -> (ErrorCode, String, Option<u64>) {
    match err {
        EngineError::BadRequest(message) => (ErrorCode::BadRequest, message.clone(), None),
        EngineError::Unauthorized(message) => (ErrorCode::Unauthorized, message.clone(), None),
        EngineError::Forbidden(message) => (ErrorCode::Forbidden, message.clone(), None),
        EngineError::NotFound(message) => (ErrorCode::NotFound, message.clone(), None),
        EngineError::RateLimited { retry_after } => (
            ErrorCode::RateLimited,
            format!(
                "You're sending messages faster than we can answer; try again in {} s.",
                retry_after.as_secs().max(1)
            ),
            Some(millis_rounded_up(*retry_after)),
        ),
        EngineError::Store(store) => {
            tracing::error!(error = %chain(err), "conversation store failed");
            match store {
                StoreError::NotFound(_) => (
                    ErrorCode::NotFound,
                    "this conversation no longer exists".into(),
                    None,
                ),
                StoreError::Timeout => (
                    ErrorCode::UpstreamTimeout,
                    "we're slow to save your conversation right now; please try again".into(),
                    None,
                ),
                StoreError::RateLimited { retry_after } => (
                    ErrorCode::UpstreamUnavailable,
                    "we can't save your conversation right now; please try again shortly".into(),
                    retry_after.map(millis_rounded_up),
                ),
                StoreError::Unavailable(_) => (
                    ErrorCode::UpstreamUnavailable,
                    "we can't save your conversation right now; please try again shortly".into(),
                    None,
                ),
                StoreError::Rejected(_) | StoreError::Other(_) => (
                    ErrorCode::Internal,
                    "something went wrong on our side; please try again".into(),
                    None,
                ),
            }
        }
        EngineError::Helpdesk(helpdesk) => {
            tracing::warn!(error = %chain(err), "helpdesk call failed");
            use crate::ports::helpdesk::HelpdeskError;
            match helpdesk {
                HelpdeskError::RateLimited { retry_after } => (
                    ErrorCode::UpstreamUnavailable,
                    "the helpdesk is rate-limiting us; try again later".into(),
                    retry_after.map(millis_rounded_up),
                ),
                HelpdeskError::Unavailable(_) => (
                    ErrorCode::UpstreamUnavailable,
                    "the helpdesk is unavailable; try again later".into(),
                    None,
                ),
                HelpdeskError::Unauthorized(_) | HelpdeskError::Rejected { .. } => (
                    ErrorCode::Internal,
                    format!("the helpdesk refused our update: {helpdesk}"),
                    None,
                ),
            }
        }
        EngineError::Retrieve(retrieve) => {
            tracing::error!(error = %chain(err), "knowledge base search failed");
            match retrieve {
                RetrieveError::Timeout => (
                    ErrorCode::UpstreamTimeout,
                    "searching our help center took too long; please try again".into(),
                    None,
                ),
                RetrieveError::RateLimited { retry_after } => (
                    ErrorCode::UpstreamUnavailable,
                    "our help center search is busy; please try again shortly".into(),
                    retry_after.map(millis_rounded_up),
                ),
                RetrieveError::Unavailable(_) => (
                    ErrorCode::UpstreamUnavailable,
                    "our help center search is unavailable; please try again shortly".into(),
                    None,
                ),
                RetrieveError::Rejected(_) | RetrieveError::Other(_) => (
                    ErrorCode::Internal,
                    "something went wrong on our side; please try again".into(),
                    None,
                ),
            }
        }
        EngineError::Generate(generate) => {
            tracing::error!(error = %chain(err), "answer generation failed");
            match generate {
                GenerateError::Timeout => (
                    ErrorCode::UpstreamTimeout,
                    "the answer took too long; please try again".into(),
                    None,
                ),
                GenerateError::RateLimited { retry_after } => (
                    ErrorCode::UpstreamUnavailable,
                    "the assistant is busy; please try again shortly".into(),
                    retry_after.map(millis_rounded_up),
                ),
                GenerateError::Unavailable(_) | GenerateError::Interrupted(_) => (
                    ErrorCode::UpstreamUnavailable,
                    "the assistant is unavailable; please try again shortly".into(),
                    None,
                ),
                GenerateError::Rejected(_) | GenerateError::Blocked | GenerateError::Other(_) => (
                    ErrorCode::Internal,
                    "something went wrong on our side; please try again".into(),
                    None,
                ),
            }
        }
    }
}

/// The client address: the peer, or — when the peer is a trusted proxy — the last address in
/// `X-Forwarded-For` that is not a trusted proxy.
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpNet]) -> String {
    let Some(peer) = req.peer_addr().map(|addr| addr.ip()) else {
        return "unknown".into();
    };
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer.to_string();
    }
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    forwarded
        .rsplit(',')
        .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
        .find(|ip| !trusted(ip))
        .unwrap_or(peer)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_report_milliseconds_rounded_up() {
        let (code, _, retry) = error_reply(&EngineError::RateLimited {
            retry_after: Duration::from_micros(2_500_100),
        });
        assert_eq!(code, ErrorCode::RateLimited);
        assert_eq!(retry, Some(2501));
    }

    #[test]
    fn upstream_failures_map_to_upstream_codes() {
        let cases = [
            (
                EngineError::Retrieve(RetrieveError::Timeout),
                ErrorCode::UpstreamTimeout,
            ),
            (
                EngineError::Retrieve(RetrieveError::Unavailable("down".into())),
                ErrorCode::UpstreamUnavailable,
            ),
            (
                EngineError::Store(StoreError::Unavailable("down".into())),
                ErrorCode::UpstreamUnavailable,
            ),
            (
                EngineError::Store(StoreError::Other("boom".into())),
                ErrorCode::Internal,
            ),
            (EngineError::Forbidden("no".into()), ErrorCode::Forbidden),
        ];
        for (err, expected) in cases {
            assert_eq!(error_reply(&err).0, expected, "{err:?}");
        }
    }

    #[actix_web::test]
    async fn client_ip_trusts_forwarded_for_only_from_trusted_proxies() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("valid CIDR")];
        let req = actix_web::test::TestRequest::default()
            .peer_addr("10.1.2.3:5000".parse().expect("valid"))
            .insert_header(("x-forwarded-for", "203.0.113.9, 10.9.9.9"))
            .to_http_request();
        assert_eq!(client_ip(&req, &proxies), "203.0.113.9");
        let direct = actix_web::test::TestRequest::default()
            .peer_addr("198.51.100.7:5000".parse().expect("valid"))
            .insert_header(("x-forwarded-for", "203.0.113.9"))
            .to_http_request();
        assert_eq!(client_ip(&direct, &proxies), "198.51.100.7");
    }
}
