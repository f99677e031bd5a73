//! Table-driven tests of every alarm rule kind against the engine, with time given explicitly
//! (the engine has no clock of its own): on-delay, off-delay, deadband chatter, stale data,
//! comm loss, rate of change, state inputs, acknowledgement, shelving, out-of-service, reminders.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use markoff::alarms::config::AlarmsConfig;
use markoff::alarms::engine::{Command, Engine, EventKind, Output};
use markoff::alarms::rules::{SensorInfo, compile};
use markoff::model::{Actor, AlarmState, Quality, Reading, Role, SensorId, Timestamp};

const T0: i64 = 1_700_000_000_000;

/// (seconds after T0, value) of one sensor.
type Points = &'static [(i64, f64)];
/// (seconds after T0, event) expected.
type Expected = &'static [(i64, EventKind)];

fn engine(rules: &str) -> Engine {
    let cfg: AlarmsConfig = toml::from_str(rules).unwrap();
    let set = compile(&cfg, &[]).unwrap();
    Engine::new(set, Vec::new(), T0)
}

fn sensor(e: &mut Engine, id: &str, kind: &str) {
    e.add_sensor(SensorInfo {
        id: id.into(),
        name: format!("{id} name"),
        kind: kind.into(),
        unit: "°C".into(),
        floor: Some("B".into()),
        room: Some("boiler room".into()),
    });
}

/// Feeds `(seconds after T0, value)` readings of `id`, ticking at every reading, and returns
/// the event kinds with their times (seconds after T0).
fn feed(e: &mut Engine, id: &str, points: &[(i64, Option<f64>, Quality)]) -> Vec<(i64, EventKind)> {
    let mut out = Vec::new();
    for &(t, v, q) in points {
        let ts = T0 + t * 1000;
        let r = Reading {
            sensor: SensorId::new(id),
            ts: Timestamp(ts),
            value: v,
            quality: q,
        };
        e.on_reading(&r, &mut out);
        e.tick(ts, &mut out);
    }
    kinds(&out)
}

fn kinds(out: &[Output]) -> Vec<(i64, EventKind)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(ev) => Some(((ev.ts - T0) / 1000, ev.kind)),
            Output::Reminder { .. } => None,
        })
        .collect()
}

fn good(points: &[(i64, f64)]) -> Vec<(i64, Option<f64>, Quality)> {
    points
        .iter()
        .map(|&(t, v)| (t, Some(v), Quality::Good))
        .collect()
}

fn ticks(e: &mut Engine, from: i64, to: i64) -> Vec<(i64, EventKind)> {
    let mut out = Vec::new();
    for t in from..=to {
        e.tick(T0 + t * 1000, &mut out);
    }
    kinds(&out)
}

fn operator() -> Actor {
    Actor {
        user: "ivan".into(),
        channel: "cli".into(),
        role: Some(Role::Operator),
    }
}

#[test]
fn thresholds_raise_and_clear_in_every_direction() {
    use EventKind::{Cleared, Raised};
    // (kind, limit, values, expected events)
    let cases: &[(&str, f64, Points, Expected)] = &[
        (
            "high",
            85.0,
            &[(0, 80.0), (1, 86.0), (2, 84.0)],
            &[(1, Raised), (2, Cleared)],
        ),
        (
            "high_high",
            95.0,
            &[(0, 94.0), (1, 95.0), (2, 95.5), (3, 90.0)],
            &[(2, Raised), (3, Cleared)],
        ),
        (
            "low",
            5.0,
            &[(0, 6.0), (1, 4.9), (2, 5.1)],
            &[(1, Raised), (2, Cleared)],
        ),
        (
            "low_low",
            1.0,
            &[(0, 2.0), (1, 0.5), (2, 0.9), (3, 3.0)],
            &[(1, Raised), (3, Cleared)],
        ),
    ];
    for (kind, limit, values, expected) in cases {
        let mut e = engine(&format!(
            "[[rule]]\nalert = \"T\"\nkind = \"{kind}\"\nsensor = \"s\"\nlimit = {limit}\n"
        ));
        sensor(&mut e, "s", "temperature");
        assert_eq!(&feed(&mut e, "s", &good(values)), expected, "kind {kind}");
    }
}

