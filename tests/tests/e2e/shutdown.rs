//! SIGTERM under systemd's notify protocol: READY, STATUS and periodic WATCHDOG pings while
//! running; STOPPING and exit code 0 within the shutdown deadline; nothing reported as
//! committed is missing afterwards.

use std::time::Duration;

use markoff_tests::{FakeSystemd, TempGateway, assert_eventually, db, describe_exit};

use super::ms;

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn sigterm_exits_0_within_the_deadline_and_keeps_everything_committed() {
    let systemd = FakeSystemd::start(Some(400_000));
    let mut gw = TempGateway::builder()
        .id("sigterm")
        .simulator(3, 4, ms(20))
        .shutdown_timeout(SHUTDOWN_TIMEOUT)
        .status_interval(ms(500))
        .envs(systemd.env())
        .start()
        .await;
    let sensors = gw
        .builder_config()
        .simulator_knobs()
        .expect("a simulator")
        .sensors();

    assert_eventually!(systemd.has("READY=1"), "no READY=1");
    // The first STATUS is sent at start; later ones (every status_interval) count the sensors.
    assert_eventually!(
        systemd
            .with_prefix("STATUS=")
            .iter()
            .any(|s| s.starts_with(&format!("STATUS={sensors} points, "))),
        "no STATUS line with {sensors} points: {:?}",
        systemd.with_prefix("STATUS=")
    );
    // WATCHDOG_USEC=400000: a ping every 200 ms.
    let pings = systemd.count("WATCHDOG=1");
    assert_eventually!(
        systemd.count("WATCHDOG=1") >= pings + 5,
        "watchdog pings are not periodic: {} so far",
        systemd.count("WATCHDOG=1")
    );
    assert!(!systemd.has("STOPPING=1"), "STOPPING=1 before SIGTERM");
    assert_eventually!(
        gw.try_last_seq().await.is_some_and(|s| s > 1_000),
        "no ingest"
    );

    let reported = gw
        .metric_value("markoff_buffer_last_seq")
        .await
        .expect("markoff_buffer_last_seq in /metrics");
    assert!(reported > 0.0);
    gw.sigterm();
    // The deadline is the daemon's promise; one extra second for the process to be reaped.
    let status = gw
        .wait_exit(SHUTDOWN_TIMEOUT + Duration::from_secs(1))
        .await;
    let log = gw.log();
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM was {}; log:\n{log}",
        describe_exit(status)
    );
    assert!(systemd.has("STOPPING=1"), "no STOPPING=1");
    assert!(
        systemd.position("READY=1") < systemd.position("STOPPING=1"),
        "READY=1 must come before STOPPING=1: {:?}",
        systemd.messages()
    );

    let reader = db::open_read_only(&gw.db_path());
    assert_eq!(db::integrity_check(&reader), "ok");
    let (count, min, max) = db::extent(&reader);
    let max = max.expect("rows");
    assert!(
        max as f64 >= reported,
        "the daemon reported seq {reported} committed but the buffer ends at {max}"
    );
    assert_eq!((min, count), (Some(1), max), "seqs are dense from 1");
    // The daemon's own last word on what it flushed matches the file.
    let said = log
        .lines()
        .find(|l| l.contains("Stopped cleanly; buffer flushed."))
        .unwrap_or_else(|| panic!("no clean-stop line in the log:\n{log}"));
    assert!(
        said.contains(&format!("last_seq={max}")),
        "the daemon said {said:?} but the buffer ends at {max}"
    );
}
