//! frp's stream cipher (`golib/crypto`): AES-128-CFB with full-block feedback, one continuous stream per
//! direction, the writer's random 16-byte IV sent in clear before the first byte.
//! Key = PBKDF2-HMAC-SHA1(password, salt "frp", 64 iterations, 16 bytes).
//!
//! [`Encryptor`] and [`Decryptor`] are pure and stateful; [`CryptoStream`] wraps any byte stream.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use aes::cipher::KeyIvInit;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// IV and block size of AES.
pub const IV_LEN: usize = 16;
/// frp's `crypto.DefaultSalt` as frpc and frps set it.
pub const DEFAULT_SALT: &[u8] = b"frp";

type Enc = cfb_mode::BufEncryptor<aes::Aes128>;
type Dec = cfb_mode::BufDecryptor<aes::Aes128>;

/// A derived 16-byte key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct Key([u8; 16]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// Derives the key frp derives from `password` (usually `auth.token`).
    pub fn derive(password: &[u8]) -> Key {
        let mut k = [0u8; 16];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, DEFAULT_SALT, 64, &mut k);
        Key(k)
    }

    /// The raw key bytes (for test vectors).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

/// Encrypting half: emits the IV (via [`Encryptor::iv`]) and then a keystream-xored copy of the input.
pub struct Encryptor {
    iv: [u8; IV_LEN],
    inner: Enc,
}

impl Encryptor {
    /// A new encryptor with the given IV (random in production, fixed in tests).
    pub fn new(key: &Key, iv: [u8; IV_LEN]) -> Self {
        Encryptor { iv, inner: Enc::new(&key.0.into(), &iv.into()) }
    }

    /// A new encryptor with a random IV.
    pub fn random(key: &Key) -> Self {
        Self::new(key, rand::random())
    }

    /// The IV the peer must receive before any ciphertext.
    pub fn iv(&self) -> [u8; IV_LEN] {
        self.iv
    }

    /// Encrypts in place, continuing the stream.
    pub fn apply(&mut self, data: &mut [u8]) {
        self.inner.encrypt(data)
    }
}

/// Decrypting half: consumes the IV from the first 16 bytes it sees, then decrypts the rest.
pub struct Decryptor {
    key: Key,
    iv: Vec<u8>,
    inner: Option<Dec>,
}

impl Decryptor {
    /// A decryptor waiting for the peer's IV.
    pub fn new(key: &Key) -> Self {
        Decryptor { key: key.clone(), iv: Vec::with_capacity(IV_LEN), inner: None }
    }

    /// Feeds wire bytes in place; returns the range of `data` that now holds plaintext (IV bytes are skipped).
    pub fn apply(&mut self, data: &mut [u8]) -> std::ops::Range<usize> {
        let mut start = 0;
        if self.inner.is_none() {
            let need = IV_LEN - self.iv.len();
            let take = need.min(data.len());
            self.iv.extend_from_slice(&data[..take]);
            start = take;
            if self.iv.len() == IV_LEN {
                let mut iv = [0u8; IV_LEN];
                iv.copy_from_slice(&self.iv);
                self.inner = Some(Dec::new(&self.key.0.into(), &iv.into()));
            }
        }
        if let Some(d) = self.inner.as_mut() {
            d.decrypt(&mut data[start..]);
        }
        start..data.len()
    }
}

/// A byte stream encrypted both ways with frp's cipher.
pub struct CryptoStream<S> {
    inner: S,
    enc: Encryptor,
    dec: Decryptor,
    /// Ciphertext accepted from the caller but not yet written to `inner` (starts with the IV).
    wbuf: Vec<u8>,
    wpos: usize,
    /// Plaintext decrypted but not yet handed out (only while the IV is still arriving).
    rbuf: Vec<u8>,
}

/// Largest chunk encrypted per write call.
const WRITE_CHUNK: usize = 64 * 1024;

impl<S> CryptoStream<S> {
    /// Wraps `inner`; nothing is sent until the first write or flush.
    pub fn new(inner: S, key: &Key) -> Self {
        let enc = Encryptor::random(key);
        let wbuf = enc.iv().to_vec();
        CryptoStream { inner, enc, dec: Decryptor::new(key), wbuf, wpos: 0, rbuf: Vec::new() }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncWrite + Unpin> CryptoStream<S> {
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

impl<S: AsyncRead + Unpin> AsyncRead for CryptoStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.rbuf.is_empty() {
                let n = this.rbuf.len().min(buf.remaining());
                buf.put_slice(&this.rbuf[..n]);
                this.rbuf.drain(..n);
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            let filled = buf.filled_mut();
            if filled.len() == before {
                return Poll::Ready(Ok(())); // EOF
            }
            let range = this.dec.apply(&mut filled[before..]);
            if range.start == 0 {
                return Poll::Ready(Ok(()));
            }
            // Some IV bytes were in this read: move the plaintext aside and un-fill the buffer.
            let plain = filled[before + range.start..].to_vec();
            buf.set_filled(before);
            this.rbuf = plain;
            if this.rbuf.is_empty() {
                continue;
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CryptoStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Pending bytes (at first the IV) may be joined by new ones, up to a bound: the IV then leaves in the
        // same write as the first frame, as frp sends it.
        if this.wbuf.len() >= WRITE_CHUNK {
            ready!(this.poll_drain(cx))?;
        }
        let n = buf.len().min(WRITE_CHUNK);
        let start = this.wbuf.len();
        this.wbuf.extend_from_slice(&buf[..n]);
        this.enc.apply(&mut this.wbuf[start..]);
        // Try to push it out now; whatever is left goes out on the next write or flush.
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn key_vector_for_token_t() {
        // PBKDF2-HMAC-SHA1("t", "frp", 64, 16), computed independently with Python's hashlib.pbkdf2_hmac.
        assert_eq!(hex::encode(Key::derive(b"t").as_bytes()), KEY_T_HEX);
    }

    pub(crate) const KEY_T_HEX: &str = "04b8b0735bd4e218275e44c05a4e919c";

    #[test]
    fn encrypt_decrypt_across_odd_splits() {
        let key = Key::derive(b"secret");
        let mut e = Encryptor::new(&key, [7u8; 16]);
        let plain: Vec<u8> = (0..1000u32).map(|i| (i * 31) as u8).collect();
        let mut wire = e.iv().to_vec();
        for chunk in plain.chunks(37) {
            let mut c = chunk.to_vec();
            e.apply(&mut c);
            wire.extend_from_slice(&c);
        }
        let mut d = Decryptor::new(&key);
        let mut out = Vec::new();
        for chunk in wire.chunks(5) {
            let mut c = chunk.to_vec();
            let r = d.apply(&mut c);
            out.extend_from_slice(&c[r]);
        }
        assert_eq!(out, plain);
    }

    #[tokio::test]
    async fn stream_round_trip() {
        let (a, b) = tokio::io::duplex(64);
        let key = Key::derive(b"k");
        let mut a = CryptoStream::new(a, &key);
        let mut b = CryptoStream::new(b, &key);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let d2 = data.clone();
        let w = tokio::spawn(async move {
            a.write_all(&d2).await.unwrap();
            a.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        w.await.unwrap();
        assert_eq!(got, data);
    }
}
