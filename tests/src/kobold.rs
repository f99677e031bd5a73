//! A fake Koboldcpp server that speaks its real wire format (as of koboldcpp.py 1.102, see
//! `research/agent-anchors.md` §3) and plays scripted turns, for tests of the LLM client, the
//! agent loop and the evaluation runner without a GPU.
//!
//! Owns: a listener on `127.0.0.1:0` (same port again after [`FakeKobold::restart`]), one task
//! per connection (so [`Step::CloseConnection`] and [`FakeKobold::stop`] can cut connections),
//! the script, and the record of what clients sent. Does not own: any model; answers come
//! from the script, then from [`FakeKobold::respond_with`], then `Text("ok")`.
//!
//! ```no_run
//! # use markoff_tests::kobold::{FakeKobold, Step};
//! # async fn example() {
//! let kobold = FakeKobold::start().await;
//! kobold.push_all([
//!     Step::ToolCall { name: "list_alarms".into(), args: serde_json::json!({"state": "active"}) },
//!     Step::Text("No active alarms.".into()),
//! ]);
//! // point [agent.llm] url at kobold.url(), ask, then look at kobold.requests()
//! # }
//! ```
//!
//! What it imitates, endpoint by endpoint:
//! - `GET /api/extra/version`: Koboldcpp's capability JSON (`protected` when a password is set).
//! - `GET /v1/models` (and `/models`), `GET /api/extra/true_max_context_length`, `GET /props`
//!   (llama.cpp-style `default_generation_settings.n_ctx`).
//! - `POST /api/extra/tokencount`: `{"value": N, "ids": []}`, N = words + punctuation marks.
//! - `POST /tokenize` (llama.cpp server, with [`FakeOptions::tokenize`]): `{"tokens": [..]}`,
//!   as many as the tokencount above.
//! - `POST /api/extra/abort`: `{"genkey": ..}` recorded ([`FakeKobold::aborts`]); a
//!   [`Step::Hang`] of the request with that `genkey` ends at once, as Koboldcpp's generation
//!   stops.
//! - `POST /v1/chat/completions` (and `/chat/completions`): answers shaped as Koboldcpp makes
//!   them: `tool_calls` always present (`[]` on plain answers), `content: null` on calls,
//!   `arguments` as a JSON string, ids `call_NNNNN`. Like Koboldcpp, a tool without a
//!   description, without `parameters.properties`, or with an untyped property, and
//!   `tool_choice: "required"` with several tools, make it drop the connection with no answer.
//!   A body that is not JSON gets `500 bad_input`.
//! - `POST /api/extra/transcribe`: base64 audio in; `{"text": ..}` out, `""` when the audio is
//!   not WAV or speech-to-text is off (Koboldcpp fails with 200 and an empty text).
//! - `POST /api/extra/tts`: a small WAV, or an empty 200 body when TTS is off.
//! - With a password, POSTs without the right `Authorization: Bearer` get Koboldcpp's 401 JSON.
//! - Anything else: 404 `text/html` "Error: KoboldCpp HTTP Server is running, but this endpoint
//!   does not exist." (with [`FakeOptions::openai_only`], llama.cpp server's JSON 404 instead,
//!   and no `/api/extra/*` at all).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::fake_server::FakeListener;

/// One scripted answer to one chat completion request.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A structured tool call (`content: null`, `finish_reason: "tool_calls"`); `args` is sent
    /// as a JSON string, as Koboldcpp does.
    ToolCall {
        /// The tool.
        name: String,
        /// Its arguments.
        args: Value,
    },
    /// A plain answer (`tool_calls: []`, `finish_reason: "stop"`).
    Text(String),
    /// A tool call whose `arguments` string is `raw` as given (e.g. invalid JSON).
    MalformedArgs {
        /// The tool.
        name: String,
        /// The arguments text.
        raw: String,
    },
    /// A tool call the model printed as text: a plain answer with this content.
    ToolCallAsText(String),
    /// One `503` with Koboldcpp's busy JSON.
    Busy,
    /// Wait this long, then answer `Text("ok")` (unless the client gave up first).
    Hang(Duration),
    /// `content: ""` and no tool calls.
    Empty,
    /// This status with this body (`application/json` when it parses as JSON).
    Status(u16, String),
    /// Drop the connection without an answer (what Koboldcpp does on a `KeyError`).
    CloseConnection,
    /// `200` with exactly this JSON body (shapes of other servers, e.g. object `arguments`).
    Raw(Value),
}

