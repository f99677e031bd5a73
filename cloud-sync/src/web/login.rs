//! The login form and logout.
//!
//! Owns: the form, its own CSRF token (a cookie the form must echo, since there is no session
//! yet), the order of checks (token, rate limit, password), and starting and ending sessions.
//! Does not own: the counters (`limit`) or the hashes (`users`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE, USER_AGENT};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;
use sqlx::Row as _;
use tokio::time::Instant;

use super::pages::layout;
use super::session::{self, Session};
use super::users::{normalize_login, verify_password};
use super::words::{Lang, Ui};
use super::{AppState, client_ip};

/// How long the login form may stay open.
const FORM_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// `?next=` of the login form.
#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    login: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

/// The logout form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

/// A path on this server to go to after login (never another site).
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => "/",
    }
}

/// Percent-encodes a query value.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn form_page(ui: &Ui, token: &str, next: &str, login: &str, message: Option<&str>) -> Markup {
    layout(
        ui,
        ui.t("Sign in", "Вход"),
        None,
        html! {
            h1 { (ui.t("Markoff central office", "Markoff: центральный офис")) }
            @if let Some(m) = message {
                p.error role="alert" { (m) }
            }
            form.login method="post" action="/login" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(next);
                label { (ui.t("Login", "Имя пользователя")) input #login name="login" value=(login) autocomplete="username" required autofocus; }
                label { (ui.t("Password", "Пароль")) input #password type="password" name="password" autocomplete="current-password" required; }
                button #sign-in type="submit" { (ui.t("Sign in", "Войти")) }
            }
        },
    )
}

/// GET /login: the form (or straight on when already signed in).
pub(crate) async fn form(
    State(st): State<AppState>,
    Extension(ui): Extension<Ui>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref()).to_owned();
    if let Some(t) = session::cookie(&headers, st.session_cookie)
        && matches!(session::find(&st.pool, t).await, Ok(Some(_)))
    {
        return Redirect::to(&next).into_response();
    }
    // Another request for the form (a second tab, the browser's favicon request redirected
    // here) keeps the token the first one set, so the form already on screen stays valid.
    let token = session::cookie(&headers, st.login_cookie)
        .filter(|t| {
            t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(session::random_token, str::to_owned);
    let cookie = session::set_cookie(
        st.login_cookie,
        &token,
        Some(FORM_LIFETIME),
        st.cfg.cookie_secure,
    );
    (
        [(SET_COOKIE, cookie)],
        form_page(&ui, &token, &next, "", None),
    )
        .into_response()
}

/// POST /login: checks the form's token, then the rate limits, then the password.
pub(crate) async fn submit(
    State(st): State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    Extension(ui): Extension<Ui>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref()).to_owned();
    let expected = session::cookie(&headers, st.login_cookie).unwrap_or_default();
    if expected.is_empty() || !session::same(expected, &f.csrf) {
        return (
            StatusCode::FORBIDDEN,
            layout(
                &ui,
                ui.t("Sign in", "Вход"),
                None,
                html! { p.error { (ui.t("The form has expired.", "Срок действия формы истёк.")) " "
                a href="/login" { (ui.t("Sign in again", "Войти снова")) } "." } },
            ),
        )
            .into_response();
    }
    let ip = client_ip(&headers, peer, &st.cfg.trusted_proxies);
    let account = normalize_login(&f.login)
        .unwrap_or_else(|_| f.login.trim().to_lowercase().chars().take(100).collect());
    if let Err(wait) = st.limiter.check(ip, &account, Instant::now()) {
        let secs = wait.as_secs().max(1);
        tracing::warn!(%ip, login = %account, wait_s = secs, "Login refused: too many failures.");
        let msg = match ui.lang {
            Lang::En => format!("Too many failed logins. Try again in {secs} s."),
            Lang::Ru => format!("Слишком много неудачных попыток входа. Повторите через {secs} с."),
        };
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(RETRY_AFTER, secs.to_string())],
            form_page(&ui, &f.csrf, &next, &f.login, Some(&msg)),
        )
            .into_response();
    }
    // A login with a NUL character names no account (PostgreSQL text cannot hold one).
    let lookup = async {
        if !super::data::possible_id(&account) {
            return Ok(None);
        }
        sqlx::query("SELECT user_id, password_hash FROM markoff.web_users WHERE login = $1")
            .bind(&account)
            .fetch_optional(&st.pool)
            .await
    };
    let user = match lookup.await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "Looking up a user failed.");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response();
        }
    };
    let (user_id, hash) = match user.map(|r| (r.try_get::<i64, _>(0), r.try_get::<String, _>(1))) {
        Some((Ok(id), Ok(h))) => (Some(id), h),
        _ => (None, st.dummy_hash.clone()),
    };
    let password = f.password.clone();
    let ok = {
        let Ok(_permit) = st.hashing.acquire().await else {
            return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
        };
        tokio::task::spawn_blocking(move || verify_password(&hash, &password))
            .await
            .unwrap_or(false)
    };
    let Some(user_id) = user_id.filter(|_| ok) else {
        let wait = st.limiter.failed(ip, &account, Instant::now());
        tracing::warn!(%ip, login = %account, wait = ?wait, "Login failed.");
        return (
            StatusCode::UNAUTHORIZED,
            form_page(
                &ui,
                &f.csrf,
                &next,
                &f.login,
                Some(ui.t(
                    "Wrong login or password.",
                    "Неверное имя пользователя или пароль.",
                )),
            ),
        )
            .into_response();
    };
    st.limiter.succeeded(&account);
    let agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok());
    match session::create(&st.pool, user_id, st.cfg.session_lifetime, ip, agent).await {
        Ok((token, _)) => {
            tracing::info!(%ip, login = %account, "Signed in.");
            let secure = st.cfg.cookie_secure;
            let cookie = session::set_cookie(
                st.session_cookie,
                &token,
                Some(st.cfg.session_lifetime),
                secure,
            );
            let clear = session::set_cookie(st.login_cookie, "", None, secure);
            let mut res = Redirect::to(&next).into_response();
            for c in [cookie, clear] {
                if let Ok(v) = c.parse() {
                    res.headers_mut().append(SET_COOKIE, v);
                }
            }
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "Creating a session failed.");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

/// POST /logout: ends the session (its form carries the session's CSRF token).
pub(crate) async fn logout(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !session::same(&s.csrf, &f.csrf) {
        return (StatusCode::FORBIDDEN, "missing or wrong CSRF token\n").into_response();
    }
    if let Err(e) = session::delete(&st.pool, &s.id_hash).await {
        tracing::error!(error = %e, "Ending a session failed.");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response();
    }
    tracing::info!(login = %s.login, "Signed out.");
    let clear = session::set_cookie(st.session_cookie, "", None, st.cfg.cookie_secure);
    ([(SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_come_next() {
        assert_eq!(safe_next(Some("/buildings/a?x=1")), "/buildings/a?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(None), "/");
        assert_eq!(url_encode("/a b?c=d"), "/a%20b%3Fc%3Dd");
    }
}
