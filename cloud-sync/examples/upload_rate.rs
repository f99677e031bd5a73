//! Measures the upload path against raw binary COPY into the same table.
//!
//! ```sh
//! cargo run --release -p markoff-cloud-sync --example upload_rate -- \
//!     postgres://postgres@127.0.0.1/postgres [BATCHES] [BATCH_ROWS]
//! ```
//!
//! With `MARKOFF_WITHOUT_SENSOR_INDEX=1` the index `readings_sensor` (history by sensor, added
//! for the office web application) is dropped first, to measure what it costs the upload.
//!
//! Creates a scratch database (dropped at the end), migrates it, provisions a gateway role, then
//! times `raw_copy_readings` (as the administrator) and `upload_readings` (as the gateway, with
//! row-level security) on the same number of rows, each into its own gateway's rows of
//! `markoff.readings`. Needs an administrator URL on a server that lets the gateway role in
//! (trust or its password).

#![allow(clippy::print_stdout)]

use anyhow::Context as _;
use markoff_cloud_sync::admin::{self, NewGateway};
use markoff_cloud_sync::{ReadingRow, raw_copy_readings, upload_readings};
use sqlx::{Connection as _, PgConnection};
use tokio::time::Instant;

const SENSORS: i64 = 1000;

fn batch(start_seq: i64, rows: usize, base_ms: i64) -> Vec<ReadingRow> {
    (0..rows as i64)
        .map(|i| {
            let seq = start_seq + i;
            ReadingRow {
                seq,
                sensor_id: seq % SENSORS,
                ts_ms: base_ms + seq * 10,
                value: if seq % 50 == 0 {
                    None
                } else {
                    Some(seq as f64 * 0.25)
                },
                quality: if seq % 50 == 0 { 3 } else { 0 },
            }
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1/postgres".into());
    let batches: usize = args.get(2).map_or(Ok(10), |s| s.parse())?;
    let rows: usize = args.get(3).map_or(Ok(50_000), |s| s.parse())?;
    let db = format!("markoff_rate_{}", std::process::id());
    let mut admin_conn = PgConnection::connect(&url).await.context("connect")?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut admin_conn)
        .await?;
    let db_url = replace_db(&url, &db);
    let result = measure(&db_url, &db, batches, rows).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {db} WITH (FORCE)"
    )))
    .execute(&mut admin_conn)
    .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {db}_gw")))
        .execute(&mut admin_conn)
        .await?;
    result
}

async fn measure(db_url: &str, db: &str, batches: usize, rows: usize) -> anyhow::Result<()> {
    let mut owner = PgConnection::connect(db_url).await?;
    admin::migrate(&mut owner).await?;
    if std::env::var_os("MARKOFF_WITHOUT_SENSOR_INDEX").is_some() {
        sqlx::raw_sql("DROP INDEX markoff.readings_sensor")
            .execute(&mut owner)
            .await?;
        println!("without the index readings_sensor");
    }
    let creds = admin::add_gateway(
        &mut owner,
        &NewGateway {
            gateway_id: "rate-up".into(),
            building_id: "b".into(),
            role: Some(format!("{db}_gw")),
            password: None,
        },
    )
    .await?;
    let gw_url = admin::gateway_url(db_url, &creds.role).context("url")?;
    let gw_url = gw_url.replacen('@', &format!(":{}@", creds.password.expose()), 1);
    let mut gw = PgConnection::connect(&gw_url).await?;
    let base_ms = 1_700_000_000_000_i64.max(now_ms() - 3_600_000);

    let data: Vec<Vec<ReadingRow>> = (0..batches)
        .map(|b| batch(1 + (b * rows) as i64, rows, base_ms))
        .collect();
    let total = (batches * rows) as f64;

    let t = Instant::now();
    for b in &data {
        raw_copy_readings(&mut owner, "rate-raw", b).await?;
    }
    let raw = t.elapsed().as_secs_f64();

    let t = Instant::now();
    for b in &data {
        let out = upload_readings(&mut gw, "rate-up", b).await?;
        assert_eq!(out.inserted as usize, b.len());
    }
    let up = t.elapsed().as_secs_f64();

    // A resend of everything: all skipped by the cursor.
    let t = Instant::now();
    for b in &data {
        upload_readings(&mut gw, "rate-up", b).await?;
    }
    let resend = t.elapsed().as_secs_f64();

    println!("{batches} batches x {rows} rows");
    println!("raw binary COPY:  {:>10.0} rows/s", total / raw);
    println!(
        "upload_readings:  {:>10.0} rows/s  ({:.0} % of raw COPY)",
        total / up,
        100.0 * raw / up
    );
    println!("resend (skipped): {:>10.0} rows/s", total / resend);
    gw.close().await?;
    owner.close().await?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn replace_db(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    if query.is_empty() {
        format!("{base}/{db}")
    } else {
        format!("{base}/{db}?{query}")
    }
}
