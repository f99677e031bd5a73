//! Ways people and tools reach the gateway: the local HTTP API (health, metrics, JSON) and the
//! CLI client that queries a running daemon through it.
//!
//! Owns: request handling and presentation. Does not own: the data (see `crate::store`).

pub mod alarms_api;
pub mod alarms_cli;
pub mod client;
pub mod http;
pub mod sync_cli;
