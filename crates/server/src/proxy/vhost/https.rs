//! The HTTPS virtual-host listener (`vhostHTTPSPort`): reads the ClientHello, routes by its server name, and relays
//! the untouched TLS bytes to the client's service, which terminates TLS. An unknown name gets frp's
//! `unrecognized_name` alert.

use std::sync::Arc;
use std::time::Duration;

use portway_proto::relay::relay_tcp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::sni::{parse_client_hello, Hello, ALERT_UNRECOGNIZED_NAME, MAX_CLIENT_HELLO};
use super::Kind;
use super::Vhost;

/// How long a visitor may take to send its ClientHello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn serve(shared: Arc<Vhost>, listener: TcpListener, cancel: CancellationToken) {
    super::accept_loop(shared, listener, cancel, serve_conn).await;
}

/// Reads until the ClientHello is complete; returns the bytes read and the SNI.
async fn read_hello(tcp: &mut TcpStream) -> std::io::Result<(Vec<u8>, Option<Option<String>>)> {
    let mut buf = Vec::with_capacity(2048);
    loop {
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Ok((buf, None));
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_client_hello(&buf) {
            Hello::Incomplete if buf.len() <= MAX_CLIENT_HELLO => continue,
            Hello::Incomplete | Hello::NotTls => return Ok((buf, None)),
            Hello::Complete(name) => return Ok((buf, Some(name))),
        }
    }
}

async fn serve_conn(shared: Arc<Vhost>, mut tcp: TcpStream, peer: std::net::SocketAddr) {
    let (hello, name) = match tokio::time::timeout(HELLO_TIMEOUT, read_hello(&mut tcp)).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            debug!(error = %e, "connection lost before its ClientHello");
            return;
        }
        Err(_) => {
            debug!("no ClientHello within {HELLO_TIMEOUT:?}; closed");
            return;
        }
    };
    let Some(name) = name else {
        debug!(bytes = hello.len(), "not a TLS ClientHello; closed");
        return;
    };
    let host = name.unwrap_or_default();
    let Some(route) = shared.lookup(Kind::Https, &host, "", "") else {
        debug!(sni = %host, "no https proxy for this server name; unrecognized_name alert");
        let _ = tcp.write_all(&ALERT_UNRECOGNIZED_NAME).await;
        let _ = tcp.shutdown().await;
        return;
    };
    if !route.ctl.user_conn_allowed(&route.np.proxy_name, &route.np.proxy_type, peer).await {
        return;
    }
    let mut work = match route.work_conn(peer, tcp.local_addr().ok()).await {
        Ok(w) => w,
        Err(e) => {
            warn!(proxy = %route.np.proxy_name, error = %e, "no work connection for an https visitor; closing it");
            return;
        }
    };
    if let Err(e) = work.write_all(&hello).await {
        debug!(error = %e, "work connection failed while forwarding the ClientHello");
        return;
    }
    tokio::select! {
        _ = route.cancel.cancelled() => {}
        r = relay_tcp(&mut tcp, &mut work) => debug!(result = ?r, "https visitor closed"),
    }
}
