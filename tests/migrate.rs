//! Migration in place from stock Scrapyd: scrapyd-rs started on a data directory that stock used
//! serves its projects at once and imports its pending jobs (`dbs/<project>.db`) and finished
//! jobs (`dbs/jobs.db`) exactly once, without ever writing to `dbs/`.
//!
//! The stock 1.6 data directory is made by the real stock daemon ([`stock_data_dir`]): it deploys
//! the demo egg, runs three crawls with `SqliteJobStorage` on, and is stopped with jobs pending.
//! Databases of stock 1.4.3 and 1.5.0, and damaged or foreign ones, are in `fixtures/stock-dbs`
//! (made by its `generate.py` with those versions' own classes).
//!
//! Every test checks that `dbs/` is left exactly as it was: the same files, bytes and
//! modification times, and no `-journal`, `-wal` or `-shm` file beside them.

use crate::cli;
use crate::helper::stock::{self, Stock};
use crate::helper::{Daemon, SIGKILL, copy_dir, python, send_signal, tree, wait_until};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// The cached stock data directory under `target/`; bump the suffix when [`make_stock_data_dir`]
/// changes, so a directory made by the old recipe is not used.
const STOCK_DATA_DIR: &str = "stock-data-dir-v1";

/// How long crawls and starts may take before a test gives up.
const DEADLINE: Duration = Duration::from_secs(90);

/// The pending jobs stock holds in the stock data directory, in stock's pop order per project.
/// `block` (a 60 s sleeper, the highest priority) takes scrapyd-rs's only slot at once, so the
/// others stay pending while a test compares them with stock's answers.
const DEMO_PENDING: [&str; 5] = ["block", "high", "first", "second", "low"];
const OTHER_PENDING: [&str; 1] = ["other-1"];
/// The jobs stock ran (and recorded in `jobs.db`); it ran them side by side, so they ended in
/// any order, and stock lists them newest end first.
const STOCK_FINISHED: [&str; 3] = ["done-3", "done-2", "done-1"];

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

// ------------------------------------------------------------------ the stock data directory

/// A data directory left by stock Scrapyd 1.6.0: made once by the real daemon and kept in
/// `target/` (complete once `.ready` exists), under a lock shared by concurrent test processes.
fn stock_data_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = python::target_dir().join(STOCK_DATA_DIR);
        let _lock = python::lock(&dir.with_extension("lock"));
        if !dir.join(".ready").exists() {
            make_stock_data_dir(&dir);
        }
        dir
    })
    .clone()
}

/// Runs stock twice in `dir`: the first run deploys the demo egg as projects `demo` (r1) and
/// `other` (v2) and schedules three quick crawls; the second dispatches them at its first poll
/// (as a restarted stock does), waits until they are recorded in `jobs.db`, schedules the jobs
/// that stay pending (the poll interval is an hour) and records stock's answers in
/// `stock-answers.json`. The directory's `scrapyd.conf` then says `max_proc = 1`.
fn make_stock_data_dir(dir: &Path) {
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the stock data directory");
    let conf = "max_proc = 4\nitems_dir = items\njobstorage = scrapyd.jobstorage.SqliteJobStorage\n";
    let egg = python::egg("demo");

    let first = Stock::start_in(dir, conf);
    first.add_version("demo", "r1", &egg).ok();
    first.add_version("other", "v2", &egg).ok();
    for (project, job) in [("demo", "done-1"), ("demo", "done-2"), ("other", "done-3")] {
        stock_schedule(&first, project, "args", job, &[]);
    }
    first.stop();

    let second = Stock::start_in(dir, conf);
    let finished = || second.get("/listjobs.json").ok()["finished"].as_array().map_or(0, Vec::len);
    assert!(wait_until(DEADLINE, || finished() == 3), "stock ran its three crawls:\n{}", second.output());
    stock_schedule(&second, "demo", "sleeper", "block", &[("priority", "10"), ("seconds", "60")]);
    stock_schedule(
        &second,
        "demo",
        "args",
        "first",
        &[("setting", "A=1"), ("city", "Zürich"), ("echo_settings", "A,B"), ("setting", "B=x=y")],
    );
    stock_schedule(&second, "demo", "args", "high", &[("priority", "5"), ("_version", "r1")]);
    stock_schedule(&second, "demo", "args", "second", &[]);
    stock_schedule(&second, "demo", "args", "low", &[("priority", "-1"), ("arg1", "val1")]);
    stock_schedule(&second, "other", "args", "other-1", &[("priority", "3")]);
    let mut answers = serde_json::Map::new();
    for target in [
        "/listprojects.json",
        "/listversions.json?project=demo",
        "/listversions.json?project=other",
        "/listspiders.json?project=demo",
        "/listjobs.json?project=demo",
        "/listjobs.json?project=other",
        "/listjobs.json",
    ] {
        answers.insert(target.to_string(), second.get(target).ok());
    }
    second.stop();

    let conf_path = dir.join("scrapyd.conf");
    let text = std::fs::read_to_string(&conf_path).expect("read scrapyd.conf");
    std::fs::write(&conf_path, text.replace("max_proc = 4", "max_proc = 1")).expect("write scrapyd.conf");
    let answers = serde_json::to_vec_pretty(&Value::Object(answers)).expect("answers as JSON");
    std::fs::write(dir.join("stock-answers.json"), answers).expect("write stock-answers.json");
    std::fs::write(dir.join(".ready"), "made by stock Scrapyd 1.6.0\n").expect("write .ready");
    eprintln!("test helper: stock data directory made in {:.1?}", started.elapsed());
}

