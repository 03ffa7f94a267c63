//! Ports: the traits the turn engine calls, each held as `Arc<dyn Port>` and implemented by
//! adapters chosen by config at start-up (`crate::startup`). Nothing in the engine knows which
//! adapter it talks to.
//!
//! | port | adapters in this build |
//! | --- | --- |
//! | [`ConversationStore`](store::ConversationStore) | in-memory ([`crate::adapters::memory_store`]), Redis ([`crate::adapters::redis_store`]) |
//! | [`Retriever`](retriever::Retriever) | the kb knowledge base ([`crate::adapters::kb_retriever`]) |
//! | [`AnswerGenerator`](answer::AnswerGenerator) | extractive ([`crate::engine::extractive`]) |
//! | [`QueryEmbedder`](embedder::QueryEmbedder) | the kb embedder ([`crate::adapters::kb_embedder`]) |
//! | [`Analyzer`](analyzer::Analyzer) | local ([`crate::engine::analysis::LocalAnalyzer`]), LLM ([`crate::engine::llm_analysis::LlmAnalyzer`]) |
//! | [`ChatModel`](chat::ChatModel) | OpenAI-compatible ([`crate::adapters::openai_chat`]) |
//! | [`Helpdesk`](helpdesk::Helpdesk) | built-in inbox, Zendesk, Freshdesk ([`crate::adapters::inbox`], [`crate::adapters::zendesk`], [`crate::adapters::freshdesk`]) |
//! | [`Mailer`](mailer::Mailer) | SMTP ([`crate::adapters::smtp`]) |

pub mod analyzer;
pub mod answer;
pub mod chat;
pub mod embedder;
pub mod helpdesk;
pub mod mailer;
pub mod retriever;
pub mod spend;
pub mod store;

pub use analyzer::{AnalysisRequest, AnalyzeError, Analyzer, TurnAnalysis};
pub use answer::{AnswerGenerator, AnswerPiece, AnswerRequest, GenerateError};
pub use embedder::QueryEmbedder;
pub use retriever::{RetrievalQuery, RetrieveError, Retriever};
pub use store::{AppendedMessage, ConversationStore, EventStream, NewConversation, StoreError};
