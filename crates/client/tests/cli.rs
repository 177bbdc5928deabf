//! The `portway-client` binary: verify, --version, clean exit on SIGTERM while retrying.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portway-client");

fn temp_config(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("portway-client-cli-{}-{name}.toml", std::process::id()));
    std::fs::write(&p, text).expect("write temp config");
    p
}

#[test]
fn version_and_verify() {
    let out = Command::new(BIN).arg("--version").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let good = temp_config(
        "good",
        "serverPort = 7000\n[[proxies]]\nname = \"a\"\ntype = \"tcp\"\nlocalPort = 22\nremotePort = 6000\n",
    );
    let out = Command::new(BIN).args(["verify", "-c"]).arg(&good).output().expect("run");
    assert!(out.status.success(), "{out:?}");
    let bad = temp_config("bad", "[[proxies]]\nname = \"a\"\ntype = \"ftp\"\nlocalPort = 80\n");
    let out = Command::new(BIN).args(["verify", "-c"]).arg(&bad).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`proxies[0].type`"), "{out:?}");
    let _ = std::fs::remove_file(good);
    let _ = std::fs::remove_file(bad);
}

#[test]
fn sigterm_exits_zero() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    // Nothing listens there: the client keeps retrying (loginFailExit = false) until told to stop.
    let cfg =
        temp_config("retry", &format!("serverAddr = \"127.0.0.1\"\nserverPort = {port}\nloginFailExit = false\n"));
    let mut child =
        Command::new(BIN).arg("-c").arg(&cfg).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().expect("wait").is_none(), "client must keep retrying");
    let st = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "client did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let _ = std::fs::remove_file(cfg);
}
