-- The login lookup PgBouncer's auth_query calls (packaging/pgbouncer/markoff-central.ini).
-- Run as a superuser in the markoff database. markoff_pgbouncer may read the SCRAM verifier of
-- one role at a time through this function and nothing else: it is not a superuser and has no
-- privilege on any table.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'markoff_pgbouncer') THEN
        CREATE ROLE markoff_pgbouncer LOGIN;
    END IF;
END
$$;
CREATE SCHEMA IF NOT EXISTS markoff_pgbouncer;
REVOKE ALL ON SCHEMA markoff_pgbouncer FROM PUBLIC;
GRANT USAGE ON SCHEMA markoff_pgbouncer TO markoff_pgbouncer;
CREATE OR REPLACE FUNCTION markoff_pgbouncer.user_lookup(p_usename text, OUT usename name, OUT passwd text)
RETURNS record
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- Superusers never log in through the pooler.
    SELECT s.usename, s.passwd FROM pg_shadow s
    WHERE s.usename = p_usename AND NOT s.usesuper
$$;
REVOKE ALL ON FUNCTION markoff_pgbouncer.user_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION markoff_pgbouncer.user_lookup(text) TO markoff_pgbouncer;
