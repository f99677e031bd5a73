//! Component tests of the durable buffer against real SQLite files.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::time::Duration;

use markoff::config::{ByteSize, StoreConfig};
use markoff::model::{Quality, Reading, SensorId, Seq, Timestamp};
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::store::{Store, StoreOptions};
use rusqlite::Connection;

fn cfg(max_size: ByteSize) -> StoreConfig {
    StoreConfig {
        flush_interval: Duration::from_millis(5),
        max_size,
        maintenance_interval: Duration::from_millis(50),
        busy_timeout: Duration::from_millis(100),
        ..StoreConfig::default()
    }
}

fn open(path: &Path, max_size: ByteSize, options: StoreOptions) -> Store {
    Store::open(
        &cfg(max_size),
        path,
        options,
        Metrics::new(),
        Heartbeat::new("test"),
    )
    .unwrap()
}

async fn close(store: Store) {
    store.writer.drain();
    assert!(store.writer.finished().await, "writer drained cleanly");
}

/// `n` readings starting `offset_ms` after a recent base time (so retention keeps them).
fn readings(n: usize, offset_ms: i64) -> Vec<Reading> {
    let start_ms = base() + offset_ms;
    (0..n)
        .map(|i| {
            let sensor = SensorId::new(format!("f1.r{}.temperature", 100 + i % 50));
            Reading::good(
                sensor,
                Timestamp(start_ms + i as i64),
                20.0 + (i % 10) as f64,
            )
        })
        .collect()
}

fn base() -> i64 {
    Timestamp::now().as_millis() - 3_600_000
}

/// Runs a query that returns one number; a table `readings (seq, sensor, ts, value, quality)`
/// holds every stored reading, whatever the buffer's layout (`store::inspect`).
fn count(path: &Path, sql: &str) -> i64 {
    let c = Connection::open(path).unwrap();
    let all = markoff::store::inspect::readings(&c).unwrap();
    c.execute_batch(
        "CREATE TEMP TABLE readings (seq INTEGER PRIMARY KEY, sensor INTEGER NOT NULL, \
         ts INTEGER NOT NULL, value REAL, quality INTEGER NOT NULL)",
    )
    .unwrap();
    let mut insert = c
        .prepare("INSERT INTO temp.readings VALUES (?1, ?2, ?3, ?4, ?5)")
        .unwrap();
    for r in all {
        insert
            .execute(rusqlite::params![r.seq, r.sensor, r.ts, r.value, r.quality])
            .unwrap();
    }
    drop(insert);
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn set_synced(path: &Path, seq: i64) {
    let c = Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.execute(
        "INSERT INTO sync_cursor (stream, last_seq, updated_ms) VALUES ('readings', ?1, 0) \
         ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq",
        [seq],
    )
    .unwrap();
}

const BIG: ByteSize = ByteSize(1 << 30);

#[tokio::test]
async fn receipts_carry_consecutive_seqs_and_rows_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = open(&path, BIG, StoreOptions::default());
    let a = store.ingest.write(readings(10, 1_000)).await.unwrap();
    let b = store.ingest.write(readings(5, 2_000)).await.unwrap();
    assert_eq!((a.first, a.last), (Seq(1), Seq(10)));
    assert_eq!((b.first, b.last), (Seq(11), Seq(15)));
    assert_eq!(store.shared.last_seq(), 15);
    assert_eq!(store.shared.rows(), 15);
    // Committed means visible to another connection immediately.
    assert_eq!(count(&path, "SELECT count(*) FROM readings"), 15);
    close(store).await;
}

#[tokio::test]
async fn seq_is_never_reused_even_after_every_row_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = open(&path, BIG, StoreOptions::default());
    store.ingest.write(readings(100, 1_000)).await.unwrap();
    close(store).await;
    // A budget nothing fits in: maintenance drops every reading.
    let store = open(&path, ByteSize(1), StoreOptions::default());
    close(store).await;
    assert_eq!(count(&path, "SELECT count(*) FROM readings"), 0);

    let store = open(&path, BIG, StoreOptions::default());
    let r = store.ingest.write(readings(1, 5_000)).await.unwrap();
    assert_eq!(
        r.first,
        Seq(101),
        "the next seq continues after the highest ever committed"
    );
    close(store).await;
}

