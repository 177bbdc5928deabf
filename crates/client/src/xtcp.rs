//! xtcp: peer to peer through a punched UDP hole, as frp v0.70 does it (`client/proxy/xtcp.go`,
//! `client/visitor/xtcp.go`, `pkg/nathole`).
//!
//! The flow (messages on each side's control channel, relayed and paired by the server by `sid`):
//! 1. Visitor: NatHoleVisitor `pre_check` (may I?), then STUN discovery on a fresh UDP socket (two mapped
//!    addresses: `natHoleStunServer` and its OTHER-ADDRESS), then NatHoleVisitor with `sign_key`, the addresses
//!    and `protocol = "quic"`.
//! 2. Server → provider: a work connection carrying StartWorkConn then NatHoleSid. The provider runs the same
//!    discovery and answers NatHoleClient (with the `sid`).
//! 3. Server → both: NatHoleResp (the peer's addresses, a role). Both send encrypted NatHoleSid punch packets
//!    ([`portway_proto::nathole::encode_sid_packet`], keyed by the `secretKey`) from the discovery socket; the
//!    `receiver` (low TTL) answers the first one it gets, the `sender` waits for that answer.
//! 4. The provider reports (NatHoleReport) and runs a QUIC server (self-signed, ALPN `frp`) on the punched
//!    socket; the visitor dials QUIC from its own; each local connection is one bidirectional stream carrying
//!    the bytes as-is (encrypted with the `secretKey` / compressed when the proxy's `transport.*` asks).
//!
//! When no tunnel comes up within `fallbackTimeoutMs`, a connection goes through the stcp visitor `fallbackTo`.
//!
//! `PORTWAY_XTCP_LOOPBACK_ONLY=1` (tests): the only interface address advertised is 127.0.0.1 and no STUN
//! request or punch packet goes anywhere outside 127.0.0.0/8.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portway_proto::crypto::Key;
use portway_proto::msg::Message;
use portway_proto::nathole::{
    self, decode_sid_packet, encode_sid_packet, NatHole, NatHoleClient, NatHoleReport, NatHoleResp, NatHoleSid,
    NatHoleVisitor,
};
use portway_proto::quic::{QuicClient, QuicStream};
use portway_proto::relay::{relay_tcp, until_cancelled, wrap_work_conn};
use portway_proto::stun;
use portway_proto::transport::BoxedIo;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{debug, info, warn, Instrument};

use crate::auth::now_ts;
use crate::config::{ProxyConfig, VisitorConfig};
use crate::status::VisitorState;
use crate::visitor::VisitorEnv;

