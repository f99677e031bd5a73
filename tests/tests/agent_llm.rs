//! The LLM client (`markoff::agent::llm`) against the fake Koboldcpp: capabilities, auth, the
//! wire shapes of answers, busy retries, timeouts, the circuit breaker, token counts and speech.
//! Every test has its own fake on a port of its own, so they run in parallel.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use markoff::agent::llm::{
    ChatMessage, ChatRequest, Llm, LlmConfig, LlmError, LlmMetrics, ToolSpec, check_tool_spec,
    estimate_tokens,
};
use markoff::agent::toolcall::{extract_text_tool_calls, parse_arguments};
use markoff::config::Secret;
use markoff_tests::assert_eventually;
use markoff_tests::kobold::{FakeKobold, FakeOptions, Step, fake_token_count, wav_tone};
use serde_json::{Value, json};
use tokio::time::Instant;

fn config(url: &str) -> LlmConfig {
    LlmConfig {
        url: Some(url.to_owned()),
        request_timeout: Duration::from_secs(10),
        ..LlmConfig::default()
    }
}

fn client(kobold: &FakeKobold) -> Llm {
    client_with(config(&kobold.url()), None)
}

fn client_with(cfg: LlmConfig, key: Option<&str>) -> Llm {
    Llm::new(&cfg, key.map(Secret::new), Arc::new(LlmMetrics::default())).unwrap()
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "list_alarms".into(),
            description: "List building alarms".into(),
            parameters: json!({"type": "object", "properties": {
                "state": {"type": "string", "enum": ["active", "acknowledged", "all"]}
            }, "required": ["state"]}),
        },
        ToolSpec {
            name: "get_site_overview".into(),
            description: "Sensors online, active alarms, sync state".into(),
            parameters: json!({"type": "object", "properties": {}}),
        },
    ]
}

async fn ask(llm: &Llm, text: &str) -> Result<markoff::agent::llm::ChatResponse, LlmError> {
    let messages = [
        ChatMessage::system("You are the building assistant."),
        ChatMessage::user(text),
    ];
    let tools = tools();
    llm.chat(
        &ChatRequest {
            messages: &messages,
            tools: &tools,
            max_tokens: None,
        },
        deadline(),
    )
    .await
}

#[tokio::test]
async fn probe_reads_koboldcpp_capabilities() {
    let kobold = FakeKobold::start_with(FakeOptions {
        password: Some("s3cret".into()),
        tts: false,
        context: 4096,
        ..FakeOptions::default()
    })
    .await;
    let llm = client_with(config(&kobold.url()), Some("s3cret"));
    assert_eq!(llm.capabilities(), None);
    let caps = llm.probe().await.unwrap();
    assert_eq!(caps.server, "KoboldCpp");
    assert_eq!(caps.version.as_deref(), Some("1.102"));
    assert!(caps.protected);
    assert!(caps.transcribe);
    assert!(!caps.tts);
    assert_eq!(caps.context_tokens, 4096);
    assert!(caps.tokencount);
    assert_eq!(llm.capabilities(), Some(caps));
    assert_eq!(llm.context_tokens(), 4096);
    assert_eq!(
        kobold.paths(),
        [
            "GET /api/extra/version",
            "GET /api/extra/true_max_context_length"
        ]
    );
}

#[tokio::test]
async fn probe_falls_back_to_v1_models_on_other_servers() {
    let server = FakeKobold::start_with(FakeOptions {
        openai_only: true,
        context: 6144,
        ..FakeOptions::default()
    })
    .await;
    let llm = client(&server);
    let caps = llm.probe().await.unwrap();
    assert_eq!(caps.server, "openai-compatible");
    assert_eq!(caps.version, None);
    assert!(!caps.transcribe && !caps.tts);
    assert!(caps.tokencount, "llama.cpp's /tokenize is tried");
    assert_eq!(caps.context_tokens, 6144, "from llama.cpp's /props");
    // Koboldcpp's tokencount is not tried after such a probe; llama.cpp's /tokenize is, once:
    // this server has none, so the estimate is used.
    for _ in 0..2 {
        assert_eq!(
            llm.count_tokens("Hello, world!").await,
            estimate_tokens("Hello, world!")
        );
    }
    assert_eq!(
        server.paths(),
        [
            "GET /api/extra/version",
            "GET /v1/models",
            "GET /props",
            "POST /tokenize"
        ]
    );
    // Chat works the same against it.
    assert_eq!(
        ask(&llm, "hi").await.unwrap().content.as_deref(),
        Some("ok")
    );
}

