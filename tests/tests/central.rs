//! The central PostgreSQL: migrations, the upload protocol (exactly once, also under concurrent
//! resends), site metadata, row-level security between gateways, partitions, and the
//! `markoff-central` binary (build it first: `cargo build -p markoff-cloud-sync`).
//!
//! Every test creates its own database with a unique name and its roles prefixed with that name
//! (roles are cluster-wide), and drops both when it ends, so the tests run in parallel.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::atomic::{AtomicU32, Ordering};

use markoff_cloud_sync::admin::{self, NewGateway};
use markoff_cloud_sync::{
    AlarmEventRow, FloorRow, ReadingRow, RoomRow, SensorMetaRow, SiteMetadata, Stream, SyncError,
    TenantRow, central_cursor, raw_copy_readings, report_head, touch_gateway, upload_alarm_events,
    upload_readings, upsert_metadata,
};
use markoff_tests::services::{postgres_addr, require_postgres};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, Executor as _, PgConnection, Row as _};

// === harness ===

/// A scratch database, dropped (with the roles named after it) when the value is dropped.
struct TestDb {
    name: String,
}

/// A provisioned gateway.
struct Gw {
    id: String,
    role: String,
    password: String,
}

impl TestDb {
    /// A new empty database, or `None` (after a loud warning) when PostgreSQL is not there.
    async fn empty() -> Option<Self> {
        if !require_postgres() {
            return None;
        }
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "mkc_{}_{}_{:06}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos % 1_000_000
        );
        let mut c = PgConnection::connect(&server_url("postgres"))
            .await
            .unwrap();
        c.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        Some(Self { name })
    }

    /// A new database with the central schema.
    async fn migrated() -> Option<Self> {
        let db = Self::empty().await?;
        admin::migrate(&mut db.admin().await).await.unwrap();
        Some(db)
    }

    fn url(&self) -> String {
        server_url(&self.name)
    }

    /// A connection as the administrator (postgres, superuser).
    async fn admin(&self) -> PgConnection {
        PgConnection::connect(&self.url()).await.unwrap()
    }

    /// Provisions gateway `id` in `building`, role `<db>_<id>`.
    async fn gateway(&self, id: &str, building: &str) -> Gw {
        let creds = admin::add_gateway(
            &mut self.admin().await,
            &NewGateway {
                gateway_id: id.into(),
                building_id: building.into(),
                role: Some(format!("{}_{}", self.name, id.replace('-', "_"))),
                password: None,
            },
        )
        .await
        .unwrap();
        Gw {
            id: id.into(),
            role: creds.role,
            password: creds.password.expose().to_owned(),
        }
    }

    /// A connection as the gateway's role.
    async fn connect_as(&self, gw: &Gw) -> PgConnection {
        let opts = PgConnectOptions::from_str(&self.url())
            .unwrap()
            .username(&gw.role)
            .password(&gw.password);
        PgConnection::connect_with(&opts).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime's async context: clean up on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut c = PgConnection::connect(&server_url("postgres"))
                    .await
                    .unwrap();
                c.execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await
                .unwrap();
                let roles: Vec<String> =
                    sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1")
                        .bind(format!("{name}\\_%"))
                        .fetch_all(&mut c)
                        .await
                        .unwrap();
                for r in roles {
                    c.execute(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS \"{r}\"")))
                        .await
                        .unwrap();
                }
            });
        });
        if cleanup.join().is_err() && !std::thread::panicking() {
            panic!("dropping test database {} failed", self.name);
        }
    }
}

fn server_url(db: &str) -> String {
    format!("postgres://postgres@{}/{db}", postgres_addr())
}

/// The SQLSTATE of a failed statement.
fn code(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.code().unwrap_or_default().into_owned(),
        other => panic!("not a database error: {other}"),
    }
}

/// 2025-03-01T00:00:00Z in ms: a time inside the monthly partitions is not needed here.
const T0: i64 = 1_740_787_200_000;

fn reading(seq: i64) -> ReadingRow {
    ReadingRow {
        seq,
        sensor_id: seq % 7,
        ts_ms: T0 + seq * 1000,
        value: if seq % 5 == 0 {
            None
        } else {
            Some(seq as f64 / 4.0)
        },
        quality: if seq % 5 == 0 { 3 } else { 0 },
    }
}

fn readings(seqs: std::ops::RangeInclusive<i64>) -> Vec<ReadingRow> {
    seqs.map(reading).collect()
}

fn alarm_event(seq: i64, alarm_id: i64, state: &str) -> AlarmEventRow {
    AlarmEventRow {
        seq,
        ts_ms: T0 + seq,
        alarm_id,
        alarm: format!("alarm {alarm_id}"),
        rule: "high".into(),
        sensor: Some("boiler.supply_temp".into()),
        event: if state == "normal" {
            "cleared"
        } else {
            "raised"
        }
        .into(),
        state: state.into(),
        severity: "major".into(),
        value: Some(91.5),
        message: "Supply temperature high".into(),
        actor: (seq % 2 == 0).then(|| "anna".to_owned()),
        channel: None,
    }
}

/// An alarm event's texts as stored: alarm_id, alarm, sensor, message, channel.
type EventTexts = (i64, String, Option<String>, String, Option<String>);

/// An alarm event as stored: seq, ts (ms), state, actor, channel, value.
type StoredEvent = (
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<f64>,
);

/// (count, min seq, max seq) of a gateway's readings, as the administrator sees them.
async fn reading_stats(c: &mut PgConnection, gw: &str) -> (i64, i64, i64) {
    let r = sqlx::query(
        "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0), count(DISTINCT seq) \
         FROM markoff.readings WHERE gateway_id = $1",
    )
    .bind(gw)
    .fetch_one(c)
    .await
    .unwrap();
    let (n, distinct): (i64, i64) = (r.get(0), r.get(3));
    assert_eq!(n, distinct, "duplicate seqs for {gw}");
    (n, r.get(1), r.get(2))
}

// === migrations ===

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_again() {
    let Some(db) = TestDb::empty().await else {
        return;
    };
    let mut c = db.admin().await;
    let first = admin::migrate(&mut c).await.unwrap();
    // Every embedded migration (a unit test checks them against migrations/central/).
    let all: Vec<i64> = admin::migrator().iter().map(|m| m.version).collect();
    assert_eq!(all, (1..=13).collect::<Vec<i64>>());
    assert_eq!(first.applied, all);
    assert!(first.partitions_created >= 5, "{first:?}");
    let second = admin::migrate(&mut c).await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.current, all);
    assert_eq!(second.partitions_created, 0);

    let (n, ok): (i64, bool) =
        sqlx::query_as("SELECT count(*), bool_and(success) FROM markoff._sqlx_migrations")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!((n, ok), (all.len() as i64, true));

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'markoff' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition \
         ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "active_alarms",
            "alarm_comments",
            "alarm_events",
            "alarm_latest",
            "buildings",
            "clock_epochs",
            "floors",
            "gateway_clock",
            "gateway_health",
            "gateway_keys",
            "gateway_proofs",
            "gateways",
            "ingest_roles",
            "latest_readings",
            "office_requests",
            "readings",
            "readings_10m",
            "readings_1d",
            "readings_1d_pending",
            "readings_clock",
            "rollup_state",
            "rooms",
            "sensor_latest",
            "sensors",
            "sync_cursors",
            "tenants",
            "web_grants",
            "web_roles",
            "web_sessions",
            "web_users",
        ]
    );
    let partitioned: String = sqlx::query_scalar(
        "SELECT partstrat::text FROM pg_partitioned_table WHERE partrelid = 'markoff.readings'::regclass",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(partitioned, "r");
    // `gateways` and version 9's ingest roles, keys and proofs are read by the SECURITY DEFINER
    // functions as their owner (RLS enabled, not forced); no other role has a privilege on them.
    let unforced: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'markoff'::regnamespace \
         AND relkind IN ('r', 'p') AND NOT relispartition \
         AND relname NOT IN ('gateways', '_sqlx_migrations', 'ingest_roles', 'gateway_keys', \
                             'gateway_proofs') \
         AND NOT (relrowsecurity AND relforcerowsecurity)",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert!(
        unforced.is_empty(),
        "tables without forced RLS: {unforced:?}"
    );
}

