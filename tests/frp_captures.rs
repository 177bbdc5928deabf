//! Compatibility with real frp v0.70.0 traffic (tests/fixtures/frp-captures, see its README).
//!
//! For every capture the bytes are reassembled per connection and direction, unwrapped (WebSocket, yamux) as
//! needed, decoded with Portway's codec, the control channel decrypted with Portway's cipher, and the result
//! compared with the capture tool's transcript and with what Portway itself would send: every frame
//! re-encoded by Portway must equal frp's bytes exactly (field names, order, omitted empty fields), and
//! re-encrypting the decrypted control stream with frp's IV must give frp's ciphertext.

#[path = "support/frp_capture.rs"]
mod frp_capture;
#[path = "support/websocket.rs"]
mod websocket;

use std::collections::BTreeMap;

use base64::Engine;
use frp_capture::{json_matches, load_chunks, parse_transcript, read_fixture, reassemble, Dir, Item, Transcript};
use portway_proto::auth;
use portway_proto::codec;
use portway_proto::crypto::{Decryptor, Encryptor, Key, IV_LEN};
use portway_proto::msg::*;
use portway_proto::yamux::{self, flags, FrameType, Header};

const TOKEN: &str = "t";
/// The window delta frp's yamux announces when opening (and acknowledging) a stream.
const FRP_OPEN_DELTA: u32 = 6_029_312;

/// One frp frame as it was on the wire (after decryption for the control channel).
#[derive(Debug, Clone)]
struct Frame {
    msg: Message,
    /// Type byte, length and JSON body exactly as frp wrote them.
    bytes: Vec<u8>,
    encrypted: bool,
}

impl Frame {
    /// Checks that Portway re-encodes the decoded message to exactly frp's bytes.
    fn new(msg: Message, bytes: &[u8], encrypted: bool) -> Frame {
        let ours = codec::encode_to_vec(&msg);
        assert_eq!(
            ours,
            bytes,
            "Portway re-encodes differently:\n ours  {}\n frp's {}",
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(bytes)
        );
        Frame { msg, bytes: bytes.to_vec(), encrypted }
    }

    /// The JSON body as Portway encodes the decoded message.
    fn body(&self) -> String {
        String::from_utf8(self.msg.to_json()).expect("JSON is UTF-8")
    }
}

/// One direction of one control or work connection (a TCP connection, or a yamux stream).
#[derive(Debug, Default)]
struct Side {
    frames: Vec<Frame>,
    /// For a control channel: the IV that opened the encrypted part.
    iv: Option<[u8; IV_LEN]>,
    /// For a work connection: the bytes after its first frame.
    raw: Option<Vec<u8>>,
}

impl Side {
    fn types(&self) -> String {
        self.frames.iter().map(|f| f.msg.type_byte() as char).collect()
    }
}

/// Decodes one direction of a connection given its bytes in the pieces they arrived in (TCP chunks, or yamux
/// data frames): a plain first frame, then either the encrypted control channel or raw work-connection bytes.
fn decode_side(pieces: &[&[u8]]) -> Side {
    let whole: Vec<u8> = pieces.concat();
    let (first, n) = codec::decode(&whole)
        .unwrap_or_else(|e| panic!("first frame does not decode: {e}"))
        .expect("a whole first frame");
    let mut side = Side::default();
    side.frames.push(Frame::new(first.clone(), &whole[..n], false));
    match first.type_byte() {
        type_byte::LOGIN | type_byte::LOGIN_RESP => {
            let (iv, plain) = decrypt_control(pieces, n);
            side.iv = Some(iv);
            let mut rest = &plain[..];
            while !rest.is_empty() {
                let (m, used) = codec::decode(rest)
                    .unwrap_or_else(|e| panic!("decrypted frame does not decode: {e}"))
                    .unwrap_or_else(|| panic!("decrypted control stream ends mid-frame: {} bytes left", rest.len()));
                side.frames.push(Frame::new(m, &rest[..used], true));
                rest = &rest[used..];
            }
        }
        type_byte::NEW_WORK_CONN | type_byte::START_WORK_CONN => side.raw = Some(whole[n..].to_vec()),
        t => panic!("connection starts with unexpected frame type {:?}", t as char),
    }
    side
}

