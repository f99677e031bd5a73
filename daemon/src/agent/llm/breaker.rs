//! The circuit breaker in front of the LLM server, as a pure state machine with time passed in.
//!
//! Closed → Open after `threshold` consecutive failures → after `cooldown`, one trial request
//! (HalfOpen; every other request is refused while it runs) → Closed when it succeeds, Open
//! again when it fails. An answered request (even an unusable one) is a success: the breaker
//! tracks whether the server is reachable, not whether its answers are good.
//!
//! Owns: the states and transitions. Does not own: deciding what is a failure (see
//! `LlmError::counts_against_server`) or the clock.

use std::time::Duration;

use tokio::time::Instant;

/// Where the breaker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Requests go through; `failures` consecutive failures so far.
    Closed {
        /// Consecutive failures.
        failures: u32,
    },
    /// Requests are refused until `until`.
    Open {
        /// End of the cooldown.
        until: Instant,
    },
    /// One trial request is in flight; others are refused.
    HalfOpen,
}

/// What a finished request changed, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing worth telling.
    None,
    /// The breaker opened (from closed, or again after a failed trial).
    Opened,
    /// The breaker closed after being open.
    Closed,
}

/// The breaker.
#[derive(Clone, Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: State,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` (at least 1) consecutive failures and
    /// stays open for `cooldown`.
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: State::Closed { failures: 0 },
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// May a request go out at `now`? `Err(retry_in)` when not. Admitting the first request
    /// after the cooldown makes it the trial (HalfOpen).
    pub(crate) fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        match self.state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now < until => Err(until - now),
            State::Open { .. } => {
                self.state = State::HalfOpen;
                Ok(())
            }
            State::HalfOpen => Err(Duration::ZERO),
        }
    }

    /// Would a request be refused at `now`? (Open within its cooldown, or a trial in flight.)
    pub(crate) fn is_open(&self, now: Instant) -> bool {
        match self.state {
            State::Closed { .. } => false,
            State::Open { until } => now < until,
            State::HalfOpen => true,
        }
    }

    /// A request got an answer from the server.
    pub(crate) fn success(&mut self) -> Change {
        let was_closed = matches!(self.state, State::Closed { .. });
        self.state = State::Closed { failures: 0 };
        if was_closed {
            Change::None
        } else {
            Change::Closed
        }
    }

    /// A request failed in a way that counts against the server.
    pub(crate) fn failure(&mut self, now: Instant) -> Change {
        match self.state {
            State::Closed { failures } => {
                let failures = failures.saturating_add(1);
                if failures >= self.threshold {
                    self.state = State::Open {
                        until: now + self.cooldown,
                    };
                    Change::Opened
                } else {
                    self.state = State::Closed { failures };
                    Change::None
                }
            }
            State::HalfOpen => {
                self.state = State::Open {
                    until: now + self.cooldown,
                };
                Change::Opened
            }
            // A request admitted before the breaker opened: already open.
            State::Open { .. } => Change::None,
        }
    }

    /// A request ended without telling anything about the server (cancelled by its caller
    /// before it was sent, or dropped): a trial in flight is given back, so the next request
    /// becomes the trial at once.
    pub(crate) fn abandon(&mut self, now: Instant) {
        if self.state == State::HalfOpen {
            self.state = State::Open { until: now };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, COOLDOWN);
        assert_eq!(b.failure(t0), Change::None);
        assert_eq!(b.failure(t0), Change::None);
        // A success in between resets the count.
        assert_eq!(b.success(), Change::None);
        assert_eq!(b.failure(t0), Change::None);
        assert_eq!(b.failure(t0), Change::None);
        assert!(b.admit(t0).is_ok());
        assert_eq!(b.failure(t0), Change::Opened);
        assert_eq!(
            b.state(),
            State::Open {
                until: t0 + COOLDOWN
            }
        );
        assert!(b.is_open(t0));
        assert_eq!(
            b.admit(t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(20))
        );
    }

    #[test]
    fn one_trial_after_cooldown_closes_on_success() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, COOLDOWN);
        assert_eq!(b.failure(t0), Change::Opened);
        let later = t0 + COOLDOWN;
        assert!(
            !b.is_open(later),
            "after the cooldown the next caller may try"
        );
        assert!(b.admit(later).is_ok());
        assert_eq!(b.state(), State::HalfOpen);
        assert!(b.is_open(later));
        assert_eq!(
            b.admit(later),
            Err(Duration::ZERO),
            "only one trial at a time"
        );
        assert_eq!(b.success(), Change::Closed);
        assert_eq!(b.state(), State::Closed { failures: 0 });
        assert!(b.admit(later).is_ok());
    }

    #[test]
    fn a_failed_trial_opens_again_for_a_full_cooldown() {
        let t0 = Instant::now();
        let mut b = Breaker::new(2, COOLDOWN);
        b.failure(t0);
        b.failure(t0);
        let t1 = t0 + COOLDOWN + Duration::from_secs(5);
        assert!(b.admit(t1).is_ok());
        assert_eq!(b.failure(t1), Change::Opened);
        assert_eq!(
            b.state(),
            State::Open {
                until: t1 + COOLDOWN
            }
        );
        // A late failure of a request admitted earlier changes nothing.
        assert_eq!(b.failure(t1 + Duration::from_secs(1)), Change::None);
        assert_eq!(
            b.state(),
            State::Open {
                until: t1 + COOLDOWN
            }
        );
    }

    #[test]
    fn an_abandoned_trial_lets_the_next_request_try() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, COOLDOWN);
        b.failure(t0);
        let t1 = t0 + COOLDOWN;
        assert!(b.admit(t1).is_ok());
        b.abandon(t1);
        assert!(b.admit(t1).is_ok());
        assert_eq!(b.state(), State::HalfOpen);
        // Abandoning while closed changes nothing.
        let mut closed = Breaker::new(3, COOLDOWN);
        closed.failure(t0);
        closed.abandon(t0);
        assert_eq!(closed.state(), State::Closed { failures: 1 });
    }

    #[test]
    fn threshold_zero_behaves_as_one() {
        let t0 = Instant::now();
        let mut b = Breaker::new(0, COOLDOWN);
        assert_eq!(b.failure(t0), Change::Opened);
    }
}
