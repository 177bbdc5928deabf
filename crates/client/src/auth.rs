//! What the client presents: privilege keys for Login, Ping and NewWorkConn — an md5 of `auth.token` and the
//! timestamp (token auth), or an OIDC access token (cached, renewed before expiry).

use std::sync::Arc;

use portway_proto::auth::privilege_key;

use crate::oidc::{OidcError, TokenSource};
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
    /// `auth.method = "oidc"`.
    Oidc {
        /// The cached token source.
        source: Arc<TokenSource>,
        /// Pings carry the token (`HeartBeats` scope).
        heartbeats: bool,
        /// NewWorkConn carries the token (`NewWorkConns` scope).
        work_conns: bool,
    },
}

/// Why credentials could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Token endpoint failures.
    #[error(transparent)]
    Oidc(#[from] OidcError),
}

impl ClientAuth {
    /// The privilege key for a Login at `timestamp`.
    pub async fn login_key(&self, timestamp: i64) -> Result<String, ClientAuthError> {
        match self {
            ClientAuth::Token { token, .. } => Ok(privilege_key(token.expose(), timestamp)),
            ClientAuth::Oidc { source, .. } => Ok(source.token().await?.expose().to_string()),
        }
    }

    /// The privilege key for a Ping (empty when not in scope).
    pub async fn ping_key(&self, timestamp: i64) -> Result<String, ClientAuthError> {
        match self {
            ClientAuth::Token { heartbeats: false, .. } | ClientAuth::Oidc { heartbeats: false, .. } => {
                Ok(String::new())
            }
            _ => self.login_key(timestamp).await,
        }
    }

    /// The privilege key for a NewWorkConn (empty when not in scope).
    pub async fn work_conn_key(&self, timestamp: i64) -> Result<String, ClientAuthError> {
        match self {
            ClientAuth::Token { work_conns: false, .. } | ClientAuth::Oidc { work_conns: false, .. } => {
                Ok(String::new())
            }
            _ => self.login_key(timestamp).await,
        }
    }
}

/// Seconds since the epoch, as frp's timestamps.
pub fn now_ts() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
