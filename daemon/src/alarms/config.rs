//! `[alarms]` in `markoff.toml`: rules in Prometheus shape with ISA-18.2 extras, extra
//! notification targets, flood control and delivery retry. The people allowed to act are
//! `[[users]]` (`crate::config::users`).

use std::time::Duration;

use serde::Deserialize;

use crate::config::error::ConfigError;
use crate::config::users::UserConfig;
use crate::model::{Lang, Severity};

/// `[alarms]`
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsConfig {
    /// Evaluate rules at all.
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
    /// How often timer-driven conditions (stale data, delays, shelving expiry, reminders) are
    /// checked.
    #[serde(default = "defaults::tick", with = "humantime_serde")]
    pub tick: Duration,
    /// More than this many notifications waiting for one subscriber at once are sent as one
    /// summary message.
    #[serde(default = "defaults::flood_threshold")]
    pub flood_threshold: usize,
    /// First retry delay of a notification a channel did not accept.
    #[serde(default = "defaults::retry_min", with = "humantime_serde")]
    pub retry_min: Duration,
    /// Longest retry delay.
    #[serde(default = "defaults::retry_max", with = "humantime_serde")]
    pub retry_max: Duration,
    /// The rules.
    #[serde(default)]
    pub rule: Vec<RuleConfig>,
    /// Notification targets besides the users who subscribe (a group chat, the log).
    #[serde(default)]
    pub notify: Vec<NotifyConfig>,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        Self {
            enabled: defaults::enabled(),
            tick: defaults::tick(),
            flood_threshold: defaults::flood_threshold(),
            retry_min: defaults::retry_min(),
            retry_max: defaults::retry_max(),
            rule: Vec::new(),
            notify: Vec::new(),
        }
    }
}

/// What a rule watches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Value above `limit` (the second, more urgent high limit).
    HighHigh,
    /// Value above `limit`.
    High,
    /// Value below `limit`.
    Low,
    /// Value below `limit` (the second, more urgent low limit).
    LowLow,
    /// A boolean input (leak, door, fault bit) in its alarm state (`active_when`).
    State,
    /// Value changing faster than `limit` per `per`.
    Rate,
    /// No good reading for `after`.
    Stale,
    /// The device does not answer: a `<device>.online` sensor reads 0, or readings arrive with
    /// quality `comm_error`.
    CommLoss,
}

impl RuleKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HighHigh => "high_high",
            Self::High => "high",
            Self::Low => "low",
            Self::LowLow => "low_low",
            Self::State => "state",
            Self::Rate => "rate",
            Self::Stale => "stale",
            Self::CommLoss => "comm_loss",
        }
    }
}

/// Direction of a rate-of-change rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Rising faster than the limit.
    Rise,
    /// Falling faster than the limit.
    Fall,
    /// Either.
    #[default]
    Both,
}

/// Which sensors a rule applies to. Every given field must match.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Sensor id, or a glob over it (`*` any run of characters, `?` one character).
    #[serde(default)]
    pub sensor: Option<String>,
    /// Floor label (glob).
    #[serde(default)]
    pub floor: Option<String>,
    /// Room label (glob).
    #[serde(default)]
    pub room: Option<String>,
    /// Sensor kind (`temperature`, `leak`, `state`, ...).
    #[serde(default)]
    pub kind: Option<String>,
}

/// `[[alarms.rule]]`
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Name of the alarm (Prometheus `alert`), e.g. `BoilerOverheat`.
    pub alert: String,
    /// What the rule watches for.
    pub kind: RuleKind,
    /// Shorthand for `match.sensor`.
    #[serde(default)]
    pub sensor: Option<String>,
    /// Which sensors the rule applies to (one alarm per matching sensor).
    #[serde(default, rename = "match")]
    pub selector: Selector,
    /// Threshold (high/low kinds), or the rate limit per `per` (rate).
    #[serde(default)]
    pub limit: Option<f64>,
    /// How far back past the limit the value must go before the condition ends (hysteresis).
    #[serde(default)]
    pub deadband: f64,
    /// On-delay: the condition must hold this long before the alarm is raised.
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub on_delay: Option<Duration>,
    /// Off-delay: the alarm stays active this long after the condition ends.
    #[serde(default, with = "humantime_serde")]
    pub keep_firing_for: Option<Duration>,
    /// `critical`, `high`, `medium` or `low`.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Whether someone must acknowledge the alarm. Without it, the alarm returns to normal by
    /// itself when the condition ends.
    #[serde(default = "defaults::ack_required")]
    pub ack_required: bool,
    /// Send a reminder this often while the alarm is active and unacknowledged.
    #[serde(default, with = "humantime_serde")]
    pub renotify: Option<Duration>,
    /// State rules: the value meaning "alarm" (`true`: non-zero, the default; `false`: zero).
    #[serde(default)]
    pub active_when: Option<bool>,
    /// Rate rules: the time unit of `limit` (default one minute).
    #[serde(default, with = "humantime_serde")]
    pub per: Option<Duration>,
    /// Rate rules: `rise`, `fall` or `both` (default).
    #[serde(default)]
    pub direction: Direction,
    /// Stale rules: how long without a good reading.
    #[serde(default, with = "humantime_serde")]
    pub after: Option<Duration>,
    /// Message template. Placeholders: `{alert}`, `{sensor}`, `{name}`, `{value}`, `{unit}`,
    /// `{limit}`, `{floor}`, `{room}`, `{location}`, `{severity}`.
    #[serde(default)]
    pub message: Option<String>,
    /// `false` keeps the rule in the file without evaluating it.
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
}

/// `[[alarms.notify]]`: a notification target that is not a person in `[[users]]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// `telegram` (a chat id) or `log` (the service log).
    pub channel: String,
    /// Address on that channel (a Telegram chat id); empty for `log`.
    #[serde(default)]
    pub to: String,
    /// Language of the notifications: `en` or `ru`.
    #[serde(default)]
    pub lang: Lang,
    /// Least severity sent to this target.
    #[serde(default = "defaults::min_severity")]
    pub min_severity: Severity,
}

/// Every problem in `[alarms]` and in the people it names (`[[users]]`), with dotted key paths:
/// the rules are compiled as the engine will compile them.
pub fn validate(cfg: &AlarmsConfig, users: &[UserConfig]) -> Vec<ConfigError> {
    super::rules::compile(cfg, users).err().unwrap_or_default()
}

pub(crate) mod defaults {
    use std::time::Duration;

    use crate::model::Severity;

    pub(crate) fn enabled() -> bool {
        true
    }
    pub(crate) fn tick() -> Duration {
        Duration::from_secs(1)
    }
    pub(crate) fn flood_threshold() -> usize {
        5
    }
    pub(crate) fn retry_min() -> Duration {
        Duration::from_secs(2)
    }
    pub(crate) fn retry_max() -> Duration {
        Duration::from_secs(300)
    }
    pub(crate) fn ack_required() -> bool {
        true
    }
    pub(crate) fn min_severity() -> Severity {
        Severity::Low
    }
}
