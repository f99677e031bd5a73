//! Modbus acquisition against an INDEPENDENT implementation: pymodbus (`tests/modbus/`, pinned in
//! `tests/modbus/requirements.txt`), rather than tokio-modbus talking to itself as in
//! `daemon/tests/modbus.rs`.
//!
//! - Decoding: every data type in every byte order, against registers made by pymodbus's
//!   encoder, compared bit for bit.
//! - Modbus TCP: the real poller against a pymodbus server with two unit ids and an address hole
//!   (exception 02); a server killed and restarted on the same port.
//! - Modbus RTU on a serial line: a socat pty pair carries real RTU frames (CRC included) between
//!   the poller and a pymodbus RTU server answering several unit ids on the one line; the
//!   commissioning scan and read on that line; a late answer never taken for the next one.
//! - Behind a Modbus TCP to RTU gateway: a unit the gateway reports silent (exception 0x0B) is
//!   offline and not found by the scan.
//! - RTU framing over TCP (serial device servers).
//! - `markoff import`: Telegraf and ThingsBoard configs translated, validated and polled
//!   ([`import`]).
//! - Faults that heal: an unplugged RTU slave, a PLC in STOP ([`faults`]).
//! - The `markoff` binary itself (`markoff run`) over Modbus TCP and RTU on a serial line: every
//!   value served, through the daemon's API and as committed in its buffer. With
//!   `MARKOFF_BIN`/`MARKOFF_BIN_RUNNER` this runs another architecture's build under an emulator.
//!
//! The register map the pymodbus server serves is documented in `tests/modbus/server.py`;
//! [`expected`] mirrors it.
//!
//! Needs `tests/modbus/setup.sh` (a venv with pymodbus, and socat). Without it the tests fail
//! under `CI=true` and warn loudly elsewhere.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "modbus_interop/peer.rs"]
mod peer;

#[path = "modbus_interop/import.rs"]
mod import;

#[path = "modbus_interop/faults.rs"]
mod faults;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use markoff::model::Quality;
use markoff::sources::SourceContext;
use markoff::sources::modbus::commission::{self, CommissionError, LineSpec, ScanHit};
use markoff::sources::modbus::config::RegisterKind;
use markoff::sources::modbus::decode::{
    ByteOrder, DataType, DecodeError, Decoded, decode_words, encode, f16_to_f64,
};
use markoff::sources::modbus::link::ReadData;
use markoff::sources::modbus::planner::Hole;
use markoff::sources::modbus::{self, Connection, poller};
use markoff::store::Store;
use markoff_tests::assert_eventually;
use peer::{Listen, PtyPair, PyServer};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// The rig: a store and pollers, as in daemon/tests/modbus.rs.
// ---------------------------------------------------------------------------------------------

