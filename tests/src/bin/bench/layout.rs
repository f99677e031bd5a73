//! The buffer's storage engine alone, on one disk, in one run: readings committed in batches to
//! the columnar layout (log + fold, nothing synced; the fold deletes the batches it folded), the
//! same batch bytes appended to a plain file with an `fdatasync` per batch (the floor), and the
//! row-per-reading table with its `(sensor, ts)` index (the old layout). For each: readings/s at
//! each checkpoint of the buffer's size, bytes the process wrote per reading (`wchar` and the
//! block-layer `write_bytes` of `/proc/self/io`), bytes on disk per reading; for the columnar
//! layout, a 24 h history query of one sensor at the end.

use std::io::Write as _;

use anyhow::Context as _;
use markoff::store::codec::{self, BatchRow};
use markoff::store::layout::Layout;
use rusqlite::{Connection, params};
use tokio::time::Instant;

use super::workload::Workload;
use super::{Verdict, sys};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Readings in all.
    #[arg(long, default_value_t = 10_000_000)]
    readings: u64,
    /// Sensors.
    #[arg(long, default_value_t = 10_000)]
    sensors: usize,
    /// Readings per commit.
    #[arg(long, default_value_t = 5_000)]
    batch: u64,
    /// Readings per fold.
    #[arg(long, default_value_t = 262_144)]
    fold: usize,
    /// Buffer sizes (readings) at which figures are printed.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2000000,10000000,25000000,50000000"
    )]
    at: Vec<u64>,
    /// Skip the row-per-reading layout (slow at large sizes).
    #[arg(long)]
    no_old: bool,
    /// Directory for the files (default: a temporary directory in the target directory).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

fn write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("write_bytes:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn on_disk(paths: &[std::path::PathBuf]) -> u64 {
    paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
        .sum()
}

fn rows(w: &Workload, from: u64, to: u64) -> Vec<BatchRow> {
    (from..to)
        .map(|k| {
            let s = w.sample(k);
            BatchRow {
                sensor: s.sensor as i64 + 1,
                ts: s.ts,
                value: s.value,
                quality: s.quality.code(),
            }
        })
        .collect()
}

/// Runs one layout: `commit` per batch, figures at each checkpoint.
fn phase(
    name: &str,
    args: &Args,
    w: &Workload,
    files: &[std::path::PathBuf],
    mut commit: impl FnMut(&[BatchRow]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    println!();
    println!(
        "## {name} (load average {})",
        sys::load_average().unwrap_or_default()
    );
    println!(
        "| buffered readings | readings/s (this stretch) | wchar B/reading | write_bytes B/reading | on disk B/reading |"
    );
    println!("|---:|---:|---:|---:|---:|");
    let io0 = sys::io_counters().unwrap_or_default();
    let wb0 = write_bytes();
    let mut k = 0;
    let mut stretch = Instant::now();
    let mut stretch_from = 0;
    for &mark in args.at.iter().filter(|m| **m <= args.readings) {
        while k < mark {
            let end = (k + args.batch).min(mark);
            commit(&rows(w, k, end))?;
            k = end;
        }
        let secs = stretch.elapsed().as_secs_f64();
        let io = sys::io_counters().unwrap_or_default().since(io0);
        println!(
            "| {k} | {:.0} | {:.1} | {:.1} | {:.2} |",
            (k - stretch_from) as f64 / secs,
            io.written as f64 / k as f64,
            write_bytes().saturating_sub(wb0) as f64 / k as f64,
            on_disk(files) as f64 / k as f64
        );
        stretch = Instant::now();
        stretch_from = k;
    }
    Ok(())
}

pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    println!("machine: {}", sys::machine());
    let total = args
        .readings
        .min(args.at.iter().copied().max().unwrap_or(args.readings));
    let w = Workload::new(total, args.sensors, 100);
    let base = match &args.dir {
        Some(d) => d.clone(),
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tmp"),
    };
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    println!(
        "{total} readings of {} sensors, {} per commit; folds of {} readings; files in {}",
        args.sensors,
        args.batch,
        args.fold,
        dir.path().display()
    );

    // Columnar.
    let db = dir.path().join("columnar.db");
    let files = vec![db.clone(), dir.path().join("columnar.db-wal")];
    let mut layout = Layout::open(&db, 4 * 1024, 1000)?;
    phase(
        "columnar layout (nothing synced; folded batches released by the fold)",
        args,
        &w,
        &files,
        |rows| {
            layout.commit(rows)?;
            if layout.unfolded() >= args.fold {
                layout.fold(args.fold)?;
            }
            Ok(())
        },
    )?;
    // A 24 h query of one sensor (the workload spans at most a day).
    let now = markoff::model::Timestamp::now().as_millis();
    let mut times = Vec::new();
    let mut found = 0;
    for sensor in [1_i64, 4_321, 9_999] {
        let started = Instant::now();
        found = layout
            .history(sensor, now - 86_400_000, now + 86_400_000)?
            .len();
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "24 h history of one sensor among {}: {found} readings, {:.1} / {:.1} / {:.1} ms (three sensors)",
        args.sensors, times[0], times[1], times[2]
    );
    drop(layout);

    // Floor: the same batches, encoded, appended to a plain file, fdatasync per batch.
    let floor = dir.path().join("floor.bin");
    let mut f = std::fs::File::create(&floor)?;
    phase(
        "floor: encoded batches appended to a file, fdatasync each",
        args,
        &w,
        std::slice::from_ref(&floor),
        |rows| {
            f.write_all(&codec::encode_batch(rows))?;
            f.sync_data()?;
            Ok(())
        },
    )?;

    if !args.no_old {
        let old = dir.path().join("rows.db");
        let files = vec![old.clone(), dir.path().join("rows.db-wal")];
        let conn = Connection::open(&old)?;
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -64 * 1024)?;
        conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
        conn.execute_batch(
            "CREATE TABLE readings (seq INTEGER PRIMARY KEY, sensor INTEGER NOT NULL, ts INTEGER NOT NULL, \
             value REAL, quality INTEGER NOT NULL); CREATE INDEX readings_sensor_ts ON readings (sensor, ts);",
        )
        .context("old schema")?;
        let mut seq: i64 = 0;
        phase(
            "row-per-reading layout with its (sensor, ts) index (the old layout)",
            args,
            &w,
            &files,
            |rows| {
                let tx = conn.unchecked_transaction()?;
                {
                    let mut insert = tx.prepare_cached(
                    "INSERT INTO readings (seq, sensor, ts, value, quality) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                    for r in rows {
                        seq += 1;
                        insert.execute(params![seq, r.sensor, r.ts, r.value, r.quality])?;
                    }
                }
                tx.commit()?;
                Ok(())
            },
        )?;
    }
    println!();
    println!(
        "load average at end: {}",
        sys::load_average().unwrap_or_default()
    );
    Ok(Verdict::Checked)
}
