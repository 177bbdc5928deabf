//! The v2 control channel's AEAD reader (`aead::Opener`) over arbitrary bytes cut at arbitrary points: never
//! panics, never allocates for a length over the record limit, and agrees with reading all at once; sealed
//! data, cut differently, opens to the same bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portway_proto::aead::{AeadError, Opener, Sealer, MAX_RECORD_PLAINTEXT};
use portway_proto::wire_v2::{derive_keys, Algorithm, Keys};

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| derive_keys(b"t", &[5; 32], Algorithm::Aes256Gcm))
}

/// Feeds `wire` in pieces of the given sizes; returns the plaintext and the error that stopped it, if any.
fn open(alg: Algorithm, wire: &[u8], sizes: &[u8]) -> (Vec<u8>, Option<AeadError>) {
    let mut o = Opener::new(alg, &keys().c2s);
    let (mut buf, mut plain, mut pos, mut i) = (Vec::new(), Vec::new(), 0, 0);
    while pos < wire.len() {
        let s = sizes.get(i % sizes.len().max(1)).map_or(wire.len(), |&s| s as usize + 1);
        let end = (pos + s).min(wire.len());
        buf.extend_from_slice(&wire[pos..end]);
        pos = end;
        i += 1;
        loop {
            match o.open(&buf) {
                Ok(Some((p, used))) => {
                    assert!(p.len() <= MAX_RECORD_PLAINTEXT);
                    plain.extend_from_slice(&p);
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(e) => return (plain, Some(e)),
            }
        }
    }
    (plain, None)
}

fuzz_target!(|input: (bool, Vec<u8>, Vec<u8>, Vec<u8>)| {
    let (xchacha, data, write_sizes, read_sizes) = input;
    let alg = if xchacha { Algorithm::XChaCha20Poly1305 } else { Algorithm::Aes256Gcm };
    assert_eq!(open(alg, &data, &read_sizes), open(alg, &data, &[]));

    let mut s = Sealer::new(alg, &keys().c2s, vec![9; alg.nonce_len()]);
    let mut wire = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < data.len() {
        let n = write_sizes.get(i % write_sizes.len().max(1)).map_or(data.len(), |&s| s as usize);
        let end = (pos + n).min(data.len());
        s.seal_into(&data[pos..end], &mut wire).expect("a chunk under the limit seals");
        pos = end;
        i += 1;
    }
    assert_eq!(open(alg, &wire, &read_sizes), (data, None));
});
