//! What an import found, did and skipped: logged at every start, printed by `scrapyd-rs migrate`.

use super::stock_db::Unreadable;
use crate::spool::records::{FinishedJob, PendingJob};
use std::fmt;
use std::path::{Path, PathBuf};

/// How many skipped rows the daemon's log names one by one per file (the rest are counted);
/// `scrapyd-rs migrate` prints them all.
const LOGGED_ROWS: usize = 20;

/// The outcome of one import (or of a dry run).
#[derive(Debug, Default)]
pub struct Report {
    pub dbs_dir: PathBuf,
    pub dry_run: bool,
    /// Why no file was looked at, when none was (stock still running, `dbs_dir` unreadable).
    pub held_back: Option<String>,
    /// One entry per stock file, in name order.
    pub sources: Vec<SourceReport>,
}

/// What happened to one stock file.
#[derive(Debug)]
pub struct SourceReport {
    pub path: PathBuf,
    /// The project whose queue the file holds, if it holds one.
    pub project: Option<String>,
    pub state: SourceState,
    /// Pending jobs imported now (or that would be, in a dry run), in dispatch order.
    pub pending: Vec<PendingJob>,
    /// Finished jobs imported now (or that would be), oldest first.
    pub finished: Vec<FinishedJob>,
    /// Rows imported at an earlier start and skipped now.
    pub earlier: usize,
    /// Jobs not imported because scrapyd-rs already has a job with that id: `(id, state)`.
    pub present: Vec<(String, &'static str)>,
    /// Rows that cannot be imported, each with its rowid and why.
    pub skipped: Vec<String>,
    /// Jobs imported at an earlier start, still pending here, that the file no longer holds:
    /// stock ran or cancelled them meanwhile, so they were removed (or would be, in a dry run).
    pub withdrawn: Vec<String>,
    /// Whether the project has no eggs (its jobs wait until it is deployed, as in stock).
    pub undeployed: bool,
}

/// Whether a file was read.
#[derive(Debug)]
pub enum SourceState {
    /// Imported in full at an earlier start and unchanged since: not opened.
    Unchanged,
    /// Read. `changed_while_read`: a writer committed meanwhile, so the file is read again at the
    /// next start (rows imported now are not imported twice).
    Read { changed_while_read: bool },
    /// Not readable at this start; nothing was imported from it.
    Unreadable(Unreadable),
    /// Reading worked but writing to the spool failed; what was imported is recorded.
    Failed(String),
}

impl SourceReport {
    pub fn new(path: &Path) -> SourceReport {
        SourceReport {
            path: path.to_path_buf(),
            project: None,
            state: SourceState::Unchanged,
            pending: Vec::new(),
            finished: Vec::new(),
            earlier: 0,
            present: Vec::new(),
            skipped: Vec::new(),
            withdrawn: Vec::new(),
            undeployed: false,
        }
    }

    /// Whether the file could not be imported (in full) at this start.
    pub fn is_failure(&self) -> bool {
        matches!(self.state, SourceState::Unreadable(_) | SourceState::Failed(_))
    }

    /// One line: the file, its project and what became of it.
    fn summary(&self, dry_run: bool) -> String {
        let mut line = self.path.display().to_string();
        if let Some(project) = &self.project {
            line.push_str(&format!(" (project {project})"));
        }
        match &self.state {
            SourceState::Unchanged => line.push_str(": imported at an earlier start, unchanged since"),
            SourceState::Unreadable(why) => line.push_str(&format!(" {why}")),
            SourceState::Failed(_) | SourceState::Read { .. } => {
                let verb = if dry_run { "would import" } else { "imported" };
                let mut parts =
                    vec![format!("{verb} {} pending and {} finished jobs", self.pending.len(), self.finished.len())];
                if self.earlier > 0 {
                    parts.push(count(self.earlier, "row", "imported at an earlier start"));
                }
                if !self.present.is_empty() {
                    parts.push(count(self.present.len(), "job", "already in scrapyd-rs"));
                }
                if !self.skipped.is_empty() {
                    parts.push(count(self.skipped.len(), "row", "skipped"));
                }
                if !self.withdrawn.is_empty() {
                    let verb = if dry_run { "would be withdrawn" } else { "withdrawn" };
                    parts.push(format!(
                        "{}: stock ran or cancelled them since they were imported",
                        count(self.withdrawn.len(), "pending job", verb)
                    ));
                }
                line.push_str(": ");
                line.push_str(&parts.join(", "));
                if let SourceState::Failed(err) = &self.state {
                    line.push_str(&format!("; then the import failed: {err}; it resumes at the next start"));
                }
                if matches!(self.state, SourceState::Read { changed_while_read: true }) {
                    line.push_str("; the file changed while it was read, so it is read again at the next start");
                }
                if self.undeployed && !self.pending.is_empty() {
                    line.push_str("; the project has no eggs: its jobs wait until it is deployed, as in stock");
                }
            }
        }
        line
    }

