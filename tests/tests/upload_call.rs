//! The readings upload as one server-side call (`markoff.upload_readings`, central migration
//! 11), against a real PostgreSQL: exactly once across retries, a batch that follows one still
//! in flight on another connection, and who may call it for which gateway.
//!
//! What must hold: a batch sent again after its commit (the acknowledgement lost) changes
//! nothing; a call whose expected cursor is not the central cursor changes nothing and fails
//! with SQLSTATE 40001 (transient); a batch in flight behind another commits only after it and
//! only if it committed; nobody uploads as a gateway without being it (its own role, or the
//! ingest role with its key), and a refused call writes nothing.

#![allow(clippy::unwrap_used)]

use markoff_cloud_sync::{
    GatewayCredentials, GatewayKey, OfficeRoleKind, ReadingRow, upload_readings,
    upload_readings_after,
};
use markoff_tests::assert_eventually;
use markoff_tests::pg::PgTestDb;
use markoff_tests::services::{postgres_addr, require_postgres};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

fn batch(from: i64, n: i64) -> Vec<ReadingRow> {
    (from..from + n)
        .map(|seq| ReadingRow {
            seq,
            sensor_id: seq % 7,
            // 20 s apart: a batch of 100 spans several 10-minute buckets.
            ts_ms: 1_700_000_000_000 + seq * 20_000,
            value: (seq % 11 != 0).then_some(seq as f64 / 4.0),
            quality: if seq % 11 == 0 { 3 } else { 0 },
        })
        .collect()
}

async fn login(pg: &PgTestDb, role: &str) -> PgConnection {
    let password = std::fs::read_to_string(pg.password_file(role)).unwrap();
    let addr = postgres_addr();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let opts = PgConnectOptions::new_without_pgpass()
        .host(host)
        .port(port.parse().unwrap())
        .username(role)
        .password(&password)
        .database(pg.name());
    PgConnection::connect_with(&opts)
        .await
        .unwrap_or_else(|e| panic!("cannot log in as {role}: {e}"))
}

fn keyed(gw: &GatewayCredentials) -> GatewayKey {
    GatewayKey::new(gw.gateway_id.as_str(), Some(gw.key.expose().to_owned()))
}

/// Everything a gateway's uploads change centrally, summed: readings (count, sum of seqs),
/// rollup (buckets, readings counted, sum of values), latest values (rows, sum of seqs), the
/// cursor.
async fn central_state(admin: &mut PgConnection, gw: &str) -> [i64; 8] {
    let (n, seqs): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), sum(seq)::int8 FROM markoff.readings WHERE gateway_id = $1",
    )
    .bind(gw)
    .fetch_one(&mut *admin)
    .await
    .unwrap();
    // Quarter values: four times their sum is a whole number.
    let (buckets, counted, sum): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT count(*), sum(n + bad)::int8, (sum(sum) * 4)::int8 FROM markoff.readings_10m \
         WHERE gateway_id = $1",
    )
    .bind(gw)
    .fetch_one(&mut *admin)
    .await
    .unwrap();
    let (latest, latest_seqs): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), sum(seq)::int8 FROM markoff.sensor_latest WHERE gateway_id = $1",
    )
    .bind(gw)
    .fetch_one(&mut *admin)
    .await
    .unwrap();
    let cursor: Option<i64> = sqlx::query_scalar(
        "SELECT last_seq FROM markoff.sync_cursors WHERE gateway_id = $1 AND stream = 'readings'",
    )
    .bind(gw)
    .fetch_optional(&mut *admin)
    .await
    .unwrap();
    [
        n,
        seqs.unwrap_or(0),
        buckets,
        counted.unwrap_or(0),
        sum.unwrap_or(0),
        latest,
        latest_seqs.unwrap_or(0),
        cursor.unwrap_or(0),
    ]
}

/// The rollup rows that disagree with the same aggregates computed from the readings.
async fn rollup_differences(admin: &mut PgConnection, gw: &str) -> i64 {
    sqlx::query_scalar(
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
    .fetch_one(admin)
    .await
    .unwrap()
}

/// The function called by hand, as a client that does not go through `markoff_proto` would.
async fn call(
    conn: &mut PgConnection,
    gateway_id: &str,
    key: Option<&str>,
    after: Option<i64>,
    rows: &[ReadingRow],
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT inserted, central_cursor FROM markoff.upload_readings($1, $2, $3, false, \
         $4, $5, $6, $7, $8)",
    )
    .bind(gateway_id)
    .bind(key)
    .bind(after)
    .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| i32::try_from(r.sensor_id).unwrap())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.ts_ms).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.value).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.quality).collect::<Vec<_>>())
    .fetch_one(conn)
    .await
}

fn sqlstate(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()).unwrap_or_default(),
        other => format!("not a database error: {other}"),
    }
}

