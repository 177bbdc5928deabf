//! frpc.toml and frps.toml text through the real load-from-string functions (`{{ .Envs.NAME }}` templates, TOML
//! parse, unknown-key warnings, unsupported-feature errors, validation): never panics; a client config that loads
//! exports (`to_toml`) to text that loads back to the same config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portway_client::ClientConfig;
use portway_server::ServerConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(loaded) = ClientConfig::parse(text, "fuzz-frpc.toml") {
        let exported = loaded.config.to_toml();
        if exported.contains("{{") {
            // A value that itself reads `{{ ... }}` is a template again when the export is loaded (as in frp).
            return;
        }
        let again = ClientConfig::parse(&exported, "exported-frpc.toml")
            .unwrap_or_else(|e| panic!("exported config does not load: {e}\n{exported}"));
        assert_eq!(again.config, loaded.config, "export does not round-trip:\n{exported}");
    }
    if let Ok(loaded) = ServerConfig::parse(text, "fuzz-frps.toml") {
        // Accessors the server calls at start must not panic on any validated config.
        let _ = loaded.config.proxy_bind_ip();
        for p in [0u16, 1, 80, 7000, 65535] {
            let _ = loaded.config.port_allowed(p);
        }
    }
});
