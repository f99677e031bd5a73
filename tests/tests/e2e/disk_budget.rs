//! The disk budget: over `max_size`, the oldest **synced** readings go first; only when none is
//! left do unsynced readings go. Every drop is counted by reason (metrics, status, CLI), and the
//! file stays near its budget.
//!
//! The sync cursor is written by the test, as the uploader will: when the buffer is 60 % full,
//! everything committed so far (seq <= S) is marked synced, then ingest goes on past S.

use markoff_tests::db;
use markoff_tests::{TempGateway, assert_eventually, run_markoff};
use rusqlite::Connection;

use super::ms;

const BUDGET: u64 = 1 << 20;
const SYNCED: &str = "markoff_buffer_dropped_rows_total{reason=\"synced_overflow\"}";
const UNSYNCED: &str = "markoff_buffer_dropped_rows_total{reason=\"unsynced_overflow\"}";

/// One consistent look at the buffer (a single read transaction).
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    min: i64,
    max: i64,
    count: i64,
    /// Rows with seq > S.
    unsynced_rows: i64,
    /// `dropped_rows` by reason.
    synced_dropped: i64,
    unsynced_dropped: i64,
    other_dropped: i64,
    used: u64,
}

fn snapshot(conn: &Connection, s: i64) -> Snapshot {
    conn.execute_batch("BEGIN")
        .expect("begin a read transaction");
    let (count, min, max) = db::extent(conn);
    db::refresh_readings(conn);
    let unsynced_rows: i64 = conn
        .query_row("SELECT count(*) FROM readings WHERE seq > ?1", [s], |r| {
            r.get(0)
        })
        .expect("count unsynced rows");
    let dropped = |reason: &str| -> i64 {
        conn.query_row(
            "SELECT coalesce(sum(rows), 0) FROM dropped_rows WHERE reason = ?1",
            [reason],
            |r| r.get(0),
        )
        .expect("read dropped_rows")
    };
    let other_dropped: i64 = conn
        .query_row(
            "SELECT coalesce(sum(rows), 0) FROM dropped_rows \
             WHERE reason NOT IN ('synced_overflow', 'unsynced_overflow')",
            [],
            |r| r.get(0),
        )
        .expect("read dropped_rows");
    let snap = Snapshot {
        min: min.unwrap_or(0),
        max: max.unwrap_or(0),
        count,
        unsynced_rows,
        synced_dropped: dropped("synced_overflow"),
        unsynced_dropped: dropped("unsynced_overflow"),
        other_dropped,
        used: db::used_bytes(conn),
    };
    conn.execute_batch("COMMIT")
        .expect("end the read transaction");
    snap
}

/// What must hold in every snapshot, whatever the timing.
fn check(snap: &Snapshot, s: i64) {
    assert_eq!(
        snap.count,
        snap.max - snap.min + 1,
        "rows are not one contiguous range: {snap:?}"
    );
    assert_eq!(snap.other_dropped, 0, "nothing may expire here: {snap:?}");
    // A drop is recorded right after its DELETE, so records may lag the rows, never lead them.
    assert!(
        snap.synced_dropped + snap.unsynced_dropped < snap.min,
        "more rows recorded as dropped than are missing: {snap:?}"
    );
    assert!(
        snap.synced_dropped <= s,
        "more synced rows dropped than were synced (S = {s}): {snap:?}"
    );
    // ORDER: an unsynced row is dropped only after every synced row was dropped and recorded.
    if snap.unsynced_dropped > 0 {
        assert_eq!(
            snap.synced_dropped, s,
            "unsynced rows dropped while synced rows (S = {s}) remained: {snap:?}"
        );
    }
    if snap.min <= s + 1 {
        assert_eq!(
            snap.unsynced_rows,
            snap.max - s,
            "an unsynced row is missing while synced rows remain (S = {s}): {snap:?}"
        );
    }
}

