//! A simulated Modbus site for `bench daemon --sources modbus`: Modbus TCP gateways (one
//! in-process server each, on a free loopback port), each with serial devices behind it, whose
//! registers change as a building's do, and the `[sources.modbus.*]` config that polls them.
//!
//! Shape of the site (a building's, not a benchmark's): devices of [`POINTS_PER_DEVICE`] points
//! (30 INT16 holding registers, scaled temperatures and set points that move by a step now and
//! then, and 20 FLOAT32 input registers, meter values that change at every read), at most
//! [`DEVICES_PER_GATEWAY`] behind one gateway, every device polled every `interval`. Each request
//! is answered after a delay of 8 to 32 ms that depends on the device, as an RS-485 line behind a
//! TCP gateway answers, so the devices of a gateway are read one after another across the
//! interval and the gateways' cycles drift against each other: the daemon's sources send one
//! message of 50 readings per device poll, scattered over the second, instead of the simulator's
//! one message of every point at once.

use std::fmt::Write as _;
use std::time::Duration;

use markoff::sources::modbus::device::{SimDevices, SimServer};
use tokio::task::JoinHandle;

/// Points of one device.
pub(super) const POINTS_PER_DEVICE: u64 = 50;
/// INT16 holding registers of one device (the rest are FLOAT32 input registers).
const INT16_POINTS: u16 = 30;
/// FLOAT32 input registers of one device.
const FLOAT_POINTS: u16 = 20;
/// Devices behind one gateway (unit ids 1 to this).
pub(super) const DEVICES_PER_GATEWAY: u64 = 8;

/// The running site: its servers and the task that moves the values.
#[derive(Debug)]
pub(super) struct Site {
    servers: Vec<SimServer>,
    driver: JoinHandle<()>,
    /// The daemon's config for it.
    pub(super) toml: String,
    /// Points configured (the `<device>.online` sensors not counted).
    pub(super) points: u64,
    /// Devices.
    pub(super) devices: u64,
    /// Gateways (Modbus TCP connections).
    pub(super) gateways: u64,
}

/// Per-request answer delay of device `unit` behind gateway `gw`: 8 to 32 ms, spread.
fn delay(gw: u64, unit: u64) -> Duration {
    Duration::from_millis(8 + (gw * 7 + unit * 13) % 25)
}

/// A small deterministic generator (xorshift64*), so every run offers the same values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The values of one device, moved between reads.
struct DeviceValues {
    /// Scaled by 10 (21.5 °C is 215).
    int16: Vec<i16>,
    float: Vec<f32>,
}

impl DeviceValues {
    fn new(rng: &mut Rng) -> Self {
        Self {
            int16: (0..INT16_POINTS)
                .map(|_| 180 + (rng.next() % 80) as i16)
                .collect(),
            float: (0..FLOAT_POINTS)
                .map(|_| 10.0 + (rng.unit() * 400.0) as f32)
                .collect(),
        }
    }

    /// One step: an INT16 value moves by one (0.1 unit) with probability 1/10, a meter value
    /// by up to ±0.5 % every time.
    fn step(&mut self, rng: &mut Rng) {
        for v in &mut self.int16 {
            match rng.next() % 20 {
                0 => *v += 1,
                1 => *v -= 1,
                _ => {}
            }
        }
        for v in &mut self.float {
            *v *= 1.0 + ((rng.unit() - 0.5) * 0.01) as f32;
        }
    }

    fn write(&self, devices: &SimDevices, unit: u8) {
        let words: Vec<u16> = self.int16.iter().map(|v| *v as u16).collect();
        devices.set_holding(unit, 0, &words);
        let words: Vec<u16> = self
            .float
            .iter()
            .flat_map(|v| {
                let b = v.to_bits();
                [(b >> 16) as u16, b as u16]
            })
            .collect();
        devices.set_input(unit, 0, &words);
    }
}

impl Site {
    /// Starts servers for about `points` points (whole devices), polled every `interval`.
    pub(super) async fn start(points: u64, interval: Duration) -> anyhow::Result<Self> {
        let devices = points.div_ceil(POINTS_PER_DEVICE).max(1);
        let gateways = devices.div_ceil(DEVICES_PER_GATEWAY);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut servers = Vec::new();
        let mut driven = Vec::new();
        let mut toml = String::new();
        for gw in 0..gateways {
            let sim = SimDevices::new();
            let units = (devices - gw * DEVICES_PER_GATEWAY).min(DEVICES_PER_GATEWAY);
            let mut values = Vec::new();
            for unit in 1..=units {
                let v = DeviceValues::new(&mut rng);
                v.write(&sim, unit as u8);
                sim.set_delay(unit as u8, delay(gw, unit));
                values.push((unit as u8, v));
            }
            let server = SimServer::start(sim.clone(), "127.0.0.1:0".parse()?).await?;
            writeln!(
                toml,
                "\n[sources.modbus.gw{gw}]\ncontroller = \"tcp://{}\"\ntimeout = \"1s\"",
                server.addr()
            )?;
            for unit in 1..=units {
                writeln!(
                    toml,
                    "\n[[sources.modbus.gw{gw}.devices]]\nname = \"gw{gw}d{unit}\"\nslave_id = {unit}\ninterval = \"{}ms\"\npoints = [",
                    interval.as_millis()
                )?;
                for i in 0..INT16_POINTS {
                    writeln!(
                        toml,
                        "  {{ name = \"t{i}\", register = \"holding\", address = {i}, type = \"INT16\", scale = 0.1, unit = \"°C\" }},"
                    )?;
                }
                for i in 0..FLOAT_POINTS {
                    writeln!(
                        toml,
                        "  {{ name = \"m{i}\", register = \"input\", address = {}, type = \"FLOAT32\", unit = \"kW\" }},",
                        i * 2
                    )?;
                }
                toml.push_str("]\n");
            }
            servers.push(server);
            driven.push((sim, values));
        }
        // Values move a quarter of the devices at a time, four times per interval, so every read
        // sees new meter values and now and then a new temperature.
        let driver = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval / 4);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut quarter = 0usize;
            loop {
                tick.tick().await;
                for (sim, values) in &mut driven {
                    for (k, (unit, v)) in values.iter_mut().enumerate() {
                        if k % 4 == quarter {
                            v.step(&mut rng);
                            v.write(sim, *unit);
                        }
                    }
                }
                quarter = (quarter + 1) % 4;
            }
        });
        Ok(Self {
            servers,
            driver,
            toml,
            points: devices * POINTS_PER_DEVICE,
            devices,
            gateways,
        })
    }

    /// Stops the servers and the values.
    pub(super) async fn stop(self) {
        self.driver.abort();
        for s in self.servers {
            s.stop().await;
        }
    }
}
