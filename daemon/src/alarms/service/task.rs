//! The alarm task: the engine fed with committed readings, its timers, operator actions, and
//! one transaction per step for state, events, notifications and the evaluated seq.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{AlarmError, AlarmView, Alarms, CommandOutcome, Request};
use crate::alarms::config::AlarmsConfig;
use crate::alarms::engine::{Engine, EventKind, Output, Refusal};
use crate::alarms::outbox::Subscriber;
use crate::alarms::persist;
use crate::alarms::rules::{RuleSet, SensorInfo};
use crate::alarms::text;
use crate::config::users::UserConfig;
use crate::model::{Quality, Reading, Seq, Severity, Timestamp};
use crate::service::supervisor::TaskError;
use crate::store::{
    AlarmEventRecord, AlarmStep, AuditRecord, IngestHandle, NotificationRecord, Reader, StoreError,
    StoreShared,
};

/// How many readings one catch-up query reads.
const CATCH_UP_CHUNK: i64 = 20_000;

/// What the alarm task needs.
#[derive(Clone, Debug)]
pub struct AlarmContext {
    /// Writes.
    pub ingest: IngestHandle,
    /// Reads.
    pub reader: Reader,
    /// Commit notifications and the last seq.
    pub store: Arc<StoreShared>,
    /// The handle to serve.
    pub alarms: Alarms,
    /// Where evaluation starts on a buffer alarms never ran on (history is not evaluated):
    /// the last seq when the gateway started, taken before any source could commit.
    pub start_seq: i64,
}

/// The running evaluation: engine plus what is needed to word and route its outputs.
struct Runner {
    engine: Engine,
    subscribers: Vec<Subscriber>,
    ctx: AlarmContext,
    evaluated: i64,
    ack_required: Vec<bool>,
}

