//! Model-based test of the buffer through crashes. A child process (this test binary run again)
//! opens the buffer as the daemon does and carries out a random plan: commits of readings (some
//! sent together, so the writer puts them in one transaction), moves of the sync cursor, clean
//! reopenings. The parent kills it with SIGKILL at a random point of a random step (its opening
//! included), compares the file with its model, and starts a new child on the same file for the
//! rest of the plan.
//!
//! After every kill, and at the end: every reading whose receipt the child printed is stored
//! exactly once at its seq with its content; a reading without a receipt is stored only as part
//! of a whole message that was in flight at the kill; the stored seqs are contiguous from 1; the
//! sync cursor is the last one moved (or the move in flight); sync reads exactly the readings
//! after the cursor; and a seq once stored is never given to another reading.
//!
//! Checks go through what the buffer holds, not how: `db::stored_readings` (every layout) and
//! `SyncReader`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use markoff::config::{ByteSize, StoreConfig};
use markoff::model::{Quality, Reading, SensorId, Timestamp};
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::store::{Store, StoreOptions, SyncReader};
use markoff_cloud_sync::Stream;
use markoff_tests::db;
use proptest::prelude::*;

/// Set in the child's environment: the plan file to carry out.
const CHILD_PLAN: &str = "MARKOFF_BUFFER_MODEL_PLAN";
/// Set in the child's environment: the first step of the plan this child carries out.
const CHILD_FROM: &str = "MARKOFF_BUFFER_MODEL_FROM";
/// Sensors the readings are spread over.
const SENSORS: usize = 23;
/// How long the parent waits for a line of the child before it calls the child stuck.
const PATIENCE: Duration = Duration::from_secs(30);

/// One step of a plan.
#[derive(Clone, Debug)]
enum Op {
    /// Messages of readings sent together (sizes), then awaited.
    Write(Vec<usize>),
    /// The readings sync cursor moved to this share (per mille) of the newest stored seq.
    Cursor(u16),
    /// The buffer closed cleanly and opened again.
    Reopen,
}

impl Op {
    fn line(&self) -> String {
        match self {
            Op::Write(parts) => {
                let mut s = String::from("w");
                for p in parts {
                    write!(s, " {p}").unwrap();
                }
                s
            }
            Op::Cursor(permille) => format!("c {permille}"),
            Op::Reopen => "r".to_owned(),
        }
    }

    fn parse(line: &str) -> Op {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("w") => Op::Write(words.map(|w| w.parse().unwrap()).collect()),
            Some("c") => Op::Cursor(words.next().unwrap().parse().unwrap()),
            Some("r") => Op::Reopen,
            other => panic!("not a plan step: {other:?}"),
        }
    }
}

/// What a stored reading must be: sensor key, read time, value bits, quality code.
#[derive(Clone, Debug, PartialEq)]
struct Expected {
    key: String,
    ts: i64,
    value: Option<u64>,
    quality: i64,
}

/// The readings of message `part` of step `step`. Parent and child compute the same.
fn message(base_ms: i64, step: usize, part: usize, n: usize) -> Vec<Reading> {
    (0..n)
        .map(|j| {
            let k = step * 7 + part * 3 + j;
            let sensor = SensorId::new(format!("model.f1.r{:02}.temperature", k % SENSORS));
            let ts = Timestamp(base_ms + (step * 1_000 + part * 200 + j) as i64);
            let id = (step * 10_000 + part * 1_000 + j) as f64;
            match k % 13 {
                // A failed read: no value.
                0 => Reading::failed(sensor, ts, Quality::CommError),
                // Not a decimal: bits of float arithmetic and a widened FLOAT32 register.
                1 => Reading::good(sensor, ts, id / 3.0),
                2 => Reading::good(sensor, ts, f64::from((id as f32) * 1.1)),
                // Large and small magnitudes, negative values.
                3 => Reading::good(sensor, ts, id * 1e290),
                4 => Reading::good(sensor, ts, -id * 1e-300),
                5 => Reading::good(sensor, ts, -(id / 100.0)),
                _ => Reading::good(sensor, ts, 20.0 + id / 10.0),
            }
        })
        .collect()
}