/// The environment variable that keeps xtcp on 127.0.0.0/8 (tests).
pub const LOOPBACK_ONLY_ENV: &str = "PORTWAY_XTCP_LOOPBACK_ONLY";
/// How long a STUN server has to answer (frp: 3 s).
const STUN_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the server has to answer NatHoleVisitor / NatHoleClient (frp: 5 s, plus the server's 1 s delay).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(8);
/// frp's default wait for punch packets.
const PUNCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection without `fallbackTo` waits this long for a tunnel (frp: 20 s).
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);
/// Punch attempts are at least this far apart (frp: 10 s).
const MIN_PUNCH_GAP: Duration = Duration::from_secs(10);
/// How long a local service has to accept.
const LOCAL_DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a tunnel could not be made.
#[derive(Debug, thiserror::Error)]
pub enum XtcpError {
    /// STUN discovery failed.
    #[error("NAT discovery with natHoleStunServer {server} failed: {reason} (is the STUN server reachable over UDP?)")]
    Stun {
        /// `natHoleStunServer`.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The server refused or could not pair the peers.
    #[error("the server refused the xtcp tunnel to {proxy:?}: {error}{}", crate::visitor::hint(.error))]
    Refused {
        /// `user.name` asked for.
        proxy: String,
        /// The server's words.
        error: String,
    },
    /// No NatHoleResp in time.
    #[error("the server did not answer {0} in time (is the provider online? is the server frps v0.48+ or Portway?)")]
    NoAnswer(&'static str),
    /// The control connection is gone.
    #[error("the control connection to the server is closed")]
    ControlClosed,
    /// No punch packet from the peer.
    #[error("hole punching failed: no answer from the peer at {0} (NATs that change ports defeat it; use fallbackTo)")]
    Punch(String),
    /// QUIC over the punched socket failed.
    #[error("the peer-to-peer QUIC session failed: {0}")]
    Quic(String),
    /// Local socket trouble.
    #[error("xtcp socket error: {0}")]
    Io(#[from] std::io::Error),
}

// ---------------------------------------------------------------------------------------------------------------
// The control channel, shared with the session's control loop

/// Sends messages on the control channel and routes NatHoleResp answers back to whoever waits for them.
pub struct ControlLink {
    tx: mpsc::Sender<Message>,
    waiting: Mutex<HashMap<String, oneshot::Sender<NatHoleResp>>>,
}

impl ControlLink {
    /// A link writing to the control loop's queue.
    pub fn new(tx: mpsc::Sender<Message>) -> Self {
        ControlLink { tx, waiting: Mutex::new(HashMap::new()) }
    }

    /// Sends `m` without waiting for an answer.
    pub async fn send(&self, m: Message) -> Result<(), XtcpError> {
        self.tx.send(m).await.map_err(|_| XtcpError::ControlClosed)
    }

    /// Sends `m` and waits for the NatHoleResp with `transaction_id`.
    async fn exchange(&self, m: Message, transaction_id: &str, what: &'static str) -> Result<NatHoleResp, XtcpError> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(transaction_id.to_string(), tx);
        }
        let r = async {
            self.send(m).await?;
            match tokio::time::timeout(EXCHANGE_TIMEOUT, rx).await {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(_)) => Err(XtcpError::ControlClosed),
                Err(_) => Err(XtcpError::NoAnswer(what)),
            }
        }
        .await;
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(transaction_id);
        }
        r
    }

