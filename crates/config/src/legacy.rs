//! frp's legacy INI configs (`frpc.ini`, `frps.ini`) mapped onto the current model's keys, as frp's own conversion
//! maps them (`pkg/config/legacy`): `[common]` with snake_case keys, one section per proxy (or visitor, with
//! `role = visitor`), `[range:name]` sections expanded to `name_0`, `name_1`, ... and, for the server,
//! `[plugin.name]` sections. Zero and empty values mean "unset" there, so they are left out and the model's default
//! applies, as in frp.
//!
//! Where Portway differs from frp, it says so: a value that is not a number or boolean is an error naming the line
//! (frp silently keeps the default), a key frp does not read is a warning naming the line (frp says nothing), and
//! `privilege_token` (the name of `token` before frp 0.14) is read as `auth.token` with a warning (frp v0.70 drops it).

use crate::ini::{Key, Section};
use crate::node::{Node, Value};
use crate::schema::nearest;

/// How a value is typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Bool,
    /// Comma-separated list.
    List,
    /// `"2000-3000,3001"` → `[{ start, end }, { single }]`.
    Ports,
}

use Kind::*;

const CLIENT_COMMON: &[(&str, &str, Kind)] = &[
    ("authentication_method", "auth.method", Str),
    ("token", "auth.token", Str),
    ("oidc_client_id", "auth.oidc.clientID", Str),
    ("oidc_client_secret", "auth.oidc.clientSecret", Str),
    ("oidc_audience", "auth.oidc.audience", Str),
    ("oidc_scope", "auth.oidc.scope", Str),
    ("oidc_token_endpoint_url", "auth.oidc.tokenEndpointURL", Str),
    ("server_addr", "serverAddr", Str),
    ("server_port", "serverPort", Int),
    ("nat_hole_stun_server", "natHoleStunServer", Str),
    ("dial_server_timeout", "transport.dialServerTimeout", Int),
    ("dial_server_keepalive", "transport.dialServerKeepalive", Int),
    ("connect_server_local_ip", "transport.connectServerLocalIP", Str),
    ("http_proxy", "transport.proxyURL", Str),
    ("log_file", "log.to", Str),
    ("log_level", "log.level", Str),
    ("log_max_days", "log.maxDays", Int),
    ("disable_log_color", "log.disablePrintColor", Bool),
    ("admin_addr", "webServer.addr", Str),
    ("admin_port", "webServer.port", Int),
    ("admin_user", "webServer.user", Str),
    ("admin_pwd", "webServer.password", Str),
    ("assets_dir", "webServer.assetsDir", Str),
    ("pprof_enable", "webServer.pprofEnable", Bool),
    ("pool_count", "transport.poolCount", Int),
    ("tcp_mux", "transport.tcpMux", Bool),
    ("tcp_mux_keepalive_interval", "transport.tcpMuxKeepaliveInterval", Int),
    ("user", "user", Str),
    ("dns_server", "dnsServer", Str),
    ("login_fail_exit", "loginFailExit", Bool),
    ("start", "start", List),
    ("protocol", "transport.protocol", Str),
    ("quic_keepalive_period", "transport.quic.keepalivePeriod", Int),
    ("quic_max_idle_timeout", "transport.quic.maxIdleTimeout", Int),
    ("quic_max_incoming_streams", "transport.quic.maxIncomingStreams", Int),
    ("tls_enable", "transport.tls.enable", Bool),
    ("tls_cert_file", "transport.tls.certFile", Str),
    ("tls_key_file", "transport.tls.keyFile", Str),
    ("tls_trusted_ca_file", "transport.tls.trustedCaFile", Str),
    ("tls_server_name", "transport.tls.serverName", Str),
    ("disable_custom_tls_first_byte", "transport.tls.disableCustomTLSFirstByte", Bool),
    ("heartbeat_interval", "transport.heartbeatInterval", Int),
    ("heartbeat_timeout", "transport.heartbeatTimeout", Int),
    ("udp_packet_size", "udpPacketSize", Int),
    ("includes", "includes", List),
];

