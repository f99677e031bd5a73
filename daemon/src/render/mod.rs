//! Floor plans and history charts as PNG pictures, for people who read a coloured plan faster
//! than a list of numbers: the agent's floor-plan and history tools, Telegram, the LAN page, the
//! local API (`GET /api/v1/render/plan`, `GET /api/v1/render/chart`) and `markoff render`.
//!
//! Owns: turning `[site]`, the sensors, their latest values, alarms and history into pictures.
//! Does not own: the data (`crate::store`, `crate::alarms`), the site description
//! (`crate::config::SiteConfig`) or delivering pictures (the channels).
//!
//! # API
//!
//! With a running gateway (`crate::context::Core`); the data is gathered on the async side,
//! drawing and PNG encoding (CPU work, 5 to 40 ms) run on `spawn_blocking`:
//!
//! - [`plan_png`]`(&core, floor, measure, lang) -> Result<Vec<u8>, RenderError>`: the plan of a
//!   floor (id like `"3"` or `"B"`, or its name), rooms coloured by `measure`.
//! - [`chart_png`]`(&core, sensor, since, lang) -> Result<Vec<u8>, RenderError>`: a sensor's
//!   history over the last `since` (1 minute to 31 days).
//! - [`plan_png_sized`], [`chart_png_sized`]: the same with a picture size; [`floors`]: the
//!   floors a plan can be asked for.
//!
//! Pure, from plain data (tests, the bench, anything without a daemon):
//!
//! - [`draw_plan`]`(&PlanInput) -> Result<PlanPicture, RenderError>` and [`plan_to_png`];
//! - [`draw_chart`]`(&ChartInput) -> Result<ChartPicture, RenderError>` and [`chart_to_png`];
//! - [`gather`]: building those inputs from `Config`, sensor rows, latest values and alarms;
//! - [`plan_png_from_buffer`], [`chart_png_from_buffer`]: the same pictures from a buffer file
//!   opened read-only, when no daemon runs (`markoff render --db`).
//!
//! Errors ([`RenderError`]) never panic the caller; [`RenderError::message`] words the ones
//! people cause (unknown floor or sensor, no data, a bad period) in English or Russian.
//!
//! Pictures use the embedded DejaVu Sans (Latin and Cyrillic), times in `[site] utc_offset`, and
//! grey for values older than `[site] stale_after` or of a quality other than good.

pub mod api;
mod chart;
mod font;
pub mod gather;
pub(crate) mod geometry;
mod palette;
mod plan;
mod query;
#[cfg(test)]
mod tests;
mod time;
mod words;

use std::collections::HashMap;
use std::time::Duration;

use image::RgbImage;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

pub use chart::{
    AlarmPeriod, ChartFrame, ChartInput, ChartPicture, ChartPoint, DEFAULT_SIZE as CHART_SIZE,
    GAP_INTERVALS, Side, Threshold, draw_chart, gap_limit, segments,
};
pub use gather::{ChartOptions, OpenAlarm, PlanOptions, PlanSources};
pub use palette::{Measure, severity_colour};
pub use plan::{
    AlarmMark, Backdrop, DEFAULT_WIDTH as PLAN_WIDTH, FloorInput, MarkerSpot, PlanInput,
    PlanPicture, RoomFill, RoomInput, RoomSpot, SensorInput, draw_plan,
};

use crate::config::{Config, FloorConfig};
use crate::context::Core;
use crate::model::{Lang, Timestamp};
use crate::store::{ReadConnection, StoreError};

