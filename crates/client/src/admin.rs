//! frpc's admin API (`webServer.*` in frpc.toml), served with hyper over the engine's handle: `GET /api/status`,
//! `GET`/`PUT /api/config`, `GET /api/reload`, `POST /api/stop`, `GET /healthz`. Shapes and error bodies follow
//! frpc v0.70 (`../shared/frp-captures/dashboard-api/frpc-api-*`). Unlike frpc, `PUT /api/config` validates the
//! body before writing it, so a broken file never reaches the next reload, and `GET /api/config` masks secrets
//! (`auth.token`, `auth.oidc.clientSecret`, `webServer.password`, ...) as [`REDACTED`]; a `PUT` that sends a masked
//! line back keeps the file's secret there ([`restore_secrets`]).
//!
//! `GET /api/proxy/{name}/config` shows one running proxy as frp's definition `{"name","type","<type>":{…}}`;
//! `/api/store/proxies[/{name}]` (GET, POST, PUT, DELETE) manage the proxies kept in `store.path` (see
//! [`crate::store`]): validated before the file is written, then applied at once through
//! [`ClientHandle::reload`] (the other proxies keep their connections). `/api/store/visitors` lists the stored
//! visitors; creating one is refused (not supported yet: visitors come from the config file).
//!
//! `/` redirects to `/static/`, the admin page ([`page`]: proxies and the config file with Save and Reload), behind
//! the same Basic auth as the API.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::ClientConfig;
use crate::engine::ClientHandle;
use crate::status::ProxyState;
use crate::store::{self, Store, StoreError};

pub mod page;

/// What stands in for a secret in `GET /api/config`.
pub const REDACTED: &str = "<redacted>";

/// Keys (last dotted part, lower case, `_` removed) whose values are secrets, in every format frpc reads.
const SECRET_KEYS: &[&str] = &[
    "token",
    "password",
    "clientsecret",
    "oidcclientsecret",
    "secretkey",
    "sk",
    "httppassword",
    "httppwd",
    "adminpwd",
    "privilegetoken",
    "authtoken",
];

/// The config text with every secret value replaced by [`REDACTED`] (TOML, YAML, JSON and INI lines of the form
/// `key = value` / `key: value`).
pub fn redact_config(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        out.push_str(&redact_line(line));
    }
    out
}

fn redact_line(line: &str) -> String {
    let sep = match (line.find('='), line.find(':')) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return line.to_string(),
    };
    let key = line[..sep].trim().trim_matches(|c| c == '"' || c == '\'' || c == '-').trim();
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase().replace('_', "");
    if !SECRET_KEYS.contains(&last.as_str()) {
        return line.to_string();
    }
    let rest = &line[sep + 1..];
    let body = rest.trim_end_matches(['\n', '\r']);
    let ending = &rest[body.len()..];
    let value = body.trim();
    if value.is_empty() || value == "\"\"" || value == "''" {
        return line.to_string();
    }
    let comma = if value.ends_with(',') { "," } else { "" };
    let quoted = value.starts_with('"') || value.starts_with('\'');
    let masked = if quoted { format!("\"{REDACTED}\"") } else { REDACTED.to_string() };
    let lead = &rest[..rest.len() - rest.trim_start().len()];
    format!("{}{}{lead}{masked}{comma}{ending}", &line[..sep], &line[sep..sep + 1])
}

