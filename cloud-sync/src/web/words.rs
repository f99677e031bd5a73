//! The pages' language (English or Russian) and the words for values, states and ages.
//!
//! The language of a request is, in order: `?lang=en|ru` on any page (remembered in the
//! `markoff_lang` cookie), that cookie, the browser's `Accept-Language`, English.
//!
//! Owns: [`Lang`], its choice for a request, and every word a page shows for data (states,
//! severities, booleans, ages). Pure, except [`choose`] reading the request's headers.

use axum::extract::Request;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE, HeaderValue, SET_COOKIE};
use axum::middleware::Next;
use axum::response::Response;

/// The cookie that remembers the chosen language.
pub(crate) const LANG_COOKIE: &str = "markoff_lang";

/// A page's language.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Russian.
    Ru,
}

impl Lang {
    /// `en` or `ru` (the `lang` attribute and the `?lang=` value).
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Ru => "ru",
        }
    }

    /// `en`/`ru` (any case, with a region) to a language.
    pub fn parse(s: &str) -> Option<Self> {
        let primary = s.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Self::En),
            "ru" => Some(Self::Ru),
            _ => None,
        }
    }

    /// The first supported language of an `Accept-Language` header, by weight.
    pub fn from_accept(header: &str) -> Option<Self> {
        let mut best: Option<(f32, Self)> = None;
        for part in header.split(',') {
            let mut it = part.split(';');
            let Some(lang) = it.next().and_then(Self::parse) else {
                continue;
            };
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }

    /// The English or the Russian text.
    pub fn t(self, en: &'static str, ru: &'static str) -> &'static str {
        match self {
            Self::En => en,
            Self::Ru => ru,
        }
    }

    /// The other language's switch: its code and its own name.
    pub fn other(self) -> (&'static str, &'static str) {
        match self {
            Self::En => ("ru", "Русский"),
            Self::Ru => ("en", "English"),
        }
    }
}

/// What a page needs of its request: the language, and the path it was asked for without
/// `lang` (for the language switch).
#[derive(Clone, Debug, Default)]
pub(crate) struct Ui {
    /// The language.
    pub(crate) lang: Lang,
    /// Path and query without `lang`.
    pub(crate) here: String,
}

impl Ui {
    /// Shorthand for `self.lang.t(en, ru)`.
    pub(crate) fn t(&self, en: &'static str, ru: &'static str) -> &'static str {
        self.lang.t(en, ru)
    }

    /// The link that shows this page in the other language.
    pub(crate) fn switch_href(&self) -> String {
        let (code, _) = self.lang.other();
        let sep = if self.here.contains('?') { '&' } else { '?' };
        format!("{}{sep}lang={code}", self.here)
    }
}

/// The language of a request and its path without `lang` (see the module's documentation).
pub(crate) fn choose(req: &Request) -> (Ui, Option<Lang>) {
    let uri = req.uri();
    let mut asked = None;
    let mut kept = Vec::new();
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.strip_prefix("lang=") {
            Some(v) => asked = asked.or(Lang::parse(v)),
            None => kept.push(pair),
        }
    }
    let here = if kept.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    let headers = req.headers();
    let cookie = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == LANG_COOKIE)
        .and_then(|(_, v)| Lang::parse(v));
    let accept = headers
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_accept);
    let lang = asked.or(cookie).or(accept).unwrap_or_default();
    (Ui { lang, here }, asked)
}

/// Middleware: puts the request's [`Ui`] in its extensions; a `?lang=` choice is remembered in
/// a cookie for a year.
pub(crate) async fn language(mut req: Request, next: Next) -> Response {
    let (ui, asked) = choose(&req);
    req.extensions_mut().insert(ui);
    let mut res = next.run(req).await;
    if let Some(l) = asked {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            l.code()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
    res
}

/// The words for 0 and 1 of a sensor of `kind` that reads a state, not a quantity.
fn state_words(lang: Lang, kind: Option<&str>) -> Option<(&'static str, &'static str)> {
    let k = kind?.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| k.contains(w));
    if has(&["leak", "flood", "water_detect"]) {
        Some((lang.t("dry", "сухо"), lang.t("wet", "протечка")))
    } else if has(&["door", "window", "valve", "contact", "hatch"]) {
        Some((lang.t("closed", "закрыто"), lang.t("open", "открыто")))
    } else if has(&[
        "burner", "pump", "fan", "relay", "switch", "running", "on_off", "onoff", "state",
    ]) {
        Some((lang.t("off", "выкл."), lang.t("on", "вкл.")))
    } else {
        None
    }
}

