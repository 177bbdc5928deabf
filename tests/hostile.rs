//! Hostile input against a real `portway-server` process: each case is refused or ignored with a reason in the
//! server's log, the process keeps running, and a healthy client connected all along keeps working.

mod support;

use std::time::{Duration, Instant};

use portway::client::{ClientHandle, ConnState, ProxyState, Status};
use portway::proto::codec;
use portway::proto::crypto::{CryptoStream, Key};
use portway::proto::msg::{Login, Message, NewProxy};
use support::process::{wait_listening, Proc};
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    init_logs();
    // Building the binaries (once per test process) is not part of any test's time.
    tokio::task::spawn_blocking(|| support::process::bin("portway-server")).await.expect("build binaries");
    tokio::time::timeout(TEST_TIMEOUT, f).await.expect("test timed out");
}

/// A server process with a healthy client (one tcp proxy to an echo service) logged in.
struct Fixture {
    server: Proc,
    port: u16,
    client: ClientHandle,
    run_id: String,
    remote: u16,
    round: u64,
    _echo: tokio::task::JoinHandle<()>,
}

fn run_id(s: &Status) -> String {
    match &s.conn {
        ConnState::Connected { run_id, .. } => run_id.clone(),
        other => panic!("the healthy client is not connected: {other:?}"),
    }
}

impl Fixture {
    /// `mux`: the server's (and the healthy client's) `transport.tcpMux`.
    async fn start(mux: bool, server_extra: &str) -> Fixture {
        let port = free_port();
        let mux_line = if mux { "" } else { "transport.tcpMux = false" };
        let cfg = format!("{}bindPort = {port}\nlog.level = \"debug\"\n{mux_line}\n", server_toml(server_extra));
        let server = Proc::spawn("portway-server", &cfg);
        wait_listening(port, Duration::from_secs(60)).await;
        let (echo, _echo) = echo_server().await;
        let remote = free_port();
        let client = start_client(client_config(&client_toml(port, mux_line, &tcp_proxy("healthy", echo, remote, ""))));
        let s = wait_running(&client, &["healthy"]).await;
        Fixture { server, port, client, run_id: run_id(&s), remote, round: 0, _echo }
    }

    fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// The server process is alive, the healthy client's session is the same one, and its proxy echoes
    /// concurrent connections each with exactly its own bytes.
    async fn assert_healthy(&mut self, after: &str) {
        assert!(self.server.alive(), "the server died after {after}; log:\n{}", self.server.log());
        self.round += 1;
        echo_isolated(self.remote, 4, self.round).await;
        assert_eq!(run_id(&self.client.status()), self.run_id, "the healthy client's session dropped after {after}");
        let log = self.server.log();
        assert!(!log.contains("panicked"), "the server panicked after {after}:\n{log}");
    }

    async fn finish(self) {
        self.client.stop().await.expect("client stops");
        drop(self.server);
    }
}

