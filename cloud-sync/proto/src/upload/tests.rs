use super::*;

fn reading(seq: i64) -> ReadingRow {
    ReadingRow {
        seq,
        sensor_id: 1,
        ts_ms: 1_700_000_000_000,
        value: Some(1.0),
        quality: 0,
    }
}

#[test]
fn order_is_checked() {
    assert!(check_order(Stream::Readings, "gw", [1, 2, 5].into_iter()).is_ok());
    let e = check_order(Stream::Readings, "gw", [1, 3, 3].into_iter()).unwrap_err();
    assert!(matches!(
        e,
        SyncError::Unordered {
            index: 2,
            previous: 3,
            seq: 3,
            ..
        }
    ));
}

#[test]
fn bad_rows_are_rejected_before_sending() {
    let mut r = reading(1);
    r.sensor_id = i64::from(i32::MAX) + 1;
    assert!(validate_readings("gw", &[r]).is_err());
    let mut r = reading(1);
    r.quality = 4;
    assert!(validate_readings("gw", &[r]).is_err());
    let mut r = reading(1);
    r.ts_ms = i64::MAX;
    assert!(validate_readings("gw", &[r]).is_err());
    let mut late = reading(2);
    late.ts_ms += 5;
    assert_eq!(
        validate_readings("gw", &[reading(1), late]).unwrap(),
        Some(1_700_000_000_005)
    );
}
