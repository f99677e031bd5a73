-- Central schema, version 4: the office web application (`markoff-central serve`) and readers
-- such as Grafana. docs/central-web.md describes the application, docs/central-schema.md the
-- tables.
--
-- Adds: floor plan geometry in the site metadata; the newest event of every alarm
-- (`alarm_latest`, kept by a trigger so that "active alarms" is an index scan, not a scan of the
-- whole event history); a 10-minute rollup of readings per sensor for history charts
-- (`readings_10m`, kept by the upload); the web application's
-- users, sessions and alarm comments; and the grants of the two office roles (functions the
-- `markoff-central add-role` command calls).

-- === Floor plan geometry (optional; gateways that do not send it leave it NULL) ===

-- A floor's size in plan units (metres, or the pixels of a scanned plan): its plan is the
-- rectangle [0, width] x [0, height], x to the right and y downwards.
ALTER TABLE markoff.floors ADD COLUMN width double precision, ADD COLUMN height double precision;
-- A room's outline on its floor's plan: a JSON array of [x, y] corners, not closed.
ALTER TABLE markoff.rooms ADD COLUMN polygon jsonb;

-- === History by sensor: a rollup per sensor and 10 minutes ===

-- A sensor's history is otherwise a scan of every reading of its gateway in the time range
-- (readings has no index by sensor: a second index on it makes the upload 2.4 times slower,
-- docs/performance.md section 7). The upload transaction keeps this rollup with the readings it
-- inserts (cloud-sync/src/upload.rs), one row per sensor and 10-minute bucket (UTC, aligned to
-- the epoch): n good values, their sum (0 when none), min and max, and the readings without a
-- value. Long ranges read it; short ones
-- read readings. Same row-level security as sensor_latest.
CREATE TABLE markoff.readings_10m (
    gateway_id text NOT NULL,
    sensor_id  integer NOT NULL,
    bucket     timestamptz NOT NULL,
    n          integer NOT NULL,
    sum        double precision NOT NULL,
    min        double precision,
    max        double precision,
    bad        integer NOT NULL,
    PRIMARY KEY (gateway_id, sensor_id, bucket)
) WITH (fillfactor = 70);

-- The readings that arrived before this migration (one scan of readings).
INSERT INTO markoff.readings_10m
SELECT gateway_id, sensor_id,
       date_bin(interval '10 minutes', ts, timestamptz '2000-01-01 00:00:00+00'),
       count(value), coalesce(sum(value), 0), min(value), max(value), count(*) - count(value)
FROM markoff.readings
GROUP BY 1, 2, 3;

ALTER TABLE markoff.readings_10m ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.readings_10m FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.readings_10m USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_read ON markoff.readings_10m FOR SELECT
    USING (gateway_id = ANY (CAST((SELECT markoff.building_gateways()) AS text[])));
CREATE POLICY gateway_insert ON markoff.readings_10m FOR INSERT
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));
CREATE POLICY gateway_update ON markoff.readings_10m FOR UPDATE
    USING (gateway_id = (SELECT markoff.current_gateway()))
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));
REVOKE ALL ON markoff.readings_10m FROM PUBLIC;

-- Gateways provisioned before this migration upload into it too (add-gateway grants it since).
DO $$
DECLARE
    r name;
BEGIN
    FOR r IN SELECT role_name FROM markoff.gateways
             WHERE role_name IS NOT NULL
               AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON markoff.readings_10m TO %I', r);
    END LOOP;
END;
$$;

-- === The newest event of every alarm ===

-- One row per alarm (gateway_id, alarm_id): its newest event (by seq) and when it was last
-- raised and acknowledged. Kept by the trigger below in the transaction that inserts the events,
-- so it is exactly as current as alarm_events.
CREATE TABLE markoff.alarm_latest (
    gateway_id text NOT NULL,
    alarm_id   bigint NOT NULL,
    seq        bigint NOT NULL,
    ts         timestamptz NOT NULL,
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
    raised_at  timestamptz,
    acked_at   timestamptz,
    acked_by   text,
    PRIMARY KEY (gateway_id, alarm_id)
);
CREATE INDEX alarm_latest_open ON markoff.alarm_latest (gateway_id) WHERE state <> 'normal';

