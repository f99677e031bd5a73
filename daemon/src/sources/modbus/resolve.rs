//! Resolving `[sources.modbus.*]` into connections, devices and points: profiles, addresses,
//! byte orders and every bound, each problem reported with its dotted key path.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use super::config::{Connections, DeviceConfig, PointConfig, Profiles, TransmissionMode};
use super::decode::{ByteOrder, DataType};
use super::planner::Limits;
use super::{Connection, Device, Point, SerialParams, Target, builtin_profiles, checks};
use crate::config::error::ConfigError;
use crate::model::{SensorId, SensorKind};

/// Resolves and validates every connection. Collects every problem with its dotted key path.
///
/// # Errors
/// The problems found.
pub fn resolve(
    conns: &Connections,
    user_profiles: &Profiles,
) -> Result<Vec<Connection>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut profiles = builtin_profiles();
    profiles.extend(user_profiles.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (name, profile) in user_profiles {
        let base = format!("sources.modbus_profiles.{name}");
        let mut seen = HashSet::new();
        for (j, p) in profile.points.iter().enumerate() {
            let path = format!("{base}.points.{j}");
            if !seen.insert(p.name.clone()) {
                err(
                    &mut errors,
                    &format!("{path}.name"),
                    format!("duplicate point name {:?}", p.name),
                    None,
                );
            }
            let _resolved = resolve_point(
                p,
                "profile",
                profile.address_base,
                profile.byte_order,
                &path,
                &mut errors,
            );
        }
    }
    let mut device_names = HashSet::new();
    let mut out = Vec::new();
    for (cname, c) in conns {
        let base = format!("sources.modbus.{cname}");
        if !c.enabled {
            continue;
        }
        let target = match Target::parse(&c.controller) {
            Ok(t) => Some(t),
            Err(m) => {
                err(
                    &mut errors,
                    &format!("{base}.controller"),
                    m,
                    Some("e.g. \"tcp://192.168.1.20:502\" or \"file:///dev/ttyUSB0\""),
                );
                None
            }
        };
        let mode = match (&target, c.transmission_mode) {
            (_, Some(m @ (TransmissionMode::Ascii | TransmissionMode::AsciiOverTcp))) => {
                err(
                    &mut errors,
                    &format!("{base}.transmission_mode"),
                    format!(
                        "{}: Modbus ASCII framing is not supported",
                        if m == TransmissionMode::Ascii {
                            "ASCII"
                        } else {
                            "ASCIIoverTCP"
                        }
                    ),
                    Some("devices that speak ASCII usually speak RTU too: set RTU on the device"),
                );
                m
            }
            (
                Some(Target::Serial { .. }),
                None | Some(TransmissionMode::Rtu | TransmissionMode::Auto),
            ) => TransmissionMode::Rtu,
            (Some(Target::Serial { .. }), Some(m)) => {
                err(
                    &mut errors,
                    &format!("{base}.transmission_mode"),
                    format!("{m:?} needs a tcp:// controller"),
                    Some("serial ports use RTU"),
                );
                m
            }
            (_, Some(TransmissionMode::Rtu)) => {
                err(
                    &mut errors,
                    &format!("{base}.transmission_mode"),
                    "RTU needs a file:// serial controller".to_owned(),
                    Some("use RTUoverTCP for RTU frames through a TCP serial server"),
                );
                TransmissionMode::Rtu
            }
            (_, None | Some(TransmissionMode::Auto)) => TransmissionMode::Tcp,
            (_, Some(m)) => m,
        };
        if !(5..=8).contains(&c.data_bits) {
            err(
                &mut errors,
                &format!("{base}.data_bits"),
                "must be 5, 6, 7 or 8".to_owned(),
                None,
            );
        }
        if !(1..=2).contains(&c.stop_bits) {
            err(
                &mut errors,
                &format!("{base}.stop_bits"),
                "must be 1 or 2".to_owned(),
                None,
            );
        }
        let ms = Duration::from_millis;
        for (key, d, min) in [
            ("timeout", c.timeout, ms(1)),
            ("pause_between_requests", c.pause_between_requests, ms(0)),
            ("pause_after_connect", c.pause_after_connect, ms(0)),
            ("busy_retries_wait", c.busy_retries_wait, ms(0)),
            ("reconnect_max", c.reconnect_max, ms(0)),
        ] {
            checks::duration(
                d,
                min,
                checks::MAX_WAIT,
                &format!("{base}.{key}"),
                &mut errors,
            );
        }
        if c.busy_retries > 100 {
            err(
                &mut errors,
                &format!("{base}.busy_retries"),
                "must be 0-100".to_owned(),
                None,
            );
        }
        if !(50..=4_000_000).contains(&c.baud_rate) {
            err(
                &mut errors,
                &format!("{base}.baud_rate"),
                "must be 50-4000000".to_owned(),
                None,
            );
        }
        let mut slaves = HashSet::new();
        let mut devices = Vec::new();
        for (i, d) in c.devices.iter().enumerate() {
            let path = format!("{base}.devices.{i}");
            if !device_names.insert(d.name.clone()) {
                err(
                    &mut errors,
                    &format!("{path}.name"),
                    format!(
                        "device name {:?} is used twice; sensor ids would collide",
                        d.name
                    ),
                    None,
                );
            }
            if !slaves.insert(d.slave_id) {
                err(
                    &mut errors,
                    &format!("{path}.slave_id"),
                    format!("two devices on {cname} use slave id {}", d.slave_id),
                    None,
                );
            }
            checks::unit_id(mode, d.slave_id, &path, &mut errors);
            if let Some(dev) = resolve_device(d, &profiles, &path, &mut errors) {
                devices.push(dev);
            }
        }
        if let Some(target) = target {
            out.push(Connection {
                name: cname.clone(),
                target,
                mode,
                serial: SerialParams {
                    baud_rate: c.baud_rate,
                    data_bits: c.data_bits,
                    parity: c.parity,
                    stop_bits: c.stop_bits,
                },
                timeout: c.timeout,
                pause_between_requests: c.pause_between_requests,
                pause_after_connect: c.pause_after_connect,
                busy_retries: c.busy_retries,
                busy_retries_wait: c.busy_retries_wait,
                reconnect_max: c.reconnect_max.max(Duration::from_secs(1)),
                devices,
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn resolve_device(
    d: &DeviceConfig,
    profiles: &Profiles,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Device> {
    let before = errors.len();
    if d.name.is_empty()
        || !d
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        err(
            errors,
            &format!("{path}.name"),
            "device names use ASCII letters, digits, '_' and '-'".to_owned(),
            None,
        );
    }
    if d.address_base > 1 {
        err(
            errors,
            &format!("{path}.address_base"),
            "must be 0 or 1".to_owned(),
            None,
        );
    }
    if !(1..=125).contains(&d.max_registers_per_request) {
        err(
            errors,
            &format!("{path}.max_registers_per_request"),
            "must be 1-125 (the protocol limit)".to_owned(),
            None,
        );
    }
    if !(1..=2000).contains(&d.max_bits_per_request) {
        err(
            errors,
            &format!("{path}.max_bits_per_request"),
            "must be 1-2000 (the protocol limit)".to_owned(),
            None,
        );
    }
    checks::duration(
        d.interval,
        Duration::from_millis(10),
        checks::MAX_INTERVAL,
        &format!("{path}.interval"),
        errors,
    );
    checks::duration(
        d.reprobe_interval,
        Duration::from_millis(10),
        checks::MAX_INTERVAL,
        &format!("{path}.reprobe_interval"),
        errors,
    );
    checks::duration(
        d.hole_recheck_interval,
        Duration::from_millis(10),
        checks::MAX_HOLE_RECHECK,
        &format!("{path}.hole_recheck_interval"),
        errors,
    );
    if d.down_after == 0 {
        err(
            errors,
            &format!("{path}.down_after"),
            "must be at least 1".to_owned(),
            None,
        );
    }
    let mut merged: BTreeMap<String, (PointConfig, u8, Option<ByteOrder>, String)> =
        BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    if let Some(pname) = &d.profile {
        match profiles.get(pname) {
            Some(p) => {
                for (j, pt) in p.points.iter().enumerate() {
                    order.push(pt.name.clone());
                    merged.insert(
                        pt.name.clone(),
                        (
                            pt.clone(),
                            p.address_base,
                            p.byte_order,
                            format!("{path}.profile[{j}]"),
                        ),
                    );
                }
            }
            None => {
                let known: Vec<String> = profiles.keys().cloned().collect();
                err(
                    errors,
                    &format!("{path}.profile"),
                    format!("unknown profile {pname:?}"),
                    Some(&format!("known profiles: {}", known.join(", "))),
                );
            }
        }
    }
    let mut own = HashSet::new();
    for (j, pt) in d.points.iter().enumerate() {
        if !own.insert(pt.name.clone()) {
            err(
                errors,
                &format!("{path}.points.{j}.name"),
                format!("duplicate point name {:?}", pt.name),
                None,
            );
        }
        if !merged.contains_key(&pt.name) {
            order.push(pt.name.clone());
        }
        merged.insert(
            pt.name.clone(),
            (
                pt.clone(),
                d.address_base,
                None,
                format!("{path}.points.{j}"),
            ),
        );
    }
    let mut points: Vec<(Point, String)> = Vec::new();
    for name in order {
        let Some((pc, base, profile_order, ppath)) = merged.get(&name) else {
            continue;
        };
        let default_order = d.byte_order.or(*profile_order);
        if let Some(p) = resolve_point(pc, &d.name, *base, default_order, ppath, errors) {
            let max = if p.kind.is_bits() {
                d.max_bits_per_request
            } else {
                d.max_registers_per_request
            };
            if p.words() > max {
                err(
                    errors,
                    &format!("{ppath}.length"),
                    format!(
                        "spans {} registers, more than one read allows ({max})",
                        p.words()
                    ),
                    None,
                );
            }
            checks::fits_address_space(&p, ppath, errors);
            points.push((p, ppath.clone()));
        }
    }
    checks::overlaps(&points, errors);
    if points.is_empty() && errors.len() == before {
        err(
            errors,
            &format!("{path}.points"),
            "the device has no points".to_owned(),
            Some("add points or a profile"),
        );
    }
    (errors.len() == before).then(|| Device {
        name: d.name.clone(),
        slave: d.slave_id,
        interval: d.interval,
        limits: Limits {
            optimization: d.optimization,
            max_gap: d.max_gap,
            max_registers: d.max_registers_per_request,
            max_bits: d.max_bits_per_request,
        },
        down_after: d.down_after,
        reprobe_interval: d.reprobe_interval,
        hole_recheck_interval: d.hole_recheck_interval,
        floor: d.floor.clone(),
        room: d.room.clone(),
        points: points.into_iter().map(|(p, _)| p).collect(),
    })
}

pub(super) fn resolve_point(
    p: &PointConfig,
    device: &str,
    address_base: u8,
    default_order: Option<ByteOrder>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Point> {
    let before = errors.len();
    if p.name.is_empty()
        || !p
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        err(
            errors,
            &format!("{path}.name"),
            "point names use ASCII letters, digits, '_' and '-'".to_owned(),
            None,
        );
    }
    let (kind, address) = match p.address.resolve(p.register, address_base) {
        Ok(v) => v,
        Err(m) => {
            err(
                errors,
                &format!("{path}.address"),
                m,
                Some("write register = \"holding\" and a number, or \"40001\"-style"),
            );
            return None;
        }
    };
    let dt = p.data_type;
    if kind.is_bits() && !dt.is_bit() && dt != DataType::Uint16 {
        err(
            errors,
            &format!("{path}.type"),
            format!("{} is a bit table; use type = \"BIT\"", kind.as_str()),
            None,
        );
    }
    if kind.is_bits() && p.bit.is_some() {
        err(
            errors,
            &format!("{path}.bit"),
            "'bit' selects a bit of a register; coils and discrete inputs are bits already"
                .to_owned(),
            None,
        );
    }
    if !kind.is_bits() && dt.is_bit() && p.bit.is_none() {
        err(
            errors,
            &format!("{path}.bit"),
            format!(
                "{} on a {} register needs bit = 0..15",
                dt.as_str(),
                kind.as_str()
            ),
            None,
        );
    }
    if p.bit.is_some_and(|b| b > 15) {
        err(
            errors,
            &format!("{path}.bit"),
            "must be 0-15".to_owned(),
            None,
        );
    }
    if dt == DataType::String && p.length.is_none_or(|l| l == 0) {
        err(
            errors,
            &format!("{path}.length"),
            "STRING needs length = <registers> (2 characters each)".to_owned(),
            None,
        );
    }
    if !p.scale.is_finite() || p.scale == 0.0 || !p.offset.is_finite() {
        err(
            errors,
            &format!("{path}.scale"),
            "scale must be a non-zero number and offset a number".to_owned(),
            None,
        );
    }
    if let (Some(lo), Some(hi)) = (p.min_value, p.max_value)
        && lo > hi
    {
        err(
            errors,
            &format!("{path}.min_value"),
            "min_value is above max_value".to_owned(),
            None,
        );
    }
    if p.deadband.is_some_and(|d| !(d.is_finite() && d >= 0.0)) {
        err(
            errors,
            &format!("{path}.deadband"),
            "must be zero or positive".to_owned(),
            None,
        );
    }
    if errors.len() > before {
        return None;
    }
    let sensor_kind = p.kind.unwrap_or_else(|| {
        if dt.is_bit() || p.bit.is_some() {
            SensorKind::State
        } else {
            SensorKind::from_unit(&p.unit)
        }
    });
    Some(Point {
        name: p.name.clone(),
        sensor: SensorId::new(format!("{device}.{}", p.name)),
        kind,
        address,
        data_type: dt,
        byte_order: p.byte_order.or(default_order).unwrap_or_default(),
        bit: p.bit,
        length: p.length,
        scale: p.scale,
        offset: p.offset,
        unit: p.unit.clone(),
        sensor_kind,
        nan_value: p.nan_value,
        min_value: p.min_value,
        max_value: p.max_value,
        deadband: p.deadband,
        max_silence: p.max_silence,
        description: p
            .description
            .clone()
            .unwrap_or_else(|| format!("{device} {}", p.name)),
    })
}

pub(super) fn err(errors: &mut Vec<ConfigError>, path: &str, message: String, hint: Option<&str>) {
    errors.push(ConfigError {
        path: path.to_owned(),
        position: None,
        message,
        hint: hint.map(str::to_owned),
    });
}
