//! One Telegraf Modbus field into one Markoff point: the register style's address lists and
//! FIXED/UFIXED types, the request and metric styles' typed fields.

use serde_json::Value;

use super::super::Notes;
use super::super::emit::{Point, clean_name};
use super::super::node::Node;
use super::string;
use crate::sources::modbus::config::RegisterKind;
use crate::sources::modbus::decode::{ByteOrder, DataType};

/// A field on its way to a device: the point and what its name must be unique against.
#[derive(Debug)]
pub(super) struct Field {
    /// The point (its name still the cleaned Telegraf name).
    pub(super) point: Point,
    /// Telegraf's measurement of the field (`modbus` unless set).
    pub(super) measurement: String,
    /// Where it came from, for notes.
    pub(super) place: String,
    /// The name as written in Telegraf.
    pub(super) original: String,
}

/// The register table of a Telegraf `register` value.
pub(super) fn register_kind(text: &str) -> Option<RegisterKind> {
    match text {
        "coil" => Some(RegisterKind::Coil),
        "discrete" => Some(RegisterKind::Discrete),
        "holding" => Some(RegisterKind::Holding),
        "input" => Some(RegisterKind::Input),
        _ => None,
    }
}

/// A Telegraf byte order (request/metric style names, and the register style's 2-, 4- and
/// 8-letter ones).
pub(super) fn byte_order(text: &str) -> Option<ByteOrder> {
    Some(match text {
        "ABCD" | "AB" | "ABCDEFGH" | "MSW-BE" | "MSW" => ByteOrder::Abcd,
        "CDAB" | "GHEFCDAB" | "LSW-BE" => ByteOrder::Cdab,
        "BADC" | "BA" | "BADCFEHG" | "MSW-LE" => ByteOrder::Badc,
        "DCBA" | "HGFEDCBA" | "LSW-LE" | "LSW" => ByteOrder::Dcba,
        _ => return None,
    })
}

/// A request/metric-style type name.
fn typed(text: &str) -> Option<DataType> {
    Some(match text {
        "INT8L" => DataType::Int8L,
        "INT8H" => DataType::Int8H,
        "UINT8L" => DataType::Uint8L,
        "UINT8H" => DataType::Uint8H,
        "INT16" => DataType::Int16,
        "UINT16" => DataType::Uint16,
        "INT32" => DataType::Int32,
        "UINT32" => DataType::Uint32,
        "INT64" => DataType::Int64,
        "UINT64" => DataType::Uint64,
        "FLOAT16" => DataType::Float16,
        "FLOAT32" => DataType::Float32,
        "FLOAT64" => DataType::Float64,
        "STRING" => DataType::String,
        "BIT" => DataType::Bit,
        _ => return None,
    })
}

/// The `bit` of a BIT field as Markoff counts it. Telegraf applies the byte order before taking
/// a bit; Markoff takes the bit of the register as read, so with a byte swap the same bit is 8
/// places away (reported).
fn bit_of(node: &Node<'_>, order: ByteOrder, notes: &mut Notes) -> u8 {
    let bit: u8 = node.uint("bit", notes).unwrap_or(0);
    if !matches!(order, ByteOrder::Badc | ByteOrder::Dcba) {
        return bit;
    }
    notes.changed(
        node.at("bit"),
        "bit",
        &Value::from(bit),
        &format!(
            "bit {} of the register as read: Telegraf counts bits after the {} byte swap",
            bit ^ 8,
            order.as_str()
        ),
    );
    bit ^ 8
}

/// The name of a field: cleaned, reported when it changed.
fn name_of(node: &Node<'_>, notes: &mut Notes) -> Option<(String, String)> {
    let Some(raw) = node.str("name", notes).filter(|n| !n.is_empty()) else {
        notes.dropped(
            node.place.clone(),
            "name",
            &Value::Null,
            "a field without a name (Telegraf refuses it too)",
        );
        return None;
    };
    Some((clean_name(raw, "field"), raw.to_owned()))
}

/// A request- or metric-style field on `register` with the byte order of its request.
pub(super) fn typed_field(
    node: &Node<'_>,
    register: RegisterKind,
    order: ByteOrder,
    measurement: &str,
    notes: &mut Notes,
) -> Option<Field> {
    if node.bool("omit", notes) == Some(true) {
        for key in node.keys() {
            node.consume(key);
        }
        notes.dropped(
            node.at("omit"),
            "omit",
            &Value::Bool(true),
            "an omitted field is not a point: nothing is stored for it here either; its \
             registers are read only when a merged read bridges them",
        );
        return None;
    }
    let (name, original) = name_of(node, notes)?;
    let address: u16 = node.uint("address", notes).or_else(|| {
        notes.dropped(node.place.clone(), "address", &Value::Null, "no address");
        None
    })?;
    let mut point = Point::new(name, register, address);
    let measurement = node
        .str("measurement", notes)
        .unwrap_or(measurement)
        .to_owned();
    if register.is_bits() {
        for key in ["type", "scale", "length", "bit"] {
            if node.has(key) {
                node.consume(key);
            }
        }
        if let Some(out) = node.str("output", notes)
            && !matches!(out, "UINT16" | "BOOL")
        {
            notes.dropped(
                node.at("output"),
                "output",
                &string(out),
                "not a bit output",
            );
        }
    } else {
        let Some(ty) = node.str("type", notes) else {
            notes.dropped(
                node.place.clone(),
                "type",
                &Value::Null,
                "no type: Telegraf needs one for holding and input registers",
            );
            return None;
        };
        let Some(data_type) = typed(ty) else {
            notes.dropped(node.at("type"), "type", &string(ty), "not a Telegraf type");
            return None;
        };
        point.data_type = data_type;
        match data_type {
            DataType::String => {
                let length: u16 = node.uint("length", notes).filter(|l: &u16| *l > 0)?;
                point.length = Some(length);
                point.byte_order = (order != ByteOrder::Abcd).then_some(order);
            }
            DataType::Bit => point.bit = Some(bit_of(node, order, notes)),
            _ => point.byte_order = (order != ByteOrder::Abcd).then_some(order),
        }
        if let Some(scale) = node.f64("scale", notes).filter(|s| *s != 0.0) {
            point.scale = scale;
            if let Some(out @ ("INT64" | "UINT64")) = node.str("output", notes) {
                notes.changed(
                    node.at("output"),
                    "output",
                    &string(out),
                    "Telegraf truncates the scaled value to a whole number; readings here keep \
                     the decimals of the scale",
                );
            }
        }
        if let Some(out) = node.str("output", notes)
            && !matches!(out, "INT64" | "UINT64" | "FLOAT64" | "STRING" | "native")
        {
            notes.dropped(
                node.at("output"),
                "output",
                &string(out),
                "not a Telegraf output",
            );
        }
    }
    node.finish(notes, "not a key of a Telegraf Modbus field");
    Some(Field {
        point,
        measurement,
        place: node.place.clone(),
        original,
    })
}

