//! Name lookups of the client: the system's resolver, or frpc's `dnsServer` (one DNS server asked directly, for
//! every name the client looks up: the server address, `transport.proxyURL`'s host, local services, health
//! checks, the socks5 and http_proxy plugins' destinations, the STUN server, the OIDC token endpoint).
//!
//! As Go's resolver with a fixed server (what frpc does): `/etc/hosts` first, then an A and an AAAA question sent
//! together over UDP (twice, 2.5 s each), again over TCP when the answer is truncated; IPv4 addresses first.
//! The wire format is `portway_proto::dns` (pure, fuzzed).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use portway_proto::dns::{self, Answer, DnsError, QType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one attempt waits for an answer.
const ATTEMPT: Duration = Duration::from_millis(2500);
/// UDP attempts before giving up.
const ATTEMPTS: usize = 2;

/// Where names are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolver {
    /// The operating system's resolver (getaddrinfo).
    #[default]
    System,
    /// `dnsServer`: this DNS server, asked directly.
    Server(SocketAddr),
}

impl Resolver {
    /// `dnsServer`'s value: an IP address, with an optional port (53 when absent): `8.8.8.8`, `8.8.8.8:53`,
    /// `2001:4860:4860::8888`, `[2001:4860:4860::8888]:53`. Empty: the system's resolver.
    pub fn parse(value: &str) -> Result<Resolver, String> {
        let v = value.trim();
        if v.is_empty() {
            return Ok(Resolver::System);
        }
        if let Ok(sa) = v.parse::<SocketAddr>() {
            return Ok(Resolver::Server(sa));
        }
        if let Ok(ip) = v.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            return Ok(Resolver::Server(SocketAddr::new(ip, dns::PORT)));
        }
        Err(format!(
            "{v:?} is not an IP address with an optional port (e.g. \"223.5.5.5\" or \"127.0.0.1:5353\"); a DNS \
             server given by name is not supported: give its address"
        ))
    }

    /// For messages: "the system resolver" or "dnsServer 8.8.8.8:53".
    pub fn describe(&self) -> String {
        match self {
            Resolver::System => "the system resolver".into(),
            Resolver::Server(sa) => format!("dnsServer {sa}"),
        }
    }

    /// The addresses of `host` (an IP address is returned as is), each with `port`.
    pub async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let server = match self {
            Resolver::System => return Ok(tokio::net::lookup_host((bare, port)).await?.collect()),
            Resolver::Server(sa) => *sa,
        };
        let ips = match hosts_file(bare).await {
            Some(ips) => ips,
            None => ask(server, bare).await.map_err(|e| e.into_io(server, bare))?,
        };
        Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
    }

    /// [`Resolver::connect`] to an address written `host:port` (`[v6]:port`).
    pub async fn connect_addr(&self, addr: &str) -> std::io::Result<TcpStream> {
        let (host, port) = split_host_port(addr);
        self.connect(host, port).await
    }

    /// A TCP connection to `host:port`: each address in turn, the last error if none answers.
    pub async fn connect(&self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        let mut last = None;
        for sa in self.lookup(host, port).await? {
            match TcpStream::connect(sa).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other(format!("{host} has no address"))))
    }
}

/// `host:port` (`[v6]:port` too) split; a missing or bad port is 0 (the URL was checked at load).
pub fn split_host_port(addr: &str) -> (&str, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.starts_with('[')) => {
            (h.trim_start_matches('[').trim_end_matches(']'), p.parse().unwrap_or(0))
        }
        _ => (addr, 0),
    }
}

/// Why the DNS server gave no address.
#[derive(Debug)]
enum LookupError {
    Name(dns::NameError),
    Answer(DnsError),
    NoAnswer,
    NoAddress,
    Io(std::io::Error),
}

impl LookupError {
    fn into_io(self, server: SocketAddr, host: &str) -> std::io::Error {
        use std::io::ErrorKind;
        let (kind, what) = match self {
            LookupError::Name(e) => (ErrorKind::InvalidInput, e.to_string()),
            LookupError::Answer(e) => (ErrorKind::NotFound, format!("dnsServer {server}: {host}: {e}")),
            LookupError::NoAnswer => (
                ErrorKind::TimedOut,
                format!(
                    "dnsServer {server} did not answer for {host} within {} s: check that the DNS server is up \
                     and reachable, or remove dnsServer to use the system resolver",
                    (ATTEMPT * ATTEMPTS as u32).as_secs()
                ),
            ),
            LookupError::NoAddress => (ErrorKind::NotFound, format!("dnsServer {server}: {host} has no address")),
            LookupError::Io(e) => (e.kind(), format!("dnsServer {server}: {e}")),
        };
        std::io::Error::new(kind, what)
    }
}

/// `host`'s addresses in /etc/hosts, if it is there (Go's resolver reads it before asking DNS).
async fn hosts_file(host: &str) -> Option<Vec<IpAddr>> {
    let text = tokio::fs::read_to_string("/etc/hosts").await.ok()?;
    let ips = hosts_lookup(&text, host);
    (!ips.is_empty()).then_some(ips)
}

/// The addresses a hosts file gives `host` (case-insensitive), in file order.
fn hosts_lookup(text: &str, host: &str) -> Vec<IpAddr> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else { continue };
        if words.any(|name| name.eq_ignore_ascii_case(host)) && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// A and AAAA from `server`: IPv4 first. An error only when neither gives an address.
