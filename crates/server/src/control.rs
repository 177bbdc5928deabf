//! One logged-in client: its encrypted control channel, proxies and work-connection pool.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portway_proto::aead::AeadStream;
use portway_proto::codec;
use portway_proto::crypto::CryptoStream;
use portway_proto::msg::{
    CloseProxy, Login, LoginResp, Message, NewProxyResp, NewWorkConn, Pong, ReqWorkConn, StartWorkConn, StrMap,
};
use portway_proto::transport::BoxedIo;
use portway_proto::wire::Wire;
use portway_proto::wire_v2::{Algorithm, Keys};
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::auth::{Authenticator, Identity};
use crate::guard::LoginGuard;
use crate::plugins::{
    self, CloseProxyContent, LoginContent, NewProxyContent, NewWorkConnContent, PingContent, Plugins, UserInfo,
};
use crate::proxy::Kinds;
use crate::session::{BoxFuture, Hub, Session};
pub use crate::session::{WorkConn, WorkConnError};
use crate::stats::ClientLogin;

/// The server's sessions: what every control session shares, above the proxy kinds' [`Hub`].
pub struct Shared {
    /// What the proxies share: configuration, proxy names, tasks, statistics.
    pub hub: Arc<Hub>,
    /// How clients prove who they are.
    pub auth: Authenticator,
    /// Logged-in clients by run_id.
    pub controls: Mutex<HashMap<String, Arc<Control>>>,
    /// Failed logins per address.
    pub guard: LoginGuard,
    /// `[[httpPlugins]]`.
    pub plugins: Plugins,
    /// The proxy kinds' registries (virtual-host routes, tcp groups, secret proxies).
    pub kinds: Kinds,
    /// xtcp sessions waiting for their provider.
    pub nathole: crate::nathole::Controller,
}

impl std::ops::Deref for Shared {
    type Target = Hub;

    fn deref(&self) -> &Hub {
        &self.hub
    }
}

/// frps's summary of a refused login (what the client reads with `detailedErrorsToClient = false`).
fn register_control() -> String {
    "register control error".into()
}
/// Writes a refusal to a client that failed login, then lets the connection drop.
pub(crate) async fn refuse_login(conn: &mut BoxedIo, wire: Wire, error: String) {
    let resp =
        Message::LoginResp(LoginResp { version: portway_proto::FRP_VERSION.into(), run_id: String::new(), error });
    let _ = wire.write_msg(conn, &resp).await;
}

/// frp's extra pool capacity beyond `pool_count` before surplus work connections are discarded.
const POOL_SLACK: usize = 10;

/// How a control connection was negotiated: v1, or v2 with the AEAD algorithm and keys from its hellos.
pub enum Channel {
    /// v1 framing, AES-128-CFB after LoginResp.
    V1,
    /// v2 framing without a hello and without crypto: work and visitor connections.
    V2Plain,
    /// v2 framing, AEAD after LoginResp.
    V2 {
        /// The algorithm the ServerHello selected.
        alg: Algorithm,
        /// Both directions' keys.
        keys: Keys,
    },
}

impl Channel {
    /// The framing.
    pub fn wire(&self) -> Wire {
        match self {
            Channel::V1 => Wire::V1,
            Channel::V2Plain | Channel::V2 { .. } => Wire::V2,
        }
    }
}

/// A logged-in client.
pub struct Control {
    /// The session id frp calls run_id.
    pub run_id: String,
    /// frp's optional `client_id`, unique among online clients.
    pub client_id: String,
    /// Who the credentials say this is.
    pub identity: Identity,
    /// frp's `user` (proxy names arrive already prefixed with it).
    pub user: String,
    /// The Login's `metas` (after the Login plugins), without Portway's reserved keys.
    pub metas: StrMap,
    /// The control connection's wire protocol, `"v1"` or `"v2"` (frps reports it as `wireProtocol`).
    pub wire_protocol: &'static str,
    /// This client's key in the statistics registry.
    pub client_key: String,
    /// This session's number in the statistics registry.
    stats_session: u64,
    /// Expiry of the newest token presented (OIDC); shared with the statistics registry.
    token_expires_at: Arc<AtomicI64>,
    /// Cancelled when the control session ends; every proxy of it is a child.
    pub cancel: CancellationToken,
    tx: mpsc::Sender<Message>,
    pool_tx: mpsc::Sender<WorkConn>,
    pool_rx: Mutex<mpsc::Receiver<WorkConn>>,
    /// This client's proxies: name → cancel token, and whether it holds a public port (tcp/udp; virtual-host
    /// proxies share the vhost ports and do not count against maxPortsPerClient, as in frps).
    proxies: std::sync::Mutex<HashMap<String, (CancellationToken, bool)>>,
    shared: Arc<Shared>,
}

