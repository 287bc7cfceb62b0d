//! Stock Scrapyd 1.6.0 and the real clients, for the differential and client tests.
//!
//! The differential tests send the same requests to our daemon and to the Python daemon we replace,
//! and the client tests drive our daemon with the tools people deploy with. Both need the real
//! packages, pinned to the versions the reference describes, so they are installed by the tests
//! themselves into `<target>/stock-venv` (complete once `.ready` exists in it), under a file lock
//! shared by every test process, as [`super::python`] does for the Scrapy venv.
//!
//! Stock runs as a child process in a temporary directory of its own (its working directory is its
//! data directory), on a free port, and is killed when the [`Stock`] value is dropped. It runs
//! `scrapy list` with its own interpreter (Scrapy comes with `scrapyd`), so the eggs from
//! [`super::python::egg`] work there too.

use super::client::{self, Reply, multipart};
use super::python::{lock, run};
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The packages installed into the stock venv, pinned to the versions the reference was written
/// against (`reference/scrapyd-1.6-behaviour.md`); all three install on Python 3.11.
pub const STOCK_REQUIREMENTS: [&str; 3] = ["scrapyd==1.6.0", "scrapyd-client==2.0.3", "python-scrapyd-api==2.1.2"];

/// Overrides the stock venv: a directory with `bin/scrapyd`, `bin/scrapyd-deploy` and
/// `bin/python`, used as is.
pub const STOCK_VENV_ENV: &str = "SCRAPYD_RS_TEST_STOCK_VENV";

/// How long stock may take to answer its first request (it imports Twisted and Scrapy).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The venv holding stock Scrapyd, scrapyd-client and python-scrapyd-api: `$SCRAPYD_RS_TEST_STOCK_VENV`,
/// or `<target>/stock-venv`, made on first use with the `python3` on `PATH` (pip needs the
/// package registry).
///
/// # Panics
///
/// If the venv cannot be provisioned.
pub fn venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| match std::env::var_os(STOCK_VENV_ENV) {
        Some(venv) if !venv.is_empty() => PathBuf::from(venv),
        _ => provision(&super::python::target_dir().join("stock-venv")),
    })
    .clone()
}

/// A program of the stock venv (`scrapyd`, `scrapyd-deploy`, `scrapyd-client`, `python`).
pub fn bin(name: &str) -> PathBuf {
    venv().join("bin").join(name)
}

/// Makes the venv unless `.ready` says it is complete. The lock is a file next to the venv that
/// is never renamed or removed, so concurrent test processes wait for each other; a venv without
/// `.ready` is what a killed run left behind and is made afresh.
fn provision(venv: &Path) -> PathBuf {
    let _lock = lock(&venv.with_extension("lock"));
    if venv.join(".ready").exists() {
        return venv.to_path_buf();
    }
    let started = Instant::now();
    eprintln!("test helper: provisioning {} with {}", venv.display(), STOCK_REQUIREMENTS.join(" "));
    match fs::remove_dir_all(venv) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("remove {}: {e}", venv.display()),
    }
    run("create the stock venv", Command::new("python3").arg("-m").arg("venv").arg(venv));
    let python = venv.join("bin").join("python");
    run(
        "install stock Scrapyd and its clients",
        Command::new(&python).args(["-m", "pip", "install", "--quiet"]).args(STOCK_REQUIREMENTS),
    );
    // Check what pip resolved, so a registry serving something else fails here and not later.
    let check = "from importlib.metadata import version as v\n\
                 print(v('scrapyd'), v('scrapyd-client'), v('python-scrapyd-api'), v('scrapy'), v('twisted'))";
    let versions = run("check the stock packages", Command::new(&python).arg("-c").arg(check));
    let versions = String::from_utf8_lossy(&versions.stdout).trim().to_owned();
    assert!(versions.starts_with("1.6.0 2.0.3 2.1.2 "), "unexpected stock package versions: {versions}");
    fs::write(venv.join(".ready"), format!("scrapyd scrapyd-client python-scrapyd-api scrapy twisted: {versions}\n"))
        .unwrap_or_else(|e| panic!("write {}/.ready: {e}", venv.display()));
    eprintln!("test helper: stock venv ready in {:.1?} ({versions})", started.elapsed());
    venv.to_path_buf()
}

/// A stock Scrapyd 1.6.0 daemon, running as a child process on `127.0.0.1` in a data directory:
/// a temporary one of its own, or one the caller keeps; killed when dropped.
pub struct Stock {
    pub addr: SocketAddr,
    child: Child,
    dir: StockDir,
}

/// Stock's data directory (its working directory).
enum StockDir {
    /// Removed with the daemon.
    Owned(tempfile::TempDir),
    /// Kept by the caller, e.g. to start scrapyd-rs on what stock left.
    Given(PathBuf),
}

impl StockDir {
    fn path(&self) -> &Path {
        match self {
            StockDir::Owned(dir) => dir.path(),
            StockDir::Given(path) => path,
        }
    }
}

