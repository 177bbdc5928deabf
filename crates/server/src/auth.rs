//! Verifying what clients present: privilege keys on Login, Ping and NewWorkConn.

use portway_proto::auth::verify_privilege_key;

/// Which messages carry credentials besides Login (`auth.additionalScopes`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Scopes {
    /// Pings carry a privilege key.
    pub heartbeats: bool,
    /// NewWorkConn carries a privilege key.
    pub new_work_conns: bool,
}

impl Scopes {
    /// From frp's `auth.additionalScopes` list.
    pub fn from_list(list: &[String]) -> Scopes {
        Scopes {
            heartbeats: list.iter().any(|s| s == "HeartBeats"),
            new_work_conns: list.iter().any(|s| s == "NewWorkConns"),
        }
    }
}

/// Who logged in, as far as the server can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The token's subject (OIDC) or empty (token auth).
    pub subject: String,
}

/// Why credentials were refused. Messages go back to the client, so they never contain secrets.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Token auth: wrong `auth.token`.
    #[error(
        "authorization failed: the client's auth.token does not match the server's auth.token"
    )]
    TokenMismatch,
}

/// The server's authentication method.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// `auth.method = "token"`.
    Token {
        /// `auth.token`.
        token: String,
        /// `auth.additionalScopes`.
        scopes: Scopes,
    },
}

impl Authenticator {
    /// Verifies a Login's privilege key.
    pub async fn verify_login(
        &self,
        privilege_key: &str,
        timestamp: i64,
    ) -> Result<Identity, AuthError> {
        match self {
            Authenticator::Token { token, .. } => {
                if verify_privilege_key(token, timestamp, privilege_key) {
                    Ok(Identity::default())
                } else {
                    Err(AuthError::TokenMismatch)
                }
            }
        }
    }

    /// Verifies a Ping (only when `HeartBeats` is in scope).
    pub async fn verify_ping(
        &self,
        privilege_key: &str,
        timestamp: i64,
        _who: &Identity,
    ) -> Result<(), AuthError> {
        match self {
            Authenticator::Token { token, scopes } => {
                if !scopes.heartbeats || verify_privilege_key(token, timestamp, privilege_key) {
                    Ok(())
                } else {
                    Err(AuthError::TokenMismatch)
                }
            }
        }
    }

    /// Verifies a NewWorkConn (only when `NewWorkConns` is in scope).
    pub async fn verify_work_conn(
        &self,
        privilege_key: &str,
        timestamp: i64,
        _who: &Identity,
    ) -> Result<(), AuthError> {
        match self {
            Authenticator::Token { token, scopes } => {
                if !scopes.new_work_conns || verify_privilege_key(token, timestamp, privilege_key) {
                    Ok(())
                } else {
                    Err(AuthError::TokenMismatch)
                }
            }
        }
    }
}
