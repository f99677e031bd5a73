//! The contract between Markoff gateways and the central PostgreSQL.
//!
//! Owns: the names of the synced streams, the idempotency key `(gateway_id, stream, seq)`, the
//! upload protocol the daemon's uploader calls, and the administration `markoff-central` runs.
//! The schema itself is `migrations/central/` (embedded), described in `docs/central-schema.md`.
//!
//! # Layout
//! - `upload`: readings and alarm events, exactly once (cursor row lock, binary COPY into a
//!   staging table, `INSERT ... ON CONFLICT DO NOTHING`); the central cursor; contact and backlog.
//! - `metadata`: site metadata (building, floors, rooms, tenants, sensors) upserted on change.
//! - `error`: [`SyncError`], classified for the uploader's retry policy.
//! - `copy`: the PostgreSQL binary COPY encoder.
//! - `credentials`: where a systemd credential is found (by name or from the packaged
//!   units' credentials directory).
//! - `cli`: the command line of `markoff-central`.
//! - `admin`: migrations, partition maintenance, gateway roles and the gateway list.
//! - `scram`: SCRAM-SHA-256 verifiers, so passwords never reach the server in clear text.
//! - `office`: the office's roles (the web application's and read-only readers' such as Grafana).
//! - `web`: `markoff-central serve`, the office web application (pages, JSON API, users,
//!   sessions, floor plans and charts as SVG).

use std::fmt;

pub mod admin;
pub mod cli;
mod copy;
pub mod credentials;
mod error;
mod metadata;
pub mod office;
mod scram;
mod upload;
pub mod web;

pub use admin::{
    AdminError, GatewayCredentials, GatewayStatus, MigrateReport, NewGateway, Password, Removed,
    add_gateway, ensure_partitions, list_gateways, migrate, remove_gateway,
};
pub use error::SyncError;
pub use metadata::{FloorRow, RoomRow, SensorMetaRow, SiteMetadata, TenantRow, upsert_metadata};
pub use office::{OfficeRole, OfficeRoleKind, add_office_role};
pub use upload::{
    AlarmEventRow, BatchOutcome, ReadingRow, central_cursor, raw_copy_readings, report_head,
    touch_gateway, upload_alarm_events, upload_readings,
};

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
