//! The LLM path against a local server that reproduces real servers' failures
//! (`tests/support/fault_llm.rs`, wire-facts §4): the adapter's retries and errors, then the
//! whole turn over a WebSocket — streamed and cited answers, usage and cost, the grounding
//! check, the canary, the budget, and what the visitor gets when the model fails.

use frontdesk::adapters::openai_chat::{Endpoint, OpenAiChatModel, Timeouts};
use frontdesk::domain::{EventKind, ReasonCode};
use frontdesk::engine::analysis::LocalAnalyzer;
use frontdesk::engine::llm_analysis::{AnalysisCounters, LlmAnalyzer};
use frontdesk::engine::replies;
use frontdesk::ids::{ConversationId, EventId, SiteId};
use frontdesk::ports::analyzer::{AnalysisRequest, AnalysisSource, Analyzer};
use frontdesk::ports::chat::{
    ChatError, ChatEvent, ChatMessage, ChatModel, ChatRequest, TimeoutKind, TokenUsage,
};
use frontdesk_tests::fault_llm::{FaultLlm, Reply, StreamReply};
use frontdesk_tests::{TestApp, TestAppOptions, spawn_app_with};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn model(fake: &FaultLlm, first_token: Duration) -> OpenAiChatModel {
    OpenAiChatModel::new(
        Endpoint::OpenAi {
            base_url: fake.base_url(),
            api_key: Some("sk-test".into()),
            model: "fake-model".into(),
        },
        Timeouts {
            connect: Duration::from_secs(2),
            first_token,
            total: Duration::from_secs(20),
        },
    )
    .expect("client builds")
    .with_backoff(Duration::from_millis(10), Duration::from_millis(40))
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::user("hi")],
        max_tokens: 50,
        temperature: 0.0,
        schema: None,
    }
}

/// Runs a stream to its end: the events before the first error, and the error.
async fn drain(model: &OpenAiChatModel) -> Result<(Vec<ChatEvent>, Option<ChatError>), ChatError> {
    let mut stream = model.stream(request()).await?;
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(err) => return Ok((events, Some(err))),
        }
    }
    Ok((events, None))
}

