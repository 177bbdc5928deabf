//! What the client presents: privilege keys for Login, Ping and NewWorkConn.

use portway_proto::auth::privilege_key;

use crate::secret::Secret;

/// The client's authentication method, ready to sign messages.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// `auth.method = "token"`.
    Token {
        /// `auth.token`.
        token: Secret,
        /// Pings carry the key (`HeartBeats` scope).
        heartbeats: bool,
        /// NewWorkConn carries the key (`NewWorkConns` scope).
        work_conns: bool,
    },
}

/// Why credentials could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Placeholder for token-endpoint failures (OIDC).
    #[error("{0}")]
    Provider(String),
}

impl ClientAuth {
    /// The privilege key for a Login at `timestamp`.
    pub async fn login_key(&self, timestamp: i64) -> Result<String, ClientAuthError> {
        match self {
            ClientAuth::Token { token, .. } => Ok(privilege_key(token.expose(), timestamp)),
        }
    }

    /// The privilege key for a Ping (empty when not in scope).
    pub async fn ping_key(&self, timestamp: i64) -> Result<String, ClientAuthError> {
        match self {
            ClientAuth::Token {
                token, heartbeats, ..
            } => Ok(if *heartbeats {
                privilege_key(token.expose(), timestamp)
            } else {
                String::new()
            }),
        }
    }

    /// The privilege key for a NewWorkConn (empty when not in scope).
    pub async fn work_conn_key(&self, timestamp: i64) -> Result<String, ClientAuthError> {
        match self {
            ClientAuth::Token {
                token, work_conns, ..
            } => Ok(if *work_conns {
                privilege_key(token.expose(), timestamp)
            } else {
                String::new()
            }),
        }
    }
}

/// Seconds since the epoch, as frp's timestamps.
pub fn now_ts() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