/// Decrypts everything after the first `skip` bytes of a control stream, feeding the decryptor the pieces as
/// they arrived. Also checks that one-shot and byte-by-byte decryption agree, and that Portway's encryptor
/// given frp's IV produces frp's ciphertext.
fn decrypt_control(pieces: &[&[u8]], skip: usize) -> ([u8; IV_LEN], Vec<u8>) {
    let key = Key::derive(TOKEN.as_bytes());
    let whole: Vec<u8> = pieces.concat();
    assert!(whole.len() > skip + IV_LEN, "control stream has no encrypted part");

    let mut dec = Decryptor::new(&key);
    let mut plain = Vec::new();
    let mut offset = 0;
    for p in pieces {
        let (start, end) = (offset, offset + p.len());
        offset = end;
        if end <= skip {
            continue;
        }
        let mut buf = p[skip.saturating_sub(start)..].to_vec();
        let r = dec.apply(&mut buf);
        plain.extend_from_slice(&buf[r]);
    }

    for step in [usize::MAX, 1] {
        let mut dec = Decryptor::new(&key);
        let mut other = Vec::new();
        for c in whole[skip..].chunks(step.min(whole.len())) {
            let mut buf = c.to_vec();
            let r = dec.apply(&mut buf);
            other.extend_from_slice(&buf[r]);
        }
        assert_eq!(other, plain, "decrypting in pieces of {step} bytes differs");
    }

    let iv: [u8; IV_LEN] = whole[skip..skip + IV_LEN].try_into().expect("16 bytes");
    assert_eq!(plain.len(), whole.len() - skip - IV_LEN);
    let mut again = plain.clone();
    Encryptor::new(&key, iv).apply(&mut again);
    assert_eq!(again, whole[skip + IV_LEN..], "Portway's encryptor with frp's IV must give frp's ciphertext");
    (iv, plain)
}

/// Both directions of every connection (nomux: TCP connection number; mux: yamux stream id).
type Conns = BTreeMap<u32, BTreeMap<Dir, Side>>;

/// The transcript's items for a decoded side. `always_raw`: the transcript lists the raw bytes of a work
/// connection even when there are none (it does so for TCP connections, not for yamux streams).
fn items_of(side: &Side, always_raw: bool) -> Vec<Item> {
    let mut out: Vec<Item> = side
        .frames
        .iter()
        .map(|f| {
            let t = f.msg.type_byte();
            if f.encrypted {
                Item::Decrypted(t, f.body())
            } else {
                Item::Plain(t, f.body())
            }
        })
        .collect();
    if let Some(raw) = &side.raw {
        if always_raw || !raw.is_empty() {
            out.push(Item::Raw(raw.len(), raw.clone()));
        }
    }
    out
}

fn assert_items_match(what: &str, shown: &[Item], actual: &[Item]) {
    assert_eq!(shown.len(), actual.len(), "{what}: transcript lists {shown:?}, decoded {actual:?}");
    for (i, (s, a)) in shown.iter().zip(actual).enumerate() {
        match (s, a) {
            (Item::Plain(st, sj), Item::Plain(at, aj)) | (Item::Decrypted(st, sj), Item::Decrypted(at, aj)) => {
                assert_eq!(*st as char, *at as char, "{what} item {i}: type byte");
                assert!(json_matches(sj, aj), "{what} item {i}: transcript {sj}\n decoded and re-encoded {aj}");
            }
            (Item::Raw(sn, sb), Item::Raw(an, ab)) => {
                assert_eq!(sn, an, "{what} item {i}: raw byte count");
                assert!(ab.starts_with(sb), "{what} item {i}: raw bytes {sb:?} vs {ab:?}");
                // The transcript cuts long raw data at 40 (yamux) or 60 (TCP) bytes.
                assert!(sb.len() == *sn || sb.len() >= 40, "{what} item {i}: transcript shows {} of {sn}", sb.len());
            }
            _ => panic!("{what} item {i}: transcript has {s:?}, decoded {a:?}"),
        }
    }
}

fn compare_with_transcript(conns: &Conns, transcript: &Transcript, always_raw: bool) {
    let mut actual: BTreeMap<(u32, Dir), Vec<Item>> = BTreeMap::new();
    for (id, sides) in conns {
        for (dir, side) in sides {
            actual.insert((*id, *dir), items_of(side, always_raw));
        }
    }
    let shown_keys: Vec<_> = transcript.items.keys().collect();
    let actual_keys: Vec<_> = actual.keys().collect();
    assert_eq!(shown_keys, actual_keys, "connections/streams listed in the transcript");
    for (k, shown) in &transcript.items {
        assert_items_match(&format!("{k:?}"), shown, &actual[k]);
    }
}

