//! `transport.proxyURL` against real outbound proxies on 127.0.0.1: tinyproxy (HTTP CONNECT with Basic auth) and
//! microsocks (SOCKS5 with user/password), both from Debian (`scripts/apt-packages.txt`). An in-process
//! portway-server, a client engine whose server connection goes through the proxy, and an echo through a tcp proxy:
//! without and with tcpMux (a new proxied connection per work connection), a wrong password (a clear error that
//! names the proxy and never the password), a proxy that is not there, and `connectServerLocalIP`.
#![allow(clippy::unwrap_used)]

use portway_client::status::ConnState;
use portway_client::{ClientConfig, ClientHandle, ProxyState, SecretSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "../../server/tests/support/mod.rs"]
mod support;
use support::{
    free_port, spawn_logged, start_client_without_warnings, tcp_echo as echo_service, wait_for, wait_listening,
    LoggedProc, TestServer, T,
};

async fn start_server(mux: bool) -> TestServer {
    let toml = format!("bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\ntransport.tcpMux = {mux}\n");
    support::start_server_with(&toml).await.0
}

/// tinyproxy in the foreground with Basic auth alice / `pass`.
async fn tinyproxy(pass: &str) -> LoggedProc {
    let port = free_port();
    let conf = std::env::temp_dir().join(format!("portway-test-{}-tinyproxy-{port}.conf", std::process::id()));
    std::fs::write(
        &conf,
        format!("Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nBasicAuth alice {pass}\nLogLevel Info\n"),
    )
    .unwrap();
    let p = spawn_logged("tinyproxy", &["-d".into(), "-c".into(), conf.display().to_string()], port, "tinyproxy");
    wait_listening(port).await;
    p
}

/// microsocks with user alice / `pass`.
async fn microsocks(pass: &str) -> LoggedProc {
    let port = free_port();
    let args: Vec<String> =
        ["-i", "127.0.0.1", "-p", &port.to_string(), "-u", "alice", "-P", pass].iter().map(|s| s.to_string()).collect();
    let p = spawn_logged("microsocks", &args, port, "microsocks");
    wait_listening(port).await;
    p
}

fn client(server_port: u16, transport: &str, remote_port: u16, local_port: u16) -> ClientHandle {
    start_client_without_warnings(&format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {server_port}\nauth.token = \"t\"\nloginFailExit = false\n{transport}\n\n\
         [[proxies]]\nname = \"echo\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {local_port}\nremotePort = {remote_port}\n"
    ))
}

async fn echo(port: u16, data: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(data).await.unwrap();
    let mut got = vec![0u8; data.len()];
    tokio::time::timeout(T, s.read_exact(&mut got)).await.unwrap().unwrap();
    assert_eq!(got, data);
}

/// Connects through `proxy_url` with and without tcpMux; several echo connections each.
async fn tunnel_through(proxy_url: &str) {
    let local = echo_service().await;
    for mux in [true, false] {
        let server = start_server(mux).await;
        let server_port = server.port;
        let remote = free_port();
        let transport = format!(
            "transport.proxyURL = \"{proxy_url}\"\ntransport.tcpMux = {mux}\ntransport.dialServerKeepalive = 60\n"
        );
        let c = client(server_port, &transport, remote, local);
        wait_for(&c, "proxy running through the outbound proxy", |s| {
            matches!(s.proxies.get("echo").map(|p| &p.state), Some(ProxyState::Running { .. }))
        })
        .await;
        for i in 0..5u8 {
            echo(remote, &vec![i; 64 * 1024]).await;
        }
        c.cancel_token().cancel();
        drop(server);
    }
}

#[tokio::test]
async fn through_an_http_connect_proxy_with_basic_auth() {
    let p = tinyproxy("s3cret").await;
    tunnel_through(&format!("http://alice:s3cret@127.0.0.1:{}", p.port)).await;
    // The connections went through tinyproxy: it logged the CONNECTs.
    let log = p.log();
    assert!(log.contains("CONNECT"), "tinyproxy saw no CONNECT:\n{log}");
}

#[tokio::test]
async fn through_a_socks5_proxy_with_user_and_password() {
    let p = microsocks("s3cret").await;
    // microsocks logs nothing per connection: that the tunnel runs with microsocks on the path is shown by the
    // wrong-password test below failing at the proxy. Here: the tunnel works through it, mux and no mux.
    tunnel_through(&format!("socks5://alice:s3cret@127.0.0.1:{}", p.port)).await;
}

