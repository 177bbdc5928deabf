//! The HTTP virtual host's request path, end to end on 127.0.0.1 without the desktop stack: a Portway server with
//! `vhostHTTPPort`, a Portway client with two `http` proxies, and a hyper service behind them. Keep-alive visitor
//! connections whose requests alternate between routes, HEAD, chunked responses and uploads, an upgrade, and many
//! visitors at once (the root `tests/http_vhost.rs` covers the rest: captures, auth, headers, nginx, browsers).
#![allow(clippy::unwrap_used)]

mod support;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Body = BoxBody<Bytes, Infallible>;

/// A hyper service named `name`: `/chunked/N` streams N chunks of 1 KiB (no Content-Length), `/upload` answers the
/// body's length, `/upgrade` answers 101 and echoes the upgraded bytes, anything else answers who it is and the
/// Host and X-Forwarded-For it saw.
async fn backend(name: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(move |req| answer(name, req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    port
}

async fn answer(name: &'static str, mut req: Request<Incoming>) -> Result<Response<Body>, hyper::Error> {
    let path = req.uri().path().to_string();
    if let Some(n) = path.strip_prefix("/chunked/") {
        let n: usize = n.parse().unwrap();
        let chunks = (0..n).map(|i| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'a' + (i % 26) as u8; 1024]))));
        return Ok(Response::new(StreamBody::new(futures::stream::iter(chunks)).boxed()));
    }
    if path == "/upload" {
        let mut body = req.into_body();
        let mut n = 0usize;
        while let Some(f) = body.frame().await {
            n += f?.data_ref().map_or(0, |d| d.len());
        }
        return Ok(Response::new(Full::new(Bytes::from(format!("bytes={n}"))).boxed()));
    }
    if path == "/upgrade" {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let r = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "Upgrade")
            .header("upgrade", "echo")
            .body(Empty::new().boxed())
            .unwrap();
        return Ok(r);
    }
    let h = |k: &str| req.headers().get(k).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let text = format!("{name} {} {path} host={} xff={}", req.method(), h("host"), h("x-forwarded-for"));
    Ok(Response::builder().header("x-backend", name).body(Full::new(Bytes::from(text)).boxed()).unwrap())
}

/// A server, a client with proxies `a` (a.test) and `b` (b.test) to two backends; returns the vhost port.
async fn tunnel() -> (TestServer, portway_client::ClientHandle, u16) {
    let vhost = free_port();
    let toml = format!("bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\nvhostHTTPPort = {vhost}\n");
    let (server, _) = start_server_with(&toml).await;
    let (a, b) = (backend("a").await, backend("b").await);
    let client = start_client(&format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"t\"\nloginFailExit = false\n\
         [[proxies]]\nname = \"a\"\ntype = \"http\"\nlocalPort = {a}\ncustomDomains = [\"a.test\"]\n\
         [[proxies]]\nname = \"b\"\ntype = \"http\"\nlocalPort = {b}\ncustomDomains = [\"b.test\"]\n",
        server.port
    ));
    wait_running(&client, &["a", "b"]).await;
    (server, client, vhost)
}

async fn visitor(port: u16) -> SendRequest<Body> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    s
}

async fn send(s: &mut SendRequest<Body>, method: &str, host: &str, path: &str, body: Body) -> (StatusCode, Bytes) {
    s.ready().await.unwrap();
    let req = Request::builder().method(method).uri(path).header("host", host).body(body).unwrap();
    let resp = tokio::time::timeout(T, s.send_request(req)).await.unwrap().unwrap();
    let status = resp.status();
    (status, tokio::time::timeout(T, resp.into_body().collect()).await.unwrap().unwrap().to_bytes())
}

fn empty() -> Body {
    Empty::new().boxed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_keep_alive_visitor_alternates_routes_bodies_and_methods() {
    let (_server, _client, port) = tunnel().await;
    let mut s = visitor(port).await;
    for i in 0..40 {
        let (name, host) = if i % 2 == 0 { ("a", "a.test") } else { ("b", "b.test") };
        let (st, body) = send(&mut s, "GET", host, &format!("/r{i}?q=1"), empty()).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(body, format!("{name} GET /r{i} host={host} xff=127.0.0.1"));
        if i % 10 == 3 {
            let (st, body) = send(&mut s, "GET", host, "/chunked/256", empty()).await;
            assert_eq!((st, body.len()), (StatusCode::OK, 256 * 1024));
            assert!(body.chunks(1024).enumerate().all(|(i, c)| c.iter().all(|&x| x == b'a' + (i % 26) as u8)));
            let (st, body) = send(&mut s, "HEAD", host, "/head", empty()).await;
            assert_eq!((st, body.len()), (StatusCode::OK, 0));
        }
    }
    // A chunked upload of 2 MiB, made as it is sent, then the connection still serves.
    let chunks = (0..32).map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![7u8; 64 * 1024]))));
    let (st, body) =
        send(&mut s, "POST", "a.test", "/upload", StreamBody::new(futures::stream::iter(chunks)).boxed()).await;
    assert_eq!((st, body), (StatusCode::OK, Bytes::from("bytes=2097152")));
    let (st, body) = send(&mut s, "POST", "b.test", "/upload", Full::new(Bytes::from("x".repeat(1000))).boxed()).await;
    assert_eq!((st, body), (StatusCode::OK, Bytes::from("bytes=1000")));
    let (st, _) = send(&mut s, "GET", "nobody.test", "/", empty()).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, body) = send(&mut s, "GET", "a.test", "/after", empty()).await;
    assert_eq!((st, body), (StatusCode::OK, Bytes::from("a GET /after host=a.test xff=127.0.0.1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_after_a_request_becomes_a_byte_relay() {
    let (_server, _client, port) = tunnel().await;
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    c.write_all(b"GET /first HTTP/1.1\r\nHost: b.test\r\n\r\nGET /upgrade HTTP/1.1\r\nHost: b.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let heads = |g: &[u8]| g.windows(4).filter(|w| w == b"\r\n\r\n").count();
    while heads(&got) < 2 {
        let n = tokio::time::timeout(T, c.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("b GET /first host=b.test"), "{text}");
    assert!(text.contains("HTTP/1.1 101 Switching Protocols\r\n") && text.contains("Upgrade: echo\r\n"), "{text}");
    for i in 0..5 {
        let msg = format!("ping {i}");
        c.write_all(msg.as_bytes()).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        tokio::time::timeout(T, c.read_exact(&mut back)).await.unwrap().unwrap();
        assert_eq!(back, msg.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_keep_alive_visitors_at_once() {
    let (_server, _client, port) = tunnel().await;
    let tasks: Vec<_> = (0..16)
        .map(|v| {
            tokio::spawn(async move {
                let mut s = visitor(port).await;
                for i in 0..50 {
                    let (name, host) = if (v + i) % 3 == 0 { ("b", "b.test") } else { ("a", "a.test") };
                    let (st, body) = send(&mut s, "GET", host, &format!("/v{v}/{i}"), empty()).await;
                    assert_eq!(st, StatusCode::OK);
                    assert_eq!(body, format!("{name} GET /v{v}/{i} host={host} xff=127.0.0.1"));
                }
            })
        })
        .collect();
    for t in tasks {
        tokio::time::timeout(T, t).await.unwrap().unwrap();
    }
}