#[tokio::test]
async fn non_finite_values_are_stored_as_bad_without_a_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = open(&path, BIG, StoreOptions::default());
    let s = SensorId::new("boiler.pressure");
    store
        .ingest
        .write(vec![
            Reading::good(s.clone(), Timestamp(base()), f64::NAN),
            Reading::good(s.clone(), Timestamp(base() + 1), f64::INFINITY),
            Reading::failed(s.clone(), Timestamp(base() + 2), Quality::CommError),
        ])
        .await
        .unwrap();
    close(store).await;
    assert_eq!(
        count(&path, "SELECT count(*) FROM readings WHERE value IS NULL"),
        3
    );
    assert_eq!(
        count(&path, "SELECT count(*) FROM readings WHERE quality = 1"),
        2
    );
    assert_eq!(
        count(&path, "SELECT count(*) FROM readings WHERE quality = 3"),
        1
    );
}

#[tokio::test]
async fn latest_values_survive_a_restart_and_history_is_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = open(&path, BIG, StoreOptions::default());
    let s = SensorId::new("f3.r301.temperature");
    let b = base();
    for (ts, v) in [(1_000, 20.5), (3_000, 22.5), (2_000, 21.5)] {
        store
            .ingest
            .write(vec![Reading::good(s.clone(), Timestamp(b + ts), v)])
            .await
            .unwrap();
    }
    // A late reading (older ts) does not replace the latest value.
    assert_eq!(
        store
            .shared
            .latest
            .get("f3.r301.temperature")
            .unwrap()
            .value,
        Some(22.5)
    );
    close(store).await;

    let store = open(&path, BIG, StoreOptions::default());
    let latest = store.shared.latest.get("f3.r301.temperature").unwrap();
    assert_eq!(
        (latest.ts, latest.value, latest.seq),
        (Timestamp(b + 3_000), Some(22.5), Seq(2))
    );
    let history = store
        .reader
        .history("f3.r301.temperature", 10)
        .await
        .unwrap();
    let ts: Vec<i64> = history.iter().map(|h| h.ts.0 - b).collect();
    assert_eq!(ts, [3_000, 2_000, 1_000]);
    close(store).await;
}

#[tokio::test]
async fn committed_batches_are_announced_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = open(&path, BIG, StoreOptions::default());
    let mut rx = store.shared.subscribe();
    store.ingest.write(readings(7, 1_000)).await.unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(batch.first_seq, Seq(1));
    assert_eq!(batch.readings.len(), 7);
    close(store).await;
}

#[tokio::test]
async fn a_locked_database_delays_commits_but_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = open(&path, BIG, StoreOptions::default());
    store.ingest.write(readings(1, 1)).await.unwrap();

    let mut locker = Connection::open(&path).unwrap();
    let tx = locker
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let ingest = store.ingest.clone();
    let pending = tokio::spawn(async move { ingest.write(readings(500, 10_000)).await });
    // Wait until the writer has tried and failed to commit (busy_timeout is 100 ms).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.shared.metrics.commit_failures.get() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failed commit attempt is never counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !pending.is_finished(),
        "no receipt while another process holds the write lock"
    );
    tx.rollback().unwrap();

    let receipt = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((receipt.first, receipt.last), (Seq(2), Seq(501)));
    close(store).await;
    assert_eq!(count(&path, "SELECT count(*) FROM readings"), 501);
}

/// Fills a buffer with `n` readings and returns its used size in bytes.
async fn fill(path: &Path, n: usize) -> u64 {
    let store = open(path, BIG, StoreOptions::default());
    for chunk in 0..n / 5_000 {
        store
            .ingest
            .submit(readings(5_000, (chunk * 5_000) as i64))
            .await
            .unwrap();
    }
    store.ingest.write(Vec::new()).await.unwrap();
    close(store).await;
    let c = Connection::open(path).unwrap();
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    let free: i64 = c
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    ((pages - free) * size) as u64
}

