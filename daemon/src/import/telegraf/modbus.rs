//! `[[inputs.modbus]]`: the connection, its workarounds, and the devices of whichever
//! configuration style it uses (register, request or metric).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::super::Notes;
use super::super::emit::{Connection, Device, Doc, clean_name, unique};
use super::super::node::Node;
use super::fields::{self, Field, byte_order, register_kind};
use super::{Names, placement, string};
use crate::sources::modbus::config::RegisterKind;
use crate::sources::modbus::decode::ByteOrder;

/// How Telegraf groups the reads of one request, as a Markoff optimisation, ordered from the
/// fewest registers read to the most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Grouping {
    /// `one_request_per_field`.
    PerField,
    /// Telegraf's `none`, `shrink`, `rearrange`, and the register style.
    Contiguous,
    /// `max_insert` with its fill.
    MaxInsert(u16),
    /// `aggressive`.
    Aggressive,
}

/// What one slave of a plugin gets: its fields, the groupings of its requests and its place.
#[derive(Debug, Default)]
struct Slave {
    fields: Vec<Field>,
    groupings: Vec<Grouping>,
    floor: Option<String>,
    room: Option<String>,
}

/// Translates one `[[inputs.modbus]]`.
pub(super) fn translate(
    plugin: &Node<'_>,
    index: usize,
    agent_interval: Duration,
    doc: &mut Doc,
    names: &mut Names,
    notes: &mut Notes,
) {
    let base_name = plugin
        .str("name", notes)
        .map_or_else(|| format!("modbus_{index}"), |n| clean_name(n, "device"));
    let Some(mut conn) = connection(plugin, notes) else {
        plugin.finish(notes, "part of a plugin that could not be carried over");
        return;
    };
    let interval = plugin
        .go_duration("interval", notes)
        .unwrap_or(agent_interval);
    let mut per_field = false;
    let mut limits = (None, None);
    workarounds(plugin, &mut conn, &mut per_field, &mut limits, notes);
    if let Some(w) = plugin.table("workarounds") {
        workarounds(&w, &mut conn, &mut per_field, &mut limits, notes);
        w.finish(notes, "not a Telegraf workaround");
    }
    if let Some(rs485) = plugin.table("rs485") {
        rs485.finish(
            notes,
            "RS-485 line control is the serial adapter's job here (most switch direction in \
             hardware); Markoff sets no RTS timing",
        );
    }
    for key in ["debug_connection", "log_level"] {
        if let Some(v) = plugin.get(key) {
            notes.dropped(
                plugin.at(key),
                key,
                v,
                "connection tracing: run with RUST_LOG=markoff::sources=debug instead",
            );
        }
    }
    if let Some(v) = plugin.get("exclude_register_type_tag") {
        notes.dropped(
            plugin.at("exclude_register_type_tag"),
            "exclude_register_type_tag",
            v,
            "readings here carry no tags",
        );
    }
    let (mut floor, mut room) = (None, None);
    placement(plugin, &mut floor, &mut room, notes);
    let style = plugin
        .str("configuration_type", notes)
        .unwrap_or("register");
    let mut by_slave: BTreeMap<u8, Slave> = BTreeMap::new();
    match style {
        "register" => register_style(plugin, &mut by_slave, notes),
        "request" => request_style(plugin, &mut by_slave, notes),
        "metric" => metric_style(plugin, &mut by_slave, notes),
        other => notes.dropped(
            plugin.at("configuration_type"),
            "configuration_type",
            &string(other),
            "not a Telegraf configuration style",
        ),
    }
    let unused = ["register", "request", "metric"]
        .into_iter()
        .filter(|s| *s != style);
    for other in unused {
        for key in style_keys(other) {
            if let Some(v) = plugin.get(key) {
                notes.dropped(
                    plugin.at(key),
                    key,
                    v,
                    &format!("Telegraf ignores it too: configuration_type = {style:?}"),
                );
            }
        }
    }
    let slaves = by_slave.len();
    for (slave, entry) in by_slave {
        if entry.fields.is_empty() {
            continue;
        }
        let name = if slaves == 1 {
            base_name.clone()
        } else {
            format!("{base_name}_{slave}")
        };
        let mut device = Device {
            name: unique(name, &mut names.devices),
            slave_id: slave,
            interval: Some(interval),
            floor: entry.floor.or_else(|| floor.clone()),
            room: entry.room.or_else(|| room.clone()),
            max_registers_per_request: limits.0,
            max_bits_per_request: limits.1,
            ..Device::default()
        };
        grouping(
            &mut device,
            per_field,
            &entry.groupings,
            &plugin.place,
            notes,
        );
        device.points = name_points(entry.fields, notes);
        conn.devices.push(device);
    }
    plugin.finish(
        notes,
        "a Telegraf plugin setting with no counterpart here (filters, name overrides and the \
         like: every field is imported)",
    );
    if conn.devices.is_empty() {
        notes.dropped(
            plugin.place.clone(),
            "[[inputs.modbus]]",
            &string(&base_name),
            "no field could be carried over",
        );
        return;
    }
    merge_connection(doc, names, &base_name, conn, &plugin.place, notes);
}