async fn ask(server: SocketAddr, host: &str) -> Result<Vec<IpAddr>, LookupError> {
    let (v4, v6) = tokio::join!(ask_one(server, host, QType::A), ask_one(server, host, QType::Aaaa));
    match (v4, v6) {
        (Ok(mut a), Ok(b)) => {
            a.extend(b);
            if a.is_empty() {
                Err(LookupError::NoAddress)
            } else {
                Ok(a)
            }
        }
        (Ok(a), Err(_)) if !a.is_empty() => Ok(a),
        (Err(_), Ok(b)) if !b.is_empty() => Ok(b),
        // Say the A question's error: that is the record a tunnel server nearly always has.
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
    }
}

async fn ask_one(server: SocketAddr, host: &str, qtype: QType) -> Result<Vec<IpAddr>, LookupError> {
    let id: u16 = rand::random();
    let q = dns::query(id, host, qtype).map_err(LookupError::Name)?;
    let bind: SocketAddr =
        if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (IpAddr::from([0u16; 8]), 0).into() };
    let sock = UdpSocket::bind(bind).await.map_err(LookupError::Io)?;
    sock.connect(server).await.map_err(LookupError::Io)?;
    let mut buf = [0u8; dns::UDP_MAX];
    for _ in 0..ATTEMPTS {
        sock.send(&q).await.map_err(LookupError::Io)?;
        let wait = async {
            loop {
                // A refused port (ICMP) shows as an error here: that is an answer too ("nothing listens").
                let n = sock.recv(&mut buf).await?;
                match dns::parse_answer(&buf[..n], &q) {
                    Err(DnsError::OtherQuestion) | Err(DnsError::Malformed(_)) => continue,
                    other => return Ok::<_, std::io::Error>(other),
                }
            }
        };
        match tokio::time::timeout(ATTEMPT, wait).await {
            Err(_) => continue,
            Ok(Err(e)) => return Err(LookupError::Io(e)),
            Ok(Ok(Ok(Answer { truncated: true, .. }))) => return ask_tcp(server, &q).await,
            Ok(Ok(Ok(a))) => return Ok(a.addrs),
            Ok(Ok(Err(e))) => return Err(LookupError::Answer(e)),
        }
    }
    Err(LookupError::NoAnswer)
}

/// The question again over TCP (RFC 1035 4.2.2: a two-byte length before each message).
async fn ask_tcp(server: SocketAddr, q: &[u8]) -> Result<Vec<IpAddr>, LookupError> {
    let exchange = async {
        let mut s = TcpStream::connect(server).await?;
        let mut out = (q.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(q);
        s.write_all(&out).await?;
        let len = s.read_u16().await? as usize;
        let mut msg = vec![0u8; len];
        s.read_exact(&mut msg).await?;
        Ok::<_, std::io::Error>(msg)
    };
    let msg = match tokio::time::timeout(ATTEMPT, exchange).await {
        Err(_) => return Err(LookupError::NoAnswer),
        Ok(r) => r.map_err(LookupError::Io)?,
    };
    dns::parse_answer(&msg, q).map(|a| a.addrs).map_err(LookupError::Answer)
}

/// reqwest asks this for the token endpoint's and the OIDC issuer's host names.
impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let me = *self;
        Box::pin(async move {
            let addrs = me.lookup(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_server_values_as_frp_takes_them() {
        assert_eq!(Resolver::parse(""), Ok(Resolver::System));
        assert_eq!(Resolver::parse("8.8.8.8"), Ok(Resolver::Server("8.8.8.8:53".parse().unwrap())));
        assert_eq!(Resolver::parse("127.0.0.1:5353"), Ok(Resolver::Server("127.0.0.1:5353".parse().unwrap())));
        assert_eq!(Resolver::parse("2001:db8::1"), Ok(Resolver::Server("[2001:db8::1]:53".parse().unwrap())));
        assert_eq!(Resolver::parse("[2001:db8::1]:54"), Ok(Resolver::Server("[2001:db8::1]:54".parse().unwrap())));
        let e = Resolver::parse("dns.google").unwrap_err();
        assert!(e.contains("not supported") && e.contains("give its address"), "{e}");
    }

    #[test]
    fn proxy_addresses_split_into_host_and_port() {
        assert_eq!(split_host_port("proxy.lan:3128"), ("proxy.lan", 3128));
        assert_eq!(split_host_port("[2001:db8::1]:1080"), ("2001:db8::1", 1080));
        assert_eq!(split_host_port("2001:db8::1"), ("2001:db8::1", 0));
    }

    #[test]
    fn the_hosts_file_is_read_as_the_c_library_reads_it() {
        let text = "127.0.0.1 localhost\n# 10.0.0.9 frps.example\n192.0.2.7\tfrps.example frps # home\n\
                    ::1 localhost ip6-localhost\nnot-an-ip frps.example\n";
        assert_eq!(hosts_lookup(text, "FRPS.example."), vec![IpAddr::from([192, 0, 2, 7])]);
        assert_eq!(hosts_lookup(text, "frps"), vec![IpAddr::from([192, 0, 2, 7])]);
        assert_eq!(hosts_lookup(text, "localhost").len(), 2);
        assert!(hosts_lookup(text, "example").is_empty());
    }
}
