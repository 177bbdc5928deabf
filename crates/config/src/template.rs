//! frp's config templating, the part frp users rely on: `{{ .Envs.NAME }}` in `frpc.toml` / `frps.toml` is
//! replaced by the environment variable `NAME` before the TOML is read (frp renders the file as a Go template
//! with `.Envs` holding the environment). Typical use keeps a secret out of the file:
//! `auth.token = "{{ .Envs.FRP_AUTH_TOKEN }}"`.
//!
//! Pure text in, text out; the lookup is passed in. Differences from frp, each an error naming the line: a value
//! with a line break (so the rendered text keeps the file's line numbers), an unset variable (frp silently
//! substitutes an empty string, which then fails later in a less clear way) and any other template construct
//! (conditionals, other functions), which Portway does not evaluate. frp's range loops over `parseNumberRange` /
//! `parseNumberRangePair` are expanded before this, by [`crate::ranges`].
//! Whole-line `#` comments are left alone, so a commented-out template needs no variable.

/// A template that cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TemplateError {
    /// 1-based line of the `{{`.
    pub line: usize,
    /// What is wrong and what to do; never contains a variable's value.
    pub message: String,
}

/// The text with every `{{ .Envs.NAME }}` replaced, and the names substituted on each line (for messages about
/// the rendered text that must not quote it: the values may be secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The text to parse.
    pub text: String,
    /// (1-based line, variable name) for each substitution, in order.
    pub substituted: Vec<(usize, String)>,
}

impl Rendered {
    /// The variables substituted on `line` (all lines: `None`), as `{{ .Envs.A }}, {{ .Envs.B }}`; empty when none.
    pub fn names_on_line(&self, line: Option<usize>) -> String {
        let on_line = |l: &usize| line.is_none_or(|line| *l == line);
        let names: Vec<String> =
            self.substituted.iter().filter(|(l, _)| on_line(l)).map(|(_, n)| format!("{{{{ .Envs.{n} }}}}")).collect();
        names.join(", ")
    }

    /// For a parse error at byte range `span` of the rendered text: when that line (or, without a span, any line)
    /// had variables substituted, a message naming them to use instead of the parser's, which quotes the line and
    /// so possibly a secret. `None`: the parser's own message is safe.
    pub fn parse_error_message(&self, span: Option<std::ops::Range<usize>>) -> Option<String> {
        let line = span.map(|s| self.text[..s.start.min(self.text.len())].matches('\n').count() + 1);
        let names = self.names_on_line(line);
        if names.is_empty() {
            return None;
        }
        let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
        Some(format!(
            "{at}not valid TOML once environment variables are substituted ({names}); check that their values contain \
             no quotes, backslashes or newlines"
        ))
    }
}

/// Replaces `{{ .Envs.NAME }}` with `lookup(NAME)`; text without `{{` comes back unchanged.
pub fn render_envs(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Rendered, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut substituted = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let n = i + 1;
        if !line.contains("{{") || line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err(TemplateError {
                    line: n,
                    message: "`{{` without a closing `}}` on the same line (templates are `{{ .Envs.NAME }}`)".into(),
                });
            };
            let inner = after[..end].trim();
            let name = inner.strip_prefix(".Envs.").filter(|name| is_name(name)).ok_or_else(|| TemplateError {
                line: n,
                message: format!(
                    "`{{{{ {inner} }}}}` is not supported: Portway substitutes only `{{{{ .Envs.NAME }}}}` (an environment \
                     variable), not frp's other template functions or conditions"
                ),
            })?;
            let value = lookup(name).ok_or_else(|| TemplateError {
                line: n,
                message: format!(
                    "environment variable {name} (used as `{{{{ .Envs.{name} }}}}`) is not set; set it, or put the value \
                     in the file (frp would substitute an empty string)"
                ),
            })?;
            if value.contains(['\n', '\r']) {
                return Err(TemplateError {
                    line: n,
                    message: format!("environment variable {name} contains a line break, which a config value cannot"),
                });
            }
            out.push_str(&value);
            substituted.push((n, name.to_string()));
            rest = &after[end + 2..];
        }
        out.push_str(rest);
    }
    Ok(Rendered { text: out, substituted })
}

/// Where `convert` keeps a template in a place no string surrounds (`serverPort = {{ .Envs.PORT }}`): an integer
/// no config uses, swapped back for the template's text after parsing.
const MARKER_BASE: i64 = 9_100_000_000_000_000_000;

