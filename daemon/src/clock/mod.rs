//! The gateway's clock: the one place every timestamp comes from.
//!
//! Owns: reading the wall clock, the monotonic clock (`CLOCK_BOOTTIME`) and the kernel's
//! synchronisation status through one seam ([`TimeSource`], [`SyncProbe`]); deciding whether the
//! wall clock can be trusted; stamping ([`Clock::now_ms`], which [`crate::model::Timestamp::now`]
//! calls once the clock is installed); detecting steps of the wall clock; the corrections learnt
//! when an untrusted span ends ([`ClockEvent`]); the clock's metrics and status. Does not own:
//! storing clock epochs (`crate::store`), applying corrections to uploaded readings
//! (`crate::sync`).
//!
//! # States
//! - **trusted**: the kernel reports the clock synchronised (`timedatectl`'s `NTPSynchronized`,
//!   the `adjtimex` status), or `[clock] rtc = true`. Stamps are the wall clock.
//! - **free-running**: the clock is not synchronised (at boot, or after losing synchronisation),
//!   or the wall clock stepped. Stamps continue from the last trusted point (or the boot anchor)
//!   along the monotonic clock, so they never jump, never go back, and keep their spacing.
//!
//! When a free-running span ends (the clock synchronises, or settles after a step), the offset
//! between the wall clock and the free-running stamps is the correction of every reading of the
//! span: [`ClockEvent::Corrected`]. Stamps then follow the wall clock again.
//!
//! A step is a change of `wall - monotonic` by more than `step_threshold` between two readings of
//! the clock (NTP slewing moves it by at most 0.5 ms per second). After a step the new wall time
//! is accepted only once the kernel reports it synchronised and `step_settle` has passed.

pub mod config;
mod probe;
mod run;

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

pub use config::ClockConfig;
pub use probe::{FakeClock, SystemClock, TimedatectlProbe, fake_from_env};
pub use run::{Recorder, run, start};

use crate::service::metrics::MetricSet;

/// Environment variable naming a fake-clock file (tests of the daemon binary only): see
/// [`FakeClock`].
pub const FAKE_CLOCK_ENV: &str = "MARKOFF_TEST_CLOCK";

/// Wall and monotonic time, in milliseconds.
pub trait TimeSource: Send + Sync + fmt::Debug {
    /// The wall clock: milliseconds since the Unix epoch, as the system says.
    fn wall_ms(&self) -> i64;
    /// A monotonic clock that keeps counting through suspend (`CLOCK_BOOTTIME`), milliseconds.
    fn mono_ms(&self) -> i64;
}

/// Whether the system clock is synchronised.
pub trait SyncProbe: Send + Sync + fmt::Debug {
    /// The kernel's synchronisation status now. May block briefly (a subprocess, a file read):
    /// call it off the async runtime.
    fn probe(&self) -> SyncStatus;
    /// What is asked (for the status: `timedatectl`, `fake`).
    fn name(&self) -> &'static str;
}

/// The synchronisation status of the system clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// Synchronised (the kernel's `STA_UNSYNC` is clear and its maximum error is small).
    Synchronized,
    /// Not synchronised.
    Unsynchronized,
    /// The status could not be read (no systemd, no D-Bus). Treated as synchronised: stamps
    /// follow the wall clock as they always did, and steps are still detected.
    Unknown,
}

impl SyncStatus {
    /// The lower-case name used in the status and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synchronized => "synchronized",
            Self::Unsynchronized => "unsynchronized",
            Self::Unknown => "unknown",
        }
    }
}

/// Why stamps stopped following the wall clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreeReason {
    /// The clock was not synchronised when the gateway started.
    Boot,
    /// The wall clock stepped.
    Step,
    /// The kernel stopped reporting the clock synchronised.
    LostSync,
}

impl FreeReason {
    /// The lower-case name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boot => "boot",
            Self::Step => "step",
            Self::LostSync => "lost_sync",
        }
    }
}

