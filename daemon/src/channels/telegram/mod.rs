//! The Telegram bot: on-site staff ask the building questions, get alarm notifications with
//! Ack and Shelve buttons, floor plans and charts as photos, and talk to it by voice.
//!
//! One supervised task (`telegram`, started by `crate::app` when `[telegram] enabled`, stopped
//! with the other downstream tasks, restarted on SIGHUP when `[telegram]` changed) runs:
//!
//! 1. **Connect**: `getMe` until it succeeds, with backoff from 1 s to `retry_max`: the
//!    gateway boots fine with the internet down, and the bot connects when Telegram is
//!    reachable. (teloxide's dispatcher panics when its first `getMe` fails; the bot uses
//!    teloxide's API client only, with its own loop.) Then: the webhook is removed if one is
//!    set, the command menu registered (English and Russian), and the `telegram` channel
//!    registered with the alarm outbox (see [`notify`]), whose waiting notifications then go.
//! 2. **Long poll** (`getUpdates`, `poll_timeout`), resuming from the offset stored in the
//!    buffer; errors back off the same way. Each update is checked by [`access`] first:
//!    strangers get nothing at all. Messages go to a lane per chat (answered in order, chats
//!    in parallel); button presses are handled at once. In groups, the bot answers commands,
//!    messages that mention it and replies to it.
//! 3. **Editing** notifications as their alarms change ([`notify::editor`]).
//!
//! Handlers run as tasks of a `JoinSet` owned by this task, so they stop with it.
//!
//! Layout: [`config`] (`[telegram]`), [`api`] (the Bot API client), [`poll`] (the long poll
//! and the handlers), [`access`] (who is served), [`conversation`] (questions, answers,
//! buttons), [`voice`] (voice notes),
//! [`notify`] (alarm notifications), [`format`] (splitting, HTML, button data), [`text`] (the
//! bot's own words), [`persist`] (its tables).
//!
//! Owns: the bot. Does not own: answers (`crate::agent`), alarms and their outbox
//! (`crate::alarms`), pictures (`crate::render`).

mod access;
mod api;
pub mod config;
mod conversation;
mod format;
mod notify;
mod persist;
mod poll;
pub(crate) mod text;
mod voice;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use teloxide_core::types::Me;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use self::api::{Api, TelegramError};
pub use self::config::TelegramConfig;
use self::conversation::Ctx;
use crate::agent::Agent;
use crate::alarms::outbox::Channel;
use crate::alarms::outbox::Channels;
use crate::context::Core;
use crate::model::Lang;
use crate::service::backoff::Backoff;
use crate::service::metrics::{Labels, MetricSet};
use crate::service::supervisor::{Restart, Supervisor, TaskError};

/// First wait after a failed request to the Bot API.
const RETRY_MIN: Duration = Duration::from_secs(1);

/// Counters of the bot, under `markoff_telegram_*`.
#[derive(Debug)]
pub struct TelegramMetrics {
    /// 1 while the Bot API answers, 0 while it does not (or the bot is off).
    pub connected: Gauge,
    /// Updates received, by `kind` (`text`, `voice`, `button`, `ignored`).
    pub updates: Family<Labels, Counter>,
    /// Updates from strangers, ignored without a word.
    pub strangers: Counter,
    /// Input that made no sense, by `reason` (`update`, `button`, `voice_format`, `busy`).
    pub bad_input: Family<Labels, Counter>,
    /// Calls to the Bot API, by `method` and `outcome` (`ok`, or the error kind).
    pub calls: Family<Labels, Counter>,
    /// Answers sent again as plain text because Telegram rejected their markup.
    pub markup_fallbacks: Counter,
    /// Voice notes, by `outcome` (`answered`, `text_only`, `no_speech`, `not_understood`,
    /// `codec`, `too_long`, `download`, `off`).
    pub voice: Family<Labels, Counter>,
}

impl MetricSet for TelegramMetrics {
    /// Registers the metrics under `markoff_telegram_*`.
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            connected: Gauge::default(),
            updates: Family::default(),
            strangers: Counter::default(),
            bad_input: Family::default(),
            calls: Family::default(),
            markup_fallbacks: Counter::default(),
            voice: Family::default(),
        };
        registry.register(
            "telegram_connected",
            "1 while the Telegram Bot API answers the bot",
            m.connected.clone(),
        );
        registry.register(
            "telegram_updates",
            "Telegram updates received, by kind (text, voice, button, ignored)",
            m.updates.clone(),
        );
        registry.register(
            "telegram_strangers",
            "Telegram updates from people and chats not allowed, ignored without a reply",
            m.strangers.clone(),
        );
        registry.register(
            "telegram_bad_input",
            "Telegram input that made no sense, by reason",
            m.bad_input.clone(),
        );
        registry.register(
            "telegram_api_calls",
            "Calls to the Telegram Bot API, by method and outcome",
            m.calls.clone(),
        );
        registry.register(
            "telegram_markup_fallbacks",
            "Answers resent as plain text because Telegram rejected their formatting",
            m.markup_fallbacks.clone(),
        );
        registry.register(
            "telegram_voice_notes",
            "Voice notes received, by outcome",
            m.voice.clone(),
        );
        m
    }
}

impl TelegramMetrics {
    fn count(family: &Family<Labels, Counter>, key: &str, value: &str) {
        family
            .get_or_create(&vec![(key.to_owned(), value.to_owned())])
            .inc();
    }