    /// Called by the control loop for each NatHoleResp.
    pub fn deliver(&self, raw: &portway_proto::msg::RawBody) {
        let Ok(resp) = NatHoleResp::from_raw(raw) else {
            warn!("malformed NatHoleResp from the server ignored");
            return;
        };
        let waiter = self.waiting.lock().ok().and_then(|mut w| w.remove(&resp.transaction_id));
        match waiter {
            Some(w) => {
                let _ = w.send(resp);
            }
            None => debug!(transaction_id = %resp.transaction_id, "NatHoleResp nobody waits for"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Discovery (STUN) and punching

fn loopback_only() -> bool {
    std::env::var(LOOPBACK_ONLY_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn check_dest(addr: SocketAddr) -> Result<(), String> {
    if loopback_only() && !addr.ip().is_loopback() {
        return Err(format!("{addr} is outside 127.0.0.0/8 and {LOOPBACK_ONLY_ENV} is set"));
    }
    Ok(())
}

/// What discovery found: the socket to punch from and the addresses to advertise.
struct Prepared {
    socket: UdpSocket,
    mapped: Vec<String>,
    assisted: Vec<String>,
}

/// The host's own IPv4 address (the source address of its default route: no packet is sent), as assisted
/// address candidates. frp lists every interface; Portway advertises this one.
fn local_ipv4s() -> Vec<Ipv4Addr> {
    if loopback_only() {
        return vec![Ipv4Addr::LOCALHOST];
    }
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        // TEST-NET-1: connect() only picks a route; nothing is sent.
        s.connect("192.0.2.1:9")?;
        s.local_addr()
    });
    match probe {
        Ok(SocketAddr::V4(a)) if !a.ip().is_loopback() && !a.ip().is_link_local() && !a.ip().is_unspecified() => {
            vec![*a.ip()]
        }
        _ => Vec::new(),
    }
}

async fn stun_request(sock: &UdpSocket, server: SocketAddr) -> Result<stun::BindingResponse, String> {
    check_dest(server)?;
    let id: stun::TransactionId = rand::random();
    sock.send_to(&stun::binding_request(&id), server).await.map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + STUN_TIMEOUT;
    let mut buf = [0u8; 1024];
    loop {
        let (n, _) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf))
            .await
            .map_err(|_| format!("no answer from {server} within {STUN_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
        match stun::parse_binding_response(&buf[..n], &id) {
            Ok(r) => return Ok(r),
            Err(e) => debug!(error = %e, "datagram ignored during STUN discovery"),
        }
    }
}

/// frp's `Prepare`: two mapped addresses from the STUN server (and its other address) on one fresh socket.
async fn prepare(stun_server: &str, dns: crate::dns::Resolver, disable_assisted: bool) -> Result<Prepared, XtcpError> {
    let err = |reason: String| XtcpError::Stun { server: stun_server.to_string(), reason };
    let (host, port) = match stun_server.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| err("its port is not a number".into()))?),
        None => return Err(err("give it as host:port".into())),
    };
    let server = dns
        .lookup(host, port)
        .await
        .map_err(|e| err(format!("cannot resolve it: {e}")))?
        .into_iter()
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| err("it has no IPv4 address".into()))?;
    let bind: SocketAddr =
        if loopback_only() { (Ipv4Addr::LOCALHOST, 0).into() } else { (Ipv4Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(bind).await?;
    let first = stun_request(&socket, server).await.map_err(err)?;
    let mut mapped: Vec<String> = first.mapped.iter().map(|a| a.to_string()).collect();
    if mapped.is_empty() {
        return Err(err("its answer has no mapped address".into()));
    }
    if let Some(other) = first.other {
        let second = stun_request(&socket, other).await.map_err(err)?;
        mapped.extend(second.mapped.map(|a| a.to_string()));
    }
    if mapped.len() < 2 {
        return Err(err(
            "not enough addresses: the STUN server gave no OTHER-ADDRESS (frp needs a server with two addresses)"
                .into(),
        ));
    }
    let port = socket.local_addr()?.port();
    let assisted = if disable_assisted {
        Vec::new()
    } else {
        local_ipv4s().into_iter().map(|ip| format!("{ip}:{port}")).collect()
    };
    Ok(Prepared { socket, mapped, assisted })
}

async fn send_sid(sock: &UdpSocket, to: SocketAddr, sid: &str, key: &Key, ttl: u32) {
    if let Err(e) = check_dest(to) {
        debug!(error = %e, "punch packet not sent");
        return;
    }
    let m = NatHoleSid {
        transaction_id: nathole::new_id(now_ts()),
        sid: sid.to_string(),
        response: false,
        nonce: "0".repeat(rand::random::<usize>() % 20),
    };
    let original = sock.ttl().ok();
    if ttl > 0 {
        let _ = sock.set_ttl(ttl);
    }
    if let Err(e) = sock.send_to(&encode_sid_packet(&m, key), to).await {
        debug!(to = %to, error = %e, "punch packet not sent");
    }
    if let (true, Some(t)) = (ttl > 0, original) {
        let _ = sock.set_ttl(t);
    }
}

/// frp's `MakeHole` (mode 0: the only one Portway's server asks for): returns the peer's address.
async fn make_hole(sock: &UdpSocket, resp: &NatHoleResp, key: &Key) -> Result<SocketAddr, XtcpError> {
    let b = &resp.detect_behavior;
    let sender = b.role == "sender";
    let mut targets: Vec<&String> = Vec::new();
    if sender {
        if b.send_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(b.send_delay_ms as u64)).await;
        }
        targets.extend(resp.assisted_addrs.iter());
        targets.extend(resp.candidate_addrs.iter());
    } else if b.candidate_ports.is_empty() {
        targets.extend(resp.candidate_addrs.iter());
    }
    targets.dedup();
    let ttl = u32::try_from(b.ttl).unwrap_or(0);
    for t in &targets {
        match t.parse::<SocketAddr>() {
            Ok(a) if a.is_ipv4() => send_sid(sock, a, &resp.sid, key, ttl).await,
            _ => debug!(addr = %t, "punch target is not an IPv4 address"),
        }
    }
    let wait = if b.read_timeout_ms > 0 { Duration::from_millis(b.read_timeout_ms as u64) } else { PUNCH_TIMEOUT };
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 1024];
    let joined = || resp.candidate_addrs.join(", ");
    loop {
        let (n, from) = match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
            Err(_) => return Err(XtcpError::Punch(joined())),
            Ok(Err(e)) => {
                // ICMP port unreachable from an earlier target: keep listening.
                debug!(error = %e, "punch socket error");
                continue;
            }
            Ok(Ok(x)) => x,
        };
        let Some(m) = decode_sid_packet(&buf[..n], key) else {
            debug!(from = %from, "datagram that is not a punch packet for this secret ignored");
            continue;
        };
        if m.sid != resp.sid {
            debug!(from = %from, "punch packet of another session ignored");
            continue;
        }
        if !m.response {
            if sender {
                continue;
            }
            let answer = NatHoleSid { response: true, ..m };
            if check_dest(from).is_ok() {
                let _ = sock.send_to(&encode_sid_packet(&answer, key), from).await;
            }
        }
        return Ok(from);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Provider

