//! The real clocks and status probe, and the file-driven fake the daemon's tests use.
//!
//! Owns: [`SystemClock`] (the wall clock and `CLOCK_BOOTTIME`), [`TimedatectlProbe`] (the kernel's
//! synchronisation status as systemd reads it from `adjtimex`), [`FakeClock`]. Does not own:
//! deciding anything from them (`super::Clock`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::time::{ClockId, clock_gettime};
use parking_lot::Mutex;

use super::{SyncProbe, SyncStatus, TimeSource};

/// The system's wall clock and its monotonic clock that counts through suspend.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

fn system_wall_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn boottime_ms() -> i64 {
    // CLOCK_BOOTTIME exists on every Linux the gateway runs on; CLOCK_MONOTONIC is the fallback.
    match clock_gettime(ClockId::CLOCK_BOOTTIME)
        .or_else(|_| clock_gettime(ClockId::CLOCK_MONOTONIC))
    {
        Ok(ts) => ts.tv_sec() * 1000 + ts.tv_nsec() / 1_000_000,
        Err(_) => 0,
    }
}

impl TimeSource for SystemClock {
    fn wall_ms(&self) -> i64 {
        system_wall_ms()
    }
    fn mono_ms(&self) -> i64 {
        boottime_ms()
    }
}

/// The kernel's synchronisation status through `timedatectl show -p NTPSynchronized`: systemd
/// answers from `adjtimex(2)` (`STA_UNSYNC` clear and a maximum error below 16 s), whichever NTP
/// client runs (systemd-timesyncd, chrony, ntpd). Without `timedatectl` (or D-Bus), the flag
/// file systemd-timesyncd keeps is read; with neither the status is unknown.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimedatectlProbe;

/// The flag file systemd-timesyncd creates once it has synchronised the clock.
const TIMESYNCD_FLAG: &str = "/run/systemd/timesync/synchronized";

impl SyncProbe for TimedatectlProbe {
    fn probe(&self) -> SyncStatus {
        let out = Command::new("timedatectl")
            .args(["show", "--property=NTPSynchronized", "--value"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output();
        if let Ok(out) = out
            && out.status.success()
        {
            match String::from_utf8_lossy(&out.stdout).trim() {
                "yes" => return SyncStatus::Synchronized,
                "no" => return SyncStatus::Unsynchronized,
                _ => {}
            }
        }
        if Path::new(TIMESYNCD_FLAG).exists() {
            SyncStatus::Synchronized
        } else {
            SyncStatus::Unknown
        }
    }

    fn name(&self) -> &'static str {
        "timedatectl"
    }
}

/// A clock for tests of the daemon binary, driven by a file (named by
/// [`super::FAKE_CLOCK_ENV`]) with `key = value` lines:
///
/// ```text
/// offset_ms = -1764000000000   # added to the real wall clock
/// synchronized = no            # yes, no or unknown
/// ```
///
/// The monotonic clock is the real one. The file is read again at most every 50 ms; a missing
/// file means offset 0 and status unknown.
#[derive(Debug)]
pub struct FakeClock {
    path: PathBuf,
    cached: Mutex<Option<(i64, FakeState)>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FakeState {
    offset_ms: i64,
    status: SyncStatus,
}

impl FakeClock {
    /// A fake clock reading `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            cached: Mutex::new(None),
        }
    }

    fn state(&self) -> FakeState {
        let now = boottime_ms();
        let mut cached = self.cached.lock();
        if let Some((at, st)) = *cached
            && now - at < 50
        {
            return st;
        }
        let st = std::fs::read_to_string(&self.path)
            .map(|t| parse_fake(&t))
            .unwrap_or(FakeState {
                offset_ms: 0,
                status: SyncStatus::Unknown,
            });
        *cached = Some((now, st));
        st
    }
}

fn parse_fake(text: &str) -> FakeState {
    let mut st = FakeState {
        offset_ms: 0,
        status: SyncStatus::Unknown,
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match (k.trim(), v.trim()) {
            ("offset_ms", v) => st.offset_ms = v.parse().unwrap_or(0),
            ("synchronized", "yes" | "true") => st.status = SyncStatus::Synchronized,
            ("synchronized", "no" | "false") => st.status = SyncStatus::Unsynchronized,
            ("synchronized", _) => st.status = SyncStatus::Unknown,
            _ => {}
        }
    }
    st
}

impl TimeSource for FakeClock {
    fn wall_ms(&self) -> i64 {
        system_wall_ms() + self.state().offset_ms
    }
    fn mono_ms(&self) -> i64 {
        boottime_ms()
    }
}

impl SyncProbe for FakeClock {
    fn probe(&self) -> SyncStatus {
        self.state().status
    }
    fn name(&self) -> &'static str {
        "fake"
    }
}

/// The fake clock named by [`super::FAKE_CLOCK_ENV`], when the variable is set.
pub fn fake_from_env() -> Option<FakeClock> {
    std::env::var_os(super::FAKE_CLOCK_ENV)
        .filter(|p| !p.is_empty())
        .map(FakeClock::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_file_is_parsed_and_missing_keys_default() {
        let st = parse_fake("offset_ms = -3600000 # an hour back\nsynchronized = no\n");
        assert_eq!(st.offset_ms, -3_600_000);
        assert_eq!(st.status, SyncStatus::Unsynchronized);
        let st = parse_fake("synchronized = yes");
        assert_eq!((st.offset_ms, st.status), (0, SyncStatus::Synchronized));
        assert_eq!(parse_fake("junk").status, SyncStatus::Unknown);
    }

    #[test]
    fn the_fake_clock_follows_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        let fake = FakeClock::new(&path);
        assert_eq!(fake.probe(), SyncStatus::Unknown);
        std::fs::write(&path, "offset_ms = -86400000\nsynchronized = no\n").unwrap();
        *fake.cached.lock() = None;
        assert_eq!(fake.probe(), SyncStatus::Unsynchronized);
        assert!((system_wall_ms() - 86_400_000 - fake.wall_ms()).abs() < 1_000);
    }

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = SystemClock.mono_ms();
        let b = SystemClock.mono_ms();
        assert!(a > 0 && b >= a);
    }
}
