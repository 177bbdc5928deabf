//! What the server knows about its clients, proxies and traffic, for the dashboard API and `/metrics`: plain data
//! and lookups, no IO (but [`CountedIo`], a counting wrapper), the time passed in as unix seconds.
//!
//! Control sessions record logins, logouts, proxies started and closed; relays add bytes to a proxy's
//! [`LiveCounters`] (one relaxed atomic add per read) which readers fold into the per-day history ("flush") under
//! the registry's lock. Offline proxies stay, with their history, until pruned (as frps: `conf` is dropped, the
//! numbers stay). Unlike frps, which adds a connection's bytes when it closes, the numbers here are live.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use portway_proto::msg::NewProxy;

/// Days of traffic history kept per proxy (frps: 7).
pub const RESERVE_DAYS: usize = 7;

const DAY: i64 = 86_400;

/// Per-day byte counts: index 0 is the day `day` (today once rolled), then the days before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounter {
    day: i64,
    counts: [u64; RESERVE_DAYS],
}

impl DayCounter {
    fn new(today: i64) -> DayCounter {
        DayCounter { day: today, counts: [0; RESERVE_DAYS] }
    }

    /// Moves the window so index 0 is `today`.
    fn roll(&mut self, today: i64) {
        let shift = today - self.day;
        if shift <= 0 {
            return;
        }
        if shift >= RESERVE_DAYS as i64 {
            self.counts = [0; RESERVE_DAYS];
        } else {
            let s = shift as usize;
            self.counts.rotate_right(s);
            self.counts[..s].fill(0);
        }
        self.day = today;
    }

    fn add(&mut self, today: i64, n: u64) {
        self.roll(today);
        self.counts[0] = self.counts[0].saturating_add(n);
    }

    /// The last [`RESERVE_DAYS`] days, today first.
    pub fn last_days(&self, today: i64) -> [u64; RESERVE_DAYS] {
        let mut c = *self;
        c.roll(today);
        c.counts
    }

    /// Today's count.
    pub fn today(&self, today: i64) -> u64 {
        self.last_days(today)[0]
    }
}

/// The day number (days since 1970-01-01, UTC) of a unix time.
pub fn day_of(unix: i64) -> i64 {
    unix.div_euclid(DAY)
}

/// Counters a proxy's connections update while they run: bytes in (from visitors), bytes out (to visitors) since
/// the last flush, and open connections.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Bytes from visitors into the tunnel, not yet flushed.
    pub bytes_in: AtomicU64,
    /// Bytes from the tunnel to visitors, not yet flushed.
    pub bytes_out: AtomicU64,
    conns: AtomicI64,
}

impl LiveCounters {
    /// Counts one open connection until the guard is dropped.
    pub fn open(self: &Arc<Self>) -> ConnGuard {
        self.conns.fetch_add(1, Ordering::Relaxed);
        ConnGuard(self.clone())
    }

    /// Open connections now.
    pub fn conns(&self) -> i64 {
        self.conns.load(Ordering::Relaxed)
    }
}

