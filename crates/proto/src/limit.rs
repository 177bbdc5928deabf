//! frp's per-proxy bandwidth limit (`transport.bandwidthLimit`): one token bucket per proxy, shared by both
//! directions of every connection of that proxy (frp's limiter: the rate in bytes per second, a burst of one
//! second's worth). [`parse_bandwidth`] and [`Bucket`]'s accounting are pure; [`LimitedIo`] applies a bucket to a
//! stream.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why a `bandwidthLimit` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BandwidthError {
    /// Not `<number>MB` or `<number>KB`.
    #[error("{0:?} is not a bandwidth: give a number with MB or KB, such as \"1MB\" or \"500KB\"")]
    Unit(String),
    /// A number that is not finite or is negative.
    #[error("{0:?} is not a bandwidth: the number must be 0 or more")]
    Number(String),
}

/// Bytes per second of a frp bandwidth (`"1MB"` = 1,048,576, `"500KB"` = 512,000; fractions allowed, `"0MB"` or
/// `""` = no limit → `None`).
pub fn parse_bandwidth(s: &str) -> Result<Option<u64>, BandwidthError> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let (num, base) = if let Some(n) = t.strip_suffix("MB") {
        (n, 1024.0 * 1024.0)
    } else if let Some(n) = t.strip_suffix("KB") {
        (n, 1024.0)
    } else {
        return Err(BandwidthError::Unit(s.to_string()));
    };
    let f: f64 = num.trim().parse().map_err(|_| BandwidthError::Unit(s.to_string()))?;
    if !f.is_finite() || f < 0.0 {
        return Err(BandwidthError::Number(s.to_string()));
    }
    let bytes = (f * base) as u64;
    Ok((bytes > 0).then_some(bytes))
}

/// A token bucket: `rate` bytes per second, holding at most `rate` (one second of burst).
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// A full bucket for `rate` bytes per second (at least 1).
    pub fn new(rate: u64) -> Arc<Bucket> {
        let rate = rate.max(1) as f64;
        Arc::new(Bucket { rate, state: Mutex::new((rate, Instant::now())) })
    }

    /// The rate in bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate as u64
    }

    /// Takes `n` bytes' worth at `now` and returns how long the caller must wait before its next transfer so the
    /// average stays at the rate (zero while the bucket still holds tokens). Pure given `now`.
    pub fn take_at(&self, n: usize, now: Instant) -> Duration {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = *s;
        let refilled = (tokens + now.saturating_duration_since(last).as_secs_f64() * self.rate).min(self.rate);
        let left = refilled - n as f64;
        *s = (left, now.max(last));
        if left >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-left / self.rate)
        }
    }

    /// [`Bucket::take_at`] now.
    pub fn take(&self, n: usize) -> Duration {
        self.take_at(n, Instant::now())
    }
}

/// A stream whose reads and writes draw on a [`Bucket`]: a transfer is paid for after it happens, and the next one
/// waits until the bucket is out of debt (the average rate holds; one buffer may run ahead, as frp's limiter lets a
/// burst through).
pub struct LimitedIo<T> {
    inner: T,
    bucket: Arc<Bucket>,
    read_wait: Option<Pin<Box<tokio::time::Sleep>>>,
    write_wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> LimitedIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, bucket: Arc<Bucket>) -> LimitedIo<T> {
        LimitedIo { inner, bucket, read_wait: None, write_wait: None }
    }
}

fn wait(slot: &mut Option<Pin<Box<tokio::time::Sleep>>>, cx: &mut Context<'_>) -> Poll<()> {
    if let Some(s) = slot {
        ready!(s.as_mut().poll(cx));
        *slot = None;
    }
    Poll::Ready(())
}

fn owe(slot: &mut Option<Pin<Box<tokio::time::Sleep>>>, delay: Duration) {
    if !delay.is_zero() {
        *slot = Some(Box::pin(tokio::time::sleep(delay)));
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for LimitedIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        ready!(wait(&mut me.read_wait, cx));
        let before = buf.filled().len();
        ready!(Pin::new(&mut me.inner).poll_read(cx, buf))?;
        let n = buf.filled().len() - before;
        if n > 0 {
            owe(&mut me.read_wait, me.bucket.take(n));
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for LimitedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        ready!(wait(&mut me.write_wait, cx));
        let n = ready!(Pin::new(&mut me.inner).poll_write(cx, data))?;
        if n > 0 {
            owe(&mut me.write_wait, me.bucket.take(n));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidths_as_frp_reads_them() {
        assert_eq!(parse_bandwidth("1MB"), Ok(Some(1024 * 1024)));
        assert_eq!(parse_bandwidth(" 500KB "), Ok(Some(500 * 1024)));
        assert_eq!(parse_bandwidth("0.5MB"), Ok(Some(512 * 1024)));
        assert_eq!(parse_bandwidth(""), Ok(None));
        assert_eq!(parse_bandwidth("0KB"), Ok(None));
        assert!(matches!(parse_bandwidth("1GB"), Err(BandwidthError::Unit(_))));
        assert!(matches!(parse_bandwidth("1mb"), Err(BandwidthError::Unit(_))));
        assert!(matches!(parse_bandwidth("xMB"), Err(BandwidthError::Unit(_))));
        assert!(matches!(parse_bandwidth("-1MB"), Err(BandwidthError::Number(_))));
        let e = parse_bandwidth("10mbit").unwrap_err().to_string();
        assert!(e.contains("\"10mbit\"") && e.contains("\"1MB\""), "{e}");
    }

    #[test]
    fn the_bucket_lets_a_burst_through_then_holds_the_rate() {
        let b = Bucket::new(1000);
        let t0 = Instant::now();
        // A second's worth is in the bucket.
        assert_eq!(b.take_at(1000, t0), Duration::ZERO);
        // 500 more with nothing refilled: half a second of debt.
        assert_eq!(b.take_at(500, t0), Duration::from_millis(500));
        // After the half second the debt is paid; 250 more costs a quarter second.
        assert_eq!(b.take_at(250, t0 + Duration::from_millis(500)), Duration::from_millis(250));
        // Idle for ten seconds refills one second's worth, never more.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.take_at(1000, later), Duration::ZERO);
        assert!(b.take_at(1, later) > Duration::ZERO);
    }

    #[tokio::test]
    async fn a_limited_stream_carries_every_byte_at_no_more_than_the_rate() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, mut b) = tokio::io::duplex(64 * 1024);
        // 64 KiB/s with a 64 KiB burst, writes of at most 64 KiB (the duplex buffer), each paid for after it
        // happens: 256 KiB need at least (256 - 64 burst - 64 last write) / 64 = 2 s.
        let mut a = LimitedIo::new(a, Bucket::new(64 * 1024));
        let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let start = Instant::now();
        let writer = tokio::spawn(async move {
            a.write_all(&sent).await.unwrap();
            a.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, data);
        // A lower bound only: the limiter must not let it through faster (a slow machine is fine).
        assert!(start.elapsed() >= Duration::from_millis(1_950), "too fast: {:?}", start.elapsed());
    }
}
