//! Process metrics in the Prometheus text format, served at `/metrics`.
//!
//! Owns: the registry and the metric handles every component updates. Handles are cheap clones.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label set with one label.
pub type Labels = Vec<(String, String)>;

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
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
    /// Rows dropped by the disk budget or retention, by `reason`
    /// (`synced_overflow`, `unsynced_overflow`, `retention`).
    pub dropped_rows: Family<Labels, Counter>,
    /// Restarts of supervised tasks, by `task`.
    pub task_restarts: Family<Labels, Counter>,
    /// Errors reported by sources, by `source`.
    pub source_errors: Family<Labels, Counter>,
    /// MQTT messages received, by `connection` and `subscription`.
    pub mqtt_messages: Family<Labels, Counter>,
    /// MQTT messages whose payload could not be decoded, by `connection` and `subscription`.
    pub mqtt_malformed: Family<Labels, Counter>,
    /// 1 once the gateway is ready (store open, sources built).
    pub ready: Gauge,
    /// The alarm engine and its outbox.
    pub alarms: Arc<crate::alarms::outbox::AlarmMetrics>,
    /// The on-site assistant.
    pub agent: Arc<crate::agent::AgentMetrics>,
    /// The assistant's LLM client (requests, busy retries, circuit breaker, tokens).
    pub llm: Arc<crate::agent::llm::LlmMetrics>,
    /// The LAN page (logins).
    pub lan: crate::channels::lan::LanMetrics,
    /// The Telegram bot.
    pub telegram: Arc<crate::channels::telegram::TelegramMetrics>,
    /// Sync to the centre, by `stream`.
    pub sync: SyncMetrics,
}

/// Metrics of the uploader to the central PostgreSQL, each by `stream`
/// (`readings`, `alarm_events`, `metadata`).
#[derive(Debug)]
pub struct SyncMetrics {
    /// Rows committed locally and not yet confirmed by the centre.
    pub lag_rows: Family<Labels, Gauge>,
    /// Age of the oldest row not yet confirmed by the centre (0 when caught up).
    pub lag_seconds: Family<Labels, Gauge<f64, AtomicU64>>,
    /// Batches committed centrally.
    pub batches: Family<Labels, Counter>,
    /// Rows sent in committed batches (including rows the centre already had).
    pub rows: Family<Labels, Counter>,
    /// Failed attempts (connect, upload, cursor update).
    pub failures: Family<Labels, Counter>,
    /// 1 while connected to the centre.
    pub connected: Family<Labels, Gauge>,
    /// Time from the start of a batch's upload to its central commit.
    pub batch_seconds: Family<Labels, Histogram, fn() -> Histogram>,
}

impl SyncMetrics {
    fn batch_histogram() -> Histogram {
        Histogram::new(exponential_buckets(0.001, 2.0, 16))
    }

