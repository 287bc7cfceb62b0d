//! Several daemons serving one data directory: one consistent view, each job run once, cancel
//! from anywhere.

use crate::helper::{Daemon, python, wait_until};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array().expect("a list").iter().map(|job| job["id"].as_str().expect("an id").to_string()).collect()
}

/// Whether `daemon` lists, in `state`, job `id` with every `(key, value)` of `fields`.
fn lists(daemon: &Daemon, state: &str, id: &str, fields: &[(&str, &str)]) -> bool {
    let jobs = daemon.get("/listjobs.json").ok()[state].clone();
    jobs.as_array().is_some_and(|list| {
        list.iter().any(|job| job["id"] == id && fields.iter().all(|(key, value)| job[*key] == *value))
    })
}

/// Whether a process is blocked waiting for a lock on `path`: the kernel lists such a request in
/// `/proc/locks` as a `->` line naming the file as `MAJOR:MINOR:INODE` (device numbers in hex),
/// after the lock that holds it up.
fn someone_waits_for(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).expect("the lock file");
    let file = format!("{:02x}:{:02x}:{}", libc::major(meta.dev()), libc::minor(meta.dev()), meta.ino());
    let locks = std::fs::read_to_string("/proc/locks").expect("/proc/locks");
    locks.lines().any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        fields.next() == Some("->") && fields.nth(4) == Some(file.as_str())
    })
}

fn schedule(daemon: &Daemon, spider: &str, jobid: &str, extra: &[(&str, &[u8])]) {
    let mut fields: Vec<(&str, &[u8])> =
        vec![("project", b"demo"), ("spider", spider.as_bytes()), ("jobid", jobid.as_bytes())];
    fields.extend_from_slice(extra);
    let reply = daemon.post_form("/schedule.json", &fields);
    assert_eq!(reply.ok()["jobid"], jobid);
}

#[test]
fn two_instances_run_each_job_once_and_agree() {
    // Keep every log, so each crawl's can be checked.
    let first = Daemon::start("node_name = first\nmax_proc = 2\njobs_to_keep = 100\n");
    let second = Daemon::start_reusing(first.path(), "node_name = second\nmax_proc = 2\njobs_to_keep = 100\n");
    first.add_version("demo", "r1", &python::egg("demo")).ok();
    let jobs: Vec<String> = (0..12).map(|i| format!("shared-{i}")).collect();
    for (i, job) in jobs.iter().enumerate() {
        let daemon = if i % 2 == 0 { &first } else { &second };
        schedule(daemon, "args", job, &[]);
    }
    let all: BTreeSet<String> = jobs.iter().cloned().collect();
    let done = |daemon: &Daemon| ids(&daemon.get("/listjobs.json").ok()["finished"]) == all;
    assert!(wait_until(Duration::from_secs(120), || done(&first) && done(&second)), "every job finishes");

    // Both instances list the same history, each job once, run by one of the two.
    let first_view = first.get("/listjobs.json?project=demo").ok();
    let second_view = second.get("/listjobs.json?project=demo").ok();
    assert_eq!(first_view["finished"], second_view["finished"]);
    let finished = first_view["finished"].as_array().unwrap();
    assert_eq!(finished.len(), jobs.len(), "each job is recorded once");
    let nodes: BTreeSet<&str> = finished.iter().map(|job| job["node_name"].as_str().unwrap()).collect();
    assert!(nodes.iter().all(|node| ["first", "second"].contains(node)), "{nodes:?}");
    for job in finished {
        assert_eq!(job["outcome"], "finished", "{job}");
    }
    // Each crawl ran once: one log file per job, each with one Scrapy start.
    for job in &jobs {
        let log = std::fs::read_to_string(first.path().join(format!("logs/demo/args/{job}.log"))).unwrap();
        assert_eq!(log.matches("Spider opened").count(), 1, "{job} ran once");
    }
    for daemon in [&first, &second] {
        let status = daemon.get("/daemonstatus.json").ok();
        assert_eq!(
            (&status["pending"], &status["running"], &status["finished"]),
            (&Value::from(0), &Value::from(0), &Value::from(12))
        );
        assert_eq!(daemon.get("/status.json?job=shared-3").ok()["currstate"], "finished");
    }
}

