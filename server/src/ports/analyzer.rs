//! The analyzer port: what one visitor message says besides its question — language,
//! sentiment, support signals, category and priority (DESIGN.md "One turn", step 3).
//!
//! Adapters: local (VADER sentiment, rule-based support signals, a few-shot classifier over
//! the turn's embedding: [`crate::engine::analysis::LocalAnalyzer`]) and the LLM
//! ([`crate::engine::llm_analysis::LlmAnalyzer`]: one structured-output call per turn, validated,
//! falling back to the local one).

use crate::config::Priority;
use crate::domain::{ActionRequest, ReasonCode};
use crate::ids::SiteId;
use crate::taxonomy::Handling;
use std::time::Duration;

/// One message to analyse.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisRequest<'a> {
    /// The visitor's message.
    pub text: &'a str,
    /// Its embedding (the turn's one embedding, shared with retrieval), when an embedder runs.
    pub embedding: Option<&'a [f32]>,
    /// The visitor's previous message in this conversation, for sentiment over two messages.
    pub previous_visitor_text: Option<&'a str>,
    /// A model may be called (false once the site's LLM budget is spent).
    pub allow_model: bool,
}

/// The taxonomy node a message was classified into.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryMatch {
    pub category: String,
    pub subcategory: Option<String>,
    /// Cosine of the message to the nearest example of the taxonomy (−1..1).
    pub similarity: f32,
    /// The classifier's probability for this node (0..1).
    pub probability: f32,
}

/// What the analysis found.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnAnalysis {
    /// ISO 639-1 code of the message's language, when detected reliably.
    pub language: Option<String>,
    /// VADER compound score of the message, −1..1.
    pub sentiment: f32,
    /// VADER compound score of the visitor's previous message, when there is one.
    pub previous_sentiment: Option<f32>,
    /// The visitor asks for a human in words.
    pub requested_human: bool,
    pub frustrated: bool,
    pub urgent: bool,
    /// The taxonomy node, or `None` when the message is outside the taxonomy (or the site has
    /// none, or no embedding was available).
    pub category: Option<CategoryMatch>,
    /// The site has a taxonomy, an embedding was available, and the message is far from
    /// every example (`sites.taxonomy.min_similarity`).
    pub out_of_taxonomy: bool,
    /// Cosine to the nearest example of the taxonomy, when the classifier ran.
    pub taxonomy_similarity: Option<f32>,
    /// How the category is handled (`answer` when unclassified).
    pub handling: Handling,
    pub priority: Priority,
    /// An account action the visitor asks the team to do.
    pub action: Option<ActionRequest>,
    /// Reasons the message itself raises: `security`, `legal`, `billing_dispute`, `churn_risk`,
    /// and the reason of a `human` category. Sorted, without repeats.
    pub flagged: Vec<ReasonCode>,
    /// Who decided: the local analyzer, the LLM, or the local analyzer after the LLM failed.
    pub source: AnalysisSource,
    /// Tokens a model spent on this analysis (`None`: no model was called or it reported none).
    pub usage: Option<crate::ports::chat::TokenUsage>,
}

/// Which analyzer produced a [`TurnAnalysis`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnalysisSource {
    /// The local analyzer (VADER, rules, embedding classifier).
    #[default]
    Local,
    /// The LLM's structured output, validated (the local rules still add what they detect).
    Llm,
    /// The LLM was asked but failed or answered outside the schema: the local analyzer decided.
    LlmFallback,
}

impl AnalysisSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Llm => "llm",
            Self::LlmFallback => "llm_fallback",
        }
    }
}

/// Errors of an analyzer.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("analyzer rate-limited the request")]
    RateLimited { retry_after: Option<Duration> },
    #[error("analyzer timed out")]
    Timeout,
    #[error("analyzer unavailable: {0}")]
    Unavailable(String),
    #[error("analyzer error")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Analyses visitor messages.
#[async_trait::async_trait]
pub trait Analyzer: Send + Sync {
    /// Adapter name for logs (`local`).
    fn adapter_name(&self) -> &'static str;

    /// Analyses one message of `site`.
    async fn analyze(
        &self,
        site: &SiteId,
        request: &AnalysisRequest<'_>,
    ) -> Result<TurnAnalysis, AnalyzeError>;
}
