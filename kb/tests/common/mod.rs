//! Shared helpers for the kb integration tests: where the shared data, the model and the
//! index cache live. A missing prerequisite fails with the command that provides it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use frontdesk_kb::embed::SharedEmbedder;
use frontdesk_kb::embed::minilm::MiniLmEmbedder;

/// `../shared` beside the repository, or `$FRONTDESK_SHARED`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("FRONTDESK_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// A path inside the shared data, asserted to exist.
pub fn shared(relative: &str) -> PathBuf {
    let path = shared_dir().join(relative);
    assert!(
        path.exists(),
        "{} is missing: the shared data must sit at ../shared next to the repository (or set FRONTDESK_SHARED)",
        path.display()
    );
    path
}

/// The cache root outside the clone (`$FRONTDESK_CACHE`, default `~/.cache/frontdesk`).
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("FRONTDESK_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/frontdesk")
        }
    }
}

/// The all-MiniLM-L6-v2 folder; fails with the command that fetches it.
pub fn model_dir() -> PathBuf {
    let dir = match std::env::var_os("FRONTDESK_MODELS") {
        Some(dir) => PathBuf::from(dir),
        None => cache_dir().join("models"),
    }
    .join("all-minilm-l6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "the embedding model is missing at {}: run `scripts/fetch-models`",
        dir.display()
    );
    dir
}

/// The local embedder (loaded once per test binary).
pub fn embedder() -> SharedEmbedder {
    static EMBEDDER: std::sync::OnceLock<SharedEmbedder> = std::sync::OnceLock::new();
    EMBEDDER
        .get_or_init(|| Arc::new(MiniLmEmbedder::load(&model_dir(), 256).expect("model loads")))
        .clone()
}

/// The demo help center in the repository.
pub fn demo_kb() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo")
}
