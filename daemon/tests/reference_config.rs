//! `config/markoff.toml` is the documented reference of every option: these tests keep it true.
//!
//! - It loads with the real loader, and every value it writes equals the code's default
//!   (apart from the required `gateway.id`, the optional `gateway.name`, and
//!   `sources.simulator.enabled`, which the reference turns off on purpose).
//! - Every key the code accepts is documented in it, and every key it documents (commented
//!   out or not) is one the code accepts. The list of accepted keys is taken from the loader's
//!   own "unknown field" report, so a new option in the code fails this test until it is
//!   documented.
//! - Uncommenting every commented-out option and example table still gives a valid file, and
//!   each commented-out option of a live table is one whose default is "not set" (uncommenting
//!   it changes the configuration).
//! - `config/demo.toml` (built into `markoff demo`) is valid.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use markoff::config::{self, HttpConfig, LogConfig, ServiceConfig, SimulatorConfig, StoreConfig};

/// Tables of the code with a fixed set of keys ("" is the top level).
const STRUCT_TABLES: [&str; 8] = [
    "",
    "gateway",
    "log",
    "store",
    "service",
    "http",
    "sources",
    "sources.simulator",
];

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn reference_path() -> PathBuf {
    repo_file("config/markoff.toml")
}

fn reference_text() -> String {
    std::fs::read_to_string(reference_path()).expect("config/markoff.toml is readable")
}

#[test]
fn reference_config_is_valid() {
    if let Err(e) = config::load_file(&reference_path()) {
        panic!("config/markoff.toml does not load:\n{e}");
    }
}

#[test]
fn reference_values_are_the_code_defaults() {
    let cfg = config::load_file(&reference_path()).expect("valid reference");

    assert_eq!(cfg.gateway.id, "lenina-17");
    assert_eq!(
        cfg.log,
        LogConfig::default(),
        "[log] differs from the code defaults"
    );
    assert_eq!(
        StoreConfig {
            path: None,
            ..cfg.store.clone()
        },
        StoreConfig::default(),
        "[store] differs from the code defaults"
    );
    assert_eq!(
        cfg.store.path, None,
        "[store] path is shown commented out: its default is 'not set'"
    );
    assert_eq!(
        cfg.service,
        ServiceConfig::default(),
        "[service] differs from the code defaults"
    );
    assert_eq!(
        cfg.http,
        HttpConfig::default(),
        "[http] differs from the code defaults"
    );

    let sim = cfg
        .sources
        .simulator
        .clone()
        .expect("the reference documents [sources.simulator]");
    assert!(
        !sim.enabled,
        "the reference keeps the simulator off so that a copied file never simulates"
    );
    assert_eq!(
        SimulatorConfig {
            enabled: true,
            ..sim
        },
        SimulatorConfig::default(),
        "[sources.simulator] differs from the code defaults (apart from enabled)"
    );
}

#[test]
fn every_accepted_key_is_documented_and_every_documented_key_is_accepted() {
    let documented = documented_keys(&reference_text());
    // Every table the reference writes (and the top level) is checked; the top level's own
    // check makes sure no table of the code is left out.
    let sections: Vec<&String> = documented.keys().collect();
    for known in STRUCT_TABLES {
        assert!(
            documented.contains_key(known),
            "config/markoff.toml has no [{known}] table"
        );
    }
    for section in sections {
        let section = section.as_str();
        let Some(accepted) = accepted_keys(section) else {
            // A table keyed by names the user chooses (e.g. one entry per device) accepts any
            // key; its entries are checked as tables of their own.
            assert!(
                !STRUCT_TABLES.contains(&section),
                "no 'unknown field' report for [{section}]; did the loader's message change?"
            );
            continue;
        };
        let written = documented.get(section).cloned().unwrap_or_default();
        let missing: Vec<_> = accepted.difference(&written).collect();
        assert!(
            missing.is_empty(),
            "config/markoff.toml does not document {missing:?} in [{section}]: add each option \
             there with its default value and a comment (commented out as `# key = example` when \
             its default is 'not set'; a table as an example `# [{section}.name]` block of \
             `# key = value` lines when it has no default)"
        );
        let unknown: Vec<_> = written.difference(&accepted).collect();
        assert!(
            unknown.is_empty(),
            "config/markoff.toml documents {unknown:?} in [{section}], which the code does not accept"
        );
    }
}

