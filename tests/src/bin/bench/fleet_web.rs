//! `bench central-web`: the office web application over a centre at a fleet's size. A database
//! `markoff_t_fleetweb` is filled with SQL (`generate_series`, as the superuser) to the shape of
//! `--buildings` buildings of one gateway each after a year: site metadata (10 floors of 10 rooms
//! with polygons), `--sensors` sensors per gateway with their latest values, a year of alarm
//! events (20 alarms per gateway, raised, acknowledged and cleared once a week; 3 still open),
//! the cursors, the monthly partitions of the last year, an hour of raw readings of one gateway,
//! and a year of the 10-minute rollup for `--rollup-gateways` gateways (one sensor each). The
//! real `markoff-central serve` then runs as its own web role; an administrator and a user of a
//! tenth of the buildings request the buildings list and a building page, and the administrator
//! an hour, a month and a year of one sensor (the year from the daily rollup, which the bench
//! fills as `markoff-central maintain` does, with the same function), one request at a time
//! over loopback HTTP;
//! p50/p95/max and the CPU time per request of the server and of its PostgreSQL backends are
//! reported. Last, the monthly partitions ahead and the retention (`drop_partitions`) are checked.
//!
//! The database is kept between runs when it holds the same shape (the generation takes
//! minutes); `--drop` removes it at the end (`bench fleet --drop` does too).

use std::time::Duration;

use markoff_tests::central_web::{CentralWeb, WebOptions, add_user};
use markoff_tests::pg::PgTestDb;
use tokio::time::Instant;

use crate::Verdict;
use crate::sys;

/// Command-line options of `bench central-web`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Buildings, one gateway each.
    #[arg(long, default_value_t = 1000)]
    buildings: u32,
    /// Sensors per gateway.
    #[arg(long, default_value_t = 1000)]
    sensors: u32,
    /// Gateways with a year of the 10-minute rollup (one sensor each).
    #[arg(long, default_value_t = 100)]
    rollup_gateways: u32,
    /// Requests per route (after 3 unmeasured ones).
    #[arg(long, default_value_t = 40)]
    requests: usize,
    /// Drop the database at the end.
    #[arg(long)]
    drop: bool,
}

const DB: &str = "markoff_t_fleetweb";
/// What `generate` makes; kept data of another generation is made again.
const GENERATION: &str = "v2";