-- Moves alarm_latest forward with the events a statement inserted (only rows really inserted:
-- a resent event skipped by ON CONFLICT is not in the transition table). SECURITY DEFINER: a
-- gateway has no privilege on alarm_latest; row-level security still limits it to its own rows.
CREATE FUNCTION markoff.alarm_latest_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO markoff.alarm_latest AS t
        (gateway_id, alarm_id, seq, ts, alarm, rule, sensor, event, state, severity, value,
         message, actor, channel, raised_at, acked_at, acked_by)
    SELECT DISTINCT ON (n.gateway_id, n.alarm_id)
           n.gateway_id, n.alarm_id, n.seq, n.ts, n.alarm, n.rule, n.sensor, n.event, n.state,
           n.severity, n.value, n.message, n.actor, n.channel,
           r.ts, a.ts, a.actor
    FROM inserted n
    -- The newest raise and acknowledgement within this statement, if any.
    LEFT JOIN LATERAL (
        SELECT i.ts FROM inserted i
        WHERE i.gateway_id = n.gateway_id AND i.alarm_id = n.alarm_id AND i.event = 'raised'
        ORDER BY i.seq DESC LIMIT 1
    ) r ON true
    LEFT JOIN LATERAL (
        SELECT i.ts, i.actor, i.seq FROM inserted i
        WHERE i.gateway_id = n.gateway_id AND i.alarm_id = n.alarm_id AND i.event = 'acked'
          AND i.seq > coalesce((SELECT max(j.seq) FROM inserted j
                                WHERE j.gateway_id = n.gateway_id AND j.alarm_id = n.alarm_id
                                  AND j.event = 'raised'), 0)
        ORDER BY i.seq DESC LIMIT 1
    ) a ON true
    ORDER BY n.gateway_id, n.alarm_id, n.seq DESC
    ON CONFLICT (gateway_id, alarm_id) DO UPDATE
    SET seq = excluded.seq, ts = excluded.ts, alarm = excluded.alarm, rule = excluded.rule,
        sensor = excluded.sensor, event = excluded.event, state = excluded.state,
        severity = excluded.severity, value = excluded.value, message = excluded.message,
        actor = excluded.actor, channel = excluded.channel,
        raised_at = coalesce(excluded.raised_at, t.raised_at),
        -- A new raise forgets the old acknowledgement.
        acked_at = CASE WHEN excluded.raised_at IS NOT NULL THEN excluded.acked_at
                        ELSE coalesce(excluded.acked_at, t.acked_at) END,
        acked_by = CASE WHEN excluded.raised_at IS NOT NULL THEN excluded.acked_by
                        ELSE coalesce(excluded.acked_by, t.acked_by) END
    WHERE excluded.seq > t.seq;
    RETURN NULL;
END;
$$;
CREATE TRIGGER alarm_latest_update AFTER INSERT ON markoff.alarm_events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION markoff.alarm_latest_update();

-- The events that arrived before this migration.
INSERT INTO markoff.alarm_latest
    (gateway_id, alarm_id, seq, ts, alarm, rule, sensor, event, state, severity, value, message,
     actor, channel, raised_at, acked_at, acked_by)
SELECT DISTINCT ON (e.gateway_id, e.alarm_id)
       e.gateway_id, e.alarm_id, e.seq, e.ts, e.alarm, e.rule, e.sensor, e.event, e.state,
       e.severity, e.value, e.message, e.actor, e.channel,
       (SELECT r.ts FROM markoff.alarm_events r
        WHERE (r.gateway_id, r.alarm_id) = (e.gateway_id, e.alarm_id) AND r.event = 'raised'
        ORDER BY r.seq DESC LIMIT 1),
       k.ts, k.actor
FROM markoff.alarm_events e
LEFT JOIN LATERAL (
    SELECT a.ts, a.actor FROM markoff.alarm_events a
    WHERE (a.gateway_id, a.alarm_id) = (e.gateway_id, e.alarm_id) AND a.event = 'acked'
      AND a.seq > coalesce((SELECT max(r.seq) FROM markoff.alarm_events r
                            WHERE (r.gateway_id, r.alarm_id) = (e.gateway_id, e.alarm_id)
                              AND r.event = 'raised'), 0)
    ORDER BY a.seq DESC LIMIT 1
) k ON true
ORDER BY e.gateway_id, e.alarm_id, e.seq DESC;

