//! UDP proxies end to end on 127.0.0.1.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;
use tokio::net::UdpSocket;

/// A UDP echo service that also records every source address it saw.
async fn udp_echo() -> (u16, Arc<Mutex<Vec<SocketAddr>>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp echo");
    let port = sock.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            s2.lock().expect("lock").push(from);
            let _ = sock.send_to(&buf[..n], from).await;
        }
    });
    (port, seen)
}

fn udp_proxy(name: &str, local: u16, remote: u16) -> String {
    format!("[[proxies]]\nname = \"{name}\"\ntype = \"udp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {local}\nremotePort = {remote}\n")
}

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    init_logs();
    tokio::time::timeout(TEST_TIMEOUT, f).await.expect("test timed out");
}

/// Sends one datagram and waits for its echo.
async fn round_trip(sock: &UdpSocket, data: &[u8]) -> Vec<u8> {
    sock.send(data).await.expect("send");
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .expect("echo within 5 s")
        .expect("recv");
    buf[..n].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_datagrams_from_fifty_peers_come_back_intact_to_their_sender() {
    bounded(async {
        let (echo, _seen) = udp_echo().await;
        let server = start_server(&server_toml(""), 0).await;
        let remote = free_port();
        let h = start_client(client_config(&client_toml(server.addr.port(), "", &udp_proxy("voice", echo, remote))));
        wait_running(&h, &["voice"]).await;
        let peers: Vec<_> = (0..50u64)
            .map(|peer| {
                tokio::spawn(async move {
                    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind peer");
                    sock.connect(("127.0.0.1", remote)).await.expect("connect");
                    let mut ok = 0u32;
                    for i in 0..400u64 {
                        // Sizes from 1 byte to udpPacketSize (1500), tagged with peer and sequence.
                        let len = 1 + ((peer * 400 + i) * 7919 % 1500) as usize;
                        let mut data = pattern(len, peer * 1_000_003 + i);
                        let tag = (peer << 16 | i).to_be_bytes();
                        let k = len.min(8);
                        data[..k].copy_from_slice(&tag[8 - k..]);
                        let back = round_trip(&sock, &data).await;
                        assert_eq!(back, data, "peer {peer} datagram {i} ({len} bytes) altered or misrouted");
                        ok += 1;
                    }
                    ok
                })
            })
            .collect();
        let mut total = 0;
        for p in peers {
            total += p.await.expect("peer task");
        }
        assert_eq!(total, 20_000);
        // Counters are reported about once a second: every byte sent is counted both ways.
        wait_status(&h, Duration::from_secs(5), "byte counters", |s| {
            let v = &s.proxies["voice"];
            v.bytes_in > 20_000 && v.bytes_in == v.bytes_out
        })
        .await;
        h.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn oversized_datagrams_are_truncated_to_udp_packet_size_as_frp_does() {
    bounded(async {
        let (echo, _seen) = udp_echo().await;
        let server = start_server(&server_toml(""), 0).await;
        let remote = free_port();
        let h = start_client(client_config(&client_toml(server.addr.port(), "", &udp_proxy("voice", echo, remote))));
        wait_running(&h, &["voice"]).await;
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        sock.connect(("127.0.0.1", remote)).await.expect("connect");
        let exact = pattern(1500, 1);
        assert_eq!(round_trip(&sock, &exact).await, exact, "exactly udpPacketSize passes whole");
        let big = pattern(3000, 2);
        assert_eq!(round_trip(&sock, &big).await, big[..1500].to_vec(), "larger datagrams are cut at udpPacketSize");
        // The proxy keeps working afterwards.
        assert_eq!(round_trip(&sock, b"small").await, b"small");
        h.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn idle_sessions_expire_and_a_new_one_is_opened() {
    bounded(async {
        let (echo, seen) = udp_echo().await;
        let server = start_server(&server_toml(""), 0).await;
        let remote = free_port();
        let mut cfg = client_config(&client_toml(server.addr.port(), "", &udp_proxy("voice", echo, remote)));
        cfg.udp_idle_timeout = Duration::from_millis(800);
        let h = start_client(cfg);
        wait_running(&h, &["voice"]).await;
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        sock.connect(("127.0.0.1", remote)).await.expect("connect");
        round_trip(&sock, b"one").await;
        round_trip(&sock, b"two").await;
        tokio::time::sleep(Duration::from_millis(2000)).await;
        round_trip(&sock, b"three").await;
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], seen[1], "traffic within the idle timeout reuses the session");
        assert_ne!(seen[1], seen[2], "after idling, the peer gets a new session (new local source port)");
        h.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}
