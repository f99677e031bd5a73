//! Faults at the edge that must heal without a person on site, against the pymodbus peer
//! switched into a fault and back while the poller runs (`server.py`'s stdin commands):
//! - an unplugged RTU slave costs its line one timeout per cycle, measured as the cycle time of
//!   the other slaves on the line;
//! - learned holes that no longer exist are forgotten at the scheduled verification, and
//!   `markoff modbus holes` lists and clears them through the running gateway.

use std::time::Duration;

use markoff::model::Quality;
use markoff_tests::assert_eventually;

use super::peer::{self, Listen, PtyPair, PyServer};
use super::{Rig, devices, expected, resolve};

/// Read times (ms) of `sensor`'s good readings taken after `since_ms`, oldest first.
async fn read_times(rig: &Rig, sensor: &str, since_ms: i64) -> Vec<i64> {
    let mut ts: Vec<i64> = rig
        .store
        .reader
        .history(sensor, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.quality == Quality::Good && h.ts.as_millis() > since_ms)
        .map(|h| h.ts.as_millis())
        .collect();
    ts.sort_unstable();
    ts
}

/// Median time between consecutive reads, once there are at least `n` gaps.
fn median_gap(times: &[i64], n: usize) -> Option<i64> {
    let mut gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.len() < n {
        return None;
    }
    gaps.sort_unstable();
    Some(gaps[gaps.len() / 2])
}

fn now_ms() -> i64 {
    markoff::model::Timestamp::now().as_millis()
}

/// Units 1 and 2 polled back to back on a serial line with unit 3. Once unit 3 is unplugged and
/// counted down (probed again every 10ms, i.e. every round), the others' cycle grows by about one
/// timeout: before, a timeout was followed by a quiet time of another timeout and it grew by two.
#[tokio::test]
async fn rtu_an_unplugged_unit_costs_its_line_one_timeout_per_cycle() {
    if !peer::available(
        "rtu_an_unplugged_unit_costs_its_line_one_timeout_per_cycle",
        true,
    ) {
        return;
    }
    const TIMEOUT_MS: i64 = 600;
    let mut rig = Rig::new();
    let pty = PtyPair::open(rig.dir()).await;
    let mut server =
        PyServer::start(rig.dir(), &Listen::Serial(pty.b.clone()), &[1, 2, 3], 1).await;
    let controller = format!("file://{}", pty.a.display());
    let toml = format!(
        r#"[sources.modbus.line]
controller = "{controller}"
timeout = "{TIMEOUT_MS}ms"
pause_between_requests = "5ms"
reconnect_max = "1s"
{}
[[sources.modbus.line.devices]]
name = "u3"
slave_id = 3
interval = "10ms"
down_after = 2
reprobe_interval = "10ms"
points = [{{ name = "temp", register = "holding", address = 0, type = "INT16" }}]
"#,
        devices(&[1, 2], "").replace("interval = \"100ms\"", "interval = \"10ms\"")
    );
    rig.poll(resolve(&toml));
    let mut want: Vec<(String, f64)> = [1, 2].into_iter().flat_map(|u| expected(u, 1)).collect();
    want.push(("u3.temp".to_owned(), -323.0));
    assert_eventually!(
        rig.mismatches(&want).is_empty(),
        "{:#?}\n{}",
        rig.mismatches(&want),
        server.log()
    );
    // The cycle of unit 1 with every unit answering.
    let start = now_ms();
    assert_eventually!(
        median_gap(&read_times(&rig, "u1.gen", start).await, 8).is_some(),
        "unit 1 is polled"
    );
    let baseline = median_gap(&read_times(&rig, "u1.gen", start).await, 8).unwrap();

    server.command("unplug 3").await;
    assert_eventually!(
        rig.value("u3.online") == Some(0.0),
        "unit 3 is counted down: {:?}",
        rig.value("u3.online")
    );
    let down = now_ms();
    // Eventually (a slow round or two aside) the median of unit 1's cycles is one timeout longer
    // than before, not two.
    let window = |times: Vec<i64>| {
        let recent = &times[times.len().saturating_sub(9)..];
        median_gap(recent, 8)
    };
    assert_eventually!(
        window(read_times(&rig, "u1.gen", down).await).is_some_and(|g| {
            let extra = g - baseline;
            (TIMEOUT_MS / 2..=TIMEOUT_MS * 3 / 2).contains(&extra)
        }),
        patience = markoff_tests::eventually::scaled(Duration::from_secs(60)),
        "unit 1's cycle: {baseline}ms before, {:?}ms with unit 3 unplugged (timeout {TIMEOUT_MS}ms)",
        window(read_times(&rig, "u1.gen", down).await)
    );
    assert_eq!(rig.quality("u1.gen"), Some(Quality::Good));

    server.command("plug 3").await;
    assert_eventually!(
        rig.value("u3.online") == Some(1.0) && rig.quality("u3.temp") == Some(Quality::Good),
        "unit 3 answers again"
    );
    rig.stop_pollers().await;
}

