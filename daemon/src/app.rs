//! Composition root: builds the components from a validated config, wires them, supervises them,
//! and shuts them down in stages.
//!
//! Start: store (open, migrate, writer) -> HTTP API -> sources -> READY=1.
//! Stop (SIGTERM/SIGINT or a fatal task failure): STOPPING=1 -> sources -> drain the writer ->
//! everything else, all within `service.shutdown_timeout`.
//! SIGHUP: reload the config file; an invalid one keeps the running config and logs why.
//!
//! Layout: this file the start, the run loop and the staged shutdown; `reload` the SIGHUP path.

mod reload;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::agent::Agent;
use crate::alarms::outbox::Channels;
use crate::channels::http;
use crate::config::{self, Config};
use crate::context::{Core, CoreParts, status};
use crate::service::logging::LogHandle;
use crate::service::metrics::Metrics;
use crate::service::supervisor::{Fatal, Heartbeat, Restart, Supervisor};
use crate::service::systemd;
use crate::sources::{self, SourceContext};
use crate::store::{Store, StoreOptions};

/// How the gateway ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Stopped on request, everything flushed.
    Clean,
    /// Stopped on request, but the deadline passed before everything finished.
    DeadlineExceeded,
    /// A component failed for good.
    Fatal(String),
}

/// Options that do not come from the config file.
#[derive(Debug, Default)]
pub struct StartOptions {
    /// The config file, for SIGHUP reloads.
    pub config_path: Option<PathBuf>,
    /// Log filter handle, for reloads.
    pub log: Option<LogHandle>,
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    core: Core,
    agent: Agent,
    /// Publishes the config in force to every [`Core`].
    config: watch::Sender<Arc<Config>>,
    /// The outbox's delivery channels (the log, and Telegram while the bot runs).
    channels: Channels,
    store: Store,
    sources_token: CancellationToken,
    sources: Vec<JoinHandle<()>>,
    alarms_token: CancellationToken,
    alarm_tasks: Vec<JoinHandle<()>>,
    telegram_token: CancellationToken,
    telegram_task: Option<JoinHandle<()>>,
    downstream: CancellationToken,
    stopping: CancellationToken,
    fatal: mpsc::UnboundedReceiver<Fatal>,
    http_addr: Option<SocketAddr>,
    options: StartOptions,
    signals: Signals,
}

/// Signal streams, installed before READY=1 so that an early SIGTERM or SIGHUP is never fatal.
#[derive(Debug)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
        })
    }
}

impl Gateway {
    /// Opens the store, starts the HTTP API and the sources, and tells systemd it is ready.
    ///
    /// # Errors
    /// The store cannot be opened or the HTTP address cannot be bound.
    pub async fn start(config: Config, options: StartOptions) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        // Every component's families, in the order of the exposition (each component registers
        // its own set; a set asked for again later gets the same handles).
        metrics.get::<crate::store::StoreMetrics>();
        metrics.get::<crate::service::supervisor::SupervisorMetrics>();
        metrics.get::<crate::sources::SourceMetrics>();
        let alarm_metrics = metrics.get::<crate::alarms::outbox::AlarmMetrics>();
        let agent_metrics = metrics.get::<crate::agent::AgentMetrics>();
        let llm_metrics = metrics.get::<crate::agent::llm::LlmMetrics>();
        metrics.get::<crate::channels::lan::LanMetrics>();
        metrics.get::<crate::channels::telegram::TelegramMetrics>();
        metrics.get::<crate::sync::SyncMetrics>();
        metrics.get::<crate::clock::ClockMetrics>();
        let (supervisor, fatal) = Supervisor::new(config.service.clone(), metrics.clone());
        let heartbeat = Heartbeat::new("store:writer");
        let path = config.store.resolved_path();
        // With a [sync] section (even disabled), retention waits for rows to reach the centre.
        let store_options = StoreOptions {
            uplink: config.sync.is_some(),
        };
        let store = Store::open(
            &config.store,
            &path,
            store_options,
            metrics.clone(),
            heartbeat.clone(),
        )
        .with_context(|| format!("cannot open the buffer at {}", path.display()))?;
        info!(path = %path.display(), last_seq = store.shared.last_seq(), rows = store.shared.rows(), "Buffer open.");
        // The clock, before anything is stamped: a free-running start is anchored after the
        // newest stored reading.
        let floor = store
            .shared
            .latest
            .snapshot()
            .iter()
            .map(|(_, v)| v.ts.as_millis())
            .max();
        let (clock, clock_rec) =
            crate::clock::start(&config.clock, floor, &metrics, &store.shared, &store.ingest).await;

