//! The demo's simulated Modbus plant: a boiler controller (unit 1) and an energy meter with
//! word-swapped floats (unit 2) on a Modbus TCP server, with values that move.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::sources::modbus::decode::{ByteOrder, DataType, encode};
use crate::sources::modbus::device::{SimDevices, SimServer};

/// Starts the device on a free loopback port and a task that updates its registers.
///
/// # Errors
/// The port cannot be bound.
pub(crate) async fn start(token: CancellationToken) -> std::io::Result<SimServer> {
    let devices = SimDevices::new();
    update(&devices, 0.0);
    // Registers 6..=9 are left out on purpose: a hole in the map.
    devices.set_input(
        2,
        100,
        &[
            u16::from_be_bytes(*b"DM"),
            u16::from_be_bytes(*b"-4"),
            u16::from_be_bytes(*b"71"),
            u16::from_be_bytes(*b"1 "),
        ],
    );
    let server = SimServer::start(
        devices.clone(),
        "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
    )
    .await?;
    tokio::spawn(async move {
        let mut t = 0.0;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                _ = tick.tick() => {}
            }
            t += 1.0;
            update(&devices, t);
        }
    });
    Ok(server)
}

fn update(d: &SimDevices, t: f64) {
    let burner = (t / 40.0).fract() < 0.6;
    // Every two minutes the boiler overheats for half a minute (a sticking mixing valve), and
    // trips its fault bit near the peak.
    let phase = (t / 120.0).fract();
    let overheat = if (0.5..0.75).contains(&phase) {
        26.0 * ((phase - 0.5) / 0.25 * std::f64::consts::PI).sin()
    } else {
        0.0
    };
    let fault = overheat > 22.0;
    let supply = if burner { 72.0 } else { 66.0 } + (t / 7.0).sin() + overheat;
    let words16 = |v: f64| encode(v, DataType::Int16, ByteOrder::Abcd)[0];
    d.set_holding(
        1,
        0,
        &[
            words16(supply * 10.0),
            words16((supply - 17.0) * 10.0),
            words16((-3.0 + 2.0 * (t / 300.0).sin()) * 10.0),
            (160.0 + 3.0 * (t / 11.0).sin()) as u16,
            u16::from(burner) | 0b10 | (u16::from(fault) << 2),
            0x8000,
        ],
    );
    d.set_holding(
        1,
        10,
        &encode(
            12_345.0 + (t / 3600.0).floor(),
            DataType::Uint32,
            ByteOrder::Abcd,
        ),
    );
    let power = 18.0 + 6.0 * (t / 60.0).sin();
    let mut meter = Vec::new();
    for v in [
        230.0 + (t / 5.0).sin(),
        power * 1000.0 / 230.0 / 3.0,
        power,
        48_213.0 + t * power / 3600.0,
    ] {
        meter.extend(encode(v, DataType::Float32, ByteOrder::Cdab));
    }
    d.set_input(2, 0, &meter);
}
