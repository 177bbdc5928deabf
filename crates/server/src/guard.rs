//! Throttling source addresses that keep failing to log in (password guessing, misconfigured clients in a loop).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Counts failed logins per address; an address with `limit` failures in [`WINDOW`] is refused until the window
/// ends. `limit = 0` disables it.
pub struct LoginGuard {
    limit: u32,
    map: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginGuard {
    /// A guard allowing `limit` failures per address per minute.
    pub fn new(limit: u32) -> Self {
        LoginGuard { limit, map: Mutex::new(HashMap::new()) }
    }

    /// Records a failed login; returns true when this failure reached the limit.
    pub fn record_failure(&self, ip: IpAddr) -> bool {
        self.record_at(ip, Instant::now())
    }

    fn record_at(&self, ip: IpAddr, now: Instant) -> bool {
        if self.limit == 0 {
            return false;
        }
        let Ok(mut m) = self.map.lock() else { return false };
        if m.len() > 100_000 {
            m.retain(|_, (_, start)| now.duration_since(*start) < WINDOW);
        }
        let e = m.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= WINDOW {
            *e = (0, now);
        }
        e.0 += 1;
        e.0 == self.limit
    }

    /// Whether `ip` is refused right now.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        self.blocked_at(ip, Instant::now())
    }

    fn blocked_at(&self, ip: IpAddr, now: Instant) -> bool {
        if self.limit == 0 {
            return false;
        }
        let Ok(m) = self.map.lock() else { return false };
        m.get(&ip).is_some_and(|(n, start)| *n >= self.limit && now.duration_since(*start) < WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let g = LoginGuard::new(3);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        assert!(!g.record_at(ip, t0));
        assert!(!g.record_at(ip, t0));
        assert!(!g.blocked_at(ip, t0));
        assert!(g.record_at(ip, t0), "third failure reaches the limit");
        assert!(g.blocked_at(ip, t0 + Duration::from_secs(59)));
        assert!(!g.blocked_at(other, t0));
        assert!(!g.blocked_at(ip, t0 + WINDOW));
        assert!(!LoginGuard::new(0).record_at(ip, t0));
    }
}