#[test]
fn on_delay_needs_the_condition_to_hold_for_its_whole_length() {
    let mut e = engine(
        r#"[[rule]]
        alert = "Hot"
        kind = "high"
        sensor = "s"
        limit = 85.0
        for = "30s""#,
    );
    sensor(&mut e, "s", "temperature");
    // A 20 s excursion raises nothing.
    let events = feed(&mut e, "s", &good(&[(0, 90.0), (20, 90.0), (21, 80.0)]));
    assert!(events.is_empty(), "{events:?}");
    // A held one raises once the delay has passed, even with no new reading (timer).
    let events = feed(&mut e, "s", &good(&[(100, 90.0), (110, 91.0)]));
    assert!(events.is_empty());
    assert_eq!(ticks(&mut e, 111, 140), vec![(130, EventKind::Raised)]);
}

#[test]
fn off_delay_keeps_the_alarm_active_until_it_passes() {
    let mut e = engine(
        r#"[[rule]]
        alert = "Hot"
        kind = "high"
        sensor = "s"
        limit = 85.0
        keep_firing_for = "1m""#,
    );
    sensor(&mut e, "s", "temperature");
    let events = feed(
        &mut e,
        "s",
        &good(&[(0, 90.0), (10, 80.0), (30, 90.0), (40, 80.0)]),
    );
    assert_eq!(
        events,
        vec![(0, EventKind::Raised)],
        "a dip shorter than the off-delay"
    );
    assert_eq!(ticks(&mut e, 41, 120), vec![(100, EventKind::Cleared)]);
}

#[test]
fn deadband_suppresses_chatter_around_the_limit() {
    let chatter: Vec<(i64, f64)> = (0..100)
        .map(|i| (i, if i % 2 == 0 { 85.3 } else { 84.7 }))
        .collect();
    let mut without = engine(
        "[[rule]]\nalert = \"Hot\"\nkind = \"high\"\nsensor = \"s\"\nlimit = 85.0\nack_required = false\n",
    );
    sensor(&mut without, "s", "temperature");
    let noisy = feed(&mut without, "s", &good(&chatter));
    assert_eq!(
        noisy
            .iter()
            .filter(|(_, k)| *k == EventKind::Raised)
            .count(),
        50,
        "without a deadband every crossing is an alarm"
    );
    let mut with = engine(
        "[[rule]]\nalert = \"Hot\"\nkind = \"high\"\nsensor = \"s\"\nlimit = 85.0\ndeadband = 1.0\nack_required = false\n",
    );
    sensor(&mut with, "s", "temperature");
    let mut points = chatter.clone();
    points.push((100, 83.9));
    assert_eq!(
        feed(&mut with, "s", &good(&points)),
        vec![(0, EventKind::Raised), (100, EventKind::Normal)],
        "one alarm, cleared only below limit - deadband"
    );
}

#[test]
fn state_inputs_alarm_on_their_active_value() {
    let mut e = engine(
        r#"[[rule]]
        alert = "Leak"
        kind = "state"
        match = { kind = "leak" }
        severity = "critical"
        [[rule]]
        alert = "PumpStopped"
        kind = "state"
        sensor = "pump.running"
        active_when = false"#,
    );
    sensor(&mut e, "basement.leak", "leak");
    sensor(&mut e, "pump.running", "state");
    assert_eq!(
        feed(
            &mut e,
            "basement.leak",
            &good(&[(0, 0.0), (1, 1.0), (2, 1.0), (3, 0.0)])
        ),
        vec![(1, EventKind::Raised), (3, EventKind::Cleared)]
    );
    assert_eq!(
        feed(&mut e, "pump.running", &good(&[(0, 1.0), (5, 0.0)])),
        vec![(5, EventKind::Raised)]
    );
}

