//! The writer's upkeep between commits: the disk budget and the reserve file, the WAL bound,
//! retention and the drop order when the disk is full (`maintain`, run every
//! `maintenance_interval`, and at once after a write failed for a full disk).
//!
//! On a full disk, whoever filled it (`make_room`): the reserve file is deleted, the WAL is copied
//! into the database file (the reserve is at least the WAL's bound, so the file's growth fits),
//! and then, one small transaction at a time with a checkpoint after each, free pages of the
//! database go back to the file system and, while that is not enough, the oldest fold or batch
//! is dropped (synced readings first, counted in `dropped_rows`), until the disk has room for
//! the WAL to grow to its bound and for the reserve to be written again. Each step writes a few
//! pages into the WAL, whose frames are written over after a checkpoint, so no step needs room
//! the disk does not have. The newest fold or batch is never dropped for a full disk: if that
//! is all that is left, the writer keeps retrying its commit and producers wait.

use std::sync::atomic::Ordering;

use tokio::time::Instant;
use tracing::{debug, warn};

use super::super::{StoreMetrics, budget, log, now_ms, space, trim};
use super::{FOLD_READINGS, Writer};

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

    /// Readings one fold may take: `FOLD_READINGS`, or fewer so that the fold's transaction
    /// (its chunks, at most 16 bytes a reading and 64 bytes a sensor, and `latest`) stays within
    /// half of the WAL's bound, which the reserve covers. 0 when not even 8 readings a sensor fit
    /// (a disk of a few MiB with thousands of sensors): the log then stays unfolded, and the
    /// budget drops its oldest batches.
    pub(super) fn fold_limit(&self) -> usize {
        const BYTES_PER_READING: u64 = 16;
        const BYTES_PER_SENSOR: u64 = 64;
        const MIN_PER_SENSOR: u64 = 8;
        let cap = if self.wal_cap > 0 {
            self.wal_cap
        } else {
            self.plan().wal_cap
        };
        let sensors = self.state.sensor_ids.len() as u64;
        let readings = (cap / 2).saturating_sub(sensors * BYTES_PER_SENSOR) / BYTES_PER_READING;
        if readings < sensors * MIN_PER_SENSOR {
            return 0;
        }
        usize::try_from(readings.min(FOLD_READINGS.unsigned_abs())).unwrap_or(usize::MAX)
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

    /// Bounds the WAL: checkpoints once it holds half of `cap` bytes (so that the transaction
    /// that crosses that mark, a commit or a fold of at most half of `cap`, leaves it within
    /// `cap`) and truncates it back to `cap` after a checkpoint.
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
            .pragma_update(None, "wal_autocheckpoint", (bytes / 2 / page).max(16))
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
        if room < missing + plan.wal_cap.saturating_sub(usage.wal) + space::MARGIN {
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
        if std::mem::take(&mut self.shrink) {
            self.make_room();
        }
        let mut plan = self.plan();
        if let Some(files) = &self.files
            && files.usage().reserve > plan.reserve.saturating_add(plan.reserve / 4)
        {
            // Written for a larger budget or disk than the buffer has now.
            let _removed = files.release_reserve();
            plan = self.plan();
        }
        self.bound_wal(plan.wal_cap);
        let mut result = self.enforce(plan);
        if matches!(&result, Err(err) if space::is_disk_full(err)) {
            self.make_room();
            plan = self.plan();
            result = self.enforce(plan);
        }
        if result.is_ok() {
            self.restore_reserve(self.plan());
        }
        match result {
            Ok(status) => {
                self.state.first_seq = status.first_seq;
                self.shared
                    .first_seq
                    .store(status.first_seq, Ordering::Release);
                self.shared.metrics.buffer_rows.set(self.shared.rows());
            }
            Err(err) => {
                warn!(component = "store", error = %err, "Buffer maintenance failed; will retry.")
            }
        }
        self.report_bytes();
        self.shared.heartbeat.idle();
    }

    /// `markoff_buffer_bytes`: what the buffer's files take on disk now (database, WAL,
    /// shared-memory index, reserve; temporary tables live in memory).
    fn report_bytes(&self) {
        let on_disk = match &self.files {
            Some(files) => files.usage().total(),
            None => budget::used_bytes(&self.conn).unwrap_or(0),
        };
        self.shared.bytes.store(on_disk, Ordering::Relaxed);
        self.shared
            .metrics
            .buffer_bytes
            .set(i64::try_from(on_disk).unwrap_or(i64::MAX));
    }

    fn enforce(&mut self, plan: space::Plan) -> Result<budget::BudgetStatus, rusqlite::Error> {
        let limits = budget::Limits {
            budget: plan.budget,
            wal_cap: plan.wal_cap,
            keep_newest: plan.disk_limited,
        };
        budget::enforce(
            &mut self.conn,
            &self.cfg,
            limits,
            self.options,
            &self.shared.metrics,
            now_ms(),
        )
    }

    /// Makes room on a full disk, whoever filled it (module comment). Stops once the disk has
    /// room for the WAL's growth, the reserve and a margin, or when only the newest readings are
    /// left.
    pub(super) fn make_room(&mut self) {
        let Some(files) = self.files.clone() else {
            return;
        };
        self.release_reserve();
        let before = files.usage().total() + files.free_space().unwrap_or(0);
        match self.make_room_steps(&files) {
            Ok(true) => {
                let plan = self.plan();
                self.restore_reserve(plan);
                self.bound_wal(plan.wal_cap);
                debug!(
                    component = "store",
                    free = files.free_space().unwrap_or(0),
                    room = before,
                    "Made room on the full disk of the buffer."
                );
            }
            Ok(false) => warn!(
                component = "store",
                free = files.free_space().unwrap_or(0),
                "The disk of the buffer is full and only its newest readings are left; \
                 commits wait for room."
            ),
            Err(err) => {
                warn!(component = "store", error = %err, "Cannot make room on the full disk of the buffer; will retry.")
            }
        }
        let held = log::held(&self.conn)
            .ok()
            .flatten()
            .map_or(0, |(first, _)| first);
        self.state.first_seq = held;
        self.shared.first_seq.store(held, Ordering::Release);
        self.shared.metrics.buffer_rows.set(self.shared.rows());
    }

    /// The steps of [`Self::make_room`]; `Ok(false)` when only the newest readings are left and
    /// the disk still lacks room.
    fn make_room_steps(&mut self, files: &space::Files) -> Result<bool, rusqlite::Error> {
        const MAX_STEPS: usize = 10_000;
        let page = u64::try_from(
            self.conn
                .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))?,
        )
        .unwrap_or(4096)
        .max(512);
        // A WAL longer than its bound (a reader kept it from being written over) gives its
        // room back; otherwise it keeps its size, and the steps below write over its frames.
        let cap = self.plan().wal_cap;
        budget::checkpoint(&self.conn, files.usage().wal > cap)?;
        let synced = budget::synced_upto(&self.conn)?;
        // Readings folded (and synced, with an uplink) are in the chunks: their batches go
        // first, nothing is lost.
        match trim::release_log(&mut self.conn, self.options.uplink, synced) {
            Ok(_) => {}
            Err(err) if space::is_disk_full(&err) => {}
            Err(err) => return Err(err),
        }
        budget::checkpoint(&self.conn, false)?;
        let keep = log::held(&self.conn)?.map_or(i64::MAX, |(_, last)| last);
        for _ in 0..MAX_STEPS {
            let plan = self.plan();
            let usage = files.usage();
            let need = plan.wal_cap.saturating_sub(usage.wal)
                + plan.reserve.saturating_sub(usage.reserve)
                + space::MARGIN;
            let Ok(free) = files.free_space() else {
                return Ok(false);
            };
            if free >= need {
                return Ok(true);
            }
            let free_pages: i64 = self
                .conn
                .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            if free_pages > 0 {
                // Frames of the moved pages (about three per page at worst: the page, its
                // parent, a pointer-map page) go into the WAL as it is allocated, or into the
                // free room.
                let frames = usage.wal.max(free.saturating_sub(space::MARGIN)) / (page + 24);
                let step = i64::try_from(frames / 3).unwrap_or(i64::MAX).max(1);
                match budget::vacuum_step(&self.conn, step.min(free_pages)) {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(err) if space::is_disk_full(&err) => {}
                    Err(err) => return Err(err),
                }
            }
            let dropped = match trim::drop_oldest_before(&mut self.conn, synced, keep) {
                Err(err) if space::is_disk_full(&err) => {
                    budget::checkpoint(&self.conn, true)?;
                    trim::drop_oldest_before(&mut self.conn, synced, keep)?
                }
                other => other?,
            };
            let Some(dropped) = dropped else {
                return Ok(false);
            };
            let metrics = &self.shared.metrics;
            budget::report(metrics, budget::DropReason::SyncedOverflow, dropped.synced);
            budget::report(
                metrics,
                budget::DropReason::UnsyncedOverflow,
                dropped.unsynced,
            );
            budget::checkpoint(&self.conn, false)?;
        }
        Ok(false)
    }
}
