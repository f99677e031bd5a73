//! Understanding a question without an LLM: words are stemmed with the Snowball stemmer of
//! their script (Russian or English), matched with a bounded edit distance against the
//! built-in vocabulary (`super::lexicon`) and the site's own (floors, rooms, tenants, the words
//! of sensor names, `[agent.synonyms]`), and the question becomes an [`Ask`]: which tool, with
//! which arguments.
//!
//! Owns: tokenising, stemming, typo tolerance and the decision rules. Does not own: running
//! the tools or wording the answer (`super::commands`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};

use super::lexicon::{self, Concept};
use crate::config::Config;
use crate::store::SensorRow;

/// What a question asks for, with the arguments of the tool that answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    /// What the assistant can do.
    Help,
    /// The building at a glance.
    Overview,
    /// Upload to the central office.
    Sync,
    /// Acknowledge an alarm (by number, when given).
    Ack(Option<i64>),
    /// Alarms.
    Alarms {
        /// `open`, `unacknowledged` or `all`.
        state: &'static str,
        /// Least severity.
        severity: Option<&'static str>,
        /// Floor id.
        floor: Option<String>,
        /// Only water and leaks (with the leak sensors' readings).
        leaks: bool,
    },
    /// A floor plan picture.
    Plan {
        /// Floor id (`None`: the question named none).
        floor: Option<String>,
        /// `temperature`, `humidity`, `co2` or `alarms`.
        measure: &'static str,
    },
    /// A tenant, by id or by one of its rooms.
    Tenant {
        /// Tenant id.
        tenant: Option<String>,
        /// Room id.
        room: Option<String>,
    },
    /// Which sensors there are.
    Find(Target),
    /// How values changed.
    History {
        /// The sensor(s) meant.
        target: Target,
        /// `1h`, `6h`, `24h`, `7d` or `30d`.
        range: &'static str,
        /// `avg`, `min` or `max`.
        aggregation: &'static str,
    },
    /// Latest values.
    Readings(Target),
    /// Nothing the router knows.
    NotUnderstood,
}

/// The sensors a question is about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    /// Room id.
    pub room: Option<String>,
    /// Floor id.
    pub floor: Option<String>,
    /// Kind (`crate::model::SensorKind` name).
    pub kind: Option<&'static str>,
    /// Tenant id.
    pub tenant: Option<String>,
    /// English words of sensor names (equipment: "boiler supply").
    pub words: Vec<String>,
}

impl Target {
    /// Whether the question named anything a sensor can be found by.
    pub fn is_empty(&self) -> bool {
        self.room.is_none()
            && self.floor.is_none()
            && self.kind.is_none()
            && self.tenant.is_none()
            && self.words.is_empty()
    }

    /// The equipment words with the kind, as a sensor search text (`None` without words).
    pub fn sensor_text(&self) -> Option<String> {
        if self.words.is_empty() {
            return None;
        }
        let mut words = self.words.clone();
        if let Some(k) = self.kind
            && !words.iter().any(|w| w == k)
        {
            words.push(k.to_owned());
        }
        Some(words.join(" "))
    }
}

/// What one vocabulary entry stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Meaning {
    Concept(Concept),
    Floor(String),
    Tenant(String),
    /// An English word of sensor names.
    SiteWord(String),
}

#[derive(Clone, Debug)]
struct Entry {
    /// The word form as listed (lower case, `ё` as `е`).
    form: String,
    /// Its stem.
    stem: String,
    meaning: Meaning,
}

/// Words that never match anything by edit distance (they are too close to vocabulary words
/// while meaning something else: "last" / "past").
const NO_FUZZ: &[&str] = &[
    "the",
    "last",
    "what",
    "whats",
    "which",
    "with",
    "this",
    "that",
    "there",
    "when",
    "have",
    "does",
    "doing",
    "show",
    "give",
    "right",
    "only",
    "many",
    "much",
    "over",
    "fine",
    "hows",
    "rooms",
    "since",
    "still",
    "есть",
    "какая",
    "какие",
    "какой",
    "сейчас",
    "когда",
    "последний",
    "покажи",
    "было",
    "были",
    "была",
    "дай",
    "где",
    "кто",
    "раз",
];

