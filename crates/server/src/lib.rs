//! Portway's server engine: frps-compatible.
//!
//! - [`config`]: the `frps.toml` model and its validation.
//! - [`auth`]: login, heartbeat and work-connection verification: token, or OIDC access tokens.
//! - [`token`]: access-token verification rules (pure). [`oidc`]: discovery and the JWKS cache.
//! - [`service`]: the `bindPort` listener: sniffs TLS / plain, runs yamux, then per connection or stream wire
//!   protocol v1 or v2 (magic, hellos), dispatches Login and NewWorkConn.
//! - [`control`]: one logged-in client: the encrypted control channel (v1 cipher or v2 AEAD), its proxies and its
//!   work-connection pool; implements [`session::Session`] for the proxy kinds.
//! - [`session`]: the one interface between a control session and the proxy kinds: [`session::Session`] (what a
//!   proxy may ask of its client) and [`session::Hub`] (what all proxies share).
//! - [`proxy`]: the proxy kinds, below the control session and knowing it only as a `Session`: tcp/udp ports and
//!   tcp groups, the HTTP/HTTPS/tcpmux virtual hosts, secret proxies (stcp, sudp, xtcp) and their visitors.
//! - [`nathole`]: xtcp's hole punching coordination, above the proxy kinds: pairs a visitor and a provider by
//!   sid and tells both where to punch.
//! - [`stats`]: clients, proxies and per-day traffic as plain data (no IO), updated by sessions and relays.
//! - [`plugins`]: frp's server plugins (`[[httpPlugins]]`): HTTP calls before Login, NewProxy, Ping, work and
//!   user connections, and CloseProxy notifications.
//! - [`api`]: the dashboard API, its page under `/static/` (embedded at build time) and `/metrics` (`webServer.*`):
//!   reads [`stats`], never the sessions.

pub mod api;
pub mod auth;
pub mod cmdline;
pub mod config;
pub mod control;
pub mod guard;
pub mod nathole;
pub mod oidc;
pub mod plugins;
pub mod proxy;
pub mod service;
pub mod session;
pub mod stats;
pub mod token;

pub use config::ServerConfig;
pub use service::Server;
