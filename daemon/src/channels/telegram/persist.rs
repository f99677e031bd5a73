//! What the bot keeps in the buffer (`telegram_state`, `telegram_notices`): where its long poll
//! resumes, and the alarm notifications it sent, so that it can edit them later.
//!
//! Writes go through the buffer's single writer (`IngestHandle::transact`), reads through the
//! read-only connection. Owns: those two tables. Does not own: the outbox (see
//! `crate::alarms::outbox`).

use rusqlite::{OptionalExtension, params};

use crate::app::AppState;
use crate::model::{Lang, Timestamp};
use crate::store::StoreError;

/// A stored offset older than this is not used: Telegram keeps updates for 24 hours and may
/// number them afresh after a quiet week.
const OFFSET_FRESH_MS: i64 = 86_400_000;
/// Notices are forgotten this long after they were sent.
const KEEP_NOTICES_MS: i64 = 30 * 86_400_000;

/// An alarm notification as sent to a chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Notice {
    /// Chat.
    pub(crate) chat_id: i64,
    /// The message in that chat.
    pub(crate) message_id: i32,
    /// The alarm it is about.
    pub(crate) alarm_id: i64,
    /// The outbox row it delivered.
    pub(crate) outbox_id: i64,
    /// The text as sent (without a status line).
    pub(crate) text: String,
    /// Language of the chat's notifications.
    pub(crate) lang: Lang,
    /// The status the message shows now (`""` as sent).
    pub(crate) shown: String,
}

fn lang_str(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "en",
        Lang::Ru => "ru",
    }
}

fn parse_lang(s: &str) -> Lang {
    if s == "ru" { Lang::Ru } else { Lang::En }
}

/// The offset to resume at for bot `bot_id`, when one was stored within the last day.
///
/// # Errors
/// The buffer cannot be read.
pub(crate) async fn load_offset(state: &AppState, bot_id: u64) -> Result<Option<i32>, StoreError> {
    let bot = i64::try_from(bot_id).unwrap_or(i64::MAX);
    let since = Timestamp::now().as_millis() - OFFSET_FRESH_MS;
    state
        .reader
        .with(move |c| {
            c.query_row(
                "SELECT update_offset FROM telegram_state WHERE bot_id = ?1 AND updated_ms >= ?2",
                params![bot, since],
                |r| r.get::<_, i64>(0),
            )
            .optional()
        })
        .await
        .map(|o| o.and_then(|v| i32::try_from(v).ok()))
}

/// Records that updates below `offset` were handled by bot `bot_id`.
///
/// # Errors
/// The writer failed.
pub(crate) async fn save_offset(
    state: &AppState,
    bot_id: u64,
    offset: i32,
) -> Result<(), StoreError> {
    let bot = i64::try_from(bot_id).unwrap_or(i64::MAX);
    let now = Timestamp::now().as_millis();
    state
        .ingest
        .transact(move |tx| {
            tx.execute(
                "INSERT INTO telegram_state (bot_id, update_offset, updated_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (bot_id) DO UPDATE SET update_offset = excluded.update_offset, \
                 updated_ms = excluded.updated_ms",
                params![bot, i64::from(offset), now],
            )
        })
        .await
        .map(|_| ())
}

/// Records a notification that was sent; `done` when it has no buttons (never edited again).
///
/// # Errors
/// The writer failed.
pub(crate) async fn record_notice(
    state: &AppState,
    n: Notice,
    done: bool,
) -> Result<(), StoreError> {
    let now = Timestamp::now().as_millis();
    state
        .ingest
        .transact(move |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO telegram_notices (chat_id, message_id, alarm_id, outbox_id, \
                 text, lang, shown, final, sent_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    n.chat_id,
                    n.message_id,
                    n.alarm_id,
                    n.outbox_id,
                    n.text,
                    lang_str(n.lang),
                    n.shown,
                    done,
                    now
                ],
            )?;
            tx.execute(
                "DELETE FROM telegram_notices WHERE sent_ms < ?1",
                [now - KEEP_NOTICES_MS],
            )
        })
        .await
        .map(|_| ())
}

/// The notices about `alarm` (every alarm when `None`) that may still be edited.
///
/// # Errors
/// The buffer cannot be read.
pub(crate) async fn open_notices(
    state: &AppState,
    alarm: Option<i64>,
) -> Result<Vec<Notice>, StoreError> {
    state
        .reader
        .with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT chat_id, message_id, alarm_id, outbox_id, text, lang, shown \
                 FROM telegram_notices WHERE final = 0 AND (?1 IS NULL OR alarm_id = ?1) \
                 ORDER BY sent_ms LIMIT 500",
            )?;
            let rows = stmt.query_map([alarm], |r| {
                Ok(Notice {
                    chat_id: r.get(0)?,
                    message_id: r.get(1)?,
                    alarm_id: r.get(2)?,
                    outbox_id: r.get(3)?,
                    text: r.get(4)?,
                    lang: parse_lang(&r.get::<_, String>(5)?),
                    shown: r.get(6)?,
                })
            })?;
            rows.collect()
        })
        .await
}

/// Records what a notice shows after an edit; `done` when it has no buttons left.
///
/// # Errors
/// The writer failed.
pub(crate) async fn mark_notice(
    state: &AppState,
    chat_id: i64,
    message_id: i32,
    shown: String,
    done: bool,
) -> Result<(), StoreError> {
    state
        .ingest
        .transact(move |tx| {
            tx.execute(
                "UPDATE telegram_notices SET shown = ?3, final = ?4 WHERE chat_id = ?1 AND message_id = ?2",
                params![chat_id, message_id, shown, done],
            )
        })
        .await
        .map(|_| ())
}
