//! Zero-copy relay between two plain TCP connections with splice(2) through a pipe per direction (Linux): the
//! bytes go socket → pipe → socket inside the kernel and never reach user space. Used by
//! [`crate::relay::relay_tcp_counted`] only when the work connection is a bare TCP stream (no TLS, no mux, no
//! WebSocket, no per-proxy encryption or compression): every layer needs the bytes in user space.
//!
//! Semantics are the user-space relay's: both directions run until both are closed, an end of stream is passed on
//! as a half-close (`shutdown(SHUT_WR)`), the first error of either side ends the relay and is returned.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{splice, FcntlArg, OFlag, SpliceFFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bytes moved per splice call at most (and the pipe's capacity asked for).
pub const SPLICE_CHUNK: usize = 64 * 1024;

/// Relays spliced so far in this process (to check where the zero-copy path is taken).
static SPLICED: AtomicU64 = AtomicU64::new(0);

/// How many relays have taken the splice path in this process.
pub fn spliced_relays() -> u64 {
    SPLICED.load(Ordering::Relaxed)
}

/// The environment variable that turns the splice path off for the whole process (`PORTWAY_NO_SPLICE=1`): every
/// relay then copies through user space as on the other transports. For measuring the two paths against each other
/// (docs/benchmarks.md) and as a way out should a kernel misbehave; read once, at the first relay.
pub const NO_SPLICE_ENV: &str = "PORTWAY_NO_SPLICE";

/// Whether bare TCP ⇄ TCP relays may use splice in this process: yes unless [`NO_SPLICE_ENV`] is set to anything
/// but empty or `0`.
pub fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os(NO_SPLICE_ENV).is_none_or(|v| v.is_empty() || v == "0"))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    // A larger pipe means fewer calls; the default (16 pages) is also fine if the limit forbids it.
    let _ = nix::fcntl::fcntl(&w, FcntlArg::F_SETPIPE_SZ(SPLICE_CHUNK as i32));
    Ok((r, w))
}

