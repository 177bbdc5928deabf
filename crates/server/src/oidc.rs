//! The OIDC side of the server: discovery, the JWKS cache and its refresh. Verification rules are in
//! [`crate::token`].
//!
//! Unlike frps, a provider that is down when the server starts does not stop it: discovery is retried in the
//! background with backoff, and logins are refused with a clear reason until it succeeds. A token naming an
//! unknown `kid` triggers a JWKS refetch (at most once per [`REFETCH_MIN_INTERVAL`]), so key rotation just works.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use openidconnect::core::CoreJsonWebKey;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::token::{self, Claims, TokenError, TokenPolicy};

/// Minimum time between two JWKS refetches caused by unknown key ids.
pub const REFETCH_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// HTTP timeout for discovery and JWKS requests.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a token could not be checked or was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum OidcError {
    /// Discovery has not succeeded yet.
    #[error("the server cannot verify OIDC tokens yet: its provider {issuer} is unreachable ({reason}); it keeps retrying, try again shortly")]
    ProviderUnavailable {
        /// The configured issuer.
        issuer: String,
        /// The last failure.
        reason: String,
    },
    /// The token was refused.
    #[error("OIDC token refused: {0}")]
    Token(#[from] TokenError),
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

struct Keys {
    jwks_uri: String,
    keys: Vec<CoreJsonWebKey>,
}

/// Discovery state plus the key cache for one issuer.
pub struct OidcVerifier {
    policy: TokenPolicy,
    http: reqwest::Client,
    keys: RwLock<Option<Keys>>,
    last_error: RwLock<String>,
    refetch: Mutex<Option<Instant>>,
    first_attempt: tokio::sync::watch::Sender<bool>,
}

impl OidcVerifier {
    /// Creates the verifier and starts background discovery (retrying with backoff until it succeeds or
    /// `cancel`).
    pub fn start(policy: TokenPolicy, cancel: CancellationToken) -> Arc<OidcVerifier> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        let v = Arc::new(OidcVerifier {
            policy,
            http,
            keys: RwLock::new(None),
            last_error: RwLock::new("discovery has not run yet".into()),
            refetch: Mutex::new(None),
            first_attempt: tokio::sync::watch::channel(false).0,
        });
        let v2 = v.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(500);
            loop {
                let r = v2.discover().await;
                v2.first_attempt.send_replace(true);
                match r {
                    Ok(n) => {
                        info!(issuer = %v2.policy.issuer, keys = n, "OIDC provider discovered");
                        return;
                    }
                    Err(e) => {
                        warn!(issuer = %v2.policy.issuer, error = %e, retry_in = ?delay, "OIDC discovery failed; logins are refused until it succeeds");
                        if let Ok(mut le) = v2.last_error.write() {
                            *le = e;
                        }
                    }
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        });
        v
    }

    /// Waits (at most `limit`) until the first discovery attempt has finished, successful or not.
    pub async fn first_attempt_done(&self, limit: Duration) {
        let mut rx = self.first_attempt.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|done| *done)).await;
    }

    /// Whether discovery succeeded.
    pub fn is_ready(&self) -> bool {
        self.keys.read().map(|k| k.is_some()).unwrap_or(false)
    }

    fn discovery_url(&self) -> String {
        // go-oidc's rule: issuer without its trailing slash + "/.well-known/openid-configuration".
        format!("{}/.well-known/openid-configuration", self.policy.issuer.trim_end_matches('/'))
    }

    async fn discover(&self) -> Result<usize, String> {
        let url = self.discovery_url();
        let d: Discovery = self.get_json(&url).await?;
        if d.issuer != self.policy.issuer && !self.policy.skip_issuer_check {
            return Err(format!(
                "the provider's discovery document names issuer {:?}, not the configured auth.oidc.issuer {:?}: they must match exactly (trailing slash included)",
                d.issuer, self.policy.issuer
            ));
        }
        let keys = self.fetch_keys(&d.jwks_uri).await?;
        let n = keys.len();
        if let Ok(mut k) = self.keys.write() {
            *k = Some(Keys { jwks_uri: d.jwks_uri, keys });
        }
        Ok(n)
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<T, String> {
        let r = self.http.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = r.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        r.json::<T>().await.map_err(|e| format!("GET {url}: unexpected document: {e}"))
    }

    async fn fetch_keys(&self, jwks_uri: &str) -> Result<Vec<CoreJsonWebKey>, String> {
        let set: Jwks = self.get_json(jwks_uri).await?;
        // Keys Portway cannot parse (other kty/crv) are skipped rather than failing the whole set.
        Ok(set.keys.into_iter().filter_map(|k| serde_json::from_value(k).ok()).collect())
    }

    fn current_keys(&self) -> Result<Vec<CoreJsonWebKey>, OidcError> {
        match self.keys.read().ok().and_then(|k| k.as_ref().map(|k| k.keys.clone())) {
            Some(k) => Ok(k),
            None => Err(OidcError::ProviderUnavailable {
                issuer: self.policy.issuer.clone(),
                reason: self.last_error.read().map(|e| e.clone()).unwrap_or_default(),
            }),
        }
    }

    /// Verifies an access token now, refetching the JWKS once when it names an unknown key.
    pub async fn verify(&self, token: &str) -> Result<Claims, OidcError> {
        let keys = self.current_keys()?;
        match token::verify(token, &keys, &self.policy, now()) {
            Err(TokenError::UnknownKey(kid)) => {
                if self.refetch_keys().await {
                    let keys = self.current_keys()?;
                    return Ok(token::verify(token, &keys, &self.policy, now())?);
                }
                Err(TokenError::UnknownKey(kid).into())
            }
            r => Ok(r?),
        }
    }

    /// Refetches the JWKS unless that happened within [`REFETCH_MIN_INTERVAL`]. True if new keys were loaded.
    async fn refetch_keys(&self) -> bool {
        let mut last = self.refetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < REFETCH_MIN_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        let Some(uri) = self.keys.read().ok().and_then(|k| k.as_ref().map(|k| k.jwks_uri.clone())) else {
            return false;
        };
        match self.fetch_keys(&uri).await {
            Ok(keys) => {
                info!(keys = keys.len(), "OIDC signing keys refetched (a token named an unknown key)");
                if let Ok(mut k) = self.keys.write() {
                    *k = Some(Keys { jwks_uri: uri, keys });
                }
                true
            }
            Err(e) => {
                warn!(error = %e, "JWKS refetch failed");
                false
            }
        }
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
