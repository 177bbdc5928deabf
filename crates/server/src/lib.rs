//! Portway's server engine: frps-compatible.
//!
//! - [`config`]: the `frps.toml` model and its validation.
//! - [`auth`]: login, heartbeat and work-connection verification: token, or OIDC access tokens.
//! - [`token`]: access-token verification rules (pure). [`oidc`]: discovery and the JWKS cache.
//! - [`service`]: the `bindPort` listener: sniffs TLS / plain, runs yamux, then per connection or stream wire
//!   protocol v1 or v2 (magic, hellos), dispatches Login and NewWorkConn.
//! - [`control`]: one logged-in client: the encrypted control channel (v1 cipher or v2 AEAD), its proxies and its
//!   work-connection pool.
//! - [`proxy`]: public listeners (TCP) and the visitor → work connection relay.
//! - [`udp`]: UDP proxies: datagrams carried as UDPPacket messages over one work connection.
//! - [`visitor`]: secret proxies (stcp, sudp) and the visitor connections joined to them.
//! - [`vhost`]: the HTTP, HTTPS (SNI) and tcpmux (CONNECT) listeners and their routes to http/https/tcpmux proxies.
//! - [`stats`]: clients, proxies and per-day traffic as plain data (no IO), updated by sessions and relays.
//! - [`plugins`]: frp's server plugins (`[[httpPlugins]]`): HTTP calls before Login, NewProxy, Ping, work and
//!   user connections, and CloseProxy notifications.
//! - [`api`]: the dashboard API, its page under `/static/` (embedded at build time) and `/metrics` (`webServer.*`):
//!   reads [`stats`], never the sessions.

pub mod api;
pub mod auth;
pub mod config;
pub mod control;
pub mod group;
pub mod guard;
pub mod oidc;
pub mod plugins;
pub mod proxy;
pub mod service;
pub mod stats;
pub mod token;
pub mod udp;
pub mod vhost;
pub mod visitor;

pub use config::ServerConfig;
pub use service::Server;
