//! `bench fleet`: N simulated gateways in one process, each with its own role, connection,
//! cursor and load, uploading through the real upload protocol (`markoff_proto::upload_readings`,
//! what the daemon's uploader calls; rows are generated in memory instead of read from a SQLite
//! buffer) into one PostgreSQL, through a PgBouncer of the bench's own (the packaged
//! configuration) and, with `--direct`, straight to PostgreSQL; beside raw binary COPY of the
//! same rows in the same run. With `--outage S`, PgBouncer is stopped (SIGSTOP: it accepts
//! nothing and answers nothing) for S seconds mid-run; the gateways time out, reconnect with the
//! uploader's jitter when it continues, and the drain time is measured.
//!
//! Reported: aggregate rows/s, per-gateway lag (read time to central commit) p50/p99 outside the
//! outage, PostgreSQL CPU (from /proc of the `postgres` processes) and its peak connections,
//! refused connections and failed calls. Checked: the central row count equals what the
//! gateways were told was inserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use markoff_cloud_sync::{ReadingRow, Stream};
use markoff_tests::pg::PgTestDb;
use markoff_tests::pgbouncer::PgBouncer;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::Verdict;
use crate::sys;

/// Command-line options of `bench fleet`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Simulated gateways.
    #[arg(long, default_value_t = 1000)]
    gateways: usize,
    /// Readings per second per gateway (uploaded once a second).
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Seconds of load per mode.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds PgBouncer is stopped mid-run (0: no outage).
    #[arg(long, default_value_t = 0)]
    outage: u64,
    /// Also run the fleet straight to PostgreSQL, without PgBouncer.
    #[arg(long)]
    direct: bool,
}

