//! Running the evaluation: a gateway on the simulated building wired to the server under test,
//! the questions through `POST /api/v1/ask`, scoring and the report.
//!
//! Owns: the gateway's configuration for the evaluation, the preflight check of the server,
//! scoring by the matching rule of [`super`], and the printed and JSON report.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use markoff::agent::{Reply, Source};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::{Case, EVAL_TOKEN, EVAL_USER, describe_call, describe_expect};
use crate::gateway::{TempGateway, metric_in, toml_str};

/// What to run the evaluation against.
#[derive(Clone, Debug)]
pub struct Options {
    /// Base URL of the OpenAI-compatible server; `None` scores the keyword router (no LLM).
    pub llm_url: Option<String>,
    /// Name of an environment variable holding the server's key, and its value.
    pub key: Option<(String, String)>,
    /// Model name sent with each request (`[agent.llm] model`; default `koboldcpp`).
    pub model: Option<String>,
    /// Time for one question (`[agent] turn_timeout`, 1 s to 10 min).
    pub turn_timeout: Duration,
    /// The questions.
    pub cases: Vec<Case>,
}

/// The result of one question.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Case id.
    pub id: String,
    /// Language of the question.
    pub lang: String,
    /// Expected calls (as in the docs).
    pub expected: String,
    /// The first recorded call, `(no tool)`, or `(offline)` details.
    pub got: String,
    /// Whether it passed the matching rule.
    pub ok: bool,
    /// `llm`, `command` or `offline`.
    pub source: String,
    /// The model did not answer: the keyword router did (never set when scoring the router).
    pub fell_back: bool,
    /// Malformed model outputs during the question (`markoff_agent_malformed_total` delta).
    pub malformed: u64,
    /// Time from sending the question to the answer (milliseconds in JSON).
    #[serde(rename = "latency_ms", serialize_with = "millis")]
    pub latency: Duration,
    /// Prompt tokens the server reported for the question's requests, every round included
    /// (`markoff_llm_prompt_tokens_total` delta; 0 when the server reports no usage).
    pub prompt_tokens: u64,
    /// Generated tokens the server reported (`markoff_llm_completion_tokens_total` delta).
    pub completion_tokens: u64,
    /// Chat requests the question took (`markoff_llm_requests_total{endpoint="chat"}` delta).
    pub llm_requests: u64,
    /// Token counts the server's tokenizer made for the question (Koboldcpp's
    /// `/api/extra/tokencount`, llama.cpp's `/tokenize`: `markoff_llm_requests_total{
    /// endpoint="tokencount",outcome="ok"}` delta). Texts counted before are not asked again.
    pub server_token_counts: u64,
    /// Token counts estimated by the gateway instead (`markoff_llm_token_estimates_total`
    /// delta): the server has no tokenizer endpoint, or it failed.
    pub token_estimates: u64,
    /// The answer's text.
    pub answer: String,
}

/// Every outcome, with the summary figures.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// What was evaluated (`http://...`, or `keyword router`).
    pub target: String,
    /// Per question, in case order.
    pub outcomes: Vec<Outcome>,
    /// The daemon's log, to explain offline answers.
    #[serde(skip)]
    pub log: String,
}

