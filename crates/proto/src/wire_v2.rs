//! frp's wire protocol v2 (frp v0.69+, `pkg/proto/wire`, `pkg/msg/wire_v2.go`), the pure parts.
//!
//! Every logical connection that speaks v2 opens with the 7-byte [`MAGIC`], then carries frames
//! `type: u16 BE | flags: u16 BE (0) | length: u32 BE | payload` with payloads of at most [`MAX_PAYLOAD`] bytes.
//! A Message frame's payload is `message id: u16 BE | JSON` (the JSON is v1's). Control connections exchange a
//! ClientHello and a ServerHello ([`ClientHello`], [`ServerHello`]) that choose the AEAD algorithm of the control
//! channel; the keys come from [`derive_keys`] over [`transcript_hash`].
//!
//! [`decode_frame`] and [`parse_header`] are pure (sizes are checked before anything is allocated);
//! [`read_frame`], [`read_message`] and [`write_message`] do the same over async streams.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::msg::{type_byte, Message, MsgError};

/// What a v2 peer sends first on every logical connection: `"FRP\0"`, version 2, CRLF.
pub const MAGIC: [u8; 7] = *b"FRP\0\x02\r\n";
/// Type, flags and length.
pub const HEADER_LEN: usize = 8;
/// frp's `DefaultMaxFramePayloadSize`: 64 KiB, inclusive.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Size of the client and server randoms.
pub const RANDOM_LEN: usize = 32;
/// The only message codec frp defines.
pub const CODEC_JSON: &str = "json";

/// Frame types.
pub mod frame_type {
    /// Client → server, first frame of a control connection.
    pub const CLIENT_HELLO: u16 = 1;
    /// Server → client answer to the ClientHello.
    pub const SERVER_HELLO: u16 = 2;
    /// `u16 message id | JSON`.
    pub const MESSAGE: u16 = 16;
}

/// Why v2 bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Flags other than 0; frp rejects them too.
    #[error("wire v2 frame with flags {0:#06x}: frp defines none; the peer is not speaking frp's wire protocol v2")]
    Flags(u16),
    /// Payload above [`MAX_PAYLOAD`].
    #[error("wire v2 frame of {0} bytes exceeds the 65536-byte limit: corrupt stream or not an frp peer")]
    Oversized(u64),
    /// A frame type where another was expected.
    #[error("wire v2 frame of type {got} where type {want} was expected")]
    UnexpectedType {
        /// What arrived.
        got: u16,
        /// What the protocol wants here.
        want: u16,
    },
    /// A Message frame too short to hold its id.
    #[error("wire v2 Message frame of {0} bytes has no room for its message id")]
    Truncated(usize),
    /// A message id frp does not define.
    #[error("unknown wire v2 message id {0}: the peer speaks a newer frp protocol than this build")]
    UnknownId(u16),
    /// The JSON body does not fit.
    #[error(transparent)]
    Msg(#[from] MsgError),
}

/// One frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Frame type ([`frame_type`]).
    pub kind: u16,
    /// Payload length, already checked against [`MAX_PAYLOAD`].
    pub len: usize,
}

/// Checks and parses a frame header.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> Result<FrameHeader, FrameError> {
    let kind = u16::from_be_bytes([h[0], h[1]]);
    let flags = u16::from_be_bytes([h[2], h[3]]);
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    if flags != 0 {
        return Err(FrameError::Flags(flags));
    }
    if len as usize > MAX_PAYLOAD {
        return Err(FrameError::Oversized(len as u64));
    }
    Ok(FrameHeader { kind, len: len as usize })
}

/// The header of a frame carrying `len` payload bytes.
pub fn header(kind: u16, len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    if len > MAX_PAYLOAD {
        return Err(FrameError::Oversized(len as u64));
    }
    let mut h = [0u8; HEADER_LEN];
    h[..2].copy_from_slice(&kind.to_be_bytes());
    h[4..].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(h)
}

