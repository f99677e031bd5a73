//! `[[users]]` in `markoff.toml`: the people who may use the gateway's channels, with their
//! roles, languages and notification wishes; finding the [`Actor`] behind a login or a Telegram id.

use serde::Deserialize;

use crate::model::{Actor, Lang, Role, Severity};

/// `[[users]]`: a person who may talk to the gateway, and what they may do.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Short login name (`ivan`); also the name the CLI and LAN page act under.
    pub login: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// `viewer` (may ask) or `operator` (may also acknowledge and shelve alarms).
    pub role: Role,
    /// The person's Unix account on the gateway: a local CLI call from it (through the API
    /// socket, whose kernel-checked peer uid names the caller) acts as this login.
    #[serde(default)]
    pub unix_user: Option<String>,
    /// Numeric Telegram user id, if the person uses the bot.
    #[serde(default)]
    pub telegram_id: Option<i64>,
    /// The person's login in the central office web application (`markoff-central serve`): an
    /// acknowledgement or shelving asked for there acts as this login (compared without case,
    /// as the office stores logins in lower case).
    #[serde(default)]
    pub office_login: Option<String>,
    /// Language of replies and notifications.
    #[serde(default)]
    pub lang: Lang,
    /// Receive alarm notifications on Telegram.
    #[serde(default)]
    pub notify: bool,
    /// Least severity notified.
    #[serde(default = "min_severity")]
    pub min_severity: Severity,
}

fn min_severity() -> Severity {
    Severity::Low
}

/// Who an identity established by a channel is, according to `[[users]]`.
impl Actor {
    /// Looks a login up in `[[users]]`.
    pub fn by_login(users: &[UserConfig], login: &str, channel: &str) -> Self {
        let role = users.iter().find(|u| u.login == login).map(|u| u.role);
        Self {
            user: login.to_owned(),
            channel: channel.to_owned(),
            role,
        }
    }

    /// Looks a Telegram user id up in `[[users]]`.
    pub fn by_telegram_id(users: &[UserConfig], id: i64) -> Self {
        match users.iter().find(|u| u.telegram_id == Some(id)) {
            Some(u) => Self {
                user: u.login.clone(),
                channel: "telegram".into(),
                role: Some(u.role),
            },
            None => Self {
                user: format!("telegram:{id}"),
                channel: "telegram".into(),
                role: None,
            },
        }
    }
}

impl Actor {
    /// The person behind an office login (`[[users]] office_login`), acting through `channel`;
    /// `office:LOGIN` without a role when nobody here has that office login.
    pub fn by_office_login(users: &[UserConfig], login: &str, channel: &str) -> Self {
        match users.iter().find(|u| {
            u.office_login
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case(login))
        }) {
            Some(u) => Self {
                user: u.login.clone(),
                channel: channel.to_owned(),
                role: Some(u.role),
            },
            None => Self {
                user: format!("office:{login}"),
                channel: channel.to_owned(),
                role: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_and_admins_may_act_viewers_may_not() {
        assert!(!Role::Viewer.may_act());
        assert!(Role::Operator.may_act());
        assert!(Role::Admin.may_act());
        let users: Vec<UserConfig> = toml::from_str::<toml::Table>(
            "[[users]]\nlogin = \"anna\"\nrole = \"admin\"\ntelegram_id = 7\n",
        )
        .ok()
        .and_then(|t| t.get("users").cloned())
        .and_then(|u| u.try_into().ok())
        .expect("users parse");
        let actor = Actor::by_telegram_id(&users, 7);
        assert_eq!(actor.role, Some(Role::Admin));
        assert_eq!(Role::Admin.as_str(), "admin");
    }
}
