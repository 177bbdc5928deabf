//! frpc's proxy subcommands (`frpc tcp -s 1.2.3.4 -t secret -n ssh -l 22 -r 6000`, `frpc stcp visitor ...`): one
//! proxy or visitor from flags, without a file. The flags become the frpc.toml keys a file would set and go
//! through the same loader, so the same values are refused with the same messages.
//!
//! frp spells its flags with underscores and accepts hyphens for them too; so does Portway.

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::{json, Map, Value};

use crate::config::{ClientConfig, ConfigError, LoadOptions, Loaded};

use portway_config::flags::{put, SOURCE};

/// The proxy types that have a subcommand (frpc's list).
pub const PROXY_TYPES: &[&str] = &["tcp", "udp", "http", "https", "tcpmux", "stcp", "sudp", "xtcp"];
/// The types that also have a `visitor` subcommand.
pub const VISITOR_TYPES: &[&str] = &["stcp", "sudp", "xtcp"];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Int,
    Bool,
    List,
    Map,
}

#[derive(Clone, Copy, PartialEq)]
enum Scope {
    /// The client's own keys (frpc's persistent flags: also under `visitor`).
    Common,
    /// The proxy's keys, for the listed types (empty: all).
    Proxy(&'static [&'static str]),
    /// The visitor's keys.
    Visitor,
}

