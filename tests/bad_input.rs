//! Bad input gets a clear error and nothing else breaks.

mod support;

use std::time::Duration;

use portway::client::{ConnState, ProxyState};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    init_logs();
    tokio::time::timeout(TEST_TIMEOUT, f).await.expect("test timed out");
}

fn proxy_error(s: &portway::client::Status, name: &str) -> Option<String> {
    match &s.proxies.get(name)?.state {
        ProxyState::Error { reason } => Some(reason.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn wrong_token_is_refused_and_login_fail_exit_stops_the_client() {
    bounded(async {
        let server = start_server(&server_toml(""), 0).await;
        let toml = client_toml(server.addr.port(), "", "").replace("loginFailExit = false", "loginFailExit = true");
        let mut cfg = client_config(&toml);
        cfg.auth.token = "wrong-token".into();
        let err = start_client(cfg).wait().await.expect_err("login must fail");
        let msg = err.to_string();
        assert!(msg.contains("login refused") && msg.contains("auth.token does not match"), "{msg}");
        assert!(!msg.contains("wrong-token") && !msg.contains("test-token"), "secrets must not appear: {msg}");
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn wrong_token_with_login_fail_exit_false_keeps_retrying() {
    bounded(async {
        let server = start_server(&server_toml(""), 0).await;
        let mut cfg = client_config(&client_toml(server.addr.port(), "", ""));
        cfg.auth.token = "wrong-token".into();
        let h = start_client(cfg);
        let s = wait_status(&h, Duration::from_secs(10), "an error with a retry", |s| {
            matches!(&s.conn, ConnState::Error { retry_in: Some(_), .. })
        })
        .await;
        let ConnState::Error { reason, .. } = s.conn else { unreachable!() };
        assert!(reason.contains("auth.token does not match"), "{reason}");
        wait_status(
            &h,
            Duration::from_secs(10),
            "a second attempt",
            |s| matches!(s.conn, ConnState::Connecting { attempt } if attempt >= 2),
        )
        .await;
        h.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn taken_port_refuses_that_proxy_and_the_others_run() {
    bounded(async {
        let (echo, _e) = echo_server().await;
        let server = start_server(&server_toml(""), 0).await;
        let occupied = std::net::TcpListener::bind("127.0.0.1:0").expect("occupy");
        let taken = occupied.local_addr().expect("addr").port();
        let ok = free_port();
        let proxies = tcp_proxy("taken", echo, taken, "") + &tcp_proxy("fine", echo, ok, "");
        let h = start_client(client_config(&client_toml(server.addr.port(), "", &proxies)));
        let s = wait_status(&h, Duration::from_secs(20), "one refused, one running", |s| {
            proxy_error(s, "taken").is_some() && matches!(s.proxies["fine"].state, ProxyState::Running { .. })
        })
        .await;
        let reason = proxy_error(&s, "taken").expect("reason");
        assert!(reason.contains(&format!("remote port {taken} cannot be opened")), "{reason}");
        assert_eq!(echo_through(ok, b"still works").await.expect("fine proxy"), sha256(b"still works"));
        h.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn allow_ports_and_max_ports_per_client_are_enforced() {
    bounded(async {
        let (echo, _e) = echo_server().await;
        let allowed = free_port();
        let other = free_port();
        let extra = free_port();
        let server = start_server(
            &server_toml(&format!(
                "maxPortsPerClient = 1\nallowPorts = [{{ single = {allowed} }}, {{ single = {extra} }}]"
            )),
            0,
        )
        .await;
        let proxies = tcp_proxy("a", echo, allowed, "") + &tcp_proxy("b", echo, other, "");
        let h = start_client(client_config(&client_toml(server.addr.port(), "", &proxies)));
        let s = wait_status(&h, Duration::from_secs(20), "a running, b refused", |s| {
            proxy_error(s, "b").is_some() && matches!(s.proxies["a"].state, ProxyState::Running { .. })
        })
        .await;
        assert!(proxy_error(&s, "b").expect("b").contains(&format!("remote port {other} is not allowed")));
        h.stop().await.expect("stop");

        // With one port already held, a second allowed port is refused by maxPortsPerClient.
        let proxies = tcp_proxy("c", echo, allowed, "") + &tcp_proxy("d", echo, extra, "");
        let h = start_client(client_config(&client_toml(server.addr.port(), "", &proxies)));
        let s = wait_status(&h, Duration::from_secs(20), "one refused by maxPortsPerClient", |s| {
            proxy_error(s, "c").is_some() || proxy_error(s, "d").is_some()
        })
        .await;
        let reason = proxy_error(&s, "c").or_else(|| proxy_error(&s, "d")).expect("reason");
        assert!(reason.contains("maxPortsPerClient"), "{reason}");
        h.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn duplicate_proxy_name_across_clients_is_refused() {
    bounded(async {
        let (echo, _e) = echo_server().await;
        let server = start_server(&server_toml(""), 0).await;
        let h1 = start_client(client_config(&client_toml(
            server.addr.port(),
            "",
            &tcp_proxy("same", echo, free_port(), ""),
        )));
        wait_running(&h1, &["same"]).await;
        let h2 = start_client(client_config(&client_toml(
            server.addr.port(),
            "",
            &tcp_proxy("same", echo, free_port(), ""),
        )));
        let s = wait_status(&h2, Duration::from_secs(20), "refusal", |s| proxy_error(s, "same").is_some()).await;
        assert!(proxy_error(&s, "same").expect("reason").contains("proxy [same] already exists"));
        h1.stop().await.expect("stop");
        h2.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn local_service_down_closes_the_visitor_and_the_proxy_stays_up() {
    bounded(async {
        let server = start_server(&server_toml(""), 0).await;
        let local = free_port();
        let remote = free_port();
        let h = start_client(client_config(&client_toml(server.addr.port(), "", &tcp_proxy("svc", local, remote, ""))));
        wait_running(&h, &["svc"]).await;
        let mut v = TcpStream::connect(("127.0.0.1", remote)).await.expect("visitor connects");
        let _ = v.write_all(b"anyone?").await;
        let mut b = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(15), v.read(&mut b)).await.expect("visitor closed promptly");
        assert!(matches!(n, Ok(0) | Err(_)), "visitor must be closed, got {n:?}");
        // The service comes up on that port: the same proxy now works.
        let l = tokio::net::TcpListener::bind(("127.0.0.1", local)).await.expect("bind local");
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = c.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        assert!(matches!(h.status().proxies["svc"].state, ProxyState::Running { .. }));
        assert_eq!(echo_through(remote, b"now up").await.expect("after service start"), sha256(b"now up"));
        h.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

/// Sends `bytes` on a fresh connection and checks the server drops it.
async fn dropped_after(addr: std::net::SocketAddr, bytes: &[u8]) {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    let _ = c.write_all(bytes).await;
    let mut b = [0u8; 64];
    let mut total = 0;
    let r = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match c.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    assert!(r.is_ok(), "server kept a connection that sent {:?}", &bytes[..bytes.len().min(16)]);
    assert!(total < 64, "server should not answer garbage at length");
}

#[tokio::test]
async fn malformed_and_oversized_frames_and_non_frp_bytes_are_dropped() {
    bounded(async {
        let (echo, _e) = echo_server().await;
        for (server_extra, client_extra) in
            [("", ""), ("transport.tcpMux = false", "transport.tcpMux = false\ntransport.tls.enable = false")]
        {
            let server = start_server(&server_toml(server_extra), 0).await;
            let mut oversized = vec![b'o'];
            oversized.extend_from_slice(&100_000i64.to_be_bytes());
            oversized.extend_from_slice(&[b'{'; 64]);
            let mut bad_json = vec![b'o'];
            bad_json.extend_from_slice(&5i64.to_be_bytes());
            bad_json.extend_from_slice(b"{]]]}");
            // A yamux header with a wrong version, a bogus type byte, HTTP that is not the frp upgrade, a broken TLS hello.
            for junk in [
                oversized.clone(),
                bad_json,
                b"\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec(),
                b"Z\x00\x00\x00\x00\x00\x00\x00\x02{}".to_vec(),
                b"\x16\x03\x01\x00\x05hello".to_vec(),
                b"\xff\xfe\xfd not frp at all".to_vec(),
            ] {
                dropped_after(server.addr, &junk).await;
            }
            if server_extra.is_empty() {
                // Inside a valid yamux stream, an oversized frame is dropped too.
                let mut y = vec![0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
                y.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, oversized.len() as u8]);
                y.extend_from_slice(&oversized);
                let mut c = TcpStream::connect(server.addr).await.expect("connect");
                c.write_all(&y).await.expect("write");
                let mut b = [0u8; 256];
                let mut got = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Ok(n) = c.read(&mut b).await {
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&b[..n]);
                        // ACK (12 bytes) then the FIN of the dropped stream (12 bytes).
                        if got.len() >= 24 {
                            break;
                        }
                    }
                })
                .await;
                assert!(got.len() >= 24, "expected ACK and FIN, got {got:?}");
                assert_eq!(&got[..4], &[0, 1, 0, 2], "stream ACK");
                assert_eq!(&got[12..16], &[0, 1, 0, 4], "stream FIN after the oversized frame");
            }
            // The server still serves a real client.
            let remote = free_port();
            let h = start_client(client_config(&client_toml(
                server.addr.port(),
                client_extra,
                &tcp_proxy("web", echo, remote, ""),
            )));
            wait_running(&h, &["web"]).await;
            assert_eq!(echo_through(remote, b"ok").await.expect("traffic"), sha256(b"ok"));
            h.stop().await.expect("stop");
            server.shutdown().await;
        }
    })
    .await
}

#[tokio::test]
async fn unreachable_server_says_so() {
    bounded(async {
        let port = free_port();
        let toml = client_toml(port, "", "").replace("loginFailExit = false", "loginFailExit = true");
        let err = start_client(client_config(&toml)).wait().await.expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains(&format!("cannot connect to the server at 127.0.0.1:{port}")), "{msg}");
    })
    .await
}

#[tokio::test]
async fn tls_force_refuses_plain_clients() {
    bounded(async {
        let (echo, _e) = echo_server().await;
        let server = start_server(&server_toml("transport.tls.force = true"), 0).await;
        let remote = free_port();
        let plain =
            client_toml(server.addr.port(), "transport.tls.enable = false", &tcp_proxy("web", echo, remote, ""))
                .replace("loginFailExit = false", "loginFailExit = true");
        assert!(start_client(client_config(&plain)).wait().await.is_err(), "plain client must be refused");
        let tls = client_toml(server.addr.port(), "", &tcp_proxy("web", echo, remote, ""));
        let h = start_client(client_config(&tls));
        wait_running(&h, &["web"]).await;
        h.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn repeated_failed_logins_from_one_address_are_throttled() {
    bounded(async {
        let server = start_server(&server_toml("[portway]\nmaxLoginFailures = 3"), 0).await;
        let once = |token: &str| {
            let mut cfg = client_config(
                &client_toml(server.addr.port(), "", "").replace("loginFailExit = false", "loginFailExit = true"),
            );
            cfg.auth.token = token.to_string();
            start_client(cfg)
        };
        for _ in 0..3 {
            let e = once("wrong").wait().await.expect_err("wrong token").to_string();
            assert!(e.contains("auth.token does not match"), "{e}");
        }
        // Now even the right token is refused from this address (for the rest of the minute).
        let e = once("test-token").wait().await.expect_err("throttled").to_string();
        assert!(e.contains("closed the connection") || e.contains("reset by peer"), "{e}");
        server.shutdown().await;
    })
    .await
}
