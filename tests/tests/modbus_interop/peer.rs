//! The independent peers of the interop tests, as child processes that never outlive a test:
//! the pymodbus scripts of `tests/modbus/` (run by the venv that `tests/modbus/setup.sh` makes)
//! and socat pty pairs (a serial line with real RTU framing, without hardware).
//!
//! A child is killed when its handle drops (`kill_on_drop`), and the pymodbus server also exits
//! by itself when its standard input closes, which covers a test process killed outright.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use markoff_tests::eventually::scaled;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// The command that installs the peers, from the repository root.
pub(crate) const SETUP: &str = "tests/modbus/setup.sh";

/// Overrides the interpreter (default: the venv of `tests/modbus/setup.sh`).
pub(crate) const PYTHON_ENV: &str = "MARKOFF_PYTHON";

/// `tests/modbus/`.
pub(crate) fn modbus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("modbus")
}

/// The Python with pymodbus: `$MARKOFF_PYTHON`, else `tests/modbus/.venv/bin/python`.
pub(crate) fn python() -> PathBuf {
    std::env::var_os(PYTHON_ENV)
        .filter(|p| !p.is_empty())
        .map_or_else(|| modbus_dir().join(".venv/bin/python"), PathBuf::from)
}

/// Whether `cmd` is an existing file, or a bare name found on PATH.
fn runnable(cmd: &Path) -> bool {
    if cmd.components().count() > 1 {
        return cmd.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(cmd).is_file()))
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Whether what `test` needs is installed: the pymodbus venv, and socat when `socat`.
///
/// Missing under `CI=true`: the test fails with the command that fixes it. Missing elsewhere: a
/// loud warning on stderr and `false` (the test returns early). Never a silent skip.
pub(crate) fn available(test: &str, socat: bool) -> bool {
    let mut missing = Vec::new();
    let py = python();
    if !runnable(&py) {
        missing.push(format!("the pymodbus venv ({})", py.display()));
    }
    if socat && !runnable(Path::new("socat")) {
        missing.push("socat".to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test} needs {}: run `{SETUP}` from the repository root (or point {PYTHON_ENV} at a Python with pymodbus)",
        missing.join(" and ")
    );
    assert!(!ci(), "{msg}. CI=true: the Modbus interop tests must run.");
    // Straight to the process's stderr: the test harness captures eprintln! of passing tests.
    let _ignored = writeln!(
        std::io::stderr(),
        "\n!!!!!!!!!! WARNING: {test} DID NOT RUN !!!!!!!!!!\n{msg}\n(under CI=true this fails)\n"
    );
    false
}

