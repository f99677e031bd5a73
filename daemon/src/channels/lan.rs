//! The LAN page: what on-site staff open in a browser on the building LAN when the internet is
//! down. A second listener (`[lan]`, off by default) that serves only the page and what it needs,
//! never the local API:
//!
//! - `GET /`: the login form without a valid session; else the dashboard: status, open alarms
//!   (an Acknowledge button for operators), floor plans, latest readings and the chat box.
//!   `?lang=en|ru` picks the language (kept for the session); else `Accept-Language`.
//! - `POST /login` (form `token`): a session cookie (`HttpOnly; SameSite=Strict`, a random id);
//!   failed attempts are delayed, counted in `markoff_lan_logins_total{outcome}` and, past
//!   `auth::MAX_FAILURES` (10 in 10 minutes) from one address, refused for a while. `POST /logout`.
//! - `POST /alarms/{id}/ack`, `POST /ask` (form `text`), `POST /confirm` (form `token`): the
//!   session's person acts (roles from `[[users]]`; the alarm service checks and audits). Every
//!   POST needs the session's CSRF token and, when the browser sends one, a same-origin `Origin`.
//! - `GET /plan.png?floor=&measure=`, `GET /chart.png?sensor=&since=`: pictures (see
//!   `pictures`); 401 without a session.
//!
//! Every answer carries `Cache-Control: no-store` and a content security policy that allows no
//! script. The bound address is recorded in `markoff.lan` beside the buffer (useful with port 0).
//! Connections are served with the idle timeout and connection cap of `super::conn`.
//!
//! Owns: the page's routes, sessions and presentation. Does not own: the answers (see
//! `crate::agent`), the alarm lifecycle (see `crate::alarms`), drawing (see `crate::render`).

mod auth;
pub mod config;
mod dashboard;
mod page;
mod pictures;
mod request;
pub(crate) mod words;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Form, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use markoff_proto::web_security::set_cookie;
use maud::Markup;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::{error, info, warn};

use self::auth::{Auth, Exchange, Login, Session};
pub use self::config::{LanConfig, LanTokenConfig};
use self::dashboard::dashboard;
use self::request::{accept_language, page_lang, parse_lang, same_origin, session_cookie};
use crate::agent::Agent;
use crate::agent::text::acked;
use crate::alarms::AlarmError;
use crate::alarms::engine::Refusal;
use crate::config::Config;
use crate::context::Core;
use crate::model::{Actor, Lang, Role};
use crate::service::metrics::{Labels, MetricSet};
use crate::service::supervisor::{Restart, Supervisor, TaskError};

/// Largest form accepted (a question is at most 4000 characters).
const BODY_LIMIT: usize = 32 * 1024;
/// Time for one request; a question may take the assistant's whole turn (at most 10 minutes).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(660);
/// The content security policy: no script at all, pictures and forms from the page only.
const CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Counters of the LAN page.
#[derive(Debug)]
pub struct LanMetrics {
    /// Login attempts, by `outcome` (`ok`, `bad_token`, `rate_limited`).
    pub logins: Family<Labels, Counter>,
}

impl MetricSet for LanMetrics {
    /// Registers the metrics under `markoff_lan_*`.
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            logins: Family::default(),
        };
        registry.register(
            "lan_logins",
            "Login attempts on the LAN page, by outcome (ok, bad_token, rate_limited)",
            m.logins.clone(),
        );
        m
    }
}

impl LanMetrics {
    fn count(&self, outcome: &str) {
        self.logins
            .get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())])
            .inc();
    }
}

/// The file next to the buffer that records the LAN page's bound URL.
pub fn lan_file(db_path: &Path) -> PathBuf {
    db_path.with_file_name("markoff.lan")
}

