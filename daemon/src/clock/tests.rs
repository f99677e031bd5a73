//! The clock's states over a fake wall clock, monotonic clock and status.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use super::*;

/// 2026-12-01T00:00:00Z.
const REAL: i64 = 1_764_547_200_000;

#[derive(Debug, Default)]
struct Manual {
    wall: AtomicI64,
    mono: AtomicI64,
    status: AtomicU8,
}

impl Manual {
    fn advance(&self, ms: i64) {
        self.wall.fetch_add(ms, Ordering::SeqCst);
        self.mono.fetch_add(ms, Ordering::SeqCst);
    }
    fn set_wall(&self, ms: i64) {
        self.wall.store(ms, Ordering::SeqCst);
    }
    fn set_status(&self, s: SyncStatus) {
        let code = match s {
            SyncStatus::Synchronized => 0,
            SyncStatus::Unsynchronized => 1,
            SyncStatus::Unknown => 2,
        };
        self.status.store(code, Ordering::SeqCst);
    }
}

impl TimeSource for Manual {
    fn wall_ms(&self) -> i64 {
        self.wall.load(Ordering::SeqCst)
    }
    fn mono_ms(&self) -> i64 {
        self.mono.load(Ordering::SeqCst)
    }
}

impl SyncProbe for Manual {
    fn probe(&self) -> SyncStatus {
        match self.status.load(Ordering::SeqCst) {
            0 => SyncStatus::Synchronized,
            1 => SyncStatus::Unsynchronized,
            _ => SyncStatus::Unknown,
        }
    }
    fn name(&self) -> &'static str {
        "manual"
    }
}

fn clock(wall: i64, status: SyncStatus, cfg: &ClockConfig) -> (Arc<Manual>, Clock) {
    let m = Arc::new(Manual::default());
    m.set_wall(wall);
    m.mono.store(5_000, Ordering::SeqCst);
    m.set_status(status);
    let c = Clock::new(m.clone(), m.clone());
    c.configure(cfg, status, None, None);
    (m, c)
}

#[test]
fn boot_at_1970_runs_free_and_the_correction_is_learnt_when_the_clock_synchronises() {
    let (m, c) = clock(0, SyncStatus::Unsynchronized, &ClockConfig::default());
    assert!(!c.snapshot().trusted);
    let first = c.now_ms();
    assert_eq!(first, 0);
    m.advance(10_000);
    let second = c.now_ms();
    assert_eq!(second, 10_000);
    // NTP sets the clock (a step) and then reports it synchronised.
    m.advance(5_000);
    m.set_wall(REAL);
    assert_eq!(
        c.now_ms(),
        15_000,
        "a step while free-running changes nothing"
    );
    m.set_status(SyncStatus::Synchronized);
    assert_eq!(c.refresh(), SyncStatus::Synchronized);
    // The step was just seen: the new time must settle first.
    assert!(!c.snapshot().trusted);
    m.advance(60_000);
    c.refresh();
    let snap = c.snapshot();
    assert!(snap.trusted);
    assert_eq!(snap.steps, 1);
    assert_eq!(snap.corrections, 1);
    assert_eq!(c.timeline_shift_ms(), REAL + 60_000 - 75_000);
    let events = c.take_events();
    assert_eq!(
        events.last(),
        Some(&ClockEvent::Corrected {
            from_ms: 0,
            to_ms: 75_000,
            offset_ms: REAL + 60_000 - 75_000,
        })
    );
    // Readings stamped 10 s after boot are corrected to real time, to the millisecond.
    let offset = snap.last_offset_ms.unwrap();
    // The clock was set to REAL 5 s after the second reading.
    assert_eq!(second + offset, REAL - 5_000);
    assert_eq!(c.now_ms(), REAL + 60_000);
}

#[test]
fn a_clock_synchronised_without_a_step_is_trusted_at_once() {
    let (m, c) = clock(
        REAL - 40,
        SyncStatus::Unsynchronized,
        &ClockConfig::default(),
    );
    m.advance(1_000);
    let stamp = c.now_ms();
    // NTP slews the last 40 ms, then reports synchronised.
    m.advance(1_000);
    m.wall.fetch_add(40, Ordering::SeqCst);
    m.set_status(SyncStatus::Synchronized);
    c.refresh();
    let snap = c.snapshot();
    assert!(snap.trusted);
    assert_eq!(snap.last_offset_ms, Some(40));
    assert_eq!(stamp + 40, REAL + 1_000);
}

