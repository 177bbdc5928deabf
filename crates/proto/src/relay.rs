//! Copying bytes between a visitor and a work connection, with frp's per-proxy layers.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::compress::CompressStream;
use crate::crypto::{CryptoStream, Key};
use crate::transport::BoxedIo;

/// Buffer size per direction when relaying.
pub const RELAY_BUF: usize = 64 * 1024;

/// Wraps a work connection in the proxy's layers, in frp's order: the application writes into compression,
/// which writes into encryption, which writes to the wire.
pub fn wrap_work_conn(conn: BoxedIo, encryption: Option<&Key>, compression: bool) -> BoxedIo {
    let conn: BoxedIo = match encryption {
        Some(k) => Box::new(CryptoStream::new(conn, k)),
        None => conn,
    };
    if compression {
        Box::new(CompressStream::new(conn))
    } else {
        conn
    }
}

/// Copies both ways until both directions are closed, preserving half-close. Returns bytes (a→b, b→a).
pub async fn relay<A, B>(a: &mut A, b: &mut B) -> std::io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    tokio::io::copy_bidirectional_with_sizes(a, b, RELAY_BUF, RELAY_BUF).await
}
