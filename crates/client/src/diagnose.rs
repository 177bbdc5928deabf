//! "Check": the way to the server, one step at a time — DNS, TCP connect, TLS, token request, login — each with its
//! result and time in plain words, so a person can tell a wrong secret from a server that is down from a firewall.
//! Stops at the first failure with what to do; the steps after it are reported as not checked.
//!
//! The TLS step looks at the certificate itself (subject, issuer, expiry, trusted or not against the configured
//! trust); the token and login steps go through the engine's own code ([`crate::engine::credentials`],
//! [`crate::engine::login`], [`Connector`]), so a passing check means the engine's connection would pass too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portway_proto::transport::{self, BoxedIo};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::{CertificateError, RootCertStore};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::auth::ClientAuth;
use crate::config::ClientConfig;
use crate::connector::{ConnectError, Connector};
use crate::engine::{self, SessionError};
use crate::oidc::OidcError;
use crate::secret::SecretSource;

/// How long a name lookup may take.
const DNS_TIMEOUT: Duration = Duration::from_secs(10);

/// The steps, in the order they run.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum StepKind {
    /// Looking up `serverAddr`.
    Dns,
    /// A TCP connection to `serverAddr:serverPort`.
    Tcp,
    /// The TLS handshake and the server's certificate.
    Tls,
    /// The OIDC access token (or the token-auth note).
    Token,
    /// frp's Login and the server's LoginResp.
    Login,
}

impl StepKind {
    /// All steps in order.
    pub const ALL: [StepKind; 5] = [StepKind::Dns, StepKind::Tcp, StepKind::Tls, StepKind::Token, StepKind::Login];

    /// The step's name for people.
    pub fn title(self) -> &'static str {
        match self {
            StepKind::Dns => "DNS",
            StepKind::Tcp => "TCP connect",
            StepKind::Tls => "TLS",
            StepKind::Token => "Token request",
            StepKind::Login => "Login",
        }
    }
}

/// How a step went.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Fine.
    Ok,
    /// Works, but something deserves attention (an unverified certificate, an empty token).
    Warn,
    /// Failed: the steps after it did not run.
    Fail,
    /// Not run (an earlier step failed, or it does not apply to this configuration).
    Skipped,
}

/// The server's certificate as the TLS step saw it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertInfo {
    /// Subject (RFC 4514 text).
    pub subject: String,
    /// Issuer (RFC 4514 text).
    pub issuer: String,
    /// Start of validity, seconds since the epoch.
    pub not_before: i64,
    /// End of validity, seconds since the epoch.
    pub not_after: i64,
    /// Subject and issuer are the same.
    pub self_signed: bool,
    /// Trusted by what it was checked against (see `trusted_by`).
    pub trusted: bool,
    /// What the certificate was checked against, and the answer when not trusted.
    pub trust: String,
}

/// One step's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Which step.
    pub step: StepKind,
    /// How it went.
    pub outcome: Outcome,
    /// A stable code for the result (`refused`, `timeout`, `wrongSecret`, `untrusted`, ...), for tests and the UI.
    pub code: String,
    /// What happened, in plain words.
    pub summary: String,
    /// What to do about it (empty when nothing is to be done).
    pub fix: String,
    /// The underlying error or the provider's/server's own text, when there is one.
    pub detail: String,
    /// How long the step took, in milliseconds.
    pub millis: u64,
    /// The TLS step's certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertInfo>,
}

impl Step {
    fn new(step: StepKind, outcome: Outcome, code: &str, summary: impl Into<String>) -> Step {
        Step {
            step,
            outcome,
            code: code.into(),
            summary: summary.into(),
            fix: String::new(),
            detail: String::new(),
            millis: 0,
            certificate: None,
        }
    }
    fn fix(mut self, fix: impl Into<String>) -> Step {
        self.fix = fix.into();
        self
    }
    fn detail(mut self, detail: impl Into<String>) -> Step {
        self.detail = detail.into();
        self
    }
    fn took(mut self, since: Instant) -> Step {
        self.millis = since.elapsed().as_millis() as u64;
        self
    }
}

