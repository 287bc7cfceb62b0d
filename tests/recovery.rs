//! What a restarted daemon finds in the spool, in the cases a review showed could go wrong:
//! priorities JSON cannot write, job ids that look like temporary files, cancel requests left by
//! an earlier job with the same id, a claim whose owner died before it had a pid, and pending files
//! a power cut lost after their jobs were acknowledged.

use crate::helper::{Daemon, python, wait_until};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

fn schedule(daemon: &Daemon, spider: &str, jobid: &str, extra: &[(&str, &[u8])]) {
    let mut fields: Vec<(&str, &[u8])> =
        vec![("project", b"demo"), ("spider", spider.as_bytes()), ("jobid", jobid.as_bytes())];
    fields.extend_from_slice(extra);
    assert_eq!(daemon.post_form("/schedule.json", &fields).ok()["jobid"], jobid);
}

fn pending_ids(daemon: &Daemon) -> Vec<String> {
    let pending = daemon.get("/listjobs.json").ok()["pending"].clone();
    pending.as_array().unwrap().iter().map(|job| job["id"].as_str().unwrap().to_string()).collect()
}

fn finished_entry(daemon: &Daemon, id: &str) -> Option<Value> {
    let finished = daemon.get("/listjobs.json").ok()["finished"].clone();
    finished.as_array().unwrap().iter().find(|job| job["id"] == id).cloned()
}

/// Stops every crawl still running under `dir` (they outlive in-process daemons by design).
fn cancel_all(daemon: &Daemon) {
    let running = daemon.get("/listjobs.json").ok()["running"].clone();
    for job in running.as_array().unwrap() {
        let id = job["id"].as_str().unwrap().as_bytes().to_vec();
        daemon.post_form("/cancel.json", &[("project", b"demo"), ("job", &id), ("signal", b"KILL")]);
    }
}

#[test]
fn infinite_and_nan_priorities_and_temp_like_ids_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    {
        let daemon = Daemon::start_reusing(data.path(), "max_proc = 1\n");
        daemon.add_version("demo", "r1", &python::egg("demo")).ok();
        schedule(&daemon, "sleeper", "busy", &[("seconds", b"60")]);
        // `busy` takes the one slot before the others come (or `jinf` would get it).
        assert!(wait_until(Duration::from_secs(30), || pending_ids(&daemon).is_empty()), "busy started");
        schedule(&daemon, "args", "jinf", &[("priority", b"inf")]);
        schedule(&daemon, "args", "jnan", &[("priority", b"nan")]);
        schedule(&daemon, "args", "jneg", &[("priority", b"-inf")]);
        schedule(&daemon, "args", ".tmp-evil", &[]);
        assert!(wait_until(Duration::from_secs(30), || pending_ids(&daemon).len() == 4));
    }
    let daemon = Daemon::start_reusing(data.path(), "max_proc = 1\n");
    // Highest first, NaN last; nothing lost to a record that cannot be read back.
    assert_eq!(pending_ids(&daemon), ["jinf", ".tmp-evil", "jneg", "jnan"]);
    cancel_all(&daemon);
    let all: BTreeSet<&str> = ["busy", "jinf", ".tmp-evil", "jneg", "jnan"].into();
    assert!(
        wait_until(Duration::from_secs(90), || all.iter().all(|id| finished_entry(&daemon, id).is_some())),
        "every job runs and is recorded, the temp-like id included"
    );
    assert_eq!(finished_entry(&daemon, ".tmp-evil").unwrap()["outcome"], "finished");
}

#[test]
fn a_cancel_left_by_an_earlier_job_does_not_touch_a_new_one_with_its_id() {
    let daemon = Daemon::start("max_proc = 1\n");
    daemon.add_version("demo", "r1", &python::egg("demo")).ok();
    // A cancel request file an earlier run of `daily` left behind.
    let running = daemon.path().join("spool/demo/running");
    std::fs::create_dir_all(&running).unwrap();
    std::fs::write(running.join("daily.cancel"), b"2\n").unwrap();
    schedule(&daemon, "args", "daily", &[]);
    assert!(wait_until(Duration::from_secs(60), || finished_entry(&daemon, "daily").is_some()));
    assert_eq!(finished_entry(&daemon, "daily").unwrap()["outcome"], "finished");
    assert!(!running.join("daily.cancel").exists());
}

