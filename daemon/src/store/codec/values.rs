//! Values as the columns store them: decimal numbers as integers, everything else bit-exact.
//!
//! A sensor's values are nearly always decimal numbers of a fixed resolution (21.37 °C, 612 ppm,
//! 152,340.5 kWh): `m / 10^e` for a small integer `m`. Such a value is stored as `m`, and in a
//! sensor's own sequence as the difference from the previous `m`, which takes a few bits. A value
//! that is not exactly `m / 10^e` (-0.0, NaN with any payload, infinities, 1e300, results of
//! float arithmetic, FLOAT32 registers widened to f64) is stored bit-exact, so every f64 bit
//! pattern comes back as it went in.
//!
//! Owns: the decimal test, the per-sequence value column and the standalone value token.

use super::bits::{BitReader, BitWriter, unzigzag, zigzag};
use super::{CodecError, runs};

/// Largest decimal exponent tried: 10^-9 resolution.
pub(crate) const MAX_EXP: u8 = 9;
/// Largest |m| stored as a decimal: every integer up to 2^53 is exact in an f64.
const MAX_MANTISSA: i64 = 1 << 53;

const POW10: [f64; (MAX_EXP + 1) as usize] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// `v` as `m / 10^e` with the smallest `e`, if it is exactly that.
pub(crate) fn decimal(v: f64) -> Option<(u8, i64)> {
    (0..=MAX_EXP).find_map(|e| at_exp(v, e).map(|m| (e, m)))
}

/// `m` such that `m / 10^e` is bit-for-bit `v`.
pub(crate) fn at_exp(v: f64, e: u8) -> Option<i64> {
    let p = POW10[usize::from(e)];
    let scaled = (v * p).round();
    if scaled.is_nan() || scaled.abs() > MAX_MANTISSA as f64 {
        return None;
    }
    let m = scaled as i64;
    (from_decimal(m, e).to_bits() == v.to_bits()).then_some(m)
}

/// The value `m / 10^e`.
pub(crate) fn from_decimal(m: i64, e: u8) -> f64 {
    m as f64 / POW10[usize::from(e.min(MAX_EXP))]
}

/// How the values of one sequence are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `m` at a fixed exponent, as differences; other values bit-exact.
    Decimal(u8),
    /// XOR with the previous value's bits, as in Gorilla.
    Xor,
}

impl Mode {
    fn tag(self) -> u64 {
        match self {
            Self::Decimal(e) => u64::from(e),
            Self::Xor => 15,
        }
    }

    fn from_tag(t: u64) -> Result<Self, CodecError> {
        match t {
            0..=9 => Ok(Self::Decimal(t as u8)),
            15 => Ok(Self::Xor),
            _ => Err(CodecError::Corrupt("value mode")),
        }
    }
}

/// Picks the mode for a sensor's present values: the smallest exponent that holds at least
/// 7/8 of them, or XOR when no exponent does.
fn choose(values: &[f64]) -> Mode {
    if values.is_empty() {
        return Mode::Decimal(0);
    }
    let mut per_exp = [0usize; (MAX_EXP + 1) as usize];
    for &v in values {
        if let Some((e, _)) = decimal(v) {
            per_exp[usize::from(e)] += 1;
        }
    }
    let mut covered = 0;
    for (e, n) in per_exp.iter().enumerate() {
        covered += n;
        if covered * 8 >= values.len() * 7 {
            return Mode::Decimal(e as u8);
        }
    }
    Mode::Xor
}

/// Writes a sequence of present values (one sensor's, in order).
pub(crate) fn put_sequence(w: &mut BitWriter, values: &[f64]) {
    let mode = choose(values);
    w.put(mode.tag(), 4);
    match mode {
        Mode::Decimal(e) => {
            let mantissas: Vec<Option<i64>> = values.iter().map(|&v| at_exp(v, e)).collect();
            runs::put_flag_runs(w, mantissas.iter().map(Option::is_none));
            let mut prev: i64 = 0;
            let deltas: Vec<u64> = mantissas
                .iter()
                .flatten()
                .map(|&m| {
                    let d = zigzag(m.wrapping_sub(prev));
                    prev = m;
                    d
                })
                .collect();
            w.rice_column(&deltas);
            for (v, m) in values.iter().zip(&mantissas) {
                if m.is_none() {
                    w.put(v.to_bits(), 64);
                }
            }
        }
        Mode::Xor => {
            let mut prev: u64 = 0;
            for &v in values {
                put_xor(w, v.to_bits() ^ prev);
                prev = v.to_bits();
            }
        }
    }
}

/// Reads `n` values written by [`put_sequence`] into `out`.
pub(crate) fn get_sequence(
    r: &mut BitReader<'_>,
    n: usize,
    out: &mut Vec<f64>,
) -> Result<(), CodecError> {
    let mode = Mode::from_tag(r.get(4)?)?;
    if n > r.remaining() {
        return Err(CodecError::Truncated);
    }
    match mode {
        Mode::Decimal(e) => {
            let raw = runs::get_flag_runs(r, n)?;
            let decimals = raw.iter().filter(|x| !**x).count();
            let mut deltas = Vec::new();
            r.rice_column(decimals, &mut deltas)?;
            let mut deltas = deltas.into_iter();
            let mut prev: i64 = 0;
            out.reserve(n);
            for is_raw in raw {
                if is_raw {
                    out.push(f64::from_bits(r.get(64)?));
                } else {
                    let d = deltas.next().ok_or(CodecError::Truncated)?;
                    prev = prev.wrapping_add(unzigzag(d));
                    out.push(from_decimal(prev, e));
                }
            }
        }
        Mode::Xor => {
            let mut prev: u64 = 0;
            for _ in 0..n {
                prev ^= get_xor(r)?;
                out.push(f64::from_bits(prev));
            }
        }
    }
    Ok(())
}

