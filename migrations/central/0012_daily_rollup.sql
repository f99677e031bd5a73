-- Central schema, version 12: a daily rollup for long history charts, and the retention of the
-- 10-minute rollup. docs/central-schema.md, sections 2 and 4; docs/performance.md, section 9.4.
--
-- A year of one sensor is 52,560 rows of readings_10m, each on a heap page of its own (an upload
-- writes a bucket of every sensor of its gateway together): about 1.3 s from cache and far more
-- from disk. readings_1d holds the same aggregates per UTC day: 365 rows for that year.
--
-- It is filled by `markoff-central maintain` (markoff.rollup_1d), not by the upload, so the
-- upload path gains only a statement trigger that notices rows of a day that has already ended
-- ("late" rows: a backlog after an outage, the last seconds before midnight) and records that
-- the day must be rolled up again (readings_1d_pending). Readers combine the two (the web
-- application's history, docs/central-web.md):
--
--   * days before markoff.rollup_state's `through` with no pending mark of their gateway come
--     from readings_1d;
--   * days from `through` on (the current day, the days maintain has not rolled up yet) and days
--     with a pending mark come from readings_10m.
--
-- Why that is exact (every good reading counted once, in one of the two):
--   * maintain rolls a day up only once every transaction that could still write it without a
--     mark has ended: it notes the time t and then the next transaction id X, waits until no
--     transaction below X is running, and only then rolls up the days before t's day. A
--     transaction whose trigger ran before t has an id below X (it had written rows), so it has
--     committed or aborted; one whose trigger ran from t on sees those days as past and marks them.
--   * a mark is keyed by its transaction (xid8), so a mark is never shared between transactions:
--     maintain claims (deletes) only the marks its snapshot sees, in the same statement that
--     re-reads readings_10m for those days; the marked rows committed with their mark, so they are
--     in that snapshot. A transaction that commits later leaves its own mark for the next run.
--   * rolling up a gateway's day is serialised per gateway (an advisory lock taken before the
--     statement's snapshot), so a slower, older recomputation never overwrites a newer one.

-- === The daily rollup ===

CREATE TABLE markoff.readings_1d (
    gateway_id text NOT NULL,
    sensor_id  integer NOT NULL,
    -- The UTC day.
    day        date NOT NULL,
    -- As in readings_10m, summed over the day's buckets.
    n          bigint NOT NULL,
    sum        double precision NOT NULL,
    min        double precision,
    max        double precision,
    bad        bigint NOT NULL,
    PRIMARY KEY (gateway_id, sensor_id, day)
);

-- Days of a gateway with rows of readings_10m written after the day had ended: each such
-- transaction's own mark (xid), claimed by the next markoff.rollup_1d of the gateway.
CREATE TABLE markoff.readings_1d_pending (
    gateway_id text NOT NULL,
    day        date NOT NULL,
    xid        xid8 NOT NULL,
    PRIMARY KEY (gateway_id, day, xid)
);

-- How far readings_1d reaches: every day before `through` is rolled up for every gateway
-- (except its pending days). One row per rollup (`readings_1d`).
CREATE TABLE markoff.rollup_state (
    rollup  text PRIMARY KEY,
    through date NOT NULL
);

-- Where the rollup starts: the first day of readings_10m (its oldest bucket of any sensor, found
-- through the primary key sensor by sensor), or today when it is empty.
INSERT INTO markoff.rollup_state (rollup, through)
SELECT 'readings_1d',
       coalesce((SELECT min((f.bucket AT TIME ZONE 'UTC')::date)
                 FROM markoff.sensor_latest l
                 CROSS JOIN LATERAL (SELECT r.bucket FROM markoff.readings_10m r
                                     WHERE r.gateway_id = l.gateway_id
                                       AND r.sensor_id = l.sensor_id
                                     ORDER BY r.bucket LIMIT 1) f),
                (now() AT TIME ZONE 'UTC')::date);

-- Row-level security as on readings_10m; gateways get no privilege on these tables (the trigger
-- below writes the marks as their owner), the office's roles read them (granted below).
ALTER TABLE markoff.readings_1d ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.readings_1d FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.readings_1d USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_read ON markoff.readings_1d FOR SELECT
    USING (gateway_id = ANY (CAST((SELECT markoff.building_gateways()) AS text[])));

ALTER TABLE markoff.readings_1d_pending ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.readings_1d_pending FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.readings_1d_pending USING ((SELECT markoff.is_central()));
-- The trigger runs in the gateway's upload: it marks only the gateway's own rows.
CREATE POLICY gateway_insert ON markoff.readings_1d_pending FOR INSERT
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));

