//! Secret proxies (stcp, sudp) and visitors against Portway's server, on 127.0.0.1.
//!
//! - Replays: the provider's and the visitor's side of real frpc v0.70.0 runs (tests/fixtures/frp-captures/
//!   stcp-visitor, sudp-visitor) are played against Portway's server; its answers must have the captured shapes
//!   (NewProxyResp without remote_addr, NewVisitorConnResp, frp's "auth failed" text, StartWorkConn's fields), and
//!   the captured payload must cross from visitor to provider and back.
//! - Three parties: a Portway server, a provider engine with stcp/sudp proxies and visitor engines, each with its
//!   own sockets: bulk and concurrent stcp echo, sudp datagrams, and the refusals (wrong secretKey, unknown
//!   server name, allowUsers, a visitor of the wrong type), after which the provider keeps serving.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use portway_client::status::VisitorState;
use portway_client::{ClientConfig, ClientHandle, ProxyState};
use portway_proto::codec;
use portway_proto::crypto::{CryptoStream, Key};
use portway_proto::msg::{Message, NewVisitorConn, NewWorkConn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

mod support;
use support::{free_port, start_client, tcp_echo, udp_echo, wait_for, TestServer, T};

async fn start_server(extra: &str) -> TestServer {
    support::start_server_with(&format!("bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\n{extra}\n"))
        .await
        .0
}

// ---------------------------------------------------------------------------------------------------------------
// Replays of real frpc

fn capture(name: &str) -> Vec<serde_json::Value> {
    let p = format!("{}/../../tests/fixtures/frp-captures/{name}/capture.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn bytes(chunks: &[serde_json::Value], conn: u64, dir: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks.iter().filter(|c| c["conn"] == conn && c["dir"] == dir) {
        out.extend(base64::engine::general_purpose::STANDARD.decode(c["b64"].as_str().unwrap()).unwrap());
    }
    out
}

/// The first message of `b` and what follows it.
fn split_msg(b: &[u8]) -> (Message, &[u8]) {
    let (m, used) = codec::decode(b).unwrap().unwrap();
    (m, &b[used..])
}

/// Every message of a captured control stream after LoginResp (AES-128-CFB with the token "t").
async fn decrypt_all(b: &[u8]) -> Vec<Message> {
    let mut s = CryptoStream::new(b, &Key::derive(b"t"));
    let mut out = Vec::new();
    loop {
        match codec::read_msg(&mut s).await {
            Ok(m) => out.push(m),
            Err(e) if e.is_eof() => return out,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Sends a captured control connection's client bytes (Login + encrypted messages), returns the run_id Portway
/// gave and a reader of its (decrypted) answers.
async fn replay_login(port: u16, client_bytes: &[u8]) -> (String, CryptoStream<TcpStream>) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    c.write_all(client_bytes).await.unwrap();
    let resp = tokio::time::timeout(T, codec::read_msg(&mut c)).await.unwrap().unwrap();
    let Message::LoginResp(r) = resp else { panic!("{resp:?}") };
    assert!(r.error.is_empty(), "{}", r.error);
    (r.run_id, CryptoStream::new(c, &Key::derive(b"t")))
}

async fn next_not(ctl: &mut CryptoStream<TcpStream>, skip: &[&str]) -> Message {
    loop {
        let m = tokio::time::timeout(T, codec::read_msg(ctl)).await.unwrap().unwrap();
        if !skip.contains(&m.name()) {
            return m;
        }
    }
}

/// JSON keys of a message, sorted.
fn keys(m: &Message) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

async fn replay(name: &str) {
    let chunks = capture(name);
    let server = start_server("transport.tcpMux = false").await;
    // Provider (alice): conn 1 is its control connection.
    let provider_in = bytes(&chunks, 1, "client->server");
    let provider_out = bytes(&chunks, 1, "server->client");
    let (provider_run_id, mut provider) = replay_login(server.port, &provider_in).await;
    let (_, captured_rest) = split_msg(&provider_out);
    let captured: Vec<Message> = decrypt_all(captured_rest).await;
    let captured_resp = captured.iter().find(|m| m.name() == "NewProxyResp").unwrap().clone();
    // Portway's client sends for the captured frpc.toml exactly what frpc sent.
    let fixture = |f: &str| {
        let p = format!("{}/../../tests/fixtures/frp-captures/{name}/{f}", env!("CARGO_MANIFEST_DIR"));
        ClientConfig::parse(&std::fs::read_to_string(p).unwrap(), f).unwrap().config
    };
    let provider_cfg = fixture("frpc.toml");
    let sent: Vec<Message> = decrypt_all(split_msg(&provider_in).1).await;
    let captured_np = sent.iter().find(|m| m.name() == "NewProxy").unwrap();
    assert_eq!(&Message::NewProxy(provider_cfg.new_proxy(&provider_cfg.proxies[0])), captured_np);
    // frps answers an stcp/sudp proxy without remote_addr: exactly the captured message.
    let resp = next_not(&mut provider, &["ReqWorkConn", "Pong"]).await;
    assert_eq!(resp, captured_resp, "NewProxyResp differs from frps's");

    // Visitor (bob): conn 3 is its control connection; conn 5 the first visitor connection.
    let (visitor_run_id, _visitor_ctl) = replay_login(server.port, &bytes(&chunks, 3, "client->server")).await;
    let v_in = bytes(&chunks, 5, "client->server");
    let v_out = bytes(&chunks, 5, "server->client");
    let (Message::NewVisitorConn(captured_v), payload) = split_msg(&v_in) else { panic!("conn 5 is not a visitor") };
    let (captured_v_resp, echoed) = split_msg(&v_out);
    assert_eq!(echoed, payload);
    // Portway's visitor fills NewVisitorConn as frpc did (same run_id and time given).
    let visitor_cfg = fixture("frpc-visitor.toml");
    let ours = portway_client::visitor::new_visitor_conn(
        &visitor_cfg,
        &visitor_cfg.visitors[0],
        &captured_v.run_id,
        captured_v.timestamp,
    );
    assert_eq!(ours, captured_v);
    // The captured message as frpc sent it, with this session's run_id (the sign_key is the captured one).
    let v = NewVisitorConn { run_id: visitor_run_id.clone(), ..captured_v.clone() };
    let mut visitor = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    codec::write_msg(&mut visitor, &Message::NewVisitorConn(v)).await.unwrap();
    visitor.write_all(payload).await.unwrap();
    let got = tokio::time::timeout(T, codec::read_msg(&mut visitor)).await.unwrap().unwrap();
    assert_eq!(got, captured_v_resp, "NewVisitorConnResp differs from frps's");

    // The server asks the provider for a work connection; StartWorkConn carries frps's fields.
    let mut work = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let nwc = NewWorkConn { run_id: provider_run_id, ..Default::default() };
    codec::write_msg(&mut work, &Message::NewWorkConn(nwc)).await.unwrap();
    let start = tokio::time::timeout(T, codec::read_msg(&mut work)).await.unwrap().unwrap();
    // frps took a pooled work connection (conn 2) for the captured visitor.
    let (captured_start, _) = split_msg(&bytes(&chunks, 2, "server->client"));
    assert_eq!(keys(&start), keys(&captured_start));
    let Message::StartWorkConn(s) = &start else { panic!("{start:?}") };
    assert_eq!(s.proxy_name, "alice.secret");
    assert_eq!(s.dst_port, server.port, "dst_port is the server's bindPort, as frps");
    // The payload crosses as bytes, both ways (the provider's frpc echoed it).
    let mut buf = vec![0u8; payload.len()];
    tokio::time::timeout(T, work.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(buf, payload);
    work.write_all(&buf).await.unwrap();
    tokio::time::timeout(T, visitor.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(buf, payload);

    // A sign_key made with another secretKey: frps's exact refusal.
    let wrong = chunks.iter().map(|c| c["conn"].as_u64().unwrap()).find(|&c| {
        let b = bytes(&chunks, c, "server->client");
        !b.is_empty() && b[0] == b'3' && String::from_utf8_lossy(&b).contains("auth failed")
    });
    // The stcp run has a visitor with a wrong key; the sudp run does not.
    assert_eq!(wrong.is_some(), name == "stcp-visitor");
    if let Some(c) = wrong {
        let (Message::NewVisitorConn(cv), _) = split_msg(&bytes(&chunks, c, "client->server")) else { panic!() };
        let (captured_refusal, _) = split_msg(&bytes(&chunks, c, "server->client"));
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
        let v = NewVisitorConn { run_id: visitor_run_id.clone(), ..cv };
        codec::write_msg(&mut s, &Message::NewVisitorConn(v)).await.unwrap();
        let got = tokio::time::timeout(T, codec::read_msg(&mut s)).await.unwrap().unwrap();
        assert_eq!(got, captured_refusal);
    }
    // A visitor whose run_id is no session: frp's text.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let v = NewVisitorConn { run_id: "0123456789abcdef".into(), ..captured_v.clone() };
    codec::write_msg(&mut s, &Message::NewVisitorConn(v)).await.unwrap();
    let Message::NewVisitorConnResp(r) = codec::read_msg(&mut s).await.unwrap() else { panic!() };
    assert_eq!(r.error, "no client control found for run id [0123456789abcdef]");
    // Unknown proxy name.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let v = NewVisitorConn { run_id: visitor_run_id, proxy_name: "alice.nope".into(), ..captured_v };
    codec::write_msg(&mut s, &Message::NewVisitorConn(v)).await.unwrap();
    let Message::NewVisitorConnResp(r) = codec::read_msg(&mut s).await.unwrap() else { panic!() };
    assert_eq!(r.error, "custom listener for [alice.nope] doesn't exist");
}

#[tokio::test]
async fn replays_captured_stcp_visitor() {
    replay("stcp-visitor").await;
}

#[tokio::test]
async fn replays_captured_sudp_visitor() {
    replay("sudp-visitor").await;
}

// ---------------------------------------------------------------------------------------------------------------
// Portway provider + Portway visitor through Portway's server

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn common(server_port: u16, user: &str, transport: &str) -> String {
    format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {server_port}\nuser = \"{user}\"\nauth.token = \"t\"\n\
         loginFailExit = false\ntransport.tls.enable = false\n{transport}\n"
    )
}

async fn provider(server_port: u16, transport: &str, proxy_extra: &str) -> ClientHandle {
    let (tcp_local, udp_local) = (tcp_echo().await, udp_echo().await);
    let toml = format!(
        "{}\n[[proxies]]\nname = \"secret\"\ntype = \"stcp\"\nsecretKey = \"sk\"\nallowUsers = [\"bob\"]\n\
         localIP = \"127.0.0.1\"\nlocalPort = {tcp_local}\n{proxy_extra}\n\
         [[proxies]]\nname = \"voice\"\ntype = \"sudp\"\nsecretKey = \"sk\"\nallowUsers = [\"*\"]\n\
         localIP = \"127.0.0.1\"\nlocalPort = {udp_local}\n",
        common(server_port, "alice", transport)
    );
    let h = start_client(&toml);
    wait_for(&h, "provider's proxies running", |s| {
        ["secret", "voice"].iter().all(|n| matches!(s.proxies[*n].state, ProxyState::Running { .. }))
    })
    .await;
    h
}

/// A visitor engine with one visitor; returns it and its local port once listening.
async fn visitor(server_port: u16, user: &str, transport: &str, body: &str, udp: bool) -> (ClientHandle, u16) {
    let port = if udp { free_udp_port() } else { free_port() };
    let toml = format!(
        "{}\n[[visitors]]\nname = \"v\"\nbindAddr = \"127.0.0.1\"\nbindPort = {port}\n{body}\n",
        common(server_port, user, transport)
    );
    let h = start_client(&toml);
    wait_for(&h, "visitor listening", |s| matches!(s.visitors["v"].state, VisitorState::Listening { .. })).await;
    (h, port)
}

/// The server's tcpMux matching the clients'.
fn server_side(transport: &str) -> String {
    transport.lines().filter(|l| l.starts_with("transport.tcpMux")).collect()
}

fn bulk(n: usize) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

async fn echo_through(port: u16, data: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut r, mut w) = c.split();
    let (_, got) = tokio::join!(
        async {
            w.write_all(data).await.unwrap();
            w.shutdown().await.unwrap();
        },
        async {
            let mut got = Vec::new();
            let _ = tokio::time::timeout(T * 3, r.read_to_end(&mut got)).await;
            got
        }
    );
    got
}

async fn stcp_bulk_and_concurrent(transport: &str, visitor_transport: &str) {
    let server = start_server(&server_side(transport)).await;
    let p = provider(server.port, transport, "transport.useEncryption = true\ntransport.useCompression = true").await;
    let (v, port) = visitor(
        server.port,
        "bob",
        transport,
        &format!(
            "type = \"stcp\"\nserverUser = \"alice\"\nserverName = \"secret\"\nsecretKey = \"sk\"\n{visitor_transport}"
        ),
        false,
    )
    .await;
    let data = bulk(32 << 20);
    let got = echo_through(port, &data).await;
    assert_eq!(got.len(), data.len(), "32 MiB echo length");
    assert!(got == data, "32 MiB echo differs");
    let mut tasks = Vec::new();
    for i in 0..20u32 {
        tasks.push(tokio::spawn(async move {
            let data: Vec<u8> = bulk(50_000 + i as usize * 1000).into_iter().map(|b| b ^ i as u8).collect();
            let got = echo_through(port, &data).await;
            assert!(got == data, "concurrent echo {i} differs ({} of {} bytes)", got.len(), data.len());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(v.status().visitors["v"].conns >= 21);
    v.stop().await.unwrap();
    p.stop().await.unwrap();
}

#[tokio::test]
async fn stcp_bulk_and_concurrent_over_mux() {
    stcp_bulk_and_concurrent("transport.tcpMux = true", "").await;
}

#[tokio::test]
async fn stcp_bulk_and_concurrent_without_mux_wire_v2_encrypted() {
    stcp_bulk_and_concurrent(
        "transport.tcpMux = false\ntransport.wireProtocol = \"v2\"",
        "transport.useEncryption = true\ntransport.useCompression = true",
    )
    .await;
}

async fn sudp_echo(transport: &str, visitor_transport: &str) {
    let server = start_server(&server_side(transport)).await;
    let p = provider(server.port, transport, "").await;
    let (v, port) = visitor(
        server.port,
        "carol",
        visitor_transport,
        "type = \"sudp\"\nserverUser = \"alice\"\nserverName = \"voice\"\nsecretKey = \"sk\"\n\
         transport.useEncryption = true",
        true,
    )
    .await;
    // Two local applications (two source ports) through the one visitor connection.
    let apps = [UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap()];
    let mut answered = 0;
    for i in 0..300u32 {
        let app = &apps[i as usize % 2];
        let msg = format!("datagram {i}");
        app.send_to(msg.as_bytes(), ("127.0.0.1", port)).await.unwrap();
        let mut buf = [0u8; 64];
        if let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(500), app.recv_from(&mut buf)).await {
            assert_eq!(&buf[..n], msg.as_bytes(), "an answer went to the wrong application");
            answered += 1;
        }
    }
    // UDP may drop the first datagrams while the connections are set up; nearly all must come back.
    assert!(answered >= 290, "only {answered} of 300 datagrams came back");
    v.stop().await.unwrap();
    p.stop().await.unwrap();
}

#[tokio::test]
async fn sudp_echo_over_mux() {
    sudp_echo("transport.tcpMux = true", "transport.tcpMux = true").await;
}

#[tokio::test]
async fn sudp_echo_without_mux_wire_v2() {
    let v2 = "transport.tcpMux = false\ntransport.wireProtocol = \"v2\"";
    sudp_echo(v2, v2).await;
}

/// A v2 provider and a v1 visitor: the server re-frames the datagrams between the two protocols.
#[tokio::test]
async fn sudp_echo_between_wire_v2_provider_and_v1_visitor() {
    sudp_echo("transport.tcpMux = false\ntransport.wireProtocol = \"v2\"", "transport.tcpMux = false").await;
    sudp_echo("transport.tcpMux = false", "transport.tcpMux = false\ntransport.wireProtocol = \"v2\"").await;
}

/// A refused visitor: its local connection closes without data, its status names the reason.
async fn refused(server_port: u16, user: &str, body: &str, reason: &str) {
    let (v, port) = visitor(server_port, user, "", body, false).await;
    let got = echo_through(port, b"hello").await;
    assert!(got.is_empty(), "a refused visitor got data back");
    wait_for(&v, reason, |s| s.visitors["v"].last_error.as_deref().is_some_and(|e| e.contains(reason))).await;
    let e = v.status().visitors["v"].last_error.clone().unwrap();
    assert!(!e.contains("\"sk\"") && !e.contains("wrong-sk"), "a secret in an error: {e}");
    v.stop().await.unwrap();
}

#[tokio::test]
async fn refusals_are_clear_and_the_provider_keeps_serving() {
    let server = start_server("").await;
    let p = provider(server.port, "", "").await;
    let (good, good_port) = visitor(
        server.port,
        "bob",
        "",
        "type = \"stcp\"\nserverUser = \"alice\"\nserverName = \"secret\"\nsecretKey = \"sk\"",
        false,
    )
    .await;
    assert_eq!(echo_through(good_port, b"before").await, b"before");

    let target = "type = \"stcp\"\nserverUser = \"alice\"\nserverName = \"secret\"\n";
    refused(
        server.port,
        "bob",
        &format!("{target}secretKey = \"wrong-sk\""),
        "visitor connection of [alice.secret] auth failed (secretKey differs",
    )
    .await;
    refused(
        server.port,
        "bob",
        "type = \"stcp\"\nserverUser = \"alice\"\nserverName = \"nope\"\nsecretKey = \"sk\"",
        "custom listener for [alice.nope] doesn't exist (check serverName",
    )
    .await;
    // allowUsers = ["bob"]: carol is refused; without serverUser, the visitor's own user is the prefix.
    refused(
        server.port,
        "carol",
        &format!("{target}secretKey = \"sk\""),
        "visitor connection of [alice.secret] user [carol] not allowed",
    )
    .await;
    refused(
        server.port,
        "bob",
        "type = \"stcp\"\nserverName = \"secret\"\nsecretKey = \"sk\"",
        "custom listener for [bob.secret] doesn't exist",
    )
    .await;

    // The provider and the good visitor are untouched.
    assert_eq!(echo_through(good_port, b"after").await, b"after");
    assert!(matches!(p.status().proxies["secret"].state, ProxyState::Running { .. }));
    assert!(good.status().visitors["v"].last_error.is_none());
    good.stop().await.unwrap();
    p.stop().await.unwrap();
}

/// Portway's per-client rules: `allowVisitors` decides which secret proxies a client's visitors may reach (on
/// top of the provider's `allowUsers`), `allowProxyTypes` which proxy types a client may register. With token
/// auth every client falls under `[portway.defaultClient]`.
#[tokio::test]
async fn per_client_policy_decides_visitors_and_proxy_types() {
    let server = start_server(
        "[portway.defaultClient]\nallowVisitors = [\"alice.voice\", \"carol.*\"]\nallowProxyTypes = [\"stcp\", \"sudp\"]\n",
    )
    .await;
    let p = provider(server.port, "", "").await;
    // bob is in the stcp proxy's allowUsers, but the rule lets visitors reach alice.voice and carol.* only.
    refused(
        server.port,
        "bob",
        "type = \"stcp\"\nserverUser = \"alice\"\nserverName = \"secret\"\nsecretKey = \"sk\"",
        "visitor connection of [alice.secret] refused by policy: not in allowVisitors of portway.defaultClient",
    )
    .await;
    // The sudp proxy is allowed: a datagram goes through and back.
    let (v, port) = visitor(
        server.port,
        "bob",
        "",
        "type = \"sudp\"\nserverUser = \"alice\"\nserverName = \"voice\"\nsecretKey = \"sk\"",
        true,
    )
    .await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 64];
    let mut answered = false;
    for _ in 0..50 {
        sock.send_to(b"ping", ("127.0.0.1", port)).await.unwrap();
        if let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await {
            assert_eq!(&buf[..n], b"ping");
            answered = true;
            break;
        }
    }
    assert!(answered, "no answer through the allowed sudp visitor");
    v.stop().await.unwrap();
    // A tcp proxy is not in allowProxyTypes: refused with the rule's name, the client's other proxies unaffected.
    let local = tcp_echo().await;
    let h = start_client(&format!(
        "{}\n[[proxies]]\nname = \"plain\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {local}\nremotePort = 0\n\
         [[proxies]]\nname = \"hidden\"\ntype = \"stcp\"\nsecretKey = \"k2\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {local}\n",
        common(server.port, "dave", "")
    ));
    wait_for(&h, "tcp refused by allowProxyTypes, stcp running", |s| {
        matches!(&s.proxies["plain"].state, ProxyState::Error { reason }
            if reason.contains("proxy type \"tcp\" is not in allowProxyTypes of portway.defaultClient"))
            && matches!(s.proxies["hidden"].state, ProxyState::Running { .. })
    })
    .await;
    h.stop().await.unwrap();
    assert!(matches!(p.status().proxies["secret"].state, ProxyState::Running { .. }));
    p.stop().await.unwrap();
}

#[tokio::test]
async fn a_visitor_of_the_wrong_type_gets_nothing_and_harms_nothing() {
    let server = start_server("").await;
    let p = provider(server.port, "", "").await;
    // An stcp visitor pointed at the sudp proxy.
    let (v, port) = visitor(
        server.port,
        "bob",
        "",
        "type = \"stcp\"\nserverUser = \"alice\"\nserverName = \"voice\"\nsecretKey = \"sk\"",
        false,
    )
    .await;
    let got = echo_through(port, b"this is not a UDPPacket stream").await;
    assert!(got.is_empty(), "bytes came back through a type mismatch: {got:?}");
    v.stop().await.unwrap();
    // The provider's stcp proxy still serves a correct visitor.
    let (good, good_port) = visitor(
        server.port,
        "bob",
        "",
        "type = \"stcp\"\nserverUser = \"alice\"\nserverName = \"secret\"\nsecretKey = \"sk\"",
        false,
    )
    .await;
    assert_eq!(echo_through(good_port, b"still here").await, b"still here");
    good.stop().await.unwrap();
    p.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Three real processes: portway-server, a provider portway-client and a visitor portway-client (stcp bulk and
// concurrent echo, sudp datagrams, a wrong key)

#[allow(dead_code)]
#[path = "../../../tests/support/process.rs"]
mod process;

#[tokio::test]
async fn three_processes_stcp_and_sudp_echo_and_a_wrong_key() {
    let server_port = free_port();
    let _server = process::Proc::spawn(
        "portway-server",
        &format!("bindAddr = \"127.0.0.1\"\nbindPort = {server_port}\nauth.token = \"t\"\n"),
    );
    process::wait_listening(server_port, T).await;
    let (local, local_udp) = (tcp_echo().await, udp_echo().await);
    let provider = process::Proc::spawn(
        "portway-client",
        &format!(
            "{}\n[[proxies]]\nname = \"secret\"\ntype = \"stcp\"\nsecretKey = \"sk\"\nallowUsers = [\"bob\"]\n\
             localIP = \"127.0.0.1\"\nlocalPort = {local}\n\
             [[proxies]]\nname = \"voice\"\ntype = \"sudp\"\nsecretKey = \"sk\"\nallowUsers = [\"bob\"]\n\
             localIP = \"127.0.0.1\"\nlocalPort = {local_udp}\n",
            common(server_port, "alice", "")
        ),
    );
    provider.wait_log("proxy started proxy=voice", T).await;
    let (good, bad, udp) = (free_port(), free_port(), free_udp_port());
    let visitor = process::Proc::spawn(
        "portway-client",
        &format!(
            "{}\n[[visitors]]\nname = \"good\"\ntype = \"stcp\"\nserverUser = \"alice\"\nserverName = \"secret\"\n\
             secretKey = \"sk\"\nbindPort = {good}\n\
             [[visitors]]\nname = \"bad\"\ntype = \"stcp\"\nserverUser = \"alice\"\nserverName = \"secret\"\n\
             secretKey = \"not-sk\"\nbindPort = {bad}\n\
             [[visitors]]\nname = \"voice\"\ntype = \"sudp\"\nserverUser = \"alice\"\nserverName = \"voice\"\n\
             secretKey = \"sk\"\nbindPort = {udp}\n",
            common(server_port, "bob", "")
        ),
    );
    process::wait_listening(good, T).await;
    process::wait_listening(bad, T).await;
    let data = bulk(4 << 20);
    assert!(echo_through(good, &data).await == data, "4 MiB echo through three processes differs");
    // Concurrent connections, each with its own bytes.
    let tasks: Vec<_> = (0..16u32)
        .map(|i| {
            tokio::spawn(async move {
                let data: Vec<u8> = bulk(40_000 + i as usize * 997).into_iter().map(|b| b ^ i as u8).collect();
                assert!(echo_through(good, &data).await == data, "concurrent echo {i} through three processes differs");
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // sudp: datagrams through the visitor process's UDP port come back to the sender.
    let app = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut answered = 0;
    for i in 0..100u32 {
        let msg = format!("datagram {i}");
        app.send_to(msg.as_bytes(), ("127.0.0.1", udp)).await.unwrap();
        let mut buf = [0u8; 64];
        if let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(500), app.recv_from(&mut buf)).await {
            assert_eq!(&buf[..n], msg.as_bytes());
            answered += 1;
        }
    }
    assert!(answered >= 95, "only {answered} of 100 datagrams came back through three processes");
    assert!(echo_through(bad, b"hello").await.is_empty(), "a wrong key got data back");
    let log = visitor.wait_log("auth failed (secretKey differs from the provider's)", T).await;
    assert!(!log.contains("not-sk"), "the secret is in the visitor's log");
    assert_eq!(echo_through(good, b"after").await, b"after");
}
