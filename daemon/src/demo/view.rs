//! What the demo shows, and the plain-text view (one status block per second).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::channels::http::format_value;
use crate::context::Core;
use crate::model::Quality;

/// Facts about the demo run shown in the view.
#[derive(Debug, Clone)]
pub(crate) struct Info {
    pub(crate) data_dir: PathBuf,
    pub(crate) api: String,
    #[cfg_attr(not(feature = "tui"), allow(dead_code))]
    pub(crate) log_file: Option<PathBuf>,
    pub(crate) plant: String,
}

/// The sensors the view highlights, in order.
pub(crate) const HIGHLIGHTS: &[&str] = &[
    "plant.supply_temp",
    "plant.return_temp",
    "plant.pressure",
    "plant.burner_on",
    "plant.fault",
    "plant.online",
    "meter.active_power",
    "meter.energy",
    "boiler.pump_current",
    "basement.leak",
    "bathroom_leak.water_leak",
    "office_climate.temperature",
];

/// One line of figures.
pub(crate) fn summary(core: &Core) -> String {
    let s = &core.store;
    format!(
        "{} sensors | {:.0} readings/s | buffer {} rows, {} | last seq {} | tasks {}",
        s.latest.len(),
        core.tracker.readings_per_second(),
        s.rows(),
        crate::config::ByteSize(s.bytes()),
        s.last_seq(),
        core.supervisor.running().len(),
    )
}

/// Open alarms, most urgent first: (active, one line each).
pub(crate) fn alarm_lines(core: &Core) -> Vec<(bool, String)> {
    core.alarms
        .list(true)
        .into_iter()
        .map(|a| {
            (
                a.state.is_active(),
                format!(
                    "#{} {} [{}] {}: {}",
                    a.id,
                    a.alert,
                    a.severity.as_str(),
                    crate::alarms::text::state_word(crate::model::Lang::En, a.state),
                    a.message
                ),
            )
        })
        .collect()
}

/// Display value of a sensor from the cache, with unit when known.
pub(crate) fn value_of(core: &Core, sensor: &str, unit: &str) -> String {
    match core.store.latest.get(sensor) {
        Some(v) if sensor.ends_with("leak") && v.quality == Quality::Good => {
            if v.value == Some(1.0) {
                "LEAK".to_owned()
            } else {
                "dry".to_owned()
            }
        }
        Some(v) => format_value(v.value, unit, v.quality),
        None => "-".to_owned(),
    }
}

pub(crate) async fn run_plain(core: Core, info: Info, done: CancellationToken) {
    println!(
        "markoff demo: simulated building, buffer in {}",
        info.data_dir.display()
    );
    println!(
        "local API: {}  (try: markoff status --api {})",
        info.api, info.api
    );
    println!(
        "Modbus plant: {}  (try: markoff modbus read --controller {} --slave 2 --register input --address 0)",
        info.plant, info.plant
    );
    println!(
        "alarms: markoff alarms --api {}  (acknowledge: markoff ack ID --user demo --api {})",
        info.api, info.api
    );
    let mut units: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let started = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = done.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if core.store.latest.len() > units.len()
            && let Ok(rows) = core.reader.sensors().await
        {
            units = rows.into_iter().map(|r| (r.id, r.unit)).collect();
        }
        let mut line = format!("[{:>4}s] {}", started.elapsed().as_secs(), summary(&core));
        for id in HIGHLIGHTS {
            let unit = units.get(*id).map_or("", String::as_str);
            write!(line, " | {id} {}", value_of(&core, id, unit)).ok();
        }
        println!("{line}");
        for (_, alarm) in alarm_lines(&core) {
            println!("         alarm {alarm}");
        }
    }
    println!(
        "markoff demo: stopped; {} readings committed (last seq {}).",
        core.store.metrics.readings_ingested.get(),
        core.store.last_seq()
    );
}