/// Lag samples and counters of one run.
#[derive(Debug, Default)]
struct Shared {
    lags_ms: Mutex<Vec<u64>>,
    inserted: AtomicU64,
    refused: AtomicU64,
    failed_calls: AtomicU64,
    /// When PgBouncer continued after the outage (ms since the epoch; 0 before).
    resumed_ms: std::sync::atomic::AtomicI64,
    /// Gateways that have committed their whole backlog since then.
    caught_up: AtomicU64,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: &Args) -> anyhow::Result<Verdict> {
    anyhow::ensure!(
        markoff_tests::services::require_postgres(),
        "PostgreSQL is needed"
    );
    println!(
        "bench fleet: {} gateways x {} readings/s, {} s per mode, outage {} s",
        args.gateways, args.rate, args.seconds, args.outage
    );
    println!(
        "CPU {}; load average {}",
        sys::cpu_model(),
        sys::load_average().unwrap_or_default()
    );
    let mut pg = PgTestDb::create("fleet").await;
    let mut admin = pg.admin().await;
    sqlx::query("SELECT markoff.ensure_partitions(1, 1)")
        .execute(&mut admin)
        .await?;
    let started = Instant::now();
    let mut creds = Vec::with_capacity(args.gateways);
    for i in 0..args.gateways {
        let c = pg
            .add_gateway(&format!("fleet-{i:04}"), &format!("building-{i:04}"))
            .await;
        creds.push((
            c.gateway_id.clone(),
            c.role.clone(),
            c.password.expose().to_owned(),
        ));
    }
    println!(
        "provisioned {} gateway roles in {:.1} s",
        args.gateways,
        started.elapsed().as_secs_f64()
    );
    let creds = Arc::new(creds);
    let bouncer = PgBouncer::start(&pg, 2)
        .await
        .ok_or_else(|| anyhow::anyhow!("pgbouncer is not installed"))?;
    println!(
        "{}",
        markoff_tests::pgbouncer::version().unwrap_or_default()
    );

    let mut verdict = Verdict::Checked;
    let mut modes = vec![("pgbouncer", bouncer.addr(), Some(bouncer.pid()))];
    if args.direct {
        modes.push(("direct", markoff_tests::services::postgres_addr(), None));
    }
    for (name, addr, pid) in modes {
        let before: i64 = sqlx::query_scalar("SELECT count(*) FROM markoff.readings")
            .fetch_one(&mut admin)
            .await?;
        let (shared, elapsed, cpu, peak_conns, drain) =
            run_fleet(args, &pg, &creds, &addr, pid).await?;
        let after: i64 = sqlx::query_scalar("SELECT count(*) FROM markoff.readings")
            .fetch_one(&mut admin)
            .await?;
        let inserted = shared.inserted.load(Ordering::Relaxed);
        let ok = u64::try_from(after - before).unwrap_or(0) == inserted;
        if !ok {
            verdict = Verdict::CheckFailed;
        }
        let mut lags = shared.lags_ms.lock().await.clone();
        lags.sort_unstable();
        let pct = |p: f64| {
            lags.get(((lags.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        let rate = inserted as f64 / elapsed;
        println!("== {name} ==");
        println!(
            "  rows/s {rate:.0} (target 100,000: {}), rows {inserted}, central count check: {}",
            if rate >= 100_000.0 { "met" } else { "MISSED" },
            if ok { "ok" } else { "FAILED" }
        );
        println!(
            "  lag p50 {} ms, p99 {} ms (target p99 < 10,000 ms: {}), samples {}",
            pct(0.5),
            pct(0.99),
            if pct(0.99) < 10_000 { "met" } else { "MISSED" },
            lags.len()
        );
        println!(
            "  PostgreSQL CPU {:.0} % of one core, peak connections {peak_conns}",
            cpu * 100.0
        );
        println!(
            "  refused connections {}, failed calls {}",
            shared.refused.load(Ordering::Relaxed),
            shared.failed_calls.load(Ordering::Relaxed)
        );
        if let Some(d) = drain {
            println!(
                "  outage {} s: backlog drained {:.1} s after PgBouncer continued (target < 300 s: {})",
                args.outage,
                d,
                if d < 300.0 { "met" } else { "MISSED" }
            );
        }
        println!("  load average {}", sys::load_average().unwrap_or_default());
    }

    // Raw COPY of as many rows as one second of the fleet, in the same run.
    let n = (args.gateways as u64 * u64::from(args.rate)).min(500_000);
    let rows = synth(1, n, now_ms());
    let t = Instant::now();
    let copied =
        markoff_cloud_sync::raw_copy_readings(&mut admin, "raw-copy-baseline", &rows).await?;
    println!(
        "== raw COPY == {copied} rows in {:.2} s: {:.0} rows/s (as the owner, one connection)",
        t.elapsed().as_secs_f64(),
        copied as f64 / t.elapsed().as_secs_f64()
    );
    if std::env::var_os("MARKOFF_BENCH_PGBOUNCER_LOG").is_some() {
        println!("{}", bouncer.log());
    }
    drop(bouncer);
    drop(admin);
    Ok(verdict)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

fn synth(first_seq: i64, n: u64, ts_ms: i64) -> Vec<ReadingRow> {
    (0..n as i64)
        .map(|i| ReadingRow {
            seq: first_seq + i,
            sensor_id: (first_seq + i) % 1000,
            ts_ms,
            value: Some(((first_seq + i) % 97) as f64 / 4.0),
            quality: 0,
        })
        .collect()
}

/// Sum of user and system CPU ticks of the processes named `postgres`.
fn postgres_ticks() -> u64 {
    let mut total = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for e in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the command: state is field 3, utime 14, stime 15 (1-based in proc(5)).
        let ut: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let st: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        total += ut + st;
    }
    total
}

async fn connect(addr: &str, db: &str, role: &str, pw: &str) -> Result<PgConnection, sqlx::Error> {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "5432"));
    let opts = PgConnectOptions::new_without_pgpass()
        .host(host)
        .port(port.parse().unwrap_or(5432))
        .username(role)
        .password(pw)
        .database(db);
    PgConnection::connect_with(&opts).await
}

#[allow(clippy::type_complexity)]
async fn run_fleet(
    args: &Args,
    pg: &PgTestDb,
    creds: &Arc<Vec<(String, String, String)>>,
    addr: &str,
    bouncer_pid: Option<u32>,
) -> anyhow::Result<(Arc<Shared>, f64, f64, i64, Option<f64>)> {
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(AtomicBool::new(false));
    let in_outage = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let t0 = Instant::now();
    for i in 0..creds.len() {
        let (creds, shared, stop, in_outage) = (
            creds.clone(),
            shared.clone(),
            stop.clone(),
            in_outage.clone(),
        );
        let (addr, db, rate, n) = (
            addr.to_owned(),
            pg.name().to_owned(),
            args.rate,
            creds.len(),
        );
        tasks.push(tokio::spawn(async move {
            let (gw, role, pw) = &creds[i];
            // Spread the fleet's rounds over the second.
            tokio::time::sleep(Duration::from_millis((i * 1000 / n.max(1)) as u64)).await;
            let mut conn: Option<PgConnection> = None;
            let mut pending: Vec<ReadingRow> = Vec::new();
            let mut seq = markoff_cloud_sync::central_cursor(
                &mut connect(&addr, &db, role, pw).await.ok()?,
                gw,
                Stream::Readings,
            )
            .await
            .ok()?
                + 1;
            let mut caught = false;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let rows = synth(seq, u64::from(rate), now_ms());
                seq += i64::from(rate);
                pending.extend(rows);
                if conn.is_none() {
                    match tokio::time::timeout(
                        Duration::from_secs(5),
                        connect(&addr, &db, role, pw),
                    )
                    .await
                    {
                        Ok(Ok(c)) => conn = Some(c),
                        _ => {
                            shared.refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(markoff::sync::reconnect_jitter()).await;
                            continue;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                let oldest = pending.first().map_or(0, |r| r.ts_ms);
                let call_start = now_ms();
                match tokio::time::timeout(
                    Duration::from_secs(10),
                    markoff_cloud_sync::upload_readings(c, gw, &pending),
                )
                .await
                {
                    Ok(Ok(out)) => {
                        shared.inserted.fetch_add(out.inserted, Ordering::Relaxed);
                        pending.clear();
                        let resumed = shared.resumed_ms.load(Ordering::Relaxed);
                        if !caught && resumed > 0 && call_start >= resumed {
                            caught = true;
                            shared.caught_up.fetch_add(1, Ordering::Relaxed);
                        }
                        if !in_outage.load(Ordering::Relaxed) {
                            let lag = u64::try_from(now_ms() - oldest).unwrap_or(0);
                            shared.lags_ms.lock().await.push(lag);
                        }
                    }
                    _ => {
                        shared.failed_calls.fetch_add(1, Ordering::Relaxed);
                        conn = None;
                        tokio::time::sleep(markoff::sync::reconnect_jitter()).await;
                    }
                }
            }
            Some(())
        }));
    }
    let cpu0 = postgres_ticks();
    let mut admin = pg.admin().await;
    let mut peak = 0i64;
    let mut drain = None;
    let outage_at = Duration::from_secs(args.seconds / 3);
    let mut outage_done = args.outage == 0 || bouncer_pid.is_none();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let conns: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap_or(0);
        peak = peak.max(conns);
        if !outage_done && t0.elapsed() >= outage_at {
            let pid = bouncer_pid.unwrap_or(0).to_string();
            in_outage.store(true, Ordering::Relaxed);
            std::process::Command::new("kill")
                .args(["-STOP", &pid])
                .status()?;
            println!("  PgBouncer stopped for {} s", args.outage);
            tokio::time::sleep(Duration::from_secs(args.outage)).await;
            std::process::Command::new("kill")
                .args(["-CONT", &pid])
                .status()?;
            let resumed = Instant::now();
            shared.resumed_ms.store(now_ms(), Ordering::Relaxed);
            // Drained: every gateway has committed its whole backlog in a call started after
            // PgBouncer continued.
            let n = creds.len() as u64;
            while resumed.elapsed() < Duration::from_secs(900)
                && shared.caught_up.load(Ordering::Relaxed) < n
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            drain = Some(resumed.elapsed().as_secs_f64());
            in_outage.store(false, Ordering::Relaxed);
            outage_done = true;
        }
        if outage_done && t0.elapsed() >= Duration::from_secs(args.seconds) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (postgres_ticks().saturating_sub(cpu0)) as f64 / 100.0 / elapsed;
    for t in tasks {
        t.await.ok();
    }
    Ok((shared, elapsed, cpu, peak, drain))
}
