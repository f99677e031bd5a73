//! `bench ingest`: readings/s through the real ingest path, against the best SQLite can do.
//!
//! Phase 1 (pipeline) opens the daemon's buffer exactly as the daemon does (`Store::open` with the
//! default `[store]` config) inside a multi-thread tokio runtime; `--producers` tasks send
//! `--batch`-reading messages with `ingest.submit` (fire and forget; the bounded queue pushes back)
//! and their last message with `ingest.write` (awaits the commit receipt). The clock runs from the
//! first send until every receipt is in and `last_seq()` equals the number of readings.
//!
//! Phase 2 (raw) inserts the same rows into a fresh file with the same schema and pragmas, one
//! prepared statement, one transaction per `flush_rows` rows: the ceiling for this schema on this
//! disk.
//!
//! With `--without-index`, a third phase repeats the raw insert without the `readings_sensor_ts`
//! index: the setup of the physical limits recorded in `../shared/design/dependencies.md`.
//!
//! Every database is then checked with a read-only connection (row count, seq range, failed
//! reads, sensors); a failed check makes the run fail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use markoff::config::StoreConfig;
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::store::{Store, StoreError, StoreOptions};
use rusqlite::{Connection, OpenFlags, params};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Verdict;
use crate::sys::{self, thousands};
use crate::workload::{Expected, Workload};

/// The schema the daemon applies (its first and only migration so far).
const SCHEMA: &str = include_str!("../../../../migrations/gateway/0001_buffer.sql");
/// The per-sensor history index of that schema, left out by `--without-index`.
const SENSOR_INDEX: &str = "CREATE INDEX readings_sensor_ts ON readings (sensor, ts);";
const INSERT: &str =
    "INSERT INTO readings (seq, sensor, ts, value, quality) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Target: readings/s through the pipeline.
const TARGET_PIPELINE_RATE: f64 = 200_000.0;
/// Target: pipeline rate as a share of the raw rate.
const TARGET_RATIO: f64 = 0.50;
/// The physical limits measured on this machine class (`../shared/design/dependencies.md`).
const REFERENCE: &str = "SQLite WAL, one prepared insert: 1.15 M rows/s in one transaction, \
                         0.90 M rows/s with a transaction per 100 rows, about 25 bytes per row";
/// How long to wait for `last_seq()` to catch up once every receipt is in (it should already have).
const SETTLE: Duration = Duration::from_secs(10);

/// Options of `bench ingest`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Readings to ingest in each phase (`_` or `,` separators allowed).
    #[arg(long, default_value = "2000000", value_parser = sys::parse_positive)]
    readings: u64,
    /// Distinct sensors the readings cycle over.
    #[arg(long, default_value = "10000", value_parser = sys::parse_positive)]
    sensors: u64,
    /// Readings per producer message (one Modbus poll is about 100).
    #[arg(long, default_value = "100", value_parser = sys::parse_positive)]
    batch: u64,
    /// Concurrent producer tasks.
    #[arg(long, default_value = "4", value_parser = sys::parse_positive)]
    producers: u64,
    /// Directory for the two databases [default: a fresh temporary directory in the cargo target
    /// directory, i.e. on the build disk, removed afterwards]. Existing benchmark files in it are
    /// replaced and kept afterwards.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Rows per writer transaction in both phases [default: the `[store]` default, `flush_rows`].
    /// For exploring the store's tuning; the recorded figures use the default.
    #[arg(long, value_parser = sys::parse_positive)]
    flush_rows: Option<u64>,
    /// Keep the temporary directory (and its databases) instead of removing it.
    #[arg(long)]
    keep: bool,
    /// Skip the raw rusqlite phase (pipeline only; no ratio).
    #[arg(long)]
    no_raw: bool,
    /// Also run the raw insert without the `readings_sensor_ts` index: the setup of the physical
    /// limits in `../shared/design/dependencies.md`, to see what the index costs on this run.
    #[arg(long)]
    without_index: bool,
}

/// Figures of one phase.
#[derive(Debug)]
struct Phase {
    elapsed: Duration,
    rows: u64,
    /// Bytes read and written by the process during the timed part.
    io: Option<sys::Io>,
    bytes_on_disk: u64,
    peak_rss: Option<u64>,
    failures: Vec<String>,
    /// Pipeline only: commits and time spent between BEGIN and COMMIT, from the daemon's metrics.
    commits: Option<u64>,
    commit_seconds: Option<f64>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs the benchmark and prints its report.
pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    let mut cfg = StoreConfig::default();
    if let Some(rows) = args.flush_rows {
        cfg.flush_rows = usize::try_from(rows).context("--flush-rows is too large")?;
    }
    let sensors = usize::try_from(args.sensors).context("--sensors is too large")?;
    let workload = Arc::new(Workload::new(args.readings, sensors, args.batch));
    let expected = workload.expected();

