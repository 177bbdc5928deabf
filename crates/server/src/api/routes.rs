//! The dashboard API's routing table and JSON: a request (method, path, query) and the statistics registry in, a
//! [`Reply`] out. No IO; the time is passed in. Shapes, status codes and error bodies follow frps v0.70
//! (`../shared/frp-captures/dashboard-api/`): v1 errors are `{"Code","Msg"}`, v2 answers `{"code","msg","data"}`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::stats::{civil, day_of, ClientRecord, ProxyRecord, Registry, RESERVE_DAYS};

/// Figures from the configuration that the API shows.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// `bindPort`.
    pub bind_port: u16,
    /// `vhostHTTPPort`.
    pub vhost_http_port: u16,
    /// `vhostHTTPSPort`.
    pub vhost_https_port: u16,
    /// `tcpmuxHTTPConnectPort`.
    pub tcpmux_http_connect_port: u16,
    /// `quicBindPort`.
    pub quic_bind_port: u16,
    /// `subDomainHost`.
    pub subdomain_host: String,
    /// `transport.maxPoolCount`.
    pub max_pool_count: i64,
    /// `maxPortsPerClient`.
    pub max_ports_per_client: i64,
    /// `transport.heartbeatTimeout`, -1 when tcpMux turns heartbeats off (as frps shows it).
    pub heartbeat_timeout: i64,
    /// `allowPorts` in frp's string form (`2000-3000,3001`).
    pub allow_ports_str: String,
    /// `transport.tls.force`.
    pub tls_force: bool,
}

/// An answer: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<&'static str>,
    /// `Location`, for redirects.
    pub location: Option<&'static str>,
    /// `Cache-Control`, if any (the dashboard's files).
    pub cache_control: Option<&'static str>,
    /// The body.
    pub body: Vec<u8>,
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

impl Reply {
    /// A JSON body; like Go's `json.Encoder`, it ends with a newline.
    pub fn json(status: u16, v: &impl Serialize) -> Reply {
        let mut body = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
        body.push(b'\n');
        Reply { status, content_type: Some(JSON), location: None, cache_control: None, body }
    }

    /// A plain-text body.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply { status, content_type: Some(TEXT), location: None, cache_control: None, body: body.as_bytes().to_vec() }
    }

    /// No body, no content type (`/healthz`, frpc-style empty answers).
    pub fn empty(status: u16) -> Reply {
        Reply { status, content_type: None, location: None, cache_control: None, body: Vec::new() }
    }

    /// Go's `404 page not found`.
    pub fn not_found() -> Reply {
        Reply::text(404, "404 page not found\n")
    }

    fn v1_error(status: u16, msg: &str) -> Reply {
        Reply::json(status, &json!({"Code": status, "Msg": msg}))
    }

    fn v2_ok(data: impl Serialize) -> Reply {
        Reply::json(200, &V2 { code: 200, msg: "success", data })
    }

    fn v2_error(status: u16, msg: &str) -> Reply {
        Reply::json(status, &V2 { code: status, msg, data: Value::Null })
    }
}

#[derive(Serialize)]
struct V2<'a, T> {
    code: u16,
    msg: &'a str,
    data: T,
}

