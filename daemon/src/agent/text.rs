//! The assistant's own wording, in English and Russian: the system prompt, the offline notice,
//! and the templates slash commands and the offline router answer with.
//!
//! Owns: language choice and templates. Does not own: the data (`super::tools`).

use std::fmt::Write as _;

use super::Question;
use super::tools::{
    AlarmItem, FloorSummary, HistorySummary, Overview, ReadingItem, SensorInfo, SyncSummary,
    TenantSummary, ToolError,
};
use crate::alarms::text::{number, severity_word, state_word};
use crate::config::Config;
use crate::model::{Lang, Quality, Severity};

/// Picks the answer language: the script of the question when it tells (Cyrillic → Russian,
/// Latin → English), else what the channel knows, else the user's `[[users]] lang`, else
/// `[agent] language`.
pub fn pick_lang(q: &Question, cfg: &Config) -> Lang {
    if let Some(l) = script_lang(&q.text) {
        return l;
    }
    if let Some(l) = q.lang {
        return l;
    }
    if let Some(u) = cfg.users.iter().find(|u| u.login == q.actor.user) {
        return u.lang;
    }
    cfg.agent.language
}

/// The language a text is written in, when its letters tell (commands do not count).
pub fn script_lang(text: &str) -> Option<Lang> {
    let text = text.trim();
    let words = if text.starts_with('/') {
        text.split_once(char::is_whitespace)
            .map_or("", |(_, rest)| rest)
    } else {
        text
    };
    let cyr = words
        .chars()
        .filter(|c| ('\u{0400}'..='\u{04FF}').contains(c))
        .count();
    let lat = words.chars().filter(char::is_ascii_alphabetic).count();
    if cyr > 0 && (cyr >= 3 || cyr * 2 >= lat) {
        Some(Lang::Ru)
    } else if lat >= 3 && cyr == 0 {
        Some(Lang::En)
    } else {
        None
    }
}

fn t(lang: Lang, en: &str, ru: &str) -> String {
    match lang {
        Lang::En => en.to_owned(),
        Lang::Ru => ru.to_owned(),
    }
}

/// The system prompt: who the assistant is, the rules and the building. It holds nothing that
/// changes between questions (the time goes with the question, see [`question_with_time`]),
/// so the server reuses its prompt cache for it and the tool list.
pub fn system_prompt(lang: Lang, building: &str, extra: Option<&str>) -> String {
    let mut p = match lang {
        Lang::En => format!(
            "You are the on-site assistant of the building \"{building}\". Building staff ask you about sensors, alarms and the building.\n\
             Rules:\n\
             - Get data with the tools; never invent values, sensor ids or alarm numbers. Use find_sensors when you do not know a sensor id.\n\
             - Answer in English, briefly (at most 5 sentences), with numbers, units and times.\n\
             - If a reading is stale (stale: true), say so and say when it was last read.\n\
             - To acknowledge an alarm call acknowledge_alarm; the person confirms it with a button, so say it still needs confirming.\n\
             - Times are UTC; the time now is given after each question."
        ),
        Lang::Ru => format!(
            "Ты дежурный помощник здания «{building}». Персонал спрашивает тебя о датчиках, тревогах и здании.\n\
             Правила:\n\
             - Данные бери только из инструментов; никогда не выдумывай значения, идентификаторы датчиков и номера тревог. Если не знаешь идентификатор датчика, вызови find_sensors.\n\
             - Отвечай по-русски, кратко (не больше 5 предложений), с числами, единицами измерения и временем.\n\
             - Если показание устарело (stale: true), скажи об этом и когда оно было получено.\n\
             - Чтобы квитировать тревогу, вызови acknowledge_alarm; человек подтвердит это кнопкой, поэтому скажи, что нужно подтверждение.\n\
             - Время в UTC; текущее время указано после каждого вопроса."
        ),
    };
    if let Some(extra) = extra.map(str::trim).filter(|e| !e.is_empty()) {
        p.push('\n');
        p.push_str(extra);
    }
    p
}

/// The question as the model gets it: the person's words and the time now.
pub fn question_with_time(lang: Lang, question: &str, now: &str) -> String {
    match lang {
        Lang::En => format!("{question}\n\n(Now: {now})"),
        Lang::Ru => format!("{question}\n\n(Сейчас: {now})"),
    }
}

