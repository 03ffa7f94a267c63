//! The WebSocket contract (DESIGN.md, PROTOCOL.md), black-box: the real server on
//! 127.0.0.1:0 over the demo knowledge base, a real WebSocket client.

use frontdesk_tests::{Received, TestAppOptions, spawn_app, spawn_app_with, spawn_app_with_config};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

const QUIET: Duration = Duration::from_millis(400);

fn source_ids(answer_end: &Value) -> Vec<String> {
    answer_end["sources"]
        .as_array()
        .expect("sources is an array")
        .iter()
        .map(|s| s["article_id"].as_str().expect("article_id").to_string())
        .collect()
}

#[tokio::test]
async fn a_question_streams_ordered_deltas_that_add_up_to_a_cited_answer() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let welcome = client.hello(&app.site_key).await.expect("welcome");
    assert_eq!(welcome["status"], "bot");
    assert_eq!(welcome["last_event_id"], 0);
    assert_eq!(welcome["history"], json!([]));
    assert_eq!(welcome["resume_token"].as_str().map(str::len), Some(64));

    let turn = client
        .ask("How do I reset my password?")
        .await
        .expect("a turn");
    assert_eq!(turn.ack["duplicate"], false);
    assert_eq!(turn.ack["event_id"], 1);
    assert_eq!(
        turn.frames[0],
        json!({"type": "typing", "actor": "assistant", "is_typing": true})
    );
    let seqs: Vec<u64> = turn
        .deltas
        .iter()
        .map(|d| d["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "seq 0, 1, 2, …"
    );
    assert!(seqs.len() >= 3, "streamed in small chunks: {seqs:?}");
    let end = &turn.end;
    assert_eq!(end["type"], "answer_end");
    assert_eq!(end["event_id"], 2);
    assert_eq!(end["decision"], "answer");
    assert_eq!(turn.streamed_text(), end["text"].as_str().expect("text"));
    assert!(
        turn.deltas
            .iter()
            .all(|d| d["answer_id"] == end["answer_id"])
    );
    assert_eq!(
        source_ids(end).first().map(String::as_str),
        Some("account/reset-password"),
        "{end}"
    );
    assert_eq!(end["sources"][0]["title"], "Reset your password");
    assert!(
        end["text"]
            .as_str()
            .expect("text")
            .to_lowercase()
            .contains("password")
    );
    let confidence = end["confidence"].as_f64().expect("confidence");
    assert!((0.0..=1.0).contains(&confidence));
}

#[tokio::test]
async fn nothing_relevant_says_so_and_offers_a_human() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let turn = client.ask("qwzx blorfing zyxxy").await.expect("a turn");
    assert_eq!(turn.end["type"], "answer_end");
    assert_eq!(turn.end["decision"], "handoff");
    assert_eq!(turn.end["sources"], json!([]));
    let text = turn.end["text"].as_str().expect("text");
    assert!(
        text.contains("couldn't find") && text.contains("connect you with someone"),
        "{text}"
    );
    assert_eq!(turn.streamed_text(), text);
}