/// One flag: long name, short letter, the key it sets, its kind, where it applies, help.
struct Flag(&'static str, Option<char>, &'static str, Kind, Scope, &'static str);

const DOMAIN_TYPES: &[&str] = &["http", "https", "tcpmux"];
const SECRET_TYPES: &[&str] = &["stcp", "sudp", "xtcp"];
const ALL: &[&str] = &[];

const FLAGS: &[Flag] = &[
    Flag(
        "server_addr",
        Some('s'),
        "serverAddr",
        Kind::Str,
        Scope::Common,
        "Server address (serverAddr; host:port also sets the port) [default: 127.0.0.1]",
    ),
    Flag("server_port", Some('P'), "serverPort", Kind::Int, Scope::Common, "Server port (serverPort) [default: 7000]"),
    Flag(
        "protocol",
        Some('p'),
        "transport.protocol",
        Kind::Str,
        Scope::Common,
        "tcp, websocket, wss or quic (transport.protocol) [default: tcp]",
    ),
    Flag(
        "log_level",
        None,
        "log.level",
        Kind::Str,
        Scope::Common,
        "trace, debug, info, warn or error (log.level) [default: info]",
    ),
    Flag("log_file", None, "log.to", Kind::Str, Scope::Common, "Where logs go (log.to) [default: console]"),
    Flag(
        "log_max_days",
        None,
        "log.maxDays",
        Kind::Int,
        Scope::Common,
        "Days of log files kept (log.maxDays) [default: 3]",
    ),
    Flag(
        "disable_log_color",
        None,
        "log.disablePrintColor",
        Kind::Bool,
        Scope::Common,
        "No colour on the console (log.disablePrintColor)",
    ),
    Flag(
        "tls_server_name",
        None,
        "transport.tls.serverName",
        Kind::Str,
        Scope::Common,
        "Name the server's certificate must carry (transport.tls.serverName)",
    ),
    Flag(
        "dns_server",
        None,
        "dnsServer",
        Kind::Str,
        Scope::Common,
        "DNS server to ask instead of the system's (dnsServer)",
    ),
    Flag(
        "tls_enable",
        None,
        "transport.tls.enable",
        Kind::Bool,
        Scope::Common,
        "TLS to the server (transport.tls.enable) [default: true; --tls_enable=false turns it off]",
    ),
    Flag("user", Some('u'), "user", Kind::Str, Scope::Common, "User, the prefix of proxy names (user)"),
    Flag("token", Some('t'), "auth.token", Kind::Str, Scope::Common, "Shared secret (auth.token)"),
    Flag("proxy_name", Some('n'), "name", Kind::Str, Scope::Proxy(ALL), "Proxy name (name)"),
    Flag("metadatas", None, "metadatas", Kind::Map, Scope::Proxy(ALL), "k1=v1,k2=v2 (metadatas)"),
    Flag("annotations", None, "annotations", Kind::Map, Scope::Proxy(ALL), "k1=v1,k2=v2 (annotations)"),
    Flag(
        "local_ip",
        Some('i'),
        "localIP",
        Kind::Str,
        Scope::Proxy(ALL),
        "Local service address (localIP) [default: 127.0.0.1]",
    ),
    Flag("local_port", Some('l'), "localPort", Kind::Int, Scope::Proxy(ALL), "Local service port (localPort)"),
    Flag(
        "ue",
        None,
        "transport.useEncryption",
        Kind::Bool,
        Scope::Proxy(ALL),
        "Encrypt the proxy's traffic (transport.useEncryption)",
    ),
    Flag(
        "uc",
        None,
        "transport.useCompression",
        Kind::Bool,
        Scope::Proxy(ALL),
        "Compress the proxy's traffic (transport.useCompression)",
    ),
    Flag(
        "bandwidth_limit_mode",
        None,
        "transport.bandwidthLimitMode",
        Kind::Str,
        Scope::Proxy(ALL),
        "client or server (transport.bandwidthLimitMode) [default: client]",
    ),
    Flag(
        "bandwidth_limit",
        None,
        "transport.bandwidthLimit",
        Kind::Str,
        Scope::Proxy(ALL),
        "e.g. 100KB or 1MB per second (transport.bandwidthLimit)",
    ),
    Flag(
        "remote_port",
        Some('r'),
        "remotePort",
        Kind::Int,
        Scope::Proxy(&["tcp", "udp"]),
        "Public port on the server (remotePort)",
    ),
    Flag(
        "custom_domain",
        Some('d'),
        "customDomains",
        Kind::List,
        Scope::Proxy(DOMAIN_TYPES),
        "Domains, comma-separated (customDomains)",
    ),
    Flag(
        "sd",
        None,
        "subdomain",
        Kind::Str,
        Scope::Proxy(DOMAIN_TYPES),
        "Subdomain of the server's subDomainHost (subdomain)",
    ),
    Flag(
        "locations",
        None,
        "locations",
        Kind::List,
        Scope::Proxy(&["http"]),
        "URL path prefixes, comma-separated (locations)",
    ),
    Flag(
        "http_user",
        None,
        "httpUser",
        Kind::Str,
        Scope::Proxy(&["http", "tcpmux"]),
        "HTTP Basic auth user (httpUser)",
    ),
    Flag(
        "http_pwd",
        None,
        "httpPassword",
        Kind::Str,
        Scope::Proxy(&["http", "tcpmux"]),
        "HTTP Basic auth password (httpPassword)",
    ),
    Flag(
        "host_header_rewrite",
        None,
        "hostHeaderRewrite",
        Kind::Str,
        Scope::Proxy(&["http"]),
        "Host header sent to the local service (hostHeaderRewrite)",
    ),
    Flag("mux", None, "multiplexer", Kind::Str, Scope::Proxy(&["tcpmux"]), "httpconnect (multiplexer)"),
    Flag("sk", None, "secretKey", Kind::Str, Scope::Proxy(SECRET_TYPES), "Secret visitors must give (secretKey)"),
    Flag(
        "allow_users",
        None,
        "allowUsers",
        Kind::List,
        Scope::Proxy(SECRET_TYPES),
        "Users whose visitors may connect, comma-separated; * for all (allowUsers)",
    ),
    Flag("visitor_name", Some('n'), "name", Kind::Str, Scope::Visitor, "Visitor name (name)"),
    Flag(
        "ue",
        None,
        "transport.useEncryption",
        Kind::Bool,
        Scope::Visitor,
        "Encrypt (transport.useEncryption; as the proxy)",
    ),
    Flag(
        "uc",
        None,
        "transport.useCompression",
        Kind::Bool,
        Scope::Visitor,
        "Compress (transport.useCompression; as the proxy)",
    ),
    Flag("sk", None, "secretKey", Kind::Str, Scope::Visitor, "The proxy's secret (secretKey)"),
    Flag("server_name", None, "serverName", Kind::Str, Scope::Visitor, "The proxy to visit (serverName)"),
    Flag(
        "server-user",
        None,
        "serverUser",
        Kind::Str,
        Scope::Visitor,
        "The user of the proxy's client (serverUser) [default: this client's user]",
    ),
    Flag(
        "bind_addr",
        None,
        "bindAddr",
        Kind::Str,
        Scope::Visitor,
        "Local address the visitor listens on (bindAddr) [default: 127.0.0.1]",
    ),
    Flag("bind_port", None, "bindPort", Kind::Int, Scope::Visitor, "Local port the visitor listens on (bindPort)"),
];

fn arg(f: &Flag) -> Arg {
    let Flag(long, short, _, kind, scope, help) = *f;
    let hyphen = long.replace('_', "-");
    let other = long.replace('-', "_");
    let mut a = Arg::new(long).long(long).help(help);
    for alias in [hyphen, other] {
        if alias != long {
            // clap (without its `string` feature) takes only 'static names; the commands are built once per run.
            let alias: &'static str = Box::leak(alias.into_boxed_str());
            a = a.alias(alias);
        }
    }
    if let Some(c) = short {
        a = a.short(c);
    }
    a = match kind {
        Kind::Bool => a
            .value_parser(clap::value_parser!(bool))
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .value_name("BOOL"),
        Kind::Int => a.value_parser(clap::value_parser!(i64)).value_name("N"),
        Kind::List => a.value_delimiter(',').action(ArgAction::Append).value_name("LIST"),
        Kind::Map => a.action(ArgAction::Append).value_delimiter(',').value_name("K=V,..."),
        Kind::Str => a.value_name("VALUE"),
    };
    if scope == Scope::Common {
        a = a.global(true);
    }
    a
}

/// The subcommands `tcp`, `udp`, ... (each with its flags; stcp, sudp and xtcp with a `visitor` subcommand).
pub fn commands() -> Vec<Command> {
    PROXY_TYPES
        .iter()
        .map(|&t| {
            let mut cmd = Command::new(t)
                .about(format!("Run one {t} proxy from flags, without a configuration file"))
                .next_help_heading("Flags");
            for f in FLAGS {
                match f.4 {
                    Scope::Common => cmd = cmd.arg(arg(f)),
                    Scope::Proxy(types) if types.is_empty() || types.contains(&t) => cmd = cmd.arg(arg(f)),
                    _ => {}
                }
            }
            if VISITOR_TYPES.contains(&t) {
                let mut v = Command::new("visitor").about(format!("Run one {t} visitor from flags, without a file"));
                for f in FLAGS.iter().filter(|f| f.4 == Scope::Visitor) {
                    v = v.arg(arg(f));
                }
                cmd = cmd.subcommand(v);
            }
            cmd
        })
        .collect()
}

/// The client configuration document the flags of `kind`'s subcommand describe (frp's keys).
pub fn document(kind: &str, m: &ArgMatches) -> Result<Value, ConfigError> {
    let visitor = m.subcommand().filter(|(name, _)| *name == "visitor").map(|(_, sub)| sub);
    let mut root = Map::new();
    let mut item = Map::new();
    item.insert("type".into(), json!(kind));
    // frpc's flag defaults where they differ from the file's.
    root.insert("serverAddr".into(), json!("127.0.0.1"));
    for f in FLAGS {
        let Flag(long, _, key, fkind, scope, _) = *f;
        let (matches, target) = match scope {
            // A global flag's value is visible in the subcommand's matches too.
            Scope::Common => (visitor.unwrap_or(m), &mut root),
            Scope::Proxy(_) if visitor.is_none() => (m, &mut item),
            Scope::Visitor if visitor.is_some() => (visitor.unwrap_or(m), &mut item),
            _ => continue,
        };
        if !matches!(matches.try_contains_id(long), Ok(true)) {
            continue;
        }
        if matches.value_source(long) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        let v = match fkind {
            Kind::Str => json!(matches.get_one::<String>(long)),
            Kind::Int => json!(matches.get_one::<i64>(long)),
            Kind::Bool => json!(matches.get_one::<bool>(long)),
            Kind::List => json!(matches.get_many::<String>(long).map(|v| v.collect::<Vec<_>>()).unwrap_or_default()),
            Kind::Map => {
                let mut map = Map::new();
                for pair in matches.get_many::<String>(long).into_iter().flatten() {
                    let (k, v) = pair.split_once('=').ok_or_else(|| ConfigError::Invalid {
                        file: SOURCE.into(),
                        key: format!("--{long}"),
                        message: format!("{pair:?} is not key=value (write k1=v1,k2=v2)"),
                    })?;
                    map.insert(k.into(), json!(v));
                }
                Value::Object(map)
            }
        };
        put(target, key, v);
    }
    // `-s host:port` (old frpc's form, still common in guides): the port, when -P is not given.
    if let Some(Value::String(addr)) = root.get("serverAddr").cloned() {
        if let Some((host, port)) = split_host_port(&addr) {
            root.insert("serverAddr".into(), json!(host));
            root.entry("serverPort").or_insert(json!(port));
        }
    }
    let list = if visitor.is_some() { "visitors" } else { "proxies" };
    root.insert(list.into(), Value::Array(vec![Value::Object(item)]));
    Ok(Value::Object(root))
}

/// `host:port` or `[v6]:port` (a bare IPv6 address is not split).
fn split_host_port(s: &str) -> Option<(String, i64)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host.into(), port.parse().ok()?));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host.into(), port.parse().ok()?))
}

