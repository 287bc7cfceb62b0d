//! Differential tests: the same requests sent to stock Scrapyd 1.6.0 and to our daemon, the
//! answers compared byte for byte.
//!
//! Each battery is a table of [`Case`]s run in order against one pair of daemons (stock in a child
//! process, ours in-process) that start with the same configuration and empty data directories.
//! State flows from case to case (uploads, then listings, then deletions), so both daemons go
//! through the same history. For every case the status code, the body bytes and the headers in
//! [`COMPARED_HEADERS`] must be equal; `Date`, `Server` and `Connection` are not compared, and
//! neither is `Content-Length` except on `HEAD` answers, where it is the only trace of the body
//! (on other answers the body bytes say it all).
//!
//! Only what must differ is normalised, each in one place:
//! - `RunnerError` messages carry tracebacks with each installation's file paths: only their first
//!   and last lines are compared ([`Expect::SameRunnerError`]);
//! - debug-mode tracebacks likewise ([`Expect::SameTraceback`]);
//! - `/jobs` has two columns of ours after stock's (items scraped, pages crawled): they are
//!   removed from our page before it is compared, and nothing else is ([`Expect::SameStockColumns`]);
//! - the deliberate differences of the README ("Deliberate differences from Scrapyd 1.6") are not
//!   compared: each side must give its own documented answer ([`Expect::Deliberate`]).
//!
//! Differences that are bugs of ours still to fix are listed in [`KNOWN_DIFFERENCES`]; the test
//! asserts that each is still different, so fixing one means removing it from the list.

use crate::helper::client::{self, Reply, urlencode};
use crate::helper::multipart::{self, Part};
use crate::helper::stock::Stock;
use crate::helper::{Daemon, python};
use std::net::SocketAddr;
use std::time::Instant;

/// Cases where our daemon still answers differently from stock although it should not: each is a
/// bug to fix (or a feature not built yet). The battery asserts they still differ, so a fix makes
/// the test fail until its line is removed here. Names are case names (see [`Request::name`]).
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

/// The headers compared on every answer, when either side sends them.
const COMPARED_HEADERS: [&str; 9] = [
    "Content-Type",
    "Allow",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "WWW-Authenticate",
    "Location",
    "Content-Encoding",
    "Accept-Ranges",
];

/// A case slower than this is named on standard error (most take milliseconds; an upload runs
/// `scrapy list`, about half a second).
const SLOW: std::time::Duration = std::time::Duration::from_secs(2);

/// The node name both daemons are configured with.
const NODE: &str = "testnode";

const FORM: &str = "application/x-www-form-urlencoded";

/// Basic credentials of the authenticated pair, as the upstream integration tests use.
const USERNAME: &str = "hello12345";
const PASSWORD: &str = "67890world";

// ---------------------------------------------------------------------------------------------
// Requests

/// One HTTP request, sent identically to both daemons.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Tells apart cases whose method and target are the same.
    label: Option<String>,
}

impl Request {
    fn new(method: &str, target: &str) -> Self {
        Request { method: method.into(), target: target.into(), headers: Vec::new(), body: Vec::new(), label: None }
    }

