//! Public listeners and the visitor → work-connection relay.

use std::net::SocketAddr;
use std::sync::Arc;

use portway_proto::msg::{NewProxy, StartWorkConn};
use portway_proto::relay::{relay_tcp_counted, wrap_work_conn};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::control::Control;
use crate::stats::LiveCounters;

/// Why a proxy was refused. The text goes back to the client in NewProxyResp.error.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Not a type this server serves.
    #[error("proxy type {0:?} is not supported by this Portway server (supported: tcp, udp, http, https, tcpmux, stcp, sudp)")]
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
    /// A tcp proxy could not join its `loadBalancer.group` (frp's message).
    #[error(transparent)]
    Group(#[from] crate::group::GroupError),
    /// An http/https/tcpmux proxy the virtual hosts refused (frp's message).
    #[error(transparent)]
    Vhost(#[from] crate::vhost::VhostError),
}

/// Registers `name` as `ctl`'s in the server's proxy names, unless another proxy holds it.
pub(crate) fn claim_name(ctl: &Control, name: &str) -> Result<(), ProxyError> {
    let mut all = ctl.shared().proxies.lock().map_err(|_| ProxyError::NameTaken(name.to_string()))?;
    if all.contains_key(name) {
        return Err(ProxyError::NameTaken(name.to_string()));
    }
    all.insert(name.to_string(), ctl.run_id.clone());
    Ok(())
}

/// The `allowProxyNames` check of the client's `[portway]` rule, if it has one.
pub(crate) fn check_name_policy(ctl: &Control, name: &str) -> Result<(), ProxyError> {
    let cfg = &ctl.shared().cfg;
    if let Some((rule_name, rule)) = cfg.portway.rule_for(&ctl.identity.subject, &ctl.identity.client_id) {
        if !rule.name_allowed(name) {
            return Err(ProxyError::Policy(format!(
                "proxy name {name:?} is not in allowProxyNames of {rule_name} (client {:?})",
                who(ctl)
            )));
        }
    }
    Ok(())
}

fn who(ctl: &Control) -> String {
    if ctl.identity.client_id.is_empty() {
        ctl.identity.subject.clone()
    } else {
        ctl.identity.client_id.clone()
    }
}

/// Registers an http, https or tcpmux proxy: its routes on the shared virtual-host listeners.
fn register_vhost(ctl: &Arc<Control>, np: NewProxy) -> Result<String, ProxyError> {
    let shared = ctl.shared().clone();
    if np.proxy_name.is_empty() {
        return Err(ProxyError::EmptyName);
    }
    check_name_policy(ctl, &np.proxy_name)?;
    if let Some((rule_name, rule)) = shared.cfg.portway.rule_for(&ctl.identity.subject, &ctl.identity.client_id) {
        if let Some(d) = np.custom_domains.iter().find(|d| !rule.domain_allowed(d)) {
            return Err(ProxyError::Policy(format!(
                "custom domain {d:?} is not in allowDomains of {rule_name} (client {:?})",
                who(ctl)
            )));
        }
        if !np.subdomain.is_empty() && !rule.subdomain_allowed(&np.subdomain) {
            return Err(ProxyError::Policy(format!(
                "subdomain {:?} is not in allowSubdomains of {rule_name} (client {:?})",
                np.subdomain,
                who(ctl)
            )));
        }
    }
    crate::vhost::check(&shared.cfg, &np)?;
    let name = np.proxy_name.clone();
    claim_name(ctl, &name)?;
    let cancel = ctl.cancel.child_token();
    let kind = np.proxy_type.clone();
    let conf = np.clone();
    match crate::vhost::register(ctl, np, cancel.clone()) {
        Ok((addr, route)) => {
            if let Ok(mut mine) = ctl.proxies.lock() {
                mine.insert(name.clone(), (cancel, false));
            }
            // Listed by the dashboard API; its work connections count their bytes into it.
            let _ = route.live.set(shared.stats.proxy_started(&ctl.client_key, conf, 0, crate::oidc::now()));
            info!(proxy = %name, %kind, remote_addr = %addr, "proxy started");
            Ok(addr)
        }
        Err(e) => {
            if let Ok(mut all) = shared.proxies.lock() {
                all.remove(&name);
            }
            Err(e.into())
        }
    }
}

/// Registers a NewProxy for `ctl`: checks policy, opens the public port, starts serving it. Returns the
/// `remote_addr` to answer (`":<port>"`).
pub async fn register(ctl: &Arc<Control>, np: NewProxy) -> Result<String, ProxyError> {
    if crate::vhost::Kind::of(&np.proxy_type).is_some() {
        return register_vhost(ctl, np);
    }
    if crate::visitor::is_secret(&np.proxy_type) {
        return crate::visitor::register(ctl, np);
    }
    let shared = ctl.shared().clone();
    let cfg = &shared.cfg;
    if np.proxy_type != "tcp" && np.proxy_type != "udp" {
        return Err(ProxyError::UnsupportedType(np.proxy_type));
    }
    if np.proxy_name.is_empty() {
        return Err(ProxyError::EmptyName);
    }
    if !(0..=65535).contains(&np.remote_port) {
        return Err(ProxyError::PortOutOfRange(np.remote_port));
    }
    if shared.proxies.lock().map(|p| p.contains_key(&np.proxy_name)).unwrap_or(true) {
        return Err(ProxyError::NameTaken(np.proxy_name));
    }
    if np.remote_port != 0 && !cfg.port_allowed(np.remote_port as u16) {
        return Err(ProxyError::PortNotAllowed(np.remote_port as u16));
    }
    check_name_policy(ctl, &np.proxy_name)?;
    if let Some((rule_name, rule)) = cfg.portway.rule_for(&ctl.identity.subject, &ctl.identity.client_id) {
        let who = who(ctl);
        if np.remote_port == 0 && !rule.allow_ports.is_empty() {
            return Err(ProxyError::Policy(format!(
                "{rule_name} (client {who:?}) limits ports: give an explicit remotePort"
            )));
        }
        if np.remote_port != 0 && !rule.port_allowed(np.remote_port as u16) {
            return Err(ProxyError::Policy(format!(
                "remote port {} is not in allowPorts of {rule_name} (client {who:?})",
                np.remote_port
            )));
        }
    }
    if cfg.max_ports_per_client > 0 && ctl.proxy_count() as i64 >= cfg.max_ports_per_client {
        return Err(ProxyError::TooManyPorts(cfg.max_ports_per_client));
    }
    let ip = cfg.proxy_bind_ip();
    let udp = np.proxy_type == "udp";
    if !udp && !np.group.is_empty() {
        return register_grouped(ctl, np).await;
    }
    if udp && !np.group.is_empty() {
        // As frps: udp proxies have no groups; the port is this proxy's own.
        debug!(proxy = %np.proxy_name, group = %np.group, "loadBalancer.group ignored for a udp proxy");
    }
    let public = if np.remote_port == 0 {
        bind_any(cfg, ip, udp).await?
    } else {
        let port = np.remote_port as u16;
        bind_port(SocketAddr::new(ip, port), udp).await.map_err(|source| ProxyError::Bind { port, source })?
    };
    let port = public.port();
    // Re-checked under the lock: two clients may race for one name.
    claim_name(ctl, &np.proxy_name)?;
    let cancel = ctl.cancel.child_token();
    if let Ok(mut mine) = ctl.proxies.lock() {
        mine.insert(np.proxy_name.clone(), (cancel.clone(), true));
    }
    info!(proxy = %np.proxy_name, kind = %np.proxy_type, remote_port = port, "proxy started");
    let live = shared.stats.proxy_started(&ctl.client_key, np.clone(), port, crate::oidc::now());
    let span = tracing::info_span!("proxy", name = %np.proxy_name);
    match public {
        Public::Tcp(l) => shared.tracker.spawn(serve_tcp(ctl.clone(), l, np, live, cancel).instrument(span)),
        Public::Udp(s) => shared.tracker.spawn(crate::udp::serve(ctl.clone(), s, np, live, cancel).instrument(span)),
    };
    Ok(format!(":{port}"))
}

/// Registers a tcp proxy of a `loadBalancer.group`: joins the group (the first member opens the port).
async fn register_grouped(ctl: &Arc<Control>, np: NewProxy) -> Result<String, ProxyError> {
    let shared = ctl.shared().clone();
    let cancel = ctl.cancel.child_token();
    let member = crate::group::Member {
        ctl: ctl.clone(),
        np: Arc::new(np.clone()),
        live: std::sync::OnceLock::new(),
        cancel: cancel.clone(),
    };
    let cfg = &shared.cfg;
    let ip = cfg.proxy_bind_ip();
    let open: crate::group::Opener<'_> = Box::pin(async move {
        let public = if np.remote_port == 0 {
            bind_any(cfg, ip, false).await?
        } else {
            let port = np.remote_port as u16;
            bind_port(SocketAddr::new(ip, port), false).await.map_err(|source| ProxyError::Bind { port, source })?
        };
        match public {
            Public::Tcp(l) => Ok(l),
            Public::Udp(_) => unreachable!("bound as tcp"),
        }
    });
    let (port, member) = shared.tcp_groups.join(member, open).await?;
    let np = &member.np;
    if let Err(e) = claim_name(ctl, &np.proxy_name) {
        cancel.cancel();
        return Err(e);
    }
    if let Ok(mut mine) = ctl.proxies.lock() {
        mine.insert(np.proxy_name.clone(), (cancel, true));
    }
    let _ = member.live.set(shared.stats.proxy_started(&ctl.client_key, (**np).clone(), port, crate::oidc::now()));
    info!(proxy = %np.proxy_name, kind = "tcp", remote_port = port, group = %np.group, "proxy started in its group");
    Ok(format!(":{port}"))
}

