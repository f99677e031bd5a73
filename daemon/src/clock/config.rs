//! `[clock]`: the section's type and defaults (part of the config layer: imports nothing of the
//! crate).

use std::time::Duration;

use serde::Deserialize;

/// `[clock]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    /// The box has a battery-backed clock that is right from boot: trust the wall clock even
    /// when the kernel does not report it synchronised. Steps are still detected.
    #[serde(default)]
    pub rtc: bool,
    /// How often the synchronisation status is read.
    #[serde(default = "defaults::probe_interval", with = "humantime_serde")]
    pub probe_interval: Duration,
    /// A change of the wall clock against the monotonic clock larger than this is a step.
    #[serde(default = "defaults::step_threshold", with = "humantime_serde")]
    pub step_threshold: Duration,
    /// After a step, the new wall time is accepted once it has been synchronised this long.
    #[serde(default = "defaults::step_settle", with = "humantime_serde")]
    pub step_settle: Duration,
    /// Readings stamped from the monotonic clock wait this long for their correction before
    /// they are uploaded as stamped (and marked uncorrected).
    #[serde(default = "defaults::hold_upload", with = "humantime_serde")]
    pub hold_upload: Duration,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            rtc: false,
            probe_interval: defaults::probe_interval(),
            step_threshold: defaults::step_threshold(),
            step_settle: defaults::step_settle(),
            hold_upload: defaults::hold_upload(),
        }
    }
}

mod defaults {
    use std::time::Duration;

    pub(super) fn probe_interval() -> Duration {
        Duration::from_secs(10)
    }
    pub(super) fn step_threshold() -> Duration {
        Duration::from_secs(2)
    }
    pub(super) fn step_settle() -> Duration {
        Duration::from_secs(60)
    }
    pub(super) fn hold_upload() -> Duration {
        Duration::from_secs(3600)
    }
}