const SERVER_COMMON: &[(&str, &str, Kind)] = &[
    ("authentication_method", "auth.method", Str),
    ("token", "auth.token", Str),
    ("oidc_issuer", "auth.oidc.issuer", Str),
    ("oidc_audience", "auth.oidc.audience", Str),
    ("oidc_skip_expiry_check", "auth.oidc.skipExpiryCheck", Bool),
    ("oidc_skip_issuer_check", "auth.oidc.skipIssuerCheck", Bool),
    ("bind_addr", "bindAddr", Str),
    ("bind_port", "bindPort", Int),
    ("kcp_bind_port", "kcpBindPort", Int),
    ("quic_bind_port", "quicBindPort", Int),
    ("quic_keepalive_period", "transport.quic.keepalivePeriod", Int),
    ("quic_max_idle_timeout", "transport.quic.maxIdleTimeout", Int),
    ("quic_max_incoming_streams", "transport.quic.maxIncomingStreams", Int),
    ("proxy_bind_addr", "proxyBindAddr", Str),
    ("vhost_http_port", "vhostHTTPPort", Int),
    ("vhost_https_port", "vhostHTTPSPort", Int),
    ("vhost_http_timeout", "vhostHTTPTimeout", Int),
    ("tcpmux_httpconnect_port", "tcpmuxHTTPConnectPort", Int),
    ("tcpmux_passthrough", "tcpmuxPassthrough", Bool),
    ("dashboard_addr", "webServer.addr", Str),
    ("dashboard_port", "webServer.port", Int),
    ("dashboard_user", "webServer.user", Str),
    ("dashboard_pwd", "webServer.password", Str),
    ("enable_prometheus", "enablePrometheus", Bool),
    ("assets_dir", "webServer.assetsDir", Str),
    ("log_file", "log.to", Str),
    ("log_level", "log.level", Str),
    ("log_max_days", "log.maxDays", Int),
    ("disable_log_color", "log.disablePrintColor", Bool),
    ("detailed_errors_to_client", "detailedErrorsToClient", Bool),
    ("subdomain_host", "subDomainHost", Str),
    ("tcp_mux", "transport.tcpMux", Bool),
    ("tcp_mux_keepalive_interval", "transport.tcpMuxKeepaliveInterval", Int),
    ("tcp_keepalive", "transport.tcpKeepalive", Int),
    ("custom_404_page", "custom404Page", Str),
    ("allow_ports", "allowPorts", Ports),
    ("max_pool_count", "transport.maxPoolCount", Int),
    ("max_ports_per_client", "maxPortsPerClient", Int),
    ("tls_only", "transport.tls.force", Bool),
    ("tls_cert_file", "transport.tls.certFile", Str),
    ("tls_key_file", "transport.tls.keyFile", Str),
    ("tls_trusted_ca_file", "transport.tls.trustedCaFile", Str),
    ("heartbeat_timeout", "transport.heartbeatTimeout", Int),
    ("user_conn_timeout", "userConnTimeout", Int),
    ("udp_packet_size", "udpPacketSize", Int),
    ("nat_hole_analysis_data_reserve_hours", "natholeAnalysisDataReserveHours", Int),
];

/// Keys every proxy section may have.
const PROXY_BASE: &[(&str, &str, Kind)] = &[
    ("use_encryption", "transport.useEncryption", Bool),
    ("use_compression", "transport.useCompression", Bool),
    ("group", "loadBalancer.group", Str),
    ("group_key", "loadBalancer.groupKey", Str),
    ("proxy_protocol_version", "transport.proxyProtocolVersion", Str),
    ("bandwidth_limit", "transport.bandwidthLimit", Str),
    ("bandwidth_limit_mode", "transport.bandwidthLimitMode", Str),
    ("local_ip", "localIP", Str),
    ("local_port", "localPort", Int),
    ("plugin", "plugin.type", Str),
    ("health_check_type", "healthCheck.type", Str),
    ("health_check_timeout_s", "healthCheck.timeoutSeconds", Int),
    ("health_check_max_failed", "healthCheck.maxFailed", Int),
    ("health_check_interval_s", "healthCheck.intervalSeconds", Int),
    ("health_check_url", "healthCheck.path", Str),
];

/// Keys of one proxy type, beyond [`PROXY_BASE`].
fn proxy_keys(kind: &str) -> &'static [(&'static str, &'static str, Kind)] {
    match kind {
        "tcp" | "udp" => &[("remote_port", "remotePort", Int)],
        "http" => &[
            ("custom_domains", "customDomains", List),
            ("subdomain", "subdomain", Str),
            ("locations", "locations", List),
            ("http_user", "httpUser", Str),
            ("http_pwd", "httpPassword", Str),
            ("host_header_rewrite", "hostHeaderRewrite", Str),
            ("route_by_http_user", "routeByHTTPUser", Str),
        ],
        "https" => &[("custom_domains", "customDomains", List), ("subdomain", "subdomain", Str)],
        "tcpmux" => &[
            ("custom_domains", "customDomains", List),
            ("subdomain", "subdomain", Str),
            ("http_user", "httpUser", Str),
            ("http_pwd", "httpPassword", Str),
            ("route_by_http_user", "routeByHTTPUser", Str),
            ("multiplexer", "multiplexer", Str),
        ],
        "stcp" | "xtcp" | "sudp" => &[("sk", "secretKey", Str), ("allow_users", "allowUsers", List)],
        _ => &[],
    }
}

