//! `transport.bandwidthLimit` between a Portway client and a Portway server on 127.0.0.1: in `client` mode the
//! client limits the proxy's connections, in `server` mode the server does (the client then sends the limit in
//! NewProxy and applies none itself). The checks are lower bounds on the time a transfer takes (a limiter that
//! lets bytes through faster fails; a slow machine passes), and every byte must arrive intact.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

mod support;
use support::*;

const SERVER: &str = "bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\n";

/// Echoes 1 MiB through a tcp proxy limited to 512 KB/s with `mode`; returns how long it took. The echo sends
/// the MiB both ways through the proxy's one bucket: 2 MiB at 512 KiB/s, less the one-second burst and a relay
/// buffer each way paid after it moved, is at least (2048 - 512 - 128) / 512 = 2.75 s.
async fn limited_echo(mode: &str) -> Duration {
    let (server, _) = start_server_with(SERVER).await;
    let (remote, local) = (free_port(), tcp_echo().await);
    let toml = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"t\"\nloginFailExit = false\n\
         transport.tls.enable = false\n\
         [[proxies]]\nname = \"slow\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {local}\n\
         remotePort = {remote}\ntransport.bandwidthLimit = \"512KB\"\ntransport.bandwidthLimitMode = \"{mode}\"\n",
        server.port
    );
    let h = start_client(&toml);
    wait_running(&h, &["slow"]).await;
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let start = Instant::now();
    check_tcp_echo(remote, &data).await;
    let took = start.elapsed();
    h.stop().await.unwrap();
    took
}

#[tokio::test]
async fn client_mode_limits_a_tcp_proxy_in_the_client() {
    let took = limited_echo("client").await;
    assert!(took >= Duration::from_millis(2_600), "1 MiB echoed in {took:?}: the 512KB limit was not applied");
}

#[tokio::test]
async fn server_mode_limits_a_tcp_proxy_in_the_server() {
    let took = limited_echo("server").await;
    assert!(took >= Duration::from_millis(2_600), "1 MiB echoed in {took:?}: the server did not apply the limit");
}