/// Runs the alarm engine until `token` is cancelled.
///
/// # Errors
/// The buffer failed or stopped.
pub async fn run(
    cfg: AlarmsConfig,
    rules: RuleSet,
    users: Vec<UserConfig>,
    ctx: AlarmContext,
    token: CancellationToken,
) -> Result<(), TaskError> {
    let fail = |what: &'static str| move |e: StoreError| TaskError::new(what, e);
    // Subscribe before reading the evaluated seq, so nothing committed in between is missed.
    let mut committed = ctx.store.subscribe();
    let (records, evaluated) = ctx
        .reader
        .alarm_records()
        .await
        .map_err(fail("cannot load alarm state"))?;
    let instances = records.into_iter().map(persist::instance).collect();
    let now = Timestamp::now().as_millis();
    let evaluated = evaluated.unwrap_or(ctx.start_seq);
    let ack_required = rules.rules.iter().map(|r| r.ack_required).collect();
    let mut runner = Runner {
        engine: Engine::new(rules, instances, now),
        subscribers: crate::alarms::outbox::subscribers(&cfg, &users),
        ctx: ctx.clone(),
        evaluated,
        ack_required,
    };
    let sensors = ctx
        .reader
        .sensors()
        .await
        .map_err(fail("cannot read sensors"))?;
    for s in sensors {
        runner.engine.add_sensor(info_of(s));
    }
    // Stale rules start from the latest committed value of each sensor.
    let mut out = Vec::new();
    for idx in 0..runner.engine.instances().len() {
        let sensor = runner.engine.instance(idx).sensor.clone();
        if let Some(v) = ctx.store.latest.get(&sensor)
            && v.quality == Quality::Good
        {
            runner.engine.note_good(idx, v.ts.as_millis());
        }
    }
    let (tx, mut requests) = mpsc::channel::<Request>(64);
    {
        let mut slot = ctx.alarms.inner.tx.write();
        *slot = Some(tx);
    }
    runner.publish_all();
    info!(
        component = "alarms",
        rules = runner.engine.rules().rules.len(),
        alarms = runner.engine.instances().len(),
        evaluated_seq = runner.evaluated,
        "Alarm engine started."
    );
    runner
        .catch_up(&mut out)
        .await
        .map_err(fail("catch-up failed"))?;
    let mut ticker = tokio::time::interval(cfg.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Corrections of the clock move the timeline; the engine's timers move with it.
    let clock = crate::clock::global();
    let mut shifted = clock.timeline_shift_ms();
    loop {
        tokio::select! {
            () = token.cancelled() => break,
            batch = committed.recv() => match batch {
                Ok(batch) => {
                    let shift = clock.timeline_shift_ms();
                    runner.engine.shift(shift - shifted);
                    shifted = shift;
                    let first = batch.first_seq.0;
                    if first > runner.evaluated + 1 {
                        runner.catch_up_to(first - 1, &mut out).await.map_err(fail("catch-up failed"))?;
                    }
                    runner.learn_sensors(&batch.readings).await;
                    let mut last = runner.evaluated;
                    for (seq, r) in (first..).zip(batch.readings.iter()) {
                        if seq <= runner.evaluated {
                            continue;
                        }
                        runner.engine.on_reading(r, &mut out);
                        last = seq;
                    }
                    let n = u64::try_from(last - runner.evaluated).unwrap_or(0);
                    ctx.alarms.inner.metrics.evaluated.inc_by(n);
                    runner.commit(&mut out, Some(last), Vec::new()).await.map_err(fail("cannot store alarm state"))?;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    runner.catch_up(&mut out).await.map_err(fail("catch-up failed"))?;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = ticker.tick() => {
                let shift = clock.timeline_shift_ms();
                runner.engine.shift(shift - shifted);
                shifted = shift;
                runner.engine.tick(Timestamp::now().as_millis(), &mut out);
                if !out.is_empty() || runner.engine.has_dirty() {
                    runner.commit(&mut out, None, Vec::new()).await.map_err(fail("cannot store alarm state"))?;
                }
            }
            Some(req) = requests.recv() => {
                runner.handle(req, &mut out).await.map_err(fail("cannot store an operator action"))?;
            }
        }
    }
    let mut slot = ctx.alarms.inner.tx.write();
    *slot = None;
    Ok(())
}

fn info_of(s: crate::store::SensorRow) -> SensorInfo {
    SensorInfo {
        id: s.id,
        name: s.name,
        kind: s.kind,
        unit: s.unit,
        floor: s.floor,
        room: s.room,
    }
}

impl Runner {
    /// Evaluates readings committed after `evaluated`, from SQLite, up to the last seq.
    async fn catch_up(&mut self, out: &mut Vec<Output>) -> Result<(), StoreError> {
        let last = self.ctx.store.last_seq();
        self.catch_up_to(last, out).await
    }

    async fn catch_up_to(&mut self, upto: i64, out: &mut Vec<Output>) -> Result<(), StoreError> {
        while self.evaluated < upto {
            let after = self.evaluated;
            let limit = CATCH_UP_CHUNK.min(upto - after);
            let rows = self.ctx.reader.readings_after(Seq(after), limit).await?;
            let Some(last_seq) = rows.last().map(|r| r.seq.0) else {
                // Rows dropped by the disk budget: nothing left to evaluate below `upto`.
                self.commit(out, Some(upto), Vec::new()).await?;
                return Ok(());
            };
            let readings: Vec<Reading> = rows.into_iter().map(|r| r.reading).collect();
            self.learn_sensors(&readings).await;
            for r in &readings {
                self.engine.on_reading(r, out);
            }
            self.ctx
                .alarms
                .inner
                .metrics
                .evaluated
                .inc_by(readings.len() as u64);
            self.commit(out, Some(last_seq.min(upto)), Vec::new())
                .await?;
        }
        Ok(())
    }

    /// Fetches metadata of sensors the engine has not seen, so selectors by floor, room and
    /// kind apply to them.
    async fn learn_sensors(&mut self, readings: &[Reading]) {
        // A first batch can carry every sensor of the site: a set keeps this linear.
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut unknown: Vec<String> = Vec::new();
        for r in readings {
            let id = r.sensor.as_str();
            if !self.engine.knows(id) && seen.insert(id) {
                unknown.push(id.to_owned());
            }
        }
        for id in unknown {
            match self.ctx.reader.sensor(&id).await {
                Ok(Some(row)) => self.engine.add_sensor(info_of(row)),
                Ok(None) => {}
                Err(e) => {
                    warn!(component = "alarms", sensor = %id, error = %e, "Cannot read sensor metadata.")
                }
            }
        }
    }

    async fn handle(&mut self, req: Request, out: &mut Vec<Output>) -> Result<(), StoreError> {
        let now = Timestamp::now().as_millis();
        let result = self.engine.command(req.id, &req.cmd, &req.actor, now, out);
        let audit = AuditRecord {
            ts: now,
            actor: req.actor.user.clone(),
            role: req.actor.role.map(|r| r.as_str().to_owned()),
            channel: req.actor.channel.clone(),
            action: req.cmd.name().to_owned(),
            target: Some(req.id.to_string()),
            outcome: if result.is_ok() { "done" } else { "refused" }.to_owned(),
            detail: result.as_ref().err().map(ToString::to_string),
        };
        if let Err(e) = &result {
            self.ctx.alarms.inner.metrics.refused.inc();
            warn!(component = "alarms", user = %req.actor.user, channel = %req.actor.channel, action = req.cmd.name(), alarm = req.id, reason = %e, "Alarm action refused.");
        } else {
            info!(component = "alarms", user = %req.actor.user, channel = %req.actor.channel, action = req.cmd.name(), alarm = req.id, "Alarm action done.");
        }
        let kinds: Vec<EventKind> = out
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e.kind),
                Output::Reminder { .. } => None,
            })
            .collect();
        self.commit(out, None, vec![audit]).await?;
        let reply = match result {
            Ok(()) => {
                let idx = self.engine.index_of(req.id);
                match idx {
                    Some(idx) => Ok(CommandOutcome {
                        alarm: self.view(idx),
                        event: kinds.first().copied().unwrap_or(EventKind::Acked),
                    }),
                    None => Err(AlarmError::Refused(Refusal::Unknown(req.id))),
                }
            }
            Err(e) => Err(AlarmError::Refused(e)),
        };
        let _caller_may_be_gone = req.reply.send(reply);
        Ok(())
    }

    /// Stores the engine's outputs and changed instances (and `evaluated`), in one transaction.
    async fn commit(
        &mut self,
        out: &mut Vec<Output>,
        evaluated: Option<i64>,
        audit: Vec<AuditRecord>,
    ) -> Result<(), StoreError> {
        let dirty = self.engine.take_dirty();
        if out.is_empty() && dirty.is_empty() && audit.is_empty() {
            if let Some(seq) = evaluated {
                // Nothing changed: the seq is written with the next real step (a restart then
                // re-evaluates those readings, which changes nothing either).
                self.evaluated = self.evaluated.max(seq);
            }
            self.refresh_touched();
            return Ok(());
        }
        // Every step records how far evaluation got, so a restart never replays readings
        // against a state that already reflects later ones.
        let mut step = AlarmStep {
            evaluated_seq: Some(evaluated.map_or(self.evaluated, |e| e.max(self.evaluated))),
            audit,
            ..AlarmStep::default()
        };
        for &idx in &dirty {
            let inst = self.engine.instance(idx);
            let rule = self.engine.rules().rules[inst.rule].alert.clone();
            step.records
                .push(persist::record(inst, rule, self.engine.severity(idx)));
        }
        let mut event_views = Vec::new();
        for o in out.drain(..) {
            match o {
                Output::Event(e) => {
                    let inst = self.engine.instance(e.instance);
                    let rule = &self.engine.rules().rules[inst.rule];
                    let severity = rule.severity;
                    let notify = if e.notify {
                        self.notifications(e.instance, e.kind, severity, &e.message)
                    } else {
                        Vec::new()
                    };
                    step.events.push(AlarmEventRecord {
                        ts: e.ts,
                        alarm_id: inst.id,
                        alarm: inst.key.clone(),
                        rule: rule.alert.clone(),
                        sensor: inst.sensor.clone(),
                        event: e.kind.as_str(),
                        state: e.state.as_str(),
                        severity,
                        value: e.value,
                        message: e.message.clone(),
                        actor: e.actor.as_ref().map(|a| a.user.clone()),
                        channel: e.actor.as_ref().map(|a| a.channel.clone()),
                        notify,
                    });
                    event_views.push((e.kind, e.instance));
                }
                Output::Reminder { instance, ts } => {
                    let inst = self.engine.instance(instance);
                    let severity = self.engine.severity(instance);
                    let alert = self.engine.rules().rules[inst.rule].alert.clone();
                    let message = self.view(instance).message;
                    for s in &self.subscribers {
                        if severity < s.min_severity {
                            continue;
                        }
                        let text = format!(
                            "{}\n{}\n{}",
                            text::reminder_header(s.lang, severity, inst.id, &alert),
                            message,
                            text::ack_hint(s.lang, inst.id)
                        );
                        step.reminders.push(NotificationRecord {
                            subscriber: s.key.clone(),
                            channel: s.channel.clone(),
                            address: s.address.clone(),
                            kind: "reminder",
                            severity,
                            text,
                            alarm_id: inst.id,
                            dedup: Some(format!("reminder:{}:{ts}", inst.id)),
                        });
                    }
                }
            }
        }
        let notified =
            step.events.iter().any(|e| !e.notify.is_empty()) || !step.reminders.is_empty();
        let step = Arc::new(step);
        self.ctx.ingest.commit_alarm_step(step.clone()).await?;
        if let Some(seq) = evaluated {
            self.evaluated = self.evaluated.max(seq);
        }
        for e in &step.events {
            self.ctx
                .alarms
                .inner
                .metrics
                .events
                .get_or_create(&vec![("event".to_owned(), e.event.to_owned())])
                .inc();
            info!(component = "alarms", alarm = e.alarm_id, event = e.event, severity = e.severity.as_str(), message = %e.message, "Alarm event.");
        }
        let views: Vec<AlarmView> = dirty.iter().map(|&i| self.view(i)).collect();
        self.ctx.alarms.set_views(views, false);
        self.refresh_touched();
        for (kind, idx) in event_views {
            let _no_listener_is_fine = self.ctx.alarms.inner.events.send((kind, self.view(idx)));
        }
        if notified {
            self.ctx.alarms.inner.wake.notify_one();
        }
        Ok(())
    }

    /// One notification per subscriber that wants this severity.
    fn notifications(
        &self,
        idx: usize,
        kind: EventKind,
        severity: Severity,
        message: &str,
    ) -> Vec<NotificationRecord> {
        let inst = self.engine.instance(idx);
        let alert = &self.engine.rules().rules[inst.rule].alert;
        let needs_ack = inst.state.is_unacked() && self.ack_required[inst.rule];
        self.subscribers
            .iter()
            .filter(|s| severity >= s.min_severity)
            .map(|s| {
                let mut text = format!(
                    "{}\n{}",
                    text::header(s.lang, kind, severity, inst.id, alert),
                    message
                );
                if needs_ack && kind == EventKind::Raised {
                    text.push('\n');
                    text.push_str(&text::ack_hint(s.lang, inst.id));
                }
                NotificationRecord {
                    subscriber: s.key.clone(),
                    channel: s.channel.clone(),
                    address: s.address.clone(),
                    kind: kind.as_str(),
                    severity,
                    text,
                    alarm_id: inst.id,
                    dedup: None,
                }
            })
            .collect()
    }

    fn view(&self, idx: usize) -> AlarmView {
        let inst = self.engine.instance(idx);
        let rule = &self.engine.rules().rules[inst.rule];
        let fallback = SensorInfo {
            id: inst.sensor.clone(),
            ..SensorInfo::default()
        };
        let info = self.engine.sensor_info(&inst.sensor).unwrap_or(&fallback);
        AlarmView {
            id: inst.id,
            alert: rule.alert.clone(),
            sensor: inst.sensor.clone(),
            name: info.name.clone(),
            location: text::location(info),
            state: inst.state,
            severity: rule.severity,
            value: inst.value,
            unit: info.unit.clone(),
            message: text::message(rule, info, inst.value, inst.state.is_active()),
            raised_ms: inst.raised_ms,
            acked_by: inst.acked_by.clone(),
            shelved_until: inst.shelved_until,
            out_of_service: inst.out_of_service,
            ack_required: rule.ack_required,
        }
    }

    /// Updates the listed value of alarms whose sensor reported a new value.
    fn refresh_touched(&mut self) {
        let mut touched = self.engine.take_touched();
        if touched.is_empty() {
            return;
        }
        touched.sort_unstable();
        touched.dedup();
        let views: Vec<AlarmView> = touched.iter().map(|&i| self.view(i)).collect();
        self.ctx.alarms.set_views(views, false);
    }

    fn publish_all(&self) {
        let views: Vec<AlarmView> = (0..self.engine.instances().len())
            .filter(|&i| !self.engine.instance(i).retired)
            .map(|i| self.view(i))
            .collect();
        self.ctx.alarms.set_views(views, true);
    }
}
