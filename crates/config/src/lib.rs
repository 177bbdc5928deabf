//! frp's config files, every format frp v0.70 reads, into one tree and then one model.
//!
//! - [`format`](Format): which format a file is in, by frp's rule (extension, then content).
//! - [`toml_in`], [`yaml_in`] (YAML and JSON), [`ini`] + [`legacy`] (frp's legacy INI mapped to the current keys):
//!   text to a [`node::Node`] tree that remembers lines.
//! - [`schema`]: the model's keys read from its `Deserialize`; keys respelled case-insensitively as frp matches them,
//!   unknown keys found with the nearest real one.
//! - [`node::from_node`]: the tree into the model, errors naming line and key.
//! - [`emit`]: the tree as current TOML (`convert`).
//! - [`template`]: frp's `{{ .Envs.NAME }}` substitution.
//!
//! Pure apart from [`read_includes`]: text in, trees and messages out.

#![warn(missing_docs)]

pub mod emit;
pub mod flags;
pub mod ini;
pub mod legacy;
pub mod logfile;
pub mod node;
pub mod ranges;
pub mod schema;
pub mod template;
pub mod toml_in;
pub mod yaml_in;

use std::path::Path;

use node::{Node, Value};
use schema::{Report, Schema};

/// A config file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// frp v0.52+ TOML.
    Toml,
    /// The same keys in YAML.
    Yaml,
    /// The same keys in JSON.
    Json,
    /// frp's legacy INI (`[common]`, snake_case keys).
    Ini,
}

impl Format {
    /// The format's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Toml => "TOML",
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Ini => "legacy INI",
        }
    }
}

/// Which side's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// frpc.
    Client,
    /// frps.
    Server,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Client => "frpc",
            Side::Server => "frps",
        }
    }
}

/// The format of a file, as frp chooses it: `.toml`, `.yaml`/`.yml` and `.json` by extension; anything else is
/// legacy INI when it reads as INI with a `[common]` section, otherwise JSON when it starts with `{`, otherwise TOML
/// when it parses as TOML, otherwise YAML.
pub fn detect(file: &str, text: &str) -> Format {
    let ext = Path::new(file).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("toml") => return Format::Toml,
        Some("yaml") | Some("yml") => return Format::Yaml,
        Some("json") => return Format::Json,
        _ => {}
    }
    if looks_like_ini(text) {
        return Format::Ini;
    }
    if text.trim_start().starts_with('{') {
        return Format::Json;
    }
    let expanded = ranges::expand(text).unwrap_or_else(|_| text.to_string());
    let probe = template::render_keep(&expanded).map(|(t, _)| t).unwrap_or(expanded);
    if toml::from_str::<toml::Table>(&probe).is_ok() {
        Format::Toml
    } else {
        Format::Yaml
    }
}

/// INI with a `[common]` section (frp's legacy-format test).
pub fn looks_like_ini(text: &str) -> bool {
    ini::parse(text).is_ok_and(|s| s.iter().any(|s| s.name == "common"))
}

/// A file that cannot be read into the model: the message names the line and key and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

/// Whether `{{ .Envs.X }}` is substituted (loading) or kept as written (`convert`).
#[derive(Clone, Copy)]
pub enum Envs<'a> {
    /// Look each variable up.
    Lookup(&'a dyn Fn(&str) -> Option<String>),
    /// Keep the templates.
    Keep,
}

/// A file read into a tree.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The tree, with frp's current keys.
    pub node: Node,
    /// The format it was read as.
    pub format: Format,
    /// Things the user should know (legacy keys frp ignores, ...).
    pub warnings: Vec<String>,
    /// What `convert` should say in comments: `(line, text)`.
    pub notes: Vec<(usize, String)>,
    /// The file had range loops, so lines count the expanded text.
    pub loops: bool,
}

/// Reads `text` (named `file` in messages) as `format` into a tree of the current model's keys.
pub fn read_tree(text: &str, file: &str, format: Format, side: Side, envs: Envs<'_>) -> Result<Tree, LoadError> {
    read_tree_part(text, file, format, side, envs, true)
}

/// [`read_tree`] for a file `includes` names (a legacy INI one needs no `[common]`).
pub fn read_include_tree(text: &str, file: &str, envs: Envs<'_>) -> Result<Tree, LoadError> {
    read_tree_part(text, file, detect_include(file, text), Side::Client, envs, false)
}

