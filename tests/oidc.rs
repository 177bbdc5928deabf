//! OIDC machine-to-machine authentication end to end, against a real provider (npm `oidc-provider`, configured to
//! look like authentik) started by the tests on 127.0.0.1.

mod support;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portway::client::{ConnState, ProxyState, SecretSource};
use portway::proto::codec;
use portway::proto::msg::{Login, Message};
use support::oidc::{
    http_request, OidcOptions, OidcProvider, CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET,
};
use support::*;
use tokio::net::UdpSocket;

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    init_logs();
    tokio::time::timeout(Duration::from_secs(180), f).await.expect("test timed out");
}

async fn provider() -> OidcProvider {
    OidcProvider::start(OidcOptions::default()).await
}

fn oidc_server_toml(p: &OidcProvider, extra: &str) -> String {
    format!("bindAddr = \"127.0.0.1\"\nauth.method = \"oidc\"\nauth.oidc.issuer = \"{}\"\n{extra}\n", p.issuer())
}

fn oidc_client_toml(server_port: u16, p: &OidcProvider, id: &str, secret: &str, extra: &str, proxies: &str) -> String {
    format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {server_port}\nloginFailExit = false\nauth.method = \"oidc\"\n\
auth.oidc.clientID = \"{id}\"\nauth.oidc.clientSecret = \"{secret}\"\nauth.oidc.tokenEndpointURL = \"{}\"\n{extra}\n{proxies}",
        p.token_endpoint()
    )
}

fn conn_error(s: &portway::client::Status) -> Option<String> {
    match &s.conn {
        ConnState::Error { reason, .. } => Some(reason.clone()),
        _ => None,
    }
}

/// Fetches a token straight from the provider (form POST, client_secret_post).
async fn fetch_token(p: &OidcProvider, id: &str, secret: &str) -> String {
    let body = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let r = http_request(
        p.port,
        "POST",
        "/application/o/token/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
    .await
    .expect("token request");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().expect("access_token").to_string()
}

/// Logs in with a raw frp Login carrying `token`; returns the server's LoginResp error ("" = accepted).
async fn raw_login(server: std::net::SocketAddr, token: &str) -> String {
    let mut c = tokio::net::TcpStream::connect(server).await.expect("connect");
    let login = Login {
        version: "0.70.0".into(),
        privilege_key: token.into(),
        timestamp: 1,
        pool_count: 1,
        ..Default::default()
    };
    codec::write_msg(&mut c, &Message::Login(login)).await.expect("send login");
    match tokio::time::timeout(Duration::from_secs(15), codec::read_msg(&mut c)).await.expect("answer") {
        Ok(Message::LoginResp(r)) => r.error,
        other => panic!("unexpected answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_configs_tunnel_tcp_and_udp_through_authentik_like_provider() {
    bounded(async {
        let mut p = OidcProvider::start(OidcOptions::default()).await;
        // The seed's files, verbatim but for the values a single machine needs (ports, and the commented line
        // the seed itself says a single-machine test adds).
        let frps = std::fs::read_to_string("tests/fixtures/seed/frps.toml").expect("seed frps.toml");
        let frpc = std::fs::read_to_string("tests/fixtures/seed/frpc.toml").expect("seed frpc.toml");
        let server_port = free_port();
        let frps = frps
            .replace("bindPort = 7000", &format!("bindPort = {server_port}"))
            .replace("http://127.0.0.1:9000/application/o/frp/", p.issuer())
            .replace("# proxyBindAddr = \"127.0.0.2\"", "proxyBindAddr = \"127.0.0.2\"");
        let (tcp_echo, _e) = echo_server().await;
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("udp echo");
        let udp_port = udp.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let mut b = vec![0u8; 2048];
            while let Ok((n, from)) = udp.recv_from(&mut b).await {
                let _ = udp.send_to(&b[..n], from).await;
            }
        });
        let (ts3_voice, ts3_files) = (free_port(), free_port());
        let frpc = frpc
            .replace("serverPort = 7000", &format!("serverPort = {server_port}"))
            .replace("http://127.0.0.1:9000/application/o/token/", p.token_endpoint())
            .replace(
                "localPort = 9987\nremotePort = 9987",
                &format!("localPort = {udp_port}\nremotePort = {ts3_voice}"),
            )
            .replace(
                "localPort = 30033\nremotePort = 30033",
                &format!("localPort = {tcp_echo}\nremotePort = {ts3_files}"),
            );
        let loaded = portway::server::ServerConfig::parse(&frps, "frps.toml").expect("seed frps.toml loads");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let server = portway::server::Server::new(loaded.config).expect("server");
        let listener = server.bind().await.expect("bind");
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(server.run(listener, stop.clone()));
        let loaded = portway::client::ClientConfig::parse(&frpc, "frpc.toml").expect("seed frpc.toml loads");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let h = portway::client::start(loaded.config, SecretSource::FromConfig);
        wait_running(&h, &["TS3-Voice", "TS3-Filetransfer"]).await;
        // TCP through 127.0.0.2:<files>.
        let c = tokio::net::TcpStream::connect(("127.0.0.2", ts3_files)).await.expect("tcp via proxyBindAddr");
        drop(c);
        let data = pattern(1 << 20, 5);
        let mut s = tokio::net::TcpStream::connect(("127.0.0.2", ts3_files)).await.expect("connect");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(&data).await.expect("write");
        s.shutdown().await.expect("shutdown");
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.expect("read");
        assert_eq!(sha256(&back), sha256(&data));
        // UDP through 127.0.0.2:<voice>.
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer");
        peer.send_to(b"voice-datagram", ("127.0.0.2", ts3_voice)).await.expect("send");
        let mut b = [0u8; 64];
        let (n, _) =
            tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut b)).await.expect("echo").expect("recv");
        assert_eq!(&b[..n], b"voice-datagram");
        assert_eq!(p.tokens_issued().await, 1, "one login, one token");
        h.stop().await.expect("stop");
        stop.cancel();
        let _ = task.await;
        p.stop().await;
    })
    .await
}

