//! The office web application (`markoff-central serve`, issue 11) end to end: the real binary
//! against a real PostgreSQL holding what a real `markoff` gateway synced seconds before, its
//! JSON API and pages, sign-in, sessions, CSRF, login rate limiting, the user commands, the
//! roles' privileges, the Grafana dashboard's SQL, and a headless Chromium that logs in through
//! the form. Build the binaries first: `cargo build -p markoff -p markoff-cloud-sync`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use fantoccini::Locator;
use markoff_cloud_sync::web::Access;
use markoff_cloud_sync::{
    AlarmEventRow, FloorRow, OfficeRoleKind, ReadingRow, RoomRow, SensorMetaRow, SiteMetadata,
    Stream, TenantRow,
};
use markoff_tests::browser::{ChromeDriver, readable_at, require_chromium};
use markoff_tests::central_web::{
    CentralWeb, WebClient, WebOptions, add_user, add_user_seeing, central_bin,
};
use markoff_tests::pg::PgTestDb;
use markoff_tests::services::{postgres_addr, require_postgres};
use markoff_tests::{TempGateway, assert_eventually, db};
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection, Row as _};

const PASSWORD: &str = "correct horse battery";
const GATEWAY: &str = "web-gw";
const BUILDING: &str = "web-house";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `[site]` with geometry for floor 1, and an alarm raised at once on room 101's temperature.
const SITE: &str = r#"
[site]
name = "Web test house"
address = "ul. Testovaya 1"

[[site.floor]]
id = "1"
name = "Ground"
level = 1
width = 20.0
height = 10.0

[[site.floor]]
id = "2"
name = "Upper"
level = 2

[[site.room]]
id = "101"
floor = "1"
name = "Office 101"
tenant = "acme"
polygon = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]

[[site.room]]
id = "102"
floor = "1"
name = "Office 102"
polygon = [[10.0, 0.0], [20.0, 0.0], [20.0, 10.0], [10.0, 10.0]]

[[site.tenant]]
id = "acme"
name = "Acme Ltd"

[[alarms.rule]]
alert = "Warm"
kind = "high"
sensor = "f1.r101.temperature"
limit = -100.0
"#;

/// A database with a provisioned gateway running the simulator (2 floors x 2 rooms, every
/// 200 ms) and syncing into it.
async fn synced_gateway(prefix: &str) -> (PgTestDb, TempGateway) {
    let mut pg = PgTestDb::create(prefix).await;
    let creds = pg.add_gateway(GATEWAY, BUILDING).await;
    let gw = TempGateway::builder()
        .id(GATEWAY)
        .simulator(2, 2, ms(200))
        .extra_toml(&pg.sync_toml(&creds.role, &postgres_addr(), 1000))
        .extra_toml(SITE)
        .start()
        .await;
    (pg, gw)
}

/// The sensor of `key` in a building's JSON.
fn find_sensor<'a>(building: &'a Value, key: &str) -> Option<&'a Value> {
    building["floors"]
        .as_array()?
        .iter()
        .flat_map(|f| {
            f["rooms"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["sensors"].as_array().into_iter().flatten())
                .chain(f["sensors"].as_array().into_iter().flatten())
        })
        .chain(building["unplaced"].as_array().into_iter().flatten())
        .find(|s| s["key"] == key)
}

/// Whether the local buffer holds a reading of sensor `key` at `ts` with `value`.
fn local_has(path: &Path, key: &str, ts: i64, value: f64) -> bool {
    let conn = db::open_read_only(path);
    db::refresh_readings(&conn);
    conn.query_row(
        "SELECT count(*) FROM readings r JOIN sensors s ON s.id = r.sensor \
             WHERE s.key = ?1 AND r.ts = ?2 AND r.value = ?3",
        rusqlite::params![key, ts, value],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        == 1
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn iso_ms(v: &Value) -> i64 {
    // "2026-11-23T10:15:00.250Z" -> ms, through PostgreSQL-free arithmetic.
    let s = v.as_str().unwrap();
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, milli) = time.split_once('.').unwrap();
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + milli.parse::<i64>().unwrap()
}

// === the API over data a real gateway synced ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_what_a_gateway_synced_seconds_before() {
    if !require_postgres() {
        return;
    }
    let (mut pg, gw) = synced_gateway("webapi").await;
    let web = CentralWeb::start(&mut pg, &WebOptions::default()).await;
    add_user(&pg, "ivan", "Ivan Petrov", PASSWORD).await;
    let c = web.client();
    let login = c.login("Ivan", PASSWORD).await;
    assert_eq!(login.status, 303, "{}", login.body);
    assert_eq!(login.header("location"), Some("/"));

    // The metadata (with geometry), values and the alarm arrive through the real sync.
    let path = format!("/api/buildings/{BUILDING}");
    assert_eventually!(
        {
            let b = c.get(&path).await;
            b.status == 200 && {
                let j = b.json();
                j["name"] == "Web test house"
                    && j["floors"][0]["rooms"][0]["polygon"].is_array()
                    && find_sensor(&j, "f1.r101.temperature").is_some_and(|s| s["value"].is_f64())
                    && j["active_alarms"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|a| a["alarm"] == "Warm/f1.r101.temperature"))
            }
        },
        "the building never showed the synced data:\n{}\n{}",
        c.get(&path).await.body,
        gw.log()
    );

    // The list: the building, its gateway in contact, one alarm waiting for acknowledgement.
    let list = c.get("/api/buildings").await.json();
    let b = &list.as_array().unwrap()[0];
    assert_eq!(b["building_id"], BUILDING);
    assert_eq!(b["address"], "ul. Testovaya 1");
    assert!(b["active_alarms"].as_i64().unwrap() >= 1, "{b}");
    assert_eq!(b["gateways"][0]["gateway_id"], GATEWAY);
    assert!(b["gateways"][0]["last_contact"].is_string(), "{b}");
    assert_eq!(b["gateways"][0]["status"], "ok", "{b}");

    // The building: floors by level (the plant's floor "B" has none, so it comes last), rooms
    // with their metadata, tenants.
    let j = c.get(&path).await.json();
    let floors: Vec<&str> = j["floors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["floor_id"].as_str().unwrap())
        .collect();
    assert_eq!(floors, ["1", "2", "B"]);
    assert_eq!(j["floors"][0]["width"], 20.0);
    let r101 = &j["floors"][0]["rooms"][0];
    assert_eq!(r101["name"], "Office 101");
    assert_eq!(r101["tenant"], "Acme Ltd");
    assert_eq!(r101["open_alarms"], 1);
    assert!(r101["temperature"].is_f64(), "{r101}");
    assert_eq!(j["floors"][1]["rooms"].as_array().unwrap().len(), 2);
    assert_eq!(j["tenants"][0]["rooms"], json!(["Office 101"]));
    let alarm = j["active_alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alarm"] == "Warm/f1.r101.temperature")
        .unwrap()
        .clone();
    assert_eq!(alarm["state"], "active_unacked");
    assert!(alarm["acked_at"].is_null());

    // Every value shown is a reading the centre holds, and the one of room 101 is one the
    // gateway committed seconds before.
    let mut admin = pg.admin().await;
    let mut shown = 0;
    for f in j["floors"].as_array().unwrap() {
        for r in f["rooms"].as_array().unwrap() {
            for s in r["sensors"].as_array().unwrap() {
                let (Some(v), Some(ts)) = (s["value"].as_f64(), s["ts"].as_str()) else {
                    continue;
                };
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM markoff.readings WHERE gateway_id = $1 \
                     AND sensor_id = $2 AND ts = $3::timestamptz AND value = $4",
                )
                .bind(GATEWAY)
                .bind(i32::try_from(s["sensor_id"].as_i64().unwrap()).unwrap())
                .bind(ts)
                .bind(v)
                .fetch_one(&mut admin)
                .await
                .unwrap();
                assert_eq!(n, 1, "{s} is not a central reading");
                shown += 1;
            }
        }
    }
    assert!(shown >= 12, "{shown} values shown");
    let s101 = find_sensor(&j, "f1.r101.temperature").unwrap();
    let ts = iso_ms(&s101["ts"]);
    assert!(local_has(
        &gw.db_path(),
        "f1.r101.temperature",
        ts,
        s101["value"].as_f64().unwrap()
    ));
    assert!(
        now_ms() - ts < 60_000,
        "the value is {} ms old",
        now_ms() - ts
    );

    // A sensor's history: buckets computed by the server, as many readings as the centre has.
    let sensor_id = s101["sensor_id"].as_i64().unwrap();
    // Readings arrive in seq order, which is time order for the simulator: once one newer than
    // `to` has arrived, every reading before `to` is there.
    let to = now_ms();
    assert_eventually!(
        pg.cursor(GATEWAY, Stream::Readings).await > 0
            && sqlx::query_scalar::<_, bool>(
                "SELECT newest_ts > to_timestamp($2::float8 / 1000) FROM markoff.sync_cursors \
                 WHERE gateway_id = $1 AND stream = 'readings'"
            )
            .bind(GATEWAY)
            .bind(to as f64)
            .fetch_one(&mut admin)
            .await
            .unwrap(),
        "readings up to {to} did not arrive"
    );
    let h = c
        .get(&format!(
            "/api/sensors/{GATEWAY}/{sensor_id}?range=10m&to={to}&points=60"
        ))
        .await;
    assert_eq!(h.status, 200, "{}", h.body);
    let h = h.json();
    assert_eq!(h["bucket_seconds"], 10);
    assert_eq!(h["source"], "readings");
    assert_eq!(h["sensor"]["key"], "f1.r101.temperature");
    let points = h["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{h}");
    let counted: i64 = points
        .iter()
        .map(|p| p["count"].as_i64().unwrap() + p["bad"].as_i64().unwrap())
        .sum();
    let central: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM markoff.readings WHERE gateway_id = $1 AND sensor_id = $2 \
         AND ts >= to_timestamp($3::float8 / 1000) AND ts < to_timestamp($4::float8 / 1000)",
    )
    .bind(GATEWAY)
    .bind(i32::try_from(sensor_id).unwrap())
    .bind((to - 600_000) as f64)
    .bind(to as f64)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(counted, central);
    for p in points {
        let (lo, avg, hi) = (
            p["min"].as_f64().unwrap(),
            p["avg"].as_f64().unwrap(),
            p["max"].as_f64().unwrap(),
        );
        assert!(lo <= avg && avg <= hi, "{p}");
    }
    assert_eq!(h["alarms"][0]["alarm"], "Warm/f1.r101.temperature");
    // Longer ranges come from the 10-minute rollup the upload keeps, which holds every reading.
    let day = c
        .get(&format!(
            "/api/sensors/{GATEWAY}/{sensor_id}?range=1d&to={to}"
        ))
        .await
        .json();
    assert_eq!(day["source"], "readings_10m");
    assert_eq!(day["bucket_seconds"], 600);
    let rolled: i64 = day["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_i64().unwrap() + p["bad"].as_i64().unwrap())
        .sum();
    let all: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM markoff.readings WHERE gateway_id = $1 AND sensor_id = $2",
    )
    .bind(GATEWAY)
    .bind(i32::try_from(sensor_id).unwrap())
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        rolled >= central && rolled <= all,
        "{rolled} rolled up, {central}..{all}"
    );
    let bad = c
        .get(&format!("/api/sensors/{GATEWAY}/{sensor_id}?range=forever"))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        c.get(&format!("/api/sensors/{GATEWAY}/999999"))
            .await
            .status,
        404
    );
    assert_eq!(c.get("/api/buildings/nope").await.status, 404);

    // A comment on the alarm, with the session's CSRF token from /api/me.
    let me = c.get("/api/me").await.json();
    assert_eq!(me["login"], "ivan");
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    let alarm_path = format!("/api/alarms/{GATEWAY}/{}", alarm["alarm_id"]);
    let added = c
        .post_json(
            &format!("{alarm_path}/comments"),
            &json!({ "body": "Tenant called, window open." }),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.json()["author"], "Ivan Petrov");
    let detail = c.get(&alarm_path).await.json();
    assert_eq!(detail["comments"][0]["body"], "Tenant called, window open.");
    assert_eq!(detail["events"][0]["event"], "raised");
    assert_eq!(detail["building_id"], BUILDING);
    let again = c.get(&path).await.json();
    let commented = again["active_alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alarm_id"] == alarm["alarm_id"])
        .unwrap();
    assert_eq!(commented["comments"], 1);

    // Pages and pictures.
    let page = c.get(&format!("/buildings/{BUILDING}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Office 101") && page.body.contains("data-key=\"f1.r101.temperature\"")
    );
    assert!(
        page.body.contains("class=\"alarm-marker\""),
        "an alarm marker on the plan"
    );
    let plan = c.get(&format!("/buildings/{BUILDING}/plans/1.svg")).await;
    assert_eq!(plan.status, 200);
    assert_eq!(
        plan.header("content-type"),
        Some("image/svg+xml; charset=utf-8")
    );
    assert!(plan.body.starts_with("<svg"), "{}", plan.body);
    assert!(
        plan.body
            .contains("points=\"0.0,0.0 400.0,0.0 400.0,400.0 0.0,400.0\""),
        "{}",
        plan.body
    );
    let grid = c.get(&format!("/buildings/{BUILDING}/plans/2.svg")).await;
    assert_eq!(
        grid.body.matches("<polygon").count(),
        2,
        "rooms 201 and 202 in a grid"
    );
    // A line needs two buckets with readings: a few seconds of them, in 5-second buckets.
    let chart_path = format!("/sensors/{GATEWAY}/{sensor_id}/chart.svg?range=30m");
    assert_eventually!(
        c.get(&chart_path).await.body.contains("<polyline"),
        "no line in {}",
        c.get(&chart_path).await.body
    );
    let sensor_page = c
        .get(&format!("/sensors/{GATEWAY}/{sensor_id}?range=1h"))
        .await;
    assert!(
        sensor_page.body.contains("<svg") && sensor_page.body.contains("Warm/f1.r101.temperature")
    );
    let alarm_page = c
        .get(&format!("/alarms/{GATEWAY}/{}", alarm["alarm_id"]))
        .await;
    assert!(alarm_page.body.contains("Tenant called, window open."));
    let status = c.get("/api/status").await.json();
    assert_eq!(status["login"]["successes"], 1);
}

