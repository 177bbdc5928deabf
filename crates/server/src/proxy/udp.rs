//! UDP proxies (frp's `server/proxy/udp.go`): the public socket's datagrams travel as UDPPacket messages over one
//! work connection, tagged with the visitor's address so replies go back to the right peer. When the work
//! connection dies a new one is taken; datagrams arriving meanwhile are dropped, as UDP allows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portway_proto::msg::{Message, NewProxy, StartWorkConn, UdpPacket};
use portway_proto::relay::wrap_work_conn;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::session::Session;
use crate::stats::LiveCounters;

/// The client pings a UDP work connection every 30 s; silence for this long means it is dead (frp: 60 s).
const WORK_CONN_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves one UDP proxy until `cancel`.
pub async fn serve(
    ctl: Arc<dyn Session>,
    socket: UdpSocket,
    np: NewProxy,
    live: Arc<LiveCounters>,
    cancel: CancellationToken,
) {
    let socket = Arc::new(socket);
    let size = ctl.hub().cfg.udp_packet_size as usize;
    let truncated = Arc::new(AtomicU64::new(0));
    let limit = crate::session::server_limit(&np);
    while !cancel.is_cancelled() {
        let start = StartWorkConn { proxy_name: np.proxy_name.clone(), ..Default::default() };
        let work = tokio::select! {
            _ = cancel.cancelled() => break,
            w = ctl.start_work_conn(start) => w,
        };
        let work = match work {
            Ok(w) => w,
            Err(e) => {
                warn!(error = %e, "no work connection for the udp proxy; retrying in 1 s");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let key = &ctl.hub().key;
        // v2 work connections carry the datagrams as v2 UDPPacket frames (frp v0.69.1+).
        let wire = work.wire;
        let work = wrap_work_conn(work.io, np.use_encryption.then_some(key), np.use_compression);
        let work = crate::session::limited(work, limit.as_ref());
        let (mut rd, mut wr) = tokio::io::split(work);
        let sock = socket.clone();
        let trunc = truncated.clone();
        let live_in = live.clone();
        let inbound = async move {
            // size + 1 tells a datagram that was exactly `size` from one that was cut.
            let mut buf = vec![0u8; size + 1];
            loop {
                let (n, peer) = sock.recv_from(&mut buf).await?;
                let n = if n > size {
                    let t = trunc.fetch_add(1, Ordering::Relaxed) + 1;
                    if t.is_power_of_two() {
                        warn!(%peer, limit = size, truncated_total = t, "datagram larger than udpPacketSize truncated (as frp does)");
                    }
                    size
                } else {
                    n
                };
                live_in.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                let pkt = UdpPacket { content: buf[..n].to_vec(), local_addr: None, remote_addr: Some(peer.into()) };
                wire.write_msg(&mut wr, &Message::UdpPacket(pkt)).await.map_err(std::io::Error::other)?;
            }
            #[allow(unreachable_code)]
            std::io::Result::Ok(())
        };
        let sock = socket.clone();
        let live_out = live.clone();
        let outbound = async move {
            loop {
                let m = tokio::time::timeout(WORK_CONN_READ_TIMEOUT, wire.read_msg(&mut rd))
                    .await
                    .map_err(|_| std::io::Error::other("no message on the udp work connection for 60 s"))?
                    .map_err(std::io::Error::other)?;
                match m {
                    Message::UdpPacket(p) => {
                        let Some(to) = p.remote_addr.as_ref().and_then(|a| a.to_socket_addr()) else {
                            debug!("UDPPacket without a usable remote address dropped");
                            continue;
                        };
                        match portway_proto::transport::send_datagram(&sock, &p.content, Some(to)).await {
                            Ok(()) => {
                                live_out.bytes_out.fetch_add(p.content.len() as u64, Ordering::Relaxed);
                            }
                            Err(e) => debug!(%to, error = %e, "reply datagram dropped"),
                        }
                    }
                    Message::Ping(_) => {}
                    other => debug!(message = other.name(), "ignored on a udp work connection"),
                }
            }
            #[allow(unreachable_code)]
            std::io::Result::Ok(())
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = inbound => if let Err(e) = r { info!(error = %e, "udp work connection ended (inbound)") },
            r = outbound => if let Err(e) = r { info!(error = %e, "udp work connection ended (outbound)") },
        }
    }
    debug!("udp proxy closed");
}