#[tokio::test]
async fn configured_context_wins_over_the_server() {
    let kobold = FakeKobold::start().await;
    let llm = client_with(
        LlmConfig {
            context_tokens: Some(2048),
            ..config(&kobold.url())
        },
        None,
    );
    assert_eq!(llm.probe().await.unwrap().context_tokens, 2048);
    assert_eq!(kobold.paths(), ["GET /api/extra/version"]);
}

#[tokio::test]
async fn bearer_key_is_sent_and_a_refused_key_is_unauthorized() {
    let kobold = FakeKobold::start_with(FakeOptions {
        password: Some("s3cret".into()),
        ..FakeOptions::default()
    })
    .await;
    let good = client_with(config(&kobold.url()), Some("s3cret"));
    assert!(ask(&good, "hi").await.is_ok());
    assert_eq!(
        kobold.authorizations().last().cloned().flatten().as_deref(),
        Some("Bearer s3cret")
    );

    let missing = client(&kobold);
    let err = ask(&missing, "hi").await.unwrap_err();
    assert_eq!(err, LlmError::Unauthorized);
    assert!(
        err.is_unreachable(),
        "a refused key means answering without the LLM"
    );
    let wrong = client_with(config(&kobold.url()), Some("guess"));
    assert_eq!(ask(&wrong, "hi").await.unwrap_err(), LlmError::Unauthorized);
    assert_eq!(
        wrong
            .transcribe(&wav_tone(16_000, 0.1), None, None)
            .await
            .unwrap_err(),
        LlmError::Unauthorized
    );
    assert!(!format!("{good:?}").contains("s3cret"));
}

#[tokio::test]
async fn tool_call_answer_parses_as_koboldcpp_sends_it() {
    let kobold = FakeKobold::start().await;
    kobold.push(Step::ToolCall {
        name: "list_alarms".into(),
        args: json!({"state": "active"}),
    });
    let r = ask(&client(&kobold), "Any active alarms?").await.unwrap();
    assert_eq!(r.content, None);
    assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(r.tool_calls.len(), 1);
    let call = &r.tool_calls[0];
    assert_eq!(call.name, "list_alarms");
    assert!(
        call.id.len() == 10
            && call.id.starts_with("call_")
            && call.id[5..].bytes().all(|b| b.is_ascii_digit()),
        "{}",
        call.id
    );
    assert_eq!(parse_arguments(&call.arguments).unwrap()["state"], "active");
    assert!(r.prompt_tokens.is_some_and(|n| n > 0));
    // The call goes back into the history as the assistant message that made it.
    let m = r.to_message();
    assert_eq!(m.tool_calls, r.tool_calls);
}

#[tokio::test]
async fn plain_answer_has_empty_tool_calls() {
    let kobold = FakeKobold::start().await;
    kobold.push(Step::Text("No active alarms.".into()));
    let r = ask(&client(&kobold), "Any active alarms?").await.unwrap();
    assert_eq!(r.content.as_deref(), Some("No active alarms."));
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        r.completion_tokens,
        Some(fake_token_count("No active alarms."))
    );
}

#[tokio::test]
async fn object_arguments_from_other_servers_are_accepted() {
    let kobold = FakeKobold::start().await;
    kobold.push(Step::Raw(
        json!({"choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "tool_calls": [{"id": "abc", "type": "function",
            "function": {"name": "list_alarms", "arguments": {"state": "all"}}}]}}]}),
    ));
    let r = ask(&client(&kobold), "alarms?").await.unwrap();
    assert_eq!(r.content, None, "absent content is None");
    assert_eq!(r.tool_calls[0].id, "abc");
    assert_eq!(
        parse_arguments(&r.tool_calls[0].arguments).unwrap()["state"],
        "all"
    );
}