pub(crate) fn run(args: &Args) -> anyhow::Result<Verdict> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: &Args) -> anyhow::Result<Verdict> {
    anyhow::ensure!(
        markoff_tests::services::require_postgres(),
        "PostgreSQL is needed"
    );
    println!(
        "bench central-web: {} buildings x {} sensors, a year of alarms, a year of rollup for {} gateways",
        args.buildings, args.sensors, args.rollup_gateways
    );
    println!(
        "CPU {}; load average {}",
        sys::cpu_model(),
        sys::load_average().unwrap_or_default()
    );
    let mut pg = PgTestDb::reuse(DB).await;
    let mut admin = pg.admin().await;
    let shape = format!(
        "{GENERATION} {} {} {}",
        args.buildings, args.sensors, args.rollup_gateways
    );
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS public.fleet_web_shape (shape text NOT NULL, made timestamptz NOT NULL)",
    )
    .execute(&mut admin)
    .await?;
    let have: Option<(String, f64)> = sqlx::query_as(
        "SELECT shape, extract(epoch FROM now() - made)::float8 FROM public.fleet_web_shape",
    )
    .fetch_optional(&mut admin)
    .await?;
    // Kept data ages: the latest values and open alarms are only "current" for a while.
    if have
        .as_ref()
        .is_some_and(|(s, age)| *s == shape && *age < 6.0 * 3600.0)
    {
        println!("data kept from an earlier run ({shape})");
        refresh(&mut admin).await?;
    } else {
        let t = Instant::now();
        generate(&mut admin, args).await?;
        sqlx::query("TRUNCATE public.fleet_web_shape")
            .execute(&mut admin)
            .await?;
        sqlx::query("INSERT INTO public.fleet_web_shape VALUES ($1, now())")
            .bind(&shape)
            .execute(&mut admin)
            .await?;
        println!("generated in {:.0} s", t.elapsed().as_secs_f64());
    }
    // The daily rollup, as `markoff-central maintain` makes it (the same function): after a
    // generation the whole year, on kept data only what changed since.
    let t = Instant::now();
    let r =
        markoff_cloud_sync::admin::rollup_daily(&mut admin, markoff_cloud_sync::admin::ROLLUP_WAIT)
            .await?;
    println!(
        "  daily rollup (maintain): {} rows written for {} gateways in {:.1} s, complete before {}{}",
        r.rows,
        r.gateways,
        t.elapsed().as_secs_f64(),
        r.through,
        if r.waited_out {
            " (older transactions still open: new days left to the next run)"
        } else {
            ""
        }
    );
    sqlx::raw_sql("ANALYZE markoff.readings_1d, markoff.readings_1d_pending")
        .execute(&mut admin)
        .await?;
    let sizes: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT c.relname::text, c.reltuples::int8, \
                pg_size_pretty(pg_total_relation_size(c.oid)) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'markoff' AND c.relkind IN ('r', 'p') \
           AND c.relname IN ('buildings', 'gateways', 'floors', 'rooms', 'sensors', \
                             'sensor_latest', 'alarm_events', 'alarm_latest', 'readings_10m', \
                             'readings_1d', 'office_requests', 'alarm_comments') \
         ORDER BY 1",
    )
    .fetch_all(&mut admin)
    .await?;
    for (t, rows, size) in sizes {
        println!("  {t}: {rows} rows, {size}");
    }
    let parts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'markoff.readings'::regclass",
    )
    .fetch_one(&mut admin)
    .await?;
    println!("  readings: {parts} partitions");

    // The web role of an earlier run (same name in the kept database).
    let old_role = format!("mkt_{}_0_web", DB.trim_start_matches("markoff_t_"));
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&old_role)
            .fetch_one(&mut admin)
            .await?;
    if exists {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP OWNED BY {old_role}; DROP ROLE {old_role}"
        )))
        .execute(&mut admin)
        .await?;
    }
    let web = CentralWeb::start(&mut pg, &WebOptions::default()).await;
    let login = format!("bench{}", std::process::id());
    let password = "fleet web bench password 1";
    add_user(&pg, &login, "Bench", password).await;
    let client = web.client();
    let answer = client.login(&login, password).await;
    anyhow::ensure!(answer.status == 303, "login failed: {}", answer.status);
    // A user who sees a tenth of the fleet, granted building by building (not an
    // administrator): every statement is then limited by row-level security to those buildings.
    let granted: Vec<String> = (0..args.buildings)
        .step_by(10)
        .map(|i| format!("b-{i:04}"))
        .collect();
    let some_login = format!("bench{}some", std::process::id());
    markoff_tests::central_web::add_user_seeing(
        &pg,
        &some_login,
        "Bench (some buildings)",
        password,
        markoff_cloud_sync::web::Access::Buildings(&granted),
    )
    .await;
    let some = web.client();
    let answer = some.login(&some_login, password).await;
    anyhow::ensure!(answer.status == 303, "login failed: {}", answer.status);

    let mid = args.buildings / 2;
    let mid = mid - mid % 10;
    let routes = [
        (&client, "/".to_owned(), "buildings list (HTML)"),
        (
            &client,
            "/api/buildings".to_owned(),
            "buildings list (JSON)",
        ),
        (
            &client,
            format!("/buildings/b-{mid:04}"),
            "building page (HTML)",
        ),
        (
            &client,
            format!("/api/buildings/b-{mid:04}"),
            "building (JSON)",
        ),
        (&some, "/".to_owned(), "list, user of 1/10 of the buildings"),
        (
            &some,
            format!("/buildings/b-{mid:04}"),
            "building, user of 1/10",
        ),
        (
            &client,
            "/sensors/gw-0001/1?range=30d".to_owned(),
            "a month of one sensor (rollup)",
        ),
        (
            &client,
            "/sensors/gw-0001/1?range=365d".to_owned(),
            "a year of one sensor (daily rollup)",
        ),
        (
            &client,
            "/api/sensors/gw-0001/1?range=365d".to_owned(),
            "a year of one sensor (JSON)",
        ),
        (
            &client,
            "/sensors/gw-0001/1?range=1h".to_owned(),
            "an hour of one sensor (readings)",
        ),
    ];
    let mut verdict = Verdict::Checked;
    let cpu = Cpu {
        server: web.pid(),
        role: old_role.clone(),
    };
    println!(
        "{:<36} {:>8} {:>8} {:>8} {:>11} {:>10}  route",
        "what", "p50 ms", "p95 ms", "max ms", "CPU ms/req", "bytes"
    );
    println!(
        "{:<36} {:>8} {:>8} {:>8} {:>11}",
        "", "", "", "", "serve  PG"
    );
    for (client, path, what) in &routes {
        let mut times = Vec::with_capacity(args.requests);
        let mut bytes = 0;
        let mut cpu_before = None;
        for i in 0..args.requests + 3 {
            if i == 3 {
                cpu_before = Some(cpu.sample(&mut admin).await?);
            }
            let t = Instant::now();
            let a = client.get(path).await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if a.status != 200 {
                println!("  {path}: status {}", a.status);
                verdict = Verdict::CheckFailed;
                break;
            }
            bytes = a.body.len();
            if i >= 3 {
                times.push(ms);
            }
        }
        let cpu_ms = match cpu_before {
            Some(before) if !times.is_empty() => {
                let after = cpu.sample(&mut admin).await?;
                let per = |a: u64, b: u64| {
                    a.saturating_sub(b) as f64 * 1000.0 / ticks_per_second() / times.len() as f64
                };
                format!(
                    "{:>5.1} {:>5.1}",
                    per(after.0, before.0),
                    per(
                        after.1.values().sum(),
                        before
                            .1
                            .iter()
                            .filter(|(p, _)| after.1.contains_key(p))
                            .map(|(_, t)| t)
                            .sum()
                    )
                )
            }
            _ => "    -     -".to_owned(),
        };
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            times
                .get(((times.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        let target = if path.contains("/sensors/") && !path.contains("365d") {
            ""
        } else if pct(0.95) < 200.0 {
            "  (p95 < 200 ms: met)"
        } else {
            "  (p95 < 200 ms: MISSED)"
        };
        println!(
            "{what:<36} {:>8.1} {:>8.1} {:>8.1} {cpu_ms} {bytes:>10}  {path}{target}",
            pct(0.5),
            pct(0.95),
            pct(1.0)
        );
    }
    // A year of one sensor comes from the daily rollup and counts every reading of the
    // 10-minute rollup.
    let year = client.get("/api/sensors/gw-0001/1?range=365d").await.json();
    let counted: i64 = year["points"].as_array().map_or(0, |p| {
        p.iter()
            .map(|p| p["count"].as_i64().unwrap_or(0) + p["bad"].as_i64().unwrap_or(0))
            .sum()
    });
    let from = year["from"].as_str().unwrap_or_default().to_owned();
    let all: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(n + bad), 0)::int8 FROM markoff.readings_10m \
         WHERE gateway_id = 'gw-0001' AND sensor_id = 1 \
           AND bucket >= date_trunc('day', $1::timestamptz, 'UTC')",
    )
    .bind(&from)
    .fetch_one(&mut admin)
    .await?;
    println!(
        "a year of one sensor: source {}, {} buckets, {counted} readings counted, {all} in the \
         10-minute rollup of those days",
        year["source"],
        year["points"].as_array().map_or(0, Vec::len)
    );
    if year["source"] != "readings_1d" || counted != all || counted == 0 {
        verdict = Verdict::CheckFailed;
    }
    // The buildings list must list every building.
    let list = client.get("/api/buildings").await.json();
    let n = list
        .get("buildings")
        .and_then(|b| b.as_array())
        .or_else(|| list.as_array())
        .map_or(0, Vec::len);
    println!("buildings listed: {n}");
    if n != args.buildings as usize {
        verdict = Verdict::CheckFailed;
    }
    let list = some.get("/api/buildings").await.json();
    let n = list
        .get("buildings")
        .and_then(|b| b.as_array())
        .or_else(|| list.as_array())
        .map_or(0, Vec::len);
    println!("buildings listed to the user of 1/10: {n}");
    if n != granted.len() {
        verdict = Verdict::CheckFailed;
    }
    drop(web);
    if !retention(&mut admin).await? {
        verdict = Verdict::CheckFailed;
    }
    println!("load average {}", sys::load_average().unwrap_or_default());
    if args.drop {
        drop(admin);
        drop(pg);
        let mut conn = markoff_tests::pg::connect(&markoff_tests::pg::server_url("postgres")).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {DB} WITH (FORCE); DROP ROLE IF EXISTS {old_role}"
        )))
        .execute(&mut conn)
        .await?;
        println!("dropped {DB}");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(verdict)
}

