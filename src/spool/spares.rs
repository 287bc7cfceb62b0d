//! Spare files: blank pending files made durable ahead of time, so that acknowledging a job is an
//! overwrite in place rather than the durable creation of a file.
//!
//! Creating a file durably means making a new inode, its blocks and its directory entry durable,
//! which dominated the cost of `schedule.json`. (Measured on ext4 here: 0.21 ms per job through a
//! spare against 0.39 ms for a new file. The overwrite still updates the inode's mtime, so the
//! journal still commits once per job; only the allocation and directory work is saved.) A spare is
//! a file of [`SPARE_SIZE`] spaces whose name, inode and blocks were already made durable (in
//! batches, by one `syncfs` for many spares, off the request path). Scheduling a job then
//! overwrites a spare's bytes in place with the record (padded with spaces, so the size does not
//! change) through a file opened with `O_DSYNC`, and renames it to the job's pending name:
//!
//! - once the write returns, the job is durable in `pending/`: under the spare's name until the
//!   rename reaches the journal, under its own name afterwards; a crash in between leaves a
//!   filled spare, which the next look at the project under its lock renames into place;
//! - a spare is only filled under the project's lock, so a filled spare found under that lock was
//!   left by a crash, whoever made it;
//! - a spare's name carries its maker's pid and process start time: blank spares of a maker that
//!   is gone are removed once an hour old, those of a live one are left to it;
//! - JSON allows trailing whitespace, so a filled spare is a valid record as it stands.
//!
//! A record too large for a spare, or a project without spares yet, takes the ordinary path
//! (temporary file, rename, fsync of the file and the directory).

use crate::fsutil;
use crate::supervisor::process;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A spare's size: one filesystem block, which is what any small file occupies anyway.
pub const SPARE_SIZE: usize = 4096;

/// The prefix of every spare's name (a dot file: listings of jobs never show it).
const PREFIX: &str = ".spare-";

/// Spares made per batch, and the stock below which a new batch is made.
const BATCH: usize = 64;
const LOW_WATER: usize = 16;

/// This process's spares, per project, and the batches being made.
#[derive(Debug)]
pub struct Spares {
    /// `<pid>-<start ticks>`: who made a spare, so others can tell whether it is still in use.
    owner: String,
    next: AtomicU64,
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Ready spares' names per pending directory.
    ready: HashMap<PathBuf, Vec<String>>,
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

    /// Writes `record` durably into one of this process's blank spares in `dir` and renames it
    /// to `dir/name`. `Ok(false)` when no spare could take it (none ready, or the record is too
    /// large): the caller writes the file the ordinary way. The caller holds the project's lock.
    pub fn write(self: &Arc<Self>, dir: &Path, name: &str, record: &[u8]) -> io::Result<bool> {
        let written = if record.len() < SPARE_SIZE { self.fill_one(dir, name, record)? } else { false };
        self.top_up(dir);
        Ok(written)
    }

    fn fill_one(&self, dir: &Path, name: &str, record: &[u8]) -> io::Result<bool> {
        let mut padded = record.to_vec();
        padded.resize(SPARE_SIZE - 1, b' ');
        padded.push(b'\n');
        loop {
            let Some(spare) = self.state().ready.get_mut(dir).and_then(Vec::pop) else { return Ok(false) };
            let path = dir.join(&spare);
            // O_DSYNC: each write returns once its data is on disk, one system call instead of a
            // write and an fdatasync (measured 0.14 ms against 0.20 ms per 4 KiB on this disk).
            let file = match OpenOptions::new().read(true).write(true).custom_flags(libc::O_DSYNC).open(&path) {
                Ok(file) => file,
                // Removed with its project directory, or by another instance: try the next one.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                // Out of descriptors, or a filesystem that refuses O_DSYNC: the ordinary path
                // may still work.
                Err(err) => {
                    tracing::warn!("cannot open the spare {}: {err}; writing the job as a new file", path.display());
                    return Ok(false);
                }
            };
            let mut first = [0u8; 1];
            if file.read_exact_at(&mut first, 0).is_err() || first[0] != b' ' {
                continue; // not blank: never ours to overwrite
            }
            let renamed = file.write_all_at(&padded, 0).and_then(|()| fs::rename(&path, dir.join(name)));
            if let Err(err) = renamed {
                // Not acknowledged: the spare must not come back as a job.
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
            match made {
                Ok(names) => state.ready.entry(target).or_default().extend(names),
                Err(err) => tracing::warn!("cannot make spare files in {}: {err}", target.display()),
            }
        });
        if spawned.is_err() {
            self.state().filling.retain(|d| d != dir);
        }
    }

