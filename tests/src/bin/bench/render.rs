//! `bench render`: how long the pictures take, on one core: a floor plan with 200 sensors (rooms
//! with polygons, and the same floor without geometry, as a grid), a 7-day chart of a sensor read
//! once a minute (10,080 points), each drawn and encoded as PNG; then the same chart read from a
//! real buffer (SQLite query included), and a 7-day chart of a sensor read every second (604,800
//! readings, thinned as they are read).
//!
//! Every figure is the median (and p95) of `--runs` repetitions after one warm-up. The pictures
//! are checked: the markers and alarm rings where they must be, the gap in the chart, a PNG of the
//! right size.

use std::time::Duration;

use markoff::config::{StoreConfig, UtcOffset};
use markoff::model::{
    Lang, Quality, Reading, SensorId, SensorKind, SensorMeta, Severity, Timestamp,
};
use markoff::render::{
    self, AlarmMark, AlarmPeriod, ChartInput, ChartOptions, ChartPoint, FloorInput, Measure,
    PlanInput, RoomInput, SensorInput, Side, Threshold,
};
use markoff::service::metrics::Metrics;
use markoff::service::supervisor::Heartbeat;
use markoff::store::{Store, StoreOptions};
use tokio::time::Instant;

use super::{Verdict, sys};

/// Options of `bench render`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Sensors on the floor plan (four per room).
    #[arg(long, default_value_t = 200, value_parser = sys::parse_positive)]
    sensors: u64,
    /// Days of history in the charts.
    #[arg(long, default_value_t = 7, value_parser = sys::parse_positive)]
    days: u64,
    /// Timed repetitions of each picture.
    #[arg(long, default_value_t = 30, value_parser = sys::parse_positive)]
    runs: u64,
    /// Skip the charts read from a buffer (they first write 615,000 readings into one).
    #[arg(long)]
    no_buffer: bool,
}

const TARGET_MS: f64 = 50.0;
const MIN: i64 = 60_000;

/// Median and p95 of some durations, in ms.
fn stats(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort_unstable();
    let at = |p: f64| {
        d.get(((d.len() as f64 * p) as usize).min(d.len().saturating_sub(1)))
            .map_or(0.0, |x| x.as_secs_f64() * 1e3)
    };
    (at(0.5), at(0.95))
}

/// Times `f` `runs` times after a warm-up; returns (median, p95) in ms and the last result.
fn time<T>(runs: u64, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<((f64, f64), T)> {
    let mut last = f()?;
    let mut d = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        last = f()?;
        d.push(t.elapsed());
    }
    Ok((stats(d), last))
}

/// PNG signature and size from the IHDR chunk.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return None;
    }
    let be = |i: usize| png.get(i..i + 4)?.try_into().ok().map(u32::from_be_bytes);
    Some((be(16)?, be(20)?))
}

fn verdict_of(ok: bool) -> &'static str {
    if ok { "ok" } else { "FAILED" }
}

fn target(ms: f64) -> &'static str {
    if ms < TARGET_MS { "met" } else { "MISSED" }
}

/// A floor of `n` sensors, four per room, rooms 10 m x 8 m in rows of ten; every 40th sensor
/// alarmed, every 25th stale.
fn floor(n: u64, geometry: bool, now: Timestamp) -> PlanInput {
    let rooms = n.div_ceil(4);
    let cols = rooms.min(10);
    let rows = rooms.div_ceil(cols);
    let room_list: Vec<RoomInput> = (0..rooms)
        .map(|r| {
            let (x, y) = ((r % cols) as f64 * 10.0, (r / cols) as f64 * 8.0);
            RoomInput {
                id: format!("{}", 301 + r),
                name: format!("Office {}", 301 + r),
                tenant: (r % 3 == 0).then(|| "Acme Ltd".to_owned()),
                polygon: geometry
                    .then(|| vec![(x, y), (x + 10.0, y), (x + 10.0, y + 8.0), (x, y + 8.0)]),
            }
        })
        .collect();
    let sensors = (0..n)
        .map(|i| {
            let room = 301 + i / 4;
            SensorInput {
                id: format!("f3.r{room}.t{}", i % 4),
                name: format!("Room {room} temperature {}", i % 4),
                kind: "temperature".into(),
                unit: "°C".into(),
                room: Some(room.to_string()),
                at: None,
                value: Some(17.0 + (i * 37 % 100) as f64 / 10.0),
                quality: Quality::Good,
                ts: Some(Timestamp(
                    now.0 - if i % 25 == 7 { 3_600_000 } else { 30_000 },
                )),
                alarm: (i % 40 == 3).then_some(AlarmMark {
                    severity: if i % 80 == 3 {
                        Severity::Critical
                    } else {
                        Severity::High
                    },
                    active: true,
                }),
            }
        })
        .collect();
    PlanInput {
        building: "Lenina 17".into(),
        floor: FloorInput {
            id: "3".into(),
            name: None,
            size: geometry.then_some((cols as f64 * 10.0, rows as f64 * 8.0)),
        },
        rooms: room_list,
        sensors,
        measure: Measure::Temperature,
        now,
        stale_after: Duration::from_secs(900),
        utc_offset: UtcOffset::from_seconds(5 * 3600).unwrap_or(UtcOffset::UTC),
        lang: Lang::Ru,
        width_px: render::PLAN_WIDTH,
        background: None,
    }
}