fn text_of(events: &[ChatEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Delta(d) => Some(d.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_for_then_the_stream_succeeds() {
    let fake = FaultLlm::start(vec![Reply::rate_limited(1), Reply::stream(&["Hel", "lo"])]).await;
    let started = Instant::now();
    let (events, error) = drain(&model(&fake, Duration::from_secs(10)))
        .await
        .expect("opens");
    assert!(error.is_none(), "{error:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(
        fake.requests().len(),
        2,
        "one retry, by us (async-openai's own are off)"
    );
    assert_eq!(text_of(&events), "Hello");
    assert_eq!(
        events.last(),
        Some(&ChatEvent::Usage(TokenUsage {
            prompt_tokens: 120,
            completion_tokens: 2
        }))
    );
    let body = &fake.requests()[0];
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["model"], "fake-model");
}

#[tokio::test]
async fn a_retry_after_longer_than_we_wait_fails_at_once() {
    let fake = FaultLlm::start(vec![Reply::rate_limited(30), Reply::stream(&["late"])]).await;
    let err = drain(&model(&fake, Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ChatError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
            message: "Rate limit reached for requests".into()
        }
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn insufficient_quota_is_not_retried() {
    let fake = FaultLlm::start(vec![Reply::out_of_quota(), Reply::stream(&["no"])]).await;
    let err = drain(&model(&fake, Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ChatError::RateLimited { message, .. } if message.contains("quota")),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_with_their_text_body() {
    let fake = FaultLlm::start(vec![Reply::server_error(503)]).await;
    let err = drain(&model(&fake, Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ChatError::Server {
            status: 503,
            message: "upstream connect error or disconnect/reset before headers".into()
        }
    );
    assert_eq!(fake.requests().len(), 3, "MAX_ATTEMPTS");
}

#[tokio::test]
async fn a_text_plain_429_is_a_rate_limit_not_a_parse_error() {
    let fake = FaultLlm::start(vec![Reply::Status {
        status: 429,
        content_type: "text/plain",
        body: "Too Many Requests".into(),
        retry_after: Some("0".into()),
    }])
    .await;
    let err = drain(&model(&fake, Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ChatError::RateLimited {
            retry_after: Some(Duration::ZERO),
            message: "Too Many Requests".into()
        }
    );
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn integer_error_codes_of_llama_cpp_and_vllm_are_read() {
    let fake = FaultLlm::start(vec![Reply::integer_code(
        400,
        "model 'fake-model' not found",
    )])
    .await;
    let err = drain(&model(&fake, Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ChatError::Rejected {
            status: 400,
            message: "model 'fake-model' not found".into()
        }
    );
    assert_eq!(fake.requests().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn a_stream_cut_mid_answer_is_an_error_after_exactly_one_request() {
    let fake = FaultLlm::start(vec![Reply::Stream(StreamReply {
        cut_after: Some(2),
        ..StreamReply::of(&["one ", "two ", "three ", "four"])
    })])
    .await;
    let (events, error) = drain(&model(&fake, Duration::from_secs(10)))
        .await
        .expect("opens");
    assert_eq!(text_of(&events), "one two ");
    assert!(matches!(error, Some(ChatError::Stream(_))), "{error:?}");
    assert_eq!(
        fake.requests().len(),
        1,
        "no retry once the stream has started"
    );
}

#[tokio::test]
async fn an_error_chunk_mid_stream_ends_the_stream() {
    let fake = FaultLlm::start(vec![Reply::Stream(StreamReply {
        error_chunk_after: Some(1),
        ..StreamReply::of(&["one ", "two"])
    })])
    .await;
    let (events, error) = drain(&model(&fake, Duration::from_secs(10)))
        .await
        .expect("opens");
    assert_eq!(text_of(&events), "one ");
    match error {
        Some(ChatError::Stream(message)) => {
            assert!(message.contains("server had an error"), "{message}")
        }
        other => panic!("expected a stream error, got {other:?}"),
    }
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_slow_first_token_times_out() {
    let fake = FaultLlm::start(vec![Reply::Stream(StreamReply {
        first_delay: Duration::from_secs(3),
        ..StreamReply::of(&["late"])
    })])
    .await;
    let outcome = drain(&model(&fake, Duration::from_millis(300))).await;
    let error = match outcome {
        Err(err) => err,
        Ok((events, error)) => {
            assert!(text_of(&events).is_empty());
            error.expect("an error")
        }
    };
    assert_eq!(error, ChatError::Timeout(TimeoutKind::FirstToken));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error() {
    let fake = FaultLlm::start(vec![Reply::stream(&["x"])]).await;
    let url = fake.base_url();
    drop(fake);
    let model = OpenAiChatModel::new(
        Endpoint::OpenAi {
            base_url: url,
            api_key: None,
            model: "m".into(),
        },
        Timeouts {
            connect: Duration::from_secs(1),
            first_token: Duration::from_secs(5),
            total: Duration::from_secs(5),
        },
    )
    .expect("builds")
    .with_backoff(Duration::from_millis(10), Duration::from_millis(20));
    let err = model.stream(request()).await.err().expect("fails");
    assert!(matches!(err, ChatError::Connect(_)), "{err:?}");
}

#[tokio::test]
async fn azure_requests_go_to_the_deployment_with_the_api_version_and_api_key() {
    let fake = FaultLlm::start(vec![Reply::stream(&["ok"])]).await;
    let model = OpenAiChatModel::new(
        Endpoint::Azure {
            base_url: format!("http://{}", fake.addr),
            api_key: "azure-key".into(),
            deployment: "gpt4o-prod".into(),
            api_version: "2024-10-21".into(),
        },
        Timeouts {
            connect: Duration::from_secs(2),
            first_token: Duration::from_secs(5),
            total: Duration::from_secs(5),
        },
    )
    .expect("builds");
    assert_eq!(model.model(), "gpt4o-prod");
    let mut stream = model.stream(request()).await.expect("opens");
    while stream.next().await.is_some() {}
    let head = &fake.request_heads()[0];
    assert!(
        head.starts_with(
            "POST /openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21 HTTP/1.1"
        ),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("api-key: azure-key"),
        "{head}"
    );
}

#[tokio::test]
async fn openai_requests_carry_the_bearer_key() {
    let fake = FaultLlm::start(vec![Reply::stream(&["ok"])]).await;
    let model = model(&fake, Duration::from_secs(5));
    let mut stream = model.stream(request()).await.expect("opens");
    while stream.next().await.is_some() {}
    let head = &fake.request_heads()[0];
    assert!(
        head.starts_with("POST /v1/chat/completions HTTP/1.1"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer sk-test"),
        "{head}"
    );
}

// --- structured analysis -------------------------------------------------------------------

fn taxonomy_site() -> frontdesk::config::Settings {
    frontdesk::config::Settings::load(&frontdesk::config::ConfigSources {
        file: None,
        layers: vec![
            r#"
[[sites]]
id = "t"
public_key = "pk_test_1234"
[[sites.taxonomy.categories]]
id = "billing"
description = "Invoices, payments and refunds"
examples = ["Where is my invoice?"]
"#
            .into(),
        ],
        env: frontdesk::config::EnvSnapshot::default(),
    })
    .expect("loads")
}

#[tokio::test]
async fn invalid_analysis_output_falls_back_to_the_local_analyzer_and_is_recorded() {
    let fake = FaultLlm::start(vec![
        Reply::stream(&["{\"category\": \"shipping\", ", "\"oops\": true}"]),
        Reply::stream(&[
            r#"{"category":"billing","priority":"high","language":"en","sentiment":"very_negative","#,
            r#""frustrated":true,"urgent":false,"churn_risk":false,"requested_human":false}"#,
        ]),
    ])
    .await;
    let settings = taxonomy_site();
    let local = Arc::new(LocalAnalyzer::build(&settings.sites, None).expect("builds"));
    let counters = Arc::new(AnalysisCounters::default());
    let analyzer = LlmAnalyzer::new(
        Arc::new(model(&fake, Duration::from_secs(10))),
        local,
        counters.clone(),
    );
    let site = SiteId::parse("t").expect("valid");
    let request = AnalysisRequest {
        text: "I was charged twice and nobody answers",
        embedding: None,
        previous_visitor_text: None,
        allow_model: true,
    };
    let first = analyzer
        .analyze(&site, &request)
        .await
        .expect("never fails");
    assert_eq!(first.source, AnalysisSource::LlmFallback);
    assert_eq!(counters.fallbacks.load(Ordering::Relaxed), 1);
    let schema = &fake.requests()[0]["response_format"];
    assert_eq!(schema["type"], "json_schema");
    assert_eq!(schema["json_schema"]["name"], "turn_analysis");
    assert_eq!(
        schema["json_schema"]["schema"]["properties"]["category"]["enum"],
        serde_json::json!(["billing", "none"]),
        "the nested json_schema.schema form (llama.cpp ignores the flat one)"
    );

    let second = analyzer
        .analyze(&site, &request)
        .await
        .expect("never fails");
    assert_eq!(second.source, AnalysisSource::Llm);
    assert_eq!(second.category.expect("classified").category, "billing");
    assert!(second.frustrated);
    assert_eq!(second.priority, frontdesk::config::Priority::High);
    assert_eq!(counters.llm.load(Ordering::Relaxed), 1);
}

// --- whole turns over the WebSocket --------------------------------------------------------

const RESET: &str = "How do I reset my password?";

/// The app over `fake`, with `llm_extra` in `[llm]` and `extra` after it.
async fn app_with(fake: &FaultLlm, llm_extra: &str, extra: &str) -> TestApp {
    spawn_app_with(TestAppOptions {
        config: vec![format!(
            "[llm]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"fake-model\"\n\
             first_token_timeout = \"3s\"\n{llm_extra}\n\
             [llm.prices]\n\"fake-model\" = {{ input = 1.0, output = 2.0 }}\n{extra}",
            fake.base_url()
        )],
        ..Default::default()
    })
    .await
}

async fn app(fake: &FaultLlm, extra: &str) -> TestApp {
    app_with(fake, "", extra).await
}

async fn stored_answer(app: &TestApp, conversation: &str) -> EventKind {
    let site = SiteId::parse("demo").expect("valid");
    let id = ConversationId::parse(conversation).expect("uuid");
    let events = app
        .engine
        .ports()
        .store
        .events_after(&site, &id, EventId::ZERO, 100)
        .await
        .expect("events");
    events
        .into_iter()
        .rev()
        .find(|e| matches!(e.kind, EventKind::AssistantAnswer { .. }))
        .expect("an answer was stored")
        .kind
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grounded_llm_answer_streams_cites_and_stores_its_usage_and_cost() {
    // The model quotes its first source, in three deltas.
    let fake = FaultLlm::start(vec![Reply::stream(&["Here is how: ", "{source1}", " [1]"])]).await;
    let app = app(&fake, "").await;
    let mut client = app.client().await;
    let welcome = client.hello(&app.site_key).await.expect("welcome");
    let turn = client.ask(RESET).await.expect("a turn");
    assert_eq!(turn.end["type"], "answer_end");
    assert_eq!(turn.end["decision"], "answer");
    assert_eq!(
        turn.deltas.len(),
        3,
        "each model delta is forwarded as it arrives"
    );
    assert!(
        turn.streamed_text().len() > "Here is how:  [1]".len() + 20,
        "{}",
        turn.streamed_text()
    );
    let seqs: Vec<u64> = turn
        .deltas
        .iter()
        .map(|d| d["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![0, 1, 2]);
    assert_eq!(turn.streamed_text(), turn.end["text"].as_str().unwrap());
    assert_eq!(
        turn.end["sources"][0]["article_id"],
        "account/reset-password"
    );

    let request = &fake.requests()[0];
    let system = request["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("<source id=\"1\" title=\"Reset your password\">"),
        "{system}"
    );
    // Too short for language detection, and no locale in `hello`: the visitor's own language.
    assert!(
        system.contains("Answer in the language of the visitor's last message"),
        "{system}"
    );
    assert_eq!(
        request["messages"].as_array().unwrap().last().unwrap()["content"],
        RESET
    );

    match stored_answer(&app, welcome["conversation_id"].as_str().unwrap()).await {
        EventKind::AssistantAnswer { usage, reasons, .. } => {
            let usage = usage.expect("usage stored with the turn");
            assert_eq!((usage.prompt_tokens, usage.completion_tokens), (120, 3));
            let expected = (120.0 * 1.0 + 3.0 * 2.0) / 1e6;
            assert!((usage.cost_usd.unwrap() - expected).abs() < 1e-12);
            assert!(reasons.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        app.engine.llm_counters().answered.load(Ordering::Relaxed),
        1
    );

    // The next turn's prompt carries the conversation so far.
    let _ = client
        .ask("And how long is the link valid?")
        .await
        .expect("a turn");
    let second = &fake.requests()[1]["messages"];
    let roles: Vec<&str> = second
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["system", "user", "assistant", "user"]);
    assert_eq!(second[1]["content"], RESET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_cut_mid_answer_gives_the_visitor_the_extractive_answer_and_one_request() {
    let fake = FaultLlm::start(vec![Reply::Stream(StreamReply {
        cut_after: Some(2),
        ..StreamReply::of(&[
            "On the sign-in screen, ",
            "tap Forgot password? ",
            "then more",
        ])
    })])
    .await;
    let app = app(&fake, "").await;
    let mut client = app.client().await;
    let welcome = client.hello(&app.site_key).await.expect("welcome");
    let turn = client.ask(RESET).await.expect("a turn");
    assert_eq!(
        turn.streamed_text(),
        "On the sign-in screen, tap Forgot password? "
    );
    let text = turn.end["text"].as_str().unwrap();
    assert!(text.starts_with(replies::LLM_INTERRUPTED), "{text}");
    assert!(
        text.len() > replies::LLM_INTERRUPTED.len() + 40 && text.contains("password"),
        "the extractive answer follows: {text}"
    );
    assert_eq!(turn.end["decision"], "answer");
    assert_eq!(
        turn.end["sources"][0]["article_id"],
        "account/reset-password"
    );
    assert_eq!(fake.requests().len(), 1, "no retry after the first delta");
    match stored_answer(&app, welcome["conversation_id"].as_str().unwrap()).await {
        EventKind::AssistantAnswer {
            reasons,
            text: stored,
            ..
        } => {
            assert_eq!(reasons, vec![ReasonCode::LlmFailure]);
            assert_eq!(stored, text, "what the visitor saw is what is stored");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(app.engine.llm_counters().failed.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_hands_off_with_llm_failure_when_configured() {
    let fake = FaultLlm::start(vec![Reply::server_error(500)]).await;
    let app = app_with(&fake, "on_failure = \"handoff\"", "").await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let turn = client.ask(RESET).await.expect("a turn");
    // Nothing was shown: one handoff message, said once.
    assert_eq!(turn.end["type"], "handoff", "{:?}", turn.frames);
    assert_eq!(turn.end["status"], "offline", "no inbox agent is online");
    assert_eq!(turn.end["message"], replies::LLM_UNAVAILABLE_HANDOFF);
    assert!(turn.deltas.is_empty());
    assert!(
        !turn.end.to_string().contains("llm_failure"),
        "reason codes never reach the visitor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_is_skipped_for_the_cooldown_and_shows_in_readyz() {
    let fake = FaultLlm::start(vec![Reply::server_error(503)]).await;
    let app = app_with(&fake, "failure_cooldown = \"60s\"", "").await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let first = client.ask(RESET).await.expect("a turn");
    assert_eq!(first.end["decision"], "answer", "the extractive answer");
    assert_eq!(fake.requests().len(), 3, "MAX_ATTEMPTS, before any token");
    let second = client.ask(RESET).await.expect("a turn");
    assert_eq!(second.end["decision"], "answer");
    assert_eq!(
        fake.requests().len(),
        3,
        "the model is not called while it cools down"
    );
    assert_eq!(
        app.engine
            .llm_counters()
            .cooling_down
            .load(Ordering::Relaxed),
        1
    );
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", app.http_url))
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["status"], "ready", "the model is optional: {ready}");
    assert_eq!(ready["degraded"], serde_json::json!(["llm"]), "{ready}");
    assert_eq!(ready["llm"]["failed"], 1, "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cut_at_max_tokens_is_not_shown_as_complete() {
    let fake = FaultLlm::start(vec![Reply::Stream(StreamReply {
        finish: "length",
        ..StreamReply::of(&["Here is how: ", "{source1}", " and then you"])
    })])
    .await;
    let app = app(&fake, "").await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let turn = client.ask(RESET).await.expect("a turn");
    let text = turn.end["text"].as_str().unwrap();
    assert!(text.starts_with(replies::LLM_INTERRUPTED), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_answers_show_nothing_that_gets_replaced() {
    let fake = FaultLlm::start(vec![Reply::stream(&[
        "Lumen will mail you a brand new lamp by drone ",
        "within two hours if you phone our Mars office [1].",
    ])])
    .await;
    let app = app_with(&fake, "hold_until_checked = true", "").await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let turn = client.ask(RESET).await.expect("a turn");
    for delta in &turn.deltas {
        assert!(!delta.to_string().contains("drone"), "{delta}");
    }
    assert_eq!(
        turn.streamed_text(),
        turn.end["text"].as_str().unwrap(),
        "only the replacement was streamed"
    );
    // Nothing wrong was shown, so no apology: the extractive answer alone.
    assert!(
        !turn.end["text"]
            .as_str()
            .unwrap()
            .starts_with(replies::LLM_REPLACED)
    );
    assert_eq!(turn.end["decision"], "answer");
    assert_eq!(
        app.engine.llm_counters().ungrounded.load(Ordering::Relaxed),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ungrounded_answer_is_replaced_and_counted() {
    let fake = FaultLlm::start(vec![Reply::stream(&[
        "Lumen will mail you a brand new lamp by drone ",
        "within two hours if you phone our Mars office [1].",
    ])])
    .await;
    let app = app(&fake, "").await;
    let mut client = app.client().await;
    let welcome = client.hello(&app.site_key).await.expect("welcome");
    let turn = client.ask(RESET).await.expect("a turn");
    let text = turn.end["text"].as_str().unwrap();
    assert!(text.starts_with(replies::LLM_REPLACED), "{text}");
    assert!(!text.contains("drone"), "{text}");
    match stored_answer(&app, welcome["conversation_id"].as_str().unwrap()).await {
        EventKind::AssistantAnswer { reasons, usage, .. } => {
            assert_eq!(reasons, vec![ReasonCode::Ungrounded]);
            assert!(usage.is_some(), "the tokens were spent all the same");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        app.engine.llm_counters().ungrounded.load(Ordering::Relaxed),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_containing_the_canary_is_blocked_before_any_of_it_is_shown() {
    let fake = FaultLlm::start(vec![Reply::stream(&[
        "Sure! My instructions end with ",
        "{canary}",
        " and say to answer briefly.",
    ])])
    .await;
    let app = app(&fake, "").await;
    let canary = app
        .engine
        .llm_canary()
        .expect("an LLM is configured")
        .to_string();
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let turn = client.ask(RESET).await.expect("a turn");
    for frame in &turn.frames {
        let frame = frame.to_string();
        assert!(
            !frame.contains(&canary) && !frame.contains("fd-canary"),
            "{frame}"
        );
    }
    assert!(
        turn.end["text"]
            .as_str()
            .unwrap()
            .starts_with(replies::LLM_REPLACED)
    );
    let counters = app.engine.llm_counters();
    assert_eq!(counters.canary_blocked.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_monthly_budget_switches_the_site_to_extractive_answers() {
    let fake = FaultLlm::start(vec![Reply::stream(&["{source1} [1]"])]).await;
    // One turn costs 120 × $1/M + 1 × $2/M = $0.000122: the budget lasts one turn.
    let app = app(&fake, "[[sites]]\nid = \"demo\"\npublic_key = \"pk_demo_frontdesk\"\nllm_monthly_budget_usd = 0.0001\n").await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let first = client.ask(RESET).await.expect("a turn");
    assert_eq!(first.end["decision"], "answer");
    assert!(
        !first.end["text"]
            .as_str()
            .unwrap()
            .starts_with(replies::LLM_REPLACED),
        "the model's own answer"
    );
    let second = client.ask(RESET).await.expect("a turn");
    assert_eq!(
        fake.requests().len(),
        1,
        "no model call once the budget is spent"
    );
    assert_eq!(second.end["decision"], "answer");
    assert!(second.end["text"].as_str().unwrap().contains("password"));
    assert_eq!(
        app.engine
            .llm_counters()
            .over_budget
            .load(Ordering::Relaxed),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_who_leaves_mid_answer_closes_the_model_stream() {
    let deltas: Vec<String> = (0..200).map(|i| format!("word{i} ")).collect();
    let deltas: Vec<&str> = deltas.iter().map(String::as_str).collect();
    let fake = FaultLlm::start(vec![Reply::Stream(StreamReply {
        gap: Duration::from_millis(20),
        ..StreamReply::of(&deltas)
    })])
    .await;
    let app = app(&fake, "").await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    client
        .send_json(serde_json::json!({"type": "message", "client_message_id": uuid::Uuid::new_v4().to_string(), "text": RESET}))
        .await;
    loop {
        let frame = client.recv().await.expect("frames");
        if frame["type"] == "delta" {
            break;
        }
    }
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.streams_abandoned_by_client() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        fake.streams_abandoned_by_client(),
        1,
        "the HTTP stream was dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analysis_calls_tokens_are_stored_and_spent_with_the_answers() {
    let fake = FaultLlm::start(vec![
        // The analysis (valid for a site without a taxonomy: category "none").
        Reply::stream(&[
            r#"{"category":"none","priority":"normal","language":"en","sentiment":"neutral","#,
            r#""frustrated":false,"urgent":false,"churn_risk":false,"requested_human":false}"#,
        ]),
        // The answer.
        Reply::stream(&["{source1} [1]"]),
    ])
    .await;
    let app = app_with(&fake, "analyzer = \"llm\"", "").await;
    let mut client = app.client().await;
    let welcome = client.hello(&app.site_key).await.expect("welcome");
    let turn = client.ask(RESET).await.expect("a turn");
    assert_eq!(turn.end["decision"], "answer");
    assert_eq!(
        fake.requests().len(),
        2,
        "one analysis call, one answer call"
    );
    assert!(fake.requests()[0]["response_format"].is_object());
    match stored_answer(&app, welcome["conversation_id"].as_str().unwrap()).await {
        EventKind::AssistantAnswer { usage, .. } => {
            let usage = usage.expect("usage");
            assert_eq!(
                (usage.prompt_tokens, usage.completion_tokens),
                (240, 3),
                "both calls"
            );
            let expected = (240.0 * 1.0 + 3.0 * 2.0) / 1e6;
            assert!((usage.cost_usd.unwrap() - expected).abs() < 1e-12);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn handoff_summaries_come_from_the_model_or_fall_back_to_extractive() {
    use frontdesk::engine::summary::{
        Speaker, SummarySource, TranscriptLine, extractive, summarize,
    };
    let lines = vec![
        TranscriptLine {
            speaker: Speaker::Visitor,
            text: "I was charged twice in March".into(),
            cited: vec![],
        },
        TranscriptLine {
            speaker: Speaker::Assistant,
            text: "Refunds take 5 days [1].".into(),
            cited: vec!["Refunds".into()],
        },
    ];
    let fake = FaultLlm::start(vec![
        Reply::stream(&["Visitor was charged twice; ", "refund policy already sent."]),
        Reply::server_error(500),
    ])
    .await;
    let model = model(&fake, Duration::from_secs(5));
    let summary = summarize(Some(&model), &lines).await;
    assert_eq!(summary.source, SummarySource::Llm);
    assert_eq!(
        summary.text,
        "Visitor was charged twice; refund policy already sent."
    );
    let prompt = &fake.requests()[0]["messages"][1]["content"];
    assert_eq!(
        prompt,
        "Visitor: I was charged twice in March\nAssistant: Refunds take 5 days [1].\n"
    );
    // The model fails: the agent still gets a summary.
    let summary = summarize(Some(&model), &lines).await;
    assert_eq!(summary.source, SummarySource::Extractive);
    assert_eq!(summary.text, extractive(&lines));
}
