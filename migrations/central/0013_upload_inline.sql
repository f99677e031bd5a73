-- Central schema, version 13: markoff.ts_of_ms (version 11) declared STABLE, like its body.
--
-- timestamptz + interval is STABLE (it depends on the session's time zone for day and month
-- units), and PostgreSQL inlines a SQL function only when it is declared no less volatile than
-- its body: declared IMMUTABLE, markoff.ts_of_ms was called as a function for every reading of
-- every upload. STABLE, it is inlined into the statements of markoff.upload_readings, whose
-- cached plans are invalidated by the replacement. Its results do not change: whole seconds and
-- milliseconds only, so the time zone never matters.
CREATE OR REPLACE FUNCTION markoff.ts_of_ms(p_ms bigint) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT timestamptz '1970-01-01 00:00:00+00' + (p_ms / 1000) * interval '1 second'
           + (p_ms % 1000) * interval '1 millisecond'
$$;
