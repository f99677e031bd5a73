//! `markoff-central`: running the central PostgreSQL of Markoff: migrations, partition
//! maintenance, provisioning gateways and office roles, the office web application (`serve`)
//! and its users.
//!
//! Exit codes: 0 ok, 1 failure, 64 usage, 69 database unreachable, 78 configuration (a password
//! credential missing or empty; for `serve`, also a settings file that cannot be read or does
//! not validate): the packaged units do not restart on 78.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use markoff_cloud_sync::admin::{self, GatewayStatus};
use markoff_cloud_sync::cli::{Cli, Command};
use markoff_cloud_sync::web::{self, Access, ServeConfig, UserError, WebError};
use markoff_cloud_sync::{AdminError, NewGateway, Password, Stream};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};

const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 64;
const EXIT_UNAVAILABLE: u8 = 69;
const EXIT_CONFIG: u8 = 78;

/// Where the packaged maintenance unit (`markoff-central-maintain.service`) loads its
/// credentials from.
const MAINTAIN_CREDENTIALS_DIR: &str = "/etc/markoff/central-maintain-credentials";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

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
                || e.downcast_ref::<WebError>()
                    .is_some_and(WebError::is_unreachable)
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
    init_logging(matches!(cli.command, Command::Serve { .. }));
    // The web application serves many requests at once; everything else is one connection.
    let runtime = if matches!(cli.command, Command::Serve { .. }) {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
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

fn init_logging(serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
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
    if let Command::Serve {
        config,
        listen,
        password_env,
        insecure_cookies,
    } = cli.command
    {
        let mut cfg = match &config {
            Some(path) => ServeConfig::load(path).map_err(configuration)?,
            None => ServeConfig::default(),
        };
        if let Some(url) = cli.database_url {
            cfg.database_url = url;
        }
        if let Some(l) = listen {
            cfg.listen = l;
        }
        if password_env.is_some() && cli.password_credential.is_some() {
            return Err(usage(anyhow::anyhow!(
                "give --password-env or --password-credential, not both"
            )));
        }
        if let Some(var) = password_env {
            cfg.password_env = Some(var);
            cfg.password_file = None;
            cfg.password_credential = None;
        }
        if let Some(name) = cli.password_credential {
            cfg.password_env = None;
            cfg.password_file = None;
            cfg.password_credential = Some(name);
        }
        if insecure_cookies {
            cfg.cookie_secure = false;
        }
        return serve(cfg).await;
    }
    let Some(url) = cli.database_url else {
        return Err(Failure {
            code: EXIT_USAGE,
            error: anyhow::anyhow!("no database: pass --database-url or set DATABASE_URL"),
        });
    };
    let password = match &cli.password_credential {
        Some(name) => Some(
            markoff_cloud_sync::credentials::read_own_credential(name, MAINTAIN_CREDENTIALS_DIR)
                .map_err(|e| Failure {
                    code: EXIT_CONFIG,
                    error: e.into(),
                })?,
        ),
        None => None,
    };
    let mut conn = connect(&url, password.as_deref()).await?;
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
        Command::Maintain {
            months_ahead,
            keep_months,
            keep_10m_months,
        } => {
            if months_ahead < 0 {
                return Err(Failure {
                    code: EXIT_USAGE,
                    error: anyhow::anyhow!("--months-ahead must not be negative"),
                });
            }
            if keep_months.is_some_and(|k| k < 1) {
                return Err(Failure {
                    code: EXIT_USAGE,
                    error: anyhow::anyhow!("--keep-months must be at least 1"),
                });
            }
            if keep_10m_months.is_some_and(|k| k < 1) {
                return Err(Failure {
                    code: EXIT_USAGE,
                    error: anyhow::anyhow!("--keep-10m-months must be at least 1"),
                });
            }
            let n = admin::ensure_partitions(&mut conn, months_ahead)
                .await
                .context("maintain")?;
            println!("readings partitions created: {n}");
            if let Some(keep) = keep_months {
                let n = admin::drop_partitions(&mut conn, keep)
                    .await
                    .context("maintain")?;
                println!("readings partitions dropped: {n}");
            }
            let r = admin::rollup_daily(&mut conn, admin::ROLLUP_WAIT)
                .await
                .context("maintain")?;
            println!(
                "daily rollup: {} rows written for {} gateways, complete before {}",
                r.rows, r.gateways, r.through
            );
            if r.waited_out {
                println!(
                    "daily rollup: transactions older than this run were still open after {} s; \
                     the days that ended since the last run are left to the next run",
                    admin::ROLLUP_WAIT.as_secs()
                );
            }
            if let Some(keep) = keep_10m_months {
                let n = admin::trim_10m(&mut conn, keep).await.context("maintain")?;
                println!("10-minute rollup rows deleted: {n}");
            }
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
        Command::GatewayKey { id, key_file } => {
            let key = match &key_file {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    Some(Password::new(text.lines().next().unwrap_or_default()))
                }
                None => None,
            };
            let key = admin::set_gateway_key(&mut conn, &id, key)
                .await
                .with_context(|| format!("gateway-key {id}"))?;
            eprintln!("Gateway {id}: new key set; the old one no longer works.");
            if key_file.is_none() {
                println!(
                    "# /etc/markoff/credentials/central-key (mode 0600, root; restart markoff): this line; it is shown only once"
                );
                println!("{}", key.expose());
            }
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
        Command::Serve { .. } => {}
        Command::AddRole {
            role,
            kind,
            role_password_file,
            existing,
        } => {
            let password = role_password_file
                .as_ref()
                .map(|p| first_line(p).map(Password::new))
                .transpose()?;
            let r = markoff_cloud_sync::add_office_role(&mut conn, &role, kind, password, existing)
                .await
                .with_context(|| format!("add-role {role}"))?;
            eprintln!("Role {} ready for {kind}.", r.role);
            println!("# database URL: postgres://{}@HOST:5432/DATABASE", r.role);
            match (r.password, role_password_file) {
                (Some(_), Some(path)) => {
                    println!("# the password is the one in {}", path.display());
                }
                (Some(p), None) => {
                    println!("# its password (mode 0600 file or credential); shown only once:");
                    println!("{}", p.expose());
                }
                (None, _) => println!("# grants refreshed; password unchanged"),
            }
        }
        Command::AddUser {
            login,
            name,
            password_env,
            update,
        } => {
            let password = match &password_env {
                Some(var) => std::env::var(var)
                    .map_err(|_| usage(anyhow::anyhow!("environment variable {var} is not set")))?,
                None => read_password_from_stdin()?,
            };
            let r = web::add_user(&mut conn, &login, name.as_deref(), &password, update)
                .await
                .map_err(user_failure)?;
            if r.created {
                println!("user {} added", r.login);
            } else {
                println!(
                    "user {}: password replaced, {} session(s) ended",
                    r.login, r.sessions_ended
                );
            }
        }
        Command::RemoveUser { login } => {
            web::remove_user(&mut conn, &login)
                .await
                .map_err(user_failure)?;
            println!("user {login} removed");
        }
        Command::Grant {
            login,
            buildings,
            all,
        } => {
            let access = if all {
                Access::All
            } else {
                Access::Buildings(&buildings)
            };
            web::grant(&mut conn, &login, access)
                .await
                .map_err(user_failure)?;
            if all {
                println!("user {login}: every building");
            } else {
                println!("user {login}: granted {}", buildings.join(", "));
            }
        }
        Command::Revoke {
            login,
            buildings,
            all,
        } => {
            let access = if all {
                Access::All
            } else {
                Access::Buildings(&buildings)
            };
            let n = web::revoke(&mut conn, &login, access)
                .await
                .map_err(user_failure)?;
            println!("user {login}: {n} grant(s) revoked");
        }
        Command::Users => {
            let users = web::list_users(&mut conn).await.map_err(user_failure)?;
            println!("LOGIN\tNAME\tCREATED\tLAST LOGIN\tSESSIONS\tBUILDINGS");
            for u in users {
                let buildings = if u.admin {
                    "all".to_owned()
                } else if u.buildings.is_empty() {
                    "-".to_owned()
                } else {
                    u.buildings.join(",")
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    u.login,
                    u.display_name.as_deref().unwrap_or("-"),
                    u.created_at,
                    u.last_login_at.as_deref().unwrap_or("-"),
                    u.sessions,
                    buildings
                );
            }
        }
    }
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %e, "Closing the connection failed.");
    }
    Ok(())
}

