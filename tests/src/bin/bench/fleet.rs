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
//! outage, the upload call's duration, the CPU of PostgreSQL (its live processes plus the
//! backends it has reaped), of PgBouncer and of the bench itself, PostgreSQL's peak connections,
//! commits and new backends per second, refused connections and failed calls. Checked: the
//! central row count equals what the gateways were told was inserted.
//!
//! The database `markoff_t_fleet` and its gateway roles `mkt_fleet_NNNN` are kept between runs
//! (provisioning a thousand roles is the slow part of the setup); each run empties the readings,
//! the rollup, the latest values and the cursors. `--drop` removes the database and the roles
//! (and those of older runs) at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use markoff_cloud_sync::{GatewayKey, ReadingRow};
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
    /// Seconds between a gateway's uploads (the `[sync] interval` of the uploader).
    #[arg(long, default_value_t = 1)]
    interval: u64,
    /// PgBouncer's server connections per login role (`default_pool_size`): the one pool of
    /// the ingest role, or each gateway role's with `--per-role`.
    #[arg(long, default_value_t = 20)]
    pool_size: u32,
    /// Each gateway logs in as its own role (a PgBouncer pool per gateway), instead of as the
    /// shared ingest role proving its identity with its key in every transaction.
    #[arg(long)]
    per_role: bool,
    /// Most rows per upload call (the uploader's `[sync] batch_rows`).
    #[arg(long, default_value_t = 100_000)]
    batch_rows: usize,
    /// Deadline of one upload call, seconds (the uploader's: statement_timeout + connect_timeout,
    /// 60 + 10 by default).
    #[arg(long, default_value_t = 70)]
    call_timeout: u64,
    /// Skip the PgBouncer mode (with `--direct`: only straight to PostgreSQL).
    #[arg(long)]
    no_pgbouncer: bool,
    /// Drop the database and the gateway roles at the end (they are kept for the next run
    /// otherwise).
    #[arg(long)]
    drop: bool,
}

/// The bench's database, kept between runs.
const DB: &str = "markoff_t_fleet";

/// Lag samples and counters of one run.
#[derive(Debug, Default)]
struct Shared {
    lags_ms: Mutex<Vec<u64>>,
    inserted: AtomicU64,
    /// Connections that failed outside the outage.
    refused: AtomicU64,
    /// Connections that failed while the centre was stopped (expected).
    refused_in_outage: AtomicU64,
    /// Connections or calls PostgreSQL refused for lack of connection slots (SQLSTATE 53300).
    too_many: AtomicU64,
    failed_calls: AtomicU64,
    /// Durations of successful upload calls, ms.
    calls_ms: Mutex<Vec<u64>>,
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
    let pg = PgTestDb::reuse(DB).await;
    let mut admin = pg.admin().await;
    sqlx::query("SELECT markoff.ensure_partitions(1, 1)")
        .execute(&mut admin)
        .await?;
    let started = Instant::now();
    let (creds, created) = provision(&mut admin, args.gateways).await?;
    println!(
        "{} gateway roles and keys ({created} created, the rest kept from an earlier run) in {:.1} s",
        args.gateways,
        started.elapsed().as_secs_f64()
    );
    let ingest = ingest_role(&mut admin).await?;
    let login = if args.per_role {
        Login::PerRole
    } else {
        println!(
            "gateways log in as the ingest role {} and prove their keys per transaction",
            ingest.0
        );
        Login::Ingest(ingest.0, ingest.1)
    };
    let creds = Arc::new(creds);
    let bouncer = PgBouncer::start(&pg, args.pool_size)
        .await
        .ok_or_else(|| anyhow::anyhow!("pgbouncer is not installed"))?;
    println!(
        "{}",
        markoff_tests::pgbouncer::version().unwrap_or_default()
    );

