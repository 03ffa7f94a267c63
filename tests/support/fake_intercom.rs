//! A local Intercom REST API that speaks the wire format of `../shared/docs/wire-facts.md` §3
//! (and of the API description it cites, `intercom/Intercom-OpenAPI` 2.13) and counts what the
//! helpdesk adapter leaves behind:
//!
//! - `Authorization: Bearer <TOKEN>` (`401` `error.list` "Access Token Invalid" otherwise) and
//!   `Intercom-Version` required on every request (`400` without it: stricter than Intercom,
//!   which falls back to the workspace's default version, so a request that forgets to pin the
//!   version fails here);
//! - contacts: `GET /contacts/find_by_external_id/{id}` (users only, as the API description
//!   says; `404 not_found` "User Not Found"), `POST /contacts` (24-hex ids; `409 conflict` "A
//!   contact matching those details already exists with id=…" for a taken `external_id` or a
//!   user's taken email; a lead with an `external_id` is refused, as Intercom's integrators
//!   report it is);
//! - conversations: `POST /conversations` (`404` for an unknown contact; answers the
//!   `user_message`, not the conversation), `POST /conversations/search` (`AND`/`OR` of
//!   `{field, operator, value}` on `id`, `contact_ids`, `source.body`, `source.author.id`,
//!   `source.author.type`; `source.body` is matched word by word, "against every element of the
//!   value separately", words being runs of letters and digits; an optional index lag hides
//!   conversations created less than the lag ago), `GET /conversations/{id}` (with
//!   `conversation_parts` and `admin_assignee_id` as a number), `POST /conversations/{id}/reply`
//!   (admin `note`/`comment`) and `POST /conversations/{id}/parts` (`assignment`); `admin_id` and
//!   `assignee_id` as numbers or strings;
//! - failures: `429` with an `error.list` body and `X-RateLimit-*` headers but no
//!   `Retry-After`, `500` with an HTML body, and crashes after a conversation or a note was
//!   stored but before the answer was sent.

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::http_fake::read;

pub const TOKEN: &str = "ic-token-123";
/// The admin the adapter acts as (notes, assignments).
pub const ADMIN_ID: &str = "991267593";
/// A teammate conversations can be assigned to.
pub const AGENT_ADMIN_ID: &str = "991267594";
/// A team conversations can be assigned to.
pub const TEAM_ID: &str = "5017691";
const WORKSPACE_ID: &str = "ecahpwf5";
/// Requests per 10-second slice (Intercom enforces per-minute limits in 10-second slices).
const RATE_LIMIT: u32 = 166;

/// A fault for the next requests (each is used once, in order), before normal behaviour.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `429` with an `error.list` body, `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset` in
    /// `seconds`; no `Retry-After`.
    RateLimited(u64),
    /// `500` with an HTML body.
    ServerError,
    /// Waits for `POST /conversations`: stores the conversation, then closes the connection
    /// without answering.
    CrashAfterCreate,
    /// Waits for `POST /conversations/{id}/reply`: stores the part, then closes without
    /// answering.
    CrashAfterNote,
    /// Waits for `GET /contacts/find_by_external_id/…`: answers `404` even if the user exists
    /// (another attempt created it just after this lookup).
    StaleContactLookup,
}

struct StoredConversation {
    json: Value,
    created: Instant,
    /// Searchable whatever the lag ([`FakeIntercom::catch_up_search_index`]).
    indexed: bool,
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    contacts: Vec<Value>,
    conversations: Vec<StoredConversation>,
    /// Conversations created less than this ago are not in search results.
    search_lag: Duration,
    /// The `Intercom-Version` of each request (`None`: absent).
    versions: Vec<Option<String>>,
    n_requests: usize,
    next_id: u64,
}

impl State {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn conversation_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.conversations
            .iter_mut()
            .map(|c| &mut c.json)
            .find(|c| c["id"] == id)
    }
}

/// A running fake.
pub struct FakeIntercom {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _server: crate::http_fake::Server,
}

