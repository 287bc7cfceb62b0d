//! Spare files: empty pending files made ahead of time, so writing a job's file does not create
//! an inode on the request path.
//!
//! Creating a file is the slow part of writing a small one on ext4 once files are being deleted
//! around it (measured here: 650 µs per create for a while after a tree was removed, 25-40 µs
//! otherwise), while writing into an existing empty file and renaming it costs 23 µs either way.
//! So a background thread keeps a few empty files for each project, and a job's pending file is
//! one of them, written and renamed into `pending/` under the job's name. They are made in a
//! directory of their own per batch, `spool/<project>/spares/<pid>-<start ticks>-<batch>/`,
//! named after the process that made them: creating a file holds its directory's lock for as long
//! as the create takes, and a rename out of or into that directory would wait for it (measured:
//! 690 µs per rename while files were being created beside it, 24 µs otherwise).
//!
//! Spares need not be durable: a scheduled job is made durable by the project's journal, which
//! puts its pending file back under its own name if a crash loses it. So a spare is never a job:
//!
//! - a spare is only written under the project's lock, so one found with bytes in it under that
//!   lock was left by a crash between its write and its rename, before the job was acknowledged,
//!   and is removed;
//! - the batches of a process that is gone are removed once an hour old (a maker in another PID
//!   namespace looks gone from here, and losing its spares only costs it new ones), those of a
//!   live one are left to it, which removes each batch it has used up.

use crate::fsutil;
use crate::supervisor::process;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The directory of a project's spares, beside its `pending/`.
const SPARES_DIR: &str = "spares";

/// Spares made per batch, and the stock below which a new batch is made.
const BATCH: usize = 64;
const LOW_WATER: usize = 16;

/// How long an empty spare of a maker not seen alive is kept.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// This process's spares, per pending directory, and the batches being made.
#[derive(Debug)]
pub struct Spares {
    /// `<pid>-<start ticks>`: who made a spare, so others can tell whether it is still in use.
    owner: String,
    next: AtomicU64,
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Ready spares per pending directory.
    ready: HashMap<PathBuf, Vec<PathBuf>>,
    /// Pending directories for which a batch is being made.
    filling: Vec<PathBuf>,
}

/// Who made a spare, read from its name.
#[derive(Debug, PartialEq, Eq)]
struct Maker {
    pid: u32,
    ticks: u64,
}

impl Default for Spares {
    fn default() -> Self {
        let pid = std::process::id();
        let ticks = process::start_ticks(pid).unwrap_or(0);
        Spares { owner: format!("{pid}-{ticks}"), next: AtomicU64::new(0), state: Mutex::default() }
    }
}

