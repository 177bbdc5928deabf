//! "Check" against a real portway-server on 127.0.0.1: server down (TCP refused), wrong token (the server's
//! refusal at login), a good configuration with a trusted certificate (every step ok), and the server's
//! self-signed certificate (reported as not trusted; fatal only when the client verifies).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/support/pki.rs"]
mod pki;

use std::process::Command;
use std::time::Duration;

use portway_client::diagnose::{check, Outcome, Step, StepKind};
use portway_client::{ClientConfig, Secret, SecretSource};

/// The bound on every check.
const T: Duration = Duration::from_secs(60);

#[path = "../../server/tests/support/mod.rs"]
mod support;
use support::{free_port, TestServer};

/// A server on 127.0.0.1 (a port of its own) with `toml`'s settings.
async fn start_server(toml: &str) -> TestServer {
    support::start_server_with(&format!("bindAddr = \"127.0.0.1\"\nbindPort = 0\n{toml}")).await.0
}

fn client(toml: &str) -> ClientConfig {
    ClientConfig::parse(toml, "test-frpc.toml").expect("client config").config
}

async fn run(cfg: &ClientConfig, secret: SecretSource) -> Vec<Step> {
    let steps = tokio::time::timeout(T, check(cfg, &secret)).await.expect("check finished in time");
    assert_eq!(steps.iter().map(|s| s.step).collect::<Vec<_>>(), StepKind::ALL.to_vec(), "{steps:#?}");
    steps
}

fn outcomes(steps: &[Step]) -> Vec<Outcome> {
    steps.iter().map(|s| s.outcome).collect()
}

#[tokio::test]
async fn server_down_fails_at_tcp_connect_as_refused() {
    let port = free_port();
    let cfg = client(&format!("serverAddr = \"127.0.0.1\"\nserverPort = {port}\nauth.token = \"t\"\n"));
    let steps = run(&cfg, SecretSource::FromConfig).await;
    use Outcome::*;
    assert_eq!(outcomes(&steps), vec![Ok, Fail, Skipped, Skipped, Skipped], "{steps:#?}");
    let tcp = &steps[1];
    assert_eq!(tcp.code, "refused", "{tcp:#?}");
    assert!(tcp.summary.contains(&format!("127.0.0.1:{port} refused the connection")), "{tcp:#?}");
    assert!(tcp.fix.contains("server is down") && tcp.fix.contains("serverPort"), "{tcp:#?}");
    assert_eq!(steps[2].code, "notRun");
}

#[tokio::test]
async fn wrong_token_fails_at_login_with_the_servers_reason() {
    let server = start_server("auth.token = \"right-token\"\n").await;
    let cfg = client(&format!("serverAddr = \"127.0.0.1\"\nserverPort = {}\n", server.port));
    let steps = run(&cfg, SecretSource::Value(Secret::new("wrong-token"))).await;
    use Outcome::*;
    // The server's certificate is its own self-signed one: a warning, not a failure (the client does not verify).
    assert_eq!(outcomes(&steps), vec![Ok, Ok, Warn, Ok, Fail], "{steps:#?}");
    let login = &steps[4];
    assert_eq!(login.code, "wrongToken", "{login:#?}");
    assert!(login.summary.contains("does not match the server's auth.token"), "the server's own words: {login:#?}");
    assert!(login.fix.contains("auth.token"), "{login:#?}");
    let all = format!("{steps:?}");
    assert!(!all.contains("wrong-token") && !all.contains("right-token"), "no secret in the results: {all}");
}

#[tokio::test]
async fn good_config_with_a_trusted_certificate_passes_every_step() {
    let pki = pki::Pki::new();
    let server = start_server(&format!(
        "auth.token = \"s3cret\"\ntransport.tls.force = true\ntransport.tls.certFile = {:?}\ntransport.tls.keyFile = {:?}\n",
        pki.cert.display().to_string(),
        pki.key.display().to_string()
    ))
    .await;
    // By name: the DNS step looks `localhost` up.
    let cfg = client(&format!(
        "serverAddr = \"localhost\"\nserverPort = {}\ntransport.tls.trustedCaFile = {:?}\n",
        server.port,
        pki.ca.display().to_string()
    ));
    let steps = run(&cfg, SecretSource::Value(Secret::new("s3cret"))).await;
    assert_eq!(outcomes(&steps), vec![Outcome::Ok; 5], "{steps:#?}");
    assert_eq!(steps[0].code, "resolved");
    assert!(steps[0].summary.contains("127.0.0.1") || steps[0].summary.contains("::1"), "{:#?}", steps[0]);
    let cert = steps[2].certificate.as_ref().expect("certificate");
    assert!(cert.trusted && !cert.self_signed, "{cert:#?}");
    assert!(cert.subject.contains("CN=localhost"), "{cert:#?}");
    assert!(cert.issuer.contains("Portway test CA"), "{cert:#?}");
    assert!(cert.not_after > cert.not_before, "{cert:#?}");
    assert!(steps[2].summary.contains("trusted by transport.tls.trustedCaFile"), "{:#?}", steps[2]);
    assert_eq!(steps[3].code, "tokenAuth");
    assert_eq!(steps[4].code, "loggedIn");
    assert!(steps[4].summary.contains("accepted the login"), "{:#?}", steps[4]);
}

