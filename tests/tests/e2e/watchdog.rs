//! The systemd watchdog follows the buffer writer: another process holding the database's write
//! lock hangs the writer, pings stop (so systemd would restart the service); once the lock is
//! released the writer commits its retried batch, pings resume and nothing was lost.

use std::time::Duration;

use markoff_tests::{FakeSystemd, TempGateway, assert_always, assert_eventually, db};

use super::{ms, now_ms};

/// `WATCHDOG_USEC`: systemd expects a ping at least every 400 ms; the daemon pings every 200 ms
/// and caps its stall timeout at this interval.
const WATCHDOG_USEC: u64 = 400_000;

#[tokio::test]
async fn watchdog_pings_stop_while_the_writer_is_locked_out_and_resume_after() {
    let systemd = FakeSystemd::start(Some(WATCHDOG_USEC));
    let mut gw = TempGateway::builder()
        .id("watchdog")
        .simulator(2, 3, ms(50))
        .busy_timeout(ms(300))
        .stall_timeout(ms(1_000))
        .envs(systemd.env())
        .start()
        .await;
    let sensors = i64::from(
        gw.builder_config()
            .simulator_knobs()
            .expect("a simulator")
            .sensors(),
    );
    let pings = systemd.count("WATCHDOG=1");
    assert_eventually!(
        systemd.count("WATCHDOG=1") >= pings + 5,
        "watchdog pings never flowed"
    );
    assert_eventually!(
        gw.try_last_seq().await.is_some_and(|s| s > 200),
        "no ingest"
    );

    // Another process takes the write lock and keeps it.
    let lock = db::open_read_write(&gw.db_path(), Duration::from_secs(30));
    lock.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let locked_ms = now_ms();

    // Pings stop: none for several intervals ...
    assert_eventually!(
        systemd
            .last_at("WATCHDOG=1")
            .is_some_and(|t| t.elapsed() > Duration::from_millis(1_500)),
        "watchdog pings went on while the writer could not commit"
    );
    // ... and not one during a further window, while the writer stays stuck.
    let stopped_at = systemd.count("WATCHDOG=1");
    let stuck_seq = gw.metric_value("markoff_buffer_last_seq").await;
    assert_always!(
        systemd.count("WATCHDOG=1") == stopped_at,
        window = Duration::from_secs(2),
        "a watchdog ping while the writer was locked out"
    );
    assert_eq!(
        gw.metric_value("markoff_buffer_last_seq").await,
        stuck_seq,
        "the writer committed although another process held the lock"
    );
    let failures = gw
        .metric_value("markoff_buffer_commit_failures_total")
        .await
        .unwrap_or(0.0);
    assert!(failures >= 1.0, "the writer never reported a busy commit");
    assert!(
        gw.log().contains("withholding watchdog pings"),
        "the daemon did not log why it stopped pinging:\n{}",
        gw.log()
    );
    assert!(gw.is_running(), "the daemon died while locked out");

    // Release the lock: the retried batch commits, pings resume, ingest goes on.
    lock.execute_batch("ROLLBACK").expect("release the lock");
    drop(lock);
    let released_ms = now_ms();
    assert_eventually!(
        systemd.count("WATCHDOG=1") >= stopped_at + 3,
        "watchdog pings did not resume after the lock was released"
    );
    assert!(gw.log().contains("watchdog pings resumed"), "{}", gw.log());
    let resumed = gw.last_seq().await;
    assert_eventually!(
        gw.try_last_seq().await.is_some_and(|s| s > resumed + 200),
        "ingest did not continue after the lock was released"
    );

    // Nothing was lost: seqs are dense, and what the simulator read while the writer was locked
    // out (it kept queueing) was committed afterwards.
    let reader = db::open_read_only(&gw.db_path());
    let (count, min, max) = db::extent(&reader);
    assert_eq!((min, Some(count)), (Some(1), max), "seqs are not dense");
    db::refresh_readings(&reader);
    let read_while_locked: i64 = reader
        .query_row(
            "SELECT count(*) FROM readings WHERE ts > ?1 AND ts < ?2",
            [locked_ms + 500, released_ms - 500],
            |r| r.get(0),
        )
        .expect("count query");
    assert!(
        read_while_locked >= sensors,
        "only {read_while_locked} readings from the locked-out period were committed"
    );
}

/// Regression test for a daemon bug (see the report of the end-to-end suite): the idle writer
/// beats its heartbeat only every 500 ms (`IDLE_TICK` in `daemon/src/store/writer.rs`) while the
/// watchdog counts it as stalled after `min(stall_timeout, WatchdogSec)`, so with
/// `WatchdogSec` below about 1 s an idle gateway withholds pings and systemd would restart it.
#[tokio::test]

async fn watchdog_keeps_pinging_while_the_writer_is_idle() {
    let systemd = FakeSystemd::start(Some(WATCHDOG_USEC));
    let gw = TempGateway::builder()
        .id("idle")
        .no_simulator()
        .envs(systemd.env())
        .start()
        .await;
    let pings = systemd.count("WATCHDOG=1");
    assert_eventually!(
        systemd.count("WATCHDOG=1") >= pings + 10,
        "watchdog pings never flowed"
    );
    assert!(
        !gw.log().contains("withholding watchdog pings"),
        "an idle writer was taken for a hung one:\n{}",
        gw.log()
    );
}
