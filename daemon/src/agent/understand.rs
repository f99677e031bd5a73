//! Understanding a question without an LLM: words are stemmed with the Snowball stemmer of
//! their script (Russian or English), matched with a bounded edit distance against the
//! built-in vocabulary (`super::lexicon`) and the site's own (floors, rooms, tenants, the words
//! of sensor names, `[agent.synonyms]`), and the question becomes an [`Ask`]: which tool, with
//! which arguments.
//!
//! Owns: tokenising, stemming, typo tolerance and the decision rules. Does not own: running
//! the tools or wording the answer (`super::commands`).
//!
//! Layout: `words` tokenises, stems and matches the words of a question; this file holds what
//! a question asks for and the decision rules.

mod words;

use self::words::{Meaning, Word, analyse};
pub use self::words::{Vocabulary, stem};
use super::lexicon::{self, Concept};

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
