//! Live edits of visitors: `ClientHandle::reload` on an engine that runs visitors applies only the change. A real
//! server, a provider engine with two stcp proxies and a visitor engine, each with its own sockets on 127.0.0.1:
//! a reload adds a visitor (it starts listening and reaches its proxy), changes one (its old port closes, the new
//! one works), removes one (its listener closes) and disables one, while a connection open through another
//! visitor keeps echoing and the provider's proxies are not touched.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use portway_client::status::VisitorState;
use portway_client::{ClientConfig, ProxyState};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn common(server_port: u16, user: &str) -> String {
    format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {server_port}\nuser = \"{user}\"\nauth.token = \"t\"\n\
         loginFailExit = false\ntransport.tls.enable = false\n"
    )
}

fn stcp_visitor(name: &str, server_name: &str, port: u16, extra: &str) -> String {
    format!(
        "[[visitors]]\nname = \"{name}\"\ntype = \"stcp\"\nserverName = \"{server_name}\"\nserverUser = \"alice\"\n\
         secretKey = \"sk\"\nbindAddr = \"127.0.0.1\"\nbindPort = {port}\n{extra}\n"
    )
}

fn config(text: &str) -> ClientConfig {
    ClientConfig::parse(text, "test-frpc.toml").unwrap().config
}

fn listening(s: &portway_client::Status, name: &str, port: u16) -> bool {
    matches!(s.visitors.get(name).map(|v| &v.state),
        Some(VisitorState::Listening { local_addr }) if local_addr == &format!("127.0.0.1:{port}"))
}

/// One message there and back on an open connection.
async fn roundtrip(c: &mut TcpStream, msg: &[u8]) {
    c.write_all(msg).await.unwrap();
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(T, c.read_exact(&mut got)).await.expect("echo in time").expect("the connection is open");
    assert_eq!(got, msg);
}

/// A fresh connection through `port` echoes (retried while the visitor's listener comes up: bounded).
async fn echoes(port: u16) {
    for _ in 0..50 {
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)).await {
            let msg = format!("through {port}");
            c.write_all(msg.as_bytes()).await.unwrap();
            let mut got = vec![0u8; msg.len()];
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut got)).await {
                assert_eq!(got, msg.as_bytes());
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no echo through 127.0.0.1:{port}");
}

/// The port stops accepting connections (bounded wait).
async fn closes(port: u16, what: &str) {
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: 127.0.0.1:{port} still accepts connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_changes_and_removes_visitors_and_leaves_the_others_open() {
    let (server, _) = start_server_with("bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\n").await;
    let echo = tcp_echo().await;
    let provider = start_client(&format!(
        "{}\n[[proxies]]\nname = \"one\"\ntype = \"stcp\"\nsecretKey = \"sk\"\nallowUsers = [\"*\"]\n\
         localIP = \"127.0.0.1\"\nlocalPort = {echo}\n\
         [[proxies]]\nname = \"two\"\ntype = \"stcp\"\nsecretKey = \"sk\"\nallowUsers = [\"*\"]\n\
         localIP = \"127.0.0.1\"\nlocalPort = {echo}\n",
        common(server.port, "alice")
    ));
    wait_running(&provider, &["one", "two"]).await;

    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let base = common(server.port, "bob");
    let v1 = stcp_visitor("v1", "one", p1, "transport.useEncryption = true");
    let client = start_client(&format!("{base}{v1}"));
    wait_for(&client, "v1 listening", |s| listening(s, "v1", p1)).await;
    let mut open = TcpStream::connect(("127.0.0.1", p1)).await.unwrap();
    roundtrip(&mut open, b"before any reload").await;

    // Add v2: it starts and reaches "two"; v1's open connection is not touched.
    let out = client.reload(config(&format!("{base}{v1}{}", stcp_visitor("v2", "two", p2, ""))));
    assert_eq!(out.visitors_added, ["v2"]);
    assert!(out.visitors_changed.is_empty() && out.visitors_removed.is_empty(), "{out:?}");
    assert!(out.added.is_empty() && out.changed.is_empty() && out.removed.is_empty(), "no proxy touched: {out:?}");
    assert!(!out.other_settings_changed, "a visitor edit needs no reconnect: {out:?}");
    wait_for(&client, "v2 listening", |s| listening(s, "v2", p2)).await;
    echoes(p2).await;
    roundtrip(&mut open, b"after v2 was added").await;
    let mut open2 = TcpStream::connect(("127.0.0.1", p2)).await.unwrap();
    roundtrip(&mut open2, b"through v2").await;

    // Change v2's port: its old listener and its open connection close, the new port works; v1 stays open.
    let out = client.reload(config(&format!("{base}{v1}{}", stcp_visitor("v2", "two", p3, ""))));
    assert_eq!((out.visitors_added.len(), out.visitors_changed.as_slice()), (0, &["v2".to_string()][..]));
    wait_for(&client, "v2 listening on its new port", |s| listening(s, "v2", p3)).await;
    closes(p2, "v2's old port").await;
    echoes(p3).await;
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(T, open2.read(&mut buf)).await.expect("v2's old connection ends in time");
    assert!(matches!(r, Ok(0) | Err(_)), "a changed visitor's connection ends: {r:?}");
    roundtrip(&mut open, b"after v2 was changed").await;

    // Remove v2: its listener closes, its status row goes; v1 stays open.
    let out = client.reload(config(&format!("{base}{v1}")));
    assert_eq!(out.visitors_removed, ["v2"]);
    closes(p3, "the removed visitor's port").await;
    wait_for(&client, "v2 left the status", |s| !s.visitors.contains_key("v2")).await;
    roundtrip(&mut open, b"after v2 was removed").await;

    // Disabled (`enabled = false` is left out at load, as frpc does): the same as removed.
    let disabled = config(&format!("{base}{v1}{}", stcp_visitor("v3", "two", p2, "enabled = false")));
    assert_eq!(disabled.visitors.len(), 1);
    assert_eq!(client.reload(disabled), Default::default(), "nothing changed");
    roundtrip(&mut open, b"at the end").await;
    assert!(
        provider.status().proxies.values().all(|p| matches!(p.state, ProxyState::Running { .. })),
        "the provider kept serving: {:#?}",
        provider.status()
    );
    client.stop().await.unwrap();
    provider.stop().await.unwrap();
    drop(server);
}