/// An included file's format: by extension, else INI when it has sections but no `=` before the first one.
fn detect_include(file: &str, text: &str) -> Format {
    let ext = Path::new(file).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if ext.as_deref() == Some("ini") || looks_like_ini(text) {
        return Format::Ini;
    }
    detect(file, text)
}

fn read_tree_part(
    text: &str,
    file: &str,
    format: Format,
    side: Side,
    envs: Envs<'_>,
    main: bool,
) -> Result<Tree, LoadError> {
    let loops = ranges::has_loops(text);
    let fail = |m: String| {
        LoadError(if loops { format!("{m} (line numbers count the file with its range loops expanded)") } else { m })
    };
    let expanded = ranges::expand(text).map_err(|e| LoadError(e.to_string()))?;
    let text = expanded.as_str();
    let mut kept = Vec::new();
    let (rendered, substituted) = match envs {
        Envs::Lookup(lookup) => {
            let r = template::render_envs(text, lookup).map_err(|e| fail(e.to_string()))?;
            (r.text.clone(), Some(r))
        }
        Envs::Keep if format == Format::Ini => (text.to_string(), None),
        Envs::Keep => {
            let (t, k) = template::render_keep(text).map_err(|e| fail(e.to_string()))?;
            kept = k;
            (t, None)
        }
    };
    // A parser's message may quote the line; where a variable was substituted, say which instead.
    let safe = |line: Option<usize>, message: String| match &substituted {
        Some(r) => {
            let span_line = line.map(|l| {
                let start: usize = rendered.split_inclusive('\n').take(l.saturating_sub(1)).map(str::len).sum();
                start..start
            });
            r.parse_error_message(span_line).unwrap_or(message)
        }
        None => message,
    };
    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    let mut node = match format {
        Format::Toml => toml_in::parse(&rendered).map_err(|e| {
            let line = e.span().map(|s| toml_in::LineIndex::new(&rendered).line(s.start));
            let mut m = safe(line, e.to_string().trim_end().to_string());
            if looks_like_ini(text) {
                m.push_str(&format!(
                    "\nThis file is in frp's legacy INI format, not TOML: name it .ini, or turn it into TOML with \
                     `portway-{} convert -c {file}`",
                    if side == Side::Client { "client" } else { "server" }
                ));
            }
            fail(m)
        })?,
        Format::Yaml | Format::Json => {
            if format == Format::Json {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(&rendered) {
                    return Err(fail(safe(Some(e.line()), format!("line {}: not valid JSON: {e}", e.line()))));
                }
            }
            yaml_in::parse(&rendered)
                .map_err(|e| fail(safe(Some(e.line), format!("not valid {}: {e}", format.name()))))?
        }
        Format::Ini => {
            let sections = ini::parse(&rendered).map_err(|e| fail(e.to_string()))?;
            let mapped = match side {
                Side::Client if !main => legacy::client_include(&sections),
                Side::Client => legacy::client(&sections),
                Side::Server => legacy::server(&sections),
            }
            .map_err(|e| fail(e.to_string()))?;
            warnings.extend(mapped.warnings.into_iter().map(|w| format!("{file}: {w}")));
            notes = mapped.notes;
            mapped.node
        }
    };
    if matches!(envs, Envs::Keep) {
        template::restore_markers(&mut node, &kept);
    }
    Ok(Tree { node, format, warnings, notes, loops })
}

