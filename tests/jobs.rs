//! Jobs end to end, with real Scrapy crawls: `schedule.json`, `cancel.json`, `status.json`,
//! `listjobs.json` and `daemonstatus.json` against a daemon that runs the `demo` fixture's spiders.
//!
//! Every wait polls (every 20 ms, or as fast as the daemon answers where a test watches for a
//! short-lived state) up to a deadline; nothing synchronises on a fixed sleep. The only bounded
//! wait that is expected to time out checks that something does *not* happen (a crawl that
//! ignores its first cancel keeps running for a while).
//!
//! Crawls outlive the daemon by design, so each test that starts long crawls holds a
//! [`KillCrawlsOnPanic`] guard: if an assertion fails, the crawls it left are killed.

use crate::helper::site::{PAGES, Site};
use crate::helper::{Daemon, Reply, python, send_signal, tree};
use chrono::NaiveDateTime;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a crawl may take to reach a state before a test gives up.
const DEADLINE: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------ helpers

/// Polls `condition` every 20 ms until it holds or `timeout` passes; whether it held.
fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    wait_for(timeout, || condition().then_some(())).is_some()
}

/// Polls `probe` every 20 ms until it yields a value or `timeout` passes.
fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Deploys the `demo` egg as `project`, version `version`.
fn deploy(daemon: &Daemon, project: &str, version: &str) {
    daemon.add_version(project, version, &python::egg("demo")).ok();
}

/// A daemon configured by `conf`, with the `demo` egg deployed as project `demo`, version `r1`.
fn demo_daemon(conf: &str) -> Daemon {
    let daemon = Daemon::start(conf);
    deploy(&daemon, "demo", "r1");
    daemon
}

fn try_schedule(daemon: &Daemon, fields: &[(&str, &str)]) -> Reply {
    let fields: Vec<(&str, &[u8])> = fields.iter().map(|(name, value)| (*name, value.as_bytes())).collect();
    daemon.post_form("/schedule.json", &fields)
}

/// Schedules a job and returns its id.
fn schedule(daemon: &Daemon, fields: &[(&str, &str)]) -> String {
    let answer = try_schedule(daemon, fields).ok();
    answer["jobid"].as_str().expect("jobid is a string").to_string()
}

/// Schedules `spider` of project `demo` with spider arguments or other fields.
fn schedule_demo(daemon: &Daemon, spider: &str, extra: &[(&str, &str)]) -> String {
    let mut fields = vec![("project", "demo"), ("spider", spider)];
    fields.extend_from_slice(extra);
    schedule(daemon, &fields)
}

fn cancel(daemon: &Daemon, project: &str, job: &str, signal: Option<&str>) -> Reply {
    let mut fields: Vec<(&str, &[u8])> = vec![("project", project.as_bytes()), ("job", job.as_bytes())];
    if let Some(signal) = signal {
        fields.push(("signal", signal.as_bytes()));
    }
    daemon.post_form("/cancel.json", &fields)
}

/// `cancel.json`'s `prevstate`, asserting an ok answer with stock's key order.
fn prevstate(daemon: &Daemon, project: &str, job: &str, signal: Option<&str>) -> Value {
    let answer = cancel(daemon, project, job, signal).ok();
    assert_eq!(keys(&answer), ["prevstate", "status", "node_name"]);
    answer["prevstate"].clone()
}

fn listjobs(daemon: &Daemon) -> Value {
    daemon.get("/listjobs.json").ok()
}

fn daemonstatus(daemon: &Daemon) -> Value {
    daemon.get("/daemonstatus.json").ok()
}

/// `status.json`'s `currstate` for a job of project `demo`.
fn currstate(daemon: &Daemon, job: &str) -> Value {
    daemon.get(&format!("/status.json?job={job}&project=demo")).ok()["currstate"].clone()
}

/// The first entry with id `id` in `list[state]` (`pending`, `running` or `finished`).
fn entry(list: &Value, state: &str, id: &str) -> Option<Value> {
    list[state].as_array().expect("a list of jobs").iter().find(|job| job["id"] == id).cloned()
}

/// The ids of `list[state]`, in order.
fn ids(list: &Value, state: &str) -> Vec<String> {
    list[state].as_array().expect("a list of jobs").iter().map(|job| job["id"].as_str().unwrap().to_string()).collect()
}

fn keys(object: &Value) -> Vec<&str> {
    object.as_object().expect("a JSON object").keys().map(String::as_str).collect()
}

/// Asserts equal JSON *including key order* (serde_json's map equality ignores order).
fn assert_json_in_order(actual: &Value, expected: &Value) {
    assert_eq!(actual.to_string(), expected.to_string());
}

/// Waits until job `id` is listed as finished and returns its entry.
fn wait_finished(daemon: &Daemon, id: &str) -> Value {
    wait_for(DEADLINE, || entry(&listjobs(daemon), "finished", id))
        .unwrap_or_else(|| panic!("job {id} did not finish in {DEADLINE:?}: {}", listjobs(daemon)))
}

/// Waits until job `id` is listed as running and returns its entry.
fn wait_running(daemon: &Daemon, id: &str) -> Value {
    wait_for(DEADLINE, || entry(&listjobs(daemon), "running", id))
        .unwrap_or_else(|| panic!("job {id} did not start in {DEADLINE:?}: {}", listjobs(daemon)))
}

