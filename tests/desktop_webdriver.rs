//! The built desktop app, end to end through its window: Xvfb, tauri-driver and WebKitWebDriver (Debian's
//! `webkit2gtk-driver`) drive `target/debug/portway` against a real server and OIDC provider started here.
//! Two server profiles against two real servers at once (one OIDC against the test provider, one token): fill each
//! form, save the secrets (into the real gnome-keyring, one entry per profile), Connect all, see both connected and
//! their proxies running, pass traffic through each, edit a proxy of one while a connection through the other stays
//! open, save a screenshot (`target/artifacts/desktop-connected.png`) and the same screen in English and 简体中文,
//! light and dark (`desktop-{en,zh-CN}-{light,dark}.png`), disconnect one, then Disconnect all.
//! The tray follows: the test runs a tray host on the session D-Bus (`support/tray_host.rs`, a StatusNotifierWatcher
//! as a desktop panel runs) and reads the app's tray icon and menu from it at each step.
//!
//! Needs a D-Bus session with an unlocked gnome-keyring (scripts/test.sh runs the suite under one); the test
//! starts its own Xvfb. WebDriver is spoken over plain HTTP/JSON.

mod support;
#[path = "support/tray_host.rs"]
mod tray_host;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use portway::keychain::Keychain;
use serde_json::{json, Value};
use support::oidc::{OidcOptions, OidcProvider, CLIENT_ID, CLIENT_SECRET};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tray_host::{TrayHost, TrayState};

const WHOLE_TEST: Duration = Duration::from_secs(240);
/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const PROXY: &str = "echo-e2e";
const PROXY2: &str = "echo-token";
const TOKEN2: &str = "second-server-token-e2e";
const SECRET_PROXY: &str = "secret-echo";
const SECRET_KEY: &str = "stcp-key-e2e";
const VISITOR: &str = "reach-secret";

/// `name` on PATH (or in cargo's bin directory), or a failure telling how to install it.
fn require_tool(name: &str, install: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(h) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(h).join("bin"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(h).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("`{name}` not found: the desktop WebDriver test needs it. Install it with: {install} (scripts/test.sh does)")
    })
}

/// Child processes started in their own process group; the whole group is ended on drop (also on panic).
struct Group {
    what: &'static str,
    child: Child,
}

impl Group {
    fn spawn(what: &'static str, cmd: &mut Command) -> Group {
        cmd.process_group(0).kill_on_drop(true);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
        Group { what, child }
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.child.id() {
            let _ =
                std::process::Command::new("kill").args([sig, "--", &format!("-{pid}")]).stderr(Stdio::null()).status();
        }
    }

    /// SIGTERM to the group, then SIGKILL after 5 s.
    async fn stop(mut self) {
        self.signal("-TERM");
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_err() {
            eprintln!("{} ignored SIGTERM; killing it", self.what);
            self.signal("-KILL");
            let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal("-KILL");
        }
    }
}

/// Starts Xvfb on a display number it picks itself (`-displayfd`); returns the group and `:N`.
async fn start_xvfb() -> (Group, String) {
    let xvfb = require_tool("Xvfb", "sudo apt-get install xvfb");
    let mut cmd = Command::new(xvfb);
    // -noreset: without it the server resets whenever its last client disconnects and drops a client that
    // connects meanwhile (scripts/footprint.sh lost about 1 launch in 50 that way).
    cmd.args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut g = Group::spawn("Xvfb", &mut cmd);
    let stdout = g.child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    let mut r = tokio::io::BufReader::new(stdout);
    let read = tokio::time::timeout(Duration::from_secs(20), r.read_line(&mut line)).await;
    let n: u32 = match read {
        Ok(Ok(_)) => line.trim().parse().unwrap_or_else(|_| panic!("Xvfb printed {line:?}, not a display number")),
        other => panic!("Xvfb did not report its display within 20 s: {other:?}"),
    };
    (g, format!(":{n}"))
}

