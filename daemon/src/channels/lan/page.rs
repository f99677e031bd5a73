//! The LAN page's HTML (maud, server-rendered, no script) and its words in English and Russian.
//!
//! Owns: markup, labels and the presentation of values, ages, alarms and assistant replies.
//! Does not own: where the data comes from (see [`super`]). Every value is escaped by maud; the
//! only unescaped text is the fixed style sheet.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::auth::Exchange;
pub(crate) use super::words::{Words, lang_code, words};
use crate::agent::{Attachment, Reply, Source};
use crate::alarms::AlarmView;
use crate::alarms::text::{number, severity_word, state_word};
use crate::model::{Lang, Quality, Severity};

/// Phone first: nothing is wider than the screen (a table, and a floor plan drawn at its own
/// size so its labels stay legible, scroll inside their own box), and every text contrasts at
/// least 4.5:1 with its background.
const STYLE: &str = "*{box-sizing:border-box}body{font-family:system-ui,sans-serif;margin:0 auto;\
max-width:72rem;padding:1rem;color:#222;background:#fff;overflow-wrap:anywhere}header{display:flex;justify-content:space-between;align-items:baseline;flex-wrap:wrap;\
gap:.5rem}h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.15rem;margin-top:1.6rem;\
border-bottom:1px solid #ccc}table{border-collapse:collapse;width:100%}\
@media(max-width:48rem){table{display:block;max-width:100%;overflow-x:auto}}td,th{text-align:left;\
padding:.25rem .5rem;border-bottom:1px solid #eee;vertical-align:top}.num{text-align:right;\
font-variant-numeric:tabular-nums}.sev-critical,.sev-high{color:#b00;font-weight:600}\
.sev-medium{color:#8a5300}.stale,.stale .note{color:#595959}.note{color:#555;font-size:.9rem}.flash{padding:.5rem;\
border-radius:.3rem;background:#eef6ee}.flash.bad{background:#fbeaea}.plans{display:flex;\
flex-wrap:wrap;gap:1rem}.plans figure{margin:0;min-width:0;max-width:100%;overflow-x:auto}\
.plans img{display:block;border:1px solid #ddd}.reply img{max-width:100%;border:1px solid #ddd}.chat{border:1px solid #ddd;border-radius:.3rem;padding:.5rem}\
.q{font-weight:600;margin-top:.6rem}.a{white-space:pre-wrap}form.inline{display:inline}\
input[type=text],input[type=password]{width:100%;max-width:40rem;padding:.4rem;font-size:1rem}\
button{padding:.35rem .8rem;font-size:1rem}.langs a{margin-left:.5rem}";

fn shell(lang: Lang, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang_code(lang)) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

fn lang_links() -> Markup {
    html! {
        span.langs { a href="/?lang=en" { "English" } a href="/?lang=ru" { "Русский" } }
    }
}

/// The login form, with why the last attempt failed, if it did.
pub(crate) fn login(lang: Lang, problem: Option<&str>) -> Markup {
    let w = words(lang);
    shell(
        lang,
        w.title,
        html! {
            header { h1 { (w.title) } (lang_links()) }
            p { (w.login_intro) }
            @if let Some(p) = problem { p.flash.bad role="alert" { (p) } }
            form method="post" action="/login" {
                input type="hidden" name="lang" value=(lang_code(lang));
                label for="token" { (w.token) } br;
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                " "
                button type="submit" { (w.log_in) }
            }
        },
    )
}

/// A short page with one message and a way back (refusals).
pub(crate) fn message(lang: Lang, text: &str) -> Markup {
    let w = words(lang);
    shell(
        lang,
        w.title,
        html! {
            h1 { (w.title) }
            p.flash.bad role="alert" { (text) }
            p { a href="/" { (w.back) } }
        },
    )
}

/// Summary numbers of the status block.
#[derive(Debug)]
pub(crate) struct StatusLine {
    pub(crate) points: usize,
    pub(crate) readings_per_s: f64,
    pub(crate) buffer_rows: i64,
    pub(crate) buffer_bytes: u64,
    pub(crate) buffer_max_bytes: u64,
    pub(crate) sync_lag_rows: Option<i64>,
    pub(crate) uptime_s: u64,
}

/// One sensor's latest value.
#[derive(Debug)]
pub(crate) struct SensorLine {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) location: String,
    pub(crate) value: Option<f64>,
    pub(crate) unit: String,
    pub(crate) quality: Quality,
    pub(crate) age_s: u64,
    pub(crate) stale: bool,
}

/// Everything the dashboard shows.
#[derive(Debug)]
pub(crate) struct Dashboard {
    pub(crate) lang: Lang,
    pub(crate) building: String,
    pub(crate) user: String,
    pub(crate) operator: bool,
    pub(crate) csrf: String,
    pub(crate) status: StatusLine,
    pub(crate) alarms: Vec<AlarmView>,
    pub(crate) sensors: Vec<SensorLine>,
    pub(crate) floors: Vec<String>,
    pub(crate) chat: Vec<Exchange>,
    pub(crate) flash: Option<(bool, String)>,
    pub(crate) now_ms: i64,
}

