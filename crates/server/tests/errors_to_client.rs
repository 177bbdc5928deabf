//! frps's `detailedErrorsToClient`: on (the default) a refused login or proxy tells the client why; off, the
//! client reads only frps's summary ("register control error", "new proxy [NAME] error") while the reason stays in
//! the server's log. A Portway client against an in-process Portway server on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod support;

use portway_client::status::ConnState;
use portway_client::ProxyState;
use support::{free_port, start_client, start_server_with, wait_for};

/// A client with token `token` and one tcp proxy asking for port `remote`; returns its status once the login
/// failed or the proxy was refused.
async fn refusals(server_extra: &str, token: &str, remote: u16) -> (String, String) {
    let toml = format!("bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"right\"\nallowPorts = [{{ single = 1 }}]\n{server_extra}\n");
    let (server, _) = start_server_with(&toml).await;
    let client_toml = |token: &str| {
        format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"{token}\"\nloginFailExit = false\n\
             [[proxies]]\nname = \"web\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = 9\nremotePort = {remote}\n",
            server.port
        )
    };
    let bad = start_client(&client_toml(token));
    wait_for(&bad, "login refused", |s| matches!(s.conn, ConnState::Error { .. })).await;
    let ConnState::Error { reason: login, .. } = bad.status().conn else { unreachable!() };
    bad.cancel_token().cancel();
    let good = start_client(&client_toml("right"));
    wait_for(&good, "proxy refused", |s| {
        matches!(s.proxies.get("web").map(|p| &p.state), Some(ProxyState::Error { .. }))
    })
    .await;
    let proxy = format!("{:?}", good.status().proxies["web"].state);
    good.cancel_token().cancel();
    (login, proxy)
}

#[tokio::test]
async fn refusals_carry_the_reason_by_default() {
    let (login, proxy) = refusals("", "wrong", free_port()).await;
    assert!(login.contains("token"), "{login}");
    assert!(!login.contains("register control error"), "{login}");
    assert!(proxy.contains("not allowed") || proxy.contains("allowPorts"), "{proxy}");
}

#[tokio::test]
async fn with_detailed_errors_off_the_client_reads_only_the_summary() {
    let (login, proxy) = refusals("detailedErrorsToClient = false", "wrong", free_port()).await;
    assert!(login.contains("register control error"), "{login}");
    assert!(!login.contains("token mismatch") && !login.contains("invalid token"), "{login}");
    assert!(proxy.contains("new proxy [web] error"), "{proxy}");
    assert!(!proxy.contains("allowPorts") && !proxy.contains("not allowed"), "{proxy}");
}