/// A batch sent again after its commit (the acknowledgement was lost), whole or overlapping,
/// changes nothing; so does a batch whose expected cursor is not the central cursor, behind it
/// or ahead of it, which fails with SQLSTATE 40001 (the uploader retries it from its cursor).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_batch_or_a_wrong_expected_cursor_changes_nothing() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("uploadonce").await;
    let a = pg.add_gateway("up-a", "up-house").await;
    let ingest = pg.add_office_role(OfficeRoleKind::Ingest).await;
    let mut conn = login(&pg, &ingest).await;
    let mut admin = pg.admin().await;
    let ka = keyed(&a);

    let out = upload_readings(&mut conn, &ka, &batch(1, 500))
        .await
        .unwrap();
    assert_eq!(
        (out.inserted, out.skipped, out.central_cursor),
        (500, 0, 500)
    );
    let after_first = central_state(&mut admin, "up-a").await;
    assert_eq!(after_first[0], 500);
    assert_eq!(after_first[3], 500, "the rollup counts every reading once");
    assert_eq!(after_first[7], 500);

    // The same batch again, then one overlapping its end: nothing twice.
    let out = upload_readings(&mut conn, &ka, &batch(1, 500))
        .await
        .unwrap();
    assert_eq!(
        (out.inserted, out.skipped, out.central_cursor),
        (0, 500, 500)
    );
    assert_eq!(central_state(&mut admin, "up-a").await, after_first);
    let out = upload_readings(&mut conn, &ka, &batch(401, 200))
        .await
        .unwrap();
    assert_eq!(
        (out.inserted, out.skipped, out.central_cursor),
        (100, 100, 600)
    );
    let state = central_state(&mut admin, "up-a").await;
    assert_eq!((state[0], state[3], state[7]), (600, 600, 600));

    // Expected cursors that are not the central one (600): behind it (a batch in flight behind
    // one that is already there), ahead of it (a batch behind one that never committed).
    for (after, rows) in [
        (500, batch(501, 200)),
        (300, batch(601, 50)),
        (650, batch(651, 50)),
    ] {
        let e = upload_readings_after(&mut conn, &ka, &rows, Some(after))
            .await
            .expect_err("an upload after the wrong cursor committed");
        assert_eq!(e.sqlstate().as_deref(), Some("40001"), "after {after}: {e}");
        assert!(e.is_transient(), "after {after}: {e}");
        assert_eq!(
            central_state(&mut admin, "up-a").await,
            state,
            "after {after}: something changed"
        );
    }
    // The right one works, and the rollup still matches the readings.
    let out = upload_readings_after(&mut conn, &ka, &batch(601, 100), Some(600))
        .await
        .unwrap();
    assert_eq!(
        (out.inserted, out.skipped, out.central_cursor),
        (100, 0, 700)
    );
    assert_eq!(rollup_differences(&mut admin, "up-a").await, 0);
    let state = central_state(&mut admin, "up-a").await;
    assert_eq!((state[0], state[3], state[5], state[7]), (700, 700, 7, 700));
    // The latest value of each sensor is its newest reading.
    let latest: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT sensor_id, seq FROM markoff.sensor_latest WHERE gateway_id = 'up-a' ORDER BY 1",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let want: Vec<(i32, i64)> = (0..7)
        .map(|s| (s, 700 - (700 - i64::from(s)) % 7))
        .collect();
    assert_eq!(latest, want);
}

/// A batch that follows one still in flight on another connection inserts its rows, then waits
/// for the first to commit, and commits after it; had the first rolled back, the second fails
/// with 40001 and keeps nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_in_flight_behind_another_commits_after_it_and_only_if_it_committed() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("uploadpipe").await;
    let a = pg.add_gateway("pipe-a", "pipe-house").await;
    let ingest = pg.add_office_role(OfficeRoleKind::Ingest).await;
    let mut first = login(&pg, &ingest).await;
    let mut admin = pg.admin().await;
    let ka = keyed(&a);

    for commit_first in [true, false] {
        let cursor = central_state(&mut admin, "pipe-a").await[7];
        let before = central_state(&mut admin, "pipe-a").await;
        // Batch N, held open at the centre: its call ran, its commit has not.
        let mut tx = first.begin().await.unwrap();
        let n = call(
            &mut tx,
            "pipe-a",
            Some(a.key.expose()),
            None,
            &batch(cursor + 1, 1000),
        )
        .await
        .unwrap();
        assert_eq!(n, (1000, cursor + 1000));
        // Batch N+1 on another connection, after N.
        let second_key = ka.clone();
        let mut second = login(&pg, &ingest).await;
        let behind = tokio::spawn(async move {
            upload_readings_after(
                &mut second,
                &second_key,
                &batch(cursor + 1001, 1000),
                Some(cursor + 1000),
            )
            .await
        });
        // It waits for N's cursor row.
        assert_eventually!(
            {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock' \
                       AND query LIKE '%upload_readings(%'",
                )
                .fetch_one(&mut admin)
                .await
                .unwrap();
                waiting == 1
            },
            "the batch behind N does not wait for N's cursor row"
        );
        assert!(!behind.is_finished());
        if commit_first {
            tx.commit().await.unwrap();
            let out = behind.await.unwrap().unwrap();
            assert_eq!(
                (out.inserted, out.skipped, out.central_cursor),
                (1000, 0, cursor + 2000)
            );
            let state = central_state(&mut admin, "pipe-a").await;
            assert_eq!((state[0], state[3], state[7]), (2000, 2000, 2000));
            assert_eq!(rollup_differences(&mut admin, "pipe-a").await, 0);
        } else {
            tx.rollback().await.unwrap();
            let e = behind
                .await
                .unwrap()
                .expect_err("a batch behind one that rolled back committed");
            assert_eq!(e.sqlstate().as_deref(), Some("40001"), "{e}");
            assert_eq!(central_state(&mut admin, "pipe-a").await, before);
        }
    }
}

