//! [`Helpdesk`] on the Freshdesk API v2 (`../shared/docs/wire-facts.md` §2).
//!
//! - Auth: HTTP Basic with the API key as the user name and `X` as the password (§2.1).
//! - Create: `POST /api/v2/tickets` with the ticket object itself: `subject`, `description`
//!   (HTML), `email` or `unique_external_id` for the requester, integer `status` (2 Open),
//!   `priority` (1 Low … 4 Urgent) and `source` (7 Chat), `tags` → `201` with the ticket (§2.2).
//! - Exactly once: Freshdesk has no idempotency key, so every ticket carries the tag
//!   `frontdesk-<handoff id>` and each attempt first looks for it among the tickets listed
//!   since the handoff (`GET /api/v2/tickets?email=…` when the visitor's email is known, else
//!   `?updated_since=…`, newest first, up to [`LOOKUP_PAGES`] pages of 100). The list API is
//!   read from the database, unlike search, whose index can lag behind a create.
//! - Errors (§2.4, §2.5): `429` with `Retry-After`, `5xx`, `401/403`, and `400` `Validation
//!   failed` with its `errors` list.

use crate::adapters::http::{helpdesk_answer, helpdesk_transport_error};
use crate::config::Priority;
use crate::ports::helpdesk::{Helpdesk, HelpdeskError, TicketRef, TicketRequest};
use serde_json::{Value, json};
use std::time::Duration;

/// Pages of 100 tickets a lookup reads at most.
pub const LOOKUP_PAGES: u32 = 3;
/// Ticket `source` code for chat (§2.2).
const SOURCE_CHAT: u8 = 7;
/// Ticket `status` code for open (§2.2).
const STATUS_OPEN: u8 = 2;

/// Where and how to reach Freshdesk.
#[derive(Debug, Clone)]
pub struct FreshdeskConfig {
    /// `https://{domain}.freshdesk.com` (no path).
    pub base_url: String,
    pub api_key: String,
    /// Longest wait for one request.
    pub timeout: Duration,
}

/// The Freshdesk adapter.
pub struct FreshdeskHelpdesk {
    http: reqwest::Client,
    config: FreshdeskConfig,
}

/// The tag that marks a ticket as this handoff's.
pub fn handoff_tag(handoff_id: &str) -> String {
    format!("frontdesk-{handoff_id}")
}

fn priority_code(priority: Priority) -> u8 {
    match priority {
        Priority::Low => 1,
        Priority::Normal => 2,
        Priority::High => 3,
        Priority::Urgent => 4,
    }
}

/// Escapes text for the HTML `description`, keeping line breaks.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', "<br>")
}

/// The create body (wire-facts §2.2).
pub fn create_body(request: &TicketRequest) -> Value {
    let mut tags = request.tags.clone();
    tags.push(handoff_tag(&request.handoff_id));
    let mut ticket = json!({
        "subject": request.subject,
        "description": html(&request.body),
        "status": STATUS_OPEN,
        "priority": priority_code(request.priority),
        "source": SOURCE_CHAT,
        "tags": tags,
    });
    if let Some(name) = &request.requester.name {
        ticket["name"] = json!(name);
    }
    match (&request.requester.email, &request.requester.user_id) {
        (Some(email), _) => ticket["email"] = json!(email),
        // A requester is mandatory: the verified user id, else the handoff itself.
        (None, Some(user_id)) => {
            ticket["unique_external_id"] = json!(format!("frontdesk:{user_id}"))
        }
        (None, None) => {
            ticket["unique_external_id"] = json!(format!("frontdesk:{}", request.handoff_id));
            if ticket.get("name").is_none() {
                ticket["name"] = json!("Website visitor");
            }
        }
    }
    ticket
}

/// The vendor's error text, from its JSON error body or the raw text.
fn error_message(json: &Value, text: &str) -> String {
    match &json["description"] {
        Value::String(description) if json["errors"].is_array() => {
            format!("{description}: {}", json["errors"])
        }
        Value::String(description) => description.clone(),
        _ => text.trim().chars().take(300).collect(),
    }
}

fn ticket_ref(ticket: &Value, base_url: &str) -> Option<TicketRef> {
    let id = ticket["id"].as_u64()?.to_string();
    Some(TicketRef {
        url: Some(format!("{}/a/tickets/{id}", base_url.trim_end_matches('/'))),
        id,
    })
}

