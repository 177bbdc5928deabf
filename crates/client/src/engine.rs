//! The client engine: one handle — start, watch status, stop. It logs in, registers proxies, serves work
//! connections and reconnects with capped exponential backoff, keeping its run_id. [`ClientHandle::reload`] applies
//! new proxy and visitor lists as a difference: new ones start, changed ones restart, untouched ones keep their
//! connections.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use portway_proto::aead::AeadStream;
use portway_proto::codec;
use portway_proto::crypto::{CryptoStream, Key};
use portway_proto::limit::{Bucket, LimitedIo};
use portway_proto::msg::{ClientSpec, CloseProxy, Login, LoginResp, Message, NewProxy, NewWorkConn, Ping};
use portway_proto::relay::{relay_tcp, until_cancelled, wrap_work_conn};
use portway_proto::transport::BoxedIo;
use portway_proto::wire::{MsgReader, Wire};
use portway_proto::wire_v2::{self, frame_type, Algorithm, ClientHello, HelloError, KeyShare, Keys, ServerHello};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::auth::{now_ts, ClientAuth, ClientAuthError};
use crate::config::{ClientConfig, ProxyConfig, VisitorConfig};
use crate::connector::{ConnectError, Connector};
use crate::secret::{SecretError, SecretSource};
use crate::status::{ConnState, ProxyState, ProxyStatus, Status, VisitorStatus};

/// How long the server has to answer a Login.
const LOGIN_RESP_TIMEOUT: Duration = Duration::from_secs(10);
/// Resend NewProxy when the server has not answered (frp: 20 s).
const NEW_PROXY_RESEND: Duration = Duration::from_secs(20);
/// Retry a refused proxy (frp: 30 s): the port may have been freed.
const NEW_PROXY_RETRY: Duration = Duration::from_secs(30);
/// How long the local service may take to accept.
const LOCAL_DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes asked for by a work connection's read of StartWorkConn: the message, and few of the visitor's bytes behind
/// it (those are put back in front of the connection and written to the local service first).
const WORK_CONN_READ: usize = 1024;

/// Why a session ended or could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Network.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The server said no.
    #[error("login refused by the server: {0}")]
    LoginRefused(String),
    /// Credentials could not be produced.
    #[error(transparent)]
    Auth(#[from] ClientAuthError),
    /// Secret unavailable.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Protocol.
    #[error("protocol error talking to the server: {0}")]
    Protocol(#[from] codec::CodecError),
    /// No LoginResp in time.
    #[error("the server did not answer the login within {0:?} (is this an frp server? TLS on one side only?)")]
    LoginTimeout(Duration),
    /// `transport.wireProtocol = "v2"` against a server that closed on the magic, as frps before v0.69 does.
    #[error("this server does not speak wire protocol v2; remove transport.wireProtocol or upgrade it (frps v0.69+ or portway-server)")]
    NoWireV2,
    /// The v2 hello negotiation failed.
    #[error("wire protocol v2 negotiation with the server failed: {0}")]
    Hello(#[from] HelloError),
    /// Heartbeats stopped.
    #[error("no heartbeat answer from the server within {0:?}; the connection is considered lost")]
    HeartbeatTimeout(Duration),
    /// The connection closed.
    #[error("the server closed the connection")]
    Closed,
}

impl SessionError {
    fn is_login_refusal(&self) -> bool {
        matches!(
            self,
            SessionError::LoginRefused(_)
                | SessionError::Auth(_)
                | SessionError::Secret(_)
                | SessionError::NoWireV2
                | SessionError::Hello(_)
        )
    }
}

/// Backoff after failures: `base` doubling up to `cap` (pure; an iterator of delays).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    /// Starts at `base`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff { next: base, cap }
    }
}

impl Iterator for Backoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let d = self.next;
        self.next = (self.next * 2).min(self.cap);
        Some(d)
    }
}

/// A running engine.
pub struct ClientHandle {
    status: watch::Receiver<Status>,
    status_tx: Arc<watch::Sender<Status>>,
    desired: watch::Sender<Arc<Vec<ProxyConfig>>>,
    desired_visitors: watch::Sender<Arc<Vec<VisitorConfig>>>,
    config: std::sync::Mutex<ClientConfig>,
    cancel: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<Result<(), SessionError>>>>,
}

/// What a [`ClientHandle::reload`] changed, by proxy and visitor name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// Proxies started.
    pub added: Vec<String>,
    /// Proxies restarted with their new settings.
    pub changed: Vec<String>,
    /// Proxies closed.
    pub removed: Vec<String>,
    /// Visitors started.
    pub visitors_added: Vec<String>,
    /// Visitors restarted with their new settings.
    pub visitors_changed: Vec<String>,
    /// Visitors closed.
    pub visitors_removed: Vec<String>,
    /// Whether settings other than the proxies and visitors changed; those apply at the next start only (as frpc).
    pub other_settings_changed: bool,
}

/// A difference between two lists of named entries: (added, changed (old, new), removed).
pub type Diff<'a, T> = (Vec<&'a T>, Vec<(&'a T, &'a T)>, Vec<&'a T>);

/// The difference between two lists of named entries (proxies, visitors), by name.
pub fn diff_by_name<'a, T: PartialEq>(old: &'a [T], new: &'a [T], name: impl Fn(&T) -> &str) -> Diff<'a, T> {
    let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    for n in new {
        match old.iter().find(|o| name(o) == name(n)) {
            None => added.push(n),
            Some(o) if o != n => changed.push((o, n)),
            Some(_) => {}
        }
    }
    for o in old {
        if !new.iter().any(|n| name(n) == name(o)) {
            removed.push(o);
        }
    }
    (added, changed, removed)
}

