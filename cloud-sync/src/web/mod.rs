//! `markoff-central serve`: the office web application over the central PostgreSQL.
//!
//! Owns: the HTTP server (axum), its routes, the session check in front of every page and API
//! route, security headers, and the connection pool (its own role, see
//! `markoff-central add-role --kind web`). Read-only except sessions, alarm comments and
//! requests to acknowledge or shelve an alarm (which its gateway pulls). Every read of synced
//! data runs in a transaction naming the request's session, and the database shows only the
//! buildings granted to its user (`data::begin`, migration 5).
//! docs/central-web.md describes every page and endpoint.
//!
//! # Layout
//! - `config`: the settings file and the database password's source.
//! - `users`: accounts, Argon2id hashes, `add-user` / `remove-user` / `users`.
//! - `session`: session and CSRF tokens, cookies, the session rows.
//! - `limit`: login rate limiting per client address and per account.
//! - `login`: the login form, logout.
//! - `data`: every SQL statement and the types the JSON API returns.
//! - `building`: a building laid out by floor and room.
//! - `plan`, `chart`: floor plans and history charts as SVG.
//! - `pages`, `alarm`: the HTML pages, in English or Russian (`words`: the language and the
//!   words for values and states); `api`: the JSON API.
//! - `requests`: acknowledging and shelving from the office (pulled by the gateways).
//! - `time`: timestamps and ages.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use markoff_proto::web_security;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use tokio::sync::Semaphore;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

mod alarm;
mod api;
mod building;
pub mod chart;
pub mod config;
pub mod data;
mod limit;
mod login;
mod pages;
pub mod plan;
pub mod requests;
mod session;
pub mod time;
pub mod users;
pub mod words;

pub use building::{BuildingView, FloorView, RoomKind, RoomReading, RoomView, TenantView};
pub use config::{ConfigError, LoginLimits, ServeConfig, SslMode};
pub use limit::LoginStats;
pub use users::{
    Access, UserAdded, UserError, WebUser, add_user, grant, list_users, remove_user, revoke,
};

/// Largest request body accepted (forms and JSON comments are small).
const BODY_LIMIT: usize = 64 * 1024;
/// Longest a request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often expired sessions are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// Password checks running at once (each takes tens of ms and 19 MiB).
const CONCURRENT_HASHES: usize = 2;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The settings are not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database refused the connection, or the schema or the role's grants are missing.
    #[error("{op} failed: {source}")]
    Database {
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The server's socket failed.
    #[error("serving HTTP failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl WebError {
    /// Whether the database could not be reached (exit code 69 in `markoff-central`).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Database { source, .. } if markoff_proto::is_unreachable(source))
    }
}

/// Shared by every request.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) pool: PgPool,
    pub(crate) cfg: ServeConfig,
    pub(crate) limiter: limit::LoginLimiter,
    /// A hash checked when the login does not exist, so that a wrong login and a wrong password
    /// take the same time.
    pub(crate) dummy_hash: String,
    pub(crate) hashing: Semaphore,
    /// `__Host-markoff_session` with secure cookies (the prefix makes browsers insist on
    /// `Secure` and path `/`), else `markoff_session`.
    pub(crate) session_cookie: &'static str,
    /// The login form's CSRF cookie.
    pub(crate) login_cookie: &'static str,
}

/// The application's state.
pub(crate) type AppState = Arc<Inner>;

/// Opens the pool as the configured role and checks that the schema and the role's grants are
/// there.
///
/// # Errors
/// [`WebError::Config`] (the password cannot be read, the URL is bad) or [`WebError::Database`].
pub async fn connect(cfg: &ServeConfig) -> Result<PgPool, WebError> {
    let mut opts =
        PgConnectOptions::from_str(&cfg.database_url).map_err(|e| ConfigError::Invalid {
            key: "database_url",
            message: e.to_string(),
        })?;
    if let Some(pw) = cfg.password()? {
        opts = opts.password(&pw);
    }
    opts = opts
        .ssl_mode(match cfg.sslmode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        })
        .application_name("markoff-central serve")
        .options([("statement_timeout", "30s")]);
    if let Some(ca) = &cfg.root_cert {
        opts = opts.ssl_root_cert(ca);
    }
    let pool = PgPoolOptions::new()
        .max_connections(cfg.pool_size)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts)
        .await
        .map_err(|source| WebError::Database {
            op: "connecting to the central database",
            source,
        })?;
    sqlx::query(
        "SELECT 1 FROM markoff.web_sessions, markoff.web_users, markoff.alarm_latest, \
         markoff.gateway_health LIMIT 0",
    )
    .execute(&pool)
    .await
    .map_err(|source| WebError::Database {
        op: "checking the schema (run `markoff-central migrate`, and grant the role with \
             `markoff-central add-role ROLE --kind web --existing`)",
        source,
    })?;
    Ok(pool)
}