const VISITOR_BASE: &[(&str, &str, Kind)] = &[
    ("use_encryption", "transport.useEncryption", Bool),
    ("use_compression", "transport.useCompression", Bool),
    ("sk", "secretKey", Str),
    ("server_user", "serverUser", Str),
    ("server_name", "serverName", Str),
    ("bind_addr", "bindAddr", Str),
    ("bind_port", "bindPort", Int),
];

const XTCP_VISITOR: &[(&str, &str, Kind)] = &[
    ("protocol", "protocol", Str),
    ("keep_tunnel_open", "keepTunnelOpen", Bool),
    ("max_retries_an_hour", "maxRetriesAnHour", Int),
    ("min_retry_interval", "minRetryInterval", Int),
    ("fallback_to", "fallbackTo", Str),
    ("fallback_timeout_ms", "fallbackTimeoutMs", Int),
];

/// Plugin parameters per plugin: INI key → option.
fn plugin_keys(plugin: &str) -> &'static [(&'static str, &'static str)] {
    match plugin {
        "http2https" => &[("plugin_local_addr", "localAddr"), ("plugin_host_header_rewrite", "hostHeaderRewrite")],
        "http_proxy" => &[("plugin_http_user", "httpUser"), ("plugin_http_passwd", "httpPassword")],
        "https2http" | "https2https" => &[
            ("plugin_local_addr", "localAddr"),
            ("plugin_host_header_rewrite", "hostHeaderRewrite"),
            ("plugin_crt_path", "crtPath"),
            ("plugin_key_path", "keyPath"),
        ],
        "socks5" => &[("plugin_user", "username"), ("plugin_passwd", "password")],
        "static_file" => &[
            ("plugin_local_path", "localPath"),
            ("plugin_strip_prefix", "stripPrefix"),
            ("plugin_http_user", "httpUser"),
            ("plugin_http_passwd", "httpPassword"),
        ],
        "unix_domain_socket" => &[("plugin_unix_path", "unixPath")],
        _ => &[],
    }
}

/// Keys older frp versions had that frp v0.70 reads no more: left out with a note, as frp leaves them out.
const OBSOLETE: &[&str] = &[
    "log_way",
    "privilege_mode",
    "privilege_allow_ports",
    "bind_udp_port",
    "auth_timeout",
    "login_fail_exit_timeout",
    "dashboard_tls_mode",
    "dashboard_tls_cert_file",
    "dashboard_tls_key_file",
    "role",
];

/// A mapped legacy file.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// The current model's keys.
    pub node: Node,
    /// What was renamed in a way worth a comment, or dropped: `(line, text)`, for `convert`.
    pub notes: Vec<(usize, String)>,
    /// Keys frp does not read or reads differently: said to the user, loading goes on.
    pub warnings: Vec<String>,
}

/// A value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: [{section}] `{key}`: {message}")]
pub struct LegacyError {
    /// 1-based line.
    pub line: usize,
    /// The section.
    pub section: String,
    /// The key.
    pub key: String,
    /// What is wrong and what to do (never the value of a secret).
    pub message: String,
}

struct Mapper {
    notes: Vec<(usize, String)>,
    warnings: Vec<String>,
}

impl Mapper {
    fn typed(&self, sec: &str, k: &Key, kind: Kind) -> Result<Option<Value>, LegacyError> {
        let err = |message: String| LegacyError { line: k.line, section: sec.into(), key: k.name.clone(), message };
        let v = k.value.trim();
        if v.contains("{{") && kind != Str && kind != List {
            return Ok(Some(Value::Raw(v.to_string())));
        }
        Ok(match kind {
            Str if v.is_empty() => None,
            Str => Some(Value::Str(v.to_string())),
            Int => {
                let n = parse_int(v).ok_or_else(|| {
                    err(format!("{v:?} is not a whole number (frp would silently use the default; give a number)"))
                })?;
                (n != 0).then_some(Value::Int(n))
            }
            Bool => Some(Value::Bool(
                parse_bool(v)
                    .ok_or_else(|| err(format!("{v:?} is not true or false (frp would silently use the default)")))?,
            )),
            List => {
                let items = split_list(v);
                (!items.is_empty())
                    .then(|| Value::Seq(items.into_iter().map(|s| Node::at(Value::Str(s), Some(k.line))).collect()))
            }
            Ports => Some(Value::Seq(
                parse_ports(v)
                    .map_err(|m| err(format!("{m}; write it as \"2000-3000,3001\"")))?
                    .into_iter()
                    .map(|n| Node::at(n, Some(k.line)))
                    .collect(),
            )),
        })
    }

