//! Compiled rules: validated config, sensor matching and the per-reading condition.

use std::collections::HashMap;

use super::config::{AlarmsConfig, Direction, RuleConfig, RuleKind};
use crate::config::error::ConfigError;
use crate::config::users::UserConfig;
use crate::model::Severity;

/// What a rule needs to know about a sensor to match it and to word its message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SensorInfo {
    /// Sensor id.
    pub id: String,
    /// Human name (empty when unknown).
    pub name: String,
    /// Kind (`temperature`, `leak`, ...).
    pub kind: String,
    /// Unit.
    pub unit: String,
    /// Floor label.
    pub floor: Option<String>,
    /// Room label.
    pub room: Option<String>,
}

/// One validated rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Name (`alert`).
    pub alert: String,
    /// What it watches for.
    pub kind: RuleKind,
    /// Sensor id or glob.
    pub sensor: Option<String>,
    /// Floor glob.
    pub floor: Option<String>,
    /// Room glob.
    pub room: Option<String>,
    /// Sensor kind.
    pub sensor_kind: Option<String>,
    /// Threshold or rate limit.
    pub limit: f64,
    /// Hysteresis.
    pub deadband: f64,
    /// On-delay in ms.
    pub on_delay_ms: i64,
    /// Off-delay in ms.
    pub off_delay_ms: i64,
    /// Severity.
    pub severity: Severity,
    /// Acknowledgement required.
    pub ack_required: bool,
    /// Reminder interval in ms.
    pub renotify_ms: Option<i64>,
    /// State rules: non-zero means alarm (`true`) or zero means alarm (`false`).
    pub active_when: bool,
    /// Rate rules: ms per unit of `limit`.
    pub per_ms: f64,
    /// Rate rules: direction.
    pub direction: Direction,
    /// Stale rules: ms without a good reading.
    pub after_ms: i64,
    /// Message template.
    pub message: Option<String>,
}

impl Rule {
    /// Whether the rule applies to `s`.
    pub fn matches(&self, s: &SensorInfo) -> bool {
        let opt = |pat: &Option<String>, val: Option<&str>| match pat {
            None => true,
            Some(p) => val.is_some_and(|v| glob(p, v)),
        };
        opt(&self.sensor, Some(&s.id))
            && opt(&self.floor, s.floor.as_deref())
            && opt(&self.room, s.room.as_deref())
            && self.sensor_kind.as_ref().is_none_or(|k| *k == s.kind)
    }

    /// Whether the rule is timer-driven on sensors that may never report (stale).
    pub fn needs_known_sensors(&self) -> bool {
        self.kind == RuleKind::Stale
    }

    /// The condition for a good value, given whether it held before (for the deadband).
    /// `rate` is the rate of change per `per`, when one could be computed.
    pub fn value_condition(&self, value: f64, rate: Option<f64>, held: bool) -> Option<bool> {
        let band = if held { self.deadband } else { 0.0 };
        Some(match self.kind {
            RuleKind::HighHigh | RuleKind::High => value > self.limit - band,
            RuleKind::Low | RuleKind::LowLow => value < self.limit + band,
            RuleKind::State => (value != 0.0) == self.active_when,
            RuleKind::Rate => {
                let r = rate?;
                match self.direction {
                    Direction::Rise => r > self.limit - band,
                    Direction::Fall => -r > self.limit - band,
                    Direction::Both => r.abs() > self.limit - band,
                }
            }
            RuleKind::Stale => false,
            RuleKind::CommLoss => value == 0.0,
        })
    }
}

