//! The INI dialect of frp's legacy `frpc.ini` / `frps.ini`, read as frp's INI library is configured to read it:
//! `#` and `;` start a comment only at the start of a line (text after a value, `# ...` included, is part of the
//! value), `=` or `:` separates key and value, a value wrapped in matching quotes loses them, a line ending in `\`
//! continues on the next, a key alone on its line means `true`, a repeated key keeps its last value and a repeated
//! section adds to the first. Pure: text in, sections out.

/// One `key = value` with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The key as written (case kept).
    pub name: String,
    /// The value, trimmed, quotes removed.
    pub value: String,
    /// 1-based line.
    pub line: usize,
}

/// One `[section]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name between the brackets, trimmed.
    pub name: String,
    /// 1-based line of the header (0 for keys before any header).
    pub line: usize,
    /// Keys in file order (a repeated key: its last value, at its first place).
    pub keys: Vec<Key>,
}

impl Section {
    /// The key named `name`.
    pub fn get(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.name == name)
    }
}

/// A line that is not INI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct IniError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses INI text into its sections, in the order they first appear. Keys before the first header land in a
/// section named `DEFAULT`.
pub fn parse(text: &str) -> Result<Vec<Section>, IniError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections: Vec<Section> = Vec::new();
    let mut current: Option<usize> = None;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        let n = i + 1;
        let mut line = raw.trim().to_string();
        // Continuation: `\` at the end joins the next line.
        while line.ends_with('\\') {
            line.pop();
            match lines.next() {
                Some((_, next)) => line.push_str(next.trim()),
                None => break,
            }
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(end) = rest.find(']') else {
                return Err(IniError { line: n, message: format!("section header {line:?} has no closing `]`") });
            };
            let name = rest[..end].trim();
            if name.is_empty() {
                return Err(IniError { line: n, message: "empty section name `[]`".into() });
            }
            current = Some(match sections.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    sections.push(Section { name: name.to_string(), line: n, keys: Vec::new() });
                    sections.len() - 1
                }
            });
            continue;
        }
        let (name, value) = match line.find(['=', ':']) {
            Some(at) => (line[..at].trim(), unquote(line[at + 1..].trim())),
            None => (line, "true".to_string()),
        };
        if name.is_empty() {
            return Err(IniError { line: n, message: format!("{line:?} has a value but no key before the `=`") });
        }
        let idx = match current {
            Some(i) => i,
            None => {
                let i = match sections.iter().position(|s| s.name == "DEFAULT") {
                    Some(i) => i,
                    None => {
                        sections.push(Section { name: "DEFAULT".into(), line: 0, keys: Vec::new() });
                        sections.len() - 1
                    }
                };
                current = Some(i);
                i
            }
        };
        let keys = &mut sections[idx].keys;
        match keys.iter_mut().find(|k| k.name == name) {
            Some(k) => {
                k.value = value;
                k.line = n;
            }
            None => keys.push(Key { name: name.to_string(), value, line: n }),
        }
    }
    Ok(sections)
}

/// Removes one pair of matching surrounding quotes (`"x"`, `'x'`, or the triple forms).
fn unquote(v: &str) -> String {
    for q in ["\"\"\"", "'''", "\"", "'", "`"] {
        if v.len() >= 2 * q.len() && v.starts_with(q) && v.ends_with(q) {
            return v[q.len()..v.len() - q.len()].to_string();
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frp_dialect() {
        let text = "; comment\n# comment\n[common]\nserver_addr = 1.2.3.4 # not a comment\nserver_port: 7000\ntoken = \"quoted\"\ntls_enable\n\n[ssh]\ntype=tcp\nlocal_port = 22\nlocal_port = 2222\nlong = a\\\n  b\n[common]\nuser = u\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        let c = &s[0];
        assert_eq!(c.get("server_addr").unwrap().value, "1.2.3.4 # not a comment");
        assert_eq!(c.get("server_port").unwrap().value, "7000");
        assert_eq!(c.get("token").unwrap().value, "quoted");
        assert_eq!(c.get("tls_enable").unwrap().value, "true");
        assert_eq!(c.get("user").unwrap().line, 16);
        assert_eq!(s[1].get("local_port").unwrap().value, "2222");
        assert_eq!(s[1].get("local_port").unwrap().line, 12);
        assert_eq!(s[1].get("long").unwrap().value, "ab");
        assert_eq!(s[1].line, 9);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("[common\n").unwrap_err().line, 1);
        assert_eq!(parse("[a]\n= x\n").unwrap_err().line, 2);
        assert_eq!(parse("k = v\n").unwrap()[0].name, "DEFAULT");
    }
}
