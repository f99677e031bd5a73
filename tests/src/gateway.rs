//! `TempGateway`: the real `markoff run` in a child process, with its own temp dir, config file,
//! buffer and log, on a free loopback port.
//!
//! Owns: writing the config, spawning/signalling/restarting the child, finding its API (the
//! daemon records the bound URL in `markoff.api` beside its buffer), and small HTTP helpers.
//! Does not own: assertions about what the daemon does (the tests make those).
//!
//! When a test panics, dropping its `TempGateway` prints the daemon's log and config, so a
//! failure explains itself.

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::binary::{markoff_bin, markoff_bin_command};
use crate::eventually::{POLL_INTERVAL, patience};

/// Environment variables of the test process that must not leak into the daemon: they would
/// change where it logs, what it notifies, which config or API it uses.
const SCRUBBED_ENV: &[&str] = &[
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "JOURNAL_STREAM",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "RUST_LOG",
    "MARKOFF_CONFIG",
    "MARKOFF_API",
    "STATE_DIRECTORY",
];

/// A `markoff` command (through `$MARKOFF_BIN_RUNNER` when set, see [`crate::binary`]) with a
/// clean environment: none of [`SCRUBBED_ENV`], no colours in logs.
pub fn markoff_command() -> Command {
    let mut cmd = markoff_bin_command();
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1").env("RUST_BACKTRACE", "1");
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `markoff <args>` to completion (for the CLI subcommands) and returns its output.
///
/// # Panics
/// The binary cannot be started or runs longer than the patience.
pub async fn run_markoff(args: &[&str]) -> std::process::Output {
    let mut cmd = tokio::process::Command::from(markoff_command());
    cmd.args(args).kill_on_drop(true);
    tokio::time::timeout(patience(), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("markoff {args:?} did not finish within {:?}", patience()))
        .unwrap_or_else(|e| panic!("cannot run markoff {args:?}: {e}"))
}

/// The simulator of a test gateway.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatorKnobs {
    /// Floors.
    pub floors: u32,
    /// Rooms per floor (three sensors each).
    pub rooms_per_floor: u32,
    /// Time between two readings of every sensor.
    pub interval: Duration,
    /// Noise seed.
    pub seed: u64,
}

impl SimulatorKnobs {
    /// Sensors this simulator has: three per room plus six plant sensors.
    pub fn sensors(&self) -> u32 {
        self.floors * self.rooms_per_floor * 3 + 6
    }
}

/// The config of a test gateway. Every knob left unset keeps the daemon's default; the HTTP API
/// always listens on `127.0.0.1:0` and the buffer is `<dir>/markoff.db` unless
/// [`data_dir`](Self::data_dir) says otherwise.
#[derive(Clone, Debug)]
pub struct GatewayBuilder {
    id: String,
    log_filter: String,
    log_json: bool,
    flush_interval: Option<Duration>,
    max_size: Option<String>,
    cache_size: Option<String>,
    maintenance_interval: Option<Duration>,
    busy_timeout: Option<Duration>,
    shutdown_timeout: Option<Duration>,
    stall_timeout: Option<Duration>,
    status_interval: Option<Duration>,
    simulator: Option<SimulatorKnobs>,
    env: Vec<(String, String)>,
    extra: String,
    socket: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    tokens: Vec<String>,
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        Self {
            id: "e2e-gateway".to_owned(),
            log_filter: "info".to_owned(),
            log_json: false,
            flush_interval: None,
            max_size: None,
            cache_size: None,
            maintenance_interval: None,
            busy_timeout: None,
            shutdown_timeout: None,
            stall_timeout: None,
            status_interval: None,
            simulator: Some(SimulatorKnobs {
                floors: 2,
                rooms_per_floor: 2,
                interval: Duration::from_millis(100),
                seed: 1,
            }),
            env: Vec::new(),
            extra: String::new(),
            socket: None,
            data_dir: None,
            tokens: Vec::new(),
        }
    }
}