/// Sent when tools are withdrawn (the last round, a repeated or a second malformed call): the
/// model must answer from the results it has.
pub fn answer_now(lang: Lang) -> &'static str {
    match lang {
        Lang::En => {
            "Answer my question now, in plain words, from the tool results above. Do not call any tool and do not write tool calls or JSON."
        }
        Lang::Ru => {
            "Ответь на мой вопрос сейчас, обычными словами, по результатам инструментов выше. Не вызывай инструменты и не пиши вызовы инструментов или JSON."
        }
    }
}

/// The tool result of a call identical to an earlier one (not run again).
pub fn already_called(tool: &str) -> String {
    format!(
        "{tool} was already called with these arguments; its result is above. Do not call it again."
    )
}

/// Heads an answer made without the LLM.
pub fn offline_notice(lang: Lang, reason: &str) -> String {
    match (lang, reason) {
        (Lang::En, "patience") => {
            "⏳ The assistant is still thinking; meanwhile, from local data (its answer follows):"
                .into()
        }
        (Lang::Ru, "patience") => {
            "⏳ Ассистент ещё думает; пока — по локальным данным (его ответ придёт следом):".into()
        }
        (Lang::En, "context") => {
            "⚠ This question needs more than the assistant can read at once; answering from local data.".into()
        }
        (Lang::Ru, "context") => {
            "⚠ Для этого вопроса ассистенту нужно прочесть слишком много; отвечаю по локальным данным.".into()
        }
        (Lang::En, "bad_response" | "tool_text" | "empty") => {
            "⚠ The assistant could not answer this one; answering from local data.".into()
        }
        (Lang::Ru, "bad_response" | "tool_text" | "empty") => {
            "⚠ Ассистент не смог ответить на этот вопрос; отвечаю по локальным данным.".into()
        }
        (Lang::En, "timeout") => {
            "⚠ The assistant is too slow right now; answering from local data.".into()
        }
        (Lang::Ru, "timeout") => {
            "⚠ Ассистент сейчас отвечает слишком долго; отвечаю по локальным данным.".into()
        }
        (Lang::En, "not_configured") => {
            "ℹ The assistant (LLM) is not set up; answering from local data.".into()
        }
        (Lang::Ru, "not_configured") => {
            "ℹ Ассистент (LLM) не настроен; отвечаю по локальным данным.".into()
        }
        (Lang::En, _) => "⚠ The assistant is offline; answering from local data.".into(),
        (Lang::Ru, _) => "⚠ Ассистент недоступен; отвечаю по локальным данным.".into(),
    }
}

/// `[agent] enabled = false`.
pub fn disabled(lang: Lang) -> String {
    t(
        lang,
        "The assistant is switched off on this gateway.",
        "Ассистент на этом шлюзе выключен.",
    )
}

/// After `/reset`.
pub fn reset_done(lang: Lang) -> String {
    t(lang, "Conversation cleared.", "Разговор начат заново.")
}

/// What confirming a proposed acknowledgement does.
pub fn confirm_prompt(alarm_id: i64, lang: Lang) -> String {
    match lang {
        Lang::En => format!(
            "Acknowledge alarm {alarm_id}? Confirm with the button, or send /ack {alarm_id}."
        ),
        Lang::Ru => format!(
            "Квитировать тревогу {alarm_id}? Подтвердите кнопкой или командой /ack {alarm_id}."
        ),
    }
}

/// Appended when the answer used stale data and did not say so.
pub fn stale_note(lang: Lang, sensors: &[String]) -> String {
    let list = sensors
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match lang {
        Lang::En => format!("⚠ Stale data: {list} (no fresh reading)."),
        Lang::Ru => format!("⚠ Устаревшие данные: {list} (нет свежих показаний)."),
    }
}

