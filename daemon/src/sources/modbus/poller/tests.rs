use std::time::Duration;

use super::*;
use crate::model::{SensorId, SensorKind};
use crate::sources::modbus::config::RegisterKind;
use crate::sources::modbus::decode::ByteOrder;
use crate::sources::modbus::decode::{DataType, Decoded};

fn point(deadband: Option<f64>) -> Point {
    Point {
        name: "t".into(),
        sensor: SensorId::new("d.t"),
        kind: RegisterKind::Holding,
        address: 0,
        data_type: DataType::Int16,
        byte_order: ByteOrder::Abcd,
        bit: None,
        length: None,
        scale: 0.1,
        offset: 0.0,
        unit: "°C".into(),
        sensor_kind: SensorKind::Temperature,
        nan_value: Some(0x8000),
        min_value: Some(-50.0),
        max_value: Some(150.0),
        deadband,
        max_silence: Duration::from_secs(60),
        description: String::new(),
    }
}

fn num(v: i64) -> Outcome {
    Outcome::Data(Decoded::Number {
        value: v as f64,
        bits: Some((v as u64) & 0xFFFF),
        signed: Some(v),
    })
}

fn value(c: Converted) -> (Option<f64>, Quality) {
    match c {
        Converted::Value(v, q) => (v, q),
        Converted::Text(_) => panic!("text"),
    }
}

#[test]
fn sentinels_failures_and_range_never_become_numbers() {
    let p = point(None);
    assert_eq!(value(convert(&p, num(215))), (Some(21.5), Quality::Good));
    assert_eq!(
        value(convert(&p, num(726))),
        (Some(72.6), Quality::Good),
        "no binary noise from the scale"
    );
    assert_eq!(
        value(convert(&p, num(-32768))),
        (None, Quality::Bad),
        "0x8000 sentinel"
    );
    assert_eq!(
        value(convert(&p, num(2000))),
        (None, Quality::Bad),
        "200 °C is implausible"
    );
    assert_eq!(
        value(convert(&p, Outcome::NoAnswer)),
        (None, Quality::CommError)
    );
    assert_eq!(
        value(convert(
            &p,
            Outcome::Rejected(ExceptionCode::ServerDeviceBusy)
        )),
        (None, Quality::Bad)
    );
}

#[tokio::test(start_paused = true)]
async fn deadband_suppresses_chatter_until_max_silence() {
    let p = point(Some(0.5));
    let mut r = Report::default();
    let t0 = Instant::now();
    assert!(should_store(&mut r, &p, Some(21.0), Quality::Good, t0));
    assert!(!should_store(
        &mut r,
        &p,
        Some(21.3),
        Quality::Good,
        t0 + Duration::from_secs(1)
    ));
    assert!(should_store(
        &mut r,
        &p,
        Some(21.6),
        Quality::Good,
        t0 + Duration::from_secs(2)
    ));
    assert!(!should_store(
        &mut r,
        &p,
        Some(21.6),
        Quality::Good,
        t0 + Duration::from_secs(30)
    ));
    assert!(
        should_store(
            &mut r,
            &p,
            Some(21.6),
            Quality::Good,
            t0 + Duration::from_secs(63)
        ),
        "max silence"
    );
    assert!(
        should_store(
            &mut r,
            &p,
            None,
            Quality::CommError,
            t0 + Duration::from_secs(64)
        ),
        "quality change"
    );
    assert!(
        !should_store(
            &mut r,
            &p,
            None,
            Quality::CommError,
            t0 + Duration::from_secs(70)
        ),
        "repeated failure"
    );
}
