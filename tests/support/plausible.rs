//! The Plausible help center for tests and benchmarks: the knowledge base (local
//! all-MiniLM-L6-v2, cached outside the clone), the site config and the dev questions, read in
//! place from `../shared`.

use crate::{shared_dir, test_cache_dir};
use frontdesk::adapters::kb_retriever::KbRetriever;
use frontdesk::ports::retriever::Retriever;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

pub const SITE: &str = "plausible";
pub const SITE_KEY: &str = "pk_plausible_tests";

pub fn config() -> String {
    format!(
        "[[sites]]\nid = \"{SITE}\"\npublic_key = \"{SITE_KEY}\"\n\
         [ws]\nmessages_per_minute = 100000\nmessage_burst = 10000\n"
    )
}

pub fn model_dir() -> PathBuf {
    std::env::var_os("FRONTDESK_MODELS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/frontdesk/models"))
        })
        .expect("HOME or FRONTDESK_MODELS is set")
        .join("all-minilm-l6-v2")
}

/// The Plausible knowledge base with the local embedder, built once per cache.
pub fn plausible_retriever() -> Arc<dyn Retriever> {
    static RETRIEVER: OnceLock<Arc<dyn Retriever>> = OnceLock::new();
    RETRIEVER
        .get_or_init(|| {
            let embedder = frontdesk_kb::embed::minilm::MiniLmEmbedder::load(&model_dir(), 256).unwrap_or_else(|err| {
                panic!("the local embedding model is needed for this test ({err}); run scripts/fetch-models")
            });
            let kb = frontdesk_kb::index::open_cached(
                &shared_dir().join("corpora/plausible-help"),
                SITE,
                &test_cache_dir(),
                Some(Arc::new(embedder)),
                frontdesk_kb::fusion::FusionParams::default(),
            )
            .unwrap_or_else(|err| panic!("cannot build the Plausible knowledge base: {err}"));
            Arc::new(KbRetriever::new(Arc::new(kb), "embedded"))
        })
        .clone()
}

pub struct DevQuestion {
    pub id: String,
    pub question: String,
    pub relevant: Vec<String>,
    pub expected: String,
}

pub fn dev_questions() -> Vec<DevQuestion> {
    let path = shared_dir().join("eval/plausible-questions.dev.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("a JSON line");
            DevQuestion {
                id: value["id"].as_str().expect("id").to_string(),
                question: value["question"].as_str().expect("question").to_string(),
                relevant: value["relevant"]
                    .as_array()
                    .expect("relevant")
                    .iter()
                    .map(|v| v.as_str().expect("article id").to_string())
                    .collect(),
                expected: value["expected"].as_str().expect("expected").to_string(),
            }
        })
        .collect()
}
