//! The built-in inbox over HTTP: `GET /inbox` (the agents' page) and its JSON API under
//! `/v1/inbox` (`PROTOCOL.md`, "Inbox API"). Every API call but sign-in takes
//! `Authorization: Bearer <token>` from `POST /v1/inbox/session`; no cookies, so no CSRF.

// Helpers return the error response to send as their `Err`; handlers return it at once, so its
// size does not matter.
#![allow(clippy::result_large_err)]

use crate::api::wire::{ErrorCode, timestamp};
use crate::api::{AppState, error_reply, http_error};
use crate::domain::{EventKind, HandoffTicket, PendingHandoff, StoredEvent};
use crate::engine::inbox::{Agent, AgentAction};
use crate::ids::{ConversationId, SiteId};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

const PAGE: &str = include_str!("inbox.html");

/// `GET /inbox`.
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline' 'self'; frame-ancestors 'none'",
        ))
        .body(PAGE)
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    agent: String,
    password: String,
}

/// `POST /v1/inbox/session` `{agent, password}` → `{token, agent: {id, name}, expires_at}`.
pub async fn sign_in(state: web::Data<AppState>, body: web::Json<SignIn>) -> HttpResponse {
    // Argon2 takes tens of milliseconds of CPU and ~19 MiB: off the async workers, and only a
    // few at once (a flood of wrong passwords gets 429, not the server's memory).
    let Some(permit) = state.engine.inbox_accounts().password_check_permit() else {
        return http_error(
            ErrorCode::RateLimited,
            "too many sign-in attempts at once; try again in a second",
            Some(std::time::Duration::from_secs(1)),
        );
    };
    let (agent, password) = (body.agent.clone(), body.password.clone());
    let engine = state.engine.clone();
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        engine.inbox_accounts().sign_in(&agent, &password)
    })
    .await;
    match result {
        Ok(Ok(session)) => HttpResponse::Ok().json(json!({
            "token": session.token,
            "agent": { "id": session.agent.id, "name": session.agent.name },
            "expires_at": timestamp(session.expires_at),
        })),
        Ok(Err(err)) => http_error(ErrorCode::Unauthorized, err.to_string(), None),
        Err(_) => http_error(ErrorCode::Internal, "sign-in failed", None),
    }
}

/// The agent of the request's bearer token, or the 401 to answer. Handlers then mark the agent
/// online (`Engine::agent_seen`): an agent counts as available for automatic assignment while
/// their inbox page is open.
fn agent(state: &AppState, request: &HttpRequest) -> Result<Agent, HttpResponse> {
    let token = request
        .headers()
        .get("Authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .unwrap_or("");
    state
        .engine
        .inbox_accounts()
        .verify(token.trim())
        .map_err(|err| http_error(ErrorCode::Unauthorized, err.to_string(), None))
}

fn engine_error(err: &crate::engine::EngineError) -> HttpResponse {
    let (code, message, retry_after_ms) = error_reply(err);
    http_error(
        code,
        message,
        retry_after_ms.map(std::time::Duration::from_millis),
    )
}

fn ticket_json(ticket: Option<&HandoffTicket>) -> Value {
    ticket.map_or(
        Value::Null,
        |ticket| json!({ "helpdesk": ticket.helpdesk, "id": ticket.id, "url": ticket.url }),
    )
}

fn reasons(handoff: Option<&PendingHandoff>) -> Vec<&'static str> {
    handoff.map_or_else(Vec::new, |handoff| {
        handoff
            .reasons
            .iter()
            .map(|reason| reason.as_str())
            .collect()
    })
}

/// `GET /v1/inbox/queue` → `{items: [...]}`.
pub async fn queue(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    match agent(&state, &request) {
        Ok(agent) => state.engine.agent_seen(&agent).await,
        Err(response) => return response,
    }
    match state.engine.inbox_queue().await {
        Ok(items) => {
            let items: Vec<Value> = items
                .iter()
                .map(|item| {
                    let conversation = &item.conversation;
                    json!({
                        "site": conversation.site.as_str(),
                        "conversation_id": conversation.id.to_string(),
                        "status": conversation.status.as_str(),
                        "assignee": conversation.assignee,
                        "requested_at": item.handoff.as_ref().map(|h| timestamp(h.requested_at)),
                        "reasons": reasons(item.handoff.as_ref()),
                        "team": item.team,
                        "has_draft": item.handoff.as_ref().is_some_and(|h| h.draft.is_some()),
                        "preview": item.preview,
                        "position": item.position,
                        "ticket": ticket_json(item.ticket.as_ref()),
                    })
                })
                .collect();
            HttpResponse::Ok().json(json!({ "items": items }))
        }
        Err(err) => engine_error(&err),
    }
}

fn ids(path: &(String, String)) -> Result<(SiteId, ConversationId), HttpResponse> {
    let site = SiteId::parse(&path.0)
        .map_err(|err| http_error(ErrorCode::NotFound, err.to_string(), None))?;
    let id = ConversationId::parse(&path.1)
        .map_err(|err| http_error(ErrorCode::NotFound, err.to_string(), None))?;
    Ok((site, id))
}

