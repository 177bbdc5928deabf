//! A minimal DNS (RFC 1035, AAAA from RFC 3596) stub-resolver codec, pure: build an A or AAAA question, read the
//! addresses of the answer.
//!
//! frpc's `dnsServer` sends every name lookup of the client (server address, local services, STUN server, token
//! endpoint) to one DNS server instead of the system's resolver, the way Go's resolver does with a fixed server:
//! a recursive query (RD set) per record type, over UDP, again over TCP when the answer is truncated. Only what
//! that needs is here; the socket IO lives in the client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// DNS's port.
pub const PORT: u16 = 53;
/// The largest UDP answer read (RFC 1035 allows 512 without EDNS; servers stay under it or set TC).
pub const UDP_MAX: usize = 512;
const HEADER_LEN: usize = 12;
const CLASS_IN: u16 = 1;
const TYPE_CNAME: u16 = 5;
const MAX_NAME: usize = 253;
/// A bound on compression pointers followed while skipping one name (a loop is malformed).
const MAX_JUMPS: usize = 32;

/// The record type asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    /// An IPv4 address.
    A,
    /// An IPv6 address.
    Aaaa,
}

impl QType {
    fn code(self) -> u16 {
        match self {
            QType::A => 1,
            QType::Aaaa => 28,
        }
    }
}

/// Why a name cannot be asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty, too long, an empty or over-long label, or a character DNS names do not have.
    #[error("{0:?} is not a valid host name")]
    Invalid(String),
}

/// Why an answer gives no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Too short, lengths that do not add up, a compression loop.
    #[error("not a DNS answer ({0})")]
    Malformed(&'static str),
    /// A DNS message, but not the answer to this question.
    #[error("DNS answer for another question")]
    OtherQuestion,
    /// RCODE 3: the name does not exist.
    #[error("the name does not exist (NXDOMAIN)")]
    NoSuchName,
    /// RCODE 2.
    #[error("the DNS server failed to answer (SERVFAIL)")]
    ServerFailure,
    /// RCODE 5.
    #[error("the DNS server refused the query (REFUSED)")]
    Refused,
    /// Any other non-zero RCODE.
    #[error("the DNS server answered with error code {0}")]
    Code(u8),
}

/// What an answer says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    /// TC: the answer did not fit in the datagram; ask again over TCP.
    pub truncated: bool,
    /// The addresses of the record type asked for (after any CNAME chain the server followed), in answer order.
    pub addrs: Vec<IpAddr>,
}

/// A recursive query for `name`'s `qtype` records with the message id `id`.
pub fn query(id: u16, name: &str, qtype: QType) -> Result<Vec<u8>, NameError> {
    let invalid = || NameError::Invalid(name.to_string());
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(invalid());
    }
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00]); // RD
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(invalid());
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

/// Reads the answer to the question `query` built (same id, same question): the addresses of its type.
pub fn parse_answer(msg: &[u8], query: &[u8]) -> Result<Answer, DnsError> {
    if msg.len() < HEADER_LEN || query.len() < HEADER_LEN {
        return Err(DnsError::Malformed("shorter than a header"));
    }
    if msg[..2] != query[..2] || msg[2] & 0x80 == 0 {
        return Err(DnsError::OtherQuestion);
    }
    let truncated = msg[2] & 0x02 != 0;
    match msg[3] & 0x0f {
        0 => {}
        3 => return Err(DnsError::NoSuchName),
        2 => return Err(DnsError::ServerFailure),
        5 => return Err(DnsError::Refused),
        c => return Err(DnsError::Code(c)),
    }
    let count = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]) as usize;
    let (questions, answers) = (count(4), count(6));
    // The question must be ours (a late answer to an earlier query on the same port is not).
    let ours = &query[HEADER_LEN..];
    if questions != 1
        || msg.len() < HEADER_LEN + ours.len()
        || !msg[HEADER_LEN..HEADER_LEN + ours.len()].eq_ignore_ascii_case(ours)
    {
        if truncated && questions == 0 {
            return Ok(Answer { truncated, addrs: Vec::new() });
        }
        return Err(DnsError::OtherQuestion);
    }
    let want = u16::from_be_bytes([ours[ours.len() - 4], ours[ours.len() - 3]]);
    let mut at = HEADER_LEN + ours.len();
    let mut addrs = Vec::new();
    for _ in 0..answers {
        at = skip_name(msg, at)?;
        let fixed = msg.get(at..at + 10).ok_or(DnsError::Malformed("record cut short"))?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let len = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        let data = msg.get(at + 10..at + 10 + len).ok_or(DnsError::Malformed("record data cut short"))?;
        at += 10 + len;
        if class != CLASS_IN || rtype == TYPE_CNAME || rtype != want {
            continue;
        }
        match (rtype, len) {
            (1, 4) => addrs.push(IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3]))),
            (28, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(data);
                addrs.push(IpAddr::V6(Ipv6Addr::from(b)));
            }
            _ => return Err(DnsError::Malformed("address record of the wrong length")),
        }
    }
    Ok(Answer { truncated, addrs })
}

