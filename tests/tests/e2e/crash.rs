//! `kill -9` in the middle of heavy ingest, three times over: whatever was committed survives
//! unchanged, the file stays healthy, seqs stay dense and are never reused, ingest resumes.

use std::os::unix::process::ExitStatusExt as _;

use markoff_tests::db::{self, Checksum};
use markoff_tests::{TempGateway, assert_eventually};

use super::{ms, now_ms};

const ROUNDS: usize = 3;
/// Rows the daemon must commit in a round before it is killed (a few hundred batches' worth of
/// the simulator's 606 sensors, so the kill lands while the writer is busy).
const ROWS_PER_ROUND: i64 = 30_000;

#[tokio::test]
async fn kill9_during_heavy_ingest_keeps_every_committed_row_and_never_reuses_a_seq() {
    // 10 floors x 20 rooms x 3 + 6 = 606 sensors every 10 ms: ~60k readings/s offered, more
    // than a debug build commits, so the queue is full and the writer never idles.
    let mut gw = TempGateway::builder()
        .id("crash")
        .simulator(10, 20, ms(10))
        .start()
        .await;
    let db_path = gw.db_path();
    // Everything that existed in the buffer before the current run: (max seq, checksum).
    let mut before_run: Option<(i64, Checksum)> = None;

    for round in 1..=ROUNDS {
        let start = gw.last_seq().await;
        assert_eventually!(
            gw.try_last_seq()
                .await
                .is_some_and(|s| s >= start + ROWS_PER_ROUND),
            "round {round}: ingest is not flowing (last_seq stuck near {start})"
        );

        // What an independent reader sees as committed, just before the crash.
        let reader = db::open_read_only(&db_path);
        let m = db::max_seq(&reader);
        let committed = db::checksum(&reader, m);
        drop(reader);
        assert_eq!(committed.count, m, "round {round}: rows 1..={m} are dense");

        let status = gw.kill9();
        assert_eq!(status.signal(), Some(9), "round {round}: killed by SIGKILL");
        let killed_at = now_ms();

        // What the dead process left behind (read-only: no checkpoint, the daemon must recover
        // the WAL by itself).
        let reader = db::open_read_only(&db_path);
        let k = db::max_seq(&reader);
        let left = db::checksum(&reader, k);
        drop(reader);
        assert!(
            k >= m,
            "round {round}: rows vanished after the kill: {k} < {m}"
        );
        assert_eq!(
            db::checksum(&db::open_read_only(&db_path), m),
            committed,
            "round {round}: committed rows changed by the kill"
        );

        gw.restart().await;
        let reader = db::open_read_only(&db_path);
        assert_eq!(
            db::integrity_check(&reader),
            "ok",
            "round {round}: integrity"
        );
        assert_eq!(
            db::checksum(&reader, m),
            committed,
            "round {round}: rows up to {m} (committed before the kill) changed after restart"
        );
        assert_eq!(
            db::checksum(&reader, k),
            left,
            "round {round}: rows up to {k} (present at the kill) changed after restart"
        );
        if let Some((old_max, old)) = before_run {
            assert_eq!(
                db::checksum(&reader, old_max),
                old,
                "round {round}: rows of earlier runs changed"
            );
        }
        drop(reader);

        // The restarted daemon picks up at the seq after the last one that existed, and ingests.
        let resumed_at = gw.last_seq().await;
        assert!(
            resumed_at >= k,
            "round {round}: the restarted daemon reports last_seq {resumed_at} below {k}"
        );
        assert_eventually!(
            gw.try_last_seq().await.is_some_and(|s| s > k + 1_000),
            "round {round}: ingest did not resume past {k}"
        );
        let reader = db::open_read_only(&db_path);
        let (count, min, max) = db::extent(&reader);
        let (min, max) = (min.expect("rows"), max.expect("rows"));
        assert_eq!(min, 1, "round {round}: nothing may be dropped");
        assert_eq!(
            count,
            max - min + 1,
            "round {round}: seqs are not dense (gap or reuse)"
        );
        db::refresh_readings(&reader);
        let (old_newest_ts, new_oldest_ts): (i64, i64) = reader
            .query_row(
                "SELECT (SELECT max(ts) FROM readings WHERE seq <= ?1), \
                        (SELECT min(ts) FROM readings WHERE seq > ?1)",
                [k],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("ts query");
        assert!(
            old_newest_ts <= killed_at,
            "round {round}: a row at or below seq {k} was written after the kill"
        );
        assert!(
            new_oldest_ts >= killed_at,
            "round {round}: a seq above {k} holds a reading from before the kill, i.e. a seq \
             of the killed run was reused or renumbered"
        );
        before_run = Some((k, left));
        drop(reader);
        assert!(gw.is_running(), "round {round}: the daemon died");
    }
    assert_eq!(gw.starts(), ROUNDS as u32 + 1);
}
