//! The dashboard API (`webServer.*`): frps's HTTP API and `/metrics`, served with hyper.
//!
//! - [`routes`]: the routing table and JSON (pure).
//! - [`dashboard`]: the dashboard page under `/static/`, embedded at build time.
//! - [`metrics`]: Prometheus text built from the statistics at each scrape.
//!
//! This module reads the statistics registry ([`crate::stats`]) and configuration figures only, never the control
//! sessions. HTTP Basic auth as frps (everything but `/healthz`); unlike frps, wrong passwords are throttled per
//! address.

pub mod dashboard;
pub mod metrics;
pub mod routes;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn, Instrument};

use crate::guard::LoginGuard;
use crate::stats::Registry;
pub use routes::{Reply, ServerInfo};

/// Connections served at once; more wait in the accept queue.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send a request's headers (and the TLS handshake).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Wrong passwords per address per minute before the address gets `429` for the rest of the minute.
pub const MAX_AUTH_FAILURES: u32 = 10;

/// What the API serves and how it checks callers.
pub struct Api {
    stats: Arc<Registry>,
    info: ServerInfo,
    /// `webServer.user` / `webServer.password`; `None` when both are empty (no auth, as frps).
    credentials: Option<(String, String)>,
    prometheus: bool,
    guard: LoginGuard,
}

impl Api {
    /// An API over `stats`. `credentials`: user and password (both empty = no auth).
    pub fn new(stats: Arc<Registry>, info: ServerInfo, user: &str, password: &str, prometheus: bool) -> Api {
        let credentials = (!user.is_empty() || !password.is_empty()).then(|| (user.to_string(), password.to_string()));
        Api { stats, info, credentials, prometheus, guard: LoginGuard::new(MAX_AUTH_FAILURES) }
    }

    /// Answers one request (pure apart from the clock and the throttle): `auth` is the `Authorization` header.
    pub fn answer(
        &self,
        peer: IpAddr,
        method: &str,
        path: &str,
        query: &str,
        auth: Option<&[u8]>,
    ) -> Response<Full<Bytes>> {
        if path != "/healthz" {
            if let Some(r) = self.check_auth(peer, auth) {
                return r;
            }
        }
        let now = crate::oidc::now();
        let render = || metrics::render(&self.stats, now);
        let metrics: Option<&dyn Fn() -> Reply> = if self.prometheus { Some(&render) } else { None };
        let reply = routes::route(&self.stats, &self.info, method, path, query, now, metrics);
        to_response(reply, method == "HEAD")
    }

    fn check_auth(&self, peer: IpAddr, auth: Option<&[u8]>) -> Option<Response<Full<Bytes>>> {
        let (user, password) = self.credentials.as_ref()?;
        if self.guard.is_blocked(peer) {
            return Some(to_response(
                Reply::text(429, "too many wrong passwords from this address; try again in a minute\n"),
                false,
            ));
        }
        let given = auth.and_then(parse_basic);
        let ok =
            given.as_ref().is_some_and(|(u, p)| ct_eq(u.as_bytes(), user.as_bytes()) & ct_eq(p, password.as_bytes()));
        if ok {
            return None;
        }
        if given.is_some() {
            // The user name may be a typo worth seeing; the password never is logged.
            let tried = given.as_ref().map(|(u, _)| u.as_str()).unwrap_or_default();
            warn!(address = %peer, user = tried, "dashboard API: wrong user or password");
            if self.guard.record_failure(peer) {
                warn!(address = %peer, "dashboard API: too many wrong passwords from this address; refusing it for a minute");
            }
        }
        let mut r = to_response(Reply::text(401, "Unauthorized\n"), false);
        r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Restricted\""));
        Some(r)
    }
}