#[tokio::test]
async fn malformed_arguments_empty_answers_and_text_calls_reach_the_agent() {
    let kobold = FakeKobold::start().await;
    kobold.push_all([
        Step::MalformedArgs {
            name: "list_alarms".into(),
            raw: "{\"state\": \"act".into(),
        },
        Step::Empty,
        Step::ToolCallAsText(
            "<tool_call>{\"name\": \"list_alarms\", \"arguments\": {\"state\": \"active\"}}</tool_call>"
                .into(),
        ),
    ]);
    let llm = client(&kobold);
    let malformed = ask(&llm, "alarms?").await.unwrap();
    assert!(parse_arguments(&malformed.tool_calls[0].arguments).is_err());
    assert!(ask(&llm, "alarms?").await.unwrap().is_empty());
    let printed = ask(&llm, "alarms?").await.unwrap();
    assert!(printed.tool_calls.is_empty());
    let found = extract_text_tool_calls(printed.content.as_deref().unwrap(), &["list_alarms"]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "call_text_1");
}

#[tokio::test]
async fn busy_twice_then_success_is_retried() {
    let kobold = FakeKobold::start().await;
    kobold.push_all([Step::Busy, Step::Busy, Step::Text("done".into())]);
    let r = ask(&client(&kobold), "hi").await.unwrap();
    assert_eq!(r.content.as_deref(), Some("done"));
    assert_eq!(kobold.chat_count(), 3);
}

#[tokio::test]
async fn busy_beyond_the_retries_is_busy() {
    let kobold = FakeKobold::start().await;
    kobold.push_all([
        Step::Busy,
        Step::Busy,
        Step::Busy,
        Step::Text("late".into()),
    ]);
    let llm = client_with(
        LlmConfig {
            busy_retries: 2,
            ..config(&kobold.url())
        },
        None,
    );
    assert_eq!(ask(&llm, "hi").await.unwrap_err(), LlmError::Busy);
    assert_eq!(kobold.chat_count(), 3, "one request and two retries");
    assert_eq!(kobold.pending(), 1);
}

