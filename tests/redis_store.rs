//! The Redis conversation store, black-box: real servers on 127.0.0.1:0 over a real Redis,
//! real WebSocket clients (issue: conversation state in Redis, safe across instances,
//! reconnects and restarts).
//!
//! - two instances sharing the test Redis (127.0.0.1:6379, a key prefix per test): events
//!   published on one reach a socket on the other; resuming on the other gets full history;
//!   a `client_message_id` raced from both runs one turn;
//! - a redis-server the test owns (AOF, `appendfsync always`), killed with SIGKILL and
//!   restarted: every acknowledged message survives, the outage is an immediate
//!   `upstream_unavailable`, and the conversation continues afterwards;
//! - Redis round trips per turn (at most 4).

use frontdesk_tests::redis::{OwnedRedis, redis_layer, shared_redis_layer, unique_key_prefix};
use frontdesk_tests::{Received, TestApp, TestAppOptions, WsClient, spawn_app_with};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The same resume secret on every instance, as production needs (config/default.toml).
const SHARED_SECRET: &str =
    "[server]\nresume_secret = \"a-resume-secret-shared-by-every-instance-0123\"\n";
/// Generous rate limits: these tests send more than a visitor would.
const RELAXED_LIMITS: &str = "[ws]\nmessages_per_minute = 600\nmessage_burst = 100\n";

async fn app_with(layers: &[&str]) -> TestApp {
    spawn_app_with(TestAppOptions {
        config: layers.iter().map(|layer| layer.to_string()).collect(),
        ..Default::default()
    })
    .await
}

fn resume_hello(app: &TestApp, welcome: &Value, last_event_id: Option<u64>) -> Value {
    let mut hello = json!({"type": "hello", "v": 1, "site_key": app.site_key,
        "visitor_id": welcome["visitor_id"], "conversation_id": welcome["conversation_id"],
        "resume_token": welcome["resume_token"]});
    if let Some(last) = last_event_id {
        hello["last_event_id"] = json!(last);
    }
    hello
}

fn message(client_message_id: &str, text: &str) -> Value {
    json!({"type": "message", "client_message_id": client_message_id, "text": text})
}