impl Report {
    /// Passed questions.
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.ok).count()
    }

    /// Tool-selection accuracy in percent (0 without questions).
    pub fn accuracy(&self) -> f64 {
        percent(self.passed(), self.outcomes.len())
    }

    /// Answers that fell back to the keyword router instead of the model.
    pub fn offline(&self) -> usize {
        self.outcomes.iter().filter(|o| o.fell_back).count()
    }

    /// Latency at quantile `q` (0..=1), nearest rank.
    pub fn latency(&self, q: f64) -> Duration {
        let mut all: Vec<Duration> = self.outcomes.iter().map(|o| o.latency).collect();
        all.sort();
        nearest_rank(&all, q)
    }

    /// Per-question token figures at quantile `q` (nearest rank): prompt and generated tokens.
    pub fn tokens(&self, q: f64) -> (u64, u64) {
        let quantile = |f: fn(&Outcome) -> u64| {
            let mut all: Vec<u64> = self
                .outcomes
                .iter()
                .filter(|o| o.llm_requests > 0)
                .map(f)
                .collect();
            all.sort_unstable();
            if all.is_empty() {
                return 0;
            }
            let n = all.len();
            let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as usize;
            all[rank.clamp(1, n) - 1]
        };
        (
            quantile(|o| o.prompt_tokens),
            quantile(|o| o.completion_tokens),
        )
    }

    /// The summary lines printed after the table.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let n = self.outcomes.len();
        let by_lang = |lang: &str| {
            let of: Vec<&Outcome> = self.outcomes.iter().filter(|o| o.lang == lang).collect();
            format!(
                "{} {}/{}",
                lang,
                of.iter().filter(|o| o.ok).count(),
                of.len()
            )
        };
        writeln!(
            s,
            "tool-selection accuracy: {}/{n} = {:.1} % ({}, {})",
            self.passed(),
            self.accuracy(),
            by_lang("en"),
            by_lang("ru")
        )
        .ok();
        writeln!(
            s,
            "answers that fell back to offline: {}/{n}",
            self.offline()
        )
        .ok();
        let malformed: u64 = self.outcomes.iter().map(|o| o.malformed).sum();
        writeln!(s, "malformed model outputs: {malformed}").ok();
        let requests: u64 = self.outcomes.iter().map(|o| o.llm_requests).sum();
        if let Some(per_request) = self
            .outcomes
            .iter()
            .map(|o| o.prompt_tokens)
            .sum::<u64>()
            .checked_div(requests)
        {
            let (p50, c50) = self.tokens(0.5);
            let (p95, c95) = self.tokens(0.95);
            writeln!(
                s,
                "tokens per answer: prompt p50 {p50}, p95 {p95}; generated p50 {c50}, p95 {c95}; \
                 {requests} chat requests, {per_request} prompt tokens per request on average"
            )
            .ok();
        }
        let counted: u64 = self.outcomes.iter().map(|o| o.server_token_counts).sum();
        let estimated: u64 = self.outcomes.iter().map(|o| o.token_estimates).sum();
        if counted + estimated > 0 {
            writeln!(
                s,
                "token counts: {counted} by the server's tokenizer, {estimated} estimated"
            )
            .ok();
        }
        writeln!(
            s,
            "latency: p50 {} ms, p95 {} ms, max {} ms",
            self.latency(0.5).as_millis(),
            self.latency(0.95).as_millis(),
            self.latency(1.0).as_millis()
        )
        .ok();
        s
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(d.as_millis())
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        // Counts of questions are small: exact in f64.
        100.0 * part as f64 / whole as f64
    }
}

