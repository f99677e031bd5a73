//! The LLM-free path: slash commands and the keyword router.
//!
//! Commands (`/status`, `/alarms`, `/sensor`, `/plan`, `/history`, `/ack`, `/help`, `/reset`)
//! never touch the LLM, even when it is up. The router answers free text when the LLM is not
//! available: it recognises what the question is about from keywords in English and Russian and
//! calls the same tools the model would, then answers with templates.
//!
//! Owns: command syntax and the routing rules. Does not own: tools or wording.

use super::tools::{self, SensorQuery, ToolContext};
use super::{Agent, Attachment, Question, Reply, Source, ToolTrace, text};
use crate::context::Core;
use crate::model::{Lang, Timestamp};

/// A slash command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `/status`
    Status,
    /// `/alarms [all]`
    Alarms {
        /// Every alarm, not only open ones.
        all: bool,
    },
    /// `/sensor <words>`
    Sensor(String),
    /// `/plan <floor> [measure]`
    Plan {
        /// Floor id.
        floor: String,
        /// Measure.
        measure: Option<String>,
    },
    /// `/history <sensor> [range]`
    History {
        /// Sensor words or id.
        sensor: String,
        /// Range (`24h` by default).
        range: String,
    },
    /// `/ack <id>`
    Ack(String),
    /// `/sync`
    Sync,
    /// `/help`, `/start`
    Help,
    /// `/reset`, `/new`
    Reset,
    /// Anything else starting with `/`.
    Unknown(String),
}

/// Parses a slash command (`/cmd@botname args`); `None` for free text.
pub fn parse(text: &str) -> Option<Command> {
    let text = text.trim();
    let rest = text.strip_prefix('/')?;
    let (head, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let name = head.split('@').next().unwrap_or(head).to_lowercase();
    let args = args.trim();
    Some(match name.as_str() {
        "status" | "статус" => Command::Status,
        "alarms" | "тревоги" => Command::Alarms {
            all: args.eq_ignore_ascii_case("all") || args == "все",
        },
        "sensor" | "датчик" => Command::Sensor(args.to_owned()),
        "plan" | "план" => {
            let mut it = args.split_whitespace();
            Command::Plan {
                floor: it.next().unwrap_or_default().to_owned(),
                measure: it.next().map(str::to_lowercase),
            }
        }
        "history" | "история" => {
            let mut words: Vec<&str> = args.split_whitespace().collect();
            let range = match words.last() {
                Some(w) if words.len() > 1 && humantime::parse_duration(w).is_ok() => {
                    let r = (*w).to_owned();
                    words.pop();
                    r
                }
                _ => "24h".to_owned(),
            };
            Command::History {
                sensor: words.join(" "),
                range,
            }
        }
        "ack" => Command::Ack(args.trim_start_matches('#').to_owned()),
        "sync" => Command::Sync,
        "help" | "start" | "помощь" => Command::Help,
        "reset" | "new" | "сброс" => Command::Reset,
        _ => Command::Unknown(format!("/{name}")),
    })
}

fn ctx<'a>(agent: &'a Agent, core: &'a Core, q: &'a Question, lang: Lang) -> ToolContext<'a> {
    ToolContext {
        core,
        agent,
        actor: &q.actor,
        lang,
        now: Timestamp::now(),
    }
}

fn reply(text: String, lang: Lang, source: Source) -> Reply {
    Reply {
        text,
        lang,
        source,
        attachments: Vec::new(),
        confirmations: Vec::new(),
        tools: Vec::new(),
        elapsed_ms: 0,
    }
}

fn trace(name: &str, args: serde_json::Value, ok: bool) -> ToolTrace {
    ToolTrace {
        name: name.to_owned(),
        args,
        ok,
    }
}

