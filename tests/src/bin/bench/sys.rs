//! What the benchmarks need from the system: peak RSS, the machine, the disk, and formatting.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Peak resident set size of this process in bytes (`VmHWM` of `/proc/self/status`).
pub(crate) fn peak_rss() -> Option<u64> {
    status_kb("VmHWM:").map(|kb| kb * 1024)
}

/// Current resident set size in bytes (`VmRSS`).
pub(crate) fn current_rss() -> Option<u64> {
    status_kb("VmRSS:").map(|kb| kb * 1024)
}

fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// Bytes this process has read and written through system calls so far (`rchar`, `wchar` of
/// `/proc/self/io`), page cache hits and the SQLite WAL and checkpoints included.
pub(crate) fn io_counters() -> Option<Io> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| -> Option<u64> {
        io.lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .parse()
            .ok()
    };
    Some(Io {
        read: field("rchar:")?,
        written: field("wchar:")?,
        disk_written: field("write_bytes:").unwrap_or(0),
    })
}

/// `rchar`, `wchar` and `write_bytes` of another process (`/proc/<pid>/io`; needs the same user
/// or root).
pub(crate) fn process_io(pid: u32) -> Option<Io> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| -> Option<u64> {
        io.lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .parse()
            .ok()
    };
    Some(Io {
        read: field("rchar:")?,
        written: field("wchar:")?,
        disk_written: field("write_bytes:")?,
    })
}

/// `VmRSS` and `VmHWM` of another process, bytes.
pub(crate) fn process_rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |field: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(field))?;
        line[field.len()..].split_whitespace().next()?.parse().ok()
    };
    Some((kb("VmRSS:")? * 1024, kb("VmHWM:")? * 1024))
}

/// Bytes allocated on disk for every file under `dir` (recursively): what the files really take,
/// sparse parts left out.
pub(crate) fn allocated(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => allocated(&e.path()),
            Ok(m) => std::os::unix::fs::MetadataExt::blocks(&m) * 512,
            Err(_) => 0,
        })
        .sum()
}

/// Bytes allocated on disk for one file (0 when it does not exist).
pub(crate) fn allocated_file(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
}

/// The CPU model of `/proc/cpuinfo`.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// I/O counters of the process, see [`io_counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Io {
    pub(crate) read: u64,
    pub(crate) written: u64,
    /// Bytes sent to the block layer (`write_bytes`): what reaches the disk, page cache
    /// write-back included, rewrites of the same page in the cache counted once.
    pub(crate) disk_written: u64,
}

impl Io {
    /// What happened between `earlier` and `self`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            read: self.read.saturating_sub(earlier.read),
            written: self.written.saturating_sub(earlier.written),
            disk_written: self.disk_written.saturating_sub(earlier.disk_written),
        }
    }
}

/// The 1-minute load average, a hint of how busy the machine was.
pub(crate) fn load_average() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    s.split_whitespace().next().map(str::to_owned)
}

/// Resets the peak RSS to the current RSS (`5` into `/proc/self/clear_refs`, Linux 4.0+), so that the
/// next phase reports its own peak. Returns whether it worked.
pub(crate) fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The machine, in one line: CPUs, CPU model, kernel.
pub(crate) fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| format!(", {} RAM", bytes(kb * 1024)))
        .unwrap_or_default();
    format!("{cpus} CPUs ({model}){mem}, Linux {kernel}")
}

/// The filesystem holding `dir`: device, type and mount point, from `/proc/self/mounts`.
pub(crate) fn filesystem(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return "unknown filesystem".to_owned();
    };
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, mnt, fstype) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(mnt)
                .then_some((mnt.len(), dev, mnt, fstype))
        })
        .max_by_key(|(len, ..)| *len)
        .map_or_else(
            || "unknown filesystem".to_owned(),
            |(_, dev, mnt, fstype)| format!("{dev} ({fstype}) mounted on {mnt}"),
        )
}

/// The directory a benchmark works in: `dir` (created if needed), or a new temporary directory
/// named `prefix...` under [`default_base_dir`], removed when the returned guard drops unless
/// `keep`.
pub(crate) fn work_dir(
    dir: Option<&Path>,
    prefix: &str,
    keep: bool,
) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        return Ok((dir.to_owned(), None));
    }
    let base = default_base_dir();
    let temp = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .with_context(|| format!("cannot create a temporary directory in {}", base.display()))?;
    Ok(if keep {
        (temp.keep(), None)
    } else {
        (temp.path().to_owned(), Some(temp))
    })
}

/// Where to put benchmark databases by default: the cargo target directory (same disk as the build),
/// found from `CARGO_TARGET_DIR` or as the ancestor of this executable that holds `CACHEDIR.TAG`;
/// `/var/tmp` otherwise.
pub(crate) fn default_base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .skip(1)
                .find(|a| a.join("CACHEDIR.TAG").is_file())
                .map(Path::to_owned)
        })
        .unwrap_or_else(|| PathBuf::from("/var/tmp"))
}

/// Removes an SQLite database and its `-wal` and `-shm` files, if present.
pub(crate) fn remove_database(path: &Path) -> anyhow::Result<()> {
    for p in [
        path.to_owned(),
        sibling(path, "-wal"),
        sibling(path, "-shm"),
    ] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", p.display())),
        }
    }
    Ok(())
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `1234567` -> `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte count in GiB, MiB or KiB.
pub(crate) fn bytes(n: u64) -> String {
    if n >= 1024 * 1024 * 1024 {
        format!("{:.2} GiB", n as f64 / (1024.0 * 1024.0 * 1024.0))
    } else if n >= 1024 * 1024 {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}

/// Parses a count that may use `_` or `,` as thousands separators (`2_000_000`, `2,000,000`).
pub(crate) fn parse_count(s: &str) -> Result<u64, String> {
    let cleaned: String = s.chars().filter(|c| *c != '_' && *c != ',').collect();
    cleaned
        .parse::<u64>()
        .map_err(|e| format!("`{s}` is not a whole number: {e}"))
}

/// Like [`parse_count`], but at least 1.
pub(crate) fn parse_positive(s: &str) -> Result<u64, String> {
    match parse_count(s)? {
        0 => Err("must be at least 1".to_owned()),
        n => Ok(n),
    }
}
