//! Real frpc/frps v0.70.0 wire protocol v2 traffic (tests/fixtures/frp-captures/v2-*, copied from
//! `../shared/frp-captures`): Portway's codec parses every frame, its derivation yields exactly the keys the
//! transcripts print, and its AEAD opens every captured control record.

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use portway_proto::aead::Opener;
use portway_proto::msg::Message;
use portway_proto::wire_v2::{
    self, client_check, decode_frame, decode_message, derive_keys, frame_type, transcript_hash, Algorithm, ClientHello,
    ServerHello, MAGIC,
};

fn capture(name: &str) -> Vec<serde_json::Value> {
    let p = format!("{}/../../tests/fixtures/frp-captures/{name}/capture.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&p).expect("capture present")).expect("capture is JSON")
}

/// All bytes of one relay connection in one direction, in order.
fn bytes(chunks: &[serde_json::Value], conn: u64, dir: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks.iter().filter(|c| c["conn"] == conn && c["dir"] == dir) {
        let b = c["b64"].as_str().expect("b64");
        out.extend(base64::engine::general_purpose::STANDARD.decode(b).expect("base64"));
    }
    out
}

/// Splits frames off the front of `buf` while they are of the given kinds; returns their payloads and the rest.
fn frames<'a>(mut buf: &'a [u8], kinds: &[u16]) -> (Vec<&'a [u8]>, &'a [u8]) {
    let mut out = Vec::new();
    for want in kinds {
        let (kind, payload, used) = decode_frame(buf).expect("valid frame").expect("complete frame");
        assert_eq!(kind, *want);
        out.push(payload);
        buf = &buf[used..];
    }
    (out, buf)
}

/// Opens an AEAD stream completely and decodes the v2 frames inside; also checks one record per header and one
/// per payload, as frp writes them.
fn open_all(alg: Algorithm, key: &wire_v2::AeadKey, mut wire: &[u8]) -> Vec<Message> {
    let mut o = Opener::new(alg, key);
    let mut plain = Vec::new();
    let mut records = 0;
    while !wire.is_empty() {
        let (p, used) = o.open(wire).expect("record authenticates").expect("complete record");
        if used != alg.nonce_len() || records > 0 {
            records += 1;
        }
        plain.extend_from_slice(&p);
        wire = &wire[used..];
    }
    let mut msgs = Vec::new();
    let mut rest = &plain[..];
    while let Some((kind, payload, used)) = decode_frame(rest).expect("valid inner frame") {
        assert_eq!(kind, frame_type::MESSAGE);
        msgs.push(decode_message(payload).expect("known message"));
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    assert_eq!(records, 2 * msgs.len(), "one record per frame header and one per payload");
    msgs
}

fn names(m: &[Message]) -> Vec<&'static str> {
    m.iter().map(|m| m.name()).collect()
}

struct Expect {
    alg: Algorithm,
    hash: &'static str,
    c2s: &'static str,
    s2c: &'static str,
}

