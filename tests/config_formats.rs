//! Every format frp reads, read into the same model: the fixtures in tests/fixtures/configs/ come in twins (TOML,
//! YAML, JSON, legacy INI; includes and their flattened form; an old-era INI and what it means), each twin must load
//! into the same model, pass both binaries' `verify`, and survive `convert` (round trip, same model, same NewProxy
//! messages).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use portway::client::ClientConfig;
use portway::server::ServerConfig;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs").join(name)
}

fn client(name: &str) -> ClientConfig {
    let mut c = ClientConfig::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}")).config;
    c.includes.clear();
    c
}

fn server(name: &str) -> String {
    format!("{:?}", ServerConfig::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}")).config)
}

const CLIENT_TWINS: &[&[&str]] = &[
    &["frpc.toml", "frpc.yaml", "frpc.json", "frpc.ini"],
    &["frpc-oidc.toml", "frpc-oidc.yaml", "frpc-oidc.json", "frpc-oidc.ini"],
    &["frpc-legacy-old.toml", "frpc-legacy-old.ini", "frpc-range-template.toml", "frpc-range-template.yaml"],
    &["frpc-includes-flat.toml", "frpc-includes.toml", "frpc-includes.ini"],
];

const SERVER_TWINS: &[&[&str]] = &[
    &["frps.toml", "frps.yaml", "frps.json", "frps.ini"],
    &["frps-oidc.toml", "frps-oidc.yaml", "frps-oidc.json", "frps-oidc.ini"],
    &["frps-legacy-old.toml", "frps-legacy-old.ini"],
];

#[test]
fn client_twins_load_into_the_same_model() {
    for group in CLIENT_TWINS {
        let first = client(group[0]);
        assert!(!first.proxies.is_empty(), "{}: no proxies", group[0]);
        for other in &group[1..] {
            assert_eq!(client(other), first, "{other} differs from {}", group[0]);
        }
    }
    // Spot checks that the twins say what they mean (not only that they agree).
    let c = client("frpc.ini");
    assert_eq!(c.auth.additional_scopes, ["HeartBeats", "NewWorkConns"]);
    assert_eq!((c.proxies[1].local_ip.as_str(), c.proxies[1].remote_port), ("10.0.0.2", 6053));
    let old = client("frpc-legacy-old.ini");
    assert_eq!(old.auth.token, "old-era-token");
    let names: Vec<_> = old.proxies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web", "game_0", "game_1", "game_2"]);
    assert_eq!(client("frpc-oidc.ini").auth.oidc.additional_endpoint_params["resource"], "frps");
}

#[test]
fn server_twins_load_into_the_same_model() {
    for group in SERVER_TWINS {
        let first = server(group[0]);
        for other in &group[1..] {
            assert_eq!(server(other), first, "{other} differs from {}", group[0]);
        }
    }
    let s = ServerConfig::load(&fixture("frps.ini")).unwrap().config;
    assert!(s.port_allowed(2500) && s.port_allowed(3003) && !s.port_allowed(3002));
    assert!(s.transport.tls.force);
}

fn all_fixtures(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture(""))
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix) && !n.ends_with(".md"))
        .collect();
    names.sort();
    names
}

