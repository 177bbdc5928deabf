//! Copying bytes between a visitor and a work connection, with frp's per-proxy layers.
//!
//! The relay holds no buffer of its own while a connection is idle: each read goes into a per-thread scratch
//! buffer and is written on at once; only what the destination does not take right away is copied into a
//! buffer owned by the connection, which is freed as soon as it has been written. A thousand idle tunnelled
//! connections therefore cost their sockets and task state, not 2 × 64 KiB each.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{ready, Context, Poll, Waker};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use crate::compress::CompressStream;
use crate::crypto::{CryptoStream, Key};
use crate::mux::MuxStream;
use crate::transport::BoxedIo;

/// Largest read per step, per direction (the size of the per-thread scratch buffer).
pub const RELAY_BUF: usize = 64 * 1024;

/// Most bytes one direction of a relay moves in one poll before the other tasks of its thread run: without a
/// bound, a relay whose source stays readable copied megabytes per poll (up to tokio's budget of 128 socket
/// operations) while the other connections' relays waited, and on one worker thread some of 8 concurrent bulk
/// transfers got 2 % of the others' bytes (docs/benchmarks.md, branch `fair8`).
pub const RELAY_TURN: usize = 256 * 1024;

/// How many task polls a tokio worker runs between two looks at its socket events while tasks are ready to run
/// (tokio's default is 61). A relay that has moved its [`RELAY_TURN`] wakes itself and is ready again at once,
/// while a relay whose socket ran dry waits for the worker to look at the events: at 61 polls of up to 256 KiB each
/// that look came every ~15 MiB of the other streams' bytes (~20 ms on one core), and of 8 bulk transfers sharing
/// a worker the ones whose receive windows had not grown early got 2-4 % of the others' bytes, for good. Every 8
/// polls (at most 2 MiB of relaying) they are served in turn. The price: a busy worker's zero-timeout look at the
/// events every 8 polls, 0.46 more `epoll_wait` per round trip (counted), no cost in time that alternated runs show;
/// 16 and 32 let streams starve again (docs/benchmarks.md, "tokio's event interval").
pub const EVENT_INTERVAL: u32 = 8;

/// The multi-threaded tokio runtime Portway's processes run on: tokio's defaults but for [`EVENT_INTERVAL`], with
/// [`TIMER_ANCHOR`] running.
pub fn runtime() -> io::Result<tokio::runtime::Runtime> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().event_interval(EVENT_INTERVAL).build()?;
    // Never ends: the runtime is dropped with the process (or by a caller that wants it gone), taking it along.
    rt.spawn(async {
        loop {
            tokio::time::sleep(TIMER_ANCHOR).await;
        }
    });
    Ok(rt)
}

/// The period of a timer that is always pending. tokio's timer wakes the event loop (a write to its eventfd)
/// whenever a timer is set that ends before every pending one; with none pending, that was
/// every connection's first timeout (the 10 s login and work-connection timeouts): 0.87 writes per connection on
/// the server (counted with strace). With this one pending, timeouts of more than 5 s are set without waking
/// anything; it costs one timer wake every 5 s (docs/benchmarks.md, "tokio's event interval").
pub const TIMER_ANCHOR: std::time::Duration = std::time::Duration::from_secs(5);

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; RELAY_BUF].into_boxed_slice());
}

/// Wraps a work connection in the proxy's layers, in frp's order: the application writes into compression,
/// which writes into encryption, which writes to the wire.
pub fn wrap_work_conn(conn: BoxedIo, encryption: Option<&Key>, compression: bool) -> BoxedIo {
    let conn: BoxedIo = match encryption {
        Some(k) => Box::new(CryptoStream::new(conn, k)),
        None => conn,
    };
    if compression {
        Box::new(CompressStream::new(conn))
    } else {
        conn
    }
}

/// Runs `fut` until it ends (`Some` of its output) or `cancel` fires (`None`): `tokio::select!` on
/// `cancel.cancelled()` and `fut`, cheaper per poll. `select!` polls the cancellation future at every wake of the
/// task, and each such poll takes the token's waiter lock to check the stored waker: about 320 instructions per
/// round trip through a relay in each process, as much as the relay's own step (counted with callgrind,
/// docs/benchmarks.md). Here the cancellation future is polled when the task's waker is new to it; otherwise
/// the waker it holds still wakes this task, and a look at the token's flag (one atomic load) does.
pub async fn until_cancelled<F: Future>(cancel: &CancellationToken, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut cancelled = pin!(cancel.cancelled());
    // The waker the cancellation future last registered.
    let mut registered: Option<Waker> = None;
    poll_fn(|cx| {
        if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            if cancel.is_cancelled() {
                return Poll::Ready(None);
            }
        } else {
            if cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            registered = Some(cx.waker().clone());
        }
        fut.as_mut().poll(cx).map(Some)
    })
    .await
}

