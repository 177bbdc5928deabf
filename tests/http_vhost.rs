//! HTTP and HTTPS virtual hosts and tcpmux, end to end on 127.0.0.1: a Portway client and server in-process, real
//! services behind them (hyper, tokio-tungstenite, rustls), and visitors that are real HTTP/WebSocket/TLS clients
//! or raw sockets replaying what a visitor sent to real frps v0.70 (`tests/fixtures/frp-captures/http-vhost`).
//! Where frps itself produced the answer (404 page, 401, SNI alert, CONNECT answers) Portway's bytes are compared
//! with frps's, the `Date` value aside. A last test drives Portway's server with the captured real-frpc bytes.

#[path = "support/frp_capture.rs"]
mod frp_capture;
mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use support::scenarios::MIB;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const CAPTURE: &str = "http-vhost";

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_TIMEOUT, f).await.expect("test timed out");
}

// ---------------------------------------------------------------------------------------------------------------
// Services behind the tunnel.

/// An HTTP service (hyper) that answers with what it received: request line, headers, body. `/upload` answers the
/// body's length and SHA-256 instead, reading it as it streams.
async fn http_backend(name: &'static str) -> (u16, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
    let port = l.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(move |req| backend_answer(name, req));
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
            });
        }
    });
    (port, task)
}

async fn backend_answer(name: &'static str, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if req.uri().path().starts_with("/upload") {
        let chunked = req.headers().get("transfer-encoding").is_some_and(|v| v == "chunked");
        let mut body = req.into_body();
        let (mut n, mut h) = (0u64, Sha256::new());
        while let Some(f) = body.frame().await {
            if let Some(d) = f?.data_ref() {
                n += d.len() as u64;
                h.update(d);
            }
        }
        let text = format!("bytes={n} sha256={} chunked={chunked}", hex::encode(h.finalize()));
        return Ok(Response::new(Full::new(Bytes::from(text))));
    }
    let mut text = format!("backend {name} received:\n{} {}\n", req.method(), req.uri());
    for (k, v) in req.headers() {
        text.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
    }
    let body = req.into_body().collect().await?.to_bytes();
    text.push_str(&format!("body: {}\n", String::from_utf8_lossy(&body)));
    let mut r = Response::new(Full::new(Bytes::from(text)));
    r.headers_mut().insert("x-backend", name.parse().expect("header"));
    Ok(r)
}

/// A WebSocket service (tokio-tungstenite) answering each text message with `echo: ` + the message.
async fn ws_backend() -> (u16, JoinHandle<()>) {
    use tokio_tungstenite::tungstenite::Message;
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind ws backend");
    let port = l.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                while let Some(Ok(m)) = ws.next().await {
                    let reply = match m {
                        Message::Text(t) => Message::text(format!("echo: {}", t.as_str())),
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if ws.send(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, task)
}

/// A TLS service (rustls, certificate for `name` from rcgen) that answers one HTTP request with the server name
/// the TLS handshake carried. Returns its port, the certificate to trust, and the task.
async fn tls_backend(name: &str) -> (u16, rustls::pki_types::CertificateDer<'static>, JoinHandle<()>) {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("cert");
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind tls backend");
    let port = l.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let sni = tls.get_ref().1.server_name().unwrap_or("").to_string();
                let mut head = Vec::new();
                let mut b = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut b).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                let body = format!("tls backend: sni={sni}");
                let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, cert, task)
}

// ---------------------------------------------------------------------------------------------------------------
// Visitors.

async fn http_conn(port: u16) -> SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("connect to the vhost");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("HTTP handshake");
    tokio::spawn(conn);
    sender
}

async fn get(
    s: &mut SendRequest<Full<Bytes>>,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let mut b = Request::builder().uri(path).header("host", host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::new())).expect("request");
    s.ready().await.expect("the visitor connection stays open (keep-alive)");
    let resp = s.send_request(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, String::from_utf8_lossy(&body).into_owned())
}

/// Reads one HTTP response from a raw socket (head, then Content-Length bytes).
async fn read_response(c: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().expect("content-length"))
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                buf.truncate(end + 4 + len);
                return buf;
            }
        }
        let n = c.read(&mut b).await.expect("read response");
        assert!(n > 0, "connection closed mid-response after {} bytes: {:?}", buf.len(), String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&b[..n]);
    }
}

/// Sends `request` on a new connection to `port` and reads one response.
async fn exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    c.write_all(request).await.expect("write request");
    read_response(&mut c).await
}

/// The bytes of one section of a `visitor-*.txt` capture (`request sent` or `response received`).
fn visitor_bytes(file: &str, section: &str) -> Vec<u8> {
    let text = frp_capture::read_fixture(CAPTURE, file);
    let mut lines = text.lines().skip_while(|l| !l.starts_with(&format!("== {section}"))).skip(1);
    let mut out: Vec<&str> = Vec::new();
    for l in lines.by_ref() {
        match l.strip_prefix("  |") {
            Some(rest) => out.push(rest.strip_prefix(' ').unwrap_or(rest)),
            None => break,
        }
    }
    assert!(!out.is_empty(), "{file}: no {section} section");
    out.join("\n").replace("\\r", "\r").into_bytes()
}

/// A response with its `Date` value blanked (the only part that differs between runs).
fn without_date(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .split("\r\n")
        .map(|l| if l.to_ascii_lowercase().starts_with("date: ") { "Date: <date>" } else { l })
        .collect::<Vec<_>>()
        .join("\r\n")
}

// ---------------------------------------------------------------------------------------------------------------
// Setup.

struct Tunnel {
    server: TestServer,
    /// None when the test speaks frp itself.
    client: Option<portway::client::ClientHandle>,
    http: u16,
    https: u16,
    tcpmux: u16,
}

impl Tunnel {
    async fn start(server_extra: &str, client_extra: &str, proxies: &str, names: &[&str]) -> Tunnel {
        init_logs();
        let (http, https, tcpmux) = (free_port(), free_port(), free_port());
        let server = start_server(
            &server_toml(&format!(
                "vhostHTTPPort = {http}\nvhostHTTPSPort = {https}\ntcpmuxHTTPConnectPort = {tcpmux}\nsubDomainHost = \"example.test\"\n{server_extra}"
            )),
            0,
        )
        .await;
        let client = start_client(client_config(&client_toml(server.addr.port(), client_extra, proxies)));
        wait_running(&client, names).await;
        Tunnel { server, client: Some(client), http, https, tcpmux }
    }

    fn client(&self) -> &portway::client::ClientHandle {
        self.client.as_ref().expect("a client")
    }

    fn remote_addr(&self, name: &str) -> String {
        match &self.client().status().proxies[name].state {
            portway::client::ProxyState::Running { remote_addr } => remote_addr.clone(),
            other => panic!("{name} is not running: {other:?}"),
        }
    }

    async fn stop(self) {
        if let Some(c) = self.client {
            c.stop().await.expect("client stops");
        }
        self.server.shutdown().await;
    }
}

