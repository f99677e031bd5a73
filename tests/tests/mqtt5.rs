//! MQTT 3.1.1 and MQTT 5 against a real Mosquitto: an oversized QoS 1 message between normal
//! ones never breaks the connection (3.1.1: the gateway drops, acknowledges and counts it; 5: the
//! broker drops it for the gateway, which announced `max_message_size` as its Maximum Packet
//! Size), and an MQTT 5 connection stores every message exactly once, acknowledging only after
//! the commit (kill -9 of the real binary).
//!
//! Each test runs its own `mosquitto` on a free loopback port with its own persistence directory
//! and log, and its own topic prefix.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/mosquitto.rs"]
mod broker;

use std::sync::Arc;
use std::time::Duration;

use broker::{Mosquitto, eventually};
use markoff::sources::SourceContext;
use markoff::sources::mqtt::{self, client};
use markoff::store::Store;
use markoff_tests::gateway::TempGateway;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

/// The connection in process, over a test store.
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

    fn metric(&self, name_and_labels: &str) -> Option<f64> {
        self.store
            .shared
            .registry
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        std::process::id() ^ (markoff::model::Timestamp::now().as_millis() as u32)
    )
}

/// A connection speaking `protocol` that reads plain values from `{root}/+` (sensor ids from the
/// topic, readings stamped at receipt: a message delivered twice would be stored twice), with
/// payloads up to 64 KiB.
fn value_connection(port: u16, root: &str, client_id: &str, protocol: &str) -> String {
    format!(
        r#"[sources.mqtt.bus]
servers = ["tcp://127.0.0.1:{port}"]
client_id = "{client_id}"
protocol = "{protocol}"
reconnect_max = "1s"
max_message_size = "64KiB"
[[sources.mqtt.bus.subscriptions]]
topic = "{root}/+"
qos = 1
format = "value"
"#
    )
}

/// A publisher allowed to send messages of a few MiB; it waits for the broker's PUBACK of each.
struct Publisher {
    client: AsyncClient,
    acked: Arc<std::sync::atomic::AtomicUsize>,
    sent: usize,
}

impl Publisher {
    fn new(port: u16) -> Self {
        let mut opts = MqttOptions::new(unique("pub"), "127.0.0.1", port);
        opts.set_max_packet_size(8 << 20, 8 << 20);
        let (client, mut el) = AsyncClient::new(opts, 100);
        let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let a = acked.clone();
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        a.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Self {
            client,
            acked,
            sent: 0,
        }
    }

    async fn publish(&mut self, topic: String, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
        self.sent += 1;
        let sent = self.sent;
        let acked = self.acked.clone();
        eventually("the broker acknowledged the publish", || {
            acked.load(std::sync::atomic::Ordering::Relaxed) == sent
        })
        .await;
    }
}

const OVERSIZED: usize = 128 * 1024;