/// Appends one frame to `out`.
pub fn encode_frame(kind: u16, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    out.extend_from_slice(&header(kind, payload.len())?);
    out.extend_from_slice(payload);
    Ok(())
}

/// A decoded frame: type, payload, bytes used.
pub type Decoded<'a> = (u16, &'a [u8], usize);

/// Decodes one frame from the front of `buf`: `Ok(None)` when more bytes are needed, else its type, payload and
/// the number of bytes used.
pub fn decode_frame(buf: &[u8]) -> Result<Option<Decoded<'_>>, FrameError> {
    let Some(h) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let h = parse_header(h)?;
    let end = HEADER_LEN + h.len;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((h.kind, &buf[HEADER_LEN..end], end)))
}

/// frp's v2 message ids (`pkg/msg/wire_v2.go`), in the order of the v1 type bytes they stand for.
const IDS: [(u16, u8); 18] = [
    (1, type_byte::LOGIN),
    (2, type_byte::LOGIN_RESP),
    (3, type_byte::NEW_PROXY),
    (4, type_byte::NEW_PROXY_RESP),
    (5, type_byte::CLOSE_PROXY),
    (6, type_byte::NEW_WORK_CONN),
    (7, type_byte::REQ_WORK_CONN),
    (8, type_byte::START_WORK_CONN),
    (9, type_byte::NEW_VISITOR_CONN),
    (10, type_byte::NEW_VISITOR_CONN_RESP),
    (11, type_byte::PING),
    (12, type_byte::PONG),
    (13, type_byte::UDP_PACKET),
    (14, type_byte::NAT_HOLE_VISITOR),
    (15, type_byte::NAT_HOLE_CLIENT),
    (16, type_byte::NAT_HOLE_RESP),
    (17, type_byte::NAT_HOLE_SID),
    (18, type_byte::NAT_HOLE_REPORT),
];

/// The v2 id of a message.
pub fn message_id(m: &Message) -> u16 {
    let t = m.type_byte();
    IDS.iter().find(|(_, b)| *b == t).map(|(id, _)| *id).unwrap_or(0)
}

/// The payload of a Message frame: id, then JSON.
pub fn message_payload(m: &Message) -> Vec<u8> {
    let body = m.to_json();
    let mut p = Vec::with_capacity(2 + body.len());
    p.extend_from_slice(&message_id(m).to_be_bytes());
    p.extend_from_slice(&body);
    p
}

/// A whole Message frame.
pub fn encode_message(m: &Message) -> Result<Vec<u8>, FrameError> {
    let p = message_payload(m);
    let mut out = Vec::with_capacity(HEADER_LEN + p.len());
    encode_frame(frame_type::MESSAGE, &p, &mut out)?;
    Ok(out)
}

/// Parses a Message frame's payload.
pub fn decode_message(payload: &[u8]) -> Result<Message, FrameError> {
    let Some((id, body)) = payload.split_first_chunk::<2>() else {
        return Err(FrameError::Truncated(payload.len()));
    };
    let id = u16::from_be_bytes(*id);
    let t = IDS.iter().find(|(i, _)| *i == id).map(|(_, t)| *t).ok_or(FrameError::UnknownId(id))?;
    Ok(Message::from_json(t, body)?)
}

/// Reads one frame. Not cancel safe (a partial frame is lost).
pub async fn read_frame<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> Result<(u16, Vec<u8>), crate::codec::CodecError> {
    let mut h = [0u8; HEADER_LEN];
    r.read_exact(&mut h).await?;
    let h = parse_header(&h)?;
    let mut payload = vec![0u8; h.len];
    r.read_exact(&mut payload).await?;
    Ok((h.kind, payload))
}

/// Reads one frame that must be of type `want`.
pub async fn read_frame_of<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    want: u16,
) -> Result<Vec<u8>, crate::codec::CodecError> {
    let (got, payload) = read_frame(r).await?;
    if got != want {
        return Err(FrameError::UnexpectedType { got, want }.into());
    }
    Ok(payload)
}