/// A register-style field of `register` (`coils`, `holding_registers`, ...).
pub(super) fn register_field(
    node: &Node<'_>,
    register: RegisterKind,
    notes: &mut Notes,
) -> Option<Field> {
    let (name, original) = name_of(node, notes)?;
    let measurement = node
        .str("measurement", notes)
        .unwrap_or("modbus")
        .to_owned();
    let addresses: Vec<u16> = match node.get("address") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_u64().and_then(|n| u16::try_from(n).ok()))
            .collect::<Option<Vec<u16>>>()
            .unwrap_or_default(),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    let consecutive = addresses.windows(2).all(|w| w[1] == w[0].wrapping_add(1));
    if addresses.is_empty() || !consecutive {
        notes.dropped(
            node.at("address"),
            "address",
            node.get("address").unwrap_or(&Value::Null),
            "expected a list of consecutive register addresses (Telegraf refuses it too)",
        );
        return None;
    }
    let words = addresses.len();
    let mut point = Point::new(name, register, addresses[0]);
    let data_type = node.str("data_type", notes).unwrap_or_default();
    if register.is_bits() {
        if !matches!(data_type, "" | "UINT16" | "BOOL") {
            notes.dropped(
                node.at("data_type"),
                "data_type",
                &string(data_type),
                "not a bit type",
            );
        }
        node.finish(notes, "not a key of a Telegraf register-style field");
        return Some(Field {
            point,
            measurement,
            place: node.place.clone(),
            original,
        });
    }
    let order_text = node.str("byte_order", notes).unwrap_or("ABCD");
    let Some(order) = byte_order(order_text) else {
        notes.dropped(
            node.at("byte_order"),
            "byte_order",
            &string(order_text),
            "not a byte order",
        );
        return None;
    };
    let sized = |ty: [DataType; 3]| match words {
        1 => Some(ty[0]),
        2 => Some(ty[1]),
        4 => Some(ty[2]),
        _ => None,
    };
    let resolved = match data_type {
        "FIXED" => sized([DataType::Int16, DataType::Int32, DataType::Int64]),
        "UFIXED" | "FLOAT32" => sized([DataType::Uint16, DataType::Uint32, DataType::Uint64]),
        "FLOAT16-IEEE" => Some(DataType::Float16),
        "FLOAT32-IEEE" => Some(DataType::Float32),
        "FLOAT64-IEEE" => Some(DataType::Float64),
        other => typed(other),
    };
    let Some(resolved) = resolved else {
        notes.dropped(
            node.at("data_type"),
            "data_type",
            &string(data_type),
            &format!("not a register-style type for {words} register(s)"),
        );
        return None;
    };
    if data_type == "FLOAT32" {
        notes.changed(
            node.at("data_type"),
            "data_type",
            &string(data_type),
            &format!(
                "the register style's FLOAT32 is an unsigned scaled integer (UFIXED), not an \
                 IEEE float: {} with the scale",
                resolved.as_str()
            ),
        );
    }
    point.data_type = resolved;
    match resolved {
        DataType::String => {
            point.length = u16::try_from(words).ok();
            point.byte_order = (order != ByteOrder::Abcd).then_some(order);
            node.consume("scale");
        }
        DataType::Bit => {
            point.bit = Some(bit_of(node, order, notes));
            node.consume("scale");
        }
        _ => {
            if usize::from(resolved.words(None)) != words {
                notes.dropped(
                    node.at("address"),
                    "address",
                    node.get("address").unwrap_or(&Value::Null),
                    &format!(
                        "{} takes {} register(s)",
                        resolved.as_str(),
                        resolved.words(None)
                    ),
                );
                return None;
            }
            point.byte_order = (order != ByteOrder::Abcd).then_some(order);
            match node.f64("scale", notes) {
                Some(s) if s != 0.0 => point.scale = s,
                _ => notes.changed(
                    node.at("scale"),
                    "scale",
                    node.get("scale").unwrap_or(&Value::Null),
                    "Telegraf's register style needs a non-zero scale; 1.0 here",
                ),
            }
        }
    }
    node.finish(notes, "not a key of a Telegraf register-style field");
    Some(Field {
        point,
        measurement,
        place: node.place.clone(),
        original,
    })
}
