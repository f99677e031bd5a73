//! The retry policy of an uploader and what it logs about an outage.
//!
//! Owns: the delay before the next attempt (capped, jittered backoff; the longest one at once for
//! failures that need an operator), the watch that cuts that delay short when a centre that was
//! down answers again, and the log level policy for outages. Does not own: what is retried
//! (`super::uploader`, `super::metadata`) or how the centre is probed (`super::connect`).

use std::time::Duration;

use markoff_proto::Stream;
use rand::Rng as _;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::connect::SyncFailure;
use crate::service::backoff::Backoff;

/// First delay after a transient failure.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// A failure that lasts this long is logged again, at ERROR.
const ESCALATE_AFTER: Duration = Duration::from_secs(300);
/// While an outage lasts, it is logged again this often.
const REMIND_EVERY: Duration = Duration::from_secs(3600);
/// Mean interval between probes of a centre that does not answer; each interval is drawn from
/// half to one and a half times this, so gateways do not probe in step.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// When a centre that was down answers again, each stream reconnects after a delay drawn
/// uniformly from zero to this: a fleet of gateways that all saw the same outage comes back
/// spread over this window (on top of the spread of their probes) rather than in one burst.
pub const RECONNECT_SPREAD: Duration = Duration::from_secs(2);

/// A delay drawn uniformly from zero to [`RECONNECT_SPREAD`], to wait before reconnecting to a
/// centre that answers again after an outage.
pub fn reconnect_jitter() -> Duration {
    RECONNECT_SPREAD.mul_f64(rand::rng().random_range(0.0..=1.0))
}

/// The retry policy of one stream, and its logging: an outage is logged once at WARN when it
/// starts (no data is lost: rows wait in the buffer), again at ERROR if it lasts
/// [`ESCALATE_AFTER`], then every [`REMIND_EVERY`]; its end at INFO. A failure that needs an
/// operator (refused login, missing privileges, a certificate that does not verify) is an ERROR
/// at once and is retried at the longest backoff.
#[derive(Debug)]
pub(crate) struct Retry {
    stream: Stream,
    backoff: Backoff,
    max: Duration,
    since: Option<Instant>,
    failures: u32,
    escalated: bool,
    last_logged: Option<(String, Instant)>,
}

impl Retry {
    pub(crate) fn new(stream: Stream, max: Duration) -> Self {
        Self {
            stream,
            backoff: Backoff::new(MIN_BACKOFF.min(max), max),
            max,
            since: None,
            failures: 0,
            escalated: false,
            last_logged: None,
        }
    }

    /// Records a failure, logs it as the policy says, and returns the delay before the next try.
    pub(crate) fn failed(&mut self, failure: &SyncFailure) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let transient = failure.is_transient();
        let delay = if transient {
            self.backoff.next_delay()
        } else {
            Backoff::new(self.max, self.max).next_delay()
        };
        let message = failure.chain();
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        let stream = self.stream;
        let changed = self.last_logged.as_ref().is_none_or(|(m, _)| *m != message);
        let reminder_due = self
            .last_logged
            .as_ref()
            .is_none_or(|(_, at)| now.duration_since(*at) >= REMIND_EVERY);
        let lasting = now.duration_since(since);
        if self.failures == 1 && transient {
            warn!(stream = %stream, error = %message, ?delay, "Sync to the centre failed; retrying. Rows wait in the buffer; nothing is lost.");
        } else if !transient && (changed || reminder_due) {
            self.escalated = true;
            error!(stream = %stream, error = %message, ?delay, "Sync to the centre refused; an operator must act. Retrying at the longest backoff; rows wait in the buffer.");
        } else if !self.escalated && lasting >= ESCALATE_AFTER {
            self.escalated = true;
            error!(stream = %stream, error = %message, failures = self.failures, lasting = ?Duration::from_secs(lasting.as_secs()), "Sync to the centre still failing; rows are piling up in the buffer.");
        } else if reminder_due && self.escalated {
            error!(stream = %stream, error = %message, failures = self.failures, lasting = ?Duration::from_secs(lasting.as_secs()), "Sync to the centre still failing.");
        } else {
            return delay;
        }
        self.last_logged = Some((message, now));
        delay
    }

    /// The centre answers again after it did not: the next attempts start from the shortest
    /// delay (a server that answers but still refuses logins while it starts is retried after
    /// 1 s, 2 s, ... instead of the delay reached during the outage).
    pub(crate) fn centre_answers(&mut self) {
        self.backoff.reset();
    }

    /// Records a success; logs the end of an outage.
    pub(crate) fn recovered(&mut self) {
        if let Some(since) = self.since.take() {
            info!(
                stream = %self.stream,
                failures = self.failures,
                after = ?Duration::from_secs(since.elapsed().as_secs()),
                "Sync to the centre recovered."
            );
        }
        self.failures = 0;
        self.escalated = false;
        self.last_logged = None;
        self.backoff.reset();
    }
}

