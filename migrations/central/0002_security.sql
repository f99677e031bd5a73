-- Central schema, version 2: who may see and write what.
-- Each gateway logs in as its own role (created by `markoff-central add-gateway`, which also
-- grants it the table privileges it needs). Row-level security, forced on every table a gateway
-- can reach, restricts it to writing its own rows and reading its own building. Roles that are not
-- gateways (the owner, the office's readers) are limited only by their grants.
-- docs/central-schema.md has the full picture.

-- The gateway the session logged in for, or NULL for every other role. SECURITY DEFINER so a
-- gateway needs no privilege on markoff.gateways; policies call it as
-- `(SELECT markoff.current_gateway())`, which PostgreSQL evaluates once per statement.
-- These functions look at session_user, the role that logged in: inside a SECURITY DEFINER
-- function current_user is the function's owner, and a gateway role cannot change its session
-- user.
CREATE FUNCTION markoff.current_gateway() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT gateway_id FROM markoff.gateways WHERE role_name = session_user $$;

-- The building of the current gateway role, or NULL.
CREATE FUNCTION markoff.current_building() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT building_id FROM markoff.gateways WHERE role_name = session_user $$;

-- Every gateway of the current gateway role's building (empty for other roles): what it may read.
CREATE FUNCTION markoff.building_gateways() RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(o.gateway_id), '{}')
    FROM markoff.gateways g JOIN markoff.gateways o USING (building_id)
    WHERE g.role_name = session_user
$$;

-- Whether the current role is not a gateway (and so sees every row its grants allow).
CREATE FUNCTION markoff.is_central() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT NOT EXISTS (SELECT 1 FROM markoff.gateways WHERE role_name = session_user) $$;

-- The building of `p_gateway_id`, for the gateway itself or a central role; NULL otherwise.
CREATE FUNCTION markoff.gateway_building(p_gateway_id text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT building_id FROM markoff.gateways
    WHERE gateway_id = p_gateway_id AND (role_name = session_user OR markoff.is_central())
$$;

-- Records that the current gateway role is in contact. Raises when called for another gateway.
CREATE FUNCTION markoff.touch_gateway(p_gateway_id text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE markoff.gateways SET last_contact = now()
    WHERE gateway_id = p_gateway_id
      AND (role_name = session_user OR markoff.is_central());
    IF NOT FOUND THEN
        RAISE EXCEPTION 'gateway % is not registered for role %', p_gateway_id, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END;
$$;

-- A gateway's row cannot be deleted while its role exists: that role would then count as
-- central and see every row its grants allow. `remove-gateway` drops the role first.
CREATE FUNCTION markoff.gateways_keep_role() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.role_name IS NOT NULL AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = OLD.role_name) THEN
        RAISE EXCEPTION 'gateway % still has its role %; drop the role first (markoff-central remove-gateway)',
            OLD.gateway_id, OLD.role_name;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER gateways_keep_role BEFORE DELETE ON markoff.gateways
    FOR EACH ROW EXECUTE FUNCTION markoff.gateways_keep_role();
CREATE TRIGGER gateways_keep_role_update BEFORE UPDATE OF role_name ON markoff.gateways
    FOR EACH ROW WHEN (OLD.role_name IS DISTINCT FROM NEW.role_name AND OLD.role_name IS NOT NULL)
    EXECUTE FUNCTION markoff.gateways_keep_role();

-- Rows keyed by gateway: a gateway writes its own, reads its building's.
ALTER TABLE markoff.readings ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.readings FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.readings USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_read ON markoff.readings FOR SELECT
    USING (gateway_id = ANY (CAST((SELECT markoff.building_gateways()) AS text[])));
CREATE POLICY gateway_insert ON markoff.readings FOR INSERT
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));

ALTER TABLE markoff.alarm_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.alarm_events FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.alarm_events USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_read ON markoff.alarm_events FOR SELECT
    USING (gateway_id = ANY (CAST((SELECT markoff.building_gateways()) AS text[])));
CREATE POLICY gateway_insert ON markoff.alarm_events FOR INSERT
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));

ALTER TABLE markoff.sensors ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.sensors FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.sensors USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_read ON markoff.sensors FOR SELECT
    USING (gateway_id = ANY (CAST((SELECT markoff.building_gateways()) AS text[])));
CREATE POLICY gateway_insert ON markoff.sensors FOR INSERT
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));
CREATE POLICY gateway_update ON markoff.sensors FOR UPDATE
    USING (gateway_id = (SELECT markoff.current_gateway()))
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));

ALTER TABLE markoff.sensor_latest ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.sensor_latest FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.sensor_latest USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_read ON markoff.sensor_latest FOR SELECT
    USING (gateway_id = ANY (CAST((SELECT markoff.building_gateways()) AS text[])));
CREATE POLICY gateway_insert ON markoff.sensor_latest FOR INSERT
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));
CREATE POLICY gateway_update ON markoff.sensor_latest FOR UPDATE
    USING (gateway_id = (SELECT markoff.current_gateway()))
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));

-- A gateway reads and moves only its own cursors.
ALTER TABLE markoff.sync_cursors ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.sync_cursors FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.sync_cursors USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_own ON markoff.sync_cursors
    USING (gateway_id = (SELECT markoff.current_gateway()))
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));

-- Rows keyed by building: a gateway reads and replaces its own building's.
ALTER TABLE markoff.buildings ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.buildings FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.buildings USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_own ON markoff.buildings
    USING (building_id = (SELECT markoff.current_building()))
    WITH CHECK (building_id = (SELECT markoff.current_building()));

ALTER TABLE markoff.floors ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.floors FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.floors USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_own ON markoff.floors
    USING (building_id = (SELECT markoff.current_building()))
    WITH CHECK (building_id = (SELECT markoff.current_building()));

ALTER TABLE markoff.rooms ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.rooms FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.rooms USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_own ON markoff.rooms
    USING (building_id = (SELECT markoff.current_building()))
    WITH CHECK (building_id = (SELECT markoff.current_building()));

ALTER TABLE markoff.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.tenants USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_own ON markoff.tenants
    USING (building_id = (SELECT markoff.current_building()))
    WITH CHECK (building_id = (SELECT markoff.current_building()));

-- markoff.gateways: gateways have no privilege on it (they use the functions above); RLS is
-- not enabled on it because those functions read it as its owner.

-- Nobody but the owner and the roles granted below gets anything by default.
REVOKE ALL ON ALL TABLES IN SCHEMA markoff FROM PUBLIC;
REVOKE ALL ON SCHEMA markoff FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION markoff.ensure_partitions(integer, integer) FROM PUBLIC;
