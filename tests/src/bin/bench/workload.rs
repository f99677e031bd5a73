//! A deterministic, realistic stream of readings: a building of rooms with a handful of sensors
//! each, polled in messages of `batch` consecutive sensors (like one Modbus poll), timestamps
//! advancing one poll period per sweep over all sensors, values that vary, and about 1 % failed
//! reads (`comm_error`, no value).
//!
//! Reading number `k` (0-based) is a pure function of `k`, so producers generate their own messages
//! on the fly, in parallel, without a shared generator, and the raw insert sees the same rows.

use markoff::model::{Quality, Reading, SensorId, Timestamp};

/// Kinds of sensor per room, in the order sensor ids cycle through them.
const KINDS: [&str; 5] = ["temperature", "humidity", "co2", "energy", "pump"];
/// Rooms per floor.
const ROOMS_PER_FLOOR: usize = 20;
/// Floors per building.
const FLOORS: usize = 10;
/// Time between two polls of the same sensor.
const POLL_PERIOD_MS: i64 = 10_000;
/// The generated time span stays within a day so retention (30 days) never touches it.
const MAX_SPAN_MS: i64 = 86_400_000;
/// One failed read in this many.
const FAILURE_ONE_IN: u64 = 100;
const SEED: u64 = 0x6d61_726b_6f66_6621;

/// One generated row, before it is a [`Reading`] (the raw insert uses it directly).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Sample {
    /// Index of the sensor, `0..sensors`.
    pub(crate) sensor: usize,
    /// Read time, ms since the epoch.
    pub(crate) ts: i64,
    /// Value, `None` for failed reads.
    pub(crate) value: Option<f64>,
    /// Quality.
    pub(crate) quality: Quality,
}

/// The readings of one benchmark run.
#[derive(Clone, Debug)]
pub(crate) struct Workload {
    /// Sensor ids, built once (sources build theirs once and clone the `Arc` per reading).
    pub(crate) sensor_ids: Vec<SensorId>,
    /// Number of readings.
    pub(crate) total: u64,
    /// Readings per producer message.
    pub(crate) batch: u64,
    /// Number of messages (the last one may be shorter).
    pub(crate) messages: u64,
    t0: i64,
    period_ms: i64,
}

impl Workload {
    pub(crate) fn new(total: u64, sensors: usize, batch: u64) -> Self {
        Self::with_period(total, sensors, batch, POLL_PERIOD_MS)
    }

    /// Like [`Workload::new`] with a poll every `period_ms` (shortened, as there, so that the
    /// readings span at most a day).
    pub(crate) fn with_period(total: u64, sensors: usize, batch: u64, period_ms: i64) -> Self {
        let sensors = sensors.max(1);
        let batch = batch.max(1);
        let sensor_ids = (0..sensors).map(sensor_id).collect();
        let sweeps = total.div_ceil(sensors as u64).max(1);
        let sweeps_i = i64::try_from(sweeps).unwrap_or(i64::MAX);
        let period_ms = period_ms.min(MAX_SPAN_MS / sweeps_i).max(1);
        // The data ends about now, so that retention (relative to the wall clock) keeps all of it.
        let t0 = Timestamp::now().as_millis() - sweeps_i.saturating_mul(period_ms);
        Self {
            sensor_ids,
            total,
            batch,
            messages: total.div_ceil(batch),
            t0,
            period_ms,
        }
    }

    /// Time between two readings of one sensor, ms.
    pub(crate) fn period_ms(&self) -> i64 {
        self.period_ms
    }

    pub(crate) fn sensors(&self) -> usize {
        self.sensor_ids.len()
    }

    /// Reading number `k`.
    pub(crate) fn sample(&self, k: u64) -> Sample {
        let n = self.sensors() as u64;
        let sensor_u = k % n;
        let sensor = usize::try_from(sensor_u).unwrap_or(0);
        let sweep = i64::try_from(k / n).unwrap_or(i64::MAX);
        // Polls of one sweep are spread over the period; the readings of one poll share a time.
        let poll = i64::try_from(sensor_u / self.batch).unwrap_or(0);
        let polls = i64::try_from(n.div_ceil(self.batch)).unwrap_or(1).max(1);
        let ts = self.t0 + sweep * self.period_ms + poll * self.period_ms / polls;
        let h = splitmix64(k ^ SEED);
        if h.is_multiple_of(FAILURE_ONE_IN) {
            return Sample {
                sensor,
                ts,
                value: None,
                quality: Quality::CommError,
            };
        }
        // Noise in [-1, 1).
        let noise = ((h >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0;
        let phase = (sensor_u % 97) as f64 / 97.0 * std::f64::consts::TAU;
        let day = (ts % 86_400_000) as f64 / 86_400_000.0 * std::f64::consts::TAU;
        let wave = (day + phase).sin();
        let value = match sensor % KINDS.len() {
            0 => round_to(21.0 + 1.5 * wave + 0.2 * noise, 100.0),
            1 => round_to(45.0 + 8.0 * wave + 1.0 * noise, 10.0),
            2 => round_to(650.0 + 250.0 * wave + 20.0 * noise, 1.0),
            3 => round_to(
                1_000.0 + (sensor_u % 1_000) as f64 * 10.0 + sweep as f64 * 0.05,
                1_000.0,
            ),
            _ => {
                if wave + 0.3 * noise > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        };
        Sample {
            sensor,
            ts,
            value: Some(value),
            quality: Quality::Good,
        }
    }

    /// Reading number `k` as the daemon's type.
    pub(crate) fn reading(&self, k: u64) -> Reading {
        let s = self.sample(k);
        Reading {
            sensor: self.sensor_ids[s.sensor].clone(),
            ts: Timestamp(s.ts),
            value: s.value,
            quality: s.quality,
        }
    }

    /// The readings of message `m`, as one source would send them.
    pub(crate) fn message(&self, m: u64) -> Vec<Reading> {
        let first = m * self.batch;
        let end = (first + self.batch).min(self.total);
        (first..end).map(|k| self.reading(k)).collect()
    }
}

/// `b1.f3.r301.temperature`: building, floor, room, kind.
fn sensor_id(i: usize) -> SensorId {
    let kind = KINDS[i % KINDS.len()];
    let room_index = i / KINDS.len();
    let room = room_index % ROOMS_PER_FLOOR + 1;
    let floor = room_index / ROOMS_PER_FLOOR % FLOORS + 1;
    let building = room_index / (ROOMS_PER_FLOOR * FLOORS) + 1;
    SensorId::new(format!(
        "b{building}.f{floor}.r{}.{kind}",
        floor * 100 + room
    ))
}

fn round_to(v: f64, per_unit: f64) -> f64 {
    (v * per_unit).round() / per_unit
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
