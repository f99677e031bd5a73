//! The history chart picture, from plain data ([`ChartInput`]), drawn with plotters on its bitmap
//! backend (into memory; we encode the PNG ourselves) with the embedded font: a line over time,
//! time ticks at round local times, value ticks from plotters, threshold bands from the alarm
//! rules' limits, alarm periods shaded in their severity's colour, and gaps where data is missing
//! (shaded, with no line across them).
//!
//! Owns: gap detection, thinning of dense series, the chart layout and drawing. Does not own: the
//! data (`super::gather`).

use std::error::Error as StdError;

use image::RgbImage;
use plotters::backend::RGBPixel;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::RenderError;
use super::font::{FAMILY, register_with_plotters};
use super::palette::{self, severity_colour, tint};
use super::time::{stamp, tick_label, ticks, zone};
use super::words::{self, words};
use crate::config::UtcOffset;
use crate::model::{Lang, Severity, Timestamp};

/// Default size of a chart in pixels.
pub const DEFAULT_SIZE: (u32, u32) = (1200, 600);

/// A line is broken where consecutive readings are further apart than this many typical (median)
/// sample intervals.
pub const GAP_INTERVALS: i64 = 3;

/// Everything a history chart shows. Plain data: tests and the bench build it by hand.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartInput {
    /// Sensor id.
    pub sensor: String,
    /// Human name (title); the id when empty.
    pub name: String,
    /// Unit of the values.
    pub unit: String,
    /// Floor / room, if known.
    pub location: Option<String>,
    /// Start of the time axis.
    pub from: Timestamp,
    /// End of the time axis (the picture's "as of" time).
    pub to: Timestamp,
    /// Readings in time order.
    pub points: Vec<ChartPoint>,
    /// Limits of the alarm rules on the sensor.
    pub thresholds: Vec<Threshold>,
    /// When the sensor's alarms were active.
    pub alarms: Vec<AlarmPeriod>,
    /// Local time of the building, for the time axis.
    pub utc_offset: UtcOffset,
    /// Language of the words on the picture.
    pub lang: Lang,
    /// `(width, height)` in pixels (each clamped to 320..=4000 and 200..=3000).
    pub size: (u32, u32),
}

/// One reading on a chart: its time (ms) and its good value, `None` when there is none (bad,
/// stale, communication error), which breaks the line like missing data.
pub use crate::store::SeriesPoint as ChartPoint;

/// Which side of a limit is the alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Values above the limit (high, high-high rules).
    Above,
    /// Values below the limit (low, low-low rules).
    Below,
}

/// The limit of an alarm rule, drawn as a dashed line with the alarm side shaded.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// Rule name.
    pub alert: String,
    /// Alarm side.
    pub side: Side,
    /// Limit value.
    pub limit: f64,
    /// Severity (colour).
    pub severity: Severity,
}

/// A period during which an alarm on the sensor was active.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmPeriod {
    /// Rule name.
    pub alert: String,
    /// Severity (colour).
    pub severity: Severity,
    /// Raised at (ms).
    pub from: i64,
    /// Cleared at (ms); `None` while still active.
    pub to: Option<i64>,
}

/// A drawn chart and where its plot area is, for tests and tools that annotate it.
#[derive(Clone, Debug)]
pub struct ChartPicture {
    /// The picture.
    pub image: RgbImage,
    /// Maps data to pixels.
    pub frame: ChartFrame,
    /// Lines drawn (a gap starts a new one).
    pub lines: usize,
}

/// The plot area: data coordinates to pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChartFrame {
    /// Time range (ms).
    pub x: (i64, i64),
    /// Value range.
    pub y: (f64, f64),
    /// Pixel columns of `x.0` and `x.1`.
    pub px_x: (i32, i32),
    /// Pixel rows of `y.0` and `y.1`.
    pub px_y: (i32, i32),
}

