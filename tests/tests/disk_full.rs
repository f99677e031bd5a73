//! A full disk under the real daemon: the buffer on a small tmpfs of the test's own, filled by the
//! buffer's own files (ingest faster than the disk is big, a `max_size` larger than the disk) or by
//! another program. Ingest resumes by itself, every committed reading is either still stored or
//! counted as dropped (oldest first, without gaps), and a restart on the full disk (clean or after
//! `kill -9`) becomes ready and ingests instead of failing on "disk is full".
//!
//! The tmpfs needs root (as in CI). Elsewhere the tests are skipped with a message; under
//! `CI=true` a failed mount fails them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::time::Duration;

use markoff_tests::{TempGateway, assert_eventually, db};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A tmpfs of `size` mounted on a directory of its own, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::Builder::new()
            .prefix("markoff-disk-full-")
            .tempdir()
            .unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("markoff-disk-full")
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self { dir }),
            other => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "cannot mount a {size} tmpfs for the disk-full test (CI runs as root): \
                     {other:?}"
                );
                eprintln!("skipped: cannot mount a tmpfs (not root?): {other:?}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Free bytes on the tmpfs.
    fn free(&self) -> u64 {
        let st = nix::sys::statvfs::statvfs(self.path()).unwrap();
        st.blocks_available() * st.fragment_size()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _unmounted_or_gone = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the disk of `dir` to the last byte with a file of another program.
fn fill(dir: &Path) {
    use std::io::Write as _;
    let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
    let mut block = vec![7u8; 64 * 1024];
    for size in [64 * 1024, 4096, 1] {
        block.truncate(size);
        while filler.write_all(&block).is_ok() {}
    }
    let _full_disk_may_refuse = filler.sync_all();
}

/// What the buffer holds: stored readings (count, min, max) and readings counted as dropped.
fn look(path: &Path) -> (i64, i64, i64, i64) {
    let conn = db::open_read_only(path);
    // One read transaction: the daemon may be dropping readings meanwhile.
    conn.execute_batch("BEGIN").unwrap();
    let (count, min, max) = db::extent(&conn);
    let dropped: i64 = conn
        .query_row("SELECT coalesce(sum(rows), 0) FROM dropped_rows", [], |r| {
            r.get(0)
        })
        .unwrap();
    conn.execute_batch("COMMIT").unwrap();
    (count, min.unwrap_or(0), max.unwrap_or(0), dropped)
}

/// Bytes the buffer's files (database, WAL, shared memory, reserve) take on the disk.
fn buffer_files(db: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    ["", "-wal", "-shm", "-reserve"]
        .iter()
        .map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).map_or(0, |m| m.blocks() * 512)
        })
        .sum()
}

/// Every reading committed up to `committed` is stored or counted as dropped, and what is
/// stored is the newest, without gaps.
fn accounted(path: &Path, committed: i64, when: &str) {
    let (count, min, max, dropped) = look(path);
    assert!(
        max >= committed,
        "{when}: readings up to seq {committed} were committed, the newest stored is {max}"
    );
    assert_eq!(
        count,
        max - min + 1,
        "{when}: the stored readings have gaps (min {min}, max {max})"
    );
    assert_eq!(
        count + dropped,
        max,
        "{when}: stored {count} + counted as dropped {dropped} != the newest seq {max}"
    );
}

/// Ingest goes on: `last_seq` passes `from` by `by` within the patience, three times over.
async fn ingests(gw: &TempGateway, by: i64, what: &str) -> i64 {
    let mut last = gw.try_last_seq().await.unwrap_or(0);
    for _ in 0..3 {
        let from = last;
        assert_eventually!(
            {
                last = gw.try_last_seq().await.unwrap_or(0);
                last >= from + by
            },
            "{what}: ingest stalled at seq {last} (from {from}); log:\n{}",
            gw.log()
        );
    }
    last
}

