//! `frps.toml`: frp's server configuration keys (v0.52+ TOML, camelCase), validated once at load.
//!
//! Unknown keys produce warnings that name the key's path; frp keys for features Portway does not have produce
//! an error naming the key, never a silent ignore.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// A configuration problem, with the key and the fix.
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
        /// The file (or "<string>").
        file: String,
        /// The key's path.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// An frp feature Portway does not implement.
    #[error("{file}: `{key}` is an frp feature Portway does not support yet; remove the key ({hint})")]
    Unsupported {
        /// The file.
        file: String,
        /// The key's path.
        key: String,
        /// What it is.
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
            other => other,
        }
    }
}

/// The whole `frps.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerConfig {
    pub bind_addr: String,
    pub bind_port: u16,
    /// Address the public proxy ports listen on (default: `bindAddr`).
    pub proxy_bind_addr: String,
    pub auth: AuthConfig,
    pub allow_ports: Vec<PortRange>,
    pub max_ports_per_client: i64,
    /// frps's `detailedErrorsToClient` (default true): refusals sent to clients carry the reason; off, only frps's
    /// summary ("register control error", "new proxy [NAME] error", ...); the server's log keeps the reason.
    pub detailed_errors_to_client: bool,
    pub user_conn_timeout: i64,
    /// frps's xtcp statistics lifetime (hours): accepted, no effect (Portway keeps no punching statistics).
    pub nathole_analysis_data_reserve_hours: i64,
    pub udp_packet_size: i64,
    /// Port of the HTTP virtual-host listener (0: off; `http` proxies are refused).
    #[serde(rename = "vhostHTTPPort")]
    pub vhost_http_port: u16,
    /// Port of the HTTPS (SNI) virtual-host listener (0: off; `https` proxies are refused).
    #[serde(rename = "vhostHTTPSPort")]
    pub vhost_https_port: u16,
    /// Seconds the HTTP vhost waits for a client's response headers (frp: 60).
    #[serde(rename = "vhostHTTPTimeout")]
    pub vhost_http_timeout: i64,
    /// `subdomain = "x"` proxies are served as `x.<subDomainHost>`; custom domains under it are refused.
    pub sub_domain_host: String,
    /// A file whose content replaces frp's 404 page on the HTTP vhost.
    #[serde(rename = "custom404Page")]
    pub custom_404_page: String,
    /// Port of the tcpmux HTTP CONNECT listener (0: off).
    #[serde(rename = "tcpmuxHTTPConnectPort")]
    pub tcpmux_http_connect_port: u16,
    /// Forward the CONNECT request itself to the client instead of answering it.
    pub tcpmux_passthrough: bool,
    /// UDP port of the QUIC listener on `bindAddr` (0: off); clients use `transport.protocol = "quic"`.
    #[serde(rename = "quicBindPort")]
    pub quic_bind_port: u16,
    /// frps's KCP listener: refused at load (Portway has no KCP).
    #[serde(rename = "kcpBindPort")]
    pub kcp_bind_port: u16,
    pub transport: TransportConfig,
    pub log: LogConfig,
    /// The dashboard API (and `/metrics`): off unless `webServer.port` is set.
    pub web_server: WebServerConfig,
    /// Serve Prometheus metrics at `/metrics` on the webServer.
    pub enable_prometheus: bool,
    /// frp's server plugins: HTTP services asked before Login, NewProxy, Ping, NewWorkConn, NewUserConn and told
    /// of CloseProxy.
    pub http_plugins: Vec<HttpPluginConfig>,
    /// Portway extensions (not frp keys): per-client policy, session expiry.
    pub portway: PortwayConfig,
}

/// The operations a server plugin can be asked about (frp's names).
pub const PLUGIN_OPS: &[&str] = &["Login", "NewProxy", "CloseProxy", "Ping", "NewWorkConn", "NewUserConn"];

/// One `[[httpPlugins]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpPluginConfig {
    /// Names the plugin in logs.
    pub name: String,
    /// `host:port`, or a URL prefix `http://host:port` / `https://host:port`.
    pub addr: String,
    /// The request path (e.g. `/handler`).
    pub path: String,
    /// The operations sent to this plugin ([`PLUGIN_OPS`]).
    pub ops: Vec<String>,
    /// Verify the plugin's TLS certificate (`https://` addr); frp's default is false.
    #[serde(rename = "tlsVerify")]
    pub tls_verify: bool,
}

/// `webServer.*`: where the dashboard API listens and who may use it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WebServerConfig {
    /// Listen address (default 127.0.0.1).
    pub addr: String,
    /// Listen port; 0 = no API.
    pub port: u16,
    /// Basic-auth user.
    pub user: String,
    /// Basic-auth password (empty: no auth, only allowed on a loopback address).
    pub password: String,
    /// HTTPS instead of HTTP.
    pub tls: WebTlsConfig,
    /// Go's pprof endpoints: refused, Portway has none.
    pub pprof_enable: bool,
    /// frps's dashboard pages from a directory: refused, this build serves the API only.
    pub assets_dir: String,
}

