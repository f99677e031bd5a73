//! The alarm engine as a service over a real buffer: restarts in every lifecycle state restore
//! the state without a duplicate notification, pending notifications survive a restart and are
//! delivered once the channel accepts them, flood control folds a burst, and refused actions
//! are audited.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use markoff::alarms::Alarms;
use markoff::alarms::config::AlarmsConfig;
use markoff::alarms::outbox::{self, Channel, DeliveryError, DeliveryFuture, DispatchConfig};
use markoff::alarms::service::{AlarmContext, run};
use markoff::config::StoreConfig;
use markoff::model::{
    Actor, AlarmState, Reading, Role, SensorId, SensorKind, SensorMeta, Timestamp,
};
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::store::{Store, StoreOptions};
use rusqlite::Connection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A channel that records what it accepted and can be told to refuse.
#[derive(Debug, Default)]
struct TestChannel {
    accepted: Mutex<Vec<(String, String)>>,
    refuse: Mutex<bool>,
}

impl Channel for TestChannel {
    fn deliver<'a>(&'a self, address: &'a str, text: &'a str) -> DeliveryFuture<'a> {
        Box::pin(async move {
            if *self.refuse.lock().unwrap() {
                return Err(DeliveryError("test channel refuses".into()));
            }
            self.accepted
                .lock()
                .unwrap()
                .push((address.to_owned(), text.to_owned()));
            Ok(())
        })
    }
}

impl TestChannel {
    fn texts(&self) -> Vec<String> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| t.clone())
            .collect()
    }
    fn set_refuse(&self, v: bool) {
        *self.refuse.lock().unwrap() = v;
    }
}

const RULES: &str = r#"
[[rule]]
alert = "BoilerOverheat"
kind = "high"
sensor = "boiler.supply_temp"
limit = 85.0
deadband = 2.0
severity = "critical"

[[rule]]
alert = "Hot"
kind = "high"
match = { sensor = "room.*" }
limit = 30.0
severity = "medium"
"#;

