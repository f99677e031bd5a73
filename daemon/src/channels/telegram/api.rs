//! The Bot API client: two teloxide bots over our own reqwest clients (one for the long poll,
//! whose timeout must exceed the poll's, and one for everything else, behind teloxide's
//! `Throttle` adaptor so that Telegram's flood limits are kept and a 429 `retry_after` is waited
//! out), the optional proxy, errors with the token scrubbed out, and the calls the bot makes
//! (formatted text with a plain-text fallback, photos, voice notes, edits, button answers,
//! downloads), each counted.
//!
//! The token is part of every request URL, so reqwest's errors contain it: every error text
//! goes through [`Api::scrub`]. teloxide's `Bot` prints its token in `Debug`: never log a bot.
//!
//! Owns: the HTTP side of the bot. Does not own: what to say (see `super::conversation`,
//! `super::notify`).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use teloxide_core::adaptors::Throttle;
use teloxide_core::adaptors::throttle::{Limits, Settings};
use teloxide_core::net::Download;
use teloxide_core::payloads::setters::*;
use teloxide_core::requests::Requester;
use teloxide_core::types::{
    AllowedUpdate, BotCommand, ChatAction, ChatId, InlineKeyboardMarkup, InputFile, Me, Message,
    MessageId, ParseMode, Update,
};
use teloxide_core::{ApiError, Bot, RequestError};
use tracing::debug;

use super::TelegramMetrics;
use super::config::{self, TelegramConfig};
use super::format::{self, MESSAGE_MAX};
use crate::config::secret::Secret;

/// Time to open a connection to the Bot API.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Extra time of the polling client over the poll's own timeout.
const POLL_SLACK: Duration = Duration::from_secs(10);
/// Largest file the bot downloads (Telegram's own limit for bots is 20 MB).
pub(crate) const DOWNLOAD_MAX: u32 = 20 * 1024 * 1024;

/// Why a call to the Bot API failed. Texts never contain the token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TelegramError {
    /// No connection, a timeout, or a broken answer on the way.
    #[error("cannot reach the Bot API: {0}")]
    Network(String),
    /// HTTP 429: Telegram asks to wait.
    #[error("Telegram asks to wait {0:?} (flood control)")]
    RetryAfter(Duration),
    /// HTTP 400 "can't parse entities": the formatting was rejected.
    #[error("Telegram rejected the formatting: {0}")]
    Markup(String),
    /// The token is wrong or revoked.
    #[error(
        "the Bot API refused the token: check [telegram] token_env, token_file or token_credential"
    )]
    Unauthorized,
    /// Telegram refused the request (chat not found, blocked by the user, ...).
    #[error("Telegram refused: {0}")]
    Refused(ApiError),
    /// The answer was not what the Bot API sends.
    #[error("unexpected answer from the Bot API: {0}")]
    BadResponse(String),
    /// A file was larger than the bot may download.
    #[error("the file is {0} bytes, more than the bot downloads")]
    TooLarge(u32),
}

