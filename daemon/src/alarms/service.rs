//! The alarm task: feeds the engine every committed reading (catching up from SQLite by seq
//! after a restart or when it falls behind), runs its timers, applies operator actions, and
//! commits each step's state, events, notifications and evaluated seq in one transaction.
//!
//! Layout: this file the handle channels use (`Alarms`) and the views it serves; `task` the
//! running evaluation.

mod task;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, mpsc, oneshot};

pub use self::task::{AlarmContext, run};
use super::engine::{Command, EventKind, Refusal};
use super::outbox::AlarmMetrics;
use crate::model::{Actor, AlarmState, Severity, Timestamp};
use crate::store::StoreError;

/// One alarm as channels show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmView {
    /// Short id.
    pub id: i64,
    /// Rule name.
    pub alert: String,
    /// Sensor id.
    pub sensor: String,
    /// Sensor name.
    pub name: String,
    /// Floor / room.
    pub location: String,
    /// State.
    pub state: AlarmState,
    /// Severity.
    pub severity: Severity,
    /// Last value seen.
    pub value: Option<f64>,
    /// Unit.
    pub unit: String,
    /// Current message.
    pub message: String,
    /// When it was raised (ms).
    pub raised_ms: Option<i64>,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// Shelved until (ms).
    pub shelved_until: Option<i64>,
    /// Out of service.
    pub out_of_service: bool,
    /// Whether acknowledgement is required by its rule.
    pub ack_required: bool,
}

impl AlarmView {
    /// Whether it belongs on the list of alarms staff must see (active or unacknowledged).
    pub fn is_open(&self) -> bool {
        self.state != AlarmState::Normal
    }
}

/// The result of an operator action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// The alarm after the action.
    pub alarm: AlarmView,
    /// The event recorded.
    pub event: EventKind,
}

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    /// Refused (and audited).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Alarms are not running (disabled or stopping).
    #[error("the alarm engine is not running")]
    NotRunning,
    /// The buffer failed.
    #[error("cannot record the action")]
    Store(#[from] StoreError),
}

struct Request {
    id: i64,
    cmd: Command,
    actor: Actor,
    reply: oneshot::Sender<Result<CommandOutcome, AlarmError>>,
}

/// Handle for channels: list alarms, act on them, follow events. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Alarms {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: RwLock<Option<mpsc::Sender<Request>>>,
    views: RwLock<HashMap<i64, AlarmView>>,
    events: broadcast::Sender<(EventKind, AlarmView)>,
    wake: Arc<Notify>,
    metrics: Arc<AlarmMetrics>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("id", &self.id).finish()
    }
}

impl Alarms {
    /// A handle with no engine attached yet.
    pub fn new(metrics: Arc<AlarmMetrics>) -> Self {
        let (events, _) = broadcast::channel(256);
        Self {
            inner: Arc::new(Inner {
                tx: RwLock::new(None),
                views: RwLock::new(HashMap::new()),
                events,
                wake: Arc::new(Notify::new()),
                metrics,
            }),
        }
    }

    /// Notified whenever outbox rows are added.
    pub fn outbox_wake(&self) -> Arc<Notify> {
        self.inner.wake.clone()
    }

    /// Metrics.
    pub fn metrics(&self) -> &Arc<AlarmMetrics> {
        &self.inner.metrics
    }

    /// Every committed event, with the alarm after it.
    pub fn subscribe(&self) -> broadcast::Receiver<(EventKind, AlarmView)> {
        self.inner.events.subscribe()
    }

    /// Every alarm, or only open ones (active or unacknowledged); most severe and newest first.
    pub fn list(&self, open_only: bool) -> Vec<AlarmView> {
        let views = self.inner.views.read();
        let mut out: Vec<AlarmView> = views
            .values()
            .filter(|v| !open_only || v.is_open())
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            b.state
                .is_active()
                .cmp(&a.state.is_active())
                .then(b.severity.cmp(&a.severity))
                .then(b.raised_ms.cmp(&a.raised_ms))
                .then(a.id.cmp(&b.id))
        });
        out
    }

    /// One alarm.
    pub fn get(&self, id: i64) -> Option<AlarmView> {
        let views = self.inner.views.read();
        views.get(&id).cloned()
    }

    /// Acknowledges alarm `id` as `actor`.
    ///
    /// # Errors
    /// See [`AlarmError`]; refusals are recorded in the audit log.
    pub async fn ack(&self, id: i64, actor: Actor) -> Result<CommandOutcome, AlarmError> {
        self.send(id, Command::Ack, actor).await
    }

    /// Shelves alarm `id` for `duration`.
    ///
    /// # Errors
    /// See [`AlarmError`].
    pub async fn shelve(
        &self,
        id: i64,
        duration: Duration,
        actor: Actor,
    ) -> Result<CommandOutcome, AlarmError> {
        let until = Timestamp::now().as_millis()
            + i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4);
        self.send(id, Command::Shelve { until }, actor).await
    }

    /// Lifts the shelving of alarm `id`.
    ///
    /// # Errors
    /// See [`AlarmError`].
    pub async fn unshelve(&self, id: i64, actor: Actor) -> Result<CommandOutcome, AlarmError> {
        self.send(id, Command::Unshelve, actor).await
    }

    /// Takes alarm `id` out of service (`true`) or back in (`false`).
    ///
    /// # Errors
    /// See [`AlarmError`].
    pub async fn set_out_of_service(
        &self,
        id: i64,
        out: bool,
        actor: Actor,
    ) -> Result<CommandOutcome, AlarmError> {
        self.send(id, Command::OutOfService(out), actor).await
    }

    async fn send(
        &self,
        id: i64,
        cmd: Command,
        actor: Actor,
    ) -> Result<CommandOutcome, AlarmError> {
        let tx = {
            let guard = self.inner.tx.read();
            guard.clone().ok_or(AlarmError::NotRunning)?
        };
        let (reply, rx) = oneshot::channel();
        tx.send(Request {
            id,
            cmd,
            actor,
            reply,
        })
        .await
        .map_err(|_| AlarmError::NotRunning)?;
        rx.await.map_err(|_| AlarmError::NotRunning)?
    }

    /// Forgets every alarm (alarms disabled).
    pub fn clear(&self) {
        self.set_views(Vec::new(), true);
    }

    fn set_views(&self, views: impl IntoIterator<Item = AlarmView>, replace: bool) {
        let mut map = self.inner.views.write();
        if replace {
            map.clear();
        }
        for v in views {
            map.insert(v.id, v);
        }
        let active = map.values().filter(|v| v.state.is_active()).count();
        let unacked = map.values().filter(|v| v.state.is_unacked()).count();
        self.inner
            .metrics
            .active
            .set(i64::try_from(active).unwrap_or(i64::MAX));
        self.inner
            .metrics
            .unacked
            .set(i64::try_from(unacked).unwrap_or(i64::MAX));
    }
}
