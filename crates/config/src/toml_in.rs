//! TOML text to a [`Node`] tree, with the line of every key and value (toml_edit's spans).

use toml_edit::{Document, Item, Table, Value as TValue};

use crate::node::{Entry, Node, Value};

/// Parses TOML. The error is the parser's own message (which names the line and quotes it).
pub fn parse(text: &str) -> Result<Node, toml_edit::TomlError> {
    let lines = LineIndex::new(text);
    let doc = Document::parse(text)?;
    Ok(Node::new(table(doc.as_table(), &lines)))
}

/// Byte offsets of line starts.
pub struct LineIndex(Vec<usize>);

impl LineIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> LineIndex {
        LineIndex(std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }
    /// The 1-based line of byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset).max(1)
    }
}

fn line_of(lines: &LineIndex, span: Option<std::ops::Range<usize>>) -> Option<usize> {
    span.map(|s| lines.line(s.start))
}

fn table(t: &Table, lines: &LineIndex) -> Value {
    let mut entries = Vec::new();
    for (k, item) in t.iter() {
        let key_line = t.get_key_value(k).and_then(|(key, _)| line_of(lines, key.span()));
        let node = match item {
            Item::None => continue,
            Item::Value(v) => value(v, lines),
            Item::Table(t) => Node::at(table(t, lines), line_of(lines, t.span()).or(key_line)),
            Item::ArrayOfTables(a) => Node::at(
                Value::Seq(a.iter().map(|t| Node::at(table(t, lines), line_of(lines, t.span()))).collect()),
                key_line,
            ),
        };
        entries.push(Entry { key: k.to_string(), line: key_line.or(node.line), node });
    }
    Value::Map(entries)
}

fn value(v: &TValue, lines: &LineIndex) -> Node {
    let line = line_of(lines, v.span());
    let value = match v {
        TValue::String(s) => Value::Str(s.value().clone()),
        TValue::Integer(i) => Value::Int(*i.value()),
        TValue::Float(f) => Value::Float(*f.value()),
        TValue::Boolean(b) => Value::Bool(*b.value()),
        TValue::Datetime(d) => Value::Str(d.value().to_string()),
        TValue::Array(a) => Value::Seq(a.iter().map(|v| value(v, lines)).collect()),
        TValue::InlineTable(t) => {
            let mut entries = Vec::new();
            for (k, v) in t.iter() {
                let key_line = t.get_key_value(k).and_then(|(key, _)| line_of(lines, key.span()));
                let node = value(v, lines);
                entries.push(Entry { key: k.to_string(), line: key_line.or(node.line), node });
            }
            Value::Map(entries)
        }
    };
    Node { value, line }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_keys_tables_and_array_tables() {
        let text = "serverAddr = \"a\"\nauth.method = \"oidc\"\n\n[[proxies]]\nname = \"x\"\nlocalPort = 22\n\n[[proxies]]\nname = \"y\"\nwhen = 1979-05-27\n";
        let n = parse(text).unwrap();
        let Value::Map(top) = &n.value else { panic!() };
        assert_eq!((top[0].key.as_str(), top[0].line), ("serverAddr", Some(1)));
        assert_eq!(n.get("auth").unwrap().get("method").unwrap().line, Some(2));
        let Value::Seq(proxies) = &n.get("proxies").unwrap().value else { panic!() };
        assert_eq!(proxies[1].get("name").unwrap().line, Some(9));
        assert_eq!(proxies[0].get("localPort").unwrap().value, Value::Int(22));
        assert_eq!(proxies[1].get("when").unwrap().value, Value::Str("1979-05-27".into()));
        let e = parse("a = \n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
