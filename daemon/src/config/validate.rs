//! Semantic validation: pure checks over the typed config that serde cannot express.
//! Collects every problem; never stops at the first. Each component's section is checked by
//! the `validate` of its own `config.rs`.

use std::time::Duration;

use super::Config;
use super::error::ConfigError;

/// Largest `[store] queue_capacity` (messages, each a batch of readings).
pub(crate) const MAX_QUEUE_CAPACITY: usize = 1_000_000;

/// Every semantic problem in `config`, with dotted key paths (positions are added by the loader).
pub(crate) fn validate(config: &Config) -> Vec<ConfigError> {
    let mut v = Errors::default();
    let gw = &config.gateway;
    if gw.id.trim().is_empty() {
        v.push(
            "gateway.id",
            "must not be empty",
            Some("a short stable name such as \"lenina-17\""),
        );
    } else if !gw
        .id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        v.push(
            "gateway.id",
            "may only contain ASCII letters, digits, '-', '_' and '.'",
            None,
        );
    }

    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&config.log.filter) {
        v.push(
            "log.filter",
            &format!("invalid filter: {e}"),
            Some("e.g. \"info\" or \"info,markoff::sources=debug\""),
        );
    }

    let s = &config.store;
    if s.flush_rows == 0 {
        v.push("store.flush_rows", "must be at least 1", None);
    }
    positive(&mut v, "store.flush_interval", s.flush_interval);
    positive(
        &mut v,
        "store.flush_interval_waited",
        s.flush_interval_waited,
    );
    if !(1..=MAX_QUEUE_CAPACITY).contains(&s.queue_capacity) {
        v.push(
            "store.queue_capacity",
            &format!("must be 1-{MAX_QUEUE_CAPACITY}"),
            Some("messages waiting for the writer; the default is plenty"),
        );
    }
    if s.max_size.bytes() < 1024 * 1024 {
        v.push(
            "store.max_size",
            "must be at least 1MiB",
            Some("the buffer needs room for its schema and a few batches"),
        );
    }
    positive(&mut v, "store.retention", s.retention);
    positive(&mut v, "store.maintenance_interval", s.maintenance_interval);

    let svc = &config.service;
    positive(&mut v, "service.shutdown_timeout", svc.shutdown_timeout);
    positive(&mut v, "service.stall_timeout", svc.stall_timeout);
    positive(
        &mut v,
        "service.restart_backoff_min",
        svc.restart_backoff_min,
    );
    if svc.restart_backoff_max < svc.restart_backoff_min {
        v.push(
            "service.restart_backoff_max",
            "must not be smaller than restart_backoff_min",
            None,
        );
    }
    positive(&mut v, "service.restart_window", svc.restart_window);
    positive(&mut v, "service.status_interval", svc.status_interval);

    if let Some(sim) = &config.sources.simulator {
        if sim.floors == 0 || sim.floors > 200 {
            v.push(
                "sources.simulator.floors",
                "must be between 1 and 200",
                None,
            );
        }
        if sim.rooms_per_floor == 0 || sim.rooms_per_floor > 500 {
            v.push(
                "sources.simulator.rooms_per_floor",
                "must be between 1 and 500",
                None,
            );
        }
        if sim.interval < Duration::from_millis(1) {
            v.push("sources.simulator.interval", "must be at least 1ms", None);
        }
        if !(sim.time_scale.is_finite() && sim.time_scale > 0.0) {
            v.push(
                "sources.simulator.time_scale",
                "must be a positive number",
                None,
            );
        }
    }
    let sources = &config.sources;
    v.0.extend(crate::sources::modbus::config::validate(
        &sources.modbus,
        &sources.modbus_profiles,
    ));
    if sources.mqtt_max_sensors == 0 {
        v.push(
            "sources.mqtt_max_sensors",
            "must be at least 1",
            Some("the default is 5000 sensors created from MQTT topics"),
        );
    }
    v.0.extend(crate::sources::mqtt::config::validate(
        &sources.mqtt,
        &config.gateway.id,
    ));
    v.0.extend(crate::alarms::config::validate(
        &config.alarms,
        &config.users,
    ));
    v.0.extend(super::site::validate(&config.site));
    v.0.extend(config.agent.validate());
    v.0.extend(config.lan.validate(&config.users));
    v.0.extend(http_access(config));
    v.0.extend(config.telegram.validate());
    if let Some(sync) = &config.sync {
        v.0.extend(crate::sync::config::validate(sync));
    }
    v.0
}

/// Semantic checks of `[http]` against `[[users]]`: every token names a known login and has
/// exactly one source; `unix_user` is not shared; the socket path is absolute.
fn http_access(cfg: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let push = |errors: &mut Vec<ConfigError>, path: String, message: String| {
        errors.push(ConfigError {
            path,
            position: None,
            message,
            hint: None,
        });
    };
    let socket = &cfg.http.socket;
    if !socket.as_os_str().is_empty() && !socket.is_absolute() {
        push(
            &mut errors,
            "http.socket".into(),
            "must be an absolute path (or \"\" for no socket)".into(),
        );
    }
    for (i, t) in cfg.http.token.iter().enumerate() {
        let base = format!("http.token.{i}");
        if !cfg.users.iter().any(|u| u.login == t.user) {
            push(
                &mut errors,
                format!("{base}.user"),
                format!("{:?} is not a login in [[users]]", t.user),
            );
        }
        if let Some(mut e) = t.secret().check(&base, "token", true) {
            e.hint = Some(
                "set one of token_env, token_file or token_credential; the token never lives \
                 in the config file"
                    .to_owned(),
            );
            errors.push(e);
        }
    }
    for (i, u) in cfg.users.iter().enumerate() {
        let Some(name) = u.unix_user.as_deref() else {
            continue;
        };
        if name.trim().is_empty() {
            push(
                &mut errors,
                format!("users.{i}.unix_user"),
                "must not be empty".into(),
            );
        } else if cfg.users[..i]
            .iter()
            .any(|o| o.unix_user.as_deref() == Some(name))
        {
            push(
                &mut errors,
                format!("users.{i}.unix_user"),
                format!("{name:?} is already the account of another [[users]] entry"),
            );
        }
    }
    errors
}

#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, path: &str, message: &str, hint: Option<&str>) {
        self.0.push(ConfigError {
            path: path.to_owned(),
            position: None,
            message: message.to_owned(),
            hint: hint.map(str::to_owned),
        });
    }
}

fn positive(v: &mut Errors, path: &str, d: Duration) {
    if d.is_zero() {
        v.push(
            path,
            "must be longer than zero",
            Some("durations are strings with a unit: \"250ms\", \"5s\""),
        );
    }
}