impl Control {
    /// Records the expiry of a newer token presented by this session.
    pub fn renewed(&self, expires_at: Option<i64>) {
        if let Some(e) = expires_at {
            self.token_expires_at.fetch_max(e, Ordering::Relaxed);
        }
    }

    /// Expiry of the newest token this session presented (0: none, token auth).
    pub fn token_expires_at(&self) -> i64 {
        self.token_expires_at.load(Ordering::Relaxed)
    }

    /// Queues a message on the control channel; false if the session is gone.
    pub async fn send(&self, m: Message) -> bool {
        self.tx.send(m).await.is_ok()
    }

    /// `user` of the server plugins' requests: frp's user, run id and metas, plus the OIDC identity.
    pub fn user_info(&self) -> UserInfo {
        UserInfo {
            user: self.user.clone(),
            metas: plugins::identity_metas(self.metas.clone(), &self.identity.subject, &self.identity.client_id),
            run_id: self.run_id.clone(),
        }
    }

    /// Asks the NewUserConn plugins whether a visitor of `proxy_name` at `remote` may be served (true when there
    /// are none). frp asks for tcp, https, tcpmux (and stcp/xtcp) visitors, not for http ones.
    pub async fn user_conn_allowed(&self, proxy_name: &str, proxy_type: &str, remote: SocketAddr) -> bool {
        if !self.shared.plugins.handles("NewUserConn") {
            return true;
        }
        let content = plugins::NewUserConnContent {
            user: self.user_info(),
            proxy_name: proxy_name.into(),
            proxy_type: proxy_type.into(),
            remote_addr: remote.to_string(),
        };
        match self.shared.plugins.new_user_conn(content).await {
            Ok(_) => true,
            Err(e) => {
                info!(proxy = proxy_name, %remote, error = %e, "user connection refused by a server plugin");
                false
            }
        }
    }

    /// Verifies and parks a work connection the client opened in answer to ReqWorkConn; returns whether it was
    /// verified. NewWorkConn plugins are asked first; one that refuses gets StartWorkConn with the reason, as frp.
    /// `peer`: where it came from, for the log.
    pub async fn add_work_conn(&self, mut conn: WorkConn, w: &NewWorkConn, peer: SocketAddr) -> bool {
        let rewritten;
        let mut w = w;
        if self.shared.plugins.handles("NewWorkConn") {
            let content = NewWorkConnContent { user: self.user_info(), new_work_conn: w.clone() };
            // Boxed: an HTTP call's future, kept out of the task of every work connection (plugins are rare).
            match Box::pin(self.shared.plugins.new_work_conn(content)).await {
                Ok(c) => {
                    rewritten = c.new_work_conn;
                    w = &rewritten;
                }
                Err(e) => {
                    info!(%peer, run_id = %self.run_id, error = %e, "work connection refused by a server plugin");
                    let error = self.shared.cfg.error_to_client(|| "invalid NewWorkConn".into(), e.to_string());
                    let refusal = Message::StartWorkConn(StartWorkConn { error, ..Default::default() });
                    let _ = conn.wire.write_msg(&mut conn.io, &refusal).await;
                    return false;
                }
            }
        }
        match self.shared.auth.verify_work_conn(&w.privilege_key, w.timestamp, &self.identity).await {
            Ok(exp) => self.renewed(exp),
            Err(e) => {
                info!(%peer, run_id = %self.run_id, error = %e, "work connection refused");
                return false;
            }
        }
        if self.pool_tx.try_send(conn).is_err() {
            debug!(run_id = %self.run_id, "work connection pool is full; surplus connection discarded");
        }
        true
    }

