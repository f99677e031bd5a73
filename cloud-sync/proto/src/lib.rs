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
//! - `upload`: readings and alarm events, exactly once (cursor row lock, binary COPY into a
//!   staging table, `INSERT ... ON CONFLICT DO NOTHING`); the central cursor; contact and backlog.
//! - `metadata`: site metadata (building, floors, rooms, tenants, sensors) upserted on change.
//! - `error`: [`SyncError`], classified for the uploader's retry policy.
//! - `copy`: the PostgreSQL binary COPY encoder.
//! - `credentials`: where a systemd credential is found (by name or from the packaged
//!   units' credentials directory).

use std::fmt;

mod copy;
pub mod credentials;
mod error;
mod metadata;
mod upload;

pub use error::{SyncError, is_unreachable};
pub use metadata::{FloorRow, RoomRow, SensorMetaRow, SiteMetadata, TenantRow, upsert_metadata};
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
