//! OAuth2 client_credentials against an OIDC provider (authentik, Keycloak, ...), as frpc's `auth.method = "oidc"`.
//!
//! The token is cached and renewed shortly before it expires, never fetched per heartbeat (authentik records a
//! login event per token issued). Client authentication tries HTTP Basic first, then form fields if the provider
//! refuses Basic, as golang.org/x/oauth2 does, and remembers what worked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::CoreErrorResponseType;
use openidconnect::{AuthType, ClientId, ClientSecret, OAuth2TokenResponse, RequestTokenError, Scope, TokenUrl};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::config::OidcClientConfig;
use crate::secret::Secret;

/// Renew when less than this much lifetime is left (frp v0.68+: 10 s); a longer margin for long tokens.
const MIN_RENEW_MARGIN: Duration = Duration::from_secs(10);

/// Why no token could be obtained, worded so a person can act on it. Never contains the secret.
#[derive(Debug, thiserror::Error, Clone)]
pub enum OidcError {
    /// Config problem.
    #[error("auth.oidc.tokenEndpointURL {url:?} is not a valid URL: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// TLS / CA / proxy setup.
    #[error("cannot set up HTTPS for the token endpoint: {0}")]
    Setup(String),
    /// Network or TLS failure.
    #[error("cannot reach the token endpoint {url}: {reason} (check auth.oidc.tokenEndpointURL, the network, auth.oidc.trustedCaFile or auth.oidc.proxyURL)")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// `invalid_client`.
    #[error("the provider does not accept client ID {client_id:?} (invalid_client{}): check auth.oidc.clientID and auth.oidc.clientSecret", desc(.description))]
    InvalidClient {
        /// The client id (not secret).
        client_id: String,
        /// error_description.
        description: String,
    },
    /// `invalid_grant` (authentik's answer to a wrong secret or a policy denial).
    #[error("the provider rejected the client secret, or its policy denies this client (invalid_grant{}): check auth.oidc.clientSecret and the application's policies", desc(.description))]
    InvalidGrant {
        /// error_description.
        description: String,
    },
    /// Any other OAuth error.
    #[error("the provider refused the token request: {error}{}", desc(.description))]
    Provider {
        /// error code.
        error: String,
        /// error_description.
        description: String,
    },
    /// A response that is not a token response.
    #[error("the token endpoint answered something that is not an OAuth2 token response: {0}")]
    BadResponse(String),
    /// `auth.oidc.tokenSource`: the file cannot be read or is empty.
    #[error("cannot take the access token from {path} (auth.oidc.tokenSource.file.path): {reason}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

fn desc(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(": {d}")
    }
}

#[derive(Clone)]
struct Cached {
    token: Secret,
    renew_at: Instant,
    expires_at: Instant,
}

/// Fetches and caches access tokens.
pub struct TokenSource {
    cfg: OidcClientConfig,
    secret: Secret,
    /// `None` with `auth.oidc.tokenSource` (no request is made).
    url: Option<TokenUrl>,
    http: reqwest::Client,
    cached: Mutex<Option<Cached>>,
    use_form: AtomicBool,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("client_id", &self.cfg.client_id)
            .field("url", &self.url.as_ref().map(|u| u.as_str()))
            .field("token_file", &self.cfg.token_file())
            .finish()
    }
}