    /// Makes [`BATCH`] blank spares in `dir` and makes them durable with one `syncfs`.
    fn make_batch(&self, dir: &Path) -> io::Result<Vec<String>> {
        let blank = blank();
        let mut names = Vec::with_capacity(BATCH);
        let result = (|| {
            let mut last = None;
            for _ in 0..BATCH {
                let name = format!("{PREFIX}{}-{}", self.owner, self.next.fetch_add(1, Ordering::Relaxed));
                let mut file = OpenOptions::new().write(true).create_new(true).open(dir.join(&name))?;
                names.push(name);
                file.write_all(&blank)?;
                last = Some(file);
            }
            if let Some(file) = last {
                sync_filesystem(&file)?;
            }
            fsutil::sync_dir(dir)
        })();
        match result {
            Ok(()) => Ok(names),
            Err(err) => {
                for name in &names {
                    let _ = fs::remove_file(dir.join(name));
                }
                Err(err)
            }
        }
    }

    /// Deals with spares a crash left in `dir` (the caller holds the project's lock): a filled
    /// one is renamed to the name `name_of` gives its record, a blank one whose maker is gone is
    /// removed once stale, a torn one (a fill that was never acknowledged) is handed to `torn`.
    pub fn recover<T: serde::de::DeserializeOwned>(
        &self,
        dir: &Path,
        name_of: impl Fn(&T) -> String,
        torn: impl Fn(&Path),
    ) -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        let mut renamed = false;
        for entry in entries.flatten() {
            let Ok(spare) = entry.file_name().into_string() else { continue };
            let Some(maker) = maker_of(&spare) else { continue };
            let path = dir.join(&spare);
            // A spare that cannot be read or renamed is reported and left for the next look: it
            // must not keep the project's other jobs from being changed.
            match self.recover_one(&path, &maker, &name_of, &torn) {
                Ok(moved) => renamed |= moved,
                Err(err) => tracing::warn!("cannot recover the spare {}: {err}", path.display()),
            }
        }
        if renamed {
            fsutil::sync_dir(dir)?;
        }
        Ok(())
    }

    /// Recovers one spare; `true` when it held a job, now renamed into place.
    fn recover_one<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
        maker: &Maker,
        name_of: &impl Fn(&T) -> String,
        torn: &impl Fn(&Path),
    ) -> io::Result<bool> {
        let Some(spare) = path.file_name().and_then(|n| n.to_str()) else { return Ok(false) };
        // A live maker's spare can only be filled if it crashed mid-fill, impossible while it
        // lives; a blank one is left alone unless it is both stale and of a maker not seen alive.
        // (A maker in another PID namespace looks dead from here: it loses only spares it left
        // unused for an hour, never one it is about to fill.)
        let ours_or_alive = spare_is_ours(&self.owner, spare) || is_alive(maker);
        let Some(bytes) = read_if_filled(path)? else {
            if !ours_or_alive && is_stale(path) {
                let _ = fs::remove_file(path);
            }
            return Ok(false);
        };
        match serde_json::from_slice::<T>(&bytes) {
            Ok(record) => {
                let name = name_of(&record);
                let dir = path.parent().unwrap_or(Path::new("."));
                tracing::info!("{}: recovered {name}, acknowledged before a crash", dir.display());
                fs::rename(path, dir.join(name))?;
                Ok(true)
            }
            Err(_) => {
                torn(path);
                Ok(false)
            }
        }
    }
}

/// How long a blank spare of a maker not seen alive is kept.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

fn is_stale(path: &Path) -> bool {
    fs::metadata(path).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().unwrap_or_default() > STALE_AFTER)
}

fn blank() -> Vec<u8> {
    let mut blank = vec![b' '; SPARE_SIZE];
    blank[SPARE_SIZE - 1] = b'\n';
    blank
}

fn maker_of(name: &str) -> Option<Maker> {
    let mut parts = name.strip_prefix(PREFIX)?.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    let ticks = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u64>().ok()?;
    Some(Maker { pid, ticks })
}

fn spare_is_ours(owner: &str, name: &str) -> bool {
    name.strip_prefix(PREFIX).and_then(|rest| rest.strip_prefix(owner)).is_some_and(|rest| rest.starts_with('-'))
}

