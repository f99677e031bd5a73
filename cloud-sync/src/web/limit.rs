//! Login rate limiting: failed logins counted per client address and per account, with a wait
//! that doubles after each failure past a free allowance.
//!
//! Owns: the counters and the decision whether an attempt may be checked at all. Does not own:
//! checking passwords (`auth`) or finding the client's address (`mod.rs`).
//!
//! The counters live in the process: a restart forgets them, and several `serve` processes
//! behind one address each count on their own (docs/central-web.md, "Login rate limiting").

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::config::LoginLimits;

/// Entries kept per map before expired ones are swept (bounds memory under a flood of
/// addresses or invented account names).
const MAX_ENTRIES: usize = 100_000;

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Failures since `since`.
    failures: u32,
    /// Start of the counting window.
    since: Instant,
    /// No attempt is checked before this.
    blocked_until: Option<Instant>,
}

/// The counters, shared by every request.
#[derive(Debug)]
pub(crate) struct LoginLimiter {
    limits: LoginLimits,
    ips: Mutex<HashMap<IpAddr, Entry>>,
    accounts: Mutex<HashMap<String, Entry>>,
    failures: AtomicU64,
    refused: AtomicU64,
    successes: AtomicU64,
}

/// The limiter's counters since start, for `/api/status` and the logs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LoginStats {
    /// Logins that succeeded.
    pub successes: u64,
    /// Logins with a wrong account or password.
    pub failures: u64,
    /// Attempts refused without checking because their address or account had to wait.
    pub refused: u64,
    /// Addresses that must wait now.
    pub blocked_ips: usize,
    /// Accounts that must wait now.
    pub blocked_accounts: usize,
}

impl LoginLimiter {
    pub(crate) fn new(limits: LoginLimits) -> Self {
        Self {
            limits,
            ips: Mutex::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
            failures: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            successes: AtomicU64::new(0),
        }
    }

    /// Whether an attempt from `ip` for `account` may be checked now; otherwise how long to wait.
    /// A refusal is counted.
    pub(crate) fn check(&self, ip: IpAddr, account: &str, now: Instant) -> Result<(), Duration> {
        let wait_ip = wait(&self.ips, &ip, now);
        let wait_account = wait(&self.accounts, account, now);
        match wait_ip.max(wait_account) {
            Some(w) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(w)
            }
            None => Ok(()),
        }
    }

    /// Counts a failed attempt; returns the wait it imposes on its address or account, if any.
    pub(crate) fn failed(&self, ip: IpAddr, account: &str, now: Instant) -> Option<Duration> {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let l = &self.limits;
        let a = fail(&self.ips, ip, now, l, l.free_failures_per_ip);
        let b = fail(
            &self.accounts,
            account.to_owned(),
            now,
            l,
            l.free_failures_per_account,
        );
        a.max(b)
    }

    /// Counts a successful login: the account's failures are forgotten (the address's are not,
    /// so one valid account cannot reset an address that guesses at others).
    pub(crate) fn succeeded(&self, account: &str) {
        self.successes.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut map) = self.accounts.lock() {
            map.remove(account);
        }
    }

    /// The counters now.
    pub(crate) fn stats(&self, now: Instant) -> LoginStats {
        LoginStats {
            successes: self.successes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            blocked_ips: count_blocked(&self.ips, now),
            blocked_accounts: count_blocked(&self.accounts, now),
        }
    }
}

fn wait<K, Q>(map: &Mutex<HashMap<K, Entry>>, key: &Q, now: Instant) -> Option<Duration>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    let map = map.lock().ok()?;
    let until = map.get(key)?.blocked_until?;
    (until > now).then(|| until - now)
}

fn fail<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Entry>>,
    key: K,
    now: Instant,
    limits: &LoginLimits,
    free: u32,
) -> Option<Duration> {
    let mut map = map.lock().ok()?;
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, e| now.duration_since(e.since) < limits.window);
        if map.len() >= MAX_ENTRIES {
            tracing::warn!(
                entries = map.len(),
                "Login limiter full of live entries; forgetting them all."
            );
            map.clear();
        }
    }
    let e = map.entry(key).or_insert(Entry {
        failures: 0,
        since: now,
        blocked_until: None,
    });
    if now.duration_since(e.since) >= limits.window {
        *e = Entry {
            failures: 0,
            since: now,
            blocked_until: None,
        };
    }
    e.failures = e.failures.saturating_add(1);
    if e.failures <= free {
        return None;
    }
    let doublings = (e.failures - free - 1).min(30);
    let delay = limits
        .base_delay
        .saturating_mul(1u32 << doublings)
        .min(limits.max_delay);
    e.blocked_until = Some(now + delay);
    // The window runs on while the address keeps failing, so a slow guesser stays limited.
    e.since = now;
    Some(delay)
}

fn count_blocked<K>(map: &Mutex<HashMap<K, Entry>>, now: Instant) -> usize {
    map.lock().map_or(0, |m| {
        m.values()
            .filter(|e| e.blocked_until.is_some_and(|u| u > now))
            .count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LoginLimits {
        LoginLimits {
            free_failures_per_ip: 4,
            free_failures_per_account: 2,
            window: Duration::from_secs(60),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
        }
    }

    #[test]
    fn accounts_wait_after_their_free_failures_and_the_wait_doubles() {
        let l = LoginLimiter::new(limits());
        let t0 = Instant::now();
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(l.check(ip, "ivan", t0).is_ok());
        assert_eq!(l.failed(ip, "ivan", t0), None);
        assert_eq!(l.failed(ip, "ivan", t0), None);
        assert_eq!(l.failed(ip, "ivan", t0), Some(Duration::from_secs(1)));
        assert_eq!(l.check(ip, "ivan", t0), Err(Duration::from_secs(1)));
        // Another account from another address is not affected.
        assert!(l.check([10, 0, 0, 2].into(), "olga", t0).is_ok());
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.check(ip, "ivan", t1).is_ok());
        assert_eq!(l.failed(ip, "ivan", t1), Some(Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        assert_eq!(l.failed(ip, "ivan", t2), Some(Duration::from_secs(4)));
        let t3 = t2 + Duration::from_secs(4);
        assert_eq!(l.failed(ip, "ivan", t3), Some(Duration::from_secs(8)));
        let t4 = t3 + Duration::from_secs(8);
        assert_eq!(
            l.failed(ip, "ivan", t4),
            Some(Duration::from_secs(8)),
            "capped"
        );
        let s = l.stats(t4);
        assert_eq!((s.failures, s.refused, s.blocked_accounts), (7, 1, 1));
        assert_eq!(
            s.blocked_ips, 1,
            "the address is past its 4 free failures too"
        );
        // Success forgets the account's failures.
        l.succeeded("ivan");
        assert_eq!(l.stats(t4).blocked_accounts, 0);
    }

    #[test]
    fn addresses_are_limited_across_accounts_and_windows_expire() {
        let l = LoginLimiter::new(limits());
        let t0 = Instant::now();
        let ip: IpAddr = [10, 0, 0, 9].into();
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            assert_eq!(l.failed(ip, name, t0), None, "failure {i}");
        }
        assert_eq!(l.failed(ip, "e", t0), Some(Duration::from_secs(1)));
        assert!(l.check(ip, "f", t0).is_err());
        assert!(l.check([10, 0, 0, 10].into(), "f", t0).is_ok());
        // A minute later the window has passed: counting starts again.
        let later = t0 + Duration::from_secs(61);
        assert!(l.check(ip, "f", later).is_ok());
        assert_eq!(l.failed(ip, "f", later), None);
    }
}
