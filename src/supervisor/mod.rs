//! The supervisor: the one owner of crawl processes.
//!
//! HTTP handlers only write spool files and send messages here. This task claims pending jobs
//! into free slots (best priority first, across every project), starts each crawl in its own
//! process group with its output going straight to its log file, notices when it ends, records
//! how, and frees the slot at once. It wakes when a job is scheduled or a file in the spool
//! changes, and rescans every `poll_interval` in case the filesystem delivers no events.
//!
//! Crawls outlive the daemon: stopping it leaves them running, and the next start (this
//! instance or another sharing the directory) re-adopts the ones still alive, checking each
//! pid against its recorded start time, and records the others from the exit status the runner
//! wrote, or as lost.

pub mod launch;
pub mod process;

use crate::app::App;
use crate::eggs::StoredEgg;
use crate::logparser::{JobName, RunningLog, StatsFiles};
use crate::runtime::blocking;
use crate::spool::index::JobKey;
use crate::spool::records::{FinishedJob, Outcome, PendingJob, RunningJob, local_time};
use crate::spool::watch::{JobsChanged, PendingSwitch, Watching};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::future::Future;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

/// How handlers reach the supervisor: they change the spool, then wake it for what they changed.
#[derive(Debug, Clone)]
pub struct SupervisorHandle {
    jobs_added: Arc<Notify>,
    cancels_requested: Arc<Notify>,
    slot_free: Arc<AtomicBool>,
}

/// The supervisor's end of the handle.
#[derive(Debug)]
pub struct SupervisorInbox {
    jobs_added: Arc<Notify>,
    cancels_requested: Arc<Notify>,
    slot_free: Arc<AtomicBool>,
}

impl SupervisorHandle {
    pub fn new() -> (SupervisorHandle, SupervisorInbox) {
        let (jobs_added, cancels_requested) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let slot_free = Arc::new(AtomicBool::new(true));
        let inbox = SupervisorInbox {
            jobs_added: jobs_added.clone(),
            cancels_requested: cancels_requested.clone(),
            slot_free: slot_free.clone(),
        };
        (SupervisorHandle { jobs_added, cancels_requested, slot_free }, inbox)
    }

    /// A job was scheduled (it is in the index): fill a free slot now rather than at the next
    /// rescan. With every slot busy the supervisor is not woken at all: the job is taken when a
    /// slot frees, since the supervisor reads the index after it says a slot is free (see
    /// `Supervisor::dispatch`). A burst of schedules then costs no thread a wake-up per job.
    pub fn job_added(&self) {
        if self.slot_free.load(Ordering::SeqCst) {
            self.jobs_added.notify_one();
        }
    }

    /// A crawl's cancel request was written: act on it now.
    pub fn cancel_requested(&self) {
        self.cancels_requested.notify_one();
    }
}

/// How a crawl process ended, as its parent (or a watcher of its pid) saw it.
#[derive(Debug)]
struct Ended {
    key: JobKey,
    exit_code: Option<i32>,
    signal: Option<i32>,
}

/// A crawl this instance supervises.
#[derive(Debug)]
struct Crawl {
    record: RunningJob,
    pid: u32,
    /// Held for the crawl's life: other instances see the crawl is supervised.
    _lock: File,
    /// Set once `cancel.json` asked for it: when to escalate to SIGKILL of the group.
    cancel_deadline: Option<Instant>,
    killed: bool,
    /// The process has ended and its finished record is being written; the slot stays taken
    /// until it is, so no more than `max_proc` jobs ever show as running.
    ending: bool,
    /// How far LogParser's files for the crawl have read its log.
    log: Arc<RunningLog>,
}

impl Crawl {
    /// A crawl this instance now supervises (just started, or adopted), holding its lock.
    fn new(record: RunningJob, pid: u32, lock: File, cancel_deadline: Option<Instant>) -> Crawl {
        Crawl { record, pid, _lock: lock, cancel_deadline, killed: false, ending: false, log: Arc::default() }
    }
}

