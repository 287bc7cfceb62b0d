//! In-place migration from stock Scrapyd: its pending jobs (`dbs/<project>.db`) and finished jobs
//! (`dbs/jobs.db`) become scrapyd-rs jobs, once.
//!
//! Eggs, logs and items need nothing: scrapyd-rs serves stock's layout as it is. Stock's SQLite
//! files are read and never written ([`stock_db`]), so going back to stock stays possible. The
//! import runs at every start, before the supervisor dispatches anything, and by
//! `scrapyd-rs migrate`; the [`ledger`] makes it a no-op for files imported before and unchanged
//! since, and makes it exact when several instances start together or a start is killed
//! half-way.
//!
//! - [`stock_db`]: opening a stock file read-only, and what can be in the way.
//! - [`queue`]: reading a project's `spider_queue`.
//! - [`finished_jobs`]: reading `jobs.db`'s `finished_jobs`.
//! - [`fingerprint`]: the stable name of one row.
//! - [`ledger`]: what was imported, under a lock.
//! - [`import`]: one file into the spool.
//! - [`report`]: what was found, imported and skipped.

pub mod fingerprint;
pub mod finished_jobs;
pub mod import;
pub mod ledger;
pub mod queue;
pub mod report;
pub mod stock_db;

use crate::config::Config;
use crate::eggs::EggStore;
use crate::spool::Spool;
use crate::spool::finished::FinishedLog;
use crate::spool::index::JobIndex;
use crate::spool::records::now_ns;
use import::Importer;
use ledger::Ledger;
pub use report::Report;
use std::io;
use std::path::{Path, PathBuf};

/// Whether to import or only say what would be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Import,
    /// Reads the stock files and the ledger and imports nothing. (Loading the spool's index for
    /// the comparison still does the spool's usual housekeeping: stray temporary files, spares
    /// left by a crash.)
    DryRun,
}

/// Imports (or, in a dry run, looks at) every stock file in `dbs_dir` into the spool `index`
/// mirrors. Blocking; in [`Mode::Import`] it waits while another instance imports.
pub fn run(config: &Config, index: &JobIndex, mode: Mode) -> Report {
    let mut report = Report::new(&config.dbs_dir, mode == Mode::DryRun);
    if config.dbs_in_memory() {
        return report;
    }
    let files = match stock_files(&config.dbs_dir) {
        Ok(files) => files,
        Err(err) => {
            report.held_back = Some(format!("cannot list the directory: {err}"));
            return report;
        }
    };
    if files.is_empty() {
        return report;
    }
    if let Some(pid) = running_stock(&config.base_dir) {
        report.held_back = Some(format!(
            "stock Scrapyd is running in {} (pid {pid}, in twistd.pid) and may still change its queues; \
             stop it, then start scrapyd-rs again (or run `scrapyd-rs migrate`)",
            config.base_dir.display()
        ));
        return report;
    }
    let ledger = Ledger::new(&index.spool().internal("migrate"));
    let _lock = match mode {
        Mode::DryRun => None,
        Mode::Import => {
            let waiting =
                || tracing::info!("waiting for another instance to finish importing from {}", config.dbs_dir.display());
            match ledger.lock(waiting) {
                Ok(lock) => Some(lock),
                Err(err) => {
                    report.held_back = Some(format!("cannot take the import lock: {err}"));
                    return report;
                }
            }
        }
    };
    let eggs = EggStore::new(config.eggs_dir.clone());
    let deployed =
        |project: &str| config.settings_projects.iter().any(|(name, _)| name == project) || eggs.has_project(project);
    let mut importer = Importer {
        index,
        ledger: &ledger,
        node: &config.node_name,
        dry_run: mode == Mode::DryRun,
        deployed: &deployed,
        next_ns: now_ns(),
    };
    for path in files {
        report.sources.push(importer.source(&path));
    }
    report
}

/// [`run`] without a daemon (`scrapyd-rs migrate`): loads the spool's index itself. A dry run
/// imports nothing and never creates the spool.
pub fn run_alone(config: &Config, mode: Mode) -> io::Result<Report> {
    let spool = Spool::new(&config.spool_dir);
    let log = FinishedLog::new(&spool.internal("finished.jl"));
    let index = JobIndex::load(spool, log, config.finished_to_keep)?;
    Ok(run(config, &index, mode))
}