struct Rig {
    store: Store,
    alarms: Alarms,
    token: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

async fn start(path: &Path, channel: Arc<TestChannel>) -> Rig {
    let store_cfg = StoreConfig {
        flush_interval: Duration::from_millis(5),
        ..StoreConfig::default()
    };
    let metrics = Metrics::new();
    let store = Store::open(
        &store_cfg,
        path,
        StoreOptions::default(),
        metrics.clone(),
        Heartbeat::new("test"),
    )
    .unwrap();
    let rules_cfg: AlarmsConfig = toml::from_str(RULES).unwrap();
    let rules = markoff::alarms::rules::compile(&rules_cfg, &[]).unwrap();
    let mut cfg = rules_cfg.clone();
    cfg.tick = Duration::from_millis(20);
    cfg.flood_threshold = 3;
    cfg.retry_min = Duration::from_millis(20);
    cfg.retry_max = Duration::from_millis(100);
    cfg.notify = vec![toml::from_str("channel = \"test\"\nto = \"ops\"\nlang = \"ru\"").unwrap()];
    let alarms = Alarms::new(metrics.get::<markoff::alarms::outbox::AlarmMetrics>());
    let channels = outbox::Channels::default();
    channels.register("test", channel);
    let ctx = AlarmContext {
        ingest: store.ingest.clone(),
        reader: store.reader.clone(),
        store: store.shared.clone(),
        alarms: alarms.clone(),
        start_seq: store.shared.last_seq(),
    };
    store
        .ingest
        .register_sensors(vec![SensorMeta {
            id: SensorId::new("boiler.supply_temp"),
            name: "Boiler supply".into(),
            kind: SensorKind::Temperature,
            unit: "°C".into(),
            floor: Some("B".into()),
            room: Some("boiler room".into()),
            source: "test".into(),
        }])
        .await
        .unwrap();
    let token = CancellationToken::new();
    let engine = tokio::spawn({
        let (ctx, token) = (ctx.clone(), token.clone());
        async move {
            run(cfg, rules, Vec::new(), ctx, token).await.unwrap();
        }
    });
    let dispatch = DispatchConfig {
        flood_threshold: 3,
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(100),
        langs: [("test:ops".to_owned(), markoff::model::Lang::Ru)].into(),
    };
    let dispatcher = tokio::spawn({
        let token = token.clone();
        async move {
            outbox::run_dispatcher(
                dispatch,
                ctx.ingest.clone(),
                ctx.reader.clone(),
                channels,
                ctx.alarms.metrics().clone(),
                ctx.alarms.outbox_wake(),
                token,
            )
            .await
            .unwrap();
        }
    });
    Rig {
        store,
        alarms,
        token,
        tasks: vec![engine, dispatcher],
    }
}

async fn stop(rig: Rig) {
    rig.token.cancel();
    for t in rig.tasks {
        t.await.unwrap();
    }
    rig.store.writer.drain();
    assert!(rig.store.writer.finished().await);
}

async fn reading(rig: &Rig, sensor: &str, value: f64) {
    rig.store
        .ingest
        .write(vec![Reading::good(
            SensorId::new(sensor),
            Timestamp::now(),
            value,
        )])
        .await
        .unwrap();
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn count(path: &Path, sql: &str) -> i64 {
    let c = Connection::open(path).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn operator() -> Actor {
    Actor {
        user: "ivan".into(),
        channel: "cli".into(),
        role: Some(Role::Operator),
    }
}

fn boiler_state(rig: &Rig) -> Option<AlarmState> {
    rig.alarms
        .list(false)
        .into_iter()
        .find(|a| a.alert == "BoilerOverheat")
        .map(|a| a.state)
}

/// Drives the boiler alarm into `target`, restarts, and checks nothing was re-notified.
async fn restart_in(target: AlarmState) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let channel = Arc::new(TestChannel::default());
    let rig = start(&path, channel.clone()).await;
    reading(&rig, "boiler.supply_temp", 70.0).await;
    reading(&rig, "boiler.supply_temp", 92.0).await;
    until("raised", || {
        boiler_state(&rig) == Some(AlarmState::ActiveUnacked)
    })
    .await;
    let id = rig.alarms.list(true)[0].id;
    match target {
        AlarmState::ActiveUnacked => {}
        AlarmState::ActiveAcked => {
            rig.alarms.ack(id, operator()).await.unwrap();
        }
        AlarmState::ClearedUnacked => {
            reading(&rig, "boiler.supply_temp", 80.0).await;
            until("cleared", || boiler_state(&rig) == Some(target)).await;
        }
        AlarmState::Normal => {
            reading(&rig, "boiler.supply_temp", 80.0).await;
            until("cleared", || {
                boiler_state(&rig) == Some(AlarmState::ClearedUnacked)
            })
            .await;
            rig.alarms.ack(id, operator()).await.unwrap();
        }
    }
    assert_eq!(boiler_state(&rig), Some(target));
    let events = count(&path, "SELECT count(*) FROM alarm_events");
    until("every notification delivered", || {
        channel.texts().len() as i64 == events
    })
    .await;
    // Readings committed while the engine is down are evaluated after the restart, by seq:
    // one that keeps the condition as it is changes nothing.
    let keep = if target.is_active() { 90.0 } else { 70.0 };
    stop(rig).await;

    let rig = start(&path, channel.clone()).await;
    reading(&rig, "boiler.supply_temp", keep).await;
    until("state restored", || boiler_state(&rig) == Some(target)).await;
    // The restarted engine (its metrics start at zero) evaluates the new reading.
    until("the new reading evaluated", || {
        rig.alarms.metrics().evaluated.get() >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(boiler_state(&rig), Some(target), "state after restart");
    assert_eq!(
        count(&path, "SELECT count(*) FROM alarm_events"),
        events,
        "a restart records no new event in state {target:?}"
    );
    assert_eq!(
        channel.texts().len() as i64,
        events,
        "a restart notifies nobody again in state {target:?}"
    );
    assert_eq!(
        count(&path, "SELECT count(*) FROM outbox WHERE sent_ms IS NULL"),
        0
    );
    // The lifecycle goes on from the restored state.
    let next = if target.is_active() { 70.0 } else { 95.0 };
    reading(&rig, "boiler.supply_temp", next).await;
    until("next transition", || boiler_state(&rig) != Some(target)).await;
    stop(rig).await;
}

#[tokio::test]
async fn restart_when_active_unacked() {
    restart_in(AlarmState::ActiveUnacked).await;
}

#[tokio::test]
async fn restart_when_active_acked() {
    restart_in(AlarmState::ActiveAcked).await;
}

#[tokio::test]
async fn restart_when_cleared_unacked() {
    restart_in(AlarmState::ClearedUnacked).await;
}

#[tokio::test]
async fn restart_when_back_to_normal() {
    restart_in(AlarmState::Normal).await;
}

#[tokio::test]
async fn pending_notifications_survive_a_restart_and_are_sent_once_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let channel = Arc::new(TestChannel::default());
    channel.set_refuse(true);
    let rig = start(&path, channel.clone()).await;
    reading(&rig, "boiler.supply_temp", 95.0).await;
    until("raised", || {
        boiler_state(&rig) == Some(AlarmState::ActiveUnacked)
    })
    .await;
    until("a refused attempt", || {
        count(
            &path,
            "SELECT count(*) FROM outbox WHERE attempts > 0 AND sent_ms IS NULL",
        ) == 1
    })
    .await;
    stop(rig).await;
    assert!(channel.texts().is_empty());

    channel.set_refuse(false);
    let rig = start(&path, channel.clone()).await;
    until("delivered after restart", || channel.texts().len() == 1).await;
    let text = &channel.texts()[0];
    assert!(
        text.contains("ТРЕВОГА"),
        "in the subscriber's language: {text}"
    );
    assert!(
        text.contains("95 °C > 85 °C"),
        "value, unit and limit: {text}"
    );
    assert!(text.contains("B / boiler room"), "location: {text}");
    assert!(text.contains("/ack"), "how to acknowledge: {text}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(channel.texts().len(), 1, "delivered once");
    stop(rig).await;
}

#[tokio::test]
async fn a_burst_becomes_one_summary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let channel = Arc::new(TestChannel::default());
    channel.set_refuse(true);
    let rig = start(&path, channel.clone()).await;
    let readings: Vec<Reading> = (0..8)
        .map(|i| Reading::good(SensorId::new(format!("room.{i}")), Timestamp::now(), 35.0))
        .collect();
    rig.store.ingest.write(readings).await.unwrap();
    until("eight alarms", || rig.alarms.list(true).len() == 8).await;
    until("rows queued", || {
        count(&path, "SELECT count(*) FROM outbox WHERE kind = 'raised'") == 8
    })
    .await;
    channel.set_refuse(false);
    until("the summary delivered", || !channel.texts().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let texts = channel.texts();
    assert_eq!(texts.len(), 1, "one message for the burst: {texts:?}");
    assert!(texts[0].contains('8'), "{}", texts[0]);
    assert_eq!(
        count(
            &path,
            "SELECT count(*) FROM outbox WHERE kind = 'raised' AND summary_id IS NOT NULL"
        ),
        8
    );
    stop(rig).await;
}

#[tokio::test]
async fn acting_without_the_operator_role_is_refused_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let channel = Arc::new(TestChannel::default());
    let rig = start(&path, channel.clone()).await;
    reading(&rig, "boiler.supply_temp", 95.0).await;
    until("raised", || {
        boiler_state(&rig) == Some(AlarmState::ActiveUnacked)
    })
    .await;
    let id = rig.alarms.list(true)[0].id;
    let viewer = Actor {
        user: "olga".into(),
        channel: "telegram".into(),
        role: Some(Role::Viewer),
    };
    let err = rig.alarms.ack(id, viewer).await.unwrap_err();
    assert!(err.to_string().contains("operator"), "{err}");
    let stranger = Actor {
        user: "telegram:999".into(),
        channel: "telegram".into(),
        role: None,
    };
    assert!(
        rig.alarms
            .shelve(id, Duration::from_secs(600), stranger)
            .await
            .is_err()
    );
    assert_eq!(boiler_state(&rig), Some(AlarmState::ActiveUnacked));
    rig.alarms.ack(id, operator()).await.unwrap();
    assert_eq!(boiler_state(&rig), Some(AlarmState::ActiveAcked));
    stop(rig).await;
    let c = Connection::open(&path).unwrap();
    let rows: Vec<(String, Option<String>, String, String, String)> = c
        .prepare("SELECT actor, role, channel, action, outcome FROM audit_log ORDER BY id")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "olga".into(),
                Some("viewer".into()),
                "telegram".into(),
                "ack".into(),
                "refused".into()
            ),
            (
                "telegram:999".into(),
                None,
                "telegram".into(),
                "shelve".into(),
                "refused".into()
            ),
            (
                "ivan".into(),
                Some("operator".into()),
                "cli".into(),
                "ack".into(),
                "done".into()
            ),
        ]
    );
    let acked_by: String = c
        .query_row(
            "SELECT actor FROM alarm_events WHERE event = 'acked'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(acked_by, "ivan");
}