// === refusals, CSRF, sessions ===

/// A database with one building, one alarm and a user, without a gateway process.
async fn small_site(prefix: &str, options: &WebOptions) -> (PgTestDb, CentralWeb) {
    let mut pg = PgTestDb::create(prefix).await;
    pg.add_gateway(GATEWAY, BUILDING).await;
    let mut admin = pg.admin().await;
    sqlx::raw_sql(
        "INSERT INTO markoff.alarm_events VALUES ('web-gw', 1, now(), 7, 'Warm/x', 'high', 'x', \
         'raised', 'active_unacked', 'high', 30, 'Temperature high', NULL, NULL)",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    add_user(&pg, "ivan", "Ivan Petrov", PASSWORD).await;
    add_user(&pg, "olga", "Olga", PASSWORD).await;
    let web = CentralWeb::start(&mut pg, options).await;
    (pg, web)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_are_refused_on_every_route() {
    if !require_postgres() {
        return;
    }
    let (pg, web) = small_site("webanon", &WebOptions::default()).await;
    let c = web.client();
    for page in [
        "/",
        "/buildings/web-house",
        "/buildings/web-house/plans/1.svg",
        "/sensors/web-gw/1",
        "/sensors/web-gw/1/chart.svg",
        "/alarms/web-gw/7",
        "/no/such/page",
    ] {
        let a = c.get(page).await;
        assert_eq!(a.status, 303, "GET {page}: {}", a.body);
        let to = a.header("location").unwrap();
        assert!(to.starts_with("/login?next=/"), "GET {page} -> {to}");
        assert!(!a.body.contains("web-house"), "GET {page} leaked data");
    }
    for api in [
        "/api/me",
        "/api/status",
        "/api/buildings",
        "/api/buildings/web-house",
        "/api/sensors/web-gw/1",
        "/api/alarms/web-gw/7",
    ] {
        let a = c.get(api).await;
        assert_eq!(a.status, 401, "GET {api}");
        assert_eq!(a.json()["error"], "not signed in");
    }
    let post = c
        .post_json("/api/alarms/web-gw/7/comments", &json!({"body": "x"}), &[])
        .await;
    assert_eq!(post.status, 401);
    let form = c
        .post_form("/alarms/web-gw/7/comments", &[("csrf", "x"), ("body", "x")])
        .await;
    assert_eq!(
        (form.status, form.header("location")),
        (303, Some("/login"))
    );
    // A made-up or malformed session cookie is no session.
    c.set_cookie(
        "markoff_session",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    );
    assert_eq!(c.get("/api/buildings").await.status, 401);
    c.set_cookie("markoff_session", "x'; DROP TABLE markoff.web_users; --");
    assert_eq!(c.get("/api/buildings").await.status, 401);
    // Open: the login form and the health check only.
    assert_eq!(c.get("/login").await.status, 200);
    assert_eq!(c.get("/healthz").await.body, "ok\n");
    let mut admin = pg.admin().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM markoff.alarm_comments")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_tokens_guard_every_form_and_sessions_end() {
    if !require_postgres() {
        return;
    }
    let options = WebOptions {
        top: "session_lifetime = \"10m\"".into(),
        ..WebOptions::default()
    };
    let (pg, web) = small_site("webcsrf", &options).await;
    let c = web.client();

    // The login form: without its cookie, or with another token, nothing is checked.
    let fresh = WebClient::new(web.url());
    let no_cookie = fresh
        .post_form(
            "/login",
            &[("login", "ivan"), ("password", PASSWORD), ("csrf", "abc")],
        )
        .await;
    assert_eq!(no_cookie.status, 403);
    let form = c.get("/login").await;
    assert!(form.input("csrf").is_some());
    let wrong = c
        .post_form(
            "/login",
            &[
                ("login", "ivan"),
                ("password", PASSWORD),
                ("csrf", "not-the-token"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 403);
    assert!(c.cookie("markoff_session").is_none());

    // Signing in: a 256-bit id in an HttpOnly, SameSite=Strict cookie, stored only hashed.
    let ok = c.login("ivan", PASSWORD).await;
    assert_eq!(ok.status, 303);
    let set: Vec<&str> = ok
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let session_cookie = set
        .iter()
        .find(|c| c.starts_with("markoff_session="))
        .unwrap();
    assert!(session_cookie.contains("; HttpOnly"), "{session_cookie}");
    assert!(
        session_cookie.contains("; SameSite=Strict"),
        "{session_cookie}"
    );
    assert!(session_cookie.contains("; Path=/"), "{session_cookie}");
    assert!(session_cookie.contains("Max-Age=600"), "{session_cookie}");
    assert!(
        !session_cookie.contains("Secure"),
        "cookie_secure = false for plain HTTP"
    );
    let token = c.cookie("markoff_session").unwrap();
    assert_eq!(token.len(), 43, "32 bytes, base64url");
    let mut admin = pg.admin().await;
    let (stored, plain): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE id_hash = sha256(convert_to($1, 'UTF8'))), \
                count(*) FILTER (WHERE position(convert_to($1, 'UTF8') IN id_hash) > 0) \
         FROM markoff.web_sessions",
    )
    .bind(&token)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!((stored, plain), (1, 0));

    // Writes need the session's token: forms in a field, JSON in X-CSRF-Token.
    let csrf = c.get("/api/me").await.json()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = c.get("/alarms/web-gw/7").await;
    assert_eq!(page.input("csrf").as_deref(), Some(csrf.as_str()));
    for (fields, status) in [
        (vec![("body", "no token")], 422),
        (vec![("csrf", "wrong"), ("body", "wrong token")], 403),
    ] {
        let a = c.post_form("/alarms/web-gw/7/comments", &fields).await;
        assert_eq!(a.status, status, "{fields:?}: {}", a.body);
    }
    for headers in [vec![], vec![("x-csrf-token", "wrong")]] {
        let a = c
            .post_json(
                "/api/alarms/web-gw/7/comments",
                &json!({"body": "x"}),
                &headers,
            )
            .await;
        assert_eq!(a.status, 403, "{headers:?}");
    }
    // A right token from another site's page is refused by its Origin.
    let cross = c
        .send(
            c.request(reqwest::Method::POST, "/alarms/web-gw/7/comments")
                .header("origin", "https://evil.example")
                .form(&[("csrf", csrf.as_str()), ("body", "cross-site")]),
        )
        .await;
    assert_eq!(cross.status, 403);
    let good = c
        .post_form(
            "/alarms/web-gw/7/comments",
            &[("csrf", &csrf), ("body", "From the form")],
        )
        .await;
    assert_eq!(good.status, 303, "{}", good.body);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM markoff.alarm_comments")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(n, 1, "only the comment with the right token");
    // Unknown alarms take no comment.
    let none = c
        .post_json(
            "/api/alarms/web-gw/99/comments",
            &json!({"body": "x"}),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(none.status, 404);

    // Logout needs the token too, then ends the session for good.
    assert_eq!(
        c.post_form("/logout", &[("csrf", "wrong")]).await.status,
        403
    );
    assert_eq!(c.get("/api/me").await.status, 200);
    let out = c.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.header("location")), (303, Some("/login")));
    assert!(c.cookie("markoff_session").is_none());
    c.set_cookie("markoff_session", &token);
    assert_eq!(c.get("/api/me").await.status, 401, "the old cookie is dead");

    // Expiry: a session past expires_at is refused.
    assert_eq!(c.login("ivan", PASSWORD).await.status, 303);
    assert_eq!(c.get("/api/me").await.status, 200);
    sqlx::query("UPDATE markoff.web_sessions SET expires_at = now() - interval '1 second'")
        .execute(&mut admin)
        .await
        .unwrap();
    assert_eq!(c.get("/api/me").await.status, 401);
    let page = c.get("/").await;
    assert_eq!(page.header("location"), Some("/login?next=/"));

    // Removing the user ends their sessions.
    assert_eq!(c.login("ivan", PASSWORD).await.status, 303);
    markoff_cloud_sync::web::remove_user(&mut admin, "ivan")
        .await
        .unwrap();
    assert_eq!(c.get("/api/me").await.status, 401);
    // The comment stays, with its author's name.
    let author: String = sqlx::query_scalar("SELECT author FROM markoff.alarm_comments")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(author, "Ivan Petrov");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_per_account_and_per_address() {
    if !require_postgres() {
        return;
    }
    let options = WebOptions {
        top: "trusted_proxies = [\"127.0.0.1\"]".into(),
        login: "free_failures_per_account = 3\nfree_failures_per_ip = 5\nbase_delay = \"5s\"\n\
                max_delay = \"10s\"\nwindow = \"10m\"\n"
            .into(),
    };
    let (_pg, web) = small_site("weblimit", &options).await;

    // Per account: failures from different addresses add up.
    let mut c = web.client();
    for i in 1..=4 {
        c.forwarded_for = Some(format!("10.0.0.{i}"));
        let a = c.login("ivan", "wrong password!").await;
        assert_eq!(a.status, 401, "attempt {i}");
        assert!(a.body.contains("Wrong login or password."));
    }
    c.forwarded_for = Some("10.0.0.50".into());
    let refused = c.login("ivan", PASSWORD).await;
    assert_eq!(
        refused.status, 429,
        "the right password is not even checked"
    );
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry), "{retry}");
    assert!(c.cookie("markoff_session").is_none());
    // Another account is not affected; this one gets in once its wait is over.
    let other = web.client();
    assert_eq!(other.login("olga", PASSWORD).await.status, 303);
    assert_eventually!(
        c.login("ivan", PASSWORD).await.status == 303,
        patience = Duration::from_secs(20),
        "ivan never got in after the wait"
    );

    // Per address: failures on many accounts from one address.
    let mut d = web.client();
    d.forwarded_for = Some("192.0.2.7".into());
    for i in 0..6 {
        let a = d.login(&format!("nobody{i}"), "guess guess guess").await;
        assert_eq!(a.status, 401, "attempt {i}");
    }
    let blocked = d.login("olga", PASSWORD).await;
    assert_eq!(blocked.status, 429, "the address must wait");
    d.forwarded_for = Some("192.0.2.8".into());
    d.clear_cookies();
    assert_eq!(
        d.login("olga", PASSWORD).await.status,
        303,
        "another address may"
    );

    let stats = c.get("/api/status").await.json();
    let login = &stats["login"];
    assert!(login["failures"].as_u64().unwrap() >= 10, "{login}");
    assert!(login["refused"].as_u64().unwrap() >= 2, "{login}");
    assert!(login["successes"].as_u64().unwrap() >= 3, "{login}");
    assert!(web.log().contains("Login refused: too many failures."));
}