struct Rig {
    dir: tempfile::TempDir,
    store: Store,
    token: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = markoff_tests::store::open_test_store(dir.path(), "m.db");
        Self {
            dir,
            store,
            token: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn poll(&mut self, conn: Connection) {
        let ctx = SourceContext::for_store(&self.store);
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

    /// Every expected sensor whose latest reading is not that value with good quality.
    fn mismatches(&self, expected: &[(String, f64)]) -> Vec<String> {
        expected
            .iter()
            .filter(|(s, v)| self.value(s) != Some(*v) || self.quality(s) != Some(Quality::Good))
            .map(|(s, v)| {
                format!(
                    "{s}: want {v} good, have {:?} {:?}",
                    self.value(s),
                    self.quality(s)
                )
            })
            .collect()
    }

    async fn holes(&self, key: &str) -> Option<Vec<Hole>> {
        let json = self.store.reader.state(key).await.unwrap()?;
        Some(serde_json::from_str(&json).unwrap())
    }

    async fn attribute(&self, sensor: &str) -> Option<String> {
        self.store
            .reader
            .attributes()
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.0 == sensor)
            .map(|a| a.1)
    }

    /// A failed read is never stored as a number, a good one always is.
    async fn assert_history_consistent(&self, sensor: &str) {
        let history = self.store.reader.history(sensor, 10_000).await.unwrap();
        assert!(!history.is_empty(), "{sensor}: no history");
        assert!(
            history
                .iter()
                .all(|h| (h.quality == Quality::Good) == h.value.is_some()),
            "{sensor}: {history:?}"
        );
    }
}

fn resolve(toml_sources: &str) -> Connection {
    let text = format!("[gateway]\nid = \"test\"\n{toml_sources}");
    let cfg = markoff::config::parse_str(&text, Path::new("test.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut conns = modbus::resolve(&cfg.sources.modbus, &cfg.sources.modbus_profiles)
        .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    assert_eq!(conns.len(), 1);
    conns.remove(0)
}

// ---------------------------------------------------------------------------------------------
// The register map of tests/modbus/server.py, as a config and as expected values.
// ---------------------------------------------------------------------------------------------

/// FLOAT32 CDAB at holding 3 of unit u: `FLOATS[(u - 1) % 3]`.
const FLOATS: [f64; 3] = [123.456, -273.15, 0.001];

/// A connection `line` to `controller` with `extra` settings and the devices of `units`.
fn connection(controller: &str, extra: &str, units: &[u8]) -> String {
    format!(
        "[sources.modbus.line]\ncontroller = \"{controller}\"\ntimeout = \"500ms\"\nreconnect_max = \"1s\"\n{extra}\n{}",
        devices(units, "")
    )
}

/// The devices of `units` on connection `line`, each with the points of the register map and
/// `extra_points`.
fn devices(units: &[u8], extra_points: &str) -> String {
    let mut toml = String::new();
    for u in units {
        // The device's default byte order is CDAB (word swap); the input registers are ABCD,
        // BADC and DCBA: every byte order is read.
        toml.push_str(&format!(
            r#"
[[sources.modbus.line.devices]]
name = "u{u}"
slave_id = {u}
interval = "100ms"
byte_order = "CDAB"
down_after = 2
reprobe_interval = "300ms"
points = [
  {{ name = "temp", register = "holding", address = 0, type = "INT16" }},
  {{ name = "energy", register = "holding", address = 1, type = "UINT32" }},
  {{ name = "power", address = "40004", type = "FLOAT32", unit = "W" }},
  {{ name = "status", register = "holding", address = 10, type = "UINT16" }},
  {{ name = "gen", register = "holding", address = 11 }},
  {{ name = "voltage", address = "30001", type = "FLOAT32", byte_order = "ABCD", unit = "V" }},
  {{ name = "counter", register = "input", address = 2, type = "INT64", byte_order = "ABCD" }},
  {{ name = "serial", register = "input", address = 6, type = "STRING", length = 4 }},
  {{ name = "pressure", register = "input", address = 10, type = "FLOAT32", byte_order = "BADC", unit = "hPa" }},
  {{ name = "offset", register = "input", address = 12, type = "INT32", byte_order = "DCBA" }},
  {{ name = "c0", register = "coil", address = 0, type = "BIT" }},
  {{ name = "c1", register = "coil", address = 1, type = "BIT" }},
  {{ name = "c2", register = "coil", address = 2, type = "BIT" }},
  {{ name = "c3", address = "00004", type = "BIT" }},
  {{ name = "d0", register = "discrete", address = 0, type = "BOOL" }},
  {{ name = "d1", address = "10002", type = "BOOL" }},
  {extra_points}
]
"#
        ));
    }
    toml
}

/// What the poller must read from unit `unit` of a server started with `generation`.
fn expected(unit: u8, generation: u16) -> Vec<(String, f64)> {
    let u = f64::from(unit);
    let bit = |on: bool| if on { 1.0 } else { 0.0 };
    let mut v = vec![
        ("temp".to_owned(), -(100.0 * u + 23.0)),
        ("energy".to_owned(), 3_000_000_000.0 + u),
        ("power".to_owned(), FLOATS[usize::from(unit - 1) % 3]),
        ("status".to_owned(), 40_000.0 + u),
        ("gen".to_owned(), f64::from(generation)),
        ("voltage".to_owned(), 230.25 + u),
        ("counter".to_owned(), -(2f64.powi(40)) - u),
        ("pressure".to_owned(), 1013.25 + u),
        ("offset".to_owned(), -(100_000.0 * u + 7.0)),
        ("online".to_owned(), 1.0),
    ];
    for i in 0..4u8 {
        v.push((format!("c{i}"), bit((i + unit).is_multiple_of(3))));
    }
    for i in 0..2u8 {
        v.push((format!("d{i}"), bit((i % 2 == 1) != (unit == 2))));
    }
    v.into_iter()
        .map(|(name, value)| (format!("u{unit}.{name}"), value))
        .collect()
}

/// The hole of holding 5..9 as the poller learns it when it bisects the rejected read 0..11.
fn learned_hole() -> Vec<Hole> {
    vec![Hole {
        kind: RegisterKind::Holding,
        start: 5,
        end: 10,
    }]
}

// ---------------------------------------------------------------------------------------------
// 1. Decoding against pymodbus's encoder.
// ---------------------------------------------------------------------------------------------

fn parse_bits(v: &Value) -> u64 {
    let text = v["bits"].as_str().unwrap();
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

/// Compares one decoded vector with what pymodbus encoded; the message says what differs.
fn check_decoded(v: &Value, ty: DataType, got: Result<Decoded, DecodeError>) -> Result<(), String> {
    let got = got.map_err(|e| format!("decode error: {e}"))?;
    let want = match ty {
        DataType::Float16 => {
            let bits = u16::try_from(parse_bits(v)).unwrap();
            let want = f16_to_f64(bits);
            return match got {
                Decoded::Number {
                    value,
                    bits: None,
                    signed: None,
                } if value.to_bits() == want.to_bits() || (value.is_nan() && want.is_nan()) => {
                    Ok(())
                }
                other => Err(format!("got {other:?}, want f16 bits {bits:#06x}")),
            };
        }
        DataType::Float32 => {
            let bits = u32::try_from(parse_bits(v)).unwrap();
            return match got {
                Decoded::Number {
                    value,
                    bits: None,
                    signed: None,
                } if (value as f32).to_bits() == bits => Ok(()),
                other => Err(format!("got {other:?}, want f32 bits {bits:#010x}")),
            };
        }
        DataType::Float64 => {
            let bits = parse_bits(v);
            return match got {
                Decoded::Number {
                    value,
                    bits: None,
                    signed: None,
                } if value.to_bits() == bits => Ok(()),
                other => Err(format!("got {other:?}, want f64 bits {bits:#018x}")),
            };
        }
        DataType::String => Decoded::Text(v["text"].as_str().unwrap().to_owned()),
        DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let e = v["value"].as_i64().unwrap();
            let mask = match ty {
                DataType::Int16 => 0xFFFF,
                DataType::Int32 => 0xFFFF_FFFF,
                _ => u64::MAX,
            };
            Decoded::Number {
                value: e as f64,
                bits: Some(e as u64 & mask),
                signed: Some(e),
            }
        }
        _ => {
            let e = v["value"].as_u64().unwrap();
            Decoded::Number {
                value: e as f64,
                bits: Some(e),
                signed: Some(e as i64),
            }
        }
    };
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got:?}, want {want:?}"))
    }
}

/// The vector's value as the f64 that `decode::encode` takes, when that is exact.
fn encodable(v: &Value, ty: DataType) -> Option<f64> {
    match ty {
        DataType::String => None,
        DataType::Float16 => {
            Some(f16_to_f64(u16::try_from(parse_bits(v)).unwrap())).filter(|x| !x.is_nan())
        }
        DataType::Float32 => Some(f64::from(f32::from_bits(
            u32::try_from(parse_bits(v)).unwrap(),
        )))
        .filter(|x| !x.is_nan()),
        DataType::Float64 => Some(f64::from_bits(parse_bits(v))).filter(|x| !x.is_nan()),
        _ => {
            let exact = v["value"]
                .as_i64()
                .map(i128::from)
                .or_else(|| v["value"].as_u64().map(i128::from))
                .unwrap();
            let f = exact as f64;
            (f as i128 == exact).then_some(f)
        }
    }
}

#[tokio::test]
async fn decoding_matches_pymodbus_encoder_bit_for_bit() {
    if !peer::available("decoding_matches_pymodbus_encoder_bit_for_bit", false) {
        return;
    }
    let doc: Value = serde_json::from_str(&peer::run_script("vectors.py").await).unwrap();
    let version = doc["pymodbus"].as_str().unwrap_or("?");
    let vectors = doc["vectors"].as_array().unwrap();
    let mut failures = Vec::new();
    let mut types = BTreeSet::new();
    let (mut decoded, mut encoded) = (0, 0);
    for v in vectors {
        let ty: DataType = serde_json::from_value(v["type"].clone()).unwrap();
        types.insert(ty.as_str());
        for order in ByteOrder::ALL {
            let words: Vec<u16> =
                serde_json::from_value(v["registers"][order.as_str()].clone()).unwrap();
            let length = (ty == DataType::String).then(|| u16::try_from(words.len()).unwrap());
            let got = decode_words(&words, ty, order, None, length);
            if let Err(e) = check_decoded(v, ty, got) {
                failures.push(format!(
                    "decode {} {} {order} {words:04X?}: {e}",
                    ty.as_str(),
                    v["value"]
                ));
            }
            decoded += 1;
            if let Some(x) = encodable(v, ty) {
                let ours = encode(x, ty, order);
                if ours != words {
                    failures.push(format!(
                        "encode {} {} {order}: ours {ours:04X?}, pymodbus {words:04X?}",
                        ty.as_str(),
                        v["value"]
                    ));
                }
                encoded += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {decoded} decodings / {encoded} encodings differ from pymodbus {version}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let all = [
        "INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64", "FLOAT16", "FLOAT32", "FLOAT64",
        "STRING",
    ];
    assert_eq!(types, all.into_iter().collect(), "types covered");
    assert!(
        decoded >= 300 && encoded >= 200,
        "too few vectors: {decoded} decoded, {encoded} encoded"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Modbus TCP against a pymodbus server.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn tcp_values_qualities_and_learned_holes_against_pymodbus() {
    if !peer::available(
        "tcp_values_qualities_and_learned_holes_against_pymodbus",
        false,
    ) {
        return;
    }
    let mut rig = Rig::new();
    let server = PyServer::start(rig.dir(), &Listen::Tcp { port: 0 }, &[1, 2], 1).await;
    let port = server.port;
    // Unit 2 also has a point inside the hole: the device rejects it on its own.
    let mut toml = connection(&format!("tcp://127.0.0.1:{port}"), "", &[1]);
    toml.push_str(&devices(
        &[2],
        r#"{ name = "missing", register = "holding", address = 7 },"#,
    ));
    rig.poll(resolve(&toml));

    let mut want = expected(1, 1);
    want.extend(expected(2, 1));
    assert_eventually!(
        rig.mismatches(&want).is_empty(),
        "{:#?}\npymodbus log:\n{}",
        rig.mismatches(&want),
        server.log()
    );
    assert_eventually!(
        rig.quality("u2.missing") == Some(Quality::Bad),
        "a point in the hole reads bad: {:?}",
        rig.quality("u2.missing")
    );
    assert_eq!(
        rig.value("u2.missing"),
        None,
        "a rejected read has no value"
    );

    // The holes are learned and kept under modbus/holes/<target>/<unit>.
    let key = |unit: u8| format!("modbus/holes/tcp://127.0.0.1:{port}/{unit}");
    assert_eventually!(
        rig.holes(&key(1)).await == Some(learned_hole()),
        "unit 1 holes: {:?}",
        rig.holes(&key(1)).await
    );
    assert_eventually!(
        rig.holes(&key(2)).await
            == Some(vec![Hole {
                kind: RegisterKind::Holding,
                start: 7,
                end: 8
            }]),
        "unit 2 holes: {:?}",
        rig.holes(&key(2)).await
    );
    for unit in [1u8, 2] {
        let sensor = format!("u{unit}.serial");
        let text = format!("SN{unit:06}");
        assert_eventually!(
            rig.attribute(&sensor).await.as_deref() == Some(text.as_str()),
            "{sensor}: {:?}",
            rig.attribute(&sensor).await
        );
    }
    // Still every point, cycle after cycle, once the plan avoids the hole: unit 1 gets no more
    // exception 02 (unit 2 still does, for the point inside the hole).
    let rejected = server.exceptions(1, 2);
    assert!(
        rejected >= 1,
        "the hole was found by exception 02:\n{}",
        server.log()
    );
    let before = rig
        .store
        .reader
        .history("u1.gen", 10_000)
        .await
        .unwrap()
        .len();
    assert_eventually!(
        rig.store
            .reader
            .history("u1.gen", 10_000)
            .await
            .unwrap()
            .len()
            >= before + 3
            && rig.mismatches(&want).is_empty(),
        "polling goes on: {:?}",
        rig.mismatches(&want)
    );
    assert_eq!(
        server.exceptions(1, 2),
        rejected,
        "the learned plan never reads into the hole again"
    );
    assert!(server.exceptions(2, 2) > 1, "{}", server.log());
    for (sensor, _) in &want {
        rig.assert_history_consistent(sensor).await;
    }
    rig.stop_pollers().await;
}

#[tokio::test]
async fn tcp_polling_resumes_by_itself_after_pymodbus_restarts() {
    if !peer::available(
        "tcp_polling_resumes_by_itself_after_pymodbus_restarts",
        false,
    ) {
        return;
    }
    let mut rig = Rig::new();
    let server = PyServer::start(rig.dir(), &Listen::Tcp { port: 0 }, &[1], 1).await;
    let port = server.port;
    rig.poll(resolve(&connection(
        &format!("tcp://127.0.0.1:{port}"),
        "",
        &[1],
    )));
    let first = expected(1, 1);
    assert_eventually!(
        rig.mismatches(&first).is_empty(),
        "{:#?}\n{}",
        rig.mismatches(&first),
        server.log()
    );

    server.kill().await;
    assert_eventually!(
        rig.quality("u1.temp") == Some(Quality::CommError) && rig.value("u1.online") == Some(0.0),
        "the dead server is noticed: temp {:?}, online {:?}",
        rig.quality("u1.temp"),
        rig.value("u1.online")
    );
    assert_eq!(rig.value("u1.temp"), None, "no number without an answer");

    // Same port, new data (generation 2): the poller reconnects by itself.
    let server = PyServer::start(rig.dir(), &Listen::Tcp { port }, &[1], 2).await;
    let second = expected(1, 2);
    assert_eventually!(
        rig.mismatches(&second).is_empty(),
        "fresh values after the restart: {:#?}\n{}",
        rig.mismatches(&second),
        server.log()
    );
    assert_eq!(rig.value("u1.online"), Some(1.0));
    for (sensor, _) in &second {
        rig.assert_history_consistent(sensor).await;
    }
    rig.stop_pollers().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Modbus RTU on a serial line (a socat pty pair).
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rtu_on_a_serial_line_several_units_share_the_line() {
    if !peer::available("rtu_on_a_serial_line_several_units_share_the_line", true) {
        return;
    }
    let mut rig = Rig::new();
    let pty = PtyPair::open(rig.dir()).await;
    let server = PyServer::start(rig.dir(), &Listen::Serial(pty.b.clone()), &[1, 2, 3], 1).await;
    let controller = format!("file://{}", pty.a.display());
    rig.poll(resolve(&connection(
        &controller,
        "transmission_mode = \"RTU\"\npause_between_requests = \"5ms\"",
        &[1, 2, 3],
    )));
    let want: Vec<(String, f64)> = [1, 2, 3].into_iter().flat_map(|u| expected(u, 1)).collect();
    assert_eventually!(
        rig.mismatches(&want).is_empty(),
        "{:#?}\npymodbus log:\n{}",
        rig.mismatches(&want),
        server.log()
    );
    for unit in [1u8, 2, 3] {
        let key = format!("modbus/holes/{controller}/{unit}");
        assert_eventually!(
            rig.holes(&key).await == Some(learned_hole()),
            "{key}: {:?}",
            rig.holes(&key).await
        );
        let sensor = format!("u{unit}.serial");
        let text = format!("SN{unit:06}");
        assert_eventually!(
            rig.attribute(&sensor).await.as_deref() == Some(text.as_str()),
            "{sensor}: {:?}",
            rig.attribute(&sensor).await
        );
    }
    for (sensor, _) in &want {
        rig.assert_history_consistent(sensor).await;
    }
    rig.stop_pollers().await;
}

#[tokio::test]
async fn rtu_scan_finds_exactly_the_units_on_the_line_and_read_decodes() {
    if !peer::available(
        "rtu_scan_finds_exactly_the_units_on_the_line_and_read_decodes",
        true,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pty = PtyPair::open(dir.path()).await;
    let server = PyServer::start(dir.path(), &Listen::Serial(pty.b.clone()), &[1, 3, 4], 1).await;
    let line = LineSpec {
        controller: format!("file://{}", pty.a.display()),
        mode: None,
        serial: commission::default_serial(),
        timeout: Duration::from_millis(300),
    };
    let hits = commission::scan(&line, 1, 5, RegisterKind::Holding, 0, |_| {})
        .await
        .unwrap();
    let want: Vec<ScanHit> = [1, 3, 4]
        .into_iter()
        .map(|slave| ScanHit {
            slave,
            exception: None,
        })
        .collect();
    assert_eq!(hits, want, "pymodbus log:\n{}", server.log());

    // `markoff modbus read` on the same line: raw words that decode to the served values.
    let ReadData::Words(w) = commission::read(&line, 4, RegisterKind::Holding, 0, 5)
        .await
        .unwrap()
    else {
        panic!("registers expected")
    };
    let number = |ws: &[u16], ty, order| match decode_words(ws, ty, order, None, None).unwrap() {
        Decoded::Number { value, .. } => value,
        Decoded::Text(t) => panic!("text {t}"),
    };
    assert_eq!(w.len(), 5);
    assert_eq!(number(&w, DataType::Int16, ByteOrder::Abcd), -423.0);
    assert_eq!(
        number(&w[1..], DataType::Uint32, ByteOrder::Cdab),
        3_000_000_004.0
    );
    assert_eq!(
        number(&w[3..], DataType::Float32, ByteOrder::Cdab),
        f64::from(123.456f32)
    );
    let ReadData::Bits(bits) = commission::read(&line, 3, RegisterKind::Coil, 0, 8)
        .await
        .unwrap()
    else {
        panic!("bits expected")
    };
    let want_bits: Vec<bool> = (0..8u8).map(|i| (i + 3).is_multiple_of(3)).collect();
    assert_eq!(bits, want_bits);
    // An exception answer comes back through RTU framing as what it is.
    match commission::read(&line, 1, RegisterKind::Holding, 4, 2).await {
        Err(CommissionError::Exception { code, .. }) => {
            assert_eq!(format!("{code:?}"), "IllegalDataAddress");
        }
        other => panic!("exception 02 expected for a read into the hole, got {other:?}"),
    }
}

/// A slow device answers after the poller gave up; that late answer must never become the value
/// of another request.
///
/// Regression test of a bug found here: when `link.rs` reopened the serial port at once after a
/// timeout, without waiting for the line to go quiet or discarding input, the late answer was
/// read as the answer to the next request with the same unit and function code (an RTU answer
/// does not say which address it is for), and the link stayed one answer behind for 1 to 15+
/// cycles: point `a` showed `b`'s value and `b` showed `a`'s, both stored as good.
///
/// The answer comes between one and two timeouts late: the link must keep the line quiet for one
/// timeout after a timeout (a device answering later than that is beyond any master's help).
#[tokio::test]
async fn rtu_a_late_answer_is_never_taken_for_the_next_request() {
    if !peer::available(
        "rtu_a_late_answer_is_never_taken_for_the_next_request",
        true,
    ) {
        return;
    }
    let mut rig = Rig::new();
    let pty = PtyPair::open(rig.dir()).await;
    let server = late_device(&rig, &pty).await;
    let controller = format!("file://{}", pty.a.display());
    assert_late_answer_never_misread(&mut rig, &controller, "", &server).await;
}

/// A pymodbus RTU server on `pty.b` whose unit 1 answers the first read of holding 10 600ms
/// late: after the poller gave up (400ms), as a slow device on a real line does.
async fn late_device(rig: &Rig, pty: &PtyPair) -> PyServer {
    PyServer::start_with(
        rig.dir(),
        &Listen::Serial(pty.b.clone()),
        &[1],
        1,
        &["--late-once", "1:10:0.6"],
    )
    .await
}

/// Polls unit 1 of [`late_device`] through `controller` and checks that its late answer never
/// becomes a value: holding 0 is always -123 and holding 10 always 40001, or no value.
async fn assert_late_answer_never_misread(
    rig: &mut Rig,
    controller: &str,
    extra: &str,
    server: &PyServer,
) {
    // One request per point: both answers look alike on the wire (unit 1, function 3, 2 bytes),
    // and an RTU answer does not say which address it is for.
    let toml = format!(
        r#"
[sources.modbus.line]
controller = "{controller}"
timeout = "400ms"
pause_between_requests = "5ms"
reconnect_max = "1s"
{extra}

[[sources.modbus.line.devices]]
name = "u1"
slave_id = 1
interval = "50ms"
optimization = "none"
down_after = 100
points = [
  {{ name = "a", register = "holding", address = 0, type = "INT16" }},
  {{ name = "b", register = "holding", address = 10, type = "UINT16" }},
]
"#
    );
    rig.poll(resolve(&toml));
    let reader = rig.store.reader.clone();
    let history = |sensor: &'static str| {
        let reader = reader.clone();
        async move { reader.history(sensor, 10_000).await.unwrap() }
    };
    assert_eventually!(
        history("u1.b")
            .await
            .iter()
            .any(|h| h.quality == Quality::CommError),
        "the late answer makes the read time out once\n{}",
        server.log()
    );
    let after_glitch = history("u1.a").await.len();
    assert_eventually!(
        history("u1.a").await.len() >= after_glitch + 20,
        "polling goes on after the late answer"
    );
    let mut wrong = Vec::new();
    for (sensor, want) in [("u1.a", -123.0), ("u1.b", 40_001.0)] {
        let rows = history(sensor).await;
        let bad = rows
            .iter()
            .filter(|h| h.quality == Quality::Good && h.value != Some(want))
            .count();
        if bad > 0 {
            let shown: Vec<String> = rows
                .iter()
                .rev()
                .take(40)
                .map(|h| format!("{:?}/{:?}", h.value, h.quality))
                .collect();
            wrong.push(format!(
                "{sensor}: {bad} of {} readings are good but not {want}, oldest first: {}",
                rows.len(),
                shown.join(" ")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "answers meant for another request were stored as good values:\n{}",
        wrong.join("\n")
    );
    rig.stop_pollers().await;
}

/// The same through a transparent serial device server (RTU over TCP): it relays the late
/// answer to whichever TCP connection is open when it arrives, so closing the socket after the
/// timeout and reconnecting at once does not get rid of it.
///
/// Regression: the quiet time after a timeout (`Link::drop_after_failure` in `link.rs`) once
/// covered only serial targets; with RTU over TCP the link reconnected at once, the device server
/// relayed the late answer on the new connection, and points `a` and `b` swapped values, both
/// stored as good.
#[tokio::test]
async fn rtu_over_tcp_a_late_answer_through_a_serial_device_server_is_never_misread() {
    if !peer::available(
        "rtu_over_tcp_a_late_answer_through_a_serial_device_server_is_never_misread",
        true,
    ) {
        return;
    }
    let mut rig = Rig::new();
    let pty = PtyPair::open(rig.dir()).await;
    let server = late_device(&rig, &pty).await;
    let relay = PyServer::device_server(rig.dir(), &pty.a).await;
    let controller = format!("tcp://127.0.0.1:{}", relay.port);
    let extra = "transmission_mode = \"RTUoverTCP\"";
    assert_late_answer_never_misread(&mut rig, &controller, extra, &server).await;
    drop(relay);
}

// ---------------------------------------------------------------------------------------------
// 4. Behind a Modbus TCP to RTU gateway: exception 0x0B means "nobody answered".
// ---------------------------------------------------------------------------------------------

/// A gateway answers exception 0x0B ("gateway target device failed to respond") for a unit id
/// that is silent on its serial line: the scan must not list it as a device.
///
/// Regression test of a bug found here: `commission::scan` counted every exception answer as "a
/// device is there", 0x0A and 0x0B included, so a scan through a gateway listed every unit id.
#[tokio::test]
async fn tcp_scan_through_a_gateway_lists_only_units_that_answer() {
    if !peer::available(
        "tcp_scan_through_a_gateway_lists_only_units_that_answer",
        false,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = PyServer::start_with(
        dir.path(),
        &Listen::Tcp { port: 0 },
        &[2],
        1,
        &["--gateway"],
    )
    .await;
    let line = LineSpec {
        controller: format!("tcp://127.0.0.1:{}", server.port),
        mode: None,
        serial: commission::default_serial(),
        timeout: Duration::from_secs(1),
    };
    let hits = commission::scan(&line, 1, 3, RegisterKind::Holding, 0, |_| {})
        .await
        .unwrap();
    assert_eq!(
        hits,
        [ScanHit {
            slave: 2,
            exception: None
        }],
        "only unit 2 is behind the gateway"
    );
}

/// A device that a gateway reports silent (0x0B on every request) is offline: its points are
/// `comm_error` and `<device>.online` drops to 0, which is what comm-loss alarms watch.
///
/// Regression test of a bug found here: the poller treated 0x0B like any exception: the points
/// were `bad`, the cycle counted as answered, and the device stayed online for ever, so a dead
/// meter behind a gateway never raised a comm-loss alarm.
#[tokio::test]
async fn tcp_a_unit_silent_behind_a_gateway_goes_offline() {
    if !peer::available("tcp_a_unit_silent_behind_a_gateway_goes_offline", false) {
        return;
    }
    let mut rig = Rig::new();
    let server =
        PyServer::start_with(rig.dir(), &Listen::Tcp { port: 0 }, &[1], 1, &["--gateway"]).await;
    // Unit 9 is not behind the gateway.
    rig.poll(resolve(&connection(
        &format!("tcp://127.0.0.1:{}", server.port),
        "",
        &[1, 9],
    )));
    let want = expected(1, 1);
    assert_eventually!(
        rig.mismatches(&want).is_empty(),
        "{:#?}\n{}",
        rig.mismatches(&want),
        server.log()
    );
    assert_eventually!(
        rig.value("u9.online") == Some(0.0) && rig.quality("u9.temp") == Some(Quality::CommError),
        "unit 9 never answers: online {:?}, temp {:?}",
        rig.value("u9.online"),
        rig.quality("u9.temp")
    );
    assert_eq!(rig.value("u1.online"), Some(1.0), "unit 1 is unaffected");
    rig.stop_pollers().await;
}

// ---------------------------------------------------------------------------------------------
// 5. RTU framing over TCP.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rtu_over_tcp_against_pymodbus() {
    if !peer::available("rtu_over_tcp_against_pymodbus", false) {
        return;
    }
    let mut rig = Rig::new();
    let server = PyServer::start(rig.dir(), &Listen::RtuOverTcp { port: 0 }, &[1, 2], 1).await;
    let controller = format!("tcp://127.0.0.1:{}", server.port);
    rig.poll(resolve(&connection(
        &controller,
        "transmission_mode = \"RTUoverTCP\"",
        &[1, 2],
    )));
    let want: Vec<(String, f64)> = [1, 2].into_iter().flat_map(|u| expected(u, 1)).collect();
    assert_eventually!(
        rig.mismatches(&want).is_empty(),
        "{:#?}\npymodbus log:\n{}",
        rig.mismatches(&want),
        server.log()
    );
    let key = format!("modbus/holes/{controller}/2");
    assert_eventually!(
        rig.holes(&key).await == Some(learned_hole()),
        "{key}: {:?}",
        rig.holes(&key).await
    );
    rig.stop_pollers().await;
}

// ---------------------------------------------------------------------------------------------
// 7. The `markoff` binary against pymodbus: the daemon as installed (also an arm64 build under
//    an emulator, see `markoff_tests::binary`), over Modbus TCP and RTU on a serial line.
// ---------------------------------------------------------------------------------------------

/// Every committed row of the buffer at `db` for the sensors of `want`, as
/// (sensor, value, quality code): what the daemon stored, read as an operator would.
fn committed_rows(db: &Path, want: &[(String, f64)]) -> Vec<(String, Option<f64>, i64)> {
    let conn = markoff_tests::db::open_read_only(db);
    markoff_tests::db::refresh_readings(&conn);
    let mut stmt = conn
        .prepare(
            "SELECT s.key, r.value, r.quality FROM readings r JOIN sensors s ON s.id = r.sensor \
             ORDER BY r.seq",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<Vec<(String, Option<f64>, i64)>, _>>()
        .unwrap()
        .into_iter()
        .filter(|(s, _, _)| want.iter().any(|(w, _)| w == s))
        .collect()
}

/// What the daemon's `/api/v1/readings` shows that differs from `want` (each value good).
async fn api_mismatches(gw: &markoff_tests::TempGateway, want: &[(String, f64)]) -> Vec<String> {
    let Ok(rows) = gw.try_get_json("/api/v1/readings").await else {
        return vec!["the API does not answer".to_owned()];
    };
    want.iter()
        .filter_map(|(sensor, value)| {
            let row = rows
                .as_array()
                .and_then(|a| a.iter().find(|r| r["sensor"] == sensor.as_str()));
            let ok =
                row.is_some_and(|r| r["value"].as_f64() == Some(*value) && r["quality"] == "good");
            (!ok).then(|| format!("{sensor}: want {value} good, have {row:?}"))
        })
        .collect()
}

#[tokio::test]
async fn the_daemon_binary_reads_and_commits_every_value_over_tcp() {
    daemon_binary_reads_and_commits_every_value(false).await;
}

#[tokio::test]
async fn the_daemon_binary_reads_and_commits_every_value_over_tcp_and_a_serial_line() {
    daemon_binary_reads_and_commits_every_value(true).await;
}

/// `markoff run` with the connection "line" (TCP, units 1 and 2) and, with `serial`, "bus" (RTU
/// on a pty, unit 3).
async fn daemon_binary_reads_and_commits_every_value(serial: bool) {
    if !peer::available("the_daemon_binary_reads_and_commits_every_value", serial) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tcp = PyServer::start(dir.path(), &Listen::Tcp { port: 0 }, &[1, 2], 1).await;
    let mut toml = connection(&format!("tcp://127.0.0.1:{}", tcp.port), "", &[1, 2]);
    let mut units = vec![1u8, 2];
    let mut rtu = None;
    if serial {
        let pty = PtyPair::open(dir.path()).await;
        let server = PyServer::start(dir.path(), &Listen::Serial(pty.b.clone()), &[3], 1).await;
        toml.push_str(
            &connection(
                &format!("file://{}", pty.a.display()),
                "transmission_mode = \"RTU\"\npause_between_requests = \"5ms\"",
                &[3],
            )
            .replace("sources.modbus.line", "sources.modbus.bus"),
        );
        units.push(3);
        rtu = Some((pty, server));
    }
    let mut gw = markoff_tests::TempGateway::builder()
        .id("modbus-interop")
        .no_simulator()
        .extra_toml(&toml)
        .start()
        .await;
    let want: Vec<(String, f64)> = units.iter().flat_map(|u| expected(*u, 1)).collect();
    assert_eventually!(
        api_mismatches(&gw, &want).await.is_empty(),
        "{:#?}\ndaemon log:\n{}\npymodbus TCP log:\n{}\npymodbus RTU log:\n{}",
        api_mismatches(&gw, &want).await,
        gw.log(),
        tcp.log(),
        rtu.as_ref().map(|(_, s)| s.log()).unwrap_or_default()
    );
    // Committed to the buffer: a good row of every sensor (unchanged values are not stored
    // again at every poll), each good row with exactly its value; a row that is not good (a read
    // into the hole before the plan learned it) has no value.
    let good_rows = |rows: &[(String, Option<f64>, i64)], sensor: &str| {
        rows.iter()
            .filter(|(s, _, q)| s == sensor && *q == i64::from(Quality::Good.code()))
            .count()
    };
    assert_eventually!(
        {
            let rows = committed_rows(&gw.db_path(), &want);
            want.iter().all(|(s, _)| good_rows(&rows, s) >= 1)
        },
        "not every sensor has a good row in the buffer:\n{}",
        gw.log()
    );
    gw.sigterm();
    let status = gw.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "stopped with {status}:\n{}", gw.log());
    let rows = committed_rows(&gw.db_path(), &want);
    for (sensor, value, quality) in &rows {
        let (_, expected) = want.iter().find(|(s, _)| s == sensor).unwrap();
        if *quality == i64::from(Quality::Good.code()) {
            assert_eq!(
                value,
                &Some(*expected),
                "{sensor}: a good row with another value"
            );
        } else {
            assert_eq!(
                value, &None,
                "{sensor}: a row of quality {quality} with a value"
            );
        }
    }
    for unit in units {
        let sensor = format!("u{unit}.serial");
        let text: Option<String> = markoff_tests::db::open_read_only(&gw.db_path())
            .query_row(
                "SELECT value FROM attributes WHERE sensor = ?1",
                [&sensor],
                |r| r.get(0),
            )
            .ok();
        assert_eq!(text, Some(format!("SN{unit:06}")), "{sensor}");
    }
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
    eprintln!(
        "{} rows of {} sensors checked, {} of them good",
        rows.len(),
        want.len(),
        rows.iter().filter(|r| r.2 == 0).count()
    );
}
