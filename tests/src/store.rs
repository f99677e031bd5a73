//! A buffer in a directory of the test's own, with a short flush interval so tests see commits
//! quickly. Component tests (Modbus, MQTT) run sources against it without the daemon.

use std::path::Path;
use std::time::Duration;

use markoff::config::StoreConfig;
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::store::{Store, StoreOptions};

/// Opens (creating) the buffer `file` in `dir`. Must run inside a tokio runtime.
///
/// # Panics
/// The buffer cannot be opened.
pub fn open_test_store(dir: &Path, file: &str) -> Store {
    let cfg = StoreConfig {
        flush_interval: Duration::from_millis(5),
        ..StoreConfig::default()
    };
    Store::open(
        &cfg,
        &dir.join(file),
        StoreOptions::default(),
        Metrics::new(),
        Heartbeat::new("test"),
    )
    .expect("the test buffer opens")
}
