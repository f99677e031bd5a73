//! A bit stream, most significant bit first, and the variable-length integer codes the columns
//! are written with.
//!
//! Owns: bit packing and the three integer codes (a prefix-class code for residuals that are
//! mostly small, Elias-gamma-like lengths, raw fixed-width fields). Does not own: what the
//! integers mean (see `values`, `batch`, `chunk`).

use super::CodecError;

/// Appends bits to a byte vector.
#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    out: Vec<u8>,
    /// Bits not yet flushed to `out`, left-aligned in the low `fill` bits.
    acc: u64,
    fill: u32,
}

impl BitWriter {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            out: Vec::with_capacity(bytes),
            acc: 0,
            fill: 0,
        }
    }

    /// Writes the low `n` bits of `v` (`n` ≤ 64).
    pub(crate) fn put(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 64);
        if n == 0 {
            return;
        }
        let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
        let room = 64 - self.fill;
        if n <= room {
            self.acc = if n == 64 { v } else { (self.acc << n) | v };
            self.fill += n;
        } else {
            // Fill the accumulator, flush it, keep the rest.
            let rest = n - room;
            let head = v >> rest;
            self.acc = if room == 64 {
                head
            } else {
                (self.acc << room) | head
            };
            self.out.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = v & ((1u64 << rest) - 1);
            self.fill = rest;
            return;
        }
        if self.fill == 64 {
            self.out.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = 0;
            self.fill = 0;
        }
    }

    pub(crate) fn bit(&mut self, b: bool) {
        self.put(u64::from(b), 1);
    }

    /// The bytes written, the last one padded with zero bits.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let bytes = self.fill.div_ceil(8);
        if bytes > 0 {
            let aligned = self.acc << (bytes * 8 - self.fill);
            let all = aligned.to_be_bytes();
            self.out.extend_from_slice(&all[8 - bytes as usize..]);
        }
        self.out
    }

    /// Unsigned integer in the residual code: small values are cheap, any u64 fits.
    ///
    /// | value below | code | bits |
    /// |---|---|---|
    /// | 1 (zero) | `0` | 1 |
    /// | 2^4 | `10` + 4 | 6 |
    /// | 2^8 | `110` + 8 | 11 |
    /// | 2^13 | `1110` + 13 | 17 |
    /// | 2^20 | `11110` + 20 | 25 |
    /// | 2^32 | `111110` + 32 | 38 |
    /// | any | `111111` + 64 | 70 |
    pub(crate) fn residual_u(&mut self, z: u64) {
        if z == 0 {
            self.put(0, 1);
            return;
        }
        for (i, &width) in CLASSES.iter().enumerate() {
            if width == 64 || z < (1u64 << width) {
                let ones = i as u32 + 1;
                // `ones` one-bits then a zero, except the last class which has no terminator.
                if width == 64 {
                    self.put((1u64 << ones) - 1, ones);
                } else {
                    self.put(((1u64 << ones) - 1) << 1, ones + 1);
                }
                self.put(z, width);
                return;
            }
        }
    }

    /// Signed integer in the residual code (zigzag).
    pub(crate) fn residual(&mut self, v: i64) {
        self.residual_u(zigzag(v));
    }

    /// A column of unsigned integers in a Rice code with the parameter that makes the column
    /// smallest: `k` (6 bits), then per item the quotient `z >> k` in unary and the low `k` bits.
    /// A quotient of [`RICE_ESCAPE`] or more is written as that many ones and the 64-bit item.
    /// Residuals of a regular series (deltas of deltas, value differences) are small and
    /// two-sided, so one parameter per column fits them closely.
    pub(crate) fn rice_column(&mut self, items: &[u64]) {
        let k = best_rice_k(items);
        self.put(u64::from(k), 6);
        for &z in items {
            let q = z >> k;
            if q < u64::from(RICE_ESCAPE) {
                let q = q as u32;
                // q ones and a zero, written in pieces of at most 63 bits.
                let ones = (1u64 << q) - 1;
                self.put(ones << 1, q + 1);
                self.put(z, k);
            } else {
                self.put((1u64 << RICE_ESCAPE) - 1, RICE_ESCAPE);
                self.put(z, 64);
            }
        }
    }
}

