//! frpc's bridge plugins: `http2http`, `http2https`, `https2http`, `https2https` (an HTTP/1.1 reverse proxy from the
//! visitor's connection to `localAddr`, with TLS ended on the visitor's side for `https2*` and spoken to the local
//! service for `*2https`), and `tls2raw` (TLS ended, the bytes relayed to `localAddr`).
//!
//! As frpc: the certificate is `crtPath`/`keyPath`, or a self-signed one generated once per process without them;
//! the local service's certificate is not verified (it is the user's own service, often self-signed);
//! `hostHeaderRewrite` replaces `Host`; `requestHeaders.set` sets headers; `http2https` and the `https2*` ones add
//! `X-Forwarded-For` (the visitor's address appended), `X-Forwarded-Host` and `X-Forwarded-Proto`, `http2http`
//! passes none on; a TLS name (SNI) that is not the request's host is answered 421 Misdirected Request. Upgrades
//! (WebSocket) pass through. HTTP/2 is not offered to visitors yet (`enableHTTP2` is read; ALPN offers
//! `http/1.1`, which every HTTP/2 client falls back to).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use portway_proto::transport::{self, BoxedIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, warn};

use super::PluginConfig;

/// Time a visitor has for its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to reach the local service.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The bridge plugin types.
pub const TYPES: &[&str] = &["http2http", "http2https", "https2http", "https2https", "tls2raw"];

/// One bridge, built once per distinct plugin configuration (certificates read, headers parsed).
pub struct Bridge {
    /// TLS ended on the visitor's side (`https2*`, `tls2raw`).
    accept: Option<tokio_rustls::TlsAcceptor>,
    /// TLS spoken to the local service (`*2https`).
    upstream: Option<(tokio_rustls::TlsConnector, rustls::pki_types::ServerName<'static>)>,
    local_addr: String,
    host_rewrite: Option<HeaderValue>,
    set: Vec<(HeaderName, HeaderValue)>,
    /// Add X-Forwarded-* (all but http2http).
    forwarded: bool,
    /// tls2raw: no HTTP, bytes relayed.
    raw: bool,
}

/// Why a bridge cannot be built: names the plugin's key.
fn tls_error(e: transport::TlsError) -> String {
    format!("{e}; check plugin.crtPath and plugin.keyPath (PEM files), or remove both for a self-signed certificate")
}

/// The self-signed certificate used without crtPath/keyPath, generated once per process (as frpc does at start).
fn self_signed() -> Result<Arc<rustls::ServerConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ServerConfig>, String>> = OnceLock::new();
    CONFIG.get_or_init(|| server_tls(None)).clone()
}

fn server_tls(files: Option<(&str, &str)>) -> Result<Arc<rustls::ServerConfig>, String> {
    let tls = match files {
        Some((crt, key)) => {
            transport::ServerTls { cert_file: Some(crt.into()), key_file: Some(key.into()), trusted_ca_file: None }
        }
        None => transport::ServerTls::default(),
    };
    let cfg = transport::server_config_named(&tls, ("plugin.crtPath", "plugin.keyPath")).map_err(tls_error)?;
    let mut cfg = (*cfg).clone();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

impl Bridge {
    fn build(p: &PluginConfig) -> Result<Bridge, String> {
        let kind = p.kind.as_str();
        let accept = if kind.starts_with("https2") || kind == "tls2raw" {
            let cfg =
                if p.crt_path.is_empty() { self_signed()? } else { server_tls(Some((&p.crt_path, &p.key_path)))? };
            Some(tokio_rustls::TlsAcceptor::from(cfg))
        } else {
            None
        };
        let upstream = if kind.ends_with("2https") {
            let cfg = transport::client_config(&transport::ClientTls::default()).map_err(|e| e.to_string())?;
            let (host, _) = crate::dns::split_host_port(&p.local_addr);
            let name = transport::server_name(host.trim_start_matches('[').trim_end_matches(']'))
                .map_err(|e| format!("plugin.localAddr {:?}: {e}", p.local_addr))?;
            Some((tokio_rustls::TlsConnector::from(cfg), name))
        } else {
            None
        };
        let host_rewrite = match p.host_header_rewrite.trim() {
            "" => None,
            h => Some(
                HeaderValue::from_str(h)
                    .map_err(|_| format!("plugin.hostHeaderRewrite {h:?} is not a header value"))?,
            ),
        };
        let mut set = Vec::new();
        for (k, v) in &p.request_headers.set {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("plugin.requestHeaders.set: {k:?} is not a header name"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| format!("plugin.requestHeaders.set.{k}: the value is not a header value"))?;
            set.push((name, value));
        }
        Ok(Bridge {
            accept,
            upstream,
            local_addr: p.local_addr.trim().to_string(),
            host_rewrite,
            set,
            forwarded: kind != "http2http",
            raw: kind == "tls2raw",
        })
    }

    /// The bridge for this configuration, built on first use and kept (certificates are read once, as frpc reads
    /// them when the proxy starts).
    pub fn of(p: &PluginConfig) -> Result<Arc<Bridge>, String> {
        static CACHE: OnceLock<Mutex<HashMap<String, Arc<Bridge>>>> = OnceLock::new();
        // Only the bridge keys are set on a bridge plugin (checked at load): none of them is a secret.
        let key = format!(
            "{}|{}|{}|{}|{}|{:?}",
            p.kind, p.local_addr, p.crt_path, p.key_path, p.host_header_rewrite, p.request_headers.set
        );
        let cache = CACHE.get_or_init(Default::default);
        if let Some(b) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(b.clone());
        }
        let b = Arc::new(Bridge::build(p)?);
        cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, b.clone());
        Ok(b)
    }
}

