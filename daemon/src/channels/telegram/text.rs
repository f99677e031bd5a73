//! The bot's own words in English and Russian: buttons, the status lines added to alarm
//! notifications, button outcomes, voice messages and the command menu. Answers to questions
//! are the assistant's (see `crate::agent::text`).
//!
//! Owns: every user-facing text of `super`.

use crate::agent::ConfirmError;
use crate::alarms::{AlarmError, AlarmView};
use crate::model::{AlarmState, Lang, Timestamp};

fn pick(lang: Lang, en: &str, ru: &str) -> String {
    match lang {
        Lang::En => en.to_owned(),
        Lang::Ru => ru.to_owned(),
    }
}

/// The Ack button.
pub(crate) fn ack_button(lang: Lang) -> String {
    pick(lang, "✅ Ack", "✅ Квитировать")
}

/// The Shelve 1h button.
pub(crate) fn shelve_button(lang: Lang) -> String {
    pick(lang, "💤 Shelve 1h", "💤 Отложить на 1 ч")
}

/// The button that confirms an action the assistant proposed (both languages: the person may
/// have asked in either).
pub(crate) const CONFIRM_BUTTON: &str = "Confirm / Подтвердить";

/// `HH:MM UTC` of a time in ms.
fn clock(ms: i64) -> String {
    let rfc = Timestamp(ms).to_rfc3339();
    let hhmm = rfc.get(11..16).unwrap_or("--:--");
    format!("{hhmm} UTC")
}

/// The status line a notification about `v` shows now, and whether it is final (no button is
/// left to press). `""` while nothing happened since it was sent.
pub(crate) fn status_line(v: &AlarmView, lang: Lang, now_ms: i64) -> String {
    let by = v.acked_by.clone().unwrap_or_default();
    if v.out_of_service {
        return pick(lang, "⛔ Out of service", "⛔ Выведена из работы");
    }
    let shelved = v.shelved_until.filter(|t| *t > now_ms);
    match v.state {
        AlarmState::Normal if by.is_empty() => pick(lang, "🟢 Back to normal", "🟢 В норме"),
        AlarmState::Normal => match lang {
            Lang::En => format!("🟢 Acknowledged by {by}; back to normal"),
            Lang::Ru => format!("🟢 Квитировал(а) {by}; в норме"),
        },
        AlarmState::ActiveAcked => match lang {
            Lang::En => format!("✅ Acknowledged by {by}; still active"),
            Lang::Ru => format!("✅ Квитировал(а) {by}; ещё активна"),
        },
        AlarmState::ClearedUnacked => pick(
            lang,
            "⚪ Condition cleared; waiting for acknowledgement",
            "⚪ Условие ушло; ждёт квитирования",
        ),
        AlarmState::ActiveUnacked => match shelved {
            Some(until) => match lang {
                Lang::En => format!("💤 Shelved until {}", clock(until)),
                Lang::Ru => format!("💤 Отложена до {}", clock(until)),
            },
            None => String::new(),
        },
    }
}

/// What the person who pressed Ack or Shelve is told.
pub(crate) fn action_done(lang: Lang, id: i64, shelved: bool) -> String {
    match (lang, shelved) {
        (Lang::En, false) => format!("Alarm #{id} acknowledged."),
        (Lang::Ru, false) => format!("Тревога #{id} квитирована."),
        (Lang::En, true) => format!("Alarm #{id} shelved for an hour."),
        (Lang::Ru, true) => format!("Тревога #{id} отложена на час."),
    }
}

/// Why a button's action was not done, for `answerCallbackQuery` (at most 200 characters).
pub(crate) fn action_refused(lang: Lang, e: &AlarmError) -> String {
    crate::alarms::text::refusal(lang, e)
}

/// Why a confirmation was not carried out.
pub(crate) fn confirm_refused(lang: Lang, e: &ConfirmError) -> String {
    match (lang, e) {
        (_, ConfirmError::Alarm(a)) => action_refused(lang, a),
        (Lang::En, ConfirmError::Expired) => "This confirmation has expired; ask again.".to_owned(),
        (Lang::Ru, ConfirmError::Expired) => "Подтверждение устарело; спросите ещё раз.".to_owned(),
        (Lang::En, ConfirmError::NotYours) => "This confirmation is someone else's.".to_owned(),
        (Lang::Ru, ConfirmError::NotYours) => "Это подтверждение не ваше.".to_owned(),
    }
}

/// A button the bot does not know (an old one, or forged).
pub(crate) fn unknown_button(lang: Lang) -> String {
    pick(
        lang,
        "This button is no longer valid.",
        "Эта кнопка больше не действует.",
    )
}

/// A picture could not be drawn.
pub(crate) fn no_picture(lang: Lang, why: &str) -> String {
    match lang {
        Lang::En => format!("No picture: {why}"),
        Lang::Ru => format!("Картинки не будет: {why}"),
    }
}

/// Caption of a floor plan.
pub(crate) fn plan_caption(lang: Lang, floor: &str, measure: &str) -> String {
    match lang {
        Lang::En => format!("Floor {floor}: {measure}"),
        Lang::Ru => format!("Этаж {floor}: {measure}"),
    }
}

/// Caption of a history chart.
pub(crate) fn chart_caption(lang: Lang, sensor: &str, since_secs: u64) -> String {
    let hours = since_secs.div_ceil(3600).max(1);
    let days = since_secs.div_ceil(86_400);
    let span = match (lang, hours) {
        (Lang::En, 1) => "hour".to_owned(),
        (Lang::En, 2..=47) => format!("{hours} h"),
        (Lang::En, _) => format!("{days} days"),
        (Lang::Ru, 1) => "час".to_owned(),
        (Lang::Ru, 2..=47) => format!("{hours} ч"),
        (Lang::Ru, _) => format!("{days} сут."),
    };
    match lang {
        Lang::En => format!("{sensor}, last {span}"),
        Lang::Ru => format!("{sensor}, за {span}"),
    }
}

