-- Central schema, version 11: a gateway's readings upload as one server-side call.
--
-- markoff.upload_readings does in one statement what the upload transaction did in seven: the
-- gateway's proof (an ingest login), the cursor row lock, the insert into markoff.readings, the
-- 10-minute rollup, the latest values and the cursor update. Through a transaction-pooling
-- PgBouncer a server connection is then held for the server's own work and the client's few
-- round trips around one statement, not for one round trip per step.
--
-- SECURITY INVOKER: the function can do nothing the calling role could not do statement by
-- statement. The caller's own grants apply (a gateway's role or an ingest role have them:
-- add-gateway, markoff.grant_ingest), and row-level security sees the gateway through
-- markoff.current_gateway(): the login (a gateway's own role) or the proof this call makes
-- (an ingest role), as in version 9. EXECUTE stays with PUBLIC for that reason; a role without
-- the table grants fails inside with insufficient_privilege (42501).
-- docs/central-schema.md, section 6.

-- The read time of p_ms milliseconds since the epoch, exact for every time a gateway may send
-- (whole seconds plus milliseconds, as the client validates: years 1 to 9999).
-- No SET clause, so that PostgreSQL inlines it (it is called from functions that set their
-- search_path).
CREATE FUNCTION markoff.ts_of_ms(p_ms bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT timestamptz '1970-01-01 00:00:00+00' + (p_ms / 1000) * interval '1 second'
           + (p_ms % 1000) * interval '1 millisecond'
$$;

-- Locks the cursor row of `p_gateway_id`'s `p_stream` for the rest of the transaction, creating
-- it at 0 if absent, and returns its last_seq. As the caller (row-level security: its own
-- gateway's cursors only).
CREATE FUNCTION markoff.lock_cursor(p_gateway_id text, p_stream text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_seq bigint;
BEGIN
    SELECT c.last_seq INTO v_seq FROM markoff.sync_cursors c
    WHERE c.gateway_id = p_gateway_id AND c.stream = p_stream FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO markoff.sync_cursors (gateway_id, stream) VALUES (p_gateway_id, p_stream)
        ON CONFLICT (gateway_id, stream) DO NOTHING;
        SELECT c.last_seq INTO STRICT v_seq FROM markoff.sync_cursors c
        WHERE c.gateway_id = p_gateway_id AND c.stream = p_stream FOR UPDATE;
    END IF;
    RETURN v_seq;
END;
$$;

-- Uploads one batch of `p_gateway_id`'s readings exactly once; the arrays are the batch's
-- columns, in strictly increasing seq order (the client checks it). Returns how many rows it
-- inserted and the central cursor after the call.
--
-- `p_key`: the gateway's upload key, proved first (markoff.prove_gateway) when not NULL: an
-- ingest login must give it; a gateway's own role gives NULL.
--
-- `p_after` NULL (every batch of an uploader that keeps up, and the first of a backlog): locks
-- the cursor row (creating it at 0), skips the rows at or below the cursor, inserts the rest
-- with the rollup and the latest values, and moves the cursor to the batch's highest seq. Two
-- calls with the same batch are serialized by the lock; the second inserts nothing. A retry
-- after a lost commit is the same: the rows are at or below the cursor.
--
-- `p_after` given (a second batch in flight while the one before it, ending at `p_after`,
-- commits on another connection): inserts the rows above `p_after` first, then waits for the
-- cursor row, and raises serialization_failure (40001: the whole call rolls back; the uploader
-- starts again from its local cursor) unless the cursor is exactly `p_after`. The rollup and the
-- latest values come after the lock, so two batches in flight never wait on each other's rollup
-- rows.
--
-- `p_idempotent`: insert with ON CONFLICT DO NOTHING (and roll up only the rows really
-- inserted). Without it the insert is plain (faster); a row above the cursor that is already
-- there (a cursor moved back by hand) fails the call with unique_violation (23505), and the
-- client calls again with it. With `p_after` too, the call waits for the cursor row before it
-- inserts anything (the rare path: no overlap with the batch before it).
CREATE FUNCTION markoff.upload_readings(
    p_gateway_id text, p_key text, p_after bigint, p_idempotent boolean,
    p_seq bigint[], p_sensor integer[], p_ts_ms bigint[], p_value double precision[],
    p_quality smallint[],
    OUT inserted bigint, OUT central_cursor bigint)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_from   bigint;
    v_max    bigint;
    v_newest timestamptz;
BEGIN
    IF p_key IS NOT NULL THEN
        PERFORM markoff.prove_gateway(p_gateway_id, p_key);
    END IF;
    IF p_after IS NULL OR p_idempotent THEN
        v_from := markoff.lock_cursor(p_gateway_id, 'readings');
        IF v_from IS DISTINCT FROM coalesce(p_after, v_from) THEN
            RAISE EXCEPTION 'the batch before seq % of gateway % has not committed', p_after,
                p_gateway_id
                USING ERRCODE = 'serialization_failure';
        END IF;
        IF p_idempotent THEN
            WITH src AS MATERIALIZED (
                SELECT u.seq, u.sensor_id, markoff.ts_of_ms(u.ts_ms) AS ts, u.value, u.quality
                FROM unnest(p_seq, p_sensor, p_ts_ms, p_value, p_quality)
                     AS u(seq, sensor_id, ts_ms, value, quality)
                WHERE u.seq > v_from),
            ins AS (
                INSERT INTO markoff.readings (gateway_id, seq, sensor_id, ts, value, quality)
                SELECT p_gateway_id, seq, sensor_id, ts, value, quality FROM src
                ON CONFLICT (gateway_id, ts, seq) DO NOTHING
                RETURNING sensor_id, ts, value),
            roll AS (
                INSERT INTO markoff.readings_10m AS t
                    (gateway_id, sensor_id, bucket, n, sum, min, max, bad)
                SELECT p_gateway_id, sensor_id,
                       date_bin(interval '10 minutes', ts, timestamptz '2000-01-01 00:00:00+00'),
                       count(value), coalesce(sum(value), 0), min(value), max(value),
                       count(*) - count(value)
                FROM ins GROUP BY 2, 3 ORDER BY 2, 3
                ON CONFLICT (gateway_id, sensor_id, bucket) DO UPDATE
                SET n = t.n + excluded.n, sum = t.sum + excluded.sum,
                    min = least(t.min, excluded.min), max = greatest(t.max, excluded.max),
                    bad = t.bad + excluded.bad),
            latest AS (
                INSERT INTO markoff.sensor_latest AS l
                    (gateway_id, sensor_id, seq, ts, value, quality)
                SELECT DISTINCT ON (sensor_id) p_gateway_id, sensor_id, seq, ts, value, quality
                FROM src ORDER BY sensor_id, ts DESC, seq DESC
                ON CONFLICT (gateway_id, sensor_id) DO UPDATE
                SET seq = excluded.seq, ts = excluded.ts, value = excluded.value,
                    quality = excluded.quality
                WHERE (excluded.ts, excluded.seq) > (l.ts, l.seq))
            SELECT (SELECT count(*) FROM ins), max(seq), max(ts) FROM src
            INTO inserted, v_max, v_newest;
        ELSE
            WITH src AS MATERIALIZED (
                SELECT u.seq, u.sensor_id, markoff.ts_of_ms(u.ts_ms) AS ts, u.value, u.quality
                FROM unnest(p_seq, p_sensor, p_ts_ms, p_value, p_quality)
                     AS u(seq, sensor_id, ts_ms, value, quality)
                WHERE u.seq > v_from),
            ins AS (
                INSERT INTO markoff.readings (gateway_id, seq, sensor_id, ts, value, quality)
                SELECT p_gateway_id, seq, sensor_id, ts, value, quality FROM src),
            roll AS (
                INSERT INTO markoff.readings_10m AS t
                    (gateway_id, sensor_id, bucket, n, sum, min, max, bad)
                SELECT p_gateway_id, sensor_id,
                       date_bin(interval '10 minutes', ts, timestamptz '2000-01-01 00:00:00+00'),
                       count(value), coalesce(sum(value), 0), min(value), max(value),
                       count(*) - count(value)
                FROM src GROUP BY 2, 3 ORDER BY 2, 3
                ON CONFLICT (gateway_id, sensor_id, bucket) DO UPDATE
                SET n = t.n + excluded.n, sum = t.sum + excluded.sum,
                    min = least(t.min, excluded.min), max = greatest(t.max, excluded.max),
                    bad = t.bad + excluded.bad),
            latest AS (
                INSERT INTO markoff.sensor_latest AS l
                    (gateway_id, sensor_id, seq, ts, value, quality)
                SELECT DISTINCT ON (sensor_id) p_gateway_id, sensor_id, seq, ts, value, quality
                FROM src ORDER BY sensor_id, ts DESC, seq DESC
                ON CONFLICT (gateway_id, sensor_id) DO UPDATE
                SET seq = excluded.seq, ts = excluded.ts, value = excluded.value,
                    quality = excluded.quality
                WHERE (excluded.ts, excluded.seq) > (l.ts, l.seq))
            SELECT count(*), max(seq), max(ts) FROM src INTO inserted, v_max, v_newest;
        END IF;
    ELSE
        v_from := p_after;
        INSERT INTO markoff.readings (gateway_id, seq, sensor_id, ts, value, quality)
        SELECT p_gateway_id, u.seq, u.sensor_id, markoff.ts_of_ms(u.ts_ms), u.value, u.quality
        FROM unnest(p_seq, p_sensor, p_ts_ms, p_value, p_quality)
             AS u(seq, sensor_id, ts_ms, value, quality)
        WHERE u.seq > p_after;
        IF markoff.lock_cursor(p_gateway_id, 'readings') <> p_after THEN
            RAISE EXCEPTION 'the batch before seq % of gateway % has not committed', p_after,
                p_gateway_id
                USING ERRCODE = 'serialization_failure';
        END IF;
        WITH src AS MATERIALIZED (
            SELECT u.seq, u.sensor_id, markoff.ts_of_ms(u.ts_ms) AS ts, u.value, u.quality
            FROM unnest(p_seq, p_sensor, p_ts_ms, p_value, p_quality)
                 AS u(seq, sensor_id, ts_ms, value, quality)
            WHERE u.seq > p_after),
        roll AS (
            INSERT INTO markoff.readings_10m AS t
                (gateway_id, sensor_id, bucket, n, sum, min, max, bad)
            SELECT p_gateway_id, sensor_id,
                   date_bin(interval '10 minutes', ts, timestamptz '2000-01-01 00:00:00+00'),
                   count(value), coalesce(sum(value), 0), min(value), max(value),
                   count(*) - count(value)
            FROM src GROUP BY 2, 3 ORDER BY 2, 3
            ON CONFLICT (gateway_id, sensor_id, bucket) DO UPDATE
            SET n = t.n + excluded.n, sum = t.sum + excluded.sum,
                min = least(t.min, excluded.min), max = greatest(t.max, excluded.max),
                bad = t.bad + excluded.bad),
        latest AS (
            INSERT INTO markoff.sensor_latest AS l
                (gateway_id, sensor_id, seq, ts, value, quality)
            SELECT DISTINCT ON (sensor_id) p_gateway_id, sensor_id, seq, ts, value, quality
            FROM src ORDER BY sensor_id, ts DESC, seq DESC
            ON CONFLICT (gateway_id, sensor_id) DO UPDATE
            SET seq = excluded.seq, ts = excluded.ts, value = excluded.value,
                quality = excluded.quality
            WHERE (excluded.ts, excluded.seq) > (l.ts, l.seq))
        SELECT count(*), max(seq), max(ts) FROM src INTO inserted, v_max, v_newest;
    END IF;

    IF v_max IS NOT NULL THEN
        UPDATE markoff.sync_cursors
        SET last_seq = greatest(last_seq, v_max),
            newest_ts = greatest(newest_ts, v_newest),
            updated_at = now()
        WHERE gateway_id = p_gateway_id AND stream = 'readings';
        central_cursor := greatest(v_from, v_max);
    ELSE
        central_cursor := v_from;
    END IF;
END;
$$;