    let (dir, _temp) = sys::work_dir(args.dir.as_deref(), "markoff-bench-", args.keep)?;

    println!("markoff bench ingest");
    println!(
        "  workload   {} readings, {} sensors, {} readings per message, {} producers ({} failed reads without value)",
        thousands(args.readings),
        thousands(expected.sensors),
        thousands(args.batch),
        args.producers,
        thousands(expected.without_value),
    );
    println!(
        "  machine    {}, load average {} at start",
        sys::machine(),
        sys::load_average().unwrap_or_else(|| "unknown".to_owned())
    );
    println!("  disk       {} ({})", dir.display(), sys::filesystem(&dir));
    println!("  sqlite     {}", rusqlite::version());
    println!(
        "  [store]    flush_rows {}, flush_interval {:?}, queue_capacity {}, synchronous {}",
        cfg.flush_rows,
        cfg.flush_interval,
        cfg.queue_capacity,
        cfg.synchronous.pragma()
    );
    println!("  start RSS  {}", rss(sys::current_rss()));
    println!();

    let pipeline_path = dir.join("pipeline.db");
    sys::remove_database(&pipeline_path)?;
    let pipeline = pipeline(&cfg, &pipeline_path, &workload, args.producers, expected)?;
    println!("[1/2] pipeline: Store::open + ingest.submit/write, real writer thread");
    print_phase(&pipeline);
    let rate_ok = pipeline.rate() >= TARGET_PIPELINE_RATE;
    println!(
        "  target     >= {} readings/s: {}",
        thousands(TARGET_PIPELINE_RATE as u64),
        met(rate_ok)
    );
    println!();

    let raw = if args.no_raw {
        None
    } else {
        let reset = sys::reset_peak_rss();
        let raw_path = dir.join("raw.db");
        sys::remove_database(&raw_path)?;
        let raw = raw_insert(&raw_path, SCHEMA, &workload, cfg.flush_rows, expected)?;
        println!(
            "[2/2] raw: one prepared INSERT, a transaction per {} rows, same schema and pragmas",
            cfg.flush_rows
        );
        print_phase(&raw);
        if !reset {
            println!("  (peak RSS could not be reset: it includes the pipeline phase)");
        }
        println!();
        Some(raw)
    };

    let unindexed = if args.without_index {
        if !SCHEMA.contains(SENSOR_INDEX) {
            bail!("the schema no longer contains `{SENSOR_INDEX}`; update the benchmark");
        }
        let schema = SCHEMA.replace(SENSOR_INDEX, "");
        sys::reset_peak_rss();
        let path = dir.join("raw-without-index.db");
        sys::remove_database(&path)?;
        let phase = raw_insert(&path, &schema, &workload, cfg.flush_rows, expected)?;
        println!(
            "[reference] raw without the readings_sensor_ts index, a transaction per {} rows",
            cfg.flush_rows
        );
        print_phase(&phase);
        println!();
        Some(phase)
    } else {
        None
    };

    println!("summary");
    println!(
        "  pipeline   {:>12} readings/s   target >= {}          {}",
        thousands(pipeline.rate() as u64),
        thousands(TARGET_PIPELINE_RATE as u64),
        met(rate_ok)
    );
    if let Some(raw) = &raw {
        let ratio = pipeline.rate() / raw.rate().max(1e-9);
        println!(
            "  raw        {:>12} readings/s",
            thousands(raw.rate() as u64)
        );
        println!(
            "  ratio      {:>12.1} %            target >= {:.0} %             {}",
            ratio * 100.0,
            TARGET_RATIO * 100.0,
            met(ratio >= TARGET_RATIO)
        );
    }

    if let Some(u) = &unindexed {
        println!(
            "  no index   {:>12} readings/s   (raw, same run, without readings_sensor_ts)",
            thousands(u.rate() as u64)
        );
    }
    println!(
        "  reference  {REFERENCE} (../shared/design/dependencies.md, table without the readings_sensor_ts index)"
    );

    let mut failures: Vec<&String> = pipeline.failures.iter().collect();
    for phase in [&raw, &unindexed].into_iter().flatten() {
        failures.extend(phase.failures.iter());
    }
    if failures.is_empty() {
        println!("  check      OK (row counts, seq range, failed reads and sensors verified)");
        Ok(Verdict::Checked)
    } else {
        println!("  check      FAILED: the figures above are not valid");
        for f in failures {
            println!("    - {f}");
        }
        Ok(Verdict::CheckFailed)
    }
}

