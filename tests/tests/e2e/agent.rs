//! The on-site assistant through the real binary and a fake Koboldcpp that speaks its wire
//! format: grounded answers from tool results, the retry ladder (malformed arguments, tool
//! calls printed as text, empty answers), 503 busy, a hung server, a server that is down
//! (answers from local data within 1 s), commands that never touch the LLM, conversations with
//! a reset, Russian, and acknowledgements that need a confirmation outside the LLM.

use std::time::Duration;

use tokio::time::Instant;

use markoff_tests::kobold::{FakeKobold, Step};
use markoff_tests::{TempGateway, assert_eventually, run_markoff};
use serde_json::{Value, json};

use super::{ROOM_TOO_WARM, open_alarm_id};

/// An operator and a viewer (with the alarm rule of `ROOM_TOO_WARM`).
const USERS: &str = r#"
[[users]]
login = "ivan"
role = "operator"

[[users]]
login = "olga"
role = "viewer"
lang = "ru"
"#;

/// The bearer token of `user` (`[[http.token]]`, see [`with_tokens`]).
fn token_of(user: &str) -> String {
    format!("{user}-agent-e2e-token")
}

/// `builder` with a bearer token for each person of [`USERS`].
fn with_tokens(builder: markoff_tests::GatewayBuilder) -> markoff_tests::GatewayBuilder {
    builder
        .api_token("ivan", &token_of("ivan"))
        .api_token("olga", &token_of("olga"))
}

/// A gateway whose assistant talks to `fake`.
async fn gateway(fake: &FakeKobold, agent_extra: &str) -> TempGateway {
    let toml = format!(
        "{ROOM_TOO_WARM}\n{USERS}\n[agent]\nturn_timeout = \"20s\"\n{agent_extra}\n\n[agent.llm]\nurl = \"{}\"\nrequest_timeout = \"2s\"\nbreaker_cooldown = \"1h\"\n",
        fake.url()
    );
    let gw = with_tokens(TempGateway::builder().extra_toml(&toml))
        .start()
        .await;
    // The simulator's first readings are in the latest-value cache.
    assert_eventually!(
        gw.get_json("/api/v1/readings")
            .await
            .as_array()
            .is_some_and(|a| a.len() >= 18),
        "no readings yet:\n{}",
        gw.log()
    );
    gw
}

/// `POST /api/v1/ask` as `user`.
async fn ask(gw: &TempGateway, user: &str, text: &str) -> Value {
    ask_in(gw, user, text, None).await
}

async fn ask_in(gw: &TempGateway, user: &str, text: &str, session: Option<&str>) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/ask", gw.api_url()))
        .bearer_auth(token_of(user))
        .json(&json!({"text": text, "session": session}))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("ask request");
    assert!(resp.status().is_success(), "ask answered {}", resp.status());
    resp.json().await.expect("reply JSON")
}