fn expected(r: &Reading) -> Expected {
    Expected {
        key: r.sensor.as_str().to_owned(),
        ts: r.ts.as_millis(),
        value: r.value.map(f64::to_bits),
        quality: i64::from(r.quality.code()),
    }
}

fn store_config() -> StoreConfig {
    StoreConfig {
        flush_interval: Duration::from_millis(5),
        maintenance_interval: Duration::from_millis(50),
        max_size: ByteSize(1 << 30),
        ..StoreConfig::default()
    }
}

fn open_store(path: &Path) -> Store {
    Store::open(
        &store_config(),
        path,
        StoreOptions { uplink: true },
        Metrics::new(),
        Heartbeat::new("model"),
    )
    .expect("the buffer opens")
}

async fn close(store: Store) {
    store.writer.drain();
    assert!(store.writer.finished().await, "the writer drained cleanly");
}

/// Prints one line to the parent, at once.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "model {line}").unwrap();
    out.flush().unwrap();
}

/// Says that step `what` begins and waits until the parent lets it go on (the parent kills the
/// child a chosen delay after that, wherever it then is).
fn begin(what: &str) {
    say(&format!("begin {what}"));
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
}

/// The child: carries out the plan from step `MARKOFF_BUFFER_MODEL_FROM`. Does nothing when run
/// as a test of its own.
#[test]
fn buffer_model_child_process() {
    let Ok(plan) = std::env::var(CHILD_PLAN) else {
        return;
    };
    let from: usize = std::env::var(CHILD_FROM).unwrap().parse().unwrap();
    let text = std::fs::read_to_string(&plan).unwrap();
    let mut lines = text.lines();
    let base_ms: i64 = lines.next().unwrap().parse().unwrap();
    let path = PathBuf::from(lines.next().unwrap());
    let ops: Vec<Op> = lines.map(Op::parse).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        begin("open");
        let mut store = open_store(&path);
        say("done open");
        for (step, op) in ops.iter().enumerate().skip(from) {
            begin(&step.to_string());
            match op {
                Op::Write(parts) => {
                    let mut tasks = tokio::task::JoinSet::new();
                    for (part, &n) in parts.iter().enumerate() {
                        let ingest = store.ingest.clone();
                        let readings = message(base_ms, step, part, n);
                        tasks.spawn(async move {
                            let receipt = ingest.write(readings).await.unwrap();
                            say(&format!(
                                "receipt {step} {part} {} {}",
                                receipt.first.0, receipt.last.0
                            ));
                        });
                    }
                    while let Some(done) = tasks.join_next().await {
                        done.unwrap();
                    }
                }
                Op::Cursor(permille) => {
                    let newest = SyncReader::open(&path)
                        .unwrap()
                        .max_seq(Stream::Readings)
                        .unwrap();
                    let target = newest * i64::from(*permille) / 1000;
                    say(&format!("target {step} {target}"));
                    store
                        .ingest
                        .advance_sync_cursor(Stream::Readings, target)
                        .await
                        .unwrap();
                }
                Op::Reopen => {
                    close(store).await;
                    store = open_store(&path);
                }
            }
            say(&format!("done {step}"));
        }
        close(store).await;
        say("end");
    });
}

/// A running child and the lines it printed.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    go: std::process::ChildStdin,
}

fn spawn_child(dir: &Path, plan: &Path, from: usize) -> Running {
    let stderr = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join("child.stderr"))
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "buffer_model_child_process",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_PLAN, plan)
        .env(CHILD_FROM, from.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let go = child.stdin.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // The harness may have begun the line with the test's name.
            if let Some((_, rest)) = line.split_once("model ")
                && tx.send(rest.to_owned()).is_err()
            {
                break;
            }
        }
    });
    Running { child, lines, go }
}

