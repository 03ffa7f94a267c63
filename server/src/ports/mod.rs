//! Ports: the traits the turn engine calls, each held as `Arc<dyn Port>` and implemented by
//! adapters chosen by config at start-up (`crate::startup`). Nothing in the engine knows which
//! adapter it talks to.
//!
//! | port | adapters in this build |
//! | --- | --- |
//! | [`ConversationStore`](store::ConversationStore) | in-memory ([`crate::adapters::memory_store`]) |
//! | [`Retriever`](retriever::Retriever) | the kb knowledge base ([`crate::adapters::kb_retriever`]) |
//! | [`AnswerGenerator`](answer::AnswerGenerator) | extractive ([`crate::engine::extractive`]) |
//! | [`QueryEmbedder`](embedder::QueryEmbedder) | the kb embedder ([`crate::adapters::kb_embedder`]) |
//! | [`Analyzer`](analyzer::Analyzer) | local ([`crate::engine::analysis::LocalAnalyzer`]) |

pub mod analyzer;
pub mod answer;
pub mod chat;
pub mod embedder;
pub mod helpdesk;
pub mod retriever;
pub mod spend;
pub mod store;

pub use analyzer::{AnalysisRequest, AnalyzeError, Analyzer, TurnAnalysis};
pub use answer::{AnswerGenerator, AnswerPiece, AnswerRequest, GenerateError};
pub use embedder::QueryEmbedder;
pub use retriever::{RetrievalQuery, RetrieveError, Retriever};
pub use store::{AppendedMessage, ConversationStore, EventStream, NewConversation, StoreError};
