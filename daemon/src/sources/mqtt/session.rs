//! The MQTT client of one connection, in the protocol version its configuration names.
//!
//! Owns: the client options of MQTT 3.1.1 and MQTT 5 (session, acknowledgements, in-flight
//! window, packet size limit, credentials, last will, TLS), and one shape for what the connection
//! task needs of either client: connection events, incoming messages, subscribe, publish,
//! acknowledge, disconnect. Does not own: reconnect policy, the commit-then-ack rule or decoding
//! (`super::client`).
//!
//! MQTT 3.1.1 reads every packet the protocol allows, so that the gateway sees, counts and
//! acknowledges a message over `max_message_size`. MQTT 5 announces `max_message_size` as the
//! Maximum Packet Size in CONNECT: the broker must not send a larger packet to this client, and
//! drops such a message for it without telling it (MQTT 5.0, 3.1.2.11.4).

use std::borrow::Cow;
use std::sync::Arc;

use rumqttc::v5;
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5 as packets5;
use rumqttc::{LastWill, MqttOptions, QoS};

use super::{MQTT_MAX_PACKET, Mqtt, Protocol, Server};
use crate::service::supervisor::TaskError;

/// Requests the client may queue before `try_*` calls fail.
const REQUESTS: usize = 1024;

/// Session Expiry Interval of a persistent MQTT 5 session: the broker keeps it for ever, as an
/// MQTT 3.1.1 broker keeps a session without a clean-session flag.
const SESSION_NEVER_EXPIRES: u32 = u32::MAX;

/// The handle that sends requests (subscribe, publish, acknowledge) to the event loop.
#[derive(Clone)]
pub(super) enum Client {
    /// MQTT 3.1.1.
    V311(rumqttc::AsyncClient),
    /// MQTT 5.
    V5(v5::AsyncClient),
}

/// The event loop of the connection; it must be polled for anything to happen.
pub(super) enum EventLoop {
    /// MQTT 3.1.1.
    V311(Box<rumqttc::EventLoop>),
    /// MQTT 5.
    V5(Box<v5::EventLoop>),
}

/// An incoming PUBLISH, kept whole so it can be acknowledged in its turn.
#[derive(Debug)]
pub(super) enum Message {
    /// MQTT 3.1.1.
    V311(rumqttc::Publish),
    /// MQTT 5.
    V5(packets5::Publish),
}

/// What one poll of the event loop brought.
// A message is moved on once, into the processor's queue: boxing it would cost an allocation
// per message for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Event {
    /// CONNACK with success.
    Connected {
        /// The broker still had the session.
        session_present: bool,
    },
    /// A message from a subscription.
    Message(Message),
    /// Anything else (acknowledgements, pings, outgoing packets).
    Other,
}

/// The connection failed; the event loop reconnects when polled again.
#[derive(Debug)]
pub(super) enum ConnectionError {
    /// MQTT 3.1.1.
    V311(rumqttc::ConnectionError),
    /// MQTT 5.
    V5(v5::ConnectionError),
}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::V311(e) => e.fmt(f),
            Self::V5(e) => e.fmt(f),
        }
    }
}

impl ConnectionError {
    /// The size of a packet the broker sent over the Maximum Packet Size this client announced
    /// (an MQTT 5 broker that does not honour it), if that is what ended the connection.
    pub(super) fn packet_over_announced_limit(&self) -> Option<usize> {
        match self {
            Self::V5(v5::ConnectionError::MqttState(v5::StateError::Deserialization(
                v5::mqttbytes::Error::PayloadSizeLimitExceeded { pkt_size, .. },
            ))) => Some(*pkt_size),
            _ => None,
        }
    }
}

/// The client and event loop of `m`, connecting to `server` first.
///
/// # Errors
/// The password or TLS files cannot be read.
pub(super) fn connect(m: &Mqtt, server: &Server) -> Result<(Client, EventLoop), TaskError> {
    Ok(match m.protocol {
        Protocol::V311 => {
            let (c, e) = rumqttc::AsyncClient::new(options_v311(m, server)?, REQUESTS);
            (Client::V311(c), EventLoop::V311(Box::new(e)))
        }
        Protocol::V5 => {
            let (c, e) = v5::AsyncClient::new(options_v5(m, server)?, REQUESTS);
            (Client::V5(c), EventLoop::V5(Box::new(e)))
        }
    })
}