    /// Maps the keys of `sec` listed in `tables` into `out`; returns the keys no table knows.
    fn map_keys<'s>(
        &mut self,
        sec: &'s Section,
        out: &mut Node,
        tables: &[&[(&str, &str, Kind)]],
    ) -> Result<Vec<&'s Key>, LegacyError> {
        let mut rest = Vec::new();
        for k in &sec.keys {
            match tables.iter().flat_map(|t| t.iter()).find(|(ini, _, _)| *ini == k.name) {
                Some((_, path, kind)) => {
                    if let Some(v) = self.typed(&sec.name, k, *kind)? {
                        out.set_path(path, Node::at(v, Some(k.line)));
                    }
                }
                None => rest.push(k),
            }
        }
        Ok(rest)
    }

    fn unknown(&mut self, sec: &Section, k: &Key, file_kind: &str, tables: &[&[(&str, &str, Kind)]]) {
        if OBSOLETE.contains(&k.name.as_str()) {
            if k.name != "role" {
                self.notes.push((k.line, format!("`{}` dropped: frp v0.70 no longer reads it", k.name)));
            }
            return;
        }
        let hint = nearest(&k.name, tables.iter().flat_map(|t| t.iter()).map(|(ini, _, _)| *ini))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        self.warnings.push(format!(
            "line {}: [{}] `{}` is not an {file_kind} key; ignored, as frp ignores it{hint}",
            k.line, sec.name, k.name
        ));
        self.notes.push((k.line, format!("`{}` dropped: not an {file_kind} key", k.name)));
    }
}

fn parse_int(v: &str) -> Option<i64> {
    let (neg, d) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let n = if let Some(h) = d.strip_prefix("0x").or_else(|| d.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if d.len() > 1 && d.starts_with('0') {
        i64::from_str_radix(&d[1..], 8).ok()?
    } else {
        d.parse().ok()?
    };
    Some(if neg { -n } else { n })
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" | "YES" | "yes" | "Yes" | "y" | "Y" | "ON" | "on" | "On" => {
            Some(true)
        }
        "0" | "f" | "F" | "FALSE" | "false" | "False" | "NO" | "no" | "No" | "n" | "N" | "OFF" | "off" | "Off" => {
            Some(false)
        }
        _ => None,
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// `"6000-6002,6007"` → 6000, 6001, 6002, 6007 (in order, repeats kept), as frp's `ParseRangeNumbers`.
pub fn parse_range_numbers(v: &str) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    for item in v.split(',') {
        let parts: Vec<&str> = item.split('-').map(str::trim).collect();
        let num = |s: &str| s.parse::<i64>().map_err(|_| format!("{s:?} in {v:?} is not a number"));
        match parts.as_slice() {
            [one] => out.push(num(one)?),
            [a, b] => {
                let (a, b) = (num(a)?, num(b)?);
                if b < a {
                    return Err(format!("range {item:?} ends before it starts"));
                }
                if b - a > 65_535 {
                    return Err(format!("range {item:?} is larger than the port space"));
                }
                out.extend(a..=b);
            }
            _ => return Err(format!("{item:?} in {v:?} is not a number or a range a-b")),
        }
    }
    Ok(out)
}

fn parse_ports(v: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for item in v.split(',') {
        let parts: Vec<&str> = item.split('-').map(str::trim).collect();
        let num = |s: &str| s.parse::<i64>().map_err(|_| format!("{s:?} is not a port number"));
        let entry = |pairs: Vec<(&str, i64)>| {
            Value::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| crate::node::Entry { key: k.into(), line: None, node: Node::new(Value::Int(v)) })
                    .collect(),
            )
        };
        match parts.as_slice() {
            [one] => out.push(entry(vec![("single", num(one)?)])),
            [a, b] => {
                let (a, b) = (num(a)?, num(b)?);
                if b < a {
                    return Err(format!("port range {item:?} ends before it starts"));
                }
                out.push(entry(vec![("start", a), ("end", b)]));
            }
            _ => return Err(format!("{item:?} is not a port or a range a-b")),
        }
    }
    Ok(out)
}

fn common<'s>(sections: &'s [Section], file_kind: &str) -> Result<&'s Section, LegacyError> {
    sections.iter().find(|s| s.name == "common").ok_or_else(|| LegacyError {
        line: 1,
        section: "common".into(),
        key: String::new(),
        message: format!("an {file_kind} needs a [common] section (frp: \"section [common] not found\")"),
    })
}

/// Maps a legacy `frpc.ini`.
pub fn client(sections: &[Section]) -> Result<Mapped, LegacyError> {
    client_sections(sections, true)
}

/// Maps a file `includes` names in a legacy `frpc.ini`: proxy and visitor sections, no `[common]` needed.
pub fn client_include(sections: &[Section]) -> Result<Mapped, LegacyError> {
    client_sections(sections, false)
}

