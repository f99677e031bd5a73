//! Alarm rows in the buffer: loading the engine's state, and the one transaction per evaluation
//! step that stores changed instances, new events, their outbox rows, audit entries and the seq
//! of the last evaluated reading together.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::engine::Instance;
use super::state::AlarmState;
use crate::model::Severity;

/// `meta` key of the last reading seq whose effects are committed.
pub(crate) const EVALUATED_SEQ: &str = "alarms_evaluated_seq";

/// A changed instance, as stored.
#[derive(Clone, Debug)]
pub(crate) struct InstanceRow {
    pub(crate) inst: Instance,
    pub(crate) rule: String,
    pub(crate) severity: Severity,
}

/// A new event with its notifications.
#[derive(Clone, Debug)]
pub(crate) struct EventRow {
    pub(crate) ts: i64,
    pub(crate) alarm_id: i64,
    pub(crate) alarm: String,
    pub(crate) rule: String,
    pub(crate) sensor: String,
    pub(crate) event: &'static str,
    pub(crate) state: &'static str,
    pub(crate) severity: Severity,
    pub(crate) value: Option<f64>,
    pub(crate) message: String,
    pub(crate) actor: Option<String>,
    pub(crate) channel: Option<String>,
    /// (subscriber key, channel, address, text) per notification.
    pub(crate) notify: Vec<Notification>,
}

/// One outbox row to create.
#[derive(Clone, Debug)]
pub(crate) struct Notification {
    pub(crate) subscriber: String,
    pub(crate) channel: String,
    pub(crate) address: String,
    pub(crate) kind: &'static str,
    pub(crate) severity: Severity,
    pub(crate) text: String,
    pub(crate) alarm_id: i64,
    /// For rows not tied to an event (reminders): what makes them unique.
    pub(crate) dedup: Option<String>,
}

/// An audit entry.
#[derive(Clone, Debug)]
pub(crate) struct AuditRow {
    pub(crate) ts: i64,
    pub(crate) actor: String,
    pub(crate) role: Option<String>,
    pub(crate) channel: String,
    pub(crate) action: String,
    pub(crate) target: Option<String>,
    pub(crate) outcome: String,
    pub(crate) detail: Option<String>,
}

/// Everything one evaluation step writes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Step {
    pub(crate) instances: Vec<InstanceRow>,
    pub(crate) events: Vec<EventRow>,
    pub(crate) reminders: Vec<Notification>,
    pub(crate) audit: Vec<AuditRow>,
    pub(crate) evaluated_seq: Option<i64>,
}

/// What a committed step produced: the seq of each event, in order.
pub(crate) type EventSeqs = Vec<i64>;

