//! Supervision of long-running tasks: named, tracked, restarted with jittered backoff, and
//! escalated to a non-zero process exit when a task keeps failing.
//!
//! Owns: task lifecycles, restart policy, liveness (heartbeats) for the systemd watchdog.
//! Does not own: what the tasks do.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, error, info, info_span, warn};

use super::backoff::Backoff;
use super::metrics::{MetricSet, Metrics};
use crate::config::ServiceConfig;

/// Why a task's run ended with an error.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct TaskError {
    context: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TaskError {
    /// A failure with a cause.
    pub fn new(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    /// A failure described by a message alone.
    pub fn msg(context: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            source: None,
        }
    }
}

/// What the supervisor does when a task ends with an error or a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Never restart; a failure of the task is fatal for the process.
    Never,
    /// Restart with backoff; too many failures within the window are fatal.
    OnFailure,
}

/// A fatal condition that stops the process with a non-zero exit.
#[derive(Clone, Debug)]
pub struct Fatal {
    /// The task.
    pub task: String,
    /// What happened.
    pub reason: String,
}

/// Lifecycle state of a supervised task, as shown by `markoff status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Running.
    Running,
    /// Failed, waiting to be restarted.
    Backoff,
    /// Stopped on request.
    Stopped,
    /// Ended on its own without error.
    Finished,
    /// Failed for good.
    Failed,
}

/// Status of one task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Name, e.g. `source:simulator`.
    pub name: String,
    /// State.
    pub state: TaskState,
    /// Restarts since the process started.
    pub restarts: u64,
    /// Last error, if any.
    pub last_error: Option<String>,
}

/// Progress signal of a critical component, read by the watchdog.
///
/// The component marks when it starts a unit of work ([`Heartbeat::busy`]) and when it finishes
/// ([`Heartbeat::idle`]). It counts as stalled only while one unit of work has lasted longer than
/// the stall timeout: an idle component is never mistaken for a hung one, and a writer stuck
/// retrying a commit (a locked or full disk) is.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    inner: Arc<HeartbeatInner>,
}

#[derive(Debug)]
struct HeartbeatInner {
    name: String,
    base: Instant,
    /// Milliseconds since `base` + 1 when busy started; 0 while idle.
    busy_since: AtomicU64,
}

impl Heartbeat {
    /// An idle heartbeat.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(HeartbeatInner {
                name: name.into(),
                base: Instant::now(),
                busy_since: AtomicU64::new(0),
            }),
        }
    }

    /// A unit of work starts (no-op if one is already running).
    pub fn busy(&self) {
        let ms = u64::try_from(self.inner.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let _was_idle =
            self.inner
                .busy_since
                .compare_exchange(0, ms, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// The unit of work finished.
    pub fn idle(&self) {
        self.inner.busy_since.store(0, Ordering::Release);
    }

    /// How long the current unit of work has been running (zero while idle).
    pub fn age(&self) -> Duration {
        match self.inner.busy_since.load(Ordering::Acquire) {
            0 => Duration::ZERO,
            since => self
                .inner
                .base
                .elapsed()
                .saturating_sub(Duration::from_millis(since - 1)),
        }
    }

    /// Name of the component.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

/// A supervised task's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabel {
    /// The task's name (`http`, `source:plant`, …).
    pub task: String,
}

/// Metrics of the supervisor.
#[derive(Debug, Default)]
pub struct SupervisorMetrics {
    /// Restarts of supervised tasks, by `task`.
    pub task_restarts: Family<TaskLabel, Counter>,
}

impl MetricSet for SupervisorMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "task_restarts",
            "Restarts of supervised tasks, by task",
            m.task_restarts.clone(),
        );
        m
    }
}

impl SupervisorMetrics {
    /// Counts a restart of `task`.
    pub fn count_restart(&self, task: &str) {
        self.task_restarts
            .get_or_create(&TaskLabel {
                task: task.to_owned(),
            })
            .inc();
    }
}

/// Supervises tasks. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Supervisor {
    cfg: ServiceConfig,
    metrics: Arc<SupervisorMetrics>,
    tracker: TaskTracker,
    fatal: mpsc::UnboundedSender<Fatal>,
    tasks: Arc<Mutex<BTreeMap<String, TaskInfo>>>,
    heartbeats: Mutex<Vec<Heartbeat>>,
}

