//! `frpc.toml`: frp's client configuration keys (v0.52+ TOML, camelCase), validated once at load.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A configuration problem, naming the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML, or a value of the wrong type.
    #[error("{file}: {message}")]
    Parse {
        /// The file (or "<string>").
        file: String,
        /// toml's message, which names the key and line.
        message: String,
    },
    /// A value that parses but cannot work.
    #[error("{file}: `{key}`: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The key's path.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// An frp feature Portway does not implement.
    #[error("{file}: `{key}` = {value:?} is not supported by Portway yet ({hint})")]
    Unsupported {
        /// The file.
        file: String,
        /// The key's path.
        key: String,
        /// Its value.
        value: String,
        /// What would work instead.
        hint: &'static str,
    },
    /// The file could not be read.
    #[error("cannot read config file {file}: {source}")]
    Read {
        /// The path.
        file: String,
        /// The IO error.
        source: std::io::Error,
    },
}

impl ConfigError {
    /// The error with the line of its key in the file, when the tree knows it.
    fn with_line(self, tree: Option<&portway_config::Tree>) -> Self {
        let line = |key: &str| tree.and_then(|t| portway_config::line_of(t, key));
        match self {
            ConfigError::Invalid { file, key, message } => match line(&key) {
                Some(l) => ConfigError::Invalid { file: format!("{file}: line {l}"), key, message },
                None => ConfigError::Invalid { file, key, message },
            },
            ConfigError::Unsupported { file, key, value, hint } => match line(&key) {
                Some(l) => ConfigError::Unsupported { file: format!("{file}: line {l}"), key, value, hint },
                None => ConfigError::Unsupported { file, key, value, hint },
            },
            other => other,
        }
    }
}

/// frpc's default `natHoleStunServer`.
pub const DEFAULT_STUN_SERVER: &str = "stun.easyvoip.com:3478";

/// The whole `frpc.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientConfig {
    pub server_addr: String,
    pub server_port: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    pub login_fail_exit: bool,
    pub auth: AuthConfig,
    pub transport: TransportConfig,
    pub log: LogConfig,
    pub udp_packet_size: i64,
    /// frp's `start`: only these proxies run (empty: all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub start: Vec<String>,
    /// frp's `includes`: more files with `proxies` (globs, relative to this file's directory). Read at load; the
    /// proxies they hold are in `proxies`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<String>,
    /// frp's `metadatas`: sent in Login; frps passes them to server plugins.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadatas: std::collections::BTreeMap<String, String>,
    /// frp's `store`: proxies added through the admin API (`/api/store/*`), kept in `store.path` and started with
    /// the file's.
    #[serde(skip_serializing_if = "StoreConfig::is_empty")]
    pub store: StoreConfig,
    /// frpc's admin API (`portway-client status|reload|stop` talk to it); off unless `webServer.port` is set.
    #[serde(skip_serializing_if = "AdminConfig::is_off")]
    pub web_server: AdminConfig,
    pub proxies: Vec<ProxyConfig>,
    /// `[[visitors]]`: local entrances to other clients' secret (stcp/sudp/xtcp) proxies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub visitors: Vec<VisitorConfig>,
    /// xtcp: the STUN server (`host:port`) that tells this client its public UDP address (frp's default).
    pub nat_hole_stun_server: String,
    /// frpc's `dnsServer`: every name the client looks up is asked of this DNS server (`IP` or `IP:port`)
    /// instead of the system's resolver. Empty: the system's.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dns_server: String,
    /// Portway setting, not a config key: how long an idle UDP peer session lives (frp: 30 s).
    #[serde(skip)]
    pub udp_idle_timeout: std::time::Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            server_addr: "127.0.0.1".into(),
            server_port: 7000,
            user: String::new(),
            login_fail_exit: true,
            auth: AuthConfig::default(),
            transport: TransportConfig::default(),
            log: LogConfig::default(),
            udp_packet_size: 1500,
            start: Vec::new(),
            includes: Vec::new(),
            metadatas: Default::default(),
            store: StoreConfig::default(),
            web_server: AdminConfig::default(),
            proxies: Vec::new(),
            visitors: Vec::new(),
            nat_hole_stun_server: DEFAULT_STUN_SERVER.into(),
            dns_server: String::new(),
            udp_idle_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// `webServer.*` on the client: the admin API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AdminConfig {
    /// Listen address (default 127.0.0.1).
    pub addr: String,
    /// Listen port; 0 = no admin API.
    pub port: u16,
    /// Basic-auth user.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Basic-auth password (empty: no auth, only allowed on a loopback address).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// Go's pprof endpoints: refused.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pprof_enable: bool,
    /// frpc's web UI pages: refused (the API only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub assets_dir: String,
    /// HTTPS: not served by the client yet.
    #[serde(skip_serializing_if = "AdminTls::is_empty")]
    pub tls: AdminTls,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            addr: "127.0.0.1".into(),
            port: 0,
            user: String::new(),
            password: String::new(),
            pprof_enable: false,
            assets_dir: String::new(),
            tls: AdminTls::default(),
        }
    }
}

impl AdminConfig {
    fn is_off(&self) -> bool {
        self == &AdminConfig::default()
    }
}

/// `webServer.tls.*` on the client.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AdminTls {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_file: String,
}

impl AdminTls {
    fn is_empty(&self) -> bool {
        self.cert_file.is_empty() && self.key_file.is_empty()
    }
}

/// `store.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct StoreConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
}

impl StoreConfig {
    fn is_empty(&self) -> bool {
        self.path.is_empty()
    }
}

/// frp's value sources (`auth.tokenSource`): a secret read from somewhere else at load.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ValueSource {
    #[serde(rename = "type")]
    pub kind: String,
    pub file: FileSource,
}

/// `tokenSource.file`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct FileSource {
    pub path: String,
}

/// `auth.*` on the client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthConfig {
    pub method: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// frp's `auth.tokenSource`: the token read from a file at load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_source: Option<ValueSource>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_scopes: Vec<String>,
    pub oidc: OidcClientConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            method: "token".into(),
            token: String::new(),
            token_source: None,
            additional_scopes: Vec::new(),
            oidc: Default::default(),
        }
    }
}

/// `auth.oidc.*` on the client.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct OidcClientConfig {
    #[serde(rename = "clientID", skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_secret: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub audience: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(rename = "tokenEndpointURL", skip_serializing_if = "String::is_empty")]
    pub token_endpoint_url: String,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub additional_endpoint_params: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trusted_ca_file: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    #[serde(rename = "proxyURL", skip_serializing_if = "String::is_empty")]
    pub proxy_url: String,
    /// frp's `auth.oidc.tokenSource` (type `file`): the access token is read from this file each time one is
    /// needed, instead of a token request; it excludes every other `auth.oidc.*` key (frp's rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_source: Option<ValueSource>,
}

impl OidcClientConfig {
    /// `auth.oidc.tokenSource.file.path` when the token comes from a file.
    pub fn token_file(&self) -> Option<&str> {
        self.token_source.as_ref().filter(|s| s.kind == "file").map(|s| s.file.path.as_str())
    }
}

