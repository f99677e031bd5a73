//! Times the office web application (`markoff-central serve`) over a large site: a building of
//! 5,000 sensors among many small ones, a week of per-minute history, alarms.
//!
//! ```sh
//! cargo run --release -p markoff-cloud-sync --example web_bench -- \
//!     postgres://postgres@127.0.0.1/postgres [SENSORS] [HISTORY_SENSORS] [BUILDINGS]
//! ```
//!
//! Creates a scratch database (dropped at the end with its roles), migrates it, provisions
//! `BUILDINGS` gateways (default 100: one with `SENSORS` sensors, default 5,000, the others 20
//! each), uploads one latest reading per sensor and 7 days of per-minute readings for
//! `HISTORY_SENSORS` sensors of the big building (default 50), and 400 alarms; then serves the
//! application in process as its own web role, signs in through the form and times each page
//! and API route over plain HTTP/1.1 (20 requests each, one at a time). It also times a week's
//! history from the 10-minute rollup and from the readings themselves, which tells what it would
//! cost without the rollup when a gateway has many more sensors than are loaded here.

#![allow(clippy::print_stdout)]

use std::time::Duration;

use anyhow::{Context as _, bail};
use markoff_cloud_sync::admin::{self, NewGateway, Password};
use markoff_cloud_sync::web::{self, ServeConfig};
use markoff_cloud_sync::{
    AlarmEventRow, FloorRow, OfficeRoleKind, ReadingRow, RoomRow, SensorMetaRow, SiteMetadata,
    add_office_role, upload_alarm_events, upload_readings, upsert_metadata,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

const PASSWORD: &str = "benchmark-password-1";
const REQUESTS: usize = 20;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1/postgres".into());
    let sensors: i64 = args.get(2).map_or(Ok(5000), |s| s.parse())?;
    let history: i64 = args.get(3).map_or(Ok(50), |s| s.parse())?;
    let buildings: usize = args.get(4).map_or(Ok(100), |s| s.parse())?;
    let db = format!("markoff_webbench_{}", std::process::id());
    let mut root = PgConnection::connect(&url).await.context("connect")?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut root)
        .await?;
    let db_url = replace_db(&url, &db);
    let result = run(&db_url, &db, sensors, history, buildings).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {db} WITH (FORCE)"
    )))
    .execute(&mut root)
    .await?;
    for i in 0..buildings {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP ROLE IF EXISTS {db}_gw{i}"
        )))
        .execute(&mut root)
        .await?;
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {db}_web")))
        .execute(&mut root)
        .await?;
    result
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn replace_db(url: &str, db: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    format!("{base}/{db}")
}

/// A site of `n` sensors: 10 per room, 50 rooms per floor.
fn site(name: &str, n: i64) -> SiteMetadata {
    let rooms = (n + 9) / 10;
    let floors = (rooms + 49) / 50;
    SiteMetadata {
        building_name: Some(name.to_owned()),
        address: Some(format!("{name} street 1")),
        floors: (1..=floors)
            .map(|f| FloorRow {
                id: f.to_string(),
                name: format!("Floor {f}"),
                level: Some(i32::try_from(f).unwrap_or(0)),
                ..FloorRow::default()
            })
            .collect(),
        rooms: (0..rooms)
            .map(|r| RoomRow {
                id: format!("{}{:02}", r / 50 + 1, r % 50),
                floor: Some((r / 50 + 1).to_string()),
                name: format!("Room {}{:02}", r / 50 + 1, r % 50),
                ..RoomRow::default()
            })
            .collect(),
        tenants: Vec::new(),
        sensors: (0..n)
            .map(|i| {
                let r = i / 10;
                let kind = if i % 10 == 0 {
                    "temperature"
                } else {
                    "humidity"
                };
                SensorMetaRow {
                    sensor_id: i + 1,
                    key: format!("f{}.r{}{:02}.s{}", r / 50 + 1, r / 50 + 1, r % 50, i % 10),
                    name: format!("Sensor {i}"),
                    kind: kind.into(),
                    unit: if i % 10 == 0 { "°C" } else { "%RH" }.into(),
                    floor: Some((r / 50 + 1).to_string()),
                    room: Some(format!("{}{:02}", r / 50 + 1, r % 50)),
                    source: "bench".into(),
                }
            })
            .collect(),
    }
}