fn tool_names(reply: &Value) -> Vec<String> {
    reply["tools"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The messages of a recorded chat request.
fn messages(req: &Value) -> Vec<Value> {
    req["messages"].as_array().cloned().unwrap_or_default()
}

fn tool_messages(req: &Value) -> Vec<String> {
    messages(req)
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn tool_call_then_grounded_answer() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    fake.push_all([
        Step::ToolCall {
            name: "current_readings".into(),
            args: json!({"room": "101", "kind": "temperature"}),
        },
        Step::Text("Room 101 is 21.3 °C (read at 10:00 UTC).".into()),
    ]);
    let reply = ask(&gw, "ivan", "What is the temperature in 101?").await;
    assert_eq!(reply["source"], "llm", "{reply}");
    assert_eq!(reply["text"], "Room 101 is 21.3 °C (read at 10:00 UTC).");
    assert_eq!(tool_names(&reply), ["current_readings"]);

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "one tool round, one answer");
    // Every tool Koboldcpp can take: typed properties, descriptions, never "required".
    let tools = reqs[0]["tools"].as_array().expect("tools sent");
    assert!(tools.len() >= 8);
    for t in tools {
        assert!(
            t["function"]["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        let props = t["function"]["parameters"]["properties"]
            .as_object()
            .expect("properties");
        for (name, p) in props {
            assert!(p["type"].is_string(), "{name} has no type");
        }
    }
    assert_ne!(reqs[0]["tool_choice"], "required");
    // The system prompt comes first; the tool result carries the sensor, value, unit and time.
    assert_eq!(messages(&reqs[1])[0]["role"], "system");
    let results = tool_messages(&reqs[1]);
    assert_eq!(results.len(), 1);
    let result: Value = serde_json::from_str(&results[0]).expect("tool result is JSON");
    let first = &result["readings"][0];
    assert_eq!(first["sensor"], "f1.r101.temperature");
    assert!(first["value"].is_number(), "{result}");
    assert_eq!(first["unit"], "°C");
    assert!(first["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    // The assistant's call is in the history the model sees, with string arguments.
    let call = messages(&reqs[1])
        .into_iter()
        .find(|m| m["role"] == "assistant")
        .expect("assistant tool call");
    assert!(call["tool_calls"][0]["function"]["arguments"].is_string());
}

#[tokio::test]
async fn malformed_arguments_get_one_correction_then_no_tools() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    // One malformed call, corrected, then a good one.
    fake.push_all([
        Step::MalformedArgs {
            name: "current_readings".into(),
            raw: "{room: 101".into(),
        },
        Step::ToolCall {
            name: "current_readings".into(),
            args: json!({"room": "101"}),
        },
        Step::Text("It is warm in 101.".into()),
    ]);
    let reply = ask(&gw, "ivan", "how warm is 101").await;
    assert_eq!(reply["source"], "llm", "{reply}");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    let correction = tool_messages(&reqs[1]);
    assert!(
        correction[0].contains("not a JSON object"),
        "{correction:?}"
    );

    // Two malformed calls: the third request carries no tools at all.
    let before = fake.chat_count();
    fake.push_all([
        Step::MalformedArgs {
            name: "alarms".into(),
            raw: "state=open".into(),
        },
        Step::MalformedArgs {
            name: "alarms".into(),
            raw: "{{{".into(),
        },
        Step::Text("I could not look the alarms up.".into()),
    ]);
    let reply = ask(&gw, "ivan", "any alarms?").await;
    assert_eq!(reply["source"], "llm", "{reply}");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), before + 3);
    assert!(reqs[before]["tools"].is_array());
    assert!(reqs[before + 1]["tools"].is_array());
    assert!(
        reqs[before + 2].get("tools").is_none_or(Value::is_null),
        "tools still offered after two malformed calls"
    );
}

#[tokio::test]
async fn a_tool_call_printed_as_text_is_run() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    fake.push_all([
        Step::ToolCallAsText(
            "Sure! <tool_call>{\"name\": \"alarms\", \"arguments\": {\"state\": \"open\"}}</tool_call>"
                .into(),
        ),
        Step::Text("One alarm is open: RoomTooWarm.".into()),
    ]);
    let reply = ask(&gw, "ivan", "any alarms?").await;
    assert_eq!(reply["source"], "llm", "{reply}");
    assert_eq!(tool_names(&reply), ["alarms"]);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert!(tool_messages(&reqs[1])[0].contains("RoomTooWarm"));
}

#[tokio::test]
async fn busy_server_is_retried() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    fake.push_all([
        Step::Busy,
        Step::Busy,
        Step::Text("The building is fine.".into()),
    ]);
    let reply = ask(&gw, "ivan", "how is the building").await;
    assert_eq!(reply["source"], "llm", "{reply}");
    assert_eq!(reply["text"], "The building is fine.");
}

