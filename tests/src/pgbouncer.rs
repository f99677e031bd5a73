//! A PgBouncer of the test's own, in front of the test PostgreSQL: the packaged configuration
//! (`packaging/pgbouncer/markoff-central.ini`) with the test's port, paths and pool size, and
//! logins checked against the test database by the packaged `auth_query` function.
//!
//! PgBouncer is not optional for the sync tests: under `CI=true` a missing `pgbouncer` fails
//! the test loudly (tests/run.sh installs it); elsewhere a loud warning is printed and
//! [`PgBouncer::start`] returns `None`.
//!
//! Owns: the config file, the process (killed when the value is dropped) and its log. Does not
//! own: the database ([`crate::pg::PgTestDb`]).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::pg::PgTestDb;
use crate::services::postgres_addr;

/// The packaged configuration the test's is made from.
pub const PACKAGED_INI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../packaging/pgbouncer/markoff-central.ini"
);
/// The packaged login lookup (`auth_query`).
pub const PACKAGED_AUTH_SQL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../packaging/pgbouncer/auth_query.sql"
);

/// A running PgBouncer.
#[derive(Debug)]
pub struct PgBouncer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The `pgbouncer` binary, if installed.
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join("pgbouncer"))
        .find(|p| p.is_file())
}

/// The installed PgBouncer's version line (`PgBouncer 1.18.0`), if installed.
pub fn version() -> Option<String> {
    let out = Command::new(binary()?).arg("--version").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_owned)
}

/// The packaged configuration with `overrides` for keys of `[pgbouncer]` (a key set to `None`
/// is removed) and `[databases]` replaced by `databases` lines.
pub fn configure<'a>(
    packaged: &str,
    overrides: &[(&'a str, Option<String>)],
    databases: &[String],
) -> String {
    let mut out = String::new();
    let mut section = String::new();
    let mut done: Vec<&'a str> = Vec::new();
    let flush_overrides = |out: &mut String, done: &mut Vec<&'a str>| {
        for (k, v) in overrides {
            if !done.contains(k)
                && let Some(v) = v
            {
                out.push_str(&format!("{k} = {v}\n"));
            }
        }
        done.extend(overrides.iter().map(|(k, _)| *k));
    };
    for line in packaged.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            if section == "[pgbouncer]" {
                flush_overrides(&mut out, &mut done);
            }
            section = t.to_owned();
            out.push_str(line);
            out.push('\n');
            if section == "[databases]" {
                for d in databases {
                    out.push_str(d);
                    out.push('\n');
                }
            }
            continue;
        }
        let is_setting = !t.is_empty() && !t.starts_with(';') && !t.starts_with('#');
        if section == "[databases]" && is_setting {
            continue;
        }
        if section == "[pgbouncer]" && is_setting {
            let key = t.split('=').next().unwrap_or("").trim();
            if let Some((k, v)) = overrides.iter().find(|(k, _)| *k == key) {
                if let Some(v) = v {
                    out.push_str(&format!("{k} = {v}\n"));
                }
                done.push(k);
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    if section == "[pgbouncer]" {
        flush_overrides(&mut out, &mut done);
    }
    out
}

impl PgBouncer {
    /// Starts PgBouncer in front of `pg`'s database (same name), with at most `pool_size`
    /// server connections per gateway role, on a free loopback port; returns once it accepts
    /// connections. `None` when PgBouncer is not installed (never under `CI=true`).
    ///
    /// # Panics
    /// Under `CI=true` when PgBouncer is not installed; when it does not start.
    pub async fn start(pg: &PgTestDb, pool_size: u32) -> Option<Self> {
        let Some(bin) = binary() else {
            let msg = "pgbouncer is not installed: the PgBouncer tests need it \
                       (apt-get install pgbouncer; tests/run.sh does)";
            assert!(!in_ci(), "{msg}");
            eprintln!("\n!!!!!!!!!! WARNING: SKIPPING a test !!!!!!!!!!\n{msg}\n");
            return None;
        };
        // The packaged login lookup, in the test database.
        let sql = std::fs::read_to_string(PACKAGED_AUTH_SQL).expect("read auth_query.sql");
        let mut admin = pg.admin().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create the PgBouncer login lookup: {e}"));

        let dir = tempfile::Builder::new()
            .prefix("markoff-pgbouncer-")
            .tempdir()
            .expect("a temp dir for PgBouncer");
        let root = nix::unistd::geteuid().is_root();
        if root {
            // PgBouncer refuses to run as root; it switches to `user` and must write its log.
            let pg_user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .expect("PgBouncer started as root needs a `postgres` system user to run as");
            nix::unistd::chown(dir.path(), Some(pg_user.uid), Some(pg_user.gid))
                .expect("chown the PgBouncer dir");
        }
        let port = free_port();
        let (pg_host, pg_port) = postgres_addr()
            .rsplit_once(':')
            .map(|(h, p)| (h.to_owned(), p.to_owned()))
            .expect("a host:port PostgreSQL address");
        let userlist = dir.path().join("userlist.txt");
        std::fs::write(&userlist, "").expect("write userlist.txt");
        let p = |f: &str| dir.path().join(f).display().to_string();
        let overrides = [
            ("listen_addr", Some("127.0.0.1".to_owned())),
            ("listen_port", Some(port.to_string())),
            ("unix_socket_dir", Some(String::new())),
            ("logfile", Some(p("pgbouncer.log"))),
            ("pidfile", Some(p("pgbouncer.pid"))),
            ("auth_file", Some(userlist.display().to_string())),
            // The test server trusts loopback logins, so the superuser needs no password.
            ("auth_user", Some("postgres".to_owned())),
            ("default_pool_size", Some(pool_size.to_string())),
            ("admin_users", None),
            ("stats_users", None),
            ("user", root.then(|| "postgres".to_owned())),
        ];
        let packaged = std::fs::read_to_string(PACKAGED_INI).expect("read the packaged ini");
        let ini = configure(
            &packaged,
            &overrides,
            &[format!(
                "{db} = host={pg_host} port={pg_port} dbname={db}",
                db = pg.name()
            )],
        );
        let ini_path = dir.path().join("pgbouncer.ini");
        std::fs::write(&ini_path, ini).expect("write pgbouncer.ini");
        let child = Command::new(&bin)
            .arg(&ini_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut me = Self { child, port, dir };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!("PgBouncer exited ({status}):\n{}", me.log());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "PgBouncer does not accept connections on {port}:\n{}",
                me.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(me)
    }

    /// The process id of PgBouncer (to stop and continue it, as a central outage).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The directory holding the config and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// PgBouncer's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // Only the process this value started.
        if self.child.kill().is_ok() {
            self.child.wait().ok();
        }
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_add_and_remove_keys() {
        let packaged = "; c\n[databases]\nmarkoff = host=x\n\n[pgbouncer]\n;; note\n\
                        listen_port = 6432\nadmin_users = postgres\npool_mode = transaction\n";
        let got = configure(
            packaged,
            &[
                ("listen_port", Some("7000".to_owned())),
                ("admin_users", None),
                ("user", Some("postgres".to_owned())),
            ],
            &["db1 = host=127.0.0.1 dbname=db1".to_owned()],
        );
        assert_eq!(
            got,
            "; c\n[databases]\ndb1 = host=127.0.0.1 dbname=db1\n\n[pgbouncer]\n;; note\n\
             listen_port = 7000\npool_mode = transaction\nuser = postgres\n"
        );
    }
}
