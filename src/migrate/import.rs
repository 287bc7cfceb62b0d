//! The import of one stock file into the spool, once.
//!
//! Pending jobs are written with the spool's own operations, under each project's lock, so the
//! usual refusal applies: a job id already pending or running in the project is not imported
//! again (that is also how a job written just before a crash, but not yet in the ledger, is
//! recognised). They keep stock's order: each gets an enqueue time one nanosecond after the one
//! before it, in stock's pop order, so within a priority the spool's age order is stock's rowid
//! order. Finished jobs are appended to the finished log oldest first, with outcome `finished`
//! (stock records no exit status) and a `reason` naming where they came from.

use super::finished_jobs::{self, FinishedRow};
use super::ledger::{Done, Imported, ImportedJob, Journal, Ledger, Stamp};
use super::queue::{self, QueueRow, StockJob};
use super::report::{SourceReport, SourceState};
use super::stock_db::{StockDb, Unreadable};
use crate::spool::index::{JobIndex, JobState};
use crate::spool::records::{FinishedJob, Outcome, PendingJob, local_time};
use std::collections::HashSet;
use std::io;
use std::path::Path;

/// Jobs written to the spool between two records in the ledger: the most a start killed
/// half-way has written but not yet recorded.
const BATCH: usize = 1000;

/// Imports stock files one after the other.
pub struct Importer<'a> {
    pub index: &'a JobIndex,
    pub ledger: &'a Ledger,
    /// The `node_name` imported jobs are recorded with.
    pub node: &'a str,
    /// Only report what would be imported; write nothing.
    pub dry_run: bool,
    /// Whether a project has eggs (or is a `[settings]` project).
    pub deployed: &'a dyn Fn(&str) -> bool,
    /// The enqueue time of the next imported pending job.
    pub next_ns: u64,
}

