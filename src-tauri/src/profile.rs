//! The desktop profile: what the form edits, stored in the OS config directory **without the secret** (the secret
//! lives in the keychain). Converts to the engine's `ClientConfig` and to/from frpc.toml.

use portway_client::config::{ClientConfig, ProxyConfig, ProxyTransport, VisitorConfig};
use serde::{Deserialize, Serialize};

/// Server section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerSection {
    pub addr: String,
    pub port: u16,
    /// `transport.protocol`: tcp, websocket, wss or quic.
    pub protocol: String,
    pub tls: bool,
    /// frp's `user`: the server names this client's proxies `USER.NAME`, and visitors find their server's
    /// proxies under it unless they name another user. Empty: none (frp's default).
    #[serde(default)]
    pub user: String,
    /// `transport.tcpMux` (frp's default: on); it must match the server's.
    #[serde(default = "tcp_mux_default")]
    pub tcp_mux: bool,
}

fn tcp_mux_default() -> bool {
    true
}

/// Authentication section. `has_secret` is computed from the keychain for the UI, never stored (see
/// [`Profile::to_stored_json`]) and ignored when read from a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthSection {
    pub method: String,
    pub token_endpoint_url: String,
    pub client_id: String,
    pub audience: String,
    pub scope: String,
    #[serde(default)]
    pub has_secret: bool,
}

/// One proxy row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub local_ip: String,
    pub local_port: u16,
    /// tcp/udp only.
    #[serde(default)]
    pub remote_port: u16,
    pub enabled: bool,
    /// http/https/tcpmux.
    #[serde(default)]
    pub custom_domains: Vec<String>,
    /// http/https/tcpmux.
    #[serde(default)]
    pub subdomain: String,
    /// http.
    #[serde(default)]
    pub locations: Vec<String>,
    /// http/tcpmux basic auth; the password is in the keychain (account [`ProxyDef::password_account`]).
    #[serde(default)]
    pub http_user: String,
    /// http.
    #[serde(default)]
    pub host_header_rewrite: String,
    /// tcpmux: "httpconnect".
    #[serde(default)]
    pub multiplexer: String,
    /// Computed from the keychain for the UI, never stored.
    #[serde(default)]
    pub has_http_password: bool,
    /// stcp/sudp/xtcp: the users whose visitors may connect (`*`: anyone; empty: this client's own user). The
    /// `secretKey` is in the keychain (account [`ProxyDef::secret_key_account`]).
    #[serde(default)]
    pub allow_users: Vec<String>,
    /// stcp/sudp/xtcp: a `secretKey` is in the keychain. Computed for the UI, never stored.
    #[serde(default)]
    pub has_secret_key: bool,
    /// Input only: the row's name before an edit renamed it, so that its keychain entries move with it. Never
    /// stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
}

/// The proxy types the app offers: those the engine runs.
pub const PROXY_TYPES: [&str; 8] = ["tcp", "udp", "http", "https", "tcpmux", "stcp", "sudp", "xtcp"];

/// The visitor types: one for each secret proxy type.
pub const VISITOR_TYPES: [&str; 3] = ["stcp", "sudp", "xtcp"];

/// One visitor row ("Connect to a private service"): a local entrance to another client's stcp/sudp/xtcp proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VisitorDef {
    pub name: String,
    /// stcp, sudp or xtcp: the type of the proxy it reaches.
    #[serde(rename = "type")]
    pub kind: String,
    /// The provider's proxy name.
    pub server_name: String,
    /// The provider's user (empty: this client's own).
    #[serde(default)]
    pub server_user: String,
    /// The local address to listen on.
    #[serde(default = "loopback")]
    pub bind_addr: String,
    /// The local port to open (`-1`: no listener, for an stcp visitor used only as an xtcp visitor's fallback).
    pub bind_port: i32,
    pub enabled: bool,
    /// xtcp: the stcp visitor to use when no peer-to-peer tunnel comes up.
    #[serde(default)]
    pub fallback_to: String,
    /// A `secretKey` is in the keychain (account [`VisitorDef::secret_key_account`]). Computed, never stored.
    #[serde(default)]
    pub has_secret_key: bool,
    /// Input only: the name before an edit renamed it (its secret moves with it). Never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
}

fn loopback() -> String {
    "127.0.0.1".into()
}

impl VisitorDef {
    /// The keychain account of this visitor's `secretKey` in the profile with id `profile_id`.
    pub fn secret_key_account(profile_id: &str, name: &str) -> String {
        format!("profile:{profile_id}:visitor:{name}:secretKey")
    }

    /// The engine's visitor (its `secretKey` is added by the controller from the keychain).
    pub fn to_engine(&self) -> VisitorConfig {
        VisitorConfig {
            name: self.name.clone(),
            kind: self.kind.clone(),
            server_name: self.server_name.trim().to_string(),
            server_user: self.server_user.trim().to_string(),
            bind_addr: self.bind_addr.trim().to_string(),
            bind_port: self.bind_port,
            fallback_to: if self.kind == "xtcp" { self.fallback_to.clone() } else { String::new() },
            ..VisitorConfig::default()
        }
    }

    fn from_engine(v: &VisitorConfig) -> VisitorDef {
        VisitorDef {
            name: v.name.clone(),
            kind: v.kind.clone(),
            server_name: v.server_name.clone(),
            server_user: v.server_user.clone(),
            bind_addr: v.bind_addr.clone(),
            bind_port: v.bind_port,
            enabled: true,
            fallback_to: v.fallback_to.clone(),
            has_secret_key: false,
            renamed_from: None,
        }
    }

    /// What a person opens: `127.0.0.1:port` (None without a listener).
    pub fn local_addr(&self) -> Option<String> {
        (self.bind_port > 0).then(|| format!("{}:{}", self.bind_addr.trim(), self.bind_port))
    }
}

impl ProxyDef {
    /// The engine's proxy configuration for this row.
    /// The password is not part of it: [`crate::controller::Controller`] adds it from the keychain.
    pub fn to_engine(&self) -> ProxyConfig {
        let vhost = self.is_vhost();
        ProxyConfig {
            name: self.name.clone(),
            kind: self.kind.clone(),
            local_ip: self.local_ip.clone(),
            local_port: self.local_port,
            remote_port: if vhost { 0 } else { self.remote_port },
            transport: ProxyTransport::default(),
            custom_domains: if vhost { self.custom_domains.clone() } else { Vec::new() },
            subdomain: if vhost { self.subdomain.clone() } else { String::new() },
            locations: if self.kind == "http" { self.locations.clone() } else { Vec::new() },
            http_user: if self.uses_basic_auth() { self.http_user.clone() } else { String::new() },
            host_header_rewrite: if self.kind == "http" { self.host_header_rewrite.clone() } else { String::new() },
            multiplexer: if self.kind == "tcpmux" { "httpconnect".into() } else { String::new() },
            allow_users: if self.is_secret() { self.allow_users.clone() } else { Vec::new() },
            ..ProxyConfig::default()
        }
    }

