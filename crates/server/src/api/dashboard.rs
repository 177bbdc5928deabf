//! The dashboard page under `/static/`: the files of `dashboard/dist`, embedded at build time by `build.rs`.
//! Without a build the page says how to make one (503), so a checkout without npm still builds and tests.

use super::routes::Reply;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/dashboard_assets.rs"));
}

/// The command that builds the page, shown when it was not built.
pub const BUILD_COMMAND: &str = "cd dashboard && npm ci && npm run build";

const NOT_BUILT: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Portway dashboard not built</title></head>\
<body><h1>The dashboard page was not built</h1>\
<p>This server binary was compiled without <code>dashboard/dist</code>. Build the page, then the server again:</p>\
<pre>cd dashboard &amp;&amp; npm ci &amp;&amp; npm run build\ncargo build --release -p portway-server</pre>\
<p>The API itself works: <a href=\"../api/serverinfo\">/api/serverinfo</a>.</p></body></html>\n";

/// Whether the page was embedded in this binary.
pub fn built() -> bool {
    assets::FILES.iter().any(|(p, _)| *p == "index.html")
}

/// The content type of a file, by extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Answers `/static/<rest>` (`rest` empty or ending in `/`: `index.html`; `/static` itself redirects to
/// `/static/` so the page's relative URLs resolve).
pub fn asset(rest: &[&str]) -> Reply {
    if rest.is_empty() {
        return Reply {
            status: 301,
            content_type: Some("text/html; charset=utf-8"),
            location: Some("/static/"),
            cache_control: None,
            body: b"<a href=\"/static/\">Moved Permanently</a>.\n\n".to_vec(),
        };
    }
    if !built() {
        let mut r = Reply::text(503, NOT_BUILT);
        r.content_type = Some("text/html; charset=utf-8");
        r.cache_control = Some("no-store");
        return r;
    }
    let mut path = rest.join("/");
    if path.is_empty() || path.ends_with('/') {
        path.push_str("index.html");
    }
    match assets::FILES.iter().find(|(p, _)| *p == path) {
        Some((p, bytes)) => Reply {
            status: 200,
            content_type: Some(content_type(p)),
            location: None,
            // Vite names assets by content hash; index.html must be fetched again to see a new build.
            cache_control: Some(if p.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            }),
            body: bytes.to_vec(),
        },
        None => Reply::not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_build_or_says_how_to_make_it() {
        let index = asset(&[""]);
        if built() {
            assert_eq!((index.status, index.content_type), (200, Some("text/html; charset=utf-8")));
            assert!(String::from_utf8_lossy(&index.body).contains("<div id=\"app\""));
            for (p, _) in assets::FILES {
                let r = asset(&p.split('/').collect::<Vec<_>>());
                assert_eq!(r.status, 200, "{p}");
                assert_ne!(r.content_type, Some("application/octet-stream"), "{p}: no content type");
            }
        } else {
            assert_eq!(index.status, 503);
            assert!(String::from_utf8_lossy(&index.body).contains("npm ci &amp;&amp; npm run build"));
        }
        assert_eq!(asset(&["nosuch.js"]).status, if built() { 404 } else { 503 });
        assert_eq!(asset(&[]).location, Some("/static/"));
        assert_eq!(content_type("assets/index-1a2b.JS"), "text/javascript; charset=utf-8");
    }
}