/// `body` (a `PUT /api/config`) with each line that still holds [`REDACTED`] replaced by the line of `current` (the
/// file on disk) that masks to it under the same table header (`[...]`, TOML and INI), so text read from
/// `GET /api/config` can be saved back without retyping its secrets, and a secret cannot be moved to another table
/// (where it might be sent or shown). Refused, naming the line (never a value), when no such line of `current`
/// exists (a new or moved key) or several with different values do.
pub fn restore_secrets(body: &str, current: &str) -> Result<String, String> {
    /// Each line with the table header it stands under.
    fn with_tables(text: &str) -> impl Iterator<Item = (&str, &str)> {
        let mut table = "";
        text.split_inclusive('\n').map(move |l| {
            if l.trim_start().starts_with('[') {
                table = l.trim();
            }
            (table, l)
        })
    }
    let unmasked: Vec<(&str, String, &str)> = with_tables(current)
        .map(|(t, l)| (t, redact_line(l), l))
        .filter(|(_, m, l)| m != l)
        .map(|(t, m, l)| (t, m.trim_end_matches(['\n', '\r']).to_string(), l.trim_end_matches(['\n', '\r'])))
        .collect();
    let mut out = String::with_capacity(body.len());
    for (n, (table, line)) in with_tables(body).enumerate() {
        if !line.contains(REDACTED) {
            out.push_str(line);
            continue;
        }
        let text = line.trim_end_matches(['\n', '\r']);
        let mut found: Vec<&str> =
            unmasked.iter().filter(|(t, m, _)| *t == table && m == text).map(|(_, _, l)| *l).collect();
        found.sort_unstable();
        found.dedup();
        match found[..] {
            [original] => {
                out.push_str(original);
                out.push_str(&line[text.len()..]);
            }
            [] => {
                return Err(format!(
                    "line {}: {REDACTED} stands where the file on disk has no such secret (a new, changed or moved key); type the real value",
                    n + 1
                ))
            }
            _ => {
                return Err(format!(
                    "line {}: several secrets of the file on disk read like this line, so {REDACTED} is ambiguous; type the real value",
                    n + 1
                ))
            }
        }
    }
    Ok(out)
}

/// Largest `PUT /api/config` body.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// How long a caller may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Wrong passwords per address per minute before the address gets `429`.
const MAX_AUTH_FAILURES: u32 = 10;

/// The admin API's state: the engine and the file it was started from.
pub struct Admin {
    handle: Arc<ClientHandle>,
    path: PathBuf,
    credentials: Option<(String, String)>,
    failures: Mutex<BTreeMap<IpAddr, (u32, Instant)>>,
    /// One store change at a time (read, check, write, reload).
    store_lock: tokio::sync::Mutex<()>,
}

/// One proxy as frpc's `/api/status` shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ProxyStatusJson {
    /// Configured name.
    pub name: String,
    /// tcp, udp, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// frpc's phase: `new`, `wait start`, `running`, `start error`, `check failed`.
    pub status: String,
    /// The server's refusal, if any.
    pub err: String,
    /// localIP:localPort.
    pub local_addr: String,
    /// The plugin's type (empty: none).
    pub plugin: String,
    /// serverAddr:port once running.
    pub remote_addr: String,
    /// `"store"` for a proxy from `store.path` (frpc omits the key otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// frpc's `/api/status` body: proxies by type, each list by name.
pub fn status_json(cfg: &ClientConfig, status: &crate::status::Status) -> BTreeMap<String, Vec<ProxyStatusJson>> {
    let mut out: BTreeMap<String, Vec<ProxyStatusJson>> = BTreeMap::new();
    let mut proxies: Vec<_> = cfg.proxies.iter().collect();
    proxies.sort_by(|a, b| a.name.cmp(&b.name));
    for p in proxies {
        let st = status.proxies.get(&p.name).map(|s| &s.state);
        let (phase, err, remote) = match st {
            Some(ProxyState::Running { remote_addr }) => {
                let remote = if remote_addr.starts_with(':') {
                    format!("{}{}", cfg.server_addr, remote_addr)
                } else {
                    remote_addr.clone()
                };
                ("running", String::new(), remote)
            }
            Some(ProxyState::Error { reason }) if reason.starts_with(crate::health::FAILED) => {
                ("check failed", reason.clone(), String::new())
            }
            Some(ProxyState::Error { reason }) => ("start error", reason.clone(), String::new()),
            Some(ProxyState::Pending) => ("wait start", String::new(), String::new()),
            Some(ProxyState::Idle) | None => ("new", String::new(), String::new()),
        };
        out.entry(p.kind.clone()).or_default().push(ProxyStatusJson {
            name: p.name.clone(),
            kind: p.kind.clone(),
            status: phase.into(),
            err,
            local_addr: if p.plugin.is_some() { String::new() } else { format!("{}:{}", p.local_ip, p.local_port) },
            plugin: p.plugin.as_ref().map(|x| x.kind.clone()).unwrap_or_default(),
            remote_addr: remote,
            source: None,
        });
    }
    out
}

