//! The gateway's LAN page in a real browser (headless Chromium through WebDriver), as on-site
//! staff open it on a phone: the real `markoff` binary with the simulator, `[lan]` on
//! `127.0.0.1:0`, an alarm raised at once. The login form and the dashboard, in English and in
//! Russian, at a phone's 390x844 and a laptop's 1280x800: no sideways scrolling, every text at
//! least 4.5:1 against what is behind it, floor plans drawn at their own size (a plan wider than
//! the phone scrolls inside its own box), screenshots under the test's output directory.
//! Build the binary first: `cargo build -p markoff`.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use fantoccini::Locator;
use markoff_tests::browser::{ChromeDriver, readable_at, require_chromium};
use markoff_tests::{TempGateway, assert_eventually};

const TOKEN: &str = "ivan-lan-web-5f1c9e";

/// An alarm at the first reading of room 101, an operator, and the LAN page with his token.
const CONFIG: &str = r#"
[alarms]
tick = "100ms"

[[alarms.rule]]
alert = "RoomTooWarm"
kind = "high"
sensor = "f1.r101.temperature"
limit = 0.0
severity = "high"

[[users]]
login = "ivan"
role = "operator"

[lan]
enabled = true
listen = "127.0.0.1:0"

[[lan.token]]
user = "ivan"
token_env = "MARKOFF_LAN_WEB_IVAN"
"#;

/// Run in the dashboard: each floor plan's drawn width against its picture's own width.
const PLAN_SCALE_JS: &str = r#"
return Array.from(document.querySelectorAll('.plans img')).map((i) => ({
  src: i.getAttribute('src'), complete: i.complete, natural: i.naturalWidth, shown: i.clientWidth,
}));
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lan_page_is_readable_on_a_phone_and_a_laptop_in_both_languages() {
    if !require_chromium() {
        return;
    }
    let gw = TempGateway::builder()
        .id("lanweb")
        .simulator(2, 3, Duration::from_millis(200))
        .env("MARKOFF_LAN_WEB_IVAN", TOKEN)
        .extra_toml(CONFIG)
        .start()
        .await;
    let file = gw.dir().join("markoff.lan");
    let base = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{} not written ({e}); log:\n{}", file.display(), gw.log()))
        .trim()
        .to_owned();
    assert_eventually!(
        gw.get_json("/api/v1/alarms?all=true")
            .await
            .as_array()
            .is_some_and(|l| l.iter().any(|a| a["alert"] == "RoomTooWarm")),
        "no alarm raised:\n{}",
        gw.log()
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lan_web-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let driver = ChromeDriver::start().await;
    let browser = driver.session().await;
    for lang in ["en", "ru"] {
        // The login form, before signing in.
        for (w, h) in [(390, 844), (1280, 800)] {
            let shot = shots.join(format!("login-{lang}-{w}x{h}.png"));
            readable_at(
                &browser,
                &format!("login ({lang})"),
                &format!("{base}/?lang={lang}"),
                (w, h),
                &shot,
                2,
            )
            .await;
        }
        // Signing in through the form.
        browser
            .find(Locator::Id("token"))
            .await
            .unwrap()
            .send_keys(TOKEN)
            .await
            .unwrap();
        browser
            .find(Locator::Css("form[action='/login'] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let alarm = match browser.wait().for_element(Locator::Css("tr.alarm")).await {
            Ok(a) => a,
            Err(e) => panic!(
                "no alarm on the dashboard ({e}) at {}:\n{}\n{}",
                browser.current_url().await.unwrap(),
                browser.source().await.unwrap(),
                gw.log()
            ),
        };
        assert!(alarm.text().await.unwrap().contains("RoomTooWarm"));
        let page_lang = browser
            .execute("return document.documentElement.lang;", vec![])
            .await
            .unwrap();
        assert_eq!(page_lang, lang);

        for (w, h) in [(390, 844), (1280, 800)] {
            let shot = shots.join(format!("dashboard-{lang}-{w}x{h}.png"));
            readable_at(
                &browser,
                &format!("dashboard ({lang})"),
                &format!("{base}/"),
                (w, h),
                &shot,
                20,
            )
            .await;
            // Every plan is drawn at its picture's own size, so its labels keep the size the
            // renderer gave them; on the phone the plan scrolls inside its own box.
            let mut plans: serde_json::Value;
            assert_eventually!(
                {
                    plans = browser.execute(PLAN_SCALE_JS, vec![]).await.unwrap();
                    plans.as_array().is_some_and(|p| {
                        !p.is_empty()
                            && p.iter()
                                .all(|i| i["complete"] == true && i["natural"].as_f64() > Some(0.0))
                    })
                },
                "plans not loaded: {plans}"
            );
            for p in plans.as_array().unwrap() {
                let (natural, shown) =
                    (p["natural"].as_f64().unwrap(), p["shown"].as_f64().unwrap());
                assert!(
                    (shown - natural).abs() <= 1.0,
                    "{lang} at {w}x{h}: a plan is shrunk to {shown} of {natural} px: {p}"
                );
            }
        }
        // Signing out, for the next language's login form.
        browser
            .find(Locator::Css("form[action='/logout'] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        browser
            .wait()
            .for_element(Locator::Id("token"))
            .await
            .unwrap();
    }
    browser.close().await.unwrap();
}
