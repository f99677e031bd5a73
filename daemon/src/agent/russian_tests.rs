//! Russian is complete: every template a person can receive from the assistant, the alarm
//! service's refusals, the Telegram bot's own words and the LAN page's labels are rendered in
//! Russian with sample data, and none holds an English sentence (a run of three or more Latin
//! words outside sensor names, identifiers, commands, units and quoted technical detail).

use std::collections::BTreeMap;

use super::text;
use super::tools::{
    AlarmItem, FloorSummary, HistoryPoint, HistorySummary, Overview, ReadingItem, SensorInfo,
    SyncSummary, TenantSummary, ToolError,
};
use crate::alarms::engine::{EventKind, Refusal};
use crate::alarms::{AlarmError, AlarmView};
use crate::model::{AlarmState, Lang, Quality, Severity};

/// Names as configured (shown as they are, in any language).
const NAMES: &[&str] = &[
    "Boiler supply temperature",
    "Room 301 temperature",
    "Vector Engineering",
    "Lenina 17",
    "Acme Ltd",
];

/// The first English sentence in `text`: three Latin words in a row, after removing names,
/// «quoted» technical detail, commands (`/ack 3`), identifiers (`f3.r301.temperature`,
/// `WaterLeak` rule names given), units and numbers.
fn english_run(text: &str, allowed: &[&str]) -> Option<String> {
    let mut t = text.to_owned();
    for n in NAMES.iter().chain(allowed) {
        t = t.replace(n, " ");
    }
    // Quoted technical detail («connection refused») is shown as it came.
    while let (Some(a), Some(b)) = (t.find('«'), t.find('»')) {
        if b < a {
            break;
        }
        t.replace_range(a..b + '»'.len_utf8(), " ");
    }
    let mut run: Vec<&str> = Vec::new();
    for raw in t.split_whitespace() {
        let w = raw.trim_matches(|c: char| ",.;:!?()[]{}\"'—-…".contains(c));
        let latin_word = !w.is_empty()
            && w.chars().all(|c| c.is_ascii_alphabetic())
            && w.chars().count() > 1
            && !raw.starts_with('/')
            && !matches!(w, "UTC" | "CO2" | "ppm" | "bar" | "LLM" | "ID");
        if latin_word {
            run.push(w);
            if run.len() >= 3 {
                return Some(run.join(" "));
            }
        } else {
            run.clear();
        }
    }
    None
}

fn assert_russian(what: &str, text: &str, allowed: &[&str]) {
    assert!(
        english_run(text, allowed).is_none(),
        "{what} in Russian has English ({:?}):\n{text}",
        english_run(text, allowed)
    );
}

#[test]
fn the_checker_finds_english_sentences_and_spares_names() {
    assert!(english_run("Не получилось: victor may not ack alarms", &[]).is_some());
    assert!(english_run("Котёл: 71 °C (10:00 UTC, 5 мин назад)", &[]).is_none());
    assert!(english_run("Boiler supply temperature: 71 °C", &[]).is_none());
    assert!(english_run("ошибка: «connection refused by peer»", &[]).is_none());
    assert!(english_run("#3 [высокая] WaterLeak — /ack 3", &[]).is_none());
}

fn reading(name: &str, quality: Quality, value: Option<f64>) -> ReadingItem {
    ReadingItem {
        sensor: "f3.r301.temperature".into(),
        name: name.into(),
        value,
        unit: "°C".into(),
        quality,
        time: "2026-12-06T10:00:00Z".into(),
        age_s: 300,
        stale: quality != Quality::Good,
        floor: Some("3".into()),
        room: Some("301".into()),
    }
}

fn alarm(state: AlarmState, severity: Severity) -> AlarmItem {
    AlarmItem {
        id: 3,
        alert: "WaterLeak".into(),
        severity,
        state,
        message: "💧 basement.leak = 1".into(),
        sensor: "basement.leak".into(),
        location: "B / basement".into(),
        value: Some("1".into()),
        since: Some("2026-12-06T09:00:00Z".into()),
        acked_by: None,
        shelved_until: None,
    }
}

