//! A local Freshdesk API v2 that speaks the wire format of `../shared/docs/wire-facts.md` §2 and
//! counts tickets: Basic auth with the API key as user name, `POST /api/v2/tickets` (the ticket
//! object itself, a requester field mandatory, integer status / priority / source codes
//! validated, `201` with the ticket), `GET /api/v2/tickets` (a JSON array, newest first,
//! filtered by `email` or `updated_since`, paged by `per_page`/`page`), `400 Validation failed`
//! with its `errors`, `429` with `Retry-After`, `500`, and a crash after a create. No
//! idempotency: a repeated create makes a second ticket, as the real one does.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::http_fake::read;

/// Headers every answer of the real service carries (wire-facts).
const VENDOR_HEADERS: &str = "x-ratelimit-total: 200\r\nx-ratelimit-remaining: 199\r\nx-ratelimit-used-currentrequest: 1\r\nx-freshdesk-api-version: latest=v2; requested=v2\r\n";

async fn respond(
    socket: &mut TcpStream,
    status: u16,
    content_type: &str,
    extra: &[(&str, String)],
    body: &str,
) -> std::io::Result<()> {
    crate::http_fake::respond(socket, status, content_type, VENDOR_HEADERS, extra, body).await
}

pub const API_KEY: &str = "fd-api-key-123";

/// A fault for the next requests (each used once, in order).
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    RateLimited(u64),
    ServerError,
    /// Create the ticket, then close the connection without answering (waits for a create).
    CrashAfterCreate,
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    tickets: Vec<Value>,
    n_requests: usize,
}

pub struct FakeFreshdesk {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _server: crate::http_fake::Server,
}

impl FakeFreshdesk {
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

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push_fault(&self, fault: Fault) {
        self.state.lock().expect("lock").faults.push(fault);
    }

    pub fn tickets(&self) -> Vec<Value> {
        self.state.lock().expect("lock").tickets.clone()
    }

    /// A ticket that arrived through another channel (email): not Frontdesk's. Returns its id.
    pub fn add_ticket(&self, subject: &str, description: &str, tags: &[&str]) -> u64 {
        let mut state = self.state.lock().expect("lock");
        let id = state.tickets.len() as u64 + 1;
        state.tickets.push(
            json!({"id": id, "subject": subject, "description": description, "tags": tags,
                                  "status": 2, "priority": 1, "source": 1, "requester_id": 1,
                                  "created_at": now(), "updated_at": now()}),
        );
        id
    }

