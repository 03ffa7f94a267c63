//! The WebSocket wire format (`PROTOCOL.md`): JSON text frames with a `type` field, snake_case.
//! Frames are converted by hand from and to the domain types; nothing else knows this JSON.

use crate::domain::{
    Citation, ConversationStatus, DecisionKind, EventKind, HandoffStatus, StoredEvent,
};
use crate::engine::guard::IdentityClaim;
use crate::engine::{Hello, RequestOrigin, TurnOutput};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

/// A frame from the widget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Hello(HelloFrame),
    Message(MessageFrame),
    Typing {
        is_typing: bool,
    },
    RequestHuman {},
    Feedback {
        answer_id: String,
        helpful: bool,
    },
    Csat {
        rating: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    Contact {
        email: String,
    },
}

/// `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HelloFrame {
    pub v: u32,
    pub site_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// `hello.identity`: `{user_id, user_hash}` or `{jwt}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IdentityWire {
    Hash { user_id: String, user_hash: String },
    Jwt { jwt: String },
}

/// `message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageFrame {
    /// A UUID the widget generates per message (the idempotency key).
    pub client_message_id: String,
    pub text: String,
}

/// A frame to the widget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        conversation_id: String,
        visitor_id: String,
        resume_token: String,
        status: StatusWire,
        last_event_id: u64,
        history: Vec<HistoryEntry>,
    },
    Ack {
        client_message_id: String,
        message_id: String,
        event_id: u64,
        duplicate: bool,
    },
    Typing {
        actor: Actor,
        is_typing: bool,
    },
    Delta {
        answer_id: String,
        seq: u32,
        text: String,
    },
    AnswerEnd {
        answer_id: String,
        event_id: u64,
        text: String,
        sources: Vec<SourceWire>,
        confidence: f32,
        decision: DecisionWire,
    },
    Handoff {
        event_id: u64,
        status: HandoffStatusWire,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        team: Option<String>,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue_position: Option<u32>,
    },
    AgentMessage {
        event_id: u64,
        message_id: String,
        agent_name: String,
        text: String,
    },
    ConversationClosed {
        event_id: u64,
        csat_requested: bool,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_message_id: Option<String>,
    },
}

/// `welcome.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusWire {
    Bot,
    WaitingForAgent,
    WithAgent,
    Closed,
}

/// Who is typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Assistant,
    Agent,
}

/// `answer_end.decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionWire {
    Answer,
    Draft,
    Handoff,
}

/// `handoff.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffStatusWire {
    Pending,
    Assigned,
    Offline,
    Failed,
}

/// A cited article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceWire {
    pub article_id: String,
    pub title: String,
    pub url: Option<String>,
}

/// Who wrote a history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Visitor,
    Assistant,
    Agent,
    System,
}

/// One message of `welcome.history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub message_id: String,
    pub event_id: u64,
    pub role: Role,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<SourceWire>>,
    /// The agent's name on an agent's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// The closed set of error codes shared by WebSocket `error` frames and HTTP error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    RateLimited,
    UpstreamUnavailable,
    UpstreamTimeout,
    Internal,
}

impl ErrorCode {
    /// The HTTP status for HTTP error bodies.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::RateLimited => 429,
            Self::UpstreamUnavailable => 503,
            Self::UpstreamTimeout => 504,
            Self::Internal => 500,
        }
    }
}

impl ServerFrame {
    /// An error frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            retry_after_ms: None,
            client_message_id: None,
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // Every field is a string, number, bool or enum: serialisation cannot fail.
        serde_json::to_string(self).expect("server frames always serialise")
    }
}

impl HelloFrame {
    /// The engine's view of this hello.
    pub fn into_hello(self, origin: RequestOrigin) -> Hello {
        Hello {
            version: self.v,
            site_key: self.site_key,
            visitor_id: self.visitor_id,
            conversation_id: self.conversation_id,
            resume_token: self.resume_token,
            last_event_id: self.last_event_id,
            identity: self.identity.map(|identity| match identity {
                IdentityWire::Hash { user_id, user_hash } => {
                    IdentityClaim::UserHash { user_id, user_hash }
                }
                IdentityWire::Jwt { jwt } => IdentityClaim::Jwt(jwt),
            }),
            page_url: self.page_url,
            locale: self.locale,
            origin,
        }
    }
}

