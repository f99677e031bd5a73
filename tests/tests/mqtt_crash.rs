//! `kill -9` of the real `markoff` binary while MQTT messages flow: messages received but not yet
//! committed were never acknowledged, so the broker delivers them again after the restart, and
//! every message ends up stored exactly once.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/mosquitto.rs"]
mod broker;

use std::time::Duration;

use broker::{Mosquitto, eventually};
use markoff_tests::gateway::TempGateway;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

fn count(db: &std::path::Path, sql: &str) -> i64 {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return -1;
    };
    if markoff_tests::db::try_refresh_readings(&c).is_err() {
        return -1;
    }
    c.query_row(sql, [], |r| r.get(0)).unwrap_or(-1)
}

#[tokio::test]
async fn kill9_between_receipt_and_commit_loses_and_duplicates_nothing() {
    let Some(broker) = Mosquitto::start().await else {
        return;
    };
    let root = format!("crash{}", std::process::id());
    let client_id = format!("gw-{root}");
    let source = format!(
        r#"[sources.mqtt.bus]
servers = ["tcp://127.0.0.1:{port}"]
client_id = "{client_id}"
reconnect_max = "1s"
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
    let db = gw.db_path();

    let n: i64 = 4_000;
    let mut opts = MqttOptions::new(format!("pub-{root}"), "127.0.0.1", broker.port);
    opts.set_inflight(50);
    let (publisher, mut el) = AsyncClient::new(opts, 100);
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
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

    for round in 1..=3 {
        let threshold = i64::from(round) * 800;
        eventually("ingest under way", || {
            count(&db, "SELECT count(*) FROM readings") >= threshold
        })
        .await;
        gw.kill9();
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
    let c = rusqlite::Connection::open(&db).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}