impl Spares {
    fn state(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes `dir/name` whole with `bytes`, not waiting for the disk: into one of this process's
    /// spares when one is ready, otherwise into a new temporary file, renamed either way. The
    /// caller holds the project's lock.
    pub fn write(self: &Arc<Self>, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
        let written = self.write_into_spare(dir, name, bytes)?;
        self.top_up(dir);
        if !written {
            fsutil::write_whole_unsynced(&dir.join(name), bytes)?;
        }
        Ok(())
    }

    fn write_into_spare(&self, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<bool> {
        loop {
            let Some(path) = self.state().ready.get_mut(dir).and_then(Vec::pop) else { return Ok(false) };
            // Not `O_TRUNC`, though the spare is empty anyway: ext4 takes a truncate to zero for
            // a file being rewritten in place and writes it out as soon as it is closed, which
            // cost each job two more writes to the disk beside its journal record.
            let mut file = match OpenOptions::new().write(true).open(&path) {
                Ok(file) => file,
                // Removed as another namespace's by an instance that cannot see us: the next one.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    tracing::warn!("cannot open the spare {}: {err}; writing a new file", path.display());
                    return Ok(false);
                }
            };
            let renamed = file.write_all(bytes).and_then(|()| fs::rename(&path, dir.join(name)));
            if let Err(err) = renamed {
                let _ = fs::remove_file(&path);
                return Err(err);
            }
            return Ok(true);
        }
    }

    /// Starts making a batch of spares for `dir` in the background when few are left.
    fn top_up(self: &Arc<Self>, dir: &Path) {
        {
            let mut state = self.state();
            let ready = state.ready.get(dir).map_or(0, Vec::len);
            if ready >= LOW_WATER || state.filling.iter().any(|d| d == dir) {
                return;
            }
            state.filling.push(dir.to_path_buf());
        }
        let (spares, target) = (self.clone(), dir.to_path_buf());
        let spawned = std::thread::Builder::new().name("spool-spares".into()).spawn(move || {
            let made = spares.make_batch(&target);
            let mut state = spares.state();
            state.filling.retain(|d| *d != target);
            if made.is_empty() {
                tracing::warn!("cannot make spare files in {}", target.display());
            }
            state.ready.entry(target).or_default().extend(made);
        });
        if spawned.is_err() {
            self.state().filling.retain(|d| d != dir);
        }
    }

    /// Makes up to [`BATCH`] empty spares for the pending directory `dir`, in a new batch
    /// directory; the paths of those made. Batches of this process that are used up go first.
    fn make_batch(&self, dir: &Path) -> Vec<PathBuf> {
        let Some(spares) = dir.parent().map(|project| project.join(SPARES_DIR)) else { return Vec::new() };
        for entry in fs::read_dir(&spares).into_iter().flatten().flatten() {
            if entry.file_name().to_str().is_some_and(|name| spare_is_ours(&self.owner, name)) {
                let _ = fs::remove_dir(entry.path()); // only if empty
            }
        }
        if fs::create_dir_all(&spares).is_err() {
            return Vec::new();
        }
        fsutil::spread_subdirectories(&spares);
        let batch = spares.join(format!("{}-{}", self.owner, self.next.fetch_add(1, Ordering::Relaxed)));
        if fs::create_dir(&batch).is_err() {
            return Vec::new();
        }
        let mut made = Vec::with_capacity(BATCH);
        for n in 0..BATCH {
            let path = batch.join(n.to_string());
            if OpenOptions::new().write(true).create_new(true).open(&path).is_err() {
                break;
            }
            made.push(path);
        }
        made
    }

    /// Removes the spares of the pending directory `dir` that are not in use: written ones (a
    /// crash came between the write and the rename) and stale batches of makers that are gone.
    /// The caller holds the project's lock.
    pub fn remove_unused(&self, dir: &Path) -> io::Result<()> {
        let Some(spares) = dir.parent().map(|project| project.join(SPARES_DIR)) else { return Ok(()) };
        let batches = match fs::read_dir(&spares) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        for batch in batches.flatten() {
            let Some(name) = batch.file_name().to_str().map(str::to_string) else { continue };
            let Some(maker) = maker_of(&name) else { continue };
            // Only an abandoned batch's age is read: reading the time of a batch still in use
            // would make its next change slow every synchronous write (see `fsutil::shape_of`),
            // and for the same reason spares are only asked for their size.
            let abandoned = !spare_is_ours(&self.owner, &name) && !is_alive(&maker);
            let stale = || {
                batch.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().unwrap_or_default() > STALE_AFTER)
            };
            if abandoned && stale() {
                tracing::debug!("removing the unused spares {}", batch.path().display());
                let _ = fs::remove_dir_all(batch.path());
                continue;
            }
            for spare in fs::read_dir(batch.path()).into_iter().flatten().flatten() {
                if fsutil::shape_of(&spare.path()).is_ok_and(|shape| shape.len > 0) {
                    tracing::debug!(
                        "removing {}, written before a crash and never acknowledged",
                        spare.path().display()
                    );
                    let _ = fs::remove_file(spare.path());
                }
            }
        }
        Ok(())
    }
}