#[test]
fn stale_fires_after_silence_and_clears_on_a_good_reading() {
    let mut e = engine(
        r#"[[rule]]
        alert = "Silent"
        kind = "stale"
        sensor = "s"
        after = "5m""#,
    );
    sensor(&mut e, "s", "temperature");
    assert!(feed(&mut e, "s", &good(&[(0, 20.0)])).is_empty());
    // Bad readings do not count as data.
    let bad = feed(
        &mut e,
        "s",
        &[(100, None, Quality::CommError), (200, None, Quality::Bad)],
    );
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(ticks(&mut e, 201, 320), vec![(301, EventKind::Raised)]);
    assert_eq!(
        feed(&mut e, "s", &good(&[(400, 20.5)])),
        vec![(400, EventKind::Cleared)]
    );
}

#[test]
fn stale_covers_sensors_that_never_reported() {
    let mut e = engine(
        "[[rule]]\nalert = \"Silent\"\nkind = \"stale\"\nmatch = { floor = \"B\" }\nafter = \"1m\"\n",
    );
    sensor(&mut e, "never", "temperature");
    assert_eq!(ticks(&mut e, 0, 70), vec![(61, EventKind::Raised)]);
}

#[test]
fn comm_loss_follows_online_sensors_and_comm_errors() {
    let mut e = engine(
        r#"[[rule]]
        alert = "PlcDown"
        kind = "comm_loss"
        sensor = "plant.online"
        for = "10s"
        [[rule]]
        alert = "NoComm"
        kind = "comm_loss"
        sensor = "meter.power""#,
    );
    sensor(&mut e, "plant.online", "state");
    sensor(&mut e, "meter.power", "energy");
    assert_eq!(
        feed(
            &mut e,
            "plant.online",
            &good(&[(0, 1.0), (5, 0.0), (10, 0.0), (15, 0.0), (20, 1.0)])
        ),
        vec![(15, EventKind::Raised), (20, EventKind::Cleared)]
    );
    assert_eq!(
        feed(
            &mut e,
            "meter.power",
            &[
                (0, Some(3.0), Quality::Good),
                (1, None, Quality::CommError),
                // An exception answer is bad data, but the device talks again.
                (2, None, Quality::Bad),
                (3, Some(3.1), Quality::Good),
            ]
        ),
        vec![(1, EventKind::Raised), (2, EventKind::Cleared)]
    );
}

#[test]
fn rate_of_change_in_each_direction() {
    // limit 2 per minute: 1 unit in 10 s is 6 per minute.
    let cases: &[(&str, Points, Expected)] = &[
        (
            "rise",
            &[(0, 20.0), (10, 21.0), (20, 21.1), (30, 21.2)],
            &[(10, EventKind::Raised), (20, EventKind::Cleared)],
        ),
        ("rise", &[(0, 20.0), (10, 19.0)], &[]),
        (
            "fall",
            &[(0, 20.0), (10, 19.0), (20, 19.0)],
            &[(10, EventKind::Raised), (20, EventKind::Cleared)],
        ),
        (
            "both",
            &[(0, 20.0), (10, 19.0), (20, 20.0)],
            &[(10, EventKind::Raised)],
        ),
    ];
    for (direction, values, expected) in cases {
        let mut e = engine(&format!(
            "[[rule]]\nalert = \"Fast\"\nkind = \"rate\"\nsensor = \"s\"\nlimit = 2.0\ndirection = \"{direction}\"\n"
        ));
        sensor(&mut e, "s", "temperature");
        assert_eq!(
            &feed(&mut e, "s", &good(values)),
            expected,
            "direction {direction}"
        );
    }
}

