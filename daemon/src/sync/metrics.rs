//! The uploader's metrics (`markoff_sync_*`), each by `stream` (`readings`, `alarm_events`,
//! `metadata`).
//!
//! Owns: the families the sync state updates, registered by sync through [`MetricSet`].
//! Does not own: the registry (`crate::service::metrics`).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::service::metrics::MetricSet;

/// A sync stream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabel {
    /// The stream's name.
    pub stream: String,
}

impl StreamLabel {
    /// The label of `stream`.
    pub fn new(stream: &str) -> Self {
        Self {
            stream: stream.to_owned(),
        }
    }
}

/// Metrics of the uploader to the central PostgreSQL.
#[derive(Debug)]
pub struct SyncMetrics {
    /// Rows committed locally and not yet confirmed by the centre.
    pub lag_rows: Family<StreamLabel, Gauge>,
    /// Age of the oldest row not yet confirmed by the centre (0 when caught up).
    pub lag_seconds: Family<StreamLabel, Gauge<f64, AtomicU64>>,
    /// Batches committed centrally.
    pub batches: Family<StreamLabel, Counter>,
    /// Rows sent in committed batches (including rows the centre already had).
    pub rows: Family<StreamLabel, Counter>,
    /// Failed attempts (connect, upload, cursor update).
    pub failures: Family<StreamLabel, Counter>,
    /// 1 while connected to the centre.
    pub connected: Family<StreamLabel, Gauge>,
    /// Time from the start of a batch's upload to its central commit.
    pub batch_seconds: Family<StreamLabel, Histogram, fn() -> Histogram>,
}

fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl MetricSet for SyncMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            lag_rows: Family::default(),
            lag_seconds: Family::default(),
            batches: Family::default(),
            rows: Family::default(),
            failures: Family::default(),
            connected: Family::default(),
            batch_seconds: Family::new_with_constructor(batch_histogram),
        };
        registry.register(
            "sync_lag_rows",
            "Rows committed locally and not yet confirmed by the centre, by stream",
            m.lag_rows.clone(),
        );
        registry.register(
            "sync_lag_seconds",
            "Age of the oldest row not yet confirmed by the centre, by stream",
            m.lag_seconds.clone(),
        );
        registry.register(
            "sync_batches",
            "Batches committed by the central PostgreSQL, by stream",
            m.batches.clone(),
        );
        registry.register(
            "sync_rows",
            "Rows sent in batches committed by the centre, by stream",
            m.rows.clone(),
        );
        registry.register(
            "sync_failures",
            "Failed sync attempts (connect, upload), by stream",
            m.failures.clone(),
        );
        registry.register(
            "sync_connected",
            "1 while the stream's uploader is connected to the centre",
            m.connected.clone(),
        );
        registry.register(
            "sync_batch_seconds",
            "Time from the start of a batch's upload to its central commit, by stream",
            m.batch_seconds.clone(),
        );
        m
    }
}
