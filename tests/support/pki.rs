//! A throwaway CA and a server certificate for 127.0.0.1, written to a temp dir, for TLS/WSS tests.

use std::path::PathBuf;

pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// For `localhost` and 127.0.0.1.
    pub fn new() -> Pki {
        Self::build("localhost", true)
    }

    /// For the DNS name `name` only.
    #[allow(dead_code)] // not every suite using support/ needs it
    pub fn for_name(name: &str) -> Pki {
        Self::build(name, false)
    }

    fn build(name: &str, loopback_ip: bool) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
        let dir = std::env::temp_dir().join(format!("portway-pki-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).expect("pki dir");
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Portway test CA");
        let ca = ca_params.self_signed(&ca_key).expect("ca cert");
        let key = KeyPair::generate().expect("server key");
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        if loopback_ip {
            params.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        }
        let cert = params.signed_by(&key, &ca, &ca_key).expect("server cert");
        let p = Pki { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key"), dir };
        std::fs::write(&p.ca, ca.pem()).expect("write ca");
        std::fs::write(&p.cert, cert.pem()).expect("write cert");
        std::fs::write(&p.key, key.serialize_pem()).expect("write key");
        p
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
