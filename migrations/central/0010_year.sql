-- Central schema, version 10: a centre at a year's size. docs/central-schema.md, section 4, and
-- docs/performance.md, section 9.4.
--
-- Adds the retention of readings: markoff.drop_partitions drops the monthly partitions of
-- markoff.readings older than the months to keep (`markoff-central maintain --keep-months N`).

-- Drops every monthly partition `readings_YYYY_MM` of markoff.readings whose month ended before
-- the first day of the month `keep_months` months before the current one (UTC): with
-- keep_months 12 in June 2027, May 2026 and older go, June 2026 stays. Returns how many it
-- dropped. The default partition is left alone. Serialised with ensure_partitions; each drop
-- takes a short exclusive lock on markoff.readings (uploads wait for it), and PostgreSQL cannot
-- detach concurrently while a default partition exists.
CREATE FUNCTION markoff.drop_partitions(keep_months integer) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    oldest timestamp;
    part record;
    dropped integer := 0;
BEGIN
    IF keep_months IS NULL OR keep_months < 1 THEN
        RAISE EXCEPTION 'keep_months must be at least 1 (the current month is always kept)';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('markoff.ensure_partitions'));
    oldest := date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => keep_months);
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = 'markoff.readings'::regclass AND n.nspname = 'markoff'
          AND c.relname ~ '^readings_[0-9]{4}_[0-9]{2}$'
          AND to_date(substr(c.relname, 10), 'YYYY_MM')::timestamp < oldest
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE markoff.%I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END;
$$;
REVOKE EXECUTE ON FUNCTION markoff.drop_partitions(integer) FROM PUBLIC;
