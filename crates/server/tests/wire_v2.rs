//! Wire protocol v2 against Portway's server, on 127.0.0.1.
//!
//! - The client side of real frpc v0.70.0 v2 sessions (tests/fixtures/frp-captures/v2-*) is replayed: magic,
//!   ClientHello and Login byte for byte, then the control messages frpc sent (decrypted from the capture with
//!   the keys of the captured handshake) re-sealed under the keys of this handshake with frpc's stream nonce.
//!   Portway must answer as frps did, and a tcp visitor and a udp datagram must come back through it.
//! - Bad input: truncated magic, unknown algorithms, wrong-size random, a record that fails authentication, an
//!   oversized frame: the connection closes, and a v2 client logged in alongside keeps working.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use portway_proto::aead::{AeadStream, Opener, Sealer};
use portway_proto::msg::{Message, NewWorkConn, UdpPacket};
use portway_proto::mux::{MuxConfig, MuxSession};
use portway_proto::transport::BoxedIo;
use portway_proto::wire_v2::{
    self, decode_frame, decode_message, derive_keys, frame_type, transcript_hash, Algorithm, ClientHello, ServerHello,
    MAGIC,
};
use portway_proto::yamux::{FrameType, Header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

mod support;
use support::*;

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

/// The data of each yamux stream in a captured direction.
fn demux(mut b: &[u8]) -> BTreeMap<u32, Vec<u8>> {
    let mut streams: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    while let Some(h) = Header::decode(b).unwrap() {
        b = &b[12..];
        if h.kind == FrameType::Data {
            let n = h.length as usize;
            streams.entry(h.stream_id).or_default().extend_from_slice(&b[..n]);
            b = &b[n..];
        }
    }
    streams
}

/// Splits a frame off the front: (type, whole frame bytes, payload, rest).
fn frame(b: &[u8]) -> (u16, &[u8], &[u8], &[u8]) {
    let (kind, payload, used) = decode_frame(b).unwrap().unwrap();
    (kind, &b[..used], payload, &b[used..])
}

/// Opens a captured AEAD stream and returns its messages.
fn open_all(alg: Algorithm, key: &wire_v2::AeadKey, mut wire: &[u8]) -> Vec<Message> {
    let mut o = Opener::new(alg, key);
    let mut plain = Vec::new();
    while !wire.is_empty() {
        let (p, used) = o.open(wire).unwrap().unwrap();
        plain.extend_from_slice(&p);
        wire = &wire[used..];
    }
    let mut msgs = Vec::new();
    let mut rest = &plain[..];
    while let Some((_, payload, used)) = decode_frame(rest).unwrap() {
        msgs.push(decode_message(payload).unwrap());
        rest = &rest[used..];
    }
    msgs
}

async fn start_server(tcp_mux: bool) -> TestServer {
    let toml = format!("bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\ntransport.tcpMux = {tcp_mux}\n");
    start_server_with(&toml).await.0
}

/// Opens logical connections the way the captured frpc did: one TCP connection each, or yamux streams.
struct Dialer {
    port: u16,
    mux: Option<MuxSession>,
}

impl Dialer {
    async fn new(port: u16, mux: bool) -> Dialer {
        let mux = if mux {
            let tcp: BoxedIo = Box::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
            Some(MuxSession::client(tcp, MuxConfig::frp(Duration::from_secs(30))))
        } else {
            None
        };
        Dialer { port, mux }
    }

    async fn open(&self) -> BoxedIo {
        match &self.mux {
            Some(m) => Box::new(m.open().unwrap()),
            None => Box::new(TcpStream::connect(("127.0.0.1", self.port)).await.unwrap()),
        }
    }
}

/// Plays a captured frpc's v2 session against Portway's server.
async fn replay(name: &str, mux: bool, alg: Algorithm) {
    let chunks = capture(name);
    let (up, down) = if mux {
        (
            demux(&bytes(&chunks, 1, "client->server"))[&1].clone(),
            demux(&bytes(&chunks, 1, "server->client"))[&1].clone(),
        )
    } else {
        (bytes(&chunks, 1, "client->server"), bytes(&chunks, 1, "server->client"))
    };
    assert_eq!(up[..7], MAGIC);
    let (k, ch_frame, ch_raw, rest) = frame(&up[7..]);
    assert_eq!(k, frame_type::CLIENT_HELLO);
    let (k, login_frame, _, sealed_up) = frame(rest);
    assert_eq!(k, frame_type::MESSAGE);
    let (_, _, sh_orig, _) = frame(&down);
    let orig_keys = derive_keys(b"t", &transcript_hash(ch_raw, sh_orig), alg);
    let frpc_msgs = open_all(alg, &orig_keys.c2s, sealed_up);
    let frpc_nonce = sealed_up[..alg.nonce_len()].to_vec();

    let server = start_server(mux).await;
    let dialer = Dialer::new(server.port, mux).await;
    let mut ctl = dialer.open().await;
    let mut hello = MAGIC.to_vec();
    hello.extend_from_slice(ch_frame);
    hello.extend_from_slice(login_frame);
    ctl.write_all(&hello).await.unwrap();

    let sh_raw = wire_v2::read_frame_of(&mut ctl, frame_type::SERVER_HELLO).await.unwrap();
    let sh = ServerHello::parse(&sh_raw).unwrap();
    let ch = ClientHello::parse(ch_raw).unwrap();
    assert_eq!(wire_v2::client_check(&ch, &sh).unwrap(), alg, "Portway selects what frps selected");
    assert!(sh.selected.crypto.server_key_share.is_empty(), "no X25519 share for a peer that offered none");
    let Message::LoginResp(resp) = wire_v2::read_message(&mut ctl).await.unwrap() else { panic!("not LoginResp") };
    assert!(resp.error.is_empty(), "login refused: {}", resp.error);

    let keys = derive_keys(b"t", &transcript_hash(ch_raw, &sh_raw), alg);
    let sealer = Sealer::new(alg, &keys.c2s, frpc_nonce);
    let mut ctl = AeadStream::with_sealer(ctl, sealer, Opener::new(alg, &keys.s2c));
    let (web_port, voice_port) = (free_port(), free_port());
    for m in &frpc_msgs {
        let mut m = m.clone();
        if let Message::NewProxy(np) = &mut m {
            np.remote_port = if np.proxy_name == "web" { web_port } else { voice_port } as i64;
        }
        wire_v2::write_message(&mut ctl, &m).await.unwrap();
    }
    let mut answers = Vec::new();
    for _ in 0..10 {
        let m = tokio::time::timeout(T, wire_v2::read_message(&mut ctl)).await.unwrap().unwrap();
        if let Message::NewProxyResp(r) = &m {
            assert!(r.error.is_empty(), "proxy refused: {}", r.error);
        }
        answers.push(m);
        let resps = answers.iter().filter(|m| matches!(m, Message::NewProxyResp(_))).count();
        let pinged = frpc_msgs.iter().any(|m| matches!(m, Message::Ping(_)));
        if resps == 2 && (!pinged || answers.iter().any(|m| matches!(m, Message::Pong(_)))) {
            break;
        }
    }
    assert!(answers.iter().any(|m| matches!(m, Message::ReqWorkConn(_))));
    assert!(answers.iter().any(|m| matches!(m, Message::NewProxyResp(r) if r.remote_addr == format!(":{web_port}"))));
    assert!(answers.iter().any(|m| matches!(m, Message::NewProxyResp(r) if r.remote_addr == format!(":{voice_port}"))));

    // Two work connections, as frpc opens them: magic + NewWorkConn; each serves what StartWorkConn names.
    for _ in 0..2 {
        let mut w = dialer.open().await;
        w.write_all(&MAGIC).await.unwrap();
        let nwc = Message::NewWorkConn(NewWorkConn { run_id: resp.run_id.clone(), ..Default::default() });
        wire_v2::write_message(&mut w, &nwc).await.unwrap();
        tokio::spawn(async move {
            let Ok(Message::StartWorkConn(s)) = wire_v2::read_message(&mut w).await else { return };
            if s.proxy_name == "web" {
                let (mut r, mut wr) = tokio::io::split(w);
                let _ = tokio::io::copy(&mut r, &mut wr).await;
            } else {
                // udp: v2 UDPPacket frames both ways; echo each.
                for _ in 0..4 {
                    let Ok(Message::UdpPacket(p)) = wire_v2::read_message(&mut w).await else { return };
                    let back = UdpPacket { content: p.content, local_addr: None, remote_addr: p.remote_addr };
                    if wire_v2::write_message(&mut w, &Message::UdpPacket(back)).await.is_err() {
                        return;
                    }
                }
            }
        });
    }

    let mut v = TcpStream::connect(("127.0.0.1", web_port)).await.unwrap();
    v.write_all(b"hello portway").await.unwrap();
    let mut got = [0u8; 13];
    tokio::time::timeout(T, v.read_exact(&mut got)).await.unwrap().unwrap();
    assert_eq!(&got, b"hello portway");

    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    u.send_to(b"voice-datagram", ("127.0.0.1", voice_port)).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = tokio::time::timeout(T, u.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], b"voice-datagram");
}

