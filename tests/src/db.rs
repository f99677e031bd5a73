//! Looking into a gateway's buffer from outside the daemon, the way an operator (or the future
//! uploader) would: a separate SQLite connection on the same file.
//!
//! Owns: read-only inspection helpers and the sync-cursor write the uploader will do. Does not own:
//! the schema (`migrations/gateway/`).
//!
//! Tests look at the stored readings with SQL on a table `readings (seq, sensor, ts, value,
//! quality)`, one row per reading, whatever layout the buffer keeps them in: [`refresh_readings`]
//! fills a temporary table of that name on the test's own connection from what the buffer holds
//! (`markoff::store::inspect`).
//! It shadows a real table of the same name in the database, and it is filled inside the
//! connection's current transaction, so queries in one read transaction see one snapshot.

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

/// Every reading the buffer on `conn` holds, in seq order: `(seq, sensor, ts, value, quality)`,
/// as `markoff::store::inspect` reads them from whichever layout the file has.
///
/// # Panics
/// The buffer cannot be read.
pub fn stored_readings(conn: &Connection) -> Vec<StoredRow> {
    try_stored_readings(conn).unwrap_or_else(|e| panic!("cannot read the stored readings: {e}"))
}

fn try_stored_readings(conn: &Connection) -> rusqlite::Result<Vec<StoredRow>> {
    Ok(markoff::store::inspect::readings(conn)?
        .into_iter()
        .map(|r| (r.seq, r.sensor, r.ts, r.value, i64::from(r.quality)))
        .collect())
}

/// One stored reading: `(seq, sensor, ts, value, quality)`.
pub type StoredRow = (i64, i64, i64, Option<f64>, i64);

/// (Re)fills the temporary table `readings (seq, sensor, ts, value, quality)` of `conn` with every
/// reading the buffer holds, unless no other connection committed since the last fill. Call it
/// before each query on `readings` (the helpers of this module read the stored readings
/// directly). Inside a transaction it reads that transaction's snapshot.
///
/// # Errors
/// The buffer cannot be read (for example while a test kills and restarts the daemon).
pub fn try_refresh_readings(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS readings (seq INTEGER PRIMARY KEY, \
         sensor INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL, quality INTEGER NOT NULL); \
         CREATE TEMP TABLE IF NOT EXISTS readings_filled_at (version INTEGER NOT NULL);",
    )?;
    conn.execute_batch("SAVEPOINT refresh_readings")?;
    let filled = fill_readings(conn);
    let end = if filled.is_ok() {
        "RELEASE refresh_readings"
    } else {
        "ROLLBACK TO refresh_readings; RELEASE refresh_readings"
    };
    let ended = conn.execute_batch(end);
    filled?;
    ended
}

fn fill_readings(conn: &Connection) -> rusqlite::Result<()> {
    // Read first: it starts the snapshot that the fill then copies.
    let version: i64 = conn.query_row("PRAGMA main.data_version", [], |r| r.get(0))?;
    let filled_at: Option<i64> = conn
        .query_row("SELECT version FROM temp.readings_filled_at", [], |r| {
            r.get(0)
        })
        .optional()?;
    if filled_at == Some(version) {
        return Ok(());
    }
    let all = try_stored_readings(conn)?;
    conn.execute("DELETE FROM temp.readings", [])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO temp.readings (seq, sensor, ts, value, quality) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (seq, sensor, ts, value, quality) in all {
        insert.execute(rusqlite::params![seq, sensor, ts, value, quality])?;
    }
    conn.execute("DELETE FROM temp.readings_filled_at", [])?;
    conn.execute(
        "INSERT INTO temp.readings_filled_at (version) VALUES (?1)",
        [version],
    )?;
    Ok(())
}

/// [`try_refresh_readings`], for tests that cannot go on without it.
///
/// # Panics
/// The buffer cannot be read.
pub fn refresh_readings(conn: &Connection) {
    try_refresh_readings(conn).unwrap_or_else(|e| panic!("cannot read the stored readings: {e}"));
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
/// The buffer cannot be read.
pub fn checksum(conn: &Connection, upto: i64) -> Checksum {
    let mut sum = Checksum {
        count: 0,
        min_seq: None,
        max_seq: None,
        sum_seq: 0,
        sum_ts: 0,
        sum_seq_sensor: 0,
        sum_quality: 0,
        total_value: 0.0,
    };
    // In seq order, so the float sum is the same whenever the rows are.
    for (seq, sensor, ts, value, quality) in stored_readings(conn) {
        if seq > upto {
            break;
        }
        sum.count += 1;
        sum.min_seq = Some(sum.min_seq.map_or(seq, |m: i64| m.min(seq)));
        sum.max_seq = Some(sum.max_seq.map_or(seq, |m: i64| m.max(seq)));
        sum.sum_seq = sum.sum_seq.wrapping_add(seq);
        sum.sum_ts = sum.sum_ts.wrapping_add(ts);
        sum.sum_seq_sensor = sum.sum_seq_sensor.wrapping_add(seq.wrapping_mul(sensor));
        sum.sum_quality = sum.sum_quality.wrapping_add(quality);
        sum.total_value += value.unwrap_or(0.0);
    }
    sum
}

/// `(count, min(seq), max(seq))` of all readings.
///
/// # Panics
/// The query fails.
pub fn extent(conn: &Connection) -> (i64, Option<i64>, Option<i64>) {
    let all = stored_readings(conn);
    let count = i64::try_from(all.len()).unwrap_or(i64::MAX);
    (count, all.first().map(|r| r.0), all.last().map(|r| r.0))
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
    let all = stored_readings(conn);
    let at = all.binary_search_by_key(&seq, |r| r.0).ok()?;
    let (_, sensor, _, value, _) = all[at];
    let key = conn
        .query_row("SELECT key FROM sensors WHERE id = ?1", [sensor], |r| {
            r.get(0)
        })
        .optional()
        .unwrap_or_else(|e| panic!("sensor query failed: {e}"))?;
    Some((key, value))
}
