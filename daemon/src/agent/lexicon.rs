//! The words of the offline understanding that do not come from the site: what staff say for
//! alarms, plans, history, kinds of measurement and common plant equipment, in Russian and
//! English, and Russian numerals ("триста первой" = 301).
//!
//! Every entry is a list of ordinary word forms; `super::understand` stems them with the
//! Snowball stemmer of their script, so one entry covers every case ending the stemmer folds,
//! and the forms it does not fold (fleeting vowels: "котёл"/"котла") are listed side by side.
//! The site's own words (sensor names, rooms, floors, tenants, `[agent.synonyms]`) are added
//! by `super::understand` from the configuration and the sensors table.
//!
//! Owns: the built-in vocabulary and numeral parsing. Does not own: matching (typo tolerance)
//! or deciding what a question asks.

/// What a word means to the router.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Concept {
    /// Acknowledge (an alarm).
    Ack,
    /// Not yet acknowledged, in one word.
    Unacked,
    /// Alarms in general.
    Alarm,
    /// Water where it should not be.
    Leak,
    /// Every alarm, cleared ones too.
    AllStates,
    /// Least severity critical.
    Critical,
    /// Least severity high.
    High,
    /// A floor plan picture.
    Plan,
    /// Tenants and renting.
    Tenant,
    /// Upload to the central office.
    Sync,
    /// How values changed.
    History,
    /// Highest value.
    Max,
    /// Lowest value.
    Min,
    /// Average value.
    Avg,
    /// An hour (a range unit).
    Hour,
    /// A day.
    Day,
    /// A week.
    Week,
    /// A month.
    Month,
    /// What the assistant can do.
    Help,
    /// The building at a glance.
    Overview,
    /// The building itself.
    Building,
    /// Sensors as things (which sensors are there).
    Sensor,
    /// A floor (storey).
    Floor,
    /// A room, office, flat.
    Room,
    /// "not", "не".
    Negation,
    /// A kind of measurement (`crate::model::SensorKind` names).
    Kind(&'static str),
    /// An English word sensor ids and names use for equipment.
    Word(&'static str),
}

/// The built-in entries: space-separated word forms and what they mean. A form may appear in
/// more than one entry (it then means both).
pub const ENTRIES: &[(&str, Concept)] = &[
    (
        "ack acknowledge acknowledged квитируй квитировать квитирую квитирован квитировал квитирования подтверди подтвердить подтверждаю подтвержден",
        Concept::Ack,
    ),
    (
        "unacknowledged unacked неквитированные неквитированная неквитированных неподтвержденные",
        Concept::Unacked,
    ),
    (
        "alarm alarms alert alerts alarming тревога тревоги тревог авария аварии аварий сигнализация problem problems проблема проблемы неисправность",
        Concept::Alarm,
    ),
    (
        "leak leaks leaking flood flooding flooded water wet dry протечка протечки протечек течь течет потоп затопление затопило вода воды мокро сухо",
        Concept::Leak,
    ),
    (
        "all every including incl past cleared old history все всё включая закрытые закрытых прошлые снятые история",
        Concept::AllStates,
    ),
    (
        "critical критичные критические критично критическая критический",
        Concept::Critical,
    ),
    (
        "high urgent serious severe высокий высокой срочные срочно серьезные серьёзные важные",
        Concept::High,
    ),
    ("plan map layout план карта схема", Concept::Plan),
    (
        "tenant tenants rent rents rented renting арендатор арендаторы арендует арендуют снимает занимает компания фирма",
        Concept::Tenant,
    ),
    (
        "sync synchronization synchronisation upload uploads uploaded central office server синхронизация выгрузка выгружаются выгружены центр центральный сервер отправка ушли",
        Concept::Sync,
    ),
    (
        "history trend chart graph change changed changes changing история график графики тренд менялась менялся изменение изменения динамика",
        Concept::History,
    ),
    (
        "max maximum highest peak максимум максимальный максимальная пиковый пик наибольший",
        Concept::Max,
    ),
    (
        "min minimum lowest минимум минимальный минимальная наименьший",
        Concept::Min,
    ),
    ("average avg mean средний средняя среднее", Concept::Avg),
    ("hour hours час часа часов", Concept::Hour),
    (
        "day days today yesterday сутки суток день дня дней сегодня вчера",
        Concept::Day,
    ),
    ("week weeks неделя неделю недели", Concept::Week),
    ("month months месяц месяца месяцев", Concept::Month),
    ("help помощь справка умеешь", Concept::Help),
    (
        "status summary overview situation everything сводка обзор обстановка статус дела ситуация",
        Concept::Overview,
    ),
    ("building house здание здании дом", Concept::Building),
    ("sensor sensors датчик датчики сенсор", Concept::Sensor),
    ("floor level storey этаж этаже этажа этажи", Concept::Floor),
    (
        "room rooms комната комнате помещение помещения кабинет квартира",
        Concept::Room,
    ),
    (
        "not no never havent hasnt isnt arent dont didnt нет не никто ни",
        Concept::Negation,
    ),
    (
        "temperature temperatures temp degrees warm cold hot температура градусов градусы тепло холодно жарко",
        Concept::Kind("temperature"),
    ),
    (
        "humidity humid влажность влажно сыро",
        Concept::Kind("humidity"),
    ),
    (
        "co2 со2 carbon stuffy углекислый углекислого душно духота воздух",
        Concept::Kind("co2"),
    ),
    ("pressure давление давления", Concept::Kind("pressure")),
    (
        "energy power электричество энергия мощность",
        Concept::Kind("energy"),
    ),
    ("flow расход", Concept::Kind("flow")),
    (
        "котел котла котлом котле котельная котельной",
        Concept::Word("boiler"),
    ),
    ("горелка горелки", Concept::Word("burner")),
    ("насос насоса насосы", Concept::Word("pump")),
    (
        "циркуляционный циркуляция циркуляционного",
        Concept::Word("circulation"),
    ),
    ("ток тока", Concept::Word("current")),
    ("подача подачи подающий", Concept::Word("supply")),
    ("обратка обратки обратный обратной", Concept::Word("return")),
    ("отопление отопления", Concept::Word("heating")),
    ("контур контура", Concept::Word("circuit")),
    ("подвал подвале подвала", Concept::Word("basement")),
];

/// Words asking politely, skipped when looking for a request's first word.
pub const POLITE: &[&str] = &[
    "please",
    "pls",
    "can",
    "could",
    "you",
    "would",
    "пожалуйста",
    "можешь",
    "можете",
    "мне",
    "ну",
];

/// Words of tenant names that do not tell tenants apart (legal forms).
pub const LEGAL_FORMS: &[&str] = &[
    "ltd", "llc", "inc", "gmbh", "co", "ооо", "оао", "зао", "ао", "ип", "пао",
];

/// Russian hundreds as written in compound ordinals ("триста первая").
const HUNDREDS: &[(&str, u32)] = &[
    ("сто", 100),
    ("двести", 200),
    ("триста", 300),
    ("четыреста", 400),
    ("пятьсот", 500),
    ("шестьсот", 600),
    ("семьсот", 700),
    ("восемьсот", 800),
    ("девятьсот", 900),
];

/// Russian tens and teens, by the start of the word (any case ending), longest first where one
/// starts another.
const TENS: &[(&str, u32)] = &[
    ("одиннадцат", 11),
    ("двенадцат", 12),
    ("тринадцат", 13),
    ("четырнадцат", 14),
    ("пятнадцат", 15),
    ("шестнадцат", 16),
    ("семнадцат", 17),
    ("восемнадцат", 18),
    ("девятнадцат", 19),
    ("десят", 10),
    ("двадцат", 20),
    ("тридцат", 30),
    ("сорок", 40),
    ("пятьдесят", 50),
    ("пятидесят", 50),
    ("шестьдесят", 60),
    ("шестидесят", 60),
    ("семьдесят", 70),
    ("семидесят", 70),
    ("восемьдесят", 80),
    ("восьмидесят", 80),
    ("девяност", 90),
];

/// Russian units, cardinal and ordinal, by the start of the word.
const UNITS: &[(&str, u32)] = &[
    ("перв", 1),
    ("один", 1),
    ("одна", 1),
    ("втор", 2),
    ("два", 2),
    ("две", 2),
    ("трет", 3),
    ("три", 3),
    ("четверт", 4),
    ("четыр", 4),
    ("пят", 5),
    ("шест", 6),
    ("седьм", 7),
    ("сем", 7),
    ("восьм", 8),
    ("восем", 8),
    ("девят", 9),
];

/// English ordinals and small cardinals.
const EN_NUMBERS: &[(&str, u32)] = &[
    ("first", 1),
    ("one", 1),
    ("second", 2),
    ("two", 2),
    ("third", 3),
    ("three", 3),
    ("fourth", 4),
    ("four", 4),
    ("fifth", 5),
    ("five", 5),
    ("sixth", 6),
    ("six", 6),
    ("seventh", 7),
    ("seven", 7),
    ("eighth", 8),
    ("eight", 8),
    ("ninth", 9),
    ("nine", 9),
];

fn prefixed(word: &str, table: &[(&str, u32)]) -> Option<u32> {
    table
        .iter()
        .find(|(p, _)| word.starts_with(p))
        .map(|(_, n)| *n)
}

/// A small number written as one word: digits with an optional ordinal ending ("3rd", "2-й"
/// arrives as "2"), an English number word, a Russian unit, ten or teen (any ending).
pub fn small_number(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches(|c: char| c.is_alphabetic());
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        let rest = &word[digits.len()..];
        if rest.is_empty() || matches!(rest, "st" | "nd" | "rd" | "th" | "й" | "я" | "го") {
            return digits.parse().ok();
        }
        return None;
    }
    if let Some(n) = EN_NUMBERS.iter().find(|(w, _)| *w == word).map(|(_, n)| *n) {
        return Some(n);
    }
    prefixed(word, TENS).or_else(|| prefixed(word, UNITS))
}