/// Runs a script of `tests/modbus/` to completion and returns its standard output.
pub(crate) async fn run_script(script: &str) -> String {
    let py = python();
    let out = Command::new(&py)
        .arg(modbus_dir().join(script))
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {} {script}: {e} (run `{SETUP}`)", py.display()));
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Where a pymodbus server listens.
#[derive(Clone, Debug)]
pub(crate) enum Listen {
    /// Modbus TCP on 127.0.0.1 (`port` 0: any free port).
    Tcp {
        /// Port to bind, 0 for any.
        port: u16,
    },
    /// RTU framing over TCP on 127.0.0.1.
    RtuOverTcp {
        /// Port to bind, 0 for any.
        port: u16,
    },
    /// Modbus RTU on a serial line (a tty).
    Serial(PathBuf),
}

impl Listen {
    /// The arguments of the scripts that say where to listen.
    fn args(&self) -> Vec<OsString> {
        match self {
            Self::Tcp { port } => vec!["--tcp".into(), format!("127.0.0.1:{port}").into()],
            Self::RtuOverTcp { port } => vec![
                "--tcp".into(),
                format!("127.0.0.1:{port}").into(),
                "--rtu".into(),
            ],
            Self::Serial(tty) => vec!["--serial".into(), tty.clone().into()],
        }
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A running script of `tests/modbus/`: the pymodbus `server.py` (its register map is
/// documented there), `map_server.py` or `device_server.py`.
#[derive(Debug)]
pub(crate) struct PyServer {
    child: Child,
    stdin: ChildStdin,
    log: PathBuf,
    /// The TCP port it listens on (0 for a serial server).
    pub(crate) port: u16,
}

impl PyServer {
    /// Starts a server for `units` and waits until it listens. Its stderr goes to a log in `dir`.
    pub(crate) async fn start(dir: &Path, listen: &Listen, units: &[u8], generation: u16) -> Self {
        Self::start_with(dir, listen, units, generation, &[]).await
    }

    /// [`Self::start`] with more arguments for `server.py`.
    pub(crate) async fn start_with(
        dir: &Path,
        listen: &Listen,
        units: &[u8],
        generation: u16,
        more: &[&str],
    ) -> Self {
        let units: Vec<String> = units.iter().map(ToString::to_string).collect();
        let mut args: Vec<OsString> = vec![
            modbus_dir().join("server.py").into(),
            "--exit-on-stdin-eof".into(),
            "--units".into(),
            units.join(",").into(),
            "--generation".into(),
            generation.to_string().into(),
        ];
        args.extend(listen.args());
        args.extend(more.iter().map(Into::into));
        Self::spawn(dir, &format!("pymodbus server ({listen:?})"), &args).await
    }

    /// Starts `tests/modbus/map_server.py` serving the `[[register]]` map of `map` on `listen`.
    pub(crate) async fn map_server(dir: &Path, map: &Path, listen: &Listen) -> Self {
        let mut args: Vec<OsString> = vec![
            modbus_dir().join("map_server.py").into(),
            "--exit-on-stdin-eof".into(),
            "--map".into(),
            map.into(),
        ];
        args.extend(listen.args());
        Self::spawn(dir, &format!("pymodbus map server ({listen:?})"), &args).await
    }

    /// Starts `tests/modbus/device_server.py`: a transparent serial device server (TCP to `tty`).
    pub(crate) async fn device_server(dir: &Path, tty: &Path) -> Self {
        let args: Vec<OsString> = vec![
            modbus_dir().join("device_server.py").into(),
            "--exit-on-stdin-eof".into(),
            "--serial".into(),
            tty.into(),
        ];
        Self::spawn(dir, "serial device server", &args).await
    }

    /// Runs the venv's Python with `args` and waits for the script's `READY` (after an optional
    /// `PORT <n>`). Its stderr goes to a log in `dir`.
    async fn spawn(dir: &Path, what: &str, args: &[OsString]) -> Self {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let log = dir.join(format!("peer-{n}.log"));
        let py = python();
        let mut child = Command::new(&py)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e} (run `{SETUP}`)", py.display()));
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut port = 0;
        let started = tokio::time::timeout(scaled(Duration::from_secs(20)), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(p) = line.strip_prefix("PORT ") {
                    port = p.trim().parse().unwrap_or(0);
                }
                if line.trim() == "READY" {
                    return Ok(true);
                }
            }
            Ok::<_, std::io::Error>(false)
        })
        .await;
        let server = Self {
            child,
            stdin,
            log,
            port,
        };
        assert!(
            matches!(started, Ok(Ok(true))),
            "the {what} did not start ({started:?}):\n{}",
            server.log()
        );
        server
    }

    /// Sends a command of `server.py` (`stop`, `run`, `unplug U`, `plug U`) and waits until
    /// it is in force.
    pub(crate) async fn command(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt as _;
        let done = format!("OK {line}");
        let before = self.log().lines().filter(|l| *l == done).count();
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        let deadline = tokio::time::Instant::now() + scaled(Duration::from_secs(10));
        while self.log().lines().filter(|l| *l == done).count() <= before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server did not take {line:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Its stderr so far (pymodbus's own log), for failure messages.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many exception answers with `code` it sent to `unit` so far.
    pub(crate) fn exceptions(&self, unit: u8, code: u8) -> usize {
        let line = format!("unit={unit} ");
        let code = format!(" code={code}");
        self.log()
            .lines()
            .filter(|l| l.starts_with("EXCEPTION ") && l.contains(&line) && l.ends_with(&code))
            .count()
    }

    /// Kills it (SIGKILL: a power cut, no goodbye on the wire) and waits until it is gone.
    pub(crate) async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// A pair of connected pseudo-terminals made by socat: a serial line whose two ends are `a`
/// and `b`. socat passes bytes through unchanged; baud rates are ignored.
#[derive(Debug)]
pub(crate) struct PtyPair {
    _child: Child,
    /// One end.
    pub(crate) a: PathBuf,
    /// The other end.
    pub(crate) b: PathBuf,
}

impl PtyPair {
    /// Starts `socat -d -d pty,raw,echo=0,link=<dir>/ttyA pty,raw,echo=0,link=<dir>/ttyB` and
    /// waits until both links exist and socat relays.
    pub(crate) async fn open(dir: &Path) -> Self {
        let a = dir.join("ttyA");
        let b = dir.join("ttyB");
        let log = dir.join("socat.log");
        let child = Command::new("socat")
            .arg("-d")
            .arg("-d")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start socat: {e} (run `{SETUP}`)"));
        let deadline = tokio::time::Instant::now() + scaled(Duration::from_secs(10));
        let relaying = || {
            a.exists()
                && b.exists()
                && std::fs::read_to_string(&log)
                    .is_ok_and(|l| l.contains("starting data transfer loop"))
        };
        while !relaying() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "socat made no pty pair in {}:\n{}",
                dir.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self {
            _child: child,
            a,
            b,
        }
    }
}
