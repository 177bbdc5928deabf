//! Reaching the server: TCP, optional TLS, and yamux when `transport.tcpMux`. Every logical connection (control
//! or work) is one [`Connector::open`].

use std::sync::Arc;
use std::time::Duration;

use portway_proto::mux::{MuxConfig, MuxSession};
use portway_proto::transport::{self, BoxedIo};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
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
    /// TLS material is wrong.
    #[error(transparent)]
    TlsSetup(#[from] transport::TlsError),
    /// The yamux session is gone.
    #[error("the multiplexed connection to the server is closed")]
    MuxClosed,
}

/// Opens logical connections to the server.
pub struct Connector {
    cfg: Arc<ClientConfig>,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    mux: Option<MuxSession>,
    /// Cancelled when the underlying session dies (mux) or the connector is dropped.
    pub closed: CancellationToken,
}

impl Connector {
    /// Dials the server (for mux, the one TCP connection) and prepares to open streams.
    pub async fn connect(cfg: Arc<ClientConfig>) -> Result<Connector, ConnectError> {
        let tls = if cfg.transport.tls.enable {
            let c = transport::client_config(&cfg.client_tls())?;
            let name = if cfg.transport.tls.server_name.is_empty() {
                cfg.server_addr.clone()
            } else {
                cfg.transport.tls.server_name.clone()
            };
            Some((
                tokio_rustls::TlsConnector::from(c),
                transport::server_name(&name)?,
            ))
        } else {
            None
        };
        let mut me = Connector {
            cfg,
            tls,
            mux: None,
            closed: CancellationToken::new(),
        };
        if me.cfg.transport.tcp_mux {
            let conn = me.dial().await?;
            let keepalive =
                Duration::from_secs(me.cfg.transport.tcp_mux_keepalive_interval.max(1) as u64);
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

    async fn dial(&self) -> Result<BoxedIo, ConnectError> {
        let addr = self.addr();
        let secs = self.cfg.transport.dial_server_timeout.max(1) as u64;
        let tcp = match tokio::time::timeout(Duration::from_secs(secs), TcpStream::connect(&addr))
            .await
        {
            Ok(Ok(t)) => t,
            Ok(Err(source)) => return Err(ConnectError::Dial { addr, source }),
            Err(_) => return Err(ConnectError::DialTimeout { addr, secs }),
        };
        transport::tune(&tcp);
        let Some((connector, name)) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let mut tcp = tcp;
        if !self.cfg.transport.tls.disable_custom_tls_first_byte {
            tcp.write_all(&[transport::CUSTOM_TLS_FIRST_BYTE])
                .await
                .map_err(|source| ConnectError::Tls {
                    addr: addr.clone(),
                    source,
                })?;
        }
        let tls = tokio::time::timeout(
            Duration::from_secs(secs),
            connector.connect(name.clone(), tcp),
        )
        .await
        .map_err(|_| ConnectError::DialTimeout {
            addr: addr.clone(),
            secs,
        })?
        .map_err(|source| ConnectError::Tls { addr, source })?;
        Ok(Box::new(tls))
    }

    /// Opens one logical connection: a new yamux stream, or a new TCP/TLS connection without mux.
    pub async fn open(&self) -> Result<BoxedIo, ConnectError> {
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
