//! Pure text work for Telegram: splitting answers into messages of at most 4096 characters on
//! line boundaries, the HTML the bot sends (escaped, with the few Markdown marks models use
//! turned into tags), captions of at most 1024 characters, and the data of inline buttons.
//!
//! Telegram counts lengths in UTF-16 code units (an emoji counts two), so every limit here is
//! in those units. Owns: nothing stateful.

/// Longest message text.
pub(crate) const MESSAGE_MAX: usize = 4096;
/// Longest photo or voice caption.
pub(crate) const CAPTION_MAX: usize = 1024;
/// Longest callback data of an inline button, in bytes.
const CALLBACK_DATA_MAX: usize = 64;

/// Length as Telegram counts it.
pub(crate) fn units(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Splits `text` into pieces of at most `max` units: at line ends where possible, else at the
/// last space, else anywhere. Empty text gives no piece; no piece is empty or only whitespace.
pub(crate) fn split(text: &str, max: usize) -> Vec<String> {
    let max = max.max(2);
    let mut out = Vec::new();
    let mut current = String::new();
    let mut current_units = 0;
    for line in text.split_inclusive('\n') {
        let n = units(line);
        if current_units + n <= max {
            current.push_str(line);
            current_units += n;
            continue;
        }
        flush(&mut out, &mut current);
        if n <= max {
            current.push_str(line);
            current_units = n;
            continue;
        }
        // One line longer than a message: cut it at spaces, or hard.
        let mut rest = line;
        while units(rest) > max {
            let cut = cut_point(rest, max);
            out.push(rest[..cut].trim_end().to_owned());
            rest = rest[cut..].trim_start_matches(' ');
        }
        current.push_str(rest);
        current_units = units(rest);
    }
    flush(&mut out, &mut current);
    out.retain(|p| !p.trim().is_empty());
    out
}

fn flush(out: &mut Vec<String>, current: &mut String) {
    let piece = current.trim_end();
    if !piece.trim().is_empty() {
        out.push(piece.to_owned());
    }
    current.clear();
}

/// The byte index to cut `s` at so the head has at most `max` units: after the last space
/// within the limit when there is one in its second half, else at the limit.
fn cut_point(s: &str, max: usize) -> usize {
    let mut used = 0;
    let mut limit = s.len();
    let mut space = None;
    for (i, c) in s.char_indices() {
        let n = c.len_utf16();
        if used + n > max {
            limit = i;
            break;
        }
        used += n;
        if c == ' ' && used > max / 2 {
            space = Some(i + 1);
        }
    }
    space
        .unwrap_or(limit)
        .max(s.chars().next().map_or(1, char::len_utf8))
}

/// `text` cut to `max` units, with `…` when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if units(text) <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + c.len_utf16() + 1 > max {
            break;
        }
        used += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

/// Escapes `&`, `<` and `>` for Telegram's HTML parse mode.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML of a plain answer: everything escaped; `**bold**` and `` `code` `` (paired within
/// one line, as models write them) become `<b>` and `<code>`. The visible text is the answer
/// without those marks, so it is never longer than the plain piece.
pub(crate) fn to_html(text: &str) -> String {
    text.split('\n')
        .map(line_html)
        .collect::<Vec<_>>()
        .join("\n")
}

fn line_html(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    loop {
        let next_bold = rest.find("**");
        let next_code = rest.find('`');
        let (start, mark, tag) = match (next_bold, next_code) {
            (Some(b), Some(c)) if c < b => (c, "`", "code"),
            (Some(b), _) => (b, "**", "b"),
            (None, Some(c)) => (c, "`", "code"),
            (None, None) => break,
        };
        let inner_start = start + mark.len();
        let Some(len) = rest[inner_start..].find(mark).filter(|l| *l > 0) else {
            // An unpaired mark stays as typed.
            out.push_str(&escape(&rest[..inner_start]));
            rest = &rest[inner_start..];
            continue;
        };
        out.push_str(&escape(&rest[..start]));
        out.push_str(&format!(
            "<{tag}>{}</{tag}>",
            escape(&rest[inner_start..inner_start + len])
        ));
        rest = &rest[inner_start + len + mark.len()..];
    }
    out.push_str(&escape(rest));
    out
}

/// What an inline button asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Button {
    /// Acknowledge an alarm.
    Ack(i64),
    /// Shelve an alarm for an hour.
    Shelve(i64),
    /// Carry out an action the assistant proposed (its one-time token).
    Confirm(String),
}

/// Why a button's data was not understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadButton {
    /// No data at all (a game button, or a client that sent none).
    #[error("the button carries no data")]
    Missing,
    /// Not one of ours (an old version's, or forged).
    #[error("unknown button data {0:?}")]
    Unknown(String),
}

impl Button {
    /// The callback data (at most 64 bytes).
    pub(crate) fn data(&self) -> String {
        let mut s = match self {
            Self::Ack(id) => format!("ack:{id}"),
            Self::Shelve(id) => format!("shelve:{id}"),
            Self::Confirm(token) => format!("confirm:{token}"),
        };
        s.truncate(CALLBACK_DATA_MAX);
        s
    }

