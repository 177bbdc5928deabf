//! What the engine tells its shells (CLI, desktop app): connection state and per-proxy state.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// The connection's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ConnState {
    /// Not running.
    Disconnected,
    /// Dialing / logging in.
    Connecting {
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// Logged in.
    Connected {
        /// The server's run_id for this session.
        run_id: String,
        /// When the login succeeded.
        since: SystemTime,
    },
    /// The last attempt failed; `retry_in` is `None` when the engine gave up.
    Error {
        /// What went wrong and what to do.
        reason: String,
        /// When the next attempt starts.
        retry_in: Option<Duration>,
    },
}

/// One proxy's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ProxyState {
    /// Not registered (engine not connected).
    Idle,
    /// NewProxy sent, no answer yet.
    Pending,
    /// The server opened `remote_addr`.
    Running {
        /// As the server reported it (":6000").
        remote_addr: String,
    },
    /// The server refused it.
    Error {
        /// The server's reason.
        reason: String,
    },
}

/// A proxy's state and counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatus {
    /// Its state.
    #[serde(flatten)]
    pub state: ProxyState,
    /// Bytes from visitors to the local service.
    pub bytes_in: u64,
    /// Bytes from the local service to visitors.
    pub bytes_out: u64,
    /// Connections (or UDP work connections) served.
    pub conns: u64,
}

impl ProxyStatus {
    /// Not registered, no traffic yet.
    pub fn idle() -> ProxyStatus {
        ProxyStatus { state: ProxyState::Idle, bytes_in: 0, bytes_out: 0, conns: 0 }
    }
}

/// Everything the shells show.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The connection.
    pub conn: ConnState,
    /// Proxies by configured name.
    pub proxies: BTreeMap<String, ProxyStatus>,
}

impl Status {
    /// A status with every proxy idle and the connection down.
    pub fn new(names: impl Iterator<Item = String>) -> Status {
        Status { conn: ConnState::Disconnected, proxies: names.map(|n| (n, ProxyStatus::idle())).collect() }
    }

    /// Whether the engine is logged in.
    pub fn is_connected(&self) -> bool {
        matches!(self.conn, ConnState::Connected { .. })
    }
}
