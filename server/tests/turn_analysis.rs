//! The engine's analysis path, through the ports: one embedding per turn shared with
//! retrieval, conversation-level reasons (two negative messages, three unresolved exchanges),
//! a request for a human in Spanish, and a refund request drafted for an agent.

use frontdesk::adapters::memory_store::MemoryStore;
use frontdesk::config::{ConfigSources, EnvSnapshot, Settings};
use frontdesk::domain::{DecisionKind, ReasonCode};
use frontdesk::engine::analysis::LocalAnalyzer;
use frontdesk::engine::extractive::ExtractiveGenerator;
use frontdesk::engine::{Engine, Hello, Ports, TurnInput, TurnOutcome, TurnSummary};
use frontdesk::ids::{ClientMessageId, SiteId};
use frontdesk::ports::embedder::QueryEmbedder;
use frontdesk::ports::retriever::{RetrievalQuery, RetrieveError, Retriever};
use frontdesk_kb::index::{ArticleHit, Passage, SearchResult};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Returns a fixed vector and counts calls.
#[derive(Default)]
struct CountingEmbedder {
    n_calls: AtomicUsize,
}

const VECTOR: [f32; 3] = [0.6, 0.8, 0.0];

#[async_trait::async_trait]
impl QueryEmbedder for CountingEmbedder {
    fn model_id(&self) -> &str {
        "counting"
    }
    async fn embed(&self, _text: &str) -> Result<Vec<f32>, RetrieveError> {
        self.n_calls.fetch_add(1, Ordering::SeqCst);
        Ok(VECTOR.to_vec())
    }
}

/// Always finds the same confident article, and remembers the queries.
#[derive(Default)]
struct RecordingRetriever {
    queries: Mutex<Vec<RetrievalQuery>>,
}

#[async_trait::async_trait]
impl Retriever for RecordingRetriever {
    fn adapter_name(&self) -> &'static str {
        "recording"
    }
    async fn retrieve(
        &self,
        _site: &SiteId,
        query: &RetrievalQuery,
    ) -> Result<SearchResult, RetrieveError> {
        self.queries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(query.clone());
        let passage =
            "To see your stats, open the dashboard from the sites list and pick a date range.";
        Ok(SearchResult {
            hits: vec![ArticleHit {
                document_id: frontdesk_kb::DocumentId::parse("dashboard").expect("valid id"),
                title: "The dashboard".into(),
                url: Some("/dashboard".into()),
                internal: false,
                keyword_score: 10.0,
                semantic_score: 0.8,
                fused_score: 0.9,
                passages: vec![Passage {
                    chunk_id: "dashboard#0".into(),
                    heading_path: vec!["Stats".into()],
                    text: passage.into(),
                    keyword_score: 10.0,
                    semantic_score: 0.8,
                    fused_score: 0.9,
                }],
            }],
            confidence: 0.95,
            keyword_only: false,
            rankings_agree: true,
        })
    }
    async fn check(&self) -> Result<(), RetrieveError> {
        Ok(())
    }
}

struct Harness {
    engine: Engine,
    embedder: Arc<CountingEmbedder>,
    retriever: Arc<RecordingRetriever>,
}

fn harness() -> Harness {
    let settings = Settings::load(&ConfigSources {
        file: None,
        layers: vec!["[embedder]\nkind = \"none\"\n".into()],
        env: EnvSnapshot::default(),
    })
    .expect("defaults load");
    let embedder = Arc::new(CountingEmbedder::default());
    let retriever = Arc::new(RecordingRetriever::default());
    let memory = MemoryStore::new(settings.store.closed_ttl);
    let ports = Ports {
        store: Arc::new(memory.clone()),
        chat: None,
        spend: Arc::new(memory),
        retriever: retriever.clone(),
        generator: Arc::new(ExtractiveGenerator::new()),
        embedder: Some(embedder.clone()),
        analyzer: Arc::new(LocalAnalyzer::build(&settings.sites, None).expect("builds")),
        helpdesk: Arc::new(frontdesk::adapters::inbox::InboxHelpdesk),
        mailer: None,
    };
    Harness {
        engine: Engine::new(&settings, ports),
        embedder,
        retriever,
    }
}