/// `days` of one reading a minute with a two-hour hole on day 2, an hour of communication errors
/// on day 4, a limit and an alarm period.
fn chart(days: u64, now: Timestamp) -> ChartInput {
    let minutes = i64::try_from(days).unwrap_or(7) * 1440;
    let from = now.0 - minutes * MIN;
    let points = (0..=minutes)
        .filter(|i| !(1440 + 600..1440 + 720).contains(i))
        .map(|i| ChartPoint {
            ts: from + i * MIN,
            value: (!(4 * 1440..4 * 1440 + 60).contains(&i)).then(|| {
                21.0 + 3.0 * (i as f64 / 1440.0 * std::f64::consts::TAU).sin()
                    + (i % 7) as f64 * 0.05
            }),
        })
        .collect();
    ChartInput {
        sensor: "f3.r301.temperature".into(),
        name: "Room 301 temperature".into(),
        unit: "°C".into(),
        location: Some("3 / 301".into()),
        from: Timestamp(from),
        to: now,
        points,
        thresholds: vec![Threshold {
            alert: "RoomHot".into(),
            side: Side::Above,
            limit: 23.5,
            severity: Severity::High,
        }],
        alarms: vec![AlarmPeriod {
            alert: "RoomHot".into(),
            severity: Severity::High,
            from: from + 2 * 1440 * MIN + 300 * MIN,
            to: Some(from + 2 * 1440 * MIN + 420 * MIN),
        }],
        utc_offset: UtcOffset::from_seconds(5 * 3600).unwrap_or(UtcOffset::UTC),
        lang: Lang::En,
        size: render::CHART_SIZE,
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    println!("bench render: {}", sys::machine());
    let mut verdict = Verdict::Checked;
    let now = Timestamp::now();
    for geometry in [true, false] {
        let input = floor(args.sensors, geometry, now);
        let ((draw, draw95), pic) = time(args.runs, || Ok(render::draw_plan(&input)?))?;
        let ((total, total95), png) = time(args.runs, || Ok(render::plan_to_png(&input)?))?;
        let size = png_size(&png);
        let alarmed: Vec<_> = pic
            .markers
            .iter()
            .filter(|m| m.alarm_pixel.is_some())
            .collect();
        let rings_ok = alarmed.iter().all(|m| {
            m.alarm_pixel.is_some_and(|(x, y)| {
                let p = pic.image.get_pixel(x, y).0;
                p == render::severity_colour(Severity::Critical).0
                    || p == render::severity_colour(Severity::High).0
            })
        });
        let stale = pic.markers.iter().filter(|m| m.stale).count();
        let check = pic.markers.len() as u64 == args.sensors
            && alarmed.len() as u64 == (0..args.sensors).filter(|i| i % 40 == 3).count() as u64
            && rings_ok
            && stale as u64 == (0..args.sensors).filter(|i| i % 25 == 7).count() as u64
            && size.is_some_and(|(w, _)| w == render::PLAN_WIDTH);
        println!(
            "  plan, {} sensors in {} rooms ({}): draw {draw:.1} ms (p95 {draw95:.1}), with PNG {total:.1} ms (p95 {total95:.1}), {}x{} px, {} KiB; target < {TARGET_MS:.0} ms: {}",
            args.sensors,
            args.sensors.div_ceil(4),
            if geometry {
                "polygons"
            } else {
                "no geometry: a grid"
            },
            size.map_or(0, |s| s.0),
            size.map_or(0, |s| s.1),
            png.len().div_ceil(1024),
            target(total95)
        );
        println!(
            "  check: {} markers, {} alarm rings in their severity's colour, {stale} stale: {}",
            pic.markers.len(),
            alarmed.len(),
            verdict_of(check)
        );
        if !check {
            verdict = Verdict::CheckFailed;
        }
    }

    let input = chart(args.days, now);
    let ((draw, draw95), pic) = time(args.runs, || Ok(render::draw_chart(&input)?))?;
    let ((total, total95), png) = time(args.runs, || Ok(render::chart_to_png(&input)?))?;
    let size = png_size(&png);
    // The hole on day 2 has no line; day 3 has one.
    let from = input.from.as_millis();
    let column_has_line = |ts: i64| {
        let (x, _) = pic.frame.pixel(ts, 0.0);
        let (a, b) = (
            pic.frame.px_y.1.min(pic.frame.px_y.0),
            pic.frame.px_y.1.max(pic.frame.px_y.0),
        );
        (a..=b).any(|y| {
            let p = pic
                .image
                .get_pixel(u32::try_from(x).unwrap_or(0), u32::try_from(y).unwrap_or(0))
                .0;
            p == [25, 90, 170]
        })
    };
    let check = pic.lines == 3
        && !column_has_line(from + 1440 * MIN + 660 * MIN)
        && column_has_line(from + 3 * 1440 * MIN)
        && size == Some(render::CHART_SIZE);
    println!(
        "  chart, {} days x 1/min = {} points: draw {draw:.1} ms (p95 {draw95:.1}), with PNG {total:.1} ms (p95 {total95:.1}), {} KiB; target < {TARGET_MS:.0} ms: {}",
        args.days,
        sys::thousands(input.points.len() as u64),
        png.len().div_ceil(1024),
        target(total95)
    );
    println!(
        "  check: {} lines (the hole and the errors break it), no line across the hole: {}",
        pic.lines,
        verdict_of(check)
    );
    if !check {
        verdict = Verdict::CheckFailed;
    }
    if !args.no_buffer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        if !rt.block_on(from_buffer(args, now))? {
            verdict = Verdict::CheckFailed;
        }
    }
    Ok(verdict)
}

