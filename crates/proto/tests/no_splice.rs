//! `PORTWAY_NO_SPLICE=1` turns the zero-copy relay off for the process: a bare TCP ⇄ TCP relay, which would take
//! the splice path (see the unit tests in `src/splice.rs`), copies through user space instead, with the same bytes
//! and the same half-close. Its own test binary: the switch is read once per process.

use portway_proto::relay::relay_tcp;
use portway_proto::splice::{spliced_relays, NO_SPLICE_ENV};
use portway_proto::transport::BoxedIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let c = TcpStream::connect(l.local_addr().expect("addr")).await.expect("connect");
    let (s, _) = l.accept().await.expect("accept");
    (c, s)
}

#[test]
fn the_switch_keeps_bare_tcp_in_user_space() {
    // Set before the runtime and the first relay exist: no other thread reads the environment yet.
    std::env::set_var(NO_SPLICE_ENV, "1");
    assert!(!portway_proto::splice::enabled(), "{NO_SPLICE_ENV}=1 must turn the splice path off");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            let (mut visitor, mut tcp) = pair().await;
            let (work, mut service) = pair().await;
            let mut work: BoxedIo = Box::new(work);
            let relay = tokio::spawn(async move { relay_tcp(&mut tcp, &mut work).await });
            let data: Vec<u8> = (0..(4u32 << 20)).map(|i| (i * 7 + i / 251) as u8).collect();
            let sent = data.clone();
            let writer = tokio::spawn(async move {
                visitor.write_all(&sent).await.expect("visitor writes");
                visitor.shutdown().await.expect("visitor half-closes");
                let mut back = Vec::new();
                visitor.read_to_end(&mut back).await.expect("visitor reads");
                back
            });
            let mut got = Vec::new();
            service.read_to_end(&mut got).await.expect("service reads to the half-close");
            assert!(got == data, "bytes altered on the way to the service ({} of {} bytes)", got.len(), data.len());
            service.write_all(b"reply after half-close").await.expect("service replies");
            drop(service);
            assert_eq!(writer.await.expect("join"), b"reply after half-close");
            let (up, down) = relay.await.expect("join").expect("relay ends cleanly");
            assert_eq!((up, down), (4 << 20, 22));
            assert_eq!(spliced_relays(), 0, "with {NO_SPLICE_ENV}=1 no relay may take the splice path");
        })
        .await
        .expect("test timed out");
    });
}