fn every_alarm() -> Vec<AlarmItem> {
    let mut out = Vec::new();
    for state in [
        AlarmState::Normal,
        AlarmState::ActiveUnacked,
        AlarmState::ActiveAcked,
        AlarmState::ClearedUnacked,
    ] {
        for sev in [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            out.push(alarm(state, sev));
        }
    }
    out
}

fn every_reading() -> Vec<ReadingItem> {
    vec![
        reading("Room 301 temperature", Quality::Good, Some(21.5)),
        reading("Room 301 temperature", Quality::Bad, None),
        reading("Room 301 temperature", Quality::Stale, None),
        reading("Room 301 temperature", Quality::CommError, None),
    ]
}

/// Every template of the assistant, in Russian.
fn assistant_texts() -> Vec<(String, String)> {
    let ru = Lang::Ru;
    let mut out: Vec<(String, String)> = vec![
        ("help".into(), text::help(ru)),
        ("disabled".into(), text::disabled(ru)),
        ("reset_done".into(), text::reset_done(ru)),
        ("reset_failed".into(), text::reset_failed(ru)),
        ("confirm_prompt".into(), text::confirm_prompt(3, ru)),
        (
            "stale_note".into(),
            text::stale_note(ru, &["f3.r301.temperature".into()]),
        ),
        ("unknown_command".into(), text::unknown_command(ru, "/foo")),
        (
            "usage".into(),
            text::usage(ru, "/plan <floor>", "/plan <этаж>"),
        ),
        ("not_understood".into(), text::not_understood(ru)),
        ("no_sensor".into(), text::no_sensor(ru)),
        ("readings".into(), text::readings(ru, &every_reading())),
        ("readings (none)".into(), text::readings(ru, &[])),
        ("alarms".into(), text::alarms(ru, &every_alarm())),
        ("alarms (none)".into(), text::alarms(ru, &[])),
        (
            "sensors".into(),
            text::sensors(
                ru,
                &[SensorInfo {
                    id: "boiler.supply_temp".into(),
                    name: "Boiler supply temperature".into(),
                    kind: "temperature".into(),
                    unit: "°C".into(),
                    floor: Some("B".into()),
                    room: None,
                    tenant: None,
                }],
            ),
        ),
        ("acked".into(), text::acked(ru, 3, "WaterLeak")),
    ];
    for reason in [
        "timeout",
        "not_configured",
        "down",
        "busy",
        "empty",
        "bad_response",
    ] {
        out.push((
            format!("offline_notice {reason}"),
            text::offline_notice(ru, reason),
        ));
    }
    for sync in ["off", "ok", "behind", "failing"] {
        let mut by_sev = BTreeMap::new();
        by_sev.insert("critical".to_owned(), 1);
        by_sev.insert("medium".to_owned(), 2);
        out.push((
            format!("overview {sync}"),
            text::overview(
                ru,
                &Overview {
                    building: "Lenina 17".into(),
                    address: None,
                    floors: vec!["1".into()],
                    sensors: 51,
                    online: 50,
                    stale: 1,
                    stale_examples: vec!["f3.r301.temperature".into()],
                    open_alarms: by_sev,
                    unacknowledged: 2,
                    sync: sync.into(),
                    sync_waiting_rows: 10,
                    now: "2026-12-06T10:00:00Z".into(),
                },
            ),
        ));
        out.push((
            format!("sync {sync}"),
            text::sync(
                ru,
                &SyncSummary {
                    state: sync.into(),
                    waiting_rows: 10,
                    oldest_waiting_s: 4000.0,
                    last_success: Some("2026-12-06T09:00:00Z".into()),
                    last_error: Some("connection refused by the central server".into()),
                },
            ),
        ));
    }
    let history = HistorySummary {
        sensor: "boiler.supply_temp".into(),
        name: "Boiler supply temperature".into(),
        unit: "°C".into(),
        range: "24h".into(),
        aggregation: "avg".into(),
        count: 10,
        min: Some(60.0),
        max: Some(75.0),
        avg: Some(70.0),
        last: Some(71.0),
        last_time: Some("2026-12-06T10:00:00Z".into()),
        points: vec![HistoryPoint {
            from: "2026-12-06T09:00:00Z".into(),
            value: 70.0,
        }],
    };
    out.push(("history".into(), text::history(ru, &history)));
    out.push((
        "history (empty)".into(),
        text::history(
            ru,
            &HistorySummary {
                count: 0,
                ..history
            },
        ),
    ));
    for measure in ["temperature", "humidity", "co2", "alarms"] {
        out.push((
            format!("floor {measure}"),
            text::floor(
                ru,
                &FloorSummary {
                    floor: "3".into(),
                    measure: measure.into(),
                    rooms: every_reading(),
                    alarms: every_alarm(),
                },
            ),
        ));
    }
    out.push((
        "tenant".into(),
        text::tenant(
            ru,
            &TenantSummary {
                id: "vector".into(),
                name: "Vector Engineering".into(),
                rooms: vec!["301".into()],
                readings: every_reading(),
                alarms: every_alarm(),
            },
        ),
    ));
    let tool_errors = [
        ToolError::NoSensor("no sensor matches; floors: 1, 2".into()),
        ToolError::Database("database is locked".into()),
        ToolError::Arguments("invalid type: string, expected i64".into()),
        ToolError::Forbidden {
            user: "victor".into(),
            role: "viewer".into(),
        },
        ToolError::NoAlarm {
            id: 9,
            open: vec!["3 (WaterLeak)".into()],
        },
        ToolError::NoAlarm {
            id: 9,
            open: Vec::new(),
        },
        ToolError::NotAwaiting {
            id: 3,
            alert: "WaterLeak".into(),
            state: AlarmState::ActiveAcked,
        },
        ToolError::NoFloor {
            floor: "9".into(),
            floors: vec!["1".into(), "B".into()],
        },
        ToolError::NoTenant {
            tenants: vec!["Acme Ltd".into()],
        },
    ];
    for e in &tool_errors {
        out.push((format!("tool_error {e:?}"), text::tool_error(ru, e)));
    }
    out
}

