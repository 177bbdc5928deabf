//! Virtual hosts: the shared HTTP, HTTPS (SNI) and tcpmux (HTTP CONNECT) listeners, and the routes from names to
//! proxies that `http`, `https` and `tcpmux` proxies register.
//!
//! - [`routes`]: the routing table and frp's lookup order (pure).
//! - [`sni`]: the server name of a TLS ClientHello (pure).
//! - [`connect`]: an HTTP CONNECT request head (pure).
//! - `http`, `https`, `tcpmux`: the three listeners.

pub mod connect;
mod http;
mod https;
pub mod routes;
pub mod sni;
mod tcpmux;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};

use portway_proto::msg::{NewProxy, StartWorkConn};
use portway_proto::relay::wrap_work_conn;
use portway_proto::transport::BoxedIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, Instrument};

use crate::session::{check_name_policy, claim_name, release_name, who, Hub, ProxyError, Session, WorkConnError};
use crate::stats::{CountedIo, LiveCounters};
use routes::{public_addr, under_subdomain_host, Routes};

/// frp's 404 page, byte for byte (what frps v0.70 serves for an unknown host).
pub const NOT_FOUND_PAGE: &str = "<!DOCTYPE html>
<html>
<head>
<title>Not Found</title>
<style>
    body {
        width: 35em;
        margin: 0 auto;
        font-family: Tahoma, Verdana, Arial, sans-serif;
    }
</style>
</head>
<body>
<h1>The page you requested was not found.</h1>
<p>Sorry, the page you are looking for is currently unavailable.<br/>
Please try again later.</p>
<p>The server is powered by <a href=\"https://github.com/fatedier/frp\">frp</a>.</p>
<p><em>Faithfully yours, frp.</em></p>
</body>
</html>
";

/// Which listener a route belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `vhostHTTPPort`.
    Http,
    /// `vhostHTTPSPort`.
    Https,
    /// `tcpmuxHTTPConnectPort`.
    TcpMux,
}

impl Kind {
    /// The kind for a proxy type, if it is a virtual-host one.
    pub fn of(proxy_type: &str) -> Option<Kind> {
        match proxy_type {
            "http" => Some(Kind::Http),
            "https" => Some(Kind::Https),
            "tcpmux" => Some(Kind::TcpMux),
            _ => None,
        }
    }
}

/// One registered proxy as the listeners see it.
pub struct Route {
    /// The client serving it.
    pub ctl: Arc<dyn Session>,
    /// Its NewProxy (headers, credentials, layers).
    pub np: NewProxy,
    /// Cancelled when the proxy closes.
    pub cancel: CancellationToken,
    /// The dashboard's counters for this proxy (set once the registry listed it).
    pub live: OnceLock<Arc<LiveCounters>>,
    /// Its server-side bandwidth bucket (`bandwidthLimitMode = "server"`).
    pub limit: Option<Arc<portway_proto::limit::Bucket>>,
}

impl Route {
    /// frp's check: with `httpUser` or `httpPassword` set, both must match.
    pub fn auth_ok(&self, user: &str, password: &str) -> bool {
        (self.np.http_user.is_empty() && self.np.http_pwd.is_empty())
            || (self.np.http_user == user && self.np.http_pwd == password)
    }

    /// A work connection for one visitor, StartWorkConn written, wrapped in the proxy's layers.
    pub async fn work_conn(&self, src: SocketAddr, dst: Option<SocketAddr>) -> Result<BoxedIo, WorkConnError> {
        let start = StartWorkConn {
            proxy_name: self.np.proxy_name.clone(),
            src_addr: src.ip().to_string(),
            src_port: src.port(),
            dst_addr: dst.map(|d| d.ip().to_string()).unwrap_or_default(),
            dst_port: dst.map(|d| d.port()).unwrap_or(0),
            error: String::new(),
        };
        let work = self.ctl.start_work_conn(start).await?.io;
        let key = &self.ctl.hub().key;
        let io = wrap_work_conn(work, self.np.use_encryption.then_some(key), self.np.use_compression);
        let io = crate::session::limited(io, self.limit.as_ref());
        Ok(match self.live.get() {
            Some(live) => Box::new(CountedIo::new(io, live)),
            None => io,
        })
    }
}

