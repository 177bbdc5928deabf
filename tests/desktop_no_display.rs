//! The built desktop app without a display it can open: it says which display it tried and how to fix it, and
//! exits with code 1, instead of tao's panic ("Failed to initialize gtk backend!") with a backtrace.

#[cfg(target_os = "linux")]
#[test]
fn without_a_display_the_app_says_so_and_exits() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = std::env::temp_dir().join(format!("portway-nodisplay-{}", std::process::id()));
    // An X display number no server uses (the socket would be @/tmp/.X11-unix/X4093), and no Wayland.
    let mut app = Command::new(env!("CARGO_BIN_EXE_portway"))
        .env("DISPLAY", ":4093")
        .env_remove("WAYLAND_DISPLAY")
        .env("PORTWAY_CONFIG_DIR", &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the portway binary starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = app.try_wait().expect("wait for the app") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = app.kill();
            let _ = app.wait();
            panic!("the app was still running 30 s after it started without a display");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut app.stderr.take().expect("stderr"), &mut stderr).expect("read stderr");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status.code(), Some(1), "exit status {status:?}; stderr: {stderr}");
    assert!(stderr.contains("cannot open the display") && stderr.contains(":4093"), "stderr: {stderr}");
    assert!(stderr.contains("DISPLAY"), "names the setting to fix: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
}