/// What the provider's side needs from the engine.
pub struct ProviderCtx {
    /// The control channel.
    pub link: Arc<ControlLink>,
    /// `natHoleStunServer`.
    pub stun_server: String,
    /// Where `natHoleStunServer` and local services are looked up (`dnsServer`).
    pub dns: crate::dns::Resolver,
    /// `transport.quic.*`.
    pub quic: portway_proto::quic::QuicTuning,
}

/// Serves one NatHoleSid the server sent on a work connection of xtcp proxy `p` (registered as `wire`): discovery,
/// NatHoleClient, punching, NatHoleReport, then QUIC streams to the local service until the peer leaves or
/// `cancel` fires.
pub async fn serve_provider(
    ctx: Arc<ProviderCtx>,
    wire: String,
    p: ProxyConfig,
    sid: String,
    cancel: tokio_util::sync::CancellationToken,
) {
    let disable = p.nat_traversal.as_ref().is_some_and(|n| n.disable_assisted_addrs);
    let prepared = match prepare(&ctx.stun_server, ctx.dns, disable).await {
        Ok(x) => x,
        Err(e) => return warn!(proxy = %p.name, error = %e, "xtcp: cannot prepare the hole punch"),
    };
    info!(proxy = %p.name, addresses = ?prepared.mapped, assisted = ?prepared.assisted, "xtcp: nathole prepare success");
    let tid = nathole::new_id(now_ts());
    let msg = NatHoleClient {
        transaction_id: tid.clone(),
        proxy_name: wire.clone(),
        sid: sid.clone(),
        mapped_addrs: prepared.mapped.clone(),
        assisted_addrs: prepared.assisted.clone(),
    };
    let resp = match ctx.link.exchange(msg.to_message(), &tid, "NatHoleClient").await {
        Ok(r) if r.error.is_empty() && !r.candidate_addrs.is_empty() => r,
        Ok(r) => return warn!(proxy = %p.name, error = %r.error, "xtcp: the server gave no peer address"),
        Err(e) => return warn!(proxy = %p.name, error = %e, "xtcp: exchange with the server failed"),
    };
    let key = Key::derive(p.secret_key.as_bytes());
    let peer = match make_hole(&prepared.socket, &resp, &key).await {
        Ok(a) => a,
        Err(e) => {
            let _ = ctx.link.send(NatHoleReport { sid, success: false }.to_message()).await;
            return warn!(proxy = %p.name, error = %e, "xtcp: hole punching failed");
        }
    };
    info!(proxy = %p.name, sid = %resp.sid, peer = %peer, "xtcp: nat hole established");
    let _ = ctx.link.send(NatHoleReport { sid: resp.sid.clone(), success: true }.to_message()).await;
    if let Err(e) = serve_quic(&ctx, prepared.socket, &p, cancel).await {
        warn!(proxy = %p.name, error = %e, "xtcp: peer-to-peer session ended with an error");
    }
}

