//! The local control plane knows who is calling: on TCP a state-changing request needs a bearer
//! token and acts as its user; on the Unix socket the caller's Unix account (from the kernel)
//! decides, and an account outside the socket's group cannot act at all. A `user` or `channel`
//! in the body never changes who the audit log says acted.

use markoff_tests::accounts::{Account, TestGroup, require_root};
use markoff_tests::{TempGateway, assert_eventually, db, metric_in};
use rusqlite::Connection;
use serde_json::{Value, json};

use super::{ROOM_TOO_WARM, ms};

const IVAN_TOKEN: &str = "ivan-local-auth-token-71d0";
const OLGA_TOKEN: &str = "olga-local-auth-token-0c5e";

/// Audit rows of alarm `id`, oldest first: (actor, role, channel, action, outcome).
fn audit(gw: &TempGateway, id: i64) -> Vec<(String, Option<String>, String, String, String)> {
    let conn: Connection = db::open_read_only(&gw.db_path());
    let mut stmt = conn
        .prepare(
            "SELECT actor, role, channel, action, outcome FROM audit_log \
             WHERE target = ?1 ORDER BY id",
        )
        .expect("prepare the audit query");
    stmt.query_map([id.to_string()], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .expect("query the audit log")
    .collect::<Result<_, _>>()
    .expect("read the audit log")
}

/// The id of the room alarm once it is raised.
async fn raised_alarm(gw: &TempGateway) -> i64 {
    assert_eventually!(
        gw.get_json("/api/v1/alarms")
            .await
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["alert"] == "RoomTooWarm")),
        "the alarm was never raised:\n{}",
        gw.log()
    );
    alarm(gw).await["id"].as_i64().expect("a numeric id")
}

async fn alarm(gw: &TempGateway) -> Value {
    gw.get_json("/api/v1/alarms?all=true")
        .await
        .as_array()
        .and_then(|a| a.iter().find(|x| x["alert"] == "RoomTooWarm").cloned())
        .expect("the alarm is listed")
}