/// Brings kept data up to date: contact, latest values and cursors as of now.
async fn refresh(admin: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "UPDATE markoff.gateways SET last_contact = now(); \
         UPDATE markoff.sync_cursors SET newest_ts = now(), updated_at = now(); \
         UPDATE markoff.sensor_latest SET ts = now() - (sensor_id % 10) * interval '1 second'",
    )
    .execute(admin)
    .await?;
    Ok(())
}

/// Fills the centre (see the module docs). Everything is keyed by gateway, as uploads write it.
async fn generate(admin: &mut sqlx::PgConnection, args: &Args) -> anyhow::Result<()> {
    let (b, s, rg) = (args.buildings, args.sensors, args.rollup_gateways);
    let steps: Vec<(&str, String)> = vec![
        (
            "empty",
            "TRUNCATE markoff.buildings, markoff.gateways, markoff.floors, markoff.rooms, \
             markoff.tenants, markoff.sensors, markoff.sensor_latest, markoff.alarm_events, \
             markoff.alarm_latest, markoff.readings, markoff.readings_10m, markoff.sync_cursors, \
             markoff.office_requests, markoff.alarm_comments CASCADE"
                .to_owned(),
        ),
        (
            "partitions",
            "SELECT markoff.ensure_partitions(1, 12)".to_owned(),
        ),
        (
            "buildings and gateways",
            format!(
                "INSERT INTO markoff.buildings (building_id, name, address) \
                 SELECT format('b-%s', lpad(i::text, 4, '0')), format('Building %s', i), \
                        format('%s Fleet Street', i + 1) \
                 FROM generate_series(0, {b} - 1) i; \
                 INSERT INTO markoff.gateways (gateway_id, building_id, role_name, last_contact) \
                 SELECT format('gw-%s', lpad(i::text, 4, '0')), format('b-%s', lpad(i::text, 4, '0')), \
                        format('mkt_fleetweb_gw_%s', i), now() \
                 FROM generate_series(0, {b} - 1) i"
            ),
        ),
        (
            "floors, rooms, tenants",
            "INSERT INTO markoff.floors (building_id, floor_id, name, level, width, height) \
             SELECT building_id, f::text, format('Floor %s', f), f, 60, 24 \
             FROM markoff.buildings, generate_series(1, 10) f; \
             INSERT INTO markoff.tenants (building_id, tenant_id, name) \
             SELECT building_id, format('t%s', t), format('Tenant %s', t) \
             FROM markoff.buildings, generate_series(1, 5) t; \
             INSERT INTO markoff.rooms (building_id, room_id, floor_id, name, tenant_id, polygon) \
             SELECT building_id, format('r%s%s', f, lpad(r::text, 2, '0')), f::text, \
                    format('Room %s%s', f, lpad(r::text, 2, '0')), format('t%s', 1 + r % 5), \
                    jsonb_build_array(jsonb_build_array(r * 6 - 6, 0), jsonb_build_array(r * 6, 0), \
                                      jsonb_build_array(r * 6, 10), jsonb_build_array(r * 6 - 6, 10)) \
             FROM markoff.buildings, generate_series(1, 10) f, generate_series(1, 10) r"
                .to_owned(),
        ),
        (
            "sensors and latest values",
            format!(
                "INSERT INTO markoff.sensors (gateway_id, sensor_id, key, name, kind, unit, floor, room, source) \
                 SELECT g.gateway_id, s, \
                        format('f%s.r%s%s.%s%s', fl, fl, lpad(rm::text, 2, '0'), k.kind, s), \
                        format('%s %s', k.kind, s), k.kind, k.unit, fl::text, \
                        format('r%s%s', fl, lpad(rm::text, 2, '0')), 'modbus' \
                 FROM markoff.gateways g, generate_series(1, {s}) s, \
                      LATERAL (SELECT 1 + ((s - 1) / 10) % 10 AS fl, 1 + (s - 1) % 10 AS rm) p, \
                      LATERAL (SELECT (ARRAY['temperature','humidity','co2','power','flow'])[1 + s % 5] AS kind, \
                                      (ARRAY['°C','%','ppm','kW','m³/h'])[1 + s % 5] AS unit) k \
                 ORDER BY g.gateway_id, s; \
                 INSERT INTO markoff.sensor_latest (gateway_id, sensor_id, seq, ts, value, quality) \
                 SELECT gateway_id, sensor_id, sensor_id, now() - (sensor_id % 10) * interval '1 second', \
                        20 + (sensor_id % 50) / 10.0, CASE WHEN sensor_id % 100 = 0 THEN 3 ELSE 0 END \
                 FROM markoff.sensors ORDER BY gateway_id, sensor_id"
            ),
        ),
        (
            "cursors",
            "INSERT INTO markoff.sync_cursors (gateway_id, stream, last_seq, newest_ts, head_seq) \
             SELECT gateway_id, st, 3153600000, now(), 3153600000 \
             FROM markoff.gateways, unnest(ARRAY['readings', 'alarm_events', 'metadata']) st"
                .to_owned(),
        ),
        (
            "a year of alarm events",
            // One statement per gateway and week, as uploads bring them: the trigger keeping
            // alarm_latest reads the statement's rows.
            "DO $$ DECLARE g text; BEGIN \
             FOR g IN SELECT gateway_id FROM markoff.gateways ORDER BY 1 LOOP \
             FOR wk IN 0 .. 52 LOOP \
             INSERT INTO markoff.alarm_events (gateway_id, seq, ts, alarm_id, alarm, rule, sensor, \
                 event, state, severity, value, message, actor, channel) \
             SELECT g, wk * 60 + row_number() OVER (ORDER BY a, e), \
                    now() - interval '365 days' + wk * interval '7 days' + a * interval '1 hour' \
                        + e * interval '10 minutes', \
                    a, format('high/s%s', a), 'high', format('f1.r1%s.temperature%s', lpad(a::text, 2, '0'), a), \
                    (ARRAY['raised', 'acked', 'cleared'])[e + 1], \
                    (ARRAY['active_unacked', 'active_acked', 'normal'])[e + 1], \
                    'warning', 30.5, 'Temperature above 30 °C', \
                    CASE WHEN e = 1 THEN 'operator' END, CASE WHEN e = 1 THEN 'web' END \
             FROM generate_series(1, 20) a, generate_series(0, 2) e \
             WHERE NOT (wk = 52 AND (a > 3 OR e > 0)); \
             END LOOP; END LOOP; END $$"
                .to_owned(),
        ),
        (
            "a year of office requests and comments",
            // Every weekly acknowledgement was asked for from the office and commented on; the
            // three alarms still open have an acknowledgement pending.
            "INSERT INTO markoff.office_requests (gateway_id, alarm_id, action, login, \
                 display_name, requested_at, state, actor, answered_at) \
             SELECT gateway_id, alarm_id, 'ack', 'operator', 'Operator', ts - interval '1 minute', \
                    'done', 'operator', ts \
             FROM markoff.alarm_events WHERE event = 'acked' ORDER BY ts, gateway_id; \
             INSERT INTO markoff.office_requests (gateway_id, alarm_id, action, login, \
                 display_name, requested_at) \
             SELECT gateway_id, alarm_id, 'ack', 'operator', 'Operator', now() \
             FROM markoff.alarm_latest WHERE state <> 'normal'; \
             INSERT INTO markoff.alarm_comments (gateway_id, alarm_id, author, body, created_at) \
             SELECT gateway_id, alarm_id, 'Operator', 'Checked on site, the valve is closed.', ts \
             FROM markoff.alarm_events WHERE event = 'acked' ORDER BY ts, gateway_id"
                .to_owned(),
        ),
        (
            "an hour of raw readings of one gateway",
            format!(
                "INSERT INTO markoff.readings (gateway_id, seq, sensor_id, ts, value, quality) \
                 SELECT 'gw-0001', row_number() OVER (), s, t, 20 + random(), 0 \
                 FROM generate_series(now() - interval '1 hour', now(), interval '10 seconds') t, \
                      generate_series(1, {s}) s"
            ),
        ),
        (
            "a year of the rollup",
            format!(
                "INSERT INTO markoff.readings_10m (gateway_id, sensor_id, bucket, n, sum, min, max, bad) \
                 SELECT g.gateway_id, 1, bk, 60, 60 * (20 + sin(extract(epoch FROM bk) / 86400 * 6.28)), \
                        19, 22, 0 \
                 FROM (SELECT gateway_id FROM markoff.gateways ORDER BY 1 LIMIT {rg}) g, \
                      generate_series(date_bin(interval '10 minutes', now() - interval '365 days', \
                                               timestamptz '2000-01-01 00:00:00+00'), \
                                      now(), interval '10 minutes') bk \
                 ORDER BY bk, g.gateway_id"
            ),
        ),
        (
            // The generation rewrote each alarm's row of alarm_latest 53 times in one
            // transaction; uploads spread over a year leave no such bloat behind autovacuum.
            "compact alarm_latest",
            "VACUUM FULL markoff.alarm_latest".to_owned(),
        ),
        (
            // What autovacuum does over a year: statistics and the visibility map.
            "vacuum and analyze",
            "VACUUM ANALYZE markoff.buildings, markoff.gateways, markoff.floors, markoff.rooms, \
             markoff.tenants, markoff.sensors, markoff.sensor_latest, markoff.alarm_events, \
             markoff.alarm_latest, markoff.readings_10m, markoff.sync_cursors, \
             markoff.office_requests, markoff.alarm_comments, markoff.readings"
                .to_owned(),
        ),
    ];
    for (what, sql) in steps {
        let t = Instant::now();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *admin)
            .await
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        println!("  {what}: {:.1} s", t.elapsed().as_secs_f64());
    }
    Ok(())
}

