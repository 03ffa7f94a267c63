//! `Retriever` adapter over the knowledge base (`frontdesk_kb`): runs its blocking search on
//! tokio's blocking pool so embedding the query and scoring never stall the runtime.
//!
//! The adapter is generic over [`BlockingSearch`], the one method it needs from a knowledge
//! base, so the embedded index (`frontdesk_kb::index::KnowledgeBase`) plugs in with a single
//! `impl BlockingSearch for KnowledgeBase` (in `crate::startup`, next to where it is opened).

use crate::ids::SiteId;
use crate::ports::retriever::{RetrievalQuery, RetrieveError, Retriever};
use frontdesk_kb::index::{SearchRequest, SearchResult};
use std::sync::Arc;

/// A knowledge base that answers searches synchronously (CPU- or disk-bound).
pub trait BlockingSearch: Send + Sync + 'static {
    /// Runs one search. Errors are reported as [`RetrieveError`] by the implementation, which
    /// knows which of its failures are transient.
    fn search(&self, request: &SearchRequest<'_>) -> Result<SearchResult, RetrieveError>;

    /// Readiness: `Ok` when the index is open and searchable.
    fn check(&self) -> Result<(), RetrieveError>;
}

/// The `Retriever` over a blocking knowledge base.
pub struct KbRetriever<K: BlockingSearch> {
    kb: Arc<K>,
    adapter_name: &'static str,
}

impl<K: BlockingSearch> KbRetriever<K> {
    /// Wraps `kb`; `adapter_name` is what `/readyz` shows (`embedded`).
    pub fn new(kb: Arc<K>, adapter_name: &'static str) -> Self {
        Self { kb, adapter_name }
    }
}

#[async_trait::async_trait]
impl<K: BlockingSearch> Retriever for KbRetriever<K> {
    fn adapter_name(&self) -> &'static str {
        self.adapter_name
    }

    async fn retrieve(
        &self,
        site: &SiteId,
        query: &RetrievalQuery,
    ) -> Result<SearchResult, RetrieveError> {
        let kb = Arc::clone(&self.kb);
        let site = site.clone();
        let query = query.clone();
        tokio::task::spawn_blocking(move || {
            kb.search(&SearchRequest {
                query: &query.text,
                query_vector: query.query_vector.as_deref(),
                site: site.as_str(),
                k: query.k,
                semantic_ratio: query.semantic_ratio,
                tags: &[],
                include_internal: query.include_internal,
            })
        })
        .await
        .map_err(|join| RetrieveError::Other(Box::new(join)))?
    }

    async fn check(&self) -> Result<(), RetrieveError> {
        let kb = Arc::clone(&self.kb);
        tokio::task::spawn_blocking(move || kb.check())
            .await
            .map_err(|join| RetrieveError::Other(Box::new(join)))?
    }
}

/// The embedded knowledge base plugs in here: its blocking `search` is the adapter's search.
impl BlockingSearch for frontdesk_kb::index::KnowledgeBase {
    fn search(&self, request: &SearchRequest<'_>) -> Result<SearchResult, RetrieveError> {
        frontdesk_kb::index::KnowledgeBase::search(self, request).map_err(retrieve_error)
    }

    fn check(&self) -> Result<(), RetrieveError> {
        // An open knowledge base is searchable: its index lives in this process.
        Ok(())
    }
}

/// Maps knowledge-base errors to what a caller can act on.
pub fn retrieve_error(err: frontdesk_kb::index::KbError) -> RetrieveError {
    use frontdesk_kb::embed::EmbedError;
    use frontdesk_kb::index::KbError;
    match err {
        KbError::Embed(EmbedError::Timeout) => RetrieveError::Timeout,
        KbError::Embed(EmbedError::RateLimited { retry_after }) => {
            RetrieveError::RateLimited { retry_after }
        }
        KbError::Embed(
            EmbedError::Unavailable(message) | EmbedError::ModelUnavailable(message),
        ) => RetrieveError::Unavailable(format!("query embedding: {message}")),
        other => RetrieveError::Other(Box::new(other)),
    }
}
