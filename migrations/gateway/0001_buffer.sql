-- Gateway buffer, version 1: sensors, readings, sync cursors, counters.
-- Applied by the daemon at start (daemon/src/store/migrations.rs); PRAGMA user_version records it.

-- Small key/value facts of the buffer itself, e.g. the next readings seq (never reused).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

-- Every sensor the gateway has seen. `id` is the compact key that readings refer to.
CREATE TABLE sensors (
    id         INTEGER PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL DEFAULT 'other',
    unit       TEXT NOT NULL DEFAULT '',
    floor      TEXT,
    room       TEXT,
    source     TEXT NOT NULL DEFAULT '',
    updated_ms INTEGER NOT NULL DEFAULT 0
);

-- Append-only readings. seq is the gateway's monotonic sequence (the sync idempotency key),
-- ts the read time in ms since the epoch (UTC), value NULL unless a trustworthy number exists,
-- quality 0 good, 1 bad, 2 stale, 3 comm_error.
CREATE TABLE readings (
    seq     INTEGER PRIMARY KEY,
    sensor  INTEGER NOT NULL,
    ts      INTEGER NOT NULL,
    value   REAL,
    quality INTEGER NOT NULL
);
CREATE INDEX readings_sensor_ts ON readings (sensor, ts);

-- How far each stream has been confirmed by the centre. Rows at or below last_seq are "synced".
CREATE TABLE sync_cursor (
    stream     TEXT PRIMARY KEY,
    last_seq   INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Rows dropped by the disk budget or retention, by reason, over the life of the database.
CREATE TABLE dropped_rows (
    reason TEXT PRIMARY KEY,
    rows   INTEGER NOT NULL
) WITHOUT ROWID;
