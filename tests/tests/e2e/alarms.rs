//! Local alarms through the real binary: a rule on a simulated room fires, `markoff alarms` lists
//! it, a viewer's `markoff ack` is refused and an operator's is done (both in the audit log, under
//! the identity their bearer token stands for), and after `kill -9` and a restart the alarm is
//! still acknowledged and is not raised again.

use markoff_tests::{TempGateway, assert_eventually, db, metric_in, run_markoff};
use rusqlite::Connection;

use super::ms;

/// A rule that fires at the first reading (a room is always above 0 °C), an operator and a viewer.
const ALARMS: &str = r#"
[alarms]
tick = "100ms"

[[alarms.rule]]
alert = "RoomTooWarm"
kind = "high"
sensor = "f1.r101.temperature"
limit = 0.0
severity = "high"

[[alarms.notify]]
channel = "log"

[[users]]
login = "ivan"
name = "Ivan Petrov"
role = "operator"

[[users]]
login = "olga"
role = "viewer"
"#;

const ALERT: &str = "RoomTooWarm";

/// Bearer tokens of `[[http.token]]` for the two people.
const IVAN_TOKEN: &str = "ivan-e2e-token-5b1f";
const OLGA_TOKEN: &str = "olga-e2e-token-93c2";

/// `markoff <args> --api <api>`: exit code, stdout, stderr.
async fn cli(api: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--api", api]);
    let out = run_markoff(&all).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `markoff alarms [--all] --json`: the alarm of [`ALERT`], if listed.
async fn listed(api: &str, all: bool) -> Option<serde_json::Value> {
    let args: &[&str] = if all {
        &["alarms", "--all", "--json"]
    } else {
        &["alarms", "--json"]
    };
    let (code, out, err) = cli(api, args).await;
    assert_eq!(code, Some(0), "markoff {args:?} failed: {err}");
    let list: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("markoff {args:?} printed no JSON ({e}):\n{out}"));
    let list = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"));
    list.iter().find(|a| a["alert"] == ALERT).cloned()
}

