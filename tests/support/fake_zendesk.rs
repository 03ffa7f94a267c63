//! A local Zendesk Support API that speaks the wire format of `../shared/docs/wire-facts.md` §1
//! and counts tickets: `POST /api/v2/tickets` (Basic `{email}/token` auth, `201` + `Location` +
//! `{"ticket": …}`, `Idempotency-Key` replayed with `x-idempotency-lookup: hit` or refused with
//! `400 IdempotentRequestError` for another body), `GET /api/v2/tickets?external_id=…`, and the
//! failures: `429` with a text/plain body and `Retry-After`, `500`, `422 RecordInvalid`, and a
//! crash after the ticket was created but before the answer was sent. Keys can be expired (the
//! 2-hour lifetime passing).

use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::http_fake::read;

/// Headers every answer of the real service carries (wire-facts).
const VENDOR_HEADERS: &str = "x-rate-limit: 700\r\nx-rate-limit-remaining: 699\r\n";

async fn respond(
    socket: &mut TcpStream,
    status: u16,
    content_type: &str,
    extra: &[(&str, String)],
    body: &str,
) -> std::io::Result<()> {
    crate::http_fake::respond(socket, status, content_type, VENDOR_HEADERS, extra, body).await
}

pub const EMAIL: &str = "bot@acme.example";
pub const TOKEN: &str = "zd-token-123";

/// A fault for the next requests (each is used once, in order), before normal behaviour.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `429` with a text/plain body and `Retry-After: seconds`.
    RateLimited(u64),
    /// `500` with an HTML body.
    ServerError,
    /// Create the ticket, then close the connection without answering.
    CrashAfterCreate,
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    tickets: Vec<Value>,
    /// Idempotency-Key → (request body, response body).
    keys: HashMap<String, (Value, Value)>,
    n_requests: usize,
}

/// A running fake.
pub struct FakeZendesk {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _server: crate::http_fake::Server,
}

