//! The task that owns one Modbus connection and polls its devices.
//!
//! Devices are polled when due, one request at a time on the link. Per device and cycle:
//! - each planned block is read; a block rejected with exception 02 is bisected until the bad
//!   addresses are isolated. A hole is learned (and stored: it survives restarts) only when it
//!   is found in two consecutive cycles and, in each, the device returned data for a read sent
//!   after the rejected one (when no later read of the plan did, one block that read fine is read
//!   again as a witness). A device that rejects everything for a while (a PLC in STOP, a device
//!   booting) answers one contiguous stretch of 02s: a rejection followed by data in the same
//!   cycle means the stretch ended in that cycle, so the next cycle cannot see it again, and
//!   entering or leaving STOP in the middle of a cycle never teaches a hole;
//! - learned holes are verified every `hole_recheck_interval` (counted from the start, so a
//!   restart reads the stored plan without probing the holes again): that cycle reads the plan
//!   without holes and keeps only those still rejected. Holes
//!   cleared in the buffer (`markoff modbus holes --forget`) are dropped within a second;
//! - another exception marks only that block's points `bad`; a timeout or transport error marks
//!   the device's remaining points `comm_error` and ends its cycle (its cost on the line: see
//!   [`super::link`]);
//! - after `down_after` failed cycles the device is down: its `<device>.online` sensor reads 0 and
//!   it is probed again only every `reprobe_interval`.
//!
//! A failed read never becomes a number; values unchanged within a point's deadband are not
//! stored again until its `max_silence` has passed.
//!
//! Layout: this file the polling loop and the learning of holes; `convert` what one point's read
//! becomes and whether it is stored.

use std::sync::Arc;

use tokio::time::Instant;
use tokio_modbus::ExceptionCode;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

mod convert;

use self::convert::{Converted, Outcome, Report, convert, extract, should_store};
use super::link::{Link, LinkError};
use super::planner::{self, Block, Hole, PlanPoint};
use super::{Connection, Device, Point, sensor_metas};
use crate::model::{Quality, Reading, Timestamp};
use crate::service::supervisor::TaskError;
use crate::sources::SourceContext;

/// Per-device polling state.
#[derive(Debug)]
struct DeviceState {
    plan_points: Vec<PlanPoint>,
    holes: Vec<Hole>,
    blocks: Vec<Block>,
    next_due: Instant,
    failures: u32,
    down: bool,
    online: Option<bool>,
    reports: Vec<Report>,
    holes_key: String,
    /// When the learned holes are verified next.
    recheck_due: Instant,
    /// When the stored holes are compared with these next (a forget through the API).
    stored_check_due: Instant,
    /// Holes found in the previous cycle and not learned yet: learned if found again.
    pending: Vec<Hole>,
}

/// How often a device with learned holes looks for them being cleared in the buffer.
const STORED_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// What a cycle found out about holes.
#[derive(Default)]
struct Learning {
    /// Holes found by bisection this cycle, each with the number of the rejected read that
    /// showed it.
    found: Vec<(Hole, u32)>,
    /// Reads sent so far this cycle.
    reads: u32,
    /// Number of the last read that returned data (0: none did).
    last_data: u32,
    /// The first block that returned data: read again as a witness when needed.
    witness: Option<Block>,
}

impl Learning {
    /// Whether any read returned data.
    fn data(&self) -> bool {
        self.last_data > 0
    }

    /// Whether a read that returned data followed the read that showed `seq`.
    fn followed(&self, seq: u32) -> bool {
        seq < self.last_data
    }

    /// The holes found and followed by data, without repeats.
    fn confirmed(&self) -> Vec<Hole> {
        let mut out: Vec<Hole> = Vec::new();
        for (h, seq) in &self.found {
            if self.followed(*seq) && !out.contains(h) {
                out.push(*h);
            }
        }
        out
    }

    /// Whether a hole outside `known` was found with no data after it.
    fn unfollowed(&self, known: &[Hole]) -> bool {
        self.found
            .iter()
            .any(|(h, seq)| !self.followed(*seq) && !known.contains(h))
    }
}

