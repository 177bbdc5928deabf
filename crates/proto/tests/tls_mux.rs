//! The TLS + multiplexer path as the server and the client run it (frp's default transport): real TCP on
//! 127.0.0.1, rustls on both ends with Portway's TLS settings (`transport::client_config` / `server_config`), a
//! yamux session over it. Bulk in both directions at once arrives byte for byte, small messages keep
//! their order and round trips, and half-closes pass through.

use std::time::Duration;

use portway_proto::mux::{MuxConfig, MuxSession};
use portway_proto::transport::{self, ClientTls, ServerTls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn pattern(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed as u8).collect()
}

/// A client and a server session over one TLS connection (self-signed server certificate, not verified: frpc's
/// default).
async fn sessions() -> (MuxSession, portway_proto::mux::MuxAcceptor, MuxSession) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let acceptor =
        tokio_rustls::TlsAcceptor::from(transport::server_config(&ServerTls::default()).expect("server tls"));
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.expect("accept");
        transport::tune(&tcp);
        acceptor.accept(tcp).await.expect("TLS accept")
    });
    let tcp = TcpStream::connect(addr).await.expect("connect");
    transport::tune(&tcp);
    let cfg = transport::client_config(&ClientTls::default()).expect("client tls");
    let name = transport::server_name("127.0.0.1").expect("name");
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let client_tls = connector.connect(name, tcp).await.expect("TLS connect");
    let server_tls = server.await.expect("server task");
    let mux = MuxConfig::frp(Duration::from_secs(30));
    let client = MuxSession::client(Box::new(client_tls), mux);
    let (server, acc) = MuxSession::server(Box::new(server_tls), mux);
    (client, acc, server)
}

#[tokio::test]
async fn bulk_both_ways_and_small_messages_over_tls_and_mux() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (client, mut acc, _server) = sessions().await;
        // The far side: each stream echoes what it reads until the peer half-closes, then half-closes too.
        tokio::spawn(async move {
            while let Some(mut s) = acc.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 37 * 1024];
                    loop {
                        let n = s.read(&mut buf).await.expect("read");
                        if n == 0 {
                            break;
                        }
                        s.write_all(&buf[..n]).await.expect("echo");
                    }
                    s.shutdown().await.expect("half-close");
                });
            }
        });
        // Three bulk streams at once (each 12 MiB, written and read concurrently) ...
        let mut tasks = Vec::new();
        for seed in 0..3u32 {
            let s = client.open().expect("open");
            tasks.push(tokio::spawn(async move {
                let data = pattern(12 << 20, seed);
                let (mut rd, mut wr) = tokio::io::split(s);
                let d2 = data.clone();
                let w = tokio::spawn(async move {
                    wr.write_all(&d2).await.expect("write");
                    wr.shutdown().await.expect("shutdown");
                    wr
                });
                let mut back = Vec::with_capacity(data.len());
                rd.read_to_end(&mut back).await.expect("read back");
                let _ = w.await.expect("writer");
                assert_eq!(back.len(), data.len(), "stream {seed}: length");
                assert!(back == data, "stream {seed}: bytes differ");
            }));
        }
        // ... while another one trades small messages, each answered before the next is sent.
        let mut s = client.open().expect("open");
        for i in 0..500u32 {
            let msg = pattern(1 + (i as usize * 7) % 300, i);
            s.write_all(&msg).await.expect("write small");
            let mut back = vec![0u8; msg.len()];
            s.read_exact(&mut back).await.expect("read small");
            assert_eq!(back, msg, "message {i}");
        }
        s.shutdown().await.expect("shutdown");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.expect("EOF after half-close");
        assert!(rest.is_empty());
        for t in tasks {
            t.await.expect("bulk stream");
        }
    })
    .await
    .expect("the transfers finish within 60 s");
}
