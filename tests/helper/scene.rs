//! A daemon with one job in each state, for the tests that look at pages as people and UIs do.
//!
//! With `max_proc = 1`: a `follow` crawl of the local [`Site`] has finished (one item per page),
//! a `sleeper` runs (for two minutes, unless cancelled), and an `args` job waits for the slot.
//! Dropping the scene kills the crawls it started (they outlive the daemon by design).

use super::site::{PAGES, Site};
use super::{Daemon, python, wait_until};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// How long a crawl may take to reach a state.
const DEADLINE: Duration = Duration::from_secs(60);

pub struct Scene {
    pub daemon: Daemon,
    pub site: Site,
    /// The finished `follow` job: it scraped and crawled [`PAGES`]`.len()` pages.
    pub finished: String,
    /// The running `sleeper` job.
    pub running: String,
    /// The pending `args` job.
    pub pending: String,
    crawls_dir: PathBuf,
}

impl Scene {
    /// Sets the scene on a daemon configured by `conf` (which must leave `max_proc` alone).
    pub fn start(conf: &str) -> Scene {
        let site = Site::start();
        let daemon = Daemon::start(&format!("max_proc = 1\n{conf}"));
        let crawls_dir = daemon.path().canonicalize().unwrap_or_else(|_| daemon.path().to_path_buf());
        daemon.add_version("demo", "r1", &python::egg("demo")).ok();
        let mut scene =
            Scene { daemon, site, finished: String::new(), running: String::new(), pending: String::new(), crawls_dir };

        let url = scene.site.url("/");
        scene.finished = scene.schedule(&[("spider", "follow"), ("url", &url), ("jobid", "crawl-1")]);
        scene.wait_state(&scene.finished, "finished");
        scene.running = scene.schedule(&[("spider", "sleeper"), ("seconds", "120"), ("jobid", "sleep-1")]);
        let log = scene.daemon.path().join(format!("logs/demo/sleeper/{}.log", scene.running));
        let sleeping = wait_until(DEADLINE, || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("sleeping for")));
        assert!(sleeping, "the sleeper did not start: {}", scene.listjobs());
        scene.pending = scene.schedule(&[("spider", "args"), ("jobid", "wait-1")]);
        scene.wait_state(&scene.pending, "pending");
        assert_eq!(scene.state(&scene.running), "running");
        scene
    }

    fn schedule(&self, fields: &[(&str, &str)]) -> String {
        let mut form: Vec<(&str, &[u8])> = vec![("project", b"demo")];
        form.extend(fields.iter().map(|(name, value)| (*name, value.as_bytes())));
        let answer = self.daemon.post_form("/schedule.json", &form).ok();
        answer["jobid"].as_str().expect("a job id").to_string()
    }

    pub fn listjobs(&self) -> Value {
        self.daemon.get("/listjobs.json").ok()
    }

    /// `status.json`'s `currstate` of a job.
    pub fn state(&self, job: &str) -> String {
        self.daemon.get(&format!("/status.json?job={job}&project=demo")).ok()["currstate"]
            .as_str()
            .unwrap_or("null")
            .to_string()
    }

    /// Waits until the job is in `state`.
    pub fn wait_state(&self, job: &str, state: &str) {
        let reached = wait_until(DEADLINE, || self.state(job) == state);
        assert!(reached, "job {job} did not become {state}: {}", self.listjobs());
    }

    /// The job's entry in `listjobs.json`'s `finished` list.
    pub fn finished_entry(&self, job: &str) -> Value {
        let list = self.listjobs();
        list["finished"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["id"] == job).cloned())
            .unwrap_or_else(|| panic!("job {job} is not finished: {list}"))
    }

    /// How many pages (and items) the finished crawl had.
    pub fn pages(&self) -> usize {
        PAGES.len()
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        // The crawls run in the daemon's directory; kill what still runs there.
        let Ok(processes) = std::fs::read_dir("/proc") else { return };
        for process in processes.flatten() {
            let Some(pid) = process.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
            if std::fs::read_link(process.path().join("cwd")).is_ok_and(|cwd| cwd == self.crawls_dir) {
                // SAFETY: kill(2) only reads its two integer arguments.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}
