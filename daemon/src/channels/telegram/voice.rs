//! Voice notes: the OGG/Opus note is downloaded, decoded to 16 kHz mono WAV (Koboldcpp does
//! not read OGG/Opus), transcribed by the LLM server (`/api/extra/transcribe`), shown ("🎤 …"),
//! answered by the assistant like a typed question, spoken by the LLM server
//! (`/api/extra/tts`, WAV) and sent back as an OGG/Opus voice note after the text answer.
//!
//! The codec is Debian's `opus-tools` (`opusdec`, `opusenc`), run as child processes with a
//! timeout on files in a private temporary directory: there is no maintained pure-Rust Opus
//! encoder, and linking libopus would make arm64 cross builds need an arm64 libopus. The
//! Debian package declares the dependency; without the programs voice notes get a clear
//! answer and everything else works.
//!
//! Koboldcpp reports speech failures as HTTP 200 with an empty result; the LLM client turns
//! those into errors, and a server without speech models says so in its capabilities. Either
//! way the person is told, in both languages, to type (or gets the text answer without audio).
//!
//! Owns: the voice pipeline and the codec calls. Does not own: the HTTP calls to the LLM
//! server (see `crate::agent::llm`).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use teloxide_core::types::{ChatAction, ChatId, Voice};
use tokio::process::Command;
use tracing::{debug, warn};

use super::api::DOWNLOAD_MAX;
use super::conversation::{self, Ctx, with_action};
use super::text::{self, VoiceTrouble};
use crate::agent::Question;
use crate::agent::llm::LlmError;
use crate::model::{Actor, Lang};

/// Time for one `opusdec` or `opusenc` run.
const CODEC_TIMEOUT: Duration = Duration::from_secs(30);
/// Sample rate of the WAV sent for transcription (what Whisper uses).
const STT_RATE: u32 = 16_000;
/// Longest text spoken (Koboldcpp caps the audio length; the full answer is in the text).
const SPEAK_MAX_CHARS: usize = 600;
/// Longest vocabulary prompt sent with a transcription.
const PROMPT_MAX_CHARS: usize = 300;

/// Why audio could not be converted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    /// The program is not installed.
    #[error("{program} is not installed (Debian package opus-tools)")]
    Missing {
        /// `opusdec` or `opusenc`.
        program: &'static str,
    },
    /// The program failed.
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        /// Which.
        program: &'static str,
        /// Its exit status.
        status: String,
        /// The start of what it printed.
        stderr: String,
    },
    /// The program took too long (and was killed).
    #[error("{program} did not finish within {after:?}")]
    Timeout {
        /// Which.
        program: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The temporary directory could not be used.
    #[error("cannot use a temporary directory")]
    Io(#[from] std::io::Error),
    /// The input is not what the codec takes.
    #[error("{0}")]
    BadInput(String),
}

/// Runs `program args` with a timeout; killed when it takes too long.
async fn run_tool(program: &'static str, args: &[&std::ffi::OsStr]) -> Result<(), CodecError> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CodecError::Missing { program }
            } else {
                CodecError::Io(e)
            }
        })?;
    let out = tokio::time::timeout(CODEC_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| CodecError::Timeout {
            program,
            after: CODEC_TIMEOUT,
        })??;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(CodecError::Failed {
        program,
        status: out.status.to_string(),
        stderr: stderr.trim().chars().take(300).collect(),
    })
}

fn private_dir() -> Result<tempfile::TempDir, CodecError> {
    // Created with mode 0700; removed when dropped.
    Ok(tempfile::Builder::new()
        .prefix("markoff-voice-")
        .tempdir()?)
}

/// Decodes an OGG/Opus voice note to a 16 kHz mono 16-bit WAV.
///
/// # Errors
/// See [`CodecError`].
pub(crate) async fn ogg_to_wav(ogg: &[u8]) -> Result<Vec<u8>, CodecError> {
    if !ogg.starts_with(b"OggS") {
        return Err(CodecError::BadInput(
            "the voice note is not an OGG file".into(),
        ));
    }
    let dir = private_dir()?;
    let (input, output) = (dir.path().join("in.ogg"), dir.path().join("out.wav"));
    tokio::fs::write(&input, ogg).await?;
    let rate = STT_RATE.to_string();
    run_tool(
        "opusdec",
        &[
            "--quiet".as_ref(),
            "--rate".as_ref(),
            rate.as_ref(),
            input.as_os_str(),
            output.as_os_str(),
        ],
    )
    .await?;
    let wav = read(&output).await?;
    to_mono(&wav).map_err(CodecError::BadInput)
}

