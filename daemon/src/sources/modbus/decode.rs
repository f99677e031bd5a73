//! Pure decoding of register words into values: every data type in every byte order.
//!
//! Byte orders use the four-letter notation of Telegraf and Neuron, where `A` is the most
//! significant byte of the value and the letters give the order on the wire:
//! `ABCD` big-endian; `CDAB` big-endian words in little-endian word order ("word swap", common on
//! energy meters); `BADC` bytes swapped inside each word; `DCBA` little-endian. For 64-bit values
//! the same rule extends to four words. For 16-bit values only the byte swap matters (`AB`, `BA`).

use std::fmt;

use serde::Deserialize;

/// How a value is encoded in registers or bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DataType {
    /// Signed 16-bit.
    Int16,
    /// Unsigned 16-bit.
    Uint16,
    /// Signed 32-bit (2 registers).
    Int32,
    /// Unsigned 32-bit.
    Uint32,
    /// Signed 64-bit (4 registers).
    Int64,
    /// Unsigned 64-bit.
    Uint64,
    /// IEEE 754 single (2 registers).
    #[serde(alias = "FLOAT32-IEEE", alias = "FLOAT")]
    Float32,
    /// IEEE 754 double (4 registers).
    #[serde(alias = "FLOAT64-IEEE", alias = "DOUBLE")]
    Float64,
    /// One coil or discrete input, or one bit of a register (with `bit`).
    Bit,
    /// Same as BIT.
    Bool,
    /// ASCII text, two characters per register (`length` registers).
    String,
}

impl DataType {
    /// Registers taken by one value (STRING: `length`); bits count as one.
    pub fn words(self, length: Option<u16>) -> u16 {
        match self {
            Self::Int16 | Self::Uint16 | Self::Bit | Self::Bool => 1,
            Self::Int32 | Self::Uint32 | Self::Float32 => 2,
            Self::Int64 | Self::Uint64 | Self::Float64 => 4,
            Self::String => length.unwrap_or(1).max(1),
        }
    }

    /// Whether the type is a single bit.
    pub fn is_bit(self) -> bool {
        matches!(self, Self::Bit | Self::Bool)
    }

    /// The upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Int16 => "INT16",
            Self::Uint16 => "UINT16",
            Self::Int32 => "INT32",
            Self::Uint32 => "UINT32",
            Self::Int64 => "INT64",
            Self::Uint64 => "UINT64",
            Self::Float32 => "FLOAT32",
            Self::Float64 => "FLOAT64",
            Self::Bit => "BIT",
            Self::Bool => "BOOL",
            Self::String => "STRING",
        }
    }
}

/// Order of bytes and words of a multi-byte value on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Deserialize, serde::Serialize)]
pub enum ByteOrder {
    /// Big-endian (Modbus standard).
    #[default]
    #[serde(rename = "ABCD", alias = "AB", alias = "ABCDEFGH", alias = "big")]
    Abcd,
    /// Little-endian words, big-endian bytes ("word swap").
    #[serde(rename = "CDAB", alias = "GHEFCDAB")]
    Cdab,
    /// Big-endian words, bytes swapped inside each word.
    #[serde(rename = "BADC", alias = "BA", alias = "BADCFEHG")]
    Badc,
    /// Little-endian.
    #[serde(rename = "DCBA", alias = "HGFEDCBA", alias = "little")]
    Dcba,
}

impl ByteOrder {
    /// Every order.
    pub const ALL: [ByteOrder; 4] = [Self::Abcd, Self::Cdab, Self::Badc, Self::Dcba];

    /// The four-letter name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Abcd => "ABCD",
            Self::Cdab => "CDAB",
            Self::Badc => "BADC",
            Self::Dcba => "DCBA",
        }
    }

    fn swaps_words(self) -> bool {
        matches!(self, Self::Cdab | Self::Dcba)
    }

    fn swaps_bytes(self) -> bool {
        matches!(self, Self::Badc | Self::Dcba)
    }
}

impl fmt::Display for ByteOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded value.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// A number, with the raw integer bits (for `nan_value` checks) when the type is an integer.
    Number {
        /// The value before scale/offset.
        value: f64,
        /// Raw bits for integer types, masked to the type width.
        bits: Option<u64>,
        /// Raw value as signed, for integer types.
        signed: Option<i64>,
    },
    /// Text of a STRING point.
    Text(String),
}