/// "3 min", "2 h 5 min", "4 d 3 h" (short, unit symbols in `lang`).
pub(crate) fn span(secs: u64, lang: Lang) -> String {
    let (s, m, h, d) = match lang {
        Lang::En => ("s", "min", "h", "d"),
        Lang::Ru => ("с", "мин", "ч", "д"),
    };
    match secs {
        0..60 => format!("{secs} {s}"),
        60..3600 => format!("{} {m}", secs / 60),
        3600..86_400 => format!("{} {h} {} {m}", secs / 3600, secs % 3600 / 60),
        _ => format!("{} {d} {} {h}", secs / 86_400, secs % 86_400 / 3600),
    }
}

fn bytes(n: u64) -> String {
    crate::config::ByteSize(n).to_string()
}

fn value_text(v: Option<f64>, unit: &str, quality: Quality, w: &Words) -> String {
    let mut out = match v {
        Some(v) if unit.is_empty() => number(v),
        Some(v) => format!("{} {unit}", number(v)),
        None => w.no_value.to_owned(),
    };
    if quality != Quality::Good {
        out.push_str(&format!(" ({quality})"));
    }
    out
}

fn sev_class(s: Severity) -> &'static str {
    match s {
        Severity::Low => "sev-low",
        Severity::Medium => "sev-medium",
        Severity::High => "sev-high",
        Severity::Critical => "sev-critical",
    }
}

/// The query string of a floor plan picture.
pub(crate) fn plan_src(floor: &str, measure: &str, lang: Lang) -> String {
    format!(
        "/plan.png?floor={}&measure={}&lang={}",
        encode(floor),
        encode(measure),
        lang_code(lang)
    )
}

/// The query string of a chart picture.
pub(crate) fn chart_src(sensor: &str, since_secs: u64, lang: Lang) -> String {
    format!(
        "/chart.png?sensor={}&since={since_secs}&lang={}",
        encode(sensor),
        lang_code(lang)
    )
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The dashboard: status, open alarms, latest readings, floor plans and the chat box.
pub(crate) fn dashboard(d: &Dashboard) -> Markup {
    let w = words(d.lang);
    let lang = d.lang;
    shell(
        lang,
        &format!("{} — {}", d.building, w.title),
        html! {
            header {
                h1 { (d.building) }
                div {
                    span.note {
                        (w.signed_in_as) " " strong { (d.user) } " ("
                        (if d.operator { w.operator } else { w.viewer }) ")"
                    }
                    " " a href="/" { (w.refresh) }
                    (lang_links())
                    " "
                    form.inline method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(d.csrf);
                        button type="submit" { (w.log_out) }
                    }
                }
            }
            @if let Some((ok, text)) = &d.flash {
                p.flash.bad[!ok] role="status" { (text) }
            }
            (status_block(d, w))
            (alarms_block(d, w))
            (chat_block(d, w))
            (plans_block(d, w))
            (readings_block(d, w))
        },
    )
}

fn status_block(d: &Dashboard, w: &Words) -> Markup {
    let s = &d.status;
    html! {
        h2 #status { (w.status) }
        table {
            tr { th { (w.sensors_online) } td.num { (s.points) } }
            tr { th { (w.readings_per_s) } td.num { (format!("{:.1}", s.readings_per_s)) } }
            tr { th { (w.buffer) } td.num {
                (s.buffer_rows) " / " (bytes(s.buffer_bytes)) " / " (bytes(s.buffer_max_bytes))
            } }
            tr { th { (w.sync_lag) } td.num {
                @match s.sync_lag_rows { Some(n) => { (n) } None => { (w.sync_off) } }
            } }
            tr { th { (w.uptime) } td.num { (span(s.uptime_s, d.lang)) } }
        }
    }
}

fn alarms_block(d: &Dashboard, w: &Words) -> Markup {
    html! {
        h2 #alarms { (w.alarms) " (" (d.alarms.len()) ")" }
        @if d.alarms.is_empty() {
            p { (w.no_alarms) }
        } @else {
            table {
                tr {
                    th { "#" } th { (w.alarm) } th { (w.severity) } th { (w.state) }
                    th { (w.sensor) } th.num { (w.value) } th { (w.since) } th {}
                }
                @for a in &d.alarms {
                    tr.alarm data-id=(a.id) {
                        td.num { (a.id) }
                        td { strong { (a.alert) } br; span.note { (a.message) } }
                        td class=(sev_class(a.severity)) { (severity_word(d.lang, a.severity)) }
                        td { (state_word(d.lang, a.state)) }
                        td { (a.name) br; span.note { (a.sensor) " · " (a.location) } }
                        td.num { (value_text(a.value, &a.unit, Quality::Good, w)) }
                        td { @if let Some(ms) = a.raised_ms {
                            (span(age_secs(d.now_ms, ms), d.lang)) " " (w.ago)
                        } }
                        td {
                            @if a.state.is_unacked() && d.operator {
                                form.inline method="post" action={ "/alarms/" (a.id) "/ack" } {
                                    input type="hidden" name="csrf" value=(d.csrf);
                                    button type="submit" { (w.ack) }
                                }
                            } @else if let Some(by) = &a.acked_by {
                                span.note { (w.acked_by) " " (by) }
                            }
                        }
                    }
                }
            }
            @if !d.operator { p.note { (w.viewer_note) } }
        }
    }
}