    /// http, https or tcpmux: routed by name.
    pub fn is_vhost(&self) -> bool {
        matches!(self.kind.as_str(), "http" | "https" | "tcpmux")
    }

    /// stcp, sudp or xtcp: reached only through a visitor with the `secretKey`.
    pub fn is_secret(&self) -> bool {
        matches!(self.kind.as_str(), "stcp" | "sudp" | "xtcp")
    }

    /// The keychain account of this proxy's `secretKey` in the profile with id `profile_id`.
    pub fn secret_key_account(profile_id: &str, name: &str) -> String {
        format!("profile:{profile_id}:proxy:{name}:secretKey")
    }

    /// http or tcpmux: may ask visitors for a user and password.
    pub fn uses_basic_auth(&self) -> bool {
        matches!(self.kind.as_str(), "http" | "tcpmux")
    }

    /// The keychain account of this proxy's `httpPassword` in the profile with id `profile_id`.
    pub fn password_account(profile_id: &str, name: &str) -> String {
        format!("profile:{profile_id}:proxy:{name}:httpPassword")
    }

    fn from_engine(p: &ProxyConfig) -> ProxyDef {
        ProxyDef {
            name: p.name.clone(),
            kind: p.kind.clone(),
            local_ip: p.local_ip.clone(),
            local_port: p.local_port,
            remote_port: p.remote_port,
            enabled: true,
            custom_domains: p.custom_domains.clone(),
            subdomain: p.subdomain.clone(),
            locations: p.locations.clone(),
            http_user: p.http_user.clone(),
            host_header_rewrite: p.host_header_rewrite.clone(),
            multiplexer: p.multiplexer.clone(),
            has_http_password: false,
            allow_users: p.allow_users.clone(),
            has_secret_key: false,
            renamed_from: None,
        }
    }
}

/// Options: `connect_on_launch` is the profile's; the other two are the app's (stored once, in profiles.json's
/// top-level `options`, and shown in every profile).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Options {
    pub connect_on_launch: bool,
    pub start_minimized: bool,
    pub launch_at_login: bool,
}

/// The whole profile, as the UI sees it (docs/ui-contract.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub server: ServerSection,
    pub auth: AuthSection,
    pub proxies: Vec<ProxyDef>,
    /// "Connect to a private service": visitors of other clients' secret proxies.
    #[serde(default)]
    pub visitors: Vec<VisitorDef>,
    pub options: Options,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            server: ServerSection {
                addr: String::new(),
                port: 7000,
                protocol: "tcp".into(),
                tls: true,
                user: String::new(),
                tcp_mux: true,
            },
            auth: AuthSection {
                method: "oidc".into(),
                token_endpoint_url: String::new(),
                client_id: String::new(),
                audience: String::new(),
                scope: String::new(),
                has_secret: false,
            },
            proxies: Vec::new(),
            visitors: Vec::new(),
            options: Options::default(),
        }
    }
}

/// What [`Profile::import_frpc`] read from a file.
pub struct FrpcImport {
    /// The profile (no secret in it).
    pub profile: Profile,
    /// The client secret or token, for the keychain.
    pub secret: Option<String>,
    /// Each proxy's `httpPassword`, for the keychain.
    pub proxy_passwords: Vec<(String, String)>,
    /// Each stcp/sudp/xtcp proxy's `secretKey`, for the keychain.
    pub proxy_secret_keys: Vec<(String, String)>,
    /// Each visitor's `secretKey`, for the keychain.
    pub visitor_secret_keys: Vec<(String, String)>,
    /// Each proxy or visitor left out, or brought over without some of its settings, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Why a proxy or visitor of an imported file was left out or came over without some settings: a code and its
/// parameters, which the window says in the chosen language (ui/src/i18n, keys `import.skipped.<code>`); frp's own
/// words, when there are some, are the `detail`. `Display` is the English line for logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Skipped {
    /// The proxy's settings do not load (`detail`: the configuration's error).
    ProxyInvalid { name: String, detail: String },
    /// The visitor's settings do not load (`detail`: the configuration's error).
    VisitorInvalid { name: String, detail: String },
    /// A proxy type the engine loads but the app does not offer.
    TypeNotOffered {
        name: String,
        #[serde(rename = "type")]
        kind: String,
    },
    /// A proxy with a plugin (socks5, static_file, ...): the app does not offer plugins.
    PluginNotSupported { name: String, plugin: String },
    /// A proxy brought over without settings the editor does not keep (`settings`: frp's key names).
    ProxySettingsDropped { name: String, settings: String },
    /// A visitor brought over without settings the editor does not keep (`settings`: frp's key names).
    VisitorSettingsDropped { name: String, settings: String },
    /// An xtcp visitor whose `fallbackTo` visitor was not imported: brought over without the fallback.
    FallbackNotImported { name: String, fallback_to: String },
    /// Client-wide settings of the file that the profile does not keep (`settings`: frp's key names, never values).
    GlobalSettingsDropped { settings: String },
}

impl Skipped {
    /// The row's name (a proxy's or a visitor's); none for client-wide settings.
    pub fn name(&self) -> Option<&str> {
        match self {
            Skipped::ProxyInvalid { name, .. }
            | Skipped::VisitorInvalid { name, .. }
            | Skipped::TypeNotOffered { name, .. }
            | Skipped::PluginNotSupported { name, .. }
            | Skipped::ProxySettingsDropped { name, .. }
            | Skipped::VisitorSettingsDropped { name, .. }
            | Skipped::FallbackNotImported { name, .. } => Some(name),
            Skipped::GlobalSettingsDropped { .. } => None,
        }
    }