#[tokio::test]
async fn empty_answers_are_asked_again_then_answered_locally() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    fake.push_all([Step::Empty, Step::Text("All quiet.".into())]);
    let reply = ask(&gw, "ivan", "how is the building").await;
    assert_eq!(reply["source"], "llm", "{reply}");
    assert_eq!(reply["text"], "All quiet.");

    fake.push_all([Step::Empty, Step::Empty, Step::Empty]);
    let reply = ask(&gw, "ivan", "any alarms?").await;
    assert_eq!(reply["source"], "offline", "{reply}");
    assert!(
        reply["text"]
            .as_str()
            .unwrap_or_default()
            .contains("RoomTooWarm"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_hung_server_gives_a_local_answer() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    fake.push(Step::Hang(Duration::from_secs(30)));
    let started = Instant::now();
    let reply = ask(&gw, "ivan", "any leaks?").await;
    // request_timeout is 2 s: well before the turn's 20 s.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(reply["source"], "offline", "{reply}");
    assert!(
        reply["text"]
            .as_str()
            .unwrap_or_default()
            .contains("local data"),
        "{reply}"
    );
}

#[tokio::test]
async fn server_down_gives_local_answers_within_a_second() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    // The alarm the second question is about is open before it is asked.
    assert_eventually!(
        open_alarm_id(&gw, "RoomTooWarm").await.is_some(),
        "the alarm was never raised:\n{}",
        gw.log()
    );
    fake.stop().await;
    for (question, expect) in [
        ("what is the temperature in 101?", "°C"),
        ("any alarms?", "RoomTooWarm"),
        ("Какая температура в 102?", "Ассистент недоступен"),
    ] {
        let started = Instant::now();
        let reply = ask(&gw, "ivan", question).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "{question}: {took:?}");
        assert_eq!(reply["source"], "offline", "{reply}");
        let text = reply["text"].as_str().unwrap_or_default();
        assert!(text.contains(expect), "{question}: {text}");
    }
    // Through the CLI too.
    let token_file = gw.dir().join("ivan.token");
    std::fs::write(&token_file, token_of("ivan")).expect("write the token file");
    let out = run_markoff(&[
        "ask",
        "any",
        "leaks?",
        "--token-file",
        &token_file.display().to_string(),
        "--api",
        gw.api_url(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("offline"), "{text}");
    assert!(
        text.contains("basement") || text.contains("Basement"),
        "{text}"
    );
}

#[tokio::test]
async fn commands_never_need_the_llm() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    for cmd in [
        "/status",
        "/alarms",
        "/sensor boiler",
        "/plan 1",
        "/history f1.r101.temperature 1h",
        "/help",
    ] {
        let reply = ask(&gw, "ivan", cmd).await;
        assert_eq!(reply["source"], "command", "{cmd}: {reply}");
        assert!(
            !reply["text"].as_str().unwrap_or_default().is_empty(),
            "{cmd}"
        );
    }
    assert_eq!(fake.chat_count(), 0, "a command reached the LLM");
    let plan = ask(&gw, "ivan", "/plan 1").await;
    assert_eq!(plan["attachments"][0]["kind"], "floor_plan", "{plan}");
    let sensor = ask(&gw, "ivan", "/sensor boiler supply").await;
    assert!(
        sensor["text"].as_str().unwrap_or_default().contains("°C"),
        "{sensor}"
    );
}

