//! The answer-generator port: turns a question and its retrieval result into a streamed,
//! cited answer. Adapters: extractive (`crate::engine::extractive`, no LLM) and the LLM
//! generator (`crate::engine::llm_answer`: grounded prompt, numbered sources, citations).

use crate::domain::Citation;
use crate::ports::chat::TokenUsage;
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
    /// ISO 639-1 language of the visitor's message, when detected (answer in it).
    pub language: Option<String>,
    /// The conversation before this message, oldest first (visitor and assistant/agent text).
    pub history: Vec<HistoryMessage>,
    /// The site's id (the prompt names whose assistant it is).
    pub site: String,
}

/// A message of the conversation so far, as a generator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryMessage {
    /// `true` for the visitor, `false` for the assistant or an agent.
    pub from_visitor: bool,
    pub text: String,
}

/// One piece of a generated answer.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerPiece {
    /// The next bit of text; the answer is the concatenation of every delta.
    Delta(String),
    /// The end: the articles the answer used (empty when nothing relevant was found).
    Done {
        citations: Vec<Citation>,
        /// Tokens the model used (`None` for the extractive generator, or when the server did
        /// not report usage).
        usage: Option<TokenUsage>,
        /// The passages the answer must be supported by (those it cited, or all it was given
        /// when it cited none), for the grounding check; `None` when the text is quoted from
        /// the passages themselves (extractive) and needs no check.
        evidence: Option<Vec<Evidence>>,
    },
}

/// A passage an answer was generated from, with its article.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub citation: Citation,
    pub text: String,
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
    /// The output contained the system prompt's canary: it was leaking the prompt.
    #[error("answer generator output was blocked (it contained the prompt canary)")]
    Blocked,
    /// The model's stream broke after it started (cut, error chunk, no end).
    #[error("answer generator stream broke: {0}")]
    Interrupted(String),
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
