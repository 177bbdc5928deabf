//! Zero-copy relay between two plain TCP connections with splice(2) through a pipe per direction (Linux): the
//! bytes go socket → pipe → socket inside the kernel and never reach user space. Used by
//! [`crate::relay::relay_tcp_counted`] only when the work connection is a bare TCP stream (no TLS, no mux, no
//! WebSocket, no per-proxy encryption or compression): every layer needs the bytes in user space; and there only
//! for a direction that turned bulk, between connections where it pays ([`pays_between`]).
//!
//! Semantics are the user-space relay's: both directions run until both are closed, an end of stream is passed on
//! as a half-close (`shutdown(SHUT_WR)`), the first error of either side ends the relay and is returned.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use nix::fcntl::{splice, FcntlArg, OFlag, SpliceFFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// The pipe's capacity asked for, in bytes (the default, 16 pages, when the limit forbids it).
pub const SPLICE_CHUNK: usize = 64 * 1024;

/// Relays (or relay directions) that took the splice path so far in this process (to check where it is taken).
static SPLICED: AtomicU64 = AtomicU64::new(0);

/// How many relays have taken the splice path in this process.
pub fn spliced_relays() -> u64 {
    SPLICED.load(Ordering::Relaxed)
}

/// Counts one relay as spliced (see [`spliced_relays`]).
pub(crate) fn count_spliced() {
    SPLICED.fetch_add(1, Ordering::Relaxed);
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

/// The environment variable that lets bulk transfers between two loopback connections take the splice path
/// (`PORTWAY_SPLICE_LOOPBACK=1`); by default they stay in user space, where they are faster (see
/// [`pays_between`]). For measuring the splice path on one machine (`scripts/bench.sh --paths plain-splice`).
pub const SPLICE_LOOPBACK_ENV: &str = "PORTWAY_SPLICE_LOOPBACK";

/// 0: not read yet, 1: loopback pairs stay in user space, 2: they may splice.
static LOOPBACK: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Sets whether two loopback connections may splice (what [`SPLICE_LOOPBACK_ENV`] says otherwise).
pub fn allow_loopback(yes: bool) {
    LOOPBACK.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
}

fn loopback_allowed() -> bool {
    match LOOPBACK.load(Ordering::Relaxed) {
        0 => {
            let yes = std::env::var_os(SPLICE_LOOPBACK_ENV).is_some_and(|v| !v.is_empty() && v != "0");
            allow_loopback(yes);
            yes
        }
        v => v == 2,
    }
}

/// Whether a bulk transfer between `a` and `b` should move through a pipe: yes unless both are loopback
/// connections. Measured (docs/benchmarks.md, issue 16): splice takes 35-45 % of the relay's own CPU per byte
/// and most of its wake-ups away, but when both ends are loopback sockets the pages it passes on stay referenced
/// until the final reader has copied them, so the sending process cannot reuse its socket's page and allocates
/// fresh ones: the endpoints on the same machine pay more than the relay saves, and the user-space relay moved
/// 5-15 % more. With a network on either side the pages come from or go to a NIC and that cost does not arise.
/// Asked once per relay, at its first bulk read (two `getpeername` calls).
pub(crate) fn pays_between(a: &TcpStream, b: &TcpStream) -> bool {
    let lo = |s: &TcpStream| s.peer_addr().is_ok_and(|p| p.ip().is_loopback());
    loopback_allowed() || !(lo(a) && lo(b))
}

/// A pipe: read end, write end, and the bytes it holds at most.
struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    cap: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let (r, w) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        // A larger pipe means fewer calls; the default (16 pages) is also fine if the limit forbids it.
        let cap = match nix::fcntl::fcntl(&w, FcntlArg::F_SETPIPE_SZ(SPLICE_CHUNK as i32)) {
            Ok(n) if n > 0 => n as usize,
            _ => nix::fcntl::fcntl(&w, FcntlArg::F_GETPIPE_SZ).ok().filter(|n| *n > 0).map_or(4096, |n| n as usize),
        };
        Ok(Pipe { r, w, cap })
    }
}

const FLAGS: SpliceFFlags = SpliceFFlags::SPLICE_F_MOVE.union(SpliceFFlags::SPLICE_F_NONBLOCK);

/// One direction of a TCP → TCP relay through a pipe. The pipe is made at the first poll.
#[derive(Default)]
pub(crate) struct SpliceDir {
    pipe: Option<Pipe>,
    in_pipe: usize,
    eof: bool,
    done: bool,
    /// Bytes moved by this direction.
    pub(crate) bytes: u64,
}