/// What a capture boils down to, asserted per capture.
#[derive(Debug, PartialEq)]
struct Summary {
    /// Type bytes of the control channel, client→server then server→client.
    control: (String, String),
    /// Work connections in order: proxy named by StartWorkConn (empty if none came), raw bytes up and down.
    work: Vec<(String, usize, usize)>,
    /// UDP packets decoded inside work connections, both ways.
    udp_packets: usize,
}

/// Checks every message against what the captures' configs imply, and summarises.
fn check_semantics(conns: &Conns, oidc: bool) -> Summary {
    let control_id = *conns
        .iter()
        .find(|(_, s)| s.get(&Dir::ClientToServer).is_some_and(|s| s.iv.is_some()))
        .expect("a control connection")
        .0;
    let up = &conns[&control_id][&Dir::ClientToServer];
    let down = &conns[&control_id][&Dir::ServerToClient];

    // Login.
    let Message::Login(login) = &up.frames[0].msg else {
        panic!("control connection starts with {:?}", up.frames[0].msg)
    };
    assert_eq!(login.version, "0.70.0");
    assert_eq!((login.hostname.as_str(), login.os.as_str(), login.arch.as_str()), ("vm", "linux", "amd64"));
    assert_eq!(login.pool_count, 1);
    assert_eq!(login.client_spec, ClientSpec::default());
    assert!(login.timestamp > 1_700_000_000, "timestamp {}", login.timestamp);
    if oidc {
        check_oidc_token(&login.privilege_key);
        assert_ne!(login.privilege_key, auth::privilege_key(TOKEN, login.timestamp));
    } else {
        assert_eq!(login.privilege_key, auth::privilege_key(TOKEN, login.timestamp));
        assert!(auth::verify_privilege_key(TOKEN, login.timestamp, &login.privilege_key));
        assert!(!auth::verify_privilege_key("not-t", login.timestamp, &login.privilege_key));
    }
    assert!(up.frames[1..].iter().all(|f| f.encrypted));

    // LoginResp.
    let Message::LoginResp(resp) = &down.frames[0].msg else { panic!("server answers {:?}", down.frames[0].msg) };
    assert_eq!(resp.version, "0.70.0");
    assert!(resp.error.is_empty());
    assert_eq!(resp.run_id.len(), 16);
    assert!(resp.run_id.bytes().all(|b| b.is_ascii_hexdigit()), "run_id {}", resp.run_id);
    assert!(down.frames[1..].iter().all(|f| f.encrypted));
    assert_ne!(up.iv, down.iv, "each direction picks its own IV");

    // Proxies: NewProxy and the NewProxyResp for each.
    let mut proxies = BTreeMap::new();
    for f in &up.frames[1..] {
        match &f.msg {
            Message::NewProxy(p) => {
                let expected = match p.proxy_name.as_str() {
                    "web" => ("tcp", 16001),
                    "voice" => ("udp", 16002),
                    other => panic!("unexpected proxy {other}"),
                };
                assert_eq!((p.proxy_type.as_str(), p.remote_port), expected);
                let rest = NewProxy {
                    proxy_type: p.proxy_type.clone(),
                    proxy_name: p.proxy_name.clone(),
                    remote_port: p.remote_port,
                    ..Default::default()
                };
                assert_eq!(*p, rest, "no other NewProxy field is set");
                proxies.insert(p.proxy_name.clone(), p.remote_port);
            }
            Message::Ping(p) => assert_eq!(*p, Ping::default(), "token auth pings carry nothing by default"),
            other => panic!("unexpected client control message {other:?}"),
        }
    }
    let mut answered = BTreeMap::new();
    for f in &down.frames[1..] {
        match &f.msg {
            Message::NewProxyResp(r) => {
                assert!(r.error.is_empty());
                answered.insert(r.proxy_name.clone(), r.remote_addr.clone());
            }
            Message::ReqWorkConn(_) | Message::Pong(Pong { .. }) => {}
            other => panic!("unexpected server control message {other:?}"),
        }
        if let Message::Pong(p) = &f.msg {
            assert!(p.error.is_empty());
        }
    }
    let expected: BTreeMap<_, _> = proxies.iter().map(|(n, p)| (n.clone(), format!(":{p}"))).collect();
    assert_eq!(answered, expected, "NewProxyResp remote_addr is \":<remote_port>\"");

    // Work connections.
    let mut work = Vec::new();
    let mut udp_packets = 0;
    for (id, sides) in conns {
        if *id == control_id {
            continue;
        }
        let up = &sides[&Dir::ClientToServer];
        let Message::NewWorkConn(w) = &up.frames[0].msg else {
            panic!("work connection {id} starts with {:?}", up.frames[0].msg)
        };
        assert_eq!(*w, NewWorkConn { run_id: resp.run_id.clone(), ..Default::default() });
        assert_eq!(up.frames.len(), 1);
        let up_raw = up.raw.as_ref().expect("raw");
        let Some(down) = sides.get(&Dir::ServerToClient) else {
            assert!(up_raw.is_empty());
            work.push((String::new(), 0, 0));
            continue;
        };
        assert_eq!(down.frames.len(), 1);
        let Message::StartWorkConn(s) = &down.frames[0].msg else {
            panic!("work connection {id} answered {:?}", down.frames[0].msg)
        };
        let down_raw = down.raw.as_ref().expect("raw");
        match s.proxy_name.as_str() {
            "web" => {
                assert_eq!((s.src_addr.as_str(), s.dst_addr.as_str(), s.dst_port), ("127.0.0.1", "127.0.0.1", 16001));
                assert!(s.src_port > 1024, "visitor port {}", s.src_port);
                assert!(s.error.is_empty());
                assert_eq!(up_raw, b"hello portway");
                assert_eq!(down_raw, b"hello portway");
            }
            "voice" => {
                assert_eq!(*s, StartWorkConn { proxy_name: "voice".into(), ..Default::default() });
                let from_server = udp_packets_in(down_raw);
                let from_client = udp_packets_in(up_raw);
                assert_eq!(from_server.len(), 1);
                assert_eq!(from_client.len(), 1);
                // The echo goes back to the visitor it came from.
                assert_eq!(from_server[0].remote_addr, from_client[0].remote_addr);
                assert_eq!(up_raw, down_raw, "the echoed packet frame is byte-identical");
                udp_packets += from_server.len() + from_client.len();
            }
            other => panic!("StartWorkConn for unknown proxy {other}"),
        }
        work.push((s.proxy_name.clone(), up_raw.len(), down_raw.len()));
    }
    Summary { control: (up.types(), down.types()), work, udp_packets }
}

