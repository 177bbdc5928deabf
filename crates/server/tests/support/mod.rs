//! Helpers shared by the portway-server integration tests: a server on 127.0.0.1 port 0, free ports, an echo.
#![allow(dead_code, clippy::unwrap_used)]

use portway_server::{Server, ServerConfig};
use tokio_util::sync::CancellationToken;

/// A running server; dropping it stops it.
pub struct TestServer {
    /// Its `bindPort`.
    pub port: u16,
    /// Cancels it.
    pub stop: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts a server from `toml` (with `bindPort = 0`), serving its webServer too when it has one.
pub async fn start_server_with(toml: &str) -> (TestServer, portway_server::service::StatsHandle) {
    let cfg = ServerConfig::parse(toml, "test-frps.toml").unwrap().config;
    let server = Server::new(cfg).unwrap();
    let stats = server.stats();
    if let Some(web) = server.bind_web().await.unwrap() {
        server.serve_web(web).unwrap();
    }
    let listener = server.bind().await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = CancellationToken::new();
    tokio::spawn(server.run(listener, stop.clone()));
    (TestServer { port, stop }, stats)
}

/// A port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A TCP echo service on 127.0.0.1; returns its port.
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
