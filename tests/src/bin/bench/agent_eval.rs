//! `bench agent-eval`: the assistant's tool-selection accuracy and latency against an
//! OpenAI-compatible server (Koboldcpp, llama.cpp server, vLLM).
//!
//! Starts the real `markoff` binary (build it first: `cargo build --release -p markoff`) on the
//! simulated building with `[agent.llm] url` set to `--url`, waits until every sensor has a
//! reading, asks the 30 questions of `tests/data/agent-eval.toml`, then the held-out set of
//! `tests/data/agent-eval-heldout.toml`, through `POST /api/v1/ask`, and prints, per question,
//! what was expected, the first tool the model called, ok or FAIL and the latency; then, per
//! set, the accuracy, the answers that fell back to offline and the latency
//! quantiles. The questions, the matching rule and how to read the figures are in
//! `docs/agent-eval.md`; the runner is `markoff_tests::agent_eval`.
//!
//! Exit status: non-zero only when the evaluation could not be run (server unreachable, key
//! refused, no data, every answer offline); a low accuracy is a result, not a failure.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use markoff_tests::agent_eval::{self, Options};

use crate::Verdict;

/// Options of `bench agent-eval`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Base URL of the OpenAI-compatible server, e.g. http://gpu-box:5001 (a trailing /v1 is
    /// accepted).
    #[arg(long, required_unless_present = "router_only")]
    url: Option<String>,
    /// Environment variable holding the server's key (Koboldcpp --password, sent as Bearer).
    #[arg(long, value_name = "VAR")]
    key_env: Option<String>,
    /// Model name sent with each request (Koboldcpp ignores it; vLLM needs the served name)
    /// [default: koboldcpp].
    #[arg(long)]
    model: Option<String>,
    /// Seconds for one question, every LLM request and tool included (1 to 600).
    #[arg(long, default_value = "90", value_parser = clap::value_parser!(u64).range(1..=600))]
    turn_timeout: u64,
    /// One case file instead of the two sets [default: tests/data/agent-eval.toml, then
    /// tests/data/agent-eval-heldout.toml].
    #[arg(long, value_name = "FILE")]
    cases: Option<PathBuf>,
    /// Only the cases whose id contains this text (e.g. `ru-` or `history`).
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Write the report (every question, its answer and the figures) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Score the keyword router (no LLM at all) instead of a server: the baseline to beat.
    #[arg(long, conflicts_with_all = ["url", "key_env", "model"])]
    router_only: bool,
}

/// Runs the evaluation and prints its report: the 30 questions, then the held-out set (unless
/// `--cases` names one file).
pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    let sets = match &args.cases {
        Some(path) => vec![("cases", path.clone())],
        None => vec![
            ("tuning set", agent_eval::default_cases_path()),
            ("held-out set", agent_eval::heldout_cases_path()),
        ],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-runtime")
        .build()
        .context("cannot start the tokio runtime")?;
    let mut summaries = Vec::new();
    let mut verdict = Verdict::Checked;
    for (label, path) in sets {
        let Some(report) = run_set(args, &runtime, &path)? else {
            continue;
        };
        summaries.push(format!(
            "{label} ({}):\n{}",
            path.display(),
            report.summary()
        ));
        if let Some(file) = &args.json {
            let file = if label == "held-out set" {
                file.with_extension("heldout.json")
            } else {
                file.clone()
            };
            let text = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
            std::fs::write(&file, text)
                .with_context(|| format!("cannot write {}", file.display()))?;
            println!("report written to {}", file.display());
        }
        if !args.router_only && report.offline() == report.outcomes.len() {
            println!(
                "CHECK FAILED: every answer fell back to offline: the gateway could not use the \
                 LLM server. Warnings of the daemon:"
            );
            for line in report
                .log
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .take(20)
            {
                println!("  {line}");
            }
            verdict = Verdict::CheckFailed;
        }
    }
    if summaries.is_empty() {
        bail!(
            "no case id contains {:?}",
            args.only.as_deref().unwrap_or_default()
        );
    }
    println!();
    for s in summaries {
        print!("{s}");
    }
    Ok(verdict)
}

/// One case file: `None` when `--only` leaves none of its cases.
fn run_set(
    args: &Args,
    runtime: &tokio::runtime::Runtime,
    path: &std::path::Path,
) -> anyhow::Result<Option<agent_eval::Report>> {
    let mut cases = agent_eval::load_cases(path)?;
    let problems = agent_eval::check_cases(&cases);
    if !problems.is_empty() {
        bail!("{} has mistakes:\n{}", path.display(), problems.join("\n"));
    }
    if let Some(only) = &args.only {
        cases.retain(|c| c.id.contains(only.as_str()));
        if cases.is_empty() {
            return Ok(None);
        }
    }
    let key = match &args.key_env {
        Some(var) => {
            let value = std::env::var(var)
                .with_context(|| format!("--key-env {var}: the variable is not set"))?;
            Some((var.clone(), value))
        }
        None => None,
    };
    let opts = Options {
        llm_url: args.url.clone(),
        key,
        model: args.model.clone(),
        turn_timeout: Duration::from_secs(args.turn_timeout),
        cases,
    };
    println!(
        "agent-eval: {} questions from {} against {}{}",
        opts.cases.len(),
        path.display(),
        opts.llm_url
            .as_deref()
            .unwrap_or("the keyword router (no LLM)"),
        opts.model
            .as_deref()
            .map(|m| format!(" (model {m})"))
            .unwrap_or_default()
    );
    println!("  #  verdict  latency  lang  id  [source]\n");
    let report = runtime.block_on(agent_eval::run(&opts, |i, o| {
        print!("{}", agent_eval::format_outcome(i, o));
    }))?;
    println!();
    Ok(Some(report))
}
