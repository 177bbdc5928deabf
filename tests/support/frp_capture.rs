//! Loading the real frp captures in `tests/fixtures/frp-captures/` and parsing their `transcript.txt`.
//!
//! `capture.json` is a list of `{conn, dir, t, b64}` chunks in the order they crossed the relay;
//! `transcript.txt` is the capture tool's own decoding, used here as the expected result.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;

/// Direction of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    ClientToServer,
    ServerToClient,
}

impl Dir {
    pub fn parse(s: &str) -> Dir {
        match s {
            "client->server" => Dir::ClientToServer,
            "server->client" => Dir::ServerToClient,
            other => panic!("unknown direction {other:?}"),
        }
    }
}

/// One chunk as it crossed the relay.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub conn: u32,
    pub dir: Dir,
    pub t: f64,
    pub bytes: Vec<u8>,
}

/// One relay connection's bytes in one direction, with the chunk boundaries kept.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    pub bytes: Vec<u8>,
    /// Offsets in `bytes` where each chunk ended.
    pub chunk_ends: Vec<usize>,
}

impl Stream {
    /// Splits `bytes[from..]` at the original chunk boundaries.
    pub fn pieces_from(&self, from: usize) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut start = from;
        for &end in &self.chunk_ends {
            if end > start {
                out.push(&self.bytes[start..end]);
                start = end;
            }
        }
        out
    }
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frp-captures")
}

pub fn read_fixture(capture: &str, file: &str) -> String {
    let p = fixtures_dir().join(capture).join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Every chunk of a capture, in file order.
pub fn load_chunks(capture: &str) -> Vec<Chunk> {
    let v: serde_json::Value = serde_json::from_str(&read_fixture(capture, "capture.json")).expect("capture.json");
    let arr = v.as_array().expect("capture.json is a list");
    arr.iter()
        .map(|c| Chunk {
            conn: c["conn"].as_u64().expect("conn") as u32,
            dir: Dir::parse(c["dir"].as_str().expect("dir")),
            t: c["t"].as_f64().expect("t"),
            bytes: base64::engine::general_purpose::STANDARD
                .decode(c["b64"].as_str().expect("b64"))
                .expect("b64 is base64"),
        })
        .collect()
}

/// Reassembles each connection's byte stream per direction (chunks concatenated in order).
/// Panics if time goes backwards within one connection and direction.
pub fn reassemble(chunks: &[Chunk]) -> BTreeMap<(u32, Dir), Stream> {
    let mut out: BTreeMap<(u32, Dir), Stream> = BTreeMap::new();
    let mut last_t: BTreeMap<(u32, Dir), f64> = BTreeMap::new();
    for c in chunks {
        assert!(!c.bytes.is_empty(), "empty chunk in capture");
        let key = (c.conn, c.dir);
        if let Some(&t) = last_t.get(&key) {
            assert!(c.t >= t, "chunks of {key:?} out of order: {} after {t}", c.t);
        }
        last_t.insert(key, c.t);
        let s = out.entry(key).or_default();
        s.bytes.extend_from_slice(&c.bytes);
        s.chunk_ends.push(s.bytes.len());
    }
    out
}

/// One decoded item the transcript lists for a connection or stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A frame in clear: type byte and JSON body (possibly truncated by the transcript, see [`json_matches`]).
    Plain(u8, String),
    /// A frame of the encrypted control channel, after decryption.
    Decrypted(u8, String),
    /// Raw bytes after the first frame: total count and the (possibly truncated) start.
    Raw(usize, Vec<u8>),
}

/// A yamux header line: `ver=0 WindowUpdate flags=SYN stream=1 length=6029312`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamuxLine {
    pub version: u8,
    pub kind: String,
    pub flags: String,
    pub stream: u32,
    pub length: u32,
}

/// A WebSocket frame line: `ws frame opcode=2 fin=1 masked=True len=12`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsLine {
    pub opcode: u8,
    pub fin: bool,
    pub masked: bool,
    pub len: usize,
}

/// Everything a transcript says about one direction.
#[derive(Debug, Clone, Default)]
pub struct DirTranscript {
    /// HTTP request or response lines (without the blank line at the end).
    pub http: Vec<String>,
    pub ws: Vec<WsLine>,
    pub yamux: Vec<YamuxLine>,
}

/// A parsed `transcript.txt`.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Items per (connection or yamux stream id, direction), in order.
    pub items: BTreeMap<(u32, Dir), Vec<Item>>,
    /// Byte counts per (connection, direction), for nomux captures.
    pub conn_bytes: BTreeMap<(u32, Dir), usize>,
    pub dirs: BTreeMap<Dir, DirTranscript>,
}

fn frame_item(s: &str) -> (u8, String) {
    // `'X': JSON`
    let b = s.as_bytes();
    assert!(b.len() >= 5 && b[0] == b'\'' && b[2] == b'\'' && &s[3..5] == ": ", "bad frame item {s:?}");
    (b[1], s[5..].to_string())
}

fn kv<'a>(field: &'a str, key: &str) -> &'a str {
    field.strip_prefix(key).and_then(|r| r.strip_prefix('=')).unwrap_or_else(|| panic!("{key}= expected in {field:?}"))
}

