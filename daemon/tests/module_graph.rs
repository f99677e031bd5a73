//! The module graph of `daemon/src`: no import cycle between top-level modules.
//!
//! Reads every source file reachable from `lib.rs` through `mod` declarations, collects the
//! `crate::` paths (and `super::` paths that climb to the crate root) of production code, and
//! builds the graph "top-level module A names something in top-level module B". Code compiled
//! only for tests (`#[cfg(test)]` items and the files they declare) is left out. The test fails
//! on any strongly connected component of more than one module and prints one cycle of it with
//! the file and line of every edge. The allowed directions are listed in docs/architecture.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One source file: where it is, its module path from the crate root, its production text.
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    text: String,
}

/// Blanks comments, string and char literals (newlines kept, so line numbers hold).
fn strip_comments_and_strings(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_'))
        {
            // Raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (1..=hashes).all(|k| b.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &ch in &b[i..j.min(b.len())] {
                out.push(blank(ch));
            }
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('a', '\n', '\''), not a lifetime ('a without a closing quote).
            let end = if next == Some('\\') {
                (i + 2..b.len().min(i + 12)).find(|&k| b[k] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    for _ in i..=e {
                        out.push(' ');
                    }
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Index just past the item that starts at `from`: its matching `}` or its `;` at depth 0.
fn item_end(b: &[u8], from: usize) -> usize {
    let mut depth = 0i32;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => {
                depth -= 1;
                if depth == 0 && b[i] == b'}' {
                    return i + 1;
                }
            }
            b';' if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// Index just past an attribute `#[...]` that starts at `from`.
fn attribute_end(b: &[u8], from: usize) -> usize {
    let mut depth = 0i32;
    let mut i = from + 1;
    while i < b.len() {
        match b[i] {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// Blanks every item under `#[cfg(test)]` (newlines kept). Returns the names of the `mod x;`
/// declarations it blanked, so their files are left out too.
fn blank_test_items(text: &str) -> (String, Vec<String>) {
    let mut b = text.as_bytes().to_vec();
    let mut test_mods = Vec::new();
    let mut i = 0;
    while let Some(pos) = find(&b, i, b"#[cfg(test)]") {
        let mut j = attribute_end(&b, pos);
        // Further attributes of the same item.
        loop {
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if b.get(j) == Some(&b'#') && b.get(j + 1) == Some(&b'[') {
                j = attribute_end(&b, j);
            } else {
                break;
            }
        }
        let end = item_end(&b, j);
        let item = String::from_utf8_lossy(&b[j..end]).to_string();
        if let Some(name) = mod_declaration(&item) {
            test_mods.push(name);
        }
        for ch in &mut b[pos..end] {
            if *ch != b'\n' {
                *ch = b' ';
            }
        }
        i = end;
    }
    (String::from_utf8_lossy(&b).to_string(), test_mods)
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from >= hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// `mod x;` / `pub(crate) mod x;` → `x`.
fn mod_declaration(item: &str) -> Option<String> {
    let item = item.trim();
    let rest = item.strip_suffix(';')?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (last, before) = words.split_last()?;
    if before.last() != Some(&"mod") {
        return None;
    }
    if !before[..before.len() - 1]
        .iter()
        .all(|w| w.starts_with("pub"))
    {
        return None;
    }
    Some((*last).to_string())
}

/// The files of the modules a file declares with `mod x;` (production ones only).
fn child_files(file: &Path, module: &[String], text: &str) -> Vec<(PathBuf, Vec<String>)> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let base = if matches!(stem, "mod" | "lib" | "main") {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(name) = mod_declaration(line) else {
            continue;
        };
        let flat = base.join(format!("{name}.rs"));
        let nested = base.join(&name).join("mod.rs");
        let path = if flat.exists() { flat } else { nested };
        let mut m = module.to_vec();
        m.push(name);
        out.push((path, m));
    }
    out
}

fn load_crate(src: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut queue = vec![(src.join("lib.rs"), Vec::<String>::new())];
    while let Some((path, module)) = queue.pop() {
        let raw = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let clean = strip_comments_and_strings(&raw);
        let (text, _test_mods) = blank_test_items(&clean);
        queue.extend(child_files(&path, &module, &text));
        files.push(SourceFile { path, module, text });
    }
    files
}

/// Modules outside `config/` that belong to the config layer: the pure resolvers the loader
/// runs to check a section the way its component will use it. They import only `model` and
/// the config layer (the cycle check below holds them to that).
const CONFIG_LAYER: &[&str] = &[
    "sources::modbus",
    "sources::modbus::address",
    "sources::modbus::decode",
    "sources::modbus::planner",
    "sources::modbus::resolve",
    "sources::modbus::checks",
    "sources::mqtt",
    "sources::mqtt::decode",
    "alarms::rules",
];

/// The node of the graph a module belongs to: its top-level module, except that the config
/// layer is one node, `config`: `config/` itself, the leaf `config` submodules of the
/// components (their section types) and the resolvers of [`CONFIG_LAYER`].
fn node_of(module: &[String]) -> Option<String> {
    let top = module.first()?;
    if module.iter().any(|s| s == "config") || CONFIG_LAYER.contains(&module.join("::").as_str()) {
        return Some("config".to_string());
    }
    Some(top.clone())
}

/// The longest prefix of `path` that names a module of the crate.
fn module_prefix(path: &[String], modules: &BTreeSet<Vec<String>>) -> Vec<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
        .unwrap_or_else(|| path[..path.len().min(1)].to_vec())
}

/// Inline `mod x { ... }` blocks of a text: (start, end, name).
fn inline_modules(text: &str) -> Vec<(usize, usize, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = find(b, from, b"mod ") {
        from = pos + 4;
        if pos > 0 && (b[pos - 1].is_ascii_alphanumeric() || b[pos - 1] == b'_') {
            continue;
        }
        let mut i = pos + 4;
        let s = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let name = text[s..i].to_string();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if name.is_empty() || b.get(i) != Some(&b'{') {
            continue;
        }
        out.push((i, item_end(b, i), name));
    }
    out
}

/// Parses a path or use tree starting at `i` (just after `crate::` or a `super::` chain):
/// every full path it names, appended to `prefix`.
fn parse_tree(text: &str, mut i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let b = text.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut path = prefix.to_vec();
    loop {
        i = skip_ws(i);
        if b.get(i) == Some(&b'{') {
            i += 1;
            loop {
                i = skip_ws(i);
                if b.get(i) == Some(&b'}') {
                    return i + 1;
                }
                if i >= b.len() {
                    return i;
                }
                i = parse_tree(text, i, &path, out);
                i = skip_ws(i);
                // ` as name`, then `,` or `}`.
                while i < b.len() && b[i] != b',' && b[i] != b'}' {
                    i += 1;
                }
                if b.get(i) == Some(&b',') {
                    i += 1;
                }
            }
        }
        if b.get(i) == Some(&b'*') {
            path.push("*".to_string());
            out.push(path);
            return i + 1;
        }
        let s = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if s == i {
            out.push(path);
            return i;
        }
        path.push(text[s..i].to_string());
        let j = skip_ws(i);
        if text[j..].starts_with("::") {
            i = j + 2;
        } else {
            out.push(path);
            return i;
        }
    }
}

/// The graph nodes a file names, each with the line of its first mention.
fn referenced_nodes(
    file: &SourceFile,
    tops: &BTreeSet<String>,
    modules: &BTreeSet<Vec<String>>,
) -> BTreeMap<String, usize> {
    let text = &file.text;
    let b = text.as_bytes();
    let mut found: BTreeMap<String, usize> = BTreeMap::new();
    let line_of = |pos: usize| text[..pos].matches('\n').count() + 1;
    let is_word_start = |pos: usize| {
        pos == 0
            || !(b[pos - 1].is_ascii_alphanumeric() || b[pos - 1] == b'_' || b[pos - 1] == b'$')
    };
    let inline = inline_modules(text);
    let module_at = |pos: usize| -> Vec<String> {
        let mut m = file.module.clone();
        let mut enclosing: Vec<&(usize, usize, String)> = inline
            .iter()
            .filter(|(s, e, _)| *s < pos && pos < *e)
            .collect();
        enclosing.sort_by_key(|(s, _, _)| *s);
        m.extend(enclosing.into_iter().map(|(_, _, n)| n.clone()));
        m
    };
    let mut note = |paths: Vec<Vec<String>>, pos: usize| {
        for p in paths {
            if p.first().is_some_and(|t| tops.contains(t))
                && let Some(node) = node_of(&module_prefix(&p, modules))
            {
                found.entry(node).or_insert_with(|| line_of(pos));
            }
        }
    };

    let mut from = 0;
    while let Some(pos) = find(b, from, b"crate") {
        from = pos + 5;
        if !is_word_start(pos) {
            continue;
        }
        let i = pos + 5;
        let j = i + (text[i..].len() - text[i..].trim_start().len());
        if !text[j..].starts_with("::") {
            continue;
        }
        let mut paths = Vec::new();
        parse_tree(text, j + 2, &[], &mut paths);
        note(paths, pos);
    }

    // `super::` chains, resolved against the module they are written in.
    let mut from = 0;
    while let Some(pos) = find(b, from, b"super") {
        from = pos + 5;
        if !is_word_start(pos) {
            continue;
        }
        let mut i = pos;
        let mut ups = 0;
        loop {
            let rest = &text[i..];
            let Some(after) = rest.strip_prefix("super") else {
                break;
            };
            let after_ws = after.trim_start();
            if !after_ws.starts_with("::") {
                break;
            }
            ups += 1;
            i = text.len() - after_ws.len() + 2;
            i += text[i..].len() - text[i..].trim_start().len();
        }
        from = from.max(i);
        if ups == 0 {
            continue;
        }
        let module = module_at(pos);
        if ups > module.len() {
            continue;
        }
        let base = module[..module.len() - ups].to_vec();
        let mut paths = Vec::new();
        parse_tree(text, i, &base, &mut paths);
        note(paths, pos);
    }
    found
}

/// Strongly connected components (Tarjan), each sorted.
fn components(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit(s: &mut State<'_>, v: &str) {
        s.index.insert(v.to_string(), s.next);
        s.low.insert(v.to_string(), s.next);
        s.next += 1;
        s.stack.push(v.to_string());
        s.on_stack.insert(v.to_string());
        let targets: Vec<String> = s.graph.get(v).into_iter().flatten().cloned().collect();
        for w in targets {
            if !s.index.contains_key(&w) {
                visit(s, &w);
                let lw = s.low[&w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(&w) {
                let iw = s.index[&w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(&w);
                let done = w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            comp.sort();
            s.out.push(comp);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// One cycle through `start` inside the component (breadth-first, so a shortest one).
fn cycle_through(
    start: &str,
    comp: &BTreeSet<String>,
    graph: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.to_string()]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(&v).into_iter().flatten() {
            if !comp.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![v.clone()];
                let mut cur = v.clone();
                while let Some(p) = prev.get(&cur) {
                    path.push(p.clone());
                    cur = p.clone();
                }
                path.reverse();
                path.push(start.to_string());
                return path;
            }
            if !prev.contains_key(w) && w != start {
                prev.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    vec![start.to_string()]
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = load_crate(&src);
    assert!(
        files.len() > 50,
        "only {} files reached from lib.rs: the scan lost its way",
        files.len()
    );
    let tops: BTreeSet<String> = files
        .iter()
        .filter(|f| f.module.len() == 1)
        .map(|f| f.module[0].clone())
        .collect();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    assert!(
        tops.contains("store") && tops.contains("app"),
        "top-level modules: {tops:?}"
    );

    // Edge A -> B with the first place (file:line) that makes it.
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut evidence: BTreeMap<(String, String), String> = BTreeMap::new();
    let root = src.parent().unwrap_or(&src);
    for f in &files {
        let Some(from) = node_of(&f.module) else {
            continue;
        };
        let from = &from;
        graph.entry(from.clone()).or_default();
        for (to, line) in referenced_nodes(f, &tops, &modules) {
            if &to == from {
                continue;
            }
            graph.entry(from.clone()).or_default().insert(to.clone());
            let rel = f.path.strip_prefix(root).unwrap_or(&f.path);
            evidence
                .entry((from.clone(), to))
                .or_insert_with(|| format!("{}:{line}", rel.display()));
        }
    }

    let mut report = String::new();
    for comp in components(&graph).into_iter().filter(|c| c.len() > 1) {
        let set: BTreeSet<String> = comp.iter().cloned().collect();
        let cycle = cycle_through(&comp[0], &set, &graph);
        report += &format!("cycle among {} modules {comp:?}:\n", comp.len());
        for pair in cycle.windows(2) {
            let at = evidence
                .get(&(pair[0].clone(), pair[1].clone()))
                .map_or("?", String::as_str);
            report += &format!("  {} -> {}   ({at})\n", pair[0], pair[1]);
        }
        for a in &comp {
            for b in graph.get(a).into_iter().flatten() {
                if set.contains(b) {
                    let at = evidence
                        .get(&(a.clone(), b.clone()))
                        .map_or("?", String::as_str);
                    report += &format!("  edge {a} -> {b}   ({at})\n");
                }
            }
        }
    }
    let mut edges = String::new();
    for (a, bs) in &graph {
        edges += &format!(
            "  {a} -> {}\n",
            bs.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    println!("module graph of daemon/src:\n{edges}");
    assert!(
        report.is_empty(),
        "import cycles between top-level modules of daemon/src (see docs/architecture.md for the allowed directions):\n{report}"
    );
}
