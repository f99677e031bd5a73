//! Starting the process's clock with the gateway, the task that keeps it current, and recording
//! what it learns as clock epochs in the buffer.
//!
//! Owns: the first probe (before the sources stamp anything), resuming a span an earlier run of
//! the same boot left open, the periodic probe, recording spans and their corrections
//! (`crate::store::clock`), the clock's metrics and log lines. Does not own: the states
//! (`super::Clock`).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Clock, ClockConfig, ClockEvent, ClockMetrics, FreeReason, Resume, SyncStatus};
use crate::model::Timestamp;
use crate::service::metrics::Metrics;
use crate::store::{IngestHandle, StoreShared};

/// Readings stamped just before a correction may commit a moment after it: a span is closed
/// this long after its correction was learnt.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Records the clock's spans in the buffer.
#[derive(Clone, Debug)]
pub struct Recorder {
    ingest: IngestHandle,
    store: Arc<StoreShared>,
    boot_id: String,
    hold_upload_ms: i64,
}

/// The kernel's id of this boot: monotonic stamps of another boot cannot be corrected.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Installs the process's clock (every [`Timestamp::now`] goes through it from here on), reads
/// the synchronisation status, applies `cfg`, and records a span that begins at start before
/// anything is stamped. `floor_ms` is the newest stamp already stored: a free-running start is
/// anchored after it.
pub async fn start(
    cfg: &ClockConfig,
    floor_ms: Option<i64>,
    metrics: &Metrics,
    store: &Arc<StoreShared>,
    ingest: &IngestHandle,
) -> (Arc<Clock>, Recorder) {
    let clock = super::install().clone();
    let shared = store.clone();
    clock.set_seq_source(Arc::new(move || shared.last_seq()));
    let rec = Recorder {
        ingest: ingest.clone(),
        store: store.clone(),
        boot_id: boot_id(),
        hold_upload_ms: i64::try_from(cfg.hold_upload.as_millis()).unwrap_or(i64::MAX),
    };
    let status = probe(&clock).await;
    let resume = match ingest
        .clock_epochs_start(&rec.boot_id, store.last_seq(), clock.now_ms())
        .await
    {
        Ok(Some(e)) => Some(Resume {
            reason: match e.reason.as_str() {
                "step" => FreeReason::Step,
                "lost_sync" => FreeReason::LostSync,
                _ => FreeReason::Boot,
            },
            from_ms: e.from_ms,
            mono_base: e.mono_base,
        }),
        Ok(None) => None,
        Err(e) => {
            warn!(error = %e, "Cannot read the clock epochs of the buffer.");
            None
        }
    };
    clock.configure(cfg, status, floor_ms, resume);
    let snap = clock.snapshot();
    metrics.get::<ClockMetrics>().update(&snap);
    rec.record(&clock, log_events(&clock), Duration::ZERO).await;
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
    (clock, rec)
}

async fn probe(clock: &Arc<Clock>) -> SyncStatus {
    let c = clock.clone();
    tokio::task::spawn_blocking(move || c.probe())
        .await
        .unwrap_or(SyncStatus::Unknown)
}

impl Recorder {
    /// Records `events` in the buffer; a span is closed `grace` after its correction.
    async fn record(&self, clock: &Clock, events: Vec<ClockEvent>, grace: Duration) {
        for e in events {
            let done = match e {
                ClockEvent::FreeRunning {
                    reason,
                    from_ms,
                    mono_base,
                    after_seq,
                } => {
                    self.ingest
                        .clock_epoch_open(
                            reason.as_str(),
                            &self.boot_id,
                            mono_base,
                            after_seq,
                            from_ms,
                        )
                        .await
                }
                ClockEvent::Corrected {
                    to_ms, offset_ms, ..
                } => {
                    tokio::time::sleep(grace).await;
                    self.ingest
                        .clock_epoch_close(self.store.last_seq(), to_ms, offset_ms, clock.now_ms())
                        .await
                }
                ClockEvent::Step { .. } => Ok(()),
            };
            if let Err(e) = done {
                warn!(error = %e, "Cannot record a clock epoch in the buffer.");
            }
        }
        match self
            .ingest
            .clock_epochs_release(clock.now_ms(), self.hold_upload_ms)
            .await
        {
            Ok(0) | Err(_) => {}
            Ok(n) => warn!(
                spans = n,
                "Readings stamped from the monotonic clock waited [clock] hold_upload for a \
                 correction; they are uploaded as stamped and marked uncorrected."
            ),
        }
    }
}

/// Reads the status every `interval` until `token` is cancelled, recording what the clock learns.
pub async fn run(
    clock: Arc<Clock>,
    rec: Recorder,
    metrics: Arc<ClockMetrics>,
    interval: Duration,
    token: CancellationToken,
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
        rec.record(&clock, events, CLOSE_GRACE).await;
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
            ClockEvent::FreeRunning {
                reason, from_ms, ..
            } => info!(
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
