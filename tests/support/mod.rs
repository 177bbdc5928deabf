//! Shared helpers for the end-to-end suites: real sockets on 127.0.0.1, engines in-process.
#![allow(dead_code)]

pub mod nginx;
pub mod oidc;
pub mod pki;
pub mod process;
pub mod relay;
pub mod scenarios;

use std::net::SocketAddr;
use std::time::Duration;

use portway::client::{self, ClientConfig, ClientHandle, ProxyState, SecretSource, Status};
use portway::server::{Server, ServerConfig};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Every test body runs under this bound.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A port that was free a moment ago (bind to 0, read, release).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stop: CancellationToken,
    pub task: JoinHandle<()>,
    /// Reads the running server's figures and dashboard registry.
    pub stats: portway::server::service::StatsHandle,
}

impl TestServer {
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Starts a server from frps.toml text; `bindPort` is overridden by `port` (0 = any).
pub async fn start_server(toml: &str, port: u16) -> TestServer {
    let mut cfg = ServerConfig::parse(toml, "test-frps.toml").expect("server config").config;
    cfg.bind_addr = "127.0.0.1".into();
    cfg.bind_port = port;
    let server = Server::new(cfg).expect("server");
    let listener = server.bind().await.expect("bind server");
    let addr = listener.local_addr().expect("addr");
    let stats = server.stats();
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move { server.run(listener, s).await });
    TestServer { addr, stop, task, stats }
}

/// Parses frpc.toml text.
pub fn client_config(toml: &str) -> ClientConfig {
    ClientConfig::parse(toml, "test-frpc.toml").expect("client config").config
}

/// Starts a client engine.
pub fn start_client(cfg: ClientConfig) -> ClientHandle {
    client::start(cfg, SecretSource::FromConfig)
}

/// Waits until `pred` holds for the client's status (or panics after `within`).
pub async fn wait_status(h: &ClientHandle, within: Duration, what: &str, pred: impl Fn(&Status) -> bool) -> Status {
    let mut rx = h.watch();
    let r = tokio::time::timeout(within, async {
        loop {
            {
                let s = rx.borrow_and_update();
                if pred(&s) {
                    return s.clone();
                }
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone();
            }
        }
    })
    .await;
    match r {
        Ok(s) if pred(&s) => s,
        _ => panic!("timed out after {within:?} waiting for {what}; last status: {:#?}", h.status()),
    }
}

/// Waits until every proxy named is running.
pub async fn wait_running(h: &ClientHandle, names: &[&str]) -> Status {
    wait_status(h, Duration::from_secs(30), "proxies running", |s| {
        names.iter().all(|n| matches!(s.proxies.get(*n).map(|p| &p.state), Some(ProxyState::Running { .. })))
    })
    .await
}

/// An echo service on 127.0.0.1; returns its port and a handle that stops it when aborted.
pub async fn echo_server() -> (u16, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let port = l.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                break;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = c.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (port, task)
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Sends `data` through `port` to an echo service and returns the SHA-256 of what came back.
pub async fn echo_through(port: u16, data: &[u8]) -> std::io::Result<[u8; 32]> {
    let c = TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut r, mut w) = c.into_split();
    let payload = data.to_vec();
    let writer = tokio::spawn(async move {
        w.write_all(&payload).await?;
        w.shutdown().await?;
        std::io::Result::Ok(())
    });
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0usize;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n;
        h.update(&buf[..n]);
    }
    writer.await.map_err(std::io::Error::other)??;
    if total != data.len() {
        return Err(std::io::Error::other(format!("got {total} bytes back, sent {}", data.len())));
    }
    Ok(h.finalize().into())
}

/// frps.toml for tests.
pub fn server_toml(extra: &str) -> String {
    format!("bindAddr = \"127.0.0.1\"\nauth.token = \"test-token\"\n{extra}\n")
}

/// frpc.toml for tests with one tcp proxy `web` → `local_port`, public `remote_port`.
pub fn client_toml(server_port: u16, extra: &str, proxies: &str) -> String {
    format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {server_port}\nauth.token = \"test-token\"\nloginFailExit = false\n{extra}\n{proxies}\n"
    )
}

pub fn tcp_proxy(name: &str, local_port: u16, remote_port: u16, extra: &str) -> String {
    format!(
        "[[proxies]]\nname = \"{name}\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {local_port}\nremotePort = {remote_port}\n{extra}\n"
    )
}

/// `n` concurrent connections through public `port` to an echo service, each sending its own pattern (distinct
/// seed and length, both derived from `round`); panics unless every connection gets back exactly its own bytes.
pub async fn echo_isolated(port: u16, n: u64, round: u64) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let seed = round * 1_000 + i + 1;
            tokio::spawn(async move {
                let data = pattern(16 * 1024 + (seed as usize % 997) * 7, seed);
                let got = tokio::time::timeout(Duration::from_secs(20), echo_through(port, &data))
                    .await
                    .unwrap_or_else(|_| Err(std::io::Error::other("no complete echo within 20 s")));
                (i, got.map(|h| h == sha256(&data)))
            })
        })
        .collect();
    for t in tasks {
        let (i, r) = t.await.expect("join");
        match r {
            Ok(true) => {}
            Ok(false) => panic!("connection {i} (round {round}, port {port}) got bytes that are not its own"),
            Err(e) => panic!("connection {i} (round {round}, port {port}) failed: {e}"),
        }
    }
}

/// Retries [`echo_isolated`]'s single-connection check until `port` echoes (bounded); for waiting on a proxy
/// that is being re-registered by a process whose status the test cannot watch.
pub async fn wait_echo(port: u16, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let probe = pattern(100, u64::from(port));
        if let Ok(Ok(h)) = tokio::time::timeout(Duration::from_secs(3), echo_through(port, &probe)).await {
            if h == sha256(&probe) {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "port {port} did not echo within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes `msg` on an open connection through an echo tunnel and reads it back (10 s bound): the connection is
/// still up.
pub async fn roundtrip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.expect("write");
    let mut got = vec![0; msg.len()];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
        .await
        .expect("echo within 10 s")
        .expect("the open connection still echoes");
    assert_eq!(got, msg);
}
