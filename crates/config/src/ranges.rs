//! frp's template functions for generating proxies, evaluated before `{{ .Envs.NAME }}`:
//!
//! ```text
//! {{- range $_, $v := parseNumberRangePair "6000-6006,6007" "7000-7006,7007" }}
//! [[proxies]]
//! name = "tcp-{{ $v.First }}"
//! localPort = {{ $v.First }}
//! remotePort = {{ $v.Second }}
//! {{- end }}
//! ```
//!
//! `parseNumberRange "A-B,C"` gives the numbers in order (repeats kept); `parseNumberRangePair` pairs two such lists by
//! index (they must be as long). `range $v := ...` and `range $i, $v := ...`, `{{ $v }}`, `{{ $i }}`,
//! `{{ $v.First }}`, `{{ $v.Second }}`, `{{ end }}`, nested loops, and Go's `{{-` / `-}}` whitespace trimming are
//! evaluated; `{{ .Envs.NAME }}` is passed through for [`crate::template`]; anything else is left for it to refuse.
//! Text without `range` comes back unchanged, so line numbers stay the file's; with loops they count the expanded
//! text, which error messages say.

use crate::legacy::parse_range_numbers;
use crate::template::TemplateError;

/// Whether `text` has a range loop to expand.
pub fn has_loops(text: &str) -> bool {
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let inner = rest[i + 2..].trim_start_matches('-').trim_start();
        if inner.starts_with("range ") {
            return true;
        }
        rest = &rest[i + 2..];
    }
    false
}

#[derive(Debug)]
enum Seg {
    Text(String),
    Action { inner: String, line: usize },
}

#[derive(Debug)]
enum Item {
    Text(String),
    /// An action passed through as `{{ inner }}`.
    Keep(String),
    Var {
        name: String,
        field: Option<String>,
        line: usize,
    },
    Range {
        index: Option<String>,
        value: String,
        values: Vec<Val>,
        body: Vec<Item>,
    },
}

#[derive(Debug, Clone)]
enum Val {
    Num(i64),
    Pair(i64, i64),
}

/// Expands every range loop.
pub fn expand(text: &str) -> Result<String, TemplateError> {
    if !has_loops(text) {
        return Ok(text.to_string());
    }
    let segs = segments(text)?;
    let mut iter = segs.into_iter().peekable();
    let items = parse(&mut iter, false)?;
    let mut out = String::with_capacity(text.len() * 2);
    eval(&items, &mut Vec::new(), &mut out)?;
    Ok(out)
}

fn segments(text: &str) -> Result<Vec<Seg>, TemplateError> {
    let mut segs = Vec::new();
    let mut rest = text;
    let mut line = 1;
    while let Some(start) = rest.find("{{") {
        let mut before = rest[..start].to_string();
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(TemplateError { line, message: "`{{` without a closing `}}`".into() });
        };
        let raw = &after[..end];
        let trim_left = raw.starts_with("- ");
        let trim_right = raw.ends_with(" -");
        let mut inner = raw;
        if trim_left {
            inner = &inner[1..];
        }
        if trim_right {
            inner = &inner[..inner.len() - 1];
        }
        if trim_left {
            before.truncate(before.trim_end().len());
        }
        line += rest[..start].matches('\n').count();
        segs.push(Seg::Text(before));
        segs.push(Seg::Action { inner: inner.trim().to_string(), line });
        line += raw.matches('\n').count();
        rest = &after[end + 2..];
        if trim_right {
            let trimmed = rest.trim_start();
            line += rest[..rest.len() - trimmed.len()].matches('\n').count();
            rest = trimmed;
        }
    }
    segs.push(Seg::Text(rest.to_string()));
    Ok(segs)
}

fn parse(iter: &mut std::iter::Peekable<std::vec::IntoIter<Seg>>, in_range: bool) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    while let Some(seg) = iter.next() {
        match seg {
            Seg::Text(t) => items.push(Item::Text(t)),
            Seg::Action { inner, line } => {
                if inner == "end" {
                    if in_range {
                        return Ok(items);
                    }
                    return Err(TemplateError { line, message: "`{{ end }}` without a `{{ range ... }}`".into() });
                }
                if let Some(spec) = inner.strip_prefix("range ") {
                    let (index, value, values) = range_spec(spec.trim(), line)?;
                    let body = parse(iter, true)?;
                    items.push(Item::Range { index, value, values, body });
                } else if let Some(var) = inner.strip_prefix('$') {
                    let (name, field) = match var.split_once('.') {
                        Some((n, f)) => (n.to_string(), Some(f.to_string())),
                        None => (var.to_string(), None),
                    };
                    items.push(Item::Var { name, field, line });
                } else {
                    items.push(Item::Keep(inner));
                }
            }
        }
    }
    if in_range {
        return Err(TemplateError { line: 0, message: "a `{{ range ... }}` has no `{{ end }}`".into() });
    }
    Ok(items)
}

