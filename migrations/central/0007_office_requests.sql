-- Central schema, version 7: acknowledging and shelving alarms from the office.
-- docs/central-web.md ("Acknowledging from the office") describes the whole path.
--
-- A user of the web application asks for an action on an alarm (`markoff.office_request`, run
-- by the web role in the request's transaction, so the user is the session's and the building
-- one granted to them). The alarm's gateway, which accepts no inbound connection, pulls the
-- pending requests on its next sync (`markoff.office_requests_pending`), applies each through
-- its own alarm engine (role check and audit as for Telegram) and answers it
-- (`markoff.office_request_answer`), once: an answer only moves a pending request. The
-- acknowledgement itself comes back as the alarm's events, like any other.

-- Distributed by gateway_id like the alarms it acts on (docs/central-schema.md, section 9):
-- gateway_id is in every key; request_id stays unique on one server (an identity).
CREATE TABLE markoff.office_requests (
    gateway_id     text NOT NULL REFERENCES markoff.gateways,
    request_id     bigint GENERATED ALWAYS AS IDENTITY,
    alarm_id       bigint NOT NULL,
    -- `ack` or `shelve` (for shelve_seconds).
    action         text NOT NULL CHECK (action IN ('ack', 'shelve')),
    shelve_seconds integer CHECK ((action = 'shelve') = (shelve_seconds IS NOT NULL)
                                  AND (shelve_seconds IS NULL OR shelve_seconds BETWEEN 60 AND 604800)),
    -- Who asked: the account (NULL once it is removed) and its login and name at the time.
    user_id        bigint REFERENCES markoff.web_users ON DELETE SET NULL,
    login          text NOT NULL,
    display_name   text NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    -- `pending` until the gateway answers `done` or `refused` (with its reason in detail).
    state          text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'refused')),
    -- The gateway user the request was applied as (its `[[users]] office_login`), or the
    -- identity it recorded when nobody matched (`office:LOGIN`).
    actor          text,
    detail         text,
    answered_at    timestamptz,
    PRIMARY KEY (gateway_id, request_id)
);
-- One pending request per alarm and action: asking twice while waiting adds nothing.
CREATE UNIQUE INDEX office_requests_one_pending ON markoff.office_requests (gateway_id, alarm_id, action)
    WHERE state = 'pending';
CREATE INDEX office_requests_alarm ON markoff.office_requests (gateway_id, alarm_id, request_id);

ALTER TABLE markoff.office_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.office_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.office_requests USING ((SELECT markoff.is_central()));
-- A gateway has no privilege on the table; the functions below read and answer its own
-- requests as the owner, which these policies hold to that gateway's rows.
CREATE POLICY gateway_own ON markoff.office_requests
    USING (gateway_id = (SELECT markoff.current_gateway()))
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));
CREATE POLICY web_user ON markoff.office_requests AS RESTRICTIVE FOR SELECT
    USING ((SELECT markoff.web_gateways()) IS NULL
           OR gateway_id = ANY (CAST((SELECT markoff.web_gateways()) AS text[])));
REVOKE ALL ON markoff.office_requests FROM PUBLIC;

-- Asks for `p_action` on an alarm as the user of the transaction's session
-- (`markoff.web_session`). Returns the request's id (the pending one already there when the
-- same action is asked again), or NULL when the session's user may not see the alarm's
-- building or there is no such alarm. Raises without a live session of a web role.
CREATE FUNCTION markoff.office_request(p_gateway_id text, p_alarm_id bigint, p_action text,
                                       p_shelve_seconds integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_session text := current_setting('markoff.web_session', true);
    v_user markoff.web_users%ROWTYPE;
    v_gateways text[];
    v_id bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM markoff.web_roles WHERE role_name = session_user) THEN
        RAISE EXCEPTION 'only the web application asks for alarm actions'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT u.* INTO v_user
    FROM markoff.web_sessions s JOIN markoff.web_users u USING (user_id)
    WHERE v_session ~ '^[0-9a-f]{64}$' AND s.id_hash = decode(v_session, 'hex')
      AND s.expires_at > now();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no live session' USING ERRCODE = 'insufficient_privilege';
    END IF;
    v_gateways := markoff.web_gateways();
    IF v_gateways IS NOT NULL AND NOT p_gateway_id = ANY (v_gateways) THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM markoff.alarm_latest
                   WHERE gateway_id = p_gateway_id AND alarm_id = p_alarm_id) THEN
        RETURN NULL;
    END IF;
    INSERT INTO markoff.office_requests (gateway_id, alarm_id, action, shelve_seconds, user_id,
                                         login, display_name)
    VALUES (p_gateway_id, p_alarm_id, p_action,
            CASE WHEN p_action = 'shelve' THEN p_shelve_seconds END, v_user.user_id,
            v_user.login, coalesce(v_user.display_name, v_user.login))
    ON CONFLICT (gateway_id, alarm_id, action) WHERE state = 'pending' DO NOTHING
    RETURNING request_id INTO v_id;
    IF v_id IS NULL THEN
        SELECT request_id INTO v_id FROM markoff.office_requests
        WHERE gateway_id = p_gateway_id AND alarm_id = p_alarm_id AND action = p_action
          AND state = 'pending';
    END IF;
    RETURN v_id;
END;
$$;

-- The pending requests of the calling gateway, oldest first. Raises for another gateway.
CREATE FUNCTION markoff.office_requests_pending(p_gateway_id text)
RETURNS TABLE (request_id bigint, alarm_id bigint, action text, shelve_seconds integer,
               login text, display_name text, requested_ms bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM markoff.gateways g
                   WHERE g.gateway_id = p_gateway_id AND g.role_name = session_user) THEN
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

-- Answers a pending request of the calling gateway: `done` or `refused`, the gateway user it
-- was applied as, the reason of a refusal. Returns whether it moved the request (false when it
-- was answered already). Raises for another gateway.
CREATE FUNCTION markoff.office_request_answer(p_gateway_id text, p_request_id bigint,
                                              p_state text, p_actor text, p_detail text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM markoff.gateways g
                   WHERE g.gateway_id = p_gateway_id AND g.role_name = session_user) THEN
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

-- The web role reads the requests (of its user's buildings) and asks through the function.
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
                   'markoff.latest_readings, markoff.active_alarms, markoff.office_requests '
                   'TO %I', p_role);
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
    FOR r IN SELECT role_name FROM markoff.web_roles
             WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) LOOP
        EXECUTE format('GRANT SELECT ON markoff.office_requests TO %I', r);
    END LOOP;
END;
$$;