/// How the fake presents itself.
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// `--password`: POSTs need `Authorization: Bearer <password>`; `protected: true`.
    pub password: Option<String>,
    /// Speech-to-text model loaded (`transcribe: true`); off: transcripts are empty.
    pub transcribe: bool,
    /// Text-to-speech model loaded (`tts: true`); off: empty audio bodies.
    pub tts: bool,
    /// `--contextsize`, reported by `/api/extra/true_max_context_length`.
    pub context: u32,
    /// `/api/extra/tokencount` exists (off: 404, as on a server without it).
    pub tokencount: bool,
    /// Behave as a plain OpenAI-compatible server (llama.cpp server): `/v1/*` only, JSON 404s.
    pub openai_only: bool,
    /// llama.cpp server's `POST /tokenize` exists.
    pub tokenize: bool,
    /// Model name (`koboldcpp/<model>` in answers).
    pub model: String,
    /// Version reported by `/api/extra/version`.
    pub version: String,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            password: None,
            transcribe: true,
            tts: true,
            context: 8192,
            tokencount: true,
            openai_only: false,
            tokenize: false,
            model: "fake-7b".to_owned(),
            version: "1.102".to_owned(),
        }
    }
}

type Responder = Arc<dyn Fn(&Value) -> Step + Send + Sync>;

struct Shared {
    opts: FakeOptions,
    script: Mutex<VecDeque<Step>>,
    responder: Mutex<Option<Responder>>,
    requests: Mutex<Vec<Value>>,
    seen: Mutex<Vec<(String, Option<String>)>>,
    transcript: Mutex<String>,
    transcribe_requests: Mutex<Vec<Vec<u8>>>,
    tts_requests: Mutex<Vec<String>>,
    aborts: Mutex<Vec<String>>,
    aborted: tokio::sync::Notify,
    next_id: AtomicU64,
}

/// The fake server. Stops listening when dropped.
pub struct FakeKobold {
    shared: Arc<Shared>,
    server: FakeListener,
}

impl fmt::Debug for FakeKobold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeKobold")
            .field("port", &self.server.port())
            .field("opts", &self.shared.opts)
            .finish_non_exhaustive()
    }
}

/// Cancelled to drop the connection a request came on.
#[derive(Clone)]
struct Connection(CancellationToken);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

impl FakeKobold {
    /// A fake with the default options (no password, speech on, 8192 context).
    ///
    /// # Panics
    /// No loopback port can be bound.
    pub async fn start() -> Self {
        Self::start_with(FakeOptions::default()).await
    }

    /// A fake with `opts`.
    ///
    /// # Panics
    /// No loopback port can be bound.
    pub async fn start_with(opts: FakeOptions) -> Self {
        let shared = Arc::new(Shared {
            opts,
            script: Mutex::new(VecDeque::new()),
            responder: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            transcript: Mutex::new("test transcript".to_owned()),
            transcribe_requests: Mutex::new(Vec::new()),
            tts_requests: Mutex::new(Vec::new()),
            aborts: Mutex::new(Vec::new()),
            aborted: tokio::sync::Notify::new(),
            next_id: AtomicU64::new(1),
        });
        let app = {
            let shared = shared.clone();
            Arc::new(move |conn: CancellationToken| {
                Router::new()
                    .fallback(handle)
                    .layer(DefaultBodyLimit::max(32 * 1024 * 1024))
                    .with_state(shared.clone())
                    .layer(Extension(Connection(conn)))
            })
        };
        let server = FakeListener::new(app).await;
        server.restart().await;
        Self { shared, server }
    }