/// Schedules a job on stock; `fields` may repeat names (`setting`).
fn stock_schedule(stock: &Stock, project: &str, spider: &str, job: &str, fields: &[(&str, &str)]) {
    let mut form: Vec<(&str, &[u8])> = vec![("project", project.as_bytes()), ("spider", spider.as_bytes())];
    form.push(("jobid", job.as_bytes()));
    form.extend(fields.iter().map(|(name, value)| (*name, value.as_bytes())));
    assert_eq!(stock.post_form("/schedule.json", &form).ok()["jobid"], job);
}

/// A fresh copy of the stock data directory, or of the parts of it named.
fn stock_copy(parts: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = stock_data_dir();
    for part in parts {
        let from = source.join(part);
        if from.is_dir() {
            std::fs::create_dir_all(dir.path().join(part)).expect("create a directory");
            copy_dir(&from, &dir.path().join(part));
        } else {
            std::fs::copy(&from, dir.path().join(part)).expect("copy a file");
        }
    }
    dir
}

/// Everything in the stock data directory.
const WHOLE: [&str; 7] = ["scrapyd.conf", "eggs", "logs", "items", "dbs", "stock-answers.json", "stock-output.log"];

/// A copy of `fixtures/stock-dbs/<name>/dbs` as the `dbs/` of a new data directory.
fn fixture_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/stock-dbs").join(name).join("dbs");
    std::fs::create_dir_all(dir.path().join("dbs")).expect("create dbs");
    copy_dir(&source, &dir.path().join("dbs"));
    dir
}

fn fixture_expected(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/stock-dbs").join(name).join("expected.json");
    serde_json::from_slice(&std::fs::read(path).expect("read expected.json")).expect("expected.json is JSON")
}

// ------------------------------------------------------------------ checks

/// Every file under `dir` with its bytes and modification time.
fn files_of(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    tree(dir)
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).expect("stat a file");
            (name, (std::fs::read(&path).expect("read a file"), modified))
        })
        .collect()
}

/// Asserts that `dbs/` is exactly as `before` recorded it.
fn assert_untouched(dir: &Path, before: &BTreeMap<PathBuf, (Vec<u8>, SystemTime)>) {
    let after = files_of(&dir.join("dbs"));
    let names = |files: &BTreeMap<PathBuf, _>| files.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&after), names(before), "no file appeared in or vanished from dbs/");
    for (name, (bytes, modified)) in before {
        let (now_bytes, now_modified) = &after[name];
        assert!(now_bytes == bytes, "dbs/{} changed", name.display());
        assert_eq!(now_modified, modified, "dbs/{} was touched", name.display());
    }
}

