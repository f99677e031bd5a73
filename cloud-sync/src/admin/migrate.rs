//! The central schema's migrations, embedded from `migrations/central/`, and the maintenance of
//! the readings partitions.

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Acquire, PgConnection, Postgres, Row, SqlSafeStr};

use super::{AdminError, DEFAULT_MONTHS_AHEAD, MIGRATIONS_TABLE, SCHEMA, db};

/// The migrations in `migrations/central/`, embedded: (version, description, SQL).
/// A unit test checks this list against the directory.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "schema",
        include_str!("../../../migrations/central/0001_schema.sql"),
    ),
    (
        2,
        "security",
        include_str!("../../../migrations/central/0002_security.sql"),
    ),
    (
        3,
        "views",
        include_str!("../../../migrations/central/0003_views.sql"),
    ),
    (
        4,
        "web",
        include_str!("../../../migrations/central/0004_web.sql"),
    ),
    (
        5,
        "web_access",
        include_str!("../../../migrations/central/0005_web_access.sql"),
    ),
    (
        6,
        "distribution",
        include_str!("../../../migrations/central/0006_distribution.sql"),
    ),
    (
        7,
        "office_requests",
        include_str!("../../../migrations/central/0007_office_requests.sql"),
    ),
    (
        8,
        "clock",
        include_str!("../../../migrations/central/0008_clock.sql"),
    ),
    (
        9,
        "pooled_ingest",
        include_str!("../../../migrations/central/0009_pooled_ingest.sql"),
    ),
    (
        10,
        "year",
        include_str!("../../../migrations/central/0010_year.sql"),
    ),
    (
        11,
        "upload_function",
        include_str!("../../../migrations/central/0011_upload_function.sql"),
    ),
    (
        12,
        "daily_rollup",
        include_str!("../../../migrations/central/0012_daily_rollup.sql"),
    ),
    (
        13,
        "upload_inline",
        include_str!("../../../migrations/central/0013_upload_inline.sql"),
    ),
];

/// What `migrate` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateReport {
    /// Versions applied by this call (empty when the database was up to date).
    pub applied: Vec<i64>,
    /// Every version now applied.
    pub current: Vec<i64>,
    /// Readings partitions created by this call.
    pub partitions_created: i32,
}

/// The migrator for the central schema (migrations embedded from `migrations/central/`).
pub fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    let mut m = Migrator::with_migrations(migrations);
    m.create_schema(SCHEMA);
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m
}

/// Applies every pending migration (idempotent; concurrent runs wait on each other), then makes
/// sure the readings partitions exist ([`DEFAULT_MONTHS_AHEAD`] months ahead).
///
/// # Errors
/// [`AdminError::Migrate`] or [`AdminError::Database`].
pub async fn migrate<'a, A>(db: A) -> Result<MigrateReport, AdminError>
where
    A: Acquire<'a, Database = Postgres>,
{
    let mut conn = db.acquire().await.map_err(self::db("connecting"))?;
    let before = applied_versions(&mut conn).await?;
    migrator().run(&mut *conn).await?;
    let current = applied_versions(&mut conn).await?;
    let applied = current
        .iter()
        .copied()
        .filter(|v| !before.contains(v))
        .collect();
    let partitions_created = ensure_partitions(&mut conn, DEFAULT_MONTHS_AHEAD).await?;
    Ok(MigrateReport {
        applied,
        current,
        partitions_created,
    })
}

async fn applied_versions(conn: &mut PgConnection) -> Result<Vec<i64>, AdminError> {
    let exists: bool = sqlx::query("SELECT to_regclass($1) IS NOT NULL")
        .bind(MIGRATIONS_TABLE)
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(db("reading the applied migrations"))?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_scalar::<_, i64>(
        "SELECT version FROM markoff._sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db("reading the applied migrations"))
}

/// Creates the missing monthly partitions of `markoff.readings` from last month to
/// `months_ahead` months ahead; returns how many were created.
///
/// # Errors
/// [`AdminError::Database`].
pub async fn ensure_partitions(
    conn: &mut PgConnection,
    months_ahead: i32,
) -> Result<i32, AdminError> {
    sqlx::query_scalar::<_, i32>("SELECT markoff.ensure_partitions($1)")
        .bind(months_ahead)
        .fetch_one(&mut *conn)
        .await
        .map_err(db("creating readings partitions"))
}

/// Drops the monthly partitions of `markoff.readings` older than `keep_months` months before
/// the current one (`markoff.drop_partitions`); returns how many were dropped.
///
/// # Errors
/// [`AdminError::Database`] (also when `keep_months` is below 1).
pub async fn drop_partitions(conn: &mut PgConnection, keep_months: i32) -> Result<i32, AdminError> {
    sqlx::query_scalar::<_, i32>("SELECT markoff.drop_partitions($1)")
        .bind(keep_months)
        .fetch_one(&mut *conn)
        .await
        .map_err(db("dropping old readings partitions"))
}