impl Importer<'_> {
    /// Imports one file (`dbs/<project>.db`, or `dbs/jobs.db`), unless it was imported in full
    /// already and is unchanged since.
    pub fn source(&mut self, path: &Path) -> SourceReport {
        let mut report = SourceReport::new(path);
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let stamp = match Stamp::of(path) {
            Ok(stamp) => stamp,
            Err(err) => {
                report.state = SourceState::Unreadable(Unreadable::Failed(err.to_string()));
                return report;
            }
        };
        if self.ledger.is_done(&name, &stamp) {
            return report;
        }
        let read = read_source(path, &name);
        let (queue_rows, finished_rows) = match read {
            Ok((project, queue_rows, finished_rows)) => {
                report.project = project;
                (queue_rows, finished_rows)
            }
            Err(why) => {
                report.state = SourceState::Unreadable(why);
                return report;
            }
        };
        let stable = Stamp::of(path).is_ok_and(|now| now == stamp);
        report.state = SourceState::Read { changed_while_read: !stable };
        let imported = match self.ledger.imported(&name) {
            Ok(imported) => imported,
            Err(err) => {
                report.state = SourceState::Failed(err.to_string());
                return report;
            }
        };
        let mut file = FileImport { name, report, imported, present: Imported::new(), journal: None };
        let unchanged = stable.then_some(stamp);
        let result = self.import_file(&mut file, queue_rows, finished_rows, path, unchanged);
        if let Err(err) = result {
            file.report.state = SourceState::Failed(err.to_string());
        }
        file.report
    }

    /// Imports what is new in a file; `unchanged` is its stamp if it did not change while it
    /// was read, and then the file is recorded as done.
    fn import_file(
        &mut self,
        file: &mut FileImport,
        queue_rows: Vec<QueueRow>,
        finished_rows: Vec<FinishedRow>,
        path: &Path,
        unchanged: Option<Stamp>,
    ) -> io::Result<()> {
        self.import_queue(file, queue_rows)?;
        self.import_finished(file, finished_rows)?;
        if let Some(stamp) = unchanged
            && !self.dry_run
        {
            let done = Done { source: path.to_path_buf(), stamp, imported_at: local_time(chrono::Local::now()) };
            // Only the imported rows the file still holds are worth remembering.
            self.ledger.mark_done(&file.name, &done, &file.present)?;
        }
        Ok(())
    }

    /// Imports a queue's new rows in batches, each recorded in the ledger once it is durable,
    /// and withdraws the jobs of rows imported earlier that the queue no longer holds.
    fn import_queue(&mut self, file: &mut FileImport, rows: Vec<QueueRow>) -> io::Result<()> {
        let Some(project) = file.report.project.clone() else { return Ok(()) };
        file.report.undeployed = !(self.deployed)(&project);
        let held: HashSet<u64> = rows.iter().map(|row| row.fingerprint).collect();
        for (id, enqueued_ns) in
            file.imported.iter().filter(|(fp, _)| !held.contains(fp)).filter_map(|(_, job)| job.as_ref())
        {
            let withdrawn = if self.dry_run {
                self.index.pending_job(&project, id).is_some_and(|job| job.enqueued_ns == *enqueued_ns)
            } else {
                self.index.withdraw_pending(&project, id, *enqueued_ns)?
            };
            if withdrawn {
                file.report.withdrawn.push(id.clone());
            }
        }

        let mut pending = Vec::new();
        let mut ids = HashSet::new();
        for row in rows {
            if file.seen_before(row.fingerprint) {
                continue;
            }
            match row.job {
                Err(why) => file.report.skipped.push(format!("row {}: {why}", row.rowid)),
                Ok(job) if !ids.insert(job.id.clone()) => file.report.skipped.push(format!(
                    "row {}: job {:?} appears earlier in the queue; scrapyd-rs keeps one job per id and \
                     imported the one stock would have run first",
                    row.rowid, job.id
                )),
                Ok(job) => pending.push((row.fingerprint, self.pending_job(&project, job))),
            }
        }
        for batch in pending.chunks(BATCH) {
            let jobs: Vec<PendingJob> = batch.iter().map(|(_, job)| job.clone()).collect();
            let outcomes = if self.dry_run {
                jobs.iter().map(|job| self.state_of(&project, &job.id)).collect()
            } else {
                self.index.enqueue_batch(&project, jobs)?
            };
            let mut recorded = Vec::with_capacity(batch.len());
            for ((fingerprint, job), outcome) in batch.iter().zip(outcomes) {
                match outcome {
                    None => {
                        recorded.push((*fingerprint, Some((job.id.clone(), job.enqueued_ns))));
                        file.report.pending.push(job.clone());
                    }
                    Some(state) => {
                        recorded.push((*fingerprint, self.written_before(job)));
                        file.report.present.push((job.id.clone(), state));
                    }
                }
            }
            self.record(file, recorded)?;
        }
        Ok(())
    }

    /// Appends the history's new rows to the finished log (one write) and records them.
    fn import_finished(&mut self, file: &mut FileImport, rows: Vec<FinishedRow>) -> io::Result<()> {
        let mut finished = Vec::new();
        for row in rows {
            if file.seen_before(row.fingerprint) {
                continue;
            }
            match row.job {
                Err(why) => file.report.skipped.push(format!("row {}: {why}", row.rowid)),
                Ok(job) => finished.push((row.fingerprint, self.finished_job(&file.name, job))),
            }
        }
        if finished.is_empty() {
            return Ok(());
        }
        let jobs: Vec<FinishedJob> = finished.iter().map(|(_, job)| job.clone()).collect();
        let added = if self.dry_run {
            jobs.iter().map(|job| !self.index.has_finished(job)).collect()
        } else {
            self.index.import_finished(jobs.clone())?
        };
        for (job, added) in jobs.into_iter().zip(added) {
            if added {
                file.report.finished.push(job);
            } else {
                file.report.present.push((job.id, "finished"));
            }
        }
        self.record(file, finished.iter().map(|(fingerprint, _)| (*fingerprint, None)).collect())
    }

    /// Records rows as imported (nothing in a dry run), opening the file's journal on first use.
    fn record(&self, file: &mut FileImport, rows: Vec<(u64, ImportedJob)>) -> io::Result<()> {
        if !self.dry_run {
            let journal = match &mut file.journal {
                Some(journal) => journal,
                None => file.journal.insert(self.ledger.journal(&file.name)?),
            };
            journal.record(rows.iter().map(|(fingerprint, job)| (*fingerprint, job)))?;
        }
        file.present.extend(rows);
        Ok(())
    }

    /// The pending job an import killed half-way wrote for this row before it could record it:
    /// the pending job with its id, if it is this very job (only the enqueue time differs).
    /// Recording it lets a later return from stock withdraw it like any imported job.
    fn written_before(&self, job: &PendingJob) -> ImportedJob {
        let existing = self.index.pending_job(&job.project, &job.id)?;
        let same = PendingJob { enqueued_ns: existing.enqueued_ns, ..job.clone() } == *existing;
        same.then(|| (job.id.clone(), existing.enqueued_ns))
    }

    /// Whether the index already has a pending or running job with this id (for dry runs).
    fn state_of(&self, project: &str, id: &str) -> Option<&'static str> {
        match self.index.state_of(Some(project), id) {
            Some(JobState::Pending) => Some("pending"),
            Some(JobState::Running) => Some("running"),
            Some(JobState::Finished) | None => None,
        }
    }

    fn pending_job(&mut self, project: &str, job: StockJob) -> PendingJob {
        let enqueued_ns = self.next_ns;
        self.next_ns += 1;
        PendingJob {
            id: job.id,
            project: project.to_string(),
            spider: job.spider,
            version: job.version,
            settings: job.settings,
            args: job.args,
            priority: job.priority,
            enqueued_ns,
            node: self.node.to_string(),
        }
    }

    fn finished_job(&self, file: &str, job: finished_jobs::StockFinished) -> FinishedJob {
        FinishedJob {
            id: job.id,
            project: job.project,
            spider: job.spider,
            version: None,
            start_time: job.start_time,
            end_time: job.end_time,
            outcome: Outcome::Finished,
            exit_code: None,
            signal: None,
            reason: Some(format!("imported from stock Scrapyd's {file}")),
            node: self.node.to_string(),
            pid: None,
            stats: None,
        }
    }
}