/// The offset after the (possibly compressed) name at `at`.
fn skip_name(msg: &[u8], mut at: usize) -> Result<usize, DnsError> {
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(at).ok_or(DnsError::Malformed("name cut short"))?;
        match len {
            0 => return Ok(end.unwrap_or(at + 1)),
            l if l & 0xc0 == 0xc0 => {
                let lo = *msg.get(at + 1).ok_or(DnsError::Malformed("name pointer cut short"))?;
                end.get_or_insert(at + 2);
                let target = (((l & 0x3f) as usize) << 8) | lo as usize;
                jumps += 1;
                if target >= at || jumps > MAX_JUMPS {
                    return Err(DnsError::Malformed("name pointer loop"));
                }
                at = target;
            }
            // A label: `at` only grows here, and only pointers (bounded) move it back.
            l if l & 0xc0 == 0 => at += 1 + l as usize,
            _ => return Err(DnsError::Malformed("unknown label type")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer to `q` with `rcode`, the flags' TC bit and the given records (name as a pointer to the question).
    fn answer(q: &[u8], rcode: u8, tc: bool, records: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = q.to_vec();
        m[2] = 0x81 | if tc { 0x02 } else { 0 };
        m[3] = 0x80 | rcode;
        m[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for (t, data) in records {
            m.extend_from_slice(&[0xc0, 12]);
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&CLASS_IN.to_be_bytes());
            m.extend_from_slice(&300u32.to_be_bytes());
            m.extend_from_slice(&(data.len() as u16).to_be_bytes());
            m.extend_from_slice(data);
        }
        m
    }

    #[test]
    fn a_query_has_the_wire_form() {
        let q = query(0xbeef, "frps.example.com.", QType::A).unwrap();
        let mut want = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x04frps\x07example\x03com\x00\x00\x01\x00\x01");
        assert_eq!(q, want);
        assert_eq!(&query(1, "h", QType::Aaaa).unwrap()[15..], &[0, 28, 0, 1]);
    }

    #[test]
    fn names_dns_cannot_carry_are_refused() {
        for bad in ["", ".", "a..b", "has space.com", &"x".repeat(64), &format!("{}.com", "a.".repeat(130))] {
            assert!(query(1, bad, QType::A).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn addresses_of_the_type_asked_are_read_after_a_cname() {
        let q = query(7, "www.example.com", QType::A).unwrap();
        let m = answer(&q, 0, false, &[(TYPE_CNAME, b"\x03web\xc0\x10"), (1, &[192, 0, 2, 1]), (1, &[192, 0, 2, 2])]);
        let a = parse_answer(&m, &q).unwrap();
        assert_eq!(a.addrs, vec![IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2])]);
        assert!(!a.truncated);
        let q6 = query(8, "www.example.com", QType::Aaaa).unwrap();
        let v6 = Ipv6Addr::LOCALHOST.octets();
        let m = answer(&q6, 0, false, &[(1, &[192, 0, 2, 1]), (28, &v6)]);
        assert_eq!(parse_answer(&m, &q6).unwrap().addrs, vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]);
    }

    #[test]
    fn error_codes_truncation_and_strangers_are_told_apart() {
        let q = query(9, "nope.example", QType::A).unwrap();
        assert_eq!(parse_answer(&answer(&q, 3, false, &[]), &q), Err(DnsError::NoSuchName));
        assert_eq!(parse_answer(&answer(&q, 2, false, &[]), &q), Err(DnsError::ServerFailure));
        assert_eq!(parse_answer(&answer(&q, 5, false, &[]), &q), Err(DnsError::Refused));
        assert_eq!(parse_answer(&answer(&q, 4, false, &[]), &q), Err(DnsError::Code(4)));
        assert!(parse_answer(&answer(&q, 0, true, &[]), &q).unwrap().truncated);
        // another id, another question, a query echoed back
        let other = query(10, "nope.example", QType::A).unwrap();
        assert_eq!(parse_answer(&answer(&other, 0, false, &[]), &q), Err(DnsError::OtherQuestion));
        let other = query(9, "else.example", QType::A).unwrap();
        assert_eq!(parse_answer(&answer(&other, 0, false, &[]), &q), Err(DnsError::OtherQuestion));
        assert_eq!(parse_answer(&q, &q), Err(DnsError::OtherQuestion));
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        let q = query(11, "example.com", QType::A).unwrap();
        let good = answer(&q, 0, false, &[(1, &[192, 0, 2, 1])]);
        for cut in 0..good.len() {
            assert!(parse_answer(&good[..cut], &q).is_err(), "cut at {cut}");
        }
        // a pointer to itself, a forward pointer, a wrong-length A record
        let mut looped = answer(&q, 0, false, &[(1, &[192, 0, 2, 1])]);
        let at = q.len();
        looped[at..at + 2].copy_from_slice(&[0xc0, at as u8]);
        assert!(matches!(parse_answer(&looped, &q), Err(DnsError::Malformed(_))));
        let mut forward = good.clone();
        forward[at..at + 2].copy_from_slice(&[0xc0, 0xff]);
        assert!(matches!(parse_answer(&forward, &q), Err(DnsError::Malformed(_))));
        let short = answer(&q, 0, false, &[(1, &[192, 0, 2])]);
        assert!(matches!(parse_answer(&short, &q), Err(DnsError::Malformed(_))));
    }
}