#[tokio::test]
async fn busy_retries_stop_at_the_deadline() {
    let kobold = FakeKobold::start().await;
    kobold.push_all([Step::Busy, Step::Busy, Step::Busy, Step::Busy]);
    let llm = client_with(
        LlmConfig {
            busy_retries: 20,
            ..config(&kobold.url())
        },
        None,
    );
    let messages = [ChatMessage::user("hi")];
    let started = Instant::now();
    let err = llm
        .chat(
            &ChatRequest {
                messages: &messages,
                tools: &[],
                max_tokens: None,
            },
            started + Duration::from_millis(400),
        )
        .await
        .unwrap_err();
    assert_eq!(err, LlmError::Busy);
    // Never sleeps past the deadline (20 retries would take about a minute).
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_hang_past_the_request_timeout_is_a_timeout() {
    let kobold = FakeKobold::start().await;
    kobold.push(Step::Hang(Duration::from_secs(60)));
    let llm = client_with(
        LlmConfig {
            request_timeout: Duration::from_millis(300),
            ..config(&kobold.url())
        },
        None,
    );
    let started = Instant::now();
    assert_eq!(ask(&llm, "hi").await.unwrap_err(), LlmError::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_hang_past_the_deadline_is_cancelled() {
    let kobold = FakeKobold::start().await;
    kobold.push(Step::Hang(Duration::from_secs(60)));
    let llm = client(&kobold);
    let messages = [ChatMessage::user("hi")];
    let req = ChatRequest {
        messages: &messages,
        tools: &[],
        max_tokens: None,
    };
    let started = Instant::now();
    let err = llm
        .chat(&req, started + Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err, LlmError::Cancelled);
    assert!(err.is_unreachable());
    assert!(started.elapsed() < Duration::from_secs(5));
    // A deadline already past sends nothing.
    let before = kobold.chat_count();
    assert_eq!(
        llm.chat(&req, Instant::now()).await.unwrap_err(),
        LlmError::Cancelled
    );
    assert_eq!(kobold.chat_count(), before);
}

#[tokio::test]
async fn server_down_opens_the_breaker_and_a_restart_closes_it() {
    let kobold = FakeKobold::start().await;
    let llm = client_with(
        LlmConfig {
            breaker_failures: 3,
            breaker_cooldown: Duration::from_millis(500),
            ..config(&kobold.url())
        },
        None,
    );
    assert!(ask(&llm, "hi").await.is_ok());
    kobold.stop().await;
    for _ in 0..3 {
        let err = ask(&llm, "hi").await.unwrap_err();
        assert!(matches!(err, LlmError::Connect(_)), "{err}");
        assert!(err.is_unreachable());
    }
    assert!(llm.breaker_open());
    let started = Instant::now();
    let err = ask(&llm, "hi").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, LlmError::CircuitOpen { .. }), "{err}");
    assert!(err.is_unreachable());

    kobold.restart().await;
    kobold.push(Step::Text("back".into()));
    let mut answer;
    assert_eventually!(
        {
            answer = ask(&llm, "hi").await;
            answer.is_ok()
        },
        "the breaker never let a trial through"
    );
    assert_eq!(answer.unwrap().content.as_deref(), Some("back"));
    assert!(!llm.breaker_open());
}

#[tokio::test]
async fn unusable_answers_do_not_open_the_breaker() {
    let kobold = FakeKobold::start().await;
    kobold.push_all([
        Step::Status(
            500,
            json!({"detail": {"msg": "Error parsing input.", "type": "bad_input"}}).to_string(),
        ),
        Step::Raw(json!({"choices": []})),
        Step::CloseConnection,
        Step::Status(200, "<html>".into()),
    ]);
    let llm = client_with(
        LlmConfig {
            breaker_failures: 1,
            ..config(&kobold.url())
        },
        None,
    );
    let http = ask(&llm, "hi").await.unwrap_err();
    assert_eq!(
        http,
        LlmError::Http {
            status: 500,
            body: "Error parsing input. (bad_input)".into()
        }
    );
    assert!(!http.is_unreachable());
    for _ in 0..3 {
        let err = ask(&llm, "hi").await.unwrap_err();
        assert!(matches!(err, LlmError::BadResponse(_)), "{err}");
        assert!(!llm.breaker_open(), "{err}");
    }
}

#[tokio::test]
async fn tools_are_sent_with_auto_choice_and_complete_specs() {
    let kobold = FakeKobold::start().await;
    let tools = tools();
    for t in &tools {
        assert_eq!(check_tool_spec(t), Vec::<String>::new());
    }
    ask(&client(&kobold), "hi").await.unwrap();
    let request = &kobold.requests()[0];
    assert_eq!(request["tool_choice"], "auto");
    assert_eq!(request["model"], "koboldcpp");
    assert_eq!(request["max_tokens"], 512);
    let sent = request["tools"].as_array().unwrap();
    assert_eq!(sent.len(), 2);
    for t in sent {
        assert_eq!(t["type"], "function");
        let f = &t["function"];
        assert!(!f["description"].as_str().unwrap().is_empty());
        let props = f["parameters"]["properties"].as_object().unwrap();
        assert!(props.values().all(|p| p.get("type").is_some()));
    }
    assert_eq!(request["messages"][0]["role"], "system");
}

#[tokio::test]
async fn a_spec_koboldcpp_cannot_read_is_a_bad_response() {
    let kobold = FakeKobold::start().await;
    let llm = client(&kobold);
    let bad = [ToolSpec {
        name: "broken".into(),
        description: String::new(),
        parameters: json!({"type": "object"}),
    }];
    assert_eq!(check_tool_spec(&bad[0]).len(), 2);
    let messages = [ChatMessage::user("hi")];
    let err = llm
        .chat(
            &ChatRequest {
                messages: &messages,
                tools: &bad,
                max_tokens: None,
            },
            deadline(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::BadResponse(_)), "{err}");
}

#[tokio::test]
async fn no_tools_sends_no_tools_key() {
    let kobold = FakeKobold::start().await;
    let messages = [ChatMessage::user("hi")];
    client(&kobold)
        .chat(
            &ChatRequest {
                messages: &messages,
                tools: &[],
                max_tokens: Some(64),
            },
            deadline(),
        )
        .await
        .unwrap();
    let request = &kobold.requests()[0];
    assert!(request.get("tools").is_none() && request.get("tool_choice").is_none());
    assert_eq!(request["max_tokens"], 64);
}

#[tokio::test]
async fn responder_answers_when_the_script_is_empty() {
    let kobold = FakeKobold::start().await;
    kobold.respond_with(|request: &Value| {
        let question = request["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or("");
        if question.contains("alarm") {
            Step::ToolCall {
                name: "list_alarms".into(),
                args: json!({"state": "active"}),
            }
        } else {
            Step::Text(format!("echo: {question}"))
        }
    });
    let llm = client(&kobold);
    assert_eq!(
        ask(&llm, "any alarm?").await.unwrap().tool_calls[0].name,
        "list_alarms"
    );
    assert_eq!(
        ask(&llm, "hello").await.unwrap().content.as_deref(),
        Some("echo: hello")
    );
}

#[tokio::test]
async fn count_tokens_uses_the_endpoint() {
    let kobold = FakeKobold::start().await;
    let llm = client(&kobold);
    let text = "What is the temperature in room 301?";
    assert_eq!(llm.count_tokens(text).await, fake_token_count(text));
    assert_ne!(fake_token_count(text), estimate_tokens(text));
    // Never probed: the first request probes, then counts.
    assert_eq!(
        kobold.paths(),
        [
            "GET /api/extra/version",
            "GET /api/extra/true_max_context_length",
            "POST /api/extra/tokencount"
        ]
    );
}

#[tokio::test]
async fn a_llama_cpp_server_down_at_startup_is_probed_when_it_is_back() {
    let server = FakeKobold::start_with(FakeOptions {
        openai_only: true,
        tokenize: true,
        context: 6144,
        ..FakeOptions::default()
    })
    .await;
    let llm = client_with(
        LlmConfig {
            breaker_cooldown: Duration::from_millis(300),
            ..config(&server.url())
        },
        None,
    );
    // The GPU box boots after the gateway: the startup probe finds nobody.
    server.stop().await;
    assert!(llm.probe().await.is_err());
    let text = r#"{"sensor":"f3.r301.temperature","value":21.5,"age_s":40}"#;
    assert_eq!(llm.count_tokens(text).await, estimate_tokens(text));
    server.restart().await;
    // Once it answers, it is known for a llama.cpp server: its /tokenize counts, its context
    // is the one of /props, and no Koboldcpp genkey goes with a chat request.
    assert_eventually!(
        llm.count_tokens(text).await == fake_token_count(text),
        "never counted by /tokenize: {:?}",
        server.paths()
    );
    assert_eq!(llm.context_tokens(), 6144);
    assert_eq!(
        ask(&llm, "hi").await.unwrap().content.as_deref(),
        Some("ok")
    );
    assert!(server.requests()[0].get("genkey").is_none());
}

#[tokio::test]
async fn count_tokens_uses_llama_cpp_tokenize_and_remembers_counts() {
    let server = FakeKobold::start_with(FakeOptions {
        openai_only: true,
        tokenize: true,
        ..FakeOptions::default()
    })
    .await;
    let llm = client(&server);
    llm.probe().await.unwrap();
    let text = r#"{"sensor":"f3.r301.temperature","value":21.5,"age_s":40}"#;
    assert_eq!(llm.count_tokens(text).await, fake_token_count(text));
    // The same text again (the byte-stable system prompt): counted once.
    assert_eq!(llm.count_tokens(text).await, fake_token_count(text));
    let tokenized = server
        .paths()
        .iter()
        .filter(|p| *p == "POST /tokenize")
        .count();
    assert_eq!(tokenized, 1, "{:?}", server.paths());
}

#[tokio::test]
async fn a_request_given_up_on_is_aborted_on_koboldcpp_with_its_genkey() {
    let kobold = FakeKobold::start().await;
    let llm = client_with(
        LlmConfig {
            request_timeout: Duration::from_millis(500),
            ..config(&kobold.url())
        },
        None,
    );
    llm.probe().await.unwrap();
    kobold.push(Step::Hang(Duration::from_secs(60)));
    assert_eq!(ask(&llm, "hi").await.unwrap_err(), LlmError::Timeout);
    let sent = kobold.requests();
    let genkey = sent[0]["genkey"].as_str().expect("a genkey").to_owned();
    assert!(genkey.starts_with("KCPP"), "{genkey}");
    assert_eventually!(
        kobold.aborts() == [genkey.clone()],
        "no abort with {genkey}: {:?}",
        kobold.paths()
    );
    // Each request has its own key.
    assert_eq!(
        ask(&llm, "again").await.unwrap().content.as_deref(),
        Some("ok")
    );
    assert_ne!(kobold.requests()[1]["genkey"], genkey.as_str());
    assert_eq!(
        kobold.aborts().len(),
        1,
        "an answered request is not aborted"
    );

    // llama.cpp's server stops when the connection closes: no genkey, no abort.
    let server = FakeKobold::start_with(FakeOptions {
        openai_only: true,
        ..FakeOptions::default()
    })
    .await;
    let llm = client_with(
        LlmConfig {
            request_timeout: Duration::from_millis(500),
            ..config(&server.url())
        },
        None,
    );
    llm.probe().await.unwrap();
    server.push(Step::Hang(Duration::from_secs(60)));
    assert_eq!(ask(&llm, "hi").await.unwrap_err(), LlmError::Timeout);
    assert!(server.requests()[0].get("genkey").is_none());
    assert!(
        !server.paths().iter().any(|p| p.contains("abort")),
        "{:?}",
        server.paths()
    );
}

#[tokio::test]
async fn count_tokens_falls_back_on_a_server_without_it() {
    let kobold = FakeKobold::start_with(FakeOptions {
        tokencount: false,
        ..FakeOptions::default()
    })
    .await;
    let llm = client(&kobold);
    let text = "What is the temperature in room 301?";
    assert_eq!(llm.count_tokens(text).await, estimate_tokens(text));
    assert_eq!(llm.count_tokens(text).await, estimate_tokens(text));
    assert_eq!(
        kobold.paths(),
        [
            "GET /api/extra/version",
            "GET /api/extra/true_max_context_length",
            "POST /api/extra/tokencount"
        ],
        "the missing endpoint is asked once"
    );
    assert!(!llm.breaker_open());
}

#[tokio::test]
async fn transcribe_sends_wav_and_returns_the_text() {
    let kobold = FakeKobold::start().await;
    kobold.set_transcript("что с котлом?");
    let wav = wav_tone(16_000, 0.25);
    let text = client(&kobold)
        .transcribe(&wav, Some("ru"), Some("котёл, ИТП"))
        .await
        .unwrap();
    assert_eq!(text, "что с котлом?");
    assert_eq!(kobold.transcribe_requests(), [wav]);
}

#[tokio::test]
async fn an_empty_transcript_is_an_error() {
    let kobold = FakeKobold::start_with(FakeOptions {
        transcribe: false,
        ..FakeOptions::default()
    })
    .await;
    let llm = client(&kobold);
    let err = llm
        .transcribe(&wav_tone(16_000, 0.1), None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::BadResponse(m) if m.contains("empty transcript")),
        "{err}"
    );
    // OGG/Opus is refused before sending: Koboldcpp cannot decode it.
    let ogg = b"OggS\0\x02\0\0\0\0\0\0\0\0OpusHead".to_vec();
    assert!(matches!(
        llm.transcribe(&ogg, None, None).await,
        Err(LlmError::BadResponse(_))
    ));
    assert_eq!(kobold.transcribe_requests().len(), 1);
}

#[tokio::test]
async fn tts_returns_wav() {
    let kobold = FakeKobold::start().await;
    let wav = client(&kobold)
        .tts("Two active alarms on floor 3.", "kobo")
        .await
        .unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(&wav[8..12], b"WAVE");
    assert_eq!(kobold.tts_requests(), ["Two active alarms on floor 3."]);
}

#[tokio::test]
async fn empty_tts_audio_is_an_error() {
    let kobold = FakeKobold::start_with(FakeOptions {
        tts: false,
        ..FakeOptions::default()
    })
    .await;
    let err = client(&kobold).tts("hello", "kobo").await.unwrap_err();
    assert!(
        matches!(&err, LlmError::BadResponse(m) if m.contains("empty audio")),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_paths_get_koboldcpps_404() {
    let kobold = FakeKobold::start().await;
    let resp = reqwest::get(format!("{}/api/extra/nope", kobold.url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        "Error: KoboldCpp HTTP Server is running, but this endpoint does not exist."
    );
}
