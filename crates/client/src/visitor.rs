//! Visitors (frp's `client/visitor`): local entrances to another client's secret proxy.
//! (xtcp visitors are in [`crate::xtcp`]; they use [`open`] for their `fallbackTo`.)
//!
//! - `stcp`: a TCP listener on `bindAddr:bindPort`; each accepted connection opens a new logical connection to
//!   the server (as a work connection does: TLS, yamux stream, WebSocket, wire v2), sends NewVisitorConn with
//!   frp's `sign_key` (md5 of `secretKey` + timestamp), reads NewVisitorConnResp, then relays bytes, encrypted
//!   with the `secretKey` and/or compressed when `transport.useEncryption` / `useCompression` say so.
//! - `sudp`: a UDP socket on `bindAddr:bindPort`; its datagrams travel as UDPPacket messages (tagged with the
//!   local sender's address) over one visitor connection, opened at the first datagram and again after it fails.
//!
//! Visitors run for the length of a session (as frpc's visitor manager belongs to its control): the listeners
//! close on a disconnect and open again after the next login. Within a session, [`Visitors::apply`] takes a new
//! list as a difference (by name): new visitors start, changed ones restart, removed ones close their listener and
//! connections; the others are not touched.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use portway_proto::codec::CodecError;
use portway_proto::crypto::Key;
use portway_proto::msg::{Message, NewVisitorConn, UdpPacket};
use portway_proto::relay::{relay_tcp, until_cancelled, wrap_work_conn};
use portway_proto::transport::BoxedIo;
use portway_proto::wire::Wire;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::auth::now_ts;
use crate::config::{ClientConfig, VisitorConfig};
use crate::connector::{ConnectError, Connector};
use crate::status::{Status, VisitorState};

/// How long the server has to answer NewVisitorConn (frp: 10 s).
const RESP_TIMEOUT: Duration = Duration::from_secs(10);
/// Datagrams queued toward the server before new ones are dropped.
const OUT_QUEUE: usize = 4096;

/// Why a visitor connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum VisitorError {
    /// The server could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Protocol or network failure.
    #[error("visitor connection to the server failed: {0}")]
    Protocol(#[from] CodecError),
    /// No answer in time.
    #[error("the server did not answer the visitor connection within {0:?}")]
    Timeout(Duration),
    /// The server answered with something else.
    #[error("the server answered {0} instead of NewVisitorConnResp (is it an frp server?)")]
    Unexpected(&'static str),
    /// The server refused.
    #[error("the server refused the visitor for proxy {proxy:?}: {error}{}", hint(.error))]
    Refused {
        /// The proxy name asked for (`user.name`).
        proxy: String,
        /// The server's reason.
        error: String,
    },
}

pub(crate) fn hint(error: &str) -> &'static str {
    if error.ends_with("auth failed") {
        " (secretKey differs from the provider's)"
    } else if error.ends_with("doesn't exist") {
        " (check serverName and serverUser, and that the provider is online with that stcp/sudp/xtcp proxy)"
    } else if error.contains("not allowed") {
        " (the provider's allowUsers does not list this client's user)"
    } else {
        ""
    }
}

/// What the visitors of one session share (each running visitor has a copy with its own `cancel`).
#[derive(Clone)]
pub struct VisitorEnv {
    /// The configuration (its `visitors` are the ones at start; the current list is [`VisitorEnv::visitor`]'s).
    pub cfg: Arc<ClientConfig>,
    /// The session's current visitors (after reloads), for xtcp's `fallbackTo`.
    pub current: Arc<RwLock<Vec<VisitorConfig>>>,
    /// Opens logical connections to the server.
    pub connector: Arc<Connector>,
    /// The session's wire protocol.
    pub wire: Wire,
    /// The session's run_id (the server learns the visitor's user from it).
    pub run_id: String,
    /// Engine status (each visitor's row).
    pub status: Arc<watch::Sender<Status>>,
    /// Ends with the session (a visitor's copy: with that visitor, when a reload changes or removes it).
    pub cancel: CancellationToken,
    /// The session's control channel (xtcp's NatHole* exchanges).
    pub link: Arc<crate::xtcp::ControlLink>,
}

