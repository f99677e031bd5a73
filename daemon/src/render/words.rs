//! The words on the pictures and in render errors, in English and Russian.
//!
//! Owns: every user-facing text of `crate::render`, so that a picture asked for in Russian has no
//! English on it (sensor and room names are shown as configured).

use std::time::Duration;

use super::palette::Measure;
use crate::model::{Lang, Severity};

/// The fixed words of one language.
#[derive(Debug)]
pub(crate) struct Words {
    pub(crate) floor: &'static str,
    pub(crate) as_of: &'static str,
    pub(crate) stale: &'static str,
    pub(crate) no_sensor: &'static str,
    pub(crate) no_room: &'static str,
    pub(crate) no_data: &'static str,
    pub(crate) alarm: &'static str,
    pub(crate) last: &'static str,
    pub(crate) time: &'static str,
    pub(crate) limit: &'static str,
    pub(crate) value: &'static str,
}

const EN: Words = Words {
    floor: "Floor",
    as_of: "as of",
    stale: "stale",
    no_sensor: "no sensor",
    no_room: "no room",
    no_data: "no data",
    alarm: "alarm",
    last: "last",
    time: "time",
    limit: "limit",
    value: "value",
};

const RU: Words = Words {
    floor: "Этаж",
    as_of: "на",
    stale: "устарело",
    no_sensor: "нет датчика",
    no_room: "без помещения",
    no_data: "нет данных",
    alarm: "тревога",
    last: "за последние",
    time: "время",
    limit: "предел",
    value: "значение",
};

/// The words of `lang`.
pub(crate) fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &EN,
        Lang::Ru => &RU,
    }
}

/// The name of a measure.
pub(crate) fn measure(lang: Lang, m: Measure) -> &'static str {
    match (lang, m) {
        (Lang::En, Measure::Temperature) => "Temperature",
        (Lang::En, Measure::Humidity) => "Humidity",
        (Lang::En, Measure::Co2) => "CO₂",
        (Lang::Ru, Measure::Temperature) => "Температура",
        (Lang::Ru, Measure::Humidity) => "Влажность",
        (Lang::Ru, Measure::Co2) => "CO₂",
    }
}

/// The name of a severity.
pub(crate) fn severity(lang: Lang, s: Severity) -> &'static str {
    match (lang, s) {
        (Lang::En, Severity::Critical) => "critical",
        (Lang::En, Severity::High) => "high",
        (Lang::En, Severity::Medium) => "medium",
        (Lang::En, Severity::Low) => "low",
        (Lang::Ru, Severity::Critical) => "критическая",
        (Lang::Ru, Severity::High) => "высокая",
        (Lang::Ru, Severity::Medium) => "средняя",
        (Lang::Ru, Severity::Low) => "низкая",
    }
}

/// A period for people: "24 h", "7 d", "90 min" (Russian "24 ч", "7 сут", "90 мин").
pub(crate) fn span(lang: Lang, d: Duration) -> String {
    let s = d.as_secs();
    let (n, en, ru) = if s >= 86_400 && s.is_multiple_of(86_400) {
        (s / 86_400, "d", "сут")
    } else if s >= 3_600 && s.is_multiple_of(3_600) {
        (s / 3_600, "h", "ч")
    } else if s >= 60 && s.is_multiple_of(60) {
        (s / 60, "min", "мин")
    } else {
        (s, "s", "с")
    };
    match lang {
        Lang::En => format!("{n} {en}"),
        Lang::Ru => format!("{n} {ru}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(Lang::En, Duration::from_secs(86_400)), "1 d");
        assert_eq!(span(Lang::En, Duration::from_secs(24 * 3_600 * 7)), "7 d");
        assert_eq!(span(Lang::Ru, Duration::from_secs(6 * 3_600)), "6 ч");
        assert_eq!(span(Lang::En, Duration::from_secs(90 * 60)), "90 min");
        assert_eq!(span(Lang::Ru, Duration::from_secs(45)), "45 с");
    }
}
