//! Local alarms: rules evaluated on every committed reading and on timers, the ISA-18.2
//! lifecycle, persisted state, the notification outbox and the ack/shelve API for channels.
//!
//! Owns: `alarm_state`, `alarm_events`, `outbox` and `audit_log` in the buffer (written only
//! through the store's writer, in one transaction per evaluation step together with the seq of
//! the last evaluated reading, so a restart resumes exactly where the last commit left off and
//! never notifies twice).
//! Does not own: delivering messages on a given channel (channels register a [`outbox::Channel`]),
//! uploading events (`crate::sync` reads `alarm_events` by seq).
//!
//! Lifecycle: normal → active-unacked → (ack) active-acked → (clear) normal, or
//! active-unacked → (clear) cleared-unacked → (ack) normal. Rules without `ack_required` return to
//! normal when the condition ends. Shelving suppresses notifications until it expires;
//! out-of-service stops evaluation.

pub mod config;
pub mod engine;
pub mod outbox;
mod persist;
pub mod rules;
pub mod service;
pub mod text;

pub use config::{AlarmsConfig, RuleKind};
pub use engine::{Engine, EventKind, Output};
pub use service::{AlarmError, AlarmView, Alarms, CommandOutcome};
