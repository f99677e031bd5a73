//! Waiting without fixed sleeps: poll a condition until it holds (or a window passes) under a
//! patience that slow machines can stretch with `MARKOFF_TEST_PATIENCE`.
//!
//! Owns: the patience policy and the polling loops behind [`assert_eventually!`] and
//! [`assert_always!`]. Does not own: what is polled.
//!
//! [`assert_eventually!`]: crate::assert_eventually
//! [`assert_always!`]: crate::assert_always

use std::time::Duration;

/// Environment variable with a factor (e.g. `3` or `2.5`) applied to every patience.
pub const PATIENCE_ENV: &str = "MARKOFF_TEST_PATIENCE";

/// How long a condition may take to hold before a test fails, before the factor.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(20);

/// Time between two polls of a condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// The factor from [`PATIENCE_ENV`], 1 when unset.
///
/// # Panics
/// The variable is set but is not a positive number: a typo there would otherwise silently
/// give the default patience.
pub fn patience_factor() -> f64 {
    match std::env::var(PATIENCE_ENV) {
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => f,
            _ => panic!("{PATIENCE_ENV}={text:?} is not a positive number"),
        },
        Err(_) => 1.0,
    }
}

/// `base` multiplied by the patience factor.
pub fn scaled(base: Duration) -> Duration {
    base.mul_f64(patience_factor())
}

/// The default patience, scaled.
pub fn patience() -> Duration {
    scaled(DEFAULT_PATIENCE)
}

/// Polls `cond` (which may contain `.await`) every [`POLL_INTERVAL`] until it is true; panics with
/// the message (format arguments allowed, evaluated only on failure) when it is still false after
/// the patience. Use inside `async` code.
///
/// ```no_run
/// # use std::time::Duration;
/// # use markoff_tests::{FakeSystemd, TempGateway, assert_eventually};
/// # async fn example(gw: TempGateway, systemd: FakeSystemd) {
/// assert_eventually!(
///     gw.try_last_seq().await.is_some_and(|s| s > 1000),
///     "ingest never started:\n{}",
///     gw.log()
/// );
/// assert_eventually!(systemd.has("READY=1"), patience = Duration::from_secs(5), "no READY");
/// # }
/// ```
#[macro_export]
macro_rules! assert_eventually {
    ($cond:expr, patience = $patience:expr, $($msg:tt)+) => {{
        let patience: ::std::time::Duration = $crate::eventually::scaled($patience);
        let started = $crate::tokio::time::Instant::now();
        loop {
            if $cond {
                break;
            }
            if started.elapsed() >= patience {
                panic!(
                    "assert_eventually!({}) still false after {:?}: {}",
                    stringify!($cond),
                    patience,
                    format_args!($($msg)+)
                );
            }
            $crate::tokio::time::sleep($crate::eventually::POLL_INTERVAL).await;
        }
    }};
    ($cond:expr, $($msg:tt)+) => {
        $crate::assert_eventually!($cond, patience = $crate::eventually::DEFAULT_PATIENCE, $($msg)+)
    };
}

/// Polls `cond` every [`POLL_INTERVAL`] for the whole `window` (not scaled: it is an observation
/// period, not a patience) and panics with the message as soon as it is false.
///
/// ```no_run
/// # use std::time::Duration;
/// # use markoff_tests::{FakeSystemd, assert_always};
/// # async fn example(systemd: FakeSystemd) {
/// let before = systemd.count("WATCHDOG=1");
/// assert_always!(systemd.count("WATCHDOG=1") == before, window = Duration::from_secs(2), "pinged");
/// # }
/// ```
#[macro_export]
macro_rules! assert_always {
    ($cond:expr, window = $window:expr, $($msg:tt)+) => {{
        let window: ::std::time::Duration = $window;
        let started = $crate::tokio::time::Instant::now();
        loop {
            if !($cond) {
                panic!(
                    "assert_always!({}) became false after {:?}: {}",
                    stringify!($cond),
                    started.elapsed(),
                    format_args!($($msg)+)
                );
            }
            if started.elapsed() >= window {
                break;
            }
            $crate::tokio::time::sleep($crate::eventually::POLL_INTERVAL).await;
        }
    }};
}
