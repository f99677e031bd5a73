//! The daily rollup `readings_1d` and the retention of the 10-minute rollup, both run by
//! `markoff-central maintain` (central migration 12 has the SQL and why it is exact).

use std::time::Duration;

use tokio::time::Instant;

use sqlx::PgConnection;

use super::{AdminError, db};

/// How long [`rollup_daily`] waits for the transactions that were running when it started
/// (uploads take well under a second) before it leaves the newly ended days to its next run.
pub const ROLLUP_WAIT: Duration = Duration::from_secs(60);

/// What [`rollup_daily`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollupReport {
    /// Every day before this one (UTC, `YYYY-MM-DD`) is in `readings_1d`, except days a gateway
    /// wrote to since (they are rolled up again by the next run; readers take them from
    /// `readings_10m` meanwhile).
    pub through: String,
    /// Gateways looked at.
    pub gateways: usize,
    /// Daily rows written (new or changed).
    pub rows: i64,
    /// The transactions running at the start did not all end within the wait: the days that
    /// ended since the last run were left for the next run (late rows were still rolled up).
    pub waited_out: bool,
}

/// Rolls `readings_10m` up into `readings_1d`: the days that ended since the last run, and the
/// days any gateway wrote to after they had ended (claimed from `readings_1d_pending`). One
/// transaction per gateway; safe to run while gateways upload and beside another `maintain`.
///
/// # Errors
/// [`AdminError::Database`].
pub async fn rollup_daily(
    conn: &mut PgConnection,
    wait: Duration,
) -> Result<RollupReport, AdminError> {
    let op = "rolling up the daily rollup";
    // The day that has not ended, then (a later snapshot) the first transaction id not yet
    // given out: a transaction that wrote rows of an earlier day without marking it as late
    // did so before that day ended, so its id is below `next_xid`.
    let today: String =
        sqlx::query_scalar("SELECT (clock_timestamp() AT TIME ZONE 'UTC')::date::text")
            .fetch_one(&mut *conn)
            .await
            .map_err(db(op))?;
    let next_xid: i64 =
        sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8")
            .fetch_one(&mut *conn)
            .await
            .map_err(db(op))?;
    let deadline = Instant::now() + wait;
    let waited_out = loop {
        let ended: bool =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8 >= $1")
                .bind(next_xid)
                .fetch_one(&mut *conn)
                .await
                .map_err(db(op))?;
        if ended {
            break false;
        }
        if Instant::now() >= deadline {
            break true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let from: String = sqlx::query_scalar(
        "SELECT through::text FROM markoff.rollup_state WHERE rollup = 'readings_1d'",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db(op))?;
    // ISO dates compare as text.
    let to = if waited_out || today < from {
        from.clone()
    } else {
        today
    };
    let gateways: Vec<String> = sqlx::query_scalar(
        "SELECT gateway_id FROM markoff.gateways \
         UNION SELECT gateway_id FROM markoff.readings_1d_pending ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db(op))?;
    let mut rows = 0i64;
    for g in &gateways {
        let n: i32 = sqlx::query_scalar("SELECT markoff.rollup_1d($1, $2::date, $3::date)")
            .bind(g)
            .bind(&from)
            .bind(&to)
            .fetch_one(&mut *conn)
            .await
            .map_err(db(op))?;
        rows += i64::from(n);
    }
    let through: String = sqlx::query_scalar(
        "UPDATE markoff.rollup_state SET through = greatest(through, $1::date) \
         WHERE rollup = 'readings_1d' RETURNING through::text",
    )
    .bind(&to)
    .fetch_one(&mut *conn)
    .await
    .map_err(db(op))?;
    Ok(RollupReport {
        through,
        gateways: gateways.len(),
        rows,
        waited_out,
    })
}

/// Deletes the rows of `readings_10m` older than the first day of the month `keep_months`
/// months before the current one (UTC; the same boundary as `drop_partitions`), but only of
/// days `readings_1d` already holds. Returns the rows deleted. One transaction per gateway.
///
/// # Errors
/// [`AdminError::Invalid`] when `keep_months` is below 1, [`AdminError::Database`].
pub async fn trim_10m(conn: &mut PgConnection, keep_months: i32) -> Result<i64, AdminError> {
    let op = "deleting old 10-minute rollup rows";
    if keep_months < 1 {
        return Err(AdminError::Invalid {
            what: "number of months to keep",
            value: keep_months.to_string(),
            reason: "the current month is always kept: at least 1",
        });
    }
    let before: String = sqlx::query_scalar(
        "SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') \
                 - make_interval(months => $1))::date::text",
    )
    .bind(keep_months)
    .fetch_one(&mut *conn)
    .await
    .map_err(db(op))?;
    let gateways: Vec<String> =
        sqlx::query_scalar("SELECT gateway_id FROM markoff.gateways ORDER BY 1")
            .fetch_all(&mut *conn)
            .await
            .map_err(db(op))?;
    let mut deleted = 0i64;
    for g in &gateways {
        let n: i64 = sqlx::query_scalar("SELECT markoff.trim_10m($1, $2::date)")
            .bind(g)
            .bind(&before)
            .fetch_one(&mut *conn)
            .await
            .map_err(db(op))?;
        deleted += n;
    }
    Ok(deleted)
}
