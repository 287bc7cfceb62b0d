//! The job spool: every job's state as files, so it survives restarts and is shared by every
//! instance serving the same data directory.
//!
//! ```text
//! spool/projects/<project>/.lock                 serialises changes to the project's jobs
//! spool/projects/<project>/pending/<job>.json    a scheduled job
//! spool/projects/<project>/running/<job>.json    a claimed job (renamed from pending/)
//! spool/projects/<project>/running/<job>.lock    held by the instance supervising the crawl
//! spool/projects/<project>/running/<job>.result  written by the runner when the crawl ends
//! spool/finished.jl                              finished jobs, one JSON line each
//! ```
//!
//! Every change to a project's jobs happens under its `.lock`, so "is this job id already
//! pending or running?" and "move it from pending to running" are atomic for every instance.
//! Lock files are only ever created, locked and (when the job is gone) unlinked: never renamed.
//! A job file appears under its final name only once it is complete, and both it and its
//! directory are fsynced before the change is acknowledged.

pub mod finished;
pub mod index;
pub mod records;
pub mod watch;

use crate::fsutil;
use records::{PendingJob, RunningJob};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The longest job id we accept: it is a file name, with `.json`, `.result` or `.log` after it.
pub const MAX_JOB_ID_LEN: usize = 200;

/// Why a job id cannot name files.
pub fn check_job_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        Err("a job id cannot be empty".into())
    } else if id.contains(['/', '\\', '\0']) || id.contains("..") {
        Err(format!("a job id cannot contain '/', '\\', '..' or NUL: {id:?}"))
    } else if id.len() > MAX_JOB_ID_LEN {
        Err(format!("a job id is at most {MAX_JOB_ID_LEN} bytes long"))
    } else {
        Ok(())
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

/// A claimed job: the job and the lock that says "a live instance supervises it".
#[derive(Debug)]
pub struct Claim {
    pub job: PendingJob,
    pub lock: File,
}

/// The spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

/// Holds a project's lock until dropped. Each guard opens the lock file afresh: `flock` locks
/// belong to the open file description, so two guards exclude each other even within one
/// process (on NFS, where `flock` is emulated with POSIX locks, they would not).
pub struct ProjectGuard {
    _file: File,
}

impl Spool {
    pub fn new(spool_dir: &Path) -> Self {
        Spool { root: spool_dir.join("projects") }
    }

    /// The directory holding every project's job directories.
    pub fn projects_dir(&self) -> &Path {
        &self.root
    }

    pub fn project_dir(&self, project: &str) -> PathBuf {
        self.root.join(project)
    }

    pub fn pending_dir(&self, project: &str) -> PathBuf {
        self.project_dir(project).join("pending")
    }

    pub fn running_dir(&self, project: &str) -> PathBuf {
        self.project_dir(project).join("running")
    }

    fn pending_file(&self, project: &str, id: &str) -> PathBuf {
        self.pending_dir(project).join(format!("{id}.json"))
    }

    fn running_file(&self, project: &str, id: &str) -> PathBuf {
        self.running_dir(project).join(format!("{id}.json"))
    }

    fn running_lock(&self, project: &str, id: &str) -> PathBuf {
        self.running_dir(project).join(format!("{id}.lock"))
    }

    /// Where the runner records how the crawl ended.
    pub fn result_file(&self, project: &str, id: &str) -> PathBuf {
        self.running_dir(project).join(format!("{id}.result"))
    }

    /// Takes `project`'s lock, creating its directories on first use.
    pub fn lock_project(&self, project: &str) -> io::Result<ProjectGuard> {
        let dir = self.project_dir(project);
        for sub in ["pending", "running"] {
            fsutil::create_dir_all_durable(&dir.join(sub))?;
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(".lock"))?;
        file.lock()?;
        Ok(ProjectGuard { _file: file })
    }

    /// Writes a new pending job, refusing an id that is already pending or running in the project.
    pub fn enqueue(&self, job: &PendingJob) -> Result<(), EnqueueError> {
        let _guard = self.lock_project(&job.project)?;
        let duplicate = |state| EnqueueError::Duplicate { project: job.project.clone(), id: job.id.clone(), state };
        if self.pending_file(&job.project, &job.id).exists() {
            return Err(duplicate("pending"));
        }
        if self.running_file(&job.project, &job.id).exists() {
            return Err(duplicate("running"));
        }
        let dir = self.pending_dir(&job.project);
        let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(&dir)?;
        temp.write_all(&serde_json::to_vec(job).map_err(io::Error::from)?)?;
        // Rename first, then fsync the file and the directory: the same two flushes as the
        // other order, but the directory's flush finds the rename already in the journal.
        let file = temp.persist(self.pending_file(&job.project, &job.id)).map_err(|err| err.error)?;
        file.sync_all()?;
        fsutil::sync_dir(&dir)?;
        Ok(())
    }

    /// Removes a pending job; `false` when it was not pending (already claimed, or unknown).
    pub fn remove_pending(&self, project: &str, id: &str) -> io::Result<bool> {
        if !self.project_dir(project).is_dir() {
            return Ok(false);
        }
        let _guard = self.lock_project(project)?;
        match fs::remove_file(self.pending_file(project, id)) {
            Ok(()) => {
                fsutil::sync_dir(&self.pending_dir(project))?;
                Ok(true)
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Claims a pending job for this instance: locks its running lock file and moves its record
    /// from `pending/` to `running/`. `None` when another instance claimed it first.
    pub fn claim(&self, project: &str, id: &str) -> io::Result<Option<Claim>> {
        let _guard = self.lock_project(project)?;
        let pending = self.pending_file(project, id);
        let job: PendingJob = match fs::read(&pending) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(job) => job,
                Err(err) => return Err(io::Error::new(io::ErrorKind::InvalidData, err)),
            },
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(self.running_lock(project, id))?;
        if lock.try_lock().is_err() {
            return Ok(None);
        }
        fs::rename(&pending, self.running_file(project, id))?;
        fsutil::sync_dir(&self.running_dir(project))?;
        fsutil::sync_dir(&self.pending_dir(project))?;
        Ok(Some(Claim { job, lock }))
    }

    /// Replaces a running job's record (after the spawn, with the pid).
    pub fn write_running(&self, record: &RunningJob) -> io::Result<()> {
        fsutil::write_atomic(&self.running_file(&record.job.project, &record.job.id), &serde_json::to_vec(record)?)
    }

    /// Removes a running job's files once its finished record is written. The caller holds the
    /// job's lock (`lock`), which is released when it is dropped after this.
    pub fn remove_running(&self, project: &str, id: &str) -> io::Result<()> {
        let _guard = self.lock_project(project)?;
        let stats = self.running_dir(project).join(format!("{id}.result.stats"));
        for path in [self.running_file(project, id), self.result_file(project, id), stats, self.running_lock(project, id)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        fsutil::sync_dir(&self.running_dir(project))
    }

    /// Project names that have a spool directory.
    pub fn projects(&self) -> io::Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut projects = Vec::new();
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir())
                && let Ok(name) = entry.file_name().into_string()
            {
                projects.push(name);
            }
        }
        Ok(projects)
    }

    /// The job ids whose record is in `dir` (`pending/` or `running/`): names ending in `.json`.
    pub fn job_ids_in(dir: &Path) -> io::Result<Vec<String>> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        Ok(entries
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter_map(|name| name.strip_suffix(".json").map(str::to_string))
            .collect())
    }

    /// Reads a pending job's record; `None` if it is gone or unreadable (a crash can leave an
    /// unacknowledged record torn; such a record older than a minute is removed).
    pub fn read_pending(&self, project: &str, id: &str) -> Option<PendingJob> {
        read_record(&self.pending_file(project, id))
    }

    /// Reads a running job's record.
    pub fn read_running(&self, project: &str, id: &str) -> Option<RunningJob> {
        read_record(&self.running_file(project, id))
    }

    /// Tries to take the lock of a running job: `Some` when no live instance holds it (the job
    /// is orphaned) and its record still exists.
    pub fn try_lock_orphan(&self, project: &str, id: &str) -> io::Result<Option<File>> {
        let _guard = self.lock_project(project)?;
        if !self.running_file(project, id).exists() {
            return Ok(None);
        }
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(self.running_lock(project, id))?;
        Ok(lock.try_lock().is_ok().then_some(lock))
    }
}

