//! Bounds of resolved Modbus devices and points that the types alone do not enforce: unit ids
//! valid for the framing, points that fit in the 65,536-address space, points that overlap,
//! and the durations of a connection and a device.
//!
//! Overlaps: two value points that share a register are an error (almost always an off-by-one
//! in the addresses, e.g. a manual's 1-based register numbers taken as 0-based). A point that
//! selects part of one register (a bit with `bit = n`, a byte with the 8-bit types) may overlap
//! anything except the same part of the same register: status words are read whole and bit by
//! bit, and two 8-bit values often share a register.

use std::time::Duration;

use super::config::TransmissionMode;
use super::decode::DataType;
use super::{Point, err};
use crate::config::error::ConfigError;

/// Longest `interval` / `reprobe_interval` of a device.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Longest `hole_recheck_interval` of a device.
pub const MAX_HOLE_RECHECK: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest `timeout`, pause or wait of a connection.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// The unit id of a device on a connection with `mode`: 1–247 on RTU framing (0 is the
/// broadcast address, which no device answers), 0–247 or 255 on Modbus TCP.
pub fn unit_id(mode: TransmissionMode, slave: u8, path: &str, errors: &mut Vec<ConfigError>) {
    let rtu = matches!(mode, TransmissionMode::Rtu | TransmissionMode::RtuOverTcp);
    if rtu && !(1..=247).contains(&slave) {
        err(
            errors,
            &format!("{path}.slave_id"),
            format!("{slave} is not a unit id on an RTU line: use 1-247"),
            Some("0 is the broadcast address (no device answers it); 248-255 are reserved"),
        );
    } else if !rtu && slave > 247 && slave != 255 {
        err(
            errors,
            &format!("{path}.slave_id"),
            format!("{slave} is not a unit id: use 0-247, or 255 for TCP devices that ignore it"),
            None,
        );
    }
}

/// A duration that must lie within `[min, max]`.
pub fn duration(
    d: Duration,
    min: Duration,
    max: Duration,
    path: &str,
    errors: &mut Vec<ConfigError>,
) {
    if d < min || d > max {
        err(
            errors,
            path,
            format!(
                "{} is out of range: use {} to {}",
                humantime::format_duration(d),
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
            None,
        );
    }
}

/// A point must end at or before the last address (65535).
pub fn fits_address_space(p: &Point, path: &str, errors: &mut Vec<ConfigError>) {
    let end = u32::from(p.address) + u32::from(p.words());
    if end > 0x1_0000 {
        err(
            errors,
            &format!("{path}.address"),
            format!(
                "{} at {} address {} spans {} registers and reaches past the last address (65535)",
                p.data_type.as_str(),
                p.kind.as_str(),
                p.address,
                p.words()
            ),
            None,
        );
    }
}

/// Points (with their key paths) that read the same registers or bits; see the module doc.
pub fn overlaps(points: &[(Point, String)], errors: &mut Vec<ConfigError>) {
    let mut sorted: Vec<&(Point, String)> = points.iter().collect();
    sorted.sort_by_key(|(p, _)| (p.kind, p.address));
    for (i, (a, _)) in sorted.iter().enumerate() {
        let a_end = u32::from(a.address) + u32::from(a.words());
        for (b, b_path) in &sorted[i + 1..] {
            if b.kind != a.kind || u32::from(b.address) >= a_end {
                break;
            }
            let clash = match (part(a), part(b)) {
                (Some(x), Some(y)) => x == y && a.address == b.address,
                (Some(_), None) | (None, Some(_)) => false,
                (None, None) => true,
            };
            if clash {
                err(
                    errors,
                    &format!("{b_path}.address"),
                    format!(
                        "point {:?} reads {} {} which point {:?} reads too",
                        b.name,
                        b.kind.as_str(),
                        b.address,
                        a.name
                    ),
                    Some(
                        "check the addresses (a manual's register numbers count from 1: \
                         address_base = 1); to take one bit of a register, use bit = n",
                    ),
                );
            }
        }
    }
}

/// The part of its register a point reads: a bit, or the low or high byte.
#[derive(PartialEq, Eq)]
enum Part {
    Bit(u8),
    Low,
    High,
}

fn part(p: &Point) -> Option<Part> {
    if let Some(b) = p.bit {
        return Some(Part::Bit(b));
    }
    match p.data_type {
        DataType::Int8L | DataType::Uint8L => Some(Part::Low),
        DataType::Int8H | DataType::Uint8H => Some(Part::High),
        _ => None,
    }
}
