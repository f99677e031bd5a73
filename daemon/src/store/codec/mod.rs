//! The byte formats of the buffer's readings: a commit batch (the append-only log) and a
//! sensor's chunk (its history, folded from the log). Pure: no I/O, no SQLite.
//!
//! Owns: encoding and decoding, checksums, format versions. Does not own: where the bytes live
//! (see `docs/storage.md` and the store's tables) or when they are written.
//!
//! Both formats are columns in one bit stream followed by a CRC-32 of everything before it:
//!
//! - **batch** (one commit, readings of many sensors, seq implied from the row's first seq):
//!   sensor ids as differences from "the previous id + 1", read times as differences from the
//!   previous reading's, qualities and presence as runs, each value on its own (`values`);
//! - **chunk** (one sensor, readings in seq order): seqs and read times as deltas of deltas,
//!   qualities and presence as runs, values as one sequence (decimal differences or XOR).
//!
//! Decoding never panics: a short, corrupt or foreign blob is a [`CodecError`].

mod batch;
pub(crate) mod bits;
mod chunk;
mod runs;
pub(crate) mod values;

pub use batch::{decode_batch, decode_batch_sensor, decode_batch_sensors, encode_batch};
pub use chunk::{decode_chunk, decode_chunk_seqs, encode_chunk};

/// One reading of a commit batch; its seq is the batch's first seq plus its index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchRow {
    /// `sensors.id`.
    pub sensor: i64,
    /// Read time, ms since the epoch.
    pub ts: i64,
    /// The value, when there is one.
    pub value: Option<f64>,
    /// Quality code (0 good, 1 bad, 2 stale, 3 comm_error).
    pub quality: u8,
}

/// One reading of a sensor's chunk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkRow {
    /// The reading's seq.
    pub seq: i64,
    /// Read time, ms since the epoch.
    pub ts: i64,
    /// The value, when there is one.
    pub value: Option<f64>,
    /// Quality code.
    pub quality: u8,
}

/// Why a blob could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The blob ends before its columns do.
    #[error("encoded readings are truncated")]
    Truncated,
    /// The checksum does not match: the bytes changed after they were written.
    #[error("encoded readings fail their checksum")]
    Checksum,
    /// A format this build does not know.
    #[error("encoded readings have format version {0}, which this markoff does not know")]
    Version(u8),
    /// A field holds a value no encoder writes.
    #[error("encoded readings are corrupt ({0})")]
    Corrupt(&'static str),
}

/// Appends the CRC-32 of `bytes` to it.
fn seal(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// Checks and strips the CRC-32 and the version byte; returns the columns.
fn open(blob: &[u8], version: u8) -> Result<&[u8], CodecError> {
    if blob.len() < 5 {
        return Err(CodecError::Truncated);
    }
    let (body, crc) = blob.split_at(blob.len() - 4);
    let mut want = [0u8; 4];
    want.copy_from_slice(crc);
    if crc32fast::hash(body) != u32::from_le_bytes(want) {
        return Err(CodecError::Checksum);
    }
    if body[0] != version {
        return Err(CodecError::Version(body[0]));
    }
    Ok(&body[1..])
}

/// Reads a count that must be backed by at least `min_bits` per item in what is left.
fn count(r: &mut bits::BitReader<'_>, min_bits: usize) -> Result<usize, CodecError> {
    let n = usize::try_from(r.residual_u()?).map_err(|_| CodecError::Corrupt("count"))?;
    if n.saturating_mul(min_bits) > r.remaining() {
        return Err(CodecError::Truncated);
    }
    Ok(n)
}