/// Nobody uploads as a gateway without being it: the ingest role with another gateway's key,
/// a made-up key or none, and another gateway's own role, are refused (42501) on both paths of
/// the call (the one that locks first and the one that inserts first), and nothing is written.
/// The gateway's own role, without a key, and the ingest role with the gateway's key may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_gateway_itself_uploads_as_it() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("uploadwho").await;
    let a = pg.add_gateway("who-a", "who-house-a").await;
    let b = pg.add_gateway("who-b", "who-house-b").await;
    let ingest = pg.add_office_role(OfficeRoleKind::Ingest).await;
    let mut as_ingest = login(&pg, &ingest).await;
    let mut as_b = login(&pg, &b.role).await;
    let mut as_a = login(&pg, &a.role).await;
    let mut admin = pg.admin().await;

    let out = upload_readings(&mut as_a, "who-a", &batch(1, 50))
        .await
        .unwrap();
    assert_eq!(out.inserted, 50);
    let state = central_state(&mut admin, "who-a").await;

    let made_up = "x".repeat(32);
    for after in [None, Some(50)] {
        let refused = [
            (false, Some(b.key.expose()), "the ingest role with b's key"),
            (
                false,
                Some(made_up.as_str()),
                "the ingest role with a made-up key",
            ),
            (false, None, "the ingest role without a key"),
            (true, None, "b's own role"),
        ];
        for (own_role, key, who) in refused {
            let conn = if own_role { &mut as_b } else { &mut as_ingest };
            let e = call(conn, "who-a", key, after, &batch(51, 20))
                .await
                .expect_err(who);
            assert_eq!(sqlstate(&e), "42501", "{who}, after {after:?}: {e}");
        }
        // b's own role with a's key is b all the same.
        let e = call(
            &mut as_b,
            "who-a",
            Some(a.key.expose()),
            after,
            &batch(51, 20),
        )
        .await
        .expect_err("b's role with a's key");
        assert_eq!(sqlstate(&e), "42501", "after {after:?}: {e}");
        assert_eq!(central_state(&mut admin, "who-a").await, state);
    }
    assert_eq!(central_state(&mut admin, "who-b").await[0], 0);

    // a itself: through the ingest role with its key, and as its own role without one.
    let out = upload_readings(&mut as_ingest, &keyed(&a), &batch(51, 20))
        .await
        .unwrap();
    assert_eq!((out.inserted, out.central_cursor), (20, 70));
    let out = upload_readings_after(&mut as_a, "who-a", &batch(71, 20), Some(70))
        .await
        .unwrap();
    assert_eq!((out.inserted, out.central_cursor), (20, 90));
    assert_eq!(rollup_differences(&mut admin, "who-a").await, 0);
}

/// The read-time conversion the upload applies to every row is inlined into the statements
/// that use it (a SQL function PostgreSQL would otherwise call once per reading): declared no
/// less volatile than its body (central migration 13).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_time_conversion_is_inlined_and_exact() {
    if !require_postgres() {
        return;
    }
    let pg = PgTestDb::create("uploadinline").await;
    let mut admin = pg.admin().await;
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN VERBOSE SELECT markoff.ts_of_ms(x) FROM unnest('{0,1}'::int8[]) AS x",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(!plan.contains("ts_of_ms"), "not inlined:\n{plan}");
    // Exact to the millisecond over years 1 to 9999, whatever the session's time zone.
    for zone in ["UTC", "Pacific/Chatham", "America/Sao_Paulo"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET timezone = '{zone}'")))
            .execute(&mut admin)
            .await
            .unwrap();
        for ms in [
            0_i64,
            1,
            999,
            1_700_000_000_123,
            -1,
            -1_500,
            -62_135_596_800_000,
            253_402_300_799_999,
        ] {
            let micros: i64 = sqlx::query_scalar(
                "SELECT (extract(epoch FROM markoff.ts_of_ms($1)) * 1000000)::int8",
            )
            .bind(ms)
            .fetch_one(&mut admin)
            .await
            .unwrap();
            assert_eq!(micros, ms * 1000, "{ms} ms in {zone}");
        }
    }
}