/// Decodes the `u` frames making up a UDP proxy's work-connection bytes, checking each one.
fn udp_packets_in(mut raw: &[u8]) -> Vec<UdpPacket> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let (m, used) = codec::decode(raw).expect("u frame decodes").expect("whole u frame");
        assert_eq!(codec::encode_to_vec(&m), raw[..used], "UDPPacket re-encodes to frp's bytes");
        let Message::UdpPacket(p) = m else { panic!("expected a UDPPacket, got {m:?}") };
        assert_eq!(p.content, b"voice-datagram");
        assert_eq!(p.local_addr, None);
        let r = p.remote_addr.as_ref().expect("remote addr");
        assert_eq!((r.ip.as_str(), r.zone.as_str()), ("127.0.0.1", ""));
        assert!(r.port > 1024, "visitor port {}", r.port);
        assert_eq!(
            std::str::from_utf8(&raw[codec::HEADER_LEN..used]).expect("utf-8"),
            format!(r#"{{"c":"dm9pY2UtZGF0YWdyYW0=","r":{{"IP":"127.0.0.1","Port":{},"Zone":""}}}}"#, r.port)
        );
        out.push(p);
        raw = &raw[used..];
    }
    out
}

/// With OIDC the privilege key is the access token: a JWT from the configured issuer for the client.
fn check_oidc_token(token: &str) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: serde_json::Value = serde_json::from_slice(&b64.decode(parts[0]).expect("b64url")).expect("json");
    let claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).expect("b64url")).expect("json");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["iss"], "http://127.0.0.1:9000/application/o/frp/");
    assert_eq!(claims["aud"], "frp-client");
    assert_eq!(b64.decode(parts[2]).expect("b64url signature").len(), 512, "RS256 signature of a 4096-bit key");
}

/// Decodes a capture made with `tcpMux = false`: one TCP connection per control or work connection.
fn decode_nomux(name: &str) -> (Conns, Transcript) {
    let streams = reassemble(&load_chunks(name));
    let transcript = parse_transcript(&read_fixture(name, "transcript.txt"));
    let mut conns = Conns::new();
    for ((conn, dir), s) in &streams {
        assert_eq!(
            transcript.conn_bytes.get(&(*conn, *dir)),
            Some(&s.bytes.len()),
            "byte count of conn {conn} {dir:?}"
        );
        conns.entry(*conn).or_default().insert(*dir, decode_side(&s.pieces_from(0)));
    }
    assert_eq!(transcript.conn_bytes.len(), streams.len());
    compare_with_transcript(&conns, &transcript, true);
    (conns, transcript)
}

