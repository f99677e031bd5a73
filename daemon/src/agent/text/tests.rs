use super::results::age;
use super::*;

#[test]
fn script_decides_the_language() {
    assert_eq!(script_lang("что с котлом?"), Some(Lang::Ru));
    assert_eq!(script_lang("any leaks?"), Some(Lang::En));
    assert_eq!(script_lang("301?"), None);
    assert_eq!(script_lang("/status"), None);
    assert_eq!(script_lang("/sensor котёл"), Some(Lang::Ru));
    assert_eq!(script_lang("CO2 в 301"), Some(Lang::Ru));
}

#[test]
fn ages_read_naturally() {
    assert_eq!(age(Lang::En, 30), "30 s ago");
    assert_eq!(age(Lang::En, 600), "10 min ago");
    assert_eq!(age(Lang::Ru, 7200), "2 ч назад");
    assert_eq!(age(Lang::En, 3 * 86_400), "3 d ago");
}

#[test]
fn prompts_and_templates_exist_in_both_languages() {
    for lang in [Lang::En, Lang::Ru] {
        assert!(system_prompt(lang, "Lenina 17", Some("Call Ivan.")).contains("Call Ivan."));
        assert!(question_with_time(lang, "301?", "2026-11-24T10:00:00Z").contains("10:00"));
        assert!(!answer_now(lang).is_empty());
        for reason in ["patience", "context", "tool_text", "timeout", "down"] {
            let other = match lang {
                Lang::En => Lang::Ru,
                Lang::Ru => Lang::En,
            };
            assert_ne!(offline_notice(lang, reason), offline_notice(other, reason));
        }
        assert!(help(lang).contains("/plan"));
    }
    assert!(system_prompt(Lang::Ru, "B", None).contains("по-русски"));
    assert_ne!(
        offline_notice(Lang::En, "down"),
        offline_notice(Lang::Ru, "down")
    );
}
