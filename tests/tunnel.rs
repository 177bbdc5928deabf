//! The core tunnel end to end on 127.0.0.1: bulk transfers across the transport matrix, concurrency, restarts.

mod support;

use support::*;

use support::scenarios::{bulk, concurrent, restart};

macro_rules! bulk_test {
    ($name:ident, $client:expr, $server:expr, $proxy:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            tokio::time::timeout(TEST_TIMEOUT, bulk($client, $server, $proxy)).await.expect("test timed out");
        }
    };
}

bulk_test!(bulk_64mib_tls_mux_frp_defaults, "", "", "");
bulk_test!(bulk_64mib_tls_no_mux, "transport.tcpMux = false", "transport.tcpMux = false", "");
bulk_test!(bulk_64mib_plain_mux, "transport.tls.enable = false", "", "");
bulk_test!(
    bulk_64mib_plain_no_mux,
    "transport.tls.enable = false\ntransport.tcpMux = false",
    "transport.tcpMux = false",
    ""
);
bulk_test!(bulk_64mib_encrypted, "", "", "transport.useEncryption = true");
bulk_test!(bulk_64mib_compressed, "", "", "transport.useCompression = true");
bulk_test!(
    bulk_64mib_encrypted_and_compressed_no_mux,
    "transport.tcpMux = false",
    "transport.tcpMux = false",
    "transport.useEncryption = true\ntransport.useCompression = true"
);
bulk_test!(bulk_64mib_custom_tls_first_byte, "transport.tls.disableCustomTLSFirstByte = false", "", "");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_connections_through_one_proxy() {
    tokio::time::timeout(TEST_TIMEOUT, concurrent("", "", 200)).await.expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reregisters_after_server_restart() {
    tokio::time::timeout(TEST_TIMEOUT, restart("", "")).await.expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reregisters_after_server_restart_without_mux() {
    tokio::time::timeout(TEST_TIMEOUT, restart("transport.tcpMux = false", "transport.tcpMux = false"))
        .await
        .expect("test timed out");
}

/// A backend that writes `tag` to every connection and closes it.
async fn tagged_backend(tag: &'static str) -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncWriteExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let _ = c.write_all(tag.as_bytes()).await;
        }
    });
    (port, task)
}

/// What one visitor connection to 127.0.0.1:`port` reads until the close (None: refused).
async fn read_tag(port: u16) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let mut s = String::new();
    c.read_to_string(&mut s).await.ok()?;
    Some(s)
}

/// tcp `loadBalancer.group` (frp's tcp groups): two clients share one remotePort and take connections in turn; a
/// wrong groupKey and a different remotePort are refused with frps's messages; the port stays while a member is
/// left and closes with the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_load_balancer_group_shares_a_port_between_clients_in_turn() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        init_logs();
        let (a, _a) = tagged_backend("a").await;
        let (b, _b) = tagged_backend("b").await;
        let server = start_server(&server_toml(""), 0).await;
        let port = free_port();
        let group = |key: &str| format!("loadBalancer.group = \"g\"\nloadBalancer.groupKey = \"{key}\"");
        let c1 =
            start_client(client_config(&client_toml(server.addr.port(), "", &tcp_proxy("ga", a, port, &group("k")))));
        wait_running(&c1, &["ga"]).await;
        let second = format!(
            "{}\n{}\n{}",
            tcp_proxy("gb", b, port, &group("k")),
            tcp_proxy("gbad", b, port, &group("wrong")),
            tcp_proxy("gport", b, free_port(), &group("k")),
        );
        let c2 = start_client(client_config(&client_toml(server.addr.port(), "", &second)));
        wait_running(&c2, &["gb"]).await;
        let st = wait_status(&c2, std::time::Duration::from_secs(30), "two refusals", |s| {
            ["gbad", "gport"].iter().all(|n| matches!(s.proxies[*n].state, portway::client::ProxyState::Error { .. }))
        })
        .await;
        let reason = |n: &str| match &st.proxies[n].state {
            portway::client::ProxyState::Error { reason } => reason.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(reason("gbad"), "group auth failed");
        assert_eq!(reason("gport"), "group should have same remote port");
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(read_tag(port).await.expect("the group's port answers"));
        }
        assert!(seen == ["a", "b", "a", "b"] || seen == ["b", "a", "b", "a"], "round robin: {seen:?}");
        // One member left: it takes every connection (once the server has seen the other's session end).
        c2.stop().await.expect("stop");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut in_a_row = 0;
        while in_a_row < 4 {
            let from_a = read_tag(port).await.as_deref() == Some("a");
            in_a_row = if from_a { in_a_row + 1 } else { 0 };
            assert!(tokio::time::Instant::now() < deadline, "the remaining member did not take every connection");
        }
        // The last member leaves: the port closes.
        c1.stop().await.expect("stop");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            assert!(tokio::time::Instant::now() < deadline, "the group's port stayed open without members");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        server.shutdown().await;
    })
    .await
    .expect("test timed out");
}