#[test]
fn a_claim_whose_owner_died_before_the_spawn_is_recorded_as_lost() {
    let data = tempfile::tempdir().unwrap();
    {
        let daemon = Daemon::start_reusing(data.path(), "");
        daemon.add_version("demo", "r1", &python::egg("demo")).ok();
    }
    // What a claim leaves when the daemon dies before the spawn: the pending record moved into
    // running/ as it was, no pid, and no lock held.
    let running = data.path().join("spool/demo/running");
    std::fs::create_dir_all(&running).unwrap();
    let record = r#"{"id": "halfway", "project": "demo", "spider": "args", "version": null, "settings": {},
        "args": {}, "priority": 0.0, "enqueued_ns": 1, "node": "gone"}"#;
    std::fs::write(running.join("halfway.json"), record).unwrap();
    let daemon = Daemon::start_reusing(data.path(), "");
    assert!(wait_until(Duration::from_secs(30), || finished_entry(&daemon, "halfway").is_some()));
    let entry = finished_entry(&daemon, "halfway").unwrap();
    assert_eq!(entry["outcome"], "lost", "{entry}");
    assert!(!entry["start_time"].as_str().unwrap().is_empty());
    assert_eq!(daemon.get("/status.json?job=halfway").ok()["currstate"], "finished");
    let status = daemon.get("/daemonstatus.json").ok();
    assert_eq!((&status["pending"], &status["running"]), (&Value::from(0), &Value::from(0)));
}

#[test]
fn jobs_of_a_deleted_project_wait_until_it_is_deployed_again() {
    let daemon = Daemon::start("max_proc = 1\npoll_interval = 0.2\n");
    daemon.add_version("demo", "r1", &python::egg("demo")).ok();
    schedule(&daemon, "sleeper", "first", &[("seconds", b"1")]);
    // `first` is crawling before the project goes (else it could fail to start for want of an egg,
    // and `waiting` take its slot before the deletion is seen).
    assert!(wait_until(Duration::from_secs(30), || pending_ids(&daemon).is_empty()), "first started");
    schedule(&daemon, "args", "waiting", &[]);
    daemon.post_form("/delproject.json", &[("project", b"demo")]).ok();
    assert!(wait_until(Duration::from_secs(30), || finished_entry(&daemon, "first").is_some()));
    // Several rescans later the job is still pending rather than failed: there is no egg to run.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(pending_ids(&daemon), ["waiting"]);
    assert!(finished_entry(&daemon, "waiting").is_none());
    daemon.add_version("demo", "r2", &python::egg("demo")).ok();
    assert!(wait_until(Duration::from_secs(60), || finished_entry(&daemon, "waiting").is_some()));
    assert_eq!(finished_entry(&daemon, "waiting").unwrap()["outcome"], "finished");
}

/// What a power cut can do to the spool: the pending files of acknowledged jobs were never
/// flushed (the journal was), so they may be gone or empty, and the lock file's marks are from
/// the boot before. The next daemon puts the jobs back from the journal, in their order, and
/// runs them; a job cancelled before the cut (its removal settled first) stays cancelled.
#[test]
fn jobs_acknowledged_before_a_power_cut_come_back_from_the_journal() {
    let data = tempfile::tempdir().unwrap();
    let pending = data.path().join("spool/demo/pending");
    {
        let daemon = Daemon::start_reusing(data.path(), "max_proc = 1\n");
        daemon.add_version("demo", "r1", &python::egg("demo")).ok();
        schedule(&daemon, "sleeper", "busy", &[("seconds", b"60")]);
        assert!(wait_until(Duration::from_secs(30), || pending_ids(&daemon).is_empty()), "busy started");
        schedule(&daemon, "args", "cancelled", &[]);
        let answer = daemon.post_form("/cancel.json", &[("project", b"demo"), ("job", b"cancelled")]).ok();
        assert_eq!(answer["prevstate"], "pending");
        for (id, priority) in [("lost", "1"), ("torn", "2"), ("kept", "0")] {
            schedule(&daemon, "args", id, &[("priority", priority.as_bytes())]);
        }
        // The daemon stops here with three jobs pending, and `busy` still crawling.
    }
    let file_of = |id: &str| {
        let names = std::fs::read_dir(&pending).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap());
        let suffix = format!("-{id}.json");
        pending.join(names.into_iter().find(|name| name.ends_with(&suffix)).unwrap_or_else(|| panic!("{id}")))
    };
    std::fs::remove_file(file_of("lost")).unwrap();
    std::fs::write(file_of("torn"), b"").unwrap();
    // Bytes 8..24 of the lock file are the boot id its journal marks were written under.
    let lock = std::fs::OpenOptions::new().write(true).open(data.path().join("spool/demo/.lock")).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&lock, &[0xee; 16], 8).unwrap();

    let daemon = Daemon::start_reusing(data.path(), "max_proc = 1\n");
    assert_eq!(pending_ids(&daemon), ["torn", "lost", "kept"], "back, in priority order; cancelled stays gone");
    assert_eq!(std::fs::read_dir(&pending).unwrap().count(), 3, "nothing else was put back");
    cancel_all(&daemon);
    assert!(
        wait_until(Duration::from_secs(90), || ["torn", "lost", "kept"]
            .iter()
            .all(|id| finished_entry(&daemon, id).is_some_and(|entry| entry["outcome"] == "finished"))),
        "each runs"
    );
    assert!(finished_entry(&daemon, "cancelled").is_none());
}
