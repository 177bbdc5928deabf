//! The engine's status in the UI's shape (docs/ui-contract.md `Status`).

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

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

/// `ProxyStatus`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProxyDto {
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub conns: u64,
}

/// `Status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusDto {
    pub conn: ConnDto,
    pub proxies: BTreeMap<String, ProxyDto>,
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
                (
                    name.clone(),
                    ProxyDto {
                        state,
                        remote_addr,
                        reason,
                        bytes_in: p.bytes_in,
                        bytes_out: p.bytes_out,
                        conns: p.conns,
                    },
                )
            })
            .collect();
        StatusDto { conn, proxies, reconnect_needed: false, profile_id: String::new() }
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
    }
}