/// Unit 1 of a pymodbus TCP server, polled every 100ms, with `hole_recheck_interval`.
fn plc(port: u16, recheck: &str) -> String {
    super::connection(&format!("tcp://127.0.0.1:{port}"), "", &[1]).replace(
        "down_after = 2",
        &format!("down_after = 2\nhole_recheck_interval = \"{recheck}\""),
    )
}

/// Holes a device no longer has (here: written into the buffer before the start, as a device
/// that was rebuilt since would leave them) are forgotten at the next verification, the real one is kept;
/// verification runs every `hole_recheck_interval`.
#[tokio::test]
async fn stale_learned_holes_are_forgotten_at_the_scheduled_verification() {
    if !peer::available(
        "stale_learned_holes_are_forgotten_at_the_scheduled_verification",
        false,
    ) {
        return;
    }
    use markoff::sources::modbus::config::RegisterKind;
    use markoff::sources::modbus::planner::Hole;
    let mut rig = Rig::new();
    let server = PyServer::start(rig.dir(), &Listen::Tcp { port: 0 }, &[1], 1).await;
    let key = format!("modbus/holes/tcp://127.0.0.1:{}/1", server.port);
    let mut stale = super::learned_hole();
    stale.extend([
        Hole {
            kind: RegisterKind::Holding,
            start: 0,
            end: 1,
        },
        Hole {
            kind: RegisterKind::Input,
            start: 2,
            end: 6,
        },
    ]);
    rig.store
        .ingest
        .set_state(&key, &serde_json::to_string(&stale).unwrap())
        .await
        .unwrap();
    rig.poll(resolve(&plc(server.port, "1s")));
    assert_eventually!(
        rig.holes(&key).await == Some(super::learned_hole()),
        "the stale holes are forgotten, the real one kept: {:?}\n{}",
        rig.holes(&key).await,
        server.log()
    );
    let want = expected(1, 1);
    assert_eventually!(
        rig.mismatches(&want).is_empty(),
        "{:#?}",
        rig.mismatches(&want)
    );
    // Each verification reads across the real hole once more and learns it again.
    let seen = server.exceptions(1, 2);
    assert_eventually!(
        server.exceptions(1, 2) >= seen + 2,
        "verification runs every second:\n{}",
        server.log()
    );
    assert_eq!(rig.holes(&key).await, Some(super::learned_hole()));
    rig.stop_pollers().await;
}