#[test]
fn a_job_is_cancelled_through_an_instance_that_does_not_run_it() {
    // The second instance has no slots, so every crawl runs on the first.
    let first = Daemon::start("node_name = first\nmax_proc = 1\n");
    let second = Daemon::start_reusing(first.path(), "node_name = second\nmax_proc = 0\nmax_proc_per_cpu = 0\n");
    first.add_version("demo", "r1", &python::egg("demo")).ok();
    schedule(&second, "sleeper", "far", &[("seconds", b"60")]);
    let running_on_first = || lists(&second, "running", "far", &[("node_name", "first")]);
    assert!(wait_until(Duration::from_secs(30), running_on_first), "the second instance sees the crawl on the first");
    // A SIGINT that comes while Scrapy is still starting can be lost (it stops a crawl that has
    // not begun); cancel once the spider says its signal handlers are up, as a person would.
    let sleeping = first.wait_for_log("demo", "sleeper", "far", "sleeper: sleeping for", Duration::from_secs(30));
    assert!(sleeping, "the crawl starts sleeping");

    let reply = second.post_form("/cancel.json", &[("project", b"demo"), ("job", b"far")]);
    assert_eq!(reply.ok()["prevstate"], "running");
    let finished = || first.get("/status.json?job=far").ok()["currstate"] == "finished";
    assert!(wait_until(Duration::from_secs(30), finished), "the crawl ends");
    let entry = second.get("/listjobs.json").ok()["finished"][0].clone();
    assert_eq!((&entry["id"], &entry["outcome"]), (&Value::from("far"), &Value::from("cancelled")), "{entry}");
}

#[test]
fn with_its_slot_busy_an_instance_lists_a_job_scheduled_elsewhere_at_once_and_runs_it_when_the_slot_frees() {
    // No rescan comes within the test: only the catch-up of answers and of a freed slot can
    // explain what the first instance does.
    let first = Daemon::start("node_name = first\nmax_proc = 1\npoll_interval = 120\n");
    let second = Daemon::start_reusing(
        first.path(),
        "node_name = second\nmax_proc = 0\nmax_proc_per_cpu = 0\npoll_interval = 120\n",
    );
    first.add_version("demo", "r1", &python::egg("demo")).ok();
    schedule(&first, "sleeper", "busy", &[("seconds", b"60")]);
    let sleeping = first.wait_for_log("demo", "sleeper", "busy", "sleeper: sleeping for", Duration::from_secs(30));
    assert!(sleeping, "the first instance's only slot is taken");

    schedule(&second, "args", "queued", &[]);
    assert!(lists(&first, "pending", "queued", &[]), "the first instance lists the job as soon as it is acknowledged");
    assert_eq!(first.get("/status.json?job=queued").ok()["currstate"], "pending");
    assert_eq!(first.get("/daemonstatus.json").ok()["pending"], 1);

    let reply = first.post_form("/cancel.json", &[("project", b"demo"), ("job", b"busy")]);
    assert_eq!(reply.ok()["prevstate"], "running");
    let ran_on_first = || lists(&first, "finished", "queued", &[("node_name", "first"), ("outcome", "finished")]);
    assert!(
        wait_until(Duration::from_secs(60), ran_on_first),
        "the job runs on the first instance once its slot frees, without waiting for a rescan"
    );
    assert!(lists(&second, "finished", "queued", &[("node_name", "first")]), "the second instance agrees");
}

