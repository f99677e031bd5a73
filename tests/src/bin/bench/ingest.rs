//! `bench ingest`: how fast the buffer takes readings as it grows, what it writes to disk and
//! what it stores per reading, beside its floor and the old layout, in one run on one disk.
//!
//! The workload (`workload.rs`): 10,000 sensors polled every 10 s in messages of 100 readings,
//! values with a daily wave and noise, 1 % failed reads. Each phase commits the same readings in
//! order and prints a row at each mark of `--at` (2M, 10M, 25M, 50M buffered readings): the rate
//! of the stretch since the previous mark, the bytes the process wrote per reading in that stretch
//! (`write_bytes` of `/proc/self/io`, what reached the block layer, and `wchar`, what went through
//! `write(2)`), the bytes allocated on disk per buffered reading, and the load average.
//!
//! Phases (`--phases`):
//! - `store`: the daemon's buffer as the daemon opens it (`Store::open` with the default
//!   `[store]`, an uplink that has synced nothing), `--producers` tasks sending messages through
//!   `ingest.submit`, each stretch ended by `ingest.write` receipts; whatever layout the running
//!   store has.
//! - `engine`: the columnar layout driven directly (`store::layout`: a batch appended per commit
//!   of `--commit` readings, a fold every `--fold` readings, which releases the batches it
//!   folded; nothing synced), without the writer thread.
//! - `floor`: the same readings encoded as batches (`store::codec::encode_batch`) appended to a
//!   plain file with an `fdatasync` per batch: the least any durable layout can write.
//! - `old`: the row-per-reading layout the buffer had before (one row per reading, the
//!   `(sensor, ts)` index, 64 MiB page cache, a checkpoint every 8,192 pages), a copy kept here as
//!   the baseline; a prepared insert per reading, one transaction per `--commit` readings. It
//!   slows down as it grows, so it stops at `--old-upto`.
//!
//! At the last mark each phase answers a 24 h history query of one sensor (three sensors, each
//! timed): `Reader::series` (the chart's query) for `store`, `Layout::history` for `engine`, the
//! index range scan for `old`. Each phase checks what it holds (seqs, counts, a sensor's history);
//! a failed check makes the run fail.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use markoff::config::StoreConfig;
use markoff::model::Timestamp;
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::store::codec::{self, BatchRow};
use markoff::store::layout::Layout;
use markoff::store::{Store, StoreError, StoreOptions};
use rusqlite::{Connection, OpenFlags, params};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Verdict;
use crate::sys::{self, thousands};
use crate::workload::Workload;

/// Target: readings/s at every mark.
const TARGET_RATE: f64 = 500_000.0;
/// Target: the slowest stretch at least this share of the fastest.
const TARGET_FLAT: f64 = 0.75;
/// Target: bytes allocated on disk per buffered reading.
const TARGET_STORED: f64 = 8.0;
/// Target: a 24 h history query of one sensor, ms.
const TARGET_QUERY_MS: f64 = 50.0;
/// How long to wait for `last_seq()` once every receipt of a stretch is in (it should already be).
const SETTLE: Duration = Duration::from_secs(10);

/// The row-per-reading layout as the buffer had it (schema versions 1 to 5): the readings table,
/// its per-sensor index, and the sensors table the rows refer to.
const OLD_SCHEMA: &str = "\
CREATE TABLE sensors (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
CREATE TABLE readings (
    seq     INTEGER PRIMARY KEY,
    sensor  INTEGER NOT NULL REFERENCES sensors (id),
    ts      INTEGER NOT NULL,
    value   REAL,
    quality INTEGER NOT NULL
);
CREATE INDEX readings_sensor_ts ON readings (sensor, ts);";
const OLD_INSERT: &str =
    "INSERT INTO readings (seq, sensor, ts, value, quality) VALUES (?1, ?2, ?3, ?4, ?5)";

/// A phase of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PhaseKind {
    /// The daemon's buffer through its real ingest path.
    Store,
    /// The columnar layout driven directly.
    Engine,
    /// Encoded batches appended to a file, an fdatasync each.
    Floor,
    /// The old row-per-reading layout with its index.
    Old,
}