impl VisitorEnv {
    fn set(&self, name: &str, f: impl FnOnce(&mut crate::status::VisitorStatus)) {
        self.status.send_modify(|s| {
            if let Some(v) = s.visitors.get_mut(name) {
                f(v);
            }
        });
    }

    /// The session's current visitor named `name`.
    pub fn visitor(&self, name: &str) -> Option<VisitorConfig> {
        self.current.read().ok().and_then(|l| l.iter().find(|v| v.name == name).cloned())
    }
}

/// The difference between two visitor lists, by name: (added, changed (old, new), removed).
pub fn diff_visitors<'a>(old: &'a [VisitorConfig], new: &'a [VisitorConfig]) -> crate::engine::Diff<'a, VisitorConfig> {
    crate::engine::diff_by_name(old, new, |v| &v.name)
}

/// How long a restarted visitor waits for its previous run to let go of the port.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// One running visitor: its token (ends its listener and connections) and its task.
struct Running {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// A session's visitors: started at login, changed by reloads.
pub struct Visitors {
    env: Arc<VisitorEnv>,
    running: Mutex<HashMap<String, Running>>,
}

impl Visitors {
    /// Starts every visitor in `env.current` for this session.
    pub fn start(env: Arc<VisitorEnv>) -> Visitors {
        let list = env.current.read().map(|l| l.clone()).unwrap_or_default();
        let vs = Visitors { env, running: Mutex::new(HashMap::new()) };
        for v in list {
            vs.spawn(v, None);
        }
        vs
    }

    /// Applies a new visitor list: added ones start, changed ones stop and start again with their new settings
    /// (their open connections end), removed ones stop (listener closed, connections ended); the others keep
    /// running untouched.
    pub fn apply(&self, want: &[VisitorConfig]) {
        let old = self.env.current.read().map(|l| l.clone()).unwrap_or_default();
        let (added, changed, removed) = diff_visitors(&old, want);
        if let Ok(mut cur) = self.env.current.write() {
            *cur = want.to_vec();
        }
        for v in removed {
            if let Some(r) = self.take(&v.name) {
                info!(visitor = %v.name, "closing the visitor (reload)");
                r.cancel.cancel();
            }
        }
        for (_, v) in changed {
            let prev = self.take(&v.name);
            if let Some(r) = &prev {
                r.cancel.cancel();
            }
            info!(visitor = %v.name, "restarting the visitor with its new settings (reload)");
            self.env.status.send_modify(|s| {
                if let Some(st) = s.visitors.get_mut(&v.name) {
                    *st = crate::status::VisitorStatus::idle();
                }
            });
            self.spawn(v.clone(), prev.map(|r| r.task));
        }
        for v in added {
            info!(visitor = %v.name, "starting the visitor (reload)");
            self.spawn(v.clone(), None);
        }
    }

    fn take(&self, name: &str) -> Option<Running> {
        self.running.lock().ok().and_then(|mut m| m.remove(name))
    }

    /// Starts `v` with a token of its own, after `prev` (its previous run) has ended and let go of the port.
    fn spawn(&self, v: VisitorConfig, prev: Option<JoinHandle<()>>) {
        let cancel = self.env.cancel.child_token();
        let env = Arc::new(VisitorEnv { cancel: cancel.clone(), ..(*self.env).clone() });
        let span = tracing::info_span!("visitor", name = %v.name, kind = %v.kind);
        let name = v.name.clone();
        let task = tokio::spawn(
            async move {
                if let Some(prev) = prev {
                    let _ = tokio::time::timeout(STOP_WAIT, prev).await;
                }
                if env.cancel.is_cancelled() {
                    return;
                }
                if v.bind_port < 0 {
                    info!("bindPort = -1: no local listener (only other visitors would use it)");
                    env.set(&v.name, |s| s.state = VisitorState::Idle);
                    return;
                }
                if v.kind == "xtcp" {
                    crate::xtcp::run_visitor(env, v).await;
                } else {
                    run(env, v).await;
                }
            }
            .instrument(span),
        );
        if let Ok(mut m) = self.running.lock() {
            m.insert(name, Running { cancel, task });
        }
    }
}

async fn run(env: Arc<VisitorEnv>, v: VisitorConfig) {
    let addr = format!("{}:{}", v.bind_addr, v.bind_port);
    let bound = match addr.parse::<SocketAddr>() {
        Ok(a) if v.kind == "sudp" => {
            bind_retrying(&env, || async move { UdpSocket::bind(a).await.map(Local::Udp) }).await
        }
        Ok(a) => bind_retrying(&env, || async move { portway_proto::transport::listen(a).map(Local::Tcp) }).await,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "bindAddr is not an IP address")),
    };
    let local = match bound {
        Ok(l) => l,
        Err(e) => {
            let reason = format!("cannot listen on {addr}: {e} (port in use? change bindPort)");
            warn!(error = %reason, "visitor not started");
            env.set(&v.name, |s| s.state = VisitorState::Error { reason });
            return;
        }
    };
    info!(local = %addr, server_name = %env.cfg.visitor_server_name(&v), "visitor listening");
    env.set(&v.name, |s| s.state = VisitorState::Listening { local_addr: addr.clone() });
    let v = Arc::new(v);
    match local {
        Local::Tcp(l) => serve_stcp(env, v, l).await,
        Local::Udp(s) => serve_sudp(env, v, s).await,
    }
}