impl TokenSource {
    /// Prepares a token source (no request yet). `secret` is the client secret.
    /// `dns`: where the token endpoint's host is looked up (`dnsServer`).
    pub fn new(cfg: &OidcClientConfig, secret: Secret, dns: crate::dns::Resolver) -> Result<TokenSource, OidcError> {
        let url = match cfg.token_file() {
            Some(_) => None,
            None => Some(
                TokenUrl::new(cfg.token_endpoint_url.clone())
                    .map_err(|e| OidcError::BadUrl { url: cfg.token_endpoint_url.clone(), reason: e.to_string() })?,
            ),
        };
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            // OAuth2 token requests must not follow redirects (the oauth2 crate's advice: SSRF).
            .redirect(reqwest::redirect::Policy::none());
        if dns != crate::dns::Resolver::System {
            b = b.dns_resolver(std::sync::Arc::new(dns));
        }
        if !cfg.trusted_ca_file.is_empty() {
            let pem = std::fs::read(&cfg.trusted_ca_file).map_err(|e| {
                OidcError::Setup(format!("cannot read auth.oidc.trustedCaFile {}: {e}", cfg.trusted_ca_file))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                OidcError::Setup(format!(
                    "auth.oidc.trustedCaFile {} is not a PEM certificate: {e}",
                    cfg.trusted_ca_file
                ))
            })?;
            b = b.add_root_certificate(cert);
        }
        if cfg.insecure_skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        if !cfg.proxy_url.is_empty() {
            let p = reqwest::Proxy::all(&cfg.proxy_url)
                .map_err(|e| OidcError::Setup(format!("auth.oidc.proxyURL {:?}: {e}", cfg.proxy_url)))?;
            b = b.proxy(p);
        }
        let http = b.build().map_err(|e| OidcError::Setup(e.to_string()))?;
        Ok(TokenSource {
            cfg: cfg.clone(),
            secret,
            url,
            http,
            cached: Mutex::new(None),
            use_form: AtomicBool::new(false),
            fetches: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many tokens were fetched from the provider so far.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// A valid access token: the cached one, or a fresh one when it is close to expiry.
    pub async fn token(&self) -> Result<Secret, OidcError> {
        if let Some(path) = self.cfg.token_file() {
            // Read each time, as frpc: whatever writes the file (a sidecar, a workload identity) renews it.
            return read_token_file(path).await.map(|(t, _)| t);
        }
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if Instant::now() < c.renew_at {
                return Ok(c.token.clone());
            }
        }
        let (token, lifetime) = match self.fetch().await {
            Ok(t) => t,
            Err(e) => {
                // The provider is down but the cached token is still valid: keep using it until it expires.
                if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.expires_at) {
                    tracing::warn!(error = %e, "token renewal failed; using the cached token until it expires");
                    return Ok(c.token.clone());
                }
                return Err(e);
            }
        };
        let margin = (lifetime / 10).max(MIN_RENEW_MARGIN).min(lifetime / 2);
        let now = Instant::now();
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: now + lifetime.saturating_sub(margin),
            expires_at: now + lifetime,
        });
        Ok(token)
    }

    /// Fetches a new token, bypassing the cache. Returns it and its lifetime.
    pub async fn fetch(&self) -> Result<(Secret, Duration), OidcError> {
        if let Some(path) = self.cfg.token_file() {
            return read_token_file(path).await;
        }
        let form_first = self.use_form.load(Ordering::Relaxed);
        match self.request(form_first).await {
            Err(OidcError::InvalidClient { .. }) if !form_first => {
                // Some providers only take credentials in the form body.
                let r = self.request(true).await;
                if r.is_ok() {
                    self.use_form.store(true, Ordering::Relaxed);
                }
                r
            }
            r => r,
        }
    }

    async fn request(&self, form: bool) -> Result<(Secret, Duration), OidcError> {
        let Some(url) = self.url.clone() else {
            return Err(OidcError::Setup("no auth.oidc.tokenEndpointURL".into()));
        };
        let client = openidconnect::core::CoreClient::new(
            ClientId::new(self.cfg.client_id.clone()),
            openidconnect::IssuerUrl::new("https://unused.invalid/".into())
                .map_err(|e| OidcError::Setup(e.to_string()))?,
            openidconnect::JsonWebKeySet::default(),
        )
        .set_client_secret(ClientSecret::new(self.secret.expose().to_string()))
        .set_auth_type(if form { AuthType::RequestBody } else { AuthType::BasicAuth })
        .set_token_uri(url.clone());
        let mut req = client.exchange_client_credentials();
        for s in self.cfg.scope.split([' ', ',']).filter(|s| !s.is_empty()) {
            req = req.add_scope(Scope::new(s.to_string()));
        }
        if !self.cfg.audience.is_empty() {
            req = req.add_extra_param("audience", self.cfg.audience.clone());
        }
        for (k, v) in &self.cfg.additional_endpoint_params {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        debug!(url = %url.as_str(), client_id = %self.cfg.client_id, form, "requesting an access token");
        let resp = req.request_async(&self.http).await.map_err(|e| self.map_error(e))?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let lifetime = resp.expires_in().unwrap_or(Duration::from_secs(300));
        info!(client_id = %self.cfg.client_id, expires_in = ?lifetime, "access token obtained");
        Ok((Secret::new(resp.access_token().secret().clone()), lifetime))
    }

    fn map_error<RE: std::error::Error + 'static>(
        &self,
        e: RequestTokenError<RE, openidconnect::StandardErrorResponse<CoreErrorResponseType>>,
    ) -> OidcError {
        match e {
            RequestTokenError::ServerResponse(r) => {
                let description = r.error_description().cloned().unwrap_or_default();
                match r.error() {
                    CoreErrorResponseType::InvalidClient => {
                        OidcError::InvalidClient { client_id: self.cfg.client_id.clone(), description }
                    }
                    CoreErrorResponseType::InvalidGrant => OidcError::InvalidGrant { description },
                    other => OidcError::Provider { error: other.as_ref().to_string(), description },
                }
            }
            RequestTokenError::Request(e) => {
                let mut reason = e.to_string();
                let mut src = e.source();
                while let Some(s) = src {
                    reason = format!("{reason}: {s}");
                    src = s.source();
                }
                let url = self.url.as_ref().map(|u| u.as_str().to_string()).unwrap_or_default();
                OidcError::Unreachable { url, reason }
            }
            RequestTokenError::Parse(e, body) => {
                let snippet: String = String::from_utf8_lossy(&body).chars().take(200).collect();
                OidcError::BadResponse(format!("{e}; body starts with {snippet:?}"))
            }
            RequestTokenError::Other(s) => OidcError::BadResponse(s),
        }
    }
}