fn ids(jobs: &Value) -> Vec<String> {
    jobs.as_array().expect("a job list").iter().map(|job| job["id"].as_str().expect("an id").to_string()).collect()
}

/// A time as stock shows it, with the six fractional digits scrapyd-rs always shows.
fn with_fraction(time: &Value) -> String {
    let time = time.as_str().expect("a time");
    if time.contains('.') { time.to_string() } else { format!("{time}.000000") }
}

/// The binary, run to completion in `dir` with `args`.
fn run_binary(dir: &Path, args: &[&str]) -> Output {
    cli::command(dir).args(args).stdin(Stdio::null()).output().expect("run scrapyd-rs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

// ------------------------------------------------------------------ tests

#[test]
fn a_stock_directory_is_served_at_once_and_its_jobs_run_in_stock_order() {
    let dir = stock_copy(&WHOLE);
    let answers: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("stock-answers.json")).unwrap()).unwrap();
    let dbs = files_of(&dir.path().join("dbs"));
    let daemon = Daemon::start_reusing(dir.path(), "");

    // The same projects, versions and spiders at once.
    let mut projects = daemon.get("/listprojects.json").ok()["projects"].clone();
    let mut stock_projects = answers["/listprojects.json"]["projects"].clone();
    projects.as_array_mut().unwrap().sort_by_key(|p| p.to_string());
    stock_projects.as_array_mut().unwrap().sort_by_key(|p| p.to_string());
    assert_eq!(projects, stock_projects);
    for target in
        ["/listversions.json?project=demo", "/listversions.json?project=other", "/listspiders.json?project=demo"]
    {
        assert_eq!(daemon.get(target).ok(), answers[target], "{target}");
    }

    // The pending jobs with their order, priorities' effect, versions, settings and arguments;
    // `block` may already have been claimed (it is the best job), nothing else can start.
    for (project, expected) in [("demo", &DEMO_PENDING[..]), ("other", &OTHER_PENDING[..])] {
        let target = format!("/listjobs.json?project={project}");
        let stock_pending = &answers[&target]["pending"];
        assert_eq!(ids(stock_pending), expected, "stock's own order");
        let ours = daemon.get(&target).ok()["pending"].clone();
        let without_block = |jobs: &Value| -> Vec<Value> {
            jobs.as_array().unwrap().iter().filter(|job| job["id"] != "block").cloned().collect()
        };
        assert_eq!(without_block(&ours), without_block(stock_pending), "{project}: pending as stock lists them");
    }

    // The finished jobs stock recorded, newest first, with their times and links.
    let stock_finished = answers["/listjobs.json"]["finished"].as_array().unwrap().clone();
    // Stock ran the three crawls side by side: their order (newest end first) is whatever
    // order they ended in when the directory was made.
    let stock_order = ids(&Value::from(stock_finished.clone()));
    assert_eq!(sorted(stock_order.clone()), sorted(STOCK_FINISHED.map(String::from).to_vec()));
    let ours = daemon.get("/listjobs.json").ok()["finished"].clone();
    assert_eq!(ids(&ours), stock_order, "finished jobs in stock's order");
    for (our, stock) in ours.as_array().unwrap().iter().zip(&stock_finished) {
        for key in ["project", "spider", "log_url", "items_url"] {
            assert_eq!(our[key], stock[key], "{key} of {}", stock["id"]);
        }
        assert!(our["log_url"].is_string(), "stock's log is served");
        for key in ["start_time", "end_time"] {
            assert_eq!(our[key], with_fraction(&stock[key]), "{key} of {}", stock["id"]);
        }
        assert_eq!(our["outcome"], "finished");
    }

    // Once `block` is cancelled the others run, one at a time, in stock's order (priority
    // across projects, as scrapyd-rs honours it), with their arguments and settings.
    assert!(wait_until(DEADLINE, || daemon.get("/status.json?job=block&project=demo").ok()["currstate"] == "running"));
    daemon.post_form("/cancel.json", &[("project", b"demo"), ("job", b"block")]).ok();
    let all_finished = || {
        let finished = daemon.get("/listjobs.json").ok()["finished"].clone();
        (finished.as_array().unwrap().len() == 3 + DEMO_PENDING.len() + OTHER_PENDING.len()).then_some(finished)
    };
    let mut finished = None;
    assert!(wait_until(DEADLINE * 2, || {
        finished = all_finished();
        finished.is_some()
    }));
    let finished = finished.unwrap();
    let mut ran: Vec<&Value> = finished.as_array().unwrap().iter().filter(|job| job["outcome"] == "finished").collect();
    ran.retain(|job| !STOCK_FINISHED.contains(&job["id"].as_str().unwrap()));
    ran.sort_by_key(|job| job["start_time"].as_str().unwrap().to_string());
    let order: Vec<&str> = ran.iter().map(|job| job["id"].as_str().unwrap()).collect();
    assert_eq!(order, ["high", "other-1", "first", "second", "low"]);

    let items = std::fs::read_to_string(dir.path().join("items/demo/args/first.jl")).expect("the crawl's items");
    let item: Value = serde_json::from_str(items.lines().next().expect("one item")).unwrap();
    assert_eq!(item["kwargs"], json!({"_job": "first", "city": "Zürich", "echo_settings": "A,B"}));
    assert_eq!(item["settings"], json!({"A": "1", "B": "x=y"}));
    let items = std::fs::read_to_string(dir.path().join("items/demo/args/high.jl")).expect("the crawl's items");
    let item: Value = serde_json::from_str(items.lines().next().expect("one item")).unwrap();
    assert_eq!(item["env"]["SCRAPYD_EGG_VERSION"], "r1", "its _version");
    drop(daemon);

    // A restart imports nothing again: not the jobs that ran, not stock's history.
    let daemon = Daemon::start_reusing(dir.path(), "");
    let jobs = daemon.get("/listjobs.json").ok();
    assert_eq!(jobs["pending"], json!([]));
    assert_eq!(ids(&jobs["finished"]), ids(&finished));
    drop(daemon);
    assert_untouched(dir.path(), &dbs);
}

