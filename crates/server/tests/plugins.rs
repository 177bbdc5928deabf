//! Server plugins (`[[httpPlugins]]`) against a real HTTP plugin on 127.0.0.1 and a real Portway client: frp's
//! request shape, a Login rejected for one user (the client sees the reason), a NewProxy rewritten (the server
//! opens the port the plugin chose), Ping, NewWorkConn, NewUserConn and CloseProxy seen, and a plugin that is
//! down or too slow refusing the operation.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use portway_client::{ClientConfig, ClientHandle, ProxyState, SecretSource, Status};
use serde_json::{json, Value};
use support::{free_port, start_server_with, tcp_echo, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(30);

/// One request the plugin received: the query string, the X-Frp-Reqid header and the JSON body.
#[derive(Debug, Clone)]
struct Seen {
    query: String,
    reqid: String,
    body: Value,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn seen(log: &Log, op: &str) -> Vec<Seen> {
    log.lock().unwrap().iter().filter(|s| s.body["op"] == op).cloned().collect()
}

/// The plugin's decisions: mallory may not log in; NewProxy `web` gets `remote_port` replaced by `port_for_web`
/// and a meta added; NewUserConn of `blocked` is rejected; everything else is kept.
fn decide(body: &Value, port_for_web: u16) -> Value {
    let c = &body["content"];
    let name = c["proxy_name"].as_str().unwrap_or("");
    match body["op"].as_str().unwrap_or("") {
        "Login" if c["user"] == "mallory" => json!({"reject": true, "reject_reason": "user mallory is banned"}),
        "NewProxy" if name.ends_with("web") => {
            let mut content = c.clone();
            content["remote_port"] = json!(port_for_web);
            content["metas"] = json!({"plugin": "was here"});
            json!({"reject": false, "unchange": false, "content": content})
        }
        "NewUserConn" if name.ends_with("blocked") => json!({"reject": true, "reject_reason": "not now"}),
        _ => json!({"reject": false, "unchange": true}),
    }
}

/// A real HTTP/1.1 plugin server; returns its port.
async fn plugin_server(log: Log, port_for_web: u16) -> u16 {
    serve_plugin(log, port_for_web, None).await
}

/// The plugin server, over TLS with a self-signed certificate when `tls` is given.
async fn serve_plugin(log: Log, port_for_web: u16, tls: Option<tokio_rustls::TlsAcceptor>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let log = log.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let query = req.uri().query().unwrap_or("").to_string();
                        let reqid =
                            req.headers().get("X-Frp-Reqid").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                        let ctype = req.headers().get("content-type").cloned();
                        let bytes = req.into_body().collect().await.unwrap().to_bytes();
                        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        assert_eq!(ctype.unwrap(), "application/json");
                        let answer = decide(&body, port_for_web);
                        log.lock().unwrap().push(Seen { query, reqid, body });
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(answer.to_string()))))
                    }
                });
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    None => drop(http.serve_connection(TokioIo::new(tcp), svc).await),
                    Some(acceptor) => {
                        if let Ok(t) = acceptor.accept(tcp).await {
                            drop(http.serve_connection(TokioIo::new(t), svc).await);
                        }
                    }
                }
            });
        }
    });
    port
}

async fn start_server(extra: &str) -> TestServer {
    let toml = format!("bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\ntransport.tcpMux = false\n{extra}");
    start_server_with(&toml).await.0
}

fn client_config(server_port: u16, user: &str, proxies: &str) -> ClientConfig {
    let toml = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {server_port}\nauth.token = \"t\"\nuser = \"{user}\"\n\
         metadatas.team = \"blue\"\nmetadatas.\"portway.oidc.sub\" = \"forged\"\n\
         transport.tcpMux = false\ntransport.tls.enable = false\ntransport.heartbeatInterval = 1\n\
         transport.poolCount = 1\n{proxies}"
    );
    ClientConfig::parse(&toml, "test-frpc.toml").unwrap().config
}

async fn wait_status(h: &ClientHandle, what: &str, pred: impl Fn(&Status) -> bool) -> Status {
    let mut rx = h.watch();
    let r = tokio::time::timeout(T, async {
        loop {
            {
                let s = rx.borrow_and_update();
                if pred(&s) {
                    return s.clone();
                }
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone();
            }
        }
    })
    .await;
    r.unwrap_or_else(|_| panic!("timed out waiting for {what}: {:?}", h.status()))
}

