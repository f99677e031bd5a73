//! The real servers some tests need: PostgreSQL and Mosquitto.
//!
//! They are not optional for this project (see `shared/design/conventions.md`, "Departures"):
//! under `CI=true` an unreachable server fails the test loudly; on a developer machine a loud
//! warning is printed and the caller returns early.
//!
//! Owns: finding the servers. Does not own: starting them (the README test command does).

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Overrides the PostgreSQL address (default `127.0.0.1:5432`).
pub const PG_ADDR_ENV: &str = "MARKOFF_TEST_PG_ADDR";
/// Overrides the MQTT broker address (default `127.0.0.1:1883`).
pub const MQTT_ADDR_ENV: &str = "MARKOFF_TEST_MQTT_ADDR";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the tests expect PostgreSQL.
pub fn postgres_addr() -> String {
    std::env::var(PG_ADDR_ENV).unwrap_or_else(|_| "127.0.0.1:5432".to_owned())
}

/// Where the tests expect the MQTT broker.
pub fn mosquitto_addr() -> String {
    std::env::var(MQTT_ADDR_ENV).unwrap_or_else(|_| "127.0.0.1:1883".to_owned())
}

/// Whether PostgreSQL accepts TCP connections. See the module docs for what happens when not.
///
/// # Panics
/// Under `CI=true`, when PostgreSQL is unreachable.
pub fn require_postgres() -> bool {
    require(
        "PostgreSQL",
        &postgres_addr(),
        PG_ADDR_ENV,
        "apt-get install -y postgresql && service postgresql start",
    )
}

/// Whether the MQTT broker accepts TCP connections. See the module docs for what happens when not.
///
/// # Panics
/// Under `CI=true`, when the broker is unreachable.
pub fn require_mosquitto() -> bool {
    require(
        "Mosquitto",
        &mosquitto_addr(),
        MQTT_ADDR_ENV,
        "apt-get install -y mosquitto && service mosquitto start (or: mosquitto -d)",
    )
}

/// Opens a TCP connection to `addr` with a timeout.
///
/// # Errors
/// The address does not resolve or nothing accepts the connection in time.
pub fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{addr} resolves to no address"),
    );
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_read_timeout(Some(CONNECT_TIMEOUT))?;
                s.set_write_timeout(Some(CONNECT_TIMEOUT))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

fn require(what: &str, addr: &str, env: &str, how: &str) -> bool {
    match connect(addr) {
        Ok(_) => true,
        Err(e) => {
            let msg = format!(
                "{what} is not reachable at {addr} ({e}). The end-to-end tests need it. \
                 Start it with: {how}; or point {env} at a running server."
            );
            assert!(!in_ci(), "{msg}");
            eprintln!("\n!!!!!!!!!! WARNING: SKIPPING a test !!!!!!!!!!\n{msg}\n");
            false
        }
    }
}