fn kind_name(k: FrameType) -> &'static str {
    match k {
        FrameType::Data => "Data",
        FrameType::WindowUpdate => "WindowUpdate",
        FrameType::Ping => "Ping",
        FrameType::GoAway => "GoAway",
    }
}

fn flags_name(f: u16) -> String {
    let names: Vec<&str> = [(flags::SYN, "SYN"), (flags::ACK, "ACK"), (flags::FIN, "FIN"), (flags::RST, "RST")]
        .iter()
        .filter(|(bit, _)| f & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join("|")
    }
}

/// Splits one direction of a yamux session, checks the headers against the transcript and frp's stream
/// opening rules, and returns each stream's data payloads in order.
fn split_yamux(bytes: &[u8], dir: Dir, transcript: &Transcript) -> BTreeMap<u32, Vec<Vec<u8>>> {
    let (frames, left) = yamux::split_frames(bytes).expect("valid yamux headers");
    assert_eq!(left, 0, "{dir:?}: yamux stream ends mid-frame");

    // Every header re-encodes to frp's 12 bytes.
    let mut offset = 0;
    for (h, payload) in &frames {
        assert_eq!(h.encode(), bytes[offset..offset + yamux::HEADER_LEN], "header at {offset}");
        assert_eq!(Header::decode(&bytes[offset..]), Ok(Some(*h)));
        offset += yamux::HEADER_LEN + payload.len();
    }
    assert_eq!(offset, bytes.len());

    let shown = &transcript.dirs[&dir].yamux;
    let decoded: Vec<(u8, String, String, u32, u32)> =
        frames.iter().map(|(h, _)| (0, kind_name(h.kind).into(), flags_name(h.flags), h.stream_id, h.length)).collect();
    let listed: Vec<(u8, String, String, u32, u32)> =
        shown.iter().map(|y| (y.version, y.kind.clone(), y.flags.clone(), y.stream, y.length)).collect();
    assert_eq!(decoded, listed, "{dir:?}: yamux frames");

    // Streams open with WindowUpdate+SYN (client, odd ids 1, 3, 5, ...) and are acknowledged with
    // WindowUpdate+ACK, both with frp's delta; data frames carry no flags; FIN closes.
    assert_eq!(FRP_OPEN_DELTA, yamux::FRP_MAX_STREAM_WINDOW - yamux::INITIAL_WINDOW);
    let open_flag = if dir == Dir::ClientToServer { flags::SYN } else { flags::ACK };
    let mut seen: Vec<u32> = Vec::new();
    let mut data: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
    for (h, payload) in &frames {
        if !seen.contains(&h.stream_id) {
            assert_eq!(
                (h.kind, h.flags, h.length),
                (FrameType::WindowUpdate, open_flag, FRP_OPEN_DELTA),
                "{dir:?}: first frame of stream {}",
                h.stream_id
            );
            seen.push(h.stream_id);
            continue;
        }
        match h.kind {
            FrameType::Data => {
                assert_eq!(h.flags, 0);
                assert_eq!(payload.len(), h.length as usize);
                data.entry(h.stream_id).or_default().push(payload.to_vec());
            }
            FrameType::WindowUpdate => {
                assert_eq!((h.flags, h.length), (flags::FIN, 0), "{dir:?}: {h:?}")
            }
            _ => panic!("{dir:?}: unexpected {h:?}"),
        }
    }
    if dir == Dir::ClientToServer {
        assert_eq!(seen, [1, 3, 5, 7], "client stream ids are odd and increasing");
    } else {
        assert_eq!(seen, [1, 3, 5, 7], "server acknowledges every stream in order");
    }
    data
}

/// Decodes both directions of a yamux session.
fn decode_mux(up: &[u8], down: &[u8], transcript: &Transcript) -> Conns {
    let mut conns = Conns::new();
    for (dir, bytes) in [(Dir::ClientToServer, up), (Dir::ServerToClient, down)] {
        for (id, payloads) in split_yamux(bytes, dir, transcript) {
            let pieces: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            conns.entry(id).or_default().insert(dir, decode_side(&pieces));
        }
    }
    compare_with_transcript(&conns, transcript, false);
    conns
}

