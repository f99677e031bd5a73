//! What one point's read becomes: the words taken out of a block, decoded into a value with a
//! quality (sentinels, failures and out-of-range values never become numbers), and whether it
//! is stored (report by exception).

use tokio::time::Instant;
use tokio_modbus::ExceptionCode;

use crate::model::Quality;
use crate::sources::modbus::Point;
use crate::sources::modbus::decode::{DataType, Decoded, decode_words};
use crate::sources::modbus::link::ReadData;
use crate::sources::modbus::planner::Block;

/// Per-point report-by-exception state.
#[derive(Clone, Debug, Default)]
pub(super) struct Report {
    value: Option<f64>,
    pub(super) quality: Option<Quality>,
    stored_at: Option<Instant>,
}

/// What happened to one point in a cycle.
pub(super) enum Outcome {
    Data(Decoded),
    Rejected(ExceptionCode),
    NoAnswer,
}

pub(super) fn extract(point: &Point, block: &Block, data: &ReadData) -> Outcome {
    let offset = usize::from(point.address - block.start);
    match data {
        ReadData::Words(words) => match words.get(offset..) {
            Some(ws) => match decode_words(
                ws,
                point.data_type,
                point.byte_order,
                point.bit,
                point.length,
            ) {
                Ok(d) => Outcome::Data(d),
                Err(_) => Outcome::Rejected(ExceptionCode::IllegalDataValue),
            },
            None => Outcome::Rejected(ExceptionCode::IllegalDataValue),
        },
        ReadData::Bits(bits) => match bits.get(offset) {
            Some(b) => {
                let v = u8::from(*b);
                Outcome::Data(Decoded::Number {
                    value: f64::from(v),
                    bits: Some(u64::from(v)),
                    signed: Some(i64::from(v)),
                })
            }
            None => Outcome::Rejected(ExceptionCode::IllegalDataValue),
        },
    }
}

pub(super) enum Converted {
    Value(Option<f64>, Quality),
    Text(String),
}

/// Applies sentinel, scale/offset and plausibility to a decoded value.
pub(super) fn convert(point: &Point, outcome: Outcome) -> Converted {
    match outcome {
        Outcome::NoAnswer => Converted::Value(None, Quality::CommError),
        Outcome::Rejected(_) => Converted::Value(None, Quality::Bad),
        Outcome::Data(Decoded::Text(t)) => Converted::Text(t),
        Outcome::Data(Decoded::Number {
            value,
            bits,
            signed,
        }) => {
            if point.data_type == DataType::String {
                return Converted::Value(None, Quality::Bad);
            }
            if let Some(nan) = point.nan_value {
                let width_mask = match point.words() {
                    1 => 0xFFFF,
                    2 => 0xFFFF_FFFF,
                    _ => u64::MAX,
                };
                let hit =
                    signed == Some(nan) || bits.is_some_and(|b| b == (nan as u64) & width_mask);
                if hit {
                    return Converted::Value(None, Quality::Bad);
                }
            }
            if !value.is_finite() {
                return Converted::Value(None, Quality::Bad);
            }
            let v = precise(point, value * point.scale + point.offset);
            let out_of_range = point.min_value.is_some_and(|lo| v < lo)
                || point.max_value.is_some_and(|hi| v > hi);
            if out_of_range {
                Converted::Value(None, Quality::Bad)
            } else {
                Converted::Value(Some(v), Quality::Good)
            }
        }
    }
}

/// Drops digits the device never had: FLOAT32 values keep the shortest decimal that is the
/// same f32, scaled integers keep the decimals of their scale and offset.
pub(super) fn precise(point: &Point, v: f64) -> f64 {
    match point.data_type {
        DataType::Float32 if point.scale == 1.0 && point.offset == 0.0 => {
            format!("{}", v as f32).parse().unwrap_or(v)
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => v,
        _ => {
            let decimals = |x: f64| -> i32 {
                let mut d = 0;
                while d < 9 && ((x * 10f64.powi(d)).round() - x * 10f64.powi(d)).abs() > 1e-9 {
                    d += 1;
                }
                d
            };
            let d = decimals(point.scale).max(decimals(point.offset));
            let f = 10f64.powi(d);
            (v * f).round() / f
        }
    }
}

/// Report by exception: store on quality change, on a move beyond the deadband, or after
/// `max_silence`; a repeated failure is stored again only after `max_silence`.
pub(super) fn should_store(
    r: &mut Report,
    point: &Point,
    value: Option<f64>,
    quality: Quality,
    now: Instant,
) -> bool {
    let silent_too_long = r
        .stored_at
        .is_none_or(|t| now.duration_since(t) >= point.max_silence);
    let store = if r.quality != Some(quality) || silent_too_long {
        true
    } else if quality != Quality::Good {
        false
    } else {
        match (point.deadband, value, r.value) {
            (Some(db), Some(v), Some(last)) => (v - last).abs() > db,
            _ => true,
        }
    };
    if store {
        r.value = value;
        r.quality = Some(quality);
        r.stored_at = Some(now);
    }
    store
}
