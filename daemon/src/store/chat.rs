//! Conversations with the assistant (`chat_sessions`, `chat_messages`): the questions and answers
//! of each chat, the newest kept, idle chats forgotten.
//!
//! Owns: the conversation tables. Does not own: what a conversation is cut to for the model
//! (`crate::agent::session`).

use rusqlite::params;

use super::reader::Lane;
use super::{IngestHandle, Reader, StoreError};
use crate::model::{Lang, Timestamp};

/// Messages kept per conversation; older ones are deleted.
const KEEP_MESSAGES: i64 = 200;
/// Conversations idle this long are deleted.
const KEEP_IDLE_MS: i64 = 30 * 86_400 * 1000;

/// One stored message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessageRow {
    /// `user` or `assistant`.
    pub role: String,
    /// Text.
    pub content: String,
    /// Its size in tokens.
    pub tokens: u32,
}

impl Reader {
    /// The newest messages (at most the number kept) of conversation `session` written at or
    /// after `since`, newest first.
    ///
    /// # Errors
    /// The database could not be read.
    pub async fn chat_messages(
        &self,
        session: &str,
        since: Timestamp,
    ) -> Result<Vec<ChatMessageRow>, StoreError> {
        let session = session.to_owned();
        self.run(Lane::Quick, move |c| {
            let mut stmt = c.conn.prepare_cached(
                "SELECT role, content, tokens FROM chat_messages WHERE session = ?1 AND ts >= ?2 \
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![session, since.as_millis(), KEEP_MESSAGES], |r| {
                Ok(ChatMessageRow {
                    role: r.get(0)?,
                    content: r.get(1)?,
                    tokens: r.get::<_, u32>(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

impl IngestHandle {
    /// Records a question and its answer in conversation `session` (who asked, on which
    /// channel, in which language), keeps its newest messages and forgets conversations idle
    /// for a month.
    ///
    /// # Errors
    /// The writer failed or has stopped.
    pub async fn append_chat(
        &self,
        session: &str,
        actor: &str,
        channel: &str,
        lang: Lang,
        question: ChatMessageRow,
        answer: ChatMessageRow,
    ) -> Result<(), StoreError> {
        let session = session.to_owned();
        let actor = actor.to_owned();
        let channel = channel.to_owned();
        let lang = match lang {
            Lang::En => "en",
            Lang::Ru => "ru",
        };
        self.transact(move |tx| {
            let now = Timestamp::now().as_millis();
            tx.execute(
                "INSERT INTO chat_sessions (session, channel, actor, lang, created_ms, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) \
                 ON CONFLICT (session) DO UPDATE SET actor = ?3, lang = ?4, updated_ms = ?5",
                params![session, channel, actor, lang, now],
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO chat_messages (session, ts, role, content, tokens) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for m in [&question, &answer] {
                insert.execute(params![session, now, m.role, m.content, m.tokens])?;
            }
            tx.execute(
                "DELETE FROM chat_messages WHERE session = ?1 AND id <= \
                 (SELECT id FROM chat_messages WHERE session = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![session, KEEP_MESSAGES],
            )?;
            // Forget conversations idle for a month.
            let old = now - KEEP_IDLE_MS;
            tx.execute(
                "DELETE FROM chat_messages WHERE session IN \
                 (SELECT session FROM chat_sessions WHERE updated_ms < ?1)",
                [old],
            )?;
            tx.execute("DELETE FROM chat_sessions WHERE updated_ms < ?1", [old])?;
            Ok(())
        })
        .await
    }

    /// Forgets conversation `session`.
    ///
    /// # Errors
    /// The writer failed or has stopped.
    pub async fn reset_chat(&self, session: &str) -> Result<(), StoreError> {
        let session = session.to_owned();
        self.transact(move |tx| {
            tx.execute("DELETE FROM chat_messages WHERE session = ?1", [&session])?;
            tx.execute("DELETE FROM chat_sessions WHERE session = ?1", [&session])?;
            Ok(())
        })
        .await
    }
}
