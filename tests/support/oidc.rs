//! Drives the test OIDC provider (`tests/oidc/provider.mjs`, npm `oidc-provider` dressed up as authentik) from
//! tokio tests: start it on 127.0.0.1, read its ready line, poke its admin endpoints, stop and restart it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};

/// The clients the provider knows when `OidcOptions::clients` is empty.
pub const CLIENT_ID: &str = "portway-test-client";
pub const CLIENT_SECRET: &str = "portway-test-secret";
pub const OTHER_CLIENT_ID: &str = "other-client";
pub const OTHER_CLIENT_SECRET: &str = "other-secret";
/// The `acr` claim authentik puts in client_credentials tokens.
pub const AUTHENTIK_ACR: &str = "goauthentik.io/providers/oauth2/default";

/// Per start attempt. Node normally answers within a second; on a loaded CI machine one start was seen to stall
/// past 30 s before creating the provider (stderr showed only node's version warning), so a stalled start is
/// killed and tried again, up to `START_ATTEMPTS` times.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: u32 = 3;
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct OidcOptions {
    /// `None`: any free port.
    pub port: Option<u16>,
    /// Application slug: issuer `http://127.0.0.1:PORT/application/o/<slug>/`.
    pub slug: String,
    /// Access token lifetime in seconds.
    pub ttl: u64,
    /// `RS256` or `ES256`.
    pub alg: String,
    /// Keep oidc-provider's own error codes (401 `invalid_client` for a wrong secret) instead of authentik's.
    pub native_errors: bool,
    /// Where the signing key lives across restarts; `None`: a file in a temporary directory of this provider.
    pub key_file: Option<PathBuf>,
    /// `(client_id, client_secret)` pairs; empty: the default two clients (see the constants above).
    pub clients: Vec<(String, String)>,
}

impl Default for OidcOptions {
    fn default() -> Self {
        OidcOptions {
            port: None,
            slug: "frp".into(),
            ttl: 3600,
            alg: "RS256".into(),
            native_errors: false,
            key_file: None,
            clients: Vec::new(),
        }
    }
}

/// A running provider; the node process is killed when this is dropped.
pub struct OidcProvider {
    pub port: u16,
    options: OidcOptions,
    key_file: PathBuf,
    temp_dir: PathBuf,
    issuer: String,
    token_endpoint: String,
    child: Option<Child>,
    _stdout: Option<BufReader<ChildStdout>>,
    log: Arc<Mutex<String>>,
}

/// A raw HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("HTTP {} body is not JSON ({e}): {}", self.status, self.body))
    }
}

/// `tests/oidc` of the repository, also from a crate's own tests (`crates/*/tests` include this file by path).
fn oidc_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = if here.join("tests/oidc").exists() { here.to_path_buf() } else { here.join("../..") };
    root.join("tests/oidc")
}