impl Default for WebServerConfig {
    fn default() -> Self {
        WebServerConfig {
            addr: "127.0.0.1".into(),
            port: 0,
            user: String::new(),
            password: String::new(),
            tls: WebTlsConfig::default(),
            pprof_enable: false,
            assets_dir: String::new(),
        }
    }
}

/// `webServer.tls.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WebTlsConfig {
    pub cert_file: String,
    pub key_file: String,
}

/// `[portway]`: settings frps does not have.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PortwayConfig {
    /// Clock skew tolerated on token `exp`/`nbf`, seconds (frps: none).
    pub token_leeway: i64,
    /// Failed logins per source address per minute before its connections are refused (0: no limit).
    pub max_login_failures: u32,
    /// Close a session whose OIDC token expired and was not renewed by a heartbeat or work connection.
    pub close_expired_sessions: bool,
    /// Per-identity rules, first match wins.
    pub clients: Vec<ClientRule>,
    /// The rule for identities no `clients` entry matches; none = only frp's global limits apply.
    pub default_client: Option<ClientRule>,
    /// Seconds a visitor of the HTTP vhost has to send a request head before its connection is closed (frps: 60,
    /// fixed): what cuts a slowloris.
    pub vhost_read_header_timeout: i64,
    /// Seconds a server plugin (`[[httpPlugins]]`) has to answer one request before the operation is refused
    /// (frps: no limit).
    pub plugin_timeout: i64,
}

/// What one client identity may do. Empty lists mean "no restriction beyond the global ones".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientRule {
    /// Matches the token's `sub`.
    pub subject: String,
    /// Matches the token's `azp` / `client_id`.
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// Remote ports this client may open.
    pub allow_ports: Vec<PortRange>,
    /// Proxy name patterns (`*` matches any run of characters) this client may register.
    pub allow_proxy_names: Vec<String>,
    /// Custom domain patterns (`*` glob, case-insensitive) this client's http/https/tcpmux proxies may claim.
    pub allow_domains: Vec<String>,
    /// Subdomain patterns (`*` glob, case-insensitive) this client's proxies may claim under `subDomainHost`.
    pub allow_subdomains: Vec<String>,
    /// Proxy types (`tcp`, `udp`, `http`, `https`, `tcpmux`, `stcp`, `sudp`, `xtcp`) this client may register.
    pub allow_proxy_types: Vec<String>,
    /// Secret proxies (stcp/sudp, by the name the server knows them: `user.name`, `*` glob) this client's
    /// visitors may reach, on top of the provider's `allowUsers`.
    pub allow_visitors: Vec<String>,
}

impl ClientRule {
    fn matches(&self, subject: &str, client_id: &str) -> bool {
        (!self.subject.is_empty() && self.subject == subject)
            || (!self.client_id.is_empty() && self.client_id == client_id)
    }

    /// Whether `port` is allowed by this rule.
    pub fn port_allowed(&self, port: u16) -> bool {
        self.allow_ports.is_empty() || self.allow_ports.iter().any(|r| r.contains(port))
    }

    /// Whether a custom domain is allowed by this rule.
    pub fn domain_allowed(&self, domain: &str) -> bool {
        let d = domain.to_ascii_lowercase();
        self.allow_domains.is_empty() || self.allow_domains.iter().any(|p| glob_match(&p.to_ascii_lowercase(), &d))
    }

    /// Whether a subdomain is allowed by this rule.
    pub fn subdomain_allowed(&self, subdomain: &str) -> bool {
        let d = subdomain.to_ascii_lowercase();
        self.allow_subdomains.is_empty()
            || self.allow_subdomains.iter().any(|p| glob_match(&p.to_ascii_lowercase(), &d))
    }

    /// Whether a proxy `name` is allowed by this rule.
    pub fn name_allowed(&self, name: &str) -> bool {
        self.allow_proxy_names.is_empty() || self.allow_proxy_names.iter().any(|p| glob_match(p, name))
    }

    /// Whether a proxy type is allowed by this rule.
    pub fn type_allowed(&self, proxy_type: &str) -> bool {
        self.allow_proxy_types.is_empty() || self.allow_proxy_types.iter().any(|t| t == proxy_type)
    }

    /// Whether this client's visitors may reach the secret proxy the server knows as `name` (`user.name`).
    pub fn visitor_allowed(&self, name: &str) -> bool {
        self.allow_visitors.is_empty() || self.allow_visitors.iter().any(|p| glob_match(p, name))
    }
}

/// The proxy types this server serves (what `allowProxyTypes` may list).
pub const PROXY_TYPES: [&str; 8] = ["tcp", "udp", "http", "https", "tcpmux", "stcp", "sudp", "xtcp"];

