//! The `portway-server` binary: verify, --version, clean exit on SIGTERM.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portway-server");

fn write_config(text: &str) -> tempfile_path::Path {
    tempfile_path::Path::new(text)
}

mod tempfile_path {
    /// A config file in the system temp dir, removed on drop.
    pub struct Path(pub std::path::PathBuf);
    impl Path {
        pub fn new(text: &str) -> Path {
            let p = std::env::temp_dir().join(format!("portway-cli-{}-{}.toml", std::process::id(), rand_suffix()));
            std::fs::write(&p, text).expect("write temp config");
            Path(p)
        }
    }
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }
}

#[test]
fn version_and_verify() {
    let out = Command::new(BIN).arg("--version").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));

    // frp's --strict-config: an unknown key is an error by default, a warning with --strict-config=false.
    let good = write_config("bindPort = 7000\nauth.token = \"x\"\nunknownKey = 1\n");
    let out = Command::new(BIN).args(["verify", "-c"]).arg(&good.0).output().expect("run");
    assert!(!out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3: unknown key `unknownKey`"), "{out:?}");
    let out = Command::new(BIN).args(["verify", "--strict-config=false", "-c"]).arg(&good.0).output().expect("run");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("syntax is ok"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key `unknownKey`"));

    let bad = write_config("bindPort = 7000\nauth.method = \"ldap\"\n");
    let out = Command::new(BIN).args(["verify", "-c"]).arg(&bad.0).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth.method"), "{out:?}");

    let out = Command::new(BIN).args(["verify", "-c", "/nonexistent/frps.toml"]).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file /nonexistent/frps.toml"));
}

#[test]
fn sigterm_exits_zero_and_occupied_port_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let cfg = write_config(&format!("bindAddr = \"127.0.0.1\"\nbindPort = {port}\nauth.token = \"x\"\n"));
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(&cfg.0)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A second server on the same port fails with a message naming the address.
    let out = Command::new(BIN).arg("-c").arg(&cfg.0).output().expect("run second");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");

    let st = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "clean shutdown exits 0");
    // The console log is on standard output, as frps writes it (`frps -c frps.toml > frps.log`); nothing went wrong,
    // so standard error stays empty.
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read stdout");
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("read stderr");
    assert!(out.contains("portway-server listening") && out.contains(&port.to_string()), "{out:?}");
    assert!(err.is_empty(), "{err:?}");
    let _ = std::io::stderr().flush();
}

#[test]
fn refuses_to_start_with_a_public_api_without_password_and_says_why() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let cfg = write_config(&format!(
        "bindAddr = \"127.0.0.1\"\nbindPort = {port}\nauth.token = \"x\"\nwebServer.addr = \"0.0.0.0\"\nwebServer.port = 7500\n"
    ));
    // Not `verify` only: starting the server itself is refused, before anything listens.
    let out = Command::new(BIN).arg("-c").arg(&cfg.0).output().expect("run");
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`webServer.password`") && err.contains("not a loopback address"), "{err}");
    assert!(err.contains("webServer.addr = \"127.0.0.1\""), "the fix is named: {err}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing may listen");
    // The default address is loopback, where no password is needed.
    let cfg = write_config("bindPort = 7000\nauth.token = \"x\"\nwebServer.port = 7500\n");
    let out = Command::new(BIN).args(["verify", "-c"]).arg(&cfg.0).output().expect("run");
    assert!(out.status.success(), "{out:?}");
}

/// frps's `log.to`: the server's lines go to that file (created with its directory, mode 0600), nothing to the
/// console; a path that cannot be a file stops the start with a message naming it.
#[test]
fn log_to_a_file_as_frps() {
    let dir = std::env::temp_dir().join(format!("portway-cli-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = dir.join("logs").join("frps.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let cfg = write_config(&format!(
        "bindAddr = \"127.0.0.1\"\nbindPort = {port}\nauth.token = \"x\"\nlog.to = \"{}\"\nlog.maxDays = 3\n\
         log.disablePrintColor = true\n",
        log.display()
    ));
    let mut child =
        Command::new(BIN).arg("-c").arg(&cfg.0).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&port.to_string()) {
            break text;
        }
        assert!(Instant::now() < deadline, "no line about port {port} in {}: {text:?}", log.display());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!text.contains('\u{1b}'), "no colour codes in a file: {text:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&log).expect("log file").permissions().mode() & 0o777, 0o600);
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "nothing on the console: {out:?}");
    // A directory where the file should be.
    let cfg = write_config(&format!(
        "bindAddr = \"127.0.0.1\"\nbindPort = {port}\nauth.token = \"x\"\nlog.to = \"{}\"\n",
        dir.join("logs").display()
    ));
    let out = Command::new(BIN).arg("-c").arg(&cfg.0).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot write the log file") && err.contains("log.to"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