/// The keys of a configuration style.
fn style_keys(style: &str) -> &'static [&'static str] {
    match style {
        "register" => &[
            "slave_id",
            "coils",
            "discrete_inputs",
            "holding_registers",
            "input_registers",
        ],
        "request" => &["request"],
        _ => &["metric", "optimization", "optimization_max_register_fill"],
    }
}

/// The connection settings of a plugin; `None` when there is no controller.
fn connection(plugin: &Node<'_>, notes: &mut Notes) -> Option<Connection> {
    let Some(controller) = plugin.str("controller", notes) else {
        notes.dropped(
            plugin.place.clone(),
            "controller",
            &Value::Null,
            "no controller: the plugin has nothing to connect to",
        );
        return None;
    };
    let mut conn = Connection {
        enabled: true,
        controller: controller.to_owned(),
        ..Connection::default()
    };
    let serial = controller.starts_with("file://");
    if !serial && !controller.starts_with("tcp://") {
        conn.enabled = false;
        notes.dropped(
            plugin.at("controller"),
            "controller",
            &string(controller),
            "only tcp://host:port and file:///dev/tty... controllers exist on a Linux gateway: \
             the connection is imported disabled; set its serial port",
        );
        conn.controller = "file:///dev/ttyUSB0".to_owned();
    }
    match plugin.str("transmission_mode", notes) {
        None | Some("auto") => {}
        Some(m @ ("TCP" | "RTU" | "RTUoverTCP")) => {
            conn.transmission_mode = Some(match m {
                "TCP" => "TCP",
                "RTU" => "RTU",
                _ => "RTUoverTCP",
            });
        }
        Some(m) => {
            conn.enabled = false;
            notes.dropped(
                plugin.at("transmission_mode"),
                "transmission_mode",
                &string(m),
                "Modbus ASCII framing is not supported: the connection is imported disabled",
            );
        }
    }
    if serial || conn.transmission_mode == Some("RTU") {
        let parity = match plugin.str("parity", notes).unwrap_or("N") {
            "E" | "e" | "even" => 'E',
            "O" | "o" | "odd" => 'O',
            _ => 'N',
        };
        conn.serial = Some((
            plugin.uint("baud_rate", notes).unwrap_or(9600),
            plugin.uint("data_bits", notes).unwrap_or(8),
            parity,
            plugin.uint("stop_bits", notes).unwrap_or(1),
        ));
    } else {
        for key in ["baud_rate", "data_bits", "parity", "stop_bits"] {
            plugin.consume(key);
        }
    }
    conn.timeout = plugin.go_duration("timeout", notes);
    // Telegraf retries a busy device 0 times unless told; Markoff's default is 2.
    conn.busy_retries = Some(plugin.uint("busy_retries", notes).unwrap_or(0));
    conn.busy_retries_wait = plugin.go_duration("busy_retries_wait", notes);
    Some(conn)
}

/// The workarounds (in `[inputs.modbus.workarounds]`, or at the top level in older Telegrafs).
fn workarounds(
    w: &Node<'_>,
    conn: &mut Connection,
    per_field: &mut bool,
    limits: &mut (Option<u16>, Option<u16>),
    notes: &mut Notes,
) {
    if let Some(d) = w.go_duration("pause_after_connect", notes) {
        conn.pause_after_connect = Some(d);
    }
    if let Some(d) = w.go_duration("pause_between_requests", notes) {
        conn.pause_between_requests = Some(d);
    }
    if w.bool("one_request_per_field", notes) == Some(true) {
        *per_field = true;
    }
    if let Some(n) = w.uint("max_word_registers_per_request", notes) {
        limits.0 = Some(n);
    }
    if let Some(n) = w.uint("max_bit_registers_per_request", notes) {
        limits.1 = Some(n);
    }
    if let Some(v) = w
        .get("close_connection_after_gather")
        .filter(|v| **v == Value::Bool(true))
    {
        notes.dropped(
            w.at("close_connection_after_gather"),
            "close_connection_after_gather",
            v,
            "one task owns each connection here and keeps it open; a serial line is never \
             shared with another program",
        );
    }
    if let Some(v) = w
        .get("read_coils_starting_at_zero")
        .filter(|v| **v == Value::Bool(true))
    {
        notes.dropped(
            w.at("read_coils_starting_at_zero"),
            "read_coils_starting_at_zero",
            v,
            "not supported: a coil read starts at the first coil configured (add a coil point \
             at address 0 and optimization = \"max_insert\" to start at 0)",
        );
    }
    if let Some(v) = w
        .get("string_register_location")
        .filter(|v| !matches!(v.as_str(), Some("" | "both")))
    {
        notes.dropped(
            w.at("string_register_location"),
            "string_register_location",
            v,
            "not supported: STRING points read both bytes of each register",
        );
    }
    for key in [
        "close_connection_after_gather",
        "read_coils_starting_at_zero",
        "string_register_location",
    ] {
        w.consume(key);
    }
}