impl ChartFrame {
    /// The pixel of `(ts, value)`.
    pub fn pixel(&self, ts: i64, value: f64) -> (i32, i32) {
        let fx = (ts - self.x.0) as f64 / (self.x.1 - self.x.0).max(1) as f64;
        let fy = (value - self.y.0) / (self.y.1 - self.y.0);
        let x = f64::from(self.px_x.0) + fx * f64::from(self.px_x.1 - self.px_x.0);
        let y = f64::from(self.px_y.0) + fy * f64::from(self.px_y.1 - self.px_y.0);
        (x.round() as i32, y.round() as i32)
    }
}

/// Longest time between two readings that is not a gap: [`GAP_INTERVALS`] times the median
/// interval (`i64::MAX` with fewer than two readings).
pub fn gap_limit(points: &[ChartPoint]) -> i64 {
    let mut steps: Vec<i64> = points
        .windows(2)
        .map(|w| w[1].ts - w[0].ts)
        .filter(|d| *d > 0)
        .collect();
    if steps.is_empty() {
        return i64::MAX;
    }
    let mid = steps.len() / 2;
    let (_, median, _) = steps.select_nth_unstable(mid);
    median.saturating_mul(GAP_INTERVALS).max(1)
}

/// The runs of good values not interrupted by a gap or a reading without a good value.
pub fn segments(points: &[ChartPoint]) -> Vec<Vec<(i64, f64)>> {
    let limit = gap_limit(points);
    let mut out: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut current: Vec<(i64, f64)> = Vec::new();
    for p in points {
        match p.value.filter(|v| v.is_finite()) {
            Some(v) => {
                if current.last().is_some_and(|&(t, _)| p.ts - t > limit) {
                    out.push(std::mem::take(&mut current));
                }
                current.push((p.ts, v));
            }
            None => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Where there is no line: between runs, and before the first and after the last when longer
/// than the gap limit (all of it when there is no run at all).
fn gaps(runs: &[Vec<(i64, f64)>], from: i64, to: i64, limit: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut last = from;
    let mut first = true;
    for run in runs {
        let (Some(&(a, _)), Some(&(b, _))) = (run.first(), run.last()) else {
            continue;
        };
        if !first || a - from > limit {
            out.push((last, a));
        }
        first = false;
        last = b;
    }
    if to - last > limit || runs.is_empty() {
        out.push((last, to));
    }
    out
}

/// Thins a run to at most four points (first, min, max, last) per pixel column, which draws the
/// same line as every point.
fn thin(run: &[(i64, f64)], from: i64, to: i64, columns: usize) -> Vec<(i64, f64)> {
    if run.len() <= 2 * columns || columns == 0 {
        return run.to_vec();
    }
    let span = (to - from).max(1) as f64;
    let column = |t: i64| (((t - from) as f64 / span) * columns as f64).floor() as i64;
    let mut out = Vec::with_capacity(4 * columns);
    let mut i = 0;
    while i < run.len() {
        let c = column(run[i].0);
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < run.len() && column(run[j].0) == c {
            if run[j].1 < run[lo].1 {
                lo = j;
            }
            if run[j].1 > run[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let mut picks = [i, lo, hi, j - 1];
        picks.sort_unstable();
        let mut prev = usize::MAX;
        for k in picks {
            if k != prev {
                out.push(run[k]);
                prev = k;
            }
        }
        i = j;
    }
    out
}

/// The value range: the data, the limits near it, and a margin.
fn value_range(runs: &[Vec<(i64, f64)>], thresholds: &[Threshold]) -> (f64, f64) {
    let values = runs.iter().flatten().map(|p| p.1);
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (mut lo, mut hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let span = if hi - lo > 1e-9 {
        hi - lo
    } else {
        (hi.abs() * 0.1).max(1.0)
    };
    for t in thresholds {
        if t.limit >= lo - span && t.limit <= hi + span {
            lo = lo.min(t.limit);
            hi = hi.max(t.limit);
        }
    }
    if hi - lo < 1e-9 {
        lo -= span / 2.0;
        hi += span / 2.0;
    }
    let pad = (hi - lo) * 0.08;
    (lo - pad, hi + pad)
}

fn rgb(c: image::Rgb<u8>) -> RGBColor {
    RGBColor(c.0[0], c.0[1], c.0[2])
}

fn chart_error<E: StdError + Send + Sync + 'static>(e: E) -> RenderError {
    RenderError::Chart(Box::new(e))
}

/// Draws the chart.
///
/// # Errors
/// [`RenderError::Font`] or [`RenderError::Chart`] (plotters failed): not caused by the data.
pub fn draw_chart(input: &ChartInput) -> Result<ChartPicture, RenderError> {
    register_with_plotters()?;
    let (w, h) = (input.size.0.clamp(320, 4000), input.size.1.clamp(200, 3000));
    let from = input.from.as_millis();
    let to = input.to.as_millis().max(from + 1000);
    let in_window: Vec<ChartPoint> = input
        .points
        .iter()
        .copied()
        .filter(|p| (from..=to).contains(&p.ts))
        .collect();
    let limit = gap_limit(&in_window);
    let runs = segments(&in_window);
    let (y0, y1) = value_range(&runs, &input.thresholds);
    let k = (f64::from(w) / 1200.0).clamp(0.6, 2.0);
    let px = |v: f64| (v * k).round() as i32;

    let mut buf = vec![0u8; w as usize * h as usize * 3];
    let frame;
    {
        let backend = BitMapBackend::<RGBPixel>::with_buffer_and_format(&mut buf, (w, h))
            .map_err(chart_error)?;
        let root = backend.into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let (head, body) = root.split_vertically(px(86.0));
        draw_head(&head, input, from, to, px)?;

        let (tick_list, step) = ticks(from, to, input.utc_offset, (w / 110).max(3) as usize);
        let offset = input.utc_offset;
        let x_fmt = move |t: &i64| tick_label(*t, step, offset);
        let y_fmt = |v: &f64| crate::alarms::text::number(*v);
        let mut chart = ChartBuilder::on(&body)
            .margin_left(px(10.0))
            .margin_right(px(24.0))
            .margin_bottom(px(8.0))
            .x_label_area_size(px(44.0))
            .y_label_area_size(px(70.0))
            .build_cartesian_2d((from..to).with_key_points(tick_list), y0..y1)
            .map_err(chart_error)?;
        for (a, b) in gaps(&runs, from, to, limit) {
            chart
                .plotting_area()
                .draw(&Rectangle::new(
                    [(a, y0), (b, y1)],
                    rgb(palette::GAP).filled(),
                ))
                .map_err(chart_error)?;
        }
        for p in &input.alarms {
            let (a, b) = (p.from.max(from), p.to.unwrap_or(to).min(to));
            if b > a {
                let c = rgb(tint(severity_colour(p.severity), 0.22));
                chart
                    .plotting_area()
                    .draw(&Rectangle::new([(a, y0), (b, y1)], c.filled()))
                    .map_err(chart_error)?;
            }
        }
        let label_font = (FAMILY, f64::from(px(14.0)))
            .into_font()
            .color(&rgb(palette::MUTED));
        let desc_font = (FAMILY, f64::from(px(14.0)))
            .into_font()
            .color(&rgb(palette::INK));
        let w_ = words(input.lang);
        chart
            .configure_mesh()
            .x_labels(64)
            .x_label_formatter(&x_fmt)
            .y_labels(8)
            .y_label_formatter(&y_fmt)
            .light_line_style(rgb(palette::GRID).mix(0.0))
            .bold_line_style(rgb(palette::GRID))
            .axis_style(rgb(palette::MUTED))
            .label_style(label_font)
            .axis_desc_style(desc_font)
            .x_desc(format!("{}, {}", w_.time, zone(input.utc_offset)))
            .y_desc(input.unit.clone())
            .draw()
            .map_err(chart_error)?;
        // Limits over the grid, under the line.
        for t in &input.thresholds {
            if !(y0..=y1).contains(&t.limit) {
                continue;
            }
            let c = rgb(severity_colour(t.severity));
            let (a, b) = match t.side {
                Side::Above => (t.limit, y1),
                Side::Below => (y0, t.limit),
            };
            chart
                .plotting_area()
                .draw(&Rectangle::new([(from, a), (to, b)], c.mix(0.10).filled()))
                .map_err(chart_error)?;
            chart
                .draw_series(DashedLineSeries::new(
                    [(from, t.limit), (to, t.limit)],
                    px(8.0),
                    px(5.0),
                    c.stroke_width(px(2.0).max(1) as u32),
                ))
                .map_err(chart_error)?;
        }
        let columns = usize::try_from(w).unwrap_or(1200);
        let line = rgb(palette::LINE).stroke_width(px(2.0).max(1) as u32);
        for run in &runs {
            if run.len() == 1 {
                chart
                    .draw_series([Circle::new(run[0], px(3.0).max(2), line.filled())])
                    .map_err(chart_error)?;
            } else {
                chart
                    .draw_series(LineSeries::new(thin(run, from, to, columns), line))
                    .map_err(chart_error)?;
            }
        }
        if runs.is_empty() {
            let msg = w_.no_data;
            let (xr, yr) = chart.plotting_area().get_pixel_range();
            let font = (FAMILY, f64::from(px(22.0)))
                .into_font()
                .color(&rgb(palette::MUTED));
            root.draw_text(
                msg,
                &font,
                ((xr.start + xr.end) / 2 - px(50.0), (yr.start + yr.end) / 2),
            )
            .map_err(chart_error)?;
        }
        let (ax, ay) = (
            chart.backend_coord(&(from, y0)),
            chart.backend_coord(&(to, y1)),
        );
        frame = ChartFrame {
            x: (from, to),
            y: (y0, y1),
            px_x: (ax.0, ay.0),
            px_y: (ax.1, ay.1),
        };
        root.present().map_err(chart_error)?;
    }
    let image = RgbImage::from_raw(w, h, buf).ok_or(RenderError::Font)?;
    Ok(ChartPicture {
        image,
        frame,
        lines: runs.len(),
    })
}

/// Title, subtitle and legend above the plot.
fn draw_head(
    area: &DrawingArea<BitMapBackend<'_, RGBPixel>, Shift>,
    input: &ChartInput,
    from: i64,
    to: i64,
    px: impl Fn(f64) -> i32,
) -> Result<(), RenderError> {
    let w = words(input.lang);
    let title = if input.name.is_empty() {
        input.sensor.clone()
    } else {
        input.name.clone()
    };
    let span = words::span(
        input.lang,
        std::time::Duration::from_millis(u64::try_from(to - from).unwrap_or(0)),
    );
    let mut sub = vec![input.sensor.clone()];
    sub.extend(input.location.clone());
    sub.push(format!("{} {span}", w.last));
    sub.push(format!(
        "{} {}",
        w.as_of,
        stamp(Timestamp(to), input.utc_offset)
    ));
    let title_font = (FAMILY, f64::from(px(22.0)))
        .into_font()
        .color(&rgb(palette::INK));
    let sub_font = (FAMILY, f64::from(px(14.0)))
        .into_font()
        .color(&rgb(palette::MUTED));
    let left = px(16.0);
    area.draw_text(&title, &title_font, (left, px(10.0)))
        .map_err(chart_error)?;
    area.draw_text(&sub.join(" · "), &sub_font, (left, px(40.0)))
        .map_err(chart_error)?;
    // Legend: line, limits, alarms, gaps.
    let value = if input.unit.is_empty() {
        w.value.to_owned()
    } else {
        format!("{}, {}", w.value, input.unit)
    };
    let mut items: Vec<(RGBColor, bool, String)> = vec![(rgb(palette::LINE), true, value)];
    for t in &input.thresholds {
        let sign = match t.side {
            Side::Above => ">",
            Side::Below => "<",
        };
        items.push((
            rgb(severity_colour(t.severity)),
            true,
            format!(
                "{} {sign} {} {} ({})",
                w.limit,
                crate::alarms::text::number(t.limit),
                input.unit,
                words::severity(input.lang, t.severity)
            )
            .replace("  ", " "),
        ));
    }
    let mut severities: Vec<Severity> = input.alarms.iter().map(|a| a.severity).collect();
    severities.sort_unstable_by(|a, b| b.cmp(a));
    severities.dedup();
    for s in severities {
        items.push((
            rgb(tint(severity_colour(s), 0.22)),
            false,
            format!("{}: {}", w.alarm, words::severity(input.lang, s)),
        ));
    }
    items.push((rgb(palette::GAP), false, w.no_data.to_owned()));
    let mut x = left;
    let y = px(64.0);
    for (colour, is_line, text) in items {
        if is_line {
            area.draw(&PathElement::new(
                vec![(x, y + px(7.0)), (x + px(22.0), y + px(7.0))],
                colour.stroke_width(px(3.0).max(1) as u32),
            ))
            .map_err(chart_error)?;
        } else {
            area.draw(&Rectangle::new(
                [(x, y), (x + px(22.0), y + px(14.0))],
                colour.filled(),
            ))
            .map_err(chart_error)?;
        }
        let (tw, _) = area
            .estimate_text_size(&text, &sub_font)
            .map_err(chart_error)?;
        area.draw_text(&text, &sub_font, (x + px(28.0), y))
            .map_err(chart_error)?;
        x += px(28.0) + i32::try_from(tw).unwrap_or(100) + px(20.0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(list: &[(i64, Option<f64>)]) -> Vec<ChartPoint> {
        list.iter()
            .map(|&(ts, value)| ChartPoint { ts, value })
            .collect()
    }

    #[test]
    fn lines_break_at_gaps_and_bad_readings() {
        // Every 60 s, a 10-minute hole after t=180 s, a bad reading at 900 s.
        let p = pts(&[
            (0, Some(1.0)),
            (60_000, Some(2.0)),
            (120_000, Some(3.0)),
            (180_000, Some(2.0)),
            (780_000, Some(1.0)),
            (840_000, Some(1.5)),
            (900_000, None),
            (960_000, Some(2.5)),
            (1_020_000, Some(2.0)),
            // A late sample two intervals on is not a gap.
            (1_140_000, Some(2.2)),
        ]);
        assert_eq!(gap_limit(&p), 180_000);
        let runs = segments(&p);
        let lens: Vec<usize> = runs.iter().map(Vec::len).collect();
        assert_eq!(lens, [4, 2, 3]);
        let g = gaps(&runs, -300_000, 1_500_000, gap_limit(&p));
        assert_eq!(
            g,
            [
                (-300_000, 0),
                (180_000, 780_000),
                (840_000, 960_000),
                (1_140_000, 1_500_000)
            ]
        );
        assert!(segments(&[]).is_empty());
        assert_eq!(gaps(&[], 0, 10, 5), [(0, 10)]);
    }

    #[test]
    fn thinning_keeps_extremes_and_ends() {
        let run: Vec<(i64, f64)> = (0..10_000)
            .map(|i| (i, ((i * 7919) % 1000) as f64))
            .collect();
        let thinned = thin(&run, 0, 10_000, 100);
        assert!(
            thinned.len() <= 400 && thinned.len() > 100,
            "{}",
            thinned.len()
        );
        assert_eq!(thinned.first(), run.first());
        assert_eq!(thinned.last(), run.last());
        let max = thinned.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        let min = thinned.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        assert_eq!((min, max), (0.0, 999.0));
        assert!(thinned.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn value_range_includes_near_limits_only() {
        let runs = vec![vec![(0, 20.0), (1, 24.0)]];
        let near = Threshold {
            alert: "Hot".into(),
            side: Side::Above,
            limit: 26.0,
            severity: Severity::High,
        };
        let far = Threshold {
            limit: -40.0,
            side: Side::Below,
            ..near.clone()
        };
        let (lo, hi) = value_range(&runs, &[near, far]);
        assert!(hi > 26.0 && hi < 27.0, "{hi}");
        assert!(lo < 20.0 && lo > 19.0, "{lo}");
        let (lo, hi) = value_range(&[vec![(0, 5.0)]], &[]);
        assert!(lo < 5.0 && hi > 5.0);
    }
}
