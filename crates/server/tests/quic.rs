//! frp's QUIC transport between a Portway client and a Portway server, on 127.0.0.1: one QUIC connection per
//! client session, a stream per logical connection (control, each work connection), wire v1 and v2 on the
//! streams; tcp and udp proxies; a wrong token refused; a silent server reported within the dial timeout.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;
use support::*;

const SERVER: &str = "bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\n";

/// The client's transport lines (its serverPort is the server's QUIC port).
fn quic_client(wire: &str) -> String {
    format!("transport.protocol = \"quic\"\ntransport.wireProtocol = \"{wire}\"")
}

/// Byte `i` of the bulk pattern (not periodic at any power of two, so a misplaced chunk shows).
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i >> 20) as u8
}

/// Sends `len` pattern bytes through `port` and checks every byte that comes back, without holding it all.
async fn bulk_echo(port: u16, len: u64) {
    let c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut r, mut w) = c.into_split();
    let writer = tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        let mut off = 0u64;
        while off < len {
            let n = buf.len().min((len - off) as usize);
            for (k, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(off + k as u64);
            }
            w.write_all(&buf[..n]).await.unwrap();
            off += n as u64;
        }
        w.shutdown().await.unwrap();
    });
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    let read = async {
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            for (k, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, pattern(got + k as u64), "byte {} differs", got + k as u64);
            }
            got += n as u64;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read).await.expect("bulk echo did not finish within 120 s");
    writer.await.unwrap();
    assert_eq!(got, len, "echo length");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_and_udp_over_quic_with_wire_v1_and_v2() {
    for wire in ["v1", "v2"] {
        let (server, stats) = start_server_opts(SERVER, true).await;
        let t = quic_client(wire);
        let (h, web, voice) = tokio::time::timeout(Duration::from_secs(60), client_with_proxies(server.quic_port, &t))
            .await
            .unwrap_or_else(|_| panic!("{wire}: client did not come up over QUIC: {t}"));
        bulk_echo(web, 64 * 1024 * 1024).await;
        check_udp_echo(voice).await;
        let wires: Vec<_> = stats.wire_protocols().await.into_iter().map(|(_, w)| w).collect();
        assert_eq!(wires, [wire]);
        // Nothing went over the TCP bindPort: the session is on QUIC.
        let _ = h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_echo_connections_share_one_quic_connection() {
    let (server, stats) = start_server_opts(SERVER, true).await;
    let t = quic_client("v1");
    let (h, web, _) = client_with_proxies(server.quic_port, &t).await;
    let mut tasks = Vec::new();
    for i in 0..50u32 {
        tasks.push(tokio::spawn(async move {
            let data: Vec<u8> = (0..100_000u32).map(|k| (k.wrapping_mul(31).wrapping_add(i)) as u8).collect();
            check_tcp_echo(web, &data).await;
        }));
    }
    for t in tasks {
        tokio::time::timeout(T, t).await.expect("an echo connection hung").unwrap();
    }
    assert_eq!(stats.get().await.clients, 1);
    let _ = h.stop().await;
}

#[tokio::test]
async fn wrong_token_is_refused_over_quic() {
    let (server, _) = start_server_opts(SERVER, true).await;
    let toml = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"wrong\"\nloginFailExit = true\n\
         transport.protocol = \"quic\"\n",
        server.quic_port
    );
    let h = start_client(&toml);
    let err = tokio::time::timeout(T, h.wait()).await.unwrap().unwrap_err().to_string();
    assert!(err.contains("auth.token does not match"), "{err}");
    assert!(!err.contains("wrong"), "the token must not appear in the error: {err}");
}

#[tokio::test]
async fn silent_quic_server_is_reported_within_the_dial_timeout() {
    // A UDP port that swallows everything: no handshake ever completes.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sink.local_addr().unwrap().port();
    let toml = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {port}\nauth.token = \"t\"\nloginFailExit = true\n\
         transport.protocol = \"quic\"\ntransport.dialServerTimeout = 2\n"
    );
    let start = Instant::now();
    let h = start_client(&toml);
    let err = tokio::time::timeout(T, h.wait()).await.expect("no error within 20 s").unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("timed out after 2 s"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(15), "took {:?}", start.elapsed());
    drop(sink);
}

#[tokio::test]
async fn a_tcp_server_without_quic_is_not_reached_over_quic() {
    // quicBindPort off: the client's QUIC handshake to the TCP port's number gets no answer over UDP.
    let (server, _) = start_server_opts(SERVER, false).await;
    let toml = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"t\"\nloginFailExit = true\n\
         transport.protocol = \"quic\"\ntransport.dialServerTimeout = 2\n",
        server.port
    );
    let h = start_client(&toml);
    let err = tokio::time::timeout(T, h.wait()).await.unwrap().unwrap_err().to_string();
    assert!(err.contains("timed out") || err.contains("QUIC handshake"), "{err}");
}