/// Reads one Message frame.
pub async fn read_message<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> Result<Message, crate::codec::CodecError> {
    let payload = read_frame_of(r, frame_type::MESSAGE).await?;
    Ok(decode_message(&payload)?)
}

/// Writes one frame, then flushes: header and payload in one vectored write where the stream takes one; on the AEAD
/// control channel (no vectored writes) the header and the payload each become one record, as frp writes them. An oversized payload is refused before anything is sent.
pub async fn write_frame<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    kind: u16,
    payload: &[u8],
) -> Result<(), crate::codec::CodecError> {
    let h = header(kind, payload.len())?;
    write_pair(w, &h, payload).await?;
    w.flush().await?;
    Ok(())
}

/// Writes `a` then `b`, both in one vectored write where the stream takes one (TCP, TLS, yamux: one segment,
/// record or frame instead of two). A stream without vectored writes, such as the AEAD control stream, takes `a`
/// and `b` in separate writes, which keeps frp's one record per frame header and one per payload there.
async fn write_pair<W: AsyncWrite + Unpin + ?Sized>(w: &mut W, mut a: &[u8], mut b: &[u8]) -> std::io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let n = if a.is_empty() {
            w.write(b).await?
        } else {
            w.write_vectored(&[std::io::IoSlice::new(a), std::io::IoSlice::new(b)]).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let from_a = n.min(a.len());
        a = &a[from_a..];
        b = &b[n - from_a..];
    }
    Ok(())
}

/// Writes one Message frame (see [`write_frame`]).
pub async fn write_message<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    m: &Message,
) -> Result<(), crate::codec::CodecError> {
    write_frame(w, frame_type::MESSAGE, &message_payload(m)).await
}

// ---------------------------------------------------------------------------------------------------------------
// Hellos

/// The AEAD algorithms of the v2 control channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `aes-256-gcm`: 12-byte stream nonce.
    Aes256Gcm,
    /// `xchacha20-poly1305`: 24-byte stream nonce.
    XChaCha20Poly1305,
}

impl Algorithm {
    /// Every algorithm, in Portway's preference order (AES first: the RustCrypto crate uses AES-NI/CLMUL where
    /// the CPU has them, as frp's preference does).
    pub const ALL: [Algorithm; 2] = [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305];

    /// The order a client offers them in, as frpc decides it: AES-256-GCM first where the CPU has AES and
    /// carry-less multiply instructions, XChaCha20-Poly1305 first elsewhere.
    pub fn preferred() -> [Algorithm; 2] {
        if fast_aes_gcm() {
            [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305]
        } else {
            [Algorithm::XChaCha20Poly1305, Algorithm::Aes256Gcm]
        }
    }

    /// frp's name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Aes256Gcm => "aes-256-gcm",
            Algorithm::XChaCha20Poly1305 => "xchacha20-poly1305",
        }
    }

    /// Parses frp's name.
    pub fn from_name(s: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Length of the cleartext stream nonce.
    pub fn nonce_len(self) -> usize {
        match self {
            Algorithm::Aes256Gcm => 12,
            Algorithm::XChaCha20Poly1305 => 24,
        }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
fn fast_aes_gcm() -> bool {
    std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq")
        && std::arch::is_x86_feature_detected!("sse4.1")
        && std::arch::is_x86_feature_detected!("ssse3")
}

#[cfg(target_arch = "aarch64")]
fn fast_aes_gcm() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
fn fast_aes_gcm() -> bool {
    false
}

/// Go's `[]byte` in JSON: standard base64 with padding.
mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        base64::engine::general_purpose::STANDARD.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How the client reached the server (informational for frps).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bootstrap {
    /// `tcp`, `kcp`, `quic`, `websocket` or `wss`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transport: String,
    /// TLS enabled, or a transport that always has it.
    #[serde(skip_serializing_if = "is_false")]
    pub tls: bool,
    /// yamux on.
    #[serde(rename = "tcpMux", skip_serializing_if = "is_false")]
    pub tcp_mux: bool,
}

/// `capabilities.message`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageCaps {
    /// Message codecs the client speaks (frp: `["json"]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub codecs: Vec<String>,
}

/// `capabilities.crypto`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CryptoCaps {
    /// AEAD algorithms, most preferred first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
    /// 32 random bytes.
    #[serde(rename = "clientRandom", with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub client_random: Vec<u8>,
    /// Portway's extension (frp PR #5527's idea): an ephemeral X25519 public key. frp ignores the field.
    #[serde(rename = "clientKeyShare", with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub client_key_share: Vec<u8>,
}

