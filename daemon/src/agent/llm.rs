//! The client of the LLM server: Koboldcpp on the site's GPU box, or any OpenAI-compatible
//! server (llama.cpp server, vLLM).
//!
//! Owns: the HTTP requests (chat completions with tools, the capability probe, token counts,
//! speech-to-text and text-to-speech), timeouts and the caller's deadline, retries of busy
//! answers, the circuit breaker, the Bearer key, and the client's metrics. Does not own: the
//! agent loop, prompts, tool execution or history trimming (see `crate::agent`), nor tool calls
//! a model printed as text (see [`crate::agent::toolcall`]).
//!
//! Every request checks the breaker first: while it is open, requests fail at once with
//! [`LlmError::CircuitOpen`], which is how answers from local data come within a second when
//! the server is down. Only failures that say the server cannot serve us (no connection,
//! timeout, busy, key refused) count towards opening it; an answer, even an unusable one,
//! closes it. `docs/koboldcpp.md` describes the behaviour for operators.
//!
//! Layout: `config` (`[agent.llm]`), `types` (messages, tool calls and specs, errors), `wire`
//! (JSON encoding and lenient decoding, pure), `transport` (HTTP, deadline, busy retries),
//! `breaker` (the state machine), `speech` (transcribe, tts), `metrics`.

mod breaker;
pub mod config;
mod metrics;
mod speech;
mod transport;
mod types;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use self::breaker::{Breaker, Change};
pub use self::config::LlmConfig;
pub use self::metrics::LlmMetrics;
use self::transport::{status_error, unbounded};
pub use self::types::{
    Capabilities, ChatMessage, ChatRequest, ChatResponse, LlmError, Role, ToolCall, ToolSpec,
    check_tool_spec,
};
use crate::config::secret::Secret;

/// Time allowed for each capability request of [`Llm::probe`].
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed for a token count (it does not wait for a generation).
const TOKENCOUNT_TIMEOUT: Duration = Duration::from_secs(5);
/// Context size when neither the config nor the server tells.
const DEFAULT_CONTEXT_TOKENS: u32 = 8192;
/// First wait after a busy answer (then doubling, jittered, capped).
const BUSY_BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Longest wait between busy retries.
const BUSY_BACKOFF_MAX: Duration = Duration::from_secs(4);

/// A conservative token estimate for text the server cannot count: one token per two
/// characters, rounded up. English prose runs about four characters a token, but JSON tool
/// results ran 2.13 with a small model's tokenizer and Russian runs fewer still; an estimate
/// under the truth makes the server refuse the prompt (or cut it), one over it only leaves
/// some context unused.
pub fn estimate_tokens(text: &str) -> u32 {
    u32::try_from(text.chars().count().div_ceil(2)).unwrap_or(u32::MAX)
}

/// Time allowed for an abort request (`/api/extra/abort`).
const ABORT_TIMEOUT: Duration = Duration::from_secs(2);
/// Token counts remembered (the system prompt and the tool list are counted once).
const COUNT_CACHE_MAX: usize = 256;

/// The LLM client. Cheap to clone (one shared HTTP client, breaker and capability cache).
#[derive(Clone)]
pub struct Llm {
    inner: Arc<Inner>,
}

struct Inner {
    /// Base URL without a trailing `/` or `/v1`.
    base: String,
    config: LlmConfig,
    /// The Bearer key; `Secret` never prints its value.
    key: Option<Secret>,
    http: reqwest::Client,
    breaker: Mutex<Breaker>,
    capabilities: Mutex<Option<Capabilities>>,
    /// When a request last probed the server because no probe had succeeded yet.
    last_probe: Mutex<Option<Instant>>,
    /// The server answered 404 to `/api/extra/tokencount`: estimate from now on.
    tokencount_missing: AtomicBool,
    /// The server answered 404 to llama.cpp's `/tokenize`: estimate from now on.
    tokenize_missing: AtomicBool,
    /// Exact token counts of texts already counted, by hash (byte-stable prompts repeat).
    counted: Mutex<std::collections::HashMap<u64, u32>>,
    metrics: Arc<LlmMetrics>,
}

impl fmt::Debug for Llm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Llm")
            .field("base", &self.inner.base)
            .field("model", &self.inner.config.model)
            .field("key", &self.inner.key.as_ref().map(|_| "[redacted]"))
            .field("breaker", &self.inner.breaker.lock().state())
            .finish_non_exhaustive()
    }
}

/// The raw answer to one HTTP request.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// A request let through by the breaker; gives a half-open trial back if dropped before its
/// outcome is recorded (the caller's future was cancelled).
struct Admission<'a> {
    inner: &'a Inner,
    settled: bool,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.inner.breaker.lock().abandon(Instant::now());
        }
    }
}

