//! frpc's `dnsServer` against a real DNS server on 127.0.0.1: dnsmasq (Debian's `dnsmasq-base`,
//! `scripts/apt-packages.txt`) serving names under `portway.test` (a reserved domain no system resolver knows) on a
//! port of the test's own. An in-process portway-server reached by name, a tcp proxy whose local service is a
//! name, the socks5 plugin reaching a destination by name, a CNAME, an answer too large for UDP (re-asked over
//! TCP), a name that does not exist, a DNS server that does not answer, and "Check" naming the DNS server.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::Duration;

use portway_client::diagnose::{check, Outcome, StepKind};
use portway_client::dns::Resolver;
use portway_client::{ClientConfig, ProxyState, SecretSource};

#[path = "../../server/tests/support/mod.rs"]
mod support;
use support::{
    check_tcp_echo, free_port, spawn_logged, start_client_without_warnings, tcp_echo, wait_for, wait_listening,
    LoggedProc, TestServer, T,
};

/// How many A records `big.portway.test` has: 40 × 16 bytes of answer records do not fit in 512 bytes of UDP.
const BIG: usize = 40;

/// dnsmasq in the foreground on 127.0.0.1:`port` (UDP and TCP), answering only from its command line.
async fn dnsmasq() -> LoggedProc {
    let port = free_port();
    let mut args: Vec<String> = [
        "--keep-in-foreground",
        "--log-queries",
        "--log-facility=-",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        "--pid-file=",
        // --cname points only at names dnsmasq holds records for (host-record), not at --address ones.
        "--host-record=frps.portway.test,127.0.0.1",
        "--address=/svc.portway.test/127.0.0.1",
        "--cname=alias.portway.test,frps.portway.test",
        // Everything else under portway.test does not exist (NXDOMAIN), and nothing is forwarded.
        "--local=/portway.test/",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--port={port}"));
    for i in 0..BIG {
        args.push(format!("--host-record=big.portway.test,10.9.{}.{}", i / 200, i % 200 + 1));
    }
    let p = spawn_logged("dnsmasq", &args, port, "dnsmasq");
    wait_listening(port).await;
    p
}

async fn server() -> TestServer {
    support::start_server_with("bindAddr = \"127.0.0.1\"\nbindPort = 0\nauth.token = \"t\"\n").await.0
}

#[tokio::test]
async fn the_server_and_the_local_service_are_found_through_dns_server() {
    let dns = dnsmasq().await;
    let server = server().await;
    let (local, remote) = (tcp_echo().await, free_port());
    // The server by a CNAME, the local service by name: both only dnsmasq knows.
    let c = start_client_without_warnings(&format!(
        "serverAddr = \"alias.portway.test\"\nserverPort = {}\nauth.token = \"t\"\nloginFailExit = false\n\
         dnsServer = \"127.0.0.1:{}\"\n\n[[proxies]]\nname = \"echo\"\ntype = \"tcp\"\n\
         localIP = \"svc.portway.test\"\nlocalPort = {local}\nremotePort = {remote}\n",
        server.port, dns.port
    ));
    wait_for(&c, "proxy running with the server found through dnsServer", |s| {
        matches!(s.proxies.get("echo").map(|p| &p.state), Some(ProxyState::Running { .. }))
    })
    .await;
    for i in 0..3u8 {
        check_tcp_echo(remote, &vec![i; 32 * 1024]).await;
    }
    c.cancel_token().cancel();
    // dnsmasq was asked: the server's name (A and AAAA) and the local service's.
    let log = dns.log();
    assert!(log.contains("query[A] alias.portway.test"), "dnsmasq saw no query for the server:\n{log}");
    assert!(log.contains("query[A] svc.portway.test"), "dnsmasq saw no query for the local service:\n{log}");
}

#[tokio::test]
async fn answers_too_large_for_udp_are_asked_again_over_tcp() {
    let dns = dnsmasq().await;
    let r = Resolver::parse(&format!("127.0.0.1:{}", dns.port)).unwrap();
    let addrs = r.lookup("big.portway.test", 80).await.unwrap();
    assert_eq!(addrs.len(), BIG, "{addrs:?}");
    assert!(addrs.iter().all(|a| a.port() == 80 && matches!(a.ip(), IpAddr::V4(ip) if ip.octets()[..2] == [10, 9])));
    // A name that is an address is not asked; /etc/hosts is read first (localhost is in it on Debian).
    assert_eq!(r.lookup("192.0.2.1", 7).await.unwrap()[0], "192.0.2.1:7".parse().unwrap());
    assert!(r.lookup("localhost", 7).await.unwrap().iter().all(|a| a.ip().is_loopback()));
    let log = dns.log();
    assert!(!log.contains("localhost"), "localhost was asked of the DNS server:\n{log}");
}

#[tokio::test]
async fn a_missing_name_and_a_silent_server_say_what_is_wrong() {
    let dns = dnsmasq().await;
    let r = Resolver::parse(&format!("127.0.0.1:{}", dns.port)).unwrap();
    let e = r.lookup("nope.portway.test", 7000).await.unwrap_err().to_string();
    assert!(e.contains("nope.portway.test") && e.contains("NXDOMAIN") && e.contains(&dns.port.to_string()), "{e}");
    // A UDP socket that reads and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = Resolver::parse(&silent.local_addr().unwrap().to_string()).unwrap();
    let e = tokio::time::timeout(Duration::from_secs(15), r.lookup("frps.portway.test", 7000)).await.unwrap();
    let e = e.unwrap_err().to_string();
    assert!(e.contains("did not answer") && e.contains("remove dnsServer"), "{e}");
}

#[tokio::test]
async fn check_names_the_dns_server_it_used() {
    let dns = dnsmasq().await;
    let server = server().await;
    let toml = format!(
        "serverAddr = \"frps.portway.test\"\nserverPort = {}\nauth.token = \"t\"\ndnsServer = \"127.0.0.1:{}\"\n",
        server.port, dns.port
    );
    let cfg = ClientConfig::parse(&toml, "test-frpc.toml").unwrap().config;
    let steps = tokio::time::timeout(T, check(&cfg, &SecretSource::FromConfig)).await.unwrap();
    let dns_step = steps.iter().find(|s| s.step == StepKind::Dns).unwrap();
    assert_eq!(dns_step.outcome, Outcome::Ok, "{steps:#?}");
    assert!(dns_step.summary.contains("127.0.0.1") && dns_step.summary.contains("dnsServer"), "{dns_step:#?}");
    assert!(steps.iter().all(|s| s.outcome == Outcome::Ok || s.step == StepKind::Tls), "{steps:#?}");
    // A name dnsmasq does not know: the DNS step fails, with a fix naming dnsServer.
    let cfg = ClientConfig::parse(&toml.replace("frps.portway.test", "gone.portway.test"), "f").unwrap().config;
    let steps = tokio::time::timeout(T, check(&cfg, &SecretSource::FromConfig)).await.unwrap();
    let dns_step = steps.iter().find(|s| s.step == StepKind::Dns).unwrap();
    assert_eq!(dns_step.outcome, Outcome::Fail, "{steps:#?}");
    assert!(format!("{dns_step:?}").contains("dnsServer"), "{dns_step:#?}");
}

#[tokio::test]
async fn the_socks5_plugin_finds_destinations_through_dns_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dns = dnsmasq().await;
    let server = server().await;
    let (echo, remote) = (tcp_echo().await, free_port());
    let c = start_client_without_warnings(&format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"t\"\nloginFailExit = false\n\
         dnsServer = \"127.0.0.1:{}\"\n\n[[proxies]]\nname = \"socks\"\ntype = \"tcp\"\nremotePort = {remote}\n\
         [proxies.plugin]\ntype = \"socks5\"\n",
        server.port, dns.port
    ));
    wait_for(&c, "socks5 proxy running", |s| {
        matches!(s.proxies.get("socks").map(|p| &p.state), Some(ProxyState::Running { .. }))
    })
    .await;
    // A SOCKS5 CONNECT (no auth) to svc.portway.test: a name only dnsmasq knows.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", remote)).await.unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut b = [0u8; 2];
    tokio::time::timeout(T, s.read_exact(&mut b)).await.unwrap().unwrap();
    assert_eq!(b, [5, 0]);
    let name = b"svc.portway.test";
    let mut req = vec![5, 1, 0, 3, name.len() as u8];
    req.extend_from_slice(name);
    req.extend_from_slice(&echo.to_be_bytes());
    s.write_all(&req).await.unwrap();
    let mut reply = [0u8; 10];
    tokio::time::timeout(T, s.read_exact(&mut reply)).await.unwrap().unwrap();
    assert_eq!(reply[1], 0, "SOCKS5 reply {reply:?}: the destination was not reached");
    s.write_all(b"through the plugin").await.unwrap();
    let mut got = [0u8; 18];
    tokio::time::timeout(T, s.read_exact(&mut got)).await.unwrap().unwrap();
    assert_eq!(&got, b"through the plugin");
    c.cancel_token().cancel();
    assert!(dns.log().contains("query[A] svc.portway.test"), "{}", dns.log());
}
