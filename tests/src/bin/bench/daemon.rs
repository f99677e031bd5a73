//! `bench daemon`: what `markoff run` writes to disk and holds in memory in steady state, with
//! `--points` points read once every `--interval` (a second by default) by each of `--sources`:
//! - `simulator`: the built-in simulator, which sends every point in one message per interval;
//! - `modbus`: a simulated Modbus site served by this process ([`site`]: Modbus TCP gateways with
//!   devices of 50 points behind them, answering as serial lines do), polled by the daemon's real
//!   Modbus source, one message per device poll, scattered over the interval.
//!
//! For each point count and source the real binary (`markoff` beside this one, or `$MARKOFF_BIN`)
//! runs with a config of its own (a fresh buffer, the default `[store]`, the API on a free
//! loopback port, the source at `--interval`); the sources of one point count run at the same
//! time, each in its own daemon. The daemon gets the environment the packaged systemd unit
//! gives it (`Environment=` lines of packaging/debian/markoff.service other than the config path;
//! `--no-unit-env` leaves them out). After `--warmup` seconds, the bench reads `/proc/<pid>/io` of
//! the daemon and its `markoff_readings_ingested` counter, waits `--seconds`, and reads them
//! again: bytes written to disk per reading (`write_bytes`: WAL, database, checkpoints, logs,
//! whatever the process wrote), bytes through `write(2)` per reading (`wchar`), readings/s, the
//! growth of the data directory per reading, and the daemon's memory: `VmRSS` sampled every
//! second through the window (the largest sample), at its end (with its anonymous and
//! file-mapped parts), and `VmHWM`, the peak since the start.
//!
//! Two periodic costs would otherwise fall in or out of the window by chance:
//! - **The fold** (the columnar layout rewrites the log into per-sensor chunks every 262,144
//!   readings, every 4.4 minutes at 1,000 points): when the buffer has a `folds` table, the
//!   window starts just after a fold has committed and ends just after a later one, at least
//!   `--seconds` later, so it holds whole fold cycles.
//! - **The WAL checkpoint** (every 32 MiB of WAL with the default budget: tens of minutes at
//!   1,000 points): the bench checkpoints the WAL itself (`PRAGMA wal_checkpoint(PASSIVE)` on a
//!   connection of its own) just before the window, so what was logged before is not counted, and
//!   just after it, counting what its own process wrote then (`write_bytes` of `/proc/self/io`)
//!   with the daemon's bytes: every page the window logged is also written to the database file
//!   once, as the daemon's own checkpoints would.
//!
//! With `--baseline BIN` the same is measured, in the same run, for another build of the daemon
//! (for example the last release with the row-per-reading buffer): the bench runs itself again
//! with `MARKOFF_BIN=BIN` and prints both side by side.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use markoff_tests::gateway::TempGateway;

use super::Verdict;
use super::sys::{self, thousands};

// The simulated Modbus site.
#[path = "daemon_site.rs"]
mod site;

/// The packaged systemd unit: the environment it gives the daemon.
const UNIT: &str = include_str!("../../../../packaging/debian/markoff.service");

/// `Environment=` assignments of the packaged unit, but the config path (the bench gives its own).
fn unit_env() -> Vec<(String, String)> {
    UNIT.lines()
        .filter_map(|l| l.trim().strip_prefix("Environment="))
        .flat_map(str::split_whitespace)
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k != "MARKOFF_CONFIG")
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// What produces the readings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Source {
    /// The built-in simulator: every point in one message per interval.
    Simulator,
    /// A simulated Modbus site polled by the Modbus source: a message per device poll.
    Modbus,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Self::Simulator => "simulator",
            Self::Modbus => "modbus",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "simulator" => Some(Self::Simulator),
            "modbus" => Some(Self::Modbus),
            _ => None,
        }
    }
}

/// Target: bytes written to disk per reading in steady state.
const TARGET_WRITTEN: f64 = 40.0;
/// Target: RSS with 10,000 points at 1 Hz, bytes.
const TARGET_RSS: u64 = 40 * 1000 * 1000;

