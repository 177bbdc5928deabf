//! The keys a model knows, read from its `Deserialize` (so the list can never drift from the structs), and the pass
//! that makes a tree use them: keys matched without regard to case as frp's decoder does (`localIp` is `localIP`),
//! unknown keys reported with their line and the nearest real key.

use serde::de::{self, Deserialize, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use crate::node::{join, Node, Value};

/// The shape of a model.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Schema {
    /// A scalar (or anything).
    #[default]
    Any,
    /// A struct: its field names and their shapes.
    Struct(Vec<(&'static str, Schema)>),
    /// A list of one shape.
    Seq(Box<Schema>),
    /// A map with free keys (`metadatas`, `requestHeaders.set`).
    Map,
}

impl Schema {
    /// The shape of the field `key` (exact spelling) of a struct.
    pub fn field(&self, key: &str) -> Option<&Schema> {
        match self {
            Schema::Struct(fields) => fields.iter().find(|(k, _)| *k == key).map(|(_, s)| s),
            _ => None,
        }
    }
}

/// The schema of `T`, by deserializing it from a tracer that answers every question with an empty value.
pub fn schema_of<T: for<'de> Deserialize<'de>>() -> Schema {
    let mut out = Schema::Any;
    let _ = T::deserialize(Tracer { out: &mut out, depth: 0 });
    out
}

#[derive(Debug)]
struct TraceError;
impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("trace")
    }
}
impl std::error::Error for TraceError {}
impl de::Error for TraceError {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        TraceError
    }
}

struct Tracer<'s> {
    out: &'s mut Schema,
    depth: usize,
}

impl<'de> de::Deserializer<'de> for Tracer<'_> {
    type Error = TraceError;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_unit()
    }
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_bool(false)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_i64(0)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_i64(0)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_i64(0)
    }
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_i64(0)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_u64(0)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_u64(0)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_u64(0)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_u64(0)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_f64(0.0)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_f64(0.0)
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_char('a')
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_str("")
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_str("")
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_str("")
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_some(self)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        *self.out = Schema::Seq(Box::new(Schema::Any));
        let Schema::Seq(inner) = self.out else { return Err(TraceError) };
        visitor.visit_seq(OneElement { out: Some(inner), depth: self.depth })
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        *self.out = Schema::Map;
        visitor.visit_map(Fields { fields: &[], schemas: Vec::new(), index: 0, depth: self.depth })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        if self.depth > 16 {
            return Err(TraceError);
        }
        let mut access = Fields { fields, schemas: vec![Schema::Any; fields.len()], index: 0, depth: self.depth + 1 };
        let r = visitor.visit_map(&mut access);
        *self.out = Schema::Struct(fields.iter().copied().zip(access.schemas).collect());
        r
    }
    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit unit_struct tuple tuple_struct enum ignored_any
    }
}

struct OneElement<'s> {
    out: Option<&'s mut Box<Schema>>,
    depth: usize,
}

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = TraceError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, TraceError> {
        match self.out.take() {
            Some(out) => seed.deserialize(Tracer { out: out.as_mut(), depth: self.depth + 1 }).map(Some),
            None => Ok(None),
        }
    }
}

struct Fields {
    fields: &'static [&'static str],
    schemas: Vec<Schema>,
    index: usize,
    depth: usize,
}

impl<'de> MapAccess<'de> for Fields {
    type Error = TraceError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, TraceError> {
        let Some(name) = self.fields.get(self.index) else { return Ok(None) };
        let key: de::value::StrDeserializer<'_, TraceError> = name.into_deserializer();
        seed.deserialize(key).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TraceError> {
        let i = self.index;
        self.index += 1;
        seed.deserialize(Tracer { out: &mut self.schemas[i], depth: self.depth })
    }
}

/// A key of the file that the model does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// Its path (`proxies[0].localPrt`).
    pub path: String,
    /// 1-based line.
    pub line: Option<usize>,
    /// The nearest key the model has at that place, if one is close.
    pub suggestion: Option<String>,
}

/// A key written in another case than frp's (frp accepts it; `convert` writes frp's spelling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renamed {
    /// The path with frp's spelling.
    pub path: String,
    /// The key as written.
    pub written: String,
    /// 1-based line.
    pub line: Option<usize>,
}