fn is_alive(maker: &Maker) -> bool {
    process::start_ticks(maker.pid) == Some(maker.ticks)
}

/// A spare's bytes if its first byte says it holds more than blanks.
fn read_if_filled(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let mut first = [0u8; 1];
    match file.read_exact_at(&mut first, 0) {
        Ok(()) if first[0] != b' ' => fs::read(path).map(Some),
        // Blank, or still being made (empty so far).
        _ => Ok(None),
    }
}

/// Flushes everything written to the filesystem that holds `file`, and waits for it.
fn sync_filesystem(file: &File) -> io::Result<()> {
    // SAFETY: syncfs takes a file descriptor that `file` keeps open for the call.
    if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Record {
        id: String,
    }

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

    #[test]
    fn a_record_is_written_through_a_spare_and_reads_back_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Arc::new(Spares::default());
        assert!(!spares.write(dir.path(), "first.json", b"{\"id\":\"a\"}").unwrap(), "no spare yet");
        wait_for_spares(&spares, dir.path());
        assert!(spares.write(dir.path(), "b.json", b"{\"id\":\"b\"}").unwrap());
        let bytes = fs::read(dir.path().join("b.json")).unwrap();
        assert_eq!(bytes.len(), SPARE_SIZE);
        let record: Record = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(record.id, "b");
        let spare_count = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(spare_count, BATCH, "one spare became b.json, the rest are still there");
    }

    #[test]
    fn a_record_too_large_for_a_spare_is_left_to_the_ordinary_path() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Arc::new(Spares::default());
        spares.write(dir.path(), "x.json", b"{}").unwrap();
        wait_for_spares(&spares, dir.path());
        let large = format!("{{\"id\":\"{}\"}}", "x".repeat(SPARE_SIZE));
        assert!(!spares.write(dir.path(), "large.json", large.as_bytes()).unwrap());
        assert!(!dir.path().join("large.json").exists());
    }

    #[test]
    fn recovery_renames_filled_spares_and_removes_dead_makers_blanks() {
        let dir = tempfile::tempdir().unwrap();
        // A maker that cannot be alive: pid 1 never has these start ticks.
        let dead = format!("{PREFIX}1-{}", u64::MAX);
        let mut filled = b"{\"id\":\"kept\"}".to_vec();
        filled.resize(SPARE_SIZE, b' ');
        fs::write(dir.path().join(format!("{dead}-1")), &filled).unwrap();
        fs::write(dir.path().join(format!("{dead}-2")), blank()).unwrap();
        let an_hour_ago = std::time::SystemTime::now() - STALE_AFTER - std::time::Duration::from_secs(1);
        File::options()
            .write(true)
            .open(dir.path().join(format!("{dead}-2")))
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        // A recent blank of a maker not seen alive (maybe in another PID namespace) stays.
        fs::write(dir.path().join(format!("{dead}-4")), blank()).unwrap();
        fs::write(dir.path().join(format!("{dead}-3")), b"{\"id\":\"tor").unwrap();
        let live = Spares::default();
        fs::write(dir.path().join(format!("{PREFIX}{}-9", live.owner)), blank()).unwrap();
        let torn = Mutex::new(Vec::new());
        live.recover(
            dir.path(),
            |record: &Record| format!("{}.json", record.id),
            |path| torn.lock().unwrap().push(path.to_path_buf()),
        )
        .unwrap();
        let mut names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        let expected =
            [format!("{PREFIX}{}-9", live.owner), format!("{dead}-3"), format!("{dead}-4"), "kept.json".to_string()];
        let mut expected = expected.to_vec();
        expected.sort();
        assert_eq!(names, expected, "the live maker's blank stays; the torn one is left to the handler");
        assert_eq!(*torn.lock().unwrap(), [dir.path().join(format!("{dead}-3"))]);
    }

    #[test]
    fn makers_are_read_from_names() {
        assert_eq!(maker_of(".spare-12-345-6"), Some(Maker { pid: 12, ticks: 345 }));
        assert_eq!(maker_of(".spare-12-345"), None);
        assert_eq!(maker_of(".tmp-abc"), None);
        assert!(spare_is_ours("12-345", ".spare-12-345-6"));
        assert!(!spare_is_ours("12-34", ".spare-12-345-6"));
    }
}
