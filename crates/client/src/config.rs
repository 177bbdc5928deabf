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
    pub proxies: Vec<ProxyConfig>,
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
            proxies: Vec::new(),
            udp_idle_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// `auth.*` on the client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthConfig {
    pub method: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_scopes: Vec<String>,
    pub oidc: OidcClientConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            method: "token".into(),
            token: String::new(),
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
    pub tls: ClientTlsConfig,
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
            tls: ClientTlsConfig::default(),
        }
    }
}

impl TransportConfig {
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
    pub to: String,
    pub level: String,
    pub max_days: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { to: "console".into(), level: "info".into(), max_days: 3 }
    }
}

/// One `[[proxies]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ProxyConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "localIP")]
    pub local_ip: String,
    pub local_port: u16,
    pub remote_port: u16,
    pub transport: ProxyTransport,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            name: String::new(),
            kind: "tcp".into(),
            local_ip: "127.0.0.1".into(),
            local_port: 0,
            remote_port: 0,
            transport: ProxyTransport::default(),
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
}

/// A loaded configuration plus the warnings found while loading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated config.
    pub config: ClientConfig,
    /// One line per unknown key.
    pub warnings: Vec<String>,
}

/// Largest `udpPacketSize`: its base64 plus the UDPPacket JSON must fit frp's 10,240-byte message limit.
pub const MAX_UDP_PACKET_SIZE: i64 = 7_500;

/// frpc keys of features Portway does not implement.
const UNSUPPORTED_KEYS: &[(&str, &str)] = &[
    ("visitors", "stcp/sudp/xtcp visitors"),
    ("webServer", "the frpc admin web server"),
    ("includes", "config includes"),
    ("virtualNet", "virtual networks"),
    ("featureGates", "feature gates"),
];

impl ClientConfig {
    /// Reads and validates a file.
    pub fn load(path: &std::path::Path) -> Result<Loaded, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates TOML text; `file` names it in messages. `{{ .Envs.NAME }}` is replaced by the
    /// environment variable first, as frp does.
    pub fn parse(text: &str, file: &str) -> Result<Loaded, ConfigError> {
        Self::parse_with_env(text, file, |name| std::env::var(name).ok())
    }

    /// [`Self::parse`] with the environment given as a lookup.
    pub fn parse_with_env(text: &str, file: &str, env: impl Fn(&str) -> Option<String>) -> Result<Loaded, ConfigError> {
        let parse_error = |message| ConfigError::Parse { file: file.into(), message };
        let rendered = portway_proto::template::render_envs(text, env).map_err(|e| parse_error(e.to_string()))?;
        let de = toml::Deserializer::new(&rendered.text);
        let mut unknown = Vec::new();
        let config: ClientConfig = serde_ignored::deserialize(de, |p| unknown.push(p.to_string()))
            .map_err(|e| parse_error(rendered.parse_error_message(e.span()).unwrap_or_else(|| e.to_string())))?;
        let mut warnings = Vec::new();
        for key in unknown {
            let top = key.split('.').next().unwrap_or(&key);
            if let Some((_, hint)) = UNSUPPORTED_KEYS.iter().find(|(k, _)| *k == top) {
                return Err(ConfigError::Unsupported { file: file.into(), key, value: "…".into(), hint });
            }
            if key.starts_with("proxies.") && key.ends_with(".plugin") {
                return Err(ConfigError::Unsupported {
                    file: file.into(),
                    key,
                    value: "…".into(),
                    hint: "proxy plugins; point localIP/localPort at the service instead",
                });
            }
            warnings.push(format!("{file}: unknown key `{key}` ignored (check its spelling against frpc's keys)"));
        }
        config.validate(file)?;
        Ok(Loaded { config, warnings })
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: String, message: String| ConfigError::Invalid { file: file.into(), key, message };
        let unsupported = |key: String, value: &str, hint: &'static str| ConfigError::Unsupported {
            file: file.into(),
            key,
            value: value.into(),
            hint,
        };
        if self.server_addr.trim().is_empty() {
            return Err(bad("serverAddr".into(), "is empty: give the server's host name or IP".into()));
        }
        if self.server_port == 0 {
            return Err(bad("serverPort".into(), "must be 1..=65535".into()));
        }
        match self.auth.method.as_str() {
            "token" => {}
            "oidc" => {
                if self.auth.oidc.token_endpoint_url.is_empty() {
                    return Err(bad(
                        "auth.oidc.tokenEndpointURL".into(),
                        "required when auth.method = \"oidc\"".into(),
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
            "websocket" | "wss" => {}
            "kcp" | "quic" => {
                return Err(unsupported("transport.protocol".into(), &self.transport.protocol, "use \"tcp\""))
            }
            p => {
                return Err(bad(
                    "transport.protocol".into(),
                    format!("{p:?} is not one of tcp, kcp, quic, websocket, wss"),
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
                "tcp" => {}
                "udp" => {}
                "http" | "https" | "stcp" | "sudp" | "xtcp" | "tcpmux" => {
                    return Err(unsupported(key("type"), &p.kind, "Portway supports tcp and udp proxies"))
                }
                k => return Err(bad(key("type"), format!("{k:?} is not an frp proxy type"))),
            }
            if p.local_port == 0 {
                return Err(bad(key("localPort"), format!("proxy {:?} needs the local service's port", p.name)));
            }
            if p.local_ip.parse::<std::net::IpAddr>().is_err() && p.local_ip.is_empty() {
                return Err(bad(key("localIP"), "is empty".into()));
            }
        }
        Ok(())
    }

    /// The name a proxy is registered under on the wire (`user.name` when `user` is set, as frp does).
    pub fn wire_name(&self, p: &ProxyConfig) -> String {
        if self.user.is_empty() {
            p.name.clone()
        } else {
            format!("{}.{}", self.user, p.name)
        }
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
        let e = ClientConfig::parse("[[proxies]]\nname = \"a\"\ntype = \"http\"\nlocalPort = 1\n", "f").unwrap_err();
        assert!(e.to_string().contains("`proxies[0].type`"), "{e}");
        let e = ClientConfig::parse(
            "[[proxies]]\nname = \"a\"\nlocalPort = 1\n[[proxies]]\nname = \"a\"\nlocalPort = 2\n",
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("proxies[1].name"), "{e}");
        let e = ClientConfig::parse("transport.protocol = \"kcp\"\n", "f").unwrap_err();
        assert!(e.to_string().contains("transport.protocol"), "{e}");
        let l = ClientConfig::parse("serverPort = 7000\nfoo.bar = 1\n", "f").unwrap();
        assert!(l.warnings[0].contains("unknown key `foo`"), "{:?}", l.warnings);
        let l = ClientConfig::parse("[transport]\ntcpMuxx = true\n", "f").unwrap();
        assert!(l.warnings[0].contains("`transport.tcpMuxx`"), "{:?}", l.warnings);
        let e = ClientConfig::parse("[[visitors]]\nname = \"v\"\n", "f").unwrap_err();
        assert!(e.to_string().contains("visitors"), "{e}");
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