#[tokio::test]
async fn conversations_are_remembered_until_reset() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    fake.push(Step::Text("Room 101 is 21 °C.".into()));
    ask_in(&gw, "ivan", "temperature in 101?", Some("chat-1")).await;
    fake.push(Step::Text("Room 102 is 22 °C.".into()));
    ask_in(&gw, "ivan", "and in 102?", Some("chat-1")).await;
    let reqs = fake.requests();
    let second: Vec<String> = messages(&reqs[1])
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        second.contains(&"temperature in 101?".to_owned()),
        "{second:?}"
    );
    assert!(
        second.contains(&"Room 101 is 21 °C.".to_owned()),
        "{second:?}"
    );

    // Another chat does not see it.
    fake.push(Step::Text("ok".into()));
    ask_in(&gw, "ivan", "hello", Some("chat-2")).await;
    assert_eq!(
        messages(&fake.requests()[2]).len(),
        2,
        "system + question only"
    );

    let reset = ask_in(&gw, "ivan", "/reset", Some("chat-1")).await;
    assert_eq!(reset["source"], "command");
    fake.push(Step::Text("ok".into()));
    ask_in(&gw, "ivan", "and now?", Some("chat-1")).await;
    assert_eq!(
        messages(&fake.requests()[3]).len(),
        2,
        "history survived /reset"
    );
}

#[tokio::test]
async fn history_is_cut_to_the_token_budget_and_the_system_prompt_kept() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "history_tokens = 100000").await;
    let filler = "word ".repeat(400);
    for i in 0..6 {
        fake.push(Step::Text(format!("answer {i}: {filler}")));
        ask_in(
            &gw,
            "ivan",
            &format!("question {i}: {filler}"),
            Some("long"),
        )
        .await;
    }
    // The fake's context is 8192 tokens: twelve messages of 400+ words cannot all fit.
    let last = fake.requests().pop().expect("requests");
    let msgs = messages(&last);
    assert_eq!(msgs[0]["role"], "system");
    assert!(
        msgs[0]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("Rules")
    );
    assert!(msgs.len() < 12, "history not cut: {} messages", msgs.len());
    assert!(
        msgs.len() >= 4,
        "history dropped entirely: {} messages",
        msgs.len()
    );
    assert_eq!(msgs[1]["role"], "user", "history starts with a question");
    assert!(msgs.last().is_some_and(|m| {
        m["content"]
            .as_str()
            .unwrap_or_default()
            .starts_with("question 5")
    }));
}

#[tokio::test]
async fn russian_questions_get_russian_prompts_and_answers() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    fake.push(Step::Text("Котёл в норме.".into()));
    let reply = ask(&gw, "ivan", "что с котлом?").await;
    assert_eq!(reply["lang"], "ru");
    let system = messages(&fake.requests()[0])[0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(system.contains("по-русски"), "{system}");
    // A Russian-speaking viewer's command is answered in Russian.
    let status = ask(&gw, "olga", "/status").await;
    assert!(
        status["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Датчики"),
        "{status}"
    );
}

#[tokio::test]
async fn acknowledgement_needs_a_confirmation_outside_the_llm() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    assert_eventually!(
        open_alarm_id(&gw, "RoomTooWarm").await.is_some(),
        "alarm never raised:\n{}",
        gw.log()
    );
    let alarm_id = open_alarm_id(&gw, "RoomTooWarm").await.expect("alarm id");
    // A viewer: the tool refuses and the model is told why.
    fake.push_all([
        Step::ToolCall {
            name: "acknowledge_alarm".into(),
            args: json!({"alarm_id": alarm_id}),
        },
        Step::Text("You may not acknowledge alarms.".into()),
    ]);
    let reply = ask(&gw, "olga", "acknowledge the alarm").await;
    assert!(
        reply["confirmations"].as_array().is_some_and(Vec::is_empty),
        "{reply}"
    );
    let refused = tool_messages(&fake.requests()[1]);
    assert!(refused[0].contains("may not acknowledge"), "{refused:?}");

    // An operator: a confirmation, and the alarm is not acknowledged until it is confirmed.
    fake.push_all([
        Step::ToolCall {
            name: "acknowledge_alarm".into(),
            args: json!({"alarm_id": alarm_id.to_string()}),
        },
        Step::Text("Please confirm.".into()),
    ]);
    let reply = ask(&gw, "ivan", "acknowledge the alarm").await;
    let token = reply["confirmations"][0]["token"]
        .as_str()
        .expect("confirmation token")
        .to_owned();
    assert_eq!(reply["confirmations"][0]["alarm_id"], alarm_id);
    let state = |list: Value| {
        list.as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == alarm_id).cloned())
            .map(|a| a["state"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        state(gw.get_json("/api/v1/alarms?all=true").await).as_deref(),
        Some("active_unacked")
    );
    let client = reqwest::Client::new();
    let confirm = |user: &'static str, token: String| {
        let client = client.clone();
        let url = format!("{}/api/v1/ask/confirm", gw.api_url());
        async move {
            client
                .post(url)
                .bearer_auth(token_of(user))
                .json(&json!({"token": token}))
                .send()
                .await
                .expect("confirm request")
                .status()
                .as_u16()
        }
    };
    // Someone else cannot use the token; a wrong token is refused.
    assert_eq!(confirm("olga", token.clone()).await, 409);
    assert_eq!(confirm("ivan", "0000".into()).await, 409);
    assert_eq!(confirm("ivan", token.clone()).await, 200);
    assert_eq!(
        state(gw.get_json("/api/v1/alarms?all=true").await).as_deref(),
        Some("active_acked")
    );
    // A token works once.
    assert_eq!(confirm("ivan", token).await, 409);
}

