//! The sources' metrics (`markoff_source_errors`, `markoff_mqtt_*`, `markoff_modbus_device_up`).
//!
//! Owns: the families every source updates, registered by the sources through [`MetricSet`].
//! Does not own: the registry (`crate::service::metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::service::metrics::MetricSet;

/// The source a count belongs to (`mqtt:bus`, `modbus:plant`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// The source's name.
    pub source: String,
}

/// An MQTT connection as a whole: its name (one connection may fail over between several
/// servers).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BrokerLabel {
    /// The `[sources.mqtt.<name>]` connection's name.
    pub broker: String,
}

impl BrokerLabel {
    /// The label of `connection`.
    pub fn new(connection: &str) -> Self {
        Self {
            broker: connection.to_owned(),
        }
    }
}

/// An MQTT subscription: the connection's name and the subscription's filter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriptionLabels {
    /// The `[[sources.mqtt]]` connection's name.
    pub connection: String,
    /// The subscription's topic filter.
    pub subscription: String,
}

impl SubscriptionLabels {
    /// Labels of `subscription` on `connection`.
    pub fn new(connection: &str, subscription: &str) -> Self {
        Self {
            connection: connection.to_owned(),
            subscription: subscription.to_owned(),
        }
    }
}

/// A Modbus device: its connection (line) and its name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceLabels {
    /// The `[[sources.modbus]]` connection's name.
    pub connection: String,
    /// The device's name.
    pub device: String,
}

/// Metrics of the sources.
#[derive(Debug, Default)]
pub struct SourceMetrics {
    /// Errors reported by sources, by `source`.
    pub source_errors: Family<SourceLabel, Counter>,
    /// MQTT messages received, by `connection` and `subscription`.
    pub mqtt_messages: Family<SubscriptionLabels, Counter>,
    /// MQTT messages whose payload could not be decoded, by `connection` and `subscription`.
    pub mqtt_malformed: Family<SubscriptionLabels, Counter>,
    /// MQTT messages over `max_message_size`, dropped and acknowledged, by `broker`.
    pub mqtt_oversized: Family<BrokerLabel, Counter>,
    /// Readings dropped because their new sensor was over a `max_sensors` limit, by
    /// `connection` and `subscription`.
    pub mqtt_sensor_limit_dropped: Family<SubscriptionLabels, Counter>,
    /// 1 while the MQTT connection is up, by `broker`.
    pub mqtt_connected: Family<BrokerLabel, Gauge>,
    /// 1 while a Modbus device answers (0 once it is counted down), by `connection` and `device`.
    pub modbus_device_up: Family<DeviceLabels, Gauge>,
}

impl MetricSet for SourceMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "source_errors",
            "Errors reported by sources, by source",
            m.source_errors.clone(),
        );
        registry.register(
            "mqtt_messages",
            "MQTT messages received, by connection and subscription",
            m.mqtt_messages.clone(),
        );
        registry.register(
            "mqtt_malformed",
            "MQTT messages with an undecodable payload, by connection and subscription",
            m.mqtt_malformed.clone(),
        );
        registry.register(
            "mqtt_oversized",
            "MQTT messages over max_message_size, dropped and acknowledged, by broker",
            m.mqtt_oversized.clone(),
        );
        registry.register(
            "mqtt_sensor_limit_dropped",
            "Readings of new sensors over a max_sensors limit, dropped, by connection and \
             subscription",
            m.mqtt_sensor_limit_dropped.clone(),
        );
        registry.register(
            "mqtt_connected",
            "1 while the MQTT connection is up, by broker",
            m.mqtt_connected.clone(),
        );
        registry.register(
            "modbus_device_up",
            "1 while the Modbus device answers, by connection and device",
            m.modbus_device_up.clone(),
        );
        m
    }
}

impl SourceMetrics {
    /// Counts an error of `source`.
    pub fn count_source_error(&self, source: &str) {
        self.source_errors
            .get_or_create(&SourceLabel {
                source: source.to_owned(),
            })
            .inc();
    }

    /// Records whether the Modbus device `device` on `connection` answers.
    pub fn set_modbus_device_up(&self, connection: &str, device: &str, up: bool) {
        self.modbus_device_up
            .get_or_create(&DeviceLabels {
                connection: connection.to_owned(),
                device: device.to_owned(),
            })
            .set(i64::from(up));
    }
}
