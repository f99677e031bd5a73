//! A model-based test of the log and the fold under injected faults: random commits, folds,
//! sync cursor moves and deletions, each of which may be interrupted at a random point inside
//! SQLite (a progress handler aborts the statement) or have its commit vetoed (a commit hook),
//! and random crashes (the connection is abandoned without closing, as a killed process leaves
//! it, and the file is opened again). After every step the buffer must hold every committed
//! reading exactly once, with contiguous seqs, readable by seq after the sync cursor, and the
//! next seq must be past every committed one.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use rusqlite::Connection;

use super::codec::BatchRow;
use super::{fold, log, series, trim};

#[derive(Clone, Debug)]
enum Op {
    /// Commit a batch of readings.
    Append(Vec<(u8, i16, Option<i32>, u8)>),
    /// Fold up to this many readings.
    Fold(usize),
    /// The centre confirmed readings up to this fraction (per mille) of the committed ones.
    Sync(u16),
    /// Delete batches that are folded and synced.
    Trim,
    /// The disk budget drops the oldest readings once.
    DropOldest,
    /// The process dies: the connection is abandoned and the file opened again.
    Crash,
}

/// A fault injected into one operation.
#[derive(Clone, Copy, Debug)]
enum Fault {
    None,
    /// Abort after this many SQLite virtual machine steps (times 16).
    Interrupt(u16),
    /// Veto the commit.
    VetoCommit,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec((0u8..6, -50i16..200, proptest::option::weighted(0.9, any::<i32>()), 0u8..4), 1..40).prop_map(Op::Append),
        2 => (1usize..120).prop_map(Op::Fold),
        1 => (0u16..=1000).prop_map(Op::Sync),
        1 => Just(Op::Trim),
        1 => Just(Op::DropOldest),
        1 => Just(Op::Crash),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        6 => Just(Fault::None),
        2 => (1u16..400).prop_map(Fault::Interrupt),
        1 => Just(Fault::VetoCommit),
    ]
}

fn open(path: &Path) -> Connection {
    let mut conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    super::migrations::migrate(&mut conn).unwrap();
    conn.execute_batch(include_str!("../../../migrations/gateway/0006_columns.sql"))
        .unwrap();
    conn
}

/// What the model knows was committed.
#[derive(Default)]
struct Model {
    readings: BTreeMap<i64, BatchRow>,
    synced: i64,
    /// Highest seq ever committed, dropped or not.
    last_committed: i64,
}

fn arm(conn: &Connection, fault: Fault) {
    match fault {
        Fault::None => {}
        Fault::Interrupt(n) => {
            let mut left = n;
            conn.progress_handler(
                16,
                Some(move || {
                    left = left.saturating_sub(1);
                    left == 0
                }),
            )
            .unwrap();
        }
        Fault::VetoCommit => {
            let _previous = conn.commit_hook(Some(|| true));
        }
    }
}

fn disarm(conn: &Connection) {
    conn.progress_handler(16, None::<fn() -> bool>).unwrap();
    let _previous = conn.commit_hook(None::<fn() -> bool>);
}

fn apply(conn: &mut Connection, model: &mut Model, op: &Op, fault: Fault) {
    arm(conn, fault);
    match op {
        Op::Append(items) => {
            let first = log::resume_seq(conn);
            let rows: Vec<BatchRow> = items
                .iter()
                .map(|&(sensor, dts, value, quality)| BatchRow {
                    sensor: i64::from(sensor) + 1,
                    ts: 1_000_000 + model.readings.len() as i64 * 10 + i64::from(dts),
                    value: value.map(|v| f64::from(v) / 100.0),
                    quality,
                })
                .collect();
            let committed = first.and_then(|first| {
                let tx = conn.transaction()?;
                log::append(&tx, first, &rows)?;
                tx.commit()?;
                Ok(first)
            });
            if let Ok(first) = committed {
                for (seq, r) in (first..).zip(rows) {
                    model.readings.insert(seq, r);
                    model.last_committed = seq;
                }
            }
        }
        Op::Fold(max) => {
            let _may_fail = fold::fold(conn, *max);
        }
        Op::Sync(per_mille) => {
            let last = model.last_committed;
            let to = last * i64::from(*per_mille) / 1000;
            if to > model.synced {
                let done = conn.execute(
                    "INSERT INTO sync_cursor (stream, last_seq, updated_ms) VALUES ('readings', ?1, 0) \
                     ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq",
                    [to],
                );
                if done.is_ok() {
                    model.synced = to;
                }
            }
        }
        Op::Trim => {
            let _may_fail = trim::release_log(conn, true, model.synced);
        }
        Op::DropOldest => {
            // What the budget drops is always the oldest stored readings.
            if let Ok(Some(d)) = trim::drop_oldest(conn, model.synced) {
                for _ in 0..d.synced + d.unsynced {
                    model.readings.pop_first();
                }
            }
        }
        Op::Crash => unreachable!("handled by the caller"),
    }
    disarm(conn);
}

