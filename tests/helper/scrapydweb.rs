//! ScrapydWeb 1.6.0, the most used Scrapyd UI, pointed at our daemon.
//!
//! It is installed by the tests into `<target>/scrapydweb-venv` (complete once `.ready` exists),
//! under a lock file shared by every test process, as [`super::stock`] does for stock Scrapyd.
//! Each [`ScrapydWeb`] runs as a child process in a temporary directory holding its settings file
//! and its data (`DATA_PATH`), on a free port, and is killed when dropped.

use super::client::{self, Reply};
use super::python::{lock, run};
use super::stock::free_port;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// ScrapydWeb and the LogParser version whose files it reads.
pub const REQUIREMENTS: [&str; 2] = ["scrapydweb==1.6.0", "logparser==0.8.4"];

/// The venv, made on first use with the `python3` on `PATH` (pip needs the package registry).
pub fn venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| provision(&super::python::target_dir().join("scrapydweb-venv"))).clone()
}

fn provision(venv: &Path) -> PathBuf {
    let _lock = lock(&venv.with_extension("lock"));
    if venv.join(".ready").exists() {
        return venv.to_path_buf();
    }
    let started = Instant::now();
    eprintln!("test helper: provisioning {} with {}", venv.display(), REQUIREMENTS.join(" "));
    match fs::remove_dir_all(venv) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("remove {}: {e}", venv.display()),
    }
    run("create the ScrapydWeb venv", Command::new("python3").arg("-m").arg("venv").arg(venv));
    let python = venv.join("bin").join("python");
    run("install ScrapydWeb", Command::new(&python).args(["-m", "pip", "install", "--quiet"]).args(REQUIREMENTS));
    let check = "from importlib.metadata import version as v\nprint(v('scrapydweb'), v('logparser'))";
    let versions = run("check the ScrapydWeb packages", Command::new(&python).arg("-c").arg(check));
    let versions = String::from_utf8_lossy(&versions.stdout).trim().to_owned();
    assert_eq!(versions, "1.6.0 0.8.4", "unexpected ScrapydWeb and LogParser versions");
    fs::write(venv.join(".ready"), format!("scrapydweb logparser: {versions}\n"))
        .unwrap_or_else(|e| panic!("write {}/.ready: {e}", venv.display()));
    eprintln!("test helper: ScrapydWeb venv ready in {:.1?}", started.elapsed());
    venv.to_path_buf()
}

/// A ScrapydWeb server managing one Scrapyd node.
pub struct ScrapydWeb {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl ScrapydWeb {
    /// Starts ScrapydWeb for the node at `scrapyd`. It runs without its own LogParser (the daemon
    /// writes LogParser's files), without a local logs directory (so it fetches logs and stats
    /// over HTTP, as for a remote node), and without the monitor.
    pub fn start(scrapyd: SocketAddr) -> ScrapydWeb {
        let program = venv().join("bin").join("scrapydweb");
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let settings = format!(
                "SCRAPYDWEB_BIND = '127.0.0.1'\nSCRAPYDWEB_PORT = {port}\nSCRAPYD_SERVERS = ['{scrapyd}']\n\
                 ENABLE_LOGPARSER = False\nENABLE_MONITOR = False\nENABLE_AUTH = False\n\
                 LOCAL_SCRAPYD_SERVER = ''\nLOCAL_SCRAPYD_LOGS_DIR = ''\n"
            );
            fs::write(dir.path().join("scrapydweb_settings_v11.py"), settings).expect("write the settings");
            let output = File::create(dir.path().join("scrapydweb.log")).expect("create the ScrapydWeb log");
            let child = Command::new(&program)
                .current_dir(dir.path())
                .env("DATA_PATH", dir.path().join("data"))
                .env("HOME", dir.path())
                .stdin(Stdio::null())
                .stdout(output.try_clone().expect("clone the log handle"))
                .stderr(output)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
            let mut web = ScrapydWeb { addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)), child, dir };
            match web.wait_until_ready() {
                Ok(()) => return web,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("ScrapydWeb did not start:\n{log}"),
            }
        }
        panic!("ScrapydWeb found no free port in 5 attempts")
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll ScrapydWeb") {
                return Err(format!("ScrapydWeb exited with {status}:\n{}", self.output()));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                let reply = self.get("/");
                if reply.header("server").is_some_and(|s| s.starts_with("Werkzeug/")) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("ScrapydWeb did not answer within a minute:\n{}", self.output()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What ScrapydWeb logged so far.
    pub fn output(&self) -> String {
        fs::read_to_string(self.dir.path().join("scrapydweb.log")).unwrap_or_default()
    }

    pub fn get(&self, target: &str) -> Reply {
        client::request(self.addr, "GET", target, &[], b"")
    }

    pub fn post(&self, target: &str) -> Reply {
        client::request(self.addr, "POST", target, &[], b"")
    }
}

impl Drop for ScrapydWeb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
