//! The gateway's clock end to end: the real `markoff` binary on a fake system clock
//! (`MARKOFF_TEST_CLOCK`, docs/clock.md), uploading into a real PostgreSQL. Build the binary
//! first: `cargo build -p markoff`.
//!
//! - Boot at 1970, not synchronised: readings are stored with stamps from the monotonic clock and
//!   held back from the centre; once the clock is set and synchronised they reach the centre at
//!   their real time (within the poll interval), marked `corrected`, and the buffer keeps them as
//!   they were stamped.
//! - A jump of the clock one hour back while running: stamps keep going forward (no reading of a
//!   sensor repeats or precedes an earlier one), retention deletes nothing, and an alarm's
//!   on-delay ends when it should.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use markoff_cloud_sync::Stream;
use markoff_tests::pg::PgTestDb;
use markoff_tests::services::{postgres_addr, require_postgres};
use markoff_tests::{TempGateway, assert_eventually, db};
use sqlx::Row;

/// The simulator's poll interval.
const POLL: Duration = Duration::from_millis(200);

fn real_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Writes the fake clock: the real time plus `offset_ms`, and the kernel's status.
fn set_clock(path: &Path, offset_ms: i64, synchronized: bool) {
    let sync = if synchronized { "yes" } else { "no" };
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        format!("offset_ms = {offset_ms}\nsynchronized = {sync}\n"),
    )
    .unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

const CLOCK_TOML: &str = r#"
[clock]
probe_interval = "100ms"
step_settle = "1s"
"#;