/// Sends `texts` in one conversation; returns each turn's summary.
async fn conversation(harness: &Harness, texts: &[&str]) -> Vec<TurnSummary> {
    let opened = harness
        .engine
        .open(Hello {
            version: 1,
            site_key: "pk_demo_frontdesk".into(),
            ..Default::default()
        })
        .await
        .expect("hello");
    let mut summaries = Vec::new();
    for text in texts {
        let accepted = harness
            .engine
            .accept_message(&opened.context, ClientMessageId::generate(), text)
            .await
            .expect("stored");
        assert!(accepted.run_turn, "{text:?} runs a turn");
        let (out, mut frames) = mpsc::channel(256);
        let drain = tokio::spawn(async move { while frames.recv().await.is_some() {} });
        let summary = harness
            .engine
            .run_turn(
                &opened.context,
                TurnInput {
                    message_id: accepted.appended.message_id,
                    text: (*text).to_string(),
                },
                &out,
            )
            .await
            .expect("turn runs");
        drop(out);
        drain.await.expect("drained");
        summaries.push(summary);
    }
    summaries
}

#[tokio::test]
async fn one_embedding_per_turn_is_shared_with_retrieval() {
    let harness = harness();
    let summaries = conversation(&harness, &["How do I see my stats?", "And for last week?"]).await;
    assert_eq!(harness.embedder.n_calls.load(Ordering::SeqCst), 2);
    let queries = harness
        .retriever
        .queries
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert_eq!(queries.len(), 2);
    for query in &queries {
        assert_eq!(query.query_vector.as_deref(), Some(&VECTOR[..]));
    }
    assert_eq!(
        summaries[0].outcome,
        TurnOutcome::Answered(DecisionKind::Answer)
    );
    let analysis = summaries[0].analysis.as_ref().expect("analysed");
    assert_eq!(analysis.sentiment, 0.0);
    assert!(analysis.flagged.is_empty());
}

#[tokio::test]
async fn two_negative_messages_in_a_row_hand_off() {
    let harness = harness();
    let summaries = conversation(
        &harness,
        &[
            "This dashboard is terrible and useless, I hate it",
            "Awful. The worst, most frustrating tool I have ever used",
        ],
    )
    .await;
    assert_eq!(
        summaries[0].outcome,
        TurnOutcome::Answered(DecisionKind::Answer),
        "one negative message is not enough"
    );
    assert_eq!(summaries[1].outcome, TurnOutcome::HandedOff);
    assert!(
        summaries[1]
            .reasons
            .contains(&ReasonCode::NegativeSentiment),
        "{:?}",
        summaries[1].reasons
    );
}

#[tokio::test]
async fn three_unresolved_exchanges_hand_off_on_the_fourth_message() {
    let harness = harness();
    let summaries = conversation(
        &harness,
        &[
            "How do I see my stats?",
            "Where is the date picker?",
            "Can I compare two months?",
            "And what about last year?",
        ],
    )
    .await;
    for summary in &summaries[..3] {
        assert_eq!(summary.outcome, TurnOutcome::Answered(DecisionKind::Answer));
    }
    assert_eq!(summaries[3].outcome, TurnOutcome::HandedOff);
    assert_eq!(summaries[3].reasons, vec![ReasonCode::NoResolution]);
}

#[tokio::test]
async fn a_spanish_request_for_a_human_skips_retrieval() {
    let harness = harness();
    let summaries = conversation(&harness, &["Quiero hablar con una persona, por favor"]).await;
    assert_eq!(summaries[0].outcome, TurnOutcome::HandedOff);
    assert_eq!(summaries[0].reasons, vec![ReasonCode::RequestedHuman]);
    assert!(
        harness
            .retriever
            .queries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    );
}

#[tokio::test]
async fn a_small_refund_request_is_drafted_for_an_agent() {
    let harness = harness();
    let summaries = conversation(&harness, &["Please refund me the $20 from last month"]).await;
    assert_eq!(
        summaries[0].outcome,
        TurnOutcome::Answered(DecisionKind::Draft)
    );
    let big = conversation(&harness, &["Please refund me the $400 annual fee"]).await;
    assert_eq!(big[0].outcome, TurnOutcome::HandedOff);
}
