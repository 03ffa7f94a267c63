//! `frontdesk-kb`: the knowledge base behind Frontdesk's answers.
//!
//! It knows documents, chunks, embeddings and rankings — nothing of HTTP, sockets or
//! conversations (the `frontdesk` server depends on this crate, never the reverse).
//!
//! Pipeline: [`ingest`] reads a folder of help articles (Markdown/MDX, HTML, plain text) or a
//! JSONL file of resolved tickets into [`Document`]s; [`chunk`] splits each document into
//! heading-aware [`Chunk`]s that fit the embedding model's window; [`embed`] turns chunk text
//! into vectors; [`index::KnowledgeBase`] keeps a tantivy BM25 index and an exact-cosine vector
//! index on disk, fuses both rankings and reports a calibrated [`confidence`]; [`eval`] computes
//! the retrieval metrics (Recall@k, MRR@10, nDCG@10).

pub mod chunk;
pub mod confidence;
pub mod document;
pub mod embed;
pub mod eval;
pub mod fusion;
pub mod index;
pub mod ingest;
pub mod keyword;
pub mod vector;

pub use document::{Chunk, Document, DocumentId, Section, SourceKind};
