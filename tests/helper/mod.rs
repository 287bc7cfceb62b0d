//! Shared test tools: a real daemon on port 0, a raw HTTP client, eggs and Python.

pub mod client;
pub mod python;
pub mod scene;
pub mod scrapydweb;
pub mod site;
pub mod stock;
pub mod webdriver;

pub use client::{Reply, multipart};

use scrapyd_rs::config::{self, Sources};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A daemon running in-process on `127.0.0.1:0`, in a data directory of its own.
///
/// It runs on a thread with its own tokio runtime, so tests stay plain synchronous functions; it
/// stops when dropped.
pub struct Daemon {
    pub addr: SocketAddr,
    dir: DataDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The daemon's data directory: its own, removed with it, or one the test keeps.
enum DataDir {
    Owned(tempfile::TempDir),
    Shared(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            DataDir::Owned(dir) => dir.path(),
            DataDir::Shared(path) => path,
        }
    }
}

impl Daemon {
    /// A daemon configured by `scrapyd.conf` text (the `[scrapyd]` header is added when the text
    /// has no section), with Python pointing at the test interpreter.
    pub fn start(conf: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, conf)
    }

    /// Like [`Daemon::start`], in a directory prepared by the caller, removed with the daemon.
    pub fn start_in(dir: tempfile::TempDir, conf: &str) -> Daemon {
        let config = Self::config(dir.path(), conf);
        Self::start_with(DataDir::Owned(dir), config)
    }

    /// Like [`Daemon::start`], in a directory that outlives the daemon: for restarts, and for
    /// several daemons sharing one directory. Each daemon's own configuration files are named
    /// after its `conf`, so they do not overwrite each other's.
    pub fn start_reusing(dir: &Path, conf: &str) -> Daemon {
        let config = Self::config(dir, conf);
        Self::start_with(DataDir::Shared(dir.to_path_buf()), config)
    }

    fn config(dir: &Path, conf: &str) -> scrapyd_rs::Config {
        let conf = if conf.trim_start().starts_with('[') { conf.to_string() } else { format!("[scrapyd]\n{conf}") };
        let base = format!("[scrapyd]\nnode_name = testnode\npython = {}\n", python::python().display());
        let tag = format!("{:016x}", fnv(conf.as_bytes()));
        let base_path = dir.join("test-base.conf");
        let conf_path = dir.join(format!("test-{tag}.conf"));
        std::fs::write(&base_path, base).expect("write config");
        std::fs::write(&conf_path, conf).expect("write config");
        let sources = Sources {
            etc_dir: None,
            cwd: dir.to_path_buf(),
            home: None,
            extra_files: vec![base_path, conf_path],
            env: vec![],
        };
        config::load(&sources).expect("test config loads")
    }

    /// A daemon running an already-built configuration.
    fn start_with(dir: DataDir, config: scrapyd_rs::Config) -> Daemon {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = scrapyd_rs::runtime::build().expect("the daemon's runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
                addr_tx.send(listener.local_addr().expect("local addr")).expect("report address");
                let listeners = scrapyd_rs::Listeners { tcp: Some(listener), unix: None };
                let shutdown = async move {
                    let _ = stop_rx.await;
                };
                scrapyd_rs::run(config, listeners, shutdown).await.expect("daemon runs");
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(30)).expect("daemon started");
        let daemon = Daemon { addr, dir, stop: Some(stop_tx), thread: Some(thread) };
        // The listener is bound before the daemon has set up its directories; the first answer
        // means it has.
        daemon.get("/daemonstatus.json");
        daemon
    }

    /// The data directory (the daemon's working directory).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Sends a raw request and reads the reply.
    pub fn request(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        client::request(self.addr, method, target, headers, body)
    }

    pub fn get(&self, target: &str) -> Reply {
        self.request("GET", target, &[], b"")
    }

    /// A url-encoded `POST`, as scrapyd-client and ScrapydWeb send.
    pub fn post_form(&self, target: &str, fields: &[(&str, &[u8])]) -> Reply {
        let body = client::urlencode(fields);
        self.request("POST", target, &[("Content-Type", "application/x-www-form-urlencoded")], &body)
    }

    /// A multipart `POST`, as scrapyd-deploy sends (a part with a filename for the egg).
    pub fn post_multipart(&self, target: &str, parts: &[multipart::Part<'_>]) -> Reply {
        let (content_type, body) = multipart::encode(parts);
        self.request("POST", target, &[("Content-Type", &content_type)], &body)
    }

    /// Waits until the log of `job` (`logs/<project>/<spider>/<job>.log`) contains `needle`;
    /// whether it did within `timeout`.
    pub fn wait_for_log(&self, project: &str, spider: &str, job: &str, needle: &str, timeout: Duration) -> bool {
        let log = self.path().join(format!("logs/{project}/{spider}/{job}.log"));
        wait_until(timeout, || std::fs::read_to_string(&log).is_ok_and(|text| text.contains(needle)))
    }

    /// Uploads an egg file as scrapyd-deploy does and returns the reply.
    pub fn add_version(&self, project: &str, version: &str, egg: &Path) -> Reply {
        let bytes = std::fs::read(egg).expect("read egg");
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

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Every file under `dir`, relative to it, sorted: a snapshot to compare before and after.
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

/// Sends `signal` to `pid`, asserting that it was delivered.
pub fn send_signal(pid: u32, signal: i32) {
    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    let pid = i32::try_from(pid).expect("pid fits in pid_t");
    // SAFETY: kill(2) only reads its two integer arguments.
    let rc = unsafe { kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
}

/// Copies a directory tree (a fixture project) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read a fixture directory") {
        let entry = entry.expect("read a fixture directory");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("stat a fixture file").is_dir() {
            std::fs::create_dir_all(&target).expect("create a directory");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a fixture file");
        }
    }
}
