//! A fake Telegram Bot API server for tests of the bot without the internet: it speaks the
//! Bot API's wire format closely enough for teloxide, lets a test play the people (text,
//! voice notes, button presses), records every call the bot makes, and injects faults.
//!
//! Owns: a listener on `127.0.0.1:0` (the same port again after [`FakeTelegram::restart`], so
//! a test can start it stopped to play "Telegram unreachable"), one task per connection (cut
//! by [`FakeTelegram::stop`]), the pending updates, the messages the bot sent, and the record.
//! Does not own: any real chat logic; every method answers from this state.
//!
//! ```no_run
//! # use markoff_tests::telegram::FakeTelegram;
//! # async fn example() {
//! let tg = FakeTelegram::start().await;
//! // [telegram] api_url = tg.url(), token_env = "TG_TOKEN" with TG_TOKEN = tg.token()
//! tg.inject_text(1001, "/status");
//! // ... then look at tg.texts_to(1001), tg.sent()
//! # }
//! ```
//!
//! Endpoints (method names matched case-insensitively, as Telegram does; teloxide sends them
//! CamelCase): `POST /bot{token}/{method}` with JSON or multipart bodies: `getMe`,
//! `getUpdates` (long poll honouring `offset` and `timeout`; updates below the offset are
//! confirmed and forgotten), `sendMessage`, `sendChatAction`, `sendPhoto`, `sendVoice`
//! (multipart, the bytes are kept), `getFile` (a relative `file_path`), `editMessageText`,
//! `editMessageReplyMarkup`, `answerCallbackQuery`, `deleteWebhook`, `getWebhookInfo`,
//! `setMyCommands`, `getMyCommands`; `GET /file/bot{token}/{path}` (percent-decoded path).
//! A wrong token gets 401 "Unauthorized", an unknown method 404 "Not Found". Texts longer than
//! 4096 UTF-16 units and captions longer than 1024 are refused like Telegram refuses them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::fake_server::FakeListener;

/// The token the fake accepts; the bot's id is its number part.
pub const TOKEN: &str = "123456789:AAFakeTestToken_for-markoff-tests";
/// The bot's user id.
pub const BOT_ID: i64 = 123_456_789;
/// The bot's username.
pub const BOT_USERNAME: &str = "markoff_test_bot";

/// Methods that set the bot up or poll; every other call reaches a chat (see
/// [`FakeTelegram::sent`]).
const HOUSEKEEPING: [&str; 6] = [
    "getMe",
    "getUpdates",
    "getWebhookInfo",
    "deleteWebhook",
    "setMyCommands",
    "getMyCommands",
];

/// Canonical names, to record calls the way the Bot API documents them.
const METHODS: [&str; 16] = [
    "getMe",
    "getUpdates",
    "getWebhookInfo",
    "deleteWebhook",
    "setMyCommands",
    "getMyCommands",
    "sendMessage",
    "sendChatAction",
    "sendPhoto",
    "sendVoice",
    "getFile",
    "editMessageText",
    "editMessageReplyMarkup",
    "answerCallbackQuery",
    "download",
    "logOut",
];

/// A fault the next call of a method gets instead of its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `parameters.retry_after` seconds.
    TooManyRequests(u32),
    /// HTTP 400 "Bad Request: can't parse entities: ...".
    CantParseEntities,
    /// This status with this description.
    Status(u16, String),
}

/// One call the bot made.
#[derive(Clone, Debug)]
pub struct Call {
    /// The method, as the Bot API documents it (`sendMessage`), or `download` for a file.
    pub method: String,
    /// Its parameters (multipart text fields parsed as JSON when they are JSON).
    pub params: Value,
    /// Files of a multipart call, by field name.
    pub files: BTreeMap<String, Vec<u8>>,
    /// When it arrived (test clock).
    pub at: tokio::time::Instant,
}

