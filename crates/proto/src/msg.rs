//! Every message frp v0.70 defines (`pkg/msg/msg.go`), with frp's JSON names and `omitempty` behaviour.
//!
//! Fields are declared in frp's order so that what Portway sends has the same shape as what frp sends.
#![allow(missing_docs)] // field names and meanings are frp's; see pkg/msg/msg.go

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

/// A string map that frp omits when empty (`metas`, `headers`, ...).
pub type StrMap = BTreeMap<String, String>;

/// Client → server, first message on a new control connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Login {
    #[serde(skip_serializing_if = "is_default")]
    pub version: String,
    #[serde(skip_serializing_if = "is_default")]
    pub hostname: String,
    #[serde(skip_serializing_if = "is_default")]
    pub os: String,
    #[serde(skip_serializing_if = "is_default")]
    pub arch: String,
    #[serde(skip_serializing_if = "is_default")]
    pub user: String,
    #[serde(skip_serializing_if = "is_default")]
    pub privilege_key: String,
    #[serde(skip_serializing_if = "is_default")]
    pub timestamp: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub run_id: String,
    #[serde(skip_serializing_if = "is_default")]
    pub client_id: String,
    #[serde(skip_serializing_if = "is_default")]
    pub metas: StrMap,
    /// A struct in Go, so never omitted: `"client_spec":{}`.
    pub client_spec: ClientSpec,
    #[serde(skip_serializing_if = "is_default")]
    pub pool_count: i64,
}

/// Login's `client_spec`: set by frp's virtual clients; empty for ordinary ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientSpec {
    #[serde(rename = "type", skip_serializing_if = "is_default")]
    pub kind: String,
    #[serde(skip_serializing_if = "is_default")]
    pub always_auth_pass: bool,
}

/// Server → client answer to [`Login`]. A non-empty `error` means refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoginResp {
    #[serde(skip_serializing_if = "is_default")]
    pub version: String,
    #[serde(skip_serializing_if = "is_default")]
    pub run_id: String,
    #[serde(skip_serializing_if = "is_default")]
    pub error: String,
}

/// Client → server: register a proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewProxy {
    #[serde(skip_serializing_if = "is_default")]
    pub proxy_name: String,
    #[serde(skip_serializing_if = "is_default")]
    pub proxy_type: String,
    #[serde(skip_serializing_if = "is_default")]
    pub use_encryption: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub use_compression: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub bandwidth_limit: String,
    #[serde(skip_serializing_if = "is_default")]
    pub bandwidth_limit_mode: String,
    #[serde(skip_serializing_if = "is_default")]
    pub group: String,
    #[serde(skip_serializing_if = "is_default")]
    pub group_key: String,
    #[serde(skip_serializing_if = "is_default")]
    pub metas: StrMap,
    #[serde(skip_serializing_if = "is_default")]
    pub annotations: StrMap,
    #[serde(skip_serializing_if = "is_default")]
    pub remote_port: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub custom_domains: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub subdomain: String,
    #[serde(skip_serializing_if = "is_default")]
    pub locations: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub http_user: String,
    #[serde(skip_serializing_if = "is_default")]
    pub http_pwd: String,
    #[serde(skip_serializing_if = "is_default")]
    pub host_header_rewrite: String,
    #[serde(skip_serializing_if = "is_default")]
    pub headers: StrMap,
    #[serde(skip_serializing_if = "is_default")]
    pub response_headers: StrMap,
    #[serde(skip_serializing_if = "is_default")]
    pub route_by_http_user: String,
    #[serde(skip_serializing_if = "is_default")]
    pub sk: String,
    #[serde(skip_serializing_if = "is_default")]
    pub allow_users: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub multiplexer: String,
}

/// Server → client answer to [`NewProxy`]; `remote_addr` is `":<port>"` for tcp/udp.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewProxyResp {
    #[serde(skip_serializing_if = "is_default")]
    pub proxy_name: String,
    #[serde(skip_serializing_if = "is_default")]
    pub remote_addr: String,
    #[serde(skip_serializing_if = "is_default")]
    pub error: String,
}

/// Client → server: unregister a proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CloseProxy {
    #[serde(skip_serializing_if = "is_default")]
    pub proxy_name: String,
}

/// Client → server, first message on every work connection (plain framing, never control-encrypted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewWorkConn {
    #[serde(skip_serializing_if = "is_default")]
    pub run_id: String,
    #[serde(skip_serializing_if = "is_default")]
    pub privilege_key: String,
    #[serde(skip_serializing_if = "is_default")]
    pub timestamp: i64,
}

