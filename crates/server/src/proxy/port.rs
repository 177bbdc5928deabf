//! tcp and udp proxies: a public port of their own on `proxyBindAddr` (or shared by a tcp `loadBalancer.group`).

use std::net::SocketAddr;
use std::sync::Arc;

use portway_proto::msg::NewProxy;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use super::group::{self, TcpGroups};
use crate::session::{check_name_policy, claim_name, serve_user_conn, server_limit, who, ProxyError, Session};
use crate::stats::LiveCounters;

/// Registers a tcp or udp proxy: checks policy, opens the public port (or joins the tcp group), starts serving
/// it. Returns the `remote_addr` to answer (`":<port>"`).
pub async fn register(ctl: &Arc<dyn Session>, groups: &Arc<TcpGroups>, np: NewProxy) -> Result<String, ProxyError> {
    let hub = ctl.hub().clone();
    let cfg = &hub.cfg;
    if np.proxy_name.is_empty() {
        return Err(ProxyError::EmptyName);
    }
    if !(0..=65535).contains(&np.remote_port) {
        return Err(ProxyError::PortOutOfRange(np.remote_port));
    }
    if hub.names.lock().map(|p| p.contains_key(&np.proxy_name)).unwrap_or(true) {
        return Err(ProxyError::NameTaken(np.proxy_name));
    }
    if np.remote_port != 0 && !cfg.port_allowed(np.remote_port as u16) {
        return Err(ProxyError::PortNotAllowed(np.remote_port as u16));
    }
    check_name_policy(ctl.as_ref(), &np.proxy_name)?;
    let id = ctl.identity();
    if let Some((rule_name, rule)) = cfg.portway.rule_for(&id.subject, &id.client_id) {
        let who = who(ctl.as_ref());
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
    if cfg.max_ports_per_client > 0 && ctl.ports_held() as i64 >= cfg.max_ports_per_client {
        return Err(ProxyError::TooManyPorts(cfg.max_ports_per_client));
    }
    let ip = cfg.proxy_bind_ip();
    let udp = np.proxy_type == "udp";
    if !udp && !np.group.is_empty() {
        return register_grouped(ctl, groups, np).await;
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
    claim_name(ctl.as_ref(), &np.proxy_name)?;
    let cancel = ctl.cancel().child_token();
    ctl.add_proxy(&np.proxy_name, cancel.clone(), true);
    info!(proxy = %np.proxy_name, kind = %np.proxy_type, remote_port = port, "proxy started");
    let live = hub.stats.proxy_started(ctl.client_key(), np.clone(), port, crate::oidc::now());
    let span = tracing::info_span!("proxy", name = %np.proxy_name);
    match public {
        Public::Tcp(l) => hub.tracker.spawn(serve_tcp(ctl.clone(), l, np, live, cancel).instrument(span)),
        Public::Udp(s) => hub.tracker.spawn(super::udp::serve(ctl.clone(), s, np, live, cancel).instrument(span)),
    };
    Ok(format!(":{port}"))
}

/// Registers a tcp proxy of a `loadBalancer.group`: joins the group (the first member opens the port).
async fn register_grouped(ctl: &Arc<dyn Session>, groups: &Arc<TcpGroups>, np: NewProxy) -> Result<String, ProxyError> {
    let hub = ctl.hub().clone();
    let cancel = ctl.cancel().child_token();
    let member = group::Member {
        limit: server_limit(&np),
        ctl: ctl.clone(),
        np: Arc::new(np.clone()),
        live: std::sync::OnceLock::new(),
        cancel: cancel.clone(),
    };
    let cfg = &hub.cfg;
    let ip = cfg.proxy_bind_ip();
    let open: group::Opener<'_> = Box::pin(async move {
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
    let (port, member) = groups.join(member, open).await?;
    let np = &member.np;
    if let Err(e) = claim_name(ctl.as_ref(), &np.proxy_name) {
        cancel.cancel();
        return Err(e);
    }
    ctl.add_proxy(&np.proxy_name, cancel, true);
    let _ = member.live.set(hub.stats.proxy_started(ctl.client_key(), (**np).clone(), port, crate::oidc::now()));
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
    ctl: Arc<dyn Session>,
    listener: TcpListener,
    np: NewProxy,
    live: Arc<LiveCounters>,
    cancel: CancellationToken,
) {
    let limit = server_limit(&np);
    let np = Arc::new(np);
    // StartWorkConn's dst_addr: a listener bound to one IP accepts on that address only, so no getsockname per
    // connection; one on a wildcard address asks each connection.
    let local = listener.local_addr().ok().filter(|a| !a.ip().is_unspecified());
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
        let (ctl2, np2, live2, c2) = (ctl.clone(), (np.clone(), limit.clone()), live.clone(), cancel.clone());
        ctl.hub().tracker.spawn(
            async move { serve_user_conn(ctl2, np2, live2, visitor, (peer, local), c2).await }
                .instrument(tracing::debug_span!("visitor", %peer)),
        );
    }
    debug!("public listener closed");
}
