//! UDP proxies on the client (frp's `client/proxy/udp.go`): UDPPacket messages from the work connection go to the
//! local service from one local socket per remote peer, so each reply is tagged with the peer it belongs to.
//! Sessions close after idling; a slow or dead local service drops datagrams instead of stalling other peers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portway_proto::msg::{Message, Ping, UdpAddr, UdpPacket};
use portway_proto::transport::BoxedIo;
use portway_proto::wire::Wire;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// frp pings a UDP work connection this often so the server's 60 s read deadline never fires.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Datagrams queued toward the server before new ones are dropped.
const OUT_QUEUE: usize = 4096;

/// Settings of one UDP proxy's work connection.
#[derive(Debug, Clone)]
pub struct UdpSettings {
    /// The local service.
    pub local: SocketAddr,
    /// Largest datagram read from the local service (`udpPacketSize`).
    pub packet_size: usize,
    /// A peer's session closes after this long without traffic either way (frp: 30 s).
    pub idle_timeout: Duration,
}

type Sessions = Arc<Mutex<HashMap<UdpAddr, Arc<UdpSocket>>>>;

/// Byte counters reported back to the engine: (to local, from local). Called about once a second, not per datagram.
pub type Counter = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Bytes not yet reported: (to local, from local).
type Tally = Arc<(AtomicU64, AtomicU64)>;

fn flush(tally: &Tally, count: &Counter) {
    let (i, o) = (tally.0.swap(0, Ordering::Relaxed), tally.1.swap(0, Ordering::Relaxed));
    if i > 0 || o > 0 {
        count(i, o);
    }
}

/// Serves a UDP work connection until it closes or `cancel`.
/// Datagrams travel as UDPPacket messages in `wire`'s framing (v2 frames since frp v0.69.1).
pub async fn serve(work: BoxedIo, wire: Wire, set: UdpSettings, cancel: CancellationToken, count: Counter) {
    let (mut rd, mut wr) = tokio::io::split(work);
    let (tx, mut rx) = mpsc::channel::<Message>(OUT_QUEUE);
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            let m = tokio::select! {
                m = rx.recv() => match m { Some(m) => m, None => break },
                _ = ping.tick() => Message::Ping(Ping::default()),
            };
            if wire.write_msg(&mut wr, &m).await.is_err() {
                break;
            }
        }
    });
    let sessions: Sessions = Arc::new(Mutex::new(HashMap::new()));
    let tally: Tally = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let mut report = tokio::time::interval(Duration::from_secs(1));
    let done = cancel.child_token();
    loop {
        let m = tokio::select! {
            _ = done.cancelled() => break,
            _ = report.tick() => {
                flush(&tally, &count);
                continue;
            }
            m = wire.read_msg(&mut rd) => m,
        };
        let p = match m {
            Ok(Message::UdpPacket(p)) => p,
            Ok(other) => {
                debug!(message = other.name(), "ignored on a udp work connection");
                continue;
            }
            Err(e) => {
                if !e.is_eof() {
                    info!(error = %e, "udp work connection failed");
                }
                break;
            }
        };
        let Some(peer) = p.remote_addr.clone() else {
            continue;
        };
        let sock = match session(&sessions, &peer, &set, &tx, &done, &tally).await {
            Ok(s) => s,
            Err(e) => {
                warn!(local = %set.local, error = %e, "cannot open a UDP socket toward the local service");
                continue;
            }
        };
        tally.0.fetch_add(p.content.len() as u64, Ordering::Relaxed);
        if let Err(e) = portway_proto::transport::send_datagram(&sock, &p.content, None).await {
            debug!(error = %e, "datagram to the local service dropped");
        }
    }
    done.cancel();
    flush(&tally, &count);
    drop(tx);
    let _ = writer.await;
}

/// The peer's socket toward the local service, created (with its reader task) on first use.
async fn session(
    sessions: &Sessions,
    peer: &UdpAddr,
    set: &UdpSettings,
    tx: &mpsc::Sender<Message>,
    done: &CancellationToken,
    tally: &Tally,
) -> std::io::Result<Arc<UdpSocket>> {
    if let Some(s) = sessions.lock().map_err(|_| std::io::Error::other("poisoned"))?.get(peer) {
        return Ok(s.clone());
    }
    let bind: SocketAddr =
        if set.local.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = Arc::new(UdpSocket::bind(bind).await?);
    sock.connect(set.local).await?;
    if let Ok(mut m) = sessions.lock() {
        m.insert(peer.clone(), sock.clone());
    }
    debug!(peer = %format!("{}:{}", peer.ip, peer.port), "udp session opened");
    let (sock2, tx, peer, sessions, done, tally) =
        (sock.clone(), tx.clone(), peer.clone(), sessions.clone(), done.clone(), tally.clone());
    let (size, idle) = (set.packet_size, set.idle_timeout);
    tokio::spawn(async move {
        let mut buf = vec![0u8; size];
        loop {
            let r = tokio::select! {
                _ = done.cancelled() => break,
                r = tokio::time::timeout(idle, sock2.recv(&mut buf)) => r,
            };
            match r {
                Ok(Ok(n)) => {
                    tally.1.fetch_add(n as u64, Ordering::Relaxed);
                    let pkt =
                        UdpPacket { content: buf[..n].to_vec(), local_addr: None, remote_addr: Some(peer.clone()) };
                    if tx.try_send(Message::UdpPacket(pkt)).is_err() {
                        debug!("reply dropped: the work connection is backed up");
                    }
                }
                // ICMP port unreachable surfaces as an error on a connected socket: the service is down; keep
                // the session until it idles out.
                Ok(Err(e)) => debug!(error = %e, "local udp service error"),
                Err(_) => break,
            }
        }
        if let Ok(mut m) = sessions.lock() {
            if m.get(&peer).is_some_and(|s| Arc::ptr_eq(s, &sock2)) {
                m.remove(&peer);
            }
        }
        debug!(peer = %format!("{}:{}", peer.ip, peer.port), "udp session closed");
    });
    Ok(sock)
}
