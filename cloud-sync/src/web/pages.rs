//! The HTML pages (maud, rendered on the server, no JavaScript), in English or Russian (see
//! `words`): the buildings list, a building with its floor plans, values, alarms and tenants,
//! and a sensor with its history chart (the alarm page is in `alarm`). Each page shows what its
//! `/api/...` twin returns.
//!
//! Owns: the page frame, the tables shared by the pages, and these page routes. Does not own:
//! the data (`data`, `building`) or the SVG (`plan`, `chart`).

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::AppState;
use super::api::{RangeQuery, stale_ms};
use super::building::{BuildingView, FloorView, RoomView, assemble};
use super::chart::{ChartInput, history_svg};
use super::data::{self, AlarmView, DataError, GatewayHealth, SensorValue, Viewer};
use super::plan::{
    NO_VALUE, PLANT_ACKED, PLANT_NORMAL, PLANT_UNACKED, floor_svg, room_fill, temperature_colour,
    text_on,
};
use super::session::Session;
use super::time::{Time, now_ms};
use super::words::{
    Lang, Ui, action_label, age, kind_label, quality_label, reading_text, severity_label,
    state_label, status_label, value_text,
};

/// Phone first: nothing is wider than the screen (a table or a plan scrolls inside its own
/// box), and every text has a contrast of at least 4.5:1 on its background (WCAG AA).
const STYLE: &str = "
*{box-sizing:border-box}
body{font-family:'DejaVu Sans',Arial,sans-serif;margin:0;color:#1a1a1a;background:#f6f6f4;overflow-wrap:anywhere}
header{background:#243447;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;gap:.6em;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:bold}header form{margin-left:auto}header a.lang{font-weight:normal;text-decoration:underline}
main{padding:.8em;max-width:1200px}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
a{color:#0645ad}
table{border-collapse:collapse;background:#fff;margin:.5em 0;display:block;max-width:100%;overflow-x:auto}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top;overflow-wrap:normal}
th{background:#eef}.num{text-align:right}.muted{color:#595959}.error{color:#b00020;font-weight:bold}
.badge{padding:.1em .5em;border-radius:.8em;font-size:.85em;color:#fff;background:#5f5f5f;white-space:nowrap}
.ok{background:#2e7d32}.lagging{background:#a84300}.offline,.never{background:#b00020}.removed{background:#5f5f5f}
.active_unacked{background:#b00020}.cleared_unacked{background:#a84300}.active_acked{background:#f9a825;color:#1a1a1a}.normal{background:#2e7d32}
th[style] .muted{color:inherit}
.unacked-count{background:#b00020;color:#fff;font-weight:bold}
.stale{color:#595959;font-style:italic}form.login{display:grid;gap:.6em;max-width:20em}form.login input{width:100%}
.plan-box{max-width:100%;overflow-x:auto}
.plan,.chart{background:#fff;border:1px solid #ccc;max-width:100%;height:auto}.legend span{display:inline-block;padding:0 .5em}
textarea{width:100%;max-width:40em}
.pending{color:#8a4b00;font-weight:bold}.done{color:#1b5e20;font-weight:bold}form.actions{margin:.4em 0}";

/// The page frame; `session` adds the user and the logout button. Every page links to itself in
/// the other language.
pub(crate) fn layout(ui: &Ui, title: &str, session: Option<&Session>, body: Markup) -> Markup {
    let (other, other_name) = ui.lang.other();
    html! {
        (DOCTYPE)
        html lang=(ui.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Markoff" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a href="/" { (ui.t("Markoff · buildings", "Markoff · здания")) }
                    a.lang #lang href=(ui.switch_href()) lang=(other) hreflang=(other) { (other_name) }
                    @if let Some(s) = session {
                        form method="post" action="/logout" {
                            span { (s.name) " " }
                            input type="hidden" name="csrf" value=(s.csrf);
                            button #logout type="submit" { (ui.t("Sign out", "Выйти")) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An error page with `message` (already in the page's language).
pub(crate) fn page_error(ui: &Ui, status: StatusCode, message: &str) -> Response {
    (
        status,
        layout(
            ui,
            ui.t("Error", "Ошибка"),
            None,
            html! { p.error { (message) } p { a href="/" { (ui.t("Buildings", "Здания")) } } },
        ),
    )
        .into_response()
}

/// The page for a failed query: 400 for values the database refused, else 503.
pub(crate) fn failed(ui: &Ui, e: &DataError) -> Response {
    if e.is_bad_input() {
        tracing::warn!(error = %e, "A request's data was refused by the database.");
        return page_error(
            ui,
            StatusCode::BAD_REQUEST,
            ui.t(
                "The request's values are out of range.",
                "Значения в запросе вне допустимых пределов.",
            ),
        );
    }
    tracing::error!(error = %e, "A query failed.");
    page_error(
        ui,
        StatusCode::SERVICE_UNAVAILABLE,
        ui.t(
            "The database is unavailable; try again.",
            "База данных недоступна; попробуйте ещё раз.",
        ),
    )
}

/// "No such ..." pages.
pub(crate) fn not_found(ui: &Ui, en: &'static str, ru: &'static str) -> Response {
    page_error(ui, StatusCode::NOT_FOUND, ui.t(en, ru))
}

/// An age ("5 min ago") of `t`, or "never".
pub(crate) fn opt_age(lang: Lang, t: Option<Time>) -> String {
    t.map_or_else(
        || lang.t("never", "никогда").to_owned(),
        |t| age(lang, (now_ms() - t.0) as f64 / 1000.0),
    )
}

fn gateway_rows(ui: &Ui, gateways: &[GatewayHealth]) -> Markup {
    let l = ui.lang;
    html! {
        table.gateways {
            tr { th { (ui.t("Gateway", "Шлюз")) } th { (ui.t("Status", "Состояние")) }
                 th { (ui.t("Last contact", "Последняя связь")) } th { (ui.t("Newest reading", "Последнее показание")) }
                 th { (ui.t("Backlog (rows)", "Очередь (строк)")) } }
            @for g in gateways {
                tr data-gateway=(g.gateway_id) {
                    td { (g.gateway_id) }
                    td { span class={"badge " (g.status)} data-status=(g.status) { (status_label(l, g.status)) } }
                    td title=[g.last_contact.map(Time::display)] { (opt_age(l, g.last_contact)) }
                    td title=[g.newest_reading.map(Time::display)] { (opt_age(l, g.newest_reading)) }
                    td.num { (g.lag_rows.map_or_else(|| "–".to_owned(), |n| n.to_string())) }
                }
            }
        }
    }
}

/// GET /: every building with its gateways' health and alarms.
pub(crate) async fn buildings(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Extension(ui): Extension<Ui>,
) -> Response {
    let list = match data::buildings(&st.pool, Viewer(&s.id_hash)).await {
        Ok(l) => l,
        Err(e) => return failed(&ui, &e),
    };
    let l = ui.lang;
    layout(
        &ui,
        ui.t("Buildings", "Здания"),
        Some(&s),
        html! {
            h1 { (ui.t("Buildings", "Здания")) }
            @if list.is_empty() { p.muted { (ui.t("No building yet: provision a gateway with markoff-central add-gateway.",
                                                 "Зданий пока нет: подключите шлюз командой markoff-central add-gateway.")) } }
            table #buildings {
                tr { th { (ui.t("Building", "Здание")) } th { (ui.t("Address", "Адрес")) } th { (ui.t("Status", "Состояние")) }
                     th { (ui.t("Gateways", "Шлюзы")) } th { (ui.t("Active alarms", "Активные тревоги")) }
                     th { (ui.t("Unacknowledged", "Не квитированы")) } }
                @for b in &list {
                    tr data-building=(b.building_id) {
                        td { a href={"/buildings/" (b.building_id)} { (b.name.as_deref().unwrap_or(&b.building_id)) } }
                        td { (b.address.as_deref().unwrap_or("")) }
                        td { span class={"badge " (b.status)} data-status=(b.status) { (status_label(l, b.status)) } }
                        td {
                            @for g in &b.gateways {
                                div { (g.gateway_id) ": " span class={"badge " (g.status)} data-status=(g.status) { (status_label(l, g.status)) }
                                    " " (ui.t("contact", "связь")) " " (opt_age(l, g.last_contact))
                                    @if let Some(lag) = g.lag_seconds { ", " (ui.t("newest reading", "последнее показание")) " " (age(l, lag)) }
                                    @if let Some(n) = g.lag_rows { ", " (ui.t("backlog", "очередь")) " " (n) " " (ui.t("rows", "строк")) } }
                            }
                        }
                        td.num { (b.active_alarms) }
                        @if b.unacked_alarms > 0 {
                            td.num.unacked-count { (b.unacked_alarms) }
                        } @else {
                            td.num { (b.unacked_alarms) }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// A table of alarms (`id` names it for links and tests).
pub(crate) fn alarm_table(ui: &Ui, alarms: &[AlarmView], id: &str) -> Markup {
    let l = ui.lang;
    html! {
        table id=(id) {
            tr { th { (ui.t("Alarm", "Тревога")) } th { (ui.t("State", "Состояние")) } th { (ui.t("Severity", "Важность")) }
                 th { (ui.t("Since", "С")) } th { (ui.t("Acknowledged", "Квитирована")) } th { (ui.t("Message", "Сообщение")) }
                 th { (ui.t("Comments", "Комментарии")) } }
            @for a in alarms {
                tr data-alarm={(a.gateway_id) "/" (a.alarm_id)} {
                    td { a href={"/alarms/" (a.gateway_id) "/" (a.alarm_id)} { (a.alarm) } }
                    td { span class={"badge " (a.state)} data-state=(a.state) { (state_label(l, &a.state)) } }
                    td data-severity=(a.severity) { (severity_label(l, &a.severity)) }
                    td title=(a.raised_at.unwrap_or(a.ts).display()) { (opt_age(l, Some(a.raised_at.unwrap_or(a.ts)))) }
                    td { @match (&a.acked_at, &a.acked_by) {
                        (Some(t), by) => { (opt_age(l, Some(*t))) @if let Some(b) = by { ", " (b) } }
                        _ => { @if a.state.ends_with("unacked") { span.error { (ui.t("no", "нет")) } } @else { "–" } }
                    }
                    @for p in &a.pending { br; span.pending data-pending=(p) { (action_label(l, p)) " "
                        (ui.t("asked, waiting for the gateway", "запрошено, ждёт шлюза")) } } }
                    td { (a.message) }
                    td.num { (a.comments) }
                }
            }
        }
    }
}

fn sensor_cell(lang: Lang, s: &SensorValue) -> Markup {
    let class = if s.stale || s.quality != Some("good") {
        "value stale"
    } else {
        "value"
    };
    html! {
        td class=(class) data-sensor={(s.gateway_id) "/" (s.sensor_id)} data-key=[s.key.as_deref()]
            data-value=[s.value.map(|v| v.to_string())] data-ts=[s.ts.map(|t| t.0)]
            title=[s.ts.map(|t| format!("{} ({})", t.display(), quality_label(lang, s.quality.unwrap_or("-"))))] {
            (reading_text(lang, s.value, s.kind.as_deref(), s.unit.as_deref()))
            @if let Some(q) = s.quality.filter(|q| *q != "good") { " (" (quality_label(lang, q)) ")" }
        }
    }
}

fn sensor_rows(lang: Lang, sensors: &[SensorValue]) -> Markup {
    html! {
        @for s in sensors {
            tr {
                td { a href={"/sensors/" (s.gateway_id) "/" (s.sensor_id)} { (s.label()) } }
                (sensor_cell(lang, s))
                td title=[s.ts.map(Time::display)] { (opt_age(lang, s.ts)) }
                td { @if let Some(a) = &s.alarm { span class={"badge " (a)} data-state=(a) { (state_label(lang, a)) } } }
            }
        }
    }
}

fn room_link(b: &str) -> impl Fn(&RoomView) -> String + '_ {
    move |r: &RoomView| format!("/buildings/{b}#room-{}", r.room_id)
}

fn floor_section(ui: &Ui, b: &BuildingView, f: &FloorView) -> Markup {
    let link = room_link(&b.building_id);
    let l = ui.lang;
    html! {
        section.floor id={"floor-" (f.floor_id)} {
            h2 { (ui.t("Floor", "Этаж")) " " (f.name) @if let Some(lv) = f.level { span.muted { " (" (ui.t("level", "уровень")) " " (lv) ")" } } }
            div.plan-box { (PreEscaped(floor_svg(l, f, &link))) }
            table.rooms {
                tr { th { (ui.t("Room", "Помещение")) } th { (ui.t("Tenant", "Арендатор")) } th { (ui.t("Sensor", "Датчик")) }
                     th { (ui.t("Value", "Значение")) } th { (ui.t("Updated", "Обновлено")) } th { (ui.t("Alarm", "Тревога")) } }
                @for r in &f.rooms {
                    @let fill = room_fill(r);
                    tr id={"room-" (r.room_id)} {
                        th rowspan=(r.sensors.len().max(1) + 1) style={"background:" (fill) ";color:" (text_on(&fill))} {
                            (r.name) @if r.name != r.room_id { span.muted { " (" (r.room_id) ")" } }
                        }
                        th rowspan=(r.sensors.len().max(1) + 1) { (r.tenant.as_deref().unwrap_or("")) }
                    }
                    (sensor_rows(l, &r.sensors))
                    @if r.sensors.is_empty() { tr { td colspan="4" .muted { (ui.t("no sensors", "нет датчиков")) } } }
                }
                @if !f.sensors.is_empty() {
                    tr { th colspan="2" rowspan=(f.sensors.len() + 1) { (ui.t("Elsewhere on the floor", "В других местах этажа")) } }
                    (sensor_rows(l, &f.sensors))
                }
            }
        }
    }
}

/// A swatch of the legend.
fn swatch(bg: &str, text: &str) -> Markup {
    html! { span style={"background:" (bg) ";color:" (text_on(bg))} { (text) } }
}

/// GET /buildings/{building}
pub(crate) async fn building(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Extension(ui): Extension<Ui>,
    Path(id): Path<String>,
) -> Response {
    let b = match data::building_rows(&st.pool, Viewer(&s.id_hash), &id, stale_ms(&st)).await {
        Ok(Some(rows)) => assemble(&id, rows),
        Ok(None) => return not_found(&ui, "No such building.", "Такого здания нет."),
        Err(e) => return failed(&ui, &e),
    };
    let title = b.name.clone().unwrap_or_else(|| b.building_id.clone());
    let l = ui.lang;
    layout(
        &ui,
        &title,
        Some(&s),
        html! {
            meta http-equiv="refresh" content="30";
            h1 #building data-building=(b.building_id) { (title) }
            @if let Some(a) = &b.address { p { (a) } }
            p { (ui.t("Status", "Состояние")) " " span class={"badge " (b.status)} data-status=(b.status) { (status_label(l, b.status)) } " · "
                a href={"/api/buildings/" (b.building_id)} { "JSON" } }
            (gateway_rows(&ui, &b.gateways))
            h2 { (ui.t("Active alarms", "Активные тревоги")) " (" (b.active_alarms.len()) ")" }
            @if b.active_alarms.is_empty() { p.muted { (ui.t("None.", "Нет.")) } } @else { (alarm_table(&ui, &b.active_alarms, "active-alarms")) }
            nav { (ui.t("Floors:", "Этажи:")) " " @for f in &b.floors { a href={"#floor-" (f.floor_id)} { (f.name) } " " } }
            p.legend { (ui.t("Rooms by temperature:", "Помещения по температуре:")) " "
                @for t in [16.0, 19.0, 21.0, 23.0, 25.0, 28.0] { (swatch(&temperature_colour(Some(t)), &format!("{t} °C"))) }
                (swatch(NO_VALUE, ui.t("no value", "нет данных"))) }
            p.legend { (ui.t("Plant rooms by their alarms:", "Технические помещения по тревогам:")) " "
                (swatch(PLANT_NORMAL, ui.t("normal", "норма")))
                (swatch(PLANT_ACKED, ui.t("alarm, acknowledged", "тревога квитирована")))
                (swatch(PLANT_UNACKED, ui.t("alarm, not acknowledged", "тревога не квитирована"))) }
            @for f in &b.floors { (floor_section(&ui, &b, f)) }
            @if !b.unplaced.is_empty() {
                h2 { (ui.t("Sensors on no floor", "Датчики вне этажей")) }
                table.rooms { tr { th { (ui.t("Sensor", "Датчик")) } th { (ui.t("Value", "Значение")) } th { (ui.t("Updated", "Обновлено")) } th { (ui.t("Alarm", "Тревога")) } }
                    (sensor_rows(l, &b.unplaced)) }
            }
            h2 { (ui.t("Recent alarms (back to normal, last 7 days)", "Недавние тревоги (вернулись в норму за 7 дней)")) }
            @if b.recent_alarms.is_empty() { p.muted { (ui.t("None.", "Нет.")) } } @else { (alarm_table(&ui, &b.recent_alarms, "recent-alarms")) }
            h2 { (ui.t("Tenants", "Арендаторы")) }
            @if b.tenants.is_empty() { p.muted { (ui.t("None listed.", "Не указаны.")) } }
            ul #tenants { @for t in &b.tenants { li { (t.name) @if !t.rooms.is_empty() { span.muted { ": " (t.rooms.join(", ")) } } } } }
        },
    )
    .into_response()
}

fn svg_response(svg: String) -> Response {
    ([(CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg).into_response()
}

/// GET /buildings/{building}/plans/{floor}: one floor plan as an SVG picture.
pub(crate) async fn plan_svg(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Extension(ui): Extension<Ui>,
    Path((id, floor)): Path<(String, String)>,
) -> Response {
    let floor = floor.strip_suffix(".svg").unwrap_or(&floor).to_owned();
    let b = match data::building_rows(&st.pool, Viewer(&s.id_hash), &id, stale_ms(&st)).await {
        Ok(Some(rows)) => assemble(&id, rows),
        Ok(None) => return not_found(&ui, "No such building.", "Такого здания нет."),
        Err(e) => return failed(&ui, &e),
    };
    match b.floors.iter().find(|f| f.floor_id == floor) {
        Some(f) => svg_response(floor_svg(ui.lang, f, &room_link(&id))),
        None => not_found(&ui, "No such floor.", "Такого этажа нет."),
    }
}

const RANGES: [&str; 6] = ["1h", "6h", "24h", "7d", "30d", "365d"];

/// A range's name as a link shows it.
fn range_label(lang: Lang, r: &str) -> String {
    let (n, unit) = r.split_at(r.len() - 1);
    let unit = match unit {
        "h" => lang.t("h", "ч"),
        "d" => lang.t("d", "дн."),
        "m" => lang.t("min", "мин"),
        other => other,
    };
    format!("{n} {unit}")
}

/// GET /sensors/{gateway}/{sensor}?range=7d
pub(crate) async fn sensor(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Extension(ui): Extension<Ui>,
    Path((gateway, sensor)): Path<(String, i32)>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let (from, to, points) = match q.resolve() {
        Ok(r) => r,
        Err(m) => return page_error(&ui, StatusCode::BAD_REQUEST, &m),
    };
    let h = match data::sensor_history(
        &st.pool,
        Viewer(&s.id_hash),
        &gateway,
        sensor,
        from,
        to,
        points,
        stale_ms(&st),
    )
    .await
    {
        Ok(Some(h)) => h,
        Ok(None) => return not_found(&ui, "No such sensor.", "Такого датчика нет."),
        Err(e) => return failed(&ui, &e),
    };
    let l = ui.lang;
    let range = q.range.clone().unwrap_or_else(|| "24h".to_owned());
    let unit = h.sensor.unit.clone().unwrap_or_default();
    let svg = history_svg(&ChartInput {
        points: &h.points,
        from,
        to,
        bucket_seconds: h.bucket_seconds,
        unit: &unit,
        lang: l,
    });
    let good: Vec<f64> = h.points.iter().filter_map(|p| p.avg).collect();
    let lo = h.points.iter().filter_map(|p| p.min).reduce(f64::min);
    let hi = h.points.iter().filter_map(|p| p.max).reduce(f64::max);
    let n: i64 = h.points.iter().map(|p| p.count).sum();
    let bad: i64 = h.points.iter().map(|p| p.bad).sum();
    let mean = (n > 0).then(|| {
        h.points
            .iter()
            .filter_map(|p| p.avg.map(|a| a * p.count as f64))
            .sum::<f64>()
            / n as f64
    });
    let label = h.sensor.label();
    layout(
        &ui,
        &label,
        Some(&s),
        html! {
            p { a href={"/buildings/" (h.building_id)} { (h.building_name.as_deref().unwrap_or(&h.building_id)) } }
            h1 #sensor { (label) }
            table {
                tr { th { (ui.t("Latest", "Последнее")) } (sensor_cell(l, &h.sensor)) }
                tr { th { (ui.t("Updated", "Обновлено")) } td { (opt_age(l, h.sensor.ts)) } }
                tr { th { (ui.t("Key", "Ключ")) } td { (h.sensor.key.as_deref().unwrap_or("–")) } }
                tr { th { (ui.t("Kind", "Вид")) } td { (h.sensor.kind.as_deref().map_or_else(|| "–".to_owned(), |k| kind_label(l, k))) } }
                tr { th { (ui.t("Floor / room", "Этаж / помещение")) } td { (h.sensor.floor.as_deref().unwrap_or("–")) " / " (h.sensor.room.as_deref().unwrap_or("–")) } }
                tr { th { (ui.t("Gateway", "Шлюз")) } td { (h.sensor.gateway_id) " · " (ui.t("sensor", "датчик")) " " (h.sensor.sensor_id) } }
            }
            p { (ui.t("Range:", "Период:")) " " @for r in RANGES {
                @if r == range { b { (range_label(l, r)) } " " } @else { a href={"?range=" (r)} { (range_label(l, r)) } " " }
            } " · " a href={"/api/sensors/" (gateway) "/" (sensor) "?range=" (range)} { "JSON" } }
            (PreEscaped(svg))
            @if good.len() < 2 { p #not-enough { (ui.t("Not enough data yet for a chart: buckets with a value so far:",
                                                       "Пока мало данных для графика; интервалов со значением:")) " " (good.len()) } }
            p.muted { (h.points.len()) " " (ui.t("buckets of", "интервалов по")) " " (h.bucket_seconds) " " (ui.t("s", "с")) ", "
                (good.len()) " " (ui.t("with good values", "с верными значениями")) " · "
                (ui.t("min", "мин.")) " " (value_text(lo, Some(&unit))) ", " (ui.t("mean", "среднее")) " " (value_text(mean, Some(&unit))) ", "
                (ui.t("max", "макс.")) " " (value_text(hi, Some(&unit)))
                " · " (ui.t("good readings:", "верных показаний:")) " " (n) ", " (ui.t("without a value:", "без значения:")) " " (bad) }
            h2 { (ui.t("Alarms", "Тревоги")) }
            @if h.alarms.is_empty() { p.muted { (ui.t("None.", "Нет.")) } } @else { (alarm_table(&ui, &h.alarms, "sensor-alarms")) }
        },
    )
    .into_response()
}

/// GET /sensors/{gateway}/{sensor}/chart.svg?range=7d: the history chart as an SVG picture.
pub(crate) async fn chart_svg(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Extension(ui): Extension<Ui>,
    Path((gateway, sensor)): Path<(String, i32)>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let (from, to, points) = match q.resolve() {
        Ok(r) => r,
        Err(m) => return page_error(&ui, StatusCode::BAD_REQUEST, &m),
    };
    match data::sensor_history(
        &st.pool,
        Viewer(&s.id_hash),
        &gateway,
        sensor,
        from,
        to,
        points,
        stale_ms(&st),
    )
    .await
    {
        Ok(Some(h)) => svg_response(history_svg(&ChartInput {
            points: &h.points,
            from,
            to,
            bucket_seconds: h.bucket_seconds,
            unit: h.sensor.unit.as_deref().unwrap_or(""),
            lang: ui.lang,
        })),
        Ok(None) => not_found(&ui, "No such sensor.", "Такого датчика нет."),
        Err(e) => failed(&ui, &e),
    }
}