/// An frp key Portway does not implement: its path (`[]` for any list index), what it is, what to do instead, and
/// whether the file is refused (the feature changes what the config means) or only warned about (the tunnels work
/// the same without it).
pub type Unsupported = (&'static str, &'static str, &'static str, bool);

/// The tree respelled to the model's keys, unknown keys turned into errors (strict) or warnings, unsupported frp
/// keys into errors that say so, then deserialized.
pub fn into_model<T: for<'de> serde::Deserialize<'de>>(
    tree: &mut Tree,
    file: &str,
    side: Side,
    unsupported: &[Unsupported],
    strict: bool,
) -> Result<(T, Vec<String>), LoadError> {
    let loops = tree.loops;
    let r = into_model_inner(tree, file, side, unsupported, strict);
    r.map_err(|LoadError(m)| {
        LoadError(if loops { format!("{m} (line numbers count the file with its range loops expanded)") } else { m })
    })
}

fn into_model_inner<T: for<'de> serde::Deserialize<'de>>(
    tree: &mut Tree,
    file: &str,
    side: Side,
    unsupported: &[Unsupported],
    strict: bool,
) -> Result<(T, Vec<String>), LoadError> {
    let schema: Schema = schema::schema_of::<T>();
    let mut report = Report::default();
    schema::canonicalize(&mut tree.node, &schema, &mut report);
    let at = |line: Option<usize>| line.map(|l| format!("line {l}: ")).unwrap_or_default();
    if let Some((path, line)) = report.duplicates.first() {
        return Err(LoadError(format!("{}`{path}` is given twice; keep one", at(*line))));
    }
    let mut warnings = std::mem::take(&mut tree.warnings);
    for u in &report.unknown {
        let generic = generic_path(&u.path);
        let hit = unsupported.iter().find(|(p, ..)| generic == *p || generic.starts_with(&format!("{p}.")));
        if let Some((_, what, hint, fatal)) = hit {
            if *fatal {
                return Err(LoadError(format!(
                    "{}`{}` is {what}; Portway does not support it yet ({hint})",
                    at(u.line),
                    u.path
                )));
            }
            warnings.push(format!(
                "{file}: {}`{}` is {what}; Portway does not support it yet and ignores it ({hint})",
                at(u.line),
                u.path
            ));
            continue;
        }
        let hint = match &u.suggestion {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("it is not one of {}'s keys", side.name()),
        };
        let message = format!("{}unknown key `{}` ({hint})", at(u.line), u.path);
        if strict && tree.format != Format::Ini {
            return Err(LoadError(format!(
                "{message}; fix or remove it, or load with --strict-config=false to only warn"
            )));
        }
        warnings.push(format!("{file}: {message}; ignored"));
    }
    let model = node::from_node::<T>(&tree.node).map_err(|e| LoadError(e.to_string()))?;
    Ok((model, warnings))
}

/// The line of the key at `path` (as validation messages name it) in a tree, or of its nearest parent that has one.
pub fn line_of(tree: &Tree, path: &str) -> Option<usize> {
    let mut p = path.to_string();
    loop {
        if let Some(n) = tree.node.at_path(&p).and_then(|n| n.line) {
            return Some(n);
        }
        let cut = p.rfind(['.', '['])?;
        p.truncate(cut);
    }
}

/// `transport.quic.*`, the same keys on frpc and frps (frp's `QUICOptions`); 0 means frp's default (10 s keepalive,
/// 30 s idle timeout, 100000 incoming streams).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QuicOptions {
    /// Seconds between keepalive PINGs.
    pub keepalive_period: i64,
    /// Seconds a silent connection lives (the smaller of both sides' applies).
    pub max_idle_timeout: i64,
    /// Streams the peer may have open at once.
    pub max_incoming_streams: i64,
}

impl QuicOptions {
    /// Whether nothing is set (nothing to write back).
    pub fn is_default(&self) -> bool {
        *self == QuicOptions::default()
    }

    /// The first key with a value that cannot work, and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (key, v) in [
            ("transport.quic.keepalivePeriod", self.keepalive_period),
            ("transport.quic.maxIdleTimeout", self.max_idle_timeout),
            ("transport.quic.maxIncomingStreams", self.max_incoming_streams),
        ] {
            if v < 0 {
                return Err((key, "must be 0 (frp's default) or more".into()));
            }
        }
        Ok(())
    }
}

/// frp's `auth.tokenSource` (both sides): the token a source of `kind` with `file.path` = `path` gives, when no
/// `auth.token` is set (`token_set`). Only type `file` (content, trimmed); the message says what to fix.
pub fn read_token_source(kind: &str, path: &str, token_set: bool) -> Result<String, String> {
    if token_set {
        return Err("give auth.token or auth.tokenSource, not both".into());
    }
    match kind {
        "file" if path.is_empty() => Err("`file.path` is empty: name the file holding the token".into()),
        "file" => std::fs::read_to_string(path)
            .map(|t| t.trim().to_string())
            .map_err(|e| format!("cannot read the token file {path}: {e}")),
        "exec" => Err("type \"exec\" runs a command, which Portway does not do; use type \"file\"".into()),
        t => Err(format!("type {t:?} is not \"file\"")),
    }
}