impl Call {
    /// The `chat_id` parameter.
    pub fn chat(&self) -> Option<i64> {
        match &self.params["chat_id"] {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The `text` parameter.
    pub fn text(&self) -> Option<&str> {
        self.params["text"].as_str()
    }

    /// The `callback_data` of every inline button of `reply_markup`.
    pub fn button_data(&self) -> Vec<String> {
        button_data(&self.params)
    }
}

/// The `callback_data` of every inline button of a message (or of a call's parameters).
pub fn button_data(message: &Value) -> Vec<String> {
    let markup = match &message["reply_markup"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        v => v.clone(),
    };
    markup["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|b| b["callback_data"].as_str().map(str::to_owned))
        .collect()
}

#[derive(Default)]
struct Books {
    updates: VecDeque<(i64, Value)>,
    next_update: i64,
    next_message: i64,
    next_file: u64,
    calls: Vec<Call>,
    /// file_id -> (file_path, bytes)
    files: HashMap<String, (String, Vec<u8>)>,
    /// Every message in every chat (sent by the bot or injected), by (chat, message id).
    messages: HashMap<(i64, i64), Value>,
    faults: Vec<(String, Fault)>,
    reject_markup: bool,
}

struct Shared {
    books: Mutex<Books>,
    news: Notify,
}

/// The fake server. Stops listening when dropped.
pub struct FakeTelegram {
    shared: Arc<Shared>,
    server: FakeListener,
}

impl fmt::Debug for FakeTelegram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeTelegram")
            .field("port", &self.server.port())
            .finish_non_exhaustive()
    }
}

fn lock(s: &Shared) -> MutexGuard<'_, Books> {
    s.books.lock()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn user_json(id: i64) -> Value {
    json!({"id": id, "is_bot": false, "first_name": format!("User{id}"), "language_code": "en"})
}

fn bot_json() -> Value {
    json!({"id": BOT_ID, "is_bot": true, "first_name": "Markoff Test", "username": BOT_USERNAME})
}

fn chat_json(id: i64) -> Value {
    if id < 0 {
        json!({"id": id, "type": "supergroup", "title": format!("Group {id}")})
    } else {
        json!({"id": id, "type": "private", "first_name": format!("User{id}")})
    }
}

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

impl FakeTelegram {
    /// A running fake.
    ///
    /// # Panics
    /// No loopback port can be bound.
    pub async fn start() -> Self {
        let fake = Self::start_stopped().await;
        fake.restart().await;
        fake
    }

    /// A fake that has a port but does not listen yet (Telegram unreachable): clients get
    /// "connection refused" until [`FakeTelegram::restart`].
    ///
    /// # Panics
    /// No loopback port can be bound.
    pub async fn start_stopped() -> Self {
        let shared = Arc::new(Shared {
            books: Mutex::new(Books {
                next_update: 1000,
                next_message: 1,
                ..Books::default()
            }),
            news: Notify::new(),
        });
        let app = {
            let shared = shared.clone();
            Arc::new(move |_conn: CancellationToken| {
                Router::new().fallback(handle).with_state(shared.clone())
            })
        };
        let server = FakeListener::new(app).await;
        Self { shared, server }
    }

    /// `http://127.0.0.1:<port>`, the value for `[telegram] api_url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// The token the fake accepts (give it to the gateway through `token_env`).
    pub fn token(&self) -> &'static str {
        TOKEN
    }

    /// Stops listening and drops every open connection; the state is kept.
    pub async fn stop(&self) {
        self.server.stop().await;
    }

    /// Listens (again) on the same port.
    ///
    /// # Panics
    /// The port cannot be bound within the patience (taken by another process).
    pub async fn restart(&self) {
        self.server.restart().await;
    }

    fn push_update(&self, body: Value) -> i64 {
        let id = {
            let mut b = lock(&self.shared);
            let id = b.next_update;
            b.next_update += 1;
            let mut update = body;
            update["update_id"] = json!(id);
            b.updates.push_back((id, update));
            id
        };
        self.shared.news.notify_waiters();
        id
    }

    fn new_message(&self, chat: i64, from: i64, fields: Value) -> Value {
        let mut b = lock(&self.shared);
        let id = b.next_message;
        b.next_message += 1;
        let mut msg = json!({"message_id": id, "date": now_secs(), "chat": chat_json(chat),
            "from": user_json(from)});
        if let (Some(m), Value::Object(f)) = (msg.as_object_mut(), fields) {
            m.extend(f);
        }
        b.messages.insert((chat, id), msg.clone());
        msg
    }

