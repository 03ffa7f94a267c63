//! Authenticity checks of helpdesk webhooks (`/v1/webhooks/{zendesk|freshdesk|intercom}`), as
//! each vendor defines them (`../shared/docs/wire-facts.md` §1.7, §2.6, §3.6):
//!
//! - **Zendesk:** `x-zendesk-webhook-signature` = base64(HMAC-SHA256(key = the signing secret
//!   as-is, message = `x-zendesk-webhook-signature-timestamp` + raw body)); a timestamp older
//!   than [`ZENDESK_MAX_AGE`] (or that far in the future) is refused, and so is an invocation id
//!   or a signature seen before (remembered in the conversation store, so on every instance).
//! - **Intercom:** `X-Hub-Signature: sha1=<hex>` = HMAC-SHA1(key = the app's client secret,
//!   message = raw body); notifications are delivered at least once, so their `id` is
//!   deduplicated the same way.
//! - **Freshdesk** signs nothing: a shared secret in a header chosen in the automation rule,
//!   compared in constant time.
//!
//! Signatures are compared with the MAC's constant-time check (`hmac::Mac::verify_slice`).

use base64::Engine;
use hmac::{Hmac, Mac};
use std::time::Duration;

/// Oldest Zendesk timestamp accepted.
pub const ZENDESK_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// Why a webhook is refused (answered 401, never processed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookAuthError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("the signature header is malformed: {0}")]
    Malformed(String),
    #[error("the timestamp is {0} s away from now (at most 300 s accepted)")]
    Stale(i64),
}

/// Checks a Zendesk webhook (wire-facts §1.7) at `now`.
///
/// Errors: `Malformed` (timestamp not RFC 3339, signature not base64), `Stale`, `BadSignature`.
pub fn verify_zendesk(
    secret: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: time::OffsetDateTime,
) -> Result<(), WebhookAuthError> {
    let at = time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
        .map_err(|err| WebhookAuthError::Malformed(format!("timestamp {timestamp:?}: {err}")))?;
    let age = (now - at).whole_seconds();
    if age.unsigned_abs() > ZENDESK_MAX_AGE.as_secs() {
        return Err(WebhookAuthError::Stale(age));
    }
    let expected = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|err| WebhookAuthError::Malformed(format!("signature: {err}")))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|err| WebhookAuthError::Malformed(err.to_string()))?;
    mac.update(timestamp.as_bytes());
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookAuthError::BadSignature)
}

/// Checks an Intercom webhook's `X-Hub-Signature` (wire-facts §3.6).
///
/// Errors: `Malformed` (not `sha1=<hex>`), `BadSignature`.
pub fn verify_intercom(
    client_secret: &str,
    body: &[u8],
    header: &str,
) -> Result<(), WebhookAuthError> {
    let hex_signature = header
        .trim()
        .strip_prefix("sha1=")
        .ok_or_else(|| WebhookAuthError::Malformed("expected sha1=<hex>".into()))?;
    let expected = hex::decode(hex_signature)
        .map_err(|err| WebhookAuthError::Malformed(format!("signature: {err}")))?;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(client_secret.as_bytes())
        .map_err(|err| WebhookAuthError::Malformed(err.to_string()))?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookAuthError::BadSignature)
}

