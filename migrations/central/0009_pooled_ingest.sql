-- Central schema, version 9: gateways through a transaction-pooling PgBouncer as one login role.
--
-- A gateway may log in as its own role (as before: row-level security sees it in session_user),
-- or as a shared *ingest* role (recorded in markoff.ingest_roles). An ingest session is no
-- gateway by itself: it sees nothing and may write nothing until, inside a transaction, it
-- proves which gateway it uploads for with that gateway's own key (markoff.prove_gateway). The
-- proof holds for that transaction on that backend only, so a pooler may hand the server
-- connection to any other gateway for its next transaction. All gateways then share one pool of
-- a few long-lived server connections instead of a pool per role.
-- docs/central-schema.md, sections 6 and 8.

-- Login roles shared by many gateways (markoff-central add-role NAME --kind ingest).
CREATE TABLE markoff.ingest_roles (
    role_name  name PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Each gateway's upload key, as SHA-256 of the key (a random 32-character string printed once
-- by add-gateway or gateway-key). A table of its own, granted to nobody: the office's web role
-- reads markoff.gateways.
CREATE TABLE markoff.gateway_keys (
    gateway_id text PRIMARY KEY,
    key_hash   bytea NOT NULL CHECK (length(key_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Which gateway the current transaction of each backend has proved to be: one row per backend
-- (pid), valid only while `xact` is the backend's current transaction id. Unlogged: a proof
-- never outlives its transaction, so nothing here needs to survive a crash. Written only by
-- markoff.prove_gateway; nobody else has any privilege on it.
CREATE UNLOGGED TABLE markoff.gateway_proofs (
    pid        integer PRIMARY KEY,
    xact       xid8 NOT NULL,
    gateway_id text NOT NULL
) WITH (fillfactor = 50);

-- Proves, for the rest of the current transaction, that this session uploads for
-- `p_gateway_id`: the session's login role must be an ingest role and `p_key` the gateway's
-- key. A gateway's own role may call it for itself (it is that gateway already; the key is not
-- needed); anything else raises insufficient_privilege (42501), with the same message whether
-- the gateway is unknown, removed or the key is wrong.
CREATE FUNCTION markoff.prove_gateway(p_gateway_id text, p_key text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM markoff.gateways WHERE role_name = session_user) THEN
        IF NOT EXISTS (SELECT 1 FROM markoff.gateways
                       WHERE role_name = session_user AND gateway_id = p_gateway_id) THEN
            RAISE EXCEPTION 'gateway % is not registered for role %', p_gateway_id, session_user
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM markoff.ingest_roles WHERE role_name = session_user) THEN
        RAISE EXCEPTION 'role % is neither a gateway nor an ingest role', session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM markoff.gateway_keys k JOIN markoff.gateways g USING (gateway_id)
                   WHERE k.gateway_id = p_gateway_id AND g.removed_at IS NULL
                     AND k.key_hash = sha256(convert_to(coalesce(p_key, ''), 'UTF8'))) THEN
        RAISE EXCEPTION 'gateway % did not prove its key', p_gateway_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO markoff.gateway_proofs AS p (pid, xact, gateway_id)
    VALUES (pg_backend_pid(), pg_current_xact_id(), p_gateway_id)
    ON CONFLICT (pid) DO UPDATE SET xact = excluded.xact, gateway_id = excluded.gateway_id;
END;
$$;
-- Executable by every role: it checks the caller itself.

-- The gateway of the current session (its own role) or of the current transaction (proved by
-- an ingest session), or NULL. The policies of version 2 call it unchanged.
CREATE OR REPLACE FUNCTION markoff.current_gateway() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT gateway_id FROM markoff.gateways WHERE role_name = session_user),
        (SELECT p.gateway_id FROM markoff.gateway_proofs p
         WHERE p.pid = pg_backend_pid()
           AND p.xact = pg_current_xact_id_if_assigned()
           AND EXISTS (SELECT 1 FROM markoff.ingest_roles WHERE role_name = session_user)))
$$;

CREATE OR REPLACE FUNCTION markoff.current_building() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT building_id FROM markoff.gateways WHERE gateway_id = markoff.current_gateway() $$;

CREATE OR REPLACE FUNCTION markoff.building_gateways() RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(o.gateway_id), '{}')
    FROM markoff.gateways g JOIN markoff.gateways o USING (building_id)
    WHERE g.gateway_id = markoff.current_gateway()
$$;

-- An ingest role is not central: without a proof it sees nothing.
CREATE OR REPLACE FUNCTION markoff.is_central() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT NOT EXISTS (SELECT 1 FROM markoff.gateways WHERE role_name = session_user)
       AND NOT EXISTS (SELECT 1 FROM markoff.ingest_roles WHERE role_name = session_user)
$$;

