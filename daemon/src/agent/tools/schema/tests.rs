use super::*;
use crate::agent::llm::check_tool_spec;
use crate::agent::llm::estimate_tokens;
use crate::agent::tools::specs;

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// A small site: three floors, five rooms, two tenants, a few sensors.
fn site() -> Site {
    Site::from_values([
        strings(&["temperature", "humidity", "co2", "leak"]),
        strings(&["temperature", "humidity", "co2", "alarms"]),
        strings(&["1", "2", "3", "B"]),
        strings(&["Acme", "ООО «Ромашка»"]),
        strings(&["101", "102", "201", "301", "boiler room"]),
        strings(&[
            "basement.leak",
            "boiler.supply_temp",
            "f1.r101.temperature",
            "f3.r301.co2",
            "f3.r301.temperature",
        ]),
    ])
}

#[test]
fn every_spec_meets_koboldcpp_constraints_with_and_without_a_site() {
    for site in [Site::default(), site()] {
        for spec in specs(&site) {
            let problems = check_tool_spec(&spec);
            assert!(problems.is_empty(), "{}: {problems:?}", spec.name);
            let text = spec.parameters.to_string();
            for junk in [
                "$schema", "title", "null", "x-site", "format", "$defs", "anyOf",
            ] {
                assert!(!text.contains(junk), "{}: {junk} in {text}", spec.name);
            }
        }
    }
    for t in Tool::ALL {
        assert_eq!(Tool::from_name(t.name()), Some(t));
    }
    assert_eq!(Tool::from_name("shell"), None);
}

#[test]
fn schemas_derived_from_the_structs_keep_their_shape() {
    let h = parameters(Tool::History, None);
    assert_eq!(h["required"], json!(["sensor"]));
    assert_eq!(h["properties"]["range"]["enum"], json!(RANGES));
    assert_eq!(h["properties"]["range"]["type"], "string");
    assert_eq!(h["properties"]["range"]["description"], "how far back");
    assert_eq!(h["properties"]["chart"]["type"], "boolean");
    assert_eq!(
        h["properties"]["aggregation"]["enum"],
        json!(["avg", "min", "max", "last"])
    );
    let a = parameters(Tool::AcknowledgeAlarm, None);
    assert_eq!(a["properties"]["alarm_id"]["type"], "integer");
    assert_eq!(a["required"], json!(["alarm_id"]));
    let none = parameters(Tool::SiteOverview, None);
    assert_eq!(none, json!({"type": "object", "properties": {}}));
    let f = parameters(Tool::FindSensors, None);
    assert_eq!(f["properties"]["kind"]["enum"], json!(KINDS));
    assert_eq!(
        f["properties"]["room"],
        json!({"type": "string", "description": "room or unit id"})
    );
    assert!(f.get("required").is_none());
}

#[test]
fn the_site_fills_the_enumerations() {
    let site = site();
    let c = parameters(Tool::CurrentReadings, Some(&site));
    assert_eq!(
        c["properties"]["room"]["enum"],
        json!(site.values(Vocab::Room))
    );
    assert_eq!(
        c["properties"]["floor"]["enum"],
        json!(["1", "2", "3", "B"])
    );
    assert_eq!(
        c["properties"]["kind"]["enum"],
        json!(["temperature", "humidity", "co2", "leak"])
    );
    assert_eq!(
        c["properties"]["sensor"]["enum"],
        json!(site.values(Vocab::Sensor))
    );
    let t = parameters(Tool::TenantInfo, Some(&site));
    assert_eq!(
        t["properties"]["tenant"]["enum"],
        json!(["Acme", "ООО «Ромашка»"])
    );
    let p = parameters(Tool::FloorPlan, Some(&site));
    assert_eq!(
        p["properties"]["measure"]["enum"],
        json!(["temperature", "humidity", "co2", "alarms"])
    );
    assert_eq!(p["required"], json!(["floor"]));
}