/// The nearest-rank quantile of sorted `values` (zero when empty).
pub fn nearest_rank(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let n = sorted.len();
    // ceil(q * n) as a 1-based rank, within 1..=n.
    let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// One outcome as printed while the evaluation runs (two or three lines).
pub fn format_outcome(i: usize, o: &Outcome) -> String {
    let verdict = if o.ok { "ok  " } else { "FAIL" };
    let mut s = format!(
        "{:>3} {verdict} {:>7} ms  {:<5} {}  [{}{}{}]\n      expected: {}\n      got:      {}\n",
        i + 1,
        o.latency.as_millis(),
        o.lang,
        o.id,
        o.source,
        if o.malformed > 0 {
            format!(", {} malformed", o.malformed)
        } else {
            String::new()
        },
        if o.llm_requests > 0 {
            format!(
                ", {} requests, {} prompt + {} generated tokens",
                o.llm_requests, o.prompt_tokens, o.completion_tokens
            )
        } else {
            String::new()
        },
        o.expected,
        o.got
    );
    if o.fell_back {
        s.push_str("      (the answer came from the keyword router, not the model)\n");
    }
    s
}

/// The gateway configuration of the evaluation: the simulated building (three floors of five
/// rooms, the boiler plant, the basement leak sensor) with its floors, rooms and tenants, an
/// alarm that is always open, an operator, and `[agent.llm]` pointing at the server.
pub fn gateway_toml(opts: &Options) -> String {
    let mut t = String::from(
        r#"
[site]
name = "Lenina 17"
floor = [
  { id = "B", name = "Basement", level = -1 },
  { id = "1", name = "Floor 1", level = 1 },
  { id = "2", name = "Floor 2", level = 2 },
  { id = "3", name = "Floor 3", level = 3 },
]
tenant = [
  { id = "acme", name = "Acme Ltd" },
  { id = "romashka", name = "ООО «Ромашка»" },
  { id = "vector", name = "Vector Engineering" },
]
room = [
  { id = "101", floor = "1", tenant = "acme" },
  { id = "102", floor = "1", tenant = "acme" },
  { id = "103", floor = "1", tenant = "acme" },
  { id = "104", floor = "1", tenant = "acme" },
  { id = "105", floor = "1", tenant = "acme" },
  { id = "201", floor = "2", tenant = "romashka" },
  { id = "202", floor = "2", tenant = "romashka" },
  { id = "203", floor = "2", tenant = "romashka" },
  { id = "204", floor = "2", tenant = "vector" },
  { id = "205", floor = "2", tenant = "vector" },
  { id = "301", floor = "3", tenant = "vector" },
  { id = "302", floor = "3", tenant = "vector" },
  { id = "303", floor = "3", tenant = "vector" },
  { id = "304", floor = "3", tenant = "vector" },
  { id = "305", floor = "3", tenant = "vector" },
]

[alarms]
tick = "500ms"

[[alarms.rule]]
alert = "Co2High"
kind = "high"
sensor = "f3.r302.co2"
limit = 100.0
severity = "medium"

[[alarms.rule]]
alert = "WaterLeak"
kind = "state"
sensor = "basement.leak"
severity = "critical"

[[users]]
login = "eval"
name = "Evaluation"
role = "operator"
"#,
    );
    writeln!(
        t,
        "\n[agent]\nturn_timeout = \"{}ms\"\n\n[agent.llm]",
        opts.turn_timeout.as_millis()
    )
    .ok();
    if let Some(url) = &opts.llm_url {
        writeln!(t, "url = {}", toml_str(url)).ok();
        // A slow model must not be cut short by the client before the turn ends.
        writeln!(
            t,
            "request_timeout = \"{}ms\"",
            opts.turn_timeout.as_millis()
        )
        .ok();
    }
    if let Some(model) = &opts.model {
        writeln!(t, "model = {}", toml_str(model)).ok();
    }
    if let Some((var, _)) = &opts.key {
        writeln!(t, "api_key_env = {}", toml_str(var)).ok();
    }
    t
}

/// Sensors of the evaluation building: 3 floors x 5 rooms x 3, plus 6 plant sensors.
const SENSORS: usize = 3 * 5 * 3 + 6;

/// Checks that the server answers before anything else, so that a wrong URL or key is an error
/// rather than thirty offline answers.
async fn preflight(http: &reqwest::Client, opts: &Options) -> anyhow::Result<()> {
    let Some(url) = &opts.llm_url else {
        return Ok(());
    };
    let base = url.trim_end_matches('/').trim_end_matches("/v1");
    let mut req = http.get(format!("{base}/v1/models"));
    if let Some((_, key)) = &opts.key {
        req = req.bearer_auth(key);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("the LLM server at {url} cannot be reached"))?;
    if matches!(resp.status().as_u16(), 401 | 403) {
        bail!(
            "the LLM server at {url} refused the key ({}); check --key-env",
            resp.status()
        );
    }
    Ok(())
}

/// The counters read before and after each question.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    malformed: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    chat_requests: u64,
    server_token_counts: u64,
    token_estimates: u64,
}

