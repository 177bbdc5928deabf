//! yamux as frp uses it (`fatedier/yamux`, frp's overrides): header codec (pure, for tests and fuzzing) and the
//! constants. The session itself is in [`crate::mux`].

/// Length of a yamux frame header.
pub const HEADER_LEN: usize = 12;
/// frp's `MaxStreamWindowSize`.
pub const FRP_MAX_STREAM_WINDOW: u32 = 6 * 1024 * 1024;
/// yamux's initial window, which both sides assume.
pub const INITIAL_WINDOW: u32 = 256 * 1024;

/// Frame type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum FrameType {
    Data,
    WindowUpdate,
    Ping,
    GoAway,
}

/// Flag bits.
pub mod flags {
    #![allow(missing_docs)]
    pub const SYN: u16 = 1;
    pub const ACK: u16 = 2;
    pub const FIN: u16 = 4;
    pub const RST: u16 = 8;
}

/// A decoded yamux header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Frame type.
    pub kind: FrameType,
    /// SYN/ACK/FIN/RST bits.
    pub flags: u16,
    /// Stream id (0 for session frames).
    pub stream_id: u32,
    /// Data length, window delta, ping opaque value or GoAway code.
    pub length: u32,
}

/// Why a header is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    /// Only version 0 exists.
    #[error("yamux version {0} is not 0: the peer is not speaking yamux (check transport.tcpMux on both sides)")]
    Version(u8),
    /// Types above 3 are undefined.
    #[error("unknown yamux frame type {0}")]
    Type(u8),
}

impl Header {
    /// Decodes the first 12 bytes of `b`; `Ok(None)` if there are fewer.
    pub fn decode(b: &[u8]) -> Result<Option<Header>, HeaderError> {
        if b.len() < HEADER_LEN {
            return Ok(None);
        }
        if b[0] != 0 {
            return Err(HeaderError::Version(b[0]));
        }
        let kind = match b[1] {
            0 => FrameType::Data,
            1 => FrameType::WindowUpdate,
            2 => FrameType::Ping,
            3 => FrameType::GoAway,
            t => return Err(HeaderError::Type(t)),
        };
        Ok(Some(Header {
            kind,
            flags: u16::from_be_bytes([b[2], b[3]]),
            stream_id: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            length: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }))
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[1] = match self.kind {
            FrameType::Data => 0,
            FrameType::WindowUpdate => 1,
            FrameType::Ping => 2,
            FrameType::GoAway => 3,
        };
        b[2..4].copy_from_slice(&self.flags.to_be_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        b[8..12].copy_from_slice(&self.length.to_be_bytes());
        b
    }
}

/// Frames found by [`split_frames`]: each header with its payload.
pub type Frames<'a> = Vec<(Header, &'a [u8])>;

/// Splits a byte stream into yamux frames, returning them and the length of the incomplete tail.
pub fn split_frames(mut b: &[u8]) -> Result<(Frames<'_>, usize), HeaderError> {
    let mut out = Vec::new();
    while let Some(h) = Header::decode(b)? {
        let body = if h.kind == FrameType::Data { h.length as usize } else { 0 };
        if b.len() < HEADER_LEN + body {
            break;
        }
        out.push((h, &b[HEADER_LEN..HEADER_LEN + body]));
        b = &b[HEADER_LEN + body..];
    }
    Ok((out, b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_update_syn_round_trip() {
        let h = Header { kind: FrameType::WindowUpdate, flags: flags::SYN, stream_id: 1, length: 6_029_312 };
        let b = h.encode();
        assert_eq!(b, [0, 1, 0, 1, 0, 0, 0, 1, 0, 0x5c, 0, 0]);
        assert_eq!(Header::decode(&b), Ok(Some(h)));
        assert_eq!(Header::decode(&b[..11]), Ok(None));
        assert_eq!(Header::decode(&[1; 12]), Err(HeaderError::Version(1)));
        assert_eq!(Header::decode(&[0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Err(HeaderError::Type(9)));
    }
}