fn client_sections(sections: &[Section], main: bool) -> Result<Mapped, LegacyError> {
    let mut m = Mapper { notes: Vec::new(), warnings: Vec::new() };
    let mut node = Node::map();
    let empty = Section { name: "common".into(), line: 0, keys: Vec::new() };
    let c = if main {
        common(sections, "frpc.ini")?
    } else {
        sections.iter().find(|s| s.name == "common").unwrap_or(&empty)
    };
    let rest = m.map_keys(c, &mut node, &[CLIENT_COMMON])?;
    let mut scopes = Vec::new();
    for k in rest {
        let (prefix_meta, prefix_oidc) = (k.name.strip_prefix("meta_"), k.name.strip_prefix("oidc_additional_"));
        if let Some(x) = prefix_meta {
            if let Some(md) = node.table_mut("metadatas", Some(k.line)) {
                md.push_entry(x, Node::at(Value::Str(k.value.clone()), Some(k.line)));
            }
        } else if let Some(x) = prefix_oidc {
            if let Some(params) = node.table_mut("auth.oidc.additionalEndpointParams", Some(k.line)) {
                params.push_entry(x, Node::at(Value::Str(k.value.clone()), Some(k.line)));
            }
        } else if k.name == "authenticate_heartbeats" || k.name == "authenticate_new_work_conns" {
            if m.typed("common", k, Bool)? == Some(Value::Bool(true)) {
                let scope = if k.name == "authenticate_heartbeats" { "HeartBeats" } else { "NewWorkConns" };
                scopes.push((scope, k.line));
            }
        } else if k.name == "privilege_token" {
            if c.get("token").is_none() {
                node.set_path("auth.token", Node::at(Value::Str(k.value.clone()), Some(k.line)));
            }
            m.warnings.push(format!(
                "line {}: [common] `privilege_token` is the name frp before 0.14 gave `token`; Portway reads it as \
                 auth.token (frp v0.70 ignores it and logs in with an empty token)",
                k.line
            ));
            m.notes.push((k.line, "`privilege_token` (frp < 0.14) read as auth.token".into()));
        } else {
            m.unknown(c, k, "frpc.ini", &[CLIENT_COMMON]);
        }
    }
    scopes.sort_by_key(|(s, _)| *s != "HeartBeats");
    for (s, line) in scopes {
        let mut auth = node.get("auth").cloned().unwrap_or_else(Node::map);
        auth.push_to("additionalScopes", Node::at(Value::Str(s.into()), Some(line)));
        node.set_path("auth", auth);
    }

    let mut expanded: Vec<Section> = Vec::new();
    for s in sections {
        if s.name == "common" || s.name == "DEFAULT" {
            continue;
        }
        match s.name.strip_prefix("range:") {
            Some(prefix) => expanded.extend(expand_range(s, prefix.trim())?),
            None => expanded.push(s.clone()),
        }
    }
    for s in &expanded {
        let role = s.get("role").map(|k| k.value.trim()).unwrap_or("");
        let kind = s.get("type").map(|k| k.value.trim().to_string()).unwrap_or_default();
        let mut p = Node::at(Value::Map(Vec::new()), Some(s.line));
        p.set_path("name", Node::at(Value::Str(s.name.clone()), Some(s.line)));
        match role {
            "" | "server" => {
                if !matches!(kind.as_str(), "" | "tcp" | "udp" | "http" | "https" | "tcpmux" | "stcp" | "xtcp" | "sudp")
                {
                    return Err(LegacyError {
                        line: s.get("type").map_or(s.line, |k| k.line),
                        section: s.name.clone(),
                        key: "type".into(),
                        message: format!(
                            "{kind:?} is not an frp proxy type (tcp, udp, http, https, tcpmux, stcp, xtcp, sudp)"
                        ),
                    });
                }
                let kind = if kind.is_empty() { "tcp".to_string() } else { kind };
                p.set_path("type", Node::at(Value::Str(kind.clone()), s.get("type").map(|k| k.line).or(Some(s.line))));
                let tables: [&[(&str, &str, Kind)]; 2] = [PROXY_BASE, proxy_keys(&kind)];
                let rest = m.map_keys(s, &mut p, &tables)?;
                let plugin = s.get("plugin").map(|k| k.value.trim().to_string()).unwrap_or_default();
                for k in rest {
                    if k.name == "type" || k.name == "role" {
                        continue;
                    }
                    let plugin_opt = plugin_keys(&plugin).iter().find(|(ini, _)| *ini == k.name);
                    if let Some((_, opt)) = plugin_opt {
                        p.set_path(&format!("plugin.{opt}"), Node::at(Value::Str(k.value.clone()), Some(k.line)));
                    } else if let Some(h) = k.name.strip_prefix("plugin_header_").filter(|_| plugin.contains("http")) {
                        if let Some(set) = p.table_mut("plugin.requestHeaders.set", Some(k.line)) {
                            set.push_entry(h, Node::at(Value::Str(k.value.clone()), Some(k.line)));
                        }
                    } else if let Some(h) = k.name.strip_prefix("header_").filter(|_| kind == "http") {
                        if let Some(set) = p.table_mut("requestHeaders.set", Some(k.line)) {
                            set.push_entry(h, Node::at(Value::Str(k.value.clone()), Some(k.line)));
                        }
                    } else if let Some(x) = k.name.strip_prefix("meta_") {
                        if let Some(md) = p.table_mut("metadatas", Some(k.line)) {
                            md.push_entry(x, Node::at(Value::Str(k.value.clone()), Some(k.line)));
                        }
                    } else if k.name == "health_check_addr" {
                    } else if [
                        PROXY_BASE,
                        proxy_keys("tcp"),
                        proxy_keys("http"),
                        proxy_keys("tcpmux"),
                        proxy_keys("stcp"),
                    ]
                    .iter()
                    .any(|t| t.iter().any(|(ini, _, _)| *ini == k.name))
                    {
                        m.warnings.push(format!(
                            "line {}: [{}] `{}` does not apply to a {kind} proxy; ignored, as frp ignores it",
                            k.line, s.name, k.name
                        ));
                        m.notes.push((k.line, format!("`{}` dropped: does not apply to a {kind} proxy", k.name)));
                    } else {
                        m.unknown(s, k, "frpc.ini proxy", &tables);
                    }
                }
                node.push_to("proxies", p);
            }
            "visitor" => {
                if !matches!(kind.as_str(), "stcp" | "xtcp" | "sudp") {
                    return Err(LegacyError {
                        line: s.get("type").map_or(s.line, |k| k.line),
                        section: s.name.clone(),
                        key: "type".into(),
                        message: format!("a visitor's type must be stcp, xtcp or sudp, not {kind:?}"),
                    });
                }
                p.set_path("type", Node::at(Value::Str(kind.clone()), s.get("type").map(|k| k.line)));
                let xtcp: &[(&str, &str, Kind)] = if kind == "xtcp" { XTCP_VISITOR } else { &[] };
                let rest = m.map_keys(s, &mut p, &[VISITOR_BASE, xtcp])?;
                if p.get("bindAddr").is_none() {
                    p.set_path("bindAddr", Node::new(Value::Str("127.0.0.1".into())));
                }
                for k in rest {
                    if k.name != "type" && k.name != "role" {
                        m.unknown(s, k, "frpc.ini visitor", &[VISITOR_BASE, xtcp]);
                    }
                }
                node.push_to("visitors", p);
            }
            r => {
                return Err(LegacyError {
                    line: s.get("role").map_or(s.line, |k| k.line),
                    section: s.name.clone(),
                    key: "role".into(),
                    message: format!("{r:?} is not \"server\" or \"visitor\""),
                })
            }
        }
    }
    Ok(Mapped { node, notes: m.notes, warnings: m.warnings })
}

