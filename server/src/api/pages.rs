//! The plain HTTP routes: demo page, widget script, health and readiness.

use crate::api::AppState;
use crate::api::wire::ErrorCode;
use actix_web::{HttpResponse, web};

/// The widget script (`widget/widget.js`), compiled in.
pub const WIDGET_JS: &str = include_str!("../../../widget/widget.js");

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

/// `GET /widget.js`.
pub async fn widget_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(WIDGET_JS)
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
    let body = serde_json::json!({
        "status": if readiness.is_ready() { "ready" } else { "not_ready" },
        "parts": parts,
        "degraded": readiness.degraded(),
    });
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
