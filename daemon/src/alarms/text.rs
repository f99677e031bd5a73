//! Wording of alarm messages: the rule's template (or a default one built from symbols and the
//! sensor's own name, readable in any language), the headers of notifications and the refusals
//! of operator actions, in English and Russian.

use std::fmt::Write as _;

use super::config::RuleKind;

use super::engine::{EventKind, Refusal};
#[cfg(test)]
use super::rules::check_template;
use super::rules::{Rule, SensorInfo};
use super::service::AlarmError;
use crate::model::{AlarmState, Lang, Severity};

/// A number as people read it: no trailing zeros, at most 3 decimals.
pub fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// "floor B, boiler room" style location (labels as configured, no words added).
pub fn location(s: &SensorInfo) -> String {
    match (&s.floor, &s.room) {
        (Some(f), Some(r)) => format!("{f} / {r}"),
        (Some(f), None) => f.clone(),
        (None, Some(r)) => r.clone(),
        (None, None) => String::new(),
    }
}

/// The event message: the rule's template, or a default one. The default one states the
/// condition (`92 °C > 90 °C`) while the alarm is `active`, and only the value and the limit
/// (`84.5 °C, limit 90 °C`) once it is not.
pub fn message(rule: &Rule, s: &SensorInfo, value: Option<f64>, active: bool) -> String {
    let name = if s.name.is_empty() { &s.id } else { &s.name };
    let value_text = value.map_or_else(|| "—".to_owned(), number);
    let unit = if s.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", s.unit)
    };
    let loc = location(s);
    if let Some(t) = &rule.message {
        let mut out = t.clone();
        for (k, v) in [
            ("alert", rule.alert.as_str()),
            ("sensor", s.id.as_str()),
            ("name", name.as_str()),
            ("value", value_text.as_str()),
            ("unit", s.unit.as_str()),
            ("limit", number(rule.limit).as_str()),
            ("floor", s.floor.as_deref().unwrap_or("")),
            ("room", s.room.as_deref().unwrap_or("")),
            ("location", loc.as_str()),
            ("severity", rule.severity.as_str()),
        ] {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        return out;
    }
    let mut out = match rule.kind {
        RuleKind::HighHigh | RuleKind::High | RuleKind::Low | RuleKind::LowLow if !active => {
            format!(
                "{name}: {value_text}{unit}, limit {}{unit}",
                number(rule.limit)
            )
        }
        RuleKind::HighHigh | RuleKind::High => {
            format!("{name}: {value_text}{unit} > {}{unit}", number(rule.limit))
        }
        RuleKind::Low | RuleKind::LowLow => {
            format!("{name}: {value_text}{unit} < {}{unit}", number(rule.limit))
        }
        RuleKind::Rate => format!(
            "{name}: {value_text}{unit}, Δ > {}{unit}/{}",
            number(rule.limit),
            humantime::format_duration(std::time::Duration::from_millis(rule.per_ms as u64))
        ),
        RuleKind::State => format!("{name}: {value_text}"),
        RuleKind::Stale => format!(
            "{name}: — {}",
            humantime::format_duration(std::time::Duration::from_millis(
                u64::try_from(rule.after_ms).unwrap_or(0)
            ))
        ),
        RuleKind::CommLoss => format!("{name}: ✕"),
    };
    if !loc.is_empty() {
        write!(out, " ({loc})").ok();
    }
    out
}

/// Header of a notification for `event`, in `lang`.
pub fn header(lang: Lang, event: EventKind, severity: Severity, id: i64, alert: &str) -> String {
    let mark = match (event, severity) {
        (EventKind::Raised, Severity::Critical | Severity::High) => "🔴",
        (EventKind::Raised, _) => "🟠",
        (EventKind::Cleared | EventKind::Normal, _) => "🟢",
        (EventKind::Acked, _) => "✅",
        _ => "ℹ️",
    };
    let what = match (lang, event) {
        (Lang::En, EventKind::Raised) => "ALARM",
        (Lang::Ru, EventKind::Raised) => "ТРЕВОГА",
        (Lang::En, EventKind::Cleared) => "Cleared, needs acknowledgement",
        (Lang::Ru, EventKind::Cleared) => "Норма, требуется квитирование",
        (Lang::En, EventKind::Normal) => "Back to normal",
        (Lang::Ru, EventKind::Normal) => "Вернулось в норму",
        (Lang::En, EventKind::Acked) => "Acknowledged",
        (Lang::Ru, EventKind::Acked) => "Квитировано",
        (Lang::En, EventKind::Shelved) => "Shelved",
        (Lang::Ru, EventKind::Shelved) => "Отложено",
        (Lang::En, EventKind::Unshelved) => "Unshelved",
        (Lang::Ru, EventKind::Unshelved) => "Откладывание снято",
        (Lang::En, EventKind::OutOfService) => "Out of service",
        (Lang::Ru, EventKind::OutOfService) => "Выведено из работы",
        (Lang::En, EventKind::InService) => "Back in service",
        (Lang::Ru, EventKind::InService) => "Введено в работу",
    };
    let sev = severity_word(lang, severity);
    format!("{mark} {what} #{id} {alert} [{sev}]")
}

/// A reminder's header.
pub fn reminder_header(lang: Lang, severity: Severity, id: i64, alert: &str) -> String {
    let what = match lang {
        Lang::En => "Still active, not acknowledged",
        Lang::Ru => "Всё ещё активно, не квитировано",
    };
    format!(
        "🔔 {what} #{id} {alert} [{}]",
        severity_word(lang, severity)
    )
}