/// `*`-only glob matching.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl Default for PortwayConfig {
    fn default() -> Self {
        PortwayConfig {
            token_leeway: crate::token::LEEWAY_SECS,
            max_login_failures: 10,
            close_expired_sessions: false,
            clients: Vec::new(),
            default_client: None,
            vhost_read_header_timeout: 60,
            plugin_timeout: 10,
        }
    }
}

impl PortwayConfig {
    /// The rule for an identity and its name in the config (for refusal messages).
    pub fn rule_for(&self, subject: &str, client_id: &str) -> Option<(String, &ClientRule)> {
        if let Some((i, r)) = self.clients.iter().enumerate().find(|(_, r)| r.matches(subject, client_id)) {
            return Some((format!("portway.clients[{i}]"), r));
        }
        self.default_client.as_ref().map(|r| ("portway.defaultClient".to_string(), r))
    }
}

impl ServerConfig {
    /// What a refusal tells the client: the reason, or with `detailedErrorsToClient = false` only `summary`
    /// (frps's words for the step that failed).
    pub fn error_to_client(&self, summary: impl FnOnce() -> String, reason: String) -> String {
        if self.detailed_errors_to_client {
            reason
        } else {
            summary()
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind_addr: "0.0.0.0".into(),
            bind_port: 7000,
            proxy_bind_addr: String::new(),
            auth: AuthConfig::default(),
            allow_ports: Vec::new(),
            max_ports_per_client: 0,
            detailed_errors_to_client: true,
            user_conn_timeout: 10,
            nathole_analysis_data_reserve_hours: 168,
            udp_packet_size: 1500,
            vhost_http_port: 0,
            vhost_https_port: 0,
            vhost_http_timeout: 60,
            sub_domain_host: String::new(),
            custom_404_page: String::new(),
            tcpmux_http_connect_port: 0,
            tcpmux_passthrough: false,
            quic_bind_port: 0,
            kcp_bind_port: 0,
            transport: TransportConfig::default(),
            log: LogConfig::default(),
            web_server: WebServerConfig::default(),
            enable_prometheus: false,
            http_plugins: Vec::new(),
            portway: PortwayConfig::default(),
        }
    }
}

/// `auth.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthConfig {
    pub method: String,
    pub token: String,
    /// frp's `auth.tokenSource`: the token read from a file at load.
    pub token_source: Option<TokenSource>,
    pub additional_scopes: Vec<String>,
    pub oidc: OidcServerConfig,
}

/// `auth.tokenSource`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TokenSource {
    #[serde(rename = "type")]
    pub kind: String,
    pub file: TokenFile,
}

/// `auth.tokenSource.file`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TokenFile {
    pub path: String,
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

/// `auth.oidc.*` on the server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OidcServerConfig {
    pub issuer: String,
    pub audience: String,
    pub skip_expiry_check: bool,
    pub skip_issuer_check: bool,
}

/// One `allowPorts` entry: `{ start = 2000, end = 3000 }` or `{ single = 3001 }`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct PortRange {
    pub start: u32,
    pub end: u32,
    pub single: u32,
}

impl PortRange {
    /// Whether `port` is inside this entry.
    pub fn contains(&self, port: u16) -> bool {
        let p = u32::from(port);
        if self.single != 0 {
            p == self.single
        } else {
            self.start <= p && p <= self.end
        }
    }
}

/// `transport.*` on the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TransportConfig {
    pub tcp_mux: bool,
    pub tcp_mux_keepalive_interval: i64,
    pub tcp_keepalive: i64,
    pub max_pool_count: i64,
    pub heartbeat_timeout: i64,
    pub tls: ServerTlsConfig,
    /// `transport.quic.*` for the `quicBindPort` listener.
    pub quic: portway_config::QuicOptions,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            tcp_mux: true,
            tcp_mux_keepalive_interval: 30,
            tcp_keepalive: 7200,
            max_pool_count: 5,
            heartbeat_timeout: 90,
            tls: ServerTlsConfig::default(),
            quic: Default::default(),
        }
    }
}

/// `transport.tls.*` on the server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerTlsConfig {
    pub force: bool,
    pub cert_file: String,
    pub key_file: String,
    pub trusted_ca_file: String,
}

/// `log.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogConfig {
    pub to: String,
    pub level: String,
    pub max_days: i64,
    pub disable_print_color: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { to: "console".into(), level: "info".into(), max_days: 3, disable_print_color: false }
    }
}

/// Why `kcpBindPort` is refused.
pub const KCP_REFUSED: &str = "KCP is not supported by Portway; use quic (quicBindPort, clients with \
     transport.protocol = \"quic\") or tcp, and remove kcpBindPort";

/// Largest `udpPacketSize`: its base64 plus the UDPPacket JSON must fit frp's 10,240-byte message limit.
pub const MAX_UDP_PACKET_SIZE: i64 = 7_500;

