//! PROXY protocol headers (HAProxy's v1 text and v2 binary forms), written to the local service before a visitor's
//! bytes so it learns the visitor's address (`transport.proxyProtocolVersion`). Pure.

use std::net::{IpAddr, SocketAddr};

/// Which header to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `PROXY TCP4 src dst sport dport\r\n`.
    V1,
    /// The binary form.
    V2,
}

/// A `proxyProtocolVersion` that is neither "v1" nor "v2".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not \"v1\" or \"v2\"")]
pub struct UnknownVersion(pub String);

impl Version {
    /// frp's config values: "v1", "v2" (empty: none).
    pub fn parse(s: &str) -> Result<Option<Version>, UnknownVersion> {
        match s {
            "" => Ok(None),
            "v1" => Ok(Some(Version::V1)),
            "v2" => Ok(Some(Version::V2)),
            other => Err(UnknownVersion(other.to_string())),
        }
    }
}

/// The v2 signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Both addresses in one family (an IPv4 address next to an IPv6 one is written IPv4-mapped).
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    if src.is_ipv4() == dst.is_ipv4() {
        (src, dst)
    } else {
        (v6(src), v6(dst))
    }
}

/// The header for a visitor `src` that reached the server at `dst`.
pub fn header(version: Version, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = same_family(src, dst);
    match version {
        Version::V1 => {
            let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
            format!("PROXY {family} {} {} {} {}\r\n", src.ip(), dst.ip(), src.port(), dst.port()).into_bytes()
        }
        Version::V2 => {
            let mut out = V2_SIGNATURE.to_vec();
            out.push(0x21); // version 2, command PROXY
            match (src.ip(), dst.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    out.push(0x11); // TCP over IPv4
                    out.extend_from_slice(&12u16.to_be_bytes());
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                }
                (s, d) => {
                    let v6 = |ip: IpAddr| match ip {
                        IpAddr::V6(v) => v.octets(),
                        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
                    };
                    out.push(0x21); // TCP over IPv6
                    out.extend_from_slice(&36u16.to_be_bytes());
                    out.extend_from_slice(&v6(s));
                    out.extend_from_slice(&v6(d));
                }
            }
            out.extend_from_slice(&src.port().to_be_bytes());
            out.extend_from_slice(&dst.port().to_be_bytes());
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_headers() {
        let src: SocketAddr = "203.0.113.7:50000".parse().unwrap();
        let dst: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        assert_eq!(header(Version::V1, src, dst), b"PROXY TCP4 203.0.113.7 127.0.0.1 50000 6000\r\n");
        let v2 = header(Version::V2, src, dst);
        assert_eq!(&v2[..12], b"\r\n\r\n\0\r\nQUIT\n");
        assert_eq!(&v2[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&v2[16..20], &[203, 0, 113, 7]);
        assert_eq!(&v2[20..24], &[127, 0, 0, 1]);
        assert_eq!(&v2[24..], &[0xc3, 0x50, 0x17, 0x70]);
        let src6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        assert_eq!(header(Version::V1, src6, dst), b"PROXY TCP6 2001:db8::1 ::ffff:127.0.0.1 443 6000\r\n");
        let v2 = header(Version::V2, src6, dst);
        assert_eq!(&v2[12..16], &[0x21, 0x21, 0, 36]);
        assert_eq!(v2.len(), 16 + 36);
        assert_eq!(Version::parse("v2"), Ok(Some(Version::V2)));
        assert_eq!(Version::parse(""), Ok(None));
        assert!(Version::parse("v3").is_err());
    }
}
