//! The HTML pages (maud, rendered on the server, no JavaScript): the buildings list, a
//! building with its floor plans, values, alarms and tenants, a sensor with its history chart,
//! and an alarm with its events and comments. Each page shows what its `/api/...` twin returns.
//!
//! Owns: markup and the page routes. Does not own: the data (`data`, `building`) or the SVG
//! (`plan`, `chart`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use super::AppState;
use super::api::{RangeQuery, comment_text, stale_ms};
use super::building::{BuildingView, FloorView, RoomView, assemble};
use super::chart::{ChartInput, history_svg};
use super::data::{self, AlarmView, DataError, GatewayHealth, SensorValue, Viewer};
use super::plan::{floor_svg, temperature_colour, text_on};
use super::session::{self, Session};
use super::time::{Time, age, now_ms};

/// Phone first: nothing is wider than the screen (a table scrolls inside its own box), and
/// every text has a contrast of at least 4.5:1 on its background (WCAG AA).
const STYLE: &str = "
*{box-sizing:border-box}
body{font-family:'DejaVu Sans',Arial,sans-serif;margin:0;color:#1a1a1a;background:#f6f6f4;overflow-wrap:anywhere}
header{background:#243447;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;gap:.6em;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:bold}header form{margin-left:auto}
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
.plan,.chart{background:#fff;border:1px solid #ccc;max-width:100%;height:auto}.legend span{display:inline-block;padding:0 .5em}
textarea{width:100%;max-width:40em}
.pending{color:#8a4b00;font-weight:bold}.done{color:#1b5e20;font-weight:bold}form.actions{margin:.4em 0}";

/// The page frame; `session` adds the user and the logout button.
pub(crate) fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Markoff" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a href="/" { "Markoff · buildings" }
                    @if let Some(s) = session {
                        form method="post" action="/logout" {
                            span { (s.name) " " }
                            input type="hidden" name="csrf" value=(s.csrf);
                            button #logout type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub(crate) fn page_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        layout(
            "Error",
            None,
            html! { p.error { (message) } p { a href="/" { "Buildings" } } },
        ),
    )
        .into_response()
}

pub(crate) fn failed(e: &DataError) -> Response {
    if e.is_bad_input() {
        tracing::warn!(error = %e, "A request's data was refused by the database.");
        return page_error(
            StatusCode::BAD_REQUEST,
            "The request's values are out of range.",
        );
    }
    tracing::error!(error = %e, "A query failed.");
    page_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The database is unavailable; try again.",
    )
}

/// The words for 0 and 1 of a sensor of `kind` that reads a state, not a quantity.
fn state_words(kind: Option<&str>) -> Option<(&'static str, &'static str)> {
    let k = kind?.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| k.contains(w));
    if has(&["leak", "flood", "water_detect"]) {
        Some(("dry", "wet"))
    } else if has(&["door", "window", "valve", "contact", "hatch"]) {
        Some(("closed", "open"))
    } else if has(&[
        "burner", "pump", "fan", "relay", "switch", "running", "on_off", "onoff", "state",
    ]) {
        Some(("off", "on"))
    } else {
        None
    }
}

/// A sensor's value as a person reads it: a state as a word (dry/wet, closed/open, off/on),
/// else the number with its unit.
pub(crate) fn reading_text(v: Option<f64>, kind: Option<&str>, unit: Option<&str>) -> String {
    match (v, state_words(kind)) {
        (Some(v), Some((zero, one))) if v == 0.0 || v == 1.0 => {
            (if v == 0.0 { zero } else { one }).to_owned()
        }
        _ => value_text(v, unit),
    }
}

/// An alarm state in words.
pub(crate) fn state_label(state: &str) -> &str {
    match state {
        "active_unacked" => "active, not acknowledged",
        "active_acked" => "active, acknowledged",
        "cleared_unacked" => "cleared, not acknowledged",
        "normal" => "back to normal",
        "shelved" => "shelved",
        other => other,
    }
}

/// An alarm severity in words.
pub(crate) fn severity_label(severity: &str) -> &str {
    match severity {
        "critical" => "Critical",
        "high" => "High",
        "medium" => "Medium",
        "low" => "Low",
        "info" | "information" => "Information",
        other => other,
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

fn opt_age(t: Option<Time>) -> String {
    t.map_or_else(
        || "never".to_owned(),
        |t| age((now_ms() - t.0) as f64 / 1000.0),
    )
}

fn gateway_rows(gateways: &[GatewayHealth]) -> Markup {
    html! {
        table.gateways {
            tr { th { "Gateway" } th { "Status" } th { "Last contact" } th { "Newest reading" } th { "Backlog (rows)" } }
            @for g in gateways {
                tr data-gateway=(g.gateway_id) {
                    td { (g.gateway_id) }
                    td { span class={"badge " (g.status)} { (g.status) } }
                    td title=[g.last_contact.map(Time::display)] { (opt_age(g.last_contact)) }
                    td title=[g.newest_reading.map(Time::display)] { (opt_age(g.newest_reading)) }
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
) -> Response {
    let list = match data::buildings(&st.pool, Viewer(&s.id_hash)).await {
        Ok(l) => l,
        Err(e) => return failed(&e),
    };
    layout(
        "Buildings",
        Some(&s),
        html! {
            h1 { "Buildings" }
            @if list.is_empty() { p.muted { "No building yet: provision a gateway with markoff-central add-gateway." } }
            table #buildings {
                tr { th { "Building" } th { "Address" } th { "Status" } th { "Gateways" } th { "Active alarms" } th { "Unacknowledged" } }
                @for b in &list {
                    tr data-building=(b.building_id) {
                        td { a href={"/buildings/" (b.building_id)} { (b.name.as_deref().unwrap_or(&b.building_id)) } }
                        td { (b.address.as_deref().unwrap_or("")) }
                        td { span class={"badge " (b.status)} { (b.status) } }
                        td {
                            @for g in &b.gateways {
                                div { (g.gateway_id) ": " span class={"badge " (g.status)} { (g.status) }
                                    " contact " (opt_age(g.last_contact))
                                    @if let Some(l) = g.lag_seconds { ", newest reading " (age(l)) }
                                    @if let Some(n) = g.lag_rows { ", backlog " (n) " rows" } }
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

fn alarm_table(alarms: &[AlarmView], id: &str) -> Markup {
    html! {
        table id=(id) {
            tr { th { "Alarm" } th { "State" } th { "Severity" } th { "Since" } th { "Acknowledged" } th { "Message" } th { "Comments" } }
            @for a in alarms {
                tr data-alarm={(a.gateway_id) "/" (a.alarm_id)} {
                    td { a href={"/alarms/" (a.gateway_id) "/" (a.alarm_id)} { (a.alarm) } }
                    td { span class={"badge " (a.state)} data-state=(a.state) { (state_label(&a.state)) } }
                    td data-severity=(a.severity) { (severity_label(&a.severity)) }
                    td title=(a.raised_at.unwrap_or(a.ts).display()) { (opt_age(Some(a.raised_at.unwrap_or(a.ts)))) }
                    td { @match (&a.acked_at, &a.acked_by) {
                        (Some(t), by) => { (opt_age(Some(*t))) @if let Some(b) = by { " by " (b) } }
                        _ => { @if a.state.ends_with("unacked") { span.error { "no" } } @else { "–" } }
                    }
                    @for p in &a.pending { br; span.pending data-pending=(p) { (action_label(p)) " asked, waiting for the gateway" } } }
                    td { (a.message) }
                    td.num { (a.comments) }
                }
            }
        }
    }
}

fn sensor_cell(s: &SensorValue) -> Markup {
    let class = if s.stale || s.quality != Some("good") {
        "value stale"
    } else {
        "value"
    };
    html! {
        td class=(class) data-sensor={(s.gateway_id) "/" (s.sensor_id)} data-key=[s.key.as_deref()]
            data-value=[s.value.map(|v| v.to_string())] data-ts=[s.ts.map(|t| t.0)]
            title=[s.ts.map(|t| format!("{} ({})", t.display(), s.quality.unwrap_or("-")))] {
            (reading_text(s.value, s.kind.as_deref(), s.unit.as_deref()))
            @if s.quality.is_some_and(|q| q != "good") { " (" (s.quality.unwrap_or_default()) ")" }
        }
    }
}

fn sensor_rows(sensors: &[SensorValue]) -> Markup {
    html! {
        @for s in sensors {
            tr {
                td { a href={"/sensors/" (s.gateway_id) "/" (s.sensor_id)} { (s.label()) } }
                (sensor_cell(s))
                td title=[s.ts.map(Time::display)] { (opt_age(s.ts)) }
                td { @if let Some(a) = &s.alarm { span class={"badge " (a)} data-state=(a) { (state_label(a)) } } }
            }
        }
    }
}

fn room_link(b: &str) -> impl Fn(&RoomView) -> String + '_ {
    move |r: &RoomView| format!("/buildings/{b}#room-{}", r.room_id)
}

fn floor_section(b: &BuildingView, f: &FloorView) -> Markup {
    let link = room_link(&b.building_id);
    html! {
        section.floor id={"floor-" (f.floor_id)} {
            h2 { "Floor " (f.name) @if let Some(l) = f.level { span.muted { " (level " (l) ")" } } }
            (PreEscaped(floor_svg(f, &link)))
            table.rooms {
                tr { th { "Room" } th { "Tenant" } th { "Sensor" } th { "Value" } th { "Updated" } th { "Alarm" } }
                @for r in &f.rooms {
                    tr id={"room-" (r.room_id)} {
                        th rowspan=(r.sensors.len().max(1) + 1) style={"background:" (temperature_colour(r.temperature)) ";color:" (text_on(&temperature_colour(r.temperature)))} {
                            (r.name) @if r.name != r.room_id { span.muted { " (" (r.room_id) ")" } }
                        }
                        th rowspan=(r.sensors.len().max(1) + 1) { (r.tenant.as_deref().unwrap_or("")) }
                    }
                    (sensor_rows(&r.sensors))
                    @if r.sensors.is_empty() { tr { td colspan="4" .muted { "no sensors" } } }
                }
                @if !f.sensors.is_empty() {
                    tr { th colspan="2" rowspan=(f.sensors.len() + 1) { "Elsewhere on the floor" } }
                    (sensor_rows(&f.sensors))
                }
            }
        }
    }
}

/// GET /buildings/{building}
pub(crate) async fn building(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let b = match data::building_rows(&st.pool, Viewer(&s.id_hash), &id, stale_ms(&st)).await {
        Ok(Some(rows)) => assemble(&id, rows),
        Ok(None) => return page_error(StatusCode::NOT_FOUND, "No such building."),
        Err(e) => return failed(&e),
    };
    let title = b.name.clone().unwrap_or_else(|| b.building_id.clone());
    layout(
        &title,
        Some(&s),
        html! {
            meta http-equiv="refresh" content="30";
            h1 #building data-building=(b.building_id) { (title) }
            @if let Some(a) = &b.address { p { (a) } }
            p { "Status " span class={"badge " (b.status)} { (b.status) } " · "
                a href={"/api/buildings/" (b.building_id)} { "JSON" } }
            (gateway_rows(&b.gateways))
            h2 { "Active alarms (" (b.active_alarms.len()) ")" }
            @if b.active_alarms.is_empty() { p.muted { "None." } } @else { (alarm_table(&b.active_alarms, "active-alarms")) }
            nav { "Floors: " @for f in &b.floors { a href={"#floor-" (f.floor_id)} { (f.name) } " " } }
            p.legend { "Rooms by temperature: "
                @for t in [16.0, 19.0, 21.0, 23.0, 25.0, 28.0] { span style={"background:" (temperature_colour(Some(t))) ";color:" (text_on(&temperature_colour(Some(t))))} { (t) " °C" } }
                span style={"background:" (temperature_colour(None)) ";color:" (text_on(&temperature_colour(None)))} { "no value" } }
            @for f in &b.floors { (floor_section(&b, f)) }
            @if !b.unplaced.is_empty() {
                h2 { "Sensors on no floor" }
                table.rooms { tr { th { "Sensor" } th { "Value" } th { "Updated" } th { "Alarm" } } (sensor_rows(&b.unplaced)) }
            }
            h2 { "Recent alarms (back to normal, last 7 days)" }
            @if b.recent_alarms.is_empty() { p.muted { "None." } } @else { (alarm_table(&b.recent_alarms, "recent-alarms")) }
            h2 { "Tenants" }
            @if b.tenants.is_empty() { p.muted { "None listed." } }
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
    Path((id, floor)): Path<(String, String)>,
) -> Response {
    let floor = floor.strip_suffix(".svg").unwrap_or(&floor).to_owned();
    let b = match data::building_rows(&st.pool, Viewer(&s.id_hash), &id, stale_ms(&st)).await {
        Ok(Some(rows)) => assemble(&id, rows),
        Ok(None) => return page_error(StatusCode::NOT_FOUND, "No such building."),
        Err(e) => return failed(&e),
    };
    match b.floors.iter().find(|f| f.floor_id == floor) {
        Some(f) => svg_response(floor_svg(f, &room_link(&id))),
        None => page_error(StatusCode::NOT_FOUND, "No such floor."),
    }
}

const RANGES: [&str; 5] = ["1h", "6h", "24h", "7d", "30d"];

/// GET /sensors/{gateway}/{sensor}?range=7d
pub(crate) async fn sensor(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path((gateway, sensor)): Path<(String, i32)>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let (from, to, points) = match q.resolve() {
        Ok(r) => r,
        Err(m) => return page_error(StatusCode::BAD_REQUEST, &m),
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
        Ok(None) => return page_error(StatusCode::NOT_FOUND, "No such sensor."),
        Err(e) => return failed(&e),
    };
    let range = q.range.clone().unwrap_or_else(|| "24h".to_owned());
    let unit = h.sensor.unit.clone().unwrap_or_default();
    let svg = history_svg(&ChartInput {
        points: &h.points,
        from,
        to,
        bucket_seconds: h.bucket_seconds,
        unit: &unit,
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
        &label,
        Some(&s),
        html! {
            p { a href={"/buildings/" (h.building_id)} { (h.building_name.as_deref().unwrap_or(&h.building_id)) } }
            h1 #sensor { (label) }
            table {
                tr { th { "Latest" } (sensor_cell(&h.sensor)) }
                tr { th { "Updated" } td { (opt_age(h.sensor.ts)) } }
                tr { th { "Key" } td { (h.sensor.key.as_deref().unwrap_or("–")) } }
                tr { th { "Kind" } td { (h.sensor.kind.as_deref().unwrap_or("–")) } }
                tr { th { "Floor / room" } td { (h.sensor.floor.as_deref().unwrap_or("–")) " / " (h.sensor.room.as_deref().unwrap_or("–")) } }
                tr { th { "Gateway" } td { (h.sensor.gateway_id) " · sensor " (h.sensor.sensor_id) } }
            }
            p { "Range: " @for r in RANGES {
                @if r == range { b { (r) } " " } @else { a href={"?range=" (r)} { (r) } " " }
            } " · " a href={"/api/sensors/" (gateway) "/" (sensor) "?range=" (range)} { "JSON" } }
            (PreEscaped(svg))
            @if good.len() < 2 { p #not-enough { "Not enough data yet for a chart: " (good.len()) " bucket(s) with a value so far." } }
            p.muted { (h.points.len()) " buckets of " (h.bucket_seconds) " s, " (good.len()) " with good values · "
                "min " (value_text(lo, Some(&unit))) ", mean " (value_text(mean, Some(&unit))) ", max " (value_text(hi, Some(&unit)))
                " · " (n) " good readings, " (bad) " without a value" }
            h2 { "Alarms" }
            @if h.alarms.is_empty() { p.muted { "None." } } @else { (alarm_table(&h.alarms, "sensor-alarms")) }
        },
    )
    .into_response()
}

/// GET /sensors/{gateway}/{sensor}/chart.svg?range=7d: the history chart as an SVG picture.
pub(crate) async fn chart_svg(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path((gateway, sensor)): Path<(String, i32)>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let (from, to, points) = match q.resolve() {
        Ok(r) => r,
        Err(m) => return page_error(StatusCode::BAD_REQUEST, &m),
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
        })),
        Ok(None) => page_error(StatusCode::NOT_FOUND, "No such sensor."),
        Err(e) => failed(&e),
    }
}

/// GET /alarms/{gateway}/{alarm}
pub(crate) async fn alarm(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path((gateway, alarm)): Path<(String, i64)>,
) -> Response {
    let a = match data::alarm(&st.pool, Viewer(&s.id_hash), &gateway, alarm).await {
        Ok(Some(a)) => a,
        Ok(None) => return page_error(StatusCode::NOT_FOUND, "No such alarm."),
        Err(e) => return failed(&e),
    };
    layout(
        &a.alarm.alarm,
        Some(&s),
        html! {
            p { a href={"/buildings/" (a.building_id)} { (a.building_name.as_deref().unwrap_or(&a.building_id)) } }
            h1 #alarm { (a.alarm.alarm) }
            (alarm_table(std::slice::from_ref(&a.alarm), "alarm-now"))
            @if let Some(id) = a.sensor_id { p { a href={"/sensors/" (a.alarm.gateway_id) "/" (id)} { "Sensor history" } } }
            h2 #requests { "Acknowledge or shelve" }
            p.muted { "The gateway applies the request on its next contact, as your account there ("
                      "[[users]] office_login); until then it waits here." }
            form.actions method="post" action={"/alarms/" (a.alarm.gateway_id) "/" (a.alarm.alarm_id) "/requests"} {
                input type="hidden" name="csrf" value=(s.csrf);
                button #request-ack type="submit" name="action" value="ack" { "Acknowledge" }
            }
            form.actions method="post" action={"/alarms/" (a.alarm.gateway_id) "/" (a.alarm.alarm_id) "/requests"} {
                input type="hidden" name="csrf" value=(s.csrf);
                input type="hidden" name="action" value="shelve";
                label { "Shelve for " select name="duration" {
                    option value="1h" { "1 hour" } option value="8h" selected { "8 hours" } option value="24h" { "24 hours" }
                } }
                " "
                button #request-shelve type="submit" { "Shelve" }
            }
            @if !a.requests.is_empty() {
                table #office-requests {
                    tr { th { "Asked" } th { "By" } th { "Action" } th { "State" } th { "Applied as" } }
                    @for r in &a.requests {
                        tr data-request=(r.request_id) data-state=(r.state) {
                            td title=(r.requested_at.display()) { (opt_age(Some(r.requested_at))) }
                            td { (r.display_name) }
                            td { (action_label(&r.action)) @if let Some(sec) = r.shelve_seconds { " for " (shelve_text(sec)) } }
                            td { @match r.state.as_str() {
                                "pending" => { span.pending { "waiting for the gateway" }
                                    span.muted { " (last contact " (opt_age(a.gateway_last_contact)) ")" } }
                                "done" => { span.done { "done" } }
                                _ => { span.error { "refused" } @if let Some(d) = &r.detail { ": " (d) } }
                            } }
                            td { (r.actor.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            h2 #comments { "Comments" }
            @if a.comments.is_empty() { p.muted { "No comment yet." } }
            @for c in &a.comments {
                div.comment data-comment=(c.comment_id) { p { b { (c.author) } span.muted { " · " (c.created_at.display()) } } p { (c.body) } }
            }
            form method="post" action={"/alarms/" (a.alarm.gateway_id) "/" (a.alarm.alarm_id) "/comments"} {
                input type="hidden" name="csrf" value=(s.csrf);
                textarea name="body" rows="3" maxlength="4000" required {}
                br;
                button #add-comment type="submit" { "Add comment" }
            }
            h2 { "Events" }
            table #events {
                tr { th { "Seq" } th { "Time" } th { "Event" } th { "State" } th { "Value" } th { "Message" } th { "By" } }
                @for e in &a.events {
                    tr { td.num { (e.seq) } td { (e.ts.display()) } td { (e.event) } td { (state_label(&e.state)) }
                         td.num { (value_text(e.value, None)) } td { (e.message) }
                         td { (e.actor.as_deref().unwrap_or("")) @if let Some(c) = &e.channel { span.muted { " (" (c) ")" } } } }
                }
            }
        },
    )
    .into_response()
}

/// "Acknowledgement" or "Shelving" for a request's action.
fn action_label(action: &str) -> &str {
    match action {
        "ack" => "Acknowledgement",
        "shelve" => "Shelving",
        other => other,
    }
}

/// "8 h", "30 min" for a shelving's length.
fn shelve_text(seconds: i32) -> String {
    if seconds % 3600 == 0 {
        format!("{} h", seconds / 3600)
    } else {
        format!("{} min", seconds / 60)
    }
}

/// The comment form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct CommentForm {
    csrf: String,
    body: String,
}

/// POST /alarms/{gateway}/{alarm}/comments (form): adds a comment, back to the alarm.
pub(crate) async fn add_comment(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path((gateway, alarm)): Path<(String, i64)>,
    Form(f): Form<CommentForm>,
) -> Response {
    if !session::same(&s.csrf, &f.csrf) {
        return page_error(
            StatusCode::FORBIDDEN,
            "The form is not valid for this session; reload the page.",
        );
    }
    let body = match comment_text(&f.body) {
        Ok(b) => b,
        Err(m) => return page_error(StatusCode::UNPROCESSABLE_ENTITY, m),
    };
    match data::add_comment(
        &st.pool,
        Viewer(&s.id_hash),
        &gateway,
        alarm,
        s.user_id,
        &s.name,
        body,
    )
    .await
    {
        Ok(Some(_)) => {
            tracing::info!(login = %s.login, gateway = %gateway, alarm, "Alarm comment added.");
            Redirect::to(&format!("/alarms/{gateway}/{alarm}#comments")).into_response()
        }
        Ok(None) => page_error(StatusCode::NOT_FOUND, "No such alarm."),
        Err(e) => failed(&e),
    }
}
