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

use serde::{Deserialize, Serialize};

pub use config::{AlarmsConfig, Lang, RuleKind, UserConfig};
pub use engine::{Engine, EventKind, Output};
pub use service::{AlarmError, AlarmView, Alarms, CommandOutcome};

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

/// How urgent an alarm is. Ordered: `Low` < `Medium` < `High` < `Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Low,
    /// Needs attention this shift.
    Medium,
    /// Needs attention now.
    High,
    /// Damage or danger: act immediately.
    Critical,
}

impl Severity {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Low, Self::Medium, Self::High, Self::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// What a person may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May ask questions and look.
    Viewer,
    /// May also acknowledge, shelve and take alarms out of service.
    Operator,
    /// Everything an operator may, recorded as `admin` in the audit log: the person responsible
    /// for the gateway (who may use it at all is the config file itself).
    Admin,
}

impl Role {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// May this role act on alarms (acknowledge, shelve, out of service)?
    pub fn may_act(self) -> bool {
        self >= Self::Operator
    }
}

/// Who asks for an action, and through which channel. The channel has already established the
/// identity (a Telegram user id from the allow-list, a local login for the CLI).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Login from `[[users]]`, or the raw identity when unknown (`telegram:123`).
    pub user: String,
    /// `telegram`, `cli`, `lan`, ...
    pub channel: String,
    /// The user's role; `None` when the identity is not in `[[users]]`.
    pub role: Option<Role>,
}

impl Actor {
    /// Looks a login up in `[[users]]`.
    pub fn by_login(users: &[UserConfig], login: &str, channel: &str) -> Self {
        let role = users.iter().find(|u| u.login == login).map(|u| u.role);
        Self {
            user: login.to_owned(),
            channel: channel.to_owned(),
            role,
        }
    }

    /// Looks a Telegram user id up in `[[users]]`.
    pub fn by_telegram_id(users: &[UserConfig], id: i64) -> Self {
        match users.iter().find(|u| u.telegram_id == Some(id)) {
            Some(u) => Self {
                user: u.login.clone(),
                channel: "telegram".into(),
                role: Some(u.role),
            },
            None => Self {
                user: format!("telegram:{id}"),
                channel: "telegram".into(),
                role: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_and_admins_may_act_viewers_may_not() {
        assert!(!Role::Viewer.may_act());
        assert!(Role::Operator.may_act());
        assert!(Role::Admin.may_act());
        let users: Vec<UserConfig> = toml::from_str::<toml::Table>(
            "[[users]]\nlogin = \"anna\"\nrole = \"admin\"\ntelegram_id = 7\n",
        )
        .ok()
        .and_then(|t| t.get("users").cloned())
        .and_then(|u| u.try_into().ok())
        .expect("users parse");
        let actor = Actor::by_telegram_id(&users, 7);
        assert_eq!(actor.role, Some(Role::Admin));
        assert_eq!(Role::Admin.as_str(), "admin");
    }
}
