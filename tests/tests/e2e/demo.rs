//! `markoff demo --plain`: the simulated building runs through the real pipeline, the plain view
//! shows it within seconds, the data dir keeps the buffer, and its log is plain and free of
//! errors.

use std::process::Stdio;
use std::time::Duration;

use markoff_tests::eventually::scaled;
use markoff_tests::{db, markoff_command};

/// One `[   Ns] X sensors | Y readings/s | buffer R rows, ... | last seq S | ...` line.
#[derive(Debug)]
struct Tick {
    second: u64,
    sensors: u32,
    per_second: f64,
    rows: u64,
}

fn parse_tick(line: &str) -> Option<Tick> {
    let rest = line.strip_prefix('[')?;
    let (second, rest) = rest.split_once("s] ")?;
    let mut fields = rest.split(" | ");
    let sensors = fields.next()?.strip_suffix(" sensors")?.parse().ok()?;
    let per_second = fields.next()?.strip_suffix(" readings/s")?.parse().ok()?;
    let rows = fields
        .next()?
        .strip_prefix("buffer ")?
        .split_once(" rows")?
        .0
        .parse()
        .ok()?;
    Some(Tick {
        second: second.trim().parse().ok()?,
        sensors,
        per_second,
        rows,
    })
}

#[tokio::test]
async fn demo_shows_a_live_building_within_5_seconds_and_keeps_its_buffer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let stdout = std::fs::File::create(dir.path().join("stdout")).expect("stdout file");
    let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
    let mut cmd = markoff_command();
    cmd.args(["demo", "--duration", "6s", "--plain", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .expect("start markoff demo");
    let status = tokio::time::timeout(scaled(Duration::from_secs(30)), child.wait())
        .await
        .expect("the demo stops by itself after --duration")
        .expect("wait for the demo");
    let out = std::fs::read_to_string(dir.path().join("stdout")).expect("read stdout");
    let err = std::fs::read_to_string(dir.path().join("stderr")).expect("read stderr");
    assert_eq!(status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    // `--plain` with stderr in a file: plain text, and a healthy demo has nothing to report at
    // ERROR (its embedded broker included).
    assert!(
        !err.contains('\u{1b}') && !out.contains('\u{1b}'),
        "ANSI escape codes in the plain output:\n{}",
        err.escape_debug()
    );
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "a healthy demo logged errors:\n{err}");
    assert!(
        err.lines().any(|l| l.contains(" INFO ")),
        "the demo's log is not on stderr:\n{err}"
    );

    let ticks: Vec<Tick> = out.lines().filter_map(parse_tick).collect();
    assert!(ticks.len() >= 4, "too few status lines:\n{out}");
    let live = ticks
        .iter()
        .find(|t| t.sensors > 0 && t.rows > 0 && t.per_second > 0.0)
        .unwrap_or_else(|| panic!("no line with sensors, rows and a rate:\n{out}"));
    assert!(
        live.second <= 5,
        "first live line only at {}s:\n{out}",
        live.second
    );

    // The last line reports what was committed; the buffer in the data dir holds exactly that.
    let last = out
        .lines()
        .find_map(|l| l.strip_prefix("markoff demo: stopped; "))
        .unwrap_or_else(|| panic!("no final line:\n{out}"));
    let last_seq: i64 = last
        .rsplit_once("(last seq ")
        .and_then(|(_, n)| n.strip_suffix(").")?.parse().ok())
        .unwrap_or_else(|| panic!("no last seq in {last:?}"));
    let reader = db::open_read_only(&data.join("markoff.db"));
    assert_eq!(db::integrity_check(&reader), "ok");
    let (count, min, max) = db::extent(&reader);
    assert!(count > 0, "the demo's buffer is empty");
    assert_eq!((min, max), (Some(1), Some(last_seq)), "{last}");
    assert_eq!(count, last_seq);
    // The view counted sensors that the buffer really has readings of.
    db::refresh_readings(&reader);
    let in_buffer: u32 = reader
        .query_row("SELECT count(DISTINCT sensor) FROM readings", [], |r| {
            r.get(0)
        })
        .expect("count sensors");
    let shown = ticks.iter().map(|t| t.sensors).max().unwrap_or(0);
    assert!(
        shown > 0 && shown <= in_buffer,
        "the view showed {shown} sensors, the buffer has readings of {in_buffer}:\n{out}"
    );
}
