//! Bytes and CPU per reading of the buffer's encodings against general-purpose ones, on
//! building-shaped data at 1 Hz: the commit batches of the append-only log (one per second, every
//! sensor) and the per-sensor chunks the fold builds from them.
//!
//! Compared, on the same readings: `markoff::store::codec` (the formats the store writes), `pco`
//! (numeric columns, one pco blob per column) and `lz4_flex` (the columns as little-endian bytes,
//! one LZ4 block). Every encoding is decoded again and checked bit for bit.

use tokio::time::Instant;

use anyhow::{Context as _, bail};
use markoff::store::codec::{self, BatchRow, ChunkRow};

use super::{Verdict, sys};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Sensors polled every second.
    #[arg(long, default_value_t = 10_000)]
    sensors: usize,
    /// Seconds of readings.
    #[arg(long, default_value_t = 600)]
    seconds: usize,
    /// Readings of one Modbus message (share a read time up to a few ms).
    #[arg(long, default_value_t = 100)]
    message: usize,
}

/// What each sensor measures; sensor `i` is kind `i % KINDS`.
const KINDS: usize = 10;
const T0: i64 = 1_800_000_000_000;

/// A building at 1 Hz: temperatures with a daily cycle and a slow random walk at 0.01 °C,
/// humidity at 0.1 %, CO2 in ppm, pressure at 0.001 bar, an energy counter at 0.01 kWh, power at
/// 0.1 kW, a pump state, a leak detector, a setpoint that never changes and a FLOAT32 voltage
/// register widened to f64; about 0.5 % failed reads without a value.
struct Plant {
    state: Vec<f64>,
    rng: u64,
}

impl Plant {
    fn new(sensors: usize) -> Self {
        Self {
            state: (0..sensors).map(|i| (i % 97) as f64 / 97.0).collect(),
            rng: 0x2545_f491_4f6c_dd1d,
        }
    }