/// Runs a slash command (never through the LLM).
pub async fn run(agent: &Agent, core: &Core, q: &Question, cmd: Command, lang: Lang) -> Reply {
    let c = ctx(agent, core, q, lang);
    let mut r = reply(String::new(), lang, Source::Command);
    r.text = match cmd {
        Command::Help => text::help(lang),
        Command::Reset => match super::session::reset(core, &q.session).await {
            Ok(()) => text::reset_done(lang),
            Err(e) => {
                tracing::warn!(error = %e, "Cannot reset the conversation.");
                text::error(lang, &e.to_string())
            }
        },
        Command::Unknown(name) => text::unknown_command(lang, &name),
        Command::Status => match tools::overview(&c).await {
            Ok(o) => {
                r.tools
                    .push(trace("site_overview", serde_json::json!({}), true));
                let mut s = text::overview(lang, &o);
                let open = tools::alarms(&c, "open", None, None);
                if !open.is_empty() {
                    s.push('\n');
                    s.push_str(&text::alarms(lang, &open));
                }
                s
            }
            Err(e) => text::error(lang, &e.0),
        },
        Command::Alarms { all } => {
            let state_name = if all { "all" } else { "open" };
            r.tools.push(trace(
                "alarms",
                serde_json::json!({"state": state_name}),
                true,
            ));
            text::alarms(lang, &tools::alarms(&c, state_name, None, None))
        }
        Command::Sensor(words) if words.is_empty() => {
            text::usage(lang, "/sensor <words>", "/sensor <слова>")
        }
        Command::Sensor(words) => match tools::readings(&c, &SensorQuery::text(&words)).await {
            Ok(rows) if !rows.is_empty() => {
                r.tools.push(trace(
                    "current_readings",
                    serde_json::json!({"sensor": words}),
                    true,
                ));
                text::readings(lang, &rows)
            }
            Ok(_) => text::error(lang, &format!("no sensor matches \"{words}\"")),
            Err(e) => text::error(lang, &e.0),
        },
        Command::Plan { floor, .. } if floor.is_empty() => {
            text::usage(lang, "/plan <floor>", "/plan <этаж>")
        }
        Command::Plan { floor, measure } => {
            let measure = measure
                .filter(|m| tools::MEASURES.contains(&m.as_str()))
                .unwrap_or_else(|| "temperature".into());
            match tools::floor_summary(&c, &floor, &measure).await {
                Ok(f) => {
                    r.tools.push(trace(
                        "floor_plan",
                        serde_json::json!({"floor": f.floor, "measure": measure}),
                        true,
                    ));
                    r.attachments.push(Attachment::FloorPlan {
                        floor: f.floor.clone(),
                        measure,
                    });
                    text::floor(lang, &f)
                }
                Err(e) => text::error(lang, &e.0),
            }
        }
        Command::History { sensor, .. } if sensor.is_empty() => text::usage(
            lang,
            "/history <sensor> [1h|6h|24h|7d|30d]",
            "/history <датчик> [1h|6h|24h|7d|30d]",
        ),
        Command::History { sensor, range } => {
            match tools::history(&c, &sensor, &range, "avg").await {
                Ok(h) => {
                    r.tools.push(trace(
                        "history",
                        serde_json::json!({"sensor": h.sensor, "range": range}),
                        true,
                    ));
                    r.attachments.push(Attachment::Chart {
                        sensor: h.sensor.clone(),
                        since_secs: tools::range_secs(&range),
                    });
                    text::history(lang, &h)
                }
                Err(e) => text::error(lang, &e.0),
            }
        }
        Command::Ack(id) => match id.parse::<i64>() {
            Err(_) => text::usage(lang, "/ack <alarm number>", "/ack <номер тревоги>"),
            Ok(id) => match core.alarms.ack(id, q.actor.clone()).await {
                Ok(outcome) => {
                    r.tools.push(trace(
                        "acknowledge_alarm",
                        serde_json::json!({"alarm_id": id}),
                        true,
                    ));
                    text::acked(lang, id, &outcome.alarm.alert)
                }
                Err(e) => text::error(lang, &e.to_string()),
            },
        },
        Command::Sync => {
            r.tools
                .push(trace("sync_status", serde_json::json!({}), true));
            text::sync(lang, &tools::sync(&c))
        }
    };
    r
}

/// What a free-text question is about, by keywords.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Alarms, filtered as the question says.
    Alarms {
        /// Leak / water questions.
        leaks: bool,
        /// Only those awaiting acknowledgement.
        unacked: bool,
        /// Least severity.
        severity: Option<&'static str>,
    },
    /// Acknowledge an alarm (by number, when given): proposed, confirmed outside.
    Ack(Option<i64>),
    /// A tenant, named by the remaining words.
    Tenant,
    /// The building at a glance.
    Status,
    /// Sync to the centre.
    Sync,
    /// A floor plan.
    Plan(String),
    /// History of the sensors the words name.
    History,
    /// Help.
    Help,
    /// Readings of the sensors the words name.
    Readings,
}