impl FakeZendesk {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = crate::http_fake::spawn(move |socket, addr| {
            let state = shared.clone();
            async move {
                let _ = serve(socket, addr, state).await;
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

    /// `http://127.0.0.1:port` (the `https://{subdomain}.zendesk.com` of the real one).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A ticket that arrived through another channel (email): not Frontdesk's. Returns its id.
    pub fn add_ticket(&self, subject: &str, description: &str, tags: &[&str]) -> u64 {
        let mut state = self.state.lock().expect("lock");
        let id = state.tickets.len() as u64 + 1;
        state.tickets.push(json!({
            "id": id, "subject": subject, "description": description, "tags": tags,
            "priority": null, "status": "new", "via": {"channel": "email"},
            "comments": [{"body": description, "public": true}],
        }));
        id
    }

    /// Drops the faults not served yet (the helpdesk recovers).
    pub fn clear_faults(&self) {
        self.state.lock().expect("lock").faults.clear();
    }

    pub fn push_fault(&self, fault: Fault) {
        self.state.lock().expect("lock").faults.push(fault);
    }

    /// The tickets created so far.
    pub fn tickets(&self) -> Vec<Value> {
        self.state.lock().expect("lock").tickets.clone()
    }

    pub fn n_requests(&self) -> usize {
        self.state.lock().expect("lock").n_requests
    }

    /// Forgets every idempotency key, as two hours passing does.
    pub fn expire_keys(&self) {
        self.state.lock().expect("lock").keys.clear();
    }
}

fn basic_ok(headers: &HashMap<String, String>) -> bool {
    use base64::Engine;
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}/token:{TOKEN}"));
    headers.get("authorization").map(String::as_str) == Some(&format!("Basic {expected}"))
}

async fn serve(
    mut socket: TcpStream,
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let Some(request) = read(&mut socket).await? else {
        return Ok(());
    };
    let is_create = request.method == "POST" && request.path.starts_with("/api/v2/tickets");
    let fault = {
        let mut state = state.lock().expect("lock");
        state.n_requests += 1;
        match state.faults.first() {
            None => None,
            // A crash after a create waits for a create.
            Some(Fault::CrashAfterCreate) if !is_create => None,
            Some(_) => Some(state.faults.remove(0)),
        }
    };
    match fault {
        Some(Fault::RateLimited(seconds)) => {
            return respond(
                &mut socket,
                429,
                "text/plain",
                &[("retry-after", seconds.to_string())],
                "Number of allowed API requests per minute exceeded",
            )
            .await;
        }
        Some(Fault::ServerError) => {
            return respond(
                &mut socket,
                500,
                "text/html",
                &[],
                "<html>Internal Server Error</html>",
            )
            .await;
        }
        _ => {}
    }
    if !basic_ok(&request.headers) {
        let body = json!({"error": "Couldn't authenticate you"}).to_string();
        return respond(&mut socket, 401, "application/json", &[], &body).await;
    }
    let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
    let path = path.trim_end_matches(".json");
    match (request.method.as_str(), path) {
        ("GET", "/api/v2/tickets") => {
            let external_id = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("external_id="))
                .unwrap_or("");
            let tickets: Vec<Value> = state
                .lock()
                .expect("lock")
                .tickets
                .iter()
                .filter(|t| !external_id.is_empty() && t["external_id"] == external_id)
                .cloned()
                .collect();
            let body = json!({"tickets": tickets, "count": tickets.len(), "next_page": null, "previous_page": null});
            respond(&mut socket, 200, "application/json", &[], &body.to_string()).await
        }
        ("POST", "/api/v2/tickets") => {
            let ticket = &request.body["ticket"];
            if ticket["comment"]["body"].as_str().unwrap_or("").is_empty() {
                let body = json!({"error": "RecordInvalid", "description": "Record validation errors",
                                  "details": {"description": [{"description": "Description: cannot be blank", "error": "BlankValue"}]}});
                return respond(&mut socket, 422, "application/json", &[], &body.to_string()).await;
            }
            let key = request.headers.get("idempotency-key").cloned();
            // Ok(new ticket) | Err(Some(replayed answer)) | Err(None): the key was used with
            // another body.
            let created: Result<Value, Option<Value>> = {
                let mut state = state.lock().expect("lock");
                match key.as_ref().and_then(|key| state.keys.get(key)) {
                    Some((sent, _)) if *sent != request.body => Err(None),
                    Some((_, answer)) => Err(Some(answer.clone())),
                    None => {
                        let id = state.tickets.len() as u64 + 1;
                        let mut stored = ticket.clone();
                        stored["id"] = json!(id);
                        stored["url"] = json!(format!("http://{addr}/api/v2/tickets/{id}.json"));
                        stored["status"] = json!("new");
                        state.tickets.push(stored.clone());
                        let answer = json!({"ticket": stored});
                        if let Some(key) = &key {
                            state
                                .keys
                                .insert(key.clone(), (request.body.clone(), answer.clone()));
                        }
                        Ok(answer)
                    }
                }
            };
            if created == Err(None) {
                let body = json!({"error": "IdempotentRequestError", "description": "Request parameters do not match the original request"});
                return respond(&mut socket, 400, "application/json", &[], &body.to_string()).await;
            }
            let created = created.map_err(|replayed| replayed.unwrap_or_default());
            match created {
                Ok(answer) => {
                    if fault == Some(Fault::CrashAfterCreate) {
                        // Accepted and stored; the answer never leaves.
                        return socket.shutdown().await;
                    }
                    let id = answer["ticket"]["id"].clone();
                    let mut extra = vec![(
                        "location",
                        format!("http://{addr}/api/v2/tickets/{id}.json"),
                    )];
                    if key.is_some() {
                        extra.push(("x-idempotency-lookup", "miss".to_string()));
                    }
                    respond(
                        &mut socket,
                        201,
                        "application/json",
                        &extra,
                        &answer.to_string(),
                    )
                    .await
                }
                Err(replayed) => {
                    let id = replayed["ticket"]["id"].clone();
                    let extra = vec![
                        (
                            "location",
                            format!("http://{addr}/api/v2/tickets/{id}.json"),
                        ),
                        ("x-idempotency-lookup", "hit".to_string()),
                    ];
                    respond(
                        &mut socket,
                        201,
                        "application/json",
                        &extra,
                        &replayed.to_string(),
                    )
                    .await
                }
            }
        }
        ("PUT", path) if path.starts_with("/api/v2/tickets/") => {
            // Update (wire-facts §1.2): `{"ticket": {...}}`; a `comment` is appended (§1.3).
            let id: u64 = path["/api/v2/tickets/".len()..].parse().unwrap_or(0);
            let update = &request.body["ticket"];
            if let Some(priority) = update.get("priority")
                && !matches!(
                    priority.as_str(),
                    Some("low" | "normal" | "high" | "urgent")
                )
            {
                let body = json!({"error": "RecordInvalid", "description": "Record validation errors",
                                  "details": {"priority": [{"description": "Priority: is invalid", "error": "InvalidValue"}]}});
                return respond(&mut socket, 422, "application/json", &[], &body.to_string()).await;
            }
            let answer = {
                let mut state = state.lock().expect("lock");
                state
                    .tickets
                    .iter_mut()
                    .find(|t| t["id"] == id)
                    .map(|ticket| {
                        for field in ["priority", "tags", "group_id", "status"] {
                            if let Some(value) = update.get(field) {
                                ticket[field] = value.clone();
                            }
                        }
                        if let Some(comment) = update.get("comment") {
                            let mut comments =
                                ticket["comments"].as_array().cloned().unwrap_or_default();
                            comments.push(comment.clone());
                            ticket["comments"] = json!(comments);
                        }
                        json!({"ticket": ticket.clone(), "audit": {"events": []}})
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
                    let body =
                        json!({"error": "RecordNotFound", "description": "Not found"}).to_string();
                    respond(&mut socket, 404, "application/json", &[], &body).await
                }
            }
        }
        _ => {
            let body = json!({"error": "InvalidEndpoint", "description": "Not found"}).to_string();
            respond(&mut socket, 404, "application/json", &[], &body).await
        }
    }
}
