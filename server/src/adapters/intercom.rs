//! [`Helpdesk`] on the Intercom REST API (`../shared/docs/wire-facts.md` §3): a handoff becomes
//! a conversation from the visitor's contact, with the context as an internal note and,
//! optionally, an assignment.
//!
//! - Auth and version (§3.1): `Authorization: Bearer <access token>`, `Accept:
//!   application/json` and `Intercom-Version: 2.13` ([`INTERCOM_VERSION`]) on every request, so
//!   a change of the workspace's default version cannot change the wire format under us. 2.13
//!   is the first version whose API description has `GET /contacts/find_by_external_id/{id}`.
//! - One attempt ([`Helpdesk::create_ticket`]):
//!   1. Find this handoff's conversation (a retry): `POST /conversations/search` for the
//!      handoff marker in `source.body`. The marker ([`handoff_marker`]) is one word,
//!      `frontdesk` and the handoff id's hex digits, because Intercom matches `source.body` word
//!      by word ("against every element of the value separately"), never as a phrase. Found:
//!      go to 4, without touching contacts.
//!   2. The contact (§3.2). A verified visitor (`requester.user_id`) is the *user* whose
//!      `external_id` is that id: `GET /contacts/find_by_external_id/{id}`, else `POST
//!      /contacts {role: "user", external_id, email?, name?}`. Anyone else becomes a new *lead*
//!      `{role: "lead", email?, name?}`: leads carry no `external_id` and the lookup serves users
//!      only. A `409 conflict` on the create ("a contact matching those details already exists")
//!      is resolved by looking the user up again (a concurrent attempt made it); if the lookup
//!      does not resolve it, the conflict is the visitor's email, which is not verified, so the
//!      contact is created again without it rather than attaching the handoff to whoever owns
//!      that address (the email stays in the note).
//!   3. Create (§3.3): `POST /conversations {from: {type, id}, body}`, `body` in plain text
//!      (`"<subject>\n\nRef: <marker>"`) → a `user_message` whose `conversation_id` is the
//!      conversation.
//!   4. The context note: `GET /conversations/{id}`; unless a `note` part already carries the
//!      marker, `POST /conversations/{id}/reply {message_type: "note", type: "admin", admin_id,
//!      body}`, the body as escaped HTML paragraphs ending with the marker.
//!   5. When [`IntercomConfig::assignee_id`] is set and the same `GET` shows neither
//!      `admin_assignee_id` nor `team_assignee_id` equal to it: `POST /conversations/{id}/parts
//!      {message_type: "assignment", type: "admin", admin_id, assignee_id}`.
//!
//!   The ticket is the conversation: `https://app.intercom.com/a/inbox/_/inbox/conversation/{id}`
//!   (`app.eu.` / `app.au.` for the EU and AU hosts).
//! - Exactly once, and what is left of "at most once". Intercom has no idempotency key, so a
//!   retry finds the first attempt's conversation only through search (step 1), and search is
//!   served from an index that can lag behind a create (§3.2: new contacts may take minutes to
//!   appear in search; conversations are assumed to behave alike). A crash or a lost answer
//!   after Intercom accepted step 3, followed by a retry *before the index shows that
//!   conversation*, creates a second one. The outbox's backoff (first retry after at least 1 s,
//!   doubling with jitter) narrows that window; it does not close it. What would close it is a
//!   record of the conversation id that survives the crash, written before anything else:
//!   the outbox keeping the id of the create answer (a hook to record a partial result of an
//!   attempt, which it does not have yet), or a durable "create attempted" mark read from
//!   Intercom's database rather than its search. Steps 2, 4 and 5 read the database (the
//!   lookup by external id, the conversation by id), so users, notes and assignments are
//!   exactly once. An anonymous visitor gets a new lead in each attempt that reaches step 2: a
//!   failure between steps 2 and 3 leaves an empty lead behind, never a second conversation.
//!   Two attempts at once for one handoff could both create; the outbox's lease keeps them one
//!   at a time.
//! - Errors (§3.1, §3.5): the `error.list` envelope (`{"type": "error.list", "errors":
//!   [{"code", "message"}]}`) becomes the message; `429` often comes without `Retry-After`, so
//!   `X-RateLimit-Reset` (Unix seconds) minus now is the wait ([`reset_delay`]); `5xx`,
//!   `401/403`, and other `4xx` as `Rejected`. Ids in answers are read as strings or numbers
//!   (the API description's examples use both).

