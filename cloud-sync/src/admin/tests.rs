use super::migrate::MIGRATIONS;
use super::*;

#[test]
fn embedded_migrations_match_the_directory() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/central");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    let listed: Vec<String> = MIGRATIONS
        .iter()
        .map(|(v, d, _)| format!("{v:04}_{d}.sql"))
        .collect();
    assert_eq!(files, listed);
}

#[test]
fn ids_roles_and_passwords_are_checked() {
    assert!(check_gateway_id("lenina-17").is_ok());
    assert!(check_gateway_id("").is_err());
    assert!(check_gateway_id("a b").is_err());
    assert!(check_role(&default_role("lenina-17")).is_ok());
    assert!(check_role(&"x".repeat(64)).is_err());
    assert!(check_role("pg_monitor").is_err());
    assert!(check_password(&Password::generate()).is_ok());
    assert!(check_password(&Password::new("short")).is_err());
    assert!(check_password(&Password::new("with space and long")).is_err());
    assert_eq!(
        format!("{:?}", Password::new("secret")),
        "Password(<redacted>)"
    );
}

#[test]
fn gateway_urls_drop_the_admin_credentials() {
    let u = |s| gateway_url(s, "markoff_gw_a-1");
    assert_eq!(
        u("postgres://admin:s3cr%40t@db.example:5432/markoff?sslmode=verify-full").unwrap(),
        "postgres://markoff_gw_a-1@db.example:5432/markoff"
    );
    assert_eq!(
        u("postgresql://db/markoff").unwrap(),
        "postgresql://markoff_gw_a-1@db/markoff"
    );
    assert_eq!(
        u("postgres://h?connect_timeout=3").unwrap(),
        "postgres://markoff_gw_a-1@h"
    );
    assert_eq!(
        gateway_url("postgres://h/d", "a b").unwrap(),
        "postgres://a%20b@h/d"
    );
    assert_eq!(u("mysql://h/d"), None);
}

#[test]
fn quoting() {
    assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    assert_eq!(quote_literal("it's"), "'it''s'");
}
