//! The spanned TOML tree the loader works on: finding the key path at a byte offset, the span of
//! a dotted path, pruning an entry, and turning offsets into lines and columns.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The deepest key path whose key or value span contains `pos`. Tables defined by a header do
/// not span their keys, so every branch is searched.
pub(super) fn path_at(root: &Spanned<DeTable<'_>>, pos: usize) -> Vec<String> {
    let mut path = Vec::new();
    search_table(root.get_ref(), pos, &mut path);
    path
}

fn search_table(table: &DeTable<'_>, pos: usize, path: &mut Vec<String>) -> bool {
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        if search_value(value, pos, path)
            || contains(&key.span(), pos)
            || contains(&value.span(), pos)
        {
            return true;
        }
        path.pop();
    }
    false
}

fn search_value(value: &Spanned<DeValue<'_>>, pos: usize, path: &mut Vec<String>) -> bool {
    match value.get_ref() {
        DeValue::Table(t) => search_table(t, pos, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                if search_value(item, pos, path) || contains(&item.span(), pos) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

fn contains(span: &Range<usize>, pos: usize) -> bool {
    span.start <= pos && (pos < span.end || span.is_empty() && pos == span.start)
}

/// Removes the entry at `path`; returns whether anything was removed.
pub(super) fn remove_path(root: &mut Spanned<DeTable<'_>>, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut value: &mut DeValue<'_> = match parents.first() {
        None => return root.get_mut().remove(last.as_str()).is_some(),
        Some(first) => match root.get_mut().get_mut(first.as_str()) {
            Some(v) => v.get_mut(),
            None => return false,
        },
    };
    for part in &parents[1..] {
        value = match value {
            DeValue::Table(t) => match t.get_mut(part.as_str()) {
                Some(v) => v.get_mut(),
                None => return false,
            },
            DeValue::Array(items) => {
                match part.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(v) => v.get_mut(),
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    match value {
        DeValue::Table(t) => t.remove(last.as_str()).is_some(),
        DeValue::Array(items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                let kept: Vec<_> = items
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, v)| v.clone())
                    .collect();
                *items = toml::de::DeArray::new();
                for v in kept {
                    items.push(v);
                }
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// The span of the key at a dotted path, or of its nearest existing ancestor.
pub(super) fn span_of_path(root: &Spanned<DeTable<'_>>, path: &str) -> Option<Range<usize>> {
    let mut table = root.get_ref();
    let mut found = None;
    let mut parts = path.split('.').filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        let Some((key, value)) = table.get_key_value(part) else {
            break;
        };
        found = Some(key.span());
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            DeValue::Array(items) => {
                let Some(idx) = parts.next().and_then(|i| i.parse::<usize>().ok()) else {
                    break;
                };
                match items.get(idx).map(Spanned::get_ref) {
                    Some(DeValue::Table(t)) => {
                        found = items.get(idx).map(Spanned::span).or(found);
                        table = t;
                    }
                    _ => break,
                }
            }
            _ => break,
        }
    }
    found
}

/// Byte offset -> 1-based (line, column in characters).
pub(super) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line, col)
    }
}

/// For "missing field" errors: the deepest table on `path` that lacks `field`. Tables inside
/// arrays of tables (`[[alarms.rule]]`) are entered by their index on `path`.
pub(super) fn table_missing(
    tree: &Spanned<DeTable<'_>>,
    path: &[String],
    field: &str,
) -> Vec<String> {
    let mut best = Vec::new();
    let mut table = tree.get_ref();
    let mut cur = Vec::new();
    let mut parts = path.iter();
    while let Some(part) = parts.next() {
        let inner = match table.get(part.as_str()).map(Spanned::get_ref) {
            Some(DeValue::Table(t)) => {
                cur.push(part.clone());
                t
            }
            Some(DeValue::Array(items)) => {
                let Some(index) = parts.next() else { break };
                match index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .map(Spanned::get_ref)
                {
                    Some(DeValue::Table(t)) => {
                        cur.push(part.clone());
                        cur.push(index.clone());
                        t
                    }
                    _ => break,
                }
            }
            _ => break,
        };
        table = inner;
        if !inner.contains_key(field) {
            best = cur.clone();
        }
    }
    best
}