#[tokio::test]
async fn replays_captured_frpc_v2_nomux() {
    tokio::time::timeout(Duration::from_secs(60), replay("v2-nomux", false, Algorithm::Aes256Gcm)).await.unwrap();
}

#[tokio::test]
async fn replays_captured_frpc_v2_mux() {
    tokio::time::timeout(Duration::from_secs(60), replay("v2-mux", true, Algorithm::Aes256Gcm)).await.unwrap();
}

#[tokio::test]
async fn replays_captured_frpc_v2_xchacha() {
    tokio::time::timeout(Duration::from_secs(60), replay("v2-xchacha", false, Algorithm::XChaCha20Poly1305))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input

/// A fresh v2 control session with Portway's own hello; returns the AEAD channel.
async fn login_v2(port: u16) -> AeadStream<BoxedIo> {
    login_v2_share(port, false).await
}

/// The same, optionally with Portway's X25519 key share; the server must answer with one exactly then, and
/// the channel only works if both derived `shared ‖ token`.
async fn login_v2_share(port: u16, share: bool) -> AeadStream<BoxedIo> {
    let mut c: BoxedIo = Box::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    let mut ch = ClientHello::new(Default::default(), &Algorithm::ALL, [7; 32]);
    let ks = wire_v2::KeyShare::random();
    if share {
        ch.capabilities.crypto.client_key_share = ks.public().to_vec();
    }
    let ch_raw = ch.to_json();
    let ts = 1_800_000_000;
    let login = Message::Login(portway_proto::msg::Login {
        version: "0.70.0".into(),
        privilege_key: portway_proto::auth::privilege_key("t", ts),
        timestamp: ts,
        pool_count: 0,
        ..Default::default()
    });
    let mut first = MAGIC.to_vec();
    wire_v2::encode_frame(frame_type::CLIENT_HELLO, &ch_raw, &mut first).unwrap();
    first.extend(wire_v2::encode_message(&login).unwrap());
    c.write_all(&first).await.unwrap();
    let sh_raw = wire_v2::read_frame_of(&mut c, frame_type::SERVER_HELLO).await.unwrap();
    let sh = ServerHello::parse(&sh_raw).unwrap();
    let alg = wire_v2::client_check(&ch, &sh).unwrap();
    let Message::LoginResp(r) = wire_v2::read_message(&mut c).await.unwrap() else { panic!("not LoginResp") };
    assert!(r.error.is_empty());
    let server_share = &sh.selected.crypto.server_key_share;
    assert_eq!(!server_share.is_empty(), share, "the server answers a key share exactly when offered one");
    let shared = share.then(|| ks.agree(server_share).unwrap());
    let keys = derive_keys(&wire_v2::key_material(shared.as_ref(), b"t"), &transcript_hash(&ch_raw, &sh_raw), alg);
    AeadStream::new(c, alg, &keys.c2s, &keys.s2c)
}

/// Pings on a control channel and expects a Pong (skipping other messages, bounded).
async fn ping_pong(ctl: &mut AeadStream<BoxedIo>) {
    wire_v2::write_message(ctl, &Message::Ping(Default::default())).await.unwrap();
    for _ in 0..10 {
        let m = tokio::time::timeout(T, wire_v2::read_message(ctl)).await.unwrap().unwrap();
        if let Message::Pong(p) = m {
            assert!(p.error.is_empty());
            return;
        }
    }
    panic!("no Pong");
}

/// Sends `bytes` on a new connection and returns everything the server wrote before closing it.
async fn answer_to(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    c.write_all(bytes).await.unwrap();
    // The peer then stops sending (a truncated magic must not wait out the login timeout).
    c.shutdown().await.unwrap();
    let mut out = Vec::new();
    // Reading to the end proves the server closed the connection.
    tokio::time::timeout(T, c.read_to_end(&mut out)).await.unwrap().unwrap_or_default();
    out
}

fn hello_frames(mutate: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let ch = ClientHello::new(Default::default(), &Algorithm::ALL, [7; 32]);
    let mut v = serde_json::to_value(&ch).unwrap();
    mutate(&mut v);
    let mut b = MAGIC.to_vec();
    wire_v2::encode_frame(frame_type::CLIENT_HELLO, &serde_json::to_vec(&v).unwrap(), &mut b).unwrap();
    b
}

fn refusal(answer: &[u8]) -> String {
    let (k, payload, used) = decode_frame(answer).unwrap().expect("a whole ServerHello");
    assert_eq!(k, frame_type::SERVER_HELLO);
    assert_eq!(used, answer.len(), "nothing after the refusal");
    ServerHello::parse(payload).unwrap().error
}

#[tokio::test]
async fn bad_v2_input_closes_only_that_connection() {
    let server = start_server(false).await;
    let mut good = tokio::time::timeout(T, login_v2(server.port)).await.unwrap();
    ping_pong(&mut good).await;
    // With the X25519 extension the channel is keyed by shared ‖ token (the Pong only opens with those keys).
    let mut with_share = tokio::time::timeout(T, login_v2_share(server.port, true)).await.unwrap();
    ping_pong(&mut with_share).await;

    // A low-order key share: refused with an error ServerHello.
    let b = hello_frames(|v| {
        v["capabilities"]["crypto"]["clientKeyShare"] = serde_json::json!(wire_v2::b64_encode(&[0; 32]))
    });
    assert_eq!(refusal(&answer_to(server.port, &b).await), "invalid X25519 key share: low-order point");

    // Truncated magic: closed without an answer.
    assert!(answer_to(server.port, &MAGIC[..5]).await.is_empty());

    // Unknown algorithms: frp's error ServerHello, then closed.
    let b = hello_frames(|v| v["capabilities"]["crypto"]["algorithms"] = serde_json::json!(["rot13", "des"]));
    assert_eq!(refusal(&answer_to(server.port, &b).await), "no supported crypto algorithm");

    // A 16-byte client random.
    let b = hello_frames(|v| {
        v["capabilities"]["crypto"]["clientRandom"] = serde_json::json!(wire_v2::b64_encode(&[1; 16]))
    });
    assert_eq!(refusal(&answer_to(server.port, &b).await), "invalid crypto client random length 16, want 32");

    // An oversized frame right after the magic: closed before anything is read or allocated for it.
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&[0, 16, 0, 0, 0, 1, 0, 1]);
    assert!(answer_to(server.port, &b).await.is_empty());

    // Non-zero flags.
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&[0, 16, 0, 1, 0, 0, 0, 0]);
    assert!(answer_to(server.port, &b).await.is_empty());

    // A v2 Login without a ClientHello: refused as frps does.
    let mut b = MAGIC.to_vec();
    b.extend(wire_v2::encode_message(&Message::Login(Default::default())).unwrap());
    let a = answer_to(server.port, &b).await;
    let (_, payload, _) = decode_frame(&a).unwrap().unwrap();
    assert!(matches!(decode_message(payload).unwrap(), Message::LoginResp(r) if r.error.contains("missing v2 crypto")));

    // A logged-in session whose next record fails authentication: that session is closed.
    let mut victim = login_v2(server.port).await;
    ping_pong(&mut victim).await;
    let mut raw = victim;
    // Bypass the sealer: write a well-formed but unauthenticated record under the stream nonce already sent.
    let inner: &mut BoxedIo = raw_inner(&mut raw);
    inner.write_all(&[0, 0, 0, 20]).await.unwrap();
    inner.write_all(&[0xAA; 20]).await.unwrap();
    let mut rest = Vec::new();
    // EOF or a reset, either way within the bound: the server dropped the session.
    let closed = tokio::time::timeout(T, inner.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the server keeps a session whose record failed authentication");

    // The first session never noticed.
    ping_pong(&mut good).await;
}

