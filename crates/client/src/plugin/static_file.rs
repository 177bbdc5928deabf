//! `plugin.type = "static_file"`: the files under `localPath` over HTTP/1.1 (GET and HEAD). With `stripPrefix`,
//! only `/<stripPrefix>/...` is served and the prefix is taken off. A directory answers with its `index.html`, else
//! a plain list of its entries. No path leaves `localPath`: `..` segments are refused and a symbolic link that
//! points outside is not followed. `httpUser` / `httpPassword`: Basic auth is required (401).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Request, Response, StatusCode};
use portway_proto::transport::BoxedIo;
use tokio::io::AsyncReadExt;

use super::{BasicAuth, PluginConfig};

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// What the plugin serves.
#[derive(Clone)]
pub struct Site {
    root: PathBuf,
    /// `/<stripPrefix>/` (or `/`).
    prefix: String,
    auth: BasicAuth,
}

impl Site {
    /// From the plugin's keys.
    pub fn of(p: &PluginConfig) -> Self {
        let strip = p.strip_prefix.trim_matches('/');
        let prefix = if strip.is_empty() { "/".to_string() } else { format!("/{strip}/") };
        Site { root: PathBuf::from(&p.local_path), prefix, auth: BasicAuth::of(&p.http_user, &p.http_password) }
    }
}

/// Percent-decodes a URL path; `None` for bad escapes or non-UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The relative path a URL path names under the root (pure): `None` when it is outside the prefix or would leave
/// the root (`..`, a backslash, a NUL, a drive letter).
pub fn relative(prefix: &str, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path)?;
    let rest = if prefix == "/" {
        decoded.as_str()
    } else {
        decoded.strip_prefix(prefix).or_else(|| (decoded == prefix[..prefix.len() - 1]).then_some(""))?
    };
    let mut out = PathBuf::new();
    for seg in rest.split('/') {
        match seg {
            "" | "." => {}
            ".." => return None,
            s if s.contains(['\\', '\0', ':']) => return None,
            s => out.push(s),
        }
    }
    Some(out)
}

/// `Content-Type` by extension.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" | "log" => "text/plain; charset=utf-8",
        "xml" => "text/xml; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn escape_href(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A directory listing page (pure): names sorted, directories with a trailing `/`.
pub fn listing(names: &[(String, bool)]) -> String {
    let mut names = names.to_vec();
    names.sort();
    let mut out = String::from("<!doctype html>\n<meta charset=\"utf-8\">\n<pre>\n");
    for (name, dir) in names {
        let slash = if dir { "/" } else { "" };
        out.push_str(&format!("<a href=\"{}{slash}\">{}{slash}</a>\n", escape_href(&name), escape_html(&name)));
    }
    out.push_str("</pre>\n");
    out
}

fn full(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_string())).map_err(|e| match e {}).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn file_body(file: tokio::fs::File) -> Body {
    let stream = futures::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    StreamBody::new(stream).boxed_unsync()
}

/// Answers one request.
pub async fn answer(site: &Site, req: &Request<hyper::body::Incoming>) -> Response<Body> {
    if !site.auth.allows(req.headers().get(hyper::header::AUTHORIZATION).map(|v| v.as_bytes())) {
        let mut r = full(StatusCode::UNAUTHORIZED, "401 Unauthorized\n");
        r.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Basic realm=\"Restricted\""),
        );
        return r;
    }
    let head = req.method() == hyper::Method::HEAD;
    if req.method() != hyper::Method::GET && !head {
        let mut r = full(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed\n");
        r.headers_mut().insert(hyper::header::ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let not_found = || full(StatusCode::NOT_FOUND, "404 Not Found\n");
    let url_path = req.uri().path();
    let Some(rel) = relative(&site.prefix, url_path) else { return not_found() };
    // The real paths: a symbolic link may not lead outside the root.
    let Ok(root) = tokio::fs::canonicalize(&site.root).await else { return not_found() };
    let Ok(mut path) = tokio::fs::canonicalize(root.join(&rel)).await else { return not_found() };
    if !path.starts_with(&root) {
        return not_found();
    }
    let Ok(mut meta) = tokio::fs::metadata(&path).await else { return not_found() };
    if meta.is_dir() {
        if !url_path.ends_with('/') {
            let mut r = full(StatusCode::MOVED_PERMANENTLY, "");
            if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("{url_path}/")) {
                r.headers_mut().insert(hyper::header::LOCATION, v);
            }
            return r;
        }
        let index = path.join("index.html");
        match tokio::fs::metadata(&index).await {
            Ok(m) if m.is_file() => {
                path = index;
                meta = m;
            }
            _ => {
                let mut names = Vec::new();
                if let Ok(mut rd) = tokio::fs::read_dir(&path).await {
                    while let Ok(Some(e)) = rd.next_entry().await {
                        let dir = e.file_type().await.is_ok_and(|t| t.is_dir());
                        names.push((e.file_name().to_string_lossy().into_owned(), dir));
                    }
                }
                let mut r = full(StatusCode::OK, &listing(&names));
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
                );
                return r;
            }
        }
    }
    let Ok(file) = tokio::fs::File::open(&path).await else { return not_found() };
    let body = if head { Empty::new().map_err(|e| match e {}).boxed_unsync() } else { file_body(file) };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type(&path)));
    h.insert(hyper::header::CONTENT_LENGTH, meta.len().into());
    r
}

/// Serves HTTP/1.1 on one visitor connection until it closes.
pub async fn serve(conn: BoxedIo, site: Site) {
    let site = Arc::new(site);
    let svc = hyper::service::service_fn(move |req| {
        let site = site.clone();
        async move { Ok::<_, std::convert::Infallible>(answer(&site, &req).await) }
    });
    let io = hyper_util::rt::TokioIo::new(conn);
    if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await {
        tracing::debug!(error = %e, "static_file plugin: connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        assert_eq!(relative("/", "/a/b.txt"), Some(PathBuf::from("a/b.txt")));
        assert_eq!(relative("/", "/a%20b"), Some(PathBuf::from("a b")));
        assert_eq!(relative("/", "/../etc/passwd"), None);
        assert_eq!(relative("/", "/a/%2e%2e/%2e%2e/x"), None);
        assert_eq!(relative("/", "/a%2f..%2f..%2fx"), None);
        assert_eq!(relative("/", "/a\\..\\x"), None);
        assert_eq!(relative("/", "/%zz"), None);
        assert_eq!(relative("/static/", "/static/x"), Some(PathBuf::from("x")));
        assert_eq!(relative("/static/", "/static"), Some(PathBuf::new()));
        assert_eq!(relative("/static/", "/other/x"), None);
        assert_eq!(content_type(Path::new("a.HTML")), "text/html; charset=utf-8");
        let page = listing(&[("b<".into(), false), ("a".into(), true)]);
        assert!(page.contains("<a href=\"a/\">a/</a>\n<a href=\"b%3C\">b&lt;</a>"), "{page}");
    }
}
