//! What the uploaders report about themselves: the state behind `GET /api/v1/sync`,
//! `markoff sync status` and the `markoff_sync_*` metrics.
//!
//! Owns: the per-stream status record and its JSON shape. Does not own: computing lag (the
//! uploaders do, from the buffer).

use std::collections::BTreeMap;
use std::sync::Arc;

use markoff_proto::Stream;
use parking_lot::{Mutex, MutexGuard};
use serde::{Deserialize, Serialize};

use super::metrics::{StreamLabel, SyncMetrics};
use crate::model::Timestamp;
use crate::service::metrics::Metrics;

/// What a stream's uploader is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// `[sync]` is absent or `enabled = false`.
    Disabled,
    /// Opening a connection to the centre.
    Connecting,
    /// Connected; uploading or waiting for new rows.
    Connected,
    /// The last attempt failed; waiting before the next one.
    BackingOff,
    /// Stopped with the gateway.
    Stopped,
}

impl StreamState {
    /// The word shown by `markoff sync status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::BackingOff => "backing off",
            Self::Stopped => "stopped",
        }
    }
}

/// The status of one stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamStatus {
    /// `readings`, `alarm_events` or `metadata`.
    pub stream: String,
    /// What the uploader is doing.
    pub state: StreamState,
    /// Highest seq (for metadata: version) the gateway knows the centre has committed.
    pub local_cursor: i64,
    /// The centre's cursor, as last seen (`None` before the first contact).
    pub central_cursor: Option<i64>,
    /// Rows committed locally and not yet confirmed by the centre.
    pub lag_rows: i64,
    /// Age in seconds of the oldest of those rows (0 when caught up).
    pub lag_seconds: f64,
    /// Rows sent in committed batches since the daemon started.
    pub rows_uploaded: u64,
    /// Batches committed since the daemon started.
    pub batches: u64,
    /// When a batch (or a metadata upsert) last committed centrally, ms since the epoch.
    pub last_success_ms: Option<i64>,
    /// The last failure, until the next success.
    pub last_error: Option<String>,
    /// When it happened, ms since the epoch.
    pub last_error_ms: Option<i64>,
    /// While backing off: when the next attempt is due, ms since the epoch.
    pub next_attempt_ms: Option<i64>,
}

impl StreamStatus {
    fn new(stream: Stream, state: StreamState) -> Self {
        Self {
            stream: stream.as_str().to_owned(),
            state,
            local_cursor: 0,
            central_cursor: None,
            lag_rows: 0,
            lag_seconds: 0.0,
            rows_uploaded: 0,
            batches: 0,
            last_success_ms: None,
            last_error: None,
            last_error_ms: None,
            next_attempt_ms: None,
        }
    }
}

/// `GET /api/v1/sync`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Gateway id (the `gateway_id` of every central row).
    pub gateway_id: String,
    /// Whether sync is configured and enabled.
    pub enabled: bool,
    /// The centre, without secrets (`postgres://role@host:port/db`), when configured.
    pub target: Option<String>,
    /// TLS mode, when configured.
    pub sslmode: Option<String>,
    /// One entry per stream.
    pub streams: Vec<StreamStatus>,
}

/// Live sync status, shared by the uploaders, the HTTP API and the metrics.
#[derive(Debug)]
pub struct SyncState {
    gateway_id: String,
    enabled: bool,
    target: Option<String>,
    sslmode: Option<String>,
    streams: Mutex<BTreeMap<&'static str, StreamStatus>>,
    metrics: Arc<SyncMetrics>,
}

impl SyncState {
    /// The status of a gateway whose sync is configured as `cfg` (`None`: not configured).
    pub fn new(
        gateway_id: &str,
        cfg: Option<&super::SyncConfig>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let enabled = cfg.is_some_and(|c| c.enabled);
        let state = if enabled {
            StreamState::Connecting
        } else {
            StreamState::Disabled
        };
        let streams = Stream::ALL
            .into_iter()
            .map(|s| (s.as_str(), StreamStatus::new(s, state)))
            .collect();
        Arc::new(Self {
            gateway_id: gateway_id.to_owned(),
            enabled,
            target: cfg.map(super::SyncConfig::display_url),
            sslmode: cfg.map(|c| c.sslmode.as_str().to_owned()),
            streams: Mutex::new(streams),
            metrics: metrics.get::<SyncMetrics>(),
        })
    }

