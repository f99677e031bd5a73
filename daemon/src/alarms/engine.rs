//! The alarm state machine, free of I/O and clocks: readings and the current time go in,
//! events and reminders come out. The service persists what changed.
//!
//! One *instance* per (rule, matching sensor). Per instance the engine keeps the condition (with
//! deadband), the on-delay and off-delay timers, the ISA-18.2 state, shelving and
//! out-of-service. Hot path: one hash lookup per reading, then one comparison per rule that
//! applies to the sensor.
//!
//! Layout: this file the instances and the state machine; `event` what it produces; `command`
//! the operator actions.

mod command;
mod event;

use std::collections::HashMap;

pub use self::command::{Command, Refusal};
pub use self::event::{Event, EventKind, Output};
use super::config::RuleKind;
use super::rules::{RuleSet, SensorInfo};
use super::text;
use crate::model::{Actor, AlarmState, Quality, Reading, Severity};

/// One alarm: a rule applied to one sensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Short id (stable, persisted).
    pub id: i64,
    /// `<alert>/<sensor>`.
    pub key: String,
    /// Index of the rule.
    pub rule: usize,
    /// Sensor id.
    pub sensor: String,
    /// ISA-18.2 state.
    pub state: AlarmState,
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
    /// Last good reading (stale rules); not persisted.
    pub last_good_ms: Option<i64>,
    /// Previous good (ts, value) for rate rules; not persisted.
    pub prev: Option<(i64, f64)>,
    /// Its rule no longer applies to its sensor (the rule's selector changed): kept in the
    /// buffer, neither evaluated nor listed. Not persisted: decided again at every start.
    pub retired: bool,
}

impl Instance {
    fn new(id: i64, rule: usize, alert: &str, sensor: &str) -> Self {
        Self {
            id,
            key: format!("{alert}/{sensor}"),
            rule,
            sensor: sensor.to_owned(),
            state: AlarmState::Normal,
            condition: false,
            pending_since: None,
            clearing_since: None,
            value: None,
            raised_ms: None,
            acked_ms: None,
            acked_by: None,
            cleared_ms: None,
            shelved_until: None,
            shelved_by: None,
            out_of_service: false,
            last_notified_ms: None,
            last_good_ms: None,
            prev: None,
            retired: false,
        }
    }

    /// Whether notifications are suppressed at `now`.
    pub fn suppressed(&self, now: i64) -> bool {
        self.out_of_service || self.shelved_until.is_some_and(|t| t > now)
    }
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    rules: RuleSet,
    sensors: HashMap<String, SensorInfo>,
    /// Instance indexes per sensor; an empty entry means "known, no rule applies".
    by_sensor: HashMap<String, Vec<usize>>,
    instances: Vec<Instance>,
    by_key: HashMap<String, usize>,
    by_id: HashMap<i64, usize>,
    /// Every instance of a sensor, matching or not.
    all_by_sensor: HashMap<String, Vec<usize>>,
    next_id: i64,
    dirty: Vec<bool>,
    /// Instances whose last value changed (for views; not persisted).
    touched: Vec<usize>,
    started_ms: i64,
}

impl Engine {
    /// An engine for `rules`, resuming `persisted` instances (those whose rule no longer exists
    /// are dropped from evaluation), started at `now`.
    pub fn new(rules: RuleSet, persisted: Vec<Instance>, now: i64) -> Self {
        let mut e = Self {
            rules,
            sensors: HashMap::new(),
            by_sensor: HashMap::new(),
            instances: Vec::new(),
            by_key: HashMap::new(),
            by_id: HashMap::new(),
            all_by_sensor: HashMap::new(),
            next_id: persisted.iter().map(|i| i.id).max().unwrap_or(0) + 1,
            dirty: Vec::new(),
            touched: Vec::new(),
            started_ms: now,
        };
        for mut inst in persisted {
            let Some(rule) = e.rules.rules.iter().position(|r| {
                inst.key
                    .strip_prefix(r.alert.as_str())
                    .is_some_and(|rest| rest.strip_prefix('/') == Some(inst.sensor.as_str()))
            }) else {
                continue;
            };
            inst.rule = rule;
            let idx = e.instances.len();
            e.by_key.insert(inst.key.clone(), idx);
            e.by_id.insert(inst.id, idx);
            e.all_by_sensor
                .entry(inst.sensor.clone())
                .or_default()
                .push(idx);
            e.instances.push(inst);
            e.dirty.push(false);
        }
        e
    }