#[test]
fn instances_starting_together_import_each_job_once_and_restarts_import_nothing() {
    // Without eggs the imported jobs wait (as in stock), so the lists stay still.
    let dir = stock_copy(&["dbs"]);
    let dbs = files_of(&dir.path().join("dbs"));
    let expected: Vec<String> = DEMO_PENDING.iter().chain(&OTHER_PENDING).map(|id| id.to_string()).collect();
    let check = |daemon: &Daemon| {
        let jobs = daemon.get("/listjobs.json").ok();
        let mut pending = ids(&jobs["pending"]);
        pending.sort();
        let mut wanted = expected.clone();
        wanted.sort();
        assert_eq!(pending, wanted, "each stock job pending once");
        let finished = sorted(ids(&jobs["finished"]));
        assert_eq!(finished, sorted(STOCK_FINISHED.map(String::from).to_vec()), "each finished job once");
    };
    let daemons: Vec<Daemon> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..3).map(|_| scope.spawn(|| Daemon::start_reusing(dir.path(), ""))).collect();
        starts.into_iter().map(|start| start.join().expect("a daemon starts")).collect()
    });
    for daemon in &daemons {
        check(daemon);
    }
    drop(daemons);
    let pending_files = tree(&dir.path().join("spool")).iter().filter(|p| p.starts_with("demo/pending")).count();
    assert_eq!(pending_files, DEMO_PENDING.len());
    let daemon = Daemon::start_reusing(dir.path(), "");
    check(&daemon);
    drop(daemon);
    assert_untouched(dir.path(), &dbs);
}

