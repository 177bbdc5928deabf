//! frpc's client plugins (`[proxies.plugin]`): the visitor's connection is served by the plugin instead of being
//! relayed to `localIP:localPort`.
//!
//! - [`PluginConfig`]: the keys (frp's names, one struct for every type) and their validation (pure).
//! - [`socks5`]: an RFC 1928 SOCKS5 server (CONNECT; no auth or RFC 1929 user/password).
//! - [`http_proxy`]: an HTTP proxy (CONNECT tunnels and absolute-URI requests), optional Basic auth.
//! - [`static_file`]: files under `localPath` over HTTP/1.1, optional Basic auth.
//! - [`unix_socket`]: the connection relayed to a Unix domain socket.
//! - [`bridge`]: `http2http`, `http2https`, `https2http`, `https2https` (an HTTP reverse proxy to `localAddr`, TLS
//!   on either side) and `tls2raw` (TLS ended, bytes relayed).
//!
//! `virtual_net` is read and refused at load.

pub mod bridge;
pub mod http_proxy;
pub mod socks5;
pub mod static_file;
pub mod unix_socket;

use serde::{Deserialize, Serialize};

/// The plugins Portway runs.
pub const SUPPORTED: &[&str] = &[
    "socks5",
    "http_proxy",
    "static_file",
    "unix_domain_socket",
    "http2http",
    "http2https",
    "https2http",
    "https2https",
    "tls2raw",
];
/// frp's plugins Portway does not run yet.
pub const NOT_YET: &[&str] = &["virtual_net"];

/// `[proxies.plugin]`: every key of every frp plugin type; [`PluginConfig::check`] says which apply.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PluginConfig {
    #[serde(rename = "type")]
    pub kind: String,
    /// socks5: user name (with `password`: RFC 1929 auth is required).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// socks5: password. A secret: never logged.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// http_proxy / static_file: Basic auth user.
    #[serde(rename = "httpUser", skip_serializing_if = "String::is_empty")]
    pub http_user: String,
    /// http_proxy / static_file: Basic auth password. A secret: never logged.
    #[serde(rename = "httpPassword", skip_serializing_if = "String::is_empty")]
    pub http_password: String,
    /// static_file: the directory served.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub local_path: String,
    /// static_file: URL prefix taken off before the path is looked up.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub strip_prefix: String,
    /// unix_domain_socket: the socket's path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub unix_path: String,
    /// http2http / http2https / https2http / https2https / tls2raw: the local service (`host:port`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub local_addr: String,
    /// See `localAddr`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host_header_rewrite: String,
    /// See `localAddr`.
    #[serde(skip_serializing_if = "crate::config::HeaderOps::is_empty")]
    pub request_headers: crate::config::HeaderOps,
    /// See `localAddr`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub crt_path: String,
    /// See `localAddr`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_path: String,
    /// See `localAddr`.
    #[serde(rename = "enableHTTP2", skip_serializing_if = "Option::is_none")]
    pub enable_http2: Option<bool>,
}

/// Which keys belong to which plugin type.
const KEYS: &[(&str, &[&str])] = &[
    ("socks5", &["username", "password"]),
    ("http_proxy", &["httpUser", "httpPassword"]),
    ("static_file", &["localPath", "stripPrefix", "httpUser", "httpPassword"]),
    ("unix_domain_socket", &["unixPath"]),
    ("http2http", &["localAddr", "hostHeaderRewrite", "requestHeaders"]),
    ("http2https", &["localAddr", "hostHeaderRewrite", "requestHeaders"]),
    ("https2http", &["localAddr", "hostHeaderRewrite", "requestHeaders", "crtPath", "keyPath", "enableHTTP2"]),
    ("https2https", &["localAddr", "hostHeaderRewrite", "requestHeaders", "crtPath", "keyPath", "enableHTTP2"]),
    ("tls2raw", &["localAddr", "crtPath", "keyPath"]),
];

