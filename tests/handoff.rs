//! Handoffs end to end, through the real server: routing to a team, the durable outbox turning
//! each handoff into exactly one ticket (Zendesk and Freshdesk fakes speaking wire-facts §1/§2,
//! 429 with `Retry-After`, 500s, a restart on shared Redis), the built-in inbox (sign-in, queue,
//! claim, reply, internal note, close) and helpdesk webhooks relaying an agent's reply to the
//! visitor's widget.

use base64::Engine as _;
use frontdesk_tests::fake_freshdesk::FakeFreshdesk;
use frontdesk_tests::fake_zendesk::{EMAIL, FakeZendesk, Fault, TOKEN};
use frontdesk_tests::redis::{redis_layer, shared_redis_layer, unique_key_prefix};
use frontdesk_tests::{TestApp, WsClient, spawn_app_with_config};
use hmac::Mac;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The password of the inbox agent `sam` in these tests.
const PASSWORD: &str = "correct horse battery staple";
const ZENDESK_SECRET: &str = "zendesk-signing-secret";
const FRESHDESK_SECRET: &str = "freshdesk-shared-secret";

fn inbox_layer() -> String {
    let hash = frontdesk::engine::inbox::hash_password(PASSWORD).expect("hashes");
    format!(
        "[helpdesk.inbox]\nagents = [{{ id = \"sam\", name = \"Sam\", password_hash = {hash:?} }}]\n"
    )
}

fn zendesk_layer(fake: &FakeZendesk) -> String {
    format!(
        "[helpdesk]\nkind = \"zendesk\"\n[helpdesk.zendesk]\nsubdomain = \"acme\"\nemail = {EMAIL:?}\n\
         api_token = {TOKEN:?}\nbase_url = {:?}\nwebhook_secret = {ZENDESK_SECRET:?}\n",
        fake.base_url()
    )
}

/// Waits until `check` holds (the outbox works in the background), at most 30 s.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn readyz(app: &TestApp) -> Value {
    reqwest::get(format!("{}/readyz", app.http_url))
        .await
        .expect("readyz answers")
        .json()
        .await
        .expect("readyz is JSON")
}

/// A visitor who wrote `text` and then pressed "talk to a human"; returns the client (still
/// connected) and the `handoff` frame.
async fn visitor_asks_for_a_human(app: &TestApp, text: &str) -> (WsClient, Value) {
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    client.ask(text).await.expect("turn");
    client.send_json(json!({"type": "request_human"})).await;
    let handoff = client.recv_type("handoff").await.expect("handoff frame");
    (client, handoff)
}

#[tokio::test]
async fn a_handoff_becomes_exactly_one_zendesk_ticket_with_the_whole_context() {
    let zendesk = FakeZendesk::start().await;
    let app = spawn_app_with_config(&zendesk_layer(&zendesk)).await;
    let (_client, handoff) = visitor_asks_for_a_human(
        &app,
        "My lamp keeps disconnecting from the wifi every hour, this is so frustrating",
    )
    .await;
    assert_eq!(handoff["status"], "pending");
    let ticket = eventually("the Zendesk ticket", || zendesk.tickets().first().cloned()).await;
    let body = ticket["description"]
        .as_str()
        .unwrap_or_default()
        .to_string()
        + ticket["comment"]["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("Visitor: My lamp keeps disconnecting from the wifi every hour"),
        "the transcript is in the ticket: {ticket}"
    );
    assert!(
        body.contains("Why the assistant handed off: requested_human"),
        "{ticket}"
    );
    assert!(body.contains("Visitor sentiment by message"), "{ticket}");
    let tags = strings(&ticket["tags"]);
    assert!(
        tags.contains(&"frontdesk") && tags.contains(&"requested_human"),
        "{tags:?}"
    );
    // The worker keeps running: nothing else is created.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(zendesk.tickets().len(), 1, "exactly one ticket");
    let ready = readyz(&app).await;
    assert_eq!(ready["helpdesk"]["adapter"], "zendesk");
    assert_eq!(ready["helpdesk"]["tickets"], 1);
    assert_eq!(ready["helpdesk"]["outbox_queued"], 0);
    assert!(ready["helpdesk"]["latency_ms"]["p50"].is_u64(), "{ready}");
}

#[tokio::test]
async fn a_rate_limited_and_failing_helpdesk_is_retried_until_the_ticket_exists() {
    let zendesk = FakeZendesk::start().await;
    zendesk.push_fault(Fault::RateLimited(1));
    zendesk.push_fault(Fault::ServerError);
    let app = spawn_app_with_config(&zendesk_layer(&zendesk)).await;
    let (_client, _) = visitor_asks_for_a_human(&app, "I need to talk to someone please").await;
    eventually("a failed attempt", || {
        app.engine.outbox().counters().last_error()
    })
    .await;
    let degraded = readyz(&app).await;
    assert_eq!(
        degraded["status"], "ready",
        "a helpdesk outage never fails readiness"
    );
    assert!(
        degraded["degraded"]
            .as_array()
            .is_some_and(|parts| parts.iter().any(|p| p == "helpdesk")),
        "{degraded}"
    );
    eventually("the ticket after the retries", || {
        (zendesk.tickets().len() == 1).then_some(())
    })
    .await;
    let counters = app.engine.outbox().counters();
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(counters.rate_limited.load(Relaxed), 1);
    assert_eq!(counters.unavailable.load(Relaxed), 1);
    assert_eq!(counters.tickets.load(Relaxed), 1);
    assert_eq!(counters.last_error(), None);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        zendesk.tickets().len(),
        1,
        "exactly one ticket across retries"
    );
}