/// Options of `bench ingest`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Buffered readings at which a row is printed; the last is the size of the run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2000000,10000000,25000000,50000000",
        value_parser = sys::parse_positive
    )]
    at: Vec<u64>,
    /// Distinct sensors the readings cycle over.
    #[arg(long, default_value = "10000", value_parser = sys::parse_positive)]
    sensors: u64,
    /// Readings per producer message in the `store` phase (one Modbus poll is about 100).
    #[arg(long, default_value = "100", value_parser = sys::parse_positive)]
    batch: u64,
    /// Concurrent producer tasks in the `store` phase.
    #[arg(long, default_value = "4", value_parser = sys::parse_positive)]
    producers: u64,
    /// Readings per commit in the `engine`, `floor` and `old` phases (the `[store] flush_rows`
    /// default).
    #[arg(long, default_value = "5000", value_parser = sys::parse_positive)]
    commit: u64,
    /// Readings per fold in the `engine` phase.
    #[arg(long, default_value = "262144", value_parser = sys::parse_positive)]
    fold: u64,
    /// Phases to run, in this order.
    #[arg(long, value_delimiter = ',', default_value = "store,engine,floor,old")]
    phases: Vec<PhaseKind>,
    /// The `store` phase stops at the first mark at or past this many readings.
    #[arg(long, value_parser = sys::parse_positive)]
    store_upto: Option<u64>,
    /// The `old` phase stops at the first mark at or past this many readings (at 10M it already
    /// takes minutes per million).
    #[arg(long, default_value = "10000000", value_parser = sys::parse_positive)]
    old_upto: u64,
    /// Directory for the files [default: a fresh temporary directory in the cargo target
    /// directory, i.e. on the build disk, removed afterwards].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the temporary directory (and its files).
    #[arg(long)]
    keep: bool,
}

/// Figures of one phase at one mark.
#[derive(Clone, Debug)]
struct Mark {
    readings: u64,
    /// Readings/s over the stretch since the previous mark.
    rate: f64,
    /// `write_bytes` per reading over the stretch.
    disk_written: f64,
    /// `wchar` per reading over the stretch.
    written: f64,
    /// Bytes allocated on disk per buffered reading.
    stored: f64,
    load: String,
}

/// What a phase produced.
#[derive(Debug, Default)]
struct Outcome {
    marks: Vec<Mark>,
    /// Times of the 24 h history queries, ms, and the readings the first one returned.
    queries: Vec<f64>,
    query_rows: usize,
    failures: Vec<String>,
    peak_rss: Option<u64>,
    note: String,
}

impl Outcome {
    fn flatness(&self) -> Option<f64> {
        let rates = self.marks.iter().map(|m| m.rate);
        let max = rates.clone().fold(f64::NAN, f64::max);
        let min = rates.fold(f64::NAN, f64::min);
        (self.marks.len() > 1).then(|| min / max)
    }
}

