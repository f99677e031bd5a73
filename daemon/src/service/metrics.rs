//! Process metrics in the Prometheus text format, served at `/metrics`.
//!
//! Owns: the registry, the process-wide series (`markoff_ready`, `markoff_build_info`), and the
//! place every component's metric set is kept once registered. Does not own: any component's
//! metrics. Each component defines its own set (`StoreMetrics`, `SourceMetrics`, `SyncMetrics`, `AlarmMetrics`, …) with
//! its label sets as `#[derive(EncodeLabelSet)]` structs, and registers it through
//! [`MetricSet::register`]; [`Metrics::get`] registers a set on first use and hands every later
//! caller the same handles, so a component opened twice (a test reopening a store) never
//! registers its families twice.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Label set with one label, for the component sets not yet given a typed label set.
pub type Labels = Vec<(String, String)>;

/// A component's metric set: its families, registered under the `markoff_` prefix.
pub trait MetricSet: Send + Sync + 'static {
    /// Creates the set and registers its families in `registry`.
    fn register(registry: &mut Registry) -> Self;
}

/// The registry of the process and the metric sets registered in it. Cheap to share behind an
/// `Arc`; the lock is only taken to register a set and to render a scrape.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// 1 once the gateway is ready (store open, sources built).
    pub ready: Gauge,
}

struct Inner {
    registry: Registry,
    sets: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("registry", &self.registry)
            .field("sets", &self.sets.len())
            .finish()
    }
}

impl Metrics {
    /// An empty registry with the process gauges.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("markoff");
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 once the store is open and the sources are built",
            ready.clone(),
        );
        registry.register(
            "build",
            "The running build (always 1)",
            Info::new(build_labels()),
        );
        Arc::new(Self {
            inner: Mutex::new(Inner {
                registry,
                sets: HashMap::new(),
            }),
            ready,
        })
    }

    /// The metric set `T`, registered on the first call; every call returns the same handles.
    pub fn get<T: MetricSet>(&self) -> Arc<T> {
        let mut inner = self.inner.lock();
        if let Some(set) = inner.sets.get(&TypeId::of::<T>())
            && let Ok(set) = Arc::clone(set).downcast::<T>()
        {
            return set;
        }
        let set = Arc::new(T::register(&mut inner.registry));
        inner.sets.insert(TypeId::of::<T>(), set.clone());
        set
    }

    /// The exposition text (OpenMetrics).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        if encode(&mut out, &self.inner.lock().registry).is_err() {
            out.clear();
        }
        out
    }
}

/// `version`, `commit` (when the build recorded one) and `target` of this build.
fn build_labels() -> Labels {
    let mut labels = vec![("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned())];
    if let Some(commit) = option_env!("MARKOFF_COMMIT").filter(|c| !c.is_empty()) {
        labels.push(("commit".to_owned(), commit.to_owned()));
    }
    labels.push(("target".to_owned(), env!("MARKOFF_TARGET").to_owned()));
    labels
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;

    use super::*;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct ReasonLabel {
        reason: String,
    }

    #[derive(Debug)]
    struct Sample {
        things: Counter,
        dropped: Family<ReasonLabel, Counter>,
    }

    impl MetricSet for Sample {
        fn register(registry: &mut Registry) -> Self {
            let s = Self {
                things: Counter::default(),
                dropped: Family::default(),
            };
            registry.register("things", "Things", s.things.clone());
            registry.register("dropped", "Dropped, by reason", s.dropped.clone());
            s
        }
    }

    #[test]
    fn a_set_is_registered_once_and_rendered_with_its_labels() {
        let m = Metrics::new();
        m.get::<Sample>().things.inc_by(5);
        m.get::<Sample>()
            .dropped
            .get_or_create(&ReasonLabel {
                reason: "synced_overflow".to_owned(),
            })
            .inc_by(3);
        let text = m.render();
        assert_eq!(text.matches("# TYPE markoff_things counter").count(), 1);
        assert!(text.contains("markoff_things_total 5"), "{text}");
        assert!(
            text.contains("markoff_dropped_total{reason=\"synced_overflow\"} 3"),
            "{text}"
        );
        assert!(text.contains("markoff_ready 0"), "{text}");
        let build = format!(
            "markoff_build_info{{version=\"{}\",target=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            env!("MARKOFF_TARGET")
        );
        assert!(
            option_env!("MARKOFF_COMMIT").is_some() || text.contains(&build),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