struct Reply {
    status: u16,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

impl Reply {
    fn empty(status: u16) -> Reply {
        Reply { status, content_type: None, body: Vec::new() }
    }
    fn text(status: u16, body: &str) -> Reply {
        Reply { status, content_type: Some("text/plain; charset=utf-8"), body: body.as_bytes().to_vec() }
    }
    fn json(status: u16, v: &impl Serialize) -> Reply {
        let mut body = serde_json::to_vec(v).unwrap_or_default();
        body.push(b'\n');
        Reply { status, content_type: Some("application/json"), body }
    }
    fn error(status: u16, msg: &str) -> Reply {
        Reply::json(status, &json!({"Code": status, "Msg": msg}))
    }
}

impl Admin {
    /// An admin API over `handle`, started from the config file `path`.
    pub fn new(handle: Arc<ClientHandle>, path: PathBuf, user: &str, password: &str) -> Admin {
        let credentials = (!user.is_empty() || !password.is_empty()).then(|| (user.to_string(), password.to_string()));
        Admin { handle, path, credentials, failures: Mutex::new(BTreeMap::new()), store_lock: Default::default() }
    }

    fn blocked(&self, ip: IpAddr) -> bool {
        let m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&ip).is_some_and(|(n, t)| *n >= MAX_AUTH_FAILURES && t.elapsed() < Duration::from_secs(60))
    }

    fn failed(&self, ip: IpAddr) {
        let mut m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() > 10_000 {
            m.retain(|_, (_, t)| t.elapsed() < Duration::from_secs(60));
        }
        let e = m.entry(ip).or_insert((0, Instant::now()));
        if e.1.elapsed() >= Duration::from_secs(60) {
            *e = (0, Instant::now());
        }
        e.0 += 1;
    }

