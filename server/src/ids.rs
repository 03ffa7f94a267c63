//! Identifier newtypes with parsing constructors (parse, don't validate).
//!
//! Every identifier that crosses a port or the wire is one of these types; the raw string or
//! UUID only appears at the edges (`api::wire`, config loading, store adapters).

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Why a raw identifier was refused (the message names the identifier kind and the rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    /// `site id`, `visitor id`, `conversation id`, …
    pub kind: &'static str,
    pub reason: String,
}

fn check_token(
    kind: &'static str,
    raw: &str,
    max_len: usize,
    extra: &[char],
) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError {
            kind,
            reason: "it is empty".into(),
        });
    }
    if raw.len() > max_len {
        return Err(IdError {
            kind,
            reason: format!("it is longer than {max_len} bytes"),
        });
    }
    if let Some(bad) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(c)))
    {
        return Err(IdError {
            kind,
            reason: format!("character {bad:?} is not allowed"),
        });
    }
    Ok(())
}

/// A site (tenant) id from config: 1–64 ASCII letters, digits, `-` or `_` (`demo`, `acme-eu`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SiteId(String);

impl SiteId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        check_token("site id", raw, 64, &['-', '_'])?;
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A visitor id: chosen by the widget (kept in the browser) or issued by the server;
/// 1–128 ASCII letters, digits, `-`, `_`, `.` or `:`. Not a credential: resuming a
/// conversation needs its resume token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VisitorId(String);

impl VisitorId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        check_token("visitor id", raw, 128, &['-', '_', '.', ':'])?;
        Ok(Self(raw.to_string()))
    }

    /// A fresh random visitor id (`v_` + 32 hex digits of a UUID v4).
    pub fn generate() -> Self {
        Self(format!("v_{}", Uuid::new_v4().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Parses the hyphenated (or simple) UUID form.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                Uuid::parse_str(raw)
                    .map(Self)
                    .map_err(|err| IdError { kind: $kind, reason: err.to_string() })
            }

            /// A fresh, time-ordered id (UUID v7).
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

uuid_id!(
    /// A conversation id (UUID v7, issued by the server in `welcome`).
    ConversationId,
    "conversation id"
);
uuid_id!(
    /// A stored message id (UUID v7): visitor, assistant, agent or system message.
    MessageId,
    "message id"
);
uuid_id!(
    /// An assistant answer id (UUID v7): names the streamed deltas, `answer_end` and feedback.
    AnswerId,
    "answer id"
);
uuid_id!(
    /// A handoff id (UUID v7): the idempotency key of its helpdesk ticket (Zendesk's
    /// `Idempotency-Key` and `external_id`, Freshdesk's tag), kept when a pending draft becomes
    /// a handoff.
    HandoffId,
    "handoff id"
);
uuid_id!(
    /// The widget's id for a visitor message (a UUID it generates): the idempotency key of
    /// `message` frames.
    ClientMessageId,
    "client message id"
);

/// A per-conversation event number: starts at 1 and only increases (0 = "before any event").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct EventId(pub u64);

impl EventId {
    /// The id before the first event.
    pub const ZERO: EventId = EventId(0);

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn next(self) -> EventId {
        EventId(self.0 + 1)
    }
}

macro_rules! string_conversions {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(raw: String) -> Result<Self, IdError> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_conversions!(SiteId);
string_conversions!(VisitorId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_ids_are_short_ascii_tokens() {
        assert_eq!(
            SiteId::parse("acme-eu_2").map(|s| s.to_string()),
            Ok("acme-eu_2".into())
        );
        for bad in ["", "acme eu", "acmé", &"x".repeat(65)] {
            assert!(SiteId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn visitor_ids_allow_widget_generated_forms() {
        let generated = VisitorId::generate();
        assert!(generated.as_str().starts_with("v_"));
        assert_eq!(generated.as_str().len(), 34);
        assert!(VisitorId::parse(generated.as_str()).is_ok());
        assert!(VisitorId::parse("user:42.a-b_c").is_ok());
        assert!(VisitorId::parse("<script>").is_err());
    }

    #[test]
    fn uuid_ids_round_trip_through_their_text_form() {
        let id = ConversationId::generate();
        assert_eq!(ConversationId::parse(&id.to_string()), Ok(id));
        assert!(ClientMessageId::parse("not-a-uuid").is_err());
    }

    #[test]
    fn event_ids_increase() {
        assert_eq!(EventId::ZERO.next(), EventId(1));
        assert!(EventId(2) > EventId(1));
    }
}
