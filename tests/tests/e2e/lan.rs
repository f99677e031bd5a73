//! The LAN page through the real binary: `[lan]` on `127.0.0.1:0` (the bound URL is read from
//! `markoff.lan` beside the buffer), one token per person from the environment. Without a session
//! only the login form is served; a wrong token is refused and counted; the dashboard lists
//! alarms and sensors; the chat answers `/status` and, with no LLM configured, free text from
//! local data; a viewer cannot acknowledge and an operator can (both audited on channel `lan`);
//! forged posts are refused; the local API is not reachable through the page's listener.

use std::time::Duration;

use markoff_tests::{TempGateway, assert_eventually, db, metric_in};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::redirect::Policy;

use super::ms;

const IVAN_TOKEN: &str = "ivan-7c1e0b5d2a";
const OLGA_TOKEN: &str = "olga-33f9a1c0e4";

/// An alarm that fires at the first reading, an operator and a viewer, and the LAN page with a
/// token for each.
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

[[users]]
login = "olga"
role = "viewer"

[lan]
enabled = true
listen = "127.0.0.1:0"

[[lan.token]]
user = "ivan"
token_env = "MARKOFF_E2E_LAN_IVAN"

[[lan.token]]
user = "olga"
token_env = "MARKOFF_E2E_LAN_OLGA"
"#;

/// One answer of the page.
#[derive(Debug)]
struct Answer {
    code: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// A browser without cookie jar or redirects: the test carries the cookie itself.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        Self {
            base: base.to_owned(),
            http,
            cookie: None,
        }
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(c) = &self.cookie {
            h.insert("cookie", HeaderValue::from_str(c).expect("a cookie header"));
        }
        h
    }

    async fn answer(resp: reqwest::Response) -> Answer {
        let code = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.expect("a body");
        Answer {
            code,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .headers(self.headers())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        Self::answer(resp).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.post_with(path, form, HeaderMap::new()).await
    }

    async fn post_with(&self, path: &str, form: &[(&str, &str)], extra: HeaderMap) -> Answer {
        let mut headers = self.headers();
        headers.extend(extra);
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .headers(headers)
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        Self::answer(resp).await
    }

    /// Logs in with `token`; keeps the session cookie.
    async fn login(&mut self, token: &str) -> Answer {
        let a = self.post("/login", &[("token", token)]).await;
        let set = a.header("set-cookie");
        if a.code == 303 {
            assert!(
                set.starts_with("markoff_lan=")
                    && set.contains("HttpOnly")
                    && set.contains("SameSite=Strict"),
                "{set}"
            );
            let pair = set.split(';').next().expect("a cookie pair");
            self.cookie = Some(pair.to_owned());
        }
        a
    }

    /// The dashboard and its CSRF token.
    async fn dashboard(&self) -> (String, String) {
        let a = self.get("/").await;
        assert_eq!(a.code, 200, "{}", a.body);
        let csrf = csrf_of(&a.body);
        (a.body, csrf)
    }
}

fn csrf_of(page: &str) -> String {
    let (_, rest) = page
        .split_once("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF token on the page:\n{page}"));
    rest.split('"').next().unwrap_or_default().to_owned()
}

async fn alarm(gw: &TempGateway) -> Option<serde_json::Value> {
    let list = gw.get_json("/api/v1/alarms?all=true").await;
    list.as_array()?
        .iter()
        .find(|a| a["alert"] == "RoomTooWarm")
        .cloned()
}

