//! Alarm notifications on Telegram: the `telegram` channel of the outbox, and the editor that
//! keeps sent notifications up to date.
//!
//! The outbox (`crate::alarms::outbox`) offers each notification row to [`TelegramChannel`],
//! which sends it to the chat with Ack and Shelve 1h buttons while the alarm still needs them,
//! and records the message (`telegram_notices`). One message per alarm: a notification of the
//! alarm's later life (acknowledged, shelved, cleared, back to normal, out of service) edits
//! the chat's last message about it instead of sending another; a new message goes only where
//! the person must act again (raised anew, a reminder, back from shelving or from out of
//! service still unacknowledged), or when the old message can no longer be edited. An error sends the row back to the outbox,
//! which retries it with backoff until Telegram accepts it; flood control folds bursts into
//! summaries there, and teloxide's `Throttle` keeps Telegram's rate limits and waits out a 429.
//!
//! [`editor`] follows the alarm events (`Alarms::subscribe`): when an alarm is acknowledged,
//! shelved, cleared or back to normal, every open notice about it is edited: the outcome is
//! added under the text and the buttons change or go. Edits that fail (Telegram down, the
//! events missed) are caught up by a periodic pass over the open notices.
//!
//! Owns: the channel and the editing. Does not own: which notifications exist (the alarm
//! engine) or their retries (the outbox).

use std::sync::Arc;
use std::time::Duration;

use teloxide_core::types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::api::Api;
use super::format::Button;
use super::persist::{self, Notice};
use super::text;
use crate::alarms::outbox::{Channel, DeliveryError, DeliveryFuture};
use crate::alarms::{AlarmView, EventKind};
use crate::config::Config;
use crate::context::Core;
use crate::model::{AlarmState, Lang, Timestamp};

/// How often open notices are compared with their alarms (catches missed events and
/// failed edits).
const RECONCILE_EVERY: Duration = Duration::from_secs(300);

/// The language of notifications to `chat`: its person's in `[[users]]`, else its
/// `[[alarms.notify]]` entry's, else the assistant's default.
pub(crate) fn chat_lang(cfg: &Config, chat: i64) -> Lang {
    if let Some(u) = cfg.users.iter().find(|u| u.telegram_id == Some(chat)) {
        return u.lang;
    }
    cfg.alarms
        .notify
        .iter()
        .find(|n| n.channel == "telegram" && n.to.trim().parse::<i64>().ok() == Some(chat))
        .map_or(cfg.agent.language, |n| n.lang)
}

/// The buttons a notification about `v` carries now: Ack while unacknowledged, Shelve 1h
/// while active, unacknowledged and not shelved; none when nothing is left to do.
pub(crate) fn alarm_buttons(
    v: &AlarmView,
    lang: Lang,
    now_ms: i64,
) -> Option<InlineKeyboardMarkup> {
    if v.out_of_service {
        return None;
    }
    let mut row = Vec::new();
    if v.state.is_unacked() {
        row.push(InlineKeyboardButton::callback(
            text::ack_button(lang),
            Button::Ack(v.id).data(),
        ));
    }
    let shelved = v.shelved_until.is_some_and(|t| t > now_ms);
    if v.state == AlarmState::ActiveUnacked && !shelved {
        row.push(InlineKeyboardButton::callback(
            text::shelve_button(lang),
            Button::Shelve(v.id).data(),
        ));
    }
    (!row.is_empty()).then(|| InlineKeyboardMarkup::new([row]))
}

/// What a notice shows for `v`: the status line and which buttons (compared with
/// `Notice::shown` to skip edits that change nothing).
fn shown_key(status: &str, buttons: Option<&InlineKeyboardMarkup>) -> String {
    let names: Vec<&str> = buttons
        .map(|m| {
            m.inline_keyboard
                .iter()
                .flatten()
                .map(|b| b.text.as_str())
                .collect()
        })
        .unwrap_or_default();
    format!("{status}|{}", names.join(","))
}

/// The `telegram` channel of the outbox.
pub(crate) struct TelegramChannel {
    core: Core,
    api: Arc<Api>,
}

