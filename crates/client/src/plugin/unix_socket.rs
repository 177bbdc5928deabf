//! `plugin.type = "unix_domain_socket"`: the visitor's connection relayed to the Unix socket at `unixPath` (a
//! PROXY protocol header, when the proxy asks for one, goes first).

use portway_proto::transport::BoxedIo;

/// Relays one connection. Returns (from visitor, to visitor) bytes.
#[cfg(unix)]
pub async fn serve(mut c: BoxedIo, path: &str, extra: Option<Vec<u8>>) -> Option<(u64, u64)> {
    use tokio::io::AsyncWriteExt;
    let dial = tokio::net::UnixStream::connect(path);
    let mut local = match tokio::time::timeout(std::time::Duration::from_secs(10), dial).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(unix_path = %path, error = %e, "unix_domain_socket plugin: cannot connect (is the service running?)");
            return None;
        }
        Err(_) => {
            tracing::warn!(unix_path = %path, "unix_domain_socket plugin: the socket did not accept within 10 s");
            return None;
        }
    };
    if let Some(h) = extra {
        local.write_all(&h).await.ok()?;
    }
    tokio::io::copy_bidirectional(&mut c, &mut local).await.ok()
}

/// Not on this system (refused at load).
#[cfg(not(unix))]
pub async fn serve(_c: BoxedIo, _path: &str, _extra: Option<Vec<u8>>) -> Option<(u64, u64)> {
    None
}
