//! Verifying what clients present: privilege keys (token auth) or access tokens (OIDC) on Login, and on Ping
//! and NewWorkConn when `auth.additionalScopes` asks.
//!
//! With OIDC the identity verified at Login is bound to that session: later tokens on the same session must carry
//! the same subject (frps instead keeps one global set of subjects for all sessions).

use std::sync::Arc;

use portway_proto::auth::verify_privilege_key;

use crate::oidc::{OidcError, OidcVerifier};

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
    /// The token's `sub` (OIDC); empty with token auth.
    pub subject: String,
    /// The token's `azp` / `client_id` (OIDC); empty with token auth.
    pub client_id: String,
    /// The token's `exp` (OIDC), 0 with token auth.
    pub expires_at: i64,
}

/// Why credentials were refused. Messages go back to the client, so they never contain secrets.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Token auth: wrong `auth.token`.
    #[error("authorization failed: the client's auth.token does not match the server's auth.token")]
    TokenMismatch,
    /// OIDC refusal.
    #[error(transparent)]
    Oidc(#[from] OidcError),
    /// A later token of the session names someone else.
    #[error("the token's subject {got:?} is not the subject {expected:?} this session logged in as")]
    SubjectChanged {
        /// At login.
        expected: String,
        /// Now.
        got: String,
    },
}

/// The server's authentication method.
#[derive(Clone)]
pub enum Authenticator {
    /// `auth.method = "token"`.
    Token {
        /// `auth.token`.
        token: String,
        /// `auth.additionalScopes`.
        scopes: Scopes,
    },
    /// `auth.method = "oidc"`.
    Oidc {
        /// Discovery, keys, verification.
        verifier: Arc<OidcVerifier>,
        /// `auth.additionalScopes`.
        scopes: Scopes,
    },
}

impl Authenticator {
    /// Verifies a Login's privilege key (an access token with OIDC).
    pub async fn verify_login(&self, privilege_key: &str, timestamp: i64) -> Result<Identity, AuthError> {
        match self {
            Authenticator::Token { token, .. } => {
                if verify_privilege_key(token, timestamp, privilege_key) {
                    Ok(Identity::default())
                } else {
                    Err(AuthError::TokenMismatch)
                }
            }
            Authenticator::Oidc { verifier, .. } => {
                let c = verifier.verify(privilege_key).await?;
                Ok(Identity { subject: c.subject, client_id: c.client_id, expires_at: c.expires_at })
            }
        }
    }

    /// Verifies a Ping (only when `HeartBeats` is in scope). Returns the new token expiry, if any.
    pub async fn verify_ping(
        &self,
        privilege_key: &str,
        timestamp: i64,
        who: &Identity,
    ) -> Result<Option<i64>, AuthError> {
        self.verify_scoped(privilege_key, timestamp, who, |s| s.heartbeats).await
    }

    /// Verifies a NewWorkConn (only when `NewWorkConns` is in scope). Returns the new token expiry, if any.
    pub async fn verify_work_conn(
        &self,
        privilege_key: &str,
        timestamp: i64,
        who: &Identity,
    ) -> Result<Option<i64>, AuthError> {
        self.verify_scoped(privilege_key, timestamp, who, |s| s.new_work_conns).await
    }

    async fn verify_scoped(
        &self,
        privilege_key: &str,
        timestamp: i64,
        who: &Identity,
        in_scope: impl Fn(&Scopes) -> bool,
    ) -> Result<Option<i64>, AuthError> {
        match self {
            Authenticator::Token { token, scopes } => {
                if !in_scope(scopes) || verify_privilege_key(token, timestamp, privilege_key) {
                    Ok(None)
                } else {
                    Err(AuthError::TokenMismatch)
                }
            }
            Authenticator::Oidc { verifier, scopes } => {
                if !in_scope(scopes) {
                    return Ok(None);
                }
                // Boxed: inline, the verifier's future (a JWKS fetch) would make every work connection's task as
                // large as itself, although token auth never awaits it.
                let c = Box::pin(verifier.verify(privilege_key)).await?;
                if c.subject != who.subject {
                    return Err(AuthError::SubjectChanged { expected: who.subject.clone(), got: c.subject });
                }
                Ok(Some(c.expires_at))
            }
        }
    }
}
