//! A simulated building: floors of rooms with temperature, humidity and CO2 following a daily
//! cycle with noise, a boiler plant (supply/return temperature, pressure, burner cycling, a pump
//! whose current drifts up as it wears), and a basement water-leak sensor that trips for a while
//! every simulated hour. Used by `markoff demo` and by tests; its readings take the real ingest path.

use std::f64::consts::TAU;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::SourceContext;
use crate::config::SimulatorConfig;
use crate::model::{Reading, SensorId, SensorKind, SensorMeta, Timestamp};
use crate::service::supervisor::TaskError;

/// Which signal a simulated sensor follows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Signal {
    RoomTemperature { offset: f64 },
    RoomHumidity,
    RoomCo2 { occupancy: f64 },
    SupplyTemperature,
    ReturnTemperature,
    Pressure,
    Burner,
    PumpCurrent,
    Leak,
}

/// The simulated building: its sensors and the state of its noise.
///
/// The sensors' metadata (names, units, places) is needed once, to register them; the running
/// simulator keeps only each sensor's id and signal (at 10,000 points the metadata is about
/// 4 MB that nothing reads again).
#[derive(Debug)]
pub struct Building {
    /// Every sensor's metadata, until [`Building::take_metas`] hands it over.
    metas: Vec<SensorMeta>,
    /// What sampling needs of each sensor, in the order of `metas`.
    points: Vec<(SensorId, Signal)>,
    rng: SmallRng,
    time_scale: f64,
    epoch: Timestamp,
}

