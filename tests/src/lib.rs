//! The shared test harness of Markoff: drives the real `markoff` binary the way systemd, an
//! operator and the future uploader do.
//!
//! - [`assert_eventually!`] / [`assert_always!`]: wait on conditions without fixed sleeps; the
//!   patience stretches with `MARKOFF_TEST_PATIENCE` (a factor).
//! - [`markoff_bin`]: the binary under test (`target/<profile>/markoff`, or `$MARKOFF_BIN`), run
//!   through `$MARKOFF_BIN_RUNNER` when that names an emulator (e.g. `qemu-aarch64`).
//! - [`TempGateway`]: `markoff run` in its own temp dir with a generated config, port 0, a
//!   captured log, signals, restart, and HTTP/metrics helpers.
//! - [`FakeSystemd`]: a notify socket that records READY/STATUS/WATCHDOG/STOPPING.
//! - [`db`]: a separate SQLite connection on a gateway's buffer.
//! - [`accounts`]: Unix test accounts and groups (root; required under `CI=true`), the CLI run as them.
//! - [`services`]: PostgreSQL and Mosquitto, required under `CI=true`.
//! - [`pg`]: a migrated central database of the test's own, gateway roles, what the centre holds.
//! - [`proxy`]: a TCP proxy that takes a server down for one client (cut, refuse, back up).
//! - [`central_web`]: `markoff-central serve` against a test database, and a cookie-keeping
//!   HTTP client; [`browser`]: headless Chromium through chromedriver (required under `CI=true`).
//! - [`kobold`]: a fake Koboldcpp server speaking its real wire format, with scripted answers.
//! - [`telegram`]: a fake Telegram Bot API server: people's messages, voice notes and button
//!   presses in, every call of the bot recorded, faults and outages on demand.
//! - [`prometheus`]: Debian's Prometheus server and promtool (required under `CI=true`).
//! - [`agent_eval`]: the assistant's evaluation (questions, matching rule, runner, report).
//!
//! The end-to-end tests themselves are in `tests/tests/e2e.rs`.

pub mod accounts;
pub mod agent_eval;
pub mod binary;
pub mod browser;
pub mod central_web;
pub mod db;
pub mod eventually;
pub mod fake_server;
pub mod gateway;
pub mod kobold;
pub mod pg;
pub mod pgbouncer;
pub mod prometheus;
pub mod proxy;
pub mod services;
pub mod store;
pub mod systemd;
pub mod telegram;

pub use binary::markoff_bin;
pub use gateway::{
    GatewayBuilder, SimulatorKnobs, TempGateway, describe_exit, markoff_command, metric_in,
    run_markoff,
};
pub use systemd::{FakeSystemd, Notification};

/// Re-exported for the macros.
#[doc(hidden)]
pub use tokio;
