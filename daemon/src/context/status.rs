//! The gateway's one-line and structured status: what `systemctl status`, `markoff status`,
//! the demo view and `/api/v1/status` show.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::service::supervisor::{Supervisor, TaskInfo};
use crate::service::systemd;
use crate::store::{Reader, StoreShared};

/// Live counters computed periodically.
#[derive(Debug)]
pub struct StatusTracker {
    started: Instant,
    ready: AtomicBool,
    rate_bits: AtomicU64,
}

impl Default for StatusTracker {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            ready: AtomicBool::new(false),
            rate_bits: AtomicU64::new(0),
        }
    }
}

impl StatusTracker {
    /// Marks the gateway ready.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether the gateway is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Readings committed per second over the last interval.
    pub fn readings_per_second(&self) -> f64 {
        f64::from_bits(self.rate_bits.load(Ordering::Relaxed))
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The structured status.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusReport {
    /// Gateway id.
    pub gateway_id: String,
    /// markoff version.
    pub version: String,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Store open and sources built.
    pub ready: bool,
    /// Sensors with a value.
    pub points: usize,
    /// Readings committed per second (recent).
    pub readings_per_s: f64,
    /// Rows in the buffer.
    pub buffer_rows: i64,
    /// Bytes used by the buffer.
    pub buffer_bytes: u64,
    /// Disk budget.
    pub buffer_max_bytes: u64,
    /// Highest committed seq.
    pub last_seq: i64,
    /// Highest synced seq.
    pub synced_seq: i64,
    /// Rows waiting for the uplink, when one is configured.
    pub sync_lag_rows: Option<i64>,
    /// Rows dropped over the life of the buffer, by reason.
    pub dropped: Vec<(String, i64)>,
    /// Supervised tasks.
    pub tasks: Vec<TaskInfo>,
    /// Connection and device health, by source (`modbus:<name>`, `mqtt:<name>`).
    #[serde(default)]
    pub sources: std::collections::BTreeMap<String, super::health::SourceStatus>,
    /// The system clock: synchronised or not, and how readings are stamped.
    #[serde(default)]
    pub clock: Option<crate::clock::ClockSnapshot>,
}

/// Builds a report from the live state.
pub async fn report(
    gateway_id: &str,
    max_bytes: u64,
    uplink: bool,
    tracker: &StatusTracker,
    store: &StoreShared,
    reader: &Reader,
    supervisor: &Supervisor,
) -> StatusReport {
    let synced_seq = reader.synced_upto().await.unwrap_or(0);
    let dropped = reader.dropped().await.unwrap_or_default();
    let last_seq = store.last_seq();
    StatusReport {
        gateway_id: gateway_id.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_s: tracker.uptime().as_secs(),
        ready: tracker.is_ready(),
        points: store.latest.len(),
        readings_per_s: tracker.readings_per_second(),
        buffer_rows: store.rows(),
        buffer_bytes: store.bytes(),
        buffer_max_bytes: max_bytes,
        last_seq,
        synced_seq,
        sync_lag_rows: uplink.then_some((last_seq - synced_seq).max(0)),
        dropped,
        tasks: supervisor.tasks(),
        sources: std::collections::BTreeMap::new(),
        clock: Some(crate::clock::global().snapshot()),
    }
}

/// Recomputes the ingest rate every `period` and publishes the one-line status to systemd.
pub async fn run_status(
    period: Duration,
    tracker: Arc<StatusTracker>,
    store: Arc<StoreShared>,
    token: CancellationToken,
    line: impl Fn() -> Option<String> + Send,
) {
    let rate_period = Duration::from_secs(1).min(period);
    let mut ticker = tokio::time::interval(rate_period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_count = store.metrics.readings_ingested.get();
    let mut last_at = Instant::now();
    let mut last_status = Instant::now();
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let count = store.metrics.readings_ingested.get();
        let now = Instant::now();
        let secs = now.duration_since(last_at).as_secs_f64();
        if secs > 0.0 {
            let rate = count.saturating_sub(last_count) as f64 / secs;
            tracker.rate_bits.store(rate.to_bits(), Ordering::Relaxed);
        }
        last_count = count;
        last_at = now;
        if now.duration_since(last_status) >= period {
            last_status = now;
            if let Some(l) = line() {
                systemd::status(&l);
            }
        }
    }
}
