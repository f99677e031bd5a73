//! `markoff-central`: running the central PostgreSQL of Markoff: migrations, partition
//! maintenance, and provisioning gateways.
//!
//! Exit codes: 0 ok, 1 failure, 64 usage, 69 database unreachable.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use markoff_cloud_sync::admin::{self, GatewayStatus};
use markoff_cloud_sync::{AdminError, NewGateway, Password, Stream};
use sqlx::{Connection as _, PgConnection};

const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 64;
const EXIT_UNAVAILABLE: u8 = 69;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Central side of Markoff: the schema gateways upload into, and their provisioning.
#[derive(Debug, Parser)]
#[command(name = "markoff-central", version)]
struct Cli {
    /// PostgreSQL URL of the central database, as an administrator (owner of schema `markoff`,
    /// allowed to create roles).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update the central schema (idempotent), then make sure the readings partitions
    /// exist.
    Migrate,
    /// Create the readings partitions for the coming months (run it monthly, e.g. from a timer).
    Maintain {
        /// How many months ahead of the current one to prepare.
        #[arg(long, default_value_t = admin::DEFAULT_MONTHS_AHEAD)]
        months_ahead: i32,
    },
    /// Provision a gateway: a login role that can write only its own rows and read only its
    /// building; prints its `[gateway]` and `[sync]` settings and, once, its password.
    AddGateway {
        /// The gateway's id (`[gateway] id` in its markoff.toml).
        id: String,
        /// The building it serves.
        #[arg(long)]
        building: String,
        /// The role name (default `markoff_gw_<ID>`).
        #[arg(long)]
        role: Option<String>,
        /// Read the role's password from this file (first line) instead of generating one.
        #[arg(long, value_name = "FILE")]
        role_password_file: Option<PathBuf>,
        /// The URL gateways reach the database by (default: the database URL without its
        /// credentials and parameters).
        #[arg(long, value_name = "URL")]
        gateway_url: Option<String>,
    },
    /// Drop a gateway's role so it can no longer connect; its data stays unless --purge.
    RemoveGateway {
        /// The gateway's id.
        id: String,
        /// Also delete its readings, alarm events, sensors, cursors and registration.
        #[arg(long)]
        purge: bool,
    },
    /// List the gateways: building, last contact and how far behind the centre is.
    Gateways,
    /// List the streams a gateway uploads, one per line.
    Streams,
}

/// A failure with the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        let unreachable = error.chain().any(|e| {
            e.downcast_ref::<AdminError>()
                .is_some_and(AdminError::is_unreachable)
        });
        Self {
            code: if unreachable {
                EXIT_UNAVAILABLE
            } else {
                EXIT_FAILURE
            },
            error,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage = e.use_stderr();
            if let Err(print) = e.print() {
                eprintln!("{print}");
            }
            return ExitCode::from(if usage { EXIT_USAGE } else { 0 });
        }
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", describe(&f.error));
            ExitCode::from(f.code)
        }
    }
}

/// The error and its causes, leaving out causes whose text an outer message already includes.
fn describe(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Streams = cli.command {
        for s in Stream::ALL {
            println!("{s}");
        }
        return Ok(());
    }
    let Some(url) = cli.database_url else {
        return Err(Failure {
            code: EXIT_USAGE,
            error: anyhow::anyhow!("no database: pass --database-url or set DATABASE_URL"),
        });
    };
    let mut conn = connect(&url).await?;
    match cli.command {
        Command::Streams => {}
        Command::Migrate => {
            let r = admin::migrate(&mut conn).await.context("migrate")?;
            if r.applied.is_empty() {
                println!("schema up to date (migrations {:?})", r.current);
            } else {
                println!("applied migrations {:?}", r.applied);
            }
            println!("readings partitions created: {}", r.partitions_created);
        }
        Command::Maintain { months_ahead } => {
            if months_ahead < 0 {
                return Err(Failure {
                    code: EXIT_USAGE,
                    error: anyhow::anyhow!("--months-ahead must not be negative"),
                });
            }
            let n = admin::ensure_partitions(&mut conn, months_ahead)
                .await
                .context("maintain")?;
            println!("readings partitions created: {n}");
        }
        Command::AddGateway {
            id,
            building,
            role,
            role_password_file,
            gateway_url,
        } => {
            add_gateway(
                &mut conn,
                &url,
                id,
                building,
                role,
                role_password_file,
                gateway_url,
            )
            .await?;
        }
        Command::RemoveGateway { id, purge } => {
            let r = admin::remove_gateway(&mut conn, &id, purge)
                .await
                .with_context(|| format!("remove-gateway {id}"))?;
            match r.role {
                Some(role) => println!("gateway {id}: role {role} dropped"),
                None => println!("gateway {id}: had no role"),
            }
            if purge {
                for (table, n) in r.purged {
                    println!("  deleted {n} rows from markoff.{table}");
                }
            } else {
                println!("  its data is kept (use --purge to delete it)");
            }
        }
        Command::Gateways => {
            let list = admin::list_gateways(&mut conn).await.context("gateways")?;
            print!("{}", gateways_table(&list));
        }
    }
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %e, "Closing the connection failed.");
    }
    Ok(())
}

