//! The long poll and the handlers: `getUpdates` from the stored offset (errors back off up to
//! `retry_max`), the access check of every update before anything is sent, a lane per chat
//! for questions and voice notes (answered in order; chats in parallel), and slash commands
//! and button presses handled at once, beside the lane: they never wait for a question the LLM
//! is still answering. In groups only messages meant for the bot are taken: commands for it,
//! mentions, replies to it.
//!
//! Handlers are tasks of a `JoinSet` owned by the poll loop, so they stop with it. Owns: the
//! routing of updates. Does not own: what is answered (see `super::conversation`,
//! `super::voice`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use teloxide_core::types::{Me, Message, Update, UpdateKind};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::access::{self, Access, StrangerLog};
use super::api::{Api, TelegramError};
use super::config::TelegramConfig;
use super::conversation::{self, Ctx};
use super::{RETRY_MIN, persist, voice};
use crate::model::{Actor, Lang};
use crate::service::backoff::Backoff;

/// Messages queued for one chat; more are dropped (and counted) while it is busy.
const LANE_CAPACITY: usize = 16;
/// A chat's lane ends after this long without messages.
const LANE_IDLE: Duration = Duration::from_secs(60);
/// Longest question taken from a message (Telegram allows 4096 characters).
const QUESTION_MAX_CHARS: usize = 4096;
/// Commands and button presses handled at once, in every chat together; more are dropped (and
/// counted) until some finish.
const AT_ONCE_MAX: usize = 256;

/// What a chat's lane does next.
#[derive(Debug)]
enum Job {
    Text(String),
    Voice(teloxide_core::types::Voice),
}

/// One queued message with who sent it.
#[derive(Debug)]
struct Work {
    job: Job,
    actor: Actor,
    lang: Lang,
    known: bool,
}

/// Handlers owned by the poll loop: a lane per chat, and button presses.
struct Handlers {
    set: JoinSet<()>,
    lanes: HashMap<i64, mpsc::Sender<Work>>,
}

impl Handlers {
    /// Queues `work` on `chat`'s lane, starting the lane if needed; `false` when the lane is
    /// full.
    fn queue(&mut self, ctx: &Ctx, chat: i64, work: Work) -> bool {
        let work = match self.lanes.get(&chat) {
            Some(tx) => match tx.try_send(work) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Full(_)) => return false,
                Err(mpsc::error::TrySendError::Closed(w)) => w,
            },
            None => work,
        };
        if self.lanes.len() > 256 {
            self.lanes.retain(|_, tx| !tx.is_closed());
        }
        let (tx, rx) = mpsc::channel(LANE_CAPACITY);
        // A new channel has room for one.
        let queued = tx.try_send(work).is_ok();
        self.lanes.insert(chat, tx);
        self.set.spawn(lane(ctx.clone(), chat, rx));
        queued
    }

    /// Handles `work` now, beside the chat's lane (commands: they never touch the LLM);
    /// `false` when too many are in flight.
    fn at_once(&mut self, ctx: &Ctx, chat: i64, work: Work) -> bool {
        if self.set.len() >= AT_ONCE_MAX + self.lanes.len() {
            return false;
        }
        let ctx = ctx.clone();
        let chat = teloxide_core::types::ChatId(chat);
        self.set
            .spawn(async move { handle(&ctx, chat, work).await });
        true
    }
}

/// Answers one chat's messages in order; ends when idle.
async fn lane(ctx: Ctx, chat: i64, mut rx: mpsc::Receiver<Work>) {
    let chat = teloxide_core::types::ChatId(chat);
    loop {
        let work = match tokio::time::timeout(LANE_IDLE, rx.recv()).await {
            Ok(Some(w)) => w,
            Ok(None) => return,
            Err(_idle) => {
                // No new work is accepted from now on; what was queued is still answered.
                rx.close();
                while let Some(w) = rx.recv().await {
                    handle(&ctx, chat, w).await;
                }
                return;
            }
        };
        handle(&ctx, chat, work).await;
    }
}

async fn handle(ctx: &Ctx, chat: teloxide_core::types::ChatId, w: Work) {
    match w.job {
        Job::Text(text) => conversation::on_text(ctx, chat, text, w.actor, w.lang, w.known).await,
        Job::Voice(v) => voice::on_voice(ctx, chat, v, w.actor, w.lang, w.known).await,
    }
}

/// The long poll until `token` is cancelled.
pub(crate) async fn poll(ctx: &Ctx, cfg: &TelegramConfig, me: &Me, token: &CancellationToken) {
    let api = ctx.api.clone();
    let bot_id = me.user.id.0;
    let mut offset = match persist::load_offset(&ctx.core, bot_id).await {
        Ok(o) => o,
        Err(e) => {
            warn!(error = %e, "Telegram: cannot read where polling stopped; starting from Telegram's own record.");
            None
        }
    };
    let mut handlers = Handlers {
        set: JoinSet::new(),
        lanes: HashMap::new(),
    };
    let mut strangers = StrangerLog::default();
    let mut backoff = Backoff::new(RETRY_MIN, cfg.retry_max);
    let mut connected = true;
    let mut request = next_poll(api.clone(), offset, cfg.poll_timeout, Duration::ZERO);
    loop {
        let result = tokio::select! {
            () = token.cancelled() => return,
            Some(done) = handlers.set.join_next(), if !handlers.set.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    error!(error = %e, "Telegram: a handler panicked; the bot goes on.");
                }
                continue;
            }
            r = &mut request => r,
        };
        let mut delay = Duration::ZERO;
        match result {
            Ok(updates) => {
                if !connected {
                    info!("Telegram is reachable again.");
                    connected = true;
                }
                api.metrics.connected.set(1);
                backoff.reset();
                let before = offset;
                for u in updates {
                    let next = i32::try_from(u.id.0).unwrap_or(i32::MAX).saturating_add(1);
                    offset = Some(offset.map_or(next, |o| o.max(next)));
                    route(ctx, me, u, &mut handlers, &mut strangers);
                }
                if offset != before
                    && let Some(o) = offset
                    && let Err(e) = persist::save_offset(&ctx.core, bot_id, o).await
                {
                    warn!(error = %e, "Telegram: cannot record the polling offset.");
                }
            }
            Err(e) => {
                api.metrics.connected.set(0);
                delay = backoff.next_delay();
                if matches!(e, TelegramError::Unauthorized) && connected {
                    error!(error = %e, ?delay, "Telegram: the token was refused while polling; retrying with backoff.");
                    connected = false;
                } else if connected {
                    warn!(error = %e, ?delay, "Telegram: polling failed; retrying with backoff.");
                    connected = false;
                } else {
                    debug!(error = %e, ?delay, "Telegram: polling still failing.");
                }
            }
        }
        request = next_poll(api.clone(), offset, cfg.poll_timeout, delay);
    }
}