impl GatewayBuilder {
    /// The buffer (and the API URL file beside it) in `dir` instead of the gateway's temp dir:
    /// for a buffer on a disk of its own, such as a small tmpfs.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// The API's Unix socket at `path` instead of `<dir>/api.sock` (a directory other accounts
    /// can reach, for tests that call as them).
    pub fn socket(mut self, path: &Path) -> Self {
        self.socket = Some(path.to_owned());
        self
    }

    /// A bearer token of `[[http.token]]` standing for `user` (given to the daemon in an
    /// environment variable).
    pub fn api_token(mut self, user: &str, token: &str) -> Self {
        let var = format!("MARKOFF_TEST_API_TOKEN_{}", self.tokens.len());
        self.tokens.push(format!(
            "\n[[http.token]]\nuser = {}\ntoken_env = {}\n",
            toml_str(user),
            toml_str(&var)
        ));
        self.env.push((var, token.to_owned()));
        self
    }

    /// More config text appended as is (e.g. a `[sources.mqtt.<name>]` table).
    pub fn extra_toml(mut self, text: &str) -> Self {
        self.extra.push('\n');
        self.extra.push_str(text);
        self
    }

    /// `[gateway] id`.
    pub fn id(mut self, id: &str) -> Self {
        id.clone_into(&mut self.id);
        self
    }

    /// `[log] filter`.
    pub fn log_filter(mut self, filter: &str) -> Self {
        filter.clone_into(&mut self.log_filter);
        self
    }

    /// `[log] format = "json"`.
    pub fn log_json(mut self) -> Self {
        self.log_json = true;
        self
    }

    /// `[store] flush_interval`.
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = Some(d);
        self
    }

    /// `[store] max_size`, as the config writes it (`"1MiB"`).
    pub fn max_size(mut self, size: &str) -> Self {
        self.max_size = Some(size.to_owned());
        self
    }

    /// `[store] cache_size`, as the config writes it (`"4MiB"`).
    pub fn cache_size(mut self, size: &str) -> Self {
        self.cache_size = Some(size.to_owned());
        self
    }

    /// `[store] maintenance_interval`.
    pub fn maintenance_interval(mut self, d: Duration) -> Self {
        self.maintenance_interval = Some(d);
        self
    }

    /// `[store] busy_timeout`.
    pub fn busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = Some(d);
        self
    }

    /// `[service] shutdown_timeout`.
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = Some(d);
        self
    }

    /// `[service] stall_timeout`.
    pub fn stall_timeout(mut self, d: Duration) -> Self {
        self.stall_timeout = Some(d);
        self
    }

    /// `[service] status_interval`.
    pub fn status_interval(mut self, d: Duration) -> Self {
        self.status_interval = Some(d);
        self
    }

    /// `[sources.simulator]` with these floors, rooms per floor and interval.
    pub fn simulator(mut self, floors: u32, rooms_per_floor: u32, interval: Duration) -> Self {
        let seed = self.simulator.as_ref().map_or(1, |s| s.seed);
        self.simulator = Some(SimulatorKnobs {
            floors,
            rooms_per_floor,
            interval,
            seed,
        });
        self
    }

    /// No simulator at all.
    pub fn no_simulator(mut self) -> Self {
        self.simulator = None;
        self
    }

    /// The simulator, if any.
    pub fn simulator_knobs(&self) -> Option<&SimulatorKnobs> {
        self.simulator.as_ref()
    }

    /// An extra environment variable for the daemon.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Extra environment variables for the daemon (e.g. [`FakeSystemd::env`]).
    ///
    /// [`FakeSystemd::env`]: crate::FakeSystemd::env
    pub fn envs(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(vars);
        self
    }

    /// The config file text for a buffer at `db_path`.
    pub fn to_toml(&self, db_path: &Path) -> String {
        let mut t = String::from("# Written by markoff-tests (tests/src/gateway.rs).\n\n");
        writeln!(t, "[gateway]\nid = {}\n", toml_str(&self.id)).ok();
        writeln!(t, "[log]\nfilter = {}", toml_str(&self.log_filter)).ok();
        if self.log_json {
            t.push_str("format = \"json\"\n");
        }
        t.push('\n');
        writeln!(
            t,
            "[store]\npath = {}",
            toml_str(&db_path.display().to_string())
        )
        .ok();
        duration_line(&mut t, "flush_interval", self.flush_interval);
        if let Some(size) = &self.max_size {
            writeln!(t, "max_size = {}", toml_str(size)).ok();
        }
        if let Some(size) = &self.cache_size {
            writeln!(t, "cache_size = {}", toml_str(size)).ok();
        }
        duration_line(&mut t, "maintenance_interval", self.maintenance_interval);
        duration_line(&mut t, "busy_timeout", self.busy_timeout);
        t.push_str("\n[service]\n");
        duration_line(&mut t, "shutdown_timeout", self.shutdown_timeout);
        duration_line(&mut t, "stall_timeout", self.stall_timeout);
        duration_line(&mut t, "status_interval", self.status_interval);
        t.push_str("\n[http]\nlisten = \"127.0.0.1:0\"\n");
        let socket = self
            .socket
            .clone()
            .unwrap_or_else(|| db_path.with_file_name("api.sock"));
        writeln!(t, "socket = {}", toml_str(&socket.display().to_string())).ok();
        if let Some(sim) = &self.simulator {
            write!(
                t,
                "\n[sources.simulator]\nfloors = {}\nrooms_per_floor = {}\nseed = {}\n",
                sim.floors, sim.rooms_per_floor, sim.seed
            )
            .ok();
            duration_line(&mut t, "interval", Some(sim.interval));
        }
        t.push_str(&self.extra);
        for token in &self.tokens {
            t.push_str(token);
        }
        t
    }

    /// Creates the temp dir, writes the config, starts `markoff run` and waits until its API
    /// answers `/ready` with 200.
    ///
    /// # Panics
    /// The daemon does not become ready within the patience (the panic shows its log).
    pub async fn start(self) -> TempGateway {
        let mut gw = TempGateway::create(self);
        gw.spawn();
        gw.wait_ready().await;
        gw
    }
}

