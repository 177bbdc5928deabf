//! The client's admin page on the real binary's admin server (`webServer.*`): `/` redirects to `/static/` as frpc
//! answers, the page and its assets are served behind the API's Basic auth (401 without), the script with a
//! JavaScript content type, and saving the masked config text back keeps the secrets (never writes the mask). Without
//! `dashboard/dist` the page's 503 is checked instead; `PORTWAY_REQUIRE_DASHBOARD=1` (set by `scripts/test.sh`)
//! turns that into a failure.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portway-client");
const TOKEN: &str = "page-test-secret-token";

/// The client process, killed when the test ends (also on a failed assertion).
struct Running(Child, std::path::PathBuf);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::test]
async fn admin_page_is_served_behind_the_apis_auth() {
    let (admin, server) = (free_port(), free_port());
    // No server listens on `serverPort`: the client keeps retrying and its admin server answers meanwhile.
    let text = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {server}\nloginFailExit = false\nauth.token = \"{TOKEN}\"\n\
         webServer.addr = \"127.0.0.1\"\nwebServer.port = {admin}\nwebServer.user = \"admin\"\nwebServer.password = \"admin-pass\"\n\n\
         [[proxies]]\nname = \"web\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = 18080\nremotePort = 16080\n"
    );
    let file = std::env::temp_dir().join(format!("portway-client-admin-page-{}.toml", std::process::id()));
    std::fs::write(&file, &text).expect("write config");
    let child = Command::new(BIN)
        .arg("-c")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn portway-client");
    let _running = Running(child, file.clone());

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let base = format!("http://127.0.0.1:{admin}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the admin server did not come up on port {admin}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let get = |path: &str, auth: bool| {
        let mut r = http.get(format!("{base}{path}")).timeout(Duration::from_secs(10));
        if auth {
            r = r.basic_auth("admin", Some("admin-pass"));
        }
        r.send()
    };

    // Without credentials: the page is as closed as the API.
    for path in ["/", "/static/", "/static/index.html", "/api/status"] {
        let r = get(path, false).await.expect("request");
        assert_eq!(r.status().as_u16(), 401, "{path}");
        assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"Restricted\"", "{path}");
    }
    let r = http.get(format!("{base}/static/")).basic_auth("admin", Some("wrong")).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 401);

    // `/` as frpc answers it.
    let r = get("/", true).await.expect("request");
    assert_eq!(r.status().as_u16(), 301);
    assert_eq!(r.headers()["location"], "/static/");
    assert_eq!(r.text().await.expect("body"), "<a href=\"/static/\">Moved Permanently</a>.\n\n");

    let r = get("/static/", true).await.expect("request");
    let status = r.status().as_u16();
    let content_type = r.headers()["content-type"].to_str().expect("ascii").to_string();
    let page = r.text().await.expect("body");
    assert_eq!(content_type, "text/html; charset=utf-8");
    if status == 503 {
        // Compiled without `dashboard/dist`: the page says how to build it.
        let required = std::env::var("PORTWAY_REQUIRE_DASHBOARD").is_ok_and(|v| v == "1");
        assert!(!required, "PORTWAY_REQUIRE_DASHBOARD=1 but the client was built without dashboard/dist");
        assert!(page.contains("npm ci &amp;&amp; npm run build"), "{page}");
        eprintln!("dashboard/dist was not built: the page's assets were not checked");
    } else {
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("<title>Portway client</title>") && page.contains("<div id=\"app\""), "{page}");
        // Relative URLs only, nothing from the internet.
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("src=\"/"), "{page}");
        let script = page
            .split("src=\"./")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("no script in {page}"));
        assert!(script.starts_with("assets/") && script.ends_with(".js"), "{script}");
        let r = get(&format!("/static/{script}"), false).await.expect("request");
        assert_eq!(r.status().as_u16(), 401, "an asset without credentials");
        let r = get(&format!("/static/{script}"), true).await.expect("request");
        assert_eq!(r.status().as_u16(), 200, "{script}");
        assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
        let js = r.text().await.expect("body");
        assert!(js.contains("\"reload\"") && js.contains("\"status\""), "not the page's script");
        let css = page.split("href=\"./").filter_map(|s| s.split('"').next()).find(|s| s.ends_with(".css"));
        let css = css.unwrap_or_else(|| panic!("no stylesheet in {page}"));
        let r = get(&format!("/static/{css}"), true).await.expect("request");
        assert_eq!(
            (r.status().as_u16(), r.headers()["content-type"].to_str().ok()),
            (200, Some("text/css; charset=utf-8"))
        );
    }
    if status == 200 {
        browser(admin).await;
    }
    let r = get("/static/nosuch.js", true).await.expect("request");
    assert_eq!(r.status().as_u16(), if status == 503 { 503 } else { 404 });

    // What the page's Save sends when nothing was retyped: the masked text is taken and the secrets stay.
    let masked = get("/api/config", true).await.expect("request").text().await.expect("body");
    assert!(masked.contains("auth.token = \"<redacted>\"") && !masked.contains(TOKEN), "{masked}");
    let r = http
        .put(format!("{base}/api/config"))
        .basic_auth("admin", Some("admin-pass"))
        .body(masked)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    assert_eq!(std::fs::read_to_string(&file).expect("file"), text, "the file with its secrets is unchanged");
    // The mask on a key the file does not have is refused, naming the line.
    let r = http
        .put(format!("{base}/api/config"))
        .basic_auth("admin", Some("admin-pass"))
        .body(format!("{text}[[visitors]]\nname = \"v\"\ntype = \"stcp\"\nserverName = \"web\"\nsecretKey = \"<redacted>\"\nbindPort = 19000\n"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 400);
    let msg = r.text().await.expect("body");
    assert!(msg.contains("line 20: <redacted>") && !msg.contains(TOKEN), "{msg}");
    assert_eq!(std::fs::read_to_string(&file).expect("file"), text, "a refused body is not written");
}

/// Chromium's profile folder, removed at the end even when the test fails.
struct Profile(std::path::PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The page in headless Chromium (skipped with a note when it is not installed, unless
/// `PORTWAY_REQUIRE_DASHBOARD=1`): it must load the status and the masked config, at desktop and phone widths.
async fn browser(admin: u16) {
    let present = Command::new("chromium").arg("--version").output().is_ok_and(|o| o.status.success());
    if !present {
        let required = std::env::var("PORTWAY_REQUIRE_DASHBOARD").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "PORTWAY_REQUIRE_DASHBOARD=1 but chromium is not installed (scripts/apt-packages.txt has it)"
        );
        eprintln!("NOTE: chromium is not installed: the browser check of the client page is skipped");
        return;
    }
    let profile = Profile(std::env::temp_dir().join(format!("portway-client-page-chromium-{}", std::process::id())));
    let url = format!("http://admin:admin-pass@127.0.0.1:{admin}/static/");
    for size in ["1280,900", "360,800"] {
        let mut cmd = tokio::process::Command::new("chromium");
        cmd.args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--window-size={size}"))
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        let child = cmd.spawn().expect("starting chromium");
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("chromium did not finish within 60 s")
            .expect("chromium");
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(dom.contains("data-loaded=\"true\""), "the page did not load its data:\n{dom}");
        assert!(dom.contains("<tr data-proxy=\"web\""), "the proxy is not listed:\n{dom}");
        assert!(dom.contains("data-masked=\"2\""), "the config with its two masked secrets is not loaded:\n{dom}");
        assert!(!dom.contains("class=\"error\""), "the page shows an error:\n{dom}");
        assert!(!dom.contains(TOKEN), "a secret on the page");
    }
}
