//! Typed configuration: parse (serde, `deny_unknown_fields`) -> validate (pure, collects every
//! error) -> build (done by the components in `crate::app`).
//!
//! Owns: the shape of `markoff.toml`, defaults, validation and error reporting with file:line:col.
//! Does not own: opening anything (sockets, files, ports); that is the build step in `crate::app`.

pub mod error;
mod load;
pub mod secret;
pub mod site;
pub mod units;
pub mod users;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use error::ConfigError;
pub use load::{ConfigErrors, LoadError, load_file, parse_str};
pub use secret::{Secret, SecretError, SecretRef};
pub use site::{
    FloorConfig, RoomConfig, SensorPlacementConfig, SiteConfig, TenantConfig, UtcOffset,
};
pub use units::ByteSize;
pub use users::UserConfig;

/// Default location of the config file (the Debian package installs it there).
pub const DEFAULT_CONFIG: &str = "/etc/markoff/markoff.toml";

/// The file next to the buffer that records the bound API URL (useful with port 0).
pub fn api_file(db_path: &std::path::Path) -> PathBuf {
    db_path.with_file_name("markoff.api")
}

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Who this gateway is.
    pub gateway: GatewayConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The durable SQLite buffer.
    #[serde(default)]
    pub store: StoreConfig,
    /// Supervision, shutdown and systemd integration.
    #[serde(default)]
    pub service: ServiceConfig,
    /// The local HTTP API (health, metrics, JSON for the CLI).
    #[serde(default)]
    pub http: HttpConfig,
    /// Data sources.
    #[serde(default)]
    pub sources: SourcesConfig,
    /// The system clock: trusting it, and stamping while it is not synchronised.
    #[serde(default)]
    pub clock: crate::clock::config::ClockConfig,
    /// The building: name, address, floors, rooms, tenants (site metadata for the centre).
    #[serde(default)]
    pub site: SiteConfig,
    /// Upload to the central PostgreSQL; no uploads without the section.
    #[serde(default)]
    pub sync: Option<crate::sync::config::SyncConfig>,
    /// Local alarm rules and notification targets.
    #[serde(default)]
    pub alarms: crate::alarms::config::AlarmsConfig,
    /// People who may use the gateway's channels, with their roles.
    #[serde(default)]
    pub users: Vec<users::UserConfig>,
    /// The on-site assistant and its LLM server.
    #[serde(default)]
    pub agent: crate::agent::config::AgentConfig,
    /// The LAN page for on-site staff (opt-in).
    #[serde(default)]
    pub lan: crate::channels::lan::config::LanConfig,
    /// The Telegram bot (opt-in).
    #[serde(default)]
    pub telegram: crate::channels::telegram::config::TelegramConfig,
}

/// `[gateway]`: the identity of this gateway.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Stable id of this gateway; part of the sync idempotency key, so never change it once synced.
    pub id: String,
    /// Human name of the building ("Lenina 17").
    #[serde(default)]
    pub name: Option<String>,
}

/// `[log]`
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `RUST_LOG`-style filter, e.g. `info` or `info,markoff::sources=debug`.
    /// The `RUST_LOG` environment variable, when set, takes precedence.
    #[serde(default = "defaults::log_filter")]
    pub filter: String,
    /// How each line is written. A change needs a restart.
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: defaults::log_filter(),
            format: LogFormat::default(),
        }
    }
}

/// `[log] format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// To journald with its fields when systemd started the daemon, else text lines on stderr.
    #[default]
    Text,
    /// One JSON object per line on stderr (journald stores each line as a message), for log
    /// shippers: `timestamp`, `level`, `target`, `fields` (with `message`) and `spans`.
    Json,
}

/// SQLite `synchronous` setting of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// fsync at WAL checkpoints: a power cut can lose the last commits, never corrupt the file.
    Normal,
    /// fsync at every commit: nothing committed is lost on power cut; about 3x slower.
    Full,
}