pub fn status(status: ConversationStatus) -> StatusWire {
    match status {
        ConversationStatus::Bot => StatusWire::Bot,
        ConversationStatus::WaitingForAgent => StatusWire::WaitingForAgent,
        ConversationStatus::WithAgent => StatusWire::WithAgent,
        ConversationStatus::Closed => StatusWire::Closed,
    }
}

fn decision(decision: DecisionKind) -> DecisionWire {
    match decision {
        DecisionKind::Answer => DecisionWire::Answer,
        DecisionKind::Draft => DecisionWire::Draft,
        DecisionKind::Handoff => DecisionWire::Handoff,
    }
}

fn handoff_status(status: HandoffStatus) -> HandoffStatusWire {
    match status {
        HandoffStatus::Pending => HandoffStatusWire::Pending,
        HandoffStatus::Assigned => HandoffStatusWire::Assigned,
        HandoffStatus::Offline => HandoffStatusWire::Offline,
        HandoffStatus::Failed => HandoffStatusWire::Failed,
    }
}

fn sources(citations: &[Citation]) -> Vec<SourceWire> {
    citations
        .iter()
        .map(|c| SourceWire {
            article_id: c.article_id.to_string(),
            title: c.title.clone(),
            url: c.url.clone(),
        })
        .collect()
}

/// RFC 3339 text of a timestamp.
pub fn timestamp(at: time::OffsetDateTime) -> String {
    // Every OffsetDateTime whose year has four digits formats as RFC 3339; ours come from the clock.
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// The frame a stored event is delivered (or replayed) as. A visitor message becomes its `ack`;
/// an internal note is for the team only (`None`: never sent to the visitor).
pub fn event_frame(event: &StoredEvent) -> Option<ServerFrame> {
    let event_id = event.event_id.get();
    Some(match &event.kind {
        EventKind::VisitorMessage {
            message_id,
            client_message_id,
            ..
        } => ServerFrame::Ack {
            client_message_id: client_message_id.to_string(),
            message_id: message_id.to_string(),
            event_id,
            duplicate: false,
        },
        EventKind::AssistantAnswer {
            answer_id,
            text,
            sources: cited,
            confidence,
            decision: kind,
            ..
        } => ServerFrame::AnswerEnd {
            answer_id: answer_id.to_string(),
            event_id,
            text: text.clone(),
            sources: sources(cited),
            confidence: *confidence,
            decision: decision(*kind),
        },
        EventKind::Handoff {
            status,
            team,
            message,
            queue_position,
            ..
        } => ServerFrame::Handoff {
            event_id,
            status: handoff_status(*status),
            team: team.clone(),
            message: message.clone(),
            queue_position: *queue_position,
        },
        EventKind::AgentMessage {
            message_id,
            agent_name,
            text,
        } => ServerFrame::AgentMessage {
            event_id,
            message_id: message_id.to_string(),
            agent_name: agent_name.clone(),
            text: text.clone(),
        },
        EventKind::ConversationClosed { csat_requested } => ServerFrame::ConversationClosed {
            event_id,
            csat_requested: *csat_requested,
        },
        EventKind::InternalNote { .. } => return None,
    })
}

/// The `welcome.history` entry of a message event (`None` for state changes).
pub fn history_entry(event: &StoredEvent) -> Option<HistoryEntry> {
    let (message_id, role, text, cited) = match &event.kind {
        EventKind::VisitorMessage {
            message_id, text, ..
        } => (message_id, Role::Visitor, text, None),
        EventKind::AssistantAnswer {
            message_id,
            text,
            sources: cited,
            ..
        } => (message_id, Role::Assistant, text, Some(sources(cited))),
        EventKind::AgentMessage {
            message_id, text, ..
        } => (message_id, Role::Agent, text, None),
        EventKind::Handoff {
            message_id,
            message,
            ..
        } => (message_id, Role::System, message, None),
        EventKind::ConversationClosed { .. } | EventKind::InternalNote { .. } => return None,
    };
    let agent_name = match &event.kind {
        EventKind::AgentMessage { agent_name, .. } => Some(agent_name.clone()),
        _ => None,
    };
    Some(HistoryEntry {
        message_id: message_id.to_string(),
        event_id: event.event_id.get(),
        role,
        text: text.clone(),
        sources: cited,
        agent_name,
        created_at: timestamp(event.created_at),
    })
}

/// The frame of a turn output.
pub fn turn_frame(output: &TurnOutput) -> ServerFrame {
    match output {
        TurnOutput::Typing { is_typing } => ServerFrame::Typing {
            actor: Actor::Assistant,
            is_typing: *is_typing,
        },
        TurnOutput::Delta {
            answer_id,
            seq,
            text,
        } => ServerFrame::Delta {
            answer_id: answer_id.to_string(),
            seq: *seq,
            text: text.clone(),
        },
    }
}

/// Why a text frame could not be read as a [`ClientFrame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub message: String,
    /// The frame's `client_message_id`, when it had a readable one.
    pub client_message_id: Option<String>,
}

