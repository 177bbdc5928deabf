//! A yamux session, wire-compatible with `fatedier/yamux` (hashicorp's) as frp configures it.
//!
//! One reader task parses frames and fills per-stream receive buffers; one writer task drains a shared output
//! buffer, so frames from many streams leave in large batched writes. Streams are [`MuxStream`]s
//! (`AsyncRead + AsyncWrite`). Flow control follows yamux: 256 KiB initial window, grown to the configured maximum
//! (frp: 6 MiB) by the SYN/ACK window updates, replenished once half of it has been consumed.
//!
//! Invariants: the session lock is never held across an `.await`; memory per stream is bounded by its receive
//! window (a peer that overruns it is a protocol error that ends the session); the shared output buffer is bounded
//! by [`WBUF_HIGH`] plus one frame per writer.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::transport::BoxedIo;
use crate::yamux::{flags, FrameType, Header, HEADER_LEN, INITIAL_WINDOW};

/// Above this many pending output bytes, writers wait for the writer task.
pub const WBUF_HIGH: usize = 256 * 1024;
/// Largest data frame Portway sends.
const MAX_FRAME: usize = 128 * 1024;

/// Session settings.
#[derive(Debug, Clone, Copy)]
pub struct MuxConfig {
    /// Receive window each stream grows to (frp: 6 MiB).
    pub max_window: u32,
    /// Keepalive ping period (frp: `tcpMuxKeepaliveInterval`, 30 s); `None` disables.
    pub keepalive: Option<Duration>,
    /// A ping unanswered or a write stalled this long kills the session (frp: 10 s).
    pub write_timeout: Duration,
    /// Inbound streams waiting to be accepted (frp: 256). Beyond that the session's reader waits up to 2 s for
    /// the acceptor before it resets a new stream (frp resets at once: a burst of 1,000 opens lost some).
    pub accept_backlog: usize,
}

impl MuxConfig {
    /// frp's settings with the given keepalive interval.
    pub fn frp(keepalive: Duration) -> Self {
        MuxConfig {
            max_window: crate::yamux::FRP_MAX_STREAM_WINDOW,
            keepalive: Some(keepalive),
            write_timeout: Duration::from_secs(10),
            accept_backlog: 256,
        }
    }
}

/// Why a session or stream failed.
#[derive(Debug, thiserror::Error, Clone)]
pub enum MuxError {
    /// The session ended.
    #[error("the multiplexed connection is closed{}", .0.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed(Option<String>),
    /// The peer sent GoAway.
    #[error("the peer is shutting down its multiplexed connection (GoAway)")]
    GoAway,
    /// Stream ids exhausted.
    #[error("stream ids exhausted on this connection")]
    IdsExhausted,
}

struct StreamState {
    recv: VecDeque<Bytes>,
    /// Bytes the peer may still send before we grant more.
    recv_window: u32,
    /// Consumed by the application since the last update we sent.
    consumed: u32,
    send_window: u32,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    remote_fin: bool,
    local_fin: bool,
    reset: bool,
}

impl StreamState {
    fn new(recv_window: u32, send_window: u32) -> Self {
        StreamState {
            recv: VecDeque::new(),
            recv_window,
            consumed: 0,
            send_window,
            read_waker: None,
            write_waker: None,
            remote_fin: false,
            local_fin: false,
            reset: false,
        }
    }

    fn wake_all(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
}

struct Inner {
    streams: HashMap<u32, StreamState>,
    wbuf: Vec<u8>,
    blocked: Vec<Waker>,
    next_id: u32,
    closed: Option<String>,
    go_away: bool,
    ping_id: u32,
    ping_sent: Option<(u32, tokio::time::Instant)>,
}

struct Shared {
    inner: Mutex<Inner>,
    cfg: MuxConfig,
    wake_writer: Notify,
    done: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a panic elsewhere already broke the session; keep going to let it close.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push_frame(inner: &mut Inner, h: Header, data: &[u8]) {
        inner.wbuf.extend_from_slice(&h.encode());
        inner.wbuf.extend_from_slice(data);
    }

