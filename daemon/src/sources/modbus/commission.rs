//! Commissioning tools behind `markoff modbus`: read registers and show every interpretation,
//! scan a line for unit ids that answer, and print the planned requests of a config.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio_modbus::ExceptionCode;

use super::config::{Parity, RegisterKind, TransmissionMode};
use super::decode::{ByteOrder, DataType, Decoded, decode_words};
use super::link::{Link, LinkError, ReadData};
use super::planner;
use super::{Connection, SerialParams, Target};

/// How to reach a line from the command line.
#[derive(Clone, Debug)]
pub struct LineSpec {
    /// `tcp://host:port` or `file:///dev/ttyUSB0`.
    pub controller: String,
    /// Framing; default from the controller.
    pub mode: Option<TransmissionMode>,
    /// Serial settings.
    pub serial: SerialParams,
    /// Per request.
    pub timeout: Duration,
}

impl LineSpec {
    /// A connection without devices for ad-hoc requests.
    ///
    /// # Errors
    /// The controller cannot be parsed.
    pub fn connection(&self) -> Result<Connection, String> {
        let target = Target::parse(&self.controller)?;
        let mode = self.mode.unwrap_or(match target {
            Target::Serial { .. } => TransmissionMode::Rtu,
            Target::Tcp { .. } => TransmissionMode::Tcp,
        });
        Ok(Connection {
            name: "cli".into(),
            target,
            mode,
            serial: self.serial,
            timeout: self.timeout,
            pause_between_requests: Duration::ZERO,
            pause_after_connect: Duration::ZERO,
            busy_retries: 2,
            busy_retries_wait: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(1),
            devices: Vec::new(),
        })
    }
}

/// Default serial settings (9600 8N1).
pub fn default_serial() -> SerialParams {
    SerialParams {
        baud_rate: 9_600,
        data_bits: 8,
        parity: Parity::None,
        stop_bits: 1,
    }
}

/// Errors of the commissioning commands.
#[derive(Debug, thiserror::Error)]
pub enum CommissionError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// No answer.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The device answered with an exception.
    #[error("the device answered exception {code:?} ({hint})")]
    Exception {
        /// The code.
        code: ExceptionCode,
        /// What it usually means.
        hint: &'static str,
    },
}

/// What an exception code usually means, for people.
pub fn exception_hint(code: ExceptionCode) -> &'static str {
    match code {
        ExceptionCode::IllegalFunction => "the device does not support this register table",
        ExceptionCode::IllegalDataAddress => {
            "some address in the range does not exist: check address_base (0 or 1) and the register table"
        }
        ExceptionCode::IllegalDataValue => "the count is not accepted: try fewer registers",
        ExceptionCode::ServerDeviceBusy => "the device is busy: retry later",
        ExceptionCode::GatewayTargetDevice => "the gateway got no answer from that unit id",
        _ => "see the device manual",
    }
}

/// `markoff modbus read`: reads and returns the raw data.
///
/// # Errors
/// No answer, or an exception.
pub async fn read(
    line: &LineSpec,
    slave: u8,
    kind: RegisterKind,
    address: u16,
    count: u16,
) -> Result<ReadData, CommissionError> {
    let conn = line.connection().map_err(CommissionError::Usage)?;
    let mut link = Link::new(Arc::new(conn));
    match link.read(slave, kind, address, count).await? {
        Ok(data) => Ok(data),
        Err(code) => Err(CommissionError::Exception {
            code,
            hint: exception_hint(code),
        }),
    }
}

fn number(d: Result<Decoded, super::decode::DecodeError>) -> String {
    match d {
        Ok(Decoded::Number {
            value,
            bits: Some(bits),
            signed: Some(signed),
        }) => {
            if value < 0.0 {
                signed.to_string()
            } else {
                bits.to_string()
            }
        }
        Ok(Decoded::Number { value, .. }) => format!("{value}"),
        Ok(Decoded::Text(t)) => format!("{t:?}"),
        Err(_) => "-".into(),
    }
}

fn float(d: Result<Decoded, super::decode::DecodeError>) -> String {
    match d {
        Ok(Decoded::Number { value, .. }) if value == 0.0 || (1e-4..1e7).contains(&value.abs()) => {
            let s = format!("{value:.6}");
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
        Ok(Decoded::Number { value, .. }) if value.is_finite() => format!("{value:.3e}"),
        Ok(Decoded::Number { value, .. }) => format!("{value}"),
        _ => "-".into(),
    }
}

/// Every interpretation of registers read at `address`, as a table for people.
pub fn render_words(kind: RegisterKind, address: u16, words: &[u16]) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "{} registers {}..{} ({} read)",
        kind.as_str(),
        address,
        u32::from(address) + words.len() as u32 - 1,
        words.len()
    )
    .ok();
    writeln!(
        out,
        "\n{:>7}  {:>6}  {:>6}  {:>6}  {:>7}  {:>7}  text",
        "address", "hex", "UINT16", "INT16", "UINT16", "INT16"
    )
    .ok();
    writeln!(
        out,
        "{:>7}  {:>6}  {:>6}  {:>6}  {:>7}  {:>7}",
        "", "", "AB", "AB", "BA", "BA"
    )
    .ok();
    for (i, w) in words.iter().enumerate() {
        let ab = |t| number(decode_words(&[*w], t, ByteOrder::Abcd, None, None));
        let ba = |t| number(decode_words(&[*w], t, ByteOrder::Badc, None, None));
        let text: String = w
            .to_be_bytes()
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    char::from(b)
                } else {
                    '.'
                }
            })
            .collect();
        writeln!(
            out,
            "{:>7}  0x{w:04X}  {:>6}  {:>6}  {:>7}  {:>7}  {text}",
            u32::from(address) + i as u32,
            ab(DataType::Uint16),
            ab(DataType::Int16),
            ba(DataType::Uint16),
            ba(DataType::Int16)
        )
        .ok();
    }
    wide_table(
        &mut out,
        address,
        words,
        "32",
        &[DataType::Int32, DataType::Uint32, DataType::Float32],
        14,
    );
    wide_table(
        &mut out,
        address,
        words,
        "64",
        &[DataType::Int64, DataType::Uint64, DataType::Float64],
        22,
    );
    out
}