/// Runs `npm ci` in tests/oidc once if its node_modules are missing (serialised across the tests of a binary).
fn ensure_node_modules() {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = oidc_dir();
    if dir.join("node_modules/oidc-provider/package.json").exists() {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .status()
        .expect("run npm ci in tests/oidc (are node and npm installed?)");
    assert!(status.success(), "npm ci in {} failed: {status}", dir.display());
}

impl OidcProvider {
    pub async fn start(options: OidcOptions) -> OidcProvider {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        tokio::task::spawn_blocking(ensure_node_modules).await.expect("npm ci task");
        let temp_dir = std::env::temp_dir().join(format!(
            "portway-oidc-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&temp_dir).expect("create the provider's temporary directory");
        let key_file = options.key_file.clone().unwrap_or_else(|| temp_dir.join("keys.json"));
        let mut p = OidcProvider {
            port: options.port.unwrap_or(0),
            options,
            key_file,
            temp_dir,
            issuer: String::new(),
            token_endpoint: String::new(),
            child: None,
            _stdout: None,
            log: Arc::default(),
        };
        p.spawn().await;
        p
    }

    async fn spawn(&mut self) {
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            match self.try_spawn().await {
                Ok(()) => {
                    if !failures.is_empty() {
                        eprintln!("[oidc-provider] started on attempt {attempt} after: {}", failures.join("; "));
                    }
                    return;
                }
                Err(e) => failures.push(format!("attempt {attempt}: {e}")),
            }
        }
        panic!("test OIDC provider not ready after {START_ATTEMPTS} attempts:\n{}", failures.join("\n"));
    }

    /// One start: Err (with the process's log) when it did not print its ready line within `READY_TIMEOUT`.
    async fn try_spawn(&mut self) -> Result<(), String> {
        let o = &self.options;
        let mut cmd = Command::new("node");
        cmd.arg(oidc_dir().join("provider.mjs"))
            .args(["--port", &self.port.to_string(), "--slug", &o.slug])
            .args(["--ttl", &o.ttl.to_string(), "--alg", &o.alg])
            .arg("--key-file")
            .arg(&self.key_file);
        if o.native_errors {
            cmd.arg("--native-errors");
        }
        if !o.clients.is_empty() {
            let list: Vec<_> = o
                .clients
                .iter()
                .map(|(id, secret)| serde_json::json!({ "client_id": id, "client_secret": secret }))
                .collect();
            let file = self.temp_dir.join("clients.json");
            std::fs::write(&file, serde_json::to_vec(&list).expect("clients JSON")).expect("write clients file");
            cmd.arg("--clients").arg(file);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn node tests/oidc/provider.mjs (is node installed?)");

        // stderr is kept (see `log()`); echoed live when PORTWAY_OIDC_LOG is set.
        let stderr = child.stderr.take().expect("piped stderr");
        let log = self.log.clone();
        let echo = std::env::var_os("PORTWAY_OIDC_LOG").is_some();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if echo {
                    eprintln!("[oidc-provider] {line}");
                }
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });

        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let read = tokio::time::timeout(READY_TIMEOUT, stdout.read_line(&mut line)).await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            let _ = child.kill().await;
            tokio::time::sleep(Duration::from_millis(100)).await; // let the stderr task drain
            let log = std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()));
            return Err(format!("not ready within {READY_TIMEOUT:?} ({read:?}); its log:\n{log}"));
        }
        let ready: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("bad ready line from the OIDC provider ({e}): {line:?}"));
        assert_eq!(ready["ready"], true, "ready line: {line}");
        let port = ready["port"].as_u64().and_then(|p| u16::try_from(p).ok());
        self.port = port.unwrap_or_else(|| panic!("ready line without a port: {line}"));
        self.issuer = ready["issuer"].as_str().expect("ready line issuer").to_owned();
        self.token_endpoint = ready["token_endpoint"].as_str().expect("ready line token_endpoint").to_owned();
        self.child = Some(child);
        self._stdout = Some(stdout);
        Ok(())
    }

    /// `http://127.0.0.1:PORT/application/o/<slug>/` (with the trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `http://127.0.0.1:PORT/application/o/token/`.
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// `<issuer>.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}.well-known/openid-configuration", self.issuer)
    }

    /// The key file the signing key is kept in (reused by `restart`).
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// What the provider has logged on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A new signing key; the JWKS then lists only it. Returns the new `kid`.
    pub async fn rotate_key(&self) -> String {
        let v = self.admin("POST", "rotate-key").await;
        v["kid"].as_str().expect("rotate-key answers a kid").to_owned()
    }

    /// Lifetime of the tokens issued from now on (kept across `restart`).
    pub async fn set_ttl(&mut self, secs: u64) {
        let v = self.admin("POST", &format!("ttl?seconds={secs}")).await;
        assert_eq!(v["ttl"], secs, "set ttl");
        self.options.ttl = secs;
    }

    /// Tokens issued since this process started.
    pub async fn tokens_issued(&self) -> u64 {
        self.admin("GET", "count").await["count"].as_u64().expect("count answers a number")
    }

    async fn admin(&self, method: &str, what: &str) -> serde_json::Value {
        let r = http_request(self.port, method, &format!("/__admin/{what}"), &[], b"")
            .await
            .unwrap_or_else(|e| panic!("admin {what}: {e}"));
        assert_eq!(r.status, 200, "admin {what}: {}", r.body);
        r.json()
    }

    /// SIGTERM, then waits for the process to exit (SIGKILL after 10 s).
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        self._stdout = None;
        if let Some(pid) = child.id() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(status) => {
                let status = status.expect("wait for the OIDC provider");
                assert!(status.success(), "OIDC provider exit status {status}; log:\n{}", self.log());
            }
            Err(_) => {
                let _ = child.kill().await;
                panic!("OIDC provider ignored SIGTERM for {STOP_TIMEOUT:?}; log:\n{}", self.log());
            }
        }
    }

    /// Stops and starts again on the same port with the same key file (so tokens keep verifying).
    pub async fn restart(&mut self) {
        self.stop().await;
        let issuer = std::mem::take(&mut self.issuer);
        self.spawn().await;
        assert_eq!(self.issuer, issuer, "issuer changed across restart");
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.temp_dir);
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port` on a fresh connection (`Connection: close`); `Host`,
/// `Content-Length` and `Connection` are added. Understands `Content-Length`, chunked and read-to-close bodies.
pub async fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).await?;
    s.write_all(body).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad HTTP response: {:?}", String::from_utf8_lossy(&raw)),
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        let (mut rest, mut out) = (&body[..], Vec::new());
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..eol]).ok()?.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(eol + 2..eol + 2 + size)?);
            rest = rest.get(eol + 4 + size..)?;
        }
        body = out;
    } else if let Some((_, len)) = headers.iter().find(|(k, _)| k == "content-length") {
        body.truncate(len.parse().ok()?);
    }
    Some(HttpResponse { status, headers, body: String::from_utf8(body).ok()? })
}