/// One direction of a relay.
#[derive(Default)]
struct Half<'a> {
    /// Bytes read but not yet taken by the destination.
    pending: Bytes,
    need_flush: bool,
    read_done: bool,
    done: bool,
    bytes: u64,
    /// Stop copying at the first read that fills the whole scratch buffer (a bulk transfer), once what it read has
    /// been written: a TCP ⇄ TCP relay hands the direction to splice(2) from there (see [`relay_tcp_counted`]).
    stop_at_bulk: bool,
    /// Such a read happened.
    bulk: bool,
    /// Where bytes are also counted as they pass (a statistics counter shared with readers): one relaxed add per
    /// read of up to [`RELAY_BUF`] bytes, so the count is live without slowing the copy.
    live: Option<&'a AtomicU64>,
}

impl Half<'_> {
    fn count(&mut self, n: usize) {
        self.bytes += n as u64;
        if let Some(c) = self.live {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Writes out what is pending, and at the source's EOF flushes and shuts the destination down.
    fn poll_drain<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut W,
    ) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut *dst).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            // Once written out, the memory goes back rather than staying with an idle connection.
            self.pending.advance(n);
            self.need_flush = true;
        }
        if self.read_done && !self.done {
            ready!(self.poll_flush(cx, dst))?;
            ready!(Pin::new(&mut *dst).poll_shutdown(cx))?;
            self.done = true;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_flush<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut W,
    ) -> Poll<io::Result<()>> {
        if self.need_flush {
            ready!(Pin::new(&mut *dst).poll_flush(cx))?;
            self.need_flush = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Nothing to read now: push out what was written before waiting.
    fn poll_idle<W: AsyncWrite + Unpin + ?Sized>(&mut self, cx: &mut Context<'_>, dst: &mut W) -> Poll<io::Result<()>> {
        ready!(self.poll_flush(cx, dst))?;
        Poll::Pending
    }

    /// Copies through the per-thread scratch buffer, keeping only what the destination did not take.
    fn poll_copy<R, W>(&mut self, cx: &mut Context<'_>, src: &mut R, dst: &mut W) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        let mut turn = 0;
        loop {
            ready!(self.poll_drain(cx, dst))?;
            if self.read_done || self.bulk {
                return Poll::Ready(Ok(()));
            }
            if turn >= RELAY_TURN {
                // A turn's worth moved: to the back of the run queue, so that the other connections' relays on
                // this thread run before this one reads again (a wake from inside the poll is a yield in tokio).
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let step = SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                let mut rb = ReadBuf::new(&mut s[..]);
                ready!(Pin::new(&mut *src).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n == 0 {
                    self.read_done = true;
                    return Poll::Ready(Ok(()));
                }
                self.count(n);
                turn += n;
                self.bulk = self.stop_at_bulk && n == s.len();
                let mut off = 0;
                while off < n {
                    match Pin::new(&mut *dst).poll_write(cx, &s[off..n]) {
                        Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                        Poll::Ready(Ok(k)) => {
                            off += k;
                            self.need_flush = true;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => {
                            // The destination is full: keep the rest (and only the rest) until it drains.
                            self.pending = Bytes::copy_from_slice(&s[off..n]);
                            break;
                        }
                    }
                }
                Poll::Ready(Ok(()))
            });
            match step {
                Poll::Ready(r) => r?,
                Poll::Pending => return self.poll_idle(cx, dst),
            }
        }
    }

    /// Copies out of a multiplexed stream: received chunks are written on as they are, without a copy.
    fn poll_copy_chunks<W>(&mut self, cx: &mut Context<'_>, src: &mut MuxStream, dst: &mut W) -> Poll<io::Result<()>>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        loop {
            ready!(self.poll_drain(cx, dst))?;
            if self.read_done {
                return Poll::Ready(Ok(()));
            }
            match src.poll_read_chunk(cx, RELAY_BUF) {
                Poll::Ready(Ok(chunk)) if chunk.is_empty() => self.read_done = true,
                Poll::Ready(Ok(chunk)) => {
                    self.count(chunk.len());
                    self.pending = chunk;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return self.poll_idle(cx, dst),
            }
        }
    }
}

/// Both directions' progress: ready with the byte counts once both are done.
fn both(r1: Poll<()>, r2: Poll<()>, a: &Half, b: &Half) -> Poll<io::Result<(u64, u64)>> {
    if r1.is_ready() && r2.is_ready() {
        Poll::Ready(Ok((a.bytes, b.bytes)))
    } else {
        Poll::Pending
    }
}

/// [`relay`] between a TCP connection and a work connection, returning bytes (tcp→work, work→tcp). When the
/// work connection is a bare TCP stream (plain transport, no mux, no per-proxy layer), the kernel relays with
/// splice(2) (Linux); when it is a bare multiplexed stream, what it receives is written to the TCP connection
/// straight from the session's read buffer.
pub async fn relay_tcp(tcp: &mut tokio::net::TcpStream, work: &mut BoxedIo) -> io::Result<(u64, u64)> {
    relay_tcp_counted(tcp, work, None).await
}

/// [`relay_tcp`] that also adds the bytes to `live` counters (tcp→work, work→tcp) as they pass, for statistics
/// that must be current while a connection is open.
pub async fn relay_tcp_counted(
    tcp: &mut tokio::net::TcpStream,
    work: &mut BoxedIo,
    live: Option<(&AtomicU64, &AtomicU64)>,
) -> io::Result<(u64, u64)> {
    let mut up = Half { live: live.map(|l| l.0), ..Half::default() };
    let mut down = Half { live: live.map(|l| l.1), ..Half::default() };
    #[cfg(target_os = "linux")]
    if crate::splice::enabled() {
        if let Some(rest) = prefix_over_bare_tcp(work) {
            // Bytes that arrived with the work connection's last message (read with it in one call): written to
            // `tcp` first, so that the pair below is bare TCP and may splice.
            tokio::io::AsyncWriteExt::write_all(tcp, &rest).await?;
            down.count(rest.len());
        }
    }
    #[cfg(target_os = "linux")]
    if let Some(plain) = crate::splice::enabled().then(|| bare_tcp(work)).flatten() {
        // Both ends are bare TCP: the kernel moves the bytes of bulk transfers (see `relay_bare_tcp`).
        return relay_bare_tcp(tcp, plain, up, down).await;
    }
    let work_any: &mut dyn std::any::Any = &mut **work;
    let Some(mux) = work_any.downcast_mut::<MuxStream>() else {
        return relay_halves(tcp, work, up, down).await;
    };
    poll_fn(|cx| {
        let r1 = up.poll_copy(cx, tcp, mux)?;
        let r2 = down.poll_copy_chunks(cx, mux, tcp)?;
        both(r1, r2, &up, &down)
    })
    .await
}

/// The unread prefix of a [`Prefixed`](crate::transport::Prefixed) work connection right over a bare TCP stream
/// (taken out of it), when there is one.
#[cfg(target_os = "linux")]
fn prefix_over_bare_tcp(work: &mut BoxedIo) -> Option<Vec<u8>> {
    use crate::transport::Prefixed;
    let any: &mut dyn std::any::Any = &mut **work;
    let p = any.downcast_mut::<Prefixed<BoxedIo>>()?;
    if p.drained_inner_mut().is_some() {
        return None;
    }
    let inner: &mut dyn std::any::Any = &mut **p.inner_mut();
    inner.is::<tokio::net::TcpStream>().then(|| p.take_prefix())
}

/// The TCP stream under `work` when nothing sits between (a sniffed prefix already read counts as nothing).
#[cfg(target_os = "linux")]
fn bare_tcp(work: &mut BoxedIo) -> Option<&mut tokio::net::TcpStream> {
    use crate::transport::Prefixed;
    let any: &mut dyn std::any::Any = &mut **work;
    if any.is::<tokio::net::TcpStream>() {
        return any.downcast_mut::<tokio::net::TcpStream>();
    }
    any.downcast_mut::<Prefixed<BoxedIo>>()?.drained_inner_mut().and_then(bare_tcp)
}

/// TCP ⇄ TCP: each direction copies through user space until a read fills the whole scratch buffer (the sender
/// outruns the relay: a bulk transfer), then moves through a pipe with splice(2) until its end, unless both
/// connections are loopback ones ([`crate::splice::pays_between`]). Short exchanges (requests, echoes,
/// interactive sessions) never make a pipe: for them a pipe costs more than it saves (two more descriptors, four
/// more syscalls per connection, and a splice costs more than a copy of a few bytes).
#[cfg(target_os = "linux")]
async fn relay_bare_tcp(
    a: &mut tokio::net::TcpStream,
    b: &mut tokio::net::TcpStream,
    mut ab: Half<'_>,
    mut ba: Half<'_>,
) -> io::Result<(u64, u64)> {
    use crate::splice::SpliceDir;
    ab.stop_at_bulk = true;
    ba.stop_at_bulk = true;
    let (mut sab, mut sba): (Option<SpliceDir>, Option<SpliceDir>) = (None, None);
    // Whether this pair splices, asked at the first bulk read; whether the relay was counted as spliced.
    let (mut pays, mut counted) = (None, false);
    /// One direction: user space, then splice once it turned bulk.
    fn step(
        cx: &mut Context<'_>,
        (pays, counted): (&mut Option<bool>, &mut bool),
        half: &mut Half,
        spliced: &mut Option<SpliceDir>,
        src: &mut tokio::net::TcpStream,
        dst: &mut tokio::net::TcpStream,
    ) -> Poll<io::Result<()>> {
        while spliced.is_none() {
            ready!(half.poll_copy(cx, src, dst))?;
            if !half.bulk {
                return Poll::Ready(Ok(())); // ended in user space (and `dst` is shut down)
            }
            half.bulk = false;
            if !*pays.get_or_insert_with(|| crate::splice::pays_between(src, dst)) {
                half.stop_at_bulk = false; // stays in user space to the end
                continue;
            }
            if !std::mem::replace(counted, true) {
                crate::splice::count_spliced();
            }
            *spliced = Some(SpliceDir::default());
        }
        let Some(s) = spliced else { return Poll::Ready(Ok(())) };
        let before = s.bytes;
        let r = s.poll_copy(cx, src, dst, None);
        // `live` is counted by the half, so the statistics see one counter whatever path the bytes take.
        half.count((s.bytes - before) as usize);
        r
    }
    let (ab_bytes, ba_bytes) = poll_fn(|cx| {
        let r1 = step(cx, (&mut pays, &mut counted), &mut ab, &mut sab, a, b)?;
        let r2 = step(cx, (&mut pays, &mut counted), &mut ba, &mut sba, b, a)?;
        both(r1, r2, &ab, &ba)
    })
    .await?;
    Ok((ab_bytes, ba_bytes))
}

/// Copies both ways until both directions are closed, preserving half-close. Returns bytes (a→b, b→a).
/// Fails on the first error of either side, as [`tokio::io::copy_bidirectional`].
pub async fn relay<A, B>(a: &mut A, b: &mut B) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    relay_halves(a, b, Half::default(), Half::default()).await
}

/// [`relay`] that also adds the bytes to `live` counters (a→b, b→a) as they pass.
pub async fn relay_counted<A, B>(a: &mut A, b: &mut B, live: (&AtomicU64, &AtomicU64)) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let ab = Half { live: Some(live.0), ..Half::default() };
    let ba = Half { live: Some(live.1), ..Half::default() };
    relay_halves(a, b, ab, ba).await
}

