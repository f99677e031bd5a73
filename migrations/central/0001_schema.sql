-- Central schema, version 1: buildings, gateways, site metadata, readings (partitioned by time),
-- alarm events and the upload cursors. Applied by `markoff-central migrate` (cloud-sync/src/admin.rs).
-- docs/central-schema.md describes every table.

CREATE SCHEMA IF NOT EXISTS markoff;

-- One row per building. Created by `markoff-central add-gateway --building B`; its gateways
-- upload its name and address with the site metadata.
CREATE TABLE markoff.buildings (
    building_id text PRIMARY KEY,
    name        text,
    address     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per gateway. role_name is the PostgreSQL role the gateway logs in as (NULL once the
-- gateway is removed and its role dropped; the row stays so its data keeps its building).
CREATE TABLE markoff.gateways (
    gateway_id   text PRIMARY KEY,
    building_id  text NOT NULL REFERENCES markoff.buildings,
    role_name    name UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_contact timestamptz,
    removed_at   timestamptz,
    CHECK ((role_name IS NULL) = (removed_at IS NOT NULL))
);
CREATE INDEX gateways_building ON markoff.gateways (building_id);

-- Site metadata, per building: the latest snapshot a gateway of the building uploaded.
-- References between them (room -> floor, room -> tenant) are by id, not foreign keys: a
-- snapshot is replaced as a whole and may name a floor before it lists it.
CREATE TABLE markoff.floors (
    building_id text NOT NULL REFERENCES markoff.buildings ON DELETE CASCADE,
    floor_id    text NOT NULL,
    name        text NOT NULL,
    level       integer,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (building_id, floor_id)
);

CREATE TABLE markoff.tenants (
    building_id text NOT NULL REFERENCES markoff.buildings ON DELETE CASCADE,
    tenant_id   text NOT NULL,
    name        text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (building_id, tenant_id)
);

CREATE TABLE markoff.rooms (
    building_id text NOT NULL REFERENCES markoff.buildings ON DELETE CASCADE,
    room_id     text NOT NULL,
    floor_id    text,
    name        text NOT NULL,
    tenant_id   text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (building_id, room_id)
);

-- Sensors, keyed by the gateway-local integer id that readings carry. Never deleted by an
-- upload: old readings keep their meaning when a sensor leaves the configuration.
CREATE TABLE markoff.sensors (
    gateway_id text NOT NULL,
    sensor_id  integer NOT NULL,
    key        text NOT NULL,
    name       text NOT NULL,
    kind       text NOT NULL,
    unit       text NOT NULL,
    floor      text,
    room       text,
    source     text NOT NULL,
    updated    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, sensor_id)
);

-- Readings, partitioned by month of ts (markoff.ensure_partitions creates the partitions; rows
-- outside every monthly partition land in readings_default). quality: 0 good, 1 bad, 2 stale,
-- 3 comm_error; value is NULL unless a trustworthy number exists.
-- No foreign keys and one index: each costs ingest rate (docs/central-schema.md, "Performance").
CREATE TABLE markoff.readings (
    gateway_id text NOT NULL,
    seq        bigint NOT NULL,
    sensor_id  integer NOT NULL,
    ts         timestamptz NOT NULL,
    value      double precision,
    quality    smallint NOT NULL CHECK (quality BETWEEN 0 AND 3)
) PARTITION BY RANGE (ts);

-- The idempotency key (gateway_id, seq) plus ts, because a unique index on a partitioned table
-- must contain the partition key; a resent row carries the same ts, so it still collides.
-- Ordered (gateway_id, ts, seq) so it also serves "this gateway between t1 and t2".
CREATE UNIQUE INDEX readings_key ON markoff.readings (gateway_id, ts, seq);

CREATE TABLE markoff.readings_default PARTITION OF markoff.readings DEFAULT;

