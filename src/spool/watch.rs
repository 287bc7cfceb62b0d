//! Filesystem events as a hint: "a project's jobs changed, look again".
//!
//! Correctness never depends on them (network filesystems deliver none, and inotify queues can
//! overflow); the supervisor also rescans every `poll_interval`. They only make a job scheduled
//! through another instance start now instead of at the next rescan.

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Watches the spool directory and sends the name of each project whose files changed.
pub fn watch_projects(spool_dir: &Path) -> notify::Result<(RecommendedWatcher, mpsc::UnboundedReceiver<String>)> {
    let (changes, receiver) = mpsc::unbounded_channel();
    let root: PathBuf = spool_dir.to_path_buf();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        Ok(event) => {
            for path in &event.paths {
                if let Some(project) = project_of(&root, path) {
                    let _ = changes.send(project);
                }
            }
        }
        Err(err) => tracing::debug!("filesystem watch: {err}"),
    })?;
    watcher.watch(spool_dir, RecursiveMode::Recursive)?;
    Ok((watcher, receiver))
}

/// The project a path under `root` belongs to: its first component.
fn project_of(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    (first != super::INTERNAL_DIR).then(|| first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_project() {
        let root = Path::new("/data/spool");
        assert_eq!(project_of(root, &root.join(".scrapyd-rs/finished.jl")), None);
        assert_eq!(project_of(root, &root.join("demo/pending/x.json")).as_deref(), Some("demo"));
        assert_eq!(project_of(root, Path::new("/elsewhere/x")), None);
        assert_eq!(project_of(root, root), None);
    }
}