/// Server → client on the control channel: open one more work connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReqWorkConn {}

/// Server → client on a work connection: a visitor arrived for `proxy_name`; raw bytes follow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StartWorkConn {
    #[serde(skip_serializing_if = "is_default")]
    pub proxy_name: String,
    #[serde(skip_serializing_if = "is_default")]
    pub src_addr: String,
    #[serde(skip_serializing_if = "is_default")]
    pub dst_addr: String,
    #[serde(skip_serializing_if = "is_default")]
    pub src_port: u16,
    #[serde(skip_serializing_if = "is_default")]
    pub dst_port: u16,
    #[serde(skip_serializing_if = "is_default")]
    pub error: String,
}

/// Visitor → server, first message of a visitor connection (stcp/sudp/xtcp visitors).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewVisitorConn {
    #[serde(skip_serializing_if = "is_default")]
    pub run_id: String,
    #[serde(skip_serializing_if = "is_default")]
    pub proxy_name: String,
    #[serde(skip_serializing_if = "is_default")]
    pub sign_key: String,
    #[serde(skip_serializing_if = "is_default")]
    pub timestamp: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub use_encryption: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub use_compression: bool,
}

/// Server → visitor answer to [`NewVisitorConn`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewVisitorConnResp {
    #[serde(skip_serializing_if = "is_default")]
    pub proxy_name: String,
    #[serde(skip_serializing_if = "is_default")]
    pub error: String,
}

/// Client → server heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ping {
    #[serde(skip_serializing_if = "is_default")]
    pub privilege_key: String,
    #[serde(skip_serializing_if = "is_default")]
    pub timestamp: i64,
}

/// Server → client heartbeat answer; a non-empty `error` means the server refused the heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pong {
    #[serde(skip_serializing_if = "is_default")]
    pub error: String,
}

/// Go's `net.UDPAddr` as encoding/json writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct UdpAddr {
    #[serde(rename = "IP")]
    pub ip: String,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "Zone")]
    pub zone: String,
}

impl UdpAddr {
    /// Converts to a socket address; `None` when the IP does not parse.
    pub fn to_socket_addr(&self) -> Option<std::net::SocketAddr> {
        let ip: std::net::IpAddr = self.ip.parse().ok()?;
        Some(std::net::SocketAddr::new(ip, self.port))
    }
}

impl From<std::net::SocketAddr> for UdpAddr {
    fn from(a: std::net::SocketAddr) -> Self {
        UdpAddr { ip: a.ip().to_string(), port: a.port(), zone: String::new() }
    }
}

/// One datagram carried over a UDP proxy's work connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UdpPacket {
    /// Payload, standard base64 in JSON (Go's `[]byte`).
    #[serde(rename = "c", with = "b64", skip_serializing_if = "is_default")]
    pub content: Vec<u8>,
    #[serde(rename = "l", skip_serializing_if = "Option::is_none")]
    pub local_addr: Option<UdpAddr>,
    #[serde(rename = "r", skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<UdpAddr>,
}

mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        base64::engine::general_purpose::STANDARD.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// A message of the xtcp (NAT hole punching) family: decoded and kept as JSON, not acted on.
pub type RawBody = serde_json::Map<String, serde_json::Value>;

/// Any frp message, tagged by its v1 type byte.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
// Messages live briefly on one task's stack; boxing the big ones would cost an allocation per message instead.
#[allow(clippy::large_enum_variant)]
pub enum Message {
    Login(Login),
    LoginResp(LoginResp),
    NewProxy(NewProxy),
    NewProxyResp(NewProxyResp),
    CloseProxy(CloseProxy),
    NewWorkConn(NewWorkConn),
    ReqWorkConn(ReqWorkConn),
    StartWorkConn(StartWorkConn),
    NewVisitorConn(NewVisitorConn),
    NewVisitorConnResp(NewVisitorConnResp),
    Ping(Ping),
    Pong(Pong),
    UdpPacket(UdpPacket),
    NatHoleVisitor(RawBody),
    NatHoleClient(RawBody),
    NatHoleResp(RawBody),
    NatHoleSid(RawBody),
    NatHoleReport(RawBody),
}

