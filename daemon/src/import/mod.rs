//! `markoff import`: a way off the tools this field already runs. Reads a Telegraf config
//! (`[[inputs.modbus]]` in its register, request and metric styles, `[[inputs.mqtt_consumer]]`
//! with the json, json_v2 and value parsers) or a ThingsBoard IoT Gateway Modbus connector
//! (`master.slaves[]`), and writes a Markoff config that validates, with a report of every
//! setting that could not be carried over and why, and of every one carried with a change.
//!
//! Owns: the translation, the report, and checking the result with the config loader. Does not
//! own: the config itself (see [`crate::config`]) nor polling.
//!
//! Exactness is the point: byte and word order, scale and offset, unit ids, poll periods,
//! function codes and addresses (both tools count from 0, as Markoff does by default) carry
//! over as they are; where the meaning differs the value is translated and the report says so.

mod emit;
mod node;
mod telegraf;
mod thingsboard;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::ConfigErrors;

/// The sysexits code for input that is not what it should be.
const EX_DATAERR: u8 = 65;
/// The sysexits code for an input file that cannot be read.
const EX_NOINPUT: u8 = 66;
/// The sysexits code for a bug: the importer wrote a config the loader refuses.
const EX_SOFTWARE: u8 = 70;
/// The sysexits code for an output file that cannot be written.
const EX_CANTCREAT: u8 = 73;

/// `markoff import ...`
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Translate a Telegraf config: [[inputs.modbus]] (register, request and metric styles) and
    /// [[inputs.mqtt_consumer]] (json, json_v2 and value data formats).
    Telegraf(ImportArgs),
    /// Translate a ThingsBoard IoT Gateway Modbus connector (modbus.json: master.slaves[] with
    /// timeseries and attributes).
    Thingsboard(ImportArgs),
}

/// Arguments of both importers.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file to translate.
    pub file: PathBuf,
    /// Write the Markoff config here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// [gateway] id of the new config. Default: Telegraf's [agent] hostname, else "change-me".
    #[arg(long)]
    pub gateway_id: Option<String>,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// False: not carried over. True: carried over, with a change worth knowing.
    pub carried: bool,
    /// Where in the input (`inputs.modbus[0].holding_registers[2]`).
    pub place: String,
    /// The setting.
    pub setting: String,
    /// Its value, as written in the input.
    pub value: String,
    /// Why it was not carried, or how it was changed.
    pub why: String,
}

/// The report being built.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notes {
    /// In input order.
    pub items: Vec<Note>,
}

impl Notes {
    /// The settings not carried over.
    pub fn not_carried(&self) -> impl Iterator<Item = &Note> {
        self.items.iter().filter(|n| !n.carried)
    }

    /// The settings carried over with a change.
    pub fn changed_items(&self) -> impl Iterator<Item = &Note> {
        self.items.iter().filter(|n| n.carried)
    }

    /// The report as text lines.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let section = |out: &mut Vec<String>, title: &str, items: Vec<&Note>| {
            if items.is_empty() {
                out.push(format!("{title}: none."));
                return;
            }
            out.push(format!("{title} ({}):", items.len()));
            for n in items {
                out.push(format!(
                    "  {}: {} = {}: {}",
                    n.place, n.setting, n.value, n.why
                ));
            }
        };
        section(&mut out, "Not carried over", self.not_carried().collect());
        section(
            &mut out,
            "Carried over with a change",
            self.changed_items().collect(),
        );
        out
    }
}

/// What an import gives: the config text and the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The Markoff config, report included as comments at its top.
    pub toml: String,
    /// The report.
    pub notes: Notes,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is not TOML / JSON at all.
    #[error("{what} is not valid {format}: {message}")]
    Syntax {
        /// The file.
        what: String,
        /// TOML or JSON.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// Nothing in the input that Markoff could read.
    #[error("nothing to import from {what}: {why}")]
    Empty {
        /// The file.
        what: String,
        /// What was looked for.
        why: String,
        /// What was reported on the way.
        notes: Notes,
    },
    /// The translation does not validate: a bug of the importer.
    #[error("the translated config does not validate (an importer bug; please report it)")]
    Invalid(#[source] ConfigErrors, String),
}

/// Which tool the input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A Telegraf config (TOML).
    Telegraf,
    /// A ThingsBoard IoT Gateway Modbus connector (JSON).
    Thingsboard,
}