/// `transport.*` on the client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct TransportConfig {
    pub protocol: String,
    pub tcp_mux: bool,
    pub tcp_mux_keepalive_interval: i64,
    pub pool_count: i64,
    pub dial_server_timeout: i64,
    /// frp: 30 s, or off (-1) with tcpMux. `None` = frp's default for the mux setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval: Option<i64>,
    /// frp: 90 s, or off (-1) with tcpMux.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_timeout: Option<i64>,
    /// frp's `transport.wireProtocol`: `"v1"` (default) or `"v2"` (frps v0.69+ or Portway; no fallback).
    pub wire_protocol: String,
    pub tls: ClientTlsConfig,
    /// `transport.quic.*` (used with `transport.protocol = "quic"`).
    #[serde(skip_serializing_if = "portway_config::QuicOptions::is_default")]
    pub quic: portway_config::QuicOptions,
    /// frpc's outbound proxy for the server connection: `http://[user:password@]host:port` (HTTP CONNECT) or
    /// `socks5://[user:password@]host:port`; not used by `quic` (UDP), as in frpc.
    #[serde(rename = "proxyURL", skip_serializing_if = "String::is_empty")]
    pub proxy_url: String,
    /// The local IP address the server connection is made from.
    #[serde(rename = "connectServerLocalIP", skip_serializing_if = "String::is_empty")]
    pub connect_server_local_ip: String,
    /// TCP keepalive of the server connection, seconds (frp: 7200; negative: off).
    pub dial_server_keepalive: i64,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            protocol: "tcp".into(),
            tcp_mux: true,
            tcp_mux_keepalive_interval: 30,
            pool_count: 1,
            dial_server_timeout: 10,
            heartbeat_interval: None,
            heartbeat_timeout: None,
            wire_protocol: "v1".into(),
            tls: ClientTlsConfig::default(),
            quic: Default::default(),
            proxy_url: String::new(),
            connect_server_local_ip: String::new(),
            dial_server_keepalive: 7200,
        }
    }
}

impl TransportConfig {
    /// How the server connection is dialled (validated at load, so the parses here do not fail).
    pub fn dial_options(&self, dns: crate::dns::Resolver) -> crate::via_proxy::DialOptions {
        crate::via_proxy::DialOptions {
            dns,
            proxy: (!self.proxy_url.trim().is_empty())
                .then(|| crate::via_proxy::ProxyUrl::parse(&self.proxy_url).ok())
                .flatten(),
            local_ip: self.connect_server_local_ip.trim().parse().ok(),
            keepalive: match self.dial_server_keepalive {
                k if k < 0 => None,
                0 => Some(std::time::Duration::from_secs(15)),
                k => Some(std::time::Duration::from_secs(k as u64)),
            },
        }
    }

    /// The wire protocol every logical connection opens with.
    pub fn wire(&self) -> portway_proto::wire::Wire {
        if self.wire_protocol == "v2" {
            portway_proto::wire::Wire::V2
        } else {
            portway_proto::wire::Wire::V1
        }
    }
    /// `transport.quic.*` with frp's defaults filled in.
    pub fn quic_tuning(&self) -> portway_proto::quic::QuicTuning {
        let q = &self.quic;
        portway_proto::quic::QuicTuning::from_keys(q.keepalive_period, q.max_idle_timeout, q.max_incoming_streams)
    }
    /// Effective heartbeat interval in seconds (≤ 0 = off).
    pub fn heartbeat_interval(&self) -> i64 {
        self.heartbeat_interval.unwrap_or(if self.tcp_mux { -1 } else { 30 })
    }
    /// Effective heartbeat timeout in seconds (≤ 0 = off).
    pub fn heartbeat_timeout(&self) -> i64 {
        self.heartbeat_timeout.unwrap_or(if self.tcp_mux { -1 } else { 90 })
    }
}

/// `transport.tls.*` on the client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientTlsConfig {
    pub enable: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trusted_ca_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    pub disable_custom_tls_first_byte: bool,
}

impl Default for ClientTlsConfig {
    fn default() -> Self {
        ClientTlsConfig {
            enable: true,
            cert_file: String::new(),
            key_file: String::new(),
            trusted_ca_file: String::new(),
            server_name: String::new(),
            disable_custom_tls_first_byte: true,
        }
    }
}

/// `log.*`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct LogConfig {
    /// `"console"` (standard error) or a file ([`portway_config::logfile`]: rotated daily, `maxDays` kept).
    pub to: String,
    pub level: String,
    pub max_days: i64,
    /// No colour on the console.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disable_print_color: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { to: "console".into(), level: "info".into(), max_days: 3, disable_print_color: false }
    }
}

/// One `[[proxies]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ProxyConfig {
    pub name: String,
    /// frp's `enabled`: `false` leaves the proxy out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadatas: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "localIP")]
    pub local_ip: String,
    pub local_port: u16,
    pub remote_port: u16,
    pub transport: ProxyTransport,
    /// http / https / tcpmux: names the server routes to this proxy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_domains: Vec<String>,
    /// http / https / tcpmux: served as `<subdomain>.<server's subDomainHost>`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subdomain: String,
    /// http: URL path prefixes routed to this proxy (default: all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
    /// http / tcpmux: basic-auth user the server asks visitors for.
    #[serde(rename = "httpUser", skip_serializing_if = "String::is_empty")]
    pub http_user: String,
    /// See `httpUser`. A secret: never logged.
    #[serde(rename = "httpPassword", skip_serializing_if = "String::is_empty")]
    pub http_password: String,
    /// http: the Host header the local service sees.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host_header_rewrite: String,
    /// http: headers set on every request.
    #[serde(skip_serializing_if = "HeaderOps::is_empty")]
    pub request_headers: HeaderOps,
    /// http: headers set on every response.
    #[serde(skip_serializing_if = "HeaderOps::is_empty")]
    pub response_headers: HeaderOps,
    /// http / tcpmux: route by the visitor's basic-auth user.
    #[serde(rename = "routeByHTTPUser", skip_serializing_if = "String::is_empty")]
    pub route_by_http_user: String,
    /// tcpmux: the only one frp has is "httpconnect".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub multiplexer: String,
    /// `loadBalancer.group` / `groupKey`: proxies of one group (from any client) share their route, taken in turn.
    #[serde(skip_serializing_if = "LoadBalancer::is_empty")]
    pub load_balancer: LoadBalancer,
    /// stcp / sudp (/ xtcp): the secret a visitor must prove. Never logged.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_key: String,
    /// stcp / sudp (/ xtcp): users whose visitors may connect (`"*"`: anyone; empty: this client's own user).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_users: Vec<String>,
    /// xtcp: hole punching settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_traversal: Option<NatTraversal>,
    /// frpc's `healthCheck`: registered only while the local service passes.
    #[serde(skip_serializing_if = "crate::health::HealthCheck::is_empty")]
    pub health_check: crate::health::HealthCheck,
    /// frp's client plugin: the visitor's connection is served by it instead of `localIP:localPort`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<crate::plugin::PluginConfig>,
}

/// `natTraversal` (xtcp proxies and visitors).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct NatTraversal {
    /// Do not advertise this host's interface addresses to the peer.
    pub disable_assisted_addrs: bool,
}

/// One `[[visitors]]` entry: a local entrance to another client's secret proxy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct VisitorConfig {
    pub name: String,
    /// frp's `enabled`: `false` leaves the visitor out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `stcp`, `sudp` or `xtcp`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The provider's proxy name (without its user prefix).
    pub server_name: String,
    /// The provider's `user` (default: this client's own).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_user: String,
    /// The provider's `secretKey`. Never logged.
    pub secret_key: String,
    /// Local address to listen on (default 127.0.0.1).
    pub bind_addr: String,
    /// Local port to listen on; `-1`: no listener (a visitor only other visitors use, as xtcp's `fallbackTo`).
    pub bind_port: i32,
    #[serde(skip_serializing_if = "VisitorTransport::is_empty")]
    pub transport: VisitorTransport,
    /// xtcp only: the reliable stream over the punched socket; `quic` (frp's default; `kcp` is not supported).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// xtcp only: punch at start and keep checking the tunnel every `minRetryInterval` seconds.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_tunnel_open: bool,
    /// xtcp only, with `keepTunnelOpen`: at most this many punches an hour (frp: 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries_an_hour: Option<i64>,
    /// xtcp only, with `keepTunnelOpen`: seconds between tunnel checks (frp: 90).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_retry_interval: Option<i64>,
    /// xtcp only: the stcp visitor to use when hole punching fails.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fallback_to: String,
    /// xtcp only: how long a connection waits for the peer-to-peer tunnel before `fallbackTo` (frp: 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_timeout_ms: Option<i64>,
    /// xtcp only: hole punching settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_traversal: Option<NatTraversal>,
}

