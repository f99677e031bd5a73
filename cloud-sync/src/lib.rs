//! The central side of Markoff: the central PostgreSQL schema, its administration and the office
//! web application.
//!
//! Owns: the administration `markoff-central` runs and the web application it serves. The
//! protocol the gateways use to upload (streams, rows, the upload transaction, errors,
//! credential lookup) is the crate `markoff-proto`, re-exported here so the central side and its
//! tests name it in one place. The schema itself is `migrations/central/` (embedded), described
//! in `docs/central-schema.md`.
//!
//! # Layout
//! - `cli`: the command line of `markoff-central`.
//! - `admin`: migrations, partition maintenance, gateway roles and the gateway list.
//! - `scram`: SCRAM-SHA-256 verifiers, so passwords never reach the server in clear text.
//! - `office`: the office's roles (the web application's and read-only readers' such as Grafana).
//! - `web`: `markoff-central serve`, the office web application (pages, JSON API, users,
//!   sessions, floor plans and charts as SVG).

pub mod admin;
pub mod cli;
pub mod office;
mod scram;
pub mod web;

pub use admin::{
    AdminError, GatewayCredentials, GatewayStatus, MigrateReport, NewGateway, Password, Removed,
    add_gateway, ensure_partitions, list_gateways, migrate, remove_gateway, set_gateway_key,
};
pub use markoff_proto::{
    AlarmEventRow, BatchOutcome, FloorRow, GatewayIdentity, GatewayKey, ReadingRow, RoomRow,
    SensorMetaRow, SiteMetadata, Stream, SyncError, TenantRow, central_cursor, credentials,
    raw_copy_readings, report_head, touch_gateway, upload_alarm_events, upload_readings,
    upload_readings_after, upsert_metadata,
};
pub use office::{OfficeRole, OfficeRoleKind, add_office_role};
