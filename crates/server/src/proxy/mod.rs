//! The proxy kinds a client registers, below its control session: each sees the client only through
//! [`crate::session::Session`] and never imports the control channel, the listeners or another kind's internals.
//!
//! - [`port`]: tcp and udp proxies, a public port each (tcp ones may share one through a [`group`]).
//! - [`udp`]: a udp proxy's datagrams as UDPPacket messages over one work connection.
//! - [`group`]: tcp `loadBalancer.group`s.
//! - [`vhost`]: http, https and tcpmux proxies, routed by name on the shared virtual-host listeners.
//! - [`visitor`]: secret proxies (stcp, sudp) and the visitor connections joined to them.

pub mod group;
pub mod port;
pub mod udp;
pub mod vhost;
pub mod visitor;

use std::sync::Arc;

use portway_proto::msg::NewProxy;

use crate::session::{check_type_policy, Hub, ProxyError, Session};

/// The server-wide registries of the proxy kinds.
pub struct Kinds {
    /// Routes of the HTTP / HTTPS / tcpmux virtual hosts.
    pub vhost: Arc<vhost::Vhost>,
    /// The tcp proxies' `loadBalancer.group`s.
    pub tcp_groups: Arc<group::TcpGroups>,
    /// Secret (stcp/sudp) proxies, reached by visitors.
    pub secrets: Arc<visitor::Secrets>,
}

impl Kinds {
    /// Empty registries for the server of `hub`.
    pub fn new(hub: &Arc<Hub>) -> Kinds {
        Kinds {
            vhost: Arc::new(vhost::Vhost::new(hub.clone())),
            tcp_groups: Arc::new(group::TcpGroups::default()),
            secrets: Arc::new(visitor::Secrets::default()),
        }
    }

    /// Registers a NewProxy for `session` with the kind its type names. Returns the `remote_addr` to answer.
    pub async fn register(&self, session: &Arc<dyn Session>, np: NewProxy) -> Result<String, ProxyError> {
        if crate::config::PROXY_TYPES.contains(&np.proxy_type.as_str()) {
            check_type_policy(session.as_ref(), &np)?;
        }
        if vhost::Kind::of(&np.proxy_type).is_some() {
            return vhost::register(session, &self.vhost, np);
        }
        if visitor::is_secret(&np.proxy_type) {
            return visitor::register(session, &self.secrets, np);
        }
        match np.proxy_type.as_str() {
            "tcp" | "udp" => port::register(session, &self.tcp_groups, np).await,
            _ => Err(ProxyError::UnsupportedType(np.proxy_type)),
        }
    }
}