/// What the clock learnt, in order; the composition root records these (clock epochs in the
/// buffer) and logs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClockEvent {
    /// Stamps stopped following the wall clock; the first free-running stamp is `from_ms`.
    FreeRunning {
        /// Why.
        reason: FreeReason,
        /// The first stamp of the span.
        from_ms: i64,
        /// Stamps of the span are the monotonic clock plus this.
        mono_base: i64,
        /// The newest reading seq committed when the span began: the span's readings come after.
        after_seq: i64,
    },
    /// The wall clock stepped by `by_ms` (negative: backwards).
    Step {
        /// Size of the step.
        by_ms: i64,
        /// The stamp at which it was seen.
        at_ms: i64,
    },
    /// A free-running span ended: its stamps `from_ms..=to_ms` are `offset_ms` behind real time.
    Corrected {
        /// First stamp of the span.
        from_ms: i64,
        /// Last stamp of the span.
        to_ms: i64,
        /// Add this to the span's stamps to get real time.
        offset_ms: i64,
    },
}

/// The clock's state, for `markoff status` and the sync metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSnapshot {
    /// The kernel's status at the last probe.
    pub status: SyncStatus,
    /// What was asked (`timedatectl`, `fake`).
    pub probe: String,
    /// `[clock] rtc`.
    pub rtc: bool,
    /// Stamps follow the wall clock (false: free-running from the monotonic clock).
    pub trusted: bool,
    /// Why stamps are free-running, when they are.
    pub free_reason: Option<FreeReason>,
    /// First stamp of the current free-running span, when there is one.
    pub free_since_ms: Option<i64>,
    /// Steps of the wall clock seen since start.
    pub steps: u64,
    /// Free-running spans ended with a correction since start.
    pub corrections: u64,
    /// The last correction learnt, milliseconds.
    pub last_offset_ms: Option<i64>,
}

/// The clock. One per process ([`global`]); tests build their own over fakes.
pub struct Clock {
    source: Arc<dyn TimeSource>,
    probe: Arc<dyn SyncProbe>,
    state: Mutex<State>,
    /// The sum of the corrections applied to the timeline (how far "now" jumped in total).
    shift: AtomicI64,
}

/// The newest committed reading seq (the buffer's), read when a free-running span begins.
pub type SeqSource = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A free-running span to continue (the gateway restarted during it, on the same boot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// Why the span began.
    pub reason: FreeReason,
    /// Its first stamp.
    pub from_ms: i64,
    /// Its stamps are the monotonic clock plus this.
    pub mono_base: i64,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("source", &self.source)
            .field("probe", &self.probe.name())
            .finish_non_exhaustive()
    }
}

struct State {
    rtc: bool,
    step_threshold_ms: i64,
    step_settle_ms: i64,
    hold_upload_ms: i64,
    status: SyncStatus,
    trusted: bool,
    /// Stamps are `mono + base`.
    base: i64,
    /// `wall - mono` at the last reading, for step detection.
    last_wall_base: i64,
    /// After a step: no trust before this monotonic time.
    held_until: Option<i64>,
    free_reason: Option<FreeReason>,
    free_since: Option<i64>,
    /// The newest reading seq committed when the current free-running span began.
    free_after_seq: i64,
    steps: u64,
    corrections: u64,
    last_offset_ms: Option<i64>,
    events: Vec<ClockEvent>,
    seq: Option<SeqSource>,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("status", &self.status)
            .field("trusted", &self.trusted)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

impl State {
    /// Reads the clock at (`wall`, `mono`): detects steps and returns the stamp.
    fn observe(&mut self, wall: i64, mono: i64) -> i64 {
        let wall_base = wall - mono;
        let by = wall_base - self.last_wall_base;
        self.last_wall_base = wall_base;
        if by.abs() > self.step_threshold_ms {
            self.steps += 1;
            let at = mono + self.base;
            self.events.push(ClockEvent::Step {
                by_ms: by,
                at_ms: at,
            });
            self.held_until = Some(mono + self.step_settle_ms);
            if self.trusted {
                self.go_free(FreeReason::Step, at);
            }
        }
        if self.trusted {
            self.base = wall_base;
        }
        mono + self.base
    }