    /// Takes a work connection from the pool, or asks the client for one and waits `userConnTimeout`. The caller
    /// asks for a replacement (`replenish`) once it has used the connection.
    async fn get_work_conn(&self) -> Result<WorkConn, WorkConnError> {
        let timeout = Duration::from_secs(self.shared.cfg.user_conn_timeout.max(1) as u64);
        let mut rx = self.pool_rx.lock().await;
        let conn = match rx.try_recv() {
            Ok(c) => c,
            Err(_) => {
                if !self.send(Message::ReqWorkConn(ReqWorkConn {})).await {
                    return Err(WorkConnError::Closed);
                }
                tokio::select! {
                    _ = self.cancel.cancelled() => return Err(WorkConnError::Closed),
                    r = tokio::time::timeout(timeout, rx.recv()) => match r {
                        Ok(Some(c)) => c,
                        Ok(None) => return Err(WorkConnError::Closed),
                        Err(_) => return Err(WorkConnError::Timeout(timeout)),
                    },
                }
            }
        };
        Ok(conn)
    }

    /// Asks the client for one more work connection, as frp does for every one taken, so the pool stays warm.
    fn replenish(&self) {
        let _ = self.tx.try_send(Message::ReqWorkConn(ReqWorkConn {}));
    }

    /// Gets a work connection and writes StartWorkConn on it. A pooled connection may have died since it was
    /// parked, so a few are tried.
    pub async fn start_work_conn(&self, start: StartWorkConn) -> Result<WorkConn, WorkConnError> {
        let msg = Message::StartWorkConn(start);
        for _ in 0..4 {
            let mut w = self.get_work_conn().await?;
            let written = w.wire.write_msg(&mut w.io, &msg).await.is_ok();
            // After StartWorkConn, not before: on a multiplexed connection both frames then leave in one write
            // (the control task queues its frame before the session's writer runs), one hand-off fewer.
            self.replenish();
            if written {
                return Ok(w);
            }
        }
        Err(WorkConnError::AllDead)
    }

    /// Number of public ports this client holds.
    pub fn proxy_count(&self) -> usize {
        self.proxies.lock().map(|p| p.values().filter(|(_, port)| *port).count()).unwrap_or(0)
    }

    /// Stops one proxy of this client.
    pub fn close_proxy(&self, name: &str) {
        let token = self.proxies.lock().ok().and_then(|mut p| p.remove(name));
        if let Some((t, _)) = token {
            t.cancel();
            // Before the name is freed, so a proxy another client registers under it next is not marked closed.
            self.shared.stats.proxy_closed(name, crate::oidc::now());
            if self.shared.plugins.handles("CloseProxy") {
                let content = CloseProxyContent {
                    user: self.user_info(),
                    close_proxy: CloseProxy { proxy_name: name.to_string() },
                };
                let plugins = self.shared.plugins.clone();
                self.shared.tracker.spawn(async move { plugins.close_proxy(content).await });
            }
            crate::session::release_name(self, name);
            info!(proxy = name, "proxy closed");
        }
    }

    fn close_all(&self) {
        let names: Vec<String> = self.proxies.lock().map(|p| p.keys().cloned().collect()).unwrap_or_default();
        for n in names {
            self.close_proxy(&n);
        }
    }

    /// This session as xtcp's coordination sees it.
    fn nathole_peer(self: &Arc<Self>) -> crate::nathole::Peer {
        crate::nathole::Peer {
            user: self.user.clone(),
            identity: self.identity.clone(),
            tx: self.tx.clone(),
            session: self.clone(),
        }
    }

    /// The server this control belongs to.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Session for Control {
    fn hub(&self) -> &Arc<Hub> {
        &self.shared.hub
    }

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn user(&self) -> &str {
        &self.user
    }

    fn identity(&self) -> &Identity {
        &self.identity
    }

    fn client_key(&self) -> &str {
        &self.client_key
    }

    fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }

    fn start_work_conn(&self, start: StartWorkConn) -> BoxFuture<'_, Result<WorkConn, WorkConnError>> {
        Box::pin(Control::start_work_conn(self, start))
    }

    fn user_conn_allowed<'a>(
        &'a self,
        proxy_name: &'a str,
        proxy_type: &'a str,
        remote: SocketAddr,
    ) -> BoxFuture<'a, bool> {
        Box::pin(Control::user_conn_allowed(self, proxy_name, proxy_type, remote))
    }

    fn add_proxy(&self, name: &str, cancel: CancellationToken, holds_port: bool) {
        if let Ok(mut mine) = self.proxies.lock() {
            mine.insert(name.to_string(), (cancel, holds_port));
        }
    }

    fn ports_held(&self) -> usize {
        self.proxy_count()
    }
}

fn new_run_id() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

/// Handles a Login on a fresh connection: verify, answer, then run the control session until it ends. `authed`
/// (set for the multiplexed connection it arrived on) is marked once the login is accepted, before the answer.
pub async fn login(
    shared: Arc<Shared>,
    mut conn: BoxedIo,
    mut login: Login,
    channel: Channel,
    peer: SocketAddr,
    authed: Option<tokio_util::sync::CancellationToken>,
) {
    let wire = channel.wire();
    let identity = match shared.auth.verify_login(&login.privilege_key, login.timestamp).await {
        Ok(id) => id,
        Err(e) => {
            warn!(user = %login.user, hostname = %login.hostname, error = %e, "login refused");
            if shared.guard.record_failure(peer.ip()) {
                warn!(address = %peer.ip(), window = ?crate::guard::WINDOW, "too many failed logins from this address; refusing its connections for a while");
            }
            refuse_login(&mut conn, wire, shared.cfg.error_to_client(register_control, e.to_string())).await;
            return;
        }
    };
    // Portway asks the Login plugins after the credentials are verified (frp asks before), so a plugin sees the
    // verified OIDC identity in `metas` and is not called for bad credentials.
    login.metas = plugins::identity_metas(std::mem::take(&mut login.metas), "", "");
    if shared.plugins.handles("Login") {
        let mut asked = login.clone();
        asked.metas = plugins::identity_metas(asked.metas, &identity.subject, &identity.client_id);
        let content = LoginContent { login: asked, client_address: peer.to_string() };
        match shared.plugins.login(content).await {
            Ok(c) => {
                login = c.login;
                login.metas = plugins::identity_metas(std::mem::take(&mut login.metas), "", "");
            }
            Err(e) => {
                warn!(user = %login.user, hostname = %login.hostname, error = %e, "login refused by a server plugin");
                refuse_login(&mut conn, wire, shared.cfg.error_to_client(register_control, e.to_string())).await;
                return;
            }
        }
    }
    let run_id = if login.run_id.is_empty() { new_run_id() } else { login.run_id.clone() };
    {
        let controls = shared.controls.lock().await;
        if !login.client_id.is_empty() {
            if let Some(other) = controls.values().find(|c| c.client_id == login.client_id && c.run_id != run_id) {
                let msg = format!(
                    "client_id {:?} is already online (run_id {}); give each client its own clientID",
                    login.client_id, other.run_id
                );
                drop(controls);
                warn!(error = %msg, "login refused");
                refuse_login(&mut conn, wire, shared.cfg.error_to_client(register_control, msg)).await;
                return;
            }
        }
    }
    let cancel = shared.cancel.child_token();
    let (tx, rx) = mpsc::channel(256);
    let max_pool = shared.cfg.transport.max_pool_count.max(0) as usize;
    let pool_count = (login.pool_count.max(0) as usize).min(max_pool);
    let (pool_tx, pool_rx) = mpsc::channel(pool_count + POOL_SLACK);
    let token_expires_at = Arc::new(AtomicI64::new(identity.expires_at));
    let (client_key, stats_session) = shared.stats.client_online(
        ClientLogin {
            user: login.user.clone(),
            client_id: login.client_id.clone(),
            run_id: run_id.clone(),
            hostname: login.hostname.clone(),
            version: login.version.clone(),
            os: login.os.clone(),
            arch: login.arch.clone(),
            wire_protocol: wire.as_str().into(),
            client_ip: peer.ip().to_string(),
            subject: identity.subject.clone(),
            oidc_client_id: identity.client_id.clone(),
            token_expires_at: token_expires_at.clone(),
            policy_rule: shared.cfg.portway.rule_for(&identity.subject, &identity.client_id).map(|(name, _)| name),
        },
        crate::oidc::now(),
    );
    let ctl = Arc::new(Control {
        run_id: run_id.clone(),
        client_id: login.client_id.clone(),
        token_expires_at,
        identity,
        user: login.user.clone(),
        metas: login.metas.clone(),
        client_key,
        stats_session,
        wire_protocol: wire.as_str(),
        cancel: cancel.clone(),
        tx,
        pool_tx,
        pool_rx: Mutex::new(pool_rx),
        proxies: std::sync::Mutex::new(HashMap::new()),
        shared: shared.clone(),
    });
    let previous = shared.controls.lock().await.insert(run_id.clone(), ctl.clone());
    if let Some(old) = previous {
        info!(run_id = %run_id, "client logged in again with the same run_id; replacing its previous session");
        old.cancel.cancel();
        old.close_all();
    }
    if let Some(a) = authed {
        a.cancel();
    }
    let resp = Message::LoginResp(LoginResp {
        version: portway_proto::FRP_VERSION.into(),
        run_id: run_id.clone(),
        error: String::new(),
    });
    if wire.write_msg(&mut conn, &resp).await.is_err() {
        remove(&shared, &ctl).await;
        return;
    }
    let span = tracing::info_span!("control", run_id = %run_id, user = %login.user);
    async {
        info!(%peer, hostname = %login.hostname, version = %login.version, pool_count, wire = wire.as_str(), "client logged in");
        run(ctl.clone(), conn, channel, rx, pool_count).await;
        remove(&shared, &ctl).await;
        info!("client session ended");
    }
    .instrument(span)
    .await
}

