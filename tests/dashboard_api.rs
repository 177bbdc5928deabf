//! The server's dashboard API and `/metrics` against what a real frps v0.70 answered in the same scenario
//! (`tests/fixtures/frp-captures/dashboard-api/`, see its README): a client with the capture's tcp `web`, udp
//! `voice` and the tcp `clash` whose port is taken; 3 × `hello portway` through `web`, 2 × `voice-datagram`
//! through `voice`; then every endpoint, compared by status, the headers that matter, JSON key sets and values
//! (modulo times, IDs and ports). The capture's http proxy `site` is left out here (vhost byte counts: tests/http_vhost.rs).
//! Plus a real Prometheus server scraping `/metrics`.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use portway::server::{Server, ServerConfig};
use serde_json::{json, Value};
use support::oidc::{http_request, HttpResponse};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

const CAPTURE: &str = "dashboard-api";
/// admin:admin, as in the capture.
const AUTH: &str = "Basic YWRtaW46YWRtaW4=";
/// admin:wrong.
const WRONG: &str = "Basic YWRtaW46d3Jvbmc=";
/// A token no answer may contain.
const TOKEN: &str = "dash-secret-token-9f1c";

fn read_fixture(capture: &str, file: &str) -> String {
    let p =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frp-captures").join(capture).join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    init_logs();
    tokio::time::timeout(TEST_TIMEOUT, f).await.expect("test timed out");
}

struct Dash {
    api: u16,
    server_port: u16,
    stop: CancellationToken,
}

/// A server with the capture's frps.toml settings (no vhostHTTPPort) and its API on a port of its own.
async fn start_dash_server() -> Dash {
    let toml = format!(
        "bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"{TOKEN}\"\nenablePrometheus = true\n\
         webServer.addr = \"127.0.0.1\"\nwebServer.port = 17500\nwebServer.user = \"admin\"\nwebServer.password = \"admin\"\n"
    );
    let cfg: ServerConfig = ServerConfig::parse(&toml, "dash-frps.toml").expect("server config").config;
    let server = Server::new(cfg).expect("server");
    let listener = server.bind().await.expect("bind");
    let server_port = listener.local_addr().expect("addr").port();
    let web = TcpListener::bind("127.0.0.1:0").await.expect("bind api");
    let api = web.local_addr().expect("addr").port();
    server.serve_web(web).expect("serve api");
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move { server.run(listener, s).await });
    Dash { api, server_port, stop }
}

async fn get_as(port: u16, method: &str, path: &str, auth: Option<&str>) -> HttpResponse {
    let headers: Vec<(&str, &str)> = auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
    let r = http_request(port, method, path, &headers, b"").await.expect("API request");
    assert!(!r.body.contains(TOKEN) && !r.body.contains("admin:admin"), "{path} shows a secret: {}", r.body);
    r
}

async fn get(port: u16, path: &str) -> HttpResponse {
    get_as(port, "GET", path, Some(AUTH)).await
}

fn captured(file: &str) -> Value {
    serde_json::from_str(&read_fixture(CAPTURE, file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Every key path of a JSON value (array elements merged), for comparing shapes.
fn key_paths(v: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = format!("{prefix}.{k}");
                    out.insert(p.clone());
                    walk(x, &p, out);
                }
            }
            Value::Array(a) => {
                for x in a {
                    walk(x, &format!("{prefix}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(v, "", &mut out);
    out
}

fn assert_same_keys(file: &str, frp: &Value, ours: &Value) {
    assert_eq!(key_paths(frp), key_paths(ours), "key set differs from frps's {file}\nfrps: {frp}\nours: {ours}");
}

/// The body of a `*.txt` capture that holds a whole response (after the blank line).
fn captured_body(file: &str) -> String {
    let t = read_fixture(CAPTURE, file);
    let (_, body) = t.split_once("\n\n").unwrap_or_else(|| panic!("{file} has no body"));
    body.to_string()
}

fn captured_header(file: &str, name: &str) -> String {
    read_fixture(CAPTURE, file)
        .lines()
        .find_map(|l| l.split_once(": ").filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_string()))
        .unwrap_or_else(|| panic!("{file} has no {name} header"))
}

/// A captured v2 list without the http proxy `site` (no HTTP vhosts on this server).
fn without_site(mut v: Value) -> Value {
    if let Some(items) = v["data"]["items"].as_array_mut() {
        items.retain(|p| p["name"] != "site");
    }
    v
}

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array().and_then(|a| a.iter().find(|p| p["name"] == name)).unwrap_or_else(|| panic!("no {name} in {list}"))
}

async fn udp_echo() -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp echo");
    let port = sock.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let _ = sock.send_to(&buf[..n], from).await;
        }
    });
    port
}