fn history_event_ids(welcome: &Value) -> Vec<u64> {
    welcome["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|entry| entry["event_id"].as_u64().expect("event_id"))
        .collect()
}

/// Frames (typing and deltas left out) until one has `event_id` = `last`.
async fn stored_frames_through(client: &mut WsClient, last: u64) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = client.recv().await.expect("a frame");
        if matches!(frame["type"].as_str(), Some("typing" | "delta")) {
            continue;
        }
        let done = frame["event_id"].as_u64() == Some(last);
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

#[tokio::test]
async fn two_instances_share_one_redis_events_cross_over_and_resume_works_on_either() {
    let redis = shared_redis_layer();
    let a = app_with(&[&redis, SHARED_SECRET, RELAXED_LIMITS]).await;
    let b = app_with(&[&redis, SHARED_SECRET, RELAXED_LIMITS]).await;

    // The visitor's first tab, on instance A.
    let mut tab_a = a.client().await;
    let welcome = tab_a.hello(&a.site_key).await.expect("welcome on A");
    let first = tab_a
        .ask("How do I reset my password?")
        .await
        .expect("a turn on A");
    assert_eq!(
        (first.ack["event_id"].clone(), first.end["event_id"].clone()),
        (json!(1), json!(2))
    );

    // A second tab resumes on instance B and sees the history A stored.
    let mut tab_b = b.client().await;
    tab_b.send_json(resume_hello(&b, &welcome, None)).await;
    let resumed = tab_b.recv_type("welcome").await.expect("welcome on B");
    assert_eq!(resumed["conversation_id"], welcome["conversation_id"]);
    assert_eq!(history_event_ids(&resumed), vec![1, 2]);

    // A message sent on B reaches the tab on A: its ack (event 3) and B's answer (event 4).
    let on_b = tab_b
        .ask("How long does shipping take?")
        .await
        .expect("a turn on B");
    let seen_on_a = stored_frames_through(&mut tab_a, 4).await;
    assert_eq!(seen_on_a, vec![on_b.ack.clone(), on_b.end.clone()]);

    // Both tabs race the same client_message_id: one message, one turn.
    let raced = uuid::Uuid::new_v4().to_string();
    let text = "Can I return a lamp?";
    tab_a.send_json(message(&raced, text)).await;
    tab_b.send_json(message(&raced, text)).await;
    let (frames_a, frames_b) = tokio::join!(
        stored_frames_through(&mut tab_a, 6),
        stored_frames_through(&mut tab_b, 6)
    );
    let stored_acks: Vec<&Value> = frames_a
        .iter()
        .chain(&frames_b)
        .filter(|f| f["type"] == "ack" && f["duplicate"] == false)
        .collect();
    assert!(
        stored_acks
            .iter()
            .all(|ack| ack["event_id"] == 5 && ack["client_message_id"] == raced),
        "{stored_acks:?}"
    );
    let answers: Vec<&Value> = frames_a
        .iter()
        .chain(&frames_b)
        .filter(|f| f["type"] == "answer_end")
        .collect();
    assert_eq!(
        answers.len(),
        2,
        "each tab sees the one answer: {answers:?}"
    );
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0]["event_id"], 6);

    // A handoff requested on B reaches A.
    tab_b.send_json(json!({"type": "request_human"})).await;
    let handoff_b = tab_b.recv_type("handoff").await.expect("handoff on B");
    let handoff_a = stored_frames_through(&mut tab_a, 7).await;
    assert_eq!(
        handoff_a,
        vec![handoff_b.clone()],
        "exactly once on A, nothing else"
    );
    assert_eq!(handoff_b["status"], "offline", "no inbox agent is online");
    tab_a
        .expect_silence(Duration::from_millis(300))
        .await
        .expect("no seventh-and-a-half event");
    drop(tab_a);

    // The visitor reconnects to B: the full history, every event once, in order.
    let mut back = b.client().await;
    back.send_json(resume_hello(&b, &welcome, None)).await;
    let full = back.recv_type("welcome").await.expect("welcome");
    assert_eq!(full["status"], "waiting_for_agent");
    assert_eq!(full["last_event_id"], 7);
    assert_eq!(history_event_ids(&full), (1..=7).collect::<Vec<_>>());
    let visitor_texts: Vec<&str> = full["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|entry| entry["role"] == "visitor")
        .map(|entry| entry["text"].as_str().expect("text"))
        .collect();
    assert_eq!(
        visitor_texts,
        vec![
            "How do I reset my password?",
            "How long does shipping take?",
            text
        ]
    );

    // And with last_event_id: exactly the missed events, as frames.
    let mut replay = b.client().await;
    replay.send_json(resume_hello(&b, &welcome, Some(4))).await;
    let welcome_again = replay.recv_type("welcome").await.expect("welcome");
    assert_eq!(welcome_again["history"], json!([]));
    let replayed = stored_frames_through(&mut replay, 7).await;
    let replayed_ids: Vec<u64> = replayed
        .iter()
        .map(|f| f["event_id"].as_u64().expect("event_id"))
        .collect();
    assert_eq!(replayed_ids, vec![5, 6, 7]);
    assert_eq!(replayed[2], handoff_b);
    replay
        .expect_silence(Duration::from_millis(300))
        .await
        .expect("nothing twice");
}

#[tokio::test]
async fn an_answered_turn_costs_at_most_four_redis_round_trips() {
    let redis = shared_redis_layer();
    // The outbox only when woken: its background poll would count in the turns' window.
    let quiet_outbox = "[helpdesk]\noutbox_poll = \"1h\"\n";
    let app = app_with(&[&redis, RELAXED_LIMITS, quiet_outbox]).await;
    let store = app.redis_store.clone().expect("a Redis store");
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    // The first turn also creates the conversation and loads the scripts.
    client
        .ask("How do I reset my password?")
        .await
        .expect("turn");
    let mut per_turn = Vec::new();
    for question in [
        "How long does shipping take?",
        "Can I change my email address?",
    ] {
        let before = store.round_trips();
        let turn = client.ask(question).await.expect("turn");
        assert_eq!(turn.end["type"], "answer_end");
        per_turn.push(store.round_trips() - before);
    }
    println!("redis round trips per answered turn: {per_turn:?}");
    assert_eq!(
        per_turn,
        vec![4, 4],
        "append the message (status read atomically), read the events and the recent \
         answers' feedback for the policy, append the answer: issue 4's budget is 4"
    );
    // A turn that hands off: append the message, the policy's two reads, the online agents
    // (none, so the message asks for an email), the conversation (an email already left?),
    // then open the handoff (event with its place in line + pending record + status + outbox
    // and queue entries in one script); then the outbox
    // (woken by the handoff, not polling: `outbox_poll` is an hour here) delivers its ticket:
    // claim, read the conversation, the pending handoff, its ticket (none yet) and the events,
    // record the ticket.
    let before = store.round_trips();
    let turn = client
        .ask("I want to talk to a human please")
        .await
        .expect("turn");
    assert_eq!(turn.end["type"], "handoff", "{}", turn.end);
    let started = std::time::Instant::now();
    while app
        .engine
        .outbox()
        .counters()
        .tickets
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no ticket recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let handoff_turn = store.round_trips() - before;
    println!("redis round trips per handoff turn, its ticket included: {handoff_turn}");
    assert_eq!(handoff_turn, 6 + 6);
}

