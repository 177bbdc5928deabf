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
        let imported = ctl.import_frpc(None, &frpc).await.expect("import");
        let (id, mut profile) = (imported.id, imported.profile);
        assert!(profile.auth.has_secret, "the secret went into the keychain");
        let on_disk = std::fs::read_to_string(ctl.profiles_path()).expect("profile file");
        assert!(!on_disk.contains(CLIENT_SECRET), "the profile file must not contain the secret");
        assert!(
            !ctl.export_frpc(&id).expect("export").contains(CLIENT_SECRET),
            "the export must not contain the secret"
        );
        // Only the TCP proxy: the UDP one would need the seed's fixed port.
        profile.proxies.retain(|x| x.kind == "tcp");
        ctl.save_profile(&id, profile).await.expect("save");
        let info = ctl
            .test_sign_in(&id, ctl.profile(&id).expect("profile"), None)
            .await
            .expect("test sign-in with the stored secret");
        assert_eq!(info.issuer, p.issuer());
        ctl.toggle(&id).await.expect("tray toggle connects");
        let mut rx = ctl.watch();
        tokio::time::timeout(
            Duration::from_secs(30),
            rx.wait_for(|m| {
                let Some(s) = m.get(&id) else { return false };
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
        assert_eq!(ctl.connect(&id).await.unwrap_err().code, "already_connected");
        ctl.toggle(&id).await.expect("tray toggle disconnects");
        assert!(!ctl.status(&id).is_connected());
        assert!(echo_through(remote, b"x").await.is_err(), "the tunnel is closed after disconnect");
        let text = ctl.logs.snapshot().iter().map(|l| l.message.clone()).collect::<Vec<_>>().join("\n");
        assert!(!text.contains(CLIENT_SECRET), "logs must not contain the secret");
        ctl.clear_secret(&id).expect("clear");
        assert!(!ctl.profile(&id).expect("profile").auth.has_secret);
        assert_eq!(ctl.connect(&id).await.unwrap_err().code, "no_secret");
        ctl.delete_profile(&id).await.expect("delete");
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("test timed out");
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
        allow_users: vec![],
        has_secret_key: false,
        renamed_from: None,
    }
}

async fn wait_running(ctl: &Controller, id: &str, names: &[&str]) {
    let mut rx = ctl.watch();
    tokio::time::timeout(
        Duration::from_secs(30),
        rx.wait_for(|m| {
            let Some(s) = m.get(id) else { return false };
            s.is_connected()
                && names.iter().all(|n| {
                    matches!(s.proxies.get(*n).map(|x| &x.state), Some(portway::client::ProxyState::Running { .. }))
                })
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("{names:?} running within 30 s: {:?}", ctl.status(id)))
    .expect("watch");
}

fn token_profile(port: u16, proxies: Vec<portway::profile::ProxyDef>) -> portway::profile::Profile {
    let mut p = portway::profile::Profile::default();
    p.server.addr = "127.0.0.1".into();
    p.server.port = port;
    p.server.tls = false;
    p.auth.method = "token".into();
    p.proxies = proxies;
    p
}

/// Two profiles against two servers, connected at once, one engine each. Live edits on one: saving while connected
/// adds, changes and disables proxies through the engine's reload; connections open through another proxy of the
/// same profile and through the other profile keep echoing across the edits; a server change is flagged as needing
/// a reconnect for that profile only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_profiles_connect_at_once_and_edits_to_one_leave_every_other_connection_open() {
    require_secret_service();
    tokio::time::timeout(Duration::from_secs(120), async {
        init_logs();
        let server = start_server("bindAddr = \"127.0.0.1\"\nauth.token = \"live-edit-token\"\n", 0).await;
        let server2 = start_server("bindAddr = \"127.0.0.1\"\nauth.token = \"second-server-token\"\n", 0).await;
        let (echo, _e) = echo_server().await;
        let (keep_port, b_port, b_new, c_port, other_port) =
            (free_port(), free_port(), free_port(), free_port(), free_port());
        let dir = temp_dir("live");
        let ctl = Controller::load(&dir, LogBuffer::default());
        // Added profiles (not the fresh one, `default`: the migration test uses that keychain entry meanwhile).
        let a = ctl.add_profile("First").expect("add").id;
        let b = ctl.add_profile("Second").expect("add").id;
        let mut p =
            token_profile(server.addr.port(), vec![tcp_row("keep", echo, keep_port), tcp_row("b", echo, b_port)]);
        ctl.save_profile(&a, p.clone()).await.expect("save");
        ctl.set_secret(&a, "live-edit-token").await.expect("secret");
        ctl.save_profile(&b, token_profile(server2.addr.port(), vec![tcp_row("other", echo, other_port)]))
            .await
            .expect("save the second");
        ctl.set_secret(&b, "second-server-token").await.expect("second secret");
        // Connect all: the fresh, never filled profile cannot start and is named; the two others start regardless.
        let errors = ctl.connect_all().await;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!((errors[0].0.as_str(), errors[0].1.code), ("My server", "invalid_input"), "{errors:?}");
        wait_running(&ctl, &a, &["keep", "b"]).await;
        wait_running(&ctl, &b, &["other"]).await;

        // Connections through "keep" and through the other profile, open across all the edits below.
        let mut open = tokio::net::TcpStream::connect(("127.0.0.1", keep_port)).await.expect("connect through keep");
        roundtrip(&mut open, b"before").await;
        let mut open2 =
            tokio::net::TcpStream::connect(("127.0.0.1", other_port)).await.expect("connect through the other");
        roundtrip(&mut open2, b"before").await;

        // Change b's remote port and add c.
        p.proxies[1].remote_port = b_new;
        p.proxies.push(tcp_row("c", echo, c_port));
        ctl.save_profile(&a, p.clone()).await.expect("save while connected");
        wait_running(&ctl, &a, &["keep", "b", "c"]).await;
        assert_eq!(echo_through(b_new, b"b moved").await.expect("b on its new port"), sha256(b"b moved"));
        assert_eq!(echo_through(c_port, b"c added").await.expect("c added"), sha256(b"c added"));
        assert!(!ctl.reconnect_needed(&a), "proxy edits need no reconnect");
        roundtrip(&mut open, b"after change and add").await;
        roundtrip(&mut open2, b"after change and add").await;

        // Disable c.
        p.proxies[2].enabled = false;
        ctl.save_profile(&a, p.clone()).await.expect("disable while connected");
        let mut rx = ctl.watch();
        tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|m| m.get(&a).is_some_and(|s| !s.proxies.contains_key("c"))),
        )
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

        // A server change cannot apply live: flagged for that profile only, and the running tunnels are untouched.
        p.server.port = free_port();
        ctl.save_profile(&a, p.clone()).await.expect("save a server change");
        assert!(ctl.reconnect_needed(&a));
        assert!(!ctl.reconnect_needed(&b));
        assert!(ctl.status_dto(&a, &ctl.status(&a)).reconnect_needed);
        roundtrip(&mut open, b"after server change").await;
        roundtrip(&mut open2, b"after server change").await;

        // Disconnecting one leaves the other running.
        ctl.disconnect(&a).await.expect("disconnect");
        assert!(!ctl.reconnect_needed(&a));
        assert!(ctl.status(&b).is_connected());
        roundtrip(&mut open2, b"after the first disconnected").await;
        ctl.disconnect_all().await;
        assert!(!ctl.status(&b).is_connected());
        for id in [&a, &b] {
            ctl.delete_profile(id).await.expect("delete");
        }
        server.shutdown().await;
        server2.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("test timed out");
}

fn secret_tool_lookup(account: &str) -> String {
    let out = std::process::Command::new("secret-tool")
        .args(["lookup", "service", "portway", "username", account])
        .output()
        .expect("secret-tool (apt-get install libsecret-tools)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Each profile's secret and proxy passwords are keychain entries of their own (seen by another Secret Service
/// client); a rename keeps them; deleting a profile removes its entries and no other profile's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_profile_has_its_own_keychain_entries_and_delete_removes_them() {
    require_secret_service();
    let dir = temp_dir("entries");
    let ctl = Controller::load(&dir, LogBuffer::default());
    let home = ctl.add_profile("Home").expect("add");
    let work = ctl.add_profile("Work").expect("add");
    let home2 = ctl.add_profile("home").expect("add a taken name");
    assert_eq!(home2.name, "home 2", "names stay apart");
    assert_eq!(ctl.rename_profile(&work.id, "Home").unwrap_err().code, "invalid_input");
    let mut web = tcp_row("web", 8080, 0);
    web.kind = "http".into();
    web.custom_domains = vec!["app.example.com".into()];
    web.http_user = "me".into();
    let mut p = token_profile(7000, vec![web]);
    ctl.save_profile(&home.id, p.clone()).await.expect("save home");
    p.proxies.clear();
    ctl.save_profile(&work.id, p).await.expect("save work");
    ctl.set_secret(&home.id, "home-secret").await.expect("home secret");
    ctl.set_secret(&work.id, "work-secret").await.expect("work secret");
    ctl.set_proxy_password(&home.id, "web", "web-password").await.expect("proxy password");
    let home_acc = format!("profile:{}", home.id);
    let work_acc = format!("profile:{}", work.id);
    let web_acc = format!("profile:{}:proxy:web:httpPassword", home.id);
    assert_eq!(secret_tool_lookup(&home_acc), "home-secret");
    assert_eq!(secret_tool_lookup(&work_acc), "work-secret");
    assert_eq!(secret_tool_lookup(&web_acc), "web-password");
    assert!(ctl.profile(&home.id).expect("home").auth.has_secret);
    assert!(ctl.profile(&home.id).expect("home").proxies[0].has_http_password);

    ctl.rename_profile(&home.id, "House").expect("rename");
    assert_eq!(ctl.name(&home.id).as_deref(), Some("House"));
    assert_eq!(secret_tool_lookup(&home_acc), "home-secret", "a rename keeps the secret");
    let on_disk = std::fs::read_to_string(ctl.profiles_path()).expect("profiles file");
    assert!(on_disk.contains("House") && !on_disk.contains("home-secret") && !on_disk.contains("hasSecret"));
    // A fresh controller reads the same profiles back (and asks the keychain, not the file, about secrets).
    let again = Controller::load(&dir, LogBuffer::default());
    assert_eq!(again.name(&home.id).as_deref(), Some("House"));
    assert!(again.profile(&work.id).expect("work").auth.has_secret);

    ctl.delete_profile(&home.id).await.expect("delete");
    assert_eq!(secret_tool_lookup(&home_acc), "", "the deleted profile's secret is gone");
    assert_eq!(secret_tool_lookup(&web_acc), "", "and its proxy password");
    assert_eq!(secret_tool_lookup(&work_acc), "work-secret", "the other profile's secret stays");
    assert_eq!(ctl.profile(&home.id).unwrap_err().code, "unknown_profile");
    assert_eq!(ctl.set_secret(&home.id, "x").await.unwrap_err().code, "unknown_profile");
    for id in [&work.id, &home2.id] {
        ctl.delete_profile(id).await.expect("cleanup");
    }
    assert_eq!(secret_tool_lookup(&work_acc), "");
    assert_eq!(ctl.ids(), ["default"], "the fresh profile is left");
    let _ = std::fs::remove_dir_all(dir);
    // The last profile deleted: a fresh empty one replaces it (the window always has one to show).
    // (A file with that one profile, so this test never touches `default`'s entry, which the migration test uses.)
    let dir = temp_dir("last");
    let only = format!("ponly{}", rand::random::<u32>());
    let store = portway::profiles::Store {
        options: Default::default(),
        entries: vec![portway::profiles::Entry::new(only.clone(), "Only".into())],
    };
    store.save(&dir).expect("write the profiles file");
    let ctl = Controller::load(&dir, LogBuffer::default());
    assert_eq!(ctl.ids(), std::slice::from_ref(&only));
    ctl.set_secret(&only, "only-secret").await.expect("secret");
    ctl.delete_profile(&only).await.expect("delete the last");
    assert_eq!(secret_tool_lookup(&format!("profile:{only}")), "");
    let left = ctl.ids();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0] != only && left[0] != "default", "a new id, not a reused one: {left:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The previous version's profile.json (a real file of that version) becomes the profile `default` on first
/// start; its secret, already under `profile:default`, keeps working; the old file is set aside.
#[test]
fn the_single_profile_file_is_migrated_on_first_start() {
    require_secret_service();
    let dir = temp_dir("migrate");
    std::fs::copy("tests/fixtures/desktop/profile-v1.json", dir.join("profile.json")).expect("old file");
    let secret = Keychain::new("profile:default");
    secret.set("migrated-secret").expect("the old version's secret");
    let ctl = Controller::load(&dir, LogBuffer::default());
    assert_eq!(ctl.ids(), ["default"]);
    assert_eq!(ctl.name("default").as_deref(), Some("tunnel.example.com"));
    let p = ctl.profile("default").expect("migrated");
    assert!(p.auth.has_secret, "the stored secret is found under the migrated profile");
    assert_eq!(p.auth.client_id, "portway-desktop");
    assert_eq!(p.proxies.len(), 2);
    assert_eq!(p.proxies[1].custom_domains, ["app.example.com"]);
    assert!(!p.proxies[1].enabled);
    assert!(p.options.connect_on_launch && p.options.start_minimized);
    assert_eq!(ctl.connect_on_launch(), ["default"]);
    assert!(ctl.app_options().start_minimized);
    assert!(!dir.join("profile.json").exists(), "the old file is set aside");
    assert!(dir.join("profile.json.migrated").exists());
    let text = std::fs::read_to_string(dir.join("profiles.json")).expect("the new file");
    assert!(text.contains("tunnel.example.com") && !text.contains("migrated-secret"));
    // Second start: read from profiles.json, the same profile.
    let again = Controller::load(&dir, LogBuffer::default());
    assert_eq!(again.profile("default").expect("again").proxies, p.proxies);
    secret.delete().expect("cleanup");
    let _ = std::fs::remove_dir_all(dir);
}

fn visitor_row(name: &str, kind: &str, server_name: &str, port: i32) -> portway::profile::VisitorDef {
    portway::profile::VisitorDef {
        name: name.into(),
        kind: kind.into(),
        server_name: server_name.into(),
        server_user: String::new(),
        bind_addr: "127.0.0.1".into(),
        bind_port: port,
        enabled: true,
        fallback_to: String::new(),
        has_secret_key: false,
        renamed_from: None,
    }
}

/// A secret proxy's and a visitor's secretKey are keychain entries of their own (seen by another Secret Service
/// client): storing adds them, a rename (`renamedFrom`) moves them, removing the row or the profile removes them.
/// Import puts a file's secretKeys there, never into profiles.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_keys_of_proxies_and_visitors_follow_their_rows() {
    require_secret_service();
    let dir = temp_dir("secretkeys");
    let ctl = Controller::load(&dir, LogBuffer::default());
    let id = ctl.add_profile("Secrets").expect("add").id;
    let mut nas = tcp_row("nas", 445, 0);
    nas.kind = "stcp".into();
    nas.allow_users = vec!["alice".into()];
    let mut p = token_profile(7000, vec![nas]);
    p.visitors = vec![visitor_row("lab", "stcp", "ssh", 6022)];
    ctl.save_profile(&id, p.clone()).await.expect("save");
    let (nas_acc, lab_acc) =
        (format!("profile:{id}:proxy:nas:secretKey"), format!("profile:{id}:visitor:lab:secretKey"));
    assert_eq!(secret_tool_lookup(&nas_acc), "");
    let fresh = ctl.profile(&id).expect("profile");
    assert!(!fresh.proxies[0].has_secret_key && !fresh.visitors[0].has_secret_key);
    ctl.set_proxy_secret_key(&id, "nas", "nas-key").await.expect("proxy key");
    ctl.set_visitor_secret_key(&id, "lab", "lab-key").await.expect("visitor key");
    assert_eq!(ctl.set_visitor_secret_key(&id, "lab", "").await.unwrap_err().code, "invalid_input");
    assert_eq!((secret_tool_lookup(&nas_acc), secret_tool_lookup(&lab_acc)), ("nas-key".into(), "lab-key".into()));
    let stored = ctl.profile(&id).expect("profile");
    assert!(stored.proxies[0].has_secret_key && stored.visitors[0].has_secret_key);
    let on_disk = std::fs::read_to_string(ctl.profiles_path()).expect("profiles file");
    assert!(
        !on_disk.contains("nas-key") && !on_disk.contains("lab-key") && !on_disk.contains("hasSecretKey"),
        "{on_disk}"
    );

    // Renames move the keys.
    let mut q = stored.clone();
    q.proxies[0].name = "files".into();
    q.proxies[0].renamed_from = Some("nas".into());
    q.visitors[0].name = "lab-ssh".into();
    q.visitors[0].renamed_from = Some("lab".into());
    let after = ctl.save_profile(&id, q).await.expect("save renames");
    assert!(after.proxies[0].has_secret_key && after.visitors[0].has_secret_key, "{after:?}");
    let (files_acc, ssh_acc) =
        (format!("profile:{id}:proxy:files:secretKey"), format!("profile:{id}:visitor:lab-ssh:secretKey"));
    assert_eq!((secret_tool_lookup(&files_acc), secret_tool_lookup(&ssh_acc)), ("nas-key".into(), "lab-key".into()));
    assert_eq!((secret_tool_lookup(&nas_acc), secret_tool_lookup(&lab_acc)), (String::new(), String::new()));
    assert!(!std::fs::read_to_string(ctl.profiles_path()).expect("file").contains("renamedFrom"));

    // Removing a visitor removes its key; the proxy's stays.
    let mut r = after.clone();
    r.visitors.clear();
    ctl.save_profile(&id, r).await.expect("remove the visitor");
    assert_eq!(secret_tool_lookup(&ssh_acc), "");
    assert_eq!(secret_tool_lookup(&files_acc), "nas-key");

    // Import: the file's secretKeys go to the keychain of the new profile.
    let text = "serverAddr = \"127.0.0.1\"\nauth.token = \"t\"\n[[proxies]]\nname = \"db\"\ntype = \"sudp\"\n\
                localPort = 5353\nsecretKey = \"db-file-key\"\n[[visitors]]\nname = \"web\"\ntype = \"xtcp\"\n\
                serverName = \"web\"\nsecretKey = \"web-file-key\"\nbindPort = 8089\n";
    let imported = ctl.import_frpc(None, text).await.expect("import");
    let (db_acc, web_acc) = (
        format!("profile:{}:proxy:db:secretKey", imported.id),
        format!("profile:{}:visitor:web:secretKey", imported.id),
    );
    assert_eq!(
        (secret_tool_lookup(&db_acc), secret_tool_lookup(&web_acc)),
        ("db-file-key".into(), "web-file-key".into())
    );
    assert!(imported.profile.proxies[0].has_secret_key && imported.profile.visitors[0].has_secret_key);
    let on_disk = std::fs::read_to_string(ctl.profiles_path()).expect("profiles file");
    assert!(!on_disk.contains("db-file-key") && !on_disk.contains("web-file-key"));
    assert!(!ctl.export_frpc(&imported.id).expect("export").contains("file-key"));

    // Deleting a profile removes its rows' keys.
    ctl.delete_profile(&imported.id).await.expect("delete");
    assert_eq!((secret_tool_lookup(&db_acc), secret_tool_lookup(&web_acc)), (String::new(), String::new()));
    ctl.delete_profile(&id).await.expect("delete");
    assert_eq!(secret_tool_lookup(&files_acc), "");
    let _ = std::fs::remove_dir_all(dir);
}

/// "Connect to a private service" end to end: an stcp proxy in one profile, visitors in another, one real server.
/// One click (set_visitor_enabled) on a visitor of the disconnected profile connects it and the visitor reaches the
/// proxy; adding a second visitor while connected leaves the first one's open connection up; switching a visitor
/// off closes its port only; the tray lists the visitors with their state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_in_one_profile_reaches_a_secret_proxy_in_another_and_toggles_live() {
    require_secret_service();
    tokio::time::timeout(Duration::from_secs(120), async {
        init_logs();
        let server = start_server("bindAddr = \"127.0.0.1\"\nauth.token = \"visitor-token\"\n", 0).await;
        let (echo, _e) = echo_server().await;
        let (p1, p2) = (free_port(), free_port());
        let dir = temp_dir("visitors");
        let ctl = Controller::load(&dir, LogBuffer::default());
        let provider = ctl.add_profile("Provider").expect("add").id;
        let visitor = ctl.add_profile("Visitor").expect("add").id;
        let mut nas = tcp_row("nas", echo, 0);
        nas.kind = "stcp".into();
        nas.allow_users = vec!["*".into()];
        ctl.save_profile(&provider, token_profile(server.addr.port(), vec![nas])).await.expect("save provider");
        ctl.set_secret(&provider, "visitor-token").await.expect("secret");
        ctl.set_proxy_secret_key(&provider, "nas", "nas-key").await.expect("proxy key");
        ctl.connect(&provider).await.expect("connect the provider");
        wait_running(&ctl, &provider, &["nas"]).await;

        let mut v = token_profile(server.addr.port(), vec![]);
        v.visitors =
            vec![portway::profile::VisitorDef { enabled: false, ..visitor_row("files", "stcp", "nas", p1 as i32) }];
        ctl.save_profile(&visitor, v).await.expect("save visitor profile");
        ctl.set_secret(&visitor, "visitor-token").await.expect("secret");
        ctl.set_visitor_secret_key(&visitor, "files", "nas-key").await.expect("visitor key");
        assert!(!ctl.is_running(&visitor).await);
        // One click: on, and the disconnected profile connects.
        let p = ctl.set_visitor_enabled(&visitor, "files", true).await.expect("switch on");
        assert!(p.visitors[0].enabled);
        assert!(ctl.is_running(&visitor).await, "turning a visitor on connects its profile");
        wait_listening(&ctl, &visitor, "files").await;
        let mut open = tokio::net::TcpStream::connect(("127.0.0.1", p1)).await.expect("through the visitor");
        roundtrip(&mut open, b"first visitor").await;
        let tray = ctl.visitor_toggles(&visitor);
        assert_eq!((tray[0].name.as_str(), tray[0].enabled), ("files", true));
        assert_eq!(tray[0].local_addr, Some(format!("127.0.0.1:{p1}")));

        // Add a second visitor while connected: it starts, the first one's connection stays open.
        let mut v2 = ctl.profile(&visitor).expect("profile");
        v2.visitors.push(visitor_row("files2", "stcp", "nas", p2 as i32));
        ctl.save_profile(&visitor, v2).await.expect("add a visitor live");
        ctl.set_visitor_secret_key(&visitor, "files2", "nas-key").await.expect("its key");
        wait_listening(&ctl, &visitor, "files2").await;
        assert_eq!(echo_through(p2, b"second").await.expect("second visitor"), sha256(b"second"));
        roundtrip(&mut open, b"after the second was added").await;
        assert!(!ctl.reconnect_needed(&visitor), "visitor edits need no reconnect");

        // Off: that visitor's port closes; the other one's connection stays.
        ctl.set_visitor_enabled(&visitor, "files2", false).await.expect("switch off");
        let mut closed = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", p2)).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(closed, "a visitor switched off closes its port");
        roundtrip(&mut open, b"after the second was switched off").await;
        assert!(!ctl.visitor_toggles(&visitor)[1].enabled);

        ctl.disconnect_all().await;
        for id in [&provider, &visitor] {
            ctl.delete_profile(id).await.expect("delete");
        }
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("test timed out");
}

async fn wait_listening(ctl: &Controller, id: &str, name: &str) {
    let mut rx = ctl.watch();
    tokio::time::timeout(
        Duration::from_secs(30),
        rx.wait_for(|m| {
            m.get(id).is_some_and(|s| {
                matches!(s.visitors.get(name).map(|v| &v.state), Some(portway::client::VisitorState::Listening { .. }))
            })
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("visitor {name} listening within 30 s: {:?}", ctl.status(id)))
    .expect("watch");
}
