//! The core tunnel end to end on 127.0.0.1: bulk transfers across the transport matrix, concurrency, restarts.

mod support;

use std::time::Duration;

use support::*;

const MIB: usize = 1024 * 1024;

/// 64 MiB through a tcp proxy to an echo service and back, checksummed, under one client/server setup.
async fn bulk(client_extra: &str, server_extra: &str, proxy_extra: &str) {
    init_logs();
    let (echo, _e) = echo_server().await;
    let server = start_server(&server_toml(server_extra), 0).await;
    let remote = free_port();
    let cfg = client_config(&client_toml(
        server.addr.port(),
        client_extra,
        &tcp_proxy("web", echo, remote, proxy_extra),
    ));
    let client = start_client(cfg);
    wait_running(&client, &["web"]).await;
    let data = pattern(64 * MIB, 1);
    let got = echo_through(remote, &data).await.expect("transfer");
    assert_eq!(got, sha256(&data), "64 MiB came back altered");
    let st = client.status();
    assert_eq!(st.proxies["web"].bytes_in, (64 * MIB) as u64);
    assert_eq!(st.proxies["web"].bytes_out, (64 * MIB) as u64);
    client.stop().await.expect("client stops cleanly");
    server.shutdown().await;
}

macro_rules! bulk_test {
    ($name:ident, $client:expr, $server:expr, $proxy:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            tokio::time::timeout(TEST_TIMEOUT, bulk($client, $server, $proxy))
                .await
                .expect("test timed out");
        }
    };
}

bulk_test!(bulk_64mib_tls_mux_frp_defaults, "", "", "");
bulk_test!(
    bulk_64mib_tls_no_mux,
    "transport.tcpMux = false",
    "transport.tcpMux = false",
    ""
);
bulk_test!(bulk_64mib_plain_mux, "transport.tls.enable = false", "", "");
bulk_test!(
    bulk_64mib_plain_no_mux,
    "transport.tls.enable = false\ntransport.tcpMux = false",
    "transport.tcpMux = false",
    ""
);
bulk_test!(
    bulk_64mib_encrypted,
    "",
    "",
    "transport.useEncryption = true"
);
bulk_test!(
    bulk_64mib_compressed,
    "",
    "",
    "transport.useCompression = true"
);
bulk_test!(
    bulk_64mib_encrypted_and_compressed_no_mux,
    "transport.tcpMux = false",
    "transport.tcpMux = false",
    "transport.useEncryption = true\ntransport.useCompression = true"
);
bulk_test!(
    bulk_64mib_custom_tls_first_byte,
    "transport.tls.disableCustomTLSFirstByte = false",
    "",
    ""
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_connections_through_one_proxy() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        init_logs();
        let (echo, _e) = echo_server().await;
        let server = start_server(&server_toml(""), 0).await;
        let remote = free_port();
        let client = start_client(client_config(&client_toml(
            server.addr.port(),
            "",
            &tcp_proxy("web", echo, remote, ""),
        )));
        wait_running(&client, &["web"]).await;
        let tasks: Vec<_> = (0..200u64)
            .map(|i| {
                tokio::spawn(async move {
                    let data = pattern(32 * 1024 + i as usize, i);
                    let got = echo_through(remote, &data).await?;
                    std::io::Result::Ok(got == sha256(&data))
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            if t.await.expect("join").expect("connection failed") {
                ok += 1;
            }
        }
        assert_eq!(ok, 200, "every connection must echo its own bytes");
        client.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reregisters_after_server_restart() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        init_logs();
        let (echo, _e) = echo_server().await;
        let server = start_server(&server_toml(""), 0).await;
        let port = server.addr.port();
        let remote = free_port();
        let client = start_client(client_config(&client_toml(
            port,
            "",
            &tcp_proxy("web", echo, remote, ""),
        )));
        let first = wait_running(&client, &["web"]).await;
        let data = pattern(MIB, 7);
        assert_eq!(
            echo_through(remote, &data).await.expect("before restart"),
            sha256(&data)
        );
        server.shutdown().await;
        wait_status(
            &client,
            Duration::from_secs(10),
            "the client to notice",
            |s| !s.is_connected(),
        )
        .await;
        assert!(
            echo_through(remote, b"x").await.is_err(),
            "the public port must be closed while the server is down"
        );
        let server = start_server(&server_toml(""), port).await;
        let second = wait_running(&client, &["web"]).await;
        assert_eq!(
            echo_through(remote, &data).await.expect("after restart"),
            sha256(&data)
        );
        // The client keeps its run_id across reconnects, as frp does.
        let run_id = |s: &portway::client::Status| match &s.conn {
            portway::client::ConnState::Connected { run_id, .. } => run_id.clone(),
            other => panic!("not connected: {other:?}"),
        };
        assert_eq!(run_id(&first), run_id(&second));
        client.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
    .expect("test timed out");
}