/// Sends `data` on one connection and reads the echo back completely, then closes.
async fn tcp_echo_once(port: u16, data: &[u8]) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.expect("connect to the proxy");
    c.write_all(data).await.expect("write");
    let mut got = vec![0u8; data.len()];
    c.read_exact(&mut got).await.expect("echo");
    assert_eq!(got, data);
}

/// Sends one datagram through the proxy until its echo comes back (the first may arrive before the work
/// connection). Returns how many were sent.
async fn udp_echo_once(port: u16, data: &[u8]) -> u64 {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    s.connect(("127.0.0.1", port)).await.expect("connect");
    let mut buf = [0u8; 1500];
    for sent in 1..=20 {
        s.send(data).await.expect("send");
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), s.recv(&mut buf)).await {
            assert_eq!(&buf[..n], data);
            return sent;
        }
    }
    panic!("no udp echo through port {port}");
}

/// Polls `path` until `pred` holds on its JSON (bounded).
async fn wait_json(port: u16, path: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let v = get(port, path).await.json();
        if pred(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {path} never got there");
}

#[tokio::test]
async fn frps_capture_scenario_gives_frps_answers() {
    bounded(async {
        let dash = start_dash_server().await;
        let api = dash.api;
        let (echo, _e) = echo_server().await;
        let uecho = udp_echo().await;
        let (web_port, voice_port) = (free_port(), free_port());
        let proxies = format!(
            "{}[[proxies]]\nname = \"voice\"\ntype = \"udp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {uecho}\nremotePort = {voice_port}\n\n{}",
            tcp_proxy("web", echo, web_port, ""),
            tcp_proxy("clash", echo, api, "")
        );
        let cfg = format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"{TOKEN}\"\nloginFailExit = false\n{proxies}",
            dash.server_port
        );
        let client = start_client(client_config(&cfg));
        wait_running(&client, &["web", "voice"]).await;
        for _ in 0..3 {
            tcp_echo_once(web_port, b"hello portway").await;
        }
        let mut datagrams = 0;
        for _ in 0..2 {
            datagrams += udp_echo_once(voice_port, b"voice-datagram").await;
        }
        let voice_bytes = 14 * datagrams;

        // Auth, health, redirect: status, headers and bodies as frps.
        let h = get_as(api, "GET", "/healthz", None).await;
        assert_eq!((h.status, h.body.as_str(), h.header("content-length")), (200, "", Some("0")));
        for (auth, file) in [(None, "frps-unauthenticated.txt"), (Some(WRONG), "frps-wrong-password.txt")] {
            let r = get_as(api, "GET", "/api/serverinfo", auth).await;
            assert_eq!(r.status, 401, "{file}");
            assert_eq!(r.body, captured_body(file), "{file}");
            for h in ["Content-Type", "Www-Authenticate", "X-Content-Type-Options"] {
                assert_eq!(r.header(h), Some(captured_header(file, h).as_str()), "{file}: {h}");
            }
        }
        assert_eq!(get_as(api, "GET", "/metrics", None).await.status, 401, "/metrics needs auth too");
        let r = get(api, "/").await;
        assert_eq!((r.status, r.header("location")), (301, Some("/static/")));
        assert_eq!(r.body, captured_body("frps-root.txt"));
        // frps built without its web assets answers 404 here (frps-static-noweb.txt); Portway serves its own page
        // (crates/server/tests/dashboard_page.rs), or a 503 naming the build command when it was compiled without it.
        let r = get(api, "/static/").await;
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(
            (r.status == 200 && r.body.contains("<div id=\"app\""))
                || (r.status == 503 && r.body.contains("npm run build")),
            "/static/: {} {}",
            r.status,
            r.body
        );

        // Wait until the counters show every byte (they are live; the last echo may still be in flight).
        wait_json(api, "/api/traffic/voice", "voice traffic", |v| v["trafficOut"][0] == voice_bytes).await;
        wait_json(api, "/api/traffic/web", "web traffic", |v| v["trafficOut"][0] == 39).await;

        // serverinfo: frps's keys; the totals are the capture's (39 + 28 with one datagram each way).
        let si = get(api, "/api/serverinfo").await;
        assert_eq!((si.status, si.header("content-type")), (200, Some("application/json")));
        let (ours, frp) = (si.json(), captured("frps-api-serverinfo.json"));
        let mut frp_no_http = frp.clone();
        frp_no_http["proxyTypeCount"].as_object_mut().expect("map").remove("http");
        assert_same_keys("frps-api-serverinfo.json", &frp_no_http, &ours);
        assert_eq!(ours["totalTrafficIn"], 39 + voice_bytes);
        assert_eq!(ours["totalTrafficOut"], 39 + voice_bytes);
        assert_eq!((ours["clientCounts"].as_i64(), ours["curConns"].as_i64()), (Some(1), Some(0)));
        assert_eq!(ours["proxyTypeCount"], json!({"tcp": 1, "udp": 1}));
        for k in ["version", "maxPoolCount", "maxPortsPerClient", "heartbeatTimeout", "subdomainHost", "kcpBindPort"] {
            assert_eq!(ours[k], frp[k], "serverinfo.{k}");
        }

        // Proxies by type: the capture's entries, values equal but for times and ids.
        for (ty, name, file, bytes) in
            [("tcp", "web", "frps-api-proxy-tcp.json", 39), ("udp", "voice", "frps-api-proxy-udp.json", voice_bytes)]
        {
            let ours = get(api, &format!("/api/proxy/{ty}")).await.json();
            let frp = captured(file);
            assert_same_keys(file, &frp, &ours);
            let (o, f) = (find(&ours["proxies"], name), find(&frp["proxies"], name));
            let mut conf = f["conf"].clone();
            conf["remotePort"] = json!(if ty == "tcp" { web_port } else { voice_port });
            assert_eq!(o["conf"], conf, "{file}: conf");
            for k in ["curConns", "lastCloseTime", "status"] {
                assert_eq!(o[k], f[k], "{file}: {k}");
            }
            assert_eq!((o["todayTrafficIn"].as_u64(), o["todayTrafficOut"].as_u64()), (Some(bytes), Some(bytes)));
            assert_eq!(o["lastStartTime"].as_str().map(str::len), Some("11-29 17:46:45".len()));
        }
        for ty in ["http", "https", "tcpmux", "stcp", "sudp", "xtcp"] {
            let r = get(api, &format!("/api/proxy/{ty}")).await;
            assert_eq!((r.status, r.json()), (200, json!({"proxies": []})), "{ty}");
        }
        for (path, file) in
            [("/api/proxy/tcp/web", "frps-api-proxy-tcp-web.json"), ("/api/proxies/web", "frps-api-proxies-web.json")]
        {
            let r = get(api, path).await;
            assert_eq!(r.status, 200);
            assert_same_keys(file, &captured(file), &r.json());
        }
        for (path, file) in [
            ("/api/proxy/tcp/nosuch", "frps-api-proxy-tcp-nosuch.json"),
            ("/api/proxy/udp/web", "frps-api-proxy-udp-web-wrongtype.json"),
        ] {
            let r = get(api, path).await;
            assert_eq!((r.status, r.json()), (404, captured(file)), "{path}");
        }
        // Traffic history: the capture's exactly for web; voice with our datagram count.
        assert_eq!(get(api, "/api/traffic/web").await.json(), captured("frps-api-traffic-web.json"));
        let mut voice = captured("frps-api-traffic-voice.json");
        voice["trafficIn"][0] = json!(voice_bytes);
        voice["trafficOut"][0] = json!(voice_bytes);
        assert_eq!(get(api, "/api/traffic/voice").await.json(), voice);

        // Clients.
        let clients = get(api, "/api/clients").await.json();
        assert_same_keys("frps-api-clients.json", &captured("frps-api-clients.json"), &clients);
        let c = &clients[0];
        assert_eq!((c["clientID"].clone(), c["runID"].clone()), (c["key"].clone(), c["key"].clone()));
        for k in ["user", "wireProtocol", "clientIP", "online"] {
            assert_eq!(c[k], captured("frps-api-clients.json")[0][k], "client.{k}");
        }
        let key = c["key"].as_str().expect("key").to_string();
        assert_eq!(get(api, &format!("/api/clients/{key}")).await.json(), *c);
        assert_eq!(get(api, "/api/clients?status=online").await.json(), clients);
        assert_eq!(get(api, "/api/clients?status=offline").await.json(), json!([]));

        // v2.
        let info = get(api, "/api/v2/system/info").await.json();
        let mut frp = captured("frps-api-v2-system-info.json");
        frp["data"]["status"]["proxyTypeCount"].as_object_mut().expect("map").remove("http");
        assert_same_keys("frps-api-v2-system-info.json", &frp, &info);
        assert_eq!((info["code"].as_i64(), info["msg"].as_str()), (Some(200), Some("success")));
        let users = get(api, "/api/v2/users").await.json();
        assert_same_keys("frps-api-v2-users.json", &captured("frps-api-v2-users.json"), &users);
        assert_eq!(users["data"]["items"], json!([{"user": "", "clientCount": 1, "proxyCount": 2}]));
        let v2c = get(api, "/api/v2/clients").await.json();
        assert_same_keys("frps-api-v2-clients.json", &captured("frps-api-v2-clients.json"), &v2c);
        assert_eq!(v2c["data"]["items"], clients);
        let one = get(api, &format!("/api/v2/clients/{key}")).await.json();
        assert_same_keys("frps-api-v2-clients-KEY.json", &captured("frps-api-v2-clients-KEY.json"), &one);
        assert_eq!(one["data"]["status"], json!({"phase": "online", "curConns": 0, "proxyCount": 2}));
        let all = get(api, "/api/v2/proxies").await.json();
        assert_same_keys("frps-api-v2-proxies.json", &without_site(captured("frps-api-v2-proxies.json")), &all);
        let names: Vec<&str> = all["data"]["items"].as_array().expect("items").iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!((all["data"]["total"].as_u64(), names), (Some(2), vec!["web", "voice"]), "by type, then name");
        let page = get(api, "/api/v2/proxies?type=tcp&page=1&pageSize=1").await.json();
        let mut frp = captured("frps-api-v2-proxies-type-tcp-page1-size1.json");
        let item = &mut frp["data"]["items"][0];
        item["spec"]["tcp"]["remotePort"] = json!(web_port);
        item["clientID"] = json!(key);
        item["status"]["lastStartAt"] = page["data"]["items"][0]["status"]["lastStartAt"].clone();
        assert_eq!(page, frp, "v2 proxies, type=tcp page 1 of size 1");
        let r = get(api, "/api/v2/proxies?status=bogus").await;
        assert_eq!((r.status, r.json()), (400, captured("frps-api-v2-proxies-status-bogus.json")));
        let one = get(api, "/api/v2/proxies/web").await.json();
        assert_same_keys("frps-api-v2-proxies-web.json", &captured("frps-api-v2-proxies-web.json"), &one);
        let tr = get(api, "/api/v2/proxies/web/traffic").await.json();
        let frp = captured("frps-api-v2-proxies-web-traffic.json");
        assert_same_keys("frps-api-v2-proxies-web-traffic.json", &frp, &tr);
        assert_eq!(tr["data"]["history"][6]["trafficIn"], 39);
        assert_eq!(tr["data"]["history"].as_array().map(Vec::len), Some(7));
        let r = get_as(api, "POST", "/api/v2/system/prune", Some(AUTH)).await;
        assert_eq!((r.status, r.json()), (400, captured("frps-api-v2-system-prune-notype.json")));

        // Portway's own view: identity and policy, never a secret (checked on every answer).
        let pw = get(api, "/api/portway/clients").await.json();
        assert_eq!(pw[0]["key"], json!(key));
        assert_eq!(pw[0]["auth"], json!({"subject": "", "oidcClientID": "", "tokenExpiresAt": 0}));
        assert_eq!(pw[0]["policyRule"], Value::Null);

        // /metrics: frps's frp_* families with their types, and the lines of web and voice.
        let m = get(api, "/metrics").await;
        assert_eq!(m.status, 200);
        assert!(m.header("content-type").is_some_and(|c| c.starts_with("text/plain; version=0.0.4")), "{:?}", m.headers);
        for line in read_fixture(CAPTURE, "frps-metrics-families.txt").lines().filter(|l| l.starts_with("frp_")) {
            let (name, ty) = line.split_once(' ').expect("family line");
            assert!(m.body.contains(&format!("# TYPE {name} {ty}\n")), "no {name} {ty} in\n{}", m.body);
        }
        for line in [
            "frp_server_client_counts 1",
            "frp_server_traffic_in{name=\"web\",type=\"tcp\"} 39",
            "frp_server_traffic_out{name=\"web\",type=\"tcp\"} 39",
            "frp_server_connection_counts{name=\"web\",type=\"tcp\"} 0",
            "frp_server_proxy_counts{type=\"tcp\"} 1",
            "frp_server_proxy_counts{type=\"udp\"} 1",
            "frp_server_proxy_counts_detailed{name=\"voice\",type=\"udp\"} 1",
            &format!("frp_server_traffic_in{{name=\"voice\",type=\"udp\"}} {voice_bytes}"),
        ] {
            assert!(m.body.lines().any(|l| l == line), "no `{line}` in\n{}", m.body);
        }
        assert!(m.body.contains("\nprocess_resident_memory_bytes "), "process metrics");

        // The client stops: its proxies stay, offline, until pruned; its record goes (no clientID configured).
        client.stop().await.ok();
        let offline = wait_json(api, "/api/proxy/tcp", "web offline", |v| v["proxies"][0]["status"] == "offline").await;
        let frp = captured("frps-api-proxy-tcp-offline.json");
        assert_same_keys("frps-api-proxy-tcp-offline.json", &frp, &offline);
        let w = find(&offline["proxies"], "web");
        assert_eq!((w["conf"].clone(), w["todayTrafficIn"].as_u64()), (Value::Null, Some(39)));
        assert_eq!(w["lastCloseTime"].as_str().map(str::len), Some("11-29 17:46:52".len()));
        let cl = wait_json(api, "/api/clients", "client gone", |v| v == &json!([])).await;
        assert_eq!(cl, captured("frps-api-clients-offline.json"));
        let off = get(api, "/api/v2/proxies?status=offline").await.json();
        let frp = without_site(captured("frps-api-v2-proxies-offline.json"));
        assert_same_keys("frps-api-v2-proxies-offline.json", &frp, &off);
        assert_eq!(off["data"]["total"], 2);
        let after = get(api, "/api/serverinfo").await.json();
        assert_eq!(after["proxyTypeCount"], json!({"tcp": 0, "udp": 0}), "types seen stay at 0, as frps");
        assert_eq!((after["clientCounts"].as_i64(), after["totalTrafficIn"].clone()), (Some(0), json!(39 + voice_bytes)));
        let r = get_as(api, "POST", "/api/v2/system/prune?type=offline_proxies", Some(AUTH)).await;
        let frp = captured("frps-api-v2-system-prune.json");
        assert_same_keys("frps-api-v2-system-prune.json", &frp, &r.json());
        assert_eq!(r.json()["data"], json!({"type": "offline_proxies", "cleared": 2, "total": 2}));
        assert_eq!(get(api, "/api/proxy/tcp").await.json(), captured("frps-api-proxy-tcp-after-prune.json"));
        let r = get_as(api, "DELETE", "/api/proxies?status=online", Some(AUTH)).await;
        assert_eq!((r.status, r.json()), (400, captured("frps-api-delete-proxies-status-online.json")));
        let r = get_as(api, "DELETE", "/api/proxies?status=offline", Some(AUTH)).await;
        assert_eq!((r.status, r.json()), (200, captured("frps-api-delete-proxies-offline.json")));
        dash.stop.cancel();
    })
    .await;
}