#[tokio::test]
async fn resuming_with_the_token_returns_the_same_history_and_without_it_is_refused() {
    let app = spawn_app().await;
    let mut first = app.client().await;
    let welcome = first.hello(&app.site_key).await.expect("welcome");
    let question = "How long does shipping take?";
    let turn = first.ask(question).await.expect("a turn");
    drop(first);

    let conversation_id = welcome["conversation_id"].as_str().expect("id");
    let visitor_id = welcome["visitor_id"].as_str().expect("visitor");
    let token = welcome["resume_token"].as_str().expect("token");

    let mut resumed = app.client().await;
    resumed
        .send_json(
            json!({"type": "hello", "v": 1, "site_key": app.site_key, "visitor_id": visitor_id,
            "conversation_id": conversation_id, "resume_token": token}),
        )
        .await;
    let again = resumed
        .recv_type("welcome")
        .await
        .expect("welcome on resume");
    assert_eq!(again["conversation_id"], conversation_id);
    assert_eq!(again["visitor_id"], visitor_id);
    assert_eq!(again["last_event_id"], 2);
    let history = again["history"].as_array().expect("history");
    let texts: Vec<&str> = history
        .iter()
        .map(|h| h["text"].as_str().expect("text"))
        .collect();
    assert_eq!(
        texts,
        vec![question, turn.end["text"].as_str().expect("answer")]
    );
    assert_eq!(history[0]["role"], "visitor");
    assert_eq!(history[1]["role"], "assistant");
    assert_eq!(history[1]["sources"], turn.end["sources"]);
    assert_eq!(history[1]["event_id"], 2);
    // The resumed socket is a working conversation.
    let next = resumed
        .ask("And how do I track my order?")
        .await
        .expect("a turn");
    assert_eq!(next.ack["event_id"], 3);

    for hello in [
        json!({"type": "hello", "v": 1, "site_key": app.site_key, "visitor_id": visitor_id, "conversation_id": conversation_id}),
        json!({"type": "hello", "v": 1, "site_key": app.site_key, "visitor_id": visitor_id, "conversation_id": conversation_id,
            "resume_token": "00".repeat(32)}),
        json!({"type": "hello", "v": 1, "site_key": app.site_key, "visitor_id": "v_someone_else", "conversation_id": conversation_id,
            "resume_token": token}),
    ] {
        let mut intruder = app.client().await;
        intruder.send_json(hello.clone()).await;
        let refused = intruder.recv().await.expect("a reply");
        assert_eq!(refused["type"], "error", "{hello}");
        assert_eq!(refused["code"], "unauthorized", "{hello}");
        // The socket stays usable: a fresh hello works.
        let fresh = intruder
            .hello(&app.site_key)
            .await
            .expect("welcome after a refusal");
        assert_ne!(fresh["conversation_id"], conversation_id);
    }
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_replays_exactly_the_later_events() {
    let app = spawn_app().await;
    let mut first = app.client().await;
    let welcome = first.hello(&app.site_key).await.expect("welcome");
    let one = first
        .ask("How do I reset my password?")
        .await
        .expect("turn 1");
    let two = first
        .ask("Can I change my email address?")
        .await
        .expect("turn 2");
    assert_eq!(one.end["event_id"], 2);
    assert_eq!(two.ack["event_id"], 3);
    assert_eq!(two.end["event_id"], 4);
    drop(first);

    let mut second = app.client().await;
    second
        .send_json(json!({"type": "hello", "v": 1, "site_key": app.site_key, "visitor_id": welcome["visitor_id"],
            "conversation_id": welcome["conversation_id"], "resume_token": welcome["resume_token"], "last_event_id": 2}))
        .await;
    let again = second.recv_type("welcome").await.expect("welcome");
    assert_eq!(
        again["history"],
        json!([]),
        "a reconnect gets replayed frames, not history"
    );
    assert_eq!(again["last_event_id"], 4);
    let replayed_ack = second.recv().await.expect("replayed ack");
    assert_eq!(replayed_ack, two.ack, "event 3 replays as its ack");
    let replayed_end = second.recv().await.expect("replayed answer_end");
    assert_eq!(
        replayed_end, two.end,
        "event 4 replays as the same answer_end"
    );
    second
        .expect_silence(QUIET)
        .await
        .expect("nothing else is replayed, and no deltas");

    // Up to date: nothing to replay.
    let mut third = app.client().await;
    third
        .send_json(json!({"type": "hello", "v": 1, "site_key": app.site_key, "visitor_id": welcome["visitor_id"],
            "conversation_id": welcome["conversation_id"], "resume_token": welcome["resume_token"], "last_event_id": 4}))
        .await;
    third.recv_type("welcome").await.expect("welcome");
    third
        .expect_silence(QUIET)
        .await
        .expect("nothing to replay");
}

#[tokio::test]
async fn the_same_client_message_id_twice_makes_one_turn() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let id = uuid::Uuid::new_v4().to_string();
    let turn = client
        .ask_with_id(&id, "Where is my order?")
        .await
        .expect("a turn");
    assert_eq!(turn.ack["duplicate"], false);

    client
        .send_json(
            json!({"type": "message", "client_message_id": id, "text": "Where is my order?"}),
        )
        .await;
    let ack = client.recv_type("ack").await.expect("a second ack");
    assert_eq!(ack["duplicate"], true);
    assert_eq!(ack["message_id"], turn.ack["message_id"]);
    assert_eq!(ack["event_id"], turn.ack["event_id"]);
    client.expect_silence(QUIET).await.expect("no second turn");

    // One visitor message and one answer were stored.
    let next = client
        .ask("thanks, and refunds?")
        .await
        .expect("another turn");
    assert_eq!(next.ack["event_id"], 3);
}

