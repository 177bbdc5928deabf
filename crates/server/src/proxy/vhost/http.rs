//! The HTTP virtual-host listener (`vhostHTTPPort`): hyper serves the visitor, routes each request by Host, path
//! and HTTP user, and sends it as HTTP/1.1 over a work connection of the proxy's client, which relays the bytes to
//! the local service. Bodies stream both ways; upgrades (WebSocket) become a byte relay after the 101.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn, Instrument};

use super::routes::{basic_auth, canonical_host};
use super::Vhost;
use super::{Kind, Route, NOT_FOUND_PAGE};

/// Largest request head hyper buffers; a bigger one is answered 431.
const MAX_HEAD: usize = 64 * 1024;

type Body = BoxBody<Bytes, hyper::Error>;

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1, as Go's reverse proxy drops them). Parsed
/// names, not strings: a lookup by `&str` parses the name again on every request.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// What a visitor may not forge: the server sets the X-Forwarded-* headers itself and drops `Forwarded`.
static FORWARDING: [HeaderName; 4] = [
    header::FORWARDED,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-proto"),
];

pub(super) async fn serve(shared: Arc<Vhost>, listener: TcpListener, cancel: CancellationToken) {
    super::accept_loop(shared, listener, cancel, serve_conn).await;
}

/// A work connection kept for the visitor connection's next request to the same route.
struct Backend {
    route: Arc<Route>,
    sender: SendRequest<Incoming>,
}

async fn serve_conn(shared: Arc<Vhost>, tcp: TcpStream, peer: SocketAddr) {
    // How long a visitor may take to send a request head (frps: 60 s); a slowloris is cut after it.
    let read_header_timeout = Duration::from_secs(shared.hub.cfg.portway.vhost_read_header_timeout.max(1) as u64);
    let cache: Arc<Mutex<Option<Backend>>> = Arc::default();
    // The visitor's address as X-Forwarded-For carries it, formatted once per connection rather than per request.
    let peer_ip = HeaderValue::from_str(&peer.ip().to_string()).unwrap_or(HeaderValue::from_static(""));
    let svc = service_fn(move |req| {
        let (s, c, ip) = (shared.clone(), cache.clone(), peer_ip.clone());
        async move { Ok::<_, Infallible>(handle(s, c, peer, ip, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(read_header_timeout)
        .title_case_headers(true)
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(tcp), svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        debug!(error = %e, "visitor HTTP connection ended with an error");
    }
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn http_date() -> HeaderValue {
    HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now()))
        .unwrap_or(HeaderValue::from_static(""))
}

/// frp's 404 (or `custom404Page`), headers in frps's order.
pub(super) async fn not_found(shared: &Vhost) -> Response<Body> {
    let page = match shared.hub.cfg.custom_404_page.as_str() {
        "" => Bytes::from_static(NOT_FOUND_PAGE.as_bytes()),
        path => match tokio::fs::read(path).await {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                warn!(file = path, error = %e, "cannot read custom404Page; serving frp's page (fix the path)");
                Bytes::from_static(NOT_FOUND_PAGE.as_bytes())
            }
        },
    };
    let mut r = Response::new(full(page.clone()));
    *r.status_mut() = StatusCode::NOT_FOUND;
    let h = r.headers_mut();
    h.insert(header::DATE, http_date());
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(page.len()));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

/// frp's 401 for missing or wrong basic-auth credentials.
fn unauthorized() -> Response<Body> {
    const BODY: &str = "Unauthorized\n";
    let mut r = Response::new(full(BODY));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Restricted\""));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::DATE, http_date());
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(BODY.len()));
    r
}

fn wants_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers, including those the Connection header names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    if h.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for n in &named {
            h.remove(n);
        }
    }
    remove_all(h, &HOP_BY_HOP);
}

/// Removes `names` from `h`, with one pass over `h` when none of them is there (the usual case: a request or
/// response of a few headers, none of them hop-by-hop), instead of one hash lookup per name.
fn remove_all(h: &mut HeaderMap, names: &[HeaderName]) {
    if h.keys_len() <= names.len() && !h.keys().any(|k| names.contains(k)) {
        return;
    }
    for n in names {
        h.remove(n);
    }
}

/// Re-adds the upgrade pair after stripping, as a reverse proxy must for the upgrade to reach the service.
fn keep_upgrade(h: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    if let Some(u) = upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, u);
    }
}

