//! HTTP for the LLM client: one request within a timeout and the caller's deadline, the Bearer
//! key, busy retries with backoff, and the classification of what went wrong.
//!
//! Owns: sending and classifying. Does not own: what is sent (see `super::wire`) or the circuit
//! breaker (see `super::Llm::settle`).

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use tracing::debug;

use super::{Answer, BUSY_BACKOFF_MAX, BUSY_BACKOFF_MIN, Llm, LlmError, wire};
use crate::service::backoff::Backoff;

impl Llm {
    /// POSTs `body` to `path`, retrying busy answers; returns the body of a 2xx answer.
    pub(super) async fn post_with_retries(
        &self,
        path: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Vec<u8>, LlmError> {
        let timeout = self.inner.config.request_timeout;
        let mut backoff = Backoff::new(BUSY_BACKOFF_MIN, BUSY_BACKOFF_MAX);
        loop {
            let answer = self.post(path, body, deadline, timeout).await?;
            match answer.status {
                200..=299 => return Ok(answer.body),
                503 | 429 if backoff.failures() < self.inner.config.busy_retries => {
                    let delay = backoff.next_delay();
                    if Instant::now() + delay >= deadline {
                        return Err(LlmError::Busy);
                    }
                    self.inner.metrics.busy_retries.inc();
                    debug!(
                        path,
                        attempt = backoff.failures(),
                        ?delay,
                        "LLM server busy; retrying."
                    );
                    tokio::time::sleep(delay).await;
                }
                _ => return Err(status_error(&answer)),
            }
        }
    }

    pub(super) async fn post(
        &self,
        path: &str,
        body: &Value,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Answer, LlmError> {
        let url = format!("{}{path}", self.inner.base);
        self.exchange(self.inner.http.post(url).json(body), deadline, timeout)
            .await
    }

    pub(super) async fn get(
        &self,
        path: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Answer, LlmError> {
        let url = format!("{}{path}", self.inner.base);
        self.exchange(self.inner.http.get(url), deadline, timeout)
            .await
    }

    /// One HTTP request with the key, within `timeout` and `deadline`, classified.
    pub(super) async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Answer, LlmError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(LlmError::Cancelled);
        }
        let cut_by_deadline = remaining < timeout;
        let request = match &self.inner.key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        };
        let send = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(Answer { status, body })
        };
        match tokio::time::timeout(timeout.min(remaining), send).await {
            Err(_elapsed) if cut_by_deadline => Err(LlmError::Cancelled),
            Err(_elapsed) => Err(LlmError::Timeout),
            Ok(Err(e)) => Err(classify(&e)),
            Ok(Ok(answer)) => Ok(answer),
        }
    }
}

/// A deadline for requests whose caller gave none: `timeout` limits each HTTP request, and
/// busy retries may take as long again.
pub(super) fn unbounded(timeout: Duration) -> Instant {
    Instant::now() + timeout.saturating_mul(2)
}

/// The error for a non-2xx answer (busy retries already done).
pub(super) fn status_error(answer: &Answer) -> LlmError {
    match answer.status {
        401 | 403 => LlmError::Unauthorized,
        503 | 429 => LlmError::Busy,
        status => LlmError::Http {
            status,
            body: wire::error_text(&answer.body),
        },
    }
}

/// Sorts a reqwest error: no connection, timeout, or an answer that never came whole.
fn classify(e: &reqwest::Error) -> LlmError {
    let chain = error_chain(e);
    if e.is_connect() {
        LlmError::Connect(chain)
    } else if e.is_timeout() {
        LlmError::Timeout
    } else {
        // Koboldcpp drops the connection without an answer when a request makes it fail (a
        // tool spec without a description or property types, `tool_choice: "required"`).
        LlmError::BadResponse(format!(
            "the connection ended without a complete answer ({chain})"
        ))
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