    /// `http://127.0.0.1:<port>`, the value for `[agent.llm] url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Appends one step to the script (each chat request takes the next step).
    pub fn push(&self, step: Step) {
        lock(&self.shared.script).push_back(step);
    }

    /// Appends steps to the script.
    pub fn push_all(&self, steps: impl IntoIterator<Item = Step>) {
        lock(&self.shared.script).extend(steps);
    }

    /// Steps not yet played.
    pub fn pending(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// Answers chat requests with `f(request body)` while the script is empty (instead of
    /// `Text("ok")`).
    pub fn respond_with(&self, f: impl Fn(&Value) -> Step + Send + Sync + 'static) {
        *lock(&self.shared.responder) = Some(Arc::new(f));
    }

    /// Chat request bodies received, in order (every attempt, retries included).
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.shared.requests).clone()
    }

    /// Chat requests received.
    pub fn chat_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Every request as `"METHOD /path"`, in order.
    pub fn paths(&self) -> Vec<String> {
        lock(&self.shared.seen)
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// The `Authorization` header of every request, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        lock(&self.shared.seen)
            .iter()
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// The text the transcribe endpoint answers for WAV audio (default "test transcript").
    pub fn set_transcript(&self, text: &str) {
        *lock(&self.shared.transcript) = text.to_owned();
    }

    /// Audio received by the transcribe endpoint, base64-decoded.
    pub fn transcribe_requests(&self) -> Vec<Vec<u8>> {
        lock(&self.shared.transcribe_requests).clone()
    }

    /// The `genkey`s of `POST /api/extra/abort` requests, in order.
    pub fn aborts(&self) -> Vec<String> {
        lock(&self.shared.aborts).clone()
    }

    /// Texts received by the TTS endpoint.
    pub fn tts_requests(&self) -> Vec<String> {
        lock(&self.shared.tts_requests).clone()
    }

    /// Stops listening and drops every open connection: clients get "connection refused"
    /// until [`FakeKobold::restart`]. The script and the record are kept.
    pub async fn stop(&self) {
        self.server.stop().await;
    }

    /// Listens again on the same port.
    ///
    /// # Panics
    /// The port cannot be bound again within the patience (taken by another process).
    pub async fn restart(&self) {
        self.server.restart().await;
    }
}

async fn handle(
    State(s): State<Arc<Shared>>,
    Extension(conn): Extension<Connection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_owned();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    lock(&s.seen).push((format!("{method} {path}"), auth.clone()));
    let kobold = !s.opts.openai_only;
    let authorized = s
        .opts
        .password
        .as_deref()
        .is_none_or(|pw| auth.as_deref() == Some(format!("Bearer {pw}").as_str()));
    let is_post = method == Method::POST;
    if is_post && !authorized {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"detail": {"error": "Unauthorized",
                "msg": "Authentication key is missing or invalid.", "type": "unauthorized"}}),
        );
    }
    match (is_post, path.as_str()) {
        (false, "/api/extra/version") if kobold => version(&s),
        (false, "/v1/models" | "/models") => models(&s),
        (false, "/api/extra/true_max_context_length") if kobold => {
            json_response(StatusCode::OK, &json!({"value": s.opts.context}))
        }
        (false, "/props") => json_response(
            StatusCode::OK,
            &json!({"default_generation_settings": {"n_ctx": s.opts.context}, "total_slots": 1}),
        ),
        (true, "/api/extra/tokencount") if kobold && s.opts.tokencount => tokencount(&body),
        (true, "/tokenize") if s.opts.tokenize => tokenize(&body),
        (true, "/api/extra/abort") if kobold => abort(&s, &body),
        (true, "/v1/chat/completions" | "/chat/completions") => chat(&s, &conn, &body).await,
        (true, "/api/extra/transcribe") if kobold => transcribe(&s, &body),
        (true, "/api/extra/tts") if kobold => tts(&s, &body),
        _ => not_found(kobold),
    }
}