/// Runs the benchmark and prints its report.
pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    let mut at = args.at.clone();
    at.sort_unstable();
    at.dedup();
    let total = *at.last().context("--at is empty")?;
    let sensors = usize::try_from(args.sensors).context("--sensors is too large")?;
    let workload = Arc::new(Workload::new(total, sensors, args.batch));
    let (dir, _temp) = sys::work_dir(args.dir.as_deref(), "markoff-bench-ingest-", args.keep)?;

    println!("markoff bench ingest");
    println!(
        "  workload   up to {} readings of {} sensors, one poll every {} s, {} readings per message",
        thousands(total),
        thousands(workload.sensors() as u64),
        workload.period_ms() as f64 / 1000.0,
        thousands(args.batch),
    );
    println!(
        "  machine    {}, load average {} at start",
        sys::machine(),
        sys::load_average().unwrap_or_else(|| "unknown".to_owned())
    );
    println!("  disk       {} ({})", dir.display(), sys::filesystem(&dir));
    println!("  sqlite     {}", rusqlite::version());
    println!(
        "  marks      {}",
        at.iter()
            .map(|m| thousands(*m))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut results: Vec<(PhaseKind, Outcome)> = Vec::new();
    for &kind in &args.phases {
        let phase_dir = dir.join(format!("{kind:?}").to_lowercase());
        if phase_dir.exists() {
            std::fs::remove_dir_all(&phase_dir)?;
        }
        std::fs::create_dir_all(&phase_dir)?;
        sys::reset_peak_rss();
        let upto = match kind {
            PhaseKind::Store => args.store_upto,
            PhaseKind::Old => Some(args.old_upto),
            _ => None,
        };
        let marks: Vec<u64> = match upto {
            Some(limit) => {
                let last = at.iter().position(|m| *m >= limit).unwrap_or(at.len() - 1);
                at[..=last].to_vec()
            }
            None => at.clone(),
        };
        println!();
        let mut outcome = match kind {
            PhaseKind::Store => {
                println!(
                    "[store] Store::open (default [store], uplink, nothing synced) + {} producers through ingest.submit/write",
                    args.producers
                );
                store_phase(args, &workload, &phase_dir, &marks)?
            }
            PhaseKind::Engine => {
                println!(
                    "[engine] columnar layout driven directly: a batch per {} readings, a fold per {}, nothing synced",
                    thousands(args.commit),
                    thousands(args.fold)
                );
                engine_phase(args, &workload, &phase_dir, &marks)?
            }
            PhaseKind::Floor => {
                println!(
                    "[floor] encoded batches of {} readings appended to a file, an fdatasync each",
                    thousands(args.commit)
                );
                floor_phase(args, &workload, &phase_dir, &marks)?
            }
            PhaseKind::Old => {
                println!(
                    "[old] row per reading + (sensor, ts) index, a transaction per {} readings, 64 MiB cache",
                    thousands(args.commit)
                );
                old_phase(args, &workload, &phase_dir, &marks)?
            }
        };
        outcome.peak_rss = sys::peak_rss();
        print_outcome(&outcome);
        if marks.len() < at.len() {
            println!(
                "  stopped    at {} readings (--{}-upto)",
                thousands(*marks.last().unwrap_or(&0)),
                if kind == PhaseKind::Old {
                    "old"
                } else {
                    "store"
                }
            );
        }
        results.push((kind, outcome));
    }

    summary(&results, &at);
    let failures: Vec<&String> = results.iter().flat_map(|(_, o)| &o.failures).collect();
    if failures.is_empty() {
        println!("  check      OK (seqs, counts and one sensor's history verified in every phase)");
        Ok(Verdict::Checked)
    } else {
        println!("  check      FAILED: the figures above are not valid");
        for f in failures {
            println!("    - {f}");
        }
        Ok(Verdict::CheckFailed)
    }
}