/// Bad input is the client's mistake: 400 or 404, never the 503 "database unavailable" that
/// monitoring reads as an outage (a `to` PostgreSQL cannot hold, a NUL in a path or a form).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_answers_400_or_404_never_503() {
    if !require_postgres() {
        return;
    }
    let (pg, web) = small_site("webbadinput", &WebOptions::default()).await;
    let mut admin = pg.admin().await;
    sqlx::raw_sql(
        "INSERT INTO markoff.sensors (gateway_id, sensor_id, key, name, kind, unit, source) \
         VALUES ('web-gw', 1, 'x', 'X', 'temperature', '°C', 'test')",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let c = web.client();
    assert_eq!(c.login("ivan", PASSWORD).await.status, 303);
    // The sensor exists: a sane range reads it.
    assert_eq!(c.get("/api/sensors/web-gw/1?range=1h").await.status, 200);
    for (path, want) in [
        ("/api/sensors/web-gw/1?to=-99999999999999999", 400),
        ("/api/sensors/web-gw/1?to=99999999999999999", 400),
        ("/api/sensors/web-gw/1?to=-1&range=1h", 400),
        ("/sensors/web-gw/1?to=-99999999999999999", 400),
        ("/sensors/web-gw/1/chart.svg?to=-99999999999999999", 400),
        ("/api/buildings/%00", 404),
        ("/buildings/%00", 404),
        ("/buildings/%00/plans/1.svg", 404),
        ("/api/sensors/%00/1", 404),
        ("/sensors/web%00gw/1", 404),
        ("/api/alarms/%00/7", 404),
        ("/alarms/web-gw%00/7", 404),
    ] {
        let a = c.get(path).await;
        assert_eq!(a.status, want, "GET {path}: {}", a.body);
    }
    let me = c.get("/api/me").await.json();
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    let nul = c
        .post_json(
            "/api/alarms/web-gw/7/comments",
            &json!({"body": "a\u{0}b"}),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(nul.status, 422, "{}", nul.body);
    let elsewhere = c
        .post_json(
            "/api/alarms/%00/7/comments",
            &json!({"body": "hello"}),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(elsewhere.status, 404, "{}", elsewhere.body);
    let form = c
        .post_form(
            "/alarms/web-gw/7/comments",
            &[("csrf", &csrf), ("body", "a\0b")],
        )
        .await;
    assert_eq!(form.status, 422, "{}", form.body);
    // A login with a NUL is a wrong login, not an outage.
    let anon = web.client();
    assert_eq!(anon.login("iv\0an", PASSWORD).await.status, 401);
    assert!(!web.log().contains("A query failed."), "{}", web.log());
}

// === the command line ===

async fn central(
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt as _;
    let mut cmd = tokio::process::Command::new(central_bin());
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `serve` that cannot start for its settings or a missing credential exits 78 before it
/// connects (no database here), and the packaged unit does not restart it on 78.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exits_78_on_a_missing_credential_and_its_unit_does_not_retry() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("central.toml");
    let write = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndatabase_url = \"postgres://web@127.0.0.1:1/none\"\n\
                 cookie_secure = false\n{extra}\n"
            ),
        )
        .unwrap();
    };
    let conf = config.to_str().unwrap();
    let serve = ["serve", "--config", conf];
    write("password_credential = \"web-password\"");
    let (code, _, err) = central(&serve, &[("CREDENTIALS_DIRECTORY", "/nonexistent")], None).await;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("web-password"), "{err}");
    write("password_file = \"/nonexistent/web-password\"");
    let (code, _, err) = central(&serve, &[], None).await;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("/nonexistent/web-password"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    write(&format!("password_file = {:?}", empty.to_str().unwrap()));
    let (code, _, err) = central(&serve, &[], None).await;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("empty"), "{err}");
    write("password_env = \"MARKOFF_TEST_UNSET_PASSWORD\"");
    let (code, _, err) = central(&serve, &[], None).await;
    assert_eq!(code, 78, "{err}");
    write("pool_size = 0");
    let (code, _, err) = central(&serve, &[], None).await;
    assert_eq!(code, 78, "{err}");
    let (code, _, err) = central(
        &["serve", "--config", "/nonexistent/central.toml"],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 78, "{err}");
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/debian/markoff-central.service"),
    )
    .unwrap();
    let directives: Vec<&str> = unit.lines().map(str::trim).collect();
    assert!(directives.contains(&"Restart=on-failure"), "{unit}");
    assert!(
        directives.contains(&"RestartPreventExitStatus=78"),
        "{unit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_commands_take_passwords_from_stdin_or_the_environment_only() {
    if !require_postgres() {
        return;
    }
    let pg = PgTestDb::create("webusers").await;
    let url = pg.admin_url();
    let db = [("DATABASE_URL", url.as_str())];

    let (code, out, err) = central(
        &["add-user", "Alice", "--name", "Alice A."],
        &db,
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "user alice added");
    let (code, _, err) = central(&["add-user", "bob", "--password", PASSWORD], &db, None).await;
    assert_eq!(code, 64, "a password argument is a usage error: {err}");
    let (code, out, err) = central(
        &["add-user", "bob", "--password-env", "BOB_PW"],
        &[db[0], ("BOB_PW", "another long password")],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = central(&["add-user", "carol"], &db, Some("short\n")).await;
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("at least 12 characters"), "{err}");
    let (code, _, err) = central(&["add-user", "dave"], &db, Some("")).await;
    assert_eq!(code, 64, "{err}");
    let (code, _, err) = central(&["add-user", "alice"], &db, Some(&format!("{PASSWORD}\n"))).await;
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");

    let mut admin = pg.admin().await;
    let before: String =
        sqlx::query_scalar("SELECT password_hash FROM markoff.web_users WHERE login = 'alice'")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(
        before.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{before}"
    );
    assert!(!before.contains(PASSWORD));
    let (code, out, _) = central(
        &["add-user", "alice", "--update"],
        &db,
        Some("a new long password\n"),
    )
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("password replaced"), "{out}");
    let after: String =
        sqlx::query_scalar("SELECT password_hash FROM markoff.web_users WHERE login = 'alice'")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_ne!(before, after);
    assert!(markoff_cloud_sync::web::users::verify_password(
        &after,
        "a new long password"
    ));

    let (code, out, _) = central(&["users"], &db, None).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with("alice\tAlice A.\t"), "{out}");
    assert!(lines[2].starts_with("bob\t-\t"), "{out}");
    let (code, _, _) = central(&["remove-user", "bob"], &db, None).await;
    assert_eq!(code, 0);
    let (code, _, err) = central(&["remove-user", "bob"], &db, None).await;
    assert_eq!(code, 1);
    assert!(err.contains("no user bob"), "{err}");

    // add-role prints the password once; --existing re-grants without one.
    let role = format!("{}_cli_web", pg.name());
    let (code, out, err) = central(&["add-role", &role, "--kind", "web"], &db, None).await;
    assert_eq!(code, 0, "{err}");
    let password = out.lines().last().unwrap().to_owned();
    assert_eq!(password.len(), 32, "{out}");
    let (code, out, _) = central(
        &["add-role", &role, "--kind", "web", "--existing"],
        &db,
        None,
    )
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("password unchanged"), "{out}");
    let (code, _, err) = central(&["add-role", &role, "--kind", "web"], &db, None).await;
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let opts: PgConnectOptions = url
        .parse::<PgConnectOptions>()
        .unwrap()
        .username(&role)
        .password(&password);
    let mut conn = PgConnection::connect_with(&opts).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM markoff.web_users")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 1);
    conn.close().await.unwrap();
    for s in [
        format!("DROP OWNED BY \"{role}\""),
        format!("DROP ROLE \"{role}\""),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(s))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

