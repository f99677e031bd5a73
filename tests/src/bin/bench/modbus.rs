//! `bench modbus`: requests per cycle of the planner against the strategies of other gateways,
//! and points/s with CPU cost through the real poller into SQLite against a Modbus TCP server
//! running in a separate process (so only the gateway's CPU is measured).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use markoff::config::StoreConfig;
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::sources::SourceContext;
use markoff::sources::modbus::config::{Optimization, RegisterKind};
use markoff::sources::modbus::device::{SimDevices, SimServer};
use markoff::sources::modbus::{self, planner, poller};
use markoff::store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;

use super::Verdict;
use super::sys;

/// Options of `bench modbus`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Seconds of polling in the throughput phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Modbus TCP connections (one simulated server process each).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Devices (unit ids) per connection.
    #[arg(long, default_value_t = 5)]
    devices: usize,
    /// Points per device (INT16 holding registers, 125 per read).
    #[arg(long, default_value_t = 250)]
    points: usize,
    /// Poll interval of every device, in milliseconds.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Serve simulated devices on this port and wait (used by the benchmark itself).
    #[arg(long, hide = true)]
    serve: Option<u16>,
}

/// The realistic map: three devices, 200 points, gaps of various sizes, one hole.
/// Returns the config text and the addresses of the hole (unit 1, holding).
fn realistic_map(controller: &str) -> String {
    let mut t = format!(
        "[gateway]\nid = \"bench\"\n[sources.modbus.line]\ncontroller = \"{controller}\"\ntimeout = \"1s\"\n"
    );
    // An air-handling unit: 90 INT16 points in clusters with gaps of 1-6 registers.
    t.push_str("[[sources.modbus.line.devices]]\nname = \"ahu\"\nslave_id = 1\ninterval = \"1s\"\npoints = [\n");
    let mut a = 0u16;
    for i in 0..90 {
        writeln!(
            t,
            "  {{ name = \"p{i}\", register = \"holding\", address = {a}, type = \"INT16\" }},"
        )
        .ok();
        a += 1 + [0u16, 0, 2, 0, 5, 0, 1, 0, 3, 6][i % 10];
    }
    t.push_str("]\n");
    // An energy meter: 60 FLOAT32 input registers in the SDM630 layout plus spread-out extras.
    t.push_str("[[sources.modbus.line.devices]]\nname = \"meter\"\nslave_id = 2\ninterval = \"1s\"\npoints = [\n");
    for i in 0..60u16 {
        let addr = if i < 30 { i * 2 } else { 200 + (i - 30) * 6 };
        writeln!(
            t,
            "  {{ name = \"m{i}\", register = \"input\", address = {addr}, type = \"FLOAT32\" }},"
        )
        .ok();
    }
    t.push_str("]\n");
    // A boiler controller: 20 holding registers, 20 coils, 10 discrete inputs.
    t.push_str("[[sources.modbus.line.devices]]\nname = \"boiler\"\nslave_id = 3\ninterval = \"1s\"\npoints = [\n");
    for i in 0..20u16 {
        writeln!(
            t,
            "  {{ name = \"h{i}\", register = \"holding\", address = {}, type = \"INT16\" }},",
            100 + i * 3
        )
        .ok();
    }
    for i in 0..20u16 {
        writeln!(
            t,
            "  {{ name = \"c{i}\", register = \"coil\", address = {}, type = \"BIT\" }},",
            i * 2
        )
        .ok();
    }
    for i in 0..10u16 {
        writeln!(
            t,
            "  {{ name = \"d{i}\", register = \"discrete\", address = {}, type = \"BIT\" }},",
            i
        )
        .ok();
    }
    t.push_str("]\n");
    t
}

/// Registers for the realistic map, with a hole in one of the AHU's gaps.
fn realistic_devices(conns: &[modbus::Connection]) -> SimDevices {
    let d = SimDevices::new();
    for dev in &conns[0].devices {
        for p in &dev.points {
            match p.kind {
                RegisterKind::Holding => {
                    for k in 0..p.words() + 8 {
                        d.set_holding(dev.slave, p.address + k, &[1]);
                    }
                }
                RegisterKind::Input => {
                    for k in 0..p.words() + 8 {
                        d.set_input(dev.slave, p.address + k, &[1]);
                    }
                }
                RegisterKind::Coil => {
                    (0..4).for_each(|k| d.set_coil(dev.slave, p.address + k, true))
                }
                RegisterKind::Discrete => {
                    (0..4).for_each(|k| d.set_discrete(dev.slave, p.address + k, true))
                }
            }
        }
    }
    // The hole: the first gap of two or more registers between the AHU's points past address 30.
    let mut addrs: Vec<u16> = conns[0].devices[0]
        .points
        .iter()
        .map(|p| p.address)
        .collect();
    addrs.sort_unstable();
    if let Some(w) = addrs.windows(2).find(|w| w[0] > 30 && w[1] - w[0] > 2) {
        for a in w[0] + 1..w[1] {
            d.remove_holding(1, a);
        }
    }
    d
}