    let mut verdict = Verdict::Checked;
    let mut modes = Vec::new();
    if !args.no_pgbouncer {
        modes.push(("pgbouncer", bouncer.addr(), Some(bouncer.pid())));
    }
    if args.direct {
        modes.push(("direct", markoff_tests::services::postgres_addr(), None));
    }
    for (name, addr, pid) in modes {
        reset(&mut admin).await?;
        let login = if name == "direct" {
            Login::PerRole
        } else {
            login.clone()
        };
        let run = run_fleet(args, &pg, &creds, &login, &addr, pid).await?;
        let after: i64 = sqlx::query_scalar("SELECT count(*) FROM markoff.readings")
            .fetch_one(&mut admin)
            .await?;
        let shared = &run.shared;
        let inserted = shared.inserted.load(Ordering::Relaxed);
        let ok = u64::try_from(after).unwrap_or(0) == inserted;
        if !ok {
            verdict = Verdict::CheckFailed;
        }
        let lags = sorted(&shared.lags_ms).await;
        let calls = sorted(&shared.calls_ms).await;
        let rate = inserted as f64 / run.elapsed;
        let offered = args.gateways as f64 * f64::from(args.rate);
        println!("== {name} ==");
        println!(
            "  rows/s {rate:.0} (offered {offered:.0}; target 100,000: {}), rows {inserted} in {:.0} s, central count check: {}",
            if rate >= 100_000.0 { "met" } else { "MISSED" },
            run.elapsed,
            if ok { "ok" } else { "FAILED" }
        );
        println!(
            "  lag p50 {} ms, p99 {} ms (target p99 < 10,000 ms: {}), samples {}",
            pct(&lags, 0.5),
            pct(&lags, 0.99),
            if pct(&lags, 0.99) < 10_000 && !lags.is_empty() {
                "met"
            } else {
                "MISSED"
            },
            lags.len()
        );
        println!(
            "  upload call p50 {} ms, p99 {} ms, {} calls ({:.0}/s)",
            pct(&calls, 0.5),
            pct(&calls, 0.99),
            calls.len(),
            calls.len() as f64 / run.elapsed
        );
        println!(
            "  CPU, % of one core: PostgreSQL {:.0} (the whole server), PgBouncer {:.0}, bench {:.0}, machine {:.0} of {}",
            run.cpu.postgres * 100.0,
            run.cpu.bouncer * 100.0,
            run.cpu.bench * 100.0,
            run.cpu.machine * 100.0,
            run.cpu.cores * 100
        );
        println!(
            "  PostgreSQL: peak connections {} to this database, {} to the server (max_connections {}); {:.0} commits/s, {:.1} new backends/s",
            run.peak_db,
            run.peak_server,
            run.max_connections,
            run.commits as f64 / run.elapsed,
            run.sessions as f64 / run.elapsed
        );
        println!(
            "  refused connections {} (during the outage: {}), refused by PostgreSQL for slots (53300): {}, failed calls {}",
            shared.refused.load(Ordering::Relaxed),
            shared.refused_in_outage.load(Ordering::Relaxed),
            shared.too_many.load(Ordering::Relaxed),
            shared.failed_calls.load(Ordering::Relaxed)
        );
        if let Some((d, rows)) = run.drain {
            println!(
                "  outage {} s: backlog drained {:.1} s after the centre continued (target < 300 s: {}), {:.0} rows/s while draining",
                args.outage,
                d,
                if d < 300.0 { "met" } else { "MISSED" },
                rows as f64 / d.max(0.001)
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
    if args.drop {
        drop(admin);
        drop(pg);
        drop_all().await?;
        println!("dropped {DB} and its gateway roles");
    } else {
        reset(&mut admin).await?;
    }
    Ok(verdict)
}

async fn sorted(v: &Mutex<Vec<u64>>) -> Vec<u64> {
    let mut v = v.lock().await.clone();
    v.sort_unstable();
    v
}

fn pct(v: &[u64], p: f64) -> u64 {
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0)
}

/// One gateway's login: (gateway id, role, password, key).
type Cred = (String, String, String, String);

/// How the gateways log in.
#[derive(Clone, Debug)]
enum Login {
    /// Each as its own role (no key sent).
    PerRole,
    /// All as this ingest role (name, password), each proving its key per transaction.
    Ingest(String, String),
}

/// The ingest role `mkt_fleet_ingest`, created as `markoff-central add-role --kind ingest` does,
/// its password kept (as n = -1) in the bench's credentials table.
async fn ingest_role(admin: &mut PgConnection) -> anyhow::Result<(String, String)> {
    const ROLE: &str = "mkt_fleet_ingest";
    let kept: Option<String> = sqlx::query_scalar(
        "SELECT c.password FROM public.fleet_bench_credentials c \
         JOIN pg_roles r ON r.rolname = c.role WHERE c.n = -1",
    )
    .fetch_optional(&mut *admin)
    .await?;
    if let Some(pw) = kept {
        // Grants of a newer schema.
        markoff_cloud_sync::add_office_role(
            &mut *admin,
            ROLE,
            markoff_cloud_sync::OfficeRoleKind::Ingest,
            None,
            true,
        )
        .await?;
        return Ok((ROLE.to_owned(), pw));
    }
    sqlx::query("DELETE FROM public.fleet_bench_credentials WHERE n = -1")
        .execute(&mut *admin)
        .await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(ROLE)
            .fetch_one(&mut *admin)
            .await?;
    if exists {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP OWNED BY {ROLE}; DROP ROLE {ROLE}"
        )))
        .execute(&mut *admin)
        .await?;
    }
    let r = markoff_cloud_sync::add_office_role(
        &mut *admin,
        ROLE,
        markoff_cloud_sync::OfficeRoleKind::Ingest,
        None,
        false,
    )
    .await?;
    let pw = r
        .password
        .map(|p| p.expose().to_owned())
        .ok_or_else(|| anyhow::anyhow!("no password for the new ingest role"))?;
    sqlx::query(
        "INSERT INTO public.fleet_bench_credentials (n, gateway_id, role, password) \
         VALUES (-1, '', $1, $2)",
    )
    .bind(ROLE)
    .bind(&pw)
    .execute(&mut *admin)
    .await?;
    Ok((ROLE.to_owned(), pw))
}

