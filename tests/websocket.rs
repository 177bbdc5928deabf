//! frp's WebSocket transports end to end: `websocket` (TLS inside), `wss` (TLS outside, terminated by Portway or by
//! nginx), through a real nginx reverse proxy, and hostile WebSocket input.

mod support;

use std::time::Duration;

use support::pki::Pki;
use support::scenarios::{bulk, concurrent, restart};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    init_logs();
    tokio::time::timeout(TEST_TIMEOUT, f).await.expect("test timed out");
}

const WS_TLS: &str = "transport.protocol = \"websocket\"";
const WS_PLAIN: &str = "transport.protocol = \"websocket\"\ntransport.tls.enable = false";

fn wss_client(pki: &Pki) -> String {
    format!("transport.protocol = \"wss\"\ntransport.tls.trustedCaFile = \"{}\"", pki.ca.display())
}

fn tls_server(pki: &Pki) -> String {
    format!("transport.tls.certFile = \"{}\"\ntransport.tls.keyFile = \"{}\"", pki.cert.display(), pki.key.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_with_inner_tls_bulk_64mib() {
    bounded(bulk(WS_TLS, "", "")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_plain_without_mux_bulk_64mib() {
    bounded(bulk(&format!("{WS_PLAIN}\ntransport.tcpMux = false"), "transport.tcpMux = false", "")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_terminated_by_portway_bulk_64mib() {
    let pki = Pki::new();
    bounded(bulk(&wss_client(&pki), &tls_server(&pki), "transport.useEncryption = true")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_two_hundred_concurrent() {
    bounded(concurrent(WS_TLS, "", 200)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_two_hundred_concurrent() {
    let pki = Pki::new();
    bounded(concurrent(&wss_client(&pki), &tls_server(&pki), 200)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_server_restart() {
    bounded(restart(WS_TLS, "")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_server_restart() {
    let pki = Pki::new();
    bounded(restart(&wss_client(&pki), &tls_server(&pki))).await
}

#[tokio::test]
async fn wss_refuses_an_unverifiable_server_certificate() {
    bounded(async {
        // The server's certificate is self-signed (none configured); wss verifies by default.
        let server = start_server(&server_toml(""), 0).await;
        let toml = client_toml(server.addr.port(), "transport.protocol = \"wss\"", "")
            .replace("loginFailExit = false", "loginFailExit = true");
        let err = start_client(client_config(&toml)).wait().await.expect_err("must refuse");
        let msg = err.to_string();
        assert!(msg.contains("TLS handshake") && msg.to_lowercase().contains("certificate"), "{msg}");
        server.shutdown().await;
    })
    .await
}

async fn through_nginx(client_extra: String, server_extra: &str, nginx_tls: Option<&Pki>) {
    let (echo, _e) = echo_server().await;
    let server = start_server(&server_toml(server_extra), 0).await;
    let nginx =
        support::nginx::Nginx::start(server.addr.port(), nginx_tls.map(|p| (p.cert.as_path(), p.key.as_path()))).await;
    let remote = free_port();
    let h = start_client(client_config(&client_toml(nginx.port, &client_extra, &tcp_proxy("web", echo, remote, ""))));
    wait_running(&h, &["web"]).await;
    let data = pattern(8 * 1024 * 1024, 3);
    assert_eq!(echo_through(remote, &data).await.expect("through nginx"), sha256(&data));
    h.stop().await.expect("stop");
    // nginx logs a request when it ends: after the client stopped.
    let mut log = String::new();
    for _ in 0..50 {
        log = nginx.access_log();
        if log.contains("GET /~!frp HTTP/1.1\" 101") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(log.contains("GET /~!frp HTTP/1.1\" 101"), "nginx must have carried the upgrade: {log}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_through_nginx_reverse_proxy() {
    bounded(through_nginx(WS_TLS.to_string(), "", None)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_terminated_by_nginx_as_in_front_of_frps() {
    let pki = Pki::new();
    bounded(through_nginx(wss_client(&pki), "", Some(&pki))).await
}

/// Writes `bytes` on a fresh connection and reads until the server closes it; returns what came back.
async fn closed_after(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    c.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(15), c.read_to_end(&mut out)).await;
    assert!(r.is_ok(), "the server kept a hostile websocket connection open");
    out
}

const UPGRADE: &str = "GET /~!frp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

#[tokio::test]
async fn malformed_handshakes_text_and_oversized_frames_close_only_that_connection() {
    bounded(async {
        let (echo, _e) = echo_server().await;
        let server = start_server(&server_toml(""), 0).await;
        // Wrong path: 404.
        let out = closed_after(server.addr, UPGRADE.replace("/~!frp", "/other").as_bytes()).await;
        assert!(out.starts_with(b"HTTP/1.1 404"), "{}", String::from_utf8_lossy(&out));
        // Not an upgrade at all.
        let out = closed_after(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(out.is_empty() || out.starts_with(b"HTTP/1.1 4"), "{}", String::from_utf8_lossy(&out));
        // A masked text frame after a good upgrade.
        let mut text = UPGRADE.as_bytes().to_vec();
        text.extend_from_slice(&[0x81, 0x85, 1, 2, 3, 4]);
        text.extend(b"hello".iter().enumerate().map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]));
        let out = closed_after(server.addr, &text).await;
        // The 101 may be lost to the reset that closing a connection with unread input causes; what matters is
        // that the connection is closed (closed_after bounds it) and the server goes on serving.
        assert!(out.is_empty() || out.starts_with(b"HTTP/1.1 101"), "{:?}", String::from_utf8_lossy(&out));
        // An oversized binary frame header (2^40 bytes).
        let mut big = UPGRADE.as_bytes().to_vec();
        big.extend_from_slice(&[0x82, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        let out = closed_after(server.addr, &big).await;
        assert!(out.is_empty() || out.starts_with(b"HTTP/1.1 101"), "{:?}", String::from_utf8_lossy(&out));
        // The server still serves a real websocket client.
        let remote = free_port();
        let h =
            start_client(client_config(&client_toml(server.addr.port(), WS_TLS, &tcp_proxy("web", echo, remote, ""))));
        wait_running(&h, &["web"]).await;
        assert_eq!(echo_through(remote, b"fine").await.expect("traffic"), sha256(b"fine"));
        h.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}
