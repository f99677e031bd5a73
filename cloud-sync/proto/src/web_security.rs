//! The security rules both browser front ends follow, the gateway's LAN page and the central
//! web application: which POST counts as coming from the page itself, how the session cookie is
//! read and written, how secrets are compared, and how failed logins are limited. One rule set,
//! tested here; each caller maps its request headers onto the plain strings these functions take,
//! so the crate stays free of HTTP types.
//!
//! Login limiting counts failures per client address and per account, with a wait that doubles
//! after each failure past a free allowance. The counters live in the process: a restart forgets
//! them (docs/central-web.md, "Login rate limiting").

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Equality of two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}

/// The value of cookie `name` in a request's `Cookie` header values; an empty value counts as
/// absent.
pub fn cookie<'a>(headers: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    headers
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, path `/`, `Secure` when `secure`;
/// `max_age` `None` deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let age = max_age.map_or(0, |d| d.as_secs());
    let mut c = format!("{name}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Whether the browser says a request comes from the page itself: `Sec-Fetch-Site` (when sent)
/// is not `cross-site` or `same-site`, and `Origin` (when sent) is `http://` or `https://` and
/// the host the request was sent to (`Host`, compared without regard to case). An `Origin` of
/// `null`, or one without a `Host` to compare with, is refused. A browser that sends neither
/// header still has to present the session's CSRF token.
pub fn same_origin(origin: Option<&str>, host: Option<&str>, fetch_site: Option<&str>) -> bool {
    if fetch_site.is_some_and(|v| v == "cross-site" || v == "same-site") {
        return false;
    }
    let Some(origin) = origin else {
        return true;
    };
    match host {
        Some(host) => origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(host)),
        None => false,
    }
}

/// `[login]`: how failed logins are limited.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginLimits {
    /// Failed logins from one client address within `window` before each further attempt has to
    /// wait.
    pub free_failures_per_ip: u32,
    /// Failed logins for one account within `window` before each further attempt has to wait.
    pub free_failures_per_account: u32,
    /// How long a failure counts.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// The wait after the first failure past the free ones; it doubles with each further one.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    /// The longest wait.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            free_failures_per_ip: 20,
            free_failures_per_account: 5,
            window: Duration::from_secs(15 * 60),
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(15 * 60),
        }
    }
}

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

/// The failed-login counters, shared by every request. An empty account name (a login by
/// token alone, or an empty form) counts against the address only.
#[derive(Debug)]
pub struct LoginLimiter {
    limits: LoginLimits,
    ips: Mutex<HashMap<IpAddr, Entry>>,
    accounts: Mutex<HashMap<String, Entry>>,
    failures: AtomicU64,
    refused: AtomicU64,
    successes: AtomicU64,
}

/// The limiter's counters since start, for status pages and the logs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LoginStats {
    /// Logins that succeeded.
    pub successes: u64,
    /// Logins with a wrong account, password or token.
    pub failures: u64,
    /// Attempts refused without checking because their address or account had to wait.
    pub refused: u64,
    /// Addresses that must wait now.
    pub blocked_ips: usize,
    /// Accounts that must wait now.
    pub blocked_accounts: usize,
}

impl LoginLimiter {
    /// Counters under `limits`, all zero.
    pub fn new(limits: LoginLimits) -> Self {
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
    ///
    /// # Errors
    /// The wait still imposed on the address or the account.
    pub fn check(&self, ip: IpAddr, account: &str, now: Instant) -> Result<(), Duration> {
        let wait_ip = wait(&self.ips, &ip, now);
        let wait_account = if account.is_empty() {
            None
        } else {
            wait(&self.accounts, account, now)
        };
        match wait_ip.max(wait_account) {
            Some(w) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(w)
            }
            None => Ok(()),
        }
    }

    /// Counts a failed attempt; returns the wait it imposes on its address or account, if any.
    pub fn failed(&self, ip: IpAddr, account: &str, now: Instant) -> Option<Duration> {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let l = &self.limits;
        let a = fail(&self.ips, ip, now, l, l.free_failures_per_ip);
        let b = if account.is_empty() {
            None
        } else {
            fail(
                &self.accounts,
                account.to_owned(),
                now,
                l,
                l.free_failures_per_account,
            )
        };
        a.max(b)
    }

    /// Counts a successful login: the account's failures are forgotten (the address's are not,
    /// so one valid account cannot reset an address that guesses at others).
    pub fn succeeded(&self, account: &str) {
        self.successes.fetch_add(1, Ordering::Relaxed);
        self.accounts.lock().remove(account);
    }

    /// The counters now.
    pub fn stats(&self, now: Instant) -> LoginStats {
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
    K: std::borrow::Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized,
{
    let until = map.lock().get(key)?.blocked_until?;
    (until > now).then(|| until - now)
}

fn fail<K: Hash + Eq>(
    map: &Mutex<HashMap<K, Entry>>,
    key: K,
    now: Instant,
    limits: &LoginLimits,
    free: u32,
) -> Option<Duration> {
    let mut map = map.lock();
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
    map.lock()
        .values()
        .filter(|e| e.blocked_until.is_some_and(|u| u > now))
        .count()
}

#[cfg(test)]
mod tests;