/// Chooses the device's optimisation from its requests'.
fn grouping(
    device: &mut Device,
    per_field: bool,
    groupings: &[Grouping],
    place: &str,
    notes: &mut Notes,
) {
    let chosen = if per_field {
        Grouping::PerField
    } else {
        groupings
            .iter()
            .min()
            .copied()
            .unwrap_or(Grouping::Contiguous)
    };
    if groupings.iter().any(|g| *g != chosen) && !per_field {
        notes.changed(
            place.to_owned(),
            "optimization",
            &string(&format!("{groupings:?}")),
            &format!(
                "the requests of device {} differ; one optimisation per device here: {chosen:?}, \
                 the one that reads the fewest registers",
                device.name
            ),
        );
    }
    match chosen {
        Grouping::PerField => device.optimization = Some("none"),
        Grouping::Contiguous => device.optimization = Some("contiguous"),
        Grouping::MaxInsert(fill) => {
            device.optimization = Some("max_insert");
            device.max_gap = Some(fill);
        }
        Grouping::Aggressive => device.optimization = Some("aggressive"),
    }
}

/// Telegraf's `optimization` and `optimization_max_register_fill` of a request (or of the
/// metric style's plugin).
fn optimisation(node: &Node<'_>, notes: &mut Notes) -> Grouping {
    let fill = node
        .uint("optimization_max_register_fill", notes)
        .filter(|f| *f > 0)
        .unwrap_or(50);
    match node.str("optimization", notes).unwrap_or("none") {
        "max_insert" => Grouping::MaxInsert(fill),
        "aggressive" => Grouping::Aggressive,
        "none" | "shrink" | "rearrange" => Grouping::Contiguous,
        other => {
            notes.dropped(
                node.at("optimization"),
                "optimization",
                &string(other),
                "not a Telegraf optimisation; contiguous reads here",
            );
            Grouping::Contiguous
        }
    }
}

fn register_style(plugin: &Node<'_>, by_slave: &mut BTreeMap<u8, Slave>, notes: &mut Notes) {
    let slave: u8 = plugin.uint("slave_id", notes).unwrap_or(0);
    let entry = by_slave.entry(slave).or_default();
    entry.groupings.push(Grouping::Contiguous);
    for (key, kind) in [
        ("discrete_inputs", RegisterKind::Discrete),
        ("coils", RegisterKind::Coil),
        ("holding_registers", RegisterKind::Holding),
        ("input_registers", RegisterKind::Input),
    ] {
        for f in plugin.tables(key, notes) {
            if let Some(field) = fields::register_field(&f, kind, notes) {
                entry.fields.push(field);
            }
        }
    }
}

fn request_style(plugin: &Node<'_>, by_slave: &mut BTreeMap<u8, Slave>, notes: &mut Notes) {
    for request in plugin.tables("request", notes) {
        let slave: u8 = request.uint("slave_id", notes).unwrap_or(0);
        let Some((kind, order)) = kind_and_order(&request, notes) else {
            request.finish(notes, "part of a request that could not be carried over");
            continue;
        };
        let measurement = request
            .str("measurement", notes)
            .unwrap_or("modbus")
            .to_owned();
        let grouping = optimisation(&request, notes);
        let entry = by_slave.entry(slave).or_default();
        placement(&request, &mut entry.floor, &mut entry.room, notes);
        entry.groupings.push(grouping);
        for f in request.tables("fields", notes) {
            if let Some(field) = fields::typed_field(&f, kind, order, &measurement, notes) {
                entry.fields.push(field);
            }
        }
        request.finish(notes, "not a key of a Telegraf request");
    }
}