/// `[range:name]` → `name_0`, `name_1`, ... with the i-th local and remote port each.
fn expand_range(s: &Section, prefix: &str) -> Result<Vec<Section>, LegacyError> {
    let err = |key: &str, line: usize, message: String| LegacyError {
        line,
        section: s.name.clone(),
        key: key.into(),
        message,
    };
    let (Some(local), Some(remote)) = (s.get("local_port"), s.get("remote_port")) else {
        return Err(err("local_port", s.line, "a [range:] section needs both local_port and remote_port".into()));
    };
    let locals = parse_range_numbers(&local.value).map_err(|m| err("local_port", local.line, m))?;
    let remotes = parse_range_numbers(&remote.value).map_err(|m| err("remote_port", remote.line, m))?;
    if locals.len() != remotes.len() {
        return Err(err(
            "remote_port",
            remote.line,
            format!(
                "{} local ports but {} remote ports; give as many of each (frp: \"local ports number should be same \
                 with remote ports number\")",
                locals.len(),
                remotes.len()
            ),
        ));
    }
    Ok(locals
        .iter()
        .zip(&remotes)
        .enumerate()
        .map(|(i, (l, r))| {
            let mut keys = s.keys.clone();
            for k in &mut keys {
                if k.name == "local_port" {
                    k.value = l.to_string();
                } else if k.name == "remote_port" {
                    k.value = r.to_string();
                }
            }
            Section { name: format!("{prefix}_{i}"), line: s.line, keys }
        })
        .collect())
}

