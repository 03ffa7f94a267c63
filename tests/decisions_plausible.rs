//! The answer-or-handoff decision on the Plausible dev questions, through the same path as a
//! turn (one embedding, the local analysis with `config/example-plausible.toml`'s taxonomy,
//! retrieval with that embedding, `policy::decide_turn`): at least 0.90 of the decisions right.
//! Needs the local model (`scripts/fetch-models`); shares the cached Plausible test index.

use frontdesk::cli::eval_decisions::{evaluate, load_labelled_decisions};
use frontdesk::config::PolicySettings;
use frontdesk::engine::analysis::LocalAnalyzer;
use frontdesk::ids::SiteId;
use frontdesk_kb::embed::SharedEmbedder;
use frontdesk_tests::plausible::{SITE, model_dir};
use frontdesk_tests::{repo_root, shared_dir, test_cache_dir};
use std::collections::HashMap;
use std::sync::Arc;

#[test]
fn decisions_on_the_plausible_dev_questions_reach_the_bar() {
    let embedder = frontdesk_kb::embed::minilm::MiniLmEmbedder::load(&model_dir(), 256)
        .unwrap_or_else(|err| {
            panic!("the local embedding model is needed ({err}); run scripts/fetch-models")
        });
    let embedder: SharedEmbedder = Arc::new(embedder);
    let kb = frontdesk_kb::index::open_cached(
        &shared_dir().join("corpora/plausible-help"),
        SITE,
        &test_cache_dir(),
        Some(embedder.clone()),
        frontdesk_kb::fusion::FusionParams::default(),
    )
    .unwrap_or_else(|err| panic!("cannot build the Plausible knowledge base: {err}"));
    let taxonomy = frontdesk::taxonomy::from_config_file(
        &repo_root().join("config/example-plausible.toml"),
        None,
    )
    .expect("the Plausible example config loads");
    let analyzer = LocalAnalyzer::for_taxonomy(
        &SiteId::parse(SITE).expect("valid"),
        &taxonomy,
        Some(&embedder),
    )
    .expect("the analyzer builds");
    let questions =
        load_labelled_decisions(&shared_dir().join("eval/plausible-questions.dev.jsonl"))
            .expect("the dev questions load");
    assert_eq!(questions.len(), 42);
    let texts: Vec<&str> = questions.iter().map(|q| q.question.as_str()).collect();
    let vectors = embedder.embed_batch(&texts).expect("embeds");
    let embeddings: HashMap<String, Vec<f32>> =
        texts.iter().map(|t| t.to_string()).zip(vectors).collect();
    let report = evaluate(
        &kb,
        SITE,
        &analyzer,
        &questions,
        &embeddings,
        &PolicySettings::default(),
        false,
    )
    .expect("every question is decided");
    for miss in &report.misses {
        eprintln!(
            "miss {} expected {} got {} {:?} (confidence {:?})",
            miss.id, miss.expected, miss.decision, miss.reasons, miss.confidence
        );
    }
    assert!(
        report.decision_accuracy >= 0.90,
        "decision accuracy {:.3} < 0.90",
        report.decision_accuracy
    );
    // Every expected handoff reason except low_confidence is raised by the analysis.
    for label in [
        "handoff:requested_human",
        "handoff:billing_dispute",
        "handoff:legal",
        "handoff:security",
        "handoff:churn_risk",
    ] {
        assert_eq!(
            report.by_expected.get(label).map(|[n, right]| n == right),
            Some(true),
            "{label}: {:?}",
            report.by_expected.get(label)
        );
    }
}
