//! Who calls a state-changing endpoint of the local API (acknowledge, shelve, unshelve, out of
//! service, ask, confirm): established by the transport, never by what the body says.
//!
//! - On the Unix socket (`[http] socket`, group `markoff-operators`, mode 0660) the kernel gives
//!   the caller's uid (`SO_PEERCRED`). The uid's account name is looked up in `[[users]]` by
//!   `unix_user`; root (uid 0) without an entry of its own is an administrator named `root`; any
//!   other account acts as `unix:<name>` without a role, so the alarm service refuses and audits
//!   it. The audit channel is `socket:uid=<uid>`.
//! - On TCP only a bearer token of `[[http.token]]` (`Authorization: Bearer <token>`) names a
//!   caller, who acts as that entry's `user` with channel `token`. Without one the answer is 401
//!   and nothing happens; reads (`GET`) need nothing.
//!
//! The authenticated [`Actor`] is put into the request's extensions for the handlers; a `user`
//! or `channel` in the body is ignored. Refusals are counted in
//! `markoff_api_requests_refused_total{reason}`.
//!
//! Tokens are kept only as HMAC-SHA256 tags under a key drawn at start, compared in constant
//! time against every configured one, and read again when the config in force changes.

use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use sha2::Sha256;
use tracing::{error, warn};

use super::conn::Peer;
use crate::config::{Config, UserConfig};
use crate::context::Core;
use crate::model::{Actor, Role};
use crate::service::metrics::{Labels, MetricSet};

/// Counters of the local API's listeners.
#[derive(Debug)]
pub struct ApiMetrics {
    /// State-changing requests refused before they reached a handler, by `reason`
    /// (`no_credentials`, `bad_token`).
    pub refused: Family<Labels, Counter>,
    /// Connections closed to stay under a listener's cap, by `listener`.
    pub shed: Family<Labels, Counter>,
}

impl MetricSet for ApiMetrics {
    /// Registers `markoff_api_requests_refused_total` and `markoff_http_connections_shed_total`.
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            refused: Family::default(),
            shed: Family::default(),
        };
        registry.register(
            "api_requests_refused",
            "State-changing local API requests refused for want of an identity, by reason",
            m.refused.clone(),
        );
        registry.register(
            "http_connections_shed",
            "Connections closed to stay under a listener's connection cap, by listener",
            m.shed.clone(),
        );
        m
    }
}

impl ApiMetrics {
    fn count(&self, reason: &str) {
        self.refused
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc();
    }
}

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Default)]
struct Tags {
    from: Option<Arc<Config>>,
    entries: Vec<(String, [u8; 32])>,
}

/// The bearer tokens of `[[http.token]]`, as HMAC tags.
#[derive(Debug)]
pub struct ApiTokens {
    key: [u8; 32],
    tags: Mutex<Tags>,
}

impl Default for ApiTokens {
    fn default() -> Self {
        Self {
            key: rand::random(),
            tags: Mutex::new(Tags::default()),
        }
    }
}

/// Equality of two tags in time that does not depend on where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(&a[..], &b[..]))
}

impl ApiTokens {
    fn lock(&self) -> MutexGuard<'_, Tags> {
        self.tags.lock()
    }

    fn tag(&self, token: &str) -> [u8; 32] {
        // HMAC takes keys of any length: new_from_slice cannot fail here.
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.key) else {
            return [0; 32];
        };
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn entries(&self, cfg: &Arc<Config>) -> Vec<(String, [u8; 32])> {
        let mut t = self.lock();
        if t.from.as_ref().is_some_and(|c| Arc::ptr_eq(c, cfg)) {
            return t.entries.clone();
        }
        let mut entries = Vec::with_capacity(cfg.http.token.len());
        for (i, entry) in cfg.http.token.iter().enumerate() {
            match entry.secret().resolve() {
                Ok(secret) => entries.push((entry.user.clone(), self.tag(secret.expose()))),
                Err(e) => error!(
                    key = %format!("http.token.{i}"),
                    user = %entry.user,
                    error = %e,
                    "Cannot read an API token; it is not accepted."
                ),
            }
        }
        t.from = Some(cfg.clone());
        t.entries = entries.clone();
        entries
    }

    /// The login `token` stands for, if it is one of `[[http.token]]`.
    pub fn user_of(&self, cfg: &Arc<Config>, token: &str) -> Option<String> {
        let token = token.trim();
        if token.is_empty() {
            return None;
        }
        let candidate = self.tag(token);
        let mut found = None;
        for (user, tag) in self.entries(cfg) {
            // No early exit: every configured token is compared.
            if same(&candidate, &tag) && found.is_none() {
                found = Some(user);
            }
        }
        found
    }
}

/// The actor behind a Unix socket peer with `uid`, whose account is `name` (if it has one).
pub fn socket_actor(users: &[UserConfig], uid: u32, name: Option<&str>) -> Actor {
    let channel = format!("socket:uid={uid}");
    if let Some(u) = name.and_then(|n| users.iter().find(|u| u.unix_user.as_deref() == Some(n))) {
        return Actor {
            user: u.login.clone(),
            channel,
            role: Some(u.role),
        };
    }
    if uid == 0 {
        return Actor {
            user: "root".to_owned(),
            channel,
            role: Some(Role::Admin),
        };
    }
    Actor {
        user: name.map_or_else(|| format!("unix:uid={uid}"), |n| format!("unix:{n}")),
        channel,
        role: None,
    }
}

