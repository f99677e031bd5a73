//! The buffer's metrics (`markoff_readings_ingested`, `markoff_buffer_*`).
//!
//! Owns: the families the writer, the disk budget and retention update, registered by the store
//! itself through [`MetricSet`]. Does not own: the registry (`crate::service::metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::service::metrics::MetricSet;

/// Why rows were dropped: `synced_overflow`, `unsynced_overflow`, `retention`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The drop reason.
    pub reason: String,
}

/// Metrics of the buffer.
#[derive(Debug)]
pub struct StoreMetrics {
    /// Readings committed to the buffer.
    pub readings_ingested: Counter,
    /// Transactions committed by the buffer writer.
    pub commits: Counter,
    /// Time from BEGIN to COMMIT of a writer batch.
    pub commit_seconds: Histogram,
    /// Commits that failed and were retried.
    pub commit_failures: Counter,
    /// Rows currently in `readings`.
    pub buffer_rows: Gauge,
    /// Bytes used by the database (pages in use, excluding free pages).
    pub buffer_bytes: Gauge,
    /// Highest committed readings seq.
    pub last_seq: Gauge,
    /// Rows dropped by the disk budget or retention, by `reason`.
    pub dropped_rows: Family<ReasonLabel, Counter>,
    /// The disk budget (`[store] max_size`).
    pub budget_bytes: Gauge,
    /// Bytes free for the daemon on the buffer's file system.
    pub disk_free_bytes: Gauge,
}

impl MetricSet for StoreMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            readings_ingested: Counter::default(),
            commits: Counter::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
            commit_failures: Counter::default(),
            buffer_rows: Gauge::default(),
            buffer_bytes: Gauge::default(),
            last_seq: Gauge::default(),
            dropped_rows: Family::default(),
            budget_bytes: Gauge::default(),
            disk_free_bytes: Gauge::default(),
        };
        registry.register(
            "readings_ingested",
            "Readings committed to the SQLite buffer",
            m.readings_ingested.clone(),
        );
        registry.register(
            "buffer_commits",
            "Transactions committed by the buffer writer",
            m.commits.clone(),
        );
        registry.register(
            "buffer_commit_seconds",
            "Latency of one buffer commit (BEGIN to COMMIT)",
            m.commit_seconds.clone(),
        );
        registry.register(
            "buffer_commit_failures",
            "Buffer commits that failed and were retried",
            m.commit_failures.clone(),
        );
        registry.register(
            "buffer_rows",
            "Rows in the readings table",
            m.buffer_rows.clone(),
        );
        registry.register(
            "buffer_bytes",
            "Bytes used by the buffer database (excluding free pages)",
            m.buffer_bytes.clone(),
        );
        registry.register(
            "buffer_last_seq",
            "Highest committed readings sequence number",
            m.last_seq.clone(),
        );
        registry.register(
            "buffer_dropped_rows",
            "Rows dropped by the disk budget or retention, by reason",
            m.dropped_rows.clone(),
        );
        registry.register(
            "buffer_budget_bytes",
            "The buffer's disk budget ([store] max_size)",
            m.budget_bytes.clone(),
        );
        registry.register(
            "buffer_disk_free_bytes",
            "Bytes free for the daemon on the file system of the buffer",
            m.disk_free_bytes.clone(),
        );
        m
    }
}

impl StoreMetrics {
    /// Sets a byte gauge, saturating at `i64::MAX`.
    pub fn set_bytes(gauge: &Gauge, bytes: u64) {
        gauge.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Counts `rows` dropped for `reason`.
    pub fn count_dropped(&self, reason: &str, rows: u64) {
        self.dropped_rows
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc_by(rows);
    }
}