fn log_path(daemon: &Daemon, spider: &str, job: &str) -> PathBuf {
    daemon.path().join(format!("logs/demo/{spider}/{job}.log"))
}

fn read_log(daemon: &Daemon, spider: &str, job: &str) -> String {
    std::fs::read_to_string(log_path(daemon, spider, job)).unwrap_or_default()
}

/// Waits until the job's log contains `needle`.
fn wait_log(daemon: &Daemon, spider: &str, job: &str, needle: &str) {
    let found = wait_until(DEADLINE, || read_log(daemon, spider, job).contains(needle));
    assert!(found, "the log of {job} never said {needle:?}:\n{}", read_log(daemon, spider, job));
}

/// Schedules `sleeper` or `stubborn` of project `demo` and waits until it is sleeping, i.e.
/// Scrapy's signal handlers are installed and a cancel takes the documented path.
fn start_sleeper(daemon: &Daemon, spider: &str, extra: &[(&str, &str)]) -> String {
    let mut fields = vec![("seconds", "30")];
    fields.extend_from_slice(extra);
    let job = schedule_demo(daemon, spider, &fields);
    wait_log(daemon, spider, &job, &format!("{spider}: sleeping for"));
    job
}

/// The items of a job's feed, one JSON value per line.
fn read_items(daemon: &Daemon, spider: &str, job: &str) -> Vec<Value> {
    let path = daemon.path().join(format!("items/demo/{spider}/{job}.jl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines().map(|line| serde_json::from_str(line).expect("an item is JSON")).collect()
}

/// Whether `text` has the shape `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$`.
fn is_timestamp(text: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-dd dd:dd:dd.dddddd";
    text.len() == SHAPE.len()
        && text.bytes().zip(SHAPE).all(|(c, &s)| if s == b'd' { c.is_ascii_digit() } else { c == s })
}

fn parse_time(value: &Value) -> NaiveDateTime {
    let text = value.as_str().unwrap_or_else(|| panic!("a time string: {value}"));
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").unwrap_or_else(|e| panic!("parse {text:?}: {e}"))
}

/// `later - earlier` in seconds (negative when `later` is earlier).
fn seconds_between(earlier: NaiveDateTime, later: NaiveDateTime) -> f64 {
    (later - earlier).num_microseconds().expect("a small duration") as f64 / 1e6
}

/// Every file under `dir` with its bytes, except lock files (whose content is a change counter):
/// what a refused request must leave as it was.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .filter(|path| path.extension().is_none_or(|ext| ext != "lock"))
        .map(|path| {
            let bytes = std::fs::read(dir.join(&path)).unwrap_or_default();
            (path, bytes)
        })
        .collect()
}

/// The names of the files in a directory, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").file_name().into_string().expect("a UTF-8 name"))
        .collect();
    names.sort();
    names
}

/// Kills, when the test panics, every process whose working directory is the daemon's data
/// directory (the crawls run there): crawls outlive the daemon by design, and a failed test must
/// not leave 30-second sleepers behind. Declare it after the daemon, so it runs while the
/// directory still exists.
struct KillCrawlsOnPanic(PathBuf);

impl KillCrawlsOnPanic {
    fn new(daemon: &Daemon) -> Self {
        KillCrawlsOnPanic(daemon.path().canonicalize().unwrap_or_else(|_| daemon.path().to_path_buf()))
    }
}

