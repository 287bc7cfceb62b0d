//! A tiny static website on `127.0.0.1:0` for crawls to fetch: a handful of linked HTML pages.
//!
//! ```text
//! /        "Home"    links to /a.html and /b.html
//! /a.html  "Page A"  links to /c.html and back to /
//! /b.html  "Page B"  links back to /
//! /c.html  "Page C"  no links
//! ```
//!
//! Every answer is HTTP/1.1 with `Content-Length` and `Connection: close`, one thread per
//! connection. The site records each request's path, and stops when dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One page: its path, its `<title>` and the paths it links to.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub path: &'static str,
    pub title: &'static str,
    pub links: &'static [&'static str],
}

/// The site's pages; every one is reachable from `/`.
pub const PAGES: &[Page] = &[
    Page { path: "/", title: "Home", links: &["/a.html", "/b.html"] },
    Page { path: "/a.html", title: "Page A", links: &["/c.html", "/"] },
    Page { path: "/b.html", title: "Page B", links: &["/"] },
    Page { path: "/c.html", title: "Page C", links: &[] },
];

/// A running site. Dropping it stops the server.
pub struct Site {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Site {
    /// Starts serving [`PAGES`] on a free port.
    pub fn start() -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test site");
        let addr = listener.local_addr().expect("the test site's address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let requests = requests.clone();
                    std::thread::spawn(move || serve(stream, &requests));
                }
            })
        };
        Site { addr, requests, stop, thread: Some(thread) }
    }

    /// The absolute URL of `path` on this site.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The paths requested so far, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request head and answers it; errors just drop the connection.
fn serve(mut stream: TcpStream, requests: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut request_line = head.lines().next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(path.clone());
    let (status, body) = match PAGES.iter().find(|page| page.path == path) {
        Some(page) => ("200 OK", html(page)),
        None => ("404 Not Found", "<html><head><title>Not Found</title></head><body></body></html>".to_string()),
    };
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        reply.extend_from_slice(body.as_bytes());
    }
    let _ = stream.write_all(&reply);
    let _ = stream.shutdown(Shutdown::Write);
}

fn html(page: &Page) -> String {
    let links: String = page.links.iter().map(|link| format!("<li><a href=\"{link}\">{link}</a></li>")).collect();
    format!("<!DOCTYPE html>\n<html><head><title>{}</title></head><body><ul>{links}</ul></body></html>\n", page.title)
}
