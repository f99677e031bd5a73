//! Modbus acquisition against a real Modbus TCP server (tokio-modbus, in process): the poller,
//! planner, decoder and buffer together.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use markoff::config::StoreConfig;
use markoff::model::Quality;
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::sources::SourceContext;
use markoff::sources::modbus::decode::{ByteOrder, DataType, encode};
use markoff::sources::modbus::device::{SimDevices, SimServer};
use markoff::sources::modbus::{self, Connection, poller};
use markoff::store::{Store, StoreOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Waits until `cond` holds (polling), or fails with `what`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn resolve(toml_sources: &str) -> Vec<Connection> {
    let text = format!("[gateway]\nid = \"test\"\n{toml_sources}");
    let cfg =
        markoff::config::parse_str(&text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"));
    modbus::resolve(&cfg.sources.modbus, &cfg.sources.modbus_profiles).unwrap()
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    token: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            flush_interval: Duration::from_millis(5),
            ..StoreConfig::default()
        };
        let store = Store::open(
            &cfg,
            &dir.path().join("m.db"),
            StoreOptions::default(),
            Metrics::new(),
            Heartbeat::new("w"),
        )
        .unwrap();
        Self {
            _dir: dir,
            store,
            token: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    /// `markoff_modbus_device_up` of `device` (any connection).
    fn device_up(&self, device: &str) -> Option<f64> {
        let label = format!("device=\"{device}\"}}");
        self.store
            .shared
            .registry
            .render()
            .lines()
            .find(|l| l.starts_with("markoff_modbus_device_up{") && l.contains(&label))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    fn ctx(&self) -> SourceContext {
        SourceContext::for_store(&self.store)
    }

    fn poll(&mut self, conn: Connection) {
        let ctx = self.ctx();
        let token = self.token.child_token();
        self.tasks.push(tokio::spawn(async move {
            poller::run(Arc::new(conn), ctx, token).await.unwrap();
        }));
    }

    async fn stop_pollers(&mut self) {
        self.token.cancel();
        for t in self.tasks.drain(..) {
            t.await.unwrap();
        }
        self.token = CancellationToken::new();
    }

    fn value(&self, sensor: &str) -> Option<f64> {
        self.store.shared.latest.get(sensor).and_then(|v| v.value)
    }

    fn quality(&self, sensor: &str) -> Option<Quality> {
        self.store.shared.latest.get(sensor).map(|v| v.quality)
    }

    async fn history(&self, sensor: &str) -> Vec<markoff::store::HistoryRow> {
        self.store.reader.history(sensor, 10_000).await.unwrap()
    }
}

async fn server(devices: &SimDevices) -> SimServer {
    SimServer::start(devices.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn tcp_conn(addr: std::net::SocketAddr, extra: &str, devices: &str) -> String {
    format!(
        "[sources.modbus.line]\ncontroller = \"tcp://{addr}\"\ntimeout = \"200ms\"\nreconnect_max = \"1s\"\n{extra}\n{devices}"
    )
}

const BOILER: &str = r#"
[[sources.modbus.line.devices]]
name = "boiler"
slave_id = 1
interval = "50ms"
down_after = 2
reprobe_interval = "200ms"
points = [
  { name = "temp", register = "holding", address = 0, type = "INT16", scale = 0.1, unit = "°C" },
]
"#;

#[tokio::test]
async fn polling_resumes_by_itself_after_a_device_restart() {
    let devices = SimDevices::new();
    devices.set_holding(1, 0, &[215]);
    let srv = server(&devices).await;
    let addr = srv.addr();
    let mut rig = Rig::new();
    rig.poll(resolve(&tcp_conn(addr, "", BOILER)).remove(0));
    eventually("first value", || rig.value("boiler.temp") == Some(21.5)).await;
    eventually("online", || rig.value("boiler.online") == Some(1.0)).await;

    srv.stop().await;
    eventually("comm error while the device is off", || {
        rig.quality("boiler.temp") == Some(Quality::CommError)
    })
    .await;
    eventually("device marked down", || {
        rig.value("boiler.online") == Some(0.0)
    })
    .await;
    assert_eq!(
        rig.device_up("boiler"),
        Some(0.0),
        "markoff_modbus_device_up"
    );
    assert_eq!(
        rig.value("boiler.temp"),
        None,
        "a failed read is never stored as a number"
    );

    devices.set_holding(1, 0, &[230]);
    let _srv = SimServer::start(devices.clone(), addr).await.unwrap();
    eventually("value after the restart", || {
        rig.value("boiler.temp") == Some(23.0)
    })
    .await;
    eventually("online again", || rig.value("boiler.online") == Some(1.0)).await;
    assert_eq!(
        rig.device_up("boiler"),
        Some(1.0),
        "markoff_modbus_device_up"
    );
    let history = rig.history("boiler.temp").await;
    assert!(
        history
            .iter()
            .all(|h| (h.quality == Quality::Good) == h.value.is_some()),
        "{history:?}"
    );
    rig.stop_pollers().await;
}

#[tokio::test]
async fn an_illegal_address_splits_the_read_and_the_hole_is_remembered() {
    let devices = SimDevices::new();
    devices.set_holding(1, 0, &[1, 2, 3, 4, 5]);
    devices.set_holding(1, 10, &[11, 12]);
    let srv = server(&devices).await;
    let conn = r#"
[[sources.modbus.line.devices]]
name = "ahu"
slave_id = 1
interval = "50ms"
max_gap = 10
points = [
  { name = "a", register = "holding", address = 0 },
  { name = "b", register = "holding", address = 4 },
  { name = "c", register = "holding", address = 10 },
  { name = "d", register = "holding", address = 11 },
]
"#;
    let mut rig = Rig::new();
    rig.poll(resolve(&tcp_conn(srv.addr(), "", conn)).remove(0));
    eventually("every point read despite the hole", || {
        [
            ("ahu.a", 1.0),
            ("ahu.b", 5.0),
            ("ahu.c", 11.0),
            ("ahu.d", 12.0),
        ]
        .iter()
        .all(|(s, v)| rig.value(s) == Some(*v))
    })
    .await;
    // The hole is learned once found in two consecutive cycles.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let learned = loop {
        let stored = rig
            .store
            .reader
            .state(&format!("modbus/holes/tcp://{}/1", srv.addr()))
            .await
            .unwrap();
        if let Some(learned) = stored {
            break learned;
        }
        assert!(tokio::time::Instant::now() < deadline, "hole learned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        learned.contains("\"start\":5") && learned.contains("\"end\":10"),
        "{learned}"
    );
    rig.stop_pollers().await;

    // A restarted poller reads the learned plan: no more rejected reads.
    let rejected = devices.illegal_address_answers();
    assert!(rejected >= 1);
    devices.set_holding(1, 0, &[100]);
    rig.poll(resolve(&tcp_conn(srv.addr(), "", conn)).remove(0));
    eventually("new value after restart", || {
        rig.value("ahu.a") == Some(100.0)
    })
    .await;
    let before = devices.requests();
    devices.set_holding(1, 0, &[101]);
    eventually("another cycle", || rig.value("ahu.a") == Some(101.0)).await;
    assert_eq!(
        devices.illegal_address_answers(),
        rejected,
        "the hole is not probed again"
    );
    assert!(devices.requests() - before >= 2);
    rig.stop_pollers().await;
}

#[tokio::test]
async fn a_slow_device_does_not_delay_another_connection() {
    let slow = SimDevices::new();
    slow.set_holding(1, 0, &[1]);
    slow.set_delay(1, Duration::from_secs(5));
    let fast = SimDevices::new();
    fast.set_holding(1, 0, &[2]);
    let (s1, s2) = (server(&slow).await, server(&fast).await);
    let mut rig = Rig::new();
    let slow_dev = BOILER.replace("line", "slow").replace("boiler", "slowdev");
    rig.poll(
        resolve(&tcp_conn(s1.addr(), "", &slow_dev).replace("modbus.line", "modbus.slow"))
            .remove(0),
    );
    let fast_dev = BOILER.replace("line", "fast").replace("boiler", "fastdev");
    rig.poll(
        resolve(&tcp_conn(s2.addr(), "", &fast_dev).replace("modbus.line", "modbus.fast"))
            .remove(0),
    );
    eventually("the slow device times out", || {
        rig.quality("slowdev.temp") == Some(Quality::CommError)
    })
    .await;
    let start = rig.history("fastdev.temp").await.len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let polled = rig.history("fastdev.temp").await.len() - start;
    assert!(
        polled >= 10,
        "the fast device kept its 50ms interval: {polled} readings in 1s"
    );
    rig.stop_pollers().await;
}

#[tokio::test]
async fn busy_answers_are_retried_and_never_stored_as_zero() {
    let devices = SimDevices::new();
    devices.set_holding(1, 0, &[215]);
    let srv = server(&devices).await;
    let mut rig = Rig::new();
    let extra = "busy_retries = 2\nbusy_retries_wait = \"10ms\"";
    rig.poll(
        resolve(&tcp_conn(
            srv.addr(),
            extra,
            &BOILER.replace("50ms", "100ms"),
        ))
        .remove(0),
    );
    eventually("first value", || rig.value("boiler.temp") == Some(21.5)).await;
    devices.set_busy(1, 2);
    devices.set_holding(1, 0, &[216]);
    eventually("value read through two busy answers", || {
        rig.value("boiler.temp") == Some(21.6)
    })
    .await;
    assert!(
        rig.history("boiler.temp")
            .await
            .iter()
            .all(|h| h.quality == Quality::Good),
        "retries hid the busy answers"
    );

    devices.set_busy(1, 1_000);
    eventually("still busy after the retries: bad, no value", || {
        rig.quality("boiler.temp") == Some(Quality::Bad)
    })
    .await;
    assert_eq!(rig.value("boiler.temp"), None);
    assert!(
        rig.history("boiler.temp")
            .await
            .iter()
            .all(|h| h.value != Some(0.0)),
        "busy never becomes 0"
    );
    rig.stop_pollers().await;
}

#[tokio::test]
async fn several_slaves_share_one_line_and_a_mute_one_costs_one_timeout_per_cycle() {
    let devices = SimDevices::new();
    for unit in 1..=3u8 {
        devices.set_holding(unit, 0, &[u16::from(unit) * 10]);
    }
    devices.set_mute(2, true);
    let srv = server(&devices).await;
    let mut devs = String::new();
    for unit in 1..=3 {
        devs.push_str(&format!(
            "[[sources.modbus.line.devices]]\nname = \"u{unit}\"\nslave_id = {unit}\ninterval = \"100ms\"\ndown_after = 100\npoints = [{{ name = \"v\", register = \"holding\", address = 0 }}]\n"
        ));
    }
    let mut rig = Rig::new();
    rig.poll(resolve(&tcp_conn(srv.addr(), "", &devs)).remove(0));
    eventually("units 1 and 3 answer", || {
        rig.value("u1.v") == Some(10.0) && rig.value("u3.v") == Some(30.0)
    })
    .await;
    eventually("unit 2 times out", || {
        rig.quality("u2.v") == Some(Quality::CommError)
    })
    .await;
    let start = rig.history("u3.v").await.len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cycles = rig.history("u3.v").await.len() - start;
    // Each cycle costs at most one 200ms timeout for the mute unit: >= 1500 / (100 + 200) cycles.
    assert!(cycles >= 4, "unit 3 polled {cycles} times in 1.5s");
    rig.stop_pollers().await;
}

#[tokio::test]
async fn bits_coils_and_text_attributes() {
    let devices = SimDevices::new();
    devices.set_holding(1, 0, &[0b101]);
    devices.set_coil(1, 3, true);
    devices.set_discrete(1, 7, false);
    devices.set_input(1, 0, &encode(239.5, DataType::Float32, ByteOrder::Cdab));
    devices.set_input(
        1,
        20,
        &[u16::from_be_bytes(*b"AB"), u16::from_be_bytes(*b"12"), 0],
    );
    let srv = server(&devices).await;
    let dev = r#"
[[sources.modbus.line.devices]]
name = "io"
slave_id = 1
interval = "50ms"
points = [
  { name = "bit0", register = "holding", address = 0, type = "BIT", bit = 0 },
  { name = "bit1", register = "holding", address = 0, type = "BIT", bit = 1 },
  { name = "relay", address = "00004", type = "BIT" },
  { name = "door", register = "discrete", address = 7, type = "BOOL" },
  { name = "voltage", address = "30001", type = "FLOAT32", byte_order = "CDAB", unit = "V" },
  { name = "serial", register = "input", address = 20, type = "STRING", length = 3 },
]
"#;
    let mut rig = Rig::new();
    rig.poll(resolve(&tcp_conn(srv.addr(), "", dev)).remove(0));
    eventually("bits, coil, discrete and float", || {
        rig.value("io.bit0") == Some(1.0)
            && rig.value("io.bit1") == Some(0.0)
            && rig.value("io.relay") == Some(1.0)
            && rig.value("io.door") == Some(0.0)
            && rig.value("io.voltage") == Some(239.5)
    })
    .await;
    let reader = rig.store.reader.clone();
    let mut attrs = Vec::new();
    for _ in 0..200 {
        attrs = reader.attributes().await.unwrap();
        if !attrs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        attrs.first().map(|a| (a.0.as_str(), a.1.as_str())),
        Some(("io.serial", "AB12"))
    );
    rig.stop_pollers().await;
}

/// Where a scripted STOP is, request by request. Cycles are counted by the read of the learned
/// point hole at holding 0 (`ReadHoldingRegisters(0, 1)`): the first request of every cycle
/// once the holes are learned, and never sent otherwise (it never returns data, so it is never
/// read again as a witness).
#[derive(Debug)]
struct StopScript {
    /// Position in the cycle of the first request answered in STOP.
    enter_pos: u32,
    /// Cycles started in STOP before the one in which the PLC leaves it.
    leave_after_cycles: u32,
    /// Position in that cycle of the first request answered normally again.
    leave_pos: u32,
    /// The STOP lasts at least this long.
    min_stop: Duration,
    cycles: u32,
    pos: u32,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Before,
    Stopped {
        since: tokio::time::Instant,
        cycle: u32,
        leave_in: Option<u32>,
    },
    After {
        cycle: u32,
    },
    Done,
}

impl StopScript {
    fn new(enter_pos: u32, leave_after_cycles: u32, leave_pos: u32, min_stop: Duration) -> Self {
        Self {
            enter_pos,
            leave_after_cycles,
            leave_pos,
            min_stop,
            cycles: 0,
            pos: 0,
            phase: Phase::Before,
        }
    }

    /// Whether the PLC is in STOP for `req`.
    fn step(&mut self, req: &tokio_modbus::Request<'_>) -> bool {
        let now = tokio::time::Instant::now();
        if matches!(req, tokio_modbus::Request::ReadHoldingRegisters(0, 1)) {
            self.cycles += 1;
            self.pos = 0;
            if let Phase::Stopped {
                since,
                cycle,
                leave_in: leave_in @ None,
            } = &mut self.phase
                && self.cycles - *cycle >= self.leave_after_cycles
                && now - *since >= self.min_stop
            {
                *leave_in = Some(self.cycles);
            }
        } else {
            self.pos += 1;
        }
        // Positions count from the first cycle start seen.
        if self.phase == Phase::Before && self.cycles >= 1 && self.pos >= self.enter_pos {
            let same_cycle = self.leave_after_cycles == 0 && self.min_stop.is_zero();
            self.phase = Phase::Stopped {
                since: now,
                cycle: self.cycles,
                leave_in: same_cycle.then_some(self.cycles),
            };
        }
        match self.phase {
            Phase::Stopped {
                leave_in: Some(c), ..
            } if self.cycles > c || self.pos >= self.leave_pos => {
                self.phase = Phase::After { cycle: self.cycles };
            }
            // Three full cycles after leaving STOP: a hole taught by the STOP would be learned
            // by then.
            Phase::After { cycle } if self.cycles >= cycle + 4 => self.phase = Phase::Done,
            _ => {}
        }
        matches!(self.phase, Phase::Stopped { .. })
    }
}

/// A PLC that answers exception 02 to every read while in STOP never leaves a hole, whatever
/// position in a cycle it enters and leaves STOP at (every position is driven by the test, one
/// scenario after the other, plus one STOP of 4 s), while the holes the device really has are
/// learned and kept, including one at the end of the plan.
#[tokio::test]
async fn a_plc_in_stop_never_teaches_holes_whenever_it_enters_or_leaves_stop() {
    use markoff::sources::modbus::planner::Hole;
    let devices = SimDevices::new();
    // Holding 0 does not exist (a point hole read first in every cycle), 15..20 do not exist
    // (a hole between two reads), input 5 does not exist (a point hole read last).
    devices.set_holding(1, 10, &[10, 11, 12, 13, 14]);
    devices.set_holding(1, 20, &[20, 21]);
    devices.set_holding(1, 50, &[50]);
    devices.set_input(1, 0, &[7]);
    let srv = server(&devices).await;
    let conn = r#"
[[sources.modbus.line.devices]]
name = "plc"
slave_id = 1
interval = "15ms"
max_gap = 10
hole_recheck_interval = "1h"
points = [
  { name = "m", register = "holding", address = 0 },
  { name = "a", register = "holding", address = 10 },
  { name = "b", register = "holding", address = 14 },
  { name = "c", register = "holding", address = 20 },
  { name = "d", register = "holding", address = 21 },
  { name = "e", register = "holding", address = 50 },
  { name = "f", register = "input", address = 0 },
  { name = "g", register = "input", address = 5 },
]
"#;
    let mut rig = Rig::new();
    rig.poll(resolve(&tcp_conn(srv.addr(), "", conn)).remove(0));
    let key = format!("modbus/holes/tcp://{}/1", srv.addr());
    let reader = rig.store.reader.clone();
    let holes = || {
        let reader = reader.clone();
        let key = key.clone();
        async move {
            let json = reader.state(&key).await.unwrap().unwrap_or_default();
            let mut h: Vec<Hole> = serde_json::from_str(&json).unwrap_or_default();
            h.sort();
            h
        }
    };
    let mut real: Vec<Hole> = serde_json::from_str(
        r#"[{"kind":"holding","start":0,"end":1},{"kind":"holding","start":15,"end":20},
            {"kind":"input","start":5,"end":6}]"#,
    )
    .unwrap();
    real.sort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while holes().await != real {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the real holes are learned: {:?}",
            holes().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut scenarios = Vec::new();
    // Every entry position of a normal cycle (6 reads), leaving in the same cycle or one or two
    // cycles later at every position of a cycle in STOP (10 reads, with the bisections).
    for enter in 0..6 {
        for after in 0..3 {
            for leave in 0..11 {
                if after == 0 && leave <= enter {
                    continue;
                }
                scenarios.push(StopScript::new(enter, after, leave, Duration::ZERO));
            }
        }
    }
    // A STOP of 4 s entered and left in the middle of a cycle.
    scenarios.push(StopScript::new(2, 1, 4, Duration::from_secs(4)));
    scenarios.push(StopScript::new(4, 1, 2, Duration::from_secs(4)));
    for script in scenarios {
        let described = format!("{script:?}");
        let script = Arc::new(std::sync::Mutex::new(script));
        let s = script.clone();
        devices.set_stop_rule(
            1,
            Some(Arc::new(move |req: &tokio_modbus::Request<'_>| {
                s.lock().unwrap().step(req)
            })),
        );
        eventually(&format!("scenario done: {described}"), || {
            script.lock().unwrap().phase == Phase::Done
        })
        .await;
        devices.set_stop_rule(1, None);
        assert_eq!(holes().await, real, "after {described}");
    }
    for (p, v) in [
        ("a", 10.0),
        ("b", 14.0),
        ("c", 20.0),
        ("e", 50.0),
        ("f", 7.0),
    ] {
        assert_eq!(rig.value(&format!("plc.{p}")), Some(v), "{p}");
    }
    rig.stop_pollers().await;
}
