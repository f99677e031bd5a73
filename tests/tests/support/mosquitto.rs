//! A private Mosquitto broker for one test: free loopback port, own persistence directory and
//! log, restartable. When `mosquitto` is not installed the test fails under `CI=true` and is
//! skipped with a loud warning elsewhere.

#![allow(dead_code)] // each test binary uses a different part of this helper

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Polls `cond` until it holds or 20 s pass.
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// CPU time used by this process so far (user + system), from /proc (in USER_HZ = 1/100 s).
pub(crate) fn cpu_time() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    std::time::Duration::from_millis(ticks * 10)
}

/// A running broker.
pub(crate) struct Mosquitto {
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn binary() -> Option<PathBuf> {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

impl Mosquitto {
    /// Starts a broker, or returns `None` (after a loud warning) when mosquitto is missing
    /// outside CI. Under `CI=true` a missing broker fails the test.
    pub(crate) async fn start() -> Option<Self> {
        let port = free_port();
        Self::start_on(port).await
    }

    /// Starts a broker on `port` (see [`Mosquitto::start`]).
    pub(crate) async fn start_on(port: u16) -> Option<Self> {
        let Some(_) = binary() else {
            let msg =
                "mosquitto is not installed: run tests/run.sh (it installs the Debian package)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}");
            }
            eprintln!("WARNING: test skipped: {msg}");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        // Started as root, mosquitto drops to its own user: it must be able to write here.
        let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o777);
        std::fs::set_permissions(dir.path(), perms).unwrap();
        let conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
             max_queued_messages 100000\nmax_inflight_messages 100\nlog_dest file {}/mosquitto.log\n\
             log_type subscribe\nlog_type error\nlog_type warning\nlog_type notice\n",
            dir.path().display(),
            dir.path().display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
        let mut b = Self {
            port,
            dir,
            child: None,
        };
        b.spawn().await;
        Some(b)
    }

    async fn spawn(&mut self) {
        let child = Command::new(binary().unwrap())
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let port = self.port;
        eventually("mosquitto listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
    }

    /// Stops the broker cleanly (it saves its sessions) and starts it again on the same port.
    pub(crate) async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    /// Stops the broker (SIGTERM, so it writes its persistence file).
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).ok();
            c.wait().ok();
        }
    }

    /// Lines of the broker's log (subscriptions, connections, notices, warnings, errors) that
    /// contain `text`.
    pub(crate) fn log_lines(&self, text: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log"))
            .map_or(0, |log| log.lines().filter(|l| l.contains(text)).count())
    }

    /// Whether the broker logged a subscription by `client_id`.
    pub(crate) fn subscribed(&self, client_id: &str) -> bool {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).is_ok_and(|log| {
            log.lines()
                .any(|l| l.contains(client_id) && !l.contains("New client"))
        })
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}
