//! The zero-copy relay (splice(2), Linux) between a Portway client and a Portway server on 127.0.0.1: taken on
//! the server's and the client's side of a connection exactly where no layer needs the bytes (a plain transport
//! without mux, no per-proxy encryption or compression), for bulk transfers, and by default not between two
//! loopback connections (measured slower there; `portway_proto::splice::pays_between`). Everything else keeps the
//! user-space relay. (Byte-exactness, half-close, resets and a 4 GiB transfer through the splice path itself:
//! `crates/proto/src/splice.rs`.)
#![allow(clippy::unwrap_used)]

mod support;

use portway_proto::splice::{allow_loopback, spliced_relays};
use support::*;

/// These tests count a process-wide number and set a process-wide switch: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PLAIN_NO_MUX: &str = "transport.tls.enable = false\ntransport.tcpMux = false";

/// Spliced relays while 8 MiB echo through one connection of a tunnel set up with these extras (with splice
/// between loopback connections allowed or not).
async fn spliced_during_echo(loopback: bool, client_extra: &str, server_extra: &str, proxy_extra: &str) -> u64 {
    let _one = ONE_AT_A_TIME.lock().await;
    allow_loopback(loopback);
    let (server, _) =
        start_server_with(&format!("bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\n{server_extra}\n"))
            .await;
    let (remote, local) = (free_port(), tcp_echo().await);
    let toml = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"t\"\nloginFailExit = false\n{client_extra}\n\
         [[proxies]]\nname = \"web\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {local}\n\
         remotePort = {remote}\n{proxy_extra}\n",
        server.port
    );
    let h = start_client(&toml);
    wait_running(&h, &["web"]).await;
    let before = spliced_relays();
    let data: Vec<u8> = (0..(8u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    check_tcp_echo(remote, &data).await;
    let n = spliced_relays() - before;
    h.stop().await.unwrap();
    allow_loopback(false);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_without_mux_is_spliced_on_both_sides() {
    let n = tokio::time::timeout(T, spliced_during_echo(true, PLAIN_NO_MUX, "transport.tcpMux = false", ""))
        .await
        .expect("test timed out");
    assert_eq!(n, 2, "the server's and the client's relay of the one connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_on_both_sides_keeps_the_user_space_relay_by_default() {
    let n = tokio::time::timeout(T, spliced_during_echo(false, PLAIN_NO_MUX, "transport.tcpMux = false", ""))
        .await
        .expect("test timed out");
    assert_eq!(n, 0, "visitor, work connection and service all on 127.0.0.1: no splice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_keep_the_user_space_relay() {
    tokio::time::timeout(T * 5, async {
        for (client, server, proxy, what) in [
            ("", "", "", "TLS + mux (frp's defaults)"),
            ("transport.tcpMux = false", "transport.tcpMux = false", "", "TLS without mux"),
            ("transport.tls.enable = false", "", "", "plain with mux"),
            (PLAIN_NO_MUX, "transport.tcpMux = false", "transport.useEncryption = true", "per-proxy encryption"),
            (PLAIN_NO_MUX, "transport.tcpMux = false", "transport.useCompression = true", "per-proxy compression"),
        ] {
            assert_eq!(spliced_during_echo(true, client, server, proxy).await, 0, "{what} must not be spliced");
        }
    })
    .await
    .expect("test timed out");
}
