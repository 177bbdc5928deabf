//! frps's and frpc's command-line flags on the real binaries: a `portway-server` started only with flags and a
//! `portway-client` started only with a `tcp` subcommand (or `--config_dir`) carry an echo; bad values give the
//! config keys' messages; `--help` lists the flags.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const CLIENT: &str = env!("CARGO_BIN_EXE_portway-client");

/// `portway-server`, built (once per test process) with the same cargo, profile and target directory as this
/// test: `CARGO_BIN_EXE_*` covers only this package's binaries.
fn server_bin() -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = Path::new(CLIENT).parent().expect("target/<profile>").to_path_buf();
    let built = BUILT.get_or_init(|| {
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug").to_string();
        let mut cmd = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "-p", "portway-server", "--bin", "portway-server"])
            .env("CARGO_TARGET_DIR", dir.parent().expect("target dir"));
        if profile != "debug" {
            cmd.args(["--profile", &profile]);
        }
        match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("cargo build of portway-server failed: {s}")),
            Err(e) => Err(format!("cannot run cargo: {e}")),
        }
    });
    let path = dir.join("portway-server");
    if let Err(e) = built {
        assert!(path.exists(), "{e}, and {} does not exist", path.display());
    }
    path
}

/// A temporary directory (the server runs in one so no ./frps.toml is picked up), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("portway-cli-flags-{}-{n}-{what}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &Path, args: &[&str], cwd: &Path) -> Running {
    let child = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    Running(child)
}

