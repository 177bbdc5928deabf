//! Faults survived without a human: server and client processes killed with SIGKILL and restarted, a network
//! stall detected by heartbeats, the OIDC provider down and back, the local service down and back. After each,
//! every proxy works again and concurrent connections each get back exactly their own bytes.

mod support;

use std::time::Duration;

use portway::client::{ConnState, ProxyState, Status};
use support::oidc::{OidcOptions, OidcProvider, CLIENT_ID, CLIENT_SECRET};
use support::process::{wait_listening, Proc};
use support::relay::Relay;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    init_logs();
    // Building the binaries (once per test process) is not part of any test's time.
    tokio::task::spawn_blocking(|| support::process::bin("portway-server")).await.expect("build binaries");
    tokio::time::timeout(TEST_TIMEOUT, f).await.expect("test timed out");
}

fn run_id(s: &Status) -> String {
    match &s.conn {
        ConnState::Connected { run_id, .. } => run_id.clone(),
        other => panic!("not connected: {other:?}"),
    }
}

fn conn_error(s: &Status) -> Option<String> {
    match &s.conn {
        ConnState::Error { reason, .. } => Some(reason.clone()),
        _ => None,
    }
}

/// A visitor connection with an exchange done, to be broken by the fault.
async fn open_visitor(port: u16) -> TcpStream {
    let mut v = TcpStream::connect(("127.0.0.1", port)).await.expect("visitor connects");
    v.write_all(b"before the fault").await.expect("visitor writes");
    let mut b = [0u8; 16];
    v.read_exact(&mut b).await.expect("visitor gets its echo");
    assert_eq!(&b, b"before the fault");
    v
}

/// The visitor is closed (EOF or error) within a bound, not left hanging.
async fn assert_closed(mut v: TcpStream, what: &str) {
    let mut b = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match v.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(r.is_ok(), "{what}: the visitor connection was left open");
}

