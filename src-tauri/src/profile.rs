//! The desktop profile: what the form edits, stored in the OS config directory **without the secret** (the secret
//! lives in the keychain). Converts to the engine's `ClientConfig` and to/from frpc.toml.

use portway_client::config::{ClientConfig, ProxyConfig, ProxyTransport};
use serde::{Deserialize, Serialize};

/// Server section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerSection {
    pub addr: String,
    pub port: u16,
    pub protocol: String,
    pub tls: bool,
}

/// Authentication section. `has_secret` is computed, never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthSection {
    pub method: String,
    pub token_endpoint_url: String,
    pub client_id: String,
    pub audience: String,
    pub scope: String,
    #[serde(default)]
    pub has_secret: bool,
}

/// One proxy row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub local_ip: String,
    pub local_port: u16,
    pub remote_port: u16,
    pub enabled: bool,
}

impl ProxyDef {
    /// The engine's proxy configuration for this row.
    pub fn to_engine(&self) -> ProxyConfig {
        ProxyConfig {
            name: self.name.clone(),
            kind: self.kind.clone(),
            local_ip: self.local_ip.clone(),
            local_port: self.local_port,
            remote_port: self.remote_port,
            transport: ProxyTransport::default(),
            ..ProxyConfig::default()
        }
    }
}

/// App options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Options {
    pub connect_on_launch: bool,
    pub start_minimized: bool,
    pub launch_at_login: bool,
}

/// The whole profile, as the UI sees it (docs/ui-contract.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub server: ServerSection,
    pub auth: AuthSection,
    pub proxies: Vec<ProxyDef>,
    pub options: Options,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            server: ServerSection { addr: String::new(), port: 7000, protocol: "tcp".into(), tls: true },
            auth: AuthSection {
                method: "oidc".into(),
                token_endpoint_url: String::new(),
                client_id: String::new(),
                audience: String::new(),
                scope: String::new(),
                has_secret: false,
            },
            proxies: Vec::new(),
            options: Options::default(),
        }
    }
}

