//! A tree written out as frp's current TOML: scalars as (dotted) keys, `proxies`, `visitors` and `httpPlugins` as
//! `[[...]]` blocks, other lists inline. Deterministic, so converting the output again gives the same text.

use crate::node::{Node, Value};

/// Top-level lists written as arrays of tables.
const BLOCKS: &[&str] = &["proxies", "visitors", "httpPlugins"];

/// The tree as TOML text.
pub fn to_toml(node: &Node) -> String {
    let mut out = String::new();
    let Value::Map(entries) = &node.value else { return out };
    for e in entries.iter().filter(|e| !is_block(&e.key, &e.node)) {
        write_entry(&mut out, &key(&e.key), &e.node);
    }
    for e in entries.iter().filter(|e| is_block(&e.key, &e.node)) {
        let Value::Seq(items) = &e.node.value else { continue };
        for item in items {
            out.push_str(&format!("\n[[{}]]\n", key(&e.key)));
            if let Value::Map(fields) = &item.value {
                for f in fields {
                    write_entry(&mut out, &key(&f.key), &f.node);
                }
            }
        }
    }
    out
}

fn is_block(k: &str, n: &Node) -> bool {
    BLOCKS.contains(&k)
        && matches!(&n.value, Value::Seq(items) if items.iter().all(|i| matches!(i.value, Value::Map(_))))
}

fn write_entry(out: &mut String, path: &str, n: &Node) {
    match &n.value {
        Value::Map(fields) if !fields.is_empty() => {
            for f in fields {
                write_entry(out, &format!("{path}.{}", key(&f.key)), &f.node);
            }
        }
        Value::Null => {}
        _ => out.push_str(&format!("{path} = {}\n", inline(n))),
    }
}

/// A value written inline.
fn inline(n: &Node) -> String {
    match &n.value {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 => format!("{f:.1}"),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => string(s),
        Value::Raw(t) => t.clone(),
        Value::Seq(items) => format!("[{}]", items.iter().map(inline).collect::<Vec<_>>().join(", ")),
        Value::Map(fields) if fields.is_empty() => "{}".into(),
        Value::Map(fields) => format!(
            "{{ {} }}",
            fields.iter().map(|f| format!("{} = {}", key(&f.key), inline(&f.node))).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A key, quoted unless bare.
pub fn key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        k.to_string()
    } else {
        string(k)
    }
}

/// A TOML basic string.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toml_in;

    #[test]
    fn emits_and_round_trips() {
        let text = "serverPort = 7000\nauth.oidc.clientID = \"c\"\nallowPorts = [{ start = 1, end = 2 }, { single = 3 }]\nmetadatas = {}\n\n[[proxies]]\nname = \"a \\\"q\\\"\"\nrequestHeaders.set.\"x.y\" = \"1\"\nlocations = [\"/\", \"/b\"]\n\n[[proxies]]\nname = \"b\"\nratio = 1.0\n";
        let once = to_toml(&toml_in::parse(text).unwrap());
        assert_eq!(once, text);
        let twice = to_toml(&toml_in::parse(&once).unwrap());
        assert_eq!(once, twice);
    }
}