/// Runs the steps in order against `cfg` with the secret from `secret` (`auth.token` with token auth,
/// `auth.oidc.clientSecret` with OIDC) and returns one result per step, always five: the ones after a failure
/// are [`Outcome::Skipped`].
///
/// Each network step is bounded (`transport.dialServerTimeout`, 10 s for DNS and the login answer, 15 s for the
/// token endpoint). Cancel safe: dropping the future closes whatever it opened.
pub async fn check(cfg: &ClientConfig, secret: &SecretSource) -> Vec<Step> {
    let mut steps = Vec::with_capacity(5);
    let (dns, addrs) = dns(cfg).await;
    steps.push(dns);
    let mut tcp_conn = None;
    if let Some(addrs) = addrs {
        let (s, conn) = tcp(cfg, &addrs).await;
        steps.push(s);
        tcp_conn = conn;
    }
    if steps.last().is_some_and(|s| s.outcome != Outcome::Fail) {
        steps.push(tls(cfg, tcp_conn).await);
    }
    let mut creds = None;
    if steps.last().is_some_and(|s| s.outcome != Outcome::Fail) {
        let (s, c) = token(cfg, secret).await;
        steps.push(s);
        creds = c;
    }
    if let Some((auth, ikm)) = creds.filter(|_| steps.last().is_some_and(|s| s.outcome != Outcome::Fail)) {
        steps.push(login(cfg, &auth, &ikm).await);
    }
    for kind in StepKind::ALL.iter().skip(steps.len()) {
        steps.push(Step::new(*kind, Outcome::Skipped, "notRun", "not checked: fix the step above first"));
    }
    steps
}

/// The outbound proxy of the server connection, when one is set (QUIC does not use it).
fn via_proxy(cfg: &ClientConfig) -> Option<crate::via_proxy::ProxyUrl> {
    (cfg.transport.protocol != "quic").then(|| cfg.transport.dial_options(cfg.resolver()).proxy).flatten()
}

fn host_port(cfg: &ClientConfig) -> String {
    match cfg.server_addr.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", cfg.server_port),
        _ => format!("{}:{}", cfg.server_addr, cfg.server_port),
    }
}

