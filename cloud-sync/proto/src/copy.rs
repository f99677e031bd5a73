//! PostgreSQL binary `COPY` encoding, and streaming an encoded table into a connection.
//!
//! Owns: the wire format of `COPY ... FROM STDIN (FORMAT binary)` for the column types the
//! central tables use (int2, int4, int8, float8, text, timestamptz, and NULL), and sending it in
//! bounded chunks. Does not own: which tables are copied or the transaction around the copy (see
//! `crate::upload`).
//!
//! The format: an 11-byte signature `PGCOPY\n\xff\r\n\0`, an i32 flags field (0: no OIDs), an i32
//! header-extension length (0); then per tuple an i16 field count and per field an i32 length
//! followed by that many bytes of the type's binary representation (big-endian), or length -1 for
//! NULL; then an i16 -1 trailer.

use sqlx::PgConnection;
use sqlx::postgres::PgCopyIn;

/// The 11-byte signature, flags and header-extension length that open a binary COPY stream.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Microseconds from 1970-01-01 to 2000-01-01 (PostgreSQL's timestamp epoch).
const PG_EPOCH_OFFSET_MS: i64 = 946_684_800_000;

/// How much encoded data is buffered before it is sent (memory stays bounded by about this).
pub(crate) const CHUNK_BYTES: usize = 2 * 1024 * 1024;

/// A binary COPY stream being built. Call the field methods after [`Self::tuple`] in column order.
#[derive(Debug)]
pub(crate) struct CopyEncoder {
    buf: Vec<u8>,
}

impl CopyEncoder {
    /// A stream with its header written and room for about `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(HEADER.len() + 2));
        buf.extend_from_slice(HEADER);
        Self { buf }
    }

    /// Starts a tuple of `fields` fields.
    pub(crate) fn tuple(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    /// A NULL field.
    pub(crate) fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// An `int2` field.
    pub(crate) fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&2i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// An `int4` field.
    pub(crate) fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&4i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// An `int8` field.
    pub(crate) fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A `float8` field.
    pub(crate) fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_bits().to_be_bytes());
    }

    /// A nullable `float8` field.
    pub(crate) fn opt_f64(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.f64(v),
            None => self.null(),
        }
    }

    /// A `text` field. The caller checked with [`text_fits`] that its length fits in an i32.
    pub(crate) fn text(&mut self, v: &str) {
        let len = i32::try_from(v.len()).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(v.as_bytes());
    }

    /// A `timestamptz` field from microseconds since 2000-01-01 UTC (see [`pg_micros`]).
    pub(crate) fn timestamptz(&mut self, pg_micros: i64) {
        self.i64(pg_micros);
    }

    /// Bytes encoded and not yet taken.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Writes the trailer; the stream is complete.
    pub(crate) fn finish(&mut self) {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
    }

    /// The bytes encoded so far, leaving the encoder empty for the next chunk.
    pub(crate) fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// Empties the buffer after its bytes were sent (the header is not written again).
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }
}

/// Milliseconds since the Unix epoch as PostgreSQL's microseconds since 2000-01-01, or `None`
/// when that does not fit in an i64.
pub(crate) fn pg_micros(unix_ms: i64) -> Option<i64> {
    unix_ms.checked_sub(PG_EPOCH_OFFSET_MS)?.checked_mul(1000)
}

/// Whether a text value's length fits a binary COPY field.
pub(crate) fn text_fits(v: &str) -> bool {
    i32::try_from(v.len()).is_ok()
}

/// Runs `statement` (a `COPY ... FROM STDIN (FORMAT binary)`) on `conn`, encoding `rows` with
/// `encode_row` and sending the stream in chunks of about [`CHUNK_BYTES`]. Returns the number of
/// rows the server reports copied.
///
/// `encode_row` must not fail: callers validate rows before starting the copy, so a half-sent
/// stream is only ever the result of a connection error (which leaves the connection unusable).
pub(crate) async fn copy_rows<T>(
    conn: &mut PgConnection,
    statement: &'static str,
    rows: &[T],
    mut encode_row: impl FnMut(&mut CopyEncoder, &T),
) -> Result<u64, sqlx::Error> {
    let mut copy: PgCopyIn<&mut PgConnection> = conn.copy_in_raw(statement).await?;
    let mut enc = CopyEncoder::new(CHUNK_BYTES + 64 * 1024);
    for row in rows {
        encode_row(&mut enc, row);
        if enc.len() >= CHUNK_BYTES {
            if let Err(e) = copy.send(enc.buffer()).await {
                return Err(abort_after(copy, e).await);
            }
            enc.clear();
        }
    }
    enc.finish();
    if let Err(e) = copy.send(enc.buffer()).await {
        return Err(abort_after(copy, e).await);
    }
    copy.finish().await
}

/// Ends a COPY that failed while sending, so the connection is left in a defined state when it
/// still works, and returns the original error.
async fn abort_after(copy: PgCopyIn<&mut PgConnection>, err: sqlx::Error) -> sqlx::Error {
    if let Err(abort) = copy.abort("markoff: sending the COPY data failed").await {
        tracing::debug!(error = %abort, "Aborting a failed COPY failed too.");
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tuple_byte_exact() {
        let mut e = CopyEncoder::new(0);
        e.tuple(6);
        e.i64(0x0102_0304_0506_0708);
        e.i32(-2);
        e.timestamptz(pg_micros(946_684_800_001).unwrap());
        e.opt_f64(Some(1.5));
        e.opt_f64(None);
        e.i16(3);
        e.text("ab");
        e.finish();
        let mut want: Vec<u8> = Vec::new();
        want.extend_from_slice(b"PGCOPY\n\xff\r\n\x00"); // signature
        want.extend_from_slice(&[0, 0, 0, 0]); // flags
        want.extend_from_slice(&[0, 0, 0, 0]); // header extension length
        want.extend_from_slice(&[0, 6]); // field count
        want.extend_from_slice(&[0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        want.extend_from_slice(&[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfe]);
        want.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]); // 1000 µs
        want.extend_from_slice(&[0, 0, 0, 8, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]); // 1.5
        want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // NULL
        want.extend_from_slice(&[0, 0, 0, 2, 0, 3]);
        want.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        want.extend_from_slice(&[0xff, 0xff]); // trailer
        assert_eq!(e.buffer(), want.as_slice());
        assert_eq!(HEADER.len(), 19);
    }

    #[test]
    fn timestamps_convert_and_overflow_is_caught() {
        assert_eq!(pg_micros(PG_EPOCH_OFFSET_MS), Some(0));
        assert_eq!(pg_micros(0), Some(-946_684_800_000_000));
        assert_eq!(pg_micros(i64::MAX), None);
        assert_eq!(pg_micros(i64::MIN), None);
    }

    #[test]
    fn clear_keeps_no_header() {
        let mut e = CopyEncoder::new(0);
        e.clear();
        e.tuple(1);
        e.null();
        assert_eq!(e.buffer(), &[0, 1, 0xff, 0xff, 0xff, 0xff]);
    }
}