/// Every state-changing request, each with a forged identity in its body.
fn mutating(id: i64) -> Vec<(String, Value)> {
    let forged = |extra: Value| {
        let mut body = json!({"user": "ivan", "channel": "lan"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };
    vec![
        (format!("/api/v1/alarms/{id}/ack"), forged(json!({}))),
        (
            format!("/api/v1/alarms/{id}/shelve"),
            forged(json!({"duration": "2h"})),
        ),
        (format!("/api/v1/alarms/{id}/unshelve"), forged(json!({}))),
        (
            format!("/api/v1/alarms/{id}/out-of-service"),
            forged(json!({"enabled": true})),
        ),
        ("/api/v1/ask".to_owned(), forged(json!({"text": "/status"}))),
        (
            "/api/v1/ask/confirm".to_owned(),
            forged(json!({"token": "0000"})),
        ),
        ("/api/v1/modbus/holes/forget".to_owned(), forged(json!({}))),
    ]
}

/// Audit rows of Modbus hole forgets, oldest first: (actor, role, channel, outcome).
fn forgets(gw: &TempGateway) -> Vec<(String, Option<String>, String, String)> {
    let conn: Connection = db::open_read_only(&gw.db_path());
    let mut stmt = conn
        .prepare(
            "SELECT actor, role, channel, outcome FROM audit_log \
             WHERE action = 'forget_holes' ORDER BY id",
        )
        .expect("prepare the audit query");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query the audit log")
        .collect::<Result<_, _>>()
        .expect("read the audit log")
}

/// Every route of the local API as `(methods, path)`, read from the router's source, so that a
/// route added there is checked here without anyone listing it.
fn routes() -> Vec<(String, String)> {
    let src = include_str!("../../../daemon/src/channels/http.rs");
    let src = &src[src.find("pub fn router(").expect("the router")..];
    let src = &src[..src.find("\n}\n").expect("the router's end")];
    let mut out = Vec::new();
    for part in src.split(".route(").skip(1) {
        let path = part.split('"').nth(1).expect("a quoted path").to_owned();
        let handler = part.split_once(',').map_or("", |(_, h)| h);
        let method = if handler.trim_start().starts_with("get(") {
            "get"
        } else if handler.contains("routing::post(") {
            "post"
        } else {
            "other"
        };
        out.push((method.to_owned(), path));
    }
    out
}

#[tokio::test]
async fn tcp_actions_need_a_token_and_act_as_its_user_whatever_the_body_says() {
    let gw = TempGateway::builder()
        .simulator(1, 2, ms(100))
        .extra_toml(&format!(
            "{ROOM_TOO_WARM}\n[[users]]\nlogin = \"ivan\"\nrole = \"operator\"\n\n\
             [[users]]\nlogin = \"olga\"\nrole = \"viewer\"\n"
        ))
        .api_token("ivan", IVAN_TOKEN)
        .api_token("olga", OLGA_TOKEN)
        .start()
        .await;
    let id = raised_alarm(&gw).await;
    let before = alarm(&gw).await;

    // Without a token, or with a wrong one, nothing changes: 401, nothing audited.
    let endpoints = mutating(id);
    for (path, body) in &endpoints {
        let (code, text) = gw.post_json(None, path, body).await.expect("POST");
        assert_eq!(code, 401, "POST {path} without a token: {text}");
        let (code, _) = gw
            .post_json(Some("not-a-token"), path, body)
            .await
            .expect("POST");
        assert_eq!(code, 401, "POST {path} with a wrong token");
    }
    let after = alarm(&gw).await;
    for key in ["state", "shelved_until", "out_of_service", "acked_by"] {
        assert_eq!(before[key], after[key], "{key} changed: {after}");
    }
    assert!(audit(&gw, id).is_empty(), "{:?}", audit(&gw, id));
    let metrics = gw.metrics_text().await;
    let refused = |reason: &str| {
        metric_in(
            &metrics,
            &format!("markoff_api_requests_refused_total{{reason=\"{reason}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(
        refused("no_credentials"),
        endpoints.len() as f64,
        "{metrics}"
    );
    assert_eq!(refused("bad_token"), endpoints.len() as f64, "{metrics}");

    // Every route of the router: a state-changing method without credentials is refused (401),
    // or the route has no such method (405). Every POST route is in the list above.
    let routes = routes();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    assert!(routes.len() >= 15, "{routes:?}");
    for (method, path) in &routes {
        let path = path
            .replace("{id}", &id.to_string())
            .replace("{action}", "ack")
            .replace("{sensor}", "room.temp");
        if method == "post" {
            assert!(
                endpoints.iter().any(|(p, _)| *p == path),
                "POST {path} is not in the list of state-changing requests"
            );
        } else {
            assert_eq!(method, "get", "{path}: a method this test does not know");
        }
        for verb in ["POST", "PUT", "PATCH", "DELETE"] {
            let method = reqwest::Method::from_bytes(verb.as_bytes()).expect("a method");
            let code = http
                .request(method, format!("{}{path}", gw.api_url()))
                .json(&json!({"user": "ivan", "channel": "lan"}))
                .send()
                .await
                .expect("a request to the local API")
                .status()
                .as_u16();
            assert!(
                code == 401 || code == 405,
                "{verb} {path} without credentials answered {code}"
            );
        }
    }

    // Reads stay open.
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/api/v1/status",
        "/api/v1/alarms",
    ] {
        assert_eq!(gw.get(path).await.expect("GET").0, 200, "GET {path}");
    }

    // A viewer's token, naming ivan on the LAN page in the body: refused and audited as olga.
    let ack = format!("/api/v1/alarms/{id}/ack");
    let (code, text) = gw
        .post_json(
            Some(OLGA_TOKEN),
            &ack,
            &json!({"user": "ivan", "channel": "lan"}),
        )
        .await
        .expect("POST");
    assert_eq!(code, 403, "{text}");
    assert_eq!(alarm(&gw).await["state"], before["state"]);

    // An operator's token, claiming to be olga on Telegram: done, as ivan over a token.
    let (code, text) = gw
        .post_json(
            Some(IVAN_TOKEN),
            &ack,
            &json!({"user": "olga", "channel": "telegram"}),
        )
        .await
        .expect("POST");
    assert_eq!(code, 200, "{text}");
    assert_eq!(alarm(&gw).await["acked_by"], "ivan");
    let row = |actor: &str, role: &str, outcome: &str| {
        (
            actor.to_owned(),
            Some(role.to_owned()),
            "token".to_owned(),
            "ack".to_owned(),
            outcome.to_owned(),
        )
    };
    assert_eq!(
        audit(&gw, id),
        vec![
            row("olga", "viewer", "refused"),
            row("ivan", "operator", "done")
        ]
    );
}

#[tokio::test]
async fn socket_callers_act_as_their_unix_account_and_outsiders_cannot() {
    if !require_root("socket_callers_act_as_their_unix_account_and_outsiders_cannot") {
        return;
    }
    let mut group = TestGroup::create("mkop");
    let operator = group.account("o", true);
    let viewer = group.account("v", true);
    let stranger = group.account("s", true);
    let outsider = Account::existing("nobody");
    let run_dir = tempfile::Builder::new()
        .prefix("markoff-sock-")
        .tempdir()
        .expect("a temp dir");
    let sock_dir = run_dir.path().join("run");
    group.private_dir(&sock_dir);
    let socket = sock_dir.join("api.sock");
    let gw = TempGateway::builder()
        .simulator(1, 2, ms(100))
        .socket(&socket)
        .extra_toml(&format!(
            "{ROOM_TOO_WARM}\n[[users]]\nlogin = \"ivan\"\nrole = \"operator\"\nunix_user = \"{}\"\n\n\
             [[users]]\nlogin = \"olga\"\nrole = \"viewer\"\nunix_user = \"{}\"\n",
            operator.name, viewer.name
        ))
        .start()
        .await;
    let id = raised_alarm(&gw).await;
    let id_arg = id.to_string();
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&socket).expect("the socket exists");
        assert_eq!(meta.permissions().mode() & 0o777, 0o660, "socket mode");
        assert_eq!(meta.gid(), group.gid, "the socket belongs to the group");
    }
    let sock = socket.display().to_string();
    let api = gw.api_url().to_owned();
    let cli = |who: &Account, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--socket", &sock, "--api", &api]);
        let out = who.markoff(&all);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let before = alarm(&gw).await;

    // Outside the group: no action goes through; reads still do (over TCP).
    for args in [
        vec!["ack", id_arg.as_str()],
        vec!["shelve", id_arg.as_str(), "2h"],
        vec!["unshelve", id_arg.as_str()],
        vec!["ask", "/status"],
    ] {
        let (code, out, err) = cli(&outsider, &args);
        assert_ne!(code, Some(0), "nobody's {args:?} went through: {out}");
        assert!(err.contains("socket"), "{args:?}: {err}");
    }
    let (code, out, err) = cli(&outsider, &["modbus", "holes", "--forget"]);
    assert_ne!(code, Some(0), "nobody's forget went through: {out}");
    assert!(err.contains("socket"), "{err}");
    let (code, out, err) = cli(&outsider, &["status"]);
    assert_eq!(code, Some(0), "nobody cannot read the status: {err}");
    assert!(out.contains("ready"), "{out}");
    let after = alarm(&gw).await;
    for key in ["state", "shelved_until", "out_of_service", "acked_by"] {
        assert_eq!(before[key], after[key], "{key} changed: {after}");
    }
    assert!(audit(&gw, id).is_empty(), "{:?}", audit(&gw, id));

    // A member without a [[users]] entry, and a viewer: refused, audited as who they are.
    let (code, _, err) = cli(&stranger, &["ack", &id_arg]);
    assert_ne!(code, Some(0));
    assert!(err.contains("403"), "{err}");
    let (code, _, err) = cli(&viewer, &["shelve", &id_arg, "2h"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("operator role"), "{err}");
    assert_eq!(alarm(&gw).await["state"], before["state"]);

    // The operator: shelve, unshelve and acknowledge, each done as ivan.
    for args in [
        vec!["shelve", id_arg.as_str(), "2h"],
        vec!["unshelve", id_arg.as_str()],
        vec!["ack", id_arg.as_str()],
    ] {
        let (code, _, err) = cli(&operator, &args);
        assert_eq!(code, Some(0), "ivan's {args:?}: {err}");
    }
    assert_eq!(alarm(&gw).await["acked_by"], "ivan");

    // Forgetting learned Modbus holes: a viewer is refused, the operator is done, each audited
    // as who they are.
    let (code, _, err) = cli(&viewer, &["modbus", "holes", "--forget"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("403"), "{err}");
    let (code, _, err) = cli(&operator, &["modbus", "holes", "--forget"]);
    assert_eq!(code, Some(0), "{err}");
    let (vc, oc) = (
        format!("socket:uid={}", viewer.uid),
        format!("socket:uid={}", operator.uid),
    );
    assert_eq!(
        forgets(&gw),
        vec![
            (
                "olga".to_owned(),
                Some("viewer".to_owned()),
                vc,
                "refused".to_owned()
            ),
            (
                "ivan".to_owned(),
                Some("operator".to_owned()),
                oc,
                "done".to_owned()
            ),
        ]
    );

    // Root through the socket, naming olga on Telegram in the body: audited as root.
    let (code, text) = gw
        .post_socket(
            &format!("/api/v1/alarms/{id}/out-of-service"),
            &json!({"user": "olga", "channel": "telegram", "enabled": true}),
        )
        .await
        .expect("POST on the socket");
    assert_eq!(code, 200, "{text}");
    assert_eq!(alarm(&gw).await["out_of_service"], true);

    let channel = |a: &Account| format!("socket:uid={}", a.uid);
    let rows = audit(&gw, id);
    let who: Vec<(&str, Option<&str>, &str, &str, &str)> = rows
        .iter()
        .map(|(a, r, c, act, o)| {
            (
                a.as_str(),
                r.as_deref(),
                c.as_str(),
                act.as_str(),
                o.as_str(),
            )
        })
        .collect();
    let stranger_name = format!("unix:{}", stranger.name);
    let (sc, vc, oc) = (channel(&stranger), channel(&viewer), channel(&operator));
    assert_eq!(
        who,
        vec![
            (stranger_name.as_str(), None, sc.as_str(), "ack", "refused"),
            ("olga", Some("viewer"), vc.as_str(), "shelve", "refused"),
            ("ivan", Some("operator"), oc.as_str(), "shelve", "done"),
            ("ivan", Some("operator"), oc.as_str(), "unshelve", "done"),
            ("ivan", Some("operator"), oc.as_str(), "ack", "done"),
            (
                "root",
                Some("admin"),
                "socket:uid=0",
                "out_of_service",
                "done"
            ),
        ],
        "{rows:?}"
    );
}
