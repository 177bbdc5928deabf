//! frp's `useCompression`: the snappy *framing* format (as golang/snappy writes it), one chunk per write.
//!
//! [`Encoder`] and [`Decoder`] are pure; [`CompressStream`] wraps a byte stream.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest uncompressed payload of one chunk (framing format spec).
pub const MAX_CHUNK: usize = 65_536;
const STREAM_ID: &[u8] = b"\xff\x06\x00\x00sNaPpY";
/// Largest chunk body accepted: a compressed 64 KiB block plus its CRC.
const MAX_BODY: usize = 4 + 76_490;

/// Why a compressed stream could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    /// Bad chunk type, length, checksum or snappy block.
    #[error("corrupt snappy stream from the peer ({0}); check that both sides agree on transport.useCompression")]
    Corrupt(&'static str),
}

impl From<CompressError> for io::Error {
    fn from(e: CompressError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// Writes framing-format chunks.
pub struct Encoder {
    started: bool,
    raw: snap::raw::Encoder,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder { started: false, raw: snap::raw::Encoder::new() }
    }
}

impl Encoder {
    /// Appends one chunk (and, the first time, the stream identifier) holding `data` (≤ [`MAX_CHUNK`]) to `out`.
    pub fn encode_chunk(&mut self, data: &[u8], out: &mut Vec<u8>) {
        debug_assert!(data.len() <= MAX_CHUNK);
        if !self.started {
            out.extend_from_slice(STREAM_ID);
            self.started = true;
        }
        let crc = masked_crc(data);
        let hdr = out.len();
        out.extend_from_slice(&[0u8; 8]);
        out.resize(hdr + 8 + snap::raw::max_compress_len(data.len()), 0);
        let n = match self.raw.compress(data, &mut out[hdr + 8..]) {
            Ok(n) if n < data.len() - data.len() / 8 => n,
            _ => {
                // Not worth it (or failed): an uncompressed chunk, as golang/snappy does.
                out.truncate(hdr + 8);
                out.extend_from_slice(data);
                out[hdr] = 0x01;
                data.len()
            }
        };
        out.truncate(hdr + 8 + n);
        let len = (n + 4) as u32;
        out[hdr + 1..hdr + 4].copy_from_slice(&len.to_le_bytes()[..3]);
        out[hdr + 4..hdr + 8].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Reads framing-format chunks.
pub struct Decoder {
    raw: snap::raw::Decoder,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { raw: snap::raw::Decoder::new() }
    }
}

impl Decoder {
    /// Decodes the first whole chunk of `input`, appending its payload to `out`. Returns the bytes consumed, or 0
    /// when `input` does not yet hold a whole chunk.
    pub fn decode_chunk(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, CompressError> {
        if input.len() < 4 {
            return Ok(0);
        }
        let kind = input[0];
        let len = u32::from_le_bytes([input[1], input[2], input[3], 0]) as usize;
        if len > MAX_BODY {
            return Err(CompressError::Corrupt("chunk too long"));
        }
        if input.len() < 4 + len {
            return Ok(0);
        }
        let body = &input[4..4 + len];
        match kind {
            0x00 | 0x01 => {
                if len < 4 {
                    return Err(CompressError::Corrupt("chunk shorter than its checksum"));
                }
                let crc = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
                let start = out.len();
                if kind == 0x00 {
                    let n = snap::raw::decompress_len(&body[4..]).map_err(|_| CompressError::Corrupt("bad block"))?;
                    if n > MAX_CHUNK {
                        return Err(CompressError::Corrupt("block over 64 KiB"));
                    }
                    out.resize(start + n, 0);
                    if self.raw.decompress(&body[4..], &mut out[start..]).is_err() {
                        out.truncate(start);
                        return Err(CompressError::Corrupt("bad block"));
                    }
                } else {
                    if len - 4 > MAX_CHUNK {
                        return Err(CompressError::Corrupt("block over 64 KiB"));
                    }
                    out.extend_from_slice(&body[4..]);
                }
                if masked_crc(&out[start..]) != crc {
                    out.truncate(start);
                    return Err(CompressError::Corrupt("checksum mismatch"));
                }
            }
            0xff if body != b"sNaPpY" => return Err(CompressError::Corrupt("bad stream identifier")),
            0xff => {}
            0x02..=0x7f => return Err(CompressError::Corrupt("reserved unskippable chunk")),
            _ => {} // padding and skippable chunks
        }
        Ok(4 + len)
    }
}

/// A byte stream compressed both ways with snappy framing.
pub struct CompressStream<S> {
    inner: S,
    enc: Encoder,
    dec: Decoder,
    wbuf: Vec<u8>,
    wpos: usize,
    /// Wire bytes read but not yet decoded.
    raw: Vec<u8>,
    /// Decoded bytes not yet handed out.
    plain: Vec<u8>,
    ppos: usize,
    eof: bool,
}

impl<S> CompressStream<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        CompressStream {
            inner,
            enc: Encoder::default(),
            dec: Decoder::default(),
            wbuf: Vec::new(),
            wpos: 0,
            raw: Vec::new(),
            plain: Vec::new(),
            ppos: 0,
            eof: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> CompressStream<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wbuf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.wbuf[self.wpos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wpos += n;
        }
        self.wbuf.clear();
        self.wpos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CompressStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ppos < this.plain.len() {
                let n = (this.plain.len() - this.ppos).min(buf.remaining());
                buf.put_slice(&this.plain[this.ppos..this.ppos + n]);
                this.ppos += n;
                return Poll::Ready(Ok(()));
            }
            this.plain.clear();
            this.ppos = 0;
            let used = this.dec.decode_chunk(&this.raw, &mut this.plain)?;
            if used > 0 {
                this.raw.drain(..used);
                continue;
            }
            if this.eof {
                if this.raw.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated snappy chunk")));
            }
            let mut tmp = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut tmp);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                this.eof = true;
            }
            this.raw.extend_from_slice(rb.filled());
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CompressStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        let n = buf.len().min(MAX_CHUNK);
        this.enc.encode_chunk(&buf[..n], &mut this.wbuf);
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn our_chunks_decode_with_the_reference_reader() {
        let data: Vec<u8> = b"hello portway ".iter().cycle().take(200_000).copied().collect();
        let mut enc = Encoder::default();
        let mut wire = Vec::new();
        for c in data.chunks(MAX_CHUNK) {
            enc.encode_chunk(c, &mut wire);
        }
        assert!(wire.len() < data.len() / 4, "repetitive data should compress");
        let mut back = Vec::new();
        snap::read::FrameDecoder::new(&wire[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn reference_writer_output_decodes_and_corruption_is_caught() {
        use std::io::Write;
        let data: Vec<u8> = (0..150_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        w.write_all(&data).unwrap();
        let mut wire = w.into_inner().unwrap();
        let mut dec = Decoder::default();
        let (mut out, mut pos) = (Vec::new(), 0);
        while pos < wire.len() {
            let n = dec.decode_chunk(&wire[pos..], &mut out).unwrap();
            assert!(n > 0);
            pos += n;
        }
        assert_eq!(out, data);
        let last = wire.len() - 1;
        wire[last] ^= 0xff;
        let mut dec = Decoder::default();
        let mut pos = 0;
        let mut failed = false;
        while pos < wire.len() {
            match dec.decode_chunk(&wire[pos..], &mut Vec::new()) {
                Ok(n) => pos += n,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed, "a flipped byte must be detected");
    }
}