-- The newest reading of every sensor (by ts, then seq), kept by the upload transaction so the
-- office's latest values need no index on readings by sensor. Every upload rewrites most of its
-- gateway's rows: the free space of fillfactor 50 lets those updates stay on their page (HOT).
CREATE TABLE markoff.sensor_latest (
    gateway_id text NOT NULL,
    sensor_id  integer NOT NULL,
    seq        bigint NOT NULL,
    ts         timestamptz NOT NULL,
    value      double precision,
    quality    smallint NOT NULL,
    PRIMARY KEY (gateway_id, sensor_id)
) WITH (fillfactor = 50);

-- Every alarm transition, as the gateway recorded it; seq is the gateway's alarm event seq.
CREATE TABLE markoff.alarm_events (
    gateway_id text NOT NULL,
    seq        bigint NOT NULL,
    ts         timestamptz NOT NULL,
    alarm_id   bigint NOT NULL,
    alarm      text NOT NULL,
    rule       text NOT NULL,
    sensor     text,
    event      text NOT NULL,
    state      text NOT NULL,
    severity   text NOT NULL,
    value      double precision,
    message    text NOT NULL,
    actor      text,
    channel    text,
    PRIMARY KEY (gateway_id, seq)
);
CREATE INDEX alarm_events_alarm ON markoff.alarm_events (gateway_id, alarm_id, seq DESC);

-- How far each gateway's streams have arrived. last_seq is the highest seq committed here (for
-- metadata: the version of the last snapshot); an upload locks this row for its whole transaction.
-- newest_ts is the newest row time seen; head_seq the newest seq the gateway reported having
-- (head_seq - last_seq is its backlog).
CREATE TABLE markoff.sync_cursors (
    gateway_id text NOT NULL,
    stream     text NOT NULL CHECK (stream IN ('readings', 'alarm_events', 'metadata')),
    last_seq   bigint NOT NULL DEFAULT 0,
    newest_ts  timestamptz,
    head_seq   bigint,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, stream)
);

-- Creates the monthly partitions of markoff.readings (UTC months) from months_back months before
-- the current one to months_ahead months after it, and returns how many it created. Rows of a new
-- month that already sit in the default partition are moved into it. Safe to call any time.
CREATE FUNCTION markoff.ensure_partitions(months_ahead integer, months_back integer DEFAULT 1)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    lo timestamptz;
    hi timestamptz;
    part text;
    created integer := 0;
BEGIN
    IF months_ahead < 0 OR months_back < 0 THEN
        RAISE EXCEPTION 'months_ahead and months_back must not be negative';
    END IF;
    -- One maintainer at a time; uploads go on meanwhile except during each short ATTACH.
    PERFORM pg_advisory_xact_lock(hashtext('markoff.ensure_partitions'));
    FOR i IN -months_back .. months_ahead LOOP
        lo := (this_month + make_interval(months => i)) AT TIME ZONE 'UTC';
        hi := (this_month + make_interval(months => i + 1)) AT TIME ZONE 'UTC';
        part := 'readings_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
        CONTINUE WHEN to_regclass(format('markoff.%I', part)) IS NOT NULL;
        IF EXISTS (SELECT 1 FROM markoff.readings_default WHERE ts >= lo AND ts < hi) THEN
            EXECUTE format('CREATE TABLE markoff.%I (LIKE markoff.readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format('WITH moved AS (DELETE FROM markoff.readings_default WHERE ts >= %L AND ts < %L RETURNING *) '
                           'INSERT INTO markoff.%I SELECT * FROM moved', lo, hi, part);
            EXECUTE format('ALTER TABLE markoff.readings ATTACH PARTITION markoff.%I FOR VALUES FROM (%L) TO (%L)',
                           part, lo, hi);
        ELSE
            EXECUTE format('CREATE TABLE markoff.%I PARTITION OF markoff.readings FOR VALUES FROM (%L) TO (%L)',
                           part, lo, hi);
        END IF;
        created := created + 1;
    END LOOP;
    RETURN created;
END;
$$;
