//! How a crawl is started: stock's command line, environment and files.
//!
//! ```text
//! <python> -m <runner> crawl <spider> -s K=V... [-s LOG_FILE=..] [-s FEEDS=..] [-s JOBDIR=..]
//!          -a _job=<id> -a k=v... [-a _version=<v>]
//! ```
//!
//! with `SCRAPY_PROJECT`, `SCRAPYD_EGG_VERSION` (when `_version` was given) and
//! `SCRAPY_SETTINGS_MODULE` (for `[settings]` projects) added to the daemon's environment. Log and
//! item files are rotated (`jobs_to_keep`) before the new ones exist, exactly as stock does.

use crate::app::App;
use crate::config::Config;
use crate::eggs::StoredEgg;
use crate::json::to_python_json;
use crate::spool::records::PendingJob;
use indexmap::IndexMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Everything needed to start a crawl.
#[derive(Debug)]
pub struct LaunchPlan {
    pub command: std::process::Command,
    /// The job's log file, which also receives the process's stdout and stderr.
    pub log_file: Option<PathBuf>,
}

/// Prepares a crawl's files and command. Blocking: it creates directories and rotates files.
pub fn plan(app: &App, job: &PendingJob, egg: Option<&StoredEgg>, result_file: &Path) -> Result<LaunchPlan, String> {
    let config = &app.config;
    for (what, name) in [("project", &job.project), ("spider", &job.spider), ("job", &job.id)] {
        if name.is_empty() || name.contains(['/', '\\', '\0']) || name == ".." {
            return Err(format!("DirectoryTraversalError: unsafe {what} name {name:?}"));
        }
    }
    let mut settings = job.settings.clone();
    let mut log_file = None;
    if let Some(logs_dir) = &config.logs_dir {
        let path = prepare_file(logs_dir, job, "log", config.jobs_to_keep)?;
        settings.insert("LOG_FILE".into(), path.display().to_string());
        log_file = Some(path);
    }
    if !config.items_dir.is_empty() {
        settings.insert("FEEDS".into(), feeds(config, job)?);
    }
    if let Some(jobs_dir) = &config.jobs_dir {
        let dir = jobs_dir.join(&job.project).join(&job.spider).join(&job.id);
        settings.insert("JOBDIR".into(), dir.display().to_string());
    }

    let version_env = job.version.as_deref();
    let mut command = app.runner.command(&job.project, egg.map(|e| e.path.as_path()), version_env).into_std();
    command.arg("crawl").arg(&job.spider);
    for (name, value) in &settings {
        command.arg("-s").arg(format!("{name}={value}"));
    }
    command.arg("-a").arg(format!("_job={}", job.id));
    for (name, value) in &job.args {
        command.arg("-a").arg(format!("{name}={value}"));
    }
    if let Some(version) = &job.version {
        command.arg("-a").arg(format!("_version={version}"));
    }
    if let Some(module) = app.settings_module(&job.project) {
        command.env("SCRAPY_SETTINGS_MODULE", module);
    }
    command.env("SCRAPYD_RS_RESULT", result_file);
    Ok(LaunchPlan { command, log_file })
}

/// `<dir>/<project>/<spider>/<job>.<extension>`, with its directory created and old files rotated.
fn prepare_file(dir: &Path, job: &PendingJob, extension: &str, jobs_to_keep: i64) -> Result<PathBuf, String> {
    let parent = dir.join(&job.project).join(&job.spider);
    fs::create_dir_all(&parent).map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
    rotate(&parent, jobs_to_keep);
    Ok(parent.join(format!("{}.{extension}", job.id)))
}

/// Deletes the oldest files of a spider's directory, as stock's `jobs_to_keep` does: all but the
/// newest `keep` (so `keep + 1` exist once the new job's file appears); nothing when `keep` is 0;
/// and, quirk for quirk, only the oldest `-keep` when it is negative.
///
/// LogParser's `<job>.json` beside a `<job>.log` belongs to it: it is not counted (stock counts
/// it, so running LogParser halves the logs it keeps) and goes when its log goes. Temporary files
/// of writes in progress are not counted either.
pub fn rotate(dir: &Path, keep: i64) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|entry| !is_temporary(&entry.file_name()) && !is_log_companion(&entry.path()))
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .collect();
    files.sort();
    let delete = match keep {
        0 => 0,
        keep if keep > 0 => files.len().saturating_sub(keep as usize),
        keep => (keep.unsigned_abs() as usize).min(files.len()),
    };
    for (_, path) in &files[..delete] {
        let _ = fs::remove_file(path);
        if path.extension().is_some_and(|ext| ext == "log") {
            let _ = fs::remove_file(path.with_extension("json"));
        }
    }
}

