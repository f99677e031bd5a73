//! Markoff: an edge gateway for buildings.
//!
//! Sources (Modbus, MQTT, the simulator) produce readings; every reading is committed to a
//! SQLite buffer before anything downstream (latest-value cache, alarms, sync, the assistant)
//! sees it; the service layer supervises tasks and speaks the systemd protocol.
//!
//! # Layout
//! From the bottom of the module graph up; a module imports only those above it in this list
//! (docs/architecture.md section 14; `daemon/tests/module_graph.rs` fails on any cycle).
//! - [`model`]: readings, sensors, qualities, sequence numbers; language, severity, role and
//!   actor; floor-plan polygons.
//! - [`config`]: typed config: parse, validate (every error with line:col), defaults, secrets.
//!   With the components' leaf `config` modules and the resolvers the loader runs, it is one
//!   layer that imports only [`model`].
//! - [`service`]: supervisor, backoff, systemd notify/watchdog, logging, metrics, status.
//! - [`store`]: the durable SQLite buffer: migrations, batched writer, disk budget, queries.
//! - [`alarms`]: local alarm rules, the ISA-18.2 lifecycle, the notification outbox.
//! - [`sync`]: the uploader to the central PostgreSQL.
//! - [`context`]: [`context::Core`], what the running components share; the sources' health
//!   board; the status report.
//! - [`sources`]: data sources: Modbus, MQTT, the building simulator.
//! - [`agent`]: the on-site assistant: LLM tool loop, tools over local data, slash commands and
//!   answers without the LLM.
//! - [`render`]: floor plans and history charts as PNG pictures.
//! - [`channels`]: the local HTTP API, the LAN page, the Telegram bot, the API client.
//! - [`import`]: `markoff import`: Telegraf and ThingsBoard IoT Gateway configs translated.
//! - [`cli`]: the command line, and the presentation of `markoff render` and `markoff modbus`.
//! - [`app`]: composition root: start, staged shutdown, reload.
//! - [`demo`]: `markoff demo`, the whole pipeline on a simulated building with a live view.
//!
//! Within a module, a file that grew past about 600 lines of logic is split into child modules
//! along its seams (its header's `Layout:` line names them; docs/architecture.md section 14 lists
//! them), and the browser front ends' security rules come from `markoff_proto::web_security`.

pub mod agent;
pub mod alarms;
pub mod app;
pub mod channels;
pub mod cli;
pub mod clock;
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
