//! `log_url` and `items_url`: links to a job's files, shown only when the file exists.
//!
//! Stock checks two files per job, which for a long history is most of `listjobs`' time. Jobs of
//! the same spider share a directory, so we list each spider directory once per answer, and look
//! a job up in that listing by its id, without building a path or a file name per job (for
//! 100,000 finished jobs that was a tenth of `listjobs.json`'s time).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Answers "does this job have a log / an items file?" for one response.
#[derive(Debug)]
pub struct Links {
    logs: Option<Files>,
    items: Option<Files>,
}

impl Links {
    pub fn new(config: &crate::config::Config) -> Self {
        Links {
            logs: config.logs_dir.clone().map(|root| Files::new("logs", root, ".log")),
            items: config.items_local().map(|root| Files::new("items", root, ".jl")),
        }
    }

    /// `/logs/<project>/<spider>/<job>.log` when that file exists.
    pub fn log_url(&mut self, project: &str, spider: &str, job: &str) -> Option<String> {
        self.logs.as_mut()?.url(project, spider, job)
    }

    /// `/items/<project>/<spider>/<job>.jl` when items are local and that file exists.
    pub fn items_url(&mut self, project: &str, spider: &str, job: &str) -> Option<String> {
        self.items.as_mut()?.url(project, spider, job)
    }
}

/// One kind of job file (`<root>/<project>/<spider>/<job><extension>`), listed as needed.
#[derive(Debug)]
struct Files {
    /// The URL's first segment.
    base: &'static str,
    root: PathBuf,
    extension: &'static str,
    /// Per project, per spider: the job ids that have a file. Nested, so a job is looked up by
    /// borrowed names, with no key built per job.
    listed: HashMap<String, HashMap<String, HashSet<String>>>,
}

impl Files {
    fn new(base: &'static str, root: PathBuf, extension: &'static str) -> Files {
        Files { base, root, extension, listed: HashMap::new() }
    }

    fn url(&mut self, project: &str, spider: &str, job: &str) -> Option<String> {
        let listed = self.listed.get(project).and_then(|spiders| spiders.get(spider)).is_some();
        if !listed {
            let ids = job_ids(&self.root.join(project).join(spider), self.extension);
            self.listed.entry(project.to_string()).or_default().insert(spider.to_string(), ids);
        }
        let ids = self.listed.get(project)?.get(spider)?;
        ids.contains(job).then(|| format!("/{}/{project}/{spider}/{job}{}", self.base, self.extension))
    }
}

/// The ids of the jobs that have a file with `extension` in `dir` (none if it cannot be read).
fn job_ids(dir: &Path, extension: &str) -> HashSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return HashSet::new() };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(extension).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_has_a_link_when_its_file_exists_in_its_spiders_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("p/s");
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["j1.log", "j2.log.log", "j3.jl", ".log"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let mut logs = Files::new("logs", root.path().to_path_buf(), ".log");
        assert_eq!(logs.url("p", "s", "j1").as_deref(), Some("/logs/p/s/j1.log"));
        assert_eq!(logs.url("p", "s", "j2.log").as_deref(), Some("/logs/p/s/j2.log.log"));
        assert_eq!(logs.url("p", "s", "j3"), None, "an items file is not a log");
        assert_eq!(logs.url("p", "other", "j1"), None, "another spider's directory");
        assert_eq!(logs.url("p", "s", "j1").as_deref(), Some("/logs/p/s/j1.log"), "back to a listed directory");
        assert_eq!(logs.url("q", "s", "j1"), None);
    }
}