fn password(m: &Mqtt) -> Result<String, TaskError> {
    if !m.password.is_well_formed() {
        return Ok(String::new());
    }
    Ok(m.password
        .resolve()
        .map_err(|e| TaskError::new("cannot read the MQTT password", e))?
        .expose()
        .to_owned())
}

fn transport(m: &Mqtt, server: &Server) -> Result<Option<rumqttc::Transport>, TaskError> {
    if server.tls {
        Ok(Some(rumqttc::Transport::tls_with_config(tls_config(m)?)))
    } else {
        Ok(None)
    }
}

/// MQTT 3.1.1 options for one server of the connection.
fn options_v311(m: &Mqtt, server: &Server) -> Result<MqttOptions, TaskError> {
    let mut o = MqttOptions::new(m.client_id.clone(), server.host.clone(), server.port);
    o.set_keep_alive(m.keep_alive);
    o.set_clean_session(!m.persistent_session);
    o.set_manual_acks(true);
    o.set_inflight(m.max_inflight);
    // Every packet the protocol allows is read: a message over `max_message_size` is dropped
    // (and acknowledged) by the processor. A smaller client limit would end the connection at
    // such a message, and the broker would send it again at every reconnect.
    o.set_max_packet_size(MQTT_MAX_PACKET, 1 << 20);
    if let Some(user) = &m.username {
        o.set_credentials(user.clone(), password(m)?);
    }
    if let Some(topic) = &m.status_topic {
        o.set_last_will(LastWill::new(
            topic.clone(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    }
    if let Some(t) = transport(m, server)? {
        o.set_transport(t);
    }
    Ok(o)
}

/// MQTT 5 options for one server of the connection.
fn options_v5(m: &Mqtt, server: &Server) -> Result<v5::MqttOptions, TaskError> {
    let mut o = v5::MqttOptions::new(m.client_id.clone(), server.host.clone(), server.port);
    o.set_keep_alive(m.keep_alive);
    o.set_clean_start(!m.persistent_session);
    if m.persistent_session {
        // Without it an MQTT 5 session ends with the network connection.
        o.set_session_expiry_interval(Some(SESSION_NEVER_EXPIRES));
    }
    o.set_manual_acks(true);
    // The broker sends at most this many unacknowledged QoS 1/2 messages.
    o.set_receive_maximum(Some(m.max_inflight));
    o.set_outgoing_inflight_upper_limit(m.max_inflight);
    // The broker must not send a larger packet; the client also reads none larger.
    o.set_max_packet_size(Some(u32::try_from(m.max_message_size).unwrap_or(u32::MAX)));
    if let Some(user) = &m.username {
        o.set_credentials(user.clone(), password(m)?);
    }
    if let Some(topic) = &m.status_topic {
        o.set_last_will(packets5::LastWill::new(
            topic.clone(),
            "offline",
            QoS5::AtLeastOnce,
            true,
            None,
        ));
    }
    if let Some(t) = transport(m, server)? {
        o.set_transport(t);
    }
    Ok(o)
}

fn tls_config(m: &Mqtt) -> Result<rumqttc::TlsConfiguration, TaskError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match &m.ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| TaskError::new(format!("cannot read {}", path.display()), e))?
            {
                let cert = cert.map_err(|e| {
                    TaskError::new(format!("bad certificate in {}", path.display()), e)
                })?;
                roots
                    .add(cert)
                    .map_err(|e| TaskError::new("unusable CA certificate", e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TaskError::new("TLS setup failed", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(rumqttc::TlsConfiguration::Rustls(Arc::new(config)))
}

fn qos_v311(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        2 => QoS::ExactlyOnce,
        _ => QoS::AtLeastOnce,
    }
}

fn qos_v5(q: u8) -> QoS5 {
    match q {
        0 => QoS5::AtMostOnce,
        2 => QoS5::ExactlyOnce,
        _ => QoS5::AtLeastOnce,
    }
}

impl EventLoop {
    /// Polls the connection: connects when it is down, sends queued requests, reads packets.
    pub(super) async fn poll(&mut self) -> Result<Event, ConnectionError> {
        match self {
            Self::V311(e) => match e.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack))) => {
                    Ok(Event::Connected {
                        session_present: ack.session_present,
                    })
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    Ok(Event::Message(Message::V311(p)))
                }
                Ok(_) => Ok(Event::Other),
                Err(err) => Err(ConnectionError::V311(err)),
            },
            Self::V5(e) => match e.poll().await {
                Ok(v5::Event::Incoming(packets5::Packet::ConnAck(ack))) => Ok(Event::Connected {
                    session_present: ack.session_present,
                }),
                Ok(v5::Event::Incoming(packets5::Packet::Publish(p))) => {
                    Ok(Event::Message(Message::V5(p)))
                }
                Ok(_) => Ok(Event::Other),
                Err(err) => Err(ConnectionError::V5(err)),
            },
        }
    }

    /// Connects to `server` at the next reconnect.
    ///
    /// # Errors
    /// The password or TLS files cannot be read.
    pub(super) fn use_server(&mut self, m: &Mqtt, server: &Server) -> Result<(), TaskError> {
        match self {
            Self::V311(e) => e.mqtt_options = options_v311(m, server)?,
            Self::V5(e) => e.options = options_v5(m, server)?,
        }
        Ok(())
    }
}

