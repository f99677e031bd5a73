//! Finding the real `markoff` binary that the end-to-end tests drive.
//!
//! Owns: locating the binary and warning when it is older than the daemon's sources. Does not own:
//! building it (cargo cannot build another package's binary for an integration test; CI runs
//! `cargo build -p markoff` first).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

/// Environment variable naming the binary explicitly.
pub const BIN_ENV: &str = "MARKOFF_BIN";

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
