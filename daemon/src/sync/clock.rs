//! Readings stamped while the clock was not trusted, on their way to the centre.
//!
//! Owns: holding back the readings of a span still waiting for its correction, adding the
//! correction to the readings of a corrected span before upload, and reporting the clock's status
//! and spans to the centre (`markoff_proto::report_clock`). Does not own: the spans
//! (`crate::clock`, `crate::store::clock`). The buffer's readings are never rewritten.

use std::time::Duration;

use markoff_proto::{ClockEpochRow, ClockStatusRow, GatewayKey, ReadingRow};
use parking_lot::Mutex;
use sqlx::PgConnection;
use tokio::time::Instant;
use tracing::warn;

use crate::clock::SyncStatus;
use crate::store::clock::{ClockEpoch, EpochState};

/// The status is reported again at least this often while uploads go on.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// The spans as last read with a batch of readings, and what was last reported.
static SPANS: Mutex<Vec<ClockEpoch>> = Mutex::new(Vec::new());
static REPORTED: Mutex<Option<(String, Instant)>> = Mutex::new(None);

/// Makes a batch read after the sync cursor ready for upload: cuts it before the first reading
/// that must wait for a correction (`hold_after`: the clock's current span, not yet recorded), and
/// corrects the stamps of readings of corrected spans.
pub(crate) fn prepare(rows: &mut Vec<ReadingRow>, spans: &[ClockEpoch], hold_after: Option<i64>) {
    let hold = spans
        .iter()
        .filter(|e| e.state == EpochState::Pending && e.last_seq.is_none())
        .map(|e| e.after_seq)
        .chain(hold_after)
        .min();
    if let Some(h) = hold
        && let Some(cut) = rows.iter().position(|r| r.seq > h)
    {
        rows.truncate(cut);
    }
    let corrected: Vec<&ClockEpoch> = spans
        .iter()
        .filter(|e| e.state == EpochState::Corrected && e.offset_ms.is_some())
        .collect();
    if corrected.is_empty() {
        return;
    }
    for r in rows.iter_mut() {
        if let Some(e) = corrected.iter().find(|e| e.contains(r.seq, r.ts_ms)) {
            r.ts_ms = r.ts_ms.saturating_add(e.offset_ms.unwrap_or(0));
        }
    }
}

/// Keeps the spans read with the last batch, for the report.
pub(crate) fn remember(spans: Vec<ClockEpoch>) {
    *SPANS.lock() = spans;
}

fn rows() -> (ClockStatusRow, Vec<ClockEpochRow>) {
    let snap = crate::clock::global().snapshot();
    let status = ClockStatusRow {
        synchronized: match snap.status {
            SyncStatus::Synchronized => Some(true),
            SyncStatus::Unsynchronized => Some(false),
            SyncStatus::Unknown => None,
        },
        trusted: snap.trusted,
        steps: i64::try_from(snap.steps).unwrap_or(i64::MAX),
        last_offset_ms: snap.last_offset_ms,
    };
    let epochs = SPANS
        .lock()
        .iter()
        .map(|e| ClockEpochRow {
            epoch_id: e.id,
            reason: e.reason.clone(),
            first_seq: e.after_seq + 1,
            last_seq: e.last_seq,
            from_ms: e.from_ms,
            to_ms: e.to_ms,
            offset_ms: e.offset_ms,
            state: e.state.as_str().to_owned(),
        })
        .collect();
    (status, epochs)
}

/// Reports the clock and its spans to the centre when they changed (or every minute). A centre
/// that cannot take the report (an older schema) does not stop the upload: it is logged.
pub(crate) async fn report(conn: &mut PgConnection, gateway: &GatewayKey) {
    let gateway_id = gateway.id();
    let (status, epochs) = rows();
    let key = format!("{gateway_id}{status:?}{epochs:?}");
    if let Some((last, at)) = REPORTED.lock().as_ref()
        && *last == key
        && at.elapsed() < REPORT_EVERY
    {
        return;
    }
    match markoff_proto::report_clock(conn, gateway, &status, &epochs).await {
        Ok(()) => {}
        Err(e) => warn!(error = %e, "Cannot report the clock to the centre."),
    }
    *REPORTED.lock() = Some((key, Instant::now()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, ts_ms: i64) -> ReadingRow {
        ReadingRow {
            seq,
            sensor_id: 1,
            ts_ms,
            value: Some(1.0),
            quality: 0,
        }
    }

    fn span(after: i64, last: Option<i64>, to: Option<i64>, state: EpochState) -> ClockEpoch {
        ClockEpoch {
            id: 1,
            reason: "boot".into(),
            boot_id: "b".into(),
            mono_base: 0,
            after_seq: after,
            last_seq: last,
            from_ms: 1_000,
            to_ms: to,
            offset_ms: (state == EpochState::Corrected).then_some(1_000_000),
            state,
            closed_ms: None,
        }
    }

    #[test]
    fn a_pending_span_holds_its_readings_back() {
        let mut rows = vec![row(1, 500), row(2, 1_000), row(3, 2_000)];
        prepare(&mut rows, &[span(1, None, None, EpochState::Pending)], None);
        assert_eq!(rows, vec![row(1, 500)]);
        let mut rows = vec![row(1, 500), row(2, 1_000)];
        prepare(&mut rows, &[], Some(0));
        assert!(rows.is_empty(), "the clock's own span holds too");
    }

    #[test]
    fn a_corrected_span_moves_only_its_own_readings() {
        let mut rows = vec![row(1, 500), row(2, 1_000), row(3, 2_000), row(4, 1_001_500)];
        prepare(
            &mut rows,
            &[span(1, Some(4), Some(2_000), EpochState::Corrected)],
            None,
        );
        assert_eq!(
            rows,
            vec![
                row(1, 500),
                row(2, 1_001_000),
                row(3, 1_002_000),
                row(4, 1_001_500)
            ]
        );
    }

    #[test]
    fn an_uncorrected_span_goes_as_stamped() {
        let mut rows = vec![row(2, 1_000)];
        prepare(
            &mut rows,
            &[span(1, None, None, EpochState::Uncorrected)],
            None,
        );
        assert_eq!(rows, vec![row(2, 1_000)]);
    }
}