/// What [`canonicalize`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Keys the model does not have (left in the tree; deserialization skips them).
    pub unknown: Vec<UnknownKey>,
    /// Keys respelled to frp's case.
    pub renamed: Vec<Renamed>,
    /// Keys given twice (after respelling): `(path, line of the second)`.
    pub duplicates: Vec<(String, Option<usize>)>,
}

/// Respells the tree's keys as `schema` has them (case-insensitively, as frp's JSON decoding matches fields) and
/// reports the keys `schema` does not have.
pub fn canonicalize(node: &mut Node, schema: &Schema, report: &mut Report) {
    walk(node, schema, "", report);
}

fn walk(node: &mut Node, schema: &Schema, path: &str, report: &mut Report) {
    match (&mut node.value, schema) {
        (Value::Map(entries), Schema::Struct(fields)) => {
            let mut seen: Vec<&'static str> = Vec::new();
            for e in entries.iter_mut() {
                let exact = fields.iter().find(|(k, _)| *k == e.key);
                let found = exact.or_else(|| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(&e.key)));
                match found {
                    Some((k, sub)) => {
                        let p = join(path, k);
                        if e.key != *k {
                            report.renamed.push(Renamed { path: p.clone(), written: e.key.clone(), line: e.line });
                            e.key = (*k).to_string();
                        }
                        if seen.contains(k) {
                            report.duplicates.push((p.clone(), e.line));
                        }
                        seen.push(k);
                        walk(&mut e.node, sub, &p, report);
                    }
                    None => report.unknown.push(UnknownKey {
                        path: join(path, &e.key),
                        line: e.line,
                        suggestion: nearest(&e.key, fields.iter().map(|(k, _)| *k)),
                    }),
                }
            }
        }
        (Value::Seq(items), Schema::Seq(inner)) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, inner, &format!("{path}[{i}]"), report);
            }
        }
        _ => {}
    }
}

/// The candidate closest to `key` by edit distance (ignoring case), if it is close enough to be a misspelling.
pub fn nearest<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let k = key.to_ascii_lowercase();
    let limit = (k.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (distance(&k, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// Levenshtein distance over chars.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Entry;

    #[derive(serde::Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Top {
        server_addr: String,
        server_port: u16,
        opt: Option<i64>,
        proxies: Vec<P>,
        metas: std::collections::BTreeMap<String, String>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct P {
        #[serde(rename = "localIP")]
        local_ip: String,
        #[serde(rename = "type")]
        kind: String,
    }

    #[test]
    fn schema_is_read_from_the_structs() {
        let s = schema_of::<Top>();
        assert!(matches!(s.field("proxies"), Some(Schema::Seq(inner)) if inner.field("localIP").is_some()));
        assert_eq!(s.field("metas"), Some(&Schema::Map));
        assert_eq!(s.field("opt"), Some(&Schema::Any));
        assert!(s.field("serverPort").is_some() && s.field("server_port").is_none());
    }

    #[test]
    fn keys_are_respelled_and_unknown_ones_named_with_a_suggestion() {
        let e = |k: &str, l: usize, v: Value| Entry { key: k.into(), line: Some(l), node: Node::at(v, Some(l)) };
        let proxy = Node::new(Value::Map(vec![e("localIp", 3, Value::Str("x".into())), e("typo", 4, Value::Null)]));
        let mut n = Node::new(Value::Map(vec![
            e("serveraddr", 1, Value::Str("a".into())),
            e("serverPrt", 2, Value::Int(1)),
            e("proxies", 3, Value::Seq(vec![proxy])),
        ]));
        let mut r = Report::default();
        canonicalize(&mut n, &schema_of::<Top>(), &mut r);
        assert_eq!(n.get("serverAddr").map(|n| &n.value), Some(&Value::Str("a".into())));
        assert_eq!(r.renamed.len(), 2);
        assert_eq!(r.renamed[1].path, "proxies[0].localIP");
        assert_eq!(r.unknown[0].path, "serverPrt");
        assert_eq!(r.unknown[0].suggestion.as_deref(), Some("serverPort"));
        assert_eq!((r.unknown[1].path.as_str(), r.unknown[1].line), ("proxies[0].typo", Some(4)));
        assert_eq!(r.unknown[1].suggestion.as_deref(), Some("type"));
        assert_eq!(nearest("webServer", ["serverAddr", "user"].into_iter()), None);
    }
}