#[tokio::test]
async fn a_handoff_recorded_before_a_restart_is_delivered_once_by_the_next_instance() {
    let zendesk = FakeZendesk::start().await;
    // The first instance finds Zendesk down.
    for _ in 0..50 {
        zendesk.push_fault(Fault::ServerError);
    }
    let redis = redis_layer("redis://127.0.0.1:6379", &unique_key_prefix());
    let config = format!("{}{redis}", zendesk_layer(&zendesk));
    let mut first = spawn_app_with_config(&config).await;
    let (_client, _) = visitor_asks_for_a_human(&first, "Please get me a person").await;
    eventually("a failed attempt", || {
        first.engine.outbox().counters().last_error()
    })
    .await;
    first.shutdown();
    first.stopped().await.expect("stops");
    drop(first);
    // Zendesk recovers; a new instance on the same Redis delivers the recorded handoff.
    zendesk.clear_faults();
    let second = spawn_app_with_config(&config).await;
    eventually("the ticket from the second instance", || {
        (zendesk.tickets().len() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        zendesk.tickets().len(),
        1,
        "exactly one ticket after the restart"
    );
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(second.engine.outbox().counters().tickets.load(Relaxed), 1);
}

#[tokio::test]
async fn freshdesk_gets_one_ticket_per_handoff() {
    let freshdesk = FakeFreshdesk::start().await;
    let app = spawn_app_with_config(&format!(
        "[helpdesk]\nkind = \"freshdesk\"\n[helpdesk.freshdesk]\ndomain = \"acme.freshdesk.com\"\n\
         api_key = {:?}\nbase_url = {:?}\nwebhook_secret = {FRESHDESK_SECRET:?}\n",
        frontdesk_tests::fake_freshdesk::API_KEY,
        freshdesk.base_url()
    ))
    .await;
    let (_client, _) = visitor_asks_for_a_human(&app, "Can a human help me with my invoice?").await;
    let ticket = eventually("the Freshdesk ticket", || {
        freshdesk.tickets().first().cloned()
    })
    .await;
    assert!(
        ticket["description"]
            .as_str()
            .is_some_and(|d| d.contains("Can a human help me with my invoice?")),
        "{ticket}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(freshdesk.tickets().len(), 1);
}

fn zendesk_signature(timestamp: &str, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(ZENDESK_SECRET.as_bytes())
        .expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn zendesk_webhook(app: &TestApp, invocation: &str, body: &Value) -> reqwest::Response {
    let body = body.to_string();
    let timestamp = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("valid")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats");
    reqwest::Client::new()
        .post(format!("{}/v1/webhooks/zendesk", app.http_url))
        .header("content-type", "application/json")
        .header("x-zendesk-webhook-signature-timestamp", &timestamp)
        .header(
            "x-zendesk-webhook-signature",
            zendesk_signature(&timestamp, &body),
        )
        .header("x-zendesk-webhook-invocation-id", invocation)
        .body(body)
        .send()
        .await
        .expect("webhook answers")
}

#[tokio::test]
async fn a_zendesk_agent_reply_reaches_the_widget_and_solving_closes_the_conversation() {
    let zendesk = FakeZendesk::start().await;
    let app = spawn_app_with_config(&zendesk_layer(&zendesk)).await;
    let (mut client, _) = visitor_asks_for_a_human(&app, "I want to speak to an agent").await;
    let ticket = eventually("the ticket", || zendesk.tickets().first().cloned()).await;
    let ticket_id = ticket["id"].to_string();
    let reply = json!({
        "ticket_id": ticket_id, "status": "Open",
        "comment": "Hi, I'm Dana from support. Let me check your lamp.",
        "author_name": "Dana", "author_email": "dana@acme.example"
    });
    // Unsigned or wrongly signed deliveries are refused.
    let forged = reqwest::Client::new()
        .post(format!("{}/v1/webhooks/zendesk", app.http_url))
        .header(
            "x-zendesk-webhook-signature-timestamp",
            "2021-03-25T05:09:27Z",
        )
        .header(
            "x-zendesk-webhook-signature",
            "LbiR1crHGMKN9WjZ6GwQo5ThTF9hoYF/NRFqHC048eA=",
        )
        .header("x-zendesk-webhook-invocation-id", "forged")
        .body(reply.to_string())
        .send()
        .await
        .expect("answers");
    assert_eq!(forged.status(), 401);
    let response = zendesk_webhook(&app, "inv-1", &reply).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.expect("json")["outcome"],
        "relayed"
    );
    // The first reply: the widget learns that Dana has it, then gets her reply.
    let joined = client.recv_type("handoff").await.expect("assigned");
    assert_eq!(joined["status"], "assigned");
    assert_eq!(joined["message"], "Dana has joined the conversation.");
    let message = client
        .recv_type("agent_message")
        .await
        .expect("agent reply");
    assert_eq!(message["agent_name"], "Dana");
    assert_eq!(
        message["text"],
        "Hi, I'm Dana from support. Let me check your lamp."
    );
    // Zendesk retrying the same invocation changes nothing.
    let again = zendesk_webhook(&app, "inv-1", &reply).await;
    assert_eq!(
        again.json::<Value>().await.expect("json")["outcome"],
        "duplicate"
    );
    // Frontdesk's own API user's updates are not echoed back.
    let own = json!({"ticket_id": ticket_id, "status": "Open", "comment": "context note",
        "author_name": "Bot", "author_email": EMAIL});
    let own = zendesk_webhook(&app, "inv-2", &own).await;
    assert_eq!(
        own.json::<Value>().await.expect("json")["outcome"],
        "own_update"
    );
    let solved = json!({"ticket_id": ticket_id, "status": "Solved", "comment": "",
        "author_name": "Dana", "author_email": "dana@acme.example"});
    zendesk_webhook(&app, "inv-3", &solved).await;
    let closed = client
        .recv_type("conversation_closed")
        .await
        .expect("closed");
    assert_eq!(closed["csat_requested"], true);
    let unknown = json!({"ticket_id": "999999", "status": "Open", "comment": "hello"});
    let unknown = zendesk_webhook(&app, "inv-4", &unknown).await;
    assert_eq!(
        unknown.json::<Value>().await.expect("json")["outcome"],
        "unknown_ticket"
    );
}

async fn sign_in(app: &TestApp) -> String {
    let http = reqwest::Client::new();
    let wrong = http
        .post(format!("{}/v1/inbox/session", app.http_url))
        .json(&json!({"agent": "sam", "password": "wrong"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(wrong.status(), 401);
    let session: Value = http
        .post(format!("{}/v1/inbox/session", app.http_url))
        .json(&json!({"agent": "sam", "password": PASSWORD}))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    session["token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn an_inbox_agent_claims_replies_notes_and_closes_and_the_visitor_sees_it_live() {
    let app = spawn_app_with_config(&format!("{}{}", inbox_layer(), shared_redis_layer())).await;
    let (mut client, handoff) =
        visitor_asks_for_a_human(&app, "My order arrived broken, can I talk to a person?").await;
    let http = reqwest::Client::new();
    let unauthorized = http
        .get(format!("{}/v1/inbox/queue", app.http_url))
        .send()
        .await
        .expect("answers");
    assert_eq!(unauthorized.status(), 401);
    let token = sign_in(&app).await;
    let queue = inbox_queue(&app, &token).await;
    assert!(handoff["event_id"].as_u64().is_some_and(|id| id > 0));
    let item = queue["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["preview"] == "My order arrived broken, can I talk to a person?")
        .cloned()
        .expect("the conversation is in the queue");
    // Sam came online with a conversation waiting: it is his at once.
    assert_eq!(item["status"], "with_agent");
    assert_eq!(item["assignee"], "sam");
    assert!(item["position"].is_null(), "assigned: no longer in line");
    let base = format!(
        "{}/v1/inbox/conversations/{}/{}",
        app.http_url,
        item["site"].as_str().expect("site"),
        item["conversation_id"].as_str().expect("id")
    );
    let post = |action: &str, body: Value| {
        http.post(format!("{base}/{action}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    assert_eq!(post("claim", json!({})).await.expect("claim").status(), 200);
    let assigned = client.recv_type("handoff").await.expect("assigned");
    assert_eq!(assigned["status"], "assigned");
    assert!(
        assigned["message"]
            .as_str()
            .is_some_and(|m| m.contains("Sam"))
    );
    assert_eq!(
        post(
            "note",
            json!({"text": "Customer seems upset; offer a replacement"})
        )
        .await
        .expect("note")
        .status(),
        200
    );
    assert_eq!(
        post(
            "reply",
            json!({"text": "Sorry about that! I'll send a replacement today."})
        )
        .await
        .expect("reply")
        .status(),
        200
    );
    // The internal note never reaches the visitor: the next frame is the reply.
    let next = client.recv().await.expect("frame");
    assert_eq!(next["type"], "agent_message", "{next}");
    assert_eq!(next["agent_name"], "Sam");
    assert_eq!(
        next["text"],
        "Sorry about that! I'll send a replacement today."
    );
    let detail: Value = http
        .get(&base)
        .bearer_auth(&token)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    let kinds: Vec<&str> = detail["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"note") && kinds.contains(&"agent"),
        "{kinds:?}"
    );
    assert_eq!(detail["assignee"], "sam");
    let empty = post("reply", json!({"text": "   "})).await.expect("reply");
    assert_eq!(empty.status(), 400);
    assert_eq!(post("close", json!({})).await.expect("close").status(), 200);
    let closed = client
        .recv_type("conversation_closed")
        .await
        .expect("closed");
    assert_eq!(closed["csat_requested"], true);
}

#[tokio::test]
async fn a_reply_to_a_visitor_who_left_is_emailed_with_the_transcript() {
    let sink = frontdesk_tests::smtp_sink::SmtpSink::start().await;
    // The first attempt meets a temporary failure: the mailer retries.
    sink.fail_next(1);
    let app = spawn_app_with_config(&format!(
        "{}[email]\nsmtp_url = {:?}\nfrom = \"Lumen Support <support@lumen.example>\"\n",
        inbox_layer(),
        sink.url()
    ))
    .await;
    let (mut client, _) =
        visitor_asks_for_a_human(&app, "My lamp flickers when dimmed, who can help?").await;
    client
        .send_json(json!({"type": "contact", "email": "ana@example.com"}))
        .await;
    // Let the contact frame land, then the visitor closes the tab.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let token = sign_in(&app).await;
    let http = reqwest::Client::new();
    let queue = inbox_queue(&app, &token).await;
    let item = queue["items"][0].clone();
    let base = format!(
        "{}/v1/inbox/conversations/{}/{}",
        app.http_url,
        item["site"].as_str().expect("site"),
        item["conversation_id"].as_str().expect("id")
    );
    // While the widget is open, a reply is not emailed.
    http.post(format!("{base}/reply"))
        .bearer_auth(&token)
        .json(&json!({"text": "Hi Ana, looking into it now."}))
        .send()
        .await
        .expect("reply");
    // The reply claims the conversation first: "Sam joined", then the reply.
    assert_eq!(
        client.recv_type("handoff").await.expect("assigned")["status"],
        "assigned"
    );
    client.recv_type("agent_message").await.expect("live reply");
    drop(client);
    tokio::time::sleep(Duration::from_millis(300)).await;
    http.post(format!("{base}/reply"))
        .bearer_auth(&token)
        .json(&json!({"text": "Please set the dimmer to 20% or more; that fixes the flicker."}))
        .send()
        .await
        .expect("reply");
    let email = eventually("the email", || sink.messages().first().cloned()).await;
    assert_eq!(email.to, vec!["ana@example.com".to_string()]);
    assert_eq!(email.from, "support@lumen.example");
    let text = email.body_text();
    assert!(
        text.contains("Please set the dimmer to 20% or more; that fixes the flicker."),
        "{text}"
    );
    assert!(
        text.contains("Visitor: My lamp flickers when dimmed, who can help?"),
        "the transcript is in the email: {text}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "one email: the reply seen live was not emailed"
    );
    assert_eq!(
        app.engine
            .email_counters()
            .sent
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

const INTERCOM_SECRET: &str = "intercom-client-secret";

async fn intercom_webhook(app: &TestApp, body: &Value) -> Value {
    let body = body.to_string();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(INTERCOM_SECRET.as_bytes())
        .expect("any key length");
    mac.update(body.as_bytes());
    let signature = format!("sha1={}", hex::encode(mac.finalize().into_bytes()));
    reqwest::Client::new()
        .post(format!("{}/v1/webhooks/intercom", app.http_url))
        .header("content-type", "application/json")
        .header("x-hub-signature", signature)
        .body(body)
        .send()
        .await
        .expect("webhook answers")
        .json()
        .await
        .expect("json")
}

fn intercom_notification(id: &str, topic: &str, conversation: &str, part: Value) -> Value {
    json!({
        "type": "notification_event", "id": id, "topic": topic, "app_id": "abc123",
        "created_at": 1767225600,
        "data": {"type": "notification_event_data", "item": {
            "type": "conversation", "id": conversation,
            "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [part]}
        }}
    })
}

#[tokio::test]
async fn an_intercom_handoff_becomes_one_conversation_and_the_admin_reply_reaches_the_widget() {
    use frontdesk_tests::fake_intercom::{ADMIN_ID, FakeIntercom, TOKEN as INTERCOM_TOKEN};
    let intercom = FakeIntercom::start().await;
    let app = spawn_app_with_config(&format!(
        "[helpdesk]\nkind = \"intercom\"\n[helpdesk.intercom]\naccess_token = {INTERCOM_TOKEN:?}\n\
         admin_id = {ADMIN_ID:?}\nbase_url = {:?}\nclient_secret = {INTERCOM_SECRET:?}\n",
        intercom.base_url()
    ))
    .await;
    let (mut client, _) =
        visitor_asks_for_a_human(&app, "The app says my lamp is offline, a person please").await;
    let conversation = eventually("the Intercom conversation", || {
        intercom.conversations().first().cloned()
    })
    .await;
    let conversation_id = conversation["id"].as_str().expect("id").to_string();
    eventually("the context note", || {
        (!intercom.notes(&conversation_id).is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        intercom.conversations().len(),
        1,
        "exactly one conversation"
    );
    // Intercom announces itself with a ping: acknowledged, nothing else.
    let ping = json!({"type": "notification_event", "id": "notif_ping", "topic": "ping"});
    let pinged = intercom_webhook(&app, &ping).await;
    assert_eq!(pinged["outcome"], "nothing_to_do", "{pinged}");
    let reply = intercom_notification(
        "notif_1",
        "conversation.admin.replied",
        &conversation_id,
        json!({"type": "conversation_part", "part_type": "comment",
               "body": "<p>Hi! I'm Lee.</p><p>Unplug the lamp for 10 seconds &amp; retry.</p>",
               "author": {"type": "admin", "id": "991267594", "name": "Lee"}}),
    );
    assert_eq!(intercom_webhook(&app, &reply).await["outcome"], "relayed");
    let joined = client.recv_type("handoff").await.expect("assigned");
    assert_eq!(joined["message"], "Lee has joined the conversation.");
    let message = client
        .recv_type("agent_message")
        .await
        .expect("agent reply");
    assert_eq!(message["agent_name"], "Lee");
    assert_eq!(
        message["text"],
        "Hi! I'm Lee.\nUnplug the lamp for 10 seconds & retry."
    );
    // At-least-once delivery: the same notification again changes nothing.
    assert_eq!(intercom_webhook(&app, &reply).await["outcome"], "duplicate");
    let closed = intercom_notification(
        "notif_2",
        "conversation.admin.closed",
        &conversation_id,
        json!({"type": "conversation_part", "part_type": "close", "body": null,
               "author": {"type": "admin", "id": "991267594", "name": "Lee"}}),
    );
    assert_eq!(intercom_webhook(&app, &closed).await["outcome"], "relayed");
    let closed = client
        .recv_type("conversation_closed")
        .await
        .expect("closed");
    assert_eq!(closed["csat_requested"], true);
    // A forged signature is refused.
    let forged = reqwest::Client::new()
        .post(format!("{}/v1/webhooks/intercom", app.http_url))
        .header(
            "x-hub-signature",
            "sha1=afd46c2e2b3cd345f03cef349d0d10c6ebe3542a",
        )
        .body(reply.to_string())
        .send()
        .await
        .expect("answers");
    assert_eq!(forged.status(), 401);
}

#[tokio::test]
async fn visitors_see_their_place_in_line_and_an_offline_team_asks_for_an_email() {
    // The billing team works only tomorrow (UTC), so it is closed now whatever the time.
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1)).weekday();
    let day = &tomorrow.to_string().to_ascii_lowercase()[..3];
    let app = spawn_app_with_config(&format!(
        "{inbox}[[sites]]\nid = \"demo\"\npublic_key = \"pk_demo_frontdesk\"\n\
         [sites.routing]\ndefault_team = \"support\"\n\
         teams = [{{ id = \"support\", name = \"support team\" }}, \
                  {{ id = \"billing\", name = \"billing team\", hours = \"{day} 09:00-17:00\", timezone = \"UTC\" }}]\n\
         rules = [{{ language = \"es\", team = \"billing\" }}]\n",
        inbox = inbox_layer()
    ))
    .await;
    let (_first, first) = visitor_asks_for_a_human(&app, "I need a person to help me").await;
    // Nobody is online in the inbox: the visitor is asked for an email, and is in line.
    assert_eq!(first["status"], "offline");
    assert_eq!(first["queue_position"], 1);
    let (_second, second) = visitor_asks_for_a_human(&app, "Can I talk to an agent?").await;
    assert_eq!(second["queue_position"], 2, "{second}");
    assert!(
        second["message"]
            .as_str()
            .is_some_and(|m| m.contains("You're in line")),
        "{second}"
    );
    // A Spanish request goes to the billing team, closed now.
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let turn = client
        .ask("Quiero hablar con una persona, por favor")
        .await
        .expect("turn");
    assert_eq!(turn.end["type"], "handoff", "{}", turn.end);
    assert_eq!(turn.end["status"], "offline");
    assert_eq!(turn.end["team"], "billing team");
    let message = turn.end["message"].as_str().expect("message");
    assert!(
        message.contains("offline") && message.contains("Leave your email"),
        "{message}"
    );
    assert!(
        message.contains("at 09:00 (UTC)"),
        "says when they are back: {message}"
    );
    assert!(turn.end.get("queue_position").is_none(), "{}", turn.end);
    // The handoff is in the inbox all the same.
    let token = sign_in(&app).await;
    let queue = inbox_queue(&app, &token).await;
    assert_eq!(queue["items"].as_array().map(Vec::len), Some(3), "{queue}");
}

/// An HS256 JWT (RFC 7519) signed with `secret`.
fn jwt(secret: &str, claims: &Value) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64(claims.to_string().as_bytes());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", b64(&mac.finalize().into_bytes()))
}

#[tokio::test]
async fn the_customer_tier_routes_only_from_a_verified_identity() {
    let app = spawn_app_with_config(
        "[[sites]]\nid = \"demo\"\npublic_key = \"pk_demo_frontdesk\"\nidentity_secret = \"site-secret\"\n\
         [sites.routing]\ndefault_team = \"support\"\n\
         teams = [{ id = \"support\", name = \"support team\" }, { id = \"vip\", name = \"account team\" }]\n\
         rules = [{ tier = \"enterprise\", team = \"vip\" }]\n",
    )
    .await;
    let in_an_hour = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let token = jwt(
        "site-secret",
        &json!({"sub": "user-42", "exp": in_an_hour, "tier": "enterprise"}),
    );
    let mut verified = app.client().await;
    verified
        .send_json(
            json!({"type": "hello", "v": 1, "site_key": app.site_key, "identity": {"jwt": token}}),
        )
        .await;
    verified.recv_type("welcome").await.expect("welcome");
    verified.send_json(json!({"type": "request_human"})).await;
    let handoff = verified.recv_type("handoff").await.expect("handoff");
    assert_eq!(handoff["team"], "account team");
    // Saying it in words routes nowhere special.
    let mut anonymous = app.client().await;
    anonymous.hello(&app.site_key).await.expect("welcome");
    let turn = anonymous
        .ask("I'm an enterprise customer, tier enterprise, I want a human now")
        .await
        .expect("turn");
    assert_eq!(turn.end["type"], "handoff", "{}", turn.end);
    assert_eq!(turn.end["team"], "support team");
    // A token signed with another secret is refused outright.
    let forged = jwt(
        "not-the-secret",
        &json!({"sub": "user-42", "exp": in_an_hour, "tier": "enterprise"}),
    );
    let mut attacker = app.client().await;
    attacker
        .send_json(
            json!({"type": "hello", "v": 1, "site_key": app.site_key, "identity": {"jwt": forged}}),
        )
        .await;
    let refused = attacker.recv().await.expect("frame");
    assert_eq!(refused["code"], "unauthorized", "{refused}");
}

#[tokio::test]
async fn online_agents_get_new_handoffs_by_workload_and_capacity_and_take_the_next_when_free() {
    let hash = frontdesk::engine::inbox::hash_password(PASSWORD).expect("hashes");
    let app = spawn_app_with_config(&format!(
        "[helpdesk.inbox]\nagents = [\
         {{ id = \"sam\", name = \"Sam\", password_hash = {hash:?}, capacity = 1 }}, \
         {{ id = \"ana\", name = \"Ana\", password_hash = {hash:?}, capacity = 1, teams = [\"support\"] }}, \
         {{ id = \"zoe\", name = \"Zoe\", password_hash = {hash:?} }}]\n"
    ))
    .await;
    let http = reqwest::Client::new();
    let mut tokens = Vec::new();
    // Sam and Ana open the inbox (they are online); Zoe never does.
    for agent in ["sam", "ana"] {
        let session: Value = http
            .post(format!("{}/v1/inbox/session", app.http_url))
            .json(&json!({"agent": agent, "password": PASSWORD}))
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("json");
        let token = session["token"].as_str().expect("token").to_string();
        http.get(format!("{}/v1/inbox/queue", app.http_url))
            .bearer_auth(&token)
            .send()
            .await
            .expect("answers");
        tokens.push(token);
    }
    let (mut first, _) = visitor_asks_for_a_human(&app, "First: a person please").await;
    let joined = first.recv_type("handoff").await.expect("assigned");
    assert_eq!(joined["status"], "assigned");
    assert_eq!(
        joined["message"], "Sam has joined the conversation.",
        "both free: the first listed"
    );
    let (mut second, _) = visitor_asks_for_a_human(&app, "Second: a person please").await;
    let joined = second.recv_type("handoff").await.expect("assigned");
    assert_eq!(
        joined["message"], "Ana has joined the conversation.",
        "Sam is at capacity"
    );
    let (mut third, waiting) = visitor_asks_for_a_human(&app, "Third: a person please").await;
    assert_eq!(waiting["queue_position"], 1);
    third
        .expect_silence(Duration::from_millis(300))
        .await
        .expect("nobody free: it waits (Zoe is offline)");
    // Sam closes the first conversation: the waiting one is his.
    let queue = inbox_queue(&app, &tokens[0]).await;
    let mine = queue["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["assignee"] == "sam")
        .cloned()
        .expect("Sam's conversation");
    let closed = http
        .post(format!(
            "{}/v1/inbox/conversations/{}/{}/close",
            app.http_url,
            mine["site"].as_str().expect("site"),
            mine["conversation_id"].as_str().expect("id")
        ))
        .bearer_auth(&tokens[0])
        .json(&json!({}))
        .send()
        .await
        .expect("answers");
    assert_eq!(closed.status(), 200);
    first
        .recv_type("conversation_closed")
        .await
        .expect("closed");
    let joined = third.recv_type("handoff").await.expect("assigned");
    assert_eq!(joined["message"], "Sam has joined the conversation.");
}

#[tokio::test]
async fn tickets_from_other_channels_are_triaged_with_priority_group_tags_and_a_reply_or_note() {
    let zendesk = FakeZendesk::start().await;
    let app = spawn_app_with_config(&format!(
        "{}[helpdesk.zendesk.groups]\nsupport = 360001\nbilling = 360002\n",
        zendesk_layer(&zendesk)
    ))
    .await;
    // An email the help center answers: a public reply with the sources.
    let answered = zendesk.add_ticket(
        "Shipping times",
        "Hello, how long does shipping take to Germany?",
        &["email"],
    );
    let created = |id: u64, subject: &str, description: &str| {
        json!({"event": "ticket_created", "ticket_id": id.to_string(), "subject": subject,
               "description": description, "tags": "email", "author_name": "Customer",
               "author_email": "ana@example.com"})
    };
    let response = zendesk_webhook(
        &app,
        "inv-t1",
        &created(
            answered,
            "Shipping times",
            "Hello, how long does shipping take to Germany?",
        ),
    )
    .await;
    let outcome: Value = response.json().await.expect("json");
    assert_eq!(outcome["outcome"], "triaged", "{outcome}");
    let ticket = zendesk
        .tickets()
        .into_iter()
        .find(|t| t["id"] == answered)
        .expect("ticket");
    let tags = strings(&ticket["tags"]);
    assert!(
        tags.contains(&"email") && tags.contains(&"frontdesk-triaged"),
        "{tags:?}"
    );
    assert!(ticket["priority"].is_string(), "{ticket}");
    let last = last_of(&ticket["comments"]);
    if outcome["decision"] == "answer" {
        assert_eq!(last["public"], true, "an answer is a public reply: {last}");
        assert!(
            last["body"]
                .as_str()
                .is_some_and(|b| b.contains("From our help center")),
            "{last}"
        );
    } else {
        assert_eq!(last["public"], false, "otherwise an internal note: {last}");
    }
    // An angry chargeback threat: a person must handle it; high priority, the billing group,
    // an internal note with the reasons, never a public reply.
    let dispute = zendesk.add_ticket(
        "Unauthorized charge",
        "You charged my card twice without permission. I'm filing a chargeback with my bank today!",
        &[],
    );
    let response = zendesk_webhook(
        &app,
        "inv-t2",
        &created(
            dispute,
            "Unauthorized charge",
            "You charged my card twice without permission. I'm filing a chargeback with my bank today!",
        ),
    )
    .await;
    let outcome: Value = response.json().await.expect("json");
    assert_eq!(outcome["decision"], "handoff", "{outcome}");
    let ticket = zendesk
        .tickets()
        .into_iter()
        .find(|t| t["id"] == dispute)
        .expect("ticket");
    let tags = strings(&ticket["tags"]);
    assert!(tags.contains(&"billing_dispute"), "{tags:?}");
    let last = last_of(&ticket["comments"]);
    assert_eq!(last["public"], false, "{last}");
    assert!(
        last["body"]
            .as_str()
            .is_some_and(|b| b.contains("billing_dispute")),
        "{last}"
    );
    // Frontdesk's own handoff tickets are not triaged again.
    let own = json!({"event": "ticket_created", "ticket_id": "1", "subject": "x", "description": "y",
                     "tags": "frontdesk requested_human"});
    let response = zendesk_webhook(&app, "inv-t3", &own).await;
    assert_eq!(
        response.json::<Value>().await.expect("json")["outcome"],
        "own_ticket"
    );
}

#[tokio::test]
async fn freshdesk_tickets_from_other_channels_get_a_note_or_reply_through_the_api() {
    let freshdesk = FakeFreshdesk::start().await;
    let app = spawn_app_with_config(&format!(
        "[helpdesk]\nkind = \"freshdesk\"\n[helpdesk.freshdesk]\ndomain = \"acme.freshdesk.com\"\n\
         api_key = {:?}\nbase_url = {:?}\nwebhook_secret = {FRESHDESK_SECRET:?}\n",
        frontdesk_tests::fake_freshdesk::API_KEY,
        freshdesk.base_url()
    ))
    .await;
    let id = freshdesk.add_ticket(
        "Account hacked",
        "Someone logged into my account from another country and changed my password. URGENT",
        &["email"],
    );
    let response = reqwest::Client::new()
        .post(format!("{}/v1/webhooks/freshdesk", app.http_url))
        .header("x-frontdesk-secret", FRESHDESK_SECRET)
        .json(&json!({"event": "ticket_created", "ticket_id": id, "subject": "Account hacked",
                      "description": "Someone logged into my account from another country and changed my password. URGENT",
                      "tags": ["email"]}))
        .send()
        .await
        .expect("answers");
    let outcome: Value = response.json().await.expect("json");
    assert_eq!(outcome["decision"], "handoff", "{outcome}");
    let ticket = freshdesk
        .tickets()
        .into_iter()
        .find(|t| t["id"] == id)
        .expect("ticket");
    assert!(
        ticket["priority"].as_u64().is_some_and(|p| p >= 3),
        "security is high or urgent: {ticket}"
    );
    let tags = strings(&ticket["tags"]);
    assert!(
        tags.contains(&"email") && tags.contains(&"security"),
        "{tags:?}"
    );
    let note = last_of(&ticket["conversations"]);
    assert_eq!(note["private"], true, "{note}");
}

#[tokio::test]
async fn agents_do_not_take_each_others_conversations_and_a_rejected_draft_is_gone() {
    let hash = frontdesk::engine::inbox::hash_password(PASSWORD).expect("hashes");
    let app = spawn_app_with_config(&format!(
        "[helpdesk.inbox]\nagents = [\
         {{ id = \"sam\", name = \"Sam\", password_hash = {hash:?} }}, \
         {{ id = \"kim\", name = \"Kim\", password_hash = {hash:?} }}]\n"
    ))
    .await;
    // A refund request under the limit: the assistant drafts, an agent approves or rejects.
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let turn = client
        .ask("Please refund my order #999, it was $45")
        .await
        .expect("turn");
    assert_eq!(turn.end["decision"], "draft", "{}", turn.end);
    let http = reqwest::Client::new();
    let token = |agent: &'static str| {
        let http = http.clone();
        let url = format!("{}/v1/inbox/session", app.http_url);
        async move {
            let session: Value = http
                .post(url)
                .json(&json!({"agent": agent, "password": PASSWORD}))
                .send()
                .await
                .expect("answers")
                .json()
                .await
                .expect("json");
            session["token"].as_str().expect("token").to_string()
        }
    };
    let (sam, kim) = (token("sam").await, token("kim").await);
    let queue = inbox_queue(&app, &sam).await;
    let item = queue["items"][0].clone();
    assert_eq!(item["has_draft"], true, "{item}");
    let base = format!(
        "{}/v1/inbox/conversations/{}/{}",
        app.http_url,
        item["site"].as_str().expect("site"),
        item["conversation_id"].as_str().expect("id")
    );
    let act = |token: &str, action: &str, body: Value| {
        http.post(format!("{base}/{action}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    assert_eq!(
        act(&sam, "claim", json!({})).await.expect("claim").status(),
        200
    );
    let taken = act(&kim, "claim", json!({})).await.expect("claim");
    assert_eq!(taken.status(), 400, "Sam has it");
    let message = taken.json::<Value>().await.expect("json")["message"].clone();
    assert!(
        message
            .as_str()
            .is_some_and(|m| m.contains("Sam has this conversation")),
        "{message}"
    );
    assert_eq!(
        act(&kim, "reply", json!({"text": "hi"}))
            .await
            .expect("reply")
            .status(),
        400,
        "nor reply in it"
    );
    // Sam rejects the draft: it is gone, a second reject or an approve has nothing to act on.
    assert_eq!(
        act(&sam, "reject", json!({}))
            .await
            .expect("reject")
            .status(),
        200
    );
    let detail: Value = http
        .get(&base)
        .bearer_auth(&sam)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert!(detail["handoff"]["draft"].is_null(), "{detail}");
    assert_eq!(detail["assignee"], "sam");
    assert_eq!(detail["status"], "with_agent");
    assert_eq!(
        act(&sam, "reject", json!({}))
            .await
            .expect("reject")
            .status(),
        400
    );
    assert_eq!(
        act(&sam, "approve", json!({"text": "ok"}))
            .await
            .expect("approve")
            .status(),
        400
    );
    // Kim takes it over explicitly.
    assert_eq!(
        act(&kim, "claim", json!({"take_over": true}))
            .await
            .expect("claim")
            .status(),
        200
    );
    // A chat nobody handed to a person is not the inbox's to read.
    let mut other = app.client().await;
    let welcome = other.hello(&app.site_key).await.expect("welcome");
    other
        .ask("How do I reset my password?")
        .await
        .expect("turn");
    let private = http
        .get(format!(
            "{}/v1/inbox/conversations/demo/{}",
            app.http_url,
            welcome["conversation_id"].as_str().expect("id")
        ))
        .bearer_auth(&kim)
        .send()
        .await
        .expect("answers");
    assert_eq!(private.status(), 404);
    // Malformed JSON is named as such.
    let malformed = http
        .post(format!("{base}/reply"))
        .bearer_auth(&kim)
        .header("content-type", "application/json")
        .body("{\"text\":")
        .send()
        .await
        .expect("answers");
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.expect("a JSON error body");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not the JSON")),
        "{body}"
    );
}

#[tokio::test]
async fn a_captured_zendesk_delivery_replayed_under_a_new_invocation_id_is_a_duplicate() {
    let zendesk = FakeZendesk::start().await;
    let app = spawn_app_with_config(&zendesk_layer(&zendesk)).await;
    let (mut client, _) = visitor_asks_for_a_human(&app, "A person please").await;
    let ticket = eventually("the ticket", || zendesk.tickets().first().cloned()).await;
    let body = json!({"ticket_id": ticket["id"].to_string(), "status": "Open",
                      "comment": "Replayed?", "author_name": "Dana"})
    .to_string();
    let timestamp = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("valid")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats");
    let signature = zendesk_signature(&timestamp, &body);
    let mut outcomes = Vec::new();
    for invocation in ["a", "b", "c"] {
        let response: Value = reqwest::Client::new()
            .post(format!("{}/v1/webhooks/zendesk", app.http_url))
            .header("x-zendesk-webhook-signature-timestamp", &timestamp)
            .header("x-zendesk-webhook-signature", &signature)
            .header("x-zendesk-webhook-invocation-id", invocation)
            .body(body.clone())
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("json");
        outcomes.push(response["outcome"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(outcomes, ["relayed", "duplicate", "duplicate"]);
    client.recv_type("handoff").await.expect("assigned");
    client.recv_type("agent_message").await.expect("once");
    client
        .expect_silence(Duration::from_millis(300))
        .await
        .expect("the replays are not shown");
}

#[tokio::test]
async fn the_talk_to_a_person_button_is_routed_on_what_the_visitor_wrote_last() {
    let app = spawn_app_with_config(
        "[[sites]]\nid = \"demo\"\npublic_key = \"pk_demo_frontdesk\"\n\
         [sites.routing]\ndefault_team = \"support\"\n\
         teams = [{ id = \"support\", name = \"support team\" }, { id = \"spanish\", name = \"equipo de soporte\" }]\n\
         rules = [{ language = \"es\", team = \"spanish\" }]\n",
    )
    .await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    client
        .ask("¿Cuánto tarda el envío de mi pedido a Madrid?")
        .await
        .expect("turn");
    client.send_json(json!({"type": "request_human"})).await;
    let handoff = client.recv_type("handoff").await.expect("handoff");
    assert_eq!(handoff["team"], "equipo de soporte", "{handoff}");
}

#[tokio::test]
async fn visitor_follow_ups_after_the_ticket_reach_it_as_notes_once() {
    let zendesk = FakeZendesk::start().await;
    let app = spawn_app_with_config(&zendesk_layer(&zendesk)).await;
    let (mut client, _) = visitor_asks_for_a_human(&app, "I need a person about my lamp").await;
    let ticket = eventually("the ticket", || zendesk.tickets().first().cloned()).await;
    // The helpdesk is down when the visitor writes more: the follow-up waits and is retried.
    zendesk.push_fault(Fault::ServerError);
    client
        .send_json(
            json!({"type": "message", "client_message_id": uuid::Uuid::new_v4().to_string(),
                          "text": "Also, my order number is 5555"}),
        )
        .await;
    client
        .recv_type("ack")
        .await
        .expect("stored and acknowledged");
    let comments = |zendesk: &FakeZendesk| -> Vec<Value> {
        zendesk
            .tickets()
            .into_iter()
            .find(|t| t["id"] == ticket["id"])
            .and_then(|t| t["comments"].as_array().cloned())
            .unwrap_or_default()
    };
    let note = eventually("the follow-up on the ticket", || {
        comments(&zendesk).first().cloned()
    })
    .await;
    assert_eq!(note["public"], false, "an internal note: {note}");
    assert!(
        note["body"]
            .as_str()
            .is_some_and(|b| b.contains("Also, my order number is 5555")),
        "{note}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(comments(&zendesk).len(), 1, "added once");
    assert_eq!(zendesk.tickets().len(), 1, "and still one ticket");
}

/// The strings of a JSON array (tags).
fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// The last element of a JSON array (the newest comment or note).
fn last_of(value: &Value) -> Value {
    value
        .as_array()
        .and_then(|items| items.last())
        .cloned()
        .expect("a non-empty array")
}

/// `GET /v1/inbox/queue` as the agent of `token`.
async fn inbox_queue(app: &TestApp, token: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/v1/inbox/queue", app.http_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn asking_again_after_an_agent_joined_says_who_has_it() {
    let app = spawn_app_with_config(&inbox_layer()).await;
    let (mut client, _) = visitor_asks_for_a_human(&app, "A person please").await;
    let token = sign_in(&app).await;
    let queue = inbox_queue(&app, &token).await;
    let item = &queue["items"][0];
    let claimed = reqwest::Client::new()
        .post(format!(
            "{}/v1/inbox/conversations/{}/{}/claim",
            app.http_url,
            item["site"].as_str().expect("site"),
            item["conversation_id"].as_str().expect("id")
        ))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .expect("answers");
    assert_eq!(claimed.status(), 200);
    client.recv_type("handoff").await.expect("assigned");
    client.send_json(json!({"type": "request_human"})).await;
    let again = client.recv_type("handoff").await.expect("handoff");
    assert_eq!(again["status"], "assigned", "{again}");
    assert_eq!(again["message"], "Sam has joined the conversation.");
}