/// A WebDriver session spoken over plain HTTP/JSON.
struct WebDriver {
    port: u16,
    session: String,
}

/// One HTTP/1.1 request on a fresh connection, dropped after the response. No `Connection: close`: tauri-driver
/// would pass it on to WebKitWebDriver, which then closes the pooled connection tauri-driver reuses next (a
/// reset); and a request without a body has no `Content-Length` either.
async fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    let body = body.map(Value::to_string).unwrap_or_default();
    if method == "POST" {
        req.push_str(&format!("Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(r) = parse_response(&raw)? {
            return Ok(r);
        }
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other(format!(
                "incomplete HTTP response: {:?}",
                String::from_utf8_lossy(&raw)
            )));
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// `Some((status, body))` once `raw` holds a whole response (`Content-Length` or chunked).
fn parse_response(raw: &[u8]) -> std::io::Result<Option<(u16, Vec<u8>)>> {
    let bad = || std::io::Error::other(format!("bad HTTP response: {:?}", String::from_utf8_lossy(raw)));
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(bad)?;
    let mut rest = &raw[end + 4..];
    let header = |name: &str| head.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()));
    if let Some(len) = header("content-length:") {
        let len: usize = len.parse().map_err(|_| bad())?;
        return Ok((rest.len() >= len).then(|| (status, rest[..len].to_vec())));
    }
    if header("transfer-encoding:").as_deref() != Some("chunked") {
        return Err(bad());
    }
    let mut out = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
        let size = std::str::from_utf8(&rest[..eol]).ok().and_then(|l| usize::from_str_radix(l.trim(), 16).ok());
        match size.ok_or_else(bad)? {
            0 => return Ok(Some((status, out))),
            n => match rest.get(eol + 2..eol + 2 + n) {
                Some(chunk) if rest.len() >= eol + 4 + n => {
                    out.extend_from_slice(chunk);
                    rest = &rest[eol + 4 + n..];
                }
                _ => return Ok(None),
            },
        }
    }
}

async fn wd_call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let (status, body) = tokio::time::timeout(Duration::from_secs(60), http(port, method, path, body))
        .await
        .map_err(|_| format!("{method} {path}: no answer within 60 s"))?
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("{method} {path}: HTTP {status} {e}: {}", String::from_utf8_lossy(&body)))?;
    if status != 200 {
        return Err(format!("{method} {path}: HTTP {status}: {}", v["value"]));
    }
    Ok(v["value"].clone())
}

impl WebDriver {
    async fn new_session(port: u16, app: &Path) -> WebDriver {
        let caps = json!({ "capabilities": { "alwaysMatch": { "tauri:options": { "application": app } } } });
        let v = wd_call(port, "POST", "/session", Some(&caps)).await.unwrap_or_else(|e| panic!("new session: {e}"));
        let session = v["sessionId"].as_str().unwrap_or_else(|| panic!("no sessionId in {v}")).to_owned();
        WebDriver { port, session }
    }

    async fn call(&self, method: &str, what: &str, body: Option<Value>) -> Result<Value, String> {
        wd_call(self.port, method, &format!("/session/{}{what}", self.session), body.as_ref()).await
    }

