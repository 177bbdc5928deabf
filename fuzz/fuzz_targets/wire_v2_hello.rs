//! The v2 hello parsers and the negotiation over arbitrary payloads: never panic; whatever the server selects
//! is accepted by the client that sent the hello, and the keys derive for it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portway_proto::wire_v2::{self, ClientHello, ServerHello};

fuzz_target!(|input: (&[u8], &[u8])| {
    let (ch_raw, sh_raw) = input;
    if let Ok(ch) = ClientHello::parse(ch_raw) {
        if let Ok((sh, alg)) = wire_v2::server_select(&ch, [3; 32]) {
            assert_eq!(wire_v2::client_check(&ch, &sh), Ok(alg));
            let sh_bytes = sh.to_json();
            let back = ServerHello::parse(&sh_bytes).expect("the server's own hello parses");
            assert_eq!(back, sh);
            let _ = wire_v2::derive_keys(b"t", &wire_v2::transcript_hash(ch_raw, &sh_bytes), alg);
        }
        if let Ok(sh) = ServerHello::parse(sh_raw) {
            let _ = wire_v2::client_check(&ch, &sh);
        }
    }
});
