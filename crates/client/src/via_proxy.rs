//! `transport.proxyURL`: reaching the server through an outbound proxy, as frpc does (`http://` with HTTP CONNECT,
//! `socks5://` per RFC 1928, both with optional `user:password@` credentials: Basic auth / RFC 1929), plus frpc's
//! other dial options for the server connection, `transport.connectServerLocalIP` and
//! `transport.dialServerKeepalive`.
//!
//! The URL parsing and the handshake bytes are pure ([`ProxyUrl::parse`], [`connect_request`], [`socks5_request`],
//! [`socks5_reply_error`]); [`dial`] does the IO.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How the proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// HTTP CONNECT.
    Http,
    /// SOCKS version 5, CONNECT command.
    Socks5,
}

/// A parsed `transport.proxyURL`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub kind: ProxyKind,
    /// `host:port` of the proxy.
    pub addr: String,
    /// User and password, when the URL carries them.
    pub auth: Option<(String, String)>,
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log or a panic message.
        f.debug_struct("ProxyUrl")
            .field("kind", &self.kind)
            .field("addr", &self.addr)
            .field("user", &self.auth.as_ref().map(|a| &a.0))
            .finish()
    }
}

impl ProxyUrl {
    /// Parses frpc's proxy URL forms: `http://[user:password@]host[:port]` (port 80 when left out) and
    /// `socks5://[user:password@]host[:port]` (1080). The message names what is wrong and never repeats the
    /// password.
    pub fn parse(text: &str) -> Result<ProxyUrl, String> {
        let u = url::Url::parse(text.trim()).map_err(|e| {
            format!("is not a URL ({e}); write http://host:port or socks5://host:port, with user:password@ if the proxy asks for them")
        })?;
        let kind = match u.scheme() {
            "http" => ProxyKind::Http,
            "socks5" => ProxyKind::Socks5,
            "ntlm" => {
                return Err("ntlm:// (an NTLM-authenticating HTTP proxy) is not supported yet; use an http:// or \
                            socks5:// proxy"
                    .into())
            }
            "https" => {
                return Err("https:// (TLS to the proxy itself) is not supported, as in frpc; write http:// for an \
                            HTTP CONNECT proxy (the tunnel's own TLS still protects the connection)"
                    .into())
            }
            other => return Err(format!("scheme {other:?} is not one frpc knows; use http:// or socks5://")),
        };
        let host = u.host_str().filter(|h| !h.is_empty()).ok_or("has no host")?;
        let port = u.port().unwrap_or(if kind == ProxyKind::Http { 80 } else { 1080 });
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let auth =
            (!u.username().is_empty()).then(|| (decode(u.username()), u.password().map(decode).unwrap_or_default()));
        if u.path() != "/" && !u.path().is_empty() {
            return Err(format!("has a path ({:?}); give only scheme, credentials, host and port", u.path()));
        }
        Ok(ProxyUrl { kind, addr, auth })
    }
}

/// The HTTP CONNECT request for `target` (`host:port`).
pub fn connect_request(target: &str, auth: Option<&(String, String)>) -> Vec<u8> {
    let mut r = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, pass)) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        r.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// SOCKS5's CONNECT request for `host`:`port` (an IP literal as an address, anything else as a domain name).
pub fn socks5_request(host: &str, port: u16) -> Result<Vec<u8>, String> {
    let mut r = vec![5, 1, 0];
    match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            r.push(1);
            r.extend_from_slice(&ip.octets());
        }
        Ok(IpAddr::V6(ip)) => {
            r.push(4);
            r.extend_from_slice(&ip.octets());
        }
        Err(_) => {
            let len =
                u8::try_from(host.len()).map_err(|_| format!("the server name {host:?} is too long for SOCKS5"))?;
            r.push(3);
            r.push(len);
            r.extend_from_slice(host.as_bytes());
        }
    }
    r.extend_from_slice(&port.to_be_bytes());
    Ok(r)
}

/// What a SOCKS5 reply code means (RFC 1928, 6), or `None` for success.
pub fn socks5_reply_error(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => return None,
        1 => "general SOCKS server failure",
        2 => "connection not allowed by the proxy's rules",
        3 => "network unreachable from the proxy",
        4 => "host unreachable from the proxy",
        5 => "connection refused by the server (as seen from the proxy)",
        6 => "TTL expired",
        7 => "command not supported by the proxy",
        8 => "address type not supported by the proxy",
        _ => "unknown SOCKS5 reply code",
    })
}