/// Bytes of an open connection show at once (live counters), and a real Prometheus server scraping `/metrics`
/// answers the PromQL query `frp_server_traffic_in` with the bytes sent.
#[tokio::test]
async fn prometheus_scrapes_the_bytes_sent() {
    bounded(async {
        let prometheus = std::path::Path::new("/usr/bin/prometheus");
        assert!(prometheus.exists(), "Debian's `prometheus` package is needed (scripts/apt-packages.txt)");
        let dash = start_dash_server().await;
        let api = dash.api;
        let (echo, _e) = echo_server().await;
        let web_port = free_port();
        let cfg = format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"{TOKEN}\"\nloginFailExit = false\n{}",
            dash.server_port,
            tcp_proxy("web", echo, web_port, "")
        );
        let client = start_client(client_config(&cfg));
        wait_running(&client, &["web"]).await;

        // One connection stays open: its bytes and the connection count show while it is open.
        const OPEN: usize = 50_000;
        let mut open = TcpStream::connect(("127.0.0.1", web_port)).await.expect("connect");
        let data = pattern(OPEN, 7);
        open.write_all(&data).await.expect("write");
        let mut back = vec![0u8; OPEN];
        open.read_exact(&mut back).await.expect("echo");
        assert_eq!(back, data);
        let p = wait_json(api, "/api/proxy/tcp/web", "live bytes", |v| v["todayTrafficOut"] == OPEN).await;
        assert_eq!((p["todayTrafficIn"].as_u64(), p["curConns"].as_i64()), (Some(OPEN as u64), Some(1)));
        drop(open);
        // And a second, closed one.
        const CLOSED: usize = 123_457;
        let data = pattern(CLOSED, 8);
        assert_eq!(echo_through(web_port, &data).await.expect("echo"), sha256(&data));
        let total = (OPEN + CLOSED) as u64;
        wait_json(api, "/api/proxy/tcp/web", "all bytes, no connection", |v| {
            v["todayTrafficOut"] == total && v["curConns"] == 0
        })
        .await;
        let t = get(api, "/api/traffic/web").await.json();
        assert_eq!((t["trafficIn"][0].as_u64(), t["trafficOut"][0].as_u64()), (Some(total), Some(total)));
        let m = get(api, "/metrics").await.body;
        assert!(m.lines().any(|l| l == format!("frp_server_traffic_in{{name=\"web\",type=\"tcp\"}} {total}")), "{m}");

        // A real Prometheus scraping every second, with the API's basic auth.
        let dir = std::env::temp_dir().join(format!("portway-prom-{}-{}", std::process::id(), api));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let prom_port = free_port();
        let conf = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: portway\n    scrape_interval: 1s\n    basic_auth:\n      username: admin\n      password: admin\n    static_configs:\n      - targets: ['127.0.0.1:{api}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), conf).expect("write prometheus.yml");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let mut child = tokio::process::Command::new(prometheus)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start prometheus");
        let mut seen = None;
        for _ in 0..120 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let Ok(r) = http_request(prom_port, "GET", "/api/v1/query?query=frp_server_traffic_in", &[], b"").await
            else {
                continue;
            };
            if r.status != 200 {
                continue;
            }
            let v = r.json();
            let hit = v["data"]["result"].as_array().and_then(|rs| {
                rs.iter().find(|s| s["metric"]["name"] == "web" && s["metric"]["type"] == "tcp").cloned()
            });
            if let Some(s) = hit {
                seen = Some(s);
                break;
            }
        }
        let _ = child.kill().await;
        let plog = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        let s = seen.unwrap_or_else(|| panic!("prometheus never had frp_server_traffic_in; its log:\n{plog}"));
        assert_eq!(s["metric"]["job"], "portway");
        assert_eq!(s["value"][1], json!(total.to_string()), "PromQL frp_server_traffic_in: {s}");
        client.stop().await.ok();
        dash.stop.cancel();
    })
    .await;
}