/// The configuration `kind`'s subcommand describes, loaded and validated as a file with the same keys would be.
pub fn load(kind: &str, m: &ArgMatches, opts: LoadOptions) -> Result<Loaded, ConfigError> {
    let doc = document(kind, m)?;
    let text = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
    // Flags are taken as given: no `{{ .Envs.X }}` templates.
    ClientConfig::parse_full(&text, SOURCE, portway_config::Format::Json, opts, &|_| None, None)
}

/// `err` with the flag that set the key it names (`--local_port` for `proxies[0].localPort`), without the line
/// numbers of the document the flags became.
pub fn explain(err: ConfigError) -> anyhow::Error {
    let table: Vec<(&str, String)> = FLAGS
        .iter()
        .map(|Flag(long, _, key, _, scope, _)| {
            let full = match scope {
                Scope::Common => key.to_string(),
                Scope::Proxy(_) => format!("proxies[0].{key}"),
                Scope::Visitor => format!("visitors[0].{key}"),
            };
            (*long, full)
        })
        .collect();
    anyhow::anyhow!("{}", portway_config::flags::explain(&err.to_string(), &table))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(args: &[&str]) -> (String, ArgMatches) {
        let root = Command::new("frpc").subcommands(commands());
        let m = root.try_get_matches_from(std::iter::once("frpc").chain(args.iter().copied())).expect("parse");
        let (name, sub) = m.subcommand().expect("a subcommand");
        (name.to_string(), sub.clone())
    }

    fn load_args(args: &[&str]) -> Result<ClientConfig, String> {
        let (kind, m) = matches(args);
        load(&kind, &m, LoadOptions::default()).map(|l| l.config).map_err(|e| explain(e).to_string())
    }

    #[test]
    fn tcp_flags_map_onto_one_proxy() {
        let c = load_args(&[
            "tcp",
            "-s",
            "127.0.0.2",
            "-P",
            "7001",
            "-t",
            "secret",
            "-u",
            "me",
            "-n",
            "ssh",
            "-l",
            "22",
            "-r",
            "6000",
            "-i",
            "127.0.0.3",
            "--ue",
            "--uc=false",
            "--tls_enable=false",
            "--log_level",
            "debug",
            "--bandwidth_limit",
            "1MB",
            "--metadatas",
            "a=1,b=2",
        ])
        .unwrap();
        assert_eq!((c.server_addr.as_str(), c.server_port), ("127.0.0.2", 7001));
        assert_eq!((c.auth.token.as_str(), c.user.as_str()), ("secret", "me"));
        assert!(!c.transport.tls.enable);
        assert_eq!(c.log.level, "debug");
        assert_eq!(c.proxies.len(), 1);
        let p = &c.proxies[0];
        assert_eq!((p.kind.as_str(), p.local_ip.as_str(), p.local_port, p.remote_port), ("tcp", "127.0.0.3", 22, 6000));
        assert!(p.name.ends_with("ssh"), "{}", p.name);
        assert!(p.transport.use_encryption && !p.transport.use_compression);
        assert_eq!(p.transport.bandwidth_limit, "1MB");
        assert_eq!(p.metadatas.get("b").map(String::as_str), Some("2"));
    }

    #[test]
    fn frpc_defaults_and_host_port() {
        let c = load_args(&["udp", "-n", "dns", "-l", "53", "-r", "5353"]).unwrap();
        assert_eq!((c.server_addr.as_str(), c.server_port), ("127.0.0.1", 7000));
        assert!(c.transport.tls.enable);
        assert_eq!((c.proxies[0].kind.as_str(), c.proxies[0].local_ip.as_str()), ("udp", "127.0.0.1"));
        let c = load_args(&["tcp", "-s", "127.0.0.9:7100", "-n", "a", "-l", "1", "-r", "2"]).unwrap();
        assert_eq!((c.server_addr.as_str(), c.server_port), ("127.0.0.9", 7100));
        let c = load_args(&["tcp", "-s", "127.0.0.9:7100", "-P", "7200", "-n", "a", "-l", "1"]).unwrap();
        assert_eq!(c.server_port, 7200);
    }

    #[test]
    fn http_secret_and_visitor_forms() {
        let c = load_args(&[
            "http",
            "-n",
            "web",
            "-l",
            "80",
            "-d",
            "a.example.com,b.example.com",
            "--sd",
            "x",
            "--locations",
            "/api",
            "--http_user",
            "u",
            "--http_pwd",
            "p",
            "--host_header_rewrite",
            "h",
        ])
        .unwrap();
        let p = &c.proxies[0];
        assert_eq!(p.custom_domains, ["a.example.com", "b.example.com"]);
        assert_eq!((p.subdomain.as_str(), p.http_user.as_str(), p.http_password.as_str()), ("x", "u", "p"));
        assert_eq!((p.locations.len(), p.host_header_rewrite.as_str()), (1, "h"));
        let c = load_args(&["stcp", "-n", "s", "-l", "22", "--sk", "k", "--allow_users", "*"]).unwrap();
        assert_eq!((c.proxies[0].secret_key.as_str(), c.proxies[0].allow_users.len()), ("k", 1));
        let c = load_args(&[
            "xtcp",
            "visitor",
            "-t",
            "tok",
            "-n",
            "v",
            "--sk",
            "k",
            "--server_name",
            "s",
            "--server-user",
            "other",
            "--bind_port",
            "9000",
        ])
        .unwrap();
        assert!(c.proxies.is_empty());
        let v = &c.visitors[0];
        assert_eq!((v.kind.as_str(), v.server_name.as_str(), v.server_user.as_str()), ("xtcp", "s", "other"));
        assert_eq!((v.bind_port, v.secret_key.as_str(), c.auth.token.as_str()), (9000, "k", "tok"));
    }

    #[test]
    fn flags_of_other_types_are_refused() {
        let root = Command::new("frpc").subcommands(commands());
        assert!(root.clone().try_get_matches_from(["frpc", "tcp", "--sd", "x"]).is_err());
        assert!(root.clone().try_get_matches_from(["frpc", "http", "-r", "80"]).is_err());
        assert!(root.try_get_matches_from(["frpc", "tcp", "visitor"]).is_err());
    }

    #[test]
    fn bad_values_get_the_keys_messages() {
        let e = load_args(&["tcp", "-n", "a", "-l", "22", "-r", "70000"]).unwrap_err();
        assert!(e.starts_with("command line: ") && e.contains("remotePort"), "{e}");
        let e = load_args(&["tcp", "-n", "a", "-l", "22", "-p", "kcp"]).unwrap_err();
        assert!(e.contains("KCP is not supported") && e.contains("--protocol sets transport.protocol"), "{e}");
        let e = load_args(&["tcp", "-l", "22"]).unwrap_err();
        assert!(e.contains("name"), "{e}");
        let e = load_args(&["tcp", "-n", "a", "-l", "22", "--metadatas", "novalue"]).unwrap_err();
        assert!(e.contains("--metadatas") && e.contains("key=value"), "{e}");
        assert!(!e.contains("line "), "{e}");
    }
}
