//! The `Retriever` port: knowledge-base search for a turn.
//!
//! Results use the knowledge base's own types (`frontdesk_kb::index::SearchResult`: article
//! hits with raw keyword, semantic and fused scores, their best passages, and the calibrated
//! confidence of the top article).

use crate::ids::SiteId;
use frontdesk_kb::index::SearchResult;
use std::time::Duration;

/// One retrieval.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalQuery {
    /// The visitor's text.
    pub text: String,
    /// The text's embedding when the engine already computed it (one embedding per turn);
    /// `None`: the retriever embeds the text itself, if it has an embedder.
    pub query_vector: Option<Vec<f32>>,
    /// Number of articles wanted.
    pub k: usize,
    /// 0 = keyword only, 1 = semantic only; `None` = the configured `kb.semantic_ratio`.
    pub semantic_ratio: Option<f32>,
    /// Also search internal documents (past tickets): they may inform an LLM answer but are
    /// never cited; the extractive generator never asks for them (it would quote them).
    pub include_internal: bool,
}

/// Errors of a retriever; each is something a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    /// The backend asks us to slow down.
    #[error("knowledge base is rate-limiting requests")]
    RateLimited { retry_after: Option<Duration> },
    /// The backend did not answer in time.
    #[error("knowledge base timed out")]
    Timeout,
    /// The backend (or the embedder) cannot be reached or is not ready.
    #[error("knowledge base unavailable: {0}")]
    Unavailable(String),
    /// The backend refused the query.
    #[error("knowledge base rejected the query: {0}")]
    Rejected(String),
    /// Anything else, with its source.
    #[error("knowledge base error")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Searches the knowledge base of a site.
#[async_trait::async_trait]
pub trait Retriever: Send + Sync {
    /// Adapter name for logs and `/readyz` (`embedded`, `meilisearch`).
    fn adapter_name(&self) -> &'static str;

    /// Article-level results for `query`, best first, with the calibrated confidence.
    async fn retrieve(
        &self,
        site: &SiteId,
        query: &RetrievalQuery,
    ) -> Result<SearchResult, RetrieveError>;

    /// Readiness: `Ok` when searches can be served.
    async fn check(&self) -> Result<(), RetrieveError>;
}
