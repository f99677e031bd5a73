-- Central schema, version 5: which buildings each user of the office web application sees,
-- enforced by the database. docs/central-web.md ("Access") describes it.
--
-- Adds: administrators (see every building) and grants of buildings to the other users
-- (`markoff-central grant` / `revoke`); the roles that are web applications (`web_roles`,
-- filled by `markoff.grant_web`); and restrictive row-level security on every table and view
-- the web role reads: a statement of a web role sees only the buildings of the user whose live
-- session the request named with `SET LOCAL markoff.web_session = '<hex SHA-256 of the session
-- cookie>'`, and nothing without one. Other roles (gateways, readers, the owner) are not
-- affected.

-- Users before this version saw every building; they keep doing so until an administrator
-- revokes it (`markoff-central revoke LOGIN --all`). New users see nothing until granted.
ALTER TABLE markoff.web_users ADD COLUMN is_admin boolean NOT NULL DEFAULT false;
UPDATE markoff.web_users SET is_admin = true;

-- Buildings granted to a user. building_id is not a foreign key: a building's row arrives with
-- its gateway's first metadata, and a grant may be made before that.
CREATE TABLE markoff.web_grants (
    user_id     bigint NOT NULL REFERENCES markoff.web_users ON DELETE CASCADE,
    building_id text NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, building_id)
);
ALTER TABLE markoff.web_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.web_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.web_grants USING ((SELECT markoff.is_central()));
REVOKE ALL ON markoff.web_grants FROM PUBLIC;

