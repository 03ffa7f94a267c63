//! `frontdesk`: the server — HTTP/WebSocket API, turn engine, ports and adapters, config
//! loading and the command line.
//!
//! Layout: [`config`] (layered settings) → [`startup`] (adapter selection, server lifecycle) →
//! [`api`] (actix-web, the wire format) → [`engine`] (turns, policy, extractive answers) →
//! [`ports`] (traits) ← [`adapters`] (in-memory store, knowledge-base retriever).
//! Only `api` knows HTTP and JSON; the engine calls ports only.

pub mod adapters;
pub mod api;
pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod hours;
pub mod ids;
pub mod ports;
pub mod startup;
pub mod taxonomy;
pub mod telemetry;