    /// `None` when the caller may pass.
    fn check_auth(&self, peer: IpAddr, auth: Option<&[u8]>) -> Option<Response<Full<Bytes>>> {
        let (user, password) = self.credentials.as_ref()?;
        if self.blocked(peer) {
            return Some(to_response(Reply::text(
                429,
                "too many wrong passwords from this address; try again in a minute\n",
            )));
        }
        let given = auth.and_then(parse_basic);
        if given.as_ref().is_some_and(|(u, p)| ct_eq(u.as_bytes(), user.as_bytes()) & ct_eq(p, password.as_bytes())) {
            return None;
        }
        if given.is_some() {
            warn!(address = %peer, "admin API: wrong user or password");
            self.failed(peer);
        }
        let mut r = to_response(Reply::text(401, "Unauthorized\n"));
        r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Restricted\""));
        r.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        Some(r)
    }

    /// `/api/status` with stored proxies marked `"source": "store"`.
    async fn status(&self) -> Reply {
        let cfg = self.handle.config();
        let mut out = status_json(&cfg, &self.handle.status());
        let stored: Vec<String> = match Store::of(&cfg) {
            Some(s) => s
                .read_async()
                .await
                .map(|f| f.proxies.iter().filter_map(|d| d["name"].as_str().map(String::from)).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        for row in out.values_mut().flatten() {
            if stored.contains(&row.name) {
                row.source = Some("store".into());
            }
        }
        Reply::json(200, &out)
    }

    /// `/api/proxy/{name}/config`, `/api/visitor/{name}/config` and `/api/store/*`; `None` for other paths.
    async fn route_definitions(&self, method: &str, path: &str, body: &Bytes) -> Option<Reply> {
        if let Some(name) = path.strip_prefix("/api/proxy/").and_then(|r| r.strip_suffix("/config")) {
            if method != "GET" {
                return Some(Reply::text(405, "405 method not allowed\n"));
            }
            let cfg = self.handle.config();
            return Some(match cfg.proxies.iter().find(|p| p.name == name) {
                Some(p) => {
                    // A running proxy's config has its defaults completed, as frpc shows it.
                    let mut def = store::definition(p);
                    if let Some(t) = def[&p.kind]["transport"].as_object_mut() {
                        t.entry("bandwidthLimitMode").or_insert_with(|| json!("client"));
                    }
                    Reply::json(200, &def)
                }
                None => Reply::error(404, &format!("proxy {name:?} not found")),
            });
        }
        if let Some(name) = path.strip_prefix("/api/visitor/").and_then(|r| r.strip_suffix("/config")) {
            return Some(Reply::error(404, &format!("visitor {name:?} not found")));
        }
        let rest = path.strip_prefix("/api/store/")?;
        let (kind, name) = match rest.split_once('/') {
            Some((k, n)) => (k, Some(n)),
            None => (rest, None),
        };
        if kind != "proxies" && kind != "visitors" {
            return None;
        }
        let _guard = self.store_lock.lock().await;
        let result = if kind == "proxies" {
            self.store_proxies(method, name, body).await
        } else {
            self.store_visitors(method, name).await
        };
        Some(result.unwrap_or_else(|e| Reply::error(e.status(), &e.to_string())))
    }

    async fn store_proxies(&self, method: &str, name: Option<&str>, body: &Bytes) -> Result<Reply, StoreError> {
        let mut cfg = self.handle.config();
        let store = Store::of(&cfg).ok_or(StoreError::Disabled)?;
        let mut file = store.read_async().await?;
        let index = |file: &store::StoreFile, n: &str| file.proxies.iter().position(|d| d["name"] == n);
        let not_found = |n: &str| StoreError::NotFound { kind: "proxy", name: n.to_string() };
        let parse_body = || -> Result<crate::config::ProxyConfig, StoreError> {
            let v: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| StoreError::Invalid(format!("parse JSON error: {e}")))?;
            store::proxy_from_definition(&v)
        };
        match (method, name) {
            ("GET", None) => {
                let mut defs = file.proxies.iter().map(store::proxy_from_definition).collect::<Result<Vec<_>, _>>()?;
                defs.sort_by(|a, b| a.name.cmp(&b.name));
                let list: Vec<_> = defs.iter().map(store::definition).collect();
                Ok(Reply::json(200, &json!({ "proxies": list })))
            }
            ("GET", Some(n)) => {
                let i = index(&file, n).ok_or_else(|| not_found(n))?;
                Ok(Reply::json(200, &store::definition(&store::proxy_from_definition(&file.proxies[i])?)))
            }
            ("POST", None) => {
                let p = parse_body()?;
                if index(&file, &p.name).is_some() || cfg.proxies.iter().any(|q| q.name == p.name) {
                    return Err(StoreError::Conflict { kind: "proxy", name: p.name });
                }
                file.proxies.push(store::definition(&p));
                store.write_async(file).await?;
                info!(proxy = %p.name, "proxy added to the store through the admin API");
                let reply = Reply::json(200, &store::definition(&p));
                cfg.proxies.push(p);
                self.handle.reload(cfg);
                Ok(reply)
            }
            ("PUT", Some(n)) => {
                let i = index(&file, n).ok_or_else(|| not_found(n))?;
                let p = parse_body()?;
                if p.name != n {
                    return Err(StoreError::Invalid(format!(
                        "the body's name {:?} differs from the path's {n:?}; a stored proxy cannot be renamed",
                        p.name
                    )));
                }
                file.proxies[i] = store::definition(&p);
                store.write_async(file).await?;
                info!(proxy = %p.name, "stored proxy updated through the admin API");
                let reply = Reply::json(200, &store::definition(&p));
                match cfg.proxies.iter_mut().find(|q| q.name == p.name) {
                    Some(q) => *q = p,
                    None => cfg.proxies.push(p),
                }
                self.handle.reload(cfg);
                Ok(reply)
            }
            ("DELETE", Some(n)) => {
                let i = index(&file, n).ok_or_else(|| not_found(n))?;
                file.proxies.remove(i);
                store.write_async(file).await?;
                info!(proxy = n, "stored proxy deleted through the admin API");
                cfg.proxies.retain(|q| q.name != n);
                self.handle.reload(cfg);
                Ok(Reply::empty(200))
            }
            _ => Ok(Reply::text(405, "405 method not allowed\n")),
        }
    }

    async fn store_visitors(&self, method: &str, name: Option<&str>) -> Result<Reply, StoreError> {
        let store = Store::of(&self.handle.config()).ok_or(StoreError::Disabled)?;
        let file = store.read_async().await?;
        match (method, name) {
            ("GET", None) => Ok(Reply::json(200, &json!({ "visitors": file.visitors }))),
            ("GET" | "PUT" | "DELETE", Some(n)) => match file.visitors.iter().find(|d| d["name"] == n) {
                Some(d) if method == "GET" => Ok(Reply::json(200, d)),
                _ => Err(StoreError::NotFound { kind: "visitor", name: n.to_string() }),
            },
            ("POST", None) => Err(StoreError::Invalid(
                "storing visitors is not supported yet; put them in the config file ([[visitors]]) and reload, or store proxies only".into(),
            )),
            _ => Ok(Reply::text(405, "405 method not allowed\n")),
        }
    }

    async fn route(&self, method: &str, path: &str, body: Bytes) -> Reply {
        if let Some(r) = self.route_definitions(method, path, &body).await {
            return r;
        }
        match (method, path) {
            ("GET", "/api/status") => self.status().await,
            ("GET", "/api/config") => match tokio::fs::read_to_string(&self.path).await {
                Ok(text) => {
                    let masked = redact_config(&text);
                    // A secret written in a form the line masking does not see (an inline table) is not shown (secrets of
                    // eight characters or more: a shorter one may equal an innocent value, like the user name).
                    let cfg = self.handle.config();
                    let secrets = [&cfg.auth.token, &cfg.auth.oidc.client_secret, &cfg.web_server.password];
                    if secrets.iter().any(|s| s.len() >= 8 && masked.contains(s.as_str())) {
                        return Reply::error(
                            403,
                            "the file holds a secret in a form this API cannot mask; read the file on the host",
                        );
                    }
                    Reply { status: 200, content_type: Some("text/plain; charset=utf-8"), body: masked.into_bytes() }
                }
                Err(e) => Reply::error(400, &format!("cannot read {}: {e}", self.path.display())),
            },
            ("PUT", "/api/config") => {
                if body.is_empty() {
                    return Reply::error(400, "body can't be empty");
                }
                let Ok(text) = std::str::from_utf8(&body) else {
                    return Reply::error(400, "invalid argument: the body is not UTF-8 text");
                };
                let file = self.path.display().to_string();
                let restored;
                let text = if text.contains(REDACTED) {
                    let current = match tokio::fs::read_to_string(&self.path).await {
                        Ok(c) => c,
                        Err(e) => return Reply::error(500, &format!("cannot read {file} for its secrets: {e}")),
                    };
                    restored = match restore_secrets(text, &current) {
                        Ok(t) => t,
                        Err(e) => return Reply::error(400, &format!("invalid argument: {e}")),
                    };
                    restored.as_str()
                } else {
                    text
                };
                if let Err(e) = ClientConfig::parse(text, &file) {
                    return Reply::error(400, &format!("invalid argument: {e}"));
                }
                match tokio::fs::write(&self.path, text).await {
                    Ok(()) => {
                        info!(file = %file, "configuration file replaced through the admin API (applied at reload)");
                        Reply::empty(200)
                    }
                    Err(e) => Reply::error(500, &format!("cannot write {file}: {e}")),
                }
            }
            ("GET", "/api/reload") => {
                let path = self.path.clone();
                let loaded = tokio::task::spawn_blocking(move || ClientConfig::load(&path)).await;
                match loaded {
                    Ok(Ok(l)) => {
                        self.handle.reload(l.config);
                        Reply::empty(200)
                    }
                    Ok(Err(e)) => Reply::error(400, &format!("invalid argument: {e}")),
                    Err(e) => Reply::error(500, &format!("reload failed: {e}")),
                }
            }
            ("POST", "/api/stop") => {
                info!("stop requested through the admin API");
                let cancel = self.handle.cancel_token();
                // After the answer has gone out.
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    cancel.cancel();
                });
                Reply::empty(200)
            }
            (_, "/api/status" | "/api/config" | "/api/reload" | "/api/stop") => {
                Reply::text(405, "405 method not allowed\n")
            }
            _ => Reply::text(404, "404 page not found\n"),
        }
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