/// A Russian compound numeral starting at `words[at]` with its hundreds ("сто пятой",
/// "двести первую", "триста двадцать пятый"): the number and how many words it took.
pub fn russian_number(words: &[String], at: usize) -> Option<(u32, usize)> {
    let first = words.get(at)?;
    let hundreds = HUNDREDS.iter().find(|(w, _)| w == first).map(|(_, n)| *n)?;
    let mut n = hundreds;
    let mut used = 1;
    if let Some(w) = words.get(at + used)
        && let Some(t) = prefixed(w, TENS)
    {
        n += t;
        used += 1;
    }
    if n % 10 == 0
        && (n % 100 == 0 || n % 100 >= 20)
        && let Some(w) = words.get(at + used)
        && prefixed(w, TENS).is_none()
        && let Some(u) = prefixed(w, UNITS)
    {
        n += u;
        used += 1;
    }
    Some((n, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn russian_numerals_become_numbers() {
        assert_eq!(russian_number(&words("триста первой"), 0), Some((301, 2)));
        assert_eq!(russian_number(&words("двести первую"), 0), Some((201, 2)));
        assert_eq!(russian_number(&words("сто пятой"), 0), Some((105, 2)));
        assert_eq!(
            russian_number(&words("триста двадцать пятый"), 0),
            Some((325, 3))
        );
        assert_eq!(russian_number(&words("сто двенадцатая"), 0), Some((112, 2)));
        assert_eq!(russian_number(&words("сто"), 0), Some((100, 1)));
        assert_eq!(russian_number(&words("стоят датчики"), 0), None);
        assert_eq!(small_number("третьем"), Some(3));
        assert_eq!(small_number("3rd"), Some(3));
        assert_eq!(small_number("second"), Some(2));
        assert_eq!(small_number("12"), Some(12));
        assert_eq!(small_number("24h"), None);
        assert_eq!(small_number("пятьдесят"), Some(50));
    }
}