impl std::fmt::Debug for TelegramChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramChannel")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl TelegramChannel {
    /// A channel sending through `api`.
    pub(crate) fn new(core: &Core, api: Arc<Api>) -> Self {
        Self {
            core: core.clone(),
            api,
        }
    }

    async fn send(&self, n: crate::alarms::outbox::Notice<'_>) -> Result<(), DeliveryError> {
        let core = &self.core;
        let chat: i64 = n
            .address
            .trim()
            .parse()
            .map_err(|_| DeliveryError(format!("{:?} is not a Telegram chat id", n.address)))?;
        let lang = chat_lang(&core.config(), chat);
        let now = Timestamp::now().as_millis();
        let view = n.alarm_id.and_then(|id| core.alarms.get(id));
        if let Some(v) = &view
            && !asks_to_act(n.kind, v)
        {
            let earlier = persist::latest_notice(core, chat, v.id)
                .await
                .map_err(|e| DeliveryError(format!("cannot read the notifications sent: {e}")))?;
            if let Some(earlier) = earlier {
                match update(core, &self.api, &earlier, v).await {
                    Ok(()) => return Ok(()),
                    // Deleted, or too old to edit: a new message after all.
                    Err(e) if e.is_gone() => {}
                    Err(e) => return Err(DeliveryError(e.to_string())),
                }
            }
        }
        let buttons = view.as_ref().and_then(|v| alarm_buttons(v, lang, now));
        let sent = self
            .api
            .send_plain(ChatId(chat), n.text, buttons.clone())
            .await
            .map_err(|e| DeliveryError(e.to_string()))?;
        let (Some(view), Some(last)) = (view, sent.last()) else {
            return Ok(());
        };
        let notice = Notice {
            chat_id: chat,
            message_id: last.id.0,
            alarm_id: view.id,
            outbox_id: n.id,
            text: n.text.to_owned(),
            lang,
            shown: shown_key("", buttons.as_ref()),
        };
        // The message went out: a failure to remember it only costs the later edit.
        if let Err(e) = persist::record_notice(core, notice.clone(), buttons.is_none()).await {
            warn!(chat, alarm = view.id, error = %e, "Telegram: cannot record a notification; it will not be edited.");
            return Ok(());
        }
        // The alarm may have moved on while the message was on its way.
        if let Some(now_view) = core.alarms.get(view.id)
            && now_view != view
        {
            refresh(core, &self.api, &notice, &now_view).await;
        }
        Ok(())
    }
}

impl Channel for TelegramChannel {
    fn deliver<'a>(&'a self, address: &'a str, text: &'a str) -> DeliveryFuture<'a> {
        self.deliver_notice(crate::alarms::outbox::Notice {
            id: 0,
            address,
            text,
            alarm_id: None,
            kind: "text",
        })
    }

    fn deliver_notice<'a>(
        &'a self,
        notice: crate::alarms::outbox::Notice<'a>,
    ) -> DeliveryFuture<'a> {
        Box::pin(self.send(notice))
    }
}

/// Whether a notification of `kind` about `v` asks the person to act again, and so is a new
/// message; otherwise it edits the last message about the alarm.
fn asks_to_act(kind: &str, v: &AlarmView) -> bool {
    match kind {
        "acked" | "shelved" | "cleared" | "normal" | "out_of_service" => false,
        // Back from shelving or into service while still active and unacknowledged.
        "unshelved" | "in_service" => v.state == AlarmState::ActiveUnacked && !v.out_of_service,
        // raised, reminder, and anything else.
        _ => true,
    }
}

/// Brings one notice in line with its alarm `v`: edits it when what it should show changed.
async fn refresh(core: &Core, api: &Api, n: &Notice, v: &AlarmView) {
    match update(core, api, n, v).await {
        Ok(()) => {}
        Err(e) if e.is_gone() => {
            debug!(chat = n.chat_id, message = n.message_id, error = %e, "Telegram: a notification can no longer be edited.");
        }
        Err(e) => {
            debug!(chat = n.chat_id, message = n.message_id, error = %e, "Telegram: cannot edit a notification yet; will retry.");
        }
    }
}

/// Edits notice `n` to show alarm `v` now (its text, the status line, the buttons left) when
/// that changed, and records what it shows. A notice that can no longer be edited is recorded
/// as final, and the error returned.
async fn update(
    core: &Core,
    api: &Api,
    n: &Notice,
    v: &AlarmView,
) -> Result<(), super::api::TelegramError> {
    let now = Timestamp::now().as_millis();
    let status = text::status_line(v, n.lang, now);
    let buttons = alarm_buttons(v, n.lang, now);
    let key = shown_key(&status, buttons.as_ref());
    if key == n.shown {
        return Ok(());
    }
    let done = buttons.is_none();
    let body = if status.is_empty() {
        n.text.clone()
    } else {
        format!("{}\n\n{status}", n.text)
    };
    let result = api
        .edit(ChatId(n.chat_id), MessageId(n.message_id), &body, buttons)
        .await;
    let mark = match &result {
        Ok(()) => Some(done),
        Err(e) if e.is_gone() => Some(true),
        Err(_) => None,
    };
    if let Some(done) = mark
        && let Err(e) = persist::mark_notice(core, n.chat_id, n.message_id, key, done).await
    {
        warn!(error = %e, "Telegram: cannot record an edited notification.");
    }
    result
}