#[tokio::test]
async fn redis_killed_and_restarted_keeps_every_acknowledged_message_and_the_conversation_goes_on()
{
    let mut redis = OwnedRedis::start();
    let layer = format!(
        "{}timeout = \"1s\"\n",
        redis_layer(&redis.url(), &unique_key_prefix())
    );
    let app = app_with(&[&layer, RELAXED_LIMITS]).await;
    let mut client = app.client().await;
    let welcome = client.hello(&app.site_key).await.expect("welcome");
    let questions = [
        "How do I reset my password?",
        "How long does shipping take?",
        "Can I change my email address?",
    ];
    let mut acked = Vec::new();
    for question in questions {
        let turn = client.ask(question).await.expect("turn");
        acked.push((turn.ack.clone(), question.to_string()));
    }

    redis.kill9();

    // While Redis is down: an immediate upstream_unavailable, never a hang.
    let during = uuid::Uuid::new_v4().to_string();
    let asked = Instant::now();
    client
        .send_json(message(&during, "Do you ship to Canada?"))
        .await;
    let error = client.recv().await.expect("an answer while Redis is down");
    let waited = asked.elapsed();
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "upstream_unavailable", "{error}");
    assert_eq!(error["client_message_id"], during.as_str());
    assert!(waited < Duration::from_secs(2), "reported after {waited:?}");
    // A new visitor too.
    let mut newcomer = app.client().await;
    newcomer
        .send_json(json!({"type": "hello", "v": 1, "site_key": app.site_key}))
        .await;
    let refused = newcomer.recv().await.expect("an answer to hello");
    assert_eq!(refused["code"], "upstream_unavailable", "{refused}");

    redis.restart();

    // The same socket goes on: the message the outage refused is accepted once Redis is back
    // (retried as a widget would), and answered.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ack = loop {
        client
            .send_json(message(&during, "Do you ship to Canada?"))
            .await;
        let reply = client.recv().await.expect("a reply");
        match reply["type"].as_str() {
            Some("ack") => break reply,
            Some("error") if reply["code"] == "upstream_unavailable" => {
                assert!(
                    Instant::now() < deadline,
                    "Redis is back but the store is not"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => panic!("unexpected {reply}"),
        }
    };
    assert_eq!(ack["client_message_id"], during.as_str());
    assert_eq!(ack["duplicate"], false);
    assert_eq!(
        ack["event_id"], 7,
        "the log survived: 3 questions + 3 answers before it"
    );
    let turn_end = loop {
        match client.recv_within(Duration::from_secs(15)).await {
            // The policy may answer or (three exchanges without a resolution) hand off.
            Some(Received::Frame(frame))
                if frame["type"] == "answer_end" || frame["type"] == "handoff" =>
            {
                break frame;
            }
            Some(Received::Frame(frame)) if frame["type"] == "error" => {
                panic!("the turn after the restart failed: {frame}")
            }
            Some(Received::Frame(_)) => {}
            other => panic!("expected the answer, got {other:?}"),
        }
    };
    assert_eq!(turn_end["event_id"], 8);

    // Every acknowledged message is there, with its ids, after the SIGKILL.
    let mut resumed = app.client().await;
    resumed.send_json(resume_hello(&app, &welcome, None)).await;
    let again = resumed
        .recv_type("welcome")
        .await
        .expect("welcome after restart");
    let history = again["history"].as_array().expect("history");
    assert_eq!(history_event_ids(&again), (1..=8).collect::<Vec<_>>());
    for (ack, question) in &acked {
        let entry = history
            .iter()
            .find(|entry| entry["event_id"] == ack["event_id"])
            .unwrap_or_else(|| panic!("acked message {ack} lost"));
        assert_eq!(entry["message_id"], ack["message_id"]);
        assert_eq!(entry["text"], question.as_str());
        assert_eq!(entry["role"], "visitor");
    }
    assert_eq!(history[6]["text"], "Do you ship to Canada?");
}