/// What the parent knows.
struct Model {
    base_ms: i64,
    ops: Vec<Op>,
    /// Readings with a receipt, or found stored as part of a message in flight.
    stored: BTreeMap<i64, Expected>,
    /// The sync cursor as last moved.
    cursor: i64,
    /// The highest seq ever seen stored.
    high: i64,
    /// Steps finished.
    next: usize,
    /// Messages in flight at a kill that were found committed, and that were not.
    landed: (usize, usize),
}

/// What was in flight when the child died.
#[derive(Default)]
struct InFlight {
    step: Option<usize>,
    /// Messages of the step without a receipt: (part, readings).
    unreceipted: Vec<(usize, Vec<Expected>)>,
    /// The cursor target of a cursor step.
    target: Option<i64>,
    /// The highest seq stored when the step began: every seq the step is given is above it.
    floor: i64,
}

impl Model {
    fn child_log(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("child.stderr")).unwrap_or_default()
    }

    /// Takes in one line of the child. Returns `true` at the end of the plan.
    fn take(&mut self, line: &str, flight: &mut InFlight) -> bool {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["begin", "open"] | ["done", "open"] => {}
            ["begin", step] => {
                let step: usize = step.parse().unwrap();
                assert_eq!(step, self.next, "the child skipped a step");
                *flight = InFlight {
                    step: Some(step),
                    floor: self.high,
                    ..InFlight::default()
                };
                if let Op::Write(parts) = &self.ops[step] {
                    flight.unreceipted = parts
                        .iter()
                        .enumerate()
                        .map(|(part, &n)| {
                            let want = message(self.base_ms, step, part, n);
                            (part, want.iter().map(expected).collect())
                        })
                        .collect();
                }
            }
            ["receipt", step, part, first, last] => {
                let (step, part): (usize, usize) = (step.parse().unwrap(), part.parse().unwrap());
                let (first, last): (i64, i64) = (first.parse().unwrap(), last.parse().unwrap());
                let at = flight
                    .unreceipted
                    .iter()
                    .position(|(p, _)| *p == part)
                    .unwrap();
                let (_, want) = flight.unreceipted.remove(at);
                assert_eq!(
                    last - first + 1,
                    want.len() as i64,
                    "step {step} part {part}: the receipt's seqs do not match the message"
                );
                assert!(
                    first > flight.floor,
                    "step {step} part {part}: seq {first} was given again (already stored up to \
                     {})",
                    flight.floor
                );
                for (seq, r) in (first..).zip(want) {
                    assert!(
                        self.stored.insert(seq, r).is_none(),
                        "step {step} part {part}: seq {seq} was given to two readings"
                    );
                }
                self.high = self.high.max(last);
            }
            ["target", _, target] => flight.target = Some(target.parse().unwrap()),
            ["done", step] => {
                let step: usize = step.parse().unwrap();
                assert!(
                    flight.unreceipted.is_empty(),
                    "step {step} finished without every receipt"
                );
                if let Some(t) = flight.target {
                    self.cursor = self.cursor.max(t);
                }
                *flight = InFlight::default();
                self.next = step + 1;
            }
            ["end"] => return true,
            other => panic!("unexpected line from the child: {other:?}"),
        }
        false
    }

    /// Compares the buffer with the model; readings of `flight` that were committed without a
    /// receipt join the model.
    fn check(&mut self, path: &Path, flight: &InFlight, when: &str) {
        // A child killed while it created the buffer may leave no file, an empty one, or one
        // with a hot rollback journal (before the buffer switched to WAL) that only a writer
        // may roll back, or a schema whose later migrations have not run yet: the next child
        // finishes it.
        let created = path.exists()
            && match db::open_read_only(path).query_row(
                "SELECT count(*) = 5 FROM sqlite_master \
                 WHERE name IN ('sensors', 'sync_cursor', 'batches', 'folds', 'chunks')",
                [],
                |r| r.get::<_, bool>(0),
            ) {
                Ok(created) => created,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ReadOnly
                        && path.with_extension("db-journal").exists() =>
                {
                    false
                }
                Err(e) => panic!("{when}: cannot read the buffer: {e}"),
            };
        if !created {
            assert!(
                self.stored.is_empty() && self.cursor == 0,
                "{when}: the buffer is gone"
            );
            return;
        }
        let conn = db::open_read_only(path);
        let all = db::stored_readings(&conn);
        let keys: BTreeMap<i64, String> = conn
            .prepare("SELECT id, key FROM sensors")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut found: BTreeMap<i64, Expected> = BTreeMap::new();
        for r in &all {
            let row = Expected {
                key: keys.get(&r.1).cloned().unwrap_or_default(),
                ts: r.2,
                value: r.3.map(f64::to_bits),
                quality: r.4,
            };
            assert!(
                found.insert(r.0, row).is_none(),
                "{when}: seq {} is stored twice",
                r.0
            );
        }
        let newest = found.keys().next_back().copied().unwrap_or(0);
        assert_eq!(
            found.keys().copied().collect::<Vec<_>>(),
            (1..=newest).collect::<Vec<_>>(),
            "{when}: the stored seqs are not contiguous from 1"
        );
        for (seq, want) in &self.stored {
            assert_eq!(
                found.get(seq),
                Some(want),
                "{when}: the reading with seq {seq} (receipted) is not stored as it was sent"
            );
        }
        // Anything beyond is whole messages that were in flight.
        let mut seq = self.stored.keys().next_back().copied().unwrap_or(0) + 1;
        let mut left: Vec<&(usize, Vec<Expected>)> = flight.unreceipted.iter().collect();
        while seq <= newest {
            let at = left
                .iter()
                .position(|(_, want)| found.get(&seq) == want.first())
                .unwrap_or_else(|| {
                    panic!(
                        "{when}: seq {seq} holds {:?}, which no message in flight starts with",
                        found.get(&seq)
                    )
                });
            let (part, want) = left.remove(at);
            self.landed.0 += 1;
            for r in want {
                assert_eq!(
                    found.get(&seq),
                    Some(r),
                    "{when}: message {part} in flight is stored only in part (at seq {seq})"
                );
                self.stored.insert(seq, r.clone());
                seq += 1;
            }
        }
        self.high = self.high.max(newest);
        self.landed.1 += left.len();

        let sync = SyncReader::open(path).unwrap();
        let cursor = sync.cursor(Stream::Readings).unwrap();
        let allowed = flight.target.map_or(self.cursor, |t| self.cursor.max(t));
        assert!(
            cursor == self.cursor || cursor == allowed,
            "{when}: the sync cursor is {cursor}, expected {} (or {allowed} in flight)",
            self.cursor
        );
        self.cursor = cursor;
        let unsynced: Vec<i64> = sync
            .readings(cursor, 1 << 20)
            .unwrap()
            .rows
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(
            unsynced,
            ((cursor + 1)..=newest).collect::<Vec<_>>(),
            "{when}: sync does not read exactly the readings after its cursor {cursor}"
        );
    }
}