    /// The rules.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Whether the engine has seen this sensor's metadata.
    pub fn knows(&self, sensor: &str) -> bool {
        self.by_sensor.contains_key(sensor)
    }

    /// Adds (or updates) a sensor: creates an instance for every rule that applies.
    pub fn add_sensor(&mut self, info: SensorInfo) {
        let matching = self.rules.matching(&info);
        let mut idxs = Vec::with_capacity(matching.len());
        for rule in matching {
            let key = format!("{}/{}", self.rules.rules[rule].alert, info.id);
            let idx = match self.by_key.get(&key) {
                Some(i) => *i,
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    let inst = Instance::new(id, rule, &self.rules.rules[rule].alert, &info.id);
                    let i = self.instances.len();
                    self.by_key.insert(key, i);
                    self.by_id.insert(id, i);
                    self.all_by_sensor
                        .entry(info.id.clone())
                        .or_default()
                        .push(i);
                    self.instances.push(inst);
                    self.dirty.push(true);
                    i
                }
            };
            idxs.push(idx);
        }
        if let Some(all) = self.all_by_sensor.get(&info.id) {
            for &i in all {
                self.instances[i].retired = !idxs.contains(&i);
            }
        }
        self.by_sensor.insert(info.id.clone(), idxs);
        // Names and places are kept only for sensors with an alarm (applying or retired), which
        // is what wording and views read; `by_sensor` alone knows the others (at 10,000 points
        // with a few rules, that is most of them: about 4 MB less).
        if self.all_by_sensor.contains_key(&info.id) {
            self.sensors.insert(info.id.clone(), info);
        } else {
            self.sensors.remove(&info.id);
        }
    }

    /// Every instance.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// One instance by index.
    pub fn instance(&self, idx: usize) -> &Instance {
        &self.instances[idx]
    }

    /// Instance index by short id.
    pub fn index_of(&self, id: i64) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// Sensor metadata the engine knows.
    pub fn sensor_info(&self, id: &str) -> Option<&SensorInfo> {
        self.sensors.get(id)
    }

    /// Records a good reading time for stale rules without evaluating anything (used at start,
    /// from the latest committed values).
    pub fn note_good(&mut self, idx: usize, ts: i64) {
        let inst = &mut self.instances[idx];
        inst.last_good_ms = Some(inst.last_good_ms.map_or(ts, |t| t.max(ts)));
    }

    /// Instances whose value changed since the last call (may repeat an index).
    pub fn take_touched(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.touched)
    }

    /// Whether some instance changed since the last [`Engine::take_dirty`].
    pub fn has_dirty(&self) -> bool {
        self.dirty.iter().any(|d| *d)
    }

    /// Indexes of instances changed since the last call, clearing the marks.
    pub fn take_dirty(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, d) in self.dirty.iter_mut().enumerate() {
            if *d {
                out.push(i);
                *d = false;
            }
        }
        out
    }

    /// Evaluates one committed reading. Sensors the engine does not know are added with only
    /// their id (rules that select by floor, room or kind then do not match them).
    pub fn on_reading(&mut self, r: &Reading, out: &mut Vec<Output>) {
        if !self.by_sensor.contains_key(r.sensor.as_str()) {
            self.add_sensor(SensorInfo {
                id: r.sensor.as_str().to_owned(),
                ..SensorInfo::default()
            });
        }
        // Taken out and put back, so evaluation can borrow the engine mutably without a copy.
        let idxs = match self.by_sensor.get_mut(r.sensor.as_str()) {
            Some(v) if !v.is_empty() => std::mem::take(v),
            _ => return,
        };
        let ts = r.ts.as_millis();
        for &idx in &idxs {
            self.evaluate(idx, r, ts, out);
        }
        if let Some(slot) = self.by_sensor.get_mut(r.sensor.as_str()) {
            *slot = idxs;
        }
    }

    fn evaluate(&mut self, idx: usize, r: &Reading, ts: i64, out: &mut Vec<Output>) {
        let rule = &self.rules.rules[self.instances[idx].rule];
        let inst = &mut self.instances[idx];
        let good = r.quality == Quality::Good && r.value.is_some();
        let cond = match rule.kind {
            RuleKind::CommLoss => {
                if inst.sensor.ends_with(".online") {
                    if !good {
                        return;
                    }
                    r.value == Some(0.0)
                } else {
                    r.quality == Quality::CommError
                }
            }
            RuleKind::Stale => {
                if !good {
                    return;
                }
                inst.last_good_ms = Some(inst.last_good_ms.map_or(ts, |t| t.max(ts)));
                false
            }
            _ => {
                let Some(v) = r.value.filter(|_| good) else {
                    return;
                };
                let rate = match inst.prev {
                    Some((pt, pv)) if ts > pt => Some((v - pv) / (ts - pt) as f64 * rule.per_ms),
                    _ => None,
                };
                if rule.kind == RuleKind::Rate {
                    // Readings older than the reference do not move it back.
                    if inst.prev.is_none_or(|(pt, _)| ts > pt) {
                        inst.prev = Some((ts, v));
                    }
                }
                match rule.value_condition(v, rate, inst.condition) {
                    Some(c) => c,
                    None => return,
                }
            }
        };
        if r.value.is_some() && inst.value != r.value {
            inst.value = r.value;
            self.touched.push(idx);
        }
        self.apply(idx, cond, ts, r.value, out);
    }

    /// Moves an instance given its condition at `ts`.
    fn apply(
        &mut self,
        idx: usize,
        cond: bool,
        ts: i64,
        value: Option<f64>,
        out: &mut Vec<Output>,
    ) {
        let rule = &self.rules.rules[self.instances[idx].rule];
        let (on_delay, off_delay) = (rule.on_delay_ms, rule.off_delay_ms);
        let inst = &mut self.instances[idx];
        if inst.condition != cond {
            self.dirty[idx] = true;
        }
        inst.condition = cond;
        if inst.out_of_service {
            inst.pending_since = None;
            inst.clearing_since = None;
            return;
        }
        if cond {
            if inst.clearing_since.take().is_some() {
                self.dirty[idx] = true;
            }
            if !inst.state.is_active() {
                let since = *inst.pending_since.get_or_insert(ts);
                self.dirty[idx] = true;
                if ts - since >= on_delay {
                    self.raise(idx, ts, value, out);
                }
            }
        } else {
            if inst.pending_since.take().is_some() {
                self.dirty[idx] = true;
            }
            if inst.state.is_active() {
                let since = *inst.clearing_since.get_or_insert(ts);
                self.dirty[idx] = true;
                if ts - since >= off_delay {
                    self.clear(idx, ts, value, out);
                }
            }
        }
    }

    fn raise(&mut self, idx: usize, ts: i64, value: Option<f64>, out: &mut Vec<Output>) {
        let inst = &mut self.instances[idx];
        inst.state = AlarmState::ActiveUnacked;
        inst.pending_since = None;
        inst.clearing_since = None;
        inst.raised_ms = Some(ts);
        inst.acked_ms = None;
        inst.acked_by = None;
        inst.cleared_ms = None;
        self.emit(idx, EventKind::Raised, ts, value, None, out);
    }

    fn clear(&mut self, idx: usize, ts: i64, value: Option<f64>, out: &mut Vec<Output>) {
        let ack_required = self.rules.rules[self.instances[idx].rule].ack_required;
        let inst = &mut self.instances[idx];
        inst.clearing_since = None;
        inst.cleared_ms = Some(ts);
        let kind = if inst.state == AlarmState::ActiveUnacked && ack_required {
            inst.state = AlarmState::ClearedUnacked;
            EventKind::Cleared
        } else {
            inst.state = AlarmState::Normal;
            EventKind::Normal
        };
        self.emit(idx, kind, ts, value, None, out);
    }

    fn emit(
        &mut self,
        idx: usize,
        kind: EventKind,
        ts: i64,
        value: Option<f64>,
        actor: Option<Actor>,
        out: &mut Vec<Output>,
    ) {
        self.dirty[idx] = true;
        let inst = &self.instances[idx];
        let rule = &self.rules.rules[inst.rule];
        let fallback;
        let info = match self.sensors.get(&inst.sensor) {
            Some(i) => i,
            None => {
                fallback = SensorInfo {
                    id: inst.sensor.clone(),
                    ..SensorInfo::default()
                };
                &fallback
            }
        };
        let value = value.or(inst.value);
        let message = text::message(rule, info, value, inst.state.is_active());
        // Shelving and out-of-service events themselves are always told.
        let notify = matches!(
            kind,
            EventKind::Shelved
                | EventKind::Unshelved
                | EventKind::OutOfService
                | EventKind::InService
        ) || !inst.suppressed(ts);
        let state = inst.state;
        if notify {
            self.instances[idx].last_notified_ms = Some(ts);
        }
        out.push(Output::Event(Event {
            instance: idx,
            kind,
            ts,
            state,
            value,
            message,
            actor,
            notify,
        }));
    }

    /// Moves every running timer (on/off delays, stale data, reminders, shelving, rates) by
    /// `delta_ms`: the gateway's timeline jumped by that much when the clock was corrected
    /// (`crate::clock`), and no delay may end or start early because of it. Times of past events
    /// (raised, acknowledged, cleared) stay as they were recorded.
    pub fn shift(&mut self, delta_ms: i64) {
        if delta_ms == 0 {
            return;
        }
        let mv = |t: &mut Option<i64>| {
            if let Some(t) = t.as_mut() {
                *t = t.saturating_add(delta_ms);
            }
        };
        self.started_ms = self.started_ms.saturating_add(delta_ms);
        for (idx, inst) in self.instances.iter_mut().enumerate() {
            mv(&mut inst.pending_since);
            mv(&mut inst.clearing_since);
            mv(&mut inst.last_notified_ms);
            mv(&mut inst.last_good_ms);
            if let Some((t, _)) = inst.prev.as_mut() {
                *t = t.saturating_add(delta_ms);
            }
            if inst.shelved_until.is_some() {
                mv(&mut inst.shelved_until);
                self.dirty[idx] = true;
            }
        }
    }

    /// Timer-driven work at `now`: on/off delays of sensors that went quiet, stale data,
    /// shelving expiry and reminders.
    pub fn tick(&mut self, now: i64, out: &mut Vec<Output>) {
        for idx in 0..self.instances.len() {
            if self.instances[idx].retired {
                continue;
            }
            let rule = &self.rules.rules[self.instances[idx].rule];
            let (kind, after, on_delay, off_delay, renotify) = (
                rule.kind,
                rule.after_ms,
                rule.on_delay_ms,
                rule.off_delay_ms,
                rule.renotify_ms,
            );
            let inst = &self.instances[idx];
            if let Some(until) = inst.shelved_until
                && until <= now
            {
                let inst = &mut self.instances[idx];
                inst.shelved_until = None;
                inst.shelved_by = None;
                self.emit(idx, EventKind::Unshelved, now, None, None, out);
            }
            let inst = &self.instances[idx];
            if inst.out_of_service || inst.retired {
                continue;
            }
            if kind == RuleKind::Stale && self.by_sensor.contains_key(&inst.sensor) {
                let last = inst.last_good_ms.unwrap_or(self.started_ms);
                let stale = now - last > after;
                if stale != inst.condition || (stale && !inst.state.is_active()) {
                    self.apply(idx, stale, now, None, out);
                    continue;
                }
            }
            let inst = &self.instances[idx];
            if inst.condition
                && !inst.state.is_active()
                && inst.pending_since.is_some_and(|t| now - t >= on_delay)
            {
                self.raise(idx, now, None, out);
            } else if !inst.condition
                && inst.state.is_active()
                && inst.clearing_since.is_some_and(|t| now - t >= off_delay)
            {
                self.clear(idx, now, None, out);
            }
            let inst = &self.instances[idx];
            if let Some(every) = renotify
                && inst.state == AlarmState::ActiveUnacked
                && !inst.suppressed(now)
                && inst.last_notified_ms.is_some_and(|t| now - t >= every)
            {
                self.instances[idx].last_notified_ms = Some(now);
                self.dirty[idx] = true;
                out.push(Output::Reminder {
                    instance: idx,
                    ts: now,
                });
            }
        }
    }

    /// Severity of an instance's rule.
    pub fn severity(&self, idx: usize) -> Severity {
        self.rules.rules[self.instances[idx].rule].severity
    }
}
