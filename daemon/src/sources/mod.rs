//! Data sources: everything that produces readings.
//!
//! Owns: building the configured sources and the contract they follow. Does not own: storage.
//!
//! Contract for every source:
//! - it runs as a supervised task (`source:<name>`) and stops promptly when its token is cancelled;
//! - it stamps each reading at read time, with a quality; a failed read carries no value;
//! - it registers its sensors' metadata once at start, then sends readings through the
//!   [`IngestHandle`](crate::store::IngestHandle), waiting when the buffer queue is full;
//! - bad input is counted (`source_errors`) and logged, never a panic.

pub use crate::context::health;
pub mod metrics;
pub mod modbus;
pub mod mqtt;
pub mod simulator;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::service::supervisor::TaskError;
use crate::store::{IngestHandle, Reader};

pub use metrics::SourceMetrics;

/// What a source gets to run.
#[derive(Clone, Debug)]
pub struct SourceContext {
    /// Where readings go.
    pub ingest: IngestHandle,
    /// The sources' metrics (errors, MQTT messages).
    pub metrics: Arc<SourceMetrics>,
    /// Buffer queries (a source's learned state, e.g. Modbus address holes).
    pub reader: Reader,
    /// Where the source reports its connection and device health.
    pub health: health::Health,
}

impl SourceContext {
    /// A context writing to `store`, with a fresh health registry.
    pub fn for_store(store: &crate::store::Store) -> Self {
        Self {
            ingest: store.ingest.clone(),
            metrics: store.shared.registry.get::<SourceMetrics>(),
            reader: store.reader.clone(),
            health: health::Health::default(),
        }
    }
}

/// A boxed source run.
pub type SourceRun = Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send>>;

/// A built source: a name and a factory for runs (called again on every restart).
pub struct BuiltSource {
    /// Task name, `source:<name>`.
    pub name: String,
    /// Starts one run of the source.
    pub start: Box<dyn FnMut(SourceContext, CancellationToken) -> SourceRun + Send>,
}

impl std::fmt::Debug for BuiltSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Builds every enabled source of the config.
pub fn build(config: &Config) -> Vec<BuiltSource> {
    let mut out = Vec::new();
    if let Some(sim) = config.sources.simulator.as_ref().filter(|s| s.enabled) {
        let sim = sim.clone();
        out.push(BuiltSource {
            name: "source:simulator".to_owned(),
            start: Box::new(move |ctx, token| Box::pin(simulator::run(sim.clone(), ctx, token))),
        });
    }
    // Validation has already resolved the same config, so this cannot fail here; a config
    // that did not validate never reaches `build`.
    if let Ok(conns) = modbus::resolve(&config.sources.modbus, &config.sources.modbus_profiles) {
        for conn in conns {
            let conn = Arc::new(conn);
            out.push(BuiltSource {
                name: format!("source:modbus:{}", conn.name),
                start: Box::new(move |ctx, token| {
                    Box::pin(modbus::poller::run(conn.clone(), ctx, token))
                }),
            });
        }
    }
    if let Ok(conns) = mqtt::resolve(&config.sources.mqtt, &config.gateway.id) {
        // One count of topic-created sensors for every connection (and every restart of one).
        let cap = Arc::new(mqtt::limits::SensorCap::new(
            config.sources.mqtt_max_sensors,
        ));
        for mut m in conns {
            m.gateway_max_sensors = config.sources.mqtt_max_sensors;
            let m = Arc::new(m);
            let cap = cap.clone();
            out.push(BuiltSource {
                name: format!("source:mqtt:{}", m.name),
                start: Box::new(move |ctx, token| {
                    Box::pin(mqtt::client::run_with_cap(
                        m.clone(),
                        ctx,
                        token,
                        cap.clone(),
                    ))
                }),
            });
        }
    }
    out
}
