//! Filesystem events as a hint: "a project's jobs changed, look again".
//!
//! Correctness never depends on them (network filesystems deliver none, and inotify queues can
//! overflow); the supervisor also rescans every `poll_interval`, and answers about jobs first peek
//! at each project's change counter. They only make a job scheduled through another instance
//! start now instead of at the next rescan, and a cancel sent through another instance reach its
//! crawl now.
//!
//! The watch asks the kernel for exactly the events that mean a job came or went, per directory,
//! and reads them on the async runtime (no thread of its own):
//!
//! - the spool root and each project directory: a subdirectory appearing (a new project, its
//!   `pending/` or `running/`), which gets watched in turn;
//! - `pending/`: job files renamed in or out, or deleted (every writer renames a complete file
//!   into place; spare files are made in a directory of their own, which is not watched);
//! - `running/`: the same, plus a file closed after writing (a cancel request is an append).
//!
//! A general-purpose watcher that reports every open, write and close cost each `schedule.json`
//! eight context switches and a third of its CPU time (measured with `perf stat`), all for events
//! this instance had caused itself.
//!
//! The `pending/` directories have an inotify instance of their own, which is read only while the
//! supervisor has a free slot (see [`PendingSwitch`]): with every slot busy, a job coming
//! or going changes nothing this instance could do, and every `schedule.json` it serves would
//! otherwise wake a thread for its own rename (measured: 20-26 µs of each schedule's 300 µs with
//! every slot busy). Meanwhile the kernel keeps the events, or drops them when its queue is full;
//! the supervisor looks at every project again when a slot frees, so none is missed.

use futures_util::StreamExt;
use inotify::{EventMask, EventOwned, EventStream, Inotify, WatchDescriptor, WatchMask, Watches};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, watch};

/// What a watched directory is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Watched {
    Root,
    Project(String),
    Jobs { project: String, running: bool },
}

/// A project whose job files changed, as a watch event told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsChanged {
    pub project: String,
    /// Its crawls may have changed too (a file in `running/` came, went or was appended to, or
    /// the event cannot tell): not only its pending jobs.
    pub crawls: bool,
}

impl JobsChanged {
    fn any(project: String) -> JobsChanged {
        JobsChanged { project, crawls: true }
    }
}

/// A running spool watch, as its user holds it.
#[derive(Debug)]
pub struct Watching {
    /// Each project whose job files changed.
    pub changes: mpsc::UnboundedReceiver<JobsChanged>,
    /// Whether changes in the `pending/` directories are reported.
    pub pending: PendingSwitch,
}

/// Turns the reports of changes in the `pending/` directories on and off (at first they are on).
#[derive(Debug)]
pub struct PendingSwitch(watch::Sender<bool>);

impl PendingSwitch {
    /// Unheard, changes in `pending/` wake nobody; heard again, those the kernel kept meanwhile
    /// are reported, but some may be gone: whoever stops hearing them looks at every project
    /// again before relying on what it knows of them.
    pub fn hear(&self, hear: bool) {
        self.0.send_if_modified(|hearing| std::mem::replace(hearing, hear) != hear);
    }
}

/// The size of the buffer each inotify instance is read into.
const EVENT_BUFFER: usize = 64 * 1024;

/// Starts watching the spool directory. Call it on the async runtime: the events are read by a
/// task on it, which ends when the receiver of the changes is dropped.
pub fn watch_projects(spool_dir: &Path) -> io::Result<Watching> {
    let (inotify, pending_inotify) = (Inotify::init()?, Inotify::init()?);
    let mut watch = SpoolWatch {
        root: spool_dir.to_path_buf(),
        watches: inotify.watches(),
        pending_watches: pending_inotify.watches(),
        dirs: HashMap::new(),
    };
    watch.add(spool_dir, Watched::Root)?;
    for entry in std::fs::read_dir(spool_dir)?.flatten() {
        if let Some(project) = entry.file_name().to_str() {
            let _ = watch.add_project(project);
        }
    }
    let (changes, receiver) = mpsc::unbounded_channel();
    let (hearing_pending, mut hearing) = watch::channel(true);
    let mut events = inotify.into_event_stream(vec![0u8; EVENT_BUFFER])?;
    let mut pending = PendingEvents::Heard(pending_inotify.into_event_stream(vec![0u8; EVENT_BUFFER])?);
    tokio::spawn(async move {
        // Without its switch (dropped), the pending jobs stay heard or unheard as last told.
        let mut switch_held = true;
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                event = pending.next() => event,
                changed = hearing.changed(), if switch_held => {
                    match changed {
                        Ok(()) => pending = pending.heard(*hearing.borrow_and_update()),
                        Err(_) => switch_held = false,
                    }
                    continue;
                }
                () = changes.closed() => return,
            };
            match event {
                Some(Ok(event)) => {
                    for change in watch.apply(&event.wd, event.mask, event.name.as_deref()) {
                        if changes.send(change).is_err() {
                            return;
                        }
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!("the spool watch stopped ({err}); relying on the rescan every poll_interval");
                    return;
                }
                None => return,
            }
        }
    });
    Ok(Watching { changes: receiver, pending: PendingSwitch(hearing_pending) })
}