/// frps keys of features Portway does not implement: what each is, what to do, and whether the file is refused
/// (the feature changes what the server does for clients) or only warned about.
const UNSUPPORTED: &[portway_config::Unsupported] = &[
    ("sshTunnelGateway", "frps's SSH tunnel gateway", "clients connect with frpc or Portway", false),
    ("auth.oidc.tokenSource", "an OIDC token source", "remove it", true),
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

/// A loaded configuration plus the warnings found while loading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated config.
    pub config: ServerConfig,
    /// One line per unknown key.
    pub warnings: Vec<String>,
}

impl ServerConfig {
    /// Reads and validates a file in any format frps reads (TOML, YAML, JSON, legacy INI), strictly.
    pub fn load(path: &std::path::Path) -> Result<Loaded, ConfigError> {
        Self::load_with(path, LoadOptions::default())
    }

    /// [`Self::load`] with options.
    pub fn load_with(path: &std::path::Path, opts: LoadOptions) -> Result<Loaded, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
        let env = |name: &str| std::env::var(name).ok();
        Self::parse_full(&text, &file, portway_config::detect(&file, &text), opts, &env)
    }

    /// Parses and validates text; `file` names it in messages and its extension picks the format (frp's rule).
    /// `{{ .Envs.NAME }}` is replaced by the environment variable first, as frp does.
    pub fn parse(text: &str, file: &str) -> Result<Loaded, ConfigError> {
        Self::parse_with_env(text, file, |name| std::env::var(name).ok())
    }

    /// [`Self::parse`] with the environment given as a lookup.
    pub fn parse_with_env(text: &str, file: &str, env: impl Fn(&str) -> Option<String>) -> Result<Loaded, ConfigError> {
        Self::parse_full(text, file, portway_config::detect(file, text), LoadOptions::default(), &env)
    }

    /// Parses `text` as `format`.
    pub fn parse_full(
        text: &str,
        file: &str,
        format: portway_config::Format,
        opts: LoadOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Loaded, ConfigError> {
        use portway_config::{Envs, Side};
        let parse_error = |e: portway_config::LoadError| ConfigError::Parse { file: file.into(), message: e.0 };
        let mut tree =
            portway_config::read_tree(text, file, format, Side::Server, Envs::Lookup(env)).map_err(parse_error)?;
        let (mut config, mut warnings): (ServerConfig, _) =
            portway_config::into_model(&mut tree, file, Side::Server, UNSUPPORTED, opts.strict).map_err(parse_error)?;
        if tree.format == portway_config::Format::Ini {
            warnings.push(format!(
                "{file}: frp's legacy INI format (frp deprecates it); `portway-server convert -c {file}` writes the same \
                 settings as TOML"
            ));
        }
        config.resolve_token_source(file)?;
        config.validate(file).map_err(|e| e.with_line(Some(&tree)))?;
        Ok(Loaded { config, warnings })
    }

    /// frp's `auth.tokenSource` of type `file`: the token is the file's content, trimmed.
    fn resolve_token_source(&mut self, file: &str) -> Result<(), ConfigError> {
        let Some(src) = self.auth.token_source.take() else { return Ok(()) };
        self.auth.token = portway_config::read_token_source(&src.kind, &src.file.path, !self.auth.token.is_empty())
            .map_err(|message| ConfigError::Invalid { file: file.into(), key: "auth.tokenSource".into(), message })?;
        Ok(())
    }

    /// A file in any format as current TOML (`portway-server convert`): keys respelled as frp spells them, legacy INI
    /// keys mapped, comments where a key was dropped or renamed, `{{ .Envs.X }}` templates kept as written.
    pub fn convert(text: &str, file: &str) -> Result<String, ConfigError> {
        use portway_config::{Envs, Side};
        let parse_error = |e: portway_config::LoadError| ConfigError::Parse { file: file.into(), message: e.0 };
        let format = portway_config::detect(file, text);
        let mut tree = portway_config::read_tree(text, file, format, Side::Server, Envs::Keep).map_err(parse_error)?;
        let report = portway_config::respell::<ServerConfig>(&mut tree);
        Ok(portway_config::convert(text, file, Side::Server, &tree, &report.renamed))
    }

    fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid { file: file.into(), key: key.into(), message };
        self.bind_addr
            .parse::<IpAddr>()
            .map_err(|_| bad("bindAddr", format!("{:?} is not an IP address (e.g. \"0.0.0.0\")", self.bind_addr)))?;
        if !self.proxy_bind_addr.is_empty() {
            self.proxy_bind_addr
                .parse::<IpAddr>()
                .map_err(|_| bad("proxyBindAddr", format!("{:?} is not an IP address", self.proxy_bind_addr)))?;
        }
        if self.kcp_bind_port != 0 {
            return Err(bad("kcpBindPort", KCP_REFUSED.into()));
        }
        self.transport.quic.check().map_err(|(key, m)| bad(key, m))?;
        match self.auth.method.as_str() {
            "token" => {}
            "oidc" => {
                if self.auth.oidc.issuer.is_empty() {
                    return Err(bad("auth.oidc.issuer", "required when auth.method = \"oidc\"".into()));
                }
            }
            m => return Err(bad("auth.method", format!("{m:?} is not \"token\" or \"oidc\""))),
        }
        for s in &self.auth.additional_scopes {
            if s != "HeartBeats" && s != "NewWorkConns" {
                return Err(bad("auth.additionalScopes", format!("{s:?} is not \"HeartBeats\" or \"NewWorkConns\"")));
            }
        }
        for (i, r) in self.allow_ports.iter().enumerate() {
            let key = format!("allowPorts[{i}]");
            let ok = if r.single != 0 {
                r.single <= 65535 && r.start == 0 && r.end == 0
            } else {
                r.start >= 1 && r.start <= r.end && r.end <= 65535
            };
            if !ok {
                return Err(bad(
                    &key,
                    "give { start = A, end = B } with 1 <= A <= B <= 65535, or { single = P }".into(),
                ));
            }
        }
        if !(1..=MAX_UDP_PACKET_SIZE).contains(&self.udp_packet_size) {
            return Err(bad(
                "udpPacketSize",
                format!(
                    "must be 1..={MAX_UDP_PACKET_SIZE}: a datagram must fit one 10,240-byte frp message after base64"
                ),
            ));
        }
        for (i, r) in self.portway.clients.iter().enumerate() {
            if r.subject.is_empty() && r.client_id.is_empty() {
                return Err(bad(
                    &format!("portway.clients[{i}]"),
                    "give `subject` or `clientID` to say whom the rule is for".into(),
                ));
            }
        }
        let rules = self.portway.clients.iter().enumerate().map(|(i, r)| (format!("portway.clients[{i}]"), r));
        for (name, r) in rules.chain(self.portway.default_client.iter().map(|r| ("portway.defaultClient".into(), r))) {
            if let Some(t) = r.allow_proxy_types.iter().find(|t| !PROXY_TYPES.contains(&t.as_str())) {
                return Err(bad(
                    &format!("{name}.allowProxyTypes"),
                    format!("{t:?} is not a proxy type this server serves; use some of {}", PROXY_TYPES.join(", ")),
                ));
            }
        }
        if self.portway.vhost_read_header_timeout < 1 {
            return Err(bad("portway.vhostReadHeaderTimeout", "must be 1 or more seconds".into()));
        }
        if self.vhost_http_timeout < 0 {
            return Err(bad("vhostHTTPTimeout", "must be 0 (frp's 60 s) or more seconds".into()));
        }
        if self.sub_domain_host.contains('*') || self.sub_domain_host.starts_with('.') {
            return Err(bad(
                "subDomainHost",
                format!("{:?} must be a plain domain such as \"example.com\"", self.sub_domain_host),
            ));
        }
        if self.transport.max_pool_count < 0 {
            return Err(bad("transport.maxPoolCount", "must be 0 or more".into()));
        }
        let tls = &self.transport.tls;
        if tls.cert_file.is_empty() != tls.key_file.is_empty() {
            return Err(bad("transport.tls.certFile", "certFile and keyFile must be given together".into()));
        }
        self.validate_web_server(file)?;
        self.validate_plugins(file)?;
        if !matches!(self.log.level.as_str(), "trace" | "debug" | "info" | "warn" | "error") {
            return Err(bad(
                "log.level",
                format!("{:?} is not one of trace, debug, info, warn, error", self.log.level),
            ));
        }
        Ok(())
    }

    fn validate_plugins(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: String, message: String| ConfigError::Invalid { file: file.into(), key, message };
        if self.portway.plugin_timeout < 1 {
            return Err(bad("portway.pluginTimeout".into(), "must be 1 or more seconds".into()));
        }
        for (i, p) in self.http_plugins.iter().enumerate() {
            if p.addr.is_empty() {
                return Err(bad(format!("httpPlugins[{i}].addr"), "required: the plugin's \"host:port\"".into()));
            }
            let rest = p.addr.strip_prefix("https://").or_else(|| p.addr.strip_prefix("http://")).unwrap_or(&p.addr);
            if rest.is_empty() || rest.contains('/') {
                return Err(bad(
                    format!("httpPlugins[{i}].addr"),
                    format!(
                        "{:?} must be \"host:port\" (optionally after http:// or https://); put the path in `path`",
                        p.addr
                    ),
                ));
            }
            if !p.path.is_empty() && !p.path.starts_with('/') {
                return Err(bad(format!("httpPlugins[{i}].path"), format!("{:?} must start with /", p.path)));
            }
            if p.ops.is_empty() {
                return Err(bad(
                    format!("httpPlugins[{i}].ops"),
                    format!("give the operations to send, some of {}", PLUGIN_OPS.join(", ")),
                ));
            }
            if let Some(op) = p.ops.iter().find(|o| !PLUGIN_OPS.contains(&o.as_str())) {
                return Err(bad(
                    format!("httpPlugins[{i}].ops"),
                    format!("{op:?} is not one of {}", PLUGIN_OPS.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn validate_web_server(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid { file: file.into(), key: key.into(), message };
        let w = &self.web_server;
        if w.pprof_enable {
            return Err(bad(
                "webServer.pprofEnable",
                "Go's pprof profiler does not exist in Portway; remove the key (profile with `perf` instead)".into(),
            ));
        }
        if !w.assets_dir.is_empty() {
            return Err(bad(
                "webServer.assetsDir",
                "this build serves the dashboard API only, not frps's dashboard pages; remove the key".into(),
            ));
        }
        if w.tls.cert_file.is_empty() != w.tls.key_file.is_empty() {
            return Err(bad("webServer.tls.certFile", "certFile and keyFile must be given together".into()));
        }
        if self.enable_prometheus && w.port == 0 {
            return Err(bad(
                "enablePrometheus",
                "/metrics is served by the webServer: set webServer.port (and webServer.user/password)".into(),
            ));
        }
        if w.port == 0 {
            return Ok(());
        }
        let ip = w
            .addr
            .parse::<IpAddr>()
            .map_err(|_| bad("webServer.addr", format!("{:?} is not an IP address (e.g. \"127.0.0.1\")", w.addr)))?;
        if !ip.is_loopback() && w.password.is_empty() {
            return Err(bad(
                "webServer.password",
                format!(
                    "required when webServer.addr ({}) is not a loopback address: the API shows every client, proxy \
                     and address and can prune proxies, so it must not be open to the network without a password \
                     (set webServer.user and webServer.password, or webServer.addr = \"127.0.0.1\")",
                    w.addr
                ),
            ));
        }
        Ok(())
    }

    /// The address public proxy ports bind to.
    pub fn proxy_bind_ip(&self) -> IpAddr {
        let s = if self.proxy_bind_addr.is_empty() { &self.bind_addr } else { &self.proxy_bind_addr };
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    /// Whether `port` may be used by a proxy.
    pub fn port_allowed(&self, port: u16) -> bool {
        self.allow_ports.is_empty() || self.allow_ports.iter().any(|r| r.contains(port))
    }

    /// `transport.quic.*` with frp's defaults filled in.
    pub fn quic_tuning(&self) -> portway_proto::quic::QuicTuning {
        let q = &self.transport.quic;
        portway_proto::quic::QuicTuning::from_keys(q.keepalive_period, q.max_idle_timeout, q.max_incoming_streams)
    }

    /// The TLS settings for rustls.
    pub fn server_tls(&self) -> portway_proto::transport::ServerTls {
        let p = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        let t = &self.transport.tls;
        portway_proto::transport::ServerTls {
            cert_file: p(&t.cert_file),
            key_file: p(&t.key_file),
            trusted_ca_file: p(&t.trusted_ca_file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_config_parses_with_frp_defaults() {
        let l = ServerConfig::parse(
            "bindAddr = \"127.0.0.1\"\nbindPort = 17000\nauth.token = \"t\"\ntransport.tcpMux = false\n",
            "x",
        )
        .unwrap();
        assert_eq!(l.config.bind_port, 17000);
        assert!(!l.config.transport.tcp_mux);
        assert_eq!(l.config.transport.max_pool_count, 5);
        assert!(l.warnings.is_empty());
    }

    #[test]
    fn unknown_key_warns_with_path_and_unsupported_is_an_error() {
        let e = ServerConfig::parse("bindPort = 7000\n[transport]\ntcpMuxx = true\n", "f.toml").unwrap_err();
        assert!(e.to_string().contains("line 3: unknown key `transport.tcpMuxx` (did you mean `tcpMux`?)"), "{e}");
        let lenient = LoadOptions { strict: false };
        let text = "bindPort = 7000\n[transport]\ntcpMuxx = true\n";
        let l = ServerConfig::parse_full(text, "f.toml", portway_config::Format::Toml, lenient, &|_| None).unwrap();
        assert_eq!(l.warnings.len(), 1);
        assert!(l.warnings[0].contains("`transport.tcpMuxx`"), "{:?}", l.warnings);
        // kcpBindPort is refused: quic_keys_parse_and_kcp_is_refused_with_the_way_out.
    }

    #[test]
    fn http_plugins_parse_and_bad_entries_name_the_key() {
        let text = "[[httpPlugins]]\nname = \"um\"\naddr = \"https://127.0.0.1:9000\"\npath = \"/handler\"\n\
                    ops = [\"Login\", \"NewProxy\"]\ntlsVerify = true\n";
        let c = ServerConfig::parse(text, "frps.toml").unwrap().config;
        let p = &c.http_plugins[0];
        assert_eq!((p.name.as_str(), p.addr.as_str(), p.path.as_str()), ("um", "https://127.0.0.1:9000", "/handler"));
        assert_eq!(p.ops, ["Login", "NewProxy"]);
        assert!(p.tls_verify);
        assert_eq!(c.portway.plugin_timeout, 10);
        let ini =
            "[common]\nbind_port = 7000\n\n[plugin.um]\naddr = 127.0.0.1:9000\npath = /handler\nops = Login,Ping\n\
                   tls_verify = true\n";
        let c = ServerConfig::parse(ini, "frps.ini").unwrap().config;
        assert_eq!((c.http_plugins[0].name.as_str(), c.http_plugins[0].ops.len()), ("um", 2));
        assert!(c.http_plugins[0].tls_verify);
        for (bad, key, says) in [
            ("[[httpPlugins]]\nname = \"p\"\nops = [\"Login\"]\n", "httpPlugins[0].addr", "required"),
            (
                "[[httpPlugins]]\naddr = \"1.2.3.4:1\"\nops = [\"Logon\"]\n",
                "httpPlugins[0].ops",
                "\"Logon\" is not one of",
            ),
            ("[[httpPlugins]]\naddr = \"1.2.3.4:1\"\n", "httpPlugins[0].ops", "give the operations"),
            ("[[httpPlugins]]\naddr = \"1.2.3.4:1/x\"\nops = [\"Ping\"]\n", "httpPlugins[0].addr", "put the path"),
            (
                "[[httpPlugins]]\naddr = \"1.2.3.4:1\"\npath = \"x\"\nops = [\"Ping\"]\n",
                "httpPlugins[0].path",
                "start with /",
            ),
            ("[portway]\npluginTimeout = 0\n", "portway.pluginTimeout", "1 or more"),
        ] {
            let e = ServerConfig::parse(bad, "f.toml").unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn quic_keys_parse_and_kcp_is_refused_with_the_way_out() {
        let text =
            "bindPort = 7000\nquicBindPort = 7000\n[transport.quic]\nkeepalivePeriod = 3\nmaxIncomingStreams = 50\n";
        let l = ServerConfig::parse(text, "frps.toml").unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.config.quic_bind_port, 7000);
        let t = l.config.quic_tuning();
        assert_eq!((t.keepalive_period.as_secs(), t.max_idle_timeout.as_secs(), t.max_incoming_streams), (3, 30, 50));
        // The legacy INI names map onto the same keys.
        let ini = "[common]\nbind_port = 7000\nquic_bind_port = 7001\nquic_max_idle_timeout = 9\n";
        let c = ServerConfig::parse(ini, "frps.ini").unwrap().config;
        assert_eq!((c.quic_bind_port, c.quic_tuning().max_idle_timeout.as_secs()), (7001, 9));
        let e = ServerConfig::parse("bindPort = 7000\nkcpBindPort = 7000\n", "frps.toml").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("`kcpBindPort`"), "{e}");
        assert!(e.contains("KCP is not supported by Portway; use quic"), "{e}");
        let e = ServerConfig::parse("transport.quic.keepalivePeriod = -2\n", "f").unwrap_err().to_string();
        assert!(e.contains("`transport.quic.keepalivePeriod`: must be 0"), "{e}");
    }

    #[test]
    fn vhost_keys_parse_with_frp_names_and_defaults() {
        let text = "vhostHTTPPort = 18080\nvhostHTTPSPort = 18443\ntcpmuxHTTPConnectPort = 18090\n\
                    subDomainHost = \"example.test\"\ncustom404Page = \"/tmp/404.html\"\ntcpmuxPassthrough = true\n";
        let l = ServerConfig::parse(text, "frps.toml").unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let c = l.config;
        assert_eq!((c.vhost_http_port, c.vhost_https_port, c.tcpmux_http_connect_port), (18080, 18443, 18090));
        assert_eq!(c.sub_domain_host, "example.test");
        assert_eq!(c.custom_404_page, "/tmp/404.html");
        assert!(c.tcpmux_passthrough);
        assert_eq!(c.vhost_http_timeout, 60);
        let e = ServerConfig::parse("vhostHTTPTimeout = -1\n", "f").unwrap_err();
        assert!(e.to_string().contains("vhostHTTPTimeout"), "{e}");
    }

    #[test]
    fn policy_rules_and_globs() {
        let text = "[[portway.clients]]\nclientID = \"a\"\nallowPorts = [{ single = 6000 }]\nallowProxyNames = [\"ts3-*\"]\n[portway.defaultClient]\nallowPorts = [{ start = 7000, end = 7010 }]\n";
        let c = ServerConfig::parse(text, "x").unwrap().config;
        let (name, r) = c.portway.rule_for("s", "a").unwrap();
        assert_eq!(name, "portway.clients[0]");
        assert!(r.port_allowed(6000) && !r.port_allowed(6001));
        assert!(r.name_allowed("ts3-voice") && !r.name_allowed("web"));
        let (name, r) = c.portway.rule_for("s", "b").unwrap();
        assert_eq!(name, "portway.defaultClient");
        assert!(r.port_allowed(7005) && r.name_allowed("anything"));
        assert!(
            glob_match("*", "") && glob_match("a*b*c", "aXbYc") && !glob_match("a*b", "ab-") && glob_match("x", "x")
        );
        assert!(ServerConfig::parse("[[portway.clients]]\nallowPorts = []\n", "x").is_err());
        let text =
            "[[portway.clients]]\nsubject = \"nas\"\nallowProxyTypes = [\"stcp\"]\nallowVisitors = [\"home.*\"]\n";
        let c = ServerConfig::parse(text, "x").unwrap().config;
        let (_, r) = c.portway.rule_for("nas", "").unwrap();
        assert!(r.type_allowed("stcp") && !r.type_allowed("tcp"));
        assert!(r.visitor_allowed("home.nas") && !r.visitor_allowed("work.db"));
        let e = ServerConfig::parse("[portway.defaultClient]\nallowProxyTypes = [\"ftp\"]\n", "x").unwrap_err();
        assert!(
            e.to_string().contains("portway.defaultClient.allowProxyTypes") && e.to_string().contains("stcp"),
            "{e}"
        );
        let text = "[[portway.clients]]\nclientID = \"web\"\nallowDomains = [\"*.team.example.com\", \"www.example.com\"]\nallowSubdomains = [\"web-*\"]\n";
        let c = ServerConfig::parse(text, "x").unwrap().config;
        let (_, r) = c.portway.rule_for("", "web").unwrap();
        assert!(r.domain_allowed("a.team.example.com") && r.domain_allowed("WWW.example.com"));
        assert!(!r.domain_allowed("example.com") && !r.domain_allowed("evil.com"));
        assert!(r.subdomain_allowed("web-1") && !r.subdomain_allowed("api"));
        assert!(ClientRule::default().domain_allowed("any.test") && ClientRule::default().subdomain_allowed("x"));
    }

    #[test]
    fn allow_ports_and_bad_values() {
        let l = ServerConfig::parse("allowPorts = [{ start = 2000, end = 3000 }, { single = 3001 }]\n", "x").unwrap();
        assert!(l.config.port_allowed(2500) && l.config.port_allowed(3001));
        assert!(!l.config.port_allowed(3002) && !l.config.port_allowed(1999));
        let e = ServerConfig::parse("allowPorts = [{ start = 3000, end = 2000 }]\n", "x").unwrap_err();
        assert!(e.to_string().contains("allowPorts[0]"), "{e}");
        let e = ServerConfig::parse("auth.method = \"ldap\"\n", "x").unwrap_err();
        assert!(e.to_string().contains("auth.method"), "{e}");
        let e = ServerConfig::parse("bindPort = \"x\"\n", "x").unwrap_err();
        assert!(e.to_string().contains("bindPort"), "{e}");
    }

    #[test]
    fn web_server_keys_and_refusals() {
        let c = ServerConfig::parse(
            "enablePrometheus = true\nwebServer.port = 7500\nwebServer.user = \"admin\"\nwebServer.password = \"p\"\n",
            "x",
        )
        .unwrap()
        .config;
        assert_eq!((c.web_server.addr.as_str(), c.web_server.port, c.enable_prometheus), ("127.0.0.1", 7500, true));
        // Loopback without a password is allowed; a public address is not.
        assert!(ServerConfig::parse("webServer.port = 7500\n", "x").is_ok());
        let e = ServerConfig::parse("webServer.addr = \"0.0.0.0\"\nwebServer.port = 7500\n", "x").unwrap_err();
        assert!(e.to_string().contains("`webServer.password`") && e.to_string().contains("loopback"), "{e}");
        let e = ServerConfig::parse("webServer.port = 7500\nwebServer.pprofEnable = true\n", "x").unwrap_err();
        assert!(e.to_string().contains("`webServer.pprofEnable`"), "{e}");
        // frp's legacy INI dashboard listened on 0.0.0.0 by default: without a password that is refused too.
        let e = ServerConfig::parse("[common]\ndashboard_port = 7500\n", "frps.ini").unwrap_err();
        assert!(e.to_string().contains("`webServer.password`"), "{e}");
        let ini = "[common]\ndashboard_port = 7500\ndashboard_user = a\ndashboard_pwd = b\nenable_prometheus = true\n";
        let c = ServerConfig::parse(ini, "frps.ini").unwrap().config;
        assert_eq!((c.web_server.addr.as_str(), c.web_server.port, c.enable_prometheus), ("0.0.0.0", 7500, true));
        let e = ServerConfig::parse("enablePrometheus = true\n", "x").unwrap_err();
        assert!(e.to_string().contains("webServer.port"), "{e}");
    }

    #[test]
    fn environment_templates_are_substituted() {
        let env = |name: &str| (name == "FRPS_TOKEN").then(|| "server-secret".to_string());
        let l =
            ServerConfig::parse_with_env("bindPort = 7000\nauth.token = \"{{.Envs.FRPS_TOKEN}}\"\n", "frps.toml", env)
                .unwrap();
        assert_eq!(l.config.auth.token, "server-secret");
        let e = ServerConfig::parse_with_env("auth.token = \"{{ .Envs.NOPE }}\"\n", "frps.toml", env).unwrap_err();
        assert!(e.to_string().starts_with("frps.toml: line 1: environment variable NOPE"), "{e}");
    }
}
