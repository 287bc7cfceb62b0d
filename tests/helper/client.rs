//! A deliberately small HTTP/1.1 client over a raw TCP stream.
//!
//! Tests compare exact bytes (header order, `Content-Length`, bodies) and send requests no
//! well-behaved client library would (truncated multipart, invalid UTF-8, lower-case methods), so
//! the client writes what it is given and reads the reply as it comes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A reply: status, headers in wire order, body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.text()))
    }

    /// The `message` of an error envelope, asserting that it is one.
    pub fn error(&self) -> String {
        let json = self.json();
        assert_eq!(json["status"], "error", "expected an error envelope: {}", self.text());
        json["message"].as_str().expect("message").to_string()
    }

    /// Asserts an `ok` envelope and returns it.
    pub fn ok(&self) -> serde_json::Value {
        let json = self.json();
        assert_eq!(self.status, 200, "{}", self.text());
        assert_eq!(json["status"], "ok", "expected ok: {}", self.text());
        json
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads the whole reply.
pub fn request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let declares_length = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding"));
    if !body.is_empty() && !declares_length {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    // The server may answer and close before reading a large body (an upload over the limit).
    let _ = stream.write_all(body);
    read_reply(stream, method == "HEAD")
}

fn read_reply(stream: TcpStream, head_only: bool) -> Reply {
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        panic!("bad status line {status_line:?}");
    });
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header has a colon");
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let mut body = Vec::new();
    if !head_only && status != 204 {
        let length = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        match length.and_then(|(_, v)| v.parse::<usize>().ok()) {
            Some(len) => {
                body.resize(len, 0);
                reader.read_exact(&mut body).expect("body");
            }
            None => {
                let _ = reader.read_to_end(&mut body);
            }
        }
    }
    Reply { status, headers, body }
}

/// `application/x-www-form-urlencoded` encoding of byte values.
pub fn urlencode(fields: &[(&str, &[u8])]) -> Vec<u8> {
    let encode = |bytes: &[u8]| -> String {
        bytes
            .iter()
            .map(|&b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name.as_bytes()), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// `multipart/form-data` bodies.
pub mod multipart {
    /// One part: a plain field, or a file with a filename.
    pub struct Part<'a> {
        pub name: &'a str,
        pub filename: Option<&'a str>,
        pub value: &'a [u8],
    }

    impl<'a> Part<'a> {
        pub fn field(name: &'a str, value: &'a [u8]) -> Self {
            Part { name, filename: None, value }
        }

        pub fn file(name: &'a str, filename: &'a str, value: &'a [u8]) -> Self {
            Part { name, filename: Some(filename), value }
        }
    }

    pub const BOUNDARY: &str = "scrapyd-rs-test-boundary-7MA4YWxkTrZu0gW";

    /// The `Content-Type` header value and the body.
    pub fn encode(parts: &[Part<'_>]) -> (String, Vec<u8>) {
        let mut body = Vec::new();
        for part in parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            let disposition = match part.filename {
                Some(filename) => format!("form-data; name=\"{}\"; filename=\"{filename}\"", part.name),
                None => format!("form-data; name=\"{}\"", part.name),
            };
            body.extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
            if part.filename.is_some() {
                body.extend_from_slice(b"Content-Type: application/octet-stream\r\n");
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(part.value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={BOUNDARY}"), body)
    }
}
