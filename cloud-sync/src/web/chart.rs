//! History charts as SVG, drawn on the server: the mean of each bucket as a polyline, the
//! minimum to maximum as a band, axes with ticks in round numbers and round times (UTC), and a
//! break wherever a bucket holds no good value.
//!
//! Owns: the drawing (pure: buckets in, SVG text out). Does not own: the buckets (computed by
//! PostgreSQL in `data::sensor_history`).

use std::fmt::Write as _;

use super::data::HistoryPoint;
use super::plan::esc;
use super::time::civil;
use super::words::Lang;

const W: f64 = 900.0;
const H: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;

/// Time steps for x ticks, seconds.
const TIME_STEPS: [i64; 14] = [
    60, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800,
    2_592_000,
];

/// What to draw.
#[derive(Debug)]
pub struct ChartInput<'a> {
    /// Buckets, oldest first.
    pub points: &'a [HistoryPoint],
    /// Start of the range, ms.
    pub from: i64,
    /// End of the range, ms.
    pub to: i64,
    /// Bucket width, seconds.
    pub bucket_seconds: i64,
    /// Unit for the y axis.
    pub unit: &'a str,
    /// The language of the words on it.
    pub lang: Lang,
}

/// Round tick values covering `lo..=hi`, about `n` of them (steps of 1, 2 or 5 times a power of
/// ten).
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut v = first;
    while v <= hi + step * 1e-9 && ticks.len() < 50 {
        ticks.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    ticks
}

/// A tick label with as many decimals as the step needs.
fn label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

