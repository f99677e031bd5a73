//! `bench alarms`: evaluation cost per reading with 10,000 rules (the engine alone, one core),
//! the cost of one timer pass over every alarm, and the latency from a reading's commit to its
//! alarm event and outbox rows being committed, through the real store and alarm task.

use std::fmt::Write as _;
use std::time::Duration;

use markoff::alarms::Alarms;
use markoff::alarms::config::AlarmsConfig;
use markoff::alarms::engine::{Engine, EventKind, Output};
use markoff::alarms::rules::{SensorInfo, compile};
use markoff::alarms::service::{AlarmContext, run as run_alarms};
use markoff::config::StoreConfig;
use markoff::model::{Reading, SensorId, Severity, Timestamp};
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::store::{Store, StoreOptions};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Verdict, sys};

/// Options of `bench alarms`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rules (one sensor each, kinds mixed).
    #[arg(long, default_value_t = 10_000, value_parser = sys::parse_positive)]
    rules: u64,
    /// Readings evaluated.
    #[arg(long, default_value_t = 2_000_000, value_parser = sys::parse_positive)]
    readings: u64,
    /// Commit-to-outbox round trips measured.
    #[arg(long, default_value_t = 500, value_parser = sys::parse_positive)]
    round_trips: u64,
}

const TARGET_NS: f64 = 2_000.0;
const KINDS: [&str; 5] = ["high", "low", "state", "rate", "stale"];

/// Rules as TOML: rule `i` watches sensor `s{i}` with kind `KINDS[i % 5]`.
fn rules_toml(n: u64) -> String {
    let mut t = String::with_capacity(usize::try_from(n).unwrap_or(0) * 120);
    for i in 0..n {
        let kind = KINDS[usize::try_from(i % 5).unwrap_or(0)];
        write!(
            t,
            "[[rule]]\nalert = \"R{i}\"\nkind = \"{kind}\"\nsensor = \"s{i}\"\n"
        )
        .ok();
        match kind {
            "high" => t.push_str("limit = 80.0\ndeadband = 1.0\n"),
            "low" => t.push_str("limit = 5.0\ndeadband = 1.0\n"),
            "rate" => t.push_str("limit = 1000.0\n"),
            "stale" => t.push_str("after = \"1h\"\n"),
            _ => {}
        }
        if i % 3 == 0 {
            t.push_str("for = \"10s\"\n");
        }
    }
    // Selector rules too: they cost at sensor registration, not per reading.
    t.push_str("[[rule]]\nalert = \"AnyLeak\"\nkind = \"state\"\nmatch = { kind = \"leak\" }\n");
    t.push_str(
        "[[rule]]\nalert = \"Basement\"\nkind = \"low\"\nlimit = -40.0\nmatch = { sensor = \"s1*\", floor = \"B\" }\n",
    );
    t
}

pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    println!("bench alarms: {}", sys::machine());
    let mut verdict = Verdict::Checked;
    let cfg: AlarmsConfig = toml::from_str(&rules_toml(args.rules))?;
    let set = compile(&cfg, &[]).map_err(|e| anyhow::anyhow!("rules rejected: {e:?}"))?;
    let rules = set.rules.len();
    let t0 = Timestamp::now().as_millis();
    let mut engine = Engine::new(set, Vec::new(), t0);
    let started = Instant::now();
    for i in 0..args.rules {
        engine.add_sensor(SensorInfo {
            id: format!("s{i}"),
            name: format!("Sensor {i}"),
            kind: if i % 5 == 2 { "leak" } else { "temperature" }.into(),
            unit: "°C".into(),
            floor: Some(if i % 7 == 0 { "B" } else { "1" }.into()),
            room: None,
        });
    }
    let setup = started.elapsed();
    let alarms = engine.instances().len();
    println!(
        "  {rules} rules over {} sensors: {alarms} alarms, set up in {:.0} ms",
        args.rules,
        setup.as_secs_f64() * 1e3
    );

    // Pre-built readings: mostly normal values, with each `high` sensor crossing its limit once
    // (and back) so that the transitions are exercised and can be checked.
    let sensors: Vec<SensorId> = (0..args.rules)
        .map(|i| SensorId::new(format!("s{i}")))
        .collect();
    let n = usize::try_from(args.readings)?;
    let count = sensors.len();
    let mut readings = Vec::with_capacity(n);
    let mut crossings = std::collections::HashSet::new();
    for k in 0..n {
        let i = (k * 7919) % count;
        let round = k / count;
        let kind = KINDS[i % 5];
        let value = match kind {
            "high" if round == 1 => {
                crossings.insert(i);
                90.0
            }
            "state" => 0.0,
            _ => 20.0 + (k % 10) as f64 * 0.1,
        };
        readings.push(Reading::good(
            sensors[i].clone(),
            Timestamp(t0 + i64::try_from(k)? * 10),
            value,
        ));
    }
    let mut out = Vec::new();
    let mut raised = 0usize;
    let started = Instant::now();
    for chunk in readings.chunks(4096) {
        for r in chunk {
            engine.on_reading(r, &mut out);
        }
        raised += out
            .iter()
            .filter(|o| matches!(o, Output::Event(e) if e.kind == EventKind::Raised))
            .count();
        out.clear();
        engine.take_dirty();
    }
    let eval = started.elapsed();
    let per_reading_ns = eval.as_secs_f64() * 1e9 / n as f64;
    // Crossing sensors without an on-delay raise at once; those with `for` raise on the timer.
    let immediate = crossings.iter().filter(|i| *i % 3 != 0).count();
    let check = raised == immediate;
    println!(
        "  evaluation: {} readings in {:.0} ms = {per_reading_ns:.0} ns per reading ({} readings/s on one core); target < {TARGET_NS:.0} ns: {}",
        sys::thousands(args.readings),
        eval.as_secs_f64() * 1e3,
        sys::thousands((n as f64 / eval.as_secs_f64()) as u64),
        if per_reading_ns < TARGET_NS {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "  check: {raised} alarms raised by readings, {immediate} expected: {}",
        if check { "ok" } else { "FAILED" }
    );
    if !check {
        verdict = Verdict::CheckFailed;
    }
    let tick_now = t0 + i64::try_from(n)? * 10 + 20_000;
    let started = Instant::now();
    let passes = 100;
    for p in 0..passes {
        engine.tick(tick_now + p, &mut out);
    }
    let tick = started.elapsed() / passes as u32;
    let delayed = out
        .iter()
        .filter(|o| matches!(o, Output::Event(e) if e.kind == EventKind::Raised))
        .count();
    println!(
        "  timer pass over {alarms} alarms: {:.0} µs (once per [alarms] tick, default 1 s); {delayed} delayed alarms raised by it",
        tick.as_secs_f64() * 1e6
    );

    let latency = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(round_trips(args.round_trips))?;
    let mut lat = latency.0;
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "  commit -> event and outbox rows committed: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} round trips)",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        lat.len()
    );
    println!(
        "  check: {} outbox rows for {} events: {}",
        latency.2,
        latency.1,
        if latency.1 == latency.2 && latency.1 == args.round_trips as i64 {
            "ok"
        } else {
            "FAILED"
        }
    );
    if latency.1 != latency.2 || latency.1 != args.round_trips as i64 {
        verdict = Verdict::CheckFailed;
    }
    Ok(verdict)
}