fn duration_line(t: &mut String, key: &str, d: Option<Duration>) {
    if let Some(d) = d {
        writeln!(t, "{key} = \"{}ms\"", d.as_millis()).ok();
    }
}

/// A TOML basic string.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A running (or stopped) `markoff run` child in its own temp dir.
#[derive(Debug)]
pub struct TempGateway {
    dir: tempfile::TempDir,
    builder: GatewayBuilder,
    child: Option<Child>,
    exited: Option<ExitStatus>,
    api: Option<String>,
    http: reqwest::Client,
    starts: u32,
}

impl TempGateway {
    /// A builder with the defaults: a small simulator (2 floors x 2 rooms every 100 ms).
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }

    fn create(builder: GatewayBuilder) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("markoff-e2e-")
            .tempdir()
            .expect("a temp dir for the gateway");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            // Below the daemon's idle timeout (15 s): a pooled connection is never one the
            // daemon is closing at the moment it is reused.
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        let gw = Self {
            dir,
            builder,
            child: None,
            exited: None,
            api: None,
            http,
            starts: 0,
        };
        gw.write_config(&gw.builder.to_toml(&gw.db_path()));
        gw
    }

    /// The temp dir (config, buffer, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the buffer is: [`GatewayBuilder::data_dir`], else the temp dir.
    fn data_dir(&self) -> &Path {
        self.builder.data_dir.as_deref().unwrap_or(self.dir())
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("markoff.toml")
    }

    /// The buffer.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("markoff.db")
    }

    /// The API's Unix socket.
    pub fn socket_path(&self) -> PathBuf {
        self.builder
            .socket
            .clone()
            .unwrap_or_else(|| self.dir().join("api.sock"))
    }

    /// `POST path` with a JSON body on the TCP API, with a bearer token if given: status code
    /// and body.
    ///
    /// # Errors
    /// The daemon cannot be reached (or has no recorded URL).
    pub async fn post_json(
        &self,
        token: Option<&str>,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<(u16, String)> {
        let Some(base) = &self.api else {
            bail!("the daemon has not recorded its API URL yet")
        };
        let mut req = self.http.post(format!("{base}{path}")).json(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("POST {base}{path}"))?;
        let code = resp.status().as_u16();
        let body = resp.text().await.context("read the response body")?;
        Ok((code, body))
    }

    /// `POST path` with a JSON body through the API's Unix socket, as this test process's
    /// account: status code and body.
    ///
    /// # Errors
    /// The socket cannot be used.
    pub async fn post_socket(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<(u16, String)> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .unix_socket(self.socket_path())
            .timeout(Duration::from_secs(60))
            .build()
            .context("a Unix socket HTTP client")?;
        let resp = client
            .post(format!("http://localhost{path}"))
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path} on {}", self.socket_path().display()))?;
        let code = resp.status().as_u16();
        let body = resp.text().await.context("read the response body")?;
        Ok((code, body))
    }

    /// Where the daemon records its API URL.
    pub fn api_file(&self) -> PathBuf {
        self.data_dir().join("markoff.api")
    }

    /// The daemon's stderr (and stdout), appended across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("daemon.log")
    }

    /// The config this gateway was built from.
    pub fn builder_config(&self) -> &GatewayBuilder {
        &self.builder
    }

    /// The daemon's log so far, without terminal colour codes.
    pub fn log(&self) -> String {
        strip_ansi(&std::fs::read_to_string(self.log_path()).unwrap_or_default())
    }

    /// Replaces the config file with `text` (e.g. before a SIGHUP).
    ///
    /// # Panics
    /// The file cannot be written.
    pub fn write_config(&self, text: &str) {
        // Write then rename, so the daemon never reads a half-written file.
        let tmp = self.dir().join("markoff.toml.tmp");
        std::fs::write(&tmp, text).expect("write the config file");
        std::fs::rename(&tmp, self.config_path()).expect("move the config file into place");
    }

    /// Replaces the config file with the one `builder` describes.
    pub fn write_config_from(&mut self, builder: GatewayBuilder) {
        self.write_config(&builder.to_toml(&self.db_path()));
        self.builder = builder;
    }

    /// How many times the daemon was started in this dir.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    fn spawn(&mut self) {
        assert!(
            self.child.is_none(),
            "the daemon is still running; stop it before starting it again"
        );
        // A URL left by an earlier run in this dir would point at a dead port.
        match std::fs::remove_file(self.api_file()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot remove {}: {e}", self.api_file().display()),
        }
        self.api = None;
        self.exited = None;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the daemon log");
        let log_out = log.try_clone().expect("clone the daemon log handle");
        let mut cmd = markoff_command();
        cmd.arg("run")
            .arg("--config")
            .arg(self.config_path())
            .stdout(log_out)
            .stderr(log);
        for (k, v) in &self.builder.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", markoff_bin().display()));
        self.child = Some(child);
        self.starts += 1;
    }

    async fn wait_ready(&mut self) {
        let patience = patience();
        let started = tokio::time::Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                panic!(
                    "markoff exited with {status} before it was ready; log:\n{}",
                    self.log()
                );
            }
            if self.api.is_none() {
                self.api = std::fs::read_to_string(self.api_file())
                    .ok()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| s.starts_with("http://"));
            }
            if self.api.is_some() && self.get("/ready").await.is_ok_and(|(code, _)| code == 200) {
                return;
            }
            assert!(
                started.elapsed() < patience,
                "markoff was not ready within {patience:?} (api file: {:?}); log:\n{}",
                self.api,
                self.log()
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Starts the daemon again in the same dir, on the same buffer, after it exited
    /// ([`kill9`](Self::kill9) or [`wait_exit`](Self::wait_exit)), and waits until it is ready.
    ///
    /// # Panics
    /// The daemon is still running, or does not become ready.
    pub async fn restart(&mut self) {
        if let Some(status) = self.try_wait() {
            self.exited = Some(status);
        }
        self.spawn();
        self.wait_ready().await;
    }

    /// The base URL of the API of the current run (`http://127.0.0.1:PORT`).
    ///
    /// # Panics
    /// The daemon has not been ready yet in this run.
    pub fn api_url(&self) -> &str {
        self.api
            .as_deref()
            .expect("the daemon has recorded its API URL")
    }

    /// The process id of the running daemon.
    ///
    /// # Panics
    /// The daemon is not running.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon is running").id()
    }

    /// Whether the daemon process is still alive (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        self.try_wait().is_none() && self.child.is_some()
    }

    /// Exit status of the last run, once it has ended.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.try_wait();
        self.exited
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.exited = Some(status);
                self.child = None;
                Some(status)
            }
            Ok(None) => None,
            Err(e) => panic!("cannot poll the daemon process: {e}"),
        }
    }

    fn signal(&self, sig: Signal) {
        let pid = i32::try_from(self.pid()).expect("a pid fits in i32");
        signal::kill(Pid::from_raw(pid), sig)
            .unwrap_or_else(|e| panic!("cannot send {sig} to markoff (pid {pid}): {e}"));
    }

    /// SIGKILL: the daemon dies at once, wherever it is. Waits for the process to be gone.
    pub fn kill9(&mut self) -> ExitStatus {
        self.signal(Signal::SIGKILL);
        let child = self.child.take().expect("the daemon is running");
        let status = wait_blocking(child);
        self.exited = Some(status);
        status
    }

    /// SIGTERM: asks for a clean stop. Does not wait; see [`wait_exit`](Self::wait_exit).
    pub fn sigterm(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// SIGHUP: asks for a config reload.
    pub fn sighup(&self) {
        self.signal(Signal::SIGHUP);
    }

    /// Waits until the daemon exits, at most `timeout` (not scaled: shutdown deadlines are part of
    /// what is tested).
    ///
    /// # Panics
    /// It is still running after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            if let Some(status) = self.exited.filter(|_| self.child.is_none()) {
                return status;
            }
            assert!(
                started.elapsed() < timeout,
                "markoff did not exit within {timeout:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `GET path` on the API: status code and body.
    ///
    /// # Errors
    /// The daemon cannot be reached (or has no recorded URL).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let Some(base) = &self.api else {
            bail!("the daemon has not recorded its API URL yet")
        };
        let resp = self
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .with_context(|| format!("GET {base}{path}"))?;
        let code = resp.status().as_u16();
        let body = resp.text().await.context("read the response body")?;
        Ok((code, body))
    }

    /// `GET path` as JSON, failing on any error.
    ///
    /// # Errors
    /// Unreachable, not 200, or not JSON.
    pub async fn try_get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let (code, body) = self.get(path).await?;
        if code != 200 {
            bail!("GET {path} answered {code}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("GET {path} is not JSON: {body}"))
    }

    /// `GET path` as JSON.
    ///
    /// # Panics
    /// Unreachable, not 200, or not JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        match self.try_get_json(path).await {
            Ok(v) => v,
            Err(e) => panic!("{e:#}; log:\n{}", self.log()),
        }
    }

    /// `/metrics` text.
    ///
    /// # Panics
    /// Unreachable or not 200.
    pub async fn metrics_text(&self) -> String {
        match self.get("/metrics").await {
            Ok((200, body)) => body,
            Ok((code, body)) => panic!("GET /metrics answered {code}: {body}"),
            Err(e) => panic!("{e:#}; log:\n{}", self.log()),
        }
    }

    /// The value of one sample in `/metrics`, named with its labels exactly as exposed, e.g.
    /// `markoff_buffer_dropped_rows_total{reason="synced_overflow"}`. `None` when absent.
    pub async fn metric_value(&self, name_with_labels: &str) -> Option<f64> {
        metric_in(&self.metrics_text().await, name_with_labels)
    }

    /// `/api/v1/status` as JSON.
    pub async fn status(&self) -> serde_json::Value {
        self.get_json("/api/v1/status").await
    }

    /// `last_seq` of `/api/v1/status`, `None` when the daemon cannot answer.
    pub async fn try_last_seq(&self) -> Option<i64> {
        self.try_get_json("/api/v1/status")
            .await
            .ok()?
            .get("last_seq")?
            .as_i64()
    }

    /// `last_seq` of `/api/v1/status`.
    ///
    /// # Panics
    /// The daemon cannot answer.
    pub async fn last_seq(&self) -> i64 {
        self.status()
            .await
            .get("last_seq")
            .and_then(serde_json::Value::as_i64)
            .expect("last_seq in /api/v1/status")
    }
}

