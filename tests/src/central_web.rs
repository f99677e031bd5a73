//! The office web application under test: the real `markoff-central serve` in a child process,
//! connected to a [`crate::pg::PgTestDb`] as its own web role, on a free loopback port; and a
//! small HTTP client that keeps cookies and does not follow redirects, so a test sees every
//! 303 and `Set-Cookie`.
//!
//! Owns: finding the `markoff-central` binary, writing the serve settings, starting and stopping
//! the server, users, the client. Does not own: what the tests assert.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use markoff_cloud_sync::OfficeRoleKind;
use reqwest::header::{HeaderMap, HeaderValue, SET_COOKIE};

use crate::eventually::patience;
use crate::gateway::toml_str;
use crate::pg::PgTestDb;
use crate::services::postgres_addr;

/// Environment variable naming the `markoff-central` binary explicitly.
pub const CENTRAL_BIN_ENV: &str = "MARKOFF_CENTRAL_BIN";

/// `markoff-central` beside the test executable (`target/<profile>/`), or
/// `$MARKOFF_CENTRAL_BIN`.
///
/// # Panics
/// It is not there; the message says how to build it.
pub fn central_bin() -> PathBuf {
    if let Some(p) = std::env::var_os(CENTRAL_BIN_ENV) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the path of the running test executable");
    for dir in exe.ancestors().skip(1) {
        let candidate = dir.join("markoff-central");
        if candidate.is_file() {
            return candidate;
        }
        if dir.file_name().is_some_and(|n| n == "target") {
            break;
        }
    }
    panic!("markoff-central not found; build it with cargo build -p markoff-cloud-sync");
}

/// Settings of a test server beyond the defaults (port 0, plain-HTTP cookies).
#[derive(Clone, Debug, Default)]
pub struct WebOptions {
    /// Extra lines for the top of the settings file (`session_lifetime = "2m"`).
    pub top: String,
    /// Lines of its `[login]` table.
    pub login: String,
}