async fn counters(gw: &TempGateway) -> Counters {
    let text = gw.metrics_text().await;
    // Counters are exact integers in the exposition text.
    let one = |name: &str| metric_in(&text, name).map_or(0, |v| v as u64);
    // The sum of `markoff_llm_requests_total` over the lines with every one of `labels`.
    let requests = |labels: &[&str]| -> u64 {
        text.lines()
            .filter(|l| {
                l.starts_with("markoff_llm_requests_total{")
                    && labels.iter().all(|label| l.contains(label))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    };
    Counters {
        malformed: one("markoff_agent_malformed_total"),
        prompt_tokens: one("markoff_llm_prompt_tokens_total"),
        completion_tokens: one("markoff_llm_completion_tokens_total"),
        chat_requests: requests(&["endpoint=\"chat\""]),
        server_token_counts: requests(&["endpoint=\"tokencount\"", "outcome=\"ok\""]),
        token_estimates: one("markoff_llm_token_estimates_total"),
    }
}

/// Starts a gateway as [`gateway_toml`] describes, waits until every sensor has a reading,
/// asks every question in order (each in a conversation of its own) and scores the answers.
/// `progress` sees each outcome as it is made.
///
/// # Errors
/// Infrastructure only: the LLM server cannot be reached or refuses the key, the gateway has no
/// data in time, or a question gets no HTTP answer. Wrong tool choices are results, not errors.
///
/// # Panics
/// The gateway does not start (the panic shows its log); the `markoff` binary must be built.
pub async fn run(
    opts: &Options,
    mut progress: impl FnMut(usize, &Outcome),
) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(opts.turn_timeout + Duration::from_secs(30))
        .build()
        .context("cannot build an HTTP client")?;
    preflight(&http, opts).await?;
    let mut builder = TempGateway::builder()
        .id("agent-eval")
        .simulator(3, 5, Duration::from_millis(500))
        .extra_toml(&gateway_toml(opts))
        .api_token(EVAL_USER, EVAL_TOKEN);
    if let Some((var, value)) = &opts.key {
        builder = builder.env(var, value);
    }
    let gw = builder.start().await;
    let started = Instant::now();
    loop {
        let n = gw
            .try_get_json("/api/v1/readings")
            .await
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0);
        if n >= SENSORS
            && !gw
                .get_json("/api/v1/alarms")
                .await
                .as_array()
                .is_none_or(Vec::is_empty)
        {
            break;
        }
        if started.elapsed() > crate::eventually::patience() {
            bail!(
                "the gateway has {n} of {SENSORS} sensors or no open alarm after {:?}; log:\n{}",
                crate::eventually::patience(),
                gw.log()
            );
        }
        tokio::time::sleep(crate::eventually::POLL_INTERVAL).await;
    }
    let ask_url = format!("{}/api/v1/ask", gw.api_url());
    let mut outcomes = Vec::with_capacity(opts.cases.len());
    for (i, case) in opts.cases.iter().enumerate() {
        let before = counters(&gw).await;
        let sent = Instant::now();
        let body = serde_json::json!({
            "text": case.question,
            "session": format!("eval:{}", case.id),
            "lang": case.lang,
        });
        let resp = http
            .post(&ask_url)
            .bearer_auth(EVAL_TOKEN)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("{}: POST /api/v1/ask failed", case.id))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("{}: reading the answer failed", case.id))?;
        if !status.is_success() {
            bail!("{}: /api/v1/ask answered {status}: {text}", case.id);
        }
        let reply: Reply = serde_json::from_str(&text)
            .with_context(|| format!("{}: the answer is not a Reply: {text}", case.id))?;
        let latency = sent.elapsed();
        let after = counters(&gw).await;
        let malformed = after.malformed.saturating_sub(before.malformed);
        let mut outcome = score(case, &reply, opts.llm_url.is_some(), malformed, latency);
        outcome.prompt_tokens = after.prompt_tokens.saturating_sub(before.prompt_tokens);
        outcome.completion_tokens = after
            .completion_tokens
            .saturating_sub(before.completion_tokens);
        outcome.llm_requests = after.chat_requests.saturating_sub(before.chat_requests);
        outcome.server_token_counts = after
            .server_token_counts
            .saturating_sub(before.server_token_counts);
        outcome.token_estimates = after.token_estimates.saturating_sub(before.token_estimates);
        progress(i, &outcome);
        outcomes.push(outcome);
    }
    Ok(Report {
        target: opts
            .llm_url
            .clone()
            .unwrap_or_else(|| "keyword router (no LLM)".to_owned()),
        outcomes,
        log: gw.log(),
    })
}