/// The difference between two proxy lists, by name: (added, changed (old, new), removed).
pub fn diff_proxies<'a>(old: &'a [ProxyConfig], new: &'a [ProxyConfig]) -> Diff<'a, ProxyConfig> {
    diff_by_name(old, new, |p| &p.name)
}

impl ClientHandle {
    /// The current status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Asks the engine to stop and waits for it (closing the tunnel and its connections).
    pub async fn stop(self) -> Result<(), SessionError> {
        self.cancel.cancel();
        self.finished().await
    }

    /// Waits until the engine ends by itself (only when `loginFailExit` gives up).
    pub async fn wait(self) -> Result<(), SessionError> {
        self.finished().await
    }

    /// Waits until the engine has ended (stopped through its token, or given up), from a shared handle. Only the
    /// first caller gets the engine's result; later ones get `Ok`.
    pub async fn finished(&self) -> Result<(), SessionError> {
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        match task {
            Some(t) => t.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    /// A token that stops the engine when cancelled.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The configuration the engine runs (with the proxies of the last reload).
    pub fn config(&self) -> ClientConfig {
        self.config.lock().map(|c| c.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Applies `new`'s proxies and visitors as a difference from the running ones: new ones start, changed ones
    /// are closed and started again (their open connections end), removed ones close (a visitor's listener with
    /// them); untouched ones keep their connections. Other settings (server address, auth, transport) apply at the
    /// next start, as with frpc.
    pub fn reload(&self, new: ClientConfig) -> ReloadOutcome {
        let mut cur = self.config.lock().unwrap_or_else(|e| e.into_inner());
        let (added, changed, removed) = diff_proxies(&cur.proxies, &new.proxies);
        let (v_added, v_changed, v_removed) = crate::visitor::diff_visitors(&cur.visitors, &new.visitors);
        fn names<T>(v: &[&T], name: impl Fn(&T) -> &str) -> Vec<String> {
            v.iter().map(|x| name(x).to_string()).collect()
        }
        let bare = |c: &ClientConfig| ClientConfig { proxies: Vec::new(), visitors: Vec::new(), ..c.clone() };
        let outcome = ReloadOutcome {
            changed: changed.iter().map(|(_, n)| n.name.clone()).collect(),
            added: names(&added, |p| &p.name),
            removed: names(&removed, |p| &p.name),
            visitors_changed: v_changed.iter().map(|(_, n)| n.name.clone()).collect(),
            visitors_added: names(&v_added, |v| &v.name),
            visitors_removed: names(&v_removed, |v| &v.name),
            other_settings_changed: bare(&cur) != bare(&new),
        };
        self.status_tx.send_modify(|s| {
            s.proxies.retain(|name, _| new.proxies.iter().any(|p| &p.name == name));
            for p in &new.proxies {
                s.proxies.entry(p.name.clone()).or_insert_with(ProxyStatus::idle);
            }
            s.visitors.retain(|name, _| new.visitors.iter().any(|v| &v.name == name));
            for v in &new.visitors {
                s.visitors.entry(v.name.clone()).or_insert_with(VisitorStatus::idle);
            }
        });
        cur.proxies = new.proxies;
        cur.visitors = new.visitors;
        self.desired.send_replace(Arc::new(cur.proxies.clone()));
        self.desired_visitors.send_replace(Arc::new(cur.visitors.clone()));
        info!(
            added = ?outcome.added, changed = ?outcome.changed, removed = ?outcome.removed,
            visitors_added = ?outcome.visitors_added, visitors_changed = ?outcome.visitors_changed,
            visitors_removed = ?outcome.visitors_removed, "configuration reloaded"
        );
        outcome
    }
}

/// Starts the engine with `config`; `secret` says where `auth.token` comes from.
pub fn start(config: ClientConfig, secret: SecretSource) -> ClientHandle {
    let names = config.proxies.iter().map(|p| p.name.clone());
    let mut first = Status::new(names);
    for v in &config.visitors {
        first.visitors.insert(v.name.clone(), VisitorStatus::idle());
    }
    let (tx, rx) = watch::channel(first);
    let status = Arc::new(tx);
    let cancel = CancellationToken::new();
    let (desired, desired_rx) = watch::channel(Arc::new(config.proxies.clone()));
    let (desired_visitors, desired_visitors_rx) = watch::channel(Arc::new(config.visitors.clone()));
    let engine = Engine {
        cfg: Arc::new(config.clone()),
        secret,
        status: status.clone(),
        desired: desired_rx,
        desired_visitors: desired_visitors_rx,
        cancel: cancel.clone(),
    };
    let task = tokio::spawn(async move { engine.run().await }.instrument(tracing::info_span!("client")));
    ClientHandle {
        status: rx,
        status_tx: status,
        desired,
        desired_visitors,
        config: std::sync::Mutex::new(config),
        cancel,
        task: std::sync::Mutex::new(Some(task)),
    }
}

/// A session's proxies by wire name: the configuration and a token that ends its connections (a child of the
/// session's token, cancelled alone when a reload changes or removes the proxy).
type LiveProxies = Arc<RwLock<HashMap<String, (Arc<ProxyConfig>, CancellationToken)>>>;

struct Engine {
    /// Connection settings (its `proxies` are the ones at start; the current list is `desired`).
    cfg: Arc<ClientConfig>,
    secret: SecretSource,
    status: Arc<watch::Sender<Status>>,
    desired: watch::Receiver<Arc<Vec<ProxyConfig>>>,
    /// The current visitor list (after reloads).
    desired_visitors: watch::Receiver<Arc<Vec<VisitorConfig>>>,
    cancel: CancellationToken,
}

impl Engine {
    async fn run(self) -> Result<(), SessionError> {
        // Credentials are prepared once, so the OIDC token cache outlives reconnects.
        let (auth, key, ikm) = match self.credentials() {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot prepare credentials");
                self.set_conn(ConnState::Error { reason: e.to_string(), retry_in: None });
                return Err(e);
            }
        };
        let mut run_id = String::new();
        let mut ever_logged_in = false;
        let mut attempt = 0u32;
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(20));
        let result = loop {
            attempt += 1;
            self.set_conn(ConnState::Connecting { attempt });
            let mut logged_in = false;
            let r = tokio::select! {
                _ = self.cancel.cancelled() => break Ok(()),
                r = self.session(&auth, &key, &ikm, &mut run_id, &mut logged_in) => r,
            };
            let err = match r {
                Ok(()) => SessionError::Closed,
                Err(e) => e,
            };
            if logged_in {
                ever_logged_in = true;
                attempt = 0;
                backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(20));
            }
            if !ever_logged_in && self.cfg.login_fail_exit && (err.is_login_refusal() || attempt == 1) {
                warn!(error = %err, "login failed and loginFailExit = true; giving up");
                self.set_conn(ConnState::Error { reason: err.to_string(), retry_in: None });
                break Err(err);
            }
            let delay = backoff.next().unwrap_or(Duration::from_secs(20));
            warn!(error = %err, retry_in = ?delay, "disconnected from the server; will retry");
            self.set_conn(ConnState::Error { reason: err.to_string(), retry_in: Some(delay) });
            tokio::select! {
                _ = self.cancel.cancelled() => break Ok(()),
                _ = tokio::time::sleep(delay) => {}
            }
            // After a session that lasted, the first retries are fast (frp: ~200 ms), then back off again.
            if delay >= Duration::from_secs(1) && ever_logged_in {
                backoff.next = backoff.next.max(Duration::from_secs(1));
            }
        };
        if result.is_ok() {
            self.set_conn(ConnState::Disconnected);
        }
        result
    }

    /// Sets the connection state; any state but Connected also marks every proxy idle, in the same update, so
    /// that no observer sees "disconnected" next to a stale "running" proxy.
    fn set_conn(&self, c: ConnState) {
        self.status.send_modify(|s| {
            if !matches!(c, ConnState::Connected { .. }) {
                for p in s.proxies.values_mut() {
                    p.state = ProxyState::Idle;
                }
                for v in s.visitors.values_mut() {
                    if matches!(v.state, crate::status::VisitorState::Listening { .. }) {
                        v.state = crate::status::VisitorState::Idle;
                    }
                }
            }
            s.conn = c;
        });
    }

    fn credentials(&self) -> Result<(Arc<ClientAuth>, Key, Ikm), SessionError> {
        credentials(&self.cfg, &self.secret)
    }

    /// One session: connect, log in, serve until the connection is lost.
    async fn session(
        &self,
        auth: &Arc<ClientAuth>,
        key: &Key,
        ikm: &Ikm,
        run_id: &mut String,
        logged_in: &mut bool,
    ) -> Result<(), SessionError> {
        let (auth, key) = (auth.clone(), key.clone());
        let wire = self.cfg.transport.wire();
        let connector = Arc::new(Connector::connect(self.cfg.clone()).await?);
        let mut conn = connector.open().await?;
        let (resp, crypto) = login(&self.cfg, &mut conn, &auth, ikm, run_id).await?;
        *run_id = resp.run_id.clone();
        *logged_in = true;
        info!(run_id = %resp.run_id, server_version = %resp.version, "logged in to the server");
        self.set_conn(ConnState::Connected { run_id: resp.run_id.clone(), since: SystemTime::now() });
        let session_cancel = self.cancel.child_token();
        let _guard = session_cancel.clone().drop_guard();
        let (ctl_tx, ctl_rx) = mpsc::channel::<Message>(64);
        let link = Arc::new(crate::xtcp::ControlLink::new(ctl_tx.clone()));
        let ctx = Arc::new(WorkCtx {
            xtcp: Arc::new(crate::xtcp::ProviderCtx {
                link: link.clone(),
                stun_server: self.cfg.nat_hole_stun_server.clone(),
                dns: self.cfg.resolver(),
                quic: self.cfg.transport.quic_tuning(),
            }),
            cfg: self.cfg.clone(),
            live: Arc::new(RwLock::new(HashMap::new())),
            connector: connector.clone(),
            auth: auth.clone(),
            key: key.clone(),
            wire,
            run_id: resp.run_id.clone(),
            status: self.status.clone(),
            cancel: session_cancel.clone(),
            buckets: Default::default(),
        });
        // Marked seen before the visitors start: a reload from now on reaches the control loop as a change.
        let mut desired_visitors = self.desired_visitors.clone();
        let current = desired_visitors.borrow_and_update().as_ref().clone();
        let visitors = crate::visitor::Visitors::start(Arc::new(crate::visitor::VisitorEnv {
            link: link.clone(),
            current: Arc::new(RwLock::new(current)),
            cfg: self.cfg.clone(),
            connector: connector.clone(),
            wire,
            run_id: resp.run_id.clone(),
            status: self.status.clone(),
            cancel: session_cancel.clone(),
        }));
        // The client writes with the client-to-server key and reads with the server-to-client one.
        let stream: BoxedIo = match crypto {
            None => Box::new(CryptoStream::new(conn, &key)),
            Some((alg, keys)) => Box::new(AeadStream::new(conn, alg, &keys.c2s, &keys.s2c)),
        };
        self.control_loop(stream, (ctl_tx, ctl_rx), ctx, (visitors, desired_visitors), &auth, session_cancel).await
    }

    async fn control_loop(
        &self,
        stream: BoxedIo,
        (tx, mut rx): (mpsc::Sender<Message>, mpsc::Receiver<Message>),
        ctx: Arc<WorkCtx>,
        (visitors, mut desired_visitors): (crate::visitor::Visitors, watch::Receiver<Arc<Vec<VisitorConfig>>>),
        auth: &ClientAuth,
        cancel: CancellationToken,
    ) -> Result<(), SessionError> {
        let wire = ctx.wire;
        let (mut rd, mut wr) = tokio::io::split(stream);
        let wcancel = cancel.clone();
        let writer = tokio::spawn(async move {
            while let Some(m) = tokio::select! { _ = wcancel.cancelled() => None, m = rx.recv() => m } {
                if wire.write_msg(&mut wr, &m).await.is_err() {
                    break;
                }
            }
            wcancel.cancel();
        });
        let mut desired = self.desired.clone();
        let mut reloads_open = true;
        let mut visitor_reloads_open = true;
        let initial = desired.borrow_and_update().clone();
        // name → when to (re)send NewProxy if no answer / after a refusal.
        let mut resend: HashMap<String, Instant> = HashMap::new();
        // Proxies with a healthCheck: registered by their monitor's verdicts, not at once.
        let (health_tx, mut health_rx) = mpsc::channel::<crate::health::Change>(16);
        let mut checked: HashMap<String, (ProxyConfig, CancellationToken)> = HashMap::new();
        for p in initial.iter() {
            let wire = self.cfg.wire_name(p);
            if !p.health_check.is_empty() {
                self.start_monitor(&wire, p, &cancel, &health_tx, &mut checked);
                continue;
            }
            ctx.live_insert(&wire, p.clone(), cancel.child_token());
            let _ = tx.send(Message::NewProxy(new_proxy(&wire, p))).await;
            resend.insert(wire, Instant::now() + NEW_PROXY_RESEND);
            self.set_proxy(&p.name, ProxyState::Pending);
        }
        let hb_int = self.cfg.transport.heartbeat_interval();
        let hb_to = self.cfg.transport.heartbeat_timeout();
        let mut hb = tokio::time::interval(Duration::from_secs(hb_int.max(1) as u64));
        hb.tick().await;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_pong = Instant::now();
        let mut reader = MsgReader::default();
        let result = loop {
            tokio::select! {
                _ = cancel.cancelled() => break Err(SessionError::Closed),
                r = desired.changed(), if reloads_open => {
                    if r.is_err() {
                        // The handle is gone: no more reloads (stop still works through the token).
                        reloads_open = false;
                        continue;
                    }
                    let want = desired.borrow_and_update().clone();
                    let current = ctx.live_configs();
                    let (added, changed, removed) = diff_proxies(&current, &want);
                    // Closing before registering: a changed proxy keeps its name (and often its port).
                    for p in removed.iter().copied().chain(changed.iter().map(|(o, _)| *o)) {
                        let wire = self.cfg.wire_name(p);
                        if let Some((_, monitor)) = checked.remove(&wire) {
                            monitor.cancel();
                        }
                        if let Some((_, token)) = ctx.live_remove(&wire) {
                            token.cancel();
                        }
                        resend.remove(&wire);
                        info!(proxy = %p.name, "closing the proxy (reload)");
                        let _ = tx.send(Message::CloseProxy(CloseProxy { proxy_name: wire })).await;
                    }
                    for p in added.iter().copied().chain(changed.iter().map(|(_, n)| *n)) {
                        let wire = self.cfg.wire_name(p);
                        if !p.health_check.is_empty() {
                            self.start_monitor(&wire, p, &cancel, &health_tx, &mut checked);
                            continue;
                        }
                        ctx.live_insert(&wire, p.clone(), cancel.child_token());
                        info!(proxy = %p.name, "registering the proxy (reload)");
                        let _ = tx.send(Message::NewProxy(new_proxy(&wire, p))).await;
                        resend.insert(wire, Instant::now() + NEW_PROXY_RESEND);
                        self.set_proxy(&p.name, ProxyState::Pending);
                    }
                }
                r = desired_visitors.changed(), if visitor_reloads_open => {
                    if r.is_err() {
                        visitor_reloads_open = false;
                        continue;
                    }
                    let want = desired_visitors.borrow_and_update().clone();
                    visitors.apply(&want);
                }
                Some(change) = health_rx.recv() => {
                    let Some((p, _)) = checked.get(&change.wire) else { continue };
                    let p = p.clone();
                    if change.ok {
                        ctx.live_insert(&change.wire, p.clone(), cancel.child_token());
                        let _ = tx.send(Message::NewProxy(new_proxy(&change.wire, &p))).await;
                        resend.insert(change.wire, Instant::now() + NEW_PROXY_RESEND);
                        self.set_proxy(&p.name, ProxyState::Pending);
                    } else {
                        if let Some((_, token)) = ctx.live_remove(&change.wire) {
                            token.cancel();
                        }
                        resend.remove(&change.wire);
                        let _ = tx.send(Message::CloseProxy(CloseProxy { proxy_name: change.wire })).await;
                        let reason = format!(
                            "{}: {}; closed on the server until the local service passes again",
                            crate::health::FAILED,
                            change.detail
                        );
                        self.set_proxy(&p.name, ProxyState::Error { reason });
                    }
                }
                _ = hb.tick(), if hb_int > 0 => {
                    let ts = now_ts();
                    // A provider outage must not end a working session: skip this ping, the next may succeed.
                    let privilege_key = match auth.ping_key(ts).await {
                        Ok(k) => k,
                        Err(e) => {
                            warn!(error = %e, "cannot renew the token for a heartbeat; skipping it");
                            continue;
                        }
                    };
                    let timestamp = if privilege_key.is_empty() { 0 } else { ts };
                    if tx.send(Message::Ping(Ping { privilege_key, timestamp })).await.is_err() {
                        break Err(SessionError::Closed);
                    }
                }
                _ = tick.tick() => {
                    if hb_to > 0 && last_pong.elapsed() > Duration::from_secs(hb_to as u64) {
                        break Err(SessionError::HeartbeatTimeout(Duration::from_secs(hb_to as u64)));
                    }
                    let now = Instant::now();
                    for (wire, at) in resend.iter_mut() {
                        if *at <= now {
                            if let Some(p) = ctx.live_config(wire) {
                                debug!(proxy = %p.name, "sending NewProxy again");
                                let _ = tx.send(Message::NewProxy(new_proxy(wire, &p))).await;
                            }
                            *at = now + NEW_PROXY_RESEND;
                        }
                    }
                }
                // Buffered and cancel safe: one read per burst of ReqWorkConn, and a message half read when another
                // branch fires is not lost.
                m = reader.read_msg(wire, &mut rd) => {
                    let m = match m {
                        Ok(m) => m,
                        Err(e) if e.is_eof() => break Err(SessionError::Closed),
                        Err(e) => break Err(e.into()),
                    };
                    match m {
                        Message::ReqWorkConn(_) => {
                            // Outside the session's span (it has no fields): entering and leaving it at every poll
                            // of every work connection, each relay step included, cost more than the rest of the
                            // connection's tracing; what a work connection logs names its proxy.
                            let c = ctx.clone();
                            tokio::spawn(async move { c.work_conn().await });
                        }
                        Message::NewProxyResp(r) => {
                            let Some(p) = ctx.live_config(&r.proxy_name) else { continue };
                            if r.error.is_empty() {
                                resend.remove(&r.proxy_name);
                                info!(proxy = %p.name, remote_addr = %r.remote_addr, "proxy started");
                                self.set_proxy(&p.name, ProxyState::Running { remote_addr: r.remote_addr });
                            } else {
                                warn!(proxy = %p.name, error = %r.error, "the server refused the proxy; retrying in 30 s");
                                resend.insert(r.proxy_name.clone(), Instant::now() + NEW_PROXY_RETRY);
                                self.set_proxy(&p.name, ProxyState::Error { reason: r.error });
                            }
                        }
                        Message::Pong(p) => {
                            if p.error.is_empty() {
                                last_pong = Instant::now();
                            } else {
                                break Err(SessionError::LoginRefused(format!("heartbeat refused: {}", p.error)));
                            }
                        }
                        Message::NatHoleResp(r) => ctx.xtcp.link.deliver(&r),
                        other => debug!(message = other.name(), "ignored message on the control channel"),
                    }
                }
            }
        };
        cancel.cancel();
        let _ = writer.await;
        result
    }

    /// Starts the health monitor of a proxy with a `healthCheck`; it is registered once the check passes.
    fn start_monitor(
        &self,
        wire: &str,
        p: &ProxyConfig,
        cancel: &CancellationToken,
        tx: &mpsc::Sender<crate::health::Change>,
        checked: &mut HashMap<String, (ProxyConfig, CancellationToken)>,
    ) {
        let token = cancel.child_token();
        tokio::spawn(
            crate::health::monitor(
                p.health_check.clone(),
                wire.to_string(),
                // frpc: a plugin proxy has no local address to check; its tcp check always passes.
                if p.plugin.is_some() { String::new() } else { p.local_ip.clone() },
                p.local_port,
                self.cfg.resolver(),
                tx.clone(),
                token.clone(),
            )
            .in_current_span(),
        );
        checked.insert(wire.to_string(), (p.clone(), token));
        self.set_proxy(&p.name, ProxyState::Pending);
    }

    fn set_proxy(&self, name: &str, state: ProxyState) {
        self.status.send_modify(|s| {
            if let Some(p) = s.proxies.get_mut(name) {
                p.state = state;
            }
        });
    }
}

/// The NewProxy message a proxy is registered with (`wire` is its name on the wire, see `ClientConfig::wire_name`).
pub fn new_proxy(wire: &str, p: &ProxyConfig) -> NewProxy {
    p.to_new_proxy(wire)
}

/// The auth method with its secret resolved, the v1 control-channel key, and the v2 key material (the
/// token bytes; never logged). The secret source gives `auth.token` with token auth and
/// `auth.oidc.clientSecret` with OIDC.
pub(crate) fn credentials(
    cfg: &ClientConfig,
    secret: &SecretSource,
) -> Result<(Arc<ClientAuth>, Key, Ikm), SessionError> {
    let a = &cfg.auth;
    let heartbeats = a.additional_scopes.iter().any(|s| s == "HeartBeats");
    let work_conns = a.additional_scopes.iter().any(|s| s == "NewWorkConns");
    if a.method == "oidc" {
        // With auth.oidc.tokenSource there is no client secret to find.
        let secret = if a.oidc.token_file().is_some() {
            crate::secret::Secret::default()
        } else {
            secret.resolve(&a.oidc.client_secret)?
        };
        let source =
            Arc::new(crate::oidc::TokenSource::new(&a.oidc, secret, cfg.resolver()).map_err(ClientAuthError::from)?);
        // The control cipher is keyed by auth.token whatever the auth method (frp's behaviour).
        let key = Key::derive(a.token.as_bytes());
        // v2: frp's key material is empty with OIDC (frp #5532); anyone who sees the hellos can derive the
        // control-channel keys, so TLS must stay on.
        let ikm = Ikm(Arc::from(&[][..]));
        return Ok((Arc::new(ClientAuth::Oidc { source, heartbeats, work_conns }), key, ikm));
    }
    let token = secret.resolve(&a.token)?;
    let key = Key::derive(token.expose().as_bytes());
    let ikm = Ikm(Arc::from(token.expose().as_bytes()));
    Ok((Arc::new(ClientAuth::Token { token, heartbeats, work_conns }), key, ikm))
}

/// Sends Login on a fresh connection to the server (v2: after the hello) and reads the LoginResp; an error in the
/// answer is [`SessionError::LoginRefused`] with the server's text. Returns the answer and, for v2, the negotiated
/// cipher.
pub(crate) async fn login(
    cfg: &ClientConfig,
    conn: &mut BoxedIo,
    auth: &ClientAuth,
    ikm: &Ikm,
    run_id: &str,
) -> Result<(LoginResp, Option<(Algorithm, Keys)>), SessionError> {
    let wire = cfg.transport.wire();
    let ts = now_ts();
    let login = Login {
        version: portway_proto::FRP_VERSION.into(),
        hostname: hostname(),
        os: std::env::consts::OS.into(),
        arch: go_arch().into(),
        user: cfg.user.clone(),
        privilege_key: auth.login_key(ts).await?,
        timestamp: ts,
        run_id: run_id.to_string(),
        client_id: String::new(),
        metas: cfg.metadatas.clone(),
        client_spec: ClientSpec::default(),
        pool_count: cfg.transport.pool_count,
    };
    let crypto = match wire {
        Wire::V1 => {
            codec::write_msg(conn, &Message::Login(login)).await?;
            None
        }
        Wire::V2 => Some(hello_v2(cfg, conn, &login, ikm).await?),
    };
    let resp = match tokio::time::timeout(LOGIN_RESP_TIMEOUT, wire.read_msg(conn)).await {
        Err(_) => return Err(SessionError::LoginTimeout(LOGIN_RESP_TIMEOUT)),
        Ok(Err(e)) if e.is_eof() => return Err(SessionError::Closed),
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(Message::LoginResp(r))) => r,
        Ok(Ok(other)) => {
            return Err(SessionError::LoginRefused(format!("unexpected {} instead of LoginResp", other.name())))
        }
    };
    if !resp.error.is_empty() {
        return Err(SessionError::LoginRefused(resp.error));
    }
    Ok((resp, crypto))
}

