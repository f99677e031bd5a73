//! Sync to the central PostgreSQL, end to end: the real `markoff` binary uploading into a real
//! PostgreSQL (a database of each test's own, see `markoff_tests::pg`), killed with SIGKILL,
//! cut off by a proxy, its sessions terminated, refused by the centre. Build the binary first:
//! `cargo build -p markoff`.
//!
//! What must hold every time: the central rows of a gateway are exactly its local rows (same
//! seq, sensor, time, value, quality), none missing and none twice, and the local cursor is
//! never ahead of the central one.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use markoff_cloud_sync::Stream;
use markoff_tests::pg::{CentralReading, PgTestDb};
use markoff_tests::proxy::TcpProxy;
use markoff_tests::services::{postgres_addr, require_postgres};
use markoff_tests::{
    GatewayBuilder, TempGateway, assert_always, assert_eventually, db, run_markoff,
};
use serde_json::Value;

/// Kills in test (a).
const ROUNDS: usize = 20;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A small deterministic generator; the seed is printed so a failing run can be repeated with
/// `MARKOFF_TEST_SEED`.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let seed = std::env::var("MARKOFF_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("random seed {seed} (repeat with MARKOFF_TEST_SEED={seed})");
        Self(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The local readings with `seq <= upto`, in the centre's shape.
fn local_readings(path: &Path, upto: i64) -> Vec<CentralReading> {
    let conn = db::open_read_only(path);
    db::refresh_readings(&conn);
    let mut stmt = conn
        .prepare(
            "SELECT seq, sensor, ts, value, quality FROM readings WHERE seq <= ?1 ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([upto], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The local alarm events in the centre's shape: (seq, ts, alarm id, event, message).
fn local_alarm_events(path: &Path) -> Vec<(i64, i64, i64, String, String)> {
    let conn = db::open_read_only(path);
    let mut stmt = conn
        .prepare("SELECT seq, ts, alarm_id, event, message FROM alarm_events ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The local cursor of `stream` (0 when absent).
fn local_cursor(path: &Path, stream: Stream) -> i64 {
    use rusqlite::OptionalExtension as _;
    db::open_read_only(path)
        .query_row(
            "SELECT last_seq FROM sync_cursor WHERE stream = ?1",
            [stream.as_str()],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
        .unwrap_or(0)
}

fn max_alarm_seq(path: &Path) -> i64 {
    db::open_read_only(path)
        .query_row("SELECT coalesce(max(seq), 0) FROM alarm_events", [], |r| {
            r.get(0)
        })
        .unwrap()
}

/// Writes alarm events into a stopped gateway's buffer, as its alarm engine would have.
fn insert_alarm_events(path: &Path, round: usize, n: u64) {
    let conn = db::open_read_write(path, Duration::from_secs(5));
    for i in 0..n {
        conn.execute(
            "INSERT INTO alarm_events (ts, alarm_id, alarm, rule, sensor, event, state, severity, \
             value, message, actor, channel) \
             VALUES (?1, ?2, 'high/f1.r101.temperature', 'high', 'f1.r101.temperature', 'raised', \
             'active_unacked', 'warning', 27.5, ?3, NULL, NULL)",
            rusqlite::params![
                1_700_000_000_000_i64
                    + i64::try_from(round).unwrap() * 1000
                    + i64::try_from(i).unwrap(),
                i64::try_from(round).unwrap(),
                format!("Round {round} event {i}: temperature high"),
            ],
        )
        .unwrap();
    }
}

/// One stream's entry of `/api/v1/sync` (`Null` when absent).
async fn stream_status(gw: &TempGateway, stream: &str) -> Value {
    gw.get_json("/api/v1/sync").await["streams"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["stream"] == stream))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Asserts that the centre holds exactly the local readings up to `upto`.
async fn assert_same_readings(pg: &PgTestDb, gateway: &str, path: &Path, upto: i64) {
    let central = pg.readings(gateway, upto).await;
    let local = local_readings(path, upto);
    assert_eq!(
        central.len(),
        local.len(),
        "central and local row counts up to seq {upto} differ"
    );
    let first_diff = central.iter().zip(&local).position(|(c, l)| c != l);
    assert!(
        first_diff.is_none(),
        "first difference at index {first_diff:?}: central {:?} vs local {:?}",
        first_diff.map(|i| &central[i]),
        first_diff.map(|i| &local[i])
    );
    let seqs: Vec<i64> = local.iter().map(|r| r.0).collect();
    assert_eq!(
        seqs,
        (1..=upto).collect::<Vec<_>>(),
        "local seqs are dense from 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_random_moments_during_sync_leaves_exactly_the_local_rows_centrally() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("kill9").await;
    let id = "sync-kill9";
    let creds = pg.add_gateway(id, "kill9-building").await;
    // 36 sensors every 50 ms (720 readings/s), uploaded in batches of 50 through a proxy: many
    // small central transactions, each followed by its local cursor write.
    let proxy = TcpProxy::start(&postgres_addr()).await;
    let builder = TempGateway::builder()
        .id(id)
        .simulator(2, 5, ms(50))
        .extra_toml(&pg.sync_toml(&creds.role, &proxy.addr(), 50));
    let mut watch = pg.admin().await;
    let mut gw = builder.clone().start().await;
    let path = gw.db_path();
    let mut rng = Rng::seeded();
    let mut central = 0;
    // Rounds killed between a central commit and the local cursor write.
    let mut in_window = 0;
    for round in 1..=ROUNDS {
        // A backlog of a few hundred to a few thousand rows builds while the link is down; the
        // kill comes at a random moment once it drains: during reads, central transactions and
        // local cursor writes.
        proxy.down();
        tokio::time::sleep(ms(100 + rng.below(400))).await;
        // Every fourth round the kill lands, for sure, between a central commit and the local
        // cursor write: a lock held on the buffer holds that write back.
        let lock = (round % 4 == 0).then(|| {
            let conn = db::open_read_write(&path, Duration::from_secs(5));
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            conn
        });
        proxy.up();
        // A locked round waits for the central cursor to pass the (held back) local one; the
        // others for this run's uploads to pass the previous central cursor.
        assert_eventually!(
            {
                let c = markoff_cloud_sync::central_cursor(&mut watch, id, Stream::Readings)
                    .await
                    .unwrap();
                if lock.is_some() {
                    c > local_cursor(&path, Stream::Readings)
                } else {
                    c > central
                }
            },
            "round {round}: sync does not progress past {central}:\n{}",
            gw.log()
        );
        if lock.is_none() {
            tokio::time::sleep(ms(rng.below(60))).await;
        }
        gw.kill9();
        drop(lock);
        central = pg.cursor(id, Stream::Readings).await;
        let local = local_cursor(&path, Stream::Readings);
        assert!(
            local <= central,
            "round {round}: the local cursor {local} is ahead of the central {central}"
        );
        in_window += usize::from(local < central);
        insert_alarm_events(&path, round, 1 + rng.below(3));
        gw.restart().await;
    }

    eprintln!("{in_window} of {ROUNDS} kills left the local cursor behind the central one");
    assert!(
        in_window >= ROUNDS / 4,
        "the commit-to-cursor window was not exercised"
    );

    // No more readings: let the uploader finish, then compare everything.
    gw.kill9();
    gw.write_config_from(builder.no_simulator());
    gw.restart().await;
    let last = db::max_seq(&db::open_read_only(&path));
    let last_alarm = max_alarm_seq(&path);
    assert_eventually!(
        pg.cursor(id, Stream::Readings).await == last
            && pg.cursor(id, Stream::AlarmEvents).await == last_alarm,
        patience = Duration::from_secs(60),
        "the backlog did not drain to {last} / {last_alarm}:\n{}",
        gw.log()
    );
    assert_same_readings(&pg, id, &path, last).await;
    assert_eq!(
        pg.alarm_events(id).await,
        local_alarm_events(&path),
        "alarm events differ"
    );
    assert_eventually!(
        local_cursor(&path, Stream::Readings) == last
            && local_cursor(&path, Stream::AlarmEvents) == last_alarm,
        "the local cursors did not follow the centre"
    );
    let sync = stream_status(&gw, "readings").await;
    assert_eq!(sync["state"], "connected", "{sync}");
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
    gw.sigterm();
    assert!(gw.wait_exit(Duration::from_secs(20)).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_drains_by_itself_after_killed_sessions_and_an_outage() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("outage").await;
    let id = "sync-outage";
    let creds = pg.add_gateway(id, "outage-building").await;
    let proxy = TcpProxy::start(&postgres_addr()).await;
    proxy.down();
    let gw = TempGateway::builder()
        .id(id)
        .simulator(4, 5, ms(20))
        .extra_toml(&pg.sync_toml(&creds.role, &proxy.addr(), 500))
        .start()
        .await;
    let path = gw.db_path();

    // Down from the start: the status says so and a backlog builds; nothing reaches the centre.
    assert_eventually!(
        stream_status(&gw, "readings").await["state"] == "backing_off",
        "the uploader does not report the outage:\n{}",
        gw.log()
    );
    assert_eventually!(
        gw.try_last_seq().await.is_some_and(|s| s > 10_000),
        "no backlog builds"
    );
    let out = run_markoff(&["sync", "status", "--api", gw.api_url()]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("readings") && text.contains("backing off") && text.contains("last error"),
        "{text}"
    );
    assert_eq!(pg.cursor(id, Stream::Readings).await, 0);

    // Back up, but its sessions are terminated again and again while the backlog drains.
    proxy.up();
    let (mut killed, mut busy) = (0, 0);
    for _ in 0..60 {
        if killed >= 8 && busy >= 3 {
            break;
        }
        tokio::time::sleep(ms(100)).await;
        let (k, b) = pg.terminate_sessions(&creds.role).await;
        killed += k;
        busy += b;
    }
    eprintln!("terminated {killed} sessions, {busy} of them mid-statement or mid-transaction");
    assert!(killed > 0, "no session was ever there to terminate");

    // Then the link fails: open connections cut, new ones refused, for two failed attempts.
    let failures = || async {
        gw.metric_value("markoff_sync_failures_total{stream=\"readings\"}")
            .await
            .unwrap_or(0.0)
    };
    let before = failures().await;
    proxy.down();
    assert_eventually!(
        failures().await >= before + 2.0
            && stream_status(&gw, "readings").await["state"] == "backing_off",
        "the uploader does not notice the cut link:\n{}",
        gw.log()
    );
    assert!(proxy.refused() > 0);
    proxy.up();

    // It drains by itself, exactly once.
    let target = gw.last_seq().await;
    assert_eventually!(
        pg.cursor(id, Stream::Readings).await >= target,
        patience = Duration::from_secs(60),
        "the backlog did not drain to {target}:\n{}",
        gw.log()
    );
    let upto = pg.cursor(id, Stream::Readings).await;
    assert_same_readings(&pg, id, &path, upto).await;
    assert_eventually!(
        local_cursor(&path, Stream::Readings) >= target,
        "the local cursor did not follow"
    );
    let failures = failures().await;
    let batches = gw
        .metric_value("markoff_sync_batches_total{stream=\"readings\"}")
        .await
        .unwrap_or(0.0);
    assert!(
        failures >= 2.0 && batches > 0.0,
        "failures {failures}, batches {batches}"
    );
    assert!(
        gw.log().contains("Sync to the centre recovered."),
        "{}",
        gw.log()
    );
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
}

/// How long the centre is away in the catch-up test: long enough for the backoff to reach tens
/// of seconds (1, 2, 4, 8, 16, 32 s ceilings at the documented 60 s `max_backoff`).
const CATCH_UP_OUTAGE: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_drains_within_5_s_of_the_centre_answering_again() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("catchup").await;
    let id = "sync-catchup";
    let creds = pg.add_gateway(id, "catchup-building").await;
    let proxy = TcpProxy::start(&postgres_addr()).await;
    let sync = pg
        .sync_toml(&creds.role, &proxy.addr(), 2000)
        .replace("max_backoff = \"2s\"", "max_backoff = \"60s\"");
    assert!(sync.contains("max_backoff = \"60s\""), "{sync}");
    let gw = TempGateway::builder()
        .id(id)
        .simulator(2, 5, ms(50))
        .extra_toml(&sync)
        .start()
        .await;
    assert_eventually!(
        pg.cursor(id, Stream::Readings).await > 0,
        "no upload before the outage:\n{}",
        gw.log()
    );

    // The centre goes away: open connections cut, new ones reset as they arrive.
    proxy.down();
    let refused_before = proxy.refused();
    tokio::time::sleep(CATCH_UP_OUTAGE).await;
    let refused = proxy.refused() - refused_before;
    assert_eventually!(
        stream_status(&gw, "readings").await["state"] == "backing_off",
        "the uploader does not report the outage:\n{}",
        gw.log()
    );
    // Not hammered: each of the three streams probes about once a second (at most every
    // 0.5 s) and makes a full attempt only when its backoff ends.
    let per_second = refused as f64 / CATCH_UP_OUTAGE.as_secs_f64();
    eprintln!("{refused} connections refused during the outage ({per_second:.1}/s)");
    assert!(
        per_second < 7.0,
        "{refused} connections in {CATCH_UP_OUTAGE:?} hammer a centre that is down"
    );

    // Back: everything stored before the return is central within 5 s. The tolerance on top is
    // the polling of this test (every 50 ms, each poll a query of its own) and one
    // connect + reconcile + first batch on a loaded two-core machine; a backoff sat out would
    // take up to 32-60 s.
    let target = gw.last_seq().await;
    proxy.up();
    let back = tokio::time::Instant::now();
    let allowed = markoff_tests::eventually::scaled(Duration::from_secs(5) + ms(1500));
    loop {
        if pg.cursor(id, Stream::Readings).await >= target {
            break;
        }
        assert!(
            back.elapsed() < allowed,
            "the backlog up to seq {target} was not central {allowed:?} after the centre came \
             back (central cursor {}):\n{}",
            pg.cursor(id, Stream::Readings).await,
            gw.log()
        );
        tokio::time::sleep(ms(50)).await;
    }
    eprintln!(
        "backlog up to seq {target} central {:?} after the return",
        back.elapsed()
    );
    let upto = pg.cursor(id, Stream::Readings).await;
    assert_same_readings(&pg, id, &gw.db_path(), upto).await;
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
}

fn site_toml(room_name: &str, with_tenant: bool, second_floor: bool, address: &str) -> String {
    let mut t = format!(
        "[site]\nname = \"Lenina 17\"\naddress = \"{address}\"\n\n\
         [[site.floor]]\nid = \"1\"\nname = \"First floor\"\nlevel = 1\n\n"
    );
    if second_floor {
        t.push_str("[[site.floor]]\nid = \"2\"\nlevel = 2\n\n");
    }
    t.push_str(&format!(
        "[[site.room]]\nid = \"101\"\nfloor = \"1\"\nname = \"{room_name}\"\n{}\n",
        if with_tenant {
            "tenant = \"acme\"\n"
        } else {
            ""
        }
    ));
    if with_tenant {
        t.push_str("[[site.tenant]]\nid = \"acme\"\nname = \"Acme Ltd\"\n\n");
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_metadata_is_upserted_when_it_changes_and_only_then() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("meta").await;
    let id = "sync-meta";
    let building = "meta-building";
    let creds = pg.add_gateway(id, building).await;
    let sync = pg.sync_toml(&creds.role, &postgres_addr(), 1000);
    let builder = |rooms: u32, site: &str| -> GatewayBuilder {
        TempGateway::builder()
            .id(id)
            .simulator(1, rooms, ms(200))
            .extra_toml(&sync)
            .extra_toml(site)
    };
    let sensors = |rooms: u32| (rooms * 3 + 6).to_string();
    let count_sensors = "SELECT count(*)::text FROM markoff.sensors WHERE gateway_id = $1";
    let floors = "SELECT floor_id FROM markoff.floors WHERE building_id = $1 ORDER BY floor_id";
    let rooms = "SELECT name FROM markoff.rooms WHERE building_id = $1 ORDER BY room_id";
    let tenants = "SELECT name FROM markoff.tenants WHERE building_id = $1 ORDER BY tenant_id";
    let address = "SELECT address FROM markoff.buildings WHERE building_id = $1";

    let mut gw = builder(2, &site_toml("Office", true, false, "ul. Lenina 17"))
        .start()
        .await;
    assert_eventually!(
        pg.texts(count_sensors, id).await == [sensors(2)]
            && pg.texts(floors, building).await == ["1"]
            && pg.texts(rooms, building).await == ["Office"]
            && pg.texts(tenants, building).await == ["Acme Ltd"]
            && pg.texts(address, building).await == ["ul. Lenina 17"],
        "the site metadata did not arrive:\n{}",
        gw.log()
    );
    let v1 = pg.cursor(id, Stream::Metadata).await;
    assert!(v1 > 0);

    // A restart with the same content sends nothing (the sensors are registered again, the
    // snapshot is rebuilt, its hash is unchanged).
    gw.kill9();
    gw.restart().await;
    assert_eventually!(
        stream_status(&gw, "metadata").await["local_cursor"] == v1
            && stream_status(&gw, "metadata").await["state"] == "connected"
            && stream_status(&gw, "metadata").await["lag_rows"] == 0,
        "metadata stream not settled:\n{}",
        gw.log()
    );
    assert_always!(
        pg.cursor(id, Stream::Metadata).await == v1,
        window = Duration::from_secs(1),
        "unchanged metadata was uploaded again"
    );

    // Changed content: a floor added, the room renamed, the tenant gone, three more sensors.
    gw.kill9();
    gw.write_config_from(builder(
        3,
        &site_toml("Office 101", false, true, "ul. Lenina 17"),
    ));
    gw.restart().await;
    assert_eventually!(
        pg.texts(count_sensors, id).await == [sensors(3)]
            && pg.texts(floors, building).await == ["1", "2"]
            && pg.texts(rooms, building).await == ["Office 101"]
            && pg.texts(tenants, building).await.is_empty(),
        "the changed site metadata did not arrive:\n{}",
        gw.log()
    );
    let v2 = pg.cursor(id, Stream::Metadata).await;
    assert!(v2 > v1, "{v2} > {v1}");

    // [site] follows a reload (SIGHUP) without a restart.
    gw.write_config_from(builder(
        3,
        &site_toml("Office 101", false, true, "pr. Mira 1"),
    ));
    gw.sighup();
    assert_eventually!(
        pg.texts(address, building).await == ["pr. Mira 1"],
        "the reloaded address did not arrive:\n{}",
        gw.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_or_a_foreign_role_shows_in_sync_status_and_loses_nothing() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("refused").await;
    let a = pg.add_gateway("sync-refused-a", "building-a").await;
    let b = pg.add_gateway("sync-refused-b", "building-b").await;
    // Gateway A logs in with gateway B's role: the centre lets B's role write only B's rows.
    let foreign = pg.sync_toml(&b.role, &postgres_addr(), 500);
    let builder = TempGateway::builder()
        .id(&a.gateway_id)
        .simulator(1, 2, ms(50));
    let mut gw = builder.clone().extra_toml(&foreign).start().await;
    assert_eventually!(
        stream_status(&gw, "readings").await["state"] == "backing_off"
            && stream_status(&gw, "readings").await["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("not registered for role")),
        "no refusal reported: {}\n{}",
        stream_status(&gw, "readings").await,
        gw.log()
    );
    let out = run_markoff(&["sync", "status", "--api", gw.api_url()]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("backing off") && text.contains("not registered"),
        "{text}"
    );
    assert!(
        gw.log().contains("refused; an operator must act"),
        "{}",
        gw.log()
    );

    // Readings keep being committed; none is synced, none is lost.
    let seq = gw.last_seq().await;
    assert_eventually!(
        gw.try_last_seq().await.is_some_and(|s| s > seq + 100),
        "ingest stopped"
    );
    assert_eq!(pg.cursor(&a.gateway_id, Stream::Readings).await, 0);
    assert_eq!(pg.cursor(&b.gateway_id, Stream::Readings).await, 0);
    assert!(pg.readings(&a.gateway_id, i64::MAX).await.is_empty());
    assert!(pg.readings(&b.gateway_id, i64::MAX).await.is_empty());
    let status = gw.status().await;
    assert_eq!(status["synced_seq"], 0, "{status}");

    // A role the server does not know: the login itself is refused.
    gw.kill9();
    let unknown = foreign.replace(
        &format!("postgres://{}@", b.role),
        "postgres://mkt_no_such_role@",
    );
    gw.write_config_from(builder.extra_toml(&unknown));
    gw.restart().await;
    assert_eventually!(
        stream_status(&gw, "readings").await["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("mkt_no_such_role") && e.contains("does not exist")),
        "no login refusal reported: {}",
        stream_status(&gw, "readings").await
    );

    // Stopping while backing off is clean and quick; every local row is still there.
    let last = gw.last_seq().await;
    gw.sigterm();
    let exit = gw.wait_exit(Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit:?}\n{}", gw.log());
    let conn = db::open_read_only(&gw.db_path());
    let (count, min, max) = db::extent(&conn);
    assert!(max.unwrap() >= last);
    assert_eq!((count, min), (max.unwrap(), Some(1)), "rows were lost");
    assert_eq!(local_cursor(&gw.db_path(), Stream::Readings), 0);
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
}
