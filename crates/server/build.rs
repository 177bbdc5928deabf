//! Embeds the dashboard page (`dashboard/dist`, built by `cd dashboard && npm ci && npm run build`) into the
//! server: writes `$OUT_DIR/dashboard_assets.rs` with one `include_bytes!` per file. Runs nothing npm-related; when
//! `dist` is missing the table is empty and `/static/` says how to build it, so `cargo test` works without npm.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let dashboard = manifest.join("../../dashboard");
    let dist = dashboard.join("dist");
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        // Cargo scans a directory for the newest modification time of anything in it.
        println!("cargo:rerun-if-changed={}", dist.display());
        collect(&dist, &dist, &mut files);
        files.sort();
    } else if dashboard.is_dir() {
        // No build yet: look again when something appears in `dashboard/` (that is, `dist` after a build).
        println!("cargo:rerun-if-changed={}", dashboard.display());
    }
    let mut out = String::from("/// The dashboard's files: path under `/static/` and contents.\n");
    out.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        let _ = writeln!(out, "    ({rel:?}, include_bytes!({:?})),", abs.display().to_string());
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("dashboard_assets.rs");
    std::fs::write(&target, out).expect("writing dashboard_assets.rs");
}

/// Every regular file under `dir`, as (path relative to `root` with `/`, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(root, &p, files);
        } else if p.is_file() {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let rel: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            let abs = p.canonicalize().unwrap_or(p.clone());
            files.push((rel.join("/"), abs));
        }
    }
}