#[test]
fn junk_arguments_get_plain_words_with_the_sites_examples() {
    let site = site();
    let err =
        validate(Tool::CurrentReadings, args(json!({"room": "]["})), &site).expect_err("junk room");
    assert!(err.contains("\"][\" is not a room"), "{err}");
    assert!(
        err.contains("rooms here: 101, 102, 201, 301, boiler room"),
        "{err}"
    );
    assert!(err.contains(r#"for example {"room":"101"}"#), "{err}");
    assert!(
        !err.contains("Some(") && !err.contains("SensorQuery"),
        "{err}"
    );

    let err = validate(Tool::CurrentReadings, args(json!({"room": "999"})), &site)
        .expect_err("unknown room");
    assert!(err.starts_with("there is no room \"999\""), "{err}");
    let err = validate(
        Tool::FindSensors,
        args(json!({"kind": "temprature"})),
        &site,
    )
    .expect_err("typo");
    assert!(err.contains("did you mean temperature?"), "{err}");
    // A schema description copied as the value names nothing.
    let err = validate(
        Tool::FindSensors,
        args(json!({"room": "room or unit id"})),
        &site,
    )
    .expect_err("description as value");
    assert!(err.contains("is not a room"), "{err}");

    // Part of one value is that value; part of several is a question.
    let ok = validate(Tool::History, args(json!({"sensor": "supply"})), &site).expect("valid");
    assert_eq!(ok["sensor"], "boiler.supply_temp");
    let err = validate(Tool::History, args(json!({"sensor": "301"})), &site).expect_err("several");
    assert!(
        err.starts_with(
            "sensor \"301\" could be any of f3.r301.co2, f3.r301.temperature; give one"
        ),
        "{err}"
    );
    // Enumerated values match whatever the case, and come back as the site spells them.
    let ok = validate(Tool::TenantInfo, args(json!({"tenant": "acme"})), &site).expect("valid");
    assert_eq!(ok["tenant"], "Acme");
}

#[test]
fn calls_that_would_list_every_sensor_are_refused() {
    let site = site();
    for tool in [Tool::CurrentReadings, Tool::FindSensors, Tool::TenantInfo] {
        let err = validate(tool, Map::new(), &site).expect_err("no filter");
        assert!(err.starts_with("say which: give "), "{err}");
        assert!(err.contains("for example {"), "{err}");
    }
    let err = validate(Tool::History, args(json!({"range": "1h"})), &site).expect_err("missing");
    assert!(err.starts_with("sensor is required"), "{err}");
    assert!(err.contains(r#"{"sensor":"basement.leak"}"#), "{err}");
}

#[test]
fn validation_coerces_types() {
    let site = site();
    let ok = validate(
        Tool::History,
        args(json!({"sensor": "F3.R301.temperature", "range": "7D", "chart": "true", "extra": 1})),
        &site,
    )
    .expect("valid");
    assert_eq!(ok["sensor"], "f3.r301.temperature");
    assert_eq!(ok["range"], "7d");
    assert_eq!(ok["chart"], true);
    assert!(!ok.contains_key("extra"));
    let ack = validate(
        Tool::AcknowledgeAlarm,
        args(json!({"alarm_id": "#12"})),
        &site,
    )
    .expect("valid");
    assert_eq!(ack["alarm_id"], 12);
    let ack = validate(
        Tool::AcknowledgeAlarm,
        args(json!({"alarm_id": 12.0})),
        &site,
    )
    .expect("valid");
    assert_eq!(ack["alarm_id"], 12);
    let err = validate(
        Tool::AcknowledgeAlarm,
        args(json!({"alarm_id": "twelve"})),
        &site,
    )
    .expect_err("type");
    assert!(err.contains("alarm_id must be a whole number"), "{err}");
    let err = validate(Tool::Alarms, args(json!({"state": "actve"})), &site).expect_err("enum");
    assert!(err.contains("did you mean active?"), "{err}");
    // Empty strings are absent, not errors.
    let ok = validate(
        Tool::Alarms,
        args(json!({"floor": "", "state": null})),
        &site,
    )
    .expect("valid");
    assert!(ok.is_empty());
}

/// The size past which a vocabulary is not enumerated: a site of `n` generated sensors.
fn generated(n: usize) -> Site {
    let ids: Vec<String> = (0..n)
        .map(|i| format!("f{}.r{}{:02}.temperature", i / 50 + 1, i / 50 + 1, i % 50))
        .collect();
    let rooms: Vec<String> = (0..n / 3)
        .map(|i| format!("{}{:02}", i / 50 + 1, i % 50))
        .collect();
    Site::from_values([
        strings(&["temperature", "humidity", "co2"]),
        strings(&["temperature", "humidity", "co2", "alarms"]),
        strings(&["1", "2", "3"]),
        strings(&["Acme"]),
        rooms,
        ids,
    ])
}

#[test]
fn large_sites_fall_back_to_search() {
    let small = generated(45);
    assert!(small.listed(Vocab::Sensor) && small.listed(Vocab::Room));
    let large = generated(300);
    assert!(
        !large.listed(Vocab::Sensor),
        "300 sensor ids are not listed"
    );
    assert!(large.listed(Vocab::Floor) && large.listed(Vocab::Kind));
    let c = parameters(Tool::CurrentReadings, Some(&large));
    assert!(c["properties"]["sensor"].get("enum").is_none());
    assert_eq!(
        c["properties"]["sensor"]["description"],
        "sensor id as find_sensors gives it"
    );
    // A free-text sensor is accepted (the search checks it); junk still is not.
    assert!(validate(Tool::History, args(json!({"sensor": "f9.r999.x"})), &large).is_ok());
    let err =
        validate(Tool::History, args(json!({"sensor": "]["})), &large).expect_err("junk sensor");
    assert!(err.contains("find_sensors searches by words"), "{err}");
    // The whole tool list stays bounded however large the site.
    let tokens = |s: &Site| estimate_tokens(&serde_json::to_string(&specs(s)).unwrap_or_default());
    let bare = tokens(&Site::default());
    for n in [10, 45, 100, 300, 2000] {
        let t = tokens(&generated(n));
        assert!(
            t <= bare + ENUM_TOKEN_BUDGET + 100,
            "{n} sensors: {t} tokens"
        );
    }
}

/// Prints the figures docs/agent.md quotes: `cargo test -p markoff --lib
/// tools::schema::tests::figures -- --nocapture`.
#[test]
fn figures() {
    let tokens = |s: &Site| estimate_tokens(&serde_json::to_string(&specs(s)).unwrap_or_default());
    println!(
        "tool list without a site: {} estimated tokens",
        tokens(&Site::default())
    );
    for n in [10, 30, 45, 60, 100, 300] {
        let s = generated(n);
        println!(
            "{n} sensors: {} estimated tokens, sensor ids listed: {}, rooms listed: {}",
            tokens(&s),
            s.listed(Vocab::Sensor),
            s.listed(Vocab::Room)
        );
    }
    assert!(tokens(&generated(10)) > tokens(&Site::default()));
}

#[test]
fn examples_use_the_sites_values() {
    let site = site();
    let ex: Value = serde_json::from_str(&example(Tool::History, &site)).expect("json");
    assert_eq!(ex["range"], "1h");
    assert_eq!(ex["chart"], false);
    assert_eq!(ex["sensor"], "basement.leak");
    let ex: Value = serde_json::from_str(&example(Tool::AcknowledgeAlarm, &site)).expect("json");
    assert_eq!(ex["alarm_id"], 1);
    let ex: Value = serde_json::from_str(&example(Tool::FloorPlan, &site)).expect("json");
    assert_eq!(ex["floor"], "1");
}
