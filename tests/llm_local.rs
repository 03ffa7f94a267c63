//! The LLM path against a real OpenAI-compatible server running a real model: llama.cpp's
//! `llama-server` with SmolLM2-135M-Instruct, started by `scripts/local-llm start` (on
//! `FRONTDESK_LLM_URL`, default `http://127.0.0.1:8089/v1`). These tests run one at a time
//! (`.config/nextest.toml`, test group `llm-server`): the server has two slots.

use frontdesk::adapters::openai_chat::{Endpoint, OpenAiChatModel, Timeouts};
use frontdesk::engine::llm_analysis;
use frontdesk::ports::chat::{
    ChatEvent, ChatMessage, ChatModel, ChatRequest, FinishReason, OutputSchema,
};
use frontdesk_tests::{TestAppOptions, spawn_app_with};
use futures_util::StreamExt;
use std::time::Duration;

fn base_url() -> String {
    std::env::var("FRONTDESK_LLM_URL").unwrap_or_else(|_| "http://127.0.0.1:8089/v1".into())
}

/// The local server's base URL, after checking it answers (fails with the command to start it).
async fn local_llm() -> String {
    let base = base_url();
    let health = format!("{}/health", base.trim_end_matches("/v1"));
    let ok = match reqwest::get(&health).await {
        Ok(response) => response.status().is_success(),
        Err(_) => false,
    };
    assert!(
        ok,
        "no llama-server at {base} ({health} does not answer 200); start it with `scripts/local-llm start` \
         (or set FRONTDESK_LLM_URL)"
    );
    base
}

fn model(base: String) -> OpenAiChatModel {
    OpenAiChatModel::new(
        Endpoint::OpenAi {
            base_url: base,
            api_key: None,
            model: "smollm2".into(),
        },
        Timeouts {
            connect: Duration::from_secs(2),
            first_token: Duration::from_secs(60),
            total: Duration::from_secs(120),
        },
    )
    .expect("client builds")
}

#[tokio::test]
async fn llama_server_streams_ordered_deltas_then_finish_then_usage() {
    let model = model(local_llm().await);
    let mut stream = model
        .stream(ChatRequest {
            messages: vec![
                ChatMessage::system("You are a helpful assistant."),
                ChatMessage::user("Name three colours."),
            ],
            max_tokens: 40,
            temperature: 0.0,
            schema: None,
        })
        .await
        .expect("the stream opens");
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.expect("no stream error"));
    }
    let n_deltas = events
        .iter()
        .filter(|e| matches!(e, ChatEvent::Delta(_)))
        .count();
    assert!(n_deltas >= 3, "tokens arrive one by one: {events:?}");
    let finish = events
        .iter()
        .position(|e| matches!(e, ChatEvent::Finished(_)))
        .expect("a finish_reason");
    assert!(
        events[..finish]
            .iter()
            .all(|e| matches!(e, ChatEvent::Delta(_))),
        "every delta comes before the finish: {events:?}"
    );
    assert!(matches!(
        events[finish],
        ChatEvent::Finished(FinishReason::Stop | FinishReason::Length)
    ));
    match events.last() {
        Some(ChatEvent::Usage(usage)) => {
            assert!(usage.prompt_tokens > 10, "{usage:?}");
            // A chunk carries one or more tokens (llama-server merges some), never less than one.
            assert!(
                usage.completion_tokens as usize >= n_deltas && usage.completion_tokens <= 40,
                "{n_deltas} deltas, {usage:?}"
            );
        }
        other => panic!("usage comes last (stream_options.include_usage): {other:?}"),
    }
}

#[tokio::test]
async fn llama_server_follows_the_analysis_schema() {
    let model = model(local_llm().await);
    let settings = frontdesk::config::Settings::load(&frontdesk::config::ConfigSources {
        file: Some(frontdesk_tests::repo_root().join("config/example-plausible.toml")),
        layers: vec![],
        env: frontdesk::config::EnvSnapshot::default(),
    })
    .expect("the Plausible example config loads");
    let taxonomy = &settings.sites[0].taxonomy;
    assert!(!taxonomy.categories.is_empty());
    for message in [
        "I was charged twice this month, please refund me",
        "Quiero hablar con una persona, el panel no carga",
        "How do I add a goal for outbound link clicks?",
    ] {
        let completion = frontdesk::ports::chat::complete(
            &model,
            ChatRequest {
                messages: vec![
                    ChatMessage::system("Classify the support message. Reply with JSON only."),
                    ChatMessage::user(message),
                ],
                max_tokens: 200,
                temperature: 0.0,
                schema: Some(OutputSchema {
                    name: "turn_analysis".into(),
                    schema: llm_analysis::schema(taxonomy),
                }),
            },
        )
        .await
        .expect("completes");
        let valid = llm_analysis::validate(&completion.text, taxonomy);
        assert!(
            valid.is_ok(),
            "schema-constrained output must validate: {:?} for {:?}",
            valid,
            completion.text
        );
        assert!(completion.usage.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_through_frontdesk_streams_the_models_answer() {
    let base = local_llm().await;
    let app = spawn_app_with(TestAppOptions {
        config: vec![format!(
            "[llm]\nprovider = \"openai\"\nbase_url = \"{base}\"\nmodel = \"smollm2\"\n\
             analyzer = \"local\"\nfirst_token_timeout = \"60s\"\ntotal_timeout = \"120s\"\n"
        )],
        ..Default::default()
    })
    .await;
    let mut client = app.client().await;
    client.hello(&app.site_key).await.expect("welcome");
    let turn = client
        .ask("How do I reset my password?")
        .await
        .expect("a turn");
    assert_eq!(turn.end["type"], "answer_end");
    assert!(!turn.deltas.is_empty(), "the answer was streamed");
    let seqs: Vec<u64> = turn
        .deltas
        .iter()
        .map(|d| d["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "ordered deltas"
    );
    let counters = app.engine.llm_counters();
    use std::sync::atomic::Ordering::Relaxed;
    let (answered, ungrounded, failed) = (
        counters.answered.load(Relaxed),
        counters.ungrounded.load(Relaxed),
        counters.failed.load(Relaxed),
    );
    assert_eq!(
        answered + ungrounded + failed,
        1,
        "the model's answer was counted once"
    );
    // Whatever the tiny model wrote, the visitor's final text is its checked answer (the
    // deltas), or a replacement that says why: not grounded, or not finished (SmolLM2-135M
    // often runs to max_tokens).
    let text = turn.end["text"].as_str().unwrap();
    if answered == 1 {
        assert_eq!(text, turn.streamed_text());
    } else if ungrounded == 1 {
        assert!(
            text.starts_with(frontdesk::engine::replies::LLM_REPLACED),
            "{text}"
        );
    } else {
        assert!(
            text.starts_with(frontdesk::engine::replies::LLM_INTERRUPTED),
            "{text}"
        );
    }
    // The server itself answered: the model is not marked as failing.
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", app.http_url))
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["degraded"], serde_json::json!([]), "{ready}");
}
