//! xtcp's hole punching coordination (frp's `pkg/nathole/controller.go`): the server pairs a visitor and the
//! provider of an xtcp proxy by a session id (`sid`) and tells both where to punch. No data passes here.
//!
//! 1. The visitor's NatHoleVisitor with `pre_check`: does the proxy exist, may this user use it? (an empty
//!    NatHoleResp, or the refusal).
//! 2. The real NatHoleVisitor (its STUN addresses, `sign_key`): checked like a visitor connection (the key, the
//!    user), a new `sid`, and a work connection of the provider carrying StartWorkConn then NatHoleSid.
//! 3. The provider's NatHoleClient (its addresses, the `sid`) completes the session: NatHoleResp to the visitor
//!    (role `receiver`, TTL 7) at once and to the provider (role `sender`) a second later, as frps does, so the
//!    receiver's low-TTL packets have opened its NAT before the sender's arrive.
//! 4. NatHoleReport: logged.
//!
//! frps also keeps per-NAT-pair statistics to choose among five punching modes (`natholeAnalysisDataReserveHours`
//! is how long it keeps them); Portway always asks for mode 0 (the one for an easy NAT on either side) and keeps
//! no statistics: the key is accepted and has no effect.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use portway_proto::msg::{Message, RawBody, StartWorkConn};
use portway_proto::nathole::{
    DetectBehavior, NatHole, NatHoleClient, NatHoleReport, NatHoleResp, NatHoleSid, NatHoleVisitor,
};
use tokio::sync::oneshot;
use tracing::{debug, info, warn, Instrument};

use crate::auth::Identity;
use crate::proxy::visitor::{xtcp_target, Secrets};
use crate::session::{Hub, Session};

/// How long the provider has to answer with NatHoleClient (frps: 10 s; shorter here so the visitor, which waits
/// 8 s, hears why).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(6);
/// The sender starts a second after the receiver (frps).
const SENDER_DELAY: Duration = Duration::from_secs(1);
/// How long both sides listen for punch packets (frps's mode 0: 5 s).
const READ_TIMEOUT_MS: i64 = 5_000;
/// The receiver's punch packets die after this many hops: they open its own NAT without reaching the peer's.
const RECEIVER_TTL: i64 = 7;
/// A session is forgotten this long after the answers went out.
const SESSION_LINGER: Duration = Duration::from_secs(40);

/// Where a session's NatHoleClient (and the provider's control channel) goes.
type ClientWaiter = oneshot::Sender<(NatHoleClient, mpsc::Sender<Message>)>;

/// A client session as the coordination sees it (built by [`crate::control`]).
pub struct Peer {
    /// frp's `user`.
    pub user: String,
    /// Who its credentials say it is (Portway's `allowVisitors`).
    pub identity: Identity,
    /// Its control channel.
    pub tx: mpsc::Sender<Message>,
    /// The session itself.
    pub session: Arc<dyn Session>,
}

/// Sessions waiting for the provider's NatHoleClient, by sid.
#[derive(Default)]
pub struct Controller {
    sessions: Arc<Mutex<HashMap<String, ClientWaiter>>>,
}

fn resp(transaction_id: &str, error: String) -> Message {
    NatHoleResp { transaction_id: transaction_id.into(), error, ..Default::default() }.to_message()
}