#[test]
fn convert_round_trips_and_keeps_model_and_new_proxy_messages() {
    for name in all_fixtures("frpc") {
        let path = fixture(&name);
        let text = std::fs::read_to_string(&path).unwrap();
        let once = ClientConfig::convert(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Converted TOML sits beside the original, so `includes` resolve the same way.
        let out = path.with_file_name(format!("converted-{name}.toml"));
        std::fs::write(&out, &once).unwrap();
        let twice = ClientConfig::convert(&once, &out.display().to_string()).unwrap();
        let reloaded = ClientConfig::load(&out);
        std::fs::remove_file(&out).ok();
        assert_eq!(once, twice, "{name}: converting the output again changed it");
        let converted = reloaded.unwrap_or_else(|e| panic!("{name} converted: {e}\n{once}")).config;
        let original = ClientConfig::load(&path).unwrap().config;
        assert_eq!(converted, original, "{name}: the converted TOML means something else:\n{once}");
        let msgs = |c: &ClientConfig| -> Vec<String> {
            c.proxies
                .iter()
                .map(|p| serde_json::to_string(&portway::client::engine::new_proxy(&c.wire_name(p), p)).unwrap())
                .collect()
        };
        assert_eq!(msgs(&converted), msgs(&original), "{name}: NewProxy messages differ");
        if name.ends_with(".ini") {
            assert!(once.starts_with("# frpc.toml converted from"), "{name}: {once}");
        }
    }
    for name in all_fixtures("frps") {
        let path = fixture(&name);
        let text = std::fs::read_to_string(&path).unwrap();
        let once = ServerConfig::convert(&text, &path.display().to_string()).unwrap();
        let twice = ServerConfig::convert(&once, "frps.toml").unwrap();
        assert_eq!(once, twice, "{name}");
        let converted = format!("{:?}", ServerConfig::parse(&once, "frps.toml").unwrap().config);
        assert_eq!(converted, server(&name), "{name}: the converted TOML means something else:\n{once}");
    }
}

#[test]
fn convert_notes_dropped_keys_and_keeps_templates() {
    let old = std::fs::read_to_string(fixture("frpc-legacy-old.ini")).unwrap();
    let out = ClientConfig::convert(&old, "frpc-legacy-old.ini").unwrap();
    assert!(out.contains("# line 7: `log_way` dropped: frp v0.70 no longer reads it"), "{out}");
    assert!(out.contains("`privilege_token` (frp < 0.14) read as auth.token"), "{out}");
    let ini = "[common]\nserver_port = {{ .Envs.FRP_PORT }}\ntoken = {{ .Envs.FRP_TOKEN }}\n";
    let out = ClientConfig::convert(ini, "frpc.ini").unwrap();
    assert!(out.contains("serverPort = {{ .Envs.FRP_PORT }}\n"), "{out}");
    assert!(out.contains("auth.token = \"{{ .Envs.FRP_TOKEN }}\"\n"), "{out}");
    let yaml = "serverPort: {{ .Envs.FRP_PORT }}\nauth:\n  token: \"{{ .Envs.FRP_TOKEN }}\"\nproxies:\n  - name: a\n    localIp: 127.0.0.1\n    localPort: 1\n";
    let out = ClientConfig::convert(yaml, "frpc.yaml").unwrap();
    assert!(out.contains("serverPort = {{ .Envs.FRP_PORT }}\n") && out.contains("\"{{ .Envs.FRP_TOKEN }}\""), "{out}");
    assert!(out.contains("`localIp` written as frp spells it: `proxies[0].localIP`"), "{out}");
    // The converted text loads with the variables set.
    let env = |n: &str| match n {
        "FRP_PORT" => Some("7100".to_string()),
        "FRP_TOKEN" => Some("from-env".to_string()),
        _ => None,
    };
    let c = ClientConfig::parse_with_env(&out, "frpc.toml", env).unwrap().config;
    assert_eq!((c.server_port, c.auth.token.as_str(), c.proxies[0].local_ip.as_str()), (7100, "from-env", "127.0.0.1"));
}

#[test]
fn errors_name_file_line_and_key_and_never_a_secret() {
    let e =
        ClientConfig::parse("[common]\nserver_addr = a\nserver_port = seven\n", "frpc.ini").unwrap_err().to_string();
    assert!(e.starts_with("frpc.ini: line 3: [common] `server_port`: \"seven\" is not a whole number"), "{e}");
    let e =
        ClientConfig::parse("serverPort: 7000\nproxies:\n  - name: a\n    localPort: x\n", "frpc.yaml").unwrap_err();
    assert!(e.to_string().starts_with("frpc.yaml: line 4: `proxies[0].localPort`: invalid type"), "{e}");
    let e = ClientConfig::parse("{\n  \"serverPort\": 70000\n}\n", "frpc.json").unwrap_err().to_string();
    assert!(e.starts_with("frpc.json: line 2: `serverPort`: invalid value: integer `70000`"), "{e}");
    let e = ClientConfig::parse("{\n  \"serverPort\": 7000,\n}\n", "frpc.json").unwrap_err().to_string();
    assert!(e.contains("line 3") && e.contains("not valid JSON"), "{e}");
    // frp's rule: a .toml file is TOML; one that is really INI says so and how to fix it.
    let e = ClientConfig::parse("[common]\nserver_addr = 1.2.3.4\ntoken = hunter2-secret\n", "frpc.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("legacy INI format") && e.contains("portway-client convert"), "{e}");
    // Without an extension frp decides by content: the same text is read as INI.
    let l = ClientConfig::parse("[common]\nserver_addr = 1.2.3.4\ntoken = hunter2-secret\n", "frpc").unwrap();
    assert_eq!(l.config.auth.token, "hunter2-secret");
    // A secret never appears in an error, even when its line is the one at fault.
    let e = ClientConfig::parse("[common]\noidc_client_secret = \"hunter2\nserver_port = x\n", "frpc.ini").unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = ServerConfig::parse("bindPort: 7000\nauth:\n  token: [\"hunter2-secret\"]\n", "frps.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3") && e.contains("auth.token") && !e.contains("hunter2"), "{e}");
    // Validation names the line too, in every format.
    let e = ClientConfig::parse("[common]\n[a]\nlocal_port = 1\n[b]\nlocal_port = 0\n", "frpc.ini").unwrap_err();
    assert!(e.to_string().starts_with("frpc.ini: line 4: `proxies[1].localPort`: proxy \"b\" needs"), "{e}");
    let yaml = "serverPort: 7000\nproxies:\n  - name: a\n    localPort: 1\n  - name: a\n    localPort: 2\n";
    let e = ClientConfig::parse(yaml, "frpc.yaml").unwrap_err();
    assert!(e.to_string().starts_with("frpc.yaml: line 5: `proxies[1].name`: proxy name \"a\" is used twice"), "{e}");
    let e = ServerConfig::parse("{\n  \"bindPort\": 7000,\n  \"auth\": {\"method\": \"ldap\"}\n}\n", "frps.json")
        .unwrap_err();
    assert!(e.to_string().starts_with("frps.json: line 3: `auth.method`"), "{e}");
    // A real frp key Portway lacks says so, with the line.
    let e =
        ClientConfig::parse("[[proxies]]\nname = \"a\"\nlocalPort = 1\nplugin.type = \"virtual_net\"\n", "frpc.toml")
            .unwrap_err();
    assert!(
        e.to_string().contains("line 4: `proxies[0].plugin.type`: the \"virtual_net\" plugin is not supported yet"),
        "{e}"
    );
}

#[test]
fn token_source_file_enabled_and_start() {
    let dir = std::env::temp_dir().join(format!("portway-token-source-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "file-token\n").unwrap();
    let text = format!(
        "auth.tokenSource.type = \"file\"\nauth.tokenSource.file.path = {:?}\nstart = [\"a\", \"c\"]\n\
         [[proxies]]\nname = \"a\"\nlocalPort = 1\n[[proxies]]\nname = \"b\"\nlocalPort = 2\n\
         [[proxies]]\nname = \"c\"\nenabled = false\nlocalPort = 3\n",
        token.display().to_string()
    );
    let c = ClientConfig::parse(&text, "frpc.toml").unwrap().config;
    assert_eq!(c.auth.token, "file-token");
    assert_eq!(c.proxies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["a"]);
    let s = ServerConfig::parse(
        &format!("auth.tokenSource = {{ type = \"file\", file = {{ path = {:?} }} }}\n", token.display().to_string()),
        "frps.toml",
    )
    .unwrap()
    .config;
    assert_eq!(s.auth.token, "file-token");
    let e = ServerConfig::parse("auth.token = \"x\"\nauth.tokenSource.type = \"file\"\n", "frps.toml").unwrap_err();
    assert!(e.to_string().contains("not both"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn both_verify_commands_accept_every_fixture_and_honour_strict_config() {
    for (bin, prefix) in [("portway-client", "frpc"), ("portway-server", "frps")] {
        for name in all_fixtures(prefix) {
            let out = Command::new(support::process::bin(bin))
                .args(["-c"])
                .arg(fixture(&name))
                .arg("verify")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{bin} verify {name}: {}", String::from_utf8_lossy(&out.stderr));
            assert!(stdout.contains("syntax is ok"), "{bin} verify {name}: {stdout}");
        }
    }
    let dir = std::env::temp_dir().join(format!("portway-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("frpc.yaml");
    std::fs::write(&f, "serverPort: 7000\nserverAddres: x\n").unwrap();
    let run = |extra: &[&str]| {
        Command::new(support::process::bin("portway-client"))
            .arg("-c")
            .arg(&f)
            .args(extra)
            .arg("verify")
            .output()
            .unwrap()
    };
    let strict = run(&[]);
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(
        !strict.status.success() && err.contains("line 2: unknown key `serverAddres` (did you mean `serverAddr`?)"),
        "{err}"
    );
    let lenient = run(&["--strict-config=false"]);
    assert!(lenient.status.success(), "{}", String::from_utf8_lossy(&lenient.stderr));
    assert!(String::from_utf8_lossy(&lenient.stderr).contains("warning:"));
    let conv = Command::new(support::process::bin("portway-server"))
        .arg("-c")
        .arg(fixture("frps.ini"))
        .arg("convert")
        .output()
        .unwrap();
    assert!(conv.status.success());
    assert!(String::from_utf8_lossy(&conv.stdout)
        .contains("allowPorts = [{ start = 2000, end = 3000 }, { single = 3001 }, { single = 3003 }]"));
    std::fs::remove_dir_all(&dir).ok();
}

/// The repository's own TOML configs (seed, examples, the frp capture runs) have YAML, JSON and INI twins written
/// by tests/fixtures/configs/make_twins.py: each loads to the same model as the TOML, and converts back to it.
#[test]
fn repository_configs_have_equal_twins_in_every_format() {
    let dir = fixture("twins");
    let mut stems: Vec<String> = std::fs::read_dir(&dir)
        .expect("twins")
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(String::from))
        .collect();
    stems.sort();
    stems.dedup();
    assert!(stems.len() >= 10, "{stems:?}");
    for stem in stems {
        let files: Vec<PathBuf> =
            ["toml", "yaml", "json", "ini"].iter().map(|e| dir.join(format!("{stem}.{e}"))).collect();
        let model = |f: &PathBuf| -> String {
            if stem.ends_with("frpc") {
                format!("{:?}", ClientConfig::load(f).unwrap_or_else(|e| panic!("{e}")).config)
            } else {
                format!("{:?}", ServerConfig::load(f).unwrap_or_else(|e| panic!("{e}")).config)
            }
        };
        let first = model(&files[0]);
        for f in &files[1..] {
            assert_eq!(model(f), first, "{} differs from {}", f.display(), files[0].display());
            let text = std::fs::read_to_string(f).unwrap();
            let converted = if stem.ends_with("frpc") {
                let c = ClientConfig::convert(&text, &f.display().to_string()).unwrap();
                format!("{:?}", ClientConfig::parse(&c, "frpc.toml").unwrap().config)
            } else {
                let c = ServerConfig::convert(&text, &f.display().to_string()).unwrap();
                format!("{:?}", ServerConfig::parse(&c, "frps.toml").unwrap().config)
            };
            assert_eq!(converted, first, "convert of {} means something else", f.display());
        }
    }
}