async fn remove(shared: &Arc<Shared>, ctl: &Arc<Control>) {
    ctl.cancel.cancel();
    ctl.close_all();
    shared.stats.client_offline(&ctl.client_key, ctl.stats_session, crate::oidc::now());
    let mut controls = shared.controls.lock().await;
    if controls.get(&ctl.run_id).is_some_and(|c| Arc::ptr_eq(c, ctl)) {
        controls.remove(&ctl.run_id);
    }
}

async fn run(ctl: Arc<Control>, conn: BoxedIo, channel: Channel, mut rx: mpsc::Receiver<Message>, pool_count: usize) {
    let shared = ctl.shared.clone();
    let wire = channel.wire();
    // The server writes with the server-to-client key and reads with the client-to-server one.
    let stream: BoxedIo = match channel {
        Channel::V1 => Box::new(CryptoStream::new(conn, &shared.key)),
        Channel::V2 { alg, keys } => Box::new(AeadStream::new(conn, alg, &keys.s2c, &keys.c2s)),
        // The listener refuses a v2 Login without a ClientHello before a session exists.
        Channel::V2Plain => {
            warn!("wire v2 control session without negotiated crypto; closed");
            return;
        }
    };
    let (mut rd, mut wr) = tokio::io::split(stream);
    let cancel = ctl.cancel.clone();
    let writer_cancel = cancel.clone();
    let writer = tokio::spawn(async move {
        loop {
            let m = tokio::select! {
                _ = writer_cancel.cancelled() => break,
                m = rx.recv() => match m { Some(m) => m, None => break },
            };
            if let Err(e) = wire.write_msg(&mut wr, &m).await {
                debug!(error = %e, "control channel write failed");
                break;
            }
        }
        writer_cancel.cancel();
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut wr).await;
    });
    for _ in 0..pool_count {
        let _ = ctl.tx.send(Message::ReqWorkConn(ReqWorkConn {})).await;
    }
    let hb_timeout = shared.cfg.transport.heartbeat_timeout;
    // With yamux, liveness comes from yamux keepalives (frp turns application heartbeats off).
    let hb = (hb_timeout > 0 && !shared.cfg.transport.tcp_mux).then(|| Duration::from_secs(hb_timeout as u64));
    let mut last_ping = Instant::now();
    let close_expired = shared.cfg.portway.close_expired_sessions;
    let mut expiry_check = tokio::time::interval(Duration::from_secs(1));
    let mut reader = portway_proto::wire::MsgReader::default();
    loop {
        let deadline = hb.map(|d| last_ping + d);
        let msg = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = expiry_check.tick(), if close_expired => {
                let exp = ctl.token_expires_at();
                if exp > 0 && crate::oidc::now() > exp + shared.cfg.portway.token_leeway {
                    warn!(subject = %ctl.identity.subject, "the session's token expired and was not renewed; closing it (portway.closeExpiredSessions)");
                    break;
                }
                continue;
            }
            _ = sleep_until_opt(deadline) => {
                warn!("no heartbeat from the client within {:?}; closing its session", hb.unwrap_or_default());
                break;
            }
            // Buffered and cancel safe: a message half read when another branch fires is not lost.
            m = reader.read_msg(wire, &mut rd) => m,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) if e.is_eof() => break,
            // A v2 record that failed authentication (or was oversized) surfaces as InvalidData.
            Err(codec::CodecError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                warn!(error = %e, "control channel is corrupt; closing the session");
                break;
            }
            // A client killed or a yamux session gone: the connection is lost, nothing was malformed.
            Err(codec::CodecError::Io(e)) => {
                info!(error = %e, "control connection lost; closing the session");
                break;
            }
            Err(e) => {
                warn!(error = %e, "bad message on the control channel; closing the session");
                break;
            }
        };
        match msg {
            Message::NewProxy(np) => {
                // The answer carries the name the client sent, as frp's, whatever a plugin rewrote.
                let name = np.proxy_name.clone();
                let registered = match new_proxy_plugins(&ctl, np).await {
                    Ok(np) => {
                        let session: Arc<dyn Session> = ctl.clone();
                        shared.kinds.register(&session, np).await.map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                };
                let resp = match registered {
                    Ok(remote_addr) => NewProxyResp { proxy_name: name, remote_addr, error: String::new() },
                    Err(error) => {
                        warn!(proxy = %name, %error, "proxy refused");
                        let error = shared.cfg.error_to_client(|| format!("new proxy [{name}] error"), error);
                        NewProxyResp { proxy_name: name, remote_addr: String::new(), error }
                    }
                };
                if !ctl.send(Message::NewProxyResp(resp)).await {
                    break;
                }
            }
            Message::CloseProxy(c) => ctl.close_proxy(&c.proxy_name),
            Message::Ping(p) => {
                let checked = match ping_plugins(&ctl, p).await {
                    Ok(p) => shared
                        .auth
                        .verify_ping(&p.privilege_key, p.timestamp, &ctl.identity)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let error = match checked {
                    Ok(exp) => {
                        ctl.renewed(exp);
                        last_ping = Instant::now();
                        String::new()
                    }
                    Err(error) => {
                        warn!(%error, "heartbeat refused");
                        error
                    }
                };
                if !ctl.send(Message::Pong(Pong { error })).await {
                    break;
                }
            }
            Message::NatHoleVisitor(m) => {
                shared.nathole.handle_visitor(&shared.hub, &shared.kinds.secrets, ctl.nathole_peer(), &m).await
            }
            Message::NatHoleClient(m) => shared.nathole.handle_client(&shared.kinds.secrets, ctl.nathole_peer(), &m),
            Message::NatHoleReport(m) => crate::nathole::handle_report(&m),
            other => debug!(message = other.name(), "ignored message on the control channel"),
        }
    }
    cancel.cancel();
    let _ = writer.await;
}

/// The NewProxy plugins' verdict: the message to register (rewritten or not), or the refusal.
async fn new_proxy_plugins(
    ctl: &Control,
    np: portway_proto::msg::NewProxy,
) -> Result<portway_proto::msg::NewProxy, plugins::PluginError> {
    let p = &ctl.shared.plugins;
    if !p.handles("NewProxy") {
        return Ok(np);
    }
    Ok(p.new_proxy(NewProxyContent { user: ctl.user_info(), new_proxy: np }).await?.new_proxy)
}

/// The Ping plugins' verdict: the heartbeat to verify, or the refusal.
async fn ping_plugins(
    ctl: &Control,
    ping: portway_proto::msg::Ping,
) -> Result<portway_proto::msg::Ping, plugins::PluginError> {
    let p = &ctl.shared.plugins;
    if !p.handles("Ping") {
        return Ok(ping);
    }
    Ok(p.ping(PingContent { user: ctl.user_info(), ping }).await?.ping)
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
