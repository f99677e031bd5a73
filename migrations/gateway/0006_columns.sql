-- Gateway buffer, version 6: readings as an append-only log of commit batches, folded into
-- per-sensor chunks (docs/storage.md). Only creates the tables: the rows of `readings` are moved
-- into `batches` by daemon/src/store/upgrade.rs in steps, which then drops `readings`.

-- One row per writer commit that held readings: the readings of seqs
-- first_seq .. first_seq + readings - 1, encoded as columns (daemon/src/store/codec). Rows are
-- appended at the end and deleted from the front; nothing else ever changes them.
CREATE TABLE IF NOT EXISTS batches (
    first_seq INTEGER PRIMARY KEY,
    readings  INTEGER NOT NULL,
    min_ts    INTEGER NOT NULL,
    max_ts    INTEGER NOT NULL,
    data      BLOB NOT NULL
);

-- One row per fold: the batches of seqs first_seq..=last_seq regrouped by sensor into `chunks`.
CREATE TABLE IF NOT EXISTS folds (
    id        INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    readings  INTEGER NOT NULL,
    min_ts    INTEGER NOT NULL,
    max_ts    INTEGER NOT NULL
);

-- One sensor's readings of one fold, encoded as columns. id = fold * 2^32 + sensor, so the
-- chunks of a fold are one key range and are appended in key order. good, low, high and total
-- summarise the values of quality good (the rollup of charts and the assistant's history).
CREATE TABLE IF NOT EXISTS chunks (
    id       INTEGER PRIMARY KEY,
    readings INTEGER NOT NULL,
    min_ts   INTEGER NOT NULL,
    max_ts   INTEGER NOT NULL,
    good     INTEGER NOT NULL,
    low      REAL,
    high     REAL,
    total    REAL,
    data     BLOB NOT NULL
);

-- The newest folded reading of each sensor (by read time), so the latest-value cache starts
-- without reading history. value_bits holds the f64's bits (NULL without a value).
CREATE TABLE IF NOT EXISTS latest (
    sensor     INTEGER PRIMARY KEY,
    seq        INTEGER NOT NULL,
    ts         INTEGER NOT NULL,
    value_bits INTEGER,
    quality    INTEGER NOT NULL
);
