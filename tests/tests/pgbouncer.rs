//! Sync through a real PgBouncer in transaction pooling mode (the packaged configuration,
//! `packaging/pgbouncer/markoff-central.ini`, with a port and pool size of the test's own), in
//! front of a real PostgreSQL: the upload protocol from several clients of one role sharing one
//! server connection, and the real `markoff` binary syncing through it while it is killed with
//! SIGKILL. Build the binary first: `cargo build -p markoff`.
//!
//! What must hold: the central rows of a gateway are exactly its local rows, none missing and
//! none twice; no call fails because of state the pooler moved between clients (a named
//! prepared statement, a session setting, a temporary table).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use markoff_cloud_sync::{GatewayKey, OfficeRoleKind, ReadingRow, Stream};
use markoff_tests::pg::{CentralReading, PgTestDb};
use markoff_tests::pgbouncer::PgBouncer;
use markoff_tests::services::require_postgres;
use markoff_tests::{TempGateway, assert_eventually, db};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

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

fn local_cursor(path: &Path) -> i64 {
    use rusqlite::OptionalExtension as _;
    db::open_read_only(path)
        .query_row(
            "SELECT last_seq FROM sync_cursor WHERE stream = 'readings'",
            [],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
        .unwrap_or(0)
}

async fn connect_as(addr: &str, db: &str, role: &str, password: &str) -> PgConnection {
    let (host, port) = addr.rsplit_once(':').unwrap();
    // The options the gateway sends (sqlx's defaults plus `options`), which the packaged
    // configuration must accept.
    let opts = PgConnectOptions::new_without_pgpass()
        .host(host)
        .port(port.parse().unwrap())
        .username(role)
        .password(password)
        .database(db)
        .options([("statement_timeout", "5000")]);
    PgConnection::connect_with(&opts)
        .await
        .unwrap_or_else(|e| panic!("cannot log in as {role} through PgBouncer at {addr}: {e}"))
}

fn batch(from: i64, n: i64) -> Vec<ReadingRow> {
    (from..from + n)
        .map(|seq| ReadingRow {
            seq,
            sensor_id: seq % 7,
            ts_ms: 1_700_000_000_000 + seq * 100,
            value: Some(seq as f64 / 4.0),
            quality: 0,
        })
        .collect()
}

/// Three connections of one gateway role share PgBouncer's single server connection of that
/// role's pool; their calls interleave transaction by transaction. With named prepared
/// statements (sqlx's default) the second client's first statement would collide with the
/// first's on that connection; with session state, one client's would leak into the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_of_one_role_share_a_server_connection_and_every_call_works() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("pgbshare").await;
    let Some(bouncer) = PgBouncer::start(&pg, 1).await else {
        return;
    };
    let id = "pgb-share";
    let creds = pg.add_gateway(id, "pgb-building").await;
    let pw = creds.password.expose().to_owned();
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(connect_as(&bouncer.addr(), pg.name(), &creds.role, &pw).await);
    }
    let mut next = 1;
    for round in 0..30 {
        let c = &mut conns[round % 3];
        let rows = batch(next, 50);
        // A resend of the previous batch first: skipped whole.
        if next > 1 {
            let again = markoff_cloud_sync::upload_readings(c, id, &batch(next - 50, 50))
                .await
                .unwrap_or_else(|e| panic!("round {round}: resend failed: {e}"));
            assert_eq!(again.inserted, 0, "round {round}: a resend inserted rows");
        }
        let out = markoff_cloud_sync::upload_readings(c, id, &rows)
            .await
            .unwrap_or_else(|e| panic!("round {round}: upload failed: {e}\n{}", bouncer.log()));
        assert_eq!(out.inserted, 50, "round {round}");
        next += 50;
        let cursor = markoff_cloud_sync::central_cursor(c, id, Stream::Readings)
            .await
            .unwrap();
        assert_eq!(cursor, next - 1, "round {round}");
        markoff_cloud_sync::touch_gateway(c, id).await.unwrap();
        markoff_cloud_sync::report_head(c, id, Stream::Readings, next + 10)
            .await
            .unwrap();
    }
    let central = pg.readings(id, next).await;
    let want: Vec<CentralReading> = batch(1, next - 1)
        .into_iter()
        .map(|r| (r.seq, r.sensor_id, r.ts_ms, r.value, r.quality))
        .collect();
    assert_eq!(central, want, "central rows differ from what was sent");
    let log = bouncer.log();
    assert!(
        log.contains(&format!("user={}", creds.role)),
        "the logins did not go through PgBouncer:\n{log}"
    );
}