#[test]
fn commented_out_options_are_valid_and_have_no_default() {
    let text = reference_text();
    let lines: Vec<&str> = text.lines().collect();
    let uncomment = |only: Option<usize>| -> String {
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let selected = only.is_none_or(|o| o == i);
                let commented =
                    commented_option(line).is_some() || commented_header(line).is_some();
                if selected && commented {
                    line.trim_start_matches("# ").to_owned() + "\n"
                } else {
                    (*line).to_owned() + "\n"
                }
            })
            .collect()
    };
    let all = uncomment(None);
    let cfg = config::parse_str(&all, Path::new("config/markoff.toml (uncommented)"))
        .unwrap_or_else(|e| panic!("uncommented reference does not load:\n{e}"));
    assert!(cfg.store.path.is_some());
    assert!(cfg.sources.simulator.and_then(|s| s.seed).is_some());

    // A commented-out option of a table that is not commented out is one whose default is
    // "not set": uncommenting it must change the configuration. One that does not is a default
    // value hidden from `reference_values_are_the_code_defaults`. (Options of a commented-out
    // example table only make sense together, and are checked by the load above.)
    let base = config::load_file(&reference_path()).expect("valid reference");
    let mut in_commented_table = false;
    for (i, line) in lines.iter().enumerate() {
        if commented_header(line).is_some() {
            in_commented_table = true;
        } else if line.trim_start().starts_with('[') {
            in_commented_table = false;
        }
        if in_commented_table || commented_option(line).is_none() {
            continue;
        }
        let one = config::parse_str(&uncomment(Some(i)), Path::new("config/markoff.toml"))
            .unwrap_or_else(|e| panic!("line {}: {line:?} does not load:\n{e}", i + 1));
        assert_ne!(
            one,
            base,
            "line {}: {line:?} is commented out but equals the default: write it uncommented",
            i + 1
        );
    }
}

#[test]
fn demo_config_is_valid() {
    let cfg = config::load_file(&repo_file("config/demo.toml"))
        .unwrap_or_else(|e| panic!("config/demo.toml does not load:\n{e}"));
    assert!(
        cfg.sources.simulator.is_some_and(|s| s.enabled),
        "the demo runs the simulator"
    );
}

/// Keys the code accepts in `section` (dotted; "" is the top level), read from the loader's
/// report of an unknown key: "unknown field '…', expected one of 'a', 'b', …". `None` when the
/// table accepts the probe key (or reports it otherwise), i.e. it is not a fixed set of keys.
fn accepted_keys(section: &str) -> Option<BTreeSet<String>> {
    let probe = "zz_not_an_option_zz";
    let text = match section {
        "" => format!("{probe} = 1\n[gateway]\nid = \"gw\"\n"),
        "gateway" => format!("[gateway]\nid = \"gw\"\n{probe} = 1\n"),
        other => format!("[gateway]\nid = \"gw\"\n[{other}]\n{probe} = 1\n"),
    };
    let errors = config::parse_str(&text, Path::new("probe.toml"))
        .err()?
        .errors;
    let report = errors
        .iter()
        .find(|e| e.message.starts_with(&format!("unknown field '{probe}'")))?;
    let (_, expected) = report.message.split_once("expected")?;
    let keys: BTreeSet<String> = expected
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    (!keys.is_empty()).then_some(keys)
}

/// Keys written in the reference, per section: `key = …` and `# key = …` (a documented option
/// that is not set by default), plus the names of sub-tables that have a header, `[a.b]` or,
/// for an example table that is commented out as a whole, `# [a.b]`.
fn documented_keys(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        let header = commented_header(line)
            .or_else(|| trimmed.strip_prefix('[').and_then(|h| h.strip_suffix(']')));
        if let Some(header) = header {
            section = header.trim().to_owned();
            keys.entry(section.clone()).or_default();
            // A header also documents each of its parents' sub-table names.
            let parts: Vec<&str> = section.split('.').collect();
            for i in 0..parts.len() {
                let parent = parts[..i].join(".");
                keys.entry(parent).or_default().insert(parts[i].to_owned());
            }
            continue;
        }
        let key = commented_option(line).or_else(|| active_option(line));
        if let Some(key) = key {
            keys.entry(section.clone())
                .or_default()
                .insert(key.to_owned());
        }
    }
    keys
}

/// `# [table.name]`: an example table, commented out as a whole.
fn commented_header(line: &str) -> Option<&str> {
    let name = line.strip_prefix("# [")?.strip_suffix(']')?;
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    plain.then_some(name)
}

/// `key = value` at the start of a line.
fn active_option(line: &str) -> Option<&str> {
    if line.starts_with('#') {
        return None;
    }
    option_name(line)
}

/// `# key = value`: exactly one space after the '#' (indented examples in prose do not count).
fn commented_option(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("# ")?;
    if rest.starts_with(' ') {
        return None;
    }
    option_name(rest)
}

fn option_name(s: &str) -> Option<&str> {
    let (name, _) = s.split_once(" = ")?;
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    bare.then_some(name)
}
