//! Client plugins end to end on 127.0.0.1: an in-process portway-server, a client engine whose tcp proxy runs the
//! plugin, and real clients connecting to the server's remote port: SOCKS5 (no auth, user/password, a wrong
//! password), an HTTP proxy (CONNECT and absolute-URI requests, 407), static files (traversal refused, a symbolic
//! link out of the root refused, stripPrefix, 401) and a Unix domain socket. Load-time refusals are checked too.
#![allow(clippy::unwrap_used)]

use portway_client::{ClientConfig, ClientHandle, ProxyState, SecretSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "../../server/tests/support/mod.rs"]
mod support;
use support::{free_port, tcp_echo, TestServer, T};

async fn start_server() -> TestServer {
    support::start_server_with("bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\n").await.0
}

/// A running client whose one tcp proxy (`remotePort` returned) runs the plugin given as TOML lines.
struct Tunnel {
    _server: TestServer,
    client: ClientHandle,
    port: u16,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.client.cancel_token().cancel();
    }
}

async fn tunnel(plugin: &str) -> Tunnel {
    let server = start_server().await;
    let port = free_port();
    let toml = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"t\"\nloginFailExit = false\n\
         transport.tls.enable = false\n\n[[proxies]]\nname = \"plug\"\ntype = \"tcp\"\nremotePort = {port}\n{plugin}\n",
        server.port
    );
    let loaded = ClientConfig::parse(&toml, "test-frpc.toml").unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let client = portway_client::start(loaded.config, SecretSource::FromConfig);
    let mut rx = client.watch();
    let running = |s: &portway_client::Status| {
        matches!(s.proxies.get("plug").map(|p| &p.state), Some(ProxyState::Running { .. }))
    };
    let r = tokio::time::timeout(T, async {
        while !running(&rx.borrow_and_update()) {
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(r.is_ok() && running(&client.status()), "proxy not running: {:#?}", client.status());
    Tunnel { _server: server, client, port }
}

/// Reads a request head (up to its blank line); None when the connection ends first.
async fn read_head<S: tokio::io::AsyncRead + Unpin>(c: &mut S) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(buf)
}

/// An HTTP origin that answers every request with the head it received as the body, then closes.
async fn http_origin() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let Some(buf) = read_head(&mut c).await else { return };
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", buf.len());
                let _ = c.write_all(head.as_bytes()).await;
                let _ = c.write_all(&buf).await;
            });
        }
    });
    port
}

async fn connect(port: u16) -> TcpStream {
    tokio::time::timeout(T, TcpStream::connect(("127.0.0.1", port))).await.unwrap().unwrap()
}

async fn read_exact<const N: usize>(c: &mut TcpStream) -> [u8; N] {
    let mut b = [0u8; N];
    tokio::time::timeout(T, c.read_exact(&mut b)).await.unwrap().unwrap();
    b
}