// === uploads ===

#[tokio::test]
async fn readings_arrive_exactly_once_across_overlapping_resends() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let a = db.gateway("gw-a", "house-1").await;
    let mut gw = db.connect_as(&a).await;
    let mut adm = db.admin().await;

    let empty = upload_readings(&mut gw, &a.id, &[]).await.unwrap();
    assert_eq!((empty.inserted, empty.central_cursor), (0, 0));

    let out = upload_readings(&mut gw, &a.id, &readings(1..=600))
        .await
        .unwrap();
    assert_eq!(
        (out.inserted, out.skipped, out.central_cursor),
        (600, 0, 600)
    );
    // The uploader crashed before advancing its local cursor: it resends an overlapping batch.
    let out = upload_readings(&mut gw, &a.id, &readings(400..=1000))
        .await
        .unwrap();
    assert_eq!(
        (out.inserted, out.skipped, out.central_cursor),
        (400, 201, 1000)
    );
    let out = upload_readings(&mut gw, &a.id, &readings(1..=1000))
        .await
        .unwrap();
    assert_eq!(
        (out.inserted, out.skipped, out.central_cursor),
        (0, 1000, 1000)
    );
    // Gaps in the local seq (rows dropped by the disk budget) are fine.
    let mut gappy = readings(1001..=1100);
    gappy.extend(readings(1201..=1300));
    let out = upload_readings(&mut gw, &a.id, &gappy).await.unwrap();
    assert_eq!((out.inserted, out.central_cursor), (200, 1300));

    assert_eq!(reading_stats(&mut adm, &a.id).await, (1200, 1, 1300));
    assert_eq!(
        central_cursor(&mut gw, &a.id, Stream::Readings)
            .await
            .unwrap(),
        1300
    );
    let empty = upload_readings(&mut gw, &a.id, &[]).await.unwrap();
    assert_eq!(empty.central_cursor, 1300);

    // Values survive the binary COPY round trip exactly.
    let rows = sqlx::query(
        "SELECT seq, sensor_id, (extract(epoch FROM ts) * 1000)::int8, value, quality \
         FROM markoff.readings WHERE gateway_id = $1 ORDER BY seq",
    )
    .bind(&a.id)
    .fetch_all(&mut adm)
    .await
    .unwrap();
    for r in rows {
        let seq: i64 = r.get(0);
        let want = reading(seq);
        assert_eq!(i64::from(r.get::<i32, _>(1)), want.sensor_id);
        assert_eq!(r.get::<i64, _>(2), want.ts_ms);
        assert_eq!(r.get::<Option<f64>, _>(3), want.value);
        assert_eq!(r.get::<i16, _>(4), want.quality);
    }

    // The latest value per sensor follows, with metadata where known.
    let latest: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT sensor_id, seq FROM markoff.latest_readings WHERE gateway_id = $1 ORDER BY 1",
    )
    .bind(&a.id)
    .fetch_all(&mut adm)
    .await
    .unwrap();
    let newest = |s: i64| 1300 - (1300 - s).rem_euclid(7);
    assert_eq!(
        latest,
        (0..7)
            .map(|s| (s, newest(i64::from(s))))
            .collect::<Vec<_>>()
    );

    // Unordered batches are refused before anything is sent.
    let mut bad = readings(2000..=2002);
    bad.swap(0, 2);
    let e = upload_readings(&mut gw, &a.id, &bad).await.unwrap_err();
    assert!(matches!(e, SyncError::Unordered { .. }), "{e}");
    assert!(!e.is_transient());
    assert_eq!(reading_stats(&mut adm, &a.id).await.0, 1200);
    // The connection is still usable after every error above.
    touch_gateway(&mut gw, &a.id).await.unwrap();
}

#[tokio::test]
async fn binary_copy_round_trips_edge_values() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let a = db.gateway("gw-a", "house-1").await;
    let mut gw = db.connect_as(&a).await;
    let mut adm = db.admin().await;
    let values = [
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(f64::NEG_INFINITY),
        Some(-0.0),
        Some(f64::MIN_POSITIVE),
        Some(-1.5e300),
        None,
    ];
    let times = [
        -62_135_596_800_000, // 0001-01-01T00:00:00Z
        -1,                  // 1969-12-31T23:59:59.999Z
        946_684_799_999,     // the millisecond before PostgreSQL's epoch
        946_684_800_000,
        253_402_300_799_999, // 9999-12-31T23:59:59.999Z
        T0,
        T0 + 1,
    ];
    let rows: Vec<ReadingRow> = values
        .iter()
        .zip(times)
        .enumerate()
        .map(|(i, (&value, ts_ms))| ReadingRow {
            seq: i as i64 + 1,
            sensor_id: [0, 1, -1, i64::from(i32::MAX), i64::from(i32::MIN), 7, 8][i],
            ts_ms,
            value,
            quality: i as i16 % 4,
        })
        .collect();
    let out = upload_readings(&mut gw, &a.id, &rows).await.unwrap();
    assert_eq!(out.inserted, 7);
    let stored: Vec<(i64, i32, i64, Option<f64>, i16)> = sqlx::query_as(
        "SELECT seq, sensor_id, (extract(epoch FROM ts) * 1000)::int8, value, quality \
         FROM markoff.readings WHERE gateway_id = $1 ORDER BY seq",
    )
    .bind(&a.id)
    .fetch_all(&mut adm)
    .await
    .unwrap();
    for (got, want) in stored.iter().zip(&rows) {
        assert_eq!(got.0, want.seq);
        assert_eq!(i64::from(got.1), want.sensor_id);
        assert_eq!(got.2, want.ts_ms, "seq {}", want.seq);
        match (got.3, want.value) {
            (Some(g), Some(w)) if w.is_nan() => assert!(g.is_nan()),
            (Some(g), Some(w)) => assert_eq!(g.to_bits(), w.to_bits(), "seq {}", want.seq),
            (g, w) => assert_eq!(g, w),
        }
        assert_eq!(got.4, want.quality);
    }

    let texts = [
        "",
        "Котельная: давление ↑",
        "tab\tnew\nline \\ \"quote\" 'single'",
        "😀",
    ];
    let events: Vec<AlarmEventRow> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| AlarmEventRow {
            seq: i as i64 + 1,
            ts_ms: T0,
            alarm_id: i64::MAX - i as i64,
            alarm: (*t).to_owned(),
            rule: "rate".into(),
            sensor: (i % 2 == 0).then(|| (*t).to_owned()),
            event: "raised".into(),
            state: "active-unacked".into(),
            severity: "critical".into(),
            value: None,
            message: t.repeat(1000),
            actor: None,
            channel: Some((*t).to_owned()),
        })
        .collect();
    upload_alarm_events(&mut gw, &a.id, &events).await.unwrap();
    let stored: Vec<EventTexts> = sqlx::query_as(
        "SELECT alarm_id, alarm, sensor, message, channel FROM markoff.alarm_events \
         WHERE gateway_id = $1 ORDER BY seq",
    )
    .bind(&a.id)
    .fetch_all(&mut adm)
    .await
    .unwrap();
    let want: Vec<EventTexts> = events
        .iter()
        .map(|e| {
            (
                e.alarm_id,
                e.alarm.clone(),
                e.sensor.clone(),
                e.message.clone(),
                e.channel.clone(),
            )
        })
        .collect();
    assert_eq!(stored, want);

    // Out of range for the schema: refused before anything is sent.
    let mut bad = reading(100);
    bad.sensor_id = i64::from(i32::MAX) + 1;
    let e = upload_readings(&mut gw, &a.id, &[bad]).await.unwrap_err();
    assert!(matches!(e, SyncError::InvalidRow { .. }), "{e}");
    let mut bad = reading(100);
    bad.ts_ms = 253_402_300_800_000;
    assert!(upload_readings(&mut gw, &a.id, &[bad]).await.is_err());
}