impl Stock {
    /// Starts stock with a `scrapyd.conf` that sets `http_port` (a free port), `bind_address =
    /// 127.0.0.1`, `node_name = testnode` and `poll_interval = 3600`, followed by `conf`.
    ///
    /// `conf` continues the `[scrapyd]` section (so it must not repeat those options: ConfigParser
    /// refuses duplicates) and may open other sections. The long poll interval keeps a job
    /// scheduled by a test pending: stock would otherwise start it within 5 s and change later
    /// answers at a moment no test controls.
    ///
    /// `HOME` is the data directory and `SCRAPYD_*` variables are removed, so no `~/.scrapyd.conf`,
    /// `~/.netrc` or environment override of the machine leaks in.
    ///
    /// # Panics
    ///
    /// If stock does not answer within a minute, or exits (its output is in the message).
    pub fn start(conf: &str) -> Stock {
        Self::launch(|| StockDir::Owned(tempfile::tempdir().expect("temp dir")), conf)
    }

    /// Like [`Stock::start`], in an existing directory that outlives the daemon (its
    /// `scrapyd.conf` is rewritten; its output is appended to `stock-output.log` there). Stock's
    /// first poll at startup dispatches pending jobs, as a restarted stock does.
    pub fn start_in(dir: &Path, conf: &str) -> Stock {
        Self::launch(|| StockDir::Given(dir.to_path_buf()), conf)
    }

    fn launch(mut make_dir: impl FnMut() -> StockDir, conf: &str) -> Stock {
        let scrapyd = bin("scrapyd");
        // The port is free when we check it, but another process may take it before stock binds
        // it; stock then exits, and we try another.
        for _attempt in 0..5 {
            let dir = make_dir();
            let port = free_port();
            let text = format!(
                "[scrapyd]\nhttp_port = {port}\nbind_address = 127.0.0.1\nnode_name = testnode\npoll_interval = 3600\n{conf}"
            );
            fs::write(dir.path().join("scrapyd.conf"), text).expect("write scrapyd.conf");
            let output = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.path().join("stock-output.log"))
                .expect("open the stock log");
            let mut command = Command::new(&scrapyd);
            command
                .arg("--pidfile=")
                .current_dir(dir.path())
                .env("HOME", dir.path())
                .stdin(Stdio::null())
                .stdout(output.try_clone().expect("clone the log handle"))
                .stderr(output);
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("SCRAPYD_") {
                    command.env_remove(name);
                }
            }
            let child = command.spawn().unwrap_or_else(|e| panic!("start {}: {e}", scrapyd.display()));
            let mut stock = Stock { addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)), child, dir };
            match stock.wait_until_ready() {
                Ok(()) => return stock,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("stock Scrapyd did not start:\n{log}"),
            }
        }
        panic!("stock Scrapyd found no free port in 5 attempts")
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its data directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Stops stock as its service manager would (SIGTERM) and waits for it to exit, so that
    /// everything it writes at shutdown is written; killed after 30 s.
    pub fn stop(mut self) {
        super::send_signal(self.child.id(), super::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().expect("poll the stock process").is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls `daemonstatus.json` until stock answers (200, or 401 with auth on), or returns its
    /// output if it exits or the deadline passes. Polling with a short pause is the only way to
    /// learn when another process is ready; nothing waits a fixed time.
    ///
    /// The answer must come from Twisted (`Server: TwistedWeb/...`): the port was free a moment
    /// ago, and if a daemon of a concurrent test took it meanwhile, stock will exit with
    /// "Address already in use" instead of that daemon being mistaken for stock.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the stock process") {
                return Err(format!("stock Scrapyd exited with {status}:\n{}", self.output()));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                let reply = self.get("/daemonstatus.json");
                let twisted = reply.header("server").is_some_and(|server| server.starts_with("TwistedWeb/"));
                if twisted && matches!(reply.status, 200 | 401) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("stock Scrapyd did not answer within {START_TIMEOUT:?}:\n{}", self.output()));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// What stock printed so far (its log), for failure messages.
    pub fn output(&self) -> String {
        fs::read_to_string(self.path().join("stock-output.log")).unwrap_or_default()
    }

    /// Sends a raw request and reads the reply.
    pub fn request(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        client::request(self.addr, method, target, headers, body)
    }

    pub fn get(&self, target: &str) -> Reply {
        self.request("GET", target, &[], b"")
    }

    /// A url-encoded `POST`, like [`super::Daemon::post_form`].
    pub fn post_form(&self, target: &str, fields: &[(&str, &[u8])]) -> Reply {
        let body = client::urlencode(fields);
        self.request("POST", target, &[("Content-Type", "application/x-www-form-urlencoded")], &body)
    }

    /// A multipart `POST`.
    pub fn post_multipart(&self, target: &str, parts: &[multipart::Part<'_>]) -> Reply {
        let (content_type, body) = multipart::encode(parts);
        self.request("POST", target, &[("Content-Type", &content_type)], &body)
    }

    /// Uploads an egg file as scrapyd-deploy does, like [`super::Daemon::add_version`].
    pub fn add_version(&self, project: &str, version: &str, egg: &Path) -> Reply {
        let bytes = fs::read(egg).expect("read egg");
        self.post_multipart(
            "/addversion.json",
            &[
                multipart::Part::field("project", project.as_bytes()),
                multipart::Part::field("version", version.as_bytes()),
                multipart::Part::file("egg", "project.egg", &bytes),
            ],
        )
    }
}

impl Drop for Stock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port that was free a moment ago: bind port 0 and release it.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}