/// Options for the server connection: `transport.proxyURL`, `connectServerLocalIP`, `dialServerKeepalive`.
#[derive(Debug, Clone, Default)]
pub struct DialOptions {
    /// Where host names are looked up (`dnsServer`).
    pub dns: crate::dns::Resolver,
    pub proxy: Option<ProxyUrl>,
    pub local_ip: Option<IpAddr>,
    /// TCP keepalive idle time and interval; `None`: off.
    pub keepalive: Option<Duration>,
}

/// Why [`dial`] failed, in words for the user (the engine adds the server's address).
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cannot reach the proxy {addr} (transport.proxyURL): {source}")]
    ProxyUnreachable { addr: String, source: std::io::Error },
    #[error("the proxy {addr} (transport.proxyURL) {reason}")]
    Proxy { addr: String, reason: String },
}

/// Connects to `host:port` (the server), directly or through the proxy, from `local_ip` if given, with keepalive.
pub async fn dial(host: &str, port: u16, opts: &DialOptions) -> Result<TcpStream, DialError> {
    let Some(proxy) = &opts.proxy else {
        return Ok(tcp_to(host, port, opts).await?);
    };
    let perr = |reason: String| DialError::Proxy { addr: proxy.addr.clone(), reason };
    let (proxy_host, proxy_port) = crate::dns::split_host_port(&proxy.addr);
    let mut s = tcp_to(proxy_host, proxy_port, opts)
        .await
        .map_err(|source| DialError::ProxyUnreachable { addr: proxy.addr.clone(), source })?;
    let target = format!("{}:{port}", bracket(host));
    match proxy.kind {
        ProxyKind::Http => {
            s.write_all(&connect_request(&target, proxy.auth.as_ref())).await?;
            let head = read_head(&mut s).await.map_err(|e| perr(format!("did not answer CONNECT: {e}")))?;
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&head) {
                Ok(httparse::Status::Complete(_)) => {}
                _ => return Err(perr("answered CONNECT with something that is not HTTP".into())),
            }
            match resp.code {
                Some(200..=299) => {}
                // 407 is the proxy's own status; some proxies (tinyproxy) answer 401 to a CONNECT without valid
                // credentials.
                Some(401 | 407) => {
                    return Err(perr(if proxy.auth.is_some() {
                        "refused the user and password of transport.proxyURL (HTTP 401/407)".into()
                    } else {
                        "asks for credentials (HTTP 401/407): write them into transport.proxyURL as \
                         http://user:password@host:port"
                            .into()
                    }))
                }
                Some(c) => {
                    return Err(perr(format!(
                        "refused CONNECT to {target}: {c} {} (does the proxy allow CONNECT to this port?)",
                        resp.reason.unwrap_or("")
                    )))
                }
                None => return Err(perr("answered CONNECT without a status".into())),
            }
        }
        ProxyKind::Socks5 => {
            let methods: &[u8] = if proxy.auth.is_some() { &[5, 2, 0, 2] } else { &[5, 1, 0] };
            s.write_all(methods).await?;
            let mut m = [0u8; 2];
            s.read_exact(&mut m).await.map_err(|e| perr(format!("did not answer the SOCKS5 greeting: {e}")))?;
            if m[0] != 5 {
                return Err(perr("is not a SOCKS5 proxy (wrong version in its answer)".into()));
            }
            match (m[1], &proxy.auth) {
                (0, _) => {}
                (2, Some((user, pass))) => {
                    let (u, p) = (user.as_bytes(), pass.as_bytes());
                    if u.len() > 255 || p.len() > 255 {
                        return Err(perr("cannot take a user or password longer than 255 bytes (SOCKS5)".into()));
                    }
                    let mut a = vec![1, u.len() as u8];
                    a.extend_from_slice(u);
                    a.push(p.len() as u8);
                    a.extend_from_slice(p);
                    s.write_all(&a).await?;
                    let mut r = [0u8; 2];
                    s.read_exact(&mut r).await.map_err(|e| perr(format!("closed during authentication: {e}")))?;
                    if r[1] != 0 {
                        return Err(perr("refused the user and password of transport.proxyURL (SOCKS5)".into()));
                    }
                }
                (2, None) => {
                    return Err(perr(
                        "asks for a user and password: write them into transport.proxyURL as \
                         socks5://user:password@host:port"
                            .into(),
                    ))
                }
                (0xff, _) => return Err(perr("accepts none of the offered authentication methods (SOCKS5)".into())),
                (other, _) => return Err(perr(format!("chose an authentication method Portway lacks ({other})"))),
            }
            s.write_all(&socks5_request(host, port).map_err(perr)?).await?;
            let mut r = [0u8; 4];
            s.read_exact(&mut r).await.map_err(|e| perr(format!("closed before answering CONNECT: {e}")))?;
            if let Some(why) = socks5_reply_error(r[1]) {
                return Err(perr(format!("could not connect to {target}: {why}")));
            }
            // The bound address the proxy reports: read and drop.
            let rest = match r[3] {
                1 => 4 + 2,
                4 => 16 + 2,
                3 => {
                    let mut l = [0u8; 1];
                    s.read_exact(&mut l).await?;
                    l[0] as usize + 2
                }
                _ => return Err(perr("answered with an unknown address type (SOCKS5)".into())),
            };
            let mut skip = vec![0u8; rest];
            s.read_exact(&mut skip).await?;
        }
    }
    Ok(s)
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A TCP connection to `host:port` (looked up with `opts.dns`; each address tried in turn) from `local_ip`,
/// with keepalive.
async fn tcp_to(host: &str, port: u16, opts: &DialOptions) -> std::io::Result<TcpStream> {
    let mut last = None;
    for sa in opts.dns.lookup(host, port).await? {
        match tcp_one(sa, opts).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other(format!("{host} resolves to no address"))))
}