#[tokio::test]
async fn answers_on_stale_data_say_so() {
    let fake = FakeKobold::start().await;
    let mut gw = gateway(&fake, "stale_after = \"1s\"").await;
    // Stop the simulator: the readings age past stale_after.
    let agent = format!(
        "{ROOM_TOO_WARM}\n{USERS}\n[agent]\nturn_timeout = \"20s\"\nstale_after = \"1s\"\n\n[agent.llm]\nurl = \"{}\"\nrequest_timeout = \"2s\"\n",
        fake.url()
    );
    let quiet = with_tokens(TempGateway::builder().no_simulator().extra_toml(&agent));
    gw.write_config_from(quiet);
    gw.sighup();
    assert_eventually!(
        gw.log().contains("Config reloaded."),
        "no reload:\n{}",
        gw.log()
    );
    assert_eventually!(
        {
            let overview = ask(&gw, "ivan", "/status").await;
            overview["text"]
                .as_str()
                .is_some_and(|t| t.contains("0 online"))
        },
        "readings never went stale:\n{}",
        gw.log()
    );
    // The model does not mention it; the answer gets a note.
    fake.push_all([
        Step::ToolCall {
            name: "current_readings".into(),
            args: json!({"room": "101", "kind": "temperature"}),
        },
        Step::Text("Room 101 is 21 °C.".into()),
    ]);
    let before = fake.chat_count();
    let reply = ask(&gw, "ivan", "temperature in 101?").await;
    let text = reply["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("Room 101 is 21 °C."), "{text}");
    assert!(
        text.contains("Stale data: f1.r101.temperature"),
        "no stale note: {text}"
    );
    let result: Value =
        serde_json::from_str(&tool_messages(&fake.requests()[before + 1])[0]).expect("JSON");
    assert_eq!(result["readings"][0]["stale"], true, "{result}");
    // Offline answers mark stale readings too.
    fake.stop().await;
    let reply = ask(&gw, "ivan", "temperature in 101?").await;
    assert_eq!(reply["source"], "offline");
    assert!(
        reply["text"].as_str().unwrap_or_default().contains("stale"),
        "{reply}"
    );
}

/// The last message of a recorded chat request.
fn last_message(req: &Value) -> Value {
    messages(req).pop().unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_prompt_is_cache_stable_and_the_loop_ends_cleanly() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    // A tool round, then an answer.
    fake.push_all([
        Step::ToolCall {
            name: "site_overview".into(),
            args: json!({}),
        },
        Step::Text("All fine.".into()),
    ]);
    ask(&gw, "ivan", "how is the building?").await;
    fake.push(Step::Text("ok".into()));
    ask(&gw, "ivan", "and now?").await;
    let reqs = fake.requests();
    // The system prompt and the tools are the same bytes for every question; the time is in
    // the question.
    assert_eq!(messages(&reqs[0])[0], messages(&reqs[2])[0]);
    assert_eq!(reqs[0]["tools"], reqs[2]["tools"]);
    let system = messages(&reqs[0])[0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!system.contains("Now:"), "{system}");
    let question = last_message(&reqs[2])["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        question.starts_with("and now?") && question.contains("(Now: "),
        "{question}"
    );
    // The assistant's tool-call message has "" content, never null (llama.cpp refuses null).
    let call = messages(&reqs[1])
        .into_iter()
        .find(|m| m["role"] == "assistant")
        .expect("assistant tool call");
    assert_eq!(call["content"], "", "{call}");

    // The same call twice: run once, then the model is told to answer from the results.
    let before = fake.chat_count();
    fake.push_all([
        Step::ToolCall {
            name: "alarms".into(),
            args: json!({"state": "open"}),
        },
        Step::ToolCall {
            name: "alarms".into(),
            args: json!({"state": "open"}),
        },
        Step::Text("One alarm is open: RoomTooWarm.".into()),
    ]);
    let reply = ask(&gw, "ivan", "any alarms?").await;
    assert_eq!(reply["source"], "llm", "{reply}");
    assert_eq!(tool_names(&reply), ["alarms"], "the repeat was run again");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), before + 3);
    let last = &reqs[before + 2];
    assert!(
        last.get("tools").is_none_or(Value::is_null),
        "tools still offered"
    );
    assert!(
        last_message(last)["content"]
            .as_str()
            .is_some_and(|t| t.starts_with("Answer my question now")),
        "{}",
        last_message(last)
    );

    // `functions.x: {..}` printed as text while tools are allowed: run.
    fake.push_all([
        Step::ToolCallAsText("functions.site_overview: {}".into()),
        Step::Text("Fine.".into()),
    ]);
    let reply = ask(&gw, "ivan", "status of the site?").await;
    assert_eq!(reply["source"], "llm", "{reply}");
    assert_eq!(tool_names(&reply), ["site_overview"]);
    assert_eq!(reply["text"], "Fine.");

    // Tool calls printed as text after tools are withdrawn: never shown to staff.
    fake.push_all([
        Step::ToolCall {
            name: "alarms".into(),
            args: json!({"state": "all"}),
        },
        Step::ToolCall {
            name: "alarms".into(),
            args: json!({"state": "all"}),
        },
        Step::ToolCallAsText("functions.current_readings: {\"room\": \"101\"}".into()),
        Step::ToolCallAsText("<tool_call>{\"name\": \"alarms\"}</tool_call>".into()),
    ]);
    let reply = ask(&gw, "ivan", "what alarms were there?").await;
    let text = reply["text"].as_str().unwrap_or_default();
    assert_eq!(reply["source"], "offline", "{reply}");
    assert!(
        !text.contains("functions.") && !text.contains("tool_call"),
        "{text}"
    );
    assert!(text.contains("local data"), "{text}");
}