fn run(bin: &Path, args: &[&str], cwd: &Path) -> Output {
    Command::new(bin).args(args).current_dir(cwd).env_remove("RUST_LOG").output().expect("run")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A TCP echo service on 127.0.0.1 (a thread per connection; the test process's end stops it).
fn tcp_echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// Connects to the public port until the echo answers (the client may still be logging in), within 30 s.
fn wait_echo(port: u16, data: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = || -> std::io::Result<Vec<u8>> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            s.write_all(data)?;
            let mut got = vec![0u8; data.len()];
            s.read_exact(&mut got)?;
            Ok(got)
        };
        match attempt() {
            Ok(got) if got == data => return,
            r => assert!(Instant::now() < deadline, "no echo through public port {port}: {r:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A portway-server with only flags; the temp dir it runs in and the port it listens on.
fn flags_server(extra: &[&str]) -> (Running, TempDir, u16) {
    let dir = TempDir::new("server");
    let port = free_port();
    let p = port.to_string();
    let mut args = vec!["--bind_addr", "127.0.0.1", "-p", &p, "-t", "flag-secret", "--proxy_bind_addr", "127.0.0.1"];
    args.extend_from_slice(extra);
    let server = spawn(&server_bin(), &args, &dir.0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the flags-only server did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, dir, port)
}

#[test]
fn flags_only_server_and_tcp_subcommand_carry_an_echo() {
    let (_server, dir, port) = flags_server(&["--max_ports_per_client", "1"]);
    let echo = tcp_echo().to_string();
    let remote = free_port();
    let (p, r) = (port.to_string(), remote.to_string());
    let _client = spawn(
        Path::new(CLIENT),
        &["tcp", "-s", "127.0.0.1", "-P", &p, "-t", "flag-secret", "-n", "echo", "-l", &echo, "-r", &r, "--ue"],
        &dir.0,
    );
    wait_echo(remote, b"through flags");

    // `-s host:port` (old frpc's form) and --tls_enable=false reach the same server.
    let remote2 = free_port();
    let (addr, r2) = (format!("127.0.0.1:{port}"), remote2.to_string());
    let _client2 = spawn(
        Path::new(CLIENT),
        &["tcp", "-s", &addr, "-t", "flag-secret", "-n", "echo2", "-l", &echo, "-r", &r2, "--tls_enable=false"],
        &dir.0,
    );
    wait_echo(remote2, b"host:port form");

    // The server's token flag is enforced: a client with another token is refused and exits (loginFailExit).
    let out = Command::new(CLIENT)
        .args(["tcp", "-s", "127.0.0.1", "-P", &p, "-t", "wrong", "-n", "x", "-l", &echo, "-r", "0"])
        .current_dir(&dir.0)
        .output()
        .expect("run");
    assert!(!out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("token"), "{out:?}");
}

#[test]
fn config_dir_runs_one_client_per_file() {
    let (_server, dir, port) = flags_server(&[]);
    let echo = tcp_echo();
    let configs = TempDir::new("configs");
    let (r1, r2) = (free_port(), free_port());
    let file = |name: &str, remote: u16| {
        format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {port}\nauth.token = \"flag-secret\"\n[[proxies]]\nname = \
             \"{name}\"\ntype = \"tcp\"\nlocalPort = {echo}\nremotePort = {remote}\n"
        )
    };
    std::fs::write(configs.0.join("a.toml"), file("a", r1)).expect("write");
    std::fs::create_dir_all(configs.0.join("more")).expect("mkdir");
    std::fs::write(configs.0.join("more/b.toml"), file("b", r2)).expect("write");
    let d = configs.0.display().to_string();
    let _clients = spawn(Path::new(CLIENT), &["--config_dir", &d], &dir.0);
    wait_echo(r1, b"first file");
    wait_echo(r2, b"second file");

    let empty = TempDir::new("empty");
    let out = run(Path::new(CLIENT), &["--config_dir", &empty.0.display().to_string()], &dir.0);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no file in it loads"), "{out:?}");
}

#[test]
fn bad_flag_values_get_the_config_keys_messages() {
    let dir = TempDir::new("bad");
    let server = server_bin();
    // The same value in a file and in a flag: the same message, the flag named.
    std::fs::write(dir.0.join("bad.toml"), "bindAddr = \"nowhere\"\n").expect("write");
    let from_file = run(&server, &["verify", "-c", "bad.toml"], &dir.0);
    let from_flag = run(&server, &["verify", "--bind_addr", "nowhere"], &dir.0);
    assert!(!from_file.status.success() && !from_flag.status.success());
    let (file_err, flag_err) = (String::from_utf8_lossy(&from_file.stderr), String::from_utf8_lossy(&from_flag.stderr));
    let message = "`bindAddr`: \"nowhere\" is not an IP address";
    assert!(file_err.contains(message), "{file_err}");
    assert!(flag_err.contains(&format!("command line: {message}")), "{flag_err}");
    assert!(flag_err.contains("--bind_addr sets bindAddr"), "{flag_err}");
    // An unsupported frps flag is refused as its key is.
    let out = run(&server, &["verify", "--kcp_bind_port", "7001"], &dir.0);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("kcpBindPort"), "{out:?}");
    let out = run(&server, &["verify", "-p", "notaport"], &dir.0);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bind_port"), "{out:?}");
    // Good flags verify; flags next to -c are ignored with a warning (the file is the configuration, as in frps).
    let out = run(&server, &["verify", "-p", "7001", "-t", "x"], &dir.0);
    assert!(out.status.success(), "{out:?}");
    std::fs::write(dir.0.join("good.toml"), "bindPort = 7000\n").expect("write");
    let out = run(&server, &["verify", "-c", "good.toml", "-p", "7001"], &dir.0);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ignored"), "{out:?}");

    let client = Path::new(CLIENT);
    let out = run(client, &["tcp", "-n", "a", "-l", "22", "-p", "kcp"], &dir.0);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KCP is not supported") && err.contains("--protocol sets transport.protocol"), "{err}");
    let out = run(client, &["tcp", "-n", "a", "-l", "22", "-r", "70000"], &dir.0);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("remotePort"), "{out:?}");
    // A flag of another proxy type is not a flag of this one.
    let out = run(client, &["tcp", "-n", "a", "-l", "22", "--sd", "x"], &dir.0);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sd"), "{out:?}");
}

#[test]
fn help_lists_the_flags() {
    let dir = TempDir::new("help");
    let text = |bin: &Path, args: &[&str]| {
        let out = run(bin, args, &dir.0);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let s = text(&server_bin(), &["--help"]);
    for flag in ["--bind_port", "-p", "--token", "--dashboard_port", "--allow_ports", "--kcp_bind_port", "--tls_only"] {
        assert!(s.contains(flag), "server --help lacks {flag}:\n{s}");
    }
    let c = text(Path::new(CLIENT), &["--help"]);
    for word in ["tcp", "xtcp", "--config_dir", "verify"] {
        assert!(c.contains(word), "client --help lacks {word}:\n{c}");
    }
    let t = text(Path::new(CLIENT), &["tcp", "--help"]);
    for flag in ["--server_addr", "--server_port", "--token", "--proxy_name", "--local_port", "--remote_port", "--ue"] {
        assert!(t.contains(flag), "client tcp --help lacks {flag}:\n{t}");
    }
    let v = text(Path::new(CLIENT), &["xtcp", "visitor", "--help"]);
    for flag in ["--server_name", "--server-user", "--bind_port", "--sk"] {
        assert!(v.contains(flag), "client xtcp visitor --help lacks {flag}:\n{v}");
    }
}