/// `/help`.
pub fn help(lang: Lang) -> String {
    match lang {
        Lang::En => "Ask in plain words, e.g. \"temperature in 301?\", \"any leaks?\".\n\
             Commands (work without the assistant):\n\
             /status: the building at a glance\n\
             /alarms: open alarms\n\
             /sensor <words>: latest readings, e.g. /sensor boiler\n\
             /plan <floor>: floor plan picture, e.g. /plan 3\n\
             /history <sensor> <range>: history, e.g. /history f3.r301.temperature 24h\n\
             /ack <number>: acknowledge an alarm (operators)\n\
             /reset: start the conversation afresh\n\
             /help: this text"
            .into(),
        Lang::Ru => {
            "Спрашивайте своими словами, например «температура в 301?», «есть протечки?».\n\
             Команды (работают и без ассистента):\n\
             /status: здание в целом\n\
             /alarms: открытые тревоги\n\
             /sensor <слова>: последние показания, например /sensor котёл\n\
             /plan <этаж>: план этажа, например /plan 3\n\
             /history <датчик> <период>: история, например /history f3.r301.temperature 24h\n\
             /ack <номер>: квитировать тревогу (операторы)\n\
             /reset: начать разговор заново\n\
             /help: эта справка"
                .into()
        }
    }
}

/// An unknown command.
pub fn unknown_command(lang: Lang, cmd: &str) -> String {
    match lang {
        Lang::En => format!("Unknown command {cmd}. /help lists the commands."),
        Lang::Ru => format!("Неизвестная команда {cmd}. Список команд: /help."),
    }
}

/// A command without its argument.
pub fn usage(lang: Lang, en: &str, ru: &str) -> String {
    t(
        lang,
        &format!("Usage: {en}"),
        &format!("Использование: {ru}"),
    )
}

/// After `/reset` when the conversation could not be cleared.
pub fn reset_failed(lang: Lang) -> String {
    t(
        lang,
        "The conversation could not be cleared; try again in a minute.",
        "Не удалось начать разговор заново; попробуйте через минуту.",
    )
}

/// A list for a sentence ("1, 2, 3"), or "none" in `lang`.
fn list_or_none(lang: Lang, items: &[String]) -> String {
    if items.is_empty() {
        t(lang, "none", "нет")
    } else {
        items.join(", ")
    }
}

/// Why a tool gave no result, for a person (the model gets the English `Display` text).
pub fn tool_error(lang: Lang, e: &ToolError) -> String {
    match (lang, e) {
        (_, ToolError::NoSensor(_)) => no_sensor(lang),
        (Lang::En, ToolError::Arguments(_)) => {
            "The question could not be turned into a lookup; /help lists what I can answer.".into()
        }
        (Lang::Ru, ToolError::Arguments(_)) => {
            "Не получилось превратить вопрос в запрос; /help покажет, на что я отвечаю.".into()
        }
        (Lang::En, ToolError::Database(_)) => {
            "The gateway's local database could not be read; try again in a minute.".into()
        }
        (Lang::Ru, ToolError::Database(_)) => {
            "Не удалось прочитать локальную базу шлюза; попробуйте через минуту.".into()
        }
        (Lang::En, ToolError::Forbidden { .. }) => {
            "You may not acknowledge alarms: that needs the operator role.".into()
        }
        (Lang::Ru, ToolError::Forbidden { .. }) => {
            "Недостаточно прав: квитировать тревоги может только оператор.".into()
        }
        (Lang::En, ToolError::NoAlarm { id, open }) => format!(
            "There is no alarm #{id}. Open alarms: {}.",
            list_or_none(lang, open)
        ),
        (Lang::Ru, ToolError::NoAlarm { id, open }) => format!(
            "Тревоги #{id} нет. Открытые тревоги: {}.",
            list_or_none(lang, open)
        ),
        (Lang::En, ToolError::NotAwaiting { id, alert, state }) => format!(
            "Alarm #{id} ({alert}) does not await acknowledgement: it is {}.",
            crate::alarms::text::state_word(lang, *state)
        ),
        (Lang::Ru, ToolError::NotAwaiting { id, alert, state }) => format!(
            "Тревога #{id} ({alert}) не ждёт квитирования: её состояние «{}».",
            crate::alarms::text::state_word(lang, *state)
        ),
        (Lang::En, ToolError::NoFloor { floor, floors }) => format!(
            "There is no floor {floor}. Floors: {}.",
            list_or_none(lang, floors)
        ),
        (Lang::Ru, ToolError::NoFloor { floor, floors }) => {
            format!("Этажа {floor} нет. Этажи: {}.", list_or_none(lang, floors))
        }
        (Lang::En, ToolError::NoTenant { tenants }) => {
            format!("No such tenant. Tenants: {}.", list_or_none(lang, tenants))
        }
        (Lang::Ru, ToolError::NoTenant { tenants }) => format!(
            "Такого арендатора нет. Арендаторы: {}.",
            list_or_none(lang, tenants)
        ),
    }
}

