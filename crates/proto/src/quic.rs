//! frp's QUIC transport (`transport.protocol = "quic"` on frpc, `quicBindPort` on frps), on quinn.
//!
//! What frp does, and so what this module does (facts from frp v0.70's `client/connector.go`,
//! `server/service.go` and `pkg/config/v1/common.go`; see docs/quic.md):
//! - TLS 1.3 inside QUIC, always (QUIC has no plaintext mode), ALPN `frp` on both sides.
//! - The server's certificate and client-CA rules are those of its TCP TLS (`transport.tls.*`, a generated
//!   self-signed certificate without `certFile`); the client verifies the server only with
//!   `transport.tls.trustedCaFile`.
//! - One QUIC connection per client session; every logical frp connection (the control connection, each work
//!   connection) is one client-opened bidirectional stream carrying exactly the bytes a TCP connection would
//!   (v1 or v2 framing). No yamux over QUIC.
//! - `transport.quic.keepalivePeriod` (10 s), `maxIdleTimeout` (30 s), `maxIncomingStreams` (100000).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The ALPN protocol frp's QUIC speaks (client and server).
pub const ALPN: &[u8] = b"frp";

/// Largest receive window of one stream: quic-go's default `MaxStreamReceiveWindow` (6 MiB), which frp keeps.
pub const STREAM_WINDOW: u32 = 6 * 1024 * 1024;
/// Largest receive window of a connection: quic-go's default `MaxConnectionReceiveWindow` (15 MiB).
pub const CONNECTION_WINDOW: u32 = 15 * 1024 * 1024;

/// `transport.quic.*`, the same keys on frpc and frps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuicTuning {
    /// How often a PING keeps an idle connection alive (`keepalivePeriod`).
    pub keepalive_period: Duration,
    /// How long a silent connection lives (`maxIdleTimeout`; the smaller of both sides' applies).
    pub max_idle_timeout: Duration,
    /// How many streams the peer may have open at once (`maxIncomingStreams`).
    pub max_incoming_streams: u64,
}

impl Default for QuicTuning {
    fn default() -> Self {
        QuicTuning::from_keys(0, 0, 0)
    }
}

impl QuicTuning {
    /// From the config keys, with frp's rule that 0 means its default (10 s, 30 s, 100000).
    pub fn from_keys(keepalive_period: i64, max_idle_timeout: i64, max_incoming_streams: i64) -> Self {
        let or = |v: i64, d: u64| if v > 0 { v as u64 } else { d };
        QuicTuning {
            keepalive_period: Duration::from_secs(or(keepalive_period, 10)),
            max_idle_timeout: Duration::from_secs(or(max_idle_timeout, 30)),
            max_incoming_streams: or(max_incoming_streams, 100_000),
        }
    }

    /// The server's transport: the client may open `maxIncomingStreams` streams at once.
    fn transport(&self) -> Result<Arc<quinn::TransportConfig>, QuicError> {
        self.transport_accepting(self.max_incoming_streams)
    }

    /// The client's transport: frps never opens a stream towards the client (every work connection is a stream
    /// the client opens), so the client accepts none. quinn keeps a table entry for every stream the peer may open
    /// (quinn-proto's `ensure_remote_streams`), about 5 MiB per 100,000: frp's default `maxIncomingStreams` cost
    /// the client that much for nothing.
    fn client_transport(&self) -> Result<Arc<quinn::TransportConfig>, QuicError> {
        self.transport_accepting(0)
    }

    fn transport_accepting(&self, incoming: u64) -> Result<Arc<quinn::TransportConfig>, QuicError> {
        let mut t = quinn::TransportConfig::default();
        let idle = quinn::IdleTimeout::try_from(self.max_idle_timeout)
            .map_err(|_| QuicError::Config("transport.quic.maxIdleTimeout is too large".into()))?;
        let streams = VarInt::from_u64(incoming)
            .map_err(|_| QuicError::Config("transport.quic.maxIncomingStreams is too large".into()))?;
        t.max_idle_timeout(Some(idle))
            .keep_alive_interval(Some(self.keepalive_period))
            .max_concurrent_bidi_streams(streams)
            // frp opens no unidirectional streams and sends no datagrams.
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .datagram_receive_buffer_size(None)
            .stream_receive_window(VarInt::from_u32(STREAM_WINDOW))
            .receive_window(VarInt::from_u32(CONNECTION_WINDOW))
            .send_window(u64::from(CONNECTION_WINDOW));
        Ok(Arc::new(t))
    }
}