#[tokio::test]
async fn over_budget_drops_synced_rows_first_then_unsynced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    // Enough readings that they, not the buffer's fixed files (reserve, shared memory), are
    // what the budget is about.
    let n = 250_000;
    let used = fill(&path, n).await;
    let synced = (n / 4 * 3) as i64;
    set_synced(&path, synced);

    // Room for the buffer's other files on top of its pages (the disk reserve, which covers
    // the WAL's bound, and the shared-memory index).
    let files = 384 * 1024;
    // A budget that dropping synced rows alone can satisfy.
    let store = open(
        &path,
        ByteSize(used * 7 / 10 + files),
        StoreOptions::default(),
    );
    let metrics = store.shared.registry.clone();
    close(store).await;
    let text = metrics.render();
    assert!(
        text.contains("markoff_buffer_dropped_rows_total{reason=\"synced_overflow\"}"),
        "{text}"
    );
    assert!(
        !text.contains("unsynced_overflow"),
        "no unsynced row dropped while synced rows remain: {text}"
    );
    assert_eq!(
        count(
            &path,
            &format!("SELECT count(*) FROM readings WHERE seq > {synced}")
        ),
        n as i64 - synced,
        "every unsynced row is still there"
    );
    assert!(count(&path, "SELECT min(seq) FROM readings") > 1);

    // A budget that needs more than every synced row.
    let small = used * 4 / 10 + files;
    let store = open(&path, ByteSize(small), StoreOptions::default());
    let metrics = store.shared.registry.clone();
    let bytes = store.shared.bytes();
    close(store).await;
    let text = metrics.render();
    assert!(
        text.contains("markoff_buffer_dropped_rows_total{reason=\"unsynced_overflow\"}"),
        "{text}"
    );
    assert_eq!(
        count(
            &path,
            &format!("SELECT count(*) FROM readings WHERE seq <= {synced}")
        ),
        0,
        "synced rows went first"
    );
    assert_eq!(
        count(&path, "SELECT max(seq) FROM readings"),
        n as i64,
        "the newest rows are kept"
    );
    assert!(bytes <= small, "used {bytes} bytes after enforcement");
    let recorded = count(&path, "SELECT sum(rows) FROM dropped_rows");
    let remaining = count(&path, "SELECT count(*) FROM readings");
    assert_eq!(
        recorded + remaining,
        n as i64,
        "every row is either kept or counted as dropped"
    );
}

#[tokio::test]
async fn retention_removes_only_synced_rows_when_there_is_an_uplink() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = open(&path, BIG, StoreOptions { uplink: true });
    store
        .ingest
        .write(readings(100, -40 * 86_400_000))
        .await
        .unwrap();
    store.ingest.write(readings(10, 0)).await.unwrap();
    close(store).await;
    // Retention deletes whole batches (or folds): the old batch also holds unsynced readings.
    set_synced(&path, 60);
    let store = open(&path, BIG, StoreOptions { uplink: true });
    close(store).await;
    assert_eq!(
        count(&path, "SELECT min(seq) FROM readings"),
        1,
        "old readings not all synced are kept"
    );
    set_synced(&path, 100);
    let store = open(&path, BIG, StoreOptions { uplink: true });
    close(store).await;
    assert_eq!(
        count(&path, "SELECT min(seq) FROM readings"),
        101,
        "old synced readings expired"
    );
    assert_eq!(
        count(
            &path,
            "SELECT rows FROM dropped_rows WHERE reason = 'retention'"
        ),
        100
    );

    // Without an uplink nothing waits for sync: every expired row goes.
    let store = open(&path, BIG, StoreOptions { uplink: false });
    close(store).await;
    assert_eq!(count(&path, "SELECT count(*) FROM readings"), 10);
}

#[tokio::test]
async fn jobs_commit_with_the_writer_and_a_failing_job_rolls_back_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = open(&path, BIG, StoreOptions::default());
    let ingest = store.ingest.clone();
    // Readings queued alongside jobs keep their own fate.
    ingest.submit(readings(10, 0)).await.unwrap();
    let seq: i64 = ingest
        .transact(|tx| {
            tx.execute(
                "INSERT INTO audit_log (ts, actor, channel, action, outcome) VALUES (1, 'a', 'cli', 'ack', 'ok')",
                [],
            )?;
            Ok(tx.last_insert_rowid())
        })
        .await
        .unwrap();
    assert_eq!(seq, 1);
    let failed = ingest
        .transact(|tx| {
            tx.execute(
                "INSERT INTO audit_log (ts, actor, channel, action, outcome) VALUES (2, 'b', 'cli', 'ack', 'ok')",
                [],
            )?;
            tx.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            Ok(())
        })
        .await;
    assert!(failed.is_err(), "the job's error reaches its sender");
    ingest.write(readings(5, 100)).await.unwrap();
    close(store).await;
    assert_eq!(count(&path, "SELECT count(*) FROM audit_log"), 1);
    assert_eq!(
        count(&path, "SELECT count(*) FROM audit_log WHERE actor = 'b'"),
        0,
        "the failed job left nothing behind"
    );
    assert_eq!(count(&path, "SELECT count(*) FROM readings"), 15);
}

