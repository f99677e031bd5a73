//! The demo's MQTT side: an embedded broker (rumqttd) on a free loopback port, and simulated
//! zigbee2mqtt devices publishing to it. The gateway reads them through its real MQTT source.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Starts the broker on a free loopback port; returns its address once it accepts connections.
///
/// # Errors
/// No port is free, or the broker does not come up.
pub(crate) async fn start_broker() -> std::io::Result<SocketAddr> {
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?
    };
    let server = ServerSettings {
        name: "demo".to_owned(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 64 * 1024,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 64,
            max_outgoing_packet_count: 200,
            max_segment_size: 10 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("demo".to_owned(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    // rumqttd runs on its own threads until the process exits.
    std::thread::Builder::new()
        .name("demo-broker".into())
        .spawn(move || {
            let mut broker = Broker::new(config);
            if let Err(e) = broker.start() {
                warn!(error = %e, "Demo MQTT broker stopped.");
            }
        })?;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(listen).await.is_ok() {
            return Ok(listen);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the demo MQTT broker did not start",
    ))
}

/// Publishes zigbee2mqtt-style messages of three devices every two seconds.
pub(crate) fn start_devices(broker: SocketAddr, token: CancellationToken) {
    let mut opts = MqttOptions::new("demo-zigbee2mqtt", broker.ip().to_string(), broker.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let t = token.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = t.cancelled() => return,
                r = eventloop.poll() => if r.is_err() { tokio::time::sleep(Duration::from_secs(1)).await },
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                _ = tick.tick() => {}
            }
            n += 1;
            let x = n as f64;
            // The bathroom floor gets wet for a minute every five minutes.
            let leak = (n % 150) >= 120;
            let messages = [
                (
                    "zigbee2mqtt/bathroom_leak",
                    format!(r#"{{"battery":97,"water_leak":{leak},"linkquality":112}}"#),
                ),
                (
                    "zigbee2mqtt/office_climate",
                    format!(
                        r#"{{"temperature":{:.1},"humidity":{:.0},"battery":88,"linkquality":140}}"#,
                        22.0 + (x / 20.0).sin(),
                        42.0 + 3.0 * (x / 30.0).cos()
                    ),
                ),
                (
                    "zigbee2mqtt/entrance_door",
                    format!(
                        r#"{{"contact":{},"battery":76}}"#,
                        (n / 10).is_multiple_of(2)
                    ),
                ),
            ];
            for (topic, payload) in messages {
                if client
                    .try_publish(topic, QoS::AtLeastOnce, false, payload)
                    .is_err()
                {
                    break;
                }
            }
        }
    });
}