/// The state key under which a device's learned holes are kept.
pub fn holes_key(conn: &Connection, dev: &Device) -> String {
    format!("modbus/holes/{}/{}", conn.target, dev.slave)
}

/// Runs the connection until `token` is cancelled.
///
/// # Errors
/// The buffer stopped accepting readings.
pub async fn run(
    conn: Arc<Connection>,
    ctx: SourceContext,
    token: CancellationToken,
) -> Result<(), TaskError> {
    let source = format!("modbus:{}", conn.name);
    tokio::select! {
        () = token.cancelled() => return Ok(()),
        r = ctx.ingest.register_sensors(sensor_metas(&conn)) => r.map_err(|e| TaskError::new("cannot register Modbus sensors", e))?,
    }
    let mut states = Vec::with_capacity(conn.devices.len());
    let start = Instant::now();
    for dev in &conn.devices {
        let key = holes_key(&conn, dev);
        let holes = stored_holes(&ctx, &key).await.unwrap_or_default();
        let plan_points = dev.plan_points();
        let blocks = planner::plan(&plan_points, &dev.limits, &holes);
        states.push(DeviceState {
            plan_points,
            holes,
            blocks,
            next_due: start,
            failures: 0,
            down: false,
            online: None,
            reports: vec![Report::default(); dev.points.len()],
            holes_key: key,
            recheck_due: start + dev.hole_recheck_interval,
            stored_check_due: start + STORED_CHECK,
            pending: Vec::new(),
        });
    }
    info!(connection = %conn.name, target = %conn.target, devices = conn.devices.len(), "Modbus connection started.");
    let mut link = Link::new(conn.clone());
    loop {
        let Some((i, due)) = states
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.next_due))
            .min_by_key(|(_, d)| *d)
        else {
            token.cancelled().await;
            return Ok(());
        };
        tokio::select! {
            () = token.cancelled() => return Ok(()),
            () = tokio::time::sleep_until(due) => {}
        }
        let dev = &conn.devices[i];
        let state = &mut states[i];
        let forgotten = adopt_stored_holes(state, &ctx).await;
        if forgotten {
            state.blocks = planner::plan(&state.plan_points, &dev.limits, &state.holes);
            info!(device = %dev.name, holes = state.holes.len(), requests = state.blocks.len(), "Address holes cleared in the buffer; plan updated.");
        }
        let (readings, texts, learned) =
            poll_device(&mut link, &conn, dev, state, &ctx, &source).await;
        let now = Instant::now();
        state.next_due = if state.down {
            now + dev.reprobe_interval
        } else {
            let next = due + dev.interval;
            if next <= now {
                now + dev.interval
            } else {
                next
            }
        };
        if learned {
            state.blocks = planner::plan(&state.plan_points, &dev.limits, &state.holes);
            let json = serde_json::to_string(&state.holes).unwrap_or_default();
            let saved = tokio::select! {
                () = token.cancelled() => return Ok(()),
                r = ctx.ingest.set_state(&state.holes_key, &json) => r,
            };
            saved.map_err(|e| TaskError::new("buffer closed", e))?;
            info!(device = %dev.name, holes = ?state.holes, requests = state.blocks.len(), "Address holes changed; plan updated.");
        }
        for (sensor, text) in texts {
            ctx.ingest
                .set_attribute(&sensor, &text, Timestamp::now())
                .await
                .map_err(|e| TaskError::new("buffer closed", e))?;
        }
        if !readings.is_empty() {
            tokio::select! {
                () = token.cancelled() => return Ok(()),
                r = ctx.ingest.submit(readings) => r.map_err(|e| TaskError::new("buffer closed", e))?,
            }
        }
    }
}

/// The holes stored under `key`; `None` when they cannot be read.
async fn stored_holes(ctx: &SourceContext, key: &str) -> Option<Vec<Hole>> {
    match ctx.reader.state(key).await {
        Ok(Some(json)) => serde_json::from_str(&json).ok(),
        Ok(None) => Some(Vec::new()),
        Err(_) => None,
    }
}