/// A QUIC setup or connection problem.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// The TLS or transport settings cannot be used for QUIC.
    #[error("QUIC setup failed: {0}")]
    Config(String),
    /// The local UDP socket could not be opened.
    #[error("cannot open a UDP socket for QUIC: {0}")]
    Socket(io::Error),
    /// The handshake did not complete.
    #[error("QUIC handshake with {addr} failed: {reason} (is quicBindPort set on the server, and serverPort that port? UDP must pass the firewalls)")]
    Handshake {
        /// The server address.
        addr: SocketAddr,
        /// quinn's reason.
        reason: String,
    },
}

/// One bidirectional QUIC stream as a byte stream. Shutting down the write side sends FIN (half-close); dropping
/// it finishes the send side and stops the receive side with code 0, as frp's stream close does.
pub struct QuicStream {
    send: SendStream,
    recv: RecvStream,
}

impl QuicStream {
    /// Joins the two halves of a stream.
    pub fn new(send: SendStream, recv: RecvStream) -> Self {
        QuicStream { send, recv }
    }

    /// The stream's id (for logs).
    pub fn id(&self) -> u64 {
        self.send.id().index()
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.send), cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_shutdown(Pin::new(&mut self.send), cx)
    }
}

/// The client side: one QUIC connection to the server, from which each logical connection opens a stream.
pub struct QuicClient {
    endpoint: Endpoint,
    conn: Connection,
}

impl QuicClient {
    /// Connects to `addr`, presenting `server_name` (SNI; the name checked with a trusted CA). `tls` is the
    /// client's TLS config; ALPN `frp` is set here. No timeout of its own beyond `max_idle_timeout`: callers bound
    /// it (frpc: `transport.dialServerTimeout`).
    ///
    /// # Errors
    /// [`QuicError`] when the settings are unusable, no UDP socket can be opened or the handshake fails.
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        tls: &rustls::ClientConfig,
        tuning: &QuicTuning,
    ) -> Result<QuicClient, QuicError> {
        let local: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
        let endpoint = Endpoint::client(local).map_err(QuicError::Socket)?;
        Self::handshake(endpoint, addr, server_name, tls, tuning).await
    }

    /// As [`QuicClient::connect`], on an already-bound UDP socket (xtcp: the socket the NAT hole was punched
    /// with, so the packets leave through the opened mapping).
    ///
    /// # Errors
    /// [`QuicError`] when the settings are unusable, the socket cannot be registered or the handshake fails.
    pub async fn connect_on(
        socket: std::net::UdpSocket,
        addr: SocketAddr,
        server_name: &str,
        tls: &rustls::ClientConfig,
        tuning: &QuicTuning,
    ) -> Result<QuicClient, QuicError> {
        socket.set_nonblocking(true).map_err(QuicError::Socket)?;
        let runtime = quinn::default_runtime()
            .ok_or_else(|| QuicError::Config("no async runtime for QUIC (start it inside tokio)".into()))?;
        let endpoint =
            Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime).map_err(QuicError::Socket)?;
        Self::handshake(endpoint, addr, server_name, tls, tuning).await
    }

    async fn handshake(
        mut endpoint: Endpoint,
        addr: SocketAddr,
        server_name: &str,
        tls: &rustls::ClientConfig,
        tuning: &QuicTuning,
    ) -> Result<QuicClient, QuicError> {
        let mut tls = tls.clone();
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = QuicClientConfig::try_from(tls).map_err(|e| QuicError::Config(e.to_string()))?;
        let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
        cfg.transport_config(tuning.client_transport()?);
        // Checked here as on the server: the key is frp's on both sides, and a value quinn refuses stays an error.
        tuning.transport()?;
        endpoint.set_default_client_config(cfg);
        let handshake = |reason: String| QuicError::Handshake { addr, reason };
        let connecting = endpoint.connect(addr, server_name).map_err(|e| handshake(e.to_string()))?;
        let conn = connecting.await.map_err(|e| handshake(e.to_string()))?;
        Ok(QuicClient { endpoint, conn })
    }

    /// Opens one logical connection (a new bidirectional stream). The server sees it with the first bytes.
    ///
    /// # Errors
    /// The connection's error once it is closed.
    pub async fn open(&self) -> Result<QuicStream, quinn::ConnectionError> {
        let (send, recv) = self.conn.open_bi().await?;
        Ok(QuicStream::new(send, recv))
    }

    /// Resolves when the connection is closed (idle timeout, the server closing it, [`QuicClient::close`]).
    pub async fn closed(&self) -> quinn::ConnectionError {
        self.conn.closed().await
    }

    /// Closes the connection with code 0, as frpc does.
    pub fn close(&self) {
        self.conn.close(VarInt::from_u32(0), b"");
        self.endpoint.close(VarInt::from_u32(0), b"");
    }
}

