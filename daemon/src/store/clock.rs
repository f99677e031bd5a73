//! Clock epochs in the buffer (`clock_epochs`, docs/clock.md): spans of readings stamped from the
//! monotonic clock while the system clock was not trusted, and the offsets learnt for them.
//!
//! Owns: every statement on `clock_epochs`. Does not own: deciding when a span begins or ends
//! (`crate::clock`), applying offsets to uploaded readings (`crate::sync`). The readings of a span
//! are never rewritten.

use rusqlite::{OptionalExtension, params};

use super::{IngestHandle, StoreError, SyncReader};

/// Where a span stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochState {
    /// Waiting for its offset: its readings are held back from upload.
    Pending,
    /// Its offset is known and applied to its readings on upload.
    Corrected,
    /// Its readings go (or went) out as stamped; `offset_ms` is recorded if learnt later.
    Uncorrected,
}

impl EpochState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Corrected => "corrected",
            Self::Uncorrected => "uncorrected",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "corrected" => Self::Corrected,
            _ => Self::Uncorrected,
        }
    }
}

/// One span of readings stamped from the monotonic clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockEpoch {
    /// Its id (increasing).
    pub id: i64,
    /// Why it began (`boot`, `step`, `lost_sync`).
    pub reason: String,
    /// The kernel boot its monotonic stamps belong to.
    pub boot_id: String,
    /// Its stamps are `CLOCK_BOOTTIME` (ms) plus this.
    pub mono_base: i64,
    /// Its readings have a seq above this ...
    pub after_seq: i64,
    /// ... and not above this, once it is closed.
    pub last_seq: Option<i64>,
    /// Its first stamp.
    pub from_ms: i64,
    /// Its last stamp, once closed.
    pub to_ms: Option<i64>,
    /// Add this to its stamps for real time, once learnt.
    pub offset_ms: Option<i64>,
    /// Where it stands.
    pub state: EpochState,
    /// When it was closed (real time).
    pub closed_ms: Option<i64>,
}

impl ClockEpoch {
    /// Whether the reading `seq` stamped `ts_ms` belongs to this span.
    pub fn contains(&self, seq: i64, ts_ms: i64) -> bool {
        seq > self.after_seq
            && self.last_seq.is_none_or(|l| seq <= l)
            && ts_ms >= self.from_ms
            && self.to_ms.is_none_or(|t| ts_ms <= t)
    }

    fn from_row(r: &rusqlite::Row<'_>) -> Result<Self, rusqlite::Error> {
        Ok(Self {
            id: r.get(0)?,
            reason: r.get(1)?,
            boot_id: r.get(2)?,
            mono_base: r.get(3)?,
            after_seq: r.get(4)?,
            last_seq: r.get(5)?,
            from_ms: r.get(6)?,
            to_ms: r.get(7)?,
            offset_ms: r.get(8)?,
            state: EpochState::parse(&r.get::<_, String>(9)?),
            closed_ms: r.get(10)?,
        })
    }
}

const COLUMNS: &str = "id, reason, boot_id, mono_base, after_seq, last_seq, from_ms, to_ms, \
                       offset_ms, state, closed_ms";

fn all(conn: &rusqlite::Connection) -> Result<Vec<ClockEpoch>, rusqlite::Error> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM clock_epochs ORDER BY id"))?;
    let rows = stmt.query_map([], ClockEpoch::from_row)?;
    rows.collect()
}

