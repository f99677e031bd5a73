//! Schema versions of the gateway database, embedded from `migrations/gateway/`.
//!
//! `PRAGMA user_version` holds the number of applied migrations. Each migration runs in its own
//! transaction together with the version bump, so a crash leaves the database at a version boundary.

use rusqlite::Connection;

/// The migrations, in order. Never edit a released one: add a new file.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_buffer",
        include_str!("../../../migrations/gateway/0001_buffer.sql"),
    ),
    (
        "0002_attributes_state",
        include_str!("../../../migrations/gateway/0002_attributes_state.sql"),
    ),
    (
        "0003_alarms",
        include_str!("../../../migrations/gateway/0003_alarms.sql"),
    ),
    (
        "0004_agent",
        include_str!("../../../migrations/gateway/0004_agent.sql"),
    ),
    (
        "0005_telegram",
        include_str!("../../../migrations/gateway/0005_telegram.sql"),
    ),
    (
        "0006_columns",
        include_str!("../../../migrations/gateway/0006_columns.sql"),
    ),
    (
        "0007_clock",
        include_str!("../../../migrations/gateway/0007_clock.sql"),
    ),
];

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The database was written by a newer markoff.
    #[error(
        "database schema version {found} is newer than this markoff knows ({known}); refusing to touch it"
    )]
    TooNew {
        /// Version in the file.
        found: usize,
        /// Versions known to this binary.
        known: usize,
    },
    /// A migration failed.
    #[error("migration {name} failed")]
    Failed {
        /// Which one.
        name: &'static str,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
}

/// Applies the missing migrations; returns how many ran.
///
/// # Errors
/// See [`MigrationError`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<usize, MigrationError> {
    let fail = |name| move |source| MigrationError::Failed { name, source };
    let current: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(fail("read user_version"))?
        .try_into()
        .unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(MigrationError::TooNew {
            found: current,
            known: MIGRATIONS.len(),
        });
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction().map_err(fail(name))?;
        tx.execute_batch(sql).map_err(fail(name))?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )
        .map_err(fail(name))?;
        tx.commit().map_err(fail(name))?;
    }
    // A buffer written before the columnar tables were registered counted the clock migration
    // as its sixth: it has no `batches` yet. Their SQL only creates what is missing.
    let (name, sql) = COLUMNS;
    conn.execute_batch(sql).map_err(fail(name))?;
    Ok(MIGRATIONS.len() - current)
}

/// The migration that creates the columnar tables.
const COLUMNS: (&str, &str) = (
    "0006_columns",
    include_str!("../../../migrations/gateway/0006_columns.sql"),
);

/// Brings the schema up to date, then moves the readings of a row-per-reading buffer (or of an
/// upgrade a crash interrupted) into the log of batches and drops the old table
/// (`super::upgrade`). A new buffer loses its empty `readings` table here.
///
/// # Errors
/// See [`MigrationError`].
pub(crate) fn open(conn: &mut Connection) -> Result<(), MigrationError> {
    migrate(conn)?;
    let version = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    super::upgrade::run(conn, version).map_err(|source| MigrationError::Failed {
        name: "0006_columns (moving the readings)",
        source,
    })?;
    Ok(())
}

/// Number of migrations this binary knows.
#[cfg(test)]
pub(crate) fn latest_version() -> usize {
    MIGRATIONS.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_once_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), latest_version());
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, latest_version());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(MigrationError::TooNew { .. })
        ));
    }
}