#[test]
fn a_start_killed_half_way_through_a_large_queue_imports_the_rest_once() {
    const JOBS: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    // 10,000 jobs written by stock's own queue class (without fsyncs, to be quick).
    let script = "import sys\n\
        from scrapyd.config import Config\n\
        from scrapyd.spiderqueue import SqliteSpiderQueue\n\
        q = SqliteSpiderQueue(Config(values={'dbs_dir': 'dbs'}), 'big')\n\
        q.q.conn.execute('PRAGMA synchronous = OFF')\n\
        q.q.conn.execute('PRAGMA journal_mode = MEMORY')\n\
        for i in range(int(sys.argv[1])):\n\
        \x20   q.add('args', priority=float(i % 7 - 3), settings={'S': str(i)}, _job='job-%05d' % i, n=str(i))\n";
    let made = Command::new(stock::bin("python"))
        .args(["-c", script, &JOBS.to_string()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let dbs = files_of(&dir.path().join("dbs"));
    let addr = cli::configure(dir.path(), "");
    let journal = dir.path().join("spool/.scrapyd-rs/migrate/big.db.imported");
    let pending_dir = dir.path().join("spool/big/pending");
    let count = |dir: &Path| std::fs::read_dir(dir).map_or(0, |entries| entries.count());

    let mut first = Guard(cli::command(dir.path()).stderr(Stdio::null()).spawn().unwrap());
    let started = Instant::now();
    // Killed once the first batch is recorded, well before the tenth.
    assert!(wait_until(DEADLINE, || std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0)));
    send_signal(first.0.id(), SIGKILL);
    first.0.wait().unwrap();
    let written = count(&pending_dir);
    assert!(written > 0 && written < JOBS, "killed half-way ({written} of {JOBS} written)");

    let mut second = Guard(cli::command(dir.path()).stderr(Stdio::null()).spawn().unwrap());
    assert!(wait_until(DEADLINE, || std::net::TcpStream::connect(addr).is_ok()), "the restarted daemon listens");
    eprintln!("import of {JOBS} jobs, killed once and resumed: {:.1?} in all", started.elapsed());
    let status = crate::helper::client::request(addr, "GET", "/daemonstatus.json", &[], b"").ok();
    assert_eq!(status["pending"], JOBS);
    // The spool's order is stock's pop order: priority, then rowid.
    let mut names: Vec<String> =
        std::fs::read_dir(&pending_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let order: Vec<String> = names.iter().map(|name| name[38..name.len() - 5].to_string()).collect();
    let mut expected: Vec<usize> = (0..JOBS).collect();
    expected.sort_by_key(|i| (-(*i as i64 % 7 - 3), *i));
    let expected: Vec<String> = expected.iter().map(|i| format!("job-{i:05}")).collect();
    assert_eq!(order, expected);
    send_signal(second.0.id(), crate::helper::SIGTERM);
    assert!(cli::wait_exit(&mut second.0, DEADLINE).is_some());
    assert_untouched(dir.path(), &dbs);
}

/// Kills a daemon left running by a failed assertion.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn queues_and_histories_of_stock_1_4_and_1_5_are_imported_as_stock_reads_them() {
    for version in ["1.4.3", "1.5.0"] {
        let expected = fixture_expected(version);
        let dir = fixture_copy(version);
        let dbs = files_of(&dir.path().join("dbs"));
        let daemon = Daemon::start_reusing(dir.path(), "");
        let jobs = daemon.get("/listjobs.json").ok();
        // What stock 1.6's listjobs makes of each message, in stock's pop order.
        let pending: Vec<Value> = expected["queue"]["demo"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                let message = pair[0].as_object().unwrap();
                let args: serde_json::Map<String, Value> = message
                    .iter()
                    .filter(|(key, _)| !["name", "_job", "_version", "settings"].contains(&key.as_str()))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                json!({
                    "id": message["_job"],
                    "project": "demo",
                    "spider": message["name"],
                    "version": message.get("_version").cloned().unwrap_or(Value::Null),
                    "settings": message["settings"],
                    "args": args,
                })
            })
            .collect();
        assert_eq!(jobs["pending"], Value::from(pending), "{version}");
        let finished: Vec<(String, String, String, String, String)> = jobs["finished"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| {
                let text = |key: &str| job[key].as_str().unwrap().to_string();
                (text("project"), text("spider"), text("id"), text("start_time"), text("end_time"))
            })
            .collect();
        let stock: Vec<(String, String, String, String, String)> = expected["finished"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let text = |i: usize| row[i].as_str().unwrap().to_string();
                (text(0), text(1), text(2), with_fraction(&row[3]), with_fraction(&row[4]))
            })
            .collect();
        assert_eq!(finished, stock, "{version}");
        drop(daemon);
        assert_untouched(dir.path(), &dbs);
    }
}

