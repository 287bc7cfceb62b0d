//! The in-memory index of the spool: what `listjobs`, `status`, `daemonstatus`, `/jobs` and the
//! dispatcher read, so none of them lists directories or rereads history per request.
//!
//! It is kept current three ways: this instance's own changes are applied as they are made; a
//! project whose directories changed behind our back (another instance, seen by the watcher or
//! the periodic rescan) is re-listed, reading only records whose names are new; and the finished
//! log is read from where the last read stopped. The lock is held only to apply a change or to
//! copy out `Arc`s, never during disk I/O or serialisation, so a huge `listjobs` never delays
//! `daemonstatus`.

use super::Spool;
use super::finished::{Cursor, FinishedLog, Update};
use super::records::{FinishedJob, PendingJob, PendingOrder, RunningJob};
use indexmap::IndexMap;
use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// Finished jobs, oldest first (the log's order).
    finished: Vec<Arc<FinishedJob>>,
    /// Job id to the projects with a finished record of that id, so `status.json` without a
    /// project is one lookup however long the history is.
    finished_ids: HashMap<String, HashMap<String, usize>>,
}

impl State {
    fn insert_pending(&mut self, job: Arc<PendingJob>) {
        let order = job.order();
        if let Some(old) = self.pending_ids.insert(key(&job.project, &job.id), order.clone()) {
            self.pending.remove(&old);
        }
        self.pending.insert(order, job);
    }

    fn remove_pending(&mut self, key: &JobKey) -> bool {
        match self.pending_ids.remove(key) {
            Some(order) => self.pending.remove(&order).is_some(),
            None => false,
        }
    }

    fn set_finished(&mut self, jobs: Vec<FinishedJob>, replace: bool) {
        if replace {
            self.finished.clear();
            self.finished_ids.clear();
        }
        for job in jobs {
            *self.finished_ids.entry(job.id.clone()).or_default().entry(job.project.clone()).or_default() += 1;
            self.finished.push(Arc::new(job));
        }
    }
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

/// The index and the files it mirrors.
#[derive(Debug)]
pub struct JobIndex {
    spool: Spool,
    log: FinishedLog,
    state: Mutex<State>,
    /// Serialises reads of the finished log, so two readers never apply the same lines twice.
    finished_cursor: Mutex<Cursor>,
}

impl JobIndex {
    /// Builds the index from what is on disk.
    pub fn load(spool: Spool, log: FinishedLog) -> io::Result<JobIndex> {
        let index = JobIndex { spool, log, state: Mutex::default(), finished_cursor: Mutex::default() };
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

    // --- this instance's own changes ---

    /// A job this instance just enqueued.
    pub fn add_pending(&self, job: PendingJob) {
        self.state().insert_pending(Arc::new(job));
    }

    /// A pending job this instance removed or claimed.
    pub fn remove_pending(&self, project: &str, id: &str) -> bool {
        self.state().remove_pending(&key(project, id))
    }

    /// A running job's record, new or updated.
    pub fn set_running(&self, record: RunningJob) {
        let key = key(&record.job.project, &record.job.id);
        let mut state = self.state();
        state.remove_pending(&key);
        state.running.insert(key, Arc::new(record));
    }

    /// A running job that ended (its finished record is read from the log).
    pub fn remove_running(&self, project: &str, id: &str) {
        self.state().running.shift_remove(&key(project, id));
    }

    // --- catching up with the disk ---

    /// Re-lists every project's directories and reads the finished log's new lines.
    pub fn rescan_all(&self) -> io::Result<()> {
        for project in self.spool.projects()? {
            self.rescan_project(&project)?;
        }
        self.refresh_finished()
    }

    /// Re-lists one project's pending and running directories, reading only new records.
    pub fn rescan_project(&self, project: &str) -> io::Result<()> {
        let on_disk: HashSet<String> = Spool::job_ids_in(&self.spool.pending_dir(project))?.into_iter().collect();
        let known: HashSet<String> = {
            let state = self.state();
            state.pending_ids.keys().filter(|(p, _)| p == project).map(|(_, id)| id.clone()).collect()
        };
        let added: Vec<PendingJob> =
            on_disk.difference(&known).filter_map(|id| self.spool.read_pending(project, id)).collect();
        let running: Vec<RunningJob> = Spool::job_ids_in(&self.spool.running_dir(project))?
            .iter()
            .filter_map(|id| self.spool.read_running(project, id))
            .collect();

        let mut state = self.state();
        for gone in known.difference(&on_disk) {
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
    pub fn refresh_finished(&self) -> io::Result<()> {
        let mut cursor = self.finished_cursor.lock().unwrap_or_else(|p| p.into_inner());
        match self.log.read_since(&mut cursor)? {
            Update::Appended(jobs) if jobs.is_empty() => {}
            Update::Appended(jobs) => self.state().set_finished(jobs, false),
            Update::Replaced(jobs) => self.state().set_finished(jobs, true),
        }
        Ok(())
    }

    // --- questions ---

    /// `(pending, running, finished)` counts.
    pub fn counts(&self) -> (usize, usize, usize) {
        let state = self.state();
        (state.pending.len(), state.running.len(), state.finished.len())
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
        let running = match project {
            Some(project) => state.running.contains_key(&key(project, id)),
            None => state.running.keys().any(|(_, i)| i == id),
        };
        let pending = match project {
            Some(project) => state.pending_ids.contains_key(&key(project, id)),
            None => state.pending_ids.keys().any(|(_, i)| i == id),
        };
        if running {
            Some(JobState::Running)
        } else if pending {
            Some(JobState::Pending)
        } else {
            None
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
        Snapshot {
            pending: state.pending.values().filter(|j| wanted(&j.project)).cloned().collect(),
            running: state.running.values().filter(|r| wanted(&r.job.project)).cloned().collect(),
            finished: state.finished.iter().rev().filter(|j| wanted(&j.project)).cloned().collect(),
        }
    }

    /// The next pending jobs to dispatch, best first, skipping `skip`.
    pub fn next_pending(&self, skip: &HashSet<JobKey>, limit: usize) -> Vec<Arc<PendingJob>> {
        let state = self.state();
        state
            .pending
            .values()
            .filter(|job| !skip.contains(&key(&job.project, &job.id)))
            .take(limit)
            .cloned()
            .collect()
    }
}