/// Quotients from this size on are escaped to the raw 64 bits.
pub(crate) const RICE_ESCAPE: u32 = 24;

/// The Rice parameter that writes `items` in (nearly) the fewest bits, estimated from a
/// histogram of their bit lengths: one pass over the items whatever the outliers.
fn best_rice_k(items: &[u64]) -> u32 {
    let mut by_len = [0u64; 65];
    for &z in items {
        by_len[(64 - z.leading_zeros()) as usize] += 1;
    }
    // Only the lengths that occur, and no `k` above the longest: past it every quotient is 0
    // and each item costs `1 + k` bits, more with every step. A short column (a chunk of a few
    // dozen readings) then costs a few hundred steps here, not thousands.
    let lengths: Vec<(usize, u64)> = by_len
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(len, &n)| (len, n))
        .collect();
    let longest = lengths.last().map_or(0, |&(len, _)| len as u32).min(63);
    (0..=longest)
        .min_by_key(|&k| {
            lengths
                .iter()
                .map(|&(len, n)| {
                    // An item of `len` bits has a quotient of about 3/4 of 2^(len - k).
                    let len = len as u32;
                    let q = match len.saturating_sub(k) {
                        0 => 0,
                        shift if shift < 16 => (3u64 << shift) / 4,
                        _ => u64::MAX,
                    };
                    let bits = if q < u64::from(RICE_ESCAPE) {
                        q + 1 + u64::from(k)
                    } else {
                        u64::from(RICE_ESCAPE) + 64
                    };
                    n * bits
                })
                .sum::<u64>()
        })
        .unwrap_or(0)
}

/// Widths of the residual code's classes after the zero class.
const CLASSES: [u32; 6] = [4, 8, 13, 20, 32, 64];