async fn serve_quic(
    ctx: &ProviderCtx,
    socket: UdpSocket,
    p: &ProxyConfig,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<(), XtcpError> {
    let q = |e: &dyn std::fmt::Display| XtcpError::Quic(e.to_string());
    let tls = portway_proto::transport::server_config(&Default::default()).map_err(|e| q(&e))?;
    let endpoint = portway_proto::quic::server_endpoint(socket.into_std()?, &tls, &ctx.quic).map_err(|e| q(&e))?;
    // One connection per punched hole (frp accepts one).
    let incoming = tokio::select! {
        _ = cancel.cancelled() => return Ok(()),
        r = tokio::time::timeout(OPEN_TIMEOUT, endpoint.accept()) => match r {
            Ok(Some(i)) => i,
            Ok(None) => return Ok(()),
            Err(_) => return Err(XtcpError::Quic("the visitor did not open a QUIC session".into())),
        },
    };
    let conn = incoming.await.map_err(|e| q(&e))?;
    let key = p.transport.use_encryption.then(|| Key::derive(p.secret_key.as_bytes()));
    loop {
        let (send, recv) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = conn.accept_bi() => match r {
                Ok(s) => s,
                Err(e) => {
                    debug!(error = %e, "xtcp: peer-to-peer session closed");
                    break;
                }
            },
        };
        let stream: BoxedIo = Box::new(QuicStream::new(send, recv));
        let (p, key, cancel, dns) = (p.clone(), key.clone(), cancel.clone(), ctx.dns);
        tokio::spawn(
            async move {
                let local = format!("{}:{}", p.local_ip, p.local_port);
                let dial = dns.connect(&p.local_ip, p.local_port);
                let mut local_conn = match tokio::time::timeout(LOCAL_DIAL_TIMEOUT, dial).await {
                    Ok(Ok(c)) => c,
                    _ => return warn!(proxy = %p.name, local = %local, "local service unreachable; xtcp stream closed"),
                };
                let mut work = wrap_work_conn(stream, key.as_ref(), p.transport.use_compression);
                until_cancelled(&cancel, relay_tcp(&mut local_conn, &mut work)).await;
            }
            .in_current_span(),
        );
    }
    conn.close(0u32.into(), b"");
    endpoint.close(0u32.into(), b"");
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Visitor

/// One xtcp visitor's tunnel: the QUIC session once punched, and the punch trigger.
struct Tunnel {
    session: Mutex<Option<Arc<QuicClient>>>,
    wake: Notify,
    attempts: Mutex<Vec<Instant>>,
    /// Failed punch attempts so far: a connection waiting for a tunnel stops at the first failure after it came.
    failures: std::sync::atomic::AtomicU64,
}

impl Tunnel {
    fn current(&self) -> Option<Arc<QuicClient>> {
        self.session.lock().ok().and_then(|s| s.clone())
    }
    fn drop_session(&self) {
        if let Some(s) = self.session.lock().ok().and_then(|mut s| s.take()) {
            s.close();
        }
    }
}

/// Runs an xtcp visitor: listens on `bindAddr:bindPort` (unless `-1`), punches on demand (or at once with
/// `keepTunnelOpen`), relays each local connection over a QUIC stream, or through `fallbackTo`.
pub async fn run_visitor(env: Arc<VisitorEnv>, v: VisitorConfig) {
    let v = Arc::new(v);
    let tunnel = Arc::new(Tunnel {
        session: Mutex::new(None),
        wake: Notify::new(),
        attempts: Mutex::new(Vec::new()),
        failures: Default::default(),
    });
    {
        let (env, v, tunnel) = (env.clone(), v.clone(), tunnel.clone());
        tokio::spawn(async move { punch_loop(env, v, tunnel).await }.in_current_span());
    }
    if v.keep_tunnel_open {
        let (env, v, tunnel) = (env.clone(), v.clone(), tunnel.clone());
        tokio::spawn(async move { keep_open(env, v, tunnel).await }.in_current_span());
    }
    if v.bind_port < 0 {
        return;
    }
    let addr = format!("{}:{}", v.bind_addr, v.bind_port);
    let listener = match addr.parse::<SocketAddr>().map_err(|e| std::io::Error::other(e.to_string())) {
        Ok(a) => crate::visitor::bind_retrying(&env, || async move { portway_proto::transport::listen(a) }).await,
        Err(e) => Err(e),
    };
    let listener: TcpListener = match listener {
        Ok(l) => l,
        Err(e) => {
            let reason = format!("cannot listen on {addr}: {e} (port in use? change bindPort)");
            warn!(error = %reason, "visitor not started");
            return set(&env, &v, |s| s.state = VisitorState::Error { reason });
        }
    };
    info!(local = %addr, server_name = %env.cfg.visitor_server_name(&v), "xtcp visitor listening");
    set(&env, &v, |s| s.state = VisitorState::Listening { local_addr: addr.clone() });
    loop {
        let (user, peer) = tokio::select! {
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
        let (env, v, tunnel) = (env.clone(), v.clone(), tunnel.clone());
        tokio::spawn(
            async move { handle_conn(env, v, tunnel, user).await }.instrument(tracing::debug_span!("conn", %peer)),
        );
    }
    tunnel.drop_session();
}

fn set(env: &VisitorEnv, v: &VisitorConfig, f: impl FnOnce(&mut crate::status::VisitorStatus)) {
    env.status.send_modify(|s| {
        if let Some(x) = s.visitors.get_mut(&v.name) {
            f(x);
        }
    });
}

async fn handle_conn(env: Arc<VisitorEnv>, v: Arc<VisitorConfig>, tunnel: Arc<Tunnel>, mut user: TcpStream) {
    let wait = if v.fallback_to.is_empty() {
        OPEN_TIMEOUT
    } else {
        Duration::from_millis(v.fallback_timeout_ms.unwrap_or(1000).max(0) as u64)
    };
    let deadline = tokio::time::Instant::now() + wait;
    let failures = tunnel.failures.load(std::sync::atomic::Ordering::Relaxed);
    let stream = loop {
        if let Some(s) = tunnel.current() {
            match s.open().await {
                Ok(st) => break Some(st),
                Err(e) => {
                    info!(error = %e, "xtcp: the peer-to-peer session is gone; punching again");
                    tunnel.drop_session();
                }
            }
        }
        tunnel.wake.notify_one();
        let failed = tunnel.failures.load(std::sync::atomic::Ordering::Relaxed) > failures;
        if failed || tokio::time::Instant::now() >= deadline {
            break None;
        }
        tokio::select! {
            _ = env.cancel.cancelled() => return,
            _ = tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + Duration::from_millis(100))) => {}
        }
    };
    let mut remote: BoxedIo = match stream {
        Some(s) => {
            set(&env, &v, |st| st.path = Some("peer to peer".into()));
            let key = v.transport.use_encryption.then(|| Key::derive(v.secret_key.as_bytes()));
            wrap_work_conn(Box::new(s), key.as_ref(), v.transport.use_compression)
        }
        None if !v.fallback_to.is_empty() => {
            let Some(fb) = env.visitor(&v.fallback_to) else { return };
            debug!(fallback = %fb.name, "xtcp: no tunnel in time; using the fallback visitor");
            match crate::visitor::open(&env, &fb).await {
                Ok(c) => {
                    let path = format!("via server (fallbackTo {})", fb.name);
                    set(&env, &v, |st| st.path = Some(path));
                    c
                }
                Err(e) => {
                    let reason = format!("xtcp fallback {:?} failed: {e}", fb.name);
                    warn!(error = %reason, "visitor connection failed");
                    return set(&env, &v, |st| st.last_error = Some(reason));
                }
            }
        }
        None => {
            let reason =
                "no peer-to-peer tunnel (set fallbackTo to an stcp visitor to go through the server)".to_string();
            debug!("{reason}");
            // A punch error already recorded says more; keep it.
            return set(&env, &v, |st| {
                st.last_error.get_or_insert(reason);
            });
        }
    };
    set(&env, &v, |s| s.conns += 1);
    let r = until_cancelled(&env.cancel, relay_tcp(&mut user, &mut remote)).await;
    if let Some(Ok((up, down))) = r {
        set(&env, &v, |s| {
            s.bytes_out += up;
            s.bytes_in += down;
        });
    }
}

