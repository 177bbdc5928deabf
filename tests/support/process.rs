//! The real `portway-server` / `portway-client` binaries as child processes (for SIGKILL and log assertions).
//!
//! Integration tests of the root package cannot use `CARGO_BIN_EXE_*` for binaries of other workspace members,
//! so the binaries are built once per test process with the same cargo, profile and target directory as the
//! test executable itself (`target/<profile>/deps/<test>` → `target/<profile>/`). An up-to-date build is a
//! no-op; without cargo (the test executable run by hand) binaries already built there are used.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `target/<profile>/`, where the test executable's `deps/` directory lives.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("test executable lives in target/<profile>/deps").to_path_buf()
}

/// Path to a workspace binary (`portway-server` or `portway-client`), built on first use.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = profile_dir();
    let built = BUILT.get_or_init(|| {
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug").to_string();
        let target_dir = dir.parent().expect("target dir");
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let mut cmd = Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "-p", "portway-server", "-p", "portway-client"])
            .env("CARGO_TARGET_DIR", target_dir);
        if profile != "debug" {
            cmd.args(["--profile", &profile]);
        }
        match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("cargo build of the binaries failed: {s}")),
            Err(e) => Err(format!("cannot run cargo: {e}")),
        }
    });
    let path = dir.join(name);
    if let Err(e) = built {
        assert!(path.exists(), "{e}, and {} does not exist", path.display());
    }
    path
}

/// A child process with its config in a temporary file and its console (the log, on stdout; errors on stderr) in
/// another.
pub struct Proc {
    child: Child,
    pub name: String,
    config: PathBuf,
    log: PathBuf,
}

fn temp(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("portway-test-{}-{n}-{what}", std::process::id()))
}

impl Proc {
    /// Starts `bin(name) -c <config>`; RUST_LOG is removed so the config's `log.level` applies.
    pub fn spawn(name: &str, config: &str) -> Proc {
        let cfg = temp(&format!("{name}.toml"));
        std::fs::write(&cfg, config).expect("write config");
        let log = temp(&format!("{name}.log"));
        let err = std::fs::File::create(&log).expect("create log");
        let child = Command::new(bin(name))
            .arg("-c")
            .arg(&cfg)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(err.try_clone().expect("log file"))
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc { child, name: name.into(), config: cfg, log }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its peak resident memory so far in KiB (`VmHWM` of /proc/<pid>/status).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc status")
    }

    /// The config file it was started with.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process is still running (no exit, no crash).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until its log contains `needle`; returns the log.
    pub async fn wait_log(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(Instant::now() < deadline, "{} did not log {needle:?} within {within:?}; log:\n{log}", self.name);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_file(&self.config);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Waits (bounded) until something accepts TCP connections on 127.0.0.1:`port`.
pub async fn wait_listening(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port} after {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
