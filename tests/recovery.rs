//! What a restarted daemon finds in the spool, in the cases a review showed could go wrong:
//! priorities JSON cannot write, job ids that look like temporary files, cancel requests left by
//! an earlier job with the same id, and a claim whose owner died before it had a pid.

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
