//! Embeds the client's admin page (`dashboard/dist/client.html` and the assets it uses, built by
//! `cd dashboard && npm ci && npm run build`) into the client: writes `$OUT_DIR/admin_page_assets.rs` with one
//! `include_bytes!` per file, `client.html` under the name `index.html`. Runs nothing npm-related; when `dist` is
//! missing the table is empty and `/static/` says how to build it, so `cargo test` works without npm.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let dashboard = manifest.join("../../dashboard");
    let dist = dashboard.join("dist");
    println!("cargo:rerun-if-changed=build.rs");
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let page = dist.join("client.html");
    if page.is_file() {
        // Cargo scans a directory for the newest modification time of anything in it.
        println!("cargo:rerun-if-changed={}", dist.display());
        files.push(("index.html".into(), page));
        // Only the assets the page uses (the server dashboard's own chunks stay out): any file of `assets/` whose
        // name appears in an embedded file, until nothing new appears (Vite names them by content hash).
        let mut assets: Vec<String> = std::fs::read_dir(dist.join("assets"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assets.sort();
        let mut i = 0;
        while i < files.len() {
            let text = String::from_utf8_lossy(&std::fs::read(&files[i].1).unwrap_or_default()).into_owned();
            for a in &assets {
                let rel = format!("assets/{a}");
                if text.contains(a.as_str()) && !files.iter().any(|(r, _)| *r == rel) {
                    let abs = dist.join("assets").join(a);
                    files.push((rel, abs.canonicalize().unwrap_or(abs)));
                }
            }
            i += 1;
        }
        files.sort();
    } else if dashboard.is_dir() {
        // No build yet: look again when something appears in `dashboard/` (that is, `dist` after a build).
        println!("cargo:rerun-if-changed={}", dashboard.display());
    }
    let mut out = String::from("/// The admin page's files: path under `/static/` and contents.\n");
    out.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        let _ = writeln!(out, "    ({rel:?}, include_bytes!({:?})),", abs.display().to_string());
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("admin_page_assets.rs");
    std::fs::write(&target, out).expect("writing admin_page_assets.rs");
}