async fn read_to_end(c: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(T, c.read_to_end(&mut out)).await.unwrap().unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

async fn echo_check(c: &mut TcpStream) {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = c.split();
    let send = async {
        w.write_all(&data).await.unwrap();
    };
    let recv = async {
        let mut got = vec![0u8; data.len()];
        tokio::time::timeout(T, r.read_exact(&mut got)).await.unwrap().unwrap();
        got
    };
    let ((), got) = tokio::join!(send, recv);
    assert!(got == data, "echo through the plugin differs");
}

/// SOCKS5 greeting (+ RFC 1929 auth) and CONNECT; returns the reply code.
async fn socks5_connect(c: &mut TcpStream, creds: Option<(&str, &str)>, dest: &[u8]) -> u8 {
    let method = if creds.is_some() { 2 } else { 0 };
    c.write_all(&[5, 1, method]).await.unwrap();
    assert_eq!(read_exact::<2>(c).await, [5, method]);
    if let Some((u, p)) = creds {
        let mut m = vec![1, u.len() as u8];
        m.extend_from_slice(u.as_bytes());
        m.push(p.len() as u8);
        m.extend_from_slice(p.as_bytes());
        c.write_all(&m).await.unwrap();
        let st = read_exact::<2>(c).await;
        if st[1] != 0 {
            return 0xff;
        }
    }
    let mut req = vec![5, 1, 0];
    req.extend_from_slice(dest);
    c.write_all(&req).await.unwrap();
    let rep = read_exact::<10>(c).await;
    assert_eq!((rep[0], rep[3]), (5, 1), "{rep:?}");
    rep[1]
}

fn ipv4_dest(port: u16) -> Vec<u8> {
    let mut d = vec![1, 127, 0, 0, 1];
    d.extend_from_slice(&port.to_be_bytes());
    d
}

fn name_dest(name: &str, port: u16) -> Vec<u8> {
    let mut d = vec![3, name.len() as u8];
    d.extend_from_slice(name.as_bytes());
    d.extend_from_slice(&port.to_be_bytes());
    d
}

#[tokio::test]
async fn socks5_without_auth_connects_by_address_and_by_name() {
    let echo = tcp_echo().await;
    let t = tunnel("plugin.type = \"socks5\"").await;
    let mut c = connect(t.port).await;
    assert_eq!(socks5_connect(&mut c, None, &ipv4_dest(echo)).await, 0);
    echo_check(&mut c).await;
    let mut c = connect(t.port).await;
    assert_eq!(socks5_connect(&mut c, None, &name_dest("localhost", echo)).await, 0);
    echo_check(&mut c).await;
    // A closed port: "connection refused" (5).
    let mut c = connect(t.port).await;
    assert_eq!(socks5_connect(&mut c, None, &ipv4_dest(free_port())).await, 5);
    // BIND (2) is not supported (7).
    let mut c = connect(t.port).await;
    c.write_all(&[5, 1, 0]).await.unwrap();
    assert_eq!(read_exact::<2>(&mut c).await, [5, 0]);
    let mut req = vec![5, 2, 0];
    req.extend_from_slice(&ipv4_dest(echo));
    c.write_all(&req).await.unwrap();
    assert_eq!(read_exact::<10>(&mut c).await[1], 7);
    assert!(t.client.status().proxies["plug"].conns >= 4);
}

#[tokio::test]
async fn socks5_with_a_password_refuses_the_wrong_one() {
    let echo = tcp_echo().await;
    let t = tunnel("plugin.type = \"socks5\"\nplugin.username = \"alice\"\nplugin.password = \"s3cret\"").await;
    let mut c = connect(t.port).await;
    assert_eq!(socks5_connect(&mut c, Some(("alice", "s3cret")), &ipv4_dest(echo)).await, 0);
    echo_check(&mut c).await;
    // Wrong password: RFC 1929 status non-zero, then the connection closes.
    let mut c = connect(t.port).await;
    assert_eq!(socks5_connect(&mut c, Some(("alice", "wrong")), &ipv4_dest(echo)).await, 0xff);
    assert_eq!(read_to_end(&mut c).await, "");
    // Offering only "no auth": no acceptable method (0xff).
    let mut c = connect(t.port).await;
    c.write_all(&[5, 1, 0]).await.unwrap();
    assert_eq!(read_exact::<2>(&mut c).await, [5, 0xff]);
    assert_eq!(read_to_end(&mut c).await, "");
}

#[tokio::test]
async fn http_proxy_tunnels_connect_and_forwards_absolute_uris() {
    let (echo, origin) = (tcp_echo().await, http_origin().await);
    let t = tunnel("plugin.type = \"http_proxy\"\nplugin.httpUser = \"u\"\nplugin.httpPassword = \"p\"").await;
    // "u:p" → dTpw; "u:x" → dTp4.
    let mut c = connect(t.port).await;
    c.write_all(format!("CONNECT 127.0.0.1:{echo} HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
    let mut got = vec![0u8; ok.len()];
    tokio::time::timeout(T, c.read_exact(&mut got)).await.unwrap().unwrap();
    assert_eq!(got, ok);
    echo_check(&mut c).await;

    let mut c = connect(t.port).await;
    let req = format!(
        "GET http://127.0.0.1:{origin}/path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{origin}\r\nProxy-Authorization: Basic dTpw\r\n\
         Proxy-Connection: keep-alive\r\nX-Test: yes\r\n\r\n"
    );
    c.write_all(req.as_bytes()).await.unwrap();
    let resp = read_to_end(&mut c).await;
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp.contains("\r\n\r\nGET /path?q=1 HTTP/1.1\r\n"), "the origin gets the origin form: {resp}");
    assert!(resp.contains("X-Test: yes") && resp.contains("Connection: close"), "{resp}");
    assert!(!resp.to_ascii_lowercase().contains("proxy-authorization"), "credentials leaked to the origin: {resp}");

    for auth in ["", "Proxy-Authorization: Basic dTp4\r\n"] {
        let mut c = connect(t.port).await;
        c.write_all(format!("CONNECT 127.0.0.1:{echo} HTTP/1.1\r\n{auth}\r\n").as_bytes()).await.unwrap();
        let resp = read_to_end(&mut c).await;
        assert!(resp.starts_with("HTTP/1.1 407 "), "{resp}");
        assert!(resp.contains("Proxy-Authenticate: Basic"), "{resp}");
    }
    // A closed port: 502.
    let mut c = connect(t.port).await;
    let req = format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\n", free_port());
    c.write_all(req.as_bytes()).await.unwrap();
    assert!(read_to_end(&mut c).await.starts_with("HTTP/1.1 502 "));
}

/// A fresh directory under the system's temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("portway-plugins-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn get(port: u16, path: &str, extra: &str) -> String {
    let mut c = connect(port).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
    c.write_all(req.as_bytes()).await.unwrap();
    read_to_end(&mut c).await
}

#[tokio::test]
async fn static_file_serves_the_root_and_nothing_outside_it() {
    let tmp = TempDir::new("static");
    let root = tmp.0.join("site");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("hello.txt"), "hello world\n").unwrap();
    std::fs::write(root.join("docs/a b.html"), "<p>a</p>").unwrap();
    std::fs::write(tmp.0.join("secret.txt"), "TOP SECRET").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.0.join("secret.txt"), root.join("link.txt")).unwrap();
    let root_s = root.display().to_string().replace('\\', "\\\\");
    let t = tunnel(&format!(
        "plugin.type = \"static_file\"\nplugin.localPath = \"{root_s}\"\nplugin.stripPrefix = \"static\"\n\
         plugin.httpUser = \"u\"\nplugin.httpPassword = \"p\""
    ))
    .await;
    let auth = "Authorization: Basic dTpw\r\n";
    let r = get(t.port, "/static/hello.txt", auth).await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\nhello world\n"), "{r}");
    assert!(r.to_ascii_lowercase().contains("content-type: text/plain"), "{r}");
    let r = get(t.port, "/static/docs/a%20b.html", auth).await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("<p>a</p>"), "{r}");
    // A directory: a minimal listing; without its slash, a redirect.
    let r = get(t.port, "/static/docs/", auth).await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n") && r.contains("<a href=\"a%20b.html\">a b.html</a>"), "{r}");
    let r = get(t.port, "/static/docs", auth).await;
    assert!(r.starts_with("HTTP/1.1 301 ") && r.to_ascii_lowercase().contains("location: /static/docs/"), "{r}");
    // Outside the prefix, or outside the root: 404, never the file.
    for path in [
        "/hello.txt",
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/docs/..%2f..%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/link.txt",
    ] {
        let r = get(t.port, path, auth).await;
        assert!(r.starts_with("HTTP/1.1 404 ") && !r.contains("TOP SECRET"), "{path}: {r}");
    }
    // Basic auth: missing or wrong → 401.
    for extra in ["", "Authorization: Basic dTp4\r\n"] {
        let r = get(t.port, "/static/hello.txt", extra).await;
        assert!(r.starts_with("HTTP/1.1 401 ") && r.to_ascii_lowercase().contains("www-authenticate: basic"), "{r}");
        assert!(!r.contains("hello world"), "{r}");
    }
    let mut c = connect(t.port).await;
    c.write_all(b"POST /static/hello.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dTpw\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(read_to_end(&mut c).await.starts_with("HTTP/1.1 405 "));
}

