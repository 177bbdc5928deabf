//! A minimal, strict decoder for what frp's websocket transport puts on the wire: one HTTP/1.1 head, then
//! RFC 6455 frames. Enough to check captures; not a WebSocket implementation.
#![allow(dead_code)]

use base64::Engine;

/// An HTTP head: the start line and the header lines, split off the bytes that follow it.
#[derive(Debug, Clone)]
pub struct HttpHead {
    pub start_line: String,
    /// Header lines as sent (`Name: value`).
    pub lines: Vec<String>,
    /// Length of the head including the final empty line.
    pub len: usize,
}

impl HttpHead {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.lines.iter().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Parses the HTTP head at the start of `b`; `None` if it has not ended yet.
pub fn parse_http_head(b: &[u8]) -> Option<HttpHead> {
    let end = b.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = std::str::from_utf8(&b[..end]).expect("HTTP head is ASCII");
    let mut lines = text.split("\r\n").map(str::to_string);
    let start_line = lines.next().expect("start line");
    Some(HttpHead { start_line, lines: lines.collect(), len: end + 4 })
}

/// One decoded frame, payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub payload: Vec<u8>,
}

/// Decodes one frame from the front of `b`: `None` when incomplete, else the frame and its wire size.
pub fn decode_frame(b: &[u8]) -> Option<(WsFrame, usize)> {
    if b.len() < 2 {
        return None;
    }
    let fin = b[0] & 0x80 != 0;
    let rsv = (b[0] >> 4) & 0x7;
    let opcode = b[0] & 0x0f;
    let masked = b[1] & 0x80 != 0;
    let mut pos = 2;
    let len = match b[1] & 0x7f {
        126 => {
            let l = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?) as usize;
            pos += 2;
            l
        }
        127 => {
            let l = u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize;
            pos += 8;
            l
        }
        l => l as usize,
    };
    let mask = if masked {
        let m: [u8; 4] = b.get(pos..pos + 4)?.try_into().ok()?;
        pos += 4;
        Some(m)
    } else {
        None
    };
    let mut payload = b.get(pos..pos + len)?.to_vec();
    if let Some(m) = mask {
        for (i, x) in payload.iter_mut().enumerate() {
            *x ^= m[i % 4];
        }
    }
    Some((WsFrame { fin, rsv, opcode, mask, payload }, pos + len))
}

/// Decodes every frame of `b`; panics on trailing bytes.
pub fn decode_all(mut b: &[u8]) -> Vec<WsFrame> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (f, n) = decode_frame(b).unwrap_or_else(|| panic!("truncated WebSocket frame: {} bytes left", b.len()));
        out.push(f);
        b = &b[n..];
    }
    out
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut s = key.as_bytes().to_vec();
    s.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1(&s))
}

/// SHA-1 (FIPS 180-4), only for the accept key; the root package has no sha1 dev-dependency.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(block[4 * i..4 * i + 4].try_into().expect("4 bytes"));
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}