/// v1 type bytes (`pkg/msg/msg.go`).
pub mod type_byte {
    #![allow(missing_docs)]
    pub const LOGIN: u8 = b'o';
    pub const LOGIN_RESP: u8 = b'1';
    pub const NEW_PROXY: u8 = b'p';
    pub const NEW_PROXY_RESP: u8 = b'2';
    pub const CLOSE_PROXY: u8 = b'c';
    pub const NEW_WORK_CONN: u8 = b'w';
    pub const REQ_WORK_CONN: u8 = b'r';
    pub const START_WORK_CONN: u8 = b's';
    pub const NEW_VISITOR_CONN: u8 = b'v';
    pub const NEW_VISITOR_CONN_RESP: u8 = b'3';
    pub const PING: u8 = b'h';
    pub const PONG: u8 = b'4';
    pub const UDP_PACKET: u8 = b'u';
    pub const NAT_HOLE_VISITOR: u8 = b'i';
    pub const NAT_HOLE_CLIENT: u8 = b'n';
    pub const NAT_HOLE_RESP: u8 = b'm';
    pub const NAT_HOLE_SID: u8 = b'5';
    pub const NAT_HOLE_REPORT: u8 = b'6';
}

/// Why a body could not become a message.
#[derive(Debug, thiserror::Error)]
pub enum MsgError {
    /// The type byte is not one frp defines; frp closes the connection on these.
    #[error("unknown frp message type byte 0x{0:02x}: the peer is not speaking frp's v1 protocol")]
    UnknownType(u8),
    /// The JSON body does not fit the message's shape.
    #[error("malformed JSON in frp message '{kind}': {source}")]
    Json {
        /// The message type, as a character.
        kind: char,
        /// What serde_json said.
        source: serde_json::Error,
    },
}

