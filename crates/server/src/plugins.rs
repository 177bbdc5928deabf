//! frp's server plugins (`[[httpPlugins]]`): before Login, NewProxy, Ping, NewWorkConn and a public user
//! connection the server POSTs the operation's content as JSON to each plugin that lists the op, in config order;
//! a plugin rejects (the reason goes to the client), keeps the content, or replaces it for the plugins after it
//! and for the server. CloseProxy is a notification. The protocol is frp's, version 0.1.0:
//! `POST {addr}{path}?version=0.1.0&op=Login`, body `{"version","op","content"}`, answer
//! `{"reject","reject_reason","unchange","content"}`.
//!
//! Portway adds the verified OIDC identity to the user metadata (`user.metas` of every op but Login, and the
//! Login content's `metas`): [`META_OIDC_SUBJECT`] and [`META_OIDC_CLIENT_ID`]. Keys of that prefix a client
//! sends itself are removed first, so a plugin can trust them.

use std::sync::Arc;
use std::time::Duration;

use portway_proto::msg::{CloseProxy, Login, NewProxy, NewWorkConn, Ping, StrMap};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::config::HttpPluginConfig;

/// frp's plugin protocol version, sent in the query and the body.
pub const API_VERSION: &str = "0.1.0";
/// User-metadata key holding the OIDC token's `sub` (absent with token auth).
pub const META_OIDC_SUBJECT: &str = "portway.oidc.sub";
/// User-metadata key holding the OIDC token's `azp` / `client_id` (absent with token auth or when the token has
/// none).
pub const META_OIDC_CLIENT_ID: &str = "portway.oidc.client_id";
/// Prefix of the metadata keys only the server sets.
const RESERVED_META_PREFIX: &str = "portway.oidc.";

/// Why a plugin did not let an operation through. The text goes to the client as frp words it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PluginError {
    /// A plugin answered `reject: true`; its `reject_reason`.
    #[error("{0}")]
    Rejected(String),
    /// A plugin could not be reached, timed out, answered a non-200 status or unreadable JSON (details in the
    /// server log, not sent to the client).
    #[error("send {0} request to plugin error")]
    Failed(&'static str),
}

/// `user` in every content but Login's: who owns the session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserInfo {
    /// frp's `user`.
    pub user: String,
    /// The Login's `metas`, plus Portway's OIDC keys.
    pub metas: StrMap,
    /// The session's run id.
    pub run_id: String,
}

/// Login's content: the Login message and the client's address.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LoginContent {
    /// The message, flattened.
    #[serde(flatten)]
    pub login: Login,
    /// `ip:port` of the client's connection.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_address: String,
}

/// NewProxy's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NewProxyContent {
    /// The owner.
    pub user: UserInfo,
    /// The message, flattened.
    #[serde(flatten)]
    pub new_proxy: NewProxy,
}

/// CloseProxy's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CloseProxyContent {
    /// The owner.
    pub user: UserInfo,
    /// The message, flattened.
    #[serde(flatten)]
    pub close_proxy: CloseProxy,
}

/// Ping's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PingContent {
    /// The session.
    pub user: UserInfo,
    /// The message, flattened.
    #[serde(flatten)]
    pub ping: Ping,
}

/// NewWorkConn's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NewWorkConnContent {
    /// The session.
    pub user: UserInfo,
    /// The message, flattened.
    #[serde(flatten)]
    pub new_work_conn: NewWorkConn,
}

/// NewUserConn's content: a visitor connected to a proxy's public side.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NewUserConnContent {
    /// The proxy's owner.
    pub user: UserInfo,
    /// The proxy.
    pub proxy_name: String,
    /// Its type.
    pub proxy_type: String,
    /// The visitor's `ip:port`.
    pub remote_addr: String,
}

#[derive(Serialize)]
struct Request<'a, T> {
    version: &'static str,
    op: &'static str,
    content: &'a T,
}

#[derive(Deserialize)]
#[serde(default)]
struct Response<T> {
    reject: bool,
    reject_reason: String,
    unchange: bool,
    content: Option<T>,
}

