//! The words of a question: tokenising, Snowball stemming, transliteration and bounded edit
//! distance against the built-in lexicon and the site's [`Vocabulary`].

use std::collections::BTreeMap;
use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};

use crate::agent::lexicon::{self, Concept};
use crate::config::Config;
use crate::store::SensorRow;

/// What one vocabulary entry stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Meaning {
    Concept(Concept),
    Floor(String),
    Tenant(String),
    /// An English word of sensor names.
    SiteWord(String),
}

#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// The word form as listed (lower case, `ё` as `е`).
    form: String,
    /// Its stem.
    stem: String,
    meaning: Meaning,
}

/// Words that never match anything by edit distance (they are too close to vocabulary words
/// while meaning something else: "last" / "past").
pub(super) const NO_FUZZ: &[&str] = &[
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
pub(super) fn normalise(text: &str) -> String {
    text.to_lowercase()
        .replace('ё', "е")
        .replace(['\'', '’', '`'], "")
}

/// The words of a text: runs of letters and digits.
pub(super) fn tokens(text: &str) -> Vec<String> {
    normalise(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn is_cyrillic(word: &str) -> bool {
    word.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c))
}

pub(super) static RUSSIAN: LazyLock<Stemmer> =
    LazyLock::new(|| Stemmer::create(Algorithm::Russian));
pub(super) static ENGLISH: LazyLock<Stemmer> =
    LazyLock::new(|| Stemmer::create(Algorithm::English));

/// The Snowball stem of a normalised word, by its script.
pub fn stem(word: &str) -> String {
    if is_cyrillic(word) {
        RUSSIAN.stem(word).into_owned()
    } else {
        ENGLISH.stem(word).into_owned()
    }
}

/// Latin letters for a Cyrillic word (to compare "Вектор" with "Vector").
pub(super) fn translit(word: &str) -> String {
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
pub(super) fn allowed_edits(len: usize) -> usize {
    match len {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// Whether the letters of `short` appear in order in `long` (a letter left out: "humidty").
pub(super) fn subsequence(short: &str, long: &str) -> bool {
    let mut it = long.chars();
    short.chars().all(|c| it.any(|l| l == c))
}

pub(super) static LEXICON: LazyLock<Vec<Entry>> = LazyLock::new(|| {
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

    pub(super) fn floor_id(&self, label: &str) -> Option<String> {
        self.floors.get(&label.to_lowercase()).cloned()
    }

    pub(super) fn room_id(&self, label: &str) -> Option<String> {
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
pub(super) fn best(entries: &[Entry], word: &str, stem: &str, prefix: bool) -> Vec<Meaning> {
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

pub(super) fn analyse_lexicon(word: &str) -> Vec<Meaning> {
    best(&LEXICON, word, &stem(word), false)
}

/// One word of the question with what it means.
#[derive(Clone, Debug)]
pub(super) struct Word {
    pub(super) text: String,
    pub(super) meanings: Vec<Meaning>,
    /// A number it stands for (digits, or a Russian compound numeral starting here).
    pub(super) number: Option<u32>,
}

pub(super) fn analyse(vocab: &Vocabulary, text: &str) -> Vec<Word> {
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
    pub(super) fn is(&self, c: Concept) -> bool {
        self.meanings.contains(&Meaning::Concept(c))
    }
}
