//! Reload (SIGHUP): the config file read again, and only the components whose sections changed
//! restarted.

use std::sync::Arc;

use tokio::time::Instant;
use tracing::{error, info, warn};

use super::Gateway;
use crate::config::{self, Config};
use crate::service::systemd;

impl Gateway {
    /// Reloads the config file (SIGHUP). The log filter follows the new file; a component
    /// restarts only when a section it reads changed ([`Changed`]); settings that need a
    /// restart of the process (store, HTTP address, gateway id) keep their old values.
    pub(super) async fn reload(&mut self) {
        let Some(path) = self.options.config_path.clone() else {
            warn!(
                "SIGHUP received but the gateway was not started from a config file; nothing to reload."
            );
            return;
        };
        systemd::reloading();
        let new = match config::load_file(&path) {
            Ok(c) => c,
            Err(e) => {
                error!(error = %e, "Config reload rejected; the running config stays in force.");
                systemd::ready();
                return;
            }
        };
        let old = self.core.config();
        for (what, changed) in [
            ("gateway.id", old.gateway.id != new.gateway.id),
            ("log.format", old.log.format != new.log.format),
            ("store", old.store != new.store),
            ("http", old.http != new.http),
            ("sync", old.sync != new.sync),
            (
                "lan",
                old.lan.enabled != new.lan.enabled || old.lan.listen != new.lan.listen,
            ),
        ] {
            if changed {
                warn!(
                    section = what,
                    "This setting changed but only takes effect after a restart."
                );
            }
        }
        if let Some(Err(e)) = self
            .options
            .log
            .as_ref()
            .map(|log| log.set_filter(&new.log.filter))
        {
            warn!(error = %e, "Invalid log filter; keeping the old one.");
        }
        let deadline = Instant::now() + new.service.shutdown_timeout;
        let mut applied = new.clone();
        applied.gateway = old.gateway.clone();
        applied.store = old.store.clone();
        applied.http = old.http.clone();
        applied.sync = old.sync.clone();
        applied.lan.enabled = old.lan.enabled;
        applied.lan.listen = old.lan.listen;
        // Each component compares the sections it reads; only those whose sections differ
        // restart, so a reload that changes nothing restarts nothing.
        let changed = Changed::between(&old, &applied);
        if changed.sources && !self.stop_sources(deadline).await {
            warn!("Some sources did not stop in time during reload.");
        }
        if changed.alarms {
            if !self.stop_alarms(deadline).await {
                warn!("The alarm engine did not stop in time during reload.");
            }
            self.start_alarms(&applied);
        }
        if changed.sources {
            self.start_sources(&applied);
        }
        if changed.agent {
            self.agent.configure(&applied.agent);
        }
        self.config.send_replace(Arc::new(applied));
        // The bot reads people and chats from the config in force; only its own section
        // needs a restart (a new token, API address or proxy).
        if changed.telegram {
            if !self.stop_telegram(deadline).await {
                warn!("The Telegram bot did not stop in time during reload.");
            }
            self.start_telegram();
        }
        systemd::ready();
        info!(
            path = %path.display(),
            "Config reloaded. Restarted: {}.",
            changed.names()
        );
    }
}

/// Which components a reload restarts: those whose config sections differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Changed {
    /// `[sources]`: every source.
    sources: bool,
    /// `[alarms]` or `[[users]]` (recipients): the alarm engine and the outbox.
    alarms: bool,
    /// `[agent]`: the assistant's settings, applied in place.
    agent: bool,
    /// `[telegram]`: the bot.
    telegram: bool,
}

impl Changed {
    fn between(old: &Config, new: &Config) -> Self {
        Self {
            sources: old.sources != new.sources,
            alarms: old.alarms != new.alarms || old.users != new.users,
            agent: old.agent != new.agent,
            telegram: old.telegram != new.telegram,
        }
    }

    /// `"sources, alarms"`, or `"nothing"`.
    fn names(self) -> String {
        let names: Vec<&str> = [
            (self.sources, "sources"),
            (self.alarms, "alarms"),
            (self.agent, "agent"),
            (self.telegram, "telegram"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if names.is_empty() {
            "nothing".to_owned()
        } else {
            names.join(", ")
        }
    }
}
