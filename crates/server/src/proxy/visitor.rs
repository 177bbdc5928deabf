//! Secret proxies (`stcp`, `sudp`, `xtcp`) and the visitor connections that reach them (frp's `server/visitor`).
//!
//! A secret proxy has no public port: it is an entry here, keyed by its wire name (`user.name`). A visitor
//! client opens a new logical connection to the server (a TCP connection, or a yamux stream of its session) and
//! sends NewVisitorConn; the server checks the proxy exists, the `sign_key` (md5 of the proxy's `secretKey` and
//! the timestamp) and `allowUsers`, answers NewVisitorConnResp, and then joins the visitor connection to a work
//! connection of the provider exactly as a user connection to a tcp proxy. Both stcp and sudp are joined as
//! bytes: for sudp, both ends already speak UDPPacket messages.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use portway_proto::crypto::Key;
use portway_proto::msg::{Message, NewProxy, NewVisitorConn, NewVisitorConnResp, StartWorkConn};
use portway_proto::relay::{relay_counted, until_cancelled, wrap_work_conn};
use portway_proto::transport::BoxedIo;
use portway_proto::wire::Wire;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::session::{check_name_policy, claim_name, Hub, ProxyError, Session};
use crate::stats::LiveCounters;

/// One registered secret proxy.
struct Secret {
    /// `stcp` or `sudp`.
    kind: String,
    /// The proxy's `secretKey`. Never logged.
    sk: String,
    /// Users whose visitors may connect (`*`: anyone); frp's default is the provider's own user.
    allow_users: Vec<String>,
    use_encryption: bool,
    use_compression: bool,
    owner: Weak<dyn Session>,
    live: Arc<LiveCounters>,
    cancel: CancellationToken,
    /// Server-side bandwidth bucket (`bandwidthLimitMode = "server"`).
    limit: Option<Arc<portway_proto::limit::Bucket>>,
}

/// Secret proxies by wire name, and the address the `bindPort` listener got (StartWorkConn's destination).
#[derive(Default)]
pub struct Secrets(std::sync::Mutex<HashMap<String, Arc<Secret>>>, std::sync::OnceLock<SocketAddr>);

impl Secrets {
    /// Records the address `bindAddr:bindPort` was bound to.
    pub fn set_bound(&self, addr: SocketAddr) {
        let _ = self.1.set(addr);
    }

    fn get(&self, name: &str) -> Option<Arc<Secret>> {
        let m = self.0.lock().ok()?;
        m.get(name).filter(|s| !s.cancel.is_cancelled()).cloned()
    }
}

/// Whether `kind` is a secret proxy type this server serves (xtcp's visitors go through [`crate::nathole`]).
pub fn is_secret(kind: &str) -> bool {
    matches!(kind, "stcp" | "sudp" | "xtcp")
}

/// What the hole punching coordination needs of a registered xtcp proxy.
pub struct XtcpTarget {
    /// Its `secretKey`. Never logged.
    pub sk: String,
    /// Its `allowUsers` (`*`: anyone).
    pub allow_users: Vec<String>,
    /// The provider's session.
    pub owner: Weak<dyn Session>,
}

/// The registered xtcp proxy `name`.
pub fn xtcp_target(secrets: &Secrets, name: &str) -> Option<XtcpTarget> {
    let s = secrets.get(name).filter(|s| s.kind == "xtcp")?;
    Some(XtcpTarget { sk: s.sk.clone(), allow_users: s.allow_users.clone(), owner: s.owner.clone() })
}

