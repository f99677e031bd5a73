//! What a Markoff gateway and the central PostgreSQL share.
//!
//! Owns: the names of the synced streams, the idempotency key `(gateway_id, stream, seq)`, the
//! rows a gateway uploads and the upload protocol its uploader calls, the binary COPY encoding,
//! the protocol's errors, and where a systemd credential is found. Both the daemon (`markoff`)
//! and the central side (`markoff-cloud-sync`) depend on this crate; neither depends on the
//! other. Does not own: the central schema (`migrations/central/`, applied by
//! `markoff-central migrate`), gateway provisioning or the office web application.
//!
//! # Layout
//! - `upload`: readings (one call of the server-side function `markoff.upload_readings`) and
//!   alarm events, exactly once; the central cursor; contact and backlog.
//! - `metadata`: site metadata (building, floors, rooms, tenants, sensors) upserted on change.
//! - `office`: the office's requests to acknowledge or shelve an alarm, pulled and answered.
//! - `error`: [`SyncError`], classified for the uploader's retry policy.
//! - `copy`: the PostgreSQL binary COPY encoder.
//! - `credentials`: where a systemd credential is found (by name or from the packaged
//!   units' credentials directory).
//! - `web_security`: the rules the LAN page and the office web application share: same-origin
//!   POSTs, session cookies, constant-time comparison, the failed-login limit.
//!
//! # Behind a transaction-pooling PgBouncer
//! Every call works through a pooler that hands the server connection to another client between
//! transactions (PgBouncer `pool_mode = transaction`, including versions before 1.21 that do not
//! track prepared statements): every statement with parameters runs inside an explicit
//! transaction and as the *unnamed* prepared statement (parse, describe, bind and execute on the
//! one server connection the transaction holds; nothing named is left on it for the next
//! client); settings are `SET LOCAL`; nothing is created in the server session (the batches go
//! as arrays); no advisory lock, `LISTEN` or session `SET` is used. `docs/central-schema.md`
//! ("Through PgBouncer") has the deployment.

use std::fmt;

mod clock;
mod copy;
pub mod credentials;
mod error;
mod identity;
mod metadata;
mod office;
mod upload;
pub mod web_security;

pub use clock::{ClockEpochRow, ClockStatusRow, report_clock};
pub use error::{SyncError, is_unreachable};
pub use identity::{GatewayIdentity, GatewayKey};

pub use metadata::{FloorRow, RoomRow, SensorMetaRow, SiteMetadata, TenantRow, upsert_metadata};
pub use office::{OfficeRequestRow, answer_office_request, office_requests_pending};
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::{Query, QueryScalar};
pub use upload::{
    AlarmEventRow, BatchOutcome, ReadingRow, central_cursor, raw_copy_readings, report_head,
    touch_gateway, upload_alarm_events, upload_readings, upload_readings_after,
};

/// `sqlx::query` as the unnamed prepared statement: never cached under a name on the server
/// connection, so a transaction-pooling PgBouncer may give that connection to any client next.
pub(crate) fn query<'q>(sql: &'static str) -> Query<'q, Postgres, PgArguments> {
    sqlx::query(sql).persistent(false)
}

/// `sqlx::query_scalar` as the unnamed prepared statement (see [`query`]).
pub(crate) fn query_scalar<'q, O>(sql: &'static str) -> QueryScalar<'q, Postgres, O, PgArguments>
where
    (O,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    sqlx::query_scalar(sql).persistent(false)
}

/// A stream of rows a gateway uploads; part of the idempotency key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Sensor readings.
    Readings,
    /// Alarm lifecycle events.
    AlarmEvents,
    /// Site metadata (building, floors, rooms, sensors).
    Metadata,
}

impl Stream {
    /// Every stream.
    pub const ALL: [Stream; 3] = [Stream::Readings, Stream::AlarmEvents, Stream::Metadata];

    /// The name used in cursors and in the central tables.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Readings => "readings",
            Self::AlarmEvents => "alarm_events",
            Self::Metadata => "metadata",
        }
    }

    /// Parses a stream name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_round_trip() {
        for s in Stream::ALL {
            assert_eq!(Stream::parse(s.as_str()), Some(s));
        }
        assert_eq!(Stream::parse("nope"), None);
    }
}