struct Supervisor {
    app: Arc<App>,
    /// Crawls whose finished record has been written: their slots are free.
    recorded_tx: mpsc::UnboundedSender<JobKey>,
    /// Slots: `max_proc`, or `max_proc_per_cpu` × CPUs (counted once, at start).
    max: usize,
    crawls: HashMap<JobKey, Crawl>,
    ended_tx: mpsc::UnboundedSender<Ended>,
    /// An update of running crawls' LogParser files is under way (they never overlap).
    updating_stats: Arc<AtomicBool>,
    /// Whether a slot may be free, for [`SupervisorHandle::job_added`].
    slot_free: Arc<AtomicBool>,
    /// Whether the spool watch reports pending jobs: only while a slot is free.
    pending_watch: Option<PendingSwitch>,
}

/// Runs the supervisor until `shutdown` completes. Running crawls are left running.
///
/// `watching` names projects whose spool files changed (the filesystem watch, if any).
pub async fn run(
    app: Arc<App>,
    inbox: SupervisorInbox,
    watching: Option<Watching>,
    shutdown: impl Future<Output = ()>,
) {
    let SupervisorInbox { jobs_added, cancels_requested, slot_free } = inbox;
    let (mut changes, pending_watch) = watching.map(|watching| (watching.changes, watching.pending)).unzip();
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel();
    let (recorded_tx, mut recorded_rx) = mpsc::unbounded_channel();
    let max = app.config.max_processes();
    let mut supervisor = Supervisor {
        app: app.clone(),
        recorded_tx,
        max,
        crawls: HashMap::new(),
        ended_tx,
        updating_stats: Arc::default(),
        slot_free,
        pending_watch,
    };
    // Crawls left by a previous run hold slots: adopt them before starting anything.
    supervisor.adopt_orphans().await;
    supervisor.cancel_requested().await;
    supervisor.dispatch().await;
    let period = app.config.poll_interval.max(Duration::from_millis(100));
    let mut rescan = tokio::time::interval_at(Instant::now() + period, period);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        let deadline = supervisor.next_deadline();
        tokio::select! {
            () = &mut shutdown => break,
            () = jobs_added.notified() => supervisor.dispatch().await,
            () = cancels_requested.notified() => supervisor.cancel_requested().await,
            _ = rescan.tick() => {
                supervisor.rescan().await;
                supervisor.adopt_orphans().await;
                supervisor.cancel_requested().await;
                supervisor.dispatch().await;
                supervisor.update_running_stats();
            }
            Some(change) = next_change(&mut changes) => {
                if supervisor.catch_up(change, &mut changes).await {
                    supervisor.cancel_requested().await;
                }
                supervisor.dispatch().await;
            }
            Some(ended) = ended_rx.recv() => supervisor.finish(ended),
            Some(key) = recorded_rx.recv() => {
                // Dropping the crawl releases its lock; its slot takes the next job.
                supervisor.crawls.remove(&key);
                supervisor.dispatch().await;
            }
            () = sleep_until(deadline) => supervisor.escalate(),
        }
    }
    if app.config.stop_crawls_on_shutdown && !supervisor.crawls.is_empty() {
        tracing::info!(crawls = supervisor.crawls.len(), "stopping this instance's crawls before exiting");
        let keys: Vec<JobKey> = supervisor.crawls.keys().cloned().collect();
        for key in &keys {
            supervisor.cancel(key, libc::SIGINT);
        }
        // The escalation to SIGKILL comes after `cancel_grace`; the ends are then recorded.
        let give_up = Instant::now() + app.config.cancel_grace + Duration::from_secs(10);
        while !supervisor.crawls.is_empty() {
            let deadline = supervisor.next_deadline();
            tokio::select! {
                Some(ended) = ended_rx.recv() => supervisor.finish(ended),
                Some(key) = recorded_rx.recv() => {
                    supervisor.crawls.remove(&key);
                }
                () = sleep_until(deadline) => supervisor.escalate(),
                () = tokio::time::sleep_until(give_up) => break,
            }
        }
    }
    tracing::info!(crawls = supervisor.crawls.len(), "supervisor stopped; running crawls continue");
}