/// Lower case, `ё` as `е`, apostrophes dropped ("what's" is one word).
fn normalise(text: &str) -> String {
    text.to_lowercase()
        .replace('ё', "е")
        .replace(['\'', '’', '`'], "")
}

/// The words of a text: runs of letters and digits.
fn tokens(text: &str) -> Vec<String> {
    normalise(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_cyrillic(word: &str) -> bool {
    word.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c))
}

static RUSSIAN: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::Russian));
static ENGLISH: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// The Snowball stem of a normalised word, by its script.
pub fn stem(word: &str) -> String {
    if is_cyrillic(word) {
        RUSSIAN.stem(word).into_owned()
    } else {
        ENGLISH.stem(word).into_owned()
    }
}

/// Latin letters for a Cyrillic word (to compare "Вектор" with "Vector").
fn translit(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        let s = match c {
            'а' => "a",
            'б' => "b",
            'в' => "v",
            'г' => "g",
            'д' => "d",
            'е' | 'э' => "e",
            'ж' => "zh",
            'з' => "z",
            'и' | 'й' | 'ы' => "i",
            'к' => "k",
            'л' => "l",
            'м' => "m",
            'н' => "n",
            'о' => "o",
            'п' => "p",
            'р' => "r",
            'с' => "s",
            'т' => "t",
            'у' => "u",
            'ф' => "f",
            'х' => "kh",
            'ц' => "ts",
            'ч' => "ch",
            'ш' => "sh",
            'щ' => "shch",
            'ю' => "yu",
            'я' => "ya",
            'ь' | 'ъ' => "",
            other => {
                out.push(other);
                continue;
            }
        };
        out.push_str(s);
    }
    out
}

/// Edits allowed between a word and a vocabulary form of `len` characters.
fn allowed_edits(len: usize) -> usize {
    match len {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// Whether the letters of `short` appear in order in `long` (a letter left out: "humidty").
fn subsequence(short: &str, long: &str) -> bool {
    let mut it = long.chars();
    short.chars().all(|c| it.any(|l| l == c))
}

static LEXICON: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    let mut out = Vec::new();
    for (forms, concept) in lexicon::ENTRIES {
        for form in forms.split_whitespace() {
            let form = normalise(form);
            out.push(Entry {
                stem: stem(&form),
                form,
                meaning: Meaning::Concept(*concept),
            });
        }
    }
    out
});

/// The site's words, built from the configuration and the sensors table.
#[derive(Clone, Debug, Default)]
pub struct Vocabulary {
    site: Vec<Entry>,
    /// Floor ids, lower case, with the id as configured.
    floors: BTreeMap<String, String>,
    /// Room ids, lower case, with the id as configured.
    rooms: BTreeMap<String, String>,
    /// `[agent.synonyms]`: a word's stem and the words it stands for.
    synonyms: Vec<(String, Vec<String>)>,
}

impl Vocabulary {
    /// The vocabulary of a site: its floors, rooms and tenants, the words of its sensors'
    /// names and ids, and `[agent.synonyms]`.
    pub fn new(cfg: &Config, sensors: &[SensorRow]) -> Self {
        let mut v = Self::default();
        for f in &cfg.site.floor {
            v.floors.insert(f.id.to_lowercase(), f.id.clone());
            if let Some(name) = &f.name {
                for w in tokens(name) {
                    v.add_name_word(&w, Meaning::Floor(f.id.clone()));
                }
            }
        }
        for r in &cfg.site.room {
            v.rooms.insert(r.id.to_lowercase(), r.id.clone());
        }
        for t in &cfg.site.tenant {
            let mut words = tokens(&t.id);
            words.extend(tokens(t.name.as_deref().unwrap_or_default()));
            for w in words {
                if !lexicon::LEGAL_FORMS.contains(&w.as_str()) {
                    v.add_name_word(&w, Meaning::Tenant(t.id.clone()));
                }
            }
        }
        for s in sensors {
            if let Some(f) = &s.floor {
                v.floors
                    .entry(f.to_lowercase())
                    .or_insert_with(|| f.clone());
            }
            if let Some(r) = &s.room {
                v.rooms.entry(r.to_lowercase()).or_insert_with(|| r.clone());
            }
            let mut words = tokens(&s.id);
            words.extend(tokens(&s.name));
            for w in words {
                let known = v.site.iter().any(|e| e.form == w);
                if !known && !is_cyrillic(&w) && analyse_lexicon(&w).is_empty() {
                    v.add_name_word(&w, Meaning::SiteWord(w.clone()));
                }
            }
        }
        for (word, means) in &cfg.agent.synonyms {
            let key = normalise(word.trim());
            if !key.is_empty() {
                v.synonyms.push((stem(&key), tokens(means)));
            }
        }
        v
    }

