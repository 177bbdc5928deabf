//! xtcp's untrusted UDP input: a STUN answer and a punch packet over arbitrary bytes never panic; an answer
//! that parses names only addresses it could have carried.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portway_proto::crypto::Key;
use portway_proto::{nathole, stun};

fuzz_target!(|data: &[u8]| {
    let id: stun::TransactionId = data.get(8..20).and_then(|b| b.try_into().ok()).unwrap_or([0; 12]);
    if let Ok(r) = stun::parse_binding_response(data, &id) {
        assert!(data.len() >= 20);
        let _ = (r.mapped, r.other);
    }
    let _ = nathole::decode_sid_packet(data, &Key::derive(b"sk"));
});
