//! The assistant's own wording, in English and Russian: the system prompt, the offline notice,
//! and the templates slash commands and the offline router answer with.
//!
//! Owns: language choice and templates. Does not own: the data (`super::tools`).
//!
//! Layout: this file the language choice, the prompts and the wording of commands and errors;
//! `results` the templates for the tools' results.

mod results;

use super::Question;
use super::tools::ToolError;
use crate::config::Config;
use crate::model::Lang;

pub use self::results::{acked, alarms, floor, history, overview, readings, sensors, sync, tenant};

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

#[cfg(test)]
mod tests;