/// A sensor's value as a person reads it: a state as a word (dry/wet, closed/open, off/on),
/// else the number with its unit.
pub(crate) fn reading_text(
    lang: Lang,
    v: Option<f64>,
    kind: Option<&str>,
    unit: Option<&str>,
) -> String {
    match (v, state_words(lang, kind)) {
        (Some(v), Some((zero, one))) if v == 0.0 || v == 1.0 => {
            (if v == 0.0 { zero } else { one }).to_owned()
        }
        _ => value_text(v, unit),
    }
}

/// A value with its unit, with the same decimals wherever that unit is shown (the plan writes
/// temperatures with one): one for °C and %, else two below 100 and one above.
pub(crate) fn value_text(v: Option<f64>, unit: Option<&str>) -> String {
    match v {
        None => "–".to_owned(),
        Some(v) => {
            let unit = unit.filter(|u| !u.is_empty());
            let n = if v.abs() >= 100.0 || matches!(unit, Some("°C" | "%" | "%RH")) {
                format!("{v:.1}")
            } else {
                format!("{v:.2}")
            };
            match unit {
                Some(u) => format!("{n} {u}"),
                None => n,
            }
        }
    }
}

/// An alarm state in words.
pub(crate) fn state_label(lang: Lang, state: &str) -> String {
    match state {
        "active_unacked" => lang.t("active, not acknowledged", "активна, не квитирована"),
        "active_acked" => lang.t("active, acknowledged", "активна, квитирована"),
        "cleared_unacked" => lang.t("cleared, not acknowledged", "снята, не квитирована"),
        "normal" => lang.t("back to normal", "в норме"),
        "shelved" => lang.t("shelved", "отложена"),
        other => return other.to_owned(),
    }
    .to_owned()
}

/// An alarm severity in words.
pub(crate) fn severity_label(lang: Lang, severity: &str) -> String {
    match severity {
        "critical" => lang.t("Critical", "Критическая"),
        "high" => lang.t("High", "Высокая"),
        "medium" => lang.t("Medium", "Средняя"),
        "low" => lang.t("Low", "Низкая"),
        "info" | "information" => lang.t("Information", "Информация"),
        other => return other.to_owned(),
    }
    .to_owned()
}

/// A gateway's or building's status in words.
pub(crate) fn status_label(lang: Lang, status: &str) -> String {
    match status {
        "ok" => lang.t("ok", "в порядке"),
        "lagging" => lang.t("lagging", "отстаёт"),
        "offline" => lang.t("offline", "нет связи"),
        "never" => lang.t("never seen", "ещё не выходил на связь"),
        "removed" => lang.t("removed", "удалён"),
        other => return other.to_owned(),
    }
    .to_owned()
}

/// A reading's quality in words.
pub(crate) fn quality_label(lang: Lang, quality: &str) -> String {
    match quality {
        "good" => lang.t("good", "норма"),
        "bad" => lang.t("bad", "ошибка"),
        "stale" => lang.t("stale", "устарело"),
        "comm_error" => lang.t("no connection", "нет связи"),
        other => return other.to_owned(),
    }
    .to_owned()
}

/// An alarm event's name in words.
pub(crate) fn event_label(lang: Lang, event: &str) -> String {
    match event {
        "raised" => lang.t("raised", "возникла"),
        "cleared" => lang.t("cleared", "снята"),
        "acked" => lang.t("acknowledged", "квитирована"),
        "shelved" => lang.t("shelved", "отложена"),
        "unshelved" => lang.t("unshelved", "возвращена"),
        "escalated" => lang.t("escalated", "эскалирована"),
        "normal" => lang.t("back to normal", "в норме"),
        "out_of_service" => lang.t("out of service", "выведена из работы"),
        "in_service" => lang.t("back in service", "возвращена в работу"),
        other => return other.to_owned(),
    }
    .to_owned()
}