async fn wait_for(log: &Log, op: &str, pred: impl Fn(&Seen) -> bool) -> Seen {
    for _ in 0..300 {
        if let Some(s) = seen(log, op).into_iter().find(|s| pred(s)) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the plugin never saw a matching {op}: {:?}", log.lock().unwrap());
}

/// Writes `msg` through `port` and expects it back; `None` when the connection is closed instead.
async fn echo_through(port: u16, msg: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(msg).await.ok()?;
    let mut buf = vec![0; msg.len()];
    match tokio::time::timeout(T, s.read_exact(&mut buf)).await.unwrap() {
        Ok(_) => Some(buf),
        Err(_) => None,
    }
}

fn plugin_toml(addr: &str, ops: &str) -> String {
    format!("[[httpPlugins]]\nname = \"um\"\naddr = \"{addr}\"\npath = \"/handler\"\nops = [{ops}]\n")
}

const ALL_OPS: &str = "\"Login\", \"NewProxy\", \"CloseProxy\", \"Ping\", \"NewWorkConn\", \"NewUserConn\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_rejects_a_login_and_the_client_sees_the_reason() {
    let log = Log::default();
    let pp = plugin_server(log.clone(), 0).await;
    let srv = start_server(&plugin_toml(&format!("127.0.0.1:{pp}"), ALL_OPS)).await;
    let h = portway_client::start(client_config(srv.port, "mallory", ""), SecretSource::FromConfig);
    let err = tokio::time::timeout(T, h.wait()).await.unwrap().unwrap_err().to_string();
    assert!(err.contains("user mallory is banned"), "{err}");
    let login = wait_for(&log, "Login", |_| true).await;
    assert_eq!(login.query, "version=0.1.0&op=Login");
    assert_eq!(login.body["version"], "0.1.0");
    assert_eq!(login.reqid.len(), 16, "X-Frp-Reqid is set");
    let c = &login.body["content"];
    assert_eq!(c["user"], "mallory");
    assert!(c["client_address"].as_str().unwrap().starts_with("127.0.0.1:"), "{c}");
    assert_eq!(c["metas"]["team"], "blue");
    // Token auth: no identity, and the client's own `portway.oidc.*` key is dropped, not passed on.
    assert!(c["metas"].get("portway.oidc.sub").is_none(), "{c}");
    assert!(c["privilege_key"].as_str().is_some_and(|k| !k.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_rewrites_new_proxy_and_sees_ping_work_user_conns_and_close() {
    let log = Log::default();
    let rewritten = free_port();
    let pp = plugin_server(log.clone(), rewritten).await;
    let srv = start_server(&plugin_toml(&format!("http://127.0.0.1:{pp}"), ALL_OPS)).await;
    let echo = tcp_echo().await;
    let asked = free_port();
    let blocked_port = free_port();
    let proxies = format!(
        "[[proxies]]\nname = \"web\"\ntype = \"tcp\"\nlocalPort = {echo}\nremotePort = {asked}\n\
         [[proxies]]\nname = \"blocked\"\ntype = \"tcp\"\nlocalPort = {echo}\nremotePort = {blocked_port}\n"
    );
    let cfg = client_config(srv.port, "alice", &proxies);
    let h = portway_client::start(cfg.clone(), SecretSource::FromConfig);
    let s = wait_status(&h, "both proxies running", |s| {
        s.proxies.values().filter(|p| matches!(p.state, ProxyState::Running { .. })).count() == 2
    })
    .await;
    assert_eq!(s.proxies["web"].state, ProxyState::Running { remote_addr: format!(":{rewritten}") });

    // The server listens on the port the plugin chose, not the one the client asked for.
    assert_eq!(echo_through(rewritten, b"via plugin port").await.as_deref(), Some(&b"via plugin port"[..]));
    assert!(TcpStream::connect(("127.0.0.1", asked)).await.is_err(), "the asked-for port must stay closed");
    let np = wait_for(&log, "NewProxy", |s| s.body["content"]["proxy_name"] == "alice.web").await;
    let c = &np.body["content"];
    assert_eq!((c["proxy_type"].as_str(), c["remote_port"].as_u64()), (Some("tcp"), Some(asked as u64)));
    assert_eq!(c["user"]["user"], "alice");
    assert_eq!(c["user"]["metas"]["team"], "blue");
    assert!(c["user"]["run_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(c["user"]["metas"].get("portway.oidc.sub").is_none(), "forged identity passed on: {c}");

    // NewUserConn: the visitor's address; `blocked` is refused, so its visitor is closed without data.
    let uc = wait_for(&log, "NewUserConn", |s| s.body["content"]["proxy_name"] == "alice.web").await;
    assert_eq!(uc.body["content"]["proxy_type"], "tcp");
    assert!(uc.body["content"]["remote_addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(echo_through(blocked_port, b"x").await, None);
    wait_for(&log, "NewUserConn", |s| s.body["content"]["proxy_name"] == "alice.blocked").await;

    // Work connections and heartbeats (every second) go through the plugin.
    let wc = wait_for(&log, "NewWorkConn", |_| true).await;
    assert_eq!(wc.body["content"]["user"]["user"], "alice");
    assert_eq!(wc.body["content"]["run_id"], c["user"]["run_id"]);
    let ping = wait_for(&log, "Ping", |_| true).await;
    assert_eq!(ping.body["content"]["user"]["run_id"], c["user"]["run_id"], "{:?}", ping.body);

    // Removing a proxy by reload: CloseProxy is told.
    let mut less = cfg.clone();
    less.proxies.retain(|p| p.name != "blocked");
    h.reload(less);
    let close = wait_for(&log, "CloseProxy", |_| true).await;
    assert_eq!(close.body["content"]["proxy_name"], "alice.blocked");
    assert_eq!(close.body["content"]["user"]["user"], "alice");
    h.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_plugin_refuses_the_operation() {
    let dead = free_port();
    let srv = start_server(&plugin_toml(&format!("127.0.0.1:{dead}"), "\"Login\"")).await;
    let h = portway_client::start(client_config(srv.port, "alice", ""), SecretSource::FromConfig);
    let err = tokio::time::timeout(T, h.wait()).await.unwrap().unwrap_err().to_string();
    assert!(err.contains("send Login request to plugin error"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_that_does_not_answer_in_time_refuses_new_proxy() {
    // Accepts, reads, never answers.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let extra = format!("{}[portway]\npluginTimeout = 1\n", plugin_toml(&format!("127.0.0.1:{slow}"), "\"NewProxy\""));
    let srv = start_server(&extra).await;
    let echo = tcp_echo().await;
    let proxies = format!("[[proxies]]\nname = \"p\"\ntype = \"tcp\"\nlocalPort = {echo}\nremotePort = 0\n");
    let h = portway_client::start(client_config(srv.port, "", &proxies), SecretSource::FromConfig);
    let s = wait_status(&h, "proxy refused", |s| {
        matches!(s.proxies.get("p").map(|p| &p.state), Some(ProxyState::Error { .. }))
    })
    .await;
    let ProxyState::Error { reason } = &s.proxies["p"].state else { unreachable!() };
    assert!(reason.contains("send NewProxy request to plugin error"), "{reason}");
    h.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_plugin_with_self_signed_certificate_works_unless_tls_verify() {
    let log = Log::default();
    let tls = portway_proto::transport::server_config(&Default::default()).unwrap();
    let pp = serve_plugin(log.clone(), 0, Some(tokio_rustls::TlsAcceptor::from(tls))).await;
    let addr = format!("https://127.0.0.1:{pp}");

    // frp's default: the plugin's certificate is not verified.
    let srv = start_server(&plugin_toml(&addr, "\"Login\"")).await;
    let h = portway_client::start(client_config(srv.port, "mallory", ""), SecretSource::FromConfig);
    let err = tokio::time::timeout(T, h.wait()).await.unwrap().unwrap_err().to_string();
    assert!(err.contains("user mallory is banned"), "the TLS plugin was not asked: {err}");

    // tlsVerify = true: a self-signed certificate fails the handshake and the login is refused.
    let srv = start_server(&format!("{}tlsVerify = true\n", plugin_toml(&addr, "\"Login\""))).await;
    let h = portway_client::start(client_config(srv.port, "alice", ""), SecretSource::FromConfig);
    let err = tokio::time::timeout(T, h.wait()).await.unwrap().unwrap_err().to_string();
    assert!(err.contains("send Login request to plugin error"), "{err}");
    assert_eq!(seen(&log, "Login").len(), 1, "no request may pass an unverified certificate");
}

/// A minimal OIDC provider on 127.0.0.1: discovery, JWKS, and a token endpoint that hands out RS256 tokens for
/// subject `svc-1`, client `plugin-test` (signed with the test key in tests/fixtures). Returns the issuer.
async fn oidc_provider() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
    use openidconnect::{JsonWebKeyId, PrivateSigningKey};

    let pem =
        std::fs::read_to_string(format!("{}/tests/fixtures/rsa-test-key.pem", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let key = Arc::new(CoreRsaPrivateSigningKey::from_pem(&pem, Some(JsonWebKeyId::new("k1".into()))).unwrap());
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    let iss = issuer.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let (key, iss) = (key.clone(), iss.clone());
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (key, iss) = (key.clone(), iss.clone());
                async move {
                    let body = match req.uri().path() {
                        "/.well-known/openid-configuration" => {
                            json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks"), "token_endpoint": format!("{iss}/token")})
                        }
                        "/jwks" => json!({"keys": [serde_json::to_value(key.as_verification_key()).unwrap()]}),
                        _ => {
                            let now =
                                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                            let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
                            let input = format!(
                                "{}.{}",
                                b64(json!({"alg": "RS256", "kid": "k1", "typ": "JWT"})),
                                b64(
                                    json!({"iss": iss, "sub": "svc-1", "azp": "plugin-test", "iat": now, "exp": now + 3600})
                                )
                            );
                            let sig =
                                key.sign(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, input.as_bytes()).unwrap();
                            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
                            json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})
                        }
                    };
                    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
                    r.headers_mut().insert("content-type", "application/json".parse().unwrap());
                    Ok::<_, std::convert::Infallible>(r)
                }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc));
        }
    });
    issuer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_requests_carry_the_verified_oidc_identity() {
    let log = Log::default();
    let pp = plugin_server(log.clone(), free_port()).await;
    let issuer = oidc_provider().await;
    let srv = start_server(&format!(
        "auth.method = \"oidc\"\nauth.oidc.issuer = \"{issuer}\"\n{}",
        plugin_toml(&format!("127.0.0.1:{pp}"), "\"Login\", \"NewProxy\"")
    ))
    .await;
    let echo = tcp_echo().await;
    let proxies = format!("[[proxies]]\nname = \"p\"\ntype = \"tcp\"\nlocalPort = {echo}\nremotePort = 0\n");
    let mut cfg = client_config(srv.port, "alice", &proxies);
    cfg.auth.method = "oidc".into();
    cfg.auth.oidc.client_id = "plugin-test".into();
    cfg.auth.oidc.client_secret = "s".into();
    cfg.auth.oidc.token_endpoint_url = format!("{issuer}/token");
    let h = portway_client::start(cfg, SecretSource::FromConfig);
    wait_status(&h, "p running", |s| matches!(s.proxies.get("p").map(|p| &p.state), Some(ProxyState::Running { .. })))
        .await;
    let login = wait_for(&log, "Login", |_| true).await;
    let metas = &login.body["content"]["metas"];
    // The client's own `portway.oidc.sub = "forged"` is replaced by the token's subject.
    assert_eq!(metas["portway.oidc.sub"], "svc-1", "{metas}");
    assert_eq!(metas["portway.oidc.client_id"], "plugin-test", "{metas}");
    assert_eq!(metas["team"], "blue");
    let np = wait_for(&log, "NewProxy", |_| true).await;
    let metas = &np.body["content"]["user"]["metas"];
    assert_eq!(
        (metas["portway.oidc.sub"].as_str(), metas["portway.oidc.client_id"].as_str()),
        (Some("svc-1"), Some("plugin-test"))
    );
    h.stop().await.unwrap();
}
