//! Reaching the server: TCP, optional TLS, and yamux when `transport.tcpMux`; or one QUIC connection
//! (`transport.protocol = "quic"`). Every logical connection (control or work) is one [`Connector::open`]: a new
//! TCP connection, a yamux stream or a QUIC stream.

use std::sync::Arc;
use std::time::Duration;

use portway_proto::mux::{MuxConfig, MuxSession};
use portway_proto::quic::{QuicClient, QuicError};
use portway_proto::transport::{self, BoxedIo};
use portway_proto::ws;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::config::ClientConfig;

/// Why the server could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect failed.
    #[error("cannot connect to the server at {addr}: {source} (is portway-server/frps running there? check serverAddr and serverPort)")]
    Dial {
        /// host:port.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// TCP connect took too long.
    #[error("connecting to {addr} timed out after {secs} s (transport.dialServerTimeout)")]
    DialTimeout {
        /// host:port.
        addr: String,
        /// The timeout.
        secs: u64,
    },
    /// TLS handshake failed.
    #[error("TLS handshake with {addr} failed: {source} (does the server use TLS? check transport.tls.*)")]
    Tls {
        /// host:port.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// The WebSocket upgrade failed.
    #[error("WebSocket upgrade with {addr} failed: {source} (is the server reachable for transport.protocol = websocket/wss? a reverse proxy must forward upgrades to /~!frp)")]
    WebSocket {
        /// host:port.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// TLS material is wrong.
    #[error(transparent)]
    TlsSetup(#[from] transport::TlsError),
    /// The yamux session is gone.
    #[error("the multiplexed connection to the server is closed")]
    MuxClosed,
    /// The server's address did not resolve.
    #[error("cannot resolve the server address {addr}: {reason} (check serverAddr)")]
    Resolve {
        /// host:port.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The QUIC connection could not be made.
    #[error(transparent)]
    Quic(#[from] QuicError),
    /// The QUIC connection is gone.
    #[error("the QUIC connection to the server is closed: {0}")]
    QuicClosed(quinn::ConnectionError),
    /// The outbound proxy (`transport.proxyURL`) could not be used.
    #[error("cannot connect to the server at {addr} through the proxy: {source}")]
    Proxy {
        /// host:port of the server.
        addr: String,
        /// What the proxy did.
        source: crate::via_proxy::DialError,
    },
}

type TlsSetup = (tokio_rustls::TlsConnector, rustls::pki_types::ServerName<'static>);

/// Opens logical connections to the server.
pub struct Connector {
    cfg: Arc<ClientConfig>,
    tls: Option<TlsSetup>,
    wss_tls: Option<TlsSetup>,
    mux: Option<MuxSession>,
    quic: Option<Arc<QuicClient>>,
    /// Cancelled when the underlying session dies (mux) or the connector is dropped.
    pub closed: CancellationToken,
}

impl Connector {
    /// Dials the server (for mux, the one TCP connection) and prepares to open streams.
    pub async fn connect(cfg: Arc<ClientConfig>) -> Result<Connector, ConnectError> {
        let name = if cfg.transport.tls.server_name.is_empty() {
            cfg.server_addr.clone()
        } else {
            cfg.transport.tls.server_name.clone()
        };
        let wss = cfg.transport.protocol == "wss";
        // frp's inner TLS: not with wss (its TLS is outside the WebSocket).
        let tls = if cfg.transport.tls.enable && !wss {
            let c = transport::client_config(&cfg.client_tls())?;
            Some((tokio_rustls::TlsConnector::from(c), transport::server_name(&name)?))
        } else {
            None
        };
        // wss verifies the server by default: trustedCaFile, else the public web roots.
        let wss_tls = if wss {
            let mut t = cfg.client_tls();
            t.verify = true;
            let c = transport::client_config(&t)?;
            Some((tokio_rustls::TlsConnector::from(c), transport::server_name(&name)?))
        } else {
            None
        };
        let mut me = Connector { cfg, tls, wss_tls, mux: None, quic: None, closed: CancellationToken::new() };
        if me.cfg.transport.protocol == "quic" {
            let q = Arc::new(me.dial_quic(&name).await?);
            let (q2, closed) = (q.clone(), me.closed.clone());
            tokio::spawn(async move {
                tokio::select! {
                    e = q2.closed() => {
                        tracing::debug!(error = %e, "QUIC connection to the server closed");
                        closed.cancel();
                    }
                    _ = closed.cancelled() => q2.close(),
                }
            });
            me.quic = Some(q);
        } else if me.cfg.transport.tcp_mux {
            let conn = me.dial().await?;
            let keepalive = Duration::from_secs(me.cfg.transport.tcp_mux_keepalive_interval.max(1) as u64);
            let session = MuxSession::client(conn, MuxConfig::frp(keepalive));
            let (s2, closed) = (session.clone(), me.closed.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = s2.closed() => closed.cancel(),
                    _ = closed.cancelled() => s2.close(),
                }
            });
            me.mux = Some(session);
        }
        Ok(me)
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.cfg.server_addr, self.cfg.server_port)
    }

    /// frp's QUIC dial: TLS always (ALPN `frp`); with `transport.tls.enable` the client certificate and
    /// `trustedCaFile` apply, without it neither (as frpc); the server is verified only with `trustedCaFile`.
    /// Bounded by `transport.dialServerTimeout`.
    async fn dial_quic(&self, name: &str) -> Result<QuicClient, ConnectError> {
        let addr = self.addr();
        let secs = self.cfg.transport.dial_server_timeout.max(1) as u64;
        let tls_cfg =
            if self.cfg.transport.tls.enable { self.cfg.client_tls() } else { transport::ClientTls::default() };
        let tls = transport::client_config(&tls_cfg)?;
        let tuning = self.cfg.transport.quic_tuning();
        let dial = async {
            let resolve = |reason: String| ConnectError::Resolve { addr: addr.clone(), reason };
            let sa = self
                .cfg
                .resolver()
                .lookup(&self.cfg.server_addr, self.cfg.server_port)
                .await
                .map_err(|e| resolve(e.to_string()))?
                .into_iter()
                .next()
                .ok_or_else(|| resolve("no address".into()))?;
            Ok::<_, ConnectError>(QuicClient::connect(sa, name, &tls, &tuning).await?)
        };
        match tokio::time::timeout(Duration::from_secs(secs), dial).await {
            Ok(r) => r,
            Err(_) => Err(ConnectError::DialTimeout { addr, secs }),
        }
    }

    /// One connection to the server through the configured transport:
    /// `tcp`: TCP → [0x17] → TLS (`tls.enable`); `websocket`: TCP → WebSocket → [0x17] → TLS (`tls.enable`);
    /// `wss`: TCP → TLS (verified) → WebSocket.
    async fn dial(&self) -> Result<BoxedIo, ConnectError> {
        let addr = self.addr();
        let secs = self.cfg.transport.dial_server_timeout.max(1) as u64;
        let limit = Duration::from_secs(secs);
        let timeout = || ConnectError::DialTimeout { addr: addr.clone(), secs };
        let opts = self.cfg.transport.dial_options(self.cfg.resolver());
        let dial = crate::via_proxy::dial(&self.cfg.server_addr, self.cfg.server_port, &opts);
        let tcp = match tokio::time::timeout(limit, dial).await {
            Ok(Ok(t)) => t,
            Ok(Err(crate::via_proxy::DialError::Io(source))) if opts.proxy.is_none() => {
                return Err(ConnectError::Dial { addr, source })
            }
            Ok(Err(source)) => return Err(ConnectError::Proxy { addr, source }),
            Err(_) => return Err(timeout()),
        };
        transport::tune(&tcp);
        let ws_err = |source| ConnectError::WebSocket { addr: addr.clone(), source };
        match self.cfg.transport.protocol.as_str() {
            "wss" => {
                let tls =
                    tokio::time::timeout(limit, self.tls_over(Box::new(tcp), false)).await.map_err(|_| timeout())??;
                let ws = tokio::time::timeout(limit, ws::connect(tls, &addr))
                    .await
                    .map_err(|_| timeout())?
                    .map_err(ws_err)?;
                Ok(Box::new(ws))
            }
            "websocket" => {
                let ws = tokio::time::timeout(limit, ws::connect(tcp, &addr))
                    .await
                    .map_err(|_| timeout())?
                    .map_err(ws_err)?;
                if self.tls.is_some() {
                    tokio::time::timeout(limit, self.tls_over(Box::new(ws), true)).await.map_err(|_| timeout())?
                } else {
                    Ok(Box::new(ws))
                }
            }
            _ => {
                if self.tls.is_some() {
                    tokio::time::timeout(limit, self.tls_over(Box::new(tcp), true)).await.map_err(|_| timeout())?
                } else {
                    Ok(Box::new(tcp))
                }
            }
        }
    }

    /// TLS over `io`: frp's TLS (optional 0x17 byte, verification only with trustedCaFile), or, for wss, the
    /// verifying outer TLS.
    async fn tls_over(&self, mut io: BoxedIo, frp_tls: bool) -> Result<BoxedIo, ConnectError> {
        let addr = self.addr();
        let (connector, name) = if frp_tls { self.tls.as_ref() } else { self.wss_tls.as_ref() }
            .ok_or(ConnectError::Tls { addr: addr.clone(), source: std::io::Error::other("TLS is not configured") })?;
        if frp_tls && !self.cfg.transport.tls.disable_custom_tls_first_byte {
            io.write_all(&[transport::CUSTOM_TLS_FIRST_BYTE])
                .await
                .map_err(|source| ConnectError::Tls { addr: addr.clone(), source })?;
        }
        let tls = connector.connect(name.clone(), io).await.map_err(|source| ConnectError::Tls { addr, source })?;
        Ok(Box::new(tls))
    }

    /// Opens one logical connection: a new QUIC stream, a new yamux stream, or a new TCP/TLS connection without
    /// mux.
    pub async fn open(&self) -> Result<BoxedIo, ConnectError> {
        if let Some(q) = &self.quic {
            return Ok(Box::new(q.open().await.map_err(ConnectError::QuicClosed)?));
        }
        match &self.mux {
            Some(m) => Ok(Box::new(m.open().map_err(|_| ConnectError::MuxClosed)?)),
            None => self.dial().await,
        }
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}
