//! The zero-copy relay (splice(2), Linux) is taken exactly where no layer needs the bytes: a plain transport
//! without mux and without per-proxy encryption or compression, on the server's and the client's side of each
//! connection. Everything else keeps the user-space relay. (Byte-exactness, half-close, resets and a 4 GiB
//! transfer through the splice path itself: `crates/proto/src/splice.rs`.)

mod support;

use portway::proto::splice::spliced_relays;
use support::*;

/// These tests count a process-wide number: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Spliced relays while 8 MiB echo through one connection of a tunnel set up with these extras.
async fn spliced_during_echo(client_extra: &str, server_extra: &str, proxy_extra: &str) -> u64 {
    let _one = ONE_AT_A_TIME.lock().await;
    init_logs();
    let (echo, _e) = echo_server().await;
    let server = start_server(&server_toml(server_extra), 0).await;
    let remote = free_port();
    let proxy = tcp_proxy("web", echo, remote, proxy_extra);
    let client = start_client(client_config(&client_toml(server.addr.port(), client_extra, &proxy)));
    wait_running(&client, &["web"]).await;
    let before = spliced_relays();
    let data = pattern(8 << 20, 3);
    assert_eq!(echo_through(remote, &data).await.expect("transfer"), sha256(&data), "bytes altered");
    let n = spliced_relays() - before;
    let st = client.status();
    assert_eq!((st.proxies["web"].bytes_in, st.proxies["web"].bytes_out), (8 << 20, 8 << 20), "client counters");
    client.stop().await.expect("client stops");
    server.shutdown().await;
    n
}

const PLAIN_NO_MUX: &str = "transport.tls.enable = false\ntransport.tcpMux = false";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_without_mux_is_spliced_on_both_sides() {
    let n = tokio::time::timeout(TEST_TIMEOUT, spliced_during_echo(PLAIN_NO_MUX, "transport.tcpMux = false", ""))
        .await
        .expect("test timed out");
    assert_eq!(n, 2, "the server's and the client's relay of the one connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_keep_the_user_space_relay() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        for (client, server, proxy, what) in [
            ("", "", "", "TLS + mux (frp's defaults)"),
            ("transport.tcpMux = false", "transport.tcpMux = false", "", "TLS without mux"),
            ("transport.tls.enable = false", "", "", "plain with mux"),
            (PLAIN_NO_MUX, "transport.tcpMux = false", "transport.useEncryption = true", "per-proxy encryption"),
            (PLAIN_NO_MUX, "transport.tcpMux = false", "transport.useCompression = true", "per-proxy compression"),
        ] {
            assert_eq!(spliced_during_echo(client, server, proxy).await, 0, "{what} must not be spliced");
        }
    })
    .await
    .expect("test timed out");
}