fn alarm_errors() -> Vec<AlarmError> {
    let mut out = vec![
        AlarmError::Refused(Refusal::Unknown(9)),
        AlarmError::NotRunning,
        AlarmError::Store(crate::store::StoreError::Closed),
    ];
    for action in ["ack", "shelve", "unshelve", "out_of_service", "in_service"] {
        out.push(AlarmError::Refused(Refusal::Forbidden {
            user: "victor".into(),
            action,
        }));
    }
    for state in [
        "normal",
        "active_acked",
        "active_unacked",
        "cleared_unacked",
    ] {
        out.push(AlarmError::Refused(Refusal::NotApplicable {
            id: 3,
            state,
            action: "ack",
        }));
    }
    out
}

#[test]
fn every_assistant_template_is_russian() {
    for (what, text) in assistant_texts() {
        assert_russian(&what, &text, &["WaterLeak"]);
    }
}

#[test]
fn every_refusal_of_the_alarm_service_is_russian() {
    for e in alarm_errors() {
        let ru = crate::alarms::text::refusal(Lang::Ru, &e);
        assert_russian(&format!("{e:?}"), &ru, &[]);
        assert!(ru.chars().count() <= 200, "{ru}");
        let en = crate::alarms::text::refusal(Lang::En, &e);
        assert_ne!(ru, en);
    }
    // The refusal a viewer used to get from /ack.
    let viewer = AlarmError::Refused(Refusal::Forbidden {
        user: "victor".into(),
        action: "ack",
    });
    assert_eq!(
        crate::alarms::text::refusal(Lang::Ru, &viewer),
        "Недостаточно прав: квитировать тревоги может только оператор."
    );
}