fn count_plan(conns: &[modbus::Connection], optimization: Optimization) -> usize {
    conns[0]
        .devices
        .iter()
        .map(|dev| {
            let limits = planner::Limits {
                optimization,
                ..dev.limits
            };
            planner::plan(&dev.plan_points(), &limits, &[]).len()
        })
        .sum()
}

async fn planner_comparison(out: &mut String) -> anyhow::Result<bool> {
    let probe = realistic_map("tcp://127.0.0.1:1");
    let cfg = markoff::config::parse_str(&probe, std::path::Path::new("bench.toml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let conns = modbus::resolve(&cfg.sources.modbus, &cfg.sources.modbus_profiles)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let points: usize = conns[0].devices.iter().map(|d| d.points.len()).sum();
    let devices = realistic_devices(&conns);
    let server = SimServer::start(devices.clone(), "127.0.0.1:0".parse()?).await?;
    let text = realistic_map(&format!("tcp://{}", server.addr()));
    let cfg = markoff::config::parse_str(&text, std::path::Path::new("bench.toml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let conn = modbus::resolve(&cfg.sources.modbus, &cfg.sources.modbus_profiles)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .remove(0);

    // Run the real poller: first cycle (with the bisection of the block that hits the hole),
    // then steady state; count the requests the device receives per cycle.
    let dir = tempfile::tempdir()?;
    let store = Store::open(
        &StoreConfig::default(),
        &dir.path().join("plan.db"),
        StoreOptions::default(),
        Metrics::new(),
        Heartbeat::new("bench"),
    )?;
    let token = CancellationToken::new();
    let ctx = SourceContext::for_store(&store);
    let task = tokio::spawn(poller::run(Arc::new(conn.clone()), ctx, token.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.shared.latest.len() < points + 3 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "not every point was read"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first_cycle = devices.requests();
    let before = devices.requests();
    tokio::time::sleep(Duration::from_millis(3_050)).await;
    let steady = (devices.requests() - before) as f64 / 3.0;
    token.cancel();
    task.await??;
    let all_good = store
        .shared
        .latest
        .snapshot()
        .iter()
        .all(|(_, v)| v.quality == markoff::model::Quality::Good);
    server.stop().await;

    writeln!(
        out,
        "Requests per polling cycle, 3 devices / {points} points with gaps and one hole:"
    )
    .ok();
    writeln!(out, "  markoff planner, steady state       {steady:>6.1}   (measured at the device; hole learned)").ok();
    writeln!(out, "  markoff planner, first cycle        {first_cycle:>6}   (includes the bisection of the rejected read)").ok();
    writeln!(
        out,
        "  contiguous-only merging (Neuron)    {:>6}",
        count_plan(&conns, Optimization::Contiguous)
    )
    .ok();
    writeln!(
        out,
        "  one request per point (ThingsBoard) {:>6}",
        count_plan(&conns, Optimization::None)
    )
    .ok();
    writeln!(
        out,
        "  every point read with good quality: {}",
        if all_good { "yes" } else { "NO" }
    )
    .ok();
    Ok(all_good)
}

async fn throughput(args: &Args, out: &mut String) -> anyhow::Result<bool> {
    // One server process per connection, so the measured CPU is the gateway's alone.
    let exe = std::env::current_exe()?;
    let mut servers = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..args.connections {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let child = std::process::Command::new(&exe)
            .args([
                "modbus",
                "--serve",
                &port.to_string(),
                "--devices",
                &args.devices.to_string(),
                "--points",
                &args.points.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .spawn()?;
        servers.push(KillOnDrop(child));
        ports.push(port);
    }
    for port in &ports {
        let deadline = std::time::SystemTime::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
            anyhow::ensure!(
                std::time::SystemTime::now() < deadline,
                "server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut text = String::from("[gateway]\nid = \"bench\"\n");
    for (c, port) in ports.iter().enumerate() {
        writeln!(
            text,
            "[sources.modbus.c{c}]\ncontroller = \"tcp://127.0.0.1:{port}\"\ntimeout = \"1s\""
        )
        .ok();
        for u in 1..=args.devices {
            writeln!(text, "[[sources.modbus.c{c}.devices]]\nname = \"c{c}u{u}\"\nslave_id = {u}\ninterval = \"{}ms\"\npoints = [", args.interval_ms).ok();
            for p in 0..args.points {
                writeln!(text, "  {{ name = \"p{p}\", register = \"holding\", address = {p}, type = \"INT16\" }},").ok();
            }
            text.push_str("]\n");
        }
    }
    let cfg = markoff::config::parse_str(&text, std::path::Path::new("bench.toml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let conns = modbus::resolve(&cfg.sources.modbus, &cfg.sources.modbus_profiles)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let dir = tempfile::Builder::new()
        .prefix("markoff-bench-modbus")
        .tempdir_in(sys::default_base_dir())?;
    let store = Store::open(
        &StoreConfig::default(),
        &dir.path().join("modbus.db"),
        StoreOptions::default(),
        Metrics::new(),
        Heartbeat::new("bench"),
    )?;
    let token = CancellationToken::new();
    let mut tasks = Vec::new();
    for conn in conns {
        tasks.push(tokio::spawn(poller::run(
            Arc::new(conn),
            SourceContext::for_store(&store),
            token.clone(),
        )));
    }
    // Warm up, then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, rows0, t0) = (
        cpu_time(),
        store.shared.metrics.readings_ingested.get(),
        tokio::time::Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let (cpu, rows, wall) = (
        cpu_time() - cpu0,
        store.shared.metrics.readings_ingested.get() - rows0,
        t0.elapsed(),
    );
    token.cancel();
    for t in tasks {
        t.await??;
    }
    drop(servers);
    let rate = rows as f64 / wall.as_secs_f64();
    let cores = cpu.as_secs_f64() / wall.as_secs_f64();
    let offered =
        (args.connections * args.devices * args.points) as f64 * 1000.0 / args.interval_ms as f64;
    let per_10k = if rate > 0.0 {
        cores * 10_000.0 / rate
    } else {
        f64::NAN
    };
    let requests_per_s = rate / 125.0;
    writeln!(
        out,
        "Polling {} connections x {} devices x {} points every {} ms (offered {} points/s):",
        args.connections,
        args.devices,
        args.points,
        args.interval_ms,
        sys::thousands(offered as u64)
    )
    .ok();
    writeln!(
        out,
        "  points/s committed to SQLite        {:>10}",
        sys::thousands(rate as u64)
    )
    .ok();
    writeln!(
        out,
        "  Modbus requests/s (125 registers)   {:>10.0}",
        requests_per_s
    )
    .ok();
    writeln!(
        out,
        "  gateway CPU                         {:>9.1} % of one core",
        cores * 100.0
    )
    .ok();
    writeln!(
        out,
        "  CPU per 10,000 points/s             {:>9.1} % of one core",
        per_10k * 100.0
    )
    .ok();
    writeln!(
        out,
        "  peak RSS                            {:>10}",
        sys::peak_rss()
            .map(sys::bytes)
            .unwrap_or_else(|| "?".into())
    )
    .ok();
    writeln!(
        out,
        "  (EMQX Neuron 2.2.1 publishes 15,000 tags/s at about 124 % of a core.)"
    )
    .ok();
    let reader = store.reader.clone();
    let stored = reader.history("c0u1.p0", 100_000).await?.len();
    store.writer.drain();
    store.writer.finished().await;
    Ok(rate > 0.0 && stored > 0)
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// CPU time of this process (user + system).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ticks = fields
        .get(11)
        .and_then(|u| u.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

async fn serve(port: u16, devices: usize, points: usize) -> anyhow::Result<()> {
    let d = SimDevices::new();
    let words: Vec<u16> = (0..points as u16).collect();
    for u in 1..=devices {
        d.set_holding(u as u8, 0, &words);
    }
    let _server = SimServer::start(d, format!("127.0.0.1:{port}").parse()?).await?;
    std::future::pending::<()>().await;
    Ok(())
}

/// Runs `bench modbus`.
pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(port) = args.serve {
        rt.block_on(serve(port, args.devices, args.points))?;
        return Ok(Verdict::Checked);
    }
    let mut out = String::new();
    writeln!(out, "bench modbus on {}\n", sys::machine()).ok();
    let plan_ok = rt.block_on(planner_comparison(&mut out))?;
    out.push('\n');
    let run_ok = rt.block_on(throughput(args, &mut out))?;
    print!("{out}");
    Ok(if plan_ok && run_ok {
        Verdict::Checked
    } else {
        Verdict::CheckFailed
    })
}
