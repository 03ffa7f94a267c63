//! Helpdesk webhooks in: `POST /v1/webhooks/zendesk` and `POST /v1/webhooks/freshdesk`
//! (`PROTOCOL.md`, "Helpdesk webhooks"; the bodies to paste into a Zendesk trigger and a
//! Freshdesk automation are in the README). An agent's public reply reaches the visitor's
//! widget; a solved ticket closes the conversation and asks for a rating.
//!
//! Authenticity (`../shared/docs/wire-facts.md` §1.7, §2.6): Zendesk signs each delivery
//! (base64 HMAC-SHA256 of timestamp + body with the webhook's signing secret; deliveries more
//! than 5 minutes from now are refused, and a repeated `x-zendesk-webhook-invocation-id` is
//! acknowledged without effect); Freshdesk signs nothing, so its automation sends our shared
//! secret in `X-Frontdesk-Secret`. Without a configured secret the route refuses everything.
//! Updates written by Frontdesk's own API user are ignored (no echo loops).

use crate::api::webhook_auth::{
    ReplayGuard, WebhookAuthError, verify_shared_secret, verify_zendesk,
};
use crate::api::wire::ErrorCode;
use crate::api::{AppState, error_reply, http_error};
use crate::config::HelpdeskSettings;
use crate::engine::inbox::{TicketUpdate, TicketUpdateOutcome};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// How long a Zendesk invocation id is remembered (longer than the 5-minute signature window).
pub const REPLAY_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The JSON body our Zendesk trigger and Freshdesk automation send (placeholders filled in by
/// the helpdesk). Every field but `ticket_id` may be empty.
#[derive(Debug, Deserialize)]
pub struct TicketWebhook {
    /// Zendesk `{{ticket.id}}`, Freshdesk `{{ticket.id}}` (a string or a number).
    ticket_id: serde_json::Value,
    /// `{{ticket.status}}` (`Solved`, `Closed`, `Resolved` close the conversation).
    #[serde(default)]
    status: String,
    /// The latest public comment (Zendesk `{{ticket.latest_public_comment}}`, Freshdesk
    /// `{{ticket.latest_public_comment}}`).
    #[serde(default)]
    comment: String,
    /// Who made the update (Zendesk `{{current_user.name}}`, Freshdesk `{{ticket.agent.name}}`).
    #[serde(default)]
    author_name: String,
    /// Their email (Zendesk `{{current_user.email}}`): Frontdesk's own API user is ignored.
    #[serde(default)]
    author_email: String,
}

fn header<'a>(request: &'a HttpRequest, name: &'static str) -> Result<&'a str, WebhookAuthError> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .ok_or(WebhookAuthError::MissingHeader(name))
}

fn unauthorized(err: &WebhookAuthError) -> HttpResponse {
    tracing::warn!(error = %err, "webhook refused");
    http_error(ErrorCode::Unauthorized, err.to_string(), None)
}

fn not_configured(helpdesk: &str) -> HttpResponse {
    http_error(
        ErrorCode::NotFound,
        format!(
            "the {helpdesk} webhook is not configured: set helpdesk.kind = \"{helpdesk}\" and helpdesk.{helpdesk}.webhook_secret"
        ),
        None,
    )
}

/// `POST /v1/webhooks/zendesk`.
pub async fn zendesk(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let HelpdeskSettings::Zendesk {
        webhook_secret: Some(secret),
        email,
        ..
    } = &state.helpdesk
    else {
        return not_configured("zendesk");
    };
    let verified = (|| {
        let timestamp = header(&request, "x-zendesk-webhook-signature-timestamp")?;
        let signature = header(&request, "x-zendesk-webhook-signature")?;
        verify_zendesk(
            secret.expose(),
            timestamp,
            &body,
            signature,
            time::OffsetDateTime::now_utc(),
        )?;
        header(&request, "x-zendesk-webhook-invocation-id").map(str::to_string)
    })();
    let invocation = match verified {
        Ok(invocation) => invocation,
        Err(err) => return unauthorized(&err),
    };
    if state.webhook_replays.first_time(&invocation).is_err() {
        return HttpResponse::Ok().json(json!({ "outcome": "duplicate" }));
    }
    let response = relay(&state, "zendesk", &body, Some(email)).await;
    if response.status().is_server_error() {
        state.webhook_replays.forget(&invocation);
    }
    response
}

/// `POST /v1/webhooks/freshdesk`.
pub async fn freshdesk(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let HelpdeskSettings::Freshdesk {
        webhook_secret: Some(secret),
        ..
    } = &state.helpdesk
    else {
        return not_configured("freshdesk");
    };
    let received = match header(&request, "x-frontdesk-secret") {
        Ok(received) => received,
        Err(err) => return unauthorized(&err),
    };
    if let Err(err) = verify_shared_secret(secret.expose(), received) {
        return unauthorized(&err);
    }
    relay(&state, "freshdesk", &body, None).await
}

async fn relay(
    state: &AppState,
    helpdesk: &'static str,
    body: &[u8],
    api_user_email: Option<&String>,
) -> HttpResponse {
    let webhook: TicketWebhook = match serde_json::from_slice(body) {
        Ok(webhook) => webhook,
        Err(err) => {
            return http_error(
                ErrorCode::BadRequest,
                format!("the body is not the webhook JSON the README gives ({err})"),
                None,
            );
        }
    };
    let ticket_id = match &webhook.ticket_id {
        serde_json::Value::String(id) if !id.trim().is_empty() => id.trim().to_string(),
        serde_json::Value::Number(id) => id.to_string(),
        _ => {
            return http_error(
                ErrorCode::BadRequest,
                "\"ticket_id\" must be the ticket's id",
                None,
            );
        }
    };
    if api_user_email.is_some_and(|ours| {
        !webhook.author_email.is_empty() && ours.eq_ignore_ascii_case(webhook.author_email.trim())
    }) {
        return HttpResponse::Ok().json(json!({ "outcome": "own_update" }));
    }
    let solved = matches!(
        webhook.status.trim().to_ascii_lowercase().as_str(),
        "solved" | "closed" | "resolved"
    );
    let update = TicketUpdate {
        helpdesk,
        ticket_id,
        public_reply: Some(webhook.comment),
        author_name: Some(webhook.author_name),
        solved,
    };
    match state.engine.relay_ticket_update(update).await {
        Ok(outcome) => HttpResponse::Ok().json(json!({
            "outcome": match outcome {
                TicketUpdateOutcome::Relayed => "relayed",
                TicketUpdateOutcome::UnknownTicket => "unknown_ticket",
                TicketUpdateOutcome::NothingToDo => "nothing_to_do",
            }
        })),
        Err(err) => {
            let (code, message, retry_after_ms) = error_reply(&err);
            // A 5xx makes the helpdesk retry the delivery later: nothing is lost.
            http_error(code, message, retry_after_ms.map(Duration::from_millis))
        }
    }
}

/// The replay guard of Zendesk invocation ids (per instance).
pub fn replay_guard() -> ReplayGuard {
    ReplayGuard::new(REPLAY_WINDOW)
}
