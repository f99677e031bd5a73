//! Assistant endpoints of the local HTTP API, used by `markoff ask` (and the LAN page's chat).
//!
//! - `POST /api/v1/ask`: body `{"text": "...", "user": "ivan", "session": "...", "lang": "ru"}`;
//!   answers with the [`Reply`] (text, source, attachments, confirmations, tools used).
//! - `POST /api/v1/ask/confirm`: body `{"token": "...", "user": "ivan"}`: carries out an
//!   acknowledgement the assistant proposed, as that user (operators only, audited).
//!
//! Like the rest of the local API this listens on loopback: the caller names the user.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::agent::{Agent, ConfirmError, Question, Reply};
use crate::context::Core;
use crate::model::{Actor, Lang};

/// Body of `POST /api/v1/ask`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AskRequest {
    /// The question or slash command.
    pub text: String,
    /// Login from `[[users]]` asking.
    pub user: String,
    /// Conversation key; default `<channel>:<user>`.
    #[serde(default)]
    pub session: Option<String>,
    /// Channel (`cli`, `lan`); default `api`.
    #[serde(default)]
    pub channel: Option<String>,
    /// Language of the answer, when the caller knows it.
    #[serde(default)]
    pub lang: Option<Lang>,
}

/// Body of `POST /api/v1/ask/confirm`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConfirmRequest {
    /// The token of the proposal.
    pub token: String,
    /// Login of the person confirming (must be the one it was proposed to).
    pub user: String,
    /// Channel; default `api`.
    #[serde(default)]
    pub channel: Option<String>,
}

/// What the assistant's endpoints need: the shared core and the assistant.
#[derive(Clone, Debug)]
pub(crate) struct AskState {
    pub(crate) core: Core,
    pub(crate) agent: Agent,
}

/// Longest question accepted, in characters.
pub const MAX_QUESTION_CHARS: usize = 4000;

/// Builds the question a request stands for.
pub fn question(core: &Core, req: &AskRequest, default_channel: &str) -> Question {
    let cfg = core.config();
    let channel = req
        .channel
        .clone()
        .unwrap_or_else(|| default_channel.to_owned());
    let user = req.user.trim();
    let actor = Actor::by_login(&cfg.users, user, &channel);
    Question {
        text: req.text.chars().take(MAX_QUESTION_CHARS).collect(),
        session: req
            .session
            .clone()
            .unwrap_or_else(|| format!("{channel}:{user}")),
        actor,
        lang: req.lang,
    }
}

pub(crate) async fn ask(
    State(AskState { core, agent }): State<AskState>,
    Json(req): Json<AskRequest>,
) -> Response {
    if req.text.trim().is_empty() {
        return (StatusCode::BAD_REQUEST, "text is empty\n").into_response();
    }
    let q = question(&core, &req, "api");
    let reply: Reply = agent.ask(&core, q).await;
    Json(reply).into_response()
}

pub(crate) async fn confirm(
    State(AskState { core, agent }): State<AskState>,
    Json(req): Json<ConfirmRequest>,
) -> Response {
    let cfg = core.config();
    let channel = req.channel.clone().unwrap_or_else(|| "api".to_owned());
    let actor = Actor::by_login(&cfg.users, req.user.trim(), &channel);
    match agent.confirm(&core, req.token.trim(), actor).await {
        Ok(outcome) => Json(outcome).into_response(),
        Err(ConfirmError::Alarm(e)) => super::alarms_api::refusal(&e),
        Err(e @ (ConfirmError::Expired | ConfirmError::NotYours)) => {
            (StatusCode::CONFLICT, format!("{e}\n")).into_response()
        }
    }
}