enum Local {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// Binds, retrying for up to a second while the address is in use: a visitor restarted by a reload (or a session
/// after a reconnect) may find its previous socket still closing.
pub(crate) async fn bind_retrying<T, F, Fut>(env: &VisitorEnv, bind: F) -> std::io::Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<T>>,
{
    let mut tries = 0;
    loop {
        match bind().await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 10 && !env.cancel.is_cancelled() => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            r => return r,
        }
    }
}

/// The NewVisitorConn `v` sends at `ts`, as frpc fills it.
pub fn new_visitor_conn(cfg: &ClientConfig, v: &VisitorConfig, run_id: &str, ts: i64) -> NewVisitorConn {
    NewVisitorConn {
        run_id: run_id.to_string(),
        proxy_name: cfg.visitor_server_name(v),
        sign_key: portway_proto::auth::privilege_key(&v.secret_key, ts),
        timestamp: ts,
        use_encryption: v.transport.use_encryption,
        use_compression: v.transport.use_compression,
    }
}

/// Opens a visitor connection: connect, NewVisitorConn, NewVisitorConnResp; returns it wrapped in the
/// visitor's layers (keyed by the `secretKey`).
pub async fn open(env: &VisitorEnv, v: &VisitorConfig) -> Result<BoxedIo, VisitorError> {
    let mut conn = env.connector.open().await?;
    let msg = new_visitor_conn(&env.cfg, v, &env.run_id, now_ts());
    let proxy = msg.proxy_name.clone();
    env.wire.open(&mut conn).await.map_err(CodecError::from)?;
    env.wire.write_msg(&mut conn, &Message::NewVisitorConn(msg)).await?;
    let resp = match tokio::time::timeout(RESP_TIMEOUT, env.wire.read_msg(&mut conn)).await {
        Err(_) => return Err(VisitorError::Timeout(RESP_TIMEOUT)),
        Ok(r) => r?,
    };
    let resp = match resp {
        Message::NewVisitorConnResp(r) => r,
        other => return Err(VisitorError::Unexpected(other.name())),
    };
    if !resp.error.is_empty() {
        return Err(VisitorError::Refused { proxy, error: resp.error });
    }
    let key = v.transport.use_encryption.then(|| Key::derive(v.secret_key.as_bytes()));
    Ok(wrap_work_conn(conn, key.as_ref(), v.transport.use_compression))
}

fn failed(env: &VisitorEnv, v: &VisitorConfig, e: &VisitorError) {
    warn!(error = %e, "visitor connection failed");
    let reason = e.to_string();
    env.set(&v.name, |s| s.last_error = Some(reason));
}