fn print_phase(p: &Phase) {
    println!(
        "  rate       {} readings/s ({} readings in {:.3} s)",
        thousands(p.rate() as u64),
        thousands(p.rows),
        p.elapsed.as_secs_f64()
    );
    if let (Some(commits), Some(busy)) = (p.commits, p.commit_seconds) {
        println!(
            "  writer     {} commits, {:.0} rows per commit, {:.3} s between BEGIN and COMMIT ({:.0} % of the wall time)",
            thousands(commits),
            p.rows as f64 / (commits.max(1) as f64),
            busy,
            busy / p.elapsed.as_secs_f64().max(1e-9) * 100.0
        );
    }
    if let Some(io) = p.io {
        let per = |b: u64| b as f64 / (p.rows.max(1) as f64);
        println!(
            "  I/O        wrote {} ({:.0} B per reading), read {} ({:.0} B per reading), WAL and checkpoints included",
            sys::bytes(io.written),
            per(io.written),
            sys::bytes(io.read),
            per(io.read)
        );
    }
    println!(
        "  on disk    {} = {:.1} bytes per reading (after a WAL checkpoint, sensors table included)",
        sys::bytes(p.bytes_on_disk),
        p.bytes_on_disk as f64 / (p.rows.max(1) as f64)
    );
    println!("  peak RSS   {} (VmHWM)", rss(p.peak_rss));
    if p.failures.is_empty() {
        println!("  check      OK");
    } else {
        for f in &p.failures {
            println!("  check      FAILED: {f}");
        }
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn rss(v: Option<u64>) -> String {
    v.map_or_else(|| "unknown".to_owned(), sys::bytes)
}

/// Phase 1: the real ingest path.
fn pipeline(
    cfg: &StoreConfig,
    path: &Path,
    workload: &Arc<Workload>,
    producers: u64,
    expected: Expected,
) -> anyhow::Result<Phase> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-runtime")
        .build()
        .context("cannot start the tokio runtime")?;
    let metrics = Metrics::new();
    let (elapsed, io, mut failures) = runtime.block_on(async {
        let store = Store::open(
            cfg,
            path,
            StoreOptions::default(),
            metrics.clone(),
            Heartbeat::new("bench"),
        )
        .context("cannot open the buffer")?;
        let total = workload.total;

        let io_before = sys::io_counters();
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for p in 0..producers {
            let ingest = store.ingest.clone();
            let workload = workload.clone();
            tasks.spawn(async move {
                let mut messages = (p..workload.messages)
                    .step_by(usize::try_from(producers).unwrap_or(usize::MAX))
                    .peekable();
                let mut receipt = None;
                while let Some(m) = messages.next() {
                    let readings = workload.message(m);
                    if messages.peek().is_some() {
                        ingest.submit(readings).await?;
                    } else {
                        receipt = Some(ingest.write(readings).await?);
                    }
                }
                Ok::<_, StoreError>(receipt)
            });
        }
        let mut highest = 0;
        while let Some(joined) = tasks.join_next().await {
            let receipt = joined.context("a producer task panicked")??;
            if let Some(r) = receipt {
                highest = highest.max(r.last.0);
            }
        }
        let expected_last = i64::try_from(total).context("too many readings")?;
        let settle_until = Instant::now() + SETTLE;
        while store.shared.last_seq() < expected_last && Instant::now() < settle_until {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed();
        let io = sys::io_counters()
            .zip(io_before)
            .map(|(after, before)| after.since(before));

        let mut failures = Vec::new();
        if store.shared.last_seq() != expected_last {
            failures.push(format!(
                "last_seq() is {} after every receipt, expected {expected_last}",
                store.shared.last_seq()
            ));
        }
        if highest != expected_last {
            failures.push(format!(
                "the highest receipt seq is {highest}, expected {expected_last}"
            ));
        }
        store.writer.drain();
        if !store.writer.finished().await {
            failures.push("the writer thread did not stop cleanly".to_owned());
        }
        drop(store);
        anyhow::Ok((elapsed, io, failures))
    })?;
    drop(runtime);

    failures.extend(verify(path, expected)?);
    let bytes_on_disk = checkpoint(path)?;
    Ok(Phase {
        elapsed,
        rows: expected.rows,
        io,
        bytes_on_disk,
        peak_rss: sys::peak_rss(),
        failures,
        commits: Some(metrics.get::<markoff::store::StoreMetrics>().commits.get()),
        commit_seconds: histogram_sum(&metrics.render(), "markoff_buffer_commit_seconds_sum"),
    })
}

/// Phase 2: the same rows straight into SQLite.
fn raw_insert(
    path: &Path,
    schema: &str,
    workload: &Workload,
    flush_rows: usize,
    expected: Expected,
) -> anyhow::Result<Phase> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot create {}", path.display()))?;
    // The daemon's pragmas (daemon/src/store/mod.rs, open_connection), in the same order.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let cache_kib =
        i64::try_from(markoff::config::StoreConfig::default().cache_size.bytes() / 1024)?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.execute_batch(&format!(
        "BEGIN;\n{schema}\nPRAGMA user_version = 1;\nCOMMIT;"
    ))
    .context("cannot apply the schema")?;

    // Sensors first, untimed: the raw rows refer to them by integer id.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    {
        let mut stmt = conn.prepare("INSERT INTO sensors (id, key) VALUES (?1, ?2)")?;
        for (i, id) in workload.sensor_ids.iter().enumerate() {
            stmt.execute(params![i64::try_from(i + 1)?, id.as_str()])?;
        }
    }
    conn.execute_batch("COMMIT")?;

    let total = workload.total;
    let chunk = u64::try_from(flush_rows.max(1))?;
    let io_before = sys::io_counters();
    let started = Instant::now();
    {
        let mut insert = conn.prepare(INSERT)?;
        let mut k = 0;
        while k < total {
            let end = (k + chunk).min(total);
            conn.execute_batch("BEGIN IMMEDIATE")?;
            for i in k..end {
                let s = workload.sample(i);
                insert.execute(params![
                    i64::try_from(i + 1)?,
                    i64::try_from(s.sensor + 1)?,
                    s.ts,
                    s.value,
                    s.quality.code()
                ])?;
            }
            conn.execute_batch("COMMIT")?;
            k = end;
        }
    }
    let elapsed = started.elapsed();
    let io = sys::io_counters()
        .zip(io_before)
        .map(|(after, before)| after.since(before));
    drop(conn);

    let failures = verify(path, expected)?;
    let bytes_on_disk = checkpoint(path)?;
    Ok(Phase {
        elapsed,
        rows: total,
        io,
        bytes_on_disk,
        peak_rss: sys::peak_rss(),
        failures,
        commits: None,
        commit_seconds: None,
    })
}