/// One open connection of a proxy (see [`LiveCounters::open`]).
#[derive(Debug)]
pub struct ConnGuard(Arc<LiveCounters>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.conns.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A work connection that counts the bytes passing through it into a proxy's [`LiveCounters`] (written into it:
/// from the visitor, `bytes_in`; read from it: to the visitor, `bytes_out`) and is one open connection while it
/// lives. For the relays that do not copy bytes themselves (the HTTP vhost hands the connection to hyper).
pub struct CountedIo<T> {
    io: T,
    open: ConnGuard,
}

impl<T> CountedIo<T> {
    /// Counts `io` into `live`.
    pub fn new(io: T, live: &Arc<LiveCounters>) -> Self {
        CountedIo { io, open: live.open() }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CountedIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            self.open.0.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.open.0.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.open.0.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// One proxy, online or offline.
#[derive(Debug, Clone)]
pub struct ProxyRecord {
    /// Full name (with the `user.` prefix when the client set a user).
    pub name: String,
    /// tcp, udp, ...
    pub proxy_type: String,
    /// frp's `user` of the owning client.
    pub user: String,
    /// The owning client's key in [`ClientRecord`]s.
    pub client_key: String,
    /// The owning client's clientID (its run ID when it set none), as frps shows it.
    pub client_id: String,
    /// The NewProxy the client sent (while online; frps shows `conf: null` for offline proxies).
    pub conf: Option<Arc<NewProxy>>,
    /// The public port it listens on (0: none).
    pub remote_port: u16,
    /// Whether it is registered now.
    pub online: bool,
    /// Unix seconds of the last start; 0 = never.
    pub last_start: i64,
    /// Unix seconds of the last close; 0 = never.
    pub last_close: i64,
    /// Per-day bytes in.
    pub traffic_in: DayCounter,
    /// Per-day bytes out.
    pub traffic_out: DayCounter,
    /// Bytes in since the record was created.
    pub total_in: u64,
    /// Bytes out since the record was created.
    pub total_out: u64,
    /// What the connections update.
    pub live: Arc<LiveCounters>,
}

impl ProxyRecord {
    /// Open connections now.
    pub fn cur_conns(&self) -> i64 {
        self.live.conns()
    }
}

/// What a client said at login, and who its credentials say it is.
#[derive(Debug, Clone, Default)]
pub struct ClientLogin {
    /// frp's `user`.
    pub user: String,
    /// The clientID it configured (may be empty).
    pub client_id: String,
    /// Its session's run ID.
    pub run_id: String,
    /// Login fields.
    pub hostname: String,
    /// Login fields.
    pub version: String,
    /// Login fields.
    pub os: String,
    /// Login fields.
    pub arch: String,
    /// "v1" or "v2": frp's wire protocol of the control connection.
    pub wire_protocol: String,
    /// The address it connected from (no port).
    pub client_ip: String,
    /// The OIDC subject (empty with token auth).
    pub subject: String,
    /// The OIDC client ID (`azp`/`client_id`; empty with token auth).
    pub oidc_client_id: String,
    /// Expiry of the newest token of the session (0: none), kept current by the session.
    pub token_expires_at: Arc<AtomicI64>,
    /// The `[portway]` rule that applies to this identity (e.g. `portway.clients[0]`), if any.
    pub policy_rule: Option<String>,
}

/// One client, online or (with a configured clientID) offline.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    /// `user.clientID`, or just the clientID without user; the run ID stands in for an empty clientID.
    pub key: String,
    /// Unix seconds of the first login under this key.
    pub first_connected: i64,
    /// Unix seconds of the last login.
    pub last_connected: i64,
    /// Unix seconds of the last logout; 0 while online.
    pub disconnected: i64,
    /// Whether a session is open.
    pub online: bool,
    /// Which login this record is from (see [`Registry::client_online`]).
    pub session: u64,
    /// What it said at login.
    pub login: ClientLogin,
}

impl ClientRecord {
    /// The clientID as frps shows it: the configured one, else the run ID.
    pub fn effective_client_id(&self) -> &str {
        if self.login.client_id.is_empty() {
            &self.login.run_id
        } else {
            &self.login.client_id
        }
    }

    /// The token expiry now (0: none).
    pub fn token_expires_at(&self) -> i64 {
        self.login.token_expires_at.load(Ordering::Relaxed)
    }
}

/// Server-wide figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Bytes in today, all proxies.
    pub traffic_in_today: u64,
    /// Bytes out today, all proxies.
    pub traffic_out_today: u64,
    /// Open user connections.
    pub cur_conns: i64,
    /// Online clients.
    pub client_counts: i64,
    /// Online proxies per type; a type seen once stays (at 0), as frps shows it.
    pub proxy_type_counts: BTreeMap<String, i64>,
}

#[derive(Default)]
struct Inner {
    proxies: BTreeMap<String, ProxyRecord>,
    clients: BTreeMap<String, ClientRecord>,
    /// Logins so far (numbers sessions).
    sessions: u64,
    type_counts: BTreeMap<String, i64>,
    total_in: DayCounter,
    total_out: DayCounter,
}

impl Inner {
    /// Folds every proxy's live byte counters into its history and the totals.
    fn flush(&mut self, today: i64) {
        for p in self.proxies.values_mut() {
            let i = p.live.bytes_in.swap(0, Ordering::Relaxed);
            let o = p.live.bytes_out.swap(0, Ordering::Relaxed);
            if i > 0 {
                p.traffic_in.add(today, i);
                p.total_in = p.total_in.saturating_add(i);
                self.total_in.add(today, i);
            }
            if o > 0 {
                p.traffic_out.add(today, o);
                p.total_out = p.total_out.saturating_add(o);
                self.total_out.add(today, o);
            }
        }
    }
}

/// The registry of clients, proxies and traffic. Cheap to share (`Arc`); every method takes the lock briefly.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

/// The client key frps uses: `user.id`, or `id` without a user.
pub fn client_key(user: &str, client_id: &str, run_id: &str) -> String {
    let id = if client_id.is_empty() { run_id } else { client_id };
    if user.is_empty() {
        id.to_string()
    } else {
        format!("{user}.{id}")
    }
}

impl Registry {
    fn lock(&self, now: i64) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain numbers behind, still worth showing.
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.flush(day_of(now));
        g
    }

    /// A client logged in; returns its key and a session number for [`Registry::client_offline`].
    pub fn client_online(&self, login: ClientLogin, now: i64) -> (String, u64) {
        let key = client_key(&login.user, &login.client_id, &login.run_id);
        let mut g = self.lock(now);
        g.sessions += 1;
        let session = g.sessions;
        let first = g.clients.get(&key).map(|c| c.first_connected).unwrap_or(now);
        g.clients.insert(
            key.clone(),
            ClientRecord {
                key: key.clone(),
                first_connected: first,
                last_connected: now,
                disconnected: 0,
                online: true,
                session,
                login,
            },
        );
        (key, session)
    }

    /// The session `session` of client `key` ended. Without a configured clientID its record goes (as frps); with
    /// one it stays, offline. A newer login under the same key (a reconnect with the same run ID) is left alone.
    pub fn client_offline(&self, key: &str, session: u64, now: i64) {
        let mut g = self.lock(now);
        let remove = match g.clients.get_mut(key) {
            Some(c) if c.session == session => {
                c.online = false;
                c.disconnected = now;
                c.login.client_id.is_empty()
            }
            _ => false,
        };
        if remove {
            g.clients.remove(key);
        }
    }

    /// A proxy was registered by the client `client_key`; returns the counters its connections update.
    pub fn proxy_started(&self, client_key: &str, conf: NewProxy, remote_port: u16, now: i64) -> Arc<LiveCounters> {
        let mut g = self.lock(now);
        let today = day_of(now);
        let (user, client_id) = g
            .clients
            .get(client_key)
            .map(|c| (c.login.user.clone(), c.effective_client_id().to_string()))
            .unwrap_or_default();
        *g.type_counts.entry(conf.proxy_type.clone()).or_insert(0) += 1;
        let name = conf.proxy_name.clone();
        let ty = conf.proxy_type.clone();
        let conf = Arc::new(conf);
        match g.proxies.get_mut(&name) {
            // Same name and type again: its history continues (as frps).
            Some(p) if p.proxy_type == ty => {
                p.user = user;
                p.client_key = client_key.to_string();
                p.client_id = client_id;
                p.conf = Some(conf);
                p.remote_port = remote_port;
                p.online = true;
                p.last_start = now;
                p.live.clone()
            }
            _ => {
                let live = Arc::new(LiveCounters::default());
                g.proxies.insert(
                    name.clone(),
                    ProxyRecord {
                        name,
                        proxy_type: ty,
                        user,
                        client_key: client_key.to_string(),
                        client_id,
                        conf: Some(conf),
                        remote_port,
                        online: true,
                        last_start: now,
                        last_close: 0,
                        traffic_in: DayCounter::new(today),
                        traffic_out: DayCounter::new(today),
                        total_in: 0,
                        total_out: 0,
                        live: live.clone(),
                    },
                );
                live
            }
        }
    }

    /// A proxy was closed (by its client, or because the client went away). It stays, offline, until pruned.
    pub fn proxy_closed(&self, name: &str, now: i64) {
        let mut g = self.lock(now);
        let Some(p) = g.proxies.get_mut(name) else { return };
        if !p.online {
            return;
        }
        p.online = false;
        p.conf = None;
        p.last_close = now;
        let ty = p.proxy_type.clone();
        if let Some(c) = g.type_counts.get_mut(&ty) {
            *c -= 1;
        }
    }

    /// Removes every offline proxy; returns (removed, proxies before).
    pub fn prune_offline(&self, now: i64) -> (usize, usize) {
        let mut g = self.lock(now);
        let total = g.proxies.len();
        g.proxies.retain(|_, p| p.online);
        (total - g.proxies.len(), total)
    }

    /// Every proxy, by name.
    pub fn proxies(&self, now: i64) -> Vec<ProxyRecord> {
        self.lock(now).proxies.values().cloned().collect()
    }

    /// One proxy.
    pub fn proxy(&self, name: &str, now: i64) -> Option<ProxyRecord> {
        self.lock(now).proxies.get(name).cloned()
    }

    /// Every client, by key.
    pub fn clients(&self, now: i64) -> Vec<ClientRecord> {
        self.lock(now).clients.values().cloned().collect()
    }

    /// One client.
    pub fn client(&self, key: &str, now: i64) -> Option<ClientRecord> {
        self.lock(now).clients.get(key).cloned()
    }

    /// Server-wide figures.
    pub fn totals(&self, now: i64) -> Totals {
        let g = self.lock(now);
        let today = day_of(now);
        Totals {
            traffic_in_today: g.total_in.today(today),
            traffic_out_today: g.total_out.today(today),
            cur_conns: g.proxies.values().map(|p| p.cur_conns()).sum(),
            client_counts: g.clients.values().filter(|c| c.online).count() as i64,
            proxy_type_counts: g.type_counts.clone(),
        }
    }
}