/// Query parameters, decoded.
pub fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Routes one request. `metrics` renders `/metrics` when Prometheus is enabled. Authentication is the caller's.
pub fn route(
    reg: &Registry,
    info: &ServerInfo,
    method: &str,
    path: &str,
    query: &str,
    now: i64,
    metrics: Option<&dyn Fn() -> Reply>,
) -> Reply {
    let q = parse_query(query);
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let get = method == "GET" || method == "HEAD";
    match (method, segs.as_slice()) {
        (_, ["healthz"]) if get => Reply::empty(200),
        (_, [""]) if get => Reply {
            status: 301,
            content_type: Some("text/html; charset=utf-8"),
            location: Some("/static/"),
            cache_control: None,
            body: b"<a href=\"/static/\">Moved Permanently</a>.\n\n".to_vec(),
        },
        (_, ["static", rest @ ..]) if get => super::dashboard::asset(rest),
        (_, ["metrics"]) if get => match metrics {
            Some(m) => m(),
            None => Reply::not_found(),
        },
        (_, ["api", "serverinfo"]) if get => Reply::json(200, &server_info(reg, info, now)),
        (_, ["api", "proxy", ty]) if get => {
            let proxies: Vec<V1Proxy> =
                reg.proxies(now).iter().filter(|p| p.proxy_type == *ty).map(|p| v1_proxy(p, now)).collect();
            Reply::json(200, &json!({ "proxies": proxies }))
        }
        (_, ["api", "proxy", ty, name]) if get => match reg.proxy(name, now).filter(|p| p.proxy_type == *ty) {
            Some(p) => Reply::json(200, &v1_proxy(&p, now)),
            None => Reply::v1_error(404, "no proxy info found"),
        },
        (_, ["api", "proxies", name]) if get => match reg.proxy(name, now) {
            Some(p) => Reply::json(200, &v1_proxy(&p, now)),
            None => Reply::v1_error(404, "no proxy info found"),
        },
        ("DELETE", ["api", "proxies"]) => {
            if q.get("status").map(String::as_str) != Some("offline") {
                return Reply::v1_error(400, "status only support offline");
            }
            reg.prune_offline(now);
            Reply::v1_error(200, "success")
        }
        (_, ["api", "traffic", name]) if get => match reg.proxy(name, now) {
            Some(p) => {
                let today = day_of(now);
                Reply::json(
                    200,
                    &json!({
                        "name": p.name,
                        "trafficIn": p.traffic_in.last_days(today),
                        "trafficOut": p.traffic_out.last_days(today),
                    }),
                )
            }
            None => Reply::v1_error(404, "no proxy info found"),
        },
        (_, ["api", "clients"]) if get => match client_filter(&q) {
            Ok(f) => {
                let list: Vec<V1Client> = reg.clients(now).iter().filter(|c| f.matches(c)).map(v1_client).collect();
                Reply::json(200, &list)
            }
            Err(msg) => Reply::v1_error(400, &msg),
        },
        (_, ["api", "clients", key]) if get => match reg.client(key, now) {
            Some(c) => Reply::json(200, &v1_client(&c)),
            None => Reply::v1_error(404, "client not found"),
        },
        (_, ["api", "v2", "system", "info"]) if get => {
            let s = server_info(reg, info, now);
            Reply::v2_ok(json!({
                "version": s.version,
                "config": {
                    "bindPort": s.bind_port,
                    "vhostHTTPPort": s.vhost_http_port,
                    "vhostHTTPSPort": s.vhost_https_port,
                    "tcpmuxHTTPConnectPort": s.tcpmux_http_connect_port,
                    "kcpBindPort": 0,
                    "quicBindPort": s.quic_bind_port,
                    "subdomainHost": s.subdomain_host,
                    "maxPoolCount": s.max_pool_count,
                    "maxPortsPerClient": s.max_ports_per_client,
                    "heartbeatTimeout": s.heartbeat_timeout,
                    "allowPortsStr": info.allow_ports_str,
                    "tlsForce": info.tls_force,
                },
                "status": {
                    "totalTrafficIn": s.total_traffic_in,
                    "totalTrafficOut": s.total_traffic_out,
                    "curConns": s.cur_conns,
                    "clientCounts": s.client_counts,
                    "proxyTypeCount": s.proxy_type_count,
                },
            }))
        }
        ("POST", ["api", "v2", "system", "prune"]) => match q.get("type").map(String::as_str) {
            None | Some("") => Reply::v2_error(400, "type is required"),
            Some("offline_proxies") => {
                let (cleared, total) = reg.prune_offline(now);
                Reply::v2_ok(json!({"type": "offline_proxies", "cleared": cleared, "total": total}))
            }
            Some(_) => Reply::v2_error(400, "type must be offline_proxies"),
        },
        (_, ["api", "v2", "users"]) if get => {
            let (page, size) = match paging(&q) {
                Ok(p) => p,
                Err(m) => return Reply::v2_error(400, &m),
            };
            let mut users: BTreeMap<String, (usize, usize)> = BTreeMap::new();
            for c in reg.clients(now).iter().filter(|c| c.online) {
                users.entry(c.login.user.clone()).or_default().0 += 1;
            }
            for p in reg.proxies(now).iter().filter(|p| p.online) {
                users.entry(p.user.clone()).or_default().1 += 1;
            }
            let needle = q.get("q").map(|s| s.to_lowercase()).unwrap_or_default();
            let items: Vec<Value> = users
                .into_iter()
                .filter(|(u, _)| u.to_lowercase().contains(&needle))
                .map(|(user, (c, p))| json!({"user": user, "clientCount": c, "proxyCount": p}))
                .collect();
            Reply::v2_ok(paged(items, page, size))
        }
        (_, ["api", "v2", "clients"]) if get => {
            let (page, size) = match paging(&q) {
                Ok(p) => p,
                Err(m) => return Reply::v2_error(400, &m),
            };
            let f = match client_filter(&q) {
                Ok(f) => f,
                Err(m) => return Reply::v2_error(400, &m),
            };
            let items: Vec<V1Client> = reg.clients(now).iter().filter(|c| f.matches(c)).map(v1_client).collect();
            Reply::v2_ok(paged(items, page, size))
        }
        (_, ["api", "v2", "clients", key]) if get => match reg.client(key, now) {
            Some(c) => {
                let mine: Vec<ProxyRecord> =
                    reg.proxies(now).into_iter().filter(|p| p.online && p.client_key == c.key).collect();
                let mut v = serde_json::to_value(v1_client(&c)).unwrap_or(Value::Null);
                v["status"] = json!({
                    "phase": if c.online { "online" } else { "offline" },
                    "curConns": mine.iter().map(|p| p.cur_conns()).sum::<i64>(),
                    "proxyCount": mine.len(),
                });
                Reply::v2_ok(v)
            }
            None => Reply::v2_error(404, "client not found"),
        },
        (_, ["api", "v2", "proxies"]) if get => {
            let (page, size) = match paging(&q) {
                Ok(p) => p,
                Err(m) => return Reply::v2_error(400, &m),
            };
            let status = q.get("status").map(String::as_str).unwrap_or("");
            if !matches!(status, "" | "all" | "online" | "offline") {
                return Reply::v2_error(400, "status must be one of all, online, offline");
            }
            let ty = q.get("type").map(String::as_str).unwrap_or("");
            let client_id = q.get("clientID").map(String::as_str).unwrap_or("");
            let user = q.get("user").map(String::as_str);
            let needle = q.get("q").map(|s| s.to_lowercase()).unwrap_or_default();
            let mut list: Vec<ProxyRecord> = reg
                .proxies(now)
                .into_iter()
                .filter(|p| match status {
                    "online" => p.online,
                    "offline" => !p.online,
                    _ => true,
                })
                .filter(|p| ty.is_empty() || p.proxy_type == ty)
                .filter(|p| client_id.is_empty() || p.client_id == client_id)
                .filter(|p| user.is_none_or(|u| p.user == u))
                .filter(|p| p.name.to_lowercase().contains(&needle))
                .collect();
            // frps lists by type, then name.
            list.sort_by(|a, b| (&a.proxy_type, &a.name).cmp(&(&b.proxy_type, &b.name)));
            let items: Vec<Value> = list.iter().map(|p| v2_proxy(p, now)).collect();
            Reply::v2_ok(paged(items, page, size))
        }
        (_, ["api", "v2", "proxies", name]) if get => match reg.proxy(name, now) {
            Some(p) => Reply::v2_ok(v2_proxy(&p, now)),
            None => Reply::v2_error(404, "proxy not found"),
        },
        (_, ["api", "v2", "proxies", name, "traffic"]) if get => match reg.proxy(name, now) {
            Some(p) => {
                let today = day_of(now);
                let (tin, tout) = (p.traffic_in.last_days(today), p.traffic_out.last_days(today));
                let history: Vec<Value> = (0..RESERVE_DAYS)
                    .rev()
                    .map(|i| {
                        let (y, m, d, ..) = civil((today - i as i64) * 86_400);
                        json!({"date": format!("{y:04}-{m:02}-{d:02}"), "trafficIn": tin[i], "trafficOut": tout[i]})
                    })
                    .collect();
                Reply::v2_ok(json!({"name": p.name, "unit": "bytes", "granularity": "day", "history": history}))
            }
            None => Reply::v2_error(404, "proxy not found"),
        },
        (_, ["api", "portway", "clients"]) if get => {
            let list: Vec<Value> = reg.clients(now).iter().map(portway_client).collect();
            Reply::json(200, &list)
        }
        (_, ["api", "portway", "clients", key]) if get => match reg.client(key, now) {
            Some(c) => Reply::json(200, &portway_client(&c)),
            None => Reply::v1_error(404, "client not found"),
        },
        _ if known_path(&segs) => Reply::text(405, "405 method not allowed\n"),
        _ => Reply::not_found(),
    }
}

