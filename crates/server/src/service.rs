//! The `bindPort` listener and what arrives on it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portway_proto::codec::CodecError;
use portway_proto::crypto::Key;
use portway_proto::msg::Message;
use portway_proto::mux::{MuxAcceptor, MuxConfig, MuxSession};
use portway_proto::quic::{self, QuicStream};
use portway_proto::transport::{self, BoxedIo, Sniffed};
use portway_proto::wire::{self, Wire};
use portway_proto::wire_v2::{self, frame_type, ClientHello, KeyShare, ServerHello};
use portway_proto::ws;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn, Instrument};

use crate::auth::{Authenticator, Scopes};
use crate::config::ServerConfig;
use crate::control::{self, refuse_login, Channel, Shared, WorkConn};
use crate::guard::LoginGuard;
use crate::oidc::OidcVerifier;
use crate::plugins::Plugins;
use crate::proxy::{vhost, visitor, Kinds};
use crate::session::Hub;
use crate::stats::Registry;
use crate::token::TokenPolicy;

/// How long a new connection may take to say what it is (TLS handshake, first frame).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections that have not logged in yet, at most (each holds a permit until its first message).
pub const MAX_UNAUTHENTICATED: usize = 1024;
/// How long shutdown waits for connections to drain.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS material is wrong.
    #[error(transparent)]
    Tls(#[from] transport::TlsError),
    /// A server plugin's HTTP client could not be built.
    #[error(transparent)]
    Plugin(#[from] crate::plugins::PluginSetupError),
    /// An auth method this build cannot verify.
    #[error("auth.method = {0:?} is not supported by this server build")]
    AuthMethod(String),
    /// `webServer.addr:webServer.port` could not be bound.
    #[error("cannot listen on {addr} for the dashboard API: {source} (port taken? change webServer.port)")]
    WebBind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `webServer.tls.*` is wrong.
    #[error("webServer.tls: {0}")]
    WebTls(transport::TlsError),
    /// `bindAddr:bindPort` could not be bound.
    #[error("cannot listen on {addr}: {source} (is another frps/portway-server running? change bindPort)")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `bindAddr:quicBindPort` could not be bound, or QUIC could not start on it.
    #[error("cannot listen for QUIC on UDP {addr}: {reason} (port taken? change quicBindPort)")]
    QuicBind {
        /// The address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// A virtual-host port could not be bound.
    #[error("cannot listen on {addr} for {key}: {source} (port in use, or a port below 1024 without the right to bind it? change {key})")]
    VhostBind {
        /// The config key.
        key: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The `bindPort` side of the server: the sessions' [`Shared`] state, the TLS acceptor and the permits of the
/// connections that have not logged in yet.
pub(crate) struct Front {
    shared: Arc<Shared>,
    tls: TlsAcceptor,
    /// Permits for connections that have not logged in yet.
    unauthenticated: Arc<Semaphore>,
}

impl std::ops::Deref for Front {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// What a server holds at one moment (logged on `SIGUSR1`; read by the load test).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Logged-in clients.
    pub clients: usize,
    /// Registered proxies.
    pub proxies: usize,
    /// Connections and sessions being served (the server's tracked tasks).
    pub tasks: usize,
}

/// A handle that reads a server's [`Stats`] while it runs.
#[derive(Clone)]
pub struct StatsHandle(Arc<Front>);

impl StatsHandle {
    /// The current figures.
    pub async fn get(&self) -> Stats {
        let clients = self.0.controls.lock().await.len();
        let proxies = self.0.names.lock().map(|p| p.len()).unwrap_or(0);
        Stats { clients, proxies, tasks: self.0.tracker.len() }
    }

    /// The dashboard's registry of clients, proxies and traffic.
    pub fn registry(&self) -> Arc<Registry> {
        self.0.stats.clone()
    }

    /// Each logged-in client's run_id and wire protocol (`"v1"`/`"v2"`), sorted by run_id.
    pub async fn wire_protocols(&self) -> Vec<(String, &'static str)> {
        let mut v: Vec<_> =
            self.0.controls.lock().await.values().map(|c| (c.run_id.clone(), c.wire_protocol)).collect();
        v.sort();
        v
    }
}

/// A running (or ready to run) server.
pub struct Server {
    shared: Arc<Front>,
    /// Virtual-host listeners bound by [`Server::bind`], served by [`Server::run`].
    vhost_listeners: std::sync::Mutex<Option<vhost::Listeners>>,
    /// The `quicBindPort` socket bound by [`Server::bind`] (or given to [`Server::use_quic_socket`]).
    quic_socket: std::sync::Mutex<Option<std::net::UdpSocket>>,
    /// The TCP TLS config, reused (ALPN `frp` added) by the QUIC listener, as frps does.
    tls_config: Arc<rustls::ServerConfig>,
}

impl Server {
    /// Prepares a server from a validated config (TLS material is loaded or generated here).
    pub fn new(cfg: ServerConfig) -> Result<Server, StartError> {
        let tls_config = transport::server_config(&cfg.server_tls())?;
        let tls = TlsAcceptor::from(tls_config.clone());
        let cancel = CancellationToken::new();
        let scopes = Scopes::from_list(&cfg.auth.additional_scopes);
        let auth = match cfg.auth.method.as_str() {
            "token" => Authenticator::Token { token: cfg.auth.token.clone(), scopes },
            "oidc" => {
                let o = &cfg.auth.oidc;
                let policy = TokenPolicy {
                    issuer: o.issuer.clone(),
                    audience: o.audience.clone(),
                    skip_expiry_check: o.skip_expiry_check,
                    skip_issuer_check: o.skip_issuer_check,
                    leeway: cfg.portway.token_leeway,
                };
                Authenticator::Oidc { verifier: OidcVerifier::start(policy, cancel.clone()), scopes }
            }
            m => return Err(StartError::AuthMethod(m.to_string())),
        };
        let key = Key::derive(cfg.auth.token.as_bytes());
        let guard_limit = cfg.portway.max_login_failures;
        let plugin_timeout = Duration::from_secs(cfg.portway.plugin_timeout.max(1) as u64);
        let plugins = Plugins::new(&cfg.http_plugins, plugin_timeout)?;
        let hub = Arc::new(Hub {
            cfg,
            key,
            names: std::sync::Mutex::new(HashMap::new()),
            tracker: TaskTracker::new(),
            cancel,
            stats: Arc::new(Registry::default()),
        });
        let shared = Arc::new(Shared {
            kinds: Kinds::new(&hub),
            nathole: Default::default(),
            hub,
            auth,
            controls: Mutex::new(HashMap::new()),
            guard: LoginGuard::new(guard_limit),
            plugins,
        });
        Ok(Server {
            shared: Arc::new(Front { shared, tls, unauthenticated: Arc::new(Semaphore::new(MAX_UNAUTHENTICATED)) }),
            vhost_listeners: std::sync::Mutex::new(None),
            quic_socket: std::sync::Mutex::new(None),
            tls_config,
        })
    }

    /// A handle to read the server's [`Stats`] once it runs.
    pub fn stats(&self) -> StatsHandle {
        StatsHandle(self.shared.clone())
    }

    /// Binds the virtual-host ports (`vhostHTTPPort`, `vhostHTTPSPort`, `tcpmuxHTTPConnectPort`) on
    /// `proxyBindAddr`; [`Server::run`] serves them. Called by [`Server::bind`]; `run` binds them itself if not.
    pub fn bind_vhosts(&self) -> Result<(), StartError> {
        let l =
            vhost::bind(&self.shared.cfg).map_err(|(key, addr, source)| StartError::VhostBind { key, addr, source })?;
        *self.vhost_listeners.lock().unwrap_or_else(|e| e.into_inner()) = Some(l);
        Ok(())
    }

    /// Binds `webServer.addr:webServer.port` for the dashboard API; `None` when `webServer.port` is 0.
    pub async fn bind_web(&self) -> Result<Option<TcpListener>, StartError> {
        let w = &self.shared.cfg.web_server;
        if w.port == 0 {
            return Ok(None);
        }
        let addr = format!("{}:{}", w.addr, w.port);
        TcpListener::bind(&addr).await.map(Some).map_err(|source| StartError::WebBind { addr, source })
    }

    /// Starts the dashboard API (and `/metrics` with `enablePrometheus`) on an already-bound listener; it stops
    /// with the server.
    pub fn serve_web(&self, listener: TcpListener) -> Result<(), StartError> {
        let cfg = &self.shared.cfg;
        let w = &cfg.web_server;
        let tls = if w.tls.cert_file.is_empty() {
            None
        } else {
            let t = transport::ServerTls {
                cert_file: Some(w.tls.cert_file.clone().into()),
                key_file: Some(w.tls.key_file.clone().into()),
                trusted_ca_file: None,
            };
            Some(TlsAcceptor::from(transport::server_config(&t).map_err(StartError::WebTls)?))
        };
        let allow_ports_str = cfg
            .allow_ports
            .iter()
            .map(|r| if r.single != 0 { r.single.to_string() } else { format!("{}-{}", r.start, r.end) })
            .collect::<Vec<_>>()
            .join(",");
        let info = crate::api::ServerInfo {
            bind_port: cfg.bind_port,
            vhost_http_port: cfg.vhost_http_port,
            vhost_https_port: cfg.vhost_https_port,
            tcpmux_http_connect_port: cfg.tcpmux_http_connect_port,
            quic_bind_port: cfg.quic_bind_port,
            subdomain_host: cfg.sub_domain_host.clone(),
            max_pool_count: cfg.transport.max_pool_count,
            max_ports_per_client: cfg.max_ports_per_client,
            heartbeat_timeout: if cfg.transport.tcp_mux { -1 } else { cfg.transport.heartbeat_timeout },
            allow_ports_str,
            tls_force: cfg.transport.tls.force,
        };
        let api = crate::api::Api::new(self.shared.stats.clone(), info, &w.user, &w.password, cfg.enable_prometheus);
        let tracker = self.shared.tracker.clone();
        tracker.spawn(crate::api::serve(
            listener,
            tls,
            Arc::new(api),
            self.shared.cancel.clone(),
            self.shared.tracker.clone(),
        ));
        Ok(())
    }

    /// Binds `bindAddr:bindPort` (and the virtual-host ports, see [`Server::bind_vhosts`], and the QUIC port,
    /// see [`Server::bind_quic`]).
    pub async fn bind(&self) -> Result<TcpListener, StartError> {
        let listener = self.bind_control().await?;
        self.bind_vhosts()?;
        self.bind_quic()?;
        Ok(listener)
    }

    /// Binds UDP `bindAddr:quicBindPort` (nothing when `quicBindPort` is 0); [`Server::run`] serves it.
    pub fn bind_quic(&self) -> Result<(), StartError> {
        let cfg = &self.shared.cfg;
        if cfg.quic_bind_port == 0 {
            return Ok(());
        }
        let addr = format!("{}:{}", cfg.bind_addr, cfg.quic_bind_port);
        let socket = std::net::UdpSocket::bind(&addr)
            .map_err(|e| StartError::QuicBind { addr: addr.clone(), reason: e.to_string() })?;
        self.use_quic_socket(socket);
        Ok(())
    }

    /// Serves QUIC on an already-bound UDP socket (whatever `quicBindPort` says; tests bind port 0).
    pub fn use_quic_socket(&self, socket: std::net::UdpSocket) {
        *self.quic_socket.lock().unwrap_or_else(|e| e.into_inner()) = Some(socket);
    }

    async fn bind_control(&self) -> Result<TcpListener, StartError> {
        let (host, port) = (self.shared.cfg.bind_addr.as_str(), self.shared.cfg.bind_port);
        let addr = format!("{host}:{port}");
        let sockaddrs: Vec<std::net::SocketAddr> = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![std::net::SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host(&addr)
                .await
                .map_err(|source| StartError::Bind { addr: addr.clone(), source })?
                .collect(),
        };
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "the address resolves to nothing");
        for a in sockaddrs {
            match transport::listen(a) {
                Ok(l) => return Ok(l),
                Err(e) => last = e,
            }
        }
        Err(StartError::Bind { addr, source: last })
    }

    /// Serves on an already-bound listener until `shutdown` is cancelled, then closes every listener and
    /// connection (waiting at most [`DRAIN_TIMEOUT`]).
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) {
        let bound = self.vhost_listeners.lock().unwrap_or_else(|e| e.into_inner()).take();
        let vhosts = match bound {
            Some(l) => Some(l),
            None => match self.bind_vhosts() {
                Ok(()) => self.vhost_listeners.lock().unwrap_or_else(|e| e.into_inner()).take(),
                Err(e) => {
                    error!(error = %e, "virtual hosts are not served");
                    None
                }
            },
        };
        let mut quic_socket = self.quic_socket.lock().unwrap_or_else(|e| e.into_inner()).take();
        if quic_socket.is_none() && self.shared.cfg.quic_bind_port != 0 {
            match self.bind_quic() {
                Ok(()) => quic_socket = self.quic_socket.lock().unwrap_or_else(|e| e.into_inner()).take(),
                Err(e) => error!(error = %e, "QUIC is not served"),
            }
        }
        let quic = quic_socket.map(|socket| {
            let addr = socket.local_addr().map(|a| a.to_string()).unwrap_or_default();
            quic::server_endpoint(socket, &self.tls_config, &self.shared.cfg.quic_tuning())
                .map_err(|e| StartError::QuicBind { addr, reason: e.to_string() })
        });
        let shared = self.shared;
        if let Ok(a) = listener.local_addr() {
            shared.kinds.secrets.set_bound(a);
        }
        if let Some(l) = vhosts {
            vhost::spawn(&shared.kinds.vhost, l);
        }
        match quic {
            Some(Ok(endpoint)) => {
                let s = shared.clone();
                shared.tracker.spawn(s.serve_quic(endpoint));
            }
            Some(Err(e)) => error!(error = %e, "QUIC is not served"),
            None => {}
        }
        if let Authenticator::Oidc { verifier, .. } = &shared.auth {
            // Give discovery a moment so clients arriving right after start are not refused needlessly.
            verifier.first_attempt_done(Duration::from_secs(5)).await;
        }
        info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "portway-server listening");
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r {
                    Ok((tcp, peer)) => {
                        // No span yet: most connections of a client without tcpMux are work connections, which log
                        // nothing when all goes well; a span formatted for each would be work for nothing. Control
                        // sessions and visitors get their `conn` span once their first message says what they are.
                        let s = shared.clone();
                        shared.tracker.spawn(async move { s.handle_tcp(tcp, peer).await });
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        drop(listener);
        info!("shutting down: closing proxies and connections");
        shared.cancel.cancel();
        shared.tracker.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, shared.tracker.wait()).await.is_err() {
            warn!("some connections did not close within {DRAIN_TIMEOUT:?}; dropping them");
        }
    }
}

impl Front {
    async fn handle_tcp(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr) {
        if self.guard.is_blocked(peer.ip()) {
            debug!(%peer, "connection from an address with too many failed logins; dropped");
            return;
        }
        // Until it has said who it is, a connection holds one of a bounded number of permits.
        let Ok(permit) = self.unauthenticated.clone().try_acquire_owned() else {
            warn!(%peer, limit = MAX_UNAUTHENTICATED, "too many connections that have not logged in yet; dropping this one");
            return;
        };
        transport::tune(&tcp);
        let conn = match tokio::time::timeout(LOGIN_TIMEOUT, self.classify(tcp, peer)).await {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "connection closed before it said anything useful");
                return;
            }
            Err(_) => {
                info!(%peer, "connection sent nothing usable within {LOGIN_TIMEOUT:?}; closed");
                return;
            }
        };
        if self.cfg.transport.tcp_mux {
            let keepalive = Duration::from_secs(self.cfg.transport.tcp_mux_keepalive_interval.max(1) as u64);
            let (session, acceptor) = MuxSession::server(conn, MuxConfig::frp(keepalive));
            // Boxed, as every branch that is not a work connection's: inline, their futures would make the task of
            // each work connection as large as the largest (a whole control session's, about 10 KB, copied several
            // times per connection).
            let session = self.serve_session(Session::Mux(session, acceptor), peer, permit);
            Box::pin(session.instrument(tracing::info_span!("conn", %peer))).await;
        } else {
            self.handle_conn(conn, peer, Some(permit), None).await;
        }
    }

    /// Sniffs the first bytes and unwraps the transport: TLS (first byte 0x16, or frp's 0x17 then TLS), frp's
    /// WebSocket upgrade (`GET /~!frp`, optionally with TLS inside, as frpc's `websocket` + `tls.enable`), TLS then
    /// the upgrade (`wss`, which frps cannot terminate itself), or plain frp.
    async fn classify(&self, tcp: TcpStream, peer: SocketAddr) -> std::io::Result<Option<BoxedIo>> {
        match transport::peek_kind(&tcp).await? {
            Sniffed::Plain => self.plain_allowed(Box::new(tcp), peer),
            // Boxed: the handshakes' futures stay out of the plain path's task.
            kind => Box::pin(self.unwrap_transport(tcp, kind, peer)).await,
        }
    }

    /// [`Front::classify`] for TLS and WebSocket.
    async fn unwrap_transport(
        &self,
        tcp: TcpStream,
        kind: Sniffed,
        peer: SocketAddr,
    ) -> std::io::Result<Option<BoxedIo>> {
        match kind {
            Sniffed::Tls | Sniffed::CustomTls => {
                let mut tcp = tcp;
                if kind == Sniffed::CustomTls {
                    let mut b = [0u8; 1];
                    tokio::io::AsyncReadExt::read_exact(&mut tcp, &mut b).await?;
                }
                let tls = self.tls.accept(tcp).await?;
                let (inner, io) = transport::sniff_stream(Box::new(tls)).await?;
                if inner == Sniffed::WebSocket {
                    return Ok(Some(Box::new(ws::accept(io).await?)));
                }
                Ok(Some(io))
            }
            Sniffed::WebSocket => {
                let ws: BoxedIo = Box::new(ws::accept(tcp).await?);
                let (inner, mut io) = transport::sniff_stream(ws).await?;
                match inner {
                    Sniffed::Tls | Sniffed::CustomTls => {
                        if inner == Sniffed::CustomTls {
                            let mut b = [0u8; 1];
                            tokio::io::AsyncReadExt::read_exact(&mut io, &mut b).await?;
                        }
                        Ok(Some(Box::new(self.tls.accept(io).await?)))
                    }
                    _ => self.plain_allowed(io, peer),
                }
            }
            Sniffed::Plain => self.plain_allowed(Box::new(tcp), peer),
        }
    }

    fn plain_allowed(&self, io: BoxedIo, peer: SocketAddr) -> std::io::Result<Option<BoxedIo>> {
        if self.cfg.transport.tls.force {
            warn!(%peer, "plain (non-TLS) connection refused: transport.tls.force = true on this server; enable transport.tls on the client");
            return Ok(None);
        }
        Ok(Some(io))
    }

    /// `quicBindPort`: each QUIC connection is one client session whose streams are its logical connections
    /// (frps: control on one stream, each work connection another; no yamux). The handshake runs in the
    /// connection's own task, under [`LOGIN_TIMEOUT`].
    async fn serve_quic(self: Arc<Self>, endpoint: quinn::Endpoint) {
        info!(addr = %endpoint.local_addr().map(|a| a.to_string()).unwrap_or_default(), "QUIC listening (quicBindPort)");
        loop {
            let incoming = tokio::select! {
                _ = self.cancel.cancelled() => break,
                i = endpoint.accept() => match i {
                    Some(i) => i,
                    None => break,
                },
            };
            let peer = incoming.remote_address();
            if self.guard.is_blocked(peer.ip()) {
                debug!(%peer, "QUIC connection from an address with too many failed logins; refused");
                incoming.refuse();
                continue;
            }
            let Ok(permit) = self.unauthenticated.clone().try_acquire_owned() else {
                warn!(
                    limit = MAX_UNAUTHENTICATED,
                    "too many connections that have not logged in yet; refusing a QUIC one"
                );
                incoming.refuse();
                continue;
            };
            let me = self.clone();
            self.tracker.spawn(
                async move {
                    let conn = match tokio::time::timeout(LOGIN_TIMEOUT, incoming).await {
                        Ok(Ok(c)) => c,
                        Ok(Err(e)) => {
                            info!(error = %e, "QUIC handshake failed (ALPN other than frp? a TLS client certificate missing?)");
                            return;
                        }
                        Err(_) => {
                            info!("QUIC handshake did not complete within {LOGIN_TIMEOUT:?}; dropped");
                            return;
                        }
                    };
                    me.serve_session(Session::Quic(conn), peer, permit).await;
                }
                .instrument(tracing::info_span!("quic", %peer)),
            );
        }
        endpoint.close(quinn::VarInt::from_u32(0), b"");
    }

    /// A connection carrying many logical connections (yamux over TCP, or QUIC). Until one of its streams has
    /// logged in (or brought a verified work connection), it is unauthenticated: it keeps its permit, may have only
    /// that one stream, and is closed if that has not happened within [`LOGIN_TIMEOUT`] of its start. A peer
    /// cannot open streams (each with a receive window) without logging in.
    async fn serve_session(self: Arc<Self>, mut session: Session, peer: SocketAddr, permit: OwnedSemaphorePermit) {
        let authed = CancellationToken::new();
        let mut permit = Some(permit);
        let deadline = tokio::time::sleep(LOGIN_TIMEOUT);
        tokio::pin!(deadline);
        let mut streams = 0usize;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = &mut deadline, if !authed.is_cancelled() => {
                    if streams == 0 {
                        info!("multiplexed connection opened no stream within {LOGIN_TIMEOUT:?}; closed");
                    } else {
                        info!("multiplexed connection did not log in within {LOGIN_TIMEOUT:?}; closed");
                    }
                    break;
                }
                _ = authed.cancelled(), if permit.is_some() => {
                    permit = None;
                }
                s = session.accept() => match s {
                    Some((_, stream)) if streams == 0 || authed.is_cancelled() => {
                        streams += 1;
                        let (me, a) = (self.clone(), authed.clone());
                        self.tracker.spawn(
                            async move { me.handle_conn(stream, peer, None, Some(a)).await }.in_current_span(),
                        );
                    }
                    Some((id, _)) => {
                        debug!(stream = id, "stream opened before the connection logged in; refused");
                    }
                    None => break,
                },
            }
        }
        drop(permit);
        session.close();
    }

    /// One logical frp connection (a TCP/TLS connection, or a yamux stream): the v2 magic or not, then Login,
    /// NewWorkConn or NewVisitorConn.
    pub(crate) async fn handle_conn(
        self: Arc<Self>,
        conn: BoxedIo,
        peer: SocketAddr,
        permit: Option<OwnedSemaphorePermit>,
        authed: Option<CancellationToken>,
    ) {
        let opened = tokio::time::timeout(LOGIN_TIMEOUT, self.first_message(conn, peer)).await;
        let (first, conn, channel) = match opened {
            Ok(Ok(Some(f))) => f,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                log_bad_first_frame(&e, peer);
                return;
            }
            Err(_) => {
                info!(%peer, "no frp message within {LOGIN_TIMEOUT:?}; connection closed");
                return;
            }
        };
        drop(permit);
        let wire = channel.wire();
        // A control session or a visitor logs under `conn{peer}`: its own span for a connection of its own, the
        // multiplexed connection's (already current) for a stream. Work connections get none (see `Server::run`).
        let span = || if authed.is_some() { tracing::Span::none() } else { tracing::info_span!("conn", %peer) };
        match first {
            Message::Login(login) => {
                let span = span();
                Box::pin(control::login(self.shared.clone(), conn, login, channel, peer, authed).instrument(span)).await
            }
            Message::NewWorkConn(w) => {
                let ctl = self.controls.lock().await.get(&w.run_id).cloned();
                match ctl {
                    Some(ctl) => {
                        if ctl.add_work_conn(WorkConn { io: conn, wire }, &w, peer).await {
                            if let Some(a) = authed {
                                a.cancel();
                            }
                        }
                    }
                    None => {
                        info!(%peer, run_id = %w.run_id, "work connection for an unknown client (run_id); closed")
                    }
                }
            }
            Message::NewVisitorConn(v) => {
                // frp: the visitor's user is its client's, found by the visitor's run_id.
                let client = self
                    .controls
                    .lock()
                    .await
                    .get(&v.run_id)
                    .map(|c| visitor::VisitorClient { user: c.user.clone(), identity: c.identity.clone() });
                let (hub, secrets) = (self.hub.clone(), self.kinds.secrets.clone());
                let span = span();
                Box::pin(
                    async move { visitor::serve(hub, &secrets, conn, wire, v, client, peer, authed).await }
                        .instrument(span),
                )
                .await
            }
            other => {
                info!(%peer, message = other.name(), "unexpected first message; connection closed");
            }
        }
    }

    /// Reads what opens a logical connection: v1 → its first message; v2 (magic) → an optional ClientHello,
    /// answered with a ServerHello, then the first message. `Ok(None)`: refused here, already logged.
    async fn first_message(
        &self,
        conn: BoxedIo,
        peer: SocketAddr,
    ) -> Result<Option<(Message, BoxedIo, Channel)>, CodecError> {
        // Buffered: a work connection's NewWorkConn usually arrives whole and is taken in by one read (the
        // unbuffered sniff and frame reads made four calls of it). What follows the message is put back in front.
        let mut conn = conn;
        let mut reader = wire::MsgReader::with_chunk(FIRST_READ);
        let wire = match wire::sniff_into(&mut conn, &mut reader).await {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                info!(%peer, "connection closed within its first 7 bytes (before a v1 frame or the v2 magic); dropped");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if wire == Wire::V1 {
            let m = reader.read_msg(Wire::V1, &mut conn).await?;
            return Ok(Some((m, reader.attach(conn), Channel::V1)));
        }
        // Boxed: the v2 hello's future stays out of a v1 connection's task.
        Box::pin(self.first_message_v2(reader.attach(conn), peer)).await
    }

    /// [`Front::first_message`] after the v2 magic.
    async fn first_message_v2(
        &self,
        mut conn: BoxedIo,
        peer: SocketAddr,
    ) -> Result<Option<(Message, BoxedIo, Channel)>, CodecError> {
        let (kind, payload) = wire_v2::read_frame(&mut conn).await?;
        match kind {
            frame_type::MESSAGE => {
                let m = wire_v2::decode_message(&payload)?;
                if let Message::Login(_) = m {
                    // frp: a v2 control connection must negotiate its crypto.
                    info!(%peer, "wire v2 Login without a ClientHello; refused (missing v2 crypto negotiation)");
                    refuse_login(&mut conn, Wire::V2, "missing v2 crypto negotiation".into()).await;
                    return Ok(None);
                }
                Ok(Some((m, conn, Channel::V2Plain)))
            }
            frame_type::CLIENT_HELLO => {
                let selected = ClientHello::parse(&payload).and_then(|ch| {
                    let (mut sh, alg) = wire_v2::server_select(&ch, rand::random())?;
                    // Portway's X25519 extension: answered only when the client offered a share.
                    let peer_share = &ch.capabilities.crypto.client_key_share;
                    let shared = if peer_share.is_empty() {
                        None
                    } else {
                        let ks = KeyShare::random();
                        sh.selected.crypto.server_key_share = ks.public().to_vec();
                        Some(ks.agree(peer_share)?)
                    };
                    Ok((sh, alg, shared))
                });
                let (sh, alg, shared) = match selected {
                    Ok(x) => x,
                    Err(e) => {
                        info!(%peer, error = %e, "wire v2 ClientHello refused; answered with frp's error ServerHello and closed");
                        let refusal = ServerHello::refusal(&e).to_json();
                        let _ = wire_v2::write_frame(&mut conn, frame_type::SERVER_HELLO, &refusal).await;
                        return Ok(None);
                    }
                };
                let sh_raw = sh.to_json();
                wire_v2::write_frame(&mut conn, frame_type::SERVER_HELLO, &sh_raw).await?;
                let hash = wire_v2::transcript_hash(&payload, &sh_raw);
                // frp's key material is the token with token auth and empty with OIDC (frp #5532); the X25519
                // secret goes in front when both sides sent a share.
                let token = if self.cfg.auth.method == "token" { self.cfg.auth.token.as_bytes() } else { &[] };
                let ikm = wire_v2::key_material(shared.as_ref(), token);
                let keys = wire_v2::derive_keys(&ikm, &hash, alg);
                if shared.is_none() && self.cfg.auth.method == "oidc" {
                    warn!("wire v2 with auth.method = oidc and a client without Portway's X25519 key share (frp): the control channel's keys derive from public values, so anyone who sees this connection's handshake can read it (frp #5532); keep TLS on (transport.tls.force)");
                } else if ikm.is_empty() {
                    warn!(
                        "wire v2 control channel keyed without a secret (empty auth.token, no key share): keep TLS on"
                    );
                }
                debug!(algorithm = alg.name(), x25519 = shared.is_some(), "wire v2 negotiated");
                let m = wire_v2::read_message(&mut conn).await?;
                Ok(Some((m, conn, Channel::V2 { alg, keys })))
            }
            other => {
                info!(%peer, frame_type = other, "wire v2 connection opened with an unexpected frame type; closed");
                Ok(None)
            }
        }
    }
}