fn not_found(kobold: bool) -> Response {
    if kobold {
        (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html")],
            "Error: KoboldCpp HTTP Server is running, but this endpoint does not exist.",
        )
            .into_response()
    } else {
        json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}),
        )
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn bad_input() -> Response {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({"detail": {"msg": "Error parsing input.", "type": "bad_input"}}),
    )
}

fn version(s: &Shared) -> Response {
    let o = &s.opts;
    json_response(
        StatusCode::OK,
        &json!({"result": "KoboldCpp", "version": o.version, "protected": o.password.is_some(),
            "llm": true, "txt2img": false, "vision": false, "audio": false,
            "transcribe": o.transcribe, "multiplayer": false, "websearch": false, "tts": o.tts,
            "embeddings": false, "savedata": false, "admin": 0, "guidance": false, "jinja": false}),
    )
}

fn models(s: &Shared) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": [{"id": format!("koboldcpp/{}", s.opts.model),
            "object": "model", "created": 1_730_000_000, "owned_by": "koboldcpp",
            "permission": [], "root": "koboldcpp"}]}),
    )
}

/// The fake's tokenizer: whitespace-separated words plus punctuation marks. Deterministic, and
/// different from the client's chars/3 estimate, so tests can tell which was used.
pub fn fake_token_count(text: &str) -> u32 {
    let words = text.split_whitespace().count();
    let punctuation = text.chars().filter(char::is_ascii_punctuation).count();
    u32::try_from(words + punctuation).unwrap_or(u32::MAX)
}

fn tokencount(body: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return bad_input();
    };
    let prompt = v.get("prompt").and_then(Value::as_str).unwrap_or("");
    json_response(
        StatusCode::OK,
        &json!({"value": fake_token_count(prompt), "ids": []}),
    )
}

fn tokenize(body: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return bad_input();
    };
    let content = v.get("content").and_then(Value::as_str).unwrap_or("");
    let tokens: Vec<u32> = (0..fake_token_count(content)).collect();
    json_response(StatusCode::OK, &json!({"tokens": tokens}))
}

fn abort(s: &Shared, body: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return bad_input();
    };
    let key = v.get("genkey").and_then(Value::as_str).unwrap_or("");
    lock(&s.aborts).push(key.to_owned());
    s.aborted.notify_waiters();
    json_response(StatusCode::OK, &json!({"success": "true", "done": "true"}))
}

/// Why Koboldcpp would fail on these tools with a `KeyError` (no JSON answer).
fn kobold_rejects(request: &Value) -> bool {
    let Some(tools) = request.get("tools").and_then(Value::as_array) else {
        return false;
    };
    if request.get("tool_choice").and_then(Value::as_str) == Some("required") && tools.len() > 1 {
        return true;
    }
    tools.iter().any(|t| {
        let f = &t["function"];
        let described = f["description"].as_str().is_some_and(|d| !d.is_empty());
        let typed = f["parameters"]["properties"]
            .as_object()
            .is_some_and(|props| props.values().all(|p| p.get("type").is_some()));
        !(described && typed)
    })
}

async fn chat(s: &Shared, conn: &Connection, body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return bad_input();
    };
    lock(&s.requests).push(request.clone());
    if kobold_rejects(&request) {
        return close(conn).await;
    }
    let scripted = lock(&s.script).pop_front();
    let step = match scripted {
        Some(step) => step,
        None => {
            let responder = lock(&s.responder).clone();
            match responder {
                Some(f) => f(&request),
                None => Step::Text("ok".to_owned()),
            }
        }
    };
    match step {
        Step::ToolCall { name, args } => {
            completion(s, &request, None, Some((name, args.to_string())))
        }
        Step::MalformedArgs { name, raw } => completion(s, &request, None, Some((name, raw))),
        Step::Text(text) | Step::ToolCallAsText(text) => completion(s, &request, Some(text), None),
        Step::Empty => completion(s, &request, Some(String::new()), None),
        Step::Busy => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"detail": {"msg": "Server is busy; please try again later.",
                "type": "service_unavailable"}}),
        ),
        Step::Hang(d) => {
            let genkey = request.get("genkey").and_then(Value::as_str);
            let aborted = async {
                loop {
                    let woken = s.aborted.notified();
                    let mut woken = std::pin::pin!(woken);
                    woken.as_mut().enable();
                    if genkey.is_some_and(|k| lock(&s.aborts).iter().any(|a| a == k)) {
                        return;
                    }
                    woken.await;
                }
            };
            tokio::select! {
                () = tokio::time::sleep(d) => {}
                () = aborted => {}
            }
            completion(s, &request, Some("ok".to_owned()), None)
        }
        Step::Status(code, text) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = if serde_json::from_str::<Value>(&text).is_ok() {
                "application/json"
            } else {
                "text/plain"
            };
            (status, [(header::CONTENT_TYPE, kind)], text).into_response()
        }
        Step::CloseConnection => close(conn).await,
        Step::Raw(v) => json_response(StatusCode::OK, &v),
    }
}

