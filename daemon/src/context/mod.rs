//! [`Core`]: what the components of a running gateway share, as one cheap handle.
//!
//! Owns: the config in force (a `watch` channel the composition root publishes reloads on), the
//! buffer's handles (state, reader pool, writer), the alarm service handle, the sync state, the
//! sources' health, the status tracker and report, the supervisor's task list and the metrics.
//! The assistant takes `&Core`; the HTTP API, the LAN page and the Telegram bot take a `Core`
//! and the `Agent`. Does not own: building or starting anything (`crate::app`), or the
//! channels' delivery registry (`crate::alarms::outbox::Channels`, held by the outbox
//! dispatcher and the bot, never by the `Core` they hold).

pub mod health;
pub mod status;

use std::sync::Arc;

use tokio::sync::watch;

use crate::alarms::Alarms;
use crate::config::Config;
use crate::service::metrics::Metrics;
use crate::service::supervisor::Supervisor;
use crate::store::{IngestHandle, Reader, StoreShared};
use crate::sync::SyncState;

pub use health::Health;
pub use status::{StatusReport, StatusTracker};

/// What every component of a running gateway shares. Cheap to clone: every field is a handle.
#[derive(Clone, Debug)]
pub struct Core {
    config: watch::Receiver<Arc<Config>>,
    /// Buffer state (latest values, counters, commit notifications).
    pub store: Arc<StoreShared>,
    /// Buffer queries.
    pub reader: Reader,
    /// Writes through the buffer's single writer.
    pub ingest: IngestHandle,
    /// Local alarms: list, act, follow.
    pub alarms: Alarms,
    /// Sync to the centre: per-stream state.
    pub sync: Arc<SyncState>,
    /// Connection and device health reported by the sources.
    pub health: Health,
    /// Uptime, readiness, rates.
    pub tracker: Arc<StatusTracker>,
    /// Supervised tasks.
    pub supervisor: Arc<Supervisor>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    uplink: bool,
}

/// The parts a [`Core`] is made of; the composition root builds them.
#[derive(Debug)]
pub struct CoreParts {
    /// Buffer state.
    pub store: Arc<StoreShared>,
    /// Buffer queries.
    pub reader: Reader,
    /// The buffer's writer.
    pub ingest: IngestHandle,
    /// The alarm service handle.
    pub alarms: Alarms,
    /// Sync state.
    pub sync: Arc<SyncState>,
    /// Source health.
    pub health: Health,
    /// Supervised tasks.
    pub supervisor: Arc<Supervisor>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Whether the buffer has an uplink (a `[sync]` section), for the sync lag in the status.
    pub uplink: bool,
}

impl Core {
    /// A core over `parts` with `config` in force, and the sender that publishes reloads.
    pub fn new(config: Config, parts: CoreParts) -> (Self, watch::Sender<Arc<Config>>) {
        let (tx, rx) = watch::channel(Arc::new(config));
        let core = Self {
            config: rx,
            store: parts.store,
            reader: parts.reader,
            ingest: parts.ingest,
            alarms: parts.alarms,
            sync: parts.sync,
            health: parts.health,
            tracker: Arc::new(StatusTracker::default()),
            supervisor: parts.supervisor,
            metrics: parts.metrics,
            uplink: parts.uplink,
        };
        (core, tx)
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// The structured status.
    pub async fn status(&self) -> StatusReport {
        let cfg = self.config();
        let mut report = status::report(
            &cfg.gateway.id,
            cfg.store.max_size.bytes(),
            self.uplink,
            &self.tracker,
            &self.store,
            &self.reader,
            &self.supervisor,
        )
        .await;
        report.sources = self.health.snapshot();
        report
    }

    /// The one-line status without database queries (systemd `STATUS=`, the log).
    pub fn quick_line(&self) -> String {
        let store = &self.store;
        let sync = if self.sync.enabled() {
            format!("sync lag {} rows", self.sync.total_lag_rows())
        } else {
            "sync off".to_owned()
        };
        format!(
            "{} points, {:.0} readings/s, buffer {} rows / {}, {sync}",
            store.latest.len(),
            self.tracker.readings_per_second(),
            store.rows(),
            crate::config::ByteSize(store.bytes()),
        )
    }
}
