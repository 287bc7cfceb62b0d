//! `/logs/` and `/items/`: the log and item directories, served as Twisted's static `File`
//! resource serves them in stock Scrapyd.
//!
//! ScrapydWeb parses the directory listings with regexes (the `DirectoryLister` markup, newlines
//! included), Gerapy reads the end of a log with a suffix range (`Range: bytes=-1000`), and
//! LogParser's `stats.json` is served from the logs directory like any other file. Nothing
//! outside the directory is ever served: `..`, encoded separators and symlinks that leave the
//! tree are 404.

use super::escape;
use crate::http::response::{self, Body, FILE_NOT_FOUND};
use bytes::Bytes;
use chrono::{DateTime, Local, Timelike, Utc};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LAST_MODIFIED, LOCATION, RANGE};
use hyper::{HeaderMap, Response, StatusCode};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Answers a request for `/<base>/<segments...>` from `root`. `segments` are percent-decoded;
/// a trailing empty segment means the request path ended with `/`.
pub async fn serve(
    root: &Path,
    base: &str,
    segments: &[String],
    request_path: &str,
    headers: &HeaderMap,
) -> Response<Body> {
    if segments.is_empty() {
        // `/logs` itself: Twisted redirects a directory without its slash, if it exists.
        let exists = tokio::fs::metadata(root).await.is_ok_and(|meta| meta.is_dir());
        return if exists { redirect(&format!("/{base}/")) } else { file_not_found() };
    }
    let Some(path) = resolve(root, segments) else { return file_not_found() };
    let Ok(meta) = tokio::fs::metadata(&path).await else { return file_not_found() };
    let wants_directory = segments.last().is_some_and(String::is_empty);
    if meta.is_dir() {
        if !wants_directory {
            return redirect(&format!("{request_path}/"));
        }
        return match listing(&path, request_path).await {
            Ok(html) => response::with_body(StatusCode::OK, "text/html; charset=utf-8", html),
            Err(_) => file_not_found(),
        };
    }
    if wants_directory {
        return file_not_found();
    }
    file(&path, meta.len(), meta.modified().ok(), headers).await
}

/// The file a request names inside `root`, or `None` for anything that would leave it.
fn resolve(root: &Path, segments: &[String]) -> Option<PathBuf> {
    let (last, parents) = segments.split_last()?;
    let mut path = root.to_path_buf();
    for segment in parents {
        if segment.is_empty() || segment == "." || segment == ".." || segment.contains(['/', '\\', '\0']) {
            return None;
        }
        path.push(segment);
    }
    if !last.is_empty() {
        if last == "." || last == ".." || last.contains(['/', '\\', '\0']) {
            return None;
        }
        path.push(last);
    }
    // A symlink may point anywhere: only what really lies under the root is served.
    let real_root = std::fs::canonicalize(root).ok()?;
    let real = std::fs::canonicalize(&path).ok()?;
    real.starts_with(&real_root).then_some(real)
}

fn file_not_found() -> Response<Body> {
    response::with_body(StatusCode::NOT_FOUND, "text/html; charset=utf-8", FILE_NOT_FOUND)
}

/// Twisted's `redirectTo`: a 302 with a small refresh page.
fn redirect(location: &str) -> Response<Body> {
    let body = format!(
        "\n<html>\n    <head>\n        <meta http-equiv=\"refresh\" content=\"0;URL={location}\">\n    </head>\n    <body bgcolor=\"#FFFFFF\" text=\"#000000\">\n    <a href=\"{location}\">click here</a>\n    </body>\n</html>\n"
    );
    let len = body.len();
    let mut response = Response::new(response::full(body));
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, value);
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// The content type and encoding Twisted's static files guess from a name; unknown types,
/// `.log` and `.jl` included, are `text/plain`.
fn content_type(name: &str) -> (&'static str, Option<&'static str>) {
    let (stem, encoding) = match name.strip_suffix(".gz") {
        Some(stem) => (stem, Some("gzip")),
        None => match name.strip_suffix(".bz2") {
            Some(stem) => (stem, Some("bzip2")),
            None => (name, None),
        },
    };
    let extension = stem.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    let kind = match extension.as_str() {
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "xml" => "text/xml",
        "js" => "text/javascript",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "zip" | "egg" => "application/zip",
        _ => "text/plain",
    };
    (kind, encoding)
}