/// Copies `src` → `dst` until `src` ends, then half-closes `dst`. Returns the bytes moved.
async fn one_way(src: &TcpStream, dst: &TcpStream, live: Option<&AtomicU64>) -> io::Result<u64> {
    let (pr, pw) = pipe()?;
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let mut total = 0u64;
    let mut in_pipe = 0usize;
    let mut eof = false;
    loop {
        if in_pipe == 0 {
            if eof {
                break;
            }
            match src.try_io(Interest::READABLE, || {
                splice(src.as_fd(), None, &pw, None, SPLICE_CHUNK, flags).map_err(io::Error::from)
            }) {
                Ok(0) => eof = true,
                Ok(n) => {
                    in_pipe = n;
                    total += n as u64;
                    if let Some(l) = live {
                        l.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => src.readable().await?,
                Err(e) => return Err(e),
            }
            continue;
        }
        match dst.try_io(Interest::WRITABLE, || {
            splice(&pr, None, dst.as_fd(), None, in_pipe, flags).map_err(io::Error::from)
        }) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => in_pipe -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
            Err(e) => return Err(e),
        }
    }
    // Pass the end of stream on; the peer may already be gone (then the other direction reports it).
    let _ = nix::sys::socket::shutdown(std::os::fd::AsRawFd::as_raw_fd(dst), nix::sys::socket::Shutdown::Write);
    Ok(total)
}

/// Relays `a` ⇄ `b` with splice until both directions are closed. Returns bytes (a→b, b→a); `live` counters
/// (a→b, b→a) are updated as bytes pass.
pub async fn relay(a: &TcpStream, b: &TcpStream, live: Option<(&AtomicU64, &AtomicU64)>) -> io::Result<(u64, u64)> {
    SPLICED.fetch_add(1, Ordering::Relaxed);
    tokio::try_join!(one_way(a, b, live.map(|l| l.0)), one_way(b, a, live.map(|l| l.1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::BoxedIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A connected pair of TCP streams on 127.0.0.1.
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let c = TcpStream::connect(l.local_addr().expect("addr")).await.expect("connect");
        let (s, _) = l.accept().await.expect("accept");
        (c, s)
    }

    /// The splice tests run one at a time: one of them counts the relays that took the splice path.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    type Relay = tokio::task::JoinHandle<(io::Result<(u64, u64)>, [u64; 2])>;

    /// visitor ⇄ [relay_tcp: tcp, work] ⇄ service, the work side a bare TCP stream (the splice case) or `wrap`ped.
    /// The relay task returns its result and its live counters.
    async fn through_relay(wrap: fn(TcpStream) -> BoxedIo) -> (TcpStream, TcpStream, Relay) {
        let (visitor, mut tcp) = pair().await;
        let (work, service) = pair().await;
        let mut work = wrap(work);
        let t = tokio::spawn(async move {
            let live = [AtomicU64::new(0), AtomicU64::new(0)];
            let r = crate::relay::relay_tcp_counted(&mut tcp, &mut work, Some((&live[0], &live[1]))).await;
            (r, live.map(|l| l.into_inner()))
        });
        (visitor, service, t)
    }

    fn bare(s: TcpStream) -> BoxedIo {
        Box::new(s)
    }

    fn encrypted(s: TcpStream) -> BoxedIo {
        crate::relay::wrap_work_conn(Box::new(s), Some(&crate::crypto::Key::derive(b"k")), false)
    }

    #[tokio::test]
    async fn spliced_only_when_the_work_connection_is_bare_tcp() {
        let _one = ONE_AT_A_TIME.lock().await;
        let before = spliced_relays();
        let (mut v, mut s, t) = through_relay(bare).await;
        v.write_all(b"ping").await.expect("write");
        let mut b = [0u8; 4];
        s.read_exact(&mut b).await.expect("read");
        drop((v, s));
        let _ = t.await.expect("join");
        assert_eq!(spliced_relays(), before + 1, "bare TCP on both sides: spliced");
        // With per-proxy encryption the bytes must pass through user space: not spliced. (Run in one test so
        // no other splice runs between the two counts.)
        let (v, s, t) = through_relay(encrypted).await;
        drop((v, s));
        let _ = t.await.expect("join");
        assert_eq!(spliced_relays(), before + 1, "a layered work connection is not spliced");
    }

    /// Bytes both ways exactly, with half-close: the visitor finishes sending first and still receives everything.
    #[tokio::test]
    async fn bytes_and_half_close_survive_the_splice() {
        let _one = ONE_AT_A_TIME.lock().await;
        let (mut v, mut s, t) = through_relay(bare).await;
        let up: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let down: Vec<u8> = (0..2_000_000u32).map(|i| (i * 17 % 241) as u8).collect();
        let (up2, down2) = (up.clone(), down.clone());
        let visitor = tokio::spawn(async move {
            v.write_all(&up2).await.expect("write up");
            v.shutdown().await.expect("half-close");
            let mut got = Vec::new();
            v.read_to_end(&mut got).await.expect("read down");
            got
        });
        let service = tokio::spawn(async move {
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.expect("read up until the half-close");
            s.write_all(&down2).await.expect("write down after the half-close");
            s.shutdown().await.expect("close");
            got
        });
        assert!(service.await.expect("service") == up, "up bytes");
        assert!(visitor.await.expect("visitor") == down, "down bytes");
        let (r, live) = t.await.expect("join");
        assert_eq!(r.expect("relay ok"), (up.len() as u64, down.len() as u64));
        assert_eq!(live, [up.len() as u64, down.len() as u64], "live counters as the bytes passed");
    }

    /// A service that resets mid-transfer ends the relay with the error, and the visitor sees its connection end.
    #[tokio::test]
    async fn a_reset_mid_transfer_ends_the_relay_with_an_error() {
        let _one = ONE_AT_A_TIME.lock().await;
        let (mut v, s, t) = through_relay(bare).await;
        let writer = tokio::spawn(async move {
            let chunk = vec![7u8; 64 * 1024];
            let mut sent = 0u64;
            // Bounded: stops at the first error (the reset reaching the visitor) or after 1 GiB.
            while sent < (1 << 30) {
                if v.write_all(&chunk).await.is_err() {
                    return (sent, true);
                }
                sent += chunk.len() as u64;
            }
            (sent, false)
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // SO_LINGER 0: close sends RST instead of FIN.
        s.set_zero_linger().expect("linger");
        drop(s);
        let (r, _) =
            tokio::time::timeout(std::time::Duration::from_secs(20), t).await.expect("relay ends").expect("join");
        assert!(r.is_err(), "the reset is an error: {r:?}");
        let (_, failed) =
            tokio::time::timeout(std::time::Duration::from_secs(20), writer).await.expect("writer ends").expect("join");
        assert!(failed, "the visitor's connection ended too");
    }

    /// 4 GiB one way through the splice path, checked block by block (each 1 MiB block carries its number).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn four_gib_through_the_splice_path() {
        let _one = ONE_AT_A_TIME.lock().await;
        const BLOCK: usize = 1 << 20;
        const BLOCKS: u64 = 4096;
        let (mut v, mut s, t) = through_relay(bare).await;
        let base: Vec<u8> = (0..BLOCK).map(|i| (i % 253) as u8).collect();
        let b2 = base.clone();
        let sender = tokio::spawn(async move {
            let mut block = b2;
            for i in 0..BLOCKS {
                block[..8].copy_from_slice(&i.to_le_bytes());
                v.write_all(&block).await.expect("write");
            }
            v.shutdown().await.expect("half-close");
            v
        });
        let mut got = vec![0u8; BLOCK];
        let mut want = base;
        for i in 0..BLOCKS {
            s.read_exact(&mut got).await.expect("a whole block");
            want[..8].copy_from_slice(&i.to_le_bytes());
            assert!(got == want, "block {i} differs");
        }
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.expect("eof");
        assert!(rest.is_empty(), "nothing after 4 GiB");
        drop(s);
        drop(sender.await.expect("sender"));
        assert_eq!(t.await.expect("join").0.expect("relay ok").0, BLOCKS * BLOCK as u64);
    }
}