    fn add_name_word(&mut self, word: &str, meaning: Meaning) {
        if word.chars().count() < 3 || word.chars().all(|c| c.is_ascii_digit()) {
            return;
        }
        self.site.push(Entry {
            form: translit(word),
            stem: translit(&stem(word)),
            meaning,
        });
    }

    fn floor_id(&self, label: &str) -> Option<String> {
        self.floors.get(&label.to_lowercase()).cloned()
    }

    fn room_id(&self, label: &str) -> Option<String> {
        self.rooms.get(&label.to_lowercase()).cloned()
    }

    /// What a word means to the site (floors by name, tenants, equipment), compared in Latin
    /// letters so that "Вектора" finds "Vector".
    fn analyse_site(&self, word: &str) -> Vec<Meaning> {
        let (w, s) = (translit(word), translit(&stem(word)));
        best(&self.site, &w, &s, true)
    }
}

/// The entries nearest to a word: equal stems or forms first, else within the allowed edits
/// (a letter left out preferred). With `prefix`, a stem of 4 letters or more that starts a form
/// counts as equal ("romashk" for "romashka").
fn best(entries: &[Entry], word: &str, stem: &str, prefix: bool) -> Vec<Meaning> {
    let mut exact: Vec<Meaning> = entries
        .iter()
        .filter(|e| {
            e.stem == stem
                || e.form == word
                || (prefix && stem.chars().count() >= 4 && e.form.starts_with(stem))
        })
        .map(|e| e.meaning.clone())
        .collect();
    if !exact.is_empty() {
        exact.dedup();
        return exact;
    }
    if NO_FUZZ.contains(&word) || word.chars().any(|c| c.is_ascii_digit()) {
        return Vec::new();
    }
    let mut found: Option<(usize, bool, &Entry)> = None;
    for e in entries {
        let limit = allowed_edits(e.form.chars().count().min(word.chars().count()));
        if limit == 0 {
            continue;
        }
        let d = strsim::osa_distance(word, &e.form).min(strsim::osa_distance(stem, &e.stem));
        if d > limit {
            continue;
        }
        let omitted = subsequence(word, &e.form);
        let better = match found {
            None => true,
            Some((bd, bo, _)) => d < bd || (d == bd && omitted && !bo),
        };
        if better {
            found = Some((d, omitted, e));
        }
    }
    found
        .map(|(_, _, e)| vec![e.meaning.clone()])
        .unwrap_or_default()
}

fn analyse_lexicon(word: &str) -> Vec<Meaning> {
    best(&LEXICON, word, &stem(word), false)
}

/// One word of the question with what it means.
#[derive(Clone, Debug)]
struct Word {
    text: String,
    meanings: Vec<Meaning>,
    /// A number it stands for (digits, or a Russian compound numeral starting here).
    number: Option<u32>,
}

