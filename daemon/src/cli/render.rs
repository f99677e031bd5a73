//! `markoff render plan | chart`: a floor plan or a history chart as a PNG file, from the running
//! daemon (its local API), or, when it does not answer or `--db` / `--data-dir` is given, from
//! the buffer itself, opened read-only, with `[site]` and the alarm rules from the config file.
//!
//! Owns: the command's arguments and its fallback to the buffer. Does not own: drawing
//! (`crate::render`) or the daemon's endpoints (`crate::render::api`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use crate::channels::client::{ApiArgs, ClientError};
use crate::config::{self, Config, LoadError};
use crate::model::{Lang, Timestamp};
use crate::render::{
    CHART_SIZE, ChartOptions, Measure, PLAN_WIDTH, PlanOptions, RenderError, chain,
};

const EX_UNAVAILABLE: u8 = 69;
const EX_CONFIG: u8 = 78;

/// `markoff render ...`
#[derive(Debug, Subcommand)]
pub enum RenderCommand {
    /// Draw a floor plan: rooms coloured by a measure (with its scale), every sensor's value,
    /// alarms as rings in their severity's colour, stale values grey.
    Plan {
        /// Floor id as in [[site.floor]] or the sensors' floor label ("3", "B"), or a floor's
        /// name.
        #[arg(long)]
        floor: String,
        /// What rooms are coloured by.
        #[arg(long, value_enum, default_value_t = Measure::Temperature)]
        measure: Measure,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Draw a sensor's history: its line over time, alarm limits, alarm periods, gaps.
    Chart {
        /// Sensor id, e.g. f3.r301.temperature.
        #[arg(long)]
        sensor: String,
        /// How far back ("6h", "24h", "7d"; 1m to 31d).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        since: Duration,
        /// Picture height in pixels (200 to 3000).
        #[arg(long, default_value_t = CHART_SIZE.1)]
        height: u32,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// Where the picture goes and where the data comes from.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// PNG file to write ("-" for standard output).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Language of titles and labels: en or ru.
    #[arg(long, default_value = "en", value_parser = parse_lang)]
    pub lang: Lang,
    /// Picture width in pixels (320 to 4000). Default: 1200.
    #[arg(long)]
    pub width: Option<u32>,
    /// Draw from this buffer file (read-only) instead of asking the daemon.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Draw from the buffer in this directory (markoff.db, as `markoff demo --data-dir` keeps
    /// it) instead of asking the daemon. [site] and the alarm rules come from --config
    /// (config/demo.toml for a demo's directory).
    #[arg(long, conflicts_with = "db")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Parses `en` / `ru`.
///
/// # Errors
/// Any other text.
pub fn parse_lang(s: &str) -> Result<Lang, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "en" | "english" => Ok(Lang::En),
        "ru" | "russian" | "рус" => Ok(Lang::Ru),
        other => Err(format!("unknown language {other:?}: en or ru")),
    }
}

/// Why `markoff render` failed.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Render(String),
    #[error(transparent)]
    Config(#[from] LoadError),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One render request, whoever answers it.
#[derive(Clone, Debug)]
enum Request {
    Plan {
        floor: String,
        measure: Measure,
    },
    Chart {
        sensor: String,
        since: Duration,
        height: u32,
    },
}

/// Runs `markoff render ...`; prints what it wrote, or why not.
pub async fn run(cmd: RenderCommand) -> ExitCode {
    let (request, out) = match cmd {
        RenderCommand::Plan {
            floor,
            measure,
            out,
        } => (Request::Plan { floor, measure }, out),
        RenderCommand::Chart {
            sensor,
            since,
            height,
            out,
        } => (
            Request::Chart {
                sensor,
                since,
                height,
            },
            out,
        ),
    };
    match render(&request, &out)
        .await
        .and_then(|png| write(&out.output, &png))
    {
        Ok(note) => {
            if out.output.as_os_str() == "-" {
                eprint!("{note}");
            } else {
                print!("{note}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("markoff: {}", chain(&e));
            match e {
                CliError::Client(ClientError::Unreachable { .. }) => ExitCode::from(EX_UNAVAILABLE),
                CliError::Config(_) => ExitCode::from(EX_CONFIG),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// The PNG: from the buffer when asked, else from the daemon, else (daemon unreachable) from the
/// buffer of the config file.
async fn render(request: &Request, out: &OutputArgs) -> Result<Vec<u8>, CliError> {
    let local = out
        .db
        .clone()
        .or_else(|| out.data_dir.as_ref().map(|d| d.join("markoff.db")));
    if let Some(db) = local {
        return render_local(request, out, &db).await;
    }
    let base = out.api.base_url();
    match fetch(&base, request, out).await {
        Err(ClientError::Unreachable { url, source }) => {
            let fallback = load_config(&out.api.config)
                .ok()
                .map(|c| c.store.resolved_path())
                .filter(|p| p.exists());
            match fallback {
                Some(db) => {
                    eprintln!(
                        "markoff: the daemon does not answer at {base}; drawing from {}",
                        db.display()
                    );
                    render_local(request, out, &db).await
                }
                None => Err(ClientError::Unreachable { url, source }.into()),
            }
        }
        other => Ok(other?),
    }
}

async fn fetch(base: &str, request: &Request, out: &OutputArgs) -> Result<Vec<u8>, ClientError> {
    let lang = match out.lang {
        Lang::En => "en",
        Lang::Ru => "ru",
    };
    let mut query: Vec<(&str, String)> = vec![("lang", lang.to_owned())];
    let path = match request {
        Request::Plan { floor, measure } => {
            query.push(("floor", floor.clone()));
            query.push(("measure", measure.kind().to_owned()));
            "/api/v1/render/plan"
        }
        Request::Chart {
            sensor,
            since,
            height,
        } => {
            query.push(("sensor", sensor.clone()));
            query.push(("since", humantime::format_duration(*since).to_string()));
            query.push(("height", height.to_string()));
            "/api/v1/render/chart"
        }
    };
    if let Some(w) = out.width {
        query.push(("width", w.to_string()));
    }
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .unwrap_or_default();
    let resp = http
        .get(&url)
        .query(&query)
        .send()
        .await
        .map_err(|source| ClientError::Unreachable {
            url: url.clone(),
            source,
        })?;
    if !resp.status().is_success() {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default().trim().to_owned();
        return Err(ClientError::Status { status, body });
    }
    Ok(resp.bytes().await.map_err(ClientError::Decode)?.to_vec())
}

/// The config for drawing from a buffer: the file when it exists, else the defaults.
fn load_config(path: &Path) -> Result<Config, LoadError> {
    if path.exists() {
        return config::load_file(path);
    }
    config::parse_str("[gateway]\nid = \"markoff\"\n", Path::new("(defaults)"))
        .map_err(LoadError::Invalid)
}

async fn render_local(request: &Request, out: &OutputArgs, db: &Path) -> Result<Vec<u8>, CliError> {
    let cfg = load_config(&out.api.config)?;
    let (request, db, lang, width) = (request.clone(), db.to_owned(), out.lang, out.width);
    let result = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, RenderError> {
        let conn = crate::store::open_read_only(&db)?;
        let now = Timestamp::now();
        match request {
            Request::Plan { floor, measure } => {
                let opts = PlanOptions {
                    measure,
                    lang,
                    now,
                    width_px: width.unwrap_or(PLAN_WIDTH).clamp(320, 4000),
                };
                crate::render::plan_png_from_buffer(&cfg, &conn, &floor, opts)
            }
            Request::Chart {
                sensor,
                since,
                height,
            } => {
                let opts = ChartOptions {
                    since,
                    now,
                    lang,
                    size: (width.unwrap_or(CHART_SIZE.0), height),
                };
                crate::render::chart_png_from_buffer(&cfg, &conn, &sensor, opts)
            }
        }
    })
    .await;
    match result {
        Ok(Ok(png)) => Ok(png),
        Ok(Err(e)) if e.is_request_error() => Err(CliError::Render(e.message(lang))),
        Ok(Err(e)) => Err(CliError::Render(chain(&e))),
        Err(e) => Err(CliError::Render(chain(&RenderError::Task(e)))),
    }
}

/// Writes the PNG; returns the line to print.
fn write(path: &Path, png: &[u8]) -> Result<String, CliError> {
    let fail = |source| CliError::Write {
        path: path.to_owned(),
        source,
    };
    if path.as_os_str() == "-" {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(png).map_err(fail)?;
        stdout.flush().map_err(fail)?;
    } else {
        std::fs::write(path, png).map_err(fail)?;
    }
    let dim = |i: usize| {
        png.get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes)
    };
    Ok(format!(
        "wrote {} ({}x{} pixels, {} KiB)\n",
        if path.as_os_str() == "-" {
            "the picture".to_owned()
        } else {
            path.display().to_string()
        },
        dim(16),
        dim(20),
        png.len().div_ceil(1024)
    ))
}
