//! `codec::decode` over arbitrary bytes: never panics; a frame it accepts re-encodes to a frame that decodes
//! to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portway_proto::codec::{self, CodecError, HEADER_LEN, MAX_BODY};

fuzz_target!(|data: &[u8]| {
    match codec::decode(data) {
        Ok(Some((msg, used))) => {
            assert!((HEADER_LEN..=HEADER_LEN + MAX_BODY).contains(&used) && used <= data.len());
            assert_eq!(data[0], msg.type_byte());
            let enc = codec::encode_to_vec(&msg);
            let (again, n) = codec::decode(&enc)
                .unwrap_or_else(|e| panic!("re-encoded {msg:?} does not decode: {e}"))
                .expect("a whole frame");
            assert_eq!(n, enc.len());
            assert_eq!(again, msg);
            // Encoding is a fixed point after one round.
            assert_eq!(codec::encode_to_vec(&again), enc);
        }
        Ok(None) => {
            // Only a prefix of a possible frame: short header, or a body not all there yet.
            assert!(data.len() < HEADER_LEN + MAX_BODY);
        }
        Err(CodecError::BadLength(len)) => assert!(!(0..=MAX_BODY as i64).contains(&len)),
        Err(CodecError::Msg(_)) => {}
        Err(CodecError::Io(e)) => panic!("pure decode reported I/O error {e}"),
        Err(CodecError::Frame(e)) => panic!("v1 decode reported a v2 frame error {e}"),
    }
});