    fn go_free(&mut self, reason: FreeReason, from: i64) {
        self.trusted = false;
        self.free_reason = Some(reason);
        self.free_since = Some(from);
        let after_seq = self.seq.as_ref().map_or(0, |f| f());
        self.free_after_seq = after_seq;
        self.events.push(ClockEvent::FreeRunning {
            reason,
            from_ms: from,
            mono_base: self.base,
            after_seq,
        });
    }

    fn wall_ok(&self) -> bool {
        self.rtc || self.status != SyncStatus::Unsynchronized
    }

    /// A new status at (`wall`, `mono`); returns the correction applied to the timeline.
    fn on_status(&mut self, status: SyncStatus, wall: i64, mono: i64) -> i64 {
        let stamp = self.observe(wall, mono);
        self.status = status;
        let settled = self.held_until.is_none_or(|h| mono >= h);
        if self.trusted && !self.wall_ok() {
            self.go_free(FreeReason::LostSync, stamp);
        } else if !self.trusted && self.wall_ok() && settled {
            let offset = wall - stamp;
            self.events.push(ClockEvent::Corrected {
                from_ms: self.free_since.unwrap_or(stamp),
                to_ms: stamp,
                offset_ms: offset,
            });
            self.corrections += 1;
            self.last_offset_ms = Some(offset);
            self.trusted = true;
            self.base = wall - mono;
            self.held_until = None;
            self.free_reason = None;
            self.free_since = None;
            return offset;
        }
        0
    }
}

impl Clock {
    /// A clock over `source` and `probe`, trusting the wall clock until [`Clock::configure`].
    pub fn new(source: Arc<dyn TimeSource>, probe: Arc<dyn SyncProbe>) -> Self {
        let base = source.wall_ms() - source.mono_ms();
        let cfg = ClockConfig::default();
        Self {
            source,
            probe,
            state: Mutex::new(State {
                rtc: false,
                step_threshold_ms: ms(cfg.step_threshold),
                step_settle_ms: ms(cfg.step_settle),
                hold_upload_ms: ms(cfg.hold_upload),
                status: SyncStatus::Unknown,
                trusted: true,
                base,
                last_wall_base: base,
                held_until: None,
                free_reason: None,
                free_since: None,
                free_after_seq: 0,
                steps: 0,
                corrections: 0,
                last_offset_ms: None,
                events: Vec::new(),
                seq: None,
            }),
            shift: AtomicI64::new(0),
        }
    }

    /// Where the newest committed reading seq is read when a free-running span begins.
    pub fn set_seq_source(&self, seq: SeqSource) {
        self.state.lock().seq = Some(seq);
    }

    /// How far the timeline has jumped in total through corrections, milliseconds: a
    /// component that keeps times of its own moves them by the change.
    pub fn timeline_shift_ms(&self) -> i64 {
        self.shift.load(Ordering::Acquire)
    }

    /// Readings with a seq above this must not be uploaded yet: they belong to the current
    /// free-running span, which has not waited `hold_upload` for its correction. `None` while
    /// trusted or once the span has waited that long.
    pub fn upload_hold_after(&self) -> Option<i64> {
        let (wall, mono) = (self.source.wall_ms(), self.source.mono_ms());
        let mut s = self.state.lock();
        let now = s.observe(wall, mono);
        let since = s.free_since?;
        (!s.trusted && now - since <= s.hold_upload_ms).then_some(s.free_after_seq)
    }