        let downstream = CancellationToken::new();
        let (core, config_tx) = Core::new(
            config.clone(),
            CoreParts {
                store: store.shared.clone(),
                reader: store.reader.clone(),
                ingest: store.ingest.clone(),
                alarms: crate::alarms::Alarms::new(alarm_metrics),
                sync: crate::sync::SyncState::new(
                    &config.gateway.id,
                    config.sync.as_ref(),
                    metrics.clone(),
                ),
                health: crate::context::Health::default(),
                supervisor: supervisor.clone(),
                metrics: metrics.clone(),
                uplink: store_options.uplink,
            },
        );
        let agent = Agent::new(agent_metrics, llm_metrics);
        agent.configure(&config.agent);
        let channels = Channels::default();
        channels.register("log", Arc::new(crate::alarms::outbox::LogChannel));

        let mut gw = Self {
            core: core.clone(),
            agent: agent.clone(),
            config: config_tx,
            channels,
            store,
            sources_token: CancellationToken::new(),
            sources: Vec::new(),
            alarms_token: CancellationToken::new(),
            alarm_tasks: Vec::new(),
            telegram_token: CancellationToken::new(),
            telegram_task: None,
            downstream: downstream.clone(),
            stopping: CancellationToken::new(),
            fatal,
            http_addr: None,
            options,
            signals: Signals::install()?,
        };

        // The writer is critical: if it ends while we are not stopping, the process stops.
        let writer_done = gw.store.writer.finished();
        supervisor.watch_critical("store:writer", gw.stopping.clone(), heartbeat, writer_done);

        if config.http.enabled {
            start_socket(&config.http.socket, &core, &agent, &supervisor, &downstream);
            let listener = tokio::net::TcpListener::bind(config.http.listen)
                .await
                .with_context(|| {
                    format!("cannot listen on {} ([http] listen)", config.http.listen)
                })?;
            gw.http_addr = listener.local_addr().ok();
            if let Some(addr) = gw.http_addr {
                let file = config::api_file(&path);
                if let Err(e) = std::fs::write(&file, format!("http://{addr}\n")) {
                    warn!(file = %file.display(), error = %e, "Cannot record the API address.");
                }
            }
            let (st, agent) = (core.clone(), agent.clone());
            let mut listener = Some(listener);
            supervisor.spawn(
                "http",
                Restart::OnFailure,
                downstream.clone(),
                move |child| {
                    let (st, agent) = (st.clone(), agent.clone());
                    let listener = listener.take();
                    async move {
                        let listener = match listener {
                            Some(l) => l,
                            None => tokio::net::TcpListener::bind(st.config().http.listen)
                                .await
                                .map_err(|e| {
                                    crate::service::supervisor::TaskError::new(
                                        "cannot listen again",
                                        e,
                                    )
                                })?,
                        };
                        http::serve(listener, "api", st, agent, child).await
                    }
                },
            );
            info!(addr = ?gw.http_addr, "HTTP API listening.");
        }
        if config.lan.enabled {
            crate::channels::lan::start(&core, &agent, &supervisor, downstream.clone(), &path)
                .await;
        }

        {
            let tracker = core.tracker.clone();
            let store_shared = core.store.clone();
            let line_core = core.clone();
            let period = config.service.status_interval;
            supervisor.spawn(
                "status",
                Restart::OnFailure,
                downstream.clone(),
                move |tok| {
                    let line_core = line_core.clone();
                    let line = move || Some(line_core.quick_line());
                    let fut = status::run_status(
                        period,
                        tracker.clone(),
                        store_shared.clone(),
                        tok,
                        line,
                    );
                    async move {
                        fut.await;
                        Ok(())
                    }
                },
            );
        }
        {
            let clock_metrics = metrics.get::<crate::clock::ClockMetrics>();
            let interval = config.clock.probe_interval;
            supervisor.spawn(
                "clock",
                Restart::OnFailure,
                downstream.clone(),
                move |tok| {
                    let fut = crate::clock::run(
                        clock.clone(),
                        clock_rec.clone(),
                        clock_metrics.clone(),
                        interval,
                        tok,
                    );
                    async move {
                        fut.await;
                        Ok(())
                    }
                },
            );
        }
        if let Some(interval) = systemd::watchdog_interval() {
            let sup = supervisor.clone();
            let stall = config.service.stall_timeout;
            supervisor.spawn(
                "watchdog",
                Restart::OnFailure,
                downstream.clone(),
                move |tok| {
                    let sup = sup.clone();
                    async move {
                        systemd::run_watchdog(interval, stall, sup, tok).await;
                        Ok(())
                    }
                },
            );
        }