impl FreshdeskHelpdesk {
    /// Errors: the HTTP client cannot be built.
    pub fn new(config: FreshdeskConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(Self { http, config })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    fn authed(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.basic_auth(&self.config.api_key, Some("X"))
    }

    /// The ticket tagged with `request`'s handoff, if Freshdesk has one.
    async fn find(&self, request: &TicketRequest) -> Result<Option<TicketRef>, HelpdeskError> {
        let tag = handoff_tag(&request.handoff_id);
        // A minute of margin for clock skew between us and Freshdesk.
        let since = (request.requested_at - time::Duration::minutes(1))
            .to_offset(time::UtcOffset::UTC)
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|err| HelpdeskError::Rejected {
                status: 0,
                message: format!("cannot format the handoff time: {err}"),
            })?;
        for page in 1..=LOOKUP_PAGES {
            let mut query: Vec<(&str, String)> = vec![
                ("order_by", "created_at".into()),
                ("order_type", "desc".into()),
                ("per_page", "100".into()),
                ("page", page.to_string()),
            ];
            match &request.requester.email {
                Some(email) => query.push(("email", email.clone())),
                None => query.push(("updated_since", since.clone())),
            }
            let response = self
                .authed(self.http.get(self.url("/api/v2/tickets")))
                .query(&query)
                .send()
                .await
                .map_err(helpdesk_transport_error)?;
            let body = helpdesk_answer(response, error_message).await?;
            let tickets = body.as_array().cloned().unwrap_or_default();
            if let Some(found) = tickets.iter().find(|t| {
                t["tags"]
                    .as_array()
                    .is_some_and(|tags| tags.iter().any(|x| x.as_str() == Some(tag.as_str())))
            }) {
                return Ok(ticket_ref(found, &self.config.base_url));
            }
            if tickets.len() < 100 {
                break;
            }
        }
        Ok(None)
    }
}

#[async_trait::async_trait]
impl Helpdesk for FreshdeskHelpdesk {
    fn adapter_name(&self) -> &'static str {
        "freshdesk"
    }

    /// `POST /api/v2/tickets/{id}/notes` (`private` unless public) or `…/reply` (§2.3).
    async fn add_comment(
        &self,
        ticket_id: &str,
        comment: &crate::ports::helpdesk::TicketComment,
    ) -> Result<(), HelpdeskError> {
        let ticket = format!("/api/v2/tickets/{ticket_id}");
        let (path, body) = if comment.public {
            (
                format!("{ticket}/reply"),
                json!({ "body": html(&comment.body) }),
            )
        } else {
            (
                format!("{ticket}/notes"),
                json!({ "body": html(&comment.body), "private": true }),
            )
        };
        let response = self
            .authed(self.http.post(self.url(&path)))
            .json(&body)
            .send()
            .await
            .map_err(helpdesk_transport_error)?;
        helpdesk_answer(response, error_message).await.map(|_| ())
    }

    /// `PUT /api/v2/tickets/{id}` with the priority code, the merged tags and the group, then
    /// the comment: `POST …/notes` (`private: true`) or `POST …/reply` (wire-facts §2.3).
    async fn triage_ticket(
        &self,
        ticket_id: &str,
        triage: &crate::ports::helpdesk::TicketTriage,
        current_tags: &[String],
    ) -> Result<(), HelpdeskError> {
        let mut update = json!({
            "priority": priority_code(triage.priority),
            "tags": triage.merged_tags(current_tags),
        });
        if let Some(group) = triage.group_id {
            update["group_id"] = json!(group);
        }
        let response = self
            .authed(
                self.http
                    .put(self.url(&format!("/api/v2/tickets/{ticket_id}"))),
            )
            .json(&update)
            .send()
            .await
            .map_err(helpdesk_transport_error)?;
        helpdesk_answer(response, error_message).await?;
        match &triage.comment {
            Some(comment) => self.add_comment(ticket_id, comment).await,
            None => Ok(()),
        }
    }

    async fn create_ticket(&self, request: &TicketRequest) -> Result<TicketRef, HelpdeskError> {
        if let Some(existing) = self.find(request).await? {
            return Ok(existing);
        }
        let response = self
            .authed(self.http.post(self.url("/api/v2/tickets")))
            .json(&create_body(request))
            .send()
            .await
            .map_err(helpdesk_transport_error)?;
        let body = helpdesk_answer(response, error_message).await?;
        ticket_ref(&body, &self.config.base_url).ok_or_else(|| HelpdeskError::Rejected {
            status: 201,
            message: format!("no ticket id in the answer: {body}"),
        })
    }
}