#[test]
fn a_backward_step_while_trusted_keeps_stamps_going_forward() {
    let (m, c) = clock(REAL, SyncStatus::Synchronized, &ClockConfig::default());
    assert!(c.snapshot().trusted);
    m.advance(1_000);
    let before = c.now_ms();
    assert_eq!(before, REAL + 1_000);
    // Someone sets the clock an hour back; the kernel no longer calls it synchronised.
    m.set_wall(REAL + 1_000 - 3_600_000);
    m.set_status(SyncStatus::Unsynchronized);
    m.advance(1_000);
    let after = c.now_ms();
    assert_eq!(
        after,
        REAL + 2_000,
        "stamps continue from the monotonic clock"
    );
    let snap = c.snapshot();
    assert!(!snap.trusted);
    assert_eq!(snap.free_reason, Some(FreeReason::Step));
    assert_eq!(snap.steps, 1);
    // NTP puts it right again: the span's correction is (nearly) zero.
    m.advance(120_000);
    m.set_wall(REAL + 122_000);
    m.set_status(SyncStatus::Synchronized);
    c.refresh();
    assert!(!c.snapshot().trusted, "the step back must settle first");
    m.advance(60_000);
    c.refresh();
    let snap = c.snapshot();
    assert!(snap.trusted);
    assert_eq!(snap.steps, 2);
    assert_eq!(snap.last_offset_ms, Some(0));
}

#[test]
fn a_step_the_kernel_still_calls_synchronised_is_accepted_after_it_settles() {
    let cfg = ClockConfig {
        step_settle: Duration::from_secs(30),
        ..ClockConfig::default()
    };
    let (m, c) = clock(REAL, SyncStatus::Synchronized, &cfg);
    m.advance(1_000);
    m.wall.fetch_add(-3_600_000, Ordering::SeqCst);
    assert_eq!(c.now_ms(), REAL + 1_000);
    m.advance(10_000);
    c.refresh();
    assert!(!c.snapshot().trusted, "not before step_settle");
    m.advance(20_000);
    c.refresh();
    let snap = c.snapshot();
    assert!(snap.trusted);
    assert_eq!(snap.last_offset_ms, Some(-3_600_000));
}

#[test]
fn rtc_trusts_an_unsynchronised_clock_and_losing_sync_runs_free() {
    let cfg = ClockConfig {
        rtc: true,
        ..ClockConfig::default()
    };
    let (_m, c) = clock(REAL, SyncStatus::Unsynchronized, &cfg);
    assert!(c.snapshot().trusted);

    let (m, c) = clock(REAL, SyncStatus::Synchronized, &ClockConfig::default());
    m.set_status(SyncStatus::Unsynchronized);
    c.refresh();
    let snap = c.snapshot();
    assert!(!snap.trusted);
    assert_eq!(snap.free_reason, Some(FreeReason::LostSync));
    // An unknown status (no systemd) keeps the wall clock, as before.
    let (_m, c) = clock(REAL, SyncStatus::Unknown, &ClockConfig::default());
    assert!(c.snapshot().trusted);
}

#[test]
fn the_boot_anchor_is_never_before_the_newest_stored_stamp() {
    let m = Arc::new(Manual::default());
    m.set_status(SyncStatus::Unsynchronized);
    let c = Clock::new(m.clone(), m.clone());
    c.configure(
        &ClockConfig::default(),
        SyncStatus::Unsynchronized,
        Some(REAL),
        None,
    );
    assert_eq!(c.now_ms(), REAL + 1);
    assert_eq!(c.snapshot().free_since_ms, Some(REAL + 1));
}

#[test]
fn metrics_follow_the_snapshot() {
    let (m, c) = clock(REAL, SyncStatus::Synchronized, &ClockConfig::default());
    let metrics = crate::service::metrics::Metrics::new();
    let cm = metrics.get::<ClockMetrics>();
    m.wall.fetch_add(10_000, Ordering::SeqCst);
    c.now_ms();
    cm.update(&c.snapshot());
    cm.update(&c.snapshot());
    let text = metrics.render();
    assert!(text.contains("markoff_clock_steps_total 1"), "{text}");
    assert!(text.contains("markoff_clock_synchronized 1"), "{text}");
    assert!(text.contains("markoff_clock_trusted 0"), "{text}");
}
