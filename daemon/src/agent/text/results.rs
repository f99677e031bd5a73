//! The templates that put the tools' results into words, in English and Russian: latest
//! readings, sensor lists, alarms, the overview, sync, history, floors and tenants.

use std::fmt::Write as _;

use super::t;
use crate::agent::tools::{
    AlarmItem, FloorSummary, HistorySummary, Overview, ReadingItem, SensorInfo, SyncSummary,
    TenantSummary,
};
use crate::alarms::text::{number, severity_word, state_word};
use crate::model::{Lang, Quality, Severity};

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

pub(super) fn age(lang: Lang, secs: i64) -> String {
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