/// Compares without stopping at the first difference.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// `Basic base64(user:password)` → (user, password bytes).
fn parse_basic(h: &[u8]) -> Option<(String, Vec<u8>)> {
    let h = std::str::from_utf8(h).ok()?;
    let (scheme, rest) = h.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let colon = raw.iter().position(|b| *b == b':')?;
    Some((String::from_utf8_lossy(&raw[..colon]).into_owned(), raw[colon + 1..].to_vec()))
}

fn to_response(reply: Reply, head: bool) -> Response<Full<Bytes>> {
    let body = if head { Bytes::new() } else { Bytes::from(reply.body) };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    if let Some(ct) = reply.content_type {
        h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        if ct.starts_with("text/plain") && reply.status >= 400 {
            h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        }
    }
    if let Some(c) = reply.cache_control {
        h.insert(CACHE_CONTROL, HeaderValue::from_static(c));
    }
    if let Some(l) = reply.location {
        h.insert(LOCATION, HeaderValue::from_static(l));
    }
    r
}

/// Serves the API on `listener` (with TLS when `tls` is set) until `cancel`; connections run on `tracker`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    api: Arc<Api>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), tls = tls.is_some(), "dashboard API listening");
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    warn!(error = %e, "dashboard API: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (api, tls, cancel) = (api.clone(), tls.clone(), cancel.clone());
        tracker.spawn(
            async move {
                let _permit = permit;
                match tls {
                    Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => serve_conn(s, peer, api, cancel).await,
                        Ok(Err(e)) => debug!(error = %e, "dashboard API: TLS handshake failed"),
                        Err(_) => debug!("dashboard API: TLS handshake timed out"),
                    },
                    None => serve_conn(tcp, peer, api, cancel).await,
                }
            }
            .instrument(tracing::debug_span!("api", %peer)),
        );
    }
    debug!("dashboard API closed");
}

async fn serve_conn<S>(io: S, peer: SocketAddr, api: Arc<Api>, cancel: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let api = api.clone();
        async move {
            let uri = req.uri();
            let auth = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
            let r = api.answer(peer.ip(), req.method().as_str(), uri.path(), uri.query().unwrap_or(""), auth);
            debug!(method = %req.method(), path = uri.path(), status = r.status().as_u16(), "dashboard API request");
            Ok::<_, Infallible>(r)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => if let Err(e) = r { debug!(error = %e, "dashboard API connection ended") },
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Api {
        Api::new(Arc::new(Registry::default()), ServerInfo::default(), "admin", "admin", false)
    }

    #[test]
    fn basic_auth_as_frps_and_throttled() {
        let a = api();
        let ip: IpAddr = [127, 0, 0, 9].into();
        let r = a.answer(ip, "GET", "/api/serverinfo", "", None);
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], "Basic realm=\"Restricted\"");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(a.answer(ip, "GET", "/healthz", "", None).status(), 200);
        assert_eq!(a.answer(ip, "GET", "/api/serverinfo", "", Some(b"Basic YWRtaW46YWRtaW4=")).status(), 200);
        for _ in 0..MAX_AUTH_FAILURES {
            assert_eq!(a.answer(ip, "GET", "/api/serverinfo", "", Some(b"Basic YWRtaW46d3Jvbmc=")).status(), 401);
        }
        // Blocked now, even with the right password; other addresses are not.
        assert_eq!(a.answer(ip, "GET", "/api/serverinfo", "", Some(b"Basic YWRtaW46YWRtaW4=")).status(), 429);
        assert_eq!(
            a.answer([127, 0, 0, 8].into(), "GET", "/api/serverinfo", "", Some(b"Basic YWRtaW46YWRtaW4=")).status(),
            200
        );
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"admin", b"admin"));
        assert!(!ct_eq(b"admin", b"admin2") && !ct_eq(b"", b"x") && !ct_eq(b"x", b""));
        assert_eq!(parse_basic(b"Basic YWRtaW46YTpi"), Some(("admin".into(), b"a:b".to_vec())));
        assert_eq!(parse_basic(b"Bearer x"), None);
    }
}