    /// User `user` writes `text` in their private chat with the bot. Returns the update id.
    pub fn inject_text(&self, user: i64, text: &str) -> i64 {
        self.inject_text_in(user, user, text)
    }

    /// User `user` writes `text` in chat `chat` (negative: a group).
    pub fn inject_text_in(&self, chat: i64, user: i64, text: &str) -> i64 {
        let msg = self.new_message(chat, user, json!({"text": text}));
        self.push_update(json!({"message": msg}))
    }

    /// User `user` sends a voice note (`ogg`, `seconds` long) in their private chat.
    pub fn inject_voice(&self, user: i64, ogg: Vec<u8>, seconds: u32) -> i64 {
        let (file_id, size) = {
            let mut b = lock(&self.shared);
            b.next_file += 1;
            let n = b.next_file;
            let file_id = format!("VOICE{n:06}");
            let size = ogg.len();
            b.files
                .insert(file_id.clone(), (format!("voice/file_{n}.oga"), ogg));
            (file_id, size)
        };
        let msg = self.new_message(
            user,
            user,
            json!({"voice": {"file_id": file_id, "file_unique_id": format!("U{file_id}"),
                "duration": seconds, "mime_type": "audio/ogg", "file_size": size}}),
        );
        self.push_update(json!({"message": msg}))
    }

    /// User `user` presses the button with `data` under message `message` of chat `chat`.
    /// Returns the callback query id.
    pub fn inject_callback(&self, chat: i64, message: i64, user: i64, data: &str) -> String {
        let msg = lock(&self.shared)
            .messages
            .get(&(chat, message))
            .cloned()
            .unwrap_or_else(|| {
                json!({"message_id": message, "date": now_secs(), "chat": chat_json(chat),
                    "from": bot_json(), "text": "?"})
            });
        let id = format!("cb{}", lock(&self.shared).next_update);
        self.push_update(json!({"callback_query": {"id": id, "from": user_json(user),
            "chat_instance": format!("ci{chat}"), "message": msg, "data": data}}));
        id
    }

    /// Queues a raw update (the `update_id` is set by the fake), e.g. one of a kind the bot
    /// does not know.
    pub fn inject_raw(&self, update: Value) -> i64 {
        self.push_update(update)
    }

    /// The next call of `method` (case-insensitive) gets `fault` instead of its answer.
    pub fn fail_next(&self, method: &str, fault: Fault) {
        lock(&self.shared)
            .faults
            .push((method.to_ascii_lowercase(), fault));
    }

    /// While on, every `sendMessage` with a `parse_mode` is refused with 400 "can't parse
    /// entities" (as Telegram refuses broken markup).
    pub fn reject_markup(&self, on: bool) {
        lock(&self.shared).reject_markup = on;
    }

    /// Every call, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared).calls.clone()
    }

    /// The calls that reach a chat or a person (everything but getMe, getUpdates, webhook and
    /// command-menu calls).
    pub fn sent(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| !HOUSEKEEPING.contains(&c.method.as_str()))
            .collect()
    }

    /// Calls of `method` (as documented, e.g. `sendMessage`).
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method))
            .collect()
    }

    /// The `sendMessage` calls to `chat`.
    pub fn messages_to(&self, chat: i64) -> Vec<Call> {
        self.calls_of("sendMessage")
            .into_iter()
            .filter(|c| c.chat() == Some(chat))
            .collect()
    }

    /// The texts sent to `chat` with `sendMessage`.
    pub fn texts_to(&self, chat: i64) -> Vec<String> {
        self.messages_to(chat)
            .iter()
            .filter_map(|c| c.text().map(str::to_owned))
            .collect()
    }

    /// The bot's messages in `chat` as the chat shows them now (after edits), oldest first.
    pub fn bot_messages(&self, chat: i64) -> Vec<Value> {
        let b = lock(&self.shared);
        let mut out: Vec<Value> = b
            .messages
            .iter()
            .filter(|((c, _), m)| *c == chat && m["from"]["is_bot"] == true)
            .map(|(_, m)| m.clone())
            .collect();
        out.sort_by_key(|m| m["message_id"].as_i64());
        out
    }

    /// A message as the chat shows it now (after edits), with its `reply_markup`.
    pub fn message(&self, chat: i64, id: i64) -> Option<Value> {
        lock(&self.shared).messages.get(&(chat, id)).cloned()
    }

    /// Updates not yet confirmed by the bot (Telegram forgets them at the next `getUpdates`
    /// with a higher offset).
    pub fn pending_updates(&self) -> usize {
        lock(&self.shared).updates.len()
    }
}

