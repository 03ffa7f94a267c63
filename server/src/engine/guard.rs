//! Turn step 1, the guard: resume tokens, visitor identity and the per-visitor message rate.

use crate::config::Secret;
use crate::ids::{ConversationId, SiteId, VisitorId};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::num::NonZeroU32;
use std::time::Duration;

type HmacSha256 = Hmac<Sha256>;

/// Issues and checks resume tokens: hex HMAC-SHA256, keyed by the server secret, over
/// `frontdesk.resume.v1`, the site, the visitor and the conversation (newline-separated).
/// A leaked conversation id is useless without its token.
#[derive(Clone)]
pub struct ResumeTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for ResumeTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeTokens(***)")
    }
}

impl ResumeTokens {
    /// Tokens keyed by `secret` (`server.resume_secret`).
    pub fn new(secret: &Secret) -> Self {
        Self {
            key: secret.expose().as_bytes().to_vec(),
        }
    }

    /// Tokens keyed by 256 fresh random bits: valid for this process only.
    pub fn random() -> Self {
        let mut key = Vec::with_capacity(32);
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self { key }
    }

    fn mac(&self, site: &SiteId, visitor: &VisitorId, conversation: &ConversationId) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(format!("frontdesk.resume.v1\n{site}\n{visitor}\n{conversation}").as_bytes());
        mac
    }

    /// The token for this site, visitor and conversation (64 hex digits).
    pub fn issue(
        &self,
        site: &SiteId,
        visitor: &VisitorId,
        conversation: &ConversationId,
    ) -> String {
        hex::encode(
            self.mac(site, visitor, conversation)
                .finalize()
                .into_bytes(),
        )
    }

    /// True when `token` was issued for exactly this site, visitor and conversation
    /// (constant-time comparison).
    pub fn verify(
        &self,
        site: &SiteId,
        visitor: &VisitorId,
        conversation: &ConversationId,
        token: &str,
    ) -> bool {
        let Ok(bytes) = hex::decode(token.trim()) else {
            return false;
        };
        self.mac(site, visitor, conversation)
            .verify_slice(&bytes)
            .is_ok()
    }
}

/// A visitor's claim to be a known user of the site (`hello.identity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityClaim {
    /// `user_hash` = hex HMAC-SHA256(identity_secret, user_id) computed by the site's backend
    /// (the scheme Intercom calls identity verification).
    UserHash { user_id: String, user_hash: String },
    /// An HS256 JWT signed with the identity secret; `sub` is the user id; `exp` is required.
    Jwt(String),
}

/// Why an identity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("this site does not accept visitor identities (no identity_secret configured)")]
    NotConfigured,
    #[error("the user_hash does not match the user_id")]
    BadHash,
    #[error("the identity token is invalid: {0}")]
    BadToken(String),
    #[error("the user id is empty or longer than 256 characters")]
    BadUserId,
}

#[derive(serde::Deserialize)]
struct JwtClaims {
    sub: String,
    /// The customer tier (`enterprise`), for routing; only ever read from a signed token.
    #[serde(default)]
    tier: Option<String>,
}

/// A visitor identity the site vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub user_id: String,
    /// The JWT's `tier` claim (a `user_hash` identity carries none).
    pub tier: Option<String>,
}

/// Checks a claim against the site's identity secret; returns the verified user id and, from
/// a JWT, the customer tier (never from anything the visitor can type).
pub fn verify_identity(
    claim: &IdentityClaim,
    secret: Option<&Secret>,
) -> Result<VerifiedIdentity, IdentityError> {
    let secret = secret.ok_or(IdentityError::NotConfigured)?;
    let mut tier = None;
    let user_id = match claim {
        IdentityClaim::UserHash { user_id, user_hash } => {
            let Ok(expected) = hex::decode(user_hash.trim()) else {
                return Err(IdentityError::BadHash);
            };
            // HMAC accepts keys of any length, so this cannot fail.
            let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(user_id.as_bytes());
            mac.verify_slice(&expected)
                .map_err(|_| IdentityError::BadHash)?;
            user_id.clone()
        }
        IdentityClaim::Jwt(token) => {
            let key = jsonwebtoken::DecodingKey::from_secret(secret.expose().as_bytes());
            let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            let data = jsonwebtoken::decode::<JwtClaims>(token, &key, &validation)
                .map_err(|err| IdentityError::BadToken(err.to_string()))?;
            tier = data
                .claims
                .tier
                .map(|tier| tier.trim().to_ascii_lowercase())
                .filter(|tier| !tier.is_empty() && tier.len() <= 64);
            data.claims.sub
        }
    };
    if user_id.is_empty() || user_id.chars().count() > 256 {
        return Err(IdentityError::BadUserId);
    }
    Ok(VerifiedIdentity { user_id, tier })
}

