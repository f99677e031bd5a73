//! Alarms in the buffer (`alarm_state`, `alarm_events`, `audit_log`, and the `outbox` rows an
//! event creates): the engine's stored state, the one transaction per evaluation step that
//! stores changed alarms, new events, their notifications, audit entries and the seq of the last
//! evaluated reading together, and what the renderer reads about alarms.
//!
//! Owns: those tables' rows. Does not own: the lifecycle (`crate::alarms::engine`) or delivery
//! (`super::outbox`, `crate::alarms::outbox`).

use std::sync::Arc;

use rusqlite::{OptionalExtension, Transaction, params};

use super::reader::{Lane, ReadConnection};
use super::{IngestHandle, Reader, StoreError};
use crate::model::{AlarmState, Severity, Timestamp};

/// `meta` key of the last reading seq whose effects are committed.
const EVALUATED_SEQ: &str = "alarms_evaluated_seq";

/// One alarm (one rule on one sensor) as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmRecord {
    /// Short id (stable).
    pub id: i64,
    /// `<alert>/<sensor>`.
    pub key: String,
    /// The rule's name (`alert`).
    pub rule: String,
    /// Sensor id.
    pub sensor: String,
    /// ISA-18.2 state.
    pub state: AlarmState,
    /// Severity of its rule.
    pub severity: Severity,
    /// The condition, after deadband.
    pub condition: bool,
    /// When the condition started to hold while not active (on-delay running).
    pub pending_since: Option<i64>,
    /// When the condition ended while active (off-delay running).
    pub clearing_since: Option<i64>,
    /// Last value seen.
    pub value: Option<f64>,
    /// When it was last raised.
    pub raised_ms: Option<i64>,
    /// When it was acknowledged.
    pub acked_ms: Option<i64>,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
    /// When it last cleared.
    pub cleared_ms: Option<i64>,
    /// Shelved until (ms).
    pub shelved_until: Option<i64>,
    /// Who shelved it.
    pub shelved_by: Option<String>,
    /// Not evaluated.
    pub out_of_service: bool,
    /// When subscribers were last told (for reminders).
    pub last_notified_ms: Option<i64>,
}

/// A new lifecycle event, with the notifications it creates.
#[derive(Clone, Debug)]
pub struct AlarmEventRecord {
    /// When it happened (ms).
    pub ts: i64,
    /// The alarm's id.
    pub alarm_id: i64,
    /// The alarm's key.
    pub alarm: String,
    /// The rule's name.
    pub rule: String,
    /// Sensor id.
    pub sensor: String,
    /// What happened (`raised`, `acked`, ...).
    pub event: &'static str,
    /// The state after it.
    pub state: &'static str,
    /// Severity.
    pub severity: Severity,
    /// The value that caused it.
    pub value: Option<f64>,
    /// Human-readable text.
    pub message: String,
    /// Who acted, if anyone.
    pub actor: Option<String>,
    /// Through which channel they acted.
    pub channel: Option<String>,
    /// One outbox row per subscriber told.
    pub notify: Vec<NotificationRecord>,
}

/// One outbox row to create.
#[derive(Clone, Debug)]
pub struct NotificationRecord {
    /// Subscriber key.
    pub subscriber: String,
    /// Channel name (`telegram`, `log`).
    pub channel: String,
    /// Address on that channel.
    pub address: String,
    /// `raised`, `cleared`, `reminder`, ...
    pub kind: &'static str,
    /// Severity.
    pub severity: Severity,
    /// The message.
    pub text: String,
    /// The alarm it is about.
    pub alarm_id: i64,
    /// For rows not tied to an event (reminders): what makes them unique.
    pub dedup: Option<String>,
}

/// An audit entry.
#[derive(Clone, Debug)]
pub struct AuditRecord {
    /// When (ms).
    pub ts: i64,
    /// Who.
    pub actor: String,
    /// Their role, if known.
    pub role: Option<String>,
    /// Through which channel.
    pub channel: String,
    /// What they asked for.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// What came of it.
    pub outcome: String,
    /// More.
    pub detail: Option<String>,
}

/// Everything one evaluation step writes, in one transaction.
#[derive(Clone, Debug, Default)]
pub struct AlarmStep {
    /// Alarms whose state changed.
    pub records: Vec<AlarmRecord>,
    /// New events.
    pub events: Vec<AlarmEventRecord>,
    /// Reminder notifications.
    pub reminders: Vec<NotificationRecord>,
    /// Audit entries.
    pub audit: Vec<AuditRecord>,
    /// The seq of the last reading whose effects the step holds.
    pub evaluated_seq: Option<i64>,
}

/// An alarm that is not normal and in service, as a floor plan shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenAlarmRow {
    /// The rule's name.
    pub rule: String,
    /// Sensor id.
    pub sensor: String,
    /// Severity.
    pub severity: Severity,
    /// State.
    pub state: AlarmState,
}

/// One alarm of a sensor and its events within a time range.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmHistory {
    /// The rule's name.
    pub rule: String,
    /// Severity of the rule (`None` if stored under an unknown name).
    pub severity: Option<Severity>,
    /// State and severity of its last event before the range, if any.
    pub before: Option<(Option<AlarmState>, Option<Severity>)>,
    /// (time ms, state, severity) of each event within the range, in order.
    pub events: Vec<(i64, Option<AlarmState>, Option<Severity>)>,
}

