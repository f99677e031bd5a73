//! Starting the process's clock with the gateway, and the task that keeps it current.
//!
//! Owns: the first probe (before the sources stamp anything), the periodic probe, the clock's
//! metrics and log lines. Does not own: the states (`super::Clock`).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Clock, ClockConfig, ClockEvent, ClockMetrics, SyncStatus};
use crate::model::Timestamp;
use crate::service::metrics::Metrics;

/// Installs the process's clock (every [`Timestamp::now`] goes through it from here on), reads
/// the synchronisation status and applies `cfg`. `floor_ms` is the newest stamp already stored:
/// a free-running start is anchored after it.
pub async fn start(cfg: &ClockConfig, floor_ms: Option<i64>, metrics: &Metrics) -> Arc<Clock> {
    let clock = super::install().clone();
    let status = probe(&clock).await;
    clock.configure(cfg, status, floor_ms);
    let snap = clock.snapshot();
    metrics.get::<ClockMetrics>().update(&snap);
    log_events(&clock);
    if snap.trusted {
        info!(status = snap.status.as_str(), probe = %snap.probe, rtc = snap.rtc, "Clock trusted.");
    } else {
        warn!(
            status = snap.status.as_str(),
            probe = %snap.probe,
            "The system clock is not synchronised: readings are stamped from the monotonic clock \
             and corrected when it synchronises."
        );
    }
    clock
}

async fn probe(clock: &Arc<Clock>) -> SyncStatus {
    let c = clock.clone();
    tokio::task::spawn_blocking(move || c.probe())
        .await
        .unwrap_or(SyncStatus::Unknown)
}

/// Reads the status every `interval` until `token` is cancelled; `on_events` gets what the clock
/// learnt (in order) after each round.
pub async fn run(
    clock: Arc<Clock>,
    metrics: Arc<ClockMetrics>,
    interval: Duration,
    token: CancellationToken,
    mut on_events: impl FnMut(Vec<ClockEvent>) + Send,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let status = probe(&clock).await;
        clock.apply_status(status);
        metrics.update(&clock.snapshot());
        let events = log_events(&clock);
        if !events.is_empty() {
            on_events(events);
        }
    }
}

/// Logs and returns the clock's new events.
fn log_events(clock: &Clock) -> Vec<ClockEvent> {
    let events = clock.take_events();
    for e in &events {
        match e {
            ClockEvent::Step { by_ms, at_ms } => warn!(
                by_ms,
                at = %Timestamp(*at_ms),
                "The system clock stepped; stamps follow the monotonic clock until it is trusted again."
            ),
            ClockEvent::FreeRunning { reason, from_ms } => info!(
                reason = reason.as_str(),
                from = %Timestamp(*from_ms),
                "Stamps run on the monotonic clock."
            ),
            ClockEvent::Corrected {
                from_ms,
                to_ms,
                offset_ms,
            } => info!(
                from = %Timestamp(*from_ms),
                to = %Timestamp(*to_ms),
                offset_ms,
                "The clock is trusted again; the readings stamped meanwhile are corrected by the offset."
            ),
        }
    }
    events
}