fn summary(control: (&str, &str), work: &[(&str, usize, usize)], udp_packets: usize) -> Summary {
    Summary {
        control: (control.0.into(), control.1.into()),
        work: work.iter().map(|(n, u, d)| (n.to_string(), *u, *d)).collect(),
        udp_packets,
    }
}

#[test]
fn plain_nomux() {
    let (conns, _) = decode_nomux("plain-nomux");
    assert_eq!(conns.len(), 4);
    assert_eq!(
        check_semantics(&conns, false),
        summary(("opph", "1r224rr"), &[("voice", 83, 83), ("web", 13, 13), ("", 0, 0)], 2)
    );
    let Message::Login(l) = &conns[&1][&Dir::ClientToServer].frames[0].msg else { unreachable!() };
    assert_eq!((l.timestamp, l.privilege_key.as_str()), (1795552826, "95bd7e26c3608e2cf7fd327814f7b372"));
}

#[test]
fn oidc_nomux() {
    let (conns, _) = decode_nomux("oidc-nomux");
    assert_eq!(conns.len(), 3);
    assert_eq!(check_semantics(&conns, true), summary(("oph", "1r24r"), &[("web", 13, 13), ("", 0, 0)], 0));
    // The token is long: the frame is far bigger than the others, and still within frp's 10,240 bytes.
    let login = &conns[&1][&Dir::ClientToServer].frames[0];
    assert_eq!(login.bytes.len(), 1495);
}

#[test]
fn plain_mux() {
    let name = "plain-mux";
    let streams = reassemble(&load_chunks(name));
    assert_eq!(streams.len(), 2, "one TCP connection, both directions");
    let transcript = parse_transcript(&read_fixture(name, "transcript.txt"));
    assert_eq!(
        (transcript.dirs[&Dir::ClientToServer].yamux.len(), transcript.dirs[&Dir::ServerToClient].yamux.len()),
        (14, 16)
    );
    let conns =
        decode_mux(&streams[&(1, Dir::ClientToServer)].bytes, &streams[&(1, Dir::ServerToClient)].bytes, &transcript);
    assert_eq!(conns.keys().copied().collect::<Vec<_>>(), [1, 3, 5, 7]);
    assert_eq!(
        check_semantics(&conns, false),
        summary(("opp", "1r22rr"), &[("voice", 83, 83), ("web", 13, 13), ("", 0, 0)], 2)
    );
}