async fn punch_loop(env: Arc<VisitorEnv>, v: Arc<VisitorConfig>, tunnel: Arc<Tunnel>) {
    loop {
        tokio::select! {
            _ = env.cancel.cancelled() => break,
            _ = tunnel.wake.notified() => {}
        }
        if tunnel.current().is_some() {
            continue;
        }
        let started = Instant::now();
        if let Ok(mut a) = tunnel.attempts.lock() {
            a.retain(|t| t.elapsed() < Duration::from_secs(3600));
            a.push(started);
        }
        let r = tokio::select! {
            _ = env.cancel.cancelled() => break,
            r = make_nat_hole(&env, &v) => r,
        };
        match r {
            Ok(session) => {
                info!("xtcp: peer-to-peer tunnel established");
                set(&env, &v, |s| s.last_error = None);
                if let Ok(mut s) = tunnel.session.lock() {
                    *s = Some(Arc::new(session));
                }
            }
            Err(e) => {
                warn!(error = %e, "xtcp: no peer-to-peer tunnel");
                let reason = e.to_string();
                set(&env, &v, |s| s.last_error = Some(reason));
                tunnel.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // frp waits 10 s between attempts.
                let gap = MIN_PUNCH_GAP.saturating_sub(started.elapsed());
                tokio::select! {
                    _ = env.cancel.cancelled() => break,
                    _ = tokio::time::sleep(gap) => {}
                }
            }
        }
    }
    tunnel.drop_session();
}

