//! Query latency of the embedded knowledge base, query embedding and search measured apart,
//! at ~1k chunks (the Plausible help center) and ~100k chunks (the same corpus repeated under
//! new document ids; vectors come from the embedding cache, nothing is re-embedded).
//!
//! ```sh
//! scripts/fetch-models
//! cargo bench -p frontdesk-kb --bench retrieval
//! ```
//!
//! Besides criterion's estimates, each group prints p50 / p99 over 1,000 timed queries.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use frontdesk_kb::document::DocumentId;
use frontdesk_kb::embed::SharedEmbedder;
use frontdesk_kb::embed::minilm::MiniLmEmbedder;
use frontdesk_kb::eval::load_questions;
use frontdesk_kb::fusion::FusionParams;
use frontdesk_kb::index::{IngestReport, KbSettings, KnowledgeBase, SearchRequest, open_cached};
use frontdesk_kb::ingest::{LoadOptions, load_path};

fn shared() -> PathBuf {
    std::env::var_os("FRONTDESK_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

fn cache() -> PathBuf {
    std::env::var_os("FRONTDESK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/frontdesk")
        })
}

fn embedder() -> SharedEmbedder {
    let dir = std::env::var_os("FRONTDESK_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("models"));
    Arc::new(
        MiniLmEmbedder::load(&dir.join("all-minilm-l6-v2"), 256).expect("run scripts/fetch-models"),
    )
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}

/// Builds (or reuses) a knowledge base of `copies` copies of the Plausible corpus, seeding its
/// embedding cache from the 1k index so nothing is embedded.
fn replicated(copies: usize, small_dir: &Path, embedder: SharedEmbedder) -> KnowledgeBase {
    let dir = cache().join(format!("bench-index-x{copies}"));
    let done = dir.join("complete");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("embeddings")).unwrap();
        for entry in std::fs::read_dir(small_dir.join("embeddings")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join("embeddings").join(entry.file_name())).unwrap();
        }
        let kb = KnowledgeBase::open(
            KbSettings {
                data_dir: dir.clone(),
                writable: true,
                fusion: FusionParams::default(),
            },
            Some(embedder.clone()),
        )
        .unwrap();
        let documents = load_path(
            &shared().join("corpora/plausible-help"),
            &LoadOptions::default(),
        )
        .unwrap()
        .documents;
        let mut all = Vec::with_capacity(documents.len() * copies);
        for copy in 0..copies {
            for document in &documents {
                let mut document = document.clone();
                document.id = DocumentId::parse(&format!("copy-{copy}/{}", document.id)).unwrap();
                all.push(document);
            }
        }
        let mut report = IngestReport::default();
        let started = Instant::now();
        kb.apply_documents("bench", "replicated", all, &mut report)
            .unwrap();
        eprintln!(
            "built {} chunks in {:.1}s, {} texts embedded",
            report.chunks_added,
            started.elapsed().as_secs_f64(),
            report.texts_embedded
        );
        drop(kb);
        std::fs::write(&done, b"ok").unwrap();
    }
    KnowledgeBase::open(
        KbSettings {
            data_dir: dir,
            writable: false,
            fusion: FusionParams::default(),
        },
        Some(embedder),
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let embedder = embedder();
    let small = open_cached(
        &shared().join("corpora/plausible-help"),
        "plausible",
        &cache().join("kb-index"),
        Some(embedder.clone()),
        FusionParams::default(),
    )
    .unwrap();
    let small_dir = std::fs::read_dir(cache().join("kb-index"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("complete").exists())
        .expect("the cached 1k index exists");
    let questions: Vec<String> =
        load_questions(&shared().join("eval/plausible-questions.dev.jsonl"))
            .unwrap()
            .into_iter()
            .map(|q| q.question)
            .collect();
    let vectors: Vec<Vec<f32>> = questions
        .iter()
        .map(|q| small.embed_query(q).unwrap().unwrap())
        .collect();

    // Query embedding alone.
    let mut samples = Vec::new();
    for i in 0..1000 {
        let started = Instant::now();
        small.embed_query(&questions[i % questions.len()]).unwrap();
        samples.push(started.elapsed());
    }
    let (p50, p99) = percentiles(samples);
    eprintln!("query embedding: p50 {p50:?} p99 {p99:?}");
    c.bench_function("embed_query", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            small.embed_query(&questions[i % questions.len()]).unwrap()
        })
    });

    let large = replicated(100, &small_dir, embedder);
    for (name, kb, site) in [
        ("search_1k_chunks", &small, "plausible"),
        ("search_100k_chunks", &large, "bench"),
    ] {
        let (_, n_chunks) = kb.counts(site);
        let run = |i: usize| {
            let mut request = SearchRequest::new(&questions[i % questions.len()], site);
            request.query_vector = Some(&vectors[i % vectors.len()]);
            kb.search(&request).unwrap()
        };
        let mut samples = Vec::new();
        for i in 0..1000 {
            let started = Instant::now();
            run(i);
            samples.push(started.elapsed());
        }
        let (p50, p99) = percentiles(samples);
        eprintln!("{name} ({n_chunks} chunks, query vector given): p50 {p50:?} p99 {p99:?}");
        let mut group = c.benchmark_group(name);
        group.sample_size(20);
        group.bench_function("search", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                run(i)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