/// Reads until the peer closes (EOF or error); returns how long that took, or panics after `within`.
async fn closed_within(c: &mut (impl AsyncRead + Unpin), within: Duration, what: &str) -> Duration {
    let start = Instant::now();
    let mut b = [0u8; 4096];
    let r = tokio::time::timeout(within, async {
        loop {
            match c.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(r.is_ok(), "{what}: the server kept the connection open for {within:?}");
    start.elapsed()
}

/// One frp frame with an arbitrary body.
fn raw_frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![kind];
    f.extend_from_slice(&(body.len() as i64).to_be_bytes());
    f.extend_from_slice(body);
    f
}

// ---- yamux by hand -------------------------------------------------------------------------------------------

const DATA: u8 = 0;
const WINDOW_UPDATE: u8 = 1;
const PING: u8 = 2;
const SYN: u16 = 1;
const ACK: u16 = 2;

fn yamux(version: u8, kind: u8, flags: u16, id: u32, length: u32) -> Vec<u8> {
    let mut h = vec![version, kind];
    h.extend_from_slice(&flags.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&length.to_be_bytes());
    h
}

fn yamux_data(flags: u16, id: u32, body: &[u8]) -> Vec<u8> {
    let mut f = yamux(0, DATA, flags, id, body.len() as u32);
    f.extend_from_slice(body);
    f
}

/// Reads yamux frames until a ping ACK with `opaque` arrives (the session is alive and answering), collecting the
/// data of stream `id`. Panics if the session closes first or after 10 s.
async fn ping_and_collect(c: &mut TcpStream, opaque: u32, id: u32) -> Vec<u8> {
    c.write_all(&yamux(0, PING, SYN, 0, opaque)).await.expect("send ping");
    let mut data = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut h = [0u8; 12];
            c.read_exact(&mut h).await.expect("the session must stay open");
            let (kind, flags) = (h[1], u16::from_be_bytes([h[2], h[3]]));
            let sid = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
            let len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
            if kind == DATA {
                let mut b = vec![0u8; len as usize];
                c.read_exact(&mut b).await.expect("frame body");
                if sid == id {
                    data.extend_from_slice(&b);
                }
            } else if kind == PING && flags & SYN != 0 {
                c.write_all(&yamux(0, PING, ACK, 0, len)).await.expect("answer the server's ping");
            } else if kind == PING && flags & ACK != 0 && len == opaque {
                return;
            }
        }
    })
    .await
    .expect("no ping answer within 10 s");
    data
}