    /// Applies `[clock]` and the first probe's `status`: an unsynchronised clock without `rtc`
    /// starts a free-running span anchored at the later of the wall clock and `floor_ms` (the
    /// newest stamp already stored), so new stamps never sort before stored ones.
    ///
    /// With `resume` (a span left open by a previous run on the same boot), the span continues:
    /// its stamps keep their base, and it ends with its correction as soon as the clock is
    /// trusted.
    pub fn configure(
        &self,
        cfg: &ClockConfig,
        status: SyncStatus,
        floor_ms: Option<i64>,
        resume: Option<Resume>,
    ) {
        let (wall, mono) = (self.source.wall_ms(), self.source.mono_ms());
        let mut s = self.state.lock();
        s.rtc = cfg.rtc;
        s.step_threshold_ms = ms(cfg.step_threshold);
        s.step_settle_ms = ms(cfg.step_settle);
        s.hold_upload_ms = ms(cfg.hold_upload);
        s.observe(wall, mono);
        s.status = status;
        if let Some(r) = resume {
            s.trusted = false;
            s.base = r.mono_base;
            s.free_reason = Some(r.reason);
            s.free_since = Some(r.from_ms);
            s.free_after_seq = s.seq.as_ref().map_or(0, |f| f());
        } else if s.trusted && !s.wall_ok() {
            let anchor = floor_ms.map_or(wall, |f| wall.max(f + 1));
            s.base = anchor - mono;
            s.go_free(FreeReason::Boot, anchor);
            return;
        }
        let jump = s.on_status(status, wall, mono);
        self.shift.fetch_add(jump, Ordering::AcqRel);
    }

    /// The timestamp for "now", milliseconds since the epoch: the wall clock while it is trusted,
    /// else the free-running stamp.
    pub fn now_ms(&self) -> i64 {
        let (wall, mono) = (self.source.wall_ms(), self.source.mono_ms());
        self.state.lock().observe(wall, mono)
    }

    /// The monotonic clock, milliseconds (for durations that must ignore every step).
    pub fn mono_ms(&self) -> i64 {
        self.source.mono_ms()
    }

    /// Reads the synchronisation status (blocking) and updates the state.
    pub fn refresh(&self) -> SyncStatus {
        let status = self.probe.probe();
        self.apply_status(status);
        status
    }

    /// Updates the state with a status read elsewhere.
    pub fn apply_status(&self, status: SyncStatus) {
        let (wall, mono) = (self.source.wall_ms(), self.source.mono_ms());
        let jump = self.state.lock().on_status(status, wall, mono);
        self.shift.fetch_add(jump, Ordering::AcqRel);
    }

    /// Reads the synchronisation status without changing anything (blocking).
    pub fn probe(&self) -> SyncStatus {
        self.probe.probe()
    }

    /// The events since the last call, oldest first.
    pub fn take_events(&self) -> Vec<ClockEvent> {
        std::mem::take(&mut self.state.lock().events)
    }