/// The `pending/` directories' inotify instance: read on the runtime while heard; out of the
/// runtime's event loop while not, so that events queue in the kernel and wake no thread.
enum PendingEvents {
    Heard(EventStream<Vec<u8>>),
    Unheard(Inotify),
    /// It could not be put back into the event loop; the rescans carry on without it.
    Lost,
}

impl PendingEvents {
    async fn next(&mut self) -> Option<io::Result<EventOwned>> {
        match self {
            PendingEvents::Heard(stream) => stream.next().await,
            PendingEvents::Unheard(_) | PendingEvents::Lost => std::future::pending().await,
        }
    }

    /// Heard or not. Events already read into the stream's buffer are dropped with it.
    fn heard(self, hear: bool) -> PendingEvents {
        match (self, hear) {
            (PendingEvents::Heard(stream), false) => PendingEvents::Unheard(stream.into_inotify()),
            (PendingEvents::Unheard(inotify), true) => match inotify.into_event_stream(vec![0u8; EVENT_BUFFER]) {
                Ok(stream) => PendingEvents::Heard(stream),
                Err(err) => {
                    tracing::warn!("cannot watch pending jobs any more ({err}); relying on the rescans");
                    PendingEvents::Lost
                }
            },
            (unchanged, _) => unchanged,
        }
    }
}

/// The watched directories and what they are.
struct SpoolWatch {
    root: PathBuf,
    /// Everything but the `pending/` directories.
    watches: Watches,
    pending_watches: Watches,
    dirs: HashMap<WatchDescriptor, Watched>,
}

impl SpoolWatch {
    fn add(&mut self, dir: &Path, what: Watched) -> io::Result<()> {
        let comings_and_goings = WatchMask::MOVED_TO | WatchMask::MOVED_FROM | WatchMask::DELETE;
        let (watches, mask) = match what {
            Watched::Root | Watched::Project(_) => (&mut self.watches, WatchMask::CREATE | WatchMask::MOVED_TO),
            Watched::Jobs { running: true, .. } => (&mut self.watches, comings_and_goings | WatchMask::CLOSE_WRITE),
            Watched::Jobs { running: false, .. } => (&mut self.pending_watches, comings_and_goings),
        };
        let descriptor = watches.add(dir, mask | WatchMask::ONLYDIR)?;
        self.dirs.insert(descriptor, what);
        Ok(())
    }

    /// Watches a project's directory and whichever of `pending/` and `running/` exist (the
    /// others are picked up when they appear). Names that are not projects are skipped.
    /// Returns whether `project` is now watched (a name that is not a project directory is not).
    fn add_project(&mut self, project: &str) -> bool {
        if project == super::INTERNAL_DIR {
            return false;
        }
        let dir = self.root.join(project);
        if self.add(&dir, Watched::Project(project.to_string())).is_err() {
            return false; // not a directory, or gone again
        }
        for (name, running) in [("pending", false), ("running", true)] {
            let _ = self.add(&dir.join(name), Watched::Jobs { project: project.to_string(), running });
        }
        true
    }

