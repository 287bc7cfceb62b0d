//! The job spool: every job's state as files, so it survives restarts and is shared by every
//! instance serving the same data directory.
//!
//! ```text
//! spool/<project>/.lock                          the project's lock, change counter, journal marks
//! spool/<project>/journal                        makes scheduled jobs durable (see `journal`)
//! spool/<project>/pending/<key>-<job>.json       a scheduled job; `ls` shows dispatch order
//! spool/<project>/spares/<maker>-<batch>/<n>     empty files made ahead of time (see `spares`)
//! spool/<project>/running/<job>.json             a claimed job (renamed from pending/)
//! spool/<project>/running/<job>.lock             held by the instance supervising the crawl
//! spool/<project>/running/<job>.result           written by the runner when the crawl ends
//! spool/<project>/running/<job>.cancel           cancel requests for a crawl another instance runs
//! spool/.scrapyd-rs/finished.jl                  finished jobs, one JSON line each
//! spool/.scrapyd-rs/{spiders,runner,uploads}/    spider-list cache, runner module, upload staging
//! ```
//!
//! A pending file's name starts with a key that sorts by priority (highest first) and then by
//! age, so a plain directory listing is the dispatch order.
//!
//! Every change to a project's job files happens under its `.lock`, so "is this job id already
//! pending or running?" and "move it from pending to running" are atomic for every instance. The
//! lock file also holds a counter that every change bumps first: an instance whose last look at
//! the project saw another value re-lists it before deciding anything, and one that saw the same
//! value knows nothing changed without listing a thing. Lock files are only ever created, locked
//! and (once their job is gone) unlinked: never renamed. A job file appears under its final name
//! only once complete, and is durable before the change is acknowledged: through a record in the
//! project's journal (a scheduled job), or with both it and its directory fsynced.

pub mod finished;
pub mod index;
pub mod journal;
pub mod records;
pub mod spares;
pub mod watch;

use crate::fsutil;
use journal::{Journal, Marks};
use records::{PendingJob, RunningJob};
use spares::Spares;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The directory under `spool_dir` that holds the daemon's own state; no project may use it.
pub const INTERNAL_DIR: &str = ".scrapyd-rs";

/// The longest job id we accept: a pending file's name adds 43 bytes (key, time, dashes,
/// `.json`) and must fit in 255.
pub const MAX_JOB_ID_LEN: usize = 212;

/// Why a job id cannot name files, if it cannot.
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

/// The sortable prefix of a pending file's name: 16 hex digits that sort the highest priority
/// first (NaN last), a dash, and the enqueue time in nanoseconds as 20 digits.
pub fn pending_file_name(job: &PendingJob) -> String {
    format!("{:016x}-{:020}-{}.json", priority_key(job.priority), job.enqueued_ns, job.id)
}

/// The job id in a pending file's name, or `None` if the name is not one of ours.
pub fn job_id_of_pending_name(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".json")?;
    let (key, rest) = (stem.get(..16)?, stem.get(16..)?);
    let (ns, id) = (rest.get(1..21)?, rest.get(21..)?);
    let well_formed = key.bytes().all(|b| b.is_ascii_hexdigit())
        && rest.starts_with('-')
        && ns.bytes().all(|b| b.is_ascii_digit())
        && id.starts_with('-');
    (well_formed && id.len() > 1).then(|| &id[1..])
}

fn priority_key(priority: f64) -> u64 {
    if priority.is_nan() {
        return u64::MAX;
    }
    // IEEE 754 bits made to sort like the numbers, then inverted so the highest sorts first.
    let bits = priority.to_bits();
    let ascending = if bits >> 63 == 1 { !bits } else { bits | 1 << 63 };
    // Only a NaN has all bits set, and NaN returned above: every number sorts before NaN.
    !ascending
}

/// A claimed job: the job and the lock that says "a live instance supervises it".
#[derive(Debug)]
pub struct Claim {
    pub job: PendingJob,
    pub lock: File,
}

