//! Shared by frps's and frpc's command-line flags (`portway_server::cmdline`, `portway_client::cmdline`): flags are
//! turned into a JSON document of frp's keys and loaded like a file, so messages must lose the document's line
//! numbers and gain the flag that set the key they name.

use serde_json::{Map, Value};

/// What messages call the flags in place of a file name.
pub const SOURCE: &str = "command line";

/// Sets `a.b.c` in a JSON object (making the objects on the way).
pub fn put(map: &mut Map<String, Value>, path: &str, v: Value) {
    match path.split_once('.') {
        None => {
            map.insert(path.into(), v);
        }
        Some((head, rest)) => {
            let entry = map.entry(head.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(m) = entry {
                put(m, rest, v);
            }
        }
    }
}

/// Reads `a.b.c` from a JSON object.
pub fn get<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    match path.split_once('.') {
        None => map.get(path),
        Some((head, rest)) => get(map.get(head)?.as_object()?, rest),
    }
}

/// A loader's message about the flags' document, for whoever typed the flags: without "line N: " (lines of a
/// document they never saw), and followed by `(--flag sets key; ...)` for each `(flag, key)` whose key it names.
pub fn explain(message: &str, table: &[(&str, String)]) -> String {
    let text = strip_lines(message);
    let mut named: Vec<String> = Vec::new();
    for (flag, key) in table {
        let hit = [format!("`{key}`"), format!("`{key}["), format!("`{key}."), format!(" {key}:")]
            .iter()
            .any(|p| text.contains(p.as_str()));
        let line = format!("--{flag} sets {key}");
        if hit && !named.contains(&line) {
            named.push(line);
        }
    }
    if named.is_empty() {
        text
    } else {
        format!("{text} ({})", named.join("; "))
    }
}

/// `text` without its "line N: " parts.
pub fn strip_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("line ") {
        let after = &rest[i + 5..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(": ") {
            out.push_str(&rest[..i]);
            rest = &after[digits + 2..];
        } else {
            out.push_str(&rest[..i + 5]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_and_flags_come() {
        assert_eq!(strip_lines("command line: line 3: `bindAddr`: bad"), "command line: `bindAddr`: bad");
        assert_eq!(strip_lines("command line: line 12: unknown key"), "command line: unknown key");
        assert_eq!(strip_lines("a line of text"), "a line of text");
        let table = [("bind_addr", "bindAddr".to_string()), ("token", "auth.token".to_string())];
        assert_eq!(
            explain("command line: line 2: `bindAddr`: bad", &table),
            "command line: `bindAddr`: bad (--bind_addr sets bindAddr)"
        );
        assert_eq!(explain("something else", &table), "something else");
    }

    #[test]
    fn put_and_get_paths() {
        let mut m = Map::new();
        put(&mut m, "a.b.c", Value::from(1));
        put(&mut m, "a.d", Value::from("x"));
        assert_eq!(get(&m, "a.b.c"), Some(&Value::from(1)));
        assert_eq!(get(&m, "a.d"), Some(&Value::from("x")));
        assert_eq!(get(&m, "a.z"), None);
    }
}
