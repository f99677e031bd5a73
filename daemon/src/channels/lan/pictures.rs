//! Pictures on the LAN page: floor plans and history charts as PNG, drawn by `crate::render`.
//!
//! Owns: the bridge from the page's picture routes to the renderer (measure names, error
//! wording, logging of the gateway's own failures). Does not own: drawing.

use std::time::Duration;

use tracing::warn;

use crate::context::Core;
use crate::model::Lang;
use crate::render::{self, Measure, RenderError};

/// Why a picture was not drawn.
#[derive(Debug)]
pub(crate) struct NoPicture {
    /// The request was at fault (unknown floor or sensor, no data), not the gateway.
    pub(crate) request_error: bool,
    /// Why, in the page's language.
    pub(crate) message: String,
}

fn refuse(e: &RenderError, lang: Lang) -> NoPicture {
    if !e.is_request_error() {
        warn!(error = %e, "LAN page: cannot draw a picture.");
    }
    NoPicture {
        request_error: e.is_request_error(),
        message: e.message(lang),
    }
}

/// The PNG of floor `floor` coloured by `measure` (`temperature`, `humidity`, `co2`; the
/// assistant's `alarms` measure is drawn as temperature, whose plan marks alarms too).
pub(crate) async fn plan_png(
    core: &Core,
    floor: &str,
    measure: &str,
    lang: Lang,
) -> Result<Vec<u8>, NoPicture> {
    let measure = Measure::parse(measure).unwrap_or_default();
    render::plan_png(core, floor, measure, lang)
        .await
        .map_err(|e| refuse(&e, lang))
}

/// The PNG of the history chart of `sensor` over the last `since_secs` seconds.
pub(crate) async fn chart_png(
    core: &Core,
    sensor: &str,
    since_secs: u64,
    lang: Lang,
) -> Result<Vec<u8>, NoPicture> {
    render::chart_png(core, sensor, Duration::from_secs(since_secs), lang)
        .await
        .map_err(|e| refuse(&e, lang))
}

/// The ids of the floors a plan can be drawn for, in building order; empty when the buffer
/// cannot be read (logged).
pub(crate) async fn floors(core: &Core) -> Vec<String> {
    match render::floors(core).await {
        Ok(floors) => floors.into_iter().map(|f| f.id).collect(),
        Err(e) => {
            warn!(error = %e, "LAN page: cannot list the floors.");
            Vec::new()
        }
    }
}
