//! Job stats: what finished crawls did, in `listjobs.json`, `status.json`, `/jobs` and
//! LogParser's files, and `/jobs` as ScrapydWeb's regex reads it.

use crate::helper::scene::Scene;
use crate::helper::{Daemon, python, wait_until};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

fn keys(object: &Value) -> Vec<&str> {
    object.as_object().expect("a JSON object").keys().map(String::as_str).collect()
}

/// Fetches a file under `/logs/` as JSON, once it exists.
fn logs_json(daemon: &Daemon, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let found = wait_until(Duration::from_secs(30), || {
        let reply = daemon.get(path);
        last = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        reply.status == 200 && ready(&last)
    });
    assert!(found, "{path} never had what was expected: {last}");
    last
}

#[test]
fn finished_jobs_tell_what_the_crawl_did_everywhere() {
    // Running crawls' LogParser files are refreshed every poll_interval.
    let scene = Scene::start("poll_interval = 0.2\n");
    let daemon = &scene.daemon;
    let pages = scene.pages();

    // status.json: stock's keys, then ours.
    let status = daemon.get(&format!("/status.json?job={}&project=demo", scene.finished)).ok();
    assert_eq!(
        keys(&status),
        [
            "currstate",
            "status",
            "node_name",
            "outcome",
            "exit_code",
            "signal",
            "items_scraped",
            "pages_crawled",
            "errors",
            "finish_reason"
        ]
    );
    assert_eq!(
        (status["items_scraped"].as_u64(), status["pages_crawled"].as_u64()),
        (Some(pages as u64), Some(pages as u64))
    );
    assert_eq!((status["errors"].as_u64(), status["finish_reason"].as_str()), (Some(0), Some("finished")));
    // Without a project, and for jobs that are not finished, stock's keys only.
    let anywhere = daemon.get(&format!("/status.json?job={}", scene.finished)).ok();
    assert_eq!(anywhere["items_scraped"], pages);
    assert_eq!(
        keys(&daemon.get(&format!("/status.json?job={}", scene.running)).ok()),
        ["currstate", "status", "node_name"]
    );

    // LogParser's files, served under /logs/ as ScrapydWeb fetches them.
    let job_file = logs_json(daemon, &format!("/logs/demo/follow/{}.json", scene.finished), |v| v.is_object());
    assert_eq!(job_file["logparser_version"], "0.8.4");
    assert_eq!((job_file["pages"].as_u64(), job_file["items"].as_u64()), (Some(pages as u64), Some(pages as u64)));
    assert_eq!(job_file["finish_reason"], "finished");
    assert_eq!(job_file["shutdown_reason"], "N/A");
    assert_eq!(job_file["crawler_stats"]["item_scraped_count"], pages);
    assert_eq!(job_file["crawler_stats"]["source"], "log");
    assert!(job_file["tail"].as_str().unwrap().contains("Spider closed (finished)"), "{job_file}");
    assert!(job_file["latest_matches"]["scrapy_version"].as_str().unwrap().starts_with('2'), "{job_file}");
    let log = std::fs::read(daemon.path().join(format!("logs/demo/follow/{}.log", scene.finished))).unwrap();
    assert_eq!(job_file["size"].as_u64(), Some(log.len() as u64));
    for category in ["critical_logs", "error_logs", "warning_logs", "redirect_logs", "retry_logs", "ignore_logs"] {
        assert!(job_file["log_categories"][category]["count"].is_u64(), "{category}: {job_file}");
    }

    let stats = logs_json(daemon, "/logs/stats.json", |v| v["datas"]["demo"]["follow"].is_object());
    assert_eq!((stats["status"].as_str(), stats["logparser_version"].as_str()), (Some("ok"), Some("0.8.4")));
    let entry = &stats["datas"]["demo"]["follow"][&scene.finished];
    assert_eq!((entry["pages"].as_u64(), entry["items"].as_u64()), (Some(pages as u64), Some(pages as u64)));
    assert_eq!(
        entry["json_url"].as_str().map(|u| u.ends_with(&format!("/logs/demo/follow/{}.json", scene.finished))),
        Some(true)
    );

    // /jobs: our two columns after stock's, filled for finished jobs only.
    let page = daemon.get("/jobs").text();
    assert!(
        page.contains(
            "<th>Cancel</th>\n                <th>Items scraped</th>\n                <th>Pages crawled</th>\n"
        ),
        "{page}"
    );
    for (class, value) in [("items-scraped", pages), ("pages-crawled", pages)] {
        assert_eq!(page.matches(&format!("<td class=\"{class}\">{value}</td>\n")).count(), 1, "{page}");
    }
    assert_eq!(page.matches("<td class=\"items-scraped\"></td>").count(), 2, "pending and running: {page}");

    // The running crawl has its files too, from its log so far (LogStats' first line: 0 pages).
    let running_url = format!("/logs/demo/sleeper/{}.json", scene.running);
    let running = logs_json(daemon, &running_url, |v| v["tail"].as_str().is_some_and(|t| t.contains("sleeping for")));
    assert_eq!((running["pages"].as_u64(), running["items"].as_u64()), (Some(0), Some(0)), "{running}");
    assert_eq!(
        (running["finish_reason"].as_str(), running["crawler_stats"].as_object().map(|s| s.len())),
        (Some("N/A"), Some(0))
    );
    assert!(running["tail"].as_str().unwrap().contains("sleeping for"), "{running}");
    let stats = logs_json(daemon, "/logs/stats.json", |v| v["datas"]["demo"]["sleeper"].is_object());
    assert_eq!(stats["datas"]["demo"]["sleeper"][&scene.running]["finish_reason"], "N/A");

    // A cancelled crawl: Scrapy's reason is `shutdown`, LogParser's the signal it received.
    daemon.post_form("/cancel.json", &[("project", b"demo"), ("job", scene.running.as_bytes())]).ok();
    scene.wait_state(&scene.running, "finished");
    let cancelled = scene.finished_entry(&scene.running);
    assert_eq!(
        (cancelled["outcome"].as_str(), cancelled["finish_reason"].as_str()),
        (Some("cancelled"), Some("shutdown"))
    );
    assert!(cancelled["pages_crawled"].as_u64().is_some_and(|n| n > 0), "{cancelled}");
    let job = scene.running.clone();
    let stats =
        logs_json(daemon, "/logs/stats.json", |v| v["datas"]["demo"]["sleeper"][&job]["finish_reason"] == "shutdown");
    let entry = &stats["datas"]["demo"]["sleeper"][&scene.running];
    assert_eq!(entry["shutdown_reason"], "Received SIGINT", "{entry}");
    assert!(stats["datas"]["demo"]["follow"][&scene.finished].is_object(), "other jobs stay: {stats}");
}