/// Stops the daemon cleanly and checks the buffer; returns the last committed seq.
async fn stop_and_account(gw: &mut TempGateway, when: &str) -> i64 {
    let committed = gw.last_seq().await;
    gw.sigterm();
    let exit = gw.wait_exit(Duration::from_secs(30)).await;
    assert!(exit.success(), "{when}: {exit}; log:\n{}", gw.log());
    accounted(&gw.db_path(), committed, when);
    committed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buffers_own_files_filling_a_small_disk_stop_neither_ingest_nor_restarts() {
    let Some(disk) = Tmpfs::mount("4m") else {
        return;
    };
    // 30 x 30 rooms x 3 + 6 = 2,706 sensors every 25 ms: about 108,000 readings/s (a few
    // bytes each), with a budget larger than the disk: only the disk limits the buffer's files
    // (database, WAL, shm, reserve).
    let mut gw = TempGateway::builder()
        .id("disk-full-own")
        .data_dir(disk.path())
        .simulator(30, 30, ms(25))
        .max_size("64MiB")
        .maintenance_interval(ms(200))
        .start()
        .await;
    let db_path = gw.db_path();

    // The disk fills (or the daemon starts dropping before it does).
    assert_eventually!(
        disk.free() < 256 * 1024 || look(&db_path).3 > 0,
        "the buffer never came near the size of the disk ({} bytes free); log:\n{}",
        disk.free(),
        gw.log()
    );
    ingests(&gw, 5_000, "with the disk full of the buffer").await;
    // Releasing the folded log may make room first; as ingest goes on, the oldest readings
    // must be dropped.
    assert_eventually!(
        look(&db_path).3 > 0,
        "ingest went on with a full disk, so the oldest readings must have been dropped; log:\n{}",
        gw.log()
    );
    // The drop is counted where an operator looks, and `markoff_buffer_bytes` is what the
    // buffer's files really take on the disk.
    assert_eventually!(
        {
            let synced = gw
                .metric_value("markoff_buffer_dropped_rows_total{reason=\"synced_overflow\"}")
                .await
                .unwrap_or(0.0);
            let unsynced = gw
                .metric_value("markoff_buffer_dropped_rows_total{reason=\"unsynced_overflow\"}")
                .await
                .unwrap_or(0.0);
            synced + unsynced > 0.0
        },
        "the drop is not in markoff_buffer_dropped_rows_total; log:\n{}",
        gw.log()
    );
    let seen = std::cell::Cell::new((0u64, 0u64));
    assert_eventually!(
        {
            let reported = gw
                .metric_value("markoff_buffer_bytes")
                .await
                .map_or(0, |v| v as u64);
            let on_disk = buffer_files(&db_path);
            seen.set((reported, on_disk));
            reported > 0 && reported <= 4 << 20 && reported.abs_diff(on_disk) <= 512 * 1024
        },
        "markoff_buffer_bytes and what the buffer's files take on the disk: {:?}",
        seen.get()
    );
    let committed = stop_and_account(&mut gw, "after a clean stop on the full disk").await;

    // A restart on the full disk becomes ready and ingests.
    gw.restart().await;
    let after = ingests(&gw, 5_000, "after a restart on the full disk").await;
    assert!(after > committed, "seqs went on after the restart");

    // The same after kill -9.
    let committed = gw.last_seq().await;
    gw.kill9();
    gw.restart().await;
    accounted(&db_path, committed, "after kill -9 on the full disk");
    ingests(&gw, 5_000, "after kill -9 and a restart on the full disk").await;
    stop_and_account(&mut gw, "at the end").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_file_filling_the_disk_stops_neither_ingest_nor_restarts() {
    let Some(disk) = Tmpfs::mount("8m") else {
        return;
    };
    // 10 x 10 rooms x 3 + 6 = 306 sensors every 50 ms: about 6,000 readings/s, default budget.
    let mut gw = TempGateway::builder()
        .id("disk-full-other")
        .data_dir(disk.path())
        .simulator(10, 10, ms(50))
        .maintenance_interval(ms(200))
        .start()
        .await;
    let db_path = gw.db_path();
    ingests(&gw, 5_000, "before the disk fills").await;

    // Another program takes every free byte.
    fill(disk.path());
    assert!(
        disk.free() < 64 * 1024,
        "the filler left {} bytes",
        disk.free()
    );
    ingests(&gw, 5_000, "after another file filled the disk").await;
    let committed = stop_and_account(&mut gw, "after a clean stop on the full disk").await;

    // A restart with the disk still full becomes ready and ingests.
    gw.restart().await;
    let after = ingests(&gw, 5_000, "after a restart on the full disk").await;
    assert!(after > committed, "seqs went on after the restart");
    let committed = gw.last_seq().await;
    gw.kill9();
    gw.restart().await;
    accounted(&db_path, committed, "after kill -9 on the full disk");
    ingests(&gw, 5_000, "after kill -9 and a restart on the full disk").await;

    // The other program lets go: ingest goes on.
    std::fs::remove_file(disk.path().join("filler")).unwrap();
    ingests(&gw, 5_000, "after the filler was removed").await;
    stop_and_account(&mut gw, "at the end").await;
    assert!(db_path.exists());
}