/// Two gateways logging in as the one ingest role (the recommended deployment) share PgBouncer's
/// single server connection, transaction by transaction, each proving its key. Neither can act
/// as the other: with the other's id and its own key, with no key or with a made-up key, the
/// centre refuses (SQLSTATE 42501) and writes nothing; a proof lasts for its transaction only,
/// and a gateway reads none of the other's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_of_one_ingest_role_share_a_server_connection_and_cannot_act_as_each_other() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("pgbingest").await;
    let Some(bouncer) = PgBouncer::start(&pg, 1).await else {
        return;
    };
    let a = pg.add_gateway("pgb-a", "pgb-building-a").await;
    let b = pg.add_gateway("pgb-b", "pgb-building-b").await;
    let ingest = pg.add_office_role(OfficeRoleKind::Ingest).await;
    let pw = std::fs::read_to_string(pg.password_file(&ingest)).unwrap();
    let mut ca = connect_as(&bouncer.addr(), pg.name(), &ingest, &pw).await;
    let mut cb = connect_as(&bouncer.addr(), pg.name(), &ingest, &pw).await;
    let ka = GatewayKey::new("pgb-a", Some(a.key.expose().to_owned()));
    let kb = GatewayKey::new("pgb-b", Some(b.key.expose().to_owned()));
    for round in 0..10 {
        let from = 1 + round * 20;
        let out = markoff_cloud_sync::upload_readings(&mut ca, &ka, &batch(from, 20))
            .await
            .unwrap_or_else(|e| panic!("round {round}: a's upload failed: {e}\n{}", bouncer.log()));
        assert_eq!(out.inserted, 20, "round {round}");
        let out = markoff_cloud_sync::upload_readings(&mut cb, &kb, &batch(from, 20))
            .await
            .unwrap_or_else(|e| panic!("round {round}: b's upload failed: {e}\n{}", bouncer.log()));
        assert_eq!(out.inserted, 20, "round {round}");
        markoff_cloud_sync::touch_gateway(&mut ca, &ka)
            .await
            .unwrap();
        markoff_cloud_sync::report_head(&mut cb, &kb, Stream::Readings, from + 40)
            .await
            .unwrap();
    }

    // b as a: its own key, no key, a made-up key.
    let forged = [
        GatewayKey::new("pgb-a", Some(b.key.expose().to_owned())),
        GatewayKey::new("pgb-a", None),
        GatewayKey::new("pgb-a", Some("x".repeat(32))),
    ];
    for f in &forged {
        let e = markoff_cloud_sync::upload_readings(&mut cb, f, &batch(1000, 5))
            .await
            .expect_err("b uploaded as a");
        assert_eq!(e.sqlstate().as_deref(), Some("42501"), "{f:?}: {e}");
        let e = markoff_cloud_sync::touch_gateway(&mut cb, f)
            .await
            .expect_err("b stamped a's contact");
        assert_eq!(e.sqlstate().as_deref(), Some("42501"), "{f:?}: {e}");
    }
    // Without a proof in its transaction, the ingest role sees no cursor (a's is there).
    assert_eq!(
        markoff_cloud_sync::central_cursor(&mut cb, "pgb-a", Stream::Readings)
            .await
            .unwrap(),
        0
    );
    // Proved as b, it reads b's rows and none of a's.
    let mut tx = sqlx::Connection::begin(&mut cb).await.unwrap();
    sqlx::query("SELECT markoff.prove_gateway($1, $2)")
        .persistent(false)
        .bind("pgb-b")
        .bind(b.key.expose())
        .execute(&mut *tx)
        .await
        .unwrap();
    let seen: Vec<(String, i64)> =
        sqlx::query_as("SELECT gateway_id, count(*) FROM markoff.readings GROUP BY 1 ORDER BY 1")
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(seen, vec![("pgb-b".to_owned(), 200)]);

    let want: Vec<CentralReading> = batch(1, 200)
        .into_iter()
        .map(|r| (r.seq, r.sensor_id, r.ts_ms, r.value, r.quality))
        .collect();
    assert_eq!(pg.readings("pgb-a", 2000).await, want, "a's central rows");
    assert_eq!(pg.readings("pgb-b", 2000).await, want, "b's central rows");
    let log = bouncer.log();
    assert!(
        log.contains(&format!("user={ingest}")),
        "the logins did not go through PgBouncer:\n{log}"
    );
    let mut admin = pg.admin().await;
    let servers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname = current_database()",
    )
    .bind(&ingest)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        servers <= 1,
        "{servers} server connections for a pool of one"
    );
}