/// The question named sensors, but none exists.
pub fn no_sensor(lang: Lang) -> String {
    t(
        lang,
        "No sensor matches. /sensor <words> searches by name; /status lists what there is.",
        "Таких датчиков нет. /sensor <слова> ищет по названию; /status покажет, что есть.",
    )
}

/// The free text matched nothing the router knows.
pub fn not_understood(lang: Lang) -> String {
    t(
        lang,
        "I could not tell what you are asking about. Try /help, or name a room, a floor or equipment.",
        "Не понял вопрос. Попробуйте /help или назовите комнату, этаж или оборудование.",
    )
}

fn value(lang: Lang, r: &ReadingItem) -> String {
    match r.value {
        Some(v) if r.unit.is_empty() => number(v),
        Some(v) => format!("{} {}", number(v), r.unit),
        None => format!("— ({})", quality_word(lang, r.quality)),
    }
}

fn quality_word(lang: Lang, q: Quality) -> String {
    match (lang, q) {
        (Lang::Ru, Quality::Good) => "в порядке".into(),
        (Lang::Ru, Quality::Bad) => "ошибка датчика".into(),
        (Lang::Ru, Quality::Stale) => "устарело".into(),
        (Lang::Ru, Quality::CommError) => "нет связи".into(),
        (Lang::En, q) => q.as_str().replace('_', " "),
    }
}

/// A floor plan's measure in `lang`.
fn measure_word(lang: Lang, m: &str) -> String {
    match (lang, m) {
        (Lang::Ru, "temperature") => "температура".into(),
        (Lang::Ru, "humidity") => "влажность".into(),
        (Lang::Ru, "co2") => "CO2".into(),
        (Lang::Ru, "alarms") => "тревоги".into(),
        (_, m) => m.into(),
    }
}

fn age(lang: Lang, secs: i64) -> String {
    let secs = secs.max(0);
    let (n, en, ru) = if secs < 90 {
        (secs, "s", "с")
    } else if secs < 5400 {
        ((secs + 30) / 60, "min", "мин")
    } else if secs < 2 * 86_400 {
        ((secs + 1800) / 3600, "h", "ч")
    } else {
        ((secs + 43_200) / 86_400, "d", "д")
    };
    match lang {
        Lang::En => format!("{n} {en} ago"),
        Lang::Ru => format!("{n} {ru} назад"),
    }
}

/// Hour and minute of an RFC 3339 time ("14:05 UTC"), or the text as it is.
fn hhmm(rfc: &str) -> String {
    rfc.get(11..16)
        .map_or_else(|| rfc.to_owned(), |t| format!("{t} UTC"))
}

/// Latest readings, one per line, with age and a stale mark.
pub fn readings(lang: Lang, rows: &[ReadingItem]) -> String {
    if rows.is_empty() {
        return t(lang, "No readings.", "Нет показаний.");
    }
    let mut out = String::new();
    for r in rows {
        let stale = if r.stale {
            t(lang, " ⚠ stale", " ⚠ устарело")
        } else {
            String::new()
        };
        writeln!(
            out,
            "{}: {} ({}, {}){stale}",
            r.name,
            value(lang, r),
            hhmm(&r.time),
            age(lang, r.age_s)
        )
        .ok();
    }
    out.trim_end().to_owned()
}

/// Sensors found.
pub fn sensors(lang: Lang, list: &[SensorInfo]) -> String {
    let mut out = t(lang, "Sensors:\n", "Датчики:\n");
    for s in list {
        writeln!(out, "{} — {} [{}]", s.id, s.name, s.kind).ok();
    }
    out.trim_end().to_owned()
}