        gw.start_sync(&config);
        gw.start_alarms(&config);
        gw.start_telegram();
        gw.start_sources(&config);
        core.tracker.set_ready();
        metrics.ready.set(1);
        systemd::ready();
        systemd::status(&core.quick_line());
        info!(gateway = %config.gateway.id, version = env!("CARGO_PKG_VERSION"), "Gateway ready.");
        Ok(gw)
    }

    /// What the components share (for views and tests).
    pub fn core(&self) -> Core {
        self.core.clone()
    }

    /// The on-site assistant.
    pub fn agent(&self) -> Agent {
        self.agent.clone()
    }

    /// The bound HTTP address, if the API is enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    fn start_sources(&mut self, config: &Config) {
        self.sources_token = CancellationToken::new();
        let ctx = SourceContext {
            ingest: self.store.ingest.clone(),
            metrics: self.core.metrics.get::<crate::sources::SourceMetrics>(),
            reader: self.store.reader.clone(),
            health: self.core.health.clone(),
        };
        for mut source in sources::build(config) {
            let ctx = ctx.clone();
            let handle = self.core.supervisor.spawn(
                source.name.clone(),
                Restart::OnFailure,
                self.sources_token.clone(),
                move |tok| (source.start)(ctx.clone(), tok),
            );
            self.sources.push(handle);
        }
    }

    /// Starts the uploaders to the centre (when `[sync]` is enabled). They stop with the other
    /// downstream tasks, after the writer has drained; an abandoned batch is safe either way.
    fn start_sync(&self, config: &Config) {
        let Some(cfg) = config.sync.as_ref().filter(|c| c.enabled) else {
            return;
        };
        let st = self.core.clone();
        let site: crate::sync::SiteSource = Arc::new(move || {
            let c = st.config();
            (c.gateway.name.clone(), c.site.clone())
        });
        crate::sync::start(
            &self.core.supervisor,
            &self.downstream,
            cfg,
            &config.gateway.id,
            &self.store,
            self.core.sync.clone(),
            site,
        );
        crate::sync::start_office(
            &self.core.supervisor,
            &self.downstream,
            cfg,
            &config.gateway.id,
            Arc::new(crate::channels::office::Office::new(self.core.clone())),
        );
        info!(target = %cfg.display_url(), sslmode = cfg.sslmode.as_str(), "Sync to the centre started.");
    }

    /// Starts the alarm engine and the outbox dispatcher (when `[alarms]` is enabled).
    fn start_alarms(&mut self, config: &Config) {
        self.alarms_token = CancellationToken::new();
        if !config.alarms.enabled {
            self.core.alarms.clear();
            return;
        }
        let rules = match crate::alarms::rules::compile(&config.alarms, &config.users) {
            Ok(r) => r,
            Err(errors) => {
                // Validation ran before; this only happens if the two disagree.
                for e in errors {
                    error!(key = %e.path, error = %e.message, "Alarm rule rejected.");
                }
                return;
            }
        };
        let ctx = crate::alarms::service::AlarmContext {
            ingest: self.store.ingest.clone(),
            reader: self.store.reader.clone(),
            store: self.core.store.clone(),
            alarms: self.core.alarms.clone(),
            start_seq: self.core.store.last_seq(),
        };
        let (cfg, users) = (config.alarms.clone(), config.users.clone());
        let engine_ctx = ctx.clone();
        let handle = self.core.supervisor.spawn(
            "alarms",
            Restart::OnFailure,
            self.alarms_token.clone(),
            move |tok| {
                crate::alarms::service::run(
                    cfg.clone(),
                    rules.clone(),
                    users.clone(),
                    engine_ctx.clone(),
                    tok,
                )
            },
        );
        self.alarm_tasks.push(handle);
        let dispatch = crate::alarms::outbox::DispatchConfig {
            flood_threshold: config.alarms.flood_threshold,
            retry_min: config.alarms.retry_min,
            retry_max: config.alarms.retry_max,
            langs: crate::alarms::outbox::subscribers(&config.alarms, &config.users)
                .into_iter()
                .map(|s| (s.key, s.lang))
                .collect(),
        };
        let channels = self.channels.clone();
        let handle = self.core.supervisor.spawn(
            "alarms:outbox",
            Restart::OnFailure,
            self.alarms_token.clone(),
            move |tok| {
                let fut = crate::alarms::outbox::run_dispatcher(
                    dispatch.clone(),
                    ctx.ingest.clone(),
                    ctx.reader.clone(),
                    channels.clone(),
                    ctx.alarms.metrics().clone(),
                    ctx.alarms.outbox_wake(),
                    tok,
                );
                async move {
                    fut.await.map_err(|e| {
                        crate::service::supervisor::TaskError::new("outbox delivery stopped", e)
                    })
                }
            },
        );
        self.alarm_tasks.push(handle);
    }

    /// Starts the Telegram bot (when `[telegram]` is enabled) with the config in force. It
    /// stops with the other downstream tasks, or alone when a reload changes `[telegram]`.
    fn start_telegram(&mut self) {
        self.telegram_token = self.downstream.child_token();
        self.telegram_task = crate::channels::telegram::start(
            &self.core,
            &self.agent,
            &self.channels,
            &self.core.supervisor,
            self.telegram_token.clone(),
        );
    }

    async fn stop_telegram(&mut self, deadline: Instant) -> bool {
        self.telegram_token.cancel();
        match self.telegram_task.take() {
            Some(h) => tokio::time::timeout_at(deadline, h).await.is_ok(),
            None => true,
        }
    }

    async fn stop_alarms(&mut self, deadline: Instant) -> bool {
        self.alarms_token.cancel();
        let mut all = true;
        for h in self.alarm_tasks.drain(..) {
            all &= tokio::time::timeout_at(deadline, h).await.is_ok();
        }
        all
    }

    async fn stop_sources(&mut self, deadline: Instant) -> bool {
        self.sources_token.cancel();
        let mut all = true;
        for h in self.sources.drain(..) {
            all &= tokio::time::timeout_at(deadline, h).await.is_ok();
        }
        all
    }

    /// Runs until SIGTERM/SIGINT (clean stop), a fatal failure, or `stop` is cancelled;
    /// reloads the config on SIGHUP.
    ///
    /// # Errors
    /// Signal handlers cannot be installed.
    pub async fn run(mut self, stop: CancellationToken) -> anyhow::Result<Exit> {
        let fatal = loop {
            tokio::select! {
                _ = self.signals.term.recv() => { info!("SIGTERM received; stopping."); break None; }
                _ = self.signals.int.recv() => { info!("SIGINT received; stopping."); break None; }
                () = stop.cancelled() => break None,
                _ = self.signals.hup.recv() => self.reload().await,
                f = self.fatal.recv() => break f,
            }
        };
        let exit = self.shutdown().await;
        Ok(match fatal {
            Some(f) => Exit::Fatal(format!("{}: {}", f.task, f.reason)),
            None => exit,
        })
    }

    /// Staged shutdown within `service.shutdown_timeout`.
    pub async fn shutdown(mut self) -> Exit {
        systemd::stopping();
        self.stopping.cancel();
        let cfg = self.core.config();
        let deadline = Instant::now() + cfg.service.shutdown_timeout;
        let sources_stopped = self.stop_sources(deadline).await;
        // Alarms commit their last step through the writer, so they stop before it drains;
        // readings committed after that are evaluated at the next start (by seq).
        let sources_stopped = self.stop_alarms(deadline).await && sources_stopped;
        self.store.writer.drain();
        let drained = tokio::time::timeout_at(deadline, self.store.writer.finished())
            .await
            .unwrap_or(false);
        self.downstream.cancel();
        let rest = self.core.supervisor.wait_all(deadline).await;
        if sources_stopped && drained && rest {
            info!(
                last_seq = self.core.store.last_seq(),
                "Stopped cleanly; buffer flushed."
            );
            Exit::Clean
        } else {
            warn!(
                sources_stopped,
                drained,
                remaining = ?self.core.supervisor.running(),
                "Shutdown deadline exceeded; exiting anyway."
            );
            Exit::DeadlineExceeded
        }
    }
}