impl Building {
    /// Lays out the building described by `cfg`.
    pub fn new(cfg: &SimulatorConfig) -> Self {
        let mut rng = match cfg.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_rng(&mut rand::rng()),
        };
        let mut sensors: Vec<(SensorMeta, Signal)> = Vec::new();
        for floor in 1..=cfg.floors {
            for room in 1..=cfg.rooms_per_floor {
                let number = floor * 100 + room;
                let room_label = number.to_string();
                let floor_label = floor.to_string();
                let base = format!("f{floor}.r{number}");
                let mut add = |suffix: &str, name: String, kind, unit: &str, signal| {
                    sensors.push((
                        SensorMeta {
                            id: SensorId::new(format!("{base}.{suffix}")),
                            name,
                            kind,
                            unit: unit.to_owned(),
                            floor: Some(floor_label.clone()),
                            room: Some(room_label.clone()),
                            source: "simulator".to_owned(),
                        },
                        signal,
                    ));
                };
                let offset = rng.random_range(-1.0..1.0);
                let occupancy = rng.random_range(0.3..1.0);
                add(
                    "temperature",
                    format!("Room {number} temperature"),
                    SensorKind::Temperature,
                    "°C",
                    Signal::RoomTemperature { offset },
                );
                add(
                    "humidity",
                    format!("Room {number} humidity"),
                    SensorKind::Humidity,
                    "%",
                    Signal::RoomHumidity,
                );
                add(
                    "co2",
                    format!("Room {number} CO2"),
                    SensorKind::Co2,
                    "ppm",
                    Signal::RoomCo2 { occupancy },
                );
            }
        }
        let plant = |id: &str, name: &str, kind, unit: &str, signal| {
            (
                SensorMeta {
                    id: SensorId::new(id),
                    name: name.to_owned(),
                    kind,
                    unit: unit.to_owned(),
                    floor: Some("B".to_owned()),
                    room: Some("boiler room".to_owned()),
                    source: "simulator".to_owned(),
                },
                signal,
            )
        };
        sensors.push(plant(
            "boiler.supply_temp",
            "Boiler supply temperature",
            SensorKind::Temperature,
            "°C",
            Signal::SupplyTemperature,
        ));
        sensors.push(plant(
            "boiler.return_temp",
            "Boiler return temperature",
            SensorKind::Temperature,
            "°C",
            Signal::ReturnTemperature,
        ));
        sensors.push(plant(
            "boiler.pressure",
            "Heating circuit pressure",
            SensorKind::Pressure,
            "bar",
            Signal::Pressure,
        ));
        sensors.push(plant(
            "boiler.burner",
            "Burner on",
            SensorKind::State,
            "",
            Signal::Burner,
        ));
        sensors.push(plant(
            "boiler.pump_current",
            "Circulation pump current",
            SensorKind::Energy,
            "A",
            Signal::PumpCurrent,
        ));
        sensors.push((
            SensorMeta {
                id: SensorId::new("basement.leak"),
                name: "Basement water leak".to_owned(),
                kind: SensorKind::Leak,
                unit: String::new(),
                floor: Some("B".to_owned()),
                room: Some("basement".to_owned()),
                source: "simulator".to_owned(),
            },
            Signal::Leak,
        ));
        let points = sensors.iter().map(|(m, s)| (m.id.clone(), *s)).collect();
        Self {
            metas: sensors.into_iter().map(|(m, _)| m).collect(),
            points,
            rng,
            time_scale: cfg.time_scale,
            epoch: Timestamp::now(),
        }
    }

    /// Every sensor's metadata (empty once [`Building::take_metas`] took it).
    pub fn sensors(&self) -> &[SensorMeta] {
        &self.metas
    }

    /// Hands over every sensor's metadata, for registering the sensors; sampling goes on
    /// without it.
    pub fn take_metas(&mut self) -> Vec<SensorMeta> {
        std::mem::take(&mut self.metas)
    }

    /// How many sensors the building has.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the building has no sensor (never: the plant is always there).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// One reading of every sensor at wall-clock time `now`.
    pub fn sample(&mut self, now: Timestamp) -> Vec<Reading> {
        let sim = self.sim_seconds(now);
        let day = (sim / 86_400.0).fract();
        let hour = (sim / 3_600.0).fract();
        let mut out = Vec::with_capacity(self.points.len());
        for i in 0..self.points.len() {
            let signal = self.points[i].1;
            let value = self.value(signal, sim, day, hour);
            out.push(Reading::good(self.points[i].0.clone(), now, value));
        }
        out
    }

    /// Simulated seconds since local midnight of the start day, scaled.
    fn sim_seconds(&self, now: Timestamp) -> f64 {
        let real = (now.as_millis() - self.epoch.as_millis()) as f64 / 1000.0;
        let start_of_day = (self.epoch.as_millis() / 1000 % 86_400) as f64;
        start_of_day + real * self.time_scale
    }

    fn noise(&mut self, amplitude: f64) -> f64 {
        // Sum of uniforms: close to a normal distribution, bounded.
        let s: f64 = (0..4).map(|_| self.rng.random_range(-1.0..1.0)).sum();
        s / 4.0 * amplitude
    }

    fn value(&mut self, signal: Signal, sim: f64, day: f64, hour: f64) -> f64 {
        // Warmest mid-afternoon, coolest before dawn.
        let daily = (TAU * (day - 0.375)).sin();
        let working = if (0.33..0.79).contains(&day) {
            (TAU * (day - 0.33) / 0.92).sin().max(0.0)
        } else {
            0.0
        };
        let burner_on = (sim / 600.0).fract() < 0.55;
        match signal {
            Signal::RoomTemperature { offset } => {
                round(21.5 + offset + 1.5 * daily + self.noise(0.15), 2)
            }
            Signal::RoomHumidity => round(45.0 - 8.0 * daily + self.noise(1.0), 1),
            Signal::RoomCo2 { occupancy } => {
                round(420.0 + 700.0 * occupancy * working + self.noise(15.0), 0)
            }
            Signal::SupplyTemperature => {
                let base = if burner_on { 72.0 } else { 64.0 };
                round(base - 4.0 * daily + self.noise(0.4), 1)
            }
            Signal::ReturnTemperature => round(52.0 - 3.0 * daily + self.noise(0.4), 1),
            Signal::Pressure => round(1.6 + self.noise(0.03), 3),
            Signal::Burner => f64::from(u8::from(burner_on)),
            Signal::PumpCurrent => {
                // Wear: current rises 2 % per simulated day.
                let wear = 1.0 + 0.02 * (sim / 86_400.0);
                round(2.1 * wear + self.noise(0.05), 2)
            }
            // The pipe leaks between minutes 30 and 40 of every simulated hour.
            Signal::Leak => f64::from(u8::from((0.5..0.667).contains(&hour))),
        }
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// Runs the simulator until `token` is cancelled.
///
/// # Errors
/// The buffer stopped accepting readings.
pub async fn run(
    cfg: SimulatorConfig,
    ctx: SourceContext,
    token: CancellationToken,
) -> Result<(), TaskError> {
    let mut building = Building::new(&cfg);
    let metas = building.take_metas();
    let count = metas.len();
    tokio::select! {
        () = token.cancelled() => return Ok(()),
        r = ctx.ingest.register_sensors(metas) => r.map_err(|e| TaskError::new("cannot register simulated sensors", e))?,
    }
    info!(sensors = count, interval = ?cfg.interval, "Simulator started.");
    let mut ticker = tokio::time::interval(cfg.interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        let readings = building.sample(Timestamp::now());
        tokio::select! {
            () = token.cancelled() => return Ok(()),
            r = ctx.ingest.submit(readings) => r.map_err(|e| TaskError::new("buffer closed", e))?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SimulatorConfig {
        SimulatorConfig {
            floors: 2,
            rooms_per_floor: 3,
            seed: Some(7),
            ..SimulatorConfig::default()
        }
    }

    #[test]
    fn lays_out_rooms_and_plant() {
        let b = Building::new(&cfg());
        assert_eq!(b.sensors().len(), 2 * 3 * 3 + 6);
        assert_eq!(b.len(), b.sensors().len());
        let ids: Vec<&str> = b.sensors().iter().map(|m| m.id.as_str()).collect();
        assert!(ids.contains(&"f2.r203.co2"));
        assert!(ids.contains(&"basement.leak"));
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }

    #[test]
    fn values_are_plausible_over_a_simulated_day() {
        let mut b = Building::new(&SimulatorConfig {
            time_scale: 86_400.0 / 50.0,
            ..cfg()
        });
        let start = b.epoch;
        let mut leak_seen = false;
        for step in 0..50 {
            let now = Timestamp(start.as_millis() + step * 1000);
            for r in b.sample(now) {
                let v = r.value.unwrap();
                let id = r.sensor.as_str();
                if id.ends_with("temperature") {
                    assert!((15.0..30.0).contains(&v), "{id} {v}");
                } else if id.ends_with("co2") {
                    assert!((350.0..1300.0).contains(&v), "{id} {v}");
                } else if id == "basement.leak" {
                    leak_seen |= v == 1.0;
                }
            }
        }
        assert!(leak_seen, "the leak trips within a simulated day");
    }
}