impl Supervisor {
    /// A supervisor and the receiver of fatal conditions (the app stops on the first one).
    pub fn new(
        cfg: ServiceConfig,
        metrics: Arc<Metrics>,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Fatal>) {
        let (fatal, rx) = mpsc::unbounded_channel();
        let s = Self {
            cfg,
            metrics: metrics.get::<SupervisorMetrics>(),
            tracker: TaskTracker::new(),
            fatal,
            tasks: Arc::default(),
            heartbeats: Mutex::default(),
        };
        (Arc::new(s), rx)
    }

    /// Runs `factory(token)` as the task `name`, restarting it according to `restart` until
    /// `token` is cancelled. Returns the handle of the supervising loop, which ends when the
    /// task is stopped or given up.
    pub fn spawn<F, Fut>(
        &self,
        name: impl Into<String>,
        restart: Restart,
        token: CancellationToken,
        mut factory: F,
    ) -> JoinHandle<()>
    where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), TaskError>> + Send + 'static,
    {
        let name = name.into();
        let tasks = self.tasks.clone();
        let metrics = self.metrics.clone();
        let fatal = self.fatal.clone();
        let cfg = self.cfg.clone();
        set_state(&tasks, &name, TaskState::Running, None, false);
        let span = info_span!("component", component = %name);
        let loop_name = name.clone();
        self.tracker.spawn(
            async move {
                let name = loop_name;
                let mut backoff = Backoff::new(cfg.restart_backoff_min, cfg.restart_backoff_max);
                let mut failures: VecDeque<Instant> = VecDeque::new();
                loop {
                    let run = tokio::spawn(factory(token.child_token()).in_current_span());
                    let outcome = match run.await {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(error_chain(&e)),
                        Err(join) if join.is_panic() => Some(format!("panicked: {}", panic_message(join))),
                        Err(_) => Some("was aborted".to_owned()),
                    };
                    if token.is_cancelled() {
                        set_state(&tasks, &name, TaskState::Stopped, outcome, false);
                        break;
                    }
                    let Some(reason) = outcome else {
                        info!(task = %name, "Task finished.");
                        set_state(&tasks, &name, TaskState::Finished, None, false);
                        if restart == Restart::Never {
                            let _closing = fatal.send(Fatal { task: name.clone(), reason: "critical task ended".into() });
                        }
                        break;
                    };
                    let now = Instant::now();
                    failures.push_back(now);
                    while failures.front().is_some_and(|t| now.duration_since(*t) > cfg.restart_window) {
                        failures.pop_front();
                    }
                    let too_many = u32::try_from(failures.len()).unwrap_or(u32::MAX) > cfg.max_restarts;
                    if restart == Restart::Never || too_many {
                        error!(task = %name, error = %reason, failures = failures.len(), "Task failed for good; stopping the gateway.");
                        set_state(&tasks, &name, TaskState::Failed, Some(reason.clone()), false);
                        let _closing = fatal.send(Fatal { task: name.clone(), reason });
                        break;
                    }
                    let delay = backoff.next_delay();
                    warn!(task = %name, error = %reason, ?delay, "Task failed; restarting after a delay.");
                    metrics.count_restart(&name);
                    set_state(&tasks, &name, TaskState::Backoff, Some(reason), true);
                    tokio::select! {
                        () = token.cancelled() => {
                            set_state(&tasks, &name, TaskState::Stopped, None, false);
                            break;
                        }
                        () = tokio::time::sleep(delay) => {}
                    }
                    set_state(&tasks, &name, TaskState::Running, None, false);
                }
            }
            .instrument(span),
        )
    }

    /// Watches a critical component that is not a restartable task (the buffer writer): when
    /// `done` completes while `token` is not cancelled, the process stops with an error.
    pub fn watch_critical<Fut>(
        &self,
        name: impl Into<String>,
        token: CancellationToken,
        heartbeat: Heartbeat,
        done: Fut,
    ) where
        Fut: Future<Output = bool> + Send + 'static,
    {
        let name = name.into();
        self.heartbeats.lock().push(heartbeat);
        set_state(&self.tasks, &name, TaskState::Running, None, false);
        let tasks = self.tasks.clone();
        let fatal = self.fatal.clone();
        self.tracker.spawn(async move {
            let clean = done.await;
            if token.is_cancelled() && clean {
                set_state(&tasks, &name, TaskState::Stopped, None, false);
            } else {
                let reason = if clean {
                    "stopped unexpectedly"
                } else {
                    "died (panic)"
                };
                error!(task = %name, reason, "Critical component ended.");
                set_state(
                    &tasks,
                    &name,
                    TaskState::Failed,
                    Some(reason.to_owned()),
                    false,
                );
                let _closing = fatal.send(Fatal {
                    task: name,
                    reason: reason.to_owned(),
                });
            }
        });
    }

    /// Whether every critical component made progress within `stall_timeout` (the watchdog
    /// pings only while this holds). Returns the first stalled component otherwise.
    pub fn liveness(&self, stall_timeout: Duration) -> Result<(), (String, Duration)> {
        let hbs = self.heartbeats.lock();
        for hb in hbs.iter() {
            let age = hb.age();
            if age > stall_timeout {
                return Err((hb.name().to_owned(), age));
            }
        }
        let tasks = self.tasks.lock();
        if let Some(t) = tasks.values().find(|t| t.state == TaskState::Failed) {
            return Err((t.name.clone(), Duration::ZERO));
        }
        Ok(())
    }

    /// Status of every task, sorted by name.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.tasks.lock().values().cloned().collect()
    }

    /// Names of tasks still running (for the shutdown log).
    pub fn running(&self) -> Vec<String> {
        self.tasks()
            .into_iter()
            .filter(|t| matches!(t.state, TaskState::Running | TaskState::Backoff))
            .map(|t| t.name)
            .collect()
    }

    /// Stops accepting tasks and waits until all have ended, up to `deadline`.
    /// Returns whether they all ended in time.
    pub async fn wait_all(&self, deadline: Instant) -> bool {
        self.tracker.close();
        tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_ok()
    }
}