impl TelegramError {
    /// A short label for metrics.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Network(_) => "network",
            Self::RetryAfter(_) => "retry_after",
            Self::Markup(_) => "markup",
            Self::Unauthorized => "unauthorized",
            Self::Refused(_) => "refused",
            Self::BadResponse(_) => "bad_response",
            Self::TooLarge(_) => "too_large",
        }
    }

    /// An edit that changed nothing: as good as done.
    pub(crate) fn is_not_modified(&self) -> bool {
        matches!(self, Self::Refused(ApiError::MessageNotModified))
    }

    /// The message cannot be edited any more (deleted, too old, chat gone): stop trying.
    pub(crate) fn is_gone(&self) -> bool {
        matches!(
            self,
            Self::Refused(
                ApiError::MessageToEditNotFound
                    | ApiError::MessageCantBeEdited
                    | ApiError::MessageIdInvalid
                    | ApiError::ChatNotFound
                    | ApiError::BotBlocked
                    | ApiError::BotKicked
                    | ApiError::BotKickedFromSupergroup
                    | ApiError::UserDeactivated
            )
        )
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    /// `[telegram] api_url` is not usable (validation normally catches it).
    #[error("[telegram] api_url: {0}")]
    ApiUrl(String),
    /// `[telegram] proxy` is not usable.
    #[error("[telegram] proxy: {0}")]
    Proxy(String),
    /// reqwest could not build its client (TLS roots).
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// The bot's connection to the Bot API. Cheap to share (`Arc`).
pub(crate) struct Api {
    /// Everything but the long poll, throttled.
    bot: Throttle<Bot>,
    /// The long poll.
    poll: Bot,
    /// The token, only to scrub it out of error texts.
    token: Secret,
    api_url: String,
    pub(crate) metrics: Arc<TelegramMetrics>,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the bots: their Debug prints the token.
        f.debug_struct("Api")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

fn client(cfg: &TelegramConfig, timeout: Duration) -> Result<reqwest::Client, BuildError> {
    let mut builder = teloxide_core::net::default_reqwest_settings()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout);
    if let Some(proxy) = &cfg.proxy {
        let url = config::proxy_url(proxy).map_err(BuildError::Proxy)?;
        let proxy = reqwest::Proxy::all(url).map_err(|e| BuildError::Proxy(e.to_string()))?;
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(BuildError::Client)
}

impl Api {
    /// The client for `cfg` with `token`, and the throttle's worker, which must be polled (by
    /// the bot's task) for throttled requests to go out.
    ///
    /// # Errors
    /// See [`BuildError`].
    pub(crate) fn new(
        cfg: &TelegramConfig,
        token: Secret,
        metrics: Arc<TelegramMetrics>,
    ) -> Result<(Self, impl Future<Output = ()> + Send + use<>), BuildError> {
        let url = config::api_url(&cfg.api_url).map_err(BuildError::ApiUrl)?;
        let send_client = client(cfg, cfg.request_timeout)?;
        let poll_client = client(cfg, cfg.poll_timeout + POLL_SLACK)?;
        let bot = Bot::with_client(token.expose(), send_client).set_api_url(url.clone());
        let poll = Bot::with_client(token.expose(), poll_client).set_api_url(url.clone());
        let (bot, worker) =
            Throttle::with_settings(bot, Settings::default().limits(Limits::default()));
        Ok((
            Self {
                bot,
                poll,
                token,
                api_url: url.to_string(),
                metrics,
            },
            worker,
        ))
    }

    /// The API address (for logs).
    pub(crate) fn api_url(&self) -> &str {
        &self.api_url
    }

    /// `text` with the token replaced by `<token>`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let token = self.token.expose();
        if token.is_empty() {
            return text.to_owned();
        }
        text.replace(token, "<token>")
    }

    fn classify(&self, e: RequestError) -> TelegramError {
        match e {
            RequestError::Api(ApiError::CantParseEntities(m)) => TelegramError::Markup(m),
            RequestError::Api(ApiError::InvalidToken) => TelegramError::Unauthorized,
            RequestError::Api(api) => TelegramError::Refused(api),
            RequestError::RetryAfter(s) => TelegramError::RetryAfter(s.duration()),
            RequestError::MigrateToChatId(c) => TelegramError::BadResponse(format!(
                "the group moved to chat {c}; update the config"
            )),
            RequestError::Network(e) => TelegramError::Network(self.scrub(&error_chain(&*e))),
            RequestError::Io(e) => TelegramError::Network(self.scrub(&e.to_string())),
            RequestError::InvalidJson { source, raw } => TelegramError::BadResponse(
                self.scrub(&format!("{source}: {}", format::truncate(&raw, 200))),
            ),
        }
    }

    /// Counts the outcome of one call.
    fn settle<T>(&self, method: &str, r: Result<T, RequestError>) -> Result<T, TelegramError> {
        match r {
            Ok(v) => {
                self.metrics.count_call(method, "ok");
                Ok(v)
            }
            Err(e) => {
                let e = self.classify(e);
                self.metrics.count_call(method, e.kind());
                Err(e)
            }
        }
    }

    /// `getMe`.
    pub(crate) async fn get_me(&self) -> Result<Me, TelegramError> {
        let r = self.poll.get_me().await;
        self.settle("getMe", r)
    }

    /// Long poll: updates from `offset` on (all unconfirmed ones when `None`), waiting up to
    /// `timeout` for the first.
    pub(crate) async fn get_updates(
        &self,
        offset: Option<i32>,
        timeout: Duration,
    ) -> Result<Vec<Update>, TelegramError> {
        let mut req = self
            .poll
            .get_updates()
            .timeout(u32::try_from(timeout.as_secs()).unwrap_or(50))
            .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
        if let Some(o) = offset {
            req = req.offset(o);
        }
        let r = req.await;
        self.settle("getUpdates", r)
    }

    /// Removes a webhook, if one is set (a bot with a webhook gets no updates by polling).
    pub(crate) async fn drop_webhook(&self) -> Result<bool, TelegramError> {
        let r = self.poll.get_webhook_info().await;
        let info = self.settle("getWebhookInfo", r)?;
        if info.url.is_none() {
            return Ok(false);
        }
        let r = self.poll.delete_webhook().await;
        self.settle("deleteWebhook", r).map(|_| true)
    }

    /// Registers the command menu, `language` `None` for the default one.
    pub(crate) async fn set_commands(
        &self,
        commands: Vec<(&str, &str)>,
        language: Option<&str>,
    ) -> Result<(), TelegramError> {
        let list: Vec<BotCommand> = commands
            .into_iter()
            .map(|(c, d)| BotCommand::new(c, d))
            .collect();
        let mut req = self.poll.set_my_commands(list);
        if let Some(l) = language {
            req = req.language_code(l);
        }
        let r = req.await;
        self.settle("setMyCommands", r).map(|_| ())
    }

    /// "typing…" (or another action) in `chat` for about 5 s. Best effort.
    pub(crate) async fn chat_action(&self, chat: ChatId, action: ChatAction) {
        let r = self.bot.send_chat_action(chat, action).await;
        if let Err(e) = self.settle("sendChatAction", r) {
            debug!(chat = chat.0, error = %e, "Cannot show the chat action.");
        }
    }

    /// One message of at most 4096 units, as HTML when `html`.
    async fn send_one(
        &self,
        chat: ChatId,
        text: &str,
        html: bool,
        markup: Option<InlineKeyboardMarkup>,
    ) -> Result<Message, TelegramError> {
        let mut req = self.bot.send_message(chat, text);
        if html {
            req = req.parse_mode(ParseMode::Html);
        }
        if let Some(m) = markup {
            req = req.reply_markup(m);
        }
        let r = req.await;
        self.settle("sendMessage", r)
    }

    /// Sends `text` as plain text (no parse mode), split at 4096 units; `markup` goes on the
    /// last piece. Returns the messages sent.
    pub(crate) async fn send_plain(
        &self,
        chat: ChatId,
        text: &str,
        markup: Option<InlineKeyboardMarkup>,
    ) -> Result<Vec<Message>, TelegramError> {
        let pieces = format::split(text, MESSAGE_MAX);
        let last = pieces.len().saturating_sub(1);
        let mut sent = Vec::with_capacity(pieces.len());
        for (i, piece) in pieces.iter().enumerate() {
            let m = if i == last { markup.clone() } else { None };
            sent.push(self.send_one(chat, piece, false, m).await?);
        }
        Ok(sent)
    }

    /// Sends an answer: split at 4096 units on line boundaries, each piece as HTML (escaped,
    /// with bold and code marks), and again as plain text when Telegram rejects the markup.
    /// `markup` goes on the last piece.
    pub(crate) async fn send_formatted(
        &self,
        chat: ChatId,
        text: &str,
        markup: Option<InlineKeyboardMarkup>,
    ) -> Result<Vec<Message>, TelegramError> {
        let pieces = format::split(text, MESSAGE_MAX);
        let last = pieces.len().saturating_sub(1);
        let mut sent = Vec::with_capacity(pieces.len());
        for (i, piece) in pieces.iter().enumerate() {
            let m = if i == last { markup.clone() } else { None };
            let msg = match self
                .send_one(chat, &format::to_html(piece), true, m.clone())
                .await
            {
                Err(TelegramError::Markup(why)) => {
                    self.metrics.markup_fallbacks.inc();
                    debug!(chat = chat.0, error = %why, "Telegram rejected the markup; sending plain text.");
                    self.send_one(chat, piece, false, m).await?
                }
                other => other?,
            };
            sent.push(msg);
        }
        Ok(sent)
    }

    /// A PNG as a photo with a caption (cut to 1024 units).
    pub(crate) async fn send_photo(
        &self,
        chat: ChatId,
        png: Vec<u8>,
        name: &str,
        caption: &str,
    ) -> Result<Message, TelegramError> {
        let file = InputFile::memory(png).file_name(name.to_owned());
        let r = self
            .bot
            .send_photo(chat, file)
            .caption(format::truncate(caption, format::CAPTION_MAX))
            .await;
        self.settle("sendPhoto", r)
    }

    /// An OGG/Opus file as a voice note.
    pub(crate) async fn send_voice(
        &self,
        chat: ChatId,
        ogg: Vec<u8>,
    ) -> Result<Message, TelegramError> {
        let file = InputFile::memory(ogg).file_name("answer.ogg");
        let r = self.bot.send_voice(chat, file).await;
        self.settle("sendVoice", r)
    }

    /// Replaces the text and buttons of a message the bot sent (plain text). An edit that
    /// changes nothing counts as done.
    pub(crate) async fn edit(
        &self,
        chat: ChatId,
        message: MessageId,
        text: &str,
        markup: Option<InlineKeyboardMarkup>,
    ) -> Result<(), TelegramError> {
        let mut req =
            self.bot
                .edit_message_text(chat, message, format::truncate(text, MESSAGE_MAX));
        // Without reply_markup, Telegram removes the buttons.
        if let Some(m) = markup {
            req = req.reply_markup(m);
        }
        let r = req.await;
        match self.settle("editMessageText", r) {
            Err(e) if e.is_not_modified() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Answers a button press: `text` shown to the person (an alert when `alert`).
    pub(crate) async fn answer_button(
        &self,
        id: &teloxide_core::types::CallbackQueryId,
        text: &str,
        alert: bool,
    ) -> Result<(), TelegramError> {
        let r = self
            .bot
            .answer_callback_query(id.clone())
            .text(format::truncate(text, 200))
            .show_alert(alert)
            .await;
        self.settle("answerCallbackQuery", r).map(|_| ())
    }

    /// Downloads a file the bot received (`getFile`, then the file itself), refusing files
    /// larger than `max` bytes.
    pub(crate) async fn download(
        &self,
        file_id: &teloxide_core::types::FileId,
        max: u32,
    ) -> Result<Vec<u8>, TelegramError> {
        let r = self.bot.get_file(file_id.clone()).await;
        let file = self.settle("getFile", r)?;
        if file.meta.size > max {
            return Err(TelegramError::TooLarge(file.meta.size));
        }
        let mut buf: Vec<u8> = Vec::with_capacity(usize::try_from(file.meta.size).unwrap_or(0));
        match self.bot.inner().download_file(&file.path, &mut buf).await {
            Ok(()) => {
                self.metrics.count_call("download", "ok");
            }
            Err(e) => {
                self.metrics.count_call("download", "network");
                return Err(TelegramError::Network(self.scrub(&error_chain(&e))));
            }
        }
        if buf.len() > usize::try_from(max).unwrap_or(usize::MAX) {
            return Err(TelegramError::TooLarge(
                u32::try_from(buf.len()).unwrap_or(u32::MAX),
            ));
        }
        Ok(buf)
    }
}

/// An error and its sources, one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !out.contains(&more) {
            out.push_str(": ");
            out.push_str(&more);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::metrics::MetricSet;

    fn api() -> Api {
        let cfg = TelegramConfig::default();
        let metrics = Arc::new(TelegramMetrics::register(
            &mut prometheus_client::registry::Registry::default(),
        ));
        Api::new(&cfg, Secret::new("123456:SECRET-token"), metrics)
            .map(|(api, _worker)| api)
            .unwrap()
    }

    #[tokio::test]
    async fn errors_and_debug_never_show_the_token() {
        let api = api();
        assert!(!format!("{api:?}").contains("SECRET"));
        let scrubbed = api.scrub(
            "error sending request for url (https://api.telegram.org/bot123456:SECRET-token/GetMe)",
        );
        assert!(!scrubbed.contains("SECRET"), "{scrubbed}");
        assert!(scrubbed.contains("bot<token>/GetMe"));
    }

    #[tokio::test]
    async fn an_unreachable_api_is_a_network_error_without_the_token() {
        let cfg = TelegramConfig {
            // Nothing listens on port 9 of loopback.
            api_url: "http://127.0.0.1:9".into(),
            ..TelegramConfig::default()
        };
        let metrics = Arc::new(TelegramMetrics::register(
            &mut prometheus_client::registry::Registry::default(),
        ));
        let (api, _worker) = Api::new(&cfg, Secret::new("42:SECRET"), metrics).unwrap();
        let e = api.get_me().await.unwrap_err();
        assert_eq!(e.kind(), "network");
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }

    #[test]
    fn a_bad_proxy_is_refused() {
        let cfg = TelegramConfig {
            proxy: Some("ftp://x".into()),
            ..TelegramConfig::default()
        };
        let metrics = Arc::new(TelegramMetrics::register(
            &mut prometheus_client::registry::Registry::default(),
        ));
        assert!(matches!(
            Api::new(&cfg, Secret::new("1:x"), metrics),
            Err(BuildError::Proxy(_))
        ));
    }
}