/// The first `n` gateways, provisioned as `markoff-central add-gateway` does, with the roles and
/// passwords of an earlier run where they are still there; answers them and how many were created.
async fn provision(admin: &mut PgConnection, n: usize) -> anyhow::Result<(Vec<Cred>, usize)> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS public.fleet_bench_credentials \
         (n integer PRIMARY KEY, gateway_id text NOT NULL, role text NOT NULL, password text NOT NULL); \
         ALTER TABLE public.fleet_bench_credentials ADD COLUMN IF NOT EXISTS key text; \
         REVOKE ALL ON public.fleet_bench_credentials FROM PUBLIC",
    )
    .execute(&mut *admin)
    .await?;
    let kept: Vec<(i32, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT c.n, c.gateway_id, c.role, c.password, c.key FROM public.fleet_bench_credentials c \
         JOIN pg_roles r ON r.rolname = c.role WHERE c.n >= 0 ORDER BY c.n",
    )
    .fetch_all(&mut *admin)
    .await?;
    let mut creds: Vec<Option<Cred>> = vec![None; n];
    for (i, gw, role, pw, key) in kept {
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| creds.get_mut(i)) {
            let key = match key {
                Some(k) => k,
                // Provisioned before gateways had keys.
                None => {
                    let k = markoff_cloud_sync::set_gateway_key(&mut *admin, &gw, None).await?;
                    let k = k.expose().to_owned();
                    sqlx::query("UPDATE public.fleet_bench_credentials SET key = $2 WHERE n = $1")
                        .bind(i)
                        .bind(&k)
                        .execute(&mut *admin)
                        .await?;
                    k
                }
            };
            *slot = Some((gw, role, pw, key));
        }
    }
    let mut created = 0;
    for (i, slot) in creds.iter_mut().enumerate() {
        if slot.is_some() {
            continue;
        }
        let (gw, role) = (format!("fleet-{i:04}"), format!("mkt_fleet_{i:04}"));
        // Left half-made by an interrupted run: remove, then provision again.
        sqlx::query("DELETE FROM public.fleet_bench_credentials WHERE n = $1")
            .bind(i32::try_from(i)?)
            .execute(&mut *admin)
            .await?;
        sqlx::query("DELETE FROM markoff.gateways WHERE gateway_id = $1")
            .bind(&gw)
            .execute(&mut *admin)
            .await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(&role)
                .fetch_one(&mut *admin)
                .await?;
        if exists {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP OWNED BY {role}; DROP ROLE {role}"
            )))
            .execute(&mut *admin)
            .await?;
        }
        let c = markoff_cloud_sync::add_gateway(
            &mut *admin,
            &markoff_cloud_sync::NewGateway {
                gateway_id: gw.clone(),
                building_id: format!("building-{i:04}"),
                role: Some(role.clone()),
                password: Some(markoff_cloud_sync::Password::generate()),
            },
        )
        .await?;
        let pw = c.password.expose().to_owned();
        let key = c.key.expose().to_owned();
        sqlx::query(
            "INSERT INTO public.fleet_bench_credentials (n, gateway_id, role, password, key) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(i32::try_from(i)?)
        .bind(&gw)
        .bind(&role)
        .bind(&pw)
        .bind(&key)
        .execute(&mut *admin)
        .await?;
        *slot = Some((gw, role, pw, key));
        created += 1;
    }
    Ok((creds.into_iter().flatten().collect(), created))
}

