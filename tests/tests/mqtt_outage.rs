//! MQTT with the broker down: no busy loop while it is away (CPU measured for this process,
//! which runs only this test), and the connection comes back within the backoff cap.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/mosquitto.rs"]
mod broker;

use std::sync::Arc;
use std::time::Duration;

use broker::{Mosquitto, cpu_time, eventually, free_port};
use markoff::sources::SourceContext;
use markoff::sources::mqtt::{self, client};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_broker_costs_no_cpu_and_is_rejoined_within_the_backoff_cap() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let store = markoff_tests::store::open_test_store(dir.path(), "o.db");
    let gw = format!("gw-outage-{}", std::process::id());
    let text = format!(
        "[gateway]\nid = \"t\"\n[sources.mqtt.bus]\nservers = [\"tcp://127.0.0.1:{port}\"]\nclient_id = \"{gw}\"\nreconnect_max = \"2s\"\n\
         [[sources.mqtt.bus.subscriptions]]\ntopic = \"outage/+\"\nformat = \"value\"\ntopic_parsing = \"_/device\"\n"
    );
    let config = markoff::config::parse_str(&text, std::path::Path::new("t.toml")).unwrap();
    let m = mqtt::resolve(&config.sources.mqtt, "t").unwrap().remove(0);
    let ctx = SourceContext::for_store(&store);
    let token = CancellationToken::new();
    let task = tokio::spawn(client::run(Arc::new(m), ctx, token.clone()));

    // Broker down: reconnect attempts back off (1s, 2s, 2s, ...) instead of spinning.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cpu0, t0) = (cpu_time(), std::time::SystemTime::now());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed().unwrap());
    let share = cpu.as_secs_f64() / wall.as_secs_f64();
    println!(
        "CPU while the broker was down: {cpu:?} in {wall:?} ({:.2} %)",
        share * 100.0
    );
    assert!(
        share < 0.05,
        "no busy loop while the broker is down: {cpu:?} of CPU in {wall:?}"
    );
    let attempts = store
        .shared
        .registry
        .render()
        .lines()
        .find(|l| l.starts_with("markoff_source_errors_total{source=\"mqtt:bus\"}"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .unwrap_or(0.0);
    assert!(
        (1.0..=6.0).contains(&attempts),
        "attempts in 4.5 s with a 2 s cap: {attempts}"
    );
    let connected = "markoff_mqtt_connected{broker=\"bus\"}";
    let text = store.shared.registry.render();
    assert!(
        text.contains(&format!("{connected} 0")),
        "the connection is down: {text}"
    );

    // The broker returns: the gateway is back within the cap (2 s) plus connect time.
    let Some(broker) = Mosquitto::start_on(port).await else {
        return;
    };
    let back = tokio::time::Instant::now();
    eventually("subscribed again", || broker.subscribed(&gw)).await;
    let took = back.elapsed();
    eventually("the connection gauge is up", || {
        store
            .shared
            .registry
            .render()
            .contains(&format!("{connected} 1"))
    })
    .await;
    assert!(
        took < Duration::from_millis(3_500),
        "reconnected after {took:?}, the cap is 2 s"
    );

    let (publisher, mut el) =
        AsyncClient::new(MqttOptions::new("outage-pub", "127.0.0.1", port), 10);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    publisher
        .publish("outage/pump", QoS::AtLeastOnce, false, "ON")
        .await
        .unwrap();
    let shared = store.shared.clone();
    eventually("message after the outage stored", || {
        shared
            .latest
            .get("pump")
            .is_some_and(|v| v.value == Some(1.0))
    })
    .await;
    token.cancel();
    task.await.unwrap().unwrap();
}