/// Calendar date and time (UTC) of a unix time: (year, month, day, hour, minute, second).
pub fn civil(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(DAY);
    let secs = unix.rem_euclid(DAY);
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (secs / 3600) as u32, (secs % 3600 / 60) as u32, (secs % 60) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_974_405; // 2026-11-29 17:46:45 UTC

    fn login(run_id: &str, client_id: &str) -> ClientLogin {
        ClientLogin { run_id: run_id.into(), client_id: client_id.into(), ..Default::default() }
    }

    fn np(name: &str, ty: &str) -> NewProxy {
        NewProxy { proxy_name: name.into(), proxy_type: ty.into(), ..Default::default() }
    }

    #[test]
    fn civil_time_matches_the_capture() {
        assert_eq!(civil(T0), (2026, 11, 29, 17, 46, 45));
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn day_counter_rolls_and_forgets_after_seven_days() {
        let d = day_of(T0);
        let mut c = DayCounter::new(d);
        c.add(d, 5);
        c.add(d + 2, 7);
        assert_eq!(c.last_days(d + 2), [7, 0, 5, 0, 0, 0, 0]);
        assert_eq!(c.last_days(d + 3), [0, 7, 0, 5, 0, 0, 0]);
        assert_eq!(c.last_days(d + 9), [0; 7]);
        assert_eq!(c.today(d + 2), 7);
    }

    #[test]
    fn live_bytes_are_flushed_into_proxy_and_totals() {
        let r = Registry::default();
        let (key, _) = r.client_online(login("run1", ""), T0);
        assert_eq!(key, "run1");
        let live = r.proxy_started(&key, np("web", "tcp"), 16001, T0);
        let guard = live.open();
        live.bytes_in.fetch_add(39, Ordering::Relaxed);
        live.bytes_out.fetch_add(40, Ordering::Relaxed);
        let p = r.proxy("web", T0).unwrap();
        assert_eq!((p.traffic_in.today(day_of(T0)), p.total_out, p.cur_conns()), (39, 40, 1));
        assert_eq!(p.client_id, "run1");
        drop(guard);
        let t = r.totals(T0 + 1);
        assert_eq!((t.traffic_in_today, t.traffic_out_today, t.cur_conns, t.client_counts), (39, 40, 0, 1));
        assert_eq!(t.proxy_type_counts.get("tcp"), Some(&1));
    }

    #[test]
    fn offline_proxies_stay_until_pruned_and_keep_history_when_back() {
        let r = Registry::default();
        let (key, _) = r.client_online(login("run1", ""), T0);
        let live = r.proxy_started(&key, np("web", "tcp"), 16001, T0);
        live.bytes_in.fetch_add(10, Ordering::Relaxed);
        r.proxy_closed("web", T0 + 5);
        let p = r.proxy("web", T0 + 6).unwrap();
        assert!(!p.online && p.conf.is_none() && p.last_close == T0 + 5 && p.total_in == 10);
        assert_eq!(r.totals(T0 + 6).proxy_type_counts.get("tcp"), Some(&0));
        // Back under the same name and type: the numbers continue.
        r.proxy_started(&key, np("web", "tcp"), 16001, T0 + 7);
        assert_eq!(r.proxy("web", T0 + 8).unwrap().total_in, 10);
        r.proxy_closed("web", T0 + 9);
        r.proxy_started(&key, np("other", "udp"), 16002, T0 + 9);
        assert_eq!(r.prune_offline(T0 + 10), (1, 2));
        assert!(r.proxy("web", T0 + 10).is_none() && r.proxy("other", T0 + 10).is_some());
    }

    #[test]
    fn clients_without_client_id_disappear_with_client_id_stay_offline() {
        let r = Registry::default();
        let (k1, s1) = r.client_online(login("run1", ""), T0);
        let (k2, s2) = r.client_online(ClientLogin { user: "u".into(), ..login("run2", "laptop") }, T0);
        assert_eq!(k2, "u.laptop");
        // run1 logs in again (same run ID) before its old session has ended: the old end leaves the new alone.
        let (k1b, s1b) = r.client_online(login("run1", ""), T0);
        assert_eq!(k1b, k1);
        r.client_offline(&k1, s1, T0 + 1);
        assert!(r.client(&k1, T0 + 1).is_some_and(|c| c.online));
        r.client_offline(&k1, s1b, T0 + 1);
        r.client_offline(&k2, s2, T0 + 1);
        let all = r.clients(T0 + 2);
        assert_eq!(all.len(), 1);
        assert!(!all[0].online && all[0].disconnected == T0 + 1 && all[0].effective_client_id() == "laptop");
        // The same clientID again: first connection time kept.
        r.client_online(ClientLogin { user: "u".into(), ..login("run3", "laptop") }, T0 + 50);
        let c = r.client("u.laptop", T0 + 51).unwrap();
        assert_eq!((c.first_connected, c.last_connected, c.online), (T0, T0 + 50, true));
        assert_eq!(r.totals(T0 + 51).client_counts, 1);
    }
}
