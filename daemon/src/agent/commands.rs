//! The LLM-free path: slash commands and the keyword router.
//!
//! Commands (`/status`, `/alarms`, `/sensor`, `/plan`, `/history`, `/ack`, `/help`, `/reset`)
//! never touch the LLM, even when it is up. The router answers free text when the LLM is not
//! available: `super::understand` tells from the site's vocabulary which tool and arguments the
//! question asks for, the router calls the same tools the model would and answers with
//! templates.
//!
//! Owns: command syntax and running commands and understood questions. Does not own: tools,
//! understanding or wording.

use super::tools::{self, SensorQuery, ToolContext};
use super::understand::{self, Ask, Target, Vocabulary};
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
                text::reset_failed(lang)
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
            Err(e) => text::tool_error(lang, &e),
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
            Ok(_) => text::no_sensor(lang),
            Err(e) => text::tool_error(lang, &e),
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
                Err(e) => text::tool_error(lang, &e),
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
                Err(e) => text::tool_error(lang, &e),
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
                Err(e) => crate::alarms::text::refusal(lang, &e),
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

/// The arguments a [`Target`] gives a sensor tool, as recorded in the reply's trace.
fn target_args(t: &Target, text_key: &str) -> serde_json::Value {
    let mut args = serde_json::Map::new();
    if let Some(text) = t.sensor_text() {
        args.insert(text_key.into(), text.into());
    }
    for (key, value) in [
        ("room", t.room.clone()),
        ("floor", t.floor.clone()),
        ("tenant", t.tenant.clone()),
    ] {
        if let Some(v) = value {
            args.insert(key.into(), v.into());
        }
    }
    if let Some(k) = t.kind.filter(|_| t.words.is_empty()) {
        args.insert("kind".into(), k.into());
    }
    serde_json::Value::Object(args)
}

/// The sensor query a [`Target`] stands for: equipment words as text (with the kind word),
/// else the room, floor, kind and tenant as filters.
fn target_query(t: &Target) -> SensorQuery {
    SensorQuery {
        text: t.sensor_text(),
        floor: t.floor.clone(),
        room: t.room.clone(),
        tenant: t.tenant.clone(),
        kind: t.kind.filter(|_| t.words.is_empty()).map(str::to_owned),
    }
}

/// The site's vocabulary: the configuration and the sensors table (without sensors when the
/// table cannot be read: floors, rooms and tenants still count).
async fn vocabulary(core: &Core) -> Vocabulary {
    let sensors = core.reader.sensors().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "Cannot read the sensors for the offline understanding.");
        Vec::new()
    });
    Vocabulary::new(&core.config(), &sensors)
}

/// What a free-text question asks, by the site's vocabulary (see `super::understand`).
pub async fn understand_question(core: &Core, text: &str) -> Ask {
    understand::understand(&vocabulary(core).await, text)
}