fn set_state(
    tasks: &Mutex<BTreeMap<String, TaskInfo>>,
    name: &str,
    state: TaskState,
    error: Option<String>,
    restarted: bool,
) {
    let mut map = tasks.lock();
    let entry = map.entry(name.to_owned()).or_insert_with(|| TaskInfo {
        name: name.to_owned(),
        state,
        restarts: 0,
        last_error: None,
    });
    entry.state = state;
    if restarted {
        entry.restarts += 1;
    }
    if error.is_some() {
        entry.last_error = error;
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn panic_message(join: tokio::task::JoinError) -> String {
    let payload = join.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    fn cfg(max_restarts: u32) -> ServiceConfig {
        ServiceConfig {
            restart_backoff_min: Duration::from_millis(10),
            restart_backoff_max: Duration::from_millis(100),
            max_restarts,
            ..ServiceConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn restarts_a_failing_task_with_backoff() {
        let (sup, _fatal) = Supervisor::new(cfg(10), Metrics::new());
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let token = CancellationToken::new();
        sup.spawn("flaky", Restart::OnFailure, token.clone(), move |tok| {
            let n = r.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    return Err(TaskError::msg("boom"));
                }
                tok.cancelled().await;
                Ok(())
            }
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        let info = sup.tasks().into_iter().find(|t| t.name == "flaky").unwrap();
        assert_eq!(info.restarts, 3);
        assert_eq!(info.state, TaskState::Running);
        token.cancel();
        assert!(sup.wait_all(Instant::now() + Duration::from_secs(1)).await);
        assert_eq!(sup.tasks()[0].state, TaskState::Stopped);
    }

    #[tokio::test(start_paused = true)]
    async fn escalates_after_too_many_failures_and_panics_count() {
        let (sup, mut fatal) = Supervisor::new(cfg(2), Metrics::new());
        sup.spawn(
            "broken",
            Restart::OnFailure,
            CancellationToken::new(),
            |_tok| async {
                panic!("always");
            },
        );
        let f = tokio::time::timeout(Duration::from_secs(10), fatal.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(f.task, "broken");
        assert!(f.reason.contains("always"), "{}", f.reason);
        assert!(sup.liveness(Duration::from_secs(1)).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_long_unit_of_work_fails_liveness() {
        let (sup, _fatal) = Supervisor::new(cfg(2), Metrics::new());
        let hb = Heartbeat::new("writer");
        sup.watch_critical(
            "writer",
            CancellationToken::new(),
            hb.clone(),
            std::future::pending::<bool>(),
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(
            sup.liveness(Duration::from_secs(5)).is_ok(),
            "idle is not stalled"
        );
        hb.busy();
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(
            sup.liveness(Duration::from_secs(5)).is_ok(),
            "a short commit is fine"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        let (name, age) = sup.liveness(Duration::from_secs(5)).unwrap_err();
        assert_eq!(name, "writer");
        assert!(age >= Duration::from_secs(6));
        hb.idle();
        assert!(sup.liveness(Duration::from_secs(5)).is_ok());
    }
}