    /// Whether sync is configured and enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The report for the API.
    pub fn report(&self) -> SyncReport {
        let streams = self.lock().values().cloned().collect();
        SyncReport {
            gateway_id: self.gateway_id.clone(),
            enabled: self.enabled,
            target: self.target.clone(),
            sslmode: self.sslmode.clone(),
            streams,
        }
    }

    /// One stream's status.
    pub fn stream(&self, stream: Stream) -> Option<StreamStatus> {
        self.lock().get(stream.as_str()).cloned()
    }

    /// Rows waiting for the centre, summed over the streams (for the one-line status).
    pub fn total_lag_rows(&self) -> i64 {
        self.lock().values().map(|s| s.lag_rows).sum()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, StreamStatus>> {
        self.streams.lock()
    }

    fn update(&self, stream: Stream, f: impl FnOnce(&mut StreamStatus)) {
        let mut streams = self.lock();
        let entry = streams
            .entry(stream.as_str())
            .or_insert_with(|| StreamStatus::new(stream, StreamState::Connecting));
        f(entry);
    }

    pub(crate) fn set_state(&self, stream: Stream, state: StreamState) {
        let connected = i64::from(state == StreamState::Connected);
        self.metrics
            .connected
            .get_or_create(&StreamLabel::new(stream.as_str()))
            .set(connected);
        self.update(stream, |s| {
            s.state = state;
            if state != StreamState::BackingOff {
                s.next_attempt_ms = None;
            }
        });
    }

    pub(crate) fn set_cursors(&self, stream: Stream, local: i64, central: Option<i64>) {
        self.update(stream, |s| {
            s.local_cursor = local;
            if central.is_some() {
                s.central_cursor = central;
            }
        });
    }

    pub(crate) fn set_lag(&self, stream: Stream, rows: i64, seconds: f64) {
        let labels = StreamLabel::new(stream.as_str());
        self.metrics.lag_rows.get_or_create(&labels).set(rows);
        self.metrics.lag_seconds.get_or_create(&labels).set(seconds);
        self.update(stream, |s| {
            s.lag_rows = rows;
            s.lag_seconds = seconds;
        });
    }

    pub(crate) fn batch_committed(&self, stream: Stream, rows: u64, seconds: f64) {
        let labels = StreamLabel::new(stream.as_str());
        let m = &self.metrics;
        m.batches.get_or_create(&labels).inc();
        m.rows.get_or_create(&labels).inc_by(rows);
        m.batch_seconds.get_or_create(&labels).observe(seconds);
        self.update(stream, |s| {
            s.batches += 1;
            s.rows_uploaded += rows;
            s.last_success_ms = Some(Timestamp::now().as_millis());
            s.last_error = None;
            s.last_error_ms = None;
        });
    }

    pub(crate) fn failed(&self, stream: Stream, error: &str, next_attempt_ms: i64) {
        self.metrics
            .failures
            .get_or_create(&StreamLabel::new(stream.as_str()))
            .inc();
        self.set_state(stream, StreamState::BackingOff);
        self.update(stream, |s| {
            s.last_error = Some(error.to_owned());
            s.last_error_ms = Some(Timestamp::now().as_millis());
            s.next_attempt_ms = Some(next_attempt_ms);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_without_sync_reports_every_stream_disabled() {
        let st = SyncState::new("gw", None, Metrics::new());
        let r = st.report();
        assert!(!r.enabled);
        assert_eq!(r.streams.len(), 3);
        assert!(r.streams.iter().all(|s| s.state == StreamState::Disabled));
    }

    #[test]
    fn failures_and_successes_show_in_the_report_and_metrics() {
        let metrics = Metrics::new();
        let st = SyncState::new("gw", None, metrics.clone());
        st.failed(Stream::Readings, "connection refused", 5);
        let s = st.stream(Stream::Readings).unwrap();
        assert_eq!(s.state, StreamState::BackingOff);
        assert_eq!(s.last_error.as_deref(), Some("connection refused"));
        st.set_state(Stream::Readings, StreamState::Connected);
        st.batch_committed(Stream::Readings, 10, 0.01);
        st.set_lag(Stream::Readings, 5, 1.5);
        let s = st.stream(Stream::Readings).unwrap();
        assert_eq!((s.batches, s.rows_uploaded, s.lag_rows), (1, 10, 5));
        assert!(s.last_error.is_none());
        let text = metrics.render();
        assert!(
            text.contains("markoff_sync_rows_total{stream=\"readings\"} 10"),
            "{text}"
        );
        assert!(
            text.contains("markoff_sync_failures_total{stream=\"readings\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("markoff_sync_lag_rows{stream=\"readings\"} 5"),
            "{text}"
        );
    }
}