/// Options of `bench daemon`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Point counts to run, each in a daemon of its own.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000", value_parser = sys::parse_positive)]
    points: Vec<u64>,
    /// Sources to run for each point count (at the same time, a daemon each).
    #[arg(long, value_delimiter = ',', default_value = "simulator,modbus")]
    sources: Vec<Source>,
    /// Run the daemon without the packaged unit's environment.
    #[arg(long)]
    no_unit_env: bool,
    /// More environment for the daemon (`NAME=VALUE`, repeatable), after the unit's.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// `[store] cache_size` of the daemon (`"4MiB"`) instead of the default.
    #[arg(long)]
    cache_size: Option<String>,
    /// How often the simulator reads every point (`[sources.simulator] interval`); the targets
    /// are set for 1 s.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Seconds from the daemon being ready to the start of the measurement.
    #[arg(long, default_value_t = 60)]
    warmup: u64,
    /// Seconds measured (at least; the window is stretched to end just after a fold).
    #[arg(long, default_value_t = 180)]
    seconds: u64,
    /// Measure exactly `--seconds`, without aligning the window on folds.
    #[arg(long)]
    no_fold_align: bool,
    /// Another markoff binary measured the same way in the same run, as the baseline.
    #[arg(long, value_name = "BIN")]
    baseline: Option<PathBuf>,
    /// Run the baseline without the packaged unit's environment (as a release whose unit had
    /// none).
    #[arg(long)]
    baseline_no_unit_env: bool,
    /// Print only machine-readable result lines (used for the baseline run).
    #[arg(long, hide = true)]
    results_only: bool,
}

/// Steady-state figures of one daemon.
#[derive(Clone, Debug)]
struct Figures {
    source: Source,
    points: u64,
    rate: f64,
    disk_written: f64,
    written: f64,
    grown: f64,
    /// `VmRSS` at the end of the window.
    rss: u64,
    hwm: u64,
    /// The largest `VmRSS` sampled in the window.
    rss_max: u64,
    /// `RssAnon` and `RssFile` at the end of the window.
    anon: u64,
    file: u64,
    load: String,
    /// Folds inside the window.
    folds: i64,
    /// Bytes the window's closing checkpoint wrote, per reading (part of `disk_written`).
    checkpoint: f64,
}

impl Figures {
    fn line(&self) -> String {
        format!(
            "result {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.source.name(),
            self.points,
            self.rate,
            self.disk_written,
            self.written,
            self.grown,
            self.rss,
            self.hwm,
            self.load,
            self.folds,
            self.checkpoint,
            self.rss_max,
            self.anon,
            self.file
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let mut f = line.strip_prefix("result ")?.split_whitespace();
        Some(Self {
            source: Source::parse(f.next()?)?,
            points: f.next()?.parse().ok()?,
            rate: f.next()?.parse().ok()?,
            disk_written: f.next()?.parse().ok()?,
            written: f.next()?.parse().ok()?,
            grown: f.next()?.parse().ok()?,
            rss: f.next()?.parse().ok()?,
            hwm: f.next()?.parse().ok()?,
            load: f.next()?.to_owned(),
            folds: f.next()?.parse().ok()?,
            checkpoint: f.next()?.parse().ok()?,
            rss_max: f.next()?.parse().ok()?,
            anon: f.next()?.parse().ok()?,
            file: f.next()?.parse().ok()?,
        })
    }
}

/// A byte count in MB (10^6 bytes) and MiB.
fn mb(n: u64) -> String {
    format!(
        "{:.1} MB ({:.1} MiB)",
        n as f64 / 1e6,
        n as f64 / (1024.0 * 1024.0)
    )
}

/// Runs the futures at the same time; their results in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    // Poll them together: each result is taken as it comes, kept in order.
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, r) in pinned.iter_mut().zip(results.iter_mut()) {
            if r.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *r = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}

/// Floors and rooms per floor for about `points` points (three per room, six plant sensors).
fn layout_for(points: u64) -> (u32, u32) {
    let rooms = points.saturating_sub(6).div_ceil(3).max(1);
    let floors = rooms.div_ceil(250).clamp(1, 200);
    let per_floor = rooms.div_ceil(floors).clamp(1, 500);
    (
        u32::try_from(floors).unwrap_or(200),
        u32::try_from(per_floor).unwrap_or(500),
    )
}

/// A connection of the bench's own to the daemon's buffer: fold count and WAL checkpoints.
struct Buffer {
    conn: rusqlite::Connection,
    columnar: bool,
}