/// Writes a step. Runs inside the writer's transaction.
pub(crate) fn write_step(
    tx: &Transaction<'_>,
    step: &Step,
    now: i64,
) -> Result<EventSeqs, rusqlite::Error> {
    for row in &step.instances {
        let i = &row.inst;
        tx.prepare_cached(
            "INSERT INTO alarm_state (id, key, rule, sensor, state, severity, condition, pending_since, \
             clearing_since, value, raised_ms, acked_ms, acked_by, cleared_ms, shelved_until, shelved_by, \
             out_of_service, last_notified_ms, updated_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) \
             ON CONFLICT (key) DO UPDATE SET rule = excluded.rule, state = excluded.state, \
             severity = excluded.severity, condition = excluded.condition, \
             pending_since = excluded.pending_since, clearing_since = excluded.clearing_since, \
             value = excluded.value, raised_ms = excluded.raised_ms, acked_ms = excluded.acked_ms, \
             acked_by = excluded.acked_by, cleared_ms = excluded.cleared_ms, \
             shelved_until = excluded.shelved_until, shelved_by = excluded.shelved_by, \
             out_of_service = excluded.out_of_service, last_notified_ms = excluded.last_notified_ms, \
             updated_ms = excluded.updated_ms",
        )?
        .execute(params![
            i.id,
            i.key,
            row.rule,
            i.sensor,
            i.state.as_str(),
            row.severity.as_str(),
            i.condition,
            i.pending_since,
            i.clearing_since,
            i.value,
            i.raised_ms,
            i.acked_ms,
            i.acked_by,
            i.cleared_ms,
            i.shelved_until,
            i.shelved_by,
            i.out_of_service,
            i.last_notified_ms,
            now
        ])?;
    }
    let mut seqs = Vec::with_capacity(step.events.len());
    for e in &step.events {
        tx.prepare_cached(
            "INSERT INTO alarm_events (ts, alarm_id, alarm, rule, sensor, event, state, severity, value, \
             message, actor, channel) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            e.ts,
            e.alarm_id,
            e.alarm,
            e.rule,
            e.sensor,
            e.event,
            e.state,
            e.severity.as_str(),
            e.value,
            e.message,
            e.actor,
            e.channel
        ])?;
        let seq = tx.last_insert_rowid();
        seqs.push(seq);
        for n in &e.notify {
            insert_notification(
                tx,
                n,
                &format!("event:{seq}:{}", n.subscriber),
                Some(seq),
                now,
            )?;
        }
    }
    for n in &step.reminders {
        let dedup = n.dedup.clone().unwrap_or_default();
        insert_notification(tx, n, &format!("{dedup}:{}", n.subscriber), None, now)?;
    }
    for a in &step.audit {
        tx.prepare_cached(
            "INSERT INTO audit_log (ts, actor, role, channel, action, target, outcome, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            a.ts, a.actor, a.role, a.channel, a.action, a.target, a.outcome, a.detail
        ])?;
    }
    if let Some(seq) = step.evaluated_seq {
        tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        )?
        .execute(params![EVALUATED_SEQ, seq])?;
    }
    Ok(seqs)
}

fn insert_notification(
    tx: &Transaction<'_>,
    n: &Notification,
    dedup: &str,
    event_seq: Option<i64>,
    now: i64,
) -> Result<(), rusqlite::Error> {
    tx.prepare_cached(
        "INSERT INTO outbox (dedup_key, subscriber, channel, address, alarm_id, event_seq, kind, severity, \
         text, created_ms, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) \
         ON CONFLICT (dedup_key) DO NOTHING",
    )?
    .execute(params![
        dedup,
        n.subscriber,
        n.channel,
        n.address,
        n.alarm_id,
        event_seq,
        n.kind,
        n.severity.as_str(),
        n.text,
        now
    ])?;
    Ok(())
}

/// Loads every stored instance and the last evaluated reading seq.
/// The seq is `None` when alarms never ran on this buffer.
pub(crate) fn load(conn: &Connection) -> Result<(Vec<Instance>, Option<i64>), rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT id, key, sensor, state, condition, pending_since, clearing_since, value, raised_ms, \
         acked_ms, acked_by, cleared_ms, shelved_until, shelved_by, out_of_service, last_notified_ms \
         FROM alarm_state ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let state: String = r.get(3)?;
        Ok(Instance {
            id: r.get(0)?,
            key: r.get(1)?,
            rule: 0,
            sensor: r.get(2)?,
            state: AlarmState::parse(&state).unwrap_or(AlarmState::Normal),
            condition: r.get(4)?,
            pending_since: r.get(5)?,
            clearing_since: r.get(6)?,
            value: r.get(7)?,
            raised_ms: r.get(8)?,
            acked_ms: r.get(9)?,
            acked_by: r.get(10)?,
            cleared_ms: r.get(11)?,
            shelved_until: r.get(12)?,
            shelved_by: r.get(13)?,
            out_of_service: r.get(14)?,
            last_notified_ms: r.get(15)?,
            last_good_ms: None,
            prev: None,
            retired: false,
        })
    })?;
    let instances = rows.collect::<Result<Vec<_>, _>>()?;
    let seq: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [EVALUATED_SEQ],
            |r| r.get(0),
        )
        .optional()?;
    Ok((instances, seq))
}