fn raw_inner(s: &mut AeadStream<BoxedIo>) -> &mut BoxedIo {
    s.get_mut()
}

// ---------------------------------------------------------------------------------------------------------------
// Portway client ↔ Portway server

use portway_client::ClientConfig;

fn bulk() -> Vec<u8> {
    (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

#[tokio::test]
async fn portway_client_and_server_over_v2_with_mux_tls_and_websocket() {
    let cases = [
        (false, "transport.tcpMux = false\ntransport.tls.enable = false"),
        (true, "transport.tcpMux = true\ntransport.tls.enable = false"),
        (false, "transport.tcpMux = false\ntransport.tls.enable = true"),
        (true, "transport.tcpMux = true\ntransport.tls.enable = true"),
        (true, "transport.protocol = \"websocket\"\ntransport.tcpMux = true\ntransport.tls.enable = false"),
    ];
    for (mux, transport) in cases {
        let (server, stats) = start_server_with(&format!(
            "bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\ntransport.tcpMux = {mux}\n"
        ))
        .await;
        let t = format!("{transport}\ntransport.wireProtocol = \"v2\"");
        let (h, web, voice) = tokio::time::timeout(Duration::from_secs(60), client_with_proxies(server.port, &t))
            .await
            .unwrap_or_else(|_| panic!("{transport}: client did not come up"));
        check_tcp_echo(web, &bulk()).await;
        check_udp_echo(voice).await;
        let wires: Vec<_> = stats.wire_protocols().await.into_iter().map(|(_, w)| w).collect();
        assert_eq!(wires, ["v2"], "{transport}");
        let _ = h.stop().await;
    }
}

#[tokio::test]
async fn v1_and_v2_clients_share_one_server() {
    let web_port = free_port();
    let (server, stats) = start_server_with(&format!(
        "bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\ntransport.tcpMux = true\n\
         webServer.addr = \"127.0.0.1\"\nwebServer.port = {web_port}\n"
    ))
    .await;
    let (a, web1, voice1) = client_with_proxies(server.port, "user = \"one\"\ntransport.wireProtocol = \"v1\"").await;
    let (b, web2, voice2) = client_with_proxies(server.port, "user = \"two\"\ntransport.wireProtocol = \"v2\"").await;
    for (web, voice) in [(web1, voice1), (web2, voice2)] {
        check_tcp_echo(web, b"both at once").await;
        check_udp_echo(voice).await;
    }
    let mut wires: Vec<_> = stats.wire_protocols().await.into_iter().map(|(_, w)| w).collect();
    wires.sort();
    assert_eq!(wires, ["v1", "v2"]);
    // The dashboard API reports each client's protocol as frps does (`wireProtocol`).
    let mut c = TcpStream::connect(("127.0.0.1", web_port)).await.unwrap();
    c.write_all(b"GET /api/clients HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut resp = String::new();
    tokio::time::timeout(T, c.read_to_string(&mut resp)).await.unwrap().unwrap();
    let body = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {resp}"));
    let mut reported: Vec<String> =
        v.as_array().unwrap().iter().map(|c| c["wireProtocol"].as_str().unwrap().to_string()).collect();
    reported.sort();
    assert_eq!(reported, ["v1", "v2"], "{body}");
    let _ = a.stop().await;
    let _ = b.stop().await;
}

#[tokio::test]
async fn v2_client_names_a_server_without_v2() {
    // A pre-v0.69 frps: reads the first byte, finds no v1 message type ('F'), closes.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        for _ in 0..4 {
            let Ok((mut c, _)) = l.accept().await else { return };
            let mut b = [0u8; 1];
            let _ = c.read_exact(&mut b).await;
        }
    });
    let toml = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {port}\nauth.token = \"t\"\nloginFailExit = true\n\
         transport.tcpMux = false\ntransport.tls.enable = false\ntransport.wireProtocol = \"v2\"\n"
    );
    let h = start_client(&toml);
    let err = tokio::time::timeout(T, h.wait()).await.unwrap().unwrap_err();
    assert!(
        err.to_string()
            .contains("this server does not speak wire protocol v2; remove transport.wireProtocol or upgrade it"),
        "{err}"
    );
}

#[test]
fn wire_protocol_config_values() {
    for ok in ["", "transport.wireProtocol = \"v1\"", "transport.wireProtocol = \"v2\""] {
        let c = ClientConfig::parse(ok, "f.toml").unwrap().config;
        assert_eq!(c.transport.wire().as_str(), if ok.contains("v2") { "v2" } else { "v1" });
    }
    let e = ClientConfig::parse("transport.wireProtocol = \"v3\"\n", "f.toml").unwrap_err();
    assert!(e.to_string().contains("transport.wireProtocol"), "{e}");
}