    fn next_u(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// A uniform number in [-1, 1).
    fn noise(&mut self) -> f64 {
        (self.next_u() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    fn reading(&mut self, sensor: usize, second: usize) -> (Option<f64>, u8) {
        if self.next_u().is_multiple_of(200) {
            return (None, 3);
        }
        let day = (second as f64 / 86_400.0 + self.state[sensor]) * std::f64::consts::TAU;
        let step = self.noise();
        let small = self.noise();
        let v = match sensor % KINDS {
            0 | 1 => {
                self.state[sensor] += 0.000_02 * step;
                let walk = self.state[sensor];
                round(
                    21.0 + 1.5 * day.sin() + 20.0 * (walk - 0.5) + 0.01 * small,
                    2,
                )
            }
            2 => round(45.0 + 8.0 * day.sin() + 0.1 * small, 1),
            3 => round(650.0 + 250.0 * day.sin() + 3.0 * small, 0),
            4 => round(1.5 + 0.002 * small, 3),
            5 => {
                self.state[sensor] += 0.0005 + 0.0005 * step.abs();
                round(10_000.0 + self.state[sensor] * 1000.0, 2)
            }
            6 => round(12.0 + 3.0 * day.sin() + 0.3 * small, 1),
            7 => f64::from(u8::from((day * 20.0).sin() > 0.0)),
            8 => 0.0,
            _ => {
                let volts = 230.0 + 2.0 * day.sin() + 0.5 * small;
                f64::from(volts as f32)
            }
        };
        (Some(v), 0)
    }
}

fn round(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (v * p).round() / p
}

/// Every second's readings, one commit batch each, in Modbus message order.
fn batches(args: &Args) -> Vec<Vec<BatchRow>> {
    let mut plant = Plant::new(args.sensors);
    (0..args.seconds)
        .map(|s| {
            (0..args.sensors)
                .map(|i| {
                    let message = (i / args.message.max(1)) as i64;
                    let jitter = (plant.next_u() % 5) as i64;
                    let (value, quality) = plant.reading(i, s);
                    BatchRow {
                        sensor: i as i64 + 1,
                        ts: T0 + s as i64 * 1_000 + message * 3 + jitter,
                        value,
                        quality,
                    }
                })
                .collect()
        })
        .collect()
}

/// The same readings as one chunk per sensor, with their seqs.
fn chunks(batches: &[Vec<BatchRow>], sensors: usize) -> Vec<Vec<ChunkRow>> {
    let mut out: Vec<Vec<ChunkRow>> = vec![Vec::with_capacity(batches.len()); sensors];
    let mut seq: i64 = 1;
    for b in batches {
        for r in b {
            out[(r.sensor - 1) as usize].push(ChunkRow {
                seq,
                ts: r.ts,
                value: r.value,
                quality: r.quality,
            });
            seq += 1;
        }
    }
    out
}

/// One encoding's result over a set of blobs.
struct Figure {
    name: &'static str,
    bytes: usize,
    encode_ns: f64,
    decode_ns: f64,
}

fn measure<T, B>(
    name: &'static str,
    groups: &[Vec<T>],
    encode: impl Fn(&[T]) -> B,
    decode_check: impl Fn(&B, &[T]) -> anyhow::Result<()>,
    size: impl Fn(&B) -> usize,
) -> anyhow::Result<Figure> {
    let readings: usize = groups.iter().map(Vec::len).sum();
    let started = Instant::now();
    let blobs: Vec<B> = groups.iter().map(|g| encode(g)).collect();
    let encode_ns = started.elapsed().as_nanos() as f64 / readings as f64;
    let started = Instant::now();
    for (b, g) in blobs.iter().zip(groups) {
        decode_check(b, g).with_context(|| format!("{name}: decoded readings differ"))?;
    }
    let decode_ns = started.elapsed().as_nanos() as f64 / readings as f64;
    Ok(Figure {
        name,
        bytes: blobs.iter().map(&size).sum(),
        encode_ns,
        decode_ns,
    })
}

/// Columns as pco blobs: sensor (or seq), time, values (present only, NaN-free as bits),
/// presence and quality as one small integer column.
fn pco_columns(ids: &[i64], ts: &[i64], values: &[u64], flags: &[u32]) -> anyhow::Result<Vec<u8>> {
    let cfg = pco::ChunkConfig::default();
    let mut out = Vec::new();
    for blob in [
        pco::standalone::simple_compress(ids, &cfg)?,
        pco::standalone::simple_compress(ts, &cfg)?,
        // Values as their bits' order-preserving integers keep pco lossless for any f64.
        pco::standalone::simple_compress(values, &cfg)?,
        pco::standalone::simple_compress(flags, &cfg)?,
    ] {
        out.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        out.extend_from_slice(&blob);
    }
    Ok(out)
}

/// Ids or seqs, times, value bits, flags.
type Columns = (Vec<i64>, Vec<i64>, Vec<u64>, Vec<u32>);

fn pco_decode(blob: &[u8]) -> anyhow::Result<Columns> {
    let mut parts = Vec::new();
    let mut at = 0;
    while at < blob.len() {
        let len = u32::from_le_bytes(blob[at..at + 4].try_into()?) as usize;
        parts.push(&blob[at + 4..at + 4 + len]);
        at += 4 + len;
    }
    if parts.len() != 4 {
        bail!("pco: {} columns", parts.len());
    }
    Ok((
        pco::standalone::simple_decompress(parts[0])?,
        pco::standalone::simple_decompress(parts[1])?,
        pco::standalone::simple_decompress(parts[2])?,
        pco::standalone::simple_decompress(parts[3])?,
    ))
}

/// The flags column: presence in bit 8, quality below.
fn flag(value: Option<f64>, quality: u8) -> u32 {
    (u32::from(value.is_some()) << 8) | u32::from(quality)
}

fn lz4_columns(ids: &[i64], ts: &[i64], values: &[u64], flags: &[u32]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(ids.len() * 21);
    ids.iter()
        .for_each(|v| raw.extend_from_slice(&(*v as u32).to_le_bytes()));
    ts.iter()
        .for_each(|v| raw.extend_from_slice(&v.to_le_bytes()));
    values
        .iter()
        .for_each(|v| raw.extend_from_slice(&v.to_le_bytes()));
    flags.iter().for_each(|v| raw.push(*v as u8));
    lz4_flex::compress_prepend_size(&raw)
}

fn same_value(a: Option<f64>, b: Option<f64>) -> bool {
    a.map(f64::to_bits) == b.map(f64::to_bits)
}

pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    println!("machine: {}", sys::machine());
    println!(
        "load average (1 min) at start: {}",
        sys::load_average().unwrap_or_default()
    );
    let batches = batches(args);
    let chunks = chunks(&batches, args.sensors);
    let readings = args.sensors * args.seconds;
    println!(
        "{} sensors at 1 Hz for {} s: {readings} readings; batches of {} readings (one commit per second), chunks of {} readings (one sensor over the run)",
        args.sensors, args.seconds, args.sensors, args.seconds
    );
    let mut figures = Vec::new();
    figures.push((
        "batch",
        measure(
            "markoff batch",
            &batches,
            codec::encode_batch,
            |b, g| {
                let mut out = Vec::new();
                codec::decode_batch(b, &mut out)?;
                let ok = out.len() == g.len()
                    && out.iter().zip(g).all(|(x, y)| {
                        x.sensor == y.sensor
                            && x.ts == y.ts
                            && x.quality == y.quality
                            && same_value(x.value, y.value)
                    });
                if ok { Ok(()) } else { bail!("mismatch") }
            },
            Vec::len,
        )?,
    ));
    let batch_columns = |g: &[BatchRow]| {
        let ids: Vec<i64> = g.iter().map(|r| r.sensor).collect();
        let ts: Vec<i64> = g.iter().map(|r| r.ts).collect();
        let values: Vec<u64> = g.iter().filter_map(|r| r.value).map(f64::to_bits).collect();
        let flags: Vec<u32> = g.iter().map(|r| flag(r.value, r.quality)).collect();
        (ids, ts, values, flags)
    };
    figures.push((
        "batch",
        measure(
            "pco columns",
            &batches,
            |g| {
                let (a, b, c, d) = batch_columns(g);
                pco_columns(&a, &b, &c, &d).unwrap_or_default()
            },
            |blob, g| {
                let got = pco_decode(blob)?;
                if got == batch_columns(g) {
                    Ok(())
                } else {
                    bail!("mismatch")
                }
            },
            Vec::len,
        )?,
    ));
    figures.push((
        "batch",
        measure(
            "lz4_flex columns",
            &batches,
            |g| {
                let (a, b, c, d) = batch_columns(g);
                lz4_columns(&a, &b, &c, &d)
            },
            |blob, g| {
                let raw = lz4_flex::decompress_size_prepended(blob)?;
                let (a, _, c, d) = batch_columns(g);
                if raw.len() == a.len() * 13 + c.len() * 8 && d.len() == a.len() {
                    Ok(())
                } else {
                    bail!("length")
                }
            },
            Vec::len,
        )?,
    ));
    figures.push((
        "chunk",
        measure(
            "markoff chunk",
            &chunks,
            codec::encode_chunk,
            |b, g| {
                let mut out = Vec::new();
                codec::decode_chunk(b, &mut out)?;
                let ok = out.len() == g.len()
                    && out.iter().zip(g).all(|(x, y)| {
                        x.seq == y.seq
                            && x.ts == y.ts
                            && x.quality == y.quality
                            && same_value(x.value, y.value)
                    });
                if ok { Ok(()) } else { bail!("mismatch") }
            },
            Vec::len,
        )?,
    ));
    let chunk_columns = |g: &[ChunkRow]| {
        let seqs: Vec<i64> = g.iter().map(|r| r.seq).collect();
        let ts: Vec<i64> = g.iter().map(|r| r.ts).collect();
        let values: Vec<u64> = g.iter().filter_map(|r| r.value).map(f64::to_bits).collect();
        let flags: Vec<u32> = g.iter().map(|r| flag(r.value, r.quality)).collect();
        (seqs, ts, values, flags)
    };
    figures.push((
        "chunk",
        measure(
            "pco columns",
            &chunks,
            |g| {
                let (a, b, c, d) = chunk_columns(g);
                pco_columns(&a, &b, &c, &d).unwrap_or_default()
            },
            |blob, g| {
                let got = pco_decode(blob)?;
                if got == chunk_columns(g) {
                    Ok(())
                } else {
                    bail!("mismatch")
                }
            },
            Vec::len,
        )?,
    ));
    figures.push((
        "chunk",
        measure(
            "lz4_flex columns",
            &chunks,
            |g| {
                let (a, b, c, d) = chunk_columns(g);
                lz4_columns(&a, &b, &c, &d)
            },
            |blob, g| {
                let raw = lz4_flex::decompress_size_prepended(blob)?;
                let (a, _, c, d) = chunk_columns(g);
                if raw.len() == a.len() * 13 + c.len() * 8 && d.len() == a.len() {
                    Ok(())
                } else {
                    bail!("length")
                }
            },
            Vec::len,
        )?,
    ));
    println!();
    println!(
        "| unit | encoding | bytes per reading | encode ns per reading | decode ns per reading |"
    );
    println!("|---|---|---:|---:|---:|");
    for (unit, f) in &figures {
        println!(
            "| {unit} | {} | {:.2} | {:.1} | {:.1} |",
            f.name,
            f.bytes as f64 / readings as f64,
            f.encode_ns,
            f.decode_ns
        );
    }
    println!("(raw row: 21 bytes; the row-per-reading table with its index: 45.4 bytes on disk)");
    println!(
        "load average (1 min) at end: {}",
        sys::load_average().unwrap_or_default()
    );
    Ok(Verdict::Checked)
}