    fn fail(&self, reason: String) {
        let mut g = self.lock();
        if g.closed.is_none() {
            debug!(reason = %reason, "yamux session closed");
            g.closed = Some(reason);
        }
        for s in g.streams.values_mut() {
            s.wake_all();
        }
        for w in g.blocked.drain(..) {
            w.wake();
        }
        drop(g);
        self.done.cancel();
        self.wake_writer.notify_one();
    }
}

/// A yamux session over one connection. Cloning gives another handle to the same session.
#[derive(Clone)]
pub struct MuxSession {
    shared: Arc<Shared>,
}

/// Inbound streams of a server-side session.
pub struct MuxAcceptor {
    rx: mpsc::Receiver<MuxStream>,
}

impl MuxAcceptor {
    /// The next stream the peer opened; `None` once the session is closed.
    pub async fn accept(&mut self) -> Option<MuxStream> {
        self.rx.recv().await
    }
}

impl MuxSession {
    /// Starts a client session (opens odd stream ids). Spawns its reader and writer tasks.
    pub fn client(io: BoxedIo, cfg: MuxConfig) -> MuxSession {
        Self::start(io, cfg, 1).0
    }

    /// Starts a server session (accepts streams).
    pub fn server(io: BoxedIo, cfg: MuxConfig) -> (MuxSession, MuxAcceptor) {
        Self::start(io, cfg, 2)
    }

    fn start(io: BoxedIo, cfg: MuxConfig, first_id: u32) -> (MuxSession, MuxAcceptor) {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                streams: HashMap::new(),
                wbuf: Vec::with_capacity(256 * 1024),
                blocked: Vec::new(),
                next_id: first_id,
                closed: None,
                go_away: false,
                ping_id: 0,
                ping_sent: None,
            }),
            cfg,
            wake_writer: Notify::new(),
            done: CancellationToken::new(),
        });
        let (rd, wr) = tokio::io::split(io);
        let (tx, rx) = mpsc::channel(cfg.accept_backlog.max(1));
        let accept = first_id.is_multiple_of(2).then_some(tx);
        tokio::spawn(reader(shared.clone(), rd, accept));
        tokio::spawn(writer(shared.clone(), wr));
        if let Some(k) = cfg.keepalive {
            tokio::spawn(keepalive(shared.clone(), k));
        }
        (MuxSession { shared }, MuxAcceptor { rx })
    }

    /// Opens a stream: sends the SYN window update at once (no round trip is awaited, as in yamux).
    pub fn open(&self) -> Result<MuxStream, MuxError> {
        let sh = &self.shared;
        let mut g = sh.lock();
        if let Some(r) = &g.closed {
            return Err(MuxError::Closed(Some(r.clone())));
        }
        if g.go_away {
            return Err(MuxError::GoAway);
        }
        let id = g.next_id;
        g.next_id = id.checked_add(2).ok_or(MuxError::IdsExhausted)?;
        let delta = sh.cfg.max_window.saturating_sub(INITIAL_WINDOW);
        g.streams.insert(id, StreamState::new(INITIAL_WINDOW + delta, INITIAL_WINDOW));
        Shared::push_frame(
            &mut g,
            Header { kind: FrameType::WindowUpdate, flags: flags::SYN, stream_id: id, length: delta },
            &[],
        );
        drop(g);
        sh.wake_writer.notify_one();
        Ok(MuxStream { shared: sh.clone(), id })
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.done.is_cancelled()
    }

    /// Resolves when the session ends.
    pub async fn closed(&self) {
        self.shared.done.cancelled().await
    }

    /// Closes the session and every stream.
    pub fn close(&self) {
        self.shared.fail("closed locally".into());
    }

    /// Number of open streams (for tests and metrics).
    pub fn stream_count(&self) -> usize {
        self.shared.lock().streams.len()
    }
}

/// Bytes asked of the connection per read.
const READ_CHUNK: usize = 256 * 1024;
/// Data frames at least this long are handed to their stream as a slice of the read buffer (no copy); shorter
/// ones are copied out, so a small unread frame never pins a whole read buffer.
const ZERO_COPY_MIN: usize = 8 * 1024;