fn event_json(event: &StoredEvent) -> Option<Value> {
    let sources = |cited: &[crate::domain::Citation]| -> Vec<Value> {
        cited
            .iter()
            .map(|c| json!({ "title": c.title, "url": c.url }))
            .collect()
    };
    let (kind, text, author, cited) = match &event.kind {
        EventKind::VisitorMessage { text, .. } => ("visitor", text.clone(), None, Vec::new()),
        EventKind::AssistantAnswer {
            text, sources: s, ..
        } => ("assistant", text.clone(), None, sources(s)),
        EventKind::AgentMessage {
            agent_name, text, ..
        } => ("agent", text.clone(), Some(agent_name.clone()), Vec::new()),
        EventKind::InternalNote {
            agent_name, text, ..
        } => ("note", text.clone(), Some(agent_name.clone()), Vec::new()),
        EventKind::Handoff { message, .. } => ("handoff", message.clone(), None, Vec::new()),
        EventKind::ConversationClosed { .. } => (
            "closed",
            "Conversation closed".to_string(),
            None,
            Vec::new(),
        ),
    };
    Some(json!({
        "event_id": event.event_id.get(),
        "created_at": timestamp(event.created_at),
        "kind": kind,
        "text": text,
        "author": author,
        "sources": cited,
    }))
}

/// `GET /v1/inbox/conversations/{site}/{id}`.
pub async fn conversation(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    match agent(&state, &request) {
        Ok(agent) => state.engine.agent_seen(&agent).await,
        Err(response) => return response,
    }
    let (site, id) = match ids(&path) {
        Ok(ids) => ids,
        Err(response) => return response,
    };
    let shown = match state.engine.inbox_conversation(&site, &id).await {
        Ok(shown) => shown,
        Err(err) => return engine_error(&err),
    };
    let conversation = &shown.conversation;
    let handoff = shown.handoff.as_ref().map(|handoff| {
        json!({
            "handoff_id": handoff.handoff_id.to_string(),
            "reasons": reasons(Some(handoff)),
            "team": shown.team,
            "requested_at": timestamp(handoff.requested_at),
            "draft": handoff.draft.as_ref().map(|draft| json!({
                "text": draft.text,
                "sources": draft.citations.iter()
                    .map(|c| json!({ "title": c.title, "url": c.url }))
                    .collect::<Vec<_>>(),
            })),
            "analysis": handoff.analysis.as_ref().map(|analysis| json!({
                "category": analysis.category,
                "priority": analysis.priority.as_str(),
                "language": analysis.language,
            })),
        })
    });
    HttpResponse::Ok().json(json!({
        "site": conversation.site.as_str(),
        "conversation_id": conversation.id.to_string(),
        "status": conversation.status.as_str(),
        "assignee": conversation.assignee,
        "visitor": {
            "user_id": conversation.user_id,
            "email": conversation.contact_email.as_ref().map(|e| e.as_str().to_string()),
            "page_url": conversation.page_url,
            "locale": conversation.locale,
        },
        "handoff": handoff,
        "ticket": ticket_json(shown.ticket.as_ref()),
        "events": shown.events.iter().filter_map(event_json).collect::<Vec<_>>(),
    }))
}

#[derive(Debug, Deserialize, Default)]
pub struct ActionBody {
    #[serde(default)]
    text: Option<String>,
    /// `claim` only: take the conversation from the agent who has it.
    #[serde(default)]
    take_over: bool,
    /// `assign` only: the agent id to give the conversation to.
    #[serde(default)]
    agent: Option<String>,
}

/// `POST /v1/inbox/conversations/{site}/{id}/{claim|reply|note|approve|reject|close}`.
pub async fn action(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let agent = match agent(&state, &request) {
        Ok(agent) => agent,
        Err(response) => return response,
    };
    state.engine.agent_seen(&agent).await;
    let (site, id) = match ids(&(path.0.clone(), path.1.clone())) {
        Ok(ids) => ids,
        Err(response) => return response,
    };
    // An empty body is `{}`; anything else must be the action's JSON.
    let body: ActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(err) => {
                return http_error(
                    ErrorCode::BadRequest,
                    format!("the body is not the JSON this action takes ({err})"),
                    None,
                );
            }
        }
    };
    let (text, take_over, to) = (body.text, body.take_over, body.agent);
    let needs_text = |text: Option<String>| {
        text.ok_or_else(|| http_error(ErrorCode::BadRequest, "this action needs \"text\"", None))
    };
    let action = match path.2.as_str() {
        "claim" => AgentAction::Claim { take_over },
        "assign" => match to {
            Some(to) => AgentAction::Assign(to),
            None => {
                return http_error(
                    ErrorCode::BadRequest,
                    "assign needs \"agent\": the id of the agent to give it to",
                    None,
                );
            }
        },
        "reply" => match needs_text(text) {
            Ok(text) => AgentAction::Reply(text),
            Err(response) => return response,
        },
        "note" => match needs_text(text) {
            Ok(text) => AgentAction::Note(text),
            Err(response) => return response,
        },
        "approve" => match needs_text(text) {
            Ok(text) => AgentAction::ApproveDraft(text),
            Err(response) => return response,
        },
        "reject" => AgentAction::RejectDraft,
        "close" => AgentAction::Close,
        other => {
            return http_error(
                ErrorCode::NotFound,
                format!(
                    "no inbox action {other:?} (claim, assign, reply, note, approve, reject, close)"
                ),
                None,
            );
        }
    };
    match state.engine.agent_action(&agent, &site, &id, action).await {
        Ok(()) => HttpResponse::Ok().json(json!({ "ok": true })),
        Err(err) => engine_error(&err),
    }
}