impl Default for VisitorConfig {
    fn default() -> Self {
        VisitorConfig {
            name: String::new(),
            enabled: None,
            kind: String::new(),
            server_name: String::new(),
            server_user: String::new(),
            secret_key: String::new(),
            bind_addr: "127.0.0.1".into(),
            bind_port: 0,
            transport: VisitorTransport::default(),
            protocol: String::new(),
            keep_tunnel_open: false,
            max_retries_an_hour: None,
            min_retry_interval: None,
            fallback_to: String::new(),
            fallback_timeout_ms: None,
            nat_traversal: None,
        }
    }
}

/// A visitor's `transport`: its connection to the server is encrypted with / compressed as frp's visitor path does
/// (the key is the `secretKey`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct VisitorTransport {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub use_encryption: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub use_compression: bool,
}

impl VisitorTransport {
    fn is_empty(&self) -> bool {
        !self.use_encryption && !self.use_compression
    }
}

/// `loadBalancer`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancer {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Shared secret of the group. Never logged.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group_key: String,
}

impl LoadBalancer {
    fn is_empty(&self) -> bool {
        self.group.is_empty() && self.group_key.is_empty()
    }
}

/// `requestHeaders` / `responseHeaders`: `set.<name> = "value"`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct HeaderOps {
    pub set: std::collections::BTreeMap<String, String>,
}

impl ProxyConfig {
    /// The NewProxy message registering this proxy under `wire` (its name on the wire), as real frpc fills it.
    pub fn to_new_proxy(&self, wire: &str) -> portway_proto::msg::NewProxy {
        let remote_port = if matches!(self.kind.as_str(), "tcp" | "udp") { i64::from(self.remote_port) } else { 0 };
        portway_proto::msg::NewProxy {
            proxy_name: wire.to_string(),
            proxy_type: self.kind.clone(),
            use_encryption: self.transport.use_encryption,
            use_compression: self.transport.use_compression,
            remote_port,
            custom_domains: self.custom_domains.clone(),
            subdomain: self.subdomain.clone(),
            locations: self.locations.clone(),
            http_user: self.http_user.clone(),
            http_pwd: self.http_password.clone(),
            host_header_rewrite: self.host_header_rewrite.clone(),
            headers: self.request_headers.set.clone(),
            response_headers: self.response_headers.set.clone(),
            route_by_http_user: self.route_by_http_user.clone(),
            multiplexer: self.multiplexer.clone(),
            group: self.load_balancer.group.clone(),
            group_key: self.load_balancer.group_key.clone(),
            sk: self.secret_key.clone(),
            allow_users: self.allow_users.clone(),
            metas: self.metadatas.clone(),
            annotations: self.annotations.clone(),
            bandwidth_limit: self.transport.bandwidth_limit.trim().to_string(),
            // frpc leaves frp's default ("client") out.
            bandwidth_limit_mode: match self.transport.bandwidth_limit_mode.as_str() {
                "client" => String::new(),
                m => m.to_string(),
            },
        }
    }
}

impl HeaderOps {
    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            name: String::new(),
            enabled: None,
            metadatas: Default::default(),
            annotations: Default::default(),
            kind: "tcp".into(),
            local_ip: "127.0.0.1".into(),
            local_port: 0,
            remote_port: 0,
            transport: ProxyTransport::default(),
            custom_domains: Vec::new(),
            subdomain: String::new(),
            locations: Vec::new(),
            http_user: String::new(),
            http_password: String::new(),
            host_header_rewrite: String::new(),
            request_headers: HeaderOps::default(),
            response_headers: HeaderOps::default(),
            route_by_http_user: String::new(),
            multiplexer: String::new(),
            load_balancer: LoadBalancer::default(),
            secret_key: String::new(),
            allow_users: Vec::new(),
            nat_traversal: None,
            health_check: Default::default(),
            plugin: None,
        }
    }
}

/// `[proxies.transport]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ProxyTransport {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub use_encryption: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub use_compression: bool,
    /// "v1" or "v2": a PROXY protocol header with the visitor's address goes to the local service first.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_protocol_version: String,
    /// frp's per-proxy bandwidth limit, `<number>MB` or `<number>KB` per second, both directions together.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bandwidth_limit: String,
    /// Where the limit applies: `client` (frp's default: this client) or `server` (the server limits it).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bandwidth_limit_mode: String,
}

impl ProxyTransport {
    /// The bucket this client applies to the proxy's connections: a `bandwidthLimit` in `client` mode.
    pub fn client_limit(&self) -> Option<u64> {
        if self.bandwidth_limit_mode == "server" {
            return None;
        }
        portway_proto::limit::parse_bandwidth(&self.bandwidth_limit).ok().flatten()
    }
}

/// A loaded configuration plus the warnings found while loading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated config.
    pub config: ClientConfig,
    /// One line per unknown key.
    pub warnings: Vec<String>,
}

impl Loaded {
    /// Appends the proxies of `store.path` (a name the file already has is skipped with a warning, as the file's
    /// entry wins).
    fn add_store(&mut self, file: &str) -> Result<(), ConfigError> {
        let Some(store) = crate::store::Store::of(&self.config) else { return Ok(()) };
        let stored = store.proxies().map_err(|e| ConfigError::Invalid {
            file: file.into(),
            key: "store.path".into(),
            message: e.to_string(),
        })?;
        for p in stored {
            if self.config.proxies.iter().any(|q| q.name == p.name) {
                self.warnings.push(format!(
                    "{}: proxy {:?} is also in {file}; the file's entry is used",
                    store.path().display(),
                    p.name
                ));
            } else {
                self.config.proxies.push(p);
            }
        }
        Ok(())
    }
}

/// Why `transport.protocol = "kcp"` is refused.
pub const KCP_REFUSED: &str = "\"kcp\": KCP is not supported by Portway; use \"quic\" (frps: quicBindPort) or \"tcp\"";

/// Largest `udpPacketSize`: its base64 plus the UDPPacket JSON must fit frp's 10,240-byte message limit.
pub const MAX_UDP_PACKET_SIZE: i64 = 7_500;

/// frpc keys of features Portway does not implement: what each is, what to do, and whether the file is refused.
const UNSUPPORTED: &[portway_config::Unsupported] = &[
    ("virtualNet", "frp's virtual network", "remove it", true),
    ("visitors[].plugin", "a visitor plugin", "remove it: the visitor listens on bindAddr:bindPort", true),
    ("featureGates", "frp's feature gates", "remove it", false),
];

/// How a file is loaded.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// frp's `--strict-config` (default true): an unknown key is an error, not a warning.
    pub strict: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { strict: true }
    }
}

impl ClientConfig {
    /// Reads and validates a file in any format frpc reads (TOML, YAML, JSON, legacy INI), strictly.
    pub fn load(path: &std::path::Path) -> Result<Loaded, ConfigError> {
        Self::load_with(path, LoadOptions::default())
    }

