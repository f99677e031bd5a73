//! `markoff validate` (and `markoff run` on a bad file): every mistake reported with
//! file:line:col, exit code 78 (EX_CONFIG); valid files exit 0.

use std::path::{Path, PathBuf};

use markoff_tests::{TempGateway, run_markoff};

/// Three different mistakes: a missing required field (`gateway.id`, table on line 2), a bad
/// duration (line 6) and an unknown key (line 7).
const THREE_MISTAKES: &str = "\
# A config with three different mistakes.
[gateway]
name = \"Lenina 17\"

[store]
flush_interval = \"soon\"
retension = \"30d\"
";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a config file");
    path
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// The stderr line that reports `key`, split into (line, col, rest).
fn report_of<'a>(stderr: &'a str, file: &str, key: &str) -> (usize, usize, &'a str) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(file) && l.contains(&format!(": {key}: ")))
        .unwrap_or_else(|| panic!("no report of {key} as {file}:line:col in stderr:\n{stderr}"));
    let rest = &line[file.len()..];
    let mut parts = rest.splitn(4, ':');
    let empty = parts.next();
    assert_eq!(empty, Some(""), "{line}");
    let num = |p: Option<&str>| -> usize {
        p.and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no file:line:col position in {line:?}"))
    };
    let (l, c) = (num(parts.next()), num(parts.next()));
    (l, c, parts.next().unwrap_or_default())
}

#[tokio::test]
async fn validate_reports_three_mistakes_with_positions_and_exits_78() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = write(dir.path(), "bad.toml", THREE_MISTAKES);
    let out = run_markoff(&["validate", "--config", arg(&bad)]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "stderr:\n{stderr}");

    let file = bad.display().to_string();
    let lines: Vec<&str> = THREE_MISTAKES.lines().collect();
    for (key, want_line, what) in [
        ("gateway.id", 2, "missing field"),
        ("store.flush_interval", 6, "duration"),
        ("store.retension", 7, "unknown field"),
    ] {
        let (line, col, message) = report_of(&stderr, &file, key);
        assert_eq!(
            line, want_line,
            "{key} reported on the wrong line:\n{stderr}"
        );
        let text = lines[line - 1];
        assert!(
            col >= 1 && col <= text.chars().count(),
            "{key}: column {col} is outside line {line} {text:?}:\n{stderr}"
        );
        assert!(message.contains(what), "{key}: {message:?} lacks {what:?}");
    }
    assert!(
        stderr.contains("did you mean 'retention'?"),
        "the unknown key gets a suggestion:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("3 error(s) in {file}")),
        "summary line:\n{stderr}"
    );
}

#[tokio::test]
async fn run_refuses_an_invalid_config_before_touching_anything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("markoff.db");
    let text = format!(
        "{THREE_MISTAKES}path = {}\n",
        markoff_tests::gateway::toml_str(&db.display().to_string())
    );
    let bad = write(dir.path(), "bad.toml", &text);
    let out = run_markoff(&["run", "--config", arg(&bad)]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "stderr:\n{stderr}");
    assert!(stderr.contains("3 error(s)"), "stderr:\n{stderr}");
    assert!(!db.exists(), "an invalid config must not create the buffer");
}

#[tokio::test]
async fn valid_configs_exit_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    // What the harness writes for every end-to-end test, with every knob set.
    let harness = TempGateway::builder()
        .max_size("1MiB")
        .maintenance_interval(super::ms(200))
        .busy_timeout(super::ms(300))
        .flush_interval(super::ms(20))
        .shutdown_timeout(super::ms(5_000))
        .stall_timeout(super::ms(1_000))
        .status_interval(super::ms(500))
        .to_toml(&dir.path().join("markoff.db"));
    let good = write(dir.path(), "good.toml", &harness);
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/demo.toml");
    for file in [good, demo] {
        let out = run_markoff(&["validate", "--config", arg(&file)]).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} should be valid; stderr:\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("valid"), "stdout: {stdout}");
    }
    assert!(
        !dir.path().join("markoff.db").exists(),
        "validate must not create the buffer"
    );
}
