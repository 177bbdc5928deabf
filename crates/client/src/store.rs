//! frpc's store (`store.path`): proxies created through the admin API (`/api/store/*`), kept in a JSON file
//! `{"proxies":[…],"visitors":[…]}` beside the config and started with it. Each entry is frp's definition
//! shape `{"name","type","<type>":{…the proxy's keys, camelCase…}}`. Pure apart from [`Store::read`] and
//! [`Store::write`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{ClientConfig, ProxyConfig};

/// Why a store operation failed; [`StoreError::status`] is the HTTP status frpc answers with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `store.path` is not set.
    #[error("the store is disabled: set store.path in the client config to use /api/store")]
    Disabled,
    /// No such entry in the store.
    #[error("{kind} {name:?} not found in the store")]
    NotFound {
        /// "proxy" or "visitor".
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The name is taken (in the config file or the store).
    #[error("{kind} {name:?} already exists; choose another name")]
    Conflict {
        /// "proxy" or "visitor".
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The body is not a valid definition.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The store file could not be read or written.
    #[error("store file {file}: {message}")]
    Io {
        /// The path.
        file: String,
        /// What failed.
        message: String,
    },
}

impl StoreError {
    /// frpc's status for the error.
    pub fn status(&self) -> u16 {
        match self {
            StoreError::Disabled | StoreError::NotFound { .. } => 404,
            StoreError::Conflict { .. } => 409,
            StoreError::Invalid(_) => 400,
            StoreError::Io { .. } => 500,
        }
    }
}

/// The store file's content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreFile {
    /// Proxy definitions.
    pub proxies: Vec<Value>,
    /// Visitor definitions (kept; the store does not run them yet: visitors come from the config file).
    pub visitors: Vec<Value>,
}

/// A store at a path.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// The store of `cfg`, `None` when `store.path` is unset.
    pub fn of(cfg: &ClientConfig) -> Option<Store> {
        (!cfg.store.path.is_empty()).then(|| Store { path: PathBuf::from(&cfg.store.path) })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, message: String) -> StoreError {
        StoreError::Io { file: self.path.display().to_string(), message }
    }

    /// The file's content; a missing file is an empty store.
    pub fn read(&self) -> Result<StoreFile, StoreError> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| self.io(format!("not a store file: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreFile::default()),
            Err(e) => Err(self.io(e.to_string())),
        }
    }

    /// Replaces the file (written beside it, then renamed, so a crash leaves the old or the new one).
    pub fn write(&self, content: &StoreFile) -> Result<(), StoreError> {
        let text = serde_json::to_vec_pretty(content).map_err(|e| self.io(e.to_string()))?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| self.io(e.to_string()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e.to_string()))
    }

    /// [`Store::read`] off the async runtime's threads.
    pub async fn read_async(&self) -> Result<StoreFile, StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.read()).await.map_err(|e| self.io(e.to_string()))?
    }

    /// [`Store::write`] off the async runtime's threads.
    pub async fn write_async(&self, content: StoreFile) -> Result<(), StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.write(&content)).await.map_err(|e| self.io(e.to_string()))?
    }

    /// The stored proxies as configs (each validated as a `[[proxies]]` entry).
    pub fn proxies(&self) -> Result<Vec<ProxyConfig>, StoreError> {
        self.read()?.proxies.iter().map(proxy_from_definition).collect()
    }
}

/// frp's definition of a proxy: `{"name","type","<type>":{…}}`, with the keys frpc always writes there at their
/// empty values (`transport.bandwidthLimit`, `loadBalancer.group`, `healthCheck`, `plugin: null`), so tools made
/// for frpc find them.
pub fn definition(p: &ProxyConfig) -> Value {
    let mut block = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Some(b) = block.as_object_mut() {
        let obj = |b: &mut Map<String, Value>, k: &str| {
            if !b.get(k).is_some_and(Value::is_object) {
                b.insert(k.into(), Value::Object(Map::new()));
            }
        };
        obj(b, "transport");
        obj(b, "loadBalancer");
        if let Some(t) = b.get_mut("transport").and_then(Value::as_object_mut) {
            t.entry("bandwidthLimit").or_insert(Value::String(String::new()));
        }
        if let Some(l) = b.get_mut("loadBalancer").and_then(Value::as_object_mut) {
            l.entry("group").or_insert(Value::String(String::new()));
        }
        b.insert("healthCheck".into(), serde_json::json!({"type": "", "intervalSeconds": 0}));
        b.entry("plugin").or_insert(Value::Null);
    }
    let mut m = Map::new();
    m.insert("name".into(), Value::String(p.name.clone()));
    m.insert("type".into(), Value::String(p.kind.clone()));
    m.insert(p.kind.clone(), block);
    Value::Object(m)
}

