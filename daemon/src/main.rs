//! The `markoff` binary: parse the command line, set up logging, load the config, run.
//! Exit codes follow sysexits: 0 ok, 1 failure, 69 daemon unreachable, 70 internal failure,
//! 78 invalid config.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use markoff::app::{Exit, Gateway, StartOptions};
use markoff::channels::client::{self, ClientError};
use markoff::cli::{Cli, Command};
use markoff::config::{self, LoadError};
use markoff::service::logging::{self, LogTarget};
use tokio_util::sync::CancellationToken;

const EX_UNAVAILABLE: u8 = 69;
const EX_SOFTWARE: u8 = 70;
const EX_CONFIG: u8 = 78;

/// Loads the config for `markoff run` on threads of its own and keeps a copy made on this one.
///
/// Parsing a large config allocates many times its size for a moment (at 10,000 Modbus points,
/// about 1 MB of TOML: the TOML tree with its spans, the copies kept for error messages, the
/// config deserialized twice). Parsed on the main thread, that garbage stays in glibc's main
/// malloc arena, interleaved with what the daemon keeps, and in its RSS as long as it runs (the
/// main arena gives memory back only from its top): 30 MB at 10,000 points. Parsed on a thread,
/// it goes to that thread's arena; only the copy made here stays, the parsed original is dropped
/// on a second thread (which takes over the first one's arena), and a large allocation there
/// merges the arena's free chunks so that glibc returns the whole arena's pages to the system.
fn load_config_apart(path: &std::path::Path) -> Result<config::Config, LoadError> {
    let parsed = std::thread::scope(|s| {
        let parse = s.spawn(|| config::load_file(path));
        parse
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;
    let kept = parsed.clone();
    let released = std::thread::spawn(move || {
        drop(parsed);
        // Above the size whose free consolidates the arena and trims it (64 KiB), below the
        // smallest size glibc maps on its own (128 KiB).
        drop(std::hint::black_box(Vec::<u8>::with_capacity(96 * 1024)));
    })
    .join();
    if let Err(panic) = released {
        std::panic::resume_unwind(panic);
    }
    Ok(kept)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("markoff")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("markoff: cannot start the async runtime: {e}");
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    runtime.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate { config } => match config::load_file(&config) {
            Ok(_) => {
                println!("{}: valid", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => config_failure(&e),
        },
        Command::Run { config } => {
            let cfg = match load_config_apart(&config) {
                Ok(c) => c,
                Err(e) => return config_failure(&e),
            };
            let log = logging::init(&cfg.log.filter, cfg.log.format, LogTarget::Auto);
            let options = StartOptions {
                config_path: Some(config),
                log,
            };
            let result = async {
                let gw = Gateway::start(cfg, options).await?;
                gw.run(CancellationToken::new()).await
            }
            .await;
            exit_of(result)
        }
        Command::Demo {
            data_dir,
            duration,
            plain,
        } => exit_of(markoff::demo::run(data_dir, duration, plain).await),
        Command::Status { json, api } => {
            let client = match api.client() {
                Ok(c) => c,
                Err(e) => return print_or_fail(Err(e)),
            };
            let out = if json {
                client.raw("/api/v1/status").await.map(|v| pretty(&v))
            } else {
                client.status().await.map(|s| client::render_status(&s))
            };
            print_or_fail(out)
        }
        Command::Alarms { all, json, api } => {
            let client = match api.client() {
                Ok(c) => c,
                Err(e) => return print_or_fail(Err(e)),
            };
            let path = if all {
                "/api/v1/alarms?all=true"
            } else {
                "/api/v1/alarms"
            };
            let out = if json {
                client.raw(path).await.map(|v| pretty(&v))
            } else {
                client
                    .alarms(all)
                    .await
                    .map(|a| markoff::channels::alarms_cli::render_alarms(&a, all))
            };
            print_or_fail(out)
        }
        Command::Ask {
            question,
            session,
            json,
            api,
        } => {
            let client = match api.client() {
                Ok(c) => c,
                Err(e) => return print_or_fail(Err(e)),
            };
            let req = markoff::channels::agent_api::AskRequest {
                text: question.join(" "),
                session,
                lang: None,
            };
            let out = client.ask(&req).await.map(|r| {
                if json {
                    serde_json::to_value(&r)
                        .map(|v| pretty(&v))
                        .unwrap_or_default()
                } else {
                    markoff::channels::agent_cli::render_reply(&r)
                }
            });
            print_or_fail(out)
        }
        Command::Ack { id, api } => {
            let client = match api.client() {
                Ok(c) => c,
                Err(e) => return print_or_fail(Err(e)),
            };
            print_or_fail(client.alarm_action(id, "ack", None).await)
        }
        Command::Shelve { id, duration, api } => {
            let client = match api.client() {
                Ok(c) => c,
                Err(e) => return print_or_fail(Err(e)),
            };
            print_or_fail(client.alarm_action(id, "shelve", Some(&duration)).await)
        }
        Command::Unshelve { id, api } => {
            let client = match api.client() {
                Ok(c) => c,
                Err(e) => return print_or_fail(Err(e)),
            };
            print_or_fail(client.alarm_action(id, "unshelve", None).await)
        }
        Command::Sync {
            command: markoff::cli::SyncCommand::Status { json, api },
        } => {
            let client = match api.client() {
                Ok(c) => c,
                Err(e) => return print_or_fail(Err(e)),
            };
            print_or_fail(markoff::channels::sync_cli::status(&client, json).await)
        }
        Command::Modbus { command } => markoff::cli::modbus::run(command).await,
        Command::Render { command } => markoff::cli::render::run(command).await,
        Command::Import { command } => markoff::import::run(command),
        Command::Completions { shell } => {
            markoff::cli::completions(shell, &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Readings {
            sensor,
            limit,
            json,
            api,
        } => {
            let client = match api.client() {
                Ok(c) => c,
                Err(e) => return print_or_fail(Err(e)),
            };
            let out = match (sensor, json) {
                (None, true) => client.raw("/api/v1/readings").await.map(|v| pretty(&v)),
                (None, false) => client.readings().await.map(|r| client::render_readings(&r)),
                (Some(s), true) => client
                    .raw(&format!("/api/v1/readings/{s}?limit={limit}"))
                    .await
                    .map(|v| pretty(&v)),
                (Some(s), false) => client
                    .sensor(&s, limit)
                    .await
                    .map(|d| client::render_sensor(&s, &d)),
            };
            print_or_fail(out)
        }
    }
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

fn config_failure(e: &LoadError) -> ExitCode {
    eprintln!("{}", error_chain(e));
    if let LoadError::Invalid(errs) = e {
        eprintln!("{} error(s) in {}", errs.errors.len(), errs.file.display());
    }
    ExitCode::from(EX_CONFIG)
}

fn print_or_fail(out: Result<String, ClientError>) -> ExitCode {
    match out {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("markoff: {}", error_chain(&e));
            match e {
                ClientError::Unreachable { .. } | ClientError::Socket { .. } => {
                    ExitCode::from(EX_UNAVAILABLE)
                }
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn exit_of(result: anyhow::Result<Exit>) -> ExitCode {
    match result.context("markoff failed") {
        Ok(Exit::Clean) => ExitCode::SUCCESS,
        Ok(Exit::DeadlineExceeded) => ExitCode::FAILURE,
        Ok(Exit::Fatal(reason)) => {
            eprintln!("markoff: stopped after a fatal failure: {reason}");
            ExitCode::from(EX_SOFTWARE)
        }
        Err(e) => {
            eprintln!("markoff: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
