//! The in-memory index of the spool, and the changes that keep it and the files in step.
//!
//! `listjobs`, `status`, `daemonstatus`, `/jobs` and the dispatcher read this index, so none of
//! them lists directories or rereads history per request. Every change to a project's jobs goes
//! through here, under the project's lock: the index first catches up if the project's change
//! counter moved since it last looked (another instance changed something), then the change is
//! made on disk and applied to the index. Other instances' changes are also picked up when the
//! watcher or the periodic rescan asks, and the finished log is read from where the last read
//! stopped.
//!
//! The index's own lock is held only to apply a change or to copy out `Arc`s, never during disk
//! I/O or serialisation, so a huge `listjobs` never delays `daemonstatus`.

use super::finished::{Cursor, FinishedLog, Update};
use super::records::{FinishedJob, PendingJob, PendingOrder, RunningJob};
use super::{Claim, ProjectGuard, Spool, pending_file_name};
use indexmap::IndexMap;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// A job is named by its project and id.
pub type JobKey = (String, String);

fn key(project: &str, id: &str) -> JobKey {
    (project.to_string(), id.to_string())
}

#[derive(Debug, Default)]
struct State {
    /// Pending jobs in dispatch order.
    pending: BTreeMap<PendingOrder, Arc<PendingJob>>,
    pending_ids: HashMap<JobKey, PendingOrder>,
    /// Running jobs of every instance, in the order they were seen to start.
    running: IndexMap<JobKey, Arc<RunningJob>>,
    /// Finished jobs, oldest first (the log's order), at most `finished_to_keep` of them.
    finished: VecDeque<Arc<FinishedJob>>,
    /// Job id to the projects with a finished record of that id, so `status.json` without a
    /// project is one lookup however long the history is.
    finished_ids: HashMap<String, HashMap<String, FinishedRuns>>,
    /// Each project's change counter when the index last matched its files.
    generations: HashMap<String, u64>,
}

impl State {
    fn insert_pending(&mut self, job: Arc<PendingJob>) {
        let order = job.order();
        if let Some(old) = self.pending_ids.insert(key(&job.project, &job.id), order.clone()) {
            self.pending.remove(&old);
        }
        self.pending.insert(order, job);
    }

    fn remove_pending(&mut self, key: &JobKey) -> Option<Arc<PendingJob>> {
        let order = self.pending_ids.remove(key)?;
        self.pending.remove(&order)
    }

    /// Adds finished jobs (or replaces them all), keeping only the newest `keep`: the log on
    /// disk is compacted lazily, but answers show exactly `finished_to_keep` jobs.
    fn set_finished(&mut self, jobs: Vec<FinishedJob>, replace: bool, keep: usize) {
        if replace {
            self.finished.clear();
            self.finished_ids.clear();
        }
        let skip = jobs.len().saturating_sub(keep);
        for job in jobs.into_iter().skip(skip) {
            let job = Arc::new(job);
            let projects = self.finished_ids.entry(job.id.clone()).or_default();
            match projects.get_mut(&job.project) {
                Some(runs) => {
                    runs.count += 1;
                    runs.newest = job.clone();
                }
                None => {
                    projects.insert(job.project.clone(), FinishedRuns { count: 1, newest: job.clone() });
                }
            }
            self.finished.push_back(job);
        }
        while self.finished.len() > keep {
            let Some(old) = self.finished.pop_front() else { break };
            if let Some(projects) = self.finished_ids.get_mut(&old.id) {
                // The oldest run goes: the newest one recorded stays right unless it was the last.
                if let Some(runs) = projects.get_mut(&old.project) {
                    runs.count -= 1;
                    if runs.count == 0 {
                        projects.remove(&old.project);
                    }
                }
                if projects.is_empty() {
                    self.finished_ids.remove(&old.id);
                }
            }
        }
    }
}

/// The finished runs of one job id in one project (an id may be reused once a job finished).
#[derive(Debug)]
struct FinishedRuns {
    count: usize,
    /// The latest run's record.
    newest: Arc<FinishedJob>,
}

/// Copies of the index's entries, for answering without holding its lock.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// In dispatch order.
    pub pending: Vec<Arc<PendingJob>>,
    /// In start order.
    pub running: Vec<Arc<RunningJob>>,
    /// Newest first.
    pub finished: Vec<Arc<FinishedJob>>,
}

