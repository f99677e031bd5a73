//! SIGHUP reloads the config file: a broken file is rejected and the daemon goes on with the
//! running config; a valid one that changes the simulator takes effect without a restart.

use std::collections::BTreeSet;

use markoff_tests::{TempGateway, assert_eventually};

use super::ms;

async fn sensor_ids(gw: &TempGateway) -> BTreeSet<String> {
    gw.try_get_json("/api/v1/readings")
        .await
        .ok()
        .and_then(|v| {
            v.as_array().map(|rows| {
                rows.iter()
                    .filter_map(|r| r["sensor"].as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn sighup_rejects_a_bad_config_and_applies_a_good_one() {
    let mut gw = TempGateway::builder()
        .id("reload")
        .simulator(1, 2, ms(100))
        .start()
        .await;
    let pid = gw.pid();
    assert_eventually!(
        sensor_ids(&gw).await.len() == 12,
        "1 floor x 2 rooms: 12 sensors"
    );
    assert!(!sensor_ids(&gw).await.iter().any(|s| s.starts_with("f3.")));

    // A broken file: rejected, the daemon keeps running and ingesting with its old config.
    let good = std::fs::read_to_string(gw.config_path()).expect("read the config");
    let broken = good.replacen("[store]\n", "[store]\nflush_interval = \"soon\"\n", 1);
    assert_ne!(broken, good);
    gw.write_config(&broken);
    gw.sighup();
    assert_eventually!(
        gw.log().contains("Config reload rejected"),
        "no rejection in the log:\n{}",
        gw.log()
    );
    assert!(
        gw.log().contains("flush_interval"),
        "the rejection names the bad key:\n{}",
        gw.log()
    );
    assert!(gw.is_running(), "a bad reload killed the daemon");
    assert_eq!(gw.pid(), pid);
    assert_eq!(gw.get("/ready").await.map(|r| r.0).ok(), Some(200));
    let seq = gw.last_seq().await;
    assert_eventually!(
        gw.try_last_seq().await.is_some_and(|s| s > seq + 50),
        "ingest stopped after the rejected reload"
    );
    assert_eq!(sensor_ids(&gw).await.len(), 12);

    // A valid file with more floors: the new sensors appear, from the same process.
    let bigger = gw.builder_config().clone().simulator(3, 2, ms(100));
    gw.write_config_from(bigger);
    gw.sighup();
    assert_eventually!(
        sensor_ids(&gw).await.len() == 3 * 2 * 3 + 6,
        "the reloaded simulator's sensors never appeared: {:?}",
        sensor_ids(&gw).await
    );
    let ids = sensor_ids(&gw).await;
    assert!(
        ids.contains("f3.r302.co2") && ids.contains("f1.r101.temperature"),
        "{ids:?}"
    );
    assert!(gw.log().contains("Config reloaded."), "{}", gw.log());
    assert!(gw.is_running());
    assert_eq!(gw.pid(), pid, "reload must not restart the process");
}

/// How many times the log says a reload restarted exactly `what`.
fn reloads_restarting(gw: &TempGateway, what: &str) -> usize {
    gw.log()
        .matches(&format!("Config reloaded. Restarted: {what}."))
        .count()
}

#[tokio::test]
async fn sighup_restarts_only_the_components_whose_sections_changed() {
    let mut gw = TempGateway::builder()
        .id("reload-diff")
        .simulator(1, 2, ms(100))
        .start()
        .await;
    let pid = gw.pid();
    assert_eventually!(sensor_ids(&gw).await.len() == 12, "simulator sensors");

    // The same file again: nothing restarts, ingest goes on.
    gw.sighup();
    assert_eventually!(
        reloads_restarting(&gw, "nothing") == 1,
        "an unchanged reload restarted something:\n{}",
        gw.log()
    );
    let seq = gw.last_seq().await;
    assert_eventually!(
        gw.try_last_seq().await.is_some_and(|s| s > seq + 20),
        "ingest stopped after an unchanged reload"
    );

    // Only `[alarms]` changes: the alarm engine restarts, the sources keep running.
    let good = std::fs::read_to_string(gw.config_path()).expect("read the config");
    gw.write_config(&format!("{good}\n[alarms]\nflood_threshold = 7\n"));
    gw.sighup();
    assert_eventually!(
        reloads_restarting(&gw, "alarms") == 1,
        "a change of [alarms] alone did not restart only the alarms:\n{}",
        gw.log()
    );

    // Only the simulator changes: the sources restart, nothing else.
    let bigger = gw
        .builder_config()
        .clone()
        .simulator(2, 2, ms(100))
        .extra_toml("[alarms]\nflood_threshold = 7");
    gw.write_config_from(bigger);
    gw.sighup();
    assert_eventually!(
        reloads_restarting(&gw, "sources") == 1,
        "a change of the simulator did not restart the sources:\n{}",
        gw.log()
    );
    assert_eventually!(
        sensor_ids(&gw).await.len() == 2 * 2 * 3 + 6,
        "the reloaded simulator's sensors never appeared"
    );
    assert_eq!(reloads_restarting(&gw, "nothing"), 1);
    assert_eq!(gw.pid(), pid, "reload must not restart the process");
}
