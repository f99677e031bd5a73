//! What the Telegram bot keeps in the buffer (`telegram_state`, `telegram_notices`): where its
//! long poll resumes, and the alarm notifications it sent, so that it can edit them later.
//!
//! Owns: those two tables. Does not own: when an offset is too old to use or how long notices
//! are worth keeping (`crate::channels::telegram::persist`).

use rusqlite::{OptionalExtension, params};

use super::reader::Lane;
use super::{IngestHandle, Reader, StoreError};
use crate::model::{Lang, Timestamp};

/// An alarm notification as sent to a chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelegramNotice {
    /// Chat.
    pub chat_id: i64,
    /// The message in that chat.
    pub message_id: i32,
    /// The alarm it is about.
    pub alarm_id: i64,
    /// The outbox row it delivered.
    pub outbox_id: i64,
    /// The text as sent (without a status line).
    pub text: String,
    /// Language of the chat's notifications.
    pub lang: Lang,
    /// The status the message shows now (`""` as sent).
    pub shown: String,
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

impl Reader {
    /// The update offset bot `bot_id` stored at or after `since`, if any.
    ///
    /// # Errors
    /// The buffer cannot be read.
    pub async fn telegram_offset(
        &self,
        bot_id: i64,
        since: Timestamp,
    ) -> Result<Option<i64>, StoreError> {
        self.run(Lane::Quick, move |c| {
            c.conn
                .query_row(
                    "SELECT update_offset FROM telegram_state WHERE bot_id = ?1 AND updated_ms >= ?2",
                    params![bot_id, since.as_millis()],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
        })
        .await
    }

    /// The notices about `alarm` (every alarm when `None`) that may still be edited, oldest
    /// first, at most 500.
    ///
    /// # Errors
    /// The buffer cannot be read.
    pub async fn open_telegram_notices(
        &self,
        alarm: Option<i64>,
    ) -> Result<Vec<TelegramNotice>, StoreError> {
        self.run(Lane::Quick, move |c| {
            let mut stmt = c.conn.prepare_cached(
                "SELECT chat_id, message_id, alarm_id, outbox_id, text, lang, shown \
                 FROM telegram_notices WHERE final = 0 AND (?1 IS NULL OR alarm_id = ?1) \
                 ORDER BY sent_ms LIMIT 500",
            )?;
            let rows = stmt.query_map([alarm], |r| {
                Ok(TelegramNotice {
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

    /// The newest notice about `alarm` sent to `chat`, edited or not.
    ///
    /// # Errors
    /// The buffer cannot be read.
    pub async fn latest_telegram_notice(
        &self,
        chat: i64,
        alarm: i64,
    ) -> Result<Option<TelegramNotice>, StoreError> {
        self.run(Lane::Quick, move |c| {
            c.conn
                .query_row(
                    "SELECT chat_id, message_id, alarm_id, outbox_id, text, lang, shown \
                     FROM telegram_notices WHERE chat_id = ?1 AND alarm_id = ?2 \
                     ORDER BY sent_ms DESC, message_id DESC LIMIT 1",
                    params![chat, alarm],
                    |r| {
                        Ok(TelegramNotice {
                            chat_id: r.get(0)?,
                            message_id: r.get(1)?,
                            alarm_id: r.get(2)?,
                            outbox_id: r.get(3)?,
                            text: r.get(4)?,
                            lang: parse_lang(&r.get::<_, String>(5)?),
                            shown: r.get(6)?,
                        })
                    },
                )
                .optional()
        })
        .await
    }
}

impl IngestHandle {
    /// Records that updates below `offset` were handled by bot `bot_id`.
    ///
    /// # Errors
    /// The writer failed.
    pub async fn save_telegram_offset(&self, bot_id: i64, offset: i64) -> Result<(), StoreError> {
        let now = Timestamp::now().as_millis();
        self.transact(move |tx| {
            tx.execute(
                "INSERT INTO telegram_state (bot_id, update_offset, updated_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (bot_id) DO UPDATE SET update_offset = excluded.update_offset, \
                 updated_ms = excluded.updated_ms",
                params![bot_id, offset, now],
            )
        })
        .await
        .map(|_| ())
    }

    /// Records a notification that was sent (`done` when it will never be edited again) and
    /// forgets those sent before `forget_before`.
    ///
    /// # Errors
    /// The writer failed.
    pub async fn record_telegram_notice(
        &self,
        n: TelegramNotice,
        done: bool,
        forget_before: Timestamp,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now().as_millis();
        self.transact(move |tx| {
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
                [forget_before.as_millis()],
            )
        })
        .await
        .map(|_| ())
    }

    /// Records what a notice shows after an edit; `done` when it has no buttons left.
    ///
    /// # Errors
    /// The writer failed.
    pub async fn mark_telegram_notice(
        &self,
        chat_id: i64,
        message_id: i32,
        shown: String,
        done: bool,
    ) -> Result<(), StoreError> {
        self.transact(move |tx| {
            tx.execute(
                "UPDATE telegram_notices SET shown = ?3, final = ?4 WHERE chat_id = ?1 AND message_id = ?2",
                params![chat_id, message_id, shown, done],
            )
        })
        .await
        .map(|_| ())
    }
}