/// Checks the content with a read-only connection; returns what is wrong.
fn verify(path: &Path, expected: Expected) -> anyhow::Result<Vec<String>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {} read-only", path.display()))?;
    let (rows, with_value, failed, min_seq, max_seq): (i64, i64, i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), count(value), \
             coalesce(sum(quality = 3 AND value IS NULL), 0), \
             coalesce(min(seq), 0), coalesce(max(seq), 0) FROM readings",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .context("cannot count the readings")?;
    let distinct: i64 = conn.query_row(
        "SELECT count(*) FROM (SELECT DISTINCT sensor FROM readings)",
        [],
        |r| r.get(0),
    )?;
    let sensors: i64 = conn.query_row("SELECT count(*) FROM sensors", [], |r| r.get(0))?;

    let want = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let mut failures = Vec::new();
    let mut expect = |what: &str, got: i64, want: i64| {
        if got != want {
            failures.push(format!(
                "{}: {what} is {got}, expected {want}",
                path.display()
            ));
        }
    };
    expect("count(*) of readings", rows, want(expected.rows));
    expect(
        "count(value)",
        with_value,
        want(expected.rows - expected.without_value),
    );
    expect(
        "readings with quality comm_error and no value",
        failed,
        want(expected.without_value),
    );
    expect("min(seq)", min_seq, i64::from(expected.rows > 0));
    expect("max(seq)", max_seq, want(expected.rows));
    expect(
        "distinct sensors in readings",
        distinct,
        want(expected.sensors),
    );
    expect("rows in sensors", sensors, want(expected.sensors));
    Ok(failures)
}

/// Folds the WAL into the main file and returns the database's size on disk.
fn checkpoint(path: &Path) -> anyhow::Result<u64> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", path.display()))?;
    let (busy, _, _): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if busy != 0 {
        bail!("{}: the WAL checkpoint was blocked", path.display());
    }
    drop(conn);
    Ok(sys::database_len(path))
}

/// The value of one sample line of the Prometheus text format.
fn histogram_sum(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