impl<T> Default for Response<T> {
    fn default() -> Self {
        Response { reject: false, reject_reason: String::new(), unchange: false, content: None }
    }
}

/// Why one call failed (logged, never sent to the client).
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("the plugin answered HTTP {0} (frp accepts 200 only)")]
    Status(u16),
    #[error("the plugin's answer is not frp's plugin JSON: {0}")]
    Json(serde_json::Error),
}

struct HttpPlugin {
    name: String,
    url: String,
    ops: Vec<String>,
    client: reqwest::Client,
}

impl HttpPlugin {
    async fn call<T: Serialize + DeserializeOwned>(
        &self,
        op: &'static str,
        content: &T,
        reqid: &str,
    ) -> Result<Response<T>, CallError> {
        let body = Request { version: API_VERSION, op, content };
        let resp = self
            .client
            .post(&self.url)
            .query(&[("version", API_VERSION), ("op", op)])
            .header("X-Frp-Reqid", reqid)
            .json(&body)
            .send()
            .await?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(CallError::Status(resp.status().as_u16()));
        }
        let bytes = resp.bytes().await?;
        serde_json::from_slice(&bytes).map_err(CallError::Json)
    }
}

/// A plugin's client could not be built (TLS backend).
#[derive(Debug, thiserror::Error)]
#[error("httpPlugins {name:?}: cannot build its HTTP client: {source}")]
pub struct PluginSetupError {
    name: String,
    source: reqwest::Error,
}

/// The configured plugins.
#[derive(Clone, Default)]
pub struct Plugins {
    plugins: Arc<Vec<HttpPlugin>>,
}

impl Plugins {
    /// One HTTP client per plugin; each request is cut after `timeout`.
    pub fn new(cfg: &[HttpPluginConfig], timeout: Duration) -> Result<Plugins, PluginSetupError> {
        let mut plugins = Vec::with_capacity(cfg.len());
        for p in cfg {
            let raw = format!("{}{}", p.addr, p.path);
            let https = raw.starts_with("https://");
            let url = if https || raw.starts_with("http://") { raw } else { format!("http://{raw}") };
            // Plugins usually sit next to the server: no HTTP(S)_PROXY from the environment.
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .no_proxy()
                .danger_accept_invalid_certs(https && !p.tls_verify)
                .build()
                .map_err(|source| PluginSetupError { name: p.name.clone(), source })?;
            plugins.push(HttpPlugin { name: p.name.clone(), url, ops: p.ops.clone(), client });
        }
        Ok(Plugins { plugins: Arc::new(plugins) })
    }

    /// Whether any plugin handles `op` (so callers skip building content nobody reads).
    pub fn handles(&self, op: &str) -> bool {
        self.plugins.iter().any(|p| p.ops.iter().any(|o| o == op))
    }

    /// Runs `content` through each plugin of `op` in order: reject stops, unchange keeps, content replaces.
    async fn run<T: Serialize + DeserializeOwned>(&self, op: &'static str, mut content: T) -> Result<T, PluginError> {
        let reqid = hex::encode(rand::random::<[u8; 8]>());
        for p in self.plugins.iter().filter(|p| p.ops.iter().any(|o| o == op)) {
            let res = p.call(op, &content, &reqid).await.map_err(|e| {
                warn!(plugin = %p.name, url = %p.url, op, reqid = %reqid, error = %e, "server plugin request failed; operation refused");
                PluginError::Failed(op)
            })?;
            if res.reject {
                info!(plugin = %p.name, op, reqid = %reqid, reason = %res.reject_reason, "server plugin rejected the operation");
                return Err(PluginError::Rejected(res.reject_reason));
            }
            match res.content {
                // frp replaces the content whenever `unchange` is false; an answer without content is taken as
                // "keep" here rather than as an empty message.
                Some(c) if !res.unchange => {
                    debug!(plugin = %p.name, op, reqid = %reqid, "server plugin changed the content");
                    content = c;
                }
                _ => {}
            }
        }
        Ok(content)
    }