/// Connects to `url`, with `password` in place of any the URL holds.
async fn connect(url: &str, password: Option<&str>) -> Result<PgConnection, Failure> {
    let database_error =
        |op, source| Failure::from(anyhow::Error::new(AdminError::Database { op, source }));
    let mut options: PgConnectOptions = url
        .parse()
        .map_err(|source| database_error("reading the database URL", source))?;
    if let Some(password) = password {
        options = options.password(password);
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(database_error("connecting to the central database", source)),
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
    println!("password_credential = \"central-password\"");
    println!("key_credential = \"central-key\"");
    println!(
        "# through PgBouncer as the shared ingest role (docs/central-schema.md, section 8): url = \"postgres://INGEST_ROLE@PGBOUNCER:6432/DATABASE\", and central-password holds that role's password"
    );
    println!();
    match password_file {
        Some(path) => println!(
            "# the password is the one in {} (put it in the credentials file)",
            path.display()
        ),
        None => {
            println!(
                "# /etc/markoff/credentials/central-password (mode 0600, root; restart markoff): this line; it is shown only once"
            );
            println!("{}", creds.password.expose());
        }
    }
    println!(
        "# /etc/markoff/credentials/central-key (mode 0600, root): this line; it is shown only once"
    );
    println!("{}", creds.key.expose());
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

fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_USAGE,
        error: e.into(),
    }
}