ALTER TABLE markoff.alarm_latest ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.alarm_latest FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.alarm_latest USING ((SELECT markoff.is_central()));
-- Only reached through the trigger: a gateway's own events move its own rows.
CREATE POLICY gateway_own ON markoff.alarm_latest
    USING (gateway_id = (SELECT markoff.current_gateway()))
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));

-- The same columns as before, now an index scan of alarm_latest rather than a sort of every
-- event ever recorded.
CREATE OR REPLACE VIEW markoff.active_alarms AS
SELECT g.building_id, a.gateway_id, a.seq, a.ts, a.alarm_id, a.alarm, a.rule, a.sensor, a.event,
       a.state, a.severity, a.value, a.message, a.actor, a.channel
FROM markoff.alarm_latest a
JOIN markoff.gateways g USING (gateway_id)
WHERE a.state <> 'normal';

-- === The web application's users, sessions and comments ===

-- Accounts of the office web application (`markoff-central add-user`). password_hash is an
-- Argon2id PHC string; logins are compared in lower case.
CREATE TABLE markoff.web_users (
    user_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login         text NOT NULL CHECK (login = lower(login) AND length(login) BETWEEN 1 AND 100),
    display_name  text,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    password_set_at timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    UNIQUE (login)
);

-- Signed-in sessions. id_hash is the SHA-256 of the 256-bit random id in the cookie: the
-- database never holds a usable session id. csrf_token guards every form of the session.
CREATE TABLE markoff.web_sessions (
    id_hash    bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    user_id    bigint NOT NULL REFERENCES markoff.web_users ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    client_ip  inet,
    user_agent text
);
CREATE INDEX web_sessions_user ON markoff.web_sessions (user_id);
CREATE INDEX web_sessions_expiry ON markoff.web_sessions (expires_at);

-- Comments office staff add to an alarm: the only thing the web application writes besides
-- sessions. An alarm is (gateway_id, alarm_id), as in alarm_events.
CREATE TABLE markoff.alarm_comments (
    comment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway_id text NOT NULL,
    alarm_id   bigint NOT NULL,
    user_id    bigint REFERENCES markoff.web_users ON DELETE SET NULL,
    author     text NOT NULL,
    body       text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alarm_comments_alarm ON markoff.alarm_comments (gateway_id, alarm_id, created_at);

-- Gateways get no privilege on these; forced RLS keeps the rule that every table a role could
-- reach is filtered (gateways would see nothing).
ALTER TABLE markoff.web_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.web_users FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.web_users USING ((SELECT markoff.is_central()));
ALTER TABLE markoff.web_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.web_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.web_sessions USING ((SELECT markoff.is_central()));
ALTER TABLE markoff.alarm_comments ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.alarm_comments FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.alarm_comments USING ((SELECT markoff.is_central()));

REVOKE ALL ON markoff.alarm_latest, markoff.web_users, markoff.web_sessions,
    markoff.alarm_comments FROM PUBLIC;

-- === The office roles' grants ===

-- What the web application's role may do: read the synced data, manage sessions, read users
-- (and record their last login), and add alarm comments. Nothing else: it cannot change
-- readings, alarms, metadata, users' passwords or other roles.
CREATE FUNCTION markoff.grant_web(p_role name) RETURNS void
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
                   'markoff.latest_readings, markoff.active_alarms TO %I', p_role);
    EXECUTE format('GRANT SELECT (user_id, login, display_name, password_hash, last_login_at), '
                   'UPDATE (last_login_at) ON markoff.web_users TO %I', p_role);
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON markoff.web_sessions TO %I', p_role);
    EXECUTE format('GRANT SELECT, INSERT ON markoff.alarm_comments TO %I', p_role);
END;
$$;

-- What a read-only reader (Grafana) may do: read the synced data and the comments; never the
-- users or sessions. Its sessions are read-only by default as well.
CREATE FUNCTION markoff.grant_reader(p_role name) RETURNS void
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
                   'markoff.gateway_health, markoff.latest_readings, markoff.active_alarms TO %I',
                   p_role);
    EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', p_role);
END;
$$;
REVOKE EXECUTE ON FUNCTION markoff.grant_web(name), markoff.grant_reader(name) FROM PUBLIC;