/// Severity in `lang`.
pub fn severity_word(lang: Lang, s: Severity) -> &'static str {
    match (lang, s) {
        (Lang::En, _) => s.as_str(),
        (Lang::Ru, Severity::Low) => "низкая",
        (Lang::Ru, Severity::Medium) => "средняя",
        (Lang::Ru, Severity::High) => "высокая",
        (Lang::Ru, Severity::Critical) => "критическая",
    }
}

/// State in `lang`.
pub fn state_word(lang: Lang, s: AlarmState) -> &'static str {
    match (lang, s) {
        (Lang::En, AlarmState::Normal) => "normal",
        (Lang::En, AlarmState::ActiveUnacked) => "active, unacknowledged",
        (Lang::En, AlarmState::ActiveAcked) => "active, acknowledged",
        (Lang::En, AlarmState::ClearedUnacked) => "cleared, unacknowledged",
        (Lang::Ru, AlarmState::Normal) => "норма",
        (Lang::Ru, AlarmState::ActiveUnacked) => "активна, не квитирована",
        (Lang::Ru, AlarmState::ActiveAcked) => "активна, квитирована",
        (Lang::Ru, AlarmState::ClearedUnacked) => "норма, не квитирована",
    }
}

/// An action's name in `lang`, as a verb ("acknowledge").
fn action_word(lang: Lang, action: &str) -> &'static str {
    match (lang, action) {
        (Lang::En, "ack") => "acknowledge",
        (Lang::En, "shelve") => "shelve",
        (Lang::En, "unshelve") => "unshelve",
        (Lang::En, _) => "take in or out of service",
        (Lang::Ru, "ack") => "квитировать",
        (Lang::Ru, "shelve") => "откладывать",
        (Lang::Ru, "unshelve") => "снимать откладывание",
        (Lang::Ru, _) => "выводить из работы и вводить в работу",
    }
}

/// Why an operator action was not done, for the person who asked (at most 200 characters, so
/// it fits a Telegram callback answer).
pub fn refusal(lang: Lang, e: &AlarmError) -> String {
    match (lang, e) {
        (Lang::En, AlarmError::Refused(Refusal::Forbidden { action, .. })) => format!(
            "You may not {} alarms: that needs the operator role.",
            action_word(lang, action)
        ),
        (Lang::Ru, AlarmError::Refused(Refusal::Forbidden { action, .. })) => format!(
            "Недостаточно прав: {} тревоги может только оператор.",
            action_word(lang, action)
        ),
        (_, AlarmError::Refused(Refusal::NotApplicable { id, state, .. })) => {
            let state = AlarmState::parse(state).map_or(*state, |s| state_word(lang, s));
            match lang {
                Lang::En => format!("Alarm #{id} is {state}: nothing to do."),
                Lang::Ru => format!("Тревога #{id} сейчас в состоянии «{state}»: делать нечего."),
            }
        }
        (Lang::En, AlarmError::Refused(Refusal::Unknown(id))) => {
            format!("There is no alarm #{id}.")
        }
        (Lang::Ru, AlarmError::Refused(Refusal::Unknown(id))) => format!("Тревоги #{id} нет."),
        (Lang::En, AlarmError::NotRunning) => "Alarms are not running on the gateway.".to_owned(),
        (Lang::Ru, AlarmError::NotRunning) => "Тревоги на шлюзе сейчас не работают.".to_owned(),
        (Lang::En, AlarmError::Store(_)) => {
            "The gateway could not record that; try again.".to_owned()
        }
        (Lang::Ru, AlarmError::Store(_)) => {
            "Шлюз не смог это записать; попробуйте ещё раз.".to_owned()
        }
    }
}

/// The ack hint appended to notifications that need one.
pub fn ack_hint(lang: Lang, id: i64) -> String {
    match lang {
        Lang::En => format!("Acknowledge: /ack {id}"),
        Lang::Ru => format!("Квитировать: /ack {id}"),
    }
}

/// One message standing for many (flood control).
pub fn summary(lang: Lang, lines: &[String], total: usize) -> String {
    let mut out = match lang {
        Lang::En => format!("⚠️ {total} alarm notifications at once:"),
        Lang::Ru => format!("⚠️ {total} уведомлений о тревогах сразу:"),
    };
    for l in lines.iter().take(10) {
        out.push('\n');
        out.push_str(l);
    }
    if total > 10 {
        out.push('\n');
        match lang {
            Lang::En => {
                write!(out, "… and {} more. /alarms lists them all.", total - 10).ok();
            }
            Lang::Ru => {
                write!(out, "… и ещё {}. Полный список: /alarms", total - 10).ok();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked() {
        assert!(check_template("{name} is {value}{unit} at {location}").is_ok());
        assert!(check_template("{nme}").is_err());
        assert!(check_template("{name").is_err());
    }

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(number(85.0), "85");
        assert_eq!(number(85.25), "85.25");
        assert_eq!(number(-0.0001), "0");
        assert_eq!(number(1.0 / 3.0), "0.333");
    }

    #[test]
    fn headers_in_both_languages() {
        let en = header(Lang::En, EventKind::Raised, Severity::Critical, 7, "Leak");
        let ru = header(Lang::Ru, EventKind::Raised, Severity::Critical, 7, "Leak");
        assert!(en.contains("ALARM #7 Leak [critical]"), "{en}");
        assert!(ru.contains("ТРЕВОГА #7 Leak [критическая]"), "{ru}");
    }
}