impl Buffer {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let columnar = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'folds'",
            [],
            |r| r.get::<_, i64>(0),
        )? > 0;
        Ok(Self { conn, columnar })
    }

    /// Folds committed so far (0 for the row-per-reading layout).
    fn folds(&self) -> anyhow::Result<i64> {
        if !self.columnar {
            return Ok(0);
        }
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM folds", [], |r| r.get(0))?)
    }

    /// Copies the WAL into the database file; returns the bytes this process wrote to disk
    /// meanwhile.
    fn checkpoint(&self) -> anyhow::Result<u64> {
        let before = sys::io_counters().context("cannot read /proc/self/io")?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        let after = sys::io_counters().context("cannot read /proc/self/io")?;
        Ok(after.since(before).disk_written)
    }

    /// Waits for the fold after `seen` to commit, polling; `None` after `limit`.
    async fn next_fold(&self, seen: i64, limit: Duration) -> anyhow::Result<Option<i64>> {
        let until = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < until {
            let now = self.folds()?;
            if now > seen {
                return Ok(Some(now));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(None)
    }
}

/// Longest wait for a fold: the daemon folds at least every 15 minutes.
const FOLD_PATIENCE: Duration = Duration::from_secs(16 * 60);

/// `RssAnon` and `RssFile` of a process, bytes.
fn rss_parts(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |field: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(field))?;
        line[field.len()..].split_whitespace().next()?.parse().ok()
    };
    Some((kb("RssAnon:")? * 1024, kb("RssFile:")? * 1024))
}

/// Sleeps `d`, sampling the daemon's `VmRSS` every second; returns the largest sample.
async fn sample_rss(pid: u32, d: Duration, mut max: u64) -> u64 {
    let until = tokio::time::Instant::now() + d;
    loop {
        if let Some((rss, _)) = sys::process_rss(pid) {
            max = max.max(rss);
        }
        let now = tokio::time::Instant::now();
        if now >= until {
            return max;
        }
        tokio::time::sleep((until - now).min(Duration::from_secs(1))).await;
    }
}

async fn measure(args: &Args, source: Source, points: u64) -> anyhow::Result<Figures> {
    let mut builder = TempGateway::builder().log_filter("warn");
    if !args.no_unit_env {
        builder = builder.envs(unit_env());
    }
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--env {kv}: NAME=VALUE expected"))?;
        builder = builder.env(k, v);
    }
    if let Some(size) = &args.cache_size {
        builder = builder.cache_size(size);
    }
    let (site, sensors) = match source {
        Source::Simulator => {
            let (floors, rooms) = layout_for(points);
            builder = builder.simulator(floors, rooms, args.interval);
            (None, u64::from(floors * rooms * 3 + 6))
        }
        Source::Modbus => {
            let site = site::Site::start(points, args.interval).await?;
            builder = builder.no_simulator().extra_toml(&site.toml);
            let points = site.points;
            if !args.results_only {
                println!(
                    "  modbus     {} points: {} devices of {} points behind {} Modbus TCP gateways ({} devices each at most)",
                    thousands(points),
                    site.devices,
                    site::POINTS_PER_DEVICE,
                    site.gateways,
                    site::DEVICES_PER_GATEWAY
                );
            }
            (Some(site), points)
        }
    };
    let mut gw = builder.start().await;
    let result = measure_running(args, &mut gw, sensors).await;
    if let Some(site) = site {
        site.stop().await;
    }
    let mut f = result?;
    f.source = source;
    Ok(f)
}