ALTER TABLE markoff.rollup_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.rollup_state FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.rollup_state USING ((SELECT markoff.is_central()));

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['readings_1d', 'readings_1d_pending'] LOOP
        EXECUTE format('CREATE POLICY web_user ON markoff.%I AS RESTRICTIVE FOR SELECT '
                       'USING ((SELECT markoff.web_gateways()) IS NULL '
                       'OR gateway_id = ANY (CAST((SELECT markoff.web_gateways()) AS text[])))', t);
    END LOOP;
END;
$$;

REVOKE ALL ON markoff.readings_1d, markoff.readings_1d_pending, markoff.rollup_state FROM PUBLIC;

-- === Marking late rows (in the upload's transaction) ===

-- Statement trigger on readings_10m (insert and update, one trigger each: a trigger with a
-- transition table has one event): the days before the current UTC day among the rows the
-- statement wrote are marked for this transaction. In the steady state no row qualifies and
-- nothing is written.
CREATE FUNCTION markoff.readings_1d_mark() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    today timestamptz := date_trunc('day', clock_timestamp(), 'UTC');
BEGIN
    INSERT INTO markoff.readings_1d_pending (gateway_id, day, xid)
    SELECT DISTINCT w.gateway_id, (w.bucket AT TIME ZONE 'UTC')::date, pg_current_xact_id()
    FROM written w
    WHERE w.bucket < today
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
REVOKE EXECUTE ON FUNCTION markoff.readings_1d_mark() FROM PUBLIC;

CREATE TRIGGER readings_1d_mark_insert AFTER INSERT ON markoff.readings_10m
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION markoff.readings_1d_mark();
CREATE TRIGGER readings_1d_mark_update AFTER UPDATE ON markoff.readings_10m
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION markoff.readings_1d_mark();

-- === Rolling up (markoff-central maintain) ===

-- Rolls up one gateway: every day in [p_from, p_to) and every day before p_to with a pending
-- mark its snapshot sees (the marks are claimed in the same statement), from readings_10m
-- through its primary key, sensor by sensor (the sensors whose newest reading is not older
-- than the day: sensor_latest). Rows are replaced, never summed into, so a day rolled up twice
-- is the same. Returns the number of daily rows written. The caller must have waited as the
-- header of this file says before passing a p_to beyond the days already rolled up.
CREATE FUNCTION markoff.rollup_1d(p_gateway_id text, p_from date, p_to date) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    written integer;
BEGIN
    -- Taken before the statement below takes its snapshot (READ COMMITTED: one per statement).
    PERFORM pg_advisory_xact_lock(hashtext('markoff.readings_1d'), hashtext(p_gateway_id));
    WITH claimed AS (
        DELETE FROM markoff.readings_1d_pending
        WHERE gateway_id = p_gateway_id AND day < p_to
        RETURNING day
    ), ranges AS (
        SELECT p_from AS lo, p_to AS hi WHERE p_from < p_to
        UNION ALL
        SELECT d, d + 1 FROM (SELECT DISTINCT day AS d FROM claimed) c
        WHERE d < p_from OR p_from >= p_to
    ), src AS (
        SELECT l.sensor_id, (r.bucket AT TIME ZONE 'UTC')::date AS day,
               r.n, r.sum, r.min, r.max, r.bad
        FROM ranges g
        JOIN markoff.sensor_latest l
          ON l.gateway_id = p_gateway_id AND l.ts >= g.lo::timestamp AT TIME ZONE 'UTC'
        CROSS JOIN LATERAL (
            SELECT t.bucket, t.n, t.sum, t.min, t.max, t.bad FROM markoff.readings_10m t
            WHERE t.gateway_id = p_gateway_id AND t.sensor_id = l.sensor_id
              AND t.bucket >= g.lo::timestamp AT TIME ZONE 'UTC'
              AND t.bucket < g.hi::timestamp AT TIME ZONE 'UTC') r
    )
    INSERT INTO markoff.readings_1d AS d (gateway_id, sensor_id, day, n, sum, min, max, bad)
    SELECT p_gateway_id, sensor_id, day, sum(n), sum(sum), min(min), max(max), sum(bad)
    FROM src GROUP BY sensor_id, day
    ON CONFLICT (gateway_id, sensor_id, day) DO UPDATE
    SET n = excluded.n, sum = excluded.sum, min = excluded.min, max = excluded.max,
        bad = excluded.bad
    WHERE (d.n, d.sum, d.min, d.max, d.bad)
          IS DISTINCT FROM (excluded.n, excluded.sum, excluded.min, excluded.max, excluded.bad);
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END;
$$;
REVOKE EXECUTE ON FUNCTION markoff.rollup_1d(text, date, date) FROM PUBLIC;

-- === Retention of the 10-minute rollup (`maintain --keep-10m-months N`) ===

-- Deletes one gateway's rows of readings_10m of the days before p_before that readings_1d
-- already holds (days before rollup_state's `through`; pending days are kept until rolled up),
-- sensor by sensor through the primary key. Returns the rows deleted. readings_10m is not
-- partitioned (its key would allow partitions by bucket; converting the table is a rewrite), so
-- this is a delete whose space autovacuum gives back to later uploads.
CREATE FUNCTION markoff.trim_10m(p_gateway_id text, p_before date) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cut date;
    deleted bigint;
BEGIN
    SELECT least(p_before, through) INTO cut FROM markoff.rollup_state
    WHERE rollup = 'readings_1d';
    cut := least(cut, (SELECT min(day) FROM markoff.readings_1d_pending
                       WHERE gateway_id = p_gateway_id));
    IF cut IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM markoff.readings_10m t
    USING markoff.sensor_latest l
    WHERE l.gateway_id = p_gateway_id
      AND t.gateway_id = p_gateway_id AND t.sensor_id = l.sensor_id
      AND t.bucket < cut::timestamp AT TIME ZONE 'UTC';
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END;
$$;
REVOKE EXECUTE ON FUNCTION markoff.trim_10m(text, date) FROM PUBLIC;

-- === The office's roles read the daily rollup ===

CREATE OR REPLACE FUNCTION markoff.grant_web(p_role name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), p_role);
    EXECUTE format('GRANT USAGE ON SCHEMA markoff TO %I', p_role);
    EXECUTE format('GRANT SELECT ON markoff.buildings, markoff.gateways, markoff.floors, '
                   'markoff.rooms, markoff.tenants, markoff.sensors, markoff.sensor_latest, '
                   'markoff.readings, markoff.readings_10m, markoff.alarm_events, '
                   'markoff.alarm_latest, markoff.sync_cursors, markoff.gateway_health, '
                   'markoff.latest_readings, markoff.active_alarms, markoff.office_requests, '
                   'markoff.readings_1d, markoff.readings_1d_pending, markoff.rollup_state '
                   'TO %I', p_role);
    EXECUTE format('GRANT SELECT (user_id, login, display_name, password_hash, last_login_at, '
                   'is_admin), UPDATE (last_login_at) ON markoff.web_users TO %I', p_role);
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON markoff.web_sessions TO %I', p_role);
    EXECUTE format('GRANT SELECT, INSERT ON markoff.alarm_comments TO %I', p_role);
    INSERT INTO markoff.web_roles (role_name) VALUES (p_role) ON CONFLICT DO NOTHING;
END;
$$;
REVOKE EXECUTE ON FUNCTION markoff.grant_web(name) FROM PUBLIC;

CREATE OR REPLACE FUNCTION markoff.grant_reader(p_role name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), p_role);
    EXECUTE format('GRANT USAGE ON SCHEMA markoff TO %I', p_role);
    EXECUTE format('GRANT SELECT ON markoff.buildings, markoff.gateways, markoff.floors, '
                   'markoff.rooms, markoff.tenants, markoff.sensors, markoff.sensor_latest, '
                   'markoff.readings, markoff.readings_10m, markoff.alarm_events, '
                   'markoff.alarm_latest, markoff.alarm_comments, markoff.sync_cursors, '
                   'markoff.gateway_health, markoff.latest_readings, markoff.active_alarms, '
                   'markoff.readings_1d, markoff.readings_1d_pending, markoff.rollup_state TO %I',
                   p_role);
    EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', p_role);
END;
$$;
REVOKE EXECUTE ON FUNCTION markoff.grant_reader(name) FROM PUBLIC;

-- The office's existing roles (web roles and readers: those that read readings_10m without
-- writing it) read the new tables too.
DO $$
DECLARE
    r name;
BEGIN
    FOR r IN SELECT rolname FROM pg_roles
             WHERE has_table_privilege(oid, 'markoff.readings_10m', 'SELECT')
               AND NOT has_table_privilege(oid, 'markoff.readings_10m', 'INSERT')
               AND NOT rolsuper LOOP
        EXECUTE format('GRANT SELECT ON markoff.readings_1d, markoff.readings_1d_pending, '
                       'markoff.rollup_state TO %I', r);
    END LOOP;
END;
$$;