#[tokio::test]
async fn a_cursor_behind_the_data_falls_back_to_on_conflict() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let a = db.gateway("gw-a", "house-1").await;
    let mut gw = db.connect_as(&a).await;
    let mut adm = db.admin().await;
    upload_readings(&mut gw, &a.id, &readings(1..=100))
        .await
        .unwrap();
    sqlx::query("UPDATE markoff.sync_cursors SET last_seq = 50 WHERE gateway_id = $1")
        .bind(&a.id)
        .execute(&mut adm)
        .await
        .unwrap();
    let out = upload_readings(&mut gw, &a.id, &readings(1..=150))
        .await
        .unwrap();
    assert_eq!(
        (out.inserted, out.skipped, out.central_cursor),
        (50, 100, 150)
    );
    assert_eq!(reading_stats(&mut adm, &a.id).await, (150, 1, 150));
}

/// `markoff.readings_10m` of a gateway next to the same aggregates computed from its readings:
/// rows that differ (none when the rollup counts every reading once).
async fn rollup_differences(c: &mut PgConnection, gw: &str) -> (i64, i64) {
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM markoff.readings_10m WHERE gateway_id = $1")
            .bind(gw)
            .fetch_one(&mut *c)
            .await
            .unwrap();
    let differ: i64 = sqlx::query_scalar(
        "WITH truth AS ( \
             SELECT sensor_id, date_bin(interval '10 minutes', ts, timestamptz '2000-01-01 00:00:00+00') AS bucket, \
                    count(value)::int AS n, coalesce(sum(value), 0) AS sum, min(value) AS min, \
                    max(value) AS max, (count(*) - count(value))::int AS bad \
             FROM markoff.readings WHERE gateway_id = $1 GROUP BY 1, 2), \
         roll AS (SELECT sensor_id, bucket, n, sum, min, max, bad FROM markoff.readings_10m \
                  WHERE gateway_id = $1) \
         SELECT count(*) FROM ((TABLE truth EXCEPT TABLE roll) UNION ALL (TABLE roll EXCEPT TABLE truth)) d",
    )
    .bind(gw)
    .fetch_one(&mut *c)
    .await
    .unwrap();
    (rows, differ)
}

#[tokio::test]
async fn the_readings_rollup_counts_every_reading_once() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let a = db.gateway("gw-roll", "house-1").await;
    let mut gw = db.connect_as(&a).await;
    let mut adm = db.admin().await;
    // Overlapping resends (skipped by the cursor), then a cursor behind the data (the fallback
    // insert, which rolls up only what it really inserted).
    for range in [1..=400, 300..=700, 1..=700, 701..=900] {
        upload_readings(&mut gw, &a.id, &readings(range))
            .await
            .unwrap();
    }
    sqlx::query("UPDATE markoff.sync_cursors SET last_seq = 500 WHERE gateway_id = $1")
        .bind(&a.id)
        .execute(&mut adm)
        .await
        .unwrap();
    let out = upload_readings(&mut gw, &a.id, &readings(450..=1000))
        .await
        .unwrap();
    assert_eq!(out.inserted, 100);
    let (rows, differ) = rollup_differences(&mut adm, &a.id).await;
    assert!(rows > 1, "{rows} buckets");
    assert_eq!(differ, 0, "the rollup and the readings disagree");
    let total: i64 = sqlx::query_scalar(
        "SELECT sum(n + bad)::int8 FROM markoff.readings_10m WHERE gateway_id = $1",
    )
    .bind(&a.id)
    .fetch_one(&mut adm)
    .await
    .unwrap();
    assert_eq!(total, 1000);
    // Another building's gateway can neither see nor change it.
    let b = db.gateway("gw-other", "house-2").await;
    let mut other = db.connect_as(&b).await;
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM markoff.readings_10m")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert_eq!(seen, 0);
    let err =
        sqlx::query("INSERT INTO markoff.readings_10m VALUES ('gw-roll', 1, now(), 1, 1, 1, 1, 0)")
            .execute(&mut other)
            .await
            .unwrap_err();
    assert_eq!(code(&err), "42501");
}

#[tokio::test]
async fn concurrent_uploads_of_the_same_batch_insert_it_once() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let a = db.gateway("gw-a", "house-1").await;
    let mut c1 = db.connect_as(&a).await;
    let mut c2 = db.connect_as(&a).await;
    let mut adm = db.admin().await;
    let mut start = 1;
    for len in [1, 10, 5000, 20_000] {
        let batch = readings(start..=start + len - 1);
        let (r1, r2) = tokio::join!(
            upload_readings(&mut c1, &a.id, &batch),
            upload_readings(&mut c2, &a.id, &batch)
        );
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        assert_eq!(r1.inserted + r2.inserted, len as u64, "{r1:?} {r2:?}");
        assert_eq!(r1.skipped + r2.skipped, len as u64);
        assert_eq!(r1.central_cursor, start + len - 1);
        assert_eq!(r2.central_cursor, start + len - 1);
        start += len;
    }
    assert_eq!(
        reading_stats(&mut adm, &a.id).await,
        (start - 1, 1, start - 1)
    );
}

