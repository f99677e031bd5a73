//! Upgrade in place: a buffer written by the row-per-reading store (schema version 5, the
//! committed fixture `tests/data/buffer-v5/markoff.db`) opened by the columnar layout keeps every
//! reading exactly once, bit for bit, with its seq, and the sync cursor, the seq counter and the
//! drop counts carry on.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use markoff::store::codec::{BatchRow, decode_batch};
use markoff::store::layout::Layout;
use rusqlite::Connection;

/// `(sensor id, ts, value bits, quality)` of a reading.
type Row = (i64, i64, Option<u64>, u8);

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/buffer-v5/markoff.db")
}

/// A copy of the fixture in a directory of its own.
fn copy_fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("markoff.db");
    std::fs::copy(fixture(), &path).unwrap();
    (dir, path)
}

/// Everything the upgrade must carry over, read with plain SQL.
#[derive(Debug, PartialEq)]
struct Facts {
    cursor: Vec<(String, i64)>,
    next_seq: i64,
    dropped: Vec<(String, i64)>,
    sensors: Vec<(i64, String)>,
    state: i64,
    attributes: i64,
}

fn facts(conn: &Connection) -> Facts {
    let pairs = |sql: &str| -> Vec<(String, i64)> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    Facts {
        cursor: pairs("SELECT stream, last_seq FROM sync_cursor ORDER BY stream"),
        next_seq: conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'readings_next_seq'",
                [],
                |r| r.get(0),
            )
            .unwrap(),
        dropped: pairs("SELECT reason, rows FROM dropped_rows ORDER BY reason"),
        sensors: conn
            .prepare("SELECT id, key FROM sensors ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap(),
        state: conn
            .query_row("SELECT count(*) FROM component_state", [], |r| r.get(0))
            .unwrap(),
        attributes: conn
            .query_row("SELECT count(*) FROM attributes", [], |r| r.get(0))
            .unwrap(),
    }
}

fn old_rows(conn: &Connection) -> BTreeMap<i64, Row> {
    conn.prepare("SELECT seq, sensor, ts, value, quality FROM readings ORDER BY seq")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                (
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, Option<f64>>(3)?.map(f64::to_bits),
                    u8::try_from(r.get::<_, i64>(4)?).unwrap(),
                ),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every reading in `batches`, by seq; a seq held twice fails the test.
fn batch_rows(conn: &Connection) -> BTreeMap<i64, Row> {
    let mut out = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT first_seq, readings, data FROM batches ORDER BY first_seq")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let first: i64 = row.get(0).unwrap();
        let count: i64 = row.get(1).unwrap();
        let mut decoded: Vec<BatchRow> = Vec::new();
        decode_batch(row.get_ref(2).unwrap().as_blob().unwrap(), &mut decoded).unwrap();
        assert_eq!(decoded.len() as i64, count, "batch {first}: count");
        for (seq, r) in (first..).zip(decoded) {
            let prev = out.insert(seq, (r.sensor, r.ts, r.value.map(f64::to_bits), r.quality));
            assert!(prev.is_none(), "seq {seq} is held twice");
        }
    }
    out
}

/// Each sensor's readings through the history read (chunks and the unfolded tail).
fn history(layout: &Layout, sensors: &[(i64, String)]) -> BTreeMap<i64, Row> {
    let mut out = BTreeMap::new();
    for (id, _) in sensors {
        for r in layout.history(*id, i64::MIN, i64::MAX).unwrap() {
            let prev = out.insert(r.seq, (*id, r.ts, r.value.map(f64::to_bits), r.quality));
            assert!(prev.is_none(), "seq {} is read twice", r.seq);
        }
    }
    out
}

