//! `config/markoff.toml` is the documented reference of every option: these tests keep it true.
//!
//! The file has two kinds of tables:
//! - **live tables** (`[store]`, ...): every value written equals the code's default (apart from the
//!   required `gateway.id`, the optional `gateway.name`, and `sources.simulator.enabled`, which the
//!   reference turns off on purpose); an option whose default is "not set" is commented out as
//!   `# key = example`, and uncommenting it must change the configuration;
//! - **example tables**, commented out as a whole (`# [sources.modbus.boiler_room]`, `# [[...]]`)
//!   because nothing of them exists by default. Uncommented, they must load. In them, an option
//!   marked `# required` must be given, one marked `# not set` is unset by default (the value
//!   shown is an example), and every other value must be the default: removing its line must not
//!   change the configuration.
//!
//! Every key the code accepts appears in its table (as an option, or named in a comment, as the
//! synonyms are), and every option written is one the code accepts. The accepted keys come from
//! the loader's own "unknown field" report, so a new option in the code fails this test until it
//! is documented. `config/demo.toml` (built into `markoff demo`) must be valid too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use markoff::alarms::AlarmsConfig;
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
    assert_eq!(
        cfg.alarms,
        AlarmsConfig::default(),
        "[alarms] differs from the code defaults (or a rule or recipient is not commented out)"
    );
    assert_eq!(
        cfg.agent,
        markoff::agent::AgentConfig::default(),
        "[agent] or [agent.llm] differs from the code defaults"
    );
    assert_eq!(
        cfg.telegram,
        markoff::channels::telegram::TelegramConfig::default(),
        "[telegram] differs from the code defaults"
    );
    assert!(
        cfg.users.is_empty(),
        "the reference has no users: [[users]] is an example, commented out"
    );
}

#[test]
fn every_accepted_key_is_documented_and_every_documented_key_is_accepted() {
    let doc = Reference::parse(&reference_text());
    for known in STRUCT_TABLES {
        assert!(
            doc.tables.contains_key(known),
            "config/markoff.toml has no [{known}] table"
        );
    }
    for (section, table) in &doc.tables {
        let Some(accepted) = accepted_keys(section, &doc) else {
            // A table keyed by names the user chooses (one entry per connection, say) accepts
            // any key; its entries are checked as tables of their own.
            assert!(
                !STRUCT_TABLES.contains(&section.as_str()),
                "no 'unknown field' report for [{section}]; did the loader's message change?"
            );
            continue;
        };
        let missing: Vec<_> = accepted
            .iter()
            .filter(|k| !table.options.contains(*k) && !table.words.contains(*k))
            .collect();
        assert!(
            missing.is_empty(),
            "config/markoff.toml does not document {missing:?} in [{section}]: add each option \
             there with its default value and a comment (commented out as `# key = example` when \
             its default is 'not set'; in a commented-out example table, mark it `# required` or \
             `# not set`); name synonyms in the comment"
        );
        let unknown: Vec<_> = table.options.difference(&accepted).collect();
        assert!(
            unknown.is_empty(),
            "config/markoff.toml documents {unknown:?} in [{section}], which the code does not accept"
        );
    }
}

#[test]
fn commented_out_options_of_live_tables_are_valid_and_have_no_default() {
    let text = reference_text();
    let doc = Reference::parse(&text);
    let all = doc.uncommented(None);
    let cfg = config::parse_str(&all, Path::new("config/markoff.toml (uncommented)"))
        .unwrap_or_else(|e| panic!("uncommented reference does not load:\n{e}"));
    assert!(cfg.store.path.is_some());
    assert!(cfg.sources.simulator.and_then(|s| s.seed).is_some());

    // A commented-out option of a live table is one whose default is "not set": uncommenting it
    // must change the configuration. One that does not is a default value hidden from
    // `reference_values_are_the_code_defaults`.
    let base = config::load_file(&reference_path()).expect("valid reference");
    for line in doc
        .lines
        .iter()
        .filter(|l| l.commented_option && !l.in_example)
    {
        let one = config::parse_str(&doc.uncommented(Some(line.index)), Path::new("reference"))
            .unwrap_or_else(|e| {
                panic!(
                    "line {}: {:?} does not load:\n{e}",
                    line.number(),
                    line.text
                )
            });
        assert_ne!(
            one,
            base,
            "line {}: {:?} is commented out but equals the default: write it uncommented",
            line.number(),
            line.text
        );
    }
}