/// Whether a file is one being written (see [`crate::fsutil`]: its name starts with `.tmp-`),
/// such as a LogParser file the daemon is replacing: it is not a job's file.
fn is_temporary(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b".tmp-")
}

/// Whether `path` is LogParser's `<job>.json` for a `<job>.log` in the same directory.
fn is_log_companion(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "json") && path.with_extension("log").exists()
}

/// The `FEEDS` setting: a JSON object with one URI, written as Python's `json.dumps` writes it.
fn feeds(config: &Config, job: &PendingJob) -> Result<String, String> {
    let name = format!("{}.jl", job.id);
    let uri = match config.items_local() {
        Some(dir) => file_uri(&prepare_file(&dir, job, "jl", config.jobs_to_keep)?),
        None => remote_items_uri(&config.items_dir, &job.project, &job.spider, &name),
    };
    let mut feeds = IndexMap::new();
    feeds.insert(uri, serde_json::json!({"format": "jsonlines"}));
    Ok(String::from_utf8(to_python_json(&feeds)).expect("JSON is UTF-8"))
}

/// `file:///` and the percent-quoted absolute path, as w3lib's `path_to_file_uri`.
fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file:///");
    for &byte in path.display().to_string().trim_start_matches('/').as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' | b'/' => uri.push(byte as char),
            _ => uri.push_str(&format!("%{byte:02X}")),
        }
    }
    uri
}

/// A remote `items_dir` URL with `/<project>/<spider>/<file>` appended to its path, keeping its
/// query and fragment.
fn remote_items_uri(items_dir: &str, project: &str, spider: &str, file: &str) -> String {
    let (before_fragment, fragment) = match items_dir.split_once('#') {
        Some((head, fragment)) => (head, Some(fragment)),
        None => (items_dir, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (before_fragment, None),
    };
    let separator = if base.ends_with('/') { "" } else { "/" };
    let mut uri = format!("{base}{separator}{project}/{spider}/{file}");
    if let Some(query) = query {
        uri.push('?');
        uri.push_str(query);
    }
    if let Some(fragment) = fragment {
        uri.push('#');
        uri.push_str(fragment);
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_items_keep_query_and_fragment() {
        assert_eq!(
            remote_items_uri("https://host.example/path?query=value#fragment", "p1", "s1", "j1.jl"),
            "https://host.example/path/p1/s1/j1.jl?query=value#fragment"
        );
        assert_eq!(remote_items_uri("s3://bucket/dir/", "p", "s", "j.jl"), "s3://bucket/dir/p/s/j.jl");
    }

    #[test]
    fn file_uris_are_percent_quoted() {
        assert_eq!(file_uri(Path::new("/tmp/a b/j.jl")), "file:///tmp/a%20b/j.jl");
    }

    #[test]
    fn rotation_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            let path = dir.path().join(name);
            fs::write(&path, b"x").unwrap();
            let time = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
            fs::File::options().write(true).open(&path).unwrap().set_modified(time).unwrap();
        }
        let names = || {
            let mut names: Vec<String> =
                fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            names.sort();
            names
        };
        rotate(dir.path(), 0);
        assert_eq!(names(), ["a", "b", "c", "d"]);
        rotate(dir.path(), -1);
        assert_eq!(names(), ["b", "c", "d"]);
        rotate(dir.path(), 2);
        assert_eq!(names(), ["c", "d"]);
    }

    #[test]
    fn logparser_files_are_not_counted_and_go_with_their_log() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["a.log", "a.json", "b.log", "b.json", "c.log", "stats.json", ".tmp-x"].iter().enumerate() {
            let path = dir.path().join(name);
            fs::write(&path, b"x").unwrap();
            let time = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
            fs::File::options().write(true).open(&path).unwrap().set_modified(time).unwrap();
        }
        rotate(dir.path(), 3);
        let mut names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        // Four files count (three logs and a JSON file of no log); the oldest log goes with its JSON.
        assert_eq!(names, [".tmp-x", "b.json", "b.log", "c.log", "stats.json"]);
    }
}