/// The capture's `web` proxy (frpc.toml of the capture, local port replaced) plus a few more.
fn web_proxies(a: u16, b: u16) -> String {
    format!(
        r#"
[[proxies]]
name = "web"
type = "http"
localIP = "127.0.0.1"
localPort = {a}
customDomains = ["web.portway.test"]
locations = ["/", "/api"]
hostHeaderRewrite = "backend.internal"
requestHeaders.set.x-from-where = "frp"
responseHeaders.set.x-served-by = "frps-capture"
httpUser = "admin"
httpPassword = "admin"

[[proxies]]
name = "app"
type = "http"
localPort = {a}
subdomain = "app"

[[proxies]]
name = "split-root"
type = "http"
localPort = {a}
customDomains = ["split.portway.test"]
locations = ["/"]

[[proxies]]
name = "split-api"
type = "http"
localPort = {b}
customDomains = ["split.portway.test"]
locations = ["/api"]
transport.useEncryption = true
transport.useCompression = true

[[proxies]]
name = "wild"
type = "http"
localPort = {b}
customDomains = ["*.wild.test"]
"#
    )
}

const WEB_NAMES: &[&str] = &["web", "app", "split-root", "split-api", "wild"];

// ---------------------------------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_vhost_routes_by_domain_location_subdomain_and_wildcard() {
    bounded(async {
        let (a, _a) = http_backend("a").await;
        let (b, _b) = http_backend("b").await;
        let t = Tunnel::start("", "", &web_proxies(a, b), WEB_NAMES).await;
        let p = t.http;
        // frp's remote_addr: one `domain:port` per domain and location.
        assert_eq!(t.remote_addr("web"), format!("web.portway.test:{p},web.portway.test:{p}"));
        assert_eq!(t.remote_addr("app"), format!("app.example.test:{p}"));

        let mut v = http_conn(p).await;
        // One visitor connection, keep-alive, four routes.
        let (s, h, body) = get(&mut v, "split.portway.test", "/index.html", &[]).await;
        assert_eq!((s, h["x-backend"].to_str().unwrap()), (StatusCode::OK, "a"), "{body}");
        let (s, h, body) = get(&mut v, "split.portway.test:8080", "/api/items?x=1", &[]).await;
        assert_eq!((s, h["x-backend"].to_str().unwrap()), (StatusCode::OK, "b"), "longest location wins: {body}");
        assert!(body.contains("GET /api/items?x=1\n"), "{body}");
        let (s, h, body) = get(&mut v, "App.Example.Test", "/", &[]).await;
        assert_eq!((s, h["x-backend"].to_str().unwrap()), (StatusCode::OK, "a"), "{body}");
        assert!(body.contains("host: App.Example.Test\n"), "Host passes unchanged without hostHeaderRewrite: {body}");
        assert!(body.contains("x-forwarded-for: 127.0.0.1\n"), "{body}");
        assert!(body.contains("x-forwarded-proto: http\n"), "{body}");
        let (s, h, _) = get(&mut v, "deep.name.wild.test", "/", &[]).await;
        assert_eq!((s, h["x-backend"].to_str().unwrap()), (StatusCode::OK, "b"), "*.wild.test matches a deeper name");
        // A proxy's X-Forwarded-For is appended to, as frp does.
        let (_, _, body) = get(&mut v, "split.portway.test", "/", &[("x-forwarded-for", "10.0.0.1")]).await;
        assert!(body.contains("x-forwarded-for: 10.0.0.1, 127.0.0.1\n"), "{body}");
        let (s, _, body) = get(&mut v, "nobody.portway.test", "/", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(body.contains("The page you requested was not found."), "{body}");
        t.stop().await;
    })
    .await;
}

