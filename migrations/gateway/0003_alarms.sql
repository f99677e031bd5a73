-- Gateway buffer, version 3: local alarms (state, events), notification outbox, audit log.

-- One row per alarm instance: a rule applied to one sensor. `id` is the short number staff type
-- (`markoff ack 12`, `/ack 12`); `key` is "<rule>/<sensor>" and stays stable across restarts.
CREATE TABLE alarm_state (
    id               INTEGER PRIMARY KEY,
    key              TEXT NOT NULL UNIQUE,
    rule             TEXT NOT NULL,
    sensor           TEXT NOT NULL,
    -- normal | active_unacked | active_acked | cleared_unacked
    state            TEXT NOT NULL,
    severity         TEXT NOT NULL,
    -- The engine's view of the condition, so that a restart resumes delays where they were:
    -- 1 while the condition holds (after deadband), the ms it started to hold (on-delay running),
    -- the ms it stopped holding while the alarm is active (off-delay running).
    condition        INTEGER NOT NULL DEFAULT 0,
    pending_since    INTEGER,
    clearing_since   INTEGER,
    value            REAL,
    raised_ms        INTEGER,
    acked_ms         INTEGER,
    acked_by         TEXT,
    cleared_ms       INTEGER,
    shelved_until    INTEGER,
    shelved_by       TEXT,
    out_of_service   INTEGER NOT NULL DEFAULT 0,
    last_notified_ms INTEGER,
    updated_ms       INTEGER NOT NULL
);

-- Every lifecycle transition, append-only, never dropped by the disk budget. seq is the stream's
-- own sequence (the sync idempotency key of the `alarm_events` stream); AUTOINCREMENT keeps a seq
-- from ever being reused.
CREATE TABLE alarm_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    ts       INTEGER NOT NULL,
    alarm_id INTEGER NOT NULL,
    alarm    TEXT NOT NULL,
    rule     TEXT NOT NULL,
    sensor   TEXT,
    -- raised | acked | cleared | normal | shelved | unshelved | out_of_service | in_service
    event    TEXT NOT NULL,
    -- state after the event
    state    TEXT NOT NULL,
    severity TEXT NOT NULL,
    value    REAL,
    message  TEXT NOT NULL,
    actor    TEXT,
    channel  TEXT
);
CREATE INDEX alarm_events_alarm ON alarm_events (alarm_id, seq);

-- Notifications to deliver: one row per notification per subscriber, kept until the channel
-- accepts it (sent_ms set), retried with backoff meanwhile. dedup_key makes a notification that
-- is produced twice (a restart replaying an evaluation) a single row.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    dedup_key       TEXT NOT NULL UNIQUE,
    subscriber      TEXT NOT NULL,
    channel         TEXT NOT NULL,
    address         TEXT NOT NULL,
    alarm_id        INTEGER,
    event_seq       INTEGER,
    -- raised | cleared | normal | reminder | ...
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    text            TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    sent_ms         INTEGER,
    -- id of the summary message this row was folded into by flood control
    summary_id      INTEGER
);
CREATE INDEX outbox_pending ON outbox (channel, next_attempt_ms) WHERE sent_ms IS NULL;

-- Every write action a person asked for (ack, shelve, out-of-service), allowed or refused.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    ts      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    role    TEXT,
    channel TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT,
    outcome TEXT NOT NULL,
    detail  TEXT
);