/// A file, whole or one byte range of it, streamed from disk.
async fn file(path: &Path, len: u64, modified: Option<std::time::SystemTime>, headers: &HeaderMap) -> Response<Body> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let (kind, encoding) = content_type(name);
    let range = headers.get(RANGE).and_then(|value| value.to_str().ok()).map(|value| parse_range(value, len));
    let (status, start, count) = match range {
        None | Some(RangeRequest::Ignored) => (StatusCode::OK, 0, len),
        Some(RangeRequest::Unsatisfiable) => (StatusCode::RANGE_NOT_SATISFIABLE, 0, 0),
        Some(RangeRequest::Bytes(start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
    };
    let body = if count == 0 {
        response::full(Bytes::new())
    } else {
        match stream_file(path, start, count).await {
            Ok(body) => body,
            Err(_) => return file_not_found(),
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    match status {
        StatusCode::PARTIAL_CONTENT => {
            let value = format!("bytes {start}-{}/{len}", start + count - 1);
            headers.insert("content-range", HeaderValue::from_str(&value).expect("ASCII"));
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            headers.insert("content-range", HeaderValue::from_str(&format!("bytes */{len}")).expect("ASCII"));
        }
        _ => {}
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(count));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Some(encoding) = encoding {
        headers.insert("content-encoding", HeaderValue::from_static(encoding));
    }
    if let Some(modified) = modified {
        // Twisted's `setLastModified` rounds a fractional time up to the next second.
        let mut time = DateTime::<Utc>::from(modified);
        if time.timestamp_subsec_nanos() > 0 {
            time = time.with_nanosecond(0).unwrap_or(time) + chrono::TimeDelta::seconds(1);
        }
        let text = time.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        headers.insert(LAST_MODIFIED, HeaderValue::from_str(&text).expect("ASCII"));
    }
    response
}

/// Reads `count` bytes from `start` in 64 KiB chunks as the client takes them, so a large log is
/// never held in memory.
async fn stream_file(path: &Path, start: u64, count: u64) -> std::io::Result<Body> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let chunks = futures_util::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buffer = vec![0; left.min(64 * 1024) as usize];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok(Frame::data(Bytes::from(buffer))), (file, left - read as u64)))
            }
            Err(err) => Some((Err(err), (file, 0))),
        }
    });
    Ok(StreamBody::new(chunks).boxed())
}

/// A `Range` header as Twisted handles it: one range of bytes (suffix ranges included), served
/// as 206; several ranges or a malformed header are ignored (the whole file, 200); a range that
/// starts past the end is 416.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Bytes(u64, u64),
    Unsatisfiable,
    Ignored,
}

fn parse_range(header: &str, len: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return RangeRequest::Ignored };
    if spec.contains(',') {
        return RangeRequest::Ignored;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeRequest::Ignored };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), number(first), number(last)) {
        // `bytes=-N`: the last N bytes.
        (true, _, Some(suffix)) if suffix > 0 && len > 0 => RangeRequest::Bytes(len.saturating_sub(suffix), len - 1),
        (true, _, _) => RangeRequest::Unsatisfiable,
        (false, Some(start), _) if start >= len => RangeRequest::Unsatisfiable,
        (false, Some(start), None) if last.trim().is_empty() => RangeRequest::Bytes(start, len - 1),
        (false, Some(start), Some(end)) if end >= start => RangeRequest::Bytes(start, end.min(len - 1)),
        _ => RangeRequest::Ignored,
    }
}

/// Twisted's `DirectoryLister` page, with Scrapyd's "Last modified" column.
async fn listing(dir: &Path, request_path: &str) -> std::io::Result<String> {
    let dir = dir.to_path_buf();
    let rows = tokio::task::spawn_blocking(move || listing_rows(&dir)).await.map_err(std::io::Error::other)??;
    let header = escape(request_path);
    Ok(format!(
        "<html>\n<head>\n<title>Directory listing for {header}</title>\n<style>\n.even-dir {{ background-color: #efe0ef }}\n.even {{ background-color: #eee }}\n.odd-dir {{background-color: #f0d0ef }}\n.odd {{ background-color: #dedede }}\n.icon {{ text-align: center }}\n.listing {{\n    margin-left: auto;\n    margin-right: auto;\n    width: 50%;\n    padding: 0.1em;\n    }}\n\nbody {{ border: 0; padding: 0; margin: 0; background-color: #efefef; }}\nh1 {{padding: 0.1em; background-color: #777; color: white; border-bottom: thin white dashed;}}\n\n</style>\n</head>\n\n<body>\n<h1>Directory listing for {header}</h1>\n\n<table>\n    <thead>\n        <tr>\n            <th>Filename</th>\n            <th>Size</th>\n            <th>Last modified</th>\n            <th>Content type</th>\n            <th>Content encoding</th>\n        </tr>\n    </thead>\n    <tbody>\n{rows}\n    </tbody>\n</table>\n\n</body>\n</html>\n"
    ))
}

