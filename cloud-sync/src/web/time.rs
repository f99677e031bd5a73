//! Times as the web application shows them: milliseconds since the Unix epoch from SQL,
//! ISO 8601 UTC in JSON and on pages, and "5 min ago" ages.
//!
//! Owns: [`Time`], its formatting and its decoding from SQL. Pure: no clock is read here except by [`now_ms`].

use serde::{Serialize, Serializer};

/// A point in time, ms since the Unix epoch; serialised as `"2026-11-23T10:15:00.250Z"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(pub i64);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&iso(self.0))
    }
}

/// Read from an `int8` of ms since the epoch (the queries' `ms!` columns).
impl sqlx::Type<sqlx::Postgres> for Time {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <i64 as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Time {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <i64 as sqlx::Decode<'r, sqlx::Postgres>>::decode(value).map(Time)
    }
}

impl Time {
    /// ISO 8601 with milliseconds.
    pub fn iso(self) -> String {
        iso(self.0)
    }

    /// `2026-11-23 10:15:00 UTC`, for pages.
    pub fn display(self) -> String {
        let (y, mo, d, h, mi, s, _) = civil(self.0);
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
    }
}

/// Now, ms since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `(year, month, day, hour, minute, second, millisecond)` of `ms` in UTC.
pub(crate) fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let part = |v: i64| u32::try_from(v).unwrap_or(0);
    (
        y,
        part(m),
        part(d),
        part(rem / 3_600_000),
        part(rem / 60_000 % 60),
        part(rem / 1000 % 60),
        part(rem % 1000),
    )
}

fn iso(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// "12 s ago", "5 min ago", "3 h ago", "2 d ago"; "in the future" for clock skew.
pub fn age(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "-".to_owned();
    }
    if seconds < -5.0 {
        return "in the future".to_owned();
    }
    let s = seconds.max(0.0);
    if s < 90.0 {
        format!("{s:.0} s ago")
    } else if s < 90.0 * 60.0 {
        format!("{:.0} min ago", s / 60.0)
    } else if s < 36.0 * 3600.0 {
        format!("{:.0} h ago", s / 3600.0)
    } else {
        format!("{:.0} d ago", s / 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(Time(0).iso(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Time(1_700_000_000_123).iso(), "2023-11-14T22:13:20.123Z");
        assert_eq!(Time(951_782_400_000).display(), "2000-02-29 00:00:00 UTC");
        assert_eq!(Time(-1).iso(), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            serde_json::to_string(&Time(1_700_000_000_000)).unwrap(),
            "\"2023-11-14T22:13:20.000Z\""
        );
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(3.2), "3 s ago");
        assert_eq!(age(600.0), "10 min ago");
        assert_eq!(age(7200.0), "2 h ago");
        assert_eq!(age(3.0 * 86_400.0), "3 d ago");
        assert_eq!(age(-60.0), "in the future");
    }
}