#[test]
fn example_tables_show_defaults_and_mark_the_rest() {
    let doc = Reference::parse(&reference_text());
    let all = doc.uncommented(None);
    let base = config::parse_str(&all, Path::new("config/markoff.toml (uncommented)"))
        .unwrap_or_else(|e| panic!("uncommented reference does not load:\n{e}"));
    for line in doc
        .lines
        .iter()
        .filter(|l| l.commented_option && l.in_example)
    {
        let without: String = all
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != line.index)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        let result = config::parse_str(&without, Path::new("reference"));
        let n = line.number();
        let text = &line.text;
        if text.contains("# required") {
            assert!(
                result.is_err(),
                "line {n}: {text:?} is marked required, but the file loads without it"
            );
        } else if text.contains("# not set") {
            assert!(
                !result.as_ref().is_ok_and(|c| *c == base),
                "line {n}: {text:?} is marked 'not set', but its value is the default"
            );
        } else {
            match result {
                Ok(c) => assert!(
                    c == base,
                    "line {n}: {text:?} is not the default; mark it `# not set` or fix the value"
                ),
                Err(e) => {
                    panic!("line {n}: {text:?} cannot be left out; mark it `# required`:\n{e}")
                }
            }
        }
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
/// table accepts the probe key (or reports it otherwise): it is not a fixed set of keys.
fn accepted_keys(section: &str, doc: &Reference) -> Option<BTreeSet<String>> {
    let probe = "zz_not_an_option_zz";
    let mut text = String::new();
    if section.is_empty() {
        text.push_str(&format!("{probe} = 1\n"));
    }
    text.push_str("[gateway]\nid = \"gw\"\n");
    if !section.is_empty() && section != "gateway" {
        // Arrays of tables on the way down must exist as arrays, or the probe is a type error.
        let parts: Vec<&str> = section.split('.').collect();
        for i in 1..parts.len() {
            let parent = parts[..i].join(".");
            if doc.tables.get(&parent).is_some_and(|t| t.array) {
                text.push_str(&format!("[[{parent}]]\n"));
            }
        }
        if doc.tables.get(section).is_some_and(|t| t.array) {
            text.push_str(&format!("[[{section}]]\n"));
        } else {
            text.push_str(&format!("[{section}]\n"));
        }
    }
    if !section.is_empty() {
        text.push_str(&format!("{probe} = 1\n"));
    }
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

/// What the reference file says, line by line and table by table.
#[derive(Debug)]
struct Reference {
    lines: Vec<Line>,
    tables: BTreeMap<String, Table>,
}

#[derive(Debug)]
struct Line {
    /// 0-based.
    index: usize,
    text: String,
    /// `# key = value` or `# [table]` / `# [[table]]`.
    commented_option: bool,
    commented_header: bool,
    /// Inside a table that is commented out as a whole.
    in_example: bool,
}

impl Line {
    fn number(&self) -> usize {
        self.index + 1
    }
}

#[derive(Debug, Default)]
struct Table {
    /// Written as `[[name]]`.
    array: bool,
    /// Options written as `key = …` or `# key = …`, and sub-tables with a header.
    options: BTreeSet<String>,
    /// Every word of the table's lines, comments included (for synonyms named in prose).
    words: BTreeSet<String>,
}

impl Reference {
    fn parse(text: &str) -> Self {
        let mut tables: BTreeMap<String, Table> = BTreeMap::new();
        tables.entry(String::new()).or_default();
        let mut lines = Vec::new();
        let mut section = String::new();
        let mut in_example = false;
        for (index, raw) in text.lines().enumerate() {
            let commented_header = header(raw.strip_prefix("# ").unwrap_or("#"));
            let live_header = header(raw.trim());
            if let Some((name, array)) = commented_header.or(live_header) {
                in_example = commented_header.is_some();
                section = name.to_owned();
                let table = tables.entry(section.clone()).or_default();
                table.array |= array;
                // A header documents each of its parents' sub-table names.
                let parts: Vec<&str> = section.split('.').collect();
                for i in 0..parts.len() {
                    let parent = tables.entry(parts[..i].join(".")).or_default();
                    parent.options.insert(parts[i].to_owned());
                }
            } else {
                let table = tables.entry(section.clone()).or_default();
                table.words.extend(
                    raw.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .filter(|w| !w.is_empty())
                        .map(str::to_owned),
                );
                if let Some(key) = commented_option(raw).or_else(|| active_option(raw)) {
                    table.options.insert(key.to_owned());
                }
            }
            lines.push(Line {
                index,
                text: raw.to_owned(),
                commented_option: commented_option(raw).is_some(),
                commented_header: commented_header.is_some(),
                in_example,
            });
        }
        Self { lines, tables }
    }

    /// The text with every commented-out option and header uncommented, or only line `only`.
    fn uncommented(&self, only: Option<usize>) -> String {
        self.lines
            .iter()
            .map(|l| {
                let selected = only.is_none_or(|o| o == l.index);
                let example_header = only.is_none() && l.commented_header;
                if selected && (l.commented_option || example_header) {
                    format!("{}\n", &l.text[2..])
                } else {
                    format!("{}\n", l.text)
                }
            })
            .collect()
    }
}

/// `[a.b]` or `[[a.b]]` (the whole text), as (name, is an array of tables).
fn header(text: &str) -> Option<(&str, bool)> {
    let (inner, array) = match text.strip_prefix("[[") {
        Some(rest) => (rest.strip_suffix("]]")?, true),
        None => (text.strip_prefix('[')?.strip_suffix(']')?, false),
    };
    let plain = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    plain.then_some((inner, array))
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
