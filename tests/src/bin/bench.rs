//! Benchmarks of Markoff: `cargo run --release -p markoff-tests --bin bench -- <benchmark>`.
//!
//! One subcommand per benchmark (`ingest`, `daemon`, `codec`, `layout`, `modbus`, `mqtt`, `alarms`, `sync`, `render`,
//! `agent-eval`). Every benchmark checks its result, because a fast wrong answer is worthless: a
//! failed check exits non-zero. Missed performance targets are printed as MISSED and do not change
//! the exit code. The figures and how to read them are recorded in `docs/performance.md`.

// The crate root lives in `src/bin/`, so its modules are named by path to keep them in `bench/`.
#[path = "bench/agent_eval.rs"]
mod agent_eval;
#[path = "bench/alarms.rs"]
mod alarms;
#[path = "bench/codec.rs"]
mod codec;
#[path = "bench/daemon.rs"]
mod daemon;
#[path = "bench/fleet.rs"]
mod fleet;
#[path = "bench/fleet_web.rs"]
mod fleet_web;
#[path = "bench/ingest.rs"]
mod ingest;
#[path = "bench/layout.rs"]
mod layout;
#[path = "bench/modbus.rs"]
mod modbus;
#[path = "bench/mqtt.rs"]
mod mqtt;
#[path = "bench/render.rs"]
mod render;
#[path = "bench/sync.rs"]
mod sync;
#[path = "bench/sys.rs"]
mod sys;
#[path = "bench/workload.rs"]
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Benchmarks of the Markoff gateway. Build with --release.
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Readings/s, bytes written and stored per reading as the buffer grows to 50M readings
    /// (10,000 sensors), through the daemon's store and the columnar layout, beside the floor
    /// (encoded batches appended to a file with an fdatasync each) and the old row-per-reading
    /// layout, with a 24 h history query of one sensor; docs/performance.md, section 2.
    Ingest(ingest::Args),
    /// Steady state of `markoff run` with 1,000 and 10,000 simulated points at 1 Hz: bytes
    /// written to disk per reading (/proc/<pid>/io) and RSS, optionally beside another build.
    Daemon(daemon::Args),
    /// Bytes and CPU per reading of the buffer's batch and chunk encodings against pco and
    /// lz4_flex over the same columns, on 1 Hz building data; docs/storage.md.
    Codec(codec::Args),
    /// The storage engine alone: the columnar layout, the floor (encoded batches appended to a
    /// file with an fdatasync each) and the row-per-reading layout, readings/s and bytes written
    /// and stored per reading as the buffer grows; docs/storage.md.
    Layout(layout::Args),
    /// Modbus requests per cycle of the planner against one-request-per-point and contiguous-only
    /// merging, and points/s with CPU per 10,000 points/s through the real poller into SQLite.
    Modbus(modbus::Args),
    /// MQTT messages/s from Mosquitto into committed SQLite rows (QoS 1 and QoS 0).
    Mqtt(mqtt::Args),
    /// Alarm evaluation cost per reading with 10,000 rules, and latency from a reading's commit
    /// to its alarm event and outbox rows being committed.
    Alarms(alarms::Args),
    /// Rows/s of a backlog drained from the SQLite buffer into the central PostgreSQL by the
    /// daemon's uploader, against a raw binary COPY of the same rows into the same table.
    Sync(sync::Args),
    /// Floor plan (200 sensors) and 7-day chart (10,080 points) drawing and PNG encoding times,
    /// and charts read from a real buffer; docs/performance.md.
    Render(render::Args),
    /// The assistant's tool-selection accuracy and latency on 30 staff questions (English and
    /// Russian) against an OpenAI-compatible server (Koboldcpp, llama.cpp server, vLLM);
    /// docs/agent-eval.md.
    /// N simulated gateways syncing into one PostgreSQL, through PgBouncer and directly.
    Fleet(fleet::Args),
    /// The office web application (buildings list, building page) over a centre filled to a
    /// year of a fleet of buildings; docs/performance.md, section 9.
    CentralWeb(fleet_web::Args),
    AgentEval(agent_eval::Args),
}

/// What a benchmark concluded, beyond its printed figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The result was checked and is correct (targets may still have been missed).
    Checked,
    /// The result check failed: the figures are not to be trusted.
    CheckFailed,
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let verdict = match cli.command {
        Command::Ingest(args) => ingest::run(&args)?,
        Command::Codec(args) => codec::run(&args)?,
        Command::Daemon(args) => daemon::run(&args)?,
        Command::Layout(args) => layout::run(&args)?,
        Command::Modbus(args) => modbus::run(&args)?,
        Command::Mqtt(args) => mqtt::run(&args)?,
        Command::Alarms(args) => alarms::run(&args)?,
        Command::Sync(args) => sync::run(&args)?,
        Command::Render(args) => render::run(&args)?,
        Command::Fleet(args) => fleet::run(&args)?,
        Command::CentralWeb(args) => fleet_web::run(&args)?,
        Command::AgentEval(args) => agent_eval::run(&args)?,
    };
    Ok(match verdict {
        Verdict::Checked => ExitCode::SUCCESS,
        Verdict::CheckFailed => ExitCode::FAILURE,
    })
}