/// Bytes asked for by the first read of a logical connection: a NewWorkConn or Login fits.
const FIRST_READ: usize = 1024;

/// Where a multiplexed client session's logical connections come from: yamux streams over one TCP/TLS/WebSocket
/// connection, or the streams of one QUIC connection.
enum Session {
    Mux(MuxSession, MuxAcceptor),
    Quic(quinn::Connection),
}

impl Session {
    /// The next stream the client opened, with its id; `None` once the session is gone.
    async fn accept(&mut self) -> Option<(u64, BoxedIo)> {
        match self {
            Session::Mux(_, acceptor) => acceptor.accept().await.map(|s| (u64::from(s.id()), Box::new(s) as BoxedIo)),
            Session::Quic(conn) => match conn.accept_bi().await {
                Ok((send, recv)) => {
                    let s = QuicStream::new(send, recv);
                    Some((s.id(), Box::new(s) as BoxedIo))
                }
                Err(e) => {
                    debug!(error = %e, "QUIC connection closed");
                    None
                }
            },
        }
    }

    fn close(&self) {
        match self {
            Session::Mux(s, _) => s.close(),
            // frps closes with code 0 and no reason.
            Session::Quic(c) => c.close(quinn::VarInt::from_u32(0), b""),
        }
    }
}

fn log_bad_first_frame(e: &CodecError, peer: SocketAddr) {
    if e.is_eof() {
        debug!(%peer, "connection closed before its first message");
    } else {
        info!(%peer, error = %e, "not an frp connection; dropped");
    }
}