/// Empties what a run writes: readings, rollup, latest values, cursors.
async fn reset(admin: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "TRUNCATE markoff.readings, markoff.readings_10m, markoff.sensor_latest, \
         markoff.sync_cursors",
    )
    .execute(&mut *admin)
    .await?;
    Ok(())
}

/// Drops the bench's databases (this one and those of older runs, `markoff_t_fleet...`) and
/// their gateway roles (`mkt_fleet...`).
async fn drop_all() -> anyhow::Result<()> {
    let mut conn = markoff_tests::pg::connect(&markoff_tests::pg::server_url("postgres")).await;
    let dbs: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'markoff\\_t\\_fleet%'",
    )
    .fetch_all(&mut conn)
    .await?;
    for db in dbs {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await?;
    }
    let roles: Vec<String> =
        sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'mkt\\_fleet%'")
            .fetch_all(&mut conn)
            .await?;
    for role in roles {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
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

/// CPU ticks (user and system) of the processes named `postgres`, plus those of the children
/// they have reaped (the postmaster's `cutime`/`cstime`: backends that exited, such as the server
/// connections PgBouncer closed).
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
        total += stat_ticks(rest, true);
    }
    total
}

/// utime + stime (+ cutime + cstime when `children`) from the part of `/proc/PID/stat` after
/// the command.
fn stat_ticks(rest: &str, children: bool) -> u64 {
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3; utime 14, stime 15, cutime 16, cstime 17 (1-based
    // in proc(5)).
    let at = |i: usize| -> u64 { f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
    at(11) + at(12) + if children { at(13) + at(14) } else { 0 }
}

fn process_ticks(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| stat_ticks(r, false)))
        .unwrap_or(0)
}

/// (busy, total) ticks of all CPUs (`/proc/stat`).
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// CPU use over a run, in cores (1.0 = one core busy the whole time).
#[derive(Debug, Default)]
struct Cpu {
    postgres: f64,
    bouncer: f64,
    bench: f64,
    machine: f64,
    cores: usize,
}

struct CpuMark {
    postgres: u64,
    bouncer: u64,
    bench: u64,
    machine: (u64, u64),
}

impl CpuMark {
    fn now(bouncer: Option<u32>) -> Self {
        Self {
            postgres: postgres_ticks(),
            bouncer: bouncer.map_or(0, |p| process_ticks(&p.to_string())),
            bench: process_ticks("self"),
            machine: machine_ticks(),
        }
    }

