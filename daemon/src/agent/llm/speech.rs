//! Speech through the LLM server: Koboldcpp's `/api/extra/transcribe` (speech to text) and
//! `/api/extra/tts` (text to speech).
//!
//! Owns: the two requests, the audio format checks, and turning Koboldcpp's failures (HTTP 200
//! with an empty text or body) into errors. Does not own: transcoding (Telegram's OGG/Opus to WAV
//! and back) or deciding when to speak.

use base64::Engine as _;
use serde_json::json;
use tokio::time::Instant;

use super::transport::unbounded;
use super::{Llm, LlmError, wire};

impl Llm {
    /// Speech to text: `POST /api/extra/transcribe` with the audio (WAV, MP3 or FLAC; Koboldcpp
    /// cannot decode OGG/Opus, so transcode Telegram voice notes first) as base64, the language
    /// code (`None`: detect) and a prompt that biases the vocabulary (room and plant names).
    ///
    /// # Errors
    /// As [`Llm::chat`]; [`LlmError::BadResponse`] for audio in another format (not sent) and
    /// for an empty transcript (Koboldcpp answers failures with 200 and `{"text":""}`).
    pub async fn transcribe(
        &self,
        wav: &[u8],
        lang: Option<&str>,
        prompt: Option<&str>,
    ) -> Result<String, LlmError> {
        if !is_supported_audio(wav) {
            return Err(LlmError::BadResponse(
                "the audio is not WAV, MP3 or FLAC (transcode OGG/Opus first); not sent".to_owned(),
            ));
        }
        let started = Instant::now();
        let mut admission = self.admit("transcribe")?;
        let body = json!({
            "audio_data": base64::engine::general_purpose::STANDARD.encode(wav),
            "langcode": lang.unwrap_or("auto"),
            "prompt": prompt.unwrap_or(""),
            "suppress_non_speech": false,
        });
        let deadline = unbounded(self.inner.config.request_timeout);
        let result = self
            .post_with_retries("/api/extra/transcribe", &body, deadline)
            .await
            .and_then(|bytes| {
                let text = wire::parse_transcript(&bytes).ok_or_else(|| {
                    LlmError::BadResponse(format!(
                        "transcribe answered {}",
                        wire::snippet(&bytes)
                    ))
                })?;
                let text = text.trim();
                if text.is_empty() {
                    Err(LlmError::BadResponse(
                        "empty transcript (no speech model on the server, or audio it could not decode)"
                            .to_owned(),
                    ))
                } else {
                    Ok(text.to_owned())
                }
            });
        self.settle("transcribe", started, &result, true);
        admission.settled = true;
        result
    }

    /// Text to speech: `POST /api/extra/tts` with `input` and `voice` (Koboldcpp: `kobo`,
    /// `cheery`, `sleepy`, `shouty`, `chatty`, or OpenAI names). Returns the WAV bytes.
    ///
    /// # Errors
    /// As [`Llm::chat`]; [`LlmError::BadResponse`] for an empty body (Koboldcpp's way to fail,
    /// with 200) or a body that is not a WAV file.
    pub async fn tts(&self, text: &str, voice: &str) -> Result<Vec<u8>, LlmError> {
        let started = Instant::now();
        let mut admission = self.admit("tts")?;
        let body = json!({"input": text, "voice": voice});
        let deadline = unbounded(self.inner.config.request_timeout);
        let result = self
            .post_with_retries("/api/extra/tts", &body, deadline)
            .await
            .and_then(|bytes| {
                if bytes.is_empty() {
                    Err(LlmError::BadResponse(
                        "empty audio (no speech model on the server)".to_owned(),
                    ))
                } else if !is_wav(&bytes) {
                    Err(LlmError::BadResponse(format!(
                        "the audio is not WAV: {} bytes starting {:?}",
                        bytes.len(),
                        String::from_utf8_lossy(&bytes[..bytes.len().min(12)])
                    )))
                } else {
                    Ok(bytes)
                }
            });
        self.settle("tts", started, &result, true);
        admission.settled = true;
        result
    }
}

/// `RIFF....WAVE`.
fn is_wav(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE"
}

/// WAV, MP3 (ID3 tag or frame sync) or FLAC: what Koboldcpp's decoder accepts.
fn is_supported_audio(bytes: &[u8]) -> bool {
    is_wav(bytes)
        || bytes.starts_with(b"fLaC")
        || bytes.starts_with(b"ID3")
        || (bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_magic() {
        assert!(is_wav(b"RIFF\0\0\0\0WAVEfmt "));
        assert!(!is_wav(b"OggS\0\0\0\0\0\0\0\0"));
        assert!(is_supported_audio(b"fLaC...."));
        assert!(is_supported_audio(b"ID3\x04...."));
        assert!(!is_supported_audio(b"OggS...."));
    }
}
