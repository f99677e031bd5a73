//! `markoff import` against the independent peer: every Telegraf config and ThingsBoard connector
//! of `tests/data/import/` is translated by the `markoff` binary, validated by it, and polled with
//! the real poller against a pymodbus server that serves the registers of its `.map.toml` (made by
//! pymodbus's own encoder, `tests/modbus/map_server.py`); every imported point must read the
//! value the map expects. Together the files cover every byte order, coils and discrete inputs,
//! scaling, several slaves on a line, Modbus TCP, RTU on a serial line and RTU over TCP.

use std::path::{Path, PathBuf};

use markoff::model::Quality;
use markoff::sources::modbus;
use markoff_tests::{assert_eventually, run_markoff};

use super::Rig;
use super::peer::{self, Listen, PtyPair, PyServer};

/// How the peer of a file is reached.
#[derive(Clone, Copy, Debug)]
enum Link {
    Tcp,
    RtuOverTcp,
    Serial,
}

/// The files, with their tool and link.
const CASES: [(&str, &str, Link); 9] = [
    ("telegraf", "01-register-tcp.conf", Link::Tcp),
    ("telegraf", "02-request-two-slaves.conf", Link::Tcp),
    ("telegraf", "03-request-rtu.conf", Link::Serial),
    ("telegraf", "04-metric-style.conf", Link::Tcp),
    ("telegraf", "05-rtu-over-tcp.conf", Link::RtuOverTcp),
    ("telegraf", "06-two-plugins-and-mqtt.conf", Link::Tcp),
    ("thingsboard", "01-tcp-two-slaves.json", Link::Tcp),
    ("thingsboard", "02-serial-rtu.json", Link::Serial),
    ("thingsboard", "03-rtu-over-tcp.json", Link::RtuOverTcp),
];

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/import")
}