/// Runs `ops` with a kill at each of `kills` (a step of the current child, 0 being its opening,
/// and a delay in microseconds after that step began), then to the end. After a kill the next
/// child goes on after the step that was in flight.
fn run_plan(ops: &[Op], kills: &[(usize, u64)]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("markoff.db");
    let plan = dir.path().join("plan");
    let base_ms = Timestamp::now().as_millis() - 3_600_000;
    let mut text = format!("{base_ms}\n{}\n", path.display());
    for op in ops {
        text.push_str(&op.line());
        text.push('\n');
    }
    std::fs::write(&plan, text).unwrap();
    let mut model = Model {
        base_ms,
        ops: ops.to_vec(),
        stored: BTreeMap::new(),
        cursor: 0,
        high: 0,
        next: 0,
        landed: (0, 0),
    };
    let mut planned = kills.iter().copied();
    loop {
        let from = model.next;
        let kill = planned.next().filter(|_| from < ops.len());
        let mut running = spawn_child(dir.path(), &plan, from);
        let mut flight = InFlight::default();
        let mut killed = false;
        // The begin line that the kill waits for: "begin open" or "begin <step>".
        let trigger = kill.map(|(k, delay)| {
            let k = k % (ops.len() - from + 1);
            let word = if k == 0 {
                "open".to_owned()
            } else {
                (from + k - 1).to_string()
            };
            (format!("begin {word}"), delay)
        });
        let mut ended = loop {
            let line = running.lines.recv_timeout(PATIENCE).unwrap_or_else(|e| {
                let _killed = running.child.kill();
                panic!(
                    "the child printed nothing for {PATIENCE:?} ({e}); its log:\n{}",
                    Model::child_log(dir.path())
                )
            });
            if model.take(&line, &mut flight) {
                break true;
            }
            if line.starts_with("begin ") {
                // A child that died already cannot read it; its end shows below.
                let _dead_child_cannot_read = running.go.write_all(b"go\n");
                if trigger.as_ref().is_some_and(|(at, _)| *at == line) {
                    let delay = trigger.as_ref().map_or(0, |t| t.1);
                    std::thread::sleep(Duration::from_micros(delay));
                    running.child.kill().unwrap();
                    killed = true;
                    break false;
                }
            }
        };
        if !ended {
            // Whatever the child printed before it died.
            while let Ok(line) = running.lines.recv_timeout(PATIENCE) {
                if model.take(&line, &mut flight) {
                    ended = true;
                    break;
                }
            }
        }
        let status = running.child.wait().unwrap();
        let when = format!("after a child from step {from} ({status})");
        // A child killed just after it printed its last line ended its plan, but by the kill.
        if ended && !killed {
            assert!(
                status.success(),
                "the last child failed; its log:\n{}",
                Model::child_log(dir.path())
            );
        }
        model.check(&path, &flight, &when);
        // The step in flight is over: what it committed is in the model now, the rest is lost,
        // as a source whose message was not acknowledged sends it again later.
        if let Some(step) = flight.step {
            model.next = step + 1;
        }
        if ended {
            assert_eq!(model.next, ops.len());
            eprintln!(
                "{} steps, {} kills; messages in flight at a kill: {} committed, {} not",
                ops.len(),
                kills.len(),
                model.landed.0,
                model.landed.1
            );
            return;
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(1usize..400, 1..4).prop_map(Op::Write),
        2 => (0u16..=1000).prop_map(Op::Cursor),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        max_shrink_iters: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random plans, each killed at a few random points (the opening included) and run on to
    /// the end.
    #[test]
    fn committed_readings_survive_kill_9_at_any_step_exactly_once(
        ops in prop::collection::vec(op(), 4..24),
        kills in prop::collection::vec((0usize..64, 0u64..30_000), 1..6),
    ) {
        run_plan(&ops, &kills);
    }
}

/// Every step of one plan in turn: the child is killed 0 to 12 ms after that step began (at its
/// opening, at each commit, cursor move and reopening).
#[test]
fn a_kill_at_each_step_of_a_plan_loses_nothing_committed() {
    let ops = vec![
        Op::Write(vec![50]),
        Op::Write(vec![120, 7, 300]),
        Op::Cursor(500),
        Op::Write(vec![1]),
        Op::Reopen,
        Op::Write(vec![250, 250]),
        Op::Cursor(1000),
        Op::Write(vec![33]),
    ];
    // After a kill the next child starts after the step that was in flight, so kills at its
    // opening and at its first step land on each step in turn.
    let delays = [0, 500, 2_000, 5_000, 12_000];
    let kills: Vec<(usize, u64)> = (0..2 * ops.len())
        .map(|i| (i % 2, delays[i % delays.len()]))
        .collect();
    run_plan(&ops, &kills);
}