impl Reader {
    /// Every stored alarm and the seq of the last reading whose effects are committed (`None`
    /// when alarms never ran on this buffer).
    ///
    /// # Errors
    /// The query failed.
    pub async fn alarm_records(&self) -> Result<(Vec<AlarmRecord>, Option<i64>), StoreError> {
        self.run(Lane::Heavy, |c| {
            let c = &c.conn;
            let mut stmt = c.prepare(
                "SELECT id, key, rule, sensor, state, severity, condition, pending_since, \
                 clearing_since, value, raised_ms, acked_ms, acked_by, cleared_ms, shelved_until, \
                 shelved_by, out_of_service, last_notified_ms FROM alarm_state ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(AlarmRecord {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    rule: r.get(2)?,
                    sensor: r.get(3)?,
                    state: AlarmState::parse(&r.get::<_, String>(4)?).unwrap_or(AlarmState::Normal),
                    severity: Severity::parse(&r.get::<_, String>(5)?).unwrap_or(Severity::High),
                    condition: r.get(6)?,
                    pending_since: r.get(7)?,
                    clearing_since: r.get(8)?,
                    value: r.get(9)?,
                    raised_ms: r.get(10)?,
                    acked_ms: r.get(11)?,
                    acked_by: r.get(12)?,
                    cleared_ms: r.get(13)?,
                    shelved_until: r.get(14)?,
                    shelved_by: r.get(15)?,
                    out_of_service: r.get(16)?,
                    last_notified_ms: r.get(17)?,
                })
            })?;
            let records = rows.collect::<Result<Vec<_>, _>>()?;
            let seq: Option<i64> = c
                .query_row(
                    "SELECT value FROM meta WHERE key = ?1",
                    [EVALUATED_SEQ],
                    |r| r.get(0),
                )
                .optional()?;
            Ok::<_, rusqlite::Error>((records, seq))
        })
        .await
    }

    /// See [`ReadConnection::alarm_history`].
    ///
    /// # Errors
    /// The query failed.
    pub async fn alarm_history(
        &self,
        sensor: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<AlarmHistory>, StoreError> {
        let sensor = sensor.to_owned();
        self.run(Lane::Heavy, move |c| c.alarm_history(&sensor, from, to))
            .await
    }
}

impl ReadConnection {
    /// Alarms that are not normal and in service.
    ///
    /// # Errors
    /// The query failed.
    pub fn open_alarm_states(&self) -> Result<Vec<OpenAlarmRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT rule, sensor, severity, state FROM alarm_state WHERE state != 'normal' AND out_of_service = 0",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (rule, sensor, severity, state) = row?;
            if let (Some(severity), Some(state)) =
                (Severity::parse(&severity), AlarmState::parse(&state))
            {
                out.push(OpenAlarmRow {
                    rule,
                    sensor,
                    severity,
                    state,
                });
            }
        }
        Ok(out)
    }

    /// The alarms of `sensor` with their events in `from..=to` and the last one before.
    ///
    /// # Errors
    /// The query failed.
    pub fn alarm_history(
        &self,
        sensor: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<AlarmHistory>, StoreError> {
        let c = &self.conn;
        let (from, to) = (from.as_millis(), to.as_millis());
        let mut ids = c.prepare_cached(
            "SELECT id, rule, severity FROM alarm_state WHERE sensor = ?1 ORDER BY id",
        )?;
        let alarms: Vec<(i64, String, String)> = ids
            .query_map([sensor], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut before = c.prepare_cached(
            "SELECT state, severity FROM alarm_events WHERE alarm_id = ?1 AND ts < ?2 ORDER BY seq DESC LIMIT 1",
        )?;
        let mut during = c.prepare_cached(
            "SELECT ts, state, severity FROM alarm_events WHERE alarm_id = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY seq",
        )?;
        let mut out = Vec::with_capacity(alarms.len());
        for (id, rule, severity) in alarms {
            let start: Option<(String, String)> = before
                .query_row(params![id, from], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let events = during
                .query_map(params![id, from, to], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        AlarmState::parse(&r.get::<_, String>(1)?),
                        Severity::parse(&r.get::<_, String>(2)?),
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            out.push(AlarmHistory {
                rule,
                severity: Severity::parse(&severity),
                before: start
                    .map(|(state, sev)| (AlarmState::parse(&state), Severity::parse(&sev))),
                events,
            });
        }
        Ok(out)
    }
}

impl IngestHandle {
    /// Commits one evaluation step in the writer's next transaction; returns the seq of each
    /// new event, in order.
    ///
    /// # Errors
    /// The writer failed or has stopped.
    pub async fn commit_alarm_step(&self, step: Arc<AlarmStep>) -> Result<Vec<i64>, StoreError> {
        let now = Timestamp::now().as_millis();
        self.transact(move |tx| write_step(tx, &step, now)).await
    }

    /// Appends one entry to the audit log (an action outside the alarm service, such as a
    /// request of the local API) and waits for the commit.
    ///
    /// # Errors
    /// The writer failed or has stopped.
    pub async fn audit(&self, record: AuditRecord) -> Result<(), StoreError> {
        self.transact(move |tx| insert_audit(tx, &record)).await
    }
}

fn insert_audit(tx: &Transaction<'_>, a: &AuditRecord) -> Result<(), rusqlite::Error> {
    tx.prepare_cached(
        "INSERT INTO audit_log (ts, actor, role, channel, action, target, outcome, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        a.ts, a.actor, a.role, a.channel, a.action, a.target, a.outcome, a.detail
    ])?;
    Ok(())
}

/// Writes a step. Runs inside the writer's transaction.
fn write_step(
    tx: &Transaction<'_>,
    step: &AlarmStep,
    now: i64,
) -> Result<Vec<i64>, rusqlite::Error> {
    for i in &step.records {
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
            i.rule,
            i.sensor,
            i.state.as_str(),
            i.severity.as_str(),
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
        insert_audit(tx, a)?;
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
    n: &NotificationRecord,
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