/// Ordinal words for floors, in English and Russian, with the floor number they name.
const ORDINALS: &[(&str, &str)] = &[
    ("first", "1"),
    ("second", "2"),
    ("third", "3"),
    ("fourth", "4"),
    ("fifth", "5"),
    ("sixth", "6"),
    ("перв", "1"),
    ("втор", "2"),
    ("трет", "3"),
    ("четверт", "4"),
    ("пят", "5"),
    ("шест", "6"),
];

fn has(words: &[String], stems: &[&str]) -> bool {
    words.iter().any(|w| stems.iter().any(|s| w.starts_with(s)))
}

/// Recognises what a question is about.
pub fn intent(question: &str) -> Intent {
    let lower = question.to_lowercase().replace('ё', "е");
    let words: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    // "acknowledge alarm 12", "please ack 12", "квитируй тревогу": a request, not a question
    // about acknowledged alarms.
    let request = words
        .iter()
        .find(|w| {
            ![
                "please",
                "pls",
                "пожалуйста",
                "can",
                "could",
                "you",
                "можешь",
                "мне",
            ]
            .contains(&w.as_str())
        })
        .is_some_and(|w| {
            ["ack", "acknowledg", "квитир", "подтверд"]
                .iter()
                .any(|s| w.starts_with(s))
        });
    if request {
        let id = words.iter().find_map(|w| w.parse::<i64>().ok());
        return Intent::Ack(id);
    }
    let leaks = has(
        &words,
        &["leak", "flood", "протеч", "потоп", "затоп", "течь", "теч"],
    );
    if leaks
        || has(
            &words,
            &[
                "alarm",
                "alert",
                "тревог",
                "авари",
                "сигнализ",
                "problem",
                "проблем",
            ],
        )
    {
        let severity = if has(&words, &["critical", "критич"]) {
            Some("critical")
        } else if has(&words, &["high", "urgent", "высок", "срочн", "серьезн"]) {
            Some("high")
        } else {
            None
        };
        return Intent::Alarms {
            leaks,
            unacked: has(&words, &["unack", "неквит", "не квит", "не подтвержд"])
                || lower.contains("not acknowledged")
                || lower.contains("не квитир"),
            severity,
        };
    }
    if has(&words, &["tenant", "арендат", "company", "компани", "фирм"]) {
        return Intent::Tenant;
    }
    if has(&words, &["plan", "план", "map", "карт", "схем"]) {
        // A floor label: a number ("3", "-1") or one letter ("B").
        let short = |w: &&String| {
            let n = w.chars().count();
            n <= 3
                && (w.chars().any(|c| c.is_ascii_digit())
                    || (n == 1 && w.chars().all(|c| c.is_ascii_alphabetic()) && w.as_str() != "a"))
        };
        let at = words.iter().position(|w| {
            w.starts_with("floor") || w.starts_with("этаж") || w.starts_with("level")
        });
        let floor = at
            .and_then(|i| {
                words
                    .get(i + 1)
                    .filter(short)
                    .or_else(|| i.checked_sub(1).and_then(|j| words.get(j)).filter(short))
            })
            .or_else(|| words.iter().find(|w| short(w)))
            .cloned()
            .or_else(|| {
                words.iter().find_map(|w| {
                    ORDINALS
                        .iter()
                        .find(|(stem, _)| w.starts_with(stem))
                        .map(|(_, n)| (*n).to_owned())
                })
            })
            .unwrap_or_default();
        return Intent::Plan(floor);
    }
    if has(
        &words,
        &[
            "sync",
            "синхрон",
            "upload",
            "выгруз",
            "центр",
            "central",
            "office",
        ],
    ) {
        return Intent::Sync;
    }
    if has(
        &words,
        &[
            "history",
            "истори",
            "график",
            "chart",
            "trend",
            "тренд",
            "yesterday",
            "вчера",
            "week",
            "недел",
        ],
    ) {
        return Intent::History;
    }
    if has(&words, &["help", "помощ", "справк", "умеешь", "can"]) && words.len() <= 4
    {
        return Intent::Help;
    }
    if has(
        &words,
        &[
            "status",
            "статус",
            "overview",
            "обзор",
            "summary",
            "сводк",
            "дела",
            "обстановк",
            "everything",
        ],
    ) {
        return Intent::Status;
    }
    Intent::Readings
}