fn reply(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(result: Value) -> Response {
    reply(StatusCode::OK, &json!({"ok": true, "result": result}))
}

fn error(code: u16, description: &str) -> Response {
    reply(
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        &json!({"ok": false, "error_code": code, "description": description}),
    )
}

fn fault_response(f: &Fault) -> Response {
    match f {
        Fault::TooManyRequests(secs) => reply(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"ok": false, "error_code": 429,
                "description": format!("Too Many Requests: retry after {secs}"),
                "parameters": {"retry_after": secs}}),
        ),
        Fault::CantParseEntities => error(
            400,
            "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0",
        ),
        Fault::Status(code, d) => error(*code, d),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if req.method() == Method::GET
        && let Some(rest) = path.strip_prefix("/file/bot")
    {
        return download(&s, rest);
    }
    let Some(rest) = path.strip_prefix("/bot") else {
        return error(404, "Not Found");
    };
    let Some((token, method)) = rest.split_once('/') else {
        return error(404, "Not Found");
    };
    if token != TOKEN {
        return error(401, "Unauthorized");
    }
    let lower = method.to_ascii_lowercase();
    let canonical = METHODS
        .iter()
        .find(|m| m.to_ascii_lowercase() == lower)
        .map_or_else(|| method.to_owned(), |m| (*m).to_owned());
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (params, files) = if multipart {
        match read_multipart(req).await {
            Ok(p) => p,
            Err(e) => return error(400, &format!("Bad Request: {e}")),
        }
    } else {
        let body = match Bytes::from_request(req, &()).await {
            Ok(b) => b,
            Err(_) => return error(400, "Bad Request: unreadable body"),
        };
        let params = if body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice::<Value>(&body) {
                Ok(v) => v,
                Err(_) => return error(400, "Bad Request: invalid JSON"),
            }
        };
        (params, BTreeMap::new())
    };
    {
        let mut b = lock(&s);
        b.calls.push(Call {
            method: canonical.clone(),
            params: params.clone(),
            files: files.clone(),
            at: tokio::time::Instant::now(),
        });
        if let Some(i) = b.faults.iter().position(|(m, _)| *m == lower) {
            let (_, f) = b.faults.remove(i);
            return fault_response(&f);
        }
    }
    match lower.as_str() {
        "getme" => ok(
            json!({"id": BOT_ID, "is_bot": true, "first_name": "Markoff Test",
            "username": BOT_USERNAME, "can_join_groups": true,
            "can_read_all_group_messages": false, "supports_inline_queries": false,
            "can_connect_to_business": false, "has_main_web_app": false}),
        ),
        "getupdates" => get_updates(&s, &params).await,
        "getwebhookinfo" => {
            ok(json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0}))
        }
        "deletewebhook" | "setmycommands" | "sendchataction" | "answercallbackquery" => {
            ok(json!(true))
        }
        "getmycommands" => ok(json!([])),
        "sendmessage" => send_message(&s, &params),
        "sendphoto" | "sendvoice" => send_file(&s, &lower, &params, &files),
        "getfile" => get_file(&s, &params),
        "editmessagetext" | "editmessagereplymarkup" => edit(&s, &lower, &params),
        _ => error(404, "Not Found"),
    }
}

