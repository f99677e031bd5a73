//! The errors of the upload protocol, classified for the uploader's retry policy.
//!
//! Owns: [`SyncError`] and how a PostgreSQL error is classified (transient or not, connection
//! still usable or not). Does not own: the retry policy itself (the daemon's uploader).

use crate::Stream;

/// Why an upload, a cursor read or a metadata upsert failed.
///
/// Every failure leaves the central database as it was before the call (one transaction per
/// call), so the caller may always retry the same call; [`Self::is_transient`] says whether a
/// quick retry is likely to succeed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// PostgreSQL rejected a statement or the connection failed during `op`.
    #[error("{op} for gateway {gateway_id} failed: {source}")]
    Database {
        /// What the call was doing, e.g. "copying readings into the staging table".
        op: &'static str,
        /// The gateway the call was for.
        gateway_id: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The rows of a batch were not in strictly increasing seq order.
    #[error(
        "{stream} batch for gateway {gateway_id} is not in seq order: seq {seq} at index {index} follows {previous}"
    )]
    Unordered {
        /// The stream of the batch.
        stream: Stream,
        /// The gateway the batch was for.
        gateway_id: String,
        /// Position of the offending row in the batch.
        index: usize,
        /// The seq of the row before it.
        previous: i64,
        /// Its seq.
        seq: i64,
    },
    /// A row holds a value the central schema cannot store (e.g. a sensor id beyond int4, a
    /// timestamp beyond PostgreSQL's range, a text of 2 GiB or more).
    #[error("{stream} row seq {seq} of gateway {gateway_id} cannot be stored: {reason}")]
    InvalidRow {
        /// The stream of the row.
        stream: Stream,
        /// The gateway the row was for.
        gateway_id: String,
        /// The row's seq (for metadata: the sensor id or 0).
        seq: i64,
        /// What is wrong with it.
        reason: String,
    },
}

impl SyncError {
    /// Whether retrying soon is likely to succeed: the connection was lost or refused, the
    /// server is shutting down or overloaded, the transaction hit a serialization failure, a
    /// deadlock or a timeout. Permission denied, a row-level security violation, a missing schema
    /// or a bad row are not transient: an operator has to act (the uploader still retries, with a
    /// long backoff).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database { source, .. } => is_transient(source),
            Self::Unordered { .. } | Self::InvalidRow { .. } => false,
        }
    }

    /// Whether the connection should be dropped and a new one opened before retrying: after an
    /// I/O, TLS or protocol error, or when the server ended the session.
    pub fn needs_reconnect(&self) -> bool {
        match self {
            Self::Database { source, .. } => needs_reconnect(source),
            Self::Unordered { .. } | Self::InvalidRow { .. } => false,
        }
    }

    /// The SQLSTATE of the database error, if PostgreSQL returned one (e.g. `42501` for a
    /// privilege or row-level security violation).
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            Self::Database { source, .. } => sqlstate(source),
            Self::Unordered { .. } | Self::InvalidRow { .. } => None,
        }
    }
}

/// The SQLSTATE of a database error.
pub(crate) fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// See [`SyncError::is_transient`].
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| transient_sqlstate(&c)),
        _ => false,
    }
}

/// See [`SyncError::needs_reconnect`].
pub(crate) fn needs_reconnect(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// Whether the connection to the server could not be made or was lost (for exit code 69).
pub fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c == "57P03"),
        _ => false,
    }
}

fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, disk full)
        || code.starts_with("57P") // admin/crash shutdown, cannot connect now
        || matches!(
            code,
            "40001" // serialization_failure
                | "40P01" // deadlock_detected
                | "55P03" // lock_not_available
                | "57014" // query_canceled (statement timeout)
                | "25P03" // idle_in_transaction_session_timeout
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified() {
        for c in [
            "08006", "08001", "40001", "40P01", "57P01", "57P03", "53300", "57014",
        ] {
            assert!(transient_sqlstate(c), "{c}");
        }
        for c in [
            "42501", "42P01", "3F000", "23505", "22008", "28P01", "42703",
        ] {
            assert!(!transient_sqlstate(c), "{c}");
        }
    }

    #[test]
    fn io_errors_are_transient_and_need_a_new_connection() {
        let e = SyncError::Database {
            op: "test",
            gateway_id: "gw".into(),
            source: sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        };
        assert!(e.is_transient());
        assert!(e.needs_reconnect());
        assert_eq!(e.sqlstate(), None);
        let e = SyncError::Unordered {
            stream: Stream::Readings,
            gateway_id: "gw".into(),
            index: 1,
            previous: 5,
            seq: 5,
        };
        assert!(!e.is_transient());
    }
}