/// What frps answered (401, 404) compared byte for byte; what frps forwarded (rewritten Host, added headers,
/// X-Forwarded-*) seen by the service; frps's responseHeaders on the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_vhost_answers_as_frps_did_in_the_capture() {
    bounded(async {
        let (a, _a) = http_backend("a").await;
        let (b, _b) = http_backend("b").await;
        let t = Tunnel::start("", "", &web_proxies(a, b), WEB_NAMES).await;
        for file in ["visitor-auth-missing.txt", "visitor-auth-wrong.txt", "visitor-unknown-host.txt"] {
            let got = exchange(t.http, &visitor_bytes(file, "request sent")).await;
            let want = visitor_bytes(file, "response received");
            assert_eq!(without_date(&got), without_date(&want), "{file}: Portway's answer differs from frps's");
        }

        let got = exchange(t.http, &visitor_bytes("visitor-known-host.txt", "request sent")).await;
        let text = String::from_utf8_lossy(&got).to_string();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nX-Served-By: frps-capture\r\n"), "responseHeaders.set: {text}");
        for seen in [
            "GET /api/items?x=1\n",
            "host: backend.internal\n",
            "authorization: Basic YWRtaW46YWRtaW4=\n",
            "x-forwarded-for: 127.0.0.1\n",
            "x-forwarded-host: web.portway.test\n",
            "x-forwarded-proto: http\n",
            "x-from-where: frp\n",
            "x-visitor: 1\n",
            "user-agent: capture/1.0\n",
        ] {
            assert!(text.contains(seen), "the service should have seen {seen:?}: {text}");
        }

        let got = exchange(t.http, &visitor_bytes("visitor-known-host-post.txt", "request sent")).await;
        let text = String::from_utf8_lossy(&got).to_string();
        assert!(text.contains("POST /submit\n") && text.contains("body: hello portway\n"), "{text}");
        assert!(text.contains("x-forwarded-host: web.portway.test:18080\n"), "{text}");

        // custom404Page replaces frp's page.
        t.stop().await;
        let dir = std::env::temp_dir().join(format!("portway-404-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let page = dir.join("404.html");
        std::fs::write(&page, "<h1>nothing here</h1>\n").expect("write page");
        let t = Tunnel::start(
            &format!("custom404Page = {:?}", page.display().to_string()),
            "",
            &web_proxies(a, b),
            WEB_NAMES,
        )
        .await;
        let got = exchange(t.http, b"GET / HTTP/1.1\r\nHost: nobody.test\r\n\r\n").await;
        let text = String::from_utf8_lossy(&got).to_string();
        assert!(
            text.starts_with("HTTP/1.1 404 Not Found\r\n") && text.ends_with("\r\n\r\n<h1>nothing here</h1>\n"),
            "{text}"
        );
        t.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_route_by_http_user() {
    bounded(async {
        let (a, _a) = http_backend("a").await;
        let (b, _b) = http_backend("b").await;
        let proxies = format!(
            r#"
[[proxies]]
name = "alice"
type = "http"
localPort = {a}
customDomains = ["team.portway.test"]
routeByHTTPUser = "alice"
httpUser = "alice"
httpPassword = "wonderland"

[[proxies]]
name = "others"
type = "http"
localPort = {b}
customDomains = ["team.portway.test"]
"#
        );
        let t = Tunnel::start("", "", &proxies, &["alice", "others"]).await;
        let mut v = http_conn(t.http).await;
        let alice = "Basic YWxpY2U6d29uZGVybGFuZA=="; // alice:wonderland
        let (s, h, _) = get(&mut v, "team.portway.test", "/", &[("authorization", alice)]).await;
        assert_eq!((s, h["x-backend"].to_str().unwrap()), (StatusCode::OK, "a"));
        let (s, h, _) = get(&mut v, "team.portway.test", "/", &[("authorization", "Basic YWxpY2U6bm9wZQ==")]).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "alice with a wrong password");
        assert_eq!(h["www-authenticate"], "Basic realm=\"Restricted\"");
        let (s, h, _) = get(&mut v, "team.portway.test", "/", &[]).await;
        assert_eq!(
            (s, h["x-backend"].to_str().unwrap()),
            (StatusCode::OK, "b"),
            "no user: the proxy without routeByHTTPUser"
        );
        t.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_passes_through_the_vhost() {
    use tokio_tungstenite::tungstenite::Message;
    bounded(async {
        let (w, _w) = ws_backend().await;
        let proxies = format!(
            "[[proxies]]\nname = \"chat\"\ntype = \"http\"\nlocalPort = {w}\ncustomDomains = [\"chat.portway.test\"]\nresponseHeaders.set.x-served-by = \"portway\"\n"
        );
        let t = Tunnel::start("", "", &proxies, &["chat"]).await;
        let tcp = TcpStream::connect(("127.0.0.1", t.http)).await.expect("connect");
        let (mut ws, resp) =
            tokio_tungstenite::client_async("ws://chat.portway.test/chat", tcp).await.expect("WebSocket handshake");
        assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(resp.headers()["x-served-by"], "portway");
        for i in 0..3 {
            ws.send(Message::text(format!("hello portway {i}"))).await.expect("send");
            let m = ws.next().await.expect("a reply").expect("a message");
            assert_eq!(m.into_text().expect("text").as_str(), format!("echo: hello portway {i}"));
        }
        ws.close(None).await.expect("close");
        t.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_chunked_upload_streams_through_the_vhost() {
    bounded(async {
        let (a, _a) = http_backend("a").await;
        let proxies = format!(
            "[[proxies]]\nname = \"up\"\ntype = \"http\"\nlocalPort = {a}\ncustomDomains = [\"up.portway.test\"]\n"
        );
        let t = Tunnel::start("", "", &proxies, &["up"]).await;
        const CHUNKS: u64 = 64;
        let mut want = Sha256::new();
        for i in 0..CHUNKS {
            want.update(pattern(MIB, i));
        }
        let want = hex::encode(want.finalize());
        // Chunks are made as the body is sent: no Content-Length, chunked on the wire.
        let body = StreamBody::new(futures::stream::iter(
            (0..CHUNKS).map(|i| Ok::<_, Infallible>(Frame::data(Bytes::from(pattern(MIB, i))))),
        ));
        let tcp = TcpStream::connect(("127.0.0.1", t.http)).await.expect("connect");
        let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("handshake");
        tokio::spawn(conn);
        let req = Request::post("/upload").header("host", "up.portway.test").body(body).expect("request");
        let resp = s.send_request(req).await.expect("response");
        assert_eq!(resp.status(), StatusCode::OK);
        let text =
            String::from_utf8(resp.into_body().collect().await.expect("body").to_bytes().to_vec()).expect("utf8");
        assert_eq!(text, format!("bytes={} sha256={want} chunked=true", CHUNKS as usize * MIB));
        // The dashboard counts the vhost's bytes: the whole upload in (plus the request head and chunk framing), the
        // answer out.
        let rec = t.server.stats.registry().proxy("up", portway::server::oidc::now()).expect("up in the registry");
        let upload = CHUNKS * MIB as u64;
        assert!(rec.total_in >= upload && rec.total_in < upload + 64 * 1024, "bytes in: {}", rec.total_in);
        assert!(rec.total_out >= text.len() as u64 && rec.total_out < 4096, "bytes out: {}", rec.total_out);
        t.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_routes_by_sni_without_terminating_tls() {
    bounded(async {
        let (port, cert, _tls) = tls_backend("secure.portway.test").await;
        let proxies = format!(
            "[[proxies]]\nname = \"secure\"\ntype = \"https\"\nlocalPort = {port}\ncustomDomains = [\"secure.portway.test\"]\n"
        );
        let t = Tunnel::start("", "", &proxies, &["secure"]).await;
        assert_eq!(t.remote_addr("secure"), format!("secure.portway.test:{}", t.https));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).expect("trust the service's certificate");
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        // The handshake is end to end: the visitor verifies the service's own certificate through the vhost.
        let tcp = TcpStream::connect(("127.0.0.1", t.https)).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("secure.portway.test").expect("name");
        let mut tls = connector.connect(name, tcp).await.expect("TLS handshake with the service through the vhost");
        tls.write_all(b"GET /tls-check HTTP/1.1\r\nHost: secure.portway.test\r\n\r\n").await.expect("write");
        let mut got = Vec::new();
        let _ = tls.read_to_end(&mut got).await;
        let text = String::from_utf8_lossy(&got);
        assert!(text.ends_with("tls backend: sni=secure.portway.test"), "{text}");

        // An unknown name: frps's alert, byte for byte (visitor-https-unknown-sni.txt), then the close.
        let capture = frp_capture::read_fixture(CAPTURE, "visitor-https-unknown-sni.txt");
        assert!(capture.contains("received bytes begin: 15030300020270"), "capture changed");
        let mut c = TcpStream::connect(("127.0.0.1", t.https)).await.expect("connect");
        c.write_all(&client_hello("nobody.portway.test")).await.expect("hello");
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.expect("read until close");
        assert_eq!(hex::encode(&got), "15030300020270");
        // No SNI at all (a ClientHello for an IP address carries none): the same alert.
        let mut c = TcpStream::connect(("127.0.0.1", t.https)).await.expect("connect");
        c.write_all(&client_hello("127.0.0.1")).await.expect("hello");
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.expect("read until close");
        assert_eq!(hex::encode(&got), "15030300020270");
        // A ClientHello trickling in 7 bytes at a time is still routed: the service answers with its ServerHello.
        let mut c = TcpStream::connect(("127.0.0.1", t.https)).await.expect("connect");
        c.set_nodelay(true).expect("nodelay");
        for piece in client_hello("secure.portway.test").chunks(7) {
            c.write_all(piece).await.expect("piece");
            tokio::task::yield_now().await;
        }
        let mut first = [0u8; 1];
        c.read_exact(&mut first).await.expect("the service's answer");
        assert_eq!(first[0], 0x16, "a TLS handshake record from the service");
        // Not TLS at all: closed without an answer; the listener keeps serving.
        let mut c = TcpStream::connect(("127.0.0.1", t.https)).await.expect("connect");
        c.write_all(b"GET / HTTP/1.1\r\nHost: secure.portway.test\r\n\r\n").await.expect("write");
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.expect("read until close");
        assert!(got.is_empty(), "{got:?}");
        t.stop().await;
    })
    .await;
}

fn client_hello(name: &str) -> Vec<u8> {
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let server = rustls::pki_types::ServerName::try_from(name.to_string()).expect("name");
    let mut c = rustls::ClientConnection::new(Arc::new(cfg), server).expect("client");
    let mut out = Vec::new();
    c.write_tls(&mut out).expect("hello");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcpmux_http_connect_routes_by_host_as_frps_did() {
    bounded(async {
        let (echo, _e) = echo_server().await;
        let proxies = format!(
            "[[proxies]]\nname = \"mux\"\ntype = \"tcpmux\"\nmultiplexer = \"httpconnect\"\nlocalPort = {echo}\ncustomDomains = [\"mux.portway.test\"]\n"
        );
        let t = Tunnel::start("", "", &proxies, &["mux"]).await;
        assert_eq!(t.remote_addr("mux"), format!("mux.portway.test:{}", t.tcpmux));
        let mut c = TcpStream::connect(("127.0.0.1", t.tcpmux)).await.expect("connect");
        c.write_all(&visitor_bytes("visitor-tcpmux-connect.txt", "request sent")).await.expect("CONNECT");
        let want = visitor_bytes("visitor-tcpmux-connect.txt", "response received");
        let mut got = vec![0u8; want.len()];
        c.read_exact(&mut got).await.expect("CONNECT answer");
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
        c.write_all(b"hello portway").await.expect("write");
        let mut echo = [0u8; 13];
        c.read_exact(&mut echo).await.expect("echo");
        assert_eq!(&echo, b"hello portway");

        let mut c = TcpStream::connect(("127.0.0.1", t.tcpmux)).await.expect("connect");
        c.write_all(&visitor_bytes("visitor-tcpmux-unknown.txt", "request sent")).await.expect("CONNECT");
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.expect("read until close");
        let want = visitor_bytes("visitor-tcpmux-unknown.txt", "response received");
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "frps's 404 for CONNECT, then close");
        t.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_get_a_status_and_other_hosts_are_unaffected() {
    bounded(async {
        let (a, _a) = http_backend("a").await;
        let (b, _b) = http_backend("b").await;
        let t = Tunnel::start("", "", &web_proxies(a, b), WEB_NAMES).await;
        let long_host = format!("GET / HTTP/1.1\r\nHost: {}.test\r\n\r\n", "h".repeat(10 * 1024));
        let got = exchange(t.http, long_host.as_bytes()).await;
        assert!(got.starts_with(b"HTTP/1.1 404 Not Found\r\n"), "a 10 KB Host is just unknown");
        let got = exchange(t.http, b"GET / HTTP/1.0\r\n\r\n").await;
        assert!(
            got.starts_with(b"HTTP/1.0 404 Not Found\r\n") || got.starts_with(b"HTTP/1.1 404"),
            "HTTP/1.0 without Host"
        );
        let flood: String = (0..200).map(|i| format!("X-Flood-{i}: {i}\r\n")).collect();
        let got =
            exchange(t.http, format!("GET / HTTP/1.1\r\nHost: split.portway.test\r\n{flood}\r\n").as_bytes()).await;
        assert!(got.starts_with(b"HTTP/1.1 431 "), "header flood: {}", String::from_utf8_lossy(&got));
        let mut c = TcpStream::connect(("127.0.0.1", t.http)).await.expect("connect");
        c.write_all(b"NOT HTTP AT ALL\x00\x01\r\n\r\n").await.expect("write");
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got).await;
        assert!(got.starts_with(b"HTTP/1.1 400 "), "garbage: {}", String::from_utf8_lossy(&got));
        let mut v = http_conn(t.http).await;
        let (s, h, _) = get(&mut v, "split.portway.test", "/", &[]).await;
        assert_eq!((s, h["x-backend"].to_str().unwrap()), (StatusCode::OK, "a"), "still serving");
        t.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refuses_domains_under_subdomain_host_and_duplicates() {
    bounded(async {
        let (a, _a) = http_backend("a").await;
        let proxies = format!(
            r#"
[[proxies]]
name = "first"
type = "http"
localPort = {a}
customDomains = ["dup.portway.test"]

[[proxies]]
name = "second"
type = "http"
localPort = {a}
customDomains = ["dup.portway.test"]

[[proxies]]
name = "under"
type = "http"
localPort = {a}
customDomains = ["web.example.test"]
"#
        );
        let t = Tunnel::start("", "", &proxies, &[]).await;
        let is_err = |s: &portway::client::Status, n: &str| {
            matches!(s.proxies[n].state, portway::client::ProxyState::Error { .. })
        };
        let is_run = |s: &portway::client::Status, n: &str| {
            matches!(s.proxies[n].state, portway::client::ProxyState::Running { .. })
        };
        // The client registers in no set order: whichever of the two came first holds the domain.
        let st = wait_status(t.client(), Duration::from_secs(30), "one holder and two refusals", |s| {
            is_err(s, "under")
                && ((is_run(s, "first") && is_err(s, "second")) || (is_run(s, "second") && is_err(s, "first")))
        })
        .await;
        let reason = |n: &str| match &st.proxies[n].state {
            portway::client::ProxyState::Error { reason } => reason.clone(),
            other => panic!("{other:?}"),
        };
        let loser = if is_err(&st, "first") { "first" } else { "second" };
        assert_eq!(reason(loser), "router config conflict");
        assert_eq!(
            reason("under"),
            "custom domain [web.example.test] should not belong to subdomain host [example.test]"
        );
        t.stop().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------------
// Real frpc's bytes against Portway's server.

/// The JSON bodies of the transcript lines `decrypted frame '<t>' <Name>: {...}` in `file`, in order.
fn transcript_frames(file: &str, ty: char) -> Vec<String> {
    let marker = format!("decrypted frame '{ty}' ");
    frp_capture::read_fixture(CAPTURE, file)
        .lines()
        .filter_map(|l| l.split_once(&marker).map(|(_, rest)| rest.split_once(": ").expect("name: json").1.to_string()))
        .collect()
}

/// The capture's ports (frps.toml) replaced by this run's.
fn with_ports(s: &str, t: &Tunnel) -> String {
    s.replace(":18080", &format!(":{}", t.http))
        .replace(":18443", &format!(":{}", t.https))
        .replace(":18090", &format!(":{}", t.tcpmux))
}

/// One relay connection's bytes in one direction, split into its first frame and what follows.
fn capture_conn(conn: u32, dir: frp_capture::Dir) -> (portway::proto::msg::Message, Vec<u8>, Vec<u8>) {
    let streams = frp_capture::reassemble(&frp_capture::load_chunks(CAPTURE));
    let bytes = streams[&(conn, dir)].bytes.clone();
    let (first, n) = portway::proto::codec::decode(&bytes).expect("frame").expect("whole frame");
    (first, bytes[..n].to_vec(), bytes[n..].to_vec())
}

/// Reads frames from a decrypting control stream until `n` NewProxyResp arrived; returns their JSON by name.
async fn new_proxy_resps(
    rd: &mut portway::proto::crypto::CryptoStream<TcpStream>,
    n: usize,
) -> std::collections::BTreeMap<String, String> {
    use portway::proto::msg::Message;
    let mut out = std::collections::BTreeMap::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(10), portway::proto::codec::read_msg(rd))
            .await
            .expect("a frame within 10 s")
            .expect("a frame");
        if let Message::NewProxyResp(r) = &m {
            out.insert(r.proxy_name.clone(), String::from_utf8(m.to_json()).expect("utf8"));
        }
    }
    out
}

fn capture_server_toml() -> String {
    // The capture's frps.toml without its ports (the test's are free ports, bindPort is chosen by the helper).
    frp_capture::read_fixture(CAPTURE, "frps.toml")
        .lines()
        .filter(|l| !l.contains("Port") && !l.starts_with("bindAddr") && !l.starts_with("auth.token"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The control connection real frpc v0.70 opened (Login, then four NewProxy and a Ping, encrypted with frpc's own
/// IV) is replayed byte for byte; Portway answers each NewProxy as frps did. Then, acting as that frpc's work
/// connection, the test checks the request Portway forwards for a captured visitor and the answer the visitor
/// gets when the captured service response is sent back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_frpc_bytes_register_proxies_and_carry_a_request() {
    use frp_capture::Dir;
    use portway::proto::msg::{Message, NewWorkConn};
    bounded(async {
        init_logs();
        let (http, https, tcpmux) = (free_port(), free_port(), free_port());
        let server = start_server(
            &format!(
                "auth.token = \"t\"\n{}\nvhostHTTPPort = {http}\nvhostHTTPSPort = {https}\ntcpmuxHTTPConnectPort = {tcpmux}\n",
                capture_server_toml()
            ),
            0,
        )
        .await;
        let t = Tunnel {
            server,
            client: None,
            http,
            https,
            tcpmux,
        };
        let key = portway::proto::crypto::Key::derive(b"t");

        let (_, login, rest) = capture_conn(1, Dir::ClientToServer);
        let mut ctl = TcpStream::connect(t.server.addr).await.expect("connect");
        ctl.write_all(&login).await.expect("login");
        ctl.write_all(&rest).await.expect("frpc's encrypted NewProxy frames");
        let resp = portway::proto::codec::read_msg(&mut ctl).await.expect("LoginResp");
        let Message::LoginResp(resp) = resp else { panic!("not a LoginResp: {resp:?}") };
        assert!(resp.error.is_empty(), "{}", resp.error);
        let mut rd = portway::proto::crypto::CryptoStream::new(ctl, &key);
        let got = new_proxy_resps(&mut rd, 4).await;
        let want: std::collections::BTreeMap<String, String> = transcript_frames("transcript.txt", '2')
            .into_iter()
            .map(|j| {
                let v: serde_json::Value = serde_json::from_str(&j).expect("json");
                (v["proxy_name"].as_str().expect("name").to_string(), with_ports(&j, &t))
            })
            .collect();
        assert_eq!(want.len(), 4, "the capture registers app, mux, secure and web");
        assert_eq!(got, want, "NewProxyResp as frps sent them (ports aside)");

        // A work connection as frpc opens it, then a visitor's request.
        let mut work = TcpStream::connect(t.server.addr).await.expect("connect");
        let nwc = NewWorkConn { run_id: resp.run_id.clone(), ..Default::default() };
        portway::proto::codec::write_msg(&mut work, &Message::NewWorkConn(nwc)).await.expect("NewWorkConn");
        let mut visitor = TcpStream::connect(("127.0.0.1", t.http)).await.expect("visitor");
        visitor.write_all(&visitor_bytes("visitor-known-host.txt", "request sent")).await.expect("request");
        let start = portway::proto::codec::read_msg(&mut work).await.expect("StartWorkConn");
        let (frps_start, _, frps_request) = capture_conn(2, Dir::ServerToClient);
        let (Message::StartWorkConn(ours), Message::StartWorkConn(theirs)) = (&start, &frps_start) else {
            panic!("{start:?} / {frps_start:?}")
        };
        assert_eq!((&ours.proxy_name, &ours.src_addr, &ours.dst_addr), (&theirs.proxy_name, &theirs.src_addr, &theirs.dst_addr));
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            work.read_exact(&mut b).await.expect("forwarded request");
            head.push(b[0]);
        }
        let lines = |b: &[u8]| -> (String, std::collections::BTreeSet<String>) {
            let text = String::from_utf8_lossy(b).to_string();
            let mut it = text.trim_end().split("\r\n").map(str::to_string);
            let first = it.next().expect("request line");
            // Go's HTTP transport adds `Accept-Encoding: gzip` (and would then decompress); Portway passes bodies as they are.
            (first, it.filter(|l| l != "Accept-Encoding: gzip").collect())
        };
        assert_eq!(lines(&head), lines(&frps_request), "the request as frps forwarded it (order aside)");

        // The service's captured answer goes back; the visitor gets what frps gave it.
        let (_, _, service_answer) = capture_conn(2, Dir::ClientToServer);
        work.write_all(&service_answer).await.expect("answer");
        let got = read_response(&mut visitor).await;
        let want = visitor_bytes("visitor-known-host.txt", "response received");
        let split = |b: &[u8]| {
            let text = without_date(b);
            let (head, body) = text.split_once("\r\n\r\n").expect("head").to_owned();
            let mut l: Vec<String> = head.split("\r\n").map(str::to_string).collect();
            l[1..].sort();
            (l, body.to_string())
        };
        assert_eq!(split(&got), split(&want), "the visitor's answer as frps gave it (header order aside)");
        t.stop().await;
    })
    .await;
}

/// The refusals frps gave the first capture attempt (custom domains under subDomainHost), for the same NewProxy
/// JSON real frpc sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_frpc_new_proxies_under_subdomain_host_are_refused_with_frps_messages() {
    use frp_capture::Dir;
    use portway::proto::msg::Message;
    bounded(async {
        init_logs();
        let (http, https, tcpmux) = (free_port(), free_port(), free_port());
        let server = start_server(
            &format!(
                "auth.token = \"t\"\n{}\nvhostHTTPPort = {http}\nvhostHTTPSPort = {https}\ntcpmuxHTTPConnectPort = {tcpmux}\n",
                capture_server_toml()
            ),
            0,
        )
        .await;
        let t = Tunnel { server, client: None, http, https, tcpmux };
        let (_, login, _) = capture_conn(1, Dir::ClientToServer);
        let mut ctl = TcpStream::connect(t.server.addr).await.expect("connect");
        ctl.write_all(&login).await.expect("login");
        let Message::LoginResp(resp) = portway::proto::codec::read_msg(&mut ctl).await.expect("LoginResp") else {
            panic!("no LoginResp")
        };
        assert!(resp.error.is_empty());
        let mut ctl = portway::proto::crypto::CryptoStream::new(ctl, &portway::proto::crypto::Key::derive(b"t"));
        for json in transcript_frames("rejected-under-subdomainhost.txt", 'p') {
            let mut frame = vec![b'p'];
            frame.extend_from_slice(&(json.len() as i64).to_be_bytes());
            frame.extend_from_slice(json.as_bytes());
            ctl.write_all(&frame).await.expect("NewProxy as frpc sent it");
        }
        ctl.flush().await.expect("flush");
        let got = new_proxy_resps(&mut ctl, 4).await;
        for json in transcript_frames("rejected-under-subdomainhost.txt", '2') {
            let v: serde_json::Value = serde_json::from_str(&json).expect("json");
            let name = v["proxy_name"].as_str().expect("name");
            assert_eq!(got[name], with_ports(&json, &t), "{name}");
        }
        t.stop().await;
    })
    .await;
}

/// Portway's client sends, for the capture's frpc.toml, the NewProxy bodies real frpc sent.
#[test]
fn client_new_proxy_messages_equal_real_frpc_ones() {
    use portway::proto::msg::Message;
    let cfg = client_config(&frp_capture::read_fixture(CAPTURE, "frpc.toml"));
    let sent: Vec<String> = transcript_frames("transcript.txt", 'p');
    assert_eq!(sent.len(), cfg.proxies.len());
    for p in &cfg.proxies {
        let ours = String::from_utf8(Message::NewProxy(cfg.new_proxy(p)).to_json()).expect("utf8");
        assert!(sent.contains(&ours), "{} encodes as {ours}\nfrpc sent: {sent:#?}", p.name);
    }
}

/// Portway's per-client policy: `allowDomains` / `allowSubdomains` next to `allowPorts`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_client_policy_limits_domains_and_subdomains() {
    bounded(async {
        let (a, _a) = http_backend("a").await;
        let proxies = format!(
            r#"
[[proxies]]
name = "good"
type = "http"
localPort = {a}
customDomains = ["a.allowed.test"]

[[proxies]]
name = "good-sub"
type = "http"
localPort = {a}
subdomain = "ok-1"

[[proxies]]
name = "bad"
type = "http"
localPort = {a}
customDomains = ["b.denied.test"]

[[proxies]]
name = "bad-sub"
type = "https"
localPort = {a}
subdomain = "nope"
"#
        );
        // Virtual-host proxies hold no port: with maxPortsPerClient = 1 the tcp proxy still gets its one.
        let proxies = format!("{proxies}\n{}", tcp_proxy("one-port", a, free_port(), ""));
        let policy = "maxPortsPerClient = 1\n[portway.defaultClient]\nallowDomains = [\"*.allowed.test\"]\nallowSubdomains = [\"ok-*\"]\n";
        let t = Tunnel::start(policy, "", &proxies, &["good", "good-sub", "one-port"]).await;
        let st = wait_status(t.client(), Duration::from_secs(30), "two refusals", |s| {
            ["bad", "bad-sub"].iter().all(|n| matches!(s.proxies[*n].state, portway::client::ProxyState::Error { .. }))
        })
        .await;
        let reason = |n: &str| match &st.proxies[n].state {
            portway::client::ProxyState::Error { reason } => reason.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason("bad"),
            "refused by policy: custom domain \"b.denied.test\" is not in allowDomains of portway.defaultClient (client \"\")"
        );
        assert!(reason("bad-sub").contains("subdomain \"nope\" is not in allowSubdomains"), "{}", reason("bad-sub"));
        let mut v = http_conn(t.http).await;
        let (s, _, _) = get(&mut v, "ok-1.example.test", "/", &[]).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = get(&mut v, "b.denied.test", "/", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        t.stop().await;
    })
    .await;
}

/// Whether `got` holds a whole request head, after a PROXY v2 header if there is one (its signature has a blank line).
fn head_done(got: &[u8]) -> bool {
    const V2: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
    let start = if got.len() >= V2.len() && got.starts_with(V2) {
        if got.len() < 16 {
            return false;
        }
        16 + usize::from(u16::from_be_bytes([got[14], got[15]]))
    } else {
        0
    };
    got.len() > start && got[start..].windows(4).any(|w| w == b"\r\n\r\n")
}

/// A service that hands each connection's first bytes (up to and including the first blank line) to the test and
/// answers `200 ok`.
async fn capturing_backend() -> (u16, tokio::sync::mpsc::Receiver<Vec<u8>>, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let task = tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut b = [0u8; 1024];
                while !head_done(&got) {
                    match c.read(&mut b).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&b[..n]),
                    }
                }
                let _ = tx.send(got).await;
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
                let _ = c.shutdown().await;
            });
        }
    });
    (port, rx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_header_tells_the_local_service_the_visitor() {
    bounded(async {
        let (svc, mut seen, _svc) = capturing_backend().await;
        let remote = free_port();
        let proxies = format!(
            "{}\n[[proxies]]\nname = \"web\"\ntype = \"http\"\nlocalPort = {svc}\ncustomDomains = [\"pp.portway.test\"]\ntransport.proxyProtocolVersion = \"v2\"\n",
            tcp_proxy("raw", svc, remote, "transport.proxyProtocolVersion = \"v1\"")
        );
        let t = Tunnel::start("", "", &proxies, &["raw", "web"]).await;

        let mut c = TcpStream::connect(("127.0.0.1", remote)).await.expect("connect");
        let me = c.local_addr().expect("addr").port();
        c.write_all(b"hi\r\n\r\n").await.expect("write");
        let got = tokio::time::timeout(Duration::from_secs(10), seen.recv()).await.expect("in time").expect("bytes");
        let want = format!("PROXY TCP4 127.0.0.1 127.0.0.1 {me} {remote}\r\nhi\r\n\r\n");
        assert_eq!(String::from_utf8_lossy(&got), want);

        let mut c = TcpStream::connect(("127.0.0.1", t.http)).await.expect("connect");
        let me = c.local_addr().expect("addr").port();
        c.write_all(b"GET / HTTP/1.1\r\nHost: pp.portway.test\r\n\r\n").await.expect("write");
        let resp = read_response(&mut c).await;
        assert!(resp.starts_with(b"HTTP/1.1 200 OK\r\n") && resp.ends_with(b"\r\n\r\nok"), "{resp:?}");
        let got = tokio::time::timeout(Duration::from_secs(10), seen.recv()).await.expect("in time").expect("bytes");
        let mut want = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x01\x7f\x00\x00\x01".to_vec();
        want.extend_from_slice(&me.to_be_bytes());
        want.extend_from_slice(&0u16.to_be_bytes()); // frps gives an http work connection no destination
        assert_eq!(&got[..want.len()], &want[..], "v2 header for the visitor");
        assert!(got[want.len()..].starts_with(b"GET / HTTP/1.1\r\n"), "{got:?}");
        t.stop().await;
    })
    .await;
}

/// `loadBalancer.group`: two clients serve one domain, requests alternate; a wrong groupKey is refused with frps's
/// message. (tcp groups: tests/tunnel.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_group_shares_a_domain_between_clients_in_turn() {
    bounded(async {
        let (a, _a) = http_backend("a").await;
        let (b, _b) = http_backend("b").await;
        let member = |name: &str, port: u16, key: &str| {
            format!(
                "[[proxies]]\nname = \"{name}\"\ntype = \"http\"\nlocalPort = {port}\ncustomDomains = [\"lb.portway.test\"]\nloadBalancer.group = \"web\"\nloadBalancer.groupKey = \"{key}\"\n"
            )
        };
        let t = Tunnel::start("", "", &member("lb-a", a, "k"), &["lb-a"]).await;
        let second = format!("{}\n{}", member("lb-b", b, "k"), member("lb-bad", b, "wrong"));
        let c2 = start_client(client_config(&client_toml(t.server.addr.port(), "", &second)));
        wait_running(&c2, &["lb-b"]).await;
        let st = wait_status(&c2, Duration::from_secs(30), "a refusal", |s| {
            matches!(s.proxies["lb-bad"].state, portway::client::ProxyState::Error { .. })
        })
        .await;
        let reason = |n: &str| match &st.proxies[n].state {
            portway::client::ProxyState::Error { reason } => reason.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(reason("lb-bad"), "group auth failed");
        let mut v = http_conn(t.http).await;
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (s, h, _) = get(&mut v, "lb.portway.test", "/", &[]).await;
            assert_eq!(s, StatusCode::OK);
            seen.push(h["x-backend"].to_str().expect("ascii").to_string());
        }
        assert!(seen == ["a", "b", "a", "b"] || seen == ["b", "a", "b", "a"], "round robin: {seen:?}");
        // The group outlives a member: with the second client gone, the first serves every request.
        c2.stop().await.expect("stop");
        // The server drops the member when it sees the session end; until then a request may still pick it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut in_a_row = 0;
        while in_a_row < 4 {
            let (s, h, _) = get(&mut http_conn(t.http).await, "lb.portway.test", "/", &[]).await;
            let from_a = s == StatusCode::OK && h.get("x-backend").is_some_and(|v| v == "a");
            in_a_row = if from_a { in_a_row + 1 } else { 0 };
            assert!(tokio::time::Instant::now() < deadline, "the remaining member did not take every request");
            if !from_a {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        t.stop().await;
    })
    .await;
}

/// curl, through the vhost, against a real nginx serving files: a page and a 4 MiB file on one keep-alive
/// connection, the Host nginx saw rewritten, the bytes unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_through_the_vhost_to_a_real_nginx() {
    bounded(async {
        let root = std::env::temp_dir().join(format!("portway-www-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&root).expect("www dir");
        std::fs::write(root.join("index.html"), "<h1>served by nginx</h1>\n").expect("index");
        let big = pattern(4 * MIB, 9);
        std::fs::write(root.join("big.bin"), &big).expect("big file");
        let nginx = support::nginx::Nginx::file_server(&root).await;
        let proxies = format!(
            "[[proxies]]\nname = \"site\"\ntype = \"http\"\nlocalPort = {}\ncustomDomains = [\"site.portway.test\"]\nhostHeaderRewrite = \"nginx.internal\"\n",
            nginx.port
        );
        let t = Tunnel::start("", "", &proxies, &["site"]).await;
        let host = format!("site.portway.test:{}", t.http);
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "-v", "--max-time", "60", "--resolve", &format!("{host}:127.0.0.1")])
            .arg(format!("http://{host}/index.html"))
            .arg(format!("http://{host}/big.bin"))
            .output()
            .await
            .expect("run curl");
        assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
        let page = b"<h1>served by nginx</h1>\n";
        assert!(out.stdout.starts_with(page), "first body");
        assert_eq!(sha256(&out.stdout[page.len()..]), sha256(&big), "4 MiB through the vhost, unchanged");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains("< X-Seen-Host: nginx.internal"), "hostHeaderRewrite as nginx saw it:\n{log}");
        assert!(log.contains("Re-using existing connection"), "keep-alive through the vhost:\n{log}");
        assert_eq!(nginx.access_log().lines().count(), 2, "both requests reached nginx");
        t.stop().await;
        drop(nginx);
        let _ = std::fs::remove_dir_all(&root);
    })
    .await;
}

/// A visitor that sends half a request head and then nothing is cut after the read-header timeout (here 1 s);
/// a visitor arriving meanwhile is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_after_the_read_header_timeout() {
    bounded(async {
        let (a, _a) = http_backend("a").await;
        let proxies = format!(
            "[[proxies]]\nname = \"s\"\ntype = \"http\"\nlocalPort = {a}\ncustomDomains = [\"s.portway.test\"]\n"
        );
        let t = Tunnel::start("[portway]\nvhostReadHeaderTimeout = 1\n", "", &proxies, &["s"]).await;
        let mut slow = TcpStream::connect(("127.0.0.1", t.http)).await.expect("connect");
        slow.write_all(b"GET / HTTP/1.1\r\nHost: s.portway.test\r\nX-Slow: ").await.expect("half a head");
        let mut v = http_conn(t.http).await;
        let (s, _, _) = get(&mut v, "s.portway.test", "/", &[]).await;
        assert_eq!(s, StatusCode::OK, "others are served while the slow head waits");
        let mut rest = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(15), slow.read_to_end(&mut rest)).await;
        assert!(r.is_ok(), "the slow visitor was not cut within 15 s");
        assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"), "{:?}", String::from_utf8_lossy(&rest));
        t.stop().await;
    })
    .await;
}

/// `target/artifacts/<name>` (the test executable lives in `target/<profile>/deps/`).
fn artifact(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.ancestors().nth(3).expect("target dir").join("artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir.join(name)
}

/// HTTPS by SNI to a real `openssl s_server` (Debian's openssl), with curl as the visitor: curl verifies the
/// service's own certificate through the vhost (TLS is end to end), and a name nobody registered fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_by_sni_to_a_real_openssl_s_server_with_curl() {
    bounded(async {
        let pki = support::pki::Pki::for_name("secure.portway.test");
        let (ca, cert, key) = (pki.ca.clone(), &pki.cert, &pki.key);
        let port = free_port();
        let mut s_server = tokio::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept", &format!("127.0.0.1:{port}")])
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start openssl s_server (apt-get install openssl)");
        support::process::wait_listening(port, Duration::from_secs(10)).await;
        let proxies = format!(
            "[[proxies]]\nname = \"secure\"\ntype = \"https\"\nlocalPort = {port}\ncustomDomains = [\"secure.portway.test\"]\n"
        );
        let t = Tunnel::start("", "", &proxies, &["secure"]).await;
        let curl = |name: &'static str| {
            let host = format!("{name}:{}", t.https);
            let ca = ca.clone();
            async move {
                tokio::process::Command::new("curl")
                    .args(["-sS", "--max-time", "20", "--resolve", &format!("{host}:127.0.0.1"), "--cacert"])
                    .arg(&ca)
                    .arg(format!("https://{host}/"))
                    .output()
                    .await
                    .expect("run curl")
            }
        };
        let ok = curl("secure.portway.test").await;
        let page = String::from_utf8_lossy(&ok.stdout);
        assert!(ok.status.success(), "curl through the vhost: {}", String::from_utf8_lossy(&ok.stderr));
        // s_server -www answers with a page describing the TLS session it holds with curl.
        assert!(page.contains("s_server") && page.contains("Ciphers"), "openssl's status page: {page}");
        let unknown = curl("other.portway.test").await;
        assert!(!unknown.status.success(), "an unregistered name must fail");
        assert!(unknown.stdout.is_empty());
        t.stop().await;
        s_server.kill().await.expect("stop s_server");
    })
    .await;
}

/// A real browser: headless Chromium loads a page through the vhost (HTML, a stylesheet and a script that fetches
/// JSON, all from nginx behind the tunnel), runs its script, and leaves a screenshot in
/// `target/artifacts/http-vhost-chromium.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_loads_a_page_through_the_vhost() {
    bounded(async {
        let root = std::env::temp_dir().join(format!("portway-www-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&root).expect("www dir");
        std::fs::write(
            root.join("index.html"),
            "<!doctype html><html><head><title>through portway</title><link rel=\"stylesheet\" href=\"/style.css\">\
             </head><body><h1>Served by nginx, through Portway's vhost</h1><p id=\"out\">script did not run</p>\
             <script>fetch('/data.json').then(r => r.json()).then(d => { document.getElementById('out').textContent \
             = 'fetched ' + d.answer; });</script></body></html>\n",
        )
        .expect("index");
        std::fs::write(root.join("style.css"), "body { font-family: sans-serif; background: #e8f4ff; }\n")
            .expect("css");
        std::fs::write(root.join("data.json"), "{\"answer\": 42}\n").expect("json");
        let nginx = support::nginx::Nginx::file_server(&root).await;
        let proxies = format!(
            "[[proxies]]\nname = \"site\"\ntype = \"http\"\nlocalPort = {}\ncustomDomains = [\"site.portway.test\"]\n",
            nginx.port
        );
        let t = Tunnel::start("", "", &proxies, &["site"]).await;
        let url = format!("http://site.portway.test:{}/", t.http);
        let profile = root.join("chromium-profile");
        let shot = artifact("http-vhost-chromium.png");
        let _ = std::fs::remove_file(&shot);
        let chromium = |extra: Vec<String>| {
            let (url, profile) = (url.clone(), profile.clone());
            async move {
                let mut cmd = tokio::process::Command::new("chromium");
                cmd.args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
                    .args(["--host-resolver-rules=MAP site.portway.test 127.0.0.1", "--virtual-time-budget=5000"])
                    .arg(format!("--user-data-dir={}", profile.display()))
                    .args(extra)
                    .arg(&url)
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true);
                tokio::time::timeout(Duration::from_secs(60), cmd.output())
                    .await
                    .expect("chromium finished within 60 s")
                    .expect("run chromium (apt-get install chromium)")
            }
        };
        let dom = chromium(vec!["--dump-dom".into()]).await;
        let dom_text = String::from_utf8_lossy(&dom.stdout);
        assert!(
            dom_text.contains("Served by nginx, through Portway"),
            "the page: {dom_text}\n{}",
            String::from_utf8_lossy(&dom.stderr)
        );
        assert!(dom_text.contains("fetched 42"), "the page's script fetched JSON through the vhost: {dom_text}");
        let png = chromium(vec![format!("--screenshot={}", shot.display()), "--window-size=1024,640".into()]).await;
        let bytes = std::fs::read(&shot)
            .unwrap_or_else(|e| panic!("no screenshot ({e}): {}", String::from_utf8_lossy(&png.stderr)));
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 2000, "a real PNG: {} bytes", bytes.len());
        let log = nginx.access_log();
        for path in ["GET / ", "GET /style.css ", "GET /data.json "] {
            assert!(log.contains(path), "nginx served {path}through the vhost:\n{log}");
        }
        t.stop().await;
        drop(nginx);
        let _ = std::fs::remove_dir_all(&root);
    })
    .await;
}

/// A 1 GiB upload through the vhost, server and client as real processes: the bytes stream (the backend counts
/// all of them) and neither process's peak memory grows with the body (nothing buffers it whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_upload_streams_with_flat_memory_in_server_and_client() {
    use support::process::{wait_listening, Proc};
    const GIB: u64 = 1 << 30;
    const CHUNK: usize = 1 << 20;
    init_logs();
    tokio::time::timeout(Duration::from_secs(300), async {
        // The backend: counts the body's bytes as they arrive.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
        let backend = listener.local_addr().expect("addr").port();
        let _b = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = service_fn(|req: Request<Incoming>| async move {
                        let mut body = req.into_body();
                        let mut n = 0u64;
                        while let Some(f) = body.frame().await {
                            if let Ok(d) = f?.into_data() {
                                n += d.len() as u64;
                            }
                        }
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(format!("received={n}")))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        });
        let (bind, http) = (free_port(), free_port());
        let server = Proc::spawn(
            "portway-server",
            &server_toml(&format!("bindPort = {bind}\nvhostHTTPPort = {http}\nlog.level = \"warn\"\n")),
        );
        wait_listening(bind, Duration::from_secs(60)).await;
        wait_listening(http, Duration::from_secs(10)).await;
        let proxies = format!(
            "[[proxies]]\nname = \"big\"\ntype = \"http\"\nlocalPort = {backend}\ncustomDomains = [\"big.portway.test\"]\n"
        );
        let client = Proc::spawn("portway-client", &client_toml(bind, "log.level = \"info\"", &proxies));
        client.wait_log("proxy started", Duration::from_secs(30)).await;
        let (server_base, client_base) = (server.peak_rss_kib(), client.peak_rss_kib());

        let chunk = Bytes::from(pattern(CHUNK, 7));
        let body = StreamBody::new(futures::stream::iter(
            (0..GIB / CHUNK as u64).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone()))),
        ));
        let tcp = TcpStream::connect(("127.0.0.1", http)).await.expect("connect");
        let (mut s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("handshake");
        tokio::spawn(conn);
        let req = Request::post("/upload").header("host", "big.portway.test").body(body).expect("request");
        let resp = s.send_request(req).await.expect("response");
        assert_eq!(resp.status(), StatusCode::OK);
        let text = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(text, format!("received={GIB}").as_bytes(), "every byte arrived");

        let (server_peak, client_peak) = (server.peak_rss_kib(), client.peak_rss_kib());
        eprintln!("peak RSS KiB: server {server_base} → {server_peak}, client {client_base} → {client_peak}");
        // Flat: a buffered body would add a GiB; streaming adds at most a few buffers.
        assert!(server_peak < server_base + 48 * 1024, "server peak grew from {server_base} to {server_peak} KiB");
        assert!(client_peak < client_base + 48 * 1024, "client peak grew from {client_base} to {client_peak} KiB");
    })
    .await
    .expect("a 1 GiB upload within 300 s");
}