fn metric_style(plugin: &Node<'_>, by_slave: &mut BTreeMap<u8, Slave>, notes: &mut Notes) {
    let grouping = optimisation(plugin, notes);
    for metric in plugin.tables("metric", notes) {
        let slave: u8 = metric.uint("slave_id", notes).unwrap_or(0);
        let order_text = metric.str("byte_order", notes).unwrap_or("ABCD");
        let Some(order) = byte_order(order_text) else {
            notes.dropped(
                metric.at("byte_order"),
                "byte_order",
                &string(order_text),
                "not a byte order",
            );
            metric.finish(notes, "part of a metric that could not be carried over");
            continue;
        };
        let measurement = metric
            .str("measurement", notes)
            .unwrap_or("modbus")
            .to_owned();
        let entry = by_slave.entry(slave).or_default();
        placement(&metric, &mut entry.floor, &mut entry.room, notes);
        entry.groupings.push(grouping);
        for f in metric.tables("fields", notes) {
            let kind_text = f.str("register", notes).unwrap_or("holding");
            let Some(kind) = register_kind(kind_text) else {
                notes.dropped(
                    f.at("register"),
                    "register",
                    &string(kind_text),
                    "not a register table",
                );
                continue;
            };
            if let Some(field) = fields::typed_field(&f, kind, order, &measurement, notes) {
                entry.fields.push(field);
            }
        }
        metric.finish(notes, "not a key of a Telegraf metric");
    }
}

/// A request's register table (default holding) and byte order (default ABCD).
fn kind_and_order(request: &Node<'_>, notes: &mut Notes) -> Option<(RegisterKind, ByteOrder)> {
    let kind_text = request.str("register", notes).unwrap_or("holding");
    let Some(kind) = register_kind(kind_text) else {
        notes.dropped(
            request.at("register"),
            "register",
            &string(kind_text),
            "not a register table",
        );
        return None;
    };
    let order_text = request.str("byte_order", notes).unwrap_or("ABCD");
    let Some(order) = byte_order(order_text) else {
        notes.dropped(
            request.at("byte_order"),
            "byte_order",
            &string(order_text),
            "not a byte order",
        );
        return None;
    };
    Some((kind, order))
}

/// Unique point names in a device. Telegraf tells fields apart by measurement and register
/// table as well as by name; a clash takes the measurement, then the table, as a prefix.
fn name_points(fields: Vec<Field>, notes: &mut Notes) -> Vec<super::super::emit::Point> {
    let mut taken: Vec<String> = Vec::new();
    let mut points = Vec::new();
    for f in &fields {
        let mut name = f.point.name.clone();
        let others: Vec<&Field> = fields
            .iter()
            .filter(|o| o.point.name == name && o.place != f.place)
            .collect();
        if !others.is_empty() {
            // Within one measurement Telegraf tells them apart by register table.
            name = if others.iter().any(|o| o.measurement == f.measurement) {
                format!("{}_{name}", f.point.register.as_str())
            } else {
                format!("{}_{name}", clean_name(&f.measurement, "m"))
            };
        }
        let name = unique(name, &mut taken);
        let mut point = f.point.clone();
        if name != f.original {
            notes.changed(
                f.place.clone(),
                "name",
                &string(&f.original),
                &format!(
                    "point {name:?} (names are unique per device, ASCII letters, digits, _ and -)"
                ),
            );
            point.description = Some(f.original.clone());
        }
        point.name = name;
        points.push(point);
    }
    points
}

/// Adds the connection, or its devices to an earlier connection with the same controller: a
/// serial port or a device's TCP socket is owned by one task here.
fn merge_connection(
    doc: &mut Doc,
    names: &mut Names,
    base_name: &str,
    conn: Connection,
    place: &str,
    notes: &mut Notes,
) {
    if let Some((name, existing)) = doc
        .modbus
        .iter_mut()
        .find(|(_, c)| c.controller == conn.controller && c.enabled && conn.enabled)
    {
        let same = Connection {
            devices: Vec::new(),
            ..existing.clone()
        } == Connection {
            devices: Vec::new(),
            ..conn.clone()
        };
        notes.changed(
            place.to_owned(),
            "controller",
            &string(&conn.controller),
            &if same {
                format!("the same line as connection {name:?}: its devices join it")
            } else {
                format!(
                    "the same line as connection {name:?}, whose settings (timeout, serial, \
                     pauses) apply: its devices join it"
                )
            },
        );
        for device in conn.devices {
            existing.add_device(device, place, notes);
        }
        return;
    }
    let name = unique(base_name.to_owned(), &mut names.connections);
    doc.modbus.insert(name, conn);
}
