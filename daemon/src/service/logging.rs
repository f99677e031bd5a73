//! Logging: journald when started by systemd (`JOURNAL_STREAM` set), stderr otherwise, or a file
//! (the demo's terminal view owns the screen); with `[log] format = "json"`, one JSON object per
//! line on stderr (or in the file) instead. The filter is `RUST_LOG`-style, from `RUST_LOG` when
//! set, else from `[log] filter`; it can be replaced at run time (SIGHUP reload). Text on stderr is
//! coloured only when stderr is a terminal and `NO_COLOR` is not set: redirected to a file or a
//! pipe, the lines are plain.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::config::LogFormat;

/// Where log lines go.
#[derive(Clone, Copy, Debug)]
pub enum LogTarget<'a> {
    /// journald if `JOURNAL_STREAM` is set, else stderr.
    Auto,
    /// Always stderr.
    Stderr,
    /// Append to this file.
    File(&'a Path),
}

/// Changes the filter of the running subscriber.
#[derive(Debug, Clone)]
pub struct LogHandle {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl LogHandle {
    /// Replaces the filter (unless `RUST_LOG` overrides the config).
    ///
    /// # Errors
    /// The filter text is invalid.
    pub fn set_filter(&self, filter: &str) -> Result<(), String> {
        if std::env::var_os("RUST_LOG").is_some() {
            return Ok(());
        }
        let f = EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
        self.handle.reload(f).map_err(|e| e.to_string())
    }
}

/// Installs the global subscriber. Returns `None` if one was already installed (tests).
pub fn init(filter: &str, format: LogFormat, target: LogTarget<'_>) -> Option<LogHandle> {
    let env_filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v).unwrap_or_else(|_| EnvFilter::new("info")),
        _ => EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let (filter_layer, handle) = reload::Layer::new(env_filter);
    let journald = format == LogFormat::Text
        && matches!(target, LogTarget::Auto)
        && std::env::var_os("JOURNAL_STREAM").is_some();
    let output: Box<dyn Layer<_> + Send + Sync> = match target {
        LogTarget::File(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => lines(format, Mutex::new(file), false),
            Err(_) => lines(format, std::io::stderr, stderr_colours()),
        },
        _ if journald => match tracing_journald::layer() {
            Ok(layer) => layer.with_syslog_identifier("markoff".into()).boxed(),
            Err(_) => lines(format, std::io::stderr, stderr_colours()),
        },
        _ => lines(format, std::io::stderr, stderr_colours()),
    };
    tracing_subscriber::registry()
        .with(filter_layer)
        .with(output)
        .try_init()
        .ok()
        .map(|()| LogHandle { handle })
}

/// Whether text on stderr gets ANSI colours: only on a terminal, and not when `NO_COLOR` is set
/// to anything (<https://no-color.org>).
fn stderr_colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A layer writing one line per event to `writer`: text, or a JSON object.
fn lines<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(writer)
            .boxed(),
    }
}
