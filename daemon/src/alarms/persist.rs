//! Alarm instances as the buffer stores them: the engine's instance from a stored record at
//! start, and the record of a changed instance for the step's transaction
//! (`crate::store::alarms`).

use super::engine::Instance;
use crate::model::Severity;
use crate::store::AlarmRecord;

/// The engine's instance of a stored alarm (its rule index is found by the engine).
pub(crate) fn instance(r: AlarmRecord) -> Instance {
    Instance {
        id: r.id,
        key: r.key,
        rule: 0,
        sensor: r.sensor,
        state: r.state,
        condition: r.condition,
        pending_since: r.pending_since,
        clearing_since: r.clearing_since,
        value: r.value,
        raised_ms: r.raised_ms,
        acked_ms: r.acked_ms,
        acked_by: r.acked_by,
        cleared_ms: r.cleared_ms,
        shelved_until: r.shelved_until,
        shelved_by: r.shelved_by,
        out_of_service: r.out_of_service,
        last_notified_ms: r.last_notified_ms,
        last_good_ms: None,
        prev: None,
        retired: false,
    }
}

/// The stored record of `inst`, whose rule is `rule` with `severity`.
pub(crate) fn record(inst: &Instance, rule: String, severity: Severity) -> AlarmRecord {
    AlarmRecord {
        id: inst.id,
        key: inst.key.clone(),
        rule,
        sensor: inst.sensor.clone(),
        state: inst.state,
        severity,
        condition: inst.condition,
        pending_since: inst.pending_since,
        clearing_since: inst.clearing_since,
        value: inst.value,
        raised_ms: inst.raised_ms,
        acked_ms: inst.acked_ms,
        acked_by: inst.acked_by.clone(),
        cleared_ms: inst.cleared_ms,
        shelved_until: inst.shelved_until,
        shelved_by: inst.shelved_by.clone(),
        out_of_service: inst.out_of_service,
        last_notified_ms: inst.last_notified_ms,
    }
}