/// The proxies serving one route: one, or the members of a `loadBalancer.group` taken in turn (frp's round robin).
pub struct Group {
    name: String,
    key: String,
    members: RwLock<Vec<Arc<Route>>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Group {
    fn new(route: Arc<Route>) -> Group {
        Group {
            name: route.np.group.clone(),
            key: route.np.group_key.clone(),
            members: RwLock::new(vec![route]),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The next member, round robin.
    pub fn pick(&self) -> Option<Arc<Route>> {
        let m = self.members.read().unwrap_or_else(|e| e.into_inner());
        if m.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % m.len();
        Some(m[i].clone())
    }

    /// Adds `route` to this group, with frp's checks.
    fn join(&self, route: &Arc<Route>) -> Result<(), VhostError> {
        if self.name.is_empty() || route.np.group != self.name {
            return Err(routes::Conflict.into());
        }
        if route.np.group_key != self.key {
            return Err(VhostError::GroupAuth);
        }
        let mut m = self.members.write().unwrap_or_else(|e| e.into_inner());
        if m.iter().any(|r| r.np.proxy_name == route.np.proxy_name) {
            return Err(VhostError::GroupRepeated);
        }
        m.push(route.clone());
        Ok(())
    }

    /// Removes `route`; true when the group is left empty.
    fn leave(&self, route: &Arc<Route>) -> bool {
        let mut m = self.members.write().unwrap_or_else(|e| e.into_inner());
        m.retain(|r| !Arc::ptr_eq(r, route));
        m.is_empty()
    }
}

type Table = RwLock<Routes<Arc<Group>>>;

/// The routing tables of the three listeners, and the server's shared state they serve with.
pub struct Vhost {
    /// The server's shared state.
    pub hub: Arc<Hub>,
    http: Table,
    https: Table,
    tcpmux: Table,
}

impl Vhost {
    /// Empty tables.
    pub fn new(hub: Arc<Hub>) -> Vhost {
        Vhost { hub, http: Table::default(), https: Table::default(), tcpmux: Table::default() }
    }

    fn table(&self, kind: Kind) -> &Table {
        match kind {
            Kind::Http => &self.http,
            Kind::Https => &self.https,
            Kind::TcpMux => &self.tcpmux,
        }
    }

    /// The route for a (canonical) host, path and HTTP user.
    pub fn lookup(&self, kind: Kind, host: &str, path: &str, user: &str) -> Option<Arc<Route>> {
        let t = self.table(kind).read().unwrap_or_else(|e| e.into_inner());
        t.lookup(host, path, user).and_then(|g| g.pick())
    }

    fn remove(&self, kind: Kind, route: &Arc<Route>, keys: &[(String, String, String)]) {
        let mut t = self.table(kind).write().unwrap_or_else(|e| e.into_inner());
        remove_locked(&mut t, route, keys);
    }
}

fn remove_locked(t: &mut Routes<Arc<Group>>, route: &Arc<Route>, keys: &[(String, String, String)]) {
    for (d, l, u) in keys {
        if t.get(d, l, u).is_some_and(|g| g.leave(route)) {
            t.remove(d, l, u);
        }
    }
}

/// Why a virtual-host proxy was refused; the texts are frp's where frp has one.
#[derive(Debug, thiserror::Error)]
pub enum VhostError {
    /// The listener for this type is off.
    #[error("type [{0}] not supported when vhost {0} port is not set")]
    PortNotSet(&'static str),
    /// tcpmux without its port.
    #[error("tcpmux with multiplexer httpconnect not supported because this feature is not enabled in server")]
    TcpMuxNotEnabled,
    /// A multiplexer other than httpconnect.
    #[error("tcpmux multiplexer [{0}] is not supported: use multiplexer = \"httpconnect\"")]
    Multiplexer(String),
    /// customDomains under subDomainHost.
    #[error("custom domain [{0}] should not belong to subdomain host [{1}]")]
    UnderSubdomainHost(String, String),
    /// subdomain without subDomainHost.
    #[error("subdomain is not supported because this feature is not enabled in server")]
    SubdomainNotEnabled,
    /// A dotted or starred subdomain.
    #[error("'.' and '*' are not supported in subdomain")]
    BadSubdomain,
    /// Nothing to route by.
    #[error("subdomain and custom domains should not be both empty")]
    NoDomain,
    /// A header in requestHeaders.set / responseHeaders.set HTTP cannot carry.
    #[error("{0} header {1:?} is not a valid HTTP header name and value")]
    BadHeader(&'static str, String),
    /// Domain + location (+ user) taken.
    #[error(transparent)]
    Conflict(#[from] routes::Conflict),
    /// `loadBalancer.groupKey` differs from the group's.
    #[error("group auth failed")]
    GroupAuth,
    /// The same proxy twice in a group.
    #[error("group proxy repeated")]
    GroupRepeated,
}

fn port_of(cfg: &crate::config::ServerConfig, kind: Kind) -> u16 {
    match kind {
        Kind::Http => cfg.vhost_http_port,
        Kind::Https => cfg.vhost_https_port,
        Kind::TcpMux => cfg.tcpmux_http_connect_port,
    }
}

/// Checks a virtual-host NewProxy against the server's settings, without registering it.
pub fn check(cfg: &crate::config::ServerConfig, np: &NewProxy) -> Result<Kind, VhostError> {
    let kind = Kind::of(&np.proxy_type).ok_or(VhostError::NoDomain)?;
    match kind {
        Kind::Http if cfg.vhost_http_port == 0 => return Err(VhostError::PortNotSet("http")),
        Kind::Https if cfg.vhost_https_port == 0 => return Err(VhostError::PortNotSet("https")),
        Kind::TcpMux => {
            if !np.multiplexer.is_empty() && np.multiplexer != "httpconnect" {
                return Err(VhostError::Multiplexer(np.multiplexer.clone()));
            }
            if cfg.tcpmux_http_connect_port == 0 {
                return Err(VhostError::TcpMuxNotEnabled);
            }
        }
        _ => {}
    }
    for d in &np.custom_domains {
        if under_subdomain_host(d, &cfg.sub_domain_host) {
            return Err(VhostError::UnderSubdomainHost(d.clone(), cfg.sub_domain_host.clone()));
        }
    }
    if !np.subdomain.is_empty() {
        if cfg.sub_domain_host.is_empty() {
            return Err(VhostError::SubdomainNotEnabled);
        }
        if np.subdomain.contains('.') || np.subdomain.contains('*') {
            return Err(VhostError::BadSubdomain);
        }
    }
    if domains(cfg, np).is_empty() {
        return Err(VhostError::NoDomain);
    }
    for (what, map) in [("requestHeaders.set", &np.headers), ("responseHeaders.set", &np.response_headers)] {
        for (k, v) in map {
            let ok = hyper::header::HeaderName::from_bytes(k.as_bytes()).is_ok()
                && hyper::header::HeaderValue::from_str(v).is_ok();
            if !ok {
                return Err(VhostError::BadHeader(what, k.clone()));
            }
        }
    }
    Ok(kind)
}

fn domains(cfg: &crate::config::ServerConfig, np: &NewProxy) -> Vec<String> {
    let mut out: Vec<String> = np.custom_domains.iter().filter(|d| !d.is_empty()).cloned().collect();
    if !np.subdomain.is_empty() {
        out.push(format!("{}.{}", np.subdomain, cfg.sub_domain_host));
    }
    out
}

impl From<VhostError> for ProxyError {
    fn from(e: VhostError) -> ProxyError {
        ProxyError::Kind(Box::new(e))
    }
}

/// Registers an http, https or tcpmux proxy: checks the client's policy and frp's rules, then adds its routes on
/// the shared listeners. Returns frp's `remote_addr` (`domain:port` per route, comma-joined).
pub fn register(ctl: &Arc<dyn Session>, vhost: &Arc<Vhost>, np: NewProxy) -> Result<String, ProxyError> {
    if np.proxy_name.is_empty() {
        return Err(ProxyError::EmptyName);
    }
    check_name_policy(ctl.as_ref(), &np.proxy_name)?;
    let id = ctl.identity();
    if let Some((rule_name, rule)) = vhost.hub.cfg.portway.rule_for(&id.subject, &id.client_id) {
        if let Some(d) = np.custom_domains.iter().find(|d| !rule.domain_allowed(d)) {
            return Err(ProxyError::Policy(format!(
                "custom domain {d:?} is not in allowDomains of {rule_name} (client {:?})",
                who(ctl.as_ref())
            )));
        }
        if !np.subdomain.is_empty() && !rule.subdomain_allowed(&np.subdomain) {
            return Err(ProxyError::Policy(format!(
                "subdomain {:?} is not in allowSubdomains of {rule_name} (client {:?})",
                np.subdomain,
                who(ctl.as_ref())
            )));
        }
    }
    check(&vhost.hub.cfg, &np)?;
    let name = np.proxy_name.clone();
    claim_name(ctl.as_ref(), &name)?;
    let cancel = ctl.cancel().child_token();
    let kind = np.proxy_type.clone();
    let conf = np.clone();
    match add_routes(ctl, vhost, np, cancel.clone()) {
        Ok((addr, route)) => {
            ctl.add_proxy(&name, cancel, false);
            // Listed by the dashboard API; its work connections count their bytes into it.
            let _ = route.live.set(vhost.hub.stats.proxy_started(ctl.client_key(), conf, 0, crate::oidc::now()));
            info!(proxy = %name, %kind, remote_addr = %addr, "proxy started");
            Ok(addr)
        }
        Err(e) => {
            release_name(ctl.as_ref(), &name);
            Err(e.into())
        }
    }
}

/// Adds the routes of a checked virtual-host proxy; they are removed when `cancel` fires. Returns the public
/// addresses and the route (whose `live` counters the caller sets).
fn add_routes(
    ctl: &Arc<dyn Session>,
    shared: &Arc<Vhost>,
    np: NewProxy,
    cancel: CancellationToken,
) -> Result<(String, Arc<Route>), VhostError> {
    let kind = check(&shared.hub.cfg, &np)?;
    let port = port_of(&shared.hub.cfg, kind);
    let domains = domains(&shared.hub.cfg, &np);
    let locations: Vec<String> =
        if kind == Kind::Http && !np.locations.is_empty() { np.locations.clone() } else { vec![String::new()] };
    let user = if kind == Kind::Https { String::new() } else { np.route_by_http_user.clone() };
    let limit = crate::session::server_limit(&np);
    let route = Arc::new(Route { ctl: ctl.clone(), np, cancel: cancel.clone(), live: OnceLock::new(), limit });
    let mut added: Vec<(String, String, String)> = Vec::new();
    let mut addrs = Vec::new();
    {
        let mut t = shared.table(kind).write().unwrap_or_else(|e| e.into_inner());
        for d in &domains {
            for l in &locations {
                let joined = match t.get(d, l, &user) {
                    Some(g) => g.join(&route),
                    None => t.add(d, l, &user, Arc::new(Group::new(route.clone()))).map_err(Into::into),
                };
                if let Err(e) = joined {
                    remove_locked(&mut t, &route, &added);
                    return Err(e);
                }
                added.push((d.clone(), l.clone(), user.clone()));
                addrs.push(public_addr(d, port));
                info!(proxy = %route.np.proxy_name, kind = ?kind, domain = %d, location = %l, route_by_http_user = %user, group = %route.np.group, "virtual host route added");
            }
        }
    }
    let s = shared.clone();
    let r = route.clone();
    shared.hub.tracker.spawn(
        async move {
            cancel.cancelled().await;
            s.remove(kind, &r, &added);
        }
        .in_current_span(),
    );
    Ok((addrs.join(","), route))
}

/// The bound virtual-host listeners.
#[derive(Default)]
pub struct Listeners {
    http: Option<TcpListener>,
    https: Option<TcpListener>,
    tcpmux: Option<TcpListener>,
}

/// A listener that could not be bound: the config key, the address, the OS error.
pub type BindError = (&'static str, SocketAddr, std::io::Error);

/// Binds the configured virtual-host ports on `proxyBindAddr` (frp's choice).
pub fn bind(cfg: &crate::config::ServerConfig) -> Result<Listeners, BindError> {
    let ip = cfg.proxy_bind_ip();
    let one = |key: &'static str, port: u16| -> Result<Option<TcpListener>, BindError> {
        if port == 0 {
            return Ok(None);
        }
        let addr = SocketAddr::new(ip, port);
        portway_proto::transport::listen(addr).map(Some).map_err(|e| (key, addr, e))
    };
    Ok(Listeners {
        http: one("vhostHTTPPort", cfg.vhost_http_port)?,
        https: one("vhostHTTPSPort", cfg.vhost_https_port)?,
        tcpmux: one("tcpmuxHTTPConnectPort", cfg.tcpmux_http_connect_port)?,
    })
}

/// Serves the bound listeners until the server shuts down.
pub fn spawn(shared: &Arc<Vhost>, l: Listeners) {
    let cancel = shared.hub.cancel.clone();
    if let Some(l) = l.http {
        info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "HTTP virtual hosts listening");
        shared
            .hub
            .tracker
            .spawn(http::serve(shared.clone(), l, cancel.clone()).instrument(tracing::info_span!("vhost_http")));
    }
    if let Some(l) = l.https {
        info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "HTTPS virtual hosts listening");
        shared
            .hub
            .tracker
            .spawn(https::serve(shared.clone(), l, cancel.clone()).instrument(tracing::info_span!("vhost_https")));
    }
    if let Some(l) = l.tcpmux {
        info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "tcpmux (HTTP CONNECT) listening");
        shared
            .hub
            .tracker
            .spawn(tcpmux::serve(shared.clone(), l, cancel).instrument(tracing::info_span!("vhost_tcpmux")));
    }
}

/// Accepts on `listener` until `cancel`, handing each connection to `serve_one` on the server's tracker.
async fn accept_loop<F, Fut>(shared: Arc<Vhost>, listener: TcpListener, cancel: CancellationToken, serve_one: F)
where
    F: Fn(Arc<Vhost>, tokio::net::TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed on a virtual-host port");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        portway_proto::transport::tune(&tcp);
        let c = cancel.clone();
        let fut = serve_one(shared.clone(), tcp, peer);
        shared.hub.tracker.spawn(
            async move {
                tokio::select! {
                    _ = c.cancelled() => {}
                    _ = fut => {}
                }
            }
            .instrument(tracing::debug_span!("visitor", %peer)),
        );
    }
}
