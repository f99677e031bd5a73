//! The MQTT connection task and its processor.
//!
//! The connection task only polls the rumqttc event loop (keep-alive, reconnects, delivery) and
//! hands every incoming PUBLISH to the processor; it never waits on storage. The processor
//! decodes a batch of messages, commits their readings to SQLite in one transaction, and only then
//! acknowledges the messages to the broker, in the order they arrived. A crash before the commit
//! therefore leaves the messages unacknowledged, and the broker delivers them again (persistent
//! session, QoS 1/2). Readings that carry their own timestamp are stored at most once per
//! (sensor, timestamp), so a message delivered twice (a broker redelivery, or a publisher's QoS 1
//! retransmission) is acknowledged without storing its readings twice. Readings stamped at receipt
//! cannot be told apart and follow plain at-least-once.
//!
//! Undecodable payloads are counted per subscription, logged at WARN (at most once a minute per
//! subscription), acknowledged and dropped: one bad device never blocks the others. So are
//! messages over `max_message_size` (counted per connection): an MQTT 3.1.1 client reads packets
//! up to the protocol's limit, so a large message never breaks the connection, and the gateway
//! drops it. An MQTT 5 client announces `max_message_size` as its Maximum Packet Size, and the
//! broker drops larger messages for it unseen ([`super::session`]).
//! Readings of new sensors over a `max_sensors` limit ([`super::limits`]) are counted and
//! dropped, with one WARN per subscription; their messages are acknowledged like any other.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::Mqtt;
use super::decode::{self, Decoded};
use super::limits::{SensorCap, SensorLimits};
use super::session::{self, Client, Event, Message};
use crate::model::{Quality, Reading, SensorId, SensorKind, SensorMeta, Timestamp};
use crate::service::backoff::Backoff;
use crate::service::supervisor::TaskError;
use crate::sources::SourceContext;
use crate::sources::metrics::{BrokerLabel, SubscriptionLabels};

/// QoS 0 messages waiting for the processor beyond which new QoS 0 messages are dropped.
/// QoS 1/2 messages are never dropped: the broker's in-flight window bounds them.
const QUEUE: usize = 10_000;
/// Longest wait for the last acknowledgements to go out when the connection stops.
const FLUSH: Duration = Duration::from_secs(2);
/// Messages committed together.
const BATCH: usize = 1_000;
/// A repeated problem (undecodable or oversized messages) is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A message handed to the processor; an oversized one comes without its payload, to be
/// acknowledged in its turn.
struct Incoming {
    message: Message,
    oversized: bool,
}

/// Runs the connection on its own (its gateway-wide sensor cap counts for it alone) until
/// `token` is cancelled.
///
/// # Errors
/// The password or TLS files cannot be read, or the buffer stopped.
pub async fn run(
    m: Arc<Mqtt>,
    ctx: SourceContext,
    token: CancellationToken,
) -> Result<(), TaskError> {
    let cap = Arc::new(SensorCap::new(m.gateway_max_sensors));
    run_with_cap(m, ctx, token, cap).await
}

