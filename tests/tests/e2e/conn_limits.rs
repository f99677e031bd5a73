//! Connection hygiene: 2,000 half-open connections (connected, never sending a byte) held against
//! the local API and the LAN page of a daemon limited to 1,024 file descriptors (a default
//! service's limit) do not stop the page, the API or `markoff status` from answering, and the
//! connections closed to stay under the cap are counted.

use std::net::SocketAddr;
use std::time::Duration;

use markoff_tests::{TempGateway, assert_eventually, metric_in, run_markoff};

const LAN_TOKEN: &str = "conn-limits-lan-token-4e9a";

fn addr_of(url: &str) -> SocketAddr {
    url.trim()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{url:?} is not an address: {e}"))
}

#[tokio::test]
async fn two_thousand_half_open_connections_leave_the_page_the_api_and_status_answering() {
    let gw = TempGateway::builder()
        .extra_toml(
            "[[users]]\nlogin = \"ivan\"\nrole = \"operator\"\n\n\
             [lan]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\n\
             [[lan.token]]\nuser = \"ivan\"\ntoken_env = \"MARKOFF_TEST_LAN_TOKEN\"\n",
        )
        .env("MARKOFF_TEST_LAN_TOKEN", LAN_TOKEN)
        .start()
        .await;
    let out = std::process::Command::new("prlimit")
        .args(["--pid", &gw.pid().to_string(), "--nofile=1024:1024"])
        .output()
        .expect("run prlimit");
    assert!(
        out.status.success(),
        "prlimit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lan_file = gw.dir().join("markoff.lan");
    assert_eventually!(lan_file.exists(), "no LAN page address:\n{}", gw.log());
    let lan = addr_of(&std::fs::read_to_string(&lan_file).expect("read markoff.lan"));
    let api = addr_of(gw.api_url());

    let mut held = Vec::with_capacity(2000);
    for i in 0..2000 {
        let target = if i % 2 == 0 { api } else { lan };
        let conn = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect(target),
        )
        .await
        .unwrap_or_else(|_| panic!("connection {i} to {target} hung"))
        .unwrap_or_else(|e| panic!("connection {i} to {target}: {e}"));
        held.push(conn);
    }

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client");
    let health = http
        .get(format!("http://{api}/health"))
        .send()
        .await
        .expect("/health answers while 2000 connections are held");
    assert_eq!(health.status(), 200);
    let page = http
        .get(format!("http://{lan}/"))
        .send()
        .await
        .expect("the LAN page answers while 2000 connections are held");
    assert_eq!(page.status(), 200);
    let status = run_markoff(&["status", "--api", gw.api_url()]).await;
    assert_eq!(
        status.status.code(),
        Some(0),
        "markoff status: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("ready"));

    let metrics = gw.metrics_text().await;
    for listener in ["api", "lan"] {
        let shed = metric_in(
            &metrics,
            &format!("markoff_http_connections_shed_total{{listener=\"{listener}\"}}"),
        )
        .unwrap_or(0.0);
        assert!(shed >= 700.0, "{listener}: {shed} shed\n{metrics}");
    }
    assert!(
        gw.log().lines().all(|l| !l.contains("Cannot accept")),
        "{}",
        gw.log()
    );
    drop(held);
}