/// The request queue is full or the event loop has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the MQTT client cannot take the request: {0}")]
pub(super) struct RequestError(String);

impl Client {
    /// Queues a SUBSCRIBE.
    pub(super) fn try_subscribe(&self, filter: &str, qos: u8) -> Result<(), RequestError> {
        match self {
            Self::V311(c) => c
                .try_subscribe(filter, qos_v311(qos))
                .map_err(|e| RequestError(e.to_string())),
            Self::V5(c) => c
                .try_subscribe(filter, qos_v5(qos))
                .map_err(|e| RequestError(e.to_string())),
        }
    }

    /// Queues a retained QoS 1 PUBLISH (the status topic).
    pub(super) fn try_publish_retained(
        &self,
        topic: &str,
        payload: &'static str,
    ) -> Result<(), RequestError> {
        match self {
            Self::V311(c) => c
                .try_publish(topic, QoS::AtLeastOnce, true, payload)
                .map_err(|e| RequestError(e.to_string())),
            Self::V5(c) => c
                .try_publish(topic, QoS5::AtLeastOnce, true, payload)
                .map_err(|e| RequestError(e.to_string())),
        }
    }

    /// Acknowledges `message` (nothing for QoS 0), waiting for room in the request queue.
    pub(super) async fn ack(&self, message: &Message) -> Result<(), RequestError> {
        match (self, message) {
            (Self::V311(c), Message::V311(p)) => {
                c.ack(p).await.map_err(|e| RequestError(e.to_string()))
            }
            (Self::V5(c), Message::V5(p)) => {
                c.ack(p).await.map_err(|e| RequestError(e.to_string()))
            }
            _ => Err(RequestError(
                "a message of one protocol version acknowledged with the other".into(),
            )),
        }
    }

    /// Queues a DISCONNECT (the session is kept).
    pub(super) fn try_disconnect(&self) -> Result<(), RequestError> {
        match self {
            Self::V311(c) => c.try_disconnect().map_err(|e| RequestError(e.to_string())),
            Self::V5(c) => c.try_disconnect().map_err(|e| RequestError(e.to_string())),
        }
    }
}

impl Message {
    /// The topic (an MQTT 5 topic that is not UTF-8, which the protocol forbids, with its bad
    /// bytes replaced).
    pub(super) fn topic(&self) -> Cow<'_, str> {
        match self {
            Self::V311(p) => Cow::Borrowed(p.topic.as_str()),
            Self::V5(p) => String::from_utf8_lossy(&p.topic),
        }
    }

    /// The payload.
    pub(super) fn payload(&self) -> &[u8] {
        match self {
            Self::V311(p) => &p.payload,
            Self::V5(p) => &p.payload,
        }
    }

    /// Whether it came with QoS 0 (never acknowledged, never sent again).
    pub(super) fn at_most_once(&self) -> bool {
        match self {
            Self::V311(p) => p.qos == QoS::AtMostOnce,
            Self::V5(p) => p.qos == QoS5::AtMostOnce,
        }
    }

    /// Frees the payload; the message can still be acknowledged.
    pub(super) fn drop_payload(&mut self) {
        match self {
            Self::V311(p) => p.payload = Default::default(),
            Self::V5(p) => p.payload = Default::default(),
        }
    }
}