/// `ClientHandle::reload` under load: 50 connections through proxy `a` keep echoing while `b` is added, `c`
/// changed (new remote port), `e` changed on the same port (compression on) and `d` removed; the server's API shows
/// the result.
#[tokio::test]
async fn reload_applies_the_difference_while_connections_echo() {
    bounded(async {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let dash = start_dash_server().await;
        let api = dash.api;
        let (echo, _e) = echo_server().await;
        let (a, b, c1, c2, d, e) = (free_port(), free_port(), free_port(), free_port(), free_port(), free_port());
        let cfg = |proxies: String| {
            client_config(&format!(
                "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"{TOKEN}\"\nloginFailExit = false\n{proxies}",
                dash.server_port
            ))
        };
        let before = cfg(format!(
            "{}{}{}{}",
            tcp_proxy("a", echo, a, ""),
            tcp_proxy("c", echo, c1, ""),
            tcp_proxy("d", echo, d, ""),
            tcp_proxy("e", echo, e, "")
        ));
        let client = start_client(before);
        wait_running(&client, &["a", "c", "d", "e"]).await;

        // 50 connections through `a`, each echoing 1 KiB again and again on the same connection.
        const CONNS: usize = 50;
        let stop = Arc::new(AtomicBool::new(false));
        let rounds: Arc<Vec<AtomicU64>> = Arc::new((0..CONNS).map(|_| AtomicU64::new(0)).collect());
        let mut tasks = Vec::new();
        for i in 0..CONNS {
            let mut conn = TcpStream::connect(("127.0.0.1", a)).await.expect("connect to a");
            let (stop, rounds) = (stop.clone(), rounds.clone());
            tasks.push(tokio::spawn(async move {
                let data = pattern(1024, i as u64 + 1);
                let mut back = vec![0u8; data.len()];
                while !stop.load(Ordering::Relaxed) {
                    conn.write_all(&data).await.map_err(|e| format!("connection {i}: write: {e}"))?;
                    conn.read_exact(&mut back).await.map_err(|e| format!("connection {i}: read: {e}"))?;
                    if back != data {
                        return Err(format!("connection {i}: wrong bytes"));
                    }
                    rounds[i].fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), String>(())
            }));
        }
        let all_moved = |min: u64| rounds.iter().all(|r| r.load(Ordering::Relaxed) >= min);
        for _ in 0..200 {
            if all_moved(3) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(all_moved(3), "the 50 connections through a did not all echo");
        let p = wait_json(api, "/api/proxy/tcp/a", "50 connections", |v| v["curConns"] == CONNS).await;
        assert_eq!(p["status"], "online");

        let after = cfg(format!(
            "{}{}{}{}",
            tcp_proxy("a", echo, a, ""),
            tcp_proxy("b", echo, b, ""),
            tcp_proxy("c", echo, c2, ""),
            tcp_proxy("e", echo, e, "transport.useCompression = true")
        ));
        let outcome = client.reload(after);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            (outcome.added, outcome.changed, outcome.removed, outcome.other_settings_changed),
            (s(&["b"]), s(&["c", "e"]), s(&["d"]), false)
        );
        let st = wait_running(&client, &["a", "b", "c", "e"]).await;
        assert!(!st.proxies.contains_key("d"), "d left the status: {st:?}");
        for port in [b, c2, e] {
            wait_echo(port, Duration::from_secs(10)).await;
        }
        for (port, what) in [(d, "d (removed)"), (c1, "c's old port")] {
            let mut closed = false;
            for _ in 0..100 {
                if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                    closed = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(closed, "{what} still accepts connections");
        }

        // `a`'s connections went on through the reload and still echo.
        let now: Vec<u64> = rounds.iter().map(|r| r.load(Ordering::Relaxed)).collect();
        for _ in 0..200 {
            if rounds.iter().zip(&now).all(|(r, n)| r.load(Ordering::Relaxed) >= n + 3) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("join").expect("a connection through a broke during the reload");
        }
        assert!(rounds.iter().zip(&now).all(|(r, n)| r.load(Ordering::Relaxed) >= n + 3), "a's connections stalled");

        // The server saw it: d offline, c on its new port, b and a online.
        let tcp = get(api, "/api/proxy/tcp").await.json();
        assert_eq!(find(&tcp["proxies"], "d")["status"], "offline");
        assert_eq!(find(&tcp["proxies"], "c")["conf"]["remotePort"], c2);
        assert_eq!(find(&tcp["proxies"], "b")["status"], "online");
        assert_eq!(find(&tcp["proxies"], "a")["status"], "online");
        let v2e = get(api, "/api/v2/proxies/e").await.json();
        assert_eq!(v2e["data"]["spec"]["tcp"]["transport"]["useCompression"], true, "e restarted with compression");
        client.stop().await.ok();
        dash.stop.cancel();
    })
    .await;
}

/// Runs `portway-client <cmd> -c <file>`; returns (exit code, stdout).
async fn client_cli(cmd: &str, file: &std::path::Path) -> (i32, String) {
    let out = tokio::process::Command::new(support::process::bin("portway-client"))
        .arg(cmd)
        .arg("-c")
        .arg(file)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("run portway-client");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The client's admin API (`webServer.*` in frpc.toml) and `portway-client status|reload|stop -c FILE` against
/// frpc's captured answers, on the real binary.
#[tokio::test]
async fn client_admin_api_and_cli_as_frpc() {
    // Building the binaries (a cargo build the first time) is not part of the bounded test.
    tokio::task::spawn_blocking(|| support::process::bin("portway-client")).await.expect("build the binaries");
    bounded(async {
        let dash = start_dash_server().await;
        let (echo, _e) = echo_server().await;
        let uecho = udp_echo().await;
        let (admin, web_port, voice_port, extra_port) = (free_port(), free_port(), free_port(), free_port());
        let head = format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"{TOKEN}\"\nloginFailExit = false\n\
             webServer.addr = \"127.0.0.1\"\nwebServer.port = {admin}\nwebServer.user = \"admin\"\nwebServer.password = \"admin\"\n",
            dash.server_port
        );
        let voice = format!(
            "[[proxies]]\nname = \"voice\"\ntype = \"udp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {uecho}\nremotePort = {voice_port}\n\n"
        );
        let text = format!(
            "{head}\n{}{voice}{}",
            tcp_proxy("web", echo, web_port, ""),
            tcp_proxy("clash", echo, dash.api, "")
        );
        let proc = support::process::Proc::spawn("portway-client", &text);
        let file = proc.config_path().to_path_buf();
        support::process::wait_listening(admin, Duration::from_secs(30)).await;

        let h = get_as(admin, "GET", "/healthz", None).await;
        assert_eq!((h.status, h.body.as_str()), (200, ""));
        let r = get_as(admin, "GET", "/api/status", None).await;
        assert_eq!((r.status, r.body.clone()), (401, captured_body("frpc-unauthenticated.txt")));
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"Restricted\""));

        let st = wait_json(admin, "/api/status", "proxies up", |v| {
            v["tcp"][1]["status"] == "running" && v["udp"][0]["status"] == "running" && v["tcp"][0]["status"] == "start error"
        })
        .await;
        let mut frp = captured("frpc-api-status.json");
        frp.as_object_mut().expect("map").remove("http");
        assert_same_keys("frpc-api-status.json", &frp, &st);
        let web = find(&st["tcp"], "web");
        assert_eq!(web["remote_addr"], format!("127.0.0.1:{web_port}"));
        assert_eq!(web["local_addr"], format!("127.0.0.1:{echo}"));
        assert_eq!((web["err"].clone(), web["plugin"].clone()), (json!(""), json!("")));
        let clash = find(&st["tcp"], "clash");
        assert!(clash["err"].as_str().is_some_and(|e| e.contains(&dash.api.to_string())), "{clash}");
        assert_eq!(find(&st["udp"], "voice")["remote_addr"], format!("127.0.0.1:{voice_port}"));

        // The CLI's table.
        let (code, out) = client_cli("status", &file).await;
        assert_eq!(code, 0, "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(&lines[..3], ["Proxy Status...", "", "TCP"], "{out}");
        assert!(lines[3].starts_with("Name   Status       LocalAddr        Plugin  RemoteAddr") && lines[3].contains("Error"), "{out}");
        assert!(lines.iter().any(|l| l.starts_with("web ") && l.contains(&format!("127.0.0.1:{web_port}"))), "{out}");
        assert!(lines.contains(&"UDP"), "{out}");

        // GET/PUT /api/config: the file verbatim; empty and invalid bodies refused (frpc writes anything).
        let put = |body: String| async move {
            http_request(admin, "PUT", "/api/config", &[("Authorization", AUTH)], body.as_bytes()).await.expect("PUT")
        };
        // The file, with its secrets masked (frpc shows them).
        let r = get(admin, "/api/config").await;
        let masked = text.replace(TOKEN, "<redacted>").replace("password = \"admin\"", "password = \"<redacted>\"");
        assert_eq!((r.status, r.header("content-type"), r.body.as_str()), (200, Some("text/plain; charset=utf-8"), masked.as_str()));
        // Sent back as it is, the masked text keeps the file's secrets.
        let r = put(masked.clone()).await;
        assert_eq!(r.status, 200, "the masked text sent back: {}", r.body);
        assert_eq!(std::fs::read_to_string(&file).expect("file"), text, "the secrets stay");
        let r = put(String::new()).await;
        assert_eq!((r.status, r.json()), (400, captured("frpc-api-config-put-empty.json")));
        let r = put("serverAddr 127.0.0.1\n".into()).await;
        assert_eq!(r.status, 400);
        assert!(r.json()["Msg"].as_str().is_some_and(|m| m.starts_with("invalid argument: ")), "{}", r.body);
        assert_eq!(std::fs::read_to_string(&file).expect("file"), text, "an invalid body must not be written");

        // A new file (voice gone, extra added), then `reload`.
        let new_text = format!(
            "{head}\n{}{}{}",
            tcp_proxy("web", echo, web_port, ""),
            tcp_proxy("clash", echo, dash.api, ""),
            tcp_proxy("extra", echo, extra_port, "")
        );
        let r = put(new_text.clone()).await;
        assert_eq!((r.status, r.body.as_str()), (200, ""));
        assert_eq!(std::fs::read_to_string(&file).expect("file"), new_text);
        let (code, out) = client_cli("reload", &file).await;
        assert_eq!((code, out.as_str()), (0, "reload success\n"));
        let st = wait_json(admin, "/api/status", "extra up, voice gone", |v| {
            v["udp"].is_null() && v["tcp"].as_array().is_some_and(|a| a.iter().any(|p| p["name"] == "extra" && p["status"] == "running"))
        })
        .await;
        assert_eq!(st["tcp"].as_array().map(Vec::len), Some(3));
        wait_echo(extra_port, Duration::from_secs(10)).await;
        wait_echo(web_port, Duration::from_secs(10)).await;

        // A broken file on disk: reload refuses it, frpc's way.
        std::fs::write(&file, "serverAddr 127.0.0.1\n").expect("write");
        let r = get(admin, "/api/reload").await;
        assert_eq!(r.status, 400);
        assert!(r.json()["Msg"].as_str().is_some_and(|m| m.starts_with("invalid argument: ")), "{}", r.body);
        std::fs::write(&file, &new_text).expect("write");

        // `stop`, then `status` fails like frpc's (the request and the dial error, exit 1).
        let (code, out) = client_cli("stop", &file).await;
        assert_eq!(code, 0, "{out}");
        let mut proc = proc;
        let mut exited = false;
        for _ in 0..100 {
            if !proc.alive() {
                exited = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(exited, "the client did not exit after stop; log:\n{}", proc.log());
        let (code, out) = client_cli("status", &file).await;
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("\"http://127.0.0.1:{admin}/api/status\"")), "{out}");
        wait_json(dash.api, "/api/proxy/tcp/web", "web offline after stop", |v| v["status"] == "offline").await;
        dash.stop.cancel();
    })
    .await;
}