/// Registers an stcp/sudp proxy: no port, a route for visitors. The answer's `remote_addr` is empty, as frps's.
pub fn register(ctl: &Arc<dyn Session>, secrets: &Arc<Secrets>, np: NewProxy) -> Result<String, ProxyError> {
    let hub = ctl.hub().clone();
    if np.proxy_name.is_empty() {
        return Err(ProxyError::EmptyName);
    }
    check_name_policy(ctl.as_ref(), &np.proxy_name)?;
    let name = np.proxy_name.clone();
    claim_name(ctl.as_ref(), &name)?;
    let cancel = ctl.cancel().child_token();
    ctl.add_proxy(&name, cancel.clone(), false);
    // The dashboard lists the proxy; its secret stays here.
    let shown = NewProxy { sk: String::new(), ..np.clone() };
    let live = hub.stats.proxy_started(ctl.client_key(), shown, 0, crate::oidc::now());
    let allow_users = if np.allow_users.is_empty() { vec![ctl.user().to_string()] } else { np.allow_users.clone() };
    let limit = crate::session::server_limit(&np);
    let secret = Arc::new(Secret {
        kind: np.proxy_type.clone(),
        sk: np.sk,
        allow_users,
        use_encryption: np.use_encryption,
        use_compression: np.use_compression,
        owner: Arc::downgrade(ctl),
        limit,
        live,
        cancel: cancel.clone(),
    });
    if let Ok(mut m) = secrets.0.lock() {
        m.insert(name.clone(), secret.clone());
    }
    // The route goes with the proxy: closed, replaced by a reload, or its client gone.
    let s2 = secrets.clone();
    hub.tracker.spawn(async move {
        cancel.cancelled().await;
        if let Ok(mut m) = s2.0.lock() {
            if m.get(&name).is_some_and(|s| Arc::ptr_eq(s, &secret)) {
                m.remove(&name);
            }
        }
    });
    info!(proxy = %np.proxy_name, kind = %np.proxy_type, "secret proxy started (reachable by visitors only)");
    Ok(String::new())
}

/// Why a visitor connection was refused; the text goes back in NewVisitorConnResp.error (frp's wording).
#[derive(Debug, thiserror::Error)]
pub enum VisitorError {
    /// The visitor's run_id names no logged-in client.
    #[error("no client control found for run id [{0}]")]
    UnknownRunId(String),
    /// No secret proxy of that name.
    #[error("custom listener for [{0}] doesn't exist")]
    NoSuchProxy(String),
    /// sign_key does not match the proxy's secretKey.
    #[error("visitor connection of [{0}] auth failed")]
    AuthFailed(String),
    /// allowUsers.
    #[error("visitor connection of [{0}] user [{1}] not allowed")]
    UserNotAllowed(String, String),
    /// Portway's per-client rule (`allowVisitors`) does not let the visitor's client reach this proxy.
    #[error("visitor connection of [{0}] refused by policy: not in allowVisitors of {1} (client {2:?})")]
    Policy(String, String, String),
}

/// The client a visitor connection came from, as the server knows it by the visitor's run_id.
pub struct VisitorClient {
    /// frp's `user` of that client.
    pub user: String,
    /// Who its credentials say it is.
    pub identity: crate::auth::Identity,
}

/// Serves a logical connection that opened with NewVisitorConn. `client` is the visitor's client as the server
/// knows it by the visitor's run_id (`None`: no such client). `authed` (the multiplexed connection it arrived on)
/// is marked once the visitor is accepted.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    hub: Arc<Hub>,
    secrets: &Secrets,
    mut conn: BoxedIo,
    wire: Wire,
    v: NewVisitorConn,
    client: Option<VisitorClient>,
    peer: SocketAddr,
    authed: Option<CancellationToken>,
) {
    let name = v.proxy_name.clone();
    let checked = check(&hub.cfg, secrets, &v, client);
    let error = match &checked {
        Ok(_) => String::new(),
        Err(e) => hub.cfg.error_to_client(|| "register visitor conn error".into(), e.to_string()),
    };
    let resp = Message::NewVisitorConnResp(NewVisitorConnResp { proxy_name: name.clone(), error });
    let (secret, user) = match checked {
        Ok(s) => s,
        Err(e) => {
            warn!(proxy = %name, error = %e, "visitor connection refused");
            let _ = wire.write_msg(&mut conn, &resp).await;
            return;
        }
    };
    if wire.write_msg(&mut conn, &resp).await.is_err() {
        return;
    }
    if let Some(a) = authed {
        a.cancel();
    }
    let Some(owner) = secret.owner.upgrade() else { return };
    let span = tracing::info_span!("visitor", proxy = %name, kind = %secret.kind, user = %user);
    join(hub, secrets.1.get().copied(), owner, secret, (conn, wire), v, peer).instrument(span).await;
}