/// A public port: a TCP listener or a UDP socket.
enum Public {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Public {
    async fn bind(addr: SocketAddr, udp: bool) -> std::io::Result<Public> {
        Ok(if udp {
            Public::Udp(UdpSocket::bind(addr).await?)
        } else {
            Public::Tcp(portway_proto::transport::listen(addr)?)
        })
    }

    fn port(&self) -> u16 {
        match self {
            Public::Tcp(l) => l.local_addr().map(|a| a.port()).unwrap_or(0),
            Public::Udp(s) => s.local_addr().map(|a| a.port()).unwrap_or(0),
        }
    }
}

/// Tries for a moment when the port is in use: a proxy closed and registered again at once (a client's reload)
/// finds its old listener still open until that listener's task has seen the close.
async fn bind_port(addr: SocketAddr, udp: bool) -> std::io::Result<Public> {
    let mut tries = 0;
    loop {
        match Public::bind(addr, udp).await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < BIND_RETRIES => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            r => return r,
        }
    }
}

/// Attempts of [`bind_port`] 20 ms apart.
const BIND_RETRIES: u32 = 10;

async fn bind_any(cfg: &crate::config::ServerConfig, ip: std::net::IpAddr, udp: bool) -> Result<Public, ProxyError> {
    if cfg.allow_ports.is_empty() {
        return Public::bind(SocketAddr::new(ip, 0), udp).await.map_err(|source| ProxyError::Bind { port: 0, source });
    }
    let candidates: Vec<u16> = cfg
        .allow_ports
        .iter()
        .flat_map(|r| if r.single != 0 { r.single..=r.single } else { r.start..=r.end })
        .filter_map(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .collect();
    for _ in 0..64 {
        let p = candidates[rand::random::<usize>() % candidates.len().max(1)];
        if let Ok(l) = Public::bind(SocketAddr::new(ip, p), udp).await {
            return Ok(l);
        }
    }
    Err(ProxyError::NoFreePort)
}

async fn serve_tcp(
    ctl: Arc<Control>,
    listener: TcpListener,
    np: NewProxy,
    live: Arc<LiveCounters>,
    cancel: CancellationToken,
) {
    let np = Arc::new(np);
    loop {
        let (visitor, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    warn!(error = %e, "accept failed on the public port");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        portway_proto::transport::tune(&visitor);
        let (ctl2, np2, live2, c2) = (ctl.clone(), np.clone(), live.clone(), cancel.clone());
        ctl.shared().tracker.spawn(
            async move { serve_visitor(ctl2, np2, live2, visitor, peer, c2).await }
                .instrument(tracing::debug_span!("visitor", %peer)),
        );
    }
    debug!("public listener closed");
}

pub(crate) async fn serve_visitor(
    ctl: Arc<Control>,
    np: Arc<NewProxy>,
    live: Arc<LiveCounters>,
    mut visitor: TcpStream,
    peer: SocketAddr,
    cancel: CancellationToken,
) {
    if !ctl.user_conn_allowed(&np.proxy_name, &np.proxy_type, peer).await {
        return;
    }
    let dst = visitor.local_addr().ok();
    let start = StartWorkConn {
        proxy_name: np.proxy_name.clone(),
        src_addr: peer.ip().to_string(),
        dst_addr: dst.map(|d| d.ip().to_string()).unwrap_or_default(),
        src_port: peer.port(),
        dst_port: dst.map(|d| d.port()).unwrap_or(0),
        error: String::new(),
    };
    let work = match ctl.start_work_conn(start).await {
        Ok(w) => w.io,
        Err(e) => {
            warn!(error = %e, "no work connection for a visitor; closing it");
            return;
        }
    };
    let shared = ctl.shared();
    let mut work = wrap_work_conn(work, np.use_encryption.then_some(&shared.key), np.use_compression);
    let _open = live.open();
    tokio::select! {
        _ = cancel.cancelled() => {}
        r = relay_tcp_counted(&mut visitor, &mut work, Some((&live.bytes_in, &live.bytes_out))) => match r {
            Ok((up, down)) => debug!(bytes_in = up, bytes_out = down, "visitor connection closed"),
            Err(e) => debug!(error = %e, "visitor connection ended with an error"),
        },
    }
}