fn analyse(vocab: &Vocabulary, text: &str) -> Vec<Word> {
    let mut raw = Vec::new();
    for t in tokens(text) {
        let st = stem(&t);
        match vocab.synonyms.iter().find(|(k, _)| *k == st) {
            Some((_, means)) => raw.extend(means.iter().cloned()),
            None => raw.push(t),
        }
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if let Some((n, used)) = lexicon::russian_number(&raw, i) {
            out.push(Word {
                text: n.to_string(),
                meanings: Vec::new(),
                number: Some(n),
            });
            i += used;
            continue;
        }
        let t = &raw[i];
        let number = t.parse::<u32>().ok();
        let mut meanings = if number.is_some() {
            Vec::new()
        } else {
            analyse_lexicon(t)
        };
        // A Russian word for equipment means what the English word means to the site.
        let words: Vec<String> = meanings
            .iter()
            .filter_map(|m| match m {
                Meaning::Concept(Concept::Word(w)) => Some((*w).to_owned()),
                _ => None,
            })
            .collect();
        for w in words {
            let site = vocab.analyse_site(&w);
            if site.is_empty() {
                meanings.push(Meaning::SiteWord(w));
            } else {
                meanings.extend(site);
            }
        }
        if meanings.is_empty() && number.is_none() {
            meanings = vocab.analyse_site(t);
        }
        out.push(Word {
            text: t.clone(),
            meanings,
            number,
        });
        i += 1;
    }
    out
}

impl Word {
    fn is(&self, c: Concept) -> bool {
        self.meanings.contains(&Meaning::Concept(c))
    }
}

/// The question, analysed.
struct Question<'a> {
    vocab: &'a Vocabulary,
    words: Vec<Word>,
}

impl Question<'_> {
    fn has(&self, c: Concept) -> bool {
        self.words.iter().any(|w| w.is(c))
    }

    fn kind(&self) -> Option<&'static str> {
        self.words.iter().find_map(|w| {
            w.meanings.iter().find_map(|m| match m {
                Meaning::Concept(Concept::Kind(k)) => Some(*k),
                _ => None,
            })
        })
    }

    fn tenant(&self) -> Option<String> {
        self.words.iter().find_map(|w| {
            w.meanings.iter().find_map(|m| match m {
                Meaning::Tenant(id) => Some(id.clone()),
                _ => None,
            })
        })
    }

    fn room(&self) -> Option<String> {
        self.words.iter().find_map(|w| {
            w.number
                .filter(|n| *n >= 10)
                .and_then(|n| self.vocab.room_id(&n.to_string()))
        })
    }

    /// A floor named by a number or ordinal next to "floor"/"этаж", or by its name.
    fn floor(&self) -> Option<String> {
        for (i, w) in self.words.iter().enumerate() {
            if !w.is(Concept::Floor) {
                continue;
            }
            let near = [i.checked_sub(1), Some(i + 1), i.checked_sub(2)];
            for j in near.into_iter().flatten() {
                let Some(n) = self.words.get(j) else { continue };
                if let Some(id) = self.floor_label(&n.text) {
                    return Some(id);
                }
            }
        }
        self.words.iter().find_map(|w| {
            w.meanings.iter().find_map(|m| match m {
                Meaning::Floor(id) => Some(id.clone()),
                _ => None,
            })
        })
    }

    /// A floor id a word stands for: the id itself ("3", "b"), or a number word ("third").
    fn floor_label(&self, word: &str) -> Option<String> {
        if word.chars().count() <= 3
            && let Some(id) = self.vocab.floor_id(word)
        {
            return Some(id);
        }
        lexicon::small_number(word).and_then(|n| self.vocab.floor_id(&n.to_string()))
    }

    /// Any word that names a floor, for a plan ("план 2", "plan B").
    fn any_floor(&self) -> Option<String> {
        self.floor().or_else(|| {
            self.words
                .iter()
                .filter(|w| w.meanings.is_empty() || w.number.is_some())
                .find_map(|w| self.floor_label(&w.text))
        })
    }

    fn words(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for w in &self.words {
            for m in &w.meanings {
                if let Meaning::SiteWord(s) = m
                    && !out.contains(s)
                {
                    out.push(s.clone());
                }
            }
        }
        out
    }

    fn target(&self) -> Target {
        Target {
            room: self.room(),
            floor: self.floor(),
            kind: self.kind(),
            tenant: self.tenant(),
            words: self.words(),
        }
    }

    /// The first word that is not a courtesy asks for an acknowledgement.
    fn is_ack_request(&self) -> bool {
        self.words
            .iter()
            .find(|w| !lexicon::POLITE.contains(&w.text.as_str()))
            .is_some_and(|w| w.is(Concept::Ack) && !w.is(Concept::Negation))
    }

    /// "not acknowledged", "никто не квитировал", "unacknowledged".
    fn unacked(&self) -> bool {
        self.has(Concept::Unacked)
            || self.words.iter().enumerate().any(|(i, w)| {
                w.is(Concept::Ack)
                    && self.words[i.saturating_sub(3)..i]
                        .iter()
                        .any(|n| n.is(Concept::Negation))
            })
    }

    fn severity(&self) -> Option<&'static str> {
        if self.has(Concept::Critical) {
            Some("critical")
        } else if self.has(Concept::High) {
            Some("high")
        } else {
            None
        }
    }

    /// The history range the question names (`None`: it names none).
    fn range(&self) -> Option<&'static str> {
        for (i, w) in self.words.iter().enumerate() {
            if let Some(r) = ["1h", "6h", "24h", "7d", "30d"]
                .into_iter()
                .find(|r| *r == w.text)
            {
                return Some(r);
            }
            let n = i
                .checked_sub(1)
                .and_then(|j| self.words[j].number)
                .unwrap_or(1);
            let hours = if w.is(Concept::Hour) {
                n
            } else if w.is(Concept::Day) {
                n * 24
            } else if w.is(Concept::Week) {
                n * 24 * 7
            } else if w.is(Concept::Month) {
                n * 24 * 30
            } else {
                continue;
            };
            return Some(match hours {
                0..=1 => "1h",
                2..=6 => "6h",
                7..=24 => "24h",
                25..=168 => "7d",
                _ => "30d",
            });
        }
        None
    }

    fn aggregation(&self) -> Option<&'static str> {
        if self.has(Concept::Max) {
            Some("max")
        } else if self.has(Concept::Min) {
            Some("min")
        } else if self.has(Concept::Avg) {
            Some("avg")
        } else {
            None
        }
    }
}

