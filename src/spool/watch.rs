//! Filesystem events as a hint: "a project's jobs changed, look again".
//!
//! Correctness never depends on them (network filesystems deliver none, and inotify queues can
//! overflow); the supervisor also rescans every `poll_interval`. They only make a job scheduled
//! through another instance start now instead of at the next rescan.

use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Watches the spool directory and sends the name of each project whose files changed.
pub fn watch_projects(spool_dir: &Path) -> notify::Result<(RecommendedWatcher, mpsc::UnboundedReceiver<String>)> {
    let (changes, receiver) = mpsc::unbounded_channel();
    let root: PathBuf = spool_dir.to_path_buf();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        // Only job files appearing, disappearing or being renamed into place count. Opening and
        // closing files (the rescan itself opens the project's lock file) must not, or every
        // rescan would trigger the next.
        Ok(event) if is_job_change(&event.kind) => {
            for path in &event.paths {
                if let Some(project) = project_of(&root, path) {
                    let _ = changes.send(project);
                }
            }
        }
        Ok(_) => {}
        Err(err) => tracing::debug!("filesystem watch: {err}"),
    })?;
    watcher.watch(spool_dir, RecursiveMode::Recursive)?;
    Ok((watcher, receiver))
}

fn is_job_change(kind: &EventKind) -> bool {
    // A cancel request is an append to a file that may exist already: a data change.
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_) | ModifyKind::Data(_))
    )
}

/// The project whose job records `path` is among: `<root>/<project>/{pending,running}/<job>.json`,
/// or a cancel request (`running/<job>.cancel`). Temporary files, lock files and runner results
/// are neither.
fn project_of(root: &Path, path: &Path) -> Option<String> {
    let mut components = path.strip_prefix(root).ok()?.components().map(|c| c.as_os_str().to_str());
    let (project, state, file) = (components.next()??, components.next()??, components.next()??);
    let record = matches!(state, "pending" | "running") && file.ends_with(".json");
    let job_record = record || (state == "running" && file.ends_with(".cancel"));
    (job_record && project != super::INTERNAL_DIR && components.next().is_none()).then(|| project.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_project() {
        let root = Path::new("/data/spool");
        assert_eq!(project_of(root, &root.join(".scrapyd-rs/finished.jl")), None);
        assert_eq!(project_of(root, &root.join("demo/pending/x.json")).as_deref(), Some("demo"));
        assert_eq!(project_of(root, &root.join("demo/running/x.json")).as_deref(), Some("demo"));
        assert_eq!(project_of(root, &root.join("demo/.lock")), None, "the lock file is not a job");
        assert_eq!(project_of(root, &root.join("demo/pending/.tmp-x1Y2z3")), None);
        assert_eq!(project_of(root, &root.join("demo/running/j.lock")), None);
        assert_eq!(project_of(root, &root.join("demo/pending")), None);
        assert_eq!(project_of(root, Path::new("/elsewhere/x")), None);
        assert_eq!(project_of(root, root), None);
    }

    #[test]
    fn only_files_coming_and_going_count() {
        use notify::event::{AccessKind, CreateKind, DataChange, RenameMode};
        assert!(is_job_change(&EventKind::Create(CreateKind::File)));
        assert!(is_job_change(&EventKind::Modify(ModifyKind::Name(RenameMode::To))));
        assert!(!is_job_change(&EventKind::Access(AccessKind::Open(notify::event::AccessMode::Write))));
        assert!(is_job_change(&EventKind::Modify(ModifyKind::Data(DataChange::Any))));
        assert_eq!(project_of(Path::new("/s"), Path::new("/s/p/running/j.cancel")).as_deref(), Some("p"));
    }
}
