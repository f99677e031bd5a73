//! A commit batch: the readings of one writer transaction, in seq order.

use super::bits::{BitReader, BitWriter, unzigzag, zigzag};
use super::{BatchRow, CodecError, count, open, runs, seal, values};

/// Format version of a batch blob.
const VERSION: u8 = 1;

/// Encodes `rows` (seq order) as a batch blob.
pub fn encode_batch(rows: &[BatchRow]) -> Vec<u8> {
    let mut w = BitWriter::with_capacity(16 + rows.len() * 3);
    w.put(u64::from(VERSION), 8);
    w.residual_u(rows.len() as u64);
    let mut prev_sensor: i64 = -1;
    let sensors: Vec<u64> = rows
        .iter()
        .map(|r| {
            let z = zigzag(r.sensor.wrapping_sub(prev_sensor.wrapping_add(1)));
            prev_sensor = r.sensor;
            z
        })
        .collect();
    w.rice_column(&sensors);
    // The first time in full, then each time as the difference from the one before.
    let first_ts = rows.first().map_or(0, |r| r.ts);
    w.residual(first_ts);
    let mut prev_ts = first_ts;
    let times: Vec<u64> = rows
        .iter()
        .map(|r| {
            let z = zigzag(r.ts.wrapping_sub(prev_ts));
            prev_ts = r.ts;
            z
        })
        .collect();
    w.rice_column(&times);
    runs::put_u8_runs(&mut w, rows.iter().map(|r| r.quality));
    runs::put_flag_runs(&mut w, rows.iter().map(|r| r.value.is_some()));
    for v in rows.iter().filter_map(|r| r.value) {
        values::put_token(&mut w, v);
    }
    seal(w.finish())
}

/// Decodes a batch blob into `out` (appended, seq order).
///
/// # Errors
/// The blob is not a batch this build wrote, or was damaged.
pub fn decode_batch(blob: &[u8], out: &mut Vec<BatchRow>) -> Result<(), CodecError> {
    let body = open(blob, VERSION)?;
    let mut r = BitReader::new(body);
    // Each reading takes at least a bit for its sensor and one for its time.
    let n = count(&mut r, 2)?;
    let start = out.len();
    out.reserve(n);
    let mut column = Vec::new();
    r.rice_column(n, &mut column)?;
    let mut prev_sensor: i64 = -1;
    out.extend(column.iter().map(|&z| {
        let sensor = prev_sensor.wrapping_add(1).wrapping_add(unzigzag(z));
        prev_sensor = sensor;
        BatchRow {
            sensor,
            ts: 0,
            value: None,
            quality: 0,
        }
    }));
    let mut prev_ts = r.residual()?;
    column.clear();
    r.rice_column(n, &mut column)?;
    for (row, z) in out[start..].iter_mut().zip(column) {
        prev_ts = prev_ts.wrapping_add(unzigzag(z));
        row.ts = prev_ts;
    }
    let qualities = runs::get_u8_runs(&mut r, n)?;
    let present = runs::get_flag_runs(&mut r, n)?;
    for ((row, q), p) in out[start..].iter_mut().zip(qualities).zip(present) {
        row.quality = q;
        if p {
            row.value = Some(values::get_token(&mut r)?);
        }
    }
    if r.remaining() >= 8 {
        return Err(CodecError::Corrupt("trailing bytes"));
    }
    Ok(())
}

/// Decodes only the sensor column of a batch blob into `out` (appended, seq order), checking
/// the blob's checksum and version: what a fold needs to count each sensor's readings.
///
/// # Errors
/// The blob is not a batch this build wrote, or was damaged.
pub fn decode_batch_sensors(blob: &[u8], out: &mut Vec<i64>) -> Result<(), CodecError> {
    let body = open(blob, VERSION)?;
    let mut r = BitReader::new(body);
    let n = count(&mut r, 2)?;
    let mut column = Vec::new();
    r.rice_column(n, &mut column)?;
    let mut prev_sensor: i64 = -1;
    out.extend(column.into_iter().map(|z| {
        prev_sensor = prev_sensor.wrapping_add(1).wrapping_add(unzigzag(z));
        prev_sensor
    }));
    Ok(())
}