/// v2: magic, ClientHello and Login in one write (as frpc), then the ServerHello. A server that closes
/// instead of answering is a pre-v0.69 frps (or a v1-only server): [`SessionError::NoWireV2`].
async fn hello_v2(
    cfg: &ClientConfig,
    conn: &mut BoxedIo,
    login: &Login,
    ikm: &Ikm,
) -> Result<(Algorithm, Keys), SessionError> {
    let t = &cfg.transport;
    let bootstrap = wire_v2::Bootstrap {
        transport: t.protocol.clone(),
        // frp: true with TLS on, and always for wss and quic (TLS is part of them).
        tls: t.tls.enable || t.protocol == "wss" || t.protocol == "quic",
        tcp_mux: t.tcp_mux,
    };
    let mut ch = ClientHello::new(bootstrap, &Algorithm::preferred(), rand::random());
    // Portway's X25519 extension (docs/wire-v2-x25519.md); frps ignores the field and answers without one.
    let ks = KeyShare::random();
    ch.capabilities.crypto.client_key_share = ks.public().to_vec();
    let ch_raw = ch.to_json();
    let mut first = wire_v2::MAGIC.to_vec();
    wire_v2::encode_frame(frame_type::CLIENT_HELLO, &ch_raw, &mut first).map_err(codec::CodecError::from)?;
    first.extend(wire_v2::encode_message(&Message::Login(login.clone())).map_err(codec::CodecError::from)?);
    conn.write_all(&first).await.map_err(codec::CodecError::from)?;
    conn.flush().await.map_err(codec::CodecError::from)?;
    let sh_raw =
        match tokio::time::timeout(LOGIN_RESP_TIMEOUT, wire_v2::read_frame_of(conn, frame_type::SERVER_HELLO)).await {
            Err(_) => return Err(SessionError::LoginTimeout(LOGIN_RESP_TIMEOUT)),
            Ok(Ok(b)) => b,
            Ok(Err(codec::CodecError::Io(e)))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                return Err(SessionError::NoWireV2)
            }
            Ok(Err(e)) => return Err(e.into()),
        };
    let sh = ServerHello::parse(&sh_raw)?;
    let alg = wire_v2::client_check(&ch, &sh)?;
    let peer_share = &sh.selected.crypto.server_key_share;
    let shared = if peer_share.is_empty() { None } else { Some(ks.agree(peer_share)?) };
    let hash = wire_v2::transcript_hash(&ch_raw, &sh_raw);
    debug!(algorithm = alg.name(), x25519 = shared.is_some(), "wire v2 negotiated");
    if shared.is_none() && cfg.auth.method == "oidc" {
        warn!("wire v2 with auth.method = oidc and a server without Portway's X25519 key share (frps): the control channel's keys derive from public values, so anyone who sees the handshake can read it (tokens included; frp #5532); keep transport.tls.enable = true");
    } else if shared.is_none() && ikm.0.is_empty() {
        warn!("wire v2 control channel keyed without a secret (empty auth.token, no key share): keep transport.tls.enable = true");
    }
    let material = wire_v2::key_material(shared.as_ref(), &ikm.0);
    Ok((alg, wire_v2::derive_keys(&material, &hash, alg)))
}