/// Matches `text` against a glob with `*` (any run, possibly empty) and `?` (one character).
pub fn glob(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Every rule, indexed for the per-sensor lookup.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleSet {
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// Rules naming one exact sensor and nothing else, by sensor id.
    exact: HashMap<String, Vec<usize>>,
    /// The other rules (globs, floor/room/kind selectors).
    general: Vec<usize>,
}

impl RuleSet {
    /// Builds the index.
    pub fn new(rules: Vec<Rule>) -> Self {
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut general = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match &r.sensor {
                Some(s)
                    if !s.contains(['*', '?'])
                        && r.floor.is_none()
                        && r.room.is_none()
                        && r.sensor_kind.is_none() =>
                {
                    exact.entry(s.clone()).or_default().push(i);
                }
                _ => general.push(i),
            }
        }
        Self {
            rules,
            exact,
            general,
        }
    }

    /// Indexes of the rules that apply to `s`.
    pub fn matching(&self, s: &SensorInfo) -> Vec<usize> {
        let mut out: Vec<usize> = self.exact.get(&s.id).cloned().unwrap_or_default();
        out.extend(
            self.general
                .iter()
                .copied()
                .filter(|i| self.rules[*i].matches(s)),
        );
        out.sort_unstable();
        out
    }
}

/// Validates `[alarms]` and `[[users]]` and compiles the rules.
///
/// # Errors
/// Every problem found, with its key path.
pub fn compile(cfg: &AlarmsConfig, users: &[UserConfig]) -> Result<RuleSet, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut err = |path: String, message: &str, hint: Option<&str>| {
        errors.push(ConfigError {
            path,
            position: None,
            message: message.to_owned(),
            hint: hint.map(str::to_owned),
        });
    };
    if cfg.tick.is_zero() {
        err("alarms.tick".into(), "must be longer than zero", None);
    }
    if cfg.flood_threshold == 0 {
        err("alarms.flood_threshold".into(), "must be at least 1", None);
    }
    if cfg.retry_min.is_zero() || cfg.retry_max < cfg.retry_min {
        err(
            "alarms.retry_max".into(),
            "retry_min must be above zero and retry_max not below it",
            None,
        );
    }
    for (i, n) in cfg.notify.iter().enumerate() {
        let base = format!("alarms.notify.{i}");
        match n.channel.as_str() {
            "log" => {}
            "telegram" => {
                if n.to.trim().parse::<i64>().is_err() {
                    err(
                        format!("{base}.to"),
                        "must be a numeric Telegram chat id",
                        Some("e.g. \"-1001234567890\" for a group"),
                    );
                }
            }
            other => err(
                format!("{base}.channel"),
                &format!("unknown channel \"{other}\""),
                Some("one of: telegram, log"),
            ),
        }
    }
    let mut logins = std::collections::HashSet::new();
    let mut telegram_ids = std::collections::HashSet::new();
    let mut office_logins = std::collections::HashSet::new();
    for (i, u) in users.iter().enumerate() {
        if let Some(o) = &u.office_login
            && !office_logins.insert(o.to_lowercase())
        {
            err(
                format!("users.{i}.office_login"),
                &format!("\"{o}\" belongs to two users"),
                None,
            );
        }
        if u.login.trim().is_empty() {
            err(format!("users.{i}.login"), "must not be empty", None);
        } else if !logins.insert(u.login.as_str()) {
            err(
                format!("users.{i}.login"),
                &format!("\"{}\" is listed twice", u.login),
                None,
            );
        }
        if let Some(id) = u.telegram_id
            && !telegram_ids.insert(id)
        {
            err(
                format!("users.{i}.telegram_id"),
                &format!("{id} belongs to two users"),
                None,
            );
        }
        if u.notify && u.telegram_id.is_none() {
            err(
                format!("users.{i}.notify"),
                "notifications go to Telegram: set telegram_id too",
                None,
            );
        }
    }
    let mut rules = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, r) in cfg.rule.iter().enumerate() {
        let base = format!("alarms.rule.{i}");
        if let Some(rule) = compile_rule(r, &base, &mut err) {
            if !names.insert(rule.alert.clone()) {
                err(
                    format!("{base}.alert"),
                    &format!("\"{}\" names two rules", rule.alert),
                    Some("alarm ids are <alert>/<sensor>: give each rule its own name"),
                );
            }
            if r.enabled {
                rules.push(rule);
            }
        }
    }
    if errors.is_empty() {
        Ok(RuleSet::new(rules))
    } else {
        Err(errors)
    }
}