async fn login_failures(gw: &TempGateway) -> f64 {
    metric_in(
        &gw.metrics_text().await,
        "markoff_lan_logins_total{outcome=\"bad_token\"}",
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn lan_page_logs_in_shows_the_building_answers_and_lets_only_operators_acknowledge() {
    let gw = TempGateway::builder()
        .id("lan")
        .simulator(1, 2, ms(100))
        .env("MARKOFF_E2E_LAN_IVAN", IVAN_TOKEN)
        .env("MARKOFF_E2E_LAN_OLGA", OLGA_TOKEN)
        .extra_toml(CONFIG)
        .start()
        .await;
    let file = gw.dir().join("markoff.lan");
    let base = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{} not written ({e}); log:\n{}", file.display(), gw.log()))
        .trim()
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let mut ivan = Browser::new(&base);

    // No session: the login form, nothing else.
    let a = ivan.get("/").await;
    assert_eq!(a.code, 200);
    assert!(a.body.contains("action=\"/login\""), "{}", a.body);
    assert!(!a.body.contains("RoomTooWarm"));
    assert_eq!(a.header("cache-control"), "no-store");
    assert!(
        a.header("content-security-policy")
            .contains("default-src 'none'")
    );
    assert_eq!(ivan.get("/plan.png?floor=1").await.code, 401);
    let a = ivan
        .post("/ask", &[("text", "/status"), ("csrf", "x")])
        .await;
    assert_eq!((a.code, a.header("location")), (303, "/"));
    assert_eq!(ivan.post("/alarms/1/ack", &[("csrf", "x")]).await.code, 303);
    // The local API is not served here.
    assert_eq!(ivan.get("/api/v1/status").await.code, 404);
    assert_eq!(ivan.get("/metrics").await.code, 404);
    assert!(ivan.get("/?lang=ru").await.body.contains("Ключ доступа"));

    // A wrong token is refused and counted.
    let before = login_failures(&gw).await;
    let a = ivan.login("not-the-token").await;
    assert_eq!(a.code, 401, "{}", a.body);
    assert!(a.header("set-cookie").is_empty());
    assert!(a.body.contains("not valid"), "{}", a.body);
    assert_eq!(login_failures(&gw).await, before + 1.0);
    assert!(
        !gw.log().contains("not-the-token") && !gw.log().contains(IVAN_TOKEN),
        "a token reached the log"
    );

    // The right one opens the dashboard: status, the alarm, the sensors.
    let a = ivan.login(IVAN_TOKEN).await;
    assert_eq!((a.code, a.header("location")), (303, "/"), "{}", a.body);
    assert_eventually!(
        ivan.get("/").await.body.contains("RoomTooWarm"),
        "the dashboard never listed the alarm:\n{}",
        ivan.get("/").await.body
    );
    let (page, csrf) = ivan.dashboard().await;
    for sensor in ["f1.r101.temperature", "f1.r102.co2", "boiler.pressure"] {
        assert!(
            page.contains(sensor),
            "{sensor} not on the dashboard:\n{page}"
        );
    }
    assert!(page.contains("ivan"), "{page}");
    let id = alarm(&gw).await.expect("the alarm")["id"]
        .as_i64()
        .expect("an id");
    let ack_path = format!("/alarms/{id}/ack");
    assert!(
        page.contains(&format!("action=\"{ack_path}\"")),
        "no Acknowledge button for an operator:\n{page}"
    );
    assert!(page.contains("/plan.png?floor=1"), "no floor plan:\n{page}");
    let plan = ivan.get("/plan.png?floor=1&measure=co2").await;
    assert_eq!(plan.code, 200, "{}", plan.body);
    assert_eq!(plan.header("content-type"), "image/png");
    assert_eq!(ivan.get("/plan.png?floor=99").await.code, 404);

    // The chat: a command answers from the tools, free text from local data (no LLM here).
    let a = ivan
        .post("/ask", &[("text", "/status"), ("csrf", &csrf)])
        .await;
    assert_eq!(
        (a.code, a.header("location")),
        (303, "/#chat"),
        "{}",
        a.body
    );
    let (page, _) = ivan.dashboard().await;
    assert!(page.contains("data-source=\"command\""), "{page}");
    assert!(page.contains("› /status"), "{page}");
    let a = ivan
        .post(
            "/ask",
            &[
                ("text", "what is the temperature in room 101?"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(a.code, 303, "{}", a.body);
    let (page, _) = ivan.dashboard().await;
    assert!(page.contains("data-source=\"offline\""), "{page}");
    assert!(page.contains("answered from local data"), "{page}");

    // Forged posts: no CSRF token, or another site's origin.
    assert_eq!(ivan.post(&ack_path, &[("csrf", "forged")]).await.code, 403);
    let mut evil = HeaderMap::new();
    evil.insert("origin", HeaderValue::from_static("http://evil.example"));
    let a = ivan.post_with(&ack_path, &[("csrf", &csrf)], evil).await;
    assert_eq!(a.code, 403);
    assert_eq!(
        alarm(&gw).await.expect("the alarm")["state"],
        "active_unacked"
    );

    // A viewer sees no button and cannot acknowledge.
    let mut olga = Browser::new(&base);
    assert_eq!(olga.login(OLGA_TOKEN).await.code, 303);
    let (page, olga_csrf) = olga.dashboard().await;
    assert!(page.contains("RoomTooWarm"), "{page}");
    assert!(!page.contains(&format!("action=\"{ack_path}\"")), "{page}");
    assert_ne!(olga_csrf, csrf);
    let a = olga.post(&ack_path, &[("csrf", &olga_csrf)]).await;
    assert_eq!(a.code, 403, "{}", a.body);
    assert!(a.body.contains("Only operators"), "{}", a.body);
    assert_eq!(
        alarm(&gw).await.expect("the alarm")["state"],
        "active_unacked"
    );

    // The operator can.
    let a = ivan.post(&ack_path, &[("csrf", &csrf)]).await;
    assert_eq!(
        (a.code, a.header("location")),
        (303, "/#alarms"),
        "{}",
        a.body
    );
    let after = alarm(&gw).await.expect("the alarm");
    assert_eq!(after["state"], "active_acked", "{after}");
    assert_eq!(after["acked_by"], "ivan", "{after}");
    let (page, _) = ivan.dashboard().await;
    assert!(page.contains("acknowledged"), "{page}");

    let conn = db::open_read_only(&gw.db_path());
    let mut stmt = conn
        .prepare(
            "SELECT actor, channel, action, outcome FROM audit_log WHERE target = ?1 ORDER BY id",
        )
        .expect("the audit query");
    let audit: Vec<(String, String, String, String)> = stmt
        .query_map([id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect("the audit log")
        .collect::<Result<_, _>>()
        .expect("audit rows");
    let row = |a: &str, o: &str| {
        (
            a.to_owned(),
            "lan".to_owned(),
            "ack".to_owned(),
            o.to_owned(),
        )
    };
    assert_eq!(audit, [row("olga", "refused"), row("ivan", "done")]);

    // Logging out ends the session.
    let a = ivan.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(a.code, 303);
    assert!(ivan.get("/").await.body.contains("action=\"/login\""));
}
