//! `plugin.type = "socks5"`: a SOCKS5 server (RFC 1928) on the visitor's connection. CONNECT only; no auth, or
//! RFC 1929 user/password when `username` and `password` are set.

use std::time::Duration;

use portway_proto::transport::BoxedIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;

use super::PluginConfig;

/// How long the client has for its greeting, auth and request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the destination may take to accept.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_METHOD: u8 = 0xff;

/// Reply codes (RFC 1928 §6).
pub mod rep {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const NET_UNREACHABLE: u8 = 3;
    pub const HOST_UNREACHABLE: u8 = 4;
    pub const REFUSED: u8 = 5;
    pub const TTL_EXPIRED: u8 = 6;
    pub const COMMAND_UNSUPPORTED: u8 = 7;
    pub const ADDRESS_UNSUPPORTED: u8 = 8;
}

/// The credentials clients must give (none: no auth).
#[derive(Clone)]
pub struct Auth(Option<(String, String)>);

impl Auth {
    /// From the plugin's `username` / `password`.
    pub fn of(p: &PluginConfig) -> Self {
        Auth((!p.username.is_empty()).then(|| (p.username.clone(), p.password.clone())))
    }

    /// The method the server picks from the client's offer.
    pub fn choose(&self, offered: &[u8]) -> u8 {
        let want = if self.0.is_some() { USER_PASS } else { NO_AUTH };
        if offered.contains(&want) {
            want
        } else {
            NO_METHOD
        }
    }

    fn accepts(&self, user: &[u8], pass: &[u8]) -> bool {
        match &self.0 {
            Some((u, p)) => super::same(u.as_bytes(), user) & super::same(p.as_bytes(), pass),
            None => true,
        }
    }
}

/// A request's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// IPv4 or IPv6.
    Ip(std::net::SocketAddr),
    /// A host name the proxy resolves.
    Name(String, u16),
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Ip(a) => write!(f, "{a}"),
            Dest::Name(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// The reply for a failed dial.
pub fn reply_for(e: &std::io::Error) -> u8 {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => rep::REFUSED,
        K::TimedOut => rep::TTL_EXPIRED,
        K::NetworkUnreachable => rep::NET_UNREACHABLE,
        K::HostUnreachable | K::NotFound => rep::HOST_UNREACHABLE,
        _ => rep::FAILURE,
    }
}