/// Binds `[lan] listen`, records the address in [`lan_file`] and starts the supervised `lan`
/// task, stopped by `token` with the other downstream tasks. Returns the bound address; `None`
/// (logged as an error, the gateway keeps running) when the address cannot be bound or no token
/// can be read.
pub async fn start(
    core: &Core,
    agent: &Agent,
    supervisor: &Supervisor,
    token: CancellationToken,
    db_path: &Path,
) -> Option<SocketAddr> {
    let cfg = core.config();
    let auth = Arc::new(Auth::new());
    let usable = auth.usable_tokens(&cfg);
    if usable == 0 {
        error!("No [[lan.token]] can be read; the LAN page is not started.");
        return None;
    }
    let listener = match tokio::net::TcpListener::bind(cfg.lan.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(addr = %cfg.lan.listen, error = %e, "Cannot listen for the LAN page ([lan] listen); it is not started.");
            return None;
        }
    };
    let addr = listener.local_addr().ok();
    if let Some(addr) = addr {
        let file = lan_file(db_path);
        if let Err(e) = std::fs::write(&file, format!("http://{addr}\n")) {
            warn!(file = %file.display(), error = %e, "Cannot record the LAN page address.");
        }
    }
    let (core, agent) = (core.clone(), agent.clone());
    let mut listener = Some(listener);
    supervisor.spawn("lan", Restart::OnFailure, token, move |child| {
        let (core, agent) = (core.clone(), agent.clone());
        let auth = auth.clone();
        let listener = listener.take();
        async move {
            let listener = match listener {
                Some(l) => l,
                None => tokio::net::TcpListener::bind(core.config().lan.listen)
                    .await
                    .map_err(|e| TaskError::new("cannot listen again", e))?,
            };
            serve(listener, core, agent, auth, child).await
        }
    });
    if let Some(a) = addr {
        info!(addr = %a, tokens = usable, "LAN page listening.");
    }
    addr
}

/// Serves the page on `listener` until `token` is cancelled.
async fn serve(
    listener: tokio::net::TcpListener,
    core: Core,
    agent: Agent,
    auth: Arc<Auth>,
    token: CancellationToken,
) -> Result<(), TaskError> {
    let shed = core
        .metrics
        .get::<super::api_auth::ApiMetrics>()
        .shed
        .clone();
    let app = router(core, agent, auth);
    super::conn::serve(
        listener,
        "lan",
        app,
        super::conn::Limits::default(),
        shed,
        token,
    )
    .await
}

#[derive(Clone, Debug)]
struct Page {
    core: Core,
    agent: Agent,
    auth: Arc<Auth>,
}

/// The router of the page: nothing else is reachable through this listener.
fn router(core: Core, agent: Agent, auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", get(index).post(login))
        .route("/logout", post(logout))
        .route("/alarms/{id}/ack", post(ack))
        .route("/ask", post(ask))
        .route("/confirm", post(confirm))
        .route("/plan.png", get(plan))
        .route("/chart.png", get(chart))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::map_response(protect))
        .with_state(Page { core, agent, auth })
}

/// Headers on every answer: never cached, no script, not framed, no referrer to other sites
/// (`same-origin`: with `no-referrer` a browser's form posts carry `Origin: null`).
async fn protect(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// A logged-in request.
#[derive(Debug)]
struct Who {
    id: String,
    session: Session,
    cfg: Arc<Config>,
}

impl Who {
    fn actor(&self) -> Actor {
        Actor::by_login(&self.cfg.users, &self.session.user, "lan")
    }

    fn operator(&self) -> bool {
        self.actor().role.is_some_and(Role::may_act)
    }
}

impl Page {
    fn who(&self, headers: &HeaderMap) -> Option<Who> {
        let id = session_cookie(headers)?;
        let cfg = self.core.config();
        let session = self.auth.session(&cfg, &id)?;
        Some(Who { id, session, cfg })
    }

    /// A POST is the page's own: the session's CSRF token, and a same-origin browser.
    fn genuine(who: &Who, headers: &HeaderMap, csrf: &str) -> bool {
        same_origin(headers) && auth::constant_time_eq(csrf.as_bytes(), who.session.csrf.as_bytes())
    }
}

// === handlers ===

#[derive(Debug, Default, Deserialize)]
struct IndexQuery {
    #[serde(default)]
    lang: Option<String>,
}

async fn index(State(p): State<Page>, Query(q): Query<IndexQuery>, headers: HeaderMap) -> Response {
    let chosen = q.lang.as_deref().and_then(parse_lang);
    let Some(who) = p.who(&headers) else {
        let lang = chosen.unwrap_or_else(|| accept_language(&headers));
        return html(StatusCode::OK, page::login(lang, None));
    };
    if let Some(l) = chosen {
        p.auth.update(&who.id, |s| s.lang = Some(l));
    }
    let lang = chosen.unwrap_or_else(|| page_lang(&who.session, &headers));
    let mut flash = None;
    p.auth.update(&who.id, |s| flash = s.flash.take());
    html(StatusCode::OK, dashboard(&p, &who, lang, flash).await)
}

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    lang: Option<String>,
}

