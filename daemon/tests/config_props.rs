//! What `markoff validate` accepts, `markoff run` runs: generated configs, within and beyond the
//! documented bounds ([store], Modbus connections, devices and points), are either rejected with
//! a position or start and stop cleanly through the in-process start path, with the Modbus
//! sources pointed at nothing (a closed TCP port, a serial port that does not exist).
//! Also the specific values that once validated and then failed at start or at run time.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::time::Duration;

use markoff::app::{Exit, Gateway, StartOptions};
use markoff::config::{self, ConfigErrors};
use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

/// Durations: mostly plausible ones, sometimes the edges of the bounds or beyond them.
fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        150 => (10u64..3_000).prop_map(|ms| format!("{ms}ms")),
        1 => Just("0s".to_owned()),
        1 => Just("1ms".to_owned()),
        1 => Just("2days".to_owned()),
        1 => Just("3650days".to_owned()),
        1 => Just("4000days".to_owned()),
        1 => Just("500000000000years".to_owned()),
    ]
}

/// Point `i` of a device: coherent (register, type, bit, length) at its own addresses most of
/// the time; sometimes an address anywhere (overlaps, the end of the address space) or a type
/// that does not fit.
fn point(i: usize) -> impl Strategy<Value = String> {
    let base = u32::try_from(i).unwrap() * 10;
    let shape = prop_oneof![
        4 => Just(("holding", "UINT16", None, None)),
        2 => Just(("input", "FLOAT32", None, None)),
        2 => Just(("holding", "FLOAT64", None, None)),
        1 => Just(("holding", "INT32", None, None)),
        1 => Just(("input", "STRING", None, Some(4u16))),
        1 => Just(("holding", "BIT", Some(3u8), None)),
        2 => Just(("coil", "BIT", None, None)),
        1 => Just(("discrete", "BIT", None, None)),
        1 => Just(("holding", "BIT", None, None)),
        1 => Just(("coil", "FLOAT32", None, None)),
        1 => Just(("input", "STRING", None, Some(0u16))),
        1 => Just(("holding", "UINT16", Some(16u8), None)),
    ];
    let address = prop_oneof![
        20 => Just(base),
        1 => 65_530u32..65_536,
        1 => any::<u16>().prop_map(u32::from),
        1 => 0u32..40,
    ];
    (shape, address).prop_map(move |((r, t, bit, length), a)| {
        let mut s =
            format!("{{ name = \"p{i}\", register = \"{r}\", address = {a}, type = \"{t}\"");
        if let Some(b) = bit {
            s.push_str(&format!(", bit = {b}"));
        }
        if let Some(l) = length {
            s.push_str(&format!(", length = {l}"));
        }
        s.push_str(" }");
        s
    })
}

fn device(i: usize) -> impl Strategy<Value = String> {
    let slave = prop_oneof![30 => 1u8..=247, 1 => Just(0u8), 1 => 248u8..=255];
    (slave, duration(), duration(), 1usize..4).prop_flat_map(
        move |(slave, interval, reprobe, n)| {
            let points: Vec<_> = (0..n).map(point).collect();
            points.prop_map(move |pts| {
                format!(
                    "[[sources.modbus.line.devices]]\nname = \"d{i}\"\nslave_id = {}\n\
                     interval = \"{interval}\"\nreprobe_interval = \"{reprobe}\"\n\
                     points = [\n  {}\n]\n",
                    // Two devices on one line need two unit ids.
                    slave.wrapping_add(u8::try_from(i).unwrap()),
                    pts.join(",\n  ")
                )
            })
        },
    )
}

fn modbus() -> impl Strategy<Value = String> {
    let controller = prop_oneof![
        Just("tcp://127.0.0.1:1"),
        Just("file:///nonexistent/ttyMARKOFF0"),
    ];
    let mode = prop_oneof![
        8 => Just(""),
        1 => Just("transmission_mode = \"RTU\"\n"),
        1 => Just("transmission_mode = \"TCP\"\n"),
        1 => Just("transmission_mode = \"RTUoverTCP\"\n"),
    ];
    let baud = prop_oneof![30 => Just(9600u32), 1 => Just(0), 1 => any::<u32>()];
    let devices = prop_oneof![
        device(0).prop_map(|d| vec![d]),
        (device(0), device(1)).prop_map(|(a, b)| vec![a, b]),
    ];
    (controller, mode, duration(), baud, devices).prop_map(|(c, m, t, b, d)| {
        format!(
            "[sources.modbus.line]\ncontroller = \"{c}\"\n{m}timeout = \"{t}\"\nbaud_rate = {b}\n\
             reconnect_max = \"1s\"\n\n{}",
            d.join("\n")
        )
    })
}