/// A tmpfs of `size` mounted on a directory of its own, unmounted on drop. Tests run as root in
/// CI; elsewhere a failed mount skips the test, under `CI=true` it fails it.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self { dir }),
            other => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "cannot mount a tmpfs for the disk-full test (run as root): {other:?}"
                );
                eprintln!("skipped: cannot mount a tmpfs (not root?): {other:?}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _unmounted = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn full_cfg() -> StoreConfig {
    StoreConfig {
        maintenance_interval: Duration::from_millis(100),
        ..cfg(BIG)
    }
}

fn dropped(path: &Path, reason: &str) -> i64 {
    count(
        path,
        &format!("SELECT coalesce(sum(rows), 0) FROM dropped_rows WHERE reason = '{reason}'"),
    )
}

/// Every committed seq up to `last` is either in the buffer (the newest, without gaps) or
/// counted as dropped, and synced rows went before unsynced ones.
fn accounted(path: &Path, last: i64, synced: i64) {
    let rows = count(path, "SELECT count(*) FROM readings");
    let total = count(path, "SELECT coalesce(sum(rows), 0) FROM dropped_rows");
    assert_eq!(
        rows + total,
        last,
        "kept {rows} + dropped {total} != committed {last}"
    );
    assert_eq!(
        count(path, "SELECT max(seq) FROM readings"),
        last,
        "the newest rows are kept"
    );
    assert_eq!(
        count(path, "SELECT max(seq) - min(seq) + 1 FROM readings"),
        rows,
        "the kept rows are the newest, without gaps"
    );
    if dropped(path, "unsynced_overflow") > 0 {
        assert_eq!(
            dropped(path, "synced_overflow"),
            synced,
            "synced rows went first"
        );
    }
}

/// Writes `n` batches, each of which must commit within a few seconds.
async fn write_batches(store: &Store, n: usize, offset: &mut i64) -> i64 {
    let mut last = 0;
    for _ in 0..n {
        let receipt = tokio::time::timeout(
            Duration::from_secs(20),
            store.ingest.write(readings(5_000, *offset)),
        )
        .await
        .expect("a commit waited more than 20 s: ingest did not resume")
        .unwrap();
        *offset += 5_000;
        last = receipt.last.0;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_file_filling_the_disk_frees_room_and_a_restart_does_not_loop() {
    let Some(disk) = Tmpfs::mount("3m") else {
        return;
    };
    let path = disk.path().join("b.db");
    let open = move |path: std::path::PathBuf| {
        Store::open(
            &full_cfg(),
            &path,
            StoreOptions { uplink: true },
            Metrics::new(),
            Heartbeat::new("test"),
        )
        .unwrap()
    };
    let store = open(path.clone());
    let mut offset = 1_000;
    let before = write_batches(&store, 40, &mut offset).await;
    let synced = before / 2;
    set_synced(&path, synced);
    // Another program fills the disk to the last byte.
    {
        use std::io::Write as _;
        let mut filler = std::fs::File::create(disk.path().join("filler")).unwrap();
        let block = vec![7u8; 64 * 1024];
        let mut small = vec![7u8; 4096];
        while filler.write_all(&block).is_ok() {}
        while filler.write_all(&small).is_ok() {}
        small.truncate(1);
        while filler.write_all(&small).is_ok() {}
        let _full_disk_may_refuse = filler.sync_all();
    }
    let last = write_batches(&store, 40, &mut offset).await;
    assert!(last > before);
    assert!(
        dropped(&path, "synced_overflow") > 0,
        "room was made by dropping the oldest synced rows"
    );
    close(store).await;
    accounted(&path, last, synced);

    // A restart with the disk still full opens and ingests.
    let store = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking({
            let path = path.clone();
            move || open(path)
        }),
    )
    .await
    .expect("opening on a full disk hung")
    .unwrap();
    let next = write_batches(&store, 20, &mut offset).await;
    assert!(next > last);
    close(store).await;
    accounted(&path, next, synced);
    assert!(disk.path().join("filler").exists());
}