/// The rows: directories first, then files, each group sorted by name; rows alternate `odd` and
/// `even`. Files whose size cannot be read are skipped, as Twisted does.
fn listing_rows(dir: &Path) -> std::io::Result<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir)?.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
    names.sort();
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for name in names {
        let Ok(meta) = std::fs::metadata(dir.join(&name)) else { continue };
        let modified = meta
            .modified()
            .map(|time| DateTime::<Local>::from(time).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let href = quote(&name);
        let text = escape(&name);
        if meta.is_dir() {
            dirs.push((
                format!("{href}/"),
                format!("{text}/"),
                String::new(),
                modified,
                "[Directory]".to_string(),
                String::new(),
            ));
        } else {
            let (kind, encoding) = content_type(&name);
            let encoding = encoding.map(|e| format!("[{e}]")).unwrap_or_default();
            files.push((href, text, file_size(meta.len()), modified, format!("[{kind}]"), encoding));
        }
    }
    let mut rows = String::new();
    for (i, (href, text, size, modified, kind, encoding)) in dirs.into_iter().chain(files).enumerate() {
        let class = if i % 2 == 0 { "odd" } else { "even" };
        rows.push_str(&format!(
            "<tr class=\"{class}\">\n    <td><a href=\"{href}\">{text}</a></td>\n    <td>{size}</td>\n    <td>{modified}</td>\n    <td>{kind}</td>\n    <td>{encoding}</td>\n</tr>\n"
        ));
    }
    Ok(rows)
}

/// Twisted's `formatFileSize`.
fn file_size(size: u64) -> String {
    match size {
        s if s < 1024 => format!("{s}B"),
        s if s < 1024 * 1024 => format!("{}K", s / 1024),
        s if s < 1024 * 1024 * 1024 => format!("{}M", s / (1024 * 1024)),
        s => format!("{}G", s / (1024 * 1024 * 1024)),
    }
}

/// Python's `urllib.parse.quote(name, "/")`.
fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &byte in name.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' | b'/' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_twisted() {
        assert_eq!(parse_range("bytes=-5", 18), RangeRequest::Bytes(13, 17));
        assert_eq!(parse_range("bytes=-1000", 18), RangeRequest::Bytes(0, 17));
        assert_eq!(parse_range("bytes=2-4", 18), RangeRequest::Bytes(2, 4));
        assert_eq!(parse_range("bytes=2-", 18), RangeRequest::Bytes(2, 17));
        assert_eq!(parse_range("bytes=2-400", 18), RangeRequest::Bytes(2, 17));
        assert_eq!(parse_range("bytes=100-", 18), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,4-5", 18), RangeRequest::Ignored);
        assert_eq!(parse_range("lines=1-2", 18), RangeRequest::Ignored);
        assert_eq!(parse_range("bytes=5-2", 18), RangeRequest::Ignored);
    }

    #[test]
    fn sizes_and_names_read_like_twisted() {
        assert_eq!(file_size(8), "8B");
        assert_eq!(file_size(3 * 1024 + 5), "3K");
        assert_eq!(file_size(5 * 1024 * 1024), "5M");
        assert_eq!(quote("a b&c.log"), "a%20b%26c.log");
        assert_eq!(content_type("j1.log"), ("text/plain", None));
        assert_eq!(content_type("stats.json"), ("application/json", None));
        assert_eq!(content_type("j1.log.gz"), ("text/plain", Some("gzip")));
    }

    #[test]
    fn nothing_outside_the_root_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("logs");
        std::fs::create_dir_all(root.join("p")).unwrap();
        std::fs::write(root.join("p/j.log"), b"x").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("p/link")).unwrap();
        let seg = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(resolve(&root, &seg(&["p", "j.log"])).is_some());
        assert!(resolve(&root, &seg(&["..", "secret"])).is_none());
        assert!(resolve(&root, &seg(&["p", ".."])).is_none());
        assert!(resolve(&root, &seg(&["p", "link"])).is_none(), "a symlink out of the tree");
        assert!(resolve(&root, &seg(&["p%2F..", "x"])).is_none());
    }
}