/// A proxy from frp's definition, validated as a `[[proxies]]` entry of a client config would be.
pub fn proxy_from_definition(def: &Value) -> Result<ProxyConfig, StoreError> {
    let bad = |m: &str| StoreError::Invalid(m.to_string());
    let obj =
        def.as_object().ok_or_else(|| bad("the body must be a JSON object {\"name\",\"type\",\"<type>\":{…}}"))?;
    let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        return Err(bad("`name` is required"));
    }
    if kind.is_empty() {
        return Err(bad("`type` is required"));
    }
    let blocks: Vec<&String> = obj.keys().filter(|k| *k != "name" && *k != "type").collect();
    if blocks.len() != 1 || blocks[0] != kind {
        return Err(StoreError::Invalid(format!("give exactly one block, named after the type: \"{kind}\": {{…}}")));
    }
    let mut block =
        obj.get(kind).and_then(Value::as_object).cloned().ok_or_else(|| bad("the type block must be an object"))?;
    for (k, field) in [("name", name), ("type", kind)] {
        if let Some(v) = block.get(k).and_then(Value::as_str) {
            if v != field {
                return Err(StoreError::Invalid(format!("`{kind}.{k}` ({v:?}) differs from `{k}` ({field:?})")));
            }
        }
        block.insert(k.into(), Value::String(field.into()));
    }
    strip_frp_empty_keys(&mut block);
    // The same loader and validation as a file's `[[proxies]]` entry.
    let text = serde_json::to_string(&serde_json::json!({ "proxies": [block] })).map_err(|e| bad(&e.to_string()))?;
    let loaded = ClientConfig::parse_full(
        &text,
        "store.json",
        portway_config::Format::Json,
        crate::config::LoadOptions::default(),
        &|_| None,
        None,
    )
    .map_err(|e| StoreError::Invalid(e.to_string().replace("store.json: ", "")))?;
    loaded.config.proxies.into_iter().next().ok_or_else(|| bad("the proxy is disabled (`enabled = false`)"))
}

/// Drops what [`definition`] (and frpc) write as "not set": null values, an empty `transport.bandwidthLimit`,
/// frp's default `bandwidthLimitMode = "client"`, an empty `loadBalancer.group`, a `healthCheck` without a type.
fn strip_frp_empty_keys(block: &mut Map<String, Value>) {
    block.retain(|_, v| !v.is_null());
    let empty = |v: Option<&Value>, default: &str| v.and_then(Value::as_str).is_some_and(|s| s == default);
    if let Some(t) = block.get_mut("transport").and_then(Value::as_object_mut) {
        if empty(t.get("bandwidthLimit"), "") {
            t.remove("bandwidthLimit");
        }
        if empty(t.get("bandwidthLimitMode"), "client") {
            t.remove("bandwidthLimitMode");
        }
    }
    if let Some(l) = block.get_mut("loadBalancer").and_then(Value::as_object_mut) {
        if empty(l.get("group"), "") {
            l.remove("group");
        }
    }
    if block.get("healthCheck").is_some_and(|h| empty(h.get("type"), "")) {
        block.remove("healthCheck");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_round_trip_and_bad_ones_say_why() {
        let def = serde_json::json!({"name": "s", "type": "tcp", "tcp": {"localIP": "127.0.0.1", "localPort": 80, "remotePort": 6000}});
        let p = proxy_from_definition(&def).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.name.as_str(), p.kind.as_str(), p.local_port, p.remote_port), ("s", "tcp", 80, 6000));
        let back = definition(&p);
        assert_eq!(back["tcp"]["localPort"], 80);
        assert_eq!(proxy_from_definition(&back).ok(), Some(p));
        // frpc's own shape of the same proxy (its dashboard posts it back like this).
        let frpc = serde_json::json!({"name": "s", "type": "tcp", "tcp": {"name": "s", "type": "tcp",
            "transport": {"bandwidthLimit": "", "bandwidthLimitMode": "client"}, "loadBalancer": {"group": ""},
            "healthCheck": {"type": "", "intervalSeconds": 0}, "localIP": "127.0.0.1", "localPort": 80, "plugin": null,
            "remotePort": 6000}});
        assert_eq!(proxy_from_definition(&frpc).ok(), proxy_from_definition(&def).ok());
        for (bad, says) in [
            (serde_json::json!({"type": "tcp", "tcp": {}}), "`name` is required"),
            (serde_json::json!({"name": "s", "type": "tcp", "udp": {}}), "exactly one block"),
            (serde_json::json!({"name": "s", "type": "tcp", "tcp": {"name": "t"}}), "differs"),
            (serde_json::json!({"name": "s", "type": "tcp", "tcp": {"localPortt": 1}}), "localPortt"),
        ] {
            let e = proxy_from_definition(&bad).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }
}