    fn since(&self, bouncer: Option<u32>, secs: f64) -> Cpu {
        let now = Self::now(bouncer);
        let hz = 100.0 * secs;
        let (busy, total) = (
            now.machine.0.saturating_sub(self.machine.0),
            now.machine.1.saturating_sub(self.machine.1),
        );
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Cpu {
            postgres: now.postgres.saturating_sub(self.postgres) as f64 / hz,
            bouncer: now.bouncer.saturating_sub(self.bouncer) as f64 / hz,
            bench: now.bench.saturating_sub(self.bench) as f64 / hz,
            machine: if total == 0 {
                0.0
            } else {
                busy as f64 / total as f64 * cores as f64
            },
            cores,
        }
    }
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

/// Whether `e` says PostgreSQL has no connection slot left (SQLSTATE 53300).
fn no_slots(e: &str) -> bool {
    e.contains("53300")
        || e.contains("too many clients")
        || e.contains("remaining connection slots")
}

/// What one mode measured.
struct Run {
    shared: Arc<Shared>,
    elapsed: f64,
    cpu: Cpu,
    peak_db: i64,
    peak_server: i64,
    max_connections: i64,
    commits: i64,
    sessions: i64,
    /// Seconds from the end of the outage until every gateway had caught up, and the rows
    /// inserted in that time.
    drain: Option<(f64, u64)>,
}

/// (commits, sessions) of this database so far (`pg_stat_database`).
async fn db_counters(admin: &mut PgConnection) -> (i64, i64) {
    sqlx::query_as(
        "SELECT xact_commit, sessions FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(admin)
    .await
    .unwrap_or((0, 0))
}

async fn run_fleet(
    args: &Args,
    pg: &PgTestDb,
    creds: &Arc<Vec<Cred>>,
    login: &Login,
    addr: &str,
    bouncer_pid: Option<u32>,
) -> anyhow::Result<Run> {
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(AtomicBool::new(false));
    let in_outage = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let interval = Duration::from_secs(args.interval.max(1));
    let per_tick = u64::from(args.rate) * args.interval.max(1);
    let mut admin = pg.admin().await;
    let max_connections: i64 =
        sqlx::query_scalar("SELECT current_setting('max_connections')::int8")
            .fetch_one(&mut admin)
            .await?;
    let (commits0, sessions0) = db_counters(&mut admin).await;
    let t0 = Instant::now();
    let cpu0 = CpuMark::now(bouncer_pid);
    for i in 0..creds.len() {
        let (creds, shared, stop, in_outage) = (
            creds.clone(),
            shared.clone(),
            stop.clone(),
            in_outage.clone(),
        );
        let (addr, db, n) = (addr.to_owned(), pg.name().to_owned(), creds.len());
        let (login, batch_rows, call_timeout) = (
            login.clone(),
            args.batch_rows.max(1),
            Duration::from_secs(args.call_timeout.max(1)),
        );
        tasks.push(tokio::spawn(async move {
            let (gw, own_role, own_pw, key) = &creds[i];
            let (role, pw, identity) = match &login {
                Login::PerRole => (own_role, own_pw, GatewayKey::new(gw.as_str(), None)),
                Login::Ingest(role, pw) => {
                    (role, pw, GatewayKey::new(gw.as_str(), Some(key.clone())))
                }
            };
            // Spread the fleet's rounds over the interval.
            tokio::time::sleep(interval.mul_f64(i as f64 / n.max(1) as f64)).await;
            let mut conn: Option<PgConnection> = None;
            let mut pending: Vec<ReadingRow> = Vec::new();
            let mut seq = 1;
            let mut caught = false;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let rows = synth(seq, per_tick, now_ms());
                seq += i64::try_from(per_tick).unwrap_or(0);
                pending.extend(rows);
                if conn.is_none() {
                    // The uploader's connect_timeout default (10 s) and more: a thousand SCRAM
                    // logins at once queue for the bench's two threads.
                    match tokio::time::timeout(
                        Duration::from_secs(30),
                        connect(&addr, &db, role, pw),
                    )
                    .await
                    {
                        Ok(Ok(c)) => conn = Some(c),
                        failed => {
                            if let Ok(Err(e)) = &failed
                                && no_slots(&e.to_string())
                            {
                                shared.too_many.fetch_add(1, Ordering::Relaxed);
                            }
                            if in_outage.load(Ordering::Relaxed)
                                && shared.resumed_ms.load(Ordering::Relaxed) == 0
                            {
                                shared.refused_in_outage.fetch_add(1, Ordering::Relaxed);
                            } else {
                                shared.refused.fetch_add(1, Ordering::Relaxed);
                            }
                            tokio::time::sleep(markoff::sync::reconnect_jitter()).await;
                            continue;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                // As the uploader: batches of at most batch_rows, one after the other.
                let mut failed_round = false;
                let round_start = now_ms();
                while !pending.is_empty() {
                    let take = pending.len().min(batch_rows);
                    let oldest = pending.first().map_or(0, |r| r.ts_ms);
                    let call_start = now_ms();
                    match tokio::time::timeout(
                        call_timeout,
                        markoff_cloud_sync::upload_readings(c, &identity, &pending[..take]),
                    )
                    .await
                    {
                        Ok(Ok(out)) => {
                            let done = now_ms();
                            shared.inserted.fetch_add(out.inserted, Ordering::Relaxed);
                            pending.drain(..take);
                            let resumed = shared.resumed_ms.load(Ordering::Relaxed);
                            if !caught
                                && resumed > 0
                                && round_start >= resumed
                                && pending.is_empty()
                            {
                                caught = true;
                                shared.caught_up.fetch_add(1, Ordering::Relaxed);
                            }
                            shared
                                .calls_ms
                                .lock()
                                .await
                                .push(u64::try_from(done - call_start).unwrap_or(0));
                            if !in_outage.load(Ordering::Relaxed) {
                                let lag = u64::try_from(done - oldest).unwrap_or(0);
                                shared.lags_ms.lock().await.push(lag);
                            }
                        }
                        failed => {
                            if let Ok(Err(e)) = &failed
                                && no_slots(&e.to_string())
                            {
                                shared.too_many.fetch_add(1, Ordering::Relaxed);
                            }
                            shared.failed_calls.fetch_add(1, Ordering::Relaxed);
                            failed_round = true;
                            break;
                        }
                    }
                }
                if failed_round {
                    conn = None;
                    tokio::time::sleep(markoff::sync::reconnect_jitter()).await;
                }
            }
            Some(())
        }));
    }
    let (mut peak_db, mut peak_server) = (0i64, 0i64);
    let mut drain = None;
    let outage_at = Duration::from_secs(args.seconds / 3);
    let mut outage_done = args.outage == 0 || bouncer_pid.is_none();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (db, server): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE datname = current_database()), count(*) \
             FROM pg_stat_activity WHERE backend_type = 'client backend'",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap_or((0, 0));
        peak_db = peak_db.max(db);
        peak_server = peak_server.max(server);
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
            let rows0 = shared.inserted.load(Ordering::Relaxed);
            shared.resumed_ms.store(now_ms(), Ordering::Relaxed);
            // Drained: every gateway has committed its whole backlog in a call started after
            // PgBouncer continued.
            let n = creds.len() as u64;
            while resumed.elapsed() < Duration::from_secs(900)
                && shared.caught_up.load(Ordering::Relaxed) < n
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let (db, server): (i64, i64) = sqlx::query_as(
                    "SELECT count(*) FILTER (WHERE datname = current_database()), count(*) \
                     FROM pg_stat_activity WHERE backend_type = 'client backend'",
                )
                .fetch_one(&mut admin)
                .await
                .unwrap_or((0, 0));
                peak_db = peak_db.max(db);
                peak_server = peak_server.max(server);
            }
            drain = Some((
                resumed.elapsed().as_secs_f64(),
                shared.inserted.load(Ordering::Relaxed) - rows0,
            ));
            in_outage.store(false, Ordering::Relaxed);
            outage_done = true;
        }
        if outage_done && t0.elapsed() >= Duration::from_secs(args.seconds) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu0.since(bouncer_pid, elapsed);
    let (commits1, sessions1) = db_counters(&mut admin).await;
    for t in tasks {
        t.await.ok();
    }
    Ok(Run {
        shared,
        elapsed,
        cpu,
        peak_db,
        peak_server,
        max_connections,
        commits: commits1 - commits0,
        sessions: sessions1 - sessions0,
        drain,
    })
}