fn configuration(e: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_CONFIG,
        error: e.into(),
    }
}

fn user_failure(e: UserError) -> Failure {
    match e {
        UserError::Invalid { .. } => usage(e),
        other => Failure::from(anyhow::Error::new(other)),
    }
}

fn first_line(path: &std::path::Path) -> Result<String, Failure> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// The first line of standard input, without its line end.
fn read_password_from_stdin() -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!(
            "Password (it shows as you type; pipe it in or use --password-env to avoid that): "
        );
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "no password on standard input (give it on the first line, or use --password-env)"
        )));
    }
    Ok(password)
}

/// `serve`: validates the settings, connects, binds, prints the address, serves until SIGTERM
/// or SIGINT.
async fn serve(cfg: ServeConfig) -> Result<(), Failure> {
    let problems = cfg.validate();
    if !problems.is_empty() {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(configuration(anyhow::anyhow!(
            "invalid settings: {}",
            text.join("; ")
        )));
    }
    // Read before connecting, so that a missing credential is a configuration error (exit 78,
    // no restart), whatever the database's state.
    cfg.password().map_err(configuration)?;
    let pool = web::connect(&cfg).await.map_err(|e| match e {
        WebError::Config(c) => configuration(c),
        e => Failure::from(anyhow::Error::new(e)),
    })?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, "Office web application listening.");
    println!("markoff-central serve: listening on http://{addr}");
    std::io::stdout().flush().ok();
    web::serve(cfg, pool, listener, shutdown_signal())
        .await
        .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
    tracing::info!("Office web application stopped.");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "Cannot watch SIGTERM; stopping on Ctrl-C only.");
            tokio::signal::ctrl_c().await.ok();
        }
    }
}
