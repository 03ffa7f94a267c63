//! Dumps per-question, per-article retrieval evidence as JSON lines, for tuning the fusion
//! offline (see BENCHMARKS.md, "Tuning the fusion"):
//!
//! ```sh
//! cargo run -p frontdesk-kb --example dump_evidence -- CORPUS QUESTIONS.jsonl CACHE_DIR > evidence.jsonl
//! ```
//!
//! CACHE_DIR holds the cached index (the same cache `frontdesk eval retrieval` uses when
//! given `{kb.data_dir}/eval`). The model is read from `$FRONTDESK_MODELS/all-minilm-l6-v2`.

use std::path::PathBuf;
use std::sync::Arc;

use frontdesk_kb::embed::minilm::MiniLmEmbedder;
use frontdesk_kb::eval::load_questions;
use frontdesk_kb::fusion::FusionParams;
use frontdesk_kb::index::{SearchRequest, open_cached};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 4,
        "usage: dump_evidence CORPUS QUESTIONS CACHE_DIR"
    );
    let models = std::env::var("FRONTDESK_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/frontdesk/models")
        });
    let embedder = Arc::new(MiniLmEmbedder::load(&models.join("all-minilm-l6-v2"), 256)?);
    let kb = open_cached(
        std::path::Path::new(&args[1]),
        "eval",
        std::path::Path::new(&args[3]),
        Some(embedder),
        FusionParams::default(),
    )?;
    for question in load_questions(std::path::Path::new(&args[2])).map_err(anyhow::Error::msg)? {
        let vector = kb.embed_query(&question.question)?;
        let request = SearchRequest::new(&question.question, "eval");
        let candidates = kb.gather_evidence(&request, vector.as_deref())?;
        let articles: Vec<serde_json::Value> = candidates
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.document_id.as_str(),
                    "evidence": c.evidence,
                    "chunks": c.chunk_scores(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"id": question.id, "question": question.question, "relevant": question.relevant, "expected": question.expected, "articles": articles})
        );
    }
    Ok(())
}