/// Runs the connection until `token` is cancelled, counting the sensors it creates in `cap`
/// (shared with the gateway's other connections).
///
/// # Errors
/// The password or TLS files cannot be read, or the buffer stopped.
pub async fn run_with_cap(
    m: Arc<Mqtt>,
    ctx: SourceContext,
    token: CancellationToken,
    cap: Arc<SensorCap>,
) -> Result<(), TaskError> {
    let mut server_idx = 0;
    let (client, mut eventloop) = session::connect(&m, &m.servers[server_idx])?;
    // Unbounded so the event loop never waits on the processor: the processor's acks need the
    // event loop to be polled, and a bounded hand-over could deadlock the two.
    let (tx, rx) = mpsc::unbounded_channel::<Incoming>();
    let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let processor = tokio::spawn(process(
        m.clone(),
        client.clone(),
        rx,
        ctx.clone(),
        queued.clone(),
        cap,
    ));
    let mut backoff = Backoff::new(Duration::from_secs(1), m.reconnect_max);
    let mut connected = false;
    let connected_gauge = ctx
        .metrics
        .mqtt_connected
        .get_or_create(&BrokerLabel::new(&m.name))
        .clone();
    connected_gauge.set(0);
    let oversized = ctx
        .metrics
        .mqtt_oversized
        .get_or_create(&BrokerLabel::new(&m.name))
        .clone();
    let mut oversized_warned: Option<(Instant, u64)> = None;
    info!(connection = %m.name, server = %m.servers[0], client_id = %m.client_id, "MQTT connection starting.");
    let result = loop {
        let event = tokio::select! {
            () = token.cancelled() => break Ok(()),
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Connected { session_present }) => {
                connected = true;
                connected_gauge.set(1);
                backoff.reset();
                ctx.health
                    .update(&format!("mqtt:{}", m.name), |h| h.connected = true);
                info!(connection = %m.name, server = %m.servers[server_idx], protocol = %m.protocol, session_present, "MQTT connected.");
                for s in &m.subscriptions {
                    if let Err(e) = client.try_subscribe(&s.rule.filter, s.qos) {
                        warn!(connection = %m.name, error = %e, "Cannot queue a subscription.");
                    }
                }
                if let Some(topic) = &m.status_topic {
                    let _queued = client.try_publish_retained(topic, "online");
                }
            }
            Ok(Event::Message(mut p)) => {
                let size = p.payload().len();
                let too_big = size > m.max_message_size;
                if too_big {
                    oversized.inc();
                    let (since, dropped) = oversized_warned.get_or_insert((Instant::now(), 0));
                    *dropped += 1;
                    if *dropped == 1 || since.elapsed() >= WARN_EVERY {
                        warn!(connection = %m.name, topic = %p.topic(), size, max_message_size = m.max_message_size, dropped = *dropped, "MQTT message over max_message_size dropped (acknowledged, not stored).");
                        oversized_warned = Some((Instant::now(), 0));
                    }
                    if p.at_most_once() {
                        continue;
                    }
                    // Acknowledged by the processor in its turn; the payload is not kept.
                    p.drop_payload();
                }
                if p.at_most_once() && queued.load(std::sync::atomic::Ordering::Relaxed) >= QUEUE {
                    ctx.metrics.count_source_error(&format!("mqtt:{}", m.name));
                    debug!(connection = %m.name, topic = %p.topic(), "Processor behind; QoS 0 message dropped.");
                    continue;
                }
                queued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let incoming = Incoming {
                    message: p,
                    oversized: too_big,
                };
                if tx.send(incoming).is_err() {
                    break Err(TaskError::msg("the MQTT processor stopped"));
                }
            }
            Ok(_) => {}
            Err(e) => {
                let delay = backoff.next_delay();
                if let Some(size) = e.packet_over_announced_limit() {
                    // The message stays on the broker and comes again at every reconnect.
                    error!(connection = %m.name, server = %m.servers[server_idx], size, max_message_size = m.max_message_size, "The MQTT broker sent a packet over the Maximum Packet Size announced in CONNECT (max_message_size): it does not honour MQTT 5's limit. Set protocol = \"3.1.1\" for this connection, or raise max_message_size.");
                } else if connected || backoff.failures() == 1 {
                    warn!(connection = %m.name, server = %m.servers[server_idx], error = %e, ?delay, "MQTT connection lost; reconnecting with backoff.");
                } else {
                    debug!(connection = %m.name, error = %e, ?delay, "MQTT reconnect failed.");
                }
                connected = false;
                connected_gauge.set(0);
                ctx.metrics.count_source_error(&format!("mqtt:{}", m.name));
                ctx.health.update(&format!("mqtt:{}", m.name), |h| {
                    h.connected = false;
                    h.last_error = Some(e.to_string());
                });
                if m.servers.len() > 1 {
                    server_idx = (server_idx + 1) % m.servers.len();
                    eventloop.use_server(&m, &m.servers[server_idx])?;
                }
                tokio::select! {
                    () = token.cancelled() => break Ok(()),
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    };
    drop(tx);
    // The processor finishes the messages it holds and queues their acknowledgements; they only
    // reach the broker while the event loop is polled, so flush them (then say goodbye) before
    // returning. Otherwise the broker would deliver those messages again after a restart.
    let mut processor = std::pin::pin!(processor);
    let processed = tokio::time::timeout(FLUSH, async {
        loop {
            tokio::select! {
                r = &mut processor => return Some(r),
                e = eventloop.poll() => if e.is_err() { return None },
            }
        }
    })
    .await
    .ok()
    .flatten();
    if connected {
        if let Some(topic) = &m.status_topic {
            let _queued = client.try_publish_retained(topic, "offline");
        }
        // DISCONNECT goes out after everything queued before it; the session is kept.
        if client.try_disconnect().is_ok() {
            let _flushed = tokio::time::timeout(FLUSH, async {
                // The broker closes the connection once it has read DISCONNECT, and so every
                // acknowledgement written before it.
                while eventloop.poll().await.is_ok() {}
            })
            .await;
        }
    }
    connected_gauge.set(0);
    match processed {
        Some(Ok(Ok(()))) => result,
        Some(Ok(Err(e))) => Err(e),
        Some(Err(e)) => Err(TaskError::new("the MQTT processor panicked", e)),
        // The broker went away or the flush took too long: unacknowledged messages will come
        // again, which the persistent session is for.
        None => result,
    }
}

/// Decodes, commits, then acknowledges, batch by batch.
async fn process(
    m: Arc<Mqtt>,
    client: Client,
    mut rx: mpsc::UnboundedReceiver<Incoming>,
    ctx: SourceContext,
    queued: Arc<std::sync::atomic::AtomicUsize>,
    cap: Arc<SensorCap>,
) -> Result<(), TaskError> {
    let mut known: HashSet<String> = HashSet::new();
    let mut warned: HashMap<usize, (Instant, u64)> = HashMap::new();
    let source = format!("mqtt:{}", m.name);
    let max_sensors = m.subscriptions.iter().map(|s| s.max_sensors).collect();
    let mut limits = SensorLimits::load(&ctx, &source, max_sensors, &cap)
        .await
        .map_err(|e| TaskError::new("cannot read the buffer's sensors", e))?;
    let mut limit_warned: HashSet<usize> = HashSet::new();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        queued.fetch_sub(batch.len(), std::sync::atomic::Ordering::Relaxed);
        let received = Timestamp::now();
        let mut readings = Vec::new();
        let mut stamped = Vec::new();
        let mut metas = Vec::new();
        for Incoming {
            message: p,
            oversized,
        } in &batch
        {
            if *oversized {
                continue;
            }
            let topic = p.topic();
            let Some((idx, sub)) = m
                .subscriptions
                .iter()
                .enumerate()
                .find(|(_, s)| decode::topic_matches(&s.rule.filter, &topic))
            else {
                continue;
            };
            ctx.metrics
                .mqtt_messages
                .get_or_create(&SubscriptionLabels::new(&m.name, &sub.rule.filter))
                .inc();
            match decode::decode(&sub.rule, &topic, p.payload()) {
                Ok(decoded) => {
                    for d in decoded {
                        if let Err(refusal) = limits.admit(idx, &d.sensor, &cap) {
                            ctx.metrics
                                .mqtt_sensor_limit_dropped
                                .get_or_create(&SubscriptionLabels::new(&m.name, &sub.rule.filter))
                                .inc();
                            if limit_warned.insert(idx) {
                                let (limit, setting) = refusal.describe();
                                warn!(connection = %m.name, subscription = %sub.rule.filter, sensor = %d.sensor, limit, setting, "MQTT sensor limit reached: readings of new sensors from this subscription are dropped (counted in markoff_mqtt_sensor_limit_dropped_total); its known sensors go on.");
                            }
                            continue;
                        }
                        if known.insert(d.sensor.clone()) {
                            metas.push(meta(&d, &source, sub));
                        }
                        stamped.push(d.ts.is_some());
                        readings.push(Reading {
                            sensor: SensorId::new(d.sensor),
                            ts: d.ts.unwrap_or(received),
                            value: Some(d.value),
                            quality: Quality::Good,
                        });
                    }
                }
                Err(e) => {
                    ctx.metrics
                        .mqtt_malformed
                        .get_or_create(&SubscriptionLabels::new(&m.name, &sub.rule.filter))
                        .inc();
                    ctx.metrics.count_source_error(&source);
                    let entry = warned
                        .entry(idx)
                        .or_insert((Instant::now() - Duration::from_secs(3600), 0));
                    entry.1 += 1;
                    if entry.0.elapsed() >= WARN_EVERY {
                        warn!(connection = %m.name, subscription = %sub.rule.filter, topic = %topic, error = %e, dropped = entry.1, "Undecodable MQTT payload dropped.");
                        *entry = (Instant::now(), 0);
                    }
                }
            }
        }
        let readings = drop_already_stored(&ctx, readings, &stamped).await?;
        if !metas.is_empty() {
            ctx.ingest
                .register_sensors(metas)
                .await
                .map_err(|e| TaskError::new("buffer closed", e))?;
        }
        if !readings.is_empty() {
            // The durability boundary: nothing is acknowledged before this commit.
            ctx.ingest
                .write(readings)
                .await
                .map_err(|e| TaskError::new("buffer closed; messages left unacknowledged", e))?;
        }
        for Incoming { message: p, .. } in &batch {
            if client.ack(p).await.is_err() {
                return Err(TaskError::msg("MQTT client closed before acknowledging"));
            }
        }
    }
    Ok(())
}

/// Removes readings with a payload timestamp that are already stored, or repeated in the batch.
async fn drop_already_stored(
    ctx: &SourceContext,
    readings: Vec<Reading>,
    stamped: &[bool],
) -> Result<Vec<Reading>, TaskError> {
    let candidates: Vec<(String, i64)> = readings
        .iter()
        .zip(stamped)
        .filter(|(_, s)| **s)
        .map(|(r, _)| (r.sensor.to_string(), r.ts.as_millis()))
        .collect();
    if candidates.is_empty() {
        return Ok(readings);
    }
    let mut seen = ctx
        .reader
        .existing(candidates)
        .await
        .map_err(|e| TaskError::new("buffer query failed", e))?;
    Ok(readings
        .into_iter()
        .zip(stamped)
        .filter(|(r, s)| !**s || seen.insert((r.sensor.to_string(), r.ts.as_millis())))
        .map(|(r, _)| r)
        .collect())
}

fn meta(d: &Decoded, source: &str, sub: &super::Subscription) -> SensorMeta {
    let unit = d.unit.clone().unwrap_or_default();
    let kind = d.kind.unwrap_or_else(|| {
        let by_unit = SensorKind::from_unit(&unit);
        if by_unit != SensorKind::Other {
            return by_unit;
        }
        let name = d
            .sensor
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match name.as_str() {
            "humidity" => SensorKind::Humidity,
            "water_leak" | "leak" => SensorKind::Leak,
            "contact" | "occupancy" | "state" | "output" => SensorKind::State,
            _ => SensorKind::Other,
        }
    });
    SensorMeta {
        id: SensorId::new(d.sensor.clone()),
        name: d.sensor.clone(),
        kind,
        unit,
        floor: sub.floor.clone(),
        room: sub.room.clone(),
        source: source.to_owned(),
    }
}