/// A project's lock, held until dropped, and its change counter.
///
/// Each guard opens the lock file afresh: `flock` locks belong to the open file description, so
/// two guards exclude each other even within one process (on NFS, where `flock` is emulated with
/// POSIX locks, they would not).
#[derive(Debug)]
pub struct ProjectGuard {
    file: File,
}

impl ProjectGuard {
    /// The project's change counter.
    pub fn generation(&self) -> io::Result<u64> {
        Spool::peek_generation(&self.file)
    }

    /// Counts a change about to be made; returns the new value. Bumping before the change means
    /// a crash in the middle costs other instances a needless re-listing, never a missed change.
    /// (Not fsynced: after a machine crash every instance starts with a full listing anyway.)
    pub fn bump(&self) -> io::Result<u64> {
        let next = self.generation()?.wrapping_add(1);
        self.file.write_all_at(&next.to_le_bytes(), 0)?;
        Ok(next)
    }

    /// The journal's marks, if they were written under the boot `boot` about the journal file
    /// with inode number `journal`. The lock file holds the change counter in bytes 0..8, then
    /// the boot id (8..24), the head (24..32), the checkpoint (32..40) and the journal's inode
    /// number (40..48). (Not fsynced either: after a reboot they are found again.)
    pub fn journal_marks(&self, boot: &[u8; 16], journal: u64) -> io::Result<Option<Marks>> {
        let mut bytes = [0u8; 40];
        let read = self.file.read_at(&mut bytes, 8)?;
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
        if read < bytes.len() || bytes[..16] != boot[..] || word(32) != journal {
            return Ok(None);
        }
        Ok(Some(Marks { head: word(16), checkpoint: word(24) }))
    }

    /// Records the marks of the journal file with inode number `journal` as written under the
    /// boot `boot`.
    pub fn set_journal_marks(&self, boot: &[u8; 16], journal: u64, marks: Marks) -> io::Result<()> {
        let mut bytes = [0u8; 40];
        bytes[..16].copy_from_slice(boot);
        bytes[16..24].copy_from_slice(&marks.head.to_le_bytes());
        bytes[24..32].copy_from_slice(&marks.checkpoint.to_le_bytes());
        bytes[32..].copy_from_slice(&journal.to_le_bytes());
        self.file.write_all_at(&bytes, 8)
    }
}

/// The spool directory's layout and the file operations on it. Callers pass the project's guard
/// to every operation that changes the project.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
    /// The projects' journals (shared by the clones of this spool).
    journal: Arc<Journal>,
    /// Empty pending files made ahead of time (shared by the clones of this spool).
    spares: Arc<Spares>,
}

impl Spool {
    pub fn new(spool_dir: &Path) -> Self {
        Spool { root: spool_dir.to_path_buf(), journal: Arc::new(Journal::new(spool_dir)), spares: Arc::default() }
    }

    /// The spool directory, whose sub-directories are projects.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A directory or file of the daemon's own state, `spool/.scrapyd-rs/<name>`.
    pub fn internal(&self, name: &str) -> PathBuf {
        self.root.join(INTERNAL_DIR).join(name)
    }

    pub fn pending_dir(&self, project: &str) -> PathBuf {
        self.root.join(project).join("pending")
    }