/// Encodes a WAV file as an OGG/Opus voice note (speech-tuned, 24 kbit/s mono).
///
/// # Errors
/// See [`CodecError`].
pub(crate) async fn wav_to_ogg(wav: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mono = to_mono(wav).map_err(CodecError::BadInput)?;
    let dir = private_dir()?;
    let (input, output) = (dir.path().join("in.wav"), dir.path().join("out.ogg"));
    tokio::fs::write(&input, &mono).await?;
    run_tool(
        "opusenc",
        &[
            "--quiet".as_ref(),
            "--speech".as_ref(),
            "--bitrate".as_ref(),
            "24".as_ref(),
            input.as_os_str(),
            output.as_os_str(),
        ],
    )
    .await?;
    let ogg = read(&output).await?;
    if !ogg.starts_with(b"OggS") {
        return Err(CodecError::BadInput("opusenc wrote no OGG file".into()));
    }
    Ok(ogg)
}

async fn read(path: &Path) -> Result<Vec<u8>, CodecError> {
    Ok(tokio::fs::read(path).await?)
}

/// The PCM format of a WAV file and where its samples are.
#[derive(Debug, PartialEq, Eq)]
struct WavInfo {
    channels: u16,
    rate: u32,
    bits: u16,
    data: std::ops::Range<usize>,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads the chunks of a RIFF/WAVE file: its `fmt ` (integer PCM only) and `data`. A data
/// size past the end (streamed WAVs say 0x7ffff000) means "to the end".
fn wav_info(b: &[u8]) -> Result<WavInfo, String> {
    if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut at: usize = 12;
    let mut fmt = None;
    while at.saturating_add(8) <= b.len() {
        let id = &b[at..at + 4];
        let size = usize::try_from(le32(b, at + 4).unwrap_or(0)).unwrap_or(usize::MAX);
        let body = at + 8;
        if id == b"fmt " {
            let format = le16(b, body).ok_or("short fmt chunk")?;
            let channels = le16(b, body + 2).ok_or("short fmt chunk")?;
            let rate = le32(b, body + 4).ok_or("short fmt chunk")?;
            let bits = le16(b, body + 14).ok_or("short fmt chunk")?;
            // 1 = PCM; 0xFFFE = extensible (PCM in practice from these tools).
            if format != 1 && format != 0xFFFE {
                return Err(format!("WAV format {format} is not integer PCM"));
            }
            fmt = Some((channels, rate, bits));
        } else if id == b"data" {
            let (channels, rate, bits) = fmt.ok_or("data before fmt")?;
            let end = body.saturating_add(size).min(b.len());
            return Ok(WavInfo {
                channels,
                rate,
                bits,
                data: body..end,
            });
        }
        at = body.saturating_add(size).saturating_add(size % 2);
    }
    Err("no data chunk".into())
}

/// A canonical 16-bit PCM WAV file.
fn wav_file(channels: u16, rate: u32, samples: &[u8]) -> Vec<u8> {
    let len = u32::try_from(samples.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(44 + samples.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&len.saturating_add(36).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&rate.saturating_mul(2 * u32::from(channels)).to_le_bytes());
    out.extend_from_slice(&channels.saturating_mul(2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(samples);
    out
}

/// The same audio as a mono 16-bit WAV with a correct header: channels are averaged.
///
/// # Errors
/// Not a WAV file, or not 16-bit integer PCM.
pub(crate) fn to_mono(wav: &[u8]) -> Result<Vec<u8>, String> {
    let info = wav_info(wav)?;
    if info.bits != 16 {
        return Err(format!("{}-bit WAV; 16-bit expected", info.bits));
    }
    if info.channels == 0 {
        return Err("WAV with no channels".into());
    }
    let data = &wav[info.data];
    let channels = usize::from(info.channels);
    let frame = 2 * channels;
    let mut mono = Vec::with_capacity(data.len() / channels);
    for f in data.chunks_exact(frame) {
        let sum: i32 = f
            .chunks_exact(2)
            .map(|s| i32::from(i16::from_le_bytes([s[0], s[1]])))
            .sum();
        let avg = sum / i32::from(info.channels);
        let sample = i16::try_from(avg).unwrap_or(if avg < 0 { i16::MIN } else { i16::MAX });
        mono.extend_from_slice(&sample.to_le_bytes());
    }
    Ok(wav_file(1, info.rate, &mono))
}

/// The part of an answer worth speaking: without Markdown marks, at most
/// [`SPEAK_MAX_CHARS`], cut after a sentence where possible.
pub(crate) fn speakable(answer: &str) -> String {
    let clean: String = answer.replace("**", "").replace('`', "");
    let clean = clean.trim();
    if clean.chars().count() <= SPEAK_MAX_CHARS {
        return clean.to_owned();
    }
    let head: String = clean.chars().take(SPEAK_MAX_CHARS).collect();
    match head.rfind(['.', '!', '?', '\n']) {
        Some(i) if i > SPEAK_MAX_CHARS / 3 => head[..=i].trim().to_owned(),
        _ => format!("{}…", head.trim_end()),
    }
}

/// Words that help the speech model with this building: its name, floors and rooms.
fn vocabulary(cfg: &crate::config::Config) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    if let Some(n) = cfg.site.name.as_ref().or(cfg.gateway.name.as_ref()) {
        words.push(n.clone());
    }
    for f in &cfg.site.floor {
        words.extend(f.name.clone());
    }
    for r in &cfg.site.room {
        words.push(r.name.clone().unwrap_or_else(|| r.id.clone()));
    }
    let mut prompt = String::new();
    for w in words {
        if prompt.chars().count() + w.chars().count() + 2 > PROMPT_MAX_CHARS {
            break;
        }
        if !prompt.is_empty() {
            prompt.push_str(", ");
        }
        prompt.push_str(&w);
    }
    (!prompt.is_empty()).then_some(prompt)
}

async fn tell(ctx: &Ctx, chat: ChatId, trouble: VoiceTrouble) {
    ctx.api.metrics.count_voice(match trouble {
        VoiceTrouble::Off => "off",
        VoiceTrouble::NoSpeech => "no_speech",
        VoiceTrouble::NotUnderstood => "not_understood",
        VoiceTrouble::Codec => "codec",
        VoiceTrouble::TooLong(_) => "too_long",
        VoiceTrouble::Download => "download",
    });
    if let Err(e) = ctx
        .api
        .send_plain(chat, &text::voice_unavailable(trouble), None)
        .await
    {
        warn!(chat = chat.0, error = %e, "Telegram: cannot answer a voice note.");
    }
}

/// Answers a voice note (see the module docs).
pub(crate) async fn on_voice(
    ctx: &Ctx,
    chat: ChatId,
    voice: Voice,
    actor: Actor,
    lang: Lang,
    known: bool,
) {
    let cfg = ctx.core.config();
    if !cfg.telegram.voice {
        return tell(ctx, chat, VoiceTrouble::Off).await;
    }
    let max = cfg.telegram.max_voice_duration;
    if voice.duration.duration() > max {
        return tell(ctx, chat, VoiceTrouble::TooLong(max.as_secs())).await;
    }
    let Some(llm) = ctx.agent.llm() else {
        return tell(ctx, chat, VoiceTrouble::NoSpeech).await;
    };
    let caps = match llm.capabilities() {
        Some(c) => Some(c),
        None => llm.probe().await.ok(),
    };
    let Some(caps) = caps.filter(|c| c.transcribe) else {
        return tell(ctx, chat, VoiceTrouble::NoSpeech).await;
    };
    let understood = with_action(&ctx.api, chat, ChatAction::Typing, async {
        let ogg = ctx
            .api
            .download(&voice.file.id, DOWNLOAD_MAX)
            .await
            .map_err(|e| {
                warn!(chat = chat.0, error = %e, "Telegram: cannot download a voice note.");
                VoiceTrouble::Download
            })?;
        let wav = ogg_to_wav(&ogg).await.map_err(|e| {
            if matches!(e, CodecError::BadInput(_)) {
                ctx.api.metrics.count_bad_input("voice_format");
            }
            warn!(chat = chat.0, error = %e, "Telegram: cannot decode a voice note.");
            VoiceTrouble::Codec
        })?;
        llm.transcribe(&wav, None, vocabulary(&cfg).as_deref())
            .await
            .map_err(|e| {
                debug!(chat = chat.0, error = %e, "Telegram: a voice note was not transcribed.");
                match e {
                    LlmError::BadResponse(_) => VoiceTrouble::NotUnderstood,
                    _ => VoiceTrouble::NoSpeech,
                }
            })
    })
    .await;
    let transcript = match understood {
        Ok(t) => t,
        Err(trouble) => return tell(ctx, chat, trouble).await,
    };
    if let Err(e) = ctx
        .api
        .send_plain(chat, &text::transcript(&transcript), None)
        .await
    {
        warn!(chat = chat.0, error = %e, "Telegram: cannot show a transcript.");
    }
    let q = Question {
        text: transcript,
        session: conversation::session(chat),
        actor,
        lang: (!known).then_some(lang),
    };
    let reply = with_action(
        &ctx.api,
        chat,
        ChatAction::Typing,
        ctx.agent.ask(&ctx.core, q),
    )
    .await;
    conversation::send_reply(ctx, chat, &reply).await;
    if !caps.tts {
        ctx.api.metrics.count_voice("text_only");
        note_no_audio(ctx, chat, reply.lang).await;
        return;
    }
    let spoken = with_action(&ctx.api, chat, ChatAction::RecordVoice, async {
        let wav = llm
            .tts(&speakable(&reply.text), &cfg.telegram.tts_voice)
            .await
            .map_err(|e| e.to_string())?;
        wav_to_ogg(&wav).await.map_err(|e| e.to_string())
    })
    .await;
    match spoken {
        Ok(ogg) => match ctx.api.send_voice(chat, ogg).await {
            Ok(_) => ctx.api.metrics.count_voice("answered"),
            Err(e) => warn!(chat = chat.0, error = %e, "Telegram: cannot send a voice answer."),
        },
        Err(e) => {
            warn!(chat = chat.0, error = %e, "Telegram: no spoken answer; the text answer was sent.");
            ctx.api.metrics.count_voice("text_only");
            note_no_audio(ctx, chat, reply.lang).await;
        }
    }
}

async fn note_no_audio(ctx: &Ctx, chat: ChatId, lang: Lang) {
    if let Err(e) = ctx
        .api
        .send_plain(chat, &text::no_spoken_answer(lang), None)
        .await
    {
        debug!(chat = chat.0, error = %e, "Telegram: cannot send a note.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stereo(frames: &[(i16, i16)], rate: u32) -> Vec<u8> {
        let mut pcm = Vec::new();
        for (l, r) in frames {
            pcm.extend_from_slice(&l.to_le_bytes());
            pcm.extend_from_slice(&r.to_le_bytes());
        }
        wav_file(2, rate, &pcm)
    }

    #[test]
    fn stereo_is_averaged_to_mono() {
        let wav = stereo(&[(100, 300), (-32768, -32768), (32767, 1)], 16_000);
        let mono = to_mono(&wav).unwrap();
        let info = wav_info(&mono).unwrap();
        assert_eq!((info.channels, info.rate, info.bits), (1, 16_000, 16));
        let samples: Vec<i16> = mono[info.data]
            .chunks_exact(2)
            .map(|s| i16::from_le_bytes([s[0], s[1]]))
            .collect();
        assert_eq!(samples, [200, -32768, 16384]);
    }

    #[test]
    fn streamed_sizes_and_extra_chunks_are_understood() {
        let mut wav = wav_file(1, 8000, &[1, 0, 2, 0]);
        // A LIST chunk between fmt and data, and a data size past the end (streamed).
        let data_at = 36;
        let mut list = b"LIST\x04\x00\x00\x00abcd".to_vec();
        let tail = wav.split_off(data_at);
        wav.append(&mut list);
        wav.extend_from_slice(&tail);
        let len = wav.len();
        wav[len - 8..len - 4].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        let info = wav_info(&wav).unwrap();
        assert_eq!(info.data.len(), 4);
        assert_eq!(to_mono(&wav).unwrap().len(), 48);
    }

    #[test]
    fn other_audio_is_refused_with_a_reason() {
        assert!(to_mono(b"OggS....").is_err());
        assert!(to_mono(b"RIFF\x00\x00\x00\x00WAVE").is_err());
        let mut float = wav_file(1, 8000, &[0; 8]);
        float[20] = 3; // IEEE float
        assert!(to_mono(&float).unwrap_err().contains("not integer PCM"));
    }

    #[test]
    fn long_answers_are_spoken_up_to_a_sentence() {
        assert_eq!(
            speakable("**Boiler** is at `80 °C`."),
            "Boiler is at 80 °C."
        );
        let long = format!(
            "{} Second sentence goes on{}",
            "First sentence.".repeat(30),
            " and on".repeat(100)
        );
        let s = speakable(&long);
        assert!(s.chars().count() <= SPEAK_MAX_CHARS);
        assert!(s.ends_with('.'));
    }

    #[tokio::test]
    async fn not_an_ogg_file_is_refused_before_running_anything() {
        assert!(matches!(
            ogg_to_wav(b"ID3...").await,
            Err(CodecError::BadInput(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_after_a_riff_header_never_panic(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let mut wav = b"RIFF\x00\x00\x00\x00WAVE".to_vec();
            wav.extend_from_slice(&body);
            if let Ok(mono) = to_mono(&wav) {
                proptest::prop_assert!(mono.starts_with(b"RIFF"));
            }
            // A stereo file cut short by a byte: the whole frames that are there.
            let mut canonical = wav_file(2, 8000, &body);
            canonical.pop();
            match to_mono(&canonical) {
                Ok(mono) => {
                    let frames = (body.len() - 1) / 4;
                    proptest::prop_assert_eq!(mono.len(), 44 + frames * 2);
                }
                Err(_) => proptest::prop_assert!(body.is_empty()),
            }
        }
    }
}