fn check_control(name: &str, e: Expect) {
    let chunks = capture(name);
    let up = bytes(&chunks, 1, "client->server");
    let down = bytes(&chunks, 1, "server->client");
    assert_eq!(&up[..7], &MAGIC);
    let (f, up_rest) = frames(&up[7..], &[frame_type::CLIENT_HELLO, frame_type::MESSAGE]);
    let (ch_raw, login) = (f[0], f[1]);
    let (g, down_rest) = frames(&down, &[frame_type::SERVER_HELLO, frame_type::MESSAGE]);
    let (sh_raw, login_resp) = (g[0], g[1]);
    assert!(matches!(decode_message(login).unwrap(), Message::Login(l) if l.version == "0.70.0"));
    assert!(matches!(decode_message(login_resp).unwrap(), Message::LoginResp(r) if r.error.is_empty()));

    let ch = ClientHello::parse(ch_raw).unwrap();
    let sh = ServerHello::parse(sh_raw).unwrap();
    assert_eq!(client_check(&ch, &sh).unwrap(), e.alg);
    // Portway as the server would choose what frps chose.
    assert_eq!(wire_v2::server_select(&ch, [0; 32]).unwrap().1, e.alg);

    let hash = transcript_hash(ch_raw, sh_raw);
    assert_eq!(hex::encode(hash), e.hash);
    let keys = derive_keys(b"t", &hash, e.alg);
    assert_eq!(hex::encode(keys.c2s.as_bytes()), e.c2s);
    assert_eq!(hex::encode(keys.s2c.as_bytes()), e.s2c);

    let up_msgs = open_all(e.alg, &keys.c2s, up_rest);
    assert_eq!(names(&up_msgs), ["NewProxy", "NewProxy", "Ping"]);
    let down_msgs = open_all(e.alg, &keys.s2c, down_rest);
    assert_eq!(names(&down_msgs)[..4], ["ReqWorkConn", "NewProxyResp", "NewProxyResp", "Pong"]);
    assert!(down_msgs.iter().any(|m| matches!(m, Message::NewProxyResp(r) if r.remote_addr == ":16001")));
}

#[test]
fn v2_nomux_keys_and_records_match_frp() {
    check_control(
        "v2-nomux",
        Expect {
            alg: Algorithm::Aes256Gcm,
            hash: "00fb159addc9bb931d9f2d5521a64bcd2a9c3fc2f35f6e1e23c90cce2483ad83",
            c2s: "8cb6acd5388fc12c2a7279221c215927a886e03c19f7e81100d95c9f4e839e5b",
            s2c: "086048acc661249df100cfdf2cc60e407d55e0240e9ef9862d50f5f0811d8d6a",
        },
    );
}

#[test]
fn v2_xchacha_keys_and_records_match_frp() {
    check_control(
        "v2-xchacha",
        Expect {
            alg: Algorithm::XChaCha20Poly1305,
            hash: "8ac8752f4d902b7b579a855f73a04041279ca2a5a868cc2910aa9172509a6b73",
            c2s: "f481114c999a497fffcbb99cb4ea415831e39216458ffb68dcf27151254714d6",
            s2c: "bddb789948798967b2c5d7971dd7abd6c4f757c6ac7d35e52f6ec85b67e53cd9",
        },
    );
}

#[test]
fn v2_work_connections_are_plain_frames() {
    let chunks = capture("v2-nomux");
    // conn 2: the udp work connection: NewWorkConn, then UDPPacket frames; the answer StartWorkConn + UDPPacket.
    let up = bytes(&chunks, 2, "client->server");
    assert_eq!(&up[..7], &MAGIC);
    let (f, rest) = frames(&up[7..], &[frame_type::MESSAGE, frame_type::MESSAGE]);
    assert!(rest.is_empty());
    assert!(matches!(decode_message(f[0]).unwrap(), Message::NewWorkConn(w) if w.run_id == "4a79e684d2f55027"));
    assert!(matches!(decode_message(f[1]).unwrap(), Message::UdpPacket(p) if p.content == b"voice-datagram"));
    let down = bytes(&chunks, 2, "server->client");
    let (f, _) = frames(&down, &[frame_type::MESSAGE, frame_type::MESSAGE]);
    assert!(matches!(decode_message(f[0]).unwrap(), Message::StartWorkConn(s) if s.proxy_name == "voice"));
    // conn 3: tcp work connection: StartWorkConn, then raw bytes.
    let down = bytes(&chunks, 3, "server->client");
    let (f, raw) = frames(&down, &[frame_type::MESSAGE]);
    assert!(matches!(decode_message(f[0]).unwrap(), Message::StartWorkConn(s) if s.dst_port == 16001));
    assert_eq!(raw, b"hello portway");
    // Portway encodes the same message to the same bytes.
    let (_, frame_bytes) = down.split_at(0);
    let again = wire_v2::encode_message(&decode_message(f[0]).unwrap()).unwrap();
    assert_eq!(&frame_bytes[..again.len()], &again[..]);
}