/// Charts read from a real buffer: a sensor read once a minute and one read every second.
async fn from_buffer(args: &Args, now: Timestamp) -> anyhow::Result<bool> {
    let dir = tempfile::tempdir_in(sys::default_base_dir())?;
    let path = dir.path().join("render.db");
    let store = Store::open(
        &StoreConfig::default(),
        &path,
        StoreOptions::default(),
        Metrics::new(),
        Heartbeat::new("bench"),
    )?;
    let meta = |id: &str| SensorMeta {
        id: SensorId::new(id),
        name: id.to_owned(),
        kind: SensorKind::Temperature,
        unit: "°C".into(),
        floor: Some("3".into()),
        room: Some("301".into()),
        source: "bench".into(),
    };
    store
        .ingest
        .register_sensors(vec![meta("minutely"), meta("secondly")])
        .await?;
    let span = i64::try_from(args.days)? * 86_400_000;
    let from = now.0 - span;
    let wave = |t: i64| 21.0 + 3.0 * (t as f64 / 86_400_000.0 * std::f64::consts::TAU).sin();
    let started = Instant::now();
    let mut written = 0u64;
    for (id, step) in [("minutely", MIN), ("secondly", 1000)] {
        let sensor = SensorId::new(id);
        let mut batch = Vec::with_capacity(5000);
        let mut t = from + step;
        while t <= now.0 {
            batch.push(Reading::good(sensor.clone(), Timestamp(t), wave(t)));
            if batch.len() == 5000 {
                store.ingest.submit(std::mem::take(&mut batch)).await?;
            }
            t += step;
            written += 1;
        }
        store.ingest.write(batch).await?;
    }
    println!(
        "  buffer: {} readings written in {:.1} s",
        sys::thousands(written),
        started.elapsed().as_secs_f64()
    );
    let cfg =
        markoff::config::parse_str("[gateway]\nid = \"bench\"\n", std::path::Path::new("bench"))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let buffer = markoff::store::open_read_only(&path)?;
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut ok = true;
    for (id, what) in [("minutely", "1/min"), ("secondly", "1/s, thinned as read")] {
        let opts = ChartOptions {
            since: Duration::from_millis(u64::try_from(span)?),
            now,
            lang: Lang::En,
            size: render::CHART_SIZE,
        };
        let ((total, total95), png) = time(args.runs.min(10), || {
            Ok(render::chart_png_from_buffer(&cfg, &buffer, id, opts)?)
        })?;
        let rows: i64 = conn.query_row(
            "SELECT count(*) FROM readings r JOIN sensors s ON s.id = r.sensor WHERE s.key = ?1",
            [id],
            |r| r.get(0),
        )?;
        let good = png_size(&png) == Some(render::CHART_SIZE);
        ok &= good;
        println!(
            "  chart from the buffer, {} days of {} readings ({what}): query + draw + PNG {total:.1} ms (p95 {total95:.1}); check: {}",
            args.days,
            sys::thousands(u64::try_from(rows)?),
            verdict_of(good)
        );
    }
    store.writer.drain();
    store.writer.finished().await;
    Ok(ok)
}
