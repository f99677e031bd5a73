//! Acknowledging and shelving alarms from the office, end to end: the real `markoff-central
//! serve` records the request in a real PostgreSQL, the real `markoff` gateway pulls it on its
//! sync connection, applies it through its alarm engine (role check, audit) and answers it, and
//! the acknowledgement comes back as the alarm's events. While the gateway is down the request
//! waits (and the page says so), across a restart of the centre too; a request is applied once
//! across a kill -9 of the gateway, even when its answer was lost. Build the binaries first:
//! `cargo build -p markoff -p markoff-cloud-sync`.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use markoff_tests::central_web::{CentralWeb, WebClient, WebOptions, add_user};
use markoff_tests::pg::PgTestDb;
use markoff_tests::services::{postgres_addr, require_postgres};
use markoff_tests::{TempGateway, assert_eventually, db};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";
const GATEWAY: &str = "ack-gw";
const BUILDING: &str = "ack-house";

/// Two alarms raised at once; an operator and a viewer who use the office under other logins.
const SITE: &str = r#"
[site]
name = "Ack test house"

[[alarms.rule]]
alert = "Warm"
kind = "high"
sensor = "f1.r101.temperature"
limit = -100.0

[[alarms.rule]]
alert = "Warmer"
kind = "high"
sensor = "f1.r102.temperature"
limit = -100.0

[[users]]
login = "ivan-gw"
role = "operator"
office_login = "Ivan"

[[users]]
login = "vera-gw"
role = "viewer"
office_login = "vera"
"#;

/// `(alarm_id, state, acked_by)` of the alarm named `name`, as the centre has it.
async fn central_alarm(c: &WebClient, name: &str) -> Option<(i64, String, Option<String>)> {
    let b = c.get(&format!("/api/buildings/{BUILDING}")).await;
    if b.status != 200 {
        return None;
    }
    let j = b.json();
    let a = j["active_alarms"]
        .as_array()?
        .iter()
        .find(|a| a["alarm"] == name)?
        .clone();
    Some((
        a["alarm_id"].as_i64()?,
        a["state"].as_str()?.to_owned(),
        a["acked_by"].as_str().map(str::to_owned),
    ))
}

