//! The embedded Python runner, driven directly as the daemon drives it:
//! `python -m scrapyd_rs_runner <args>` with the runner's directory on `PYTHONPATH`,
//! the project in `SCRAPY_PROJECT` and the egg in `SCRAPYD_RS_EGG`.

use std::fs;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::helper::{self, python};

/// The runner exactly as the daemon embeds it.
const RUNNER_SOURCE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/runner/scrapyd_rs_runner.py"));

/// How long a crawl may take to react before a test gives up on it.
const DEADLINE: Duration = Duration::from_secs(60);

/// A runner directory and a working directory of their own, so runs cannot
/// see each other's files.
struct Sandbox {
    root: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("create a sandbox");
        fs::create_dir(root.path().join("runner")).expect("create the runner directory");
        fs::create_dir(root.path().join("cwd")).expect("create the working directory");
        fs::write(root.path().join("runner/scrapyd_rs_runner.py"), RUNNER_SOURCE).expect("write the runner");
        Sandbox { root }
    }

    fn runner_dir(&self) -> PathBuf {
        self.root.path().join("runner")
    }

    fn cwd(&self) -> PathBuf {
        self.root.path().join("cwd")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The command the daemon would run, with `python`, for `project` and `egg`.
    fn command(&self, python: &Path, project: &str, egg: Option<&Path>, args: &[&str]) -> Command {
        let mut command = Command::new(python);
        command
            .args(["-m", "scrapyd_rs_runner"])
            .args(args)
            .current_dir(self.cwd())
            .env("PYTHONPATH", self.runner_dir())
            .env("SCRAPYD_RS_RUNNER_DIR", self.runner_dir())
            .env("SCRAPY_PROJECT", project)
            .env("PYTHONIOENCODING", "UTF-8")
            .env_remove("SCRAPY_SETTINGS_MODULE")
            .env_remove("SCRAPYD_EGG_VERSION")
            .env_remove("SCRAPYD_RS_RESULT")
            .env_remove("SCRAPYD_RS_EGG")
            .stdin(Stdio::null());
        if let Some(egg) = egg {
            command.env("SCRAPYD_RS_EGG", egg);
        }
        command
    }

    /// `scrapy list` of the egg of a fixture project, as the daemon runs it.
    fn list(&self, project: &str, egg: &Path) -> Output {
        output(self.command(&python::python(), project, Some(egg), &["list", "-s", "LOG_STDOUT=0"]))
    }

    /// A command that records its outcome in `result.json` in the sandbox.
    fn crawl(&self, project: &str, egg: &Path, args: &[&str]) -> Command {
        let mut command = self.command(&python::python(), project, Some(egg), &[&["crawl"], args].concat());
        command.env("SCRAPYD_RS_RESULT", self.path("result.json"));
        command
    }

    fn result(&self) -> Value {
        let text = fs::read_to_string(self.path("result.json")).expect("read the crawl result");
        serde_json::from_str(&text).expect("the crawl result is JSON")
    }
}

/// The one item of a JSON-lines feed.
fn read_item(feed: &Path) -> Value {
    let text = fs::read_to_string(feed).expect("read the item feed");
    assert_eq!(text.lines().count(), 1, "expected one item: {text}");
    serde_json::from_str(&text).expect("the item is JSON")
}

fn output(mut command: Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("run {command:?}: {e}"))
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8").lines().map(str::to_owned).collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that the run failed with `code` and exactly one line on stderr
/// containing `needle`.
fn assert_one_line_error(output: &Output, code: i32, needle: &str) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {text}");
    assert_eq!(text.lines().count(), 1, "expected one line, got: {text}");
    assert!(text.contains(needle), "expected {needle:?} in: {text}");
}

// ------------------------------------------------------------------ spider lists

#[test]
fn list_shows_the_spiders_of_the_egg() {
    let sandbox = Sandbox::new();
    let out = sandbox.list("demo", &python::egg("demo"));
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout_lines(&out), ["args", "failing", "follow", "sleeper", "stubborn"]);
}

#[test]
fn list_shows_the_extra_spider_of_version_2() {
    let sandbox = Sandbox::new();
    let out = sandbox.list("demo", &python::egg("demo_v2"));
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout_lines(&out), ["args", "extra", "failing", "follow", "sleeper", "stubborn"]);
}

#[test]
fn list_keeps_non_ascii_spider_names() {
    let sandbox = Sandbox::new();
    let out = sandbox.list("utf8names", &python::egg("utf8names"));
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout_lines(&out), ["araña1", "araña2"]);
}

#[test]
fn list_counts_lines_printed_at_import_as_spiders() {
    let sandbox = Sandbox::new();
    let out = sandbox.list("printing", &python::egg("printing"));
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout_lines(&out), ["Hello from the printing project", "quiet"]);
}