impl Llm {
    /// A client for `config` (which must have a `url`), with the Bearer `key` when the server
    /// has a password. Opens nothing yet.
    ///
    /// # Errors
    /// [`LlmError::NotConfigured`] without a URL; [`LlmError::Connect`] when the URL is not
    /// usable or the HTTP client cannot be built (validation catches both earlier).
    pub fn new(
        config: &LlmConfig,
        key: Option<Secret>,
        metrics: Arc<LlmMetrics>,
    ) -> Result<Self, LlmError> {
        let url = config.url.as_deref().ok_or(LlmError::NotConfigured)?;
        let base = config::base_url(url).map_err(LlmError::Connect)?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            // A new connection per request: a server restarted between two requests then
            // shows as refused (or fine), never as a half-answered request on a stale
            // keep-alive connection. On a LAN the handshake costs nothing next to a generation.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("markoff/", env!("CARGO_PKG_VERSION")))
            // The GPU box is on the site's LAN: never send its traffic (and the key) to a
            // proxy named in the environment.
            .no_proxy()
            .build()
            .map_err(|e| LlmError::Connect(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                config: config.clone(),
                key,
                http,
                breaker: Mutex::new(Breaker::new(
                    config.breaker_failures,
                    config.breaker_cooldown,
                )),
                capabilities: Mutex::new(None),
                last_probe: Mutex::new(None),
                tokencount_missing: AtomicBool::new(false),
                tokenize_missing: AtomicBool::new(false),
                counted: Mutex::new(std::collections::HashMap::new()),
                metrics,
            }),
        })
    }

    /// The base URL requests go to (no key in it), for logs and the status page.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The configuration the client was built from.
    pub fn config(&self) -> &LlmConfig {
        &self.inner.config
    }

    /// Asks the server what it is and can do, and caches the answer: `GET /api/extra/version`
    /// (Koboldcpp; then `GET /api/extra/true_max_context_length` unless `context_tokens` is
    /// configured), else `GET /v1/models` (llama.cpp server, vLLM; then `GET /props` for
    /// llama.cpp's context unless configured or in the model list). Each request has 2 s.
    /// Probing does not wait for the breaker, but its outcome counts like any request's.
    ///
    /// # Errors
    /// The server is unreachable, refuses the key, or neither endpoint answers sensibly.
    pub async fn probe(&self) -> Result<Capabilities, LlmError> {
        self.probe_settled(true).await
    }

    /// [`Llm::probe`]; a failure counts against the server only when `count_failure` (the probe
    /// before a request leaves that to the request, so a server that is down counts once per
    /// question, not twice).
    async fn probe_settled(&self, count_failure: bool) -> Result<Capabilities, LlmError> {
        let started = Instant::now();
        let result = self.probe_inner().await;
        if count_failure || result.is_ok() {
            self.settle("probe", started, &result, true);
        }
        if let Ok(caps) = &result {
            if caps.protected && self.inner.key.is_none() {
                warn!(
                    url = %self.inner.base,
                    "The LLM server has a password but [agent.llm] names no api_key; its requests will be refused."
                );
            }
            debug!(server = %caps.server, version = ?caps.version, context = caps.context_tokens, "LLM server probed.");
            *self.inner.capabilities.lock() = Some(caps.clone());
        }
        result
    }

    async fn probe_inner(&self) -> Result<Capabilities, LlmError> {
        let configured_ctx = self.inner.config.context_tokens;
        let version = self
            .get(
                "/api/extra/version",
                unbounded(PROBE_TIMEOUT),
                PROBE_TIMEOUT,
            )
            .await?;
        if version.status == 401 || version.status == 403 {
            return Err(LlmError::Unauthorized);
        }
        if let Some(info) = (version.status == 200)
            .then(|| wire::parse_version(&version.body))
            .flatten()
        {
            let context_tokens = match configured_ctx {
                Some(c) => c,
                None => match self
                    .get(
                        "/api/extra/true_max_context_length",
                        unbounded(PROBE_TIMEOUT),
                        PROBE_TIMEOUT,
                    )
                    .await
                {
                    Ok(a) if a.status == 200 => wire::parse_value(&a.body),
                    _ => None,
                }
                .filter(|c| *c > 0)
                .unwrap_or(DEFAULT_CONTEXT_TOKENS),
            };
            return Ok(Capabilities {
                server: info.server,
                version: info.version,
                transcribe: info.transcribe,
                tts: info.tts,
                protected: info.protected,
                context_tokens,
                tokencount: !self.inner.tokencount_missing.load(Ordering::Relaxed),
            });
        }
        let models = self
            .get("/v1/models", unbounded(PROBE_TIMEOUT), PROBE_TIMEOUT)
            .await?;
        if models.status != 200 {
            return Err(status_error(&models));
        }
        let served_ctx = wire::parse_models(&models.body).ok_or_else(|| {
            LlmError::BadResponse(format!(
                "neither /api/extra/version nor /v1/models answered as expected: {}",
                wire::snippet(&models.body)
            ))
        })?;
        let context_tokens = match configured_ctx.or(served_ctx) {
            Some(c) => c,
            // llama.cpp server tells the context of a slot in /props.
            None => match self
                .get("/props", unbounded(PROBE_TIMEOUT), PROBE_TIMEOUT)
                .await
            {
                Ok(a) if a.status == 200 => wire::parse_props(&a.body),
                _ => None,
            }
            .unwrap_or(DEFAULT_CONTEXT_TOKENS),
        };
        Ok(Capabilities {
            server: "openai-compatible".to_owned(),
            version: None,
            transcribe: false,
            tts: false,
            protected: false,
            context_tokens,
            // llama.cpp's `/tokenize`, until the server answers 404 to it.
            tokencount: !self.inner.tokenize_missing.load(Ordering::Relaxed),
        })
    }

    /// Probes the server when no probe has succeeded yet: the server was down or still loading
    /// its model when the gateway started (a GPU box that boots after the gateway). Which server
    /// it is decides the token-count endpoint (Koboldcpp's `/api/extra/tokencount` or llama.cpp's
    /// `/tokenize`), the abort of a request given up on and the context size; without a probe
    /// the client would take a llama.cpp server for Koboldcpp for as long as it runs. At most
    /// once per `breaker_cooldown` (how soon a server found down is worth trying again), and
    /// not while the breaker is open.
    async fn ensure_probed(&self) {
        if self.capabilities().is_some() || self.breaker_open() {
            return;
        }
        {
            let now = Instant::now();
            let mut last = self.inner.last_probe.lock();
            let interval = self.inner.config.breaker_cooldown;
            if last.is_some_and(|t| now.saturating_duration_since(t) < interval) {
                return;
            }
            *last = Some(now);
        }
        if let Err(e) = self.probe_settled(false).await {
            debug!(error = %e, "LLM server probe failed; asking anyway.");
        }
    }

    /// The result of the last successful [`Llm::probe`].
    pub fn capabilities(&self) -> Option<Capabilities> {
        self.inner.capabilities.lock().clone()
    }

    /// The context size to budget for: configured, else probed, else 8192.
    pub fn context_tokens(&self) -> u32 {
        self.inner
            .config
            .context_tokens
            .or_else(|| self.capabilities().map(|c| c.context_tokens))
            .unwrap_or(DEFAULT_CONTEXT_TOKENS)
    }

    /// Is the circuit breaker refusing requests now (open within its cooldown, or a trial in
    /// flight)? After the cooldown this is false again, so the next caller makes the trial.
    pub fn breaker_open(&self) -> bool {
        self.inner.breaker.lock().is_open(Instant::now())
    }

    /// One chat completion: `POST /v1/chat/completions` with the conversation and, when
    /// `req.tools` is not empty, the tools with `tool_choice: "auto"`. Busy answers (503, 429)
    /// are retried up to `busy_retries` times with backoff, never past `deadline`; each HTTP
    /// request has `request_timeout` (or what is left before `deadline`).
    ///
    /// A server no probe has identified yet is probed first (see `ensure_probed`).
    ///
    /// On Koboldcpp the request carries a `genkey` of its own, and a request given up on
    /// (timeout, deadline) is aborted on the server (`POST /api/extra/abort` with that key), so
    /// the next question does not queue behind a generation nobody waits for. Other servers
    /// (llama.cpp) stop a generation when its connection closes.
    ///
    /// # Errors
    /// See [`LlmError`]; [`LlmError::is_unreachable`] tells which ones mean "answer without
    /// the LLM".
    pub async fn chat(
        &self,
        req: &ChatRequest<'_>,
        deadline: Instant,
    ) -> Result<ChatResponse, LlmError> {
        // Within the caller's deadline: a probe cut short is only tried again later.
        if tokio::time::timeout_at(deadline, self.ensure_probed())
            .await
            .is_err()
        {
            debug!("The deadline came during the LLM server probe.");
        }
        let started = Instant::now();
        let mut admission = self.admit("chat")?;
        let cfg = &self.inner.config;
        let mut body = wire::chat_body(
            wire::Sampling {
                model: &cfg.model,
                temperature: cfg.temperature,
                max_tokens: cfg.max_answer_tokens,
            },
            req,
        );
        let genkey = self
            .is_koboldcpp()
            .then(|| format!("KCPP{:08X}", rand::random::<u32>()));
        if let Some(key) = &genkey {
            body["genkey"] = json!(key);
        }
        let result = self
            .post_with_retries("/v1/chat/completions", &body, deadline)
            .await
            .and_then(|bytes| wire::parse_chat(&bytes).map_err(LlmError::BadResponse));
        if let (Some(key), Err(LlmError::Timeout | LlmError::Cancelled)) = (genkey, &result)
            && started < deadline
        {
            self.abort(key);
        }
        if let Ok(r) = &result {
            let m = &self.inner.metrics;
            m.prompt_tokens
                .inc_by(u64::from(r.prompt_tokens.unwrap_or(0)));
            m.completion_tokens
                .inc_by(u64::from(r.completion_tokens.unwrap_or(0)));
        }
        self.settle("chat", started, &result, started < deadline);
        admission.settled = true;
        result
    }

    /// Whether the server is Koboldcpp (probed; assumed until a probe says otherwise).
    fn is_koboldcpp(&self) -> bool {
        self.capabilities()
            .is_none_or(|c| c.server.eq_ignore_ascii_case("koboldcpp"))
    }

    /// Asks Koboldcpp to stop the generation of `genkey`, in the background; the outcome is
    /// only counted (`endpoint="abort"`), never held against the server.
    fn abort(&self, genkey: String) {
        let llm = self.clone();
        tokio::spawn(async move {
            let body = json!({"genkey": genkey});
            let outcome = match llm
                .post(
                    "/api/extra/abort",
                    &body,
                    unbounded(ABORT_TIMEOUT),
                    ABORT_TIMEOUT,
                )
                .await
            {
                Ok(a) if (200..300).contains(&a.status) => "ok",
                Ok(a) => status_error(&a).kind(),
                Err(e) => e.kind(),
            };
            debug!(
                genkey,
                outcome, "Asked the LLM server to abort a generation."
            );
            llm.inner.metrics.count("abort", outcome);
        });
    }

    /// Tokens in `text` as the server's tokenizer counts them: Koboldcpp's
    /// `POST /api/extra/tokencount` (special tokens included), or llama.cpp server's
    /// `POST /tokenize` on a server probed as OpenAI-compatible (a server no probe has
    /// identified yet is probed first). Counts are remembered, so the
    /// byte-stable system prompt and tool list are counted once. Never fails: on a server
    /// without the endpoint (remembered after its first 404), while the breaker is open, or on
    /// any error, it returns [`estimate_tokens`].
    pub async fn count_tokens(&self, text: &str) -> u32 {
        let estimate = estimate_tokens(text);
        if !text.is_empty() {
            self.ensure_probed().await;
        }
        let kobold = self.is_koboldcpp();
        let missing = if kobold {
            &self.inner.tokencount_missing
        } else {
            &self.inner.tokenize_missing
        };
        if missing.load(Ordering::Relaxed) || text.is_empty() {
            self.inner.metrics.token_estimates.inc();
            return estimate;
        }
        let hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            text.hash(&mut h);
            h.finish()
        };
        if let Some(n) = self.inner.counted.lock().get(&hash) {
            return *n;
        }
        let Ok(mut admission) = self.admit("tokencount") else {
            self.inner.metrics.token_estimates.inc();
            return estimate;
        };
        let started = Instant::now();
        let timeout = TOKENCOUNT_TIMEOUT.min(self.inner.config.request_timeout);
        let (path, body) = if kobold {
            (
                "/api/extra/tokencount",
                json!({"prompt": text, "special": true}),
            )
        } else {
            ("/tokenize", json!({"content": text, "add_special": true}))
        };
        let result = match self.post(path, &body, unbounded(timeout), timeout).await {
            Ok(a) if a.status == 200 => if kobold {
                wire::parse_value(&a.body)
            } else {
                wire::parse_tokens(&a.body)
            }
            .ok_or_else(|| {
                LlmError::BadResponse(format!("{path} answered {}", wire::snippet(&a.body)))
            }),
            Ok(a) => Err(status_error(&a)),
            Err(e) => Err(e),
        };
        if let Err(LlmError::Http {
            status: 404 | 405 | 501,
            ..
        }) = &result
        {
            info!(url = %self.inner.base, path, "The LLM server cannot count tokens; estimating from now on.");
            missing.store(true, Ordering::Relaxed);
        }
        self.settle("tokencount", started, &result, true);
        admission.settled = true;
        match result {
            Ok(n) => {
                let mut counted = self.inner.counted.lock();
                if counted.len() >= COUNT_CACHE_MAX {
                    counted.clear();
                }
                counted.insert(hash, n);
                n
            }
            Err(_) => {
                self.inner.metrics.token_estimates.inc();
                estimate
            }
        }
    }

    /// Lets a request through the breaker, or refuses it with [`LlmError::CircuitOpen`].
    fn admit(&self, endpoint: &str) -> Result<Admission<'_>, LlmError> {
        let admitted = self.inner.breaker.lock().admit(Instant::now());
        match admitted {
            Ok(()) => Ok(Admission {
                inner: &self.inner,
                settled: false,
            }),
            Err(retry_in) => {
                self.inner.metrics.count(endpoint, "circuit_open");
                Err(LlmError::CircuitOpen { retry_in })
            }
        }
    }

    /// Records a finished request: metrics, and the breaker (`attempted`: a request went out,
    /// so a [`LlmError::Cancelled`] means the server was too slow for the deadline).
    fn settle<T>(
        &self,
        endpoint: &str,
        started: Instant,
        result: &Result<T, LlmError>,
        attempted: bool,
    ) {
        let m = &self.inner.metrics;
        let now = Instant::now();
        let change = {
            let mut breaker = self.inner.breaker.lock();
            match result {
                Ok(_) => breaker.success(),
                Err(e) if e.counts_against_server() => breaker.failure(now),
                Err(LlmError::Cancelled) if attempted => breaker.failure(now),
                Err(LlmError::Cancelled) => {
                    breaker.abandon(now);
                    Change::None
                }
                // The server answered, even if not usefully.
                Err(_) => breaker.success(),
            }
        };
        match result {
            Ok(_) => {
                m.count(endpoint, "ok");
                m.observe(endpoint, (now - started).as_secs_f64());
            }
            Err(e) => {
                m.count(endpoint, e.kind());
                debug!(endpoint, error = %e, "LLM request failed.");
            }
        }
        match change {
            Change::Opened => {
                m.breaker_trips.inc();
                m.breaker_open.set(1);
                let error = result.as_ref().err().map(ToString::to_string);
                warn!(
                    url = %self.inner.base,
                    cooldown = ?self.inner.config.breaker_cooldown,
                    error = error.as_deref().unwrap_or(""),
                    "LLM server unreachable; circuit open, answering from local data."
                );
            }
            Change::Closed => {
                m.breaker_open.set(0);
                info!(url = %self.inner.base, "LLM server reachable again; circuit closed.");
            }
            Change::None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Llm {
        let cfg = LlmConfig {
            url: Some(url.to_owned()),
            ..LlmConfig::default()
        };
        Llm::new(
            &cfg,
            Some(Secret::new("hunter2")),
            Arc::new(LlmMetrics::default()),
        )
        .unwrap()
    }

    #[test]
    fn debug_never_shows_the_key() {
        let llm = client("http://gpu-box:5001/v1");
        let text = format!("{llm:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("http://gpu-box:5001"), "{text}");
        assert_eq!(llm.base_url(), "http://gpu-box:5001");
    }

    #[test]
    fn no_url_is_not_configured() {
        let err =
            Llm::new(&LlmConfig::default(), None, Arc::new(LlmMetrics::default())).unwrap_err();
        assert_eq!(err, LlmError::NotConfigured);
    }

    #[test]
    fn estimates_round_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 2);
        assert_eq!(estimate_tokens("что с котлом?"), 7);
        // JSON tool results: at least one token per two characters.
        assert_eq!(estimate_tokens(r#"{"age_s":12}"#), 6);
    }

    #[tokio::test]
    async fn connection_refused_is_connect_and_opens_the_breaker() {
        // Bind and drop to get a port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let llm = client(&format!("http://127.0.0.1:{port}"));
        let messages = [ChatMessage::user("hi")];
        let req = ChatRequest {
            messages: &messages,
            tools: &[],
            max_tokens: None,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for _ in 0..3 {
            let err = llm.chat(&req, deadline).await.unwrap_err();
            assert!(matches!(err, LlmError::Connect(_)), "{err}");
        }
        assert!(llm.breaker_open());
        let err = llm.chat(&req, deadline).await.unwrap_err();
        assert!(matches!(err, LlmError::CircuitOpen { .. }), "{err}");
        // Token counts still answer, with an estimate.
        assert_eq!(llm.count_tokens("abcdef").await, 3);
    }
}