    /// The element with `data-testid` = `id`, waiting up to 20 s for it to appear.
    async fn find(&self, id: &str) -> String {
        let q = json!({ "using": "css selector", "value": format!("[data-testid=\"{id}\"]") });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.call("POST", "/element", Some(q.clone())).await {
                Ok(v) => return v[ELEMENT].as_str().unwrap_or_else(|| panic!("element reference in {v}")).to_owned(),
                Err(e) if Instant::now() > deadline => panic!("no element [data-testid={id}] within 20 s: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Runs `act` on the element `id`, finding it again when the page re-rendered it in between (WebDriver's
    /// "stale element reference"; seen once in CI while the form was being filled right after start). Bounded.
    async fn on_element(&self, id: &str, what: &str, act: impl AsyncFn(&str) -> Result<(), String>) {
        for attempt in 1..=10 {
            let el = self.find(id).await;
            match act(&el).await {
                Ok(()) => return,
                Err(e) if e.contains("stale element reference") && attempt < 10 => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("{what} {id}: {e}"),
            }
        }
    }

    async fn click(&self, id: &str) {
        self.on_element(id, "click", async |el: &str| {
            self.call("POST", &format!("/element/{el}/click"), Some(json!({}))).await.map(drop)
        })
        .await;
    }

    /// Replaces the field's text (clear, then type: the page sees `input` events as from a keyboard).
    async fn fill(&self, id: &str, text: &str) {
        self.on_element(id, "fill", async |el: &str| {
            self.call("POST", &format!("/element/{el}/clear"), Some(json!({}))).await?;
            self.call("POST", &format!("/element/{el}/value"), Some(json!({ "text": text }))).await?;
            let prop = self.call("GET", &format!("/element/{el}/property/value"), None).await?;
            assert_eq!(prop.as_str(), Some(text), "the field {id} holds what was typed");
            Ok(())
        })
        .await;
    }

    /// The element's rendered text (`innerText`). Not WebDriver's element text: WebKitWebDriver's displayedness
    /// check calls the header's status line hidden (and so answers "") although it is on screen.
    /// Found again when the page re-rendered it in between (the profile tabs re-render on every status event).
    async fn text(&self, id: &str) -> String {
        let out = std::cell::RefCell::new(String::new());
        self.on_element(id, "text of", async |el: &str| {
            let v = self.call("GET", &format!("/element/{el}/property/innerText"), None).await?;
            *out.borrow_mut() = v.as_str().unwrap_or_default().to_owned();
            Ok(())
        })
        .await;
        out.into_inner()
    }

    /// Polls the element's text until `pred` holds (or panics after `within`, showing the last text).
    async fn wait_text(&self, id: &str, within: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let t = self.text(id).await;
            if pred(&t) {
                return t;
            }
            if Instant::now() > deadline {
                let toast = self.call(
                    "POST",
                    "/element",
                    Some(json!({ "using": "css selector", "value": "[data-testid=\"toast\"]" })),
                );
                let toast = match toast.await {
                    Ok(v) => {
                        self.call(
                            "GET",
                            &format!("/element/{}/property/innerText", v[ELEMENT].as_str().unwrap_or("")),
                            None,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                };
                panic!("waited {within:?} for {what}: [data-testid={id}] says {t:?} (toast: {toast:?})");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Runs `script` in the page with `args`; returns its value.
    async fn script(&self, script: &str, args: Value) -> Value {
        self.call("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
            .await
            .unwrap_or_else(|e| panic!("script {script:?}: {e}"))
    }

    /// Picks `value` in the select `id` (as a person choosing it: the page sees `change`).
    async fn select(&self, id: &str, value: &str) {
        let s = "const el = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); el.value = arguments[1]; \
                 el.dispatchEvent(new Event('change', {bubbles: true})); return el.value;";
        assert_eq!(self.script(s, json!([id, value])).await.as_str(), Some(value), "select {id}");
    }

    async fn screenshot(&self, to: &Path) {
        let v = self.call("GET", "/screenshot", None).await.unwrap_or_else(|e| panic!("screenshot: {e}"));
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot is a base64 string"))
            .expect("screenshot base64");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        std::fs::create_dir_all(to.parent().expect("artifact dir")).expect("create the artifact directory");
        std::fs::write(to, png).expect("write the screenshot");
    }

    async fn delete(self) {
        if let Err(e) = self.call("DELETE", "", None).await {
            eprintln!("delete session: {e}");
        }
    }
}

/// The tray icons the app ships, decoded (name, RGBA), to tell which one the tray shows.
fn tray_icons() -> Vec<(&'static str, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("icons/tray");
    ["disconnected", "connecting", "connected", "error"]
        .into_iter()
        .map(|n| {
            let png = std::fs::read(dir.join(format!("{n}.png"))).expect("the tray icon file");
            (n, tray_host::rgba8(&png).unwrap_or_else(|e| panic!("decode icons/tray/{n}.png: {e}")))
        })
        .collect()
}

/// Whether the tray's menu has the profile `name`'s submenu saying `state` ("connected", "disconnected").
fn tray_says(t: &TrayState, name: &str, state: &str) -> bool {
    t.menu.find(&format!("{name} (")).is_some_and(|e| e.label == format!("{name} ({state})"))
}

/// Whether the menu item `label` is there and enabled.
fn tray_item_on(t: &TrayState, label: &str) -> bool {
    t.menu.find(label).is_some_and(|e| e.enabled)
}

/// Waits until tauri-driver answers HTTP on `port` and its WebKitWebDriver listens on `native_port`.
async fn wait_driver(port: u16, native_port: u16, within: Duration, driver: &mut Group) {
    let deadline = Instant::now() + within;
    loop {
        let native = tokio::net::TcpStream::connect(("127.0.0.1", native_port)).await.is_ok();
        if native && http(port, "GET", "/status", None).await.is_ok_and(|(status, _)| status == 200) {
            return;
        }
        if let Ok(Some(status)) = driver.child.try_wait() {
            panic!("tauri-driver exited ({status}) before answering on port {port}");
        }
        assert!(
            Instant::now() < deadline,
            "tauri-driver (port {port}, native port {native_port}) not ready within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// On a thread with a large stack: the scenario is one large future whose poll frames (unoptimised test build)
/// overflow the test thread's default 2 MiB.
#[test]
fn the_window_connects_through_a_real_server_and_provider() {
    let run = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(scenario())
    };
    let t = std::thread::Builder::new().stack_size(64 << 20).spawn(run).expect("scenario thread");
    if let Err(panic) = t.join() {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "this test needs a D-Bus session with an unlocked gnome-keyring: run it through scripts/test.sh, or \
         dbus-run-session -- sh -c 'echo -n pw | gnome-keyring-daemon --unlock --components=secrets; cargo test --test desktop_webdriver'"
    );
    let tauri_driver = require_tool("tauri-driver", "cargo install tauri-driver --locked");
    require_tool("WebKitWebDriver", "sudo apt-get install webkit2gtk-driver");
    let app = PathBuf::from(env!("CARGO_BIN_EXE_portway"));
    let artifact = app
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("artifacts/desktop-connected.png"))
        .expect("the target directory");
    let started = Instant::now();
    tokio::time::timeout(WHOLE_TEST, async {
        init_logs();
        let provider = OidcProvider::start(OidcOptions::default()).await;
        let (echo, _echo) = echo_server().await;
        let server = start_server(
            &format!(
                "bindAddr = \"127.0.0.1\"\nauth.method = \"oidc\"\nauth.oidc.issuer = \"{}\"\n",
                provider.issuer()
            ),
            0,
        )
        .await;
        let server2 = start_server(&format!("bindAddr = \"127.0.0.1\"\nauth.token = \"{TOKEN2}\"\n"), 0).await;
        let (remote, remote2, remote_moved) = (free_port(), free_port(), free_port());
        let config_dir =
            std::env::temp_dir().join(format!("portway-webdriver-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&config_dir).expect("config dir");
        let keychain = Keychain::new("profile:default");
        keychain.delete().expect("start without a stored secret");

        // The tray host comes first: the app's tray registers with it when the app starts.
        let tray = TrayHost::start().await;
        let icons = tray_icons();
        let icon = |t: &TrayState| tray_host::closest(&t.icon_rgba, &icons).to_owned();

        let (xvfb, display) = start_xvfb().await;
        let (port, native_port) = (free_port(), free_port());
        let mut cmd = Command::new(&tauri_driver);
        cmd.args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .env("DISPLAY", &display)
            .env("PORTWAY_CONFIG_DIR", &config_dir)
            .env("GDK_BACKEND", "x11")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(if std::env::var_os("PORTWAY_WEBDRIVER_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
            .stderr(if std::env::var_os("PORTWAY_WEBDRIVER_LOG").is_some() { Stdio::inherit() } else { Stdio::null() });
        let mut driver = Group::spawn("tauri-driver", &mut cmd);
        wait_driver(port, native_port, Duration::from_secs(20), &mut driver).await;
        let wd = WebDriver::new_session(port, &app).await;
        eprintln!("session up after {:?}", started.elapsed());

        // The first profile (a fresh install's one): OIDC against the provider.
        wd.wait_text("conn-state", Duration::from_secs(20), "the initial state", |t| t == "Disconnected").await;
        // The menu and the icon change in two steps: each wait is for both.
        let t = tray
            .wait(Duration::from_secs(20), "the fresh profile disconnected, the grey icon", |t| {
                tray_says(t, "My server", "disconnected") && icon(t) == "disconnected"
            })
            .await;
        assert!(tray_item_on(&t, "Connect all") && !tray_item_on(&t, "Disconnect all"), "{}", t.menu.outline());
        wd.fill("profile-name", "OIDC server").await;
        wd.click("server-addr").await; // the name field commits on leaving it
        wd.wait_text("profile-tab-OIDC-server", Duration::from_secs(10), "the rename", |t| t.contains("OIDC server"))
            .await;
        wd.fill("server-addr", "127.0.0.1").await;
        wd.fill("server-port", &server.addr.port().to_string()).await;
        wd.fill("token-endpoint", provider.token_endpoint()).await;
        wd.fill("client-id", CLIENT_ID).await;
        wd.fill("client-secret", CLIENT_SECRET).await;
        wd.click("add-proxy").await;
        wd.fill("proxy-name", PROXY).await;
        wd.fill("proxy-local-ip", "127.0.0.1").await;
        wd.fill("proxy-local-port", &echo.to_string()).await;
        wd.fill("proxy-remote-port", &remote.to_string()).await;
        wd.click("save-button").await;
        wd.wait_text("form-summary", Duration::from_secs(20), "the profile saved", |t| t == "All changes saved").await;
        assert_eq!(
            keychain.get().expect("read the keychain").as_deref(),
            Some(CLIENT_SECRET),
            "the secret is in the keychain"
        );

        // The second profile: a token against the second server.
        wd.click("add-profile").await;
        wd.wait_text("profile-tab-New-server", Duration::from_secs(10), "the new profile", |t| {
            t.contains("New server")
        })
        .await;
        wd.fill("profile-name", "Token server").await;
        wd.click("server-addr").await;
        wd.wait_text("profile-tab-Token-server", Duration::from_secs(10), "the rename", |t| t.contains("Token")).await;
        let id2 = wd
            .script("return document.querySelector('[data-testid=\"profile-tab-Token-server\"]').dataset.id", json!([]))
            .await
            .as_str()
            .expect("the profile's id")
            .to_owned();
        let keychain2 = Keychain::new(&format!("profile:{id2}"));
        wd.fill("server-addr", "127.0.0.1").await;
        wd.fill("server-port", &server2.addr.port().to_string()).await;
        wd.select("auth-method", "token").await;
        wd.fill("client-secret", TOKEN2).await;
        wd.click("add-proxy").await;
        wd.fill("proxy-name", PROXY2).await;
        wd.fill("proxy-local-ip", "127.0.0.1").await;
        wd.fill("proxy-local-port", &echo.to_string()).await;
        wd.fill("proxy-remote-port", &remote2.to_string()).await;
        wd.click("save-button").await;
        wd.wait_text("form-summary", Duration::from_secs(20), "the second profile saved", |t| t == "All changes saved")
            .await;
        assert_eq!(keychain2.get().expect("read the keychain").as_deref(), Some(TOKEN2), "its own keychain entry");
        assert_eq!(keychain.get().expect("read").as_deref(), Some(CLIENT_SECRET), "the first one's stays");
        let on_disk = std::fs::read_to_string(config_dir.join("profiles.json")).expect("the profiles file");
        assert!(on_disk.contains(PROXY) && on_disk.contains(PROXY2), "both profiles in the file: {on_disk}");
        assert!(!on_disk.contains(CLIENT_SECRET) && !on_disk.contains(TOKEN2), "no secret in the file: {on_disk}");

        // Connect both at once.
        wd.click("connect-all").await;
        for tab in ["profile-state-OIDC-server", "profile-state-Token-server"] {
            wd.wait_text(tab, Duration::from_secs(30), "Connected", |t| t == "Connected").await;
        }
        wd.wait_text("conn-state", Duration::from_secs(30), "Connected", |t| t.starts_with("Connected")).await;
        let badge2 = format!("proxy-status-{PROXY2}");
        wd.wait_text(&badge2, Duration::from_secs(30), "the proxy running", |t| t.starts_with("Running")).await;
        let t = tray
            .wait(Duration::from_secs(20), "both profiles connected, the green icon", |t| {
                tray_says(t, "OIDC server", "connected")
                    && tray_says(t, "Token server", "connected")
                    && icon(t) == "connected"
            })
            .await;
        assert!(!tray_item_on(&t, "Connect all") && tray_item_on(&t, "Disconnect all"), "{}", t.menu.outline());
        let sub = t.menu.find("Token server (").expect("the token profile's submenu");
        assert!(
            sub.children.iter().any(|c| c.label == "Disconnect" && c.enabled),
            "its submenu offers Disconnect:\n{}",
            t.menu.outline()
        );
        let data = pattern(256 * 1024, 7);
        assert_eq!(echo_through(remote, &data).await.expect("traffic through the OIDC profile"), sha256(&data));
        assert_eq!(echo_through(remote2, &data).await.expect("traffic through the token profile"), sha256(&data));
        wd.wait_text(&format!("proxy-traffic-{PROXY2}"), Duration::from_secs(10), "traffic counted", |t| {
            t.contains("1 conn")
        })
        .await;

        // A connection through the token profile stays open while a proxy of the OIDC profile is edited live.
        let mut open = TcpStream::connect(("127.0.0.1", remote2)).await.expect("connect through the token profile");
        roundtrip(&mut open, b"before the edit").await;
        wd.click("profile-tab-OIDC-server").await;
        let badge = format!("proxy-status-{PROXY}");
        wd.wait_text(&badge, Duration::from_secs(30), "the proxy running", |t| t.starts_with("Running")).await;
        wd.fill("proxy-remote-port", &remote_moved.to_string()).await;
        wd.click("save-button").await;
        wd.wait_text("form-summary", Duration::from_secs(20), "the edit saved", |t| t == "All changes saved").await;
        wd.wait_text(&badge, Duration::from_secs(30), "the proxy on its new port", |t| {
            t.starts_with("Running") && t.contains(&remote_moved.to_string())
        })
        .await;
        assert_eq!(echo_through(remote_moved, &data).await.expect("the moved proxy"), sha256(&data));
        roundtrip(&mut open, b"after the edit").await;
        let note_hidden =
            wd.script("return document.querySelector('[data-testid=\"reconnect-needed\"]').hidden", json!([])).await;
        assert_eq!(note_hidden, json!(true), "a proxy edit needs no reconnect (the note stays hidden)");
        // "Connect to a private service": an stcp proxy in a third profile (on the second server), reached by a
        // visitor added live to the token profile, whose open connection stays up.
        wd.click("add-profile").await;
        wd.wait_text("profile-tab-New-server", Duration::from_secs(10), "the third profile", |t| {
            t.contains("New server")
        })
        .await;
        let id3 = wd
            .script("return document.querySelector('[data-testid=\"profile-tab-New-server\"]').dataset.id", json!([]))
            .await
            .as_str()
            .expect("the third profile's id")
            .to_owned();
        wd.fill("server-addr", "127.0.0.1").await;
        wd.fill("server-port", &server2.addr.port().to_string()).await;
        wd.select("auth-method", "token").await;
        wd.fill("client-secret", TOKEN2).await;
        wd.click("add-proxy").await;
        wd.fill("proxy-name", SECRET_PROXY).await;
        wd.select("proxy-type", "stcp").await;
        wd.fill("proxy-local-ip", "127.0.0.1").await;
        wd.fill("proxy-local-port", &echo.to_string()).await;
        wd.fill("proxy-secret-key", SECRET_KEY).await;
        wd.fill("proxy-allow-users", "*").await;
        wd.click("save-button").await;
        wd.wait_text("form-summary", Duration::from_secs(20), "the third profile saved", |t| t == "All changes saved")
            .await;
        wd.click("connect-button").await;
        let secret_badge = format!("proxy-status-{SECRET_PROXY}");
        wd.wait_text(&secret_badge, Duration::from_secs(30), "the stcp proxy running", |t| t.starts_with("Running"))
            .await;
        wd.click("profile-tab-Token-server").await;
        wd.wait_text(&badge2, Duration::from_secs(30), "the token profile shown", |t| t.starts_with("Running")).await;
        let vport = free_port();
        wd.click("add-visitor").await;
        wd.fill("visitor-name", VISITOR).await;
        wd.fill("visitor-server-name", SECRET_PROXY).await;
        wd.fill("visitor-secret-key", SECRET_KEY).await;
        wd.fill("visitor-bind-port", &vport.to_string()).await;
        wd.click("save-button").await;
        wd.wait_text("form-summary", Duration::from_secs(20), "the visitor saved", |t| t == "All changes saved").await;
        let visitor_badge = format!("visitor-status-{VISITOR}");
        wd.wait_text(&visitor_badge, Duration::from_secs(10), "a new visitor is off", |t| t == "Off").await;
        wd.click("visitor-toggle").await;
        wd.wait_text(&visitor_badge, Duration::from_secs(30), "the visitor on", |t| t == "Via server").await;
        assert_eq!(wd.text(&format!("visitor-addr-{VISITOR}")).await, format!("127.0.0.1:{vport}"));
        assert_eq!(echo_through(vport, &data).await.expect("through the visitor to the stcp proxy"), sha256(&data));
        roundtrip(&mut open, b"after the visitor was added and switched on").await;
        let visitor_key = Keychain::new(&format!("profile:{id2}:visitor:{VISITOR}:secretKey"));
        let proxy_key = Keychain::new(&format!("profile:{id3}:proxy:{SECRET_PROXY}:secretKey"));
        assert_eq!(visitor_key.get().expect("read").as_deref(), Some(SECRET_KEY), "the visitor's key in the keychain");
        assert_eq!(proxy_key.get().expect("read").as_deref(), Some(SECRET_KEY), "the proxy's key in the keychain");
        let on_disk = std::fs::read_to_string(config_dir.join("profiles.json")).expect("the profiles file");
        assert!(on_disk.contains(VISITOR) && !on_disk.contains(SECRET_KEY), "no secret key in the file: {on_disk}");
        wd.click("profile-tab-OIDC-server").await;
        wd.wait_text(&badge, Duration::from_secs(30), "the OIDC profile shown", |t| t.starts_with("Running")).await;

        // The proxy's badge in view (the header with the connection state stays on top).
        let show = "const b = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); \
                    b.scrollIntoView({block: 'center'});";
        wd.script(show, json!([badge])).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        wd.screenshot(&artifact).await;
        eprintln!("connected; screenshot at {}", artifact.display());

        // The same screen in both languages and both themes. The language switch applies at once (no reload)
        // and is stored with the app's options in profiles.json, where the backend (tray, notifications) reads it.
        for (lang, connected) in [("zh-CN", "已连接"), ("en", "Connected")] {
            wd.select("language-select", lang).await;
            wd.wait_text("conn-state", Duration::from_secs(10), "the header in the new language", |t| {
                t.starts_with(connected)
            })
            .await;
            let stored = format!("\"language\": \"{lang}\"");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !std::fs::read_to_string(config_dir.join("profiles.json")).unwrap_or_default().contains(&stored) {
                assert!(Instant::now() < deadline, "profiles.json never stored {stored}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for theme in ["light", "dark"] {
                wd.select("theme-select", theme).await;
                wd.script(show, json!([badge])).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                let shot = artifact.with_file_name(format!("desktop-{lang}-{theme}.png"));
                wd.screenshot(&shot).await;
                eprintln!("screenshot at {}", shot.display());
            }
        }
        wd.select("theme-select", "system").await;

        // Disconnect one: the token profile, from its own header button. The tray says so; the icon stays green
        // (it shows the worst state of the profiles that run, and the OIDC one still runs).
        wd.click("profile-tab-Token-server").await;
        wd.wait_text("conn-state", Duration::from_secs(10), "the token profile shown", |t| t.starts_with("Connected"))
            .await;
        wd.click("connect-button").await;
        wd.wait_text("profile-state-Token-server", Duration::from_secs(20), "Disconnected", |t| t == "Disconnected")
            .await;
        let t = tray
            .wait(Duration::from_secs(20), "the token profile disconnected", |t| {
                tray_says(t, "Token server", "disconnected") && tray_says(t, "OIDC server", "connected")
            })
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await; // an icon change would follow the menu's at once
        let t2 = tray.read(Duration::from_secs(5)).await.expect("read the tray");
        assert_eq!(icon(&t2), "connected", "one profile still connected: still green ({})", t2.icon_file);
        assert!(tray_item_on(&t, "Connect all") && tray_item_on(&t, "Disconnect all"), "{}", t.menu.outline());
        assert!(echo_through(remote2, b"x").await.is_err(), "the token profile's tunnel is closed");
        assert_eq!(echo_through(remote_moved, &data).await.expect("the OIDC profile still"), sha256(&data));

        // Disconnect all.
        wd.click("disconnect-all").await;
        for tab in ["profile-state-OIDC-server", "profile-state-Token-server"] {
            wd.wait_text(tab, Duration::from_secs(20), "Disconnected", |t| t == "Disconnected").await;
        }
        wd.wait_text("conn-state", Duration::from_secs(20), "Disconnected", |t| t == "Disconnected").await;
        assert!(echo_through(remote_moved, b"x").await.is_err(), "the first tunnel is closed after Disconnect all");
        assert!(echo_through(remote2, b"x").await.is_err(), "the second too");
        assert!(echo_through(vport, b"x").await.is_err(), "and the visitor's port");

        let t = tray
            .wait(Duration::from_secs(20), "both disconnected, the grey icon again", |t| {
                tray_says(t, "OIDC server", "disconnected")
                    && tray_says(t, "Token server", "disconnected")
                    && icon(t) == "disconnected"
            })
            .await;
        assert!(tray_item_on(&t, "Connect all") && !tray_item_on(&t, "Disconnect all"), "{}", t.menu.outline());

        wd.delete().await;
        driver.stop().await;
        xvfb.stop().await;
        keychain.delete().expect("remove the test secret");
        keychain2.delete().expect("remove the second test secret");
        for k in [Keychain::new(&format!("profile:{id3}")), visitor_key, proxy_key] {
            k.delete().expect("remove the third profile's and the visitor's secrets");
        }
        server.shutdown().await;
        server2.shutdown().await;
        let _ = std::fs::remove_dir_all(&config_dir);
    })
    .await
    .expect("the desktop WebDriver test timed out");
    eprintln!("desktop WebDriver test took {:?}", started.elapsed());
}