fn store() -> impl Strategy<Value = String> {
    let capacity = prop_oneof![
        20 => 1u64..=1_000_000,
        1 => Just(1_000_001u64),
        1 => Just(0u64),
        1 => Just(2_305_843_009_213_693_952),
        1 => Just(u64::MAX >> 1),
    ];
    let rows = prop_oneof![20 => 1u64..200_000, 1 => Just(0u64)];
    (capacity, rows, duration(), duration()).prop_map(|(q, rows, flush, retention)| {
        format!(
            "queue_capacity = {q}\nflush_rows = {rows}\nflush_interval = \"{flush}\"\n\
             retention = \"{retention}\"\n"
        )
    })
}

/// A whole config: the generated parts, a buffer in `dir`, the API on a free port.
fn config_text(dir: &Path, store: &str, modbus: &str) -> String {
    format!(
        "[gateway]\nid = \"props\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[store]\npath = \"{}\"\n{store}\n{modbus}",
        dir.join("markoff.db").display()
    )
}

/// Starts the gateway from `cfg` and stops it again; panics unless both go cleanly.
fn start_and_stop(cfg: config::Config, text: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let gw = tokio::time::timeout(
            Duration::from_secs(30),
            Gateway::start(cfg, StartOptions::default()),
        )
        .await
        .unwrap_or_else(|_| panic!("start hung:\n{text}"))
        .unwrap_or_else(|e| panic!("validated but did not start: {e:#}\n{text}"));
        // Let the sources run their first cycle against nothing.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let stop = CancellationToken::new();
        stop.cancel();
        let exit = tokio::time::timeout(Duration::from_secs(30), gw.run(stop))
            .await
            .unwrap_or_else(|_| panic!("stop hung:\n{text}"))
            .unwrap();
        assert_eq!(exit, Exit::Clean, "{text}");
    });
}