#[tokio::test]
async fn alarm_events_arrive_exactly_once() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let a = db.gateway("gw-a", "house-1").await;
    let mut c1 = db.connect_as(&a).await;
    let mut c2 = db.connect_as(&a).await;
    let mut adm = db.admin().await;
    let events: Vec<AlarmEventRow> = vec![
        alarm_event(1, 10, "active-unacked"),
        alarm_event(2, 11, "active-unacked"),
        alarm_event(3, 10, "active-acked"),
        alarm_event(4, 11, "normal"),
        alarm_event(5, 12, "cleared-unacked"),
    ];
    let out = upload_alarm_events(&mut c1, &a.id, &events[..3])
        .await
        .unwrap();
    assert_eq!((out.inserted, out.central_cursor), (3, 3));
    let (r1, r2) = tokio::join!(
        upload_alarm_events(&mut c1, &a.id, &events),
        upload_alarm_events(&mut c2, &a.id, &events[1..])
    );
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.inserted + r2.inserted, 2);
    assert_eq!((r1.central_cursor, r2.central_cursor), (5, 5));
    assert_eq!(
        central_cursor(&mut c1, &a.id, Stream::AlarmEvents)
            .await
            .unwrap(),
        5
    );

    let stored: Vec<StoredEvent> = sqlx::query_as(
        "SELECT seq, (extract(epoch FROM ts) * 1000)::int8, state, actor, channel, value \
             FROM markoff.alarm_events WHERE gateway_id = $1 ORDER BY seq",
    )
    .bind(&a.id)
    .fetch_all(&mut adm)
    .await
    .unwrap();
    assert_eq!(stored.len(), 5);
    for (row, want) in stored.iter().zip(&events) {
        assert_eq!(row.0, want.seq);
        assert_eq!(row.1, want.ts_ms);
        assert_eq!(row.2, want.state);
        assert_eq!(row.3, want.actor);
        assert_eq!(row.4, want.channel);
        assert_eq!(row.5, want.value);
    }
    let active: Vec<(i64, String)> = sqlx::query_as(
        "SELECT alarm_id, state FROM markoff.active_alarms WHERE gateway_id = $1 ORDER BY 1",
    )
    .bind(&a.id)
    .fetch_all(&mut adm)
    .await
    .unwrap();
    assert_eq!(
        active,
        vec![
            (10, "active-acked".to_owned()),
            (12, "cleared-unacked".to_owned())
        ]
    );
}

#[tokio::test]
async fn gateway_health_shows_contact_and_backlog() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let a = db.gateway("gw-a", "house-1").await;
    let b = db.gateway("gw-b", "house-1").await;
    let mut gw = db.connect_as(&a).await;
    let mut adm = db.admin().await;
    let before = admin::list_gateways(&mut adm).await.unwrap();
    assert_eq!(before.len(), 2);
    assert!(
        before
            .iter()
            .all(|g| g.last_contact.is_none() && g.lag_rows.is_none())
    );

    touch_gateway(&mut gw, &a.id).await.unwrap();
    upload_readings(&mut gw, &a.id, &readings(1..=100))
        .await
        .unwrap();
    report_head(&mut gw, &a.id, Stream::Readings, 250)
        .await
        .unwrap();
    let list = admin::list_gateways(&mut adm).await.unwrap();
    let ga = list.iter().find(|g| g.gateway_id == a.id).unwrap();
    assert!(ga.last_contact.is_some());
    assert_eq!(ga.readings_seq, Some(100));
    assert_eq!(ga.lag_rows, Some(150));
    // The newest reading is T0 + 100 s; its age is the lag in seconds.
    let age_s = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - (T0 + 100_000)) as f64
        / 1000.0;
    assert!((ga.lag_seconds.unwrap() - age_s).abs() < 60.0, "{ga:?}");
    let gb = list.iter().find(|g| g.gateway_id == b.id).unwrap();
    assert_eq!((gb.last_contact.as_deref(), gb.lag_rows), (None, None));
    // A gateway cannot report another's backlog.
    assert!(
        report_head(&mut gw, &b.id, Stream::Readings, 1)
            .await
            .is_err()
    );
}

// === metadata ===

fn site() -> SiteMetadata {
    SiteMetadata {
        building_name: Some("Lenina 17".into()),
        address: Some("Lenina st. 17".into()),
        floors: vec![
            FloorRow {
                id: "b1".into(),
                name: "Basement".into(),
                level: Some(-1),
                ..FloorRow::default()
            },
            FloorRow {
                id: "f1".into(),
                name: "First".into(),
                level: Some(1),
                ..FloorRow::default()
            },
        ],
        rooms: vec![
            RoomRow {
                id: "boiler".into(),
                floor: Some("b1".into()),
                name: "Boiler room".into(),
                tenant: None,
                ..RoomRow::default()
            },
            RoomRow {
                id: "101".into(),
                floor: Some("f1".into()),
                name: "Flat 101".into(),
                tenant: Some("t1".into()),
                ..RoomRow::default()
            },
        ],
        tenants: vec![TenantRow {
            id: "t1".into(),
            name: "Ivanova".into(),
        }],
        sensors: (0..3)
            .map(|i| SensorMetaRow {
                sensor_id: i,
                key: format!("room101.t{i}"),
                name: format!("Temperature {i}"),
                kind: "temperature".into(),
                unit: "°C".into(),
                floor: Some("f1".into()),
                room: Some("101".into()),
                source: "mqtt".into(),
            })
            .collect(),
    }
}

#[tokio::test]
async fn metadata_is_upserted_on_change_and_repeats_change_nothing() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let a = db.gateway("gw-a", "house-1").await;
    let mut gw = db.connect_as(&a).await;
    let mut adm = db.admin().await;
    let snapshot = |c: &'static str| {
        format!(
            "SELECT string_agg(x::text, ';' ORDER BY x::text) FROM markoff.{c} x WHERE {}",
            if c == "sensors" {
                "gateway_id = 'gw-a'"
            } else {
                "building_id = 'house-1'"
            }
        )
    };
    let dump = async |c: &mut PgConnection| {
        let mut out = Vec::new();
        for t in ["buildings", "floors", "rooms", "tenants", "sensors"] {
            let v: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(snapshot(t)))
                .fetch_one(&mut *c)
                .await
                .unwrap();
            out.push(v.unwrap_or_default());
        }
        out
    };

    let mut meta = site();
    upsert_metadata(&mut gw, &a.id, &meta, 1).await.unwrap();
    assert_eq!(
        central_cursor(&mut gw, &a.id, Stream::Metadata)
            .await
            .unwrap(),
        1
    );
    let first = dump(&mut adm).await;
    assert!(first[0].contains("Lenina 17"), "{first:?}");
    assert_eq!(first[1].matches("house-1").count(), 2);
    assert!(first[4].contains("room101.t2"));

    // The same snapshot again changes no row (updated_at stays).
    upsert_metadata(&mut gw, &a.id, &meta, 1).await.unwrap();
    assert_eq!(dump(&mut adm).await, first);

    // A change: a renamed floor, a room gone, a sensor moved; name unknown keeps the old one.
    meta.building_name = None;
    meta.floors[1].name = "Ground".into();
    meta.rooms.retain(|r| r.id != "boiler");
    meta.sensors[0].room = None;
    upsert_metadata(&mut gw, &a.id, &meta, 2).await.unwrap();
    let floors: Vec<(String, String)> = sqlx::query_as(
        "SELECT floor_id, name FROM markoff.floors WHERE building_id = 'house-1' ORDER BY 1",
    )
    .fetch_all(&mut adm)
    .await
    .unwrap();
    assert_eq!(
        floors,
        vec![
            ("b1".to_owned(), "Basement".to_owned()),
            ("f1".to_owned(), "Ground".to_owned())
        ]
    );
    let rooms: Vec<String> =
        sqlx::query_scalar("SELECT room_id FROM markoff.rooms WHERE building_id = 'house-1'")
            .fetch_all(&mut adm)
            .await
            .unwrap();
    assert_eq!(rooms, ["101"]);
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM markoff.buildings WHERE building_id = 'house-1'")
            .fetch_one(&mut adm)
            .await
            .unwrap();
    assert_eq!(name.as_deref(), Some("Lenina 17"));
    let room: Option<String> = sqlx::query_scalar(
        "SELECT room FROM markoff.sensors WHERE gateway_id = 'gw-a' AND sensor_id = 0",
    )
    .fetch_one(&mut adm)
    .await
    .unwrap();
    assert_eq!(room, None);
    assert_eq!(
        central_cursor(&mut gw, &a.id, Stream::Metadata)
            .await
            .unwrap(),
        2
    );

    // Sensors with metadata show in the latest values before any reading arrives.
    let keys: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT key, seq FROM markoff.latest_readings WHERE gateway_id = 'gw-a' ORDER BY 1",
    )
    .fetch_all(&mut adm)
    .await
    .unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|(_, seq)| seq.is_none()));
}

