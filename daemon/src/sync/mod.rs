//! Sync to the central PostgreSQL: readings, alarm events and site metadata, each with no loss
//! and no duplicate, however the gateway or the database fails.
//!
//! Owns: `[sync]`, one supervised uploader per stream (`sync:readings`, `sync:alarm_events`,
//! `sync:metadata`), the pull of the office's alarm requests (`sync:office`), the local
//! cursors' movement, the sync status and metrics.
//! Does not own: the central schema and SQL (`markoff_proto`), the buffer (`crate::store`).
//!
//! The protocol, per batch: read the rows after the local cursor; make them durable on disk;
//! send them as one array per column to ONE server-side call (`markoff.upload_readings`, central
//! migration 11; alarm events: one transaction of statements) that proves the gateway's key when
//! it logs in as the pooled ingest role, locks the central cursor, inserts the rows above it
//! (plainly; redone with `ON CONFLICT ... DO NOTHING` on the idempotency key if a row was
//! already there) with the 10-minute rollup and the latest values, and moves the central cursor;
//! commit; then move the local cursor (in the buffer writer's transaction). A crash or a lost
//! connection at any point either leaves the batch uncommitted centrally (it is sent again) or
//! committed with the local cursor behind (the next start reads the central cursor and moves the
//! local one forward, and anything sent again is skipped by the cursor or the key). One batch is
//! at the centre at a time (`pipeline` can hold two; no stream uses it yet). `docs/sync.md` has
//! the whole argument.

mod clock;
pub mod config;
mod connect;
mod metadata;
pub mod metrics;
mod office;
mod pipeline;
mod retry;
mod status;
mod uploader;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::service::supervisor::{Restart, Supervisor};
use crate::store::Store;

pub use config::{SslMode, SyncConfig};
pub use connect::{SyncFailure, connect};
pub use metadata::SiteSource;
pub use metrics::SyncMetrics;
pub use office::{OfficeAction, OfficeActions, OfficeAnswer, OfficeRequest};
pub use pipeline::{DrainStats, DrainTime};
pub use retry::{RECONNECT_SPREAD, reconnect_jitter};
pub use status::{StreamState, StreamStatus, SyncReport, SyncState};
pub use uploader::drain_readings;

/// The gateway's identity for the protocol: its id, and its upload key when `[sync]` names one
/// (read once, at start). A key that cannot be read is logged and left out: an ingest login then
/// fails with a permission error the status shows, a login as the gateway's own role works.
fn identity(cfg: &SyncConfig, gateway_id: &str) -> markoff_proto::GatewayKey {
    let key = cfg.key();
    let key = if key.is_well_formed() {
        match key.resolve() {
            Ok(k) => Some(k.expose().to_owned()),
            Err(e) => {
                tracing::error!(error = %e, "Cannot read [sync] key; uploading without it.");
                None
            }
        }
    } else {
        None
    };
    markoff_proto::GatewayKey::new(gateway_id, key)
}

/// Starts the three uploaders under `supervisor`, stopped by `token`. Does nothing when `cfg` is
/// disabled.
pub fn start(
    supervisor: &Supervisor,
    token: &CancellationToken,
    cfg: &SyncConfig,
    gateway_id: &str,
    store: &Store,
    status: Arc<SyncState>,
    site: SiteSource,
) {
    if !cfg.enabled {
        return;
    }
    let ctx = Arc::new(uploader::StreamCtx {
        gateway_id: identity(cfg, gateway_id),
        db_path: store.path().to_owned(),
        ingest: store.ingest.clone(),
        target: connect::Target::new(cfg, gateway_id),
        batch_rows: cfg.batch_rows,
        backlog_connections: uploader::BACKLOG_CONNECTIONS,
        interval: cfg.interval,
        max_backoff: cfg.max_backoff,
        status,
    });
    let c = ctx.clone();
    supervisor.spawn(
        "sync:readings",
        Restart::OnFailure,
        token.clone(),
        move |tok| uploader::run::<uploader::Readings>(c.clone(), tok),
    );
    let c = ctx.clone();
    supervisor.spawn(
        "sync:alarm_events",
        Restart::OnFailure,
        token.clone(),
        move |tok| uploader::run::<uploader::AlarmEvents>(c.clone(), tok),
    );
    supervisor.spawn(
        "sync:metadata",
        Restart::OnFailure,
        token.clone(),
        move |tok| metadata::run(ctx.clone(), site.clone(), tok),
    );
}

/// Starts the pull of the office's requests (`sync:office`) under `supervisor`, stopped by
/// `token`, applying them through `actions`. Does nothing when `cfg` is disabled.
pub fn start_office(
    supervisor: &Supervisor,
    token: &CancellationToken,
    cfg: &SyncConfig,
    gateway_id: &str,
    actions: Arc<dyn OfficeActions>,
) {
    if !cfg.enabled {
        return;
    }
    let ctx = Arc::new(office::OfficeCtx {
        gateway_id: identity(cfg, gateway_id),
        target: connect::Target::new(cfg, gateway_id),
        interval: cfg.interval,
        max_backoff: cfg.max_backoff,
    });
    supervisor.spawn(
        "sync:office",
        Restart::OnFailure,
        token.clone(),
        move |tok| office::run(ctx.clone(), actions.clone(), tok),
    );
}
