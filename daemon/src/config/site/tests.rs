use super::*;

fn room(id: &str, floor: Option<&str>, tenant: Option<&str>) -> RoomConfig {
    RoomConfig {
        id: id.into(),
        floor: floor.map(Into::into),
        tenant: tenant.map(Into::into),
        ..RoomConfig::default()
    }
}

fn paths(site: &SiteConfig) -> Vec<String> {
    validate(site).into_iter().map(|e| e.path).collect()
}

#[test]
fn checks_ids_and_references() {
    let site = SiteConfig {
        floor: vec![FloorConfig {
            id: "1".into(),
            level: Some(1),
            ..FloorConfig::default()
        }],
        room: vec![
            room("101", Some("1"), None),
            room("101", Some("2"), Some("acme")),
        ],
        ..SiteConfig::default()
    };
    assert_eq!(
        paths(&site),
        ["site.room.1.id", "site.room.1.floor", "site.room.1.tenant"]
    );
    assert!(validate(&SiteConfig::default()).is_empty());
}

fn geometric_site() -> SiteConfig {
    SiteConfig {
        floor: vec![
            FloorConfig {
                id: "1".into(),
                width: Some(40.0),
                height: Some(20.0),
                ..FloorConfig::default()
            },
            FloorConfig {
                id: "2".into(),
                ..FloorConfig::default()
            },
        ],
        room: vec![RoomConfig {
            polygon: Some(vec![[0.0, 0.0], [10.0, 0.0], [10.0, 8.0], [0.0, 8.0]]),
            ..room("101", Some("1"), None)
        }],
        sensor: vec![SensorPlacementConfig {
            id: "f1.r101.temperature".into(),
            room: Some("101".into()),
            at: Some([5.0, 4.0]),
            ..SensorPlacementConfig::default()
        }],
        ..SiteConfig::default()
    }
}

#[test]
fn accepts_valid_geometry() {
    assert!(
        validate(&geometric_site()).is_empty(),
        "{:?}",
        validate(&geometric_site())
    );
}

#[test]
fn checks_floor_sizes_and_plan_images() {
    let mut site = geometric_site();
    site.floor[1].width = Some(-3.0);
    site.floor[1].plan = Some("plans/2.gif".into());
    assert_eq!(
        paths(&site),
        [
            "site.floor.1.width",
            "site.floor.1.width",
            "site.floor.1.plan",
            "site.floor.1.plan",
            "site.floor.1.plan"
        ]
    );
}

#[test]
fn checks_polygons() {
    let mut site = geometric_site();
    site.room.push(RoomConfig {
        polygon: Some(vec![[0.0, 0.0], [1.0, 1.0]]),
        ..room("102", Some("1"), None)
    });
    site.room.push(RoomConfig {
        polygon: Some(vec![[0.0, 0.0], [50.0, 0.0], [50.0, 5.0]]),
        ..room("103", Some("1"), None)
    });
    site.room.push(RoomConfig {
        polygon: Some(vec![[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]),
        ..room("104", Some("1"), None)
    });
    site.room.push(RoomConfig {
        polygon: Some(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]),
        ..room("201", Some("2"), None)
    });
    site.room.push(RoomConfig {
        polygon: Some(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]),
        ..room("000", None, None)
    });
    let errors = validate(&site);
    let got: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        got,
        [
            "site.room.1.polygon",
            "site.room.2.polygon.1",
            "site.room.3.polygon",
            "site.room.4.polygon",
            "site.room.5.polygon"
        ]
    );
    assert!(
        errors[1].message.contains("outside floor \"1\""),
        "{errors:?}"
    );
    assert!(errors[3].message.contains("no width and height"));
}

#[test]
fn checks_sensor_placements() {
    let mut site = geometric_site();
    let place =
        |floor: Option<&str>, room: Option<&str>, at: Option<[f64; 2]>| SensorPlacementConfig {
            id: format!("s{floor:?}{room:?}{at:?}"),
            floor: floor.map(Into::into),
            room: room.map(Into::into),
            at,
        };
    site.sensor.extend([
        place(Some("9"), None, None),
        place(None, Some("999"), None),
        place(Some("2"), Some("101"), None),
        place(None, None, Some([1.0, 1.0])),
        place(Some("2"), None, Some([1.0, 1.0])),
        place(Some("1"), None, Some([41.0, 1.0])),
        place(None, Some("101"), Some([20.0, 10.0])),
        place(Some("1"), None, Some([20.0, 10.0])),
    ]);
    assert_eq!(
        paths(&site),
        [
            "site.sensor.1.floor",
            "site.sensor.2.room",
            "site.sensor.3.floor",
            "site.sensor.4.at",
            "site.sensor.5.at",
            "site.sensor.6.at",
            "site.sensor.7.at"
        ]
    );
}

#[test]
fn parses_utc_offsets() {
    let secs = |s: &str| UtcOffset::parse(s).map(UtcOffset::seconds);
    assert_eq!(secs("+05:00"), Some(18_000));
    assert_eq!(secs("-03:30"), Some(-12_600));
    assert_eq!(secs("+0530"), Some(19_800));
    assert_eq!(secs("+3"), Some(10_800));
    assert_eq!(secs("UTC+03:00"), Some(10_800));
    assert_eq!(secs("UTC"), Some(0));
    for bad in ["5", "+15:00", "+05:60", "+aa", "", "+05:00:00"] {
        assert_eq!(secs(bad), None, "{bad}");
    }
    assert_eq!(
        UtcOffset::parse("-03:30").map(|o| o.to_string()).as_deref(),
        Some("-03:30")
    );
    let cfg: SiteConfig = toml::from_str("utc_offset = \"+05:00\"\nstale_after = \"5m\"").unwrap();
    assert_eq!(cfg.utc_offset.seconds(), 18_000);
    assert!(toml::from_str::<SiteConfig>("utc_offset = \"moscow\"").is_err());
}
