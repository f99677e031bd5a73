//! Logging: journald when started by systemd (`JOURNAL_STREAM` set), stderr otherwise, or a file
//! (the demo's terminal view owns the screen). The filter is `RUST_LOG`-style, from `RUST_LOG`
//! when set, else from `[log] filter`; it can be replaced at run time (SIGHUP reload).

use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

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
pub fn init(filter: &str, target: LogTarget<'_>) -> Option<LogHandle> {
    let env_filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v).unwrap_or_else(|_| EnvFilter::new("info")),
        _ => EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let (filter_layer, handle) = reload::Layer::new(env_filter);
    let registry = tracing_subscriber::registry().with(filter_layer);
    let journald =
        matches!(target, LogTarget::Auto) && std::env::var_os("JOURNAL_STREAM").is_some();
    let result = match target {
        LogTarget::File(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(Mutex::new(file)),
                )
                .try_init(),
            Err(_) => registry
                .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
                .try_init(),
        },
        _ if journald => match tracing_journald::layer() {
            Ok(layer) => registry
                .with(layer.with_syslog_identifier("markoff".into()))
                .try_init(),
            Err(_) => registry
                .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
                .try_init(),
        },
        _ => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    result.ok().map(|()| LogHandle { handle })
}