fn compile_rule(
    r: &RuleConfig,
    base: &str,
    err: &mut impl FnMut(String, &str, Option<&str>),
) -> Option<Rule> {
    let before_ok = !r.alert.trim().is_empty()
        && r.alert
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let mut ok = true;
    if !before_ok {
        err(
            format!("{base}.alert"),
            "must be a non-empty name of letters, digits, '_', '-' or '.'",
            Some("e.g. \"BoilerOverheat\""),
        );
        ok = false;
    }
    let sensor = match (&r.sensor, &r.selector.sensor) {
        (Some(_), Some(_)) => {
            err(
                format!("{base}.sensor"),
                "given both as `sensor` and as `match.sensor`",
                None,
            );
            ok = false;
            None
        }
        (a, b) => a.clone().or_else(|| b.clone()),
    };
    let s = &r.selector;
    if sensor.is_none() && s.floor.is_none() && s.room.is_none() && s.kind.is_none() {
        err(
            format!("{base}.sensor"),
            "the rule matches no sensor",
            Some("give `sensor = \"id\"` or a selector such as `match = { kind = \"leak\" }`"),
        );
        ok = false;
    }
    let ms = |d: Option<std::time::Duration>| {
        d.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    let threshold = matches!(
        r.kind,
        RuleKind::HighHigh | RuleKind::High | RuleKind::Low | RuleKind::LowLow | RuleKind::Rate
    );
    let limit = match r.limit {
        Some(l) if !l.is_finite() => {
            err(format!("{base}.limit"), "must be a finite number", None);
            ok = false;
            0.0
        }
        Some(l) if !threshold => {
            err(
                format!("{base}.limit"),
                &format!("is not used by `{}` rules", r.kind.as_str()),
                None,
            );
            ok = false;
            l
        }
        Some(l) => l,
        None if threshold => {
            err(
                format!("{base}.limit"),
                &format!("`{}` rules need a limit", r.kind.as_str()),
                Some("e.g. limit = 85.0"),
            );
            ok = false;
            0.0
        }
        None => 0.0,
    };
    if r.kind == RuleKind::Rate && limit <= 0.0 && r.limit.is_some() {
        err(
            format!("{base}.limit"),
            "a rate limit must be positive (use `direction` for falling values)",
            None,
        );
        ok = false;
    }
    if !(r.deadband.is_finite() && r.deadband >= 0.0) {
        err(
            format!("{base}.deadband"),
            "must be zero or a positive number",
            None,
        );
        ok = false;
    }
    let after_ms = ms(r.after);
    if r.kind == RuleKind::Stale && after_ms == 0 {
        err(
            format!("{base}.after"),
            "`stale` rules need `after`, the time without a good reading",
            Some("e.g. after = \"10m\" (longer than the sensor's reporting interval)"),
        );
        ok = false;
    }
    if r.kind != RuleKind::Stale && r.after.is_some() {
        err(
            format!("{base}.after"),
            "is only used by `stale` rules",
            None,
        );
        ok = false;
    }
    if r.kind != RuleKind::State && r.active_when.is_some() {
        err(
            format!("{base}.active_when"),
            "is only used by `state` rules",
            None,
        );
        ok = false;
    }
    if r.kind != RuleKind::Rate && (r.per.is_some() || r.direction != Direction::Both) {
        err(
            format!("{base}.per"),
            "`per` and `direction` are only used by `rate` rules",
            None,
        );
        ok = false;
    }
    if r.renotify
        .is_some_and(|d| d < std::time::Duration::from_secs(1))
    {
        err(
            format!("{base}.renotify"),
            "must be at least 1s",
            Some("e.g. renotify = \"30m\""),
        );
        ok = false;
    }
    let per_ms = r
        .per
        .map_or(60_000.0, |d| d.as_secs_f64() * 1000.0)
        .max(1.0);
    if let Some(m) = &r.message
        && let Err(e) = check_template(m)
    {
        err(format!("{base}.message"), &e, None);
        ok = false;
    }
    let severity = r.severity.unwrap_or(match r.kind {
        RuleKind::HighHigh | RuleKind::LowLow => Severity::High,
        RuleKind::State => Severity::High,
        _ => Severity::Medium,
    });
    ok.then(|| Rule {
        alert: r.alert.trim().to_owned(),
        kind: r.kind,
        sensor,
        floor: s.floor.clone(),
        room: s.room.clone(),
        sensor_kind: s.kind.clone(),
        limit,
        deadband: r.deadband,
        on_delay_ms: ms(r.on_delay),
        off_delay_ms: ms(r.keep_firing_for),
        severity,
        ack_required: r.ack_required,
        renotify_ms: r.renotify.map(|d| ms(Some(d)).max(1000)),
        active_when: r.active_when.unwrap_or(true),
        per_ms,
        direction: r.direction,
        after_ms,
        message: r.message.clone(),
    })
}

/// Placeholders a rule's message template may use.
const PLACEHOLDERS: &[&str] = &[
    "alert", "sensor", "name", "value", "unit", "limit", "floor", "room", "location", "severity",
];

/// Checks that a template only uses known placeholders and closes its braces.
///
/// # Errors
/// A description of the first problem.
pub fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("has a '{' without its '}'".into());
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}}; known: {}",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("boiler.*", "boiler.supply_temp"));
        assert!(glob("*.leak", "basement.leak"));
        assert!(glob("f?.r*.temperature", "f1.r101.temperature"));
        assert!(!glob("f?.r*.temperature", "f12.r101.temperature"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "abxxbyc"));
        assert!(!glob("a*b*c", "abxxbyd"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }

    fn info(id: &str, kind: &str, floor: &str) -> SensorInfo {
        SensorInfo {
            id: id.into(),
            kind: kind.into(),
            floor: Some(floor.into()),
            ..SensorInfo::default()
        }
    }

    #[test]
    fn selectors_combine_and_exact_rules_are_indexed() {
        let cfg: AlarmsConfig = toml::from_str(
            r#"
            [[rule]]
            alert = "Leak"
            kind = "state"
            match = { kind = "leak" }
            [[rule]]
            alert = "Hot"
            kind = "high"
            sensor = "boiler.supply_temp"
            limit = 85.0
            [[rule]]
            alert = "CellarCold"
            kind = "low"
            limit = 5.0
            match = { sensor = "*temp*", floor = "B" }
            "#,
        )
        .unwrap();
        let set = compile(&cfg, &[]).unwrap();
        assert_eq!(set.matching(&info("basement.leak", "leak", "B")), vec![0]);
        assert_eq!(
            set.matching(&info("boiler.supply_temp", "temperature", "B")),
            vec![1, 2]
        );
        assert_eq!(
            set.matching(&info("f1.temperature", "temperature", "1")),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn bad_rules_are_reported_with_their_paths() {
        let cfg: AlarmsConfig = toml::from_str(
            r#"
            [[rule]]
            alert = "NoLimit"
            kind = "high"
            sensor = "x"
            [[rule]]
            alert = "NoAfter"
            kind = "stale"
            sensor = "x"
            [[rule]]
            alert = "Nothing"
            kind = "state"
            [[rule]]
            alert = "NoLimit"
            kind = "low"
            sensor = "y"
            limit = 1.0
            message = "{bogus}"
            "#,
        )
        .unwrap();
        let errs = compile(&cfg, &[]).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"alarms.rule.0.limit"), "{paths:?}");
        assert!(paths.contains(&"alarms.rule.1.after"), "{paths:?}");
        assert!(paths.contains(&"alarms.rule.2.sensor"), "{paths:?}");
        assert!(paths.contains(&"alarms.rule.3.message"), "{paths:?}");
    }
}
