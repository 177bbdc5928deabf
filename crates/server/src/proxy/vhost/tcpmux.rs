//! The tcpmux listener (`tcpmuxHTTPConnectPort`, `multiplexer = "httpconnect"`): a visitor sends
//! `CONNECT host:port`, the host picks the proxy, and after frp's `200 OK` (or, with `tcpmuxPassthrough`, the CONNECT
//! request itself forwarded) the connection is relayed like a tcp proxy's.

use std::sync::Arc;
use std::time::Duration;

use portway_proto::relay::relay_tcp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::connect::{self, ConnectHead, OK_RESPONSE, PROXY_AUTH_REQUIRED};
use super::Vhost;
use super::{Kind, NOT_FOUND_PAGE};

/// How long a visitor may take to send its CONNECT head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn serve(shared: Arc<Vhost>, listener: TcpListener, cancel: CancellationToken) {
    super::accept_loop(shared, listener, cancel, serve_conn).await;
}

/// frp's raw 404 for an unknown CONNECT host.
fn not_found_response() -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nContent-Type: text/html\r\nServer: frp/{}\r\n\r\n",
        NOT_FOUND_PAGE.len(),
        portway_proto::FRP_VERSION
    )
    .into_bytes();
    r.extend_from_slice(NOT_FOUND_PAGE.as_bytes());
    r
}

async fn read_head(tcp: &mut TcpStream) -> Result<Option<(ConnectHead, Vec<u8>)>, String> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 2048];
        let n = tcp.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(head) = connect::parse(&buf).map_err(|e| e.to_string())? {
            return Ok(Some((head, buf)));
        }
    }
}

async fn serve_conn(shared: Arc<Vhost>, mut tcp: TcpStream, peer: std::net::SocketAddr) {
    let (head, buf) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut tcp)).await {
        Ok(Ok(Some(v))) => v,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            debug!(error = %e, "bad CONNECT request; closed");
            return;
        }
        Err(_) => {
            debug!("no CONNECT request within {HEAD_TIMEOUT:?}; closed");
            return;
        }
    };
    let Some(route) = shared.lookup(Kind::TcpMux, &head.host, "", &head.user) else {
        debug!(host = %head.host, "no tcpmux proxy for this host; 404");
        let _ = tcp.write_all(&not_found_response()).await;
        let _ = tcp.shutdown().await;
        return;
    };
    if !route.auth_ok(&head.user, &head.password) {
        let _ = tcp.write_all(PROXY_AUTH_REQUIRED).await;
        let _ = tcp.shutdown().await;
        return;
    }
    if !route.ctl.user_conn_allowed(&route.np.proxy_name, &route.np.proxy_type, peer).await {
        return;
    }
    let mut work = match route.work_conn(peer, tcp.local_addr().ok()).await {
        Ok(w) => w,
        Err(e) => {
            warn!(proxy = %route.np.proxy_name, error = %e, "no work connection for a tcpmux visitor; closing it");
            return;
        }
    };
    let forward = if shared.hub.cfg.tcpmux_passthrough {
        &buf[..]
    } else {
        if tcp.write_all(OK_RESPONSE).await.is_err() {
            return;
        }
        &buf[head.len..]
    };
    if !forward.is_empty() && work.write_all(forward).await.is_err() {
        return;
    }
    tokio::select! {
        _ = route.cancel.cancelled() => {}
        r = relay_tcp(&mut tcp, &mut work) => debug!(result = ?r, "tcpmux visitor closed"),
    }
}