#[tokio::test]
async fn bad_frames_get_the_named_error_and_the_socket_stays_usable() {
    let app = spawn_app().await;
    let mut client = app.client().await;

    // A message before hello.
    client
        .send_json(
            json!({"type": "message", "client_message_id": uuid::Uuid::new_v4(), "text": "hi"}),
        )
        .await;
    let error = client.recv_type("error").await.expect("error");
    assert_eq!(error["code"], "unauthorized");

    client
        .hello(&app.site_key)
        .await
        .expect("welcome after the refusal");

    let cases: Vec<(Message, &str)> = vec![
        (Message::text("{this is not json"), "malformed JSON"),
        (
            Message::text(r#"{"type":"shout","text":"HI"}"#),
            "unknown frame type",
        ),
        (
            Message::binary(vec![1u8, 2, 3]),
            "binary frames are not supported",
        ),
        (
            Message::text(r#"{"type":"message","text":"no id"}"#),
            "invalid message frame",
        ),
        (
            Message::text(r#"{"type":"hello","v":1,"site_key":"pk_demo_frontdesk"}"#),
            "already",
        ),
        (
            Message::text(r#"{"type":"csat","rating":9}"#),
            "rating must be 1 to 5",
        ),
        (
            Message::text(r#"{"type":"contact","email":"not-an-email"}"#),
            "not an email",
        ),
    ];
    for (message, expected) in cases {
        client.send(message.clone()).await;
        let error = client
            .recv_type("error")
            .await
            .unwrap_or_else(|err| panic!("{message:?}: {err}"));
        assert_eq!(error["code"], "bad_request", "{message:?}");
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .contains(expected),
            "{message:?}: {error}"
        );
    }

    // An over-long message: bad_request naming the message, nothing stored.
    let max = app.settings.ws.max_message_chars.get();
    let id = uuid::Uuid::new_v4().to_string();
    client
        .send_json(json!({"type": "message", "client_message_id": id, "text": "é".repeat(max + 1)}))
        .await;
    let error = client.recv_type("error").await.expect("error");
    assert_eq!(error["code"], "bad_request");
    assert_eq!(error["client_message_id"], id.as_str());
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains(&format!("limit is {max}")),
        "{error}"
    );

    // Exactly at the limit is fine, and the socket still works after all of the above.
    let turn = client
        .ask(&"a".repeat(max))
        .await
        .expect("a turn after the errors");
    assert_eq!(turn.ack["event_id"], 1, "no rejected frame stored anything");
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let app = spawn_app_with_config("[ws]\nmax_frame_bytes = 4096\n").await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let text = json!({"type": "message", "client_message_id": uuid::Uuid::new_v4(), "text": "x".repeat(5000)}).to_string();
    client.send(Message::text(text)).await;
    let (code, reason, frames) = client.expect_close().await.expect("a close");
    assert_eq!(code, 1009, "{reason}");
    assert!(frames.is_empty(), "{frames:?}");
}

#[tokio::test]
async fn an_oversized_fragmented_message_closes_with_1009() {
    let app = spawn_app_with_config("[ws]\nmax_frame_bytes = 4096\n").await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    // Three 2000-byte fragments: each fits, together they do not.
    client
        .send(Message::Frame(Frame::message(
            vec![b'x'; 2000],
            OpCode::Data(Data::Text),
            false,
        )))
        .await;
    client
        .send(Message::Frame(Frame::message(
            vec![b'x'; 2000],
            OpCode::Data(Data::Continue),
            false,
        )))
        .await;
    client
        .send(Message::Frame(Frame::message(
            vec![b'x'; 2000],
            OpCode::Data(Data::Continue),
            true,
        )))
        .await;
    let (code, _, _) = client.expect_close().await.expect("a close");
    assert_eq!(code, 1009);
}

#[tokio::test]
async fn a_fragmented_text_message_is_reassembled() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let id = uuid::Uuid::new_v4().to_string();
    let text =
        json!({"type": "message", "client_message_id": id, "text": "How do I reset my password?"})
            .to_string();
    let (head, tail) = text.as_bytes().split_at(20);
    client
        .send(Message::Frame(Frame::message(
            head.to_vec(),
            OpCode::Data(Data::Text),
            false,
        )))
        .await;
    client
        .send(Message::Frame(Frame::message(
            tail.to_vec(),
            OpCode::Data(Data::Continue),
            true,
        )))
        .await;
    let ack = client.recv_type("ack").await.expect("ack");
    assert_eq!(ack["client_message_id"], id.as_str());
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    // tungstenite will not build a text message from bad bytes; a hand-made frame can.
    let bad = vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'];
    client
        .send(Message::Frame(Frame::message(
            bad,
            OpCode::Data(Data::Text),
            true,
        )))
        .await;
    let (code, reason, _) = client.expect_close().await.expect("a close");
    assert_eq!(code, 1007, "{reason}");
}

#[tokio::test]
async fn messages_over_the_rate_limit_get_rate_limited_with_retry_after() {
    let app = spawn_app_with_config("[ws]\nmessages_per_minute = 2\nmessage_burst = 2\n").await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    client
        .ask("How do I reset my password?")
        .await
        .expect("first");
    client
        .ask("How do I change my email?")
        .await
        .expect("second");
    let id = uuid::Uuid::new_v4().to_string();
    client
        .send_json(json!({"type": "message", "client_message_id": id, "text": "third"}))
        .await;
    let error = client.recv_type("error").await.expect("rate limited");
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["client_message_id"], id.as_str());
    let retry = error["retry_after_ms"].as_u64().expect("retry_after_ms");
    // Two a minute: the next message is allowed within 30 s.
    assert!(retry > 0 && retry <= 30_000, "{retry}");
    // Nothing was stored: resuming shows two exchanges.
    client
        .expect_silence(QUIET)
        .await
        .expect("no turn for a refused message");
}

#[tokio::test]
async fn request_human_records_a_pending_handoff_with_a_warm_message() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let welcome = client.hello(&app.site_key).await.expect("welcome");
    client
        .ask("How do I reset my password?")
        .await
        .expect("a turn");

    client.send_json(json!({"type": "request_human"})).await;
    let handoff = client.recv_type("handoff").await.expect("handoff");
    // Recorded for the inbox; no agent is online, so the visitor is asked for an email.
    assert_eq!(handoff["status"], "offline");
    assert_eq!(handoff["event_id"], 3);
    let message = handoff["message"].as_str().expect("message");
    assert!(
        message.contains("Leave your email") && message.contains("won't need to repeat"),
        "{message}"
    );
    assert!(
        !message.contains("requested_human"),
        "no reason code in front of the visitor"
    );

    // Asking again repeats the same handoff; nothing new is stored.
    client.send_json(json!({"type": "request_human"})).await;
    let again = client.recv_type("handoff").await.expect("handoff again");
    assert_eq!(again, handoff);

    // While waiting for an agent, messages are stored and acknowledged but not answered.
    client
        .send_json(
            json!({"type": "message", "client_message_id": uuid::Uuid::new_v4(), "text": "hello?"}),
        )
        .await;
    let ack = client.recv_type("ack").await.expect("ack");
    assert_eq!(ack["event_id"], 4);
    client
        .expect_silence(QUIET)
        .await
        .expect("the assistant stays quiet");

    let mut resumed = app.client().await;
    resumed
        .send_json(json!({"type": "hello", "v": 1, "site_key": app.site_key, "visitor_id": welcome["visitor_id"],
            "conversation_id": welcome["conversation_id"], "resume_token": welcome["resume_token"]}))
        .await;
    let again = resumed.recv_type("welcome").await.expect("welcome");
    assert_eq!(again["status"], "waiting_for_agent");
    let roles: Vec<&str> = again["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["role"].as_str().expect("role"))
        .collect();
    assert_eq!(roles, vec!["visitor", "assistant", "system", "visitor"]);
}

#[tokio::test]
async fn asking_for_a_person_in_words_hands_off_at_once() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let turn = client
        .ask("I need to talk to a real person please")
        .await
        .expect("a turn");
    assert_eq!(turn.end["type"], "handoff");
    assert_eq!(turn.end["status"], "offline", "no inbox agent is online");
    assert!(turn.deltas.is_empty(), "no answer is streamed");
}

