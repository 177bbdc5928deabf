//! The virtual hosts' parsers on visitor input: a TLS ClientHello's SNI (also cut at every length, as bytes trickle
//! in), an HTTP CONNECT head, a Host value and a basic-auth value; a routing lookup with the parsed host never
//! panics and finds only what was registered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portway_server::proxy::vhost::{connect, routes, sni};

fuzz_target!(|data: &[u8]| {
    let whole = sni::parse_client_hello(data);
    if let sni::Hello::Complete(Some(name)) = &whole {
        assert_eq!(name, &name.to_ascii_lowercase());
    }
    for cut in [1, 5, 9, data.len() / 2] {
        if cut < data.len() {
            // Bytes trickling in: every prefix is parsed again and must not panic.
            let _ = sni::parse_client_hello(&data[..cut]);
        }
    }
    if let Ok(Some(head)) = connect::parse(data) {
        assert!(head.len <= data.len());
    }
    let text = String::from_utf8_lossy(data);
    let host = routes::canonical_host(&text);
    let _ = routes::basic_auth(data);
    let mut table = routes::Routes::default();
    let _ = table.add("web.example.com", "/", "", 1u8);
    let _ = table.add("*.example.com", "/api", "alice", 2u8);
    if let Some(v) = table.lookup(&host, &text, "alice") {
        assert!(*v == 1 || *v == 2);
    }
});