fn count(conn: &Connection, sql: &str, id: i64) -> i64 {
    conn.query_row(sql, [id], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Audit entries for alarm `id`, oldest first: (actor, role, channel, action, outcome, detail).
type AuditRow = (
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
);

fn audit(conn: &Connection, id: i64) -> Vec<AuditRow> {
    let mut stmt = conn
        .prepare(
            "SELECT actor, role, channel, action, outcome, detail FROM audit_log \
             WHERE target = ?1 ORDER BY id",
        )
        .expect("prepare the audit query");
    stmt.query_map([id.to_string()], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .expect("query the audit log")
    .collect::<Result<_, _>>()
    .expect("read the audit log")
}

async fn evaluated(gw: &TempGateway) -> f64 {
    metric_in(
        &gw.metrics_text().await,
        "markoff_alarms_readings_evaluated_total",
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn alarm_is_listed_acknowledged_by_an_operator_only_and_survives_kill9() {
    let mut gw = TempGateway::builder()
        .id("alarms")
        .simulator(1, 2, ms(100))
        .extra_toml(ALARMS)
        .api_token("ivan", IVAN_TOKEN)
        .api_token("olga", OLGA_TOKEN)
        .start()
        .await;
    let api = gw.api_url().to_owned();
    let token_file = |name: &str, token: &str| {
        let path = gw.dir().join(format!("{name}.token"));
        std::fs::write(&path, format!("{token}\n")).expect("write a token file");
        path.display().to_string()
    };
    let (ivan_token, olga_token) = (
        token_file("ivan", IVAN_TOKEN),
        token_file("olga", OLGA_TOKEN),
    );

    // Listed for people, then as JSON.
    assert_eventually!(
        {
            let (code, out, _) = cli(&api, &["alarms"]).await;
            code == Some(0)
                && out
                    .lines()
                    .any(|l| l.contains(ALERT) && l.contains("active, unacknowledged"))
        },
        "markoff alarms never listed {ALERT} as active:\n{}",
        cli(&api, &["alarms"]).await.1
    );
    let alarm = listed(&api, false)
        .await
        .expect("the JSON list has the alarm");
    assert_eq!(alarm["state"], "active_unacked", "{alarm}");
    assert_eq!(alarm["sensor"], "f1.r101.temperature", "{alarm}");
    assert_eq!(alarm["severity"], "high", "{alarm}");
    assert_eq!(alarm["unit"], "°C", "{alarm}");
    assert!(alarm["value"].as_f64().is_some_and(|v| v > 0.0), "{alarm}");
    let id = alarm["id"].as_i64().expect("a numeric id");
    let id_arg = id.to_string();

    // A viewer may not acknowledge.
    let (code, out, err) = cli(&api, &["ack", &id_arg, "--token-file", &olga_token]).await;
    assert_ne!(code, Some(0), "olga's ack succeeded: {out}");
    assert!(err.contains("operator role"), "{err}");
    assert_eq!(
        listed(&api, false).await.map(|a| a["state"].clone()),
        Some("active_unacked".into()),
        "a refused ack changed the alarm"
    );

    // An operator may.
    let (code, out, err) = cli(&api, &["ack", &id_arg, "--token-file", &ivan_token]).await;
    assert_eq!(code, Some(0), "ivan's ack failed: {err}");
    assert!(
        out.contains(&format!("#{id} {ALERT}: acked")) && out.contains("by ivan"),
        "{out}"
    );
    let alarm = listed(&api, true).await.expect("listed with --all");
    assert_eq!(alarm["state"], "active_acked", "{alarm}");
    assert_eq!(alarm["acked_by"], "ivan", "{alarm}");

    // Both attempts are audited (the action is committed before the CLI gets its answer).
    let conn = db::open_read_only(&gw.db_path());
    let entries = audit(&conn, id);
    assert_eq!(entries.len(), 2, "{entries:?}");
    let (actor, role, channel, action, outcome, detail) = &entries[0];
    assert_eq!(
        (
            actor.as_str(),
            role.as_deref(),
            channel.as_str(),
            action.as_str()
        ),
        ("olga", Some("viewer"), "token", "ack"),
        "{entries:?}"
    );
    assert_eq!(outcome, "refused", "{entries:?}");
    assert!(
        detail
            .as_deref()
            .is_some_and(|d| d.contains("operator role")),
        "{entries:?}"
    );
    assert_eq!(
        entries[1],
        (
            "ivan".to_owned(),
            Some("operator".to_owned()),
            "token".to_owned(),
            "ack".to_owned(),
            "done".to_owned(),
            None
        ),
        "{entries:?}"
    );
    let raised = "SELECT count(*) FROM alarm_events WHERE alarm_id = ?1 AND event = 'raised'";
    assert_eq!(count(&conn, raised, id), 1);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM alarm_events WHERE alarm_id = ?1 AND event = 'acked' \
             AND actor = 'ivan' AND channel = 'token'",
            id
        ),
        1
    );
    let notified = "SELECT count(*) FROM outbox WHERE alarm_id = ?1 AND kind = 'raised'";
    assert_eq!(count(&conn, notified, id), 1, "one recipient, one row");
    drop(conn);

    // kill -9, restart: still acknowledged, evaluated again, never raised again.
    gw.kill9();
    gw.restart().await;
    let api = gw.api_url().to_owned();
    let alarm = listed(&api, false)
        .await
        .expect("still open after the restart");
    assert_eq!(alarm["id"].as_i64(), Some(id), "{alarm}");
    assert_eq!(alarm["state"], "active_acked", "{alarm}");
    assert_eq!(alarm["acked_by"], "ivan", "{alarm}");
    // A second's worth of readings evaluated by the new process (12 sensors every 100 ms).
    assert_eventually!(
        evaluated(&gw).await >= 120.0,
        "the restarted engine does not evaluate readings:\n{}",
        gw.log()
    );
    let alarm = listed(&api, true).await.expect("listed with --all");
    assert_eq!(alarm["state"], "active_acked", "{alarm}");
    let conn = db::open_read_only(&gw.db_path());
    assert_eq!(
        count(&conn, raised, id),
        1,
        "raised again after the restart"
    );
    assert_eq!(
        count(&conn, notified, id),
        1,
        "notified again after the restart"
    );
    assert_eq!(audit(&conn, id).len(), 2);
}
