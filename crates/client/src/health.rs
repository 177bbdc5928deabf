//! frpc's proxy health checks (`healthCheck`): a proxy with a check is registered on the server only while its
//! local service passes, and closed on the server after `maxFailed` failures in a row, so a `loadBalancer.group`
//! sends visitors to the members that work. [`Verdict`] is the pure state machine; [`check_once`] does one check
//! (TCP connect, or an HTTP GET that must answer 2xx) and [`monitor`] runs them every `intervalSeconds`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// How a proxy's error reason starts when its health check closed it (frpc's phase `check failed`).
pub const FAILED: &str = "health check failed";

/// `healthCheck` of a proxy (frp's keys and defaults: timeout 3 s, one failure, every 10 s).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct HealthCheck {
    /// `tcp`, `http`, or empty (no check).
    #[serde(rename = "type")]
    pub kind: String,
    /// Seconds one check may take (0: frp's 3).
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout_seconds: i64,
    /// Failures in a row before the proxy is closed (0: frp's 1).
    #[serde(skip_serializing_if = "is_zero")]
    pub max_failed: i64,
    /// Seconds between checks (0: frp's 10).
    #[serde(skip_serializing_if = "is_zero")]
    pub interval_seconds: i64,
    /// `http`: the path asked for.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// `http`: headers sent with the check.
    #[serde(rename = "httpHeaders", skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HeaderPair>,
}

/// One `httpHeaders` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HeaderPair {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl HealthCheck {
    /// Whether the proxy has a check.
    pub fn is_empty(&self) -> bool {
        self.kind.is_empty()
    }

    /// What is wrong with it, if anything: `(key under healthCheck, message)`.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        match self.kind.as_str() {
            "" | "tcp" => {}
            "http" if self.path.is_empty() => {
                return Some(("path", "an http health check needs the path to ask for, such as \"/health\"".into()))
            }
            "http" => {}
            other => return Some(("type", format!("{other:?} is not a health check type: use \"tcp\" or \"http\""))),
        }
        for (key, v) in [("timeoutSeconds", self.timeout_seconds), ("maxFailed", self.max_failed)] {
            if v < 0 {
                return Some((key, "must be 0 (frp's default) or more".into()));
            }
        }
        if self.interval_seconds < 0 {
            return Some(("intervalSeconds", "must be 0 (frp's default) or more".into()));
        }
        None
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(if self.timeout_seconds > 0 { self.timeout_seconds as u64 } else { 3 })
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(if self.interval_seconds > 0 { self.interval_seconds as u64 } else { 10 })
    }

    fn max_failed(&self) -> u32 {
        if self.max_failed > 0 {
            self.max_failed.min(i64::from(u32::MAX)) as u32
        } else {
            1
        }
    }
}

/// The state of one proxy's checks. It starts failing (not registered) as frpc's; the first pass makes it pass,
/// `max_failed` failures in a row make it fail again.
#[derive(Debug, Clone)]
pub struct Verdict {
    ok: bool,
    failures: u32,
    max_failed: u32,
}

impl Verdict {
    /// A proxy not checked yet.
    pub fn new(max_failed: u32) -> Verdict {
        Verdict { ok: false, failures: 0, max_failed: max_failed.max(1) }
    }

    /// Records one check; returns the new state when it changed.
    pub fn record(&mut self, passed: bool) -> Option<bool> {
        if passed {
            self.failures = 0;
            if !self.ok {
                self.ok = true;
                return Some(true);
            }
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        if self.ok && self.failures >= self.max_failed {
            self.ok = false;
            return Some(false);
        }
        None
    }
}

/// One check of the service at `host:port` (an empty `host`: a plugin proxy, nothing to dial; a tcp check passes,
/// as frpc's).
pub async fn check_once(hc: &HealthCheck, host: &str, port: u16, dns: crate::dns::Resolver) -> Result<(), String> {
    if host.is_empty() && hc.kind == "tcp" {
        return Ok(());
    }
    let addr = format!("{host}:{port}");
    let work = async {
        let tcp = dns.connect(host, port).await.map_err(|e| format!("connect to {addr}: {e}"))?;
        if hc.kind != "http" {
            return Ok(());
        }
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("HTTP to {addr}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let path = if hc.path.starts_with('/') { hc.path.clone() } else { format!("/{}", hc.path) };
        let mut req = Request::get(&path).header(hyper::header::HOST, &addr);
        for h in &hc.http_headers {
            req = req.header(h.name.as_str(), h.value.as_str());
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| format!("health check request: {e}"))?;
        let resp = send.send_request(req).await.map_err(|e| format!("GET {path} on {addr}: {e}"))?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("GET {path} on {addr} answered {status}, not 2xx"))
        }
    };
    match tokio::time::timeout(hc.timeout(), work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer from {addr} within {:?}", hc.timeout())),
    }
}

