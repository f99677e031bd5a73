//! Ways people and tools reach the gateway: the local HTTP API (health, metrics, JSON), the
//! CLI client that queries a running daemon through it, the LAN page and the Telegram bot for
//! on-site staff.
//!
//! Owns: request handling and presentation. Does not own: the data (see `crate::store`).

pub mod agent_api;
pub mod agent_cli;
pub mod alarms_api;
pub mod alarms_cli;
pub mod api_auth;
pub mod client;
pub mod conn;
pub mod http;
pub mod lan;
pub mod office;
pub mod sync_cli;
pub mod telegram;