/// Alarms, one per line.
pub fn alarms(lang: Lang, list: &[AlarmItem]) -> String {
    if list.is_empty() {
        return t(lang, "✅ No open alarms.", "✅ Открытых тревог нет.");
    }
    let mut out = match lang {
        Lang::En => format!("Open alarms: {}\n", list.len()),
        Lang::Ru => format!("Открытые тревоги: {}\n", list.len()),
    };
    for a in list.iter().take(20) {
        let since = a
            .since
            .as_deref()
            .map(|s| format!(", {}", hhmm(s)))
            .unwrap_or_default();
        let state = state_word(lang, a.state);
        writeln!(
            out,
            "#{} [{}] {} — {} ({}{since}){}",
            a.id,
            severity_word(lang, a.severity),
            a.alert,
            a.message,
            state,
            if a.state.is_unacked() {
                format!(" /ack {}", a.id)
            } else {
                String::new()
            }
        )
        .ok();
    }
    out.trim_end().to_owned()
}

/// The building at a glance.
pub fn overview(lang: Lang, o: &Overview) -> String {
    let alarms: usize = o.open_alarms.values().sum();
    let by_sev = o
        .open_alarms
        .iter()
        .map(|(k, v)| {
            let k = Severity::parse(k).map_or(k.as_str(), |s| severity_word(lang, s));
            format!("{k}: {v}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = match lang {
        Lang::En => format!(
            "{}\nSensors: {} ({} online, {} stale)\nOpen alarms: {}{}\nSync to the central office: {}{}",
            o.building,
            o.sensors,
            o.online,
            o.stale,
            alarms,
            if by_sev.is_empty() {
                String::new()
            } else {
                format!(" ({by_sev}; {} unacknowledged)", o.unacknowledged)
            },
            o.sync,
            if o.sync_waiting_rows > 0 {
                format!(", {} rows waiting", o.sync_waiting_rows)
            } else {
                String::new()
            },
        ),
        Lang::Ru => format!(
            "{}\nДатчики: {} (на связи {}, устарели {})\nОткрытые тревоги: {}{}\nСинхронизация с центром: {}{}",
            o.building,
            o.sensors,
            o.online,
            o.stale,
            alarms,
            if by_sev.is_empty() {
                String::new()
            } else {
                format!(" ({by_sev}; не квитировано {})", o.unacknowledged)
            },
            sync_word(lang, &o.sync),
            if o.sync_waiting_rows > 0 {
                format!(", ждут отправки {} строк", o.sync_waiting_rows)
            } else {
                String::new()
            },
        ),
    };
    if !o.stale_examples.is_empty() {
        write!(
            out,
            "\n{} {}",
            t(lang, "Stale:", "Устарели:"),
            o.stale_examples.join(", ")
        )
        .ok();
    }
    out
}

fn sync_word(lang: Lang, s: &str) -> String {
    match (lang, s) {
        (Lang::Ru, "off") => "выключена".into(),
        (Lang::Ru, "ok") => "в порядке".into(),
        (Lang::Ru, "behind") => "отстаёт".into(),
        (Lang::Ru, "failing") => "ошибка".into(),
        (_, s) => s.into(),
    }
}

/// Sync in short.
pub fn sync(lang: Lang, s: &SyncSummary) -> String {
    let mut out = match lang {
        Lang::En => format!("Sync to the central office: {}", s.state),
        Lang::Ru => format!("Синхронизация с центром: {}", sync_word(lang, &s.state)),
    };
    if s.waiting_rows > 0 {
        write!(
            out,
            "{}",
            match lang {
                Lang::En => format!(
                    "; {} rows waiting, oldest {}",
                    s.waiting_rows,
                    age(lang, s.oldest_waiting_s as i64)
                ),
                Lang::Ru => format!(
                    "; ждут отправки {} строк, старейшая {}",
                    s.waiting_rows,
                    age(lang, s.oldest_waiting_s as i64)
                ),
            }
        )
        .ok();
    }
    if let Some(ok) = &s.last_success {
        write!(
            out,
            "{}",
            t(
                lang,
                &format!("; last success {}", hhmm(ok)),
                &format!("; последняя удачная {}", hhmm(ok))
            )
        )
        .ok();
    }
    if let Some(e) = &s.last_error {
        write!(
            out,
            "{}",
            t(
                lang,
                &format!("; last error: {e}"),
                &format!("; последняя ошибка: «{e}»")
            )
        )
        .ok();
    }
    out
}

/// History in short.
pub fn history(lang: Lang, h: &HistorySummary) -> String {
    if h.count == 0 {
        return match lang {
            Lang::En => format!("{}: no readings in the last {}.", h.name, h.range),
            Lang::Ru => format!("{}: нет показаний за {}.", h.name, h.range),
        };
    }
    let u = if h.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", h.unit)
    };
    let f = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), number);
    match lang {
        Lang::En => format!(
            "{} over {}: min {}{u}, max {}{u}, average {}{u}; last {}{u} at {} ({} readings).",
            h.name,
            h.range,
            f(h.min),
            f(h.max),
            f(h.avg),
            f(h.last),
            h.last_time.as_deref().map(hhmm).unwrap_or_default(),
            h.count
        ),
        Lang::Ru => format!(
            "{} за {}: мин {}{u}, макс {}{u}, среднее {}{u}; последнее {}{u} в {} ({} показаний).",
            h.name,
            h.range,
            f(h.min),
            f(h.max),
            f(h.avg),
            f(h.last),
            h.last_time.as_deref().map(hhmm).unwrap_or_default(),
            h.count
        ),
    }
}

