//! Byte streams and TLS. Every connection, whatever carries it (TCP, TLS, a yamux stream, WebSocket), becomes a
//! [`BoxedIo`] so the control and work-connection code never knows the difference.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Any bidirectional byte stream.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + std::any::Any {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`].
pub type BoxedIo = Box<dyn Io>;

/// frp's optional first byte announcing TLS (`transport.tls.disableCustomTLSFirstByte = false`).
pub const CUSTOM_TLS_FIRST_BYTE: u8 = 0x17;
/// A TLS record's first byte (handshake).
pub const TLS_HANDSHAKE_BYTE: u8 = 0x16;

/// A TLS setup problem, naming the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// Which setting.
        what: &'static str,
        /// The path given.
        path: String,
        /// The IO error.
        source: io::Error,
    },
    /// A file holds no usable PEM item.
    #[error("{what} {path} holds no PEM {expected}: give a PEM file")]
    Empty {
        /// Which setting.
        what: &'static str,
        /// The path given.
        path: String,
        /// What was expected in it.
        expected: &'static str,
    },
    /// rustls refused the material.
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
    /// A client-certificate verifier could not be built.
    #[error("transport.tls.trustedCaFile cannot verify client certificates: {0}")]
    Verifier(String),
    /// Self-signed certificate generation failed.
    #[error("could not generate a self-signed certificate: {0}")]
    Generate(String),
}

/// ring's suites with AES-128-GCM first, as Go's crypto/tls (frp) orders them for TLS 1.3: as secure here, and
/// about a third cheaper per byte than AES-256-GCM, which is rustls' own first choice.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites.sort_by_key(|s| match s.suite() {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => 1,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 2,
        _ => 3,
    });
    Arc::new(p)
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.display().to_string(), source })
}

/// Loads every certificate of a PEM file.
pub fn load_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(what, path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut &pem[..]).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::Empty { what, path: path.display().to_string(), expected: "CERTIFICATE" });
    }
    Ok(certs)
}

/// Loads the first private key of a PEM file.
pub fn load_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(what, path)?;
    rustls_pemfile::private_key(&mut &pem[..]).ok().flatten().ok_or(TlsError::Empty {
        what,
        path: path.display().to_string(),
        expected: "PRIVATE KEY",
    })
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for c in load_certs("transport.tls.trustedCaFile", path)? {
        store.add(c)?;
    }
    Ok(store)
}

/// Client-side TLS settings (frp's `transport.tls.*` on frpc).
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// Verify the server against this CA; without it, as frpc does, the server certificate is not verified.
    pub trusted_ca_file: Option<std::path::PathBuf>,
    /// Client certificate for mutual TLS.
    pub cert_file: Option<std::path::PathBuf>,
    /// Its key.
    pub key_file: Option<std::path::PathBuf>,
    /// Verify the server even without `trusted_ca_file`, against the public web roots (Portway's `wss`).
    pub verify: bool,
}

/// Builds a rustls client config from [`ClientTls`].
pub fn client_config(tls: &ClientTls) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &tls.trusted_ca_file {
        Some(ca) => builder.with_root_certificates(roots(ca)?),
        None if tls.verify => {
            builder.with_root_certificates(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() })
        }
        None => builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider()))),
    };
    let cfg = match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => builder
            .with_client_auth_cert(load_certs("transport.tls.certFile", c)?, load_key("transport.tls.keyFile", k)?)?,
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// Server-side TLS settings (frp's `transport.tls.*` on frps).
#[derive(Debug, Clone, Default)]
pub struct ServerTls {
    /// Certificate chain; without it a self-signed certificate is generated, as frps does.
    pub cert_file: Option<std::path::PathBuf>,
    /// Its key.
    pub key_file: Option<std::path::PathBuf>,
    /// Require client certificates signed by this CA.
    pub trusted_ca_file: Option<std::path::PathBuf>,
}

/// Builds a rustls server config from [`ServerTls`].
pub fn server_config(tls: &ServerTls) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_named(tls, ("transport.tls.certFile", "transport.tls.keyFile"))
}

/// [`server_config`] for files given under other keys (`names`: the certificate's and the key's, for messages;
/// e.g. a client plugin's `plugin.crtPath` / `plugin.keyPath`).
pub fn server_config_named(
    tls: &ServerTls,
    names: (&'static str, &'static str),
) -> Result<Arc<ServerConfig>, TlsError> {
    let (certs, key) = match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => (load_certs(names.0, c)?, load_key(names.1, k)?),
        _ => self_signed()?,
    };
    let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &tls.trusted_ca_file {
        Some(ca) => {
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(v)
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(builder.with_single_cert(certs, key)?))
}

fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let ck = rcgen::generate_simple_self_signed(vec!["portway".to_string(), "localhost".to_string()])
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let key = PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    Ok((vec![ck.cert.der().clone()], key))
}

/// The name to present in SNI: an IP address or a DNS name.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_string())
        .map_err(|_| TlsError::Rustls(rustls::Error::General(format!("invalid TLS server name {host:?}"))))
}