fn chat_block(d: &Dashboard, w: &Words) -> Markup {
    html! {
        h2 #chat { (w.chat) }
        @if !d.chat.is_empty() {
            div.chat {
                @for x in &d.chat { (exchange(x, d, w)) }
            }
        }
        form method="post" action="/ask" {
            input type="hidden" name="csrf" value=(d.csrf);
            input type="text" name="text" maxlength="4000" required placeholder=(w.ask_hint) aria-label=(w.chat);
            " "
            button type="submit" { (w.ask) }
        }
    }
}

fn exchange(x: &Exchange, d: &Dashboard, w: &Words) -> Markup {
    html! {
        div.q { "› " (x.question) }
        @if let Some(note) = &x.note { div.a { (note) } }
        @if let Some(r) = &x.reply { (reply(r, d, w)) }
    }
}

fn reply(r: &Reply, d: &Dashboard, w: &Words) -> Markup {
    html! {
        div.reply data-source=(source_name(r.source)) {
            div.a { (r.text) }
            @for a in &r.attachments {
                @match a {
                    Attachment::FloorPlan { floor, measure } => {
                        figure { img src=(plan_src(floor, measure, d.lang)) alt={ (w.floor) " " (floor) " — " (measure) }; }
                    }
                    Attachment::Chart { sensor, since_secs } => {
                        figure { img src=(chart_src(sensor, *since_secs, d.lang)) alt=(sensor); }
                    }
                }
            }
            @for c in &r.confirmations {
                form method="post" action="/confirm" {
                    input type="hidden" name="csrf" value=(d.csrf);
                    input type="hidden" name="token" value=(c.token);
                    (c.prompt) " "
                    button type="submit" { (w.confirm) }
                }
            }
            p.note {
                @if r.source == Source::Offline { (w.offline) " · " }
                @if !r.tools.is_empty() {
                    (w.tools) ": "
                    @for (i, t) in r.tools.iter().enumerate() {
                        @if i > 0 { ", " } (t.name)
                    }
                    " · "
                }
                (r.elapsed_ms) " ms"
            }
        }
    }
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::Llm => "llm",
        Source::Command => "command",
        Source::Offline => "offline",
    }
}

fn plans_block(d: &Dashboard, w: &Words) -> Markup {
    if d.floors.is_empty() {
        return html! {};
    }
    html! {
        h2 #plans { (w.plans) }
        div.plans {
            @for f in &d.floors {
                figure {
                    img src=(plan_src(f, "temperature", d.lang)) alt={ (w.floor) " " (f) } loading="lazy";
                    figcaption { (w.floor) " " (f) }
                }
            }
        }
    }
}

fn readings_block(d: &Dashboard, w: &Words) -> Markup {
    html! {
        h2 #readings { (w.readings) " (" (d.sensors.len()) ")" }
        @if d.sensors.is_empty() {
            p { (w.no_readings) }
        } @else {
            table {
                tr { th { (w.sensor) } th { (w.location) } th.num { (w.value) } th { (w.age) } }
                @for s in &d.sensors {
                    tr.sensor.stale[s.stale] data-id=(s.id) {
                        td { (s.name) br; span.note { (s.id) } }
                        td { (s.location) }
                        td.num { (value_text(s.value, &s.unit, s.quality, w)) }
                        td { (span(s.age_s, d.lang)) " " (w.ago) }
                    }
                }
            }
        }
    }
}

fn age_secs(now_ms: i64, then_ms: i64) -> u64 {
    u64::try_from((now_ms - then_ms).max(0) / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_well_in_both_languages() {
        assert_eq!(span(5, Lang::En), "5 s");
        assert_eq!(span(125, Lang::Ru), "2 мин");
        assert_eq!(span(3 * 3600 + 120, Lang::En), "3 h 2 min");
        assert_eq!(span(2 * 86_400 + 3600, Lang::Ru), "2 д 1 ч");
    }

    #[test]
    fn picture_urls_are_encoded() {
        assert_eq!(
            plan_src("B 1&x", "co2", Lang::Ru),
            "/plan.png?floor=B%201%26x&measure=co2&lang=ru"
        );
        assert_eq!(
            chart_src("f1.r101.temperature", 3600, Lang::En),
            "/chart.png?sensor=f1.r101.temperature&since=3600&lang=en"
        );
    }

    #[test]
    fn the_login_page_escapes_what_it_shows() {
        let page = login(Lang::Ru, Some("<script>alert(1)</script>")).into_string();
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("Ключ доступа"));
        assert!(page.contains("action=\"/login\""));
    }
}