#[test]
fn ws_plain() {
    let name = "ws-plain";
    let streams = reassemble(&load_chunks(name));
    assert_eq!(streams.len(), 2, "one TCP connection, both directions");
    let transcript = parse_transcript(&read_fixture(name, "transcript.txt"));
    let up = &streams[&(1, Dir::ClientToServer)].bytes;
    let down = &streams[&(1, Dir::ServerToClient)].bytes;

    // HTTP upgrade, as frp's client sends it, and the server's 101.
    let req = websocket::parse_http_head(up).expect("HTTP request");
    assert_eq!(req.start_line, "GET /~!frp HTTP/1.1");
    assert_eq!(req.header("Host"), Some("127.0.0.1:17001"));
    assert_eq!(req.header("Upgrade"), Some("websocket"));
    assert_eq!(req.header("Connection"), Some("Upgrade"));
    assert_eq!(req.header("Origin"), Some("http://127.0.0.1:17001"));
    assert_eq!(req.header("Sec-WebSocket-Version"), Some("13"));
    let key = req.header("Sec-WebSocket-Key").expect("key");
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(key).expect("base64 key").len(), 16);
    let resp = websocket::parse_http_head(down).expect("HTTP response");
    assert_eq!(resp.start_line, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(resp.header("Upgrade"), Some("websocket"));
    assert_eq!(resp.header("Connection"), Some("Upgrade"));
    assert_eq!(resp.header("Sec-WebSocket-Accept"), Some(websocket::accept_key(key).as_str()));
    for (head, dir) in [(&req, Dir::ClientToServer), (&resp, Dir::ServerToClient)] {
        let mut lines = vec![head.start_line.clone()];
        lines.extend(head.lines.iter().cloned());
        assert_eq!(transcript.dirs[&dir].http, lines, "{dir:?}: HTTP head");
    }

    // WebSocket frames: masked binary from the client, unmasked binary from the server, which closes (1000).
    let up_frames = websocket::decode_all(&up[req.len..]);
    let down_frames = websocket::decode_all(&down[resp.len..]);
    assert_eq!((up_frames.len(), down_frames.len()), (23, 28));
    for f in &up_frames {
        assert!(f.fin && f.rsv == 0 && f.opcode == 2 && f.mask.is_some(), "client frame {f:?}");
    }
    let (close, binary) = down_frames.split_last().expect("frames");
    assert_eq!((close.fin, close.opcode, close.mask, close.payload.as_slice()), (true, 8, None, &[0x03, 0xe8][..]));
    for f in binary {
        assert!(f.fin && f.rsv == 0 && f.opcode == 2 && f.mask.is_none(), "server frame {f:?}");
    }
    let shown = &transcript.dirs[&Dir::ClientToServer].ws;
    assert_eq!(shown.len(), 3, "the transcript lists the first three client frames");
    for (s, f) in shown.iter().zip(&up_frames) {
        assert_eq!((s.opcode, s.fin, s.masked, s.len), (f.opcode, f.fin, f.mask.is_some(), f.payload.len()));
    }
    // frp writes each yamux header, and each data payload, as a WebSocket frame of its own.
    for frames in [&up_frames[..], binary] {
        let mut i = 0;
        while i < frames.len() {
            let h = Header::decode(&frames[i].payload).expect("yamux header").expect("12 bytes");
            assert_eq!(frames[i].payload.len(), yamux::HEADER_LEN, "frame {i} is exactly one header");
            if h.kind == FrameType::Data {
                i += 1;
                assert_eq!(frames[i].payload.len(), h.length as usize, "frame {i} is exactly one payload");
            }
            i += 1;
        }
    }

    let up_yamux: Vec<u8> = up_frames.iter().flat_map(|f| f.payload.iter().copied()).collect();
    let down_yamux: Vec<u8> = binary.iter().flat_map(|f| f.payload.iter().copied()).collect();
    let conns = decode_mux(&up_yamux, &down_yamux, &transcript);
    assert_eq!(conns.keys().copied().collect::<Vec<_>>(), [1, 3, 5, 7]);
    assert_eq!(
        check_semantics(&conns, false),
        summary(("opp", "1r22rr"), &[("voice", 83, 83), ("web", 13, 13), ("", 0, 0)], 2)
    );
}

/// Every capture, decoded.
fn all_captures() -> Vec<(&'static str, Conns)> {
    let mut out = vec![("plain-nomux", decode_nomux("plain-nomux").0), ("oidc-nomux", decode_nomux("oidc-nomux").0)];
    for name in ["plain-mux", "ws-plain"] {
        let streams = reassemble(&load_chunks(name));
        let transcript = parse_transcript(&read_fixture(name, "transcript.txt"));
        let (mut up, mut down) =
            (streams[&(1, Dir::ClientToServer)].bytes.clone(), streams[&(1, Dir::ServerToClient)].bytes.clone());
        if name == "ws-plain" {
            let unwrap = |b: &[u8]| -> Vec<u8> {
                let head = websocket::parse_http_head(b).expect("head");
                websocket::decode_all(&b[head.len..])
                    .into_iter()
                    .filter(|f| f.opcode == 2)
                    .flat_map(|f| f.payload)
                    .collect()
            };
            up = unwrap(&up);
            down = unwrap(&down);
        }
        out.push((name, decode_mux(&up, &down, &transcript)));
    }
    out
}