/// ScrapydWeb 1.6's row regex (`views/dashboard/jobs.py`, also `utils/poll.py`), verbatim, run by
/// Python over a `/jobs` page: a JSON list of the rows it finds, as ScrapydWeb names the groups.
const SCRAPYDWEB_ROWS: &str = r#"
import json, re, sys
JOB_PATTERN = re.compile(r"""
                            <tr>\s*
                                <td>(?P<Project>.*?)</td>\s*
                                <td>(?P<Spider>.*?)</td>\s*
                                <td>(?P<Job>.*?)</td>\s*
                                (?:<td>(?P<PID>.*?)</td>\s*)?
                                (?:<td>(?P<Start>.*?)</td>\s*)?
                                (?:<td>(?P<Runtime>.*?)</td>\s*)?
                                (?:<td>(?P<Finish>.*?)</td>\s*)?
                                (?:<td>(?P<Log>.*?)</td>\s*)?
                                (?:<td>(?P<Items>.*?)</td>\s*)?
                                [\w\W]*?  # Temp support for Scrapyd v1.3.0 (not released)
                            </tr>
                          """, re.X)
JOB_KEYS = ['project', 'spider', 'job', 'pid', 'start', 'runtime', 'finish', 'href_log', 'href_items']
text = sys.stdin.read()
assert re.search(r'<h1>Jobs</h1>', text)
text = re.sub(r'<thead>.*?</thead>', '', text, flags=re.S)
print(json.dumps([dict(zip(JOB_KEYS, job)) for job in re.findall(JOB_PATTERN, text)]))
"#;

/// The rows ScrapydWeb reads from a `/jobs` page.
fn scrapydweb_rows(page: &str) -> Vec<Value> {
    use std::io::Write;
    let mut child = Command::new(python::python())
        .args(["-c", SCRAPYDWEB_ROWS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run Python");
    child.stdin.take().expect("stdin").write_all(page.as_bytes()).expect("write the page");
    let output = child.wait_with_output().expect("Python ends");
    assert!(output.status.success(), "the regex script failed on:\n{page}");
    serde_json::from_slice(&output.stdout).expect("JSON rows")
}

/// Checks the rows of the scene's `/jobs` as ScrapydWeb infers states from them: no Start is
/// pending, Start without Finish is running, Finish is finished; and the Items group holds stock's
/// Items cell or nothing, never one of our columns.
fn check_rows(scene: &Scene, page: &str, items_column: bool) {
    let rows = scrapydweb_rows(page);
    let row = |job: &str| rows.iter().find(|r| r["job"] == job).unwrap_or_else(|| panic!("no row for {job}: {rows:?}"));
    assert_eq!(rows.len(), 3, "{rows:?}\n{page}");
    let pending = row(&scene.pending);
    assert_eq!((pending["start"].as_str(), pending["pid"].as_str()), (Some(""), Some("")), "{pending}");
    let running = row(&scene.running);
    assert!(running["pid"].as_str().unwrap().parse::<u32>().is_ok(), "{running}");
    assert_eq!(running["start"].as_str().unwrap().len(), "2026-11-25 04:16:26".len(), "{running}");
    assert_eq!(running["finish"], "");
    let finished = row(&scene.finished);
    assert_eq!(finished["finish"].as_str().unwrap().len(), "2026-11-25 04:16:26".len(), "{finished}");
    assert!(finished["href_log"].as_str().unwrap().contains(&format!("/logs/demo/follow/{}.log", scene.finished)));
    for r in [pending, running, finished] {
        assert_eq!(r["project"], "demo");
        let items = r["href_items"].as_str().unwrap();
        if items_column && r == finished {
            assert!(items.contains(&format!("/items/demo/follow/{}.jl", scene.finished)), "{r}");
        } else {
            // Empty, or (for a running crawl that already wrote items) stock's link.
            assert!(items.is_empty() || items.contains("/items/demo/"), "our columns stay out of Items: {r}");
        }
    }
}

#[test]
fn scrapydweb_reads_every_row_of_the_jobs_page() {
    let scene = Scene::start("items_dir = items\n");
    check_rows(&scene, &scene.daemon.get("/jobs").text(), true);

    // Without items and without the cancel button, our first cell would be the next one after
    // Log: its class keeps ScrapydWeb from taking it for Items. A second instance on the same
    // directory, with no slot of its own, serves that page.
    let reader = Daemon::start_reusing(scene.daemon.path(), "max_proc = -1\n[services]\ncancel.json =\n");
    let page = reader.get("/jobs").text();
    assert!(!page.contains("<th>Cancel</th>") && !page.contains("<th>Items</th>"), "{page}");
    check_rows(&scene, &page, false);
}
