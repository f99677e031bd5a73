//! What the engine produces: lifecycle transitions and operator actions as stored in
//! `alarm_events`, and reminders.

use serde::{Deserialize, Serialize};

use crate::model::{Actor, AlarmState};

/// A lifecycle transition (or an operator action), stored in `alarm_events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The condition held past the on-delay: the alarm is active.
    Raised,
    /// The condition ended; the alarm still needs acknowledgement.
    Cleared,
    /// The alarm returned to normal.
    Normal,
    /// Someone acknowledged it.
    Acked,
    /// Someone shelved it (notifications suppressed until a time).
    Shelved,
    /// Shelving ended (expired or lifted).
    Unshelved,
    /// Taken out of service (not evaluated).
    OutOfService,
    /// Returned to service.
    InService,
}

impl EventKind {
    /// The snake_case name (as stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Cleared => "cleared",
            Self::Normal => "normal",
            Self::Acked => "acked",
            Self::Shelved => "shelved",
            Self::Unshelved => "unshelved",
            Self::OutOfService => "out_of_service",
            Self::InService => "in_service",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Raised,
            Self::Cleared,
            Self::Normal,
            Self::Acked,
            Self::Shelved,
            Self::Unshelved,
            Self::OutOfService,
            Self::InService,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// What the engine produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A transition, to store (and to notify when `notify`).
    Event(Event),
    /// A reminder for an alarm still active and unacknowledged.
    Reminder {
        /// Instance index.
        instance: usize,
        /// When it became due.
        ts: i64,
    },
}

/// One transition.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Instance index (see [`Engine::instance`](super::Engine::instance)).
    pub instance: usize,
    /// What happened.
    pub kind: EventKind,
    /// When (ms).
    pub ts: i64,
    /// State after the event.
    pub state: AlarmState,
    /// The value that caused it, if any.
    pub value: Option<f64>,
    /// The alarm message.
    pub message: String,
    /// Who asked, for operator actions.
    pub actor: Option<Actor>,
    /// Whether subscribers are told (not while shelved or out of service).
    pub notify: bool,
}
