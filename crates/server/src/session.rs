//! The one interface between a control session and the proxy kinds below it ([`crate::proxy`]).
//!
//! A proxy kind (tcp/udp ports, tcp groups, virtual hosts, secret proxies) sees its client only as a
//! [`Session`]: who it is, a way to get a work connection, and a place to record the proxy it holds. What every
//! proxy of the server shares (the configuration, the proxy names, the task tracker, the statistics) is the
//! [`Hub`]. Neither knows the control channel, the listeners or the login: [`crate::control`] implements
//! [`Session`] and [`crate::service`] sits above both, so the modules form no cycle.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portway_proto::crypto::Key;
use portway_proto::limit::{parse_bandwidth, Bucket, LimitedIo};
use portway_proto::msg::{NewProxy, StartWorkConn};
use portway_proto::relay::{relay_tcp_counted, until_cancelled, wrap_work_conn};
use portway_proto::transport::BoxedIo;
use portway_proto::wire::Wire;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::auth::Identity;
use crate::config::ServerConfig;
use crate::stats::{LiveCounters, Registry};

/// What every proxy of one server shares.
pub struct Hub {
    /// The validated configuration.
    pub cfg: ServerConfig,
    /// The work connections' encryption key (`useEncryption`, derived from `auth.token`).
    pub key: Key,
    /// Registered proxy names → run_id of their owner.
    pub names: Mutex<HashMap<String, String>>,
    /// Every task the server spawns.
    pub tracker: TaskTracker,
    /// Cancelled on shutdown.
    pub cancel: CancellationToken,
    /// Clients, proxies and traffic, for the dashboard API and `/metrics`.
    pub stats: Arc<Registry>,
}

/// A boxed future, as [`Session`]'s async methods return (the trait is used as `dyn Session`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A logged-in client as its proxies see it.
pub trait Session: Send + Sync + 'static {
    /// The server's shared state.
    fn hub(&self) -> &Arc<Hub>;
    /// The session id frp calls run_id.
    fn run_id(&self) -> &str;
    /// frp's `user` of the client.
    fn user(&self) -> &str;
    /// Who the credentials say the client is.
    fn identity(&self) -> &Identity;
    /// The client's key in the statistics registry.
    fn client_key(&self) -> &str;
    /// Cancelled when the session ends; every proxy's token is a child of it.
    fn cancel(&self) -> &CancellationToken;
    /// A work connection with `start` (StartWorkConn) already written on it.
    fn start_work_conn(&self, start: StartWorkConn) -> BoxFuture<'_, Result<WorkConn, WorkConnError>>;
    /// Whether the NewUserConn server plugins let a user connection from `remote` reach `proxy_name`.
    fn user_conn_allowed<'a>(
        &'a self,
        proxy_name: &'a str,
        proxy_type: &'a str,
        remote: SocketAddr,
    ) -> BoxFuture<'a, bool>;
    /// Records a proxy the session now holds; `cancel` stops it, `holds_port` counts it against
    /// `maxPortsPerClient`.
    fn add_proxy(&self, name: &str, cancel: CancellationToken, holds_port: bool);
    /// Public ports the session holds.
    fn ports_held(&self) -> usize;
}

/// Why a work connection could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum WorkConnError {
    /// The client did not answer ReqWorkConn in time.
    #[error("the client sent no work connection within {0:?}")]
    Timeout(Duration),
    /// Every pooled connection tried was dead.
    #[error("every work connection tried was dead")]
    AllDead,
    /// The client went away.
    #[error("the client's control connection is closed")]
    Closed,
}

/// A work connection, with the wire protocol it opened with.
pub struct WorkConn {
    /// The stream; after StartWorkConn it carries the proxy's bytes.
    pub io: BoxedIo,
    /// v1 or v2: the framing of StartWorkConn and, for udp proxies, of the UDPPacket messages after it.
    pub wire: Wire,
}

/// Why a proxy was refused. The text goes back to the client in NewProxyResp.error.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Not a type this server serves.
    #[error("proxy type {0:?} is not supported by this Portway server (supported: tcp, udp, http, https, tcpmux, stcp, sudp, xtcp)")]
    UnsupportedType(String),
    /// Name empty.
    #[error("proxy name is empty")]
    EmptyName,
    /// Name taken.
    #[error("proxy [{0}] already exists on this server: choose another name (or set `user` in frpc.toml)")]
    NameTaken(String),
    /// allowPorts.
    #[error("remote port {0} is not allowed by the server's allowPorts")]
    PortNotAllowed(u16),
    /// Out of range.
    #[error("remote port {0} is out of range 0..=65535")]
    PortOutOfRange(i64),
    /// maxPortsPerClient.
    #[error("this client already holds {0} ports, the server's maxPortsPerClient")]
    TooManyPorts(i64),
    /// bind failed.
    #[error(
        "remote port {port} cannot be opened on the server: {source} (port already used? choose another remotePort)"
    )]
    Bind {
        /// The port.
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// A Portway per-client rule refused it.
    #[error("refused by policy: {0}")]
    Policy(String),
    /// No free port for remotePort = 0.
    #[error("no free port is left in the server's allowPorts for remotePort = 0")]
    NoFreePort,
    /// A proxy kind's own refusal (a tcp group's, the virtual hosts'), in frp's words.
    #[error(transparent)]
    Kind(Box<dyn std::error::Error + Send + Sync>),
}