#[test]
fn isa_lifecycle_with_acknowledgement() {
    let mut e =
        engine("[[rule]]\nalert = \"Hot\"\nkind = \"high\"\nsensor = \"s\"\nlimit = 85.0\n");
    sensor(&mut e, "s", "temperature");
    let id = e.instances()[0].id;
    let state = |e: &Engine| e.instances()[0].state;
    // Raised, acked while active, then cleared: straight to normal.
    feed(&mut e, "s", &good(&[(0, 90.0)]));
    assert_eq!(state(&e), AlarmState::ActiveUnacked);
    let mut out = Vec::new();
    e.command(id, &Command::Ack, &operator(), T0 + 1000, &mut out)
        .unwrap();
    assert_eq!(state(&e), AlarmState::ActiveAcked);
    assert_eq!(
        feed(&mut e, "s", &good(&[(2, 80.0)])),
        vec![(2, EventKind::Normal)]
    );
    assert_eq!(state(&e), AlarmState::Normal);
    // Raised, cleared without ack: cleared-unacked until acknowledged.
    feed(&mut e, "s", &good(&[(3, 90.0), (4, 80.0)]));
    assert_eq!(state(&e), AlarmState::ClearedUnacked);
    e.command(id, &Command::Ack, &operator(), T0 + 5000, &mut out)
        .unwrap();
    assert_eq!(state(&e), AlarmState::Normal);
    // Nothing left to acknowledge.
    assert!(
        e.command(id, &Command::Ack, &operator(), T0 + 6000, &mut out)
            .is_err()
    );
    // A viewer may not.
    feed(&mut e, "s", &good(&[(7, 90.0)]));
    let viewer = Actor {
        role: Some(Role::Viewer),
        ..operator()
    };
    let refusal = e
        .command(id, &Command::Ack, &viewer, T0 + 8000, &mut out)
        .unwrap_err();
    assert!(refusal.to_string().contains("operator role"), "{refusal}");
    assert_eq!(state(&e), AlarmState::ActiveUnacked);
    let stranger = Actor {
        role: None,
        ..operator()
    };
    assert!(
        e.command(id, &Command::Ack, &stranger, T0 + 8000, &mut out)
            .is_err()
    );
}

#[test]
fn shelving_suppresses_notifications_until_it_expires() {
    let mut e = engine(
        "[[rule]]\nalert = \"Hot\"\nkind = \"high\"\nsensor = \"s\"\nlimit = 85.0\nrenotify = \"10s\"\n",
    );
    sensor(&mut e, "s", "temperature");
    let id = e.instances()[0].id;
    let mut out = Vec::new();
    e.command(
        id,
        &Command::Shelve { until: T0 + 60_000 },
        &operator(),
        T0,
        &mut out,
    )
    .unwrap();
    out.clear();
    for t in [1, 30, 59] {
        let r = Reading::good(SensorId::new("s"), Timestamp(T0 + t * 1000), 90.0);
        e.on_reading(&r, &mut out);
        e.tick(T0 + t * 1000, &mut out);
    }
    let notified: Vec<_> = out
        .iter()
        .filter(|o| {
            matches!(o, Output::Event(ev) if ev.notify) || matches!(o, Output::Reminder { .. })
        })
        .collect();
    assert!(
        notified.is_empty(),
        "shelved: recorded but not notified: {out:?}"
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(ev) if ev.kind == EventKind::Raised && !ev.notify)),
        "the transition is still recorded"
    );
    out.clear();
    e.tick(T0 + 60_000, &mut out);
    assert_eq!(kinds(&out), vec![(60, EventKind::Unshelved)]);
    // Reminders resume for the still-unacknowledged alarm.
    out.clear();
    e.tick(T0 + 70_000, &mut out);
    assert!(
        out.iter().any(|o| matches!(o, Output::Reminder { .. })),
        "{out:?}"
    );
}

#[test]
fn out_of_service_stops_evaluation_and_resumes_on_return() {
    let mut e =
        engine("[[rule]]\nalert = \"Hot\"\nkind = \"high\"\nsensor = \"s\"\nlimit = 85.0\n");
    sensor(&mut e, "s", "temperature");
    let id = e.instances()[0].id;
    let mut out = Vec::new();
    e.command(id, &Command::OutOfService(true), &operator(), T0, &mut out)
        .unwrap();
    assert!(feed(&mut e, "s", &good(&[(1, 90.0), (2, 95.0)])).is_empty());
    assert_eq!(e.instances()[0].state, AlarmState::Normal);
    out.clear();
    e.command(
        id,
        &Command::OutOfService(false),
        &operator(),
        T0 + 3000,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        kinds(&out),
        vec![(3, EventKind::InService), (3, EventKind::Raised)],
        "the condition still present raises at once"
    );
}