/// A running `markoff-central serve`.
#[derive(Debug)]
pub struct CentralWeb {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl CentralWeb {
    /// Creates a web role in `pg` and starts the server as that role.
    ///
    /// # Panics
    /// The server does not print its address within the patience (the panic shows its log).
    pub async fn start(pg: &mut PgTestDb, options: &WebOptions) -> Self {
        let role = pg.add_office_role(OfficeRoleKind::Web).await;
        let dir = tempfile::Builder::new()
            .prefix("markoff-web-")
            .tempdir()
            .expect("a temp dir for the server");
        let config = dir.path().join("central.toml");
        let text = format!(
            "listen = \"127.0.0.1:0\"\n\
             database_url = \"postgres://{role}@{addr}/{db}\"\n\
             password_file = {pw}\n\
             sslmode = \"disable\"\n\
             cookie_secure = false\n\
             pool_size = 4\n\
             {top}\n\
             [login]\n{login}\n",
            addr = postgres_addr(),
            db = pg.name(),
            pw = toml_str(&pg.password_file(&role).display().to_string()),
            top = options.top,
            login = options.login,
        );
        std::fs::write(&config, text).expect("write the serve settings");
        let mut child = Command::new(central_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start markoff-central serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for (stream, tx) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, Some(tx)),
            (Box::new(stderr), None),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let (Some(tx), Some(url)) = (
                        &tx,
                        line.strip_prefix("markoff-central serve: listening on "),
                    ) {
                        tx.send(url.to_owned()).ok();
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        let url = tokio::task::spawn_blocking(move || rx.recv_timeout(patience()))
            .await
            .expect("the waiting thread");
        match url {
            Ok(url) => Self {
                child,
                url,
                log,
                _dir: dir,
            },
            Err(_) => {
                child.kill().ok();
                child.wait().ok();
                let text = log.lock().map(|l| l.clone()).unwrap_or_default();
                panic!("markoff-central serve did not start:\n{text}");
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// A new client (no cookies yet).
    pub fn client(&self) -> WebClient {
        WebClient::new(&self.url)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for CentralWeb {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        if std::thread::panicking() {
            eprintln!("--- markoff-central serve log ---\n{}", self.log());
        }
    }
}

/// Creates a web user who sees every building, as `markoff-central add-user` and `grant --all`
/// do (through the library).
///
/// # Panics
/// It fails.
pub async fn add_user(pg: &PgTestDb, login: &str, name: &str, password: &str) {
    add_user_seeing(
        pg,
        login,
        name,
        password,
        markoff_cloud_sync::web::Access::All,
    )
    .await;
}

/// Adds a user who sees `access` only (`markoff-central add-user`, then `grant`).
///
/// # Panics
/// The user cannot be added or granted.
pub async fn add_user_seeing(
    pg: &PgTestDb,
    login: &str,
    name: &str,
    password: &str,
    access: markoff_cloud_sync::web::Access<'_>,
) {
    let mut conn = pg.admin().await;
    markoff_cloud_sync::web::add_user(&mut conn, login, Some(name), password, false)
        .await
        .unwrap_or_else(|e| panic!("cannot add user {login}: {e}"));
    markoff_cloud_sync::web::grant(&mut conn, login, access)
        .await
        .unwrap_or_else(|e| panic!("cannot grant {login} {access:?}: {e}"));
}

/// An answer: status, headers and body text.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: String,
}

impl Answer {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// It is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `value` of the first `<input name="NAME" value="...">` in the body.
    pub fn input(&self, name: &str) -> Option<String> {
        let key = format!("name=\"{name}\" value=\"");
        let at = self.body.find(&key)? + key.len();
        let end = self.body[at..].find('"')?;
        Some(self.body[at..at + end].to_owned())
    }
}

/// A client that keeps cookies like a browser (by name; `Max-Age=0` deletes) and never follows
/// redirects.
#[derive(Debug, Clone)]
pub struct WebClient {
    base: String,
    http: reqwest::Client,
    cookies: Arc<Mutex<BTreeMap<String, String>>>,
    /// Sent as `X-Forwarded-For` when set (the server trusts it from 127.0.0.1 when told to).
    pub forwarded_for: Option<String>,
}

impl WebClient {
    /// A client for the server at `base`.
    ///
    /// # Panics
    /// The HTTP client cannot be built.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            cookies: Arc::new(Mutex::new(BTreeMap::new())),
            forwarded_for: None,
        }
    }

    /// The value of a cookie this client holds.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().ok()?.get(name).cloned()
    }

    /// Sets or replaces a cookie.
    pub fn set_cookie(&self, name: &str, value: &str) {
        if let Ok(mut c) = self.cookies.lock() {
            c.insert(name.to_owned(), value.to_owned());
        }
    }

    /// Forgets every cookie.
    pub fn clear_cookies(&self) {
        if let Ok(mut c) = self.cookies.lock() {
            c.clear();
        }
    }

    fn cookie_header(&self) -> Option<HeaderValue> {
        let c = self.cookies.lock().ok()?;
        if c.is_empty() {
            return None;
        }
        let text: Vec<String> = c.iter().map(|(k, v)| format!("{k}={v}")).collect();
        HeaderValue::from_str(&text.join("; ")).ok()
    }

    /// Sends a request built on `req`; records the cookies it sets.
    ///
    /// # Panics
    /// The server does not answer.
    pub async fn send(&self, mut req: reqwest::RequestBuilder) -> Answer {
        if let Some(c) = self.cookie_header() {
            req = req.header(reqwest::header::COOKIE, c);
        }
        if let Some(ip) = &self.forwarded_for {
            req = req.header("x-forwarded-for", ip);
        }
        let res = req.send().await.expect("the server answers");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        for v in headers.get_all(SET_COOKIE) {
            let Ok(text) = v.to_str() else { continue };
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if let Ok(mut c) = self.cookies.lock() {
                if attrs.contains("Max-Age=0") {
                    c.remove(name.trim());
                } else {
                    c.insert(name.trim().to_owned(), value.to_owned());
                }
            }
        }
        let body = res.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A request to `path` on this client's HTTP client (send it with [`Self::send`]).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// POST a form to `path`.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.send(self.http.post(format!("{}{path}", self.base)).form(fields))
            .await
    }

    /// POST JSON to `path` with extra headers.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// Opens the login form and submits it; returns the answer to the submission (303 to `/`
    /// when it worked).
    pub async fn login(&self, login: &str, password: &str) -> Answer {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200, "login form: {}", form.body);
        let csrf = form.input("csrf").expect("the login form has a csrf field");
        self.post_form(
            "/login",
            &[
                ("login", login),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/"),
            ],
        )
        .await
    }
}