#[cfg(unix)]
#[tokio::test]
async fn unix_domain_socket_relays_to_the_socket() {
    let tmp = TempDir::new("uds");
    let path = tmp.0.join("echo.sock");
    let l = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = c.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let t = tunnel(&format!("plugin.type = \"unix_domain_socket\"\nplugin.unixPath = \"{}\"", path.display())).await;
    let mut c = connect(t.port).await;
    echo_check(&mut c).await;
}

fn load_error(proxy: &str) -> String {
    let toml =
        format!("serverAddr = \"127.0.0.1\"\n[[proxies]]\nname = \"p\"\ntype = \"tcp\"\nremotePort = 1\n{proxy}\n");
    ClientConfig::parse(&toml, "frpc.toml").unwrap_err().to_string()
}

#[test]
fn plugin_keys_are_checked_at_load() {
    let e = load_error("plugin.type = \"virtual_net\"");
    assert!(e.contains("proxies[0].plugin.type") && e.contains("\"virtual_net\" plugin is not supported yet"), "{e}");
    for t in ["http2https", "https2http", "https2https", "http2http", "tls2raw"] {
        let e = load_error(&format!("plugin.type = \"{t}\""));
        assert!(e.contains("proxies[0].plugin.localAddr") && e.contains("host:port"), "{t}: {e}");
    }
    let e = load_error("plugin.type = \"https2http\"\nplugin.localAddr = \"127.0.0.1:80\"\nplugin.crtPath = \"a.crt\"");
    assert!(e.contains("proxies[0].plugin.keyPath") && e.contains("together"), "{e}");
    let e =
        load_error("plugin.type = \"tls2raw\"\nplugin.localAddr = \"127.0.0.1:80\"\nplugin.hostHeaderRewrite = \"x\"");
    assert!(e.contains("plugin.hostHeaderRewrite") && e.contains("does not apply to the tls2raw plugin"), "{e}");
    // With the line of the key (as tests/config_formats.rs checks).
    let e =
        ClientConfig::parse("[[proxies]]\nname = \"a\"\nlocalPort = 1\nplugin.type = \"virtual_net\"\n", "frpc.toml")
            .unwrap_err()
            .to_string();
    assert!(e.contains("line 4: `proxies[0].plugin.type`: the \"virtual_net\" plugin is not supported yet"), "{e}");
    let e = load_error("plugin.type = \"teleport\"");
    assert!(e.contains("\"teleport\" is not an frp plugin type"), "{e}");
    let e = load_error("plugin.type = \"static_file\"");
    assert!(e.contains("proxies[0].plugin.localPath") && e.contains("required"), "{e}");
    let e = load_error("plugin.type = \"unix_domain_socket\"");
    assert!(e.contains("proxies[0].plugin.unixPath"), "{e}");
    let e = load_error("plugin.type = \"socks5\"\nplugin.localPath = \"/srv\"");
    assert!(e.contains("plugin.localPath") && e.contains("does not apply to the socks5 plugin"), "{e}");
    let e = load_error(
        "plugin.type = \"socks5\"\nplugin.username = \"u\"\nplugin.password = \"hunter2\"\nplugin.colour = 1",
    );
    assert!(e.contains("colour") && !e.contains("hunter2"), "{e}");
    let e = load_error("plugin.type = \"socks5\"\nplugin.username = \"u\"");
    assert!(e.contains("plugin.password"), "{e}");
    // A plugin proxy needs no localPort; a UDP proxy cannot have one.
    let ok = "serverAddr = \"127.0.0.1\"\n[[proxies]]\nname = \"p\"\ntype = \"tcp\"\nremotePort = 1\nplugin.type = \"socks5\"\n";
    let cfg = ClientConfig::parse(ok, "frpc.toml").unwrap().config;
    assert_eq!(cfg.proxies[0].plugin.as_ref().unwrap().kind, "socks5");
    let toml = "serverAddr = \"127.0.0.1\"\n[[proxies]]\nname = \"p\"\ntype = \"udp\"\nremotePort = 1\nplugin.type = \"socks5\"\n";
    let e = ClientConfig::parse(toml, "frpc.toml").unwrap_err().to_string();
    assert!(e.contains("proxies[0].plugin") && e.contains("udp"), "{e}");
    // frp's legacy INI keys map onto the same plugin keys.
    let ini = "[common]\nserver_addr = 127.0.0.1\n[p]\ntype = tcp\nremote_port = 1\nplugin = http_proxy\n\
               plugin_http_user = u\nplugin_http_passwd = p\n";
    let cfg = ClientConfig::parse(ini, "frpc.ini").unwrap().config;
    let p = cfg.proxies[0].plugin.as_ref().unwrap();
    assert_eq!((p.kind.as_str(), p.http_user.as_str(), p.http_password.as_str()), ("http_proxy", "u", "p"));
}

