//! MQTT acquisition against a real Mosquitto broker: at-least-once delivery into the buffer,
//! stored once per (sensor, timestamp), across broker restarts; bad payloads counted and dropped.
//!
//! Each test runs its own `mosquitto` on a free loopback port with its own persistence directory,
//! so it can restart its broker without disturbing other tests.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/mosquitto.rs"]
mod broker;

use std::sync::Arc;
use std::time::Duration;

use broker::{Mosquitto, eventually};
use markoff::sources::SourceContext;
use markoff::sources::mqtt::{self, client};
use markoff::store::Store;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

struct Rig {
    dir: tempfile::TempDir,
    store: Store,
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = markoff_tests::store::open_test_store(dir.path(), "q.db");
        Self {
            dir,
            store,
            token: CancellationToken::new(),
            task: None,
        }
    }

    fn start(&mut self, sources: &str) {
        let text = format!("[gateway]\nid = \"t\"\n{sources}");
        let cfg = markoff::config::parse_str(&text, std::path::Path::new("t.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let m = mqtt::resolve(&cfg.sources.mqtt, "t").unwrap().remove(0);
        let ctx = SourceContext::for_store(&self.store);
        self.token = CancellationToken::new();
        let token = self.token.clone();
        self.task = Some(tokio::spawn(async move {
            client::run(Arc::new(m), ctx, token).await.unwrap()
        }));
    }

    async fn stop(&mut self) {
        self.token.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    fn count(&self, sql: &str) -> i64 {
        let c = rusqlite::Connection::open(self.dir.path().join("q.db")).unwrap();
        markoff_tests::db::refresh_readings(&c);
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        std::process::id() ^ (markoff::model::Timestamp::now().as_millis() as u32)
    )
}

fn seq_subscription(port: u16, topic_root: &str, client_id: &str) -> String {
    format!(
        r#"[sources.mqtt.bus]
servers = ["tcp://127.0.0.1:{port}"]
client_id = "{client_id}"
reconnect_max = "1s"
[[sources.mqtt.bus.subscriptions]]
topic = "{topic_root}/+"
qos = 1
topic_parsing = "_/device"
timestamp_path = "ts"
timestamp_format = "unix_ms"
fields = [{{ path = "seq" }}]
"#
    )
}

/// Publishes `n` messages one at a time with QoS 1, restarting the broker after `restart_at`.
/// Returns how many the broker acknowledged (all of them, with retries).
async fn publish_through_restart(
    broker: &mut Mosquitto,
    topic: &str,
    n: u32,
    restart_at: u32,
) -> u32 {
    let mut opts = MqttOptions::new(unique("pub"), "127.0.0.1", broker.port);
    opts.set_clean_session(false);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(opts, 100);
    let base = markoff::model::Timestamp::now().as_millis() - 60_000;
    let mut acked = 0;
    for i in 0..n {
        if i == restart_at {
            broker.restart().await;
        }
        let payload = format!(r#"{{"seq":{i},"ts":{}}}"#, base + i64::from(i));
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
        // Wait for this message's PUBACK; rumqttc resends unacknowledged messages after a reconnect.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "message {i} never acknowledged"
            );
            match tokio::time::timeout(Duration::from_secs(1), el.poll()).await {
                Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => {
                    acked += 1;
                    break;
                }
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    acked
}

#[tokio::test]
async fn every_acknowledged_message_is_stored_exactly_once_across_a_broker_restart() {
    let Some(mut broker) = Mosquitto::start().await else {
        return;
    };
    let root = unique("t");
    let gw = unique("gw");
    let mut rig = Rig::new();
    rig.start(&seq_subscription(broker.port, &root, &gw));
    // The gateway's persistent session must exist before messages are queued for it.
    eventually("subscribed", || broker.subscribed(&gw)).await;
    let n = 600;
    let acked = publish_through_restart(&mut broker, &format!("{root}/dev1"), n, 250).await;
    assert_eq!(acked, n);
    eventually("every acknowledged message stored", || {
        rig.count("SELECT count(DISTINCT value) FROM readings") == i64::from(n)
    })
    .await;
    assert_eq!(
        rig.count("SELECT count(*) FROM readings"),
        i64::from(n),
        "no reading stored twice"
    );
    assert_eq!(
        rig.count("SELECT CAST(min(value) AS INTEGER) FROM readings"),
        0
    );
    assert_eq!(
        rig.count("SELECT CAST(max(value) AS INTEGER) FROM readings"),
        i64::from(n - 1)
    );
    rig.stop().await;
}

#[tokio::test]
async fn malformed_payloads_are_counted_acknowledged_and_never_fatal() {
    let Some(broker) = Mosquitto::start().await else {
        return;
    };
    let root = unique("m");
    let gw = unique("gw");
    let mut rig = Rig::new();
    rig.start(&seq_subscription(broker.port, &root, &gw));
    eventually("subscribed", || broker.subscribed(&gw)).await;
    let (client, mut el) = AsyncClient::new(
        MqttOptions::new(unique("pub"), "127.0.0.1", broker.port),
        100,
    );
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let ts = markoff::model::Timestamp::now().as_millis();
    for (i, payload) in [
        format!(r#"{{"seq":1,"ts":{ts}}}"#),
        "not json".to_owned(),
        String::from_utf8_lossy(&[0xff, 0x00, 0xfe]).into_owned(),
        r#"{"seq":"many"}"#.to_owned(),
        format!(r#"{{"seq":2,"ts":{}}}"#, ts + 1),
    ]
    .into_iter()
    .enumerate()
    {
        client
            .publish(format!("{root}/d{i}"), QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    eventually("the good messages around the bad ones are stored", || {
        rig.count("SELECT count(*) FROM readings") == 2
    })
    .await;
    let metric =
        format!("markoff_mqtt_malformed_total{{connection=\"bus\",subscription=\"{root}/+\"}} 3");
    eventually("three malformed payloads counted", || {
        rig.store.shared.registry.render().contains(&metric)
    })
    .await;

    // They were acknowledged: a restarted client with the same session gets nothing again.
    rig.stop().await;
    rig.start(&seq_subscription(broker.port, &root, &gw));
    // A probe published now arrives after anything the broker still held for this session, so
    // once it is stored, a redelivery of the bad messages would have been counted already.
    let probe = format!(r#"{{"seq":3,"ts":{}}}"#, ts + 2);
    client
        .publish(format!("{root}/probe"), QoS::AtLeastOnce, false, probe)
        .await
        .unwrap();
    eventually("the probe after the restart is stored", || {
        rig.count("SELECT count(*) FROM readings") == 3
    })
    .await;
    let text = rig.store.shared.registry.render();
    assert!(
        text.contains(&metric),
        "nothing was delivered again: {}",
        text.lines()
            .filter(|l| l.contains("mqtt_"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_qos0_flood_never_stalls_the_connection() {
    let Some(broker) = Mosquitto::start().await else {
        return;
    };
    let root = unique("f");
    let gw = unique("gw");
    let mut rig = Rig::new();
    let config = seq_subscription(broker.port, &root, &gw).replace("qos = 1", "qos = 0");
    rig.start(&config);
    eventually("subscribed", || broker.subscribed(&gw)).await;
    let mut opts = MqttOptions::new(unique("flood"), "127.0.0.1", broker.port);
    opts.set_inflight(1000);
    let (client, mut el) = AsyncClient::new(opts, 10_000);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let ts = markoff::model::Timestamp::now().as_millis() - 3_600_000;
    for i in 0..40_000i64 {
        let payload = format!(r#"{{"seq":{i},"ts":{}}}"#, ts + i);
        client
            .publish(
                format!("{root}/d{}", i % 100),
                QoS::AtMostOnce,
                false,
                payload,
            )
            .await
            .unwrap();
    }
    // However many QoS 0 messages the gateway had to shed, it keeps reading: a last one arrives.
    let last = 1_000_000;
    let payload = format!(r#"{{"seq":{last},"ts":{}}}"#, ts + 50_000);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while rig.count(&format!(
        "SELECT count(*) FROM readings WHERE value = {last}"
    )) == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connection stalled after a QoS 0 flood"
        );
        client
            .publish(
                format!("{root}/last"),
                QoS::AtMostOnce,
                false,
                payload.clone(),
            )
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    rig.stop().await;
}

#[tokio::test]
async fn a_dead_first_server_fails_over_to_the_next() {
    let Some(broker) = Mosquitto::start().await else {
        return;
    };
    let dead = broker::free_port();
    let root = unique("fo");
    let gw = unique("gw");
    let config = seq_subscription(broker.port, &root, &gw).replace(
        &format!("servers = [\"tcp://127.0.0.1:{}\"]", broker.port),
        &format!(
            "servers = [\"tcp://127.0.0.1:{dead}\", \"tcp://127.0.0.1:{}\"]",
            broker.port
        ),
    );
    assert!(config.contains(&dead.to_string()));
    let mut rig = Rig::new();
    rig.start(&config);
    eventually("subscribed through the second server", || {
        broker.subscribed(&gw)
    })
    .await;
    let (client, mut el) = AsyncClient::new(
        MqttOptions::new(unique("pub"), "127.0.0.1", broker.port),
        10,
    );
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let ts = markoff::model::Timestamp::now().as_millis();
    client
        .publish(
            format!("{root}/d"),
            QoS::AtLeastOnce,
            false,
            format!(r#"{{"seq":7,"ts":{ts}}}"#),
        )
        .await
        .unwrap();
    eventually("stored", || {
        rig.count("SELECT count(*) FROM readings WHERE value = 7") == 1
    })
    .await;
    rig.stop().await;
}

/// A connection reading plain values from `{topic_root}/+` (sensor ids from the topic, readings
/// stamped at receipt, so a message delivered twice would be stored twice), with `extra` keys.
fn value_subscription(port: u16, topic_root: &str, client_id: &str, extra: &str) -> String {
    format!(
        r#"[sources.mqtt.bus]
servers = ["tcp://127.0.0.1:{port}"]
client_id = "{client_id}"
reconnect_max = "1s"
{extra}
[[sources.mqtt.bus.subscriptions]]
topic = "{topic_root}/+"
qos = 1
format = "value"
"#
    )
}

/// A publisher allowed to send messages of a few MiB.
fn big_publisher(port: u16) -> AsyncClient {
    let mut opts = MqttOptions::new(unique("pub"), "127.0.0.1", port);
    opts.set_max_packet_size(8 << 20, 8 << 20);
    let (client, mut el) = AsyncClient::new(opts, 100);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    client
}

fn metric(rig: &Rig, name_and_labels: &str) -> Option<f64> {
    rig.store
        .shared
        .registry
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test]
async fn oversized_messages_are_dropped_acknowledged_counted_and_the_connection_goes_on() {
    let Some(broker) = Mosquitto::start().await else {
        return;
    };
    let root = unique("big");
    let gw = unique("gw");
    let config = value_subscription(broker.port, &root, &gw, "max_message_size = \"64KiB\"");
    let mut rig = Rig::new();
    rig.start(&config);
    eventually("subscribed", || broker.subscribed(&gw)).await;
    let client = big_publisher(broker.port);
    // Between good messages: one over the old fixed 1 MiB client limit, one just over the
    // configured limit; QoS 1, so a broken connection would have them all delivered again.
    let messages: [(&str, Vec<u8>); 5] = [
        ("a", b"1".to_vec()),
        ("huge", vec![b'9'; 2 << 20]),
        ("b", b"2".to_vec()),
        ("over", vec![b'8'; 64 * 1024 + 1]),
        ("c", b"3".to_vec()),
    ];
    for (device, payload) in messages {
        client
            .publish(format!("{root}/{device}"), QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    eventually("the three good messages stored", || {
        rig.count("SELECT count(*) FROM readings") == 3
    })
    .await;
    let oversized = "markoff_mqtt_oversized_total{broker=\"bus\"}";
    eventually("two oversized messages counted", || {
        metric(&rig, oversized) == Some(2.0)
    })
    .await;
    assert_eq!(
        metric(&rig, "markoff_mqtt_connected{broker=\"bus\"}"),
        Some(1.0)
    );

    // Acknowledged, and the connection never dropped: after a restart on the same session the
    // broker has nothing to deliver again, and every good reading is there once.
    rig.stop().await;
    rig.start(&config);
    client
        .publish(format!("{root}/d"), QoS::AtLeastOnce, false, "4")
        .await
        .unwrap();
    eventually("the message after the restart is stored", || {
        rig.count("SELECT count(*) FROM readings WHERE value = 4") == 1
    })
    .await;
    assert_eq!(
        rig.count("SELECT count(*) FROM readings"),
        4,
        "a reading stored twice"
    );
    assert_eq!(
        rig.count("SELECT count(DISTINCT CAST(value AS INTEGER)) FROM readings"),
        4
    );
    assert_eq!(
        metric(&rig, oversized),
        Some(2.0),
        "an oversized message came again"
    );
    assert_eq!(
        metric(&rig, "markoff_source_errors_total{source=\"mqtt:bus\"}"),
        None,
        "the connection failed at some point"
    );
    rig.stop().await;
}

#[tokio::test]
async fn new_sensors_over_max_sensors_are_dropped_and_known_ones_go_on() {
    let Some(broker) = Mosquitto::start().await else {
        return;
    };
    let root = unique("many");
    let gw = unique("gw");
    let config = value_subscription(broker.port, &root, &gw, "")
        .replace("format = \"value\"", "format = \"value\"\nmax_sensors = 3");
    assert!(config.contains("max_sensors = 3"));
    let mut rig = Rig::new();
    rig.start(&config);
    eventually("subscribed", || broker.subscribed(&gw)).await;
    let client = big_publisher(broker.port);
    let publish = |device: String, value: u32| {
        let client = client.clone();
        let topic = format!("{root}/{device}");
        async move {
            client
                .publish(topic, QoS::AtLeastOnce, false, value.to_string())
                .await
                .unwrap();
        }
    };
    for i in 1..=6 {
        publish(format!("s{i}"), i).await;
    }
    // A known sensor after the limit was hit keeps reporting.
    publish("s1".to_owned(), 11).await;
    eventually("the known sensor's second reading stored", || {
        rig.count("SELECT count(*) FROM readings WHERE value = 11") == 1
    })
    .await;
    let dropped = format!(
        "markoff_mqtt_sensor_limit_dropped_total{{connection=\"bus\",subscription=\"{root}/+\"}}"
    );
    eventually("three readings of new sensors dropped", || {
        metric(&rig, &dropped) == Some(3.0)
    })
    .await;
    assert_eq!(
        rig.count("SELECT count(DISTINCT sensor) FROM readings"),
        3,
        "more sensors than max_sensors"
    );
    assert_eq!(rig.count("SELECT count(*) FROM readings"), 4);

    // The limit holds across a restart: the buffer's sensors count before they report again.
    rig.stop().await;
    rig.start(&config);
    publish("s7".to_owned(), 7).await;
    publish("s2".to_owned(), 12).await;
    eventually("the known sensor stored after the restart", || {
        rig.count("SELECT count(*) FROM readings WHERE value = 12") == 1
    })
    .await;
    assert_eq!(metric(&rig, &dropped), Some(4.0));
    assert_eq!(
        rig.count("SELECT count(*) FROM readings WHERE value = 7"),
        0
    );
    rig.stop().await;
}