/// `capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    /// Message codecs.
    pub message: MessageCaps,
    /// Control-channel crypto.
    pub crypto: CryptoCaps,
}

/// Frame type 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientHello {
    /// Transport facts.
    pub bootstrap: Bootstrap,
    /// What the client can do.
    pub capabilities: Capabilities,
}

/// `selected.message`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageSelection {
    /// The codec (`json`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub codec: String,
}

/// `selected.crypto`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CryptoSelection {
    /// The algorithm chosen from the client's list.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub algorithm: String,
    /// 32 random bytes.
    #[serde(rename = "serverRandom", with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub server_random: Vec<u8>,
    /// Portway's extension: the server's ephemeral X25519 public key, sent only when the client sent one.
    #[serde(rename = "serverKeyShare", with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub server_key_share: Vec<u8>,
}

/// `selected`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Selection {
    /// Codec.
    pub message: MessageSelection,
    /// Crypto.
    pub crypto: CryptoSelection,
}

/// Frame type 2. A non-empty `error` means the server refused the hello and closes the connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerHello {
    /// What the server chose.
    pub selected: Selection,
    /// Why it refused.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// Why a hello was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// Not JSON of the hello's shape.
    #[error("malformed wire v2 hello: {0}")]
    Malformed(String),
    /// No `json` codec.
    #[error("unsupported message codec")]
    Codec,
    /// A random that is not 32 bytes.
    #[error("invalid crypto {which} random length {len}, want 32")]
    RandomLen {
        /// `client` or `server`.
        which: &'static str,
        /// What arrived.
        len: usize,
    },
    /// Nothing in common (server side), or a choice the client did not offer (client side).
    #[error("no supported crypto algorithm")]
    NoAlgorithm,
    /// The server chose something the client did not offer.
    #[error("selected crypto algorithm was not advertised by client: {0}")]
    NotAdvertised(String),
    /// A key share that is not 32 bytes, or one whose shared secret is all zeros (a low-order point).
    #[error("invalid X25519 key share: {0}")]
    KeyShare(&'static str),
    /// The server's ServerHello carried `error`.
    #[error("the server refused the wire v2 hello: {0}")]
    Refused(String),
}

impl ClientHello {
    /// The hello a Portway client sends: `algorithms` in preference order and a fresh random.
    pub fn new(bootstrap: Bootstrap, algorithms: &[Algorithm], client_random: [u8; RANDOM_LEN]) -> ClientHello {
        ClientHello {
            bootstrap,
            capabilities: Capabilities {
                message: MessageCaps { codecs: vec![CODEC_JSON.into()] },
                crypto: CryptoCaps {
                    algorithms: algorithms.iter().map(|a| a.name().to_string()).collect(),
                    client_random: client_random.to_vec(),
                    client_key_share: Vec::new(),
                },
            },
        }
    }

    /// The JSON payload (these exact bytes enter the transcript).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a ClientHello payload.
    pub fn parse(payload: &[u8]) -> Result<ClientHello, HelloError> {
        serde_json::from_slice(payload).map_err(|e| HelloError::Malformed(e.to_string()))
    }
}

impl ServerHello {
    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a ServerHello payload.
    pub fn parse(payload: &[u8]) -> Result<ServerHello, HelloError> {
        serde_json::from_slice(payload).map_err(|e| HelloError::Malformed(e.to_string()))
    }