async fn dns(cfg: &ClientConfig) -> (Step, Option<Vec<SocketAddr>>) {
    let t0 = Instant::now();
    let host = &cfg.server_addr;
    if let Some(p) = via_proxy(cfg) {
        // The proxy resolves serverAddr; this computer may not be able to (and need not).
        let s = Step::new(
            StepKind::Dns,
            Outcome::Skipped,
            "viaProxy",
            format!("{host} is looked up by the proxy {} (transport.proxyURL)", p.addr),
        );
        return (s.took(t0), Some(Vec::new()));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        let s =
            Step::new(StepKind::Dns, Outcome::Ok, "ipAddress", format!("{host} is an IP address: nothing to look up"));
        return (s.took(t0), Some(vec![SocketAddr::new(ip, cfg.server_port)]));
    }
    let resolver = cfg.resolver();
    let (fix, silent_fix) = match resolver {
        crate::dns::Resolver::System => (
            format!("Check serverAddr ({host}) for typos, and that this computer's network and DNS work."),
            "This computer's DNS does not answer: check the network connection.".to_string(),
        ),
        crate::dns::Resolver::Server(sa) => (
            format!("Check serverAddr ({host}) for typos, and that the DNS server {sa} (dnsServer) knows it."),
            format!("The DNS server {sa} (dnsServer) does not answer: check its address, or remove dnsServer to use the system resolver."),
        ),
    };
    let timeout = |t0| {
        let s = Step::new(
            StepKind::Dns,
            Outcome::Fail,
            "timeout",
            format!("looking up {host} with {} got no answer within {} s", resolver.describe(), DNS_TIMEOUT.as_secs()),
        );
        (s.fix(silent_fix.clone()).took(t0), None)
    };
    match tokio::time::timeout(DNS_TIMEOUT, resolver.lookup(host, cfg.server_port)).await {
        Ok(Ok(addrs)) => {
            if addrs.is_empty() {
                let s = Step::new(StepKind::Dns, Outcome::Fail, "notFound", format!("{host} has no address in DNS"));
                return (s.fix(fix).took(t0), None);
            }
            let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            let by = match resolver {
                crate::dns::Resolver::System => String::new(),
                crate::dns::Resolver::Server(sa) => format!(" (dnsServer {sa})"),
            };
            let s = Step::new(StepKind::Dns, Outcome::Ok, "resolved", format!("{host} is {}{by}", list.join(", ")));
            (s.took(t0), Some(addrs))
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => timeout(t0),
        Ok(Err(e)) => {
            let s = Step::new(StepKind::Dns, Outcome::Fail, "notFound", format!("{host} cannot be found in DNS"));
            (s.fix(fix).detail(e.to_string()).took(t0), None)
        }
        Err(_) => timeout(t0),
    }
}

async fn tcp(cfg: &ClientConfig, addrs: &[SocketAddr]) -> (Step, Option<TcpStream>) {
    let t0 = Instant::now();
    if cfg.transport.protocol == "quic" {
        let s = Step::new(
            StepKind::Tcp,
            Outcome::Skipped,
            "quic",
            "QUIC runs over UDP: there is no TCP connection; the login step checks the QUIC connection",
        );
        return (s, None);
    }
    let port = cfg.server_port;
    let secs = cfg.transport.dial_server_timeout.max(1) as u64;
    if let Some(p) = via_proxy(cfg) {
        let opts = cfg.transport.dial_options(cfg.resolver());
        let target = host_port(cfg);
        let dial = crate::via_proxy::dial(&cfg.server_addr, port, &opts);
        let s = match tokio::time::timeout(Duration::from_secs(secs), dial).await {
            Ok(Ok(c)) => {
                let s = Step::new(
                    StepKind::Tcp,
                    Outcome::Ok,
                    "connected",
                    format!("connected to {target} through the proxy {}", p.addr),
                );
                return (s.took(t0), Some(c));
            }
            Ok(Err(e)) => Step::new(
                StepKind::Tcp,
                Outcome::Fail,
                "proxy",
                format!("connecting to {target} through the proxy {} failed", p.addr),
            )
            .fix(
                "Check transport.proxyURL (scheme, address, user and password) and that the proxy lets this \
                 computer connect to serverAddr:serverPort.",
            )
            .detail(e.to_string()),
            Err(_) => Step::new(
                StepKind::Tcp,
                Outcome::Fail,
                "timeout",
                format!("no connection to {target} through the proxy {} within {secs} s", p.addr),
            )
            .fix("The proxy or the server does not answer: check transport.proxyURL, serverAddr and serverPort."),
        };
        return (s.took(t0), None);
    }
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(Duration::from_secs(secs), TcpStream::connect(addr)).await {
            Ok(Ok(c)) => {
                let s = Step::new(StepKind::Tcp, Outcome::Ok, "connected", format!("connected to {addr}"));
                return (s.took(t0), Some(c));
            }
            Ok(Err(e)) => last = Some((addr, Some(e))),
            Err(_) => last = Some((addr, None)),
        }
    }
    let Some((addr, err)) = last else {
        return (Step::new(StepKind::Tcp, Outcome::Fail, "noAddress", "no address to connect to"), None);
    };
    let s = match err {
        None => Step::new(
            StepKind::Tcp,
            Outcome::Fail,
            "timeout",
            format!("no answer from {addr} within {secs} s (the connection attempt was silently dropped)"),
        )
        .fix(format!(
            "A firewall drops the connection, or serverAddr points to the wrong machine: open TCP port {port} on \
             the server's firewall (and any cloud security group), and check serverAddr."
        )),
        Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Step::new(
            StepKind::Tcp,
            Outcome::Fail,
            "refused",
            format!("{addr} refused the connection: the machine answers, but nothing listens on port {port}"),
        )
        .fix(format!(
            "The server is down, or serverPort is wrong: start portway-server (or frps) there, and check that \
             serverPort ({port}) is the server's bindPort."
        ))
        .detail(e.to_string()),
        Some(e) if matches!(e.kind(), std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable) => {
            Step::new(StepKind::Tcp, Outcome::Fail, "unreachable", format!("{addr} cannot be reached from here"))
                .fix("Check this computer's network connection (VPN, Wi-Fi), and serverAddr.")
                .detail(e.to_string())
        }
        Some(e) => Step::new(StepKind::Tcp, Outcome::Fail, "failed", format!("connecting to {addr} failed"))
            .fix("Check serverAddr and serverPort, and the network connection.")
            .detail(e.to_string()),
    };
    (s.took(t0), None)
}