/// `auth.oidc.tokenSource`'s file: its content, trimmed, and the token's remaining lifetime (from its `exp`
/// claim; zero when it has none).
async fn read_token_file(path: &str) -> Result<(Secret, Duration), OidcError> {
    let err = |reason: String| OidcError::TokenFile { path: path.to_string(), reason };
    let text = tokio::fs::read_to_string(path).await.map_err(|e| err(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(err("the file is empty".into()));
    }
    let exp = describe(token, Duration::ZERO).expires_at;
    let left = exp.saturating_sub(crate::auth::now_ts()).max(0) as u64;
    Ok((Secret::new(token), Duration::from_secs(left)))
}

/// What a token says about itself, for `portway-client token` and the app's "Test sign-in" (never the token).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `aud`.
    pub audience: Vec<String>,
    /// `azp` / `client_id`.
    pub client_id: String,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
    /// Seconds of validity left at fetch time.
    pub expires_in: u64,
    /// `scope`.
    pub scope: String,
    /// JWS `alg`.
    pub algorithm: String,
}

/// Reads the unverified header and claims of a JWT access token.
pub fn describe(token: &str, expires_in: Duration) -> TokenInfo {
    let mut parts = token.split('.');
    let header = parts.next().and_then(decode_json);
    let claims = parts.next().and_then(decode_json).unwrap_or_default();
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let audience = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => vec![a.clone()],
        Some(serde_json::Value::Array(v)) => v.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        _ => vec![],
    };
    TokenInfo {
        issuer: s("iss"),
        subject: s("sub"),
        audience,
        client_id: if s("azp").is_empty() { s("client_id") } else { s("azp") },
        expires_at: claims.get("exp").and_then(|v| v.as_f64()).unwrap_or(0.0) as i64,
        expires_in: expires_in.as_secs(),
        scope: s("scope"),
        algorithm: header.and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(String::from)).unwrap_or_default(),
    }
}

fn decode_json(part: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// Fetches one token with `cfg` and describes it: the "Test sign-in" function.
pub async fn test_sign_in(
    cfg: &OidcClientConfig,
    secret: Secret,
    dns: crate::dns::Resolver,
) -> Result<TokenInfo, OidcError> {
    let src = TokenSource::new(cfg, secret, dns)?;
    let (token, lifetime) = src.fetch().await?;
    Ok(describe(token.expose(), lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_reads_claims_without_the_token() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k"}"#);
        let c = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://a/application/o/frp/","sub":"s","aud":"c","azp":"c","exp":1800000000,"scope":"openid"}"#);
        let info = describe(&format!("{h}.{c}.sig"), Duration::from_secs(3600));
        assert_eq!(info.issuer, "https://a/application/o/frp/");
        assert_eq!(info.audience, vec!["c".to_string()]);
        assert_eq!(info.algorithm, "RS256");
        assert_eq!(info.expires_at, 1_800_000_000);
        assert!(!format!("{info:?}").contains("sig"));
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = OidcClientConfig {
            client_id: "c".into(),
            token_endpoint_url: format!("http://127.0.0.1:{port}/application/o/token/"),
            ..Default::default()
        };
        let e = test_sign_in(&cfg, Secret::new("super-secret"), Default::default()).await.unwrap_err().to_string();
        assert!(
            e.contains(&format!("cannot reach the token endpoint http://127.0.0.1:{port}/application/o/token/")),
            "{e}"
        );
        assert!(!e.contains("super-secret"));
        let bad = OidcClientConfig { token_endpoint_url: "not a url".into(), ..cfg };
        assert!(matches!(TokenSource::new(&bad, Secret::default(), Default::default()), Err(OidcError::BadUrl { .. })));
    }
}