/// The reader's receive buffer. Data frames of [`ZERO_COPY_MIN`] bytes or more leave it as slices (no copy), so
/// while they are queued in their streams the reader must go on in another buffer. The buffers it leaves are kept
/// (up to [`SPARE_BUFS`]) and read into again once their frames are gone: in a bulk transfer the reader cycles
/// through the same few allocations instead of a fresh one per [`READ_CHUNK`], which the allocator would give back
/// to the kernel and fault in again page by page (70-84 page faults per MB received, before this).
struct RecvBuf {
    buf: BytesMut,
    /// `buf` was allocated larger than [`READ_CHUNK`] (for one very large frame): not kept once left.
    big: bool,
    spare: Vec<BytesMut>,
}

/// Buffers a session's reader keeps beside its current one (each [`READ_CHUNK`] bytes).
const SPARE_BUFS: usize = 4;

impl RecvBuf {
    fn new() -> Self {
        RecvBuf { buf: BytesMut::with_capacity(READ_CHUNK), big: false, spare: Vec::new() }
    }

    /// Makes room to read at least `need` more bytes (and at least a page) into `buf`, keeping its contents.
    fn make_room(&mut self, need: usize) {
        let len = self.buf.len();
        let room = self.buf.capacity() - len;
        if room >= need && room >= 4096 {
            return;
        }
        let total = READ_CHUNK.max(len + need.max(4096));
        // The current buffer, if nothing else holds a slice of it any more (its bytes move to the front).
        if self.buf.try_reclaim(total - len) {
            return;
        }
        let reused = self.spare.iter_mut().position(|s| {
            s.clear();
            s.try_reclaim(total)
        });
        let mut next = match reused {
            Some(i) => self.spare.swap_remove(i),
            None => BytesMut::with_capacity(total),
        };
        next.extend_from_slice(&self.buf);
        let mut old = std::mem::replace(&mut self.buf, next);
        // Only buffers of the usual size are kept: one grown for a very large frame is freed with its frames.
        if !self.big && self.spare.len() < SPARE_BUFS {
            old.clear();
            self.spare.push(old);
        }
        self.big = reused.is_none() && total > READ_CHUNK;
    }
}