/// The v2 control-channel key material (`auth.token`'s bytes). Its `Debug` never shows them.
#[derive(Clone)]
pub(crate) struct Ikm(Arc<[u8]>);

impl std::fmt::Debug for Ikm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ikm(<redacted>)")
    }
}

/// What a work connection needs.
struct WorkCtx {
    /// xtcp proxies' side of hole punching.
    xtcp: Arc<crate::xtcp::ProviderCtx>,
    cfg: Arc<ClientConfig>,
    live: LiveProxies,
    connector: Arc<Connector>,
    auth: Arc<ClientAuth>,
    key: Key,
    /// The wire protocol of every work connection (the same as the control connection's, as frpc does).
    wire: Wire,
    run_id: String,
    status: Arc<watch::Sender<Status>>,
    cancel: CancellationToken,
    /// `transport.bandwidthLimit` (client mode) buckets by proxy: shared by all of a proxy's connections.
    buckets: std::sync::Mutex<HashMap<String, Arc<Bucket>>>,
}

impl WorkCtx {
    /// The proxy's bucket when it has a client-side bandwidth limit (a new one when the limit changed).
    fn bucket(&self, p: &ProxyConfig) -> Option<Arc<Bucket>> {
        let rate = p.transport.client_limit()?;
        let mut m = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = m.entry(p.name.clone()).or_insert_with(|| Bucket::new(rate));
        if b.rate() != rate {
            *b = Bucket::new(rate);
        }
        Some(b.clone())
    }