async fn next_change(changes: &mut Option<mpsc::UnboundedReceiver<JobsChanged>>) -> Option<JobsChanged> {
    match changes {
        Some(changes) => changes.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl Supervisor {
    /// Re-lists the projects whose files changed (this one and any others already reported),
    /// and reads new finished records when crawls may have changed; returns whether they may
    /// have (a cancel request among them, too).
    async fn catch_up(&self, first: JobsChanged, changes: &mut Option<mpsc::UnboundedReceiver<JobsChanged>>) -> bool {
        let mut crawls_changed = first.crawls;
        let mut projects = HashSet::from([first.project]);
        if let Some(changes) = changes {
            while let Ok(change) = changes.try_recv() {
                crawls_changed |= change.crawls;
                projects.insert(change.project);
            }
        }
        // Most events are this instance's own changes, which the index already holds: a peek at
        // each project's change counter (one read) says so without a trip to the blocking pool.
        projects.retain(|project| self.app.index.project_moved(project));
        if projects.is_empty() {
            // A job another instance finished changes its project's counter, but one this
            // instance relisted since may already be gone from running: read the finished log.
            // Only a change among the crawls can mean that; a scheduled job cannot.
            if crawls_changed && let Err(err) = self.app.index.refresh_finished() {
                tracing::warn!("reading the finished log failed: {err}");
            }
            return crawls_changed;
        }
        let app = self.app.clone();
        let scanned = blocking(move || {
            for project in &projects {
                app.index.rescan_project(project)?;
            }
            app.index.refresh_finished()
        })
        .await;
        if let Err(err) = scanned {
            tracing::warn!("catching up with the spool failed: {err}");
        }
        crawls_changed
    }

    /// Catches up with every project whose change counter moved, and with the finished log.
    async fn rescan(&self) {
        let index = self.app.index.clone();
        if let Err(err) = blocking(move || index.rescan_all()).await {
            tracing::warn!("rescanning the spool failed: {err}");
        }
    }

    /// Fills free slots with the best pending jobs, across all projects.
    ///
    /// Whether a slot is free is published before the index is read: a job added to the index
    /// after that read finds the flag set and wakes the supervisor, and one added before it is
    /// seen by the read itself, so no job waits for the rescan while a slot is free. While every
    /// slot is busy the spool watch does not report pending jobs, so when a slot frees, every
    /// project is looked at again first: a job another instance scheduled meanwhile competes by
    /// its priority like any other.
    async fn dispatch(&mut self) {
        let free = self.crawls.len() < self.max;
        let was_free = self.slot_free.swap(free, Ordering::SeqCst);
        if free && !was_free {
            self.hear_pending(true);
            self.rescan().await;
        }
        self.fill_slots().await;
        let free = self.crawls.len() < self.max;
        self.slot_free.store(free, Ordering::SeqCst);
        self.hear_pending(free);
    }

    fn hear_pending(&self, hear: bool) {
        if let Some(switch) = &self.pending_watch {
            switch.hear(hear);
        }
    }

    async fn fill_slots(&mut self) {
        let mut skip = HashSet::new();
        while self.crawls.len() < self.max {
            let free = self.max - self.crawls.len();
            let candidates = self.app.index.next_pending(&skip, free);
            if candidates.is_empty() {
                return;
            }
            for job in candidates {
                if self.crawls.len() >= self.max {
                    return;
                }
                // A project deleted after the job was scheduled keeps its jobs pending until it
                // is deployed again, as in stock.
                if !self.app.project_exists(&job.project).await {
                    skip.insert((job.project.clone(), job.id.clone()));
                    continue;
                }
                let (project, id) = (job.project.clone(), job.id.clone());
                let index = self.app.index.clone();
                match blocking(move || index.claim(&project, &id)).await {
                    Ok(Some(claim)) => self.start(claim.job, claim.lock).await,
                    // Another instance claimed it first; the index no longer lists it.
                    Ok(None) => {}
                    Err(err) => {
                        tracing::error!(project = job.project, job = job.id, "cannot claim the job: {err}");
                        skip.insert((job.project.clone(), job.id.clone()));
                    }
                }
            }
        }
    }

    /// Starts a claimed job. Whatever goes wrong, the job ends in `finished` and the slot is free.
    async fn start(&mut self, job: PendingJob, lock: File) {
        let mut record = RunningJob {
            job,
            owner: self.app.node_name().to_string(),
            start_time: local_time(chrono::Local::now()),
            pid: None,
            pid_start_ticks: None,
            cancels_acted_on: 0,
        };
        // The claim is already durable (the record is in running/, shown as pending until it has
        // a pid); the record is rewritten with the pid once the process exists.
        let child = match self.spawn(&record).await {
            Ok(child) => child,
            Err(reason) => {
                tracing::error!(project = record.job.project, job = record.job.id, "cannot start the crawl: {reason}");
                let end = End {
                    outcome: Outcome::FailedToStart,
                    exit_code: None,
                    signal: None,
                    reason: Some(reason),
                    stats: None,
                    end_time: local_time(chrono::Local::now()),
                };
                let app = self.app.clone();
                tokio::spawn(async move {
                    record_end(&app, &record, end, None).await;
                    drop(lock);
                });
                return;
            }
        };
        let pid = child.id().unwrap_or(0);
        record.pid = Some(pid);
        record.pid_start_ticks = process::start_ticks(pid);
        if let Err(err) = self.save_running(&record).await {
            tracing::error!(job = record.job.id, "cannot record the crawl's pid: {err}");
        }
        tracing::info!(
            project = record.job.project,
            spider = record.job.spider,
            job = record.job.id,
            pid,
            "Process started"
        );
        let key = (record.job.project.clone(), record.job.id.clone());
        self.watch_child(key.clone(), child);
        self.crawls.insert(key, Crawl::new(record, pid, lock, None));
    }

    async fn save_running(&self, record: &RunningJob) -> std::io::Result<()> {
        let index = self.app.index.clone();
        let copy = record.clone();
        blocking(move || index.write_running(copy)).await
    }

    /// Resolves the egg, prepares the files and starts the runner.
    async fn spawn(&self, record: &RunningJob) -> Result<tokio::process::Child, String> {
        let job = &record.job;
        let egg: Option<StoredEgg> = match self.app.egg(&job.project, job.version.as_deref()).await {
            Ok(Some(egg)) => Some(egg),
            Ok(None) if self.app.settings_module(&job.project).is_some() => None,
            Ok(None) => return Err(format!("project '{}' has no eggs", job.project)),
            Err(err) => return Err(err.text().to_string()),
        };
        let app = self.app.clone();
        let job_copy = job.clone();
        let result_file = self.app.index.spool().result_file(&job.project, &job.id);
        let plan = blocking(move || launch::plan(&app, &job_copy, egg.as_ref(), &result_file)).await?;
        let mut command = plan.command;
        let (stdout, stderr) = match &plan.log_file {
            Some(path) => {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|err| format!("cannot open the log file {}: {err}", path.display()))?;
                let copy = log.try_clone().map_err(|err| err.to_string())?;
                (Stdio::from(log), Stdio::from(copy))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr).process_group(0);
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(false);
        command
            .spawn()
            .map_err(|err| format!("cannot run the Python interpreter `{}`: {err}", self.app.runner.python()))
    }

    /// Waits for our own child in a task of its own, and reports its end.
    fn watch_child(&self, key: JobKey, mut child: tokio::process::Child) {
        let ended = self.ended_tx.clone();
        tokio::spawn(async move {
            let (exit_code, signal) = match child.wait().await {
                Ok(status) => (status.code(), status.signal()),
                Err(err) => {
                    tracing::error!("waiting for a crawl failed: {err}");
                    (None, None)
                }
            };
            let _ = ended.send(Ended { key, exit_code, signal });
        });
    }

    /// Watches a crawl that is not our child (re-adopted) until its pid is gone.
    fn watch_adopted(&self, key: JobKey, pid: u32, ticks: u64) {
        let ended = self.ended_tx.clone();
        tokio::spawn(async move {
            while process::is_alive(pid, ticks) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let _ = ended.send(Ended { key, exit_code: None, signal: None });
        });
    }

    /// Records how a crawl ended, in the background so other slots are never held up by the
    /// finished record's fsyncs. The end time is now; the slot is freed once the record is
    /// written (`recorded_tx`), so the next job in it starts after this one ended.
    fn finish(&mut self, ended: Ended) {
        let Some(crawl) = self.crawls.get_mut(&ended.key).filter(|c| !c.ending) else { return };
        crawl.ending = true;
        crawl.log.end();
        let end_time = local_time(chrono::Local::now());
        let task = record_crawl_end(
            self.app.clone(),
            crawl.record.clone(),
            crawl.cancel_deadline.is_some(),
            ended,
            end_time,
            crawl.log.clone(),
            self.recorded_tx.clone(),
        );
        tokio::spawn(task);
    }

    /// Brings LogParser's files of this instance's running crawls up to date with their logs, in
    /// the background (every `poll_interval`; an update still under way is not doubled).
    fn update_running_stats(&self) {
        let Some(files) = stats_files(&self.app) else { return };
        if self.crawls.is_empty() || self.updating_stats.swap(true, Ordering::SeqCst) {
            return;
        }
        let crawls: Vec<(PendingJob, Arc<RunningLog>)> =
            self.crawls.values().filter(|c| !c.ending).map(|c| (c.record.job.clone(), c.log.clone())).collect();
        let updating = self.updating_stats.clone();
        tokio::task::spawn_blocking(move || {
            let named: Vec<(JobName<'_>, &RunningLog)> = crawls
                .iter()
                .map(|(job, log)| (JobName { project: &job.project, spider: &job.spider, id: &job.id }, &**log))
                .collect();
            if let Err(err) = files.record_running(&named) {
                tracing::warn!("cannot update LogParser's stats files of running crawls: {err}");
            }
            updating.store(false, Ordering::SeqCst);
        });
    }

    /// Sends a cancel signal to the crawl; the second cancel of a crawl kills its whole group.
    fn cancel(&mut self, key: &JobKey, signal: i32) {
        let grace = self.app.config.cancel_grace;
        let Some(crawl) = self.crawls.get_mut(key).filter(|c| !c.ending) else { return };
        if crawl.cancel_deadline.is_some() {
            kill_group(crawl);
        } else {
            if let Err(err) = process::signal(crawl.pid, signal) {
                tracing::warn!(pid = crawl.pid, signal, "cannot signal the crawl: {err}");
            }
            crawl.cancel_deadline = Some(Instant::now() + grace);
        }
    }

    /// Acts on new cancel requests (`<job>.cancel`, written by whichever instance received
    /// `cancel.json`) for crawls this one supervises: a read of one small file per own crawl, of
    /// which there are at most `max_proc`. How many have been acted on is kept in the running
    /// record, so a re-adopting instance knows which requests nobody has acted on yet.
    async fn cancel_requested(&mut self) {
        let spool = self.app.index.spool().clone();
        let keys: Vec<JobKey> = self.crawls.iter().filter(|(_, c)| !c.ending).map(|(k, _)| k.clone()).collect();
        for key in keys {
            let requests = spool.cancel_requests(&key.0, &key.1);
            let acted = self.crawls.get(&key).map_or(0, |c| c.record.cancels_acted_on);
            if requests.len() <= acted {
                continue;
            }
            for &signal in &requests[acted..] {
                tracing::info!(project = key.0, job = key.1, signal, "cancel requested");
                self.cancel(&key, signal);
            }
            let Some(crawl) = self.crawls.get_mut(&key) else { continue };
            crawl.record.cancels_acted_on = requests.len();
            let record = crawl.record.clone();
            if let Err(err) = self.save_running(&record).await {
                tracing::warn!(job = key.1, "cannot record the cancel: {err}");
            }
        }
    }

    /// The earliest moment a cancelled crawl should be killed.
    fn next_deadline(&self) -> Option<Instant> {
        self.crawls.values().filter(|c| !c.killed && !c.ending).filter_map(|c| c.cancel_deadline).min()
    }

    /// Kills the groups of cancelled crawls that outlived `cancel_grace`.
    fn escalate(&mut self) {
        let now = Instant::now();
        for crawl in self.crawls.values_mut() {
            if !crawl.killed && !crawl.ending && crawl.cancel_deadline.is_some_and(|d| d <= now) {
                kill_group(crawl);
            }
        }
    }

    /// Re-adopts crawls whose supervising instance is gone, or records how they ended.
    async fn adopt_orphans(&mut self) {
        // Starting records (claimed, no pid yet) count too: their owner may have died between
        // the claim and the spawn.
        for record in self.app.index.running_records() {
            let key = (record.job.project.clone(), record.job.id.clone());
            if self.crawls.contains_key(&key) {
                continue;
            }
            let alive = |(pid, ticks): (u32, u64)| process::is_alive(pid, ticks).then_some((pid, ticks));
            let identity = match (record.pid, record.pid_start_ticks) {
                (Some(pid), Some(ticks)) => Some((pid, ticks)),
                // The daemon can die between the spawn and recording the pid. The runner records
                // its own identity first thing; before it has, the crawl is the process whose
                // environment names this job's result file (a scan of /proc, off the workers).
                _ => {
                    let spool = self.app.index.spool().clone();
                    let (project, id) = key.clone();
                    blocking(move || {
                        spool.runner_identity(&project, &id).or_else(|| {
                            let result = spool.result_file(&project, &id);
                            process::find_by_environment(&format!("SCRAPYD_RS_RESULT={}", result.display()))
                        })
                    })
                    .await
                }
            };
            let live = identity.and_then(alive);
            if live.is_some() && self.crawls.len() >= self.max {
                // A live crawl takes a slot: another instance with room, or this one later,
                // adopts it. (It keeps running meanwhile.)
                continue;
            }
            let index = self.app.index.clone();
            let (project, id) = key.clone();
            let lock = match blocking(move || index.lock_orphan(&project, &id)).await {
                Ok(Some(lock)) => lock,
                Ok(None) => continue,
                Err(err) => {
                    tracing::warn!(job = record.job.id, "cannot check an orphaned job: {err}");
                    continue;
                }
            };
            // Checked again under the lock: the crawl may have ended meanwhile.
            match live.and_then(alive) {
                Some((pid, ticks)) => {
                    tracing::info!(project = key.0, job = key.1, pid, "re-adopted a running crawl");
                    self.watch_adopted(key.clone(), pid, ticks);
                    // The crawl is this instance's now; a record the dead instance left without
                    // a pid gets the one the runner recorded.
                    let mut record = (*record).clone();
                    record.owner = self.app.node_name().to_string();
                    record.pid = Some(pid);
                    record.pid_start_ticks = Some(ticks);
                    if record.start_time.is_empty() {
                        record.start_time = local_time(chrono::Local::now());
                    }
                    if let Err(err) = self.save_running(&record).await {
                        tracing::warn!(job = record.job.id, "cannot record the adopted crawl: {err}");
                    }
                    // If the dead instance signalled the crawl already, escalation carries on;
                    // requests nobody acted on are handled by the next `cancel_requested`.
                    let deadline = (record.cancels_acted_on > 0).then(|| Instant::now() + self.app.config.cancel_grace);
                    self.crawls.insert(key, Crawl::new(record, pid, lock, deadline));
                }
                _ => {
                    let result = read_result(&self.app, &record.job).await;
                    let never_started = identity.is_none();
                    let cancelled = !self.app.index.spool().cancel_requests(&key.0, &key.1).is_empty();
                    let end = End::from_result(result, cancelled, never_started);
                    record_end(&self.app, &record, end, None).await;
                    drop(lock);
                }
            }
        }
    }
}

/// How a job ended, as recorded in its finished record.
#[derive(Debug)]
struct End {
    outcome: Outcome,
    exit_code: Option<i32>,
    signal: Option<i32>,
    reason: Option<String>,
    stats: Option<serde_json::Value>,
    end_time: String,
}

impl End {
    /// The end of a crawl from what the runner recorded, if anything.
    fn from_result(result: Option<RunResult>, cancelled: bool, never_started: bool) -> End {
        let Some(result) = result else {
            let reason = if never_started {
                "the daemon stopped while starting the crawl"
            } else {
                "the crawl ended while no daemon was its parent, and left no exit status"
            };
            let outcome = if cancelled { Outcome::Cancelled } else { Outcome::Lost };
            let end_time = local_time(chrono::Local::now());
            return End { outcome, exit_code: None, signal: None, reason: Some(reason.into()), stats: None, end_time };
        };
        let outcome = if cancelled {
            Outcome::Cancelled
        } else if result.exit_code == Some(0) {
            Outcome::Finished
        } else {
            Outcome::Failed
        };
        let end_time = local_time(chrono::Local::now());
        End { outcome, exit_code: result.exit_code, signal: result.signal, reason: None, stats: result.stats, end_time }
    }
}

/// Records how a crawl this instance supervised ended, then frees its slot.
async fn record_crawl_end(
    app: Arc<App>,
    record: RunningJob,
    cancelled: bool,
    ended: Ended,
    end_time: String,
    log: Arc<RunningLog>,
    recorded: mpsc::UnboundedSender<JobKey>,
) {
    let result = read_result(&app, &record.job).await;
    // The runner saw the Scrapy process's own status. Without its record, use what we saw as
    // the parent, which is only known for our own children.
    let seen = (ended.exit_code.is_some() || ended.signal.is_some()).then_some(RunResult {
        exit_code: ended.exit_code,
        signal: ended.signal,
        stats: None,
    });
    let end = End { end_time, ..End::from_result(result.or(seen), cancelled, false) };
    tracing::info!(
        project = record.job.project,
        job = record.job.id,
        pid = ?record.pid,
        exit_code = ?end.exit_code,
        signal = ?end.signal,
        outcome = ?end.outcome,
        "Process finished"
    );
    record_end(&app, &record, end, Some(log)).await;
    let _ = recorded.send(ended.key);
}

async fn read_result(app: &App, job: &PendingJob) -> Option<RunResult> {
    let path = app.index.spool().result_file(&job.project, &job.id);
    blocking(move || read_result_file(&path)).await
}

/// Appends the finished record and removes the running one. The caller holds the job's lock
/// until this returns. `log` is how far LogParser's files of the crawl got while it ran, if
/// this instance supervised it.
async fn record_end(app: &App, record: &RunningJob, end: End, log: Option<Arc<RunningLog>>) {
    let job = &record.job;
    let finished = FinishedJob {
        id: job.id.clone(),
        project: job.project.clone(),
        spider: job.spider.clone(),
        version: job.version.clone(),
        // A job that never started has no start time of its own.
        start_time: if record.start_time.is_empty() { end.end_time.clone() } else { record.start_time.clone() },
        end_time: end.end_time,
        outcome: end.outcome,
        exit_code: end.exit_code,
        signal: end.signal,
        reason: end.reason,
        node: app.node_name().to_string(),
        pid: record.pid,
        stats: end.stats,
    };
    let index = app.index.clone();
    let recorded = blocking(move || index.finish(&finished).map(|()| finished)).await;
    match recorded {
        Ok(finished) => write_stats_files(app, finished, log),
        Err(err) => tracing::error!(project = job.project, job = job.id, "cannot record the end of the job: {err}"),
    }
}

/// Where LogParser's files go, unless logs are off.
fn stats_files(app: &App) -> Option<StatsFiles> {
    StatsFiles::new(&app.config, app.index.spool().internal("stats.json.lock"))
}

/// Writes LogParser's files for a finished job in the background: they read the whole log, and
/// the job's slot need not wait for that.
fn write_stats_files(app: &App, finished: FinishedJob, log: Option<Arc<RunningLog>>) {
    let Some(files) = stats_files(app) else { return };
    tokio::task::spawn_blocking(move || {
        if let Err(err) = files.record(&finished, log.as_deref()) {
            tracing::warn!(
                project = finished.project,
                job = finished.id,
                "cannot write LogParser's stats files: {err}"
            );
        }
    });
}

fn kill_group(crawl: &mut Crawl) {
    if let Err(err) = process::signal_group(crawl.pid, libc::SIGKILL) {
        tracing::warn!(pid = crawl.pid, "cannot kill the crawl's process group: {err}");
    }
    crawl.killed = true;
}

/// What the runner records when a crawl ends.
#[derive(Debug, serde::Deserialize)]
struct RunResult {
    exit_code: Option<i32>,
    signal: Option<i32>,
    #[serde(default)]
    stats: Option<serde_json::Value>,
}

fn read_result_file(path: &Path) -> Option<RunResult> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}