    /// Adds `n` unrelated tickets (a busy helpdesk), created now.
    pub fn add_other_tickets(&self, n: usize) {
        let mut state = self.state.lock().expect("lock");
        for _ in 0..n {
            let id = state.tickets.len() as u64 + 1;
            state.tickets.push(json!({"id": id, "subject": "other", "tags": [], "status": 2, "priority": 1,
                                      "source": 1, "requester_id": 1, "created_at": now(), "updated_at": now()}));
        }
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

/// Basic auth with the API key as the user name (any password).
fn basic_ok(headers: &HashMap<String, String>) -> bool {
    use base64::Engine;
    let Some(encoded) = headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    String::from_utf8_lossy(&decoded)
        .split_once(':')
        .map(|(user, _)| user)
        == Some(API_KEY)
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn validation(field: &str, message: &str, code: &str) -> String {
    json!({"description": "Validation failed", "errors": [{"field": field, "message": message, "code": code}]}).to_string()
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let Some(request) = read(&mut socket).await? else {
        return Ok(());
    };
    let is_create = request.method == "POST";
    let fault = {
        let mut state = state.lock().expect("lock");
        state.n_requests += 1;
        match state.faults.first() {
            None => None,
            Some(Fault::CrashAfterCreate) if !is_create => None,
            Some(_) => Some(state.faults.remove(0)),
        }
    };
    match fault {
        Some(Fault::RateLimited(seconds)) => {
            let body = json!({"description": "You have exceeded the limit of requests per minute"})
                .to_string();
            return respond(
                &mut socket,
                429,
                "application/json",
                &[("retry-after", seconds.to_string())],
                &body,
            )
            .await;
        }
        Some(Fault::ServerError) => {
            return respond(
                &mut socket,
                500,
                "text/html",
                &[],
                "<html>We're sorry, but something went wrong.</html>",
            )
            .await;
        }
        _ => {}
    }
    if !basic_ok(&request.headers) {
        let body = json!({"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}).to_string();
        return respond(&mut socket, 401, "application/json", &[], &body).await;
    }
    let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
    match (request.method.as_str(), path) {
        ("GET", "/api/v2/tickets") => {
            let email = query_param(query, "email").map(|e| e.replace("%40", "@"));
            let since = query_param(query, "updated_since")
                .map(|s| s.replace("%3A", ":").replace("%2B", "+"));
            let per_page: usize = query_param(query, "per_page")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30)
                .min(100);
            let page: usize = query_param(query, "page")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1)
                .max(1);
            let tickets = state.lock().expect("lock").tickets.clone();
            let mut listed: Vec<Value> = tickets
                .into_iter()
                .filter(|t| {
                    email
                        .as_ref()
                        .is_none_or(|e| t["email"].as_str() == Some(e.as_str()))
                })
                .filter(|t| {
                    since
                        .as_ref()
                        .is_none_or(|s| t["updated_at"].as_str().is_some_and(|u| u >= s.as_str()))
                })
                .collect();
            listed.reverse(); // newest first
            let page: Vec<Value> = listed
                .into_iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .collect();
            respond(
                &mut socket,
                200,
                "application/json",
                &[],
                &Value::Array(page).to_string(),
            )
            .await
        }
        ("POST", "/api/v2/tickets") => {
            let t = &request.body;
            let has_requester = [
                "requester_id",
                "email",
                "phone",
                "facebook_id",
                "twitter_id",
                "unique_external_id",
            ]
            .iter()
            .any(|k| !t[*k].is_null());
            if !has_requester {
                let body = validation(
                    "requester_id",
                    "Please fill at least 1 of email, mobile, phone, twitter_id, fb_profile_id, unique_external_id fields",
                    "missing_field",
                );
                return respond(&mut socket, 400, "application/json", &[], &body).await;
            }
            if !t["unique_external_id"].is_null() && t["email"].is_null() && t["name"].is_null() {
                let body = validation("name", "It should be a/an String", "missing_field");
                return respond(&mut socket, 400, "application/json", &[], &body).await;
            }
            for (field, allowed) in [
                ("priority", &[1, 2, 3, 4][..]),
                ("status", &[2, 3, 4, 5][..]),
                ("source", &[1, 2, 3, 7, 9, 10][..]),
            ] {
                if !t[field].as_i64().is_some_and(|v| allowed.contains(&v)) {
                    let body = validation(
                        field,
                        &format!("It should be one of these values: '{allowed:?}'"),
                        "invalid_value",
                    );
                    return respond(&mut socket, 400, "application/json", &[], &body).await;
                }
            }
            let created = {
                let mut state = state.lock().expect("lock");
                let id = state.tickets.len() as u64 + 1;
                let mut ticket = t.clone();
                ticket["id"] = json!(id);
                ticket["requester_id"] = json!(1000 + id);
                ticket["created_at"] = json!(now());
                ticket["updated_at"] = json!(now());
                ticket["description_text"] = ticket["description"].clone();
                state.tickets.push(ticket.clone());
                ticket
            };
            if fault == Some(Fault::CrashAfterCreate) {
                return socket.shutdown().await;
            }
            respond(
                &mut socket,
                201,
                "application/json",
                &[],
                &created.to_string(),
            )
            .await
        }
        ("PUT", path) if path.starts_with("/api/v2/tickets/") => {
            // Update (wire-facts §2.2 codes): priority 1–4, tags, group_id.
            let id: u64 = path["/api/v2/tickets/".len()..].parse().unwrap_or(0);
            if let Some(priority) = request.body.get("priority")
                && !matches!(priority.as_u64(), Some(1..=4))
            {
                let body = validation(
                    "priority",
                    "It should be one of these values: '1,2,3,4'",
                    "invalid_value",
                );
                return respond(&mut socket, 400, "application/json", &[], &body).await;
            }
            let answer = {
                let mut state = state.lock().expect("lock");
                state
                    .tickets
                    .iter_mut()
                    .find(|t| t["id"] == id)
                    .map(|ticket| {
                        for field in ["priority", "tags", "group_id", "status"] {
                            if let Some(value) = request.body.get(field) {
                                ticket[field] = value.clone();
                            }
                        }
                        ticket.clone()
                    })
            };
            match answer {
                Some(answer) => {
                    respond(
                        &mut socket,
                        200,
                        "application/json",
                        &[],
                        &answer.to_string(),
                    )
                    .await
                }
                None => {
                    let body = json!({"description": "not found"}).to_string();
                    respond(&mut socket, 404, "application/json", &[], &body).await
                }
            }
        }
        ("POST", path)
            if path.starts_with("/api/v2/tickets/")
                && (path.ends_with("/notes") || path.ends_with("/reply")) =>
        {
            // Notes and replies (wire-facts §2.3): `private` defaults to true for notes.
            let rest = &path["/api/v2/tickets/".len()..];
            let (id, kind) = rest.split_once('/').unwrap_or((rest, ""));
            let id: u64 = id.parse().unwrap_or(0);
            if request.body["body"].as_str().unwrap_or("").is_empty() {
                let body = validation("body", "It should not be blank", "missing_field");
                return respond(&mut socket, 400, "application/json", &[], &body).await;
            }
            let private = kind == "notes" && request.body["private"].as_bool().unwrap_or(true);
            let added = {
                let mut state = state.lock().expect("lock");
                state.tickets.iter_mut().find(|t| t["id"] == id).map(|ticket| {
                    let conversation = json!({"id": id * 100 + 1, "body": request.body["body"], "private": private,
                                              "source": if kind == "notes" { 2 } else { 0 }, "ticket_id": id, "created_at": now()});
                    let mut conversations =
                        ticket["conversations"].as_array().cloned().unwrap_or_default();
                    conversations.push(conversation.clone());
                    ticket["conversations"] = json!(conversations);
                    conversation
                })
            };
            match added {
                Some(conversation) => {
                    respond(
                        &mut socket,
                        201,
                        "application/json",
                        &[],
                        &conversation.to_string(),
                    )
                    .await
                }
                None => {
                    let body = json!({"description": "not found"}).to_string();
                    respond(&mut socket, 404, "application/json", &[], &body).await
                }
            }
        }
        _ => {
            respond(
                &mut socket,
                404,
                "application/json",
                &[],
                &json!({"description": "not found"}).to_string(),
            )
            .await
        }
    }
}
