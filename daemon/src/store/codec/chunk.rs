//! A sensor's chunk: its readings from one fold, in seq order.

use super::bits::{BitReader, BitWriter, unzigzag, zigzag};
use super::{ChunkRow, CodecError, count, open, runs, seal, values};

/// Format version of a chunk blob.
const VERSION: u8 = 1;

/// Encodes one sensor's `rows` (seq order) as a chunk blob.
pub fn encode_chunk(rows: &[ChunkRow]) -> Vec<u8> {
    let mut w = BitWriter::with_capacity(16 + rows.len() * 2);
    w.put(u64::from(VERSION), 8);
    w.residual_u(rows.len() as u64);
    put_delta_of_delta(&mut w, rows.iter().map(|r| r.seq));
    put_delta_of_delta(&mut w, rows.iter().map(|r| r.ts));
    runs::put_u8_runs(&mut w, rows.iter().map(|r| r.quality));
    runs::put_flag_runs(&mut w, rows.iter().map(|r| r.value.is_some()));
    let present: Vec<f64> = rows.iter().filter_map(|r| r.value).collect();
    values::put_sequence(&mut w, &present);
    seal(w.finish())
}

/// Decodes a chunk blob into `out` (appended, seq order).
///
/// # Errors
/// The blob is not a chunk this build wrote, or was damaged.
pub fn decode_chunk(blob: &[u8], out: &mut Vec<ChunkRow>) -> Result<(), CodecError> {
    let body = open(blob, VERSION)?;
    let mut r = BitReader::new(body);
    // Each reading takes at least a bit for its seq and one for its time.
    let n = count(&mut r, 2)?;
    let start = out.len();
    out.reserve(n);
    let mut column = Vec::new();
    get_delta_of_delta(&mut r, n, &mut column)?;
    out.extend(column.iter().map(|&seq| ChunkRow {
        seq,
        ts: 0,
        value: None,
        quality: 0,
    }));
    column.clear();
    get_delta_of_delta(&mut r, n, &mut column)?;
    for (row, ts) in out[start..].iter_mut().zip(column) {
        row.ts = ts;
    }
    let qualities = runs::get_u8_runs(&mut r, n)?;
    let present = runs::get_flag_runs(&mut r, n)?;
    let mut vals = Vec::new();
    values::get_sequence(&mut r, present.iter().filter(|p| **p).count(), &mut vals)?;
    let mut vals = vals.into_iter();
    for ((row, q), p) in out[start..].iter_mut().zip(qualities).zip(present) {
        row.quality = q;
        if p {
            row.value = vals.next();
        }
    }
    if r.remaining() >= 8 {
        return Err(CodecError::Corrupt("trailing bytes"));
    }
    Ok(())
}

/// Decodes only the seqs of a chunk blob into `out` (appended, ascending), checking the blob as
/// [`decode_chunk`] does up to them: for reads by seq that need one reading of many chunks.
///
/// # Errors
/// The blob is not a chunk this build wrote, or was damaged.
pub fn decode_chunk_seqs(blob: &[u8], out: &mut Vec<i64>) -> Result<(), CodecError> {
    let body = open(blob, VERSION)?;
    let mut r = BitReader::new(body);
    let n = count(&mut r, 2)?;
    out.reserve(n);
    get_delta_of_delta(&mut r, n, out)
}

/// Integers as the change of their step: the first in full, then a Rice column of the rest.
/// A regular series costs about a bit per item.
fn put_delta_of_delta(w: &mut BitWriter, items: impl Iterator<Item = i64>) {
    let mut items = items.peekable();
    let first = items.peek().copied().unwrap_or(0);
    w.residual(first);
    let mut prev = first;
    let mut step: i64 = 0;
    let column: Vec<u64> = items
        .skip(1)
        .map(|v| {
            let d = v.wrapping_sub(prev);
            let z = zigzag(d.wrapping_sub(step));
            step = d;
            prev = v;
            z
        })
        .collect();
    w.rice_column(&column);
}

fn get_delta_of_delta(
    r: &mut BitReader<'_>,
    n: usize,
    out: &mut Vec<i64>,
) -> Result<(), CodecError> {
    let first = r.residual()?;
    let mut column = Vec::new();
    r.rice_column(n.saturating_sub(1), &mut column)?;
    if n > 0 {
        out.push(first);
    }
    let mut prev = first;
    let mut step: i64 = 0;
    out.extend(column.into_iter().map(|z| {
        step = step.wrapping_add(unzigzag(z));
        prev = prev.wrapping_add(step);
        prev
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows() -> impl Strategy<Value = Vec<ChunkRow>> {
        proptest::collection::vec(
            (
                prop_oneof![1i64..100, any::<i64>()],
                prop_oneof![-20_000i64..20_000, any::<i64>()],
                prop_oneof![
                    Just(None),
                    any::<u64>().prop_map(|b| Some(f64::from_bits(b))),
                    (-5_000i64..5_000).prop_map(|m| Some(values::from_decimal(2100 + m, 2))),
                    Just(Some(-0.0)),
                ],
                prop_oneof![0u8..4, any::<u8>()],
            ),
            0..300,
        )
        .prop_map(|items| {
            let mut seq: i64 = 1;
            let mut ts: i64 = 1_800_000_000_000;
            items
                .into_iter()
                .map(|(dseq, dts, value, quality)| {
                    seq = seq.wrapping_add(dseq);
                    ts = ts.wrapping_add(dts);
                    ChunkRow {
                        seq,
                        ts,
                        value,
                        quality,
                    }
                })
                .collect()
        })
    }

    fn same(a: &[ChunkRow], b: &[ChunkRow]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.seq == y.seq
                    && x.ts == y.ts
                    && x.quality == y.quality
                    && x.value.map(f64::to_bits) == y.value.map(f64::to_bits)
            })
    }

    proptest! {
        #[test]
        fn chunks_round_trip(rows in rows()) {
            let blob = encode_chunk(&rows);
            let mut out = Vec::new();
            decode_chunk(&blob, &mut out).unwrap();
            prop_assert!(same(&rows, &out));
            let mut seqs = Vec::new();
            decode_chunk_seqs(&blob, &mut seqs).unwrap();
            prop_assert_eq!(seqs, rows.iter().map(|r| r.seq).collect::<Vec<_>>());
        }

        #[test]
        fn damaged_chunks_are_errors(rows in rows(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut blob = encode_chunk(&rows);
            let i = at.index(blob.len());
            blob[i] ^= 1 << bit;
            let mut out = Vec::new();
            prop_assert!(decode_chunk(&blob, &mut out).is_err());
            let mut seqs = Vec::new();
            prop_assert!(decode_chunk_seqs(&blob, &mut seqs).is_err());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            let _any_outcome = decode_chunk(&bytes, &mut out);
            let mut sealed = vec![VERSION];
            sealed.extend_from_slice(&bytes);
            let _any_outcome = decode_chunk(&seal(sealed), &mut out);
        }
    }

    #[test]
    fn a_regular_sensor_costs_about_a_byte_per_reading() {
        let rows: Vec<ChunkRow> = (0..600)
            .map(|i| ChunkRow {
                seq: 1_000 + i * 1_000,
                ts: 1_800_000_000_000 + i * 1_000 + (i * 7) % 5,
                value: Some(values::from_decimal(2100 + (i * 7919) % 9 - 4, 2)),
                quality: 0,
            })
            .collect();
        let blob = encode_chunk(&rows);
        assert!(blob.len() < 1_000, "{} bytes for 600 readings", blob.len());
    }
}