/// While a device has holes, at most every [`STORED_CHECK`]: takes the stored holes when they
/// were cleared in the buffer (a subset of the learned ones). Returns whether any was dropped.
async fn adopt_stored_holes(state: &mut DeviceState, ctx: &SourceContext) -> bool {
    let now = Instant::now();
    if state.holes.is_empty() || now < state.stored_check_due {
        return false;
    }
    state.stored_check_due = now + STORED_CHECK;
    match stored_holes(ctx, &state.holes_key).await {
        Some(stored)
            if stored.len() < state.holes.len()
                && stored.iter().all(|h| state.holes.contains(h)) =>
        {
            state.holes = stored;
            true
        }
        _ => false,
    }
}

/// One polling cycle of one device: readings to store, text attributes, and whether holes changed.
async fn poll_device(
    link: &mut Link,
    conn: &Connection,
    dev: &Device,
    state: &mut DeviceState,
    ctx: &SourceContext,
    source: &str,
) -> (Vec<Reading>, Vec<(String, String)>, bool) {
    let mut outcomes: Vec<Option<Outcome>> = (0..dev.points.len()).map(|_| None).collect();
    let mut answered = false;
    let mut failure: Option<LinkError> = None;
    let holes_before = state.holes.clone();
    // Verifying the holes: this cycle reads the plan as if none had been learned.
    let recheck = !state.holes.is_empty() && Instant::now() >= state.recheck_due;
    let blocks = if recheck {
        planner::plan(&state.plan_points, &dev.limits, &[])
    } else {
        state.blocks.clone()
    };
    let mut learning = Learning::default();
    for block in &blocks {
        match read_block(
            link,
            dev.slave,
            block,
            &state.plan_points,
            &mut learning,
            &dev.points,
            &mut outcomes,
        )
        .await
        {
            Ok(_) => answered = true,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // A rejection not followed by data may be the device entering STOP: one block that read
    // fine is read again to tell.
    let mut witnessed = true;
    if failure.is_none() && learning.data() && learning.unfollowed(&state.holes) {
        witnessed = read_witness(link, dev.slave, &mut learning).await;
    }
    let ts = Timestamp::now();
    let now = Instant::now();
    // Only a device that returned data after a rejection tells a hole from a refusal of
    // everything; a pending verification is retried at the next cycle until it does.
    // A verification counts only when the whole hole-free plan was read and every new rejection
    // was followed by data.
    let verified = failure.is_none() && witnessed && !learning.unfollowed(&state.holes);
    if learning.data() && (!recheck || verified) {
        if recheck || state.recheck_due <= now {
            state.recheck_due = now + dev.hole_recheck_interval;
        }
        if recheck {
            state
                .holes
                .retain(|h| learning.found.iter().any(|(f, _)| f == h));
        }
        let mut pending = Vec::new();
        for h in learning.confirmed() {
            if state.holes.contains(&h) {
                continue;
            }
            if state.pending.contains(&h) {
                state.holes.push(h);
            } else {
                pending.push(h);
            }
        }
        state.pending = pending;
        if recheck && state.holes != holes_before {
            let forgotten = holes_before
                .iter()
                .filter(|h| !state.holes.contains(h))
                .count();
            info!(device = %dev.name, forgotten, kept = state.holes.len(), "Verified the learned address holes.");
        }
    } else {
        state.pending.clear();
    }
    if let Some(e) = &failure {
        ctx.metrics.count_source_error(source);
        if !matches!(e, LinkError::Waiting { .. }) || state.failures == 0 {
            tracing::debug!(connection = %conn.name, device = %dev.name, error = %e, "Modbus cycle failed.");
        }
    }
    let mut readings = Vec::with_capacity(dev.points.len() + 1);
    let mut texts = Vec::new();
    for (i, point) in dev.points.iter().enumerate() {
        let outcome = outcomes[i].take().unwrap_or(Outcome::NoAnswer);
        if let Outcome::Rejected(code) = &outcome
            && state.reports[i].quality != Some(Quality::Bad)
        {
            warn!(device = %dev.name, point = %point.name, code = ?code, "Device rejected the read of this point.");
            ctx.metrics.count_source_error(source);
        }
        match convert(point, outcome) {
            Converted::Text(t) => texts.push((point.sensor.to_string(), t)),
            Converted::Value(value, quality) => {
                if should_store(&mut state.reports[i], point, value, quality, now) {
                    readings.push(Reading {
                        sensor: point.sensor.clone(),
                        ts,
                        value,
                        quality,
                    });
                }
            }
        }
    }
    if answered {
        state.failures = 0;
        if state.down {
            info!(device = %dev.name, "Modbus device answers again.");
        }
        state.down = false;
    } else {
        state.failures += 1;
        if !state.down && state.failures >= dev.down_after {
            state.down = true;
            link.absent(dev.slave);
            warn!(device = %dev.name, failures = state.failures, reprobe = ?dev.reprobe_interval, error = ?failure.as_ref().map(ToString::to_string), "Modbus device is down; probing it less often.");
        }
    }
    let online = !state.down;
    ctx.metrics
        .set_modbus_device_up(&conn.name, &dev.name, online);
    ctx.health.update(source, |h| {
        h.connected = link.is_open();
        h.devices.insert(dev.name.clone(), online);
        if let Some(e) = &failure {
            h.last_error = Some(e.to_string());
        }
    });
    if state.online != Some(online) && (answered || state.down) {
        state.online = Some(online);
        readings.push(Reading::good(
            dev.online_sensor(),
            ts,
            f64::from(u8::from(online)),
        ));
    }
    ctx.health.update(source, |h| {
        h.holes.insert(dev.name.clone(), state.holes.len());
    });
    (readings, texts, state.holes != holes_before)
}

/// Reads a block; on exception 02 for a multi-point block, bisects it. Returns whether the block
/// was read in one piece.
async fn read_block(
    link: &mut Link,
    slave: u8,
    block: &Block,
    pts: &[PlanPoint],
    holes: &mut Learning,
    points: &[Point],
    out: &mut [Option<Outcome>],
) -> Result<bool, LinkError> {
    holes.reads += 1;
    let seq = holes.reads;
    match link
        .read(slave, block.kind, block.start, block.count)
        .await?
    {
        Ok(data) => {
            holes.last_data = seq;
            if holes.witness.is_none() {
                holes.witness = Some(block.clone());
            }
            for &idx in &block.points {
                out[idx] = Some(extract(&points[idx], block, &data));
            }
            Ok(true)
        }
        Err(ExceptionCode::IllegalDataAddress) => match planner::split(block, pts) {
            Some((left, right)) => {
                let l = Box::pin(read_block(link, slave, &left, pts, holes, points, out)).await?;
                let r = Box::pin(read_block(link, slave, &right, pts, holes, points, out)).await?;
                if l && r {
                    holes
                        .found
                        .push((planner::hole_between(&left, &right), seq));
                }
                Ok(false)
            }
            None => {
                for &idx in &block.points {
                    if let Some(p) = pts.iter().find(|p| p.index == idx) {
                        holes.found.push((planner::hole_of_point(p), seq));
                    }
                    out[idx] = Some(Outcome::Rejected(ExceptionCode::IllegalDataAddress));
                }
                Ok(false)
            }
        },
        Err(code) => {
            for &idx in &block.points {
                out[idx] = Some(Outcome::Rejected(code));
            }
            Ok(true)
        }
    }
}

/// Reads the witness block again; returns whether the read was answered (with data or not).
async fn read_witness(link: &mut Link, slave: u8, learning: &mut Learning) -> bool {
    let Some(block) = learning.witness.clone() else {
        return false;
    };
    learning.reads += 1;
    match link.read(slave, block.kind, block.start, block.count).await {
        Ok(Ok(_)) => {
            learning.last_data = learning.reads;
            true
        }
        Ok(Err(_)) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