/// The `*.db` files of `dbs_dir`, by name; none if it does not exist.
fn stock_files(dbs_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dbs_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let is_db = entry.file_name().to_str().is_some_and(|name| name.ends_with(".db"));
        if is_db && entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// The pid of a stock Scrapyd running in `base_dir`, from the `twistd.pid` stock writes there
/// (unless started with another `--pidfile`), if that process is alive and is Scrapyd: one of
/// its arguments is the `scrapyd` script (`python .../bin/scrapyd`, `python -m scrapyd`), or
/// `twistd` with a `scrapyd.tac` (before 1.5).
fn running_stock(base_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(base_dir.join("twistd.pid")).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let is_scrapyd = cmdline.split(|&byte| byte == 0).any(|arg| {
        let name = arg.rsplit(|&byte| byte == b'/').next().unwrap_or(arg);
        matches!(name, b"scrapyd" | b"scrapyd.tac" | b"twistd")
    });
    is_scrapyd.then_some(pid)
}

/// A JSON value as Python's `str()` prints it, which is how stock passes a non-text argument
/// or setting to Scrapy (`-a name=<str(value)>`). Stock's `schedule.json` only ever stores text;
/// other values come from other writers of the queue.
pub fn python_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        serde_json::Value::Null => "None".into(),
        serde_json::Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() < 1e16 => format!("{float:.1}"),
            _ => number.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_as_python_prints_them() {
        let cases = [
            (json!("x"), "x"),
            (json!(true), "True"),
            (json!(null), "None"),
            (json!(3), "3"),
            (json!(2.0), "2.0"),
            (json!(0.5), "0.5"),
            (json!([1, "a"]), "[1,\"a\"]"),
        ];
        for (value, text) in cases {
            assert_eq!(python_text(&value), text, "{value}");
        }
    }

    /// A stock queue of `jobs` (id, priority) in `dbs/p.db`, written as stock 1.6 writes it.
    fn stock_queue(base: &Path, jobs: &[(&str, f64)]) {
        std::fs::create_dir_all(base.join("dbs")).unwrap();
        let conn = rusqlite::Connection::open(base.join("dbs/p.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spider_queue (id integer PRIMARY KEY, priority real key, message blob)",
        )
        .unwrap();
        for (id, priority) in jobs {
            let message = format!(r#"{{"settings": {{}}, "_job": "{id}", "name": "s"}}"#);
            conn.execute(
                "INSERT INTO spider_queue (priority, message) VALUES (?1, ?2)",
                (priority, message.into_bytes()),
            )
            .unwrap();
        }
    }

    fn pending_ids(config: &Config) -> Vec<String> {
        let spool = Spool::new(&config.spool_dir);
        let names = spool.pending_names("p").unwrap();
        names.iter().map(|name| crate::spool::job_id_of_pending_name(name).unwrap().to_string()).collect()
    }

    #[test]
    fn a_crash_between_writing_jobs_and_recording_them_imports_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_tests(dir.path());
        stock_queue(dir.path(), &[("a", 0.0), ("b", 1.0), ("c", 0.0)]);
        let report = run_alone(&config, Mode::Import).unwrap();
        assert_eq!(report.totals(), (3, 0));
        assert_eq!(pending_ids(&config), ["b", "a", "c"], "stock's pop order");

        // As if killed after the jobs were written but before two of them were recorded.
        let ledger = config.spool_dir.join(".scrapyd-rs/migrate");
        std::fs::remove_file(ledger.join("p.db.done")).unwrap();
        let journal = std::fs::read_to_string(ledger.join("p.db.imported")).unwrap();
        std::fs::write(ledger.join("p.db.imported"), journal.lines().next().unwrap().to_string() + "\n").unwrap();
        let report = run_alone(&config, Mode::Import).unwrap();
        let source = &report.sources[0];
        assert_eq!((source.pending.len(), source.earlier, source.present.len()), (0, 1, 2));
        assert_eq!(pending_ids(&config), ["b", "a", "c"]);

        // Unchanged since: not even opened.
        let report = run_alone(&config, Mode::Import).unwrap();
        assert!(matches!(report.sources[0].state, report::SourceState::Unchanged));

        // Stock ran `b` and `c` (one recorded before the crash, one after), and a new `d` was
        // scheduled there: `d` is imported, `b` and `c` withdrawn.
        let conn = rusqlite::Connection::open(dir.path().join("dbs/p.db")).unwrap();
        conn.execute("DELETE FROM spider_queue WHERE message LIKE '%\"b\"%' OR message LIKE '%\"c\"%'", ()).unwrap();
        drop(conn);
        stock_queue(dir.path(), &[("d", 5.0)]);
        let dry = run_alone(&config, Mode::DryRun).unwrap();
        assert_eq!((dry.sources[0].pending.len(), dry.sources[0].withdrawn.len()), (1, 2));
        assert_eq!(pending_ids(&config), ["b", "a", "c"], "a dry run changes nothing");
        let report = run_alone(&config, Mode::Import).unwrap();
        let mut withdrawn = report.sources[0].withdrawn.clone();
        withdrawn.sort();
        assert_eq!(withdrawn, ["b", "c"]);
        assert_eq!(report.sources[0].earlier, 1);
        assert_eq!(pending_ids(&config), ["d", "a"]);
    }

    #[test]
    fn only_a_live_scrapyd_process_holds_the_import_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(running_stock(dir.path()), None);
        std::fs::write(dir.path().join("twistd.pid"), format!("{}\n", std::process::id())).unwrap();
        assert_eq!(running_stock(dir.path()), None, "this process is not Scrapyd");
        // A shell whose script is named `scrapyd` stands for `python .../bin/scrapyd`.
        let script = dir.path().join("scrapyd");
        std::fs::write(&script, "sleep 30\nexit 0\n").unwrap();
        let mut sleeper = std::process::Command::new("sh").arg(&script).spawn().unwrap();
        std::fs::write(dir.path().join("twistd.pid"), format!("{}\n", sleeper.id())).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while running_stock(dir.path()).is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(running_stock(dir.path()), Some(sleeper.id()), "a process running a scrapyd script");
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        std::fs::write(dir.path().join("twistd.pid"), "4194305\n").unwrap();
        assert_eq!(running_stock(dir.path()), None, "no such process");
    }
}
