//! Finding the real `markoff` binary that the end-to-end tests drive, and the command that runs
//! it.
//!
//! Owns: locating the binary, warning when it is older than the daemon's sources, and running it
//! through an emulator when one is named (a binary of another architecture: the arm64 package's
//! `markoff` under `qemu-aarch64` on an amd64 host). Does not own: building it (cargo cannot build
//! another package's binary for an integration test; CI runs `cargo build -p markoff` first).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// Environment variable naming the binary explicitly.
pub const BIN_ENV: &str = "MARKOFF_BIN";

/// Environment variable with the command that runs the binary, split on whitespace, e.g.
/// `qemu-aarch64 -L /usr/aarch64-linux-gnu` for an arm64 `markoff` on an amd64 host. Unset or
/// empty: the binary runs by itself. Signals sent to the child reach the binary: qemu's user-mode
/// emulation passes them on to the program it runs, and a SIGKILL ends both at once.
pub const RUNNER_ENV: &str = "MARKOFF_BIN_RUNNER";

/// A command that runs [`markoff_bin`], through `$MARKOFF_BIN_RUNNER` when that is set; the
/// caller adds the arguments.
///
/// # Panics
/// The binary cannot be found (see [`markoff_bin`]).
pub fn markoff_bin_command() -> Command {
    let bin = markoff_bin();
    match runner() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(bin);
            cmd
        }
        None => Command::new(bin),
    }
}

/// The runner's program and its arguments, when `$MARKOFF_BIN_RUNNER` names one.
fn runner() -> Option<(&'static str, &'static [String])> {
    static RUNNER: OnceLock<Vec<String>> = OnceLock::new();
    let words = RUNNER.get_or_init(|| {
        let words: Vec<String> = std::env::var(RUNNER_ENV)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !words.is_empty() {
            // Straight to the process's stderr (the test harness captures eprintln! of passing
            // tests): a run through an emulator says so in every test binary's output.
            let _ignored = writeln!(
                std::io::stderr(),
                "markoff under test: {} run by `{}` ({RUNNER_ENV})",
                markoff_bin().display(),
                words.join(" ")
            );
        }
        words
    });
    let (program, args) = words.split_first()?;
    Some((program.as_str(), args))
}

/// The `markoff` binary: `$MARKOFF_BIN`, else `markoff` in the `target/<profile>/` directory
/// that holds the running test executable.
///
/// # Panics
/// The binary cannot be found; the message says how to build it.
pub fn markoff_bin() -> PathBuf {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let path = locate();
            warn_if_stale(&path);
            path
        })
        .clone()
}

fn locate() -> PathBuf {
    if let Some(p) = std::env::var_os(BIN_ENV) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "{BIN_ENV}={} is not a file; build it with cargo build -p markoff",
            p.display()
        );
        return p;
    }
    let exe = std::env::current_exe().expect("the path of the running test executable");
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/markoff
    for dir in exe.ancestors().skip(1) {
        let candidate = dir.join("markoff");
        if candidate.is_file() {
            return candidate;
        }
        if dir.file_name().is_some_and(|n| n == "target") {
            break;
        }
    }
    panic!(
        "the markoff binary was not found beside {} (or in ${BIN_ENV}); \
         build it with cargo build -p markoff",
        exe.display()
    );
}

/// A binary older than the daemon's sources tests old code: say so loudly (once per process).
fn warn_if_stale(bin: &Path) {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return;
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let newer = ["daemon/src", "daemon/Cargo.toml", "migrations", "config"]
        .iter()
        .filter_map(|p| newest_mtime(&workspace.join(p)))
        .max();
    if newer.is_some_and(|n| n > built) {
        eprintln!(
            "WARNING: {} is older than the daemon's sources; these tests run the OLD binary. \
             Rebuild it with cargo build -p markoff",
            bin.display()
        );
    }
}

fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}