/// A TLS client that accepts any certificate (the plugins' default one is self-signed), naming `sni`.
async fn tls_connect(port: u16, sni: &str) -> tokio_rustls::client::TlsStream<TcpStream> {
    let cfg = portway_proto::transport::client_config(&portway_proto::transport::ClientTls::default()).unwrap();
    let name = portway_proto::transport::server_name(sni).unwrap();
    let tcp = connect(port).await;
    tokio::time::timeout(T, tokio_rustls::TlsConnector::from(cfg).connect(name, tcp)).await.unwrap().unwrap()
}

/// Sends one request on `c` and reads the answer until the connection closes.
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(c: &mut S, req: &str) -> String {
    c.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(T, c.read_to_end(&mut out)).await.unwrap();
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

/// https2http as frp's docs use it: TLS ended with the plugin's certificate (crtPath/keyPath), the request passed
/// to the local HTTP service with hostHeaderRewrite, requestHeaders and X-Forwarded-*; a TLS name that is not the
/// request's host is answered 421.
#[tokio::test]
async fn https2http_ends_tls_with_the_given_certificate_and_forwards_over_http() {
    let dir = std::env::temp_dir().join(format!("portway-plugin-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["app.example.com".to_string()]).unwrap();
    std::fs::write(dir.join("server.crt"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), ck.key_pair.serialize_pem()).unwrap();
    let origin = http_origin().await;
    let t = tunnel(&format!(
        "[proxies.plugin]\ntype = \"https2http\"\nlocalAddr = \"127.0.0.1:{origin}\"\ncrtPath = \"{}\"\nkeyPath = \"{}\"\n\
         hostHeaderRewrite = \"intranet.local\"\nrequestHeaders.set.x-from-where = \"frp\"\n",
        dir.join("server.crt").display(),
        dir.join("server.key").display()
    ))
    .await;
    let mut c = tls_connect(t.port, "app.example.com").await;
    let presented = c.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(presented.as_ref(), ck.cert.der().as_ref(), "the certificate of plugin.crtPath");
    let got = exchange(
        &mut c,
        "GET /status?x=1 HTTP/1.1\r\nHost: app.example.com\r\nX-Forwarded-For: 10.1.2.3\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(got.starts_with("http/1.1 200"), "{got}");
    assert!(got.contains("get /status?x=1 http/1.1"), "{got}");
    assert!(got.contains("host: intranet.local"), "hostHeaderRewrite: {got}");
    assert!(got.contains("x-from-where: frp"), "requestHeaders.set: {got}");
    assert!(got.contains("x-forwarded-for: 10.1.2.3, 127.0.0.1"), "the visitor appended: {got}");
    assert!(got.contains("x-forwarded-proto: https") && got.contains("x-forwarded-host: app.example.com"), "{got}");
    let mut c = tls_connect(t.port, "app.example.com").await;
    let got = exchange(&mut c, "GET / HTTP/1.1\r\nHost: other.example.com\r\nConnection: close\r\n\r\n").await;
    assert!(got.starts_with("http/1.1 421"), "SNI app.example.com, Host other.example.com: {got}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// tls2raw with the generated certificate: TLS ended, the bytes relayed to the local service unchanged.
#[tokio::test]
async fn tls2raw_relays_the_decrypted_bytes() {
    let echo = tcp_echo().await;
    let t = tunnel(&format!("[proxies.plugin]\ntype = \"tls2raw\"\nlocalAddr = \"127.0.0.1:{echo}\"\n")).await;
    let mut c = tls_connect(t.port, "localhost").await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    c.write_all(&data).await.unwrap();
    let mut got = vec![0u8; data.len()];
    tokio::time::timeout(T, c.read_exact(&mut got)).await.unwrap().unwrap();
    assert!(got == data, "echo through tls2raw differs");
}

/// http2https: a plain HTTP visitor, TLS towards a local HTTPS service with a self-signed certificate (not
/// verified, as frpc); http2http passes no X-Forwarded-* on.
#[tokio::test]
async fn http2https_speaks_tls_to_the_local_service_and_http2http_forwards_plainly() {
    // A local HTTPS origin: the head it received as the body.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_origin = l.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(
        portway_proto::transport::server_config(&portway_proto::transport::ServerTls::default()).unwrap(),
    );
    tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut c) = acceptor.accept(c).await else { return };
                let Some(buf) = read_head(&mut c).await else { return };
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", buf.len());
                let _ = c.write_all(head.as_bytes()).await;
                let _ = c.write_all(&buf).await;
                let _ = c.shutdown().await;
            });
        }
    });
    let t = tunnel(&format!("[proxies.plugin]\ntype = \"http2https\"\nlocalAddr = \"127.0.0.1:{tls_origin}\"\n")).await;
    let mut c = connect(t.port).await;
    let got = exchange(&mut c, "GET /a HTTP/1.1\r\nHost: web.example.com\r\nConnection: close\r\n\r\n").await;
    assert!(got.starts_with("http/1.1 200") && got.contains("get /a http/1.1"), "{got}");
    assert!(got.contains("host: web.example.com") && got.contains("x-forwarded-proto: http\r\n"), "{got}");
    drop(t);

    let origin = http_origin().await;
    let t = tunnel(&format!("[proxies.plugin]\ntype = \"http2http\"\nlocalAddr = \"127.0.0.1:{origin}\"\n")).await;
    let mut c = connect(t.port).await;
    let got = exchange(
        &mut c,
        "GET /b HTTP/1.1\r\nHost: web.example.com\r\nX-Forwarded-For: 10.9.9.9\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(got.starts_with("http/1.1 200") && got.contains("get /b http/1.1"), "{got}");
    assert!(!got.contains("x-forwarded-"), "http2http passes none on: {got}");
    // The local service down: 502, and the visitor's connection is answered, not dropped.
    drop(t);
    let dead = free_port();
    let t = tunnel(&format!("[proxies.plugin]\ntype = \"http2http\"\nlocalAddr = \"127.0.0.1:{dead}\"\n")).await;
    let mut c = connect(t.port).await;
    let got = exchange(&mut c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(got.starts_with("http/1.1 502"), "{got}");
}

/// A WebSocket-style upgrade passes through http2http: the local service's 101, then bytes both ways.
#[tokio::test]
async fn an_upgrade_passes_through_http2http() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let Some(buf) = read_head(&mut c).await else { return };
                let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                if !head.contains("upgrade: websocket") {
                    let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
                    return;
                }
                let _ = c
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                    .await;
                let (mut r, mut w) = c.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let t = tunnel(&format!("[proxies.plugin]\ntype = \"http2http\"\nlocalAddr = \"127.0.0.1:{origin}\"\n")).await;
    let mut c = connect(t.port).await;
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(T, c.read_exact(&mut byte)).await.unwrap().unwrap();
        head.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    echo_check(&mut c).await;
}
