//! A real Prometheus for the metrics tests: Debian's `prometheus` (the server) and `promtool`
//! (the exposition and rule checkers), from the package `prometheus`.
//!
//! Like the browser, they are not optional under `CI=true`: a missing binary fails the test
//! loudly (`tests/run.sh` installs the package). On a developer machine a loud warning is printed
//! and the caller returns early.
//!
//! Owns: finding the binaries, running promtool, starting a server of the test's own (its own
//! data directory, a free loopback port) and asking its HTTP API. Does not own: what is scraped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};

use crate::eventually::patience;

/// Overrides the directory of `prometheus` and `promtool` (default: found on PATH, else /usr/bin).
pub const PROMETHEUS_DIR_ENV: &str = "MARKOFF_TEST_PROMETHEUS_DIR";

fn binary(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(PROMETHEUS_DIR_ENV) {
        return Path::new(&dir).join(name);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| Path::new("/usr/bin").join(name))
}

/// The `prometheus` binary.
pub fn prometheus() -> PathBuf {
    binary("prometheus")
}

/// The `promtool` binary.
pub fn promtool() -> PathBuf {
    binary("promtool")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Whether prometheus and promtool are installed.
///
/// # Panics
/// Under `CI=true`, when either is missing.
pub fn require_prometheus(test: &str) -> bool {
    let missing: Vec<String> = [prometheus(), promtool()]
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test} needs {}: apt-get install -y prometheus (tests/run.sh does it), or point \
         {PROMETHEUS_DIR_ENV} at a directory with both.",
        missing.join(" and ")
    );
    assert!(!in_ci(), "{msg}");
    eprintln!("\n!!!!!!!!!! WARNING: {test} DID NOT RUN !!!!!!!!!!\n{msg}\n");
    false
}

/// Runs promtool with `args` in `dir`, `stdin` on its standard input; returns (success, output).
///
/// # Panics
/// promtool cannot be started or runs longer than the patience.
pub async fn promtool_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool: {e}"));
    let mut input = child.stdin.take().expect("promtool's stdin");
    if let Some(text) = stdin {
        input
            .write_all(text.as_bytes())
            .await
            .expect("write promtool's stdin");
    }
    drop(input);
    let out = tokio::time::timeout(patience(), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("promtool {args:?} did not finish"))
        .expect("promtool's output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A Prometheus server of the test's own, killed when dropped.
#[derive(Debug)]
pub struct PrometheusServer {
    _child: Child,
    dir: tempfile::TempDir,
    url: String,
    http: reqwest::Client,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `targets` (host:port) every second as job `job`, with
    /// `rule_files` loaded, and waits until it is ready.
    ///
    /// # Panics
    /// It does not become ready within the patience (the panic shows its log).
    pub async fn start(job: &str, targets: &[String], rule_files: &[PathBuf]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("markoff-prometheus-")
            .tempdir()
            .expect("a temp dir for Prometheus");
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|r| format!("\"{}\"", r.display()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [{}]\n\
             scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
            rules.join(", "),
            targets.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        // Prometheus cannot report a port it picked: take a free one and hand it over.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(prometheus())
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start prometheus: {e}"));
        let server = Self {
            _child: child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
        };
        let deadline = tokio::time::Instant::now() + patience();
        loop {
            let ready = server
                .http
                .get(format!("{}/-/ready", server.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return server;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Prometheus did not become ready:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/<path>` with `query` parameters; the `data` of a successful answer.
    pub async fn api(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let answer: Value = self
            .http
            .get(format!("{}/api/v1/{path}", self.url))
            .query(query)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (answer["status"] == "success").then(|| answer["data"].clone())
    }

    /// The instant vector of a PromQL query (empty when it fails or has no result).
    pub async fn query(&self, promql: &str) -> Vec<Value> {
        self.api("query", &[("query", promql)])
            .await
            .and_then(|d| d["result"].as_array().cloned())
            .unwrap_or_default()
    }
}