/// The office's requests on an alarm, newest first.
async fn requests(c: &WebClient, alarm_id: i64) -> Vec<Value> {
    let a = c.get(&format!("/api/alarms/{GATEWAY}/{alarm_id}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()["requests"].as_array().unwrap().clone()
}

/// Audit rows of the gateway recorded through `channel`: (actor, role, action, outcome).
fn audit(path: &Path, channel: &str) -> Vec<(String, Option<String>, String, String)> {
    let conn = db::open_read_only(path);
    let mut stmt = conn
        .prepare(
            "SELECT actor, role, action, outcome FROM audit_log WHERE channel = ?1 ORDER BY id",
        )
        .unwrap();
    stmt.query_map([channel], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The gateway's own events of `alarm_id` of kind `event` through `channel`.
fn local_events(path: &Path, alarm_id: i64, event: &str, channel: &str) -> i64 {
    db::open_read_only(path)
        .query_row(
            "SELECT count(*) FROM alarm_events WHERE alarm_id = ?1 AND event = ?2 AND channel = ?3",
            rusqlite::params![alarm_id, event, channel],
            |r| r.get(0),
        )
        .unwrap()
}

async fn signed_in(web: &CentralWeb, login: &str) -> WebClient {
    let c = web.client();
    let r = c.login(login, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    c
}

async fn csrf(c: &WebClient) -> String {
    c.get("/api/me").await.json()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn office_acknowledgements_reach_the_gateway_once() {
    if !require_postgres() {
        return;
    }
    let mut pg = PgTestDb::create("officeack").await;
    let creds = pg.add_gateway(GATEWAY, BUILDING).await;
    let mut gw = TempGateway::builder()
        .id(GATEWAY)
        .simulator(1, 2, Duration::from_millis(200))
        .extra_toml(&pg.sync_toml(&creds.role, &postgres_addr(), 1000))
        .extra_toml(SITE)
        .start()
        .await;
    let web = CentralWeb::start(&mut pg, &WebOptions::default()).await;
    for (login, name) in [("ivan", "Ivan Petrov"), ("vera", "Vera"), ("petr", "Petr")] {
        add_user(&pg, login, name, PASSWORD).await;
    }
    let ivan = signed_in(&web, "ivan").await;
    let vera = signed_in(&web, "vera").await;
    let petr = signed_in(&web, "petr").await;

    assert_eventually!(
        central_alarm(&ivan, "Warm/f1.r101.temperature")
            .await
            .is_some()
            && central_alarm(&ivan, "Warmer/f1.r102.temperature")
                .await
                .is_some(),
        "the alarms never reached the centre:\n{}",
        gw.log()
    );
    let (warm, state, _) = central_alarm(&ivan, "Warm/f1.r101.temperature")
        .await
        .unwrap();
    assert_eq!(state, "active_unacked");
    let (warmer, _, _) = central_alarm(&ivan, "Warmer/f1.r102.temperature")
        .await
        .unwrap();

    // The gateway is down: the requests wait, and the pages say so.
    gw.kill9();
    let page = ivan.get(&format!("/alarms/{GATEWAY}/{warm}")).await;
    let token = page.input("csrf").unwrap();
    let asked = ivan
        .post_form(
            &format!("/alarms/{GATEWAY}/{warm}/requests"),
            &[("csrf", &token), ("action", "ack")],
        )
        .await;
    assert_eq!(asked.status, 303, "{}", asked.body);
    let token = csrf(&ivan).await;
    let shelve = ivan
        .post_json(
            &format!("/api/alarms/{GATEWAY}/{warmer}/requests"),
            &json!({"action": "shelve", "duration": "1h"}),
            &[("x-csrf-token", &token)],
        )
        .await;
    assert_eq!(shelve.status, 202, "{}", shelve.body);
    assert_eq!(shelve.json()["state"], "pending");
    assert_eq!(shelve.json()["shelve_seconds"], 3600);
    let token = csrf(&vera).await;
    let refused = vera
        .post_json(
            &format!("/api/alarms/{GATEWAY}/{warmer}/requests"),
            &json!({"action": "ack"}),
            &[("x-csrf-token", &token)],
        )
        .await;
    assert_eq!(refused.status, 202, "{}", refused.body);
    let refused_id = refused.json()["request_id"].as_i64().unwrap();
    // Asking for what is already waiting adds nothing.
    let token = csrf(&petr).await;
    let again = petr
        .post_json(
            &format!("/api/alarms/{GATEWAY}/{warmer}/requests"),
            &json!({"action": "ack"}),
            &[("x-csrf-token", &token)],
        )
        .await;
    assert_eq!(again.json()["request_id"], refused_id);
    // Bad requests are refused before they are stored.
    for (body, status) in [
        (json!({"action": "delete"}), 422),
        (json!({"action": "shelve", "duration": "90d"}), 422),
        (json!({"action": "shelve"}), 422),
    ] {
        let r = petr
            .post_json(
                &format!("/api/alarms/{GATEWAY}/{warmer}/requests"),
                &body,
                &[("x-csrf-token", &token)],
            )
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
    }
    let r = petr
        .post_json(
            &format!("/api/alarms/{GATEWAY}/{warmer}/requests"),
            &json!({"action": "ack"}),
            &[("x-csrf-token", "wrong")],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = petr
        .post_json(
            &format!("/api/alarms/{GATEWAY}/99999/requests"),
            &json!({"action": "ack"}),
            &[("x-csrf-token", &token)],
        )
        .await;
    assert_eq!(r.status, 404);

    let page = ivan.get(&format!("/alarms/{GATEWAY}/{warm}")).await;
    assert!(
        page.body.contains("waiting for the gateway"),
        "{}",
        page.body
    );
    let building = ivan.get(&format!("/buildings/{BUILDING}")).await;
    assert!(
        building.body.contains("data-pending=\"ack\""),
        "{}",
        building.body
    );
    let ack_id = requests(&ivan, warm).await[0]["request_id"]
        .as_i64()
        .unwrap();

    // The centre restarts; the requests are still there, still waiting.
    drop(web);
    let web = CentralWeb::start(&mut pg, &WebOptions::default()).await;
    let ivan = signed_in(&web, "ivan").await;
    let r = requests(&ivan, warm).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["state"], "pending");
    assert_eq!(r[0]["login"], "ivan");
    assert_eq!(
        central_alarm(&ivan, "Warm/f1.r101.temperature")
            .await
            .unwrap()
            .1,
        "active_unacked"
    );

    // The gateway comes back: it pulls, applies, answers; the acknowledgement comes back as the
    // alarm's events.
    gw.restart().await;
    assert_eventually!(
        {
            let a = central_alarm(&ivan, "Warm/f1.r101.temperature").await;
            let all_answered = requests(&ivan, warm).await[0]["state"] == "done"
                && requests(&ivan, warmer)
                    .await
                    .iter()
                    .all(|r| r["state"] != "pending");
            all_answered && a.is_some_and(|a| a.1 == "active_acked")
        },
        "the requests were not applied:\n{:?}\n{}",
        requests(&ivan, warmer).await,
        gw.log()
    );
    let (_, _, acked_by) = central_alarm(&ivan, "Warm/f1.r101.temperature")
        .await
        .unwrap();
    assert_eq!(acked_by.as_deref(), Some("ivan-gw"));
    let r = requests(&ivan, warm).await;
    assert_eq!(r[0]["actor"], "ivan-gw");
    let on_warmer = requests(&ivan, warmer).await;
    let shelved = on_warmer.iter().find(|r| r["action"] == "shelve").unwrap();
    assert_eq!(shelved["state"], "done", "{on_warmer:?}");
    let vera_ack = on_warmer.iter().find(|r| r["action"] == "ack").unwrap();
    assert_eq!(vera_ack["state"], "refused", "{on_warmer:?}");
    assert_eq!(vera_ack["actor"], "vera-gw");
    assert!(
        vera_ack["detail"]
            .as_str()
            .unwrap()
            .contains("operator role"),
        "{vera_ack}"
    );

    // On the gateway: audited as the mapped users, with the request in the channel, once each.
    let path = gw.db_path();
    let channel = format!("office:{ack_id}");
    assert_eq!(
        audit(&path, &channel),
        [(
            "ivan-gw".to_owned(),
            Some("operator".to_owned()),
            "ack".to_owned(),
            "done".to_owned()
        )]
    );
    let refused_audit = audit(&path, &format!("office:{refused_id}"));
    assert_eq!(refused_audit.len(), 1);
    assert_eq!(refused_audit[0].0, "vera-gw");
    assert_eq!(refused_audit[0].3, "refused");
    assert_eq!(local_events(&path, warm, "acked", &channel), 1);

    // The answer is lost (the gateway dies after applying, before answering): the request is
    // pending again centrally. After a kill -9 and a restart the gateway answers it from its
    // audit log and does not apply it a second time.
    let mut admin = pg.admin().await;
    sqlx::query(
        "UPDATE markoff.office_requests SET state = 'pending', actor = NULL, answered_at = NULL \
         WHERE request_id = $1",
    )
    .bind(ack_id)
    .execute(&mut admin)
    .await
    .unwrap();
    gw.kill9();
    gw.restart().await;
    assert_eventually!(
        requests(&ivan, warm).await[0]["state"] == "done",
        "the request was not answered again:\n{}",
        gw.log()
    );
    assert_eq!(requests(&ivan, warm).await[0]["actor"], "ivan-gw");
    assert_eq!(audit(&path, &channel).len(), 1, "applied twice");
    assert_eq!(local_events(&path, warm, "acked", &channel), 1);
    let central_acks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM markoff.alarm_events WHERE gateway_id = $1 AND alarm_id = $2 \
         AND event = 'acked'",
    )
    .bind(GATEWAY)
    .bind(warm)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(central_acks, 1);
    assert!(
        gw.log().contains("applied before"),
        "the second run did not find the request in its audit log"
    );

    // The alarm page shows what happened.
    let page = ivan.get(&format!("/alarms/{GATEWAY}/{warm}")).await;
    assert!(page.body.contains("data-state=\"done\""), "{}", page.body);
    assert!(page.body.contains("ivan-gw"));
}