async fn tcp_one(sa: SocketAddr, opts: &DialOptions) -> std::io::Result<TcpStream> {
    let sock = if sa.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = opts.local_ip {
        sock.bind(SocketAddr::new(ip, 0)).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot use {ip} as the local address (transport.connectServerLocalIP): {e}"),
            )
        })?;
    }
    let s = sock.connect(sa).await?;
    if let Some(k) = opts.keepalive {
        // frpc (Go's dialer) uses the one duration for the idle time and the probe interval.
        let ka = socket2::TcpKeepalive::new().with_time(k).with_interval(k);
        if let Err(e) = socket2::SockRef::from(&s).set_tcp_keepalive(&ka) {
            tracing::debug!(error = %e, "TCP keepalive not set on the server connection");
        }
    }
    Ok(s)
}

/// Reads an HTTP response head (up to the blank line, at most 16 KiB) byte by byte, so nothing of the tunnel that
/// follows is consumed.
async fn read_head(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(256);
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= 16 * 1024 {
            return Err(std::io::Error::other("a response head over 16 KiB"));
        }
        if s.read(&mut b).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(b[0]);
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frpc_proxy_urls() {
        let p = ProxyUrl::parse("http://user:p%40ss@proxy.lan:3128").unwrap();
        assert_eq!(p.kind, ProxyKind::Http);
        assert_eq!(p.addr, "proxy.lan:3128");
        assert_eq!(p.auth, Some(("user".into(), "p@ss".into())));
        let p = ProxyUrl::parse("socks5://127.0.0.1").unwrap();
        assert_eq!((p.kind, p.addr.as_str(), p.auth), (ProxyKind::Socks5, "127.0.0.1:1080", None));
        assert_eq!(ProxyUrl::parse("http://[::1]:8080").unwrap().addr, "[::1]:8080");
        assert_eq!(ProxyUrl::parse("http://proxy").unwrap().addr, "proxy:80");
        let e = ProxyUrl::parse("ntlm://u:secret@proxy:8080").unwrap_err();
        assert!(e.contains("not supported yet") && !e.contains("secret"), "{e}");
        assert!(ProxyUrl::parse("ftp://proxy").unwrap_err().contains("http:// or socks5://"));
        assert!(ProxyUrl::parse("proxy:3128").is_err());
        assert!(ProxyUrl::parse("http://proxy:3128/path").unwrap_err().contains("path"));
        let dbg = format!("{:?}", ProxyUrl::parse("http://u:hunter2@proxy:1").unwrap());
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn handshake_bytes() {
        let r = String::from_utf8(connect_request("frps.example:7000", Some(&("u".into(), "p".into())))).unwrap();
        assert_eq!(
            r,
            "CONNECT frps.example:7000 HTTP/1.1\r\nHost: frps.example:7000\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
        );
        assert_eq!(socks5_request("10.1.2.3", 7000).unwrap(), [5, 1, 0, 1, 10, 1, 2, 3, 0x1b, 0x58]);
        assert_eq!(socks5_request("ab", 1).unwrap(), [5, 1, 0, 3, 2, b'a', b'b', 0, 1]);
        assert_eq!(socks5_request("::1", 1).unwrap()[3], 4);
        assert!(socks5_request(&"x".repeat(300), 1).is_err());
        assert_eq!(socks5_reply_error(0), None);
        assert!(socks5_reply_error(5).unwrap().contains("refused"));
    }
}
