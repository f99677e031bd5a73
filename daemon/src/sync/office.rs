//! The office's requests: acknowledging or shelving an alarm from the central web application.
//! The gateway still accepts no inbound connection: on its own connection to the centre it asks,
//! every `[sync] interval`, for the requests pending for it, has each applied locally (by an
//! [`OfficeActions`], which the composition root makes of the alarm engine) and answers it.
//!
//! Owns: that pull loop and its retries. Does not own: the central SQL (`markoff_proto`) or
//! what applying means (the alarm engine's role check and audit, `crate::channels::office`).
//!
//! Exactly once: a request is answered only after it was applied and that was committed
//! locally; an answer moves only a pending request. A crash between the two leaves the request
//! pending centrally, and the next round asks the [`OfficeActions`] again, which finds the
//! committed action by the request's id instead of applying it twice.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use markoff_proto::OfficeRequestRow;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::connect::{SyncFailure, Target};
use crate::service::backoff::Backoff;
use crate::service::supervisor::TaskError;

/// What the office asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfficeAction {
    /// Acknowledge the alarm.
    Ack,
    /// Shelve it for this long.
    Shelve(Duration),
}

/// One request of the office, as pulled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfficeRequest {
    /// The centre's id of the request.
    pub request_id: i64,
    /// The alarm's id on this gateway.
    pub alarm_id: i64,
    /// What to do.
    pub action: OfficeAction,
    /// The office user's login (mapped to `[[users]]` by `office_login`).
    pub login: String,
}

/// What became of a request, answered to the centre.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfficeAnswer {
    /// Applied (`true`) or refused.
    pub done: bool,
    /// Who it was applied as here.
    pub actor: String,
    /// Why it was refused.
    pub detail: Option<String>,
}

/// Applies the office's requests. `None`: it could not be applied now (the alarm engine is not
/// running or the buffer failed); it stays pending and is asked again.
pub trait OfficeActions: Send + Sync + 'static {
    /// Applies `request` once: a request applied before (by its id) is answered as it was then.
    fn apply(
        &self,
        request: OfficeRequest,
    ) -> Pin<Box<dyn Future<Output = Option<OfficeAnswer>> + Send + '_>>;
}

/// Shortest wait after a failed round (the longest is `[sync] max_backoff`).
const MIN_BACKOFF: Duration = Duration::from_secs(1);

/// What the pull works with.
#[derive(Debug)]
pub(crate) struct OfficeCtx {
    /// The gateway id, with its upload key when `[sync]` names one.
    pub(crate) gateway_id: markoff_proto::GatewayKey,
    pub(crate) target: Target,
    pub(crate) interval: Duration,
    pub(crate) max_backoff: Duration,
}

/// Runs the pull loop until `token` is cancelled.
pub(crate) async fn run(
    ctx: Arc<OfficeCtx>,
    actions: Arc<dyn OfficeActions>,
    token: CancellationToken,
) -> Result<(), TaskError> {
    let mut backoff = Backoff::new(MIN_BACKOFF, ctx.max_backoff);
    let mut failing = false;
    loop {
        let outcome = tokio::select! {
            () = token.cancelled() => break,
            r = session(&ctx, actions.as_ref(), &mut backoff, &mut failing) => r,
        };
        let Err(failure) = outcome;
        let delay = backoff.next_delay();
        if failing {
            debug!(error = %failure.chain(), ?delay, "Office requests still cannot be pulled.");
        } else {
            warn!(error = %failure.chain(), ?delay, "Cannot pull the office's requests; retrying.");
            failing = true;
        }
        tokio::select! {
            () = token.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    Ok(())
}

/// One connection: every interval, pull the pending requests and answer each.
async fn session(
    ctx: &OfficeCtx,
    actions: &dyn OfficeActions,
    backoff: &mut Backoff,
    failing: &mut bool,
) -> Result<std::convert::Infallible, SyncFailure> {
    let mut conn = ctx.target.connect().await?;
    loop {
        let pending = ctx
            .target
            .call(
                "reading the office's requests",
                markoff_proto::office_requests_pending(&mut conn, &ctx.gateway_id),
            )
            .await?;
        if *failing {
            info!("Pulling the office's requests again.");
            *failing = false;
        }
        backoff.reset();
        for row in pending {
            handle(ctx, &mut conn, actions, row).await?;
        }
        tokio::time::sleep(ctx.interval).await;
    }
}

async fn handle(
    ctx: &OfficeCtx,
    conn: &mut PgConnection,
    actions: &dyn OfficeActions,
    row: OfficeRequestRow,
) -> Result<(), SyncFailure> {
    let Some(request) = parse(&row) else {
        warn!(
            request = row.request_id,
            action = %row.action,
            "An office request this gateway does not understand; refused."
        );
        let detail = format!("unknown action {:?}", row.action);
        answer(ctx, conn, row.request_id, false, "", Some(&detail)).await?;
        return Ok(());
    };
    let Some(a) = actions.apply(request).await else {
        return Ok(());
    };
    answer(
        ctx,
        conn,
        row.request_id,
        a.done,
        &a.actor,
        a.detail.as_deref(),
    )
    .await
}

async fn answer(
    ctx: &OfficeCtx,
    conn: &mut PgConnection,
    request_id: i64,
    done: bool,
    actor: &str,
    detail: Option<&str>,
) -> Result<(), SyncFailure> {
    let moved = ctx
        .target
        .call(
            "answering an office request",
            markoff_proto::answer_office_request(
                conn,
                &ctx.gateway_id,
                request_id,
                done,
                actor,
                detail,
            ),
        )
        .await?;
    debug!(
        request = request_id,
        done, moved, "Office request answered."
    );
    Ok(())
}

fn parse(row: &OfficeRequestRow) -> Option<OfficeRequest> {
    let action = match (row.action.as_str(), row.shelve_seconds) {
        ("ack", _) => OfficeAction::Ack,
        ("shelve", Some(s)) if s > 0 => {
            OfficeAction::Shelve(Duration::from_secs(u64::try_from(s).ok()?))
        }
        _ => return None,
    };
    Some(OfficeRequest {
        request_id: row.request_id,
        alarm_id: row.alarm_id,
        action,
        login: row.login.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(action: &str, shelve: Option<i32>) -> OfficeRequestRow {
        OfficeRequestRow {
            request_id: 7,
            alarm_id: 3,
            action: action.into(),
            shelve_seconds: shelve,
            login: "ivan".into(),
            display_name: "Ivan".into(),
            requested_ms: 0,
        }
    }

    #[test]
    fn requests_parse() {
        assert_eq!(parse(&row("ack", None)).unwrap().action, OfficeAction::Ack);
        assert_eq!(
            parse(&row("shelve", Some(3600))).unwrap().action,
            OfficeAction::Shelve(Duration::from_secs(3600))
        );
        assert_eq!(parse(&row("shelve", None)), None);
        assert_eq!(parse(&row("delete", None)), None);
    }
}