    /// Login: the message (with the OIDC keys in its metas) and the client's address.
    pub async fn login(&self, content: LoginContent) -> Result<LoginContent, PluginError> {
        self.run("Login", content).await
    }

    /// NewProxy.
    pub async fn new_proxy(&self, content: NewProxyContent) -> Result<NewProxyContent, PluginError> {
        self.run("NewProxy", content).await
    }

    /// Ping.
    pub async fn ping(&self, content: PingContent) -> Result<PingContent, PluginError> {
        self.run("Ping", content).await
    }

    /// NewWorkConn.
    pub async fn new_work_conn(&self, content: NewWorkConnContent) -> Result<NewWorkConnContent, PluginError> {
        self.run("NewWorkConn", content).await
    }

    /// NewUserConn.
    pub async fn new_user_conn(&self, content: NewUserConnContent) -> Result<NewUserConnContent, PluginError> {
        self.run("NewUserConn", content).await
    }

    /// CloseProxy: every plugin of the op is told, whatever the others answer; answers are ignored.
    pub async fn close_proxy(&self, content: CloseProxyContent) {
        let reqid = hex::encode(rand::random::<[u8; 8]>());
        for p in self.plugins.iter().filter(|p| p.ops.iter().any(|o| o == "CloseProxy")) {
            if let Err(e) = p.call::<CloseProxyContent>("CloseProxy", &content, &reqid).await {
                warn!(plugin = %p.name, url = %p.url, op = "CloseProxy", reqid = %reqid, error = %e, "server plugin request failed");
            }
        }
    }
}

/// `metas` without the keys only the server may set, then with the identity's.
pub fn identity_metas(mut metas: StrMap, subject: &str, client_id: &str) -> StrMap {
    metas.retain(|k, _| !k.starts_with(RESERVED_META_PREFIX));
    if !subject.is_empty() {
        metas.insert(META_OIDC_SUBJECT.into(), subject.into());
    }
    if !client_id.is_empty() {
        metas.insert(META_OIDC_CLIENT_ID.into(), client_id.into());
    }
    metas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_serialize_as_frp_flattened_with_user() {
        let np = NewProxyContent {
            user: UserInfo { user: "u".into(), metas: StrMap::new(), run_id: "r".into() },
            new_proxy: NewProxy {
                proxy_name: "u.web".into(),
                proxy_type: "tcp".into(),
                remote_port: 6000,
                ..Default::default()
            },
        };
        let v = serde_json::to_value(&np).unwrap_or_default();
        assert_eq!(v["user"]["run_id"], "r");
        assert_eq!(v["user"]["metas"], serde_json::json!({}));
        assert_eq!(v["proxy_name"], "u.web");
        assert_eq!(v["remote_port"], 6000);
        let back: NewProxyContent =
            serde_json::from_value(serde_json::json!({"user": {"user": "u"}, "proxy_name": "x", "remote_port": 7}))
                .unwrap_or_default();
        assert_eq!((back.new_proxy.proxy_name.as_str(), back.new_proxy.remote_port), ("x", 7));
        let l = LoginContent {
            login: Login { user: "u".into(), ..Default::default() },
            client_address: "1.2.3.4:5".into(),
        };
        let v = serde_json::to_value(&l).unwrap_or_default();
        assert_eq!((v["user"].as_str(), v["client_address"].as_str()), (Some("u"), Some("1.2.3.4:5")));
    }

    #[test]
    fn client_sent_oidc_metas_are_replaced_by_the_verified_ones() {
        let mut m = StrMap::new();
        m.insert("portway.oidc.sub".into(), "forged".into());
        m.insert("portway.oidc.other".into(), "forged".into());
        m.insert("team".into(), "a".into());
        let m = identity_metas(m, "alice", "");
        assert_eq!(m.get(META_OIDC_SUBJECT).map(String::as_str), Some("alice"));
        assert!(!m.contains_key(META_OIDC_CLIENT_ID) && !m.contains_key("portway.oidc.other"));
        assert_eq!(m.get("team").map(String::as_str), Some("a"));
    }
}
