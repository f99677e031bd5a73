//! Conversations: a text message goes to the assistant (`Ctx::agent`) while the chat
//! shows "typing…". When the LLM has not answered within `[agent] patience`, the answer from
//! local data goes first (headed as such) and the LLM's follows as a second message when it
//! comes. Answers go back formatted (plain text when Telegram rejects the
//! markup), split at 4096 characters, with its pictures as photos and its proposed actions as
//! a Confirm button. Button presses (Ack, Shelve 1h, Confirm) act as the person who pressed,
//! with their own role; the alarm service checks the role and writes the audit log.
//!
//! Owns: the message and button handlers. Does not own: the answers (see `crate::agent`),
//! voice notes (see `super::voice`), alarm notifications (see `super::notify`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use teloxide_core::types::{
    CallbackQuery, ChatAction, ChatId, InlineKeyboardButton, InlineKeyboardMarkup,
};
use tracing::{debug, warn};

use super::api::Api;
use super::format::Button;
use super::text;
use crate::agent::Agent;
use crate::agent::{Attachment, ConfirmError, Question, Reply, Source};
use crate::context::Core;
use crate::model::{Actor, Lang};
use crate::render::Measure;

/// "typing…" lasts about 5 s on the client: it is renewed this often.
const TYPING_EVERY: Duration = Duration::from_secs(4);
/// How long the Shelve button shelves.
pub(crate) const SHELVE_FOR: Duration = Duration::from_secs(3600);

/// What a handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    /// What the gateway's components share.
    pub(crate) core: Core,
    /// The assistant.
    pub(crate) agent: Agent,
    /// The Bot API.
    pub(crate) api: Arc<Api>,
}

/// Runs `fut` while `chat` shows `action` ("typing…"), renewed every 4 s.
pub(crate) async fn with_action<F: Future>(
    api: &Api,
    chat: ChatId,
    action: ChatAction,
    fut: F,
) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let typing = async {
        loop {
            api.chat_action(chat, action).await;
            tokio::time::sleep(TYPING_EVERY).await;
        }
    };
    let mut typing = std::pin::pin!(typing);
    loop {
        tokio::select! {
            biased;
            out = &mut fut => return out,
            () = &mut typing => {}
        }
    }
}

/// The conversation key of a chat.
pub(crate) fn session(chat: ChatId) -> String {
    format!("telegram:{}", chat.0)
}

/// Answers a text message (a question or a slash command).
pub(crate) async fn on_text(
    ctx: &Ctx,
    chat: ChatId,
    text: String,
    actor: Actor,
    lang: Lang,
    known: bool,
) {
    let q = Question {
        text,
        session: session(chat),
        actor,
        lang: (!known).then_some(lang),
    };
    let patience = ctx.core.config().agent.patience;
    let full = ctx.agent.ask(&ctx.core, q.clone());
    let mut full = std::pin::pin!(full);
    let first = with_action(&ctx.api, chat, ChatAction::Typing, async {
        if patience.is_zero() {
            Some((&mut full).await)
        } else {
            tokio::time::timeout(patience, &mut full).await.ok()
        }
    })
    .await;
    if let Some(reply) = first {
        send_reply(ctx, chat, &reply).await;
        return;
    }
    // The LLM is slow: the local answer now, the LLM's when it comes.
    let local = ctx.agent.answer_locally(&ctx.core, &q, "patience").await;
    send_reply(ctx, chat, &local).await;
    let mut later = with_action(&ctx.api, chat, ChatAction::Typing, full).await;
    if later.source != Source::Llm {
        // It fell back to local data after all: the person has that answer already.
        debug!(
            chat = chat.0,
            "Telegram: the LLM did not answer after the local answer."
        );
        return;
    }
    later.attachments.retain(|a| !local.attachments.contains(a));
    send_reply(ctx, chat, &later).await;
}

/// Sends an answer: its text, its pictures, its confirmations. Failures are logged (the
/// person can ask again); a picture that cannot be drawn is explained in a message.
pub(crate) async fn send_reply(ctx: &Ctx, chat: ChatId, reply: &Reply) {
    if let Err(e) = ctx.api.send_formatted(chat, &reply.text, None).await {
        warn!(chat = chat.0, error = %e, "Telegram: cannot send an answer.");
        return;
    }
    for a in &reply.attachments {
        send_picture(ctx, chat, a, reply.lang).await;
    }
    for c in &reply.confirmations {
        let button = InlineKeyboardButton::callback(
            text::CONFIRM_BUTTON,
            Button::Confirm(c.token.clone()).data(),
        );
        let markup = InlineKeyboardMarkup::new([[button]]);
        if let Err(e) = ctx.api.send_plain(chat, &c.prompt, Some(markup)).await {
            warn!(chat = chat.0, error = %e, "Telegram: cannot send a confirmation button.");
        }
    }
}

