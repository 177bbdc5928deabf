//! The client's admin API beyond status/config/reload, against a real Portway server and client on 127.0.0.1:
//! `GET /api/proxy/{name}/config`, the store (`/api/store/proxies*` with `store.path`): validated before the file
//! is written, applied live (a stored proxy starts, the others keep their open connections), persisted and
//! loaded with the config; wrong passwords throttled.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use portway_client::admin::{serve, Admin};
use portway_client::{ClientConfig, ClientHandle, SecretSource};
use serde_json::{json, Value};
use support::{free_port, start_server_with, tcp_echo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(30);

/// A real frpc v0.70's answer from `tests/fixtures/frp-captures/dashboard-api/`.
fn captured(name: &str) -> Value {
    let p = format!("{}/../../tests/fixtures/frp-captures/dashboard-api/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Every key path of a JSON value (array items under `[]`), to compare shapes with frpc's.
fn key_paths(v: &Value) -> std::collections::BTreeSet<String> {
    fn walk(v: &Value, at: &str, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = format!("{at}.{k}");
                    out.insert(p.clone());
                    walk(v, &p, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, &format!("{at}[]"), out)),
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(v, "", &mut out);
    out
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("portway-admin-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Dir(d)
}

struct Running {
    handle: Arc<ClientHandle>,
    admin: u16,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
        self.handle.cancel_token().cancel();
    }
}

async fn start_client(file: &std::path::Path) -> Running {
    let cfg = ClientConfig::load(file).unwrap().config;
    let handle = Arc::new(portway_client::start(cfg, SecretSource::FromConfig));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = l.local_addr().unwrap().port();
    let stop = CancellationToken::new();
    let api = Admin::new(handle.clone(), file.to_path_buf(), "admin", "pw");
    tokio::spawn(serve(l, Arc::new(api), stop.clone()));
    Running { handle, admin, stop }
}

async fn call(admin: u16, method: &str, path: &str, body: Option<Value>, password: &str) -> (u16, String) {
    let c = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{admin}{path}");
    let mut req = c.request(method.parse().unwrap(), url).basic_auth("admin", Some(password));
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn api(admin: u16, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, text) = call(admin, method, path, body, "pw").await;
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn wait_status(admin: u16, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let (_, v) = api(admin, "GET", "/api/status", None).await;
        if pred(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}: {}", api(admin, "GET", "/api/status", None).await.1);
}

fn row<'a>(status: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    status[kind].as_array()?.iter().find(|r| r["name"] == name)
}

async fn echo_once(s: &mut TcpStream, msg: &[u8]) -> bool {
    if s.write_all(msg).await.is_err() {
        return false;
    }
    let mut buf = vec![0; msg.len()];
    matches!(tokio::time::timeout(T, s.read_exact(&mut buf)).await, Ok(Ok(_))) && buf == msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_proxies_are_validated_persisted_and_applied_live() {
    let (srv, _) = start_server_with("bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\n").await;
    let echo = tcp_echo().await;
    let dir = temp_dir("crud");
    let store_path = dir.0.join("frpc-store.json");
    let (web_port, stored_port, moved_port) = (free_port(), free_port(), free_port());
    let file = dir.0.join("frpc.toml");
    std::fs::write(
        &file,
        format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"t\"\ntransport.tls.enable = false\n\
             store.path = {:?}\n\n[[proxies]]\nname = \"web\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\n\
             localPort = {echo}\nremotePort = {web_port}\n",
            srv.port,
            store_path.display().to_string()
        ),
    )
    .unwrap();
    let c = start_client(&file).await;
    let admin = c.admin;
    wait_status(admin, "web running", |s| row(s, "tcp", "web").is_some_and(|r| r["status"] == "running")).await;

    // One proxy's definition, frp's shape.
    let (st, v) = api(admin, "GET", "/api/proxy/web/config", None).await;
    assert_eq!(st, 200);
    assert_eq!((v["name"].as_str(), v["type"].as_str()), (Some("web"), Some("tcp")));
    assert_eq!(
        (v["tcp"]["localPort"].as_u64(), v["tcp"]["remotePort"].as_u64()),
        (Some(echo as u64), Some(web_port as u64))
    );
    let (st, v) = api(admin, "GET", "/api/proxy/nosuch/config", None).await;
    assert_eq!((st, v), (404, json!({"Code": 404, "Msg": "proxy \"nosuch\" not found"})));
    let (st, v) = api(admin, "GET", "/api/visitor/nosuch/config", None).await;
    assert_eq!((st, v), (404, json!({"Code": 404, "Msg": "visitor \"nosuch\" not found"})));

    assert_eq!(api(admin, "GET", "/api/store/proxies", None).await, (200, json!({"proxies": []})));
    assert_eq!(api(admin, "GET", "/api/store/visitors", None).await, (200, json!({"visitors": []})));

    // A connection through `web`, open across every store change below.
    let mut held = TcpStream::connect(("127.0.0.1", web_port)).await.unwrap();
    assert!(echo_once(&mut held, b"before").await);

    // Refused before anything is written: a bad key, a bad port, a taken name.
    let def = |port: u16| json!({"name": "stored", "type": "tcp", "tcp": {"localIP": "127.0.0.1", "localPort": echo, "remotePort": port}});
    let (st, v) = api(
        admin,
        "POST",
        "/api/store/proxies",
        Some(json!({"name": "stored", "type": "tcp", "tcp": {"localPortt": 1}})),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(v["Msg"].as_str().unwrap().contains("localPortt"), "{v}");
    let (st, v) = api(
        admin,
        "POST",
        "/api/store/proxies",
        Some(json!({"name": "web", "type": "tcp", "tcp": {"localPort": echo}})),
    )
    .await;
    assert_eq!(st, 409, "{v}");
    let (st, _) = api(admin, "POST", "/api/store/proxies", Some(json!("not an object"))).await;
    assert_eq!(st, 400);
    assert!(!store_path.exists(), "nothing may be written for a refused body");

    // Create: echoed, persisted, running at once, marked as from the store.
    let (st, v) = api(admin, "POST", "/api/store/proxies", Some(def(stored_port))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!((v["name"].as_str(), v["tcp"]["remotePort"].as_u64()), (Some("stored"), Some(stored_port as u64)));
    assert_eq!(key_paths(&v), key_paths(&captured("frpc-api-store-proxies-post.json")), "{v}");
    // Apart from the ports, the very answer frpc gave.
    let mut same = v.clone();
    same["tcp"]["localPort"] = json!(18081);
    same["tcp"]["remotePort"] = json!(16005);
    assert_eq!(same, captured("frpc-api-store-proxies-post.json"));
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&store_path).unwrap()).unwrap();
    assert_eq!(on_disk["proxies"][0]["name"], "stored");
    let s = wait_status(admin, "stored running", |s| row(s, "tcp", "stored").is_some_and(|r| r["status"] == "running"))
        .await;
    assert_eq!(row(&s, "tcp", "stored").unwrap()["source"], "store");
    let frpc_status = captured("frpc-api-status-after-store-post.json");
    assert_eq!(key_paths(row(&s, "tcp", "stored").unwrap()), key_paths(row(&frpc_status, "tcp", "stored").unwrap()));
    assert!(row(&s, "tcp", "web").unwrap().get("source").is_none());
    let mut through = TcpStream::connect(("127.0.0.1", stored_port)).await.unwrap();
    assert!(echo_once(&mut through, b"stored").await);
    assert_eq!(api(admin, "GET", "/api/store/proxies/stored", None).await.1["tcp"]["remotePort"], stored_port);
    let list = api(admin, "GET", "/api/store/proxies", None).await.1;
    assert_eq!(list["proxies"][0]["name"], "stored");
    assert_eq!(key_paths(&list), key_paths(&captured("frpc-api-store-proxies.json")), "{list}");
    // The config loaded from the file now carries the stored proxy (a restart keeps it).
    let reloaded = ClientConfig::load(&file).unwrap().config;
    assert!(reloaded.proxies.iter().any(|p| p.name == "stored"));
    // A reload from the file keeps it too (the store is part of what the file loads).
    assert_eq!(call(admin, "GET", "/api/reload", None, "pw").await.0, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = api(admin, "GET", "/api/status", None).await.1;
    assert_eq!(row(&s, "tcp", "stored").map(|r| r["status"].clone()), Some(json!("running")), "{s}");
    assert!(echo_once(&mut through, b"still").await, "a reload restarted the stored proxy");

    // Update: a rename is refused; a new port moves it.
    let (st, _) = api(
        admin,
        "PUT",
        "/api/store/proxies/stored",
        Some(json!({"name": "other", "type": "tcp", "tcp": {"localPort": echo}})),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = api(admin, "PUT", "/api/store/proxies/nosuch", Some(def(moved_port))).await;
    assert_eq!(st, 404);
    let (st, v) = api(admin, "PUT", "/api/store/proxies/stored", Some(def(moved_port))).await;
    assert_eq!(st, 200, "{v}");
    wait_status(admin, "stored moved", |s| {
        row(s, "tcp", "stored")
            .is_some_and(|r| r["status"] == "running" && r["remote_addr"] == format!("127.0.0.1:{moved_port}"))
    })
    .await;
    let mut moved = TcpStream::connect(("127.0.0.1", moved_port)).await.unwrap();
    assert!(echo_once(&mut moved, b"moved").await);

    // Delete: empty 200, gone from the file and the status.
    let (st, body) = call(admin, "DELETE", "/api/store/proxies/stored", None, "pw").await;
    assert_eq!((st, body.as_str()), (200, ""));
    wait_status(admin, "stored gone", |s| row(s, "tcp", "stored").is_none()).await;
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&store_path).unwrap()).unwrap();
    assert_eq!(on_disk["proxies"], json!([]));
    assert_eq!(api(admin, "DELETE", "/api/store/proxies/stored", None).await.0, 404);

    // `web` was never touched: the connection opened first still echoes.
    assert!(echo_once(&mut held, b"after").await, "a store change dropped another proxy's connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_without_store_path_is_404_and_wrong_passwords_are_throttled() {
    let dir = temp_dir("nostore");
    let file = dir.0.join("frpc.toml");
    // No server needed: the client keeps retrying in the background.
    std::fs::write(&file, format!("serverAddr = \"127.0.0.1\"\nserverPort = {}\nloginFailExit = false\n", free_port()))
        .unwrap();
    let c = start_client(&file).await;
    let (st, v) = api(c.admin, "GET", "/api/store/proxies", None).await;
    assert_eq!(st, 404, "{v}");
    assert!(v["Msg"].as_str().unwrap().contains("store.path"), "{v}");

    for _ in 0..10 {
        assert_eq!(call(c.admin, "GET", "/api/status", None, "wrong").await.0, 401);
    }
    // The eleventh try within the minute is refused even with the right password.
    let (st, body) = call(c.admin, "GET", "/api/status", None, "pw").await;
    assert_eq!(st, 429, "{body}");
}
