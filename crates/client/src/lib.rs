//! Portway's client engine: frpc-compatible.
//!
//! - [`config`]: the `frpc.toml` model and its validation.
//! - [`secret`]: secrets and where they come from (value, env, file; the desktop app adds the keychain).
//! - [`auth`]: privilege keys for Login, Ping and NewWorkConn.
//! - [`oidc`]: client_credentials token requests, cached; `test_sign_in` for diagnostics.
//! - [`connector`]: TCP / TLS / yamux to the server.
//! - [`diagnose`]: "Check": DNS, TCP, TLS (the certificate), token, login, each step in plain words.
//! - [`engine`]: the one handle: [`engine::start`] → status → stop; login, proxies, work connections, reconnects.
//! - [`plugin`]: frpc's client plugins (socks5, http_proxy, static_file, unix_domain_socket).
//! - [`proxy_protocol`]: PROXY protocol v1/v2 headers for the local service (pure).
//! - [`status`]: what the engine reports.
//! - [`visitor`]: stcp/sudp visitors: local entrances to other clients' secret proxies.
//! - [`store`]: frpc's `store.path`: proxies added through the admin API, kept in a JSON file.
//! - [`udp`]: UDP proxies: one local socket per remote peer, datagrams as UDPPacket messages.
//! - [`xtcp`]: xtcp proxies and visitors: STUN discovery, hole punching, QUIC over the punched socket.

pub mod admin;
pub mod auth;
pub mod cmdline;
pub mod config;
pub mod connector;
pub mod diagnose;
pub mod dns;
pub mod engine;
pub mod health;
pub mod oidc;
pub mod plugin;
pub mod proxy_protocol;
pub mod secret;
pub mod status;
pub mod store;
pub mod udp;
pub mod via_proxy;
pub mod visitor;
pub mod xtcp;

pub use config::ClientConfig;
pub use engine::{start, ClientHandle, ReloadOutcome};
pub use secret::{Secret, SecretSource};
pub use status::{ConnState, ProxyState, Status, VisitorState};
