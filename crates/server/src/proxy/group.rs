//! `loadBalancer.group` for tcp proxies: proxies of one group, from any clients, share one public port; each
//! visitor connection goes to the next member in turn (frp's tcp groups). The first member opens the port, the
//! others join with the same `remotePort` and `groupKey`; the port closes with the last member.
//!
//! (http, https and tcpmux groups share a route instead: see `super::vhost::Group`.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use portway_proto::msg::NewProxy;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::session::{serve_user_conn, ProxyError, Session};
use crate::stats::LiveCounters;

/// Why a proxy could not join its group (frp's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// `loadBalancer.groupKey` differs from the group's.
    #[error("group auth failed")]
    Auth,
    /// `remotePort` differs from the group's.
    #[error("group should have same remote port")]
    DifferentPort,
    /// A member of that name is already in the group.
    #[error("group proxy repeated")]
    Repeated,
}

/// One proxy serving a group.
pub struct Member {
    /// Its client.
    pub ctl: Arc<dyn Session>,
    /// Its NewProxy.
    pub np: Arc<NewProxy>,
    /// Its dashboard counters (set once the registry listed it).
    pub live: OnceLock<Arc<LiveCounters>>,
    /// Cancelled when the proxy closes.
    pub cancel: CancellationToken,
    /// Its server-side bandwidth bucket (`bandwidthLimitMode = "server"`).
    pub limit: Option<Arc<portway_proto::limit::Bucket>>,
}

/// One tcp group: its port and members.
pub struct TcpGroup {
    key: String,
    /// The `remotePort` the members asked for (0: any, as the first member got).
    requested: i64,
    /// The port it listens on.
    pub port: u16,
    members: RwLock<Vec<Arc<Member>>>,
    next: AtomicUsize,
    /// Cancelled when the last member leaves: stops the listener.
    stop: CancellationToken,
}

impl TcpGroup {
    /// The next member, round robin.
    pub fn pick(&self) -> Option<Arc<Member>> {
        let m = self.members.read().unwrap_or_else(|e| e.into_inner());
        if m.is_empty() {
            return None;
        }
        Some(m[self.next.fetch_add(1, Ordering::Relaxed) % m.len()].clone())
    }

    fn check(&self, np: &NewProxy) -> Result<(), GroupError> {
        if np.remote_port != self.requested {
            return Err(GroupError::DifferentPort);
        }
        if np.group_key != self.key {
            return Err(GroupError::Auth);
        }
        let m = self.members.read().unwrap_or_else(|e| e.into_inner());
        if m.iter().any(|x| x.np.proxy_name == np.proxy_name) {
            return Err(GroupError::Repeated);
        }
        Ok(())
    }
}

impl From<GroupError> for ProxyError {
    fn from(e: GroupError) -> ProxyError {
        ProxyError::Kind(Box::new(e))
    }
}

/// The server's tcp groups by name.
#[derive(Default)]
pub struct TcpGroups {
    groups: tokio::sync::Mutex<HashMap<String, Arc<TcpGroup>>>,
}

/// Opens the port of a new group (called by [`TcpGroups::join`] only for the first member).
pub type Opener<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<TcpListener, ProxyError>> + Send + 'a>>;

impl TcpGroups {
    /// Adds `member` to its group; the first member opens the port with `open` and starts the accept loop.
    /// Returns the public port.
    pub async fn join(self: &Arc<Self>, member: Member, open: Opener<'_>) -> Result<(u16, Arc<Member>), ProxyError> {
        let np = member.np.clone();
        let mut groups = self.groups.lock().await;
        let member = Arc::new(member);
        let group = match groups.get(&np.group) {
            Some(group) => {
                group.check(&np)?;
                group.members.write().unwrap_or_else(|e| e.into_inner()).push(member.clone());
                group.clone()
            }
            None => {
                let listener = open.await?;
                let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                let hub = member.ctl.hub().clone();
                let group = Arc::new(TcpGroup {
                    key: np.group_key.clone(),
                    requested: np.remote_port,
                    port,
                    members: RwLock::new(vec![member.clone()]),
                    next: AtomicUsize::new(0),
                    stop: hub.cancel.child_token(),
                });
                groups.insert(np.group.clone(), group.clone());
                let span = tracing::info_span!("group", name = %np.group, port);
                hub.tracker.spawn(accept_loop(group.clone(), listener).instrument(span));
                info!(group = %np.group, port, "tcp group opened its port");
                group
            }
        };
        // Leaves the group when the proxy closes; the last member out closes the port.
        let (name, m, g) = (np.group.clone(), member.clone(), group.clone());
        let tracker = member.ctl.hub().tracker.clone();
        let registry = self.clone();
        tracker.spawn(
            async move {
                m.cancel.cancelled().await;
                let mut all = registry.groups.lock().await;
                let empty = {
                    let mut members = g.members.write().unwrap_or_else(|e| e.into_inner());
                    members.retain(|x| !Arc::ptr_eq(x, &m));
                    members.is_empty()
                };
                if empty {
                    g.stop.cancel();
                    if all.get(&name).is_some_and(|cur| Arc::ptr_eq(cur, &g)) {
                        all.remove(&name);
                    }
                    info!(group = %name, "tcp group closed its port: no member left");
                }
            }
            .in_current_span(),
        );
        Ok((group.port, member))
    }
}

async fn accept_loop(group: Arc<TcpGroup>, listener: TcpListener) {
    // As `port::serve_tcp`: a listener bound to one IP gives StartWorkConn's dst_addr without a syscall.
    let local = listener.local_addr().ok().filter(|a| !a.ip().is_unspecified());
    loop {
        let (visitor, peer) = tokio::select! {
            _ = group.stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    warn!(error = %e, "accept failed on the group's port");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(m) = group.pick() else { continue };
        portway_proto::transport::tune(&visitor);
        debug!(proxy = %m.np.proxy_name, %peer, "group visitor");
        let tracker = m.ctl.hub().tracker.clone();
        tracker.spawn(
            serve_user_conn(
                m.ctl.clone(),
                (m.np.clone(), m.limit.clone()),
                m.live.get().cloned().unwrap_or_default(),
                visitor,
                (peer, local),
                m.cancel.clone(),
            )
            .instrument(tracing::debug_span!("visitor", %peer)),
        );
    }
    debug!("group listener closed");
}
