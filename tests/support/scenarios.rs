//! The core tunnel scenarios, parametrised by transport settings so every transport runs the same matrix.

use std::time::Duration;

use super::*;
use portway::client::ConnState;

pub const MIB: usize = 1024 * 1024;

/// 64 MiB through a tcp proxy to an echo service and back, checksummed.
pub async fn bulk(client_extra: &str, server_extra: &str, proxy_extra: &str) {
    init_logs();
    let (echo, _e) = echo_server().await;
    let server = start_server(&server_toml(server_extra), 0).await;
    let remote = free_port();
    let proxy = tcp_proxy("web", echo, remote, proxy_extra);
    let client = start_client(client_config(&client_toml(server.addr.port(), client_extra, &proxy)));
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

/// `n` concurrent connections through one proxy, each echoing its own bytes.
pub async fn concurrent(client_extra: &str, server_extra: &str, n: u64) {
    init_logs();
    let (echo, _e) = echo_server().await;
    let server = start_server(&server_toml(server_extra), 0).await;
    let remote = free_port();
    let proxy = tcp_proxy("web", echo, remote, "");
    let client = start_client(client_config(&client_toml(server.addr.port(), client_extra, &proxy)));
    wait_running(&client, &["web"]).await;
    let tasks: Vec<_> = (0..n)
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
    assert_eq!(ok, n, "every connection must echo its own bytes");
    client.stop().await.expect("stop");
    server.shutdown().await;
}

/// Kill the server, start it again on the same port: the client re-registers (same run_id) and traffic flows.
pub async fn restart(client_extra: &str, server_extra: &str) {
    init_logs();
    let (echo, _e) = echo_server().await;
    let server = start_server(&server_toml(server_extra), 0).await;
    let port = server.addr.port();
    let remote = free_port();
    let proxy = tcp_proxy("web", echo, remote, "");
    let client = start_client(client_config(&client_toml(port, client_extra, &proxy)));
    let first = wait_running(&client, &["web"]).await;
    let data = pattern(MIB, 7);
    assert_eq!(echo_through(remote, &data).await.expect("before restart"), sha256(&data));
    server.shutdown().await;
    wait_status(&client, Duration::from_secs(10), "the client to notice", |s| !s.is_connected()).await;
    assert!(echo_through(remote, b"x").await.is_err(), "the public port must be closed while the server is down");
    let server = start_server(&server_toml(server_extra), port).await;
    let second = wait_running(&client, &["web"]).await;
    assert_eq!(echo_through(remote, &data).await.expect("after restart"), sha256(&data));
    let run_id = |s: &portway::client::Status| match &s.conn {
        ConnState::Connected { run_id, .. } => run_id.clone(),
        other => panic!("not connected: {other:?}"),
    };
    assert_eq!(run_id(&first), run_id(&second), "the client keeps its run_id across reconnects, as frp does");
    client.stop().await.expect("stop");
    server.shutdown().await;
}