#[test]
fn damaged_and_foreign_databases_are_reported_left_alone_and_the_rest_is_served() {
    let expected = fixture_expected("bad");
    let dir = fixture_copy("bad");
    // A good queue beside the bad ones.
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/stock-dbs/1.5.0/dbs/demo.db");
    std::fs::copy(good, dir.path().join("dbs/demo.db")).unwrap();
    let dbs = files_of(&dir.path().join("dbs"));
    let addr = cli::configure(dir.path(), "");
    let log_path = dir.path().join("daemon.log");

    for start in 0..2 {
        let log = std::fs::File::create(&log_path).unwrap();
        let mut daemon = Guard(cli::command(dir.path()).stderr(log).spawn().unwrap());
        assert!(wait_until(DEADLINE, || std::net::TcpStream::connect(addr).is_ok()), "the daemon starts and listens");
        let get = |target: &str| crate::helper::client::request(addr, "GET", target, &[], b"").ok();
        let pending = get("/listjobs.json")["pending"].clone();
        let rows: Vec<Value> =
            pending.as_array().unwrap().iter().filter(|job| job["project"] == "rows").cloned().collect();
        let wanted = expected["rows"]["imported"].as_array().unwrap();
        assert_eq!(rows.len(), wanted.len(), "start {start}: {rows:?}");
        for (job, want) in rows.iter().zip(wanted) {
            assert_eq!((&job["id"], &job["spider"], &job["args"]), (&want["id"], &want["spider"], &want["args"]));
        }
        assert_eq!(pending.as_array().unwrap().iter().filter(|job| job["project"] == "demo").count(), 7);
        send_signal(daemon.0.id(), crate::helper::SIGTERM);
        assert!(cli::wait_exit(&mut daemon.0, DEADLINE).is_some());

        let log = std::fs::read_to_string(&log_path).unwrap();
        for file in expected["unreadable"].as_array().unwrap() {
            let file = file.as_str().unwrap();
            let line = log
                .lines()
                .find(|line| line.contains(&format!("dbs/{file} ")))
                .unwrap_or_else(|| panic!("{file} reported:\n{log}"));
            assert!(line.contains("WARN"), "{line}");
        }
        if start == 0 {
            assert!(
                log.contains("rows.db (project rows): imported 4 pending and 0 finished jobs, 6 rows skipped"),
                "{log}"
            );
            assert!(log.contains("row 4: job \"../escape\" cannot be stored"), "{log}");
            assert!(
                log.contains("pickled.db (project pickled): imported 0 pending and 0 finished jobs, 1 row skipped"),
                "{log}"
            );
            assert!(log.contains("hot.db holds an unfinished transaction (hot.db-journal)"), "{log}");
        } else {
            // Imported files are not read again; unreadable ones are tried again at every start.
            assert!(!log.contains("rows.db (project rows): imported"), "{log}");
            assert!(log.contains("corrupt.db is not an SQLite database"), "{log}");
        }
    }
    assert_untouched(dir.path(), &dbs);
}

