//! Pure decoding of register words into values: every data type in every byte order.
//!
//! Byte orders use the four-letter notation of Telegraf and Neuron, where `A` is the most
//! significant byte of the value and the letters give the order on the wire:
//! `ABCD` big-endian; `CDAB` big-endian words in little-endian word order ("word swap", common on
//! energy meters); `BADC` bytes swapped inside each word; `DCBA` little-endian. For 64-bit values
//! the same rule extends to four words. For 16-bit values only the byte swap matters (`AB`, `BA`).
//! The 8-bit types take one byte of the 16-bit value read in that order: `L` the low byte, `H`
//! the high byte (with `ABCD` the second and the first byte on the wire), as Telegraf reads them.

use std::fmt;

use serde::Deserialize;

/// How a value is encoded in registers or bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DataType {
    /// Signed 8-bit: the low byte of a register.
    #[serde(rename = "INT8L")]
    Int8L,
    /// Signed 8-bit: the high byte of a register.
    #[serde(rename = "INT8H")]
    Int8H,
    /// Unsigned 8-bit: the low byte of a register.
    #[serde(rename = "UINT8L")]
    Uint8L,
    /// Unsigned 8-bit: the high byte of a register.
    #[serde(rename = "UINT8H")]
    Uint8H,
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
    /// IEEE 754 half precision (1 register).
    #[serde(alias = "FLOAT16-IEEE")]
    Float16,
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
            Self::Int8L
            | Self::Int8H
            | Self::Uint8L
            | Self::Uint8H
            | Self::Int16
            | Self::Uint16
            | Self::Float16
            | Self::Bit
            | Self::Bool => 1,
            Self::Int32 | Self::Uint32 | Self::Float32 => 2,
            Self::Int64 | Self::Uint64 | Self::Float64 => 4,
            Self::String => length.unwrap_or(1).max(1),
        }
    }

    /// Whether the type is a single bit.
    pub fn is_bit(self) -> bool {
        matches!(self, Self::Bit | Self::Bool)
    }

    /// Whether the type is IEEE 754 floating point.
    pub fn is_float(self) -> bool {
        matches!(self, Self::Float16 | Self::Float32 | Self::Float64)
    }

    /// The upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Int8L => "INT8L",
            Self::Int8H => "INT8H",
            Self::Uint8L => "UINT8L",
            Self::Uint8H => "UINT8H",
            Self::Int16 => "INT16",
            Self::Uint16 => "UINT16",
            Self::Int32 => "INT32",
            Self::Uint32 => "UINT32",
            Self::Int64 => "INT64",
            Self::Uint64 => "UINT64",
            Self::Float16 => "FLOAT16",
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
    #[serde(
        rename = "ABCD",
        alias = "AB",
        alias = "ABCDEFGH",
        alias = "MSW-BE",
        alias = "MSW",
        alias = "big"
    )]
    Abcd,
    /// Little-endian words, big-endian bytes ("word swap").
    #[serde(rename = "CDAB", alias = "GHEFCDAB", alias = "LSW-BE")]
    Cdab,
    /// Big-endian words, bytes swapped inside each word.
    #[serde(rename = "BADC", alias = "BA", alias = "BADCFEHG", alias = "MSW-LE")]
    Badc,
    /// Little-endian.
    #[serde(
        rename = "DCBA",
        alias = "HGFEDCBA",
        alias = "LSW-LE",
        alias = "LSW",
        alias = "little"
    )]
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
        DataType::Int8L | DataType::Int8H => {
            let byte = if data_type == DataType::Int8L {
                b[1]
            } else {
                b[0]
            };
            let v = i8::from_be_bytes([byte]);
            int(f64::from(v), u64::from(byte), i64::from(v))
        }
        DataType::Uint8L | DataType::Uint8H => {
            let v = if data_type == DataType::Uint8L {
                b[1]
            } else {
                b[0]
            };
            int(f64::from(v), u64::from(v), i64::from(v))
        }
        DataType::Float16 => Decoded::Number {
            value: f16_to_f64(u16::from_be_bytes([b[0], b[1]])),
            bits: None,
            signed: None,
        },
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

