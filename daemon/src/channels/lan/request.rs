//! What a request to the LAN page says about its sender: the session cookie, whether it comes
//! from the page itself (`Origin`, `Sec-Fetch-Site`), and the language it wants.
//!
//! Owns: pure functions over request headers. Does not own: sessions (see `super::auth`).

use axum::http::{HeaderMap, header};
use markoff_proto::web_security;

use super::auth::{self, Session};
use crate::model::Lang;

/// The value of the session cookie, if sent.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    let values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    web_security::cookie(values, auth::COOKIE).map(str::to_owned)
}

/// Whether the browser says the request comes from this page (`Origin`, `Sec-Fetch-Site`; the
/// rules shared with the office web application, `markoff_proto::web_security`). Browsers that
/// send neither still need the session's CSRF token.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or_default());
    web_security::same_origin(text("origin"), text("host"), text("sec-fetch-site"))
}

pub(super) fn parse_lang(s: &str) -> Option<Lang> {
    match s.trim().to_ascii_lowercase().as_str() {
        "en" => Some(Lang::En),
        "ru" => Some(Lang::Ru),
        _ => None,
    }
}

/// The session's chosen language, else the browser's.
pub(super) fn page_lang(s: &Session, headers: &HeaderMap) -> Lang {
    s.lang.unwrap_or_else(|| accept_language(headers))
}

/// The preferred of English and Russian in `Accept-Language` (English when neither is named).
pub(super) fn accept_language(headers: &HeaderMap) -> Lang {
    let Some(value) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Lang::En;
    };
    let mut best: Option<(f32, Lang)> = None;
    for part in value.split(',') {
        let mut pieces = part.split(';');
        let tag = pieces
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q=").map(str::to_owned))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let lang = match tag.split('-').next() {
            Some("ru") => Lang::Ru,
            Some("en") => Lang::En,
            _ => continue,
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map_or(Lang::En, |(_, l)| l)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn picks_the_language_from_the_browser() {
        assert_eq!(accept_language(&headers(&[])), Lang::En);
        assert_eq!(
            accept_language(&headers(&[("accept-language", "ru-RU,ru;q=0.9,en;q=0.8")])),
            Lang::Ru
        );
        assert_eq!(
            accept_language(&headers(&[("accept-language", "de, en;q=0.5, ru;q=0.7")])),
            Lang::Ru
        );
        assert_eq!(
            accept_language(&headers(&[("accept-language", "fr")])),
            Lang::En
        );
    }

    #[test]
    fn finds_the_session_cookie() {
        let h = headers(&[("cookie", "a=1; markoff_lan=abc; b=2")]);
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "markoff_lan=")])),
            None
        );
        assert_eq!(session_cookie(&headers(&[])), None);
    }

    #[test]
    fn cross_origin_posts_are_not_genuine() {
        assert!(same_origin(&headers(&[("host", "gw:8080")])));
        assert!(same_origin(&headers(&[
            ("host", "gw:8080"),
            ("origin", "http://gw:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "gw:8080"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "gw:8080"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "gw:8080"),
            ("sec-fetch-site", "cross-site")
        ])));
    }
}
