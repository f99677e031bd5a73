//! Writes a small gateway buffer with the store as it is, for the upgrade-in-place test.
//! Usage: cargo run -p markoff-tests --example make_buffer_fixture -- OUT_DIR
use std::time::Duration;

use markoff::config::StoreConfig;
use markoff::model::{Quality, Reading, SensorId, SensorKind, SensorMeta, Timestamp};
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::store::{Store, StoreOptions};

const T0: i64 = 1_764_547_200_000 + 365 * 86_400_000; // 2026-12-01T00:00:00Z

fn meta(id: &str, kind: SensorKind, unit: &str, floor: Option<&str>) -> SensorMeta {
    SensorMeta {
        id: SensorId::new(id),
        name: format!("{id} name"),
        kind,
        unit: unit.into(),
        floor: floor.map(Into::into),
        room: floor.map(|f| format!("{f}01")),
        source: "modbus:plant".into(),
    }
}

fn r(sensor: &str, ts: i64, value: Option<f64>, quality: Quality) -> Reading {
    Reading { sensor: SensorId::new(sensor), ts: Timestamp(ts), value, quality }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let out = std::path::PathBuf::from(std::env::args().nth(1).expect("OUT_DIR"));
    std::fs::create_dir_all(&out).unwrap();
    let path = out.join("markoff.db");
    let cfg = StoreConfig { flush_interval: Duration::from_millis(5), ..StoreConfig::default() };
    let store = Store::open(&cfg, &path, StoreOptions { uplink: true }, Metrics::new(), Heartbeat::new("fixture")).unwrap();
    let ingest = store.ingest.clone();
    ingest
        .register_sensors(vec![
            meta("b1.f1.r101.temperature", SensorKind::Temperature, "°C", Some("1")),
            meta("b1.f1.r101.humidity", SensorKind::Humidity, "%", Some("1")),
            meta("b1.f1.r101.co2", SensorKind::Co2, "ppm", Some("1")),
            meta("b1.boiler.pressure", SensorKind::Pressure, "bar", None),
            meta("b1.meter.energy", SensorKind::Energy, "kWh", None),
            meta("b1.pump.running", SensorKind::State, "", None),
            meta("b1.f2.leak", SensorKind::Leak, "", Some("2")),
        ])
        .await
        .unwrap();
    // Readings 40 days older than the rest: synced below, then removed by retention at the drain.
    for cycle in 0..20_i64 {
        let ts = T0 - 40 * 86_400_000 + cycle * 60_000;
        ingest
            .write(vec![
                r("b1.f1.r101.temperature", ts, Some(20.0 + cycle as f64 / 100.0), Quality::Good),
                r("b1.meter.energy", ts, Some(150_000.0 + cycle as f64), Quality::Good),
            ])
            .await
            .unwrap();
    }
    // 300 poll cycles of 10 s: temperatures with a slow wave and noise at 0.01, humidity at 0.1,
    // CO2 integers, a pressure with 3 decimals, a counter, a boolean state, a leak detector.
    let mut energy = 152_340.5_f64;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for cycle in 0..300_i64 {
        let ts = T0 + cycle * 10_000 + (rand() % 7) as i64;
        let noise = (rand() % 21) as f64 - 10.0;
        let temp = ((21.5 + 1.5 * (cycle as f64 / 50.0).sin()) * 100.0 + noise).round() / 100.0;
        energy += (rand() % 40) as f64 / 10.0;
        let mut batch = vec![
            r("b1.f1.r101.temperature", ts, Some(temp), Quality::Good),
            r("b1.f1.r101.humidity", ts + 1, Some(((45.0 + noise / 3.0) * 10.0).round() / 10.0), Quality::Good),
            r("b1.f1.r101.co2", ts + 2, Some((600 + (rand() % 50)) as f64), Quality::Good),
            r("b1.boiler.pressure", ts + 3, Some(1.5 + (rand() % 100) as f64 / 1000.0), Quality::Good),
            r("b1.meter.energy", ts + 4, Some(energy), Quality::Good),
            r("b1.pump.running", ts + 5, Some(if (cycle / 37) % 2 == 0 { 1.0 } else { 0.0 }), Quality::Good),
            r("b1.f2.leak", ts + 6, Some(0.0), Quality::Good),
        ];
        match cycle % 50 {
            7 => batch[2] = r("b1.f1.r101.co2", ts + 2, None, Quality::CommError),
            19 => batch[3] = r("b1.boiler.pressure", ts + 3, Some(-1.0), Quality::Bad),
            23 => batch[0] = r("b1.f1.r101.temperature", ts, Some(temp), Quality::Stale),
            31 => batch[1] = r("b1.f1.r101.humidity", ts + 1, Some(f64::NAN), Quality::Good),
            _ => {}
        }
        if cycle % 3 == 0 {
            ingest.write(batch).await.unwrap();
        } else {
            ingest.submit(batch).await.unwrap();
        }
    }
    // MQTT-like readings of sensors never registered: some late (older timestamps), extreme
    // magnitudes, a signed zero, subnormal and huge values, two readings with the same timestamp.
    let late = vec![
        r("mqtt.lab.t1", T0 + 3_000_000, Some(19.25), Quality::Good),
        r("mqtt.lab.t1", T0 + 1_000_000, Some(19.5), Quality::Good),
        r("mqtt.lab.t1", T0 + 2_000_000, Some(-0.0), Quality::Good),
        r("mqtt.lab.t1", T0 + 2_000_000, Some(0.0), Quality::Good),
        r("mqtt.lab.v", T0 + 2_000_000, Some(1.0e300), Quality::Good),
        r("mqtt.lab.v", T0 + 2_000_001, Some(-5.0e-324), Quality::Good),
        r("mqtt.lab.v", T0 + 2_000_002, Some(0.1 + 0.2), Quality::Good),
        r("mqtt.lab.v", T0 + 2_000_003, Some(f64::INFINITY), Quality::Good),
        r("mqtt.lab.v", T0 + 2_000_004, Some(123_456_789.123_456_78), Quality::Good),
        r("mqtt.lab.v", T0 - 86_400_000, None, Quality::Stale),
    ];
    ingest.write(late).await.unwrap();
    let last = store.shared.last_seq();
    // The centre confirmed readings up to two thirds of the way.
    let synced = last * 2 / 3;
    ingest
        .transact(move |tx| {
            tx.execute(
                "INSERT INTO sync_cursor (stream, last_seq, updated_ms) VALUES ('readings', ?1, ?2) \
                 ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq",
                rusqlite::params![synced, T0 + 3_000_000],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    ingest.set_state("modbus/holes/plant/1", "[[100,4]]").await.unwrap();
    ingest.set_attribute("b1.meter.serial", "SN-0042", Timestamp(T0)).await.unwrap();
    store.writer.drain();
    assert!(store.writer.finished().await);
    println!("last seq {last}, synced {synced}");
}