async fn read_multipart(req: Request) -> Result<(Value, BTreeMap<String, Vec<u8>>), String> {
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| e.to_string())?;
    let mut params = Map::new();
    let mut files = BTreeMap::new();
    while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let bytes = field.bytes().await.map_err(|e| e.to_string())?;
        if is_file {
            files.insert(name, bytes.to_vec());
        } else {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let value = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
            params.insert(name, value);
        }
    }
    // A file may be sent as its own part and named in the field: `voice = "attach://<part>"`
    // (teloxide does so); it is kept under the field's name.
    let attached: Vec<(String, String)> = params
        .iter()
        .filter_map(|(k, v)| {
            v.as_str()
                .and_then(|s| s.strip_prefix("attach://"))
                .map(|part| (k.clone(), part.to_owned()))
        })
        .collect();
    for (field, part) in attached {
        if let Some(bytes) = files.remove(&part) {
            files.insert(field, bytes);
        }
    }
    Ok((Value::Object(params), files))
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

async fn get_updates(s: &Shared, params: &Value) -> Response {
    let offset = int(&params["offset"]);
    let timeout = Duration::from_secs(
        int(&params["timeout"])
            .unwrap_or(0)
            .clamp(0, 50)
            .unsigned_abs(),
    );
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let news = s.news.notified();
        {
            let mut b = lock(s);
            if let Some(o) = offset {
                // Confirmed: Telegram forgets them.
                b.updates.retain(|(id, _)| *id >= o);
            }
            let ready: Vec<Value> = b.updates.iter().map(|(_, u)| u.clone()).collect();
            if !ready.is_empty() {
                return ok(Value::Array(ready));
            }
        }
        if tokio::time::timeout_at(deadline, news).await.is_err() {
            return ok(json!([]));
        }
    }
}

fn markup_of(params: &Value) -> Option<Value> {
    match &params["reply_markup"] {
        Value::Null => None,
        Value::String(s) => serde_json::from_str(s).ok(),
        v => Some(v.clone()),
    }
}

fn bot_message(b: &mut Books, chat: i64, fields: Value) -> Value {
    let id = b.next_message;
    b.next_message += 1;
    let mut msg = json!({"message_id": id, "date": now_secs(), "chat": chat_json(chat),
        "from": bot_json()});
    if let (Some(m), Value::Object(f)) = (msg.as_object_mut(), fields) {
        m.extend(f);
    }
    b.messages.insert((chat, id), msg.clone());
    msg
}

fn send_message(s: &Shared, params: &Value) -> Response {
    let Some(chat) = int(&params["chat_id"]) else {
        return error(400, "Bad Request: chat_id is empty");
    };
    let text = params["text"].as_str().unwrap_or_default();
    if text.trim().is_empty() {
        return error(400, "Bad Request: message text is empty");
    }
    if utf16_len(text) > 4096 {
        return error(400, "Bad Request: message is too long");
    }
    let mut b = lock(s);
    if b.reject_markup && !params["parse_mode"].is_null() {
        return fault_response(&Fault::CantParseEntities);
    }
    let mut fields = json!({"text": text});
    if let Some(m) = markup_of(params) {
        fields["reply_markup"] = m;
    }
    ok(bot_message(&mut b, chat, fields))
}

fn send_file(
    s: &Shared,
    method: &str,
    params: &Value,
    files: &BTreeMap<String, Vec<u8>>,
) -> Response {
    let Some(chat) = int(&params["chat_id"]) else {
        return error(400, "Bad Request: chat_id is empty");
    };
    let field = if method == "sendphoto" {
        "photo"
    } else {
        "voice"
    };
    let Some(bytes) = files.get(field) else {
        return error(
            400,
            &format!("Bad Request: there is no {field} in the request"),
        );
    };
    if let Some(c) = params["caption"].as_str()
        && utf16_len(c) > 1024
    {
        return error(400, "Bad Request: message caption is too long");
    }
    let mut b = lock(s);
    b.next_file += 1;
    let n = b.next_file;
    let meta = json!({"file_id": format!("SENT{n:06}"), "file_unique_id": format!("USENT{n:06}"),
        "file_size": bytes.len()});
    let mut fields = if field == "photo" {
        let mut p = meta;
        p["width"] = json!(800);
        p["height"] = json!(600);
        json!({"photo": [p]})
    } else {
        let mut v = meta;
        v["duration"] = json!(1);
        v["mime_type"] = json!("audio/ogg");
        json!({"voice": v})
    };
    if let Some(c) = params["caption"].as_str() {
        fields["caption"] = json!(c);
    }
    ok(bot_message(&mut b, chat, fields))
}