/// Messages Portway builds field by field from the decoded values encode to frp's bytes exactly: same field
/// names, same order, empty fields left out.
#[test]
fn portway_builds_frp_identical_frames() {
    let mut rebuilt: BTreeMap<char, usize> = BTreeMap::new();
    let mut total = 0;
    for (name, conns) in all_captures() {
        for sides in conns.values() {
            for side in sides.values() {
                for f in &side.frames {
                    total += 1;
                    let built = match &f.msg {
                        Message::Login(l) => Message::Login(Login {
                            version: l.version.clone(),
                            hostname: l.hostname.clone(),
                            os: l.os.clone(),
                            arch: l.arch.clone(),
                            privilege_key: l.privilege_key.clone(),
                            timestamp: l.timestamp,
                            pool_count: l.pool_count,
                            ..Default::default()
                        }),
                        Message::NewProxy(p) => Message::NewProxy(NewProxy {
                            proxy_name: p.proxy_name.clone(),
                            proxy_type: p.proxy_type.clone(),
                            remote_port: p.remote_port,
                            ..Default::default()
                        }),
                        Message::NewWorkConn(w) => {
                            Message::NewWorkConn(NewWorkConn { run_id: w.run_id.clone(), ..Default::default() })
                        }
                        Message::StartWorkConn(s) => Message::StartWorkConn(StartWorkConn {
                            proxy_name: s.proxy_name.clone(),
                            src_addr: s.src_addr.clone(),
                            dst_addr: s.dst_addr.clone(),
                            src_port: s.src_port,
                            dst_port: s.dst_port,
                            ..Default::default()
                        }),
                        Message::Ping(_) => Message::Ping(Ping::default()),
                        Message::LoginResp(r) => Message::LoginResp(LoginResp {
                            version: r.version.clone(),
                            run_id: r.run_id.clone(),
                            ..Default::default()
                        }),
                        Message::NewProxyResp(r) => Message::NewProxyResp(NewProxyResp {
                            proxy_name: r.proxy_name.clone(),
                            remote_addr: r.remote_addr.clone(),
                            ..Default::default()
                        }),
                        Message::ReqWorkConn(_) => Message::ReqWorkConn(ReqWorkConn {}),
                        Message::Pong(_) => Message::Pong(Pong::default()),
                        other => panic!("{name}: unexpected {other:?}"),
                    };
                    assert_eq!(built, f.msg, "{name}: frp set a field Portway's rebuild leaves empty");
                    let ours = codec::encode_to_vec(&built);
                    assert_eq!(
                        ours,
                        f.bytes,
                        "{name}: Portway's bytes differ from frp's:\n ours  {}\n frp's {}",
                        String::from_utf8_lossy(&ours),
                        String::from_utf8_lossy(&f.bytes)
                    );
                    *rebuilt.entry(f.msg.type_byte() as char).or_default() += 1;
                }
            }
        }
    }
    // Counted from the transcripts: 4 captures, 4 logins, 7 proxies, 11 work connections (7 of them started),
    // 2 heartbeats (nomux only), 11 ReqWorkConn.
    let expected: BTreeMap<char, usize> =
        [('o', 4), ('p', 7), ('w', 11), ('s', 7), ('h', 2), ('1', 4), ('2', 7), ('r', 11), ('4', 2)].into();
    assert_eq!(rebuilt, expected);
    assert_eq!(total, 55);
}

/// Writing frames through Portway's encryptor with frp's IV, in the pieces frp wrote them, reproduces the
/// control channel's ciphertext exactly (checked inside `decrypt_control`), and every control stream found.
#[test]
fn every_control_stream_round_trips_through_the_cipher() {
    let mut control_streams = 0;
    for (_, conns) in all_captures() {
        for sides in conns.values() {
            for side in sides.values() {
                let Some(iv) = side.iv else { continue };
                control_streams += 1;
                let key = Key::derive(TOKEN.as_bytes());
                let mut enc = Encryptor::new(&key, iv);
                let mut wire = enc.iv().to_vec();
                for f in side.frames.iter().filter(|f| f.encrypted) {
                    let mut b = codec::encode_to_vec(&f.msg);
                    enc.apply(&mut b);
                    wire.extend_from_slice(&b);
                }
                let mut dec = Decryptor::new(&key);
                let r = dec.apply(&mut wire);
                let plain = &wire[r];
                let mut rest = plain;
                let mut n = 0;
                while let Some((m, used)) = codec::decode(rest).expect("decodes") {
                    assert_eq!(m, side.frames[1 + n].msg);
                    rest = &rest[used..];
                    n += 1;
                }
                assert!(rest.is_empty());
                assert_eq!(n, side.frames.len() - 1);
            }
        }
    }
    assert_eq!(control_streams, 8, "two directions of four control channels");
}

#[test]
fn support_decoders_known_vectors() {
    assert_eq!(hex::encode(websocket::sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(hex::encode(websocket::sha1(&[b'a'; 1_000])), "291e9a6c66994949b57ba5e650361e98fc36b1ba");
    // RFC 6455 section 1.3.
    assert_eq!(websocket::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(frp_capture::parse_py_bytes(r"b'u\x00J{\'\\'"), b"u\x00J{'\\");
    // A masked frame from RFC 6455 section 5.7.
    let (f, n) =
        websocket::decode_frame(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]).expect("frame");
    assert_eq!((f.opcode, f.payload.as_slice(), n), (1, &b"Hello"[..], 11));
}
