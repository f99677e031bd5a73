//! Conversations: the questions and answers of a chat, cut to a token budget when sent to the
//! model. Only question/answer text is kept, never tool results (they go stale).
//!
//! Owns: which messages of a conversation the model sees. Does not own: storing them
//! (`crate::store::chat`) or counting tokens (`super::llm`).

use std::time::Duration;

use super::llm::ChatMessage;
use crate::context::Core;
use crate::model::{Lang, Timestamp};
use crate::store::StoreError;

/// One stored message of a conversation.
pub use crate::store::ChatMessageRow as Stored;

/// The newest messages of a conversation that fit in `budget` tokens, oldest first, starting
/// with a question. Messages older than `idle` before now are not returned: a conversation idle
/// that long starts afresh.
///
/// # Errors
/// The database could not be read.
pub async fn load(
    core: &Core,
    session: &str,
    budget: u32,
    idle: Duration,
) -> Result<Vec<Stored>, StoreError> {
    let since = Timestamp(
        Timestamp::now().as_millis() - i64::try_from(idle.as_millis()).unwrap_or(i64::MAX / 2),
    );
    let rows = core.reader.chat_messages(session, since).await?;
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
    core: &Core,
    session: &str,
    actor: &str,
    channel: &str,
    lang: Lang,
    question: Stored,
    answer: Stored,
) -> Result<(), StoreError> {
    core.ingest
        .append_chat(session, actor, channel, lang, question, answer)
        .await
}

/// Forgets a conversation (`/reset`).
///
/// # Errors
/// The writer failed or has stopped.
pub async fn reset(core: &Core, session: &str) -> Result<(), StoreError> {
    core.ingest.reset_chat(session).await
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
