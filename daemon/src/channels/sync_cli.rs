//! `markoff sync status`: the running daemon's sync to the centre, from `GET /api/v1/sync`.

use std::fmt::Write as _;
use std::time::Duration;

use super::client::{Client, ClientError};
use crate::model::Timestamp;
use crate::sync::SyncReport;

/// `GET /api/v1/sync`, as JSON text (`--json`) or for people.
///
/// # Errors
/// See [`ClientError`].
pub async fn status(client: &Client, json: bool) -> Result<String, ClientError> {
    let value = client.raw("/api/v1/sync").await?;
    if json {
        return Ok(serde_json::to_string_pretty(&value).unwrap_or_default() + "\n");
    }
    let report: SyncReport = serde_json::from_value(value).map_err(|e| ClientError::Status {
        status: 200,
        body: format!("unexpected /api/v1/sync answer: {e}"),
    })?;
    Ok(render(&report, Timestamp::now()))
}

/// The report for people.
pub fn render(r: &SyncReport, now: Timestamp) -> String {
    let mut out = String::new();
    if !r.enabled {
        writeln!(
            out,
            "sync      not configured for gateway {} (add a [sync] section; see docs/sync.md)",
            r.gateway_id
        )
        .ok();
        return out;
    }
    writeln!(
        out,
        "sync      gateway {} to {}, sslmode {}",
        r.gateway_id,
        r.target.as_deref().unwrap_or("?"),
        r.sslmode.as_deref().unwrap_or("?")
    )
    .ok();
    writeln!(
        out,
        "{:<13} {:<12} {:>12} {:>12} {:>10} {:>9}  last success",
        "stream", "state", "local", "central", "lag rows", "lag"
    )
    .ok();
    for s in &r.streams {
        let central = s
            .central_cursor
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        writeln!(
            out,
            "{:<13} {:<12} {:>12} {:>12} {:>10} {:>9}  {}",
            s.stream,
            s.state.as_str(),
            s.local_cursor,
            central,
            s.lag_rows,
            short_duration(s.lag_seconds),
            s.last_success_ms
                .map_or_else(|| "never".to_owned(), |t| ago(t, now)),
        )
        .ok();
        if let Some(e) = &s.last_error {
            let when = s.last_error_ms.map(|t| ago(t, now)).unwrap_or_default();
            write!(out, "  last error ({when}): {e}").ok();
            if let Some(next) = s.next_attempt_ms {
                let wait =
                    Duration::from_millis(u64::try_from(next - now.as_millis()).unwrap_or(0));
                write!(
                    out,
                    "; next attempt in {}",
                    short_duration(wait.as_secs_f64())
                )
                .ok();
            }
            out.push('\n');
        }
    }
    out
}

fn ago(ts_ms: i64, now: Timestamp) -> String {
    let secs = u64::try_from((now.as_millis() - ts_ms) / 1000).unwrap_or(0);
    format!(
        "{} ago",
        humantime::format_duration(Duration::from_secs(secs))
    )
}

fn short_duration(secs: f64) -> String {
    if !secs.is_finite() || secs <= 0.0 {
        return "0s".to_owned();
    }
    let d = Duration::from_secs(secs.round() as u64);
    if d.is_zero() {
        return format!("{secs:.1}s");
    }
    humantime::format_duration(d)
        .to_string()
        .split(' ')
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{StreamState, StreamStatus};

    #[test]
    fn renders_streams_with_errors() {
        let now = Timestamp(1_700_000_100_000);
        let report = SyncReport {
            gateway_id: "gw".into(),
            enabled: true,
            target: Some("postgres://gw@central:5432/markoff".into()),
            sslmode: Some("verify-full".into()),
            streams: vec![StreamStatus {
                stream: "readings".into(),
                state: StreamState::BackingOff,
                local_cursor: 100,
                central_cursor: Some(100),
                lag_rows: 2500,
                lag_seconds: 95.0,
                rows_uploaded: 100,
                batches: 1,
                last_success_ms: Some(1_700_000_000_000),
                last_error: Some("cannot connect".into()),
                last_error_ms: Some(1_700_000_095_000),
                next_attempt_ms: Some(1_700_000_110_000),
            }],
        };
        let text = render(&report, now);
        assert!(text.contains("backing off"), "{text}");
        assert!(text.contains("1m 35s"), "{text}");
        assert!(text.contains("1m 40s ago"), "{text}");
        assert!(
            text.contains("last error (5s ago): cannot connect; next attempt in 10s"),
            "{text}"
        );
        let off = SyncReport {
            enabled: false,
            target: None,
            sslmode: None,
            streams: Vec::new(),
            ..report
        };
        assert!(render(&off, now).contains("not configured"));
    }
}