/// The monthly partitions at a year's size: the coming months exist (`markoff-central
/// maintain`), and a month older than the year kept is dropped by the retention
/// (`maintain --keep-months 12`) while the year stays. Returns whether both held.
async fn retention(admin: &mut sqlx::PgConnection) -> anyhow::Result<bool> {
    let months = "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                  WHERE i.inhparent = 'markoff.readings'::regclass \
                    AND c.relname ~ '^readings_[0-9]{4}_[0-9]{2}$'";
    let t = Instant::now();
    let created: i32 = sqlx::query_scalar("SELECT markoff.ensure_partitions(3, 13)")
        .fetch_one(&mut *admin)
        .await?;
    let made_ms = t.elapsed().as_secs_f64() * 1000.0;
    let before: i64 = sqlx::query_scalar(months).fetch_one(&mut *admin).await?;
    // A reading in the month that falls out of the year.
    sqlx::query(
        "INSERT INTO markoff.readings (gateway_id, seq, sensor_id, ts, value, quality) \
         VALUES ('gw-0000', -1, 1, date_trunc('month', now() AT TIME ZONE 'UTC') \
                 AT TIME ZONE 'UTC' - interval '13 months' + interval '1 day', 1, 0)",
    )
    .execute(&mut *admin)
    .await?;
    let t = Instant::now();
    let dropped: i32 = sqlx::query_scalar("SELECT markoff.drop_partitions(12)")
        .fetch_one(&mut *admin)
        .await?;
    let drop_ms = t.elapsed().as_secs_f64() * 1000.0;
    let after: i64 = sqlx::query_scalar(months).fetch_one(&mut *admin).await?;
    let ahead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM generate_series(1, 3) m \
         WHERE to_regclass(format('markoff.readings_%s', to_char(now() AT TIME ZONE 'UTC' \
               + make_interval(months => m), 'YYYY_MM'))) IS NOT NULL",
    )
    .fetch_one(&mut *admin)
    .await?;
    let old_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM markoff.readings WHERE gateway_id = 'gw-0000' AND seq = -1",
    )
    .fetch_one(&mut *admin)
    .await?;
    let year_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM markoff.readings WHERE gateway_id = 'gw-0001'")
            .fetch_one(&mut *admin)
            .await?;
    let ok = ahead == 3
        && dropped >= 1
        && after == before - i64::from(dropped)
        && old_rows == 0
        && after >= 16
        && year_rows > 0;
    println!(
        "partitions: {created} created in {made_ms:.0} ms ({before} monthly, the next 3 months \
         {}); retention of 12 months dropped {dropped} in {drop_ms:.0} ms, {after} monthly left, \
         the dropped month's reading {}, this hour's readings kept: {}",
        if ahead == 3 { "present" } else { "MISSING" },
        if old_rows == 0 { "gone" } else { "STILL THERE" },
        if year_rows > 0 { "yes" } else { "NO" },
    );
    Ok(ok)
}

/// CPU time of the server process and of the web role's PostgreSQL backends (their pids from
/// `pg_stat_activity`, their times from `/proc`), to tell the work a request costs from the
/// wait for a core on a loaded machine.
struct Cpu {
    server: u32,
    role: String,
}

impl Cpu {
    /// (server ticks, ticks per backend pid).
    async fn sample(
        &self,
        admin: &mut sqlx::PgConnection,
    ) -> anyhow::Result<(u64, std::collections::HashMap<i32, u64>)> {
        let pids: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE usename = $1")
                .bind(&self.role)
                .fetch_all(&mut *admin)
                .await?;
        let backends = pids
            .into_iter()
            .filter_map(|p| Some((p, process_ticks(u32::try_from(p).ok()?)?)))
            .collect();
        Ok((process_ticks(self.server).unwrap_or(0), backends))
    }
}

/// User plus system CPU time of a process, in clock ticks (`/proc/PID/stat` fields 14, 15).
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`; 100 on Linux).
fn ticks_per_second() -> f64 {
    100.0
}