/// A reply with an IPv4/IPv6 bound address.
pub fn reply(code: u8, bound: Option<std::net::SocketAddr>) -> Vec<u8> {
    let bound = bound.unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut out = vec![5, code, 0];
    match bound.ip() {
        std::net::IpAddr::V4(ip) => {
            out.push(1);
            out.extend_from_slice(&ip.octets());
        }
        std::net::IpAddr::V6(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&bound.port().to_be_bytes());
    out
}

enum Refused {
    /// Close without a reply.
    Close,
    /// Send this reply code, then close.
    Reply(u8),
}

async fn read_vec(c: &mut BoxedIo, n: usize) -> std::io::Result<Vec<u8>> {
    let mut v = vec![0; n];
    c.read_exact(&mut v).await?;
    Ok(v)
}

/// Greeting, auth and request; the destination on success.
async fn handshake(c: &mut BoxedIo, auth: &Auth) -> Result<(u8, Dest), Refused> {
    let io = |_| Refused::Close;
    let mut head = [0u8; 2];
    c.read_exact(&mut head).await.map_err(io)?;
    if head[0] != 5 {
        return Err(Refused::Close);
    }
    let methods = read_vec(c, usize::from(head[1])).await.map_err(io)?;
    let method = auth.choose(&methods);
    c.write_all(&[5, method]).await.map_err(io)?;
    if method == NO_METHOD {
        return Err(Refused::Close);
    }
    if method == USER_PASS {
        let mut v = [0u8; 2];
        c.read_exact(&mut v).await.map_err(io)?;
        let user = read_vec(c, usize::from(v[1])).await.map_err(io)?;
        let mut plen = [0u8; 1];
        c.read_exact(&mut plen).await.map_err(io)?;
        let pass = read_vec(c, usize::from(plen[0])).await.map_err(io)?;
        let ok = v[0] == 1 && auth.accepts(&user, &pass);
        c.write_all(&[1, if ok { 0 } else { 1 }]).await.map_err(io)?;
        if !ok {
            debug!("socks5 plugin: wrong user name or password");
            return Err(Refused::Close);
        }
    }
    let mut req = [0u8; 4];
    c.read_exact(&mut req).await.map_err(io)?;
    if req[0] != 5 {
        return Err(Refused::Close);
    }
    let dest = match req[3] {
        1 => {
            let b = read_vec(c, 6).await.map_err(io)?;
            let ip = std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Dest::Ip((ip, u16::from_be_bytes([b[4], b[5]])).into())
        }
        4 => {
            let b = read_vec(c, 18).await.map_err(io)?;
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[..16]);
            Dest::Ip((std::net::Ipv6Addr::from(o), u16::from_be_bytes([b[16], b[17]])).into())
        }
        3 => {
            let mut n = [0u8; 1];
            c.read_exact(&mut n).await.map_err(io)?;
            let b = read_vec(c, usize::from(n[0]) + 2).await.map_err(io)?;
            let (name, port) = b.split_at(b.len() - 2);
            let name = String::from_utf8(name.to_vec()).map_err(|_| Refused::Reply(rep::HOST_UNREACHABLE))?;
            Dest::Name(name, u16::from_be_bytes([port[0], port[1]]))
        }
        _ => return Err(Refused::Reply(rep::ADDRESS_UNSUPPORTED)),
    };
    Ok((req[1], dest))
}

/// Serves one client. Returns (from visitor, to visitor) bytes of the relay.
/// `dns`: where destination names are looked up (`dnsServer`).
pub async fn serve(mut c: BoxedIo, auth: Auth, dns: crate::dns::Resolver) -> Option<(u64, u64)> {
    let (cmd, dest) = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut c, &auth)).await {
        Ok(Ok(x)) => x,
        Ok(Err(Refused::Reply(code))) => {
            let _ = c.write_all(&reply(code, None)).await;
            return None;
        }
        Ok(Err(Refused::Close)) | Err(_) => return None,
    };
    if cmd != 1 {
        let _ = c.write_all(&reply(rep::COMMAND_UNSUPPORTED, None)).await;
        return None;
    }
    let dial = match &dest {
        Dest::Ip(a) => tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(*a)).await,
        Dest::Name(h, p) => tokio::time::timeout(DIAL_TIMEOUT, dns.connect(h, *p)).await,
    };
    let mut local = match dial {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(dest = %dest, error = %e, "socks5 plugin: cannot reach the destination");
            let _ = c.write_all(&reply(reply_for(&e), None)).await;
            return None;
        }
        Err(_) => {
            let _ = c.write_all(&reply(rep::TTL_EXPIRED, None)).await;
            return None;
        }
    };
    if c.write_all(&reply(rep::OK, local.local_addr().ok())).await.is_err() {
        return None;
    }
    debug!(dest = %dest, "socks5 plugin: connected");
    super::relay(&mut c, &mut local).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_choice_and_replies() {
        let none = Auth(None);
        let pw = Auth(Some(("u".into(), "p".into())));
        assert_eq!(none.choose(&[0, 2]), NO_AUTH);
        assert_eq!(pw.choose(&[0]), NO_METHOD);
        assert_eq!(pw.choose(&[0, 2]), USER_PASS);
        assert!(pw.accepts(b"u", b"p") && !pw.accepts(b"u", b"x") && !pw.accepts(b"", b"p"));
        assert_eq!(reply(0, Some("127.0.0.1:258".parse().unwrap())), [5, 0, 0, 1, 127, 0, 0, 1, 1, 2]);
        assert_eq!(reply(7, None).len(), 10);
    }
}