/// One oversized QoS 1 message between two normal ones, then one more normal message; then the
/// gateway stops, a normal and an oversized message wait on the broker in its session, and the
/// gateway comes back. Checks what both protocol versions share: the normal messages stored
/// exactly once, one connection per start (no reconnect loop), no connection error, the session
/// kept. Returns the rig and broker for the version's own checks.
async fn oversized_between_normal_ones(
    broker: &Mosquitto,
    protocol: &str,
    oversized_seen: impl Fn(&Rig, &Mosquitto, &str, usize) -> bool,
) -> Rig {
    let root = unique(&format!("o{}-", protocol.replace('.', "")));
    let gw = unique("gw");
    let config = value_connection(broker.port, &root, &gw, protocol);
    let mut rig = Rig::new();
    rig.start(&config);
    eventually("subscribed", || broker.subscribed(&gw)).await;
    // Mosquitto logs the protocol level: p2 is MQTT 3.1.1, p5 is MQTT 5; c0: session kept.
    let level = if protocol == "5" { "p5" } else { "p2" };
    let connections = |b: &Mosquitto| b.log_lines(&format!(" as {gw} ({level}, c0,"));
    assert_eq!(connections(broker), 1, "connected as MQTT {protocol}");

    let mut publisher = Publisher::new(broker.port);
    publisher.publish(format!("{root}/a"), b"1".to_vec()).await;
    publisher
        .publish(format!("{root}/big"), vec![b'9'; OVERSIZED])
        .await;
    publisher.publish(format!("{root}/b"), b"2".to_vec()).await;
    eventually("the two normal messages stored", || {
        rig.count("SELECT count(*) FROM readings") == 2
    })
    .await;
    eventually("the oversized message dropped", || {
        oversized_seen(&rig, broker, &gw, 1)
    })
    .await;
    publisher.publish(format!("{root}/c"), b"3".to_vec()).await;
    eventually("the message after it stored", || {
        rig.count("SELECT count(*) FROM readings WHERE value = 3") == 1
    })
    .await;
    assert_eq!(connections(broker), 1, "the connection was broken");
    assert_eq!(
        rig.metric("markoff_mqtt_connected{broker=\"bus\"}"),
        Some(1.0)
    );

    // The session outlives the connection: what is published while the gateway is away waits on
    // the broker, and nothing acknowledged before comes again.
    rig.stop().await;
    publisher.publish(format!("{root}/d"), b"4".to_vec()).await;
    publisher
        .publish(format!("{root}/big"), vec![b'8'; OVERSIZED])
        .await;
    rig.start(&config);
    eventually("the message sent while away stored", || {
        rig.count("SELECT count(*) FROM readings WHERE value = 4") == 1
    })
    .await;
    eventually("the second oversized message dropped", || {
        oversized_seen(&rig, broker, &gw, 2)
    })
    .await;
    // A message that waited on the broker came: the session was kept.
    assert_eq!(connections(broker), 2, "one connection per start");
    assert_eq!(
        rig.count("SELECT count(*) FROM readings"),
        4,
        "a reading stored twice, or one lost"
    );
    assert_eq!(
        rig.count("SELECT count(DISTINCT CAST(value AS INTEGER)) FROM readings"),
        4
    );
    assert_eq!(
        rig.metric("markoff_source_errors_total{source=\"mqtt:bus\"}"),
        None,
        "the connection failed at some point"
    );
    rig
}

#[tokio::test]
async fn mqtt311_an_oversized_qos1_message_is_counted_by_the_gateway_and_the_connection_stays() {
    let Some(broker) = Mosquitto::start().await else {
        return;
    };
    let oversized = "markoff_mqtt_oversized_total{broker=\"bus\"}";
    let mut rig = oversized_between_normal_ones(&broker, "3.1.1", |rig, _, _, n| {
        rig.metric(oversized) == Some(n as f64)
    })
    .await;
    // The message reached the gateway: the broker dropped nothing.
    assert_eq!(broker.log_lines("Dropping too large outgoing PUBLISH"), 0);
    rig.stop().await;
}

#[tokio::test]
async fn mqtt5_an_oversized_qos1_message_is_dropped_by_the_broker_and_the_session_stays() {
    let Some(broker) = Mosquitto::start().await else {
        return;
    };
    let mut rig = oversized_between_normal_ones(&broker, "5", |_, broker, gw, n| {
        // Mosquitto says so in its log only (NOTICE, client id and size, no topic); the client
        // is told nothing.
        broker.log_lines(&format!("Dropping too large outgoing PUBLISH for {gw} (")) == n
    })
    .await;
    // The message never reached the gateway, so it counted nothing.
    assert_eq!(
        rig.metric("markoff_mqtt_oversized_total{broker=\"bus\"}")
            .unwrap_or(0.0),
        0.0
    );
    rig.stop().await;
}

