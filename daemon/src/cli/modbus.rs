//! The `markoff modbus` subcommands: argument handling and output around
//! [`crate::sources::modbus::commission`].

use std::process::ExitCode;

use super::{LineArgs, ModbusCommand};
use crate::channels::client::{ApiArgs, ClientError};
use crate::sources::modbus::address::AddressSpec;
use crate::sources::modbus::commission::{self, CommissionError, LineSpec};
use crate::sources::modbus::config::{Parity, RegisterKind, TransmissionMode};
use crate::sources::modbus::link::ReadData;
use crate::sources::modbus::{SerialParams, planner, poller};

const EX_USAGE: u8 = 64;
const EX_UNAVAILABLE: u8 = 69;
const EX_CONFIG: u8 = 78;

fn parse_kind(s: &str) -> Result<RegisterKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase()))
        .map_err(|_| format!("unknown register table {s:?}: use holding, input, coil or discrete"))
}

fn line_spec(a: &LineArgs) -> Result<LineSpec, String> {
    let mode = match a.transmission_mode.as_deref() {
        None => None,
        Some(m) if m.eq_ignore_ascii_case("auto") => None,
        Some(m) => Some(match m.to_ascii_lowercase().as_str() {
            "tcp" => TransmissionMode::Tcp,
            "rtu" => TransmissionMode::Rtu,
            "rtuovertcp" | "rtu_over_tcp" => TransmissionMode::RtuOverTcp,
            _ => {
                return Err(format!(
                    "unknown transmission mode {m:?}: use auto, TCP, RTU or RTUoverTCP"
                ));
            }
        }),
    };
    let parity = match a.parity.to_ascii_uppercase().as_str() {
        "N" | "NONE" => Parity::None,
        "E" | "EVEN" => Parity::Even,
        "O" | "ODD" => Parity::Odd,
        other => return Err(format!("unknown parity {other:?}: use N, E or O")),
    };
    Ok(LineSpec {
        controller: a.controller.clone(),
        mode,
        serial: SerialParams {
            baud_rate: a.baud_rate,
            data_bits: a.data_bits,
            parity,
            stop_bits: a.stop_bits,
        },
        timeout: a.timeout,
    })
}

fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("markoff modbus: {msg}");
    ExitCode::from(code)
}

