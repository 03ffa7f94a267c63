//! Helpdesk webhooks in: `POST /v1/webhooks/zendesk`, `POST /v1/webhooks/freshdesk` and
//! `POST /v1/webhooks/intercom` (`PROTOCOL.md`, "Helpdesk webhooks"; the bodies to paste into a
//! Zendesk trigger and a Freshdesk automation are in the README; Intercom sends its own
//! `notification_event` envelope, wire-facts §3.6). An agent's public reply reaches the visitor's
//! widget; a solved ticket closes the conversation and asks for a rating.
//!
//! Authenticity (`../shared/docs/wire-facts.md` §1.7, §2.6): Zendesk signs each delivery
//! (base64 HMAC-SHA256 of timestamp + body with the webhook's signing secret; deliveries more
//! than 5 minutes from now are refused, and a repeated `x-zendesk-webhook-invocation-id` is
//! acknowledged without effect); Freshdesk signs nothing, so its automation sends our shared
//! secret in `X-Frontdesk-Secret`; Intercom signs the raw body (`X-Hub-Signature: sha1=`, HMAC-SHA1
//! with the app's client secret) and delivers at least once, so notification ids are
//! deduplicated. Without a configured secret the route refuses everything.
//! Updates written by Frontdesk's own API user are ignored (no echo loops).

use crate::api::webhook_auth::{
    WebhookAuthError, verify_intercom, verify_shared_secret, verify_zendesk,
};
use crate::api::wire::ErrorCode;
use crate::api::{AppState, error_reply, http_error};
use crate::config::HelpdeskSettings;
use crate::engine::inbox::{TicketUpdate, TicketUpdateOutcome};
use crate::engine::triage::IncomingTicket;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// How long a Zendesk invocation id is remembered (longer than the 5-minute signature window).
pub const REPLAY_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The JSON body our Zendesk trigger and Freshdesk automation send (placeholders filled in by
/// the helpdesk). Every field but `ticket_id` may be empty.
#[cfg(test)]
mod tests {
    #[test]
    fn intercom_html_bodies_become_plain_lines() {
        assert_eq!(
            super::html_to_text(
                "<p>Hi Ana,</p><p>I've refunded it &amp; you'll see it <b>soon</b>.</p>"
            ),
            "Hi Ana,\nI've refunded it & you'll see it soon."
        );
        assert_eq!(
            super::html_to_text("line one<br>line two"),
            "line one\nline two"
        );
        assert_eq!(super::html_to_text("<script>x</script>"), "x");
    }
}

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
    /// `ticket_created` for a new ticket from another channel (the trigger on ticket
    /// creation), else an update of one of Frontdesk's tickets.
    #[serde(default)]
    event: String,
    /// New tickets: `{{ticket.title}}`, `{{ticket.description}}`, `{{ticket.tags}}` (a
    /// space-separated string, or a JSON array).
    #[serde(default)]
    subject: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: serde_json::Value,
}

fn tag_list(tags: &serde_json::Value) -> Vec<String> {
    match tags {
        serde_json::Value::String(text) => text.split_whitespace().map(str::to_string).collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
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
    let secret = if helpdesk == "intercom" {
        "client_secret"
    } else {
        "webhook_secret"
    };
    http_error(
        ErrorCode::NotFound,
        format!(
            "the {helpdesk} webhook is not configured: set helpdesk.kind = \"{helpdesk}\" and helpdesk.{helpdesk}.{secret}"
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
    // The invocation id is not signed: a captured delivery replayed under a new id is caught
    // by its signature (timestamp + body), which is.
    let signed = format!(
        "sig:{}",
        header(&request, "x-zendesk-webhook-signature").unwrap_or_default()
    );
    let invocation = format!("zendesk:{invocation}");
    let signed = format!("zendesk:{signed}");
    match first_delivery(&state, &invocation).await {
        Ok(true) => {}
        Ok(false) => return HttpResponse::Ok().json(json!({ "outcome": "duplicate" })),
        Err(response) => return response,
    }
    match first_delivery(&state, &signed).await {
        Ok(true) => {}
        Ok(false) => {
            forget_delivery(&state, &invocation).await;
            return HttpResponse::Ok().json(json!({ "outcome": "duplicate" }));
        }
        Err(response) => {
            forget_delivery(&state, &invocation).await;
            return response;
        }
    }
    let response = relay(&state, "zendesk", &body, Some(email)).await;
    if response.status().is_server_error() {
        forget_delivery(&state, &invocation).await;
        forget_delivery(&state, &signed).await;
    }
    response
}

/// Whether this delivery is new (remembered in the store for [`REPLAY_WINDOW`], so on every
/// instance); a store failure answers 503 and the helpdesk retries.
async fn first_delivery(state: &AppState, key: &str) -> Result<bool, HttpResponse> {
    state
        .engine
        .ports()
        .store
        .first_delivery(key, REPLAY_WINDOW)
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "webhook delivery not checked: the store failed");
            http_error(
                ErrorCode::UpstreamUnavailable,
                "cannot record the delivery right now; retry",
                None,
            )
        })
}

async fn forget_delivery(state: &AppState, key: &str) {
    if let Err(err) = state.engine.ports().store.forget_delivery(key).await {
        tracing::warn!(error = %err, "a failed webhook delivery could not be forgotten; its retry may be ignored");
    }
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
    if verify_shared_secret(secret.expose(), received).is_err() {
        tracing::warn!("freshdesk webhook refused: wrong X-Frontdesk-Secret");
        return http_error(
            ErrorCode::Unauthorized,
            "the X-Frontdesk-Secret header does not match helpdesk.freshdesk.webhook_secret",
            None,
        );
    }
    relay(&state, "freshdesk", &body, None).await
}

