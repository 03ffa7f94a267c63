//! The query-embedder port: the turn's one embedding of the visitor's message, computed once
//! by the engine and shared by the analysis (classifier) and retrieval (`query_vector`).
//!
//! Adapter: [`crate::adapters::kb_embedder::BlockingQueryEmbedder`] over the knowledge base's
//! `Embedder` (all-MiniLM-L6-v2 locally, or an OpenAI-compatible service), run on tokio's
//! blocking pool.

use crate::ports::retriever::RetrieveError;

/// Embeds visitor messages. Errors are retrieval errors: the embedding is the query embedding
/// of retrieval, and its failures (`Unavailable`, `Timeout`, `RateLimited`) mean the same.
#[async_trait::async_trait]
pub trait QueryEmbedder: Send + Sync {
    /// The embedding model's id (`all-minilm-l6-v2/mean/256`).
    fn model_id(&self) -> &str;

    /// One L2-normalised vector for `text`.
    async fn embed(&self, text: &str) -> Result<Vec<f32>, RetrieveError>;
}