    /// [`Self::load`] with options.
    pub fn load_with(path: &std::path::Path, opts: LoadOptions) -> Result<Loaded, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
        let env = |name: &str| std::env::var(name).ok();
        let mut loaded = Self::parse_full(&text, &file, portway_config::detect(&file, &text), opts, &env, Some(path))?;
        loaded.add_store(&file)?;
        Ok(loaded)
    }

    /// Parses and validates text; `file` names it in messages and its extension picks the format (frp's rule).
    /// `{{ .Envs.NAME }}` is replaced by the environment variable first, as frp does.
    pub fn parse(text: &str, file: &str) -> Result<Loaded, ConfigError> {
        Self::parse_with_env(text, file, |name| std::env::var(name).ok())
    }

    /// [`Self::parse`] with the environment given as a lookup.
    pub fn parse_with_env(text: &str, file: &str, env: impl Fn(&str) -> Option<String>) -> Result<Loaded, ConfigError> {
        Self::parse_full(text, file, portway_config::detect(file, text), LoadOptions::default(), &env, None)
    }

    /// Parses `text` as `format`. `path` (when the text came from a file) anchors `includes`.
    pub fn parse_full(
        text: &str,
        file: &str,
        format: portway_config::Format,
        opts: LoadOptions,
        env: &dyn Fn(&str) -> Option<String>,
        path: Option<&std::path::Path>,
    ) -> Result<Loaded, ConfigError> {
        use portway_config::{Envs, Side};
        let parse_error = |e: portway_config::LoadError| ConfigError::Parse { file: file.into(), message: e.0 };
        let mut tree =
            portway_config::read_tree(text, file, format, Side::Client, Envs::Lookup(env)).map_err(parse_error)?;
        let mut warnings = Vec::new();
        let includes: Vec<String> = match tree.node.get("includes").map(|n| &n.value) {
            Some(portway_config::node::Value::Seq(items)) => items
                .iter()
                .filter_map(|i| match &i.value {
                    portway_config::node::Value::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        if !includes.is_empty() {
            let base = path.unwrap_or(std::path::Path::new(file));
            for inc in portway_config::read_includes(base, &includes).map_err(parse_error)? {
                let inc_file = inc.display().to_string();
                let inc_text = std::fs::read_to_string(&inc)
                    .map_err(|source| ConfigError::Read { file: inc_file.clone(), source })?;
                let inc_error =
                    |e: portway_config::LoadError| ConfigError::Parse { file: inc_file.clone(), message: e.0 };
                let mut inc_tree =
                    portway_config::read_include_tree(&inc_text, &inc_file, Envs::Lookup(env)).map_err(inc_error)?;
                let (_, w): (ClientConfig, _) =
                    portway_config::into_model(&mut inc_tree, &inc_file, Side::Client, UNSUPPORTED, opts.strict)
                        .map_err(inc_error)?;
                warnings.extend(w);
                portway_config::merge_include(&mut tree.node, &inc_tree.node);
            }
        }
        let (mut config, w): (ClientConfig, _) =
            portway_config::into_model(&mut tree, file, Side::Client, UNSUPPORTED, opts.strict).map_err(parse_error)?;
        warnings.extend(w);
        if tree.format == portway_config::Format::Ini {
            warnings.push(format!(
                "{file}: frp's legacy INI format (frp deprecates it); `portway-client convert -c {file}` writes the same \
                 settings as TOML"
            ));
        }
        config.resolve_token_source(file)?;
        let start = config.start.clone();
        let all = config.proxies.len();
        config.proxies.retain(|p| p.enabled != Some(false) && (start.is_empty() || start.contains(&p.name)));
        let all_visitors = config.visitors.len();
        config.visitors.retain(|v| v.enabled != Some(false) && (start.is_empty() || start.contains(&v.name)));
        // Where no proxy was left out, a key's index is the file's, so an error can name the line.
        let tree = (config.proxies.len() == all && config.visitors.len() == all_visitors).then_some(&tree);
        config.validate(file).map_err(|e| e.with_line(tree))?;
        Ok(Loaded { config, warnings })
    }

    /// Loads what can be loaded (the desktop app's Import): the file's own settings must load, and each proxy and
    /// visitor is kept when it loads with them; the others come back as `"proxy name: reason"` lines.
    /// Unknown keys are warnings (not strict).
    pub fn parse_salvage(
        text: &str,
        file: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Loaded, Vec<String>), ConfigError> {
        use portway_config::node::{Node, Value};
        use portway_config::{Envs, Side};
        let opts = LoadOptions { strict: false };
        let parse_error = |e: portway_config::LoadError| ConfigError::Parse { file: file.into(), message: e.0 };
        let format = portway_config::detect(file, text);
        let tree =
            portway_config::read_tree(text, file, format, Side::Client, Envs::Lookup(env)).map_err(parse_error)?;
        let take = |node: &mut Node, key: &str| -> Vec<Node> {
            let Value::Map(entries) = &mut node.value else { return Vec::new() };
            let Some(i) = entries.iter().position(|e| e.key.eq_ignore_ascii_case(key)) else { return Vec::new() };
            match entries.remove(i).node.value {
                Value::Seq(items) => items,
                _ => Vec::new(),
            }
        };
        let mut base = tree.clone();
        let proxies = take(&mut base.node, "proxies");
        let visitors = take(&mut base.node, "visitors");
        let load = |t: &portway_config::Tree| -> Result<Loaded, ConfigError> {
            let mut t = t.clone();
            let (mut config, warnings): (ClientConfig, _) =
                portway_config::into_model(&mut t, file, Side::Client, UNSUPPORTED, opts.strict)
                    .map_err(parse_error)?;
            config.resolve_token_source(file)?;
            config.validate(file)?;
            Ok(Loaded { config, warnings })
        };
        load(&base)?;
        let name_of = |n: &Node| match n.get("name").map(|v| &v.value) {
            Some(Value::Str(s)) => s.clone(),
            _ => "(no name)".to_string(),
        };
        let mut skipped = Vec::new();
        let mut keep = base.clone();
        for p in proxies {
            let mut one = base.clone();
            one.node.push_to("proxies", p.clone());
            match load(&one) {
                Ok(_) => keep.node.push_to("proxies", p),
                Err(e) => skipped.push(format!("proxy {}: {e}", name_of(&p))),
            }
        }
        // Each visitor alone; one that fails alone may load next to those that did (an xtcp visitor's fallbackTo
        // names another visitor). The file's order is kept.
        let one_with = |t: &portway_config::Tree, v: &Node| {
            let mut one = t.clone();
            one.node.push_to("visitors", v.clone());
            load(&one)
        };
        let alone: Vec<bool> = visitors.iter().map(|v| one_with(&base, v).is_ok()).collect();
        let mut loadable = base.clone();
        for (v, _) in visitors.iter().zip(&alone).filter(|(_, ok)| **ok) {
            loadable.node.push_to("visitors", v.clone());
        }
        for (v, ok) in visitors.into_iter().zip(alone) {
            let r = if ok { Ok(()) } else { one_with(&loadable, &v).map(|_| ()) };
            match r {
                Ok(()) => keep.node.push_to("visitors", v),
                Err(e) => skipped.push(format!("visitor {}: {e}", name_of(&v))),
            }
        }
        let mut loaded = load(&keep)?;
        let start = loaded.config.start.clone();
        loaded.config.proxies.retain(|p| p.enabled != Some(false) && (start.is_empty() || start.contains(&p.name)));
        loaded.config.visitors.retain(|v| v.enabled != Some(false) && (start.is_empty() || start.contains(&v.name)));
        Ok((loaded, skipped))
    }

    /// frp's `auth.tokenSource` of type `file`: the token is the file's content, trimmed.
    fn resolve_token_source(&mut self, file: &str) -> Result<(), ConfigError> {
        let Some(src) = self.auth.token_source.take() else { return Ok(()) };
        self.auth.token = portway_config::read_token_source(&src.kind, &src.file.path, !self.auth.token.is_empty())
            .map_err(|message| ConfigError::Invalid { file: file.into(), key: "auth.tokenSource".into(), message })?;
        Ok(())
    }

    /// A file in any format as current TOML (`portway-client convert`): keys respelled as frp spells them, legacy INI
    /// keys mapped, comments where a key was dropped or renamed, `{{ .Envs.X }}` templates kept as written.
    pub fn convert(text: &str, file: &str) -> Result<String, ConfigError> {
        use portway_config::{Envs, Side};
        let parse_error = |e: portway_config::LoadError| ConfigError::Parse { file: file.into(), message: e.0 };
        let format = portway_config::detect(file, text);
        let mut tree = portway_config::read_tree(text, file, format, Side::Client, Envs::Keep).map_err(parse_error)?;
        let report = portway_config::respell::<ClientConfig>(&mut tree);
        Ok(portway_config::convert(text, file, Side::Client, &tree, &report.renamed))
    }

    /// Where the client looks names up (`dnsServer`, checked at load).
    pub fn resolver(&self) -> crate::dns::Resolver {
        crate::dns::Resolver::parse(&self.dns_server).unwrap_or_default()
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: String, message: String| ConfigError::Invalid { file: file.into(), key, message };
        if self.server_addr.trim().is_empty() {
            return Err(bad("serverAddr".into(), "is empty: give the server's host name or IP".into()));
        }
        if self.server_port == 0 {
            return Err(bad("serverPort".into(), "must be 1..=65535".into()));
        }
        crate::dns::Resolver::parse(&self.dns_server).map_err(|m| bad("dnsServer".into(), m))?;
        if let Some(src) = &self.auth.oidc.token_source {
            let o = &self.auth.oidc;
            let others = [
                ("clientID", o.client_id.is_empty()),
                ("clientSecret", o.client_secret.is_empty()),
                ("audience", o.audience.is_empty()),
                ("scope", o.scope.is_empty()),
                ("tokenEndpointURL", o.token_endpoint_url.is_empty()),
                ("additionalEndpointParams", o.additional_endpoint_params.is_empty()),
                ("trustedCaFile", o.trusted_ca_file.is_empty()),
                ("insecureSkipVerify", !o.insecure_skip_verify),
                ("proxyURL", o.proxy_url.is_empty()),
            ];
            let set: Vec<String> =
                others.iter().filter(|(_, empty)| !empty).map(|(k, _)| format!("auth.oidc.{k}")).collect();
            let message = match src.kind.as_str() {
                _ if !set.is_empty() => Some(format!(
                    "the token comes from the source, so it excludes the other auth.oidc keys (frp's rule): remove {} \
                     or the tokenSource",
                    set.join(", ")
                )),
                "file" if src.file.path.trim().is_empty() => {
                    Some("`file.path` is empty: name the file holding the access token".into())
                }
                "file" => None,
                "exec" => Some("type \"exec\" runs a command, which Portway does not do; use type \"file\"".into()),
                t => Some(format!("type {t:?} is not \"file\"")),
            };
            if let Some(m) = message {
                return Err(bad("auth.oidc.tokenSource".into(), m));
            }
        }
        let t = &self.transport;
        if !t.proxy_url.trim().is_empty() {
            crate::via_proxy::ProxyUrl::parse(&t.proxy_url).map_err(|m| bad("transport.proxyURL".into(), m))?;
        }
        if !t.connect_server_local_ip.trim().is_empty()
            && t.connect_server_local_ip.trim().parse::<std::net::IpAddr>().is_err()
        {
            return Err(bad(
                "transport.connectServerLocalIP".into(),
                format!("{:?} is not an IP address of this machine (e.g. \"192.168.1.10\")", t.connect_server_local_ip),
            ));
        }
        let w = &self.web_server;
        if w.pprof_enable {
            return Err(bad(
                "webServer.pprofEnable".into(),
                "Go's pprof profiler does not exist in Portway; remove the key".into(),
            ));
        }
        if !w.assets_dir.is_empty() {
            return Err(bad("webServer.assetsDir".into(), "frpc's web UI pages are not served; remove the key".into()));
        }
        if !w.tls.is_empty() {
            return Err(bad(
                "webServer.tls".into(),
                "the client's admin API is served over plain HTTP only; remove webServer.tls (keep webServer.addr on \
                 127.0.0.1)"
                    .into(),
            ));
        }
        if w.port != 0 {
            let ip = w.addr.parse::<std::net::IpAddr>().map_err(|_| {
                bad("webServer.addr".into(), format!("{:?} is not an IP address (e.g. \"127.0.0.1\")", w.addr))
            })?;
            if !ip.is_loopback() && w.password.is_empty() {
                return Err(bad(
                    "webServer.password".into(),
                    format!(
                        "required when webServer.addr ({}) is not a loopback address: the admin API can rewrite the \
                         configuration and stop the client, so it must not be open to the network without a password",
                        w.addr
                    ),
                ));
            }
        }
        match self.auth.method.as_str() {
            "token" => {}
            // With tokenSource (checked above) the token is read, not requested.
            "oidc" if self.auth.oidc.token_source.is_some() => {}
            "oidc" => {
                if self.auth.oidc.token_endpoint_url.is_empty() {
                    return Err(bad(
                        "auth.oidc.tokenEndpointURL".into(),
                        "required when auth.method = \"oidc\" (or give auth.oidc.tokenSource)".into(),
                    ));
                }
                if self.auth.oidc.client_id.is_empty() {
                    return Err(bad("auth.oidc.clientID".into(), "required when auth.method = \"oidc\"".into()));
                }
            }
            m => return Err(bad("auth.method".into(), format!("{m:?} is not \"token\" or \"oidc\""))),
        }
        for s in &self.auth.additional_scopes {
            if s != "HeartBeats" && s != "NewWorkConns" {
                return Err(bad(
                    "auth.additionalScopes".into(),
                    format!("{s:?} is not \"HeartBeats\" or \"NewWorkConns\""),
                ));
            }
        }
        match self.transport.protocol.as_str() {
            "tcp" => {}
            "websocket" | "wss" | "quic" => {}
            "kcp" => return Err(bad("transport.protocol".into(), KCP_REFUSED.into())),
            p => {
                return Err(bad(
                    "transport.protocol".into(),
                    format!("{p:?} is not one of tcp, kcp, quic, websocket, wss"),
                ))
            }
        }
        self.transport.quic.check().map_err(|(key, m)| bad(key.into(), m))?;
        match self.transport.wire_protocol.as_str() {
            // frp's Complete(): an empty value means v1.
            "" | "v1" | "v2" => {}
            w => {
                return Err(bad(
                    "transport.wireProtocol".into(),
                    format!("{w:?} is not \"v1\" or \"v2\" (v2 needs frps v0.69 or newer, or portway-server)"),
                ))
            }
        }
        if !(1..=MAX_UDP_PACKET_SIZE).contains(&self.udp_packet_size) {
            return Err(bad(
                "udpPacketSize".into(),
                format!(
                    "must be 1..={MAX_UDP_PACKET_SIZE}: a datagram must fit one 10,240-byte frp message after base64"
                ),
            ));
        }
        if self.transport.pool_count < 0 {
            return Err(bad("transport.poolCount".into(), "must be 0 or more".into()));
        }
        let tls = &self.transport.tls;
        if tls.cert_file.is_empty() != tls.key_file.is_empty() {
            return Err(bad("transport.tls.certFile".into(), "certFile and keyFile must be given together".into()));
        }
        if !matches!(self.log.level.as_str(), "trace" | "debug" | "info" | "warn" | "error") {
            return Err(bad(
                "log.level".into(),
                format!("{:?} is not one of trace, debug, info, warn, error", self.log.level),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.proxies.iter().enumerate() {
            let key = |k: &str| format!("proxies[{i}].{k}");
            if p.name.is_empty() {
                return Err(bad(key("name"), "is empty: every proxy needs a unique name".into()));
            }
            if !names.insert(p.name.as_str()) {
                return Err(bad(key("name"), format!("proxy name {:?} is used twice", p.name)));
            }
            match p.kind.as_str() {
                "tcp" | "udp" => {}
                "http" | "https" | "tcpmux" => {
                    if p.custom_domains.iter().all(|d| d.trim().is_empty()) && p.subdomain.is_empty() {
                        return Err(bad(
                            key("customDomains"),
                            format!(
                                "a {} proxy needs customDomains or subdomain (the names the server routes to it)",
                                p.kind
                            ),
                        ));
                    }
                    if p.kind == "tcpmux" && p.multiplexer != "httpconnect" {
                        return Err(bad(
                            key("multiplexer"),
                            format!(
                                "{:?} is not a tcpmux multiplexer: set multiplexer = \"httpconnect\"",
                                p.multiplexer
                            ),
                        ));
                    }
                }
                "stcp" | "sudp" | "xtcp" => {}
                k => return Err(bad(key("type"), format!("{k:?} is not an frp proxy type"))),
            }
            for (what, ops) in [("requestHeaders", &p.request_headers), ("responseHeaders", &p.response_headers)] {
                for (name, value) in &ops.set {
                    let name_ok = !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                    if !name_ok || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                        return Err(bad(
                            key(&format!("{what}.set.{name}")),
                            "is not a valid HTTP header name and value".into(),
                        ));
                    }
                }
            }
            if let Err(e) = crate::proxy_protocol::Version::parse(&p.transport.proxy_protocol_version) {
                return Err(bad(key("transport.proxyProtocolVersion"), e.to_string()));
            }
            if let Some((k, message)) = p.health_check.problem() {
                return Err(bad(key(&format!("healthCheck.{k}")), message));
            }
            if let Err(e) = portway_proto::limit::parse_bandwidth(&p.transport.bandwidth_limit) {
                return Err(bad(key("transport.bandwidthLimit"), e.to_string()));
            }
            if !matches!(p.transport.bandwidth_limit_mode.as_str(), "" | "client" | "server") {
                return Err(bad(
                    key("transport.bandwidthLimitMode"),
                    format!("{:?} is not \"client\" or \"server\"", p.transport.bandwidth_limit_mode),
                ));
            }
            if !matches!(p.kind.as_str(), "stcp" | "sudp" | "xtcp")
                && (!p.secret_key.is_empty() || !p.allow_users.is_empty())
            {
                return Err(bad(
                    key(if p.secret_key.is_empty() { "allowUsers" } else { "secretKey" }),
                    format!("applies to stcp, sudp and xtcp proxies, not {} (proxy {:?})", p.kind, p.name),
                ));
            }
            if matches!(p.kind.as_str(), "udp" | "sudp") && !p.transport.proxy_protocol_version.is_empty() {
                return Err(bad(
                    key("transport.proxyProtocolVersion"),
                    format!("applies to tcp, stcp, http, https and tcpmux proxies, not {}", p.kind),
                ));
            }
            if let Some(plugin) = &p.plugin {
                plugin.check().map_err(|(k, m)| bad(key(&format!("plugin.{k}")), m))?;
                if matches!(p.kind.as_str(), "udp" | "sudp") {
                    return Err(bad(
                        key("plugin"),
                        format!("plugins serve TCP connections: not a {} proxy (proxy {:?})", p.kind, p.name),
                    ));
                }
            } else if p.local_port == 0 {
                return Err(bad(key("localPort"), format!("proxy {:?} needs the local service's port", p.name)));
            }
            if p.local_ip.parse::<std::net::IpAddr>().is_err() && p.local_ip.is_empty() {
                return Err(bad(key("localIP"), "is empty".into()));
            }
        }
        self.validate_visitors(file)
    }

    fn validate_visitors(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: String, message: String| ConfigError::Invalid { file: file.into(), key, message };
        let mut names = std::collections::HashSet::new();
        let mut binds = std::collections::HashSet::new();
        for (i, v) in self.visitors.iter().enumerate() {
            let key = |k: &str| format!("visitors[{i}].{k}");
            if v.name.is_empty() {
                return Err(bad(key("name"), "is empty: every visitor needs a unique name".into()));
            }
            if !names.insert(v.name.as_str()) {
                return Err(bad(key("name"), format!("visitor name {:?} is used twice", v.name)));
            }
            match v.kind.as_str() {
                "stcp" | "sudp" | "xtcp" => {}
                "" => return Err(bad(key("type"), format!("visitor {:?} needs a type: stcp, sudp or xtcp", v.name))),
                k => {
                    return Err(bad(
                        key("type"),
                        format!("{k:?} is not a visitor type: stcp, sudp or xtcp (the type of the proxy it reaches)"),
                    ))
                }
            }
            if v.server_name.is_empty() {
                return Err(bad(
                    key("serverName"),
                    format!("visitor {:?} needs the name of the proxy it reaches", v.name),
                ));
            }
            if v.bind_port < -1 || v.bind_port > 65535 {
                return Err(bad(
                    key("bindPort"),
                    format!("{} is not a port (1-65535, or -1 for no listener)", v.bind_port),
                ));
            }
            if v.bind_port == 0 {
                return Err(bad(
                    key("bindPort"),
                    format!("visitor {:?} needs the local port to listen on (or -1 for no listener)", v.name),
                ));
            }
            if v.bind_port > 0 {
                if v.bind_addr.parse::<std::net::IpAddr>().is_err() {
                    return Err(bad(
                        key("bindAddr"),
                        format!("{:?} is not an IP address (e.g. \"127.0.0.1\")", v.bind_addr),
                    ));
                }
                if !binds.insert((v.kind == "sudp", v.bind_addr.as_str(), v.bind_port)) {
                    return Err(bad(
                        key("bindPort"),
                        format!("{}:{} is used by another visitor of this file", v.bind_addr, v.bind_port),
                    ));
                }
            }
            if v.kind != "xtcp" && !v.fallback_to.is_empty() {
                return Err(bad(key("fallbackTo"), "applies to xtcp visitors only".into()));
            }
            if v.kind == "xtcp" {
                if !matches!(v.protocol.as_str(), "" | "quic") {
                    return Err(bad(
                        key("protocol"),
                        format!(
                            "{:?}: Portway's xtcp speaks quic over the punched socket (kcp is not supported yet); \
                             remove protocol or set it to \"quic\"",
                            v.protocol
                        ),
                    ));
                }
                if !v.fallback_to.is_empty() {
                    let target = self.visitors.iter().find(|o| o.name == v.fallback_to);
                    match target {
                        Some(o) if o.kind == "stcp" => {}
                        Some(o) => {
                            return Err(bad(
                                key("fallbackTo"),
                                format!("visitor {:?} is {}, a fallback must be an stcp visitor", o.name, o.kind),
                            ))
                        }
                        None => {
                            return Err(bad(
                                key("fallbackTo"),
                                format!(
                                    "no visitor named {:?} in this file (add an stcp visitor with that name)",
                                    v.fallback_to
                                ),
                            ))
                        }
                    }
                }
                if v.max_retries_an_hour.is_some_and(|n| n <= 0) {
                    return Err(bad(key("maxRetriesAnHour"), "must be at least 1".into()));
                }
                if v.fallback_timeout_ms.is_some_and(|n| n < 0) {
                    return Err(bad(key("fallbackTimeoutMs"), "must not be negative".into()));
                }
            }
        }
        Ok(())
    }

    /// The proxy name a visitor asks the server for (frp: `serverUser.serverName`, the visitor's own `user` when
    /// `serverUser` is empty, the bare name when neither is set).
    pub fn visitor_server_name(&self, v: &VisitorConfig) -> String {
        let user = if v.server_user.is_empty() { &self.user } else { &v.server_user };
        if user.is_empty() {
            v.server_name.clone()
        } else {
            format!("{user}.{}", v.server_name)
        }
    }

    /// The name a proxy is registered under on the wire (`user.name` when `user` is set, as frp does).
    pub fn wire_name(&self, p: &ProxyConfig) -> String {
        if self.user.is_empty() {
            p.name.clone()
        } else {
            format!("{}.{}", self.user, p.name)
        }
    }

    /// The NewProxy message registering `p`, with frp's field names (what real frpc sends).
    pub fn new_proxy(&self, p: &ProxyConfig) -> portway_proto::msg::NewProxy {
        p.to_new_proxy(&self.wire_name(p))
    }

    /// The TLS settings for rustls.
    pub fn client_tls(&self) -> portway_proto::transport::ClientTls {
        let p = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        let t = &self.transport.tls;
        portway_proto::transport::ClientTls {
            trusted_ca_file: p(&t.trusted_ca_file),
            cert_file: p(&t.cert_file),
            key_file: p(&t.key_file),
            verify: false,
        }
    }

    /// Writes the config back as frpc.toml.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_limits_as_frpc_sends_them() {
        let t = "[[proxies]]\nname = \"a\"\ntype = \"tcp\"\nlocalPort = 1\ntransport.bandwidthLimit = \"1MB\"\n\
                 [[proxies]]\nname = \"b\"\ntype = \"tcp\"\nlocalPort = 1\ntransport.bandwidthLimit = \"500KB\"\n\
                 transport.bandwidthLimitMode = \"server\"\n";
        let c = ClientConfig::parse(t, "f.toml").unwrap().config;
        let (a, b) = (c.proxies[0].to_new_proxy("a"), c.proxies[1].to_new_proxy("b"));
        // frpc leaves its default mode ("client") out of NewProxy.
        assert_eq!((a.bandwidth_limit.as_str(), a.bandwidth_limit_mode.as_str()), ("1MB", ""));
        assert_eq!((b.bandwidth_limit.as_str(), b.bandwidth_limit_mode.as_str()), ("500KB", "server"));
        assert_eq!(c.proxies[0].transport.client_limit(), Some(1024 * 1024));
        assert_eq!(c.proxies[1].transport.client_limit(), None, "the server applies it");
        let e = |t: &str| ClientConfig::parse(t, "f.toml").unwrap_err().to_string();
        let x = e("[[proxies]]\nname = \"a\"\ntype = \"tcp\"\nlocalPort = 1\ntransport.bandwidthLimit = \"1Gbit\"\n");
        assert!(x.contains("transport.bandwidthLimit") && x.contains("\"1MB\""), "{x}");
        let x =
            e("[[proxies]]\nname = \"a\"\ntype = \"tcp\"\nlocalPort = 1\ntransport.bandwidthLimitMode = \"both\"\n");
        assert!(x.contains("transport.bandwidthLimitMode") && x.contains("\"both\""), "{x}");
    }

    #[test]
    fn seed_parses() {
        let text = "serverAddr = \"127.0.0.1\"\nserverPort = 7000\nauth.method = \"oidc\"\nauth.oidc.clientID = \"c\"\nauth.oidc.clientSecret = \"s\"\nauth.oidc.tokenEndpointURL = \"http://127.0.0.1:9000/application/o/token/\"\n\n[[proxies]]\nname = \"TS3-Voice\"\ntype = \"udp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = 9987\nremotePort = 9987\n";
        let l = ClientConfig::parse(text, "frpc.toml").unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.config.auth.oidc.client_id, "c");
        assert_eq!(l.config.proxies[0].kind, "udp");
        assert!(l.config.transport.tls.enable && l.config.transport.tcp_mux);
        assert_eq!(l.config.transport.heartbeat_interval(), -1);
    }

    #[test]
    fn errors_name_the_key() {
        let e = ClientConfig::parse("[[proxies]]\nname = \"a\"\ntype = \"ftp\"\nlocalPort = 1\n", "f").unwrap_err();
        assert!(e.to_string().contains("`proxies[0].type`"), "{e}");
        let e = ClientConfig::parse("[[proxies]]\nname = \"a\"\ntype = \"http\"\nlocalPort = 1\n", "f").unwrap_err();
        assert!(e.to_string().contains("`proxies[0].customDomains`"), "{e}");
        let e = ClientConfig::parse(
            "[[proxies]]\nname = \"a\"\ntype = \"tcpmux\"\nlocalPort = 1\ncustomDomains = [\"a.test\"]\n",
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("`proxies[0].multiplexer`"), "{e}");
        let e = ClientConfig::parse(
            "[[proxies]]\nname = \"a\"\nlocalPort = 1\n[[proxies]]\nname = \"a\"\nlocalPort = 2\n",
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("proxies[1].name"), "{e}");
        let e = ClientConfig::parse("transport.protocol = \"kcp\"\n", "f").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("`transport.protocol`"), "{e}");
        assert!(e.contains("KCP is not supported by Portway; use \"quic\""), "{e}");
        let q = ClientConfig::parse(
            "transport.protocol = \"quic\"\n[transport.quic]\nkeepalivePeriod = 5\nmaxIdleTimeout = 20\n",
            "f",
        )
        .unwrap()
        .config;
        let t = q.transport.quic_tuning();
        assert_eq!(
            (t.keepalive_period.as_secs(), t.max_idle_timeout.as_secs(), t.max_incoming_streams),
            (5, 20, 100_000)
        );
        let e = ClientConfig::parse("transport.quic.maxIdleTimeout = -1\n", "f").unwrap_err().to_string();
        assert!(e.contains("`transport.quic.maxIdleTimeout`: must be 0"), "{e}");
        // frp's --strict-config: unknown keys are errors by default, warnings without it; both name the line.
        let e = ClientConfig::parse("serverPort = 7000\nfoo.bar = 1\n", "f").unwrap_err().to_string();
        assert!(e.contains("line 2: unknown key `foo`") && e.contains("--strict-config=false"), "{e}");
        let lenient = |t: &str| {
            ClientConfig::parse_full(
                t,
                "f.toml",
                portway_config::Format::Toml,
                LoadOptions { strict: false },
                &|_| None,
                None,
            )
        };
        let l = lenient("serverPort = 7000\nfoo.bar = 1\n").unwrap();
        assert!(l.warnings[0].contains("unknown key `foo`"), "{:?}", l.warnings);
        let l = lenient("[transport]\ntcpMuxx = true\n").unwrap();
        assert!(
            l.warnings[0].contains("line 2: unknown key `transport.tcpMuxx` (did you mean `tcpMux`?)"),
            "{:?}",
            l.warnings
        );
        // frp matches keys without regard to case.
        let l = ClientConfig::parse("[[proxies]]\nname = \"a\"\nlocalIp = \"10.0.0.1\"\nlocalport = 1\n", "f").unwrap();
        assert_eq!((l.config.proxies[0].local_ip.as_str(), l.config.proxies[0].local_port), ("10.0.0.1", 1));
        // A real frp key Portway lacks says so, never "check its spelling".
        let l = ClientConfig::parse("featureGates = { VirtualNet = true }\n", "f").unwrap();
        assert!(
            l.warnings[0].contains("`featureGates` is frp's feature gates; Portway does not support it yet"),
            "{:?}",
            l.warnings
        );
        // auth.oidc.tokenSource: a file, alone among the auth.oidc keys.
        let base = "auth.method = \"oidc\"\nauth.oidc.tokenSource.type = \"file\"\n";
        let l = ClientConfig::parse(&format!("{base}auth.oidc.tokenSource.file.path = \"/run/token\"\n"), "f").unwrap();
        assert_eq!(l.config.auth.oidc.token_file(), Some("/run/token"));
        let e = ClientConfig::parse(
            &format!("{base}auth.oidc.tokenSource.file.path = \"/t\"\nauth.oidc.clientID = \"x\"\n"),
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("auth.oidc.tokenSource") && e.contains("remove auth.oidc.clientID"), "{e}");
        let e = ClientConfig::parse(base, "f").unwrap_err().to_string();
        assert!(e.contains("`file.path` is empty"), "{e}");
        let e = ClientConfig::parse(&base.replace("file", "exec"), "f").unwrap_err().to_string();
        assert!(e.contains("use type \"file\""), "{e}");
        // dnsServer: an address, the port optional; a name is refused saying why.
        let l = ClientConfig::parse("dnsServer = \"8.8.8.8\"\n", "f").unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.config.resolver(), crate::dns::Resolver::Server("8.8.8.8:53".parse().unwrap()));
        let e = ClientConfig::parse("dnsServer = \"dns.google\"\n", "f").unwrap_err().to_string();
        assert!(e.contains("dnsServer") && e.contains("give its address"), "{e}");
        // The admin API: loopback by default; a public address needs a password.
        let l = ClientConfig::parse("webServer.port = 7400\n", "f").unwrap();
        assert_eq!((l.config.web_server.addr.as_str(), l.config.web_server.port), ("127.0.0.1", 7400));
        let e = ClientConfig::parse("webServer.addr = \"0.0.0.0\"\nwebServer.port = 7400\n", "f").unwrap_err();
        assert!(e.to_string().contains("`webServer.password`"), "{e}");
        let e = ClientConfig::parse("[[visitors]]\nname = \"v\"\n", "f").unwrap_err();
        assert!(e.to_string().contains("`visitors[0].type`"), "{e}");
    }

    #[test]
    fn secret_proxies_and_visitors_load_from_every_format() {
        let toml = "user = \"bob\"\n[[proxies]]\nname = \"s\"\ntype = \"stcp\"\nsecretKey = \"k\"\nallowUsers = [\"*\"]\n\
                    localPort = 22\n[[visitors]]\nname = \"v\"\ntype = \"stcp\"\nserverName = \"s\"\nserverUser = \"alice\"\n\
                    secretKey = \"k\"\nbindPort = 9000\ntransport.useEncryption = true\nkeepTunnelOpen = true\n\
                    [[visitors]]\nname = \"u\"\ntype = \"sudp\"\nserverName = \"s\"\nsecretKey = \"k\"\nbindPort = -1\n";
        let c = ClientConfig::parse(toml, "f.toml").unwrap().config;
        assert_eq!(
            (c.proxies[0].secret_key.as_str(), c.proxies[0].allow_users.as_slice()),
            ("k", &["*".to_string()][..])
        );
        let np = c.new_proxy(&c.proxies[0]);
        assert_eq!((np.proxy_name.as_str(), np.sk.as_str(), np.remote_port), ("bob.s", "k", 0));
        assert_eq!(c.visitors.len(), 2);
        assert_eq!((c.visitors[0].bind_addr.as_str(), c.visitors[0].bind_port), ("127.0.0.1", 9000));
        assert!(c.visitors[0].transport.use_encryption && c.visitors[0].keep_tunnel_open);
        assert_eq!(c.visitor_server_name(&c.visitors[0]), "alice.s");
        assert_eq!(c.visitor_server_name(&c.visitors[1]), "bob.s");
        assert_eq!(c.visitors[1].bind_port, -1);
        // frp's legacy INI: `role = visitor` sections become [[visitors]].
        let ini =
            "[common]\nuser = bob\n[v]\nrole = visitor\ntype = stcp\nserver_name = s\nserver_user = alice\nsk = k\n\
                   bind_port = 9000\nuse_encryption = true\n";
        let i = ClientConfig::parse(ini, "f.ini").unwrap().config;
        assert_eq!(i.visitors[0].secret_key, "k");
        assert_eq!(i.visitor_server_name(&i.visitors[0]), "alice.s");
        assert_eq!((i.visitors[0].bind_port, i.visitors[0].transport.use_encryption), (9000, true));
        let yaml = "user: bob\nvisitors:\n  - name: v\n    type: sudp\n    serverName: s\n    secretKey: k\n    bindPort: 9001\n";
        let y = ClientConfig::parse(yaml, "f.yaml").unwrap().config;
        assert_eq!((y.visitors[0].kind.as_str(), y.visitors[0].bind_port), ("sudp", 9001));
        // Bad input names the key and the thing.
        let e = |t: &str| ClientConfig::parse(t, "f.toml").unwrap_err().to_string();
        let x =
            e("[[visitors]]\nname = \"p2p\"\ntype = \"xtcp\"\nserverName = \"s\"\nbindPort = 1\nprotocol = \"kcp\"\n");
        assert!(x.contains("`visitors[0].protocol`") && x.contains("kcp is not supported yet"), "{x}");
        let x = e(
            "[[visitors]]\nname = \"p2p\"\ntype = \"xtcp\"\nserverName = \"s\"\nbindPort = 1\nfallbackTo = \"nope\"\n",
        );
        assert!(x.contains("`visitors[0].fallbackTo`") && x.contains("\"nope\""), "{x}");
        let ok = "natHoleStunServer = \"127.0.0.1:3478\"\n[[proxies]]\nname = \"p2p\"\ntype = \"xtcp\"\nsecretKey = \"k\"\n\
                  localPort = 22\nnatTraversal.disableAssistedAddrs = true\n[[visitors]]\nname = \"x\"\ntype = \"xtcp\"\n\
                  serverName = \"p2p\"\nbindPort = 9000\nfallbackTo = \"s\"\nfallbackTimeoutMs = 500\nkeepTunnelOpen = true\n\
                  [[visitors]]\nname = \"s\"\ntype = \"stcp\"\nserverName = \"p2p-stcp\"\nbindPort = -1\n";
        let l = ClientConfig::parse(ok, "f.toml").unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.config.nat_hole_stun_server, "127.0.0.1:3478");
        assert_eq!(l.config.visitors[0].fallback_timeout_ms, Some(500));
        let x = e("[[visitors]]\nname = \"v\"\ntype = \"stcp\"\nbindPort = 1\n");
        assert!(x.contains("`visitors[0].serverName`"), "{x}");
        let x = e("[[visitors]]\nname = \"v\"\ntype = \"stcp\"\nserverName = \"s\"\n");
        assert!(x.contains("`visitors[0].bindPort`") && x.contains("-1"), "{x}");
        let x = e("[[visitors]]\nname = \"v\"\ntype = \"tcp\"\nserverName = \"s\"\nbindPort = 1\n");
        assert!(x.contains("`visitors[0].type`") && x.contains("stcp, sudp or xtcp"), "{x}");
        let x = e("[[proxies]]\nname = \"p\"\nsecretKey = \"hunter2\"\nlocalPort = 22\n");
        assert!(x.contains("`proxies[0].secretKey`") && !x.contains("hunter2"), "{x}");
        let x = e("[[visitors]]\nname = \"v\"\ntype = \"stcp\"\nserverName = \"s\"\nbindPort = 1\nplugin.type = \"virtual_net\"\n");
        assert!(x.contains("visitor plugin"), "{x}");
    }

    #[test]
    fn export_round_trips() {
        let l =
            ClientConfig::parse("serverPort = 7001\n[[proxies]]\nname = \"a\"\nlocalPort = 1\nremotePort = 2\n", "f")
                .unwrap();
        let again = ClientConfig::parse(&l.config.to_toml(), "f").unwrap();
        assert_eq!(again.config, l.config);
    }

    /// frp's `{{ .Envs.NAME }}`: a secret kept out of the file, with errors that name the variable and never
    /// quote its value.
    #[test]
    fn environment_templates_are_substituted_and_never_leak_into_errors() {
        let env = |name: &str| match name {
            "FRP_SECRET" => Some("env-secret-1234".to_string()),
            "FRP_PORT" => Some("7001".to_string()),
            "BROKEN" => Some("has\"quote-secret".to_string()),
            _ => None,
        };
        let text = "serverAddr = \"127.0.0.1\"\nserverPort = {{ .Envs.FRP_PORT }}\nauth.method = \"oidc\"\n\
                    auth.oidc.clientID = \"c\"\nauth.oidc.clientSecret = \"{{ .Envs.FRP_SECRET }}\"\n\
                    auth.oidc.tokenEndpointURL = \"http://127.0.0.1:9000/application/o/token/\"\n";
        let l = ClientConfig::parse_with_env(text, "frpc.toml", env).unwrap();
        assert_eq!(l.config.server_port, 7001);
        assert_eq!(l.config.auth.oidc.client_secret, "env-secret-1234");

        let e = ClientConfig::parse_with_env("user = \"{{ .Envs.UNSET_VAR }}\"\n", "frpc.toml", env).unwrap_err();
        assert_eq!(e.to_string(), "frpc.toml: line 1: environment variable UNSET_VAR (used as `{{ .Envs.UNSET_VAR }}`) is not set; set it, or put the value in the file (frp would substitute an empty string)");

        let e =
            ClientConfig::parse_with_env("serverPort = 7000\nauth.token = \"{{ .Envs.BROKEN }}\"\n", "frpc.toml", env)
                .unwrap_err()
                .to_string();
        assert!(e.contains("line 2") && e.contains("{{ .Envs.BROKEN }}"), "{e}");
        assert!(!e.contains("quote-secret"), "the value must not appear: {e}");
    }
}