fn parse_basic(h: &[u8]) -> Option<(String, Vec<u8>)> {
    let h = std::str::from_utf8(h).ok()?;
    let (scheme, rest) = h.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let colon = raw.iter().position(|b| *b == b':')?;
    Some((String::from_utf8_lossy(&raw[..colon]).into_owned(), raw[colon + 1..].to_vec()))
}

fn to_response(reply: Reply) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(reply.body)));
    *r.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ct) = reply.content_type {
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}

fn page_response(p: page::PageReply) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(p.body)));
    *r.status_mut() = hyper::StatusCode::from_u16(p.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(p.content_type));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if let Some(l) = p.location {
        h.insert(hyper::header::LOCATION, HeaderValue::from_static(l));
    }
    if let Some(c) = p.cache_control {
        h.insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static(c));
    }
    r
}

/// Serves the admin API on `listener` until `cancel`.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, cancel: CancellationToken) {
    info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "admin API listening");
    let slots = Arc::new(tokio::sync::Semaphore::new(64));
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    warn!(error = %e, "admin API: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (admin, cancel) = (admin.clone(), cancel.clone());
        tokio::spawn(async move {
            let _permit = permit;
            serve_conn(tcp, peer, admin, cancel).await;
        });
    }
}

async fn serve_conn(tcp: tokio::net::TcpStream, peer: SocketAddr, admin: Arc<Admin>, cancel: CancellationToken) {
    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let admin = admin.clone();
        async move {
            let path = req.uri().path().to_string();
            let method = req.method().as_str().to_string();
            if path == "/healthz" {
                return Ok::<_, Infallible>(to_response(Reply::empty(200)));
            }
            if let Some(r) = admin.check_auth(peer.ip(), req.headers().get(AUTHORIZATION).map(|v| v.as_bytes())) {
                return Ok(r);
            }
            if method == "GET" || method == "HEAD" {
                if let Some(p) = page::answer(&path) {
                    return Ok(page_response(p));
                }
            }
            let body = match Limited::new(req.into_body(), MAX_CONFIG_BYTES).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return Ok(to_response(Reply::error(413, "the body is larger than 1 MiB"))),
            };
            let r = admin.route(&method, &path, body).await;
            debug!(method = %method, path = %path, status = r.status, "admin API request");
            Ok(to_response(r))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(tcp), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => if let Err(e) = r { debug!(error = %e, "admin API connection ended") },
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}