/// Parses a transcript. Unknown lines make it panic, so nothing is silently skipped.
pub fn parse_transcript(text: &str) -> Transcript {
    enum Mode {
        None,
        Http,
        Other,
    }
    let mut t = Transcript::default();
    let mut dir = Dir::ClientToServer;
    let mut key: Option<(u32, Dir)> = None;
    let mut mode = Mode::None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("== ") {
            key = None;
            if let Some(rest) = h.strip_prefix("conn ") {
                // `conn 1 client->server: 344 bytes`
                let (n, rest) = rest.split_once(' ').expect("conn number");
                let (d, rest) = rest.split_once(": ").expect("direction");
                let count = rest.strip_suffix(" bytes").expect("byte count");
                dir = Dir::parse(d);
                let k = (n.parse().expect("conn number"), dir);
                t.conn_bytes.insert(k, count.parse().expect("byte count"));
                t.items.entry(k).or_default();
                key = Some(k);
                mode = Mode::Other;
            } else {
                let (d, what) = h.split_once(": ").expect("direction header");
                dir = Dir::parse(d);
                t.dirs.entry(dir).or_default();
                mode = match what {
                    "HTTP upgrade:" | "HTTP response:" => Mode::Http,
                    "yamux frames" => Mode::Other,
                    other => panic!("unknown section {other:?}"),
                };
            }
            continue;
        }
        let trimmed = line.trim_start();
        if !line.starts_with(' ') {
            assert!(matches!(mode, Mode::Http), "unindented line outside an HTTP section: {line:?}");
            t.dirs.get_mut(&dir).expect("dir").http.push(line.to_string());
        } else if let Some(r) = trimmed.strip_prefix("ws frame ") {
            let f: Vec<&str> = r.split(' ').collect();
            assert_eq!(f.len(), 4, "{line:?}");
            t.dirs.get_mut(&dir).expect("dir").ws.push(WsLine {
                opcode: kv(f[0], "opcode").parse().expect("opcode"),
                fin: kv(f[1], "fin") == "1",
                masked: kv(f[2], "masked") == "True",
                len: kv(f[3], "len").parse().expect("len"),
            });
        } else if let Some(r) = trimmed.strip_prefix("ver=") {
            let f: Vec<&str> = r.split(' ').collect();
            assert_eq!(f.len(), 5, "{line:?}");
            t.dirs.entry(dir).or_default().yamux.push(YamuxLine {
                version: f[0].parse().expect("version"),
                kind: f[1].to_string(),
                flags: kv(f[2], "flags").to_string(),
                stream: kv(f[3], "stream").parse().expect("stream"),
                length: kv(f[4], "length").parse().expect("length"),
            });
        } else if let Some(r) = trimmed.strip_prefix("stream ") {
            // `stream 1: first frp frame 'o': {...}`
            let (n, rest) = r.split_once(": first frp frame ").expect("stream line");
            let k = (n.parse().expect("stream id"), dir);
            let (ty, json) = frame_item(rest);
            t.items.entry(k).or_default().push(Item::Plain(ty, json));
            key = Some(k);
        } else if let Some(r) = trimmed.strip_prefix("plain frame ") {
            let (ty, json) = frame_item(r);
            t.items.get_mut(&key.expect("section")).expect("section").push(Item::Plain(ty, json));
        } else if let Some(r) = trimmed.strip_prefix("decrypted frame ").or_else(|| trimmed.strip_prefix("decrypted "))
        {
            let (ty, json) = frame_item(r);
            t.items.get_mut(&key.expect("section")).expect("section").push(Item::Decrypted(ty, json));
        } else if let Some(r) = trimmed.strip_prefix("then ") {
            // `then 13 raw bytes: b'hello portway'`
            let (n, repr) = r.split_once(" raw bytes: ").expect("raw line");
            let item = Item::Raw(n.parse().expect("raw count"), parse_py_bytes(repr));
            t.items.get_mut(&key.expect("section")).expect("section").push(item);
        } else {
            panic!("unrecognised transcript line {line:?}");
        }
    }
    t
}

/// Parses a Python `bytes` repr (`b'...'` or `b"..."`).
pub fn parse_py_bytes(s: &str) -> Vec<u8> {
    let inner = s
        .strip_prefix("b'")
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| s.strip_prefix("b\"").and_then(|r| r.strip_suffix('"')))
        .unwrap_or_else(|| panic!("not a bytes repr: {s:?}"));
    let b = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let e = b[i + 1];
        i += 2;
        match e {
            b'\\' | b'\'' | b'"' => out.push(e),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'x' => {
                out.push(u8::from_str_radix(&inner[i..i + 2], 16).expect("hex escape"));
                i += 2;
            }
            other => panic!("unknown escape \\{} in {s:?}", other as char),
        }
    }
    out
}

/// The capture tool cuts JSON bodies at this many characters.
pub const TRANSCRIPT_JSON_CUT: usize = 300;

/// True when `actual` (a full JSON body) is what the transcript shows: equal, or, for a body the transcript
/// cut at [`TRANSCRIPT_JSON_CUT`] characters, starting with the shown part.
pub fn json_matches(shown: &str, actual: &str) -> bool {
    if serde_json::from_str::<serde_json::Value>(shown).is_ok() {
        shown == actual
    } else {
        shown.len() == TRANSCRIPT_JSON_CUT && actual.len() > shown.len() && actual.starts_with(shown)
    }
}
