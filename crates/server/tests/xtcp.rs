//! xtcp (peer to peer) against Portway's server, on 127.0.0.1 only.
//!
//! Three parties (a Portway server, a provider engine, visitor engines) and a STUN responder inside the test
//! that answers from two addresses, as frp's discovery needs (the one in ../shared/frp-captures/xtcp-visitor did
//! the same). `PORTWAY_XTCP_LOOPBACK_ONLY=1` keeps the advertised addresses (`assisted_addrs`) and every punch
//! packet on 127.0.0.0/8: nothing is sent to this machine's external interface.
//!
//! - Peer to peer: echo and bulk over the QUIC session on the punched socket; the visitor says "peer to peer".
//! - `fallbackTo`: the visitor's STUN server does not answer; connections go through the stcp visitor named.
//! - A wrong `secretKey`: refused by the server with frp's words, the visitor's status says what to fix; the
//!   provider keeps serving a right visitor afterwards.
//! - The replay (tests/fixtures/frp-captures/xtcp-visitor): frpc's captured NatHoleVisitor pre-check and request
//!   and its provider's NatHoleClient against Portway's server: Portway's NatHoleResp are frps's, but for the sid.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portway_client::status::{Status, VisitorState};
use portway_client::{ClientHandle, ProxyState};
use portway_proto::codec;
use portway_proto::crypto::{CryptoStream, Key};
use portway_proto::msg::{Login, Message, NewProxy, NewWorkConn};
use portway_proto::nathole::{NatHole, NatHoleClient, NatHoleResp, NatHoleVisitor};
use portway_proto::stun;
use support::{free_port, start_client, tcp_echo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const T: Duration = Duration::from_secs(30);

async fn server(extra: &str) -> support::TestServer {
    support::start_server_with(&format!("bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\n{extra}\n"))
        .await
        .0
}

fn loopback_only() {
    std::env::set_var(portway_client::xtcp::LOOPBACK_ONLY_ENV, "1");
}

/// A STUN responder on two 127.0.0.1 ports: the first answers with OTHER-ADDRESS = the second. `fail` makes
/// both drop every request.
async fn stun_responder() -> (SocketAddr, Arc<AtomicBool>) {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let fail = Arc::new(AtomicBool::new(false));
    for (sock, other) in [(a, Some(b_addr)), (b, None)] {
        let fail = fail.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                assert!(from.ip().is_loopback(), "a STUN request from outside 127.0.0.0/8: {from}");
                if fail.load(Ordering::Relaxed) {
                    continue;
                }
                if let Some(id) = stun::request_id(&buf[..n]) {
                    let _ = sock.send_to(&stun::binding_response(&id, from, other), from).await;
                }
            }
        });
    }
    (a_addr, fail)
}

fn common(server_port: u16, user: &str, stun: SocketAddr) -> String {
    format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {server_port}\nuser = \"{user}\"\nauth.token = \"t\"\n\
         loginFailExit = false\nnatHoleStunServer = \"{stun}\"\n"
    )
}

async fn wait_for(h: &ClientHandle, what: &str, ok: impl Fn(&Status) -> bool) {
    support::wait_for_within(h, what, T, ok).await
}

/// alice: an xtcp proxy `secret` and an stcp proxy `secret-stcp` (the fallback route) to one echo service.
async fn provider(server_port: u16, stun: SocketAddr) -> ClientHandle {
    let echo = tcp_echo().await;
    let toml = format!(
        "{}\n[[proxies]]\nname = \"secret\"\ntype = \"xtcp\"\nsecretKey = \"sk\"\nallowUsers = [\"bob\"]\n\
         localIP = \"127.0.0.1\"\nlocalPort = {echo}\ntransport.useEncryption = true\n\
         [[proxies]]\nname = \"secret-stcp\"\ntype = \"stcp\"\nsecretKey = \"sk\"\nallowUsers = [\"bob\"]\n\
         localIP = \"127.0.0.1\"\nlocalPort = {echo}\n",
        common(server_port, "alice", stun)
    );
    let h = start_client(&toml);
    wait_for(&h, "provider's proxies running", |s| {
        ["secret", "secret-stcp"].iter().all(|n| matches!(s.proxies[*n].state, ProxyState::Running { .. }))
    })
    .await;
    h
}