/// `POST /v1/webhooks/intercom`: `conversation.admin.replied` relays the admin's reply,
/// `conversation.admin.closed` closes the conversation; other topics (`ping`, notes,
/// assignments) are acknowledged without effect.
pub async fn intercom(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let HelpdeskSettings::Intercom {
        client_secret: Some(secret),
        admin_id,
        ..
    } = &state.helpdesk
    else {
        return not_configured("intercom");
    };
    let signature = match header(&request, "x-hub-signature") {
        Ok(signature) => signature,
        Err(err) => return unauthorized(&err),
    };
    if let Err(err) = verify_intercom(secret.expose(), &body, signature) {
        return unauthorized(&err);
    }
    let notification: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(json) => json,
        Err(err) => {
            return http_error(
                ErrorCode::BadRequest,
                format!("not an Intercom notification_event: {err}"),
                None,
            );
        }
    };
    let topic = notification["topic"].as_str().unwrap_or_default();
    let item = &notification["data"]["item"];
    let solved = topic == "conversation.admin.closed";
    if topic != "conversation.admin.replied" && !solved {
        return HttpResponse::Ok().json(json!({ "outcome": "nothing_to_do" }));
    }
    let notification_id = notification["id"].as_str().unwrap_or_default().to_string();
    let delivery = format!("intercom:{notification_id}");
    if !notification_id.is_empty() {
        match first_delivery(&state, &delivery).await {
            Ok(true) => {}
            Ok(false) => return HttpResponse::Ok().json(json!({ "outcome": "duplicate" })),
            Err(response) => return response,
        }
    }
    let conversation_id = match &item["id"] {
        serde_json::Value::String(id) => id.clone(),
        serde_json::Value::Number(id) => id.to_string(),
        _ => String::new(),
    };
    // The newest part is the reply (or the close, which may carry a message).
    let part = item["conversation_parts"]["conversation_parts"]
        .as_array()
        .and_then(|parts| parts.last())
        .cloned()
        .unwrap_or_default();
    let author = &part["author"];
    let author_id = match &author["id"] {
        serde_json::Value::String(id) => id.clone(),
        serde_json::Value::Number(id) => id.to_string(),
        _ => String::new(),
    };
    if author_id == *admin_id && !solved {
        return HttpResponse::Ok().json(json!({ "outcome": "own_update" }));
    }
    let reply = part["body"].as_str().map(html_to_text).unwrap_or_default();
    let update = TicketUpdate {
        helpdesk: "intercom",
        ticket_id: conversation_id,
        public_reply: Some(reply),
        author_name: author["name"].as_str().map(str::to_string),
        solved,
    };
    let response = outcome_response(state.engine.relay_ticket_update(update).await);
    if response.status().is_server_error() && !notification_id.is_empty() {
        forget_delivery(&state, &delivery).await;
    }
    response
}

/// The text of an Intercom HTML body (`<p>Hi</p><p>There</p>` → `Hi\nThere`).
fn html_to_text(html: &str) -> String {
    let spaced = html
        .replace("<br>", "\n")
        .replace("<br/>", "\n")
        .replace("<br />", "\n")
        .replace("</p>", "</p>\n");
    let fragment = scraper::Html::parse_fragment(&spaced);
    fragment
        .root_element()
        .text()
        .collect::<String>()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn outcome_response(
    result: Result<TicketUpdateOutcome, crate::engine::EngineError>,
) -> HttpResponse {
    match result {
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
    if webhook.event.trim() == "ticket_created" {
        let tags = tag_list(&webhook.tags);
        // Frontdesk's own handoff tickets carry the `frontdesk` tag (and are indexed); a
        // ticket triaged already carries `frontdesk-triaged`.
        if tags.iter().any(|tag| tag == "frontdesk-triaged") {
            return HttpResponse::Ok().json(json!({ "outcome": "duplicate" }));
        }
        let ours = tags.iter().any(|tag| tag == "frontdesk")
            || matches!(
                state
                    .engine
                    .ports()
                    .store
                    .ticket_conversation(helpdesk, &ticket_id)
                    .await,
                Ok(Some(_))
            );
        if ours {
            return HttpResponse::Ok().json(json!({ "outcome": "own_ticket" }));
        }
        // Once per ticket, however often the helpdesk delivers it (on every instance).
        let delivery = format!("triage:{helpdesk}:{ticket_id}");
        match state
            .engine
            .ports()
            .store
            .first_delivery(&delivery, Duration::from_secs(24 * 3600))
            .await
        {
            Ok(true) => {}
            Ok(false) => return HttpResponse::Ok().json(json!({ "outcome": "duplicate" })),
            Err(err) => return outcome_response(Err(err.into())),
        }
        let ticket = IncomingTicket {
            helpdesk,
            ticket_id,
            subject: webhook.subject,
            description: webhook.description,
            tags,
        };
        return match state.engine.triage_ticket(ticket).await {
            Ok(outcome) => HttpResponse::Ok().json(json!({
                "outcome": "triaged",
                "decision": outcome.decision,
                "priority": outcome.triage.priority.as_str(),
                "tags": outcome.triage.tags,
            })),
            Err(err) => {
                // Not triaged: the helpdesk's retry must be taken.
                forget_delivery(state, &delivery).await;
                outcome_response(Err(err))
            }
        };
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
    outcome_response(state.engine.relay_ticket_update(update).await)
}
