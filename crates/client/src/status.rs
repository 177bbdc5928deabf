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

/// One visitor's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum VisitorState {
    /// Not listening (engine not connected, or `bindPort = -1`).
    Idle,
    /// Listening on `local_addr` (what to open).
    Listening {
        /// `bindAddr:bindPort`.
        local_addr: String,
    },
    /// The local listener could not be opened.
    Error {
        /// Why, and what to do.
        reason: String,
    },
}

/// A visitor's state and counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VisitorStatus {
    /// Its state.
    #[serde(flatten)]
    pub state: VisitorState,
    /// The last refusal or failure of a visitor connection (wrong secretKey, unknown proxy, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Bytes from the provider's service to the local application.
    pub bytes_in: u64,
    /// Bytes from the local application to the provider's service.
    pub bytes_out: u64,
    /// Visitor connections opened.
    pub conns: u64,
    /// xtcp: how the last connection went (`"peer to peer"`, or `"via server (fallbackTo …)"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl VisitorStatus {
    /// Not listening, no traffic yet.
    pub fn idle() -> VisitorStatus {
        VisitorStatus { state: VisitorState::Idle, last_error: None, bytes_in: 0, bytes_out: 0, conns: 0, path: None }
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
    /// Visitors by configured name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub visitors: BTreeMap<String, VisitorStatus>,
}

impl Status {
    /// A status with every proxy idle and the connection down.
    pub fn new(names: impl Iterator<Item = String>) -> Status {
        Status {
            conn: ConnState::Disconnected,
            proxies: names.map(|n| (n, ProxyStatus::idle())).collect(),
            visitors: BTreeMap::new(),
        }
    }

    /// Whether the engine is logged in.
    pub fn is_connected(&self) -> bool {
        matches!(self.conn, ConnState::Connected { .. })
    }
}