// === security ===

#[tokio::test]
async fn a_gateway_cannot_read_or_write_another_buildings_rows() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let a = db.gateway("gw-a", "house-a").await;
    let b = db.gateway("gw-b", "house-b").await;
    let a2 = db.gateway("gw-a2", "house-a").await;
    let mut ca = db.connect_as(&a).await;
    let mut cb = db.connect_as(&b).await;
    let mut ca2 = db.connect_as(&a2).await;
    let mut adm = db.admin().await;
    for (c, gw) in [(&mut ca, &a), (&mut cb, &b), (&mut ca2, &a2)] {
        upload_readings(c, &gw.id, &readings(1..=20)).await.unwrap();
        upload_alarm_events(c, &gw.id, &[alarm_event(1, 1, "active-unacked")])
            .await
            .unwrap();
        upsert_metadata(c, &gw.id, &site(), 1).await.unwrap();
        touch_gateway(c, &gw.id).await.unwrap();
    }

    // Reads: its own building only (gw-a2 shares gw-a's building).
    for table in [
        "readings",
        "alarm_events",
        "sensors",
        "sensor_latest",
        "sync_cursors",
    ] {
        let sql = format!(
            "SELECT count(*) FILTER (WHERE gateway_id = 'gw-b'), \
                    count(*) FILTER (WHERE gateway_id = 'gw-a'), \
                    count(*) FILTER (WHERE gateway_id = 'gw-a2') FROM markoff.{table}"
        );
        let (other, own, neighbour): (i64, i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_one(&mut ca)
                .await
                .unwrap();
        assert_eq!(other, 0, "{table}: gw-a sees gw-b's rows");
        assert!(own > 0, "{table}: gw-a does not see its own rows");
        if table == "sync_cursors" {
            assert_eq!(neighbour, 0, "cursors are private to their gateway");
        } else {
            assert!(
                neighbour > 0,
                "{table}: gw-a does not see its building's rows"
            );
        }
    }
    for table in ["buildings", "floors", "rooms", "tenants"] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM markoff.{table} WHERE building_id = 'house-b'"
        )))
        .fetch_one(&mut ca)
        .await
        .unwrap();
        assert_eq!(n, 0, "{table}: gw-a sees house-b");
    }

    // Writes as another gateway: refused by the policies.
    let e = sqlx::query(
        "INSERT INTO markoff.readings (gateway_id, seq, sensor_id, ts, value, quality) \
         VALUES ('gw-b', 100, 1, now(), 1, 0)",
    )
    .execute(&mut ca)
    .await
    .unwrap_err();
    assert_eq!(code(&e), "42501", "{e}");
    let e = upload_readings(&mut ca, &b.id, &readings(21..=30))
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate().as_deref(), Some("42501"), "{e}");
    assert!(!e.is_transient());
    let e = upload_alarm_events(&mut ca, &b.id, &[alarm_event(2, 1, "normal")])
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate().as_deref(), Some("42501"), "{e}");
    assert!(upsert_metadata(&mut ca, &b.id, &site(), 9).await.is_err());
    assert!(touch_gateway(&mut ca, &b.id).await.is_err());
    let e = sqlx::query(
        "UPDATE markoff.sync_cursors SET gateway_id = 'gw-b', stream = 'metadata' \
         WHERE gateway_id = 'gw-a' AND stream = 'readings'",
    )
    .execute(&mut ca)
    .await
    .unwrap_err();
    assert_eq!(code(&e), "42501", "{e}");

    // Updates and deletes of another gateway's rows: nothing visible to change, or no privilege.
    for sql in [
        "UPDATE markoff.sync_cursors SET last_seq = 0 WHERE gateway_id = 'gw-b'",
        "UPDATE markoff.sensors SET name = 'x' WHERE gateway_id = 'gw-b'",
        "UPDATE markoff.sensors SET name = 'x' WHERE gateway_id = 'gw-a2'",
        "UPDATE markoff.sensor_latest SET value = 0 WHERE gateway_id = 'gw-b'",
        "UPDATE markoff.buildings SET name = 'x' WHERE building_id = 'house-b'",
        "DELETE FROM markoff.floors WHERE building_id = 'house-b'",
        "DELETE FROM markoff.rooms WHERE building_id = 'house-b'",
        "DELETE FROM markoff.tenants",
    ] {
        let done = sqlx::query(sql).execute(&mut ca).await.unwrap();
        if sql.contains("tenants") {
            // Its own building's tenants are its to replace; house-b's stay.
            continue;
        }
        assert_eq!(done.rows_affected(), 0, "{sql}");
    }
    for sql in [
        "DELETE FROM markoff.readings WHERE gateway_id = 'gw-b'",
        "UPDATE markoff.readings SET value = 0 WHERE gateway_id = 'gw-b'",
        "DELETE FROM markoff.alarm_events",
        "DELETE FROM markoff.sync_cursors WHERE gateway_id = 'gw-b'",
        "DELETE FROM markoff.sensors WHERE gateway_id = 'gw-b'",
        "SELECT * FROM markoff.gateways",
        "SELECT * FROM markoff.readings_default",
        "SELECT * FROM markoff.gateway_health",
        "SELECT * FROM markoff.latest_readings",
        "UPDATE markoff.buildings SET building_id = 'x'",
        "ALTER TABLE markoff.readings DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE markoff.readings NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY central ON markoff.readings",
        "CREATE TABLE markoff.mine (x int)",
        "CREATE ROLE mallory LOGIN",
        "SET ROLE postgres",
        "SELECT markoff.ensure_partitions(1)",
    ] {
        let e = sqlx::query(sql).execute(&mut ca).await.unwrap_err();
        assert_eq!(code(&e), "42501", "{sql}: {e}");
    }
    // COPY bypasses row-level security, so PostgreSQL refuses it to a gateway role.
    let e = raw_copy_readings(&mut ca, &a.id, &readings(100..=101))
        .await
        .unwrap_err();
    assert!(
        matches!(e.sqlstate().as_deref(), Some("0A000" | "42501")),
        "{e}"
    );

    // Everything of gw-b is as it was.
    assert_eq!(reading_stats(&mut adm, &b.id).await, (20, 1, 20));
    let (cursor, tenants, floors): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT last_seq FROM markoff.sync_cursors \
                 WHERE gateway_id = 'gw-b' AND stream = 'readings'), \
                (SELECT count(*) FROM markoff.tenants WHERE building_id = 'house-b'), \
                (SELECT count(*) FROM markoff.floors WHERE building_id = 'house-b')",
    )
    .fetch_one(&mut adm)
    .await
    .unwrap();
    assert_eq!((cursor, tenants, floors), (20, 1, 2));
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT name FROM markoff.sensors WHERE gateway_id IN ('gw-b', 'gw-a2')",
    )
    .fetch_all(&mut adm)
    .await
    .unwrap();
    assert!(!names.contains(&"x".to_owned()), "{names:?}");
}