impl Controller {
    /// Handles NatHoleVisitor from `visitor`'s session.
    pub async fn handle_visitor(&self, hub: &Arc<Hub>, secrets: &Secrets, visitor: Peer, raw: &RawBody) {
        let m = match NatHoleVisitor::from_raw(raw) {
            Ok(m) => m,
            Err(e) => return warn!(error = %e, "malformed NatHoleVisitor ignored"),
        };
        let name = m.proxy_name.clone();
        let rule = hub.cfg.portway.rule_for(&visitor.identity.subject, &visitor.identity.client_id);
        let checked = match xtcp_target(secrets, &name) {
            None => Err(format!("xtcp server for [{name}] doesn't exist")),
            Some(t) if !t.allow_users.iter().any(|u| u == "*" || *u == visitor.user) => {
                Err(format!("xtcp visitor user [{}] not allowed for [{name}]", visitor.user))
            }
            Some(_) if rule.as_ref().is_some_and(|(_, r)| !r.visitor_allowed(&name)) => {
                Err(format!("xtcp visitor of [{name}] refused by policy: not in allowVisitors"))
            }
            Some(t) if !m.pre_check && !portway_proto::auth::verify_privilege_key(&t.sk, m.timestamp, &m.sign_key) => {
                Err(format!("xtcp connection of [{name}] auth failed"))
            }
            Some(t) => Ok(t),
        };
        let target = match checked {
            Ok(t) if !m.pre_check => t,
            Ok(_) => {
                let _ = visitor.tx.send(resp(&m.transaction_id, String::new())).await;
                return;
            }
            Err(error) => {
                info!(proxy = %name, %error, "xtcp visitor refused");
                let _ = visitor.tx.send(resp(&m.transaction_id, error)).await;
                return;
            }
        };
        let Some(owner) = target.owner.upgrade() else {
            let _ = visitor.tx.send(resp(&m.transaction_id, format!("xtcp server for [{name}] doesn't exist"))).await;
            return;
        };
        let sid = portway_proto::nathole::new_id(crate::oidc::now());
        let (tx, rx) = oneshot::channel();
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(sid.clone(), tx);
        }
        let span = tracing::info_span!("nathole", %sid, proxy = %name);
        let sessions = self.sessions.clone();
        hub.tracker.spawn(
            async move {
                if let Err(error) = pair(&visitor.tx, owner.as_ref(), &m, &sid, rx).await {
                    info!(%error, "xtcp hole punch not coordinated");
                    let _ = visitor.tx.send(resp(&m.transaction_id, error)).await;
                }
                if let Ok(mut s) = sessions.lock() {
                    s.remove(&sid);
                }
            }
            .instrument(span),
        );
    }
}

/// Asks the provider for its addresses and answers both sides.
async fn pair(
    visitor: &mpsc::Sender<Message>,
    owner: &dyn Session,
    vm: &NatHoleVisitor,
    sid: &str,
    rx: oneshot::Receiver<(NatHoleClient, mpsc::Sender<Message>)>,
) -> Result<(), String> {
    let start = StartWorkConn { proxy_name: vm.proxy_name.clone(), ..Default::default() };
    let mut w = owner
        .start_work_conn(start)
        .await
        .map_err(|e| format!("the provider of [{}] has no work connection: {e}", vm.proxy_name))?;
    let sid_msg = NatHoleSid { sid: sid.into(), ..Default::default() }.to_message();
    w.wire.write_msg(&mut w.io, &sid_msg).await.map_err(|e| format!("the provider's work connection failed: {e}"))?;
    drop(w);
    let (cm, client) = match tokio::time::timeout(CLIENT_TIMEOUT, rx).await {
        Ok(Ok(x)) => x,
        _ => {
            return Err(format!(
                "the provider of [{}] did not answer the hole punch request within {CLIENT_TIMEOUT:?} (its STUN \
                 server may be unreachable)",
                vm.proxy_name
            ))
        }
    };
    let (v_resp, c_resp) = answers(vm, &cm, sid);
    debug!(visitor = ?vm.mapped_addrs, provider = ?cm.mapped_addrs, "xtcp peers paired");
    let _ = visitor.send(v_resp.to_message()).await;
    tokio::time::sleep(SENDER_DELAY).await;
    let _ = client.send(c_resp.to_message()).await;
    tokio::time::sleep(SESSION_LINGER).await;
    Ok(())
}

/// The two NatHoleResp of a session, mode 0: the visitor receives (low TTL first), the provider sends.
pub fn answers(vm: &NatHoleVisitor, cm: &NatHoleClient, sid: &str) -> (NatHoleResp, NatHoleResp) {
    let compact = |v: &[String]| {
        let mut v = v.to_vec();
        v.dedup();
        v
    };
    let v = NatHoleResp {
        transaction_id: vm.transaction_id.clone(),
        sid: sid.into(),
        protocol: vm.protocol.clone(),
        candidate_addrs: compact(&cm.mapped_addrs),
        assisted_addrs: compact(&cm.assisted_addrs),
        detect_behavior: DetectBehavior {
            role: "receiver".into(),
            ttl: RECEIVER_TTL,
            read_timeout_ms: READ_TIMEOUT_MS,
            ..Default::default()
        },
        error: String::new(),
    };
    let c = NatHoleResp {
        transaction_id: cm.transaction_id.clone(),
        sid: sid.into(),
        protocol: vm.protocol.clone(),
        candidate_addrs: compact(&vm.mapped_addrs),
        assisted_addrs: compact(&vm.assisted_addrs),
        detect_behavior: DetectBehavior {
            role: "sender".into(),
            read_timeout_ms: READ_TIMEOUT_MS,
            ..Default::default()
        },
        error: String::new(),
    };
    (v, c)
}