/// A notice whose alarm no longer exists (its rule was removed): its buttons go.
async fn retire(core: &Core, api: &Api, n: &Notice) {
    let result = api
        .edit(ChatId(n.chat_id), MessageId(n.message_id), &n.text, None)
        .await;
    let settled = result
        .as_ref()
        .map_or_else(super::api::TelegramError::is_gone, |()| true);
    if settled
        && let Err(e) =
            persist::mark_notice(core, n.chat_id, n.message_id, String::new(), true).await
    {
        warn!(error = %e, "Telegram: cannot record an edited notification.");
    }
}

/// Every open notice, compared with its alarm.
async fn reconcile(core: &Core, api: &Api) {
    let notices = match persist::open_notices(core, None).await {
        Ok(n) => n,
        Err(e) => {
            warn!(error = %e, "Telegram: cannot read the open notifications.");
            return;
        }
    };
    for n in notices {
        match core.alarms.get(n.alarm_id) {
            Some(v) => refresh(core, api, &n, &v).await,
            // Alarms not running (yet): nothing to compare with.
            None if core.alarms.list(false).is_empty() => return,
            None => retire(core, api, &n).await,
        }
    }
}

/// Follows alarm events and edits the notices about them, until `token` is cancelled. Runs a
/// full pass at start and every few minutes.
pub(crate) async fn editor(
    core: Core,
    api: Arc<Api>,
    mut events: broadcast::Receiver<(EventKind, AlarmView)>,
    token: CancellationToken,
) {
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => reconcile(&core, &api).await,
            event = events.recv() => match event {
                Ok((_, view)) => match persist::open_notices(&core, Some(view.id)).await {
                    Ok(notices) => {
                        for n in notices {
                            refresh(&core, &api, &n, &view).await;
                        }
                    }
                    Err(e) => warn!(error = %e, "Telegram: cannot read the open notifications."),
                },
                Err(broadcast::error::RecvError::Lagged(_)) => reconcile(&core, &api).await,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    fn view(state: AlarmState) -> AlarmView {
        AlarmView {
            id: 7,
            alert: "Leak".into(),
            sensor: "b.leak".into(),
            name: "Leak".into(),
            location: "B".into(),
            state,
            severity: Severity::Critical,
            value: Some(1.0),
            unit: String::new(),
            message: "water".into(),
            raised_ms: Some(0),
            acked_by: None,
            shelved_until: None,
            out_of_service: false,
            ack_required: true,
        }
    }

    fn datas(m: Option<InlineKeyboardMarkup>) -> Vec<String> {
        m.map(|m| {
            m.inline_keyboard
                .into_iter()
                .flatten()
                .filter_map(|b| match b.kind {
                    teloxide_core::types::InlineKeyboardButtonKind::CallbackData(d) => Some(d),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
    }

    #[test]
    fn buttons_follow_the_alarm_state() {
        assert_eq!(
            datas(alarm_buttons(&view(AlarmState::ActiveUnacked), Lang::En, 0)),
            ["ack:7", "shelve:7"]
        );
        let mut shelved = view(AlarmState::ActiveUnacked);
        shelved.shelved_until = Some(10);
        assert_eq!(datas(alarm_buttons(&shelved, Lang::En, 0)), ["ack:7"]);
        assert_eq!(
            datas(alarm_buttons(&shelved, Lang::En, 11)),
            ["ack:7", "shelve:7"]
        );
        assert_eq!(
            datas(alarm_buttons(
                &view(AlarmState::ClearedUnacked),
                Lang::Ru,
                0
            )),
            ["ack:7"]
        );
        assert!(alarm_buttons(&view(AlarmState::ActiveAcked), Lang::En, 0).is_none());
        assert!(alarm_buttons(&view(AlarmState::Normal), Lang::En, 0).is_none());
        let mut oos = view(AlarmState::ActiveUnacked);
        oos.out_of_service = true;
        assert!(alarm_buttons(&oos, Lang::En, 0).is_none());
    }

    #[test]
    fn only_what_asks_to_act_again_is_a_new_message() {
        let active = view(AlarmState::ActiveUnacked);
        let acked = view(AlarmState::ActiveAcked);
        assert!(asks_to_act("raised", &active));
        assert!(asks_to_act("reminder", &active));
        assert!(asks_to_act("unshelved", &active));
        assert!(!asks_to_act("unshelved", &acked));
        for kind in ["acked", "shelved", "cleared", "normal", "out_of_service"] {
            assert!(!asks_to_act(kind, &active), "{kind}");
        }
    }

    #[test]
    fn the_shown_key_tells_status_and_buttons_apart() {
        let v = view(AlarmState::ActiveUnacked);
        let a = shown_key("", alarm_buttons(&v, Lang::En, 0).as_ref());
        let b = shown_key("", None);
        assert_ne!(a, b);
        assert_eq!(a, shown_key("", alarm_buttons(&v, Lang::En, 0).as_ref()));
    }
}
