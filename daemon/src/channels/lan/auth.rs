//! Who is logged in to the LAN page: tokens checked in constant time, sessions behind a random
//! id in an `HttpOnly; SameSite=Strict` cookie, a CSRF token per session, and the limit on failed
//! logins per client address (the rules shared with the office web application,
//! `markoff_proto::web_security`).
//!
//! Owns: the in-memory sessions (lost on restart: people log in again) and failure counters.
//! Does not own: roles (looked up in `[[users]]` at every request, so a reload applies at once)
//! or what the page shows.
//!
//! Tokens are never kept or compared as text: each configured token is reduced to an HMAC-SHA256
//! under a key drawn at start, and a login compares the HMAC of what was typed against every
//! configured one with a constant-time comparison, without stopping at the first match. The
//! tokens are read again whenever the config in force changes (SIGHUP), and a session whose
//! token is no longer configured for its user ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
pub(crate) use markoff_proto::web_security::constant_time_eq;
use markoff_proto::web_security::{LoginLimiter, LoginLimits};
use parking_lot::Mutex;
use sha2::Sha256;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::model::Lang;

type HmacSha256 = Hmac<Sha256>;

/// Name of the session cookie.
pub(crate) const COOKIE: &str = "markoff_lan";
/// Failed logins from one address within [`FAILURE_WINDOW`] after which each further attempt has
/// to wait (refused outright until then).
pub(crate) const MAX_FAILURES: u32 = 10;
/// How long failed logins are remembered.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(600);
/// Longest delay of the answer to a failed login.
const MAX_DELAY: Duration = Duration::from_secs(3);
/// Sessions kept at once; the oldest goes first.
const MAX_SESSIONS: usize = 256;
/// Question and answer pairs kept per session for the chat box.
pub(crate) const CHAT_KEPT: usize = 12;

/// One question and its answer (or the outcome of a confirmation), as the chat box shows it.
#[derive(Clone, Debug)]
pub(crate) struct Exchange {
    /// What the person typed or did.
    pub(crate) question: String,
    /// The assistant's reply; `None` for the outcome of a confirmation (in `note`).
    pub(crate) reply: Option<crate::agent::Reply>,
    /// A line of outcome instead of a reply.
    pub(crate) note: Option<String>,
}

/// A logged-in browser.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// The `[[users]]` login.
    pub(crate) user: String,
    /// HMAC of the token used, to end the session when that token is no longer configured.
    tag: [u8; 32],
    /// Sent back in every form; a POST without it is refused.
    pub(crate) csrf: String,
    /// Conversation key of the assistant (`lan:<user>:<random>`); not the cookie.
    pub(crate) conversation: String,
    /// Language chosen with `?lang=`, if any.
    pub(crate) lang: Option<Lang>,
    /// Recent questions and answers, oldest first.
    pub(crate) chat: Vec<Exchange>,
    /// A one-time message for the next page (ok?, text), e.g. after an acknowledgement.
    pub(crate) flash: Option<(bool, String)>,
    created: Instant,
    expires: Instant,
}

/// Outcome of a login attempt.
#[derive(Debug)]
pub(crate) enum Login {
    /// A new session: its cookie value.
    Ok {
        /// The session id.
        id: String,
        /// Who logged in.
        user: String,
    },
    /// Wrong token; the caller waits `delay` before answering (the wait it imposes, capped).
    Refused {
        /// Delay before the answer.
        delay: Duration,
    },
    /// Too many failures from this address; refused without looking at the token.
    Locked,
}

#[derive(Debug, Default)]
struct Tokens {
    /// The config the entries were read from.
    from: Option<Arc<Config>>,
    /// (user, HMAC of the token).
    entries: Vec<(String, [u8; 32])>,
}

/// Sessions, tokens and failure counters of the LAN page.
#[derive(Debug)]
pub(crate) struct Auth {
    key: [u8; 32],
    tokens: Mutex<Tokens>,
    sessions: Mutex<HashMap<String, Session>>,
    failures: LoginLimiter,
}