async fn relay_halves<A, B>(a: &mut A, b: &mut B, mut ab: Half<'_>, mut ba: Half<'_>) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    poll_fn(|cx| {
        let r1 = ab.poll_copy(cx, a, b)?;
        let r2 = ba.poll_copy(cx, b, a)?;
        both(r1, r2, &ab, &ba)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A slow consumer: the relay must keep what the destination did not take and lose nothing.
    #[tokio::test]
    async fn relays_both_ways_through_small_pipes_with_half_close() {
        let (mut a_user, mut a) = tokio::io::duplex(1024);
        let (mut b, mut b_user) = tokio::io::duplex(777);
        let t = tokio::spawn(async move { relay(&mut a, &mut b).await });
        let up: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let down: Vec<u8> = (0..200_000u32).map(|i| (i * 17 % 241) as u8).collect();
        let (up2, down2) = (up.clone(), down.clone());
        let w1 = tokio::spawn(async move {
            a_user.write_all(&up2).await.unwrap();
            a_user.shutdown().await.unwrap();
            let mut got = Vec::new();
            a_user.read_to_end(&mut got).await.unwrap();
            got
        });
        let w2 = tokio::spawn(async move {
            let mut got = Vec::new();
            b_user.read_to_end(&mut got).await.unwrap();
            b_user.write_all(&down2).await.unwrap();
            b_user.shutdown().await.unwrap();
            got
        });
        assert_eq!(w2.await.unwrap(), up);
        assert_eq!(w1.await.unwrap(), down);
        assert_eq!(t.await.unwrap().unwrap(), (up.len() as u64, down.len() as u64));
    }

    /// A connected pair of TCP streams on 127.0.0.1.
    async fn tcp_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = tokio::net::TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        (a, l.accept().await.unwrap().0)
    }

    /// Bytes read together with a work connection's last message come back in front of it: the relay delivers
    /// them first, in order, counts them, and (Linux) leaves the pair bare TCP so it may still splice.
    #[tokio::test]
    async fn bytes_read_with_the_last_message_are_relayed_first() {
        let (mut user, mut user_far) = tcp_pair().await;
        let (work_far, work_near) = tcp_pair().await;
        let mut work: BoxedIo = Box::new(crate::transport::Prefixed::new(
            b"read with the message|".to_vec(),
            Box::new(work_near) as BoxedIo,
        ));
        #[cfg(target_os = "linux")]
        {
            assert!(bare_tcp(&mut work).is_none(), "a pending prefix hides the stream");
        }
        let t = tokio::spawn(async move {
            let r = relay_tcp(&mut user_far, &mut work).await;
            #[cfg(target_os = "linux")]
            if crate::splice::enabled() {
                assert!(bare_tcp(&mut work).is_some(), "the prefix was delivered: the pair is bare TCP again");
            }
            r
        });
        let mut work_far = work_far;
        work_far.write_all(b"then the rest").await.unwrap();
        work_far.shutdown().await.unwrap();
        let mut got = Vec::new();
        user.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"read with the message|then the rest");
        user.write_all(b"up").await.unwrap();
        user.shutdown().await.unwrap();
        let mut up = Vec::new();
        work_far.read_to_end(&mut up).await.unwrap();
        assert_eq!(up, b"up");
        assert_eq!(t.await.unwrap().unwrap(), (2, 35));
    }

    /// A waker that counts its wakes.
    struct Counting(std::sync::atomic::AtomicUsize);
    impl std::task::Wake for Counting {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn until_cancelled_gives_the_output_or_none_when_cancelled() {
        let cancel = CancellationToken::new();
        assert_eq!(until_cancelled(&cancel, async { 7 }).await, Some(7));
        // Cancelled while the future waits: the task is woken and gets `None`.
        let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
        let c2 = cancel.clone();
        let t = tokio::spawn(async move { until_cancelled(&c2, rx).await });
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!t.is_finished(), "the future is still pending and nothing was cancelled");
        cancel.cancel();
        assert!(tokio::time::timeout(std::time::Duration::from_secs(5), t).await.unwrap().unwrap().is_none());
        drop(tx);
        // Already cancelled: `None` without polling the future.
        assert_eq!(until_cancelled(&cancel, async { unreachable!("never polled") }).await, None::<()>);
    }

    /// Polled under one waker, then under another: the cancellation wakes the one it was polled with last.
    #[test]
    fn until_cancelled_follows_a_new_waker() {
        let cancel = CancellationToken::new();
        let mut fut = Box::pin(until_cancelled(&cancel, std::future::pending::<()>()));
        let (a, b) =
            (std::sync::Arc::new(Counting(Default::default())), std::sync::Arc::new(Counting(Default::default())));
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        for _ in 0..2 {
            assert!(fut.as_mut().poll(&mut Context::from_waker(&wa)).is_pending());
        }
        assert!(fut.as_mut().poll(&mut Context::from_waker(&wb)).is_pending());
        cancel.cancel();
        assert_eq!(b.0.load(Ordering::SeqCst), 1, "the last waker is woken");
        assert_eq!(a.0.load(Ordering::SeqCst), 0, "the replaced waker is not");
        assert_eq!(fut.as_mut().poll(&mut Context::from_waker(&wb)), Poll::Ready(None));
    }
}
