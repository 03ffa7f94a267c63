//! Adapters: implementations of the ports (`crate::ports`), chosen by config in
//! `crate::startup`. Adapters depend on the port they implement, never on each other.

pub mod freshdesk;
pub mod http;
pub mod inbox;
pub mod intercom;
pub mod kb_embedder;
pub mod kb_retriever;
pub mod memory_store;
pub mod openai_chat;
pub mod redis_store;
pub mod smtp;
pub mod zendesk;
