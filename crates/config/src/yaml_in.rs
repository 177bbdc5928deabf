//! YAML and JSON text to a [`Node`] tree with lines. frp reads both through one YAML decoder (JSON is YAML's flow
//! style), so one parser serves both; plain scalars are typed as YAML 1.1 types them (`true`, `yes`, `on`, `42`,
//! `0x1F`, `1.5`, `~`).

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::node::{Entry, Node, Value};

/// A YAML syntax error with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// The parser's description.
    pub message: String,
}

/// Parses a YAML (or JSON) document; an empty document is an empty table.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut b, false).map_err(|e| YamlError { line: e.marker().line(), message: e.info().to_string() })?;
    if let Some(message) = b.error {
        return Err(YamlError { line: b.error_line, message });
    }
    match b.done {
        Some(n @ Node { value: Value::Map(_), .. }) => Ok(n),
        Some(Node { value: Value::Null, .. }) | None => Ok(Node::map()),
        Some(n) => Err(YamlError {
            line: n.line.unwrap_or(1),
            message: format!("the document is {}, not a table of keys", n.kind()),
        }),
    }
}

enum Frame {
    Seq(Node, Option<usize>),
    Map(Node, Option<usize>, Option<(String, Option<usize>)>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Node>,
    done: Option<Node>,
    error: Option<String>,
    error_line: usize,
}

impl Builder {
    fn fail(&mut self, line: usize, message: String) {
        if self.error.is_none() {
            self.error = Some(message);
            self.error_line = line;
        }
    }

    fn add(&mut self, node: Node) {
        let line = node.line.unwrap_or(0);
        match self.stack.last_mut() {
            None => self.done = Some(node),
            Some(Frame::Seq(seq, _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, pending)) => match pending.take() {
                None => match node.value {
                    Value::Str(k) => *pending = Some((k, node.line)),
                    Value::Int(i) => *pending = Some((i.to_string(), node.line)),
                    Value::Bool(b) => *pending = Some((b.to_string(), node.line)),
                    _ => self.fail(line, format!("a key must be text, not {}", node.kind())),
                },
                Some((key, key_line)) => {
                    if let Value::Map(entries) = &mut map.value {
                        if key == "<<" {
                            // YAML merge key: the anchored table's keys, unless already given.
                            if let Value::Map(merged) = node.value {
                                for e in merged {
                                    if !entries.iter().any(|x| x.key == e.key) {
                                        entries.push(e);
                                    }
                                }
                            }
                        } else {
                            entries.retain(|e| e.key != key);
                            entries.push(Entry { key, line: key_line, node });
                        }
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = Some(mark.line());
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let value = if style == TScalarStyle::Plain && tag.is_none() {
                    plain(&text)
                } else if tag.as_ref().is_some_and(|t| t.suffix == "int") {
                    text.parse().map(Value::Int).unwrap_or(Value::Str(text))
                } else {
                    Value::Str(text)
                };
                let node = Node::at(value, line);
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.add(node);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(Node::at(Value::Seq(Vec::new()), line), (anchor > 0).then_some(anchor)))
            }
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(
                Node::at(Value::Map(Vec::new()), line),
                (anchor > 0).then_some(anchor),
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(n, a)) | Some(Frame::Map(n, a, _)) => (n, a),
                    None => return,
                };
                if let Some(a) = anchor {
                    self.anchors.insert(a, node.clone());
                }
                self.add(node);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(n) => self.add(n),
                None => self.fail(mark.line(), "an alias to an unknown anchor".into()),
            },
            _ => {}
        }
    }
}

/// A plain (unquoted) scalar typed as YAML 1.1 (frp's decoder) does.
fn plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => return Value::Bool(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let neg = s.starts_with('-');
    let int = if let Some(h) = digits.strip_prefix("0x") {
        i64::from_str_radix(&h.replace('_', ""), 16).ok()
    } else if let Some(o) = digits.strip_prefix("0o") {
        i64::from_str_radix(&o.replace('_', ""), 8).ok()
    } else if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '_') {
        digits.replace('_', "").parse::<i64>().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Value::Int(if neg { -i } else { i });
    }
    if digits.chars().any(|c| c.is_ascii_digit()) && digits.chars().all(|c| "0123456789._eE+-".contains(c)) {
        if let Ok(f) = s.replace('_', "").parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_with_lines_types_and_anchors() {
        let text = "serverAddr: a.example\nserverPort: 7000\nauth:\n  method: oidc\nproxies:\n  - &base\n    name: ssh\n    localPort: 22\n    transport: {useEncryption: yes}\n  - <<: *base\n    name: ssh2\n    remotePort: \"6001\"\n";
        let n = parse(text).unwrap();
        assert_eq!(n.get("serverPort").unwrap().value, Value::Int(7000));
        assert_eq!(n.get("auth").unwrap().get("method").unwrap().line, Some(4));
        let Value::Seq(p) = &n.get("proxies").unwrap().value else { panic!() };
        assert_eq!(p[1].get("name").unwrap().value, Value::Str("ssh2".into()));
        assert_eq!(p[1].get("localPort").unwrap().value, Value::Int(22));
        assert_eq!(p[1].get("remotePort").unwrap().value, Value::Str("6001".into()));
        assert_eq!(p[0].get("transport").unwrap().get("useEncryption").unwrap().value, Value::Bool(true));
        assert_eq!(p[1].get("name").unwrap().line, Some(11));
    }

    #[test]
    fn json_is_read_by_the_same_parser() {
        let n =
            parse("{\n  \"serverPort\": 7000,\n  \"proxies\": [{\"name\": \"a\", \"localPort\": 22}]\n}\n").unwrap();
        assert_eq!(n.get("serverPort").unwrap().line, Some(2));
        let Value::Seq(p) = &n.get("proxies").unwrap().value else { panic!() };
        assert_eq!(p[0].get("localPort").unwrap().value, Value::Int(22));
        assert!(parse("{\"a\": [1, }").is_err());
        assert!(parse("- 1\n- 2\n").is_err());
        assert_eq!(parse("").unwrap(), Node::map());
        assert_eq!(plain("1.5"), Value::Float(1.5));
        assert_eq!(plain("1.2.3.4"), Value::Str("1.2.3.4".into()));
        assert_eq!(plain("-12"), Value::Int(-12));
    }
}