    fn live_insert(&self, wire: &str, p: ProxyConfig, token: CancellationToken) {
        if let Ok(mut m) = self.live.write() {
            m.insert(wire.to_string(), (Arc::new(p), token));
        }
    }

    fn live_remove(&self, wire: &str) -> Option<(Arc<ProxyConfig>, CancellationToken)> {
        self.live.write().ok().and_then(|mut m| m.remove(wire))
    }

    fn live_config(&self, wire: &str) -> Option<ProxyConfig> {
        self.live.read().ok().and_then(|m| m.get(wire).map(|(p, _)| ProxyConfig::clone(p)))
    }

    fn live_configs(&self) -> Vec<ProxyConfig> {
        self.live.read().map(|m| m.values().map(|(p, _)| ProxyConfig::clone(p)).collect()).unwrap_or_default()
    }

    async fn work_conn(self: Arc<Self>) {
        // The dial (TLS, WebSocket, proxy) and the token request are boxed: inline, their large futures would stay
        // in every work connection's task for its whole life, long after they finished.
        let mut conn = match Box::pin(self.connector.open()).await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot open a work connection");
                return;
            }
        };
        let ts = now_ts();
        let key = match Box::pin(self.auth.work_conn_key(ts)).await {
            Ok(k) => k,
            Err(e) => {
                warn!(error = %e, "cannot sign a work connection");
                return;
            }
        };
        let msg = NewWorkConn {
            run_id: self.run_id.clone(),
            timestamp: if key.is_empty() { 0 } else { ts },
            privilege_key: key,
        };
        if self.wire.open_with(&mut conn, &Message::NewWorkConn(msg)).await.is_err() {
            return;
        }
        // Buffered: StartWorkConn usually arrives whole, often with the visitor's first bytes behind it; one read
        // takes them in (three made it before), and `attach` puts what followed the message back in front.
        let mut reader = MsgReader::with_chunk(WORK_CONN_READ);
        let start = tokio::select! {
            _ = self.cancel.cancelled() => return,
            m = reader.read_msg(self.wire, &mut conn) => m,
        };
        let start = match start {
            Ok(Message::StartWorkConn(s)) => s,
            Ok(other) => {
                warn!(message = other.name(), "unexpected message on a work connection");
                return;
            }
            Err(e) => {
                if !e.is_eof() {
                    debug!(error = %e, "work connection failed before StartWorkConn");
                }
                return;
            }
        };
        if !start.error.is_empty() {
            warn!(proxy = %start.proxy_name, error = %start.error, "the server reported an error on a work connection");
            return;
        }
        // An `Arc`: a visitor's connection takes a reference, not a copy of the proxy's configuration.
        let live = self.live.read().ok().and_then(|m| m.get(&start.proxy_name).cloned());
        let Some((p, proxy_cancel)) = live else {
            warn!(proxy = %start.proxy_name, "work connection for a proxy this client does not have");
            return;
        };
        if p.kind == "xtcp" {
            // frps follows StartWorkConn with the NatHoleSid of a visitor's punch request.
            let sid = tokio::select! {
                _ = self.cancel.cancelled() => return,
                m = tokio::time::timeout(LOCAL_DIAL_TIMEOUT, reader.read_msg(self.wire, &mut conn)) => m,
            };
            let raw = match sid {
                Ok(Ok(Message::NatHoleSid(raw))) => raw,
                Ok(Ok(other)) => {
                    return warn!(proxy = %p.name, message = other.name(), "xtcp work connection without NatHoleSid")
                }
                _ => return warn!(proxy = %p.name, "xtcp work connection closed before NatHoleSid"),
            };
            use portway_proto::nathole::NatHole as _;
            let Ok(sid) = portway_proto::nathole::NatHoleSid::from_raw(&raw) else {
                return warn!(proxy = %p.name, "malformed NatHoleSid");
            };
            drop(conn);
            // Boxed here and below: the rarer kinds' futures are large, and inline they would make every tcp work
            // connection's task as large as the largest (7 KiB each, measured with heaptrack at 1,000 connections).
            Box::pin(crate::xtcp::serve_provider(
                self.xtcp.clone(),
                start.proxy_name.clone(),
                ProxyConfig::clone(&p),
                sid.sid,
                proxy_cancel,
            ))
            .await;
            return;
        }
        let conn = reader.attach(conn);
        if matches!(p.kind.as_str(), "udp" | "sudp") {
            Box::pin(self.udp_work_conn(conn, &p, proxy_cancel)).await;
            return;
        }
        if let Some(plugin) = &p.plugin {
            let work =
                wrap_work_conn(conn, p.transport.use_encryption.then_some(&self.key), p.transport.use_compression);
            debug!(proxy = %p.name, plugin = %plugin.kind, visitor = %format!("{}:{}", start.src_addr, start.src_port), "visitor connected");
            self.count_conn(&p.name);
            let extra = proxy_protocol_header(&p, &start);
            let r = tokio::select! {
                _ = proxy_cancel.cancelled() => None,
                r = Box::pin(crate::plugin::serve(plugin, work, extra, self.cfg.resolver(), Some(start.src_addr.clone()))) => r,
            };
            if let Some((inb, outb)) = r {
                self.count_bytes(&p.name, inb, outb);
            }
            return;
        }
        // An IP address (the usual case) is dialled as is: no string to build and parse per visitor.
        let dial = async {
            match p.local_ip.parse::<std::net::IpAddr>() {
                Ok(ip) => TcpStream::connect(std::net::SocketAddr::new(ip, p.local_port)).await,
                Err(_) => self.cfg.resolver().connect(&p.local_ip, p.local_port).await,
            }
        };
        let mut local_conn = match tokio::time::timeout(LOCAL_DIAL_TIMEOUT, dial).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                warn!(proxy = %p.name, local = %format_args!("{}:{}", p.local_ip, p.local_port), error = %e, "local service unreachable; visitor connection closed (is the service running?)");
                return;
            }
            Err(_) => {
                warn!(proxy = %p.name, local = %format_args!("{}:{}", p.local_ip, p.local_port), "local service did not accept within 10 s; visitor connection closed");
                return;
            }
        };
        portway_proto::transport::tune(&local_conn);
        if let Some(h) = proxy_protocol_header(&p, &start) {
            if let Err(e) = tokio::io::AsyncWriteExt::write_all(&mut local_conn, &h).await {
                warn!(proxy = %p.name, error = %e, "cannot write the PROXY protocol header to the local service");
                return;
            }
        }
        let mut work =
            wrap_work_conn(conn, p.transport.use_encryption.then_some(&self.key), p.transport.use_compression);
        if let Some(b) = self.bucket(&p) {
            // The limit covers both directions (frp's limiter on the local connection); no splice past it.
            work = Box::new(LimitedIo::new(work, b));
        }
        debug!(proxy = %p.name, visitor = %format!("{}:{}", start.src_addr, start.src_port), "visitor connected");
        self.count_conn(&p.name);
        let r = until_cancelled(&proxy_cancel, relay_tcp(&mut local_conn, &mut work)).await;
        if let Some(Ok((up, down))) = r {
            let (inb, outb) = (down, up);
            self.count_bytes(&p.name, inb, outb);
        }
    }

    fn count_conn(&self, name: &str) {
        self.status.send_modify(|s| {
            if let Some(ps) = s.proxies.get_mut(name) {
                ps.conns += 1;
            }
        });
    }

    fn count_bytes(&self, name: &str, inb: u64, outb: u64) {
        self.status.send_modify(|s| {
            if let Some(ps) = s.proxies.get_mut(name) {
                ps.bytes_in += inb;
                ps.bytes_out += outb;
            }
        });
    }
}