/// Whether a call's argument is the question itself (ignoring case, spaces and end punctuation).
fn pasted(question: &str, args: &Value) -> bool {
    let norm = |s: &str| {
        s.trim()
            .trim_end_matches(['?', '!', '.'])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let q = norm(question);
    args.as_object()
        .is_some_and(|m| m.values().any(|v| v.as_str().is_some_and(|s| norm(s) == q)))
}

/// Scores one reply: see the module's matching rule. With `llm` false the keyword router's
/// answers are the ones scored.
pub fn score(case: &Case, reply: &Reply, llm: bool, malformed: u64, latency: Duration) -> Outcome {
    let source = match reply.source {
        Source::Llm => "llm",
        Source::Command => "command",
        Source::Offline => "offline",
    };
    let eligible = if llm {
        reply.source == Source::Llm
    } else {
        reply.source == Source::Offline
    };
    let first = reply
        .tools
        .first()
        .filter(|t| !pasted(&case.question, &t.args));
    let got = reply.tools.first().map_or_else(
        || "(no tool)".to_owned(),
        |t| describe_call(&t.name, &t.args),
    );
    let ok =
        eligible && first.is_some_and(|t| case.expect.iter().any(|c| c.matches(&t.name, &t.args)));
    Outcome {
        id: case.id.clone(),
        lang: case.lang.clone(),
        expected: describe_expect(&case.expect),
        got,
        ok,
        source: source.to_owned(),
        fell_back: llm && reply.source == Source::Offline,
        malformed,
        latency,
        prompt_tokens: 0,
        completion_tokens: 0,
        llm_requests: 0,
        server_token_counts: 0,
        token_estimates: 0,
        answer: reply.text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Call;
    use super::*;

    fn call(tool: &str, args: Value) -> Call {
        Call {
            tool: tool.to_owned(),
            args: serde_json::from_value(args).unwrap(),
        }
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(nearest_rank(&v, 0.5), Duration::from_millis(5));
        assert_eq!(nearest_rank(&v, 0.95), Duration::from_millis(10));
        assert_eq!(nearest_rank(&v, 0.0), Duration::from_millis(1));
        assert_eq!(nearest_rank(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn only_model_answers_count_unless_scoring_the_router() {
        let case = Case {
            id: "c".into(),
            lang: "en".into(),
            question: "any alarms?".into(),
            expect: vec![call("alarms", json!({}))],
        };
        let mut reply: Reply = serde_json::from_value(json!({
            "text": "none", "lang": "en", "source": "offline", "elapsed_ms": 3,
            "tools": [{"name": "alarms", "args": {"state": "open"}, "ok": true}],
        }))
        .unwrap();
        assert!(!score(&case, &reply, true, 0, Duration::ZERO).ok);
        assert!(score(&case, &reply, false, 0, Duration::ZERO).ok);
        let mut pasted = reply.clone();
        pasted.tools[0].args = json!({"state": "open", "floor": "Any alarms"});
        assert!(!score(&case, &pasted, false, 0, Duration::ZERO).ok);
        reply.source = Source::Llm;
        let o = score(&case, &reply, true, 1, Duration::ZERO);
        assert!(o.ok);
        assert_eq!(o.got, "alarms{state=\"open\"}");
    }
}
