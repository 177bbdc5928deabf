//! frp's wire protocol, as Portway speaks it. No configs, no policy: bytes and messages.
//!
//! - [`msg`]: every message type frp v0.70 defines, with frp's JSON field names.
//! - [`codec`]: v1 framing (`type | i64 BE length | JSON`), pure decode over a buffer plus async read/write.
//! - [`crypto`]: the AES-128-CFB stream cipher frp wraps the control channel and encrypted proxies in.
//! - [`wire_v2`]: wire protocol v2 (frp v0.69+): magic, binary frames, message ids, hellos, key derivation.
//! - [`aead`]: the v2 control channel's AEAD record stream (AES-256-GCM, XChaCha20-Poly1305).
//! - [`wire`]: v1 or v2, chosen per logical connection: one read/write entry point for both.
//! - [`auth`]: privilege keys (token auth).
//! - [`compress`]: snappy framing format, as frp's `useCompression` writes it.
//! - [`yamux`]: yamux frame headers (pure) and the multiplexer configuration frp uses.
//! - [`mux`]: the yamux session itself (streams over one connection), tuned for relaying.
//! - [`transport`]: boxed byte streams, TLS (rustls) client and server setup, first-byte sniffing.
//! - [`quic`]: frp's QUIC transport (quinn): ALPN `frp`, one stream per logical connection, `transport.quic.*`.
//! - [`ws`]: frp's WebSocket transport (`GET /~!frp`, binary frames) as a byte stream.
//! - [`relay`]: copying bytes between a visitor and a work connection, with the per-proxy layers.
//! - [`splice`]: bulk TCP → TCP transfers through a pipe with splice(2) (Linux), and when that pays.
//! - [`nathole`]: xtcp's NatHole* messages, typed, and the encrypted punch packets peers exchange over UDP.
//! - [`stun`]: a minimal STUN (RFC 5389) binding client, pure (xtcp's NAT discovery).

#![warn(missing_docs)]

pub mod aead;
pub mod auth;
pub mod codec;
pub mod compress;
pub mod crypto;
pub mod dns;
pub mod limit;
pub mod msg;
pub mod mux;
pub mod nathole;
pub mod quic;
pub mod relay;
#[cfg(target_os = "linux")]
pub mod splice;
pub mod stun;
pub mod transport;
pub mod wire;
pub mod wire_v2;
pub mod ws;
pub mod yamux;

/// The frp version Portway announces in Login and LoginResp; real frp peers check nothing about it but log it.
pub const FRP_VERSION: &str = "0.70.0";
