//! Pictures from a running gateway: the async API (`markoff::render::plan_png`, `chart_png`),
//! the HTTP endpoints, and `markoff render` against the daemon and, once it has stopped, from its
//! buffer; errors in the asked language with the right status and exit code.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::time::Duration;

use markoff::app::{Gateway, StartOptions};
use markoff::model::Lang;
use markoff::render::{self, Measure, RenderError};

const CONFIG: &str = r#"
[gateway]
id = "render-test"
name = "Lenina 17"

[http]
listen = "127.0.0.1:0"

[store]
flush_interval = "10ms"

[sources.simulator]
floors = 2
rooms_per_floor = 3
interval = "50ms"
seed = 9

[site]
utc_offset = "+05:00"

[[site.floor]]
id = "1"
name = "Ground floor"
width = 30.0
height = 10.0

[[site.room]]
id = "101"
floor = "1"
polygon = [[0, 0], [10, 0], [10, 10], [0, 10]]

[[site.room]]
id = "102"
floor = "1"
polygon = [[10, 0], [20, 0], [20, 10], [10, 10]]

[[site.room]]
id = "103"
floor = "1"
polygon = [[20, 0], [30, 0], [30, 10], [20, 10]]

[[alarms.rule]]
alert = "Warm"
kind = "high"
match = { kind = "temperature", floor = "1" }
limit = 0.0
severity = "high"
"#;

fn png_size(png: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(png).unwrap();
    (img.width(), img.height())
}

async fn markoff(args: &[&str]) -> std::process::Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_markoff"))
            .args(args)
            .env_remove("MARKOFF_API")
            .env_remove("MARKOFF_CONFIG")
            .output(),
    )
    .await
    .unwrap()
    .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pictures_from_the_daemon_its_api_and_its_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("markoff.db");
    let cfg_path = dir.path().join("markoff.toml");
    let text_cfg = CONFIG.replace(
        "[store]\n",
        &format!("[store]\npath = {:?}\n", db.display().to_string()),
    );
    std::fs::write(&cfg_path, &text_cfg).unwrap();
    let cfg = markoff::config::load_file(&cfg_path).unwrap();
    let gw = Gateway::start(cfg, StartOptions::default()).await.unwrap();
    let state = gw.core();
    let base = format!("http://{}", gw.http_addr().unwrap());

    // Wait for every sensor to report twice and for the alarms on floor 1 to be raised.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let sensors = 2 * 3 * 3 + 6;
    while state.store.latest.len() < sensors
        || state.store.rows() < 2 * i64::try_from(sensors).unwrap()
        || state.alarms.list(true).len() < 3
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no readings or alarms"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The async API.
    let plan = render::plan_png(&state, "Ground floor", Measure::Temperature, Lang::Ru)
        .await
        .unwrap();
    assert_eq!(png_size(&plan).0, 1200);
    let chart = render::chart_png(
        &state,
        "f1.r101.temperature",
        Duration::from_secs(60),
        Lang::En,
    )
    .await
    .unwrap();
    assert_eq!(png_size(&chart), (1200, 600));
    match render::plan_png(&state, "9", Measure::Co2, Lang::En).await {
        // Configured floors first, then those only sensors name (letters before numbers).
        Err(RenderError::UnknownFloor { known, .. }) => assert_eq!(known, ["1", "B", "2"]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        render::chart_png(&state, "nope", Duration::from_secs(60), Lang::En).await,
        Err(RenderError::UnknownSensor { .. })
    ));
    let floors: Vec<String> = render::floors(&state)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(floors, ["1", "B", "2"]);

    // HTTP.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: &str| http.get(format!("{base}{path}")).send();
    let r = get("/api/v1/render/plan?floor=2&measure=co2&width=800")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(png_size(&r.bytes().await.unwrap()).0, 800);
    let r =
        get("/api/v1/render/chart?sensor=boiler.supply_temp&since=5m&lang=ru&width=640&height=320")
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(png_size(&r.bytes().await.unwrap()), (640, 320));
    let r = get("/api/v1/render/plan?floor=9&lang=ru").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.text().await.unwrap(),
        "неизвестный этаж «9»; этажи: 1, B, 2\n"
    );
    let r = get("/api/v1/render/chart?sensor=f1.r101.temperature&since=0s")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = get("/api/v1/render/chart?sensor=f1.r101.temperature&since=often")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = get("/api/v1/render/chart?sensor=nope").await.unwrap();
    assert_eq!(r.status(), 404);
    let r = get("/api/v1/render/plan?floor=1&measure=pressure")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // The CLI against the daemon.
    let out_plan = dir.path().join("plan.png");
    let o = markoff(&[
        "render",
        "plan",
        "--floor",
        "1",
        "-o",
        out_plan.to_str().unwrap(),
        "--api",
        &base,
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1200x"),
        "{}",
        text(&o)
    );
    assert_eq!(png_size(&std::fs::read(&out_plan).unwrap()).0, 1200);
    let o = markoff(&[
        "render", "chart", "--sensor", "nope", "-o", "x.png", "--api", &base,
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unknown sensor"),
        "{}",
        text(&o)
    );

    gw.shutdown().await;

    // From the buffer: asked for, and as a fallback when the daemon does not answer.
    let out_chart = dir.path().join("chart.png");
    let cfg_arg = cfg_path.to_str().unwrap();
    let o = markoff(&[
        "render",
        "chart",
        "--sensor",
        "f1.r102.temperature",
        "--since",
        "10m",
        "--lang",
        "ru",
        "--db",
        db.to_str().unwrap(),
        "--config",
        cfg_arg,
        "-o",
        out_chart.to_str().unwrap(),
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(png_size(&std::fs::read(&out_chart).unwrap()), (1200, 600));
    let out_plan2 = dir.path().join("plan2.png");
    let o = markoff(&[
        "render",
        "plan",
        "--floor",
        "B",
        "--api",
        "http://127.0.0.1:9",
        "--config",
        cfg_arg,
        "-o",
        out_plan2.to_str().unwrap(),
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not answer"),
        "{}",
        text(&o)
    );
    assert!(Path::new(&out_plan2).exists());
    let o = markoff(&[
        "render",
        "plan",
        "--floor",
        "9",
        "--db",
        db.to_str().unwrap(),
        "--config",
        cfg_arg,
        "-o",
        "x.png",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unknown floor \"9\""),
        "{}",
        text(&o)
    );
    // Nothing answers and no buffer: unavailable.
    let o = markoff(&[
        "render",
        "plan",
        "--floor",
        "1",
        "--api",
        "http://127.0.0.1:9",
        "--config",
        "/nonexistent.toml",
        "-o",
        "x.png",
    ])
    .await;
    assert_eq!(o.status.code(), Some(69), "{}", text(&o));
}