/// Reads a job record. A record that is not even JSON was torn by a crash before it was
/// acknowledged; once it is a minute old it is moved into the project's `broken/` directory
/// (never deleted). A record that is JSON but not of the expected shape is left alone and
/// reported: it may come from a newer version of the daemon sharing the directory.
fn read_record<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(record) => Some(record),
        Err(err) if err.is_data() => {
            tracing::warn!("cannot use the job record {}: {err}", path.display());
            None
        }
        Err(err) => {
            let old = fs::metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > std::time::Duration::from_secs(60));
            if old {
                quarantine(path, &err);
            }
            None
        }
    }
}

/// Moves a torn record to `<project>/broken/`, next to the directory it was found in.
fn quarantine(path: &Path, err: &serde_json::Error) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let Some(project_dir) = dir.parent() else { return };
    let broken = project_dir.join("broken");
    let moved = fs::create_dir_all(&broken).and_then(|()| fs::rename(path, broken.join(name)));
    match moved {
        Ok(()) => tracing::warn!("moved {} to {}: torn by a crash ({err})", path.display(), broken.display()),
        Err(move_err) => tracing::warn!("{} is torn ({err}) and cannot be moved: {move_err}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;

    fn job(id: &str) -> PendingJob {
        PendingJob {
            id: id.into(),
            project: "p".into(),
            spider: "s".into(),
            version: None,
            settings: IndexMap::new(),
            args: IndexMap::new(),
            priority: 0.0,
            enqueued_ns: 1,
            node: "n".into(),
        }
    }

    #[test]
    fn job_ids_that_are_paths_are_refused() {
        for bad in ["", "a/b", "a\\b", "..", "x..y", "a\0", &"x".repeat(201)] {
            assert!(check_job_id(bad).is_err(), "{bad:?}");
        }
        for good in ["90299bf8e86211f1865502fc00000001", "2019-01-01T00_00_01", ".hidden", "a.b", "ü"] {
            assert!(check_job_id(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_job_moves_from_pending_to_running_once() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        spool.enqueue(&job("a")).unwrap();
        assert!(matches!(spool.enqueue(&job("a")), Err(EnqueueError::Duplicate { state: "pending", .. })));
        assert_eq!(Spool::job_ids_in(&spool.pending_dir("p")).unwrap(), ["a"]);
        let claim = spool.claim("p", "a").unwrap().expect("claimed");
        assert_eq!(claim.job, job("a"));
        assert!(spool.claim("p", "a").unwrap().is_none(), "a job is claimed once");
        assert!(matches!(spool.enqueue(&job("a")), Err(EnqueueError::Duplicate { state: "running", .. })));
        assert!(spool.try_lock_orphan("p", "a").unwrap().is_none(), "the claim's lock is held");
        spool.remove_running("p", "a").unwrap();
        drop(claim);
        spool.enqueue(&job("a")).unwrap();
        assert!(spool.remove_pending("p", "a").unwrap());
        assert!(!spool.remove_pending("p", "a").unwrap());
        assert!(Spool::job_ids_in(&spool.pending_dir("p")).unwrap().is_empty());
    }
}