/// Translates `text` (named `file` in messages) into a Markoff config.
///
/// # Errors
/// See [`ImportError`].
pub fn translate(
    source: Source,
    text: &str,
    file: &Path,
    gateway_id: Option<&str>,
) -> Result<Imported, ImportError> {
    let what = file.display().to_string();
    let mut notes = Notes::default();
    let (mut doc, tool) = match source {
        Source::Telegraf => (
            telegraf::translate(text, &what, &mut notes)?,
            "Telegraf config",
        ),
        Source::Thingsboard => (
            thingsboard::translate(text, &what, &mut notes)?,
            "ThingsBoard IoT Gateway Modbus connector",
        ),
    };
    if doc.modbus.is_empty() && doc.mqtt.is_empty() {
        return Err(ImportError::Empty {
            what,
            why: match source {
                Source::Telegraf => "no [[inputs.modbus]] or [[inputs.mqtt_consumer]] that could \
                                     be carried over"
                    .to_owned(),
                Source::Thingsboard => "no master.slaves[] that could be carried over".to_owned(),
            },
            notes,
        });
    }
    if let Some(id) = gateway_id {
        id.clone_into(&mut doc.gateway_id);
    }
    if doc.gateway_id.is_empty() {
        "change-me".clone_into(&mut doc.gateway_id);
        notes.changed(
            "(none)".to_owned(),
            "gateway.id",
            &serde_json::Value::String("change-me".to_owned()),
            "the input names no gateway: set [gateway] id (or pass --gateway-id) before the \
             gateway first syncs",
        );
    }
    let mut header = vec![
        format!(
            "Imported from the {tool} {what} by `markoff import` (markoff {}).",
            env!("CARGO_PKG_VERSION")
        ),
        "Check it with `markoff validate --config <this file>`; config/markoff.toml documents \
         every key."
            .to_owned(),
        String::new(),
    ];
    header.extend(notes.lines());
    let toml = doc.to_toml(&header);
    if let Err(e) = crate::config::parse_str(&toml, Path::new("imported.toml")) {
        return Err(ImportError::Invalid(e, toml));
    }
    Ok(Imported { toml, notes })
}