/// Whether a path exists with another method (for 405 rather than 404).
fn known_path(segs: &[&str]) -> bool {
    matches!(segs, ["api", "proxies"] | ["api", "v2", "system", "prune"])
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerInfoJson {
    version: &'static str,
    bind_port: u16,
    #[serde(rename = "vhostHTTPPort")]
    vhost_http_port: u16,
    #[serde(rename = "vhostHTTPSPort")]
    vhost_https_port: u16,
    #[serde(rename = "tcpmuxHTTPConnectPort")]
    tcpmux_http_connect_port: u16,
    kcp_bind_port: u16,
    quic_bind_port: u16,
    subdomain_host: String,
    max_pool_count: i64,
    max_ports_per_client: i64,
    heartbeat_timeout: i64,
    total_traffic_in: u64,
    total_traffic_out: u64,
    cur_conns: i64,
    client_counts: i64,
    proxy_type_count: BTreeMap<String, i64>,
}

fn server_info(reg: &Registry, info: &ServerInfo, now: i64) -> ServerInfoJson {
    let t = reg.totals(now);
    ServerInfoJson {
        version: portway_proto::FRP_VERSION,
        bind_port: info.bind_port,
        vhost_http_port: info.vhost_http_port,
        vhost_https_port: info.vhost_https_port,
        tcpmux_http_connect_port: info.tcpmux_http_connect_port,
        kcp_bind_port: 0,
        quic_bind_port: info.quic_bind_port,
        subdomain_host: info.subdomain_host.clone(),
        max_pool_count: info.max_pool_count,
        max_ports_per_client: info.max_ports_per_client,
        heartbeat_timeout: info.heartbeat_timeout,
        total_traffic_in: t.traffic_in_today,
        total_traffic_out: t.traffic_out_today,
        cur_conns: t.cur_conns,
        client_counts: t.client_counts,
        proxy_type_count: t.proxy_type_counts,
    }
}

/// frps's `MM-DD hh:mm:ss`, or "" for never.
fn short_time(unix: i64) -> String {
    if unix == 0 {
        return String::new();
    }
    let (_, m, d, hh, mm, ss) = civil(unix);
    format!("{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V1Proxy {
    name: String,
    conf: Value,
    #[serde(rename = "clientID")]
    client_id: String,
    today_traffic_in: u64,
    today_traffic_out: u64,
    cur_conns: i64,
    last_start_time: String,
    last_close_time: String,
    status: &'static str,
}

fn v1_proxy(p: &ProxyRecord, now: i64) -> V1Proxy {
    let today = day_of(now);
    V1Proxy {
        name: p.name.clone(),
        conf: v1_conf(p),
        client_id: p.client_id.clone(),
        today_traffic_in: p.traffic_in.today(today),
        today_traffic_out: p.traffic_out.today(today),
        cur_conns: p.cur_conns(),
        last_start_time: short_time(p.last_start),
        last_close_time: short_time(p.last_close),
        status: if p.online { "online" } else { "offline" },
    }
}

/// The proxy's server-side configuration as frps shows it in v1 (`null` once offline).
fn v1_conf(p: &ProxyRecord) -> Value {
    let Some(c) = &p.conf else { return Value::Null };
    let mut transport = serde_json::Map::new();
    if c.use_encryption {
        transport.insert("useEncryption".into(), json!(true));
    }
    if c.use_compression {
        transport.insert("useCompression".into(), json!(true));
    }
    transport.insert("bandwidthLimit".into(), json!(c.bandwidth_limit));
    transport.insert("bandwidthLimitMode".into(), json!(limit_mode(&c.bandwidth_limit_mode)));
    let mut v = json!({
        "name": p.name,
        "type": p.proxy_type,
        "transport": transport,
        "loadBalancer": {"group": c.group},
        "healthCheck": {"type": "", "intervalSeconds": 0},
        "localIP": "127.0.0.1",
        "plugin": null,
    });
    match p.proxy_type.as_str() {
        "tcp" | "udp" => v["remotePort"] = json!(p.remote_port),
        "http" | "https" | "tcpmux" => {
            v["customDomains"] = json!(c.custom_domains);
            if !c.subdomain.is_empty() {
                v["subdomain"] = json!(c.subdomain);
            }
            if p.proxy_type == "http" {
                v["locations"] = if c.locations.is_empty() { Value::Null } else { json!(c.locations) };
                v["hostHeaderRewrite"] = json!(c.host_header_rewrite);
            }
        }
        _ => {}
    }
    v
}

fn limit_mode(m: &str) -> &str {
    if m.is_empty() {
        "client"
    } else {
        m
    }
}

fn v2_proxy(p: &ProxyRecord, now: i64) -> Value {
    let today = day_of(now);
    let spec_inner = match &p.conf {
        None => json!({}),
        Some(c) => {
            let mut s = json!({
                "transport": {
                    "useEncryption": c.use_encryption,
                    "useCompression": c.use_compression,
                    "bandwidthLimit": c.bandwidth_limit,
                    "bandwidthLimitMode": limit_mode(&c.bandwidth_limit_mode),
                },
                "loadBalancer": {"group": c.group},
            });
            match p.proxy_type.as_str() {
                "tcp" | "udp" => s["remotePort"] = json!(p.remote_port),
                "http" | "https" | "tcpmux" => {
                    if !c.custom_domains.is_empty() {
                        s["customDomains"] = json!(c.custom_domains);
                    }
                    if !c.subdomain.is_empty() {
                        s["subdomain"] = json!(c.subdomain);
                    }
                }
                _ => {}
            }
            s
        }
    };
    let mut spec = json!({"type": p.proxy_type});
    spec[p.proxy_type.as_str()] = spec_inner;
    let mut status = json!({
        "phase": if p.online { "online" } else { "offline" },
        "todayTrafficIn": p.traffic_in.today(today),
        "todayTrafficOut": p.traffic_out.today(today),
        "curConns": p.cur_conns(),
        "lastStartAt": p.last_start,
    });
    if p.last_close != 0 {
        status["lastCloseAt"] = json!(p.last_close);
    }
    json!({"name": p.name, "user": p.user, "clientID": p.client_id, "spec": spec, "status": status})
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V1Client {
    key: String,
    user: String,
    #[serde(rename = "clientID")]
    client_id: String,
    #[serde(rename = "runID")]
    run_id: String,
    version: String,
    wire_protocol: String,
    hostname: String,
    #[serde(rename = "clientIP")]
    client_ip: String,
    first_connected_at: i64,
    last_connected_at: i64,
    online: bool,
}

fn v1_client(c: &ClientRecord) -> V1Client {
    V1Client {
        key: c.key.clone(),
        user: c.login.user.clone(),
        client_id: c.effective_client_id().to_string(),
        run_id: c.login.run_id.clone(),
        version: c.login.version.clone(),
        wire_protocol: c.login.wire_protocol.clone(),
        hostname: c.login.hostname.clone(),
        client_ip: c.login.client_ip.clone(),
        first_connected_at: c.first_connected,
        last_connected_at: c.last_connected,
        online: c.online,
    }
}

/// Portway's own view of a client: who its credentials say it is and which policy rule applies. Never a token.
fn portway_client(c: &ClientRecord) -> Value {
    let exp = c.token_expires_at();
    json!({
        "key": c.key,
        "user": c.login.user,
        "clientID": c.effective_client_id(),
        "runID": c.login.run_id,
        "online": c.online,
        "hostname": c.login.hostname,
        "os": c.login.os,
        "arch": c.login.arch,
        "version": c.login.version,
        "disconnectedAt": c.disconnected,
        "auth": {
            "subject": c.login.subject,
            "oidcClientID": c.login.oidc_client_id,
            "tokenExpiresAt": exp,
        },
        "policyRule": c.login.policy_rule,
    })
}

struct ClientFilter {
    user: Option<String>,
    client_id: Option<String>,
    run_id: Option<String>,
    online: Option<bool>,
    needle: String,
}

impl ClientFilter {
    fn matches(&self, c: &ClientRecord) -> bool {
        self.user.as_ref().is_none_or(|u| &c.login.user == u)
            && self.client_id.as_ref().is_none_or(|id| c.effective_client_id() == id)
            && self.run_id.as_ref().is_none_or(|id| &c.login.run_id == id)
            && self.online.is_none_or(|o| c.online == o)
            && (self.needle.is_empty()
                || [&c.key, &c.login.hostname, &c.login.user, &c.login.client_ip]
                    .iter()
                    .any(|s| s.to_lowercase().contains(&self.needle)))
    }
}

fn client_filter(q: &BTreeMap<String, String>) -> Result<ClientFilter, String> {
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let online = match q.get("status").map(String::as_str).unwrap_or("") {
        "" | "all" => None,
        "online" => Some(true),
        "offline" => Some(false),
        _ => return Err("status must be one of all, online, offline".into()),
    };
    Ok(ClientFilter {
        user: get("user"),
        client_id: get("clientID").or_else(|| get("clientId")),
        run_id: get("runID").or_else(|| get("runId")),
        online,
        needle: q.get("q").map(|s| s.to_lowercase()).unwrap_or_default(),
    })
}

/// Default `pageSize` (frps: 50).
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest `pageSize` accepted.
pub const MAX_PAGE_SIZE: usize = 1000;

fn paging(q: &BTreeMap<String, String>) -> Result<(usize, usize), String> {
    let num = |k: &str, default: usize| -> Result<usize, String> {
        match q.get(k).map(String::as_str) {
            None | Some("") => Ok(default),
            Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or(format!("{k} must be a positive integer")),
        }
    };
    Ok((num("page", 1)?, num("pageSize", DEFAULT_PAGE_SIZE)?.min(MAX_PAGE_SIZE)))
}

fn paged<T: Serialize>(items: Vec<T>, page: usize, size: usize) -> Value {
    let total = items.len();
    let page_items: Vec<T> = items.into_iter().skip((page - 1).saturating_mul(size)).take(size).collect();
    json!({"total": total, "page": page, "pageSize": size, "items": page_items})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ClientLogin;
    use portway_proto::msg::NewProxy;
    use std::sync::atomic::Ordering;

    const T0: i64 = 1_795_974_405;

    fn body(r: &Reply) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    fn setup() -> Registry {
        let reg = Registry::default();
        let (key, _) = reg.client_online(
            ClientLogin { run_id: "0f97219ec8fd270e".into(), wire_protocol: "v1".into(), ..Default::default() },
            T0,
        );
        let np =
            NewProxy { proxy_name: "web".into(), proxy_type: "tcp".into(), remote_port: 16001, ..Default::default() };
        let live = reg.proxy_started(&key, np, 16001, T0);
        live.bytes_in.fetch_add(39, Ordering::Relaxed);
        live.bytes_out.fetch_add(39, Ordering::Relaxed);
        reg
    }

    fn get(reg: &Registry, path: &str, query: &str) -> Reply {
        route(reg, &ServerInfo::default(), "GET", path, query, T0, None)
    }

    #[test]
    fn v1_proxy_shapes_and_errors_match_frps() {
        let reg = setup();
        let r = get(&reg, "/api/proxy/tcp/web", "");
        assert_eq!(r.status, 200);
        let v = body(&r);
        assert_eq!(v["conf"]["remotePort"], 16001);
        assert_eq!(v["lastStartTime"], "11-29 17:46:45");
        assert_eq!((v["todayTrafficIn"].as_u64(), v["status"].as_str()), (Some(39), Some("online")));
        let r = get(&reg, "/api/proxy/udp/web", "");
        assert_eq!((r.status, r.body.as_slice()), (404, &b"{\"Code\":404,\"Msg\":\"no proxy info found\"}\n"[..]));
        let r = route(&reg, &ServerInfo::default(), "DELETE", "/api/proxies", "status=online", T0, None);
        assert_eq!(body(&r), json!({"Code": 400, "Msg": "status only support offline"}));
        assert_eq!(
            get(&reg, "/api/traffic/web", "").body,
            b"{\"name\":\"web\",\"trafficIn\":[39,0,0,0,0,0,0],\"trafficOut\":[39,0,0,0,0,0,0]}\n"
        );
    }

    #[test]
    fn v2_paging_filters_and_errors() {
        let reg = setup();
        let v = body(&get(&reg, "/api/v2/proxies", "type=tcp&page=1&pageSize=1"));
        assert_eq!(v["data"]["total"], 1);
        assert_eq!(v["data"]["items"][0]["spec"]["tcp"]["remotePort"], 16001);
        let r = get(&reg, "/api/v2/proxies", "status=bogus");
        assert_eq!(r.status, 400);
        assert_eq!(body(&r), json!({"code": 400, "msg": "status must be one of all, online, offline", "data": null}));
        let h = body(&get(&reg, "/api/v2/proxies/web/traffic", ""));
        assert_eq!(h["data"]["history"][6], json!({"date": "2026-11-29", "trafficIn": 39, "trafficOut": 39}));
        assert_eq!(h["data"]["history"][0]["date"], "2026-11-23");
        let r = route(&reg, &ServerInfo::default(), "POST", "/api/v2/system/prune", "", T0, None);
        assert_eq!(r.status, 400);
        assert_eq!(get(&reg, "/nope", "").status, 404);
        assert_eq!(get(&reg, "/", "").location, Some("/static/"));
    }

    #[test]
    fn query_strings_are_decoded() {
        let q = parse_query("q=a%20b&x=1+2&bad=%zz&last=%4");
        assert_eq!(q["q"], "a b");
        assert_eq!(q["x"], "1 2");
        assert_eq!(q["bad"], "%zz");
        assert_eq!(q["last"], "%4");
    }
}