/// Why words could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer words than the type needs.
    #[error("{data_type} needs {needed} registers, got {got}")]
    Short {
        /// Type.
        data_type: &'static str,
        /// Needed.
        needed: usize,
        /// Got.
        got: usize,
    },
    /// A bit index beyond 15.
    #[error("bit {0} is outside a 16-bit register")]
    BitOutOfRange(u8),
}

/// The value's bytes, most significant first, from registers in wire order.
pub fn canonical_bytes(words: &[u16], order: ByteOrder) -> Vec<u8> {
    let mut ws: Vec<u16> = words.to_vec();
    if order.swaps_words() {
        ws.reverse();
    }
    let mut out = Vec::with_capacity(ws.len() * 2);
    for w in ws {
        let [hi, lo] = w.to_be_bytes();
        if order.swaps_bytes() {
            out.extend([lo, hi]);
        } else {
            out.extend([hi, lo]);
        }
    }
    out
}

/// Decodes a register-based value. `words` must start at the value's first register.
///
/// # Errors
/// Too few words, or a bit index out of range.
pub fn decode_words(
    words: &[u16],
    data_type: DataType,
    order: ByteOrder,
    bit: Option<u8>,
    length: Option<u16>,
) -> Result<Decoded, DecodeError> {
    let needed = usize::from(data_type.words(length));
    let words = words.get(..needed).ok_or(DecodeError::Short {
        data_type: data_type.as_str(),
        needed,
        got: words.len(),
    })?;
    if let Some(b) = bit {
        if b > 15 {
            return Err(DecodeError::BitOutOfRange(b));
        }
        let v = (words[0] >> b) & 1;
        return Ok(int(f64::from(v), u64::from(v), i64::from(v)));
    }
    if data_type == DataType::String {
        // Text is byte-ordered per register only; word order does not apply to characters.
        let bytes: Vec<u8> = words
            .iter()
            .flat_map(|w| {
                let [hi, lo] = w.to_be_bytes();
                if order.swaps_bytes() {
                    [lo, hi]
                } else {
                    [hi, lo]
                }
            })
            .collect();
        let text: String = bytes.iter().map(|&b| char::from(b)).collect();
        return Ok(Decoded::Text(text.trim_end_matches(['\0', ' ']).to_owned()));
    }
    let b = canonical_bytes(words, order);
    Ok(match data_type {
        DataType::Int16 => {
            let v = i16::from_be_bytes([b[0], b[1]]);
            int(f64::from(v), u64::from(v as u16), i64::from(v))
        }
        DataType::Uint16 | DataType::Bit | DataType::Bool => {
            let v = u16::from_be_bytes([b[0], b[1]]);
            int(f64::from(v), u64::from(v), i64::from(v))
        }
        DataType::Int32 => {
            let v = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            int(f64::from(v), u64::from(v as u32), i64::from(v))
        }
        DataType::Uint32 => {
            let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            int(f64::from(v), u64::from(v), i64::from(v))
        }
        DataType::Int64 => {
            let v = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            int(v as f64, v as u64, v)
        }
        DataType::Uint64 => {
            let v = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            int(v as f64, v, v as i64)
        }
        DataType::Float32 => {
            let v = f32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            Decoded::Number {
                value: f64::from(v),
                bits: None,
                signed: None,
            }
        }
        DataType::Float64 => {
            let v = f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            Decoded::Number {
                value: v,
                bits: None,
                signed: None,
            }
        }
        DataType::String => unreachable!("handled above"),
    })
}

fn int(value: f64, bits: u64, signed: i64) -> Decoded {
    Decoded::Number {
        value,
        bits: Some(bits),
        signed: Some(signed),
    }
}

/// Encodes a value into registers in wire order (the inverse of [`decode_words`]); used by the
/// simulated devices and the commissioning tests.
pub fn encode(value: f64, data_type: DataType, order: ByteOrder) -> Vec<u16> {
    let be: Vec<u8> = match data_type {
        DataType::Int16 => (value as i16).to_be_bytes().to_vec(),
        DataType::Uint16 | DataType::Bit | DataType::Bool | DataType::String => {
            (value as u16).to_be_bytes().to_vec()
        }
        DataType::Int32 => (value as i32).to_be_bytes().to_vec(),
        DataType::Uint32 => (value as u32).to_be_bytes().to_vec(),
        DataType::Int64 => (value as i64).to_be_bytes().to_vec(),
        DataType::Uint64 => (value as u64).to_be_bytes().to_vec(),
        DataType::Float32 => (value as f32).to_be_bytes().to_vec(),
        DataType::Float64 => value.to_be_bytes().to_vec(),
    };
    encode_bytes(&be, order)
}

