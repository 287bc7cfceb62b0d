//! The on-disk spider-list cache: `scrapy list` runs once per egg, not once per request.
//!
//! Stock Scrapyd keeps spider lists in memory only, so the first `schedule.json` after a restart
//! waits for a Python process. We compute the list when a version is added and keep it in
//! `<spool>/spiders/<project>/<version>.json`, next to the identity of the egg it was computed
//! from (size, modification time, inode). An egg that was replaced behind our back (another
//! instance re-uploaded the version, an admin copied a file in) no longer matches and is listed
//! afresh; so the cache can only ever be missing, never wrong.
//!
//! Each process also keeps the entries it has read or written in memory, checked against the
//! same identity: every `schedule.json` looks its spider up here, and a `stat` of the egg (which
//! the check needs anyway) is then all it costs.

use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What identifies the exact bytes of a stored egg without reading them. Eggs are always
/// replaced by rename, so a new upload always has a new inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EggIdentity {
    pub len: u64,
    pub mtime_ns: i128,
    pub inode: u64,
    pub device: u64,
}

impl EggIdentity {
    /// The identity of the file at `path` now.
    pub fn of(path: &Path) -> io::Result<EggIdentity> {
        Ok(EggIdentity::from_metadata(&fs::metadata(path)?))
    }

    /// The identity of a file as `metadata` describes it.
    pub fn from_metadata(meta: &fs::Metadata) -> EggIdentity {
        EggIdentity {
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            inode: meta.ino(),
            device: meta.dev(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheEntry {
    egg: EggIdentity,
    spiders: Vec<String>,
}

/// Entries this process has read or written, by (project, version).
type SeenEntries = HashMap<(String, String), Arc<CacheEntry>>;

/// The cache directory, and the entries of it this process has seen.
#[derive(Debug, Clone)]
pub struct SpiderCache {
    dir: PathBuf,
    seen: Arc<Mutex<SeenEntries>>,
}

impl SpiderCache {
    pub fn new(dir: PathBuf) -> Self {
        SpiderCache { dir, seen: Arc::default() }
    }

    fn seen(&self) -> MutexGuard<'_, SeenEntries> {
        self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `project` and `version` have been checked by the egg store (a safe project name and a
    /// sanitized version), so they are safe as path components.
    fn entry_path(&self, project: &str, version: &str) -> PathBuf {
        self.dir.join(project).join(format!("{version}.json"))
    }

    /// The cached spiders of the egg `version` of `project`, if they were computed from the egg
    /// that is there now.
    pub fn get(&self, project: &str, version: &str, egg: EggIdentity) -> Option<Vec<String>> {
        let key = (project.to_string(), version.to_string());
        if let Some(entry) = self.seen().get(&key).filter(|entry| entry.egg == egg) {
            return Some(entry.spiders.clone());
        }
        let bytes = fs::read(self.entry_path(project, version)).ok()?;
        let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
        if entry.egg != egg {
            return None;
        }
        let spiders = entry.spiders.clone();
        self.seen().insert(key, Arc::new(entry));
        Some(spiders)
    }

    /// Records the spiders computed from the egg with identity `egg`.
    pub fn put(&self, project: &str, version: &str, egg: EggIdentity, spiders: &[String]) -> io::Result<()> {
        let path = self.entry_path(project, version);
        if let Some(dir) = path.parent() {
            fsutil::create_dir_all_durable(dir)?;
        }
        let entry = CacheEntry { egg, spiders: spiders.to_vec() };
        fsutil::write_atomic(&path, &serde_json::to_vec(&entry)?)?;
        self.seen().insert((project.to_string(), version.to_string()), Arc::new(entry));
        Ok(())
    }

    /// Forgets one version; a missing entry is fine.
    pub fn remove_version(&self, project: &str, version: &str) {
        self.seen().remove(&(project.to_string(), version.to_string()));
        let _ = fs::remove_file(self.entry_path(project, version));
    }

    /// Forgets a whole project; a missing directory is fine.
    pub fn remove_project(&self, project: &str) {
        self.seen().retain(|(seen_project, _), _| seen_project != project);
        let _ = fs::remove_dir_all(self.dir.join(project));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_egg_invalidates_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SpiderCache::new(dir.path().join("spiders"));
        let egg = dir.path().join("1.egg");
        fs::write(&egg, b"one").unwrap();
        let identity = EggIdentity::of(&egg).unwrap();
        cache.put("p", "1", identity, &["a".into(), "b".into()]).unwrap();
        assert_eq!(cache.get("p", "1", identity).unwrap(), ["a", "b"]);

        let replacement = dir.path().join("new");
        fs::write(&replacement, b"two!").unwrap();
        fs::rename(&replacement, &egg).unwrap();
        assert_eq!(cache.get("p", "1", EggIdentity::of(&egg).unwrap()), None);

        cache.remove_project("p");
        assert_eq!(cache.get("p", "1", identity), None);
    }

    #[test]
    fn entries_seen_are_served_from_memory_and_still_checked_against_the_egg() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) =
            (SpiderCache::new(dir.path().join("spiders")), SpiderCache::new(dir.path().join("spiders")));
        let egg = dir.path().join("1.egg");
        fs::write(&egg, b"one").unwrap();
        let identity = EggIdentity::of(&egg).unwrap();
        writer.put("p", "1", identity, &["a".into()]).unwrap();
        assert_eq!(reader.get("p", "1", identity).unwrap(), ["a"], "another process reads the file");

        fs::remove_file(writer.entry_path("p", "1")).unwrap();
        assert_eq!(writer.get("p", "1", identity).unwrap(), ["a"], "the writer remembers it");
        assert_eq!(reader.get("p", "1", identity).unwrap(), ["a"], "so does a reader");

        let replacement = dir.path().join("new");
        fs::write(&replacement, b"two!").unwrap();
        fs::rename(&replacement, &egg).unwrap();
        let replaced = EggIdentity::of(&egg).unwrap();
        assert_eq!(writer.get("p", "1", replaced), None);
        assert_eq!(reader.get("p", "1", replaced), None);
    }
}