#[test]
fn list_without_egg_uses_the_scrapy_cfg_of_the_working_directory() {
    let sandbox = Sandbox::new();
    helper::copy_dir(&python::fixtures_dir().join("utf8names"), &sandbox.cwd());
    let out = output(sandbox.command(&python::python(), "default", None, &["list"]));
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout_lines(&out), ["araña1", "araña2"]);
}

#[test]
fn list_of_broken_settings_fails_with_the_traceback() {
    let sandbox = Sandbox::new();
    let out = sandbox.list("broken_settings", &python::egg("broken_settings"));
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "stderr: {text}");
    assert!(text.contains("Traceback"), "stderr: {text}");
    assert!(text.contains("Exception: This should break the `scrapy list` command"), "stderr: {text}");
}

// ------------------------------------------------------------------ bad inputs

#[test]
fn an_egg_that_is_not_a_zip_is_a_one_line_bad_egg_error() {
    let sandbox = Sandbox::new();
    let egg = sandbox.path("broken.egg");
    fs::write(&egg, python::not_a_zip()).expect("write the fake egg");
    let out = sandbox.list("demo", &egg);
    assert_one_line_error(&out, 1, &format!("BadEggError: {} is not a zip file", egg.display()));
}

#[test]
fn an_egg_without_entry_point_is_a_one_line_bad_egg_error() {
    let sandbox = Sandbox::new();
    let out = sandbox.list("demo", &python::zip_without_entry_point());
    assert_one_line_error(&out, 1, "BadEggError: the egg has no EGG-INFO/entry_points.txt");
}

#[test]
fn a_missing_project_is_a_one_line_error() {
    let sandbox = Sandbox::new();
    let mut command = sandbox.command(&python::python(), "demo", Some(&python::egg("demo")), &["list"]);
    command.env_remove("SCRAPY_PROJECT");
    assert_one_line_error(&output(command), 1, "SCRAPY_PROJECT is not set");
}

#[test]
fn a_python_without_scrapy_is_a_one_line_error_with_status_3() {
    let sandbox = Sandbox::new();
    let bare = python::python_without_scrapy();
    let out = output(sandbox.command(&bare, "demo", Some(&python::egg("demo")), &["list"]));
    assert_one_line_error(&out, 3, "scrapyd-rs: Scrapy is not importable by ");
    assert!(stderr(&out).contains("No module named 'scrapy'"), "stderr: {}", stderr(&out));
}

// ------------------------------------------------------------------ crawls