async fn serve_stcp(env: Arc<VisitorEnv>, v: Arc<VisitorConfig>, listener: TcpListener) {
    loop {
        let (mut user, peer) = tokio::select! {
            _ = env.cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "accept failed on the visitor's listener");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        portway_proto::transport::tune(&user);
        let (env, v) = (env.clone(), v.clone());
        tokio::spawn(
            async move {
                let mut remote = tokio::select! {
                    _ = env.cancel.cancelled() => return,
                    r = open(&env, &v) => match r {
                        Ok(c) => c,
                        // The local connection closes: the application sees the refusal as a reset/EOF.
                        Err(e) => return failed(&env, &v, &e),
                    },
                };
                // A connection that works clears an earlier failure (the row shows the visitor as it is now).
                env.set(&v.name, |s| {
                    s.conns += 1;
                    s.last_error = None;
                });
                debug!("visitor connection open");
                let r = until_cancelled(&env.cancel, relay_tcp(&mut user, &mut remote)).await;
                if let Some(Ok((up, down))) = r {
                    env.set(&v.name, |s| {
                        s.bytes_out += up;
                        s.bytes_in += down;
                    });
                }
            }
            .instrument(tracing::debug_span!("conn", %peer)),
        );
    }
    debug!("visitor listener closed");
}

async fn serve_sudp(env: Arc<VisitorEnv>, v: Arc<VisitorConfig>, sock: UdpSocket) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; env.cfg.udp_packet_size.max(1) as usize];
    let mut tx: Option<mpsc::Sender<Message>> = None;
    loop {
        let (n, from) = tokio::select! {
            _ = env.cancel.cancelled() => break,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors from earlier replies surface here; the socket stays usable.
                Err(e) => {
                    debug!(error = %e, "visitor udp socket error");
                    continue;
                }
            },
        };
        if tx.as_ref().is_none_or(|t| t.is_closed()) {
            tx = match open(&env, &v).await {
                Ok(conn) => {
                    env.set(&v.name, |s| {
                        s.conns += 1;
                        s.last_error = None;
                    });
                    Some(pump(env.clone(), v.clone(), conn, sock.clone()))
                }
                Err(e) => {
                    failed(&env, &v, &e);
                    continue;
                }
            };
        }
        let pkt = UdpPacket { content: buf[..n].to_vec(), local_addr: None, remote_addr: Some(from.into()) };
        env.set(&v.name, |s| s.bytes_out += n as u64);
        if let Some(t) = &tx {
            if t.try_send(Message::UdpPacket(pkt)).is_err() {
                debug!("datagram dropped: the visitor connection is backed up");
            }
        }
    }
    debug!("visitor udp socket closed");
}

/// Runs one sudp visitor connection: datagrams from the returned sender go out; UDPPackets coming back go to
/// the local sender they name. The sender reports closed when the connection has ended.
fn pump(env: Arc<VisitorEnv>, v: Arc<VisitorConfig>, conn: BoxedIo, sock: Arc<UdpSocket>) -> mpsc::Sender<Message> {
    let (tx, mut rx) = mpsc::channel::<Message>(OUT_QUEUE);
    let (mut rd, mut wr) = tokio::io::split(conn);
    let wire = env.wire;
    let done = env.cancel.child_token();
    let wdone = done.clone();
    tokio::spawn(
        async move {
            loop {
                let m = tokio::select! {
                    _ = wdone.cancelled() => break,
                    m = rx.recv() => match m { Some(m) => m, None => break },
                };
                if let Err(e) = wire.write_msg(&mut wr, &m).await {
                    debug!(error = %e, "visitor connection write failed");
                    break;
                }
            }
            wdone.cancel();
        }
        .in_current_span(),
    );
    tokio::spawn(
        async move {
            loop {
                let m = tokio::select! {
                    _ = done.cancelled() => break,
                    m = wire.read_msg(&mut rd) => m,
                };
                match m {
                    Ok(Message::UdpPacket(p)) => {
                        let Some(to) = p.remote_addr.as_ref().and_then(|a| a.to_socket_addr()) else { continue };
                        env.set(&v.name, |s| s.bytes_in += p.content.len() as u64);
                        if let Err(e) = sock.send_to(&p.content, to).await {
                            debug!(error = %e, "datagram to the local application dropped");
                        }
                    }
                    Ok(other) => debug!(message = other.name(), "ignored on a visitor connection"),
                    Err(e) => {
                        if !e.is_eof() {
                            info!(error = %e, "visitor connection failed; the next datagram opens a new one");
                        }
                        break;
                    }
                }
            }
            done.cancel();
        }
        .in_current_span(),
    );
    tx
}
