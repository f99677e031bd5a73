//! The retry policy of an uploader and what it logs about an outage.
//!
//! Owns: the delay before the next attempt (capped, jittered backoff; the longest one at once for
//! failures that need an operator) and the log level policy for outages. Does not own: what is
//! retried (`super::uploader`, `super::metadata`).

use std::time::Duration;

use markoff_proto::Stream;
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
}
