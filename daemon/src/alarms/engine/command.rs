//! Operator actions on the engine: acknowledge, shelve, unshelve, out of service, with the
//! role check and the refusals for actions that make no sense in an alarm's state.

use super::{Engine, EventKind, Instance, Output};
use crate::model::{Actor, AlarmState, Role};

/// An operator action.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Acknowledge.
    Ack,
    /// Shelve until a time (ms).
    Shelve {
        /// Until.
        until: i64,
    },
    /// Lift shelving.
    Unshelve,
    /// Take out of service (`true`) or back (`false`).
    OutOfService(bool),
}

impl Command {
    /// Name in the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ack => "ack",
            Self::Shelve { .. } => "shelve",
            Self::Unshelve => "unshelve",
            Self::OutOfService(true) => "out_of_service",
            Self::OutOfService(false) => "in_service",
        }
    }
}

/// Why an operator action was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such alarm.
    #[error("no alarm #{0}")]
    Unknown(i64),
    /// The actor lacks the operator role.
    #[error("{user} may not {action} alarms: the operator role is required")]
    Forbidden {
        /// Who.
        user: String,
        /// What.
        action: &'static str,
    },
    /// Nothing to do in the alarm's current state.
    #[error("alarm #{id} is {state}: nothing to {action}")]
    NotApplicable {
        /// Alarm id.
        id: i64,
        /// Its state.
        state: &'static str,
        /// What was asked.
        action: &'static str,
    },
}

impl Engine {
    /// Applies an operator action by `actor` to alarm `id` at `now`.
    ///
    /// # Errors
    /// The alarm is unknown, the actor is not an operator, or the action makes no sense in the
    /// alarm's state.
    pub fn command(
        &mut self,
        id: i64,
        cmd: &Command,
        actor: &Actor,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let idx = self
            .index_of(id)
            .filter(|&i| !self.instances[i].retired)
            .ok_or(Refusal::Unknown(id))?;
        if !actor.role.is_some_and(Role::may_act) {
            return Err(Refusal::Forbidden {
                user: actor.user.clone(),
                action: cmd.name(),
            });
        }
        let inst = &mut self.instances[idx];
        let not_applicable = |inst: &Instance| Refusal::NotApplicable {
            id,
            state: inst.state.as_str(),
            action: cmd.name(),
        };
        let kind = match cmd {
            Command::Ack => {
                match inst.state {
                    AlarmState::ActiveUnacked => inst.state = AlarmState::ActiveAcked,
                    AlarmState::ClearedUnacked => inst.state = AlarmState::Normal,
                    _ => return Err(not_applicable(inst)),
                }
                inst.acked_ms = Some(now);
                inst.acked_by = Some(actor.user.clone());
                EventKind::Acked
            }
            Command::Shelve { until } => {
                if *until <= now {
                    return Err(not_applicable(inst));
                }
                inst.shelved_until = Some(*until);
                inst.shelved_by = Some(actor.user.clone());
                EventKind::Shelved
            }
            Command::Unshelve => {
                if inst.shelved_until.is_none() {
                    return Err(not_applicable(inst));
                }
                inst.shelved_until = None;
                inst.shelved_by = None;
                EventKind::Unshelved
            }
            Command::OutOfService(true) => {
                if inst.out_of_service {
                    return Err(not_applicable(inst));
                }
                inst.out_of_service = true;
                inst.state = AlarmState::Normal;
                inst.pending_since = None;
                inst.clearing_since = None;
                EventKind::OutOfService
            }
            Command::OutOfService(false) => {
                if !inst.out_of_service {
                    return Err(not_applicable(inst));
                }
                inst.out_of_service = false;
                EventKind::InService
            }
        };
        self.emit(idx, kind, now, None, Some(actor.clone()), out);
        // Back in service (or unshelved) with the condition present: evaluate it again now.
        if matches!(cmd, Command::OutOfService(false)) && self.instances[idx].condition {
            self.apply(idx, true, now, None, out);
        }
        Ok(())
    }
}