    /// frp's refusal: an empty selection and the reason.
    pub fn refusal(e: &HelloError) -> ServerHello {
        ServerHello { error: e.to_string(), ..Default::default() }
    }
}

/// Server side of the negotiation: checks the client's hello and chooses the first algorithm of the client's list
/// that Portway supports. The answer to send is built from the result.
pub fn server_select(
    ch: &ClientHello,
    server_random: [u8; RANDOM_LEN],
) -> Result<(ServerHello, Algorithm), HelloError> {
    if !ch.capabilities.message.codecs.iter().any(|c| c == CODEC_JSON) {
        return Err(HelloError::Codec);
    }
    let alg = ch.capabilities.crypto.algorithms.iter().find_map(|a| Algorithm::from_name(a));
    let Some(alg) = alg else {
        return Err(HelloError::NoAlgorithm);
    };
    let len = ch.capabilities.crypto.client_random.len();
    if len != RANDOM_LEN {
        return Err(HelloError::RandomLen { which: "client", len });
    }
    let sh = ServerHello {
        selected: Selection {
            message: MessageSelection { codec: CODEC_JSON.into() },
            crypto: CryptoSelection {
                algorithm: alg.name().into(),
                server_random: server_random.to_vec(),
                server_key_share: Vec::new(),
            },
        },
        error: String::new(),
    };
    Ok((sh, alg))
}

/// Client side: checks the server's answer against what was offered.
pub fn client_check(ch: &ClientHello, sh: &ServerHello) -> Result<Algorithm, HelloError> {
    if !sh.error.is_empty() {
        return Err(HelloError::Refused(sh.error.clone()));
    }
    if sh.selected.message.codec != CODEC_JSON {
        return Err(HelloError::Codec);
    }
    let name = &sh.selected.crypto.algorithm;
    let alg = Algorithm::from_name(name).ok_or(HelloError::NoAlgorithm)?;
    if !ch.capabilities.crypto.algorithms.iter().any(|a| a == name) {
        return Err(HelloError::NotAdvertised(name.clone()));
    }
    let len = sh.selected.crypto.server_random.len();
    if len != RANDOM_LEN {
        return Err(HelloError::RandomLen { which: "server", len });
    }
    Ok(alg)
}

/// SHA-256 over both hello payloads, exactly as sent, with frp's labels and lengths.
pub fn transcript_hash(client_hello: &[u8], server_hello: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"frp wire v2 crypto transcript");
    for (label, payload) in [(&b"client hello"[..], client_hello), (&b"server hello"[..], server_hello)] {
        h.update([0u8]);
        h.update(label);
        h.update([0u8]);
        h.update((payload.len() as u64).to_be_bytes());
        h.update(payload);
    }
    h.finalize().into()
}

/// A 32-byte control-channel key. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct AeadKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

impl AeadKey {
    /// The raw bytes (test vectors).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Both directions' keys.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Client → server.
    pub c2s: AeadKey,
    /// Server → client.
    pub s2c: AeadKey,
}

/// frp's derivation: `HKDF-SHA256(IKM = ikm, salt = transcript hash, info = "frp wire v2 control aead <alg>
/// <client-to-server|server-to-client>")`, 32 bytes per direction. `ikm` is `auth.token` (empty with OIDC).
pub fn derive_keys(ikm: &[u8], transcript: &[u8; 32], alg: Algorithm) -> Keys {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(transcript), ikm);
    let key = |dir: &str| {
        let info = format!("frp wire v2 control aead {} {dir}", alg.name());
        let mut k = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
        let _ = hk.expand(info.as_bytes(), &mut k);
        AeadKey(k)
    };
    Keys { c2s: key("client-to-server"), s2c: key("server-to-client") }
}

/// One side's ephemeral X25519 key for Portway's key-share extension (docs/wire-v2-x25519.md).
pub struct KeyShare {
    secret: x25519_dalek::EphemeralSecret,
    public: [u8; 32],
}