#[tokio::test]
async fn a_prompt_the_server_finds_too_long_is_trimmed_and_sent_again() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "max_tool_rounds = 1").await;
    fake.push(Step::Text("Room 101 is 21 °C.".into()));
    ask_in(&gw, "ivan", "temperature in 101?", Some("s")).await;
    // llama.cpp's answer to a prompt over its context.
    fake.push_all([
        Step::Status(
            400,
            json!({"error": {"code": 400, "type": "exceed_context_size_error",
                "message": "the request exceeds the available context size, try increasing it"}})
            .to_string(),
        ),
        Step::Text("Room 102 is 22 °C.".into()),
    ]);
    let reply = ask_in(&gw, "ivan", "and in 102?", Some("s")).await;
    assert_eq!(reply["source"], "llm", "{reply}");
    assert_eq!(reply["text"], "Room 102 is 22 °C.");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(messages(&reqs[1]).len(), 4, "system, history, question");
    assert_eq!(messages(&reqs[2]).len(), 2, "the history was trimmed");
    assert_eq!(
        messages(&reqs[1])[0],
        messages(&reqs[2])[0],
        "the system prompt is kept"
    );

    // After the last tool round: tools withdrawn, and an explicit "answer now".
    fake.push_all([
        Step::ToolCall {
            name: "site_overview".into(),
            args: json!({}),
        },
        Step::Text("All fine.".into()),
    ]);
    let reply = ask(&gw, "ivan", "how is the building?").await;
    assert_eq!(reply["source"], "llm", "{reply}");
    let last = fake.requests().pop().expect("requests");
    assert!(last.get("tools").is_none_or(Value::is_null));
    assert!(
        last_message(&last)["content"]
            .as_str()
            .is_some_and(|t| t.starts_with("Answer my question now")),
        "{}",
        last_message(&last)
    );
}

