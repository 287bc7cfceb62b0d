//! The `scrapyd-rs` binary itself: its flags, configuration errors, the Unix socket, the
//! environment overrides and a clean stop on SIGTERM.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_scrapyd-rs");

/// The binary run in `dir` with no system-wide configuration leaking in from `$HOME`.
pub(crate) fn command(dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command.current_dir(dir).env("HOME", dir).env_remove("RUST_LOG");
    for (name, _) in std::env::vars() {
        if name.starts_with("SCRAPYD_") {
            command.env_remove(name);
        }
    }
    command
}

/// Waits for the child to exit, killing it after `timeout`.
pub(crate) fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One GET over a Unix socket, retried until the daemon listens or `timeout` passes.
fn get_unix(socket: &Path, path: &str, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(mut stream) = UnixStream::connect(socket) {
            let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).ok()?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply).ok()?;
            return Some(reply);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn version_flag_prints_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path()).arg("--version").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("scrapyd-rs ") && text.contains("Scrapyd 1.6.0"), "{text}");
}

#[test]
fn a_bad_config_stops_the_start_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[scrapyd]\nhttp_port = 68o0\n", "line 2", "http_port"),
        ("[scrapyd]\nbind_address = 127.0.0.1\nthis line has no delimiter\n", "line 3", ""),
        ("[scrapyd]\n\nusername = a:b\npassword = x\n", "line 3", "illegal character ':'"),
    ];
    for (text, line, what) in cases {
        std::fs::write(dir.path().join("scrapyd.conf"), text).unwrap();
        let output = command(dir.path()).stdin(Stdio::null()).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("scrapyd.conf") && stderr.contains(line) && stderr.contains(what),
            "{text} => {stderr}"
        );
    }
    let output = command(dir.path()).args(["--config", "missing.conf"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.conf"));
}

#[test]
fn serves_on_a_unix_socket_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("scrapyd.sock");
    std::fs::write(dir.path().join("scrapyd.conf"), "[scrapyd]\nhttp_port = 0\nnode_name = socketnode\n").unwrap();
    let mut child = command(dir.path())
        .env("SCRAPYD_UNIX_SOCKET_PATH", &socket)
        .args(["-n", "--pidfile", "daemon.pid"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reply = get_unix(&socket, "/daemonstatus.json", Duration::from_secs(20)).expect("daemon answers on the socket");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("\"node_name\": \"socketnode\"}\n"), "{reply}");
    let pid = std::fs::read_to_string(dir.path().join("daemon.pid")).unwrap();
    assert_eq!(pid.trim(), child.id().to_string());

    crate::helper::send_signal(child.id(), crate::helper::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("stops after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket is removed at shutdown");
    assert!(!dir.path().join("daemon.pid").exists(), "the pid file is removed at shutdown");
}

#[test]
fn environment_overrides_beat_the_config_files() {
    let dir = tempfile::tempdir().unwrap();
    let free_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(dir.path().join("scrapyd.conf"), "[scrapyd]\nhttp_port = 1\nnode_name = envnode\n").unwrap();
    let mut child = command(dir.path())
        .env("SCRAPYD_HTTP_PORT", free_port.to_string())
        .env("SCRAPYD_USERNAME", "")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", free_port)) {
            stream.write_all(b"GET /daemonstatus.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut reply = String::new();
            stream.read_to_string(&mut reply).unwrap();
            break reply;
        }
        assert!(Instant::now() < deadline, "the daemon listens on the port from SCRAPYD_HTTP_PORT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(reply.contains("\"node_name\": \"envnode\""), "{reply}");
    let _ = child.kill();
    let _ = child.wait();
}

/// Writes `scrapyd.conf` in `dir` for a daemon on a free port with the test Python and the
/// `[scrapyd]` options in `extra`; returns the address it will serve on.
pub(crate) fn configure(dir: &Path, extra: &str) -> std::net::SocketAddr {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let python = crate::helper::python::python();
    let conf = format!("[scrapyd]\nhttp_port = {port}\npython = {}\n{extra}", python.display());
    std::fs::write(dir.join("scrapyd.conf"), conf).unwrap();
    ([127, 0, 0, 1], port).into()
}

/// Starts the binary in `dir` and waits until it listens on `addr`.
fn start_listening(dir: &Path, addr: std::net::SocketAddr) -> Child {
    let child = command(dir).stderr(Stdio::null()).spawn().unwrap();
    let listening = || std::net::TcpStream::connect(addr).is_ok();
    assert!(crate::helper::wait_until(Duration::from_secs(20), listening), "the daemon listens");
    child
}

/// A url-encoded request to the daemon at `addr`, answered as JSON.
fn form(addr: std::net::SocketAddr, method: &str, target: &str, fields: &[(&str, &[u8])]) -> serde_json::Value {
    let body = crate::helper::client::urlencode(fields);
    let content_type = [("Content-Type", "application/x-www-form-urlencoded")];
    crate::helper::client::request(addr, method, target, &content_type, &body).json()
}

/// CPU time (user + system, in clock ticks) the process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..].split(' ').collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[test]
fn an_idle_daemon_uses_no_cpu() {
    // A daemon that has deployed and run a job, with the watcher on, must go quiet: a feedback
    // loop between the spool watcher and the rescans once kept one at 70% of a core.
    let dir = tempfile::tempdir().unwrap();
    let addr = configure(dir.path(), "poll_interval = 0.2\n");
    let mut child = start_listening(dir.path(), addr);
    let egg = std::fs::read(crate::helper::python::egg("demo")).unwrap();
    assert_eq!(
        form(addr, "POST", "/addversion.json", &[("project", b"demo"), ("version", b"1"), ("egg", &egg)])["status"],
        "ok"
    );
    form(addr, "POST", "/schedule.json", &[("project", b"demo"), ("spider", b"args"), ("jobid", b"idle")]);
    let finished = || {
        let reply = crate::helper::client::request(addr, "GET", "/status.json?job=idle", &[], b"");
        reply.json()["currstate"] == "finished"
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !finished() {
        assert!(Instant::now() < deadline, "the job finishes");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_ticks(child.id()) - before;
    let _ = child.kill();
    let _ = child.wait();
    // 15 rescans at poll_interval 0.2 s cost well under a tick each; a spinning thread costs ~300.
    assert!(used <= 10, "an idle daemon used {used} clock ticks of CPU in 3 s");
}

#[test]
fn stop_crawls_on_shutdown_stops_them_and_records_them_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let addr = configure(dir.path(), "stop_crawls_on_shutdown = on\n");
    let start = || start_listening(dir.path(), addr);
    let request = |method: &str, target: &str, fields: &[(&str, &[u8])]| form(addr, method, target, fields);
    let mut daemon = start();
    let egg = std::fs::read(crate::helper::python::egg("demo")).unwrap();
    assert_eq!(
        request("POST", "/addversion.json", &[("project", b"demo"), ("version", b"1"), ("egg", &egg)])["status"],
        "ok"
    );
    request(
        "POST",
        "/schedule.json",
        &[("project", b"demo"), ("spider", b"sleeper"), ("jobid", b"long"), ("seconds", b"120")],
    );
    let log = dir.path().join("logs/demo/sleeper/long.log");
    let sleeping = || std::fs::read_to_string(&log).is_ok_and(|text| text.contains("sleeping for"));
    assert!(crate::helper::wait_until(Duration::from_secs(60), sleeping), "the crawl runs");
    let pid = request("GET", "/listjobs.json", &[])["running"][0]["pid"].as_u64().unwrap() as u32;

    crate::helper::send_signal(daemon.id(), crate::helper::SIGTERM);
    let status = wait_exit(&mut daemon, Duration::from_secs(60)).expect("the daemon stops");
    assert!(status.success());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the crawl stopped with the daemon");

    let mut daemon = start();
    let finished = request("GET", "/listjobs.json", &[])["finished"][0].clone();
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!((&finished["id"], &finished["outcome"]), (&"long".into(), &"cancelled".into()), "{finished}");
}