fn table_exists(conn: &Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn the_fixture_is_a_row_per_reading_buffer_with_unsynced_rows() {
    let conn = Connection::open(fixture()).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
    let rows = old_rows(&conn);
    let f = facts(&conn);
    assert_eq!(rows.len(), 2110);
    assert_eq!(rows.keys().next(), Some(&41));
    assert_eq!(rows.keys().last(), Some(&2150));
    assert_eq!(f.cursor, vec![("readings".to_owned(), 1433)]);
    assert_eq!(f.next_seq, 2151);
    assert_eq!(f.dropped, vec![("retention".to_owned(), 40)]);
    assert_eq!(rows.range(1434..).count(), 717, "unsynced rows");
    assert_eq!(f.sensors.len(), 9);
}

/// `inspect::readings` as the rows of this test.
fn inspected(conn: &Connection) -> BTreeMap<i64, Row> {
    let all = markoff::store::inspect::readings(conn).unwrap();
    let seqs: Vec<i64> = all.iter().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq order, each once");
    all.into_iter()
        .map(|r| {
            (
                r.seq,
                (r.sensor, r.ts, r.value.map(f64::to_bits), r.quality),
            )
        })
        .collect()
}

#[test]
fn inspection_reads_every_reading_in_both_layouts() {
    let (_dir, path) = copy_fixture();
    let old = {
        let conn = Connection::open(&path).unwrap();
        assert_eq!(inspected(&conn), old_rows(&conn), "row-per-reading");
        old_rows(&conn)
    };
    let mut layout = Layout::open(&path, 2048, 1000).unwrap();
    let conn = Connection::open(&path).unwrap();
    assert_eq!(inspected(&conn), old, "upgraded, nothing folded");
    layout.fold(1_000).unwrap();
    assert_eq!(
        inspected(&conn),
        old,
        "folded (the fold releases its batches)"
    );
    let row = BatchRow {
        sensor: 1,
        ts: 1_800_000_000_000,
        value: Some(-0.5),
        quality: 0,
    };
    assert_eq!(layout.commit(&[row]).unwrap(), 2151);
    let mut want = old.clone();
    want.insert(2151, (1, 1_800_000_000_000, Some((-0.5f64).to_bits()), 0));
    assert_eq!(inspected(&conn), want, "folded chunks and an unfolded tail");
    layout.release(true, 1433).unwrap();
    assert_eq!(inspected(&conn), want, "folded, synced batches released");
    layout.fold(1_000_000).unwrap();
    layout.release(false, 0).unwrap();
    assert_eq!(inspected(&conn), want, "everything folded and released");
}

#[test]
fn upgrade_keeps_every_reading_once_and_the_sync_cursor_carries_on() {
    let (_dir, path) = copy_fixture();
    let (before, old) = {
        let conn = Connection::open(&path).unwrap();
        (facts(&conn), old_rows(&conn))
    };

    let mut layout = Layout::open(&path, 2048, 1000).unwrap();
    let conn = Connection::open(&path).unwrap();
    assert!(!table_exists(&conn, "readings"), "readings is dropped");
    assert!(!table_exists(&conn, "readings_sensor_ts"));
    let marker: i64 = conn
        .query_row(
            "SELECT count(*) FROM meta WHERE key = 'upgrade_readings_upto'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(marker, 0, "the upgrade's marker is gone");
    assert_eq!(
        facts(&conn),
        before,
        "cursor, seq counter, drop counts, metadata"
    );
    assert_eq!(
        batch_rows(&conn),
        old,
        "the log holds every reading once, bit for bit"
    );
    assert_eq!(history(&layout, &before.sensors), old);

    // Folding the upgraded log moves every reading into chunks and deletes the batches, synced
    // or not; the uploader reads the unsynced readings after its cursor from the chunks, bit for
    // bit, and the history still holds every reading.
    let folded = layout.fold(1_000_000).unwrap();
    assert_eq!(folded, 2110);
    layout.release(true, 1433).unwrap();
    assert_eq!(history(&layout, &before.sensors), old);
    assert!(batch_rows(&conn).is_empty(), "the fold released the log");
    let unsynced: BTreeMap<i64, Row> = old.range(1434..).map(|(k, v)| (*k, *v)).collect();
    let sync = markoff::store::SyncReader::open(&path).unwrap();
    let read = sync.readings(1433, 100_000).unwrap();
    assert_eq!(read.local_max, 2150);
    let read: BTreeMap<i64, Row> = read
        .rows
        .into_iter()
        .map(|r| {
            (
                r.seq,
                (
                    r.sensor_id,
                    r.ts_ms,
                    r.value.map(f64::to_bits),
                    u8::try_from(r.quality).unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(
        read, unsynced,
        "the uploader reads every unsynced reading once"
    );
    drop(sync);

    // New readings take seqs after every seq ever committed.
    let first = layout
        .commit(&[BatchRow {
            sensor: before.sensors[0].0,
            ts: 1_800_000_000_000,
            value: Some(21.5),
            quality: 0,
        }])
        .unwrap();
    assert_eq!(first, 2151);
    let mut want = old.clone();
    want.insert(
        2151,
        (
            before.sensors[0].0,
            1_800_000_000_000,
            Some(21.5_f64.to_bits()),
            0,
        ),
    );
    assert_eq!(history(&layout, &before.sensors), want);
    assert_eq!(facts(&conn).cursor, before.cursor);
}

#[tokio::test]
async fn the_daemon_upgrades_at_start_and_opens_the_upgraded_buffer_again() {
    use markoff::config::StoreConfig;
    use markoff::model::{Reading, SensorId, Seq, Timestamp};
    use markoff::service::metrics::Metrics;
    use markoff::service::supervisor::Heartbeat;
    use markoff::store::{Store, StoreOptions, SyncReader};

    let (_dir, path) = copy_fixture();
    let (before, old) = {
        let conn = Connection::open(&path).unwrap();
        (facts(&conn), old_rows(&conn))
    };
    let open = || {
        Store::open(
            &StoreConfig::default(),
            &path,
            StoreOptions { uplink: true },
            Metrics::new(),
            Heartbeat::new("test"),
        )
        .unwrap()
    };
    let store = open();
    {
        let conn = Connection::open(&path).unwrap();
        assert!(!table_exists(&conn, "readings"), "readings is dropped");
        assert_eq!(inspected(&conn), old, "every reading once, bit for bit");
        assert_eq!(facts(&conn).cursor, before.cursor);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 7);
    }
    // The uploader carries on at its cursor with the unsynced readings.
    let sync = SyncReader::open(&path).unwrap();
    let chunk = sync.readings(1433, 10_000).unwrap();
    let seqs: Vec<i64> = chunk.rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1434..=2150).collect::<Vec<_>>());
    assert_eq!(chunk.local_max, 2150);
    store.writer.drain();
    assert!(store.writer.finished().await);

    // A second start opens the upgraded file; new readings take seqs after every old one.
    let store = open();
    let receipt = store
        .ingest
        .write(vec![Reading::good(
            SensorId::new("f1.r101.temperature"),
            Timestamp::now(),
            21.5,
        )])
        .await
        .unwrap();
    assert_eq!(receipt.first, Seq(2151));
    store.writer.drain();
    assert!(store.writer.finished().await);
    let store = open();
    store.writer.drain();
    assert!(store.writer.finished().await);
    let conn = Connection::open(&path).unwrap();
    let now = inspected(&conn);
    assert_eq!(now.len(), old.len() + 1);
    assert!(old.iter().all(|(seq, row)| now.get(seq) == Some(row)));
    assert_eq!(facts(&conn).dropped, before.dropped, "nothing dropped");
}
