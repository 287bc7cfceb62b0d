//! Logs over HTTP after a real crawl, read the way clients read them: Gerapy's suffix range,
//! ScrapydWeb's directory listing, and nothing outside the logs directory.

use crate::helper::{Daemon, python};
use std::time::{Duration, Instant};

/// Runs one quick crawl and returns its job id once it has finished.
fn crawl(daemon: &Daemon) -> String {
    daemon.add_version("demo", "r1", &python::egg("demo")).ok();
    let reply = daemon.post_form("/schedule.json", &[("project", b"demo"), ("spider", b"args"), ("jobid", b"web1")]);
    let job = reply.ok()["jobid"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while daemon.get(&format!("/status.json?job={job}")).ok()["currstate"] != "finished" {
        assert!(Instant::now() < deadline, "the crawl finishes");
        std::thread::sleep(Duration::from_millis(50));
    }
    job
}

#[test]
fn logs_are_served_with_ranges_and_listed_as_twisted_lists_them() {
    let daemon = Daemon::start("");
    let job = crawl(&daemon);
    let path = format!("/logs/demo/args/{job}.log");
    let on_disk = std::fs::read(daemon.path().join(&path[1..])).unwrap();

    let whole = daemon.get(&path);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, on_disk);
    assert_eq!(whole.header("content-type"), Some("text/plain"));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert!(whole.header("last-modified").is_some_and(|v| v.ends_with(" GMT")));

    // Gerapy's tail: the last 1,000 bytes (or the whole file if it is shorter).
    let tail = daemon.request("GET", &path, &[("Range", "bytes=-1000")], b"");
    assert_eq!(tail.status, 206);
    let from = on_disk.len().saturating_sub(1000);
    assert_eq!(tail.body, &on_disk[from..]);
    assert_eq!(
        tail.header("content-range"),
        Some(format!("bytes {from}-{}/{}", on_disk.len() - 1, on_disk.len()).as_str())
    );
    let middle = daemon.request("GET", &path, &[("Range", "bytes=10-19")], b"");
    assert_eq!((middle.status, middle.body.as_slice()), (206, &on_disk[10..20]));
    let past = daemon.request("GET", &path, &[("Range", "bytes=99999999-")], b"");
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some(format!("bytes */{}", on_disk.len()).as_str()));

    // ScrapydWeb reads listings with the exact DirectoryLister row layout.
    assert_eq!(daemon.get("/logs").status, 302);
    let listing = daemon.get("/logs/demo/args/").text();
    assert!(listing.contains("<h1>Directory listing for /logs/demo/args/</h1>"), "{listing}");
    // The log's row is odd or even, depending on whether its LogParser file (`<job>.json`,
    // listed first) is there yet.
    let cell = format!("\n    <td><a href=\"{job}.log\">{job}.log</a></td>\n    <td>");
    let at = listing.find(&cell).expect("the log's row");
    assert!(
        listing[..at].ends_with("<tr class=\"odd\">") || listing[..at].ends_with("<tr class=\"even\">"),
        "{listing}"
    );
    let row = &listing[at + cell.len()..];
    let (size, rest) = row.split_once("</td>\n    <td>").unwrap();
    assert!(size.ends_with(['B', 'K', 'M']) && size[..size.len() - 1].parse::<u64>().is_ok(), "{size}");
    let (modified, rest) = rest.split_once("</td>\n    <td>").unwrap();
    assert_eq!(modified.len(), "2026-11-24 23:47".len(), "{modified}");
    assert!(rest.starts_with("[text/plain]</td>\n    <td></td>\n</tr>\n"), "{rest}");
    let root = daemon.get("/logs/").text();
    assert!(root.contains("<td><a href=\"demo/\">demo/</a></td>\n    <td></td>"), "{root}");
    assert!(root.contains("<td>[Directory]</td>"));
}

#[test]
fn nothing_outside_the_logs_directory_is_served() {
    let daemon = Daemon::start("");
    crawl(&daemon);
    std::fs::write(daemon.path().join("secret.txt"), b"secret").unwrap();
    std::os::unix::fs::symlink(daemon.path().join("secret.txt"), daemon.path().join("logs/demo/args/link.log"))
        .unwrap();
    for path in [
        "/logs/../secret.txt",
        "/logs/%2e%2e/secret.txt",
        "/logs/demo/%2e%2e/%2e%2e/secret.txt",
        "/logs/demo%2f..%2f..%2fsecret.txt",
        "/logs/demo/args/link.log",
        "/logs//secret.txt",
        "/items/",
    ] {
        let reply = daemon.get(path);
        assert_eq!(reply.status, 404, "{path}");
        assert!(!reply.text().contains("secret"), "{path}");
    }
}