    /// A line of [`ClientConfig::parse_salvage`] (`proxy NAME: error` / `visitor NAME: error`).
    fn from_salvage(line: &str) -> Skipped {
        let (kind, rest) = line.split_once(' ').unwrap_or(("proxy", line));
        let (name, detail) = rest.split_once(": ").unwrap_or((rest, ""));
        let (name, detail) = (name.to_string(), detail.to_string());
        if kind == "visitor" {
            Skipped::VisitorInvalid { name, detail }
        } else {
            Skipped::ProxyInvalid { name, detail }
        }
    }
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skipped::ProxyInvalid { name, detail } => write!(f, "proxy {name}: {detail}"),
            Skipped::VisitorInvalid { name, detail } => write!(f, "visitor {name}: {detail}"),
            Skipped::TypeNotOffered { name, kind } => write!(f, "proxy {name}: the app does not offer {kind} proxies yet"),
            Skipped::PluginNotSupported { name, plugin } => write!(
                f,
                "proxy {name}: it uses the {plugin} proxy plugin, which the app does not offer yet (portway-client runs it)"
            ),
            Skipped::ProxySettingsDropped { name, settings } => {
                write!(f, "proxy {name}: imported without {settings} (the app does not keep it yet)")
            }
            Skipped::VisitorSettingsDropped { name, settings } => {
                write!(f, "visitor {name}: imported without {settings} (the app does not keep them yet)")
            }
            Skipped::FallbackNotImported { name, fallback_to } => write!(
                f,
                "visitor {name}: imported without its fallbackTo {fallback_to:?}, which is not imported (disabled in the file?)"
            ),
            Skipped::GlobalSettingsDropped { settings } => {
                write!(f, "imported without {settings} (the app does not keep them yet; portway-client reads them)")
            }
        }
    }
}

/// Client-wide keys a profile keeps (the server, its transport, TLS on or off, multiplexing, the user, the sign-in;
/// `loginFailExit` has no meaning in the app, which keeps retrying until Disconnect).
const GLOBAL_KEYS_KEPT: &[&str] = &[
    "serverAddr",
    "serverPort",
    "user",
    "loginFailExit",
    "transport.protocol",
    "transport.tls.enable",
    "transport.tcpMux",
    "auth.method",
    "auth.token",
    "auth.oidc.clientID",
    "auth.oidc.clientSecret",
    "auth.oidc.audience",
    "auth.oidc.scope",
    "auth.oidc.tokenEndpointURL",
    "proxies",
    "visitors",
];

/// Tables that are one setting (names to values): named as a whole.
const GLOBAL_MAPS: &[&str] = &["metadatas", "auth.oidc.additionalEndpointParams", "featureGates"];

/// The client-wide keys (frp's names) that `c` sets to something other than frpc's default and a profile does not
/// keep, sorted. Only names: values (which may be secrets) never leave here.
fn global_settings_dropped(c: &ClientConfig) -> Vec<String> {
    fn flatten(prefix: &str, v: &serde_json::Value, out: &mut std::collections::BTreeMap<String, serde_json::Value>) {
        match v {
            serde_json::Value::Object(m) if !GLOBAL_MAPS.contains(&prefix) => {
                for (k, x) in m {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    if !GLOBAL_KEYS_KEPT.contains(&key.as_str()) {
                        flatten(&key, x, out);
                    }
                }
            }
            _ => {
                out.insert(prefix.to_string(), v.clone());
            }
        }
    }
    let flat = |c: &ClientConfig| {
        let mut out = std::collections::BTreeMap::new();
        if let Ok(v) = serde_json::to_value(c) {
            flatten("", &v, &mut out);
        }
        out
    };
    let defaults = ClientConfig::parse_with_env("", "frpc.toml", |_| None).map(|l| l.config).unwrap_or_default();
    let (set, default) = (flat(c), flat(&defaults));
    let mut keys: Vec<String> =
        set.keys().chain(default.keys()).filter(|k| set.get(*k) != default.get(*k)).cloned().collect();
    keys.sort();
    keys.dedup();
    keys
}

fn valid_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// A proxy, visitor or user name as frp takes it.
fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// A DNS name the server can route (optionally `*.` in front).
fn valid_domain(d: &str) -> bool {
    let name = d.strip_prefix("*.").unwrap_or(d);
    name.len() <= 253 && name.split('.').all(valid_label)
}