/// (seq, sensor, ts) of the local readings, by seq.
fn local(path: &Path) -> Vec<(i64, i64, i64)> {
    let conn = db::open_read_only(path);
    db::refresh_readings(&conn);
    let mut stmt = conn
        .prepare("SELECT seq, sensor, ts FROM readings ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_taken_before_the_clock_synchronises_reach_the_centre_at_their_real_time() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("clock").await;
    let id = "clock-1970";
    let creds = pg.add_gateway(id, "clock-building").await;
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    // The box boots at 1970-01-01T00:00:01Z, not synchronised.
    let offset = 1_000 - real_ms();
    set_clock(&clock, offset, false);
    let started = real_ms();
    let gw = TempGateway::builder()
        .id(id)
        .simulator(1, 2, POLL)
        .env("MARKOFF_TEST_CLOCK", clock.to_str().unwrap())
        .extra_toml(&format!(
            "{CLOCK_TOML}\n{}",
            pg.sync_toml(&creds.role, &postgres_addr(), 500)
        ))
        .start()
        .await;
    let path = gw.db_path();

    assert_eventually!(
        gw.try_last_seq().await.is_some_and(|s| s > 30),
        "no readings are stored:\n{}",
        gw.log()
    );
    let status = gw.status().await;
    assert_eq!(status["clock"]["status"], "unsynchronized", "{status}");
    assert_eq!(status["clock"]["trusted"], false, "{status}");
    assert_eq!(
        gw.metric_value("markoff_clock_synchronized").await,
        Some(0.0)
    );
    let before = local(&path);
    assert!(
        before.iter().all(|&(_, _, ts)| ts < 86_400_000),
        "stamped from the boot anchor in 1970: {:?}",
        &before[..3]
    );
    // Nothing goes to the centre with a 1970 stamp.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pg.cursor(id, Stream::Readings).await, 0);

    // NTP sets the clock and reports it synchronised.
    set_clock(&clock, 0, true);
    let set_at = real_ms();
    assert_eventually!(
        gw.status().await["clock"]["trusted"] == true,
        "the clock is not trusted again:\n{}",
        gw.log()
    );
    let last_before = before.last().unwrap().0;
    assert_eventually!(
        pg.cursor(id, Stream::Readings).await > last_before + 10,
        patience = Duration::from_secs(30),
        "the held readings do not reach the centre:\n{}",
        gw.log()
    );

    // Every reading taken before the clock was set is at the centre at its real time: what it
    // was stamped plus the fake clock's distance from real time, within the poll interval, and
    // marked corrected; the buffer keeps the stamps it wrote.
    let central = pg.readings(id, last_before).await;
    assert_eq!(central.len(), before.len());
    for ((seq, sensor, ts), c) in before.iter().zip(&central) {
        assert_eq!((*seq, *sensor), (c.0, c.1));
        let real = ts - offset;
        assert!(
            (c.2 - real).abs() <= POLL.as_millis() as i64,
            "reading {seq}: centre {} vs real {real}",
            c.2
        );
        assert!(
            c.2 >= started - 1_000 && c.2 <= set_at + 1_000,
            "reading {seq}"
        );
    }
    assert_eq!(local(&path)[..before.len()], before[..]);
    let mut conn = pg.admin().await;
    let marks: Vec<(String, i64)> = sqlx::query(
        "SELECT clock, count(*) FROM markoff.readings_clock WHERE gateway_id = $1 AND seq <= $2 \
         GROUP BY clock",
    )
    .bind(id)
    .bind(last_before)
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(
        marks,
        vec![("corrected".to_owned(), i64::try_from(before.len()).unwrap())]
    );
    // Readings taken after the clock was trusted are measured ones.
    let later = sqlx::query(
        "SELECT count(*) FILTER (WHERE clock = 'measured'), count(*) FROM markoff.readings_clock \
         WHERE gateway_id = $1 AND ts > to_timestamp($2 / 1000.0) + interval '5 seconds'",
    )
    .bind(id)
    .bind(set_at)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(later.get::<i64, _>(0), later.get::<i64, _>(1));
    let reported = sqlx::query(
        "SELECT synchronized, trusted FROM markoff.gateway_clock WHERE gateway_id = $1",
    )
    .bind(id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(reported.get::<Option<bool>, _>(0), Some(true));
    assert!(reported.get::<bool, _>(1));
    assert_eq!(
        gw.metric_value("markoff_clock_corrections_total").await,
        Some(1.0)
    );
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
}

/// An alarm on a room that is always warm, raised 4 s after its condition begins.
const ALARM_TOML: &str = r#"
[alarms]
tick = "100ms"

[[alarms.rule]]
alert = "RoomWarmForAWhile"
kind = "high"
sensor = "f1.r101.temperature"
limit = 0.0
for = "4s"
severity = "low"

[[alarms.notify]]
channel = "log"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_jumping_an_hour_back_changes_no_order_deletes_nothing_and_delays_no_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    set_clock(&clock, 0, true);
    let gw = TempGateway::builder()
        .simulator(1, 2, POLL)
        .maintenance_interval(Duration::from_millis(200))
        .env("MARKOFF_TEST_CLOCK", clock.to_str().unwrap())
        .extra_toml(&format!("{CLOCK_TOML}\n{ALARM_TOML}"))
        .start()
        .await;
    let path = gw.db_path();
    assert_eventually!(
        gw.try_last_seq().await.is_some_and(|s| s > 10),
        "no readings are stored:\n{}",
        gw.log()
    );
    // The on-delay is running; the clock jumps an hour back and is no longer synchronised.
    let jumped_at = real_ms();
    set_clock(&clock, -3_600_000, false);
    assert_eventually!(
        gw.metric_value("markoff_clock_steps_total").await >= Some(1.0),
        "the step is not seen:\n{}",
        gw.log()
    );
    let status = gw.status().await;
    assert_eq!(status["clock"]["trusted"], false, "{status}");
    assert_eq!(status["clock"]["free_reason"], "step", "{status}");

    // The alarm is raised about 4 s after its condition began, not an hour later.
    let started = real_ms();
    assert_eventually!(
        gw.status().await["clock"]["steps"].as_u64() >= Some(1)
            && db::open_read_only(&path)
                .query_row(
                    "SELECT count(*) FROM alarm_events WHERE event = 'raised'",
                    [],
                    |r| r.get::<_, i64>(0)
                )
                .unwrap()
                == 1,
        patience = Duration::from_secs(15),
        "the alarm's on-delay did not end:\n{}",
        gw.log()
    );
    assert!(real_ms() - started < 15_000);

    // Readings keep going forward after the jump: per sensor, every stamp is later than the one
    // before it, and none is from the hour the clock went back to.
    let before = gw.last_seq().await;
    assert_eventually!(
        gw.last_seq().await > before + 20,
        "no readings after the jump"
    );
    let rows = local(&path);
    let mut last: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
    for &(seq, sensor, ts) in &rows {
        if let Some(prev) = last.insert(sensor, ts) {
            assert!(
                ts > prev,
                "reading {seq} of sensor {sensor}: {ts} after {prev}"
            );
        }
        assert!(
            ts > jumped_at - 600_000,
            "reading {seq} stamped in the past: {ts}"
        );
    }

    // NTP puts the clock right again: the span's correction is about zero; nothing was deleted.
    set_clock(&clock, 0, true);
    assert_eventually!(
        gw.status().await["clock"]["trusted"] == true,
        "the clock is not trusted again:\n{}",
        gw.log()
    );
    let offset = gw.status().await["clock"]["last_offset_ms"]
        .as_i64()
        .unwrap();
    assert!(offset.abs() < 1_000, "correction {offset} ms");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let status = gw.status().await;
    let dropped = status["dropped"].as_array().unwrap();
    assert!(
        dropped.iter().all(|d| d[1].as_i64() == Some(0)),
        "retention deleted rows: {dropped:?}"
    );
    assert_eq!(local(&path)[..rows.len()], rows[..]);
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
}
