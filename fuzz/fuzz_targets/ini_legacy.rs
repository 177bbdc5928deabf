//! frp's INI dialect and the legacy mapping on arbitrary text: never panics; every mapped tree (client and server)
//! is written by the TOML emitter as text that parses back to the same keys and values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portway_config::node::{Node, Value};
use portway_config::{emit, ini, legacy, toml_in};

/// The tree without lines (the emitter's output has its own).
fn strip(n: &Node) -> Node {
    let value = match &n.value {
        Value::Seq(items) => Value::Seq(items.iter().map(strip).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|e| portway_config::node::Entry { key: e.key.clone(), line: None, node: strip(&e.node) })
                .collect(),
        ),
        Value::Null => Value::Str(String::new()),
        v => v.clone(),
    };
    Node::new(value)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(sections) = ini::parse(text) else { return };
    for mapped in [legacy::client(&sections), legacy::server(&sections)].into_iter().flatten() {
        let has_raw = format!("{:?}", mapped.node).contains("Raw(");
        let out = emit::to_toml(&mapped.node);
        if has_raw {
            continue; // a kept template is not TOML until rendered
        }
        let back = toml_in::parse(&out).unwrap_or_else(|e| panic!("emitted TOML does not parse: {e}\n{out}"));
        assert_eq!(strip(&back), strip(&mapped.node), "emitted TOML means something else:\n{out}");
    }
});