/// The state of one job, as `status.json` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Finished,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Finished => "finished",
        }
    }
}

/// Why a job could not be scheduled.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("job '{id}' is already {state} in project '{project}'")]
    Duplicate { project: String, id: String, state: &'static str },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The index and the files it mirrors.
#[derive(Debug)]
pub struct JobIndex {
    spool: Spool,
    log: FinishedLog,
    /// `finished_to_keep`: how many finished jobs the index shows (none when zero or less).
    keep: usize,
    state: Mutex<State>,
    /// Serialises reads of the finished log, so two readers never apply the same lines twice.
    finished_cursor: Mutex<Cursor>,
    /// Open handles on the projects' lock files, to peek at their change counters cheaply.
    lock_files: Mutex<HashMap<String, File>>,
}

impl JobIndex {
    /// Builds the index from what is on disk, showing at most `finished_to_keep` finished jobs.
    pub fn load(spool: Spool, log: FinishedLog, finished_to_keep: i64) -> io::Result<JobIndex> {
        let keep = usize::try_from(finished_to_keep).unwrap_or(0);
        let index = JobIndex {
            spool,
            log,
            keep,
            state: Mutex::default(),
            finished_cursor: Mutex::default(),
            lock_files: Mutex::default(),
        };
        index.rescan_all()?;
        Ok(index)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The spool this index mirrors.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// The finished-job log.
    pub fn log(&self) -> &FinishedLog {
        &self.log
    }

    // --- changes (each may wait for the disk: on the async worker, only the short ones, which hand
    //     the worker off before a long wait; see `crate::runtime`) ---

    /// Takes the project's lock and brings the index up to date with its files.
    fn lock(&self, project: &str) -> io::Result<ProjectGuard> {
        let guard = self.spool.lock_project(project)?;
        let generation = guard.generation()?;
        if self.state().generations.get(project) != Some(&generation) {
            // Another instance changed the project (or this one has not looked yet): a listing
            // of every job file, too long to hold up the async worker.
            crate::runtime::may_block(|| -> io::Result<()> {
                self.spool.remove_stray_temp_files(&guard, project)?;
                self.spool.recover_pending(&guard, project)?;
                self.relist(project)
            })?;
            self.state().generations.insert(project.to_string(), generation);
        }
        Ok(guard)
    }

    /// Counts a change this instance is about to make, so other instances look again while the
    /// index itself stays in step.
    fn changing(&self, guard: &ProjectGuard, project: &str) -> io::Result<()> {
        let generation = guard.bump()?;
        self.state().generations.insert(project.to_string(), generation);
        Ok(())
    }

    /// Schedules a job, refusing an id that is already pending or running in its project.
    pub fn enqueue(&self, job: PendingJob) -> Result<(), EnqueueError> {
        let guard = self.lock(&job.project)?;
        let duplicate = |state| EnqueueError::Duplicate { project: job.project.clone(), id: job.id.clone(), state };
        let key = key(&job.project, &job.id);
        if self.state().pending_ids.contains_key(&key) {
            return Err(duplicate("pending"));
        }
        if self.state().running.contains_key(&key) || self.spool.is_running(&job.project, &job.id) {
            return Err(duplicate("running"));
        }
        self.changing(&guard, &job.project)?;
        self.spool.write_pending(&guard, &job)?;
        self.state().insert_pending(Arc::new(job));
        Ok(())
    }

    /// Schedules many jobs of one project under one hold of its lock (an import), with the same
    /// refusal as [`JobIndex::enqueue`]. For each job, in order: `None` if it was added, or the
    /// state (`"pending"`, `"running"`) that an earlier job with its id is in. The files are
    /// durable when this returns.
    pub fn enqueue_batch(&self, project: &str, jobs: Vec<PendingJob>) -> io::Result<Vec<Option<&'static str>>> {
        let guard = self.lock(project)?;
        let known: Vec<Option<&'static str>> = {
            let state = self.state();
            jobs.iter()
                .map(|job| {
                    let key = key(project, &job.id);
                    if state.pending_ids.contains_key(&key) {
                        Some("pending")
                    } else if state.running.contains_key(&key) {
                        Some("running")
                    } else {
                        None
                    }
                })
                .collect()
        };
        let mut outcomes = Vec::with_capacity(jobs.len());
        let mut added = Vec::new();
        let mut added_ids = HashSet::new();
        for (job, known) in jobs.into_iter().zip(known) {
            assert_eq!(job.project, project, "a batch holds jobs of one project");
            let refusal = known
                .or_else(|| added_ids.contains(&job.id).then_some("pending"))
                .or_else(|| self.spool.is_running(project, &job.id).then_some("running"));
            if refusal.is_none() {
                added_ids.insert(job.id.clone());
                added.push(job);
            }
            outcomes.push(refusal);
        }
        if added.is_empty() {
            return Ok(outcomes);
        }
        self.changing(&guard, project)?;
        self.spool.write_pending_batch(&guard, &added)?;
        let mut state = self.state();
        for job in added {
            state.insert_pending(Arc::new(job));
        }
        Ok(outcomes)
    }

    /// Removes a pending job; `false` when it was not pending.
    pub fn cancel_pending(&self, project: &str, id: &str) -> io::Result<bool> {
        let guard = self.lock(project)?;
        let Some(job) = self.pending_job(project, id) else { return Ok(false) };
        self.changing(&guard, project)?;
        self.state().remove_pending(&key(project, id));
        self.spool.remove_pending(&guard, project, &pending_file_name(&job))
    }

    /// Removes a pending job only if it is still the one enqueued at `enqueued_ns` (an imported
    /// job that its source no longer holds); `false` when it is not pending, or is another job
    /// with its id.
    pub fn withdraw_pending(&self, project: &str, id: &str, enqueued_ns: u64) -> io::Result<bool> {
        let guard = self.lock(project)?;
        let Some(job) = self.pending_job(project, id).filter(|job| job.enqueued_ns == enqueued_ns) else {
            return Ok(false);
        };
        self.changing(&guard, project)?;
        self.state().remove_pending(&key(project, id));
        self.spool.remove_pending(&guard, project, &pending_file_name(&job))
    }

    /// Claims a pending job for this instance. `None` when it is no longer pending.
    ///
    /// Until its process exists the job is *starting*: its record is in `running/` without a pid,
    /// and answers still show it as pending (stock pops a job and spawns it in one step, so no
    /// client ever sees a job between the two, or a running job without a pid).
    pub fn claim(&self, project: &str, id: &str) -> io::Result<Option<Claim>> {
        let guard = self.lock(project)?;
        let Some(job) = self.pending_job(project, id) else { return Ok(None) };
        self.changing(&guard, project)?;
        let claim = self.spool.claim(&guard, project, &pending_file_name(&job), (*job).clone())?;
        let mut state = self.state();
        let key = key(project, id);
        state.remove_pending(&key);
        if claim.is_some() {
            let starting = RunningJob {
                job: (*job).clone(),
                owner: String::new(),
                start_time: String::new(),
                pid: None,
                pid_start_ticks: None,
                cancels_acted_on: 0,
            };
            state.running.insert(key, Arc::new(starting));
        }
        Ok(claim)
    }

    /// A pending job of the project, by id.
    pub fn pending_job(&self, project: &str, id: &str) -> Option<Arc<PendingJob>> {
        let state = self.state();
        state.pending_ids.get(&key(project, id)).and_then(|order| state.pending.get(order).cloned())
    }

    /// Asks whichever instance supervises a running job to signal it (see
    /// [`Spool::request_cancel`]); `false` if the job is not running any more.
    pub fn request_cancel(&self, project: &str, id: &str, signal: i32) -> io::Result<bool> {
        let _guard = self.lock(project)?;
        if !self.spool.is_running(project, id) {
            return Ok(false);
        }
        self.spool.request_cancel(project, id, signal).map(|()| true)
    }

    /// Records (or updates) a running job this instance supervises.
    pub fn write_running(&self, record: RunningJob) -> io::Result<()> {
        let guard = self.lock(&record.job.project)?;
        self.changing(&guard, &record.job.project)?;
        self.spool.write_running(&guard, &record)?;
        let key = key(&record.job.project, &record.job.id);
        let mut state = self.state();
        state.remove_pending(&key);
        state.running.insert(key, Arc::new(record));
        Ok(())
    }

    /// Whether this exact run (project, id and start time) already has a finished record among
    /// the newest `finished_to_keep`, the ones the index holds.
    pub fn has_finished(&self, record: &FinishedJob) -> bool {
        let state = self.state();
        let named = state.finished_ids.get(&record.id).is_some_and(|projects| projects.contains_key(&record.project));
        named
            && state
                .finished
                .iter()
                .rev()
                .any(|job| job.id == record.id && job.project == record.project && job.start_time == record.start_time)
    }

    /// Adds finished jobs recorded elsewhere (an import), given oldest first. A run the history
    /// already holds (same project, id and start time) is not added again. For each job, whether
    /// it was added; all are durable when this returns.
    pub fn import_finished(&self, jobs: Vec<FinishedJob>) -> io::Result<Vec<bool>> {
        let mut cursor = self.finished_cursor.lock().unwrap_or_else(|p| p.into_inner());
        self.apply_finished(&mut cursor, None)?;
        let mut seen = HashSet::new();
        let added: Vec<bool> = jobs
            .iter()
            .map(|job| !self.has_finished(job) && seen.insert((&job.project, &job.id, &job.start_time)))
            .collect();
        let new: Vec<FinishedJob> =
            jobs.iter().zip(&added).filter(|(_, added)| **added).map(|(job, _)| job.clone()).collect();
        self.log.append_all(&new, self.keep)?;
        self.apply_finished(&mut cursor, None)?;
        Ok(added)
    }

    /// Every running record, starting ones (no pid yet) included.
    pub fn running_records(&self) -> Vec<Arc<RunningJob>> {
        self.state().running.values().cloned().collect()
    }

    /// Records a finished job and removes its running files. Readers see the job move from
    /// running to finished in one step, never in both lists or in neither.
    ///
    /// It is idempotent: a job whose running record is gone was recorded by another instance,
    /// and one whose finished record is already in the log (a crash came between the two steps)
    /// is not appended again.
    pub fn finish(&self, record: &FinishedJob) -> io::Result<()> {
        let guard = self.lock(&record.project)?;
        let key = key(&record.project, &record.id);
        // Holding the reader's cursor from the append to the removal of the running record keeps
        // every other reader of the log from seeing the new line while the job still runs.
        let mut cursor = self.finished_cursor.lock().unwrap_or_else(|p| p.into_inner());
        if !self.spool.is_running(&record.project, &record.id) {
            return self.apply_finished(&mut cursor, Some(&key));
        }
        self.apply_finished(&mut cursor, None)?;
        if !self.has_finished(record) {
            self.log.append(record, self.keep)?;
        }
        self.changing(&guard, &record.project)?;
        self.spool.remove_running(&guard, &record.project, &record.id)?;
        self.apply_finished(&mut cursor, Some(&key))
    }

    /// The lock of a running job whose supervising instance is gone, if it is orphaned.
    pub fn lock_orphan(&self, project: &str, id: &str) -> io::Result<Option<File>> {
        let guard = self.lock(project)?;
        self.spool.lock_orphan(&guard, project, id)
    }

    // --- catching up with the disk ---

    /// Catches up with every project and reads the finished log's new lines. Projects whose
    /// change counter did not move are not listed at all.
    pub fn rescan_all(&self) -> io::Result<()> {
        self.rescan_projects(self.spool.projects()?)
    }

    /// Catches up with the projects the index knows whose change counters moved, and reads the
    /// finished log's new lines: what an answer about jobs does first, so that it tells what
    /// every instance had done before it was asked. When nothing moved this is one read of each
    /// project's counter. (A project new to this instance is found by the watch or the rescan.)
    pub fn catch_up(&self) -> io::Result<()> {
        let known: Vec<String> = self.state().generations.keys().cloned().collect();
        self.rescan_projects(known)
    }

    /// Catches up with each of `projects` whose change counter moved, then with the finished log.
    fn rescan_projects(&self, projects: Vec<String>) -> io::Result<()> {
        for project in projects {
            self.rescan_project(&project)?;
        }
        self.refresh_finished()
    }

    /// Whether a project's change counter moved since the index last matched it: one read of
    /// its lock file through a kept handle, without the lock (the watcher reports this
    /// instance's own changes too, and those the index already holds).
    pub fn project_moved(&self, project: &str) -> bool {
        let seen = self.state().generations.get(project).copied();
        seen.is_none() || seen != self.peek_generation(project)
    }

    /// Catches up with one project if its change counter moved.
    pub fn rescan_project(&self, project: &str) -> io::Result<()> {
        if self.project_moved(project) { self.lock(project).map(drop) } else { Ok(()) }
    }

    fn peek_generation(&self, project: &str) -> Option<u64> {
        let mut files = self.lock_files.lock().unwrap_or_else(|p| p.into_inner());
        if !files.contains_key(project) {
            files.insert(project.to_string(), self.spool.open_lock_file(project).ok()?);
        }
        Spool::peek_generation(files.get(project)?).ok()
    }

    /// Re-lists a project's pending and running files (under its lock), reading only the
    /// pending records whose names are new, and every running record (there are few).
    ///
    /// Pending jobs are matched by file name, not id: an id cancelled and scheduled again
    /// between two looks is a new file (new time, maybe new arguments), read afresh.
    fn relist(&self, project: &str) -> io::Result<()> {
        let names = self.spool.pending_names(project)?;
        let on_disk: HashSet<&str> = names.iter().map(String::as_str).collect();
        let known: HashMap<String, String> = {
            let state = self.state();
            state
                .pending_ids
                .iter()
                .filter(|((p, _), _)| p == project)
                .filter_map(|(_, order)| state.pending.get(order))
                .map(|job| (pending_file_name(job), job.id.clone()))
                .collect()
        };
        let added: Vec<PendingJob> = names
            .iter()
            .filter(|name| !known.contains_key(name.as_str()))
            .filter_map(|name| self.spool.read_pending(project, name))
            .collect();
        let running: Vec<RunningJob> =
            self.spool.running_ids(project)?.iter().filter_map(|id| self.spool.read_running(project, id)).collect();

        let mut state = self.state();
        for (_, gone) in known.iter().filter(|(name, _)| !on_disk.contains(name.as_str())) {
            state.remove_pending(&key(project, gone));
        }
        for job in added {
            state.insert_pending(Arc::new(job));
        }
        let running_ids: HashSet<&str> = running.iter().map(|r| r.job.id.as_str()).collect();
        state.running.retain(|(p, id), _| p != project || running_ids.contains(id.as_str()));
        for record in running {
            let key = key(project, &record.job.id);
            state.remove_pending(&key);
            match state.running.get_mut(&key) {
                Some(existing) if **existing == record => {}
                Some(existing) => *existing = Arc::new(record),
                None => {
                    state.running.insert(key, Arc::new(record));
                }
            }
        }
        Ok(())
    }

    /// Reads what was appended to the finished log since the last read.
    ///
    /// When nothing was appended this is one `stat` of the log, fit to run in place on the async
    /// worker; reading new lines (the whole log after a compaction), or waiting for the
    /// supervisor while it records a job that ended, hands the worker off first.
    pub fn refresh_finished(&self) -> io::Result<()> {
        if let Ok(cursor) = self.finished_cursor.try_lock()
            && self.log.unchanged_since(&cursor)
        {
            return Ok(());
        }
        crate::runtime::may_block(|| self.read_finished(None))
    }

    /// Reads the finished log's new lines and applies them, together with the removal of the
    /// running job that just ended, if any, in one step.
    fn read_finished(&self, ended: Option<&JobKey>) -> io::Result<()> {
        let mut cursor = self.finished_cursor.lock().unwrap_or_else(|p| p.into_inner());
        self.apply_finished(&mut cursor, ended)
    }

    /// [`JobIndex::read_finished`] for a caller that already holds the cursor.
    fn apply_finished(&self, cursor: &mut Cursor, ended: Option<&JobKey>) -> io::Result<()> {
        if ended.is_none() && self.log.unchanged_since(cursor) {
            return Ok(());
        }
        let update = self.log.read_since(cursor)?;
        let mut state = self.state();
        if let Some(ended) = ended {
            state.running.shift_remove(ended);
        }
        match update {
            Update::Appended(jobs) => state.set_finished(jobs, false, self.keep),
            Update::Replaced(jobs) => state.set_finished(jobs, true, self.keep),
        }
        Ok(())
    }

    // --- questions ---

    /// `(pending, running, finished)` counts.
    pub fn counts(&self) -> (usize, usize, usize) {
        let state = self.state();
        let starting = state.running.values().filter(|r| r.pid.is_none()).count();
        (state.pending.len() + starting, state.running.len() - starting, state.finished.len())
    }

    /// The state of a job, looked up as stock does: finished first, then running, then pending.
    pub fn state_of(&self, project: Option<&str>, id: &str) -> Option<JobState> {
        let state = self.state();
        let in_project = |p: &str| project.is_none_or(|want| want == p);
        let finished = state.finished_ids.get(id).is_some_and(|projects| projects.keys().any(|p| in_project(p)));
        if finished {
            return Some(JobState::Finished);
        }
        // With a project these are lookups; without one, scans of running and pending jobs only.
        // A job still starting (no pid yet) is pending to clients.
        let claimed = match project {
            Some(project) => state.running.get(&key(project, id)),
            None => state.running.iter().find(|((_, i), _)| i == id).map(|(_, r)| r),
        };
        let pending = match project {
            Some(project) => state.pending_ids.contains_key(&key(project, id)),
            None => state.pending_ids.keys().any(|(_, i)| i == id),
        };
        match claimed {
            Some(record) if record.pid.is_some() => Some(JobState::Running),
            Some(_) => Some(JobState::Pending),
            None if pending => Some(JobState::Pending),
            None => None,
        }
    }

    /// The newest finished record of a job, in `project` or (without one) in any project: one
    /// lookup however long the history is.
    pub fn finished(&self, project: Option<&str>, id: &str) -> Option<Arc<FinishedJob>> {
        let state = self.state();
        let projects = state.finished_ids.get(id)?;
        match project {
            Some(project) => projects.get(project).map(|runs| runs.newest.clone()),
            None => projects.values().map(|runs| &runs.newest).max_by(|a, b| a.end_time.cmp(&b.end_time)).cloned(),
        }
    }

    /// The running record of a job, if it is running.
    pub fn running(&self, project: &str, id: &str) -> Option<Arc<RunningJob>> {
        self.state().running.get(&key(project, id)).cloned()
    }

    /// Every entry, or one project's, for answering outside the lock.
    pub fn snapshot(&self, project: Option<&str>) -> Snapshot {
        let state = self.state();
        let wanted = |p: &str| project.is_none_or(|want| want == p);
        let (running, starting): (Vec<_>, Vec<_>) =
            state.running.values().filter(|r| wanted(&r.job.project)).cloned().partition(|r| r.pid.is_some());
        // Jobs still starting lead the pending list: they were its best entries.
        let pending = starting
            .into_iter()
            .map(|record| Arc::new(record.job.clone()))
            .chain(state.pending.values().filter(|j| wanted(&j.project)).cloned())
            .collect();
        Snapshot {
            pending,
            running,
            finished: state.finished.iter().rev().filter(|j| wanted(&j.project)).cloned().collect(),
        }
    }

    /// The next pending jobs to dispatch, best first, skipping `skip`.
    pub fn next_pending(&self, skip: &HashSet<JobKey>, limit: usize) -> Vec<Arc<PendingJob>> {
        let state = self.state();
        state.pending.values().filter(|job| !skip.contains(&key(&job.project, &job.id))).take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(dir: &std::path::Path) -> JobIndex {
        let spool = Spool::new(&dir.join("spool"));
        JobIndex::load(spool, FinishedLog::new(&dir.join("spool/.scrapyd-rs/finished.jl")), 100).unwrap()
    }

    #[test]
    fn an_id_scheduled_again_between_two_looks_is_read_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (index(dir.path()), index(dir.path()));
        let with_arg = |value: &str, enqueued_ns| {
            let mut job = PendingJob::for_tests("same", 0.0, enqueued_ns);
            job.args.insert("arg".into(), value.into());
            job
        };
        first.enqueue(with_arg("old", 1)).unwrap();
        second.rescan_project("p").unwrap();
        assert_eq!(second.snapshot(Some("p")).pending[0].args["arg"], "old");

        // Cancelled and scheduled again with other arguments, all before the second looks.
        assert!(first.cancel_pending("p", "same").unwrap());
        first.enqueue(with_arg("new", 2)).unwrap();
        second.rescan_project("p").unwrap();
        let pending = second.snapshot(Some("p")).pending;
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].args["arg"].as_str(), pending[0].enqueued_ns), ("new", 2));
    }
}
