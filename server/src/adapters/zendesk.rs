//! [`Helpdesk`] on the Zendesk Support tickets API (`../shared/docs/wire-facts.md` §1).
//!
//! - Auth: HTTP Basic with `{email}/token` and the API token (§1.1).
//! - Create: `POST /api/v2/tickets` with `{"ticket": {subject, comment: {body, public: false},
//!   requester, priority, tags, external_id}}` → `201` with `{"ticket": {id, url, …}}` (§1.2);
//!   the first comment is an internal note (the context is for agents, not an email to the
//!   visitor).
//! - Exactly once (§1.4): every create carries `Idempotency-Key: <handoff id>` (Zendesk
//!   replays the first response for 2 hours), and `external_id` = the handoff id. Each attempt
//!   first looks the handoff up (`GET /api/v2/tickets?external_id=…`), so a retry after the
//!   key's lifetime — a crash after Zendesk accepted the create, a restart hours later — finds
//!   the ticket instead of creating a second one. A `400 IdempotentRequestError` (same key,
//!   different body) is resolved by the same lookup.
//! - Errors (§1.5, §1.6): `429` (JSON or text/plain body) with `Retry-After`, `5xx`, `401/403`,
//!   `422 RecordInvalid` with its details.

use crate::adapters::http::{helpdesk_answer, helpdesk_transport_error};
use crate::config::Priority;
use crate::ports::helpdesk::{Helpdesk, HelpdeskError, TicketRef, TicketRequest};
use serde_json::{Value, json};
use std::time::Duration;

/// Where and how to reach Zendesk.
#[derive(Debug, Clone)]
pub struct ZendeskConfig {
    /// `https://{subdomain}.zendesk.com` (no path).
    pub base_url: String,
    /// The agent's email of the API token.
    pub email: String,
    pub api_token: String,
    /// Longest wait for one request.
    pub timeout: Duration,
}

/// The Zendesk adapter.
pub struct ZendeskHelpdesk {
    http: reqwest::Client,
    config: ZendeskConfig,
}

impl ZendeskHelpdesk {
    /// Errors: the HTTP client cannot be built.
    pub fn new(config: ZendeskConfig) -> Result<Self, String> {
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
        request.basic_auth(
            format!("{}/token", self.config.email),
            Some(&self.config.api_token),
        )
    }

    /// The ticket whose `external_id` is `handoff_id`, if Zendesk has one.
    async fn find(&self, handoff_id: &str) -> Result<Option<TicketRef>, HelpdeskError> {
        let response = self
            .authed(self.http.get(self.url("/api/v2/tickets")))
            .query(&[("external_id", handoff_id)])
            .send()
            .await
            .map_err(helpdesk_transport_error)?;
        let body = helpdesk_answer(response, error_message).await?;
        Ok(body["tickets"]
            .as_array()
            .and_then(|tickets| tickets.first())
            .and_then(ticket_ref))
    }
}

fn ticket_ref(ticket: &Value) -> Option<TicketRef> {
    let id = match &ticket["id"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    Some(TicketRef {
        id,
        url: ticket["url"].as_str().map(str::to_string),
    })
}

/// The vendor's error text, from its JSON error body or the raw text.
fn error_message(json: &Value, text: &str) -> String {
    match (&json["error"], &json["description"]) {
        (Value::String(error), Value::String(description)) => {
            let details = if json["details"].is_null() {
                String::new()
            } else {
                format!(" {}", json["details"])
            };
            format!("{error}: {description}{details}")
        }
        (Value::String(error), _) => error.clone(),
        _ => text.trim().chars().take(300).collect(),
    }
}

/// Zendesk's priority names.
fn priority_name(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

/// The create body (wire-facts §1.2).
pub fn create_body(request: &TicketRequest) -> Value {
    let mut requester = serde_json::Map::new();
    if let Some(name) = &request.requester.name {
        requester.insert("name".into(), json!(name));
    }
    if let Some(email) = &request.requester.email {
        requester.insert("email".into(), json!(email));
    }
    let mut ticket = json!({
        "subject": request.subject,
        "comment": {"body": request.body, "public": false},
        "priority": priority_name(request.priority),
        "tags": request.tags,
        "external_id": request.handoff_id,
    });
    // Zendesk needs a name or an email to create the end user; without either, the ticket is
    // the API user's.
    if !requester.is_empty() {
        ticket["requester"] = Value::Object(requester);
    }
    json!({ "ticket": ticket })
}

#[async_trait::async_trait]
impl Helpdesk for ZendeskHelpdesk {
    fn adapter_name(&self) -> &'static str {
        "zendesk"
    }

    /// `PUT /api/v2/tickets/{id}` with `{"ticket": {"comment": {...}}}` (wire-facts §1.3).
    async fn add_comment(
        &self,
        ticket_id: &str,
        comment: &crate::ports::helpdesk::TicketComment,
    ) -> Result<(), HelpdeskError> {
        let body =
            json!({ "ticket": { "comment": { "body": comment.body, "public": comment.public } } });
        let response = self
            .authed(
                self.http
                    .put(self.url(&format!("/api/v2/tickets/{ticket_id}"))),
            )
            .json(&body)
            .send()
            .await
            .map_err(helpdesk_transport_error)?;
        helpdesk_answer(response, error_message).await.map(|_| ())
    }

    /// `PUT /api/v2/tickets/{id}` with the priority, the merged tags, the group and the
    /// comment (`public: false` is an internal note; wire-facts §1.2, §1.3).
    async fn triage_ticket(
        &self,
        ticket_id: &str,
        triage: &crate::ports::helpdesk::TicketTriage,
        current_tags: &[String],
    ) -> Result<(), HelpdeskError> {
        let mut ticket = json!({
            "priority": priority_name(triage.priority),
            "tags": triage.merged_tags(current_tags),
        });
        if let Some(group) = triage.group_id {
            ticket["group_id"] = json!(group);
        }
        if let Some(comment) = &triage.comment {
            ticket["comment"] = json!({ "body": comment.body, "public": comment.public });
        }
        let response = self
            .authed(
                self.http
                    .put(self.url(&format!("/api/v2/tickets/{ticket_id}"))),
            )
            .json(&json!({ "ticket": ticket }))
            .send()
            .await
            .map_err(helpdesk_transport_error)?;
        helpdesk_answer(response, error_message).await.map(|_| ())
    }

    async fn create_ticket(&self, request: &TicketRequest) -> Result<TicketRef, HelpdeskError> {
        if let Some(existing) = self.find(&request.handoff_id).await? {
            return Ok(existing);
        }
        let response = self
            .authed(self.http.post(self.url("/api/v2/tickets")))
            .header("Idempotency-Key", &request.handoff_id)
            .json(&create_body(request))
            .send()
            .await
            .map_err(helpdesk_transport_error)?;
        match helpdesk_answer(response, error_message).await {
            Ok(body) => ticket_ref(&body["ticket"]).ok_or_else(|| HelpdeskError::Rejected {
                status: 201,
                message: format!("no ticket id in the answer: {body}"),
            }),
            // Same key, another body: the first create happened; find it.
            Err(HelpdeskError::Rejected {
                status: 400,
                message,
            }) if message.contains("IdempotentRequestError") => self
                .find(&request.handoff_id)
                .await?
                .ok_or(HelpdeskError::Rejected {
                    status: 400,
                    message,
                }),
            Err(err) => Err(err),
        }
    }
}