/// Per-visitor message rate limit (GCRA, `governor`): `burst` messages at once, then
/// `per_minute` a minute.
pub struct MessageRateLimiter {
    limiter: DefaultKeyedRateLimiter<(SiteId, VisitorId)>,
    clock: DefaultClock,
}

impl MessageRateLimiter {
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(
                Quota::per_minute(per_minute).allow_burst(burst),
            ),
            clock: DefaultClock::default(),
        }
    }

    /// `Ok` when the visitor may send a message now, else how long to wait.
    pub fn check(&self, site: &SiteId, visitor: &VisitorId) -> Result<(), Duration> {
        self.limiter
            .check_key(&(site.clone(), visitor.clone()))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets visitors whose limit is back to full (call periodically to bound memory).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (SiteId, VisitorId, ConversationId) {
        (
            SiteId::parse("demo").expect("valid"),
            VisitorId::parse("v_1").expect("valid"),
            ConversationId::generate(),
        )
    }

    #[test]
    fn resume_tokens_bind_site_visitor_and_conversation() {
        let tokens = ResumeTokens::new(&Secret::new("a".repeat(32)));
        let (site, visitor, conversation) = ids();
        let token = tokens.issue(&site, &visitor, &conversation);
        assert_eq!(token.len(), 64);
        assert!(tokens.verify(&site, &visitor, &conversation, &token));
        assert!(!tokens.verify(&site, &visitor, &ConversationId::generate(), &token));
        assert!(!tokens.verify(
            &site,
            &VisitorId::parse("v_2").expect("valid"),
            &conversation,
            &token
        ));
        assert!(!tokens.verify(
            &SiteId::parse("other").expect("valid"),
            &visitor,
            &conversation,
            &token
        ));
        assert!(!tokens.verify(&site, &visitor, &conversation, "zz"));
        assert!(
            !ResumeTokens::random().verify(&site, &visitor, &conversation, &token),
            "another key refuses it"
        );
    }

    #[test]
    fn user_hash_identities_are_checked_with_the_site_secret() {
        let secret = Secret::new("site-secret");
        // Reference value: `printf 'user-42' | openssl dgst -sha256 -hmac site-secret`.
        let mut mac = HmacSha256::new_from_slice(b"site-secret").expect("any key length");
        mac.update(b"user-42");
        let hash = hex::encode(mac.finalize().into_bytes());
        let good = IdentityClaim::UserHash {
            user_id: "user-42".into(),
            user_hash: hash.clone(),
        };
        assert_eq!(
            verify_identity(&good, Some(&secret)).map(|v| v.user_id),
            Ok("user-42".into())
        );
        let forged = IdentityClaim::UserHash {
            user_id: "user-43".into(),
            user_hash: hash,
        };
        assert_eq!(
            verify_identity(&forged, Some(&secret)),
            Err(IdentityError::BadHash)
        );
        assert_eq!(
            verify_identity(&good, None),
            Err(IdentityError::NotConfigured)
        );
    }

    #[test]
    fn jwt_identities_need_a_valid_hs256_signature_and_expiry() {
        let secret = Secret::new("site-secret");
        let key = jsonwebtoken::EncodingKey::from_secret(b"site-secret");
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        let in_an_hour = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
        let token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "user-7", "exp": in_an_hour, "tier": "Enterprise"}),
            &key,
        )
        .expect("encodes");
        assert_eq!(
            verify_identity(&IdentityClaim::Jwt(token), Some(&secret)),
            Ok(VerifiedIdentity {
                user_id: "user-7".into(),
                tier: Some("enterprise".into())
            }),
            "the tier comes from the signed token"
        );
        let expired = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "user-7", "exp": 1_000_000}),
            &key,
        )
        .expect("encodes");
        assert!(matches!(
            verify_identity(&IdentityClaim::Jwt(expired), Some(&secret)),
            Err(IdentityError::BadToken(_))
        ));
        let other_key = jsonwebtoken::EncodingKey::from_secret(b"not-the-secret");
        let forged = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "user-7", "exp": in_an_hour}),
            &other_key,
        )
        .expect("encodes");
        assert!(matches!(
            verify_identity(&IdentityClaim::Jwt(forged), Some(&secret)),
            Err(IdentityError::BadToken(_))
        ));
    }

    #[test]
    fn the_rate_limiter_allows_the_burst_then_says_how_long_to_wait() {
        let limiter = MessageRateLimiter::new(
            NonZeroU32::new(6).expect("non-zero"),
            NonZeroU32::new(2).expect("non-zero"),
        );
        let (site, visitor, _) = ids();
        assert_eq!(limiter.check(&site, &visitor), Ok(()));
        assert_eq!(limiter.check(&site, &visitor), Ok(()));
        let wait = limiter
            .check(&site, &visitor)
            .expect_err("third message within the burst is refused");
        // 6 a minute = one every 10 s.
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert_eq!(
            limiter.check(&site, &VisitorId::parse("v_other").expect("valid")),
            Ok(()),
            "per visitor"
        );
    }
}
