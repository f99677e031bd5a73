//! `bench sync`: how fast a backlog of readings drains from the SQLite buffer into the central
//! PostgreSQL through the daemon's uploader, against a raw binary COPY of the same rows into the
//! same table.
//!
//! Setup (untimed): a buffer opened by `Store::open` is filled through the daemon's own write path
//! (`ingest.submit`, the writer thread, whatever layout the store has) with `--readings` readings
//! of `--sensors` sensors polled every `--period-ms` (the workload of `bench ingest`; by default
//! 1,000 points at 1 Hz); a fresh central database gets the central schema and a gateway role
//! (`markoff_cloud_sync`).
//!
//! Phase 1 (drain): the buffer is opened as the daemon opens it and `markoff::sync::drain_readings`
//! (the code the `sync:readings` task runs: read after the local cursor, make durable, one call of
//! `markoff.upload_readings` per batch with the insert, the rollup, the latest values and the
//! central cursor, then the local cursor; two batches at the centre on two connections, or one
//! with `--connections 1`) uploads everything, logged in as the gateway's role (row-level security
//! on), over the connection `[sync]` describes. Peak RSS is measured over this phase alone.
//!
//! Phase 2 (raw): the table is truncated and the same readings, generated into memory beforehand
//! with the buffer's sensor ids, are sent with one
//! binary `COPY markoff.readings FROM STDIN` (`markoff_cloud_sync::raw_copy_readings`) as the
//! superuser: no staging, no conflict handling, no cursor, no row-level security.
//!
//! Both phases are checked: row count, cursors, and sums over every column must equal those of the
//! readings written.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use markoff::config::StoreConfig;
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::store::{Store, StoreOptions};
use markoff_cloud_sync::{NewGateway, Password, ReadingRow, Stream};
use rusqlite::{Connection, OpenFlags};
use sqlx::{Connection as _, PgConnection, Row as _};
use tokio::time::Instant;

use crate::Verdict;
use crate::sys::{self, thousands};
use crate::workload::Workload;

/// Target: drain rate as a share of the raw COPY rate.
const TARGET_RATIO: f64 = 0.60;
/// Target: minutes to drain one day of 1,000 points at 1 Hz.
const TARGET_DAY_MINUTES: f64 = 3.0;
/// One day of 1,000 points at 1 Hz.
const DAY_READINGS: f64 = 86_400.0 * 1_000.0;
/// Readings per message of the fill (one Modbus poll is about 100).
const FILL_MESSAGE: u64 = 100;
/// Producer tasks of the fill.
const FILL_PRODUCERS: u64 = 4;

/// Options of `bench sync`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Readings in the backlog (`_` or `,` separators allowed); 86400000 is one day of 1,000
    /// points at 1 Hz, the default a tenth of it.
    #[arg(long, default_value = "8640000", value_parser = sys::parse_positive)]
    readings: u64,
    /// Distinct sensors the readings cycle over.
    #[arg(long, default_value = "1000", value_parser = sys::parse_positive)]
    sensors: u64,
    /// Time between two readings of one sensor, ms.
    #[arg(long, default_value = "1000", value_parser = sys::parse_positive)]
    period_ms: u64,
    /// Rows per upload transaction [default: the `[sync]` default, `batch_rows`].
    #[arg(long, value_parser = sys::parse_positive)]
    batch_rows: Option<u64>,
    /// Connections the drain may use for a pipelined stream: 2 (a batch inserts while the one
    /// before it commits) or 1. The readings stream is not pipelined at present: both use one.
    #[arg(long, default_value = "2", value_parser = clap::value_parser!(u8).range(1..=2))]
    connections: u8,
    /// PostgreSQL as a superuser; a database `markoff_bench_sync_<pid>` is created there and
    /// dropped afterwards.
    #[arg(
        long,
        env = "MARKOFF_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// Directory for the buffer [default: a temporary directory in the cargo target directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the buffer and the central database afterwards.
    #[arg(long)]
    keep: bool,
}

/// Sums over every column, equal in the buffer and the centre when the rows are the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sums {
    rows: i64,
    seq: i64,
    sensor: i64,
    /// Sum of (ts - the smallest ts), ms.
    ts: i64,
    quality: i64,
    with_value: i64,
    /// Sum of round(value * 1000).
    value_milli: i64,
}