/// Probes the centre while an attempt waits out its backoff, and says when to cut the wait short:
/// when the centre answers after it was seen not answering. A centre that answered all along (it
/// fails in some other way) is left to the backoff, and so is a failure that needs an operator;
/// either way probing stops at the first answer. So a centre that is down gets one cheap probe a
/// second per stream, and one full attempt each time it comes back.
#[derive(Debug)]
pub(crate) struct Watch {
    /// The centre was seen not answering.
    seen_down: bool,
    /// Nothing more to learn from probes.
    done: bool,
}

impl Watch {
    /// The watch after `failure`.
    pub(crate) fn new(failure: &SyncFailure) -> Self {
        Self {
            seen_down: failure.is_unreachable(),
            done: !failure.is_transient(),
        }
    }

    /// The wait before the next probe, or `None` when no more probes are needed.
    pub(crate) fn next_probe(&self) -> Option<Duration> {
        if self.done {
            return None;
        }
        Some(PROBE_EVERY.mul_f64(rand::rng().random_range(0.5..=1.5)))
    }

    /// Records a probe's result; `true` when the next attempt should start now.
    pub(crate) fn observe(&mut self, answered: bool) -> bool {
        if self.done {
            return false;
        }
        if !answered {
            self.seen_down = true;
            return false;
        }
        self.done = true;
        self.seen_down
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_outage_backs_off_and_recovery_resets() {
        let mut r = Retry::new(Stream::Readings, Duration::from_secs(60));
        let transient = SyncFailure::ConnectTimeout {
            target: "x".into(),
            after: Duration::from_secs(1),
        };
        let d1 = r.failed(&transient);
        assert!(d1 <= Duration::from_secs(1), "{d1:?}");
        for _ in 0..10 {
            r.failed(&transient);
        }
        assert_eq!(r.backoff.ceiling(), Duration::from_secs(60));
        r.recovered();
        assert_eq!(r.backoff.ceiling(), Duration::from_secs(1));
        let refused = SyncFailure::BehindCentre {
            stream: Stream::Readings,
            central: 10,
            local: 5,
        };
        let d = r.failed(&refused);
        assert!(d >= Duration::from_secs(30), "{d:?}");
    }

    fn unreachable() -> SyncFailure {
        SyncFailure::ConnectTimeout {
            target: "x".into(),
            after: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_watch_cuts_the_wait_only_when_a_silent_centre_answers() {
        // Unreachable, then answering: retry at once, and stop probing.
        let mut w = Watch::new(&unreachable());
        let every = w.next_probe().unwrap();
        assert!(every >= PROBE_EVERY / 2 && every <= PROBE_EVERY * 3 / 2);
        assert!(!w.observe(false));
        assert!(!w.observe(false));
        assert!(w.observe(true));
        assert_eq!(w.next_probe(), None);
        assert!(!w.observe(true));

        // A centre that answered and failed (a call timed out) and answers the probe: the
        // backoff decides, and the probing stops.
        let timeout = SyncFailure::Timeout {
            what: "uploading a batch",
            after: Duration::from_secs(1),
        };
        let mut w = Watch::new(&timeout);
        assert!(!w.observe(true));
        assert_eq!(w.next_probe(), None);
        // ... unless it is seen down first.
        let mut w = Watch::new(&timeout);
        assert!(!w.observe(false));
        assert!(w.observe(true));

        // A failure that needs an operator is never probed.
        let refused = SyncFailure::BehindCentre {
            stream: Stream::Readings,
            central: 10,
            local: 5,
        };
        let mut w = Watch::new(&refused);
        assert_eq!(w.next_probe(), None);
        assert!(!w.observe(false));
        assert!(!w.observe(true));
    }

    #[tokio::test(start_paused = true)]
    async fn a_centre_that_answers_again_is_retried_from_the_shortest_delay() {
        let mut r = Retry::new(Stream::Readings, Duration::from_secs(60));
        for _ in 0..10 {
            r.failed(&unreachable());
        }
        assert_eq!(r.backoff.ceiling(), Duration::from_secs(60));
        r.centre_answers();
        assert!(r.failed(&unreachable()) <= Duration::from_secs(1));
    }
}
