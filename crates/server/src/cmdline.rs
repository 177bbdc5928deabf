//! frps's command-line flags (`frps -p 7000 -t secret --dashboard_port 7500`): used when no configuration file
//! is given, they become the same `frps.toml` keys a file would set and go through the same loader, so the same
//! values are refused with the same messages.
//!
//! frp spells its flags with underscores and accepts hyphens for them too; so does Portway.

use serde_json::{json, Map, Value};

use crate::config::{ConfigError, LoadOptions, Loaded, ServerConfig};

use portway_config::flags::{get, put, SOURCE};

/// frps's flags (global, as frps's are persistent: `portway-server verify -p 7000` checks them). `None` means "not given": the key keeps its frps.toml default, except where frps's flag default
/// differs from the key's (the dashboard's address, user and password, and proxyBindAddr), applied as frps does.
#[derive(Debug, Default, Clone, PartialEq, clap::Args)]
#[command(next_help_heading = "frps flags (used when no -c file is given)")]
pub struct ServerFlags {
    /// Address clients connect to (bindAddr) [default: 0.0.0.0]
    #[arg(global = true, long = "bind_addr", alias = "bind-addr", value_name = "IP")]
    pub bind_addr: Option<String>,
    /// Port clients connect to (bindPort) [default: 7000]
    #[arg(global = true, short = 'p', long = "bind_port", alias = "bind-port", value_name = "PORT")]
    pub bind_port: Option<i64>,
    /// frps's KCP port (kcpBindPort): refused, Portway has no KCP
    #[arg(global = true, long = "kcp_bind_port", alias = "kcp-bind-port", value_name = "PORT")]
    pub kcp_bind_port: Option<i64>,
    /// UDP port for QUIC clients (quicBindPort) [default: 0, off]
    #[arg(global = true, long = "quic_bind_port", alias = "quic-bind-port", value_name = "PORT")]
    pub quic_bind_port: Option<i64>,
    /// Address public proxy ports listen on (proxyBindAddr) [default: 0.0.0.0]
    #[arg(global = true, long = "proxy_bind_addr", alias = "proxy-bind-addr", value_name = "IP")]
    pub proxy_bind_addr: Option<String>,
    /// HTTP virtual-host port (vhostHTTPPort) [default: 0, off]
    #[arg(global = true, long = "vhost_http_port", alias = "vhost-http-port", value_name = "PORT")]
    pub vhost_http_port: Option<i64>,
    /// HTTPS virtual-host port (vhostHTTPSPort) [default: 0, off]
    #[arg(global = true, long = "vhost_https_port", alias = "vhost-https-port", value_name = "PORT")]
    pub vhost_https_port: Option<i64>,
    /// Seconds to wait for a response's headers on the HTTP vhost (vhostHTTPTimeout) [default: 60]
    #[arg(global = true, long = "vhost_http_timeout", alias = "vhost-http-timeout", value_name = "SECONDS")]
    pub vhost_http_timeout: Option<i64>,
    /// Dashboard API address (webServer.addr) [default: 0.0.0.0, as frps's flag]
    #[arg(global = true, long = "dashboard_addr", alias = "dashboard-addr", value_name = "IP")]
    pub dashboard_addr: Option<String>,
    /// Dashboard API port (webServer.port) [default: 0, off]
    #[arg(global = true, long = "dashboard_port", alias = "dashboard-port", value_name = "PORT")]
    pub dashboard_port: Option<i64>,
    /// Dashboard user (webServer.user) [default: admin, as frps's flag]
    #[arg(global = true, long = "dashboard_user", alias = "dashboard-user", value_name = "USER")]
    pub dashboard_user: Option<String>,
    /// Dashboard password (webServer.password) [default: admin, as frps's flag: change it]
    #[arg(global = true, long = "dashboard_pwd", alias = "dashboard-pwd", value_name = "PASSWORD")]
    pub dashboard_pwd: Option<String>,
    /// Serve the dashboard over HTTPS with the two files below (webServer.tls)
    #[arg(global = true, long = "dashboard_tls_mode", alias = "dashboard-tls-mode", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub dashboard_tls_mode: Option<bool>,
    /// Dashboard certificate (webServer.tls.certFile, with --dashboard_tls_mode)
    #[arg(global = true, long = "dashboard_tls_cert_file", alias = "dashboard-tls-cert-file", value_name = "FILE")]
    pub dashboard_tls_cert_file: Option<String>,
    /// Dashboard key (webServer.tls.keyFile, with --dashboard_tls_mode)
    #[arg(global = true, long = "dashboard_tls_key_file", alias = "dashboard-tls-key-file", value_name = "FILE")]
    pub dashboard_tls_key_file: Option<String>,
    /// /metrics on the dashboard (enablePrometheus)
    #[arg(global = true, long = "enable_prometheus", alias = "enable-prometheus", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub enable_prometheus: Option<bool>,
    /// Where logs go (log.to) [default: console]
    #[arg(global = true, long = "log_file", alias = "log-file", value_name = "FILE")]
    pub log_file: Option<String>,
    /// trace, debug, info, warn or error (log.level) [default: info]
    #[arg(global = true, long = "log_level", alias = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Days of log files kept (log.maxDays) [default: 3]
    #[arg(global = true, long = "log_max_days", alias = "log-max-days", value_name = "DAYS")]
    pub log_max_days: Option<i64>,
    /// No colour on the console (log.disablePrintColor)
    #[arg(global = true, long = "disable_log_color", alias = "disable-log-color", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub disable_log_color: Option<bool>,
    /// Shared secret clients log in with (auth.token)
    #[arg(global = true, short = 't', long = "token", value_name = "TOKEN")]
    pub token: Option<String>,
    /// Domain http/https subdomains live under (subDomainHost)
    #[arg(global = true, long = "subdomain_host", alias = "subdomain-host", value_name = "DOMAIN")]
    pub subdomain_host: Option<String>,
    /// Ports proxies may take, e.g. 2000-3000,3001,4000-5000 (allowPorts) [default: all]
    #[arg(global = true, long = "allow_ports", alias = "allow-ports", value_name = "RANGES")]
    pub allow_ports: Option<String>,
    /// Client addresses or CIDR blocks allowed to connect (frps's allowedClientIPs): refused, Portway has no such list
    #[arg(
        global = true,
        long = "allowed_client_ips",
        alias = "allowed-client-ips",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub allowed_client_ips: Option<Vec<String>>,
    /// Public ports one client may hold (maxPortsPerClient) [default: 0, no limit]
    #[arg(global = true, long = "max_ports_per_client", alias = "max-ports-per-client", value_name = "N")]
    pub max_ports_per_client: Option<i64>,
    /// Refuse clients without TLS (transport.tls.force)
    #[arg(global = true, long = "tls_only", alias = "tls-only", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub tls_only: Option<bool>,
}