impl Controller {
    /// Handles NatHoleClient from `provider`'s session.
    pub fn handle_client(&self, secrets: &Secrets, provider: Peer, raw: &RawBody) {
        let m = match NatHoleClient::from_raw(raw) {
            Ok(m) => m,
            Err(e) => return warn!(error = %e, "malformed NatHoleClient ignored"),
        };
        // Only the provider of the proxy the session is for may complete it.
        let owns = xtcp_target(secrets, &m.proxy_name)
            .and_then(|t| t.owner.upgrade())
            .is_some_and(|o| o.run_id() == provider.session.run_id());
        if !owns {
            return warn!(sid = %m.sid, proxy = %m.proxy_name, "NatHoleClient from a client that does not own the proxy ignored");
        }
        match self.sessions.lock().ok().and_then(|mut s| s.remove(&m.sid)) {
            Some(tx) => {
                let _ = tx.send((m, provider.tx));
            }
            None => debug!(sid = %m.sid, "NatHoleClient for an unknown or finished session"),
        }
    }
}

/// Handles NatHoleReport (the provider's outcome).
pub fn handle_report(raw: &RawBody) {
    match NatHoleReport::from_raw(raw) {
        Ok(r) => info!(sid = %r.sid, success = r.success, "xtcp hole punch reported"),
        Err(e) => warn!(error = %e, "malformed NatHoleReport ignored"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // The captured frps answers (../shared/frp-captures/xtcp-visitor): same shapes from the same inputs.
    #[test]
    fn answers_have_frps_shapes() {
        let vm: RawBody = serde_json::from_str(r#"{"transaction_id":"17959742693a4daf4d37190958","proxy_name":"alice.secret","protocol":"quic","sign_key":"f2c8c33e4fe3df245eeb2a0c649bb1ed","timestamp":1795974269,"mapped_addrs":["127.0.0.1:56970","127.0.0.1:56970"],"assisted_addrs":["192.0.2.2:56970"]}"#).unwrap();
        let cm: RawBody = serde_json::from_str(r#"{"transaction_id":"1795974269f70421be32c7f239","proxy_name":"alice.secret","sid":"1795974269450913f4d0e37161","mapped_addrs":["127.0.0.1:41825","127.0.0.1:41825"],"assisted_addrs":["192.0.2.2:41825"]}"#).unwrap();
        let (v, c) = answers(
            &NatHoleVisitor::from_raw(&vm).unwrap(),
            &NatHoleClient::from_raw(&cm).unwrap(),
            "1795974269450913f4d0e37161",
        );
        let want_v: RawBody = serde_json::from_str(r#"{"transaction_id":"17959742693a4daf4d37190958","sid":"1795974269450913f4d0e37161","protocol":"quic","candidate_addrs":["127.0.0.1:41825"],"assisted_addrs":["192.0.2.2:41825"],"detect_behavior":{"role":"receiver","ttl":7,"read_timeout":5000}}"#).unwrap();
        let want_c: RawBody = serde_json::from_str(r#"{"transaction_id":"1795974269f70421be32c7f239","sid":"1795974269450913f4d0e37161","protocol":"quic","candidate_addrs":["127.0.0.1:56970"],"assisted_addrs":["192.0.2.2:56970"],"detect_behavior":{"role":"sender","read_timeout":5000}}"#).unwrap();
        assert_eq!(v.to_message(), Message::NatHoleResp(want_v));
        assert_eq!(c.to_message(), Message::NatHoleResp(want_c));
    }
}