/// For `convert`: the text with each `{{ ... }}` that stands outside quotes replaced by a marker integer (so the
/// file parses), and the templates in order. Templates inside quoted strings stay as written.
pub fn render_keep(text: &str) -> Result<(String, Vec<String>), TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut kept = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.contains("{{") || line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        let mut before = String::new();
        while let Some(start) = rest.find("{{") {
            before.push_str(&rest[..start]);
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find("}}") else {
                return Err(TemplateError {
                    line: i + 1,
                    message: "`{{` without a closing `}}` on the same line".into(),
                });
            };
            let template = &rest[start..start + end + 2];
            let quoted = before.matches('"').count() % 2 == 1 || before.matches('\'').count() % 2 == 1;
            if quoted {
                out.push_str(template);
            } else {
                out.push_str(&(MARKER_BASE + kept.len() as i64).to_string());
                kept.push(template.to_string());
            }
            before.push_str(template);
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
    }
    Ok((out, kept))
}

/// Puts the templates [`render_keep`] took out back into the tree, as raw (unquoted) values.
pub fn restore_markers(node: &mut crate::node::Node, kept: &[String]) {
    use crate::node::Value;
    match &mut node.value {
        Value::Int(i) if *i >= MARKER_BASE => {
            if let Some(t) = usize::try_from(*i - MARKER_BASE).ok().and_then(|k| kept.get(k)) {
                node.value = Value::Raw(t.clone());
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|n| restore_markers(n, kept)),
        Value::Map(entries) => entries.iter_mut().for_each(|e| restore_markers(&mut e.node, kept)),
        _ => {}
    }
}

/// An environment variable name as Go's template field syntax allows it after `.Envs.`.
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "FRP_TOKEN" => Some("s3cr3t-value".into()),
            "PORT" => Some("7000".into()),
            "EMPTY" => Some(String::new()),
            "MULTI" => Some("a\nb".into()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_both_spacings_and_keeps_the_rest_byte_for_byte() {
        let text =
            "serverPort = {{.Envs.PORT}}\nauth.token = \"{{ .Envs.FRP_TOKEN }}\" # tail\nuser = \"{{ .Envs.EMPTY }}\"";
        let r = render_envs(text, env).unwrap();
        assert_eq!(r.text, "serverPort = 7000\nauth.token = \"s3cr3t-value\" # tail\nuser = \"\"");
        assert_eq!(r.substituted, vec![(1, "PORT".into()), (2, "FRP_TOKEN".into()), (3, "EMPTY".into())]);
        assert_eq!(r.names_on_line(Some(2)), "{{ .Envs.FRP_TOKEN }}");
        assert_eq!(r.names_on_line(Some(4)), "");
    }

    #[test]
    fn two_on_one_line_and_text_without_templates() {
        let r = render_envs("a = \"{{ .Envs.PORT }}:{{ .Envs.PORT }}\"\n", env).unwrap();
        assert_eq!(r.text, "a = \"7000:7000\"\n");
        assert_eq!(r.names_on_line(Some(1)), "{{ .Envs.PORT }}, {{ .Envs.PORT }}");
        let plain = "bindPort = 7000\n# {{ nothing }}\n";
        assert_eq!(render_envs(plain, env).unwrap().text, plain);
    }

    #[test]
    fn unset_variable_names_it_and_the_line() {
        let e = render_envs("x = 1\ny = \"{{ .Envs.NOPE }}\"\n", env).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("NOPE") && e.message.contains("not set"), "{e}");
    }

    #[test]
    fn other_constructs_are_refused_with_the_supported_form() {
        for bad in ["{{ .Envs }}", "{{ env \"X\" }}", "{{- .Envs.PORT -}}", "{{ .Envs.1X }}", "{{ .Envs.A.B }}", "{{}}"]
        {
            let e = render_envs(&format!("k = \"{bad}\""), env).unwrap_err();
            assert_eq!(e.line, 1);
            assert!(e.message.contains("only `{{ .Envs.NAME }}`"), "{bad}: {e}");
        }
        let e = render_envs("k = \"{{ .Envs.PORT\"\n", env).unwrap_err();
        assert!(e.message.contains("without a closing"), "{e}");
    }

    #[test]
    fn parse_errors_on_substituted_lines_name_the_variables() {
        let r = render_envs("a = 1\nb = \"{{ .Envs.FRP_TOKEN }}\"\n", env).unwrap();
        let at_line_2 = r.text.find("b =").unwrap();
        let m = r.parse_error_message(Some(at_line_2..at_line_2 + 1)).unwrap();
        assert!(m.starts_with("line 2: ") && m.contains("{{ .Envs.FRP_TOKEN }}") && !m.contains("s3cr3t"), "{m}");
        assert_eq!(r.parse_error_message(Some(0..1)), None, "line 1 had nothing substituted");
        assert!(r.parse_error_message(None).unwrap().contains("FRP_TOKEN"));
    }

    #[test]
    fn a_value_with_a_line_break_is_refused() {
        let e = render_envs("x = 1\ny = \"{{ .Envs.MULTI }}\"\n", env).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("MULTI") && e.message.contains("line break"), "{e}");
    }

    #[test]
    fn messages_never_carry_a_value() {
        let e = render_envs("a = \"{{ .Envs.FRP_TOKEN }}\"\nb = \"{{ bad }}\"", env).unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }
}