impl Synchronous {
    /// The value for `PRAGMA synchronous`.
    pub fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// `[store]`: the durable buffer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite file. Default: `$STATE_DIRECTORY/markoff.db` under systemd, else
    /// `/var/lib/markoff/markoff.db`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Commit a batch once it holds this many rows.
    #[serde(default = "defaults::flush_rows")]
    pub flush_rows: usize,
    /// ... or once the oldest row in the batch waited this long: the most any reading waits
    /// before it is durable (and before alarms see it).
    #[serde(default = "defaults::flush_interval", with = "humantime_serde")]
    pub flush_interval: Duration,
    /// ... or once a message whose producer waits for the commit (an MQTT message before its
    /// acknowledgement, a sensor registration, component state) waited this long (at most
    /// `flush_interval`).
    #[serde(default = "defaults::flush_interval_waited", with = "humantime_serde")]
    pub flush_interval_waited: Duration,
    /// Messages (each a batch of readings from one source) queued to the writer before producers wait.
    #[serde(default = "defaults::queue_capacity")]
    pub queue_capacity: usize,
    /// Disk budget of the database. When reached, the oldest synced readings are dropped first,
    /// then the oldest unsynced readings; alarm events are never dropped.
    #[serde(default = "defaults::max_size")]
    pub max_size: ByteSize,
    /// How long synced readings are kept for local history questions.
    #[serde(default = "defaults::retention", with = "humantime_serde")]
    pub retention: Duration,
    /// How often the disk budget and retention are enforced.
    #[serde(default = "defaults::maintenance_interval", with = "humantime_serde")]
    pub maintenance_interval: Duration,
    /// Durability of each commit.
    #[serde(default = "defaults::synchronous")]
    pub synchronous: Synchronous,
    /// SQLite page cache of the writer (default 8 MiB). A commit appends to the end of the log
    /// and a fold to the end of the chunks, so the hot pages are few; it is an upper bound:
    /// pages are only allocated as they are used.
    #[serde(default = "defaults::cache_size")]
    pub cache_size: ByteSize,
    /// How long the writer waits for a lock held by another process before it reports the
    /// database busy and retries.
    #[serde(default = "defaults::busy_timeout", with = "humantime_serde")]
    pub busy_timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: None,
            flush_rows: defaults::flush_rows(),
            flush_interval: defaults::flush_interval(),
            flush_interval_waited: defaults::flush_interval_waited(),
            queue_capacity: defaults::queue_capacity(),
            max_size: defaults::max_size(),
            retention: defaults::retention(),
            maintenance_interval: defaults::maintenance_interval(),
            synchronous: defaults::synchronous(),
            cache_size: defaults::cache_size(),
            busy_timeout: defaults::busy_timeout(),
        }
    }
}

impl StoreConfig {
    /// The database path, applying the default.
    pub fn resolved_path(&self) -> PathBuf {
        if let Some(p) = &self.path {
            return p.clone();
        }
        let dir = std::env::var_os("STATE_DIRECTORY")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/lib/markoff"));
        dir.join("markoff.db")
    }
}

/// `[service]`: supervision and lifecycle.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Deadline for a clean stop after SIGTERM (keep it below systemd `TimeoutStopSec`).
    #[serde(default = "defaults::shutdown_timeout", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// A critical task (the buffer writer) that makes no progress for this long counts as hung:
    /// watchdog pings stop and systemd restarts the service. Capped by `WatchdogSec`.
    #[serde(default = "defaults::stall_timeout", with = "humantime_serde")]
    pub stall_timeout: Duration,
    /// First restart delay of a failed task; doubles on each failure, with jitter.
    #[serde(default = "defaults::restart_backoff_min", with = "humantime_serde")]
    pub restart_backoff_min: Duration,
    /// Largest restart delay.
    #[serde(default = "defaults::restart_backoff_max", with = "humantime_serde")]
    pub restart_backoff_max: Duration,
    /// A task failing more often than this within `restart_window` stops the process
    /// with a non-zero exit, so systemd `Restart=on-failure` takes over.
    #[serde(default = "defaults::max_restarts")]
    pub max_restarts: u32,
    /// Window for `max_restarts`.
    #[serde(default = "defaults::restart_window", with = "humantime_serde")]
    pub restart_window: Duration,
    /// How often the one-line status (systemd `STATUS=`, log) is refreshed.
    #[serde(default = "defaults::status_interval", with = "humantime_serde")]
    pub status_interval: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            shutdown_timeout: defaults::shutdown_timeout(),
            stall_timeout: defaults::stall_timeout(),
            restart_backoff_min: defaults::restart_backoff_min(),
            restart_backoff_max: defaults::restart_backoff_max(),
            max_restarts: defaults::max_restarts(),
            restart_window: defaults::restart_window(),
            status_interval: defaults::status_interval(),
        }
    }
}

/// `[http]`: the local HTTP API.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve the API at all.
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
    /// Address to listen on. Loopback by default; binding a LAN address is an explicit choice.
    /// Without a bearer token (`[[http.token]]`) this listener only answers reads.
    #[serde(default = "defaults::http_listen")]
    pub listen: SocketAddr,
    /// The Unix socket of the local control plane: the caller's uid (from the kernel) says who
    /// acts. Empty: no socket.
    #[serde(default = "defaults::http_socket")]
    pub socket: PathBuf,
    /// `[[http.token]]`: bearer tokens for remote tools on the TCP listener, each standing for a
    /// `[[users]]` login. Read from env/file/credential, never from this file.
    #[serde(default)]
    pub token: Vec<crate::channels::lan::config::LanTokenConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: defaults::http_listen(),
            socket: defaults::http_socket(),
            token: Vec::new(),
        }
    }
}