/// Reads until `rb.buf` holds at least `n` bytes. EOF before that is an `UnexpectedEof` error.
async fn fill<R: AsyncRead + Unpin>(rd: &mut R, rb: &mut RecvBuf, n: usize) -> io::Result<()> {
    while rb.buf.len() < n {
        rb.make_room(n - rb.buf.len());
        if rd.read_buf(&mut rb.buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

async fn reader(sh: Arc<Shared>, mut rd: tokio::io::ReadHalf<BoxedIo>, accept: Option<mpsc::Sender<MuxStream>>) {
    let mut rb = RecvBuf::new();
    let reason = loop {
        let r = tokio::select! {
            _ = sh.done.cancelled() => break "closed".to_string(),
            r = fill(&mut rd, &mut rb, HEADER_LEN) => r,
        };
        if let Err(e) = r {
            break if e.kind() == io::ErrorKind::UnexpectedEof {
                "peer closed the connection".into()
            } else {
                e.to_string()
            };
        }
        let buf = &mut rb.buf;
        let h = match Header::decode(&buf[..HEADER_LEN]) {
            Ok(Some(h)) => h,
            Ok(None) => break "short header".into(),
            Err(e) => break e.to_string(),
        };
        buf.advance(HEADER_LEN);
        match h.kind {
            FrameType::Data => {
                // Check the window before reading the body: a peer cannot make us buffer more than we granted.
                let allowed = {
                    let g = sh.lock();
                    g.streams.get(&h.stream_id).map(|s| s.recv_window)
                };
                let len = h.length as usize;
                if let Some(w) = allowed {
                    if h.length > w {
                        break format!("peer overran stream {}'s receive window ({} > {w})", h.stream_id, h.length);
                    }
                } else if h.flags & flags::SYN == 0 || h.length > INITIAL_WINDOW {
                    // Data for a stream we do not know (already closed): discard it.
                    if let Err(e) = discard(&mut rd, &mut rb, len).await {
                        break e.to_string();
                    }
                    continue;
                }
                if let Err(e) = fill(&mut rd, &mut rb, len).await {
                    break e.to_string();
                }
                let buf = &mut rb.buf;
                let data = if len >= ZERO_COPY_MIN {
                    buf.split_to(len).freeze()
                } else {
                    let d = Bytes::copy_from_slice(&buf[..len]);
                    buf.advance(len);
                    d
                };
                match on_stream_frame(&sh, &accept, h, Some(data)) {
                    Ok(Some(s)) => deliver(&sh, accept.as_ref().expect("only servers accept"), s).await,
                    Ok(None) => {}
                    Err(r) => break r,
                }
            }
            FrameType::WindowUpdate => match on_stream_frame(&sh, &accept, h, None) {
                Ok(Some(s)) => deliver(&sh, accept.as_ref().expect("only servers accept"), s).await,
                Ok(None) => {}
                Err(r) => break r,
            },
            FrameType::Ping => {
                let mut g = sh.lock();
                if h.flags & flags::SYN != 0 {
                    Shared::push_frame(
                        &mut g,
                        Header { kind: FrameType::Ping, flags: flags::ACK, stream_id: 0, length: h.length },
                        &[],
                    );
                    drop(g);
                    sh.wake_writer.notify_one();
                } else if h.flags & flags::ACK != 0 && g.ping_sent.map(|(id, _)| id) == Some(h.length) {
                    g.ping_sent = None;
                }
            }
            FrameType::GoAway => {
                sh.lock().go_away = true;
            }
        }
    };
    sh.fail(reason);
}

/// Skips `len` body bytes, from what is buffered first, without holding more than one read chunk.
async fn discard<R: AsyncRead + Unpin>(rd: &mut R, rb: &mut RecvBuf, mut len: usize) -> io::Result<()> {
    loop {
        let k = len.min(rb.buf.len());
        rb.buf.advance(k);
        len -= k;
        if len == 0 {
            return Ok(());
        }
        fill(rd, rb, 1).await?;
    }
}

/// Applies a Data or WindowUpdate frame to its stream (creating it on SYN for servers).
fn on_stream_frame(
    sh: &Arc<Shared>,
    accept: &Option<mpsc::Sender<MuxStream>>,
    h: Header,
    data: Option<Bytes>,
) -> Result<Option<MuxStream>, String> {
    let mut g = sh.lock();
    let id = h.stream_id;
    if h.flags & flags::SYN != 0 && !g.streams.contains_key(&id) {
        let Some(tx) = accept else {
            // Clients accept no streams: refuse.
            Shared::push_frame(
                &mut g,
                Header { kind: FrameType::WindowUpdate, flags: flags::RST, stream_id: id, length: 0 },
                &[],
            );
            drop(g);
            sh.wake_writer.notify_one();
            return Ok(None);
        };
        if id == 0 || id.is_multiple_of(2) {
            return Err(format!("peer opened stream {id}, which is not a client stream id"));
        }
        let delta = sh.cfg.max_window.saturating_sub(INITIAL_WINDOW);
        let send_window =
            if h.kind == FrameType::WindowUpdate { INITIAL_WINDOW.saturating_add(h.length) } else { INITIAL_WINDOW };
        let mut st = StreamState::new(INITIAL_WINDOW + delta, send_window);
        apply(&mut st, Header { flags: h.flags & !flags::SYN, ..h }, data)?;
        g.streams.insert(id, st);
        Shared::push_frame(
            &mut g,
            Header { kind: FrameType::WindowUpdate, flags: flags::ACK, stream_id: id, length: delta },
            &[],
        );
        drop(g);
        sh.wake_writer.notify_one();
        let stream = MuxStream { shared: sh.clone(), id };
        return match tx.try_send(stream) {
            Ok(()) => Ok(None),
            // A burst of opens outran the accept loop: the reader waits for room (see `deliver`).
            Err(mpsc::error::TrySendError::Full(s)) => Ok(Some(s)),
            Err(mpsc::error::TrySendError::Closed(s)) => {
                refuse(s);
                Ok(None)
            }
        };
    }
    // A frame for a stream already gone (or a bogus id) is ignored. State stays until the handle drops.
    if let Some(s) = g.streams.get_mut(&id) {
        if h.kind == FrameType::WindowUpdate {
            s.send_window = s.send_window.saturating_add(h.length);
        }
        apply(s, h, data)?;
    }
    Ok(None)
}

/// How long the reader waits for the accept loop when a burst of opened streams fills the backlog, before it
/// refuses the stream. Frames of other streams wait meanwhile (back-pressure, as a listen backlog gives), so a peer
/// that opens a thousand connections at once gets them all rather than resets; an acceptor that is stuck still
/// cannot stall the session for longer than this per stream.
const ACCEPT_WAIT: Duration = Duration::from_secs(2);

/// Hands `stream` to the acceptor once the backlog has room, or refuses it (RST) after [`ACCEPT_WAIT`] or when the
/// session closes.
async fn deliver(sh: &Shared, tx: &mpsc::Sender<MuxStream>, stream: MuxStream) {
    let permit = tokio::select! {
        _ = sh.done.cancelled() => None,
        r = tokio::time::timeout(ACCEPT_WAIT, tx.reserve()) => r.ok().and_then(Result::ok),
    };
    match permit {
        Some(p) => p.send(stream),
        None => refuse(stream),
    }
}

/// Resets a stream the acceptor will never see. Marking it reset first makes the handle's drop silent.
fn refuse(stream: MuxStream) {
    let sh = stream.shared.clone();
    let mut g = sh.lock();
    if let Some(st) = g.streams.get_mut(&stream.id) {
        st.reset = true;
    }
    Shared::push_frame(
        &mut g,
        Header { kind: FrameType::WindowUpdate, flags: flags::RST, stream_id: stream.id, length: 0 },
        &[],
    );
    drop(g);
    drop(stream);
    sh.wake_writer.notify_one();
}

fn apply(s: &mut StreamState, h: Header, data: Option<Bytes>) -> Result<(), String> {
    if let Some(d) = data {
        if !d.is_empty() {
            s.recv_window -= d.len() as u32;
            s.recv.push_back(d);
        }
    }
    if h.flags & flags::FIN != 0 {
        s.remote_fin = true;
    }
    if h.flags & flags::RST != 0 {
        s.reset = true;
    }
    s.wake_all();
    Ok(())
}

/// Writes smaller than this, with more than one stream open, make the writer yield once before the next one
/// (see [`writer`]).
const BATCH_BELOW: usize = 16 * 1024;

async fn writer(sh: Arc<Shared>, mut wr: tokio::io::WriteHalf<BoxedIo>) {
    let mut out: Vec<u8> = Vec::with_capacity(256 * 1024);
    loop {
        let closed = {
            let mut g = sh.lock();
            std::mem::swap(&mut g.wbuf, &mut out);
            for w in g.blocked.drain(..) {
                w.wake();
            }
            g.closed.is_some()
        };
        let last_len = out.len();
        if !out.is_empty() {
            let r = tokio::time::timeout(sh.cfg.write_timeout, async {
                wr.write_all(&out).await?;
                wr.flush().await
            })
            .await;
            out.clear();
            match r {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => {
                    sh.fail(format!("write failed: {e}"));
                    break;
                }
                Err(_) => {
                    sh.fail(format!("write stalled for {:?}", sh.cfg.write_timeout));
                    break;
                }
            }
        }
        if closed {
            break;
        }
        sh.wake_writer.notified().await;
        // Many streams trading small frames (HTTP requests over a vhost): let the other ready tasks run first, so
        // the frames they queue now go out in the same write (one TLS record batch, one syscall) instead of one
        // write each. Not for one stream (a round trip would wait a scheduler pass) or bulk writes (already large).
        if last_len < BATCH_BELOW && sh.lock().streams.len() > 1 {
            tokio::task::yield_now().await;
        }
    }
    let _ = wr.shutdown().await;
}

async fn keepalive(sh: Arc<Shared>, every: Duration) {
    let mut t = tokio::time::interval(every);
    t.tick().await;
    let mut check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = sh.done.cancelled() => return,
            _ = t.tick() => {
                let mut g = sh.lock();
                if g.ping_sent.is_none() {
                    g.ping_id = g.ping_id.wrapping_add(1);
                    let id = g.ping_id;
                    g.ping_sent = Some((id, tokio::time::Instant::now()));
                    Shared::push_frame(&mut g, Header { kind: FrameType::Ping, flags: flags::SYN, stream_id: 0, length: id }, &[]);
                    drop(g);
                    sh.wake_writer.notify_one();
                }
            }
            _ = check.tick() => {
                let late = sh.lock().ping_sent.is_some_and(|(_, at)| at.elapsed() > sh.cfg.write_timeout);
                if late {
                    sh.fail(format!("keepalive ping unanswered for {:?}", sh.cfg.write_timeout));
                    return;
                }
            }
        }
    }
}

/// One yamux stream.
pub struct MuxStream {
    shared: Arc<Shared>,
    id: u32,
}

impl MuxStream {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl MuxStream {
    /// Waits for received data and lets `take` consume some of it (returning what it took and how many bytes);
    /// grants the peer more window once half of it has been consumed. `eof` is returned at the end of the stream.
    fn poll_take<T>(
        &self,
        cx: &mut Context<'_>,
        eof: T,
        take: impl FnOnce(&mut VecDeque<Bytes>) -> (T, usize),
    ) -> Poll<io::Result<T>> {
        let sh = &self.shared;
        let mut g = sh.lock();
        let closed = g.closed.is_some();
        let Some(s) = g.streams.get_mut(&self.id) else {
            return Poll::Ready(Ok(eof));
        };
        if s.recv.is_empty() {
            if s.remote_fin {
                return Poll::Ready(Ok(eof));
            }
            if s.reset {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, "stream reset by peer")));
            }
            if closed {
                let r = g.closed.clone().unwrap_or_default();
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, r)));
            }
            s.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let (out, n) = take(&mut s.recv);
        s.consumed += n as u32;
        let max = sh.cfg.max_window;
        if s.consumed >= max / 2 && !s.reset {
            let delta = s.consumed;
            s.recv_window += delta;
            s.consumed = 0;
            Shared::push_frame(
                &mut g,
                Header { kind: FrameType::WindowUpdate, flags: 0, stream_id: self.id, length: delta },
                &[],
            );
            drop(g);
            sh.wake_writer.notify_one();
        }
        Poll::Ready(Ok(out))
    }

    /// Like `poll_read`, but hands over the next received chunk (at most `max` bytes) without copying it.
    /// An empty chunk means the end of the stream.
    pub fn poll_read_chunk(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<Bytes>> {
        self.poll_take(cx, Bytes::new(), |recv| {
            let Some(front) = recv.front_mut() else { return (Bytes::new(), 0) };
            let chunk = if front.len() <= max { recv.pop_front().unwrap_or_default() } else { front.split_to(max) };
            let n = chunk.len();
            (chunk, n)
        })
    }
}

