//! The Telegram bot through the real binary, a fake Bot API server (`markoff_tests::telegram`)
//! and the fake Koboldcpp: questions and answers with "typing…", strangers who get nothing at
//! all, alarm notifications whose Ack button acknowledges (an operator) or is refused (a
//! viewer) and whose message is then edited, voice notes answered with a voice note, speech
//! models missing, Telegram unreachable at boot, long answers split, rejected markup resent as
//! plain text, 429s waited out, pictures, and confirmations.

use std::time::Duration;

use markoff_tests::kobold::{FakeKobold, FakeOptions, Step};
use markoff_tests::telegram::{Call, FakeTelegram, Fault, button_data};
use markoff_tests::{TempGateway, assert_always, assert_eventually, db, metric_in};
use serde_json::{Value, json};

use super::{ROOM_TOO_WARM, open_alarm_id};

/// Ivan (operator) and Olga (viewer, Russian) use the bot.
const IVAN: i64 = 1001;
const OLGA: i64 = 1002;
const STRANGER: i64 = 666;

/// The people: `notify` says who gets alarm notifications.
fn users(ivan_notified: bool, olga_notified: bool) -> String {
    format!(
        r#"
[[users]]
login = "ivan"
role = "operator"
telegram_id = {IVAN}
notify = {ivan_notified}

[[users]]
login = "olga"
role = "viewer"
telegram_id = {OLGA}
lang = "ru"
notify = {olga_notified}
"#
    )
}

/// What a test gateway has besides the bot.
#[derive(Default)]
struct Setup<'a> {
    kobold: Option<&'a FakeKobold>,
    /// Extra `[telegram]` keys.
    telegram: &'a str,
    /// Extra `[agent]` keys (with `kobold`).
    agent: &'a str,
    /// More tables (rules, users).
    more: String,
}

/// A gateway whose bot talks to `tg` (short polls, quick reconnects).
async fn gateway(tg: &FakeTelegram, setup: Setup<'_>) -> TempGateway {
    let mut toml = format!(
        "[telegram]\nenabled = true\ntoken_env = \"MARKOFF_TEST_TELEGRAM_TOKEN\"\napi_url = \"{}\"\n\
         poll_timeout = \"2s\"\nretry_max = \"1s\"\n{}\n",
        tg.url(),
        setup.telegram
    );
    if let Some(k) = setup.kobold {
        toml.push_str(&format!(
            "[agent]\nturn_timeout = \"20s\"\n{}\n\n[agent.llm]\nurl = \"{}\"\nrequest_timeout = \"5s\"\n\n",
            setup.agent,
            k.url()
        ));
    }
    toml.push_str(&setup.more);
    if !setup.more.contains("[[users]]") {
        toml.push_str(&users(false, false));
    }
    TempGateway::builder()
        .extra_toml(&toml)
        .env("MARKOFF_TEST_TELEGRAM_TOKEN", tg.token())
        .start()
        .await
}

/// Waits until the bot has connected (its command menu is registered).
async fn connected(tg: &FakeTelegram, gw: &TempGateway) {
    assert_eventually!(
        tg.calls_of("setMyCommands").len() >= 2,
        "the bot never connected:\n{}",
        gw.log()
    );
}

async fn metric(gw: &TempGateway, name: &str) -> f64 {
    metric_in(&gw.metrics_text().await, name).unwrap_or(0.0)
}

/// The texts sent to `chat`, joined (for failure messages).
fn shown(tg: &FakeTelegram, chat: i64) -> String {
    tg.texts_to(chat).join("\n---\n")
}

/// The first message with an Ack button sent to `chat`: (message id, alarm id, message as
/// sent).
async fn notification(tg: &FakeTelegram, gw: &TempGateway, chat: i64) -> (i64, i64, Value) {
    let find = || {
        tg.messages_to(chat)
            .into_iter()
            .find(|c| c.button_data().iter().any(|d| d.starts_with("ack:")))
    };
    assert_eventually!(
        find().is_some(),
        "no notification with buttons reached {chat}: {}\n{}",
        shown(tg, chat),
        gw.log()
    );
    let call = find().expect("found above");
    let alarm: i64 = call.button_data()[0]
        .strip_prefix("ack:")
        .and_then(|id| id.parse().ok())
        .expect("ack:<alarm id>");
    // The message the fake made of it: the first of the bot's with that text.
    let message = tg
        .bot_messages(chat)
        .into_iter()
        .find(|m| m["text"].as_str() == call.text())
        .and_then(|m| m["message_id"].as_i64())
        .expect("the sent message is in the chat");
    (message, alarm, call.params)
}