/// `proxies[3].plugin.type` → `proxies[].plugin.type`.
fn generic_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            c => out.push(c),
        }
    }
    out
}

/// The current TOML for a tree (`convert`): the notes as comments on top, then the keys. A TOML input's leading
/// comment block is kept, so converting the output again gives the same text.
pub fn convert(text: &str, file: &str, side: Side, tree: &Tree, renamed: &[schema::Renamed]) -> String {
    let mut out = String::new();
    if tree.format == Format::Toml {
        for line in text.lines().take_while(|l| l.trim_start().starts_with('#') || l.trim().is_empty()) {
            if line.trim_start().starts_with('#') && !line.chars().any(char::is_control) {
                out.push_str(line);
                out.push('\n');
            }
        }
    } else {
        let name = Path::new(file).file_name().and_then(|n| n.to_str()).unwrap_or(file);
        out.push_str(&format!(
            "# {}.toml converted from {name} ({}) by portway-{} convert.\n",
            side.name(),
            tree.format.name(),
            if side == Side::Client { "client" } else { "server" }
        ));
    }
    let mut notes: Vec<(usize, String)> = tree.notes.clone();
    for r in renamed {
        notes.push((r.line.unwrap_or(0), format!("`{}` written as frp spells it: `{}`", r.written, r.path)));
    }
    notes.sort();
    for (line, text) in notes {
        // A key may hold characters a TOML comment cannot (control characters): write those escaped.
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { format!("\\u{{{:04x}}}", c as u32) } else { c.to_string() })
            .collect();
        out.push_str(&format!("# line {line}: {text}\n"));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&emit::to_toml(&tree.node));
    out
}

/// Respells a tree's keys for `convert` without deserializing it (values may be templates).
pub fn respell<T: for<'de> serde::Deserialize<'de>>(tree: &mut Tree) -> Report {
    let mut report = Report::default();
    schema::canonicalize(&mut tree.node, &schema::schema_of::<T>(), &mut report);
    report
}

/// frp's `includes` (client): each entry a path whose file-name part may be a glob (`*`, `?`, `[...]`), relative
/// to the directory of `config_file` (frp: the working directory; Portway resolves both and says which it used).
/// Returns the matching files, sorted, per entry.
pub fn read_includes(config_file: &Path, patterns: &[String]) -> Result<Vec<std::path::PathBuf>, LoadError> {
    let base = config_file.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for p in patterns {
        let pattern = if Path::new(p).is_absolute() { Path::new(p).to_path_buf() } else { base.join(p) };
        let dir = pattern.parent().unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(LoadError(format!(
                "`includes`: the directory {} of {p:?} does not exist (a relative path is taken from the config \
                 file's directory)",
                dir.display()
            )));
        }
        let name = pattern.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let pat = glob::Pattern::new(name)
            .map_err(|e| LoadError(format!("`includes`: {p:?} is not a valid file name pattern: {e}")))?;
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| LoadError(format!("`includes`: cannot list {}: {e}", dir.display())))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|f| f.is_file() && f.file_name().and_then(|n| n.to_str()).is_some_and(|n| pat.matches(n)))
            .collect();
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

/// Appends the `proxies` and `visitors` of an included file's tree to the main tree (the only keys frp takes from
/// an included file).
pub fn merge_include(main: &mut Node, included: &Node) {
    for key in ["proxies", "visitors"] {
        if let Some(Node { value: Value::Seq(items), .. }) = included.get(key) {
            for item in items {
                main.push_to(key, item.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the config_parse fuzz target: a key holding a control character made a note comment that TOML refuses.
    #[test]
    fn convert_notes_escape_control_characters() {
        let text = "[common]\nauthentication_method\u{1} = token\n";
        let tree = read_tree(text, "frpc.ini", Format::Ini, Side::Client, Envs::Keep).unwrap();
        let out = convert(text, "frpc.ini", Side::Client, &tree, &[]);
        assert!(out.contains("`authentication_method\\u{0001}` dropped"), "{out}");
        assert!(toml_in::parse(&out).is_ok(), "{out}");
    }
}