/// Alternates a value above and below a limit; returns the latencies from `write()` returning
/// (the reading is committed) to the alarm event being announced (its transaction, with the
/// outbox rows, is committed), the events and the outbox rows in the file.
async fn round_trips(n: u64) -> anyhow::Result<(Vec<Duration>, i64, i64)> {
    let dir = tempfile::tempdir_in(sys::default_base_dir())?;
    let path = dir.path().join("alarms.db");
    let metrics = Metrics::new();
    let store = Store::open(
        &StoreConfig {
            flush_interval: Duration::from_millis(2),
            ..StoreConfig::default()
        },
        &path,
        StoreOptions::default(),
        metrics.clone(),
        Heartbeat::new("bench"),
    )?;
    let mut cfg: AlarmsConfig = toml::from_str(
        "[[rule]]\nalert = \"Hot\"\nkind = \"high\"\nsensor = \"boiler\"\nlimit = 85.0\nack_required = false\nseverity = \"critical\"\n[[notify]]\nchannel = \"log\"\n",
    )?;
    let rules = compile(&cfg, &[]).map_err(|e| anyhow::anyhow!("rules rejected: {e:?}"))?;
    cfg.notify[0].min_severity = Severity::Low;
    let alarms = Alarms::new(metrics.get::<markoff::alarms::outbox::AlarmMetrics>());
    let ctx = AlarmContext {
        ingest: store.ingest.clone(),
        reader: store.reader.clone(),
        store: store.shared.clone(),
        alarms: alarms.clone(),
        start_seq: store.shared.last_seq(),
    };
    let token = CancellationToken::new();
    let mut events = alarms.subscribe();
    let task = tokio::spawn(run_alarms(cfg, rules, Vec::new(), ctx, token.clone()));
    // Wait for the engine to be up: its first step evaluates a neutral reading.
    store
        .ingest
        .write(vec![Reading::good(
            SensorId::new("boiler"),
            Timestamp::now(),
            20.0,
        )])
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics
        .get::<markoff::alarms::outbox::AlarmMetrics>()
        .evaluated
        .get()
        == 0
    {
        anyhow::ensure!(Instant::now() < deadline, "the alarm engine did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut out = Vec::new();
    for i in 0..n {
        let value = if i % 2 == 0 { 90.0 } else { 80.0 };
        store
            .ingest
            .write(vec![Reading::good(
                SensorId::new("boiler"),
                Timestamp::now(),
                value,
            )])
            .await?;
        let committed = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), events.recv()).await??;
        out.push(committed.elapsed());
    }
    token.cancel();
    task.await?
        .map_err(|e| anyhow::anyhow!("alarm task: {e}"))?;
    store.writer.drain();
    store.writer.finished().await;
    let c = rusqlite::Connection::open(&path)?;
    let ev: i64 = c.query_row("SELECT count(*) FROM alarm_events", [], |r| r.get(0))?;
    let ob: i64 = c.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
    Ok((out, ev, ob))
}