/// Decodes only the readings of `sensor` from a batch blob, appending `(index, reading)` to
/// `out` (the index in the batch: the reading's seq is the batch's first seq plus it). The blob
/// is checked as by [`decode_batch`] (checksum, version, counts, runs), up to the sensor's last
/// reading: the values after it are not read. A batch without the sensor costs its sensor
/// column only.
///
/// # Errors
/// The blob is not a batch this build wrote, or was damaged.
pub fn decode_batch_sensor(
    blob: &[u8],
    sensor: i64,
    out: &mut Vec<(usize, BatchRow)>,
) -> Result<(), CodecError> {
    let body = open(blob, VERSION)?;
    let mut r = BitReader::new(body);
    let n = count(&mut r, 2)?;
    let mut column = Vec::new();
    r.rice_column(n, &mut column)?;
    let mut prev_sensor: i64 = -1;
    let mut hits: Vec<usize> = Vec::new();
    for (i, &z) in column.iter().enumerate() {
        prev_sensor = prev_sensor.wrapping_add(1).wrapping_add(unzigzag(z));
        if prev_sensor == sensor {
            hits.push(i);
        }
    }
    let Some(&last) = hits.last() else {
        return Ok(());
    };
    let mut ts = r.residual()?;
    column.clear();
    r.rice_column(n, &mut column)?;
    let mut times = Vec::with_capacity(hits.len());
    let mut next = hits.iter().peekable();
    for (i, &z) in column.iter().enumerate().take(last + 1) {
        ts = ts.wrapping_add(unzigzag(z));
        if next.next_if(|&&h| h == i).is_some() {
            times.push(ts);
        }
    }
    let qualities = runs::get_u8_runs(&mut r, n)?;
    let present = runs::get_flag_runs(&mut r, n)?;
    let mut next = hits.iter().zip(times).peekable();
    for (i, &has_value) in present.iter().enumerate().take(last + 1) {
        let value = if has_value {
            Some(values::get_token(&mut r)?)
        } else {
            None
        };
        if let Some((_, ts)) = next.next_if(|(h, _)| **h == i) {
            out.push((
                i,
                BatchRow {
                    sensor,
                    ts,
                    value,
                    quality: qualities[i],
                },
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row() -> impl Strategy<Value = BatchRow> {
        (
            prop_oneof![0i64..20_000, any::<i64>()],
            prop_oneof![1_700_000_000_000i64..1_900_000_000_000, any::<i64>()],
            prop_oneof![
                Just(None),
                any::<u64>().prop_map(|b| Some(f64::from_bits(b))),
                (-100_000i64..100_000, 0u8..4).prop_map(|(m, e)| Some(values::from_decimal(m, e))),
                Just(Some(-0.0)),
                Just(Some(f64::NAN)),
            ],
            prop_oneof![0u8..4, any::<u8>()],
        )
            .prop_map(|(sensor, ts, value, quality)| BatchRow {
                sensor,
                ts,
                value,
                quality,
            })
    }

    fn same(a: &[BatchRow], b: &[BatchRow]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.sensor == y.sensor
                    && x.ts == y.ts
                    && x.quality == y.quality
                    && x.value.map(f64::to_bits) == y.value.map(f64::to_bits)
            })
    }

    proptest! {
        #[test]
        fn batches_round_trip(rows in proptest::collection::vec(row(), 0..300)) {
            let blob = encode_batch(&rows);
            let mut out = Vec::new();
            decode_batch(&blob, &mut out).unwrap();
            prop_assert!(same(&rows, &out));
            let mut sensors = Vec::new();
            decode_batch_sensors(&blob, &mut sensors).unwrap();
            prop_assert_eq!(sensors, rows.iter().map(|r| r.sensor).collect::<Vec<_>>());
        }

        #[test]
        fn one_sensor_decodes_as_the_whole_batch_filtered(rows in proptest::collection::vec(row(), 0..300), pick in any::<prop::sample::Index>()) {
            let blob = encode_batch(&rows);
            let sensor = if rows.is_empty() { 7 } else { rows[pick.index(rows.len())].sensor };
            let mut all = Vec::new();
            decode_batch(&blob, &mut all).unwrap();
            let want: Vec<(usize, BatchRow)> = all.into_iter().enumerate().filter(|(_, r)| r.sensor == sensor).collect();
            let mut got = Vec::new();
            decode_batch_sensor(&blob, sensor, &mut got).unwrap();
            prop_assert_eq!(got.len(), want.len());
            for ((i, a), (j, b)) in got.iter().zip(&want) {
                prop_assert_eq!(i, j);
                prop_assert!(same(std::slice::from_ref(a), std::slice::from_ref(b)));
            }
        }

        #[test]
        fn damaged_batches_are_errors(rows in proptest::collection::vec(row(), 1..50), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut blob = encode_batch(&rows);
            let i = at.index(blob.len());
            blob[i] ^= 1 << bit;
            let mut out = Vec::new();
            prop_assert!(decode_batch(&blob, &mut out).is_err());
            let mut sensors = Vec::new();
            prop_assert!(decode_batch_sensors(&blob, &mut sensors).is_err());
            let mut one = Vec::new();
            prop_assert!(decode_batch_sensor(&blob, rows[0].sensor, &mut one).is_err());
            let cut = at.index(blob.len());
            prop_assert!(decode_batch(&blob[..cut], &mut out).is_err());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            let _any_outcome = decode_batch(&bytes, &mut out);
            // A valid checksum over garbage still decodes to an error or to rows, never a panic.
            let mut sealed = vec![VERSION];
            sealed.extend_from_slice(&bytes);
            let sealed = seal(sealed);
            let _any_outcome = decode_batch(&sealed, &mut out);
            let mut one = Vec::new();
            let _any_outcome = decode_batch_sensor(&sealed, 1, &mut one);
        }
    }

    #[test]
    fn a_poll_of_sequential_sensors_is_small() {
        let rows: Vec<BatchRow> = (0..1000)
            .map(|i| BatchRow {
                sensor: 100 + i,
                ts: 1_800_000_000_000 + i / 100,
                value: Some(values::from_decimal(2000 + (i * 7919) % 500, 2)),
                quality: 0,
            })
            .collect();
        let blob = encode_batch(&rows);
        assert!(
            blob.len() < 3_500,
            "{} bytes for 1,000 readings",
            blob.len()
        );
    }
}