use crate::adapters::http::{helpdesk_answer, helpdesk_transport_error};
use crate::ports::helpdesk::{Helpdesk, HelpdeskError, TicketRef, TicketRequest};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

/// The API version pinned on every request (`Intercom-Version`).
pub const INTERCOM_VERSION: &str = "2.13";
/// A `X-RateLimit-Reset` further away than this is not believed (a misread unit, a clock far
/// off): the outbox's own backoff applies instead. Intercom's windows are 10 s to a minute.
pub const MAX_RESET_WAIT: Duration = Duration::from_secs(3600);
/// Conversations a search asks for: the marker is unique, so one is expected.
const SEARCH_PAGE: u32 = 5;

/// Where and how to reach Intercom.
#[derive(Debug, Clone)]
pub struct IntercomConfig {
    /// `https://api.intercom.io`, or the EU (`https://api.eu.intercom.io`) or AU
    /// (`https://api.au.intercom.io`) host.
    pub base_url: String,
    pub access_token: String,
    /// The admin the context note and the assignment are written as.
    pub admin_id: String,
    /// The admin or team new conversations are assigned to; `None` leaves it to Intercom's
    /// assignment rules.
    pub assignee_id: Option<String>,
    /// Longest wait for one request.
    pub timeout: Duration,
}

/// The Intercom adapter.
pub struct IntercomHelpdesk {
    http: reqwest::Client,
    base_url: reqwest::Url,
    config: IntercomConfig,
}

/// A contact a conversation can come from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Contact {
    id: String,
    /// `user` or `lead`: the `from.type` of the create.
    role: &'static str,
}

/// The one-word mark of a handoff in the conversation's first message and in the note:
/// `frontdesk` and the handoff id's 32 hex digits (a UUID), or the hex of its bytes (any other
/// id). One word, because Intercom's search matches `source.body` word by word.
pub fn handoff_marker(handoff_id: &str) -> String {
    match uuid::Uuid::parse_str(handoff_id) {
        Ok(uuid) => format!("frontdesk{}", uuid.simple()),
        Err(_) => format!("frontdesk{}", hex::encode(handoff_id)),
    }
}

/// The conversation's first message (plain text: Intercom takes no HTML there).
pub fn conversation_body(request: &TicketRequest) -> String {
    format!(
        "{}\n\nRef: {}",
        request.subject.trim(),
        handoff_marker(&request.handoff_id)
    )
}

/// The context note: the ticket body as HTML paragraphs (text escaped, blank lines between
/// paragraphs, `<br>` for other line breaks), then the marker.
pub fn note_body(request: &TicketRequest) -> String {
    let mut html = String::new();
    let text = request.body.replace("\r\n", "\n");
    for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let lines: Vec<String> = paragraph.trim_matches('\n').lines().map(escape).collect();
        html.push_str(&format!("<p>{}</p>", lines.join("<br>")));
    }
    html.push_str(&format!(
        "<p>Ref: {}</p>",
        handoff_marker(&request.handoff_id)
    ));
    html
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// An id as Intercom sends it: a string or a number (`null`, `""` and `"0"`/`0`, Intercom's
/// "nobody" in assignee fields, are none).
fn id_of(value: &Value) -> Option<String> {
    let id = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!id.is_empty() && id != "0").then_some(id)
}

