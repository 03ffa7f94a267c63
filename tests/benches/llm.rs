//! The LLM path on the Plausible help center with a real model (llama-server + SmolLM2-135M,
//! `scripts/local-llm start`). A benchmark, not a test: it prints figures and asserts nothing.
//!
//! 1. **Frontdesk's first-token overhead**: for each answerable dev question, the time from
//!    sending `message` on the WebSocket to the first `delta` through Frontdesk (analysis,
//!    retrieval with the query embedding, prompt, the model), against the model server's own
//!    time to its first content chunk for the same prompt sent directly. The two are run in
//!    alternating order so llama-server's prompt cache favours neither.
//! 2. **Grounding check rates** on labelled pairs: each SmolLM2 answer checked against its own
//!    passages (labelled supported) and against the passages of another question whose relevant
//!    articles differ (labelled unsupported); true- and false-positive rates per threshold, with
//!    the threshold chosen on the odd-numbered questions and the rates reported on the even ones.
//!
//! ```sh
//! scripts/local-llm start
//! cargo bench -p frontdesk-tests --bench llm
//! ```

use frontdesk::adapters::kb_embedder::BlockingQueryEmbedder;
use frontdesk::adapters::openai_chat::{Endpoint, OpenAiChatModel, Timeouts};
use frontdesk::engine::grounding::{self, GroundingParams};
use frontdesk::engine::llm_answer::LlmGenerator;
use frontdesk::ids::SiteId;
use frontdesk::ports::answer::AnswerRequest;
use frontdesk::ports::chat::{ChatEvent, ChatModel, ChatRequest};
use frontdesk::ports::embedder::QueryEmbedder;
use frontdesk::ports::retriever::RetrievalQuery;
use frontdesk_tests::plausible::{
    DevQuestion, SITE, SITE_KEY, config, dev_questions, model_dir, plausible_retriever,
};
use frontdesk_tests::{TestAppOptions, spawn_app_with};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run() {
    let base =
        std::env::var("FRONTDESK_LLM_URL").unwrap_or_else(|_| "http://127.0.0.1:8089/v1".into());
    let model = Arc::new(
        OpenAiChatModel::new(
            Endpoint::OpenAi {
                base_url: base.clone(),
                api_key: None,
                model: "smollm2".into(),
            },
            Timeouts {
                connect: Duration::from_secs(2),
                first_token: Duration::from_secs(60),
                total: Duration::from_secs(120),
            },
        )
        .expect("client"),
    );
    let retriever = tokio::task::spawn_blocking(plausible_retriever)
        .await
        .expect("kb builds");
    let questions: Vec<DevQuestion> = dev_questions()
        .into_iter()
        .filter(|q| q.expected == "answer")
        .collect();
    let site = SiteId::parse(SITE).expect("valid");
    let generator = LlmGenerator::new(model.clone());

    // --- 1. First-token overhead -------------------------------------------------------
    let app = spawn_app_with(TestAppOptions {
        config: vec![format!(
            "{}\n[llm]\nprovider = \"openai\"\nbase_url = \"{base}\"\nmodel = \"smollm2\"\nanalyzer = \"local\"\n\
             first_token_timeout = \"60s\"\ntotal_timeout = \"120s\"\n",
            config()
        )],
        retriever: Some(retriever.clone()),
        ..Default::default()
    })
    .await;
    let mut through_frontdesk = Vec::new();
    let mut direct = Vec::new();
    let mut answers = Vec::new();
    for (i, q) in questions.iter().enumerate() {
        let query = RetrievalQuery {
            text: q.question.clone(),
            query_vector: None,
            k: frontdesk::engine::N_ARTICLES,
            semantic_ratio: None,
            include_internal: false,
        };
        let retrieval = Arc::new(retriever.retrieve(&site, &query).await.expect("search"));
        let request = AnswerRequest {
            question: q.question.clone(),
            retrieval: retrieval.clone(),
            locale: None,
            language: Some("en".into()),
            history: Vec::new(),
            site: SITE.into(),
        };
        let (messages, sources) = generator.prompt(&request);
        let direct_first = || async {
            let started = Instant::now();
            let mut stream = model
                .stream(ChatRequest {
                    messages: messages.clone(),
                    max_tokens: 120,
                    temperature: 0.2,
                    schema: None,
                })
                .await
                .expect("opens");
            let mut first = None;
            let mut text = String::new();
            while let Some(event) = stream.next().await {
                if let Ok(ChatEvent::Delta(d)) = event {
                    first.get_or_insert_with(|| started.elapsed());
                    text.push_str(&d);
                }
            }
            (first.unwrap_or_default(), text)
        };
        let frontdesk_first = || async {
            let mut client = app.client().await;
            client
                .send_json(serde_json::json!({"type": "hello", "v": 1, "site_key": SITE_KEY}))
                .await;
            client.recv_type("welcome").await.expect("welcome");
            let started = Instant::now();
            client
                .send_json(serde_json::json!({"type": "message", "client_message_id": uuid::Uuid::new_v4().to_string(), "text": q.question}))
                .await;
            let mut first = None;
            loop {
                let frame = client.recv().await.expect("frames");
                match frame["type"].as_str() {
                    Some("delta") => {
                        first.get_or_insert_with(|| started.elapsed());
                    }
                    Some("answer_end") | Some("handoff") => break,
                    _ => {}
                }
            }
            first
        };
        let (fd, (d, text)) = if i % 2 == 0 {
            let fd = frontdesk_first().await;
            (fd, direct_first().await)
        } else {
            let d = direct_first().await;
            (frontdesk_first().await, d)
        };
        if let Some(fd) = fd {
            through_frontdesk.push(fd.as_secs_f64() * 1000.0);
            direct.push(d.as_secs_f64() * 1000.0);
        }
        let passages: Vec<String> = sources.iter().map(|s| s.text.clone()).collect();
        answers.push((q, text, passages));
    }
    through_frontdesk.sort_by(f64::total_cmp);
    direct.sort_by(f64::total_cmp);
    let mut overhead: Vec<f64> = Vec::new();
    println!("first token, ms (n = {}):", through_frontdesk.len());
    println!(
        "  through Frontdesk: p50 {:.0}  p90 {:.0}  max {:.0}",
        percentile(&through_frontdesk, 0.5),
        percentile(&through_frontdesk, 0.9),
        through_frontdesk.last().unwrap()
    );
    println!(
        "  llama-server direct: p50 {:.0}  p90 {:.0}  max {:.0}",
        percentile(&direct, 0.5),
        percentile(&direct, 0.9),
        direct.last().unwrap()
    );
    overhead.push(percentile(&through_frontdesk, 0.5) - percentile(&direct, 0.5));
    println!(
        "  Frontdesk overhead (p50 difference): {:.0} ms",
        overhead[0]
    );

    // --- 2. Grounding check rates ------------------------------------------------------
    let embedder =
        frontdesk_kb::embed::minilm::MiniLmEmbedder::load(&model_dir(), 256).expect("model");
    let embedder: Arc<dyn QueryEmbedder> = Arc::new(BlockingQueryEmbedder::new(Arc::new(embedder)));
    // (score, supported, odd question)
    let mut pairs: Vec<(f32, bool, bool)> = Vec::new();
    let scores = |answer: String, passages: Vec<String>| {
        let embedder = embedder.clone();
        async move {
            grounding::check(
                &answer,
                &passages,
                Some(embedder.as_ref()),
                GroundingParams {
                    threshold: 0.0,
                    ..Default::default()
                },
            )
            .await
            .expect("check")
        }
    };
    let mut n_no_claims = 0;
    for (i, (q, answer, passages)) in answers.iter().enumerate() {
        // Another question about different articles.
        let other = (1..answers.len())
            .map(|k| &answers[(i + k) % answers.len()])
            .find(|(o, _, _)| o.relevant.iter().all(|r| !q.relevant.contains(r)))
            .expect("another topic");
        let own = scores(answer.clone(), passages.clone()).await;
        if own.sentences.is_empty() {
            n_no_claims += 1;
            continue;
        }
        let foreign = scores(answer.clone(), other.2.clone()).await;
        let odd = i % 2 == 1;
        pairs.push((own.min_score, true, odd));
        pairs.push((foreign.min_score, false, odd));
    }
    println!(
        "grounding: {} answers with claims ({} without a checkable sentence skipped), {} labelled pairs",
        pairs.len() / 2,
        n_no_claims,
        pairs.len()
    );
    let rates = |threshold: f32, odd: Option<bool>| {
        let chosen: Vec<_> = pairs
            .iter()
            .filter(|p| odd.is_none_or(|o| p.2 == o))
            .collect();
        let pos = chosen.iter().filter(|p| p.1).count().max(1) as f64;
        let neg = chosen.iter().filter(|p| !p.1).count().max(1) as f64;
        let tp = chosen.iter().filter(|p| p.1 && p.0 >= threshold).count() as f64;
        let fp = chosen.iter().filter(|p| !p.1 && p.0 >= threshold).count() as f64;
        (tp / pos, fp / neg)
    };
    println!("  threshold  TPR(all)  FPR(all)");
    let mut best = (0.0f32, f64::NEG_INFINITY);
    for step in 0..=16 {
        let threshold = 0.2 + step as f32 * 0.025;
        let (tpr, fpr) = rates(threshold, None);
        println!("  {threshold:.3}      {tpr:.3}     {fpr:.3}");
        let (tpr_odd, fpr_odd) = rates(threshold, Some(true));
        if tpr_odd - fpr_odd > best.1 {
            best = (threshold, tpr_odd - fpr_odd);
        }
    }
    let (tpr, fpr) = rates(best.0, Some(false));
    println!(
        "  chosen on odd questions (max TPR − FPR): {:.3}; on even questions TPR {:.3}, FPR {:.3}",
        best.0, tpr, fpr
    );
    let (tpr, fpr) = rates(GroundingParams::default().threshold, Some(false));
    println!(
        "  default threshold {:.2} on even questions: TPR {tpr:.3}, FPR {fpr:.3}",
        GroundingParams::default().threshold
    );
}
