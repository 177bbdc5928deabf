//! A minimal STUN (RFC 5389) binding client, pure: build a Binding request, read a Binding success response.
//!
//! xtcp's NAT discovery (frp's `pkg/nathole/discovery.go`) asks `natHoleStunServer` for the mapped address of
//! its UDP socket, then asks the server's second address (OTHER-ADDRESS, or the older CHANGED-ADDRESS) again:
//! two mapped addresses tell a NAT whose mapping depends on the destination from one that does not. Only what that
//! needs is here; the socket IO lives in the client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// RFC 5389's magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_a442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const MAPPED_ADDRESS: u16 = 0x0001;
const CHANGED_ADDRESS: u16 = 0x0005;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const OTHER_ADDRESS: u16 = 0x802c;
const HEADER_LEN: usize = 20;

/// A 96-bit transaction id.
pub type TransactionId = [u8; 12];

/// What a Binding success response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingResponse {
    /// The address the server saw the request come from (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS).
    pub mapped: Option<SocketAddr>,
    /// The server's other address (OTHER-ADDRESS, else CHANGED-ADDRESS).
    pub other: Option<SocketAddr>,
}

/// Why a datagram is not the expected Binding success response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    /// Too short, wrong cookie or lengths that do not add up.
    #[error("not a STUN message ({0})")]
    Malformed(&'static str),
    /// A STUN message, but not the answer to this request.
    #[error("STUN answer for another transaction")]
    OtherTransaction,
    /// An error response or another method.
    #[error("STUN server answered message type {0:#06x}, not a Binding success")]
    NotSuccess(u16),
}

/// A Binding request with `id` (no attributes), as frp's client sends.
pub fn binding_request(id: &TransactionId) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN);
    b.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    b.extend_from_slice(id);
    b
}

/// Reads the Binding success response to request `id`.
///
/// # Errors
/// [`StunError`] when `b` is not a well-formed answer to `id`.
pub fn parse_binding_response(b: &[u8], id: &TransactionId) -> Result<BindingResponse, StunError> {
    if b.len() < HEADER_LEN {
        return Err(StunError::Malformed("shorter than a header"));
    }
    let kind = u16::from_be_bytes([b[0], b[1]]);
    let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
    if b[4..8] != MAGIC_COOKIE.to_be_bytes() {
        return Err(StunError::Malformed("no magic cookie"));
    }
    if b.len() < HEADER_LEN + len {
        return Err(StunError::Malformed("attributes cut short"));
    }
    if &b[8..20] != id {
        return Err(StunError::OtherTransaction);
    }
    if kind != BINDING_SUCCESS {
        return Err(StunError::NotSuccess(kind));
    }
    let mut out = BindingResponse { mapped: None, other: None };
    let (mut xor_mapped, mut mapped, mut other, mut changed) = (None, None, None, None);
    let mut attrs = &b[HEADER_LEN..HEADER_LEN + len];
    while attrs.len() >= 4 {
        let t = u16::from_be_bytes([attrs[0], attrs[1]]);
        let l = usize::from(u16::from_be_bytes([attrs[2], attrs[3]]));
        let Some(v) = attrs.get(4..4 + l) else { return Err(StunError::Malformed("attribute cut short")) };
        match t {
            XOR_MAPPED_ADDRESS => xor_mapped = address(v, Some(&b[4..20])),
            MAPPED_ADDRESS => mapped = address(v, None),
            OTHER_ADDRESS => other = address(v, None),
            CHANGED_ADDRESS => changed = address(v, None),
            _ => {}
        }
        // Attributes are padded to 4 bytes.
        let next = (4 + l + 3) & !3;
        attrs = attrs.get(next..).unwrap_or(&[]);
    }
    out.mapped = xor_mapped.or(mapped);
    out.other = other.or(changed);
    Ok(out)
}