impl KeyShare {
    /// A fresh key pair.
    pub fn random() -> KeyShare {
        let secret = x25519_dalek::EphemeralSecret::random_from_rng(rand::rngs::OsRng);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        KeyShare { secret, public }
    }

    /// The public key to put in the hello.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The shared secret with the peer's share. Refuses a share that is not 32 bytes or that gives an all-zero
    /// secret (a low-order point contributes nothing).
    pub fn agree(self, peer: &[u8]) -> Result<[u8; 32], HelloError> {
        let peer: [u8; 32] = peer.try_into().map_err(|_| HelloError::KeyShare("not 32 bytes"))?;
        let shared = self.secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
        if !shared.was_contributory() {
            return Err(HelloError::KeyShare("low-order point"));
        }
        Ok(shared.to_bytes())
    }
}

/// The HKDF input keying material: the X25519 shared secret (when both hellos carried a share) followed by the
/// token (empty with OIDC). Without a share this is frp's IKM, so frp peers derive the same keys.
pub fn key_material(shared: Option<&[u8; 32]>, token: &[u8]) -> Vec<u8> {
    let mut ikm = Vec::with_capacity(32 + token.len());
    if let Some(s) = shared {
        ikm.extend_from_slice(s);
    }
    ikm.extend_from_slice(token);
    ikm
}

