//! Embedders: text → L2-normalised vectors.
//!
//! Adapters: [`minilm::MiniLmEmbedder`] (all-MiniLM-L6-v2 on candle, local),
//! [`openai::OpenAiEmbedder`] (any OpenAI-compatible `/v1/embeddings`), and no embedder at all
//! (`kind = "none"`: search is keyword-only, with one warning at start-up).

pub mod cache;
pub mod minilm;
pub mod openai;

use std::sync::Arc;

/// Errors an embedder reports; each variant is something a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model files are missing or unreadable (the message names the path and the fix).
    #[error("embedding model unavailable: {0}")]
    ModelUnavailable(String),
    #[error("embedding service rate-limited the request")]
    RateLimited {
        retry_after: Option<std::time::Duration>,
    },
    #[error("embedding service timed out")]
    Timeout,
    #[error("embedding service unavailable: {0}")]
    Unavailable(String),
    #[error("embedding failed: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Turns texts into vectors. Implementations are blocking and CPU- or network-bound: call
/// them from `spawn_blocking` or a dedicated thread, never directly on the async runtime.
pub trait Embedder: Send + Sync {
    /// A stable name for the model and its settings (part of the embedding cache key and of
    /// the index fingerprint), e.g. `all-minilm-l6-v2/mean/256`.
    fn model_id(&self) -> &str;
    /// Vector length (384 for all-MiniLM-L6-v2).
    fn dimensions(&self) -> usize;
    /// Embeds a batch; returns one L2-normalised vector per input, in input order.
    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// Counts the model's tokens (word pieces) in a text, without special tokens; the chunker
    /// uses it to keep each chunk inside the model's window.
    fn count_tokens(&self, text: &str) -> usize;
    /// The model's window in tokens, special tokens included (256 for all-MiniLM-L6-v2 here).
    fn max_tokens(&self) -> usize;
}

/// Shared handle to an embedder.
pub type SharedEmbedder = Arc<dyn Embedder>;

/// L2-normalises a vector in place (a zero vector stays zero).
pub fn l2_normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cosine similarity of two L2-normalised vectors (their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