// === what the office roles may do ===

async fn connect_as(pg: &PgTestDb, role: &str) -> PgConnection {
    let password = std::fs::read_to_string(pg.password_file(role)).unwrap();
    let opts = pg
        .admin_url()
        .parse::<PgConnectOptions>()
        .unwrap()
        .username(role)
        .password(password.trim());
    PgConnection::connect_with(&opts).await.unwrap()
}

async fn sqlstate(conn: &mut PgConnection, sql: &str) -> Option<String> {
    match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
    {
        Ok(_) => None,
        Err(e) => Some(
            e.as_database_error()
                .and_then(|d| d.code().map(|c| c.into_owned()))
                .unwrap_or_else(|| e.to_string()),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn office_roles_have_only_the_privileges_they_need() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("webroles").await;
    pg.add_gateway(GATEWAY, BUILDING).await;
    add_user(&pg, "ivan", "Ivan", PASSWORD).await;
    let web = pg.add_office_role(OfficeRoleKind::Web).await;
    let reader = pg.add_office_role(OfficeRoleKind::Reader).await;

    let mut w = connect_as(&pg, &web).await;
    for ok in [
        "SELECT * FROM markoff.readings LIMIT 1",
        "SELECT * FROM markoff.gateway_health",
        "SELECT login, password_hash FROM markoff.web_users",
        "UPDATE markoff.web_users SET last_login_at = now()",
        "DELETE FROM markoff.web_sessions",
    ] {
        assert_eq!(sqlstate(&mut w, ok).await, None, "web: {ok}");
    }
    for refused in [
        "INSERT INTO markoff.readings VALUES ('web-gw', 1, 1, now(), 1, 0)",
        "UPDATE markoff.web_users SET password_hash = 'x'",
        "INSERT INTO markoff.web_users (login, password_hash) VALUES ('eve', 'x')",
        "DELETE FROM markoff.alarm_comments",
        "UPDATE markoff.alarm_comments SET body = 'x'",
        "DELETE FROM markoff.alarm_events",
        "UPDATE markoff.readings_10m SET n = 0",
        "UPDATE markoff.buildings SET name = 'x'",
        "CREATE TABLE markoff.evil (x int)",
        "SELECT markoff.ensure_partitions(1)",
        // Office requests: asked for only through markoff.office_request (as the session's
        // user), answered only by their gateway.
        "INSERT INTO markoff.office_requests (gateway_id, alarm_id, action, login, display_name) \
         VALUES ('web-gw', 1, 'ack', 'eve', 'Eve')",
        "UPDATE markoff.office_requests SET state = 'done'",
        "SELECT markoff.office_request('web-gw', 1, 'ack', NULL)",
        "SELECT markoff.office_requests_pending('web-gw')",
        "SELECT markoff.office_request_answer('web-gw', 1, 'done', 'eve', NULL)",
    ] {
        assert_eq!(
            sqlstate(&mut w, refused).await.as_deref(),
            Some("42501"),
            "web: {refused}"
        );
    }
    let mut r = connect_as(&pg, &reader).await;
    for ok in [
        "SELECT * FROM markoff.latest_readings",
        "SELECT * FROM markoff.active_alarms",
        "SELECT * FROM markoff.alarm_comments",
        "SELECT * FROM markoff.readings LIMIT 1",
        "SELECT * FROM markoff.readings_10m LIMIT 1",
    ] {
        assert_eq!(sqlstate(&mut r, ok).await, None, "reader: {ok}");
    }
    for refused in [
        "SELECT * FROM markoff.web_users",
        "SELECT * FROM markoff.web_sessions",
    ] {
        assert_eq!(
            sqlstate(&mut r, refused).await.as_deref(),
            Some("42501"),
            "reader: {refused}"
        );
    }
    // Its sessions are read-only, and it has no write grant anyway.
    let ro: String = sqlx::query_scalar("SHOW default_transaction_read_only")
        .fetch_one(&mut r)
        .await
        .unwrap();
    assert_eq!(ro, "on");
    let write = sqlstate(
        &mut r,
        "INSERT INTO markoff.alarm_comments (gateway_id, alarm_id, author, body) \
         VALUES ('a', 1, 'x', 'y')",
    )
    .await;
    assert!(
        matches!(write.as_deref(), Some("25006" | "42501")),
        "{write:?}"
    );
}

// === Grafana ===

/// Grafana's macros and this dashboard's variables, replaced by plain SQL over the last 6 hours.
fn substitute_grafana(sql: &str, buildings: &str) -> String {
    let mut out = sql.to_owned();
    for (name, with_alias) in [("$__timeGroupAlias(", true), ("$__timeGroup(", false)] {
        while let Some(at) = out.find(name) {
            let start = at + name.len();
            let end = start + out[start..].find(')').unwrap();
            let column = out[start..end].split(',').next().unwrap().trim().to_owned();
            let mut rep =
                format!("date_bin(interval '5 minutes', {column}, timestamptz '2000-01-01')");
            if with_alias {
                rep.push_str(" AS \"time\"");
            }
            out.replace_range(at..=end, &rep);
        }
    }
    while let Some(at) = out.find("$__timeFilter(") {
        let start = at + "$__timeFilter(".len();
        let end = start + out[start..].find(')').unwrap();
        let column = out[start..end].trim().to_owned();
        out.replace_range(
            at..=end,
            &format!("{column} BETWEEN now() - interval '6 hours' AND now()"),
        );
    }
    out = out
        .replace("$building", buildings)
        .replace("${kind}", "temperature")
        .replace("$__interval", "'5m'");
    assert!(
        !out.contains('$'),
        "an unknown macro or variable is left in:\n{out}"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_parses_and_its_sql_runs_as_a_reader() {
    if !require_postgres() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/grafana/provisioning");
    let ds = std::fs::read_to_string(root.join("datasources/markoff.yaml")).unwrap();
    assert!(
        ds.contains("password: ${MARKOFF_DB_PASSWORD}"),
        "the password comes from the environment"
    );
    assert!(ds.contains("uid: markoff-central"));
    assert!(ds.contains("type: grafana-postgresql-datasource"));
    let provider = std::fs::read_to_string(root.join("dashboards/markoff-provider.yaml")).unwrap();
    assert!(provider.contains("type: file"));
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("dashboards/markoff.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dash["uid"], "markoff-central");

    // Some of everything, uploaded the way a gateway does, as a gateway.
    let mut pg = PgTestDb::create("grafana").await;
    let creds = pg.add_gateway(GATEWAY, BUILDING).await;
    let mut gw = connect_as(&pg, &creds.role).await;
    let meta = SiteMetadata {
        building_name: Some("Grafana house".into()),
        address: None,
        floors: vec![FloorRow {
            id: "1".into(),
            name: "One".into(),
            level: Some(1),
            ..FloorRow::default()
        }],
        rooms: vec![RoomRow {
            id: "101".into(),
            floor: Some("1".into()),
            name: "R".into(),
            ..RoomRow::default()
        }],
        tenants: vec![TenantRow {
            id: "t".into(),
            name: "T".into(),
        }],
        sensors: (1..=3)
            .map(|i| SensorMetaRow {
                sensor_id: i,
                key: format!("f1.r101.t{i}"),
                name: format!("T{i}"),
                kind: "temperature".into(),
                unit: "°C".into(),
                floor: Some("1".into()),
                room: Some("101".into()),
                source: "test".into(),
            })
            .collect(),
    };
    markoff_cloud_sync::upsert_metadata(&mut gw, GATEWAY, &meta, 1)
        .await
        .unwrap();
    let now = now_ms();
    let rows: Vec<ReadingRow> = (1..=300)
        .map(|seq| ReadingRow {
            seq,
            sensor_id: seq % 3 + 1,
            ts_ms: now - (300 - seq) * 60_000,
            value: Some(20.0 + (seq % 7) as f64),
            quality: 0,
        })
        .collect();
    markoff_cloud_sync::upload_readings(&mut gw, GATEWAY, &rows)
        .await
        .unwrap();
    let event = |seq, event: &str, state: &str| AlarmEventRow {
        seq,
        ts_ms: now - 1000 + seq,
        alarm_id: 1,
        alarm: "Warm/f1.r101.t1".into(),
        rule: "high".into(),
        sensor: Some("f1.r101.t1".into()),
        event: event.into(),
        state: state.into(),
        severity: "high".into(),
        value: Some(26.0),
        message: "warm".into(),
        actor: (event == "acked").then(|| "ivan".into()),
        channel: None,
    };
    markoff_cloud_sync::upload_alarm_events(
        &mut gw,
        GATEWAY,
        &[
            event(1, "raised", "active_unacked"),
            event(2, "acked", "active_acked"),
        ],
    )
    .await
    .unwrap();
    markoff_cloud_sync::touch_gateway(&mut gw, GATEWAY)
        .await
        .unwrap();
    markoff_cloud_sync::report_head(&mut gw, GATEWAY, Stream::Readings, 310)
        .await
        .unwrap();

    let reader = pg.add_office_role(OfficeRoleKind::Reader).await;
    let mut r = connect_as(&pg, &reader).await;
    let buildings = format!("'{BUILDING}'");
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"].as_str().filter(|_| v["type"] == "query") {
            let rows = sqlx::query(sqlx::AssertSqlSafe(q.to_owned()))
                .fetch_all(&mut r)
                .await
                .unwrap();
            assert_eq!(rows.len(), 1, "variable {}", v["name"]);
        }
    }
    let mut results: HashMap<String, usize> = HashMap::new();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    for p in panels {
        assert_eq!(p["datasource"]["uid"], "markoff-central", "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            let sql = substitute_grafana(t["rawSql"].as_str().unwrap(), &buildings);
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(&mut r)
                .await
                .unwrap_or_else(|e| panic!("panel {}: {e}\n{sql}", p["title"]));
            if t["format"] == "time_series" && !rows.is_empty() {
                use sqlx::Column as _;
                assert_eq!(rows[0].columns()[0].name(), "time", "panel {}", p["title"]);
            }
            results.insert(p["title"].as_str().unwrap().to_owned(), rows.len());
        }
    }
    assert_eq!(results["Buildings"], 1, "{results:?}");
    assert_eq!(results["Latest values"], 3, "{results:?}");
    assert_eq!(results["Active alarms"], 1, "{results:?}");
    assert_eq!(results["Gateway lag"], 1, "{results:?}");
    assert!(results["Readings ($kind)"] >= 3 * 30, "{results:?}");
    assert!(results["Alarm events"] >= 1, "{results:?}");
}

// === a person in a browser ===

// === per-building access ===

/// The hex SHA-256 of `login`'s newest session, as the application names it to the database.
async fn session_hex(admin: &mut PgConnection, login: &str) -> String {
    sqlx::query_scalar(
        "SELECT encode(s.id_hash, 'hex') FROM markoff.web_sessions s \
         JOIN markoff.web_users u USING (user_id) WHERE u.login = $1 \
         ORDER BY s.created_at DESC LIMIT 1",
    )
    .bind(login)
    .fetch_one(admin)
    .await
    .unwrap()
}

/// What the web role reads from `sql` (one text column) in a transaction naming `session`.
async fn rows_as(conn: &mut PgConnection, session: Option<&str>, sql: &str) -> Vec<String> {
    let mut tx = conn.begin().await.unwrap();
    if let Some(s) = session {
        sqlx::query("SELECT set_config('markoff.web_session', $1, true)")
            .bind(s)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    tx.rollback().await.unwrap();
    rows
}

/// A user granted building A sees and comments on A only, in pages, the JSON API and SQL (the
/// web role, with the user's session named, reads no row of B from any table or view); an
/// administrator sees both, a user granted nothing sees nothing, and `revoke` takes effect on
/// the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_granted_one_building_sees_no_other() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("webgrant").await;
    pg.add_gateway(GATEWAY, BUILDING).await;
    pg.add_gateway("other-gw", "other-house").await;
    let mut admin = pg.admin().await;
    sqlx::raw_sql(
        "INSERT INTO markoff.alarm_events VALUES \
           ('web-gw', 1, now(), 7, 'Warm/x', 'high', 'x', 'raised', 'active_unacked', 'high', 30, \
            'Temperature high', NULL, NULL), \
           ('other-gw', 1, now(), 9, 'Leak/y', 'high', 'y', 'raised', 'active_unacked', \
            'critical', 1, 'Leak in the basement', NULL, NULL); \
         INSERT INTO markoff.sensors (gateway_id, sensor_id, key, name, kind, unit, source) VALUES \
           ('web-gw', 1, 'x', 'X', 'temperature', '°C', 'test'), \
           ('other-gw', 1, 'y', 'Basement leak', 'leak', '', 'test'); \
         INSERT INTO markoff.sensor_latest (gateway_id, sensor_id, seq, ts, value, quality) VALUES \
           ('web-gw', 1, 1, now(), 21.5, 0), ('other-gw', 1, 1, now(), 1, 0); \
         INSERT INTO markoff.readings VALUES ('web-gw', 1, 1, now(), 21.5, 0), \
           ('other-gw', 1, 1, now(), 1, 0); \
         INSERT INTO markoff.readings_10m VALUES ('web-gw', 1, now(), 1, 21.5, 21.5, 21.5, 0), \
           ('other-gw', 1, now(), 1, 1, 1, 1, 0); \
         INSERT INTO markoff.readings_1d VALUES ('web-gw', 1, current_date - 3, 1, 2, 2, 2, 0), \
           ('other-gw', 1, current_date - 3, 1, 1, 1, 1, 0); \
         INSERT INTO markoff.readings_1d_pending VALUES ('web-gw', current_date - 2, '1'), \
           ('other-gw', current_date - 2, '1'); \
         INSERT INTO markoff.floors (building_id, floor_id, name) VALUES \
           ('web-house', '1', 'Ground'), ('other-house', '1', 'Basement'); \
         UPDATE markoff.buildings SET name = 'Secret house' WHERE building_id = 'other-house';",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    add_user_seeing(
        &pg,
        "anna",
        "Anna",
        PASSWORD,
        Access::Buildings(&[BUILDING.to_owned()]),
    )
    .await;
    add_user_seeing(&pg, "nobody", "No One", PASSWORD, Access::Buildings(&[])).await;
    add_user(&pg, "boss", "Boss", PASSWORD).await;
    let web = CentralWeb::start(&mut pg, &WebOptions::default()).await;
    let ids = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| b["building_id"].as_str().unwrap().to_owned())
            .collect()
    };

    let anna = web.client();
    assert_eq!(anna.login("anna", PASSWORD).await.status, 303);
    assert_eq!(ids(anna.get("/api/buildings").await.json()), [BUILDING]);
    let list = anna.get("/").await;
    assert!(list.body.contains(BUILDING), "{}", list.body);
    assert!(
        !list.body.contains("other-house") && !list.body.contains("Secret house"),
        "{}",
        list.body
    );
    assert_eq!(anna.get("/api/buildings/web-house").await.status, 200);
    assert_eq!(anna.get("/api/alarms/web-gw/7").await.status, 200);
    assert_eq!(anna.get("/api/sensors/web-gw/1").await.status, 200);
    for path in [
        "/api/buildings/other-house",
        "/buildings/other-house",
        "/buildings/other-house/plans/1.svg",
        "/api/sensors/other-gw/1",
        "/api/sensors/other-gw/1?range=365d",
        "/sensors/other-gw/1",
        "/sensors/other-gw/1/chart.svg",
        "/api/alarms/other-gw/9",
        "/alarms/other-gw/9",
    ] {
        let a = anna.get(path).await;
        assert_eq!(a.status, 404, "GET {path}: {}", a.body);
        assert!(
            !a.body.contains("Secret") && !a.body.contains("Basement"),
            "GET {path} leaked: {}",
            a.body
        );
    }
    let csrf = anna.get("/api/me").await.json()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let header = [("x-csrf-token", csrf.as_str())];
    let body = json!({"body": "Checked it."});
    assert_eq!(
        anna.post_json("/api/alarms/other-gw/9/comments", &body, &header)
            .await
            .status,
        404
    );
    let form = anna
        .post_form(
            "/alarms/other-gw/9/comments",
            &[("csrf", &csrf), ("body", "x")],
        )
        .await;
    assert_eq!(form.status, 404, "{}", form.body);
    assert_eq!(
        anna.post_json("/api/alarms/web-gw/7/comments", &body, &header)
            .await
            .status,
        201
    );

    let boss = web.client();
    assert_eq!(boss.login("boss", PASSWORD).await.status, 303);
    let mut both = ids(boss.get("/api/buildings").await.json());
    both.sort();
    assert_eq!(both, ["other-house", BUILDING]);
    assert_eq!(boss.get("/api/alarms/other-gw/9").await.status, 200);
    let nobody = web.client();
    assert_eq!(nobody.login("nobody", PASSWORD).await.status, 303);
    assert!(ids(nobody.get("/api/buildings").await.json()).is_empty());
    assert_eq!(nobody.get("/api/buildings/web-house").await.status, 404);

    // In SQL, as a web role: every table and view the role can read holds B's rows, and none of
    // them shows one to Anna's session; without a session, nothing at all.
    let role = pg.add_office_role(OfficeRoleKind::Web).await;
    let mut w = connect_as(&pg, &role).await;
    let anna_session = session_hex(&mut admin, "anna").await;
    let boss_session = session_hex(&mut admin, "boss").await;
    let queries = [
        "SELECT building_id FROM markoff.buildings",
        "SELECT gateway_id FROM markoff.gateways",
        "SELECT building_id FROM markoff.floors",
        "SELECT gateway_id FROM markoff.sensors",
        "SELECT gateway_id FROM markoff.sensor_latest",
        "SELECT gateway_id FROM markoff.readings",
        "SELECT gateway_id FROM markoff.readings_10m",
        "SELECT gateway_id FROM markoff.readings_1d",
        "SELECT gateway_id FROM markoff.readings_1d_pending",
        "SELECT gateway_id FROM markoff.alarm_events",
        "SELECT gateway_id FROM markoff.alarm_latest",
        "SELECT gateway_id FROM markoff.alarm_comments",
        "SELECT gateway_id FROM markoff.gateway_health",
        "SELECT gateway_id FROM markoff.latest_readings",
        "SELECT gateway_id FROM markoff.active_alarms",
    ];
    for sql in queries {
        let seen = rows_as(&mut w, Some(&anna_session), sql).await;
        assert!(!seen.is_empty(), "Anna sees her building in {sql}");
        assert!(
            seen.iter().all(|g| g == GATEWAY || g == BUILDING),
            "{sql} showed Anna {seen:?}"
        );
        assert!(
            rows_as(&mut w, None, sql).await.is_empty(),
            "{sql} without a session"
        );
        assert!(
            rows_as(&mut w, Some(&"0".repeat(64)), sql).await.is_empty(),
            "{sql} with a made-up session"
        );
        if !sql.contains("alarm_comments") {
            let all = rows_as(&mut w, Some(&boss_session), sql).await;
            assert!(
                all.iter().any(|g| g.starts_with("other")),
                "the administrator sees B in {sql}: {all:?}"
            );
        }
    }
    let mut tx = w.begin().await.unwrap();
    sqlx::query("SELECT set_config('markoff.web_session', $1, true)")
        .bind(&anna_session)
        .execute(&mut *tx)
        .await
        .unwrap();
    let refused = sqlx::query(
        "INSERT INTO markoff.alarm_comments (gateway_id, alarm_id, author, body) \
         VALUES ('other-gw', 9, 'Anna', 'sneaky')",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(
        refused
            .as_database_error()
            .and_then(|d| d.code())
            .as_deref(),
        Some("42501"),
        "{refused}"
    );
    drop(tx);
    // Readers (Grafana) are not web roles: they see every building.
    let reader = pg.add_office_role(OfficeRoleKind::Reader).await;
    let mut r = connect_as(&pg, &reader).await;
    assert_eq!(
        rows_as(
            &mut r,
            None,
            "SELECT building_id FROM markoff.buildings ORDER BY 1"
        )
        .await,
        ["other-house", BUILDING]
    );

    // The command line: `users` shows the grants; `revoke` ends them at the next request.
    let url = pg.admin_url();
    let db = [("DATABASE_URL", url.as_str())];
    let (code, out, err) = central(&["users"], &db, None).await;
    assert_eq!(code, 0, "{err}");
    let line = |login: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{login}\t")))
            .unwrap_or_else(|| panic!("no {login} in {out}"))
            .to_owned()
    };
    assert!(line("anna").ends_with("\tweb-house"), "{out}");
    assert!(line("boss").ends_with("\tall"), "{out}");
    assert!(line("nobody").ends_with("\t-"), "{out}");
    let (code, _, err) = central(&["grant", "anna"], &db, None).await;
    assert_eq!(code, 64, "a building or --all is required: {err}");
    let (code, _, err) = central(&["grant", "ghost", "web-house"], &db, None).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no user ghost"), "{err}");
    let (code, out, err) = central(&["revoke", "anna", BUILDING], &db, None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 grant(s) revoked"), "{out}");
    assert!(ids(anna.get("/api/buildings").await.json()).is_empty());
    assert_eq!(anna.get("/buildings/web-house").await.status, 404);
    let (code, _, err) = central(&["grant", "anna", "--all"], &db, None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(ids(anna.get("/api/buildings").await.json()).len(), 2);
    let (code, _, err) = central(&["revoke", "boss", "--all"], &db, None).await;
    assert_eq!(code, 0, "{err}");
    assert!(ids(boss.get("/api/buildings").await.json()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_logs_in_opens_a_building_and_sees_a_value_synced_seconds_before() {
    if !require_postgres() || !require_chromium() {
        return;
    }
    let (mut pg, gw) = synced_gateway("webbrowser").await;
    let web = CentralWeb::start(&mut pg, &WebOptions::default()).await;
    add_user(&pg, "ivan", "Ivan Petrov", PASSWORD).await;
    let api = web.client();
    assert_eq!(api.login("ivan", PASSWORD).await.status, 303);
    assert_eventually!(
        api.get(&format!("/api/buildings/{BUILDING}"))
            .await
            .json()
            .pipe(|j| find_sensor(&j, "f1.r101.temperature").is_some_and(|s| s["value"].is_f64())),
        "no value synced yet:\n{}",
        gw.log()
    );

    let driver = ChromeDriver::start().await;
    let browser = driver.session().await;
    // A building's page sends a stranger to the login form, which brings them back.
    browser
        .goto(&format!("{}/buildings/{BUILDING}", web.url()))
        .await
        .unwrap();
    let login = browser
        .wait()
        .for_element(Locator::Css("form.login"))
        .await
        .unwrap();
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/login")
    );
    browser
        .find(Locator::Id("login"))
        .await
        .unwrap()
        .send_keys("ivan")
        .await
        .unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    login
        .find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let heading = match browser.wait().for_element(Locator::Id("building")).await {
        Ok(h) => h,
        Err(e) => panic!(
            "no building page after signing in ({e}): at {}\n{}",
            browser.current_url().await.unwrap(),
            browser.source().await.unwrap()
        ),
    };
    assert_eq!(heading.text().await.unwrap(), "Web test house");
    assert_eq!(
        browser.current_url().await.unwrap().path(),
        format!("/buildings/{BUILDING}")
    );

    // The value shown for room 101's temperature is a reading the gateway committed seconds
    // before: the same value at the same time in its own buffer.
    let cell = browser
        .find(Locator::Css("td.value[data-key='f1.r101.temperature']"))
        .await
        .unwrap();
    let value: f64 = cell
        .attr("data-value")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    let ts: i64 = cell
        .attr("data-ts")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    let text = cell.text().await.unwrap();
    assert_eq!(
        text,
        format!("{value:.1} °C"),
        "what the person reads, with the plan's decimals"
    );
    assert!(
        local_has(&gw.db_path(), "f1.r101.temperature", ts, value),
        "{value} at {ts}"
    );
    let age = now_ms() - ts;
    assert!(age < 30_000, "the value is {age} ms old");
    // The floor plan is there, with room 101 drawn from its polygon and an alarm marker.
    let rooms = browser
        .find_all(Locator::Css("svg.plan g.room"))
        .await
        .unwrap();
    assert!(rooms.len() >= 4, "{} rooms drawn", rooms.len());
    assert_eq!(
        browser
            .find_all(Locator::Css("svg.plan .alarm-marker"))
            .await
            .unwrap()
            .len(),
        1
    );

    // A sensor's page with its chart; then sign out.
    browser
        .find(Locator::LinkText(&cell_link_text(&browser).await))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css("svg.chart"))
        .await
        .unwrap();
    let mut url = browser.current_url().await.unwrap();
    assert!(
        url.path().starts_with(&format!("/sensors/{GATEWAY}/")),
        "{url}"
    );
    // The last five minutes in 1 s buckets: a line through the seconds the gateway has run.
    url.set_query(Some("range=5m"));
    browser.goto(url.as_str()).await.unwrap();
    let chart = browser
        .wait()
        .for_element(Locator::Css("svg.chart polyline"))
        .await;
    assert!(
        chart.is_ok(),
        "no chart line: {}",
        browser.source().await.unwrap()
    );
    // Phone first and readable: every page at a phone's 390x844 and a laptop's 1280x800 has no
    // sideways scrolling, and every text contrasts at least 4.5:1 with what is behind it.
    let alarm_id = api.get(&format!("/api/buildings/{BUILDING}")).await.json()["active_alarms"][0]
        ["alarm_id"]
        .clone();
    let sensor_url = url.as_str().to_owned();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("central_web-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let pages = [
        ("buildings", format!("{}/", web.url())),
        ("building", format!("{}/buildings/{BUILDING}", web.url())),
        ("sensor", sensor_url.clone()),
        ("sensor-1h", sensor_url.replace("range=5m", "range=1h")),
        (
            "alarm",
            format!("{}/alarms/{GATEWAY}/{alarm_id}", web.url()),
        ),
    ];
    for (name, page) in &pages {
        for size in [(390, 844), (1280, 800)] {
            let shot = shots.join(format!("{name}-{}x{}.png", size.0, size.1));
            let report = readable_at(&browser, name, page, size, &shot, 10).await;
            if *name == "building" {
                assert!(
                    report["plans"].as_u64().unwrap() >= 2,
                    "the plans are drawn: {report}"
                );
            }
        }
    }

    // Plant rooms are coloured by their alarms, not by the comfort scale: the boiler room (60 °C
    // or so) is "normal"; the basement, whose only sensor is a leak detector, shows its state in
    // words ("dry" or "wet", as its latest synced value says), not "no value". The simulated pipe
    // leaks for ten minutes of every hour, so the expected word comes from the same moment's API
    // answer, and a page read across a change of state is read again.
    browser.set_window_size(1280, 1600).await.unwrap();
    let mut plant: Value;
    let mut leak: Value;
    assert_eventually!(
        {
            browser
                .goto(&format!("{}/buildings/{BUILDING}", web.url()))
                .await
                .unwrap();
            plant = browser.execute(PLANT_ROOMS_JS, vec![]).await.unwrap();
            leak = api.get(&format!("/api/buildings/{BUILDING}")).await.json();
            let leak = find_sensor(&leak, "basement.leak").map(|s| s["value"].as_f64());
            let expected = match leak {
                Some(Some(0.0)) => "dry",
                Some(Some(_)) => "wet",
                _ => "a leak value synced",
            };
            plant["basement"]["text"] == expected
        },
        "the basement does not say its leak state: {plant}\n{leak}"
    );
    assert_eq!(plant["boiler"]["kind"], "plant", "{plant}");
    assert_eq!(plant["boiler"]["fill"], "rgb(215, 210, 232)", "{plant}");
    assert_eq!(plant["basement"]["kind"], "plant", "{plant}");
    assert_eq!(plant["office"]["kind"], "comfort", "{plant}");

    // The same pages in Russian: `?lang=ru` once, remembered; no English word in what the page
    // itself says (the building's own names, messages and ids are data, taken out first).
    let mut data = Vec::new();
    for path in [
        format!("/api/buildings/{BUILDING}"),
        format!("/api/alarms/{GATEWAY}/{alarm_id}"),
        format!(
            "/api/sensors/{GATEWAY}/{}",
            url.path().rsplit('/').next().unwrap()
        ),
        "/api/me".to_owned(),
        "/api/buildings".to_owned(),
    ] {
        data_strings(&api.get(&path).await.json(), "", &mut data);
    }
    data.sort_by_key(|s| std::cmp::Reverse(s.chars().count()));
    data.dedup();
    browser
        .goto(&format!("{}/?lang=ru", web.url()))
        .await
        .unwrap();
    for (name, page) in &pages {
        for size in [(390, 844), (1280, 800)] {
            let shot = shots.join(format!("{name}-ru-{}x{}.png", size.0, size.1));
            readable_at(&browser, name, page, size, &shot, 10).await;
            let lang = browser
                .execute("return document.documentElement.lang;", vec![])
                .await
                .unwrap();
            assert_eq!(lang, "ru", "{name}: the language is remembered");
            let text = browser.execute(VISIBLE_TEXT_JS, vec![]).await.unwrap();
            let english = english_words(text.as_str().unwrap(), &data);
            assert!(
                english.is_empty(),
                "{name} in Russian shows English: {english:?}"
            );
        }
    }
    // And back: the switch in the header.
    browser
        .find(Locator::Id("lang"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        browser
            .execute("return document.documentElement.lang;", vec![])
            .await
            .unwrap(),
        "en"
    );
    browser.set_window_size(1280, 1600).await.unwrap();
    browser
        .find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css("form.login"))
        .await
        .unwrap();
    browser
        .goto(&format!("{}/api/buildings", web.url()))
        .await
        .unwrap();
    let body = browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("not signed in"), "{body}");
    browser.close().await.unwrap();
}

/// Run in the building's page: kind, fill and summary text of the boiler room, the basement and
/// office 101 on the plans.
const PLANT_ROOMS_JS: &str = r#"
const room = (id) => {
  const g = document.querySelector(`svg.plan g.room[data-room="${id}"]`);
  if (!g) return null;
  return { kind: g.dataset.kind, fill: getComputedStyle(g.querySelector('polygon')).fill,
           text: g.querySelector('text.temp').textContent };
};
return { boiler: room('boiler room'), basement: room('basement'), office: room('101') };
"#;

/// Run in a page: the text a person reads (the body's rendered text, the plans' labels, the
/// charts' words, the buttons' and options' labels).
const VISIBLE_TEXT_JS: &str = r#"
const parts = [document.title, document.body.innerText];
for (const t of document.querySelectorAll('svg text')) parts.push(t.textContent);
for (const e of document.querySelectorAll('input[type=submit]')) parts.push(e.value);
for (const e of document.querySelectorAll('button, option')) parts.push(e.textContent);
for (const e of document.querySelectorAll('[aria-label], [placeholder]')) {
  parts.push(e.getAttribute('aria-label') || '', e.getAttribute('placeholder') || '');
}
return parts.join('\n');
"#;

/// Every string in a JSON answer that is the building's own data (names, ids, messages,
/// keys), not a word of the application's (states, kinds, statuses are left out: the page must
/// put those in words).
fn data_strings(v: &Value, key: &str, out: &mut Vec<String>) {
    const WORDS: [&str; 11] = [
        "kind", "state", "severity", "status", "quality", "event", "channel", "action", "source",
        "pending", "error",
    ];
    match v {
        Value::String(s) if !WORDS.contains(&key) && !s.trim().is_empty() => {
            out.push(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|x| data_strings(x, key, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| data_strings(x, k, out)),
        _ => {}
    }
}

/// The Latin words of three letters or more left in `text` once the `data` strings are taken
/// out, except names that are the same in both languages.
fn english_words(text: &str, data: &[String]) -> Vec<String> {
    const SAME: [&str; 8] = [
        "Markoff",
        "JSON",
        "UTC",
        "Telegram",
        "English",
        "CO2",
        "office_login",
        "users",
    ];
    let mut rest = text.to_owned();
    for d in data {
        rest = rest.replace(d.as_str(), " ");
    }
    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.chars().filter(char::is_ascii_alphabetic).count() >= 3)
        .filter(|w| !SAME.contains(w))
        .filter(|w| !w.starts_with("markoff"))
        .map(str::to_owned)
        .collect()
}

/// The name of room 101's temperature sensor as linked on the page.
async fn cell_link_text(browser: &fantoccini::Client) -> String {
    let row = browser
        .find(Locator::XPath(
            "//td[@data-key='f1.r101.temperature']/preceding-sibling::td[1]/a",
        ))
        .await
        .unwrap();
    row.text().await.unwrap()
}

/// `value.pipe(f)`: applies `f` (keeps the conditions above on one expression).
trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl Pipe for Value {}

// === history at every resolution ===

/// (good readings, readings without a value, min, max, sum of values) of a history's buckets.
fn totals(h: &Value) -> (i64, i64, f64, f64, f64) {
    let points = h["points"].as_array().unwrap();
    let mut t = (0, 0, f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for p in points {
        let n = p["count"].as_i64().unwrap();
        t.0 += n;
        t.1 += p["bad"].as_i64().unwrap();
        if n > 0 {
            t.2 = t.2.min(p["min"].as_f64().unwrap());
            t.3 = t.3.max(p["max"].as_f64().unwrap());
            t.4 += p["avg"].as_f64().unwrap() * n as f64;
        }
    }
    t
}

/// The same from the readings with `ts` in [lo, hi) (ms; `None`: all).
async fn truth(
    admin: &mut PgConnection,
    lo: Option<i64>,
    hi: Option<i64>,
) -> (i64, i64, f64, f64, f64) {
    let r = sqlx::query(
        "SELECT count(value), count(*) - count(value), min(value), max(value), sum(value) \
         FROM markoff.readings WHERE gateway_id = 'web-gw' AND sensor_id = 1 \
           AND ($1::float8 IS NULL OR ts >= to_timestamp($1 / 1000)) \
           AND ($2::float8 IS NULL OR ts < to_timestamp($2 / 1000))",
    )
    .bind(lo.map(|v| v as f64))
    .bind(hi.map(|v| v as f64))
    .fetch_one(admin)
    .await
    .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
}

fn same(a: (i64, i64, f64, f64, f64), b: (i64, i64, f64, f64, f64), what: &str) {
    assert_eq!((a.0, a.1, a.2, a.3), (b.0, b.1, b.2, b.3), "{what}");
    assert!(
        (a.4 - b.4).abs() <= 1e-6 * b.4.abs().max(1.0),
        "{what}: {a:?} {b:?}"
    );
}

/// The history of the test sensor for query `q`.
async fn history(c: &WebClient, q: &str) -> Value {
    let a = c.get(&format!("/api/sensors/{GATEWAY}/1?{q}")).await;
    assert_eq!(a.status, 200, "{q}: {}", a.body);
    a.json()
}

/// The 30 days before `today` (ms) from the 10-minute rollup and in whole days, a year up to
/// now, and three hours of readings, each against the readings themselves.
async fn check_resolutions(c: &WebClient, admin: &mut PgConnection, today: i64) {
    let month = truth(admin, Some(today - 30 * 86_400_000), Some(today)).await;
    assert!(month.0 > 5000 && month.1 > 500, "{month:?}");
    let fine = history(c, &format!("range=30d&to={today}")).await;
    assert_eq!(fine["source"], "readings_10m");
    same(totals(&fine), month, "30 days of 10-minute buckets");
    let daily = history(c, &format!("range=30d&to={today}&points=10")).await;
    assert_eq!(daily["source"], "readings_1d");
    assert_eq!(daily["bucket_seconds"], 86_400);
    assert_eq!(daily["points"].as_array().unwrap().len(), 30);
    same(totals(&daily), month, "30 days of days");
    // Today's readings from the 10-minute rollup.
    let year = history(c, "range=365d").await;
    assert_eq!(year["source"], "readings_1d");
    same(totals(&year), truth(admin, None, None).await, "a year");
    let hours = history(c, &format!("range=3h&to={today}")).await;
    assert_eq!(hours["source"], "readings");
    same(
        totals(&hours),
        truth(admin, Some(today - 3 * 3_600_000), Some(today)).await,
        "three hours of readings",
    );
}

/// A sensor's history has the same readings, minimum, maximum and mean whichever resolution
/// the range picks: the raw readings (hours), the 10-minute rollup (up to a month) and the daily
/// rollup (longer: `maintain` fills it; the current day and days that received late readings
/// come from the 10-minute rollup until the next `maintain`). A user without the building gets
/// none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_totals_are_the_same_at_every_resolution() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("webres").await;
    pg.add_gateway(GATEWAY, BUILDING).await;
    let mut admin = pg.admin().await;
    let today = now_ms() - now_ms().rem_euclid(86_400_000);
    // 40 days and today until a minute ago, a reading every 433 s, every eleventh without a
    // value; the 10-minute rollup as the upload writes it; then `maintain`.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO markoff.sensors (gateway_id, sensor_id, key, name, kind, unit, source) VALUES \
           ('web-gw', 1, 'x', 'X', 'temperature', '°C', 'test'); \
         INSERT INTO markoff.readings (gateway_id, seq, sensor_id, ts, value, quality) \
         SELECT 'web-gw', i, 1, to_timestamp({start}::float8 / 1000) + i * interval '433 seconds', \
                CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 97)::float8 / 4 END, \
                CASE WHEN i % 11 = 0 THEN 1 ELSE 0 END \
         FROM generate_series(0, (extract(epoch FROM now() - interval '1 minute' \
                                          - to_timestamp({start}::float8 / 1000)) / 433)::int) i; \
         INSERT INTO markoff.readings_10m \
         SELECT gateway_id, sensor_id, \
                date_bin(interval '10 minutes', ts, timestamptz '2000-01-01 00:00:00+00'), \
                count(value), coalesce(sum(value), 0), min(value), max(value), \
                count(*) - count(value) \
         FROM markoff.readings GROUP BY 1, 2, 3; \
         INSERT INTO markoff.sensor_latest (gateway_id, sensor_id, seq, ts, value, quality) \
         SELECT gateway_id, sensor_id, seq, ts, value, quality FROM markoff.readings \
         ORDER BY ts DESC LIMIT 1;",
        start = today - 40 * 86_400_000
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let url = pg.admin_url();
    let env = [("DATABASE_URL", url.as_str())];
    let maintain = || async {
        let (code, out, err) = central(&["maintain"], &env, None).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("daily rollup:"), "{out}");
    };
    maintain().await;
    add_user(&pg, "ivan", "Ivan Petrov", PASSWORD).await;
    add_user_seeing(&pg, "olga", "Olga", PASSWORD, Access::Buildings(&[])).await;
    let web = CentralWeb::start(&mut pg, &WebOptions::default()).await;
    let c = web.client();
    assert_eq!(c.login("ivan", PASSWORD).await.status, 303);
    check_resolutions(&c, &mut admin, today).await;

    // Late readings of ten days ago, written as the upload writes them: counted at once (that
    // day from the 10-minute rollup), and rolled up by the next maintain.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "WITH src AS MATERIALIZED ( \
             SELECT 1000000 + i AS seq, 1 AS sensor_id, \
                    to_timestamp({late}::float8 / 1000) + i * interval '1 second' AS ts, \
                    1000.0 + i AS value, 0 AS quality FROM generate_series(1, 20) i), \
         ins AS (INSERT INTO markoff.readings (gateway_id, seq, sensor_id, ts, value, quality) \
                 SELECT 'web-gw', seq, sensor_id, ts, value, quality FROM src) \
         INSERT INTO markoff.readings_10m AS t \
         SELECT 'web-gw', sensor_id, \
                date_bin(interval '10 minutes', ts, timestamptz '2000-01-01 00:00:00+00'), \
                count(value), sum(value), min(value), max(value), 0 FROM src GROUP BY 2, 3 \
         ON CONFLICT (gateway_id, sensor_id, bucket) DO UPDATE \
         SET n = t.n + excluded.n, sum = t.sum + excluded.sum, \
             min = least(t.min, excluded.min), max = greatest(t.max, excluded.max)",
        late = today - 10 * 86_400_000 + 3_600_000
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let marked: i64 = sqlx::query_scalar("SELECT count(*) FROM markoff.readings_1d_pending")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(marked, 1);
    check_resolutions(&c, &mut admin, today).await;
    maintain().await;
    let marked: i64 = sqlx::query_scalar("SELECT count(*) FROM markoff.readings_1d_pending")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(marked, 0);
    check_resolutions(&c, &mut admin, today).await;

    // A user who may not see the building gets none of its history, at any resolution.
    let olga = web.client();
    assert_eq!(olga.login("olga", PASSWORD).await.status, 303);
    for q in ["range=1h", "range=7d", "range=365d"] {
        let a = olga.get(&format!("/api/sensors/{GATEWAY}/1?{q}")).await;
        assert_eq!(a.status, 404, "{q}: {}", a.body);
    }
}
