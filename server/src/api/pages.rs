//! The plain HTTP routes: demo page, widget script, health and readiness.

use crate::api::AppState;
use crate::api::wire::ErrorCode;
use actix_web::{HttpResponse, web};

/// The widget's launcher (`widget/dist/widget.min.js`, built by `npm run build` in `widget/`
/// and committed), compiled in: what the script tag loads.
pub const WIDGET_JS: &str = include_str!("../../../widget/dist/widget.min.js");

/// The widget's chat panel, one bundle per language (`widget/dist/chat-<lang>.min.js`), loaded
/// by the launcher from `/widget.js?part=chat&lang=<lang>&v=<build hash>` when the visitor
/// opens the widget (or has a conversation to resume).
pub const WIDGET_CHAT_JS: [(&str, &str); 4] = [
    ("en", include_str!("../../../widget/dist/chat-en.min.js")),
    ("es", include_str!("../../../widget/dist/chat-es.min.js")),
    ("fr", include_str!("../../../widget/dist/chat-fr.min.js")),
    ("de", include_str!("../../../widget/dist/chat-de.min.js")),
];

/// The chat bundle for `lang` (English for any other value).
pub fn widget_chat_js(lang: Option<&str>) -> &'static str {
    let [(_, english), ..] = WIDGET_CHAT_JS;
    WIDGET_CHAT_JS
        .iter()
        .find(|(code, _)| Some(*code) == lang)
        .map_or(english, |(_, script)| script)
}

/// The query of `/widget.js`: `part=chat` selects the chat panel in `lang`; `v` is the build
/// hash the launcher asks for (it makes the URL change with every build, so it can be cached).
#[derive(Debug, Default, serde::Deserialize)]
pub struct WidgetQuery {
    part: Option<String>,
    lang: Option<String>,
    v: Option<String>,
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /`: a demo page with the widget's script tag.
pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    let key = html_escape(&state.demo_site_key);
    let page = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Frontdesk demo</title>
<style>
  body {{ font-family: system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5; color: #1f2328; }}
  code {{ background: #f6f8fa; padding: 0.1rem 0.3rem; border-radius: 4px; }}
</style>
</head>
<body>
<h1>Frontdesk demo</h1>
<p>This page embeds the Frontdesk widget with one script tag. Ask it about the demo help center
(Lumen Lamps): resetting a password, refunds, shipping times, a lamp that won't connect to Wi-Fi…
Answers stream from the knowledge base with their sources; ask for a person at any time.</p>
<p>The tag on this page:</p>
<pre><code>&lt;script src="/widget.js" data-site-key="{key}" async&gt;&lt;/script&gt;</code></pre>
<script src="/widget.js" data-site-key="{key}" async></script>
</body>
</html>
"#
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page)
}

/// `GET /widget.js`: the launcher; `?part=chat&lang=…` the chat panel. The launcher is cached
/// for 5 minutes (a deploy reaches every page within that); a chat bundle asked for by build
/// hash (`v`) for a day.
pub async fn widget_js(query: Option<web::Query<WidgetQuery>>) -> HttpResponse {
    let query = query.map(web::Query::into_inner).unwrap_or_default();
    let (body, cache) = if query.part.as_deref() == Some("chat") {
        let cache = if query.v.is_some() {
            "public, max-age=86400"
        } else {
            "public, max-age=300"
        };
        (widget_chat_js(query.lang.as_deref()), cache)
    } else {
        (WIDGET_JS, "public, max-age=300")
    };
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header(("Cache-Control", cache))
        .body(body)
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: the store and the retriever answer. 200 when every required part is up,
/// else 503; the body lists every part and the degraded ones.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let readiness = state.engine.readiness().await;
    let parts: Vec<serde_json::Value> = readiness
        .parts
        .iter()
        .map(|part| {
            serde_json::json!({
                "name": part.name,
                "adapter": part.adapter,
                "status": if part.ok { "ok" } else { "down" },
                "required": part.required,
                "detail": part.detail,
            })
        })
        .collect();
    let mut body = serde_json::json!({
        "status": if readiness.is_ready() { "ready" } else { "not_ready" },
        "parts": parts,
        "degraded": readiness.degraded(),
    });
    if state.engine.llm_canary().is_some() {
        use std::sync::atomic::Ordering::Relaxed;
        let counters = state.engine.llm_counters();
        body["llm"] = serde_json::json!({
            "answered": counters.answered.load(Relaxed),
            "ungrounded": counters.ungrounded.load(Relaxed),
            "failed": counters.failed.load(Relaxed),
            "canary_blocked": counters.canary_blocked.load(Relaxed),
            "over_budget": counters.over_budget.load(Relaxed),
            "analysis_fallbacks": counters.analysis_fallbacks.load(Relaxed),
            "cooling_down": counters.cooling_down.load(Relaxed),
        });
    }
    {
        use std::sync::atomic::Ordering::Relaxed;
        let outbox = state.engine.outbox();
        let counters = outbox.counters();
        let stats = state.engine.ports().store.outbox_stats().await.ok();
        body["helpdesk"] = serde_json::json!({
            "adapter": outbox.helpdesk_name(),
            "tickets": counters.tickets.load(Relaxed),
            "rate_limited": counters.rate_limited.load(Relaxed),
            "unavailable": counters.unavailable.load(Relaxed),
            "refused": counters.refused.load(Relaxed),
            "last_error": counters.last_error(),
            "outbox_queued": stats.map(|stats| stats.queued),
            "latency_ms": {
                "p50": counters.latency_ms(0.5),
                "p95": counters.latency_ms(0.95),
            },
        });
        if state.engine.ports().mailer.is_some() {
            let email = state.engine.email_counters();
            body["email"] = serde_json::json!({
                "sent": email.sent.load(Relaxed),
                "failed": email.failed.load(Relaxed),
            });
        }
    }
    if readiness.is_ready() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Any other route.
pub async fn not_found() -> HttpResponse {
    crate::api::http_error(ErrorCode::NotFound, "no such route", None)
}
