//! Shared by the Portway client ↔ Portway server tests: a server on 127.0.0.1 (port 0), echo services, a client
//! with a tcp and a udp proxy, and the checks that traffic comes back intact.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use portway_client::{ClientConfig, ClientHandle, ProxyState, SecretSource};
use portway_server::{Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// The bound on every wait.
pub const T: Duration = Duration::from_secs(20);

/// A running server; stopped when dropped.
pub struct TestServer {
    /// Its TCP `bindPort`.
    pub port: u16,
    /// Its UDP QUIC port (0: not served).
    pub quic_port: u16,
    /// Cancels it.
    pub stop: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts a server from frps.toml text (and its dashboard API when it has `webServer.port`); with `quic`, QUIC is
/// served on a UDP port of its own on 127.0.0.1.
pub async fn start_server_opts(toml: &str, quic: bool) -> (TestServer, portway_server::service::StatsHandle) {
    let cfg = ServerConfig::parse(toml, "test-frps.toml").unwrap().config;
    let server = Server::new(cfg).unwrap();
    let stats = server.stats();
    if let Some(web) = server.bind_web().await.unwrap() {
        server.serve_web(web).unwrap();
    }
    let listener = server.bind().await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let quic_port = if quic {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = sock.local_addr().unwrap().port();
        server.use_quic_socket(sock);
        p
    } else {
        0
    };
    let stop = CancellationToken::new();
    tokio::spawn(server.run(listener, stop.clone()));
    (TestServer { port, quic_port, stop }, stats)
}

/// [`start_server_opts`] without QUIC.
pub async fn start_server_with(toml: &str) -> (TestServer, portway_server::service::StatsHandle) {
    start_server_opts(toml, false).await
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub async fn tcp_echo() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = c.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

pub async fn udp_echo() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = s.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&buf[..n], from).await;
        }
    });
    port
}

pub fn start_client(toml: &str) -> ClientHandle {
    let cfg = ClientConfig::parse(toml, "test-frpc.toml").unwrap().config;
    portway_client::start(cfg, SecretSource::FromConfig)
}

/// [`start_client`] for a file that must load without a warning (every key in it is meant to be understood).
pub fn start_client_without_warnings(toml: &str) -> ClientHandle {
    let loaded = ClientConfig::parse(toml, "test-frpc.toml").unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    portway_client::start(loaded.config, SecretSource::FromConfig)
}

pub async fn wait_running(h: &ClientHandle, names: &[&str]) {
    let mut rx = h.watch();
    let ok = tokio::time::timeout(T, async {
        loop {
            let done = {
                let s = rx.borrow_and_update();
                names.iter().all(|n| matches!(s.proxies.get(*n).map(|p| &p.state), Some(ProxyState::Running { .. })))
            };
            if done || rx.changed().await.is_err() {
                return done;
            }
        }
    })
    .await;
    assert!(matches!(ok, Ok(true)), "proxies {names:?} not running: {:#?}", h.status());
}

/// A client with a tcp proxy `web` and a udp proxy `voice`; returns their public ports.
pub async fn client_with_proxies(server_port: u16, transport: &str) -> (ClientHandle, u16, u16) {
    let (web, voice) = (free_port(), free_port());
    let (tcp_local, udp_local) = (tcp_echo().await, udp_echo().await);
    let toml = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {server_port}\nauth.token = \"t\"\nloginFailExit = false\n{transport}\n\
         [[proxies]]\nname = \"web\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {tcp_local}\nremotePort = {web}\n\
         [[proxies]]\nname = \"voice\"\ntype = \"udp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {udp_local}\nremotePort = {voice}\n"
    );
    let h = start_client(&toml);
    wait_running(&h, &["web", "voice"]).await;
    (h, web, voice)
}

pub async fn check_tcp_echo(port: u16, data: &[u8]) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut r, mut w) = c.split();
    let (wr, rd) = tokio::join!(
        async {
            w.write_all(data).await.unwrap();
            w.shutdown().await.unwrap();
        },
        async {
            let mut got = Vec::new();
            tokio::time::timeout(T, r.read_to_end(&mut got)).await.unwrap().unwrap();
            got
        }
    );
    let () = wr;
    assert_eq!(rd.len(), data.len());
    assert!(rd == data, "echo differs");
}

pub async fn check_udp_echo(port: u16) {
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // UDP may drop a datagram while the proxy's work connection is being set up: retry, bounded.
    for i in 0..20u8 {
        let msg = [b'd', b'g', i];
        u.send_to(&msg, ("127.0.0.1", port)).await.unwrap();
        let mut buf = [0u8; 16];
        if let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(500), u.recv_from(&mut buf)).await {
            assert_eq!(&buf[..n], &msg);
            return;
        }
    }
    panic!("no udp echo through port {port}");
}

/// Waits (bounded by [`T`]) until the client's status satisfies `ok`; fails naming `what` with the status.
pub async fn wait_for(h: &ClientHandle, what: &str, ok: impl Fn(&portway_client::Status) -> bool) {
    wait_for_within(h, what, T, ok).await
}

/// [`wait_for`] with a bound of the caller's.
pub async fn wait_for_within(
    h: &ClientHandle,
    what: &str,
    bound: Duration,
    ok: impl Fn(&portway_client::Status) -> bool,
) {
    let mut rx = h.watch();
    let r = tokio::time::timeout(bound, async {
        loop {
            if ok(&rx.borrow_and_update()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(r.is_ok() && ok(&h.status()), "{what}: {:#?}", h.status());
}

/// A helper process of a test (an outbound proxy, a DNS server), killed on drop, its output in a temporary file.
pub struct LoggedProc {
    child: std::process::Child,
    /// The port it serves.
    pub port: u16,
    log: std::path::PathBuf,
}

impl LoggedProc {
    /// What it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LoggedProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Starts `program` with its output in a temporary file; a missing program fails naming the package to install.
pub fn spawn_logged(program: &str, args: &[String], port: u16, what: &str) -> LoggedProc {
    let log = std::env::temp_dir().join(format!("portway-test-{}-{what}-{port}.log", std::process::id()));
    let out = std::fs::File::create(&log).unwrap();
    let child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {program} ({e}): install it (apt-get install {program}; see scripts/apt-packages.txt)")
        });
    LoggedProc { child, port, log }
}

/// Waits (bounded: 10 s) until something accepts TCP connections on 127.0.0.1:`port`.
pub async fn wait_listening(port: u16) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}
