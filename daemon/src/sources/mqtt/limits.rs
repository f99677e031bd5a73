//! Bounds on what MQTT topics may create: sensors per subscription, per connection and for the
//! whole gateway.
//!
//! Owns: deciding whether a reading's sensor is admitted. A sensor the connection already has
//! (in the buffer from an earlier run, or admitted in this one) is always admitted. A new one is
//! admitted while its subscription has fewer than `max_sensors`, the connection fewer than the
//! sum of its subscriptions' `max_sensors` (this bound holds across restarts: the buffer's
//! sensors count), and the gateway fewer than `[sources] mqtt_max_sensors` topic-created sensors.
//! Does not own: counting and logging the refusals (`super::client`).

use std::collections::{HashMap, HashSet};

use parking_lot::Mutex;

use crate::sources::SourceContext;

/// The gateway-wide count of sensors created from MQTT topics, shared by every connection.
#[derive(Debug)]
pub struct SensorCap {
    max: usize,
    /// Sensors created so far; `None` until read from the buffer.
    used: Mutex<Option<usize>>,
}

impl SensorCap {
    /// A cap of `max` sensors, counted from the buffer at the first connection's start.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            used: Mutex::new(None),
        }
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Sets the count from the buffer unless a connection already did.
    fn init(&self, in_buffer: usize) {
        let mut used = self.used.lock();
        if used.is_none() {
            *used = Some(in_buffer);
        }
    }

    /// Takes one place; `false` when the cap is reached.
    fn take(&self) -> bool {
        let mut used = self.used.lock();
        let n = used.get_or_insert(0);
        if *n >= self.max {
            return false;
        }
        *n += 1;
        true
    }
}

/// Why a new sensor was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The subscription has `max_sensors` sensors.
    Subscription(usize),
    /// The connection has as many sensors as its subscriptions' `max_sensors` together.
    Connection(usize),
    /// The gateway has `[sources] mqtt_max_sensors` topic-created sensors.
    Gateway(usize),
}

impl Refusal {
    /// The limit reached, and the setting that raises it.
    pub(crate) fn describe(self) -> (usize, &'static str) {
        match self {
            Self::Subscription(n) => (n, "max_sensors of the subscription"),
            Self::Connection(n) => (
                n,
                "max_sensors of the connection's subscriptions together (sensors in the buffer count)",
            ),
            Self::Gateway(n) => (n, "[sources] mqtt_max_sensors"),
        }
    }
}

/// The sensor bookkeeping of one connection.
#[derive(Debug)]
pub(crate) struct SensorLimits {
    /// Sensors of this connection in the buffer when it started.
    stored: HashSet<String>,
    /// Sensors admitted in this run, with the subscription that first delivered each.
    admitted: HashMap<String, usize>,
    /// New sensors (not in `stored`) admitted in this run.
    created: usize,
    /// Sensors admitted per subscription in this run.
    per_subscription: Vec<usize>,
    /// `max_sensors` per subscription.
    max: Vec<usize>,
}

impl SensorLimits {
    /// The bookkeeping of a connection whose sensors in the buffer are `stored`.
    pub(crate) fn new(stored: HashSet<String>, max: Vec<usize>) -> Self {
        Self {
            stored,
            admitted: HashMap::new(),
            created: 0,
            per_subscription: vec![0; max.len()],
            max,
        }
    }

    /// Reads the connection's sensors (source `source`) from the buffer, and sets the gateway's
    /// count in `cap` if no connection did yet.
    ///
    /// # Errors
    /// The buffer query failed.
    pub(crate) async fn load(
        ctx: &SourceContext,
        source: &str,
        max: Vec<usize>,
        cap: &SensorCap,
    ) -> Result<Self, crate::store::StoreError> {
        let sensors = ctx.reader.sensors().await?;
        let topic_created = sensors
            .iter()
            .filter(|s| s.source.starts_with("mqtt:"))
            .count();
        cap.init(topic_created);
        let stored = sensors
            .into_iter()
            .filter(|s| s.source == source)
            .map(|s| s.id)
            .collect();
        Ok(Self::new(stored, max))
    }

    fn connection_max(&self) -> usize {
        self.max.iter().fold(0usize, |a, m| a.saturating_add(*m))
    }

    /// Whether a reading of `sensor` delivered by subscription `sub` is admitted.
    pub(crate) fn admit(
        &mut self,
        sub: usize,
        sensor: &str,
        cap: &SensorCap,
    ) -> Result<(), Refusal> {
        if self.admitted.contains_key(sensor) {
            return Ok(());
        }
        let max = self.max.get(sub).copied().unwrap_or(0);
        let count = self.per_subscription.get(sub).copied().unwrap_or(0);
        if !self.stored.contains(sensor) {
            if count >= max {
                return Err(Refusal::Subscription(max));
            }
            let connection_max = self.connection_max();
            if self.stored.len().saturating_add(self.created) >= connection_max {
                return Err(Refusal::Connection(connection_max));
            }
            if !cap.take() {
                return Err(Refusal::Gateway(cap.max()));
            }
            self.created += 1;
        }
        if let Some(c) = self.per_subscription.get_mut(sub) {
            *c += 1;
        }
        self.admitted.insert(sensor.to_owned(), sub);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn new_sensors_stop_at_the_subscription_limit_and_known_ones_go_on() {
        let cap = SensorCap::new(100);
        cap.init(0);
        let mut l = SensorLimits::new(HashSet::new(), vec![2, 5]);
        assert_eq!(l.admit(0, "a", &cap), Ok(()));
        assert_eq!(l.admit(0, "b", &cap), Ok(()));
        assert_eq!(l.admit(0, "c", &cap), Err(Refusal::Subscription(2)));
        assert_eq!(l.admit(0, "a", &cap), Ok(()));
        assert_eq!(l.admit(0, "c", &cap), Err(Refusal::Subscription(2)));
        // The other subscription has room of its own.
        assert_eq!(l.admit(1, "c", &cap), Ok(()));
        // A known sensor is admitted whichever subscription delivers it.
        assert_eq!(l.admit(1, "a", &cap), Ok(()));
    }

    #[test]
    fn sensors_in_the_buffer_count_across_restarts() {
        let cap = SensorCap::new(100);
        cap.init(3);
        // A single subscription of 3 whose 3 sensors are in the buffer: nothing new fits, even
        // before the stored sensors report again.
        let mut l = SensorLimits::new(stored(&["a", "b", "c"]), vec![3]);
        assert_eq!(l.admit(0, "d", &cap), Err(Refusal::Connection(3)));
        for s in ["a", "b", "c"] {
            assert_eq!(l.admit(0, s, &cap), Ok(()));
        }
        assert_eq!(l.admit(0, "d", &cap), Err(Refusal::Subscription(3)));
    }

    #[test]
    fn the_gateway_cap_is_shared() {
        let cap = SensorCap::new(3);
        cap.init(1);
        let mut one = SensorLimits::new(HashSet::new(), vec![10]);
        let mut two = SensorLimits::new(HashSet::new(), vec![10]);
        assert_eq!(one.admit(0, "a", &cap), Ok(()));
        assert_eq!(two.admit(0, "b", &cap), Ok(()));
        assert_eq!(two.admit(0, "c", &cap), Err(Refusal::Gateway(3)));
        assert_eq!(one.admit(0, "c", &cap), Err(Refusal::Gateway(3)));
        // A second init (another connection starting) does not reset the count.
        cap.init(0);
        assert_eq!(one.admit(0, "d", &cap), Err(Refusal::Gateway(3)));
        assert_eq!(one.admit(0, "a", &cap), Ok(()));
    }
}
