//! End-to-end tests: the real `markoff` binary, driven the way systemd, an operator and the future
//! uploader drive it (see `tests/src/lib.rs` for the harness). Build the binary first:
//! `cargo build -p markoff`.
//!
//! Every test has its own temp dir and a free loopback port, waits with `assert_eventually!`
//! instead of sleeping, and kills its daemon when it ends, so the tests run in parallel.

mod e2e {
    mod agent;
    mod alarms;
    mod cli;
    mod conn_limits;
    mod crash;
    mod demo;
    mod disk_budget;
    mod import;
    mod lan;
    mod local_auth;
    mod logs;
    mod reload;
    mod services;
    mod shutdown;
    mod telegram;
    mod validate;
    mod watchdog;

    /// Wall-clock milliseconds since the epoch, the unit of `readings.ts`.
    pub(crate) fn now_ms() -> i64 {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970");
        i64::try_from(since.as_millis()).expect("milliseconds fit in i64")
    }

    /// A duration in milliseconds.
    pub(crate) fn ms(n: u64) -> std::time::Duration {
        std::time::Duration::from_millis(n)
    }

    /// An alarm rule that fires at the first reading of room 101 (a room is always above 0 °C).
    pub(crate) const ROOM_TOO_WARM: &str = r#"
[alarms]
tick = "100ms"

[[alarms.rule]]
alert = "RoomTooWarm"
kind = "high"
sensor = "f1.r101.temperature"
limit = 0.0
severity = "high"
"#;

    /// The number of the open alarm of rule `alert`, once the daemon lists it.
    pub(crate) async fn open_alarm_id(gw: &markoff_tests::TempGateway, alert: &str) -> Option<i64> {
        gw.get_json("/api/v1/alarms")
            .await
            .as_array()
            .and_then(|a| a.iter().find(|x| x["alert"] == alert).cloned())
            .and_then(|x| x["id"].as_i64())
    }
}