/// The verifier of [`AcceptAnyServerCert`], for callers that judge the certificate themselves afterwards (the
/// client's diagnostics read it from the connection and check it against the configured trust).
pub fn accept_any_server_cert() -> Arc<dyn ServerCertVerifier> {
    Arc::new(AcceptAnyServerCert(provider()))
}

/// Accepts any server certificate but still checks handshake signatures: frpc's behaviour without
/// `transport.tls.trustedCaFile`, kept so Portway talks to a stock frps with its self-signed certificate.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a new connection on `bindPort` turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// TLS ClientHello (first byte 0x16).
    Tls,
    /// frp's custom 0x17 byte, then TLS; the 0x17 must be consumed.
    CustomTls,
    /// An HTTP request (`GET `): frp's WebSocket upgrade.
    WebSocket,
    /// Anything else: plain frp framing.
    Plain,
}

/// Classifies a connection from its first bytes (pure).
pub fn sniff(first: &[u8]) -> Sniffed {
    match first.first() {
        Some(&TLS_HANDSHAKE_BYTE) => Sniffed::Tls,
        Some(&CUSTOM_TLS_FIRST_BYTE) => Sniffed::CustomTls,
        Some(b'G') if first.starts_with(b"GET ") || b"GET ".starts_with(first) => Sniffed::WebSocket,
        _ => Sniffed::Plain,
    }
}

/// Peeks at a TCP connection until [`sniff`] can decide (at most 4 bytes), without consuming anything.
pub async fn peek_kind(tcp: &TcpStream) -> io::Result<Sniffed> {
    let mut buf = [0u8; 4];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // Only "GET " needs more than one byte to tell apart from plain frp (which never starts with 'G').
        if buf[0] != b'G' || n >= 4 {
            return Ok(sniff(&buf[..n]));
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Turns on TCP_NODELAY (small frames must not wait: control messages, interactive traffic).
pub fn tune(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
}

/// Accept queue length asked for on listening sockets (frp uses 4096; the kernel caps it at
/// `net.core.somaxconn`). The default of tokio's `TcpListener::bind`, 1024 on Linux, lets a burst of connections
/// overflow the queue, and each overflow costs that visitor a 1 s SYN retry.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds and listens on `addr` (address reuse on, as `TcpListener::bind`) with [`LISTEN_BACKLOG`].
pub fn listen(addr: std::net::SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let sock = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    #[cfg(unix)]
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(LISTEN_BACKLOG)
}

/// How long a datagram send may wait for socket buffer space before the datagram is dropped.
pub const UDP_SEND_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// Sends a datagram (to `to`, or to the connected peer when `None`) without stalling for long: a full socket
/// buffer waits at most [`UDP_SEND_WAIT`], then the datagram is dropped, as UDP allows.
pub async fn send_datagram(
    sock: &tokio::net::UdpSocket,
    data: &[u8],
    to: Option<std::net::SocketAddr>,
) -> io::Result<()> {
    let first = match to {
        Some(a) => sock.try_send_to(data, a),
        None => sock.try_send(data),
    };
    match first {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            let send = async {
                match to {
                    Some(a) => sock.send_to(data, a).await,
                    None => sock.send(data).await,
                }
            };
            match tokio::time::timeout(UDP_SEND_WAIT, send).await {
                Ok(r) => r.map(|_| ()),
                Err(_) => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
        Err(e) => Err(e),
    }
}

/// A stream with some already-read bytes put back in front (after sniffing a stream that cannot peek).
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `prefix` is read before `inner`.
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed { prefix, pos: 0, inner }
    }

    /// The inner stream, once the prefix has been read (then this wrapper adds nothing).
    pub fn drained_inner_mut(&mut self) -> Option<&mut S> {
        (self.pos >= self.prefix.len()).then_some(&mut self.inner)
    }

    /// Takes the prefix not read yet (the caller delivers it itself); afterwards the wrapper adds nothing.
    pub fn take_prefix(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.prefix);
        rest.drain(..self.pos.min(rest.len()));
        self.pos = 0;
        rest
    }

    /// The stream under the prefix.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Reads up to 4 bytes from a stream that cannot peek and classifies it; the bytes are put back.
pub async fn sniff_stream(mut io: BoxedIo) -> io::Result<(Sniffed, BoxedIo)> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        let k = io.read(&mut buf[n..]).await?;
        if k == 0 {
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            break;
        }
        n += k;
        if buf[0] != b'G' {
            break;
        }
    }
    let kind = sniff(&buf[..n]);
    Ok((kind, Box::new(Prefixed::new(buf[..n].to_vec(), io))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(&[0x16, 3, 1]), Sniffed::Tls);
        assert_eq!(sniff(&[0x17]), Sniffed::CustomTls);
        assert_eq!(sniff(b"GET /~!frp"), Sniffed::WebSocket);
        assert_eq!(sniff(b"o\0\0"), Sniffed::Plain);
        assert_eq!(sniff(b"GXT "), Sniffed::Plain);
    }
}