/// Answers free text without the LLM: the offline understanding picks the tool and its
/// arguments, templates word the answer. `reason` says why the LLM was not used
/// (`not_configured`, `down`, `timeout`, ...) and heads the answer.
pub async fn route(agent: &Agent, core: &Core, q: &Question, lang: Lang, reason: &str) -> Reply {
    let c = ctx(agent, core, q, lang);
    let mut r = reply(String::new(), lang, Source::Offline);
    let body = match understand_question(core, &q.text).await {
        Ask::Help => text::help(lang),
        Ask::NotUnderstood => text::not_understood(lang),
        Ask::Overview => {
            let out = tools::overview(&c).await;
            r.tools
                .push(trace("site_overview", serde_json::json!({}), out.is_ok()));
            match out {
                Ok(o) => text::overview(lang, &o),
                Err(e) => text::tool_error(lang, &e),
            }
        }
        Ask::Sync => {
            r.tools
                .push(trace("sync_status", serde_json::json!({}), true));
            text::sync(lang, &tools::sync(&c))
        }
        Ask::Ack(Some(id)) => {
            let out = tools::propose_ack(&c, id);
            r.tools.push(trace(
                "acknowledge_alarm",
                serde_json::json!({"alarm_id": id}),
                out.is_ok(),
            ));
            match out {
                Ok(conf) => {
                    let prompt = conf.prompt.clone();
                    r.confirmations.push(conf);
                    prompt
                }
                Err(e) => text::tool_error(lang, &e),
            }
        }
        Ask::Ack(None) => {
            r.tools.push(trace(
                "alarms",
                serde_json::json!({"state": "unacknowledged"}),
                true,
            ));
            text::alarms(lang, &tools::alarms(&c, "unacknowledged", None, None))
        }
        Ask::Tenant { tenant, room } => {
            let mut args = serde_json::Map::new();
            if let Some(t) = &tenant {
                args.insert("tenant".into(), t.clone().into());
            }
            if let Some(room) = &room {
                args.insert("room".into(), room.clone().into());
            }
            let out = tools::tenant(&c, tenant.as_deref(), room.as_deref()).await;
            r.tools.push(trace("tenant_info", args.into(), out.is_ok()));
            match out {
                Ok(t) => text::tenant(lang, &t),
                Err(e) => text::tool_error(lang, &e),
            }
        }
        Ask::Alarms {
            state,
            severity,
            floor,
            leaks,
        } => {
            let mut args = serde_json::json!({"state": state});
            if let Some(s) = severity {
                args["severity"] = s.into();
            }
            if let Some(f) = &floor {
                args["floor"] = f.clone().into();
            }
            r.tools.push(trace("alarms", args, true));
            let mut list = tools::alarms(&c, state, severity, floor.as_deref());
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
        Ask::Plan { floor: None, .. } => text::usage(lang, "/plan <floor>", "/plan <этаж>"),
        Ask::Plan {
            floor: Some(floor),
            measure,
        } => {
            let out = tools::floor_summary(&c, &floor, measure).await;
            r.tools.push(trace(
                "floor_plan",
                serde_json::json!({"floor": floor, "measure": measure}),
                out.is_ok(),
            ));
            match out {
                Ok(f) => {
                    r.attachments.push(Attachment::FloorPlan {
                        floor: f.floor.clone(),
                        measure: measure.to_owned(),
                    });
                    text::floor(lang, &f)
                }
                Err(e) => text::tool_error(lang, &e),
            }
        }
        Ask::Find(target) => {
            let out = tools::find(&c, &target_query(&target)).await;
            r.tools.push(trace(
                "find_sensors",
                target_args(&target, "query"),
                out.is_ok(),
            ));
            match out {
                Ok(list) if !list.is_empty() => text::sensors(lang, &list),
                Ok(_) => text::no_sensor(lang),
                Err(e) => text::tool_error(lang, &e),
            }
        }
        Ask::History {
            target,
            range,
            aggregation,
        } => {
            if target.is_empty() {
                text::not_understood(lang)
            } else {
                let mut query = target_query(&target);
                if query.text.is_none() && query.kind.is_none() && query.room.is_some() {
                    // A room's history: its temperature, unless the question says otherwise.
                    query.kind = Some("temperature".into());
                }
                match tools::find(&c, &query).await {
                    Ok(found) if !found.is_empty() => {
                        let id = found[0].id.clone();
                        let out = tools::history(&c, &id, range, aggregation).await;
                        r.tools.push(trace(
                            "history",
                            serde_json::json!({
                                "sensor": id,
                                "range": range,
                                "aggregation": aggregation,
                            }),
                            out.is_ok(),
                        ));
                        match out {
                            Ok(h) => {
                                r.attachments.push(Attachment::Chart {
                                    sensor: h.sensor.clone(),
                                    since_secs: tools::range_secs(range),
                                });
                                text::history(lang, &h)
                            }
                            Err(e) => text::tool_error(lang, &e),
                        }
                    }
                    Ok(_) => text::no_sensor(lang),
                    Err(e) => text::tool_error(lang, &e),
                }
            }
        }
        Ask::Readings(target) => {
            let out = tools::readings(&c, &target_query(&target)).await;
            r.tools.push(trace(
                "current_readings",
                target_args(&target, "sensor"),
                out.is_ok(),
            ));
            match out {
                Ok(rows) if !rows.is_empty() => {
                    text::readings(lang, &rows.into_iter().take(10).collect::<Vec<_>>())
                }
                Ok(_) => text::no_sensor(lang),
                Err(e) => text::tool_error(lang, &e),
            }
        }
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
}