fn tls_name(cfg: &ClientConfig) -> String {
    if cfg.transport.tls.server_name.is_empty() {
        cfg.server_addr.clone()
    } else {
        cfg.transport.tls.server_name.clone()
    }
}

async fn tls(cfg: &ClientConfig, conn: Option<TcpStream>) -> Step {
    let t0 = Instant::now();
    let t = &cfg.transport;
    let wss = t.protocol == "wss";
    if t.protocol == "quic" {
        return Step::new(StepKind::Tls, Outcome::Skipped, "quic", "QUIC's TLS is checked with the login step");
    }
    if !t.tls.enable && !wss {
        return Step::new(
            StepKind::Tls,
            Outcome::Skipped,
            "off",
            "TLS is off (transport.tls.enable = false): only auth.token's cipher protects the control connection",
        );
    }
    let Some(conn) = conn else {
        return Step::new(StepKind::Tls, Outcome::Skipped, "notRun", "not checked: no TCP connection");
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let setup_fail = |e: String| {
        Step::new(StepKind::Tls, Outcome::Fail, "setup", "the client's TLS settings cannot be used")
            .fix("Check transport.tls.certFile, transport.tls.keyFile and transport.tls.trustedCaFile.")
            .detail(e)
    };
    let built = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map(|b| b.dangerous().with_custom_certificate_verifier(transport::accept_any_server_cert()));
    let builder = match built {
        Ok(b) => b,
        Err(e) => return setup_fail(e.to_string()).took(t0),
    };
    let tls_cfg = match (t.tls.cert_file.as_str(), t.tls.key_file.as_str()) {
        ("", _) | (_, "") => builder.with_no_client_auth(),
        (c, k) => {
            let pair = transport::load_certs("transport.tls.certFile", c.as_ref())
                .and_then(|c2| Ok((c2, transport::load_key("transport.tls.keyFile", k.as_ref())?)));
            match pair.map(|(c2, k2)| builder.with_client_auth_cert(c2, k2)) {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => return setup_fail(e.to_string()).took(t0),
                Err(e) => return setup_fail(e.to_string()).took(t0),
            }
        }
    };
    let name = tls_name(cfg);
    let server_name = match transport::server_name(&name) {
        Ok(n) => n,
        Err(e) => return setup_fail(e.to_string()).took(t0),
    };
    let secs = t.dial_server_timeout.max(1) as u64;
    let hp = host_port(cfg);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_cfg));
    let handshake = async {
        let mut io: BoxedIo = Box::new(conn);
        if t.protocol == "websocket" {
            io = Box::new(portway_proto::ws::connect(io, &hp).await?);
        }
        if !wss && !t.tls.disable_custom_tls_first_byte {
            io.write_all(&[transport::CUSTOM_TLS_FIRST_BYTE]).await?;
        }
        connector.connect(server_name.clone(), io).await
    };
    let tls_io = match tokio::time::timeout(Duration::from_secs(secs), handshake).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Step::new(StepKind::Tls, Outcome::Fail, "handshake", "the server did not complete a TLS handshake")
                .fix(
                    "The port may not speak TLS (a plain frps with transport.tls.enable = false on this side only \
                     works without TLS: set transport.tls.enable to match), or the server wants a client \
                     certificate (transport.tls.certFile / keyFile).",
                )
                .detail(e.to_string())
                .took(t0)
        }
        Err(_) => {
            return Step::new(
                StepKind::Tls,
                Outcome::Fail,
                "timeout",
                format!("the TLS handshake got no answer within {secs} s"),
            )
            .fix("Something between here and the server holds the connection (a proxy or a firewall), or the port is not a Portway/frp server.")
            .took(t0)
        }
    };
    let chain: Vec<CertificateDer<'static>> =
        tls_io.get_ref().1.peer_certificates().unwrap_or_default().iter().map(|c| c.clone().into_owned()).collect();
    drop(tls_io);
    let Some(end) = chain.first() else {
        return Step::new(StepKind::Tls, Outcome::Fail, "noCertificate", "the server sent no certificate").took(t0);
    };
    // What the engine verifies against: trustedCaFile; wss also the public web roots; else nothing (as frpc).
    let ca = t.tls.trusted_ca_file.as_str();
    let verifies = !ca.is_empty() || wss;
    let (roots, against) = if ca.is_empty() {
        (RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }, "the public web roots".to_string())
    } else {
        let mut store = RootCertStore::empty();
        match transport::load_certs("transport.tls.trustedCaFile", ca.as_ref()) {
            Ok(certs) => {
                for c in certs {
                    let _ = store.add(c);
                }
            }
            Err(e) => return setup_fail(e.to_string()).took(t0),
        }
        (store, format!("transport.tls.trustedCaFile ({ca})"))
    };
    let verdict = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())
        .and_then(|v| {
            v.verify_server_cert(end, &chain[1..], &server_name, &[], UnixTime::now()).map_err(|e| why_untrusted(&e))
        });
    let mut info = describe_cert(end);
    info.trusted = verdict.is_ok();
    info.trust = match &verdict {
        Ok(_) => format!("trusted by {against} for the name {name}"),
        Err(why) => format!("not trusted by {against}: {why}"),
    };
    let about = format!(
        "certificate for {} issued by {}{}, valid until {}",
        info.subject,
        if info.self_signed { "itself" } else { &info.issuer },
        if info.self_signed { " (self-signed)" } else { "" },
        date(info.not_after)
    );
    let expired = info.not_after < crate::auth::now_ts();
    let step = match (&verdict, verifies) {
        (Ok(_), _) => Step::new(StepKind::Tls, Outcome::Ok, "trusted", format!("{about}; {}", info.trust)),
        (Err(_), true) => Step::new(StepKind::Tls, Outcome::Fail, "untrusted", format!("{about}; {}", info.trust)).fix(
            if ca.is_empty() {
                "With wss the server needs a certificate from a public CA for this name; or set \
                 transport.tls.trustedCaFile to the CA that signed it (and transport.tls.serverName to a name in it)."
                    .to_string()
            } else {
                format!(
                    "Point transport.tls.trustedCaFile at the CA that signed the server's certificate (now {ca}), \
                     and set transport.tls.serverName to a name the certificate holds."
                )
            },
        ),
        (Err(_), false) => Step::new(
            StepKind::Tls,
            Outcome::Warn,
            if expired { "expired" } else { "unverified" },
            format!(
                "{about}; {}. The client does not check it (no transport.tls.trustedCaFile, as frpc), so the \
                 connection goes on",
                info.trust
            ),
        )
        .fix(
            "To be sure this is your server and not an impostor, set transport.tls.trustedCaFile to the CA that \
             signed its certificate.",
        ),
    };
    Step { certificate: Some(info), ..step }.took(t0)
}

