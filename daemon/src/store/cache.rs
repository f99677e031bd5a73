//! Latest committed value per sensor, fed by the writer after each commit.

use std::collections::HashMap;

use parking_lot::RwLock;
use rusqlite::Connection;
use serde::Serialize;

use crate::model::{Quality, Reading, SensorId, Seq, Timestamp};

/// The newest committed reading of one sensor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatestValue {
    /// Seq it was committed under.
    pub seq: Seq,
    /// Read time.
    pub ts: Timestamp,
    /// Value, if any.
    pub value: Option<f64>,
    /// Quality.
    pub quality: Quality,
}

/// Latest value per sensor. Readers take a read lock for a lookup or a snapshot; the writer
/// takes the write lock once per batch.
#[derive(Debug, Default)]
pub struct LatestCache {
    map: RwLock<HashMap<SensorId, LatestValue>>,
}

impl LatestCache {
    /// Applies a committed message whose first reading got `first_seq`.
    pub(crate) fn update(&self, first_seq: i64, readings: &[Reading]) {
        let mut map = self.map.write();
        for (seq, r) in (first_seq..).zip(readings) {
            let v = LatestValue {
                seq: Seq(seq),
                ts: r.ts,
                value: r.value,
                quality: r.quality,
            };
            match map.get_mut(&r.sensor) {
                // A late reading (older read time) never replaces a newer value.
                Some(slot) if r.ts >= slot.ts => *slot = v,
                Some(_) => {}
                None => {
                    map.insert(r.sensor.clone(), v);
                }
            }
        }
    }

    /// The latest value of one sensor.
    pub fn get(&self, sensor: &str) -> Option<LatestValue> {
        let map = self.map.read();
        map.get(sensor).cloned()
    }

    /// Every sensor's latest value, sorted by sensor id.
    pub fn snapshot(&self) -> Vec<(SensorId, LatestValue)> {
        let map = self.map.read();
        let mut all: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Number of sensors with a value.
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// No sensor has a value yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::borrow::Borrow<str> for SensorId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

/// The newest reading of every sensor, read from the database (what the cache holds): the
/// folded ones from `latest`, then the log not folded yet.
pub(crate) fn read_latest(
    conn: &Connection,
) -> Result<Vec<(String, LatestValue)>, rusqlite::Error> {
    let keys: HashMap<i64, String> = conn
        .prepare_cached("SELECT id, key FROM sensors")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(super::series::latest(conn)?
        .into_iter()
        .filter_map(|(id, r)| {
            let key = keys.get(&id)?.clone();
            Some((
                key,
                LatestValue {
                    seq: Seq(r.seq),
                    ts: Timestamp(r.ts),
                    value: r.value,
                    quality: Quality::from_code(i64::from(r.quality)),
                },
            ))
        })
        .collect())
}

/// Fills the cache from the database at start, so the latest values survive a restart.
pub(crate) fn warm(conn: &Connection, cache: &LatestCache) -> Result<(), rusqlite::Error> {
    let rows = read_latest(conn)?;
    let mut map = cache.map.write();
    for (key, v) in rows {
        map.insert(SensorId::new(key), v);
    }
    Ok(())
}