/// The real gateway syncing through PgBouncer as the ingest role with its key (one server
/// connection for its three streams), killed with SIGKILL at random moments: afterwards the
/// centre holds exactly its local rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_syncs_exactly_once_through_pgbouncer_across_kill9() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("pgbkill").await;
    let Some(bouncer) = PgBouncer::start(&pg, 1).await else {
        return;
    };
    let id = "pgb-kill9";
    let creds = pg.add_gateway(id, "pgb-kill-building").await;
    let ingest = pg.add_office_role(OfficeRoleKind::Ingest).await;
    let key_file = pg.password_file(&format!("{id}-key"));
    std::fs::write(&key_file, creds.key.expose()).unwrap();
    let sync = format!(
        "{}key_file = {}\n",
        pg.sync_toml(&ingest, &bouncer.addr(), 50),
        markoff_tests::gateway::toml_str(&key_file.display().to_string())
    );
    let builder = TempGateway::builder()
        .id(id)
        .simulator(2, 5, ms(50))
        .extra_toml(&sync);
    let mut gw = builder.clone().start().await;
    let path = gw.db_path();
    let mut central = 0;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("seed {seed}");
    for round in 1..=8 {
        assert_eventually!(
            pg.cursor(id, Stream::Readings).await > central,
            patience = Duration::from_secs(30),
            "round {round}: sync through PgBouncer does not progress past {central}:\n{}\n{}",
            gw.log(),
            bouncer.log()
        );
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(ms(seed % 300)).await;
        gw.kill9();
        central = pg.cursor(id, Stream::Readings).await;
        let local = local_cursor(&path);
        assert!(
            local <= central,
            "round {round}: the local cursor {local} is ahead of the central {central}"
        );
        gw.restart().await;
    }
    gw.kill9();
    gw.write_config_from(builder.no_simulator());
    gw.restart().await;
    let last = db::max_seq(&db::open_read_only(&path));
    assert_eventually!(
        pg.cursor(id, Stream::Readings).await == last,
        patience = Duration::from_secs(60),
        "the backlog did not drain to {last} through PgBouncer:\n{}\n{}",
        gw.log(),
        bouncer.log()
    );
    let central_rows = pg.readings(id, last).await;
    let local_rows = local_readings(&path, last);
    assert_eq!(central_rows.len(), local_rows.len(), "row counts differ");
    assert!(
        central_rows == local_rows,
        "central rows differ from local rows"
    );
    let log = gw.log();
    assert!(
        !log.contains("prepared statement") && !log.contains("panicked"),
        "{log}"
    );
    let blog = bouncer.log();
    assert!(blog.contains(&format!("user={ingest}")), "{blog}");
    assert!(!blog.contains("unsupported startup parameter"), "{blog}");
    gw.sigterm();
    assert!(gw.wait_exit(Duration::from_secs(20)).await.success());
}
