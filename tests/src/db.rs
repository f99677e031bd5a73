//! Looking into a gateway's buffer from outside the daemon, the way an operator (or the future
//! uploader) would: a separate SQLite connection on the same file.
//!
//! Owns: read-only inspection helpers and the sync-cursor write the uploader will do. Does not own:
//! the schema (`migrations/gateway/`).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// Opens `path` read-only. A read-only connection never checkpoints, so inspecting a buffer
/// between a crash and the restart does not tidy up what the daemon must recover by itself.
///
/// # Panics
/// The file cannot be opened.
pub fn open_read_only(path: &Path) -> Connection {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("cannot open {} read-only: {e}", path.display()));
    conn.busy_timeout(Duration::from_secs(10))
        .expect("set a busy timeout");
    conn
}

/// Opens `path` read-write (for what the tests do in place of other processes: the sync cursor,
/// holding a lock).
///
/// # Panics
/// The file cannot be opened.
pub fn open_read_write(path: &Path, busy_timeout: Duration) -> Connection {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("cannot open {} read-write: {e}", path.display()));
    conn.busy_timeout(busy_timeout).expect("set a busy timeout");
    conn
}

/// A fingerprint of the readings with `seq <= upto`: equal fingerprints mean (with overwhelming
/// likelihood) the same rows with the same contents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Checksum {
    /// Rows.
    pub count: i64,
    /// Smallest seq.
    pub min_seq: Option<i64>,
    /// Largest seq.
    pub max_seq: Option<i64>,
    /// Sum of seq.
    pub sum_seq: i64,
    /// Sum of ts.
    pub sum_ts: i64,
    /// Sum of seq * sensor id (catches readings moved between sensors).
    pub sum_seq_sensor: i64,
    /// Sum of quality codes.
    pub sum_quality: i64,
    /// Sum of values, in seq order (NULL counts as 0).
    pub total_value: f64,
}

/// The [`Checksum`] of the readings with `seq <= upto`.
///
/// # Panics
/// The query fails.
pub fn checksum(conn: &Connection, upto: i64) -> Checksum {
    conn.query_row(
        "SELECT count(*), min(seq), max(seq), coalesce(sum(seq), 0), coalesce(sum(ts), 0), \
         coalesce(sum(seq * sensor), 0), coalesce(sum(quality), 0), total(value) \
         FROM (SELECT * FROM readings WHERE seq <= ?1 ORDER BY seq)",
        [upto],
        |r| {
            Ok(Checksum {
                count: r.get(0)?,
                min_seq: r.get(1)?,
                max_seq: r.get(2)?,
                sum_seq: r.get(3)?,
                sum_ts: r.get(4)?,
                sum_seq_sensor: r.get(5)?,
                sum_quality: r.get(6)?,
                total_value: r.get(7)?,
            })
        },
    )
    .unwrap_or_else(|e| panic!("checksum query failed: {e}"))
}

/// `(count, min(seq), max(seq))` of all readings.
///
/// # Panics
/// The query fails.
pub fn extent(conn: &Connection) -> (i64, Option<i64>, Option<i64>) {
    conn.query_row(
        "SELECT count(*), min(seq), max(seq) FROM readings",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap_or_else(|e| panic!("extent query failed: {e}"))
}

/// Highest readings seq, 0 when empty.
///
/// # Panics
/// The query fails.
pub fn max_seq(conn: &Connection) -> i64 {
    extent(conn).2.unwrap_or(0)
}

/// `PRAGMA integrity_check`, joined into one string (`"ok"` when healthy).
///
/// # Panics
/// The pragma cannot run.
pub fn integrity_check(conn: &Connection) -> String {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .expect("prepare integrity_check");
    let rows: Result<Vec<String>, _> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("run integrity_check")
        .collect();
    rows.expect("read integrity_check").join("\n")
}

/// Bytes in pages holding data, computed the way the daemon's disk budget does.
///
/// # Panics
/// The pragmas cannot run.
pub fn used_bytes(conn: &Connection) -> u64 {
    let get = |p: &str| -> i64 {
        conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("PRAGMA {p}: {e}"))
    };
    let used = (get("page_count") - get("freelist_count")).max(0) * get("page_size");
    u64::try_from(used).unwrap_or(0)
}

/// Records that the centre confirmed readings up to `seq`, as the uploader does.
///
/// # Panics
/// The write fails.
pub fn set_sync_cursor(conn: &Connection, seq: i64) {
    conn.execute(
        "INSERT INTO sync_cursor (stream, last_seq, updated_ms) VALUES ('readings', ?1, 0) \
         ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq",
        [seq],
    )
    .unwrap_or_else(|e| panic!("cannot write the sync cursor: {e}"));
}

/// The value of a sensor's reading at `seq`, with the sensor key: `None` when no such row.
///
/// # Panics
/// The query fails.
pub fn reading_at(conn: &Connection, seq: i64) -> Option<(String, Option<f64>)> {
    conn.query_row(
        "SELECT s.key, r.value FROM readings r JOIN sensors s ON s.id = r.sensor WHERE r.seq = ?1",
        [seq],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .unwrap_or_else(|e| panic!("reading query failed: {e}"))
}
