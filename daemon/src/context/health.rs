//! The sources' health board: what each source reports about its peers, for `markoff status` and the status API:
//! whether a connection is up, which devices answer, the last error.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use serde::{Deserialize, Serialize};

/// Status of one source (a Modbus connection, an MQTT connection, the simulator).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Whether the connection is up.
    pub connected: bool,
    /// Devices on it and whether each answers.
    pub devices: BTreeMap<String, bool>,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// Modbus devices: address holes learned, by device.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holes: BTreeMap<String, usize>,
}

/// Shared registry of source statuses. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Health {
    inner: Arc<RwLock<BTreeMap<String, SourceStatus>>>,
}

impl Health {
    /// Updates the status of `source`.
    pub fn update(&self, source: &str, f: impl FnOnce(&mut SourceStatus)) {
        f(self.inner.write().entry(source.to_owned()).or_default());
    }

    /// Every source's status, by name.
    pub fn snapshot(&self) -> BTreeMap<String, SourceStatus> {
        self.inner.read().clone()
    }
}
