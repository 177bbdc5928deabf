//! A TCP forwarder between a client and a server that a test can stall (stop forwarding without closing, like a
//! network that silently drops everything) or cut (close every connection it carries).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Relay {
    pub addr: SocketAddr,
    flowing: Arc<watch::Sender<bool>>,
    /// Cancelled by `cut`; every connection accepted before holds a clone of the token current at its accept.
    generation: Arc<Mutex<CancellationToken>>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Listens on 127.0.0.1:0 and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = l.local_addr().expect("relay addr");
        let flowing = Arc::new(watch::channel(true).0);
        let generation = Arc::new(Mutex::new(CancellationToken::new()));
        let (f, g) = (flowing.clone(), generation.clone());
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = l.accept().await {
                let cut = g.lock().expect("generation lock").clone();
                let f = f.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = cut.cancelled() => {}
                        _ = forward(inbound, target, f) => {}
                    }
                });
            }
        });
        Relay { addr, flowing, generation, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops moving bytes in both directions; connections stay open and new ones are accepted but not forwarded.
    pub fn stall(&self) {
        self.flowing.send_replace(false);
    }

    /// Moves bytes again (what was held back flows on).
    pub fn resume(&self) {
        self.flowing.send_replace(true);
    }

    /// Closes every connection accepted so far.
    pub fn cut(&self) {
        let mut g = self.generation.lock().expect("generation lock");
        g.cancel();
        *g = CancellationToken::new();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.lock().map(|g| g.cancel()).unwrap_or(());
    }
}

async fn flowing(f: &watch::Sender<bool>) {
    let mut rx = f.subscribe();
    let _ = rx.wait_for(|on| *on).await;
}

async fn forward(inbound: TcpStream, target: SocketAddr, f: Arc<watch::Sender<bool>>) {
    flowing(&f).await;
    let Ok(outbound) = TcpStream::connect(target).await else { return };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (ir, iw) = inbound.into_split();
    let (or, ow) = outbound.into_split();
    tokio::join!(pump(ir, ow, f.clone()), pump(or, iw, f));
}

async fn pump(mut r: impl AsyncRead + Unpin, mut w: impl AsyncWrite + Unpin, f: Arc<watch::Sender<bool>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        flowing(&f).await;
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Bytes read just before a stall are held back too.
        flowing(&f).await;
        if w.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}