/// The multi-register interpretations starting at each address, one row per type, one column per
/// byte order.
fn wide_table(
    out: &mut String,
    address: u16,
    words: &[u16],
    bits: &str,
    types: &[DataType],
    width: usize,
) {
    let span = usize::from(types[0].words(None));
    if words.len() < span {
        return;
    }
    writeln!(out, "\n{bits}-bit values starting at each address:").ok();
    writeln!(
        out,
        "{:>7}  {:<7}  {:>width$}  {:>width$}  {:>width$}  {:>width$}",
        "address", "type", "ABCD", "CDAB", "BADC", "DCBA"
    )
    .ok();
    for i in 0..=words.len() - span {
        let a = u32::from(address) + i as u32;
        for &t in types {
            let cells: Vec<String> = ByteOrder::ALL
                .iter()
                .map(|o| {
                    let d = decode_words(&words[i..], t, *o, None, None);
                    if matches!(t, DataType::Float32 | DataType::Float64) {
                        float(d)
                    } else {
                        number(d)
                    }
                })
                .collect();
            writeln!(
                out,
                "{a:>7}  {:<7}  {:>width$}  {:>width$}  {:>width$}  {:>width$}",
                t.as_str(),
                cells[0],
                cells[1],
                cells[2],
                cells[3]
            )
            .ok();
        }
    }
}

/// Bits for people.
pub fn render_bits(kind: RegisterKind, address: u16, bits: &[bool]) -> String {
    let mut out = format!(
        "{} {}..{}\n",
        kind.as_str(),
        address,
        u32::from(address) + bits.len() as u32 - 1
    );
    for (i, b) in bits.iter().enumerate() {
        writeln!(
            out,
            "{:>7}  {}",
            u32::from(address) + i as u32,
            u8::from(*b)
        )
        .ok();
    }
    out
}

/// Result of probing one unit id.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ScanHit {
    /// Unit id.
    pub slave: u8,
    /// `None` if it answered with data, else the exception it answered with (a device is there).
    pub exception: Option<String>,
}

/// `markoff modbus scan`: probes unit ids `from..=to` with a one-register read.
///
/// # Errors
/// Bad arguments.
pub async fn scan(
    line: &LineSpec,
    from: u8,
    to: u8,
    kind: RegisterKind,
    address: u16,
    mut progress: impl FnMut(u8),
) -> Result<Vec<ScanHit>, CommissionError> {
    let conn = line.connection().map_err(CommissionError::Usage)?;
    let mut link = Link::new(Arc::new(conn));
    let mut hits = Vec::new();
    for slave in from..=to {
        progress(slave);
        match link.read(slave, kind, address, 1).await {
            Ok(Ok(_)) => hits.push(ScanHit {
                slave,
                exception: None,
            }),
            Ok(Err(code)) => hits.push(ScanHit {
                slave,
                exception: Some(format!("{code:?}")),
            }),
            Err(LinkError::Connect { target, source }) => {
                return Err(CommissionError::Link(LinkError::Connect { target, source }));
            }
            Err(_) => {}
        }
    }
    Ok(hits)
}

/// `markoff modbus plan`: the requests per cycle of every device, against one per point.
pub fn render_plan(
    conns: &[Connection],
    holes_of: impl Fn(&Connection, &super::Device) -> Vec<planner::Hole>,
) -> String {
    let mut out = String::new();
    for c in conns {
        writeln!(out, "connection {} ({}, {:?})", c.name, c.target, c.mode).ok();
        for d in &c.devices {
            let pts = d.plan_points();
            let holes = holes_of(c, d);
            let blocks = planner::plan(&pts, &d.limits, &holes);
            writeln!(
                out,
                "  device {} (unit {}, every {}): {} points in {} requests per cycle (one per point: {}){}",
                d.name,
                d.slave,
                humantime::format_duration(d.interval),
                d.points.len(),
                blocks.len(),
                d.points.len(),
                if holes.is_empty() { String::new() } else { format!(", {} learned holes", holes.len()) }
            )
            .ok();
            for b in &blocks {
                let names: Vec<&str> = b
                    .points
                    .iter()
                    .map(|i| d.points[*i].name.as_str())
                    .collect();
                writeln!(
                    out,
                    "    read {:<8} {:>5} +{:<3}  {}",
                    b.kind.as_str(),
                    b.start,
                    b.count,
                    names.join(", ")
                )
                .ok();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::modbus::decode::encode;

    #[test]
    fn shows_a_cdab_float_among_the_interpretations() {
        let words = encode(239.5, DataType::Float32, ByteOrder::Cdab);
        let text = render_words(RegisterKind::Input, 0, &words);
        let line = text.lines().find(|l| l.contains("FLOAT32")).unwrap();
        assert!(line.contains("239.5"), "{text}");
        let ints = render_words(RegisterKind::Holding, 0, &[0x0102, 0x0304, 0x0506, 0x0708]);
        assert!(
            ints.contains("72623859790382856"),
            "64-bit integers print exactly: {ints}"
        );
        assert!(text.contains("0x"), "{text}");
    }
}