#[test]
fn reminders_repeat_while_unacknowledged() {
    let mut e = engine(
        "[[rule]]\nalert = \"Hot\"\nkind = \"high\"\nsensor = \"s\"\nlimit = 85.0\nrenotify = \"1m\"\n",
    );
    sensor(&mut e, "s", "temperature");
    let mut out = Vec::new();
    e.on_reading(
        &Reading::good(SensorId::new("s"), Timestamp(T0), 90.0),
        &mut out,
    );
    out.clear();
    for t in 1..=180 {
        e.tick(T0 + t * 1000, &mut out);
    }
    let reminders = out
        .iter()
        .filter(|o| matches!(o, Output::Reminder { .. }))
        .count();
    assert_eq!(reminders, 3);
    let id = e.instances()[0].id;
    e.command(id, &Command::Ack, &operator(), T0 + 181_000, &mut out)
        .unwrap();
    out.clear();
    for t in 182..=400 {
        e.tick(T0 + t * 1000, &mut out);
    }
    assert!(out.is_empty(), "no reminders once acknowledged: {out:?}");
}

#[test]
fn alarms_without_ack_return_to_normal_by_themselves() {
    let mut e = engine(
        "[[rule]]\nalert = \"Hot\"\nkind = \"high\"\nsensor = \"s\"\nlimit = 85.0\nack_required = false\n",
    );
    sensor(&mut e, "s", "temperature");
    assert_eq!(
        feed(&mut e, "s", &good(&[(0, 90.0), (1, 80.0)])),
        vec![(0, EventKind::Raised), (1, EventKind::Normal)]
    );
    assert_eq!(e.instances()[0].state, AlarmState::Normal);
}

#[test]
fn messages_carry_value_unit_and_location() {
    let mut e = engine(
        r#"[[rule]]
        alert = "Hot"
        kind = "high"
        sensor = "s"
        limit = 85.0
        [[rule]]
        alert = "Custom"
        kind = "high"
        sensor = "t"
        limit = 10.0
        message = "{name} at {location}: {value}{unit} over {limit}""#,
    );
    sensor(&mut e, "s", "temperature");
    sensor(&mut e, "t", "temperature");
    let mut out = Vec::new();
    e.on_reading(
        &Reading::good(SensorId::new("s"), Timestamp(T0), 90.5),
        &mut out,
    );
    e.on_reading(
        &Reading::good(SensorId::new("t"), Timestamp(T0), 12.0),
        &mut out,
    );
    let msgs: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Output::Event(ev) => Some(ev.message.clone()),
            Output::Reminder { .. } => None,
        })
        .collect();
    assert_eq!(msgs[0], "s name: 90.5 °C > 85 °C (B / boiler room)");
    assert_eq!(msgs[1], "t name at B / boiler room: 12°C over 10");
}

