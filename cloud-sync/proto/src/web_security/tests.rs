use super::*;

fn limits() -> LoginLimits {
    LoginLimits {
        free_failures_per_ip: 4,
        free_failures_per_account: 2,
        window: Duration::from_secs(60),
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(8),
    }
}

#[test]
fn compares_in_constant_time_shape() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
    assert!(!constant_time_eq(b"a", b""));
}

#[test]
fn cookies_parse_and_format() {
    let sent = ["a=1; markoff_session=xyz; b=2", "c=3"];
    assert_eq!(cookie(sent, "markoff_session"), Some("xyz"));
    assert_eq!(cookie(sent, "c"), Some("3"));
    assert_eq!(cookie(sent, "d"), None);
    assert_eq!(
        cookie(["markoff_lan="], "markoff_lan"),
        None,
        "empty is absent"
    );
    assert_eq!(cookie([], "a"), None);
    assert_eq!(
        set_cookie("n", "v", Some(Duration::from_secs(60)), true),
        "n=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
    );
    assert_eq!(
        set_cookie("n", "v", Some(Duration::from_secs(60)), false),
        "n=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict"
    );
    assert!(set_cookie("n", "", None, false).contains("Max-Age=0"));
}

#[test]
fn cross_origin_posts_are_refused() {
    let host = Some("gw:8080");
    assert!(
        same_origin(None, host, None),
        "no Origin: the CSRF token decides"
    );
    assert!(same_origin(Some("http://gw:8080"), host, None));
    assert!(same_origin(
        Some("https://GW:8080"),
        host,
        Some("same-origin")
    ));
    assert!(!same_origin(Some("http://evil.example"), host, None));
    assert!(!same_origin(Some("http://gw:8081"), host, None));
    assert!(!same_origin(Some("null"), host, None));
    assert!(!same_origin(Some("http://gw:8080"), None, None));
    assert!(!same_origin(None, host, Some("cross-site")));
    assert!(!same_origin(
        Some("http://gw:8080"),
        host,
        Some("same-site")
    ));
}

#[test]
fn accounts_wait_after_their_free_failures_and_the_wait_doubles() {
    let l = LoginLimiter::new(limits());
    let t0 = Instant::now();
    let ip: IpAddr = [10, 0, 0, 1].into();
    assert!(l.check(ip, "ivan", t0).is_ok());
    assert_eq!(l.failed(ip, "ivan", t0), None);
    assert_eq!(l.failed(ip, "ivan", t0), None);
    assert_eq!(l.failed(ip, "ivan", t0), Some(Duration::from_secs(1)));
    assert_eq!(l.check(ip, "ivan", t0), Err(Duration::from_secs(1)));
    // Another account from another address is not affected.
    assert!(l.check([10, 0, 0, 2].into(), "olga", t0).is_ok());
    let t1 = t0 + Duration::from_secs(1);
    assert!(l.check(ip, "ivan", t1).is_ok());
    assert_eq!(l.failed(ip, "ivan", t1), Some(Duration::from_secs(2)));
    let t2 = t1 + Duration::from_secs(2);
    assert_eq!(l.failed(ip, "ivan", t2), Some(Duration::from_secs(4)));
    let t3 = t2 + Duration::from_secs(4);
    assert_eq!(l.failed(ip, "ivan", t3), Some(Duration::from_secs(8)));
    let t4 = t3 + Duration::from_secs(8);
    assert_eq!(
        l.failed(ip, "ivan", t4),
        Some(Duration::from_secs(8)),
        "capped"
    );
    let s = l.stats(t4);
    assert_eq!((s.failures, s.refused, s.blocked_accounts), (7, 1, 1));
    assert_eq!(
        s.blocked_ips, 1,
        "the address is past its 4 free failures too"
    );
    // Success forgets the account's failures.
    l.succeeded("ivan");
    assert_eq!(l.stats(t4).blocked_accounts, 0);
}

#[test]
fn addresses_are_limited_across_accounts_and_windows_expire() {
    let l = LoginLimiter::new(limits());
    let t0 = Instant::now();
    let ip: IpAddr = [10, 0, 0, 9].into();
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        assert_eq!(l.failed(ip, name, t0), None, "failure {i}");
    }
    assert_eq!(l.failed(ip, "e", t0), Some(Duration::from_secs(1)));
    assert!(l.check(ip, "f", t0).is_err());
    assert!(l.check([10, 0, 0, 10].into(), "f", t0).is_ok());
    // A minute later the window has passed: counting starts again.
    let later = t0 + Duration::from_secs(61);
    assert!(l.check(ip, "f", later).is_ok());
    assert_eq!(l.failed(ip, "f", later), None);
}

#[test]
fn logins_without_an_account_count_against_the_address_only() {
    let l = LoginLimiter::new(limits());
    let t0 = Instant::now();
    let ip: IpAddr = [192, 0, 2, 7].into();
    for i in 0..4 {
        assert_eq!(l.failed(ip, "", t0), None, "failure {i}");
    }
    assert_eq!(l.failed(ip, "", t0), Some(Duration::from_secs(1)));
    assert_eq!(l.check(ip, "", t0), Err(Duration::from_secs(1)));
    assert!(l.check([192, 0, 2, 8].into(), "", t0).is_ok());
    assert_eq!(l.stats(t0).blocked_accounts, 0);
}
