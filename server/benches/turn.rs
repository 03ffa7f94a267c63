//! Per-turn cost of the analysis path (criterion): the turn's one embedding (all-MiniLM-L6-v2
//! on the CPU), then the local analysis given that embedding (VADER, support-signal rules,
//! language, the Plausible taxonomy's classifier), then the policy (`decide_turn`).
//!
//! Run: `cargo bench -p frontdesk --bench turn`. Without the local model
//! (`scripts/fetch-models`), the embedding bench is skipped and the analysis runs on a fixed
//! vector.

use criterion::{Criterion, criterion_group, criterion_main};
use frontdesk::config::{ConfigSources, PolicySettings, Settings};
use frontdesk::engine::analysis::LocalAnalyzer;
use frontdesk::engine::policy::decide_turn;
use frontdesk::ids::SiteId;
use frontdesk::ports::analyzer::AnalysisRequest;
use frontdesk_kb::index::{ArticleHit, Passage, SearchResult};
use std::hint::black_box;
use std::path::Path;

const MESSAGE: &str = "this is the third time I'm asking, the stats page is empty since yesterday and I need the numbers before my presentation tomorrow!!";

fn search_result() -> SearchResult {
    SearchResult {
        hits: vec![ArticleHit {
            document_id: frontdesk_kb::DocumentId::parse("troubleshoot-integration").expect("valid id"),
            title: "Troubleshoot the integration".into(),
            url: None,
            internal: false,
            keyword_score: 12.0,
            semantic_score: 0.62,
            fused_score: 0.7,
            passages: vec![Passage {
                chunk_id: "troubleshoot-integration#0".into(),
                heading_path: vec!["No stats".into()],
                text: "If your dashboard shows no visitors, check that the script is installed on every page and not blocked.".into(),
                keyword_score: 12.0,
                semantic_score: 0.62,
                fused_score: 0.7,
            }],
        }],
        confidence: 0.82,
        keyword_only: false,
        rankings_agree: true,
    }
}

fn bench_turn(c: &mut Criterion) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let settings = Settings::load(&ConfigSources::from_process(Some(
        manifest.join("../config/example-plausible.toml"),
    )))
    .expect("config/example-plausible.toml loads");
    let embedder = frontdesk::startup::build_embedder(&settings).expect("embedder settings");
    let site = SiteId::parse("plausible").expect("valid");
    let taxonomy = &settings.sites[0].taxonomy;
    let analyzer =
        LocalAnalyzer::for_taxonomy(&site, taxonomy, embedder.as_ref()).expect("analyzer builds");

    let embedding = match &embedder {
        Some(embedder) => {
            c.bench_function("turn/1_embedding_minilm", |b| {
                b.iter(|| embedder.embed_batch(black_box(&[MESSAGE])).expect("embeds"))
            });
            embedder.embed_batch(&[MESSAGE]).expect("embeds").remove(0)
        }
        None => {
            eprintln!(
                "no local model: skipping turn/1_embedding_minilm (run scripts/fetch-models)"
            );
            let mut v = vec![0.05f32; 384];
            frontdesk_kb::embed::l2_normalize(&mut v);
            v
        }
    };
    let request = AnalysisRequest {
        text: MESSAGE,
        embedding: Some(&embedding),
        previous_visitor_text: Some("the dashboard is empty, why?"),
        allow_model: true,
    };
    c.bench_function("turn/2_analysis_given_embedding", |b| {
        b.iter(|| analyzer.analyze_now(black_box(&site), black_box(&request)))
    });
    let analysis = analyzer.analyze_now(&site, &request);
    let result = search_result();
    let policy = PolicySettings::default();
    c.bench_function("turn/3_policy", |b| {
        b.iter(|| {
            decide_turn(
                black_box(MESSAGE),
                black_box(&analysis),
                Some(black_box(&result)),
                black_box(1),
                &policy,
            )
        })
    });
}

criterion_group!(benches, bench_turn);
criterion_main!(benches);