/// A profile field that cannot work, named for the form.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The field (e.g. `server.port`, `proxies[1].name`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Profile {
    /// The same checks the form makes, repeated here because the backend trusts no input.
    pub fn validate(&self) -> Result<(), Invalid> {
        let bad = |field: String, message: &str| Err(Invalid { field, message: message.into() });
        if self.server.addr.trim().is_empty() {
            return bad("server.addr".into(), "the server address is empty");
        }
        if self.server.port == 0 {
            return bad("server.port".into(), "the port must be 1-65535");
        }
        if !matches!(self.server.protocol.as_str(), "tcp" | "websocket" | "wss" | "quic") {
            return bad("server.protocol".into(), "choose tcp, websocket, wss or quic");
        }
        if !self.server.user.is_empty() && !valid_name(&self.server.user) {
            return bad("server.user".into(), "use letters, digits, '.', '_' or '-'");
        }
        match self.auth.method.as_str() {
            "oidc" => {
                let u = &self.auth.token_endpoint_url;
                if !(u.starts_with("https://") || u.starts_with("http://")) || url::Url::parse(u).is_err() {
                    return bad("auth.tokenEndpointUrl".into(), "give the token endpoint's http(s) URL");
                }
                if self.auth.client_id.trim().is_empty() {
                    return bad("auth.clientId".into(), "the client ID is empty");
                }
            }
            "token" => {}
            _ => return bad("auth.method".into(), "choose oidc or token"),
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.proxies.iter().enumerate() {
            let f = |k: &str| format!("proxies[{i}].{k}");
            if !valid_name(&p.name) {
                return bad(f("name"), "use letters, digits, '.', '_' or '-'");
            }
            if !names.insert(p.name.as_str()) {
                return bad(f("name"), "this name is used twice");
            }
            if !PROXY_TYPES.contains(&p.kind.as_str()) {
                return bad(f("type"), "choose tcp, udp, http, https, tcpmux, stcp, sudp or xtcp");
            }
            if p.local_ip.parse::<std::net::IpAddr>().is_err() {
                return bad(f("localIp"), "give an IP address such as 127.0.0.1");
            }
            if p.local_port == 0 {
                return bad(f("localPort"), "the port must be 1-65535");
            }
            if !p.is_vhost() && !p.is_secret() && p.remote_port == 0 {
                return bad(f("remotePort"), "the port must be 1-65535");
            }
            if p.is_vhost() {
                if p.custom_domains.iter().all(|d| d.trim().is_empty()) && p.subdomain.trim().is_empty() {
                    return bad(f("customDomains"), "give a custom domain or a subdomain");
                }
                if let Some(d) = p.custom_domains.iter().find(|d| !valid_domain(d)) {
                    return bad(f("customDomains"), &format!("{d:?} is not a domain name (no scheme, port or path)"));
                }
                if !p.subdomain.is_empty() && !valid_label(&p.subdomain) {
                    return bad(f("subdomain"), "use letters, digits and '-' only");
                }
            }
            if p.kind == "http" {
                if let Some(l) = p.locations.iter().find(|l| !l.starts_with('/')) {
                    return bad(f("locations"), &format!("{l:?} is not a URL path starting with /"));
                }
            }
            if p.http_user.contains([':', ' ']) {
                return bad(f("httpUser"), "a basic-auth user cannot contain ':' or spaces");
            }
            if p.is_secret() {
                if let Some(u) = p.allow_users.iter().find(|u| u.as_str() != "*" && !valid_name(u)) {
                    return bad(
                        f("allowUsers"),
                        &format!("{u:?} is not a user name: use letters, digits, '.', '_' or '-', or * for anyone"),
                    );
                }
            }
        }
        self.validate_visitors()
    }

    fn validate_visitors(&self) -> Result<(), Invalid> {
        let bad = |field: String, message: &str| Err(Invalid { field, message: message.into() });
        let mut names = std::collections::HashSet::new();
        let mut binds = std::collections::HashMap::new();
        for (i, v) in self.visitors.iter().enumerate() {
            let f = |k: &str| format!("visitors[{i}].{k}");
            if !valid_name(&v.name) {
                return bad(f("name"), "use letters, digits, '.', '_' or '-'");
            }
            if !names.insert(v.name.as_str()) {
                return bad(f("name"), "another visitor has this name");
            }
            if !VISITOR_TYPES.contains(&v.kind.as_str()) {
                return bad(f("type"), "choose stcp, sudp or xtcp: the type of the proxy it reaches");
            }
            if !valid_name(v.server_name.trim()) {
                return bad(f("serverName"), "give the name of the provider's proxy (letters, digits, '.', '_', '-')");
            }
            if !v.server_user.trim().is_empty() && !valid_name(v.server_user.trim()) {
                return bad(f("serverUser"), "use letters, digits, '.', '_' or '-' (empty: your own user)");
            }
            if v.bind_addr.trim().parse::<std::net::IpAddr>().is_err() {
                return bad(f("bindAddr"), "give an IP address such as 127.0.0.1");
            }
            match v.bind_port {
                -1 if v.kind == "stcp" => {}
                -1 => return bad(f("bindPort"), "only an stcp visitor (an xtcp visitor's fallback) may have no port"),
                1..=65535 => {
                    let key = (v.kind == "sudp", v.bind_addr.trim().to_string(), v.bind_port);
                    if v.enabled {
                        if let Some(other) = binds.insert(key, v.name.as_str()) {
                            return bad(f("bindPort"), &format!("visitor {other} uses this local port already"));
                        }
                    }
                }
                _ => return bad(f("bindPort"), "the local port must be 1-65535"),
            }
            if !v.fallback_to.is_empty() {
                if v.kind != "xtcp" {
                    return bad(f("fallbackTo"), "only an xtcp visitor has a fallback");
                }
                match self.visitors.iter().find(|o| o.name == v.fallback_to) {
                    Some(o) if o.kind != "stcp" => {
                        return bad(
                            f("fallbackTo"),
                            &format!("visitor {} is {}: a fallback must be stcp", o.name, o.kind),
                        )
                    }
                    Some(o) if v.enabled && !o.enabled => {
                        return bad(
                            f("fallbackTo"),
                            &format!("visitor {} is disabled: enable it or clear the fallback", o.name),
                        )
                    }
                    Some(_) => {}
                    None => return bad(f("fallbackTo"), &format!("there is no visitor named {:?}", v.fallback_to)),
                }
            }
        }
        Ok(())
    }

    /// The profile as stored in profile.json: without the computed `hasSecret` / `hasHttpPassword`, which the
    /// keychain answers at load (a stored flag could only be wrong).
    pub fn to_stored_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(a) = v.get_mut("auth").and_then(|a| a.as_object_mut()) {
            a.remove("hasSecret");
        }
        if let Some(ps) = v.get_mut("proxies").and_then(|p| p.as_array_mut()) {
            for p in ps.iter_mut().filter_map(|p| p.as_object_mut()) {
                p.remove("hasHttpPassword");
                p.remove("hasSecretKey");
                p.remove("renamedFrom");
            }
        }
        if let Some(vs) = v.get_mut("visitors").and_then(|p| p.as_array_mut()) {
            for x in vs.iter_mut().filter_map(|x| x.as_object_mut()) {
                x.remove("hasSecretKey");
                x.remove("renamedFrom");
            }
        }
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// Reads profile.json; the computed flags in an older file are dropped (the keychain decides them).
    pub fn from_stored_json(text: &str) -> Option<Profile> {
        let mut p: Profile = serde_json::from_str(text).ok()?;
        p.auth.has_secret = false;
        for x in &mut p.proxies {
            x.has_http_password = false;
            x.has_secret_key = false;
            x.renamed_from = None;
        }
        for x in &mut p.visitors {
            x.has_secret_key = false;
            x.renamed_from = None;
        }
        Some(p)
    }

    /// The engine configuration (enabled proxies only). The secret is not part of it: it is handed to the engine
    /// separately.
    pub fn to_client_config(&self) -> ClientConfig {
        let mut c = ClientConfig {
            server_addr: self.server.addr.trim().to_string(),
            server_port: self.server.port,
            user: self.server.user.trim().to_string(),
            login_fail_exit: false,
            ..Default::default()
        };
        c.transport.protocol = self.server.protocol.clone();
        c.transport.tcp_mux = self.server.tcp_mux;
        c.transport.tls.enable = self.server.tls;
        c.auth.method = self.auth.method.clone();
        c.auth.oidc.token_endpoint_url = self.auth.token_endpoint_url.trim().to_string();
        c.auth.oidc.client_id = self.auth.client_id.trim().to_string();
        c.auth.oidc.audience = self.auth.audience.trim().to_string();
        c.auth.oidc.scope = self.auth.scope.trim().to_string();
        c.proxies = self.proxies.iter().filter(|p| p.enabled).map(ProxyDef::to_engine).collect();
        c.visitors = self.visitors.iter().filter(|v| v.enabled).map(VisitorDef::to_engine).collect();
        c
    }

    /// Builds a profile from frpc config text in any format frpc reads (TOML, YAML, JSON, legacy INI: told apart by
    /// content, as frp does for a file without a known extension; unknown keys only warned about); returns it, the
    /// secret found in the file (client secret for OIDC, auth.token otherwise), which the caller moves into the
    /// keychain, and one line per proxy or visitor that could not be brought over, with the reason.
    pub fn from_frpc(text: &str) -> Result<(Profile, Option<String>), String> {
        Self::from_frpc_salvage(text).map(|(p, s, _)| (p, s))
    }

    /// [`Self::from_frpc`] with the lines for what was left out.
    pub fn from_frpc_salvage(text: &str) -> Result<(Profile, Option<String>, Vec<Skipped>), String> {
        Self::import_frpc(text).map(|i| (i.profile, i.secret, i.skipped))
    }

    /// Everything an import brings: the profile, the secrets for the keychain, and what was left out.
    pub fn import_frpc(text: &str) -> Result<FrpcImport, String> {
        let env = |name: &str| std::env::var(name).ok();
        let (loaded, skipped) =
            ClientConfig::parse_salvage(text, "the imported file", &env).map_err(|e| e.to_string())?;
        let c = loaded.config;
        if c.auth.method == "oidc" {
            if let Some(path) = c.auth.oidc.token_file() {
                return Err(format!(
                    "auth.oidc.tokenSource reads the access token from {path}; the app signs in with a client ID \
                     and secret instead: import a file with auth.oidc.clientID and tokenEndpointURL, or run this \
                     one with portway-client"
                ));
            }
        }
        let secret = if c.auth.method == "oidc" { c.auth.oidc.client_secret.clone() } else { c.auth.token.clone() };
        let mut p = Profile {
            server: ServerSection {
                addr: c.server_addr.clone(),
                port: c.server_port,
                protocol: c.transport.protocol.clone(),
                tls: c.transport.tls.enable,
                user: c.user.clone(),
                tcp_mux: c.transport.tcp_mux,
            },
            auth: AuthSection {
                method: c.auth.method.clone(),
                token_endpoint_url: c.auth.oidc.token_endpoint_url.clone(),
                client_id: c.auth.oidc.client_id.clone(),
                audience: c.auth.oidc.audience.clone(),
                scope: c.auth.oidc.scope.clone(),
                has_secret: false,
            },
            proxies: c
                .proxies
                .iter()
                .filter(|p| PROXY_TYPES.contains(&p.kind.as_str()) && p.plugin.is_none())
                .map(ProxyDef::from_engine)
                .collect(),
            visitors: c.visitors.iter().map(VisitorDef::from_engine).collect(),
            options: Options::default(),
        };
        // What the engine may load but the app does not offer yet is left out, by name, with the reason; settings
        // the editor cannot keep are named too.
        let mut skipped: Vec<Skipped> = skipped.iter().map(|l| Skipped::from_salvage(l)).collect();
        let dropped = global_settings_dropped(&c);
        if !dropped.is_empty() {
            skipped.insert(0, Skipped::GlobalSettingsDropped { settings: dropped.join(", ") });
        }
        for x in &c.proxies {
            let name = x.name.clone();
            if !PROXY_TYPES.contains(&x.kind.as_str()) {
                skipped.push(Skipped::TypeNotOffered { name, kind: x.kind.clone() });
            } else if let Some(plugin) = &x.plugin {
                skipped.push(Skipped::PluginNotSupported { name, plugin: plugin.kind.clone() });
            } else {
                let mut lost = Vec::new();
                if !x.health_check.is_empty() {
                    lost.push("healthCheck");
                }
                if !x.transport.bandwidth_limit.is_empty() {
                    lost.push("transport.bandwidthLimit");
                }
                if x.kind == "xtcp" && x.nat_traversal.is_some() {
                    lost.push("natTraversal");
                }
                if !lost.is_empty() {
                    skipped.push(Skipped::ProxySettingsDropped { name, settings: lost.join(", ") });
                }
            }
        }
        for v in p.visitors.iter_mut().filter(|v| !v.fallback_to.is_empty()) {
            if !c.visitors.iter().any(|o| o.name == v.fallback_to) {
                let fallback_to = std::mem::take(&mut v.fallback_to);
                skipped.push(Skipped::FallbackNotImported { name: v.name.clone(), fallback_to });
            }
        }
        for v in &c.visitors {
            let mut lost = Vec::new();
            if v.transport.use_encryption || v.transport.use_compression {
                lost.push("transport.useEncryption/useCompression");
            }
            if v.keep_tunnel_open || v.max_retries_an_hour.is_some() || v.min_retry_interval.is_some() {
                lost.push("keepTunnelOpen");
            }
            if v.fallback_timeout_ms.is_some() || v.nat_traversal.is_some() {
                lost.push("fallbackTimeoutMs/natTraversal");
            }
            if !lost.is_empty() {
                skipped.push(Skipped::VisitorSettingsDropped { name: v.name.clone(), settings: lost.join(", ") });
            }
        }
        let proxy_passwords = c
            .proxies
            .iter()
            .filter(|p| !p.http_password.is_empty())
            .map(|p| (p.name.clone(), p.http_password.clone()))
            .collect();
        let proxy_secret_keys = c
            .proxies
            .iter()
            .filter(|x| !x.secret_key.is_empty() && p.proxies.iter().any(|k| k.name == x.name))
            .map(|x| (x.name.clone(), x.secret_key.clone()))
            .collect();
        let visitor_secret_keys = c
            .visitors
            .iter()
            .filter(|v| !v.secret_key.is_empty())
            .map(|v| (v.name.clone(), v.secret_key.clone()))
            .collect();
        Ok(FrpcImport {
            profile: p,
            secret: (!secret.is_empty()).then_some(secret),
            proxy_passwords,
            proxy_secret_keys,
            visitor_secret_keys,
            skipped,
        })
    }

    /// frpc.toml text without the secret; a comment says where it is.
    pub fn to_frpc(&self) -> String {
        let mut c = self.to_client_config();
        c.proxies = self.proxies.iter().map(ProxyDef::to_engine).collect();
        c.visitors = self
            .visitors
            .iter()
            .map(|v| VisitorConfig { enabled: (!v.enabled).then_some(false), ..v.to_engine() })
            .collect();
        let mut which = if self.auth.method == "oidc" { "auth.oidc.clientSecret" } else { "auth.token" }.to_string();
        if self.proxies.iter().any(|p| p.uses_basic_auth() && !p.http_user.is_empty()) {
            which.push_str(" (and each proxy's httpPassword)");
        }
        if self.proxies.iter().any(ProxyDef::is_secret) || !self.visitors.is_empty() {
            which.push_str(" (and each stcp/sudp/xtcp proxy's and visitor's secretKey)");
        }
        format!(
            "# Exported by Portway. {which} is not in this file: it is stored in the system keychain\n\
             # (service \"portway\"). Add it here, or use portway-client with the secret from the environment.\n{}",
            c.to_toml()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../tests/fixtures/seed/frpc.toml");

    #[test]
    fn seed_import_moves_the_secret_out_and_export_leaves_it_out() {
        let (p, secret) = Profile::from_frpc(SEED).unwrap();
        assert_eq!(secret.as_deref(), Some("portway-test-secret"));
        assert_eq!(p.auth.client_id, "portway-test-client");
        assert_eq!(p.proxies.len(), 2);
        assert_eq!(p.proxies[0].kind, "udp");
        p.validate().unwrap();
        let out = p.to_frpc();
        assert!(!out.contains("portway-test-secret"));
        assert!(out.contains("stored in the system keychain"));
        let (again, s2) = Profile::from_frpc(&out).unwrap();
        assert_eq!(s2, None);
        assert_eq!(again.proxies, p.proxies);
        assert_eq!(again.auth.token_endpoint_url, p.auth.token_endpoint_url);
    }

    /// The server's user and multiplexing come over; every other client-wide key the file sets is named (never its
    /// value), and a file that sets none gets no such line.
    #[test]
    fn import_keeps_user_and_tcp_mux_and_names_the_client_wide_keys_it_drops() {
        let text = "serverAddr = \"h\"\nuser = \"alice\"\ndnsServer = \"127.0.0.53\"\nloginFailExit = false\n\
                    metadatas.team = \"hush-value\"\ntransport.tcpMux = false\ntransport.poolCount = 5\n\
                    transport.protocol = \"quic\"\ntransport.tls.serverName = \"tunnel.example.com\"\n\
                    auth.token = \"tok\"\nlog.level = \"debug\"\n\
                    [[proxies]]\nname = \"ssh\"\ntype = \"tcp\"\nlocalPort = 22\nremotePort = 6000\n";
        let i = Profile::import_frpc(text).unwrap();
        let s = &i.profile.server;
        assert_eq!((s.user.as_str(), s.tcp_mux, s.protocol.as_str()), ("alice", false, "quic"));
        i.profile.validate().unwrap();
        assert_eq!(
            i.skipped,
            [Skipped::GlobalSettingsDropped {
                settings: "dnsServer, log.level, metadatas, transport.poolCount, transport.tls.serverName".into()
            }]
        );
        assert!(!format!("{:?}", i.skipped).contains("hush-value"));
        let c = i.profile.to_client_config();
        assert_eq!((c.user.as_str(), c.transport.tcp_mux), ("alice", false));
        let again = Profile::import_frpc(&i.profile.to_frpc()).unwrap();
        assert_eq!(again.profile.server, i.profile.server);
        assert_eq!(again.skipped, []);
        // The seed's file sets nothing beyond what a profile keeps.
        assert_eq!(Profile::import_frpc(SEED).unwrap().skipped, []);
        let mut bad = i.profile;
        bad.server.user = "a b".into();
        assert_eq!(bad.validate().unwrap_err().field, "server.user");
    }

    /// A profile stored before `user` and `tcpMux` existed reads with frp's defaults.
    #[test]
    fn a_stored_server_without_user_or_tcp_mux_reads_with_frps_defaults() {
        let s: ServerSection = serde_json::from_str(r#"{"addr":"a","port":7000,"protocol":"tcp","tls":true}"#).unwrap();
        assert_eq!((s.user.as_str(), s.tcp_mux), ("", true));
    }

    /// A profile whose token comes from a file cannot be kept by the app (it stores a client secret).
    #[test]
    fn an_oidc_token_file_is_not_imported_and_says_why() {
        let text = "serverAddr = \"h\"\nauth.method = \"oidc\"\nauth.oidc.tokenSource.type = \"file\"\n\
                    auth.oidc.tokenSource.file.path = \"/run/token\"\n";
        let e = Profile::import_frpc(text).err().expect("refused");
        assert!(e.contains("/run/token") && e.contains("client ID and secret"), "{e}");
    }

    /// Every format frpc reads imports to the same profile and the same secret.
    #[test]
    fn import_reads_ini_yaml_and_json_too() {
        let (toml, secret) = Profile::from_frpc(include_str!("../../tests/fixtures/configs/frpc-oidc.toml")).unwrap();
        for text in [
            include_str!("../../tests/fixtures/configs/frpc-oidc.ini"),
            include_str!("../../tests/fixtures/configs/frpc-oidc.yaml"),
            include_str!("../../tests/fixtures/configs/frpc-oidc.json"),
        ] {
            let (p, s) = Profile::from_frpc(text).unwrap();
            assert_eq!(p, toml);
            assert_eq!(s, secret);
        }
        assert_eq!(secret.as_deref(), Some("portway-test-secret"));
    }

    /// What cannot come over is named with the reason; the rest is imported.
    #[test]
    fn import_leaves_out_what_portway_cannot_run_and_says_why() {
        let ini = "[common]\nserver_addr = 203.0.113.7\ntoken = t\n\n[ssh]\nlocal_port = 22\nremote_port = 6000\n\n\
                   [socks]\nremote_port = 6001\nplugin = socks5\n\n[secret-v]\nrole = visitor\ntype = stcp\nserver_name = x\n";
        let (p, secret, skipped) = Profile::from_frpc_salvage(ini).unwrap();
        assert_eq!(secret.as_deref(), Some("t"));
        assert_eq!(p.proxies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["ssh"]);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert_eq!(skipped[1], Skipped::PluginNotSupported { name: "socks".into(), plugin: "socks5".into() });
        assert!(
            skipped[1].to_string().starts_with("proxy socks: ")
                && skipped[1].to_string().contains("socks5 proxy plugin")
        );
        // The configuration's own error is the detail, the name is split off it.
        let Skipped::VisitorInvalid { name, detail } = &skipped[0] else { panic!("{skipped:?}") };
        assert_eq!(name, "secret-v");
        assert!(!detail.is_empty() && !detail.starts_with("secret-v"), "{detail}");
        assert!(skipped[0].to_string().starts_with("visitor secret-v: "));
        // As the window gets them: a code and the parameters its sentence names.
        assert_eq!(
            serde_json::to_value(&skipped[1]).unwrap(),
            serde_json::json!({"code": "pluginNotSupported", "name": "socks", "plugin": "socks5"})
        );
        // Settings the editor cannot keep are named, the proxy still comes over.
        let toml = "serverAddr = \"a\"\n[[proxies]]\nname = \"web\"\nlocalPort = 80\n\
                    transport.bandwidthLimit = \"1MB\"\nhealthCheck.type = \"tcp\"\n";
        let (p, _, skipped) = Profile::from_frpc_salvage(toml).unwrap();
        assert_eq!(p.proxies.len(), 1);
        assert_eq!(
            skipped,
            [Skipped::ProxySettingsDropped {
                name: "web".into(),
                settings: "healthCheck, transport.bandwidthLimit".into()
            }]
        );
        // The file's own settings must load: a broken [common] is an error, not an empty import.
        assert!(Profile::from_frpc_salvage("[common]\nserver_port = x\n").is_err());
    }

    /// Every skip reason has a sentence in both of the window's languages (ui/src/i18n), naming its parameters.
    #[test]
    fn every_skip_reason_is_translated_in_the_window() {
        let (n, d) = (String::from("x"), String::from("frp's words"));
        let all = [
            Skipped::ProxyInvalid { name: n.clone(), detail: d.clone() },
            Skipped::VisitorInvalid { name: n.clone(), detail: d },
            Skipped::TypeNotOffered { name: n.clone(), kind: "ftp".into() },
            Skipped::PluginNotSupported { name: n.clone(), plugin: "socks5".into() },
            Skipped::ProxySettingsDropped { name: n.clone(), settings: "healthCheck".into() },
            Skipped::VisitorSettingsDropped { name: n.clone(), settings: "keepTunnelOpen".into() },
            Skipped::FallbackNotImported { name: n, fallback_to: "relay".into() },
            Skipped::GlobalSettingsDropped { settings: "dnsServer".into() },
        ];
        for s in all {
            // No wildcard: a new reason fails to compile here until it is added to the list above.
            match &s {
                Skipped::ProxyInvalid { .. }
                | Skipped::VisitorInvalid { .. }
                | Skipped::TypeNotOffered { .. }
                | Skipped::PluginNotSupported { .. }
                | Skipped::ProxySettingsDropped { .. }
                | Skipped::VisitorSettingsDropped { .. }
                | Skipped::FallbackNotImported { .. } => assert_eq!(s.name(), Some("x")),
                Skipped::GlobalSettingsDropped { .. } => assert_eq!(s.name(), None),
            }
            crate::i18n::ui_catalogue::assert_translated("import.skipped", serde_json::to_value(&s).unwrap());
        }
    }

    #[test]
    fn validation_names_the_field() {
        let (mut p, _) = Profile::from_frpc(SEED).unwrap();
        p.proxies[1].name = p.proxies[0].name.clone();
        assert_eq!(p.validate().unwrap_err().field, "proxies[1].name");
        let (mut p, _) = Profile::from_frpc(SEED).unwrap();
        p.auth.token_endpoint_url = "ftp://x".into();
        assert_eq!(p.validate().unwrap_err().field, "auth.tokenEndpointUrl");
        let mut p = Profile::default();
        assert_eq!(p.validate().unwrap_err().field, "server.addr");
        p.server.addr = "example.com".into();
        p.auth.method = "token".into();
        assert!(p.validate().is_ok());
    }

    #[test]
    fn disabled_proxies_are_not_started() {
        let (mut p, _) = Profile::from_frpc(SEED).unwrap();
        p.proxies[0].enabled = false;
        let c = p.to_client_config();
        assert_eq!(c.proxies.len(), 1);
        assert_eq!(c.proxies[0].name, "TS3-Filetransfer");
        assert!(!c.login_fail_exit, "the app keeps retrying");
    }

    /// profile.json stores nothing the keychain decides: no `hasSecret`, no `hasHttpPassword`; an older file that
    /// has them is read with them ignored.
    #[test]
    fn stored_profile_has_no_computed_flags() {
        let (mut p, _) = Profile::from_frpc(SEED).unwrap();
        p.auth.has_secret = true;
        p.proxies[0].has_http_password = true;
        let text = p.to_stored_json();
        assert!(!text.contains("hasSecret") && !text.contains("hasHttpPassword"), "{text}");
        let back = Profile::from_stored_json(&text).unwrap();
        assert!(!back.auth.has_secret);
        assert_eq!(back.proxies.len(), p.proxies.len());
        // The file of the previous version (flags stored, no http fields) still loads, flags dropped.
        let old = r#"{"server":{"addr":"a","port":7000,"protocol":"tcp","tls":true},
            "auth":{"method":"token","tokenEndpointUrl":"","clientId":"","audience":"","scope":"","hasSecret":true},
            "proxies":[{"name":"ssh","type":"tcp","localIp":"127.0.0.1","localPort":22,"remotePort":6000,"enabled":true}],
            "options":{"connectOnLaunch":false,"startMinimized":false,"launchAtLogin":false}}"#;
        let p = Profile::from_stored_json(old).unwrap();
        assert!(!p.auth.has_secret);
        assert_eq!(p.proxies[0].remote_port, 6000);
        p.validate().unwrap();
    }

    #[test]
    fn http_https_and_tcpmux_rows_validate_and_reach_the_engine() {
        let toml = "serverAddr = \"example.com\"\nauth.token = \"t\"\n\
            [[proxies]]\nname = \"web\"\ntype = \"http\"\nlocalPort = 8080\ncustomDomains = [\"app.example.com\"]\n\
            locations = [\"/api\"]\nhttpUser = \"me\"\nhttpPassword = \"pw-in-file\"\nhostHeaderRewrite = \"localhost\"\n\
            [[proxies]]\nname = \"tls\"\ntype = \"https\"\nlocalPort = 8443\nsubdomain = \"secure\"\n\
            [[proxies]]\nname = \"mux\"\ntype = \"tcpmux\"\nlocalPort = 22\nmultiplexer = \"httpconnect\"\ncustomDomains = [\"ssh.example.com\"]\n";
        let i = Profile::import_frpc(toml).unwrap();
        assert_eq!(i.proxy_passwords, vec![("web".to_string(), "pw-in-file".to_string())]);
        let p = i.profile;
        p.validate().unwrap();
        assert!(!p.to_stored_json().contains("pw-in-file"), "the password goes to the keychain only");
        assert!(!p.to_frpc().contains("pw-in-file"));
        let c = p.to_client_config();
        assert_eq!(c.proxies[0].locations, ["/api"]);
        assert_eq!(c.proxies[0].http_user, "me");
        assert!(c.proxies[0].http_password.is_empty());
        assert_eq!(c.proxies[1].subdomain, "secure");
        assert_eq!(c.proxies[2].multiplexer, "httpconnect");
        let mut bad = p.clone();
        bad.proxies[0].custom_domains = vec!["http://app.example.com".into()];
        assert_eq!(bad.validate().unwrap_err().field, "proxies[0].customDomains");
        let mut bad = p.clone();
        bad.proxies[1].subdomain.clear();
        assert_eq!(bad.validate().unwrap_err().field, "proxies[1].customDomains");
        let mut bad = p.clone();
        bad.proxies[0].locations = vec!["api".into()];
        assert_eq!(bad.validate().unwrap_err().field, "proxies[0].locations");
        let mut bad = p;
        bad.proxies[0].kind = "socks".into();
        assert_eq!(bad.validate().unwrap_err().field, "proxies[0].type", "types the engine lacks are refused");
    }

    const SECRET: &str = "serverAddr = \"example.com\"\nuser = \"bob\"\nauth.token = \"t\"\n\
        [[proxies]]\nname = \"nas\"\ntype = \"stcp\"\nlocalPort = 445\nsecretKey = \"nas-key\"\n\
        allowUsers = [\"alice\", \"*\"]\n\
        [[proxies]]\nname = \"dns\"\ntype = \"sudp\"\nlocalPort = 53\nsecretKey = \"dns-key\"\n\
        [[proxies]]\nname = \"p2p\"\ntype = \"xtcp\"\nlocalPort = 22\nsecretKey = \"p2p-key\"\n\
        [[visitors]]\nname = \"lab\"\ntype = \"stcp\"\nserverName = \"ssh\"\nserverUser = \"alice\"\n\
        secretKey = \"lab-key\"\nbindPort = 6000\n\
        [[visitors]]\nname = \"lab-p2p\"\ntype = \"xtcp\"\nserverName = \"ssh-p2p\"\nsecretKey = \"p2p-v-key\"\n\
        bindAddr = \"127.0.0.2\"\nbindPort = 6001\nfallbackTo = \"lab-relay\"\nkeepTunnelOpen = true\n\
        [[visitors]]\nname = \"lab-relay\"\ntype = \"stcp\"\nserverName = \"ssh\"\nsecretKey = \"lab-key\"\nbindPort = -1\n";

    /// Secret proxies and visitors come over from frpc.toml with their secretKeys split off for the keychain; no
    /// secretKey reaches profiles.json or the export, and the export imports back to the same rows.
    #[test]
    fn secret_proxies_and_visitors_import_and_export_without_their_keys() {
        let i = Profile::import_frpc(SECRET).unwrap();
        assert_eq!(
            i.skipped,
            [Skipped::VisitorSettingsDropped { name: "lab-p2p".into(), settings: "keepTunnelOpen".into() }]
        );
        let keys = |v: &[(String, String)]| v.iter().map(|(n, k)| format!("{n}={k}")).collect::<Vec<_>>();
        assert_eq!(keys(&i.proxy_secret_keys), ["nas=nas-key", "dns=dns-key", "p2p=p2p-key"]);
        assert_eq!(keys(&i.visitor_secret_keys), ["lab=lab-key", "lab-p2p=p2p-v-key", "lab-relay=lab-key"]);
        let p = i.profile;
        p.validate().unwrap();
        assert_eq!(p.proxies[0].allow_users, ["alice", "*"]);
        assert_eq!(p.proxies[0].remote_port, 0);
        assert_eq!(p.visitors.len(), 3);
        let (lab, p2p) = (&p.visitors[0], &p.visitors[1]);
        assert_eq!((lab.server_user.as_str(), lab.bind_addr.as_str(), lab.bind_port), ("alice", "127.0.0.1", 6000));
        assert_eq!(lab.local_addr().as_deref(), Some("127.0.0.1:6000"));
        assert_eq!((p2p.kind.as_str(), p2p.fallback_to.as_str()), ("xtcp", "lab-relay"));
        assert_eq!(p.visitors[2].local_addr(), None, "bindPort -1 has no address to open");
        for text in [p.to_stored_json(), p.to_frpc()] {
            for secret in ["nas-key", "dns-key", "p2p-key", "lab-key", "p2p-v-key"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
        let mut flagged = p.clone();
        flagged.visitors[0].has_secret_key = true;
        flagged.proxies[0].has_secret_key = true;
        flagged.visitors[0].renamed_from = Some("old".into());
        let stored = flagged.to_stored_json();
        assert!(!stored.contains("hasSecretKey") && !stored.contains("renamedFrom"), "{stored}");
        assert_eq!(Profile::from_stored_json(&stored).unwrap(), p, "nothing computed comes back from the file");
        let again = Profile::import_frpc(&p.to_frpc()).unwrap();
        assert_eq!((again.profile.proxies, again.profile.visitors), (p.proxies.clone(), p.visitors.clone()));
        assert!(again.proxy_secret_keys.is_empty() && again.visitor_secret_keys.is_empty());

        // The engine gets the enabled visitors, with the type's own fields only.
        let mut q = p.clone();
        q.visitors[0].enabled = false;
        let c = q.to_client_config();
        assert_eq!(c.visitors.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["lab-p2p", "lab-relay"]);
        assert_eq!((c.visitors[0].fallback_to.as_str(), c.visitors[0].bind_addr.as_str()), ("lab-relay", "127.0.0.2"));
        assert!(c.visitors.iter().all(|v| v.secret_key.is_empty()), "the controller adds the keys");
        assert_eq!(c.proxies[0].allow_users, ["alice", "*"]);
        // A disabled visitor is exported disabled (frpc leaves it out too).
        assert!(q.to_frpc().contains("enabled = false"));
    }

    #[test]
    fn visitor_validation_names_the_field_and_the_fix() {
        let p = Profile::import_frpc(SECRET).unwrap().profile;
        let check = |f: &dyn Fn(&mut Profile), field: &str, words: &str| {
            let mut q = p.clone();
            f(&mut q);
            let e = q.validate().unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(words), "{e}");
        };
        check(&|q| q.visitors[0].server_name = " ".into(), "visitors[0].serverName", "provider's proxy");
        check(&|q| q.visitors[1].name = "lab".into(), "visitors[1].name", "another visitor");
        check(&|q| q.visitors[0].kind = "tcp".into(), "visitors[0].type", "stcp, sudp or xtcp");
        check(&|q| q.visitors[0].bind_port = 0, "visitors[0].bindPort", "1-65535");
        check(&|q| q.visitors[1].bind_port = -1, "visitors[1].bindPort", "only an stcp visitor");
        check(&|q| q.visitors[0].bind_addr = "localhost".into(), "visitors[0].bindAddr", "IP address");
        check(&|q| q.visitors[0].server_user = "a b".into(), "visitors[0].serverUser", "letters");
        check(
            &|q| {
                q.visitors[1].bind_addr = "127.0.0.1".into();
                q.visitors[1].bind_port = 6000;
            },
            "visitors[1].bindPort",
            "visitor lab uses this local port",
        );
        check(&|q| q.visitors[1].fallback_to = "nope".into(), "visitors[1].fallbackTo", "no visitor named");
        check(&|q| q.visitors[0].fallback_to = "lab-relay".into(), "visitors[0].fallbackTo", "only an xtcp");
        check(&|q| q.visitors[2].enabled = false, "visitors[1].fallbackTo", "lab-relay is disabled");
        check(&|q| q.proxies[0].allow_users = vec!["a b".into()], "proxies[0].allowUsers", "not a user name");
        // A sudp visitor may share a TCP visitor's port number (UDP and TCP ports are apart); a disabled one too.
        let mut q = p.clone();
        q.visitors[2] =
            VisitorDef { kind: "sudp".into(), bind_port: 6000, fallback_to: String::new(), ..q.visitors[0].clone() };
        q.visitors[2].name = "dns".into();
        q.visitors[1].fallback_to.clear();
        q.validate().unwrap();
    }
}