// ---- f. silent and trickling unauthenticated connections ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_trickling_unauthenticated_connections_are_cut_after_the_login_timeout() {
    bounded(async {
        let mut mux = Fixture::start(true, "").await;
        let mut plain = Fixture::start(false, "").await;
        let login = raw_frame(b'o', br#"{"version":"0.70.0","user":"trickle","privilege_key":"x","timestamp":1}"#);
        let mut yamux_login = yamux(0, WINDOW_UPDATE, SYN, 1, 0);
        yamux_login.extend_from_slice(&yamux_data(0, 1, &login));
        // Silent, and one byte a second of an otherwise valid login, on each server.
        let cases = [
            (mux.addr(), Vec::new(), "silent, mux server"),
            (mux.addr(), yamux_login, "trickling yamux + Login, mux server"),
            (plain.addr(), Vec::new(), "silent, plain server"),
            (plain.addr(), login.clone(), "trickling Login, plain server"),
        ];
        let tasks: Vec<_> = cases
            .into_iter()
            .map(|(addr, bytes, what)| {
                tokio::spawn(async move {
                    let c = TcpStream::connect(addr).await.expect("connect");
                    let (mut r, mut w) = c.into_split();
                    let trickle = tokio::spawn(async move {
                        for b in bytes {
                            if w.write_all(&[b]).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        std::future::pending::<()>().await;
                    });
                    let took = closed_within(&mut r, Duration::from_secs(25), what).await;
                    trickle.abort();
                    (what, took)
                })
            })
            .collect();
        for t in tasks {
            let (what, took) = t.await.expect("join");
            // Cut by the 10 s login timeout: not at once, and well before the trickle would have finished.
            assert!(took >= Duration::from_secs(5), "{what}: cut after {took:?}, before the login timeout");
        }
        // The servers log asynchronously: a line may land a moment after the connection closed.
        let log = mux.server.wait_log("within 10s", Duration::from_secs(10)).await;
        assert!(log.contains("sent nothing usable within 10s") || log.contains("opened no stream within 10s"), "{log}");
        plain.server.wait_log("sent nothing usable within 10s", Duration::from_secs(10)).await;
        plain.server.wait_log("no frp message within 10s", Duration::from_secs(10)).await;
        mux.assert_healthy("silent and trickling connections").await;
        plain.assert_healthy("silent and trickling connections").await;
        mux.finish().await;
        plain.finish().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mux_connection_that_opens_a_stream_but_never_logs_in_is_cut() {
    bounded(async {
        let mut f = Fixture::start(true, "").await;
        let mut c = TcpStream::connect(f.addr()).await.expect("connect");
        // Opens stream 1 at once, then never sends a Login; answers keepalive pings like a live peer would.
        c.write_all(&yamux(0, WINDOW_UPDATE, SYN, 1, 0)).await.expect("open stream");
        let r = tokio::time::timeout(Duration::from_secs(25), async {
            loop {
                let mut h = [0u8; 12];
                if c.read_exact(&mut h).await.is_err() {
                    return;
                }
                let len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
                if h[1] == DATA {
                    let mut b = vec![0u8; len as usize];
                    if c.read_exact(&mut b).await.is_err() {
                        return;
                    }
                } else if h[1] == PING && u16::from_be_bytes([h[2], h[3]]) & SYN != 0 {
                    let _ = c.write_all(&yamux(0, PING, ACK, 0, len)).await;
                }
            }
        })
        .await;
        assert!(r.is_ok(), "an unauthenticated yamux connection stayed open for 25 s (login timeout is 10 s)");
        f.assert_healthy("an idle unauthenticated yamux connection").await;
        f.finish().await;
    })
    .await
}

// ---- g. invalid UTF-8, deeply nested JSON, wrong types ---------------------------------------------------------

/// `depth` nested arrays inside an unknown field, closed: valid JSON that a parser must walk without recursing
/// once per level on the stack.
fn deep_in_unknown_field(depth: usize) -> Vec<u8> {
    let mut b = br#"{"version":"0.70.0","deep":"#.to_vec();
    b.extend(std::iter::repeat_n(b'[', depth));
    b.extend(std::iter::repeat_n(b']', depth));
    b.extend_from_slice(b"}");
    b
}

fn bad_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let mut invalid_utf8 = br#"{"version":"0.70.0","user":""#.to_vec();
    invalid_utf8.extend_from_slice(b"\xff\xfe\xc3\x28");
    invalid_utf8.extend_from_slice(br#"","timestamp":1}"#);
    let mut nested_objects = br#"{"version":"0.70.0","deep":"#.to_vec();
    for _ in 0..1000 {
        nested_objects.extend_from_slice(br#"{"a":"#);
    }
    nested_objects.extend(std::iter::repeat_n(b'}', 1001));
    vec![
        ("invalid UTF-8", invalid_utf8),
        ("5000 unclosed nested arrays", vec![b'['; 5000]),
        ("5000 nested arrays in an unknown field", deep_in_unknown_field(5000)),
        ("1000 nested objects in an unknown field", nested_objects),
        ("wrong types", br#"{"version":5,"pool_count":"five","metas":[1,2],"timestamp":"now"}"#.to_vec()),
        ("an array instead of an object", br#"[{"version":"0.70.0"}]"#.to_vec()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_deeply_nested_and_mistyped_json_is_dropped_with_a_reason() {
    bounded(async {
        for mux in [false, true] {
            let mut f = Fixture::start(mux, "").await;
            for (what, body) in bad_bodies() {
                assert!(body.len() <= 10_240, "{what}: within the frame limit");
                let logged_before = f.server.log().len();
                let frame = raw_frame(b'o', &body);
                let mut c = TcpStream::connect(f.addr()).await.expect("connect");
                if mux {
                    let mut bytes = yamux(0, WINDOW_UPDATE, SYN, 1, 0);
                    bytes.extend_from_slice(&yamux_data(0, 1, &frame));
                    c.write_all(&bytes).await.expect("write");
                    // Stream 1 is closed (FIN or RST); the session itself may stay.
                    let got = tokio::time::timeout(Duration::from_secs(10), async {
                        loop {
                            let mut h = [0u8; 12];
                            if c.read_exact(&mut h).await.is_err() {
                                return;
                            }
                            let flags = u16::from_be_bytes([h[2], h[3]]);
                            let len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
                            if h[1] == DATA && len > 0 {
                                let mut b = vec![0u8; len as usize];
                                let _ = c.read_exact(&mut b).await;
                            }
                            if h[4..8] == 1u32.to_be_bytes() && flags & (4 | 8) != 0 {
                                return;
                            }
                        }
                    })
                    .await;
                    assert!(got.is_ok(), "{what}: stream not closed");
                } else {
                    c.write_all(&frame).await.expect("write");
                    closed_within(&mut c, Duration::from_secs(10), what).await;
                }
                // A reason is logged for this very connection: not frp, or a refused login.
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    let log = f.server.log();
                    let new = &log[logged_before.min(log.len())..];
                    if new.contains("not an frp connection") || new.contains("login refused") {
                        break;
                    }
                    assert!(Instant::now() < deadline, "{what} (mux: {mux}): no reason logged:\n{new}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                f.assert_healthy(what).await;
            }
            let log = f.server.log();
            assert!(log.contains("invalid type"), "{log}");
            f.finish().await;
        }
    })
    .await
}

/// A raw frp client on a plain, non-mux connection: logs in with the test token and speaks on the encrypted
/// control channel.
async fn raw_control(addr: std::net::SocketAddr) -> CryptoStream<TcpStream> {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let login = Login {
        version: "0.70.0".into(),
        user: "raw".into(),
        privilege_key: portway::proto::auth::privilege_key("test-token", ts),
        timestamp: ts,
        pool_count: 0,
        ..Default::default()
    };
    codec::write_msg(&mut c, &Message::Login(login)).await.expect("send login");
    match tokio::time::timeout(Duration::from_secs(10), codec::read_msg(&mut c)).await.expect("login answer") {
        Ok(Message::LoginResp(r)) => assert!(r.error.is_empty(), "raw login refused: {}", r.error),
        other => panic!("unexpected answer {other:?}"),
    }
    CryptoStream::new(c, &Key::derive(b"test-token"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_json_on_the_encrypted_control_channel_is_parsed_or_closes_only_that_session() {
    bounded(async {
        let mut f = Fixture::start(false, "").await;
        let mut ctl = raw_control(f.addr()).await;
        // Valid JSON nested 5000 deep in an unknown field: ignored like any unknown field.
        let mut body = br#"{"proxy_name":"raw.deep","proxy_type":"tcp","deep":"#.to_vec();
        body.extend(std::iter::repeat_n(b'[', 4900));
        body.extend(std::iter::repeat_n(b']', 4900));
        body.extend_from_slice(b"}");
        ctl.write_all(&raw_frame(b'p', &body)).await.expect("send");
        ctl.flush().await.expect("flush");
        match tokio::time::timeout(Duration::from_secs(10), codec::read_msg(&mut ctl)).await {
            Ok(Ok(Message::NewProxyResp(r))) => assert!(r.error.is_empty(), "{}", r.error),
            other => panic!("no NewProxyResp: {other:?}"),
        }
        // 5000 unclosed levels: a bad message, that session (only) is closed.
        ctl.write_all(&raw_frame(b'p', &[b'['; 5000])).await.expect("send");
        ctl.flush().await.expect("flush");
        closed_within(&mut ctl, Duration::from_secs(10), "nested JSON on the control channel").await;
        f.server.wait_log("bad message on the control channel", Duration::from_secs(5)).await;
        f.assert_healthy("nested JSON on a control channel").await;
        f.finish().await;
    })
    .await
}

// ---- h. yamux frames with bogus stream ids and window updates --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_yamux_frames_end_that_session_with_a_reason_and_spare_the_others() {
    bounded(async {
        let mut f = Fixture::start(true, "").await;
        let fatal: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "an even (server) stream id from the client",
                yamux(0, WINDOW_UPDATE, SYN, 2, 0),
                "not a client stream id",
            ),
            ("data opening stream 0", yamux_data(SYN, 0, b"hello"), "not a client stream id"),
            ("yamux version 1", yamux(1, WINDOW_UPDATE, SYN, 1, 0), "version"),
            ("frame type 9", yamux(0, 9, 0, 1, 0), "type"),
            (
                "data overrunning the receive window",
                [yamux(0, WINDOW_UPDATE, SYN, 1, 0), yamux(0, DATA, 0, 1, u32::MAX)].concat(),
                "overran stream 1's receive window",
            ),
        ];
        for (what, bytes, reason) in fatal {
            let mut c = TcpStream::connect(f.addr()).await.expect("connect");
            c.write_all(&bytes).await.expect("write");
            closed_within(&mut c, Duration::from_secs(10), what).await;
            let log = f.server.wait_log(reason, Duration::from_secs(5)).await;
            assert!(log.contains("yamux session closed"), "{what}: {log}");
            f.assert_healthy(what).await;
        }
        f.finish().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yamux_frames_for_unknown_streams_and_overflowing_window_updates_are_ignored_safely() {
    bounded(async {
        let mut f = Fixture::start(true, "").await;
        let mut c = TcpStream::connect(f.addr()).await.expect("connect");
        // Open stream 1, then noise: data and window updates for streams never opened, FIN/RST for unknown ids,
        // an unsolicited ping ACK, and window updates on stream 1 that overflow u32.
        let noise = [
            yamux(0, WINDOW_UPDATE, SYN, 1, 0),
            yamux_data(0, 7, b"nobody"),
            yamux_data(0, 0, b"zero"),
            yamux(0, WINDOW_UPDATE, 0, 9, 1 << 20),
            yamux(0, WINDOW_UPDATE, 4, 11, 0),
            yamux(0, WINDOW_UPDATE, 8, 13, 0),
            yamux(0, PING, ACK, 0, 12345),
            yamux(0, WINDOW_UPDATE, 0, 1, u32::MAX),
            yamux(0, WINDOW_UPDATE, 0, 1, u32::MAX),
        ]
        .concat();
        c.write_all(&noise).await.expect("write noise");
        ping_and_collect(&mut c, 1, 1).await;
        // The same session still works: a real login on stream 1 is answered.
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
        let login = Login {
            version: "0.70.0".into(),
            privilege_key: portway::proto::auth::privilege_key("test-token", ts),
            timestamp: ts,
            ..Default::default()
        };
        c.write_all(&yamux_data(0, 1, &codec::encode_to_vec(&Message::Login(login)))).await.expect("login");
        let mut got = Vec::new();
        for i in 2..10 {
            got.extend(ping_and_collect(&mut c, i, 1).await);
            if matches!(codec::decode(&got), Ok(Some(_))) {
                break;
            }
        }
        match codec::decode(&got) {
            Ok(Some((Message::LoginResp(r), _))) => assert!(r.error.is_empty(), "{}", r.error),
            other => panic!("no LoginResp on the noisy session: {other:?} ({got:?})"),
        }
        f.assert_healthy("yamux noise").await;
        f.finish().await;
    })
    .await
}

// ---- i. proxy names and ports that collide or are out of range -------------------------------------------------

#[test]
fn proxy_name_twice_and_remote_port_out_of_range_are_config_errors() {
    let two = "serverPort = 7000\n[[proxies]]\nname = \"a\"\nlocalPort = 1\nremotePort = 5000\n\
               [[proxies]]\nname = \"a\"\nlocalPort = 2\nremotePort = 5001\n";
    let e = portway::client::ClientConfig::parse(two, "frpc.toml").expect_err("duplicate name").to_string();
    assert!(e.contains("proxies[1].name") && e.contains("used twice"), "{e}");
    for bad in ["70000", "-1", "65536"] {
        let text = format!("serverPort = 7000\n[[proxies]]\nname = \"a\"\nlocalPort = 1\nremotePort = {bad}\n");
        let e = portway::client::ClientConfig::parse(&text, "frpc.toml").expect_err(bad).to_string();
        assert!(e.contains("frpc.toml") && e.contains("remotePort"), "remotePort = {bad}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_remote_port_twice_in_one_client_refuses_the_second_and_remote_port_zero_is_chosen_by_the_server() {
    bounded(async {
        let (echo, _e) = echo_server().await;
        let mut f = Fixture::start(true, "").await;
        let taken = free_port();
        let proxies = tcp_proxy("first", echo, taken, "")
            + &tcp_proxy("second", echo, taken, "")
            + &tcp_proxy("anywhere", echo, 0, "");
        let h = start_client(client_config(&client_toml(f.port, "", &proxies)));
        let refused = |s: &Status, n: &str| match &s.proxies[n].state {
            ProxyState::Error { reason } => Some(reason.clone()),
            _ => None,
        };
        let running = |s: &Status, n: &str| matches!(s.proxies[n].state, ProxyState::Running { .. });
        let s = wait_status(&h, Duration::from_secs(20), "one of the pair refused, the rest running", |s| {
            running(s, "anywhere")
                && ((running(s, "first") && refused(s, "second").is_some())
                    || (running(s, "second") && refused(s, "first").is_some()))
        })
        .await;
        let reason = refused(&s, "first").or_else(|| refused(&s, "second")).expect("reason");
        assert!(reason.contains(&format!("remote port {taken} cannot be opened")), "{reason}");
        echo_isolated(taken, 4, 100).await;
        let ProxyState::Running { remote_addr } = &s.proxies["anywhere"].state else { unreachable!() };
        let chosen: u16 = remote_addr.trim_start_matches(':').parse().expect("remote_addr is :PORT");
        assert_ne!(chosen, 0, "the server chose a port");
        echo_isolated(chosen, 4, 101).await;
        f.server.wait_log("proxy refused", Duration::from_secs(5)).await;
        h.stop().await.expect("stop");
        f.assert_healthy("a port collision").await;
        f.finish().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_new_proxy_with_bad_ports_names_and_types_is_refused_with_the_reason() {
    bounded(async {
        let mut f = Fixture::start(false, "").await;
        let mut ctl = raw_control(f.addr()).await;
        let free = free_port();
        let np = |name: &str, kind: &str, port: i64| NewProxy {
            proxy_name: name.into(),
            proxy_type: kind.into(),
            remote_port: port,
            ..Default::default()
        };
        let cases = [
            (np("raw.high", "tcp", 70_000), "remote port 70000 is out of range"),
            (np("raw.negative", "tcp", -5), "remote port -5 is out of range"),
            (np("", "tcp", free as i64), "proxy name is empty"),
            (np("raw.http", "http", free as i64), "type [http] not supported when vhost http port is not set"),
            (np("raw.ftp", "ftp", 0), "proxy type \"ftp\" is not supported"),
            (np("raw.ok", "tcp", free as i64), ""),
            (np("raw.ok", "tcp", 0), "proxy [raw.ok] already exists"),
            (np("healthy", "tcp", 0), "proxy [healthy] already exists"),
            (np("raw.same-port", "tcp", free as i64), &format!("remote port {free} cannot be opened")),
        ];
        for (msg, want) in cases {
            let name = msg.proxy_name.clone();
            codec::write_msg(&mut ctl, &Message::NewProxy(msg)).await.expect("send NewProxy");
            let resp = loop {
                match tokio::time::timeout(Duration::from_secs(10), codec::read_msg(&mut ctl)).await {
                    Ok(Ok(Message::NewProxyResp(r))) => break r,
                    Ok(Ok(_)) => continue,
                    other => panic!("no NewProxyResp for {name:?}: {other:?}"),
                }
            };
            assert_eq!(resp.proxy_name, name);
            if want.is_empty() {
                assert!(resp.error.is_empty(), "{name}: {}", resp.error);
            } else {
                assert!(resp.error.contains(want), "{name}: {:?} does not say {want:?}", resp.error);
            }
        }
        let log = f.server.log();
        assert!(log.matches("proxy refused").count() >= 7, "each refusal is logged:\n{log}");
        drop(ctl);
        f.assert_healthy("bad NewProxy messages").await;
        f.finish().await;
    })
    .await
}
