//! v1 framing (`golib/msg/json`): `type: u8 | length: i64 big-endian | JSON body`, bodies at most 10,240 bytes.
//!
//! [`decode`] is pure (a buffer in, a message and its size out) for tests and fuzzing; [`read_msg`] and
//! [`write_msg`] do the same over async streams. The length is checked before anything is allocated.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::msg::{Message, MsgError};

/// frp's limit on a message body.
pub const MAX_BODY: usize = 10_240;
/// Type byte plus length.
pub const HEADER_LEN: usize = 9;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The length field is negative or above [`MAX_BODY`]; frp refuses these too.
    #[error("frp frame of {0} bytes is outside 0..=10240: not an frp peer, or a corrupt stream")]
    BadLength(i64),
    /// Type byte or JSON body is wrong.
    #[error(transparent)]
    Msg(#[from] MsgError),
    /// A wire protocol v2 frame or message is wrong.
    #[error(transparent)]
    Frame(#[from] crate::wire_v2::FrameError),
    /// The connection failed or closed mid-frame.
    #[error("connection error while reading or writing an frp message: {0}")]
    Io(#[from] std::io::Error),
}

impl CodecError {
    /// True when the peer simply closed the connection between frames.
    pub fn is_eof(&self) -> bool {
        matches!(self, CodecError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof)
    }
}

/// Appends one framed message to `out`.
pub fn encode(msg: &Message, out: &mut Vec<u8>) {
    let body = msg.to_json();
    out.reserve(HEADER_LEN + body.len());
    out.push(msg.type_byte());
    out.extend_from_slice(&(body.len() as i64).to_be_bytes());
    out.extend_from_slice(&body);
}

/// Encodes one message into a fresh buffer.
pub fn encode_to_vec(msg: &Message) -> Vec<u8> {
    let mut v = Vec::new();
    encode(msg, &mut v);
    v
}

/// Decodes one frame from the front of `buf`: `Ok(None)` when more bytes are needed, else the message and the
/// number of bytes it used.
pub fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>, CodecError> {
    let Some(&t) = buf.first() else {
        return Ok(None);
    };
    check_type(t)?;
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&buf[1..HEADER_LEN]);
    let len = checked_len(i64::from_be_bytes(len))?;
    if buf.len() < HEADER_LEN + len {
        return Ok(None);
    }
    let msg = Message::from_json(t, &buf[HEADER_LEN..HEADER_LEN + len])?;
    Ok(Some((msg, HEADER_LEN + len)))
}

fn check_type(t: u8) -> Result<(), CodecError> {
    if b"o1p2cwrsv3h4uinm56".contains(&t) {
        Ok(())
    } else {
        Err(MsgError::UnknownType(t).into())
    }
}

fn checked_len(len: i64) -> Result<usize, CodecError> {
    if (0..=MAX_BODY as i64).contains(&len) {
        Ok(len as usize)
    } else {
        Err(CodecError::BadLength(len))
    }
}

/// Reads one message. Cancel safety: not cancel safe (a partial frame is lost).
pub async fn read_msg<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> Result<Message, CodecError> {
    let mut t = [0u8; 1];
    r.read_exact(&mut t).await?;
    check_type(t[0])?;
    let mut len = [0u8; 8];
    r.read_exact(&mut len).await?;
    let len = checked_len(i64::from_be_bytes(len))?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Message::from_json(t[0], &body)?)
}

/// Writes one message in a single write call and flushes. A body over [`MAX_BODY`] is refused before anything
/// is sent (frp would drop the connection on it).
pub async fn write_msg<W: AsyncWrite + Unpin + ?Sized>(w: &mut W, msg: &Message) -> Result<(), CodecError> {
    let buf = encode_to_vec(msg);
    if buf.len() - HEADER_LEN > MAX_BODY {
        return Err(CodecError::BadLength((buf.len() - HEADER_LEN) as i64));
    }
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::*;

    #[test]
    fn round_trip_and_partial_input() {
        let m = Message::NewProxyResp(NewProxyResp {
            proxy_name: "web".into(),
            remote_addr: ":16001".into(),
            ..Default::default()
        });
        let bytes = encode_to_vec(&m);
        assert_eq!(&bytes[..9], &[b'2', 0, 0, 0, 0, 0, 0, 0, 43]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        let (back, used) = decode(&bytes).unwrap().unwrap();
        assert_eq!((back, used), (m, bytes.len()));
    }

    #[test]
    fn rejects_oversized_negative_and_unknown() {
        let mut f = vec![b'o'];
        f.extend_from_slice(&10_241i64.to_be_bytes());
        assert!(matches!(decode(&f), Err(CodecError::BadLength(10_241))));
        let mut f = vec![b'o'];
        f.extend_from_slice(&(-1i64).to_be_bytes());
        assert!(matches!(decode(&f), Err(CodecError::BadLength(-1))));
        assert!(matches!(decode(b"GET / HTTP/1.1"), Err(CodecError::Msg(MsgError::UnknownType(b'G')))));
    }

    #[test]
    fn accepts_the_limit_exactly() {
        let mut body = br#"{"error":""#.to_vec();
        body.resize(MAX_BODY - 2, b'x');
        body.extend_from_slice(b"\"}");
        let mut f = vec![b'4'];
        f.extend_from_slice(&(MAX_BODY as i64).to_be_bytes());
        f.extend_from_slice(&body);
        let (m, used) = decode(&f).unwrap().unwrap();
        assert_eq!(used, f.len());
        assert!(matches!(m, Message::Pong(p) if p.error.len() == MAX_BODY - 12));
    }

    #[tokio::test]
    async fn write_refuses_oversized_bodies() {
        let m = Message::Pong(Pong { error: "x".repeat(MAX_BODY) });
        let mut out = Vec::new();
        assert!(matches!(write_msg(&mut out, &m).await, Err(CodecError::BadLength(_))));
        assert!(out.is_empty(), "nothing may be sent");
    }

    #[tokio::test]
    async fn async_read_stops_at_bad_length_without_allocating() {
        let mut f = vec![b'p'];
        f.extend_from_slice(&i64::MAX.to_be_bytes());
        let mut r = &f[..];
        assert!(matches!(read_msg(&mut r).await, Err(CodecError::BadLength(i64::MAX))));
        let mut empty: &[u8] = &[];
        assert!(read_msg(&mut empty).await.unwrap_err().is_eof());
    }
}