/// The `[expect]` of a map: numbers, or text for STRING points.
fn expectations(map: &Path) -> Vec<(String, toml::Value)> {
    let text = std::fs::read_to_string(map).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc["expect"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A reading equal to the expected number: exact for integers, within 1e-12 relative for
/// values computed in floating point (a float times a scale).
fn same(got: f64, want: f64) -> bool {
    got == want || (got - want).abs() <= 1e-12 * want.abs().max(1.0)
}

async fn mismatches(rig: &Rig, expected: &[(String, toml::Value)]) -> Vec<String> {
    let mut out = Vec::new();
    for (sensor, want) in expected {
        match want {
            toml::Value::String(text) => {
                let got = rig.attribute(sensor).await;
                if got.as_deref() != Some(text.as_str()) {
                    out.push(format!("{sensor}: want text {text:?}, have {got:?}"));
                }
            }
            other => {
                let want = other
                    .as_float()
                    .or_else(|| other.as_integer().map(|i| i as f64));
                let (got, quality) = (rig.value(sensor), rig.quality(sensor));
                let ok = matches!((got, want), (Some(g), Some(w)) if same(g, w))
                    && quality == Some(Quality::Good);
                if !ok {
                    out.push(format!(
                        "{sensor}: want {want:?} good, have {got:?} {quality:?}"
                    ));
                }
            }
        }
    }
    out
}

/// Imports `file`, validates the result, polls the peer with it and checks every reading.
async fn check(tool: &str, file: &str, link: Link) {
    let mut rig = Rig::new();
    let source = data_dir().join(tool).join(file);
    let map = source.with_extension("map.toml");
    let (server, _pty, original, replacement) = match link {
        Link::Serial => {
            let pty = PtyPair::open(rig.dir()).await;
            let server =
                PyServer::map_server(rig.dir(), &map, &Listen::Serial(pty.b.clone())).await;
            let tty = pty.a.display().to_string();
            (server, Some(pty), "/dev/ttyUSB0", tty)
        }
        Link::Tcp | Link::RtuOverTcp => {
            let listen = if matches!(link, Link::Tcp) {
                Listen::Tcp { port: 0 }
            } else {
                Listen::RtuOverTcp { port: 0 }
            };
            let server = PyServer::map_server(rig.dir(), &map, &listen).await;
            let port = server.port.to_string();
            (server, None, "5020", port)
        }
    };
    let text = std::fs::read_to_string(&source).unwrap();
    assert!(text.contains(original), "{file} names no {original}");
    let input = rig.dir().join(file);
    std::fs::write(&input, text.replace(original, &replacement)).unwrap();
    let output = rig.dir().join("imported.toml");

    let out = run_markoff(&[
        "import",
        tool,
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ])
    .await;
    let report = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "markoff import {tool} {file} failed:\n{report}"
    );
    assert!(
        report.contains("Not carried over") && report.contains("Carried over with a change"),
        "{file}: no report on stderr:\n{report}"
    );
    let imported = std::fs::read_to_string(&output).unwrap();
    let out = run_markoff(&["validate", "--config", output.to_str().unwrap()]).await;
    assert!(
        out.status.success(),
        "{file}: the import does not validate:\n{}\n{imported}",
        String::from_utf8_lossy(&out.stderr)
    );

    let cfg = markoff::config::load_file(&output).unwrap();
    let conns = modbus::resolve(&cfg.sources.modbus, &cfg.sources.modbus_profiles).unwrap();
    let expected = expectations(&map);
    let points: usize = conns
        .iter()
        .flat_map(|c| &c.devices)
        .map(|d| d.points.len())
        .sum();
    assert_eq!(
        points,
        expected.len(),
        "{file}: every imported point has an expectation and the other way round:\n{imported}"
    );
    for conn in conns {
        rig.poll(conn);
    }
    assert_eventually!(
        mismatches(&rig, &expected).await.is_empty(),
        "{file}:\n{:#?}\nimported:\n{imported}\npymodbus log:\n{}",
        mismatches(&rig, &expected).await,
        server.log()
    );
    rig.stop_pollers().await;
}

#[tokio::test]
async fn imported_telegraf_and_thingsboard_configs_read_every_value_right() {
    if !peer::available(
        "imported_telegraf_and_thingsboard_configs_read_every_value_right",
        true,
    ) {
        return;
    }
    for (tool, file, link) in CASES {
        check(tool, file, link).await;
    }
}

/// The MQTT side of `06-two-plugins-and-mqtt.conf`: the imported subscription makes the
/// expected readings of the map's `[mqtt]` message.
#[tokio::test]
async fn imported_mqtt_consumer_decodes_its_messages() {
    let file = data_dir().join("telegraf/06-two-plugins-and-mqtt.conf");
    let text = std::fs::read_to_string(&file).unwrap();
    let imported =
        markoff::import::translate(markoff::import::Source::Telegraf, &text, &file, Some("t"))
            .unwrap();
    let cfg = markoff::config::parse_str(&imported.toml, Path::new("imported.toml")).unwrap();
    let mqtt = cfg
        .sources
        .mqtt
        .values()
        .next()
        .expect("an MQTT connection");
    assert_eq!(mqtt.password_env.as_deref(), Some("MQTT_PASSWORD"));
    assert!(mqtt.persistent_session);
    let map: toml::Table =
        toml::from_str(&std::fs::read_to_string(file.with_extension("map.toml")).unwrap()).unwrap();
    let message = map["mqtt"].as_table().unwrap();
    let rule = markoff::sources::mqtt::decode::compile(&mqtt.subscriptions[0]);
    let readings = markoff::sources::mqtt::decode::decode(
        &rule,
        message["topic"].as_str().unwrap(),
        message["payload"].as_str().unwrap().as_bytes(),
    )
    .unwrap();
    let mut got: Vec<(String, f64)> = readings
        .iter()
        .map(|r| (r.sensor.clone(), r.value))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want: Vec<(String, f64)> = message["expect"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_float().unwrap()))
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want, "{}", imported.toml);
    assert!(
        readings.iter().all(|r| r.ts.is_some()),
        "the payload's ts is the readings' time"
    );
}
