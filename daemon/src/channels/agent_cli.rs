//! The CLI side of `markoff ask`: one question to the running daemon's assistant.

use std::fmt::Write as _;
use std::time::Duration;

use super::agent_api::{AskRequest, ConfirmRequest};
use super::client::{Client, ClientError};
use crate::agent::{Attachment, Reply, Source};
use crate::alarms::CommandOutcome;

/// How long `markoff ask` waits for an answer (the daemon bounds a turn by `[agent]
/// turn_timeout`, at most 10 minutes).
const ASK_TIMEOUT: Duration = Duration::from_secs(660);

impl Client {
    /// `POST /api/v1/ask`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn ask(&self, req: &AskRequest) -> Result<Reply, ClientError> {
        let v = self
            .post_json_within("/api/v1/ask", req, ASK_TIMEOUT)
            .await?;
        serde_json::from_value(v).map_err(|e| ClientError::Status {
            status: 200,
            body: format!("unexpected answer: {e}"),
        })
    }

    /// `POST /api/v1/ask/confirm`.
    ///
    /// # Errors
    /// See [`ClientError`]; a refusal comes back as [`ClientError::Status`].
    pub async fn confirm(&self, req: &ConfirmRequest) -> Result<CommandOutcome, ClientError> {
        let v = self.post_json("/api/v1/ask/confirm", req).await?;
        serde_json::from_value(v).map_err(|e| ClientError::Status {
            status: 200,
            body: format!("unexpected answer: {e}"),
        })
    }
}

/// An answer for the terminal: the text, then how to see its pictures and confirm its actions.
pub fn render_reply(r: &Reply) -> String {
    let mut out = r.text.trim_end().to_owned();
    out.push('\n');
    for a in &r.attachments {
        match a {
            Attachment::FloorPlan { floor, measure } => {
                writeln!(
                    out,
                    "[picture] markoff render plan --floor {floor} --measure {measure} -o plan-{floor}.png"
                ).ok();
            }
            Attachment::Chart { sensor, since_secs } => {
                let since = humantime::format_duration(Duration::from_secs(*since_secs));
                writeln!(
                    out,
                    "[picture] markoff render chart --sensor {sensor} --since {since} -o chart.png"
                )
                .ok();
            }
        }
    }
    for c in &r.confirmations {
        writeln!(out, "[confirm] markoff ack {}", c.alarm_id).ok();
    }
    if r.source == Source::Offline {
        writeln!(out, "({} ms, answered from local data)", r.elapsed_ms).ok();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Confirmation;
    use crate::model::Lang;

    #[test]
    fn pictures_and_confirmations_become_commands() {
        let r = Reply {
            text: "Floor 3 is warm.".into(),
            lang: Lang::En,
            source: Source::Llm,
            attachments: vec![
                Attachment::FloorPlan {
                    floor: "3".into(),
                    measure: "temperature".into(),
                },
                Attachment::Chart {
                    sensor: "f3.r301.temperature".into(),
                    since_secs: 86_400,
                },
            ],
            confirmations: vec![Confirmation {
                token: "t".into(),
                alarm_id: 7,
                prompt: "Acknowledge alarm 7?".into(),
            }],
            tools: Vec::new(),
            elapsed_ms: 12,
        };
        let text = render_reply(&r);
        assert!(text.starts_with("Floor 3 is warm.\n"));
        assert!(text.contains("markoff render plan --floor 3 --measure temperature"));
        assert!(text.contains("--sensor f3.r301.temperature --since 1day"));
        assert!(text.contains("markoff ack 7"));
    }
}