/// The account name of `uid` (from the passwd database), if any.
fn account_name(uid: u32) -> Option<String> {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => Some(u.name),
        Ok(None) => None,
        Err(e) => {
            warn!(uid, error = %e, "Cannot look up the account of a socket caller.");
            None
        }
    }
}

/// What the identity middleware needs.
#[derive(Clone, Debug)]
pub struct Gate {
    /// The shared core (config, metrics).
    pub core: Core,
    /// The bearer tokens.
    pub tokens: Arc<ApiTokens>,
}

/// Middleware of the state-changing routes: establishes the caller's [`Actor`] from the
/// transport and puts it into the request, or answers 401.
pub async fn require_caller(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let cfg = gate.core.config();
    let actor = match req.extensions().get::<Peer>().copied() {
        Some(Peer::Unix { uid, .. }) => {
            let name = account_name(uid);
            Some(socket_actor(&cfg.users, uid, name.as_deref()))
        }
        Some(Peer::Tcp(addr)) => {
            let bearer = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match bearer {
                None => {
                    gate.core
                        .metrics
                        .get::<ApiMetrics>()
                        .count("no_credentials");
                    return unauthorized(
                        "state-changing requests need the local socket or a bearer token; \
                         изменяющие запросы требуют локального сокета или токена",
                    );
                }
                Some(token) => match gate.tokens.user_of(&cfg, token) {
                    Some(user) => Some(Actor::by_login(&cfg.users, &user, "token")),
                    None => {
                        gate.core.metrics.get::<ApiMetrics>().count("bad_token");
                        warn!(client = %addr, "Local API request with an unknown bearer token refused.");
                        return unauthorized("unknown token; неизвестный токен");
                    }
                },
            }
        }
        // Not served by `super::conn` (a router used directly in a test): nobody.
        None => None,
    };
    let Some(actor) = actor else {
        gate.core
            .metrics
            .get::<ApiMetrics>()
            .count("no_credentials");
        return unauthorized("no identity; нет удостоверения личности");
    };
    req.extensions_mut().insert(actor);
    next.run(req).await
}

fn unauthorized(text: &str) -> Response {
    let mut res = (StatusCode::UNAUTHORIZED, format!("{text}\n")).into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"markoff\""),
    );
    res
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(extra: &str) -> Arc<Config> {
        let text = format!(
            "[gateway]\nid = \"gw\"\n\
             [[users]]\nlogin = \"ivan\"\nrole = \"operator\"\nunix_user = \"ivan-x\"\n\
             [[users]]\nlogin = \"olga\"\nrole = \"viewer\"\nunix_user = \"olga-x\"\n{extra}"
        );
        Arc::new(crate::config::parse_str(&text, Path::new("t.toml")).unwrap())
    }

    #[test]
    fn socket_callers_are_their_unix_account() {
        let cfg = config("");
        let ivan = socket_actor(&cfg.users, 1001, Some("ivan-x"));
        assert_eq!(
            (ivan.user.as_str(), ivan.channel.as_str(), ivan.role),
            ("ivan", "socket:uid=1001", Some(Role::Operator))
        );
        assert_eq!(
            socket_actor(&cfg.users, 1002, Some("olga-x")).role,
            Some(Role::Viewer)
        );
        let stranger = socket_actor(&cfg.users, 1003, Some("ivan"));
        assert_eq!(
            (stranger.user.as_str(), stranger.role),
            ("unix:ivan", None),
            "an account named like a login is not that login"
        );
        let root = socket_actor(&cfg.users, 0, Some("root"));
        assert_eq!((root.user.as_str(), root.role), ("root", Some(Role::Admin)));
        assert_eq!(socket_actor(&cfg.users, 4242, None).user, "unix:uid=4242");
    }

    #[test]
    fn tokens_name_their_user_and_nothing_else() {
        // PATH is always set: use it as the token so no variable has to be set.
        let path = std::env::var("PATH").unwrap();
        let cfg = config("[[http.token]]\nuser = \"ivan\"\ntoken_env = \"PATH\"\n");
        let tokens = ApiTokens::default();
        assert_eq!(tokens.user_of(&cfg, &path).as_deref(), Some("ivan"));
        assert_eq!(tokens.user_of(&cfg, "wrong"), None);
        assert_eq!(tokens.user_of(&cfg, ""), None);
        let reloaded = config("");
        assert_eq!(
            tokens.user_of(&reloaded, &path),
            None,
            "a removed token still works"
        );
    }

    #[test]
    fn validation_names_every_problem() {
        let text = "[gateway]\nid = \"gw\"\n\
             [http]\nsocket = \"api.sock\"\n\
             [[http.token]]\nuser = \"nobody\"\n\
             [[users]]\nlogin = \"ivan\"\nrole = \"operator\"\nunix_user = \"ivan-x\"\n\
             [[users]]\nlogin = \"anna\"\nrole = \"admin\"\nunix_user = \"ivan-x\"\n";
        let errors = crate::config::parse_str(text, Path::new("t.toml"))
            .expect_err("an invalid [http] validated");
        let paths: Vec<String> = errors.errors.into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "http.socket",
                "http.token.0.user",
                "http.token.0.token_env",
                "users.1.unix_user"
            ]
        );
    }
}
