//! The head of an HTTP CONNECT request, as the tcpmux listener reads it (parsed by `httparse`).

use super::routes::{basic_auth, canonical_host};

/// Largest request head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header lines accepted.
const MAX_HEADERS: usize = 64;

/// frp's answer to a routed CONNECT (tcpmuxPassthrough off).
pub const OK_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
/// frp's answer to a CONNECT whose Proxy-Authorization does not match the proxy's httpUser/httpPassword.
pub const PROXY_AUTH_REQUIRED: &[u8] =
    b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\nProxy-Authenticate: Basic\r\n\r\n";

/// What a CONNECT head says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectHead {
    /// The canonical host (from the request target, else `Host`).
    pub host: String,
    /// Proxy-Authorization user and password (empty when absent).
    pub user: String,
    /// See `user`.
    pub password: String,
    /// Length of the head in the buffer; what follows is tunnel data.
    pub len: usize,
}

/// Why a head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// Not HTTP.
    #[error("not an HTTP request: {0}")]
    Malformed(String),
    /// Longer than [`MAX_HEAD`].
    #[error("request head longer than {MAX_HEAD} bytes")]
    TooLong,
    /// Another method.
    #[error("connections to tcp vhost must be of method CONNECT (got {0})")]
    NotConnect(String),
}

/// Parses `buf`: `Ok(None)` while the head is incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<ConnectHead>, ConnectError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(ConnectError::TooLong),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ConnectError::Malformed(e.to_string())),
    };
    let method = req.method.unwrap_or_default();
    if method != "CONNECT" {
        return Err(ConnectError::NotConnect(method.chars().take(16).collect()));
    }
    let header = |name: &str| req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let target = req.path.unwrap_or_default();
    let authority = if target.is_empty() || target.starts_with('/') {
        header("host").and_then(|v| std::str::from_utf8(v).ok()).unwrap_or_default()
    } else {
        target
    };
    let (user, password) = header("proxy-authorization").and_then(basic_auth).unwrap_or_default();
    Ok(Some(ConnectHead { host: canonical_host(authority), user, password, len }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_heads() {
        let req = b"CONNECT Mux.Portway.Test:443 HTTP/1.1\r\nHost: mux.portway.test:443\r\n\r\nhello";
        let h = parse(req).unwrap().unwrap();
        assert_eq!(h.host, "mux.portway.test");
        assert_eq!(&req[h.len..], b"hello");
        assert!(h.user.is_empty() && h.password.is_empty());
        for cut in [0, 10, req.len() - 8] {
            assert_eq!(parse(&req[..cut]), Ok(None), "cut at {cut}");
        }
        let auth = b"CONNECT a.test:1 HTTP/1.1\r\nProxy-Authorization: Basic YWRtaW46YWRtaW4=\r\n\r\n";
        let h = parse(auth).unwrap().unwrap();
        assert_eq!((h.user.as_str(), h.password.as_str()), ("admin", "admin"));
        assert!(matches!(parse(b"GET / HTTP/1.1\r\n\r\n"), Err(ConnectError::NotConnect(_))));
        assert!(matches!(parse(b"\x16\x03\x01garbage\r\n\r\n"), Err(ConnectError::Malformed(_))));
        let long = [b"CONNECT a:1 HTTP/1.1\r\nX: ".as_slice(), &vec![b'a'; MAX_HEAD]].concat();
        assert_eq!(parse(&long), Err(ConnectError::TooLong));
    }
}