impl Drop for KillCrawlsOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Ok(processes) = std::fs::read_dir("/proc") else { return };
        for process in processes.flatten() {
            let Some(pid) = process.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
            if std::fs::read_link(process.path().join("cwd")).is_ok_and(|cwd| cwd == self.0) {
                // SAFETY: kill(2) only reads its two integer arguments.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

// ------------------------------------------------------------------ a crawl, start to end

/// A real crawl of the local site: the default job id is a UUID1 hex, the job goes through
/// pending/running to finished, and leaves a Scrapy log, one item per page and a finished entry
/// with stock's keys in stock's order followed by our extras.
#[test]
fn a_crawl_runs_and_leaves_its_log_items_and_finished_entry() {
    let site = Site::start();
    let daemon = demo_daemon("items_dir = items\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);

    let answer = try_schedule(&daemon, &[("project", "demo"), ("spider", "follow"), ("url", &site.url("/"))]).ok();
    assert_eq!(keys(&answer), ["jobid", "status", "node_name"]);
    assert_eq!(answer["node_name"], "testnode");
    let job = answer["jobid"].as_str().unwrap().to_string();
    assert!(
        job.len() == 32 && job.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
        "a job id is 32 lowercase hex digits: {job}"
    );

    // Follow the job through its states.
    let mut states: Vec<&str> = Vec::new();
    let mut running = None;
    let finished = wait_until(DEADLINE, || {
        let list = listjobs(&daemon);
        let state = if entry(&list, "pending", &job).is_some() {
            "pending"
        } else if let Some(found) = entry(&list, "running", &job) {
            running.get_or_insert(found);
            "running"
        } else if entry(&list, "finished", &job).is_some() {
            "finished"
        } else {
            "missing"
        };
        if states.last() != Some(&state) {
            states.push(state);
        }
        state == "finished"
    });
    assert!(finished, "the crawl did not finish: {}", listjobs(&daemon));
    assert!(
        states == ["pending", "running", "finished"] || states == ["running", "finished"],
        "states seen: {states:?}"
    );
    let running = running.expect("seen running");
    assert_eq!(&keys(&running)[..7], ["id", "project", "spider", "pid", "start_time", "log_url", "items_url"]);
    assert!(running["pid"].as_u64().is_some_and(|pid| pid > 1), "{running}");
    assert!(is_timestamp(running["start_time"].as_str().unwrap()), "{running}");
    assert_eq!(daemon.get(&format!("/status.json?job={job}")).ok()["currstate"], "finished");

    // The log is Scrapy's, and says the spider closed normally.
    let log = read_log(&daemon, "follow", &job);
    assert!(log.contains("Spider closed (finished)"), "log:\n{log}");

    // One item per page of the site, each page fetched once.
    let items = read_items(&daemon, "follow", &job);
    let got: BTreeSet<(String, String)> = items
        .iter()
        .map(|item| (item["url"].as_str().unwrap().to_string(), item["title"].as_str().unwrap().to_string()))
        .collect();
    let expected: BTreeSet<(String, String)> =
        PAGES.iter().map(|page| (site.url(page.path), page.title.to_string())).collect();
    assert_eq!(items.len(), PAGES.len(), "{items:?}");
    assert_eq!(got, expected);
    let mut fetched = site.requests();
    fetched.sort();
    let mut pages: Vec<&str> = PAGES.iter().map(|page| page.path).collect();
    pages.sort();
    assert_eq!(fetched, pages);

    // The finished entry: stock's keys, in stock's order, then ours.
    let done = entry(&listjobs(&daemon), "finished", &job).unwrap();
    assert_eq!(
        keys(&done),
        [
            "id",
            "project",
            "spider",
            "start_time",
            "end_time",
            "log_url",
            "items_url",
            "outcome",
            "exit_code",
            "signal",
            "node_name",
            "items_scraped",
            "pages_crawled",
            "errors",
            "finish_reason"
        ]
    );
    assert_eq!(done["project"], "demo");
    assert_eq!(done["spider"], "follow");
    assert_eq!(done["log_url"], format!("/logs/demo/follow/{job}.log"));
    assert_eq!(done["items_url"], format!("/items/demo/follow/{job}.jl"));
    assert_eq!(done["outcome"], "finished");
    assert_eq!(done["exit_code"], 0);
    assert_eq!(done["signal"], Value::Null);
    assert_eq!(done["node_name"], "testnode");
    // What the crawl did, from Scrapy's stats: every page fetched once and scraped once.
    assert_eq!(done["items_scraped"], PAGES.len());
    assert_eq!(done["pages_crawled"], PAGES.len());
    assert_eq!(done["errors"], 0);
    assert_eq!(done["finish_reason"], "finished");
    for time in ["start_time", "end_time"] {
        assert!(is_timestamp(done[time].as_str().unwrap()), "{time}: {done}");
    }
    assert_eq!(done["start_time"], running["start_time"], "the start time does not change");
    assert!(parse_time(&done["start_time"]) <= parse_time(&done["end_time"]), "{done}");
    assert_eq!(daemonstatus(&daemon)["finished"], 1);
}

/// Settings, spider arguments (first value only) and `_version` reach the spider in stock's
/// order and environment; a pending job is listed with stock's keys and values.
#[test]
fn arguments_settings_and_version_reach_the_spider_and_pending_jobs_list_them_as_stock() {
    let daemon = demo_daemon("max_proc = 1\nitems_dir = items\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    let sleeper = start_sleeper(&daemon, "sleeper", &[]);

    let job = schedule_demo(
        &daemon,
        "args",
        &[
            ("setting", "DOWNLOAD_DELAY=0"),
            ("_version", "r1"),
            ("setting", "FOO=a=b"),
            ("arg1", "val1"),
            ("arg1", "ignored"),
            ("echo_settings", "FOO,DOWNLOAD_DELAY"),
        ],
    );
    let list = listjobs(&daemon);
    assert_eq!(ids(&list, "pending"), std::slice::from_ref(&job));
    assert_json_in_order(
        &list["pending"][0],
        &json!({
            "id": job,
            "project": "demo",
            "spider": "args",
            "version": "r1",
            "settings": {"DOWNLOAD_DELAY": "0", "FOO": "a=b"},
            "args": {"arg1": "val1", "echo_settings": "FOO,DOWNLOAD_DELAY"},
        }),
    );
    assert_eq!(currstate(&daemon, &job), "pending");

    assert_eq!(prevstate(&daemon, "demo", &sleeper, None), "running");
    let finished = wait_finished(&daemon, &job);
    assert_eq!(finished["outcome"], "finished", "{finished}");

    let items = read_items(&daemon, "args", &job);
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_json_in_order(
        &item["kwargs"],
        &json!({"_job": job, "arg1": "val1", "echo_settings": "FOO,DOWNLOAD_DELAY", "_version": "r1"}),
    );
    assert_eq!(item["settings"], json!({"FOO": "a=b", "DOWNLOAD_DELAY": "0"}));
    assert_eq!(item["env"]["SCRAPY_PROJECT"], "demo");
    assert_eq!(item["env"]["SCRAPYD_EGG_VERSION"], "r1");
}

// ------------------------------------------------------------------ dispatch

/// With one slot, pending jobs start by priority (highest first), then by age, across projects;
/// `listjobs` lists them in that order.
#[test]
fn pending_jobs_start_by_priority_then_age_across_projects() {
    let daemon = demo_daemon("max_proc = 1\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    deploy(&daemon, "other", "r1");
    let sleeper = start_sleeper(&daemon, "sleeper", &[]);

    for (id, project, priority) in [
        ("p0", "demo", "0"),
        ("p5-old", "other", "5"),
        ("pm1", "demo", "-1"),
        ("p5-new", "demo", "5"),
        ("p2", "other", "2"),
    ] {
        schedule(&daemon, &[("project", project), ("spider", "args"), ("jobid", id), ("priority", priority)]);
    }
    let expected = ["p5-old", "p5-new", "p2", "p0", "pm1"];
    assert_eq!(ids(&listjobs(&daemon), "pending"), expected);
    assert_eq!(ids(&daemon.get("/listjobs.json?project=other").ok(), "pending"), ["p5-old", "p2"]);
    assert_eq!(ids(&daemon.get("/listjobs.json?project=demo").ok(), "pending"), ["p5-new", "p0", "pm1"]);

    assert_eq!(prevstate(&daemon, "demo", &sleeper, None), "running");
    let all_done = wait_until(DEADLINE, || {
        let list = listjobs(&daemon);
        expected.iter().all(|id| entry(&list, "finished", id).is_some())
    });
    assert!(all_done, "{}", listjobs(&daemon));
    let list = listjobs(&daemon);
    let mut started: Vec<(NaiveDateTime, String)> = expected
        .iter()
        .map(|id| {
            let entry = entry(&list, "finished", id).unwrap();
            assert_eq!(entry["outcome"], "finished", "{entry}");
            (parse_time(&entry["start_time"]), id.to_string())
        })
        .collect();
    started.sort();
    let order: Vec<&str> = started.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(order, expected, "start order");
}

/// Clients only ever see whole state changes. While three jobs go through one slot:
///
/// - from the `schedule.json` answer until it is finished, a job is always pending, running or
///   finished, in `status.json` and in `listjobs` (stock pops a job and spawns its process in the
///   same reactor turn, so no request sees it in neither state);
/// - every running entry has an integer `pid` (stock lists a job as running only once its process
///   exists);
/// - no more jobs are listed as running than `max_proc` allows, and with one slot no job's
///   `start_time` is before the previous job's `end_time`.
///
/// `status.json` and `listjobs` are polled as fast as they answer; the windows such bugs open are
/// milliseconds long, so a daemon that has one fails this test most of the time, not always.
#[test]
fn clients_only_see_whole_state_changes() {
    let daemon = demo_daemon("max_proc = 1\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    let jobs: Vec<String> = (0..3).map(|_| schedule_demo(&daemon, "args", &[])).collect();
    // Per job: the states `status.json` said, and the states `listjobs` showed, as sequences.
    let mut said: Vec<Vec<String>> = vec![Vec::new(); jobs.len()];
    let mut listed: Vec<Vec<String>> = vec![Vec::new(); jobs.len()];
    let mut without_pid = Vec::new();
    let mut over_max_proc = Vec::new();
    let push = |states: &mut Vec<String>, state: &str| {
        if states.last().is_none_or(|last| last != state) {
            states.push(state.to_string());
        }
    };
    let done = |states: &Vec<String>| states.last().is_some_and(|state| state == "finished");
    let end = Instant::now() + DEADLINE;
    while !(said.iter().all(done) && listed.iter().all(done)) {
        assert!(Instant::now() < end, "the jobs did not finish: {said:?} {listed:?}");
        let list = daemon.get("/listjobs.json?project=demo").ok();
        for (job, states) in jobs.iter().zip(&mut listed) {
            let state = ["pending", "running", "finished"]
                .into_iter()
                .find(|state| entry(&list, state, job).is_some())
                .unwrap_or("missing");
            push(states, state);
        }
        let running = list["running"].as_array().unwrap();
        for entry in running {
            if !entry["pid"].is_u64() {
                without_pid.push(entry.clone());
            }
        }
        if running.len() > 1 {
            over_max_proc.push(list["running"].clone());
        }
        // One slot: only the running job and the next one change state, so ask about those two.
        let active = jobs.iter().zip(&mut said).filter(|(_, states)| !done(states));
        for (job, states) in active.take(2) {
            push(states, currstate(&daemon, job).as_str().unwrap_or("null"));
        }
    }
    // In order, none other, ending finished (a short state may go unseen between two polls).
    let expected = |states: &Vec<String>| {
        let mut order = ["pending", "running", "finished"].iter();
        done(states) && states.iter().all(|state| order.any(|known| known == state))
    };
    // Every kind of violation is reported at once.
    let mut problems = Vec::new();
    for ((job, said), listed) in jobs.iter().zip(&said).zip(&listed) {
        if !expected(said) {
            problems.push(format!("status.json said job {job} was {said:?}"));
        }
        if !expected(listed) {
            problems.push(format!("listjobs showed job {job} as {listed:?}"));
        }
    }
    if let Some(first) = without_pid.first() {
        problems.push(format!("{} running entries without a pid, e.g. {first}", without_pid.len()));
    }
    if let Some(first) = over_max_proc.first() {
        problems.push(format!(
            "{} answers listed several running jobs with max_proc = 1, e.g. {first}",
            over_max_proc.len()
        ));
    }
    let list = listjobs(&daemon);
    let times: Vec<(NaiveDateTime, NaiveDateTime)> = jobs
        .iter()
        .map(|job| entry(&list, "finished", job).expect("finished"))
        .map(|done| (parse_time(&done["start_time"]), parse_time(&done["end_time"])))
        .collect();
    for ((job, before), after) in jobs.iter().zip(&times).zip(&times[1..]) {
        if before.1 > after.0 {
            problems.push(format!("one slot, yet the job after {job} started before {job} ended: {list}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A job starts as soon as a slot is free: right after it is scheduled, and right after the job
/// before it ends (not at the next `poll_interval` tick, 5 s by default).
#[test]
fn jobs_start_without_waiting_for_a_poll() {
    let daemon = demo_daemon("max_proc = 1\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    let first = schedule_demo(&daemon, "args", &[]);
    let answered = chrono::Local::now().naive_local();
    let second = schedule_demo(&daemon, "args", &[]);
    let first = wait_finished(&daemon, &first);
    let second = wait_finished(&daemon, &second);

    let schedule_to_start = seconds_between(answered, parse_time(&first["start_time"]));
    let end_to_start = seconds_between(parse_time(&first["end_time"]), parse_time(&second["start_time"]));
    eprintln!("measured: schedule answer -> start {schedule_to_start:.6} s; end -> next start {end_to_start:.6} s");
    assert!(schedule_to_start < 1.0, "a free slot took {schedule_to_start} s to start the job");
    assert!((0.0..1.0).contains(&end_to_start), "the next job started {end_to_start} s after the slot freed");
}

// ------------------------------------------------------------------ cancel

/// A cancelled pending job leaves no trace: it is gone from every list, never runs, and never
/// appears in `finished`. Also: a graceful cancel of a running crawl, and cancel's null/error
/// answers.
#[test]
fn cancelling_a_pending_job_removes_it_without_trace() {
    let daemon = demo_daemon("max_proc = 1\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    let sleeper = start_sleeper(&daemon, "sleeper", &[]);
    let pending = schedule_demo(&daemon, "args", &[("jobid", "pend")]);
    assert_eq!(currstate(&daemon, &pending), "pending");

    assert_eq!(prevstate(&daemon, "demo", &pending, None), "pending");
    assert_eq!(ids(&listjobs(&daemon), "pending"), Vec::<String>::new());
    assert_eq!(currstate(&daemon, &pending), Value::Null);
    assert_eq!(daemonstatus(&daemon)["pending"], 0);
    assert_eq!(prevstate(&daemon, "demo", &pending, None), Value::Null, "a second cancel finds nothing");
    assert_eq!(prevstate(&daemon, "demo", "no-such-job", None), Value::Null);
    assert_eq!(cancel(&daemon, "nope", &pending, None).error(), "project 'nope' not found");

    // The running sleeper stops gracefully on the default SIGINT.
    assert_eq!(prevstate(&daemon, "demo", &sleeper, None), "running");
    let ended = wait_finished(&daemon, &sleeper);
    assert_eq!(
        (&ended["outcome"], &ended["exit_code"], &ended["signal"]),
        (&json!("cancelled"), &json!(0), &Value::Null)
    );
    assert!(read_log(&daemon, "sleeper", &sleeper).contains("Spider closed (shutdown)"));
    assert_eq!(prevstate(&daemon, "demo", &sleeper, None), Value::Null, "a finished job is not cancelled");

    // The freed slot goes to the next job scheduled, never to the cancelled one.
    let after = schedule_demo(&daemon, "args", &[("jobid", "after")]);
    assert_eq!(wait_finished(&daemon, &after)["outcome"], "finished");
    let list = listjobs(&daemon);
    assert_eq!(entry(&list, "finished", &pending), None, "{list}");
    assert_eq!(currstate(&daemon, &pending), Value::Null);
    assert!(!log_path(&daemon, "args", &pending).exists(), "the cancelled job never ran");
}

/// `signal` is converted as stock converts it: the default INT, `TERM` and `15` all stop a
/// sleeper gracefully (exit 0, outcome `cancelled`); `BOGUS` is stock's TypeError and sends
/// nothing.
#[test]
fn cancelling_running_crawls_with_int_term_and_15_shuts_them_down_gracefully() {
    let daemon = demo_daemon("max_proc = 3\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    let signals = [None, Some("TERM"), Some("15")];
    let jobs: Vec<String> = signals.iter().map(|_| schedule_demo(&daemon, "sleeper", &[("seconds", "30")])).collect();
    for job in &jobs {
        wait_log(&daemon, "sleeper", job, "sleeper: sleeping for");
    }

    assert_eq!(
        cancel(&daemon, "demo", &jobs[0], Some("BOGUS")).error(),
        "TypeError: 'str' object cannot be interpreted as an integer"
    );
    assert_eq!(currstate(&daemon, &jobs[0]), "running");

    for (job, signal) in jobs.iter().zip(signals) {
        assert_eq!(prevstate(&daemon, "demo", job, signal), "running", "signal {signal:?}");
    }
    for (job, signal) in jobs.iter().zip(signals) {
        let ended = wait_finished(&daemon, job);
        assert_eq!(
            (&ended["outcome"], &ended["exit_code"], &ended["signal"]),
            (&json!("cancelled"), &json!(0), &Value::Null),
            "signal {signal:?}: {ended}"
        );
        let log = read_log(&daemon, "sleeper", job);
        assert!(log.contains("Spider closed (shutdown)"), "signal {signal:?}:\n{log}");
    }
    assert!(!read_log(&daemon, "sleeper", &jobs[0]).contains("BOGUS"));
}

/// A crawl that ignores SIGINT keeps running after the first cancel; the second cancel kills
/// its process group at once (outcome `cancelled`, signal 9).
#[test]
fn a_crawl_that_ignores_cancel_is_killed_by_a_second_cancel() {
    let daemon = demo_daemon("");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    let job = start_sleeper(&daemon, "stubborn", &[]);

    assert_eq!(prevstate(&daemon, "demo", &job, None), "running");
    let ended_early = wait_until(Duration::from_millis(1500), || currstate(&daemon, &job) != "running");
    assert!(!ended_early, "the stubborn crawl ignores SIGINT: {}", listjobs(&daemon));

    assert_eq!(prevstate(&daemon, "demo", &job, None), "running");
    let asked = Instant::now();
    let ended = wait_finished(&daemon, &job);
    let took = asked.elapsed();
    eprintln!("measured: second cancel -> finished {took:.3?}");
    assert!(took < Duration::from_secs(5), "the kill took {took:?}");
    assert_eq!(
        (&ended["outcome"], &ended["exit_code"], &ended["signal"]),
        (&json!("cancelled"), &Value::Null, &json!(9)),
        "{ended}"
    );
}

/// With `cancel_grace = 1`, one cancel of a crawl that ignores it is enough: the daemon kills
/// the process group about a second later.
#[test]
fn cancel_grace_escalates_to_sigkill_by_itself() {
    let daemon = demo_daemon("cancel_grace = 1\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    let job = start_sleeper(&daemon, "stubborn", &[]);

    assert_eq!(prevstate(&daemon, "demo", &job, None), "running");
    let asked = Instant::now();
    let ended = wait_finished(&daemon, &job);
    let took = asked.elapsed();
    eprintln!("measured: cancel with cancel_grace = 1 -> finished {took:.3?}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "escalation took {took:?}");
    assert_eq!(
        (&ended["outcome"], &ended["exit_code"], &ended["signal"]),
        (&json!("cancelled"), &Value::Null, &json!(9)),
        "{ended}"
    );
}

// ------------------------------------------------------------------ failures

/// A spider that raises in `__init__` makes Scrapy exit 1: outcome `failed`, exit code 1, and
/// its traceback in the job's log.
#[test]
fn a_spider_that_exits_non_zero_is_failed() {
    let daemon = demo_daemon("");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    let job = schedule_demo(&daemon, "failing", &[]);
    let ended = wait_finished(&daemon, &job);
    assert_eq!(
        (&ended["outcome"], &ended["exit_code"], &ended["signal"]),
        (&json!("failed"), &json!(1), &Value::Null),
        "{ended}"
    );
    assert_eq!(currstate(&daemon, &job), "finished");
    assert!(read_log(&daemon, "failing", &job).contains("the failing spider fails on purpose"));
}

/// A crawl whose interpreter cannot be started fails (`failed_to_start`, with a reason) and
/// frees its slot: later jobs are still processed and nothing stays running.
#[test]
fn a_spawn_failure_fails_the_job_and_frees_the_slot() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        // Deploy with a working Python: the spider list is cached on disk for the next daemon.
        let daemon = Daemon::start_reusing(dir.path(), "");
        deploy(&daemon, "demo", "r1");
    }
    let daemon = Daemon::start_reusing(dir.path(), "python = /nonexistent/python3\nmax_proc = 1\n");
    let first = schedule_demo(&daemon, "args", &[]);
    let second = schedule_demo(&daemon, "args", &[]);
    for job in [&first, &second] {
        let ended = wait_finished(&daemon, job);
        assert_eq!(
            (&ended["outcome"], &ended["exit_code"], &ended["signal"]),
            (&json!("failed_to_start"), &Value::Null, &Value::Null),
            "{ended}"
        );
        assert_eq!(currstate(&daemon, job), "finished");
    }
    let status = daemonstatus(&daemon);
    assert_eq!((&status["pending"], &status["running"]), (&json!(0), &json!(0)), "{status}");

    // The slot is still usable: a third job is taken up (and fails the same way).
    let third = schedule_demo(&daemon, "args", &[]);
    assert_eq!(wait_finished(&daemon, &third)["outcome"], "failed_to_start");
    let status = daemonstatus(&daemon);
    assert_eq!((&status["pending"], &status["running"], &status["finished"]), (&json!(0), &json!(0), &json!(3)));

    // The reason is kept in the finished record (listjobs shows no `reason`).
    // Where the spool keeps its history is its own business: look for the record in any
    // JSON-lines file under it.
    let record: Value = tree(&dir.path().join("spool"))
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "jl"))
        .filter_map(|path| std::fs::read_to_string(dir.path().join("spool").join(path)).ok())
        .flat_map(|text| text.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()).collect::<Vec<_>>())
        .find(|record| record["id"] == first.as_str())
        .expect("the first job's finished record");
    assert!(record["reason"].as_str().is_some_and(|reason| reason.contains("/nonexistent/python3")), "{record}");
}

// ------------------------------------------------------------------ restart

/// Stopping the daemon loses nothing: pending jobs stay pending in order, a running crawl keeps
/// running and is re-adopted (same pid) and cancellable by the next daemon, finished history
/// stays, and the pending jobs then run.
#[test]
fn a_restarted_daemon_keeps_pending_jobs_and_re_adopts_running_crawls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = "max_proc = 1\n";
    let daemon = Daemon::start_reusing(dir.path(), conf);
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    deploy(&daemon, "demo", "r1");
    let before = schedule_demo(&daemon, "args", &[("jobid", "before")]);
    wait_finished(&daemon, &before);
    let sleeper = start_sleeper(&daemon, "sleeper", &[("jobid", "sleepy")]);
    let pid = wait_running(&daemon, &sleeper)["pid"].as_u64().expect("a pid");
    schedule_demo(&daemon, "args", &[("jobid", "after-1")]);
    schedule_demo(&daemon, "args", &[("jobid", "after-2")]);
    assert_eq!(ids(&listjobs(&daemon), "pending"), ["after-1", "after-2"]);
    drop(daemon);

    send_signal(u32::try_from(pid).unwrap(), 0); // the crawl outlives the daemon
    let daemon = Daemon::start_reusing(dir.path(), conf);
    let list = listjobs(&daemon);
    assert_eq!(ids(&list, "pending"), ["after-1", "after-2"], "{list}");
    assert_eq!(ids(&list, "running"), ["sleepy"], "{list}");
    assert_eq!(list["running"][0]["pid"], pid, "{list}");
    assert_eq!(ids(&list, "finished"), ["before"], "{list}");
    assert_eq!(currstate(&daemon, "sleepy"), "running");
    let status = daemonstatus(&daemon);
    assert_eq!((&status["pending"], &status["running"], &status["finished"]), (&json!(2), &json!(1), &json!(1)));

    assert_eq!(prevstate(&daemon, "demo", &sleeper, None), "running");
    let ended = wait_finished(&daemon, &sleeper);
    assert_eq!((&ended["outcome"], &ended["exit_code"]), (&json!("cancelled"), &json!(0)), "{ended}");
    let first = wait_finished(&daemon, "after-1");
    let second = wait_finished(&daemon, "after-2");
    assert_eq!((&first["outcome"], &second["outcome"]), (&json!("finished"), &json!("finished")));
    assert!(parse_time(&first["start_time"]) < parse_time(&second["start_time"]));
    assert!(parse_time(&ended["end_time"]) <= parse_time(&first["start_time"]), "one slot: {ended} {first}");
}

// ------------------------------------------------------------------ bad input

/// The fields of a `schedule.json` of `demo`'s `args` spider, plus `extra`.
fn args_with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![("project", "demo"), ("spider", "args")];
    fields.extend_from_slice(extra);
    fields
}

/// Every invalid `schedule.json` is an error envelope with stock's text (or ours for job ids
/// stock would lose) and writes nothing; a job id already pending or running is refused until
/// it ends; afterwards jobs still run.
#[test]
fn bad_schedule_requests_are_refused_and_change_nothing() {
    let daemon = demo_daemon("max_proc = 1\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    let spool = daemon.path().join("spool");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (args_with(&[("priority", "x")]), "priority is invalid: could not convert string to float: b'x'"),
        (
            args_with(&[("setting", "NOEQUALS")]),
            "ValueError: dictionary update sequence element #0 has length 1; 2 is required",
        ),
        (vec![("project", "demo"), ("spider", "nope")], "spider 'nope' not found"),
        (vec![("project", "nope"), ("spider", "args")], "project 'nope' not found"),
        (args_with(&[("_version", "nope")]), "version 'nope' not found"),
        (
            args_with(&[("settings", "x")]),
            "TypeError: scrapyd.scheduler.SpiderScheduler.schedule() got multiple values for keyword argument 'settings'",
        ),
        (
            args_with(&[("_job", "x")]),
            "TypeError: scrapyd.scheduler.SpiderScheduler.schedule() got multiple values for keyword argument '_job'",
        ),
        (args_with(&[("name", "x")]), "TypeError: SqliteSpiderQueue.add() got multiple values for argument 'name'"),
    ];
    let (names, files) = (tree(&spool), snapshot(&spool));
    for (fields, message) in &cases {
        assert_eq!(try_schedule(&daemon, fields).error(), *message, "{fields:?}");
    }
    for jobid in ["a/b", "..x", "a\\b"] {
        let message = try_schedule(&daemon, &args_with(&[("jobid", jobid)])).error();
        assert!(message.starts_with("jobid is invalid:"), "{jobid}: {message}");
    }
    assert_eq!(tree(&spool), names, "refused requests create no file");
    assert_eq!(snapshot(&spool), files, "refused requests change no file");
    assert_eq!(daemonstatus(&daemon)["pending"], 0);

    // Ids already pending or running are refused; nothing is written.
    let running = start_sleeper(&daemon, "sleeper", &[("jobid", "dup-run")]);
    schedule_demo(&daemon, "args", &[("jobid", "dup")]);
    let (names, files) = (tree(&spool), snapshot(&spool));
    let message = try_schedule(&daemon, &args_with(&[("jobid", "dup")])).error();
    assert!(message.starts_with("jobid is invalid:") && message.contains("already pending"), "{message}");
    let message = try_schedule(&daemon, &args_with(&[("jobid", "dup-run")])).error();
    assert!(message.starts_with("jobid is invalid:") && message.contains("already running"), "{message}");
    assert_eq!(tree(&spool), names, "refused duplicates create no file");
    assert_eq!(snapshot(&spool), files, "refused duplicates change no file");
    assert_eq!(ids(&listjobs(&daemon), "pending"), ["dup"]);

    // Once it has finished, the id can be used again, and the job runs: no slot was lost.
    assert_eq!(prevstate(&daemon, "demo", &running, None), "running");
    assert_eq!(wait_finished(&daemon, "dup")["outcome"], "finished");
    schedule_demo(&daemon, "args", &[("jobid", "dup")]);
    let finished_twice = wait_until(DEADLINE, || {
        let list = listjobs(&daemon);
        list["finished"].as_array().unwrap().iter().filter(|job| job["id"] == "dup").count() == 2
            && ids(&list, "running").is_empty()
    });
    assert!(finished_twice, "{}", listjobs(&daemon));
    let status = daemonstatus(&daemon);
    assert_eq!((&status["pending"], &status["running"]), (&json!(0), &json!(0)), "{status}");
}

// ------------------------------------------------------------------ retention

/// `jobs_to_keep = 2` keeps, as stock does, the two newest log and item files plus the new job's:
/// after four jobs of one spider, the last three remain.
#[test]
fn jobs_to_keep_rotates_logs_and_items() {
    let daemon = demo_daemon("max_proc = 1\njobs_to_keep = 2\nitems_dir = items\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    let jobs = ["it1", "it2", "it3", "it4"];
    for job in jobs {
        schedule_demo(&daemon, "args", &[("jobid", job)]);
    }
    for job in jobs {
        assert_eq!(wait_finished(&daemon, job)["outcome"], "finished");
    }
    // LogParser's files are not counted, and go with their log. (Once stats.json has it4's end,
    // its final files are written.)
    let stats = daemon.path().join("logs/stats.json");
    let it4_recorded = || {
        let stats: Value = serde_json::from_slice(&std::fs::read(&stats).unwrap_or_default()).unwrap_or_default();
        stats["datas"]["demo"]["args"]["it4"]["finish_reason"] == "finished"
    };
    assert!(wait_until(DEADLINE, it4_recorded), "it4's LogParser files");
    assert_eq!(
        file_names(&daemon.path().join("logs/demo/args")),
        ["it2.json", "it2.log", "it3.json", "it3.log", "it4.json", "it4.log"]
    );
    assert_eq!(file_names(&daemon.path().join("items/demo/args")), ["it2.jl", "it3.jl", "it4.jl"]);
    let list = listjobs(&daemon);
    assert_eq!(entry(&list, "finished", "it1").unwrap()["log_url"], Value::Null, "the rotated log is gone");
    assert_eq!(entry(&list, "finished", "it4").unwrap()["log_url"], "/logs/demo/args/it4.log");
}

/// `finished_to_keep = 3`: after five jobs, `listjobs` shows the three newest, newest first, and
/// `daemonstatus` counts three (stock's MemoryJobStorage).
#[test]
fn finished_to_keep_limits_the_finished_list() {
    let daemon = demo_daemon("max_proc = 1\nfinished_to_keep = 3\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    let jobs = ["f1", "f2", "f3", "f4", "f5"];
    for job in jobs {
        schedule_demo(&daemon, "args", &[("jobid", job)]);
    }
    // One slot and equal priorities: f5 is the last to run.
    wait_finished(&daemon, "f5");
    let status = daemonstatus(&daemon);
    assert_eq!((&status["pending"], &status["running"]), (&json!(0), &json!(0)), "{status}");
    assert_eq!(ids(&listjobs(&daemon), "finished"), ["f5", "f4", "f3"]);
    assert_eq!(status["finished"], 3, "{status}");
}

/// `finished_to_keep = 0` keeps no finished jobs: a documented deliberate difference (stock's
/// documentation says so; its default memory storage keeps them all). The jobs still run.
#[test]
fn finished_to_keep_zero_keeps_no_finished_jobs() {
    let daemon = demo_daemon("max_proc = 1\nfinished_to_keep = 0\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    for job in ["z1", "z2"] {
        schedule_demo(&daemon, "args", &[("jobid", job)]);
    }
    wait_log(&daemon, "args", "z2", "Spider closed (finished)");
    let idle = wait_until(DEADLINE, || {
        let status = daemonstatus(&daemon);
        status["pending"] == 0 && status["running"] == 0
    });
    assert!(idle, "{}", listjobs(&daemon));
    assert!(read_log(&daemon, "args", "z1").contains("Spider closed (finished)"), "z1 ran too");
    assert_eq!(ids(&listjobs(&daemon), "finished"), Vec::<String>::new());
    assert_eq!(daemonstatus(&daemon)["finished"], 0);
    assert_eq!(currstate(&daemon, "z2"), Value::Null);
}

/// `jobs_dir` gives each crawl a `JOBDIR` of `<jobs_dir>/<project>/<spider>/<job>`.
#[test]
fn jobs_dir_gives_the_crawl_a_jobdir() {
    let daemon = demo_daemon("jobs_dir = jobs\nitems_dir = items\n");
    let _cleanup = KillCrawlsOnPanic::new(&daemon);
    let job = schedule_demo(&daemon, "args", &[("echo_settings", "JOBDIR")]);
    assert_eq!(wait_finished(&daemon, &job)["outcome"], "finished");
    let items = read_items(&daemon, "args", &job);
    let expected = daemon.path().join(format!("jobs/demo/args/{job}"));
    assert_eq!(items[0]["settings"]["JOBDIR"], expected.display().to_string());
}