fn why_untrusted(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "signed by an authority it does not know".into(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "the certificate has expired".into(),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the certificate is not valid yet (check this computer's clock)".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the certificate is not for this name".into()
            }
            CertificateError::Revoked => "the certificate is revoked".into(),
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

fn describe_cert(der: &CertificateDer<'_>) -> CertInfo {
    use x509_cert::der::Decode;
    match x509_cert::Certificate::from_der(der.as_ref()) {
        Ok(c) => {
            let tbs = &c.tbs_certificate;
            let (subject, issuer) = (tbs.subject.to_string(), tbs.issuer.to_string());
            CertInfo {
                self_signed: subject == issuer,
                subject: if subject.is_empty() { "(no subject)".into() } else { subject },
                issuer,
                not_before: tbs.validity.not_before.to_unix_duration().as_secs() as i64,
                not_after: tbs.validity.not_after.to_unix_duration().as_secs() as i64,
                trusted: false,
                trust: String::new(),
            }
        }
        Err(e) => CertInfo {
            subject: format!("(unreadable certificate: {e})"),
            issuer: String::new(),
            not_before: 0,
            not_after: 0,
            self_signed: false,
            trusted: false,
            trust: String::new(),
        },
    }
}

/// `YYYY-MM-DD` (UTC) for seconds since the epoch (days to civil date, H. Hinnant's algorithm).
pub fn date(secs: i64) -> String {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

async fn token(cfg: &ClientConfig, secret: &SecretSource) -> (Step, Option<(Arc<ClientAuth>, engine::Ikm)>) {
    let t0 = Instant::now();
    let (auth, _key, ikm) = match engine::credentials(cfg, secret) {
        Ok(c) => c,
        Err(e) => {
            let fix = match e {
                SessionError::Auth(_) => "Check auth.oidc.tokenEndpointURL and the auth.oidc.* settings.",
                _ => "Put the secret where the configuration says it is (the environment variable or file).",
            };
            let s = Step::new(
                StepKind::Token,
                Outcome::Fail,
                "secret",
                "the secret or the sign-in settings cannot be used",
            );
            return (s.fix(fix).detail(e.to_string()).took(t0), None);
        }
    };
    let step = match auth.as_ref() {
        ClientAuth::Token { token, .. } if token.is_empty() => Step::new(
            StepKind::Token,
            Outcome::Warn,
            "emptyToken",
            "token auth with an empty auth.token: only a server with an empty token accepts it",
        )
        .fix("Set auth.token to the server's auth.token."),
        ClientAuth::Token { .. } => Step::new(
            StepKind::Token,
            Outcome::Ok,
            "tokenAuth",
            "token auth: nothing to request; the login step proves auth.token",
        ),
        ClientAuth::Oidc { source, .. } => match source.token().await {
            Ok(t) => {
                let mut info = crate::oidc::describe(t.expose(), Duration::ZERO);
                let left = (info.expires_at - crate::auth::now_ts()).max(0);
                info.expires_in = left as u64;
                let who = if info.client_id.is_empty() { cfg.auth.oidc.client_id.clone() } else { info.client_id };
                let from = if info.issuer.is_empty() { String::new() } else { format!(" from {}", info.issuer) };
                Step::new(
                    StepKind::Token,
                    Outcome::Ok,
                    "token",
                    format!("got an access token for client {who}{from}, valid for {} min", left / 60),
                )
            }
            Err(e) => oidc_failure(cfg, &e),
        },
    };
    (step.took(t0), Some((auth, ikm)))
}

fn oidc_failure(cfg: &ClientConfig, e: &OidcError) -> Step {
    let id = &cfg.auth.oidc.client_id;
    let (code, summary, fix) = match e {
        OidcError::InvalidClient { .. } => (
            "wrongClient",
            format!("the provider does not accept client ID {id:?} with this secret"),
            "Check auth.oidc.clientID and the client secret against the provider's application.".to_string(),
        ),
        OidcError::InvalidGrant { .. } => (
            "wrongSecret",
            "the provider refused the client secret (or a policy denies this client)".into(),
            "Copy the client secret again from the provider, and check the application's policies.".into(),
        ),
        OidcError::Unreachable { url, .. } => (
            "providerUnreachable",
            format!("the token endpoint {url} cannot be reached"),
            "Check auth.oidc.tokenEndpointURL, the network, and auth.oidc.trustedCaFile / proxyURL.".into(),
        ),
        OidcError::BadUrl { .. } | OidcError::Setup(_) => (
            "setup",
            "the token request cannot be made with these settings".into(),
            "Check auth.oidc.tokenEndpointURL, auth.oidc.trustedCaFile and auth.oidc.proxyURL.".into(),
        ),
        OidcError::Provider { error, .. } => (
            "provider",
            format!("the provider refused the token request ({error})"),
            "Check auth.oidc.scope, auth.oidc.audience and the application's settings at the provider.".into(),
        ),
        OidcError::TokenFile { path, .. } => (
            "tokenFile",
            format!("the access token cannot be taken from {path}"),
            "Check auth.oidc.tokenSource.file.path: the file must exist, be readable and hold the access token.".into(),
        ),
        OidcError::BadResponse(_) => (
            "badResponse",
            "the token endpoint answered something that is not a token".into(),
            "auth.oidc.tokenEndpointURL probably points to the wrong page: use the provider's token endpoint.".into(),
        ),
    };
    Step::new(StepKind::Token, Outcome::Fail, code, summary).fix(fix).detail(e.to_string())
}

async fn login(cfg: &ClientConfig, auth: &Arc<ClientAuth>, ikm: &engine::Ikm) -> Step {
    let t0 = Instant::now();
    let shared = Arc::new(cfg.clone());
    let attempt = async {
        let connector = Connector::connect(shared).await?;
        let mut conn = connector.open().await?;
        let r = engine::login(cfg, &mut conn, auth, ikm, "").await;
        // Close at once: this was only a check (the server ends the session when the connection closes).
        let _ = conn.shutdown().await;
        r
    };
    let step = match attempt.await {
        Ok((resp, _)) => Step::new(
            StepKind::Login,
            Outcome::Ok,
            "loggedIn",
            format!(
                "the server accepted the login (server version {}, session {})",
                if resp.version.is_empty() { "unknown" } else { &resp.version },
                resp.run_id
            ),
        ),
        Err(SessionError::LoginRefused(msg)) => {
            let token_auth = cfg.auth.method != "oidc";
            let looks_like_token = msg.contains("token") || msg.contains("authorization");
            let (code, fix) = if token_auth && looks_like_token {
                (
                    "wrongToken",
                    "The secret (auth.token) differs from the server's auth.token: copy it again from the server's \
                     frps.toml.",
                )
            } else if looks_like_token || msg.contains("oidc") || msg.contains("audience") || msg.contains("issuer") {
                (
                    "tokenRejected",
                    "The provider gave a token but the server does not accept it: the server's auth.oidc.issuer and \
                     auth.oidc.audience must match the provider's application, and its policy must allow this client.",
                )
            } else {
                ("refused", "Read the server's reason above; the server's log says more.")
            };
            Step::new(StepKind::Login, Outcome::Fail, code, format!("the server refused the login: {msg}"))
                .fix(fix)
                .detail(msg)
        }
        Err(SessionError::LoginTimeout(d)) => Step::new(
            StepKind::Login,
            Outcome::Fail,
            "noAnswer",
            format!("the server accepted the connection but did not answer the login within {} s", d.as_secs()),
        )
        .fix("Is this port a Portway/frp server? Is TLS on at one side only (transport.tls.enable)?"),
        Err(SessionError::Closed) => Step::new(
            StepKind::Login,
            Outcome::Fail,
            "closed",
            "the server closed the connection instead of answering the login",
        )
        .fix(
            "The server may require TLS (transport.tls.force) while this side has transport.tls.enable = false, or \
             speak another protocol (transport.protocol, transport.wireProtocol).",
        ),
        Err(SessionError::Connect(e)) => {
            let code = if matches!(e, ConnectError::DialTimeout { .. }) { "timeout" } else { "connect" };
            Step::new(StepKind::Login, Outcome::Fail, code, "the connection for the login failed")
                .fix("Check transport.protocol and the transport.tls.* settings against the server's.")
                .detail(e.to_string())
        }
        Err(SessionError::Auth(crate::auth::ClientAuthError::Oidc(e))) => oidc_failure(cfg, &e),
        Err(e) => Step::new(StepKind::Login, Outcome::Fail, "protocol", "the login failed")
            .fix("Check transport.protocol and transport.wireProtocol against the server's.")
            .detail(e.to_string()),
    };
    Step { step: StepKind::Login, ..step }.took(t0)
}

/// The steps as text, one block per step (the CLI's output).
pub fn render(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        let mark = match s.outcome {
            Outcome::Ok => "ok  ",
            Outcome::Warn => "warn",
            Outcome::Fail => "FAIL",
            Outcome::Skipped => "--  ",
        };
        let time = if s.outcome == Outcome::Skipped { String::new() } else { format!(" ({} ms)", s.millis) };
        out.push_str(&format!("[{mark}] {:<13} {}{time}\n", s.step.title(), s.summary));
        if let Some(c) = &s.certificate {
            out.push_str(&format!("       subject: {}\n       issuer:  {}\n", c.subject, c.issuer));
            out.push_str(&format!("       valid:   {} to {}\n", date(c.not_before), date(c.not_after)));
        }
        if !s.fix.is_empty() {
            out.push_str(&format!("       what to do: {}\n", s.fix));
        }
        if !s.detail.is_empty() && s.outcome == Outcome::Fail {
            out.push_str(&format!("       detail: {}\n", s.detail));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_800_000_000), "2027-01-15");
    }
}
