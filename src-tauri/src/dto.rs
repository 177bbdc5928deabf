//! The engine's status in the UI's shape (docs/ui-contract.md `Status`).

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use portway_client::status::VisitorState;
use portway_client::{ConnState, ProxyState, Status};
use serde::Serialize;

/// `ConnStatus`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ConnDto {
    /// Not running.
    Disconnected,
    /// Dialing or logging in.
    #[serde(rename_all = "camelCase")]
    Connecting { attempt: u32 },
    /// Logged in.
    #[serde(rename_all = "camelCase")]
    Connected { run_id: String, since: u64 },
    /// Failed; `retry_in_ms` null when the engine gave up.
    #[serde(rename_all = "camelCase")]
    Error { reason: String, retry_in_ms: Option<u64> },
}

/// The counters a proxy and a visitor both carry (`Counters` of the contract).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub conns: u64,
}

/// `ProxyStatus`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProxyDto {
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub traffic: Traffic,
}

/// `VisitorStatus`: `state` is `idle` (not listening: disconnected, or no local port), `listening` (at
/// `localAddr`) or `error` (the local port could not be opened: `reason`). `lastError` is the last failed visitor
/// connection (wrong secret, unknown server name, no peer-to-peer tunnel...); `path` how the last one went for
/// xtcp (`peer to peer`, `via server (fallbackTo NAME)`).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VisitorDto {
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(flatten)]
    pub traffic: Traffic,
}

/// `Status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusDto {
    pub conn: ConnDto,
    pub proxies: BTreeMap<String, ProxyDto>,
    /// Visitors by name (enabled ones).
    pub visitors: BTreeMap<String, VisitorDto>,
    /// A saved change (server address, auth, secret) applies only after Disconnect + Connect.
    #[serde(rename = "reconnectNeeded")]
    pub reconnect_needed: bool,
    /// The profile this status belongs to.
    #[serde(rename = "profileId")]
    pub profile_id: String,
}

impl From<&Status> for StatusDto {
    fn from(s: &Status) -> Self {
        let conn = match &s.conn {
            ConnState::Disconnected => ConnDto::Disconnected,
            ConnState::Connecting { attempt } => ConnDto::Connecting { attempt: *attempt },
            ConnState::Connected { run_id, since } => ConnDto::Connected {
                run_id: run_id.clone(),
                since: since.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
            },
            ConnState::Error { reason, retry_in } => {
                ConnDto::Error { reason: reason.clone(), retry_in_ms: retry_in.map(|d| d.as_millis() as u64) }
            }
        };
        let proxies = s
            .proxies
            .iter()
            .map(|(name, p)| {
                let (state, remote_addr, reason) = match &p.state {
                    ProxyState::Idle => ("idle", None, None),
                    ProxyState::Pending => ("pending", None, None),
                    ProxyState::Running { remote_addr } => ("running", Some(remote_addr.clone()), None),
                    ProxyState::Error { reason } => ("error", None, Some(reason.clone())),
                };
                let traffic = Traffic { bytes_in: p.bytes_in, bytes_out: p.bytes_out, conns: p.conns };
                (name.clone(), ProxyDto { state, remote_addr, reason, traffic })
            })
            .collect();
        let visitors = s
            .visitors
            .iter()
            .map(|(name, v)| {
                let (state, local_addr, reason) = match &v.state {
                    VisitorState::Idle => ("idle", None, None),
                    VisitorState::Listening { local_addr } => ("listening", Some(local_addr.clone()), None),
                    VisitorState::Error { reason } => ("error", None, Some(reason.clone())),
                };
                let dto = VisitorDto {
                    state,
                    local_addr,
                    reason,
                    last_error: v.last_error.clone(),
                    path: v.path.clone(),
                    traffic: Traffic { bytes_in: v.bytes_in, bytes_out: v.bytes_out, conns: v.conns },
                };
                (name.clone(), dto)
            })
            .collect();
        StatusDto { conn, proxies, visitors, reconnect_needed: false, profile_id: String::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_the_contract() {
        let mut s = Status::new(["web".to_string()].into_iter());
        s.conn = ConnState::Error { reason: "r".into(), retry_in: Some(std::time::Duration::from_millis(1500)) };
        let v = serde_json::to_value(StatusDto::from(&s)).unwrap();
        assert_eq!(v["conn"], serde_json::json!({"state": "error", "reason": "r", "retryInMs": 1500}));
        assert_eq!(v["proxies"]["web"], serde_json::json!({"state": "idle", "bytesIn": 0, "bytesOut": 0, "conns": 0}));
        s.conn = ConnState::Connecting { attempt: 2 };
        s.proxies.get_mut("web").unwrap().state = ProxyState::Running { remote_addr: ":6000".into() };
        let v = serde_json::to_value(StatusDto::from(&s)).unwrap();
        assert_eq!(v["conn"], serde_json::json!({"state": "connecting", "attempt": 2}));
        assert_eq!(v["proxies"]["web"]["remoteAddr"], ":6000");
        assert_eq!(v["visitors"], serde_json::json!({}));
        let mut vs = portway_client::status::VisitorStatus::idle();
        vs.state = VisitorState::Listening { local_addr: "127.0.0.1:6000".into() };
        vs.last_error = Some("the server refused the visitor: auth failed".into());
        vs.path = Some("peer to peer".into());
        s.visitors.insert("lab".into(), vs);
        let v = serde_json::to_value(StatusDto::from(&s)).unwrap();
        assert_eq!(
            v["visitors"]["lab"],
            serde_json::json!({"state": "listening", "localAddr": "127.0.0.1:6000", "path": "peer to peer",
                "lastError": "the server refused the visitor: auth failed", "bytesIn": 0, "bytesOut": 0, "conns": 0})
        );
        s.visitors.get_mut("lab").unwrap().state = VisitorState::Error { reason: "port in use".into() };
        let v = serde_json::to_value(StatusDto::from(&s)).unwrap();
        assert_eq!(
            (v["visitors"]["lab"]["state"].as_str(), v["visitors"]["lab"]["reason"].as_str()),
            (Some("error"), Some("port in use"))
        );
    }
}
