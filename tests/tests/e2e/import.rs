//! `markoff import` as a command: the config on stdout, the report on stderr, and the sysexits
//! codes for bad input (65), a missing file (66) and nothing to import (65).

use markoff_tests::run_markoff;

#[tokio::test]
async fn import_prints_the_config_and_reports_on_stderr_with_sysexits_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("telegraf.conf");
    std::fs::write(
        &file,
        "[[inputs.modbus]]\nname = \"m\"\nslave_id = 1\ncontroller = \"tcp://10.0.0.9:502\"\n\
         coils = [{ name = \"run\", address = [0] }]\n[[outputs.influxdb]]\nurls = []\n",
    )
    .expect("write");
    let path = file.to_str().expect("UTF-8 path");
    let out = run_markoff(&["import", "telegraf", path, "--gateway-id", "site-1"]).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("[sources.modbus.m]") && stdout.contains("id = \"site-1\""),
        "{stdout}"
    );
    assert!(
        stderr.contains("outputs.influxdb"),
        "the report is on stderr: {stderr}"
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{ not json").expect("write");
    let out = run_markoff(&["import", "thingsboard", bad.to_str().expect("UTF-8")]).await;
    assert_eq!(
        out.status.code(),
        Some(65),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing on stdout for bad input");

    let empty = dir.path().join("empty.conf");
    std::fs::write(&empty, "[[inputs.cpu]]\n").expect("write");
    let out = run_markoff(&["import", "telegraf", empty.to_str().expect("UTF-8")]).await;
    assert_eq!(out.status.code(), Some(65));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("inputs.cpu"),
        "the reason is reported"
    );

    let missing = dir.path().join("missing.conf");
    let out = run_markoff(&["import", "telegraf", missing.to_str().expect("UTF-8")]).await;
    assert_eq!(out.status.code(), Some(66));
}