/// Reads what a [`BitWriter`] wrote.
#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    /// Position in bits from the start.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The 64 bits from the current position on, most significant first; bits past the end
    /// of the stream read as zeros (callers check `remaining` before they consume them).
    #[inline]
    fn peek(&self) -> u64 {
        let at = self.pos / 8;
        let shift = (self.pos % 8) as u32;
        let tail = self.bytes.get(at..).unwrap_or(&[]);
        let word: [u8; 8] = match tail.get(..8) {
            Some(eight) => eight.try_into().unwrap_or([0; 8]),
            None => {
                let mut short = [0u8; 8];
                short[..tail.len()].copy_from_slice(tail);
                short
            }
        };
        let high = u64::from_be_bytes(word);
        if shift == 0 {
            return high;
        }
        let next = u64::from(tail.get(8).copied().unwrap_or(0));
        (high << shift) | (next >> (8 - shift))
    }

    /// Reads `n` bits (`n` ≤ 64).
    #[inline]
    pub(crate) fn get(&mut self, n: u32) -> Result<u64, CodecError> {
        if n == 0 {
            return Ok(0);
        }
        if n as usize > self.remaining() {
            return Err(CodecError::Truncated);
        }
        let word = self.peek();
        self.pos += n as usize;
        Ok(if n >= 64 { word } else { word >> (64 - n) })
    }

    pub(crate) fn bit(&mut self) -> Result<bool, CodecError> {
        Ok(self.get(1)? == 1)
    }

    /// Reads a unary prefix of at most `max` one bits (`max` < 64): the ones and, when fewer
    /// than `max`, the zero that ends them. Returns the number of ones.
    #[inline]
    fn ones(&mut self, max: u32) -> Result<u32, CodecError> {
        let ones = (!self.peek()).leading_zeros().min(max);
        let used = if ones < max { ones + 1 } else { ones };
        if used as usize > self.remaining() {
            return Err(CodecError::Truncated);
        }
        self.pos += used as usize;
        Ok(ones)
    }

    pub(crate) fn residual_u(&mut self) -> Result<u64, CodecError> {
        let ones = self.ones(CLASSES.len() as u32)? as usize;
        if ones == 0 {
            return Ok(0);
        }
        self.get(CLASSES[ones - 1])
    }

    pub(crate) fn residual(&mut self) -> Result<i64, CodecError> {
        Ok(unzigzag(self.residual_u()?))
    }

    /// Reads `n` items written by [`BitWriter::rice_column`].
    pub(crate) fn rice_column(&mut self, n: usize, out: &mut Vec<u64>) -> Result<(), CodecError> {
        let k = self.get(6)? as u32;
        if n > self.remaining() {
            return Err(CodecError::Truncated);
        }
        out.reserve(n);
        for _ in 0..n {
            let q = self.ones(RICE_ESCAPE)?;
            if q == RICE_ESCAPE {
                out.push(self.get(64)?);
            } else {
                let low = self.get(k)?;
                out.push((u64::from(q) << k) | low);
            }
        }
        Ok(())
    }

    /// Bits left.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() * 8 - self.pos
    }
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The cost estimate of [`best_rice_k`] for one `k`, over every item.
    fn estimated_bits(items: &[u64], k: u32) -> u64 {
        items
            .iter()
            .map(|&z| {
                let len = 64 - z.leading_zeros();
                let q = match len.saturating_sub(k) {
                    0 => 0,
                    shift if shift < 16 => (3u64 << shift) / 4,
                    _ => u64::MAX,
                };
                if q < u64::from(RICE_ESCAPE) {
                    q + 1 + u64::from(k)
                } else {
                    u64::from(RICE_ESCAPE) + 64
                }
            })
            .sum()
    }

    proptest! {
        #[test]
        fn the_rice_parameter_is_the_first_best_of_every_k(
            items in proptest::collection::vec(prop_oneof![0u64..64, 0u64..100_000, any::<u64>()], 0..100)
        ) {
            let every = (0..=63u32).min_by_key(|&k| estimated_bits(&items, k)).unwrap_or(0);
            prop_assert_eq!(best_rice_k(&items), every);
        }

        #[test]
        fn fields_round_trip(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..200)) {
            let mut w = BitWriter::default();
            for &(v, n) in &fields {
                w.put(v, n);
            }
            let bytes = w.finish();
            let total: u32 = fields.iter().map(|f| f.1).sum();
            prop_assert_eq!(bytes.len(), total.div_ceil(8) as usize);
            let mut r = BitReader::new(&bytes);
            for &(v, n) in &fields {
                let want = if n == 64 { v } else if n == 0 { 0 } else { v & ((1u64 << n) - 1) };
                prop_assert_eq!(r.get(n).unwrap(), want);
            }
            prop_assert!(r.remaining() < 8);
        }

        #[test]
        fn residuals_round_trip(values in proptest::collection::vec(any::<i64>(), 0..200), small in proptest::collection::vec(-300i64..300, 0..200)) {
            let mut w = BitWriter::default();
            for &v in values.iter().chain(&small) {
                w.residual(v);
            }
            let bytes = w.finish();
            let mut r = BitReader::new(&bytes);
            for &v in values.iter().chain(&small) {
                prop_assert_eq!(r.residual().unwrap(), v);
            }
        }
    }

    proptest! {
        #[test]
        fn rice_columns_round_trip(items in proptest::collection::vec(prop_oneof![0u64..20, any::<u64>()], 0..300)) {
            let mut w = BitWriter::default();
            w.rice_column(&items);
            w.residual_u(7);
            let bytes = w.finish();
            let mut r = BitReader::new(&bytes);
            let mut out = Vec::new();
            r.rice_column(items.len(), &mut out).unwrap();
            prop_assert_eq!(&out, &items);
            prop_assert_eq!(r.residual_u().unwrap(), 7);
        }
    }

    #[test]
    fn residual_code_sizes() {
        let size = |v: i64| {
            let mut w = BitWriter::default();
            w.residual(v);
            w.fill + 8 * w.out.len() as u32
        };
        assert_eq!(size(0), 1);
        assert_eq!(size(-1), 6);
        assert_eq!(size(7), 6);
        assert_eq!(size(100), 11);
        assert_eq!(size(i64::MIN), 70);
    }

    #[test]
    fn reading_past_the_end_is_an_error() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.get(8).unwrap(), 0xff);
        assert!(matches!(r.get(1), Err(CodecError::Truncated)));
        let mut r = BitReader::new(&[0xff]);
        assert!(matches!(r.residual_u(), Err(CodecError::Truncated)));
    }
}