impl Message {
    /// The message's v1 type byte.
    pub fn type_byte(&self) -> u8 {
        use type_byte::*;
        match self {
            Message::Login(_) => LOGIN,
            Message::LoginResp(_) => LOGIN_RESP,
            Message::NewProxy(_) => NEW_PROXY,
            Message::NewProxyResp(_) => NEW_PROXY_RESP,
            Message::CloseProxy(_) => CLOSE_PROXY,
            Message::NewWorkConn(_) => NEW_WORK_CONN,
            Message::ReqWorkConn(_) => REQ_WORK_CONN,
            Message::StartWorkConn(_) => START_WORK_CONN,
            Message::NewVisitorConn(_) => NEW_VISITOR_CONN,
            Message::NewVisitorConnResp(_) => NEW_VISITOR_CONN_RESP,
            Message::Ping(_) => PING,
            Message::Pong(_) => PONG,
            Message::UdpPacket(_) => UDP_PACKET,
            Message::NatHoleVisitor(_) => NAT_HOLE_VISITOR,
            Message::NatHoleClient(_) => NAT_HOLE_CLIENT,
            Message::NatHoleResp(_) => NAT_HOLE_RESP,
            Message::NatHoleSid(_) => NAT_HOLE_SID,
            Message::NatHoleReport(_) => NAT_HOLE_REPORT,
        }
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Login(_) => "Login",
            Message::LoginResp(_) => "LoginResp",
            Message::NewProxy(_) => "NewProxy",
            Message::NewProxyResp(_) => "NewProxyResp",
            Message::CloseProxy(_) => "CloseProxy",
            Message::NewWorkConn(_) => "NewWorkConn",
            Message::ReqWorkConn(_) => "ReqWorkConn",
            Message::StartWorkConn(_) => "StartWorkConn",
            Message::NewVisitorConn(_) => "NewVisitorConn",
            Message::NewVisitorConnResp(_) => "NewVisitorConnResp",
            Message::Ping(_) => "Ping",
            Message::Pong(_) => "Pong",
            Message::UdpPacket(_) => "UDPPacket",
            Message::NatHoleVisitor(_) => "NatHoleVisitor",
            Message::NatHoleClient(_) => "NatHoleClient",
            Message::NatHoleResp(_) => "NatHoleResp",
            Message::NatHoleSid(_) => "NatHoleSid",
            Message::NatHoleReport(_) => "NatHoleReport",
        }
    }

    /// Serialises the JSON body (without the frame header).
    pub fn to_json(&self) -> Vec<u8> {
        let r = match self {
            Message::Login(m) => serde_json::to_vec(m),
            Message::LoginResp(m) => serde_json::to_vec(m),
            Message::NewProxy(m) => serde_json::to_vec(m),
            Message::NewProxyResp(m) => serde_json::to_vec(m),
            Message::CloseProxy(m) => serde_json::to_vec(m),
            Message::NewWorkConn(m) => serde_json::to_vec(m),
            Message::ReqWorkConn(m) => serde_json::to_vec(m),
            Message::StartWorkConn(m) => serde_json::to_vec(m),
            Message::NewVisitorConn(m) => serde_json::to_vec(m),
            Message::NewVisitorConnResp(m) => serde_json::to_vec(m),
            Message::Ping(m) => serde_json::to_vec(m),
            Message::Pong(m) => serde_json::to_vec(m),
            Message::UdpPacket(m) => serde_json::to_vec(m),
            Message::NatHoleVisitor(m)
            | Message::NatHoleClient(m)
            | Message::NatHoleResp(m)
            | Message::NatHoleSid(m)
            | Message::NatHoleReport(m) => serde_json::to_vec(m),
        };
        // Serialising these plain structs cannot fail: no maps with non-string keys, no custom errors.
        r.unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Parses a JSON body of the given type byte.
    pub fn from_json(type_byte: u8, body: &[u8]) -> Result<Message, MsgError> {
        use type_byte::*;
        fn p<'a, T: Deserialize<'a>>(t: u8, b: &'a [u8]) -> Result<T, MsgError> {
            serde_json::from_slice(b).map_err(|source| MsgError::Json { kind: t as char, source })
        }
        let t = type_byte;
        Ok(match t {
            LOGIN => Message::Login(p(t, body)?),
            LOGIN_RESP => Message::LoginResp(p(t, body)?),
            NEW_PROXY => Message::NewProxy(p(t, body)?),
            NEW_PROXY_RESP => Message::NewProxyResp(p(t, body)?),
            CLOSE_PROXY => Message::CloseProxy(p(t, body)?),
            NEW_WORK_CONN => Message::NewWorkConn(p(t, body)?),
            REQ_WORK_CONN => Message::ReqWorkConn(p(t, body)?),
            START_WORK_CONN => Message::StartWorkConn(p(t, body)?),
            NEW_VISITOR_CONN => Message::NewVisitorConn(p(t, body)?),
            NEW_VISITOR_CONN_RESP => Message::NewVisitorConnResp(p(t, body)?),
            PING => Message::Ping(p(t, body)?),
            PONG => Message::Pong(p(t, body)?),
            UDP_PACKET => Message::UdpPacket(p(t, body)?),
            NAT_HOLE_VISITOR => Message::NatHoleVisitor(p(t, body)?),
            NAT_HOLE_CLIENT => Message::NatHoleClient(p(t, body)?),
            NAT_HOLE_RESP => Message::NatHoleResp(p(t, body)?),
            NAT_HOLE_SID => Message::NatHoleSid(p(t, body)?),
            NAT_HOLE_REPORT => Message::NatHoleReport(p(t, body)?),
            other => return Err(MsgError::UnknownType(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_shape_matches_frp() {
        let m = Message::Login(Login {
            version: "0.70.0".into(),
            hostname: "vm".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            privilege_key: "95bd7e26c3608e2cf7fd327814f7b372".into(),
            timestamp: 1795552826,
            pool_count: 1,
            ..Default::default()
        });
        assert_eq!(
            String::from_utf8(m.to_json()).unwrap(),
            r#"{"version":"0.70.0","hostname":"vm","os":"linux","arch":"amd64","privilege_key":"95bd7e26c3608e2cf7fd327814f7b372","timestamp":1795552826,"client_spec":{},"pool_count":1}"#
        );
    }

    #[test]
    fn udp_packet_round_trips_base64_and_addr() {
        let body = br#"{"c":"dm9pY2UtZGF0YWdyYW0=","r":{"IP":"127.0.0.1","Port":53658,"Zone":""}}"#;
        let m = Message::from_json(b'u', body).unwrap();
        let Message::UdpPacket(p) = &m else { panic!("not a UDPPacket: {m:?}") };
        assert_eq!(p.content, b"voice-datagram");
        assert_eq!(p.remote_addr.as_ref().unwrap().port, 53658);
        assert_eq!(m.to_json(), body.to_vec());
    }

    #[test]
    fn unknown_type_and_bad_json_are_errors() {
        assert!(matches!(Message::from_json(b'Z', b"{}"), Err(MsgError::UnknownType(b'Z'))));
        assert!(matches!(Message::from_json(b'o', b"{\"timestamp\":\"x\"}"), Err(MsgError::Json { .. })));
        assert!(matches!(Message::from_json(b'r', b"[1,2]"), Err(MsgError::Json { .. })));
    }

    #[test]
    fn every_type_byte_round_trips() {
        for t in b"o1p2cwrsv3h4uinm56" {
            let m = Message::from_json(*t, b"{}").unwrap();
            assert_eq!(m.type_byte(), *t);
            let again = Message::from_json(*t, &m.to_json()).unwrap();
            assert_eq!(again, m);
        }
    }
}