    /// Parses callback data.
    ///
    /// # Errors
    /// See [`BadButton`].
    pub(crate) fn parse(data: Option<&str>) -> Result<Self, BadButton> {
        let data = data.ok_or(BadButton::Missing)?;
        let unknown = || BadButton::Unknown(truncate(data, 80));
        let (kind, arg) = data.split_once(':').ok_or_else(unknown)?;
        let id = || arg.parse::<i64>().ok().filter(|id| *id > 0);
        match kind {
            "ack" => id().map(Self::Ack).ok_or_else(unknown),
            "shelve" => id().map(Self::Shelve).ok_or_else(unknown),
            "confirm"
                if !arg.is_empty()
                    && arg.len() <= 32
                    && arg.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                Ok(Self::Confirm(arg.to_owned()))
            }
            _ => Err(unknown()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(split("hello\nworld", 4096), ["hello\nworld"]);
        assert!(split("", 4096).is_empty());
        assert!(split("\n \n", 4096).is_empty());
    }

    #[test]
    fn long_text_splits_on_lines_within_the_limit() {
        let line = format!("{}\n", "x".repeat(99));
        let text = line.repeat(100); // 10,000 characters
        let pieces = split(&text, MESSAGE_MAX);
        assert_eq!(pieces.len(), 3);
        for p in &pieces {
            assert!(units(p) <= MESSAGE_MAX);
            assert!(p.lines().all(|l| l.len() == 99), "cut inside a line");
        }
        assert_eq!(pieces.join("\n"), text.trim_end());
    }

    #[test]
    fn one_huge_line_is_cut_at_spaces_or_hard() {
        let words = "слово ".repeat(2000);
        let pieces = split(&words, 100);
        assert!(pieces.iter().all(|p| units(p) <= 100 && !p.ends_with(' ')));
        assert_eq!(pieces.join(" ").split_whitespace().count(), 2000);
        let solid = "é".repeat(250);
        let pieces = split(&solid, 100);
        assert_eq!(
            pieces.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            [100, 100, 50]
        );
    }

    #[test]
    fn emoji_count_as_two_units() {
        assert_eq!(units("🎤a"), 3);
        let pieces = split(&"🔥".repeat(10), 6);
        assert!(pieces.iter().all(|p| units(p) <= 6));
        assert_eq!(pieces.concat().chars().count(), 10);
    }

    #[test]
    fn html_is_escaped_and_marks_become_tags() {
        assert_eq!(to_html("a < b & c > d"), "a &lt; b &amp; c &gt; d");
        assert_eq!(
            to_html("**Boiler** is at `85 °C` <hot>"),
            "<b>Boiler</b> is at <code>85 °C</code> &lt;hot&gt;"
        );
        assert_eq!(to_html("2 ** 3 and a ` tick"), "2 ** 3 and a ` tick");
        assert_eq!(to_html("**a\nb**"), "**a\nb**");
        assert_eq!(to_html("`<b>`"), "<code>&lt;b&gt;</code>");
    }

    #[test]
    fn captions_are_truncated_with_an_ellipsis() {
        assert_eq!(truncate("short", 10), "short");
        let t = truncate(&"x".repeat(2000), CAPTION_MAX);
        assert_eq!(units(&t), CAPTION_MAX);
        assert!(t.ends_with('…'));
    }

    #[test]
    fn buttons_round_trip_and_bad_data_is_an_error() {
        for b in [
            Button::Ack(3),
            Button::Shelve(12),
            Button::Confirm("00ff00ff00ff00ff".into()),
        ] {
            assert!(b.data().len() <= CALLBACK_DATA_MAX);
            assert_eq!(Button::parse(Some(&b.data())), Ok(b));
        }
        assert_eq!(Button::parse(None), Err(BadButton::Missing));
        for bad in [
            "",
            "ack",
            "ack:",
            "ack:-1",
            "ack:x",
            "nuke:1",
            "confirm:a b",
            "confirm:",
        ] {
            assert!(
                matches!(Button::parse(Some(bad)), Err(BadButton::Unknown(_))),
                "{bad:?}"
            );
        }
        let huge = "x".repeat(10_000);
        assert!(matches!(Button::parse(Some(&huge)), Err(BadButton::Unknown(s)) if s.len() < 100));
    }

    proptest::proptest! {
        #[test]
        fn any_text_splits_within_the_limit_and_never_panics(
            text in "(?s).{0,600}",
            max in 2usize..300,
        ) {
            for piece in split(&text, max) {
                proptest::prop_assert!(units(&piece) <= max);
                proptest::prop_assert!(!piece.trim().is_empty());
            }
            let html = to_html(&text);
            proptest::prop_assert!(!html.contains('<') || html.contains("</"));
            let parsed = Button::parse(Some(&text));
            proptest::prop_assert!(parsed.is_err() || text.len() <= CALLBACK_DATA_MAX);
            proptest::prop_assert!(units(&truncate(&text, max)) <= max.max(1));
        }
    }
}