/// `markoff modbus holes` lists the holes of the running gateway and `--forget` clears them
/// without touching the readings; the gateway learns the real hole again. `markoff status` shows
/// the count. A forget is an action of the local API: without credentials it is refused and
/// changes nothing, a viewer's token is refused and audited, an operator's token is done and
/// audited under that operator.
#[tokio::test]
async fn markoff_modbus_holes_lists_and_forgets_through_the_running_gateway() {
    if !peer::available(
        "markoff_modbus_holes_lists_and_forgets_through_the_running_gateway",
        false,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = PyServer::start(dir.path(), &Listen::Tcp { port: 0 }, &[1], 1).await;
    const IVAN: &str = "ivan-holes-token-5e21";
    const OLGA: &str = "olga-holes-token-90ad";
    let mut gw = markoff_tests::TempGateway::builder()
        .id("modbus-holes")
        .no_simulator()
        .extra_toml(&format!(
            "{}\n[[users]]\nlogin = \"ivan\"\nrole = \"operator\"\n\n\
             [[users]]\nlogin = \"olga\"\nrole = \"viewer\"\n",
            plc(server.port, "1h")
        ))
        .api_token("ivan", IVAN)
        .api_token("olga", OLGA)
        .start()
        .await;
    let api = gw.api_url().to_owned();
    let token_file = |name: &str, token: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, token).unwrap();
        path.display().to_string()
    };
    let (ivan, olga) = (token_file("ivan", IVAN), token_file("olga", OLGA));
    let cli = |args: &[&str]| {
        let mut all = vec!["modbus", "holes", "--api", api.as_str()];
        all.extend_from_slice(args);
        let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
        async move {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let out = markoff_tests::run_markoff(&refs).await;
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let listed = "u1 (connection line, unit 1): 1 hole\n  holding   5..9 rejected (exception 02)\n";
    assert_eventually!(
        cli(&[]).await.1 == listed,
        "{:?}\n{}",
        cli(&[]).await,
        gw.log()
    );
    let status = markoff_tests::run_markoff(&["status", "--api", &api]).await;
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.contains("u1 online (1 address hole)"), "{status}");
    let (code, _, err) = cli(&["--device", "nope"]).await;
    assert_eq!(code, Some(64), "{err}");

    // Without a token, or with a viewer's: refused, the hole stays.
    let (code, _, err) = cli(&["--device", "u1", "--forget"]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = cli(&["--device", "u1", "--forget", "--token-file", &olga]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("403") && err.contains("operator"), "{err}");
    assert_eq!(cli(&[]).await.1, listed);

    let rows_before = gw_rows(&gw.db_path());
    let rejected = server.exceptions(1, 2);
    let (code, out, err) = cli(&["--device", "u1", "--forget", "--token-file", &ivan]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("u1 (connection line, unit 1): 1 hole forgotten\n"),
        "{out}"
    );
    // The gateway drops the hole, reads across it again, and learns it again.
    assert_eventually!(
        server.exceptions(1, 2) > rejected && cli(&[]).await.1 == listed,
        "relearned: {:?}\n{}",
        cli(&[]).await,
        gw.log()
    );
    assert!(gw_rows(&gw.db_path()) >= rows_before, "readings untouched");
    let audit: Vec<(String, Option<String>, String, String, String, String)> = {
        let conn = markoff_tests::db::open_read_only(&gw.db_path());
        let mut stmt = conn
            .prepare(
                "SELECT actor, role, channel, action, target, outcome FROM audit_log \
                 WHERE action = 'forget_holes' ORDER BY id",
            )
            .unwrap();
        stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let row = |who: &str, role: &str, outcome: &str| {
        (
            who.to_owned(),
            Some(role.to_owned()),
            "token".to_owned(),
            "forget_holes".to_owned(),
            "modbus:u1".to_owned(),
            outcome.to_owned(),
        )
    };
    assert_eq!(
        audit,
        vec![
            row("olga", "viewer", "refused"),
            row("ivan", "operator", "done")
        ]
    );
    gw.sigterm();
    let exit = gw.wait_exit(Duration::from_secs(20)).await;
    assert!(exit.success(), "{exit}\n{}", gw.log());
}

fn gw_rows(db: &std::path::Path) -> i64 {
    let conn = markoff_tests::db::open_read_only(db);
    markoff_tests::db::refresh_readings(&conn);
    conn.query_row("SELECT count(*) FROM readings", [], |r| r.get(0))
        .unwrap()
}