    pub(crate) fn count_call(&self, method: &str, outcome: &str) {
        self.calls
            .get_or_create(&vec![
                ("method".to_owned(), method.to_owned()),
                ("outcome".to_owned(), outcome.to_owned()),
            ])
            .inc();
    }

    pub(crate) fn count_bad_input(&self, reason: &str) {
        Self::count(&self.bad_input, "reason", reason);
    }

    pub(crate) fn count_voice(&self, outcome: &str) {
        Self::count(&self.voice, "outcome", outcome);
    }

    fn count_update(&self, kind: &str) {
        Self::count(&self.updates, "kind", kind);
    }
}

/// Starts the supervised `telegram` task when `[telegram] enabled`; `None` otherwise. It stops
/// when `token` is cancelled. Alarm notifications go out through the channel the bot registers
/// in `channels` (the outbox's delivery channels) while it is connected.
pub fn start(
    core: &Core,
    agent: &Agent,
    channels: &Channels,
    supervisor: &Supervisor,
    token: CancellationToken,
) -> Option<JoinHandle<()>> {
    let cfg = core.config();
    if !cfg.telegram.enabled {
        return None;
    }
    let (core, agent, channels) = (core.clone(), agent.clone(), channels.clone());
    Some(
        supervisor.spawn("telegram", Restart::OnFailure, token, move |child| {
            run(core.clone(), agent.clone(), channels.clone(), child)
        }),
    )
}

/// The bot until `token` is cancelled. Telegram's troubles never end it; a token that cannot
/// be read or a client that cannot be built end it (logged) without a restart.
async fn run(
    core: Core,
    agent: Agent,
    channels: Channels,
    token: CancellationToken,
) -> Result<(), TaskError> {
    let cfg = core.config().telegram.clone();
    let metrics = core.metrics.get::<TelegramMetrics>();
    let secret = match cfg.token().resolve() {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "Cannot read the Telegram bot token; the bot is not started.");
            return Ok(());
        }
    };
    let (api, worker) = match Api::new(&cfg, secret, metrics.clone()) {
        Ok(a) => a,
        Err(e) => {
            error!(error = %e, "Cannot build the Telegram client; the bot is not started.");
            return Ok(());
        }
    };
    let api = Arc::new(api);
    // Subscribed before connecting, so no alarm change is missed while Telegram is away.
    let events = core.alarms.subscribe();
    let mut channel = None;
    let session = async {
        let Some(me) = connect(&api, cfg.retry_max, &token).await else {
            return;
        };
        channel = Some(prepare(&core, &channels, &api, &me).await);
        let ctx = Ctx {
            core: core.clone(),
            agent: agent.clone(),
            api: api.clone(),
        };
        tokio::join!(
            notify::editor(core.clone(), api.clone(), events, token.clone()),
            poll::poll(&ctx, &cfg, &me, &token),
        );
    };
    tokio::select! {
        // Also while a request of the session is still on its way.
        () = token.cancelled() => {}
        () = session => {}
        // Ends only when every throttled bot is gone, which the session outlives.
        () = worker => {}
    }
    if let Some(c) = channel {
        channels.unregister_if("telegram", &c);
    }
    metrics.connected.set(0);
    info!("Telegram bot stopped.");
    Ok(())
}

/// `getMe` until it answers (`None` when cancelled first).
async fn connect(api: &Api, retry_max: Duration, token: &CancellationToken) -> Option<Me> {
    let mut backoff = Backoff::new(RETRY_MIN, retry_max);
    loop {
        let result = tokio::select! {
            () = token.cancelled() => return None,
            r = api.get_me() => r,
        };
        let e = match result {
            Ok(me) => return Some(me),
            Err(e) => e,
        };
        let delay = if matches!(e, TelegramError::Unauthorized) {
            // An operator must act; every attempt says so.
            error!(error = %e, retry_in = ?retry_max, "Telegram refused the bot token; the bot keeps trying.");
            retry_max
        } else {
            let delay = backoff.next_delay();
            if backoff.failures() <= 1 {
                warn!(api = api.api_url(), error = %e, ?delay, "Telegram is not reachable yet; the bot keeps trying.");
            } else {
                debug!(error = %e, ?delay, "Telegram still not reachable.");
            }
            delay
        };
        tokio::select! {
            () = token.cancelled() => return None,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// After the first `getMe`: no webhook, the command menu, the outbox channel (returned, to be
/// unregistered when the bot stops).
async fn prepare(core: &Core, channels: &Channels, api: &Arc<Api>, me: &Me) -> Arc<dyn Channel> {
    api.metrics.connected.set(1);
    let username = me.user.username.as_deref().unwrap_or("");
    info!(
        bot = username,
        api = api.api_url(),
        "Telegram bot connected."
    );
    match api.drop_webhook().await {
        Ok(true) => info!("Telegram: removed the bot's webhook (the gateway polls)."),
        Ok(false) => {}
        Err(e) => warn!(error = %e, "Telegram: cannot check the bot's webhook."),
    }
    for (lang, code) in [(Lang::En, None), (Lang::Ru, Some("ru"))] {
        if let Err(e) = api.set_commands(text::commands(lang), code).await {
            warn!(error = %e, "Telegram: cannot register the command menu.");
        }
    }
    let channel: Arc<dyn Channel> = Arc::new(notify::TelegramChannel::new(core, api.clone()));
    channels.register("telegram", channel.clone());
    core.alarms.outbox_wake().notify_one();
    channel
}
