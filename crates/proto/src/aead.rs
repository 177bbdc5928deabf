//! The AEAD stream of frp's v2 control channel (golib `crypto/aead_stream.go`).
//!
//! Per direction: the writer's random stream nonce in clear (12 bytes for AES-256-GCM, 24 for XChaCha20-Poly1305),
//! written just before the first record; then records `u32 BE n | ciphertext ‖ 16-byte tag` with
//! `n = plaintext length + 16` and at most [`MAX_RECORD_PLAINTEXT`] plaintext bytes. Record i uses the stream nonce
//! plus i (one big-endian integer); AAD = stream nonce ‖ the 4-byte length. frp writes one record per `Write`
//! (a frame header, then its payload); readers do not depend on where records end.
//!
//! [`Sealer`] and [`Opener`] are pure; [`AeadStream`] wraps a byte stream.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use chacha20poly1305::XChaCha20Poly1305;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::wire_v2::{AeadKey, Algorithm};

/// Poly1305 and GCM tag length.
pub const TAG_LEN: usize = 16;
/// Largest plaintext in one record.
pub const MAX_RECORD_PLAINTEXT: usize = 64 * 1024;
/// Length prefix of a record.
pub const LEN_LEN: usize = 4;
/// AES-GCM's record limit per stream (random 96-bit nonces, counted).
const GCM_MAX_RECORDS: u64 = 1 << 32;

/// Why an AEAD stream failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    /// A record did not authenticate: wrong key (token mismatch), tampering or a corrupt stream.
    #[error("wire v2 control record failed authentication (wrong auth.token on one side, or the stream was altered)")]
    Auth,
    /// A length outside `16..=65552`.
    #[error("wire v2 control record of {0} bytes is outside 16..=65552: corrupt stream")]
    BadLength(u32),
    /// Too many records for the algorithm's nonce space.
    #[error("wire v2 control stream used up its nonces; reconnect")]
    Exhausted,
}

