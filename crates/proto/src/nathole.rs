//! xtcp's NAT hole punching messages, typed (frp's `pkg/msg` NatHole* and `pkg/nathole`), and the punch packets.
//!
//! On the control channel they travel as [`Message::NatHoleVisitor`] etc. (JSON kept raw there); [`NatHole`]
//! reads and writes the typed form. Between the two peers, over UDP, a punch packet is one [`NatHoleSid`] in v1
//! framing, encrypted as golib's `crypto.Encode` does (a random IV, then AES-128-CFB keyed by the proxy's
//! `secretKey`): only a peer with the secret can answer one.

use serde::{Deserialize, Serialize};

use crate::crypto::{Decryptor, Encryptor, Key, IV_LEN};
use crate::msg::{Message, RawBody};

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Visitor → server: a punch request (or, with `pre_check`, only "may I?").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct NatHoleVisitor {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transaction_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
    #[serde(skip_serializing_if = "is_false")]
    pub pre_check: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sign_key: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mapped_addrs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assisted_addrs: Vec<String>,
}

/// Provider → server: its addresses for session `sid`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct NatHoleClient {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transaction_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mapped_addrs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assisted_addrs: Vec<String>,
}

/// A port range the peer may be behind (hard NATs; Portway's server never sends one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct PortsRange {
    #[serde(skip_serializing_if = "is_zero")]
    pub from: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub to: i64,
}

/// How one side punches: `sender` (sends, waits for the answer) or `receiver` (sends with a low TTL, answers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct DetectBehavior {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub mode: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub ttl: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub send_delay_ms: i64,
    #[serde(rename = "read_timeout", skip_serializing_if = "is_zero")]
    pub read_timeout_ms: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidate_ports: Vec<PortsRange>,
    #[serde(skip_serializing_if = "is_zero")]
    pub send_random_ports: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub listen_random_ports: i64,
}

/// Server → visitor and provider: the other side's addresses and how to punch (or `error`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct NatHoleResp {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transaction_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidate_addrs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assisted_addrs: Vec<String>,
    /// Always written (Go's `omitempty` does not apply to a struct).
    pub detect_behavior: DetectBehavior,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// Server → provider on a work connection (after StartWorkConn), and peer ↔ peer as the punch packet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct NatHoleSid {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transaction_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sid: String,
    #[serde(skip_serializing_if = "is_false")]
    pub response: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nonce: String,
}

/// Provider → server: whether the punch worked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct NatHoleReport {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sid: String,
    #[serde(skip_serializing_if = "is_false")]
    pub success: bool,
}

/// A NatHole* message that is not what its type says.
#[derive(Debug, thiserror::Error)]
#[error("bad {kind} message: {source}")]
pub struct NatHoleError {
    kind: &'static str,
    source: serde_json::Error,
}

/// Typed access to the NatHole* control messages.
pub trait NatHole: Serialize + for<'de> Deserialize<'de> {
    /// frp's type name.
    const KIND: &'static str;
    /// Wraps the raw JSON body as the matching [`Message`].
    fn wrap(raw: RawBody) -> Message;

    /// This message as a control-channel [`Message`].
    fn to_message(&self) -> Message {
        let raw = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            // Plain structs of strings, numbers and lists always serialize to an object.
            _ => RawBody::new(),
        };
        Self::wrap(raw)
    }

    /// Reads the typed form of a raw body.
    ///
    /// # Errors
    /// [`NatHoleError`] when a field has the wrong JSON type.
    fn from_raw(raw: &RawBody) -> Result<Self, NatHoleError> {
        serde_json::from_value(serde_json::Value::Object(raw.clone()))
            .map_err(|source| NatHoleError { kind: Self::KIND, source })
    }
}

