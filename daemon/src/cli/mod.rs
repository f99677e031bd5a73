//! Command line (clap derive). The text here is the `--help` users read. The presentation of
//! subcommands that talk to the running daemon or read the buffer lives beside it: `render`
//! (`markoff render`) and `modbus` (`markoff modbus`).

pub mod modbus;
pub mod render;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

pub use crate::channels::client::ApiArgs;
pub use crate::config::DEFAULT_CONFIG;

/// Markoff: edge gateway for buildings. Reads Modbus and MQTT sensors, buffers every reading
/// durably in SQLite, evaluates alarms locally, syncs to the central PostgreSQL and answers
/// on-site staff.
#[derive(Debug, Parser)]
#[command(name = "markoff", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway daemon (what the systemd unit starts).
    Run {
        /// Config file.
        #[arg(long, short, env = "MARKOFF_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Check a config file: prints every mistake as file:line:col with a hint.
    /// Exits 0 when valid, 78 (EX_CONFIG) when not.
    Validate {
        /// Config file.
        #[arg(long, short, env = "MARKOFF_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Run a whole simulated building through the real pipeline, with a live view.
    /// Needs no external service. Stop with q or Ctrl-C.
    Demo {
        /// Keep the buffer (markoff.db) and log in this directory instead of a temporary one.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Stop by itself after this long ("30s", "5m").
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Print plain status lines instead of the full-screen view (automatic when stdout
        /// is not a terminal).
        #[arg(long)]
        plain: bool,
    },
    /// Show the running daemon's status.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Modbus commissioning: read registers with every interpretation, scan a line for unit ids,
    /// print the planned requests of a config.
    Modbus {
        /// What to do.
        #[command(subcommand)]
        command: ModbusCommand,
    },
    /// Show open alarms (active or awaiting acknowledgement), or every alarm with --all.
    Alarms {
        /// Every alarm, including those in normal state.
        #[arg(long)]
        all: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Ask the on-site assistant a question (or run one of its slash commands, e.g. "/status")
    /// through the running daemon. Works without the LLM too: the answer then comes from local
    /// data and says so.
    Ask {
        /// The question, e.g. "what is the temperature in 301?" or "что с котлом?".
        #[arg(required = true, num_args = 1..)]
        question: Vec<String>,
        /// Conversation to continue; default: one per user ("cli:<login>").
        #[arg(long)]
        session: Option<String>,
        /// Machine-readable output (the whole reply: source, tools used, attachments).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Acknowledge an alarm, as the account running this command (through the daemon's socket:
    /// group markoff-operators, and an operator in [[users]] by unix_user).
    Ack {
        /// Alarm number, as listed by `markoff alarms`.
        id: i64,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Shelve an alarm: no notifications for a while (operator role required).
    Shelve {
        /// Alarm number.
        id: i64,
        /// How long ("30m", "2h"; 1 minute to 7 days).
        duration: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Lift an alarm's shelving (operator role required).
    Unshelve {
        /// Alarm number.
        id: i64,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Sync to the central PostgreSQL.
    Sync {
        /// What to do.
        #[command(subcommand)]
        command: SyncCommand,
    },
    /// Show the latest reading of every sensor, or one sensor's recent history.
    Readings {
        /// Sensor id, e.g. f3.r301.temperature.
        sensor: Option<String>,
        /// History rows to show for one sensor.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Draw a floor plan or a sensor's history chart as a PNG picture, through the running
    /// daemon, or from the buffer when the daemon does not answer (or with --db / --data-dir).
    Render {
        /// What to draw.
        #[command(subcommand)]
        command: render::RenderCommand,
    },
    /// Translate another tool's config into a Markoff config: a Telegraf config
    /// ([[inputs.modbus]], [[inputs.mqtt_consumer]]) or a ThingsBoard IoT Gateway Modbus connector.
    /// Prints the config (or writes --output) and reports on stderr every setting that could not
    /// be carried over, and every one carried with a change.
    Import {
        /// Which tool the file comes from.
        #[command(subcommand)]
        command: crate::import::ImportCommand,
    },
    /// Print a shell completion script. The Debian package installs them for bash, zsh and fish;
    /// elsewhere e.g. `markoff completions bash > ~/.local/share/bash-completion/completions/markoff`.
    Completions {
        /// bash, zsh, fish (or elvish, powershell).
        shell: clap_complete::Shell,
    },
}

/// Writes the completion script of `shell` for the whole command line.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "markoff", out);
}

/// `markoff sync ...`
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Per stream (readings, alarm events, metadata): local and central cursor, rows and age of
    /// what waits for the centre, last success, last error, state.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// `markoff modbus ...`
#[derive(Debug, Subcommand)]
pub enum ModbusCommand {
    /// Read registers and print them raw and as every type in every byte order, so the right
    /// type and order can be picked in one look.
    Read {
        #[command(flatten)]
        line: LineArgs,
        /// Unit id.
        #[arg(long, alias = "unit", default_value_t = 1)]
        slave: u8,
        /// Register table: holding, input, coil, discrete (optional with "40001"-style addresses).
        #[arg(long)]
        register: Option<String>,
        /// First address: a number (see --address-base) or "40001" / "4x0001".
        #[arg(long)]
        address: String,
        /// Registers (or bits) to read.
        #[arg(long, default_value_t = 8)]
        count: u16,
        /// Whether numeric addresses count from 0 (wire) or 1 (manual register numbers).
        #[arg(long, default_value_t = 0)]
        address_base: u8,
        /// Machine-readable output (the raw registers or bits).
        #[arg(long)]
        json: bool,
    },
    /// List the unit ids that answer on a line (an exception answer counts: a device is there).
    Scan {
        #[command(flatten)]
        line: LineArgs,
        /// First unit id.
        #[arg(long, default_value_t = 1)]
        from: u8,
        /// Last unit id.
        #[arg(long, default_value_t = 247)]
        to: u8,
        /// Register table probed.
        #[arg(long, default_value = "holding")]
        register: String,
        /// Address probed.
        #[arg(long, default_value_t = 0)]
        address: u16,
    },
    /// List the address holes the running gateway has learned per device (ranges a device
    /// answered "illegal data address" for), or forget them with --forget. Readings and alarms
    /// are left alone.
    Holes {
        /// Only this device.
        #[arg(long)]
        device: Option<String>,
        /// Clear the holes: the next cycles read across them again and learn those still there.
        #[arg(long)]
        forget: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Print the read requests per cycle of every Modbus device in a config.
    Plan {
        /// Config file.
        #[arg(long, short, env = "MARKOFF_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

/// How to reach a Modbus line.
#[derive(Debug, clap::Args)]
pub struct LineArgs {
    /// tcp://host:port or file:///dev/ttyUSB0.
    #[arg(long)]
    pub controller: String,
    /// TCP, RTU or RTUoverTCP (default from the controller).
    #[arg(long)]
    pub transmission_mode: Option<String>,
    /// Serial baud rate.
    #[arg(long, default_value_t = 9600)]
    pub baud_rate: u32,
    /// Serial data bits.
    #[arg(long, default_value_t = 8)]
    pub data_bits: u8,
    /// Serial parity: N, E or O.
    #[arg(long, default_value = "N")]
    pub parity: String,
    /// Serial stop bits.
    #[arg(long, default_value_t = 1)]
    pub stop_bits: u8,
    /// Time allowed per request.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}