    /// Applies one event: watches what appeared, and returns the projects to look at again.
    fn apply(&mut self, descriptor: &WatchDescriptor, mask: EventMask, name: Option<&OsStr>) -> Vec<JobsChanged> {
        if mask.contains(EventMask::Q_OVERFLOW) {
            // Events were lost: every project is worth a look.
            let mut projects: Vec<String> = self
                .dirs
                .values()
                .filter_map(|what| match what {
                    Watched::Project(project) => Some(project.clone()),
                    _ => None,
                })
                .collect();
            projects.sort();
            return projects.into_iter().map(JobsChanged::any).collect();
        }
        if mask.contains(EventMask::IGNORED) {
            self.dirs.remove(descriptor);
            return Vec::new();
        }
        let (Some(what), Some(name)) = (self.dirs.get(descriptor).cloned(), name.and_then(OsStr::to_str)) else {
            return Vec::new();
        };
        match what {
            Watched::Root => {
                if self.add_project(name) {
                    vec![JobsChanged::any(name.to_string())]
                } else {
                    Vec::new()
                }
            }
            Watched::Project(project) => {
                if let Some(running) = match name {
                    "pending" => Some(false),
                    "running" => Some(true),
                    _ => None,
                } {
                    let dir = self.root.join(&project).join(name);
                    let _ = self.add(&dir, Watched::Jobs { project: project.clone(), running });
                    return vec![JobsChanged::any(project)];
                }
                Vec::new()
            }
            Watched::Jobs { project, running } => {
                let job_record = name.ends_with(".json") || (running && name.ends_with(".cancel"));
                if job_record { vec![JobsChanged { project, crawls: running }] } else { Vec::new() }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Duration;

    /// The next change, as (project, whether its crawls may have changed).
    async fn next(receiver: &mut mpsc::UnboundedReceiver<JobsChanged>) -> Option<(String, bool)> {
        let change = tokio::time::timeout(Duration::from_secs(5), receiver.recv()).await.ok().flatten()?;
        Some((change.project, change.crawls))
    }

    fn changed(project: &str, crawls: bool) -> Option<(String, bool)> {
        Some((project.to_string(), crawls))
    }

    async fn quiet(receiver: &mut mpsc::UnboundedReceiver<JobsChanged>) -> bool {
        tokio::time::timeout(Duration::from_millis(200), receiver.recv()).await.is_err()
    }

    #[tokio::test]
    async fn job_files_coming_and_going_name_their_project_and_whether_crawls_changed() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("old/pending")).unwrap();
        let Watching { mut changes, .. } = watch_projects(root.path()).unwrap();

        // A job renamed into an existing project's pending directory.
        fs::write(root.path().join("old/pending/.tmp-a"), b"{}").unwrap();
        assert!(quiet(&mut changes).await, "writing a temporary file is not a change");
        fs::rename(root.path().join("old/pending/.tmp-a"), root.path().join("old/pending/a.json")).unwrap();
        assert_eq!(next(&mut changes).await, changed("old", false), "a scheduled job leaves the crawls alone");
        // The project's lock file and spare files are not job files.
        fs::write(root.path().join("old/.lock"), b"1").unwrap();
        fs::write(root.path().join("old/pending/.spare-1-2-3"), b" ").unwrap();
        // Nor is a file that appears beside the projects.
        fs::write(root.path().join("not-a-project"), b"").unwrap();
        assert!(quiet(&mut changes).await);

        // A new project, then its directories, then a job and a cancel request in it.
        fs::create_dir(root.path().join("new")).unwrap();
        assert_eq!(next(&mut changes).await, changed("new", true));
        fs::create_dir(root.path().join("new/running")).unwrap();
        assert_eq!(next(&mut changes).await, changed("new", true));
        fs::write(root.path().join("new/running/j.cancel"), b"2\n").unwrap();
        assert_eq!(next(&mut changes).await, changed("new", true), "a cancel request is a change among the crawls");
        fs::remove_file(root.path().join("old/pending/a.json")).unwrap();
        assert_eq!(next(&mut changes).await, changed("old", false));
        assert!(quiet(&mut changes).await);
    }

    #[tokio::test]
    async fn pending_jobs_unheard_wake_nobody_and_the_kept_events_come_when_heard_again() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["p/pending", "p/running"] {
            fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        let mut watching = watch_projects(root.path()).unwrap();
        watching.pending.hear(false);
        // The switch is taken by the watch's task; give it a moment, then change a pending job.
        tokio::time::sleep(Duration::from_millis(100)).await;
        fs::write(root.path().join("p/pending/.tmp-a"), b"{}").unwrap();
        fs::rename(root.path().join("p/pending/.tmp-a"), root.path().join("p/pending/a.json")).unwrap();
        assert!(quiet(&mut watching.changes).await, "a new pending job is not reported while unheard");
        // The crawls are still heard: a cancel request is reported at once.
        fs::write(root.path().join("p/running/j.cancel"), b"2\n").unwrap();
        assert_eq!(next(&mut watching.changes).await, changed("p", true));
        assert!(quiet(&mut watching.changes).await);

        watching.pending.hear(true);
        assert_eq!(next(&mut watching.changes).await, changed("p", false), "the kept event comes when heard again");
        fs::remove_file(root.path().join("p/pending/a.json")).unwrap();
        assert_eq!(next(&mut watching.changes).await, changed("p", false));
    }
}
