//! Headless Chromium for end-to-end tests of web pages: Debian's `chromium` driven through its
//! `chromedriver` (package `chromium-driver`) with the `fantoccini` WebDriver client.
//!
//! Like PostgreSQL, the browser is not optional under `CI=true`: a missing browser fails the
//! test loudly (`tests/run.sh` installs both packages). On a developer machine a loud warning is
//! printed and the caller returns early.
//!
//! Owns: finding the binaries, starting chromedriver on a free loopback port, a headless
//! session, and the readability check shared by the page tests ([`readable_at`]). Does not own:
//! what the tests do in the browser.

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

/// Run in the page: the document's width against the viewport's, the WCAG contrast of every
/// visible text node with the colour behind it (backgrounds composited up the tree; in a floor
/// plan, a room's label against its room's fill and an alarm marker's against its circle), and
/// the on-screen size of every label of an SVG floor plan (`svg.plan text`).
pub const READABILITY_JS: &str = r#"
const parse = (c) => {
  const m = c && c.match(/rgba?\(([^)]+)\)/);
  if (!m) return null;
  const p = m[1].split(',').map(parseFloat);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const lum = (c) => {
  const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
};
const behind = (el) => {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  let base = [255, 255, 255];
  for (let i = layers.length - 1; i >= 0; i--) {
    const c = layers[i];
    base = base.map((b, k) => c[k] * c[3] + b * (1 - c[3]));
  }
  return base;
};
const fails = [];
let checked = 0;
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
let n;
while ((n = walker.nextNode())) {
  if (!n.textContent.trim()) continue;
  const el = n.parentElement;
  const st = getComputedStyle(el);
  if (st.visibility === 'hidden' || st.display === 'none' || el.closest('title, style, script')) continue;
  let fg, bg;
  if (el.closest('svg')) {
    fg = parse(st.fill);
    const marker = el.closest('g.alarm-marker');
    const room = el.closest('g.room');
    const shape = marker ? marker.querySelector('circle') : room && room.querySelector('polygon');
    bg = shape ? parse(getComputedStyle(shape).fill).slice(0, 3) : behind(el.closest('svg'));
  } else {
    fg = parse(st.color);
    bg = behind(el);
  }
  if (!fg) continue;
  const c = fg.slice(0, 3).map((v, k) => v * fg[3] + bg[k] * (1 - fg[3]));
  const a = lum(c), b = lum(bg);
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  checked++;
  if (ratio < 4.5) {
    fails.push(n.textContent.trim().slice(0, 40) + ': ' + ratio.toFixed(2) + ' ' + c.map(Math.round) + ' on ' + bg.map(Math.round));
  }
}
const labels = [];
let smallest = null;
for (const t of document.querySelectorAll('svg.plan text')) {
  const ctm = t.getScreenCTM();
  if (!ctm) continue;
  const px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(ctm.a, ctm.b);
  if (smallest === null || px < smallest) smallest = px;
  if (px < 11) labels.push(t.textContent.trim().slice(0, 30) + ': ' + px.toFixed(1) + ' px');
}
return { scroll: document.documentElement.scrollWidth, inner: window.innerWidth, checked, fails,
         small_labels: labels, smallest_label: smallest, plans: document.querySelectorAll('svg.plan').length };
"#;

/// Opens `url` at `width` x `height`, writes a screenshot to `shot`, runs [`READABILITY_JS`] and
/// returns its report after checking it: the viewport is about `width` wide, nothing scrolls
/// sideways, more than `min_texts` texts were checked, every one contrasts at least 4.5:1, and
/// no floor-plan label is under 11 px.
///
/// # Panics
/// When any of these fails (the message names `name` and the size), or the browser fails.
pub async fn readable_at(
    client: &Client,
    name: &str,
    url: &str,
    (width, height): (u32, u32),
    shot: &Path,
    min_texts: u64,
) -> serde_json::Value {
    client
        .set_window_size(width, height)
        .await
        .unwrap_or_else(|e| panic!("resizing to {width}x{height}: {e}"));
    client
        .goto(url)
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    let report = client
        .execute(READABILITY_JS, vec![])
        .await
        .unwrap_or_else(|e| panic!("{name}: the readability script failed: {e}"));
    let png = client
        .screenshot()
        .await
        .unwrap_or_else(|e| panic!("{name}: no screenshot: {e}"));
    std::fs::write(shot, png).unwrap_or_else(|e| panic!("writing {}: {e}", shot.display()));
    let at = format!("{name} at {width}x{height}");
    let inner = report["inner"].as_f64().unwrap_or_default();
    assert!(
        (f64::from(width) - 40.0..=f64::from(width)).contains(&inner),
        "{at}: the viewport is {inner} px wide"
    );
    assert!(
        report["scroll"].as_f64().unwrap_or(f64::MAX) <= inner,
        "{at} scrolls sideways: {report}"
    );
    assert!(
        report["checked"].as_u64().unwrap_or_default() > min_texts,
        "{at}: too few texts checked: {report}"
    );
    assert!(
        report["fails"].as_array().is_some_and(Vec::is_empty),
        "{at}: texts under 4.5:1: {report}"
    );
    assert!(
        report["small_labels"].as_array().is_some_and(Vec::is_empty),
        "{at}: plan labels under 11 px: {report}"
    );
    report
}
