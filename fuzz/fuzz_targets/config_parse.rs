//! Config text through the real load-from-string functions in every format frp reads (the same bytes as
//! `frpc.toml`, `.yaml`, `.json`, `.ini` and without an extension, so content detection too; templates, range loops,
//! unknown and unsupported keys, validation): never panics. A client config that loads exports (`to_toml`) to text
//! that loads back equal, and `convert` of it gives TOML that loads to the same config and converts to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portway_client::ClientConfig;
use portway_server::ServerConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // `includes` would read the fuzzing machine's files.
    if text.to_ascii_lowercase().contains("include") {
        return;
    }
    for ext in ["toml", "yaml", "json", "ini", ""] {
        let name = if ext.is_empty() { "fuzz-frpc".to_string() } else { format!("fuzz-frpc.{ext}") };
        if let Ok(loaded) = ClientConfig::parse(text, &name) {
            let exported = loaded.config.to_toml();
            if exported.contains("{{") || text.contains("{{") {
                // A value that itself reads `{{ ... }}` is a template again when the export is loaded (as in frp).
                continue;
            }
            let again = ClientConfig::parse(&exported, "exported-frpc.toml")
                .unwrap_or_else(|e| panic!("exported config does not load: {e}\n{exported}"));
            assert_eq!(again.config, loaded.config, "export does not round-trip:\n{exported}");
            let converted = ClientConfig::convert(text, &name).unwrap_or_else(|e| panic!("{name} loads but does not convert: {e}"));
            let reloaded = ClientConfig::parse(&converted, "converted-frpc.toml")
                .unwrap_or_else(|e| panic!("converted {name} does not load: {e}\n{converted}"));
            assert_eq!(reloaded.config, loaded.config, "convert changed the meaning of {name}:\n{converted}");
            let twice = ClientConfig::convert(&converted, "converted-frpc.toml").expect("converted text converts");
            assert_eq!(twice, converted, "convert is not idempotent for {name}");
        }
        let name = name.replace("frpc", "frps");
        if let Ok(loaded) = ServerConfig::parse(text, &name) {
            // Accessors the server calls at start must not panic on any validated config.
            let _ = loaded.config.proxy_bind_ip();
            for p in [0u16, 1, 80, 7000, 65535] {
                let _ = loaded.config.port_allowed(p);
            }
            if !text.contains("{{") {
                let converted = ServerConfig::convert(text, &name).expect("a server config that loads converts");
                ServerConfig::parse(&converted, "converted-frps.toml")
                    .unwrap_or_else(|e| panic!("converted {name} does not load: {e}\n{converted}"));
            }
        }
    }
});