fn get_file(s: &Shared, params: &Value) -> Response {
    let id = params["file_id"].as_str().unwrap_or_default();
    let b = lock(s);
    match b.files.get(id) {
        Some((path, bytes)) => ok(json!({"file_id": id, "file_unique_id": format!("U{id}"),
            "file_size": bytes.len(), "file_path": path})),
        None => error(400, "Bad Request: invalid file_id"),
    }
}

fn download(s: &Shared, rest: &str) -> Response {
    let Some((token, path)) = rest.split_once('/') else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let path = percent_decode(path);
    let mut b = lock(s);
    b.calls.push(Call {
        method: "download".to_owned(),
        params: json!({"file_path": path}),
        files: BTreeMap::new(),
        at: tokio::time::Instant::now(),
    });
    if token != TOKEN {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    }
    match b.files.values().find(|(p, _)| *p == path) {
        Some((_, bytes)) => (StatusCode::OK, bytes.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

fn edit(s: &Shared, method: &str, params: &Value) -> Response {
    let (Some(chat), Some(id)) = (int(&params["chat_id"]), int(&params["message_id"])) else {
        return error(400, "Bad Request: message identifier is not specified");
    };
    let mut b = lock(s);
    let Some(msg) = b.messages.get_mut(&(chat, id)) else {
        return error(400, "Bad Request: message to edit not found");
    };
    let before = msg.clone();
    if method == "editmessagetext" {
        let text = params["text"].as_str().unwrap_or_default();
        if text.trim().is_empty() {
            return error(400, "Bad Request: message text is empty");
        }
        if utf16_len(text) > 4096 {
            return error(400, "Bad Request: MESSAGE_TOO_LONG");
        }
        msg["text"] = json!(text);
    }
    match (markup_of(params), msg.as_object_mut()) {
        (Some(m), Some(o)) => {
            o.insert("reply_markup".to_owned(), m);
        }
        (None, Some(o)) => {
            o.remove("reply_markup");
        }
        _ => {}
    }
    if *msg == before {
        return error(
            400,
            "Bad Request: message is not modified: specified new message content and reply \
             markup are exactly the same as a current content and reply markup of the message",
        );
    }
    ok(msg.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_encoded_paths() {
        assert_eq!(percent_decode("voice%2Ffile_1.oga"), "voice/file_1.oga");
        assert_eq!(percent_decode("a%zzb%"), "a%zzb%");
    }

    #[tokio::test]
    async fn answers_like_the_bot_api() {
        let tg = FakeTelegram::start().await;
        let http = reqwest::Client::new();
        let url = |m: &str| format!("{}/bot{TOKEN}/{m}", tg.url());
        let me: Value = http
            .post(url("GetMe"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["result"]["username"], BOT_USERNAME);
        let bad = http
            .post(format!("{}/botWRONG/getMe", tg.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 401);
        tg.inject_text(5, "hi");
        let up: Value = http
            .post(url("getUpdates"))
            .json(&json!({"timeout": 1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let first = up["result"][0]["update_id"].as_i64().unwrap();
        assert_eq!(up["result"][0]["message"]["text"], "hi");
        // Confirmed by the next offset, then an empty long poll.
        let up: Value = http
            .post(url("getupdates"))
            .json(&json!({"timeout": 0, "offset": first + 1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(up["result"], json!([]));
        assert_eq!(tg.pending_updates(), 0);
        let sent: Value = http
            .post(url("SendMessage"))
            .json(&json!({"chat_id": 5, "text": "hello"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(sent["result"]["text"], "hello");
        assert_eq!(tg.texts_to(5), ["hello"]);
        tg.fail_next("sendMessage", Fault::TooManyRequests(3));
        let r = http
            .post(url("sendMessage"))
            .json(&json!({"chat_id": 5, "text": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
    }
}
