//! The `markoff modbus` commissioning commands, run as the real binary against an in-process
//! Modbus TCP device.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Output;

use markoff::sources::modbus::decode::{ByteOrder, DataType, encode};
use markoff::sources::modbus::device::{SimDevices, SimServer};

async fn markoff(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_markoff"))
        .args(args)
        .output()
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn plant() -> (SimDevices, SimServer) {
    let devices = SimDevices::new();
    devices.set_input(2, 0, &encode(230.5, DataType::Float32, ByteOrder::Cdab));
    devices.set_holding(1, 0, &[215, 0xFF38]);
    devices.set_holding(3, 0, &[1]);
    let srv = SimServer::start(devices.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (devices, srv)
}

#[tokio::test]
async fn read_shows_every_interpretation_and_json_gives_raw_words() {
    let (_d, srv) = plant().await;
    let controller = format!("tcp://{}", srv.addr());
    let out = markoff(&[
        "modbus",
        "read",
        "--controller",
        &controller,
        "--slave",
        "2",
        "--register",
        "input",
        "--address",
        "0",
        "--count",
        "2",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let float_row = shown.lines().find(|l| l.contains("FLOAT32")).unwrap();
    let cells: Vec<&str> = float_row.split_whitespace().collect();
    assert_eq!(
        cells[3], "230.5",
        "CDAB column decodes the meter's float: {shown}"
    );

    let out = markoff(&[
        "modbus",
        "read",
        "--controller",
        &controller,
        "--slave",
        "1",
        "--address",
        "40001",
        "--count",
        "2",
        "--json",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["words"], serde_json::json!([215, 0xFF38]));
    assert_eq!(json["register"], "holding");
}

#[tokio::test]
async fn read_explains_exceptions_and_unreachable_lines() {
    let (_d, srv) = plant().await;
    let controller = format!("tcp://{}", srv.addr());
    let out = markoff(&[
        "modbus",
        "read",
        "--controller",
        &controller,
        "--slave",
        "1",
        "--register",
        "holding",
        "--address",
        "50",
        "--count",
        "1",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("address_base"),
        "{}",
        text(&out.stderr)
    );

    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = markoff(&[
        "modbus",
        "read",
        "--controller",
        &format!("tcp://{dead}"),
        "--address",
        "40001",
        "--timeout",
        "300ms",
    ])
    .await;
    assert_eq!(out.status.code(), Some(69), "{}", text(&out.stderr));
    let out = markoff(&[
        "modbus",
        "read",
        "--controller",
        "udp://x",
        "--address",
        "40001",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(64),
        "a malformed controller is a usage error: {}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn scan_lists_the_units_that_answer() {
    let (_d, srv) = plant().await;
    let controller = format!("tcp://{}", srv.addr());
    let out = markoff(&[
        "modbus",
        "scan",
        "--controller",
        &controller,
        "--from",
        "1",
        "--to",
        "5",
        "--timeout",
        "150ms",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let units: Vec<&str> = shown
        .lines()
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(
        units,
        ["unit   1", "unit   2", "unit   3"].map(|u| u.trim()),
        "{shown}"
    );
    assert!(
        shown.contains("unit   2: answers with exception"),
        "unit 2 has no holding register 0: {shown}"
    );
}

#[tokio::test]
async fn plan_prints_requests_per_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[gateway]
id = "t"
[store]
path = "{}"
[sources.modbus.line]
controller = "tcp://127.0.0.1:1502"
[[sources.modbus.line.devices]]
name = "m"
slave_id = 1
profile = "eastron_sdm630"
"#,
            dir.path().join("m.db").display()
        ),
    )
    .unwrap();
    let out = markoff(&["modbus", "plan", "--config", cfg.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("19 points in 5 requests per cycle (one per point: 19)"),
        "{shown}"
    );
}