/// `n` random bytes as lowercase hex.
fn random_hex<const N: usize>() -> String {
    let bytes: [u8; N] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Auth {
    /// Fresh state with a new HMAC key.
    pub(crate) fn new() -> Self {
        Self {
            key: rand::random(),
            tokens: Mutex::new(Tokens::default()),
            sessions: Mutex::new(HashMap::new()),
            failures: LoginLimiter::new(LoginLimits {
                free_failures_per_ip: MAX_FAILURES,
                window: FAILURE_WINDOW,
                max_delay: FAILURE_WINDOW,
                ..LoginLimits::default()
            }),
        }
    }

    fn tag(&self, token: &str) -> [u8; 32] {
        // HMAC takes keys of any length: new_from_slice cannot fail here.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return [0; 32],
        };
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The configured (user, tag) pairs of `cfg`, read again when the config changed. A token
    /// that cannot be read is left out and logged (never its value).
    fn entries(&self, cfg: &Arc<Config>) -> Vec<(String, [u8; 32])> {
        let mut t = self.tokens.lock();
        if t.from.as_ref().is_some_and(|c| Arc::ptr_eq(c, cfg)) {
            return t.entries.clone();
        }
        let mut entries = Vec::with_capacity(cfg.lan.token.len());
        for (i, entry) in cfg.lan.token.iter().enumerate() {
            match entry.secret().resolve() {
                Ok(secret) => entries.push((entry.user.clone(), self.tag(secret.expose()))),
                Err(e) => error!(
                    key = %format!("lan.token.{i}"),
                    user = %entry.user,
                    error = %e,
                    "Cannot read a LAN page token; that person cannot log in."
                ),
            }
        }
        let users = entries.len();
        if t.from.is_some() {
            info!(
                tokens = users,
                "LAN page tokens read again after a config change."
            );
        }
        t.from = Some(cfg.clone());
        t.entries = entries.clone();
        entries
    }

    /// How many configured tokens can be read (0: nobody can log in).
    pub(crate) fn usable_tokens(&self, cfg: &Arc<Config>) -> usize {
        self.entries(cfg).len()
    }

    /// Checks `token` from `addr`; on success opens a session.
    pub(crate) fn login(&self, cfg: &Arc<Config>, addr: IpAddr, token: &str) -> Login {
        let now = Instant::now();
        // A token login names no account: failures count against the address.
        if self.failures.check(addr, "", now).is_err() {
            return Login::Locked;
        }
        let candidate = self.tag(token.trim());
        let mut found: Option<String> = None;
        for (user, tag) in self.entries(cfg) {
            // No early exit: every configured token is compared.
            if constant_time_eq(&candidate, &tag) && found.is_none() {
                found = Some(user);
            }
        }
        let Some(user) = found.filter(|_| !token.trim().is_empty()) else {
            let wait = self.failures.failed(addr, "", now);
            if let Some(wait) = wait {
                warn!(client = %addr, wait = ?wait, "Too many failed LAN page logins; refusing this address for a while.");
            }
            return Login::Refused {
                delay: wait.unwrap_or_default().min(MAX_DELAY),
            };
        };
        self.failures.succeeded(&user);
        let id = random_hex::<32>();
        let session = Session {
            user: user.clone(),
            tag: candidate,
            csrf: random_hex::<16>(),
            conversation: format!("lan:{user}:{}", random_hex::<4>()),
            lang: None,
            chat: Vec::new(),
            flash: None,
            created: now,
            expires: now + cfg.lan.session_ttl,
        };
        let mut sessions = self.sessions.lock();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), session);
        Login::Ok { id, user }
    }

    /// The session behind cookie value `id`, if it is live and its token is still configured
    /// for its user.
    pub(crate) fn session(&self, cfg: &Arc<Config>, id: &str) -> Option<Session> {
        let entries = self.entries(cfg);
        let now = Instant::now();
        let mut sessions = self.sessions.lock();
        let s = sessions.get(id)?;
        let still = entries
            .iter()
            .any(|(user, tag)| *user == s.user && constant_time_eq(tag, &s.tag));
        if s.expires <= now || !still {
            sessions.remove(id);
            return None;
        }
        Some(s.clone())
    }

    /// Changes session `id` in place (language, chat); nothing when it is gone.
    pub(crate) fn update(&self, id: &str, f: impl FnOnce(&mut Session)) {
        if let Some(s) = self.sessions.lock().get_mut(id) {
            f(s);
        }
    }

    /// Adds an exchange to the chat of session `id`, keeping the last [`CHAT_KEPT`].
    pub(crate) fn push_chat(&self, id: &str, exchange: Exchange) {
        self.update(id, |s| {
            s.chat.push(exchange);
            let extra = s.chat.len().saturating_sub(CHAT_KEPT);
            s.chat.drain(..extra);
        });
    }

    /// Ends session `id`.
    pub(crate) fn logout(&self, id: &str) {
        self.sessions.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(env_name: &str) -> Arc<Config> {
        let text = format!(
            "[gateway]\nid = \"gw\"\n[lan]\nenabled = true\n\
             [[lan.token]]\nuser = \"ivan\"\ntoken_env = \"{env_name}\"\n\
             [[users]]\nlogin = \"ivan\"\nrole = \"operator\"\n"
        );
        Arc::new(crate::config::parse_str(&text, Path::new("t.toml")).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn wrong_tokens_are_delayed_then_locked_and_a_right_one_opens_a_session() {
        // PATH is always set: use it as the "token" so no variable has to be set.
        let path = std::env::var("PATH").unwrap();
        let cfg = config("PATH");
        let auth = Auth::new();
        assert_eq!(auth.usable_tokens(&cfg), 1);
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        let Login::Refused { delay } = auth.login(&cfg, addr, "wrong") else {
            panic!("a wrong token was accepted")
        };
        assert_eq!(
            delay,
            Duration::ZERO,
            "the free failures are answered at once"
        );
        assert!(matches!(auth.login(&cfg, addr, ""), Login::Refused { .. }));
        let Login::Ok { id, user } = auth.login(&cfg, addr, &path) else {
            panic!("the right token was refused")
        };
        assert_eq!(user, "ivan");
        let s = auth.session(&cfg, &id).expect("a live session");
        assert!(s.conversation.starts_with("lan:ivan:"));
        assert_eq!(s.csrf.len(), 32);
        assert!(auth.session(&cfg, "nope").is_none());

        for _ in 0..MAX_FAILURES {
            let _refused = auth.login(&cfg, addr, "wrong");
        }
        assert!(matches!(auth.login(&cfg, addr, &path), Login::Locked));
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(matches!(auth.login(&cfg, other, &path), Login::Ok { .. }));
        tokio::time::advance(FAILURE_WINDOW).await;
        assert!(matches!(auth.login(&cfg, addr, &path), Login::Ok { .. }));

        tokio::time::advance(cfg.lan.session_ttl).await;
        assert!(
            auth.session(&cfg, &id).is_none(),
            "the session outlived its ttl"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_ends_when_its_token_is_no_longer_configured() {
        let path = std::env::var("PATH").unwrap();
        let auth = Auth::new();
        let cfg = config("PATH");
        let Login::Ok { id, .. } = auth.login(&cfg, "192.0.2.1".parse().unwrap(), &path) else {
            panic!("refused")
        };
        let reloaded = config("HOME");
        assert!(auth.session(&reloaded, &id).is_none());
    }

    #[tokio::test]
    async fn chat_keeps_the_last_exchanges() {
        let path = std::env::var("PATH").unwrap();
        let auth = Auth::new();
        let cfg = config("PATH");
        let Login::Ok { id, .. } = auth.login(&cfg, "192.0.2.1".parse().unwrap(), &path) else {
            panic!("refused")
        };
        for i in 0..CHAT_KEPT + 3 {
            auth.push_chat(
                &id,
                Exchange {
                    question: format!("q{i}"),
                    reply: None,
                    note: None,
                },
            );
        }
        let chat = auth.session(&cfg, &id).unwrap().chat;
        assert_eq!(chat.len(), CHAT_KEPT);
        assert_eq!(chat[0].question, "q3");
    }
}
