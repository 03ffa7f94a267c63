//! The plain HTTP routes, black-box, through the full start-up path (adapters from config,
//! the demo help center ingested into a temporary data directory).

use frontdesk_tests::{TestAppOptions, spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test]
async fn the_full_start_up_serves_the_demo_page_widget_health_and_readiness() {
    let app = spawn_app_with(TestAppOptions {
        full_startup: true,
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();

    let page = http
        .get(format!("{}/", app.http_url))
        .send()
        .await
        .expect("GET /");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let body = page.text().await.expect("body");
    assert!(
        body.contains(
            r#"<script src="/widget.js" data-site-key="pk_demo_frontdesk" async></script>"#
        ),
        "{body}"
    );

    let widget = http
        .get(format!("{}/widget.js", app.http_url))
        .send()
        .await
        .expect("GET /widget.js");
    assert_eq!(widget.status(), 200);
    assert_eq!(
        widget.headers()["content-type"],
        "application/javascript; charset=utf-8"
    );
    let launcher = widget.text().await.expect("body");
    assert_eq!(
        launcher,
        frontdesk_tests::read_repo_file("widget/dist/widget.min.js"),
        "/widget.js is the launcher built in widget/dist"
    );
    assert!(
        launcher.contains("/widget.js?part=chat&lang=") && launcher.contains("/v1/ws"),
        "the launcher knows the socket and loads the chat panel on demand"
    );
    let chat = http
        .get(format!("{}/widget.js?part=chat&lang=fr&v=1", app.http_url))
        .send()
        .await
        .expect("GET /widget.js?part=chat");
    assert_eq!(chat.status(), 200);
    assert_eq!(chat.headers()["cache-control"], "public, max-age=86400");
    let chat = chat.text().await.expect("body");
    assert_eq!(
        chat,
        frontdesk_tests::read_repo_file("widget/dist/chat-fr.min.js")
    );
    assert!(
        chat.contains("\"hello\""),
        "the chat panel says hello on the socket"
    );

    let health = http
        .get(format!("{}/healthz", app.http_url))
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.expect("json"),
        json!({"status": "ok"})
    );

    let ready = http
        .get(format!("{}/readyz", app.http_url))
        .send()
        .await
        .expect("GET /readyz");
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["degraded"], json!([]));
    let parts: Vec<(&str, &str, &str)> = body["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name"),
                p["adapter"].as_str().expect("adapter"),
                p["status"].as_str().expect("status"),
            )
        })
        .collect();
    assert_eq!(
        parts,
        vec![
            ("store", "memory", "ok"),
            ("retriever", "embedded", "ok"),
            ("helpdesk", "inbox", "ok")
        ]
    );
    assert_eq!(body["helpdesk"]["tickets"], 0);
    assert_eq!(body["helpdesk"]["outbox_queued"], 0);

    // The agents' inbox page is served.
    let inbox = reqwest::get(format!("{}/inbox", app.http_url))
        .await
        .expect("GET /inbox");
    assert_eq!(inbox.status(), 200);
    assert!(
        inbox
            .text()
            .await
            .expect("text")
            .contains("/v1/inbox/session"),
        "the page signs in through the inbox API"
    );

    // The ingested demo knowledge base answers over the socket.
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let turn = client
        .ask("How can I track my order?")
        .await
        .expect("a turn");
    assert_eq!(turn.end["decision"], "answer", "{}", turn.end);
    assert_eq!(
        turn.end["sources"][0]["article_id"], "shipping/track-your-order",
        "{}",
        turn.end
    );
}

#[tokio::test]
async fn unknown_routes_get_a_json_not_found() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/nope", app.http_url))
        .await
        .expect("GET /nope");
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"code": "not_found", "message": "no such route"})
    );
}