/// What the CLI (`portway-client status|reload|stop -c FILE`) asks the admin API of a running client.
pub mod cli {
    use super::*;

    /// Why a CLI call failed.
    #[derive(Debug, thiserror::Error)]
    pub enum CliError {
        /// No admin API configured.
        #[error("{0}: webServer.port is not set, so the running client has no admin API to ask (set webServer.port)")]
        NoAdmin(String),
        /// Could not reach it (as frpc prints it: the request and the dial error).
        #[error("{method} \"{url}\": {source}")]
        Request {
            /// GET/POST.
            method: &'static str,
            /// The URL.
            url: String,
            /// reqwest's error.
            source: reqwest::Error,
        },
        /// It answered with an error.
        #[error("{status}: {body}")]
        Status {
            /// HTTP status.
            status: u16,
            /// The answer's text.
            body: String,
        },
    }

    async fn call(cfg: &ClientConfig, file: &str, method: &'static str, path: &str) -> Result<String, CliError> {
        let w = &cfg.web_server;
        if w.port == 0 {
            return Err(CliError::NoAdmin(file.into()));
        }
        let host = if w.addr == "0.0.0.0" || w.addr == "::" { "127.0.0.1".to_string() } else { w.addr.clone() };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let url = format!("http://{host}:{}{path}", w.port);
        let client = reqwest::Client::new();
        let mut req = if method == "POST" { client.post(&url) } else { client.get(&url) };
        if !w.user.is_empty() || !w.password.is_empty() {
            req = req.basic_auth(&w.user, Some(&w.password));
        }
        let resp = req.timeout(Duration::from_secs(30)).send().await.map_err(|source| CliError::Request {
            method,
            url: url.clone(),
            source,
        })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|source| CliError::Request { method, url, source })?;
        if status != 200 {
            let msg = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["Msg"].as_str().map(str::to_string))
                .unwrap_or_else(|| body.trim().to_string());
            return Err(CliError::Status { status, body: msg });
        }
        Ok(body)
    }

    /// `status`: frpc's table, one block per proxy type.
    pub async fn status(cfg: &ClientConfig, file: &str) -> Result<String, CliError> {
        let body = call(cfg, file, "GET", "/api/status").await?;
        let map: BTreeMap<String, Vec<ProxyStatusJson>> = serde_json::from_str(&body)
            .map_err(|e| CliError::Status { status: 200, body: format!("not frpc's status JSON: {e}") })?;
        Ok(status_table(&map))
    }

    /// `reload`: asks the client to apply its file again.
    pub async fn reload(cfg: &ClientConfig, file: &str) -> Result<(), CliError> {
        call(cfg, file, "GET", "/api/reload").await.map(|_| ())
    }

    /// `stop`: asks the client to stop.
    pub async fn stop(cfg: &ClientConfig, file: &str) -> Result<(), CliError> {
        call(cfg, file, "POST", "/api/stop").await.map(|_| ())
    }

    /// frpc's status table: types in frpc's order, columns padded to the widest cell plus two spaces.
    pub fn status_table(map: &BTreeMap<String, Vec<ProxyStatusJson>>) -> String {
        const ORDER: [&str; 8] = ["tcp", "udp", "tcpmux", "http", "https", "stcp", "sudp", "xtcp"];
        let mut out = String::from("Proxy Status...\n\n");
        let mut types: Vec<&String> = map.keys().collect();
        types.sort_by_key(|t| ORDER.iter().position(|o| o == t).unwrap_or(ORDER.len()));
        for t in types {
            let rows: Vec<[&str; 6]> = map[t]
                .iter()
                .map(|p| [&p.name, &p.status, &p.local_addr, &p.plugin, &p.remote_addr, &p.err].map(String::as_str))
                .collect();
            if rows.is_empty() {
                continue;
            }
            let header = ["Name", "Status", "LocalAddr", "Plugin", "RemoteAddr", "Error"];
            let mut widths = header.map(str::len);
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.len());
                }
            }
            out.push_str(&t.to_uppercase());
            out.push('\n');
            for r in std::iter::once(header).chain(rows) {
                for (c, w) in r.iter().zip(widths) {
                    out.push_str(&format!("{c:<width$}", width = w + 2));
                }
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::cli::status_table;
    use super::*;

    #[test]
    fn secrets_are_masked_in_every_format() {
        let text = "serverAddr = \"a\"\nauth.token = \"s3cret\"\n[auth.oidc]\nclientSecret = 'x'\nwebServer.password=pw\n  token: yamlsecret\n\"token\": \"jsonsecret\",\nadmin_pwd = inipw\nlocalPort = 1\ntoken = \"\"\n";
        let m = redact_config(text);
        for secret in ["s3cret", "'x'", "pw\n", "yamlsecret", "jsonsecret", "inipw"] {
            assert!(!m.contains(secret), "{secret} in {m}");
        }
        assert!(m.contains("auth.token = \"<redacted>\"\n") && m.contains("\"token\": \"<redacted>\",\n"), "{m}");
        assert!(
            m.contains("serverAddr = \"a\"\n") && m.contains("localPort = 1\n") && m.contains("token = \"\"\n"),
            "{m}"
        );
    }

    #[test]
    fn masked_lines_sent_back_keep_the_secrets() {
        let current = "serverAddr = \"a\"\nauth.token = \"s3cret\"\r\nwebServer.password = \"pw\"\n";
        let edited = redact_config(current).replace("serverAddr = \"a\"", "serverAddr = \"b\"");
        assert!(edited.contains("auth.token = \"<redacted>\"\r\n"), "{edited}");
        assert_eq!(restore_secrets(&edited, current).expect("restored"), current.replace("\"a\"", "\"b\""));
        // A secret typed anew is taken as typed.
        let typed = edited.replace("auth.token = \"<redacted>\"", "auth.token = \"new\"");
        assert_eq!(
            restore_secrets(&typed, current).expect("restored"),
            "serverAddr = \"b\"\nauth.token = \"new\"\r\nwebServer.password = \"pw\"\n"
        );
        // The mask on a key the file does not have: refused by line number.
        let e =
            restore_secrets("x = 1\nauth.oidc.clientSecret = \"<redacted>\"\n", current).expect_err("no such secret");
        assert!(e.starts_with("line 2: "), "{e}");
        // Two visitors' keys that mask alike: the same value is fine, different values are ambiguous (no value shown).
        let same = "[[visitors]]\nsecretKey = \"k1\"\n[[visitors]]\nsecretKey = \"k1\"\n";
        assert_eq!(restore_secrets(&redact_config(same), same).expect("restored"), same);
        let differ = same.replacen("k1", "k2", 1);
        let e = restore_secrets(&redact_config(&differ), &differ).expect_err("ambiguous");
        assert!(e.starts_with("line 2: ") && !e.contains("k1") && !e.contains("k2"), "{e}");
        assert_eq!(restore_secrets("x = 1\n", current).expect("nothing masked"), "x = 1\n");
        // A secret stays in its table: the same masked line under another header is refused.
        let tables = "[auth]\ntoken = \"s3cret\"\n[[proxies]]\nname = \"a\"\n";
        let moved = "[auth]\n[[proxies]]\nname = \"a\"\n[proxies.requestHeaders.set]\ntoken = \"<redacted>\"\n";
        assert!(restore_secrets(moved, tables).expect_err("moved").starts_with("line 5: "));
        assert_eq!(restore_secrets(&redact_config(tables), tables).expect("restored"), tables);
    }

    #[test]
    fn status_table_is_frpcs() {
        let row = |name: &str, status: &str, local: &str, remote: &str, err: &str, kind: &str| ProxyStatusJson {
            name: name.into(),
            kind: kind.into(),
            status: status.into(),
            err: err.into(),
            local_addr: local.into(),
            plugin: String::new(),
            remote_addr: remote.into(),
            source: None,
        };
        let mut m = BTreeMap::new();
        m.insert(
            "tcp".to_string(),
            vec![
                row("clash", "start error", "127.0.0.1:18081", "", "port unavailable", "tcp"),
                row("web", "running", "127.0.0.1:18081", "127.0.0.1:16001", "", "tcp"),
            ],
        );
        m.insert("udp".to_string(), vec![row("voice", "running", "127.0.0.1:18082", "127.0.0.1:16002", "", "udp")]);
        let expected = "Proxy Status...\n\nTCP\n\
Name   Status       LocalAddr        Plugin  RemoteAddr       Error             \n\
clash  start error  127.0.0.1:18081                           port unavailable  \n\
web    running      127.0.0.1:18081          127.0.0.1:16001                    \n\nUDP\n\
Name   Status   LocalAddr        Plugin  RemoteAddr       Error  \n\
voice  running  127.0.0.1:18082          127.0.0.1:16002         \n\n";
        assert_eq!(status_table(&m), expected);
    }
}