fn print_outcome(o: &Outcome) {
    if !o.note.is_empty() {
        println!("  {}", o.note);
    }
    println!(
        "  | buffered readings | readings/s (stretch) | written to disk B/reading | write(2) B/reading | on disk B/reading | load average |"
    );
    println!("  |---:|---:|---:|---:|---:|---:|");
    for m in &o.marks {
        println!(
            "  | {} | {} | {:.1} | {:.1} | {:.2} | {} |",
            thousands(m.readings),
            thousands(m.rate as u64),
            m.disk_written,
            m.written,
            m.stored,
            m.load
        );
    }
    if let Some(f) = o.flatness() {
        println!(
            "  flatness   slowest stretch {:.0} % of the fastest",
            f * 100.0
        );
    }
    if !o.queries.is_empty() {
        println!(
            "  24 h query {} readings of one sensor: {} ms (three sensors)",
            thousands(o.query_rows as u64),
            o.queries
                .iter()
                .map(|q| format!("{q:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    println!(
        "  peak RSS   {} (VmHWM of the phase)",
        o.peak_rss.map_or_else(|| "unknown".to_owned(), sys::bytes)
    );
    for f in &o.failures {
        println!("  check      FAILED: {f}");
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn summary(results: &[(PhaseKind, Outcome)], at: &[u64]) {
    println!();
    println!(
        "summary (CPU {}, load average {} at the end)",
        sys::cpu_model(),
        sys::load_average().unwrap_or_else(|| "unknown".to_owned())
    );
    let get = |k: PhaseKind| results.iter().find(|(p, _)| *p == k).map(|(_, o)| o);
    print!("  | buffered readings |");
    for (k, _) in results {
        print!(" {k:?} readings/s | {k:?} written B/r | {k:?} stored B/r |");
    }
    println!();
    print!("  |---:|");
    for _ in results {
        print!("---:|---:|---:|");
    }
    println!();
    for &mark in at {
        print!("  | {} |", thousands(mark));
        for (_, o) in results {
            match o.marks.iter().find(|m| m.readings == mark) {
                Some(m) => print!(
                    " {} | {:.1} | {:.2} |",
                    thousands(m.rate as u64),
                    m.disk_written,
                    m.stored
                ),
                None => print!(" not run | | |"),
            }
        }
        println!();
    }
    // The targets apply to the buffer: the store when it ran, else the engine.
    let Some((kind, o)) = [PhaseKind::Store, PhaseKind::Engine]
        .into_iter()
        .find_map(|k| get(k).map(|o| (k, o)))
    else {
        return;
    };
    let name = format!("{kind:?}").to_lowercase();
    let slowest = o.marks.iter().map(|m| m.rate).fold(f64::NAN, f64::min);
    println!(
        "  {name:<6} slowest stretch {} readings/s   target >= {}   {}",
        thousands(slowest as u64),
        thousands(TARGET_RATE as u64),
        met(slowest >= TARGET_RATE)
    );
    let reached = o.marks.last().map_or(0, |m| m.readings);
    let complete = reached == *at.last().unwrap_or(&0);
    if let Some(f) = o.flatness() {
        println!(
            "  {name:<6} flat: slowest {:.0} % of fastest up to {} readings   target >= {:.0} %   {}{}",
            f * 100.0,
            thousands(reached),
            TARGET_FLAT * 100.0,
            met(f >= TARGET_FLAT),
            if complete {
                ""
            } else {
                " (not run to the end)"
            }
        );
    }
    if let Some(m) = o.marks.last() {
        println!(
            "  {name:<6} stored {:.2} B per reading at {}   target <= {TARGET_STORED}   {}",
            m.stored,
            thousands(m.readings),
            met(m.stored <= TARGET_STORED)
        );
    }
    if let Some(worst) = o.queries.iter().copied().reduce(f64::max) {
        println!(
            "  {name:<6} 24 h query of one sensor at {}: {worst:.1} ms (slowest of three)   target <= {TARGET_QUERY_MS} ms   {}",
            thousands(reached),
            met(worst <= TARGET_QUERY_MS)
        );
    }
    if let (Some(floor), Some(old)) = (get(PhaseKind::Floor), get(PhaseKind::Old)) {
        let last = |o: &Outcome| o.marks.last().cloned();
        if let (Some(f), Some(d)) = (last(floor), last(old)) {
            println!(
                "  floor  {} readings/s, {:.1} B written per reading; old layout {} readings/s, {:.1} B written, {:.2} B stored at {}",
                thousands(f.rate as u64),
                f.disk_written,
                thousands(d.rate as u64),
                d.disk_written,
                d.stored,
                thousands(d.readings)
            );
        }
    }
}

/// Measures stretches between marks: `step(from, to)` commits readings `from..to`.
struct Stretches<'a> {
    dir: &'a Path,
    io: sys::Io,
    started: Instant,
    from: u64,
    marks: Vec<Mark>,
}

impl<'a> Stretches<'a> {
    fn new(dir: &'a Path) -> Self {
        Self {
            dir,
            io: sys::io_counters().unwrap_or_default(),
            started: Instant::now(),
            from: 0,
            marks: Vec::new(),
        }
    }

    /// Closes the stretch at `readings` buffered readings.
    fn mark(&mut self, readings: u64) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let io_now = sys::io_counters().unwrap_or_default();
        let io = io_now.since(self.io);
        let n = readings.saturating_sub(self.from).max(1) as f64;
        let m = Mark {
            readings,
            rate: n / secs,
            disk_written: io.disk_written as f64 / n,
            written: io.written as f64 / n,
            stored: sys::allocated(self.dir) as f64 / readings.max(1) as f64,
            load: sys::load_average().unwrap_or_default(),
        };
        println!(
            "  ... {} readings: {} readings/s, {:.1} B written per reading, load {}",
            thousands(m.readings),
            thousands(m.rate as u64),
            m.disk_written,
            m.load
        );
        self.marks.push(m);
        // Restart after the directory walk, so it is not counted in the next stretch.
        self.io = sys::io_counters().unwrap_or_default();
        self.from = readings;
        self.started = Instant::now();
    }
}

fn batch_rows(w: &Workload, from: u64, to: u64) -> Vec<BatchRow> {
    (from..to)
        .map(|k| {
            let s = w.sample(k);
            BatchRow {
                sensor: i64::try_from(s.sensor).unwrap_or(i64::MAX) + 1,
                ts: s.ts,
                value: s.value,
                quality: s.quality.code(),
            }
        })
        .collect()
}

/// Readings of sensor index `sensor` among the first `total`.
fn readings_of(w: &Workload, sensor: u64, total: u64) -> u64 {
    let n = w.sensors() as u64;
    total / n + u64::from(sensor < total % n)
}

/// Sensors whose history is queried: the first, one in the middle, the last.
fn queried(w: &Workload) -> [u64; 3] {
    let n = w.sensors() as u64;
    [0, n / 2, n - 1]
}

fn day_window() -> (i64, i64) {
    let now = Timestamp::now().as_millis();
    (now - 86_400_000, now + 3_600_000)
}

/// Drives the synchronous phases: commits `--commit` readings at a time up to each mark.
fn drive(
    args: &Args,
    dir: &Path,
    marks: &[u64],
    mut commit: impl FnMut(u64, u64) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Mark>> {
    let mut s = Stretches::new(dir);
    let mut k = 0;
    for &mark in marks {
        while k < mark {
            let end = (k + args.commit).min(mark);
            commit(k, end)?;
            k = end;
        }
        s.mark(mark);
    }
    Ok(s.marks)
}

fn engine_phase(args: &Args, w: &Workload, dir: &Path, marks: &[u64]) -> anyhow::Result<Outcome> {
    let mut layout = Layout::open(&dir.join("engine.db"), 4 * 1024, 1000)?;
    let fold = usize::try_from(args.fold)?;
    let mut next_seq = 1;
    let mut failures = Vec::new();
    let marks = drive(args, dir, marks, |from, to| {
        let first = layout.commit(&batch_rows(w, from, to))?;
        if first != next_seq {
            bail!("commit of readings {from}..{to} got seq {first}, expected {next_seq}");
        }
        next_seq += i64::try_from(to - from)?;
        if layout.unfolded() >= fold {
            layout.fold(fold)?;
        }
        Ok(())
    })?;
    let total = marks.last().map_or(0, |m| m.readings);
    let (from, to) = day_window();
    let mut queries = Vec::new();
    let mut query_rows = 0;
    for (i, sensor) in queried(w).into_iter().enumerate() {
        let started = Instant::now();
        let rows = layout.history(i64::try_from(sensor)? + 1, from, to)?;
        queries.push(started.elapsed().as_secs_f64() * 1e3);
        let want = readings_of(w, sensor, total);
        if rows.len() as u64 != want {
            failures.push(format!(
                "engine: sensor {} has {} readings in its history, expected {want}",
                sensor + 1,
                rows.len()
            ));
        }
        if i == 0 {
            query_rows = rows.len();
        }
    }
    drop(layout);
    Ok(Outcome {
        marks,
        queries,
        query_rows,
        failures,
        note: format!("layout     {}", store_layout(&dir.join("engine.db"))),
        ..Outcome::default()
    })
}

fn floor_phase(args: &Args, w: &Workload, dir: &Path, marks: &[u64]) -> anyhow::Result<Outcome> {
    let path = dir.join("floor.bin");
    let mut file = std::fs::File::create(&path)?;
    let mut blobs = 0u64;
    let marks = drive(args, dir, marks, |from, to| {
        file.write_all(&codec::encode_batch(&batch_rows(w, from, to)))?;
        file.sync_data()?;
        blobs += 1;
        Ok(())
    })?;
    let mut failures = Vec::new();
    let mut expected = 0;
    let mut previous = 0;
    for m in &marks {
        expected += (m.readings - previous).div_ceil(args.commit);
        previous = m.readings;
    }
    if blobs != expected {
        failures.push(format!(
            "floor: {blobs} batches appended, expected {expected}"
        ));
    }
    Ok(Outcome {
        marks,
        failures,
        ..Outcome::default()
    })
}

fn old_phase(args: &Args, w: &Workload, dir: &Path, marks: &[u64]) -> anyhow::Result<Outcome> {
    let path = dir.join("old.db");
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The pragmas the buffer had, in its order.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -64 * 1024)?;
    conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.execute_batch(&format!("BEGIN;\n{OLD_SCHEMA}\nCOMMIT;"))
        .context("the old schema")?;
    conn.execute_batch("BEGIN")?;
    {
        let mut stmt = conn.prepare("INSERT INTO sensors (id, key) VALUES (?1, ?2)")?;
        for (i, id) in w.sensor_ids.iter().enumerate() {
            stmt.execute(params![i64::try_from(i + 1)?, id.as_str()])?;
        }
    }
    conn.execute_batch("COMMIT")?;
    let marks = {
        let mut insert = conn.prepare(OLD_INSERT)?;
        drive(args, dir, marks, |from, to| {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            for k in from..to {
                let s = w.sample(k);
                insert.execute(params![
                    i64::try_from(k + 1)?,
                    i64::try_from(s.sensor + 1)?,
                    s.ts,
                    s.value,
                    s.quality.code()
                ])?;
            }
            conn.execute_batch("COMMIT")?;
            Ok(())
        })?
    };
    let total = marks.last().map_or(0, |m| m.readings);
    let mut failures = Vec::new();
    let (count, max_seq): (i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(max(seq), 0) FROM readings",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let want = i64::try_from(total)?;
    if count != want || max_seq != want {
        failures.push(format!(
            "old: {count} rows, max seq {max_seq}, expected {want}"
        ));
    }
    let (from, to) = day_window();
    let mut queries = Vec::new();
    let mut query_rows = 0;
    let mut stmt = conn.prepare(
        "SELECT seq, ts, value, quality FROM readings WHERE sensor = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts",
    )?;
    for (i, sensor) in queried(w).into_iter().enumerate() {
        let started = Instant::now();
        let rows = stmt
            .query_map(params![i64::try_from(sensor)? + 1, from, to], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<f64>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        queries.push(started.elapsed().as_secs_f64() * 1e3);
        let want = readings_of(w, sensor, total);
        if rows.len() as u64 != want {
            failures.push(format!(
                "old: sensor {} has {} readings in its history, expected {want}",
                sensor + 1,
                rows.len()
            ));
        }
        if i == 0 {
            query_rows = rows.len();
        }
    }
    Ok(Outcome {
        marks,
        queries,
        query_rows,
        failures,
        ..Outcome::default()
    })
}

fn store_phase(
    args: &Args,
    workload: &Arc<Workload>,
    dir: &Path,
    marks: &[u64],
) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-runtime")
        .build()
        .context("cannot start the tokio runtime")?;
    let path = dir.join("markoff.db");
    let cfg = StoreConfig::default();
    let producers = args.producers;
    let batch = args.batch;
    let outcome = runtime.block_on(async {
        let store = Store::open(
            &cfg,
            &path,
            // An uplink that has synced nothing yet: the buffer keeps every reading for it.
            StoreOptions { uplink: true },
            Metrics::new(),
            Heartbeat::new("bench"),
        )
        .context("cannot open the buffer")?;
        let mut failures = Vec::new();
        let mut s = Stretches::new(dir);
        let mut sent_messages = 0u64;
        for &mark in marks {
            // Whole messages: the mark is rounded up to the next message boundary.
            let end_message = mark.div_ceil(batch);
            let mut tasks = JoinSet::new();
            for p in 0..producers {
                let ingest = store.ingest.clone();
                let workload = workload.clone();
                let first = sent_messages + p;
                tasks.spawn(async move {
                    let mut messages = (first..end_message)
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
            while let Some(joined) = tasks.join_next().await {
                joined.context("a producer task panicked")??;
            }
            sent_messages = end_message;
            let expected = i64::try_from((end_message * batch).min(workload.total))?;
            let settle_until = Instant::now() + SETTLE;
            while store.shared.last_seq() < expected && Instant::now() < settle_until {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if store.shared.last_seq() != expected {
                failures.push(format!(
                    "store: last_seq() is {} after every receipt, expected {expected}",
                    store.shared.last_seq()
                ));
            }
            s.mark(u64::try_from(expected)?);
        }
        let total = s.marks.last().map_or(0, |m| m.readings);
        let (from, to) = day_window();
        let mut queries = Vec::new();
        let mut query_rows = 0;
        for (i, sensor) in queried(workload).into_iter().enumerate() {
            let key = workload.sensor_ids[usize::try_from(sensor)?]
                .as_str()
                .to_owned();
            let started = Instant::now();
            let points = store
                .reader
                .series(&key, Timestamp(from), Timestamp(to))
                .await?
                .unwrap_or_default();
            queries.push(started.elapsed().as_secs_f64() * 1e3);
            let all = readings_of(workload, sensor, total);
            // The chart's series has every reading (a failed read breaks the line) or, above its
            // raw limit, buckets; either way not more points than readings, and some.
            if points.is_empty()
                || points.len() as u64 > all.max(2 * markoff::store::BUCKETS as u64)
            {
                failures.push(format!(
                    "store: the 24 h series of {key} has {} points for {all} readings",
                    points.len()
                ));
            }
            if i == 0 {
                query_rows = points.len();
            }
        }
        store.writer.drain();
        if !store.writer.finished().await {
            failures.push("store: the writer thread did not stop cleanly".to_owned());
        }
        drop(store);
        anyhow::Ok(Outcome {
            marks: s.marks,
            queries,
            query_rows,
            failures,
            ..Outcome::default()
        })
    })?;
    drop(runtime);
    let mut outcome = outcome;
    outcome.note = format!("layout     {}", store_layout(&path));
    Ok(outcome)
}

/// Which layout the daemon's store wrote: the tables its file holds.
fn store_layout(path: &Path) -> String {
    let Ok(conn) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return "unknown (cannot open the file)".to_owned();
    };
    let has = |table: &str| -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n > 0)
    };
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap_or(-1) };
    if has("readings") && count("SELECT count(*) FROM readings") > 0 {
        format!(
            "row per reading: the readings table holds {} rows (the store has not switched to the columnar layout)",
            thousands(u64::try_from(count("SELECT count(*) FROM readings")).unwrap_or(0))
        )
    } else if has("batches") {
        let file = |suffix: &str| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            sys::bytes(sys::allocated_file(Path::new(&name)))
        };
        format!(
            "columnar: {} batches ({} of blobs), {} folds, {} chunks ({} of blobs); files: database {}, WAL {}, reserve {}",
            count("SELECT count(*) FROM batches"),
            sys::bytes(
                u64::try_from(count("SELECT coalesce(sum(length(data)), 0) FROM batches"))
                    .unwrap_or(0)
            ),
            count("SELECT count(*) FROM folds"),
            count("SELECT count(*) FROM chunks"),
            sys::bytes(
                u64::try_from(count("SELECT coalesce(sum(length(data)), 0) FROM chunks"))
                    .unwrap_or(0)
            ),
            file(""),
            file("-wal"),
            file("-reserve"),
        )
    } else {
        "unknown".to_owned()
    }
}