/// Every committed reading, exactly once: folded ones from the chunks, the rest from batches.
fn check(conn: &Connection, model: &Model) -> Result<(), TestCaseError> {
    let upto = fold::meta(conn, fold::FOLDED_UPTO).unwrap();
    let mut found: BTreeMap<i64, BatchRow> = BTreeMap::new();
    let mut folds = conn
        .prepare("SELECT id, first_seq, last_seq FROM folds ORDER BY id")
        .unwrap();
    let folds: Vec<(i64, i64, i64)> = folds
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev_last = 0;
    for &(id, first, last) in &folds {
        prop_assert!(first > prev_last, "folds overlap");
        prev_last = last;
        for sensor in 1..=6 {
            let mut rows = Vec::new();
            fold::read_chunk(conn, id, sensor, &mut rows).unwrap();
            for r in rows {
                prop_assert!((first..=last).contains(&r.seq));
                let row = BatchRow {
                    sensor,
                    ts: r.ts,
                    value: r.value,
                    quality: r.quality,
                };
                prop_assert!(
                    found.insert(r.seq, row).is_none(),
                    "seq {} twice in chunks",
                    r.seq
                );
            }
        }
    }
    // The newest fold ends at `folded_upto` (or below, once the budget dropped it).
    prop_assert!(prev_last <= upto);
    log::for_each_after(conn, upto, |b| {
        for (seq, r) in (b.first_seq..).zip(b.rows) {
            if seq > upto {
                assert!(
                    found.insert(seq, r).is_none(),
                    "seq {seq} in a chunk and a batch"
                );
            }
        }
        true
    })
    .unwrap();
    prop_assert_eq!(found.len(), model.readings.len());
    for (seq, want) in &model.readings {
        let got = found.get(seq);
        prop_assert!(got.is_some(), "committed seq {} is missing", seq);
        let got = got.unwrap();
        prop_assert_eq!(
            (got.sensor, got.ts, got.quality),
            (want.sensor, want.ts, want.quality)
        );
        prop_assert_eq!(got.value.map(f64::to_bits), want.value.map(f64::to_bits));
    }
    // Seqs are contiguous from the first.
    if let (Some(first), Some(last)) = (found.keys().next(), found.keys().next_back()) {
        prop_assert_eq!(last - first + 1, found.len() as i64);
    }
    // Sync reads exactly the unsynced readings, by seq, from the batches and the chunks.
    let unsynced = series::after_seq(conn, model.synced, usize::MAX).unwrap();
    let want: Vec<(i64, BatchRow)> = model
        .readings
        .range(model.synced + 1..)
        .map(|(s, r)| (*s, *r))
        .collect();
    prop_assert_eq!(unsynced.len(), want.len());
    for ((seq, got), (want_seq, want)) in unsynced.iter().zip(&want) {
        prop_assert_eq!(seq, want_seq);
        prop_assert_eq!(
            (got.sensor, got.ts, got.quality, got.value.map(f64::to_bits)),
            (
                want.sensor,
                want.ts,
                want.quality,
                want.value.map(f64::to_bits)
            )
        );
    }
    // The next seq is past every committed one.
    let next = log::resume_seq(conn).unwrap();
    prop_assert!(
        model
            .readings
            .keys()
            .next_back()
            .is_none_or(|last| next > *last)
    );
    // A sensor's history agrees with the model.
    let mut hist = Vec::new();
    series::range(conn, 3, i64::MIN, i64::MAX, &mut hist).unwrap();
    let want = model.readings.values().filter(|r| r.sensor == 3).count();
    prop_assert_eq!(hist.len(), want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn committed_readings_survive_faults_and_crashes(steps in proptest::collection::vec((op(), fault()), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("markoff.db");
        let mut conn = open(&path);
        let mut model = Model::default();
        for (op, fault) in &steps {
            if matches!(op, Op::Crash) {
                // Abandon the connection as a killed process would: no close, no checkpoint.
                std::mem::forget(conn);
                conn = open(&path);
            } else {
                apply(&mut conn, &mut model, op, *fault);
            }
            check(&conn, &model)?;
        }
    }
}
