//! frp's WebSocket transport: `GET /~!frp` upgrade, then the byte stream (yamux, or TLS then yamux) carried in
//! binary frames. [`WsIo`] turns a WebSocket into a plain byte stream; text frames and oversized frames end the
//! connection with a reason.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// frp's WebSocket path.
pub const PATH: &str = "/~!frp";
/// Largest WebSocket frame or message accepted (Portway writes at most ~1.2 MiB per frame).
pub const MAX_FRAME: usize = 4 << 20;

fn config() -> WebSocketConfig {
    WebSocketConfig::default().max_frame_size(Some(MAX_FRAME)).max_message_size(Some(MAX_FRAME))
}

/// A WebSocket carrying a byte stream in binary frames.
pub struct WsIo<S> {
    ws: WebSocketStream<S>,
    rbuf: Bytes,
    eof_sent: bool,
}

fn ws_err(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, format!("websocket: {other}")),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if !self.rbuf.is_empty() {
                let n = self.rbuf.len().min(buf.remaining());
                buf.put_slice(&self.rbuf.split_to(n));
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                // An empty binary message is Portway's end-of-stream mark (WebSocket has no half-close).
                Some(Ok(Message::Binary(b))) if b.is_empty() => return Poll::Ready(Ok(())),
                Some(Ok(Message::Binary(b))) => self.rbuf = b,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "websocket text frame where frp sends only binary frames",
                    )))
                }
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(_)) => continue, // ping/pong: answered by tungstenite
                Some(Err(e)) => return Poll::Ready(Err(ws_err(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_err)?;
        let n = buf.len().min(MAX_FRAME / 2);
        Pin::new(&mut self.ws).start_send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).map_err(ws_err)?;
        // Push it towards the socket now; a Pending flush completes on the next write or flush.
        if let Poll::Ready(Err(e)) = Pin::new(&mut self.ws).poll_flush(cx) {
            return Poll::Ready(Err(ws_err(e)));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_err)
    }

    /// WebSocket has no half-close: a Close frame would stop the peer's writes too, losing the data still coming
    /// back. So shutdown sends an empty binary message, which Portway reads as end-of-stream (frp ignores it) and
    /// keeps reading; the socket closes when the stream is dropped.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.eof_sent {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_err)?;
            Pin::new(&mut self.ws).start_send(Message::Binary(Bytes::new())).map_err(ws_err)?;
            self.eof_sent = true;
        }
        Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_err)
    }
}

/// Client side: the upgrade request frpc sends (`GET /~!frp`, `Origin: http://HOST:PORT`).
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(io: S, host_port: &str) -> io::Result<WsIo<S>> {
    let req = Request::builder()
        .method("GET")
        .uri(format!("ws://{host_port}{PATH}"))
        .header("Host", host_port)
        .header("Origin", format!("http://{host_port}"))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", tungstenite::handshake::client::generate_key())
        .body(())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let (ws, _resp) = tokio_tungstenite::client_async_with_config(req, io, Some(config()))
        .await
        .map_err(|e| io::Error::new(io::ErrorKind::ConnectionRefused, format!("websocket upgrade refused: {e}")))?;
    Ok(WsIo { ws, rbuf: Bytes::new(), eof_sent: false })
}

/// Server side: accepts the upgrade on frp's path; anything else is answered 404 and the error names it.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(io: S) -> io::Result<WsIo<S>> {
    #[allow(clippy::result_large_err)] // the callback type is tungstenite's
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == PATH {
            Ok(resp)
        } else {
            let mut e = ErrorResponse::new(Some(format!("not found: frp's websocket path is {PATH}")));
            *e.status_mut() = tungstenite::http::StatusCode::NOT_FOUND;
            Err(e)
        }
    };
    let ws = tokio_tungstenite::accept_hdr_async_with_config(io, check, Some(config()))
        .await
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad websocket handshake: {e}")))?;
    Ok(WsIo { ws, rbuf: Bytes::new(), eof_sent: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_cross_both_ways() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(async move {
            let mut s = accept(b).await.unwrap();
            let mut v = vec![0u8; 5];
            s.read_exact(&mut v).await.unwrap();
            s.write_all(b"world").await.unwrap();
            s.flush().await.unwrap();
            v
        });
        let mut c = connect(a, "127.0.0.1:7000").await.unwrap();
        c.write_all(b"hello").await.unwrap();
        c.flush().await.unwrap();
        let mut v = vec![0u8; 5];
        c.read_exact(&mut v).await.unwrap();
        assert_eq!(&v, b"world");
        assert_eq!(server.await.unwrap(), b"hello");
    }

    #[tokio::test]
    async fn wrong_path_is_refused() {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(async move { accept(b).await.err().map(|e| e.to_string()) });
        a.write_all(b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").await.unwrap();
        let mut resp = vec![0u8; 12];
        a.read_exact(&mut resp).await.unwrap();
        assert_eq!(&resp, b"HTTP/1.1 404");
        assert!(server.await.unwrap().unwrap().contains("bad websocket handshake"));
    }
}
