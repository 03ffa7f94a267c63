//! The answer-generator port: turns a question and its retrieval result into a streamed,
//! cited answer. Adapters: extractive (`crate::engine::extractive`, no LLM); the LLM
//! generator (grounded prompt, citations) comes with the LLM issue.

use crate::domain::Citation;
use frontdesk_kb::index::SearchResult;
use futures_util::stream::BoxStream;
use std::sync::Arc;
use std::time::Duration;

/// What an answer is generated from.
#[derive(Debug, Clone)]
pub struct AnswerRequest {
    /// The visitor's message.
    pub question: String,
    /// The retrieval result for it (hits best first).
    pub retrieval: Arc<SearchResult>,
    /// The visitor's locale (`en`, `fr-CA`), when known.
    pub locale: Option<String>,
}

/// One piece of a generated answer.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerPiece {
    /// The next bit of text; the answer is the concatenation of every delta.
    Delta(String),
    /// The end: the articles the answer used (empty when nothing relevant was found).
    Done { citations: Vec<Citation> },
}

/// Errors of a generator.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("answer generator is rate-limited")]
    RateLimited { retry_after: Option<Duration> },
    #[error("answer generator timed out")]
    Timeout,
    #[error("answer generator unavailable: {0}")]
    Unavailable(String),
    #[error("answer generator refused the request: {0}")]
    Rejected(String),
    #[error("answer generator failed")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Generates answers. The stream ends with exactly one [`AnswerPiece::Done`]; dropping the
/// stream cancels the generation (an LLM adapter drops its HTTP stream).
pub trait AnswerGenerator: Send + Sync {
    /// Adapter name for logs (`extractive`, `llm`).
    fn name(&self) -> &'static str;

    /// Starts generating the answer to `request`.
    fn generate(
        &self,
        request: AnswerRequest,
    ) -> BoxStream<'static, Result<AnswerPiece, GenerateError>>;
}
