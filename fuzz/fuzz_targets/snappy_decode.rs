//! Snappy framing (`useCompression`): `Decoder` over arbitrary bytes never panics and never yields more than
//! 64 KiB per chunk; `Encoder` output of the same bytes decodes back to them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portway_proto::compress::{Decoder, Encoder, MAX_CHUNK};

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::default();
    let mut pos = 0;
    loop {
        let mut out = Vec::new();
        match d.decode_chunk(&data[pos..], &mut out) {
            Ok(0) => break,
            Ok(n) => {
                assert!(n >= 4 && n <= data.len() - pos, "consumed {n} of {}", data.len() - pos);
                assert!(out.len() <= MAX_CHUNK, "chunk yielded {} bytes", out.len());
                pos += n;
            }
            Err(_) => break,
        }
    }

    let mut e = Encoder::default();
    let mut wire = Vec::new();
    for c in data.chunks(MAX_CHUNK) {
        e.encode_chunk(c, &mut wire);
    }
    let mut d = Decoder::default();
    let (mut back, mut pos) = (Vec::new(), 0);
    while pos < wire.len() {
        let before = back.len();
        let n = d.decode_chunk(&wire[pos..], &mut back).expect("our own chunks decode");
        assert!(n > 0 && back.len() - before <= MAX_CHUNK);
        pos += n;
    }
    assert_eq!(back, data);
});