/// A floor's numbers, with the plan attached.
pub fn floor(lang: Lang, f: &FloorSummary) -> String {
    let mut out = match lang {
        Lang::En => format!("Floor {} ({}).", f.floor, f.measure),
        Lang::Ru => format!("Этаж {} ({}).", f.floor, measure_word(lang, &f.measure)),
    };
    if !f.rooms.is_empty() {
        out.push('\n');
        out.push_str(&readings(lang, &f.rooms));
    }
    if !f.alarms.is_empty() {
        out.push('\n');
        out.push_str(&alarms(lang, &f.alarms));
    }
    out
}

/// A tenant.
pub fn tenant(lang: Lang, s: &TenantSummary) -> String {
    let mut out = match lang {
        Lang::En => format!("{} — rooms: {}", s.name, s.rooms.join(", ")),
        Lang::Ru => format!("{} — помещения: {}", s.name, s.rooms.join(", ")),
    };
    if !s.readings.is_empty() {
        out.push('\n');
        out.push_str(&readings(lang, &s.readings));
    }
    if !s.alarms.is_empty() {
        out.push('\n');
        out.push_str(&alarms(lang, &s.alarms));
    }
    out
}

/// A done acknowledgement.
pub fn acked(lang: Lang, id: i64, alert: &str) -> String {
    match lang {
        Lang::En => format!("✅ Alarm {id} ({alert}) acknowledged."),
        Lang::Ru => format!("✅ Тревога {id} ({alert}) квитирована."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_decides_the_language() {
        assert_eq!(script_lang("что с котлом?"), Some(Lang::Ru));
        assert_eq!(script_lang("any leaks?"), Some(Lang::En));
        assert_eq!(script_lang("301?"), None);
        assert_eq!(script_lang("/status"), None);
        assert_eq!(script_lang("/sensor котёл"), Some(Lang::Ru));
        assert_eq!(script_lang("CO2 в 301"), Some(Lang::Ru));
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(Lang::En, 30), "30 s ago");
        assert_eq!(age(Lang::En, 600), "10 min ago");
        assert_eq!(age(Lang::Ru, 7200), "2 ч назад");
        assert_eq!(age(Lang::En, 3 * 86_400), "3 d ago");
    }

    #[test]
    fn prompts_and_templates_exist_in_both_languages() {
        for lang in [Lang::En, Lang::Ru] {
            assert!(system_prompt(lang, "Lenina 17", Some("Call Ivan.")).contains("Call Ivan."));
            assert!(question_with_time(lang, "301?", "2026-11-24T10:00:00Z").contains("10:00"));
            assert!(!answer_now(lang).is_empty());
            for reason in ["patience", "context", "tool_text", "timeout", "down"] {
                let other = match lang {
                    Lang::En => Lang::Ru,
                    Lang::Ru => Lang::En,
                };
                assert_ne!(offline_notice(lang, reason), offline_notice(other, reason));
            }
            assert!(help(lang).contains("/plan"));
        }
        assert!(system_prompt(Lang::Ru, "B", None).contains("по-русски"));
        assert_ne!(
            offline_notice(Lang::En, "down"),
            offline_notice(Lang::Ru, "down")
        );
    }
}
