//! The server name a TLS ClientHello asks for, read without terminating TLS (rustls parses; the bytes are kept
//! and later forwarded unchanged to the client's service, which does the handshake).

/// Largest ClientHello read before giving up (a ClientHello may span records; real ones are < 2 KiB, post-quantum
/// key shares bring them near 2 KiB more).
pub const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// The TLS alert frp answers an unknown server name with: fatal `unrecognized_name` (112).
pub const ALERT_UNRECOGNIZED_NAME: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70];

/// What the bytes read so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// More bytes are needed.
    Incomplete,
    /// A whole ClientHello; its SNI if it has one.
    Complete(Option<String>),
    /// Not a TLS ClientHello.
    NotTls,
}

/// Parses the start of a TLS connection.
pub fn parse_client_hello(buf: &[u8]) -> Hello {
    if buf.is_empty() {
        return Hello::Incomplete;
    }
    if buf[0] != 0x16 {
        return Hello::NotTls;
    }
    let mut acceptor = rustls::server::Acceptor::default();
    let mut rest = buf;
    while !rest.is_empty() {
        match acceptor.read_tls(&mut rest) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => return Hello::NotTls,
        }
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => Hello::Complete(accepted.client_hello().server_name().map(str::to_ascii_lowercase)),
        Ok(None) if buf.len() < MAX_CLIENT_HELLO => Hello::Incomplete,
        Ok(None) | Err(_) => Hello::NotTls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn client_hello(name: &str) -> Vec<u8> {
        let roots = rustls::RootCertStore::empty();
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let mut c = rustls::ClientConnection::new(Arc::new(cfg), server).unwrap();
        let mut out = Vec::new();
        c.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn finds_the_name_in_whole_and_split_hellos() {
        let hello = client_hello("Secure.Portway.Test");
        assert_eq!(parse_client_hello(&hello), Hello::Complete(Some("secure.portway.test".into())));
        for cut in [1, 5, 6, 40, hello.len() - 1] {
            assert_eq!(parse_client_hello(&hello[..cut]), Hello::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn no_sni_and_garbage() {
        // An IP address is not sent as SNI.
        let hello = client_hello("127.0.0.1");
        assert_eq!(parse_client_hello(&hello), Hello::Complete(None));
        assert_eq!(parse_client_hello(b"GET / HTTP/1.1\r\n\r\n"), Hello::NotTls);
        assert_eq!(parse_client_hello(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), Hello::Incomplete);
        assert_eq!(parse_client_hello(&[0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]), Hello::NotTls);
        assert_eq!(parse_client_hello(&[]), Hello::Incomplete);
    }
}