#[tokio::test]
async fn a_question_is_answered_with_typing_and_formatting() {
    let tg = FakeTelegram::start().await;
    let kobold = FakeKobold::start().await;
    let gw = gateway(
        &tg,
        Setup {
            kobold: Some(&kobold),
            ..Setup::default()
        },
    )
    .await;
    connected(&tg, &gw).await;
    // The command menu in English (default) and Russian.
    let menus = tg.calls_of("setMyCommands");
    assert!(menus.iter().any(|c| c.params["language_code"] == "ru"));
    assert!(
        menus
            .iter()
            .any(|c| c.params["commands"][0]["command"] == "status")
    );

    kobold.push(Step::Text("Room 101 is **21 °C** <ok>.".into()));
    tg.inject_text(IVAN, "How warm is 101?");
    assert_eventually!(!tg.texts_to(IVAN).is_empty(), "no answer:\n{}", gw.log());
    let answer = &tg.messages_to(IVAN)[0];
    assert_eq!(answer.params["parse_mode"], "HTML");
    assert_eq!(answer.text(), Some("Room 101 is <b>21 °C</b> &lt;ok&gt;."));
    let typing = tg
        .calls_of("sendChatAction")
        .into_iter()
        .find(|c| c.chat() == Some(IVAN) && c.params["action"] == "typing")
        .expect("typing… was shown");
    assert!(typing.at <= answer.at, "typing came after the answer");
    // The question reached the model with the person's conversation.
    let asked = kobold.requests();
    let last = asked.last().expect("a chat request");
    assert!(last.to_string().contains("How warm is 101?"));
    assert_eq!(metric(&gw, "markoff_telegram_connected").await, 1.0);

    // A slash command never needs the model.
    let before = kobold.chat_count();
    tg.inject_text(IVAN, "/help");
    assert_eventually!(tg.texts_to(IVAN).len() >= 2, "no help:\n{}", gw.log());
    assert!(tg.texts_to(IVAN)[1].contains("/plan"));
    assert_eq!(kobold.chat_count(), before);
}

#[tokio::test]
async fn a_command_is_answered_while_the_chat_s_question_hangs() {
    let tg = FakeTelegram::start().await;
    let kobold = FakeKobold::start().await;
    let gw = gateway(
        &tg,
        Setup {
            kobold: Some(&kobold),
            ..Setup::default()
        },
    )
    .await;
    connected(&tg, &gw).await;
    kobold.push(Step::Hang(Duration::from_secs(30)));
    tg.inject_text(IVAN, "any leaks in the basement?");
    assert_eventually!(
        kobold.chat_count() >= 1,
        "the question never reached the LLM:\n{}",
        gw.log()
    );
    let asked = tokio::time::Instant::now();
    tg.inject_text(IVAN, "/status");
    assert_eventually!(
        !tg.messages_to(IVAN).is_empty(),
        "no answer to /status:\n{}",
        gw.log()
    );
    let first = &tg.messages_to(IVAN)[0];
    let took = first.at.duration_since(asked);
    assert!(
        took < markoff_tests::eventually::scaled(Duration::from_secs(1)),
        "/status waited {took:?} behind the question"
    );
    // It is the status, not the question's answer (which is still on its way).
    assert!(
        first.text().is_some_and(|t| !t.contains("local data")),
        "{}",
        shown(&tg, IVAN)
    );
    assert_eq!(kobold.chat_count(), 1, "the command went to the LLM");
    // The question is still answered, after the command.
    assert_eventually!(
        tg.texts_to(IVAN).len() >= 2,
        "the question was never answered:\n{}",
        gw.log()
    );
}