    fn present_lines(&self) -> impl Iterator<Item = String> + '_ {
        let file = self.path.display();
        self.present
            .iter()
            .map(move |(id, state)| format!("{file}: job {id:?} is already {state} in scrapyd-rs; not imported again"))
    }
}

impl Report {
    pub fn new(dbs_dir: &Path, dry_run: bool) -> Report {
        Report { dbs_dir: dbs_dir.to_path_buf(), dry_run, held_back: None, sources: Vec::new() }
    }

    /// How many files could not be imported at this start (the exit status of `migrate`).
    pub fn failures(&self) -> usize {
        self.sources.iter().filter(|source| source.is_failure()).count() + usize::from(self.held_back.is_some())
    }

    /// Pending and finished jobs imported (or to import).
    pub fn totals(&self) -> (usize, usize) {
        self.sources.iter().fold((0, 0), |(p, f), s| (p + s.pending.len(), f + s.finished.len()))
    }

    /// Writes the report to the daemon's log: a line per file that was read or skipped (files
    /// imported at an earlier start only at debug level), warnings for what was skipped.
    pub fn log(&self) {
        if let Some(why) = &self.held_back {
            tracing::warn!("not importing from {}: {why}", self.dbs_dir.display());
        }
        for source in &self.sources {
            let summary = source.summary(self.dry_run);
            match &source.state {
                SourceState::Unchanged => tracing::debug!("{summary}"),
                SourceState::Read { .. } => tracing::info!("{summary}"),
                SourceState::Unreadable(_) | SourceState::Failed(_) => tracing::warn!("{summary}"),
            }
            for line in source.present_lines().take(LOGGED_ROWS) {
                tracing::info!("{line}");
            }
            for id in source.withdrawn.iter().take(LOGGED_ROWS) {
                tracing::info!(
                    "{}: withdrew pending job {id:?}: stock ran or cancelled it since it was imported",
                    source.path.display()
                );
            }
            for row in source.skipped.iter().take(LOGGED_ROWS) {
                tracing::warn!("{}: skipped {row}", source.path.display());
            }
            let unnamed = source.skipped.len().saturating_sub(LOGGED_ROWS);
            if unnamed > 0 {
                tracing::warn!(
                    "{}: skipped {unnamed} more rows (`scrapyd-rs migrate --dry-run` lists them all)",
                    source.path.display()
                );
            }
        }
    }
}

/// The full report, for `scrapyd-rs migrate`: every job imported (or to import) and every row
/// skipped.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(why) = &self.held_back {
            writeln!(f, "not importing from {}: {why}", self.dbs_dir.display())?;
        }
        if self.sources.is_empty() && self.held_back.is_none() {
            writeln!(f, "no stock Scrapyd databases in {}", self.dbs_dir.display())?;
        }
        for source in &self.sources {
            writeln!(f, "{}", source.summary(self.dry_run))?;
            for job in &source.pending {
                write!(f, "  pending   {}  spider={}  priority={}", job.id, job.spider, python_float(job.priority))?;
                if let Some(version) = &job.version {
                    write!(f, "  version={version}")?;
                }
                if !job.settings.is_empty() {
                    write!(f, "  settings={}", serde_json::to_string(&job.settings).unwrap_or_default())?;
                }
                if !job.args.is_empty() {
                    write!(f, "  args={}", serde_json::to_string(&job.args).unwrap_or_default())?;
                }
                writeln!(f)?;
            }
            for job in &source.finished {
                writeln!(
                    f,
                    "  finished  {}  project={}  spider={}  start={}  end={}",
                    job.id, job.project, job.spider, job.start_time, job.end_time
                )?;
            }
            for (id, state) in &source.present {
                writeln!(f, "  present   {id}  already {state} in scrapyd-rs")?;
            }
            for id in &source.withdrawn {
                writeln!(f, "  withdrawn {id}  no longer in stock's queue")?;
            }
            for row in &source.skipped {
                writeln!(f, "  skipped   {row}")?;
            }
        }
        let (pending, finished) = self.totals();
        let verb = if self.dry_run { "would import" } else { "imported" };
        writeln!(f, "{verb} {pending} pending and {finished} finished jobs in total")
    }
}

/// `1 row skipped`, `2 rows skipped`.
fn count(n: usize, noun: &str, rest: &str) -> String {
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {noun}{plural} {rest}")
}

/// A priority as Python prints a float (`0.0`, `-1.5`, `inf`, `nan`), as stock shows them.
fn python_float(value: f64) -> String {
    match value {
        v if v.is_nan() => "nan".into(),
        v if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.into(),
        v if v.fract() == 0.0 && v.abs() < 1e16 => format!("{v:.1}"),
        v => v.to_string(),
    }
}