impl SpliceDir {
    /// Moves `src` → `dst` until `src` ends, then half-closes `dst`; ready (again and again) once that is done.
    ///
    /// The pipe is filled while it has room and drained whenever `dst` takes bytes: reading does not wait for the
    /// pipe to be empty. With an empty pipe, EAGAIN from the socket → pipe splice means the socket is drained (its
    /// readiness is cleared and re-armed); with bytes in the pipe it may also mean the pipe is full (its slots hold
    /// socket fragments, not bytes), so readiness is left alone and the pipe drained first.
    pub(crate) fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        dst: &TcpStream,
        live: Option<&AtomicU64>,
    ) -> Poll<io::Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        if self.pipe.is_none() {
            self.pipe = Some(Pipe::new()?);
        }
        let Some(pipe) = &self.pipe else { return Poll::Ready(Ok(())) };
        // Bytes passed on in this poll: past a turn's worth the other tasks of the thread run first, as in the
        // user-space relay (`relay::Half::poll_copy`).
        let mut turn = 0;
        loop {
            let mut moved = false;
            if !self.eof && self.in_pipe < pipe.cap {
                let r = if self.in_pipe == 0 {
                    match src.poll_read_ready(cx) {
                        Poll::Ready(Ok(())) => Some(src.try_io(Interest::READABLE, || {
                            splice(src.as_fd(), None, &pipe.w, None, pipe.cap, FLAGS).map_err(io::Error::from)
                        })),
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => None,
                    }
                } else {
                    Some(
                        splice(src.as_fd(), None, &pipe.w, None, pipe.cap - self.in_pipe, FLAGS)
                            .map_err(io::Error::from),
                    )
                };
                match r {
                    Some(Ok(0)) => {
                        self.eof = true;
                        moved = true;
                    }
                    Some(Ok(n)) => {
                        self.in_pipe += n;
                        self.bytes += n as u64;
                        if let Some(l) = live {
                            l.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        moved = true;
                    }
                    // Readiness was cleared: poll again to register for the next edge (or see one that came since).
                    Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                        moved = self.in_pipe == 0 && src.poll_read_ready(cx).is_ready();
                    }
                    Some(Err(e)) => return Poll::Ready(Err(e)),
                    None => {}
                }
            }
            if self.in_pipe > 0 {
                match dst.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => match dst.try_io(Interest::WRITABLE, || {
                        splice(&pipe.r, None, dst.as_fd(), None, self.in_pipe, FLAGS).map_err(io::Error::from)
                    }) {
                        Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                        Ok(n) => {
                            self.in_pipe -= n;
                            turn += n;
                            moved = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            moved |= dst.poll_write_ready(cx).is_ready();
                        }
                        Err(e) => return Poll::Ready(Err(e)),
                    },
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if self.eof && self.in_pipe == 0 {
                // Pass the end of stream on; the peer may already be gone (then the other direction reports it).
                let _ =
                    nix::sys::socket::shutdown(std::os::fd::AsRawFd::as_raw_fd(dst), nix::sys::socket::Shutdown::Write);
                self.done = true;
                // The pipe goes back now rather than with the connection.
                self.pipe = None;
                return Poll::Ready(Ok(()));
            }
            if !moved {
                return Poll::Pending;
            }
            if turn >= crate::relay::RELAY_TURN {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
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

    /// One bulk transfer visitor → service through the relay: 1 MiB written at once (a full read for the relay);
    /// the service reads it back exactly when the work side is `bare` (encrypted, it sees ciphertext).
    async fn bulk_through(wrap: fn(TcpStream) -> BoxedIo, exact: bool) -> io::Result<(u64, u64)> {
        let (mut v, mut s, t) = through_relay(wrap).await;
        let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 13 % 251) as u8).collect();
        let sent = data.clone();
        let w = tokio::spawn(async move {
            v.write_all(&sent).await.expect("write");
            v.shutdown().await.expect("half-close");
            v
        });
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.expect("read");
        assert!(!exact || got == data, "bulk bytes ({} of {})", got.len(), data.len());
        drop((w.await.expect("writer"), s));
        t.await.expect("join").0
    }

    #[tokio::test]
    async fn spliced_only_when_the_work_connection_is_bare_tcp() {
        let _one = ONE_AT_A_TIME.lock().await;
        allow_loopback(true); // 127.0.0.1 on both sides: the tests measure the splice path itself
        let before = spliced_relays();
        bulk_through(bare, true).await.expect("relay ok");
        assert_eq!(spliced_relays(), before + 1, "bare TCP on both sides, a bulk transfer: spliced");
        // With per-proxy encryption the bytes must pass through user space: not spliced. (Run in one test so
        // no other splice runs between the two counts.)
        let _ = bulk_through(encrypted, false).await;
        assert_eq!(spliced_relays(), before + 1, "a layered work connection is not spliced");
    }

    /// By default two loopback connections stay in user space even for a bulk transfer (measured faster), with
    /// the same bytes.
    #[tokio::test]
    async fn loopback_pairs_stay_in_user_space_by_default() {
        let _one = ONE_AT_A_TIME.lock().await;
        allow_loopback(false);
        let before = spliced_relays();
        let r = bulk_through(bare, true).await;
        allow_loopback(true);
        assert_eq!(r.expect("relay ok").0, 1 << 20);
        assert_eq!(spliced_relays(), before, "loopback on both sides: not spliced");
    }

    /// Short exchanges (a request, its answer) never fill a read: they stay in user space, without a pipe, and
    /// the bytes and the half-close are the same.
    #[tokio::test]
    async fn short_exchanges_stay_in_user_space() {
        let _one = ONE_AT_A_TIME.lock().await;
        allow_loopback(true); // 127.0.0.1 on both sides: the tests measure the splice path itself
        let before = spliced_relays();
        let (mut v, mut s, t) = through_relay(bare).await;
        for i in 0..100u8 {
            v.write_all(&[i; 64]).await.expect("write");
            let mut b = [0u8; 64];
            s.read_exact(&mut b).await.expect("read");
            assert_eq!(b, [i; 64], "request {i}");
            s.write_all(&[!i; 100]).await.expect("answer");
            let mut a = [0u8; 100];
            v.read_exact(&mut a).await.expect("read the answer");
            assert_eq!(a, [!i; 100], "answer {i}");
        }
        v.shutdown().await.expect("half-close");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.expect("the half-close arrives");
        assert!(rest.is_empty());
        drop(s);
        let (r, live) = t.await.expect("join");
        assert_eq!(r.expect("relay ok"), (6400, 10_000));
        assert_eq!(live, [6400, 10_000]);
        assert_eq!(spliced_relays(), before, "no bulk transfer, no splice");
    }

    /// A destination slower than the source: the pipe fills (EAGAIN from a full pipe, not from an empty socket),
    /// the relay waits for the destination and loses and stalls nothing.
    #[tokio::test]
    async fn a_slow_reader_behind_a_full_pipe_gets_every_byte() {
        let _one = ONE_AT_A_TIME.lock().await;
        allow_loopback(true); // 127.0.0.1 on both sides: the tests measure the splice path itself
        let before = spliced_relays();
        let (mut v, mut s, t) = through_relay(bare).await;
        let data: Vec<u8> = (0..(12u32 << 20)).map(|i| (i * 29 % 247) as u8).collect();
        let sent = data.clone();
        let w = tokio::spawn(async move {
            v.write_all(&sent).await.expect("write");
            v.shutdown().await.expect("half-close");
            v
        });
        let mut got = Vec::with_capacity(data.len());
        let mut buf = vec![0u8; 8192];
        let reading = async {
            loop {
                let n = s.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                if got.len() % (256 << 10) < n {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), reading).await.expect("no stall");
        assert!(got == data, "bytes ({} of {})", got.len(), data.len());
        drop((w.await.expect("writer"), s));
        assert_eq!(t.await.expect("join").0.expect("relay ok").0, data.len() as u64);
        assert_eq!(spliced_relays(), before + 1, "spliced");
    }

    /// Bytes both ways exactly, with half-close: the visitor finishes sending first and still receives everything.
    #[tokio::test]
    async fn bytes_and_half_close_survive_the_splice() {
        let _one = ONE_AT_A_TIME.lock().await;
        allow_loopback(true); // 127.0.0.1 on both sides: the tests measure the splice path itself
        let before = spliced_relays();
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
        assert_eq!(spliced_relays(), before + 1, "switched to splice mid-stream");
    }

    /// A service that resets mid-transfer ends the relay with the error, and the visitor sees its connection end.
    #[tokio::test]
    async fn a_reset_mid_transfer_ends_the_relay_with_an_error() {
        let _one = ONE_AT_A_TIME.lock().await;
        allow_loopback(true); // 127.0.0.1 on both sides: the tests measure the splice path itself
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
        allow_loopback(true); // 127.0.0.1 on both sides: the tests measure the splice path itself
        let before = spliced_relays();
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
        assert_eq!(spliced_relays(), before + 1, "spliced");
    }
}