#[tokio::test]
async fn over_budget_drops_synced_rows_first_then_unsynced_and_counts_both() {
    // 20 x 20 rooms x 3 + 6 = 1,206 sensors every 50 ms: ~24k readings/s, about 1 MiB in 15 s
    // at a few bytes per reading.
    let mut gw = TempGateway::builder()
        .id("budget")
        .simulator(20, 20, ms(50))
        .max_size("1MiB")
        .maintenance_interval(ms(200))
        .start()
        .await;
    let db_path = gw.db_path();

    // 60 % full: mark everything committed so far as synced, as the uploader would.
    assert_eventually!(
        gw.metric_value("markoff_buffer_bytes")
            .await
            .is_some_and(|b| b >= (BUDGET * 3 / 5) as f64),
        "the buffer never reached 60 % of its budget"
    );
    let writer = db::open_read_write(&db_path, std::time::Duration::from_secs(10));
    writer
        .execute_batch("BEGIN IMMEDIATE")
        .expect("lock for the cursor");
    let s = db::max_seq(&writer);
    db::set_sync_cursor(&writer, s);
    writer.execute_batch("COMMIT").expect("commit the cursor");
    drop(writer);

    let reader = db::open_read_only(&db_path);
    let first = snapshot(&reader, s);
    assert!(
        first.min == 1 && first.synced_dropped + first.unsynced_dropped == 0,
        "rows were dropped before the cursor was written (the simulator is too fast for this \
         test): {first:?}"
    );

    // Watch the budget act: synced rows first (while every unsynced row is still there), then,
    // once none is left, unsynced rows.
    let mut saw_only_synced_dropped = false;
    let mut largest_file = 0u64;
    let mut largest_used = 0u64;
    assert_eventually!(
        {
            let snap = snapshot(&reader, s);
            check(&snap, s);
            if snap.synced_dropped > 0 && snap.unsynced_dropped == 0 && snap.min <= s + 1 {
                saw_only_synced_dropped = true;
            }
            if snap.synced_dropped > 0 || snap.unsynced_dropped > 0 {
                largest_used = largest_used.max(snap.used);
                let file = std::fs::metadata(&db_path).map_or(0, |m| m.len());
                largest_file = largest_file.max(file);
            }
            snap.unsynced_dropped > 0 && snap.min > s + 1
        },
        "unsynced rows were never dropped"
    );
    // One maintenance pass may drop every synced row and then unsynced ones before a snapshot is
    // taken, so the in-between state is not always observable here; `check` above enforces the
    // order on every snapshot, and daemon/tests/store.rs proves the in-between state with fixed
    // budgets.
    if !saw_only_synced_dropped {
        eprintln!("note: the state with only synced rows dropped fell between two snapshots");
    }

    // Metrics, status and the CLI tell the same story.
    assert_eventually!(
        gw.metric_value(SYNCED).await == Some(s as f64)
            && gw.metric_value(UNSYNCED).await.is_some_and(|n| n > 0.0),
        "metrics: synced_overflow should be {s}, unsynced_overflow > 0:\n{}",
        gw.metrics_text().await
    );
    let status = gw.status().await;
    assert_eq!(status["synced_seq"], s, "{status}");
    let dropped = |v: &serde_json::Value, reason: &str| -> Option<i64> {
        v["dropped"].as_array()?.iter().find_map(|pair| {
            (pair.get(0)?.as_str()? == reason)
                .then(|| pair.get(1)?.as_i64())
                .flatten()
        })
    };
    assert_eq!(dropped(&status, "synced_overflow"), Some(s), "{status}");
    assert!(
        dropped(&status, "unsynced_overflow").is_some_and(|n| n > 0),
        "{status}"
    );
    let out = run_markoff(&["status", "--json", "--api", gw.api_url()]).await;
    assert_eq!(out.status.code(), Some(0));
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(dropped(&cli, "synced_overflow"), Some(s), "{cli}");
    assert!(
        dropped(&cli, "unsynced_overflow").is_some_and(|n| n > 0),
        "{cli}"
    );

    // Near the budget: the daemon's own figure after maintenance is within it; what we saw in
    // between (ingest goes on between two passes) stayed close.
    let reported = gw
        .metric_value("markoff_buffer_bytes")
        .await
        .expect("buffer_bytes");
    assert!(
        reported <= BUDGET as f64,
        "{reported} bytes used after maintenance"
    );
    assert!(
        largest_used <= BUDGET * 3 / 2 && largest_file <= BUDGET * 3 / 2,
        "the buffer grew far past its budget: used {largest_used}, file {largest_file}"
    );

    // After a clean stop everything is accounted for exactly.
    gw.sigterm();
    let exit = gw.wait_exit(std::time::Duration::from_secs(20)).await;
    assert_eq!(exit.code(), Some(0));
    let last = snapshot(&db::open_read_only(&db_path), s);
    check(&last, s);
    assert_eq!(last.synced_dropped, s, "{last:?}");
    assert_eq!(
        last.synced_dropped + last.unsynced_dropped,
        last.min - 1,
        "every missing row is counted once: {last:?}"
    );
    assert!(last.used <= BUDGET, "{last:?}");
    let file = std::fs::metadata(&db_path).expect("db file").len();
    assert!(file <= BUDGET * 5 / 4, "the file is {file} bytes");
}