/// Drops the connection the request came on; the response is never sent.
async fn close(conn: &Connection) -> Response {
    conn.0.cancel();
    std::future::pending::<Response>().await
}

fn completion(
    s: &Shared,
    request: &Value,
    content: Option<String>,
    call: Option<(String, String)>,
) -> Response {
    let n = s.next_id.fetch_add(1, Ordering::Relaxed);
    let prompt_tokens: u32 = request["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| 4 + fake_token_count(m["content"].as_str().unwrap_or("")))
                .sum()
        })
        .unwrap_or(0);
    let (message, finish, completion_tokens) = match call {
        Some((name, arguments)) => {
            let tokens = fake_token_count(&arguments);
            let id = format!("call_{:05}", 10_000 + (n * 7_919) % 90_000);
            (
                json!({"role": "assistant", "content": null, "tool_calls": [{"type": "function",
                    "function": {"name": name, "arguments": arguments}, "id": id}]}),
                "tool_calls",
                tokens,
            )
        }
        None => {
            let text = content.unwrap_or_default();
            let tokens = fake_token_count(&text);
            (
                json!({"role": "assistant", "content": text, "tool_calls": []}),
                "stop",
                tokens,
            )
        }
    };
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    json_response(
        StatusCode::OK,
        &json!({"id": format!("chatcmpl-{n}"), "object": "chat.completion", "created": created,
            "model": format!("koboldcpp/{}", s.opts.model),
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens},
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                "logprobs": null}]}),
    )
}

fn transcribe(s: &Shared, body: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return bad_input();
    };
    let data = v.get("audio_data").and_then(Value::as_str).unwrap_or("");
    let data = data.split_once("base64,").map_or(data, |(_, b64)| b64);
    let audio = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap_or_default();
    let is_wav = audio.len() >= 12 && &audio[..4] == b"RIFF" && &audio[8..12] == b"WAVE";
    lock(&s.transcribe_requests).push(audio);
    let text = if s.opts.transcribe && is_wav {
        lock(&s.transcript).clone()
    } else {
        String::new()
    };
    json_response(StatusCode::OK, &json!({"text": text}))
}

fn tts(s: &Shared, body: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return bad_input();
    };
    let input = v
        .get("input")
        .or_else(|| v.get("text"))
        .and_then(Value::as_str)
        .unwrap_or("");
    lock(&s.tts_requests).push(input.to_owned());
    if !s.opts.tts {
        return (StatusCode::OK, Body::empty()).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "audio/wav"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"output.wav\"",
            ),
        ],
        wav_tone(24_000, 0.1),
    )
        .into_response()
}

/// A mono 16-bit PCM WAV file with a 440 Hz tone of `seconds` at `rate`.
pub fn wav_tone(rate: u32, seconds: f32) -> Vec<u8> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let samples = (rate as f32 * seconds) as u32;
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let t = i as f32 / rate as f32;
        #[allow(clippy::cast_possible_truncation)]
        let v = ((t * 440.0 * std::f32::consts::TAU).sin() * 8_000.0) as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}
