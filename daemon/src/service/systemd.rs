//! The systemd notify protocol (`Type=notify`): READY, WATCHDOG, STATUS, RELOADING, STOPPING.
//!
//! Every call is a no-op when `NOTIFY_SOCKET` is unset, so the daemon runs the same by hand.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::supervisor::Supervisor;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        debug!(error = %e, "sd_notify failed");
    }
}

/// Startup is complete: the store is open and the sources are built.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// A one-line status shown by `systemctl status`.
pub fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

/// Shutdown has begun.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// A configuration reload has begun (systemd >= 253 wants the monotonic time with it).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The watchdog interval requested by systemd (`WatchdogSec=` -> `WATCHDOG_USEC`), if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

/// Pings the watchdog at half its interval, but only while every critical component of the
/// supervisor shows progress; a hung writer therefore gets the service restarted by systemd.
pub async fn run_watchdog(
    interval: Duration,
    stall_timeout: Duration,
    supervisor: Arc<Supervisor>,
    token: CancellationToken,
) {
    let period = (interval / 2).max(Duration::from_millis(10));
    let stall = stall_timeout.min(interval);
    info!(?interval, ?stall, "systemd watchdog enabled.");
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut withholding = false;
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match supervisor.liveness(stall) {
            Ok(()) => {
                if withholding {
                    info!("Critical components progress again; watchdog pings resumed.");
                    withholding = false;
                }
                send(&[NotifyState::Watchdog]);
            }
            Err((component, age)) => {
                if !withholding {
                    warn!(component = %component, ?age, "Critical component is not progressing; withholding watchdog pings.");
                    withholding = true;
                }
            }
        }
    }
}