/// Waits (bounded) until nothing accepts on public `port` any more: the server has freed it.
async fn wait_port_closed(port: u16, within: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "{what}: public port {port} still open after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Both proxies echo, 8 concurrent connections each, every one getting back exactly its own bytes.
async fn both_isolated(a: u16, b: u16, round: u64) {
    tokio::join!(echo_isolated(a, 8, round * 2), echo_isolated(b, 8, round * 2 + 1));
}

// ---- a. server killed with SIGKILL and restarted -------------------------------------------------------------

async fn server_sigkill(server_extra: &str, client_extra: &str) {
    let (e1, _e1) = echo_server().await;
    let (e2, _e2) = echo_server().await;
    let port = free_port();
    let cfg = format!("{}bindPort = {port}\n", server_toml(server_extra));
    let mut srv = Proc::spawn("portway-server", &cfg);
    wait_listening(port, Duration::from_secs(30)).await;
    let (r1, r2) = (free_port(), free_port());
    let proxies = tcp_proxy("a", e1, r1, "") + &tcp_proxy("b", e2, r2, "");
    let h = start_client(client_config(&client_toml(port, client_extra, &proxies)));
    let first = wait_running(&h, &["a", "b"]).await;
    both_isolated(r1, r2, 1).await;
    let visitor = open_visitor(r1).await;

    srv.kill9();
    assert_closed(visitor, "server killed").await;
    wait_status(&h, Duration::from_secs(10), "the client to notice", |s| !s.is_connected()).await;
    assert!(echo_through(r1, b"x").await.is_err(), "nothing may answer on the public port while the server is dead");

    let srv2 = Proc::spawn("portway-server", &cfg);
    let second = wait_running(&h, &["a", "b"]).await;
    both_isolated(r1, r2, 2).await;
    assert_eq!(run_id(&first), run_id(&second), "the client re-registers under its run_id");
    let log = srv2.wait_log("client logged in", Duration::from_secs(5)).await;
    assert!(log.contains("proxy started"), "{log}");
    h.stop().await.expect("client stops");
    drop(srv2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_with_sigkill_and_restarted_client_reregisters_and_traffic_flows() {
    bounded(server_sigkill("", "")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_with_sigkill_and_restarted_without_mux_client_reregisters() {
    bounded(server_sigkill("transport.tcpMux = false", "transport.tcpMux = false")).await
}

// ---- b. client killed with SIGKILL and restarted -------------------------------------------------------------

async fn client_sigkill(server_extra: &str, client_extra: &str) {
    let (e1, _e1) = echo_server().await;
    let (e2, _e2) = echo_server().await;
    let server = start_server(&server_toml(server_extra), 0).await;
    let (r1, r2) = (free_port(), free_port());
    let proxies = tcp_proxy("a", e1, r1, "") + &tcp_proxy("b", e2, r2, "");
    let cfg = client_toml(server.addr.port(), client_extra, &proxies);
    let mut client = Proc::spawn("portway-client", &cfg);
    wait_echo(r1, Duration::from_secs(30)).await;
    wait_echo(r2, Duration::from_secs(30)).await;
    both_isolated(r1, r2, 1).await;
    let visitor = open_visitor(r2).await;

    client.kill9();
    assert_closed(visitor, "client killed").await;
    // The server notices the dead client and frees its ports and proxy names, without waiting for a heartbeat
    // timeout (the kernel closed the client's connection).
    wait_port_closed(r1, Duration::from_secs(10), "client killed").await;
    wait_port_closed(r2, Duration::from_secs(10), "client killed").await;

    // A new process (a new run_id) registers the same names and ports.
    let client2 = Proc::spawn("portway-client", &cfg);
    wait_echo(r1, Duration::from_secs(20)).await;
    wait_echo(r2, Duration::from_secs(20)).await;
    both_isolated(r1, r2, 2).await;
    let log = client2.log();
    assert!(!log.contains("already exists"), "the old session's proxies were not freed:\n{log}");
    drop(client2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_killed_with_sigkill_frees_its_ports_and_a_restarted_client_takes_them_again() {
    bounded(client_sigkill("", "")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_killed_with_sigkill_without_mux_frees_its_ports() {
    bounded(client_sigkill("transport.tcpMux = false", "transport.tcpMux = false")).await
}

// ---- c. network stall ----------------------------------------------------------------------------------------

/// The relay between client and server stops forwarding without closing anything. The client must detect it
/// (its reason containing `client_reason`), the server must drop the session (its public ports close), and once
/// the relay forwards again the client is back without a human.
async fn stall(server_extra: &str, client_extra: &str, client_reason: &str) {
    let (e1, _e1) = echo_server().await;
    let (e2, _e2) = echo_server().await;
    let server = start_server(&server_toml(server_extra), 0).await;
    let relay = Relay::start(server.addr).await;
    let (r1, r2) = (free_port(), free_port());
    let proxies = tcp_proxy("a", e1, r1, "") + &tcp_proxy("b", e2, r2, "");
    let extra = format!("{client_extra}\ntransport.dialServerTimeout = 2");
    let h = start_client(client_config(&client_toml(relay.port(), &extra, &proxies)));
    wait_running(&h, &["a", "b"]).await;
    both_isolated(r1, r2, 1).await;

    relay.stall();
    let s =
        wait_status(&h, Duration::from_secs(30), "the client to detect the stall", |s| conn_error(s).is_some()).await;
    let reason = conn_error(&s).expect("reason");
    assert!(reason.contains(client_reason), "client's reason: {reason}");
    // The server detects it too and frees the public ports.
    wait_port_closed(r1, Duration::from_secs(30), "stalled client").await;
    wait_port_closed(r2, Duration::from_secs(5), "stalled client").await;

    relay.resume();
    wait_running(&h, &["a", "b"]).await;
    both_isolated(r1, r2, 2).await;
    h.stop().await.expect("client stops");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_stall_without_mux_is_detected_by_heartbeat_timeout_and_recovered() {
    bounded(stall(
        "transport.tcpMux = false\ntransport.heartbeatTimeout = 3",
        "transport.tcpMux = false\ntransport.heartbeatInterval = 1\ntransport.heartbeatTimeout = 3",
        "no heartbeat answer",
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_stall_with_mux_is_detected_by_yamux_keepalive_and_recovered() {
    bounded(stall("transport.tcpMuxKeepaliveInterval = 1", "transport.tcpMuxKeepaliveInterval = 1", "keepalive")).await
}

// ---- d. OIDC provider down and back --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_down_keeps_sessions_and_a_relogin_after_expiry_recovers_when_it_is_back() {
    bounded(async {
        let mut p = OidcProvider::start(OidcOptions { ttl: 3, ..OidcOptions::default() }).await;
        let (e1, _e1) = echo_server().await;
        let (e2, _e2) = echo_server().await;
        let server_cfg = format!(
            "bindAddr = \"127.0.0.1\"\nauth.method = \"oidc\"\nauth.oidc.issuer = \"{}\"\n[portway]\ntokenLeeway = 0\n",
            p.issuer()
        );
        let server = start_server(&server_cfg, 0).await;
        let relay = Relay::start(server.addr).await;
        let (r1, r2) = (free_port(), free_port());
        let proxies = tcp_proxy("a", e1, r1, "") + &tcp_proxy("b", e2, r2, "");
        let client_cfg = format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nloginFailExit = false\nauth.method = \"oidc\"\n\
             auth.oidc.clientID = \"{CLIENT_ID}\"\nauth.oidc.clientSecret = \"{CLIENT_SECRET}\"\n\
             auth.oidc.tokenEndpointURL = \"{}\"\n{proxies}",
            relay.port(),
            p.token_endpoint()
        );
        let h = start_client(client_config(&client_cfg));
        let first = wait_running(&h, &["a", "b"]).await;
        both_isolated(r1, r2, 1).await;

        // Provider down: the session keeps working, also after the login token expired.
        p.stop().await;
        both_isolated(r1, r2, 2).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        both_isolated(r1, r2, 3).await;
        assert_eq!(run_id(&h.status()), run_id(&first), "the session must not drop while the provider is down");

        // The connection breaks: a new login needs a new token, which cannot be had while the provider is down.
        relay.cut();
        let s = wait_status(&h, Duration::from_secs(20), "a login error", |s| {
            conn_error(s).is_some_and(|r| r.contains("token endpoint"))
        })
        .await;
        let reason = conn_error(&s).expect("reason");
        assert!(reason.contains("cannot reach the token endpoint"), "{reason}");
        assert!(!reason.contains(CLIENT_SECRET), "the secret must not appear: {reason}");
        assert!(echo_through(r1, b"x").await.is_err(), "no public port without a session");

        // Provider back: the client logs in again by itself.
        p.restart().await;
        wait_running(&h, &["a", "b"]).await;
        both_isolated(r1, r2, 4).await;
        h.stop().await.expect("client stops");
        server.shutdown().await;
        p.stop().await;
    })
    .await
}

// ---- e. local service down and back --------------------------------------------------------------------------

/// An echo service on a given port (tracking its connections so "down" can close them too).
async fn echo_on(port: u16) -> (tokio::task::JoinHandle<()>, tokio_util::sync::CancellationToken) {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind local service");
    let stop = tokio_util::sync::CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move {
        loop {
            let (mut c, _) = tokio::select! {
                _ = s.cancelled() => break,
                r = l.accept() => match r { Ok(c) => c, Err(_) => break },
            };
            let s = s.clone();
            tokio::spawn(async move {
                let (mut r, mut w) = c.split();
                tokio::select! {
                    _ = s.cancelled() => {}
                    _ = tokio::io::copy(&mut r, &mut w) => { let _ = w.shutdown().await; }
                }
            });
        }
    });
    (task, stop)
}

async fn local_service_down_and_back(server_extra: &str, client_extra: &str, proxy_extra: &str) {
    let (l1, l2) = (free_port(), free_port());
    let (t1, s1) = echo_on(l1).await;
    let (_t2, _s2) = echo_on(l2).await;
    let server = start_server(&server_toml(server_extra), 0).await;
    let (r1, r2) = (free_port(), free_port());
    let proxies = tcp_proxy("a", l1, r1, proxy_extra) + &tcp_proxy("b", l2, r2, proxy_extra);
    let h = start_client(client_config(&client_toml(server.addr.port(), client_extra, &proxies)));
    let first = wait_running(&h, &["a", "b"]).await;
    both_isolated(r1, r2, 1).await;
    let visitor = open_visitor(r1).await;

    // Service `a` goes down, its open connections with it.
    s1.cancel();
    t1.await.expect("service task");
    assert_closed(visitor, "local service down").await;
    for i in 0..5u8 {
        let mut v = TcpStream::connect(("127.0.0.1", r1)).await.expect("the public port stays open");
        let _ = v.write_all(&[i; 32]).await;
        let mut b = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(15), v.read(&mut b)).await.expect("visitor closed promptly");
        assert!(matches!(n, Ok(0) | Err(_)), "a visitor must be closed while the service is down, got {n:?}");
    }
    // The other proxy is unaffected, the proxy itself stays registered, the session stays up.
    echo_isolated(r2, 8, 10).await;
    let s = h.status();
    assert!(matches!(s.proxies["a"].state, ProxyState::Running { .. }), "{s:?}");
    assert_eq!(run_id(&s), run_id(&first));

    // Service back on the same port: traffic flows, nobody gets another connection's bytes.
    let (_t1, _s1) = echo_on(l1).await;
    both_isolated(r1, r2, 2).await;
    h.stop().await.expect("client stops");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_service_down_closes_visitors_and_traffic_flows_again_when_it_is_back() {
    bounded(local_service_down_and_back("", "", "")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_service_down_and_back_without_mux_encrypted_compressed_with_a_pool() {
    bounded(local_service_down_and_back(
        "transport.tcpMux = false",
        "transport.tcpMux = false\ntransport.poolCount = 3",
        "transport.useEncryption = true\ntransport.useCompression = true",
    ))
    .await
}
