//! Which wire protocol a logical connection speaks, and one read/write entry point for both.
//!
//! v1 and v2 carry the same messages; only the framing differs. Every logical connection (control, work or
//! visitor; each yamux stream) decides on its own: a v2 peer opens it with [`crate::wire_v2::MAGIC`].

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::codec::{self, CodecError};
use crate::msg::Message;
use crate::transport::{BoxedIo, Prefixed};
use crate::wire_v2;

/// A connection's wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wire {
    /// `type u8 | i64 length | JSON`, AES-128-CFB control channel.
    #[default]
    V1,
    /// Magic, `u16 type | u16 flags | u32 length` frames, AEAD control channel.
    V2,
}

impl Wire {
    /// `"v1"` or `"v2"`, as frp's `transport.wireProtocol` and its dashboard's `wireProtocol` say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Wire::V1 => "v1",
            Wire::V2 => "v2",
        }
    }

    /// Reads one message in this framing. Not cancel safe.
    pub async fn read_msg<R: AsyncRead + Unpin + ?Sized>(self, r: &mut R) -> Result<Message, CodecError> {
        match self {
            Wire::V1 => codec::read_msg(r).await,
            Wire::V2 => wire_v2::read_message(r).await,
        }
    }

    /// Writes one message in this framing and flushes.
    pub async fn write_msg<W: AsyncWrite + Unpin + ?Sized>(self, w: &mut W, m: &Message) -> Result<(), CodecError> {
        match self {
            Wire::V1 => codec::write_msg(w, m).await,
            Wire::V2 => wire_v2::write_message(w, m).await,
        }
    }

    /// What a client writes first on a new logical connection: the magic for v2, nothing for v1.
    pub async fn open<W: AsyncWrite + Unpin + ?Sized>(self, w: &mut W) -> std::io::Result<()> {
        if self == Wire::V2 {
            w.write_all(&wire_v2::MAGIC).await?;
        }
        Ok(())
    }

    /// [`Wire::open`] and then [`Wire::write_msg`] of the connection's first message, in one write (for v2 the
    /// magic and the frame leave together: one segment or record, not three).
    pub async fn open_with<W: AsyncWrite + Unpin + ?Sized>(self, w: &mut W, m: &Message) -> Result<(), CodecError> {
        match self {
            Wire::V1 => codec::write_msg(w, m).await,
            Wire::V2 => {
                let mut first = wire_v2::MAGIC.to_vec();
                first.extend(wire_v2::encode_message(m)?);
                w.write_all(&first).await?;
                w.flush().await?;
                Ok(())
            }
        }
    }
}

/// Server side: reads the first 7 bytes of a logical connection. The v2 magic selects [`Wire::V2`] (and is
/// consumed); anything else is put back and the connection continues as v1 (a v1 message is at least 9 bytes,
/// so reading 7 cannot stall a v1 peer). A connection that closes within 7 bytes is an EOF error.
pub async fn sniff(mut io: BoxedIo) -> std::io::Result<(Wire, BoxedIo)> {
    let mut buf = [0u8; wire_v2::MAGIC.len()];
    let mut n = 0;
    while n < buf.len() {
        let k = io.read(&mut buf[n..]).await?;
        if k == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        n += k;
        // Stop early on a first byte that cannot start the magic (every v1 type byte is one), so that
        // nothing about v1 waits on v2.
        if buf[..n] != wire_v2::MAGIC[..n] {
            return Ok((Wire::V1, Box::new(Prefixed::new(buf[..n].to_vec(), io))));
        }
    }
    Ok((Wire::V2, io))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sniff_selects_v2_and_replays_v1() {
        let (mut a, b) = tokio::io::duplex(256);
        let m = Message::Ping(Default::default());
        let mut v1 = codec::encode_to_vec(&m);
        a.write_all(&v1).await.unwrap();
        let (w, mut io) = sniff(Box::new(b)).await.unwrap();
        assert_eq!(w, Wire::V1);
        assert_eq!(Wire::V1.read_msg(&mut io).await.unwrap(), m);

        let (mut a, b) = tokio::io::duplex(256);
        v1 = wire_v2::MAGIC.to_vec();
        v1.extend(wire_v2::encode_message(&m).unwrap());
        a.write_all(&v1).await.unwrap();
        let (w, mut io) = sniff(Box::new(b)).await.unwrap();
        assert_eq!(w, Wire::V2);
        assert_eq!(Wire::V2.read_msg(&mut io).await.unwrap(), m);

        // A truncated magic, then EOF: an error, not a hang and not v1.
        let (mut a, b) = tokio::io::duplex(256);
        a.write_all(&wire_v2::MAGIC[..5]).await.unwrap();
        drop(a);
        assert!(sniff(Box::new(b)).await.is_err());
    }
}