// === partitions ===

#[tokio::test]
async fn partitions_take_readings_by_month_and_maintenance_is_idempotent() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let a = db.gateway("gw-a", "house-1").await;
    let mut gw = db.connect_as(&a).await;
    let mut adm = db.admin().await;
    assert_eq!(admin::ensure_partitions(&mut adm, 3).await.unwrap(), 0);
    assert_eq!(admin::ensure_partitions(&mut adm, 3).await.unwrap(), 0);

    // Five months ahead: past the prepared partitions, like 1990 and 2100.
    let (ahead_ms, ahead_part, now_ms, now_part): (i64, String, i64, String) = sqlx::query_as(
        "WITH m AS (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AS m) \
         SELECT (extract(epoch FROM (m + interval '5 months 3 days') AT TIME ZONE 'UTC') * 1000)::int8, \
                'markoff.readings_' || to_char(m + interval '5 months', 'YYYY_MM'), \
                (extract(epoch FROM now()) * 1000)::int8, \
                'markoff.readings_' || to_char(m, 'YYYY_MM') \
         FROM m",
    )
    .fetch_one(&mut adm)
    .await
    .unwrap();
    let at = |seq: i64, ts_ms: i64| ReadingRow {
        seq,
        sensor_id: 1,
        ts_ms,
        value: Some(1.0),
        quality: 0,
    };
    let rows = [
        at(1, 631_152_000_000),   // 1990-01-01
        at(2, 4_102_444_800_000), // 2100-01-01
        at(3, ahead_ms),
        at(4, now_ms),
    ];
    upload_readings(&mut gw, &a.id, &rows).await.unwrap();
    let where_is = async |c: &mut PgConnection| -> Vec<String> {
        sqlx::query_scalar("SELECT tableoid::regclass::text FROM markoff.readings ORDER BY seq")
            .fetch_all(c)
            .await
            .unwrap()
    };
    let d = "markoff.readings_default".to_owned();
    assert_eq!(
        where_is(&mut adm).await,
        [d.clone(), d.clone(), d.clone(), now_part.clone()]
    );

    // Preparing six months ahead creates months 4..=6 and moves the row of month 5 out of the
    // default partition; again, nothing.
    assert_eq!(admin::ensure_partitions(&mut adm, 6).await.unwrap(), 3);
    assert_eq!(
        where_is(&mut adm).await,
        [d.clone(), d, ahead_part, now_part]
    );
    assert_eq!(admin::ensure_partitions(&mut adm, 6).await.unwrap(), 0);
    assert_eq!(reading_stats(&mut adm, &a.id).await, (4, 1, 4));
}

#[tokio::test]
async fn password_verifiers_match_what_postgres_computes() {
    let Some(db) = TestDb::empty().await else {
        return;
    };
    let mut c = db.admin().await;
    let role = format!("{}_scram", db.name);
    let password = "correct-horse-battery-staple";
    c.execute(sqlx::AssertSqlSafe(format!(
        "SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} PASSWORD '{password}'"
    )))
    .await
    .unwrap();
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(&role)
        .fetch_one(&mut c)
        .await
        .unwrap();
    // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
    let salt_b64 = stored.split(['$', ':']).nth(2).unwrap();
    let salt = decode_base64(salt_b64);
    let ours = admin::password_verifier(&admin::Password::new(password), &salt);
    assert_eq!(ours, stored);
}