CREATE OR REPLACE FUNCTION markoff.gateway_building(p_gateway_id text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT building_id FROM markoff.gateways
    WHERE gateway_id = p_gateway_id
      AND (gateway_id = markoff.current_gateway() OR markoff.is_central())
$$;

CREATE OR REPLACE FUNCTION markoff.touch_gateway(p_gateway_id text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE markoff.gateways SET last_contact = now()
    WHERE gateway_id = p_gateway_id
      AND (gateway_id = markoff.current_gateway() OR markoff.is_central());
    IF NOT FOUND THEN
        RAISE EXCEPTION 'gateway % is not registered for role %', p_gateway_id, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION markoff.report_clock(p_gateway_id text, p_synchronized boolean,
    p_trusted boolean, p_steps bigint, p_last_offset_ms bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM markoff.gateways WHERE gateway_id = p_gateway_id
                   AND (gateway_id = markoff.current_gateway() OR markoff.is_central())) THEN
        RAISE EXCEPTION 'gateway % is not registered for role %', p_gateway_id, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO markoff.gateway_clock AS c
        (gateway_id, synchronized, trusted, steps, last_offset_ms, reported_at)
    VALUES (p_gateway_id, p_synchronized, p_trusted, p_steps, p_last_offset_ms, now())
    ON CONFLICT (gateway_id) DO UPDATE
    SET synchronized = excluded.synchronized, trusted = excluded.trusted, steps = excluded.steps,
        last_offset_ms = excluded.last_offset_ms, reported_at = excluded.reported_at;
END;
$$;

CREATE OR REPLACE FUNCTION markoff.report_clock_epoch(p_gateway_id text, p_epoch_id bigint,
    p_reason text, p_first_seq bigint, p_last_seq bigint, p_from_ms bigint, p_to_ms bigint,
    p_offset_ms bigint, p_state text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM markoff.gateways WHERE gateway_id = p_gateway_id
                   AND (gateway_id = markoff.current_gateway() OR markoff.is_central())) THEN
        RAISE EXCEPTION 'gateway % is not registered for role %', p_gateway_id, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO markoff.clock_epochs AS e
        (gateway_id, epoch_id, reason, first_seq, last_seq, from_ms, to_ms, offset_ms, state)
    VALUES (p_gateway_id, p_epoch_id, p_reason, p_first_seq, p_last_seq, p_from_ms, p_to_ms,
            p_offset_ms, p_state)
    ON CONFLICT (gateway_id, epoch_id) DO UPDATE
    SET last_seq = excluded.last_seq, to_ms = excluded.to_ms, offset_ms = excluded.offset_ms,
        state = excluded.state, updated = now()
    WHERE (e.last_seq, e.to_ms, e.offset_ms, e.state)
          IS DISTINCT FROM (excluded.last_seq, excluded.to_ms, excluded.offset_ms, excluded.state);
END;
$$;

CREATE OR REPLACE FUNCTION markoff.office_requests_pending(p_gateway_id text)
RETURNS TABLE (request_id bigint, alarm_id bigint, action text, shelve_seconds integer,
               login text, display_name text, requested_ms bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_gateway_id IS DISTINCT FROM markoff.current_gateway() THEN
        RAISE EXCEPTION 'gateway % is not registered for role %', p_gateway_id, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
    SELECT r.request_id, r.alarm_id, r.action, r.shelve_seconds, r.login, r.display_name,
           (extract(epoch FROM r.requested_at) * 1000)::bigint
    FROM markoff.office_requests r
    WHERE r.gateway_id = p_gateway_id AND r.state = 'pending'
    ORDER BY r.request_id
    LIMIT 100;
END;
$$;

CREATE OR REPLACE FUNCTION markoff.office_request_answer(p_gateway_id text, p_request_id bigint,
                                                         p_state text, p_actor text, p_detail text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_gateway_id IS DISTINCT FROM markoff.current_gateway() THEN
        RAISE EXCEPTION 'gateway % is not registered for role %', p_gateway_id, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_state NOT IN ('done', 'refused') THEN
        RAISE EXCEPTION 'an answer is done or refused, not %', p_state
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE markoff.office_requests
    SET state = p_state, actor = p_actor, detail = p_detail, answered_at = now()
    WHERE gateway_id = p_gateway_id AND request_id = p_request_id AND state = 'pending';
    RETURN FOUND;
END;
$$;

-- What an ingest role may do: what a gateway's own role may (its grants in add-gateway); it
-- proves which gateway it is with markoff.prove_gateway. No TEMPORARY: the upload protocol
-- stages nothing in temp tables.
CREATE FUNCTION markoff.grant_ingest(p_role name) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM markoff.gateways WHERE role_name = p_role) THEN
        RAISE EXCEPTION 'role % is a gateway''s own role', p_role
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), p_role);
    EXECUTE format('GRANT USAGE ON SCHEMA markoff TO %I', p_role);
    EXECUTE format('GRANT SELECT, INSERT ON markoff.readings, markoff.alarm_events TO %I', p_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON markoff.sensors, markoff.sensor_latest, '
                   'markoff.readings_10m, markoff.sync_cursors TO %I', p_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON markoff.floors, markoff.rooms, '
                   'markoff.tenants TO %I', p_role);
    EXECUTE format('GRANT SELECT, UPDATE (name, address, updated_at) ON markoff.buildings TO %I',
                   p_role);
    INSERT INTO markoff.ingest_roles (role_name) VALUES (p_role) ON CONFLICT DO NOTHING;
    -- The keys travel as bind parameters: keep them out of the server log (statement logging
    -- and slow-statement logging print parameters otherwise). Needs a superuser.
    BEGIN
        EXECUTE format('ALTER ROLE %I SET log_parameter_max_length = 0', p_role);
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot set log_parameter_max_length = 0 for role %: as a superuser, run ALTER ROLE % SET log_parameter_max_length = 0, or never log bind parameters', p_role, p_role;
    END;
END;
$$;
REVOKE ALL ON FUNCTION markoff.grant_ingest(name) FROM PUBLIC;

-- Granted to nobody; row-level security without policies as a second line.
ALTER TABLE markoff.ingest_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.gateway_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.gateway_proofs ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON markoff.ingest_roles, markoff.gateway_keys, markoff.gateway_proofs FROM PUBLIC;