impl IngestHandle {
    /// At start: closes the spans an earlier boot left open (their offset can never be learnt:
    /// `uncorrected`, ending at `last_seq`) and returns the span this boot left open, if any.
    ///
    /// # Errors
    /// [`StoreError`] when the buffer cannot be written.
    pub async fn clock_epochs_start(
        &self,
        boot_id: &str,
        last_seq: i64,
        now_ms: i64,
    ) -> Result<Option<ClockEpoch>, StoreError> {
        let boot = boot_id.to_owned();
        self.transact(move |tx| {
            tx.execute(
                "UPDATE clock_epochs SET last_seq = ?2, closed_ms = ?3, state = 'uncorrected' \
                 WHERE last_seq IS NULL AND boot_id <> ?1",
                params![boot, last_seq, now_ms],
            )?;
            tx.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM clock_epochs WHERE last_seq IS NULL \
                     ORDER BY id DESC LIMIT 1"
                ),
                [],
                ClockEpoch::from_row,
            )
            .optional()
        })
        .await
    }

    /// Opens a span (unless one is open already).
    ///
    /// # Errors
    /// [`StoreError`] when the buffer cannot be written.
    pub async fn clock_epoch_open(
        &self,
        reason: &str,
        boot_id: &str,
        mono_base: i64,
        after_seq: i64,
        from_ms: i64,
    ) -> Result<(), StoreError> {
        let (reason, boot) = (reason.to_owned(), boot_id.to_owned());
        self.transact(move |tx| {
            tx.execute(
                "INSERT INTO clock_epochs (reason, boot_id, mono_base, after_seq, from_ms, state) \
                 SELECT ?1, ?2, ?3, ?4, ?5, 'pending' \
                 WHERE NOT EXISTS (SELECT 1 FROM clock_epochs WHERE last_seq IS NULL)",
                params![reason, boot, mono_base, after_seq, from_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// Closes the open span: its readings end at `last_seq` and stamp `to_ms`, and are
    /// `offset_ms` behind real time.
    ///
    /// # Errors
    /// [`StoreError`] when the buffer cannot be written.
    pub async fn clock_epoch_close(
        &self,
        last_seq: i64,
        to_ms: i64,
        offset_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.transact(move |tx| {
            tx.execute(
                "UPDATE clock_epochs SET last_seq = max(?1, after_seq), to_ms = ?2, offset_ms = ?3, \
                 closed_ms = ?4, \
                 state = CASE state WHEN 'pending' THEN 'corrected' ELSE state END \
                 WHERE last_seq IS NULL",
                params![last_seq, to_ms, offset_ms, now_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// Gives up waiting for the offset of a span open for longer than `hold_ms` (by its own
    /// stamps): its readings are uploaded as stamped from now on.
    ///
    /// # Errors
    /// [`StoreError`] when the buffer cannot be written.
    pub async fn clock_epochs_release(
        &self,
        now_ms: i64,
        hold_ms: i64,
    ) -> Result<usize, StoreError> {
        self.transact(move |tx| {
            tx.execute(
                "UPDATE clock_epochs SET state = 'uncorrected' \
                 WHERE state = 'pending' AND last_seq IS NULL AND ?1 - from_ms > ?2",
                params![now_ms, hold_ms],
            )
        })
        .await
    }
}

impl SyncReader {
    /// Every clock epoch, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Query`].
    pub fn clock_epochs(&self) -> Result<Vec<ClockEpoch>, StoreError> {
        Ok(all(&self.conn)?)
    }
}

/// Retention must not judge readings of a span by their uncorrected stamps: readings after the
/// start of a span that is open or was closed at or after `cutoff` (real time) are kept, so
/// retention waits at most the span's length. Returns the highest seq retention may delete.
pub(crate) fn retention_horizon(
    conn: &rusqlite::Connection,
    cutoff: i64,
) -> Result<i64, rusqlite::Error> {
    conn.query_row(
        "SELECT coalesce(min(after_seq), 9223372036854775807) FROM clock_epochs \
         WHERE last_seq IS NULL OR closed_ms IS NULL OR closed_ms >= ?1",
        [cutoff],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(after: i64, last: Option<i64>, from: i64, to: Option<i64>) -> ClockEpoch {
        ClockEpoch {
            id: 1,
            reason: "boot".into(),
            boot_id: "b".into(),
            mono_base: 0,
            after_seq: after,
            last_seq: last,
            from_ms: from,
            to_ms: to,
            offset_ms: None,
            state: EpochState::Pending,
            closed_ms: None,
        }
    }

    #[test]
    fn a_reading_belongs_to_a_span_by_seq_and_stamp() {
        let e = epoch(10, Some(20), 1_000, Some(2_000));
        assert!(e.contains(11, 1_000));
        assert!(e.contains(20, 2_000));
        assert!(!e.contains(10, 1_500), "committed before the span");
        assert!(!e.contains(21, 1_500), "committed after the span closed");
        assert!(!e.contains(15, 999), "stamped before the span began");
        assert!(!e.contains(15, 5_000), "stamped by the trusted clock");
        let open = epoch(10, None, 1_000, None);
        assert!(open.contains(1_000_000, i64::MAX));
    }

    #[test]
    fn retention_stops_at_spans_still_within_retention() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        assert_eq!(retention_horizon(&conn, 100).unwrap(), i64::MAX);
        conn.execute_batch(
            "INSERT INTO clock_epochs (reason, boot_id, mono_base, after_seq, last_seq, from_ms, \
             to_ms, offset_ms, state, closed_ms) VALUES \
             ('boot', 'a', 0, 5, 9, 0, 10, 90, 'corrected', 100), \
             ('step', 'a', 0, 20, NULL, 200, NULL, NULL, 'pending', NULL)",
        )
        .unwrap();
        assert_eq!(retention_horizon(&conn, 100).unwrap(), 5);
        assert_eq!(retention_horizon(&conn, 101).unwrap(), 20);
    }
}
