//! frpc's `healthCheck` between a Portway client and a Portway server on 127.0.0.1: a proxy whose local service
//! is down is not registered; it registers once a check passes, is closed on the server after `maxFailed`
//! failures, and comes back when the service does, with the reason in the client's status meanwhile.
#![allow(clippy::unwrap_used)]

use portway_client::{ClientHandle, ProxyState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

mod support;
use support::*;

const SERVER: &str = "bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\n";

/// An echo service on `port` until the handle is aborted (its listener closes with it).
async fn echo_on(port: u16) -> JoinHandle<()> {
    let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = c.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    })
}

async fn wait_state(h: &ClientHandle, what: &str, ok: impl Fn(&ProxyState) -> bool) {
    let mut rx = h.watch();
    let r = tokio::time::timeout(T, async {
        loop {
            if ok(&rx.borrow_and_update().proxies["web"].state) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(r.is_ok() && ok(&h.status().proxies["web"].state), "{what}: {:#?}", h.status().proxies["web"]);
}

async fn echo_once(port: u16) -> bool {
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)).await else { return false };
    if c.write_all(b"ping").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 4];
    matches!(tokio::time::timeout(T, c.read_exact(&mut buf)).await, Ok(Ok(_))) && &buf == b"ping"
}

#[tokio::test]
async fn a_proxy_follows_its_health_check() {
    let (server, stats) = start_server_with(SERVER).await;
    let (remote, local) = (free_port(), free_port());
    let h = start_client(&format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"t\"\nloginFailExit = false\n\
         [[proxies]]\nname = \"web\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {local}\nremotePort = {remote}\n\
         healthCheck.type = \"tcp\"\nhealthCheck.intervalSeconds = 1\nhealthCheck.timeoutSeconds = 1\n\
         healthCheck.maxFailed = 2\n",
        server.port
    ));
    // The service is down: the client logs in, but registers nothing.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert!(matches!(h.status().proxies["web"].state, ProxyState::Pending), "{:#?}", h.status().proxies["web"]);
    assert_eq!(stats.get().await.proxies, 0, "a proxy whose service is down was registered");

    // Up: the next check passes, the proxy registers and carries traffic.
    let service = echo_on(local).await;
    wait_state(&h, "registered once the check passes", |s| matches!(s, ProxyState::Running { .. })).await;
    assert!(echo_once(remote).await, "no echo through the healthy proxy");

    // Down again: two failed checks close it on the server, with the reason in the status.
    service.abort();
    wait_state(&h, "closed after maxFailed failures", |s| {
        matches!(s, ProxyState::Error { reason } if reason.contains("health check failed") && reason.contains(&local.to_string()))
    })
    .await;
    // The CloseProxy is on its way when the status changes: give the server a bounded moment.
    let mut held = 1;
    for _ in 0..100 {
        held = stats.get().await.proxies;
        if held == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(held, 0, "the server still holds the unhealthy proxy");

    // And back.
    let _service = echo_on(local).await;
    wait_state(&h, "registered again", |s| matches!(s, ProxyState::Running { .. })).await;
    assert!(echo_once(remote).await, "no echo after the service came back");
    h.stop().await.unwrap();
}
