//! The central office as a channel: acknowledging and shelving alarms from the office web
//! application (`markoff-central serve`). The sync pulls the requests (`crate::sync`, as
//! [`OfficeActions`]); this applies each through the alarm engine like any other channel, so the
//! role check and the audit are the engine's, as for Telegram.
//!
//! Who acts: the office login is looked up in `[[users]] office_login`; the request acts as that
//! login with its role, or as `office:LOGIN` without one (refused, and audited as refused). The
//! channel is `office:<request id>`, in the audit log and in the alarm's events, so that a request
//! is applied at most once: before applying one, the audit log is asked for that channel (the
//! audit row is committed in the same transaction as the action it records), and a request
//! found there is answered as it went then.
//!
//! Owns: that mapping and the at-most-once check. Does not own: the pull (`crate::sync`) or the
//! alarm engine (`crate::alarms`).

use std::future::Future;
use std::pin::Pin;

use tracing::{info, warn};

use crate::alarms::{AlarmError, Alarms};
use crate::context::Core;
use crate::model::Actor;
use crate::store::Reader;
use crate::sync::{OfficeAction, OfficeActions, OfficeAnswer, OfficeRequest};

/// The channel name of request `id` (`office:42`).
pub fn channel_of(request_id: i64) -> String {
    format!("office:{request_id}")
}

/// Applies the office's requests to this gateway's alarms.
#[derive(Clone, Debug)]
pub struct Office {
    core: Core,
}

impl Office {
    /// For the gateway of `core` (its users, alarms and buffer).
    pub fn new(core: Core) -> Self {
        Self { core }
    }

    async fn apply_once(&self, r: OfficeRequest) -> Option<OfficeAnswer> {
        let channel = channel_of(r.request_id);
        let reader: &Reader = &self.core.reader;
        match reader.audit_by_channel(&channel).await {
            Ok(Some((actor, outcome, detail))) => {
                info!(request = r.request_id, alarm = r.alarm_id, %outcome, "Office request applied before; answering as then.");
                return Some(OfficeAnswer {
                    done: outcome == "done",
                    actor,
                    detail,
                });
            }
            Ok(None) => {}
            Err(e) => {
                warn!(request = r.request_id, error = %e, "Cannot read the audit log; the office request waits.");
                return None;
            }
        }
        let cfg = self.core.config();
        let actor = Actor::by_office_login(&cfg.users, &r.login, &channel);
        let user = actor.user.clone();
        let alarms: &Alarms = &self.core.alarms;
        let result = match r.action {
            OfficeAction::Ack => alarms.ack(r.alarm_id, actor).await,
            OfficeAction::Shelve(d) => alarms.shelve(r.alarm_id, d, actor).await,
        };
        match result {
            Ok(_) => Some(OfficeAnswer {
                done: true,
                actor: user,
                detail: None,
            }),
            Err(AlarmError::Refused(e)) => Some(OfficeAnswer {
                done: false,
                actor: user,
                detail: Some(e.to_string()),
            }),
            Err(e @ (AlarmError::NotRunning | AlarmError::Store(_))) => {
                warn!(request = r.request_id, error = %e, "Cannot apply the office request now; it waits.");
                None
            }
        }
    }
}

impl OfficeActions for Office {
    fn apply(
        &self,
        request: OfficeRequest,
    ) -> Pin<Box<dyn Future<Output = Option<OfficeAnswer>> + Send + '_>> {
        Box::pin(self.apply_once(request))
    }
}
