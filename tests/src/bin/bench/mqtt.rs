//! `bench mqtt`: messages/s from Mosquitto into committed SQLite rows through the real MQTT source
//! (decode, commit, then acknowledge), with QoS 1 and QoS 0. The broker is a private Mosquitto
//! with queue limits raised, so the broker's own drop policy does not distort the figure.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use markoff::config::StoreConfig;
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::sources::SourceContext;
use markoff::sources::mqtt::{self, client};
use markoff::store::{Store, StoreOptions};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Verdict;
use super::sys;

/// Options of `bench mqtt`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Messages per QoS level.
    #[arg(long, default_value_t = 100_000, value_parser = sys::parse_positive)]
    messages: u64,
    /// Publishing clients.
    #[arg(long, default_value_t = 2)]
    publishers: u64,
    /// Distinct devices (topics).
    #[arg(long, default_value_t = 1_000)]
    devices: u64,
}

struct Broker {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn start_broker() -> anyhow::Result<Broker> {
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or_else(|| anyhow::anyhow!("mosquitto is not installed (apt-get install mosquitto)"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("bench.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 10000000\nmax_inflight_messages 1000\n"
        ),
    )?;
    let child = std::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let deadline = std::time::SystemTime::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(
            std::time::SystemTime::now() < deadline,
            "mosquitto did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Broker {
        child,
        port,
        _dir: dir,
    })
}

async fn phase(args: &Args, qos: u8, out: &mut String) -> anyhow::Result<bool> {
    let broker = start_broker()?;
    let dir = tempfile::Builder::new()
        .prefix("markoff-bench-mqtt")
        .tempdir_in(sys::default_base_dir())?;
    let store = Store::open(
        &StoreConfig::default(),
        &dir.path().join("mqtt.db"),
        StoreOptions::default(),
        Metrics::new(),
        Heartbeat::new("bench"),
    )?;
    let text = format!(
        "[gateway]\nid = \"bench\"\n[sources.mqtt.bench]\nservers = [\"tcp://127.0.0.1:{}\"]\nclient_id = \"bench-gw\"\nmax_inflight = 1000\n\
         [[sources.mqtt.bench.subscriptions]]\ntopic = \"bench/+\"\nqos = {qos}\ntopic_parsing = \"_/device\"\ntimestamp_path = \"ts\"\ntimestamp_format = \"unix_ms\"\nfields = [{{ path = \"v\", name = \"value\" }}]\n",
        broker.port
    );
    let cfg = markoff::config::parse_str(&text, std::path::Path::new("bench.toml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let m = mqtt::resolve(&cfg.sources.mqtt, "bench")
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .remove(0);
    let token = CancellationToken::new();
    let gw = tokio::spawn(client::run(
        Arc::new(m),
        SourceContext::for_store(&store),
        token.clone(),
    ));
    // Wait until the gateway has subscribed: a probe message must come through.
    let (probe, mut probe_loop) = AsyncClient::new(
        MqttOptions::new("bench-probe", "127.0.0.1", broker.port),
        10,
    );
    tokio::spawn(async move { while probe_loop.poll().await.is_ok() {} });
    let deadline = Instant::now() + Duration::from_secs(10);
    let now_ms = markoff::model::Timestamp::now().as_millis();
    while store.shared.latest.get("probe.value").is_none() {
        anyhow::ensure!(Instant::now() < deadline, "the gateway did not subscribe");
        probe
            .publish(
                "bench/probe",
                QoS::AtLeastOnce,
                false,
                format!(r#"{{"v":1,"ts":{now_ms}}}"#),
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let base = store.shared.metrics.readings_ingested.get();

    let started = Instant::now();
    let per = args.messages / args.publishers;
    let total = per * args.publishers;
    let mut pubs = Vec::new();
    for p in 0..args.publishers {
        let mut opts = MqttOptions::new(format!("bench-pub-{p}"), "127.0.0.1", broker.port);
        opts.set_inflight(1000);
        let (c, mut el) = AsyncClient::new(opts, 10_000);
        tokio::spawn(async move { while el.poll().await.is_ok() {} });
        let devices = args.devices;
        let q = if qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let ts0 = now_ms - 3_600_000;
        pubs.push(tokio::spawn(async move {
            for i in 0..per {
                let n = p * per + i;
                let payload = format!(r#"{{"v":{n},"ts":{}}}"#, ts0 + (n / devices) as i64);
                c.publish(format!("bench/d{}", n % devices), q, false, payload)
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for p in pubs {
        p.await??;
    }
    let published = started.elapsed();
    // Wait for the rows: all of them for QoS 1; for QoS 0 until the flow stops.
    let mut last = (0, Instant::now());
    loop {
        let got = store.shared.metrics.readings_ingested.get() - base;
        if got >= total {
            break;
        }
        if got != last.0 {
            last = (got, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(if qos == 0 { 2 } else { 30 }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stored = store.shared.metrics.readings_ingested.get() - base;
    let elapsed = if stored >= total {
        started.elapsed()
    } else {
        last.1 - started
    };
    token.cancel();
    gw.await??;
    store.writer.drain();
    store.writer.finished().await;
    let rows: i64 = rusqlite::Connection::open(dir.path().join("mqtt.db"))?.query_row(
        "SELECT count(*) FROM readings",
        [],
        |r| r.get(0),
    )?;
    let rate = stored as f64 / elapsed.as_secs_f64();
    writeln!(
        out,
        "  QoS {qos}: {} messages -> {} rows in {:.2} s: {:>8} messages/s committed (publishing took {:.2} s){}",
        sys::thousands(total),
        sys::thousands(stored),
        elapsed.as_secs_f64(),
        sys::thousands(rate as u64),
        published.as_secs_f64(),
        if stored < total { format!(", {} lost (QoS 0 has no delivery guarantee)", total - stored) } else { String::new() }
    )
    .ok();
    // QoS 1 must deliver everything exactly once; QoS 0 may lose but never duplicates.
    let rows_ok = u64::try_from(rows).unwrap_or(0) == stored + 1;
    Ok(rows_ok && (qos == 0 || stored == total))
}

/// Runs `bench mqtt`.
pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut out = String::new();
    writeln!(out, "bench mqtt on {}", sys::machine()).ok();
    writeln!(out, "Messages from Mosquitto into committed SQLite rows (decode, commit, then acknowledge; one reading each, {} topics):", args.devices).ok();
    let q1 = rt.block_on(phase(args, 1, &mut out))?;
    let q0 = rt.block_on(phase(args, 0, &mut out))?;
    writeln!(
        out,
        "  peak RSS {}",
        sys::peak_rss()
            .map(sys::bytes)
            .unwrap_or_else(|| "?".into())
    )
    .ok();
    print!("{out}");
    Ok(if q1 && q0 {
        Verdict::Checked
    } else {
        Verdict::CheckFailed
    })
}