/// What a question asks, by the site's vocabulary.
pub fn understand(vocab: &Vocabulary, text: &str) -> Ask {
    let q = Question {
        vocab,
        words: analyse(vocab, text),
    };
    if q.is_ack_request() {
        return Ask::Ack(q.words.iter().find_map(|w| w.number).map(i64::from));
    }
    if q.has(Concept::Plan) {
        let measure = match q.kind() {
            Some(k @ ("temperature" | "humidity" | "co2")) => k,
            _ if q.has(Concept::Alarm) => "alarms",
            _ => "temperature",
        };
        return Ask::Plan {
            floor: q.any_floor(),
            measure,
        };
    }
    let leaks = q.has(Concept::Leak);
    if leaks || q.has(Concept::Alarm) || q.has(Concept::Unacked) {
        let state = if q.unacked() {
            "unacknowledged"
        } else if q.has(Concept::AllStates) {
            "all"
        } else {
            "open"
        };
        return Ask::Alarms {
            state,
            severity: q.severity(),
            floor: q.floor(),
            leaks,
        };
    }
    let target = q.target();
    if q.has(Concept::Sensor) {
        return Ask::Find(target);
    }
    if q.has(Concept::Tenant) || target.tenant.is_some() {
        return Ask::Tenant {
            room: target.room.clone().filter(|_| target.tenant.is_none()),
            tenant: target.tenant,
        };
    }
    if q.has(Concept::Sync) {
        return Ask::Sync;
    }
    let range = q.range();
    if q.has(Concept::History) || q.aggregation().is_some() || range.is_some() {
        return Ask::History {
            target,
            range: range.unwrap_or("24h"),
            aggregation: q.aggregation().unwrap_or("avg"),
        };
    }
    if q.has(Concept::Help) && q.words.len() <= 5 {
        return Ask::Help;
    }
    if !target.is_empty() {
        return Ask::Readings(target);
    }
    if q.has(Concept::Overview) || q.has(Concept::Building) {
        return Ask::Overview;
    }
    Ask::NotUnderstood
}

#[cfg(test)]
mod tests;
