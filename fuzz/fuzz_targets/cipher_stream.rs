//! frp's AES-128-CFB stream: `Decryptor` over arbitrary wire bytes cut at arbitrary points never panics and
//! agrees with one-shot decryption; `Encryptor` → `Decryptor` of arbitrary data, cut differently on each side,
//! gives the data back.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portway_proto::crypto::{Decryptor, Encryptor, Key, IV_LEN};

fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| Key::derive(b"t"))
}

/// Cuts `len` bytes into pieces whose sizes come from `sizes` (cycled; 0 means an empty piece).
fn pieces(len: usize, sizes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while start < len {
        let s = if sizes.is_empty() { len } else { sizes[i % sizes.len()] as usize };
        let end = (start + s).min(len);
        out.push(start..end);
        start = end;
        i += 1;
        if i > 4 * len + 8 {
            out.push(start..len); // only empty pieces: finish in one
            break;
        }
    }
    out
}

fn decrypt(wire: &[u8], sizes: &[u8]) -> Vec<u8> {
    let mut d = Decryptor::new(key());
    let mut plain = Vec::new();
    for r in pieces(wire.len(), sizes) {
        let mut buf = wire[r].to_vec();
        let got = d.apply(&mut buf);
        assert!(got.start <= got.end && got.end == buf.len());
        plain.extend_from_slice(&buf[got]);
    }
    plain
}

fuzz_target!(|input: (Vec<u8>, [u8; IV_LEN], Vec<u8>, Vec<u8>)| {
    let (data, iv, write_sizes, read_sizes) = input;

    // Arbitrary wire bytes: never panics, the IV is skipped, and the cutting does not matter.
    let plain = decrypt(&data, &read_sizes);
    assert_eq!(plain.len(), data.len().saturating_sub(IV_LEN));
    assert_eq!(plain, decrypt(&data, &[]));

    // Round trip.
    let mut e = Encryptor::new(key(), iv);
    let mut wire = e.iv().to_vec();
    for r in pieces(data.len(), &write_sizes) {
        let mut buf = data[r].to_vec();
        e.apply(&mut buf);
        wire.extend_from_slice(&buf);
    }
    assert_eq!(wire.len(), IV_LEN + data.len());
    assert_eq!(decrypt(&wire, &read_sizes), data);
});