#[tokio::test]
async fn feedback_csat_and_contact_are_recorded_silently_and_unknown_answers_are_not_found() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let welcome = client.hello(&app.site_key).await.expect("welcome");
    let turn = client
        .ask("How do I reset my password?")
        .await
        .expect("a turn");
    let answer_id = turn.end["answer_id"].as_str().expect("answer id");

    client
        .send_json(json!({"type": "feedback", "answer_id": answer_id, "helpful": true}))
        .await;
    client
        .send_json(json!({"type": "csat", "rating": 5, "comment": "quick and clear"}))
        .await;
    client
        .send_json(json!({"type": "contact", "email": "ada@example.com"}))
        .await;
    client
        .send_json(json!({"type": "typing", "is_typing": true}))
        .await;
    client
        .expect_silence(QUIET)
        .await
        .expect("success is silent");

    client
        .send_json(json!({"type": "feedback", "answer_id": uuid::Uuid::new_v4(), "helpful": false}))
        .await;
    let error = client.recv_type("error").await.expect("not found");
    assert_eq!(error["code"], "not_found");

    let store = &app.engine.ports().store;
    let site = frontdesk::ids::SiteId::parse("demo").expect("valid");
    let id =
        frontdesk::ids::ConversationId::parse(welcome["conversation_id"].as_str().expect("id"))
            .expect("uuid");
    let conversation = store
        .conversation(&site, &id)
        .await
        .expect("store")
        .expect("stored");
    assert_eq!(
        conversation.csat.map(|c| (c.rating.get(), c.comment)),
        Some((5, Some("quick and clear".into())))
    );
    assert_eq!(
        conversation.contact_email.map(|e| e.as_str().to_string()),
        Some("ada@example.com".into())
    );
    let answer = frontdesk::ids::AnswerId::parse(answer_id).expect("uuid");
    assert_eq!(
        store.feedback(&site, &id, answer).await.expect("store"),
        Some(true)
    );
}

