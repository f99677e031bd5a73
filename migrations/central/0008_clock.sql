-- The gateways' clocks (docs/clock.md): whether each gateway's system clock is synchronised, and
-- the spans of readings it stamped from its monotonic clock while it was not.
--
-- A span's readings are those of its gateway with first_seq <= seq <= last_seq (last_seq NULL:
-- still open) whose ts lies in the span's interval. state 'corrected': the gateway learnt the
-- offset to real time and uploaded the readings corrected (the interval is from_ms..to_ms plus
-- offset_ms); 'uncorrected': the readings were uploaded as stamped (interval from_ms..to_ms),
-- offset_ms is the correction if it was learnt afterwards; 'pending': none uploaded yet.
CREATE TABLE markoff.clock_epochs (
    gateway_id text NOT NULL,
    epoch_id   bigint NOT NULL,
    reason     text NOT NULL,
    first_seq  bigint NOT NULL,
    last_seq   bigint,
    from_ms    bigint NOT NULL,
    to_ms      bigint,
    offset_ms  bigint,
    state      text NOT NULL CHECK (state IN ('pending', 'corrected', 'uncorrected')),
    updated    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, epoch_id)
);

-- The last clock status each gateway reported.
CREATE TABLE markoff.gateway_clock (
    gateway_id     text PRIMARY KEY,
    synchronized   boolean,
    trusted        boolean NOT NULL,
    steps          bigint NOT NULL,
    last_offset_ms bigint,
    reported_at    timestamptz NOT NULL DEFAULT now()
);

-- Gateways write both only through these functions, for themselves (like touch_gateway).
CREATE FUNCTION markoff.report_clock(p_gateway_id text, p_synchronized boolean,
    p_trusted boolean, p_steps bigint, p_last_offset_ms bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM markoff.gateways WHERE gateway_id = p_gateway_id
                   AND (role_name = session_user OR markoff.is_central())) THEN
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

CREATE FUNCTION markoff.report_clock_epoch(p_gateway_id text, p_epoch_id bigint, p_reason text,
    p_first_seq bigint, p_last_seq bigint, p_from_ms bigint, p_to_ms bigint, p_offset_ms bigint,
    p_state text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM markoff.gateways WHERE gateway_id = p_gateway_id
                   AND (role_name = session_user OR markoff.is_central())) THEN
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

-- Every reading with how its time was obtained: clock 'measured' (stamped by a trusted clock),
-- 'corrected' (stamped from the monotonic clock, corrected before upload) or 'uncorrected'
-- (stamped from the monotonic clock, uploaded as stamped; clock_offset_ms is the correction when
-- it was learnt afterwards). The caller's row-level security applies.
CREATE VIEW markoff.readings_clock WITH (security_invoker = true) AS
SELECT r.gateway_id, r.seq, r.sensor_id, r.ts, r.value, r.quality,
       coalesce(e.state, 'measured') AS clock,
       e.offset_ms AS clock_offset_ms
FROM markoff.readings r
LEFT JOIN markoff.clock_epochs e
       ON e.gateway_id = r.gateway_id
      AND e.state <> 'pending'
      AND r.seq >= e.first_seq
      AND (e.last_seq IS NULL OR r.seq <= e.last_seq)
      AND r.ts >= to_timestamp(0) + (e.from_ms
              + CASE e.state WHEN 'corrected' THEN e.offset_ms ELSE 0 END) * interval '1 millisecond'
      AND (e.to_ms IS NULL OR r.ts <= to_timestamp(0) + (e.to_ms
              + CASE e.state WHEN 'corrected' THEN e.offset_ms ELSE 0 END) * interval '1 millisecond');

-- Forced like every table: the two functions above run as the owner, and the policies let
-- them write only the calling gateway's rows (current_gateway() looks at session_user).
ALTER TABLE markoff.clock_epochs ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.clock_epochs FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.clock_epochs USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_own ON markoff.clock_epochs
    USING (gateway_id = (SELECT markoff.current_gateway()))
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));
CREATE POLICY gateway_read ON markoff.clock_epochs FOR SELECT
    USING (gateway_id = ANY (CAST((SELECT markoff.building_gateways()) AS text[])));
ALTER TABLE markoff.gateway_clock ENABLE ROW LEVEL SECURITY;
ALTER TABLE markoff.gateway_clock FORCE ROW LEVEL SECURITY;
CREATE POLICY central ON markoff.gateway_clock USING ((SELECT markoff.is_central()));
CREATE POLICY gateway_own ON markoff.gateway_clock
    USING (gateway_id = (SELECT markoff.current_gateway()))
    WITH CHECK (gateway_id = (SELECT markoff.current_gateway()));
CREATE POLICY gateway_read ON markoff.gateway_clock FOR SELECT
    USING (gateway_id = ANY (CAST((SELECT markoff.building_gateways()) AS text[])));