/// Runs the benchmark and prints its report.
pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    let sensors = usize::try_from(args.sensors).context("--sensors is too large")?;
    let workload = Workload::with_period(
        args.readings,
        sensors,
        FILL_MESSAGE,
        i64::try_from(args.period_ms).context("--period-ms is too large")?,
    );
    let (dir, _temp) = sys::work_dir(args.dir.as_deref(), "markoff-bench-sync-", args.keep)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-runtime")
        .build()
        .context("cannot start the tokio runtime")?;
    let db_name = format!("markoff_bench_sync_{}", std::process::id());
    let result = runtime.block_on(bench(args, &workload, &dir, &db_name));
    if !args.keep {
        let dropped = runtime.block_on(async {
            let mut admin = PgConnection::connect(&args.database_url).await?;
            drop_database(&mut admin, &db_name).await
        });
        if let Err(e) = dropped {
            eprintln!("warning: cannot drop the bench database {db_name}: {e}");
        }
    } else {
        println!("  kept       {} and database {db_name}", dir.display());
    }
    result
}

async fn bench(
    args: &Args,
    workload: &Workload,
    dir: &Path,
    db_name: &str,
) -> anyhow::Result<Verdict> {
    let path = dir.join("buffer.db");
    sys::remove_database(&path)?;
    let store_cfg = StoreConfig::default();

    println!("markoff bench sync");
    println!(
        "  workload   {} readings of {} sensors polled every {} ms ({:.1} h), in the buffer, not yet synced",
        thousands(workload.total),
        thousands(workload.sensors() as u64),
        workload.period_ms(),
        workload.total as f64 / workload.sensors() as f64 * workload.period_ms() as f64 / 3.6e6
    );
    println!(
        "  machine    {}, load average {} at start",
        sys::machine(),
        sys::load_average().unwrap_or_else(|| "unknown".to_owned())
    );
    println!("  disk       {} ({})", dir.display(), sys::filesystem(dir));

    // Setup: the buffer, through the store's write path.
    let started = Instant::now();
    fill(&store_cfg, &path, workload).await?;
    let fill_secs = started.elapsed().as_secs_f64();
    let local = tokio::task::block_in_place(|| expected(&path, workload))?;
    println!(
        "  setup      buffer filled through Store::open + ingest.submit in {fill_secs:.1} s ({} readings/s, {} on disk, {:.2} B per reading)",
        thousands((workload.total as f64 / fill_secs.max(1e-9)) as u64),
        sys::bytes(sys::allocated(dir)),
        sys::allocated(dir) as f64 / workload.total as f64
    );

    // Setup: the centre.
    let admin_url = with_database(&args.database_url, db_name)?;
    {
        let mut server = PgConnection::connect(&args.database_url)
            .await
            .with_context(|| format!("cannot connect to {}", args.database_url))?;
        drop_database(&mut server, db_name).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}")))
            .execute(&mut server)
            .await
            .context("cannot create the bench database")?;
    }
    let mut admin = PgConnection::connect(&admin_url).await?;
    markoff_cloud_sync::migrate(&mut admin).await?;
    let gateway_id = "bench-gw";
    let creds = markoff_cloud_sync::add_gateway(
        &mut admin,
        &NewGateway {
            gateway_id: gateway_id.to_owned(),
            building_id: "bench-building".to_owned(),
            role: Some(format!("{db_name}_gw")),
            password: Some(Password::generate()),
        },
    )
    .await?;
    let password_file = dir.join("central-password");
    std::fs::write(&password_file, creds.password.expose())?;
    let (host, port) = host_port(&args.database_url)?;
    let mut config_text = format!(
        "[gateway]\nid = \"{gateway_id}\"\n[sync]\nurl = \"postgres://{role}@{host}:{port}/{db_name}\"\n\
         password_file = \"{pw}\"\nsslmode = \"disable\"\n",
        role = creds.role,
        pw = password_file.display(),
    );
    if let Some(rows) = args.batch_rows {
        config_text.push_str(&format!("batch_rows = {rows}\n"));
    }
    let config = markoff::config::parse_str(&config_text, Path::new("bench-sync.toml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sync_cfg = config.sync.context("the [sync] section")?;
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut admin)
        .await?;
    println!(
        "  centre     PostgreSQL {server_version}, {} (gateway role, row-level security on), sslmode {}",
        sync_cfg.display_url(),
        sync_cfg.sslmode.as_str()
    );
    println!(
        "  [sync]     batch_rows {}, up to {} connection(s) for the backlog",
        sync_cfg.batch_rows, args.connections
    );
    println!();

    // Phase 1: drain through the uploader.
    let store = open_store(&store_cfg, &path)?;
    let conn = markoff::sync::connect(&sync_cfg, gateway_id).await?;
    let rss_before = sys::current_rss();
    let reset = sys::reset_peak_rss();
    let started = Instant::now();
    let stats = markoff::sync::drain_readings(
        &sync_cfg,
        gateway_id,
        &store,
        conn,
        usize::from(args.connections),
    )
    .await?;
    let drain_elapsed = started.elapsed();
    let drain_peak = sys::peak_rss();
    store.writer.drain();
    let writer_ok = store.writer.finished().await;
    drop(store);

    let mut failures = Vec::new();
    if !writer_ok {
        failures.push("the buffer writer did not stop cleanly".to_owned());
    }
    let n = i64::try_from(workload.total)?;
    let central_cursor =
        markoff_cloud_sync::central_cursor(&mut admin, gateway_id, Stream::Readings).await?;
    let local_cursor = tokio::task::block_in_place(|| local_cursor(&path))?;
    for (what, got) in [
        ("central cursor", central_cursor),
        ("local cursor", local_cursor),
        ("rows sent", i64::try_from(stats.rows)?),
        ("rows inserted", i64::try_from(stats.inserted)?),
    ] {
        if got != n {
            failures.push(format!("drain: {what} is {got}, expected {n}"));
        }
    }
    let central = central_sums(&mut admin, gateway_id, local.ts_min).await?;
    if central != local.sums {
        failures.push(format!(
            "drain: central rows differ: {central:?} vs written {:?}",
            local.sums
        ));
    }
    let drain_rate = workload.total as f64 / drain_elapsed.as_secs_f64().max(1e-9);
    println!(
        "[1/2] drain: markoff::sync::drain_readings, buffer -> PostgreSQL as the gateway role"
    );
    println!(
        "  rate       {} rows/s ({} rows in {:.3} s, {} transactions of up to {} rows)",
        thousands(drain_rate as u64),
        thousands(stats.rows),
        drain_elapsed.as_secs_f64(),
        thousands(stats.batches),
        thousands(sync_cfg.batch_rows as u64),
    );
    let t = stats.time;
    println!(
        "  where      {} connection(s); central transactions {:.1} s in all, waited for {:.1} s; reading and syncing batches {:.1} s in all, waited for {:.1} s with no upload in flight; local cursor writes waited for {:.1} s",
        stats.connections,
        t.upload.as_secs_f64(),
        t.upload_wait.as_secs_f64(),
        t.read.as_secs_f64(),
        t.read_wait.as_secs_f64(),
        t.cursor_wait.as_secs_f64(),
    );
    let growth = drain_peak.zip(rss_before).map_or_else(
        || "unknown".to_owned(),
        |(p, b)| sys::bytes(p.saturating_sub(b)),
    );
    println!(
        "  memory     peak RSS {} during the drain: {growth} above the RSS before it ({}){}",
        rss(drain_peak),
        rss(rss_before),
        if reset {
            ""
        } else {
            " (the peak could not be reset: it includes the setup)"
        }
    );
    println!();

    // Phase 2: raw COPY of the same rows into the same, emptied table.
    let rows = local.rows;
    sqlx::raw_sql("TRUNCATE markoff.readings; CHECKPOINT")
        .execute(&mut admin)
        .await?;
    let started = Instant::now();
    let copied = markoff_cloud_sync::raw_copy_readings(&mut admin, gateway_id, &rows).await?;
    let raw_elapsed = started.elapsed();
    drop(rows);
    if copied != workload.total {
        failures.push(format!("raw: COPY reported {copied} rows, expected {n}"));
    }
    let central = central_sums(&mut admin, gateway_id, local.ts_min).await?;
    if central != local.sums {
        failures.push(format!(
            "raw: central rows differ: {central:?} vs written {:?}",
            local.sums
        ));
    }
    let raw_rate = workload.total as f64 / raw_elapsed.as_secs_f64().max(1e-9);
    println!(
        "[2/2] raw: one binary COPY into markoff.readings as the superuser, same rows, same table"
    );
    println!(
        "  rate       {} rows/s ({} rows in {:.3} s)",
        thousands(raw_rate as u64),
        thousands(copied),
        raw_elapsed.as_secs_f64()
    );
    println!();

    let ratio = drain_rate / raw_rate.max(1e-9);
    let day_minutes = DAY_READINGS / drain_rate / 60.0;
    println!(
        "summary (CPU {}, load average {} at the end)",
        sys::cpu_model(),
        sys::load_average().unwrap_or_else(|| "unknown".to_owned())
    );
    println!("  drain      {:>12} rows/s", thousands(drain_rate as u64));
    println!(
        "  raw COPY   {:>12} rows/s (same rows, same run)",
        thousands(raw_rate as u64)
    );
    println!(
        "  ratio      {:>12.1} %        target >= {:.0} %                {}",
        ratio * 100.0,
        TARGET_RATIO * 100.0,
        met(ratio >= TARGET_RATIO)
    );
    let scaled = workload.total as f64 != DAY_READINGS;
    println!(
        "  one day    1,000 points at 1 Hz (86.4 M readings) drains in {day_minutes:.1} min{}   target <= {TARGET_DAY_MINUTES} min   {}",
        if scaled {
            format!(
                " (scaled from the {} readings drained here at the same rate)",
                thousands(workload.total)
            )
        } else {
            " (the whole day drained)".to_owned()
        },
        met(day_minutes <= TARGET_DAY_MINUTES)
    );
    println!(
        "  peak RSS   {} during the drain ({growth} above the RSS before it)",
        rss(drain_peak)
    );
    if failures.is_empty() {
        println!("  check      OK (row counts, cursors and sums over every column verified)");
        Ok(Verdict::Checked)
    } else {
        println!("  check      FAILED: the figures above are not valid");
        for f in failures {
            println!("    - {f}");
        }
        Ok(Verdict::CheckFailed)
    }
}

