//! The alarm page: the alarm now, the forms to acknowledge or shelve it from the office (see
//! `requests`), its comments and its events; and adding a comment.
//!
//! Owns: that page's markup and the comment form's route. Does not own: the data (`data`) or the
//! page frame (`pages`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;

use super::AppState;
use super::api::comment_text;
use super::data::{self, Viewer};
use super::pages::{alarm_table, failed, layout, not_found, opt_age, page_error};
use super::session::{self, Session};
use super::words::{Lang, Ui, action_label, event_label, shelve_text, state_label, value_text};

/// The channel an event came through, in words.
fn channel_label(lang: Lang, channel: &str) -> String {
    match channel {
        "telegram" => "Telegram".to_owned(),
        "lan" => lang.t("LAN page", "страница в локальной сети").to_owned(),
        "office" => lang.t("office", "офис").to_owned(),
        "cli" => lang.t("command line", "командная строка").to_owned(),
        "api" => lang.t("local API", "локальный API").to_owned(),
        "engine" | "system" => lang.t("automatic", "автоматически").to_owned(),
        other => other.to_owned(),
    }
}

/// GET /alarms/{gateway}/{alarm}
pub(crate) async fn alarm(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Extension(ui): Extension<Ui>,
    Path((gateway, alarm)): Path<(String, i64)>,
) -> Response {
    let a = match data::alarm(&st.pool, Viewer(&s.id_hash), &gateway, alarm).await {
        Ok(Some(a)) => a,
        Ok(None) => return not_found(&ui, "No such alarm.", "Такой тревоги нет."),
        Err(e) => return failed(&ui, &e),
    };
    let l = ui.lang;
    let action = format!(
        "/alarms/{}/{}/requests",
        a.alarm.gateway_id, a.alarm.alarm_id
    );
    layout(
        &ui,
        &a.alarm.alarm,
        Some(&s),
        html! {
            p { a href={"/buildings/" (a.building_id)} { (a.building_name.as_deref().unwrap_or(&a.building_id)) } }
            h1 #alarm { (a.alarm.alarm) }
            (alarm_table(&ui, std::slice::from_ref(&a.alarm), "alarm-now"))
            @if let Some(id) = a.sensor_id { p { a href={"/sensors/" (a.alarm.gateway_id) "/" (id)} { (ui.t("Sensor history", "История датчика")) } } }
            h2 #requests { (ui.t("Acknowledge or shelve", "Квитировать или отложить")) }
            p.muted { (ui.t("The gateway applies the request on its next contact, as your account there \
                             ([[users]] office_login); until then it waits here.",
                            "Шлюз выполнит запрос при следующей связи, от имени вашей учётной записи на нём \
                             ([[users]] office_login); до тех пор запрос ждёт здесь.")) }
            form.actions method="post" action=(action) {
                input type="hidden" name="csrf" value=(s.csrf);
                button #request-ack type="submit" name="action" value="ack" { (ui.t("Acknowledge", "Квитировать")) }
            }
            form.actions method="post" action=(action) {
                input type="hidden" name="csrf" value=(s.csrf);
                input type="hidden" name="action" value="shelve";
                label { (ui.t("Shelve for", "Отложить на")) " " select name="duration" {
                    option value="1h" { (ui.t("1 hour", "1 час")) } option value="8h" selected { (ui.t("8 hours", "8 часов")) }
                    option value="24h" { (ui.t("24 hours", "24 часа")) }
                } }
                " "
                button #request-shelve type="submit" { (ui.t("Shelve", "Отложить")) }
            }
            @if !a.requests.is_empty() {
                table #office-requests {
                    tr { th { (ui.t("Asked", "Запрошено")) } th { (ui.t("By", "Кем")) } th { (ui.t("Action", "Действие")) }
                         th { (ui.t("State", "Состояние")) } th { (ui.t("Applied as", "Выполнено как")) } }
                    @for r in &a.requests {
                        tr data-request=(r.request_id) data-state=(r.state) {
                            td title=(r.requested_at.display()) { (opt_age(l, Some(r.requested_at))) }
                            td { (r.display_name) }
                            td { (action_label(l, &r.action)) @if let Some(sec) = r.shelve_seconds { " " (ui.t("for", "на")) " " (shelve_text(l, sec)) } }
                            td { @match r.state.as_str() {
                                "pending" => { span.pending { (ui.t("waiting for the gateway", "ждёт шлюза")) }
                                    span.muted { " (" (ui.t("last contact", "последняя связь")) " " (opt_age(l, a.gateway_last_contact)) ")" } }
                                "done" => { span.done { (ui.t("done", "выполнено")) } }
                                _ => { span.error { (ui.t("refused", "отклонено")) } @if let Some(d) = &r.detail { ": " (d) } }
                            } }
                            td { (r.actor.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            h2 #comments { (ui.t("Comments", "Комментарии")) }
            @if a.comments.is_empty() { p.muted { (ui.t("No comment yet.", "Комментариев пока нет.")) } }
            @for c in &a.comments {
                div.comment data-comment=(c.comment_id) { p { b { (c.author) } span.muted { " · " (c.created_at.display()) } } p { (c.body) } }
            }
            form method="post" action={"/alarms/" (a.alarm.gateway_id) "/" (a.alarm.alarm_id) "/comments"} {
                input type="hidden" name="csrf" value=(s.csrf);
                textarea name="body" rows="3" maxlength="4000" required aria-label=(ui.t("Comment", "Комментарий")) {}
                br;
                button #add-comment type="submit" { (ui.t("Add comment", "Добавить комментарий")) }
            }
            h2 { (ui.t("Events", "События")) }
            table #events {
                tr { th { "№" } th { (ui.t("Time", "Время")) } th { (ui.t("Event", "Событие")) } th { (ui.t("State", "Состояние")) }
                     th { (ui.t("Value", "Значение")) } th { (ui.t("Message", "Сообщение")) } th { (ui.t("By", "Кем")) } }
                @for e in &a.events {
                    tr { td.num { (e.seq) } td { (e.ts.display()) } td data-event=(e.event) { (event_label(l, &e.event)) }
                         td { (state_label(l, &e.state)) }
                         td.num { (value_text(e.value, None)) } td { (e.message) }
                         td { (e.actor.as_deref().unwrap_or("")) @if let Some(c) = &e.channel { span.muted { " (" (channel_label(l, c)) ")" } } } }
                }
            }
        },
    )
    .into_response()
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
    Extension(ui): Extension<Ui>,
    Path((gateway, alarm)): Path<(String, i64)>,
    Form(f): Form<CommentForm>,
) -> Response {
    if !session::same(&s.csrf, &f.csrf) {
        return page_error(
            &ui,
            StatusCode::FORBIDDEN,
            ui.t(
                "The form is not valid for this session; reload the page.",
                "Форма недействительна для этого сеанса; обновите страницу.",
            ),
        );
    }
    let body = match comment_text(&f.body) {
        Ok(b) => b,
        Err(m) => return page_error(&ui, StatusCode::UNPROCESSABLE_ENTITY, m),
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
        Ok(None) => not_found(&ui, "No such alarm.", "Такой тревоги нет."),
        Err(e) => failed(&ui, &e),
    }
}