/// Runs `markoff import ...`: the config to standard output (or `--output`), the report to
/// standard error. Exit 0, or 65 (bad input), 66 (unreadable), 70 (importer bug), 73 (output).
pub fn run(cmd: ImportCommand) -> ExitCode {
    let (source, args) = match cmd {
        ImportCommand::Telegraf(a) => (Source::Telegraf, a),
        ImportCommand::Thingsboard(a) => (Source::Thingsboard, a),
    };
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("markoff import: cannot read {}: {e}", args.file.display());
            return ExitCode::from(EX_NOINPUT);
        }
    };
    match translate(source, &text, &args.file, args.gateway_id.as_deref()) {
        Ok(imported) => {
            let mut report = String::new();
            for line in imported.notes.lines() {
                writeln!(report, "{line}").ok();
            }
            eprint!("{report}");
            match &args.output {
                Some(path) => {
                    if let Err(e) = std::fs::write(path, &imported.toml) {
                        eprintln!("markoff import: cannot write {}: {e}", path.display());
                        return ExitCode::from(EX_CANTCREAT);
                    }
                    eprintln!(
                        "Wrote {}; check it with markoff validate --config {}",
                        path.display(),
                        path.display()
                    );
                }
                None => print!("{}", imported.toml),
            }
            ExitCode::SUCCESS
        }
        Err(ImportError::Invalid(errors, toml)) => {
            eprintln!(
                "markoff import: the translated config does not validate (an importer bug; please report it):\n{errors}\n--- the translation ---\n{toml}"
            );
            ExitCode::from(EX_SOFTWARE)
        }
        Err(e) => {
            if let ImportError::Empty { notes, .. } = &e {
                for line in notes.lines() {
                    eprintln!("{line}");
                }
            }
            eprintln!("markoff import: {e}");
            ExitCode::from(EX_DATAERR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telegraf(text: &str) -> Imported {
        translate(Source::Telegraf, text, Path::new("t.conf"), None)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn note<'a>(i: &'a Imported, place: &str) -> &'a Note {
        i.notes
            .items
            .iter()
            .find(|n| n.place == place)
            .unwrap_or_else(|| panic!("no note at {place}: {:#?}", i.notes))
    }

    #[test]
    fn the_report_names_place_setting_value_and_reason() {
        let i = telegraf(
            r#"
[[inputs.modbus]]
  name = "m"
  slave_id = 2
  controller = "tcp://10.0.0.1:502"
  debug_connection = true
  holding_registers = [
    { name = "t", byte_order = "AB", data_type = "FIXED", scale = 0.1, address = [0] },
    { name = "gap", byte_order = "ABCD", data_type = "INT32", scale = 1.0, address = [1, 3] },
  ]
  [inputs.modbus.workarounds]
    read_coils_starting_at_zero = true
    invented = 1
[[inputs.cpu]]
"#,
        );
        let n = note(
            &i,
            "inputs.modbus[0].workarounds.read_coils_starting_at_zero",
        );
        assert!(!n.carried);
        assert_eq!(
            (n.setting.as_str(), n.value.as_str()),
            ("read_coils_starting_at_zero", "true")
        );
        assert!(n.why.starts_with("not supported"), "{n:?}");
        let n = note(&i, "inputs.modbus[0].workarounds.invented");
        assert_eq!(n.why, "not a Telegraf workaround");
        let n = note(&i, "inputs.modbus[0].holding_registers[1].address");
        assert_eq!(n.value, "[1,3]");
        assert!(n.why.contains("consecutive"), "{n:?}");
        assert!(note(&i, "inputs.cpu").why.contains("Modbus and MQTT"));
        assert!(
            note(&i, "inputs.modbus[0].debug_connection")
                .why
                .contains("RUST_LOG")
        );
        assert!(
            i.toml.contains(
                r#"{ name = "t", register = "holding", address = 0, type = "INT16", scale = 0.1 }"#
            ),
            "{}",
            i.toml
        );
        assert!(
            !i.toml.contains("gap"),
            "a field with a broken address list is not imported"
        );
        // The report is at the top of the config too.
        assert!(i.toml.contains(
            "#   inputs.modbus[0].workarounds.invented: invented = 1: not a Telegraf workaround"
        ));
    }

    #[test]
    fn secrets_never_reach_the_config() {
        let i = telegraf(
            r#"
[[inputs.mqtt_consumer]]
  servers = ["tcp://broker:1883", "ws://broker:8080"]
  topics = ["a/#"]
  username = "u"
  password = "hunter2"
  data_format = "value"
  data_type = "float"
"#,
        );
        assert!(!i.toml.contains("hunter2"), "{}", i.toml);
        assert!(!i.notes.lines().join("\n").contains("hunter2"));
        let n = note(&i, "inputs.mqtt_consumer[0].password");
        assert!(n.why.contains("password_file"), "{n:?}");
        assert!(
            note(&i, "inputs.mqtt_consumer[0].servers")
                .value
                .contains("ws://")
        );
        assert!(i.toml.contains("servers = [\"tcp://broker:1883\"]"));
        assert!(
            i.toml.contains("qos = 0"),
            "Telegraf's default QoS is written out"
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for (source, text) in [
            (Source::Telegraf, "[[inputs.modbus]\nname ="),
            (Source::Telegraf, "[agent]\ninterval = \"1s\"\n"),
            (Source::Telegraf, "[[inputs.modbus]]\nname = \"x\"\n"),
            (Source::Thingsboard, "{\"master\": "),
            (Source::Thingsboard, "[1, 2]"),
            (
                Source::Thingsboard,
                "{\"master\": {\"slaves\": [{\"type\": \"udp\"}, 7]}}",
            ),
        ] {
            let r = translate(source, text, Path::new("x"), None);
            assert!(
                matches!(
                    r,
                    Err(ImportError::Syntax { .. } | ImportError::Empty { .. })
                ),
                "{text}: {r:?}"
            );
        }
    }

    #[test]
    fn thingsboard_orders_and_defaults() {
        let text = r#"{"master": {"slaves": [
            {"host": "h", "port": 1502, "unitId": 4, "deviceName": "d",
             "timeseries": [
               {"tag": "a", "type": "32int", "functionCode": 4, "objectsCount": 2, "address": 0},
               {"tag": "b", "type": "32int", "functionCode": 4, "objectsCount": 2, "address": 2,
                "byteOrder": "BIG", "wordOrder": "LITTLE"},
               {"tag": "c", "type": "16int", "functionCode": 3, "address": 5, "divider": 4}
             ]}]}}"#;
        let i = translate(Source::Thingsboard, text, Path::new("m.json"), Some("gw"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(i.toml.contains(r#"{ name = "a", register = "input", address = 0, type = "INT32", byte_order = "DCBA" }"#), "{}", i.toml);
        assert!(i.toml.contains(r#"byte_order = "CDAB""#));
        assert!(i.toml.contains(r#"{ name = "c", register = "holding", address = 5, type = "INT16", byte_order = "DCBA", scale = 0.25 }"#), "{}", i.toml);
        assert!(i.toml.contains("controller = \"tcp://h:1502\""));
        assert!(i.toml.contains("id = \"gw\""));
        assert!(note(&i, "master.slaves[0].pollPeriod").why.contains("10s"));
    }

    #[test]
    fn two_plugins_for_one_unit_become_one_device() {
        let i = telegraf(
            r#"
[[inputs.modbus]]
  name = "meter"
  slave_id = 7
  controller = "file:///dev/ttyUSB1"
  holding_registers = [{ name = "v", byte_order = "AB", data_type = "UINT16", scale = 1.0, address = [0] }]
[[inputs.modbus]]
  name = "meter_inputs"
  slave_id = 7
  controller = "file:///dev/ttyUSB1"
  input_registers = [{ name = "v", byte_order = "AB", data_type = "UINT16", scale = 1.0, address = [0] }]
"#,
        );
        assert_eq!(i.toml.matches("[[sources.modbus.").count(), 1, "{}", i.toml);
        assert!(i.toml.contains(r#"{ name = "meter_inputs_v", register = "input", address = 0, type = "UINT16", description = "v" }"#), "{}", i.toml);
        assert!(
            i.notes.items.iter().any(|n| n.place == "inputs.modbus[1]"
                && n.setting == "slave_id"
                && n.why.contains("same unit")),
            "{:#?}",
            i.notes
        );
    }
}
