//! The contract between Markoff gateways and the central PostgreSQL.
//!
//! Owns: the names of the synced streams and the idempotency key `(gateway_id, stream, seq)`.
//! The central schema, the uploader protocol and `markoff-central`'s database commands build on
//! these names.

use std::fmt;

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