type Body = BoxBody<Bytes, hyper::Error>;

fn reply(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())).map_err(|n| match n {}).boxed());
    *r.status_mut() = status;
    r
}

/// A host without its port, lower case (`Host` and SNI compared as frp compares them).
fn canonical_host(h: &str) -> String {
    let h = h.trim();
    let host = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match h.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => h,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Headers that belong to one hop and are not forwarded (RFC 9110 7.6.1), except for an upgrade's pair.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

/// Serves one visitor connection. `src`: the visitor's address as the server saw it.
pub async fn serve(
    p: &PluginConfig,
    conn: BoxedIo,
    dns: crate::dns::Resolver,
    src: Option<String>,
) -> Option<(u64, u64)> {
    let bridge = match Bridge::of(p) {
        Ok(b) => b,
        Err(e) => {
            warn!(plugin = %p.kind, error = %e, "plugin cannot serve the connection");
            return None;
        }
    };
    let (io, sni): (BoxedIo, Option<String>) = match &bridge.accept {
        Some(acc) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acc.accept(conn)).await {
            Ok(Ok(tls)) => {
                let sni = tls.get_ref().1.server_name().map(str::to_string);
                (Box::new(tls), sni)
            }
            Ok(Err(e)) => {
                debug!(plugin = %p.kind, error = %e, "TLS handshake with the visitor failed");
                return None;
            }
            Err(_) => {
                debug!(plugin = %p.kind, "TLS handshake with the visitor timed out");
                return None;
            }
        },
        None => (conn, None),
    };
    if bridge.raw {
        let mut io = io;
        let mut local = match dial_local(&bridge, &dns).await {
            Ok(s) => s,
            Err(e) => {
                warn!(plugin = %p.kind, local = %bridge.local_addr, error = %e, "cannot reach plugin.localAddr");
                return None;
            }
        };
        return tokio::io::copy_bidirectional(&mut io, &mut local).await.ok();
    }
    let proto = if bridge.accept.is_some() { "https" } else { "http" };
    let upstream: Arc<tokio::sync::Mutex<Option<hyper::client::conn::http1::SendRequest<Incoming>>>> = Arc::default();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (bridge, dns, src, sni, upstream) = (bridge.clone(), dns, src.clone(), sni.clone(), upstream.clone());
        async move {
            Ok::<_, std::convert::Infallible>(
                forward(&bridge, &dns, src.as_deref(), sni.as_deref(), proto, &upstream, req).await,
            )
        }
    });
    let served =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service).with_upgrades().await;
    if let Err(e) = served {
        debug!(error = %e, "bridge plugin: the visitor's connection ended");
    }
    None
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn dial_local(bridge: &Bridge, dns: &crate::dns::Resolver) -> std::io::Result<Box<dyn Stream>> {
    let tcp = tokio::time::timeout(DIAL_TIMEOUT, dns.connect_addr(&bridge.local_addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 10 s"))??;
    transport::tune(&tcp);
    match &bridge.upstream {
        Some((connector, name)) => Ok(Box::new(connector.connect(name.clone(), tcp).await?)),
        None => Ok(Box::new(tcp)),
    }
}

async fn forward(
    bridge: &Bridge,
    dns: &crate::dns::Resolver,
    src: Option<&str>,
    sni: Option<&str>,
    proto: &str,
    upstream: &tokio::sync::Mutex<Option<hyper::client::conn::http1::SendRequest<Incoming>>>,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_string();
    if let Some(sni) = sni {
        if !sni.is_empty() && canonical_host(sni) != canonical_host(&host) {
            return reply(StatusCode::MISDIRECTED_REQUEST, "");
        }
    }
    let upgrade = req.headers().contains_key(hyper::header::UPGRADE).then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let kept_upgrade = parts.headers.get(hyper::header::UPGRADE).cloned();
    // Headers named in Connection are hop-by-hop too.
    let named: Vec<HeaderName> = parts
        .headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named.iter().chain(HOP_BY_HOP.iter().map(|h| HeaderName::from_static(h)).collect::<Vec<_>>().iter()) {
        parts.headers.remove(n);
    }
    if let Some(u) = kept_upgrade {
        parts.headers.insert(hyper::header::UPGRADE, u);
        parts.headers.insert(hyper::header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let xff = HeaderName::from_static("x-forwarded-for");
    let xfh = HeaderName::from_static("x-forwarded-host");
    let xfp = HeaderName::from_static("x-forwarded-proto");
    if bridge.forwarded {
        let prior: Vec<String> =
            parts.headers.get_all(&xff).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect();
        let mut chain = prior.join(", ");
        if let Some(ip) = src.filter(|s| !s.is_empty()) {
            if !chain.is_empty() {
                chain.push_str(", ");
            }
            chain.push_str(ip);
        }
        parts.headers.remove(&xff);
        if let Ok(v) = HeaderValue::from_str(&chain) {
            if !chain.is_empty() {
                parts.headers.insert(xff, v);
            }
        }
        match HeaderValue::from_str(&host) {
            Ok(v) if !host.is_empty() => {
                parts.headers.insert(xfh, v);
            }
            _ => {
                parts.headers.remove(&xfh);
            }
        }
        parts.headers.insert(xfp, HeaderValue::from_static(if proto == "https" { "https" } else { "http" }));
    } else {
        for h in [xff, xfh, xfp] {
            parts.headers.remove(h);
        }
    }
    if let Some(h) = &bridge.host_rewrite {
        parts.headers.insert(HOST, h.clone());
    }
    for (k, v) in &bridge.set {
        parts.headers.insert(k.clone(), v.clone());
    }
    // Origin form towards the local service.
    if let Some(pq) = parts.uri.path_and_query().cloned() {
        parts.uri = pq.as_str().parse().unwrap_or_default();
    }
    let out = Request::from_parts(parts, body);

    let mut slot = upstream.lock().await;
    let reusable = slot.as_ref().is_some_and(|s| !s.is_closed());
    if !reusable {
        let stream = match dial_local(bridge, dns).await {
            Ok(s) => s,
            Err(e) => {
                warn!(local = %bridge.local_addr, error = %e, "bridge plugin: cannot reach plugin.localAddr");
                return reply(StatusCode::BAD_GATEWAY, "");
            }
        };
        let (sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(x) => x,
            Err(e) => {
                warn!(local = %bridge.local_addr, error = %e, "bridge plugin: the local service's connection failed");
                return reply(StatusCode::BAD_GATEWAY, "");
            }
        };
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        *slot = Some(sender);
    }
    let Some(sender) = slot.as_mut() else { return reply(StatusCode::BAD_GATEWAY, "") };
    if sender.ready().await.is_err() {
        *slot = None;
        return reply(StatusCode::BAD_GATEWAY, "");
    }
    let mut resp = match sender.send_request(out).await {
        Ok(r) => r,
        Err(e) => {
            *slot = None;
            warn!(local = %bridge.local_addr, error = %e, "bridge plugin: the local service did not answer");
            return reply(StatusCode::BAD_GATEWAY, "");
        }
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        // The upstream connection now belongs to the upgraded stream.
        *slot = None;
        if let Some(down) = upgrade {
            let up = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                if let (Ok(down), Ok(up)) = (down.await, up.await) {
                    let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(down), &mut TokioIo::new(up)).await;
                }
            });
        }
    }
    drop(slot);
    resp.map(|b| b.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_compare_without_port_and_case() {
        assert_eq!(canonical_host("Example.COM:8443"), "example.com");
        assert_eq!(canonical_host("[::1]:443"), "::1");
        assert_eq!(canonical_host("::1"), "::1");
        assert_eq!(canonical_host("example.com."), "example.com");
    }

    #[test]
    fn a_bad_certificate_path_names_the_plugin_keys() {
        let p = PluginConfig {
            kind: "https2http".into(),
            local_addr: "127.0.0.1:80".into(),
            crt_path: "/nonexistent/server.crt".into(),
            key_path: "/nonexistent/server.key".into(),
            ..Default::default()
        };
        let e = Bridge::of(&p).err().expect("refused");
        assert!(e.contains("plugin.crtPath") && e.contains("/nonexistent/server.crt"), "{e}");
    }
}