/// Reaps a killed child. Killing is immediate, so this blocks only for a moment.
fn wait_blocking(mut child: Child) -> ExitStatus {
    child
        .wait()
        .unwrap_or_else(|e| panic!("cannot wait for the daemon process: {e}"))
}

impl Drop for TempGateway {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
            let _gone_already_is_fine = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _status = wait_blocking(child);
        }
        if std::thread::panicking() {
            eprintln!(
                "--- markoff config ({}) ---\n{}",
                self.config_path().display(),
                std::fs::read_to_string(self.config_path()).unwrap_or_default()
            );
            eprintln!(
                "--- markoff log ({} start(s)) ---\n{}",
                self.starts,
                self.log()
            );
            if std::env::var_os("MARKOFF_TEST_KEEP").is_some() {
                let kept = self.dir.path().to_owned();
                eprintln!("--- kept {} (MARKOFF_TEST_KEEP) ---", kept.display());
                let throwaway = tempfile::tempdir().expect("a throwaway temp dir");
                let _kept_path = std::mem::replace(&mut self.dir, throwaway).keep();
            }
        }
    }
}

/// Describes an exit status for messages: `code 0`, `signal 9`.
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("code {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => status.to_string(),
    }
}

/// The value of the sample `name_with_labels` in Prometheus/OpenMetrics text.
pub fn metric_in(text: &str, name_with_labels: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(name_with_labels)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Removes terminal escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_metrics_with_labels() {
        let text = "# TYPE x counter\nmarkoff_buffer_last_seq 42\n\
                    markoff_buffer_dropped_rows_total{reason=\"synced_overflow\"} 7\n# EOF\n";
        assert_eq!(metric_in(text, "markoff_buffer_last_seq"), Some(42.0));
        assert_eq!(
            metric_in(
                text,
                "markoff_buffer_dropped_rows_total{reason=\"synced_overflow\"}"
            ),
            Some(7.0)
        );
        assert_eq!(metric_in(text, "markoff_buffer_last"), None);
    }

    #[test]
    fn strips_colours() {
        assert_eq!(
            strip_ansi("\u{1b}[3mlast_seq\u{1b}[0m\u{1b}[2m=\u{1b}[0m5"),
            "last_seq=5"
        );
    }

    #[test]
    fn config_has_the_fixed_parts() {
        let t = GatewayBuilder::default()
            .max_size("1MiB")
            .busy_timeout(Duration::from_millis(300))
            .to_toml(Path::new("/tmp/x/markoff.db"));
        assert!(t.contains("listen = \"127.0.0.1:0\""), "{t}");
        assert!(t.contains("path = \"/tmp/x/markoff.db\""), "{t}");
        assert!(t.contains("busy_timeout = \"300ms\""), "{t}");
        assert!(t.contains("max_size = \"1MiB\""), "{t}");
        assert!(t.contains("socket = \"/tmp/x/api.sock\""), "{t}");
    }
}
