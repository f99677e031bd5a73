//! The daemon's own log lines: with `[log] format = "json"` every line is one JSON object a log
//! shipper can read, with the level, the target, the message and the fields of the event; as text
//! on a stderr that is a file (`markoff run 2>file`), plain lines without ANSI colour codes.

use std::time::Duration;

use markoff_tests::TempGateway;
use serde_json::Value;

#[tokio::test]
async fn json_log_format_writes_one_object_per_line() {
    let mut gw = TempGateway::builder().log_json().start().await;
    gw.sigterm();
    let status = gw.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status}; log:\n{}", gw.log());
    let log = gw.log();
    let events: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect();
    assert!(events.len() >= 2, "too few lines:\n{log}");
    for e in &events {
        for key in ["timestamp", "level", "target"] {
            assert!(e[key].is_string(), "no {key} in {e}");
        }
        assert!(e["fields"]["message"].is_string(), "no message in {e}");
    }
    // A lifecycle event with its structured fields, as journald would have had them.
    assert!(
        events.iter().any(|e| e["level"] == "INFO"
            && e["fields"]["message"] == "Gateway ready."
            && e["fields"]["gateway"] == "e2e-gateway"),
        "no 'Gateway ready.' event with its gateway field:\n{log}"
    );
}

#[tokio::test]
async fn text_log_to_a_file_has_no_colour_codes() {
    // The harness runs `markoff run` with stderr appended to a file, as `2>file` does.
    let mut gw = TempGateway::builder().start().await;
    gw.sigterm();
    let status = gw.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status}; log:\n{}", gw.log());
    let log = gw.log();
    assert!(
        log.lines()
            .any(|l| l.contains(" INFO ") && l.contains("Gateway ready.")),
        "no plain INFO line for 'Gateway ready.':\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a log written to a file:\n{}",
        log.escape_debug()
    );
}