/// One file's import under way.
struct FileImport {
    /// The file's name in `dbs_dir`, which names its entries in the ledger.
    name: String,
    report: SourceReport,
    /// The file's rows imported at earlier starts.
    imported: Imported,
    /// The imported rows the file holds now.
    present: Imported,
    journal: Option<Journal>,
}

impl FileImport {
    /// Whether a row was imported at an earlier start (it is then remembered and skipped).
    fn seen_before(&mut self, fingerprint: u64) -> bool {
        let Some(job) = self.imported.get(&fingerprint) else { return false };
        self.report.earlier += 1;
        self.present.insert(fingerprint, job.clone());
        true
    }
}

/// What a stock file holds: the project whose queue it is (if it is one) with the queue's rows,
/// and stock's finished jobs (in `jobs.db`).
type Rows = (Option<String>, Vec<QueueRow>, Vec<FinishedRow>);

/// Reads a stock file in one snapshot.
fn read_source(path: &Path, name: &str) -> Result<Rows, Unreadable> {
    let db = StockDb::open(path)?;
    let has_queue = db.has_table(queue::TABLE);
    let has_finished = name == finished_jobs::FILE && db.has_table(finished_jobs::TABLE);
    if !has_queue && !has_finished {
        let tables = if db.tables().is_empty() { "none".to_string() } else { db.tables().join(", ") };
        return Err(Unreadable::UnknownSchema(format!("it has no {} table (its tables: {tables})", queue::TABLE)));
    }
    let project = if has_queue {
        let project = name.strip_suffix(".db").unwrap_or(name);
        crate::eggs::check_project_name(project)
            .map_err(|err| Unreadable::UnknownSchema(format!("its name does not make a project name ({err})")))?;
        Some(project.to_string())
    } else {
        None
    };
    let queue_rows = if has_queue { queue::read(&db)? } else { Vec::new() };
    let finished_rows = if has_finished { finished_jobs::read(&db)? } else { Vec::new() };
    Ok((project, queue_rows, finished_rows))
}