/// The transcript of a voice note, shown before the answer.
pub(crate) fn transcript(text: &str) -> String {
    format!("🎤 {text}")
}

/// Why a voice note is not understood; the person is asked to type (both languages: nothing
/// was understood, so the language is not known).
pub(crate) fn voice_unavailable(reason: VoiceTrouble) -> String {
    match reason {
        VoiceTrouble::Off => "Voice notes are turned off on this gateway; please type your question.\n\
                              Голосовые сообщения на этом шлюзе выключены; напишите вопрос текстом."
            .to_owned(),
        VoiceTrouble::NoSpeech => "The speech server cannot transcribe voice notes now; please type your question.\n\
                                   Сервер речи сейчас не может распознать голос; напишите вопрос текстом."
            .to_owned(),
        VoiceTrouble::NotUnderstood => "I could not make out any words in the voice note; please type your question.\n\
                                        Не удалось разобрать слова в голосовом сообщении; напишите вопрос текстом."
            .to_owned(),
        VoiceTrouble::Codec => "The gateway cannot decode voice notes (the opus-tools programs are missing); please type your question.\n\
                                Шлюз не может декодировать голосовые сообщения (нет программ opus-tools); напишите вопрос текстом."
            .to_owned(),
        VoiceTrouble::TooLong(max) => format!(
            "The voice note is too long (at most {max} s); please keep it shorter or type.\n\
             Голосовое сообщение слишком длинное (не больше {max} с); запишите короче или напишите текстом."
        ),
        VoiceTrouble::Download => "The voice note could not be downloaded from Telegram; please try again or type.\n\
                                   Не удалось загрузить голосовое сообщение из Telegram; попробуйте ещё раз или напишите текстом."
            .to_owned(),
    }
}

/// Why a voice note was not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoiceTrouble {
    /// `[telegram] voice = false`.
    Off,
    /// No LLM server, or one without speech-to-text, or it failed.
    NoSpeech,
    /// The transcript was empty.
    NotUnderstood,
    /// `opusdec`/`opusenc` missing or failing.
    Codec,
    /// Longer than `max_voice_duration` (seconds).
    TooLong(u64),
    /// Telegram did not give the file.
    Download,
}

/// Added to a text answer when no spoken answer could be made.
pub(crate) fn no_spoken_answer(lang: Lang) -> String {
    pick(
        lang,
        "(No spoken answer: the speech server gave no audio.)",
        "(Без озвучки: сервер речи не вернул звук.)",
    )
}

/// The command menu (`setMyCommands`): name and description.
pub(crate) fn commands(lang: Lang) -> Vec<(&'static str, &'static str)> {
    match lang {
        Lang::En => vec![
            ("status", "Gateway and building status"),
            ("alarms", "Open alarms (/alarms all: every alarm)"),
            ("sensor", "Latest value of a sensor: /sensor <name>"),
            (
                "plan",
                "Floor plan: /plan <floor> [temperature|humidity|co2]",
            ),
            ("history", "History chart: /history <sensor> [24h]"),
            ("ack", "Acknowledge an alarm: /ack <number>"),
            ("reset", "Start a new conversation"),
            ("help", "What the bot can do"),
        ],
        Lang::Ru => vec![
            ("status", "Состояние шлюза и здания"),
            ("alarms", "Открытые тревоги (/alarms all: все)"),
            ("sensor", "Последнее значение датчика: /sensor <имя>"),
            (
                "plan",
                "План этажа: /plan <этаж> [temperature|humidity|co2]",
            ),
            ("history", "График: /history <датчик> [24h]"),
            ("ack", "Квитировать тревогу: /ack <номер>"),
            ("reset", "Начать разговор заново"),
            ("help", "Что умеет бот"),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    fn view(state: AlarmState) -> AlarmView {
        AlarmView {
            id: 3,
            alert: "RoomTooWarm".into(),
            sensor: "f1.r101.temperature".into(),
            name: "Room 101".into(),
            location: "1/101".into(),
            state,
            severity: Severity::High,
            value: Some(25.0),
            unit: "°C".into(),
            message: "too warm".into(),
            raised_ms: Some(0),
            acked_by: None,
            shelved_until: None,
            out_of_service: false,
            ack_required: true,
        }
    }

    #[test]
    fn status_lines_follow_the_state() {
        assert_eq!(
            status_line(&view(AlarmState::ActiveUnacked), Lang::En, 0),
            ""
        );
        let mut acked = view(AlarmState::ActiveAcked);
        acked.acked_by = Some("ivan".into());
        assert!(status_line(&acked, Lang::En, 0).contains("Acknowledged by ivan"));
        assert!(status_line(&acked, Lang::Ru, 0).contains("ivan"));
        let mut shelved = view(AlarmState::ActiveUnacked);
        shelved.shelved_until = Some(3_600_000);
        assert_eq!(
            status_line(&shelved, Lang::En, 0),
            "💤 Shelved until 01:00 UTC"
        );
        assert_eq!(status_line(&shelved, Lang::En, 4_000_000), "");
        assert!(status_line(&view(AlarmState::Normal), Lang::Ru, 0).contains("норме"));
    }

    #[test]
    fn every_command_is_described_in_both_languages() {
        let en: Vec<_> = commands(Lang::En).into_iter().map(|c| c.0).collect();
        let ru: Vec<_> = commands(Lang::Ru).into_iter().map(|c| c.0).collect();
        assert_eq!(en, ru);
        for (_, d) in commands(Lang::Ru) {
            assert!(d.len() <= 256);
        }
    }
}