    /// The case name: method, target and label (the start of the body when there is no label).
    fn name(&self) -> String {
        match &self.label {
            Some(label) => format!("{} {} [{label}]", self.method, self.target),
            None if self.body.is_empty() => format!("{} {}", self.method, self.target),
            None => {
                let mut body = self.body.escape_ascii().to_string();
                body.truncate(80);
                format!("{} {} [{body}]", self.method, self.target)
            }
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A body with its `Content-Type` (none when `content_type` is `None`).
    fn body(mut self, content_type: Option<&str>, body: &[u8]) -> Self {
        if let Some(content_type) = content_type {
            self = self.header("Content-Type", content_type);
        }
        self.body = body.to_vec();
        self
    }

    /// Adds to the label (after the fields [`form`] puts there).
    fn label(mut self, label: &str) -> Self {
        self.label = Some(match self.label.take() {
            Some(before) => format!("{before}; {label}"),
            None => label.to_string(),
        });
        self
    }

    /// Puts `prefix` before the label (the auth battery's case names start with `auth: `).
    fn prefixed(mut self, prefix: &str) -> Self {
        self.label = Some(match self.label.take() {
            Some(label) => format!("{prefix}; {label}"),
            None => prefix.to_string(),
        });
        self
    }

    /// HTTP Basic credentials.
    fn auth(self, user: &str, password: &str) -> Self {
        self.header("Authorization", &basic(user, password))
    }

    fn send(&self, addr: SocketAddr) -> Reply {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        client::request(addr, &self.method, &self.target, &headers, &self.body)
    }
}

fn get(target: &str) -> Request {
    Request::new("GET", target)
}

fn head(target: &str) -> Request {
    Request::new("HEAD", target)
}

fn options(target: &str) -> Request {
    Request::new("OPTIONS", target)
}

/// A url-encoded `POST`, labelled with its fields (bytes shown escaped, an egg by its size).
fn form(target: &str, fields: &[(&str, &[u8])]) -> Request {
    let body = urlencode(fields);
    let show = |value: &[u8]| match value.len() {
        0..=60 => value.escape_ascii().to_string(),
        len => format!("<{len} bytes>"),
    };
    let label = fields.iter().map(|(n, v)| format!("{n}={}", show(v))).collect::<Vec<_>>().join("&");
    Request::new("POST", target).body(Some(FORM), &body).label(&label)
}

/// A multipart `POST`; `label` names it since egg bytes make poor names.
fn multipart(target: &str, parts: &[Part<'_>], label: &str) -> Request {
    let (content_type, body) = multipart::encode(parts);
    Request::new("POST", target).body(Some(&content_type), &body).label(label)
}

/// The `Authorization` value for HTTP Basic.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// Url-encodes only what would break the form syntax (`%`, `&`, `;`, `+`, `=`), leaving every
/// other byte raw: the parser must cope with binary in a form body, as stock's `parse_qs` does.
fn raw_urlencode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'%' | b'&' | b';' | b'+' | b'=' => out.extend_from_slice(format!("%{byte:02X}").as_bytes()),
            _ => out.push(byte),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Expectations

/// What a case expects of the two answers.
#[derive(Debug)]
enum Expect {
    /// Identical status, compared headers and body bytes.
    Same,
    /// A `RunnerError` envelope: the message is a traceback through each side's installation
    /// (file paths, our runner's module instead of `scrapyd.runner`), so only the first and last
    /// lines of the message are compared. Everything else is compared exactly.
    SameRunnerError,
    /// A debug-mode traceback (`debug = on`): file paths and frames differ by nature, so only the
    /// first and last lines of the body are compared, plus status and headers.
    SameTraceback,
    /// The `/jobs` page: ours without its two extra columns (README, "Deliberate differences")
    /// must be stock's to the byte. A `HEAD` answer's `Content-Length` is not compared, since it
    /// counts the extra columns.
    SameStockColumns,
    /// A deliberate difference (README, "Deliberate differences from Scrapyd 1.6"): each side must
    /// give its own documented answer. With `stock: None` the request is not sent to stock at all,
    /// because it would destroy stock's state (`delproject` of `""` removes every project).
    Deliberate { why: &'static str, stock: Option<Expected>, ours: Expected },
}

/// A documented answer.
#[derive(Debug, Clone)]
enum Expected {
    /// This status and exactly this body.
    Exact(u16, String),
    /// This status and an error envelope whose message starts with this text.
    ErrorStartingWith(u16, &'static str),
}

impl Expected {
    fn check(&self, reply: &Reply) -> Result<(), String> {
        let fits = match self {
            Expected::Exact(status, body) => reply.status == *status && reply.body == body.as_bytes(),
            Expected::ErrorStartingWith(status, prefix) => {
                let message = serde_json::from_slice::<serde_json::Value>(&reply.body)
                    .ok()
                    .and_then(|json| json["message"].as_str().map(str::to_owned));
                reply.status == *status && message.is_some_and(|message| message.starts_with(prefix))
            }
        };
        if fits { Ok(()) } else { Err(format!("expected {self:?}")) }
    }
}

/// The egg as scrapyd-deploy sends it: a file part named `egg`, file name `project.egg`.
fn egg_part(egg: &[u8]) -> Part<'_> {
    Part::file("egg", "project.egg", egg)
}

/// `{<fields>, "status": "ok", "node_name": "testnode"}` and the newline, as Python writes it.
fn ok(fields: &str) -> Expected {
    Expected::Exact(200, format!("{{{fields}, \"status\": \"ok\", \"node_name\": \"{NODE}\"}}\n"))
}

/// `{"status": "ok", "node_name": "testnode"}`: what the delete endpoints answer.
fn done() -> Expected {
    Expected::Exact(200, format!("{{\"status\": \"ok\", \"node_name\": \"{NODE}\"}}\n"))
}

/// The error envelope with this (ASCII) message.
fn error(message: &str) -> Expected {
    let message = serde_json::to_string(message).expect("a string serialises");
    Expected::Exact(200, format!("{{\"status\": \"error\", \"message\": {message}, \"node_name\": \"{NODE}\"}}\n"))
}

/// One row of a battery.
struct Case {
    request: Request,
    expect: Expect,
}

/// A battery under construction: the cases of one daemon pair, in order.
#[derive(Default)]
struct Battery {
    cases: Vec<Case>,
}

impl Battery {
    fn same(&mut self, request: Request) {
        self.cases.push(Case { request, expect: Expect::Same });
    }

    fn runner_error(&mut self, request: Request) {
        self.cases.push(Case { request, expect: Expect::SameRunnerError });
    }

    fn traceback(&mut self, request: Request) {
        self.cases.push(Case { request, expect: Expect::SameTraceback });
    }

    fn jobs_page(&mut self, request: Request) {
        self.cases.push(Case { request, expect: Expect::SameStockColumns });
    }

    fn deliberate(&mut self, why: &'static str, request: Request, stock: Option<Expected>, ours: Expected) {
        self.cases.push(Case { request, expect: Expect::Deliberate { why, stock, ours } });
    }
}

// ---------------------------------------------------------------------------------------------
// Running and comparing

/// Starts stock and ours with the same configuration, side by side (stock takes about a second).
fn start_pair(conf: &str) -> (Stock, Daemon) {
    std::thread::scope(|scope| {
        let stock = scope.spawn(|| Stock::start(conf));
        let ours = Daemon::start(conf);
        let stock = stock.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (stock, ours)
    })
}

/// Runs the cases in order, each sent to both daemons at once, and fails with every mismatch.
/// `scope` selects the [`KNOWN_DIFFERENCES`] entries of this battery (`auth: ` names belong to
/// the authenticated one), which must all name one of its cases.
fn run(stock: &Stock, ours: &Daemon, cases: &[Case], belongs: impl Fn(&str) -> bool) {
    let names: Vec<String> = cases.iter().map(|case| case.request.name()).collect();
    let twice: Vec<&String> =
        names.iter().enumerate().filter(|(i, name)| names[..*i].contains(name)).map(|(_, n)| n).collect();
    assert!(twice.is_empty(), "several cases have these names (label them): {twice:#?}");
    for (known, _) in KNOWN_DIFFERENCES.iter().filter(|(name, _)| belongs(name)) {
        assert!(names.iter().any(|name| name == known), "KNOWN_DIFFERENCES names no case of this battery: {known:?}");
    }
    let mut failures = Vec::new();
    let mut still_known = 0;
    for (case, name) in cases.iter().zip(&names) {
        let send_to_stock = !matches!(case.expect, Expect::Deliberate { stock: None, .. });
        let sent = Instant::now();
        let (stock_reply, ours_reply) = std::thread::scope(|scope| {
            let stock_reply = send_to_stock.then(|| scope.spawn(|| case.request.send(stock.addr)));
            let ours_reply = case.request.send(ours.addr);
            let stock_reply =
                stock_reply.map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            (stock_reply, ours_reply)
        });
        if sent.elapsed() > SLOW {
            eprintln!("differential: slow case ({:.1?}): {name}", sent.elapsed());
        }
        let outcome = check(&case.request, &case.expect, stock_reply.as_ref(), &ours_reply);
        let known = KNOWN_DIFFERENCES.iter().find(|(known, _)| known == name);
        match (outcome, known) {
            (Ok(()), None) => {}
            (Err(report), None) => failures.push(format!("=== {name}\n{report}")),
            (Err(_), Some(_)) => still_known += 1,
            (Ok(()), Some((_, what))) => failures.push(format!(
                "=== {name}\nlisted in KNOWN_DIFFERENCES ({what}) but both daemons now answer as expected: remove it"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from stock Scrapyd 1.6.0 ({still_known} known differences not shown):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// Checks one case; the error shows both answers.
fn check(request: &Request, expect: &Expect, stock: Option<&Reply>, ours: &Reply) -> Result<(), String> {
    let both = || format!("--- stock\n{}\n--- ours\n{}", show(stock), show(Some(ours)));
    match expect {
        Expect::Same => compare(request, stock, ours, Normalise::Nothing).map_err(|e| format!("{e}\n{}", both())),
        Expect::SameRunnerError => {
            compare(request, stock, ours, Normalise::RunnerError).map_err(|e| format!("{e}\n{}", both()))
        }
        Expect::SameTraceback => {
            compare(request, stock, ours, Normalise::Traceback).map_err(|e| format!("{e}\n{}", both()))
        }
        Expect::SameStockColumns => {
            compare(request, stock, ours, Normalise::StockColumns).map_err(|e| format!("{e}\n{}", both()))
        }
        Expect::Deliberate { why, stock: expected_stock, ours: expected_ours } => {
            if let (Some(expected), Some(reply)) = (expected_stock, stock) {
                expected.check(reply).map_err(|e| format!("stock: {e} ({why})\n{}", both()))?;
            }
            expected_ours.check(ours).map_err(|e| format!("ours: {e} ({why})\n{}", both()))
        }
    }
}

/// What is reduced before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Normalise {
    Nothing,
    StockColumns,
    RunnerError,
    Traceback,
}

fn compare(request: &Request, stock: Option<&Reply>, ours: &Reply, normalise: Normalise) -> Result<(), String> {
    let stock = stock.expect("the request was sent to stock");
    if stock.status != ours.status {
        return Err(format!("status: stock {} / ours {}", stock.status, ours.status));
    }
    let mut headers: Vec<&str> = COMPARED_HEADERS.to_vec();
    // A HEAD answer has no body: its Content-Length is the only trace of the body it stands for.
    // (A 204 carries none on our side, a deliberate HTTP detail.)
    if request.method == "HEAD" && stock.status != 204 && normalise == Normalise::Nothing {
        headers.push("Content-Length");
    }
    for name in headers {
        let (a, b) = (header_values(stock, name), header_values(ours, name));
        if a != b {
            return Err(format!("header {name}: stock {a:?} / ours {b:?}"));
        }
    }
    let (a, b) = match normalise {
        Normalise::Nothing => (stock.body.clone(), ours.body.clone()),
        Normalise::RunnerError => (summarise_runner_error(&stock.body), summarise_runner_error(&ours.body)),
        Normalise::StockColumns => (stock.body.clone(), without_our_columns(&ours.body)),
        Normalise::Traceback => {
            (first_and_last_line(&stock.body).into_bytes(), first_and_last_line(&ours.body).into_bytes())
        }
    };
    if a != b {
        let at = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        let context = |bytes: &[u8]| {
            let start = at.saturating_sub(60);
            let end = (at + 60).min(bytes.len());
            format!("…{}…", bytes[start..end].escape_ascii())
        };
        let what = if normalise == Normalise::Nothing { "body" } else { "normalised body" };
        return Err(format!(
            "{what} differs at byte {at} (lengths {} / {}):\n  stock {}\n  ours  {}",
            a.len(),
            b.len(),
            context(&a),
            context(&b)
        ));
    }
    Ok(())
}

fn header_values(reply: &Reply, name: &str) -> Vec<String> {
    reply.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).collect()
}

/// The envelope with a `RunnerError` message cut to its first and last lines (the lines between
/// are traceback frames naming files of each installation). Other bodies are left as they are.
fn summarise_runner_error(body: &[u8]) -> Vec<u8> {
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(body) else { return body.to_vec() };
    let Some(message) = json.get("message").and_then(|m| m.as_str()).filter(|m| m.starts_with("RunnerError: ")) else {
        return body.to_vec();
    };
    json["message"] = serde_json::Value::String(first_and_last_line(message.as_bytes()));
    serde_json::to_vec(&json).expect("JSON serialises")
}

/// Our `/jobs` page without its two extra columns: their header cells, their body cells (the
/// only `<td>`s with a `class`) and their share of each section's `colspan`.
fn without_our_columns(page: &[u8]) -> Vec<u8> {
    let page = String::from_utf8_lossy(page);
    let ours = [
        "<th>Items scraped</th>",
        "<th>Pages crawled</th>",
        "<td class=\"items-scraped\">",
        "<td class=\"pages-crawled\">",
    ];
    let kept: Vec<String> = page
        .split_inclusive('\n')
        .filter(|line| !ours.iter().any(|cell| line.trim_start().starts_with(cell)))
        .map(|line| match line.split_once("colspan=\"") {
            Some((before, after)) => {
                let (number, rest) = after.split_once('"').expect("colspan=\"N\"");
                let stock: usize = number.parse::<usize>().expect("a column count") - 2;
                format!("{before}colspan=\"{stock}\"{rest}")
            }
            None => line.to_string(),
        })
        .collect();
    kept.concat().into_bytes()
}

/// The first and the last non-blank lines of a text.
fn first_and_last_line(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let first = lines.next().unwrap_or_default();
    let last = lines.next_back().unwrap_or(first);
    format!("{first}\n[...]\n{last}")
}

/// A reply for a failure message: status, headers (without Date/Server), body as escaped text.
fn show(reply: Option<&Reply>) -> String {
    let Some(reply) = reply else { return "(not sent)".into() };
    let headers: Vec<String> = reply
        .headers
        .iter()
        .filter(|(n, _)| !["date", "server"].contains(&n.to_ascii_lowercase().as_str()))
        .map(|(n, v)| format!("{n}: {v}"))
        .collect();
    let mut body = reply.body.escape_ascii().to_string();
    if body.len() > 1500 {
        let cut = (0..=1500).rev().find(|&i| body.is_char_boundary(i)).unwrap_or(0);
        body.truncate(cut);
        body.push_str(" […]");
    }
    format!("HTTP {} | {}\n{body}", reply.status, headers.join(" | "))
}

// ---------------------------------------------------------------------------------------------
// The batteries

/// The eggs and zips the batteries upload, read once.
struct Eggs {
    demo: Vec<u8>,
    demo_v2: Vec<u8>,
    utf8names: Vec<u8>,
    broken_settings: Vec<u8>,
    no_entry_point: Vec<u8>,
    not_a_zip: Vec<u8>,
}

impl Eggs {
    fn load() -> Eggs {
        let read =
            |path: std::path::PathBuf| std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Eggs {
            demo: read(python::egg("demo")),
            demo_v2: read(python::egg("demo_v2")),
            utf8names: read(python::egg("utf8names")),
            broken_settings: read(python::egg("broken_settings")),
            no_entry_point: read(python::zip_without_entry_point()),
            not_a_zip: python::not_a_zip(),
        }
    }
}

/// Url-encoded fields: names and byte values.
type Fields<'a> = &'a [(&'a str, &'a [u8])];

const GET_ENDPOINTS: [&str; 6] =
    ["daemonstatus.json", "listprojects.json", "listversions.json", "listspiders.json", "listjobs.json", "status.json"];
const POST_ENDPOINTS: [&str; 5] =
    ["schedule.json", "cancel.json", "addversion.json", "delversion.json", "delproject.json"];
const DEMO_SPIDERS: &str = r#""spiders": ["args", "failing", "follow", "sleeper", "stubborn"]"#;

/// Methods, routing, pages and every parameter error, on daemons with no project yet.
fn http_layer_cases(b: &mut Battery) {
    b.same(get("/daemonstatus.json"));
    b.same(get("/daemonstatus.json?extra=1&project=x"));
    b.same(get("/listprojects.json"));
    b.same(get("/listjobs.json"));
    b.same(get("/status.json?job=x"));
    b.same(get("/listversions.json?project=demo").label("no project yet"));

    // OPTIONS, HEAD and the wrong methods on every endpoint.
    for endpoint in GET_ENDPOINTS.iter().chain(&POST_ENDPOINTS) {
        b.same(options(&format!("/{endpoint}")));
    }
    for endpoint in GET_ENDPOINTS {
        b.same(head(&format!("/{endpoint}")));
        b.same(Request::new("POST", &format!("/{endpoint}")));
        b.same(Request::new("DELETE", &format!("/{endpoint}")));
    }
    for endpoint in POST_ENDPOINTS {
        b.same(head(&format!("/{endpoint}")));
        b.same(get(&format!("/{endpoint}")));
        b.same(Request::new("PUT", &format!("/{endpoint}")));
    }
    b.same(form("/listjobs.json", &[("project", b"x")]));
    b.same(Request::new("PATCH", "/status.json?job=x"));
    b.same(Request::new("get", "/daemonstatus.json"));
    b.same(Request::new("post", "/delproject.json").body(Some(FORM), b"project=x"));
    b.same(Request::new("BREW", "/listprojects.json"));

    // Routing: a flat tree of leaves; everything else is Twisted's 404 page.
    for target in [
        "/nope",
        "/daemonstatus.json/",
        "/daemonstatus.json/x",
        "//daemonstatus.json",
        "/DAEMONSTATUS.json",
        "/daemonstatus",
        "/jobs/",
        "/jobs/x",
        "/index.html",
        "/%ff",
        "/daemonstatus%2Ejson",
        "/schedule.json/",
        "/logs/",
        "/logs",
        "/logs/demo/",
        "/items/",
    ] {
        b.same(get(target));
    }
    b.same(head("/nope"));
    b.same(Request::new("POST", "/nope").body(Some(FORM), b"project=x"));
    b.same(options("/nope"));
    b.same(options("/listprojects.json/"));

    // The pages.
    b.same(get("/"));
    b.same(head("/"));
    b.same(get("/?project=x"));
    b.jobs_page(get("/jobs"));
    b.jobs_page(head("/jobs"));
    b.same(get("/").header("X-Forwarded-Prefix", "/base/path").label("prefix"));
    b.jobs_page(get("/jobs").header("x-forwarded-prefix", "/base/path").label("prefix"));
    b.same(get("/").header("X-Forwarded-Prefix", "/a\"b<c>").label("unescaped prefix"));
    b.same(Request::new("POST", "/").body(Some(FORM), b"x=1"));
    b.same(Request::new("POST", "/jobs"));
    b.same(options("/"));
    b.same(options("/jobs"));
    b.same(Request::new("PUT", "/jobs"));
    b.same(Request::new("DELETE", "/"));

    // Required parameters, reported in each endpoint's order.
    let required: &[(&str, Fields)] = &[
        ("/schedule.json", &[]),
        ("/schedule.json", &[("spider", b"s")]),
        ("/schedule.json", &[("project", b"p")]),
        ("/schedule.json", &[("project", b"p"), ("_version", b"1"), ("jobid", b"j")]),
        ("/cancel.json", &[]),
        ("/cancel.json", &[("job", b"j")]),
        ("/cancel.json", &[("project", b"p")]),
        ("/addversion.json", &[]),
        ("/addversion.json", &[("version", b"1"), ("egg", b"x")]),
        ("/addversion.json", &[("project", b"p"), ("egg", b"x")]),
        ("/addversion.json", &[("project", b"p"), ("version", b"1")]),
        ("/delproject.json", &[]),
        ("/delversion.json", &[]),
        ("/delversion.json", &[("version", b"1")]),
        ("/delversion.json", &[("project", b"p")]),
    ];
    for (target, fields) in required {
        let mut request = form(target, fields);
        if fields.is_empty() {
            request = Request::new("POST", target).label("no body");
        }
        b.same(request);
    }
    for target in [
        "/listversions.json",
        "/listspiders.json",
        "/listspiders.json?_version=1",
        "/status.json",
        "/status.json?project=p",
    ] {
        b.same(get(target));
    }

    // Unknown projects, versions and jobs.
    b.same(form("/schedule.json", &[("project", b"nope"), ("spider", b"s")]));
    b.same(form("/cancel.json", &[("project", b"nope"), ("job", b"j")]));
    b.same(form("/delproject.json", &[("project", b"nope")]));
    b.same(form("/delversion.json", &[("project", b"nope"), ("version", b"r1")]));
    b.same(get("/status.json?job=x&project=nope"));
    b.same(get("/listspiders.json?project=nope"));
    b.same(get("/listspiders.json?project=nope&_version=r1"));
    b.same(get("/listjobs.json?project=nope"));
    b.same(get("/listversions.json?project=nope"));

    // Invalid UTF-8 in every text parameter, with Python's error texts.
    for target in [
        "/listversions.json?project=%C3%28",
        "/listspiders.json?project=%FF",
        "/listspiders.json?project=p&_version=%E2%82",
        "/status.json?job=%FF",
        "/status.json?job=x&project=%ED%A0%80",
        "/listjobs.json?project=%F8abc",
        "/listversions.json?project=a%C3",
    ] {
        b.same(get(target));
    }
    let invalid: &[(&str, Fields)] = &[
        ("/delproject.json", &[("project", b"\xff")]),
        ("/delversion.json", &[("project", b"p"), ("version", b"\xc3\x28")]),
        ("/addversion.json", &[("project", b"\xe2\x82\xa1\xff"), ("version", b"1"), ("egg", b"x")]),
        ("/addversion.json", &[("project", b"p"), ("version", b"\xf0\x9f\x98"), ("egg", b"x")]),
        ("/schedule.json", &[("project", b"p"), ("spider", b"\xff")]),
        ("/schedule.json", &[("project", b"p"), ("spider", b"s"), ("_version", b"\xff")]),
        ("/schedule.json", &[("project", b"p"), ("spider", b"s"), ("jobid", b"\x80")]),
        ("/schedule.json", &[("project", b"p"), ("spider", b"s"), ("setting", b"A=\xff")]),
        ("/schedule.json", &[("project", b"p"), ("spider", b"s"), ("setting", b"A=1"), ("setting", b"B\xc0")]),
        ("/cancel.json", &[("project", b"p"), ("job", b"\xff")]),
        ("/cancel.json", &[("project", b"p"), ("job", b"j"), ("signal", b"\xff")]),
        ("/cancel.json", &[("project", b"\xff"), ("job", b"\xff")]),
    ];
    for (target, fields) in invalid {
        b.same(form(target, fields));
    }

    // Priority follows Python's float() on the raw bytes; it is read before the project is
    // looked up, so a valid one leads to `project 'nope' not found`.
    for priority in [
        &b"x"[..],
        b"",
        b"\xff",
        b"1,5",
        b" +2.5e1 ",
        b"\x0c2\x0b",
        b"\x1c2",
        b"inf",
        b"-Infinity",
        b"nAn",
        b"1_0",
        b"1__0",
        b"_1",
        b"0x10",
        b"1e400",
        b"1e",
        b"--1",
        b".5",
        b"5.",
        b"\xd9\xa1",
        b"1.5\x00",
    ] {
        b.same(form("/schedule.json", &[("project", b"nope"), ("spider", b"s"), ("priority", priority)]));
    }
    b.same(form("/schedule.json", &[("project", b"nope"), ("spider", b"s"), ("setting", b"NOEQUALS")]));

    // Parameters: query and body merged, `;` separates pairs, the body wins, pairs without `=`
    // are dropped, the first value counts, `+` and `%XX` decode.
    b.same(Request::new("POST", "/delproject.json?project=fromquery").body(Some(FORM), b"project=frombody"));
    b.same(Request::new("POST", "/delversion.json?project=q&version=fromquery").body(Some(FORM), b"version=frombody"));
    b.same(Request::new("POST", "/delproject.json?project=q;x=1"));
    b.same(Request::new("POST", "/delversion.json").body(Some(FORM), b"project=a;version=b"));
    b.same(Request::new("POST", "/delversion.json").body(Some(FORM), b"project").label("project without ="));
    b.same(Request::new("POST", "/delproject.json").body(Some(FORM), b"project&project=z"));
    b.same(Request::new("POST", "/delproject.json").body(Some(FORM), b"project=a&project=b"));
    b.same(Request::new("POST", "/delproject.json").body(Some(FORM), b"&&project=x&&"));
    b.same(Request::new("POST", "/delproject.json").body(Some("application/json"), br#"{"project": "x"}"#));
    b.same(Request::new("POST", "/delproject.json").body(None, b"project=x").label("no content type"));
    b.same(Request::new("POST", "/delproject.json?project=q").body(Some(FORM), b"").label("empty form body"));
    b.same(
        Request::new("POST", "/delproject.json")
            .body(Some("application/x-www-form-urlencoded; charset=utf-8"), b"project=cs"),
    );
    b.same(Request::new("POST", "/delproject.json").body(Some("Application/X-WWW-Form-Urlencoded"), b"project=case"));
    b.same(Request::new("POST", "/delproject.json").body(Some("text/plain"), b"project=x").label("text/plain"));
    b.same(get("/listspiders.json").body(Some(FORM), b"project=x").label("GET with a form body"));
    for target in [
        "/listspiders.json?x=1;project=semi",
        "/listspiders.json?project",
        "/listspiders.json?project&project=b",
        "/listspiders.json?project=a&project=b",
        "/listspiders.json?project=a+b%21%2B%3d",
        "/listspiders.json?project=",
        "/listspiders.json?=x&project=y",
        "/listspiders.json?project=%zz",
        "/listspiders.json?project=%4",
        "/listspiders.json?project=a=b",
        "/listspiders.json?project=%00",
        "/listspiders.json?&&project=amp&&",
        "/listspiders.json?project=%C3%B1and%E2%82%AC%F0%9F%98%80",
        "/listjobs.json?project",
    ] {
        b.same(get(target));
    }

    // Multipart bodies.
    b.same(multipart("/delproject.json", &[Part::field("project", b"mp")], "field"));
    b.same(multipart("/delproject.json", &[Part::file("project", "name.txt", b"mpfile")], "file part"));
    b.same(multipart(
        "/delversion.json?project=q&version=fromquery",
        &[Part::field("version", b"frombody")],
        "query and body",
    ));
    b.same(multipart("/delproject.json", &[Part::field("other", b"x")], "no project"));
    let boundary = "multipart/form-data; boundary=XYZ";
    b.same(Request::new("POST", "/delproject.json").body(Some(boundary), b"--XYZ--\r\n").label("no parts"));
    b.same(
        Request::new("POST", "/delproject.json")
            .body(
                Some("multipart/form-data; boundary=\"XYZ\""),
                b"--XYZ\r\nContent-Disposition: form-data; name=\"project\"\r\n\r\nquoted\r\n--XYZ--\r\n",
            )
            .label("quoted boundary"),
    );
    b.same(
        Request::new("POST", "/delproject.json")
            .body(Some(boundary), b"--XYZ\r\nContent-Disposition: form-data\r\n\r\nnameless\r\n--XYZ\r\nContent-Disposition: form-data; name=\"project\"\r\n\r\nnamed\r\n--XYZ--\r\n")
            .label("nameless part"),
    );
    b.same(
        Request::new("POST", "/delproject.json")
            .body(Some(boundary), b"--XYZ\r\nContent-Disposition: form-data; name=\"project\"\r\nContent-Transfer-Encoding: base64\r\n\r\nYWJj\r\n--XYZ--\r\n")
            .label("base64 part"),
    );
    b.same(Request::new("POST", "/delproject.json").body(Some(boundary), b"garbage").label("malformed"));
    b.same(Request::new("POST", "/delproject.json").body(Some("multipart/form-data"), b"garbage").label("no boundary"));
    b.deliberate(
        "an upload cut off before its closing boundary gets 400; stock parses what arrived",
        Request::new("POST", "/delversion.json")
            .body(
                Some(boundary),
                b"--XYZ\r\nContent-Disposition: form-data; name=\"project\"\r\n\r\nabc\r\n--XYZ\r\nContent-Disposition: form-data; name=\"version\"\r\n\r\n12",
            )
            .label("truncated"),
        Some(error("version '12' not found")),
        Expected::ErrorStartingWith(400, "RequestError: the multipart body is incomplete"),
    );

    // Unsafe project names: the ones stock refuses are compared; `""`, `.` and `\` are refused by
    // ours only.
    for name in ["../p", "a/b", "..", "%2E%2E", "a%2Fb"] {
        b.same(get(&format!("/listversions.json?project={name}")));
        b.same(get(&format!("/listspiders.json?project={name}")));
        b.same(get(&format!("/listjobs.json?project={name}")));
        b.same(get(&format!("/status.json?job=j&project={name}")));
    }
    for name in [&b"../p"[..], b"a/b", b".."] {
        b.same(form("/delproject.json", &[("project", name)]));
        b.same(form("/delversion.json", &[("project", name), ("version", b"1")]));
        b.same(form("/cancel.json", &[("project", name), ("job", b"j")]));
        b.same(form("/schedule.json", &[("project", name), ("spider", b"s")]));
    }
    let refused = "project names that are empty, `.`, or contain a separator are refused everywhere";
    for (query, name) in [("", ""), (".", "."), ("a%5Cb", "a\\b")] {
        b.deliberate(
            refused,
            get(&format!("/listversions.json?project={query}")),
            Some(ok(r#""versions": []"#)),
            error(&format!("DirectoryTraversalError: {name}")),
        );
    }
    for name in ["", "."] {
        b.deliberate(
            refused,
            form("/delproject.json", &[("project", name.as_bytes())]),
            None, // stock deletes every project
            error(&format!("DirectoryTraversalError: {name}")),
        );
        b.deliberate(
            refused,
            form("/delversion.json", &[("project", name.as_bytes()), ("version", b"1")]),
            None, // stock deletes every project when the version exists
            error(&format!("DirectoryTraversalError: {name}")),
        );
    }
}

/// Uploads in every form clients use, listings, broken eggs, version order, UTF-8 names, the
/// pages with projects, schedule validation, deletions.
fn egg_cases(b: &mut Battery, eggs: &Eggs) {
    let demo = &eggs.demo[..];

    // Not eggs.
    b.same(multipart(
        "/addversion.json",
        &[Part::field("project", b"demo"), Part::field("version", b"r0"), egg_part(&eggs.not_a_zip)],
        "not a zip, multipart",
    ));
    b.same(form("/addversion.json", &[("project", b"demo"), ("version", b"r0"), ("egg", &eggs.not_a_zip)]));
    b.same(form("/addversion.json", &[("project", b"demo"), ("version", b"r0"), ("egg", b"")]));
    b.same(form("/addversion.json", &[("project", b"demo"), ("version", b"r0"), ("egg", b"demo.egg")]));
    // The egg is checked before the name: a zip with an unsafe name is a traversal error.
    b.same(form("/addversion.json", &[("project", b"../p"), ("version", b"r0"), ("egg", &eggs.not_a_zip)]));
    for name in [&b"../p"[..], b"a/b", b".."] {
        let label = format!("demo egg, project {}", name.escape_ascii());
        b.same(multipart(
            "/addversion.json",
            &[Part::field("project", name), Part::field("version", b"1"), egg_part(demo)],
            &label,
        ));
    }
    b.same(get("/listprojects.json").label("nothing stored"));

    // The four upload forms of the real demo egg.
    b.same(multipart(
        "/addversion.json",
        &[Part::field("project", b"demo"), Part::field("version", b"r1"), egg_part(demo)],
        "scrapyd-deploy multipart r1",
    ));
    b.same(multipart(
        "/addversion.json",
        &[Part::field("project", b"demo"), Part::field("version", b"r2"), Part::file("egg", "egg", demo)],
        "python-scrapyd-api multipart r2",
    ));
    b.same(multipart("/addversion.json?project=demo&version=r3", &[egg_part(demo)], "query and multipart r3"));
    b.same(
        form("/addversion.json", &[("project", b"demo"), ("version", b"1700000000"), ("egg", demo)])
            .label("url-encoded 1700000000"),
    );
    let mut raw_body = b"egg=".to_vec();
    raw_body.extend(raw_urlencode(demo));
    b.same(
        Request::new("POST", "/addversion.json?project=demo&version=r4")
            .body(Some(FORM), &raw_body)
            .label("raw url-encoded r4"),
    );
    // Re-adding a version replaces it; versions are sanitised when stored, not in the answer.
    b.same(multipart(
        "/addversion.json",
        &[Part::field("project", b"demo"), Part::field("version", b"r1"), egg_part(demo)],
        "again r1",
    ));
    b.same(multipart(
        "/addversion.json",
        &[Part::field("project", b"demo"), Part::field("version", "v1.0 +ü".as_bytes()), egg_part(demo)],
        "sanitised v1.0 +ü",
    ));

    b.same(get("/listversions.json?project=demo"));
    b.same(get("/listprojects.json").label("demo"));
    b.same(get("/listspiders.json?project=demo"));
    b.same(head("/listspiders.json?project=demo"));
    for version in ["r1", "r4", "1700000000", "v1.0+%C3%BC", "v1_0___", "v1.0%20%2B%C3%BC", "nope", "", "r1.0", "R1"] {
        b.same(get(&format!("/listspiders.json?project=demo&_version={version}")));
    }
    b.same(get("/listspiders.json?project=demo&_version=r1&_version=nope"));
    b.same(get("/daemonstatus.json").label("after uploads"));
    b.same(get("/listjobs.json?project=demo"));
    b.same(get("/status.json?job=x&project=demo"));
    b.same(form("/cancel.json", &[("project", b"demo"), ("job", b"nope")]));
    b.same(form("/cancel.json", &[("project", b"demo"), ("job", b"nope"), ("signal", b"BOGUS")]));

    // schedule.json validation against a real project (everything short of enqueuing).
    let schedule_errors: &[Fields] = &[
        &[("project", b"demo"), ("spider", b"nope")],
        &[("project", b"demo"), ("spider", b"args"), ("_version", b"nope")],
        &[("project", b"demo"), ("spider", b"nope"), ("_version", b"r1")],
        &[("project", b"demo"), ("spider", b"args"), ("setting", b"NOEQUALS")],
        &[("project", b"demo"), ("spider", b"args"), ("setting", b"A=1"), ("setting", b"B")],
        &[("project", b"demo"), ("spider", b"args"), ("arg", b"\xc3\x28")],
        &[("project", b"demo"), ("spider", b"args"), ("settings", b"x")],
        &[("project", b"demo"), ("spider", b"args"), ("_job", b"x")],
        &[("project", b"demo"), ("spider", b"args"), ("name", b"x")],
        &[("project", b"demo"), ("spider", b"args"), ("priority", b"high")],
        &[("project", b"demo"), ("spider", b"ARGS")],
    ];
    for fields in schedule_errors {
        b.same(form("/schedule.json", fields));
    }
    b.same(Request::new("POST", "/schedule.json").body(Some(FORM), b"project=demo&spider=args&%FF=v"));

    // Non-ASCII spider names, `\u`-escaped in the JSON.
    b.same(multipart(
        "/addversion.json",
        &[Part::field("project", b"utf"), Part::field("version", b"1"), egg_part(&eggs.utf8names)],
        "utf8names",
    ));
    b.same(get("/listspiders.json?project=utf"));
    b.same(form("/schedule.json", &[("project", b"utf"), ("spider", "araña9".as_bytes())]));
    b.same(form("/schedule.json", &[("project", "ütf".as_bytes()), ("spider", "araña1".as_bytes())]));
    b.same(get("/listprojects.json").label("demo and utf"));

    // The pages now list projects.
    b.same(get("/").label("with projects"));
    b.same(get("/").header("X-Forwarded-Prefix", "/base/path").label("with projects, prefix"));
    b.jobs_page(get("/jobs").label("with projects"));
    b.jobs_page(get("/jobs").header("X-Forwarded-Prefix", "/base/path").label("with projects, prefix"));

    // Broken eggs: the RunnerError answers are compared; what is stored afterwards differs on
    // purpose (ours stores nothing, so the previous version stays the default).
    b.same(multipart(
        "/addversion.json",
        &[Part::field("project", b"broken"), Part::field("version", b"1"), egg_part(demo)],
        "broken 1 good",
    ));
    b.deliberate(
        "our runner explains a bad egg in one line; stock's runner prints a traceback",
        multipart(
            "/addversion.json",
            &[Part::field("project", b"broken"), Part::field("version", b"2"), egg_part(&eggs.no_entry_point)],
            "broken 2 no entry point",
        ),
        Some(Expected::ErrorStartingWith(200, "RunnerError: Traceback (most recent call last):")),
        Expected::ErrorStartingWith(200, "RunnerError: BadEggError: the egg has no EGG-INFO/entry_points.txt"),
    );
    b.runner_error(multipart(
        "/addversion.json",
        &[Part::field("project", b"broken"), Part::field("version", b"3"), egg_part(&eggs.broken_settings)],
        "broken 3 settings raise",
    ));
    let broken = "a failed addversion stores nothing; stock keeps the broken egg as the latest version";
    b.deliberate(
        broken,
        get("/listversions.json?project=broken"),
        Some(ok(r#""versions": ["1", "2", "3"]"#)),
        ok(r#""versions": ["1"]"#),
    );
    b.deliberate(
        broken,
        get("/listspiders.json?project=broken"),
        Some(Expected::ErrorStartingWith(200, "RunnerError: Traceback (most recent call last):")),
        ok(DEMO_SPIDERS),
    );
    b.same(get("/listspiders.json?project=broken&_version=1"));
    b.same(form("/delversion.json", &[("project", b"broken"), ("version", b"1")]).label("broken"));
    b.deliberate(
        broken,
        get("/listversions.json?project=broken").label("after delversion"),
        Some(ok(r#""versions": ["2", "3"]"#)),
        ok(r#""versions": []"#),
    );
    b.deliberate(
        broken,
        form("/delproject.json", &[("project", b"broken")]),
        Some(done()),
        error("project 'broken' not found"),
    );
    b.same(get("/listprojects.json").label("broken gone"));

    // Version order: stock sorts dotted versions (stored as 1_10, 1_9) as strings, ours like
    // LooseVersion; the latest version is the default one.
    b.same(multipart(
        "/addversion.json",
        &[Part::field("project", b"dotted"), Part::field("version", b"1.10"), egg_part(&eggs.demo_v2)],
        "dotted 1.10",
    ));
    for version in [&b"1.2"[..], b"1.9"] {
        let label = format!("dotted {}", version.escape_ascii());
        b.same(multipart(
            "/addversion.json",
            &[Part::field("project", b"dotted"), Part::field("version", version), egg_part(demo)],
            &label,
        ));
    }
    let order = "versions order like LooseVersion; stock sorts dotted versions as strings";
    b.deliberate(
        order,
        get("/listversions.json?project=dotted"),
        Some(ok(r#""versions": ["1_10", "1_2", "1_9"]"#)),
        ok(r#""versions": ["1_2", "1_9", "1_10"]"#),
    );
    b.deliberate(
        order,
        get("/listspiders.json?project=dotted"),
        Some(ok(DEMO_SPIDERS)),
        ok(r#""spiders": ["args", "extra", "failing", "follow", "sleeper", "stubborn"]"#),
    );
    b.same(get("/listspiders.json?project=dotted&_version=1.10"));
    b.same(form("/delproject.json", &[("project", b"dotted")]).label("dotted"));

    // `.` is stored straight into eggs_dir by stock.
    b.deliberate(
        "project names that are empty, `.`, or contain a separator are refused everywhere",
        multipart(
            "/addversion.json",
            &[Part::field("project", b"."), Part::field("version", b"dot"), egg_part(demo)],
            "project .",
        ),
        Some(ok(r#""project": ".", "version": "dot", "spiders": 5"#)),
        error("DirectoryTraversalError: ."),
    );
    b.same(get("/listprojects.json").label("after project ."));

    // Deleting versions and projects.
    b.same(form("/delversion.json", &[("project", b"demo"), ("version", b"nope")]));
    b.same(form("/delversion.json", &[("project", b"demo"), ("version", b"r2")]));
    b.same(form("/delversion.json", &[("project", b"demo"), ("version", b"r2")]).label("again"));
    b.same(form("/delversion.json", &[("project", b"demo"), ("version", "v1.0 +ü".as_bytes())]));
    b.same(get("/listversions.json?project=demo").label("after delversion"));
    b.same(form("/delversion.json", &[("project", b"utf"), ("version", b"1")]));
    b.same(get("/listprojects.json").label("utf gone with its last version"));
    b.same(get("/listspiders.json?project=utf").label("utf gone"));
    b.same(form("/delversion.json", &[("project", b"utf"), ("version", b"1")]).label("again"));

    // Scheduling. Stock keeps these jobs pending (its poll interval is an hour here); ours starts
    // them at once (a deliberate difference), so no job listing is compared after this point.
    let schedules: &[Fields] = &[
        &[("project", b"demo"), ("spider", b"args"), ("jobid", b"job-1")],
        &[
            ("project", b"demo"),
            ("spider", b"args"),
            ("_version", b"r1"),
            ("jobid", b"job-2"),
            ("priority", b"5"),
            ("setting", b"DOWNLOAD_DELAY=2"),
            ("setting", b"FOO=a=b"),
            ("arg1", b"val1"),
            ("arg1", b"ignored"),
        ],
        &[("project", b"demo"), ("spider", b"args"), ("_version", b""), ("jobid", b"job-3")],
        &[("project", b"demo"), ("spider", b"args"), ("jobid", "jöb-4".as_bytes()), ("priority", b"-1.5")],
        &[("project", b"utf"), ("spider", "araña1".as_bytes()), ("jobid", b"job-5")],
    ];
    for fields in schedules {
        b.same(form("/schedule.json", fields));
    }
    let unnamable = "a job id that cannot name files (empty, or longer than 212 bytes) is refused";
    let long_id = [b'j'; 250];
    for (jobid, message) in [
        (&b""[..], "jobid is invalid: a job id cannot be empty"),
        (&long_id[..], "jobid is invalid: a job id is at most 212 bytes long"),
    ] {
        let fields = [("project", &b"demo"[..]), ("spider", &b"args"[..]), ("jobid", jobid)];
        let stock_answer =
            format!("\"jobid\": {}", serde_json::to_string(&String::from_utf8_lossy(jobid)).expect("JSON"));
        b.deliberate(unnamable, form("/schedule.json", &fields), Some(ok(&stock_answer)), error(message));
    }
    let unsafe_job = "a job id with a path separator, `..` or NUL is refused at schedule.json";
    for jobid in [&b"a/b"[..], b"..", b"a\\b", b"a\0b"] {
        let mut fields = vec![("project", &b"demo"[..]), ("spider", &b"args"[..])];
        fields.push(("jobid", jobid));
        let stock_answer =
            format!("\"jobid\": {}", serde_json::to_string(&String::from_utf8_lossy(jobid)).expect("JSON"));
        b.deliberate(
            unsafe_job,
            form("/schedule.json", &fields),
            Some(ok(&stock_answer)),
            Expected::ErrorStartingWith(200, "jobid is invalid: a job id cannot contain"),
        );
    }
    b.same(form("/delproject.json", &[("project", b"demo")]));
    b.same(form("/delproject.json", &[("project", b"demo")]).label("again"));
    b.same(get("/listprojects.json").label("at the end"));
    b.same(get("/").label("at the end"));
}

/// Basic auth (every path, including unknown ones and OPTIONS, answers 401 without credentials)
/// and debug mode (errors answer a traceback), on one pair.
fn auth_and_debug_cases(b: &mut Battery) {
    let label = |request: Request, label: &str| request.prefixed(&format!("auth: {label}"));
    // Without credentials, or with wrong ones, every path is 401.
    for target in ["/daemonstatus.json", "/listprojects.json", "/", "/jobs", "/nope", "/logs/", "/daemonstatus.json/"] {
        b.same(label(get(target), "none"));
    }
    b.same(label(form("/schedule.json", &[("project", b"p"), ("spider", b"s")]), "none"));
    b.same(label(options("/schedule.json"), "none"));
    b.same(label(options("/"), "none"));
    b.same(label(options("/nope"), "none"));
    b.same(label(head("/daemonstatus.json"), "none"));
    b.same(label(head("/"), "none"));
    b.same(label(Request::new("PUT", "/listjobs.json"), "none"));
    let wrong: &[(&str, String)] = &[
        ("wrong password", basic(USERNAME, "nope")),
        ("wrong user", basic("nope", PASSWORD)),
        ("password with an extra colon", basic(USERNAME, &format!("{PASSWORD}:"))),
        ("empty", basic("", "")),
        ("bearer", "Bearer abc".into()),
        ("not base64", "Basic !!!".into()),
        ("no colon", format!("Basic {}", &basic(USERNAME, PASSWORD)[6..10])),
        ("scheme only", "Basic".into()),
        ("digest", format!("Digest {}", &basic(USERNAME, PASSWORD)[6..])),
        ("unpadded", format!("Basic {}", basic(USERNAME, PASSWORD)[6..].trim_end_matches('='))),
    ];
    for (what, value) in wrong {
        b.same(label(get("/daemonstatus.json").header("Authorization", value), what));
        b.same(label(get("/nope").header("Authorization", value), what));
    }
    b.same(label(options("/schedule.json").header("Authorization", &basic(USERNAME, "nope")), "wrong password"));

    // With credentials.
    let good = basic(USERNAME, PASSWORD);
    let lower = good.replacen("Basic", "basic", 1);
    let upper = good.replacen("Basic", "BASIC", 1);
    let spaced = good.replacen("Basic ", "Basic  ", 1);
    for (what, value) in
        [("good", &good), ("lower-case scheme", &lower), ("upper-case scheme", &upper), ("two spaces", &spaced)]
    {
        b.same(label(get("/daemonstatus.json").header("Authorization", value), what));
    }
    for target in ["/listprojects.json", "/nope", "/", "/logs/"] {
        b.same(label(get(target).auth(USERNAME, PASSWORD), "good"));
    }
    b.jobs_page(label(get("/jobs").auth(USERNAME, PASSWORD), "good"));
    b.same(label(options("/schedule.json").auth(USERNAME, PASSWORD), "good"));
    b.same(label(head("/daemonstatus.json").auth(USERNAME, PASSWORD), "good"));
    b.jobs_page(label(get("/jobs").auth(USERNAME, PASSWORD).header("X-Forwarded-Prefix", "/p"), "good, prefix"));

    // Debug mode: an error answers a Python traceback as text/html, success is unchanged.
    for target in [
        "/listspiders.json?project=nope",
        "/listspiders.json",
        "/listversions.json?project=%C3%28",
        "/listversions.json?project=../p",
        "/schedule.json",
        "/status.json?job=x&project=nope",
    ] {
        b.traceback(label(get(target).auth(USERNAME, PASSWORD), "debug"));
    }
    for target in ["/listjobs.json", "/delproject.json"] {
        b.traceback(label(Request::new("PUT", target).auth(USERNAME, PASSWORD), "debug"));
    }
    b.traceback(label(head("/schedule.json").auth(USERNAME, PASSWORD), "debug"));
    for fields in [
        &[("project", &b"p"[..]), ("spider", b"s"), ("priority", b"x")][..],
        &[("project", b"p"), ("spider", b"s"), ("setting", b"A=\xff")],
        &[("project", b"p"), ("spider", b"s")],
    ] {
        b.traceback(label(form("/schedule.json", fields).auth(USERNAME, PASSWORD), "debug"));
    }
    b.traceback(label(
        form("/addversion.json", &[("project", b"p"), ("version", b"1"), ("egg", b"x")]).auth(USERNAME, PASSWORD),
        "debug",
    ));
    b.traceback(label(form("/delproject.json", &[("project", b"../p")]).auth(USERNAME, PASSWORD), "debug"));
    b.same(label(get("/listprojects.json").auth(USERNAME, PASSWORD), "debug success"));
    b.same(label(get("/listversions.json?project=x").auth(USERNAME, PASSWORD), "debug success"));
    b.same(label(
        form("/cancel.json", &[("project", b"p")]).header("Authorization", "Bearer x"),
        "debug, no credentials",
    ));
}

/// The main pair's configuration: a `[settings]` project besides the egg projects. No
/// `scrapy.cfg` is in reach of the working directory, so Scrapy cannot list its spiders.
const MAIN_CONF: &str = "[settings]\nlocalproject = demo.settings\n";

/// A project declared in `[settings]` only: listed, without versions, not deletable, and its
/// spiders cannot be listed without a `scrapy.cfg`.
fn settings_project_cases(b: &mut Battery) {
    b.same(get("/listprojects.json").label("settings project"));
    b.same(get("/listversions.json?project=localproject"));
    b.runner_error(get("/listspiders.json?project=localproject"));
    b.same(get("/listspiders.json?project=localproject&_version=1"));
    b.runner_error(form("/schedule.json", &[("project", b"localproject"), ("spider", b"s")]));
    b.same(form("/schedule.json", &[("project", b"localproject"), ("spider", b"s"), ("_version", b"1")]));
    b.same(get("/listjobs.json?project=localproject"));
    b.same(get("/status.json?job=x&project=localproject"));
    b.same(form("/cancel.json", &[("project", b"localproject"), ("job", b"j")]));
    b.same(form("/delversion.json", &[("project", b"localproject"), ("version", b"1")]));
    b.same(form("/delproject.json", &[("project", b"localproject")]));
}

#[test]
fn stock_and_ours_answer_the_api_battery_alike() {
    let started = Instant::now();
    let (eggs, (stock, ours)) = std::thread::scope(|scope| {
        let eggs = scope.spawn(Eggs::load);
        let pair = start_pair(MAIN_CONF);
        (eggs.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), pair)
    });
    let ready = started.elapsed();
    let mut battery = Battery::default();
    http_layer_cases(&mut battery);
    settings_project_cases(&mut battery);
    egg_cases(&mut battery, &eggs);
    run(&stock, &ours, &battery.cases, |name| !name.contains("[auth: "));
    eprintln!(
        "differential: {} cases in {:.1?} (daemons and eggs ready after {ready:.1?})",
        battery.cases.len(),
        started.elapsed()
    );
}

#[test]
fn stock_and_ours_answer_auth_and_debug_alike() {
    let started = Instant::now();
    let conf = format!("username = {USERNAME}\npassword = {PASSWORD}\ndebug = on\n");
    let (stock, ours) = start_pair(&conf);
    let ready = started.elapsed();
    let mut battery = Battery::default();
    auth_and_debug_cases(&mut battery);
    run(&stock, &ours, &battery.cases, |name| name.contains("[auth: "));
    eprintln!(
        "differential (auth, debug): {} cases in {:.1?} (daemons ready after {ready:.1?})",
        battery.cases.len(),
        started.elapsed()
    );
}