/// Standard base64 with padding (test helper; the tests crate has no base64 dependency).
fn decode_base64(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for ch in s.bytes().filter(|&b| b != b'=') {
        let v = ALPHABET.iter().position(|&a| a == ch).unwrap() as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

// === the markoff-central binary ===

/// `markoff-central` beside the test executable, or `$MARKOFF_CENTRAL_BIN`.
fn central_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MARKOFF_CENTRAL_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    for dir in exe.ancestors().skip(1) {
        let candidate = dir.join("markoff-central");
        if candidate.is_file() {
            return candidate;
        }
        if dir.file_name().is_some_and(|n| n == "target") {
            break;
        }
    }
    panic!("markoff-central not found; build it with cargo build -p markoff-cloud-sync");
}

/// Runs `markoff-central ARGS`; returns (exit code, stdout, stderr).
async fn central(args: &[&str]) -> (i32, String, String) {
    central_with_credentials(args, None).await
}

/// Runs `markoff-central ARGS` with `$CREDENTIALS_DIRECTORY` set to `credentials` (as systemd
/// sets it for a unit with `LoadCredential=`), or unset.
async fn central_with_credentials(
    args: &[&str],
    credentials: Option<&Path>,
) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(central_bin());
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("CREDENTIALS_DIRECTORY");
    if let Some(dir) = credentials {
        cmd.env("CREDENTIALS_DIRECTORY", dir);
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The value of `key = "..."` in the printed TOML.
fn toml_value(out: &str, key: &str) -> String {
    let prefix = format!("{key} = \"");
    let line = out
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {key} in {out}"));
    line[prefix.len()..line.len() - 1].to_owned()
}

/// `maintain --keep-months N` drops the monthly readings partitions older than N months before
/// the current one, with their readings, and keeps the rest.
#[tokio::test]
async fn maintain_drops_the_months_older_than_those_kept() {
    let Some(db) = TestDb::empty().await else {
        return;
    };
    let url = db.url();
    let (code, out, err) = central(&["--database-url", &url, "migrate"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let mut c = db.admin().await;
    // Fourteen months back, and a reading in the oldest month and in the one 12 months back.
    sqlx::query("SELECT markoff.ensure_partitions(0, 14)")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO markoff.readings (gateway_id, seq, sensor_id, ts, value, quality) \
         SELECT 'gw-old', m, 1, (date_trunc('month', now() AT TIME ZONE 'UTC') \
                - make_interval(months => m) + interval '1 day') AT TIME ZONE 'UTC', 1, 0 \
         FROM unnest(ARRAY[14, 12]) m",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let months = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'markoff.readings'::regclass";
    let before: i64 = sqlx::query_scalar(months).fetch_one(&mut c).await.unwrap();

    assert_eq!(
        central(&["--database-url", &url, "maintain", "--keep-months", "0"])
            .await
            .0,
        64
    );
    let (code, out, err) =
        central(&["--database-url", &url, "maintain", "--keep-months", "12"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("partitions dropped: 2"), "{out}");
    let after: i64 = sqlx::query_scalar(months).fetch_one(&mut c).await.unwrap();
    assert_eq!(after, before - 2);
    let kept: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM markoff.readings WHERE gateway_id = 'gw-old' ORDER BY seq",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(
        kept,
        vec![12],
        "the reading 14 months back is gone, 12 back stays"
    );
    let (code, out, err) =
        central(&["--database-url", &url, "maintain", "--keep-months", "12"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("partitions dropped: 0"), "{out}");
}

#[tokio::test]
async fn markoff_central_migrates_provisions_lists_and_removes() {
    let Some(db) = TestDb::empty().await else {
        return;
    };
    let url = db.url();
    for _ in 0..2 {
        let (code, out, err) = central(&["--database-url", &url, "migrate"]).await;
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, out, err) =
        central(&["--database-url", &url, "maintain", "--months-ahead", "4"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("partitions created: 1"), "{out}");

    let role = format!("{}_cli", db.name);
    let (code, out, err) = central(&[
        "--database-url",
        &url,
        "add-gateway",
        "gw-cli",
        "--building",
        "house-cli",
        "--role",
        &role,
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let gw_url = toml_value(&out, "url");
    assert_eq!(toml_value(&out, "id"), "gw-cli");
    assert!(out.contains("[gateway]") && out.contains("[sync]"), "{out}");
    assert!(
        out.contains("password_credential = \"central-password\""),
        "{out}"
    );
    assert!(
        gw_url.starts_with(&format!("postgres://{role}@")),
        "{gw_url}"
    );
    let password = out.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert_eq!(password.len(), 32, "{out}");
    let toml_part = &out[..out.rfind(password).unwrap()];
    assert!(
        !toml_part.contains(password),
        "password inside the TOML: {out}"
    );
    assert!(!err.contains(password), "password on stderr");

    // The printed settings work: connect with them and upload.
    let opts = PgConnectOptions::from_str(&gw_url)
        .unwrap()
        .password(password);
    let mut gw = PgConnection::connect_with(&opts).await.unwrap();
    touch_gateway(&mut gw, "gw-cli").await.unwrap();
    upload_readings(&mut gw, "gw-cli", &readings(1..=10))
        .await
        .unwrap();
    gw.close().await.unwrap();

    // The password is stored as a SCRAM verifier, never in clear.
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(&role)
        .fetch_one(&mut db.admin().await)
        .await
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");

    let (code, out, err) = central(&[
        "--database-url",
        &url,
        "add-gateway",
        "gw-cli",
        "--building",
        "x",
        "--role",
        &format!("{role}2"),
    ])
    .await;
    assert_eq!(code, 1, "adding twice: {out}{err}");
    assert!(err.contains("already exists"), "{err}");

    let (code, out, err) = central(&["--database-url", &url, "gateways"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let line = out.lines().find(|l| l.starts_with("gw-cli ")).unwrap();
    assert!(line.contains("house-cli"), "{out}");
    assert!(out.starts_with("GATEWAY"), "{out}");

    let (code, out, err) = central(&["--database-url", &url, "remove-gateway", "gw-cli"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(PgConnection::connect_with(&opts).await.is_err());
    let (_, out, _) = central(&["--database-url", &url, "gateways"]).await;
    assert!(out.contains("gw-cli (removed)"), "{out}");
    assert_eq!(reading_stats(&mut db.admin().await, "gw-cli").await.0, 10);
    let (code, out, err) = central(&[
        "--database-url",
        &url,
        "remove-gateway",
        "gw-cli",
        "--purge",
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(reading_stats(&mut db.admin().await, "gw-cli").await.0, 0);
    let (code, _, err) = central(&["--database-url", &url, "remove-gateway", "gw-cli"]).await;
    assert_eq!(code, 1, "{err}");

    // Exit codes: usage 64, unreachable 69.
    assert_eq!(central(&["frobnicate"]).await.0, 64);
    assert_eq!(central(&["migrate"]).await.0, 64);
    assert_eq!(central(&["maintain", "--months-ahead", "x"]).await.0, 64);
    let (code, _, err) = central(&[
        "--database-url",
        "postgres://postgres@127.0.0.1:1/nowhere",
        "migrate",
    ])
    .await;
    assert_eq!(code, 69, "{err}");
    assert_eq!(central(&["--help"]).await.0, 0);
}

/// `--password-credential`, as the packaged maintenance unit runs `maintain`: the password comes
/// from a file of `$CREDENTIALS_DIRECTORY`; a missing or empty one is a configuration error
/// (exit 78) that says where the credential belongs and never connects.
#[tokio::test]
async fn markoff_central_takes_the_password_from_a_credential() {
    let Some(db) = TestDb::empty().await else {
        return;
    };
    let url = db.url();
    let (code, out, err) = central(&["--database-url", &url, "migrate"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let args = [
        "--database-url",
        url.as_str(),
        "--password-credential",
        "owner-password",
        "maintain",
    ];
    let creds = tempfile::tempdir().unwrap();

    let (code, _, err) = central_with_credentials(&args, None).await;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("$CREDENTIALS_DIRECTORY is not set"), "{err}");

    let (code, _, err) = central_with_credentials(&args, Some(creds.path())).await;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("/etc/markoff/central-maintain-credentials/owner-password"),
        "{err}"
    );

    let file = creds.path().join("markoff_owner-password");
    std::fs::write(&file, "\n").unwrap();
    let (code, _, err) = central_with_credentials(&args, Some(creds.path())).await;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("credential owner-password is empty"), "{err}");

    // The test server trusts loopback, so this shows the credential read and the connection
    // made with it, not the server checking the password.
    std::fs::write(&file, "owner-secret\n").unwrap();
    let (code, out, err) = central_with_credentials(&args, Some(creds.path())).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("readings partitions created: 0"), "{out}");
    assert!(!err.contains("owner-secret") && !out.contains("owner-secret"));
}

// === the daily rollup (version 12) ===

const DAY_MS: i64 = 86_400_000;

/// The start of the current UTC day, ms.
fn today_ms() -> i64 {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    now - now.rem_euclid(DAY_MS)
}

/// Readings `seqs` of sensors 0..4, one every 7 minutes from `start` (ms); every fifth has no
/// value.
fn readings_from(start: i64, seqs: std::ops::RangeInclusive<i64>, first: i64) -> Vec<ReadingRow> {
    seqs.map(|seq| ReadingRow {
        seq,
        sensor_id: seq % 4,
        ts_ms: start + (seq - first) * 420_000,
        value: (seq % 5 != 0).then(|| seq as f64 / 4.0),
        quality: if seq % 5 == 0 { 1 } else { 0 },
    })
    .collect()
}

/// `markoff.readings_1d` of a gateway next to the same aggregates per UTC day computed from its
/// readings, for the days before `rollup_state.through`: (daily rows, rows that differ).
async fn daily_differences(c: &mut PgConnection, gw: &str) -> (i64, i64) {
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM markoff.readings_1d WHERE gateway_id = $1")
            .bind(gw)
            .fetch_one(&mut *c)
            .await
            .unwrap();
    let differ: i64 = sqlx::query_scalar(
        "WITH truth AS ( \
             SELECT sensor_id, (ts AT TIME ZONE 'UTC')::date AS day, count(value)::int8 AS n, \
                    coalesce(sum(value), 0) AS sum, min(value) AS min, max(value) AS max, \
                    (count(*) - count(value))::int8 AS bad \
             FROM markoff.readings WHERE gateway_id = $1 \
               AND ts < (SELECT through FROM markoff.rollup_state \
                         WHERE rollup = 'readings_1d')::timestamp AT TIME ZONE 'UTC' \
             GROUP BY 1, 2), \
         roll AS (SELECT sensor_id, day, n, sum, min, max, bad FROM markoff.readings_1d \
                  WHERE gateway_id = $1) \
         SELECT count(*) FROM ((TABLE truth EXCEPT TABLE roll) UNION ALL (TABLE roll EXCEPT TABLE truth)) d",
    )
    .bind(gw)
    .fetch_one(&mut *c)
    .await
    .unwrap();
    (rows, differ)
}

async fn pending(c: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM markoff.readings_1d_pending")
        .fetch_one(c)
        .await
        .unwrap()
}

/// `maintain`'s daily rollup: the days that ended, from the 10-minute rollup the upload keeps;
/// nothing again on a second run; readings that arrive late for a past day (also while the
/// rollup runs) are marked by the upload and rolled up again by the next run; the 10-minute
/// rows of rolled-up days can be trimmed; gateways cannot read the daily rollup or run it.
#[tokio::test]
async fn the_daily_rollup_is_filled_incrementally_and_counts_late_readings() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let a = db.gateway("gw-day", "house-1").await;
    let mut gw = db.connect_as(&a).await;
    let mut adm = db.admin().await;
    let today = today_ms();
    // Five past days and today up to now, in batches as a gateway sends them.
    let start = today - 5 * DAY_MS;
    let n = (i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
        - start)
        / 420_000;
    let all = readings_from(start, 1..=n, 1);
    for batch in all.chunks(300) {
        upload_readings(&mut gw, &a.id, batch).await.unwrap();
    }
    assert!(pending(&mut adm).await > 0, "past days were marked");

    let r = admin::rollup_daily(&mut adm, admin::ROLLUP_WAIT)
        .await
        .unwrap();
    assert!(!r.waited_out);
    let today_date: String = sqlx::query_scalar("SELECT (now() AT TIME ZONE 'UTC')::date::text")
        .fetch_one(&mut adm)
        .await
        .unwrap();
    assert_eq!(r.through, today_date);
    let (rows, differ) = daily_differences(&mut adm, &a.id).await;
    assert_eq!(rows, 5 * 4, "five days of four sensors");
    assert_eq!(r.rows, rows);
    assert_eq!(differ, 0, "the daily rollup and the readings disagree");
    assert_eq!(pending(&mut adm).await, 0);
    // A second run finds nothing to do.
    let again = admin::rollup_daily(&mut adm, admin::ROLLUP_WAIT)
        .await
        .unwrap();
    assert_eq!(again.rows, 0);

    // Late readings for three days ago: marked by the upload, not in the daily rollup yet.
    let mut seq = n;
    let late = readings_from(today - 3 * DAY_MS + 3_600_000, seq + 1..=seq + 50, seq + 1);
    seq += 50;
    upload_readings(&mut gw, &a.id, &late).await.unwrap();
    let marked: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT day::text FROM markoff.readings_1d_pending WHERE gateway_id = $1",
    )
    .bind(&a.id)
    .fetch_all(&mut adm)
    .await
    .unwrap();
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert!(daily_differences(&mut adm, &a.id).await.1 > 0);
    let r = admin::rollup_daily(&mut adm, admin::ROLLUP_WAIT)
        .await
        .unwrap();
    assert_eq!(r.rows, 4, "the late day's four sensors, nothing else");
    assert_eq!(daily_differences(&mut adm, &a.id).await, (20, 0));
    assert_eq!(pending(&mut adm).await, 0);

    // Late readings arriving while the rollup runs again and again: none is lost.
    let late: Vec<ReadingRow> = (0..20)
        .flat_map(|k| {
            let first = seq + 1 + k * 30;
            readings_from(
                today - (1 + k % 5) * DAY_MS + 7_200_000 + k * 1000,
                first..=first + 29,
                first,
            )
        })
        .collect();
    let uploader = {
        let mut gw = db.connect_as(&a).await;
        let id = a.id.clone();
        tokio::spawn(async move {
            for batch in late.chunks(30) {
                upload_readings(&mut gw, &id, batch).await.unwrap();
            }
        })
    };
    let mut runs = 0;
    while !uploader.is_finished() {
        admin::rollup_daily(&mut adm, admin::ROLLUP_WAIT)
            .await
            .unwrap();
        runs += 1;
    }
    uploader.await.unwrap();
    admin::rollup_daily(&mut adm, admin::ROLLUP_WAIT)
        .await
        .unwrap();
    assert!(runs >= 1);
    assert_eq!(daily_differences(&mut adm, &a.id).await, (20, 0));
    assert_eq!(pending(&mut adm).await, 0);

    // Trimming the 10-minute rollup keeps the days the daily rollup does not hold.
    let deleted: i64 =
        sqlx::query_scalar("SELECT markoff.trim_10m($1, (now() AT TIME ZONE 'UTC')::date - 2)")
            .bind(&a.id)
            .fetch_one(&mut adm)
            .await
            .unwrap();
    assert!(deleted > 0);
    let left: Option<String> = sqlx::query_scalar(
        "SELECT min((bucket AT TIME ZONE 'UTC')::date)::text FROM markoff.readings_10m \
         WHERE gateway_id = $1",
    )
    .bind(&a.id)
    .fetch_one(&mut adm)
    .await
    .unwrap();
    let two_days_ago: String =
        sqlx::query_scalar("SELECT ((now() AT TIME ZONE 'UTC')::date - 2)::text")
            .fetch_one(&mut adm)
            .await
            .unwrap();
    assert_eq!(left.as_deref(), Some(two_days_ago.as_str()));
    assert_eq!(daily_differences(&mut adm, &a.id).await, (20, 0));

    // Gateways (this one and another building's) have no privilege on the daily rollup.
    let b = db.gateway("gw-else", "house-2").await;
    let mut other = db.connect_as(&b).await;
    for c in [&mut gw, &mut other] {
        for sql in [
            "SELECT count(*) FROM markoff.readings_1d",
            "SELECT count(*) FROM markoff.readings_1d_pending",
            "SELECT count(*) FROM markoff.rollup_state",
            "SELECT markoff.rollup_1d('gw-day', date '2020-01-01', date '2020-01-02')",
            "SELECT markoff.trim_10m('gw-day', date '2030-01-01')",
            "INSERT INTO markoff.readings_1d_pending VALUES ('gw-day', date '2020-01-01', '1')",
        ] {
            let err = sqlx::query(sql).execute(&mut *c).await.unwrap_err();
            assert_eq!(code(&err), "42501", "{sql}");
        }
    }
}
