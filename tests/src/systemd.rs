//! A fake systemd notify socket: records every `sd_notify` datagram a child process sends.
//!
//! Owns: the socket in its own temp dir and the thread that reads it. Does not own: the child;
//! pass [`FakeSystemd::env`] to it (e.g. through `GatewayBuilder::env`).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::time::Instant;

/// One `KEY=VALUE` line of a notify datagram, with the time it was received.
#[derive(Clone, Debug)]
pub struct Notification {
    /// When the datagram arrived.
    pub at: Instant,
    /// The line, e.g. `READY=1`, `STATUS=12 points, ...`, `WATCHDOG=1`.
    pub text: String,
}

/// Stands in for systemd's `NOTIFY_SOCKET`.
#[derive(Debug)]
pub struct FakeSystemd {
    dir: tempfile::TempDir,
    socket: PathBuf,
    watchdog_usec: Option<u64>,
    received: Arc<Mutex<Vec<Notification>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl FakeSystemd {
    /// Binds the socket; `watchdog_usec` is what `WATCHDOG_USEC` will tell the child (`None`:
    /// no watchdog).
    ///
    /// # Panics
    /// The temp dir, the socket or the reader thread cannot be created.
    pub fn start(watchdog_usec: Option<u64>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("markoff-sd-")
            .tempdir()
            .expect("a temp dir for the notify socket");
        let socket = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&socket).expect("bind the fake NOTIFY_SOCKET");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("a read timeout on the notify socket");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let received = received.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("fake-systemd".into())
                .spawn(move || read_loop(&sock, &received, &stop))
                .expect("spawn the fake systemd reader thread")
        };
        Self {
            dir,
            socket,
            watchdog_usec,
            received,
            stop,
            reader: Some(reader),
        }
    }

    /// The environment for the child: `NOTIFY_SOCKET`, and `WATCHDOG_USEC` when enabled.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![(
            "NOTIFY_SOCKET".to_owned(),
            self.socket.display().to_string(),
        )];
        if let Some(usec) = self.watchdog_usec {
            env.push(("WATCHDOG_USEC".to_owned(), usec.to_string()));
        }
        env
    }

    /// Every line received so far, oldest first.
    pub fn notifications(&self) -> Vec<Notification> {
        self.lock().clone()
    }

    /// Every line received so far, as text.
    pub fn messages(&self) -> Vec<String> {
        self.lock().iter().map(|n| n.text.clone()).collect()
    }

    /// Whether `line` (e.g. `READY=1`) was received.
    pub fn has(&self, line: &str) -> bool {
        self.lock().iter().any(|n| n.text == line)
    }

    /// How many times `line` was received.
    pub fn count(&self, line: &str) -> usize {
        self.lock().iter().filter(|n| n.text == line).count()
    }

    /// Lines that start with `prefix` (e.g. `STATUS=`).
    pub fn with_prefix(&self, prefix: &str) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|n| n.text.starts_with(prefix))
            .map(|n| n.text.clone())
            .collect()
    }

    /// When `line` was last received.
    pub fn last_at(&self, line: &str) -> Option<Instant> {
        self.lock()
            .iter()
            .rev()
            .find(|n| n.text == line)
            .map(|n| n.at)
    }

    /// Index of the first occurrence of `line`, to check the order of messages.
    pub fn position(&self, line: &str) -> Option<usize> {
        self.lock().iter().position(|n| n.text == line)
    }

    /// The socket's directory (kept alive as long as `self`).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Notification>> {
        self.received.lock()
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(reader) = self.reader.take() {
            let _reader_result = reader.join();
        }
        if std::thread::panicking() {
            let all = self.lock();
            let pings = all.iter().filter(|n| n.text == "WATCHDOG=1").count();
            eprintln!("--- fake systemd received ({pings} x WATCHDOG=1, and) ---");
            for n in all.iter().filter(|n| n.text != "WATCHDOG=1") {
                eprintln!("{}", n.text);
            }
        }
    }
}

fn read_loop(sock: &UnixDatagram, received: &Mutex<Vec<Notification>>, stop: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Acquire) {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let at = Instant::now();
                let text = String::from_utf8_lossy(&buf[..n]);
                let mut all = received.lock();
                all.extend(
                    text.lines()
                        .filter(|l| !l.is_empty())
                        .map(|l| Notification {
                            at,
                            text: l.to_owned(),
                        }),
                );
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                eprintln!("fake systemd: receive failed: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_every_line_of_every_datagram() {
        let systemd = FakeSystemd::start(Some(400_000));
        let env = systemd.env();
        assert_eq!(env[1], ("WATCHDOG_USEC".to_owned(), "400000".to_owned()));
        let client = UnixDatagram::unbound().unwrap();
        client
            .send_to(b"READY=1\nSTATUS=starting\n", &systemd.socket)
            .unwrap();
        client.send_to(b"WATCHDOG=1\n", &systemd.socket).unwrap();
        client.send_to(b"WATCHDOG=1\n", &systemd.socket).unwrap();
        crate::assert_eventually!(systemd.count("WATCHDOG=1") == 2, "{:?}", systemd.messages());
        assert!(systemd.has("READY=1"));
        assert_eq!(systemd.with_prefix("STATUS="), ["STATUS=starting"]);
        assert!(systemd.position("READY=1") < systemd.position("WATCHDOG=1"));
        assert!(systemd.last_at("WATCHDOG=1").is_some());
        assert!(!systemd.has("STOPPING=1"));
    }
}
