//! `markoff status` and `markoff readings` against a running daemon print what its API has, and
//! what they print is what the buffer holds; with no daemon, `status` exits 69 (EX_UNAVAILABLE).

use std::collections::BTreeSet;

use markoff_tests::{SimulatorKnobs, TempGateway, assert_eventually, db, run_markoff};

use super::ms;

fn expected_sensors(sim: &SimulatorKnobs) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for floor in 1..=sim.floors {
        for room in 1..=sim.rooms_per_floor {
            let number = floor * 100 + room;
            for kind in ["temperature", "humidity", "co2"] {
                ids.insert(format!("f{floor}.r{number}.{kind}"));
            }
        }
    }
    for plant in [
        "boiler.supply_temp",
        "boiler.return_temp",
        "boiler.pressure",
        "boiler.burner",
        "boiler.pump_current",
        "basement.leak",
    ] {
        ids.insert(plant.to_owned());
    }
    ids
}

fn stdout_of(out: &std::process::Output, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what} failed; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

fn json_of(out: &std::process::Output, what: &str) -> serde_json::Value {
    let text = stdout_of(out, what);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what} printed no JSON ({e}):\n{text}"))
}

#[tokio::test]
async fn status_and_readings_print_what_the_daemon_has() {
    let gw = TempGateway::builder()
        .id("cli-gw")
        .simulator(2, 3, ms(100))
        .start()
        .await;
    let sim = gw
        .builder_config()
        .simulator_knobs()
        .expect("a simulator")
        .clone();
    let expected = expected_sensors(&sim);
    assert_eq!(expected.len(), sim.sensors() as usize);
    let api = gw.api_url().to_owned();
    assert_eventually!(
        gw.try_get_json("/api/v1/readings")
            .await
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            == Some(expected.len()),
        "not every sensor has a reading yet"
    );
    // Enough history for `readings SENSOR --limit 5`.
    let ticks = i64::from(sim.sensors()) * 6;
    assert_eventually!(
        gw.try_last_seq().await.is_some_and(|s| s >= ticks),
        "fewer than 6 simulator ticks committed"
    );

    // status --json, by URL and by config file (the daemon recorded its port-0 URL).
    let by_url = json_of(
        &run_markoff(&["status", "--json", "--api", &api]).await,
        "status --json --api",
    );
    let config = gw.config_path();
    let config = config.to_str().expect("UTF-8 path");
    let by_config = json_of(
        &run_markoff(&["status", "--json", "--config", config]).await,
        "status --json --config",
    );
    for status in [&by_url, &by_config] {
        assert_eq!(status["gateway_id"], "cli-gw", "{status}");
        assert_eq!(status["ready"], true, "{status}");
        assert_eq!(status["points"], expected.len(), "{status}");
        assert!(
            status["last_seq"].as_i64().is_some_and(|s| s > 0),
            "{status}"
        );
        let tasks: Vec<&str> = status["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .filter(|t| t["state"] == "running")
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(
            tasks.contains(&"store:writer") && tasks.contains(&"source:simulator"),
            "{tasks:?}"
        );
    }
    let human = stdout_of(&run_markoff(&["status", "--api", &api]).await, "status");
    assert!(
        human.contains("gateway   cli-gw") && human.contains("ready     yes"),
        "{human}"
    );

    // readings --json: every sensor, each value exactly what the buffer holds at that seq.
    let reader = db::open_read_only(&gw.db_path());
    let rows = json_of(
        &run_markoff(&["readings", "--json", "--api", &api]).await,
        "readings --json",
    );
    let rows = rows.as_array().expect("an array of readings");
    let ids: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r["sensor"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids, expected);
    for row in rows {
        let seq = row["seq"].as_i64().expect("seq");
        let (sensor, value) = db::reading_at(&reader, seq)
            .unwrap_or_else(|| panic!("readings --json shows seq {seq}, absent from the buffer"));
        assert_eq!(row["sensor"], sensor.as_str(), "{row}");
        assert_eq!(row["value"].as_f64(), value, "{row}");
        assert_eq!(row["quality"], "good", "{row}");
    }
    let temp = rows
        .iter()
        .find(|r| r["sensor"] == "f1.r101.temperature")
        .expect("f1.r101.temperature");
    assert_eq!(temp["unit"], "°C");
    assert_eq!(temp["room"], "101");

    // readings SENSOR, for people: header, latest value, history lines that match the buffer.
    let text = stdout_of(
        &run_markoff(&[
            "readings",
            "f1.r101.temperature",
            "--limit",
            "5",
            "--api",
            &api,
        ])
        .await,
        "readings f1.r101.temperature",
    );
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("f1.r101.temperature: Room 101 temperature, floor 1, room 101"),
        "{text}"
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("latest  ") && l.contains(" °C  at ")),
        "{text}"
    );
    let history: Vec<(i64, f64)> = lines
        .map(|l| {
            let (left, seq) = l
                .rsplit_once("  seq ")
                .unwrap_or_else(|| panic!("history line without seq: {l:?}"));
            let value = left
                .trim_end()
                .strip_suffix(" °C")
                .and_then(|v| v.split_whitespace().last())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("history line without a value in °C: {l:?}"));
            (seq.parse().expect("seq number"), value)
        })
        .collect();
    assert_eq!(history.len(), 5, "{text}");
    assert!(
        history.windows(2).all(|w| w[0].0 > w[1].0),
        "history is newest first: {history:?}"
    );
    for (seq, value) in history {
        assert_eq!(
            db::reading_at(&reader, seq),
            Some(("f1.r101.temperature".to_owned(), Some(value))),
            "seq {seq}"
        );
    }

    // An unknown sensor is an error, not an empty answer.
    let out = run_markoff(&["readings", "no.such.sensor", "--api", &api]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
}

#[tokio::test]
async fn status_without_a_daemon_exits_69() {
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [
        vec!["status", "--api", url.as_str()],
        vec!["status", "--json", "--api", url.as_str()],
        vec!["readings", "--api", url.as_str()],
    ] {
        let out = run_markoff(&args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(69), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot reach the markoff daemon"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    }
}