/// Draws and sends one picture, or says why there is none.
async fn send_picture(ctx: &Ctx, chat: ChatId, a: &Attachment, lang: Lang) {
    let (png, name, caption) = match a {
        Attachment::FloorPlan { floor, measure } => {
            let m = Measure::parse(measure).unwrap_or_default();
            let png = with_action(
                &ctx.api,
                chat,
                ChatAction::UploadPhoto,
                crate::render::plan_png(&ctx.core, floor, m, lang),
            )
            .await;
            (png, "plan.png", text::plan_caption(lang, floor, m.kind()))
        }
        Attachment::Chart { sensor, since_secs } => {
            let png = with_action(
                &ctx.api,
                chat,
                ChatAction::UploadPhoto,
                crate::render::chart_png(&ctx.core, sensor, Duration::from_secs(*since_secs), lang),
            )
            .await;
            (
                png,
                "chart.png",
                text::chart_caption(lang, sensor, *since_secs),
            )
        }
    };
    let result = match png {
        Ok(png) => ctx
            .api
            .send_photo(chat, png, name, &caption)
            .await
            .map(|_| ()),
        Err(e) => {
            if !e.is_request_error() {
                warn!(chat = chat.0, error = %e, "Telegram: cannot draw a picture.");
            }
            ctx.api
                .send_plain(chat, &text::no_picture(lang, &e.message(lang)), None)
                .await
                .map(|_| ())
        }
    };
    if let Err(e) = result {
        warn!(chat = chat.0, error = %e, "Telegram: cannot send a picture.");
    }
}

/// Handles a button press by `actor` (already allowed by the access check).
pub(crate) async fn on_button(ctx: &Ctx, q: CallbackQuery, actor: Actor, lang: Lang) {
    let button = match Button::parse(q.data.as_deref()) {
        Ok(b) => b,
        Err(e) => {
            ctx.api.metrics.count_bad_input("button");
            debug!(user = %actor.user, error = %e, "Telegram: a button with unknown data.");
            answer(ctx, &q, &text::unknown_button(lang), false).await;
            return;
        }
    };
    let core = &ctx.core;
    match button {
        Button::Ack(id) => match core.alarms.ack(id, actor).await {
            Ok(_) => answer(ctx, &q, &text::action_done(lang, id, false), false).await,
            Err(e) => answer(ctx, &q, &text::action_refused(lang, &e), true).await,
        },
        Button::Shelve(id) => match core.alarms.shelve(id, SHELVE_FOR, actor).await {
            Ok(_) => answer(ctx, &q, &text::action_done(lang, id, true), false).await,
            Err(e) => answer(ctx, &q, &text::action_refused(lang, &e), true).await,
        },
        Button::Confirm(token) => {
            let result = ctx.agent.confirm(core, &token, actor).await;
            // A confirmation is used up once tried (or expired); someone else's stays.
            let (reply, used_up) = match &result {
                Ok(outcome) => (text::action_done(lang, outcome.alarm.id, false), true),
                Err(e) => (
                    text::confirm_refused(lang, e),
                    !matches!(e, ConfirmError::NotYours),
                ),
            };
            answer(ctx, &q, &reply, result.is_err()).await;
            // The prompt keeps its words and loses its button.
            if used_up && let Some(m) = q.message.as_ref().and_then(|m| m.regular_message()) {
                let prompt = m.text().unwrap_or_default();
                let edited = format!("{prompt}\n\n{reply}");
                if let Err(e) = ctx.api.edit(m.chat.id, m.id, &edited, None).await {
                    debug!(error = %e, "Telegram: cannot update a confirmation prompt.");
                }
            }
        }
    }
}

async fn answer(ctx: &Ctx, q: &CallbackQuery, text: &str, alert: bool) {
    if let Err(e) = ctx.api.answer_button(&q.id, text, alert).await {
        debug!(error = %e, "Telegram: cannot answer a button press.");
    }
}