/// Base64 as frp's JSON writes `[]byte` (for tests and tools).
pub fn b64_encode(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::*;

    #[test]
    fn frame_round_trip_and_partial_input() {
        let m = Message::ReqWorkConn(ReqWorkConn {});
        let f = encode_message(&m).unwrap();
        assert_eq!(hex::encode(&f), "001000000000000400077b7d");
        for cut in 0..f.len() {
            assert!(decode_frame(&f[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        let (kind, payload, used) = decode_frame(&f).unwrap().unwrap();
        assert_eq!((kind, used), (frame_type::MESSAGE, f.len()));
        assert_eq!(decode_message(payload).unwrap(), m);
    }

    #[test]
    fn every_message_id_round_trips() {
        for (id, t) in IDS {
            let m = Message::from_json(t, b"{}").unwrap();
            assert_eq!(message_id(&m), id);
            let f = encode_message(&m).unwrap();
            let (_, p, _) = decode_frame(&f).unwrap().unwrap();
            assert_eq!(decode_message(p).unwrap(), m);
        }
        assert!(matches!(decode_message(&[0, 19, b'{', b'}']), Err(FrameError::UnknownId(19))));
        assert!(matches!(decode_message(&[0]), Err(FrameError::Truncated(1))));
    }

    #[test]
    fn refuses_flags_and_oversized_before_allocating() {
        let mut h = header(16, 0).unwrap();
        h[3] = 1;
        assert!(matches!(decode_frame(&h), Err(FrameError::Flags(1))));
        let h = [0, 16, 0, 0, 0, 1, 0, 1];
        assert!(matches!(decode_frame(&h), Err(FrameError::Oversized(65537))));
        let h = [0, 16, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(decode_frame(&h), Err(FrameError::Oversized(_))));
        assert!(matches!(header(16, MAX_PAYLOAD + 1), Err(FrameError::Oversized(_))));
        // The limit itself is allowed.
        let h = [0, 16, 0, 0, 0, 1, 0, 0];
        assert!(decode_frame(&h).unwrap().is_none());
    }

    #[test]
    fn server_selects_in_the_clients_order_and_refuses_as_frp() {
        let mut ch =
            ClientHello::new(Bootstrap::default(), &[Algorithm::XChaCha20Poly1305, Algorithm::Aes256Gcm], [1; 32]);
        let (sh, alg) = server_select(&ch, [2; 32]).unwrap();
        assert_eq!(alg, Algorithm::XChaCha20Poly1305);
        assert_eq!(client_check(&ch, &sh).unwrap(), alg);

        ch.capabilities.crypto.algorithms = vec!["rot13".into(), "aes-256-gcm".into()];
        assert_eq!(server_select(&ch, [2; 32]).unwrap().1, Algorithm::Aes256Gcm);
        ch.capabilities.crypto.algorithms = vec!["rot13".into()];
        let e = server_select(&ch, [2; 32]).unwrap_err();
        assert_eq!(e, HelloError::NoAlgorithm);
        let refusal = ServerHello::refusal(&e);
        assert_eq!(
            String::from_utf8(refusal.to_json()).unwrap(),
            r#"{"selected":{"message":{},"crypto":{}},"error":"no supported crypto algorithm"}"#
        );
        assert_eq!(client_check(&ch, &refusal), Err(HelloError::Refused("no supported crypto algorithm".into())));

        let mut ch = ClientHello::new(Bootstrap::default(), &Algorithm::ALL, [1; 32]);
        ch.capabilities.crypto.client_random = vec![1; 31];
        assert_eq!(server_select(&ch, [2; 32]).unwrap_err(), HelloError::RandomLen { which: "client", len: 31 });
        ch.capabilities.message.codecs = vec!["cbor".into()];
        assert_eq!(server_select(&ch, [2; 32]).unwrap_err(), HelloError::Codec);
        assert!(matches!(
            ClientHello::parse(br#"{"capabilities":{"crypto":{"clientRandom":"!!"}}}"#),
            Err(HelloError::Malformed(_))
        ));
    }

    #[test]
    fn client_refuses_an_unoffered_choice() {
        let ch = ClientHello::new(Bootstrap::default(), &[Algorithm::Aes256Gcm], [1; 32]);
        let mut sh = server_select(&ch, [2; 32]).unwrap().0;
        sh.selected.crypto.algorithm = "xchacha20-poly1305".into();
        assert!(matches!(client_check(&ch, &sh), Err(HelloError::NotAdvertised(_))));
        sh.selected.crypto.algorithm = "aes-256-gcm".into();
        sh.selected.crypto.server_random = vec![0; 16];
        assert!(matches!(client_check(&ch, &sh), Err(HelloError::RandomLen { which: "server", len: 16 })));
    }

    #[test]
    fn hello_shape_matches_frpc() {
        let ch = ClientHello::new(
            Bootstrap { transport: "tcp".into(), tls: false, tcp_mux: true },
            &Algorithm::ALL,
            [0; 32],
        );
        assert_eq!(
            String::from_utf8(ch.to_json()).unwrap(),
            r#"{"bootstrap":{"transport":"tcp","tcpMux":true},"capabilities":{"message":{"codecs":["json"]},"crypto":{"algorithms":["aes-256-gcm","xchacha20-poly1305"],"clientRandom":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}"#
        );
    }

    #[test]
    fn key_shares_agree_and_low_order_points_are_refused() {
        let (a, b) = (KeyShare::random(), KeyShare::random());
        let (pa, pb) = (a.public(), b.public());
        let (sa, sb) = (a.agree(&pb).unwrap(), b.agree(&pa).unwrap());
        assert_eq!(sa, sb);
        assert_eq!(KeyShare::random().agree(&[0; 32]), Err(HelloError::KeyShare("low-order point")));
        assert_eq!(KeyShare::random().agree(&[1; 31]), Err(HelloError::KeyShare("not 32 bytes")));
        assert_eq!(key_material(Some(&sa), b"t")[..32], sa);
        assert_eq!(key_material(None, b"t"), b"t");
        // The extension's fields stay out of frp's hello shape unless set.
        let ch = ClientHello::new(Bootstrap::default(), &Algorithm::ALL, [0; 32]);
        assert!(!String::from_utf8(ch.to_json()).unwrap().contains("KeyShare"));
    }

    #[test]
    fn key_debug_is_redacted() {
        let k = derive_keys(b"secret", &[0; 32], Algorithm::Aes256Gcm);
        assert!(format!("{k:?}").contains("redacted"));
    }
}