#[test]
fn without_the_spool_watch_the_rescan_carries_jobs_and_cancels_between_instances() {
    // No inotify events at all: only the rescan every poll_interval tells one instance what the
    // other did (as on a filesystem that delivers no events).
    let quiet = "watch_spool = off\npoll_interval = 0.5\n";
    let first = Daemon::start(&format!("node_name = first\nmax_proc = 1\n{quiet}"));
    let second = Daemon::start_reusing(
        first.path(),
        &format!("node_name = second\nmax_proc = 0\nmax_proc_per_cpu = 0\n{quiet}"),
    );
    first.add_version("demo", "r1", &python::egg("demo")).ok();

    schedule(&second, "args", "quick", &[]);
    let finished_on_first = |daemon: &Daemon| lists(daemon, "finished", "quick", &[("node_name", "first")]);
    assert!(
        wait_until(Duration::from_secs(60), || finished_on_first(&first) && finished_on_first(&second)),
        "a job scheduled through the instance without slots runs on the other, and both list it finished"
    );

    schedule(&second, "sleeper", "long", &[("seconds", b"60")]);
    let running_on_first = || lists(&second, "running", "long", &[("node_name", "first")]);
    assert!(wait_until(Duration::from_secs(30), running_on_first), "the second instance sees the crawl running");
    let sleeping = first.wait_for_log("demo", "sleeper", "long", "sleeper: sleeping for", Duration::from_secs(30));
    assert!(sleeping, "the crawl starts sleeping");
    let reply = second.post_form("/cancel.json", &[("project", b"demo"), ("job", b"long")]);
    assert_eq!(reply.ok()["prevstate"], "running");
    let cancelled = |daemon: &Daemon| lists(daemon, "finished", "long", &[("outcome", "cancelled")]);
    assert!(
        wait_until(Duration::from_secs(30), || cancelled(&first) && cancelled(&second)),
        "the cancel reaches the crawl through the rescan"
    );
    for daemon in [&first, &second] {
        let status = daemon.get("/daemonstatus.json").ok();
        assert_eq!((&status["pending"], &status["running"]), (&Value::from(0), &Value::from(0)));
    }
}

/// A `schedule.json` runs on the daemon's one async worker; when it has to wait for its project's
/// lock (another instance holding it, for a sync of the filesystem say) it hands the worker off,
/// so every other request is still answered at once.
#[test]
fn a_schedule_waiting_for_a_lock_held_elsewhere_holds_up_no_other_request() {
    let daemon = Daemon::start("max_proc = 1\n");
    daemon.add_version("demo", "r1", &python::egg("demo")).ok();
    // The first schedule caches the spider list, so the second takes the path of every later one.
    // Its crawl is let finish first: the supervisor takes the lock to record it, and would then
    // be a second thread waiting for it.
    schedule(&daemon, "args", "before-the-lock", &[]);
    assert!(wait_until(Duration::from_secs(60), || lists(&daemon, "finished", "before-the-lock", &[])));
    let lock_file = daemon.path().join("spool/demo/.lock");
    let held = std::fs::File::options().read(true).write(true).open(&lock_file).unwrap();
    held.lock().expect("the project's lock, taken as another instance would");
    assert!(!someone_waits_for(&lock_file), "no one waits for the lock before the schedule is sent");

    let (addr, body) = (
        daemon.addr,
        crate::helper::client::urlencode(&[("project", b"demo"), ("spider", b"args"), ("jobid", b"behind-the-lock")]),
    );
    let waiting = std::thread::spawn(move || {
        let headers = [("Content-Type", "application/x-www-form-urlencoded")];
        crate::helper::client::request(addr, "POST", "/schedule.json", &headers, &body)
    });
    assert!(
        wait_until(Duration::from_secs(10), || someone_waits_for(&lock_file)),
        "the schedule never came to wait for the project's lock"
    );
    assert!(!waiting.is_finished(), "the schedule waits for the lock");

    // Asked from a thread, so that a daemon stuck behind the lock fails the test instead of
    // hanging it.
    let (answered, answer) = std::sync::mpsc::channel();
    let asked = Instant::now();
    std::thread::spawn(move || {
        let _ = answered.send(crate::helper::client::request(addr, "GET", "/daemonstatus.json", &[], b""));
    });
    let status = answer.recv_timeout(Duration::from_secs(5));
    let took = asked.elapsed();
    let still_waiting = !waiting.is_finished();
    held.unlock().unwrap();
    let status = status.expect("daemonstatus.json answers while a schedule waits for a lock");
    assert_eq!(status.ok()["status"], "ok");
    assert!(took < Duration::from_secs(1), "daemonstatus.json took {took:?}");
    assert!(still_waiting, "the schedule was still waiting when daemonstatus.json answered");
    assert_eq!(
        waiting.join().unwrap().ok()["jobid"],
        "behind-the-lock",
        "the schedule goes through once the lock is free"
    );
    assert!(
        lists(&daemon, "pending", "behind-the-lock", &[])
            || lists(&daemon, "running", "behind-the-lock", &[])
            || lists(&daemon, "finished", "behind-the-lock", &[])
    );
}
