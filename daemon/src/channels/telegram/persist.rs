//! What the bot keeps in the buffer: where its long poll resumes (an offset is used only within
//! a day of being stored), and the alarm notifications it sent, so that it can edit them later
//! (forgotten after a month).
//!
//! Owns: those policies. Does not own: the tables (`crate::store::telegram`) or the outbox (see
//! `crate::alarms::outbox`).

use crate::context::Core;
use crate::model::Timestamp;
use crate::store::StoreError;

/// An alarm notification as sent to a chat.
pub(crate) use crate::store::TelegramNotice as Notice;

/// A stored offset older than this is not used: Telegram keeps updates for 24 hours and may
/// number them afresh after a quiet week.
const OFFSET_FRESH_MS: i64 = 86_400_000;
/// Notices are forgotten this long after they were sent.
const KEEP_NOTICES_MS: i64 = 30 * 86_400_000;

/// The offset to resume at for bot `bot_id`, when one was stored within the last day.
///
/// # Errors
/// The buffer cannot be read.
pub(crate) async fn load_offset(core: &Core, bot_id: u64) -> Result<Option<i32>, StoreError> {
    let bot = i64::try_from(bot_id).unwrap_or(i64::MAX);
    let since = Timestamp(Timestamp::now().as_millis() - OFFSET_FRESH_MS);
    let offset = core.reader.telegram_offset(bot, since).await?;
    Ok(offset.and_then(|v| i32::try_from(v).ok()))
}

/// Records that updates below `offset` were handled by bot `bot_id`.
///
/// # Errors
/// The writer failed.
pub(crate) async fn save_offset(core: &Core, bot_id: u64, offset: i32) -> Result<(), StoreError> {
    let bot = i64::try_from(bot_id).unwrap_or(i64::MAX);
    core.ingest
        .save_telegram_offset(bot, i64::from(offset))
        .await
}

/// Records a notification that was sent; `done` when it has no buttons (never edited again).
///
/// # Errors
/// The writer failed.
pub(crate) async fn record_notice(core: &Core, n: Notice, done: bool) -> Result<(), StoreError> {
    let forget_before = Timestamp(Timestamp::now().as_millis() - KEEP_NOTICES_MS);
    core.ingest
        .record_telegram_notice(n, done, forget_before)
        .await
}

/// The notices about `alarm` (every alarm when `None`) that may still be edited.
///
/// # Errors
/// The buffer cannot be read.
pub(crate) async fn open_notices(
    core: &Core,
    alarm: Option<i64>,
) -> Result<Vec<Notice>, StoreError> {
    core.reader.open_telegram_notices(alarm).await
}

/// The newest notice about `alarm` in `chat` (edited since or not), to edit rather than send
/// a new message.
///
/// # Errors
/// The buffer cannot be read.
pub(crate) async fn latest_notice(
    core: &Core,
    chat: i64,
    alarm: i64,
) -> Result<Option<Notice>, StoreError> {
    core.reader.latest_telegram_notice(chat, alarm).await
}

/// Records what a notice shows after an edit; `done` when it has no buttons left.
///
/// # Errors
/// The writer failed.
pub(crate) async fn mark_notice(
    core: &Core,
    chat_id: i64,
    message_id: i32,
    shown: String,
    done: bool,
) -> Result<(), StoreError> {
    core.ingest
        .mark_telegram_notice(chat_id, message_id, shown, done)
        .await
}