#[tokio::test]
async fn a_slow_llm_gets_the_local_answer_first_and_its_own_after() {
    let tg = FakeTelegram::start().await;
    let kobold = FakeKobold::start().await;
    let gw = gateway(
        &tg,
        Setup {
            kobold: Some(&kobold),
            agent: "patience = \"1s\"",
            ..Setup::default()
        },
    )
    .await;
    connected(&tg, &gw).await;
    // The model takes 4 s (within request_timeout): past the patience.
    kobold.push(Step::Hang(Duration::from_secs(4)));
    let asked = tokio::time::Instant::now();
    tg.inject_text(IVAN, "any alarms?");
    assert_eventually!(!tg.messages_to(IVAN).is_empty(), "no answer:\n{}", gw.log());
    let first = tg.messages_to(IVAN)[0].clone();
    let took = first.at.duration_since(asked);
    assert!(
        took < markoff_tests::eventually::scaled(Duration::from_millis(3500)),
        "the local answer took {took:?}"
    );
    assert!(
        first.text().is_some_and(|t| t.contains("still thinking")),
        "{}",
        shown(&tg, IVAN)
    );
    // The LLM's answer follows, as its own message.
    assert_eventually!(
        tg.texts_to(IVAN).len() >= 2,
        "the LLM's answer never followed:\n{}",
        gw.log()
    );
    assert_eq!(tg.texts_to(IVAN)[1], "ok", "{}", shown(&tg, IVAN));
    assert_eq!(
        metric(&gw, "markoff_agent_fallbacks_total{reason=\"patience\"}").await,
        1.0
    );
}

#[tokio::test]
async fn a_stranger_gets_nothing_at_all() {
    let tg = FakeTelegram::start().await;
    let gw = gateway(&tg, Setup::default()).await;
    connected(&tg, &gw).await;
    tg.inject_text(STRANGER, "/status");
    tg.inject_voice(STRANGER, b"OggS-not-really".to_vec(), 1);
    // A listed person writing in a group that is not allowed is a stranger there too.
    tg.inject_text_in(-100_555, IVAN, "/status");
    let button = tg.inject_callback(STRANGER, 1, STRANGER, "ack:1");
    // Then Ivan: once he is answered, everything before him was decided.
    tg.inject_text(IVAN, "/help");
    assert_eventually!(
        !tg.texts_to(IVAN).is_empty(),
        "Ivan got no answer:\n{}",
        gw.log()
    );
    let to_strangers: Vec<Call> = tg
        .sent()
        .into_iter()
        .filter(|c| c.chat() != Some(IVAN))
        .collect();
    assert!(
        to_strangers.is_empty(),
        "the bot contacted strangers: {:?}",
        to_strangers
            .iter()
            .map(|c| (&c.method, &c.params))
            .collect::<Vec<_>>()
    );
    assert!(
        tg.calls_of("answerCallbackQuery")
            .iter()
            .all(|c| c.params["callback_query_id"] != button.as_str())
    );
    assert!(tg.calls_of("getFile").is_empty());
    assert_eq!(metric(&gw, "markoff_telegram_strangers_total").await, 4.0);
    assert!(gw.log().contains("ignored a stranger"), "{}", gw.log());
}

