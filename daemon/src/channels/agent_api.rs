//! Assistant endpoints of the local HTTP API, used by `markoff ask` (and the LAN page's chat).
//!
//! - `POST /api/v1/ask`: body `{"text": "...", "session": "...", "lang": "ru"}`; answers with the
//!   [`Reply`] (text, source, attachments, confirmations, tools used).
//! - `POST /api/v1/ask/confirm`: body `{"token": "..."}`: carries out an acknowledgement the
//!   assistant proposed to the same caller (operators only, audited).
//!
//! Both act for the caller the transport established (see `super::api_auth`); a `user` or
//! `channel` in the body is ignored.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use crate::agent::{Agent, ConfirmError, Question, Reply};
use crate::context::Core;
use crate::model::{Actor, Lang};

/// Body of `POST /api/v1/ask`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AskRequest {
    /// The question or slash command.
    pub text: String,
    /// Conversation key; default `cli:<user>`.
    #[serde(default)]
    pub session: Option<String>,
    /// Language of the answer, when the caller knows it.
    #[serde(default)]
    pub lang: Option<Lang>,
}

/// Body of `POST /api/v1/ask/confirm`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConfirmRequest {
    /// The token of the proposal (it must have been proposed to the same caller).
    pub token: String,
}

/// What the assistant's endpoints need: the shared core and the assistant.
#[derive(Clone, Debug)]
pub(crate) struct AskState {
    pub(crate) core: Core,
    pub(crate) agent: Agent,
}

/// Longest question accepted, in characters.
pub const MAX_QUESTION_CHARS: usize = 4000;

/// Builds the question `actor` asks with `req`.
pub fn question(req: &AskRequest, actor: Actor) -> Question {
    Question {
        text: req.text.chars().take(MAX_QUESTION_CHARS).collect(),
        session: req
            .session
            .clone()
            .unwrap_or_else(|| format!("cli:{}", actor.user)),
        actor,
        lang: req.lang,
    }
}

pub(crate) async fn ask(
    State(AskState { core, agent }): State<AskState>,
    Extension(actor): Extension<Actor>,
    Json(req): Json<AskRequest>,
) -> Response {
    if req.text.trim().is_empty() {
        return (StatusCode::BAD_REQUEST, "text is empty\n").into_response();
    }
    let q = question(&req, actor);
    let reply: Reply = agent.ask(&core, q).await;
    Json(reply).into_response()
}

pub(crate) async fn confirm(
    State(AskState { core, agent }): State<AskState>,
    Extension(actor): Extension<Actor>,
    Json(req): Json<ConfirmRequest>,
) -> Response {
    match agent.confirm(&core, req.token.trim(), actor).await {
        Ok(outcome) => Json(outcome).into_response(),
        Err(ConfirmError::Alarm(e)) => super::alarms_api::refusal(&e),
        Err(e @ (ConfirmError::Expired | ConfirmError::NotYours)) => {
            (StatusCode::CONFLICT, format!("{e}\n")).into_response()
        }
    }
}