/// Whatever validates starts and stops; whatever does not is rejected with a position.
#[test]
fn what_validates_starts_and_stops() {
    const CASES: u32 = 128;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let started = std::sync::atomic::AtomicU32::new(0);
    let rejected = std::sync::atomic::AtomicU32::new(0);
    runner
        .run(&(store(), modbus()), |(store, modbus)| {
            let dir = tempfile::tempdir().unwrap();
            let text = config_text(dir.path(), &store, &modbus);
            match config::parse_str(&text, Path::new("gen.toml")) {
                Ok(cfg) => {
                    start_and_stop(cfg, &text);
                    started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => {
                    for err in &e.errors {
                        prop_assert!(err.position.is_some(), "no position: {err:?}\n{text}");
                    }
                    rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(())
        })
        .unwrap();
    let (started, rejected) = (started.into_inner(), rejected.into_inner());
    eprintln!("{started} generated configs started and stopped, {rejected} were rejected");
    assert!(
        started >= CASES / 16 && rejected >= CASES / 16,
        "the generator must reach both sides of the bounds: {started} started, {rejected} rejected"
    );
}

fn rejected(text: &str) -> ConfigErrors {
    config::parse_str(
        &format!("[gateway]\nid = \"t\"\n{text}"),
        Path::new("t.toml"),
    )
    .expect_err("must not validate")
}

/// The one error at `path`, with its line.
fn error_at(e: &ConfigErrors, path: &str, line: usize) -> String {
    let found: Vec<_> = e.errors.iter().filter(|x| x.path == path).collect();
    assert_eq!(found.len(), 1, "one error at {path}: {e}");
    assert_eq!(found[0].position.map(|p| p.0), Some(line), "{e}");
    found[0].message.clone()
}

#[test]
fn a_queue_capacity_that_would_panic_at_start_is_rejected() {
    let e = rejected("[store]\nqueue_capacity = 2305843009213693952\n");
    let m = error_at(&e, "store.queue_capacity", 4);
    assert!(m.contains("1-1000000"), "{m}");
    assert!(e.to_string().starts_with("t.toml:4:1: "), "{e}");
}

const LINE: &str = "[sources.modbus.l]\ncontroller = \"file:///dev/ttyUSB0\"\n[[sources.modbus.l.devices]]\nname = \"d\"\n";

#[test]
fn a_float64_past_the_last_address_is_rejected() {
    let e = rejected(&format!(
        "{LINE}slave_id = 1\npoints = [\n  {{ name = \"f\", register = \"holding\", address = 65535, type = \"FLOAT64\" }},\n]\n"
    ));
    let m = error_at(&e, "sources.modbus.l.devices.0.points.0.address", 9);
    assert!(m.contains("past the last address"), "{m}");
    // The last four registers are fine.
    config::parse_str(
        &format!(
            "[gateway]\nid = \"t\"\n{LINE}slave_id = 1\npoints = [{{ name = \"f\", register = \"holding\", address = 65532, type = \"FLOAT64\" }}]\n"
        ),
        Path::new("t.toml"),
    )
    .unwrap();
}

#[test]
fn rtu_unit_ids_are_1_to_247() {
    for bad in [0u8, 248, 255] {
        let e = rejected(&format!(
            "{LINE}slave_id = {bad}\npoints = [{{ name = \"x\", register = \"holding\", address = 0 }}]\n"
        ));
        let m = error_at(&e, "sources.modbus.l.devices.0.slave_id", 7);
        assert!(m.contains("1-247"), "{m}");
    }
    // On Modbus TCP, 0 and 255 address the device itself.
    for ok in [0u8, 255] {
        config::parse_str(
            &format!(
                "[gateway]\nid = \"t\"\n[sources.modbus.l]\ncontroller = \"tcp://127.0.0.1:502\"\n[[sources.modbus.l.devices]]\nname = \"d\"\nslave_id = {ok}\npoints = [{{ name = \"x\", register = \"holding\", address = 0 }}]\n"
            ),
            Path::new("t.toml"),
        )
        .unwrap();
    }
}

#[test]
fn overlapping_points_are_rejected_but_bits_of_a_register_are_not() {
    let e = rejected(&format!(
        "{LINE}slave_id = 1\npoints = [\n  {{ name = \"a\", register = \"holding\", address = 0, type = \"FLOAT32\" }},\n  {{ name = \"b\", register = \"holding\", address = 1 }},\n]\n"
    ));
    let m = error_at(&e, "sources.modbus.l.devices.0.points.1.address", 10);
    assert!(m.contains("\"a\""), "{m}");
    config::parse_str(
        &format!(
            "[gateway]\nid = \"t\"\n{LINE}slave_id = 1\npoints = [\n  {{ name = \"status\", register = \"holding\", address = 4 }},\n  {{ name = \"run\", register = \"holding\", address = 4, type = \"BIT\", bit = 1 }},\n  {{ name = \"fault\", register = \"holding\", address = 4, type = \"BIT\", bit = 2 }},\n]\n"
        ),
        Path::new("t.toml"),
    )
    .unwrap();
    config::parse_str(
        &format!(
            "[gateway]\nid = \"t\"\n{LINE}slave_id = 1\npoints = [\n  {{ name = \"mode\", register = \"holding\", address = 0, type = \"UINT8H\" }},\n  {{ name = \"stage\", register = \"holding\", address = 0, type = \"UINT8L\" }},\n]\n"
        ),
        Path::new("t.toml"),
    )
    .unwrap();
    let e = rejected(&format!(
        "{LINE}slave_id = 1\npoints = [\n  {{ name = \"run\", register = \"holding\", address = 4, type = \"BIT\", bit = 1 }},\n  {{ name = \"on\", register = \"holding\", address = 4, type = \"BIT\", bit = 1 }},\n]\n"
    ));
    error_at(&e, "sources.modbus.l.devices.0.points.1.address", 10);
}

#[test]
fn a_duration_that_overflows_timers_is_rejected() {
    let e = rejected("[service]\nstatus_interval = \"1000000years\"\n");
    error_at(&e, "service.status_interval", 4);
    let e = rejected(&format!(
        "{LINE}slave_id = 1\ninterval = \"30days\"\npoints = [{{ name = \"x\", register = \"holding\", address = 0 }}]\n"
    ));
    error_at(&e, "sources.modbus.l.devices.0.interval", 8);
}

#[test]
fn a_file_that_is_not_utf8_gets_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cp1251.toml");
    let mut bytes = b"[gateway]\nid = \"t\"\nname = \"".to_vec();
    bytes.extend_from_slice(&[0xCB, 0xE5, 0xED, 0xE8, 0xED, 0xE0]); // "Ленина" in Windows-1251
    bytes.extend_from_slice(b"\"\n");
    std::fs::write(&path, bytes).unwrap();
    let e = match config::load_file(&path) {
        Err(config::LoadError::Invalid(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(e.errors[0].position, Some((3, 9)), "{e}");
    assert!(e.to_string().contains("cp1251.toml:3:9: "), "{e}");
    assert!(e.errors[0].message.contains("UTF-8"), "{e}");
}