/// Puts a value's big-endian bytes (`A` first) into registers in wire order.
pub fn encode_bytes(be: &[u8], order: ByteOrder) -> Vec<u16> {
    let mut words: Vec<u16> = be
        .chunks(2)
        .map(|c| {
            if order.swaps_bytes() {
                u16::from_be_bytes([c[1], c[0]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        })
        .collect();
    if order.swaps_words() {
        words.reverse();
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(d: Decoded) -> f64 {
        match d {
            Decoded::Number { value, .. } => value,
            Decoded::Text(t) => panic!("text {t}"),
        }
    }

    #[test]
    fn float32_in_all_orders() {
        // 123.456f32 = 0x42F6E979: A=42 B=F6 C=E9 D=79.
        let cases = [
            (ByteOrder::Abcd, [0x42F6, 0xE979]),
            (ByteOrder::Cdab, [0xE979, 0x42F6]),
            (ByteOrder::Badc, [0xF642, 0x79E9]),
            (ByteOrder::Dcba, [0x79E9, 0xF642]),
        ];
        for (order, words) in cases {
            let v = num(decode_words(&words, DataType::Float32, order, None, None).unwrap());
            assert!((v - 123.456).abs() < 1e-4, "{order}: {v}");
            assert_eq!(encode(123.456, DataType::Float32, order), words, "{order}");
        }
    }

    #[test]
    fn int64_word_order_extends_to_four_words() {
        let v: i64 = -0x0102_0304_0506_0708;
        for order in ByteOrder::ALL {
            let words = encode_bytes(&v.to_be_bytes(), order);
            assert_eq!(words.len(), 4);
            let back = decode_words(&words, DataType::Int64, order, None, None).unwrap();
            assert_eq!(
                back,
                Decoded::Number {
                    value: v as f64,
                    bits: Some(v as u64),
                    signed: Some(v)
                },
                "{order}"
            );
        }
        // CDAB on 64 bits: least significant word first.
        assert_eq!(encode(1.0, DataType::Uint64, ByteOrder::Cdab), [1, 0, 0, 0]);
    }

    #[test]
    fn sixteen_bit_types_only_swap_bytes() {
        assert_eq!(
            num(decode_words(&[0xFF38], DataType::Int16, ByteOrder::Abcd, None, None).unwrap()),
            -200.0
        );
        assert_eq!(
            num(decode_words(&[0xFF38], DataType::Int16, ByteOrder::Cdab, None, None).unwrap()),
            -200.0
        );
        assert_eq!(
            num(decode_words(&[0x38FF], DataType::Int16, ByteOrder::Badc, None, None).unwrap()),
            -200.0
        );
        let raw = decode_words(&[0x8000], DataType::Int16, ByteOrder::Abcd, None, None).unwrap();
        assert_eq!(
            raw,
            Decoded::Number {
                value: -32768.0,
                bits: Some(0x8000),
                signed: Some(-32768)
            }
        );
    }

    #[test]
    fn bits_strings_and_short_input() {
        assert_eq!(
            num(decode_words(&[0b1010], DataType::Uint16, ByteOrder::Abcd, Some(1), None).unwrap()),
            1.0
        );
        assert_eq!(
            num(decode_words(&[0b1010], DataType::Uint16, ByteOrder::Abcd, Some(2), None).unwrap()),
            0.0
        );
        assert!(decode_words(&[1], DataType::Uint16, ByteOrder::Abcd, Some(16), None).is_err());
        let text = decode_words(
            &[0x5344, 0x4D36, 0x3330, 0],
            DataType::String,
            ByteOrder::Abcd,
            None,
            Some(4),
        )
        .unwrap();
        assert_eq!(text, Decoded::Text("SDM630".into()));
        let swapped = decode_words(
            &[0x4453, 0x364D],
            DataType::String,
            ByteOrder::Badc,
            None,
            Some(2),
        )
        .unwrap();
        assert_eq!(swapped, Decoded::Text("SDM6".into()));
        assert!(matches!(
            decode_words(&[1], DataType::Float32, ByteOrder::Abcd, None, None),
            Err(DecodeError::Short { .. })
        ));
    }
}