/// Each flag's long name and the key it sets (for messages that name a key).
pub const FLAG_KEYS: &[(&str, &str)] = &[
    ("bind_addr", "bindAddr"),
    ("bind_port", "bindPort"),
    ("kcp_bind_port", "kcpBindPort"),
    ("quic_bind_port", "quicBindPort"),
    ("proxy_bind_addr", "proxyBindAddr"),
    ("vhost_http_port", "vhostHTTPPort"),
    ("vhost_https_port", "vhostHTTPSPort"),
    ("vhost_http_timeout", "vhostHTTPTimeout"),
    ("dashboard_addr", "webServer.addr"),
    ("dashboard_port", "webServer.port"),
    ("dashboard_user", "webServer.user"),
    ("dashboard_pwd", "webServer.password"),
    ("dashboard_tls_cert_file", "webServer.tls.certFile"),
    ("dashboard_tls_key_file", "webServer.tls.keyFile"),
    ("enable_prometheus", "enablePrometheus"),
    ("log_file", "log.to"),
    ("log_level", "log.level"),
    ("log_max_days", "log.maxDays"),
    ("disable_log_color", "log.disablePrintColor"),
    ("token", "auth.token"),
    ("subdomain_host", "subDomainHost"),
    ("allow_ports", "allowPorts"),
    ("max_ports_per_client", "maxPortsPerClient"),
    ("tls_only", "transport.tls.force"),
];

impl ServerFlags {
    /// Whether any flag was given (then the flags, not a file, are the configuration).
    pub fn any(&self) -> bool {
        *self != ServerFlags::default()
    }

