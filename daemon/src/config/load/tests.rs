use super::*;

fn errors(text: &str) -> ConfigErrors {
    parse_str(text, Path::new("test.toml")).unwrap_err()
}

#[test]
fn minimal_config_is_valid() {
    let c = parse_str("[gateway]\nid = \"gw-1\"\n", Path::new("t.toml")).unwrap();
    assert_eq!(c.gateway.id, "gw-1");
    assert_eq!(c.store.flush_rows, super::super::defaults::flush_rows());
}

#[test]
fn reports_three_different_mistakes_with_lines() {
    let text = "\
[gateway]
name = \"Lenina 17\"

[store]
flush_interval = \"fast\"
retension = \"30d\"
";
    let e = errors(text);
    let shown = e.to_string();
    assert_eq!(e.errors.len(), 3, "{shown}");
    let by_path = |p: &str| {
        e.errors
            .iter()
            .find(|x| x.path == p)
            .unwrap_or_else(|| panic!("{p} in {shown}"))
    };
    assert_eq!(by_path("gateway.id").position.unwrap().0, 1);
    assert!(by_path("gateway.id").message.contains("missing field"));
    assert_eq!(by_path("store.flush_interval").position.unwrap().0, 5);
    assert_eq!(by_path("store.retension").position.unwrap().0, 6);
    assert!(
        by_path("store.retension")
            .hint
            .as_deref()
            .unwrap()
            .contains("retention")
    );
    assert!(shown.contains("test.toml:5:"), "{shown}");
}

#[test]
fn invalid_required_value_is_reported_once() {
    let text = "[gateway]\nid = 17\n";
    let e = errors(text);
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_eq!(e.errors[0].path, "gateway.id");
    assert_eq!(e.errors[0].position.unwrap().0, 2);
}

#[test]
fn syntax_errors_have_positions() {
    let e = errors("[gateway]\nid = \"x\n");
    assert!(e.errors[0].message.starts_with("TOML syntax"));
    assert_eq!(e.errors[0].position.unwrap().0, 2);
}

#[test]
fn semantic_errors_are_placed_on_lines() {
    let text = "[gateway]\nid = \"gw\"\n\n[store]\nflush_rows = 0\n";
    let e = errors(text);
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_eq!(e.errors[0].path, "store.flush_rows");
    assert_eq!(e.errors[0].position, Some((5, 1)));
}

#[test]
fn errors_in_nested_tables_and_siblings_are_all_found() {
    let text = "\
[gateway]
id = \"gw\"
[sources.simulator]
floors = \"three\"
intervall = \"1s\"
[http]
listen = \"nowhere\"
";
    let e = errors(text);
    let paths: Vec<&str> = e.errors.iter().map(|x| x.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "sources.simulator.floors",
            "sources.simulator.intervall",
            "http.listen"
        ],
        "{e}"
    );
}

#[test]
fn an_inline_secret_is_rejected_with_a_hint() {
    let e = errors("[gateway]\nid = \"gw\"\npassword = \"hunter2\"\n");
    assert_eq!(e.errors.len(), 1, "{e}");
    assert!(
        e.errors[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("password_env"),
        "{e}"
    );
    assert!(
        !e.to_string().contains("hunter2"),
        "the value is never echoed: {e}"
    );
}

#[test]
fn a_key_missing_in_an_array_of_tables_is_reported_on_its_entry() {
    let e = errors(
        "[gateway]\nid = \"gw\"\n\n[[alarms.rule]]\nalert = \"A\"\nkind = \"state\"\nsensor = \"x\"\n\n[[alarms.rule]]\nkind = \"state\"\nsensor = \"y\"\n",
    );
    assert_eq!(e.errors.len(), 1, "{e}");
    let err = &e.errors[0];
    assert_eq!(err.path, "alarms.rule.1.alert", "{e}");
    assert_eq!(err.position.map(|p| p.0), Some(9), "{e}");
    assert!(
        err.hint
            .as_deref()
            .unwrap()
            .contains("the [[alarms.rule]] entry #2"),
        "{e}"
    );
}

#[test]
fn line_index_counts_characters() {
    let idx = LineIndex::new("ab\nпривет = 1\n");
    assert_eq!(idx.position(0), (1, 1));
    assert_eq!(idx.position(3), (2, 1));
    assert_eq!(idx.position(3 + "привет".len()), (2, 7));
}