/// The maker of a batch directory, `<pid>-<start ticks>-<batch>`.
fn maker_of(name: &str) -> Option<Maker> {
    let mut parts = name.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    let ticks = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u64>().ok()?;
    Some(Maker { pid, ticks })
}

fn spare_is_ours(owner: &str, batch: &str) -> bool {
    batch.strip_prefix(owner).is_some_and(|rest| rest.starts_with('-'))
}

fn is_alive(maker: &Maker) -> bool {
    process::start_ticks(maker.pid) == Some(maker.ticks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn wait_for_spares(spares: &Spares, dir: &Path) {
        for _ in 0..500 {
            let state = spares.state();
            if state.filling.is_empty() && state.ready.get(dir).is_some_and(|r| !r.is_empty()) {
                return;
            }
            drop(state);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no spares were made");
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    #[test]
    fn files_are_written_through_spares_once_there_are_some() {
        let project = tempfile::tempdir().unwrap();
        let dir = project.path().join("pending");
        fs::create_dir(&dir).unwrap();
        let spares = Arc::new(Spares::default());
        spares.write(&dir, "first.json", b"{\"id\": \"a\"}").unwrap();
        assert_eq!(fs::read(dir.join("first.json")).unwrap(), b"{\"id\": \"a\"}", "written as a new file");
        wait_for_spares(&spares, &dir);
        let batch = project.path().join(SPARES_DIR).join(format!("{}-0", spares.owner));
        assert_eq!(names(&batch).len(), BATCH);
        spares.write(&dir, "second.json", b"{\"id\": \"b\"}").unwrap();
        assert_eq!(fs::read(dir.join("second.json")).unwrap(), b"{\"id\": \"b\"}");
        assert_eq!(names(&batch).len(), BATCH - 1, "one spare became second.json");
        assert_eq!(names(&dir), ["first.json", "second.json"]);
    }

    #[test]
    fn written_spares_and_stale_batches_of_gone_makers_are_removed() {
        let project = tempfile::tempdir().unwrap();
        let dir = project.path().join("pending");
        let spares_dir = project.path().join(SPARES_DIR);
        // A maker that cannot be alive: pid 1 never has these start ticks.
        let gone = format!("1-{}", u64::MAX);
        let live = Spares::default();
        for batch in [format!("{gone}-1"), format!("{gone}-2"), format!("{}-3", live.owner)] {
            fs::create_dir_all(spares_dir.join(&batch)).unwrap();
            fs::write(spares_dir.join(&batch).join("0"), b"").unwrap();
            fs::write(spares_dir.join(&batch).join("1"), b"{\"id\": \"never acknowledged\"}").unwrap();
        }
        let an_hour_ago = std::time::SystemTime::now() - STALE_AFTER - std::time::Duration::from_secs(1);
        for batch in [format!("{gone}-1"), format!("{}-3", live.owner)] {
            File::open(spares_dir.join(batch)).unwrap().set_modified(an_hour_ago).unwrap();
        }
        live.remove_unused(&dir).unwrap();
        // A recent batch of a maker not seen alive (maybe in another PID namespace) stays, and so
        // does an old one of ours; only their written spares go.
        assert_eq!(names(&spares_dir), [format!("{gone}-2"), format!("{}-3", live.owner)]);
        assert_eq!(names(&spares_dir.join(format!("{gone}-2"))), ["0"]);
        assert_eq!(names(&spares_dir.join(format!("{}-3", live.owner))), ["0"]);
    }

    #[test]
    fn makers_are_read_from_names() {
        assert_eq!(maker_of("12-345-6"), Some(Maker { pid: 12, ticks: 345 }));
        assert_eq!(maker_of("12-345"), None);
        assert_eq!(maker_of(".tmp-abc"), None);
        assert!(spare_is_ours("12-345", "12-345-6"));
        assert!(!spare_is_ours("12-34", "12-345-6"));
    }
}