/// Binds `[http] socket` and starts the supervised `api-socket` task. A socket that cannot be
/// bound is logged as an error and the gateway keeps running: reads stay on TCP, and actions
/// then need a bearer token.
fn start_socket(
    path: &Path,
    core: &Core,
    agent: &Agent,
    supervisor: &Supervisor,
    downstream: &CancellationToken,
) {
    if path.as_os_str().is_empty() {
        return;
    }
    let listener = match http::bind_socket(path) {
        Ok(l) => l,
        Err(e) => {
            error!(socket = %path.display(), error = %e, "Cannot listen on the API socket ([http] socket); local actions need a bearer token until it can.");
            return;
        }
    };
    info!(socket = %path.display(), group = %http::socket_group(path), "API socket listening.");
    let (core, agent, path) = (core.clone(), agent.clone(), path.to_owned());
    let mut listener = Some(listener);
    supervisor.spawn(
        "api-socket",
        Restart::OnFailure,
        downstream.clone(),
        move |child| {
            let (core, agent, path) = (core.clone(), agent.clone(), path.clone());
            let listener = listener.take();
            async move {
                let listener = match listener {
                    Some(l) => l,
                    None => http::bind_socket(&path).map_err(|e| {
                        crate::service::supervisor::TaskError::new("cannot listen again", e)
                    })?,
                };
                http::serve(listener, "api-socket", core, agent, child).await
            }
        },
    );
}