/// The values of a property's `enum`.
fn enum_of(prop: &Value) -> Vec<String> {
    prop["enum"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_tools_list_the_sites_values_and_junk_arguments_get_examples() {
    let fake = FakeKobold::start().await;
    let gw = gateway(&fake, "").await;
    fake.push_all([
        Step::ToolCall {
            name: "current_readings".into(),
            args: json!({"room": "]["}),
        },
        Step::Text("Which room do you mean?".into()),
    ]);
    let reply = ask(&gw, "ivan", "how warm is it?").await;
    assert_eq!(reply["source"], "llm", "{reply}");
    let reqs = fake.requests();
    let tools = reqs[0]["tools"].as_array().expect("tools sent").clone();
    let params = |name: &str| {
        tools
            .iter()
            .find(|t| t["function"]["name"] == name)
            .map(|t| t["function"]["parameters"].clone())
            .unwrap_or(Value::Null)
    };
    // The simulated building: floors 1 and 2, rooms 101 to 202, 18 sensors.
    let readings = params("current_readings");
    let sensors = enum_of(&readings["properties"]["sensor"]);
    assert!(sensors.len() >= 18, "{sensors:?}");
    assert!(
        sensors.contains(&"f1.r101.temperature".to_owned()),
        "{sensors:?}"
    );
    let rooms = enum_of(&readings["properties"]["room"]);
    for room in ["101", "102", "201", "202"] {
        assert!(
            rooms.contains(&room.to_owned()),
            "{room} missing from {rooms:?}"
        );
    }
    let floors = enum_of(&params("floor_plan")["properties"]["floor"]);
    assert!(
        floors.contains(&"1".to_owned()) && floors.contains(&"2".to_owned()),
        "{floors:?}"
    );
    assert!(!floors.contains(&"9".to_owned()), "{floors:?}");
    let kinds = enum_of(&readings["properties"]["kind"]);
    assert!(kinds.contains(&"co2".to_owned()), "{kinds:?}");
    assert!(
        kinds
            .iter()
            .all(|k| markoff::agent::tools::KINDS.contains(&k.as_str())),
        "{kinds:?}"
    );
    assert_eq!(params("history")["required"], json!(["sensor"]));
    // The junk room came back to the model in plain words with the site's rooms.
    let refused = tool_messages(&reqs[1]);
    assert_eq!(refused.len(), 1, "{refused:?}");
    let text = &refused[0];
    assert!(text.contains("\"][\" is not a room"), "{text}");
    assert!(text.contains("rooms here: 101, 102"), "{text}");
    assert!(text.contains(r#"for example {"room":"101"}"#), "{text}");
    assert!(!text.contains("Some(") && !text.contains("Query"), "{text}");
    assert_eq!(reply["tools"][0]["ok"], false, "{reply}");
}
