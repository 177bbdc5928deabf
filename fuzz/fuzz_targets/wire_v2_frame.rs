//! `wire_v2::decode_frame` and `decode_message` over arbitrary bytes: never panic; an accepted frame is within the
//! 64 KiB limit, and a message it carries re-encodes to a frame that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portway_proto::wire_v2::{self, frame_type, FrameError, HEADER_LEN, MAX_PAYLOAD};

fuzz_target!(|data: &[u8]| {
    match wire_v2::decode_frame(data) {
        Ok(Some((kind, payload, used))) => {
            assert!(payload.len() <= MAX_PAYLOAD && used == HEADER_LEN + payload.len() && used <= data.len());
            if kind == frame_type::MESSAGE {
                if let Ok(m) = wire_v2::decode_message(payload) {
                    let enc = wire_v2::encode_message(&m).expect("a decoded message fits a frame");
                    let (k, p, n) = wire_v2::decode_frame(&enc).expect("re-encoded frame").expect("whole");
                    assert_eq!((k, n), (frame_type::MESSAGE, enc.len()));
                    assert_eq!(wire_v2::decode_message(p).expect("re-encoded message"), m);
                }
            }
        }
        Ok(None) => assert!(data.len() < HEADER_LEN + MAX_PAYLOAD),
        Err(FrameError::Oversized(n)) => assert!(n > MAX_PAYLOAD as u64),
        Err(FrameError::Flags(f)) => assert_ne!(f, 0),
        Err(e) => panic!("decode_frame reported a message-level error {e}"),
    }
});