#[test]
fn alarm_notifications_are_russian() {
    let events = [
        EventKind::Raised,
        EventKind::Cleared,
        EventKind::Normal,
        EventKind::Acked,
        EventKind::Shelved,
        EventKind::Unshelved,
        EventKind::OutOfService,
        EventKind::InService,
    ];
    use crate::alarms::text as at;
    for e in events {
        let h = at::header(Lang::Ru, e, Severity::High, 3, "WaterLeak");
        assert_russian(&format!("header {e:?}"), &h, &["WaterLeak"]);
    }
    assert_russian(
        "reminder",
        &at::reminder_header(Lang::Ru, Severity::Low, 3, "WaterLeak"),
        &["WaterLeak"],
    );
    assert_russian("ack_hint", &at::ack_hint(Lang::Ru, 3), &[]);
    let lines: Vec<String> = (0..12).map(|i| format!("#{i} WaterLeak")).collect();
    assert_russian(
        "summary",
        &at::summary(Lang::Ru, &lines, 12),
        &["WaterLeak"],
    );
}

#[test]
fn the_telegram_bots_own_words_are_russian() {
    use crate::channels::telegram::text as tt;
    let ru = Lang::Ru;
    let mut texts = vec![
        ("ack_button".to_owned(), tt::ack_button(ru)),
        ("shelve_button".to_owned(), tt::shelve_button(ru)),
        ("action_done".to_owned(), tt::action_done(ru, 3, false)),
        (
            "action_done shelved".to_owned(),
            tt::action_done(ru, 3, true),
        ),
        ("unknown_button".to_owned(), tt::unknown_button(ru)),
        ("no_picture".to_owned(), tt::no_picture(ru, "нет данных")),
        ("no_spoken_answer".to_owned(), tt::no_spoken_answer(ru)),
        (
            "chart_caption".to_owned(),
            tt::chart_caption(ru, "Boiler supply temperature", 7 * 86_400),
        ),
    ];
    for e in [
        crate::agent::ConfirmError::Expired,
        crate::agent::ConfirmError::NotYours,
    ] {
        texts.push((
            format!("confirm_refused {e:?}"),
            tt::confirm_refused(ru, &e),
        ));
    }
    for e in alarm_errors() {
        texts.push((format!("action_refused {e:?}"), tt::action_refused(ru, &e)));
    }
    for (name, description) in tt::commands(ru) {
        texts.push((format!("command {name}"), description.to_owned()));
    }
    for state in [
        AlarmState::Normal,
        AlarmState::ActiveUnacked,
        AlarmState::ActiveAcked,
        AlarmState::ClearedUnacked,
    ] {
        for (acked_by, shelved, oos) in [
            (None, None, false),
            (Some("ivan".to_owned()), None, false),
            (None, Some(4_000_000), false),
            (None, None, true),
        ] {
            let v = AlarmView {
                id: 3,
                alert: "WaterLeak".into(),
                sensor: "basement.leak".into(),
                name: "Basement water leak".into(),
                location: "B / basement".into(),
                state,
                severity: Severity::High,
                value: Some(1.0),
                unit: String::new(),
                message: "💧 basement.leak = 1".into(),
                raised_ms: Some(0),
                acked_by,
                shelved_until: shelved,
                out_of_service: oos,
                ack_required: true,
            };
            texts.push((format!("status_line {state:?}"), tt::status_line(&v, ru, 0)));
        }
    }
    for (what, text) in texts {
        assert_russian(&what, &text, &["WaterLeak"]);
    }
}

#[test]
fn the_lan_page_labels_are_russian() {
    // Every label is a string field; each one with Latin letters must be Russian too.
    let debug = format!("{:?}", crate::channels::lan::words::words(Lang::Ru));
    let labels: Vec<&str> = debug.split('"').skip(1).step_by(2).collect();
    assert!(labels.len() > 20, "{debug}");
    for label in labels {
        let latin = label.chars().any(|c| c.is_ascii_alphabetic());
        let cyrillic = label
            .chars()
            .any(|c| ('\u{0400}'..='\u{04FF}').contains(&c));
        assert!(
            !latin || cyrillic || matches!(label, "CO2" | "UTC"),
            "LAN label {label:?} is not Russian"
        );
    }
}
