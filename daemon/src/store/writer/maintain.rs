//! The writer's upkeep between commits: the disk budget and the reserve file, the WAL bound,
//! retention and the drop order when the disk is full (`maintain`, run every
//! `maintenance_interval`).

use std::sync::atomic::Ordering;

use tokio::time::Instant;
use tracing::{debug, warn};

use super::super::{StoreMetrics, budget, now_ms, space};
use super::Writer;

impl Writer {
    pub(super) fn maybe_maintain(&mut self) {
        let due = self
            .last_maintenance
            .is_none_or(|t| t.elapsed() >= self.cfg.maintenance_interval);
        if due {
            self.maintain();
        }
    }

    /// Deletes the reserve file, if there is one.
    pub(super) fn release_reserve(&self) {
        let Some(files) = &self.files else { return };
        match files.release_reserve() {
            Ok(0) => {}
            Ok(bytes) => {
                let _best_effort = files.sync_dir();
                warn!(
                    component = "store",
                    bytes, "Released the buffer's disk reserve."
                );
            }
            Err(err) => {
                warn!(component = "store", error = %err, "Cannot delete the buffer's disk reserve.")
            }
        }
    }

    /// The budget, WAL bound and reserve size for the disk as it is now.
    pub(super) fn plan(&self) -> space::Plan {
        let max = self.cfg.max_size.bytes();
        let Some(files) = &self.files else {
            return space::plan(max, space::Usage::default(), None);
        };
        let free = match files.free_space() {
            Ok(free) => {
                StoreMetrics::set_bytes(&self.shared.metrics.disk_free_bytes, free);
                Some(free)
            }
            Err(err) => {
                debug!(component = "store", error = %err, "Cannot read the free space of the buffer's disk.");
                None
            }
        };
        space::plan(max, files.usage(), free)
    }

    /// Bounds the WAL: checkpoints once it holds `cap` bytes and truncates it back to `cap`
    /// after a checkpoint.
    pub(super) fn bound_wal(&mut self, cap: u64) {
        if cap == self.wal_cap {
            return;
        }
        let page: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap_or(4096)
            .max(512);
        let bytes = i64::try_from(cap).unwrap_or(i64::MAX);
        let set = self
            .conn
            .pragma_update(None, "wal_autocheckpoint", (bytes / page).max(16))
            .and_then(|()| {
                self.conn
                    .query_row(&format!("PRAGMA journal_size_limit = {bytes}"), [], |_| {
                        Ok(())
                    })
            });
        match set {
            Ok(()) => self.wal_cap = cap,
            Err(err) => {
                warn!(component = "store", error = %err, "Cannot bound the buffer's WAL.")
            }
        }
    }

    /// Writes the reserve back once the disk has room for it and the WAL's growth.
    pub(super) fn restore_reserve(&self, plan: space::Plan) {
        let Some(files) = &self.files else { return };
        let usage = files.usage();
        if plan.reserve == 0 || usage.reserve >= plan.reserve {
            return;
        }
        let missing = plan.reserve - usage.reserve;
        let room = files.free_space().unwrap_or(0);
        if room < missing + plan.wal_cap + space::MARGIN {
            return;
        }
        match files.ensure_reserve(plan.reserve) {
            Ok(_) => {
                let _best_effort = files.sync_dir();
            }
            Err(err) => {
                // A partial reserve would only take the room SQLite needs.
                let _removed = files.release_reserve();
                debug!(component = "store", error = %err, "Cannot write the buffer's disk reserve yet.");
            }
        }
    }

    pub(super) fn maintain(&mut self) {
        self.last_maintenance = Some(Instant::now());
        self.shared.heartbeat.busy();
        let metrics = &self.shared.metrics;
        StoreMetrics::set_bytes(&metrics.budget_bytes, self.cfg.max_size.bytes());
        let mut plan = self.plan();
        if let Some(files) = &self.files
            && files.usage().reserve > plan.reserve.saturating_add(plan.reserve / 4)
        {
            // Written for a larger budget or disk than the buffer has now.
            let _removed = files.release_reserve();
            plan = self.plan();
        }
        self.bound_wal(plan.wal_cap);
        if std::mem::take(&mut self.shrink)
            && let Ok(used) = budget::used_bytes(&self.conn)
        {
            plan.budget = plan.budget.min(used - used / 10);
        }
        let mut result = budget::enforce(
            &mut self.conn,
            &self.cfg,
            plan.budget,
            self.options,
            &self.shared.metrics,
            now_ms(),
        );
        if matches!(&result, Err(err) if space::is_disk_full(err)) {
            self.release_reserve();
            let plan = self.plan();
            result = budget::enforce(
                &mut self.conn,
                &self.cfg,
                plan.budget,
                self.options,
                &self.shared.metrics,
                now_ms(),
            );
        }
        if result.is_ok() {
            self.restore_reserve(plan);
        }
        match result {
            Ok(status) => {
                let on_disk = self
                    .files
                    .as_ref()
                    .map_or(status.used_bytes, |f| f.usage().total());
                self.state.first_seq = status.first_seq;
                self.shared
                    .first_seq
                    .store(status.first_seq, Ordering::Release);
                self.shared.bytes.store(on_disk, Ordering::Relaxed);
                self.shared
                    .metrics
                    .buffer_bytes
                    .set(i64::try_from(on_disk).unwrap_or(i64::MAX));
                self.shared.metrics.buffer_rows.set(self.shared.rows());
            }
            Err(err) => {
                warn!(component = "store", error = %err, "Buffer maintenance failed; will retry.")
            }
        }
        self.shared.heartbeat.idle();
    }
}
