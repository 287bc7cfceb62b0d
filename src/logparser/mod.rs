//! LogParser's files, written by the daemon: `logs/stats.json` and `logs/<p>/<s>/<job>.json`.
//!
//! ScrapydWeb shows a job's pages, items, log categories and progress chart from the files
//! [LogParser](https://github.com/my8100/logparser) 0.8.4 writes into Scrapyd's logs directory,
//! which Scrapyd serves under `/logs/`. Without them it downloads and parses whole logs itself,
//! the cause of its CPU and memory complaints. So when a job finishes, the daemon writes both, in
//! the format ScrapydWeb 1.6 reads (the same keys, and `logparser_version` equal to the version
//! ScrapydWeb checks for), from the stats the runner recorded and one pass over the log
//! ([`scan`]).
//!
//! Every file is replaced atomically (temporary file and rename), so a reader never sees half of
//! one. `stats.json` is shared by every instance serving the data directory: it is read, changed
//! and replaced under a lock file in the spool, and entries whose log is gone (rotated away by
//! `jobs_to_keep`, or deleted) are dropped on the way.

pub mod scan;

use crate::config::Config;
use crate::fsutil;
use crate::spool::records::{FinishedJob, python_timedelta};
use chrono::{Local, NaiveDateTime, TimeZone};
use scan::{CATEGORIES, LogScan, LogScanner};
use serde_json::{Map, Value, json};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The LogParser version the files claim: ScrapydWeb 1.6 ignores files of any other version.
pub const LOGPARSER_VERSION: &str = "0.8.4";

/// What LogParser writes where it has no value.
const NA: &str = "N/A";

/// Where the files go, and how they name themselves.
#[derive(Debug, Clone)]
pub struct StatsFiles {
    logs_dir: PathBuf,
    /// `host:port` in `json_url`s, as LogParser's `SCRAPYD_SERVER`.
    server: String,
    /// Serialises updates of `stats.json` across instances.
    lock_path: PathBuf,
}

impl StatsFiles {
    /// `None` when logs are off (`logs_dir` empty): there is nowhere to write, nor logs to parse.
    pub fn new(config: &Config, lock_path: PathBuf) -> Option<StatsFiles> {
        let logs_dir = config.logs_dir.clone()?;
        // As LogParser's `SCRAPYD_SERVER` (default `127.0.0.1:6800`): an address to reach the
        // daemon at, not a wildcard it listens on.
        let host = match config.bind_address.as_str() {
            "" | "0.0.0.0" | "::" => "127.0.0.1",
            address => address,
        };
        // Unix socket only (no TCP port): stock's default port, where LogParser would look.
        let port = if config.http_port == 0 { 6800 } else { config.http_port };
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
        Some(StatsFiles { logs_dir, server: format!("{host}:{port}"), lock_path })
    }

    /// Writes a finished job's `<job>.json` and its entry in `stats.json`, once any update for
    /// its run (`running`, if this instance supervised it) is done, so nothing older overwrites
    /// them. A job without a log (it never started) has nothing for LogParser to show and is
    /// skipped. Blocking: reads the whole log.
    pub fn record(&self, job: &FinishedJob, running: Option<&RunningLog>) -> io::Result<()> {
        let _updates = running.map(RunningLog::lock);
        let name = JobName { project: &job.project, spider: &job.spider, id: &job.id };
        let file = match File::open(self.log_path(&name)) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        let scan = scan::scan(BufReader::new(file))?;
        let end = Some(job.end_time.as_str());
        let document = self.write_job_file(&name, &scan, job.stats.as_ref().and_then(Value::as_object), end)?;
        if !self.log_path(&name).exists() {
            // jobs_to_keep rotated the log away meanwhile: its file goes with it.
            let _ = fs::remove_file(self.log_path(&name).with_extension("json"));
            return Ok(());
        }
        self.update_summary(&[(name, document)])
    }