async fn connect(url: &str) -> Result<PgConnection, Failure> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => {
            let e = AdminError::Database {
                op: "connecting to the central database",
                source,
            };
            Err(Failure::from(anyhow::Error::new(e)))
        }
        Err(_) => Err(Failure {
            code: EXIT_UNAVAILABLE,
            error: anyhow::anyhow!(
                "connecting to the central database timed out after {CONNECT_TIMEOUT:?}"
            ),
        }),
    }
}

async fn add_gateway(
    conn: &mut PgConnection,
    database_url: &str,
    id: String,
    building: String,
    role: Option<String>,
    password_file: Option<PathBuf>,
    gateway_url: Option<String>,
) -> Result<(), Failure> {
    let password = match &password_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(Password::new(text.lines().next().unwrap_or_default()))
        }
        None => None,
    };
    let new = NewGateway {
        gateway_id: id.clone(),
        building_id: building,
        role,
        password,
    };
    let creds = admin::add_gateway(conn, &new)
        .await
        .with_context(|| format!("add-gateway {id}"))?;
    let url = match gateway_url {
        Some(base) => admin::gateway_url(&base, &creds.role),
        None => admin::gateway_url(database_url, &creds.role),
    }
    .unwrap_or_else(|| format!("postgres://{}@HOST/DATABASE", creds.role));
    eprintln!(
        "Gateway {} added: building {}, role {}.",
        creds.gateway_id, creds.building_id, creds.role
    );
    println!("# /etc/markoff/markoff.toml on the gateway (sslmode defaults to verify-full)");
    println!("[gateway]");
    println!("id = {}", toml_string(&creds.gateway_id));
    println!();
    println!("[sync]");
    println!("url = {}", toml_string(&url));
    println!("password_file = \"/etc/markoff/credentials/central-password\"");
    println!();
    match password_file {
        Some(path) => println!(
            "# the password is the one in {} (put it in the credentials file)",
            path.display()
        ),
        None => {
            println!(
                "# /etc/markoff/credentials/central-password (mode 0600): this line; it is shown only once"
            );
            println!("{}", creds.password.expose());
        }
    }
    Ok(())
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn gateways_table(list: &[GatewayStatus]) -> String {
    let dash = || "-".to_owned();
    let mut rows: Vec<[String; 5]> = vec![[
        "GATEWAY".into(),
        "BUILDING".into(),
        "LAST CONTACT".into(),
        "LAG ROWS".into(),
        "LAG SECONDS".into(),
    ]];
    for g in list {
        let id = if g.role.is_some() {
            g.gateway_id.clone()
        } else {
            format!("{} (removed)", g.gateway_id)
        };
        rows.push([
            id,
            g.building_id.clone(),
            g.last_contact.clone().unwrap_or_else(dash),
            g.lag_rows.map_or_else(dash, |n| n.to_string()),
            g.lag_seconds.map_or_else(dash, |s| format!("{s:.0}")),
        ]);
    }
    let mut widths = [0usize; 5];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
