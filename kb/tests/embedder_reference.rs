//! all-MiniLM-L6-v2 on candle against reference vectors from an independent numpy
//! implementation (`tests/reference/make_reference.py`, see `tests/reference/README.md`).
//!
//! Needs the model: `scripts/fetch-models` puts it in `$FRONTDESK_MODELS/all-minilm-l6-v2`
//! (default `~/.cache/frontdesk/models/all-minilm-l6-v2`). A missing model fails the tests with
//! that command; it never skips them.
//!
//! `report_throughput_and_latency` prints figures (run with `--nocapture`); it asserts only
//! correctness, never speed. `FRONTDESK_EMBED_BENCH_TEXTS` sets how many chunk-sized texts it
//! embeds (default 32; the figures in the embedder's report used 900).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use frontdesk_kb::embed::minilm::MiniLmEmbedder;
use frontdesk_kb::embed::{Embedder, cosine};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Reference {
    sentences: Vec<ReferenceSentence>,
}

#[derive(Debug, Deserialize)]
struct ReferenceSentence {
    text: String,
    /// Word pieces without special tokens or truncation.
    n_tokens: usize,
    vector: Vec<f32>,
}

fn model_dir() -> PathBuf {
    let models = match std::env::var_os("FRONTDESK_MODELS") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/frontdesk/models")
        }
    };
    models.join("all-minilm-l6-v2")
}

fn embedder() -> &'static MiniLmEmbedder {
    static EMBEDDER: OnceLock<MiniLmEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        let dir = model_dir();
        MiniLmEmbedder::load(&dir, 256).unwrap_or_else(|error| {
            panic!(
                "cannot load all-MiniLM-L6-v2 from {}: {error}\n\
                 Run `scripts/fetch-models` (from the repository root) to download it.",
                dir.display()
            )
        })
    })
}

fn reference() -> Reference {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/minilm_reference.json"
    );
    let text = std::fs::read_to_string(path).expect("reference file is committed");
    serde_json::from_str(&text).expect("reference file parses")
}

#[test]
fn settings_are_those_of_all_minilm_l6_v2() {
    let embedder = embedder();
    assert_eq!(embedder.model_id(), "all-minilm-l6-v2/mean/256");
    assert_eq!(embedder.dimensions(), 384);
    assert_eq!(embedder.max_tokens(), 256);
}

#[test]
fn vectors_match_the_numpy_reference() {
    let embedder = embedder();
    let reference = reference();
    assert!(reference.sentences.len() >= 4);
    for sentence in &reference.sentences {
        let vectors = embedder.embed_batch(&[&sentence.text]).expect("embed");
        assert_eq!(vectors.len(), 1);
        let vector = &vectors[0];
        assert_eq!(vector.len(), 384);
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        let similarity = cosine(vector, &sentence.vector);
        assert!(
            similarity >= 0.999,
            "cosine {similarity} < 0.999 for {:?}",
            sentence.text
        );
        assert_eq!(
            embedder.count_tokens(&sentence.text),
            sentence.n_tokens,
            "{:?}",
            sentence.text
        );
    }
}

#[test]
fn long_reference_sentences_exceed_the_shipped_128_token_truncation() {
    let embedder = embedder();
    let reference = reference();
    // The reference holds one text between 128 and 254 word pieces (read whole at 256, cut at
    // 128 by the shipped tokenizer.json) and one beyond 254 (cut at 256): matching both proves
    // the window is 256.
    let counts: Vec<usize> = reference
        .sentences
        .iter()
        .map(|sentence| embedder.count_tokens(&sentence.text))
        .collect();
    assert!(
        counts.iter().any(|&n| n > 128 && n + 2 <= 256),
        "word-piece counts {counts:?}"
    );
    assert!(
        counts.iter().any(|&n| n + 2 > 256),
        "word-piece counts {counts:?}"
    );
}

#[test]
fn batch_embedding_equals_one_at_a_time() {
    let embedder = embedder();
    let reference = reference();
    // Several sub-batches (16 texts each), mixed lengths in scrambled order, with duplicates.
    let mut texts: Vec<String> = Vec::new();
    for round in 0..7 {
        for (i, sentence) in reference.sentences.iter().enumerate() {
            texts.push(if (round + i) % 3 == 0 {
                sentence.text.clone()
            } else {
                format!("{} (variant {round})", sentence.text)
            });
        }
    }
    texts.push(String::new());
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let batch = embedder.embed_batch(&text_refs).expect("batch");
    assert_eq!(batch.len(), texts.len());
    for (text, batch_vector) in texts.iter().zip(&batch) {
        let single = embedder.embed_batch(&[text]).expect("single");
        let similarity = cosine(batch_vector, &single[0]);
        assert!(similarity >= 0.9999, "cosine {similarity} for {text:?}");
    }
    assert!(embedder.embed_batch(&[]).expect("empty").is_empty());
}

/// Chunk-sized texts (about 150–250 word pieces) cut from the demo help centre.
fn chunk_sized_texts(n_texts: usize) -> Vec<String> {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/demo");
    let mut words: Vec<String> = Vec::new();
    let mut paths: Vec<PathBuf> = walk(PathBuf::from(demo));
    paths.sort();
    for path in paths {
        if let Ok(text) = std::fs::read_to_string(&path) {
            words.extend(text.split_whitespace().map(str::to_owned));
        }
    }
    assert!(words.len() > 400, "the demo help centre has text");
    (0..n_texts)
        .map(|i| {
            let n_words = 120 + (i * 37) % 80;
            let start = (i * 53) % (words.len() - n_words);
            words[start..start + n_words].join(" ")
        })
        .collect()
}

fn walk(dir: PathBuf) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn report_throughput_and_latency() {
    let embedder = embedder();
    let n_texts: usize = std::env::var("FRONTDESK_EMBED_BENCH_TEXTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(32);
    let texts = chunk_sized_texts(n_texts);
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let n_word_pieces: usize = texts.iter().map(|text| embedder.count_tokens(text)).sum();

    let started = Instant::now();
    let vectors = embedder.embed_batch(&text_refs).expect("batch");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(vectors.len(), n_texts);
    for vector in &vectors {
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    // Order is kept: spot-check the first and last against single embeddings.
    for index in [0, n_texts - 1] {
        let single = embedder.embed_batch(&[text_refs[index]]).expect("single");
        assert!(cosine(&single[0], &vectors[index]) >= 0.9999);
    }

    let query = "How do I reset my password?";
    let mut latencies_ms: Vec<f64> = (0..50)
        .map(|_| {
            let started = Instant::now();
            embedder.embed_batch(&[query]).expect("query");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    latencies_ms.sort_by(f64::total_cmp);

    println!(
        "minilm: {n_texts} texts, mean {:.0} word pieces: {:.1} s, {:.1} embeddings/s; \
         short query latency median {:.1} ms (p90 {:.1} ms, 50 runs); {} cores",
        n_word_pieces as f64 / n_texts as f64,
        seconds,
        n_texts as f64 / seconds,
        latencies_ms[25],
        latencies_ms[45],
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
}