#[tokio::test]
async fn unknown_site_keys_and_protocol_versions_are_refused() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    client
        .send_json(json!({"type": "hello", "v": 1, "site_key": "pk_nobody_here"}))
        .await;
    assert_eq!(
        client.recv_type("error").await.expect("error")["code"],
        "unauthorized"
    );
    client
        .send_json(json!({"type": "hello", "v": 2, "site_key": app.site_key}))
        .await;
    let error = client.recv_type("error").await.expect("error");
    assert_eq!(error["code"], "bad_request");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("version")
    );
}

#[tokio::test]
async fn idle_sockets_are_pinged_then_closed() {
    let app =
        spawn_app_with_config("[ws]\nheartbeat = \"100ms\"\nidle_timeout = \"600ms\"\n").await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let started = std::time::Instant::now();
    let (code, reason, _) = client.expect_close().await.expect("a close");
    assert_eq!((code, reason.as_str()), (1000, "idle timeout"));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(
        client.n_pings >= 3,
        "pinged every 100 ms: {}",
        client.n_pings
    );
}

/// A retriever that finds one article, unsure and sharing no word with the question.
struct UnsureRetriever;

#[async_trait::async_trait]
impl frontdesk::ports::retriever::Retriever for UnsureRetriever {
    fn adapter_name(&self) -> &'static str {
        "unsure"
    }

    async fn retrieve(
        &self,
        _site: &frontdesk::ids::SiteId,
        _query: &frontdesk::ports::retriever::RetrievalQuery,
    ) -> Result<frontdesk_kb::index::SearchResult, frontdesk::ports::retriever::RetrieveError> {
        let passage = frontdesk_kb::index::Passage {
            chunk_id: "policies/warranty##0".into(),
            heading_path: vec![],
            text: "Every lamp has a two-year warranty.".into(),
            keyword_score: 0.0,
            semantic_score: 0.31,
            fused_score: 0.3,
        };
        Ok(frontdesk_kb::index::SearchResult {
            hits: vec![frontdesk_kb::index::ArticleHit {
                document_id: frontdesk_kb::DocumentId::parse("policies/warranty").expect("valid"),
                title: "Warranty".into(),
                url: Some("/policies/warranty".into()),
                internal: false,
                keyword_score: 0.0,
                semantic_score: 0.31,
                fused_score: 0.3,
                passages: vec![passage],
            }],
            confidence: 0.2,
            keyword_only: false,
            rankings_agree: false,
        })
    }

    async fn check(&self) -> Result<(), frontdesk::ports::retriever::RetrieveError> {
        Ok(())
    }
}