/// Maps a legacy `frps.ini`.
pub fn server(sections: &[Section]) -> Result<Mapped, LegacyError> {
    let mut m = Mapper { notes: Vec::new(), warnings: Vec::new() };
    let mut node = Node::map();
    let c = common(sections, "frps.ini")?;
    let rest = m.map_keys(c, &mut node, &[SERVER_COMMON])?;
    let mut scopes = Vec::new();
    for k in rest {
        if k.name == "authenticate_heartbeats" || k.name == "authenticate_new_work_conns" {
            if m.typed("common", k, Bool)? == Some(Value::Bool(true)) {
                scopes.push(if k.name == "authenticate_heartbeats" { "HeartBeats" } else { "NewWorkConns" });
            }
        } else if k.name == "privilege_token" {
            if c.get("token").is_none() {
                node.set_path("auth.token", Node::at(Value::Str(k.value.clone()), Some(k.line)));
            }
            m.warnings.push(format!(
                "line {}: [common] `privilege_token` is the name frp before 0.14 gave `token`; Portway reads it as \
                 auth.token (frp v0.70 ignores it)",
                k.line
            ));
            m.notes.push((k.line, "`privilege_token` (frp < 0.14) read as auth.token".into()));
        } else if k.name == "dashboard_tls_mode" && parse_bool(k.value.trim()) == Some(true) {
            for (ini, path) in [
                ("dashboard_tls_cert_file", "webServer.tls.certFile"),
                ("dashboard_tls_key_file", "webServer.tls.keyFile"),
            ] {
                if let Some(f) = c.get(ini).filter(|f| !f.value.trim().is_empty()) {
                    node.set_path(path, Node::at(Value::Str(f.value.trim().into()), Some(f.line)));
                }
            }
        } else if k.name.starts_with("dashboard_tls_") {
        } else {
            m.unknown(c, k, "frps.ini", &[SERVER_COMMON]);
        }
    }
    scopes.sort_by_key(|s| *s != "HeartBeats");
    for s in scopes {
        let mut auth = node.get("auth").cloned().unwrap_or_else(Node::map);
        auth.push_to("additionalScopes", Node::new(Value::Str(s.into())));
        node.set_path("auth", auth);
    }
    // frp's legacy dashboard listened on 0.0.0.0 unless told otherwise.
    if c.get("dashboard_port").is_some() && c.get("dashboard_addr").is_none() {
        node.set_path("webServer.addr", Node::new(Value::Str("0.0.0.0".into())));
        m.notes.push((
            c.get("dashboard_port").map_or(0, |k| k.line),
            "webServer.addr: frp's legacy default 0.0.0.0".into(),
        ));
    }
    for s in sections {
        let Some(name) = s.name.strip_prefix("plugin.") else {
            if s.name != "common" && s.name != "DEFAULT" {
                m.warnings.push(format!(
                    "line {}: section [{}] means nothing in an frps.ini; ignored, as frp ignores it",
                    s.line, s.name
                ));
            }
            continue;
        };
        let mut p = Node::at(Value::Map(Vec::new()), Some(s.line));
        p.set_path("name", Node::at(Value::Str(name.trim().into()), Some(s.line)));
        // frp's legacy loader reads `tls_verify` (its INI tag); `tlsVerify` is accepted too.
        const PLUGIN: &[(&str, &str, Kind)] = &[
            ("addr", "addr", Str),
            ("path", "path", Str),
            ("ops", "ops", List),
            ("tls_verify", "tlsVerify", Bool),
            ("tlsVerify", "tlsVerify", Bool),
        ];
        let rest = m.map_keys(s, &mut p, &[PLUGIN])?;
        for k in rest {
            m.unknown(s, k, "frps.ini plugin", &[PLUGIN]);
        }
        node.push_to("httpPlugins", p);
    }
    Ok(Mapped { node, notes: m.notes, warnings: m.warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ini;

    fn s(node: &Node, path: &str) -> Value {
        let mut cur = node;
        for p in path.split('.') {
            cur = cur.get(p).unwrap_or_else(|| panic!("{path} missing in {node:?}"));
        }
        cur.value.clone()
    }

    #[test]
    fn client_common_proxies_visitors_and_ranges() {
        let text = "[common]\nserver_addr = frp.example.com\nserver_port = 7000\nprivilege_token = old\n\
                    authenticate_new_work_conns = true\nauthenticate_heartbeats = yes\nmeta_team = ops\nlog_way = file\n\
                    tcp_mux = false\nbogus_key = 1\n\n[ssh]\nlocal_port = 22\nremote_port = 6000\nuse_encryption = true\n\n\
                    [web]\ntype = http\nlocal_port = 80\ncustom_domains = a.example.com, b.example.com\nheader_X-From-Where = frp\n\
                    remote_port = 1\n\n[range:game]\ntype = udp\nlocal_port = 6000-6001,6005\nremote_port = 7000-7002\n\n\
                    [v]\nrole = visitor\ntype = stcp\nserver_name = secret\nsk = k\nbind_port = 9000\n";
        let m = client(&ini::parse(text).unwrap()).unwrap();
        let n = &m.node;
        assert_eq!(s(n, "serverPort"), Value::Int(7000));
        assert_eq!(s(n, "auth.token"), Value::Str("old".into()));
        assert_eq!(s(n, "transport.tcpMux"), Value::Bool(false));
        assert_eq!(s(n, "metadatas.team"), Value::Str("ops".into()));
        let Value::Seq(scopes) = s(n, "auth.additionalScopes") else { panic!() };
        assert_eq!(scopes[0].value, Value::Str("HeartBeats".into()));
        let Value::Seq(p) = s(n, "proxies") else { panic!() };
        assert_eq!(p.len(), 5);
        assert_eq!(s(&p[0], "type"), Value::Str("tcp".into()));
        assert_eq!(s(&p[0], "transport.useEncryption"), Value::Bool(true));
        assert_eq!(s(&p[1], "requestHeaders.set.X-From-Where"), Value::Str("frp".into()));
        let Value::Seq(domains) = s(&p[1], "customDomains") else { panic!() };
        assert_eq!(domains.len(), 2);
        assert!(p[1].get("remotePort").is_none());
        assert_eq!(
            (s(&p[4], "name"), s(&p[4], "localPort"), s(&p[4], "remotePort")),
            (Value::Str("game_2".into()), Value::Int(6005), Value::Int(7002))
        );
        let Value::Seq(v) = s(n, "visitors") else { panic!() };
        assert_eq!(s(&v[0], "bindAddr"), Value::Str("127.0.0.1".into()));
        assert_eq!(s(&v[0], "secretKey"), Value::Str("k".into()));
        assert!(m.warnings.iter().any(|w| w.contains("privilege_token")), "{:?}", m.warnings);
        assert!(m.warnings.iter().any(|w| w.starts_with("line 10: [common] `bogus_key`")), "{:?}", m.warnings);
        assert!(
            m.warnings.iter().any(|w| w.contains("`remote_port` does not apply to a http proxy")),
            "{:?}",
            m.warnings
        );
        assert!(m.notes.iter().any(|(l, t)| *l == 8 && t.contains("log_way")), "{:?}", m.notes);
    }

    #[test]
    fn errors_name_line_section_and_key() {
        let e = client(&ini::parse("[common]\nserver_port = abc\n").unwrap()).unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (2, "server_port"));
        let e = client(&ini::parse("[common]\n[r:x]\n[range:x]\nlocal_port = 1-3\nremote_port = 5\n").unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("3 local ports but 1 remote ports"), "{e}");
        let e = client(&ini::parse("[ssh]\nlocal_port = 22\n").unwrap()).unwrap_err();
        assert!(e.to_string().contains("[common]"), "{e}");
        let e = client(&ini::parse("[common]\n[x]\ntype = ftp\n").unwrap()).unwrap_err();
        assert_eq!((e.line, e.section.as_str()), (3, "x"));
    }

    #[test]
    fn server_common_ports_and_plugins() {
        let text = "[common]\nbind_port = 7000\nvhost_http_port = 8080\ndashboard_port = 7500\ndashboard_pwd = pw\n\
                    allow_ports = 2000-3000,3001\ntls_only = true\n\n[plugin.user-manager]\naddr = 127.0.0.1:9000\npath = /handler\nops = Login, NewProxy\n\
                    tls_verify = true\n";
        let m = server(&ini::parse(text).unwrap()).unwrap();
        let n = &m.node;
        assert_eq!(s(n, "vhostHTTPPort"), Value::Int(8080));
        assert_eq!(s(n, "webServer.addr"), Value::Str("0.0.0.0".into()));
        assert_eq!(s(n, "transport.tls.force"), Value::Bool(true));
        let Value::Seq(ports) = s(n, "allowPorts") else { panic!() };
        assert_eq!(s(&ports[0], "end"), Value::Int(3000));
        assert_eq!(s(&ports[1], "single"), Value::Int(3001));
        let Value::Seq(pl) = s(n, "httpPlugins") else { panic!() };
        assert_eq!(s(&pl[0], "name"), Value::Str("user-manager".into()));
        let Value::Seq(ops) = s(&pl[0], "ops") else { panic!() };
        assert_eq!(ops[1].value, Value::Str("NewProxy".into()));
        assert_eq!(s(&pl[0], "tlsVerify"), Value::Bool(true));
        let e = server(&ini::parse("[common]\nallow_ports = 3000-2000\n").unwrap()).unwrap_err();
        assert_eq!(e.line, 2);
    }
}