    /// Brings the files of running crawls up to date with what their logs say now, reading only
    /// what was appended since the last update. Crawls whose log did not grow are left alone;
    /// `stats.json` is rewritten once for all the others.
    pub fn record_running(&self, crawls: &[(JobName<'_>, &RunningLog)]) -> io::Result<()> {
        let mut updates = Vec::new();
        let mut guards = Vec::new();
        for (name, running) in crawls {
            // Held until stats.json is written: the crawl's final record waits for it.
            let mut state = running.lock();
            if running.ended.load(Ordering::SeqCst) {
                continue;
            }
            let mut log = match File::open(self.log_path(name)) {
                Ok(file) => file,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            if !state.scanner.catch_up(&mut log)? && state.written {
                continue;
            }
            let document = self.write_job_file(name, &state.scanner.scan(), None, None)?;
            state.written = true;
            updates.push((name.clone(), document));
            guards.push(state);
        }
        if updates.is_empty() { Ok(()) } else { self.update_summary(&updates) }
    }

    fn log_path(&self, job: &JobName<'_>) -> PathBuf {
        self.logs_dir.join(job.project).join(job.spider).join(format!("{}.log", job.id))
    }

    /// Writes `<job>.json` beside the log and returns what it says.
    fn write_job_file(
        &self,
        job: &JobName<'_>,
        scan: &LogScan,
        stats: Option<&Map<String, Value>>,
        end_time: Option<&str>,
    ) -> io::Result<Map<String, Value>> {
        let log_path = self.log_path(job);
        let paths = Paths {
            json_path: log_path.with_file_name(format!("{}.json", job.id)),
            json_url: format!("http://{}/logs/{}/{}/{}.json", self.server, job.project, job.spider, job.id),
            log_path,
        };
        let document = job_document(stats, end_time, scan, &paths, Local::now().naive_local());
        fsutil::write_atomic(&paths.json_path, &serde_json::to_vec_pretty(&document)?)?;
        Ok(document)
    }

    /// Puts the jobs' summaries into `stats.json` and drops entries whose log is gone.
    fn update_summary(&self, jobs: &[(JobName<'_>, Map<String, Value>)]) -> io::Result<()> {
        let _lock = lock(&self.lock_path)?;
        let path = self.logs_dir.join("stats.json");
        let mut datas = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|mut stats| stats.get_mut("datas").map(Value::take))
                .and_then(|datas| if let Value::Object(datas) = datas { Some(datas) } else { None })
                .unwrap_or_default(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Map::new(),
            Err(err) => return Err(err),
        };
        for (job, document) in jobs {
            let summary: Map<String, Value> =
                SUMMARY_KEYS.iter().filter_map(|key| Some((key.to_string(), document.get(*key)?.clone()))).collect();
            let spiders = datas.entry(job.project.to_string()).or_insert_with(|| json!({}));
            if let Value::Object(spiders) = spiders {
                let entries = spiders.entry(job.spider.to_string()).or_insert_with(|| json!({}));
                if let Value::Object(entries) = entries {
                    entries.insert(job.id.to_string(), Value::Object(summary));
                }
            }
        }
        drop_gone_logs(&mut datas);
        let (time, timestamp) = now_and_timestamp(Local::now().naive_local());
        let stats = json!({
            "status": "ok",
            "datas": datas,
            "last_update_timestamp": timestamp,
            "last_update_time": time,
            "logparser_version": LOGPARSER_VERSION,
        });
        fsutil::write_atomic(&path, &serde_json::to_vec_pretty(&stats)?)
    }
}

/// A job, as LogParser's files name it.
#[derive(Debug, Clone)]
pub struct JobName<'a> {
    pub project: &'a str,
    pub spider: &'a str,
    pub id: &'a str,
}

/// What the daemon keeps of a running crawl's log between updates of its files, shared by the
/// supervisor (which marks the end) and the updates (which run off the async workers).
#[derive(Debug, Default)]
pub struct RunningLog {
    state: Mutex<RunningState>,
    /// Set when the crawl's process has ended: its final record is on its way, and no update
    /// may write after it.
    ended: AtomicBool,
}

#[derive(Debug, Default)]
struct RunningState {
    scanner: LogScanner,
    /// Whether the files were written since the crawl started.
    written: bool,
}

impl RunningLog {
    /// The crawl ended: later updates leave its files to the final record.
    pub fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }

    fn lock(&self) -> MutexGuard<'_, RunningState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The keys of a job's entry in `stats.json`, as LogParser keeps them (its `SIMPLIFIED_KEYS`
/// without `_head`).
const SUMMARY_KEYS: [&str; 14] = [
    "log_path",
    "json_path",
    "json_url",
    "size",
    "position",
    "status",
    "pages",
    "items",
    "first_log_time",
    "latest_log_time",
    "runtime",
    "shutdown_reason",
    "finish_reason",
    "last_update_time",
];

struct Paths {
    log_path: PathBuf,
    json_path: PathBuf,
    json_url: String,
}

fn lock(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    file.lock()?;
    Ok(file)
}

/// Removes the entries whose `log_path` no longer exists, and projects and spiders left empty.
fn drop_gone_logs(datas: &mut Map<String, Value>) {
    for spiders in datas.values_mut() {
        let Value::Object(spiders) = spiders else { continue };
        for jobs in spiders.values_mut() {
            let Value::Object(jobs) = jobs else { continue };
            jobs.retain(|_, entry| {
                entry.get("log_path").and_then(Value::as_str).is_some_and(|p| Path::new(p).exists())
            });
        }
        spiders.retain(|_, jobs| jobs.as_object().is_some_and(|jobs| !jobs.is_empty()));
    }
    datas.retain(|_, spiders| spiders.as_object().is_some_and(|spiders| !spiders.is_empty()));
}

/// A job's `<job>.json`: LogParser's keys in LogParser's order. Counts come from Scrapy's stats
/// when the runner recorded them at the end (LogParser prefers the stats dumped at the end of the
/// log too), everything else from the log; a running crawl has no stats yet.
fn job_document(
    stats: Option<&Map<String, Value>>,
    end_time: Option<&str>,
    scan: &LogScan,
    paths: &Paths,
    now: NaiveDateTime,
) -> Map<String, Value> {
    let stat = |key: &str| stats.and_then(|s| s.get(key)).and_then(Value::as_u64);
    // Scrapy leaves a counter out until it is first increased, so a recorded stats dict without
    // it means zero; without stats, the last `LogStats` line is the best there is.
    let count = |key: &str, from_log: Option<u64>| match stats {
        Some(_) => Some(stat(key).unwrap_or(0)),
        None => from_log,
    };
    let pages = count("response_received_count", scan.datas.iter().map(|d| d.1).max());
    let items = count("item_scraped_count", scan.datas.iter().map(|d| d.3).max());
    let (first, latest) = (scan.first_log_time.as_deref(), scan.latest_log_time.as_deref());
    let runtime = match (first.and_then(parse_time), latest.and_then(parse_time)) {
        (Some(first), Some(latest)) => python_timedelta(latest - first),
        _ => NA.to_string(),
    };
    let (now_text, now_timestamp) = now_and_timestamp(now);
    let head_lines = scan.head.lines().count();

    let mut latest_matches: Map<String, Value> =
        scan.latest_matches.iter().map(|(key, value)| (key.to_string(), json!(value))).collect();
    latest_matches.insert("latest_scrape".into(), json!(scan.latest_scrape));
    latest_matches.insert("latest_item".into(), json!(scan.latest_item));
    let line_timestamp = |key: &str| {
        latest_matches.get(key).and_then(Value::as_str).and_then(scan::timestamp).and_then(parse_time).map_or(0, epoch)
    };
    let latest_crawl_timestamp = line_timestamp("latest_crawl");
    let latest_scrape_timestamp = line_timestamp("latest_scrape");

    let mut categories = Map::new();
    for ((key, _), category) in CATEGORIES.iter().zip(&scan.categories) {
        let count = category_count_from_stats(key, stats).filter(|&n| n > 0).unwrap_or(category.count);
        categories.insert(key.to_string(), json!({"count": count, "details": category.details}));
    }

    let crawler_stats = match stats {
        Some(stats) => {
            let end = end_time.map(|t| t.get(..19).unwrap_or(t)).unwrap_or_default();
            let mut ordered = Map::new();
            // As LogParser labels the stats Scrapy dumps into the log when the spider closes,
            // which are the ones the runner recorded.
            ordered.insert("source".into(), json!("log"));
            ordered.insert("last_update_time".into(), json!(end));
            ordered.insert("last_update_timestamp".into(), json!(parse_time(end).map_or(0, epoch)));
            let mut keys: Vec<&String> = stats.keys().collect();
            keys.sort();
            for key in keys {
                ordered.insert(key.clone(), stats[key].clone());
            }
            Value::Object(ordered)
        }
        None => json!({}),
    };

    let mut doc = Map::new();
    doc.insert("log_path".into(), json!(paths.log_path.display().to_string()));
    doc.insert("json_path".into(), json!(paths.json_path.display().to_string()));
    doc.insert("json_url".into(), json!(paths.json_url));
    doc.insert("size".into(), json!(scan.size));
    doc.insert("position".into(), json!(scan.size));
    doc.insert("status".into(), json!("ok"));
    // LogParser keeps the head text here until it has all its lines, then their number.
    doc.insert("_head".into(), if head_lines < scan::HEAD_LINES { json!(scan.head) } else { json!(scan::HEAD_LINES) });
    doc.insert("head".into(), json!(scan.head));
    doc.insert("tail".into(), json!(scan.tail));
    doc.insert("first_log_time".into(), json!(first.unwrap_or(NA)));
    doc.insert("latest_log_time".into(), json!(latest.unwrap_or(NA)));
    doc.insert("runtime".into(), json!(runtime));
    doc.insert("first_log_timestamp".into(), json!(first.and_then(parse_time).map_or(0, epoch)));
    doc.insert("latest_log_timestamp".into(), json!(latest.and_then(parse_time).map_or(0, epoch)));
    doc.insert("datas".into(), json!(scan.datas));
    doc.insert("pages".into(), json!(pages));
    doc.insert("items".into(), json!(items));
    doc.insert("latest_matches".into(), Value::Object(latest_matches));
    doc.insert("latest_crawl_timestamp".into(), json!(latest_crawl_timestamp));
    doc.insert("latest_scrape_timestamp".into(), json!(latest_scrape_timestamp));
    doc.insert("log_categories".into(), Value::Object(categories));
    doc.insert("shutdown_reason".into(), json!(scan.shutdown_reason.as_deref().unwrap_or(NA)));
    let finish_reason = stats.and_then(|s| s.get("finish_reason")).and_then(Value::as_str).unwrap_or(NA);
    doc.insert("finish_reason".into(), json!(finish_reason));
    doc.insert("crawler_stats".into(), crawler_stats);
    doc.insert("last_update_time".into(), json!(now_text));
    doc.insert("last_update_timestamp".into(), json!(now_timestamp));
    doc.insert("logparser_version".into(), json!(LOGPARSER_VERSION));
    doc.insert("crawler_engine".into(), json!({}));
    doc
}

/// A category's count from Scrapy's stats, as LogParser takes it when it finds the stats dump.
fn category_count_from_stats(key: &str, stats: Option<&Map<String, Value>>) -> Option<u64> {
    let stats = stats?;
    let stat = |name: &str| stats.get(name).and_then(Value::as_u64);
    match key {
        "critical_logs" => stat("log_count/CRITICAL"),
        "error_logs" => stat("log_count/ERROR"),
        "warning_logs" => stat("log_count/WARNING"),
        "retry_logs" => stat("retry/count"),
        "ignore_logs" => stat("httperror/response_ignored_count"),
        "redirect_logs" => Some(
            stats
                .iter()
                .filter(|(name, _)| name.starts_with("downloader/response_status_count/3"))
                .filter_map(|(_, value)| value.as_u64())
                .sum(),
        ),
        _ => None,
    }
}

fn parse_time(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()
}

/// Seconds since the epoch of a local time, as Python's `time.mktime` gives them.
fn epoch(time: NaiveDateTime) -> i64 {
    Local.from_local_datetime(&time).earliest().map_or(0, |t| t.timestamp())
}

fn now_and_timestamp(now: NaiveDateTime) -> (String, i64) {
    (now.format("%Y-%m-%d %H:%M:%S").to_string(), epoch(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(stats: Option<Value>) -> FinishedJob {
        FinishedJob {
            stats,
            ..FinishedJob::for_tests("j1", "2026-11-25 04:09:07.000000", "2026-11-25 04:09:09.123456")
        }
    }

    const LOG: &str = "2026-11-25 04:09:08 [scrapy.utils.log] INFO: Scrapy 2.13.3 started (bot: demo)
2026-11-25 04:09:08 [scrapy.extensions.logstats] INFO: Crawled 0 pages (at 0 pages/min), scraped 0 items (at 0 items/min)
2026-11-25 04:09:08 [scrapy.spidermiddlewares.httperror] INFO: Ignoring response <404 http://127.0.0.1/m>: HTTP status code is not handled or not allowed
2026-11-25 04:09:09 [scrapy.core.engine] INFO: Spider closed (finished)
";

    fn files(dir: &Path) -> StatsFiles {
        StatsFiles { logs_dir: dir.join("logs"), server: "127.0.0.1:6800".into(), lock_path: dir.join("lock") }
    }

    #[test]
    fn a_finished_job_gets_logparsers_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        fs::create_dir_all(dir.path().join("logs/p/s")).unwrap();
        fs::write(dir.path().join("logs/p/s/j1.log"), LOG).unwrap();
        let stats = json!({"item_scraped_count": 5, "response_received_count": 7, "finish_reason": "finished",
            "httperror/response_ignored_count": 2, "downloader/response_status_count/301": 1});
        files.record(&job(Some(stats)), None).unwrap();

        let doc: Value = serde_json::from_slice(&fs::read(dir.path().join("logs/p/s/j1.json")).unwrap()).unwrap();
        assert_eq!((doc["pages"].as_u64(), doc["items"].as_u64()), (Some(7), Some(5)));
        assert_eq!(doc["finish_reason"], "finished");
        assert_eq!(doc["logparser_version"], LOGPARSER_VERSION);
        assert_eq!(doc["runtime"], "0:00:01");
        assert_eq!(doc["first_log_time"], "2026-11-25 04:09:08");
        assert_eq!(doc["size"].as_u64(), Some(LOG.len() as u64));
        assert_eq!(doc["log_categories"]["ignore_logs"]["count"], 2, "from the stats");
        assert_eq!(doc["log_categories"]["ignore_logs"]["details"].as_array().unwrap().len(), 1, "from the log");
        assert_eq!(doc["log_categories"]["redirect_logs"]["count"], 1);
        assert_eq!(doc["latest_matches"]["scrapy_version"], "2.13.3");
        assert_eq!(doc["crawler_stats"]["source"], "log");
        assert_eq!(doc["crawler_stats"]["last_update_time"], "2026-11-25 04:09:09");
        assert_eq!(doc["crawler_engine"], json!({}));
        let keys: Vec<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys[..6], ["log_path", "json_path", "json_url", "size", "position", "status"]);

        let stats: Value = serde_json::from_slice(&fs::read(dir.path().join("logs/stats.json")).unwrap()).unwrap();
        assert_eq!(stats["status"], "ok");
        assert_eq!(stats["logparser_version"], LOGPARSER_VERSION);
        let entry = &stats["datas"]["p"]["s"]["j1"];
        assert_eq!((entry["pages"].as_u64(), entry["items"].as_u64()), (Some(7), Some(5)));
        assert_eq!(entry.as_object().unwrap().len(), SUMMARY_KEYS.len());
        assert_eq!(entry["json_url"], "http://127.0.0.1:6800/logs/p/s/j1.json");
    }

    #[test]
    fn stats_json_keeps_other_jobs_and_drops_those_whose_log_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        fs::create_dir_all(dir.path().join("logs/p/s")).unwrap();
        for id in ["a", "b"] {
            fs::write(dir.path().join(format!("logs/p/s/{id}.log")), LOG).unwrap();
            files.record(&FinishedJob { id: id.into(), ..job(None) }, None).unwrap();
        }
        let read =
            || -> Value { serde_json::from_slice(&fs::read(dir.path().join("logs/stats.json")).unwrap()).unwrap() };
        let entry = &read()["datas"]["p"]["s"]["a"];
        // Without recorded stats, the counts come from the log's LogStats lines.
        assert_eq!((entry["pages"].as_u64(), entry["finish_reason"].as_str()), (Some(0), Some(NA)));
        assert!(read()["datas"]["p"]["s"]["b"].is_object());

        fs::remove_file(dir.path().join("logs/p/s/a.log")).unwrap();
        fs::create_dir_all(dir.path().join("logs/p/t")).unwrap();
        fs::write(dir.path().join("logs/p/t/c.log"), LOG).unwrap();
        files.record(&FinishedJob { id: "c".into(), spider: "t".into(), ..job(None) }, None).unwrap();
        let datas = &read()["datas"]["p"];
        assert!(datas["s"].get("a").is_none(), "{datas}");
        assert!(datas["s"]["b"].is_object() && datas["t"]["c"].is_object());
    }

    #[test]
    fn a_job_without_a_log_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        files(dir.path()).record(&job(None), None).unwrap();
        assert!(!dir.path().join("logs").exists());
    }
}
