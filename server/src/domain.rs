//! Domain types shared by the engine, the ports and their adapters: conversation status,
//! the closed set of policy reason codes, decisions, stored events, citations.
//!
//! These types are what the store persists (they derive serde for the adapters' storage
//! format); the WebSocket wire format lives in `api::wire` and is converted by hand.

use crate::ids::{
    AnswerId, ClientMessageId, ConversationId, EventId, HandoffId, MessageId, SiteId, VisitorId,
};
use frontdesk_kb::DocumentId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

/// Where a conversation stands (DESIGN.md: `bot|waiting_for_agent|with_agent|closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// The assistant answers.
    Bot,
    /// A handoff is pending: the assistant stays quiet, messages are kept for the agent.
    WaitingForAgent,
    /// An agent has taken the conversation.
    WithAgent,
    /// Closed by an agent or by the visitor; the store may expire it after `store.closed_ttl`.
    Closed,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::WaitingForAgent => "waiting_for_agent",
            Self::WithAgent => "with_agent",
            Self::Closed => "closed",
        }
    }
}

/// Why the assistant should not answer alone: the closed set of DESIGN.md, shared by the
/// policy, tickets, analytics and the eval files (`handoff:<reason>`). Never shown to a visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// The visitor asked for a human (a `request_human` frame or a detected phrase).
    RequestedHuman,
    /// Sentiment (VADER compound) below `policy.negative_sentiment` on two consecutive messages.
    NegativeSentiment,
    /// `policy.max_unresolved_exchanges` exchanges without a resolution.
    NoResolution,
    /// Account takeover, suspicious logins, compromised 2FA.
    Security,
    /// Subpoenas, legal notices, law-enforcement and compliance requests.
    Legal,
    /// Contested charges and chargebacks, any amount.
    BillingDispute,
    /// Cancelling in anger, naming a competitor, "third time I'm asking".
    ChurnRisk,
    /// Retrieval confidence below `policy.min_confidence`.
    LowConfidence,
    /// Nothing in the knowledge base is about the question.
    OutOfScope,
    /// The LLM answer failed the grounding check.
    Ungrounded,
    /// The LLM failed (error, timeout, cut stream).
    LlmFailure,
}

impl ReasonCode {
    /// Every reason code, in DESIGN.md order.
    pub const ALL: [ReasonCode; 11] = [
        Self::RequestedHuman,
        Self::NegativeSentiment,
        Self::NoResolution,
        Self::Security,
        Self::Legal,
        Self::BillingDispute,
        Self::ChurnRisk,
        Self::LowConfidence,
        Self::OutOfScope,
        Self::Ungrounded,
        Self::LlmFailure,
    ];

    /// The snake_case code (`requested_human`, …), as in config, tickets and eval files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestedHuman => "requested_human",
            Self::NegativeSentiment => "negative_sentiment",
            Self::NoResolution => "no_resolution",
            Self::Security => "security",
            Self::Legal => "legal",
            Self::BillingDispute => "billing_dispute",
            Self::ChurnRisk => "churn_risk",
            Self::LowConfidence => "low_confidence",
            Self::OutOfScope => "out_of_scope",
            Self::Ungrounded => "ungrounded",
            Self::LlmFailure => "llm_failure",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown reason code (the message lists the valid ones).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reason code {0:?} (expected one of: {list})", list = ReasonCode::ALL.map(|r| r.as_str()).join(", "))]
pub struct UnknownReasonCode(pub String);

impl FromStr for ReasonCode {
    type Err = UnknownReasonCode;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str() == raw)
            .ok_or_else(|| UnknownReasonCode(raw.to_string()))
    }
}

/// Account actions a visitor may ask the team to carry out for them; `policy.draft` lists
/// those answered with a draft for an agent to approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Refund,
    PlanChange,
    DataDeletion,
    AccountChange,
    Cancellation,
}

impl ActionKind {
    pub const ALL: [ActionKind; 5] = [
        Self::Refund,
        Self::PlanChange,
        Self::DataDeletion,
        Self::AccountChange,
        Self::Cancellation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refund => "refund",
            Self::PlanChange => "plan_change",
            Self::DataDeletion => "data_deletion",
            Self::AccountChange => "account_change",
            Self::Cancellation => "cancellation",
        }
    }
}

impl FromStr for ActionKind {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
            .ok_or_else(|| {
                format!(
                    "unknown action kind {raw:?} (expected one of: {})",
                    Self::ALL.map(|k| k.as_str()).join(", ")
                )
            })
    }
}