/// A sensor kind in words.
pub(crate) fn kind_label(lang: Lang, kind: &str) -> String {
    match kind {
        "temperature" => lang.t("temperature", "температура"),
        "humidity" => lang.t("humidity", "влажность"),
        "co2" => "CO2",
        "pressure" => lang.t("pressure", "давление"),
        "energy" => lang.t("energy", "энергия"),
        "flow" => lang.t("flow", "расход"),
        "leak" => lang.t("leak detector", "датчик протечки"),
        "state" => lang.t("on/off state", "состояние вкл./выкл."),
        "other" => lang.t("other", "другое"),
        other => return other.to_owned(),
    }
    .to_owned()
}

/// "Acknowledgement" or "Shelving" for a request's action.
pub(crate) fn action_label(lang: Lang, action: &str) -> String {
    match action {
        "ack" => lang.t("Acknowledgement", "Квитирование"),
        "shelve" => lang.t("Shelving", "Откладывание"),
        other => return other.to_owned(),
    }
    .to_owned()
}

/// "8 h", "30 min" for a shelving's length.
pub(crate) fn shelve_text(lang: Lang, seconds: i32) -> String {
    if seconds % 3600 == 0 {
        format!("{} {}", seconds / 3600, lang.t("h", "ч"))
    } else {
        format!("{} {}", seconds / 60, lang.t("min", "мин"))
    }
}

/// "12 s ago", "5 min ago", "3 h ago", "2 d ago"; "in the future" for clock skew.
pub(crate) fn age(lang: Lang, seconds: f64) -> String {
    if lang == Lang::En {
        return super::time::age(seconds);
    }
    if !seconds.is_finite() {
        return "-".to_owned();
    }
    if seconds < -5.0 {
        return "в будущем".to_owned();
    }
    let s = seconds.max(0.0);
    if s < 90.0 {
        format!("{s:.0} с назад")
    } else if s < 90.0 * 60.0 {
        format!("{:.0} мин назад", s / 60.0)
    } else if s < 36.0 * 3600.0 {
        format!("{:.0} ч назад", s / 3600.0)
    } else {
        format!("{:.0} дн. назад", s / 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_heaviest_supported_language() {
        assert_eq!(Lang::from_accept("ru-RU,ru;q=0.9,en;q=0.8"), Some(Lang::Ru));
        assert_eq!(Lang::from_accept("de, en;q=0.5, ru;q=0.7"), Some(Lang::Ru));
        assert_eq!(Lang::from_accept("en-GB"), Some(Lang::En));
        assert_eq!(Lang::from_accept("de, fr"), None);
        assert_eq!(Lang::from_accept("ru;q=0"), None);
    }

    #[test]
    fn the_switch_keeps_the_query() {
        let req = |uri: &str| {
            axum::http::Request::builder()
                .uri(uri)
                .header(COOKIE, "a=b; markoff_lang=ru")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let (ui, asked) = choose(&req("/sensors/gw/3?range=1h&lang=en"));
        assert_eq!((ui.lang, asked), (Lang::En, Some(Lang::En)));
        assert_eq!(ui.switch_href(), "/sensors/gw/3?range=1h&lang=ru");
        let (ui, asked) = choose(&req("/"));
        assert_eq!((ui.lang, asked), (Lang::Ru, None), "the cookie");
        assert_eq!(ui.switch_href(), "/?lang=en");
    }

    #[test]
    fn states_are_words_in_both_languages() {
        assert_eq!(
            reading_text(Lang::Ru, Some(0.0), Some("leak"), None),
            "сухо"
        );
        assert_eq!(reading_text(Lang::En, Some(1.0), Some("state"), None), "on");
        assert_eq!(
            reading_text(Lang::Ru, Some(19.58), Some("temperature"), Some("°C")),
            "19.6 °C"
        );
        assert_eq!(age(Lang::Ru, 600.0), "10 мин назад");
        assert_eq!(
            state_label(Lang::Ru, "active_unacked"),
            "активна, не квитирована"
        );
    }
}