/// An XOR of two values' bits: `0` when equal, else `1`, 6 bits of leading zeros, 6 bits of
/// length - 1, and the meaningful bits.
fn put_xor(w: &mut BitWriter, x: u64) {
    if x == 0 {
        w.bit(false);
        return;
    }
    let lead = x.leading_zeros();
    let trail = x.trailing_zeros();
    let len = 64 - lead - trail;
    w.bit(true);
    w.put(u64::from(lead), 6);
    w.put(u64::from(len - 1), 6);
    w.put(x >> trail, len);
}

fn get_xor(r: &mut BitReader<'_>) -> Result<u64, CodecError> {
    if !r.bit()? {
        return Ok(0);
    }
    let lead = r.get(6)? as u32;
    let len = r.get(6)? as u32 + 1;
    if lead + len > 64 {
        return Err(CodecError::Corrupt("xor window"));
    }
    let bits = r.get(len)?;
    Ok(bits << (64 - lead - len))
}

/// One value on its own (in a commit batch, where neighbours are other sensors' values):
/// `0` + 4-bit exponent + the mantissa in the residual code, or `1` + the 64 bits.
pub(crate) fn put_token(w: &mut BitWriter, v: f64) {
    match decimal(v) {
        Some((e, m)) => {
            w.bit(false);
            w.put(u64::from(e), 4);
            w.residual(m);
        }
        None => {
            w.bit(true);
            w.put(v.to_bits(), 64);
        }
    }
}

pub(crate) fn get_token(r: &mut BitReader<'_>) -> Result<f64, CodecError> {
    if r.bit()? {
        return Ok(f64::from_bits(r.get(64)?));
    }
    let e = r.get(4)?;
    if e > u64::from(MAX_EXP) {
        return Err(CodecError::Corrupt("value exponent"));
    }
    Ok(from_decimal(r.residual()?, e as u8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimals_are_found() {
        assert_eq!(decimal(21.37), Some((2, 2137)));
        assert_eq!(decimal(612.0), Some((0, 612)));
        assert_eq!(decimal(-0.5), Some((1, -5)));
        assert_eq!(decimal(152_340.5), Some((1, 1_523_405)));
        assert_eq!(decimal(0.0), Some((0, 0)));
        assert_eq!(decimal(-0.0), None);
        assert_eq!(decimal(f64::NAN), None);
        assert_eq!(decimal(f64::INFINITY), None);
        assert_eq!(decimal(1e300), None);
        assert_eq!(decimal(0.1 + 0.2), None);
        assert_eq!(decimal(f64::from(21.37_f32)), None);
    }

    fn seq_round_trip(values: &[f64]) -> Vec<f64> {
        let mut w = BitWriter::default();
        put_sequence(&mut w, values);
        let bytes = w.finish();
        let mut out = Vec::new();
        get_sequence(&mut BitReader::new(&bytes), values.len(), &mut out).unwrap();
        out
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    proptest! {
        #[test]
        fn any_bit_pattern_round_trips(raw in proptest::collection::vec(any::<u64>(), 0..100)) {
            let values: Vec<f64> = raw.iter().map(|&b| f64::from_bits(b)).collect();
            prop_assert_eq!(bits(&seq_round_trip(&values)), raw.clone());
            let mut w = BitWriter::default();
            for &v in &values {
                put_token(&mut w, v);
            }
            let bytes = w.finish();
            let mut r = BitReader::new(&bytes);
            for &b in &raw {
                prop_assert_eq!(get_token(&mut r).unwrap().to_bits(), b);
            }
        }

        #[test]
        fn decimal_sequences_round_trip(ms in proptest::collection::vec(-1_000_000_000i64..1_000_000_000, 0..200), e in 0u8..=MAX_EXP, specials in proptest::collection::vec(prop_oneof![Just(-0.0), Just(f64::NAN), Just(f64::from_bits(0x7ff8_dead_beef_0001)), Just(f64::NEG_INFINITY), Just(5e-324)], 0..5)) {
            let mut values: Vec<f64> = ms.iter().map(|&m| from_decimal(m, e)).collect();
            for (i, s) in specials.iter().enumerate() {
                let at = (i * 37) % (values.len() + 1);
                values.insert(at, *s);
            }
            prop_assert_eq!(bits(&seq_round_trip(&values)), bits(&values));
        }
    }

    #[test]
    fn a_slow_temperature_takes_a_few_bits_per_value() {
        let values: Vec<f64> = (0..600)
            .map(|i| from_decimal(2100 + (i % 7) - 3, 2))
            .collect();
        let mut w = BitWriter::default();
        put_sequence(&mut w, &values);
        let bytes = w.finish();
        assert!(bytes.len() < 600, "{} bytes", bytes.len());
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        assert!(get_sequence(&mut BitReader::new(&[0xc0]), 3, &mut out).is_err());
        assert!(get_sequence(&mut BitReader::new(&[0xf8, 0xff, 0xff]), 3, &mut out).is_err());
        assert!(get_token(&mut BitReader::new(&[0x7f, 0xff])).is_err());
    }
}
