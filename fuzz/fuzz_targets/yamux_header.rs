//! yamux headers and frame splitting over arbitrary bytes: never panics; a header that decodes re-encodes to
//! the same 12 bytes; `split_frames` accounts for every byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portway_proto::yamux::{split_frames, FrameType, Header, HeaderError, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    match Header::decode(data) {
        Ok(Some(h)) => assert_eq!(h.encode(), data[..HEADER_LEN]),
        Ok(None) => assert!(data.len() < HEADER_LEN),
        Err(HeaderError::Version(v)) => assert!(data.len() >= HEADER_LEN && v == data[0] && v != 0),
        Err(HeaderError::Type(t)) => assert!(data.len() >= HEADER_LEN && data[0] == 0 && t == data[1] && t > 3),
    }

    if let Ok((frames, left)) = split_frames(data) {
        let mut off = 0;
        for (h, payload) in &frames {
            assert_eq!(h.encode(), data[off..off + HEADER_LEN]);
            let body = if h.kind == FrameType::Data { h.length as usize } else { 0 };
            assert_eq!(payload.len(), body);
            assert_eq!(*payload, &data[off + HEADER_LEN..off + HEADER_LEN + body]);
            off += HEADER_LEN + body;
        }
        assert_eq!(off + left, data.len());
        // What is left is not a whole frame.
        let rest = &data[off..];
        if let Ok(Some(h)) = Header::decode(rest) {
            assert_eq!(h.kind, FrameType::Data);
            assert!(rest.len() < HEADER_LEN + h.length as usize);
        } else {
            assert!(rest.len() < HEADER_LEN);
        }
    }
});