#[test]
fn a_queue_locked_by_a_writer_is_skipped_and_imported_at_the_next_start() {
    let dir = fixture_copy("1.5.0");
    let dbs = files_of(&dir.path().join("dbs"));
    let hold = "import sqlite3, sys\n\
        c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
        c.execute('BEGIN EXCLUSIVE')\n\
        print('locked', flush=True)\n\
        sys.stdin.read()\n\
        c.execute('ROLLBACK')\n";
    let mut holder = Command::new(python::python())
        .args(["-c", hold, "dbs/demo.db"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");

    let locked = run_binary(dir.path(), &["migrate"]);
    let report = stdout(&locked);
    assert_eq!(locked.status.code(), Some(1), "{report}");
    assert!(report.contains("dbs/demo.db is locked by a process that is writing to it"), "{report}");
    assert!(report.contains("dbs/jobs.db: imported 0 pending and 3 finished jobs"), "{report}");
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());

    let imported = run_binary(dir.path(), &["migrate"]);
    let report = stdout(&imported);
    assert!(imported.status.success(), "{report}");
    assert!(report.contains("dbs/demo.db (project demo): imported 7 pending and 0 finished jobs"), "{report}");
    assert!(report.contains("dbs/jobs.db: imported at an earlier start, unchanged since"), "{report}");
    assert_untouched(dir.path(), &dbs);
}

#[test]
fn going_back_to_stock_and_back_imports_only_what_stock_added() {
    let dir = tempfile::tempdir().unwrap();
    let conf = "max_proc = 1\njobstorage = scrapyd.jobstorage.SqliteJobStorage\n";
    let first = Stock::start_in(dir.path(), conf);
    first.add_version("demo", "r1", &python::egg("demo")).ok();
    for (job, priority) in [("a", "2"), ("b", "1"), ("c", "0")] {
        stock_schedule(&first, "demo", "args", job, &[("priority", priority)]);
    }
    first.stop();

    // A dry run prints what would be imported and writes nothing.
    let dry = run_binary(dir.path(), &["migrate", "--dry-run"]);
    let report = stdout(&dry);
    assert!(dry.status.success(), "{report}");
    assert!(report.contains("dbs/demo.db (project demo): would import 3 pending and 0 finished jobs"), "{report}");
    assert!(
        report.contains("  pending   a  spider=args  priority=2.0\n  pending   b  spider=args  priority=1.0\n"),
        "{report}"
    );
    assert!(report.contains("would import 3 pending and 0 finished jobs in total"), "{report}");
    assert!(!dir.path().join("spool").exists(), "a dry run creates nothing");

    let imported = run_binary(dir.path(), &["migrate"]);
    assert!(stdout(&imported).contains("imported 3 pending and 0 finished jobs in total"), "{}", stdout(&imported));

    // Back to stock: its first poll runs `a` again (stock never learns it was imported), and a
    // new job is scheduled there.
    let second = Stock::start_in(dir.path(), conf);
    let finished = || second.get("/listjobs.json").ok()["finished"].as_array().map_or(0, Vec::len);
    assert!(wait_until(DEADLINE, || finished() == 1), "stock ran `a`:\n{}", second.output());
    stock_schedule(&second, "demo", "args", "new", &[]);

    // While stock runs in the directory (its pid in twistd.pid), nothing is imported.
    std::fs::write(dir.path().join("twistd.pid"), format!("{}\n", second.pid())).unwrap();
    let held = run_binary(dir.path(), &["migrate"]);
    let report = stdout(&held);
    assert_eq!(held.status.code(), Some(1), "{report}");
    let running = format!("stock Scrapyd is running in {} (pid {}, in twistd.pid)", dir.path().display(), second.pid());
    assert!(report.contains(&running), "{report}");
    assert!(report.contains("imported 0 pending and 0 finished jobs in total"), "{report}");
    second.stop();

    // Back again (twistd.pid is stale now): stock's new job and the one it ran are imported;
    // `a`, which stock took from its queue and ran, is no longer pending here either.
    let dbs = files_of(&dir.path().join("dbs"));
    let back = run_binary(dir.path(), &["migrate"]);
    let report = stdout(&back);
    assert!(back.status.success(), "{report}");
    assert!(
        report.contains(
            "dbs/demo.db (project demo): imported 1 pending and 0 finished jobs, 2 rows imported at an earlier start, \
             1 pending job withdrawn: stock ran or cancelled them since they were imported"
        ),
        "{report}"
    );
    assert!(report.contains("  withdrawn a  no longer in stock's queue\n"), "{report}");
    assert!(report.contains("  pending   new  spider=args  priority=0.0\n"), "{report}");
    assert!(report.contains("dbs/jobs.db: imported 0 pending and 1 finished jobs"), "{report}");
    assert!(report.contains("  finished  a  project=demo  spider=args"), "{report}");
    let spool: HashSet<String> = tree(&dir.path().join("spool/demo/pending"))
        .iter()
        .map(|name| name.to_string_lossy()[38..].trim_end_matches(".json").to_string())
        .collect();
    assert_eq!(spool, HashSet::from(["b".to_string(), "c".into(), "new".into()]));
    assert_untouched(dir.path(), &dbs);
}
