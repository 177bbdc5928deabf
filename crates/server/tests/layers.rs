//! The server's modules form layers (service → control → proxy kinds → session and the plain-data modules): this
//! reads the crate's sources and fails when a module refers to one above it, or when two modules refer to each
//! other in a circle. Doc comments are skipped (a link is not a dependency).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The module a source file belongs to: `proxy/<kind>` for the proxy kinds, else its top-level module.
fn module_of(rel: &Path) -> String {
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    match parts.as_slice() {
        [p, kind, ..] if p == "proxy" && kind != "mod" => format!("proxy/{kind}"),
        [first, ..] => first.clone(),
        [] => String::new(),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "bin") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Module → the modules its code (not its docs) names through `crate::` or, inside `proxy`, `super::`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let kinds = ["group", "port", "udp", "vhost", "visitor"];
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src");
        let m = module_of(rel);
        if m == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read source");
        let deps = g.entry(m.clone()).or_default();
        if m == "proxy" {
            // It declares the kinds and dispatches to them.
            deps.extend(kinds.iter().map(|k| format!("proxy/{k}")));
        }
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + 7..];
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                let mut target = name.clone();
                if name == "proxy" {
                    let sub: String = rest[5..]
                        .trim_start_matches("::")
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if kinds.contains(&sub.as_str()) {
                        target = format!("proxy/{sub}");
                    }
                }
                if target != m && !m.starts_with(&format!("{target}/")) {
                    deps.insert(target);
                }
            }
            if m.starts_with("proxy/") {
                for (i, _) in code.match_indices("super::") {
                    let name: String =
                        code[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if kinds.contains(&name.as_str()) && format!("proxy/{name}") != m {
                        deps.insert(format!("proxy/{name}"));
                    }
                }
            }
        }
    }
    g
}

#[test]
fn proxy_kinds_and_the_session_interface_never_reach_up() {
    let g = graph();
    assert!(g.contains_key("session") && g.contains_key("proxy/vhost"), "modules not found: {g:?}");
    for (m, deps) in &g {
        let below_control = m == "session" || m == "proxy" || m.starts_with("proxy/");
        if below_control {
            for up in ["control", "service"] {
                assert!(!deps.contains(up), "{m} refers to {up}, a layer above it: go through session::Session");
            }
        }
        if m == "session" {
            assert!(!deps.iter().any(|d| d.starts_with("proxy")), "session refers to a proxy kind: {deps:?}");
        }
    }
}

#[test]
fn no_two_modules_refer_to_each_other_in_a_circle() {
    let g = graph();
    // Depth-first search for a back edge.
    fn visit<'a>(
        n: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(n) {
            return;
        }
        if let Some(i) = path.iter().position(|p| *p == n) {
            panic!("modules in a circle: {} -> {n}", path[i..].join(" -> "));
        }
        path.push(n);
        for d in g.get(n).into_iter().flatten() {
            visit(d, g, path, done);
        }
        path.pop();
        done.insert(n);
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        visit(m, &g, &mut Vec::new(), &mut done);
    }
    assert!(done.len() >= 10, "too few modules seen to mean anything: {done:?}");
}