/// The frame types a client may send.
pub const CLIENT_FRAME_TYPES: [&str; 7] = [
    "hello",
    "message",
    "typing",
    "request_human",
    "feedback",
    "csat",
    "contact",
];

/// Parses a text frame, with a message saying what is wrong: not JSON, no or unknown `type`,
/// or a known type with bad fields.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|err| FrameError {
        message: format!("malformed JSON: {err}"),
        client_message_id: None,
    })?;
    let client_message_id = value
        .get("client_message_id")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let fail = |message: String| FrameError {
        message,
        client_message_id: client_message_id.clone(),
    };
    let Some(kind) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_string)
    else {
        return Err(fail("the frame has no \"type\" string field".into()));
    };
    if !CLIENT_FRAME_TYPES.contains(&kind.as_str()) {
        return Err(fail(format!(
            "unknown frame type {kind:?} (expected one of: {})",
            CLIENT_FRAME_TYPES.join(", ")
        )));
    }
    serde_json::from_value(value).map_err(|err| fail(format!("invalid {kind} frame: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_with_precise_errors() {
        assert_eq!(
            parse_client_frame(r#"{"type":"typing","is_typing":true}"#),
            Ok(ClientFrame::Typing { is_typing: true })
        );
        assert_eq!(
            parse_client_frame(r#"{"type":"request_human"}"#),
            Ok(ClientFrame::RequestHuman {})
        );
        let cases = [
            ("{not json", "malformed JSON"),
            (r#"{"text":"hi"}"#, "no \"type\""),
            (r#"{"type":"shout"}"#, "unknown frame type \"shout\""),
            (
                r#"{"type":"message","client_message_id":"x"}"#,
                "invalid message frame",
            ),
            (r#"{"type":"csat","rating":"five"}"#, "invalid csat frame"),
        ];
        for (text, expected) in cases {
            let err = parse_client_frame(text).expect_err(text);
            assert!(err.message.contains(expected), "{text}: {}", err.message);
        }
        let err = parse_client_frame(r#"{"type":"message","client_message_id":"abc"}"#)
            .expect_err("no text");
        assert_eq!(err.client_message_id.as_deref(), Some("abc"));
    }

    #[test]
    fn identities_parse_in_both_shapes() {
        let hello: HelloFrame =
            serde_json::from_str(r#"{"v":1,"site_key":"k","identity":{"jwt":"a.b.c"}}"#)
                .expect("parses");
        assert_eq!(
            hello.identity,
            Some(IdentityWire::Jwt {
                jwt: "a.b.c".into()
            })
        );
        let hello: HelloFrame = serde_json::from_str(
            r#"{"v":1,"site_key":"k","identity":{"user_id":"u","user_hash":"h"}}"#,
        )
        .expect("parses");
        assert_eq!(
            hello.identity,
            Some(IdentityWire::Hash {
                user_id: "u".into(),
                user_hash: "h".into()
            })
        );
    }

    #[test]
    fn error_codes_have_http_statuses() {
        assert_eq!(ErrorCode::RateLimited.http_status(), 429);
        assert_eq!(
            serde_json::to_string(&ErrorCode::UpstreamTimeout).expect("serialises"),
            "\"upstream_timeout\""
        );
    }
}