macro_rules! nat_hole {
    ($t:ident) => {
        impl NatHole for $t {
            const KIND: &'static str = stringify!($t);
            fn wrap(raw: RawBody) -> Message {
                Message::$t(raw)
            }
        }
    };
}
nat_hole!(NatHoleVisitor);
nat_hole!(NatHoleClient);
nat_hole!(NatHoleResp);
nat_hole!(NatHoleSid);
nat_hole!(NatHoleReport);

/// frp's transaction ids and sids: unix seconds then 16 random hex digits.
pub fn new_id(now_unix: i64) -> String {
    format!("{now_unix}{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// A punch packet: `sid` in v1 framing, encrypted with `key` (the proxy's `secretKey`), a random IV first.
pub fn encode_sid_packet(sid: &NatHoleSid, key: &Key) -> Vec<u8> {
    let mut enc = Encryptor::random(key);
    let mut body = crate::codec::encode_to_vec(&sid.to_message());
    enc.apply(&mut body);
    let mut out = Vec::with_capacity(IV_LEN + body.len());
    out.extend_from_slice(&enc.iv());
    out.extend_from_slice(&body);
    out
}

/// Reads a punch packet; `None` for anything that does not decrypt to a NatHoleSid with `key` (a stray datagram,
/// another secret).
pub fn decode_sid_packet(b: &[u8], key: &Key) -> Option<NatHoleSid> {
    let mut dec = Decryptor::new(key);
    let mut buf = b.to_vec();
    let range = dec.apply(&mut buf);
    match crate::codec::decode(&buf[range]) {
        Ok(Some((Message::NatHoleSid(raw), _))) => NatHoleSid::from_raw(&raw).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn captured_shapes_round_trip() {
        // NatHoleResp to the visitor in ../shared/frp-captures/xtcp-visitor (frps v0.70).
        let captured = r#"{"transaction_id":"17959742693a4daf4d37190958","sid":"1795974269450913f4d0e37161","protocol":"quic","candidate_addrs":["127.0.0.1:41825"],"assisted_addrs":["192.0.2.2:41825"],"detect_behavior":{"role":"receiver","ttl":7,"read_timeout":5000}}"#;
        let raw: RawBody = serde_json::from_str(captured).unwrap();
        let r = NatHoleResp::from_raw(&raw).unwrap();
        assert_eq!((r.detect_behavior.role.as_str(), r.detect_behavior.ttl), ("receiver", 7));
        assert_eq!(r.detect_behavior.read_timeout_ms, 5000);
        let Message::NatHoleResp(back) = r.to_message() else { panic!() };
        assert_eq!(back, raw);
        // The pre-check answer keeps an empty detect_behavior, as frps writes it.
        let pre = NatHoleResp { transaction_id: "x".into(), ..Default::default() };
        let Message::NatHoleResp(b) = pre.to_message() else { panic!() };
        assert_eq!(serde_json::to_string(&b).unwrap(), r#"{"detect_behavior":{},"transaction_id":"x"}"#);
        let v: RawBody =
            serde_json::from_str(r#"{"transaction_id":"1","proxy_name":"alice.secret","pre_check":true}"#).unwrap();
        assert!(NatHoleVisitor::from_raw(&v).unwrap().pre_check);
        let bad: RawBody = serde_json::from_str(r#"{"pre_check":"yes"}"#).unwrap();
        assert!(NatHoleVisitor::from_raw(&bad).unwrap_err().to_string().contains("NatHoleVisitor"));
    }

    #[test]
    fn sid_packets_need_the_secret() {
        let key = Key::derive(b"sk");
        let sid = NatHoleSid { transaction_id: new_id(1), sid: "s1".into(), response: false, nonce: "000".into() };
        let p = encode_sid_packet(&sid, &key);
        assert_eq!(decode_sid_packet(&p, &key), Some(sid));
        assert_eq!(decode_sid_packet(&p, &Key::derive(b"other")), None);
        assert_eq!(decode_sid_packet(b"short", &key), None);
        assert_eq!(decode_sid_packet(&[], &key), None);
        assert_eq!(new_id(1795974269).len(), 10 + 16);
    }
}