    /// The state now.
    pub fn snapshot(&self) -> ClockSnapshot {
        let s = self.state.lock();
        ClockSnapshot {
            status: s.status,
            probe: self.probe.name().to_owned(),
            rtc: s.rtc,
            trusted: s.trusted,
            free_reason: s.free_reason,
            free_since_ms: s.free_since,
            steps: s.steps,
            corrections: s.corrections,
            last_offset_ms: s.last_offset_ms,
        }
    }
}

/// One line for `markoff status`: the kernel's status and how readings are stamped.
pub fn describe(c: &ClockSnapshot) -> String {
    let status = match (c.status, c.rtc) {
        (SyncStatus::Synchronized, _) => "synchronized".to_owned(),
        (SyncStatus::Unsynchronized, true) => "not synchronized (rtc = true: trusted)".to_owned(),
        (SyncStatus::Unsynchronized, false) => "NOT synchronized".to_owned(),
        (SyncStatus::Unknown, _) => format!("status unknown ({} unavailable)", c.probe),
    };
    let stamps = if c.trusted {
        "readings stamped with the wall clock".to_owned()
    } else {
        let why = c.free_reason.map_or("", |r| match r {
            FreeReason::Boot => " since start",
            FreeReason::Step => " since the clock stepped",
            FreeReason::LostSync => " since synchronisation was lost",
        });
        format!(
            "readings stamped from the monotonic clock{why}, to be corrected when it is trusted"
        )
    };
    let mut line = format!("{status}, {stamps}");
    if c.steps > 0 {
        line.push_str(&format!(", {} step(s) seen", c.steps));
    }
    if let Some(o) = c.last_offset_ms {
        line.push_str(&format!(", last correction {:+.3} s", o as f64 / 1000.0));
    }
    line
}

static GLOBAL: OnceLock<Arc<Clock>> = OnceLock::new();

/// The process's clock: the system clocks and `timedatectl`, or the fake clock named by
/// [`FAKE_CLOCK_ENV`]. Trusts the wall clock until [`Clock::configure`] is called.
pub fn global() -> &'static Arc<Clock> {
    GLOBAL.get_or_init(|| {
        let clock = match fake_from_env() {
            Some(fake) => {
                let fake = Arc::new(fake);
                Clock::new(fake.clone(), fake)
            }
            None => Clock::new(Arc::new(SystemClock), Arc::new(TimedatectlProbe)),
        };
        Arc::new(clock)
    })
}

fn global_now() -> i64 {
    global().now_ms()
}

/// Routes [`crate::model::Timestamp::now`] through the process's clock.
pub fn install() -> &'static Arc<Clock> {
    crate::model::route_now(global_now);
    global()
}

/// The clock's metrics.
#[derive(Debug)]
pub struct ClockMetrics {
    /// 1 when the kernel reports the clock synchronised (or its status is unknown).
    pub synchronized: Gauge,
    /// 1 when stamps follow the wall clock, 0 while free-running.
    pub trusted: Gauge,
    /// Steps of the wall clock seen.
    pub steps: Counter,
    /// Free-running spans ended with a correction.
    pub corrections: Counter,
    /// The last correction, seconds.
    pub last_offset: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl MetricSet for ClockMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            synchronized: Gauge::default(),
            trusted: Gauge::default(),
            steps: Counter::default(),
            corrections: Counter::default(),
            last_offset: Gauge::default(),
        };
        registry.register(
            "clock_synchronized",
            "1 when the kernel reports the system clock synchronised (or cannot tell), else 0",
            m.synchronized.clone(),
        );
        registry.register(
            "clock_trusted",
            "1 when readings are stamped with the wall clock, 0 while stamps run on the monotonic clock",
            m.trusted.clone(),
        );
        registry.register(
            "clock_steps",
            "Steps of the wall clock against the monotonic clock",
            m.steps.clone(),
        );
        registry.register(
            "clock_corrections",
            "Spans of readings stamped from the monotonic clock whose offset to real time was learnt",
            m.corrections.clone(),
        );
        registry.register(
            "clock_last_offset_seconds",
            "The last offset learnt between stamps from the monotonic clock and real time",
            m.last_offset.clone(),
        );
        m
    }
}

impl ClockMetrics {
    /// Brings the metrics to `snap`.
    pub fn update(&self, snap: &ClockSnapshot) {
        self.synchronized
            .set(i64::from(snap.status != SyncStatus::Unsynchronized));
        self.trusted.set(i64::from(snap.trusted));
        let steps = self.steps.get();
        if snap.steps > steps {
            self.steps.inc_by(snap.steps - steps);
        }
        let corrections = self.corrections.get();
        if snap.corrections > corrections {
            self.corrections.inc_by(snap.corrections - corrections);
        }
        if let Some(o) = snap.last_offset_ms {
            self.last_offset.set(o as f64 / 1000.0);
        }
    }
}

#[cfg(test)]
mod tests;