/// A server endpoint on an already-bound UDP socket: frps's QUIC listener with `tls` (its TCP TLS settings) and
/// ALPN `frp`.
///
/// # Errors
/// [`QuicError`] when the TLS settings cannot be used for QUIC or the socket cannot be registered.
pub fn server_endpoint(
    socket: std::net::UdpSocket,
    tls: &rustls::ServerConfig,
    tuning: &QuicTuning,
) -> Result<Endpoint, QuicError> {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| QuicError::Config(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(tuning.transport()?);
    socket.set_nonblocking(true).map_err(QuicError::Socket)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| QuicError::Config("no async runtime for QUIC (start it inside tokio)".into()))?;
    Endpoint::new(quinn::EndpointConfig::default(), Some(cfg), socket, runtime).map_err(QuicError::Socket)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn tuning_uses_frps_defaults_for_zero() {
        let d = QuicTuning::default();
        assert_eq!(d.keepalive_period, Duration::from_secs(10));
        assert_eq!(d.max_idle_timeout, Duration::from_secs(30));
        assert_eq!(d.max_incoming_streams, 100_000);
        let t = QuicTuning::from_keys(5, 60, 7);
        assert_eq!((t.keepalive_period.as_secs(), t.max_idle_timeout.as_secs(), t.max_incoming_streams), (5, 60, 7));
    }

    /// A server endpoint with the default TLS settings on a free port of 127.0.0.1, and that address.
    fn test_server() -> (Endpoint, SocketAddr) {
        let server_tls = crate::transport::server_config(&Default::default()).unwrap();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        (server_endpoint(sock, &server_tls, &QuicTuning::default()).unwrap(), addr)
    }

    #[tokio::test]
    async fn streams_carry_bytes_and_half_close_with_alpn_frp() {
        let (ep, addr) = test_server();
        let server = tokio::spawn(async move {
            let conn = ep.accept().await.unwrap().await.unwrap();
            let alpn = conn.handshake_data().unwrap().downcast::<quinn::crypto::rustls::HandshakeData>().unwrap();
            assert_eq!(alpn.protocol.as_deref(), Some(ALPN));
            let (send, recv) = conn.accept_bi().await.unwrap();
            let mut s = QuicStream::new(send, recv);
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(&got).await.unwrap();
            s.shutdown().await.unwrap();
            conn.closed().await;
        });
        let client_tls = crate::transport::client_config(&Default::default()).unwrap();
        let c = QuicClient::connect(addr, "localhost", &client_tls, &QuicTuning::default()).await.unwrap();
        let mut s = c.open().await.unwrap();
        s.write_all(b"hello over quic").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"hello over quic");
        c.close();
        tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn the_client_accepts_no_stream_from_the_server_but_opens_its_own() {
        let (ep, addr) = test_server();
        let client_tls = crate::transport::client_config(&Default::default()).unwrap();
        let tuning = QuicTuning::default();
        let (c, conn) = tokio::join!(QuicClient::connect(addr, "localhost", &client_tls, &tuning), async {
            ep.accept().await.unwrap().await.unwrap()
        });
        let c = c.unwrap();
        // The server may not open one: quinn waits for a MAX_STREAMS the client never sends.
        let opened = tokio::time::timeout(Duration::from_millis(500), conn.open_bi()).await;
        assert!(opened.is_err(), "the client must allow the server no stream");
        // The client's own streams (work connections) still open, several at once.
        let mut streams = Vec::new();
        for i in 0..3u8 {
            let mut s = c.open().await.unwrap();
            s.write_all(&[i]).await.unwrap();
            streams.push(s);
        }
        for i in 0..3u8 {
            let (_send, mut recv) = conn.accept_bi().await.unwrap();
            let mut b = [0u8; 1];
            recv.read_exact(&mut b).await.unwrap();
            assert_eq!(b[0], i);
        }
        c.close();
    }

    #[tokio::test]
    async fn a_client_without_alpn_frp_is_refused_as_frps_refuses_it() {
        let (ep, addr) = test_server();
        let server = tokio::spawn(async move { ep.accept().await.unwrap().await.is_err() });
        let mut tls = (*crate::transport::client_config(&Default::default()).unwrap()).clone();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let mut cfg = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
        cfg.transport_config(QuicTuning::default().transport().unwrap());
        let endpoint = Endpoint::client(([127, 0, 0, 1], 0).into()).unwrap();
        let r = tokio::time::timeout(Duration::from_secs(10), endpoint.connect_with(cfg, addr, "localhost").unwrap())
            .await
            .unwrap();
        let Err(e) = r else { panic!("a handshake without ALPN frp must fail") };
        let e = e.to_string();
        assert!(e.contains("no_application_protocol") || e.contains("120"), "{e}");
        assert!(tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap());
    }
}