#[tokio::test]
async fn self_signed_certificate_is_reported_untrusted() {
    let server = start_server("auth.token = \"s3cret\"\n").await;
    let base = format!("serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"s3cret\"\n", server.port);
    // Without trustedCaFile the client does not verify (as frpc): a warning that says so, and the login works.
    let steps = run(&client(&base), SecretSource::FromConfig).await;
    use Outcome::*;
    assert_eq!(outcomes(&steps), vec![Ok, Ok, Warn, Ok, Ok], "{steps:#?}");
    let tls = &steps[2];
    assert_eq!(tls.code, "unverified", "{tls:#?}");
    let cert = tls.certificate.as_ref().expect("certificate");
    assert!(!cert.trusted && cert.self_signed, "{cert:#?}");
    assert!(tls.summary.contains("self-signed") && tls.summary.contains("not trusted"), "{tls:#?}");
    assert!(tls.fix.contains("transport.tls.trustedCaFile"), "{tls:#?}");
    // With a CA that did not sign it: the TLS step fails and says why; the login is not attempted.
    let other_ca = pki::Pki::new();
    let cfg = client(&format!("{base}transport.tls.trustedCaFile = {:?}\n", other_ca.ca.display().to_string()));
    let steps = run(&cfg, SecretSource::FromConfig).await;
    assert_eq!(outcomes(&steps), vec![Ok, Ok, Fail, Skipped, Skipped], "{steps:#?}");
    assert_eq!(steps[2].code, "untrusted", "{:#?}", steps[2]);
    assert!(steps[2].summary.contains("not trusted by transport.tls.trustedCaFile"), "{:#?}", steps[2]);
}

#[test]
fn cli_check_prints_the_steps_and_fails_when_one_fails() {
    let port = free_port();
    let p = std::env::temp_dir().join(format!("portway-check-{}.toml", std::process::id()));
    std::fs::write(&p, format!("serverAddr = \"127.0.0.1\"\nserverPort = {port}\nauth.token = \"t\"\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portway-client")).args(["check", "-c"]).arg(&p).output().expect("run");
    let _ = std::fs::remove_file(&p);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text.contains("[ok  ] DNS"), "{text}");
    assert!(text.contains("[FAIL] TCP connect") && text.contains("refused the connection"), "{text}");
    assert!(text.contains("what to do: The server is down"), "{text}");
    assert!(text.contains("[--  ] Login"), "{text}");
}

#[path = "../../../tests/support/oidc.rs"]
#[allow(dead_code)]
mod oidc;

#[tokio::test]
async fn oidc_wrong_secret_fails_at_the_token_request_and_the_right_one_logs_in() {
    use oidc::{OidcOptions, OidcProvider, CLIENT_ID, CLIENT_SECRET};
    let p = OidcProvider::start(OidcOptions::default()).await;
    let server = start_server(&format!("auth.method = \"oidc\"\nauth.oidc.issuer = \"{}\"\n", p.issuer())).await;
    let cfg = client(&format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.method = \"oidc\"\nauth.oidc.clientID = \"{CLIENT_ID}\"\n\
         auth.oidc.tokenEndpointURL = \"{}\"\n",
        server.port,
        p.token_endpoint()
    ));
    use Outcome::*;
    let steps = run(&cfg, SecretSource::Value(Secret::new("not-the-secret"))).await;
    assert_eq!(outcomes(&steps), vec![Ok, Ok, Warn, Fail, Skipped], "{steps:#?}");
    let token = &steps[3];
    assert_eq!(token.code, "wrongSecret", "{token:#?}");
    assert!(token.summary.contains("refused the client secret"), "{token:#?}");
    assert!(!format!("{steps:?}").contains("not-the-secret"));

    let steps = run(&cfg, SecretSource::Value(Secret::new(CLIENT_SECRET))).await;
    assert_eq!(outcomes(&steps), vec![Ok, Ok, Warn, Ok, Ok], "{steps:#?}");
    assert!(
        steps[3].summary.contains(&format!("access token for client {CLIENT_ID} from {}", p.issuer())),
        "{:#?}",
        steps[3]
    );
    assert_eq!(steps[4].code, "loggedIn");
}