async fn run(
    db_url: &str,
    db: &str,
    sensors: i64,
    history: i64,
    buildings: usize,
) -> anyhow::Result<()> {
    let mut owner = PgConnection::connect(db_url).await?;
    admin::migrate(&mut owner).await?;
    let t = Instant::now();
    for i in 0..buildings {
        admin::add_gateway(
            &mut owner,
            &NewGateway {
                gateway_id: format!("gw{i}"),
                building_id: format!("b{i}"),
                role: Some(format!("{db}_gw{i}")),
                password: Some(Password::generate()),
            },
        )
        .await?;
        let n = if i == 0 { sensors } else { 20 };
        upsert_metadata(
            &mut owner,
            &format!("gw{i}"),
            &site(&format!("Building {i}"), n),
            1,
        )
        .await?;
        markoff_cloud_sync::touch_gateway(&mut owner, &format!("gw{i}")).await?;
    }
    println!(
        "{buildings} buildings provisioned with metadata in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // History first (older readings, lower seqs), then one latest reading per sensor.
    let now = now_ms();
    let week = 7 * 86_400_000;
    let minutes = week / 60_000;
    let mut seq = 0;
    let t = Instant::now();
    let mut rows = Vec::with_capacity(100_000);
    for m in 0..minutes {
        for s in 1..=history {
            seq += 1;
            // A gap of one hour on day 3, as a gateway outage would leave.
            if (3 * 1440..3 * 1440 + 60).contains(&m) {
                continue;
            }
            rows.push(ReadingRow {
                seq,
                sensor_id: s,
                ts_ms: now - week + m * 60_000,
                value: Some(20.0 + ((m as f64) / 240.0).sin() * 2.0 + s as f64 * 0.01),
                quality: 0,
            });
            if rows.len() == 100_000 {
                upload_readings(&mut owner, "gw0", &rows).await?;
                rows.clear();
            }
        }
    }
    for s in 1..=sensors {
        seq += 1;
        rows.push(ReadingRow {
            seq,
            sensor_id: s,
            ts_ms: now - 1000,
            value: Some(21.5),
            quality: 0,
        });
    }
    upload_readings(&mut owner, "gw0", &rows).await?;
    println!(
        "{seq} readings uploaded in {:.1} s ({history} sensors x 7 days per minute, then one per sensor)",
        t.elapsed().as_secs_f64()
    );
    let events: Vec<AlarmEventRow> = (1..=400)
        .map(|i| AlarmEventRow {
            seq: i,
            ts_ms: now - 3_600_000 + i * 1000,
            alarm_id: i % 200,
            alarm: format!("High/s{}", i % 200),
            rule: "high".into(),
            sensor: Some(format!("f1.r1{:02}.s0", (i % 200) % 50)),
            event: if i > 200 && i % 3 == 0 {
                "cleared"
            } else {
                "raised"
            }
            .into(),
            state: if i > 200 && i % 3 == 0 {
                "normal"
            } else {
                "active_unacked"
            }
            .into(),
            severity: "medium".into(),
            value: Some(30.0),
            message: "high".into(),
            actor: None,
            channel: None,
        })
        .collect();
    upload_alarm_events(&mut owner, "gw0", &events).await?;
    sqlx::raw_sql("VACUUM ANALYZE").execute(&mut owner).await?;

    // The web role, a user, the server in process.
    let role = add_office_role(
        &mut owner,
        &format!("{db}_web"),
        OfficeRoleKind::Web,
        None,
        false,
    )
    .await?;
    web::add_user(&mut owner, "bench", None, PASSWORD, false).await?;
    let opts: PgConnectOptions = db_url.parse()?;
    let opts = opts
        .username(&role.role)
        .password(role.password.as_ref().map_or("", Password::expose));
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(opts)
        .await?;
    let cfg = ServeConfig {
        cookie_secure: false,
        database_url: db_url.to_owned(),
        ..ServeConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web::serve(cfg, pool, listener, async {
        stopped.await.ok();
    }));

    let cookie = login(&addr).await?;
    println!(
        "\nroute (20 requests each, one at a time)           p50 ms   p95 ms   max ms   bytes"
    );
    for path in [
        "/api/buildings".to_owned(),
        "/".to_owned(),
        "/api/buildings/b0".to_owned(),
        "/buildings/b0".to_owned(),
        "/buildings/b0/plans/1.svg".to_owned(),
        "/api/sensors/gw0/1?range=7d".to_owned(),
        "/sensors/gw0/1?range=7d".to_owned(),
        "/sensors/gw0/1/chart.svg?range=7d".to_owned(),
        "/api/sensors/gw0/1?range=24h".to_owned(),
        "/api/alarms/gw0/1".to_owned(),
    ] {
        let mut times = Vec::with_capacity(REQUESTS);
        let mut bytes = 0;
        for _ in 0..REQUESTS {
            let t = Instant::now();
            let (status, _, body) = http(&addr, "GET", &path, &cookie, None).await?;
            times.push(t.elapsed());
            if status != 200 {
                bail!("GET {path}: {status}");
            }
            bytes = body.len();
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{path:<48} {:>8.1} {:>8.1} {:>8.1} {bytes:>7}",
            ms(times[REQUESTS / 2]),
            ms(times[REQUESTS * 95 / 100]),
            ms(times[REQUESTS - 1])
        );
    }
    stop.send(()).ok();
    server.await??;

    // A week of one sensor in 30-minute buckets: from the rollup (what the pages do) and from
    // the readings themselves (a scan of the gateway's week).
    for (what, sql) in [
        (
            "the rollup readings_10m",
            "SELECT date_bin(interval '30 minutes', bucket, timestamptz '2000-01-01'), \
             sum(sum) / nullif(sum(n), 0), min(min), max(max), sum(n) FROM markoff.readings_10m \
             WHERE gateway_id = 'gw0' AND sensor_id = 1 AND bucket >= now() - interval '7 days' \
             GROUP BY 1 ORDER BY 1",
        ),
        (
            "the readings",
            "SELECT date_bin(interval '30 minutes', ts, timestamptz '2000-01-01'), avg(value), \
             min(value), max(value), count(value) FROM markoff.readings \
             WHERE gateway_id = 'gw0' AND sensor_id = 1 AND ts >= now() - interval '7 days' \
             GROUP BY 1 ORDER BY 1",
        ),
    ] {
        let t = Instant::now();
        for _ in 0..5 {
            sqlx::query(sql).fetch_all(&mut owner).await?;
        }
        println!(
            "history query, 7 days of one sensor from {what}: {:.1} ms (the gateway has {seq} \
             readings in the week)",
            t.elapsed().as_secs_f64() * 1000.0 / 5.0
        );
    }
    owner.close().await?;
    Ok(())
}

/// Signs in through the form; returns the `Cookie` header for the session.
async fn login(addr: &str) -> anyhow::Result<String> {
    let (_, headers, body) = http(addr, "GET", "/login", "", None).await?;
    let form_cookie = cookie_of(&headers, "markoff_login").context("no login cookie")?;
    let key = "name=\"csrf\" value=\"";
    let at = body.find(key).context("no csrf field")? + key.len();
    let csrf = &body[at..at + 43];
    let form = format!("login=bench&password={PASSWORD}&csrf={csrf}&next=%2F");
    let cookie = format!("markoff_login={form_cookie}");
    let (status, headers, _) = http(addr, "POST", "/login", &cookie, Some(&form)).await?;
    if status != 303 {
        bail!("login: {status}");
    }
    let session = cookie_of(&headers, "markoff_session").context("no session cookie")?;
    Ok(format!("markoff_session={session}"))
}

fn cookie_of(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// One HTTP/1.1 request on its own connection; (status, headers, body).
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    cookie: &str,
    form: Option<&str>,
) -> anyhow::Result<(u16, Vec<(String, String)>, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !cookie.is_empty() {
        req.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    if let Some(f) = form {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            f.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(form.unwrap_or(""));
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .context("no status")?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok((status, headers, body.to_owned()))
}
