//! Which wire protocol a logical connection speaks, and one read/write entry point for both.
//!
//! v1 and v2 carry the same messages; only the framing differs. Every logical connection (control, work or
//! visitor; each yamux stream) decides on its own: a v2 peer opens it with [`crate::wire_v2::MAGIC`].

use bytes::{Buf, BufMut, BytesMut};
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

/// Reads messages through a buffer of its own: one read takes in whatever has arrived, so a message that arrived
/// whole (or several queued ones) costs one read call instead of three (type, length, body). Cancel safe: what a
/// cancelled read took in stays in the buffer for the next call, so it can sit in a `select!` loop.
///
/// It may read past the last message it returns: on a connection whose bytes after that message belong to
/// something else (a work connection after StartWorkConn), [`MsgReader::attach`] puts them back in front.
#[derive(Debug, Default)]
pub struct MsgReader {
    buf: BytesMut,
    /// Read at most this much per call while no message is pending (a work connection's first read stays small).
    chunk: usize,
}

/// What [`MsgReader`] asks for per read when it was not given a size: a whole control message in the usual case.
const READ_CHUNK: usize = 4096;

impl MsgReader {
    /// A reader that asks for up to `chunk` bytes per read (at least what the frame being read still needs).
    pub fn with_chunk(chunk: usize) -> Self {
        MsgReader { buf: BytesMut::new(), chunk: chunk.max(16) }
    }

    /// Reads one message in `wire`'s framing from `r`. An EOF between messages is an `UnexpectedEof` error, as
    /// [`Wire::read_msg`]'s.
    pub async fn read_msg<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        wire: Wire,
        r: &mut R,
    ) -> Result<Message, CodecError> {
        loop {
            if let Some(m) = self.decode(wire)? {
                return Ok(m);
            }
            self.fill(r).await?;
        }
    }

    /// One read into the buffer; an EOF is an `UnexpectedEof` error.
    async fn fill<R: AsyncRead + Unpin + ?Sized>(&mut self, r: &mut R) -> std::io::Result<()> {
        let chunk = if self.chunk == 0 { READ_CHUNK } else { self.chunk };
        if self.buf.capacity() - self.buf.len() < chunk / 4 {
            self.buf.reserve(chunk);
        }
        // Never more than `chunk` at once, whatever the buffer's capacity: the bytes after a work connection's
        // message are put back in front of it, and should stay few.
        let want = (self.buf.capacity() - self.buf.len()).min(chunk);
        let mut limited = (&mut self.buf).limit(want);
        if r.read_buf(&mut limited).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    fn decode(&mut self, wire: Wire) -> Result<Option<Message>, CodecError> {
        match wire {
            Wire::V1 => match codec::decode(&self.buf)? {
                Some((m, used)) => {
                    self.buf.advance(used);
                    Ok(Some(m))
                }
                None => Ok(None),
            },
            Wire::V2 => {
                let Some((kind, payload, used)) = wire_v2::decode_frame(&self.buf)? else {
                    return Ok(None);
                };
                if kind != wire_v2::frame_type::MESSAGE {
                    return Err(
                        wire_v2::FrameError::UnexpectedType { got: kind, want: wire_v2::frame_type::MESSAGE }.into()
                    );
                }
                let m = wire_v2::decode_message(payload)?;
                self.buf.advance(used);
                Ok(Some(m))
            }
        }
    }

    /// `io` with the bytes read past the last message put back in front (`io` itself when there are none, so a
    /// bare TCP stream stays one: the relay can splice it).
    pub fn attach(self, io: BoxedIo) -> BoxedIo {
        if self.buf.is_empty() {
            io
        } else {
            Box::new(Prefixed::new(self.buf.to_vec(), io))
        }
    }
}