impl PluginConfig {
    /// The keys that are set (frp's names).
    fn set_keys(&self) -> Vec<&'static str> {
        let s = |v: &String, k: &'static str| (!v.is_empty()).then_some(k);
        [
            s(&self.username, "username"),
            s(&self.password, "password"),
            s(&self.http_user, "httpUser"),
            s(&self.http_password, "httpPassword"),
            s(&self.local_path, "localPath"),
            s(&self.strip_prefix, "stripPrefix"),
            s(&self.unix_path, "unixPath"),
            s(&self.local_addr, "localAddr"),
            s(&self.host_header_rewrite, "hostHeaderRewrite"),
            (!self.request_headers.is_empty()).then_some("requestHeaders"),
            s(&self.crt_path, "crtPath"),
            s(&self.key_path, "keyPath"),
            self.enable_http2.map(|_| "enableHTTP2"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Checks the keys for the type. `Err((key under plugin., message))`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let t = self.kind.as_str();
        if t.is_empty() {
            return Err(("type".into(), format!("is empty: give one of {}", SUPPORTED.join(", "))));
        }
        if NOT_YET.contains(&t) {
            return Err((
                "type".into(),
                format!(
                    "the {t:?} plugin is not supported yet; Portway runs {} (or point localIP/localPort at the \
                     service and remove the plugin)",
                    SUPPORTED.join(", ")
                ),
            ));
        }
        let Some((_, allowed)) = KEYS.iter().find(|(k, _)| *k == t) else {
            return Err((
                "type".into(),
                format!("{t:?} is not an frp plugin type: Portway runs {}", SUPPORTED.join(", ")),
            ));
        };
        if let Some(k) = self.set_keys().into_iter().find(|k| !allowed.contains(k)) {
            return Err((k.into(), format!("does not apply to the {t} plugin (its keys: {})", allowed.join(", "))));
        }
        match t {
            "socks5" if self.username.is_empty() != self.password.is_empty() => Err((
                if self.username.is_empty() { "username" } else { "password" }.into(),
                "username and password are given together (both: clients must log in; neither: no auth)".into(),
            )),
            "static_file" if self.local_path.trim().is_empty() => {
                Err(("localPath".into(), "required by the static_file plugin: the directory to serve".into()))
            }
            "unix_domain_socket" if self.unix_path.trim().is_empty() => {
                Err(("unixPath".into(), "required by the unix_domain_socket plugin: the socket's path".into()))
            }
            "unix_domain_socket" if !cfg!(unix) => {
                Err(("type".into(), "the unix_domain_socket plugin needs a Unix system".into()))
            }
            t if bridge::TYPES.contains(&t) && !valid_host_port(&self.local_addr) => Err((
                "localAddr".into(),
                format!("required by the {t} plugin: the local service as host:port (e.g. \"127.0.0.1:8080\")"),
            )),
            t if bridge::TYPES.contains(&t) && self.crt_path.is_empty() != self.key_path.is_empty() => Err((
                if self.crt_path.is_empty() { "crtPath" } else { "keyPath" }.into(),
                "crtPath and keyPath are given together (neither: a self-signed certificate is used)".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// `host:port` with a port (a bridge plugin's `localAddr`).
fn valid_host_port(a: &str) -> bool {
    let a = a.trim();
    let (host, port) = crate::dns::split_host_port(a);
    !host.is_empty() && port != 0
}

/// Serves one visitor connection (`conn`, already decrypted/decompressed) with the plugin. `extra` goes to the
/// local end first (a PROXY protocol header), where the plugin has one; `src` is the visitor's address (the
/// bridges' X-Forwarded-For). Returns the bytes (from visitor, to visitor) when known.
pub async fn serve(
    p: &PluginConfig,
    conn: portway_proto::transport::BoxedIo,
    extra: Option<Vec<u8>>,
    dns: crate::dns::Resolver,
    src: Option<String>,
) -> Option<(u64, u64)> {
    match p.kind.as_str() {
        "socks5" => socks5::serve(conn, socks5::Auth::of(p), dns).await,
        "http_proxy" => http_proxy::serve(conn, http_proxy::BasicAuth::of(&p.http_user, &p.http_password), dns).await,
        "static_file" => {
            static_file::serve(conn, static_file::Site::of(p)).await;
            None
        }
        "unix_domain_socket" => unix_socket::serve(conn, &p.unix_path, extra).await,
        t if bridge::TYPES.contains(&t) => bridge::serve(p, conn, dns, src).await,
        _ => None,
    }
}

/// A relay between the visitor and a local TCP connection; (from visitor, to visitor) bytes.
pub(crate) async fn relay(
    visitor: &mut portway_proto::transport::BoxedIo,
    local: &mut tokio::net::TcpStream,
) -> Option<(u64, u64)> {
    portway_proto::transport::tune(local);
    portway_proto::relay::relay_tcp(local, visitor).await.ok().map(|(up, down)| (down, up))
}

/// Equal bytes, compared in time that does not depend on where they differ (for passwords).
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    diff == 0
}

/// HTTP Basic credentials a plugin asks for (frp's rule: asked when `httpUser` or `httpPassword` is set).
#[derive(Clone)]
pub struct BasicAuth(Option<(String, String)>);

impl BasicAuth {
    /// From `httpUser` / `httpPassword`.
    pub fn of(user: &str, password: &str) -> Self {
        BasicAuth((!user.is_empty() || !password.is_empty()).then(|| (user.to_string(), password.to_string())))
    }

    /// Whether a request with this `Authorization` / `Proxy-Authorization` value may pass.
    pub fn allows(&self, header: Option<&[u8]>) -> bool {
        use base64::Engine as _;
        let Some((user, password)) = &self.0 else { return true };
        let Some(h) = header.and_then(|h| std::str::from_utf8(h).ok()) else { return false };
        let Some((scheme, value)) = h.trim().split_once(' ') else { return false };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(value.trim()) else { return false };
        let Some(colon) = raw.iter().position(|&b| b == b':') else { return false };
        same(user.as_bytes(), &raw[..colon]) & same(password.as_bytes(), &raw[colon + 1..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: &str) -> PluginConfig {
        PluginConfig { kind: kind.into(), ..Default::default() }
    }

    #[test]
    fn types_and_keys() {
        assert!(p("socks5").check().is_ok());
        assert!(p("http_proxy").check().is_ok());
        assert_eq!(p("static_file").check().unwrap_err().0, "localPath");
        assert_eq!(p("unix_domain_socket").check().unwrap_err().0, "unixPath");
        let e = p("virtual_net").check().unwrap_err();
        assert!(e.1.contains("\"virtual_net\" plugin is not supported yet"), "{e:?}");
        let e = p("tls2raw").check().unwrap_err();
        assert!(e.0 == "localAddr" && e.1.contains("host:port"), "{e:?}");
        let bridge = |kind: &str| PluginConfig { local_addr: "127.0.0.1:8080".into(), ..p(kind) };
        for t in bridge::TYPES {
            assert_eq!(bridge(t).check(), Ok(()), "{t}");
        }
        let e = PluginConfig { crt_path: "a.crt".into(), ..bridge("https2http") }.check().unwrap_err();
        assert_eq!(e.0, "keyPath");
        let e = PluginConfig { crt_path: "a.crt".into(), ..bridge("http2http") }.check().unwrap_err();
        assert_eq!(e.0, "crtPath", "http2http has no certificate");
        let e = PluginConfig { local_addr: "8080".into(), ..p("http2https") }.check().unwrap_err();
        assert_eq!(e.0, "localAddr");
        let e = p("nope").check().unwrap_err();
        assert!(e.1.contains("not an frp plugin type"), "{e:?}");
        let e = PluginConfig { username: "u".into(), ..p("socks5") }.check().unwrap_err();
        assert_eq!(e.0, "password");
        let auth = BasicAuth::of("u", "p");
        assert!(auth.allows(Some(b"Basic dTpw")) && auth.allows(Some(b"basic  dTpw ")));
        assert!(!auth.allows(Some(b"Basic dTpx")) && !auth.allows(None) && !auth.allows(Some(b"Bearer dTpw")));
        assert!(BasicAuth::of("", "").allows(None));
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab") && !same(b"", b"a"));
        let e = PluginConfig { unix_path: "/x".into(), ..p("socks5") }.check().unwrap_err();
        assert_eq!(e.0, "unixPath");
    }
}
