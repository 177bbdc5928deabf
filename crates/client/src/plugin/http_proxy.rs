//! `plugin.type = "http_proxy"`: an HTTP proxy on the visitor's connection. `CONNECT host:port` opens a tunnel;
//! a request with an absolute `http://` URI is sent to its host (one request per connection: the proxy asks the
//! origin to close after its answer). `httpUser` / `httpPassword`: `Proxy-Authorization: Basic` is required (407).

use std::time::Duration;

use portway_proto::transport::BoxedIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;

pub use super::BasicAuth;

/// Largest request head.
const MAX_HEAD: usize = 64 * 1024;
/// How long the client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the destination may take to accept.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers that concern the proxy hop, not the origin.
const HOP_HEADERS: &[&str] = &["proxy-authorization", "proxy-connection", "connection", "keep-alive"];

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Open a tunnel to `host:port`.
    Tunnel(String),
    /// Connect to `host:port` and send these bytes (the rewritten head) first.
    Forward(String, Vec<u8>),
    /// Answer with this status and reason, then close.
    Refuse(u16, &'static str),
}

/// Parses a head that is complete in `buf`: the head and its length, `Ok(None)` when more bytes are needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf)? {
        httparse::Status::Partial => Ok(None),
        httparse::Status::Complete(n) => Ok(Some((
            Head {
                method: req.method.unwrap_or_default().to_string(),
                target: req.path.unwrap_or_default().to_string(),
                headers: req.headers.iter().map(|h| (h.name.to_string(), h.value.to_vec())).collect(),
            },
            n,
        ))),
    }
}

/// Decides a request (pure).
pub fn plan(head: &Head, auth: &BasicAuth) -> Plan {
    if !auth.allows(head.header("proxy-authorization")) {
        return Plan::Refuse(407, "Proxy Authentication Required");
    }
    if head.method.eq_ignore_ascii_case("CONNECT") {
        return match authority(&head.target, None) {
            Some(a) => Plan::Tunnel(a),
            None => Plan::Refuse(400, "Bad Request"),
        };
    }
    let Ok(url) = url::Url::parse(&head.target) else { return Plan::Refuse(400, "Bad Request") };
    if url.scheme() != "http" {
        return Plan::Refuse(400, "Bad Request");
    }
    let Some(host) = url.host_str() else { return Plan::Refuse(400, "Bad Request") };
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let mut out = format!("{} {path} HTTP/1.1\r\n", head.method).into_bytes();
    if head.header("host").is_none() {
        let host_header = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        out.extend_from_slice(format!("Host: {host_header}\r\n").as_bytes());
    }
    for (name, value) in &head.headers {
        if HOP_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    Plan::Forward(addr, out)
}

/// `host:port` of a CONNECT target (`default` port when it has none).
fn authority(target: &str, default: Option<u16>) -> Option<String> {
    let (host, port) = match target.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().ok()?),
        _ => (target, default?),
    };
    (!host.is_empty() && port != 0).then(|| format!("{host}:{port}"))
}

fn refusal(code: u16, reason: &str) -> Vec<u8> {
    let auth = if code == 407 { "Proxy-Authenticate: Basic realm=\"portway\"\r\n" } else { "" };
    format!("HTTP/1.1 {code} {reason}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Reads a request head; the head and the bytes read after it.
async fn read_head(c: &mut BoxedIo) -> Option<(Head, Vec<u8>)> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = c.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_head(&buf) {
            Ok(Some((head, used))) => return Some((head, buf.split_off(used))),
            Ok(None) if buf.len() < MAX_HEAD => {}
            _ => {
                let _ = c.write_all(&refusal(400, "Bad Request")).await;
                return None;
            }
        }
    }
}

/// Serves one client. Returns (from visitor, to visitor) bytes of the relay.
/// `dns`: where destination names are looked up (`dnsServer`).
pub async fn serve(mut c: BoxedIo, auth: BasicAuth, dns: crate::dns::Resolver) -> Option<(u64, u64)> {
    let (head, rest) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut c)).await.ok()??;
    let (addr, first) = match plan(&head, &auth) {
        Plan::Refuse(code, reason) => {
            debug!(code, method = %head.method, "http_proxy plugin: request refused");
            let _ = c.write_all(&refusal(code, reason)).await;
            return None;
        }
        Plan::Tunnel(addr) => (addr, None),
        Plan::Forward(addr, bytes) => (addr, Some(bytes)),
    };
    let mut local = match tokio::time::timeout(DIAL_TIMEOUT, dns.connect_addr(&addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(dest = %addr, error = %e, "http_proxy plugin: cannot reach the destination");
            let _ = c.write_all(&refusal(502, "Bad Gateway")).await;
            return None;
        }
        Err(_) => {
            let _ = c.write_all(&refusal(504, "Gateway Timeout")).await;
            return None;
        }
    };
    match &first {
        None => c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.ok()?,
        Some(bytes) => local.write_all(bytes).await.ok()?,
    }
    if !rest.is_empty() {
        local.write_all(&rest).await.ok()?;
    }
    debug!(dest = %addr, tunnel = first.is_none(), "http_proxy plugin: connected");
    super::relay(&mut c, &mut local).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn plans() {
        let open = BasicAuth::of("", "");
        assert_eq!(
            plan(&head("CONNECT example.com:443 HTTP/1.1\r\n\r\n"), &open),
            Plan::Tunnel("example.com:443".into())
        );
        assert_eq!(plan(&head("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n"), &open), Plan::Tunnel("[::1]:8443".into()));
        assert_eq!(plan(&head("CONNECT example.com HTTP/1.1\r\n\r\n"), &open), Plan::Refuse(400, "Bad Request"));
        let Plan::Forward(addr, bytes) = plan(
            &head("GET http://127.0.0.1:8080/a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n"),
            &open,
        ) else {
            panic!()
        };
        assert_eq!(addr, "127.0.0.1:8080");
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "GET /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        let Plan::Forward(addr, bytes) = plan(&head("GET http://h/ HTTP/1.1\r\n\r\n"), &open) else { panic!() };
        assert_eq!((addr.as_str(), bytes.starts_with(b"GET / HTTP/1.1\r\nHost: h\r\n")), ("h:80", true));
        assert_eq!(plan(&head("GET /x HTTP/1.1\r\n\r\n"), &open), Plan::Refuse(400, "Bad Request"));
        let auth = BasicAuth::of("u", "p");
        assert_eq!(
            plan(&head("CONNECT h:1 HTTP/1.1\r\n\r\n"), &auth),
            Plan::Refuse(407, "Proxy Authentication Required")
        );
        let ok = head("CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\n");
        assert_eq!(plan(&ok, &auth), Plan::Tunnel("h:1".into()));
    }
}