/// frp's checks, in frp's order: the visitor's client, the proxy, the key, the user; then Portway's
/// `allowVisitors` of the visitor's client.
fn check(
    cfg: &crate::config::ServerConfig,
    secrets: &Secrets,
    v: &NewVisitorConn,
    client: Option<VisitorClient>,
) -> Result<(Arc<Secret>, String), VisitorError> {
    // frp: a visitor without run_id (clients before v0.50) has the empty user (and here no identity).
    let (user, identity) = if v.run_id.is_empty() {
        (String::new(), crate::auth::Identity::default())
    } else {
        let c = client.ok_or_else(|| VisitorError::UnknownRunId(v.run_id.clone()))?;
        (c.user, c.identity)
    };
    // An xtcp proxy takes no visitor connections (as frps: it is not among the visitor listeners).
    let secret = secrets
        .get(&v.proxy_name)
        .filter(|s| s.kind != "xtcp")
        .ok_or_else(|| VisitorError::NoSuchProxy(v.proxy_name.clone()))?;
    if !portway_proto::auth::verify_privilege_key(&secret.sk, v.timestamp, &v.sign_key) {
        return Err(VisitorError::AuthFailed(v.proxy_name.clone()));
    }
    if !secret.allow_users.iter().any(|u| u == "*" || *u == user) {
        return Err(VisitorError::UserNotAllowed(v.proxy_name.clone(), user));
    }
    if let Some((rule_name, rule)) = cfg.portway.rule_for(&identity.subject, &identity.client_id) {
        if !rule.visitor_allowed(&v.proxy_name) {
            let who = if identity.client_id.is_empty() { identity.subject } else { identity.client_id };
            return Err(VisitorError::Policy(v.proxy_name.clone(), rule_name, who));
        }
    }
    Ok((secret, user))
}

/// Joins an accepted visitor connection to one of the provider's work connections.
async fn join(
    hub: Arc<Hub>,
    bound: Option<SocketAddr>,
    owner: Arc<dyn Session>,
    secret: Arc<Secret>,
    (conn, visitor_wire): (BoxedIo, Wire),
    v: NewVisitorConn,
    peer: SocketAddr,
) {
    // The visitor's layers use the proxy's secretKey (frp's visitor path); the work connection's use the token.
    let sk_key = v.use_encryption.then(|| Key::derive(secret.sk.as_bytes()));
    let mut visitor = wrap_work_conn(conn, sk_key.as_ref(), v.use_compression);
    let start = StartWorkConn {
        proxy_name: v.proxy_name.clone(),
        src_addr: peer.ip().to_string(),
        dst_addr: bound.map(|a| a.ip().to_string()).unwrap_or_else(|| hub.cfg.bind_addr.clone()),
        src_port: peer.port(),
        dst_port: bound.map(|a| a.port()).unwrap_or(hub.cfg.bind_port),
        error: String::new(),
    };
    let work = tokio::select! {
        _ = secret.cancel.cancelled() => return,
        w = owner.start_work_conn(start) => w,
    };
    let (work, work_wire) = match work {
        Ok(w) => (w.io, w.wire),
        Err(e) => {
            warn!(error = %e, "no work connection from the provider for a visitor; closing it");
            return;
        }
    };
    let work = wrap_work_conn(work, secret.use_encryption.then_some(&hub.key), secret.use_compression);
    let mut work = crate::session::limited(work, secret.limit.as_ref());
    let _open = secret.live.open();
    debug!(%peer, "visitor joined to a work connection");
    if secret.kind == "sudp" && visitor_wire != work_wire {
        // The datagrams are framed in each side's wire protocol: re-frame them (frps would pass the bytes on).
        tokio::select! {
            _ = secret.cancel.cancelled() => {}
            _ = reframe(visitor, visitor_wire, work, work_wire) => debug!("visitor connection closed"),
        }
        return;
    }
    let live = (&secret.live.bytes_in, &secret.live.bytes_out);
    match until_cancelled(&secret.cancel, relay_counted(&mut visitor, &mut work, live)).await {
        None => {}
        Some(Ok((up, down))) => debug!(bytes_in = up, bytes_out = down, "visitor connection closed"),
        Some(Err(e)) => debug!(error = %e, "visitor connection ended with an error"),
    }
}

/// Carries the messages of an sudp visitor between a v1 and a v2 side until either ends.
async fn reframe(a: BoxedIo, wire_a: Wire, b: BoxedIo, wire_b: Wire) {
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let up = async {
        while let Ok(m) = wire_a.read_msg(&mut ar).await {
            if wire_b.write_msg(&mut bw, &m).await.is_err() {
                break;
            }
        }
    };
    let down = async {
        while let Ok(m) = wire_b.read_msg(&mut br).await {
            if wire_a.write_msg(&mut aw, &m).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