/// An account action the visitor asks the team to carry out ("please refund me $20").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub kind: ActionKind,
    /// An amount named in the message (refunds), in the message's currency.
    pub amount: Option<f64>,
}

/// What the visitor got for a turn (the wire's `answer_end.decision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// The assistant answered from the knowledge base.
    Answer,
    /// A draft an agent approves or edits before it counts.
    Draft,
    /// The assistant cannot answer alone: it offers a human (or a handoff is under way).
    Handoff,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Draft => "draft",
            Self::Handoff => "handoff",
        }
    }
}

/// A cited knowledge-base article (internal documents are never cited).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    pub article_id: DocumentId,
    pub title: String,
    /// Public URL or path of the article, when it has one.
    pub url: Option<String>,
}

impl From<&frontdesk_kb::index::ArticleHit> for Citation {
    fn from(hit: &frontdesk_kb::index::ArticleHit) -> Self {
        Self {
            article_id: hit.document_id.clone(),
            title: hit.title.clone(),
            url: hit.url.clone(),
        }
    }
}

/// Handoff progress (the wire's `handoff.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffStatus {
    /// Recorded; waiting for routing and an agent.
    Pending,
    /// An agent or team took it.
    Assigned,
    /// Nobody is available now; the visitor can leave an email (`contact`).
    Offline,
    /// The helpdesk could not take it (the conversation stays with the assistant).
    Failed,
}

impl HandoffStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Assigned => "assigned",
            Self::Offline => "offline",
            Self::Failed => "failed",
        }
    }
}

/// Tokens and cost of the LLM calls of one answer, stored with the turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmUsage {
    /// The model (or Azure deployment) that was called.
    pub model: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// US dollars, from `llm.prices`; `None` when the model has no price there.
    pub cost_usd: Option<f64>,
}

impl LlmUsage {
    /// Both calls of a turn (analysis and answer) together; `None` when neither called a model.
    pub fn sum(a: Option<LlmUsage>, b: Option<LlmUsage>) -> Option<LlmUsage> {
        match (a, b) {
            (Some(a), Some(b)) => Some(LlmUsage {
                model: a.model,
                prompt_tokens: a.prompt_tokens + b.prompt_tokens,
                completion_tokens: a.completion_tokens + b.completion_tokens,
                cost_usd: match (a.cost_usd, b.cost_usd) {
                    (Some(x), Some(y)) => Some(x + y),
                    (x, y) => x.or(y),
                },
            }),
            (a, b) => a.or(b),
        }
    }
}

/// A stored conversation event. `event_id` is per conversation, from 1, strictly increasing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub event_id: EventId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub kind: EventKind,
}

/// What happened. Everything a visitor can see again on resume is an event; deltas are not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A visitor message, stored once per `client_message_id`.
    VisitorMessage {
        message_id: MessageId,
        client_message_id: ClientMessageId,
        text: String,
    },
    /// A complete assistant answer (its deltas are not stored).
    AssistantAnswer {
        message_id: MessageId,
        answer_id: AnswerId,
        text: String,
        sources: Vec<Citation>,
        /// Retrieval confidence, 0..1.
        confidence: f32,
        decision: DecisionKind,
        /// Internal: why the assistant did not answer alone (empty for a plain answer), or why
        /// the LLM's answer was replaced (`ungrounded`, `llm_failure`).
        reasons: Vec<ReasonCode>,
        /// Internal: what producing it cost, when an LLM was called (never sent to the visitor).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<LlmUsage>,
    },
    /// A handoff state change, with the visitor-safe message shown in the widget.
    Handoff {
        message_id: MessageId,
        status: HandoffStatus,
        /// Visitor-safe team name ("billing team"), once routed.
        team: Option<String>,
        message: String,
        /// Internal: why (never sent to the visitor).
        reasons: Vec<ReasonCode>,
        /// The visitor's place in line among the team's waiting handoffs when announced
        /// (built-in inbox only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue_position: Option<u32>,
    },
    /// An agent's reply relayed from the helpdesk.
    AgentMessage {
        message_id: MessageId,
        agent_name: String,
        text: String,
    },
    /// The conversation was closed.
    ConversationClosed { csat_requested: bool },
    /// An agent's internal note: for the team only, never sent or replayed to the visitor.
    InternalNote {
        message_id: MessageId,
        agent_name: String,
        text: String,
    },
}

