//! Markoff: an edge gateway for buildings.
//!
//! Sources (Modbus, MQTT, the simulator) produce readings; every reading is committed to a
//! SQLite buffer before anything downstream (latest-value cache, alarms, sync, the assistant)
//! sees it; the service layer supervises tasks and speaks the systemd protocol.
//!
//! # Layout
//! - [`agent`]: the on-site assistant: LLM tool loop, tools over local data, slash commands and
//!   answers without the LLM.
//! - [`alarms`]: local alarm rules, the ISA-18.2 lifecycle, the notification outbox.
//! - [`app`]: composition root: start, staged shutdown, reload.
//! - [`cli`]: the command line.
//! - [`config`]: typed config: parse, validate (every error with line:col), defaults, secrets.
//! - [`context`]: [`context::Core`], what the running components share; the status report.
//! - [`model`]: readings, sensors, qualities, sequence numbers; language, severity, role and
//!   actor; floor-plan polygons.
//! - [`render`]: floor plans and history charts as PNG pictures.
//! - [`store`]: the durable SQLite buffer: migrations, batched writer, disk budget, queries.
//! - [`sync`]: the uploader to the central PostgreSQL.
//! - [`sources`]: data sources (the building simulator so far).
//! - [`service`]: supervisor, backoff, systemd notify/watchdog, logging, metrics, status.
//! - [`channels`]: the local HTTP API and the CLI client of a running daemon.
//! - [`demo`]: `markoff demo`, the whole pipeline on a simulated building with a live view.
//! - [`import`]: `markoff import`: Telegraf and ThingsBoard IoT Gateway configs translated.

pub mod agent;
pub mod alarms;
pub mod app;
pub mod channels;
pub mod cli;
pub mod config;
pub mod context;
pub mod demo;
pub mod import;
pub mod model;
pub mod render;
pub mod service;
pub mod sources;
pub mod store;
pub mod sync;