/// Serves the application on `listener` until `shutdown` completes, then finishes the requests
/// in flight.
///
/// # Errors
/// [`WebError::Config`] for settings that do not validate; [`WebError::Serve`].
pub async fn serve(
    cfg: ServeConfig,
    pool: PgPool,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    if let Some(e) = cfg.validate().into_iter().next() {
        return Err(e.into());
    }
    let dummy_hash = tokio::task::spawn_blocking(|| {
        users::hash_password(&session::random_token()).unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    let secure = cfg.cookie_secure;
    let state: AppState = Arc::new(Inner {
        limiter: limit::LoginLimiter::new(cfg.login.clone()),
        pool: pool.clone(),
        cfg,
        dummy_hash,
        hashing: Semaphore::new(CONCURRENT_HASHES),
        session_cookie: if secure {
            "__Host-markoff_session"
        } else {
            "markoff_session"
        },
        login_cookie: if secure {
            "__Host-markoff_login"
        } else {
            "markoff_login"
        },
    });
    let sweeper = tokio::spawn(sweep_sessions(pool));
    let app = router(state);
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(WebError::Serve);
    sweeper.abort();
    result
}

async fn sweep_sessions(pool: PgPool) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        match session::sweep(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "Expired sessions deleted."),
            Err(e) => {
                tracing::warn!(error = %e, "Deleting expired sessions failed; retrying later.")
            }
        }
    }
}

fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/", get(pages::buildings))
        .route("/buildings/{building}", get(pages::building))
        .route("/buildings/{building}/plans/{floor}", get(pages::plan_svg))
        .route("/sensors/{gateway}/{sensor}", get(pages::sensor))
        .route(
            "/sensors/{gateway}/{sensor}/chart.svg",
            get(pages::chart_svg),
        )
        .route("/alarms/{gateway}/{alarm}", get(alarm::alarm))
        .route(
            "/alarms/{gateway}/{alarm}/comments",
            post(alarm::add_comment),
        )
        .route("/alarms/{gateway}/{alarm}/requests", post(requests::form))
        .route("/logout", post(login::logout))
        .route("/api/me", get(api::me))
        .route("/api/status", get(api::status))
        .route("/api/buildings", get(api::buildings))
        .route("/api/buildings/{building}", get(api::building))
        .route("/api/sensors/{gateway}/{sensor}", get(api::sensor))
        .route("/api/alarms/{gateway}/{alarm}", get(api::alarm))
        .route(
            "/api/alarms/{gateway}/{alarm}/comments",
            post(api::add_comment),
        )
        .route(
            "/api/alarms/{gateway}/{alarm}/requests",
            post(requests::json),
        )
        .fallback(not_found)
        // `layer`, not `route_layer`: unknown paths are refused like the others, so nobody
        // learns which exist without signing in.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/healthz", get(|| async { "ok\n" }))
        // Browsers ask for it on every site; answering here keeps it from the login redirect.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .merge(protected)
        .layer(middleware::from_fn(words::language))
        .layer(middleware::from_fn(same_origin))
        .layer(middleware::map_response(security_headers))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Refuses every protected route without a live session: 401 (JSON) for `/api/...`, a redirect
/// to the login form for pages. Passes the [`session::Session`] on as an extension.
async fn require_session(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = session::cookie(req.headers(), st.session_cookie).map(str::to_owned);
    let found = match token {
        Some(t) => session::find(&st.pool, &t).await,
        None => Ok(None),
    };
    let api = req.uri().path().starts_with("/api/");
    match found {
        Ok(Some(s)) => {
            req.extensions_mut().insert(s);
            next.run(req).await
        }
        Ok(None) if api => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error": "not signed in" })),
        )
            .into_response(),
        Ok(None) => {
            let next_path = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let to = if req.method() == Method::GET {
                format!("/login?next={}", login::url_encode(&next_path))
            } else {
                "/login".to_owned()
            };
            Redirect::to(&to).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "Session lookup failed.");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

/// Refuses a POST the browser says comes from elsewhere (`Origin`, `Sec-Fetch-Site`; the rules
/// shared with the LAN page, `markoff_proto::web_security`): a second line behind the CSRF tokens.
async fn same_origin(req: Request, next: Next) -> Response {
    let h = req.headers();
    let text = |name: &str| h.get(name).map(|v| v.to_str().unwrap_or_default());
    if req.method() == Method::POST
        && !web_security::same_origin(text("origin"), text("host"), text("sec-fetch-site"))
    {
        tracing::warn!(origin = ?h.get(header::ORIGIN), host = ?h.get(header::HOST), "Cross-origin POST refused.");
        return (StatusCode::FORBIDDEN, "cross-origin request refused\n").into_response();
    }
    next.run(req).await
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    res
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the last address in
/// `X-Forwarded-For` that is not one.
pub(crate) fn client_ip(
    headers: &HeaderMap,
    peer: ConnectInfo<SocketAddr>,
    trusted: &[IpAddr],
) -> IpAddr {
    let peer = peer.0.ip();
    if !trusted.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.7, 10.0.0.2"),
        );
        let proxy: IpAddr = [10, 0, 0, 2].into();
        let peer = |ip: IpAddr| ConnectInfo(SocketAddr::new(ip, 1234));
        assert_eq!(client_ip(&h, peer(proxy), &[]), proxy);
        assert_eq!(
            client_ip(&h, peer(proxy), &[proxy]),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }
}