/// Runs a `markoff modbus` subcommand.
pub async fn run(cmd: ModbusCommand) -> ExitCode {
    match cmd {
        ModbusCommand::Read {
            line,
            slave,
            register,
            address,
            count,
            address_base,
            json,
        } => {
            let spec = match line_spec(&line) {
                Ok(s) => s,
                Err(e) => return fail(EX_USAGE, &e),
            };
            let register = match register.as_deref().map(parse_kind).transpose() {
                Ok(r) => r,
                Err(e) => return fail(EX_USAGE, &e),
            };
            let (kind, addr) = match AddressSpec::parse(&address)
                .and_then(|a| a.resolve(register, address_base))
            {
                Ok(v) => v,
                Err(e) => return fail(EX_USAGE, &e),
            };
            if count == 0 || count > if kind.is_bits() { 2000 } else { 125 } {
                return fail(EX_USAGE, "count must be 1-125 registers or 1-2000 bits");
            }
            match commission::read(&spec, slave, kind, addr, count).await {
                Ok(ReadData::Words(w)) if json => println!(
                    "{}",
                    serde_json::json!({"register": kind, "address": addr, "words": w})
                ),
                Ok(ReadData::Bits(b)) if json => println!(
                    "{}",
                    serde_json::json!({"register": kind, "address": addr, "bits": b})
                ),
                Ok(ReadData::Words(w)) => print!("{}", commission::render_words(kind, addr, &w)),
                Ok(ReadData::Bits(b)) => print!("{}", commission::render_bits(kind, addr, &b)),
                Err(e @ CommissionError::Exception { .. }) => return fail(1, &e.to_string()),
                Err(e @ CommissionError::Usage(_)) => return fail(EX_USAGE, &e.to_string()),
                Err(e) => return fail(EX_UNAVAILABLE, &e.to_string()),
            }
            ExitCode::SUCCESS
        }
        ModbusCommand::Scan {
            line,
            from,
            to,
            register,
            address,
        } => {
            let spec = match line_spec(&line) {
                Ok(s) => s,
                Err(e) => return fail(EX_USAGE, &e),
            };
            let kind = match parse_kind(&register) {
                Ok(k) => k,
                Err(e) => return fail(EX_USAGE, &e),
            };
            eprintln!(
                "scanning unit ids {from}..={to} on {} (timeout {:?} each)",
                spec.controller, spec.timeout
            );
            match commission::scan(&spec, from, to, kind, address, |_| {}).await {
                Ok(hits) => {
                    for h in &hits {
                        match &h.exception {
                            None => println!("unit {:>3}: answers", h.slave),
                            Some(e) => println!(
                                "unit {:>3}: answers with exception {e} (a device is there)",
                                h.slave
                            ),
                        }
                    }
                    eprintln!("{} unit(s) found", hits.len());
                    ExitCode::SUCCESS
                }
                Err(e @ CommissionError::Usage(_)) => fail(EX_USAGE, &e.to_string()),
                Err(e) => fail(EX_UNAVAILABLE, &e.to_string()),
            }
        }
        ModbusCommand::Holes {
            device,
            forget,
            json,
            api,
        } => holes(device, forget, json, &api).await,
        ModbusCommand::Plan { config } => {
            let cfg = match crate::config::load_file(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(EX_CONFIG);
                }
            };
            let Ok(conns) =
                crate::sources::modbus::resolve(&cfg.sources.modbus, &cfg.sources.modbus_profiles)
            else {
                return fail(EX_CONFIG, "invalid Modbus configuration");
            };
            let db = cfg.store.resolved_path();
            // Holes learned by a running (or earlier) gateway, when its buffer exists.
            let mut learned = std::collections::HashMap::new();
            if let Ok(reader) = crate::store::Reader::open(&db) {
                for c in &conns {
                    for d in &c.devices {
                        let key = poller::holes_key(c, d);
                        if let Ok(Some(json)) = reader.state(&key).await {
                            learned.insert(
                                key,
                                serde_json::from_str::<Vec<planner::Hole>>(&json)
                                    .unwrap_or_default(),
                            );
                        }
                    }
                }
            }
            let out = commission::render_plan(&conns, |c, d| {
                learned
                    .get(&poller::holes_key(c, d))
                    .cloned()
                    .unwrap_or_default()
            });
            print!("{out}");
            if conns.is_empty() {
                eprintln!("no Modbus connections in {}", config.display());
            }
            ExitCode::SUCCESS
        }
    }
}

/// `markoff modbus holes`: through the running gateway's API.
async fn holes(device: Option<String>, forget: bool, json: bool, api: &ApiArgs) -> ExitCode {
    let client = match api.client() {
        Ok(c) => c,
        Err(e) => return fail(EX_USAGE, &e.to_string()),
    };
    let mut path = if forget {
        "/api/v1/modbus/holes/forget".to_owned()
    } else {
        "/api/v1/modbus/holes".to_owned()
    };
    if let Some(d) = &device {
        path.push_str("?device=");
        path.push_str(&url_escape(d));
    }
    let answer = if forget {
        client.post_json(&path, &serde_json::json!({})).await
    } else {
        client.raw(&path).await
    };
    let value = match answer {
        Ok(v) => v,
        Err(e @ ClientError::Status { status: 404, .. }) => return fail(EX_USAGE, &e.to_string()),
        // Refused: exit 1, as the alarm actions do.
        Err(
            e @ ClientError::Status {
                status: 401 | 403, ..
            },
        ) => return fail(1, &e.to_string()),
        Err(e) => return fail(EX_UNAVAILABLE, &e.to_string()),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    match serde_json::from_value::<Vec<crate::sources::modbus::holes::DeviceHoles>>(value) {
        Ok(list) => {
            print!("{}", crate::sources::modbus::holes::render(&list, forget));
            ExitCode::SUCCESS
        }
        Err(e) => fail(EX_UNAVAILABLE, &format!("unexpected answer: {e}")),
    }
}

/// Percent-encodes a device name for a query string.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