impl WorkCtx {
    async fn udp_work_conn(&self, conn: portway_proto::transport::BoxedIo, p: &ProxyConfig, cancel: CancellationToken) {
        let Ok(ip) = p.local_ip.parse::<std::net::IpAddr>() else {
            warn!(proxy = %p.name, local_ip = %p.local_ip, "udp proxies need localIP to be an IP address");
            return;
        };
        let mut work =
            wrap_work_conn(conn, p.transport.use_encryption.then_some(&self.key), p.transport.use_compression);
        if let Some(b) = self.bucket(p) {
            work = Box::new(LimitedIo::new(work, b));
        }
        let settings = crate::udp::UdpSettings {
            local: std::net::SocketAddr::new(ip, p.local_port),
            packet_size: self.cfg.udp_packet_size as usize,
            idle_timeout: self.cfg.udp_idle_timeout,
        };
        let (status, name) = (self.status.clone(), p.name.clone());
        self.status.send_modify(|s| {
            if let Some(ps) = s.proxies.get_mut(&name) {
                ps.conns += 1;
            }
        });
        let count: crate::udp::Counter = Arc::new(move |inb, outb| {
            status.send_modify(|s| {
                if let Some(ps) = s.proxies.get_mut(&name) {
                    ps.bytes_in += inb;
                    ps.bytes_out += outb;
                }
            })
        });
        info!(proxy = %p.name, "udp work connection established");
        crate::udp::serve(work, self.wire, settings, cancel, count).await;
    }
}