    pub fn running_dir(&self, project: &str) -> PathBuf {
        self.root.join(project).join("running")
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

    /// The runner's own files beside its result: its pid and start time (`.pid`, written first)
    /// and the crawl's stats on the way to the result (`.stats`).
    fn runner_files(&self, project: &str, id: &str) -> [PathBuf; 3] {
        let dir = self.running_dir(project);
        [self.result_file(project, id), dir.join(format!("{id}.result.pid")), dir.join(format!("{id}.result.stats"))]
    }

    /// The pid and start time the runner recorded for itself, if it did.
    pub fn runner_identity(&self, project: &str, id: &str) -> Option<(u32, u64)> {
        #[derive(serde::Deserialize)]
        struct Identity {
            pid: u32,
            start_ticks: u64,
        }
        let bytes = fs::read(self.running_dir(project).join(format!("{id}.result.pid"))).ok()?;
        let identity: Identity = serde_json::from_slice(&bytes).ok()?;
        Some((identity.pid, identity.start_ticks))
    }

    /// Reads `project`'s change counter through `file`, an open handle on its lock file, without
    /// taking the lock: a hint that something changed, to be confirmed under the lock.
    pub fn peek_generation(file: &File) -> io::Result<u64> {
        let mut bytes = [0u8; 8];
        let read = file.read_at(&mut bytes, 0)?;
        Ok(if read == 8 { u64::from_le_bytes(bytes) } else { 0 })
    }

    /// Opens `project`'s lock file for [`Spool::peek_generation`].
    pub fn open_lock_file(&self, project: &str) -> io::Result<File> {
        File::open(self.root.join(project).join(".lock"))
    }

    /// Where cancel requests for a running job go: one signal number per line, appended by
    /// whichever instance received `cancel.json`, read by the instance supervising the crawl.
    pub fn cancel_file(&self, project: &str, id: &str) -> PathBuf {
        self.running_dir(project).join(format!("{id}.cancel"))
    }

    /// Asks the instance supervising a crawl to signal it. Appending one short line is atomic,
    /// so requests from several instances never mix.
    pub fn request_cancel(&self, project: &str, id: &str, signal: i32) -> io::Result<()> {
        let mut file = OpenOptions::new().create(true).append(true).open(self.cancel_file(project, id))?;
        file.write_all(format!("{signal}\n").as_bytes())
    }

    /// The signals requested for a job so far, in order.
    pub fn cancel_requests(&self, project: &str, id: &str) -> Vec<i32> {
        fs::read_to_string(self.cancel_file(project, id))
            .map(|text| text.lines().filter_map(|line| line.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Takes `project`'s lock, creating its directories on first use.
    ///
    /// `pending/` and `running/` are made spread away from the project's directory (see
    /// [`fsutil::spread_subdirectories`]), so their inodes are not in the inode-table block that
    /// holds the journal's and the lock file's. On ext4 without a journal, a directory changed by
    /// a rename shares the synchronous write of any file whose inode sits in the same block: in a
    /// loop of renames into a `pending/` beside the journal, each record's write carried one more
    /// 4 KiB block (measured outside the daemon: 132 µs against 87 µs for the record's write, 3
    /// device writes against 2).
    pub fn lock_project(&self, project: &str) -> io::Result<ProjectGuard> {
        let dir = self.root.join(project);
        for sub in ["pending", "running"].map(|sub| dir.join(sub)) {
            if !fsutil::is_dir_quietly(&sub) {
                // Directories made durable (fsyncs), once per project: off the async worker.
                crate::runtime::may_block(|| -> io::Result<()> {
                    fsutil::create_dir_all_durable(&dir)?;
                    fsutil::spread_subdirectories(&dir);
                    fsutil::create_dir_all_durable(&sub)
                })?;
            }
        }
        let file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(dir.join(".lock"))?;
        match file.try_lock() {
            Ok(()) => {}
            // Held by another instance or thread, maybe for a filesystem sync: wait without
            // holding up the async worker if this runs in place on it.
            Err(std::fs::TryLockError::WouldBlock) => crate::runtime::may_block(|| file.lock())?,
            Err(std::fs::TryLockError::Error(err)) => return Err(err),
        }
        Ok(ProjectGuard { file })
    }

    /// Removes temporary files a crash left in a project's directory and its job directories (a
    /// journal being made, a job file being written). Every writer holds
    /// the project's lock while its temporary file exists, so under the lock any one found is an
    /// orphan. A temporary name is `.tmp-` and random letters, with no extension, so no job file
    /// (always `<id>.json`, `.lock`, ...) matches, whatever its id.
    pub fn remove_stray_temp_files(&self, _guard: &ProjectGuard, project: &str) -> io::Result<()> {
        let temporary = |name: &String| name.strip_prefix(".tmp-").is_some_and(|rest| !rest.contains('.'));
        for dir in [self.root.join(project), self.pending_dir(project), self.running_dir(project)] {
            for name in list_names(&dir)?.into_iter().filter(temporary) {
                tracing::info!(project, "removing {name}, a temporary file left by a crash");
                let _ = fs::remove_file(dir.join(name));
            }
        }
        Ok(())
    }

    /// Project names that have a spool directory.
    pub fn projects(&self) -> io::Result<Vec<String>> {
        let mut projects = Vec::new();
        for name in list_names(&self.root)?.into_iter().filter(|name| name != INTERNAL_DIR) {
            let dir = self.root.join(&name);
            if ["pending", "running"].iter().any(|sub| fsutil::is_dir_quietly(&dir.join(sub))) {
                projects.push(name);
            }
        }
        Ok(projects)
    }

    /// The names of a project's pending files, in dispatch order.
    pub fn pending_names(&self, project: &str) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = list_names(&self.pending_dir(project))?
            .into_iter()
            .filter(|n| job_id_of_pending_name(n).is_some())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Reads one pending file.
    pub fn read_pending(&self, project: &str, name: &str) -> Option<PendingJob> {
        read_record(&self.pending_dir(project).join(name))
    }

    /// Writes a new pending job durably: through the project's journal (one synchronous write),
    /// or, for a job too large for a journal block, as a new file fsynced with its directory.
    pub fn write_pending(&self, guard: &ProjectGuard, job: &PendingJob) -> io::Result<()> {
        let dir = self.pending_dir(&job.project);
        let (name, record) = (pending_file_name(job), serde_json::to_vec(job)?);
        let write_file = || self.spares.write(&dir, &name, &record);
        if self.journal.append(guard, &job.project, &name, &record, write_file)? {
            return Ok(());
        }
        let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(&dir)?;
        temp.write_all(&record)?;
        // Rename first, then fsync the file and the directory. The file's fsync commits the
        // journal transaction that already holds the rename, so the directory's fsync, which
        // POSIX needs for the new name, finds nothing left to write: one journal commit per job.
        // The answer waits for both; a loader skips a file torn by a crash in between.
        let file = temp.persist(dir.join(pending_file_name(job))).map_err(|e| e.error)?;
        crate::runtime::may_block(|| file.sync_all().and_then(|()| fsutil::sync_dir(&dir)))
    }

    /// Puts back the pending files that the project's journal acknowledged before a reboot and
    /// the disk did not keep (see [`Journal::recover`]), and removes spare files left unused by
    /// crashes. The caller holds the project's lock.
    pub fn recover_pending(&self, guard: &ProjectGuard, project: &str) -> io::Result<()> {
        self.journal.recover(guard, project)?;
        self.spares.remove_unused(&self.pending_dir(project))
    }

    /// Writes many new pending jobs of one project durably, for imports: every file is written
    /// and renamed first, then all are fsynced, then the directory once. Per-job fsyncs cost one
    /// journal commit each (about 3 ms on ext4); this costs a few per batch. Until this returns
    /// nothing may be recorded as done with them: a crash can leave any of them unwritten.
    pub fn write_pending_batch(&self, _guard: &ProjectGuard, jobs: &[PendingJob]) -> io::Result<()> {
        /// Open files kept for the batched fsync; well under the usual limit of 1024 descriptors.
        const OPEN_AT_ONCE: usize = 256;
        let Some(first) = jobs.first() else { return Ok(()) };
        let dir = self.pending_dir(&first.project);
        for chunk in jobs.chunks(OPEN_AT_ONCE) {
            let mut written = Vec::with_capacity(chunk.len());
            for job in chunk {
                debug_assert_eq!(job.project, first.project, "one project per batch");
                let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(&dir)?;
                temp.write_all(&serde_json::to_vec(job)?)?;
                written.push(temp.persist(dir.join(pending_file_name(job))).map_err(|e| e.error)?);
            }
            for file in written {
                file.sync_all()?;
            }
        }
        fsutil::sync_dir(&dir)
    }

    /// Removes a pending file; `false` if it was not there.
    pub fn remove_pending(&self, guard: &ProjectGuard, project: &str, name: &str) -> io::Result<bool> {
        // Settled first, or a recovery after a reboot would bring the job back from the journal.
        self.journal.settle(guard, project)?;
        match fs::remove_file(self.pending_dir(project).join(name)) {
            Ok(()) => fsutil::sync_dir(&self.pending_dir(project)).map(|()| true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Whether a job id has a running record in the project.
    pub fn is_running(&self, project: &str, id: &str) -> bool {
        self.running_file(project, id).exists()
    }

    /// Claims a pending file for this instance: takes the job's running lock, then renames the
    /// record into `running/`. `None` if the file is gone (claimed elsewhere) or the lock is held.
    pub fn claim(&self, guard: &ProjectGuard, project: &str, name: &str, job: PendingJob) -> io::Result<Option<Claim>> {
        // Settled first: the claimed record must be durable in `running/`, and a recovery after
        // a reboot must not bring the job back into `pending/` from the journal.
        self.journal.settle(guard, project)?;
        let lock = self.open_running_lock(project, &job.id)?;
        if lock.try_lock().is_err() {
            return Ok(None);
        }
        // An earlier job with this id may have left a cancel request or a result behind (a crash,
        // or a cancel that arrived as it ended): they are not this job's.
        let [result, pid, stats] = self.runner_files(project, &job.id);
        for stale in [self.cancel_file(project, &job.id), result, pid, stats] {
            match fs::remove_file(stale) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        match fs::rename(self.pending_dir(project).join(name), self.running_file(project, &job.id)) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        }
        fsutil::sync_dir(&self.running_dir(project))?;
        fsutil::sync_dir(&self.pending_dir(project))?;
        Ok(Some(Claim { job, lock }))
    }

    fn open_running_lock(&self, project: &str, id: &str) -> io::Result<File> {
        OpenOptions::new().create(true).truncate(false).write(true).open(self.running_lock(project, id))
    }

    /// Replaces a running job's record (after the spawn, with the pid).
    pub fn write_running(&self, _guard: &ProjectGuard, record: &RunningJob) -> io::Result<()> {
        fsutil::write_atomic(&self.running_file(&record.job.project, &record.job.id), &serde_json::to_vec(record)?)
    }

    /// Removes a running job's files once its finished record is written.
    pub fn remove_running(&self, _guard: &ProjectGuard, project: &str, id: &str) -> io::Result<()> {
        let [result, pid, stats] = self.runner_files(project, id);
        let files = [
            self.running_file(project, id),
            result,
            pid,
            stats,
            self.cancel_file(project, id),
            self.running_lock(project, id),
        ];
        for path in files {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        fsutil::sync_dir(&self.running_dir(project))
    }

    /// The ids of a project's running records.
    pub fn running_ids(&self, project: &str) -> io::Result<Vec<String>> {
        Ok(list_names(&self.running_dir(project))?
            .into_iter()
            .filter_map(|name| name.strip_suffix(".json").map(str::to_string))
            .collect())
    }

    /// Reads a running job's record.
    pub fn read_running(&self, project: &str, id: &str) -> Option<RunningJob> {
        read_record(&self.running_file(project, id))
    }

    /// Takes the lock of a running job when no live instance holds it (the job is orphaned) and
    /// its record still exists.
    pub fn lock_orphan(&self, _guard: &ProjectGuard, project: &str, id: &str) -> io::Result<Option<File>> {
        if !self.is_running(project, id) {
            return Ok(None);
        }
        let lock = self.open_running_lock(project, id)?;
        Ok(lock.try_lock().is_ok().then_some(lock))
    }
}

fn list_names(dir: &Path) -> io::Result<Vec<String>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().filter_map(|entry| entry.file_name().into_string().ok()).collect()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(err),
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
fn quarantine(path: &Path, err: &dyn std::fmt::Display) {
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

    fn job(id: &str, priority: f64, enqueued_ns: u64) -> PendingJob {
        PendingJob::for_tests(id, priority, enqueued_ns)
    }

    #[test]
    fn job_ids_that_are_paths_are_refused() {
        for bad in ["", "a/b", "a\\b", "..", "x..y", "a\0", &"x".repeat(MAX_JOB_ID_LEN + 1)] {
            assert!(check_job_id(bad).is_err(), "{bad:?}");
        }
        for good in ["90299bf8e86211f1865502fc00000001", "2019-01-01T00_00_01", ".hidden", "a.b", "ü", "-"] {
            assert!(check_job_id(good).is_ok(), "{good:?}");
        }
        let longest = "x".repeat(MAX_JOB_ID_LEN);
        assert!(check_job_id(&longest).is_ok());
        let job = PendingJob { id: longest, ..job("x", f64::NAN, u64::MAX) };
        assert_eq!(pending_file_name(&job).len(), 255, "the longest id still makes a valid file name");
    }

    #[test]
    fn pending_names_sort_in_dispatch_order_and_name_their_job() {
        let jobs = [
            job("nan", f64::NAN, 1),
            job("low", -2.5, 1),
            job("old", 0.0, 100),
            job("new", 0.0, 200),
            job("high", 7.0, 300),
            job("inf", f64::INFINITY, 400),
            job("neg-inf", f64::NEG_INFINITY, 1),
            job("tiny", 1e-300, 1),
        ];
        let mut names: Vec<String> = jobs.iter().map(pending_file_name).collect();
        names.sort();
        let ids: Vec<&str> = names.iter().map(|n| job_id_of_pending_name(n).unwrap()).collect();
        assert_eq!(ids, ["inf", "high", "tiny", "old", "new", "low", "neg-inf", "nan"]);
        let mut by_order = jobs.to_vec();
        by_order.sort_by_key(PendingJob::order);
        assert_eq!(by_order.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ids, "names sort like the index");
        assert_eq!(job_id_of_pending_name("x.json"), None);
        assert_eq!(job_id_of_pending_name(".tmp-abc"), None);
        assert_eq!(job_id_of_pending_name(&pending_file_name(&job("a-b.c", 1.0, 5))), Some("a-b.c"));
    }

    #[test]
    fn stray_temporary_files_are_removed_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        let guard = spool.lock_project("p").unwrap();
        fs::write(spool.pending_dir("p").join(".tmp-abc123"), b"{\"torn").unwrap();
        fs::write(spool.running_dir("p").join(".tmp-def456"), b"").unwrap();
        // A job whose id looks like a temporary name is still a job.
        fs::write(spool.running_dir("p").join(".tmp-evil.json"), b"{}").unwrap();
        let job = job("kept", 0.0, 1);
        spool.write_pending(&guard, &job).unwrap();
        spool.remove_stray_temp_files(&guard, "p").unwrap();
        assert_eq!(list_names(&spool.running_dir("p")).unwrap(), [".tmp-evil.json"]);
        let pending: Vec<String> =
            list_names(&spool.pending_dir("p")).unwrap().into_iter().filter(|n| !n.starts_with(".spare-")).collect();
        assert_eq!(pending, [pending_file_name(&job)], "spare files (made in the background) are not temporary");
    }

    #[test]
    fn the_change_counter_lives_in_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        let guard = spool.lock_project("p").unwrap();
        assert_eq!(guard.generation().unwrap(), 0);
        assert_eq!(guard.bump().unwrap(), 1);
        drop(guard);
        assert_eq!(spool.lock_project("p").unwrap().generation().unwrap(), 1);
        assert_eq!(spool.projects().unwrap(), ["p"]);
    }
}