/// `$i, $v := parseNumberRange "..."` or `$v := parseNumberRangePair "..." "..."`.
fn range_spec(spec: &str, line: usize) -> Result<(Option<String>, String, Vec<Val>), TemplateError> {
    let err = |m: String| TemplateError { line, message: m };
    let (vars, call) = spec
        .split_once(":=")
        .ok_or_else(|| err(format!("`range {spec}`: write `range $v := parseNumberRange \"A-B\"`")))?;
    let vars: Vec<&str> = vars.split(',').map(str::trim).collect();
    let var = |s: &str| s.strip_prefix('$').map(String::from).ok_or_else(|| err(format!("{s:?} is not a $variable")));
    let (index, value) = match vars.as_slice() {
        [v] => (None, var(v)?),
        [i, v] => (Some(var(i)?), var(v)?),
        _ => return Err(err(format!("`range {spec}`: one or two variables before `:=`"))),
    };
    let call = call.trim();
    let (func, args) = call.split_once(' ').unwrap_or((call, ""));
    let args = quoted_args(args.trim()).map_err(&err)?;
    let values = match (func, args.as_slice()) {
        ("parseNumberRange", [a]) => parse_range_numbers(a).map_err(&err)?.into_iter().map(Val::Num).collect(),
        ("parseNumberRangePair", [a, b]) => {
            let (a, b) = (parse_range_numbers(a).map_err(&err)?, parse_range_numbers(b).map_err(&err)?);
            if a.len() != b.len() {
                return Err(err(format!(
                    "parseNumberRangePair: {} numbers against {}; the two ranges must be as long (frp: \"first and \
                     second range numbers are not in pairs\")",
                    a.len(),
                    b.len()
                )));
            }
            a.into_iter().zip(b).map(|(x, y)| Val::Pair(x, y)).collect()
        }
        _ => {
            return Err(err(format!(
            "`{call}`: Portway evaluates `parseNumberRange \"A-B\"` and `parseNumberRangePair \"A-B\" \"C-D\"` in a \
                 range"
        )))
        }
    };
    Ok((index, value, values))
}

fn quoted_args(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let body = rest.strip_prefix('"').ok_or_else(|| format!("{rest:?}: arguments are \"quoted\" strings"))?;
        let end = body.find('"').ok_or_else(|| format!("{rest:?}: a quote is not closed"))?;
        out.push(body[..end].to_string());
        rest = body[end + 1..].trim_start();
    }
    Ok(out)
}

fn eval(items: &[Item], vars: &mut Vec<(String, Val)>, out: &mut String) -> Result<(), TemplateError> {
    for item in items {
        match item {
            Item::Text(t) => out.push_str(t),
            Item::Keep(inner) => {
                out.push_str("{{ ");
                out.push_str(inner);
                out.push_str(" }}");
            }
            Item::Var { name, field, line } => {
                let Some((_, v)) = vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(TemplateError {
                        line: *line,
                        message: format!("`${name}` is not a range variable here"),
                    });
                };
                let n = match (v, field.as_deref()) {
                    (Val::Num(n), None) => *n,
                    (Val::Pair(a, _), Some("First")) => *a,
                    (Val::Pair(_, b), Some("Second")) => *b,
                    _ => {
                        return Err(TemplateError {
                            line: *line,
                            message: format!(
                                "`${name}{}`: a number is `$v`, a pair is `$v.First` / `$v.Second`",
                                field.as_deref().map(|f| format!(".{f}")).unwrap_or_default()
                            ),
                        })
                    }
                };
                out.push_str(&n.to_string());
            }
            Item::Range { index, value, values, body } => {
                for (i, v) in values.iter().enumerate() {
                    let depth = vars.len();
                    if let Some(ix) = index {
                        vars.push((ix.clone(), Val::Num(i as i64)));
                    }
                    vars.push((value.clone(), v.clone()));
                    eval(body, vars, out)?;
                    vars.truncate(depth);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_loop_with_trimming_generates_proxies() {
        let text = "serverPort = 7000\n{{- range $_, $v := parseNumberRangePair \"6000-6001,6005\" \"7000-7002\" }}\n[[proxies]]\nname = \"tcp-{{ $v.First }}\"\nlocalPort = {{ $v.First }}\nremotePort = {{ $v.Second }}\n{{- end }}\n";
        let out = expand(text).unwrap();
        assert_eq!(
            out,
            "serverPort = 7000\n[[proxies]]\nname = \"tcp-6000\"\nlocalPort = 6000\nremotePort = 7000\n[[proxies]]\nname = \"tcp-6001\"\nlocalPort = 6001\nremotePort = 7001\n[[proxies]]\nname = \"tcp-6005\"\nlocalPort = 6005\nremotePort = 7002\n"
        );
    }

    #[test]
    fn number_loop_index_nesting_and_envs_pass_through() {
        let text = "{{ range $i, $p := parseNumberRange \"1-2\" }}{{ range $q := parseNumberRange \"7\" }}{{ $i }}:{{ $p }}:{{ $q }} {{ .Envs.X }};{{ end }}{{ end }}";
        assert_eq!(expand(text).unwrap(), "0:1:7 {{ .Envs.X }};1:2:7 {{ .Envs.X }};");
        assert_eq!(expand("a = \"{{ .Envs.X }}\"\n").unwrap(), "a = \"{{ .Envs.X }}\"\n");
    }

    #[test]
    fn errors_name_the_line() {
        let e = expand("a = 1\n{{ range $v := parseNumberRangePair \"1-3\" \"1\" }}{{ end }}").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("3 numbers against 1"), "{e}");
        assert!(expand("{{ range $v := parseNumberRange \"1-2\" }}").is_err());
        assert!(expand("{{ range $v := parseNumberRange \"9-1\" }}{{ end }}").is_err());
        let e = expand("{{ range $v := parseNumberRange \"1\" }}{{ $w }}{{ end }}").unwrap_err();
        assert!(e.message.contains("`$w`"), "{e}");
        assert!(expand("{{ range $v := env \"X\" }}{{ end }}").unwrap_err().message.contains("parseNumberRange"));
    }
}
