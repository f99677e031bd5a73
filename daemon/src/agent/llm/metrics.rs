//! Metrics of the LLM client, registered under `markoff_llm_*`.
//!
//! Owns: the metric handles the client updates. Does not own: the registry (see
//! `crate::service::metrics::Metrics`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::service::metrics::{Labels, MetricSet};

/// Counters, gauges and latencies of the requests to the LLM server.
#[derive(Debug)]
pub struct LlmMetrics {
    /// Requests, by `endpoint` (`chat`, `probe`, `tokencount`, `transcribe`, `tts`) and
    /// `outcome` (`ok` or an [`super::LlmError::kind`]).
    pub requests: Family<Labels, Counter>,
    /// Retries after HTTP 503/429 busy answers.
    pub busy_retries: Counter,
    /// Times the circuit breaker opened.
    pub breaker_trips: Counter,
    /// 1 while the circuit breaker is open (or half-open, a trial in flight).
    pub breaker_open: Gauge,
    /// Latency of requests that got an answer, by `endpoint`.
    pub request_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    /// Prompt tokens reported by the server.
    pub prompt_tokens: Counter,
    /// Generated tokens reported by the server.
    pub completion_tokens: Counter,
    /// Token counts estimated because the server has no tokencount endpoint or it failed.
    pub token_estimates: Counter,
}

impl Default for LlmMetrics {
    /// Handles that no registry exposes (tests, or a client built before the registry).
    fn default() -> Self {
        Self {
            requests: Family::default(),
            busy_retries: Counter::default(),
            breaker_trips: Counter::default(),
            breaker_open: Gauge::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            prompt_tokens: Counter::default(),
            completion_tokens: Counter::default(),
            token_estimates: Counter::default(),
        }
    }
}

fn latency_histogram() -> Histogram {
    // 50 ms .. about 7 min: a tool turn on Koboldcpp takes several generations.
    Histogram::new(exponential_buckets(0.05, 2.0, 14))
}

impl MetricSet for LlmMetrics {
    /// Creates the handles and registers them under `markoff_llm_*`.
    fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "llm_requests",
            "Requests to the LLM server, by endpoint and outcome",
            m.requests.clone(),
        );
        registry.register(
            "llm_busy_retries",
            "Retries after busy answers (HTTP 503/429) from the LLM server",
            m.busy_retries.clone(),
        );
        registry.register(
            "llm_breaker_trips",
            "Times the LLM circuit breaker opened",
            m.breaker_trips.clone(),
        );
        registry.register(
            "llm_breaker_open",
            "1 while the LLM circuit breaker is open",
            m.breaker_open.clone(),
        );
        registry.register(
            "llm_request_seconds",
            "Latency of answered requests to the LLM server, by endpoint",
            m.request_seconds.clone(),
        );
        registry.register(
            "llm_prompt_tokens",
            "Prompt tokens reported by the LLM server",
            m.prompt_tokens.clone(),
        );
        registry.register(
            "llm_completion_tokens",
            "Generated tokens reported by the LLM server",
            m.completion_tokens.clone(),
        );
        registry.register(
            "llm_token_estimates",
            "Token counts estimated locally instead of asked from the server",
            m.token_estimates.clone(),
        );
        m
    }
}

impl LlmMetrics {
    pub(crate) fn count(&self, endpoint: &str, outcome: &str) {
        self.requests
            .get_or_create(&vec![
                ("endpoint".to_owned(), endpoint.to_owned()),
                ("outcome".to_owned(), outcome.to_owned()),
            ])
            .inc();
    }

    pub(crate) fn observe(&self, endpoint: &str, seconds: f64) {
        self.request_seconds
            .get_or_create(&vec![("endpoint".to_owned(), endpoint.to_owned())])
            .observe(seconds);
    }
}
