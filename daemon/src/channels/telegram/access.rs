//! Who the bot serves. A private chat is served when the person is in `[[users]]` with their
//! `telegram_id`; a group chat when its id is in `[telegram] allowed_chats` (everyone in it may
//! ask; only `[[users]]` operators may act on alarms). Everyone else is a stranger: the bot
//! sends them nothing at all (no answer, no "typing…", no button answer), logs them (at most
//! once per [`LOG_EVERY`] per identity) and counts them.
//!
//! Decisions are pure and made on the poll loop before anything is sent. Owns: that decision
//! and the stranger log. Does not own: what an allowed person may do (the alarm service checks
//! roles, see `crate::alarms`).

use std::collections::HashMap;
use std::time::Duration;

use teloxide_core::types::{Chat, User};
use tokio::time::Instant;
use tracing::warn;

use crate::config::Config;
use crate::model::{Actor, Lang};

/// A stranger is logged at most this often.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(600);
/// Identities remembered by the stranger log before it starts afresh.
const LOG_CAPACITY: usize = 1000;

/// What the bot does with an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Serve it.
    Allowed {
        /// Who asks (role from `[[users]]`; none for an unlisted member of an allowed group).
        actor: Actor,
        /// The language of the bot's own words to this person.
        lang: Lang,
        /// The person is in `[[users]]` (the assistant then knows their language itself).
        known: bool,
    },
    /// Ignore it completely.
    Stranger,
}

fn user_id(u: &User) -> i64 {
    i64::try_from(u.id.0).unwrap_or(i64::MAX)
}

/// The language Telegram reports for a person, else the assistant's default.
fn client_lang(cfg: &Config, from: Option<&User>) -> Lang {
    match from.and_then(|u| u.language_code.as_deref()) {
        Some(code) if code.starts_with("ru") => Lang::Ru,
        Some(code) if code.starts_with("en") => Lang::En,
        _ => cfg.agent.language,
    }
}

/// Decides on a message or button press in `chat` from `from`.
pub(crate) fn decide(cfg: &Config, chat: &Chat, from: Option<&User>) -> Access {
    let known = from.and_then(|u| {
        let id = user_id(u);
        cfg.users.iter().find(|c| c.telegram_id == Some(id))
    });
    if chat.is_private() {
        // In a private chat the chat is the person.
        return match (from, known) {
            (Some(u), Some(person)) if user_id(u) == chat.id.0 => Access::Allowed {
                actor: Actor::by_telegram_id(&cfg.users, user_id(u)),
                lang: person.lang,
                known: true,
            },
            _ => Access::Stranger,
        };
    }
    if (chat.is_group() || chat.is_supergroup()) && cfg.telegram.allowed_chats.contains(&chat.id.0)
    {
        let actor = match from {
            Some(u) => Actor::by_telegram_id(&cfg.users, user_id(u)),
            // Sent as the group itself (an anonymous admin): nobody in particular.
            None => Actor {
                user: format!("telegram:{}", chat.id.0),
                channel: "telegram".into(),
                role: None,
            },
        };
        return Access::Allowed {
            actor,
            lang: known.map_or_else(|| client_lang(cfg, from), |p| p.lang),
            known: known.is_some(),
        };
    }
    Access::Stranger
}

/// Logs strangers, each at most once per [`LOG_EVERY`].
#[derive(Debug, Default)]
pub(crate) struct StrangerLog {
    seen: HashMap<(i64, i64), Instant>,
}

impl StrangerLog {
    /// Notes a stranger's update; logs it unless this identity was logged recently.
    pub(crate) fn note(&mut self, chat: &Chat, from: Option<&User>, what: &str) {
        let user = from.map_or(0, user_id);
        let key = (chat.id.0, user);
        let now = Instant::now();
        if self
            .seen
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < LOG_EVERY)
        {
            return;
        }
        if self.seen.len() >= LOG_CAPACITY {
            self.seen.clear();
        }
        self.seen.insert(key, now);
        let username = from.and_then(|u| u.username.as_deref()).unwrap_or("");
        warn!(
            chat = chat.id.0,
            user,
            username,
            what,
            "Telegram: ignored a stranger (not in [[users]] with telegram_id, nor an allowed group); \
             nothing was sent. Further updates from them are logged at most every 10 minutes."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UserConfig;
    use crate::model::Role;

    fn chat(json: serde_json::Value) -> Chat {
        serde_json::from_value(json).unwrap()
    }

    fn user(id: u64, lang: Option<&str>) -> User {
        serde_json::from_value(serde_json::json!({
            "id": id, "is_bot": false, "first_name": "X", "language_code": lang
        }))
        .unwrap()
    }

    fn config() -> Config {
        let mut cfg = crate::config::parse_str(
            "[gateway]\nid = \"gw\"\n[telegram]\nallowed_chats = [-100200]\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        cfg.users = vec![
            UserConfig {
                login: "ivan".into(),
                unix_user: None,
                name: None,
                role: Role::Operator,
                telegram_id: Some(11),
                office_login: None,
                lang: Lang::Ru,
                notify: false,
                min_severity: crate::model::Severity::Low,
            },
            UserConfig {
                login: "olga".into(),
                unix_user: None,
                name: None,
                role: Role::Viewer,
                telegram_id: None,
                office_login: None,
                lang: Lang::En,
                notify: false,
                min_severity: crate::model::Severity::Low,
            },
        ];
        cfg
    }

    fn private(id: i64) -> Chat {
        chat(serde_json::json!({"id": id, "type": "private", "first_name": "X"}))
    }

    fn group(id: i64) -> Chat {
        chat(serde_json::json!({"id": id, "type": "supergroup", "title": "Ops"}))
    }

    #[test]
    fn listed_people_are_served_in_private() {
        let cfg = config();
        match decide(&cfg, &private(11), Some(&user(11, Some("en")))) {
            Access::Allowed { actor, lang, known } => {
                assert_eq!(actor.user, "ivan");
                assert_eq!(actor.role, Some(Role::Operator));
                assert_eq!(lang, Lang::Ru, "[[users]] lang wins over the client's");
                assert!(known);
            }
            Access::Stranger => panic!("ivan refused"),
        }
    }

    #[test]
    fn strangers_and_unlisted_groups_are_ignored() {
        let cfg = config();
        assert_eq!(
            decide(&cfg, &private(12), Some(&user(12, None))),
            Access::Stranger
        );
        assert_eq!(decide(&cfg, &private(11), None), Access::Stranger);
        // A listed person in a group that is not allowed.
        assert_eq!(
            decide(&cfg, &group(-999), Some(&user(11, None))),
            Access::Stranger
        );
        // Channels are never served.
        let channel = chat(serde_json::json!({"id": -100200, "type": "channel", "title": "C"}));
        assert_eq!(decide(&cfg, &channel, None), Access::Stranger);
    }

    #[test]
    fn anyone_in_an_allowed_group_may_ask_but_has_no_role() {
        let cfg = config();
        match decide(&cfg, &group(-100200), Some(&user(77, Some("ru-RU")))) {
            Access::Allowed { actor, lang, known } => {
                assert_eq!(actor.user, "telegram:77");
                assert_eq!(actor.role, None);
                assert_eq!(lang, Lang::Ru);
                assert!(!known);
            }
            Access::Stranger => panic!("group member refused"),
        }
        match decide(&cfg, &group(-100200), Some(&user(11, None))) {
            Access::Allowed { actor, .. } => assert_eq!(actor.role, Some(Role::Operator)),
            Access::Stranger => panic!("ivan refused in the group"),
        }
    }
}