impl FakeIntercom {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = crate::http_fake::spawn(move |socket, _addr| {
            let state = shared.clone();
            async move {
                let _ = serve(socket, state).await;
                Ok(())
            }
        })
        .await;
        Self {
            addr: server.addr,
            state,
            _server: server,
        }
    }

    /// `http://127.0.0.1:port` (the `https://api.intercom.io` of the real one).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push_fault(&self, fault: Fault) {
        self.state.lock().expect("lock").faults.push(fault);
    }

    /// Drops the faults not served yet.
    pub fn clear_faults(&self) {
        self.state.lock().expect("lock").faults.clear();
    }

    /// Search leaves out conversations created less than `lag` ago (Intercom's search index
    /// lagging behind its database). Default: none.
    pub fn set_search_lag(&self, lag: Duration) {
        self.state.lock().expect("lock").search_lag = lag;
    }

    /// The search index catches up: every conversation created so far is searchable.
    pub fn catch_up_search_index(&self) {
        for conversation in &mut self.state.lock().expect("lock").conversations {
            conversation.indexed = true;
        }
    }

    /// A user Intercom already knows (signed up before the handoff); its id.
    pub fn add_user(&self, external_id: &str, email: Option<&str>) -> String {
        let mut state = self.state.lock().expect("lock");
        let body = json!({"role": "user", "external_id": external_id, "email": email});
        let contact = new_contact(&mut state, &body);
        let id = contact["id"].as_str().unwrap_or_default().to_string();
        state.contacts.push(contact);
        id
    }

    /// The contacts so far (created here or added).
    pub fn contacts(&self) -> Vec<Value> {
        self.state.lock().expect("lock").contacts.clone()
    }

    /// The conversations so far, as `GET /conversations/{id}` shows them.
    pub fn conversations(&self) -> Vec<Value> {
        self.state
            .lock()
            .expect("lock")
            .conversations
            .iter()
            .map(|c| c.json.clone())
            .collect()
    }

    /// The note parts of conversation `conversation_id`.
    pub fn notes(&self, conversation_id: &str) -> Vec<Value> {
        self.parts(conversation_id, "note")
    }

    /// The assignment parts of conversation `conversation_id`.
    pub fn assignments(&self, conversation_id: &str) -> Vec<Value> {
        self.parts(conversation_id, "assignment")
    }

    fn parts(&self, conversation_id: &str, part_type: &str) -> Vec<Value> {
        self.conversations()
            .iter()
            .filter(|c| c["id"] == conversation_id)
            .flat_map(|c| {
                c["conversation_parts"]["conversation_parts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|part| part["part_type"] == part_type)
            .collect()
    }

    pub fn n_requests(&self) -> usize {
        self.state.lock().expect("lock").n_requests
    }

    /// The distinct `Intercom-Version` values received, in order of first use (`None`: a
    /// request without the header).
    pub fn versions_seen(&self) -> Vec<Option<String>> {
        let mut seen = Vec::new();
        for version in &self.state.lock().expect("lock").versions {
            if !seen.contains(version) {
                seen.push(version.clone());
            }
        }
        seen
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The `X-RateLimit-*` headers every answer carries.
fn rate_limit_headers(remaining: u32, reset_in: u64) -> String {
    format!(
        "x-ratelimit-limit: {RATE_LIMIT}\r\nx-ratelimit-remaining: {remaining}\r\nx-ratelimit-reset: {}\r\n",
        now_unix() + reset_in
    )
}

async fn respond(
    socket: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let headers = rate_limit_headers(RATE_LIMIT - 1, 10);
    crate::http_fake::respond(socket, status, content_type, &headers, &[], body).await
}

async fn respond_json(socket: &mut TcpStream, status: u16, body: &Value) -> std::io::Result<()> {
    respond(socket, status, "application/json", &body.to_string()).await
}

/// Intercom's error envelope.
fn error_list(code: &str, message: &str) -> Value {
    json!({
        "type": "error.list",
        "request_id": uuid::Uuid::new_v4().to_string(),
        "errors": [{"code": code, "message": message}],
    })
}

async fn respond_error(
    socket: &mut TcpStream,
    status: u16,
    code: &str,
    message: &str,
) -> std::io::Result<()> {
    respond_json(socket, status, &error_list(code, message)).await
}

/// An id sent as a string or a number.
fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn is_admin(value: &Value) -> bool {
    id_of(value).is_some_and(|id| id == ADMIN_ID || id == AGENT_ADMIN_ID)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Plain text as Intercom stores a message body: escaped HTML paragraphs.
fn to_html(text: &str) -> String {
    text.split("\n\n")
        .map(|p| {
            let escaped = p
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('\n', "<br>");
            format!("<p>{escaped}</p>")
        })
        .collect()
}

/// The words of a body as search sees them: tags dropped, runs of letters and digits,
/// lower-cased.
fn words(html: &str) -> Vec<String> {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn new_contact(state: &mut State, body: &Value) -> Value {
    let n = state.next_id();
    let now = now_unix();
    json!({
        "type": "contact",
        "id": format!("6762f0dd1bb69f9f{n:08x}"),
        "workspace_id": WORKSPACE_ID,
        "external_id": body["external_id"],
        "role": body["role"].as_str().unwrap_or("user"),
        "email": body["email"],
        "name": body["name"],
        "phone": null,
        "created_at": now,
        "updated_at": now,
        "signed_up_at": if body["role"] == "lead" { Value::Null } else { json!(now) },
        "custom_attributes": {},
    })
}

/// Whether `conversation` satisfies search query `node`; `Err` for a query this fake (or
/// Intercom) refuses.
fn matches(node: &Value, conversation: &Value, depth: usize) -> Result<bool, String> {
    let operator = node["operator"].as_str().unwrap_or("");
    if let Some(children) = node["value"].as_array().filter(|_| node["field"].is_null()) {
        if depth >= 2 {
            return Err("There's a limit of max 2 nested filters".into());
        }
        if children.len() > 15 {
            return Err("There's a limit of max 15 filters for each AND or OR group".into());
        }
        let results = children
            .iter()
            .map(|child| matches(child, conversation, depth + 1))
            .collect::<Result<Vec<bool>, String>>()?;
        return match operator {
            "AND" => Ok(results.iter().all(|r| *r)),
            "OR" => Ok(results.iter().any(|r| *r)),
            other => Err(format!("{other:?} is not AND or OR")),
        };
    }
    let field = node["field"].as_str().ok_or("a filter needs a field")?;
    let value = &node["value"];
    // The values a field holds; `source.body` holds its words.
    let held: Vec<String> = match field {
        "id" => id_of(&conversation["id"]).into_iter().collect(),
        "contact_ids" => conversation["contacts"]["contacts"]
            .as_array()
            .map(|cs| cs.iter().filter_map(|c| id_of(&c["id"])).collect())
            .unwrap_or_default(),
        "source.body" => words(conversation["source"]["body"].as_str().unwrap_or("")),
        "source.author.id" => id_of(&conversation["source"]["author"]["id"])
            .into_iter()
            .collect(),
        "source.author.type" => conversation["source"]["author"]["type"]
            .as_str()
            .map(str::to_string)
            .into_iter()
            .collect(),
        other => return Err(format!("this fake does not search on {other:?}")),
    };
    let fold = |s: &str| {
        if field == "source.body" {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let wanted = |v: &Value| id_of(v).map(|s| fold(&s)).ok_or("a filter needs a value");
    Ok(match operator {
        "=" => {
            let v = wanted(value)?;
            held.contains(&v)
        }
        "!=" => {
            let v = wanted(value)?;
            !held.contains(&v)
        }
        "~" => {
            let v = wanted(value)?;
            held.iter().any(|h| h.contains(&v))
        }
        "!~" => {
            let v = wanted(value)?;
            !held.iter().any(|h| h.contains(&v))
        }
        "IN" | "NIN" => {
            let list = value.as_array().ok_or("IN and NIN take an array")?;
            let list: Vec<String> = list
                .iter()
                .filter_map(|v| id_of(v).map(|s| fold(&s)))
                .collect();
            let any = held.iter().any(|h| list.contains(h));
            if operator == "IN" { any } else { !any }
        }
        other => return Err(format!("this fake does not support operator {other:?}")),
    })
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let Some(request) = read(&mut socket).await? else {
        return Ok(());
    };
    let path = request
        .path
        .split_once('?')
        .map_or(request.path.as_str(), |(p, _)| p)
        .to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = request.method.as_str();
    let is_create = method == "POST" && segments == ["conversations"];
    let is_reply = method == "POST" && segments.len() == 3 && segments[2] == "reply";
    let is_lookup = method == "GET" && segments.starts_with(&["contacts", "find_by_external_id"]);
    let fault = {
        let mut state = state.lock().expect("lock");
        state.n_requests += 1;
        let version = request.headers.get("intercom-version").cloned();
        state.versions.push(version);
        match state.faults.first() {
            None => None,
            Some(Fault::CrashAfterCreate) if !is_create => None,
            Some(Fault::CrashAfterNote) if !is_reply => None,
            Some(Fault::StaleContactLookup) if !is_lookup => None,
            Some(_) => Some(state.faults.remove(0)),
        }
    };
    match fault {
        Some(Fault::RateLimited(seconds)) => {
            let body = error_list(
                "rate_limit_exceeded",
                "You have exceeded the rate limit. Please try again later.",
            );
            let headers = rate_limit_headers(0, seconds);
            return crate::http_fake::respond(
                &mut socket,
                429,
                "application/json",
                &headers,
                &[],
                &body.to_string(),
            )
            .await;
        }
        Some(Fault::ServerError) => {
            return respond(
                &mut socket,
                500,
                "text/html",
                "<html><body><h1>We're sorry, but something went wrong.</h1></body></html>",
            )
            .await;
        }
        _ => {}
    }
    if request.headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}"))
    {
        return respond_error(&mut socket, 401, "unauthorized", "Access Token Invalid").await;
    }
    match request.headers.get("intercom-version").map(String::as_str) {
        None => {
            return respond_error(
                &mut socket,
                400,
                "intercom_version_missing",
                "This fake requires the Intercom-Version header",
            )
            .await;
        }
        Some(version) if !valid_version(version) => {
            return respond_error(
                &mut socket,
                400,
                "intercom_version_invalid",
                &format!("The requested version {version:?} could not be found"),
            )
            .await;
        }
        Some(_) => {}
    }
    let body = &request.body;
    match (method, segments.as_slice()) {
        ("GET", ["contacts", "find_by_external_id", external_id]) => {
            let external_id = percent_decode(external_id);
            let found = state
                .lock()
                .expect("lock")
                .contacts
                .iter()
                .find(|c| c["external_id"] == external_id.as_str() && c["role"] == "user")
                .cloned();
            match found {
                Some(contact) if fault != Some(Fault::StaleContactLookup) => {
                    respond_json(&mut socket, 200, &contact).await
                }
                _ => respond_error(&mut socket, 404, "not_found", "User Not Found").await,
            }
        }
        ("POST", ["contacts"]) => {
            let role = body["role"].as_str().unwrap_or("user");
            if !matches!(role, "user" | "lead") {
                return respond_error(
                    &mut socket,
                    400,
                    "parameter_invalid",
                    "role must be user or lead",
                )
                .await;
            }
            if body["email"].is_null() && body["external_id"].is_null() && body["role"].is_null() {
                return respond_error(
                    &mut socket,
                    400,
                    "parameter_not_found",
                    "At least one of email, external_id or role is required",
                )
                .await;
            }
            if role == "lead" && !body["external_id"].is_null() {
                return respond_error(
                    &mut socket,
                    400,
                    "parameter_invalid",
                    "External ID cannot be set for a lead",
                )
                .await;
            }
            let answer = {
                let mut state = state.lock().expect("lock");
                let taken = state.contacts.iter().find(|c| {
                    (!body["external_id"].is_null() && c["external_id"] == body["external_id"])
                        || (role == "user"
                            && c["role"] == "user"
                            && !body["email"].is_null()
                            && c["email"] == body["email"])
                });
                match taken {
                    Some(existing) => Err(existing["id"].as_str().unwrap_or("").to_string()),
                    None => {
                        let contact = new_contact(&mut state, body);
                        state.contacts.push(contact.clone());
                        Ok(contact)
                    }
                }
            };
            match answer {
                Ok(contact) => respond_json(&mut socket, 200, &contact).await,
                Err(existing) => {
                    let message = format!(
                        "A contact matching those details already exists with id={existing}"
                    );
                    respond_error(&mut socket, 409, "conflict", &message).await
                }
            }
        }
        ("POST", ["conversations"]) => {
            let from_type = body["from"]["type"].as_str().unwrap_or("");
            if !matches!(from_type, "user" | "lead" | "contact") {
                return respond_error(
                    &mut socket,
                    400,
                    "parameter_invalid",
                    "from.type must be user, lead or contact",
                )
                .await;
            }
            let text = body["body"].as_str().unwrap_or("");
            if text.trim().is_empty() {
                return respond_error(&mut socket, 400, "parameter_not_found", "Body is required")
                    .await;
            }
            let message = {
                let mut state = state.lock().expect("lock");
                let contact = id_of(&body["from"]["id"]).and_then(|id| {
                    state
                        .contacts
                        .iter()
                        .find(|c| c["id"] == id.as_str())
                        .cloned()
                });
                contact.map(|contact| {
                    let n = state.next_id();
                    let conversation_id = (215_000_000 + n).to_string();
                    let message_id = (403_918_000 + n).to_string();
                    let now = now_unix();
                    let conversation = json!({
                        "type": "conversation",
                        "id": conversation_id,
                        "title": null,
                        "created_at": now,
                        "updated_at": now,
                        "waiting_since": now,
                        "snoozed_until": null,
                        "source": {
                            "type": "conversation",
                            "id": message_id,
                            "delivered_as": "customer_initiated",
                            "subject": "",
                            "body": to_html(text),
                            "author": {"type": contact["role"], "id": contact["id"],
                                       "name": contact["name"], "email": contact["email"]},
                            "attachments": [],
                            "url": null,
                            "redacted": false,
                        },
                        "contacts": {"type": "contact.list", "contacts": [
                            {"type": "contact", "id": contact["id"], "external_id": contact["external_id"]}]},
                        "teammates": null,
                        "admin_assignee_id": null,
                        "team_assignee_id": null,
                        "open": true,
                        "state": "open",
                        "read": false,
                        "tags": {"type": "tag.list", "tags": []},
                        "priority": "not_priority",
                        "conversation_parts": {"type": "conversation_part.list",
                                               "conversation_parts": [], "total_count": 0},
                    });
                    state.conversations.push(StoredConversation {
                        json: conversation,
                        created: Instant::now(),
                        indexed: false,
                    });
                    json!({"type": "user_message", "id": message_id, "created_at": now,
                           "body": text, "message_type": "inapp",
                           "conversation_id": conversation_id})
                })
            };
            let Some(message) = message else {
                return respond_error(&mut socket, 404, "not_found", "User Not Found").await;
            };
            if fault == Some(Fault::CrashAfterCreate) {
                // Stored; the answer never leaves.
                return socket.shutdown().await;
            }
            respond_json(&mut socket, 200, &message).await
        }
        ("POST", ["conversations", "search"]) => {
            if !body["query"].is_object() {
                return respond_error(&mut socket, 400, "parameter_not_found", "query is required")
                    .await;
            }
            let per_page = body["pagination"]["per_page"]
                .as_u64()
                .unwrap_or(20)
                .clamp(1, 150) as usize;
            let found: Result<Vec<Value>, String> = (|| {
                let state = state.lock().expect("lock");
                let mut found = Vec::new();
                for stored in &state.conversations {
                    if !stored.indexed && stored.created.elapsed() < state.search_lag {
                        continue; // not indexed yet
                    }
                    if matches(&body["query"], &stored.json, 0)? {
                        let mut listed = stored.json.clone();
                        // Search lists conversations without their parts.
                        if let Some(o) = listed.as_object_mut() {
                            o.remove("conversation_parts");
                        }
                        found.push(listed);
                    }
                }
                Ok(found)
            })();
            match found {
                Ok(found) => {
                    let total = found.len();
                    let page: Vec<Value> = found.into_iter().take(per_page).collect();
                    let answer = json!({
                        "type": "conversation.list",
                        "pages": {"type": "pages", "page": 1, "per_page": per_page,
                                  "total_pages": total.div_ceil(per_page)},
                        "total_count": total,
                        "conversations": page,
                    });
                    respond_json(&mut socket, 200, &answer).await
                }
                Err(message) => {
                    respond_error(&mut socket, 400, "parameter_invalid", &message).await
                }
            }
        }
        ("GET", ["conversations", id]) => {
            let conversation = state
                .lock()
                .expect("lock")
                .conversation_mut(id)
                .map(|c| c.clone());
            match conversation {
                Some(conversation) => respond_json(&mut socket, 200, &conversation).await,
                None => respond_error(&mut socket, 404, "not_found", "Resource Not Found").await,
            }
        }
        ("POST", ["conversations", id, "reply"]) => {
            if body["type"] != "admin" {
                return respond_error(
                    &mut socket,
                    400,
                    "parameter_invalid",
                    "this fake takes admin replies only",
                )
                .await;
            }
            let message_type = body["message_type"].as_str().unwrap_or("");
            if !matches!(message_type, "note" | "comment") {
                return respond_error(
                    &mut socket,
                    400,
                    "parameter_invalid",
                    "message_type must be comment or note",
                )
                .await;
            }
            if !is_admin(&body["admin_id"]) {
                return respond_error(&mut socket, 400, "parameter_invalid", "Admin not found")
                    .await;
            }
            let text = body["body"].as_str().unwrap_or("");
            if text.trim().is_empty() {
                return respond_error(
                    &mut socket,
                    400,
                    "parameter_not_found",
                    "Body is required for comment and note message types",
                )
                .await;
            }
            let part = json!({
                "type": "conversation_part",
                "part_type": message_type,
                "body": text,
                "author": {"type": "admin", "id": id_of(&body["admin_id"])},
                "attachments": [],
                "redacted": false,
            });
            let answer = add_part(&state, id, part, |_| {});
            let Some(answer) = answer else {
                return respond_error(&mut socket, 404, "not_found", "Resource Not Found").await;
            };
            if fault == Some(Fault::CrashAfterNote) {
                return socket.shutdown().await;
            }
            respond_json(&mut socket, 200, &answer).await
        }
        ("POST", ["conversations", id, "parts"]) => {
            if body["message_type"] != "assignment" {
                return respond_error(
                    &mut socket,
                    400,
                    "parameter_invalid",
                    "this fake takes assignments only",
                )
                .await;
            }
            if !matches!(body["type"].as_str(), Some("admin" | "team")) {
                return respond_error(
                    &mut socket,
                    400,
                    "parameter_invalid",
                    "type must be admin or team",
                )
                .await;
            }
            if !is_admin(&body["admin_id"]) {
                return respond_error(&mut socket, 400, "parameter_invalid", "Admin not found")
                    .await;
            }
            let assignee = id_of(&body["assignee_id"]).unwrap_or_default();
            let (kind, number) = match assignee.parse::<u64>() {
                Ok(n) if assignee == AGENT_ADMIN_ID || assignee == ADMIN_ID => ("admin", n),
                Ok(n) if assignee == TEAM_ID => ("team", n),
                Ok(0) => ("nobody", 0),
                _ => {
                    return respond_error(
                        &mut socket,
                        400,
                        "parameter_invalid",
                        "Assignee not found",
                    )
                    .await;
                }
            };
            let part = json!({
                "type": "conversation_part",
                "part_type": "assignment",
                "body": body["body"],
                "assigned_to": if kind == "nobody" { Value::Null }
                               else { json!({"type": kind, "id": assignee}) },
                "author": {"type": "admin", "id": id_of(&body["admin_id"])},
                "attachments": [],
                "redacted": false,
            });
            let answer = add_part(&state, id, part, |conversation| match kind {
                "admin" => conversation["admin_assignee_id"] = json!(number),
                "team" => conversation["team_assignee_id"] = json!(number),
                _ => {
                    conversation["admin_assignee_id"] = Value::Null;
                    conversation["team_assignee_id"] = Value::Null;
                }
            });
            match answer {
                Some(answer) => respond_json(&mut socket, 200, &answer).await,
                None => respond_error(&mut socket, 404, "not_found", "Resource Not Found").await,
            }
        }
        _ => respond_error(&mut socket, 404, "not_found", "Resource Not Found").await,
    }
}

/// Appends `part` to conversation `id` and applies `change`; the conversation, or `None` if
/// there is no such conversation.
fn add_part(
    state: &Mutex<State>,
    id: &str,
    mut part: Value,
    change: impl FnOnce(&mut Value),
) -> Option<Value> {
    let mut state = state.lock().expect("lock");
    let part_id = state.next_id().to_string();
    let conversation = state.conversation_mut(id)?;
    let now = now_unix();
    part["id"] = json!(part_id);
    part["created_at"] = json!(now);
    part["updated_at"] = json!(now);
    part["notified_at"] = json!(now);
    change(conversation);
    conversation["updated_at"] = json!(now);
    let parts = &mut conversation["conversation_parts"];
    if let Some(list) = parts["conversation_parts"].as_array_mut() {
        list.push(part);
        let total = list.len();
        parts["total_count"] = json!(total);
    }
    Some(conversation.clone())
}

/// `Intercom-Version` values the API description lists (`1.0`…`2.17`, `Unstable`).
fn valid_version(version: &str) -> bool {
    if version == "Unstable" {
        return true;
    }
    match version.split_once('.') {
        Some(("1", minor)) => minor.parse::<u32>().is_ok_and(|m| m <= 4),
        Some(("2", minor)) => minor.parse::<u32>().is_ok_and(|m| m <= 17),
        _ => false,
    }
}
