//! The yamux session (`portway_proto::mux`) fed arbitrary bytes as its peer, on the server side (accepting
//! streams) and on the client side (one stream opened): it never panics, never hangs, ends when the peer closes,
//! and every stream it hands out ends too. Bogus stream ids, window updates for unknown streams, overruns of the
//! receive window, pings, GoAway and truncated frames all come from the input.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use portway_proto::mux::{MuxConfig, MuxSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config() -> MuxConfig {
    MuxConfig {
        // A small window so that overruns are reachable with short inputs.
        max_window: 256 * 1024,
        keepalive: None,
        write_timeout: Duration::from_secs(5),
        accept_backlog: 8,
    }
}

async fn run(data: &[u8], server: bool) {
    let (peer, ours) = tokio::io::duplex(64 * 1024);
    let (mut peer_rd, mut peer_wr) = tokio::io::split(peer);
    // Drain what the session writes (window updates, pings, resets) so it never blocks on a full pipe.
    let drain = tokio::spawn(async move {
        let mut sink = vec![0u8; 16 * 1024];
        while matches!(peer_rd.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let mut streams = Vec::new();
    if server {
        let (session, mut acceptor) = MuxSession::server(Box::new(ours), config());
        let feed = async {
            let _ = peer_wr.write_all(data).await;
            let _ = peer_wr.shutdown().await;
        };
        let accept = async {
            while let Some(s) = acceptor.accept().await {
                streams.push(s);
            }
        };
        tokio::join!(feed, accept);
        session.closed().await;
    } else {
        let session = MuxSession::client(Box::new(ours), config());
        if let Ok(s) = session.open() {
            streams.push(s);
        }
        let _ = peer_wr.write_all(data).await;
        let _ = peer_wr.shutdown().await;
        session.closed().await;
    }
    // Every stream reads to its end (data, then EOF or an error) once the session is gone.
    for mut s in streams {
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got).await;
        assert!(got.len() <= data.len());
    }
    drain.abort();
}

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    // Paused time: a hang would advance the clock to this deadline at once instead of stalling the fuzzer.
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), run(data, true)).await.expect("server session hung");
        tokio::time::timeout(Duration::from_secs(60), run(data, false)).await.expect("client session hung");
    });
});