#[test]
fn a_crawl_passes_arguments_settings_and_environment_and_records_its_result() {
    let sandbox = Sandbox::new();
    let items = sandbox.path("items.jl");
    let feeds = format!(r#"{{"file://{}": {{"format": "jsonlines"}}}}"#, items.display());
    let other = sandbox.path("elsewhere");
    let mut command = sandbox.crawl(
        "demo",
        &python::egg("demo"),
        &["args", "-s", "FOO=a=b", "-s", &format!("FEEDS={feeds}"), "-a", "_job=j1"],
    );
    command
        .args(["-a", "echo_settings=FOO,BOT_NAME", "-a", "arg2=héllo", "-a", "_version=1.0"])
        .env("SCRAPYD_EGG_VERSION", "1.0")
        .env("PYTHONPATH", format!("{}:{}", sandbox.runner_dir().display(), other.display()));
    let out = output(command);
    assert!(out.status.success(), "stderr: {}", stderr(&out));

    let item = read_item(&items);
    let kwargs = &item["kwargs"];
    let names: Vec<&str> = kwargs.as_object().expect("kwargs is an object").keys().map(String::as_str).collect();
    assert_eq!(names, ["_job", "echo_settings", "arg2", "_version"]);
    assert_eq!(kwargs["arg2"].as_str(), Some("héllo"));
    assert_eq!(item["settings"]["FOO"].as_str(), Some("a=b"));
    assert_eq!(item["settings"]["BOT_NAME"].as_str(), Some("demo"));
    assert_eq!(item["env"]["SCRAPY_PROJECT"].as_str(), Some("demo"));
    assert_eq!(item["env"]["SCRAPYD_EGG_VERSION"].as_str(), Some("1.0"));
    let pythonpath = other.display().to_string();
    assert_eq!(item["env"]["PYTHONPATH"].as_str(), Some(pythonpath.as_str()));
    assert_eq!(item["package_data"].as_str(), Some("Hello from inside the demo egg."));

    let result = sandbox.result();
    assert_eq!(result["exit_code"].as_i64(), Some(0));
    assert!(result["signal"].is_null());
    assert!(result["finished_at"].as_f64().is_some());
    assert_eq!(result["stats"]["item_scraped_count"].as_i64(), Some(1));
    assert_eq!(result["stats"]["finish_reason"].as_str(), Some("finished"));
    assert!(!sandbox.path("result.json.stats").exists(), "the stats file is merged and removed");
    assert!(!sandbox.path("result.json.tmp").exists());
}

#[test]
fn the_runner_directory_is_not_passed_on_to_the_crawl() {
    let sandbox = Sandbox::new();
    let items = sandbox.path("items.jl");
    let feeds = format!(r#"{{"file://{}": {{"format": "jsonlines"}}}}"#, items.display());
    let out = output(sandbox.command(
        &python::python(),
        "demo",
        Some(&python::egg("demo")),
        &["crawl", "args", "-s", &format!("FEEDS={feeds}")],
    ));
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let item = read_item(&items);
    assert!(item["env"]["PYTHONPATH"].is_null(), "PYTHONPATH leaked: {item:?}");
    assert!(!sandbox.path("result.json").exists(), "no result without SCRAPYD_RS_RESULT");
}

#[test]
fn a_spider_failing_in_init_records_exit_code_1() {
    let sandbox = Sandbox::new();
    let out = output(sandbox.crawl("demo", &python::egg("demo"), &["failing", "-a", "_job=j2"]));
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains("the failing spider fails on purpose"), "stderr: {}", stderr(&out));
    let result = sandbox.result();
    assert_eq!(result["exit_code"].as_i64(), Some(1));
    assert!(result["signal"].is_null());
    assert!(result["stats"].is_null());
}

#[test]
fn sigint_stops_a_crawl_gracefully_and_the_result_says_so() {
    let sandbox = Sandbox::new();
    let log = sandbox.path("sleeper.log");
    let mut command =
        sandbox.crawl("demo", &python::egg("demo"), &["sleeper", "-s", &format!("LOG_FILE={}", log.display())]);
    let mut runner = spawn(&mut command);
    wait_for_text(&log, "sleeper: sleeping for 60.0 seconds", &mut runner);

    helper::send_signal(runner.id(), helper::SIGINT);
    let status = wait_with_deadline(&mut runner);
    assert_eq!(status.code(), Some(0), "log: {}", fs::read_to_string(&log).unwrap_or_default());
    let result = sandbox.result();
    assert_eq!(result["exit_code"].as_i64(), Some(0));
    assert_eq!(result["stats"]["finish_reason"].as_str(), Some("shutdown"));
}

#[test]
fn sigkill_of_the_crawl_process_is_recorded_as_signal_9() {
    let sandbox = Sandbox::new();
    let log = sandbox.path("stubborn.log");
    let mut command =
        sandbox.crawl("demo", &python::egg("demo"), &["stubborn", "-s", &format!("LOG_FILE={}", log.display())]);
    let mut runner = spawn(&mut command);
    wait_for_text(&log, "stubborn: sleeping for 60.0 seconds", &mut runner);

    let crawl = child_of(runner.id());
    helper::send_signal(crawl, helper::SIGKILL);
    let status = wait_with_deadline(&mut runner);
    assert_eq!(status.signal(), Some(9), "the runner dies of the crawl's signal");
    let result = sandbox.result();
    assert!(result["exit_code"].is_null());
    assert_eq!(result["signal"].as_i64(), Some(9));
    assert!(result["stats"].is_null());
}

// ------------------------------------------------------------------ processes

fn spawn(command: &mut Command) -> Child {
    command.stdout(Stdio::null()).stderr(Stdio::null());
    command.spawn().unwrap_or_else(|e| panic!("spawn {command:?}: {e}"))
}

/// Polls `path` until it contains `text`, failing early if `child` exits.
fn wait_for_text(path: &Path, text: &str, child: &mut Child) {
    let deadline = Instant::now() + DEADLINE;
    while !fs::read_to_string(path).unwrap_or_default().contains(text) {
        if let Some(status) = child.try_wait().expect("poll the runner") {
            panic!(
                "the runner exited ({status}) before logging {text:?}: {}",
                fs::read_to_string(path).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no {text:?} in {} within {DEADLINE:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_with_deadline(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("poll the runner") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the runner did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The one child process of `parent`, found through `/proc/<pid>/stat`.
fn child_of(parent: u32) -> u32 {
    let children: Vec<u32> = fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid).ok() == Some(parent))
        .collect();
    assert_eq!(children.len(), 1, "expected one child of {parent}, found {children:?}");
    children[0]
}

fn parent_of(pid: u32) -> io::Result<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may contain spaces: skip past it.
    let after_name = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or_default();
    after_name.split(' ').nth(1).and_then(|ppid| ppid.parse().ok()).ok_or_else(|| io::Error::other("malformed stat"))
}
