//! Headless Chromium for end-to-end tests of web pages: Debian's `chromium` driven through its
//! `chromedriver` (package `chromium-driver`) with the `fantoccini` WebDriver client.
//!
//! Like PostgreSQL, the browser is not optional under `CI=true`: a missing browser fails the
//! test loudly (`tests/run.sh` installs both packages). On a developer machine a loud warning is
//! printed and the caller returns early.
//!
//! Owns: finding the binaries, starting chromedriver on a free loopback port, a headless
//! session. Does not own: what the tests do in the browser.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::eventually::patience;

/// Overrides the Chromium binary (default `/usr/bin/chromium`).
pub const CHROMIUM_ENV: &str = "MARKOFF_TEST_CHROMIUM";
/// Overrides the chromedriver binary (default `/usr/bin/chromedriver`).
pub const CHROMEDRIVER_ENV: &str = "MARKOFF_TEST_CHROMEDRIVER";

fn binary(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The Chromium binary.
pub fn chromium() -> PathBuf {
    binary(CHROMIUM_ENV, "/usr/bin/chromium")
}

/// The chromedriver binary.
pub fn chromedriver() -> PathBuf {
    binary(CHROMEDRIVER_ENV, "/usr/bin/chromedriver")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Whether Chromium and chromedriver are installed.
///
/// # Panics
/// Under `CI=true`, when either is missing.
pub fn require_chromium() -> bool {
    let missing: Vec<String> = [chromium(), chromedriver()]
        .iter()
        .filter(|p| !Path::new(p).is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{} not found. The browser tests need Debian's chromium and chromium-driver packages: \
         apt-get install -y chromium chromium-driver (tests/run.sh does it), or point \
         {CHROMIUM_ENV} / {CHROMEDRIVER_ENV} at them.",
        missing.join(" and ")
    );
    assert!(!in_ci(), "{msg}");
    eprintln!("\n!!!!!!!!!! WARNING: SKIPPING a browser test !!!!!!!!!!\n{msg}\n");
    false
}

/// A running chromedriver, killed when dropped.
#[derive(Debug)]
pub struct ChromeDriver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl ChromeDriver {
    /// Starts chromedriver on a free loopback port and waits until it accepts connections.
    ///
    /// # Panics
    /// It cannot be started or does not listen within the patience.
    pub async fn start() -> Self {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("its address").port()
        };
        let profile = tempfile::Builder::new()
            .prefix("markoff-chromium-")
            .tempdir()
            .expect("a temp dir for the browser profile");
        let child = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver().display()));
        let url = format!("http://127.0.0.1:{port}");
        let started = tokio::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < patience(),
                "chromedriver did not listen on {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            url,
            profile,
        }
    }

    /// A new headless browser session.
    ///
    /// # Panics
    /// The session cannot be created.
    pub async fn session(&self) -> Client {
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium().display().to_string(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1600", "--no-first-run", "--no-default-browser-check",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!("a JSON object literal");
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot start a headless Chromium session: {e}"))
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
