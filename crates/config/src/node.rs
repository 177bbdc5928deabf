//! One tree for every format: what TOML, YAML, JSON and the legacy INI mapping produce, with the line each key and
//! value came from, and a serde deserializer over it whose errors name that line and the key's path.

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

/// A value with the 1-based line it was read from (none for values a conversion made up).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
}

/// The values frp's configs hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// YAML's `null` / an empty YAML value.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (TOML dates are kept as their text).
    Str(String),
    /// An `{{ ... }}` template kept unrendered where the format has no string around it (`convert` only).
    Raw(String),
    /// A list.
    Seq(Vec<Node>),
    /// A table, keys in file order.
    Map(Vec<Entry>),
}

/// One key of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as written (after canonicalisation: frp's spelling).
    pub key: String,
    /// The key's line.
    pub line: Option<usize>,
    /// Its value.
    pub node: Node,
}

impl Node {
    /// A value without a line.
    pub fn new(value: Value) -> Node {
        Node { value, line: None }
    }

    /// A value read at `line`.
    pub fn at(value: Value, line: Option<usize>) -> Node {
        Node { value, line }
    }

    /// An empty table.
    pub fn map() -> Node {
        Node::new(Value::Map(Vec::new()))
    }

    /// The entry under `key` in a table.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.node),
            _ => None,
        }
    }

    /// The entry under `key`, made (as an empty table) if missing; `None` when `self` is not a table.
    pub fn entry_mut(&mut self, key: &str, line: Option<usize>) -> Option<&mut Node> {
        let Value::Map(entries) = &mut self.value else { return None };
        let i = match entries.iter().position(|e| e.key == key) {
            Some(i) => i,
            None => {
                entries.push(Entry { key: key.into(), line, node: Node::at(Value::Map(Vec::new()), line) });
                entries.len() - 1
            }
        };
        Some(&mut entries[i].node)
    }

    /// Sets `path` (dotted, tables made as needed) to `node`, replacing an earlier value.
    pub fn set_path(&mut self, path: &str, node: Node) {
        let line = node.line;
        let mut parts: Vec<&str> = path.split('.').collect();
        let Some(last) = parts.pop() else { return };
        let mut cur = self;
        for p in parts {
            match cur.entry_mut(p, line) {
                Some(next) => cur = next,
                None => return,
            }
        }
        if let Value::Map(entries) = &mut cur.value {
            match entries.iter_mut().find(|e| e.key == last) {
                Some(e) => e.node = node,
                None => entries.push(Entry { key: last.into(), line, node }),
            }
        }
    }

    /// The table at dotted `path`, made as needed; `None` when a value on the way is not a table.
    pub fn table_mut(&mut self, path: &str, line: Option<usize>) -> Option<&mut Node> {
        let mut cur = self;
        for p in path.split('.') {
            cur = cur.entry_mut(p, line)?;
        }
        Some(cur)
    }

    /// Sets `key` (taken whole, dots and all) in this table.
    pub fn push_entry(&mut self, key: &str, node: Node) {
        let line = node.line;
        if let Value::Map(entries) = &mut self.value {
            match entries.iter_mut().find(|e| e.key == key) {
                Some(e) => e.node = node,
                None => entries.push(Entry { key: key.into(), line, node }),
            }
        }
    }

    /// Appends `node` to the list at `key` (made if missing).
    pub fn push_to(&mut self, key: &str, node: Node) {
        let line = node.line;
        if let Value::Map(entries) = &mut self.value {
            match entries.iter_mut().find(|e| e.key == key) {
                Some(Entry { node: Node { value: Value::Seq(items), .. }, .. }) => items.push(node),
                Some(_) => {}
                None => entries.push(Entry { key: key.into(), line, node: Node::at(Value::Seq(vec![node]), line) }),
            }
        }
    }

    /// The node at a path as messages write it (`proxies[1].localPort`, `auth.oidc.clientID`).
    pub fn at_path(&self, path: &str) -> Option<&Node> {
        let mut cur = self;
        for part in path.split('.') {
            let (key, indexes) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !key.is_empty() {
                cur = cur.get(key)?;
            }
            for ix in indexes.split('[').filter(|s| !s.is_empty()) {
                let i: usize = ix.trim_end_matches(']').parse().ok()?;
                match &cur.value {
                    Value::Seq(items) => cur = items.get(i)?,
                    _ => return None,
                }
            }
        }
        Some(cur)
    }

    /// A short name of the value's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Raw(_) => "a template",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a table",
        }
    }
}