    /// The flags as an frps configuration document (frp's keys), before any validation.
    pub fn to_document(&self) -> Result<Value, ConfigError> {
        let mut doc = Map::new();
        let mut set = |path: &str, v: Value| put(&mut doc, path, v);
        let s = |v: &Option<String>| v.clone().map(Value::from);
        let n = |v: &Option<i64>| v.map(Value::from);
        let b = |v: &Option<bool>| v.map(Value::from);
        let given: [(&str, Option<Value>); 21] = [
            ("bindAddr", s(&self.bind_addr)),
            ("bindPort", n(&self.bind_port)),
            ("kcpBindPort", n(&self.kcp_bind_port)),
            ("quicBindPort", n(&self.quic_bind_port)),
            ("proxyBindAddr", s(&self.proxy_bind_addr)),
            ("vhostHTTPPort", n(&self.vhost_http_port)),
            ("vhostHTTPSPort", n(&self.vhost_https_port)),
            ("vhostHTTPTimeout", n(&self.vhost_http_timeout)),
            ("webServer.addr", s(&self.dashboard_addr)),
            ("webServer.port", n(&self.dashboard_port)),
            ("webServer.user", s(&self.dashboard_user)),
            ("webServer.password", s(&self.dashboard_pwd)),
            ("enablePrometheus", b(&self.enable_prometheus)),
            ("log.to", s(&self.log_file)),
            ("log.level", s(&self.log_level)),
            ("log.maxDays", n(&self.log_max_days)),
            ("log.disablePrintColor", b(&self.disable_log_color)),
            ("auth.token", s(&self.token)),
            ("subDomainHost", s(&self.subdomain_host)),
            ("maxPortsPerClient", n(&self.max_ports_per_client)),
            ("transport.tls.force", b(&self.tls_only)),
        ];
        for (path, v) in given {
            if let Some(v) = v {
                set(path, v);
            }
        }
        if self.allowed_client_ips.is_some() {
            // Refused whatever --strict-config says: an address filter silently not applied would let in what the
            // user meant to keep out.
            return Err(ConfigError::Invalid {
                file: SOURCE.into(),
                key: "--allowed_client_ips".into(),
                message: "frps's client address allow list is not supported by Portway yet; remove the flag and \
                          filter client addresses with a firewall rule on bindPort"
                    .into(),
            });
        }
        if let Some(text) = &self.allow_ports {
            set("allowPorts", Value::Array(parse_port_ranges(text)?));
        }
        if self.dashboard_tls_mode == Some(true) {
            set("webServer.tls.certFile", json!(self.dashboard_tls_cert_file.clone().unwrap_or_default()));
            set("webServer.tls.keyFile", json!(self.dashboard_tls_key_file.clone().unwrap_or_default()));
        }
        Ok(Value::Object(doc))
    }

    /// The document with frps's flag defaults where they differ from the file's (frps does this in flag mode):
    /// proxies listen on 0.0.0.0, and the dashboard on 0.0.0.0 as admin/admin.
    pub fn to_document_with_defaults(&self) -> Result<Value, ConfigError> {
        let mut doc = self.to_document()?;
        let Value::Object(map) = &mut doc else { unreachable!("to_document builds an object") };
        let defaults = [
            ("proxyBindAddr", "0.0.0.0"),
            ("webServer.addr", "0.0.0.0"),
            ("webServer.user", "admin"),
            ("webServer.password", "admin"),
        ];
        for (path, v) in defaults {
            if get(map, path).is_none() {
                put(map, path, json!(v));
            }
        }
        Ok(doc)
    }

    /// The configuration the flags describe, loaded and validated as a file with the same keys would be.
    pub fn load(&self, opts: LoadOptions) -> Result<Loaded, ConfigError> {
        let doc = self.to_document_with_defaults()?;
        let text = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
        // Flags are taken as given: no `{{ .Envs.X }}` templates (frps renders none in flags).
        ServerConfig::parse_full(&text, SOURCE, portway_config::Format::Json, opts, &|_| None)
    }
}

/// frps's `--allow_ports` syntax: `2000-3000,3001,4000-5000`.
pub fn parse_port_ranges(text: &str) -> Result<Vec<Value>, ConfigError> {
    let bad = |message: String| ConfigError::Invalid { file: SOURCE.into(), key: "--allow_ports".into(), message };
    let num = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| bad(format!("{:?} is not a port number; write ranges like 2000-3000,3001", s.trim())))
    };
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.push(json!({ "start": num(a)?, "end": num(b)? })),
            None => out.push(json!({ "single": num(part)? })),
        }
    }
    Ok(out)
}