async fn measure_running(
    args: &Args,
    gw: &mut TempGateway,
    sensors: u64,
) -> anyhow::Result<Figures> {
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let pid = gw.pid();
    let buffer = Buffer::open(&gw.db_path())?;
    let align = buffer.columnar && !args.no_fold_align;
    let mut folds0 = buffer.folds()?;
    if align && let Some(f) = buffer.next_fold(folds0, FOLD_PATIENCE).await? {
        folds0 = f;
    }
    let ingested = |text: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("markoff_readings_ingested"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let _before_window = buffer.checkpoint()?;
    let io0 = sys::process_io(pid).context("cannot read /proc/<pid>/io of the daemon")?;
    let n0 = ingested(&gw.metrics_text().await);
    let disk0 = sys::allocated(gw.dir());
    let t0 = tokio::time::Instant::now();
    let mut rss_max = sample_rss(pid, Duration::from_secs(args.seconds), 0).await;
    let mut folds = buffer.folds()? - folds0;
    if align {
        // Wait for the next fold, still sampling the memory.
        let until = tokio::time::Instant::now() + FOLD_PATIENCE;
        while buffer.folds()? == folds0 + folds && tokio::time::Instant::now() < until {
            rss_max = sample_rss(pid, Duration::from_millis(100), rss_max).await;
        }
        folds = buffer.folds()? - folds0;
    }
    let io = sys::process_io(pid)
        .context("cannot read /proc/<pid>/io of the daemon")?
        .since(io0);
    let n = ingested(&gw.metrics_text().await) - n0;
    let checkpoint = buffer.checkpoint()?;
    let secs = t0.elapsed().as_secs_f64();
    let disk = sys::allocated(gw.dir());
    let (rss, hwm) = sys::process_rss(pid).context("cannot read the daemon's status")?;
    let (anon, file) = rss_parts(pid).context("cannot read the daemon's status")?;
    drop(buffer);
    if !gw.is_running() {
        bail!(
            "the daemon exited during the measurement; log:\n{}",
            gw.log()
        );
    }
    if n <= 0.0 {
        bail!(
            "the daemon ingested no readings in {secs:.0} s; log:\n{}",
            gw.log()
        );
    }
    gw.sigterm();
    gw.wait_exit(Duration::from_secs(60)).await;
    Ok(Figures {
        source: Source::Simulator,
        points: sensors,
        rate: n / secs,
        disk_written: (io.disk_written + checkpoint) as f64 / n,
        written: io.written as f64 / n,
        grown: disk.saturating_sub(disk0) as f64 / n,
        rss,
        hwm,
        rss_max: rss_max.max(rss),
        anon,
        file,
        load: sys::load_average().unwrap_or_else(|| "unknown".to_owned()),
        folds,
        checkpoint: checkpoint as f64 / n,
    })
}

/// Runs the benchmark and prints its report.
pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    if !args.results_only {
        println!("markoff bench daemon");
        println!(
            "  machine    {}, load average {} at start",
            sys::machine(),
            sys::load_average().unwrap_or_else(|| "unknown".to_owned())
        );
        println!(
            "  daemon     {}",
            markoff_tests::binary::markoff_bin().display()
        );
        let mut env: Vec<String> = if args.no_unit_env {
            Vec::new()
        } else {
            unit_env().iter().map(|(k, v)| format!("{k}={v}")).collect()
        };
        env.extend(args.env.iter().cloned());
        println!(
            "  run        {} reading every point every {}; [store] {}; environment: {}{}; {} s warm-up, {} s measured{}",
            args.sources
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(" and "),
            humantime::format_duration(args.interval),
            args.cache_size
                .as_ref()
                .map_or_else(|| "defaults".to_owned(), |c| format!("cache_size = {c}")),
            if args.no_unit_env {
                "without the packaged unit's"
            } else {
                "the packaged unit's"
            },
            if env.is_empty() {
                " (none)".to_owned()
            } else {
                format!(" ({})", env.join(" "))
            },
            args.warmup,
            args.seconds,
            if args.no_fold_align {
                ""
            } else {
                " (at least: from just after a fold to just after a later one)"
            }
        );
    }
    let mut ours = Vec::new();
    for &points in &args.points {
        let runs = args.sources.iter().map(|&s| measure(args, s, points));
        let figures = runtime.block_on(async {
            let handles: Vec<_> = runs.collect();
            let mut out = Vec::new();
            // The sources of one point count run at the same time.
            for r in join_all(handles).await {
                out.push(r?);
            }
            anyhow::Ok(out)
        })?;
        for f in figures {
            if args.results_only {
                println!("{}", f.line());
            } else {
                println!(
                    "  ... {} {} points: {} readings/s, {:.1} B written per reading ({:.1} of them by the closing checkpoint, {} folds in the window), RSS {} (largest in the window {}), load {}",
                    f.source.name(),
                    thousands(f.points),
                    thousands(f.rate as u64),
                    f.disk_written,
                    f.checkpoint,
                    f.folds,
                    mb(f.rss),
                    mb(f.rss_max),
                    f.load
                );
            }
            ours.push(f);
        }
    }
    if args.results_only {
        return Ok(Verdict::Checked);
    }
    let mut theirs = Vec::new();
    if let Some(bin) = &args.baseline {
        println!("  baseline   {}", bin.display());
        let exe = std::env::current_exe()?;
        let points = args
            .points
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sources = args
            .sources
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(",");
        let mut cmd = std::process::Command::new(exe);
        cmd.args([
            "daemon",
            "--results-only",
            "--points",
            &points,
            "--sources",
            &sources,
            "--warmup",
            &args.warmup.to_string(),
            "--seconds",
            &args.seconds.to_string(),
            "--interval",
            &humantime::format_duration(args.interval).to_string(),
        ]);
        if args.no_fold_align {
            cmd.arg("--no-fold-align");
        }
        if args.no_unit_env || args.baseline_no_unit_env {
            cmd.arg("--no-unit-env");
        }
        for kv in &args.env {
            cmd.args(["--env", kv]);
        }
        if let Some(size) = &args.cache_size {
            cmd.args(["--cache-size", size]);
        }
        let out = cmd
            .env(markoff_tests::binary::BIN_ENV, bin)
            .output()
            .context("cannot run the baseline")?;
        let text = String::from_utf8_lossy(&out.stdout);
        theirs = text.lines().filter_map(Figures::parse).collect();
        if !out.status.success() || theirs.len() != args.points.len() * args.sources.len() {
            bail!(
                "the baseline run failed ({}):\n{text}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    println!();
    println!(
        "summary (CPU {}, load average {} at the end)",
        sys::cpu_model(),
        sys::load_average().unwrap_or_else(|| "unknown".to_owned())
    );
    println!(
        "  | daemon | source | points | interval | readings/s | written to disk B/reading | written to disk a day | of which closing checkpoint | folds in window | write(2) B/reading | data dir growth B/reading | RSS at the end (anonymous + files) | largest RSS in the window | peak RSS since start | load average |"
    );
    println!("  |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let interval = humantime::format_duration(args.interval);
    let at_1hz = args.interval == Duration::from_secs(1);
    for (who, list) in [("this build", &ours), ("baseline", &theirs)] {
        for f in list {
            println!(
                "  | {who} | {} | {} | {interval} | {:.1} | {:.1} | {} | {:.1} | {} | {:.1} | {:.2} | {:.1} MB ({:.1} + {:.1}) | {:.1} MB | {:.1} MB | {} |",
                f.source.name(),
                thousands(f.points),
                f.rate,
                f.disk_written,
                sys::bytes((f.disk_written * f.rate * 86_400.0) as u64),
                f.checkpoint,
                f.folds,
                f.written,
                f.grown,
                f.rss as f64 / 1e6,
                f.anon as f64 / 1e6,
                f.file as f64 / 1e6,
                f.rss_max as f64 / 1e6,
                f.hwm as f64 / 1e6,
                f.load
            );
        }
    }
    if !at_1hz {
        println!("  targets    set for a 1 s poll: not judged at {interval}");
    }
    for f in ours.iter().filter(|_| at_1hz) {
        println!(
            "  {} {} points: {:.1} B written to disk per reading   target <= {TARGET_WRITTEN}   {}",
            f.source.name(),
            thousands(f.points),
            f.disk_written,
            if f.disk_written <= TARGET_WRITTEN {
                "met"
            } else {
                "MISSED"
            }
        );
    }
    for f in ours
        .iter()
        .filter(|f| f.points >= 10_000 && f.points < 20_000 && at_1hz)
    {
        let worst = f.rss_max.max(f.hwm);
        println!(
            "  {} {} points: RSS {}, largest in the window {}, peak since start {}   target <= 40 MB (40,000,000 bytes)   {}",
            f.source.name(),
            thousands(f.points),
            mb(f.rss),
            mb(f.rss_max),
            mb(f.hwm),
            if worst <= TARGET_RSS { "met" } else { "MISSED" }
        );
    }
    // Every point was read about once per interval.
    let expected = |f: &Figures| f.points as f64 / args.interval.as_secs_f64();
    let failures: Vec<String> = ours
        .iter()
        .filter(|f| f.rate < expected(f) * 0.9)
        .map(|f| {
            format!(
                "{} {} points ingested only {:.1} readings/s ({:.1} expected)",
                f.source.name(),
                f.points,
                f.rate,
                expected(f)
            )
        })
        .collect();
    if failures.is_empty() {
        println!("  check      OK (every daemon ingested each point about once per interval)");
        Ok(Verdict::Checked)
    } else {
        println!("  check      FAILED: the figures above are not valid");
        for f in failures {
            println!("    - {f}");
        }
        Ok(Verdict::CheckFailed)
    }
}
