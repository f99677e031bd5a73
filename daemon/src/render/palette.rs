//! Colours: the scale of each measure rooms are filled by, alarm severities, and the greys of
//! stale or missing data.
//!
//! Owns: every colour the pictures use, so plans, charts and their legends agree.

use image::Rgb;
use serde::{Deserialize, Serialize};

use crate::model::Severity;

/// What rooms are coloured by on a floor plan: the sensor kind whose values fill them.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Air temperature (°C).
    #[default]
    Temperature,
    /// Relative humidity (%).
    Humidity,
    /// CO2 concentration (ppm).
    Co2,
}

impl Measure {
    /// The sensor kind (`crate::model::SensorKind` name) this measure reads.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Temperature => "temperature",
            Self::Humidity => "humidity",
            Self::Co2 => "co2",
        }
    }

    /// Parses a kind name (`temperature`, `humidity`, `co2`).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Temperature, Self::Humidity, Self::Co2]
            .into_iter()
            .find(|m| m.kind().eq_ignore_ascii_case(s.trim()))
    }

    /// Colour stops of the scale, from the low end to the high end.
    fn stops(self) -> &'static [(f64, [u8; 3])] {
        match self {
            // Cold blue, comfortable green, warm orange, hot red.
            Self::Temperature => &[
                (14.0, [44, 123, 182]),
                (18.0, [140, 200, 230]),
                (21.0, [150, 210, 110]),
                (24.0, [250, 220, 120]),
                (27.0, [250, 160, 80]),
                (30.0, [215, 40, 40]),
            ],
            // Dry sand, comfortable green, damp teal.
            Self::Humidity => &[
                (20.0, [200, 150, 70]),
                (32.0, [240, 220, 160]),
                (45.0, [150, 210, 110]),
                (60.0, [110, 200, 190]),
                (80.0, [20, 120, 120]),
            ],
            // Fresh green to stuffy red.
            Self::Co2 => &[
                (400.0, [40, 160, 80]),
                (800.0, [160, 215, 100]),
                (1000.0, [250, 220, 120]),
                (1400.0, [250, 140, 80]),
                (2000.0, [210, 40, 40]),
            ],
        }
    }

    /// The range the legend shows.
    pub fn range(self) -> (f64, f64) {
        let s = self.stops();
        (s[0].0, s[s.len() - 1].0)
    }

    /// Values at which the legend puts a tick.
    pub fn legend_ticks(self) -> Vec<f64> {
        let (lo, hi) = self.range();
        let step = match self {
            Self::Temperature => 2.0,
            Self::Humidity => 10.0,
            Self::Co2 => 200.0,
        };
        let mut out = Vec::new();
        let mut v = lo;
        while v <= hi + 1e-9 {
            out.push(v);
            v += step;
        }
        out
    }

    /// The colour of `value` on the scale (clamped to its ends).
    pub fn colour(self, value: f64) -> Rgb<u8> {
        let stops = self.stops();
        if !value.is_finite() {
            return NO_SENSOR;
        }
        let first = stops[0];
        if value <= first.0 {
            return Rgb(first.1);
        }
        for pair in stops.windows(2) {
            let ((a, ca), (b, cb)) = (pair[0], pair[1]);
            if value <= b {
                let t = (value - a) / (b - a);
                let mix = |i: usize| {
                    (f64::from(ca[i]) + t * (f64::from(cb[i]) - f64::from(ca[i]))).round() as u8
                };
                return Rgb([mix(0), mix(1), mix(2)]);
            }
        }
        Rgb(stops[stops.len() - 1].1)
    }

    /// Decimals shown for a value of this measure.
    pub fn decimals(self) -> usize {
        match self {
            Self::Temperature => 1,
            Self::Humidity | Self::Co2 => 0,
        }
    }
}

impl std::fmt::Display for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// Background of the pictures.
pub(crate) const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
/// Main text.
pub(crate) const INK: Rgb<u8> = Rgb([33, 33, 33]);
/// Secondary text (timestamps, tenants, axes).
pub(crate) const MUTED: Rgb<u8> = Rgb([110, 110, 110]);
/// Walls (room outlines).
pub(crate) const WALL: Rgb<u8> = Rgb([70, 70, 70]);
/// A room with no sensor of the measure.
pub(crate) const NO_SENSOR: Rgb<u8> = Rgb([244, 244, 244]);
/// A room or marker whose data is stale (old, or quality not good): greyed.
pub(crate) const STALE: Rgb<u8> = Rgb([190, 190, 190]);
/// Text of a stale value.
pub(crate) const STALE_INK: Rgb<u8> = Rgb([125, 125, 125]);
/// Chart line.
pub(crate) const LINE: Rgb<u8> = Rgb([25, 90, 170]);
/// Chart: shading where data is missing.
pub(crate) const GAP: Rgb<u8> = Rgb([225, 225, 225]);
/// Chart grid.
pub(crate) const GRID: Rgb<u8> = Rgb([232, 232, 232]);

/// The colour of an alarm of `severity` (markers, outlines, chart shading).
pub fn severity_colour(severity: Severity) -> Rgb<u8> {
    match severity {
        Severity::Critical => Rgb([220, 20, 20]),
        Severity::High => Rgb([240, 110, 20]),
        Severity::Medium => Rgb([225, 180, 0]),
        Severity::Low => Rgb([60, 110, 200]),
    }
}

/// `colour` mixed with white: `amount` 0 is white, 1 the colour.
pub(crate) fn tint(colour: Rgb<u8>, amount: f64) -> Rgb<u8> {
    let m = |c: u8| {
        (255.0 - (255.0 - f64::from(c)) * amount)
            .round()
            .clamp(0.0, 255.0) as u8
    };
    Rgb([m(colour.0[0]), m(colour.0[1]), m(colour.0[2])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_interpolate_and_clamp() {
        let t = Measure::Temperature;
        assert_eq!(t.colour(-10.0), Rgb([44, 123, 182]));
        assert_eq!(t.colour(40.0), Rgb([215, 40, 40]));
        assert_eq!(t.colour(21.0), Rgb([150, 210, 110]));
        let mid = t.colour(19.5);
        assert_eq!(mid, Rgb([145, 205, 170]));
        assert_eq!(t.legend_ticks().first(), Some(&14.0));
        assert_eq!(t.legend_ticks().last(), Some(&30.0));
        assert_eq!(Measure::Co2.legend_ticks().len(), 9);
        assert_eq!(Measure::parse("CO2"), Some(Measure::Co2));
        assert_eq!(Measure::parse("pressure"), None);
        assert_eq!(tint(Rgb([0, 0, 0]), 0.0), Rgb([255, 255, 255]));
    }
}