impl AsyncRead for MuxStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.poll_take(cx, (), |recv| {
            let mut n = 0;
            while buf.remaining() > 0 {
                let Some(front) = recv.front_mut() else { break };
                let k = front.len().min(buf.remaining());
                buf.put_slice(&front[..k]);
                n += k;
                if k == front.len() {
                    recv.pop_front();
                } else {
                    front.advance(k);
                }
            }
            ((), n)
        })
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let sh = &self.shared;
        let mut g = sh.lock();
        if let Some(r) = &g.closed {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, r.clone())));
        }
        if g.wbuf.len() >= WBUF_HIGH {
            g.blocked.push(cx.waker().clone());
            return Poll::Pending;
        }
        let Some(s) = g.streams.get_mut(&self.id) else {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        };
        if s.reset {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, "stream reset by peer")));
        }
        if s.local_fin {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "write after shutdown")));
        }
        if s.send_window == 0 {
            s.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(s.send_window as usize).min(MAX_FRAME);
        s.send_window -= n as u32;
        Shared::push_frame(
            &mut g,
            Header { kind: FrameType::Data, flags: 0, stream_id: self.id, length: n as u32 },
            &buf[..n],
        );
        drop(g);
        sh.wake_writer.notify_one();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The writer task flushes after every batch.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let sh = &self.shared;
        let mut g = sh.lock();
        let Some(s) = g.streams.get_mut(&self.id) else {
            return Poll::Ready(Ok(()));
        };
        if !s.local_fin && !s.reset {
            s.local_fin = true;
            Shared::push_frame(
                &mut g,
                Header { kind: FrameType::WindowUpdate, flags: flags::FIN, stream_id: self.id, length: 0 },
                &[],
            );
            drop(g);
            sh.wake_writer.notify_one();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for MuxStream {
    fn drop(&mut self) {
        let sh = &self.shared;
        let mut g = sh.lock();
        if let Some(s) = g.streams.remove(&self.id) {
            if g.closed.is_none() && !s.reset {
                // Not yet closed our way: a graceful FIN. Closed our way but the peer still open: it must stop, RST.
                let f = match (s.local_fin, s.remote_fin) {
                    (true, true) => return,
                    (true, false) => flags::RST,
                    (false, _) => flags::FIN,
                };
                Shared::push_frame(
                    &mut g,
                    Header { kind: FrameType::WindowUpdate, flags: f, stream_id: self.id, length: 0 },
                    &[],
                );
                drop(g);
                sh.wake_writer.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (MuxSession, MuxSession, MuxAcceptor) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let client = MuxSession::client(Box::new(a), MuxConfig::frp(Duration::from_secs(30)));
        let (server, acc) = MuxSession::server(Box::new(b), MuxConfig::frp(Duration::from_secs(30)));
        (client, server, acc)
    }

    #[tokio::test]
    async fn many_streams_both_ways_with_half_close() {
        let (client, _server, mut acc) = pair();
        tokio::spawn(async move {
            while let Some(mut s) = acc.accept().await {
                tokio::spawn(async move {
                    let mut v = Vec::new();
                    s.read_to_end(&mut v).await.unwrap();
                    s.write_all(&v).await.unwrap();
                    s.shutdown().await.unwrap();
                });
            }
        });
        let mut tasks = Vec::new();
        for i in 0..20usize {
            let mut s = client.open().unwrap();
            assert_eq!(s.id() % 2, 1);
            tasks.push(tokio::spawn(async move {
                let data: Vec<u8> = (0..(100_000 + i * 9973)).map(|x| (x * 7 + i) as u8).collect();
                s.write_all(&data).await.unwrap();
                s.shutdown().await.unwrap();
                let mut back = Vec::new();
                s.read_to_end(&mut back).await.unwrap();
                assert_eq!(back, data);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }

    fn pair_with_backlog(backlog: usize) -> (MuxSession, MuxSession, MuxAcceptor) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let cfg = MuxConfig { accept_backlog: backlog, ..MuxConfig::frp(Duration::from_secs(30)) };
        let client = MuxSession::client(Box::new(a), cfg);
        let (server, acc) = MuxSession::server(Box::new(b), cfg);
        (client, server, acc)
    }

    /// A burst of opens larger than the backlog, with an acceptor that is slower than the peer: every stream is
    /// delivered (the reader waits for room), none is reset.
    #[tokio::test]
    async fn a_burst_beyond_the_backlog_waits_for_the_acceptor() {
        let (client, _server, mut acc) = pair_with_backlog(4);
        let mut opened = Vec::new();
        for i in 0..64u8 {
            let mut s = client.open().unwrap();
            s.write_all(&[i]).await.unwrap();
            opened.push(s);
        }
        let mut seen = Vec::new();
        for _ in 0..64 {
            let mut s = tokio::time::timeout(Duration::from_secs(5), acc.accept()).await.unwrap().unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.unwrap();
            seen.push(b[0]);
            s.write_all(&b).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..64u8).collect::<Vec<_>>());
        for (i, s) in opened.iter_mut().enumerate() {
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.unwrap_or_else(|e| panic!("stream {i} failed: {e}"));
            assert_eq!(b[0] as usize, i);
        }
    }

    /// An acceptor that never takes the stream: it is reset after the bounded wait, and the session goes on.
    #[tokio::test]
    async fn a_stream_nobody_accepts_is_reset_after_the_wait() {
        let (client, _server, mut acc) = pair_with_backlog(1);
        let mut first = client.open().unwrap();
        first.write_all(b"a").await.unwrap();
        let mut second = client.open().unwrap();
        second.write_all(b"b").await.unwrap();
        let mut b = [0u8; 1];
        let r = tokio::time::timeout(ACCEPT_WAIT * 2, second.read_exact(&mut b)).await;
        assert!(matches!(r, Ok(Err(_))), "the second stream should be reset, got {r:?}");
        let mut s = acc.accept().await.unwrap();
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"a");
        let mut third = client.open().unwrap();
        third.write_all(b"c").await.unwrap();
        let mut s3 = acc.accept().await.unwrap();
        s3.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"c");
    }

    /// Pretends a read of `n` bytes of `byte` into the receive buffer.
    fn read_into(rb: &mut RecvBuf, n: usize, byte: u8) {
        rb.make_room(n);
        rb.buf.extend_from_slice(&vec![byte; n]);
    }

    /// The receive buffer moves on while frames sliced from it are queued, keeps what it had read past them, never
    /// writes over a queued frame, and reads into the same allocation again once its frames are gone.
    #[test]
    fn the_receive_buffer_is_reused_once_its_frames_are_gone() {
        let mut rb = RecvBuf::new();
        let first = rb.buf.as_ptr() as usize;
        read_into(&mut rb, READ_CHUNK - 100, 1);
        let frame_a = rb.buf.split_to(READ_CHUNK - 300).freeze();
        // 200 bytes read past the frame; the next frame needs more room than is left.
        read_into(&mut rb, 8192, 2);
        let second = rb.buf.as_ptr() as usize;
        assert_ne!(second, first, "a buffer with a queued frame must not be read into");
        assert_eq!(rb.buf.len(), 200 + 8192);
        assert!(rb.buf[..200].iter().all(|&b| b == 1) && rb.buf[200..].iter().all(|&b| b == 2));
        // Fill the second buffer and hand out its frame while the first is still queued: a third buffer.
        let room = READ_CHUNK - rb.buf.len() - 10;
        read_into(&mut rb, room, 3);
        let frame_b = rb.buf.split_to(rb.buf.len() - 10).freeze();
        read_into(&mut rb, 8192, 4);
        let third = rb.buf.as_ptr() as usize;
        assert!(third != first && third != second);
        assert!(frame_a.iter().all(|&b| b == 1), "a queued frame was overwritten");
        // Frame a consumed: the next move reads into the first allocation again.
        drop(frame_a);
        let room = READ_CHUNK - rb.buf.len() - 10;
        read_into(&mut rb, room, 5);
        let frame_c = rb.buf.split_to(rb.buf.len() - 10).freeze();
        read_into(&mut rb, 8192, 6);
        assert_eq!(rb.buf.as_ptr() as usize, first, "the first buffer was not reused");
        assert!(rb.buf[..10].iter().all(|&b| b == 5) && rb.buf[10..].iter().all(|&b| b == 6));
        assert!(frame_b[..200].iter().all(|&b| b == 1) && frame_b[200 + 8192..].iter().all(|&b| b == 3));
        assert!(frame_c.iter().all(|&b| (3..=5).contains(&b)));
        // With every frame gone the current buffer is reclaimed in place: no new allocation.
        drop((frame_b, frame_c));
        let now = rb.buf.as_ptr() as usize;
        let at = rb.buf.len();
        rb.buf.advance(at);
        read_into(&mut rb, READ_CHUNK, 7);
        assert_eq!(rb.buf.as_ptr() as usize, now);
        assert!(rb.spare.len() <= SPARE_BUFS);
    }

    #[tokio::test]
    async fn window_larger_than_initial_flows() {
        let (client, _server, mut acc) = pair();
        let mut c = client.open().unwrap();
        let data = vec![5u8; 20 * 1024 * 1024];
        let d2 = data.clone();
        let w = tokio::spawn(async move {
            c.write_all(&d2).await.unwrap();
            c.shutdown().await.unwrap();
            c
        });
        let mut s = acc.accept().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), data.len());
        drop(w.await.unwrap());
    }

    #[tokio::test]
    async fn session_end_fails_streams() {
        let (client, server, _acc) = pair();
        let mut c = client.open().unwrap();
        server.close();
        let mut b = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(5), c.read(&mut b)).await.unwrap();
        assert!(r.is_err() || r.unwrap() == 0);
        tokio::time::timeout(Duration::from_secs(5), client.closed()).await.unwrap();
        assert!(client.open().is_err());
    }
}
