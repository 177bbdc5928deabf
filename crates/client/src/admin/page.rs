//! The admin page under `/static/` (frpc's admin UI has the same place): `dashboard/dist/client.html` and its
//! assets, embedded at build time by `build.rs`. `/` redirects there as frpc answers it. Without a build the page
//! says how to make one (503), so a checkout without npm still builds and tests.

mod assets {
    include!(concat!(env!("OUT_DIR"), "/admin_page_assets.rs"));
}

/// An answer of the page: status, content type, `Location`, `Cache-Control`, body.
pub struct PageReply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `Location` of a redirect.
    pub location: Option<&'static str>,
    /// `Cache-Control`.
    pub cache_control: Option<&'static str>,
    /// The body.
    pub body: &'static [u8],
}

const NOT_BUILT: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Portway client page not built</title></head>\
<body><h1>The client's admin page was not built</h1>\
<p>This client binary was compiled without <code>dashboard/dist</code>. Build the page, then the client again:</p>\
<pre>cd dashboard &amp;&amp; npm ci &amp;&amp; npm run build\ncargo build --release -p portway-client</pre>\
<p>The admin API itself works: <a href=\"../api/status\">/api/status</a>.</p></body></html>\n";

const MOVED: &[u8] = b"<a href=\"/static/\">Moved Permanently</a>.\n\n";

/// Whether the page was embedded in this binary.
pub fn built() -> bool {
    assets::FILES.iter().any(|(p, _)| *p == "index.html")
}

/// The content type of a page file, by extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// The answer for a `GET` of `path` when it is the page's (`/`, `/static`, `/static/...`); `None` for other paths.
pub fn answer(path: &str) -> Option<PageReply> {
    let redirect = PageReply {
        status: 301,
        content_type: "text/html; charset=utf-8",
        location: Some("/static/"),
        cache_control: None,
        body: MOVED,
    };
    let rest = match path {
        "/" | "/static" => return Some(redirect),
        p => p.strip_prefix("/static/")?,
    };
    if !built() {
        return Some(PageReply {
            status: 503,
            content_type: "text/html; charset=utf-8",
            location: None,
            cache_control: Some("no-store"),
            body: NOT_BUILT.as_bytes(),
        });
    }
    let file = if rest.is_empty() || rest == "index.html" { "index.html" } else { rest };
    Some(match assets::FILES.iter().find(|(p, _)| *p == file) {
        Some((p, bytes)) => PageReply {
            status: 200,
            content_type: content_type(p),
            location: None,
            // Vite names assets by content hash; the page must be fetched again to see a new build.
            cache_control: Some(if p.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            }),
            body: bytes,
        },
        None => PageReply {
            status: 404,
            content_type: "text/plain; charset=utf-8",
            location: None,
            cache_control: None,
            body: b"404 page not found\n",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_build_or_says_how_to_make_it() {
        for p in ["/", "/static"] {
            let r = answer(p).expect("page path");
            assert_eq!((r.status, r.location), (301, Some("/static/")), "{p}");
        }
        assert!(answer("/api/status").is_none() && answer("/staticx").is_none());
        let index = answer("/static/").expect("index");
        if built() {
            assert_eq!((index.status, index.content_type), (200, "text/html; charset=utf-8"));
            assert!(String::from_utf8_lossy(index.body).contains("<div id=\"app\""));
            for (p, _) in assets::FILES {
                let r = answer(&format!("/static/{p}")).expect("asset");
                assert_eq!(r.status, 200, "{p}");
                assert_ne!(r.content_type, "application/octet-stream", "{p}: no content type");
            }
            assert_eq!(answer("/static/nosuch.js").map(|r| r.status), Some(404));
        } else {
            assert_eq!(index.status, 503);
            assert!(String::from_utf8_lossy(index.body).contains("npm ci &amp;&amp; npm run build"));
        }
    }
}
