//! `log_url` and `items_url`: links to a job's files, shown only when the file exists.
//!
//! Stock checks two files per job, which for a long history is most of `listjobs`' time. Jobs of
//! the same spider share a directory, so we list each spider directory once per answer.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Answers "does this job have a log / an items file?" for one response.
#[derive(Debug)]
pub struct Links {
    logs_dir: Option<PathBuf>,
    items_dir: Option<PathBuf>,
    listed: HashMap<PathBuf, HashSet<String>>,
}

impl Links {
    pub fn new(config: &crate::config::Config) -> Self {
        Links { logs_dir: config.logs_dir.clone(), items_dir: config.items_local(), listed: HashMap::new() }
    }

    /// `/logs/<project>/<spider>/<job>.log` when that file exists.
    pub fn log_url(&mut self, project: &str, spider: &str, job: &str) -> Option<String> {
        let dir = self.logs_dir.clone()?;
        self.url("logs", &dir, project, spider, &format!("{job}.log"))
    }

    /// `/items/<project>/<spider>/<job>.jl` when items are local and that file exists.
    pub fn items_url(&mut self, project: &str, spider: &str, job: &str) -> Option<String> {
        let dir = self.items_dir.clone()?;
        self.url("items", &dir, project, spider, &format!("{job}.jl"))
    }

    fn url(&mut self, base: &str, root: &Path, project: &str, spider: &str, file: &str) -> Option<String> {
        let dir = root.join(project).join(spider);
        let names = self.listed.entry(dir).or_insert_with_key(|dir| list(dir));
        names.contains(file).then(|| format!("/{base}/{project}/{spider}/{file}"))
    }
}

fn list(dir: &Path) -> HashSet<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.flatten().filter_map(|entry| entry.file_name().into_string().ok()).collect(),
        Err(_) => HashSet::new(),
    }
}
