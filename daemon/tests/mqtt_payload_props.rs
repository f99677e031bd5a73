//! Property tests of the MQTT payload decoder: whatever a device or an attacker publishes, the
//! decoder returns readings or an error, never panics, and never yields a non-finite value.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use markoff::sources::mqtt::config::SubscriptionConfig;
use markoff::sources::mqtt::decode::{compile, decode};
use proptest::prelude::*;

fn rules() -> Vec<markoff::sources::mqtt::decode::Rule> {
    [
        "format = \"value\"\ntopic = \"a/+\"\ntopic_parsing = \"_/device\"",
        "format = \"json\"\ntopic = \"a/+\"",
        "format = \"json\"\ntopic = \"a/+\"\nfields = [{ path = \"x.y\" }, { path = \"/z/0\" }]\ntimestamp_path = \"t\"",
        "format = \"json\"\ntopic = \"a/+\"\narray_path = \"r\"\ntimestamp_path = \"t\"\ntimestamp_format = \"rfc3339\"",
        "format = \"zigbee2mqtt\"",
        "format = \"tasmota\"",
        "format = \"shelly_gen2\"",
    ]
    .iter()
    .map(|t| compile(&toml::from_str::<SubscriptionConfig>(t).unwrap()))
    .collect()
}

/// JSON-looking text built from fragments, to reach deep into the JSON paths.
fn jsonish() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("1".to_owned()),
        Just("-1e308".to_owned()),
        Just("1e999".to_owned()),
        Just("\"ON\"".to_owned()),
        Just("true".to_owned()),
        Just("null".to_owned()),
        Just("\"2026-01-01T00:00:00+03:00\"".to_owned()),
        any::<f64>().prop_map(|f| f.to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        "[a-z]{0,4}".prop_map(|s| format!("\"{s}\"")),
    ];
    atom.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-zA-Z:_0-9]{1,6}", inner), 0..6).prop_map(|v| {
                let fields: Vec<String> =
                    v.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(payload in prop::collection::vec(any::<u8>(), 0..512), topic in "[a-z/+#]{0,20}") {
        for rule in rules() {
            if let Ok(readings) = decode(&rule, &topic, &payload) {
                prop_assert!(readings.iter().all(|r| r.value.is_finite()));
            }
        }
    }

    #[test]
    fn json_shaped_payloads_never_panic(payload in jsonish(), device in "[a-z0-9 :]{1,8}") {
        for rule in rules() {
            let topic = if rule.filter.starts_with("tele") { format!("tele/{device}/SENSOR") } else { format!("a/{device}") };
            if let Ok(readings) = decode(&rule, &topic, payload.as_bytes()) {
                prop_assert!(!readings.is_empty());
                prop_assert!(readings.iter().all(|r| r.value.is_finite() && !r.sensor.is_empty()));
            }
        }
    }
}
