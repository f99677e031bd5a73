//! The gateway as Prometheus sees it: a real Prometheus server (Debian's `prometheus`) scrapes a
//! running daemon and its HTTP API must hold the series; `promtool check metrics` accepts the
//! exposition; the packaged alert rules (`packaging/prometheus/`) pass `promtool check rules` and
//! their unit tests, and load into the server; every query of the gateways' Grafana dashboard
//! (`packaging/grafana/provisioning/dashboards/markoff-gateways.json`) runs on that server.
//!
//! Needs the `prometheus` package (`tests/run.sh` installs it); missing under `CI=true` fails.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::time::Duration;

use markoff_tests::prometheus::{PrometheusServer, promtool_in, require_prometheus};
use markoff_tests::{TempGateway, assert_eventually};

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/prometheus")
}

#[tokio::test]
async fn packaged_alert_rules_pass_promtool_and_their_unit_tests() {
    if !require_prometheus("packaged_alert_rules_pass_promtool_and_their_unit_tests") {
        return;
    }
    let dir = rules_dir();
    let (ok, out) = promtool_in(&dir, &["check", "rules", "markoff-rules.yml"], None).await;
    assert!(ok, "promtool check rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let (ok, out) = promtool_in(&dir, &["test", "rules", "markoff-rules.test.yml"], None).await;
    assert!(ok, "promtool test rules:\n{out}");
}

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    if !require_prometheus("promtool_accepts_the_exposition") {
        return;
    }
    let gw = TempGateway::builder()
        .max_size("64MiB")
        .maintenance_interval(Duration::from_millis(200))
        .start()
        .await;
    assert_eventually!(
        gw.metrics_text()
            .await
            .contains("markoff_readings_ingested_total"),
        "no readings counted"
    );
    // The gateway's own health: the budget as configured, the free space of the buffer's disk
    // once maintenance ran, and the build.
    assert_eq!(
        gw.metric_value("markoff_buffer_budget_bytes").await,
        Some(64.0 * 1024.0 * 1024.0)
    );
    assert_eventually!(
        gw.metric_value("markoff_buffer_disk_free_bytes")
            .await
            .is_some_and(|free| free > 0.0),
        "markoff_buffer_disk_free_bytes never set"
    );
    let text = gw.metrics_text().await;
    let build = text
        .lines()
        .find(|l| l.starts_with("markoff_build_info{"))
        .unwrap_or_else(|| panic!("no markoff_build_info:\n{text}"));
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && build.contains("target=\"")
            && build.ends_with(" 1"),
        "{build}"
    );
    let (ok, out) = promtool_in(gw.dir(), &["check", "metrics"], Some(&text)).await;
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics:\n{out}\n--- exposition ---\n{text}"
    );
}

#[tokio::test]
async fn prometheus_scrapes_the_gateway_and_loads_the_rules() {
    if !require_prometheus("prometheus_scrapes_the_gateway_and_loads_the_rules") {
        return;
    }
    let gw = TempGateway::builder().start().await;
    let target = gw
        .api_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let prom = PrometheusServer::start(
        "markoff",
        std::slice::from_ref(&target),
        &[rules_dir().join("markoff-rules.yml")],
    )
    .await;
    assert_eventually!(
        prom.query("up{job=\"markoff\"} == 1").await.len() == 1,
        "Prometheus never scraped the gateway at {target}; targets: {:?}\n{}",
        prom.api("targets", &[]).await,
        prom.log()
    );
    // Counting goes on: two scrapes apart, more readings.
    assert_eventually!(
        prom.query("increase(markoff_readings_ingested_total[5s]) > 0")
            .await
            .len()
            == 1,
        "no rise of markoff_readings_ingested_total in Prometheus:\n{:?}",
        prom.query("markoff_readings_ingested_total").await
    );
    for series in [
        "markoff_ready",
        "markoff_buffer_rows",
        "markoff_buffer_commit_seconds_bucket",
    ] {
        assert_eventually!(
            !prom.query(series).await.is_empty(),
            "{series} did not arrive in Prometheus"
        );
    }
    let rules = prom.api("rules", &[]).await.expect("the rules API answers");
    let loaded: Vec<&serde_json::Value> = rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    assert!(
        loaded.len() >= 10,
        "the packaged rules did not load: {rules}"
    );
    assert!(
        loaded.iter().all(|r| r["health"] != "err"),
        "a rule fails to evaluate: {rules}"
    );
    dashboard_queries_run(&prom).await;
    // A gateway that answers and is ready raises none of its own alerts.
    assert_eventually!(
        prom.api("alerts", &[])
            .await
            .and_then(|a| a["alerts"].as_array().cloned())
            .is_some_and(|a| a
                .iter()
                .all(|x| x["labels"]["alertname"] != "MarkoffGatewayDown")),
        "MarkoffGatewayDown for a gateway that answers"
    );
}

/// Every PromQL query of the gateways' dashboard is valid on the real server, and the panels of
/// what a gateway without Modbus, MQTT or sync has show data.
async fn dashboard_queries_run(prom: &PrometheusServer) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/grafana/provisioning");
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("dashboards/markoff-gateways.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dash["uid"], "markoff-gateways");
    let ds = std::fs::read_to_string(root.join("datasources/markoff-prometheus.yaml")).unwrap();
    assert!(ds.contains("uid: markoff-prometheus") && ds.contains("type: prometheus"));
    let with_data = [
        "Gateways up",
        "Ready",
        "Version",
        "Readings committed per second",
        "Commit latency p95",
        "Buffer size and budget",
        "Free space on the buffer's disk",
    ];
    let mut queries = 0;
    for p in dash["panels"].as_array().unwrap() {
        let Some(targets) = p["targets"].as_array() else {
            continue;
        };
        assert_eq!(
            p["datasource"]["uid"], "markoff-prometheus",
            "{}",
            p["title"]
        );
        for t in targets {
            let expr = t["expr"].as_str().unwrap().replace("$instance", ".*");
            let title = p["title"].as_str().unwrap();
            assert!(
                prom.api("query", &[("query", &expr)]).await.is_some(),
                "panel {title}: Prometheus refuses {expr}"
            );
            queries += 1;
            if with_data.contains(&title) {
                assert_eventually!(
                    !prom.query(&expr).await.is_empty(),
                    "panel {title} shows nothing: {expr}"
                );
            }
        }
    }
    assert!(queries >= 20, "{queries} queries");
}