fn count(db: &std::path::Path, sql: &str) -> i64 {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return -1;
    };
    // The buffer may not hold its tables yet while the daemon starts.
    if markoff_tests::db::try_refresh_readings(&c).is_err() {
        return -1;
    }
    c.query_row(sql, [], |r| r.get(0)).unwrap_or(-1)
}

#[tokio::test]
async fn mqtt5_stores_every_message_once_and_acknowledges_only_after_the_commit_across_kill9() {
    let Some(broker) = Mosquitto::start().await else {
        return;
    };
    let root = unique("ingest5-");
    let client_id = format!("gw-{root}");
    let status = format!("{root}/status");
    let source = format!(
        r#"[sources.mqtt.bus]
servers = ["tcp://127.0.0.1:{port}"]
client_id = "{client_id}"
protocol = "5"
reconnect_max = "1s"
status_topic = "{status}"
[[sources.mqtt.bus.subscriptions]]
topic = "{root}/+"
topic_parsing = "_/device"
timestamp_path = "ts"
timestamp_format = "unix_ms"
fields = [{{ path = "seq" }}]
"#,
        port = broker.port
    );
    let mut gw = TempGateway::builder()
        .no_simulator()
        .extra_toml(&source)
        .start()
        .await;
    eventually("gateway subscribed", || broker.subscribed(&client_id)).await;
    assert_eq!(
        broker.log_lines(&format!(" as {client_id} (p5, c0,")),
        1,
        "connected as MQTT 5 with a kept session"
    );
    let db = gw.db_path();

    // The status topic: "online" retained, "offline" as the last will after kill -9.
    let (watcher, mut wl) = AsyncClient::new(
        MqttOptions::new(unique("watch"), "127.0.0.1", broker.port),
        10,
    );
    watcher.subscribe(&status, QoS::AtLeastOnce).await.unwrap();
    let last_status = Arc::new(parking_lot::Mutex::new(String::new()));
    let s = last_status.clone();
    tokio::spawn(async move {
        loop {
            match wl.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    *s.lock() = String::from_utf8_lossy(&p.payload).into_owned();
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    eventually("status online", || *last_status.lock() == "online").await;

    let n: i64 = 2_000;
    let mut opts = MqttOptions::new(unique("pub"), "127.0.0.1", broker.port);
    opts.set_inflight(50);
    let (publisher, mut el) = AsyncClient::new(opts, 100);
    let acked = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let a = acked.clone();
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    a.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let base = markoff::model::Timestamp::now().as_millis() - 120_000;
    let topic = format!("{root}/meter");
    let feeder = tokio::spawn(async move {
        for i in 0..n {
            let payload = format!(r#"{{"seq":{i},"ts":{}}}"#, base + i);
            publisher
                .publish(topic.clone(), QoS::AtLeastOnce, false, payload)
                .await
                .unwrap();
            if i % 200 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    // Killed while messages flow: whatever was received but not committed was not acknowledged,
    // and the broker sends it again in the kept session.
    for round in 1..=2 {
        let threshold = i64::from(round) * 600;
        eventually("ingest under way", || {
            count(&db, "SELECT count(*) FROM readings") >= threshold
        })
        .await;
        gw.kill9();
        eventually("the broker published the last will", || {
            *last_status.lock() == "offline"
        })
        .await;
        gw.restart().await;
    }
    feeder.await.unwrap();
    eventually("the broker acknowledged every message", || {
        acked.load(std::sync::atomic::Ordering::Relaxed) == n
    })
    .await;
    eventually("every message stored", || {
        count(&db, "SELECT count(DISTINCT value) FROM readings") == n
    })
    .await;
    assert_eq!(
        count(&db, "SELECT count(*) FROM readings"),
        n,
        "nothing stored twice"
    );
    eventually("status online again", || *last_status.lock() == "online").await;
    assert_eq!(
        broker.log_lines(&format!(" as {client_id} (p5, c0,")),
        3,
        "one connection per start"
    );
}