/// The words of a tenant question that may name the tenant (or a room of theirs).
fn tenant_words(question: &str) -> String {
    const NOISE: &[&str] = &[
        "tenant",
        "tenants",
        "арендатор",
        "арендатора",
        "арендаторе",
        "company",
        "компания",
        "компании",
        "who",
        "is",
        "the",
        "of",
        "in",
        "about",
        "info",
        "кто",
        "что",
        "о",
        "об",
        "про",
        "в",
        "какой",
        "какая",
        "фирма",
        "фирмы",
    ];
    question
        .split(|c: char| c.is_whitespace() || c == '?' || c == ',' || c == '!')
        .filter(|w| !w.is_empty() && !NOISE.contains(&w.to_lowercase().as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Answers free text without the LLM: the keyword router. `reason` says why the LLM was not
/// used (`not_configured`, `down`, `timeout`, ...) and heads the answer.
pub async fn route(agent: &Agent, core: &Core, q: &Question, lang: Lang, reason: &str) -> Reply {
    let c = ctx(agent, core, q, lang);
    let mut r = reply(String::new(), lang, Source::Offline);
    let body = match intent(&q.text) {
        Intent::Help => text::help(lang),
        Intent::Status => match tools::overview(&c).await {
            Ok(o) => {
                r.tools
                    .push(trace("site_overview", serde_json::json!({}), true));
                text::overview(lang, &o)
            }
            Err(e) => text::error(lang, &e.0),
        },
        Intent::Sync => {
            r.tools
                .push(trace("sync_status", serde_json::json!({}), true));
            text::sync(lang, &tools::sync(&c))
        }
        Intent::Ack(id) => match id {
            Some(id) => match tools::propose_ack(&c, id) {
                Ok(conf) => {
                    r.tools.push(trace(
                        "acknowledge_alarm",
                        serde_json::json!({"alarm_id": id}),
                        true,
                    ));
                    let prompt = conf.prompt.clone();
                    r.confirmations.push(conf);
                    prompt
                }
                Err(e) => text::error(lang, &e.0),
            },
            None => {
                r.tools.push(trace(
                    "alarms",
                    serde_json::json!({"state": "unacknowledged"}),
                    true,
                ));
                text::alarms(lang, &tools::alarms(&c, "unacknowledged", None, None))
            }
        },
        Intent::Tenant => {
            let name = tenant_words(&q.text);
            match tools::tenant(&c, Some(&name), Some(&name)).await {
                Ok(t) => {
                    r.tools.push(trace(
                        "tenant_info",
                        serde_json::json!({"tenant": name}),
                        true,
                    ));
                    text::tenant(lang, &t)
                }
                Err(e) => text::error(lang, &e.0),
            }
        }
        Intent::Alarms {
            leaks,
            unacked,
            severity,
        } => {
            let state_name = if unacked { "unacknowledged" } else { "open" };
            r.tools.push(trace(
                "alarms",
                serde_json::json!({"state": state_name, "severity": severity}),
                true,
            ));
            let mut list = tools::alarms(&c, state_name, severity, None);
            if leaks {
                list.retain(|a| {
                    let s = format!("{} {} {}", a.alert, a.sensor, a.message).to_lowercase();
                    s.contains("leak") || s.contains("water") || s.contains("протеч")
                });
            }
            let mut out = text::alarms(lang, &list);
            if leaks {
                let q = SensorQuery {
                    kind: Some("leak".into()),
                    ..SensorQuery::default()
                };
                if let Ok(rows) = tools::readings(&c, &q).await
                    && !rows.is_empty()
                {
                    r.tools.push(trace(
                        "current_readings",
                        serde_json::json!({"kind": "leak"}),
                        true,
                    ));
                    out.push('\n');
                    out.push_str(&text::readings(lang, &rows));
                }
            }
            out
        }
        Intent::Plan(floor) => {
            if floor.is_empty() {
                text::usage(lang, "/plan <floor>", "/plan <этаж>")
            } else {
                match tools::floor_summary(&c, &floor, "temperature").await {
                    Ok(f) => {
                        r.tools.push(trace(
                            "floor_plan",
                            serde_json::json!({"floor": f.floor}),
                            true,
                        ));
                        r.attachments.push(Attachment::FloorPlan {
                            floor: f.floor.clone(),
                            measure: "temperature".into(),
                        });
                        text::floor(lang, &f)
                    }
                    Err(e) => text::error(lang, &e.0),
                }
            }
        }
        Intent::History => match tools::find(&c, &SensorQuery::text(&q.text)).await {
            Ok(found) if !found.is_empty() => {
                let range = if q.text.contains("week") || q.text.contains("недел") {
                    "7d"
                } else {
                    "24h"
                };
                match tools::history(&c, &found[0].id, range, "avg").await {
                    Ok(h) => {
                        r.tools.push(trace(
                            "history",
                            serde_json::json!({"sensor": h.sensor, "range": range}),
                            true,
                        ));
                        r.attachments.push(Attachment::Chart {
                            sensor: h.sensor.clone(),
                            since_secs: tools::range_secs(range),
                        });
                        text::history(lang, &h)
                    }
                    Err(e) => text::error(lang, &e.0),
                }
            }
            _ => text::not_understood(lang),
        },
        Intent::Readings => match tools::readings(&c, &SensorQuery::text(&q.text)).await {
            Ok(rows) if !rows.is_empty() => {
                r.tools.push(trace(
                    "current_readings",
                    serde_json::json!({"sensor": q.text}),
                    true,
                ));
                text::readings(lang, &rows.into_iter().take(10).collect::<Vec<_>>())
            }
            Ok(_) => text::not_understood(lang),
            Err(e) => text::error(lang, &e.0),
        },
    };
    r.text = format!("{}\n{body}", text::offline_notice(lang, reason));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse("/status"), Some(Command::Status));
        assert_eq!(parse("/status@markoff_bot"), Some(Command::Status));
        assert_eq!(parse("/alarms all"), Some(Command::Alarms { all: true }));
        assert_eq!(
            parse("/sensor котёл"),
            Some(Command::Sensor("котёл".into()))
        );
        assert_eq!(
            parse("/plan 3 co2"),
            Some(Command::Plan {
                floor: "3".into(),
                measure: Some("co2".into())
            })
        );
        assert_eq!(
            parse("/history boiler supply 7d"),
            Some(Command::History {
                sensor: "boiler supply".into(),
                range: "7d".into()
            })
        );
        assert_eq!(
            parse("/history f3.r301.temperature"),
            Some(Command::History {
                sensor: "f3.r301.temperature".into(),
                range: "24h".into()
            })
        );
        assert_eq!(parse("/ack #12"), Some(Command::Ack("12".into())));
        assert_eq!(
            parse("/frobnicate"),
            Some(Command::Unknown("/frobnicate".into()))
        );
        assert_eq!(parse("what is the temperature?"), None);
    }

    #[test]
    fn router_recognises_questions_in_both_languages() {
        let alarms = |leaks, unacked, severity| Intent::Alarms {
            leaks,
            unacked,
            severity,
        };
        assert_eq!(intent("any leaks?"), alarms(true, false, None));
        assert_eq!(intent("Есть протечки?"), alarms(true, false, None));
        assert_eq!(intent("какие тревоги активны"), alarms(false, false, None));
        assert_eq!(
            intent("critical alarms not acknowledged yet?"),
            alarms(false, true, Some("critical"))
        );
        assert_eq!(intent("acknowledge alarm 12"), Intent::Ack(Some(12)));
        assert_eq!(intent("квитируй тревогу"), Intent::Ack(None));
        assert_eq!(intent("who is the tenant of 301?"), Intent::Tenant);
        assert_eq!(intent("plan of the third floor"), Intent::Plan("3".into()));
        assert_eq!(intent("план второго этажа"), Intent::Plan("2".into()));
        assert_eq!(tenant_words("who is the tenant of 301?"), "301");
        assert_eq!(
            intent("show me the plan of floor 3"),
            Intent::Plan("3".into())
        );
        assert_eq!(intent("план 2 этажа"), Intent::Plan("2".into()));
        assert_eq!(intent("план этажа B"), Intent::Plan("b".into()));
        assert_eq!(intent("what is the temperature in 301?"), Intent::Readings);
        assert_eq!(intent("что с котлом?"), Intent::Readings);
        assert_eq!(
            intent("график температуры котла за неделю"),
            Intent::History
        );
        assert_eq!(
            intent("когда была последняя синхронизация с центром"),
            Intent::Sync
        );
        assert_eq!(intent("как дела в здании?"), Intent::Status);
    }
}