async fn login(
    State(p): State<Page>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = f
        .lang
        .as_deref()
        .and_then(parse_lang)
        .unwrap_or_else(|| accept_language(&headers));
    let w = page::words(lang);
    if !same_origin(&headers) {
        return html(StatusCode::FORBIDDEN, page::message(lang, w.expired));
    }
    let cfg = p.core.config();
    let metrics = p.core.metrics.get::<LanMetrics>();
    match p.auth.login(&cfg, client.ip(), &f.token) {
        Login::Ok { id, user } => {
            metrics.count("ok");
            info!(user = %user, client = %client.ip(), "LAN page login.");
            if f.lang.as_deref().and_then(parse_lang).is_some() {
                p.auth.update(&id, |s| s.lang = Some(lang));
            }
            let cookie = set_cookie(auth::COOKIE, &id, Some(cfg.lan.session_ttl), false);
            redirect_with_cookie("/", &cookie)
        }
        Login::Refused { delay } => {
            metrics.count("bad_token");
            warn!(client = %client.ip(), "LAN page login refused: wrong token.");
            tokio::time::sleep(delay).await;
            html(
                StatusCode::UNAUTHORIZED,
                page::login(lang, Some(w.wrong_token)),
            )
        }
        Login::Locked => {
            metrics.count("rate_limited");
            html(
                StatusCode::TOO_MANY_REQUESTS,
                page::login(lang, Some(w.locked)),
            )
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(State(p): State<Page>, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Response {
    if let Some(who) = p.who(&headers)
        && Page::genuine(&who, &headers, &f.csrf)
    {
        p.auth.logout(&who.id);
        info!(user = %who.session.user, "LAN page logout.");
    }
    let cookie = set_cookie(auth::COOKIE, "", None, false);
    redirect_with_cookie("/", &cookie)
}

async fn ack(
    State(p): State<Page>,
    UrlPath(id): UrlPath<i64>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let Some(who) = p.who(&headers) else {
        return redirect("/");
    };
    let lang = page_lang(&who.session, &headers);
    if !Page::genuine(&who, &headers, &f.csrf) {
        return html(
            StatusCode::FORBIDDEN,
            page::message(lang, page::words(lang).expired),
        );
    }
    match p.core.alarms.ack(id, who.actor()).await {
        Ok(outcome) => {
            let text = acked(lang, id, &outcome.alarm.alert);
            p.auth.update(&who.id, |s| s.flash = Some((true, text)));
            redirect("/#alarms")
        }
        Err(e) => html(alarm_status(&e), page::message(lang, &refusal(lang, &e))),
    }
}

#[derive(Debug, Default, Deserialize)]
struct AskForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

async fn ask(State(p): State<Page>, headers: HeaderMap, Form(f): Form<AskForm>) -> Response {
    let Some(who) = p.who(&headers) else {
        return redirect("/");
    };
    let lang = page_lang(&who.session, &headers);
    if !Page::genuine(&who, &headers, &f.csrf) {
        return html(
            StatusCode::FORBIDDEN,
            page::message(lang, page::words(lang).expired),
        );
    }
    if f.text.trim().is_empty() {
        return redirect("/#chat");
    }
    let req = super::agent_api::AskRequest {
        text: f.text.clone(),
        session: Some(who.session.conversation.clone()),
        lang: Some(lang),
    };
    let question = super::agent_api::question(&req, who.actor());
    let reply = p.agent.ask(&p.core, question).await;
    p.auth.push_chat(
        &who.id,
        Exchange {
            question: req
                .text
                .chars()
                .take(super::agent_api::MAX_QUESTION_CHARS)
                .collect(),
            reply: Some(reply),
            note: None,
        },
    );
    redirect("/#chat")
}

#[derive(Debug, Default, Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

async fn confirm(
    State(p): State<Page>,
    headers: HeaderMap,
    Form(f): Form<ConfirmForm>,
) -> Response {
    let Some(who) = p.who(&headers) else {
        return redirect("/");
    };
    let lang = page_lang(&who.session, &headers);
    let w = page::words(lang);
    if !Page::genuine(&who, &headers, &f.csrf) {
        return html(StatusCode::FORBIDDEN, page::message(lang, w.expired));
    }
    let note = match p.agent.confirm(&p.core, f.token.trim(), who.actor()).await {
        Ok(outcome) => acked(lang, outcome.alarm.id, &outcome.alarm.alert),
        Err(crate::agent::ConfirmError::Alarm(e)) => refusal(lang, &e),
        Err(e) => e.to_string(),
    };
    p.auth.push_chat(
        &who.id,
        Exchange {
            question: w.confirm.to_owned(),
            reply: None,
            note: Some(note),
        },
    );
    redirect("/#chat")
}

#[derive(Debug, Default, Deserialize)]
struct PlanQuery {
    #[serde(default)]
    floor: String,
    #[serde(default)]
    measure: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

async fn plan(State(p): State<Page>, Query(q): Query<PlanQuery>, headers: HeaderMap) -> Response {
    let Some(who) = p.who(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let lang = q
        .lang
        .as_deref()
        .and_then(parse_lang)
        .unwrap_or_else(|| page_lang(&who.session, &headers));
    let measure = q.measure.as_deref().unwrap_or("temperature");
    png(pictures::plan_png(&p.core, q.floor.trim(), measure, lang).await)
}

#[derive(Debug, Default, Deserialize)]
struct ChartQuery {
    #[serde(default)]
    sensor: String,
    #[serde(default)]
    since: Option<u64>,
    #[serde(default)]
    lang: Option<String>,
}

async fn chart(State(p): State<Page>, Query(q): Query<ChartQuery>, headers: HeaderMap) -> Response {
    let Some(who) = p.who(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let lang = q
        .lang
        .as_deref()
        .and_then(parse_lang)
        .unwrap_or_else(|| page_lang(&who.session, &headers));
    let since = q.since.unwrap_or(86_400).clamp(60, 31 * 86_400);
    png(pictures::chart_png(&p.core, q.sensor.trim(), since, lang).await)
}

fn png(picture: Result<Vec<u8>, pictures::NoPicture>) -> Response {
    match picture {
        Ok(bytes) => ([(header::CONTENT_TYPE, "image/png")], Body::from(bytes)).into_response(),
        Err(no) => {
            let code = if no.request_error {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            (code, format!("{}\n", no.message)).into_response()
        }
    }
}

// === small helpers ===

fn html(code: StatusCode, markup: Markup) -> Response {
    (code, markup).into_response()
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

fn redirect_with_cookie(to: &'static str, cookie: &str) -> Response {
    let mut res = redirect(to);
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

fn alarm_status(e: &AlarmError) -> StatusCode {
    match e {
        AlarmError::Refused(Refusal::Unknown(_)) => StatusCode::NOT_FOUND,
        AlarmError::Refused(Refusal::Forbidden { .. }) => StatusCode::FORBIDDEN,
        AlarmError::Refused(Refusal::NotApplicable { .. }) => StatusCode::CONFLICT,
        AlarmError::NotRunning => StatusCode::SERVICE_UNAVAILABLE,
        AlarmError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn refusal(lang: Lang, e: &AlarmError) -> String {
    match e {
        AlarmError::Refused(Refusal::Forbidden { .. }) => page::words(lang).viewer_note.to_owned(),
        other => crate::alarms::text::refusal(lang, other),
    }
}