#[tokio::test]
async fn an_operator_acks_an_alarm_with_its_button_and_the_message_is_edited() {
    let tg = FakeTelegram::start().await;
    let gw = gateway(
        &tg,
        Setup {
            more: format!("{ROOM_TOO_WARM}\n{}", users(true, false)),
            ..Setup::default()
        },
    )
    .await;
    let (message, alarm, sent) = notification(&tg, &gw, IVAN).await;
    assert!(
        sent["text"]
            .as_str()
            .is_some_and(|t| t.contains("RoomTooWarm")),
        "{sent}"
    );
    assert_eq!(
        button_data(&sent),
        [format!("ack:{alarm}"), format!("shelve:{alarm}")]
    );

    let pressed = tg.inject_callback(IVAN, message, IVAN, &format!("ack:{alarm}"));
    let conn = db::open_read_only(&gw.db_path());
    assert_eventually!(
        conn.query_row(
            "SELECT acked_by FROM alarm_state WHERE id = ?1",
            [alarm],
            |r| r.get::<_, Option<String>>(0)
        )
        .ok()
        .flatten()
        .as_deref()
            == Some("ivan"),
        "the alarm was not acknowledged:\n{}",
        gw.log()
    );
    let audit: (String, String, String) = conn
        .query_row(
            "SELECT actor, channel, outcome FROM audit_log WHERE target = ?1 AND action = 'ack'",
            [alarm.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the ack is audited");
    assert_eq!(audit, ("ivan".into(), "telegram".into(), "done".into()));
    assert_eventually!(
        tg.calls_of("answerCallbackQuery")
            .iter()
            .any(|c| c.params["callback_query_id"] == pressed.as_str()
                && c.params["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("acknowledged"))),
        "the press was not answered:\n{}",
        gw.log()
    );
    // The notification now says who acknowledged it, and its buttons are gone.
    assert_eventually!(
        tg.message(IVAN, message).is_some_and(|m| m["text"]
            .as_str()
            .is_some_and(|t| t.contains("Acknowledged by ivan"))
            && m.get("reply_markup").is_none()),
        "the notification was not edited: {:?}\n{}",
        tg.message(IVAN, message),
        gw.log()
    );
}

#[tokio::test]
async fn one_message_per_alarm_is_edited_through_its_life() {
    let tg = FakeTelegram::start().await;
    let gw = gateway(
        &tg,
        Setup {
            more: format!("{ROOM_TOO_WARM}\n{}", users(true, false)),
            ..Setup::default()
        },
    )
    .await;
    let (message, alarm, _) = notification(&tg, &gw, IVAN).await;
    // Shelved, then acknowledged: the same message each time.
    tg.inject_callback(IVAN, message, IVAN, &format!("shelve:{alarm}"));
    assert_eventually!(
        tg.message(IVAN, message).is_some_and(|m| m["text"]
            .as_str()
            .is_some_and(|t| t.contains("Shelved until"))),
        "the notification was not edited to shelved: {:?}\n{}",
        tg.message(IVAN, message),
        gw.log()
    );
    tg.inject_callback(IVAN, message, IVAN, &format!("ack:{alarm}"));
    assert_eventually!(
        tg.message(IVAN, message).is_some_and(|m| m["text"]
            .as_str()
            .is_some_and(|t| t.contains("Acknowledged by ivan"))),
        "the notification was not edited to acknowledged: {:?}\n{}",
        tg.message(IVAN, message),
        gw.log()
    );
    // The outbox had more to tell about this alarm, and told it by editing.
    let conn = db::open_read_only(&gw.db_path());
    let pending = || -> (i64, i64) {
        conn.query_row(
            "SELECT count(*) FILTER (WHERE kind <> 'raised'), count(*) FILTER (WHERE sent_ms IS NULL) \
             FROM outbox WHERE channel = 'telegram' AND alarm_id = ?1",
            [alarm],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the outbox")
    };
    assert_eventually!(
        pending().0 >= 1 && pending().1 == 0,
        "the later notifications were not delivered: {:?}\n{}",
        pending(),
        gw.log()
    );
    let sent: Vec<String> = tg
        .messages_to(IVAN)
        .iter()
        .filter_map(|c| c.text().map(str::to_owned))
        .collect();
    assert_eq!(sent.len(), 1, "one message per alarm, got: {sent:?}");
    let edits = tg
        .calls_of("editMessageText")
        .into_iter()
        .filter(|c| c.chat() == Some(IVAN) && c.params["message_id"] == message)
        .count();
    assert!(edits >= 2, "{edits} edits");
}

#[tokio::test]
async fn a_viewer_pressing_ack_is_refused_and_audited() {
    let tg = FakeTelegram::start().await;
    let gw = gateway(
        &tg,
        Setup {
            more: format!("{ROOM_TOO_WARM}\n{}", users(false, true)),
            ..Setup::default()
        },
    )
    .await;
    let (message, alarm, sent) = notification(&tg, &gw, OLGA).await;
    // Olga reads Russian: so do her buttons.
    let labels = sent["reply_markup"]["inline_keyboard"][0][0]["text"].clone();
    assert_eq!(labels, "✅ Квитировать");

    let pressed = tg.inject_callback(OLGA, message, OLGA, &format!("ack:{alarm}"));
    assert_eventually!(
        tg.calls_of("answerCallbackQuery")
            .iter()
            .any(|c| c.params["callback_query_id"] == pressed.as_str()),
        "the press was not answered:\n{}",
        gw.log()
    );
    let answer = tg
        .calls_of("answerCallbackQuery")
        .into_iter()
        .find(|c| c.params["callback_query_id"] == pressed.as_str())
        .expect("answered");
    assert_eq!(answer.params["show_alert"], true);
    assert!(
        answer.params["text"]
            .as_str()
            .is_some_and(|t| t.contains("оператор")),
        "{}",
        answer.params
    );
    let conn = db::open_read_only(&gw.db_path());
    let (state, refused): (String, i64) = conn
        .query_row(
            "SELECT s.state, (SELECT count(*) FROM audit_log a WHERE a.target = ?2 AND a.actor = 'olga' \
             AND a.channel = 'telegram' AND a.outcome = 'refused') FROM alarm_state s WHERE s.id = ?1",
            rusqlite::params![alarm, alarm.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the alarm and its audit");
    assert_eq!(state, "active_unacked");
    assert_eq!(refused, 1);
    // Her notification keeps its buttons.
    assert!(
        tg.message(OLGA, message)
            .is_some_and(|m| m.get("reply_markup").is_some())
    );
}

/// An OGG/Opus voice note made with `opusenc` (Debian `opus-tools`, installed by
/// `tests/run.sh`) from a tone.
fn voice_note() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (wav, ogg) = (dir.path().join("note.wav"), dir.path().join("note.ogg"));
    std::fs::write(&wav, markoff_tests::kobold::wav_tone(48_000, 1.0)).expect("write the WAV");
    let status = std::process::Command::new("opusenc")
        .args(["--quiet"])
        .arg(&wav)
        .arg(&ogg)
        .status()
        .expect("opusenc runs (install the Debian package opus-tools; tests/run.sh does)");
    assert!(status.success(), "opusenc failed");
    std::fs::read(&ogg).expect("read the OGG")
}

fn is_ogg_opus(bytes: &[u8]) -> bool {
    bytes.starts_with(b"OggS") && bytes.windows(8).any(|w| w == b"OpusHead")
}

#[tokio::test]
async fn a_voice_note_gets_its_transcript_an_answer_and_a_voice_answer() {
    let tg = FakeTelegram::start().await;
    let kobold = FakeKobold::start().await;
    let gw = gateway(
        &tg,
        Setup {
            kobold: Some(&kobold),
            ..Setup::default()
        },
    )
    .await;
    connected(&tg, &gw).await;
    kobold.set_transcript("what is the temperature in 101");
    kobold.push(Step::Text("It is 21 °C in room 101.".into()));
    tg.inject_voice(IVAN, voice_note(), 1);
    assert_eventually!(
        !tg.calls_of("sendVoice").is_empty(),
        "no voice answer: {}\n{}",
        shown(&tg, IVAN),
        gw.log()
    );
    let texts = tg.texts_to(IVAN);
    assert_eq!(texts[0], "🎤 what is the temperature in 101", "{texts:?}");
    assert_eq!(texts[1], "It is 21 °C in room 101.", "{texts:?}");
    let voice = &tg.calls_of("sendVoice")[0];
    assert_eq!(voice.chat(), Some(IVAN));
    assert!(
        is_ogg_opus(&voice.files["voice"]),
        "the voice answer is not OGG/Opus"
    );
    // Koboldcpp got a 16 kHz mono WAV, and spoke the answer.
    let heard = kobold.transcribe_requests();
    assert_eq!(heard.len(), 1);
    let wav = &heard[0];
    assert!(wav.starts_with(b"RIFF") && &wav[8..12] == b"WAVE");
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 1, "mono");
    assert_eq!(
        u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]),
        16_000
    );
    assert_eq!(kobold.tts_requests(), ["It is 21 °C in room 101."]);
    assert!(tg.calls_of("download").len() == 1);
    assert!(
        metric(
            &gw,
            "markoff_telegram_voice_notes_total{outcome=\"answered\"}"
        )
        .await
            >= 1.0
    );
}

#[tokio::test]
async fn voice_without_speech_models_falls_back_to_text() {
    let tg = FakeTelegram::start().await;
    // Speech-to-text but no text-to-speech: the answer comes as text with a note.
    let kobold = FakeKobold::start_with(FakeOptions {
        tts: false,
        ..FakeOptions::default()
    })
    .await;
    let gw = gateway(
        &tg,
        Setup {
            kobold: Some(&kobold),
            ..Setup::default()
        },
    )
    .await;
    connected(&tg, &gw).await;
    kobold.push(Step::Text("All quiet.".into()));
    tg.inject_voice(IVAN, voice_note(), 1);
    assert_eventually!(
        tg.texts_to(IVAN).len() >= 3,
        "no text answer: {}\n{}",
        shown(&tg, IVAN),
        gw.log()
    );
    let texts = tg.texts_to(IVAN);
    assert_eq!(texts[1], "All quiet.");
    assert!(texts[2].contains("No spoken answer"), "{texts:?}");
    assert!(tg.calls_of("sendVoice").is_empty());

    // A transcript that comes back empty (Koboldcpp's way of failing): asked to type, in both
    // languages.
    kobold.set_transcript("");
    tg.inject_voice(IVAN, voice_note(), 1);
    assert_eventually!(
        tg.texts_to(IVAN).len() >= 4,
        "no explanation: {}\n{}",
        shown(&tg, IVAN),
        gw.log()
    );
    let last = tg.texts_to(IVAN).pop().unwrap_or_default();
    assert!(
        last.contains("type your question") && last.contains("напишите"),
        "{last}"
    );
}

#[tokio::test]
async fn voice_without_a_speech_server_asks_to_type() {
    let tg = FakeTelegram::start().await;
    let kobold = FakeKobold::start_with(FakeOptions {
        transcribe: false,
        tts: false,
        ..FakeOptions::default()
    })
    .await;
    let gw = gateway(
        &tg,
        Setup {
            kobold: Some(&kobold),
            ..Setup::default()
        },
    )
    .await;
    connected(&tg, &gw).await;
    tg.inject_voice(IVAN, voice_note(), 1);
    assert_eventually!(
        !tg.texts_to(IVAN).is_empty(),
        "no explanation:\n{}",
        gw.log()
    );
    let text = &tg.texts_to(IVAN)[0];
    assert!(
        text.contains("cannot transcribe") && text.contains("напишите"),
        "{text}"
    );
    assert!(
        kobold.transcribe_requests().is_empty(),
        "no speech model: nothing to send"
    );
    assert!(tg.calls_of("getFile").is_empty(), "nothing to download for");
}

#[tokio::test]
async fn telegram_unreachable_at_boot_then_the_bot_connects_and_delivers() {
    let tg = FakeTelegram::start_stopped().await;
    let gw = gateway(
        &tg,
        Setup {
            more: format!("{ROOM_TOO_WARM}\n{}", users(true, false)),
            ..Setup::default()
        },
    )
    .await;
    // The gateway runs without Telegram; the alarm is raised and its notification waits.
    assert_eventually!(
        gw.log().contains("Telegram is not reachable yet"),
        "no word about Telegram:\n{}",
        gw.log()
    );
    assert_eventually!(
        metric(&gw, "markoff_alarms_outbox_pending").await >= 1.0,
        "no notification waiting:\n{}",
        gw.log()
    );
    assert_eq!(metric(&gw, "markoff_telegram_connected").await, 0.0);
    tg.restart().await;
    connected(&tg, &gw).await;
    notification(&tg, &gw, IVAN).await;
    tg.inject_text(IVAN, "/status");
    assert_eventually!(
        tg.texts_to(IVAN).len() >= 2,
        "no answer after connecting: {}\n{}",
        shown(&tg, IVAN),
        gw.log()
    );
    assert!(gw.log().contains("Telegram bot connected"));
}

#[tokio::test]
async fn a_long_answer_is_split_and_a_429_is_waited_out() {
    let tg = FakeTelegram::start().await;
    let kobold = FakeKobold::start().await;
    let gw = gateway(
        &tg,
        Setup {
            kobold: Some(&kobold),
            ..Setup::default()
        },
    )
    .await;
    connected(&tg, &gw).await;
    let lines: Vec<String> = (0..120)
        .map(|i| {
            format!(
                "line {i:04}: {}",
                "все датчики в норме ".repeat(4).trim_end()
            )
        })
        .collect();
    kobold.push(Step::Text(lines.join("\n")));
    tg.fail_next("sendMessage", Fault::TooManyRequests(1));
    tg.inject_text(IVAN, "tell me everything");
    assert_eventually!(
        tg.texts_to(IVAN).concat().contains("line 0119"),
        "the answer did not arrive whole: {} messages\n{}",
        tg.texts_to(IVAN).len(),
        gw.log()
    );
    let pieces = tg.texts_to(IVAN);
    assert!(pieces.len() >= 3, "{} pieces", pieces.len());
    for p in &pieces {
        assert!(
            p.encode_utf16().count() <= 4096,
            "a piece of {} units",
            p.encode_utf16().count()
        );
    }
    // Every line arrived once, whole and in order.
    let all = pieces.join("\n");
    let mut at = 0;
    for l in &lines {
        let found = all[at..]
            .find(l.as_str())
            .unwrap_or_else(|| panic!("{l:?} missing or out of order"));
        at += found + l.len();
    }
    // The refused first attempt and its retry.
    let first = &tg.calls_of("sendMessage")[0];
    let second = &tg.calls_of("sendMessage")[1];
    assert_eq!(first.text(), second.text());
    assert!(second.at.duration_since(first.at) >= Duration::from_millis(900));
}

#[tokio::test]
async fn rejected_markup_is_sent_again_as_plain_text() {
    let tg = FakeTelegram::start().await;
    let kobold = FakeKobold::start().await;
    let gw = gateway(
        &tg,
        Setup {
            kobold: Some(&kobold),
            ..Setup::default()
        },
    )
    .await;
    connected(&tg, &gw).await;
    tg.reject_markup(true);
    kobold.push(Step::Text("The **boiler** is at `80 °C`.".into()));
    tg.inject_text(IVAN, "boiler?");
    assert_eventually!(
        tg.messages_to(IVAN).len() >= 2,
        "no plain resend:\n{}",
        gw.log()
    );
    let calls = tg.messages_to(IVAN);
    assert_eq!(calls[0].params["parse_mode"], "HTML");
    assert!(calls[1].params["parse_mode"].is_null());
    assert_eq!(calls[1].text(), Some("The **boiler** is at `80 °C`."));
    assert_eq!(
        metric(&gw, "markoff_telegram_markup_fallbacks_total").await,
        1.0
    );
}

#[tokio::test]
async fn plans_and_charts_are_sent_as_photos() {
    let tg = FakeTelegram::start().await;
    let gw = gateway(&tg, Setup::default()).await;
    connected(&tg, &gw).await;
    // Readings first, so the chart has data.
    assert_eventually!(
        gw.get_json("/api/v1/readings")
            .await
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "no readings:\n{}",
        gw.log()
    );
    tg.inject_text(IVAN, "/plan 1");
    tg.inject_text(IVAN, "/history f1.r101.temperature 1h");
    assert_eventually!(
        tg.calls_of("sendPhoto").len() >= 2,
        "no photos: {}\n{}",
        shown(&tg, IVAN),
        gw.log()
    );
    for p in tg.calls_of("sendPhoto") {
        assert_eq!(p.chat(), Some(IVAN));
        assert!(p.files["photo"].starts_with(b"\x89PNG"), "not a PNG");
        assert!(
            p.params["caption"]
                .as_str()
                .is_some_and(|c| !c.is_empty() && c.chars().count() <= 1024)
        );
    }
}

#[tokio::test]
async fn an_acknowledgement_proposed_by_the_assistant_is_confirmed_with_a_button() {
    let tg = FakeTelegram::start().await;
    let kobold = FakeKobold::start().await;
    let gw = gateway(
        &tg,
        Setup {
            kobold: Some(&kobold),
            more: format!("{ROOM_TOO_WARM}\n{}", users(false, false)),
            ..Setup::default()
        },
    )
    .await;
    connected(&tg, &gw).await;
    assert_eventually!(
        open_alarm_id(&gw, "RoomTooWarm").await.is_some(),
        "alarm never raised:\n{}",
        gw.log()
    );
    let alarm = open_alarm_id(&gw, "RoomTooWarm").await.expect("alarm id");
    kobold.push_all([
        Step::ToolCall {
            name: "acknowledge_alarm".into(),
            args: json!({"alarm_id": alarm}),
        },
        Step::Text("Please confirm.".into()),
    ]);
    tg.inject_text(IVAN, "acknowledge the alarm");
    let find = || {
        tg.messages_to(IVAN)
            .into_iter()
            .find(|c| c.button_data().iter().any(|d| d.starts_with("confirm:")))
    };
    assert_eventually!(
        find().is_some(),
        "no confirm button: {}\n{}",
        shown(&tg, IVAN),
        gw.log()
    );
    let data = find().expect("found").button_data()[0].clone();
    let prompt = tg
        .bot_messages(IVAN)
        .into_iter()
        .find(|m| button_data(m) == [data.clone()])
        .and_then(|m| m["message_id"].as_i64())
        .expect("the prompt message");
    tg.inject_callback(IVAN, prompt, IVAN, &data);
    let conn = db::open_read_only(&gw.db_path());
    assert_eventually!(
        conn.query_row(
            "SELECT state FROM alarm_state WHERE id = ?1",
            [alarm],
            |r| r.get::<_, String>(0)
        )
        .is_ok_and(|s| s == "active_acked"),
        "not acknowledged:\n{}",
        gw.log()
    );
    // The prompt loses its button.
    assert_eventually!(
        tg.message(IVAN, prompt)
            .is_some_and(|m| m.get("reply_markup").is_none()),
        "the prompt kept its button:\n{}",
        gw.log()
    );
}

#[tokio::test]
async fn a_reload_with_a_new_telegram_section_moves_the_bot() {
    let old = FakeTelegram::start().await;
    let new = FakeTelegram::start().await;
    let gw = gateway(&old, Setup::default()).await;
    connected(&old, &gw).await;
    let config = std::fs::read_to_string(gw.config_path()).expect("read the config");
    gw.write_config(&config.replace(&old.url(), &new.url()));
    gw.sighup();
    connected(&new, &gw).await;
    new.inject_text(IVAN, "/help");
    assert_eventually!(
        !new.texts_to(IVAN).is_empty(),
        "the bot did not answer through its new API:\n{}",
        gw.log()
    );
    // The old server no longer hears from it: the old bot stopped before the new one started.
    let polls = old.calls_of("getUpdates").len();
    old.inject_text(IVAN, "/help");
    assert_always!(
        old.texts_to(IVAN).is_empty() && old.calls_of("getUpdates").len() == polls,
        window = Duration::from_secs(2),
        "the old bot is still polling:\n{}",
        gw.log()
    );
}

#[tokio::test]
async fn odd_input_is_counted_and_the_bot_goes_on() {
    let tg = FakeTelegram::start().await;
    let gw = gateway(&tg, Setup::default()).await;
    connected(&tg, &gw).await;
    // An update of a kind the bot does not know, a button it never made, a sticker and a huge
    // message.
    tg.inject_raw(json!({"future_kind": {"id": 1}}));
    let forged = tg.inject_callback(IVAN, 1, IVAN, "nuke:everything");
    tg.inject_raw(
        json!({"message": {"message_id": 9000, "date": 1, "chat": {"id": IVAN,
        "type": "private", "first_name": "Ivan"}, "from": {"id": IVAN, "is_bot": false,
        "first_name": "Ivan"}, "sticker": {"file_id": "S", "file_unique_id": "S", "type": "regular",
        "width": 1, "height": 1, "is_animated": false, "is_video": false}}}),
    );
    tg.inject_text(IVAN, &format!("/sensor {}", "x".repeat(20_000)));
    tg.inject_text(IVAN, "/help");
    assert_eventually!(
        tg.texts_to(IVAN).iter().any(|t| t.contains("/plan")),
        "no help after odd input: {}\n{}",
        shown(&tg, IVAN),
        gw.log()
    );
    // Buttons and commands are handled side by side: the press may be answered after /help.
    let forged_answer = || {
        tg.calls_of("answerCallbackQuery")
            .into_iter()
            .find(|c| c.params["callback_query_id"] == forged.as_str())
    };
    assert_eventually!(
        forged_answer().is_some(),
        "the forged button was not answered:\n{}",
        gw.log()
    );
    let answer = forged_answer().expect("answered, above");
    assert!(
        answer.params["text"]
            .as_str()
            .is_some_and(|t| t.contains("no longer valid"))
    );
    let metrics = gw.metrics_text().await;
    assert_eq!(
        metric_in(
            &metrics,
            "markoff_telegram_bad_input_total{reason=\"update\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric_in(
            &metrics,
            "markoff_telegram_bad_input_total{reason=\"button\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_in(
            &metrics,
            "markoff_telegram_bad_input_total{reason=\"too_long\"}"
        ),
        Some(1.0)
    );
    assert!(gw.log().contains("Telegram") && !gw.log().contains("panicked"));
}

#[tokio::test]
async fn voice_without_opus_tools_says_why_and_the_bot_goes_on() {
    let tg = FakeTelegram::start().await;
    let kobold = FakeKobold::start().await;
    let toml = format!(
        "[telegram]\nenabled = true\ntoken_env = \"MARKOFF_TEST_TELEGRAM_TOKEN\"\napi_url = \"{}\"\n\
         poll_timeout = \"2s\"\nretry_max = \"1s\"\n\n[agent.llm]\nurl = \"{}\"\n{}",
        tg.url(),
        kobold.url(),
        users(false, false)
    );
    // No opusdec/opusenc on the daemon's PATH.
    let empty = tempfile::tempdir().expect("temp dir");
    let gw = TempGateway::builder()
        .extra_toml(&toml)
        .env("MARKOFF_TEST_TELEGRAM_TOKEN", tg.token())
        .env("PATH", &empty.path().display().to_string())
        .start()
        .await;
    connected(&tg, &gw).await;
    tg.inject_voice(IVAN, voice_note(), 1);
    tg.inject_text(IVAN, "/help");
    assert_eventually!(
        tg.texts_to(IVAN).len() >= 2,
        "no answers: {}\n{}",
        shown(&tg, IVAN),
        gw.log()
    );
    // The command does not wait behind the voice note: either may come first.
    let texts = tg.texts_to(IVAN);
    assert!(texts.iter().any(|t| t.contains("opus-tools")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("/plan")), "{texts:?}");
    assert!(
        gw.log().contains("opusdec is not installed"),
        "{}",
        gw.log()
    );
}