/// Drops the bench database and its gateway role (each statement on its own: neither may run in
/// a transaction block).
async fn drop_database(server: &mut PgConnection, db_name: &str) -> Result<(), sqlx::Error> {
    for sql in [
        format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {db_name}_gw"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *server)
            .await?;
    }
    Ok(())
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn rss(v: Option<u64>) -> String {
    v.map_or_else(|| "unknown".to_owned(), sys::bytes)
}

fn open_store(cfg: &StoreConfig, path: &Path) -> anyhow::Result<Store> {
    Store::open(
        cfg,
        path,
        StoreOptions { uplink: true },
        Metrics::new(),
        Heartbeat::new("bench"),
    )
    .context("cannot open the buffer")
}

/// What was written into the buffer, and the same rows for the raw COPY.
struct Local {
    sums: Sums,
    ts_min: i64,
    rows: Vec<ReadingRow>,
}

/// Fills the buffer through the daemon's write path: `FILL_PRODUCERS` tasks send the workload's
/// messages with `ingest.submit`, the last of each with `ingest.write`.
async fn fill(cfg: &StoreConfig, path: &Path, workload: &Workload) -> anyhow::Result<()> {
    let store = open_store(cfg, path)?;
    let mut tasks = tokio::task::JoinSet::new();
    let shared = std::sync::Arc::new(workload.clone());
    for p in 0..FILL_PRODUCERS {
        let ingest = store.ingest.clone();
        let workload = shared.clone();
        tasks.spawn(async move {
            let mut messages = (p..workload.messages)
                .step_by(usize::try_from(FILL_PRODUCERS).unwrap_or(1))
                .peekable();
            while let Some(m) = messages.next() {
                let readings = workload.message(m);
                if messages.peek().is_some() {
                    ingest.submit(readings).await?;
                } else {
                    ingest.write(readings).await?;
                }
            }
            Ok::<_, markoff::store::StoreError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a fill task panicked")??;
    }
    let want = i64::try_from(workload.total)?;
    if store.shared.last_seq() != want {
        bail!(
            "the buffer's last seq is {} after the fill, expected {want}",
            store.shared.last_seq()
        );
    }
    store.writer.drain();
    if !store.writer.finished().await {
        bail!("the buffer writer did not stop cleanly after the fill");
    }
    Ok(())
}

/// The readings written, with the sensor ids the buffer gave them (its `sensors` table), as rows
/// for the raw COPY and as sums for the checks. Their seqs are 1..=N in some order (producers
/// interleave), so the sums equal the buffer's whatever order the writer committed them in.
fn expected(path: &Path, workload: &Workload) -> anyhow::Result<Local> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut ids = std::collections::HashMap::new();
    {
        let mut stmt = conn.prepare("SELECT key, id FROM sensors")?;
        let mut q = stmt.query([])?;
        while let Some(r) = q.next()? {
            ids.insert(r.get::<_, String>(0)?, r.get::<_, i64>(1)?);
        }
    }
    let ids: Vec<i64> = workload
        .sensor_ids
        .iter()
        .map(|s| {
            ids.get(s.as_str())
                .copied()
                .with_context(|| format!("sensor {s} is not in the buffer"))
        })
        .collect::<anyhow::Result<_>>()?;
    let ts_min = (0..workload.total.min(workload.sensors() as u64))
        .map(|k| workload.sample(k).ts)
        .min()
        .unwrap_or(0);
    let mut rows = Vec::with_capacity(usize::try_from(workload.total)?);
    let mut sums = Sums {
        rows: 0,
        seq: 0,
        sensor: 0,
        ts: 0,
        quality: 0,
        with_value: 0,
        value_milli: 0,
    };
    for k in 0..workload.total {
        let s = workload.sample(k);
        let row = ReadingRow {
            seq: i64::try_from(k + 1)?,
            sensor_id: ids[s.sensor],
            ts_ms: s.ts,
            value: s.value,
            quality: i16::from(s.quality.code()),
        };
        sums.rows += 1;
        sums.seq += row.seq;
        sums.sensor += row.sensor_id;
        sums.ts += row.ts_ms - ts_min;
        sums.quality += i64::from(row.quality);
        if let Some(v) = row.value {
            sums.with_value += 1;
            sums.value_milli += (v * 1000.0).round() as i64;
        }
        rows.push(row);
    }
    Ok(Local { sums, ts_min, rows })
}

fn local_cursor(path: &Path) -> anyhow::Result<i64> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(conn.query_row(
        "SELECT coalesce((SELECT last_seq FROM sync_cursor WHERE stream = 'readings'), 0)",
        [],
        |r| r.get(0),
    )?)
}

async fn central_sums(
    admin: &mut PgConnection,
    gateway_id: &str,
    ts_min: i64,
) -> anyhow::Result<Sums> {
    let r = sqlx::query(
        "SELECT count(*), coalesce(sum(seq), 0)::int8, coalesce(sum(sensor_id), 0)::int8, \
         coalesce(sum((extract(epoch FROM ts) * 1000)::int8 - $2), 0)::int8, \
         coalesce(sum(quality), 0)::int8, count(value), \
         coalesce(sum(round(value * 1000)::int8), 0)::int8 \
         FROM markoff.readings WHERE gateway_id = $1",
    )
    .bind(gateway_id)
    .bind(ts_min)
    .fetch_one(&mut *admin)
    .await?;
    Ok(Sums {
        rows: r.try_get(0)?,
        seq: r.try_get(1)?,
        sensor: r.try_get(2)?,
        ts: r.try_get(3)?,
        quality: r.try_get(4)?,
        with_value: r.try_get(5)?,
        value_milli: r.try_get(6)?,
    })
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .context("--database-url is not a URL")?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    Ok(format!("{scheme}://{authority}/{db}"))
}

/// Host and port of `url`.
fn host_port(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .context("--database-url is not a URL")?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match hostport.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_owned(), p.parse().context("port")?)),
        None => Ok((hostport.to_owned(), 5432)),
    }
}