/// A change of a proxy's health: its wire name, whether it passes now, and the last check's error.
#[derive(Debug, Clone)]
pub struct Change {
    /// The proxy's name on the wire.
    pub wire: String,
    /// Passing now.
    pub ok: bool,
    /// Why the last check failed (empty when it passed).
    pub detail: String,
}

/// Checks the service every interval until `cancel`, sending each change of state to `tx`.
pub async fn monitor(
    hc: HealthCheck,
    wire: String,
    host: String,
    port: u16,
    dns: crate::dns::Resolver,
    tx: mpsc::Sender<Change>,
    cancel: CancellationToken,
) {
    let mut v = Verdict::new(hc.max_failed());
    loop {
        let r = tokio::select! {
            _ = cancel.cancelled() => return,
            r = check_once(&hc, &host, port, dns) => r,
        };
        let detail = match &r {
            Ok(()) => String::new(),
            Err(e) => {
                debug!(proxy = %wire, error = %e, "health check failed");
                e.clone()
            }
        };
        if let Some(ok) = v.record(r.is_ok()) {
            if ok {
                info!(proxy = %wire, "health check passes: registering the proxy");
            } else {
                warn!(proxy = %wire, error = %detail, "health check failed: closing the proxy on the server");
            }
            if tx.send(Change { wire: wire.clone(), ok, detail }).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(hc.interval()) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_as_frpc_starts_and_drops_them() {
        let mut v = Verdict::new(2);
        assert_eq!(v.record(false), None, "not registered before the first pass");
        assert_eq!(v.record(true), Some(true));
        assert_eq!(v.record(true), None);
        assert_eq!(v.record(false), None, "one failure of two allowed");
        assert_eq!(v.record(true), None, "a pass resets the count");
        assert_eq!(v.record(false), None);
        assert_eq!(v.record(false), Some(false));
        assert_eq!(v.record(false), None);
        assert_eq!(v.record(true), Some(true));
    }

    #[test]
    fn problems_name_the_key() {
        let hc = |kind: &str, path: &str| HealthCheck { kind: kind.into(), path: path.into(), ..Default::default() };
        assert!(hc("tcp", "").problem().is_none() && hc("http", "/h").problem().is_none());
        assert_eq!(hc("http", "").problem().map(|p| p.0), Some("path"));
        assert_eq!(hc("icmp", "").problem().map(|p| p.0), Some("type"));
        let neg = HealthCheck { kind: "tcp".into(), interval_seconds: -1, ..Default::default() };
        assert_eq!(neg.problem().map(|p| p.0), Some("intervalSeconds"));
    }

    #[tokio::test]
    async fn tcp_and_http_checks_against_real_sockets() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let tcp = HealthCheck { kind: "tcp".into(), ..Default::default() };
        assert!(check_once(&tcp, "127.0.0.1", port, Default::default()).await.is_ok());
        // A tiny HTTP server: /ok → 200, anything else → 503; it checks the configured header arrives.
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut c, _)) = l.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = c.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                let ok = head.starts_with("get /ok ") && head.contains("x-check: yes");
                let status = if ok { "200 OK" } else { "503 Service Unavailable" };
                let _ = c.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes()).await;
            }
        });
        let header = vec![HeaderPair { name: "X-Check".into(), value: "yes".into() }];
        let good = HealthCheck { kind: "http".into(), path: "ok".into(), http_headers: header, ..Default::default() };
        assert_eq!(check_once(&good, "127.0.0.1", port, Default::default()).await, Ok(()));
        let bad = HealthCheck { kind: "http".into(), path: "/down".into(), ..Default::default() };
        let e = check_once(&bad, "127.0.0.1", port, Default::default()).await.unwrap_err();
        assert!(e.contains("503") && e.contains("/down"), "{e}");
        // Nothing listening: refused, named.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = check_once(&tcp, "127.0.0.1", closed, Default::default()).await.unwrap_err();
        assert!(e.contains(&format!("127.0.0.1:{closed}")), "{e}");
    }
}