/// Metadata of a conversation (everything but its events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub site: SiteId,
    pub id: ConversationId,
    pub visitor: VisitorId,
    pub status: ConversationStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the status last changed (closed conversations expire `closed_ttl` after it).
    #[serde(with = "time::serde::rfc3339")]
    pub status_changed_at: OffsetDateTime,
    /// Id of the latest event (0 when none).
    pub last_event_id: EventId,
    /// The verified user id of an identified visitor.
    pub user_id: Option<String>,
    pub locale: Option<String>,
    pub page_url: Option<String>,
    /// Email left for offline follow-up (`contact` frame).
    pub contact_email: Option<EmailAddress>,
    pub csat: Option<Csat>,
    /// The inbox agent who took the pending handoff (`with_agent`).
    #[serde(default)]
    pub assignee: Option<String>,
}

/// A handoff waiting for routing and an agent: the record the handoff issue builds tickets from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingHandoff {
    /// The handoff's id: one ticket per id (a pending draft that becomes a handoff keeps its id).
    pub handoff_id: HandoffId,
    /// Why (empty for a plain draft awaiting approval).
    pub reasons: Vec<ReasonCode>,
    /// The event that told the visitor (a `handoff` event, or the draft's `answer_end`).
    pub event_id: EventId,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// The answer an agent approves or edits, when the policy decided `draft`.
    pub draft: Option<DraftAnswer>,
    /// The team routing picked (`sites.routing` team id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// What the turn's analysis found, for the ticket (`None` when no analysis ran, e.g. the
    /// `request_human` button before any message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<HandoffAnalysis>,
    /// The customer tier from the visitor's verified identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

/// The analysis of the turn that handed off, as the ticket shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffAnalysis {
    /// Taxonomy path (`billing/refund`), when classified.
    pub category: Option<String>,
    pub priority: crate::config::Priority,
    /// ISO 639-1 code, when detected.
    pub language: Option<String>,
}

/// The helpdesk ticket created for a handoff (recorded by the outbox once the helpdesk
/// answered; the built-in inbox's "ticket" is its queue entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffTicket {
    pub handoff_id: HandoffId,
    /// Adapter name: `inbox`, `zendesk`, `freshdesk`, `intercom`.
    pub helpdesk: String,
    /// The helpdesk's id for the ticket.
    pub id: String,
    pub url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The last event the helpdesk has: the ticket's transcript, then the visitor's follow-up
    /// messages added as comments. Later events are synced by the outbox.
    #[serde(default)]
    pub synced_through: EventId,
}

/// An answer prepared for an agent's approval (never shown to the visitor as is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftAnswer {
    pub text: String,
    pub citations: Vec<Citation>,
}

/// A customer-satisfaction rating, 1 (bad) to 5 (great).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Csat {
    pub rating: CsatRating,
    pub comment: Option<String>,
}

/// A CSAT rating in 1..=5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct CsatRating(u8);

impl CsatRating {
    pub fn new(rating: u8) -> Result<Self, String> {
        if (1..=5).contains(&rating) {
            Ok(Self(rating))
        } else {
            Err(format!("rating must be 1 to 5, got {rating}"))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for CsatRating {
    type Error = String;
    fn try_from(rating: u8) -> Result<Self, String> {
        Self::new(rating)
    }
}

impl From<CsatRating> for u8 {
    fn from(rating: CsatRating) -> u8 {
        rating.0
    }
}

/// An email address, checked for the `local@domain.tld` shape (not a deliverability check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let valid = raw.len() <= 254
            && !raw.chars().any(|c| c.is_whitespace() || c.is_control())
            && raw.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if valid {
            Ok(Self(raw.to_string()))
        } else {
            Err("not an email address".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<EmailAddress> for String {
    fn from(email: EmailAddress) -> String {
        email.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_round_trip_through_their_names() {
        for reason in ReasonCode::ALL {
            assert_eq!(reason.as_str().parse::<ReasonCode>(), Ok(reason));
            let json = serde_json::to_string(&reason).expect("a unit enum serialises");
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
        assert!("angry".parse::<ReasonCode>().is_err());
    }

    #[test]
    fn csat_ratings_are_one_to_five() {
        assert!(CsatRating::new(0).is_err());
        assert_eq!(CsatRating::new(5).map(CsatRating::get), Ok(5));
        assert!(CsatRating::new(6).is_err());
    }

    #[test]
    fn email_addresses_need_a_local_part_and_a_dotted_domain() {
        assert_eq!(
            EmailAddress::parse(" ada@example.com ").map(|e| e.0),
            Ok("ada@example.com".into())
        );
        for bad in [
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }
}