/// The SVG of a chart.
pub fn history_svg(c: &ChartInput<'_>) -> String {
    let mut svg = String::new();
    write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" \
         viewBox=\"0 0 {W} {H}\" width=\"{W}\" font-family=\"DejaVu Sans, Arial, sans-serif\" \
         font-size=\"12\">"
    )
    .ok();
    let span = (c.to - c.from).max(1) as f64;
    let x = |ms: i64| LEFT + (ms - c.from) as f64 / span * (W - LEFT - RIGHT);
    let good: Vec<&HistoryPoint> = c.points.iter().filter(|p| p.avg.is_some()).collect();
    let lo = good
        .iter()
        .filter_map(|p| p.min)
        .fold(f64::INFINITY, f64::min);
    let hi = good
        .iter()
        .filter_map(|p| p.max)
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if good.is_empty() {
        (0.0, 1.0)
    } else if hi - lo < 1e-9 {
        (lo - 1.0, hi + 1.0)
    } else {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    };
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM);

    // Axes and grid.
    let ticks = nice_ticks(lo, hi, 6);
    let step = ticks.get(1).zip(ticks.first()).map_or(1.0, |(b, a)| b - a);
    for t in &ticks {
        write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e5e5e5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" class=\"ytick\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y(*t) + 4.0,
            label(*t, step),
            yy = y(*t)
        )
        .ok();
    }
    let tstep = TIME_STEPS
        .iter()
        .copied()
        .find(|s| span / 1000.0 / (*s as f64) <= 8.0)
        .unwrap_or(2_592_000)
        * 1000;
    let mut t = c.from.div_euclid(tstep) * tstep;
    if t < c.from {
        t += tstep;
    }
    while t <= c.to {
        let (_, mo, d, h, mi, _, _) = civil(t);
        let text = if tstep >= 86_400_000 || (h == 0 && mi == 0) {
            format!("{mo:02}-{d:02}")
        } else {
            format!("{h:02}:{mi:02}")
        };
        let xx = x(t);
        write!(
            svg,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#f0f0f0\"/>\
             <line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#555\"/>\
             <text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"xtick\">{text}</text>",
            H - BOTTOM,
            H - BOTTOM,
            H - BOTTOM + 5.0,
            H - BOTTOM + 18.0
        )
        .ok();
        t += tstep;
    }
    write!(
        svg,
        "<path d=\"M{LEFT},{TOP} V{:.1} H{:.1}\" fill=\"none\" stroke=\"#555\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{}</text>\
         <text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\" \
         fill=\"#555\">{}</text>",
        H - BOTTOM,
        W - RIGHT,
        W - RIGHT,
        H - 6.0,
        c.lang.t("time (UTC)", "время (UTC)"),
        (H - BOTTOM + TOP) / 2.0,
        (H - BOTTOM + TOP) / 2.0,
        esc(c.unit)
    )
    .ok();

    // One bucket is a dot, not a history: say so instead.
    if good.len() < 2 {
        write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"16\" \
             fill=\"#595959\" class=\"no-data\">{}</text>",
            (W + LEFT) / 2.0,
            (H - BOTTOM) / 2.0,
            if good.is_empty() {
                c.lang
                    .t("No readings in this range", "Нет показаний за этот период")
            } else {
                c.lang.t("Not enough data yet", "Пока мало данных")
            }
        )
        .ok();
    } else {
        for seg in segments(c.points, c.bucket_seconds * 1000) {
            draw_segment(&mut svg, seg, c.bucket_seconds * 1000, &x, &y);
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Runs of buckets with good values and no missing bucket between them.
pub(crate) fn segments(points: &[HistoryPoint], bucket_ms: i64) -> Vec<&[HistoryPoint]> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, p) in points.iter().enumerate() {
        let joins =
            i > 0 && points[i - 1].avg.is_some() && p.ts.0 - points[i - 1].ts.0 <= bucket_ms;
        match (p.avg.is_some(), start) {
            (true, Some(s)) if !joins => {
                out.push(&points[s..i]);
                start = Some(i);
            }
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(&points[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(&points[s..]);
    }
    out
}

fn draw_segment(
    svg: &mut String,
    seg: &[HistoryPoint],
    bucket_ms: i64,
    x: &dyn Fn(i64) -> f64,
    y: &dyn Fn(f64) -> f64,
) {
    // Each bucket is drawn at its middle.
    let mid = |p: &HistoryPoint| x(p.ts.0 + bucket_ms / 2);
    if seg.len() == 1 {
        let p = &seg[0];
        let v = p.avg.unwrap_or_default();
        write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#1f77b4\"/>",
            mid(p),
            y(v)
        )
        .ok();
        return;
    }
    let upper: Vec<String> = seg
        .iter()
        .map(|p| {
            format!(
                "{:.1},{:.1}",
                mid(p),
                y(p.max.or(p.avg).unwrap_or_default())
            )
        })
        .collect();
    let lower: Vec<String> = seg
        .iter()
        .rev()
        .map(|p| {
            format!(
                "{:.1},{:.1}",
                mid(p),
                y(p.min.or(p.avg).unwrap_or_default())
            )
        })
        .collect();
    write!(
        svg,
        "<polygon class=\"band\" points=\"{} {}\" fill=\"#1f77b4\" fill-opacity=\"0.15\"/>",
        upper.join(" "),
        lower.join(" ")
    )
    .ok();
    let line: Vec<String> = seg
        .iter()
        .map(|p| format!("{:.1},{:.1}", mid(p), y(p.avg.unwrap_or_default())))
        .collect();
    write!(
        svg,
        "<polyline class=\"avg\" points=\"{}\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\"/>",
        line.join(" ")
    )
    .ok();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::time::Time;

    fn p(ts: i64, v: Option<f64>) -> HistoryPoint {
        HistoryPoint {
            ts: Time(ts),
            avg: v,
            min: v.map(|v| v - 1.0),
            max: v.map(|v| v + 1.0),
            count: i64::from(v.is_some()),
            bad: i64::from(v.is_none()),
        }
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(nice_ticks(19.3, 22.1, 5), vec![20.0, 21.0, 22.0]);
        assert_eq!(
            nice_ticks(19.3, 22.1, 10),
            vec![19.5, 20.0, 20.5, 21.0, 21.5, 22.0]
        );
        assert_eq!(label(20.5, 0.5), "20.5");
        assert_eq!(label(20.0, 2.0), "20");
    }

    #[test]
    fn gaps_break_the_line() {
        let pts = [
            p(0, Some(1.0)),
            p(60_000, Some(2.0)),
            p(120_000, None),
            p(180_000, Some(3.0)),
            p(240_000, Some(3.0)),
            // a missing bucket at 300_000
            p(360_000, Some(4.0)),
        ];
        let segs = segments(&pts, 60_000);
        let lens: Vec<usize> = segs.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [2, 2, 1]);
        let svg = history_svg(&ChartInput {
            points: &pts,
            from: 0,
            to: 420_000,
            bucket_seconds: 60,
            unit: "°C",
            lang: Lang::En,
        });
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("class=\"xtick\">00:01</text>"), "{svg}");
        assert!(svg.contains("°C"));
        let one = history_svg(&ChartInput {
            points: &pts[..1],
            from: 0,
            to: 420_000,
            bucket_seconds: 60,
            unit: "°C",
            lang: Lang::En,
        });
        assert!(one.contains("Not enough data yet"), "{one}");
        assert!(
            !one.contains("<circle") && !one.contains("<polyline"),
            "{one}"
        );
    }

    #[test]
    fn an_empty_range_says_so() {
        let svg = history_svg(&ChartInput {
            points: &[],
            from: 0,
            to: 3_600_000,
            bucket_seconds: 10,
            unit: "",
            lang: Lang::En,
        });
        assert!(svg.contains("No readings in this range"));
    }
}