/// `keepTunnelOpen`: punch now, then check every `minRetryInterval` seconds, at most `maxRetriesAnHour` punches.
async fn keep_open(env: Arc<VisitorEnv>, v: Arc<VisitorConfig>, tunnel: Arc<Tunnel>) {
    let every = Duration::from_secs(v.min_retry_interval.filter(|n| *n > 0).unwrap_or(90) as u64);
    let max = v.max_retries_an_hour.filter(|n| *n > 0).unwrap_or(8) as usize;
    tunnel.wake.notify_one();
    loop {
        tokio::select! {
            _ = env.cancel.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        let alive = match tunnel.current() {
            Some(s) => s.open().await.is_ok(),
            None => false,
        };
        let recent = tunnel
            .attempts
            .lock()
            .map(|a| a.iter().filter(|t| t.elapsed() < Duration::from_secs(3600)).count())
            .unwrap_or(0);
        if !alive && recent < max {
            tunnel.drop_session();
            tunnel.wake.notify_one();
        }
    }
}

/// frp's `makeNatHole` for a visitor: pre-check, discovery, NatHoleVisitor, punch, QUIC.
async fn make_nat_hole(env: &VisitorEnv, v: &VisitorConfig) -> Result<QuicClient, XtcpError> {
    let proxy = env.cfg.visitor_server_name(v);
    let link = &env.link;
    let tid = nathole::new_id(now_ts());
    let pre = NatHoleVisitor {
        transaction_id: tid.clone(),
        proxy_name: proxy.clone(),
        pre_check: true,
        ..Default::default()
    };
    let r = link.exchange(pre.to_message(), &tid, "NatHoleVisitor").await?;
    if !r.error.is_empty() {
        return Err(XtcpError::Refused { proxy, error: r.error });
    }
    let disable = v.nat_traversal.as_ref().is_some_and(|n| n.disable_assisted_addrs);
    let prepared = prepare(&env.cfg.nat_hole_stun_server, env.cfg.resolver(), disable).await?;
    info!(addresses = ?prepared.mapped, assisted = ?prepared.assisted, "xtcp: nathole prepare success");
    let ts = now_ts();
    let tid = nathole::new_id(ts);
    let msg = NatHoleVisitor {
        transaction_id: tid.clone(),
        proxy_name: proxy.clone(),
        pre_check: false,
        protocol: "quic".into(),
        sign_key: portway_proto::auth::privilege_key(&v.secret_key, ts),
        timestamp: ts,
        mapped_addrs: prepared.mapped.clone(),
        assisted_addrs: prepared.assisted.clone(),
    };
    let resp = link.exchange(msg.to_message(), &tid, "NatHoleVisitor").await?;
    if !resp.error.is_empty() {
        return Err(XtcpError::Refused { proxy, error: resp.error });
    }
    if resp.candidate_addrs.is_empty() {
        return Err(XtcpError::Refused { proxy, error: "no candidate address for the provider".into() });
    }
    let key = Key::derive(v.secret_key.as_bytes());
    let peer = make_hole(&prepared.socket, &resp, &key).await?;
    info!(sid = %resp.sid, peer = %peer, "xtcp: nat hole established");
    let tls =
        portway_proto::transport::client_config(&Default::default()).map_err(|e| XtcpError::Quic(e.to_string()))?;
    let quic = env.cfg.transport.quic_tuning();
    let name = peer.ip().to_string();
    let connect = QuicClient::connect_on(prepared.socket.into_std()?, peer, &name, &tls, &quic);
    match tokio::time::timeout(PUNCH_TIMEOUT * 2, connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(XtcpError::Quic(e.to_string())),
        Err(_) => Err(XtcpError::Quic(format!("no QUIC handshake with {peer} within {:?}", PUNCH_TIMEOUT * 2))),
    }
}