/// bob: an xtcp visitor `v` (plus `body`), listening on the returned port.
async fn visitor(server_port: u16, stun: SocketAddr, body: &str) -> (ClientHandle, u16) {
    let port = free_port();
    let toml = format!(
        "{}\n[[visitors]]\nname = \"v\"\ntype = \"xtcp\"\nserverUser = \"alice\"\nserverName = \"secret\"\n\
         bindAddr = \"127.0.0.1\"\nbindPort = {port}\n{body}\n",
        common(server_port, "bob", stun)
    );
    let h = start_client(&toml);
    wait_for(&h, "visitor listening", |s| matches!(s.visitors["v"].state, VisitorState::Listening { .. })).await;
    (h, port)
}

fn bulk(n: usize) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

async fn echo_through(port: u16, data: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut r, mut w) = c.split();
    let (_, got) = tokio::join!(
        async {
            let _ = w.write_all(data).await;
            let _ = w.shutdown().await;
        },
        async {
            let mut got = Vec::new();
            let _ = tokio::time::timeout(T, r.read_to_end(&mut got)).await;
            got
        }
    );
    got
}

#[tokio::test]
async fn peer_to_peer_echo_and_bulk_then_a_wrong_secret_is_refused_and_the_provider_keeps_serving() {
    loopback_only();
    let server = server("natholeAnalysisDataReserveHours = 1").await;
    let (stun, _) = stun_responder().await;
    let p = provider(server.port, stun).await;
    let (v, port) =
        visitor(server.port, stun, "secretKey = \"sk\"\ntransport.useEncryption = true\nkeepTunnelOpen = true").await;
    assert_eq!(echo_through(port, b"hello portway").await, b"hello portway");
    assert_eq!(v.status().visitors["v"].path.as_deref(), Some("peer to peer"), "{:#?}", v.status());
    let data = bulk(8 << 20);
    let got = echo_through(port, &data).await;
    assert!(got == data, "8 MiB echo differs ({} of {} bytes)", got.len(), data.len());
    let mut tasks = Vec::new();
    for i in 0..8u32 {
        tasks.push(tokio::spawn(async move {
            let data: Vec<u8> = bulk(100_000 + i as usize).into_iter().map(|b| b ^ i as u8).collect();
            assert!(echo_through(port, &data).await == data, "concurrent echo {i} differs");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(v.status().visitors["v"].conns >= 10);

    // A visitor with the wrong secret: nothing gets through, its status names the fix.
    let (bad, bad_port) = visitor(server.port, stun, "secretKey = \"wrong\"").await;
    assert!(echo_through(bad_port, b"nope").await.is_empty());
    wait_for(&bad, "the refusal in the visitor's status", |s| s.visitors["v"].last_error.is_some()).await;
    let e = bad.status().visitors["v"].last_error.clone().unwrap();
    assert!(e.contains("auth failed") && e.contains("secretKey differs"), "{e}");
    assert!(!e.contains("\"sk\"") && !e.contains("wrong"), "the error shows a secret: {e}");
    bad.stop().await.unwrap();

    // The provider still serves: the first visitor's tunnel, and a new visitor's.
    assert_eq!(echo_through(port, b"still here").await, b"still here");
    let (again, again_port) = visitor(server.port, stun, "secretKey = \"sk\"\ntransport.useEncryption = true").await;
    assert_eq!(echo_through(again_port, b"and again").await, b"and again");
    assert_eq!(again.status().visitors["v"].path.as_deref(), Some("peer to peer"));
    again.stop().await.unwrap();
    v.stop().await.unwrap();
    p.stop().await.unwrap();
}

#[tokio::test]
async fn a_dead_stun_server_sends_connections_through_fallback_to() {
    loopback_only();
    let server = server("").await;
    let (good_stun, _) = stun_responder().await;
    let (dead_stun, fail) = stun_responder().await;
    fail.store(true, Ordering::Relaxed);
    let p = provider(server.port, good_stun).await;
    let (v, port) = visitor(
        server.port,
        dead_stun,
        "secretKey = \"sk\"\nfallbackTo = \"fb\"\nfallbackTimeoutMs = 1000\n\
         [[visitors]]\nname = \"fb\"\ntype = \"stcp\"\nserverUser = \"alice\"\nserverName = \"secret-stcp\"\n\
         secretKey = \"sk\"\nbindPort = -1\n",
    )
    .await;
    let data = bulk(1 << 20);
    assert!(echo_through(port, &data).await == data, "echo through the fallback differs");
    let s = v.status();
    assert_eq!(s.visitors["v"].path.as_deref(), Some("via server (fallbackTo fb)"), "{s:#?}");
    // The punch failed for the reason the STUN server gave, and the status says so.
    wait_for(&v, "the STUN failure in the status", |s| {
        s.visitors["v"].last_error.as_deref().is_some_and(|e| e.contains("natHoleStunServer"))
    })
    .await;
    v.stop().await.unwrap();
    p.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Replay: the captured frpc visitor's messages, a raw provider, Portway's server.

async fn raw_login(port: u16, user: &str) -> (String, CryptoStream<TcpStream>) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let ts = 1_795_974_269;
    let login = Login {
        version: "0.70.0".into(),
        user: user.into(),
        privilege_key: portway_proto::auth::privilege_key("t", ts),
        timestamp: ts,
        pool_count: 1,
        ..Default::default()
    };
    codec::write_msg(&mut c, &Message::Login(login)).await.unwrap();
    let Message::LoginResp(r) = codec::read_msg(&mut c).await.unwrap() else { panic!("no LoginResp") };
    assert!(r.error.is_empty(), "{}", r.error);
    (r.run_id, CryptoStream::new(c, &Key::derive(b"t")))
}

async fn next_of(ctl: &mut CryptoStream<TcpStream>, name: &str) -> Message {
    loop {
        let m = tokio::time::timeout(T, codec::read_msg(ctl)).await.unwrap().unwrap();
        if m.name() == name {
            return m;
        }
    }
}

/// Every message of one side's captured control connection after LoginResp (decrypted with the token "t"): the
/// client's, then the server's.
async fn captured_control(relay: &str, conn: u64) -> Vec<Message> {
    use base64::Engine as _;
    let p = format!("{}/../../tests/fixtures/frp-captures/xtcp-visitor/capture.json", env!("CARGO_MANIFEST_DIR"));
    let chunks: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    let mut out = Vec::new();
    for dir in ["client->server", "server->client"] {
        let mut b = Vec::new();
        for c in chunks.iter().filter(|c| c["relay"] == relay && c["conn"] == conn && c["dir"] == dir) {
            b.extend(base64::engine::general_purpose::STANDARD.decode(c["b64"].as_str().unwrap()).unwrap());
        }
        let (_, used) = codec::decode(&b).unwrap().unwrap();
        let mut s = CryptoStream::new(&b[used..], &Key::derive(b"t"));
        loop {
            match codec::read_msg(&mut s).await {
                Ok(m) => out.push(m),
                Err(e) if e.is_eof() => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    out
}

#[tokio::test]
async fn captured_visitor_messages_get_frps_answers() {
    let server = server("transport.tcpMux = false").await;
    // The provider (alice), raw: NewProxy as captured.
    let (alice_run, mut alice) = raw_login(server.port, "alice").await;
    let np = NewProxy {
        proxy_name: "alice.secret".into(),
        proxy_type: "xtcp".into(),
        sk: "sk".into(),
        allow_users: vec!["bob".into()],
        ..Default::default()
    };
    codec::write_msg(&mut alice, &Message::NewProxy(np)).await.unwrap();
    let Message::NewProxyResp(r) = next_of(&mut alice, "NewProxyResp").await else { unreachable!() };
    assert!(r.error.is_empty() && r.remote_addr.is_empty(), "{r:?}");
    // One work connection parked for the server.
    let mut work = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let nw = NewWorkConn { run_id: alice_run, ..Default::default() };
    codec::write_msg(&mut work, &Message::NewWorkConn(nw)).await.unwrap();

    // The visitor (bob), raw: the captured pre-check and request (sign_key made for the key "sk" now).
    let (_, mut bob) = raw_login(server.port, "bob").await;
    let captured = captured_control("visitor", 3).await;
    let visitor_msgs: Vec<&Message> = captured.iter().filter(|m| m.name() == "NatHoleVisitor").collect();
    assert_eq!(visitor_msgs.len(), 2, "the capture has the pre-check and the request");
    codec::write_msg(&mut bob, visitor_msgs[0]).await.unwrap();
    let Message::NatHoleResp(pre_resp) = next_of(&mut bob, "NatHoleResp").await else { unreachable!() };
    let want: portway_proto::msg::RawBody =
        serde_json::from_str(r#"{"transaction_id":"1795974269f85f3feaaf73fe67","detect_behavior":{}}"#).unwrap();
    assert_eq!(pre_resp, want, "the pre-check answer differs from frps's");
    // frpc's request, verbatim (its sign_key is md5 of "sk" and its timestamp), and the same with a key that
    // does not match.
    let Message::NatHoleVisitor(raw_request) = visitor_msgs[1] else { unreachable!() };
    let request = NatHoleVisitor::from_raw(raw_request).unwrap();
    assert_eq!(request.sign_key, portway_proto::auth::privilege_key("sk", request.timestamp));
    let wrong = NatHoleVisitor { timestamp: request.timestamp + 1, ..request.clone() };
    codec::write_msg(&mut bob, &wrong.to_message()).await.unwrap();
    let Message::NatHoleResp(refused) = next_of(&mut bob, "NatHoleResp").await else { unreachable!() };
    let refused = NatHoleResp::from_raw(&refused).unwrap();
    assert_eq!(refused.error, "xtcp connection of [alice.secret] auth failed");
    codec::write_msg(&mut bob, visitor_msgs[1]).await.unwrap();

    // The provider's work connection: StartWorkConn then NatHoleSid, as captured.
    let Message::StartWorkConn(s) = tokio::time::timeout(T, codec::read_msg(&mut work)).await.unwrap().unwrap() else {
        panic!("no StartWorkConn")
    };
    assert_eq!(s.proxy_name, "alice.secret");
    let Message::NatHoleSid(sid) = tokio::time::timeout(T, codec::read_msg(&mut work)).await.unwrap().unwrap() else {
        panic!("no NatHoleSid")
    };
    let keys: Vec<&String> = sid.keys().collect();
    assert_eq!(keys, ["sid"], "NatHoleSid on the work connection carries only the sid, as frps's");
    let sid = sid["sid"].as_str().unwrap().to_string();
    // frpc's NatHoleClient as captured, with the sid this server chose.
    let provider_msgs = captured_control("proxy", 1).await;
    let Some(Message::NatHoleClient(raw_client)) = provider_msgs.iter().find(|m| m.name() == "NatHoleClient") else {
        panic!("no NatHoleClient in the capture")
    };
    let client = NatHoleClient { sid: sid.clone(), ..NatHoleClient::from_raw(raw_client).unwrap() };
    codec::write_msg(&mut alice, &client.to_message()).await.unwrap();
    let Message::NatHoleResp(v) = next_of(&mut bob, "NatHoleResp").await else { unreachable!() };
    let Message::NatHoleResp(c) = next_of(&mut alice, "NatHoleResp").await else { unreachable!() };
    // frps's answers as captured, but for the sid.
    let answers = captured_control("visitor", 3).await.into_iter().chain(captured_control("proxy", 1).await);
    let mut want: Vec<portway_proto::msg::RawBody> = answers
        .filter_map(|m| match m {
            Message::NatHoleResp(mut r) if r.contains_key("sid") => {
                r.insert("sid".into(), sid.clone().into());
                Some(r)
            }
            _ => None,
        })
        .collect();
    assert_eq!(want.len(), 2);
    let want_c = want.pop().unwrap();
    assert_eq!(v, want.pop().unwrap(), "NatHoleResp to the visitor differs from frps's");
    assert_eq!(c, want_c, "NatHoleResp to the provider differs from frps's");
    let report: portway_proto::msg::RawBody =
        serde_json::from_str(&format!(r#"{{"sid":"{sid}","success":true}}"#)).unwrap();
    codec::write_msg(&mut alice, &Message::NatHoleReport(report)).await.unwrap();
    // An unknown proxy and a user not in allowUsers get frps's words.
    let (_, mut carol) = raw_login(server.port, "carol").await;
    for (name, want) in [
        ("alice.nope", "xtcp server for [alice.nope] doesn't exist"),
        ("alice.secret", "xtcp visitor user [carol] not allowed for [alice.secret]"),
    ] {
        let m = NatHoleVisitor {
            transaction_id: "x".into(),
            proxy_name: name.into(),
            pre_check: true,
            ..Default::default()
        };
        codec::write_msg(&mut carol, &m.to_message()).await.unwrap();
        let Message::NatHoleResp(r) = next_of(&mut carol, "NatHoleResp").await else { unreachable!() };
        assert_eq!(NatHoleResp::from_raw(&r).unwrap().error, want);
    }
}