/// Server side, buffered: [`sniff`] that reads into a [`MsgReader`] (usually the whole first message in one read).
/// For v2 the magic is consumed from the reader's buffer; the reader then holds what followed it.
pub async fn sniff_into<R: AsyncRead + Unpin + ?Sized>(r: &mut R, reader: &mut MsgReader) -> std::io::Result<Wire> {
    let magic = &wire_v2::MAGIC;
    loop {
        let n = reader.buf.len().min(magic.len());
        // Stop at a first byte that cannot start the magic (every v1 type byte is one): nothing about v1 waits on v2.
        if reader.buf[..n] != magic[..n] {
            return Ok(Wire::V1);
        }
        if n == magic.len() {
            reader.buf.advance(n);
            return Ok(Wire::V2);
        }
        reader.fill(r).await?;
    }
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

    /// Counts the reads that reach the stream under it.
    struct Counted<S> {
        inner: S,
        reads: usize,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let before = buf.filled().len();
            let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
            if buf.filled().len() > before {
                self.reads += 1;
            }
            r
        }
    }

    fn start_work_conn() -> Message {
        Message::StartWorkConn(crate::msg::StartWorkConn {
            proxy_name: "web".into(),
            src_addr: "127.0.0.1".into(),
            src_port: 40000,
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn msg_reader_takes_a_whole_message_in_one_read_and_gives_back_what_followed() {
        for wire in [Wire::V1, Wire::V2] {
            let (mut a, b) = tokio::io::duplex(4096);
            let (m1, m2) = (Message::ReqWorkConn(Default::default()), start_work_conn());
            let mut bytes = Vec::new();
            for m in [&m1, &m2] {
                bytes.extend(match wire {
                    Wire::V1 => codec::encode_to_vec(m),
                    Wire::V2 => wire_v2::encode_message(m).unwrap(),
                });
            }
            bytes.extend_from_slice(b"visitor bytes");
            a.write_all(&bytes).await.unwrap();
            let mut io = Counted { inner: b, reads: 0 };
            let mut reader = MsgReader::with_chunk(1024);
            assert_eq!(reader.read_msg(wire, &mut io).await.unwrap(), m1);
            assert_eq!(reader.read_msg(wire, &mut io).await.unwrap(), m2);
            assert_eq!(io.reads, 1, "{wire:?}: both messages came in one read");
            // What followed the messages is read first from the attached stream, then the stream itself.
            let mut rest = reader.attach(Box::new(io.inner));
            a.write_all(b", then more").await.unwrap();
            drop(a);
            let mut got = Vec::new();
            rest.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"visitor bytes, then more");
        }
    }

    #[tokio::test]
    async fn msg_reader_keeps_a_half_read_message_across_a_cancelled_read() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let m = start_work_conn();
        let bytes = codec::encode_to_vec(&m);
        let mut reader = MsgReader::default();
        a.write_all(&bytes[..12]).await.unwrap();
        // The read takes in the first 12 bytes, then waits for the rest: cancelled there.
        let cancelled = tokio::time::timeout(std::time::Duration::from_millis(50), reader.read_msg(Wire::V1, &mut b));
        assert!(cancelled.await.is_err());
        a.write_all(&bytes[12..]).await.unwrap();
        assert_eq!(reader.read_msg(Wire::V1, &mut b).await.unwrap(), m);
        // EOF between messages: the error read_msg reports as a closed connection.
        drop(a);
        assert!(reader.read_msg(Wire::V1, &mut b).await.unwrap_err().is_eof());
    }

    #[tokio::test]
    async fn sniff_into_selects_the_framing_and_refuses_a_truncated_magic() {
        let m = start_work_conn();
        let (mut a, mut b) = tokio::io::duplex(4096);
        let mut v2 = wire_v2::MAGIC.to_vec();
        v2.extend(wire_v2::encode_message(&m).unwrap());
        a.write_all(&v2).await.unwrap();
        let mut reader = MsgReader::default();
        assert_eq!(sniff_into(&mut b, &mut reader).await.unwrap(), Wire::V2);
        assert_eq!(reader.read_msg(Wire::V2, &mut b).await.unwrap(), m);

        let (mut a, mut b) = tokio::io::duplex(4096);
        a.write_all(&codec::encode_to_vec(&m)).await.unwrap();
        let mut reader = MsgReader::default();
        assert_eq!(sniff_into(&mut b, &mut reader).await.unwrap(), Wire::V1);
        assert_eq!(reader.read_msg(Wire::V1, &mut b).await.unwrap(), m);

        let (mut a, mut b) = tokio::io::duplex(256);
        a.write_all(&wire_v2::MAGIC[..5]).await.unwrap();
        drop(a);
        let e = sniff_into(&mut b, &mut MsgReader::default()).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