/// Registers `name` as the session's in the server's proxy names, unless another proxy holds it.
pub fn claim_name(s: &dyn Session, name: &str) -> Result<(), ProxyError> {
    let mut all = s.hub().names.lock().map_err(|_| ProxyError::NameTaken(name.to_string()))?;
    if all.contains_key(name) {
        return Err(ProxyError::NameTaken(name.to_string()));
    }
    all.insert(name.to_string(), s.run_id().to_string());
    Ok(())
}

/// Frees `name` if the session holds it.
pub fn release_name(s: &dyn Session, name: &str) {
    if let Ok(mut all) = s.hub().names.lock() {
        if all.get(name).is_some_and(|owner| owner == s.run_id()) {
            all.remove(name);
        }
    }
}

/// The `allowProxyNames` check of the client's `[portway]` rule, if it has one.
pub fn check_name_policy(s: &dyn Session, name: &str) -> Result<(), ProxyError> {
    let cfg = &s.hub().cfg;
    let id = s.identity();
    if let Some((rule_name, rule)) = cfg.portway.rule_for(&id.subject, &id.client_id) {
        if !rule.name_allowed(name) {
            return Err(ProxyError::Policy(format!(
                "proxy name {name:?} is not in allowProxyNames of {rule_name} (client {:?})",
                who(s)
            )));
        }
    }
    Ok(())
}

/// The `allowProxyTypes` check of the client's `[portway]` rule, if it has one.
pub fn check_type_policy(s: &dyn Session, np: &NewProxy) -> Result<(), ProxyError> {
    let id = s.identity();
    if let Some((rule_name, rule)) = s.hub().cfg.portway.rule_for(&id.subject, &id.client_id) {
        if !rule.type_allowed(&np.proxy_type) {
            return Err(ProxyError::Policy(format!(
                "proxy type {:?} is not in allowProxyTypes of {rule_name} (client {:?})",
                np.proxy_type,
                who(s)
            )));
        }
    }
    Ok(())
}

/// How a policy message names the client: its OIDC client ID, else its subject.
pub fn who(s: &dyn Session) -> String {
    let id = s.identity();
    if id.client_id.is_empty() {
        id.subject.clone()
    } else {
        id.client_id.clone()
    }
}

/// The bucket the server applies to a proxy's connections: its `bandwidthLimit` when `bandwidthLimitMode` is
/// `server` (a value frps cannot read means no limit there too).
pub fn server_limit(np: &NewProxy) -> Option<Arc<Bucket>> {
    if np.bandwidth_limit_mode != "server" {
        return None;
    }
    parse_bandwidth(&np.bandwidth_limit).ok().flatten().map(Bucket::new)
}

/// `io` behind `limit`, when there is one.
pub fn limited(io: BoxedIo, limit: Option<&Arc<Bucket>>) -> BoxedIo {
    match limit {
        Some(b) => Box::new(LimitedIo::new(io, b.clone())),
        None => io,
    }
}

/// Serves one user connection that arrived on a public TCP port of `np`: asks the NewUserConn plugins, gets a
/// work connection, relays until either side closes or `cancel` fires. `limit`: the proxy's server-side
/// bandwidth bucket. `local`: the connection's own address when the listener's says it (bound to one IP), else it
/// is asked of the socket.
pub async fn serve_user_conn(
    session: Arc<dyn Session>,
    (np, limit): (Arc<NewProxy>, Option<Arc<Bucket>>),
    live: Arc<LiveCounters>,
    mut user: TcpStream,
    (peer, local): (SocketAddr, Option<SocketAddr>),
    cancel: CancellationToken,
) {
    if !session.user_conn_allowed(&np.proxy_name, &np.proxy_type, peer).await {
        return;
    }
    let dst = local.or_else(|| user.local_addr().ok());
    let start = StartWorkConn {
        proxy_name: np.proxy_name.clone(),
        src_addr: peer.ip().to_string(),
        dst_addr: dst.map(|d| d.ip().to_string()).unwrap_or_default(),
        src_port: peer.port(),
        dst_port: dst.map(|d| d.port()).unwrap_or(0),
        error: String::new(),
    };
    let work = match session.start_work_conn(start).await {
        Ok(w) => w.io,
        Err(e) => {
            warn!(error = %e, "no work connection for a visitor; closing it");
            return;
        }
    };
    let key = &session.hub().key;
    let mut work = limited(wrap_work_conn(work, np.use_encryption.then_some(key), np.use_compression), limit.as_ref());
    let _open = live.open();
    match until_cancelled(&cancel, relay_tcp_counted(&mut user, &mut work, Some((&live.bytes_in, &live.bytes_out))))
        .await
    {
        None => {}
        Some(Ok((up, down))) => debug!(bytes_in = up, bytes_out = down, "visitor connection closed"),
        Some(Err(e)) => debug!(error = %e, "visitor connection ended with an error"),
    }
}