#[tokio::test]
async fn wrong_secret_and_unknown_client_are_explained() {
    bounded(async {
        let p = provider().await;
        let server = start_server(&oidc_server_toml(&p, ""), 0).await;
        let toml = oidc_client_toml(server.addr.port(), &p, CLIENT_ID, "not-the-secret", "loginFailExit = true", "")
            .replacen("loginFailExit = false\n", "", 1);
        let err = start_client(client_config(&toml)).wait().await.expect_err("wrong secret").to_string();
        assert!(err.contains("invalid_grant") && err.contains("rejected the client secret"), "{err}");
        assert!(!err.contains("not-the-secret"), "the secret must never appear: {err}");
        let toml = oidc_client_toml(server.addr.port(), &p, "nobody", "x", "loginFailExit = true", "").replacen(
            "loginFailExit = false\n",
            "",
            1,
        );
        let err = start_client(client_config(&toml)).wait().await.expect_err("unknown client").to_string();
        assert!(err.contains("invalid_client") && err.contains("\"nobody\""), "{err}");
        server.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn native_oidc_provider_wording_for_a_wrong_secret_is_explained_too() {
    bounded(async {
        let p = OidcProvider::start(OidcOptions { native_errors: true, ..Default::default() }).await;
        let cfg = client_config(&oidc_client_toml(7000, &p, CLIENT_ID, "wrong", "", ""));
        let err =
            portway::client::oidc::test_sign_in(&cfg.auth.oidc, portway::client::Secret::new("wrong"), cfg.resolver())
                .await
                .expect_err("wrong secret")
                .to_string();
        assert!(
            err.contains("invalid_client") && err.contains("check auth.oidc.clientID and auth.oidc.clientSecret"),
            "{err}"
        );
        let info = portway::client::oidc::test_sign_in(
            &cfg.auth.oidc,
            portway::client::Secret::new(CLIENT_SECRET),
            cfg.resolver(),
        )
        .await
        .expect("right secret");
        assert_eq!(info.issuer, p.issuer());
        assert_eq!(info.client_id, CLIENT_ID);
        assert_eq!(info.audience, vec![CLIENT_ID.to_string()]);
        assert_eq!(info.algorithm, "RS256");
        assert!(info.expires_in > 3000 && info.expires_at > 0);
    })
    .await
}

#[tokio::test]
async fn forged_foreign_and_unusable_tokens_are_refused_with_the_rule() {
    bounded(async {
        let p = provider().await;
        let other = OidcProvider::start(OidcOptions { slug: "other".into(), ..Default::default() }).await;
        let server =
            start_server(&oidc_server_toml(&p, "transport.tcpMux = false\n[portway]\ntokenLeeway = 0"), 0).await;
        // Wait for discovery.
        let good = fetch_token(&p, CLIENT_ID, CLIENT_SECRET).await;
        let mut accepted = String::from("x");
        for _ in 0..50 {
            accepted = raw_login(server.addr, &good).await;
            if accepted.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(accepted, "", "a valid token is accepted");

        let foreign = fetch_token(&other, CLIENT_ID, CLIENT_SECRET).await;
        let e = raw_login(server.addr, &foreign).await;
        assert!(e.contains("unknown key") || e.contains("issuer"), "token from another provider: {e}");

        let parts: Vec<&str> = good.split('.').collect();
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("sig");
        sig[5] ^= 0x40;
        let tampered = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
        assert!(raw_login(server.addr, &tampered).await.contains("signature is invalid"));

        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        claims["sub"] = "someone-else".into();
        let forged =
            format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json")), parts[2]);
        assert!(raw_login(server.addr, &forged).await.contains("signature is invalid"));

        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
        assert!(raw_login(server.addr, &none).await.contains("unsigned (alg \"none\")"));

        let hs = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#), parts[1], parts[2]);
        let e = raw_login(server.addr, &hs).await;
        assert!(e.contains("HMAC-signed") && e.contains("signing key"), "{e}");

        // Expired: a 1 s token, presented 2 s later (leeway 0).
        let mut p = p;
        p.set_ttl(1).await;
        let short = fetch_token(&p, CLIENT_ID, CLIENT_SECRET).await;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert!(raw_login(server.addr, &short).await.contains("expired"));
        server.shutdown().await;

        // Wrong audience.
        let server =
            start_server(&oidc_server_toml(&p, "transport.tcpMux = false\nauth.oidc.audience = \"frps\""), 0).await;
        p.set_ttl(3600).await;
        let good = fetch_token(&p, CLIENT_ID, CLIENT_SECRET).await;
        let mut e = String::new();
        for _ in 0..50 {
            e = raw_login(server.addr, &good).await;
            if !e.contains("unreachable") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(e.contains("audience") && e.contains("\"frps\""), "{e}");
        server.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_while_the_server_runs_is_picked_up() {
    bounded(async {
        let p = provider().await;
        let (echo, _e) = echo_server().await;
        let server = start_server(&oidc_server_toml(&p, ""), 0).await;
        let r1 = free_port();
        let h1 = start_client(client_config(&oidc_client_toml(
            server.addr.port(),
            &p,
            CLIENT_ID,
            CLIENT_SECRET,
            "",
            &tcp_proxy("a", echo, r1, ""),
        )));
        wait_running(&h1, &["a"]).await;
        let new_kid = p.rotate_key().await;
        let token = fetch_token(&p, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET).await;
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().expect("h")).expect("b64"))
                .expect("json");
        assert_eq!(header["kid"], new_kid.as_str());
        let r2 = free_port();
        let h2 = start_client(client_config(&oidc_client_toml(
            server.addr.port(),
            &p,
            OTHER_CLIENT_ID,
            OTHER_CLIENT_SECRET,
            "",
            &tcp_proxy("b", echo, r2, ""),
        )));
        wait_running(&h2, &["b"]).await;
        assert_eq!(echo_through(r2, b"rotated").await.expect("new key"), sha256(b"rotated"));
        assert_eq!(echo_through(r1, b"still").await.expect("old session"), sha256(b"still"));
        h1.stop().await.expect("stop");
        h2.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_client_policy_allows_one_clients_port_and_refuses_anothers() {
    bounded(async {
        let p = provider().await;
        let (echo, _e) = echo_server().await;
        let (mine, theirs) = (free_port(), free_port());
        let policy = format!(
            "[[portway.clients]]\nclientID = \"{CLIENT_ID}\"\nallowPorts = [{{ single = {mine} }}]\n\
[portway.defaultClient]\nallowPorts = [{{ single = {theirs} }}]\nallowProxyNames = [\"guest-*\"]\n"
        );
        let server = start_server(&oidc_server_toml(&p, &policy), 0).await;
        let h1 = start_client(client_config(&oidc_client_toml(
            server.addr.port(),
            &p,
            CLIENT_ID,
            CLIENT_SECRET,
            "",
            &tcp_proxy("main", echo, mine, ""),
        )));
        wait_running(&h1, &["main"]).await;
        let proxies = tcp_proxy("guest-ok", echo, theirs, "")
            + &tcp_proxy("guest-bad", echo, mine, "")
            + &tcp_proxy("web", echo, free_port(), "");
        let h2 = start_client(client_config(&oidc_client_toml(
            server.addr.port(),
            &p,
            OTHER_CLIENT_ID,
            OTHER_CLIENT_SECRET,
            "",
            &proxies,
        )));
        let s = wait_status(&h2, Duration::from_secs(30), "policy decisions", |s| {
            matches!(s.proxies["guest-ok"].state, ProxyState::Running { .. })
                && matches!(s.proxies["guest-bad"].state, ProxyState::Error { .. })
                && matches!(s.proxies["web"].state, ProxyState::Error { .. })
        })
        .await;
        let reason = |n: &str| match &s.proxies[n].state {
            ProxyState::Error { reason } => reason.clone(),
            _ => String::new(),
        };
        assert!(
            reason("guest-bad").contains(&format!("remote port {mine} is not in allowPorts of portway.defaultClient")),
            "{}",
            reason("guest-bad")
        );
        assert!(reason("web").contains("not in allowProxyNames of portway.defaultClient"), "{}", reason("web"));
        assert!(reason("web").contains(OTHER_CLIENT_ID));
        assert_eq!(echo_through(theirs, b"ok").await.expect("allowed"), sha256(b"ok"));
        h1.stop().await.expect("stop");
        h2.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_down_at_client_start_then_up_and_down_after_login() {
    bounded(async {
        let mut p = provider().await;
        let (echo, _e) = echo_server().await;
        let server = start_server(&oidc_server_toml(&p, ""), 0).await;
        // Let the server discover the provider first.
        let t = fetch_token(&p, CLIENT_ID, CLIENT_SECRET).await;
        for _ in 0..50 {
            if raw_login_mux_free(&server, &t).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        p.stop().await;
        let remote = free_port();
        let h = start_client(client_config(&oidc_client_toml(
            server.addr.port(),
            &p,
            CLIENT_ID,
            CLIENT_SECRET,
            "",
            &tcp_proxy("web", echo, remote, ""),
        )));
        let s = wait_status(&h, Duration::from_secs(20), "token endpoint error", |s| conn_error(s).is_some()).await;
        assert!(conn_error(&s).expect("reason").contains("cannot reach the token endpoint"), "{s:?}");
        p.restart().await;
        wait_running(&h, &["web"]).await;
        // Provider down after login: existing tunnels keep working, new visitors too.
        p.stop().await;
        for i in 0..5u8 {
            assert_eq!(echo_through(remote, &[i; 100]).await.expect("tunnel without provider"), sha256(&[i; 100]));
        }
        assert!(h.status().is_connected());
        h.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

/// True once the server accepts a login over its default (mux) transport; used to wait for discovery.
async fn raw_login_mux_free(server: &TestServer, token: &str) -> bool {
    // A mux server needs yamux; open one stream by hand: SYN window update, then the Login as data.
    use portway::proto::mux::{MuxConfig, MuxSession};
    let Ok(tcp) = tokio::net::TcpStream::connect(server.addr).await else { return false };
    let s = MuxSession::client(Box::new(tcp), MuxConfig::frp(Duration::from_secs(30)));
    let Ok(mut st) = s.open() else { return false };
    let login = Login {
        version: "0.70.0".into(),
        privilege_key: token.into(),
        timestamp: 1,
        pool_count: 0,
        ..Default::default()
    };
    if codec::write_msg(&mut st, &Message::Login(login)).await.is_err() {
        return false;
    }
    matches!(tokio::time::timeout(Duration::from_secs(5), codec::read_msg(&mut st)).await, Ok(Ok(Message::LoginResp(r))) if r.error.is_empty())
}

#[tokio::test]
async fn server_starts_while_the_provider_is_down_and_accepts_logins_once_it_is_up() {
    bounded(async {
        let mut p = provider().await;
        p.stop().await;
        let (echo, _e) = echo_server().await;
        let server = start_server(&oidc_server_toml(&p, ""), 0).await;
        let remote = free_port();
        let h = start_client(client_config(&oidc_client_toml(
            server.addr.port(),
            &p,
            CLIENT_ID,
            CLIENT_SECRET,
            "",
            &tcp_proxy("web", echo, remote, ""),
        )));
        let s = wait_status(&h, Duration::from_secs(20), "an error", |s| conn_error(s).is_some()).await;
        let reason = conn_error(&s).expect("reason");
        assert!(reason.contains("token endpoint"), "{reason}");
        p.restart().await;
        wait_running(&h, &["web"]).await;
        assert_eq!(echo_through(remote, b"late provider").await.expect("traffic"), sha256(b"late provider"));
        h.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tokens_with_heartbeat_and_work_conn_scopes_renew_without_dropping() {
    bounded(async {
        let mut p = provider().await;
        p.set_ttl(4).await;
        let (echo, _e) = echo_server().await;
        let server = start_server(
            &oidc_server_toml(&p, "auth.additionalScopes = [\"HeartBeats\", \"NewWorkConns\"]\n[portway]\ntokenLeeway = 0\ncloseExpiredSessions = true"),
            0,
        )
        .await;
        let remote = free_port();
        let extra = "auth.additionalScopes = [\"HeartBeats\", \"NewWorkConns\"]\ntransport.heartbeatInterval = 1\ntransport.heartbeatTimeout = 10";
        let h = start_client(client_config(&oidc_client_toml(server.addr.port(), &p, CLIENT_ID, CLIENT_SECRET, extra, &tcp_proxy("web", echo, remote, ""))));
        let first = wait_running(&h, &["web"]).await;
        let start_tokens = p.tokens_issued().await;
        // ~3 token lifetimes of traffic: a long-lived connection and a new one every 500 ms.
        let mut long = tokio::net::TcpStream::connect(("127.0.0.1", remote)).await.expect("long-lived");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for i in 0..26u32 {
            long.write_all(&i.to_be_bytes()).await.expect("long write");
            let mut b = [0u8; 4];
            long.read_exact(&mut b).await.expect("long read");
            assert_eq!(u32::from_be_bytes(b), i);
            let d = pattern(1000, u64::from(i));
            assert_eq!(echo_through(remote, &d).await.expect("new connection"), sha256(&d), "round {i}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let s = h.status();
        let run_id = |s: &portway::client::Status| match &s.conn {
            ConnState::Connected { run_id, since } => (run_id.clone(), *since),
            other => panic!("dropped: {other:?}"),
        };
        assert_eq!(run_id(&s), run_id(&first), "the session never dropped");
        let renewed = p.tokens_issued().await - start_tokens;
        assert!(renewed >= 3, "tokens must be renewed across expiries (got {renewed})");
        assert!(renewed <= 10, "not a token per heartbeat or per connection (got {renewed} for ~13 s, 26 connections)");
        h.stop().await.expect("stop");
        server.shutdown().await;
    })
    .await
}

/// frpc's `auth.oidc.tokenSource` (type file): the access token is read from a file at every login, nothing is
/// requested; a token written there by something else (here: fetched from the provider by the test) logs in and
/// carries traffic; an emptied file is named at the next login.
#[tokio::test]
async fn an_access_token_read_from_a_file_logs_in() {
    bounded(async {
        let p = provider().await;
        let (echo, _e) = echo_server().await;
        let server = start_server(&oidc_server_toml(&p, ""), 0).await;
        let dir = std::env::temp_dir().join(format!("portway-token-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("token");
        std::fs::write(&file, format!("{}\n", fetch_token(&p, CLIENT_ID, CLIENT_SECRET).await)).expect("write token");
        let issued = p.tokens_issued().await;
        let remote = free_port();
        let toml = format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nloginFailExit = false\nauth.method = \"oidc\"\n\
             auth.oidc.tokenSource.type = \"file\"\nauth.oidc.tokenSource.file.path = \"{}\"\n{}",
            server.addr.port(),
            file.display(),
            tcp_proxy("web", echo, remote, "")
        );
        let h = start_client(client_config(&toml));
        wait_running(&h, &["web"]).await;
        let d = pattern(4096, 7);
        assert_eq!(echo_through(remote, &d).await.expect("through the tunnel"), sha256(&d));
        assert_eq!(p.tokens_issued().await, issued, "the client asked the provider for a token");
        h.stop().await.expect("stop");
        // An empty file: the login fails naming the file, nothing is sent.
        std::fs::write(&file, "\n").expect("empty the file");
        let once = toml.replace("loginFailExit = false", "loginFailExit = true");
        let err = start_client(client_config(&once)).wait().await.expect_err("empty token file").to_string();
        assert!(err.contains(&file.display().to_string()) && err.contains("empty"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
        server.shutdown().await;
    })
    .await
}
