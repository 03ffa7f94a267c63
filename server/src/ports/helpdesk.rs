//! The helpdesk port: where a handoff becomes a ticket for the team (DESIGN.md, "Ports":
//! Zendesk, Freshdesk, Intercom, the built-in inbox).
//!
//! Exactly once: `create_ticket` may be called again for the same handoff — after a timeout,
//! a crash between the vendor accepting the ticket and Frontdesk recording it, or a restart —
//! and must then return the ticket the first call created, never a second one. Adapters do it
//! with what each vendor offers (Zendesk: `Idempotency-Key` plus a lookup by `external_id`;
//! Freshdesk: a lookup by our handoff id before creating). Adapters make one attempt per call;
//! retrying, with backoff and `Retry-After`, is the caller's (the outbox's).

use crate::config::Priority;
use std::time::Duration;

/// Who the ticket is from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Requester {
    pub name: Option<String>,
    pub email: Option<String>,
    /// The visitor's verified user id, when the site sent one.
    pub user_id: Option<String>,
}

/// A ticket to create for a handoff.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketRequest {
    /// Our handoff id (a UUID): the idempotency key and the ticket's external id.
    pub handoff_id: String,
    pub subject: String,
    /// The ticket's first comment (plain text): summary, context and transcript.
    pub body: String,
    pub requester: Requester,
    pub priority: Priority,
    pub tags: Vec<String>,
    /// When the handoff was recorded (helpdesks without idempotency look for the ticket among
    /// those created since).
    pub requested_at: time::OffsetDateTime,
}

/// A created ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRef {
    /// The helpdesk's id for it.
    pub id: String,
    /// Where an agent opens it, when the helpdesk says.
    pub url: Option<String>,
}

/// Errors of one attempt.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HelpdeskError {
    /// 429: try again after `retry_after` (from `Retry-After`) or a backoff.
    #[error("the helpdesk is rate-limiting us")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, a timeout or no connection: try again later.
    #[error("the helpdesk is unavailable: {0}")]
    Unavailable(String),
    /// 401/403: the credentials are wrong; retrying will not help until they are fixed.
    #[error("the helpdesk refused our credentials: {0}")]
    Unauthorized(String),
    /// Another 4xx: the helpdesk rejects this ticket as sent (validation).
    #[error("the helpdesk rejected the ticket: HTTP {status}: {message}")]
    Rejected { status: u16, message: String },
}

impl HelpdeskError {
    /// Whether a later attempt may succeed without a change on our side.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable(_))
    }
}

/// A comment added to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketComment {
    /// Plain text.
    pub body: String,
    /// `true`: a reply the requester sees; `false`: an internal note.
    pub public: bool,
}

/// What triage sets on a ticket that arrived through another channel (email, social).
#[derive(Debug, Clone, PartialEq)]
pub struct TicketTriage {
    pub priority: Priority,
    /// Tags to add (the ticket's own tags are kept).
    pub tags: Vec<String>,
    /// The helpdesk's group id for the routed team (`helpdesk.<vendor>.groups`).
    pub group_id: Option<u64>,
    pub comment: Option<TicketComment>,
}

impl TicketTriage {
    /// The ticket's `current` tags followed by the triage's new ones, without repeats.
    pub fn merged_tags(&self, current: &[String]) -> Vec<String> {
        let mut tags = current.to_vec();
        for tag in &self.tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        tags
    }
}

/// A helpdesk.
#[async_trait::async_trait]
pub trait Helpdesk: Send + Sync {
    /// Adapter name for logs (`zendesk`).
    fn adapter_name(&self) -> &'static str;

    /// Creates the ticket of `request`, exactly once per `request.handoff_id` across calls.
    ///
    /// Errors: [`HelpdeskError`] for this attempt.
    async fn create_ticket(&self, request: &TicketRequest) -> Result<TicketRef, HelpdeskError>;

    /// Adds `comment` to ticket `ticket_id` (the visitor's follow-up messages, as an internal
    /// note). One attempt; the outbox retries. A crash between the helpdesk storing it and
    /// Frontdesk recording it repeats it once (at least once, unlike tickets).
    ///
    /// Errors: [`HelpdeskError`]; `Rejected` from helpdesks without comments.
    async fn add_comment(
        &self,
        ticket_id: &str,
        comment: &TicketComment,
    ) -> Result<(), HelpdeskError> {
        let _ = (ticket_id, comment);
        Err(HelpdeskError::Rejected {
            status: 0,
            message: format!("the {} helpdesk takes no comments", self.adapter_name()),
        })
    }

    /// Applies `triage` to ticket `ticket_id` (not created by Frontdesk), whose tags are
    /// `current_tags`. One attempt; the helpdesk's webhook retries a failed delivery.
    ///
    /// Errors: [`HelpdeskError`]; `Rejected` from helpdesks that do not send Frontdesk their
    /// other channels' tickets (the built-in inbox, Intercom).
    async fn triage_ticket(
        &self,
        ticket_id: &str,
        triage: &TicketTriage,
        current_tags: &[String],
    ) -> Result<(), HelpdeskError> {
        let _ = (ticket_id, triage, current_tags);
        Err(HelpdeskError::Rejected {
            status: 0,
            message: format!(
                "the {} helpdesk does not take tickets from other channels",
                self.adapter_name()
            ),
        })
    }
}