#[tokio::test]
async fn wrong_proxy_passwords_and_a_missing_proxy_are_named() {
    let server = start_server(true).await;
    let server_port = server.port;
    let http = tinyproxy("right-one").await;
    let socks = microsocks("right-one").await;
    let gone = free_port();
    let cases = [
        (format!("http://alice:wrong-one@127.0.0.1:{}", http.port), "refused the user and password"),
        (format!("http://127.0.0.1:{}", http.port), "asks for credentials (HTTP 401/407)"),
        (format!("socks5://alice:wrong-one@127.0.0.1:{}", socks.port), "refused the user and password"),
        (format!("socks5://127.0.0.1:{}", socks.port), "authentication methods"),
        (format!("socks5://127.0.0.1:{gone}"), "cannot reach the proxy"),
    ];
    for (url, expect) in cases {
        let c = client(server_port, &format!("transport.proxyURL = \"{url}\""), free_port(), 9);
        wait_for(&c, expect, |s| matches!(&s.conn, ConnState::Error { reason, .. } if reason.contains(expect))).await;
        let ConnState::Error { reason, .. } = c.status().conn else { unreachable!() };
        assert!(reason.contains("transport.proxyURL"), "the message should name the key: {reason}");
        assert!(!reason.contains("wrong-one") && !reason.contains("right-one"), "a password in a message: {reason}");
        c.cancel_token().cancel();
    }
    drop(server);
}

#[tokio::test]
async fn connect_server_local_ip_is_the_source_address() {
    // The server sees the client's connection come from 127.0.0.2 (any 127/8 address is local on Linux).
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let c =
        client(port, "transport.connectServerLocalIP = \"127.0.0.2\"\ntransport.tls.enable = false", free_port(), 9);
    let (_s, peer) = tokio::time::timeout(T, l.accept()).await.unwrap().unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.2");
    c.cancel_token().cancel();
}

#[test]
fn bad_values_are_refused_at_load() {
    let base = "serverAddr = \"127.0.0.1\"\nserverPort = 7000\n";
    for (line, expect) in [
        ("transport.proxyURL = \"ntlm://u:pw-xyz@proxy:8080\"", "not supported yet"),
        ("transport.proxyURL = \"proxy:8080\"", "transport.proxyURL"),
        ("transport.connectServerLocalIP = \"eth0\"", "transport.connectServerLocalIP"),
    ] {
        let e = ClientConfig::parse(&format!("{base}{line}\n"), "frpc.toml").unwrap_err().to_string();
        assert!(e.contains(expect), "{line}: {e}");
        assert!(!e.contains("pw-xyz"), "a password in a message: {e}");
    }
}

/// `portway-client check` follows the proxy too: DNS is left to the proxy, TCP goes through it, login succeeds; with
/// a wrong password the TCP step fails with code `proxy` and says what to check.
#[tokio::test]
async fn the_check_goes_through_the_proxy() {
    use portway_client::diagnose::{check, Outcome, StepKind};
    let server = start_server(true).await;
    let server_port = server.port;
    let p = tinyproxy("s3cret").await;
    for (pass, ok) in [("s3cret", true), ("nope", false)] {
        let toml = format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {server_port}\nauth.token = \"t\"\n\
             transport.proxyURL = \"http://alice:{pass}@127.0.0.1:{}\"\n",
            p.port
        );
        let cfg = ClientConfig::parse(&toml, "frpc.toml").unwrap().config;
        let steps = tokio::time::timeout(T, check(&cfg, &SecretSource::FromConfig)).await.unwrap();
        let step = |k: StepKind| steps.iter().find(|s| s.step == k).unwrap();
        assert_eq!(step(StepKind::Dns).code, "viaProxy", "{steps:#?}");
        let tcp = step(StepKind::Tcp);
        if ok {
            assert_eq!(tcp.outcome, Outcome::Ok, "{steps:#?}");
            assert!(tcp.summary.contains("through the proxy"), "{}", tcp.summary);
            assert_eq!(step(StepKind::Login).outcome, Outcome::Ok, "{steps:#?}");
        } else {
            assert_eq!((tcp.outcome, tcp.code.as_str()), (Outcome::Fail, "proxy"), "{steps:#?}");
            assert!(tcp.fix.contains("transport.proxyURL") && !format!("{steps:?}").contains("nope"), "{steps:#?}");
        }
    }
    drop(server);
}
