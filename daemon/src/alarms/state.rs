//! The ISA-18.2 states an alarm goes through.

use serde::{Deserialize, Serialize};

/// ISA-18.2 state of one alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// Condition absent, nothing to acknowledge.
    Normal,
    /// Condition present, not yet acknowledged.
    ActiveUnacked,
    /// Condition present, acknowledged.
    ActiveAcked,
    /// Condition gone, but nobody acknowledged the alarm yet.
    ClearedUnacked,
}

impl AlarmState {
    /// The snake_case name (as stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::ActiveUnacked => "active_unacked",
            Self::ActiveAcked => "active_acked",
            Self::ClearedUnacked => "cleared_unacked",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Normal,
            Self::ActiveUnacked,
            Self::ActiveAcked,
            Self::ClearedUnacked,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Whether the condition is (still) considered present.
    pub fn is_active(self) -> bool {
        matches!(self, Self::ActiveUnacked | Self::ActiveAcked)
    }

    /// Whether an acknowledgement is outstanding.
    pub fn is_unacked(self) -> bool {
        matches!(self, Self::ActiveUnacked | Self::ClearedUnacked)
    }
}
