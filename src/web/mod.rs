//! The HTML pages: `/` and `/jobs`, in stock 1.6's markup.
//!
//! ScrapydWeb scrapes `/jobs` with regexes and Gerapy probes `/`, so the markup, including its
//! whitespace, follows stock's templates line for line.

pub mod files;
mod home;
mod jobs;

use crate::app::App;
use crate::http::response::{self, Body};
use hyper::{Request, Response, StatusCode};

/// The pages stock serves besides the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Home,
    Jobs,
}

/// Answers a page request: GET and HEAD render, POST is 405, anything else 501 (Twisted's rules).
pub async fn page<B>(app: &App, request: &Request<B>, page: Page) -> Response<Body> {
    let method = request.method().as_str();
    match method {
        "GET" | "HEAD" => {}
        "POST" => return response::method_not_allowed(request.uri().path(), method),
        other => return response::not_implemented(other),
    }
    let base = base_path(app, request);
    let html = match page {
        Page::Home => home::render(app, &base).await,
        Page::Jobs => jobs::render(app, &base).await,
    };
    match html {
        Ok(html) => response::with_body(StatusCode::OK, "text/html; charset=utf-8", html),
        Err(err) => {
            tracing::error!("rendering {page:?} failed: {err}");
            response::with_body(StatusCode::INTERNAL_SERVER_ERROR, "text/html; charset=utf-8", "Internal error\n")
        }
    }
}

/// The reverse-proxy base path from the `prefix_header` header, inserted verbatim as stock does.
fn base_path<B>(app: &App, request: &Request<B>) -> String {
    request
        .headers()
        .get(app.config.prefix_header.as_str())
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// Python's `html.escape(text, quote=True)`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            other => out.push(other),
        }
    }
    out
}

/// Python's `textwrap.indent(text, prefix)`: prefixes every line that is not blank.
fn indent(text: &str, prefix: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| if line.trim().is_empty() { line.to_string() } else { format!("{prefix}{line}") })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_matches_python() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;");
    }

    #[test]
    fn indent_skips_blank_lines() {
        assert_eq!(indent("a\n\n  \nb", "  "), "  a\n\n  \n  b");
    }
}