/// An error with its sources, `a: b: c`.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Shortest chart period.
pub const MIN_SINCE: Duration = Duration::from_secs(60);
/// Longest chart period (the default retention is 30 days).
pub const MAX_SINCE: Duration = Duration::from_secs(31 * 86_400);

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No floor of that id or name: not in `[site]`, and no sensor is on it.
    #[error("unknown floor {floor:?}; floors: {}", list(known))]
    UnknownFloor {
        /// What was asked for.
        floor: String,
        /// The floors there are.
        known: Vec<String>,
    },
    /// The buffer does not know the sensor.
    #[error("unknown sensor {sensor:?}")]
    UnknownSensor {
        /// What was asked for.
        sensor: String,
    },
    /// The sensor has no reading in the period.
    #[error("no readings of {sensor:?} in the last {}", humantime::format_duration(*since))]
    NoData {
        /// The sensor.
        sensor: String,
        /// The period.
        since: Duration,
    },
    /// A chart period outside 1 minute to 31 days.
    #[error("the period {} is not between 1m and 31days", humantime::format_duration(*since))]
    BadPeriod {
        /// What was asked for.
        since: Duration,
    },
    /// Reading the buffer failed.
    #[error("reading the buffer failed")]
    Store(#[from] StoreError),
    /// The embedded font did not load (a broken build).
    #[error("the embedded font cannot be used")]
    Font,
    /// plotters failed to draw the chart.
    #[error("drawing the chart failed")]
    Chart(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// PNG encoding failed.
    #[error("encoding the PNG failed")]
    Encode(#[source] image::ImageError),
    /// The drawing task failed.
    #[error("the drawing task failed")]
    Task(#[source] tokio::task::JoinError),
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

impl RenderError {
    /// Whether the request was at fault (unknown floor or sensor, no data, bad period), not
    /// the gateway.
    pub fn is_request_error(&self) -> bool {
        matches!(
            self,
            Self::UnknownFloor { .. }
                | Self::UnknownSensor { .. }
                | Self::NoData { .. }
                | Self::BadPeriod { .. }
        )
    }

    /// The error for people, in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        let span = |d: &Duration| words::span(lang, *d);
        match (lang, self) {
            (Lang::En, Self::NoData { sensor, since }) => {
                format!("no readings of {sensor:?} in the last {}", span(since))
            }
            (Lang::En, e) if e.is_request_error() => e.to_string(),
            (Lang::En, e) => format!("could not draw the picture: {e}"),
            (Lang::Ru, Self::UnknownFloor { floor, known }) => {
                format!(
                    "неизвестный этаж «{floor}»; этажи: {}",
                    list(known).replace("none", "нет")
                )
            }
            (Lang::Ru, Self::UnknownSensor { sensor }) => format!("неизвестный датчик «{sensor}»"),
            (Lang::Ru, Self::NoData { sensor, since }) => {
                format!(
                    "нет показаний датчика «{sensor}» за последние {}",
                    span(since)
                )
            }
            (Lang::Ru, Self::BadPeriod { since }) => {
                format!("период {} должен быть от 1 мин до 31 сут", span(since))
            }
            (Lang::Ru, e) => format!("не удалось нарисовать картинку: {e}"),
        }
    }
}

/// Encodes a picture as PNG (fast compression: these are flat-coloured drawings).
///
/// # Errors
/// [`RenderError::Encode`].
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::with_capacity(img.as_raw().len() / 8);
    img.write_with_encoder(PngEncoder::new_with_quality(
        &mut out,
        CompressionType::Fast,
        FilterType::Adaptive,
    ))
    .map_err(RenderError::Encode)?;
    Ok(out)
}

/// [`draw_plan`] and [`encode_png`].
///
/// # Errors
/// See [`RenderError`].
pub fn plan_to_png(input: &PlanInput) -> Result<Vec<u8>, RenderError> {
    encode_png(&draw_plan(input)?.image)
}

/// [`draw_chart`] and [`encode_png`].
///
/// # Errors
/// See [`RenderError`].
pub fn chart_to_png(input: &ChartInput) -> Result<Vec<u8>, RenderError> {
    encode_png(&draw_chart(input)?.image)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RenderError> + Send + 'static,
) -> Result<T, RenderError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(RenderError::Task)?
}

/// The plan of `floor` (an id such as `"3"` or `"B"`, or a floor's name), rooms coloured by
/// `measure`, words in `lang`, [`PLAN_WIDTH`] pixels wide.
///
/// # Errors
/// [`RenderError::UnknownFloor`] (with the floors there are), or the buffer failed.
pub async fn plan_png(
    core: &Core,
    floor: &str,
    measure: Measure,
    lang: Lang,
) -> Result<Vec<u8>, RenderError> {
    plan_png_sized(core, floor, measure, lang, PLAN_WIDTH).await
}

/// [`plan_png`] `width_px` pixels wide (320 to 4000).
///
/// # Errors
/// See [`plan_png`].
pub async fn plan_png_sized(
    core: &Core,
    floor: &str,
    measure: Measure,
    lang: Lang,
    width_px: u32,
) -> Result<Vec<u8>, RenderError> {
    let config = core.config();
    let sensors = core.reader.sensors().await?;
    let latest: HashMap<String, _> = core
        .store
        .latest
        .snapshot()
        .into_iter()
        .map(|(id, v)| (id.to_string(), v))
        .collect();
    let alarms: Vec<OpenAlarm> = core
        .alarms
        .list(true)
        .iter()
        .filter(|a| !a.out_of_service)
        .map(OpenAlarm::from)
        .collect();
    let floor = floor.to_owned();
    blocking(move || {
        let src = PlanSources {
            config: &config,
            sensors: &sensors,
            latest: &latest,
            alarms: &alarms,
        };
        let opts = PlanOptions {
            measure,
            lang,
            now: Timestamp::now(),
            width_px,
        };
        plan_to_png(&gather::plan_input(src, &floor, opts)?)
    })
    .await
}

/// The floors a plan can be drawn for: `[[site.floor]]` by level, then the floors only sensors
/// name.
///
/// # Errors
/// The buffer failed.
pub async fn floors(core: &Core) -> Result<Vec<FloorConfig>, RenderError> {
    let config = core.config();
    let sensors = core.reader.sensors().await?;
    Ok(gather::floors(&config.site, &sensors))
}

/// The history chart of `sensor` over the last `since` (1 minute to 31 days), words in `lang`,
/// [`CHART_SIZE`] pixels.
///
/// # Errors
/// [`RenderError::UnknownSensor`], [`RenderError::NoData`] (no reading at all in the period),
/// [`RenderError::BadPeriod`], or the buffer failed.
pub async fn chart_png(
    core: &Core,
    sensor: &str,
    since: Duration,
    lang: Lang,
) -> Result<Vec<u8>, RenderError> {
    chart_png_sized(core, sensor, since, lang, CHART_SIZE).await
}

/// [`chart_png`] of `size` pixels (width 320 to 4000, height 200 to 3000).
///
/// # Errors
/// See [`chart_png`].
pub async fn chart_png_sized(
    core: &Core,
    sensor: &str,
    since: Duration,
    lang: Lang,
    size: (u32, u32),
) -> Result<Vec<u8>, RenderError> {
    check_since(since)?;
    let config = core.config();
    let Some(meta) = core.reader.sensor(sensor).await? else {
        return Err(RenderError::UnknownSensor {
            sensor: sensor.to_owned(),
        });
    };
    let (from, to) = gather::window(Timestamp::now(), since);
    let points = core
        .reader
        .series(sensor, from, to)
        .await?
        .unwrap_or_default();
    let periods = query::periods(
        core.reader.alarm_history(sensor, from, to).await?,
        from.as_millis(),
    );
    if points.is_empty() {
        return Err(RenderError::NoData {
            sensor: sensor.to_owned(),
            since,
        });
    }
    blocking(move || {
        let input = gather::chart_input(&config, &meta, (from, to), points, periods, lang, size);
        chart_to_png(&input)
    })
    .await
}

fn check_since(since: Duration) -> Result<(), RenderError> {
    if (MIN_SINCE..=MAX_SINCE).contains(&since) {
        Ok(())
    } else {
        Err(RenderError::BadPeriod { since })
    }
}

/// A plan from a buffer opened read-only (`crate::store::open_read_only`) and a config, without a daemon: `markoff render --db`, tools. Blocking.
///
/// # Errors
/// See [`plan_png`].
pub fn plan_png_from_buffer(
    config: &Config,
    conn: &ReadConnection,
    floor: &str,
    opts: PlanOptions,
) -> Result<Vec<u8>, RenderError> {
    let sensors = query::sensor_rows(conn)?;
    let latest = query::latest_values(conn)?;
    let alarms = query::open_alarms(conn, config)?;
    let src = PlanSources {
        config,
        sensors: &sensors,
        latest: &latest,
        alarms: &alarms,
    };
    plan_to_png(&gather::plan_input(src, floor, opts)?)
}

/// A chart from a buffer opened read-only and a config, without a daemon. Blocking.
///
/// # Errors
/// See [`chart_png`].
pub fn chart_png_from_buffer(
    config: &Config,
    conn: &ReadConnection,
    sensor: &str,
    opts: ChartOptions,
) -> Result<Vec<u8>, RenderError> {
    check_since(opts.since)?;
    let sensors = query::sensor_rows(conn)?;
    let Some(meta) = sensors.into_iter().find(|s| s.id == sensor) else {
        return Err(RenderError::UnknownSensor {
            sensor: sensor.to_owned(),
        });
    };
    let (from, to) = gather::window(opts.now, opts.since);
    let points =
        query::history(conn, sensor, from.as_millis(), to.as_millis())?.unwrap_or_default();
    if points.is_empty() {
        return Err(RenderError::NoData {
            sensor: sensor.to_owned(),
            since: opts.since,
        });
    }
    let periods = query::alarm_periods(conn, sensor, from.as_millis(), to.as_millis())?;
    chart_to_png(&gather::chart_input(
        config,
        &meta,
        (from, to),
        points,
        periods,
        opts.lang,
        opts.size,
    ))
}