/// An IEEE 754 half-precision value (exact in f64).
pub fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exponent = i32::from((bits >> 10) & 0x1F);
    let fraction = f64::from(bits & 0x03FF);
    match exponent {
        0 => sign * fraction * 2f64.powi(-24),
        0x1F if fraction == 0.0 => sign * f64::INFINITY,
        0x1F => f64::NAN,
        e => sign * (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}

/// The half-precision bits nearest to `value` (ties to even, through f32; out of range gives
/// an infinity).
pub fn f64_to_f16(value: f64) -> u16 {
    let b = (value as f32).to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exponent = ((b >> 23) & 0xFF) as i32;
    let mantissa = b & 0x007F_FFFF;
    if exponent == 0xFF {
        return sign | 0x7C00 | if mantissa == 0 { 0 } else { 0x0200 };
    }
    let e = exponent - 127 + 15;
    if e >= 0x1F {
        return sign | 0x7C00;
    }
    let round = |value: u32, shift: u32| -> u32 {
        let half = 1u32 << (shift - 1);
        let rest = value & ((1u32 << shift) - 1);
        let mut r = value >> shift;
        if rest > half || (rest == half && r & 1 == 1) {
            r += 1;
        }
        r
    };
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        // Subnormal: the implicit 1 becomes explicit and the rest shifts out.
        let shift = u32::try_from(14 - e).unwrap_or(24);
        return sign | u16::try_from(round(mantissa | 0x0080_0000, shift)).unwrap_or(0x0400);
    }
    let e = u32::try_from(e).unwrap_or(0);
    // A carry out of the fraction moves into the exponent, up to the infinity: still right.
    sign | u16::try_from(round((e << 23) | mantissa, 13)).unwrap_or(0x7C00)
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
        DataType::Int8L => vec![0, value as i8 as u8],
        DataType::Int8H => vec![value as i8 as u8, 0],
        DataType::Uint8L => vec![0, value as u8],
        DataType::Uint8H => vec![value as u8, 0],
        DataType::Float16 => f64_to_f16(value).to_be_bytes().to_vec(),
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

    #[test]
    fn eight_bit_types_take_one_byte_of_the_ordered_register() {
        let n =
            |w: u16, t: DataType, o: ByteOrder| num(decode_words(&[w], t, o, None, None).unwrap());
        // 0x12FE on the wire: high byte 0x12, low byte 0xFE.
        assert_eq!(n(0x12FE, DataType::Int8H, ByteOrder::Abcd), 18.0);
        assert_eq!(n(0x12FE, DataType::Int8L, ByteOrder::Abcd), -2.0);
        assert_eq!(n(0x12FE, DataType::Uint8L, ByteOrder::Abcd), 254.0);
        assert_eq!(n(0x12FE, DataType::Uint8H, ByteOrder::Cdab), 18.0);
        // A byte swap makes the first wire byte the low one.
        assert_eq!(n(0x12FE, DataType::Int8L, ByteOrder::Dcba), 18.0);
        assert_eq!(n(0x12FE, DataType::Uint8H, ByteOrder::Badc), 254.0);
        let raw = decode_words(&[0x0080], DataType::Int8L, ByteOrder::Abcd, None, None).unwrap();
        assert_eq!(
            raw,
            Decoded::Number {
                value: -128.0,
                bits: Some(0x80),
                signed: Some(-128)
            }
        );
        for t in [
            DataType::Int8L,
            DataType::Int8H,
            DataType::Uint8L,
            DataType::Uint8H,
        ] {
            for order in ByteOrder::ALL {
                let v = if matches!(t, DataType::Int8L | DataType::Int8H) {
                    -100.0
                } else {
                    200.0
                };
                let words = encode(v, t, order);
                assert_eq!(num(decode_words(&words, t, order, None, None).unwrap()), v);
            }
        }
    }

    #[test]
    fn half_precision_both_ways() {
        let cases: [(u16, f64); 9] = [
            (0x3C00, 1.0),
            (0xC000, -2.0),
            (0x7BFF, 65504.0),
            (0x0400, 2f64.powi(-14)),
            (0x0001, 2f64.powi(-24)),
            (0x3555, 0.333_251_953_125),
            (0x0000, 0.0),
            (0x8000, -0.0),
            (0x7C00, f64::INFINITY),
        ];
        for (bits, v) in cases {
            assert_eq!(f16_to_f64(bits), v, "{bits:#06x}");
            assert_eq!(f64_to_f16(v), bits, "{v}");
        }
        assert!(f16_to_f64(0x7E00).is_nan());
        assert_eq!(f64_to_f16(0.1), 0x2E66, "ties and rounding to nearest");
        assert_eq!(f64_to_f16(1e6), 0x7C00, "out of range is an infinity");
        assert_eq!(
            f64_to_f16(1e-9),
            0x0000,
            "below the smallest subnormal is zero"
        );
        // Decoding goes through the byte order like any 16-bit value.
        assert_eq!(
            num(decode_words(&[0x003C], DataType::Float16, ByteOrder::Dcba, None, None).unwrap()),
            1.0
        );
        assert_eq!(encode(-2.0, DataType::Float16, ByteOrder::Badc), [0x00C0]);
    }
}
