-- Clock epochs (docs/clock.md): spans of readings stamped from the monotonic clock while the
-- system clock was not trusted. The readings themselves are never rewritten: the offset learnt
-- when the clock is trusted again is applied when they are read for upload.
--
-- A span's readings are those with after_seq < seq <= last_seq (last_seq NULL: still open) whose
-- stamp lies in from_ms..=to_ms (to_ms NULL: open). state: 'pending' (waiting for its offset;
-- its readings are held back from upload), 'corrected' (offset_ms known; applied on upload),
-- 'uncorrected' (uploaded as stamped: held too long, or left open by an earlier boot; offset_ms is
-- recorded if it is learnt later).
CREATE TABLE IF NOT EXISTS clock_epochs (
    id         INTEGER PRIMARY KEY,
    reason     TEXT NOT NULL,
    boot_id    TEXT NOT NULL,
    mono_base  INTEGER NOT NULL,
    after_seq  INTEGER NOT NULL,
    last_seq   INTEGER,
    from_ms    INTEGER NOT NULL,
    to_ms      INTEGER,
    offset_ms  INTEGER,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'corrected', 'uncorrected')),
    closed_ms  INTEGER
);
