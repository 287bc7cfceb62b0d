//! Headless Chromium driven through chromedriver's WebDriver protocol (JSON over HTTP), with the
//! raw client of [`super::client`]: enough to load a page, read what it shows, click, and answer
//! a `confirm()` dialog, without a browser-automation crate.
//!
//! Chromium and chromedriver come from Debian (`apt-get install chromium chromium-driver`, which
//! `.ci/run` does). [`Browser::start`] returns `None` when they are missing, and the test says it
//! was skipped.

use super::client::{self, Reply};
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// WebDriver's key for an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The Chromium binary the tests drive.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A chromedriver process and one browser session; both end when dropped.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium, or says why it cannot (`Err`, for the skip
    /// message) when either program is missing.
    pub fn start() -> Result<Browser, String> {
        let driver = find_program("chromedriver").ok_or("chromedriver is not installed")?;
        if !Path::new(CHROMIUM).exists() {
            return Err(format!("{CHROMIUM} is not installed"));
        }
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot start chromedriver: {err}"))?;
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut browser = Browser { driver: child, addr, session: String::new(), _profile: profile };
        let ready = Instant::now() + Duration::from_secs(20);
        while !browser.driver_ready() {
            assert!(Instant::now() < ready, "chromedriver did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Without the background-networking switches Chromium keeps trying to reach Google's
        // services, which a closed network turns into long stalls.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-crash-reporter",
            "--disable-breakpad",
            "--disable-dev-shm-usage",
            "--window-size=1400,900",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let created = browser.call("POST", "/session", Some(&capabilities));
        browser.session = created["sessionId"].as_str().expect("a session id").to_string();
        Ok(browser)
    }

    fn driver_ready(&self) -> bool {
        std::net::TcpStream::connect(self.addr).is_ok()
            && client::request(self.addr, "GET", "/status", &[], b"").json()["value"]["ready"] == true
    }

    /// One WebDriver command; its `value`, or a panic naming the command and the error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let headers: &[(&str, &str)] =
            if method == "POST" { &[("Content-Type", "application/json; charset=utf-8")] } else { &[] };
        let reply: Reply = client::request(self.addr, method, path, headers, &body);
        let json = reply.json();
        assert_eq!(reply.status, 200, "WebDriver {method} {path}: {json}");
        json["value"].clone()
    }

    fn session_call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Loads `url` and waits for it, as a person typing it would.
    pub fn open(&self, url: &str) {
        self.session_call("POST", "/url", Some(&json!({"url": url})));
    }

    /// The address of the current page.
    pub fn url(&self) -> String {
        self.session_call("GET", "/url", None).as_str().unwrap_or_default().to_string()
    }

    /// The elements matching a CSS selector, in document order.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.session_call("POST", "/elements", Some(&json!({"using": "css selector", "value": css})));
        elements(&found)
    }

    /// The elements matching a CSS selector inside `parent`.
    pub fn find_in(&self, parent: &Element, css: &str) -> Vec<Element> {
        let path = format!("/element/{}/elements", parent.0);
        elements(&self.session_call("POST", &path, Some(&json!({"using": "css selector", "value": css}))))
    }

    /// The text a person sees in an element (rendered, whitespace collapsed).
    pub fn text(&self, element: &Element) -> String {
        self.session_call("GET", &format!("/element/{}/text", element.0), None).as_str().unwrap_or_default().to_string()
    }

    /// The whole page's visible text.
    pub fn page_text(&self) -> String {
        let body = self.find_all("body");
        body.first().map(|b| self.text(b)).unwrap_or_default()
    }

    /// Clicks an element, as a person would (it must be visible and not covered).
    pub fn click(&self, element: &Element) {
        self.session_call("POST", &format!("/element/{}/click", element.0), Some(&json!({})));
    }

    /// The text of the open `alert`/`confirm` dialog, if one is open.
    pub fn dialog_text(&self) -> Option<String> {
        let reply = client::request(self.addr, "GET", &format!("/session/{}/alert/text", self.session), &[], b"");
        (reply.status == 200).then(|| reply.json()["value"].as_str().unwrap_or_default().to_string())
    }

    /// Answers "OK" to the open dialog.
    pub fn accept_dialog(&self) {
        self.session_call("POST", "/alert/accept", Some(&json!({})));
    }

    /// Goes back one page in the history.
    pub fn back(&self) {
        self.session_call("POST", "/back", Some(&json!({})));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = client::request(self.addr, "DELETE", &format!("/session/{}", self.session), &[], b"");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn elements(found: &Value) -> Vec<Element> {
    found
        .as_array()
        .expect("a list of elements")
        .iter()
        .map(|e| Element(e[ELEMENT].as_str().expect("an element reference").to_string()))
        .collect()
}

/// A program on `PATH`.
fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(name)).find(|p| p.is_file())
}
