//! `markoff demo`: the whole gateway pipeline on a simulated building, with a live view.
//!
//! The built-in `config/demo.toml` turns on the simulator; readings flow through the real
//! store writer into SQLite in a data directory (temporary unless `--data-dir` is given), and the
//! HTTP API listens on a free loopback port so `markoff status --api ...` works alongside.

#[cfg(feature = "demo-broker")]
mod broker;
mod plant;
#[cfg(feature = "tui")]
mod tui;
mod view;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::app::{Exit, Gateway, StartOptions};
use crate::config;
use crate::context::Core;
use crate::service::logging::{self, LogTarget};

/// The demo's config, built in.
pub const DEMO_CONFIG: &str = include_str!("../../../config/demo.toml");

/// The demo config with the buffer placed in `data_dir` and the Modbus plant at `plant`.
///
/// # Errors
/// The built-in config is invalid (a bug caught by the tests).
pub fn demo_config(
    data_dir: &Path,
    plant: std::net::SocketAddr,
    mqtt: Option<std::net::SocketAddr>,
) -> anyhow::Result<config::Config> {
    let mut cfg = config::parse_str(DEMO_CONFIG, Path::new("config/demo.toml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    cfg.store.path = Some(data_dir.join("markoff.db"));
    // The demo's own socket, beside its buffer: actions through it are the demo user's.
    cfg.http.socket = data_dir.join("api.sock");
    for conn in cfg.sources.modbus.values_mut() {
        conn.controller = format!("tcp://{plant}");
    }
    match mqtt {
        Some(addr) => {
            for conn in cfg.sources.mqtt.values_mut() {
                conn.servers = vec![format!("tcp://{addr}")];
            }
        }
        None => cfg.sources.mqtt.clear(),
    }
    Ok(cfg)
}

/// Runs the demo until Ctrl-C / q, or for `duration`.
///
/// # Errors
/// The data directory cannot be created or the gateway cannot start.
pub async fn run(
    data_dir: Option<PathBuf>,
    duration: Option<Duration>,
    plain: bool,
) -> anyhow::Result<Exit> {
    let (dir, _temp) = match data_dir {
        Some(d) => {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            (d, None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("markoff-demo-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            (t.path().to_owned(), Some(t))
        }
    };
    let devices_token = CancellationToken::new();
    let plant = plant::start(devices_token.clone())
        .await
        .context("cannot start the simulated Modbus plant")?;
    #[cfg(feature = "demo-broker")]
    let mqtt = {
        let addr = broker::start_broker()
            .await
            .context("cannot start the demo MQTT broker")?;
        broker::start_devices(addr, devices_token.clone());
        Some(addr)
    };
    #[cfg(not(feature = "demo-broker"))]
    let mqtt = None;
    let cfg = demo_config(&dir, plant.addr(), mqtt)?;
    let full_screen = cfg!(feature = "tui") && !plain && std::io::stdout().is_terminal();
    let log_file = dir.join("markoff.log");
    let log = if full_screen {
        logging::init(&cfg.log.filter, cfg.log.format, LogTarget::File(&log_file))
    } else {
        logging::init(&cfg.log.filter, cfg.log.format, LogTarget::Stderr)
    };
    let gw = Gateway::start(
        cfg,
        StartOptions {
            config_path: None,
            log,
        },
    )
    .await?;
    let core = gw.core();
    let api = gw
        .http_addr()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    let stop = CancellationToken::new();
    if let Some(d) = duration {
        let s = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            s.cancel();
        });
    }
    let info = view::Info {
        data_dir: dir.clone(),
        api,
        log_file: full_screen.then_some(log_file),
        plant: format!("tcp://{}", plant.addr()),
    };
    // The view asks for the stop (q, Ctrl-C) through `stop`, and learns through `done` that the
    // gateway has shut down, so its last figures are the committed ones.
    let done = CancellationToken::new();
    let viewer = start_view(core, info, stop.clone(), done.clone(), full_screen);
    let exit = gw.run(stop.clone()).await;
    stop.cancel();
    done.cancel();
    let _view_done = viewer.await;
    devices_token.cancel();
    plant.stop().await;
    exit
}

fn start_view(
    core: Core,
    info: view::Info,
    stop: CancellationToken,
    done: CancellationToken,
    full_screen: bool,
) -> tokio::task::JoinHandle<()> {
    #[cfg(feature = "tui")]
    if full_screen {
        let handle = tokio::runtime::Handle::current();
        return tokio::task::spawn_blocking(move || tui::run(&handle, &core, &info, &stop, &done));
    }
    let _ = (full_screen, stop);
    tokio::spawn(view::run_plain(core, info, done))
}