/// `[sources]`: where readings come from.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    /// Most sensors MQTT topics create in the gateway, all connections together (default
    /// 5000); readings of further new sensors are dropped and counted.
    #[serde(default = "defaults::mqtt_max_sensors")]
    pub mqtt_max_sensors: usize,
    /// The built-in building simulator (`markoff demo` turns it on).
    #[serde(default)]
    pub simulator: Option<SimulatorConfig>,
    /// Modbus connections by name: `[sources.modbus.<name>]`.
    #[serde(default)]
    pub modbus: crate::sources::modbus::config::Connections,
    /// Reusable Modbus register maps by name: `[sources.modbus_profiles.<name>]`.
    #[serde(default)]
    pub modbus_profiles: crate::sources::modbus::config::Profiles,
    /// MQTT broker connections by name: `[sources.mqtt.<name>]`.
    #[serde(default)]
    pub mqtt: crate::sources::mqtt::config::MqttConnections,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        Self {
            mqtt_max_sensors: defaults::mqtt_max_sensors(),
            simulator: None,
            modbus: Default::default(),
            modbus_profiles: Default::default(),
            mqtt: Default::default(),
        }
    }
}

/// `[sources.simulator]`: a simulated building.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Run it.
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
    /// Number of floors.
    #[serde(default = "defaults::sim_floors")]
    pub floors: u32,
    /// Rooms on each floor; each has temperature, humidity and CO2.
    #[serde(default = "defaults::sim_rooms")]
    pub rooms_per_floor: u32,
    /// Time between two readings of every sensor.
    #[serde(default = "defaults::sim_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Seed of the noise, for repeatable runs.
    #[serde(default)]
    pub seed: Option<u64>,
    /// How much faster than real time the daily cycle runs (1 = real time; 1440 = a day per minute).
    #[serde(default = "defaults::sim_time_scale")]
    pub time_scale: f64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            floors: defaults::sim_floors(),
            rooms_per_floor: defaults::sim_rooms(),
            interval: defaults::sim_interval(),
            seed: None,
            time_scale: defaults::sim_time_scale(),
        }
    }
}

/// Named default values, one function each so serde and docs share them.
pub(crate) mod defaults {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::path::PathBuf;
    use std::time::Duration;

    use super::{ByteSize, Synchronous};

    pub(crate) fn mqtt_max_sensors() -> usize {
        crate::sources::mqtt::DEFAULT_GATEWAY_MAX_SENSORS
    }

    pub(crate) fn log_filter() -> String {
        "info".to_owned()
    }
    pub(crate) fn flush_rows() -> usize {
        5_000
    }
    pub(crate) fn flush_interval() -> Duration {
        Duration::from_secs(1)
    }
    pub(crate) fn flush_interval_waited() -> Duration {
        Duration::from_millis(50)
    }
    pub(crate) fn queue_capacity() -> usize {
        256
    }
    pub(crate) fn max_size() -> ByteSize {
        ByteSize(2 * 1024 * 1024 * 1024)
    }
    pub(crate) fn retention() -> Duration {
        Duration::from_secs(30 * 24 * 3600)
    }
    pub(crate) fn maintenance_interval() -> Duration {
        Duration::from_secs(10)
    }
    pub(crate) fn synchronous() -> Synchronous {
        Synchronous::Normal
    }
    pub(crate) fn cache_size() -> ByteSize {
        ByteSize(8 * 1024 * 1024)
    }
    pub(crate) fn busy_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub(crate) fn shutdown_timeout() -> Duration {
        Duration::from_secs(20)
    }
    pub(crate) fn stall_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub(crate) fn restart_backoff_min() -> Duration {
        Duration::from_secs(1)
    }
    pub(crate) fn restart_backoff_max() -> Duration {
        Duration::from_secs(60)
    }
    pub(crate) fn max_restarts() -> u32 {
        10
    }
    pub(crate) fn restart_window() -> Duration {
        Duration::from_secs(300)
    }
    pub(crate) fn status_interval() -> Duration {
        Duration::from_secs(5)
    }
    pub(crate) fn enabled() -> bool {
        true
    }
    pub(crate) fn http_listen() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 9780))
    }
    pub(crate) fn http_socket() -> PathBuf {
        PathBuf::from("/run/markoff/api.sock")
    }
    pub(crate) fn sim_floors() -> u32 {
        3
    }
    pub(crate) fn sim_rooms() -> u32 {
        4
    }
    pub(crate) fn sim_interval() -> Duration {
        Duration::from_secs(1)
    }
    pub(crate) fn sim_time_scale() -> f64 {
        1.0
    }
}
