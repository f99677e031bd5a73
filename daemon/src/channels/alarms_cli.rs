//! The CLI side of `markoff alarms`, `markoff ack`, `shelve` and `unshelve`.

use std::fmt::Write as _;

use super::alarms_api::ActionRequest;
use super::client::{Client, ClientError};
use super::http::format_ts;
use crate::alarms::service::CommandOutcome;
use crate::alarms::{AlarmView, text};
use crate::model::{AlarmState, Timestamp};

impl Client {
    /// `GET /api/v1/alarms`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn alarms(&self, all: bool) -> Result<Vec<AlarmView>, ClientError> {
        let path = if all {
            "/api/v1/alarms?all=true"
        } else {
            "/api/v1/alarms"
        };
        let v = self.raw(path).await?;
        serde_json::from_value(v).map_err(|e| ClientError::Status {
            status: 200,
            body: format!("unexpected alarm list: {e}"),
        })
    }

    /// `POST /api/v1/alarms/{id}/{action}` as the caller the daemon establishes (the socket's
    /// peer account, or the bearer token); returns the text to print.
    ///
    /// # Errors
    /// See [`ClientError`]; a refusal comes back as [`ClientError::Status`] with the reason.
    pub async fn alarm_action(
        &self,
        id: i64,
        action: &str,
        duration: Option<&str>,
    ) -> Result<String, ClientError> {
        let body = ActionRequest {
            duration: duration.map(str::to_owned),
            enabled: None,
        };
        let v = self
            .post_json(&format!("/api/v1/alarms/{id}/{action}"), &body)
            .await?;
        let outcome: CommandOutcome =
            serde_json::from_value(v).map_err(|e| ClientError::Status {
                status: 200,
                body: format!("unexpected answer: {e}"),
            })?;
        let by = outcome
            .alarm
            .acked_by
            .as_deref()
            .filter(|_| action == "ack")
            .map(|u| format!(", by {u}"))
            .unwrap_or_default();
        Ok(format!(
            "#{} {}: {} ({}){by}\n",
            outcome.alarm.id,
            outcome.alarm.alert,
            outcome.event.as_str(),
            text::state_word(crate::model::Lang::En, outcome.alarm.state)
        ))
    }
}

/// The alarm list for people.
pub fn render_alarms(alarms: &[AlarmView], all: bool) -> String {
    if alarms.is_empty() {
        return if all {
            "No alarms are configured (see [[alarms.rule]] in the config).\n".to_owned()
        } else {
            "No open alarms: everything is normal and acknowledged.\n".to_owned()
        };
    }
    let now = Timestamp::now();
    let mut out = String::new();
    writeln!(
        out,
        "{:>4}  {:<8}  {:<24}  {:<28}  {:<18}  SINCE",
        "ID", "SEVERITY", "STATE", "ALERT", "SENSOR"
    )
    .ok();
    for a in alarms {
        let mut state = text::state_word(crate::model::Lang::En, a.state).to_owned();
        if a.out_of_service {
            state = "out of service".to_owned();
        } else if a.shelved_until.is_some_and(|t| t > now.as_millis()) {
            state.push_str(", shelved");
        }
        let since = match (a.state, a.raised_ms) {
            (AlarmState::Normal, _) | (_, None) => String::new(),
            (_, Some(t)) => format_ts(Timestamp(t), now),
        };
        writeln!(
            out,
            "{:>4}  {:<8}  {:<24}  {:<28}  {:<18}  {since}",
            a.id,
            a.severity.as_str(),
            state,
            a.alert,
            a.sensor
        )
        .ok();
        writeln!(out, "      {}", a.message).ok();
        if let Some(by) = &a.acked_by
            && a.state == AlarmState::ActiveAcked
        {
            writeln!(out, "      acknowledged by {by}").ok();
        }
    }
    out
}