#[tokio::test]
async fn an_unsure_retrieval_points_to_the_closest_article_and_offers_a_human() {
    let app = spawn_app_with(TestAppOptions {
        retriever: Some(std::sync::Arc::new(UnsureRetriever)),
        ..Default::default()
    })
    .await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let turn = client
        .ask("Can you quote a custom SAP integration?")
        .await
        .expect("a turn");
    assert_eq!(turn.end["decision"], "handoff");
    assert_eq!(
        turn.end["confidence"].as_f64().map(|c| (c * 10.0).round()),
        Some(2.0)
    );
    assert_eq!(source_ids(&turn.end), vec!["policies/warranty"]);
    let text = turn.end["text"].as_str().expect("text");
    assert!(
        text.contains("not sure")
            && text.contains("\"Warranty\"")
            && text.contains("connect you with someone"),
        "{text}"
    );
    assert_eq!(turn.streamed_text(), text);
}

/// A retriever that takes its time, so a turn is in flight when shutdown starts.
struct SlowRetriever(std::sync::Arc<dyn frontdesk::ports::retriever::Retriever>);

#[async_trait::async_trait]
impl frontdesk::ports::retriever::Retriever for SlowRetriever {
    fn adapter_name(&self) -> &'static str {
        "slow"
    }

    async fn retrieve(
        &self,
        site: &frontdesk::ids::SiteId,
        query: &frontdesk::ports::retriever::RetrievalQuery,
    ) -> Result<frontdesk_kb::index::SearchResult, frontdesk::ports::retriever::RetrieveError> {
        tokio::time::sleep(Duration::from_millis(700)).await;
        self.0.retrieve(site, query).await
    }

    async fn check(&self) -> Result<(), frontdesk::ports::retriever::RetrieveError> {
        self.0.check().await
    }
}

#[tokio::test]
async fn graceful_shutdown_lets_the_in_flight_answer_finish_then_closes_with_1001() {
    let slow = std::sync::Arc::new(SlowRetriever(frontdesk_tests::demo_retriever()));
    let mut app = spawn_app_with(TestAppOptions {
        retriever: Some(slow),
        ..Default::default()
    })
    .await;
    let mut busy = app.client().await;
    busy.hello(&app.site_key).await.expect("welcome");
    let mut idle = app.client().await;
    idle.hello(&app.site_key).await.expect("welcome");

    busy.send_json(json!({"type": "message", "client_message_id": uuid::Uuid::new_v4(), "text": "How do I reset my password?"})).await;
    busy.recv_type("ack").await.expect("ack");
    app.shutdown();

    let (code, _, _) = idle.expect_close().await.expect("the idle socket closes");
    assert_eq!(code, 1001);
    let (code, _, frames) = busy
        .expect_close()
        .await
        .expect("the busy socket closes after its answer");
    assert_eq!(code, 1001);
    let end = frames
        .iter()
        .find(|f| f["type"] == "answer_end")
        .expect("the in-flight answer finished");
    let streamed: String = frames
        .iter()
        .filter(|f| f["type"] == "delta")
        .filter_map(|f| f["text"].as_str())
        .collect();
    assert_eq!(streamed, end["text"].as_str().expect("text"));
    app.stopped().await.expect("the server stops");
    assert!(
        tokio_tungstenite::connect_async(&app.ws_url).await.is_err(),
        "no new connections"
    );
}

#[tokio::test]
async fn two_sockets_on_one_conversation_both_see_stored_events() {
    let app = spawn_app().await;
    let mut first = app.client().await;
    let welcome = first.hello(&app.site_key).await.expect("welcome");
    let mut second = app.client().await;
    second
        .send_json(json!({"type": "hello", "v": 1, "site_key": app.site_key, "visitor_id": welcome["visitor_id"],
            "conversation_id": welcome["conversation_id"], "resume_token": welcome["resume_token"]}))
        .await;
    second.recv_type("welcome").await.expect("welcome");
    let turn = first
        .ask("How do I reset my password?")
        .await
        .expect("a turn");
    // The other tab gets the stored events (the ack and the answer_end), not the deltas.
    assert_eq!(second.recv().await.expect("ack"), turn.ack);
    assert_eq!(second.recv().await.expect("answer_end"), turn.end);
    match second.recv_within(QUIET).await {
        None => {}
        Some(Received::Frame(frame)) => panic!("unexpected {frame}"),
        Some(other) => panic!("unexpected {other:?}"),
    }
}