/// The vendor's error text: the `error.list` envelope's `code: message` pairs, or the raw text.
fn error_message(json: &Value, text: &str) -> String {
    let errors: Vec<String> = json["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|error| {
                    let code = error["code"].as_str();
                    let message = error["message"].as_str();
                    let field = error["field"]
                        .as_str()
                        .map(|f| format!(" (field {f})"))
                        .unwrap_or_default();
                    match (code, message) {
                        (Some(code), Some(message)) => Some(format!("{code}: {message}{field}")),
                        (Some(only), None) | (None, Some(only)) => Some(format!("{only}{field}")),
                        (None, None) => None,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if errors.is_empty() {
        text.trim().chars().take(300).collect()
    } else {
        errors.join("; ")
    }
}

/// The wait a `X-RateLimit-Reset` value (Unix seconds) stands for at `now`: `0` when it has
/// passed, `None` when it is not a number or more than [`MAX_RESET_WAIT`] away.
pub fn reset_delay(value: &str, now: SystemTime) -> Option<Duration> {
    let reset = SystemTime::UNIX_EPOCH + Duration::from_secs(value.trim().parse::<u64>().ok()?);
    let wait = reset.duration_since(now).unwrap_or(Duration::ZERO);
    (wait <= MAX_RESET_WAIT).then_some(wait)
}

/// The wait a `429` stands for when it has no `Retry-After`: its `X-RateLimit-Reset`.
fn rate_limit_reset(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| reset_delay(v, SystemTime::now()))
}

/// Reads an Intercom answer ([`helpdesk_answer`], with `X-RateLimit-Reset` standing in for a
/// missing `Retry-After`).
async fn answer(response: reqwest::Response) -> Result<Value, HelpdeskError> {
    let reset = rate_limit_reset(response.headers());
    match helpdesk_answer(response, error_message).await {
        Err(HelpdeskError::RateLimited { retry_after: None }) => {
            Err(HelpdeskError::RateLimited { retry_after: reset })
        }
        other => other,
    }
}

/// Whether `err` is Intercom refusing a contact as a duplicate (`409`, code `conflict`).
fn is_conflict(err: &HelpdeskError) -> bool {
    matches!(err, HelpdeskError::Rejected { status, message }
        if *status == 409 || message.starts_with("conflict:") || message.contains("; conflict:"))
}

/// Where an agent opens conversation `id`: the web app of the API host's region.
fn conversation_url(base_url: &reqwest::Url, id: &str) -> String {
    let app = match base_url.host_str() {
        Some("api.eu.intercom.io") => "app.eu.intercom.com",
        Some("api.au.intercom.io") => "app.au.intercom.com",
        _ => "app.intercom.com",
    };
    format!("https://{app}/a/inbox/_/inbox/conversation/{id}")
}

/// Whether the conversation (as `GET /conversations/{id}` answers) is assigned to `assignee`.
fn is_assigned_to(conversation: &Value, assignee: &str) -> bool {
    [
        &conversation["admin_assignee_id"],
        &conversation["team_assignee_id"],
    ]
    .into_iter()
    .any(|id| id_of(id).as_deref() == Some(assignee))
}

/// Whether the conversation has a note carrying `marker`.
fn has_note(conversation: &Value, marker: &str) -> bool {
    conversation["conversation_parts"]["conversation_parts"]
        .as_array()
        .is_some_and(|parts| {
            parts.iter().any(|part| {
                part["part_type"] == "note"
                    && part["body"].as_str().is_some_and(|b| b.contains(marker))
            })
        })
}

impl IntercomHelpdesk {
    /// Errors: `base_url` is not an http(s) URL, `admin_id` or `assignee_id` is empty, or the
    /// HTTP client cannot be built.
    pub fn new(config: IntercomConfig) -> Result<Self, String> {
        let base_url = reqwest::Url::parse(config.base_url.trim())
            .map_err(|err| format!("{:?} is not a URL: {err}", config.base_url))?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(format!("{:?} is not an http(s) base URL", config.base_url));
        }
        if config.admin_id.trim().is_empty() {
            return Err("the Intercom admin id is empty".into());
        }
        if config
            .assignee_id
            .as_deref()
            .is_some_and(|a| a.trim().is_empty())
        {
            return Err("the Intercom assignee id is empty (leave it out instead)".into());
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(Self {
            http,
            base_url,
            config,
        })
    }

    /// The base URL with `segments` appended, each percent-encoded.
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base_url.clone();
        // Infallible: `new` refused cannot-be-a-base URLs.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A request with the auth, version and accept headers.
    fn request(&self, method: reqwest::Method, segments: &[&str]) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(segments))
            .bearer_auth(&self.config.access_token)
            .header("Intercom-Version", INTERCOM_VERSION)
            .header(reqwest::header::ACCEPT, "application/json")
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, HelpdeskError> {
        let response = request.send().await.map_err(helpdesk_transport_error)?;
        answer(response).await
    }

    /// Step 1: the id of the conversation whose first message carries `marker`, if search
    /// shows one.
    async fn find_conversation(&self, marker: &str) -> Result<Option<String>, HelpdeskError> {
        let query = json!({
            "query": {"field": "source.body", "operator": "=", "value": marker},
            "pagination": {"per_page": SEARCH_PAGE},
        });
        let body = self
            .send(
                self.request(reqwest::Method::POST, &["conversations", "search"])
                    .json(&query),
            )
            .await?;
        Ok(body["conversations"].as_array().and_then(|conversations| {
            conversations
                .iter()
                // Search matched a word; make sure it is this handoff's.
                .filter(|c| {
                    c["source"]["body"]
                        .as_str()
                        .is_some_and(|b| b.contains(marker))
                })
                .find_map(|c| id_of(&c["id"]))
        }))
    }

    /// The user whose `external_id` is `user_id`, if Intercom has one.
    async fn find_user(&self, user_id: &str) -> Result<Option<Contact>, HelpdeskError> {
        let found = self
            .send(self.request(
                reqwest::Method::GET,
                &["contacts", "find_by_external_id", user_id],
            ))
            .await;
        match found {
            Ok(contact) => Ok(id_of(&contact["id"]).map(|id| Contact {
                id,
                role: if contact["role"] == "lead" {
                    "lead"
                } else {
                    "user"
                },
            })),
            Err(HelpdeskError::Rejected { status: 404, .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `POST /contacts` for the visitor of `request`, with or without their email.
    async fn create_contact(
        &self,
        request: &TicketRequest,
        with_email: bool,
    ) -> Result<Contact, HelpdeskError> {
        let requester = &request.requester;
        let (role, mut body) = match &requester.user_id {
            Some(user_id) => ("user", json!({"role": "user", "external_id": user_id})),
            None => ("lead", json!({"role": "lead"})),
        };
        if let Some(name) = &requester.name {
            body["name"] = json!(name);
        }
        if let (true, Some(email)) = (with_email, &requester.email) {
            body["email"] = json!(email);
        }
        let contact = self
            .send(
                self.request(reqwest::Method::POST, &["contacts"])
                    .json(&body),
            )
            .await?;
        let id = id_of(&contact["id"]).ok_or_else(|| HelpdeskError::Rejected {
            status: 200,
            message: format!("no contact id in the answer: {contact}"),
        })?;
        Ok(Contact { id, role })
    }

    /// Step 2: the contact the conversation comes from.
    async fn contact(&self, request: &TicketRequest) -> Result<Contact, HelpdeskError> {
        let user_id = request.requester.user_id.as_deref();
        if let Some(user_id) = user_id
            && let Some(found) = self.find_user(user_id).await?
        {
            return Ok(found);
        }
        let conflict = match self.create_contact(request, true).await {
            Err(err) if is_conflict(&err) => err,
            other => return other,
        };
        // A concurrent attempt created the user between our lookup and our create.
        if let Some(user_id) = user_id
            && let Some(found) = self.find_user(user_id).await?
        {
            return Ok(found);
        }
        // Someone else's contact has this (unverified) email: never attach the handoff to it.
        if request.requester.email.is_some() {
            return self.create_contact(request, false).await;
        }
        Err(conflict)
    }

    /// Step 3: creates the conversation; its id.
    async fn create_conversation(
        &self,
        request: &TicketRequest,
        contact: &Contact,
    ) -> Result<String, HelpdeskError> {
        let body = json!({
            "from": {"type": contact.role, "id": contact.id},
            "body": conversation_body(request),
        });
        let message = self
            .send(
                self.request(reqwest::Method::POST, &["conversations"])
                    .json(&body),
            )
            .await?;
        id_of(&message["conversation_id"]).ok_or_else(|| HelpdeskError::Rejected {
            status: 200,
            message: format!("no conversation_id in the answer: {message}"),
        })
    }
}

#[async_trait::async_trait]
impl Helpdesk for IntercomHelpdesk {
    fn adapter_name(&self) -> &'static str {
        "intercom"
    }

    /// The visitor's follow-ups as an admin note: `POST /conversations/{id}/reply`
    /// `{message_type: "note", type: "admin", admin_id, body}` (wire-facts §3.3).
    async fn add_comment(
        &self,
        ticket_id: &str,
        comment: &crate::ports::helpdesk::TicketComment,
    ) -> Result<(), HelpdeskError> {
        let body = comment
            .body
            .split("\n\n")
            .map(|paragraph| format!("<p>{}</p>", escape(paragraph).replace('\n', "<br>")))
            .collect::<String>();
        let note = json!({
            "message_type": if comment.public { "comment" } else { "note" },
            "type": "admin",
            "admin_id": self.config.admin_id,
            "body": body,
        });
        self.send(
            self.request(
                reqwest::Method::POST,
                &["conversations", ticket_id, "reply"],
            )
            .json(&note),
        )
        .await
        .map(|_| ())
    }

    async fn create_ticket(&self, request: &TicketRequest) -> Result<TicketRef, HelpdeskError> {
        let marker = handoff_marker(&request.handoff_id);
        let conversation_id = match self.find_conversation(&marker).await? {
            Some(id) => {
                tracing::debug!(helpdesk = "intercom", conversation.id = %id,
                    "handoff conversation found; completing it");
                id
            }
            None => {
                let contact = self.contact(request).await?;
                self.create_conversation(request, &contact).await?
            }
        };
        let conversation = self
            .send(self.request(reqwest::Method::GET, &["conversations", &conversation_id]))
            .await?;
        if !has_note(&conversation, &marker) {
            let note = json!({
                "message_type": "note",
                "type": "admin",
                "admin_id": self.config.admin_id,
                "body": note_body(request),
            });
            self.send(
                self.request(
                    reqwest::Method::POST,
                    &["conversations", &conversation_id, "reply"],
                )
                .json(&note),
            )
            .await?;
        }
        if let Some(assignee) = &self.config.assignee_id
            && !is_assigned_to(&conversation, assignee)
        {
            let assignment = json!({
                "message_type": "assignment",
                "type": "admin",
                "admin_id": self.config.admin_id,
                "assignee_id": assignee,
            });
            self.send(
                self.request(
                    reqwest::Method::POST,
                    &["conversations", &conversation_id, "parts"],
                )
                .json(&assignment),
            )
            .await?;
        }
        Ok(TicketRef {
            url: Some(conversation_url(&self.base_url, &conversation_id)),
            id: conversation_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Priority;
    use crate::ports::helpdesk::Requester;

    fn request(body: &str) -> TicketRequest {
        TicketRequest {
            handoff_id: "1b4e28ba-2fa1-11d2-883f-0016d3cca427".into(),
            subject: "Refund".into(),
            body: body.into(),
            requester: Requester::default(),
            priority: Priority::Normal,
            tags: vec![],
            requested_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn reset_delay_is_the_reset_time_minus_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cases: &[(&str, Option<Duration>)] = &[
            ("1700000030", Some(Duration::from_secs(30))),
            (" 1700000001 ", Some(Duration::from_secs(1))),
            ("1700000000", Some(Duration::ZERO)),
            ("1699999990", Some(Duration::ZERO)), // passed: go now
            ("1700003600", Some(Duration::from_secs(3600))),
            ("1700003601", None),    // further than MAX_RESET_WAIT: not believed
            ("1700000030000", None), // milliseconds
            ("soon", None),
            ("", None),
            ("-5", None),
        ];
        for (value, expected) in cases {
            assert_eq!(reset_delay(value, now), *expected, "{value:?}");
        }
        // Sub-second precision: half a second before the reset is half a second of wait.
        let now = now + Duration::from_millis(29_500);
        assert_eq!(
            reset_delay("1700000030", now),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn error_messages_come_from_the_error_list_envelope() {
        let envelope = json!({"type": "error.list", "request_id": "r",
            "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]});
        assert_eq!(
            error_message(&envelope, ""),
            "unauthorized: Access Token Invalid"
        );
        let two = json!({"type": "error.list", "errors": [
            {"code": "parameter_invalid", "message": "Body is required", "field": "body"},
            {"code": "conflict", "message": "A contact matching those details already exists with id=1"}]});
        let message = error_message(&two, "");
        assert_eq!(
            message,
            "parameter_invalid: Body is required (field body); conflict: A contact matching \
             those details already exists with id=1"
        );
        assert!(is_conflict(&HelpdeskError::Rejected {
            status: 400,
            message
        }));
        assert_eq!(
            error_message(&Value::Null, "  <html>Bad gateway</html> "),
            "<html>Bad gateway</html>"
        );
    }

    #[test]
    fn ids_are_strings_or_numbers_and_zero_is_nobody() {
        assert_eq!(id_of(&json!("499")), Some("499".into()));
        assert_eq!(id_of(&json!(991267715)), Some("991267715".into()));
        for none in [json!(null), json!(""), json!("0"), json!(0), json!({})] {
            assert_eq!(id_of(&none), None, "{none}");
        }
        let conversation = json!({"admin_assignee_id": 991267715, "team_assignee_id": "5017691"});
        assert!(is_assigned_to(&conversation, "991267715"));
        assert!(is_assigned_to(&conversation, "5017691"));
        assert!(!is_assigned_to(&conversation, "7"));
    }

    #[test]
    fn the_marker_is_one_word_per_handoff() {
        let marker = handoff_marker("1b4e28ba-2fa1-11d2-883f-0016d3cca427");
        assert_eq!(marker, "frontdesk1b4e28ba2fa111d2883f0016d3cca427");
        assert_eq!(
            handoff_marker("1B4E28BA-2FA1-11D2-883F-0016D3CCA427"),
            marker
        );
        // Not a UUID: the bytes in hex, so "a-b" and "ab" stay apart.
        assert_eq!(handoff_marker("a-b"), "frontdesk612d62");
        assert_ne!(handoff_marker("ab"), handoff_marker("a-b"));
        assert!(marker.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn bodies_are_plain_text_for_the_message_and_escaped_html_for_the_note() {
        let request = request(
            "Summary: <b>locked</b> & \"out\"\nsince Monday\n\n\nTranscript:\r\nVisitor: it's me",
        );
        assert_eq!(
            conversation_body(&request),
            "Refund\n\nRef: frontdesk1b4e28ba2fa111d2883f0016d3cca427"
        );
        assert_eq!(
            note_body(&request),
            "<p>Summary: &lt;b&gt;locked&lt;/b&gt; &amp; &quot;out&quot;<br>since Monday</p>\
             <p>Transcript:<br>Visitor: it&#39;s me</p>\
             <p>Ref: frontdesk1b4e28ba2fa111d2883f0016d3cca427</p>"
        );
        assert_eq!(
            note_body(&self::request("")),
            "<p>Ref: frontdesk1b4e28ba2fa111d2883f0016d3cca427</p>"
        );
    }

    #[test]
    fn urls_encode_ids_and_follow_the_region() {
        let helpdesk = IntercomHelpdesk::new(IntercomConfig {
            base_url: "https://api.eu.intercom.io/".into(),
            access_token: "t".into(),
            admin_id: "1".into(),
            assignee_id: None,
            timeout: Duration::from_secs(1),
        })
        .expect("valid");
        assert_eq!(
            helpdesk
                .url(&["contacts", "find_by_external_id", "a/b c?"])
                .as_str(),
            "https://api.eu.intercom.io/contacts/find_by_external_id/a%2Fb%20c%3F"
        );
        assert_eq!(
            conversation_url(&helpdesk.base_url, "42"),
            "https://app.eu.intercom.com/a/inbox/_/inbox/conversation/42"
        );
        let us = reqwest::Url::parse("https://api.intercom.io").unwrap();
        assert_eq!(
            conversation_url(&us, "42"),
            "https://app.intercom.com/a/inbox/_/inbox/conversation/42"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let config = IntercomConfig {
            base_url: "https://api.intercom.io".into(),
            access_token: "t".into(),
            admin_id: "1".into(),
            assignee_id: None,
            timeout: Duration::from_secs(1),
        };
        assert!(IntercomHelpdesk::new(config.clone()).is_ok());
        for bad in [
            IntercomConfig {
                base_url: "api.intercom.io".into(),
                ..config.clone()
            },
            IntercomConfig {
                base_url: "mailto:x@y.z".into(),
                ..config.clone()
            },
            IntercomConfig {
                admin_id: " ".into(),
                ..config.clone()
            },
            IntercomConfig {
                assignee_id: Some(String::new()),
                ..config.clone()
            },
        ] {
            assert!(IntercomHelpdesk::new(bad.clone()).is_err(), "{bad:?}");
        }
    }
}