/// Checks Freshdesk's shared-secret header (Freshdesk signs nothing; wire-facts §2.6), in
/// constant time.
///
/// Errors: `BadSignature`.
pub fn verify_shared_secret(expected: &str, received: &str) -> Result<(), WebhookAuthError> {
    // An HMAC of both under one key compares in constant time whatever the lengths.
    let digest = |value: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"frontdesk-shared-secret-compare")
            .expect("HMAC takes any key length");
        mac.update(value.as_bytes());
        mac
    };
    digest(received)
        .verify_slice(&digest(expected).finalize().into_bytes())
        .map_err(|_| WebhookAuthError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The fixed vectors of wire-facts §1.7 and §3.6 (computed there with Python's hmac, not by
    // this code).
    const ZENDESK_SECRET: &str = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";
    const ZENDESK_TIMESTAMP: &str = "2021-03-25T05:09:27Z";
    const ZENDESK_BODY: &[u8] = br#"{"ticket_id":"42"}"#;
    const ZENDESK_SIGNATURE: &str = "LbiR1crHGMKN9WjZ6GwQo5ThTF9hoYF/NRFqHC048eA=";
    const INTERCOM_SECRET: &str = "client-secret";
    const INTERCOM_BODY: &[u8] = br#"{"type":"notification_event","topic":"ping"}"#;
    const INTERCOM_SIGNATURE: &str = "sha1=afd46c2e2b3cd345f03cef349d0d10c6ebe3542a";

    fn at(offset_seconds: i64) -> time::OffsetDateTime {
        time::macros::datetime!(2021-03-25 05:09:27 UTC) + time::Duration::seconds(offset_seconds)
    }

    #[test]
    fn zendesk_vector_verifies_and_any_change_is_refused() {
        assert_eq!(
            verify_zendesk(
                ZENDESK_SECRET,
                ZENDESK_TIMESTAMP,
                ZENDESK_BODY,
                ZENDESK_SIGNATURE,
                at(10)
            ),
            Ok(())
        );
        assert_eq!(
            verify_zendesk(
                ZENDESK_SECRET,
                ZENDESK_TIMESTAMP,
                br#"{"ticket_id":"43"}"#,
                ZENDESK_SIGNATURE,
                at(10)
            ),
            Err(WebhookAuthError::BadSignature)
        );
        assert_eq!(
            verify_zendesk(
                "another-secret",
                ZENDESK_TIMESTAMP,
                ZENDESK_BODY,
                ZENDESK_SIGNATURE,
                at(10)
            ),
            Err(WebhookAuthError::BadSignature)
        );
        // The timestamp is signed: shifting it breaks the signature.
        assert_eq!(
            verify_zendesk(
                ZENDESK_SECRET,
                "2021-03-25T05:09:28Z",
                ZENDESK_BODY,
                ZENDESK_SIGNATURE,
                at(10)
            ),
            Err(WebhookAuthError::BadSignature)
        );
    }

    #[test]
    fn zendesk_timestamps_older_than_five_minutes_are_refused() {
        assert_eq!(
            verify_zendesk(
                ZENDESK_SECRET,
                ZENDESK_TIMESTAMP,
                ZENDESK_BODY,
                ZENDESK_SIGNATURE,
                at(300)
            ),
            Ok(())
        );
        assert_eq!(
            verify_zendesk(
                ZENDESK_SECRET,
                ZENDESK_TIMESTAMP,
                ZENDESK_BODY,
                ZENDESK_SIGNATURE,
                at(301)
            ),
            Err(WebhookAuthError::Stale(301))
        );
        assert_eq!(
            verify_zendesk(
                ZENDESK_SECRET,
                ZENDESK_TIMESTAMP,
                ZENDESK_BODY,
                ZENDESK_SIGNATURE,
                at(-400)
            ),
            Err(WebhookAuthError::Stale(-400))
        );
        assert!(matches!(
            verify_zendesk(
                ZENDESK_SECRET,
                "yesterday",
                ZENDESK_BODY,
                ZENDESK_SIGNATURE,
                at(0)
            ),
            Err(WebhookAuthError::Malformed(_))
        ));
    }

    #[test]
    fn intercom_vector_verifies_and_any_change_is_refused() {
        assert_eq!(
            verify_intercom(INTERCOM_SECRET, INTERCOM_BODY, INTERCOM_SIGNATURE),
            Ok(())
        );
        assert_eq!(
            verify_intercom(
                INTERCOM_SECRET,
                br#"{"type":"notification_event","topic":"pong"}"#,
                INTERCOM_SIGNATURE
            ),
            Err(WebhookAuthError::BadSignature)
        );
        assert!(matches!(
            verify_intercom(
                INTERCOM_SECRET,
                INTERCOM_BODY,
                "afd46c2e2b3cd345f03cef349d0d10c6ebe3542a"
            ),
            Err(WebhookAuthError::Malformed(_))
        ));
    }

    #[test]
    fn freshdesk_shared_secret_must_match_exactly() {
        assert_eq!(verify_shared_secret("s3cret-value", "s3cret-value"), Ok(()));
        assert_eq!(
            verify_shared_secret("s3cret-value", "s3cret-valu"),
            Err(WebhookAuthError::BadSignature)
        );
        assert_eq!(
            verify_shared_secret("s3cret-value", ""),
            Err(WebhookAuthError::BadSignature)
        );
    }
}
