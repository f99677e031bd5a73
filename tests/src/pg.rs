//! A central PostgreSQL database of the test's own: created empty, migrated with the central
//! schema (`markoff_cloud_sync::migrate`), with gateway roles provisioned as
//! `markoff-central add-gateway` does, and dropped (with its roles) when the value is dropped.
//!
//! Owns: naming (unique per test, so tests run in parallel against one server), the superuser
//! connection tests inspect the centre with, and the `[sync]` text a test gateway uses.
//! Does not own: the schema or the protocol (`markoff-cloud-sync`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use markoff_cloud_sync::{GatewayCredentials, NewGateway, Password, Stream};
use sqlx::{Connection as _, PgConnection, Row as _};

use crate::services::postgres_addr;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One reading as the centre holds it: (seq, sensor id, ts ms, value, quality).
pub type CentralReading = (i64, i64, i64, Option<f64>, i16);

/// A migrated central database that exists for one test.
#[derive(Debug)]
pub struct PgTestDb {
    name: String,
    tag: String,
    roles: Vec<String>,
    dir: tempfile::TempDir,
    /// Kept when the value is dropped ([`Self::reuse`]).
    keep: bool,
}

impl PgTestDb {
    /// Creates and migrates a database named after `prefix` and this process.
    ///
    /// # Panics
    /// PostgreSQL is unreachable or refuses (check [`crate::services::require_postgres`] first).
    pub async fn create(prefix: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let clean: String = prefix
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect::<String>()
            .to_ascii_lowercase();
        let tag = format!("{clean}{}x{n}", std::process::id());
        let name = format!("markoff_t_{tag}");
        let mut admin = connect(&server_url("postgres")).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("cannot drop an old {name}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let db = Self {
            name,
            tag,
            roles: Vec::new(),
            dir: tempfile::Builder::new()
                .prefix("markoff-pg-")
                .tempdir()
                .expect("a temp dir for credentials"),
            keep: false,
        };
        let mut conn = db.admin().await;
        markoff_cloud_sync::migrate(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot migrate {}: {e}", db.name));
        db
    }

    /// Opens database `name` (`markoff_t_` and ASCII letters, digits and `_`), creating it if
    /// absent, and migrates it; unlike [`Self::create`], it is kept when the value is dropped,
    /// so a benchmark can keep its provisioned gateways between runs. Roles added with
    /// [`Self::add_gateway`] are kept too.
    ///
    /// # Panics
    /// A bad name; PostgreSQL is unreachable or refuses.
    pub async fn reuse(name: &str) -> Self {
        assert!(
            name.starts_with("markoff_t_")
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "bad database name {name}"
        );
        let mut admin = connect(&server_url("postgres")).await;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("cannot look up database {name}: {e}"));
        if !exists {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        }
        let db = Self {
            name: name.to_owned(),
            tag: name.trim_start_matches("markoff_t_").to_owned(),
            roles: Vec::new(),
            dir: tempfile::Builder::new()
                .prefix("markoff-pg-")
                .tempdir()
                .expect("a temp dir for credentials"),
            keep: true,
        };
        let mut conn = db.admin().await;
        markoff_cloud_sync::migrate(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot migrate {}: {e}", db.name));
        db
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The superuser URL of this database.
    pub fn admin_url(&self) -> String {
        server_url(&self.name)
    }

    /// A superuser connection to this database.
    pub async fn admin(&self) -> PgConnection {
        connect(&self.admin_url()).await
    }

    /// Provisions gateway `gateway_id` of `building` with a role unique to this database, and
    /// writes its password to a file; returns its credentials.
    ///
    /// # Panics
    /// Provisioning fails.
    pub async fn add_gateway(&mut self, gateway_id: &str, building: &str) -> GatewayCredentials {
        let role = format!("mkt_{}_{}", self.tag, self.roles.len());
        let mut conn = self.admin().await;
        let creds = markoff_cloud_sync::add_gateway(
            &mut conn,
            &NewGateway {
                gateway_id: gateway_id.to_owned(),
                building_id: building.to_owned(),
                role: Some(role.clone()),
                password: Some(Password::generate()),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("cannot add gateway {gateway_id}: {e}"));
        self.roles.push(role);
        std::fs::write(self.password_file(&creds.role), creds.password.expose())
            .expect("write the password file");
        creds
    }

    /// Creates an office login role (`web` for `markoff-central serve`, `reader` for Grafana)
    /// unique to this database, as `markoff-central add-role` does, and writes its password to
    /// [`Self::password_file`]; returns the role's name.
    ///
    /// # Panics
    /// Creating the role fails.
    pub async fn add_office_role(&mut self, kind: markoff_cloud_sync::OfficeRoleKind) -> String {
        let role = format!("mkt_{}_{}_{kind}", self.tag, self.roles.len());
        let mut conn = self.admin().await;
        let created = markoff_cloud_sync::add_office_role(&mut conn, &role, kind, None, false)
            .await
            .unwrap_or_else(|e| panic!("cannot add office role {role}: {e}"));
        self.roles.push(role.clone());
        let password = created.password.expect("a new role has a password");
        std::fs::write(self.password_file(&role), password.expose())
            .expect("write the password file");
        role
    }

    /// Where the password of `role` is written.
    pub fn password_file(&self, role: &str) -> PathBuf {
        self.dir.path().join(format!("{role}.password"))
    }

    /// A `[sync]` section for a gateway logging in as `role`, reaching PostgreSQL at `addr`
    /// (the server, or a [`crate::proxy::TcpProxy`] in front of it), with test-sized pacing.
    pub fn sync_toml(&self, role: &str, addr: &str, batch_rows: usize) -> String {
        format!(
            "[sync]\nurl = \"postgres://{role}@{addr}/{db}\"\npassword_file = {pw}\n\
             sslmode = \"disable\"\nbatch_rows = {batch_rows}\ninterval = \"50ms\"\n\
             max_backoff = \"2s\"\nconnect_timeout = \"2s\"\nstatement_timeout = \"5s\"\n",
            db = self.name,
            pw = crate::gateway::toml_str(&self.password_file(role).display().to_string()),
        )
    }

    /// The central cursor of a gateway's stream (0 when absent).
    pub async fn cursor(&self, gateway_id: &str, stream: Stream) -> i64 {
        let mut conn = self.admin().await;
        markoff_cloud_sync::central_cursor(&mut conn, gateway_id, stream)
            .await
            .unwrap_or_else(|e| panic!("cannot read the central cursor: {e}"))
    }

    /// Every reading of a gateway with `seq <= upto`, by seq.
    pub async fn readings(&self, gateway_id: &str, upto: i64) -> Vec<CentralReading> {
        let mut conn = self.admin().await;
        sqlx::query(
            "SELECT seq, sensor_id::int8, (extract(epoch FROM ts) * 1000)::int8, value, quality \
             FROM markoff.readings WHERE gateway_id = $1 AND seq <= $2 ORDER BY seq, ts",
        )
        .bind(gateway_id)
        .bind(upto)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot read the central readings: {e}"))
        .into_iter()
        .map(|r| {
            (
                r.get::<i64, _>(0),
                r.get::<i64, _>(1),
                r.get::<i64, _>(2),
                r.get::<Option<f64>, _>(3),
                r.get::<i16, _>(4),
            )
        })
        .collect()
    }

    /// Every alarm event of a gateway, by seq: (seq, ts ms, alarm id, event, message).
    pub async fn alarm_events(&self, gateway_id: &str) -> Vec<(i64, i64, i64, String, String)> {
        let mut conn = self.admin().await;
        sqlx::query(
            "SELECT seq, (extract(epoch FROM ts) * 1000)::int8, alarm_id, event, message \
             FROM markoff.alarm_events WHERE gateway_id = $1 ORDER BY seq",
        )
        .bind(gateway_id)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot read the central alarm events: {e}"))
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
    }

    /// Runs a query returning one text column, as the superuser (for the metadata tables).
    pub async fn texts(&self, sql: &str, bind: &str) -> Vec<String> {
        let mut conn = self.admin().await;
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(bind)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Ends every session of `role` with `pg_terminate_backend`; returns how many were in the
    /// middle of a statement or a transaction (`active`, `idle in transaction`).
    pub async fn terminate_sessions(&self, role: &str) -> (u64, u64) {
        let mut conn = self.admin().await;
        let rows = sqlx::query(
            "SELECT state, pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE usename = $1 AND pid <> pg_backend_pid()",
        )
        .bind(role)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot terminate sessions: {e}"));
        let busy = rows
            .iter()
            .filter(|r| {
                r.get::<Option<String>, _>(0)
                    .is_some_and(|s| s == "active" || s.starts_with("idle in transaction"))
            })
            .count();
        (rows.len() as u64, busy as u64)
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if std::thread::panicking() && std::env::var_os("MARKOFF_TEST_KEEP").is_some() {
            eprintln!("--- kept database {} (MARKOFF_TEST_KEEP) ---", self.name);
            return;
        }
        let name = self.name.clone();
        let roles = std::mem::take(&mut self.roles);
        // Async cleanup from Drop: on a thread of its own, with a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&server_url("postgres")).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                for role in roles {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
                        .execute(&mut conn)
                        .await?;
                }
                Ok::<_, sqlx::Error>(())
            })
            .map_err(std::io::Error::other)
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: cannot drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// The superuser URL of database `db` on the test server.
pub fn server_url(db: &str) -> String {
    format!("postgres://postgres@{}/{db}", postgres_addr())
}

/// Connects to `url`.
///
/// # Panics
/// The connection fails.
pub async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}