async fn handle(
    shared: Arc<Vhost>,
    cache: Arc<Mutex<Option<Backend>>>,
    peer: SocketAddr,
    peer_ip: HeaderValue,
    mut req: Request<Incoming>,
) -> Response<Body> {
    // The Host as the visitor sent it (a cheap handle on the parsed header, not a copy), else the request target's
    // authority (an absolute-form request), else empty.
    let host_value = match req.headers().get(header::HOST) {
        Some(v) => v.to_str().is_ok().then(|| v.clone()),
        None => req.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    }
    .unwrap_or(HeaderValue::from_static(""));
    let host = host_value.to_str().unwrap_or_default();
    let domain = canonical_host(host);
    let (user, password) =
        req.headers().get(header::AUTHORIZATION).and_then(|v| basic_auth(v.as_bytes())).unwrap_or_default();
    let Some(route) = shared.lookup(Kind::Http, &domain, req.uri().path(), &user) else {
        debug!(host = %domain, path = req.uri().path(), "no route for the request; 404");
        return not_found(&shared).await;
    };
    if !route.auth_ok(&user, &password) {
        debug!(proxy = %route.np.proxy_name, "missing or wrong credentials; 401");
        return unauthorized();
    }
    let upgrade = wants_upgrade(req.headers()).then(|| req.headers().get(header::UPGRADE).cloned()).flatten();
    let visitor_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));

    let (parts, body) = req.into_parts();
    let mut out = Request::new(body);
    *out.method_mut() = parts.method;
    *out.version_mut() = Version::HTTP_11;
    if parts.uri.scheme().is_none() && parts.uri.authority().is_none() {
        // Origin form (`/path?query`), what nearly every visitor sends: forwarded as it is, no re-parse.
        *out.uri_mut() = parts.uri;
    } else if let Some(pq) = parts.uri.path_and_query() {
        if let Ok(u) = pq.as_str().parse() {
            *out.uri_mut() = u;
        }
    }
    let mut headers = parts.headers;
    let prior_xff: Vec<&str> = headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
    let xff = if prior_xff.is_empty() {
        peer_ip
    } else {
        let joined = format!("{}, {}", prior_xff.join(", "), peer_ip.to_str().unwrap_or_default());
        HeaderValue::from_str(&joined).unwrap_or(peer_ip)
    };
    strip_hop_by_hop(&mut headers);
    remove_all(&mut headers, &FORWARDING);
    keep_upgrade(&mut headers, upgrade.clone());
    let np = &route.np;
    if !np.host_header_rewrite.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&np.host_header_rewrite) {
            headers.insert(header::HOST, v);
        }
    } else {
        headers.insert(header::HOST, host_value.clone());
    }
    headers.insert(&X_FORWARDED_FOR, xff);
    headers.insert(&X_FORWARDED_HOST, host_value);
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    set_headers(&mut headers, &np.headers);
    *out.headers_mut() = headers;

    // Keep-alive towards the service: the visitor connection's previous work connection, if it was for the same
    // route and is still open.
    let reused = cache.lock().ok().and_then(|mut c| c.take()).filter(|b| Arc::ptr_eq(&b.route, &route));
    let mut kept = None;
    if let Some(mut b) = reused {
        if b.sender.ready().await.is_ok() {
            kept = Some(b.sender);
        }
    }
    let mut sender = match kept {
        Some(s) => s,
        None => match open_backend(&shared, &route, peer).await {
            Some(s) => s,
            None => return not_found(&shared).await,
        },
    };
    let timeout = Duration::from_secs(match shared.hub.cfg.vhost_http_timeout {
        t if t <= 0 => 60,
        t => t as u64,
    });
    let mut resp = match tokio::time::timeout(timeout, sender.send_request(out)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            warn!(proxy = %np.proxy_name, error = %e, "the proxied request failed (is the local service speaking HTTP?); 404");
            return not_found(&shared).await;
        }
        Err(_) => {
            warn!(proxy = %np.proxy_name, "no response headers within vhostHTTPTimeout ({timeout:?}); 404");
            return not_found(&shared).await;
        }
    };
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching {
        let backend_upgrade = hyper::upgrade::on(&mut resp);
        if let Some(visitor_upgrade) = visitor_upgrade {
            let cancel = route.cancel.clone();
            shared.hub.tracker.spawn(
                async move {
                    let (v, b) = tokio::join!(visitor_upgrade, backend_upgrade);
                    let (Ok(v), Ok(b)) = (v, b) else {
                        debug!("upgrade did not complete on one side");
                        return;
                    };
                    let (mut v, mut b) = (TokioIo::new(v), TokioIo::new(b));
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        r = portway_proto::relay::relay(&mut v, &mut b) => debug!(result = ?r, "upgraded connection closed"),
                    }
                }
                .in_current_span(),
            );
        }
    } else if let Ok(mut c) = cache.lock() {
        *c = Some(Backend { route: route.clone(), sender });
    }
    let (mut rparts, rbody) = resp.into_parts();
    let resp_upgrade = switching.then(|| rparts.headers.get(header::UPGRADE).cloned()).flatten();
    strip_hop_by_hop(&mut rparts.headers);
    keep_upgrade(&mut rparts.headers, resp_upgrade);
    set_headers(&mut rparts.headers, &np.response_headers);
    Response::from_parts(rparts, rbody.boxed())
}

fn set_headers(h: &mut HeaderMap, set: &portway_proto::msg::StrMap) {
    for (k, v) in set {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            h.insert(k, v);
        }
    }
}

/// A new work connection for `route`, with an HTTP/1.1 client connection over it.
async fn open_backend(shared: &Arc<Vhost>, route: &Arc<Route>, peer: SocketAddr) -> Option<SendRequest<Incoming>> {
    let work = match route.work_conn(peer, None).await {
        Ok(w) => w,
        Err(e) => {
            warn!(proxy = %route.np.proxy_name, error = %e, "no work connection for an HTTP request; 404");
            return None;
        }
    };
    let (sender, conn) = match hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake::<_, Incoming>(TokioIo::new(work))
        .await
    {
        Ok(v) => v,
        Err(e) => {
            warn!(proxy = %route.np.proxy_name, error = %e, "HTTP over the work connection failed");
            return None;
        }
    };
    let cancel = route.cancel.clone();
    shared.hub.tracker.spawn(
        async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = conn.with_upgrades() => if let Err(e) = r { debug!(error = %e, "work connection (HTTP) ended with an error") },
            }
        }
        .in_current_span(),
    );
    Some(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_upgrades_stay() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade, X-Secret-Hop"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        assert!(wants_upgrade(&h));
        let up = h.get(header::UPGRADE).cloned();
        strip_hop_by_hop(&mut h);
        assert!(!h.contains_key("x-secret-hop") && !h.contains_key(header::TRANSFER_ENCODING));
        assert!(h.contains_key("x-keep") && !h.contains_key(header::UPGRADE));
        keep_upgrade(&mut h, up);
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h[header::CONNECTION], "Upgrade");
    }
}