/// An (XOR-)MAPPED-ADDRESS value; `xor` is the cookie and transaction id for the XOR form.
fn address(v: &[u8], xor: Option<&[u8]>) -> Option<SocketAddr> {
    if v.len() < 4 {
        return None;
    }
    let family = v[1];
    let mut port = u16::from_be_bytes([v[2], v[3]]);
    let mask = |i: usize| xor.map_or(0, |x| x[i]);
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match family {
        1 if v.len() >= 8 => IpAddr::V4(Ipv4Addr::new(v[4] ^ mask(0), v[5] ^ mask(1), v[6] ^ mask(2), v[7] ^ mask(3))),
        2 if v.len() >= 20 => {
            let mut o = [0u8; 16];
            for (i, byte) in o.iter_mut().enumerate() {
                *byte = v[4 + i] ^ mask(i);
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// A Binding success response (for test responders): XOR-MAPPED-ADDRESS `mapped`, and OTHER-ADDRESS `other`
/// when given. IPv4 only.
pub fn binding_response(id: &TransactionId, mapped: SocketAddr, other: Option<SocketAddr>) -> Vec<u8> {
    let mut attrs = Vec::new();
    let mut push = |t: u16, addr: SocketAddr, xor: bool| {
        let IpAddr::V4(ip) = addr.ip() else { return };
        let mut port = addr.port();
        let mut o = ip.octets();
        if xor {
            port ^= (MAGIC_COOKIE >> 16) as u16;
            for (i, byte) in o.iter_mut().enumerate() {
                *byte ^= MAGIC_COOKIE.to_be_bytes()[i];
            }
        }
        attrs.extend_from_slice(&t.to_be_bytes());
        attrs.extend_from_slice(&8u16.to_be_bytes());
        attrs.extend_from_slice(&[0, 1]);
        attrs.extend_from_slice(&port.to_be_bytes());
        attrs.extend_from_slice(&o);
    };
    push(XOR_MAPPED_ADDRESS, mapped, true);
    if let Some(o) = other {
        push(OTHER_ADDRESS, o, false);
    }
    let mut b = Vec::with_capacity(HEADER_LEN + attrs.len());
    b.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    b.extend_from_slice(id);
    b.extend_from_slice(&attrs);
    b
}

/// The transaction id of a Binding request (for test responders), `None` for anything else.
pub fn request_id(b: &[u8]) -> Option<TransactionId> {
    if b.len() < HEADER_LEN
        || u16::from_be_bytes([b[0], b[1]]) != BINDING_REQUEST
        || b[4..8] != MAGIC_COOKIE.to_be_bytes()
    {
        return None;
    }
    b[8..20].try_into().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // From ../shared/frp-captures/xtcp-visitor/stun-exchanges.txt (frpc v0.70 against a local responder).
    #[test]
    fn reads_the_captured_answers_and_builds_frps_request() {
        let req = hex("000100002112a442f48315268eeb77d85a07cb8e");
        let id = request_id(&req).unwrap();
        assert_eq!(binding_request(&id), req);
        let resp = hex("010100182112a442f48315268eeb77d85a07cb8e002000080001ff985e12a443802c0008000134a77f000001");
        let r = parse_binding_response(&resp, &id).unwrap();
        assert_eq!(r.mapped, Some("127.0.0.1:56970".parse().unwrap()));
        assert_eq!(r.other, Some("127.0.0.1:13479".parse().unwrap()));
        let id2: TransactionId = hex("0dca6c52c07b1462842a216d").try_into().unwrap();
        let resp2 = hex("0101000c2112a4420dca6c52c07b1462842a216d002000080001ff985e12a443");
        let r2 = parse_binding_response(&resp2, &id2).unwrap();
        assert_eq!((r2.mapped, r2.other), (Some("127.0.0.1:56970".parse().unwrap()), None));
        // The responder's builder writes the same bytes as the captured responder.
        assert_eq!(binding_response(&id, r.mapped.unwrap(), r.other), resp);
    }

    #[test]
    fn refuses_what_is_not_the_answer() {
        let id = [7u8; 12];
        assert_eq!(parse_binding_response(&[0; 5], &id), Err(StunError::Malformed("shorter than a header")));
        let good = binding_response(&id, "10.0.0.1:5".parse().unwrap(), None);
        assert_eq!(parse_binding_response(&good, &[8u8; 12]), Err(StunError::OtherTransaction));
        let mut cut = good.clone();
        cut.truncate(good.len() - 2);
        assert!(matches!(parse_binding_response(&cut, &id), Err(StunError::Malformed(_))));
        let mut err = good.clone();
        err[0..2].copy_from_slice(&0x0111u16.to_be_bytes());
        assert_eq!(parse_binding_response(&err, &id), Err(StunError::NotSuccess(0x0111)));
        // Garbage of every short length never panics.
        for n in 0..40 {
            let _ = parse_binding_response(&vec![0xff; n], &id);
        }
    }
}