/// One long poll, after `delay`.
type PollFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Update>, TelegramError>> + Send>>;

fn next_poll(api: Arc<Api>, offset: Option<i32>, timeout: Duration, delay: Duration) -> PollFuture {
    Box::pin(async move {
        tokio::time::sleep(delay).await;
        api.get_updates(offset, timeout).await
    })
}

/// Whether a group message is meant for the bot: a command (for this bot), a mention, or a
/// reply to one of its messages. Returns the text without the mention.
fn addressed(msg: &Message, me: &Me, text: &str) -> Option<String> {
    let username = me.user.username.as_deref().unwrap_or("");
    let mention = format!("@{username}");
    if let Some(rest) = text.strip_prefix('/') {
        let head = rest.split_whitespace().next().unwrap_or("");
        return match head.split_once('@') {
            Some((_, bot)) if !bot.eq_ignore_ascii_case(username) => None,
            _ => Some(text.to_owned()),
        };
    }
    if !username.is_empty() && text.contains(&mention) {
        return Some(text.replace(&mention, " ").trim().to_owned());
    }
    let to_bot = msg
        .reply_to_message()
        .and_then(|r| r.from.as_ref())
        .is_some_and(|u| u.id == me.user.id);
    to_bot.then(|| text.to_owned())
}

/// Decides on one update and hands it to a handler. Nothing is sent from here.
fn route(ctx: &Ctx, me: &Me, u: Update, handlers: &mut Handlers, strangers: &mut StrangerLog) {
    let metrics = &ctx.api.metrics;
    let cfg = ctx.core.config();
    match u.kind {
        UpdateKind::Message(msg) => {
            let Access::Allowed { actor, lang, known } =
                access::decide(&cfg, &msg.chat, msg.from.as_ref())
            else {
                metrics.strangers.inc();
                strangers.note(&msg.chat, msg.from.as_ref(), "message");
                return;
            };
            let private = msg.chat.is_private();
            let job = if let Some(text) = msg.text() {
                let text = if private {
                    Some(text.to_owned())
                } else {
                    addressed(&msg, me, text)
                };
                text.filter(|t| !t.trim().is_empty()).map(|t| {
                    metrics.count_update("text");
                    if t.chars().nth(QUESTION_MAX_CHARS).is_some() {
                        // Longer than Telegram itself allows: cut, and counted.
                        metrics.count_bad_input("too_long");
                    }
                    Job::Text(t.chars().take(QUESTION_MAX_CHARS).collect())
                })
            } else if let Some(v) = msg.voice() {
                let for_bot = private || addressed(&msg, me, "").is_some();
                for_bot.then(|| {
                    metrics.count_update("voice");
                    Job::Voice(v.clone())
                })
            } else {
                None
            };
            let Some(job) = job else {
                metrics.count_update("ignored");
                return;
            };
            // A slash command is answered from local data, never by the LLM: it does not
            // queue behind the chat's questions.
            let command = matches!(&job, Job::Text(t) if t.trim_start().starts_with('/'));
            let work = Work {
                job,
                actor,
                lang,
                known,
            };
            let taken = if command {
                handlers.at_once(ctx, msg.chat.id.0, work)
            } else {
                handlers.queue(ctx, msg.chat.id.0, work)
            };
            if !taken {
                metrics.count_bad_input("busy");
                debug!(
                    chat = msg.chat.id.0,
                    "Telegram: a chat sends faster than it is answered; a message was dropped."
                );
            }
        }
        UpdateKind::CallbackQuery(q) => {
            let Some(chat) = q.message.as_ref().map(|m| m.chat().clone()) else {
                // Buttons of inline-mode messages: the bot has none.
                metrics.count_bad_input("button");
                return;
            };
            let Access::Allowed { actor, lang, .. } = access::decide(&cfg, &chat, Some(&q.from))
            else {
                metrics.strangers.inc();
                strangers.note(&chat, Some(&q.from), "button");
                return;
            };
            metrics.count_update("button");
            if handlers.set.len() >= AT_ONCE_MAX + handlers.lanes.len() {
                metrics.count_bad_input("busy");
                return;
            }
            let ctx = ctx.clone();
            handlers
                .set
                .spawn(async move { conversation::on_button(&ctx, q, actor, lang).await });
        }
        UpdateKind::Error(_) => {
            metrics.count_bad_input("update");
            debug!(
                update = u.id.0,
                "Telegram: an update the bot does not understand; ignored."
            );
        }
        _ => metrics.count_update("ignored"),
    }
}