/// A profile field that cannot work, named for the form.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The field (e.g. `server.port`, `proxies[1].name`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Profile {
    /// The same checks the form makes, repeated here because the backend trusts no input.
    pub fn validate(&self) -> Result<(), Invalid> {
        let bad = |field: String, message: &str| Err(Invalid { field, message: message.into() });
        if self.server.addr.trim().is_empty() {
            return bad("server.addr".into(), "the server address is empty");
        }
        if self.server.port == 0 {
            return bad("server.port".into(), "the port must be 1-65535");
        }
        if !matches!(self.server.protocol.as_str(), "tcp" | "websocket" | "wss") {
            return bad("server.protocol".into(), "choose tcp, websocket or wss");
        }
        match self.auth.method.as_str() {
            "oidc" => {
                let u = &self.auth.token_endpoint_url;
                if !(u.starts_with("https://") || u.starts_with("http://")) || url::Url::parse(u).is_err() {
                    return bad("auth.tokenEndpointUrl".into(), "give the token endpoint's http(s) URL");
                }
                if self.auth.client_id.trim().is_empty() {
                    return bad("auth.clientId".into(), "the client ID is empty");
                }
            }
            "token" => {}
            _ => return bad("auth.method".into(), "choose oidc or token"),
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.proxies.iter().enumerate() {
            let f = |k: &str| format!("proxies[{i}].{k}");
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return bad(f("name"), "use letters, digits, '.', '_' or '-'");
            }
            if !names.insert(p.name.as_str()) {
                return bad(f("name"), "this name is used twice");
            }
            if !matches!(p.kind.as_str(), "tcp" | "udp") {
                return bad(f("type"), "choose tcp or udp");
            }
            if p.local_ip.parse::<std::net::IpAddr>().is_err() {
                return bad(f("localIp"), "give an IP address such as 127.0.0.1");
            }
            if p.local_port == 0 {
                return bad(f("localPort"), "the port must be 1-65535");
            }
            if p.remote_port == 0 {
                return bad(f("remotePort"), "the port must be 1-65535");
            }
        }
        Ok(())
    }

    /// The engine configuration (enabled proxies only). The secret is not part of it: it is handed to the engine
    /// separately.
    pub fn to_client_config(&self) -> ClientConfig {
        let mut c = ClientConfig {
            server_addr: self.server.addr.trim().to_string(),
            server_port: self.server.port,
            login_fail_exit: false,
            ..Default::default()
        };
        c.transport.protocol = self.server.protocol.clone();
        c.transport.tls.enable = self.server.tls;
        c.auth.method = self.auth.method.clone();
        c.auth.oidc.token_endpoint_url = self.auth.token_endpoint_url.trim().to_string();
        c.auth.oidc.client_id = self.auth.client_id.trim().to_string();
        c.auth.oidc.audience = self.auth.audience.trim().to_string();
        c.auth.oidc.scope = self.auth.scope.trim().to_string();
        c.proxies = self.proxies.iter().filter(|p| p.enabled).map(ProxyDef::to_engine).collect();
        c
    }

    /// Builds a profile from frpc config text in any format frpc reads (TOML, YAML, JSON, legacy INI: told apart by
    /// content, as frp does for a file without a known extension; unknown keys only warned about); returns it, the
    /// secret found in the file (client secret for OIDC, auth.token otherwise), which the caller moves into the
    /// keychain, and one line per proxy or visitor that could not be brought over, with the reason.
    pub fn from_frpc(text: &str) -> Result<(Profile, Option<String>), String> {
        Self::from_frpc_salvage(text).map(|(p, s, _)| (p, s))
    }

    /// [`Self::from_frpc`] with the lines for what was left out.
    pub fn from_frpc_salvage(text: &str) -> Result<(Profile, Option<String>, Vec<String>), String> {
        let env = |name: &str| std::env::var(name).ok();
        let (loaded, skipped) =
            ClientConfig::parse_salvage(text, "the imported file", &env).map_err(|e| e.to_string())?;
        let c = loaded.config;
        let secret = if c.auth.method == "oidc" { c.auth.oidc.client_secret.clone() } else { c.auth.token.clone() };
        let p = Profile {
            server: ServerSection {
                addr: c.server_addr.clone(),
                port: c.server_port,
                protocol: c.transport.protocol.clone(),
                tls: c.transport.tls.enable,
            },
            auth: AuthSection {
                method: c.auth.method.clone(),
                token_endpoint_url: c.auth.oidc.token_endpoint_url.clone(),
                client_id: c.auth.oidc.client_id.clone(),
                audience: c.auth.oidc.audience.clone(),
                scope: c.auth.oidc.scope.clone(),
                has_secret: false,
            },
            proxies: c
                .proxies
                .iter()
                .map(|p| ProxyDef {
                    name: p.name.clone(),
                    kind: p.kind.clone(),
                    local_ip: p.local_ip.clone(),
                    local_port: p.local_port,
                    remote_port: p.remote_port,
                    enabled: true,
                })
                .collect(),
            options: Options::default(),
        };
        Ok((p, (!secret.is_empty()).then_some(secret), skipped))
    }

    /// frpc.toml text without the secret; a comment says where it is.
    pub fn to_frpc(&self) -> String {
        let mut c = self.to_client_config();
        c.proxies = self.proxies.iter().map(ProxyDef::to_engine).collect();
        let which = if self.auth.method == "oidc" { "auth.oidc.clientSecret" } else { "auth.token" };
        format!(
            "# Exported by Portway. {which} is not in this file: it is stored in the system keychain\n\
             # (service \"portway\"). Add it here, or use portway-client with the secret from the environment.\n{}",
            c.to_toml()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../tests/fixtures/seed/frpc.toml");

    #[test]
    fn seed_import_moves_the_secret_out_and_export_leaves_it_out() {
        let (p, secret) = Profile::from_frpc(SEED).unwrap();
        assert_eq!(secret.as_deref(), Some("portway-test-secret"));
        assert_eq!(p.auth.client_id, "portway-test-client");
        assert_eq!(p.proxies.len(), 2);
        assert_eq!(p.proxies[0].kind, "udp");
        p.validate().unwrap();
        let out = p.to_frpc();
        assert!(!out.contains("portway-test-secret"));
        assert!(out.contains("stored in the system keychain"));
        let (again, s2) = Profile::from_frpc(&out).unwrap();
        assert_eq!(s2, None);
        assert_eq!(again.proxies, p.proxies);
        assert_eq!(again.auth.token_endpoint_url, p.auth.token_endpoint_url);
    }

    /// Every format frpc reads imports to the same profile and the same secret.
    #[test]
    fn import_reads_ini_yaml_and_json_too() {
        let (toml, secret) = Profile::from_frpc(include_str!("../../tests/fixtures/configs/frpc-oidc.toml")).unwrap();
        for text in [
            include_str!("../../tests/fixtures/configs/frpc-oidc.ini"),
            include_str!("../../tests/fixtures/configs/frpc-oidc.yaml"),
            include_str!("../../tests/fixtures/configs/frpc-oidc.json"),
        ] {
            let (p, s) = Profile::from_frpc(text).unwrap();
            assert_eq!(p, toml);
            assert_eq!(s, secret);
        }
        assert_eq!(secret.as_deref(), Some("portway-test-secret"));
    }

    /// What cannot come over is named with the reason; the rest is imported.
    #[test]
    fn import_leaves_out_what_portway_cannot_run_and_says_why() {
        let ini = "[common]\nserver_addr = 203.0.113.7\ntoken = t\n\n[ssh]\nlocal_port = 22\nremote_port = 6000\n\n\
                   [socks]\nremote_port = 6001\nplugin = socks5\n\n[secret-v]\nrole = visitor\ntype = stcp\nserver_name = x\n";
        let (p, secret, skipped) = Profile::from_frpc_salvage(ini).unwrap();
        assert_eq!(secret.as_deref(), Some("t"));
        assert_eq!(p.proxies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["ssh"]);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped[0].starts_with("proxy socks: ") && skipped[0].contains("proxy plugin"), "{skipped:?}");
        assert!(skipped[1].starts_with("visitor secret-v: "), "{skipped:?}");
        // The file's own settings must load: a broken [common] is an error, not an empty import.
        assert!(Profile::from_frpc_salvage("[common]\nserver_port = x\n").is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let (mut p, _) = Profile::from_frpc(SEED).unwrap();
        p.proxies[1].name = p.proxies[0].name.clone();
        assert_eq!(p.validate().unwrap_err().field, "proxies[1].name");
        let (mut p, _) = Profile::from_frpc(SEED).unwrap();
        p.auth.token_endpoint_url = "ftp://x".into();
        assert_eq!(p.validate().unwrap_err().field, "auth.tokenEndpointUrl");
        let mut p = Profile::default();
        assert_eq!(p.validate().unwrap_err().field, "server.addr");
        p.server.addr = "example.com".into();
        p.auth.method = "token".into();
        assert!(p.validate().is_ok());
    }

    #[test]
    fn disabled_proxies_are_not_started() {
        let (mut p, _) = Profile::from_frpc(SEED).unwrap();
        p.proxies[0].enabled = false;
        let c = p.to_client_config();
        assert_eq!(c.proxies.len(), 1);
        assert_eq!(c.proxies[0].name, "TS3-Filetransfer");
        assert!(!c.login_fail_exit, "the app keeps retrying");
    }
}
