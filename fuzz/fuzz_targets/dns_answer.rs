//! `dnsServer`'s untrusted input: a DNS answer over arbitrary bytes never panics, and an answer that parses names
//! only addresses of the type asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portway_proto::dns::{parse_answer, query, QType};

fuzz_target!(|data: &[u8]| {
    // The question the answer must match: the id of the data, so the parser goes past the header.
    let id = data.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])).unwrap_or(0);
    for qtype in [QType::A, QType::Aaaa] {
        let q = query(id, "frps.example.com", qtype).expect("a valid name");
        if let Ok(a) = parse_answer(data, &q) {
            assert!(a.addrs.iter().all(|ip| ip.is_ipv4() == (qtype == QType::A)));
        }
    }
});
