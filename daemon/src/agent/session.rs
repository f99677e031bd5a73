//! Conversations in SQLite (`chat_sessions`, `chat_messages`): the questions and answers of a
//! chat, cut to a token budget when sent to the model.
//!
//! Writes go through the buffer's single writer (`IngestHandle::transact`); reads through the
//! read-only connection. Only question/answer text is kept, never tool results (they go stale).
//!
//! Owns: the conversation tables. Does not own: counting tokens (`super::llm`).

use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;

use super::llm::ChatMessage;
use crate::app::AppState;
use crate::model::{Lang, Timestamp};
use crate::store::StoreError;

/// Messages kept per conversation; older ones are deleted.
const KEEP_MESSAGES: i64 = 200;
/// Conversations idle this long are deleted.
const KEEP_IDLE_MS: i64 = 30 * 86_400 * 1000;

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// `user` or `assistant`.
    pub role: String,
    /// Text.
    pub content: String,
    /// Its size in tokens.
    pub tokens: u32,
}

/// The newest messages of a conversation that fit in `budget` tokens, oldest first, starting
/// with a question. Messages older than `idle` before now are not returned: a conversation idle
/// that long starts afresh.
///
/// # Errors
/// The database could not be read.
pub async fn load(
    state: &Arc<AppState>,
    session: &str,
    budget: u32,
    idle: Duration,
) -> Result<Vec<Stored>, StoreError> {
    let session = session.to_owned();
    let since =
        Timestamp::now().as_millis() - i64::try_from(idle.as_millis()).unwrap_or(i64::MAX / 2);
    let rows: Vec<Stored> = state
        .reader
        .with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT role, content, tokens FROM chat_messages WHERE session = ?1 AND ts >= ?2 \
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![session, since, KEEP_MESSAGES], |r| {
                Ok(Stored {
                    role: r.get(0)?,
                    content: r.get(1)?,
                    tokens: r.get::<_, u32>(2)?,
                })
            })?;
            rows.collect()
        })
        .await?;
    Ok(fit(rows, budget))
}

/// Cuts newest-first messages to the budget and returns them oldest first, beginning with a
/// question.
pub fn fit(newest_first: Vec<Stored>, budget: u32) -> Vec<Stored> {
    let mut used = 0u32;
    let mut kept = Vec::new();
    for m in newest_first {
        if used.saturating_add(m.tokens) > budget {
            break;
        }
        used += m.tokens;
        kept.push(m);
    }
    kept.reverse();
    while kept.first().is_some_and(|m| m.role != "user") {
        kept.remove(0);
    }
    kept
}

/// As chat messages for the model.
pub fn to_messages(stored: &[Stored]) -> Vec<ChatMessage> {
    stored
        .iter()
        .map(|m| {
            if m.role == "user" {
                ChatMessage::user(&m.content)
            } else {
                ChatMessage::assistant(&m.content)
            }
        })
        .collect()
}

/// Records a question and its answer.
///
/// # Errors
/// The writer failed or has stopped.
pub async fn append(
    state: &Arc<AppState>,
    session: &str,
    actor: &str,
    channel: &str,
    lang: Lang,
    question: Stored,
    answer: Stored,
) -> Result<(), StoreError> {
    let session = session.to_owned();
    let actor = actor.to_owned();
    let channel = channel.to_owned();
    let lang = match lang {
        Lang::En => "en",
        Lang::Ru => "ru",
    };
    state
        .ingest
        .transact(move |tx| {
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

/// Forgets a conversation (`/reset`).
///
/// # Errors
/// The writer failed or has stopped.
pub async fn reset(state: &Arc<AppState>, session: &str) -> Result<(), StoreError> {
    let session = session.to_owned();
    state
        .ingest
        .transact(move |tx| {
            tx.execute("DELETE FROM chat_messages WHERE session = ?1", [&session])?;
            tx.execute("DELETE FROM chat_sessions WHERE session = ?1", [&session])?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(role: &str, tokens: u32) -> Stored {
        Stored {
            role: role.into(),
            content: format!("{role} {tokens}"),
            tokens,
        }
    }

    #[test]
    fn history_is_cut_by_tokens_and_starts_with_a_question() {
        // Newest first: a5 q4 a3 q2 a1 q0
        let rows = vec![
            m("assistant", 50),
            m("user", 40),
            m("assistant", 30),
            m("user", 20),
            m("assistant", 10),
            m("user", 5),
        ];
        let kept = fit(rows.clone(), 125);
        assert_eq!(kept.iter().map(|m| m.tokens).collect::<Vec<_>>(), [40, 50]);
        let kept = fit(rows.clone(), 1000);
        assert_eq!(kept.len(), 6);
        assert_eq!(kept[0].role, "user");
        // An answer whose question did not fit is dropped too.
        let kept = fit(rows, 135);
        assert_eq!(kept.iter().map(|m| m.tokens).collect::<Vec<_>>(), [40, 50]);
        assert!(fit(Vec::new(), 10).is_empty());
    }
}
