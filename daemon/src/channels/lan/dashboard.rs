//! The LAN page's dashboard: gathers status, alarms, sensors with their latest values, floors and
//! the session's chat into a [`page::Dashboard`].
//!
//! Owns: reading the gateway's state for the page. Does not own: the markup (see `super::page`).

use std::collections::HashMap;

use maud::Markup;
use tracing::warn;

use super::{Page, Who, page, pictures};
use crate::model::{Lang, Timestamp};
use crate::store::SensorRow;

/// The dashboard of `who` in `lang`, with the one-time `flash` message.
pub(super) async fn dashboard(
    p: &Page,
    who: &Who,
    lang: Lang,
    flash: Option<(bool, String)>,
) -> Markup {
    let cfg = &who.cfg;
    let report = p.core.status().await;
    let now = Timestamp::now().as_millis();
    let stale_ms = i64::try_from(cfg.agent.stale_after.as_millis()).unwrap_or(i64::MAX);
    let meta: HashMap<String, SensorRow> = match p.core.reader.sensors().await {
        Ok(rows) => rows.into_iter().map(|r| (r.id.clone(), r)).collect(),
        Err(e) => {
            warn!(error = %e, "LAN page: cannot read the sensors.");
            HashMap::new()
        }
    };
    let w = page::words(lang);
    let mut sensors: Vec<(String, String, page::SensorLine)> = p
        .core
        .store
        .latest
        .snapshot()
        .into_iter()
        .map(|(id, v)| {
            let m = meta.get(id.as_str());
            let floor = m.and_then(|m| m.floor.clone()).unwrap_or_default();
            let room = m.and_then(|m| m.room.clone()).unwrap_or_default();
            let location = match (floor.is_empty(), room.is_empty()) {
                (false, false) => format!("{} {floor}, {room}", w.floor),
                (false, true) => format!("{} {floor}", w.floor),
                (true, false) => room.clone(),
                (true, true) => String::new(),
            };
            let age = now - v.ts.as_millis();
            let line = page::SensorLine {
                id: id.to_string(),
                name: m.map(|m| m.name.clone()).unwrap_or_default(),
                location,
                value: v.value,
                unit: m.map(|m| m.unit.clone()).unwrap_or_default(),
                quality: v.quality,
                age_s: u64::try_from(age.max(0) / 1000).unwrap_or(0),
                stale: age > stale_ms,
            };
            (floor, room, line)
        })
        .collect();
    sensors.sort_by(|a, b| {
        floor_order(&a.0, &b.0)
            .then_with(|| a.1.cmp(&b.1))
            .then_with(|| a.2.id.cmp(&b.2.id))
    });
    let floors = pictures::floors(&p.core).await;
    let building = cfg
        .site
        .name
        .clone()
        .or_else(|| cfg.gateway.name.clone())
        .unwrap_or_else(|| cfg.gateway.id.clone());
    let current = p.auth.session(cfg, &who.id);
    page::dashboard(&page::Dashboard {
        lang,
        building,
        user: who.session.user.clone(),
        operator: who.operator(),
        csrf: who.session.csrf.clone(),
        status: page::StatusLine {
            points: report.points,
            readings_per_s: report.readings_per_s,
            buffer_rows: report.buffer_rows,
            buffer_bytes: report.buffer_bytes,
            buffer_max_bytes: report.buffer_max_bytes,
            sync_lag_rows: report.sync_lag_rows,
            uptime_s: report.uptime_s,
        },
        alarms: p.core.alarms.list(true),
        sensors: sensors.into_iter().map(|(_, _, l)| l).collect(),
        floors,
        chat: current.map(|s| s.chat).unwrap_or_default(),
        flash,
        now_ms: now,
    })
}

/// Floors in building order: numbers by value (basement letters and names after), then by name.
fn floor_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_sort_in_building_order() {
        let mut f = vec!["10", "B", "2", "1"];
        f.sort_by(|a, b| floor_order(a, b));
        assert_eq!(f, ["1", "2", "10", "B"]);
    }
}