/// A value that does not fit the model, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default(), if path.is_empty() { String::new() } else { format!("`{path}`: ") })]
pub struct DeError {
    /// What is wrong.
    pub message: String,
    /// 1-based line.
    pub line: Option<usize>,
    /// The key's path (`proxies[0].localPort`).
    pub path: String,
}

impl de::Error for DeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        DeError { message: msg.to_string(), line: None, path: String::new() }
    }
}

impl DeError {
    fn locate(mut self, line: Option<usize>, path: &str) -> Self {
        if self.line.is_none() && self.path.is_empty() {
            self.line = line;
            self.path = path.to_string();
        }
        self
    }
}

/// Deserializes `T` from a tree. Keys the model does not know are skipped (report them with
/// [`crate::schema::canonicalize`] first); values are taken as they are typed (no string-to-number guessing).
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &Node) -> Result<T, DeError> {
    T::deserialize(NodeDe { node, path: String::new() })
}

/// A join of a parent path and a key.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let line = self.node.line;
        let path = self.path.clone();
        let r = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Raw(t) => Err(de::Error::custom(format!("template `{t}` was not rendered"))),
            Value::Seq(items) => visitor.visit_seq(Seq { items: items.iter(), index: 0, path: &self.path }),
            Value::Map(entries) => visitor.visit_map(Map { entries: entries.iter(), next: None, path: &self.path }),
        };
        r.map_err(|e| e.locate(line, &path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let line = self.node.line;
        match &self.node.value {
            Value::Str(s) => {
                visitor.visit_enum(s.as_str().into_deserializer()).map_err(|e: DeError| e.locate(line, &self.path))
            }
            _ => Err(DeError {
                message: format!("expected a string, found {}", self.node.kind()),
                line,
                path: self.path,
            }),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct Seq<'a, 'p> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
    path: &'p str,
}

impl<'de> SeqAccess<'de> for Seq<'_, '_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else { return Ok(None) };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        seed.deserialize(NodeDe { node, path }).map(Some)
    }
}

struct Map<'a, 'p> {
    entries: std::slice::Iter<'a, Entry>,
    next: Option<&'a Entry>,
    path: &'p str,
}

impl<'de> MapAccess<'de> for Map<'_, '_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some(e) = self.entries.next() else { return Ok(None) };
        self.next = Some(e);
        let key: de::value::StrDeserializer<'_, DeError> = e.key.as_str().into_deserializer();
        seed.deserialize(key).map(Some).map_err(|err| err.locate(e.line, &join(self.path, &e.key)))
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let e = self.next.take().ok_or_else(|| <DeError as de::Error>::custom("value without a key"))?;
        seed.deserialize(NodeDe { node: &e.node, path: join(self.path, &e.key) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct T {
        port: u16,
        name: String,
        opt: Option<i64>,
        list: Vec<Inner>,
    }
    #[derive(serde::Deserialize, Debug, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Inner {
        local_port: u16,
    }

    fn entry(key: &str, line: usize, value: Value) -> Entry {
        Entry { key: key.into(), line: Some(line), node: Node::at(value, Some(line)) }
    }

    #[test]
    fn values_and_errors_carry_line_and_path() {
        let inner = Node::at(Value::Map(vec![entry("localPort", 4, Value::Int(70000))]), Some(3));
        let n = Node::new(Value::Map(vec![
            entry("port", 1, Value::Int(7000)),
            entry("name", 2, Value::Str("x".into())),
            Entry { key: "list".into(), line: Some(3), node: Node::at(Value::Seq(vec![inner]), Some(3)) },
        ]));
        let e = from_node::<T>(&n).unwrap_err();
        assert_eq!(e.line, Some(4));
        assert_eq!(e.path, "list[0].localPort");
        assert!(e.to_string().starts_with("line 4: `list[0].localPort`: invalid value: integer `70000`"), "{e}");
        let ok = Node::new(Value::Map(vec![entry("port", 1, Value::Int(7000)), entry("opt", 2, Value::Null)]));
        let t: T = from_node(&ok).unwrap();
        assert_eq!((t.port, t.opt), (7000, None));
        let bad = Node::new(Value::Map(vec![entry("port", 9, Value::Str("7000".into()))]));
        let e = from_node::<T>(&bad).unwrap_err();
        assert_eq!((e.line, e.path.as_str()), (Some(9), "port"));
    }
}