#[test]
fn alarms_of_a_rule_that_no_longer_selects_their_sensor_are_retired() {
    let mut before = engine(
        "[[rule]]\nalert = \"Hot\"\nkind = \"high\"\nmatch = { sensor = \"room.*\" }\nlimit = 30.0\n",
    );
    sensor(&mut before, "room.1", "temperature");
    feed(&mut before, "room.1", &good(&[(0, 35.0)]));
    let stored: Vec<_> = before.instances().to_vec();
    assert_eq!(stored[0].state, AlarmState::ActiveUnacked);
    // Same name, narrower selector: room.1 is no longer covered.
    let cfg: AlarmsConfig = toml::from_str(
        "[[rule]]\nalert = \"Hot\"\nkind = \"high\"\nmatch = { sensor = \"room.2\" }\nlimit = 30.0\n",
    )
    .unwrap();
    let mut after = Engine::new(compile(&cfg, &[]).unwrap(), stored, T0);
    sensor(&mut after, "room.1", "temperature");
    sensor(&mut after, "room.2", "temperature");
    let old = after
        .instances()
        .iter()
        .find(|i| i.sensor == "room.1")
        .unwrap();
    assert!(old.retired, "no longer evaluated nor listed");
    let id = old.id;
    let mut out = Vec::new();
    assert!(
        after
            .command(id, &Command::Ack, &operator(), T0, &mut out)
            .is_err()
    );
    after.tick(T0 + 1000, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert!(
        !after
            .instances()
            .iter()
            .find(|i| i.sensor == "room.2")
            .unwrap()
            .retired
    );
}

#[test]
fn names_and_places_are_kept_only_for_sensors_with_an_alarm() {
    let cfg: AlarmsConfig = toml::from_str(
        "[[rule]]\nalert = \"Hot\"\nkind = \"high\"\nmatch = { sensor = \"room.1\" }\nlimit = 30.0\n",
    )
    .unwrap();
    let mut e = Engine::new(compile(&cfg, &[]).unwrap(), Vec::new(), T0);
    sensor(&mut e, "room.1", "temperature");
    sensor(&mut e, "room.2", "temperature");
    assert!(e.knows("room.2"), "a sensor no rule covers is still known");
    assert!(
        e.sensor_info("room.2").is_none(),
        "and its metadata is not kept"
    );
    assert_eq!(e.sensor_info("room.1").unwrap().name, "room.1 name");
    // An alarm whose rule no longer covers its sensor keeps its sensor's name for its views.
    feed(&mut e, "room.1", &good(&[(0, 35.0)]));
    let stored: Vec<_> = e.instances().to_vec();
    let narrower: AlarmsConfig = toml::from_str(
        "[[rule]]\nalert = \"Hot\"\nkind = \"high\"\nmatch = { sensor = \"room.2\" }\nlimit = 30.0\n",
    )
    .unwrap();
    let mut after = Engine::new(compile(&narrower, &[]).unwrap(), stored, T0);
    sensor(&mut after, "room.1", "temperature");
    sensor(&mut after, "room.3", "temperature");
    assert!(
        after
            .instances()
            .iter()
            .any(|i| i.sensor == "room.1" && i.retired)
    );
    assert_eq!(after.sensor_info("room.1").unwrap().name, "room.1 name");
    assert!(after.sensor_info("room.3").is_none());
    // A sensor an alarm reading arrives for before its metadata is known.
    let mut out = Vec::new();
    after.on_reading(
        &Reading {
            sensor: SensorId::new("room.4"),
            ts: Timestamp(T0),
            value: Some(20.0),
            quality: Quality::Good,
        },
        &mut out,
    );
    assert!(after.knows("room.4") && after.sensor_info("room.4").is_none());
}

#[test]
fn a_clock_correction_moves_running_delays_and_stale_timers_with_the_timeline() {
    let mut e = engine(
        r#"[[rule]]
        alert = "Hot"
        kind = "high"
        sensor = "s"
        limit = 85.0
        for = "30s"

        [[rule]]
        alert = "Silent"
        kind = "stale"
        sensor = "s"
        after = "5m""#,
    );
    sensor(&mut e, "s", "temperature");
    // The on-delay starts at 0; 10 s later the timeline jumps a day ahead (the clock synchronised).
    assert!(feed(&mut e, "s", &good(&[(0, 90.0), (10, 91.0)])).is_empty());
    let day = 86_400;
    e.shift(day * 1000);
    // Neither the on-delay nor the stale timer ends early: the delay ends 30 s after it began.
    assert_eq!(ticks(&mut e, day + 11, day + 29), vec![]);
    assert_eq!(
        ticks(&mut e, day + 30, day + 31),
        vec![(day + 30, EventKind::Raised)]
    );
    assert_eq!(ticks(&mut e, day + 32, day + 310), vec![]);
    assert_eq!(
        ticks(&mut e, day + 311, day + 312),
        vec![(day + 311, EventKind::Raised)]
    );
}