/// The PROXY protocol header for a visitor, when the proxy asks for one and the server said who the visitor is
/// (frp's rule: a source address and port; the destination defaults to 127.0.0.1).
fn proxy_protocol_header(p: &ProxyConfig, start: &portway_proto::msg::StartWorkConn) -> Option<Vec<u8>> {
    let version = crate::proxy_protocol::Version::parse(&p.transport.proxy_protocol_version).ok()??;
    if start.src_addr.is_empty() || start.src_port == 0 {
        return None;
    }
    let src = std::net::SocketAddr::new(start.src_addr.parse().ok()?, start.src_port);
    let dst_ip = if start.dst_addr.is_empty() { "127.0.0.1" } else { start.dst_addr.as_str() };
    let dst = std::net::SocketAddr::new(dst_ip.parse().ok()?, start.dst_port);
    Some(crate::proxy_protocol::header(version, src, dst))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .unwrap_or_default()
}

/// Go's GOARCH names, which frp reports.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_diff_by_name() {
        let p = |name: &str, port: u16| ProxyConfig { name: name.into(), local_port: port, ..Default::default() };
        let old = [p("a", 1), p("c", 3), p("d", 4)];
        let new = [p("a", 1), p("b", 2), p("c", 30)];
        let (added, changed, removed) = diff_proxies(&old, &new);
        assert_eq!(added.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["b"]);
        assert_eq!(changed.iter().map(|(o, n)| (o.local_port, n.local_port)).collect::<Vec<_>>(), [(3, 30)]);
        assert_eq!(removed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["d"]);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let v: Vec<u64> =
            Backoff::new(Duration::from_secs(1), Duration::from_secs(10)).take(6).map(|d| d.as_secs()).collect();
        assert_eq!(v, [1, 2, 4, 8, 10, 10]);
    }
}
