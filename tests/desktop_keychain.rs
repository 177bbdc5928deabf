//! The desktop app's controller and keychain against a real Secret Service (gnome-keyring in a D-Bus session:
//! scripts/test.sh runs the suite under `dbus-run-session` with an unlocked keyring), and a real server and
//! OIDC provider.

mod support;

use std::time::Duration;

use portway::controller::Controller;
use portway::keychain::Keychain;
use portway::logs::LogBuffer;
use support::oidc::{OidcOptions, OidcProvider, CLIENT_SECRET};
use support::*;

fn require_secret_service() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "these tests need a Secret Service on a D-Bus session bus: run them through scripts/test.sh"
    );
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d =
        std::env::temp_dir().join(format!("portway-desktop-{tag}-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn keychain_store_read_replace_delete() {
    require_secret_service();
    let k = Keychain::new(&format!("test-{}", rand::random::<u64>()));
    assert_eq!(k.get().expect("read empty"), None, "no entry is None, not an error");
    k.set("first-secret").expect("store");
    assert_eq!(k.get().expect("read").as_deref(), Some("first-secret"));
    k.set("second-secret").expect("replace");
    assert_eq!(k.get().expect("read").as_deref(), Some("second-secret"));
    k.delete().expect("delete");
    assert_eq!(k.get().expect("read deleted"), None);
    k.delete().expect("deleting nothing is fine");
    // The entry really is in the Secret Service (seen by another client of it).
    let k = Keychain::new("seen-by-secret-tool");
    k.set("visible").expect("store");
    let out = std::process::Command::new("secret-tool")
        .args(["lookup", "service", "portway", "username", "seen-by-secret-tool"])
        .output()
        .expect("secret-tool (apt-get install libsecret-tools)");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "visible");
    k.delete().expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_keeps_the_secret_out_of_files_and_connect_toggle_runs_the_tunnel() {
    require_secret_service();
    tokio::time::timeout(Duration::from_secs(120), async {
        init_logs();
        let p = OidcProvider::start(OidcOptions::default()).await;
        let (echo, _e) = echo_server().await;
        let server = start_server(
            &format!("bindAddr = \"127.0.0.1\"\nauth.method = \"oidc\"\nauth.oidc.issuer = \"{}\"\n", p.issuer()),
            0,
        )
        .await;
        let remote = free_port();
        let seed = std::fs::read_to_string("tests/fixtures/seed/frpc.toml").expect("seed");
        let frpc = seed
            .replace("serverPort = 7000", &format!("serverPort = {}", server.addr.port()))
            .replace("http://127.0.0.1:9000/application/o/token/", p.token_endpoint())
            .replace("localPort = 30033\nremotePort = 30033", &format!("localPort = {echo}\nremotePort = {remote}"));
        let dir = temp_dir("ctl");
        let ctl = Controller::load(&dir, LogBuffer::default());
        let mut profile = ctl.import_frpc(&frpc).await.expect("import").profile;
        assert!(profile.auth.has_secret, "the secret went into the keychain");
        let on_disk = std::fs::read_to_string(ctl.profile_path()).expect("profile file");
        assert!(!on_disk.contains(CLIENT_SECRET), "the profile file must not contain the secret");
        assert!(!ctl.export_frpc().contains(CLIENT_SECRET), "the export must not contain the secret");
        // Only the TCP proxy: the UDP one would need the seed's fixed port.
        profile.proxies.retain(|x| x.kind == "tcp");
        ctl.save_profile(profile).await.expect("save");
        let info = ctl.test_sign_in(ctl.profile(), None).await.expect("test sign-in with the stored secret");
        assert_eq!(info.issuer, p.issuer());
        ctl.toggle().await.expect("tray toggle connects");
        let mut rx = ctl.watch();
        tokio::time::timeout(
            Duration::from_secs(30),
            rx.wait_for(|s| {
                s.is_connected()
                    && matches!(
                        s.proxies.get("TS3-Filetransfer").map(|x| &x.state),
                        Some(portway::client::ProxyState::Running { .. })
                    )
            }),
        )
        .await
        .expect("connected within 30 s")
        .expect("watch");
        assert_eq!(echo_through(remote, b"desktop").await.expect("traffic"), sha256(b"desktop"));
        assert_eq!(ctl.connect().await.unwrap_err().code, "already_connected");
        ctl.toggle().await.expect("tray toggle disconnects");
        assert!(!ctl.status().is_connected());
        assert!(echo_through(remote, b"x").await.is_err(), "the tunnel is closed after disconnect");
        let text = ctl.logs.snapshot().iter().map(|l| l.message.clone()).collect::<Vec<_>>().join("\n");
        assert!(!text.contains(CLIENT_SECRET), "logs must not contain the secret");
        ctl.clear_secret().expect("clear");
        assert!(!ctl.profile().auth.has_secret);
        assert_eq!(ctl.connect().await.unwrap_err().code, "no_secret");
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("test timed out");
}

async fn roundtrip(s: &mut tokio::net::TcpStream, msg: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(msg).await.expect("write");
    let mut got = vec![0; msg.len()];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
        .await
        .expect("echo within 10 s")
        .expect("the open connection still echoes");
    assert_eq!(got, msg);
}

fn tcp_row(name: &str, local: u16, remote: u16) -> portway::profile::ProxyDef {
    portway::profile::ProxyDef {
        name: name.into(),
        kind: "tcp".into(),
        local_ip: "127.0.0.1".into(),
        local_port: local,
        remote_port: remote,
        enabled: true,
        custom_domains: vec![],
        subdomain: String::new(),
        locations: vec![],
        http_user: String::new(),
        host_header_rewrite: String::new(),
        multiplexer: String::new(),
        has_http_password: false,
    }
}

async fn wait_running(ctl: &Controller, names: &[&str]) {
    let mut rx = ctl.watch();
    tokio::time::timeout(
        Duration::from_secs(30),
        rx.wait_for(|s| {
            s.is_connected()
                && names.iter().all(|n| {
                    matches!(s.proxies.get(*n).map(|x| &x.state), Some(portway::client::ProxyState::Running { .. }))
                })
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("{names:?} running within 30 s: {:?}", ctl.status()))
    .expect("watch");
}

/// Live edits: saving while connected adds, changes and disables proxies through the engine's reload; a connection
/// open through another proxy keeps echoing across the edits; a server change is flagged as needing a reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_while_connected_apply_live_and_leave_other_connections_open() {
    require_secret_service();
    tokio::time::timeout(Duration::from_secs(120), async {
        init_logs();
        let server = start_server("bindAddr = \"127.0.0.1\"\nauth.token = \"live-edit-token\"\n", 0).await;
        let (echo, _e) = echo_server().await;
        let (keep_port, b_port, b_new, c_port) = (free_port(), free_port(), free_port(), free_port());
        let dir = temp_dir("live");
        let ctl = Controller::load(&dir, LogBuffer::default());
        let mut p = portway::profile::Profile::default();
        p.server.addr = "127.0.0.1".into();
        p.server.port = server.addr.port();
        p.server.tls = false;
        p.auth.method = "token".into();
        p.proxies = vec![tcp_row("keep", echo, keep_port), tcp_row("b", echo, b_port)];
        ctl.save_profile(p.clone()).await.expect("save");
        ctl.set_secret("live-edit-token").await.expect("secret");
        ctl.connect().await.expect("connect");
        wait_running(&ctl, &["keep", "b"]).await;

        // A connection through "keep", open across all the edits below.
        let mut open = tokio::net::TcpStream::connect(("127.0.0.1", keep_port)).await.expect("connect through keep");
        roundtrip(&mut open, b"before").await;

        // Change b's remote port and add c.
        p.proxies[1].remote_port = b_new;
        p.proxies.push(tcp_row("c", echo, c_port));
        ctl.save_profile(p.clone()).await.expect("save while connected");
        wait_running(&ctl, &["keep", "b", "c"]).await;
        assert_eq!(echo_through(b_new, b"b moved").await.expect("b on its new port"), sha256(b"b moved"));
        assert_eq!(echo_through(c_port, b"c added").await.expect("c added"), sha256(b"c added"));
        assert!(!ctl.reconnect_needed(), "proxy edits need no reconnect");
        roundtrip(&mut open, b"after change and add").await;

        // Disable c.
        p.proxies[2].enabled = false;
        ctl.save_profile(p.clone()).await.expect("disable while connected");
        let mut rx = ctl.watch();
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| !s.proxies.contains_key("c")))
            .await
            .expect("c gone")
            .expect("watch");
        for _ in 0..50 {
            if echo_through(c_port, b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(echo_through(c_port, b"x").await.is_err(), "a disabled proxy's port closes");
        roundtrip(&mut open, b"after disable").await;

        // A server change cannot apply live: flagged, and the running tunnel is untouched.
        p.server.port = free_port();
        ctl.save_profile(p.clone()).await.expect("save a server change");
        assert!(ctl.reconnect_needed());
        assert!(ctl.status_dto(&ctl.status()).reconnect_needed);
        roundtrip(&mut open, b"after server change").await;

        ctl.disconnect().await.expect("disconnect");
        assert!(!ctl.reconnect_needed());
        ctl.clear_secret().expect("clear");
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("test timed out");
}