    fn new() -> Self {
        Self {
            lag_rows: Family::default(),
            lag_seconds: Family::default(),
            batches: Family::default(),
            rows: Family::default(),
            failures: Family::default(),
            connected: Family::default(),
            batch_seconds: Family::new_with_constructor(Self::batch_histogram),
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "sync_lag_rows",
            "Rows committed locally and not yet confirmed by the centre, by stream",
            self.lag_rows.clone(),
        );
        registry.register(
            "sync_lag_seconds",
            "Age of the oldest row not yet confirmed by the centre, by stream",
            self.lag_seconds.clone(),
        );
        registry.register(
            "sync_batches",
            "Batches committed by the central PostgreSQL, by stream",
            self.batches.clone(),
        );
        registry.register(
            "sync_rows",
            "Rows sent in batches committed by the centre, by stream",
            self.rows.clone(),
        );
        registry.register(
            "sync_failures",
            "Failed sync attempts (connect, upload), by stream",
            self.failures.clone(),
        );
        registry.register(
            "sync_connected",
            "1 while the stream's uploader is connected to the centre",
            self.connected.clone(),
        );
        registry.register(
            "sync_batch_seconds",
            "Time from the start of a batch's upload to its central commit, by stream",
            self.batch_seconds.clone(),
        );
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("markoff");
        let readings_ingested = Counter::default();
        registry.register(
            "readings_ingested",
            "Readings committed to the SQLite buffer",
            readings_ingested.clone(),
        );
        let commits = Counter::default();
        registry.register(
            "buffer_commits",
            "Transactions committed by the buffer writer",
            commits.clone(),
        );
        let commit_seconds = Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        registry.register(
            "buffer_commit_seconds",
            "Latency of one buffer commit (BEGIN to COMMIT)",
            commit_seconds.clone(),
        );
        let commit_failures = Counter::default();
        registry.register(
            "buffer_commit_failures",
            "Buffer commits that failed and were retried",
            commit_failures.clone(),
        );
        let buffer_rows = Gauge::default();
        registry.register(
            "buffer_rows",
            "Rows in the readings table",
            buffer_rows.clone(),
        );
        let buffer_bytes = Gauge::default();
        registry.register(
            "buffer_bytes",
            "Bytes used by the buffer database (excluding free pages)",
            buffer_bytes.clone(),
        );
        let last_seq = Gauge::default();
        registry.register(
            "buffer_last_seq",
            "Highest committed readings sequence number",
            last_seq.clone(),
        );
        let dropped_rows = Family::<Labels, Counter>::default();
        registry.register(
            "buffer_dropped_rows",
            "Rows dropped by the disk budget or retention, by reason",
            dropped_rows.clone(),
        );
        let task_restarts = Family::<Labels, Counter>::default();
        registry.register(
            "task_restarts",
            "Restarts of supervised tasks, by task",
            task_restarts.clone(),
        );
        let source_errors = Family::<Labels, Counter>::default();
        registry.register(
            "source_errors",
            "Errors reported by sources, by source",
            source_errors.clone(),
        );
        let mqtt_messages = Family::<Labels, Counter>::default();
        registry.register(
            "mqtt_messages",
            "MQTT messages received, by connection and subscription",
            mqtt_messages.clone(),
        );
        let mqtt_malformed = Family::<Labels, Counter>::default();
        registry.register(
            "mqtt_malformed",
            "MQTT messages with an undecodable payload, by connection and subscription",
            mqtt_malformed.clone(),
        );
        let alarms = Arc::new(crate::alarms::outbox::AlarmMetrics::register(&mut registry));
        let agent = Arc::new(crate::agent::AgentMetrics::register(&mut registry));
        let llm = Arc::new(crate::agent::llm::LlmMetrics::register(&mut registry));
        let lan = crate::channels::lan::LanMetrics::register(&mut registry);
        let telegram = Arc::new(crate::channels::telegram::TelegramMetrics::register(
            &mut registry,
        ));
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 once the store is open and the sources are built",
            ready.clone(),
        );
        let sync = SyncMetrics::new();
        sync.register(&mut registry);
        Arc::new(Self {
            registry,
            readings_ingested,
            commits,
            commit_seconds,
            commit_failures,
            buffer_rows,
            buffer_bytes,
            last_seq,
            dropped_rows,
            task_restarts,
            source_errors,
            mqtt_messages,
            mqtt_malformed,
            ready,
            alarms,
            agent,
            llm,
            lan,
            telegram,
            sync,
        })
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Counts a dropped-rows event.
    pub fn count_dropped(&self, reason: &str, rows: u64) {
        self.dropped_rows
            .get_or_create(&label("reason", reason))
            .inc_by(rows);
    }

    /// Counts a restart of `task`.
    pub fn count_restart(&self, task: &str) {
        self.task_restarts.get_or_create(&label("task", task)).inc();
    }

    /// Counts an error of `source`.
    pub fn count_source_error(&self, source: &str) {
        self.source_errors
            .get_or_create(&label("source", source))
            .inc();
    }
}

/// Labels for an MQTT subscription.
pub fn subscription_labels(connection: &str, subscription: &str) -> Labels {
    vec![
        ("connection".to_owned(), connection.to_owned()),
        ("subscription".to_owned(), subscription.to_owned()),
    ]
}

/// The label set of a sync stream.
pub fn stream_labels(stream: &str) -> Labels {
    label("stream", stream)
}

fn label(name: &str, value: &str) -> Labels {
    vec![(name.to_owned(), value.to_owned())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::new();
        m.readings_ingested.inc_by(5);
        m.count_dropped("synced_overflow", 3);
        let text = m.render();
        assert!(text.contains("markoff_readings_ingested_total 5"), "{text}");
        assert!(
            text.contains("markoff_buffer_dropped_rows_total{reason=\"synced_overflow\"} 3"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