-- The login roles of web applications (`markoff-central add-role --kind web`).
CREATE TABLE markoff.web_roles (
    role_name  name PRIMARY KEY,
    granted_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE markoff.web_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.web_roles FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.web_roles USING ((SELECT markoff.is_central()));
REVOKE ALL ON markoff.web_roles FROM PUBLIC;

-- Web roles granted before this version: the roles, other than the owner and superusers, that
-- may create sessions.
INSERT INTO markoff.web_roles (role_name)
SELECT r.rolname FROM pg_roles r
WHERE NOT r.rolsuper AND r.rolname <> current_user AND r.rolname !~ '^pg_'
  AND has_table_privilege(r.oid, 'markoff.web_sessions', 'INSERT')
ON CONFLICT DO NOTHING;

-- The buildings the current statement may see: NULL (no limit) for a role that is not a web
-- application and for a request of an administrator; for a web role, the buildings granted to
-- the user of the live session named by the transaction's `markoff.web_session`, and none
-- without one. SECURITY DEFINER: the web role reads no grant itself. Policies call it as
-- `(SELECT markoff.web_buildings())`, evaluated once per statement.
CREATE FUNCTION markoff.web_buildings() RETURNS text[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_session text := current_setting('markoff.web_session', true);
    v_user bigint;
    v_admin boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM markoff.web_roles WHERE role_name = session_user) THEN
        RETURN NULL;
    END IF;
    IF v_session IS NULL OR v_session !~ '^[0-9a-f]{64}$' THEN
        RETURN '{}';
    END IF;
    SELECT u.user_id, u.is_admin INTO v_user, v_admin
    FROM markoff.web_sessions s JOIN markoff.web_users u USING (user_id)
    WHERE s.id_hash = decode(v_session, 'hex') AND s.expires_at > now();
    IF NOT FOUND THEN
        RETURN '{}';
    END IF;
    IF v_admin THEN
        RETURN NULL;
    END IF;
    RETURN coalesce((SELECT array_agg(building_id) FROM markoff.web_grants WHERE user_id = v_user),
                    '{}');
END;
$$;

-- The gateways of those buildings (NULL: no limit).
CREATE FUNCTION markoff.web_gateways() RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN b IS NULL THEN NULL
                ELSE coalesce((SELECT array_agg(gateway_id) FROM markoff.gateways
                               WHERE building_id = ANY (b)), '{}') END
    FROM (SELECT markoff.web_buildings() AS b) x
$$;

-- Both stay executable by every role: policies run them as the role that queries, and they
-- tell a role only its own scope.

-- Restrictive policies: they narrow what the permissive ones (`central`, the gateways') allow.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['readings', 'readings_10m', 'alarm_events', 'alarm_latest',
                             'sensors', 'sensor_latest', 'sync_cursors'] LOOP
        EXECUTE format('CREATE POLICY web_user ON markoff.%I AS RESTRICTIVE FOR SELECT '
                       'USING ((SELECT markoff.web_gateways()) IS NULL '
                       'OR gateway_id = ANY (CAST((SELECT markoff.web_gateways()) AS text[])))', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['buildings', 'floors', 'rooms', 'tenants'] LOOP
        EXECUTE format('CREATE POLICY web_user ON markoff.%I AS RESTRICTIVE FOR SELECT '
                       'USING ((SELECT markoff.web_buildings()) IS NULL '
                       'OR building_id = ANY (CAST((SELECT markoff.web_buildings()) AS text[])))', t);
    END LOOP;
END;
$$;

-- Comments: read and written only on the granted buildings' alarms.
CREATE POLICY web_user ON markoff.alarm_comments AS RESTRICTIVE
    USING ((SELECT markoff.web_gateways()) IS NULL
           OR gateway_id = ANY (CAST((SELECT markoff.web_gateways()) AS text[])))
    WITH CHECK ((SELECT markoff.web_gateways()) IS NULL
                OR gateway_id = ANY (CAST((SELECT markoff.web_gateways()) AS text[])));

-- markoff.gateways: row-level security without FORCE (the functions above and in version 2
-- read it as its owner), so the web role's own reads are limited and everyone else's are not.
ALTER TABLE markoff.gateways ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone ON markoff.gateways USING (true);
CREATE POLICY web_user ON markoff.gateways AS RESTRICTIVE FOR SELECT
    USING ((SELECT markoff.web_buildings()) IS NULL
           OR building_id = ANY (CAST((SELECT markoff.web_buildings()) AS text[])));

-- The views run as their owner, who is not limited on markoff.gateways: they filter it
-- themselves (the tables they join are limited by the policies above).
CREATE OR REPLACE VIEW markoff.latest_readings AS
SELECT g.building_id,
       coalesce(s.gateway_id, l.gateway_id) AS gateway_id,
       coalesce(s.sensor_id, l.sensor_id) AS sensor_id,
       s.key,
       s.name,
       s.kind,
       s.unit,
       s.floor,
       s.room,
       s.source,
       l.seq,
       l.ts,
       l.value,
       l.quality,
       CASE l.quality WHEN 0 THEN 'good' WHEN 1 THEN 'bad' WHEN 2 THEN 'stale' WHEN 3 THEN 'comm_error' END
           AS quality_name
FROM markoff.sensors s
FULL JOIN markoff.sensor_latest l USING (gateway_id, sensor_id)
JOIN markoff.gateways g ON g.gateway_id = coalesce(s.gateway_id, l.gateway_id)
WHERE (SELECT markoff.web_buildings()) IS NULL
   OR g.building_id = ANY (CAST((SELECT markoff.web_buildings()) AS text[]));

CREATE OR REPLACE VIEW markoff.active_alarms AS
SELECT g.building_id, a.gateway_id, a.seq, a.ts, a.alarm_id, a.alarm, a.rule, a.sensor, a.event,
       a.state, a.severity, a.value, a.message, a.actor, a.channel
FROM markoff.alarm_latest a
JOIN markoff.gateways g USING (gateway_id)
WHERE a.state <> 'normal'
  AND ((SELECT markoff.web_buildings()) IS NULL
       OR g.building_id = ANY (CAST((SELECT markoff.web_buildings()) AS text[])));

CREATE OR REPLACE VIEW markoff.gateway_health AS
SELECT g.gateway_id,
       g.building_id,
       g.role_name,
       g.removed_at IS NULL AS active,
       g.created_at,
       g.last_contact,
       rc.last_seq AS readings_seq,
       rc.head_seq AS readings_head_seq,
       rc.newest_ts AS newest_reading,
       rc.updated_at AS readings_synced_at,
       CASE WHEN rc.head_seq IS NOT NULL THEN greatest(rc.head_seq - coalesce(rc.last_seq, 0), 0) END
           AS lag_rows,
       extract(epoch FROM now() - rc.newest_ts)::double precision AS lag_seconds,
       ac.last_seq AS alarm_events_seq,
       CASE WHEN ac.head_seq IS NOT NULL THEN greatest(ac.head_seq - coalesce(ac.last_seq, 0), 0) END
           AS alarm_events_lag_rows,
       mc.last_seq AS metadata_version,
       mc.updated_at AS metadata_synced_at
FROM markoff.gateways g
LEFT JOIN markoff.sync_cursors rc ON rc.gateway_id = g.gateway_id AND rc.stream = 'readings'
LEFT JOIN markoff.sync_cursors ac ON ac.gateway_id = g.gateway_id AND ac.stream = 'alarm_events'
LEFT JOIN markoff.sync_cursors mc ON mc.gateway_id = g.gateway_id AND mc.stream = 'metadata'
WHERE (SELECT markoff.web_buildings()) IS NULL
   OR g.building_id = ANY (CAST((SELECT markoff.web_buildings()) AS text[]));

-- The web role: as in version 4, plus the administrator flag of users, and recorded as a web
-- role so that the policies above apply to it.
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
                   'markoff.latest_readings, markoff.active_alarms TO %I', p_role);
    EXECUTE format('GRANT SELECT (user_id, login, display_name, password_hash, last_login_at, '
                   'is_admin), UPDATE (last_login_at) ON markoff.web_users TO %I', p_role);
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON markoff.web_sessions TO %I', p_role);
    EXECUTE format('GRANT SELECT, INSERT ON markoff.alarm_comments TO %I', p_role);
    INSERT INTO markoff.web_roles (role_name) VALUES (p_role) ON CONFLICT DO NOTHING;
END;
$$;
REVOKE EXECUTE ON FUNCTION markoff.grant_web(name) FROM PUBLIC;
DO $$
DECLARE
    r name;
BEGIN
    FOR r IN SELECT role_name FROM markoff.web_roles LOOP
        EXECUTE format('GRANT SELECT (is_admin) ON markoff.web_users TO %I', r);
    END LOOP;
END;
$$;