/// `err` with the flag that set the key it names (`--dashboard_pwd` for `webServer.password`), without the line
/// numbers of the document the flags became.
pub fn explain(err: ConfigError) -> anyhow::Error {
    let table: Vec<(&str, String)> = FLAG_KEYS.iter().map(|(f, k)| (*f, k.to_string())).collect();
    anyhow::anyhow!("{}", portway_config::flags::explain(&err.to_string(), &table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        f: ServerFlags,
    }

    fn flags(args: &[&str]) -> ServerFlags {
        T::try_parse_from(std::iter::once("frps").chain(args.iter().copied())).expect("flags parse").f
    }

    fn load(args: &[&str]) -> Result<ServerConfig, String> {
        flags(args).load(LoadOptions::default()).map(|l| l.config).map_err(|e| explain(e).to_string())
    }

    #[test]
    fn flags_map_onto_the_keys() {
        let c = load(&[
            "-p",
            "7001",
            "-t",
            "secret",
            "--bind_addr",
            "127.0.0.1",
            "--proxy-bind-addr",
            "127.0.0.2",
            "--vhost_http_port",
            "8080",
            "--vhost_https_port=8443",
            "--vhost_http_timeout",
            "30",
            "--dashboard_port",
            "7500",
            "--dashboard_addr",
            "127.0.0.1",
            "--dashboard_user",
            "u",
            "--dashboard_pwd",
            "p",
            "--enable_prometheus",
            "--log_level",
            "debug",
            "--log_max_days",
            "5",
            "--subdomain_host",
            "example.com",
            "--allow_ports",
            "2000-3000,3001",
            "--max_ports_per_client",
            "4",
            "--tls_only",
            "--quic_bind_port",
            "7002",
        ])
        .unwrap();
        assert_eq!(c.bind_port, 7001);
        assert_eq!(c.auth.token, "secret");
        assert_eq!(c.bind_addr, "127.0.0.1");
        assert_eq!(c.proxy_bind_addr, "127.0.0.2");
        assert_eq!((c.vhost_http_port, c.vhost_https_port, c.vhost_http_timeout), (8080, 8443, 30));
        assert_eq!((c.web_server.port, c.web_server.addr.as_str()), (7500, "127.0.0.1"));
        assert_eq!((c.web_server.user.as_str(), c.web_server.password.as_str()), ("u", "p"));
        assert!(c.enable_prometheus);
        assert_eq!((c.log.level.as_str(), c.log.max_days), ("debug", 5));
        assert_eq!(c.sub_domain_host, "example.com");
        assert_eq!(c.allow_ports.len(), 2);
        assert_eq!((c.allow_ports[0].start, c.allow_ports[0].end, c.allow_ports[1].single), (2000, 3000, 3001));
        assert!(c.port_allowed(2500) && c.port_allowed(3001) && !c.port_allowed(3002));
        assert_eq!(c.max_ports_per_client, 4);
        assert!(c.transport.tls.force);
        assert_eq!(c.quic_bind_port, 7002);
    }

    #[test]
    fn frps_flag_defaults() {
        let c = load(&[]).unwrap();
        assert_eq!((c.bind_addr.as_str(), c.bind_port), ("0.0.0.0", 7000));
        assert_eq!(c.proxy_bind_addr, "0.0.0.0");
        assert_eq!(c.web_server.port, 0);
        // frps's flag defaults for the dashboard: 0.0.0.0 as admin/admin (the password makes it loadable).
        let c = load(&["--dashboard_port", "7500"]).unwrap();
        assert_eq!((c.web_server.addr.as_str(), c.web_server.user.as_str()), ("0.0.0.0", "admin"));
        assert_eq!(c.web_server.password, "admin");
        assert!(!flags(&[]).any());
        assert!(flags(&["-t", "x"]).any());
        assert!(flags(&["--dashboard_tls_mode=false"]).any());
    }

    #[test]
    fn bad_values_get_the_keys_messages() {
        let e = load(&["--bind_addr", "nowhere"]).unwrap_err();
        assert!(e.contains("command line: `bindAddr`: \"nowhere\" is not an IP address"), "{e}");
        assert!(e.contains("--bind_addr sets bindAddr"), "{e}");
        let e = load(&["--kcp_bind_port", "7001"]).unwrap_err();
        assert!(e.contains("kcpBindPort") && e.contains("KCP"), "{e}");
        let e = load(&["--log_level", "loud"]).unwrap_err();
        assert!(e.contains("\"loud\" is not one of trace"), "{e}");
        let e = load(&["-p", "70000"]).unwrap_err();
        assert!(e.contains("bindPort"), "{e}");
        let e = load(&["--allow_ports", "2000-x"]).unwrap_err();
        assert!(e.contains("--allow_ports") && e.contains("\"x\" is not a port number"), "{e}");
        let e = load(&["--allow_ports", "3000-2000"]).unwrap_err();
        assert!(e.contains("allowPorts[0]") && e.contains("--allow_ports sets allowPorts"), "{e}");
        let e = load(&["--enable_prometheus"]).unwrap_err();
        assert!(e.contains("enablePrometheus") && e.contains("webServer.port"), "{e}");
        let e = load(&["--dashboard_tls_mode", "--dashboard_port", "7500", "--dashboard_tls_cert_file", "c.pem"])
            .unwrap_err();
        assert!(e.contains("certFile and keyFile must be given together"), "{e}");
    }

    #[test]
    fn unsupported_flags_are_treated_as_their_keys() {
        let e = load(&["--allowed_client_ips", "10.0.0.0/8"]).unwrap_err();
        assert!(e.contains("--allowed_client_ips") && e.contains("not supported"), "{e}");
        // log.disablePrintColor is a key like the others.
        let l = flags(&["--disable_log_color"]).load(LoadOptions::default()).unwrap();
        assert!(l.config.log.disable_print_color);
    }
}