impl From<AeadError> for io::Error {
    fn from(e: AeadError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

enum Cipher {
    Gcm(Box<Aes256Gcm>),
    XChaCha(Box<XChaCha20Poly1305>),
}

impl Cipher {
    fn new(alg: Algorithm, key: &AeadKey) -> Cipher {
        match alg {
            Algorithm::Aes256Gcm => Cipher::Gcm(Box::new(Aes256Gcm::new(&key.0.into()))),
            Algorithm::XChaCha20Poly1305 => Cipher::XChaCha(Box::new(XChaCha20Poly1305::new(&key.0.into()))),
        }
    }

    fn seal(&self, nonce: &[u8], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, AeadError> {
        let p = Payload { msg, aad };
        match self {
            Cipher::Gcm(c) => c.encrypt(aes_gcm::Nonce::from_slice(nonce), p),
            Cipher::XChaCha(c) => c.encrypt(chacha20poly1305::XNonce::from_slice(nonce), p),
        }
        .map_err(|_| AeadError::Auth)
    }

    fn open(&self, nonce: &[u8], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, AeadError> {
        let p = Payload { msg, aad };
        match self {
            Cipher::Gcm(c) => c.decrypt(aes_gcm::Nonce::from_slice(nonce), p),
            Cipher::XChaCha(c) => c.decrypt(chacha20poly1305::XNonce::from_slice(nonce), p),
        }
        .map_err(|_| AeadError::Auth)
    }
}

/// The per-record nonce: the stream nonce plus a count, big-endian over all its bytes.
struct NonceSeq {
    stream: Vec<u8>,
    next: Vec<u8>,
    count: u64,
    limit: u64,
}

impl NonceSeq {
    fn new(stream: Vec<u8>, alg: Algorithm) -> NonceSeq {
        let limit = if alg == Algorithm::Aes256Gcm { GCM_MAX_RECORDS } else { u64::MAX };
        NonceSeq { next: stream.clone(), stream, count: 0, limit }
    }

    /// The nonce for the next record.
    fn take(&mut self) -> Result<Vec<u8>, AeadError> {
        if self.count >= self.limit {
            return Err(AeadError::Exhausted);
        }
        self.count += 1;
        let n = self.next.clone();
        for b in self.next.iter_mut().rev() {
            *b = b.wrapping_add(1);
            if *b != 0 {
                break;
            }
        }
        Ok(n)
    }
}

fn aad(stream_nonce: &[u8], len: [u8; LEN_LEN]) -> Vec<u8> {
    let mut a = Vec::with_capacity(stream_nonce.len() + LEN_LEN);
    a.extend_from_slice(stream_nonce);
    a.extend_from_slice(&len);
    a
}

/// The writing half: turns plaintext chunks into records.
pub struct Sealer {
    cipher: Cipher,
    nonces: NonceSeq,
    nonce_sent: bool,
}

impl Sealer {
    /// A sealer with the given stream nonce (random in production: see [`Sealer::random`]).
    pub fn new(alg: Algorithm, key: &AeadKey, stream_nonce: Vec<u8>) -> Sealer {
        Sealer { cipher: Cipher::new(alg, key), nonces: NonceSeq::new(stream_nonce, alg), nonce_sent: false }
    }

    /// A sealer with a random stream nonce.
    pub fn random(alg: Algorithm, key: &AeadKey) -> Sealer {
        let nonce: Vec<u8> = (0..alg.nonce_len()).map(|_| rand::random::<u8>()).collect();
        Sealer::new(alg, key, nonce)
    }

    /// Appends one record holding `plain` (at most [`MAX_RECORD_PLAINTEXT`] bytes) to `out`, preceded by the
    /// stream nonce if this is the first.
    pub fn seal_into(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), AeadError> {
        if plain.len() > MAX_RECORD_PLAINTEXT {
            return Err(AeadError::BadLength((plain.len() + TAG_LEN) as u32));
        }
        if !self.nonce_sent {
            out.extend_from_slice(&self.nonces.stream);
            self.nonce_sent = true;
        }
        let len = ((plain.len() + TAG_LEN) as u32).to_be_bytes();
        let nonce = self.nonces.take()?;
        let ct = self.cipher.seal(&nonce, &aad(&self.nonces.stream, len), plain)?;
        out.extend_from_slice(&len);
        out.extend_from_slice(&ct);
        Ok(())
    }
}

/// The reading half: takes wire bytes, returns plaintext records.
pub struct Opener {
    alg: Algorithm,
    cipher: Cipher,
    nonces: Option<NonceSeq>,
}

impl Opener {
    /// An opener waiting for the peer's stream nonce.
    pub fn new(alg: Algorithm, key: &AeadKey) -> Opener {
        Opener { alg, cipher: Cipher::new(alg, key), nonces: None }
    }

    /// Opens what it can from the front of `buf`: `Ok(None)` when more bytes are needed, else the plaintext of
    /// one record (empty when only the stream nonce was consumed) and the number of bytes used. A length outside
    /// the limits is refused before anything is allocated.
    pub fn open(&mut self, buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, AeadError> {
        let Some(nonces) = self.nonces.as_mut() else {
            let n = self.alg.nonce_len();
            if buf.len() < n {
                return Ok(None);
            }
            self.nonces = Some(NonceSeq::new(buf[..n].to_vec(), self.alg));
            return Ok(Some((Vec::new(), n)));
        };
        let Some(len) = buf.first_chunk::<LEN_LEN>() else {
            return Ok(None);
        };
        let n = u32::from_be_bytes(*len);
        if (n as usize) < TAG_LEN || n as usize > MAX_RECORD_PLAINTEXT + TAG_LEN {
            return Err(AeadError::BadLength(n));
        }
        let end = LEN_LEN + n as usize;
        if buf.len() < end {
            return Ok(None);
        }
        let nonce = nonces.take()?;
        let plain = self.cipher.open(&nonce, &aad(&nonces.stream, *len), &buf[LEN_LEN..end])?;
        Ok(Some((plain, end)))
    }
}

/// A byte stream carried in AEAD records both ways. Each write call becomes one record (at most 64 KiB), so a
/// v2 frame written as header + payload costs two records, as frp's do.
pub struct AeadStream<S> {
    inner: S,
    sealer: Sealer,
    opener: Opener,
    /// Records sealed but not yet written to `inner`.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Ciphertext read but not yet opened.
    rbuf: Vec<u8>,
    /// Plaintext opened but not yet handed out.
    plain: Vec<u8>,
    ppos: usize,
    failed: Option<AeadError>,
}

impl<S> AeadStream<S> {
    /// Wraps `inner`: writes with `write_key`, reads with `read_key`.
    pub fn new(inner: S, alg: Algorithm, write_key: &AeadKey, read_key: &AeadKey) -> AeadStream<S> {
        AeadStream::with_sealer(inner, Sealer::random(alg, write_key), Opener::new(alg, read_key))
    }

    /// The wrapped stream (bytes written to it bypass the AEAD).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Wraps `inner` with a given sealer and opener (fixed nonces in tests).
    pub fn with_sealer(inner: S, sealer: Sealer, opener: Opener) -> AeadStream<S> {
        AeadStream {
            inner,
            sealer,
            opener,
            wbuf: Vec::new(),
            wpos: 0,
            rbuf: Vec::new(),
            plain: Vec::new(),
            ppos: 0,
            failed: None,
        }
    }
}

impl<S: AsyncWrite + Unpin> AeadStream<S> {
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

impl<S: AsyncRead + Unpin> AsyncRead for AeadStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ppos < this.plain.len() {
                let n = (this.plain.len() - this.ppos).min(buf.remaining());
                buf.put_slice(&this.plain[this.ppos..this.ppos + n]);
                this.ppos += n;
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = &this.failed {
                return Poll::Ready(Err(e.clone().into()));
            }
            match this.opener.open(&this.rbuf) {
                Ok(Some((plain, used))) => {
                    this.rbuf.drain(..used);
                    this.plain = plain;
                    this.ppos = 0;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    this.failed = Some(e.clone());
                    return Poll::Ready(Err(e.into()));
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                if this.rbuf.is_empty() {
                    return Poll::Ready(Ok(())); // clean EOF between records
                }
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            this.rbuf.extend_from_slice(rb.filled());
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AeadStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Sealed records wait in wbuf; bound it so a slow peer pushes back.
        if this.wbuf.len() >= MAX_RECORD_PLAINTEXT {
            ready!(this.poll_drain(cx))?;
        }
        let n = buf.len().min(MAX_RECORD_PLAINTEXT);
        this.sealer.seal_into(&buf[..n], &mut this.wbuf)?;
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
    use crate::wire_v2::derive_keys;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn keys() -> crate::wire_v2::Keys {
        derive_keys(b"t", &[9; 32], Algorithm::XChaCha20Poly1305)
    }

    #[test]
    fn nonce_increments_big_endian_with_carry() {
        let mut s = NonceSeq::new(vec![0, 0xff, 0xff], Algorithm::XChaCha20Poly1305);
        assert_eq!(s.take().unwrap(), vec![0, 0xff, 0xff]);
        assert_eq!(s.take().unwrap(), vec![1, 0, 0]);
        assert_eq!(s.take().unwrap(), vec![1, 0, 1]);
    }

    #[test]
    fn seal_open_across_splits_and_tamper() {
        for alg in Algorithm::ALL {
            let k = derive_keys(b"t", &[1; 32], alg);
            let mut s = Sealer::random(alg, &k.c2s);
            let mut wire = Vec::new();
            for chunk in [&b"0010000000000004"[..], b"", &[7u8; 70_000][..65536]] {
                s.seal_into(chunk, &mut wire).unwrap();
            }
            let mut o = Opener::new(alg, &k.c2s);
            let (mut got, mut pos) = (Vec::new(), 0);
            let mut fed = 0;
            while pos < wire.len() {
                fed = (fed + 777).min(wire.len());
                while let Some((p, used)) = o.open(&wire[pos..fed]).unwrap() {
                    got.extend_from_slice(&p);
                    pos += used;
                }
            }
            assert_eq!(got.len(), 16 + 65536);
            let mut bad = wire.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            let mut o = Opener::new(alg, &k.c2s);
            let mut pos = 0;
            let err = loop {
                match o.open(&bad[pos..]) {
                    Ok(Some((_, used))) => pos += used,
                    Ok(None) => panic!("stream ended without the tampered record failing"),
                    Err(e) => break e,
                }
            };
            assert_eq!(err, AeadError::Auth);
            // The other direction's key does not open it either.
            let mut o = Opener::new(alg, &k.s2c);
            let n = alg.nonce_len();
            o.open(&wire).unwrap();
            assert_eq!(o.open(&wire[n..]).unwrap_err(), AeadError::Auth);
        }
    }

    #[test]
    fn refuses_bad_lengths_before_allocating() {
        let k = keys();
        let mut o = Opener::new(Algorithm::XChaCha20Poly1305, &k.c2s);
        o.open(&[0; 24]).unwrap();
        assert_eq!(o.open(&[0, 0, 0, 15]).unwrap_err(), AeadError::BadLength(15));
        assert_eq!(o.open(&[0xff, 0xff, 0xff, 0xff]).unwrap_err(), AeadError::BadLength(u32::MAX));
        assert!(o.open(&[0, 1, 0, 16]).unwrap().is_none());
    }

    #[tokio::test]
    async fn stream_round_trip_both_ways() {
        let k = keys();
        let alg = Algorithm::XChaCha20Poly1305;
        let (a, b) = tokio::io::duplex(1024);
        let mut a = AeadStream::new(a, alg, &k.c2s, &k.s2c);
        let mut b = AeadStream::new(b, alg, &k.s2c, &k.c2s);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let d2 = data.clone();
        let w = tokio::spawn(async move {
            a.write_all(&d2).await.unwrap();
            a.shutdown().await.unwrap();
            a
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, data);
        b.write_all(b"pong").await.unwrap();
        b.flush().await.unwrap();
        let mut a = w.await.unwrap();
        let mut four = [0u8; 4];
        a.read_exact(&mut four).await.unwrap();
        assert_eq!(&four, b"pong");
    }
}
