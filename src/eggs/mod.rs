//! Egg storage: `eggs/<project>/<version>.egg`, exactly as stock Scrapyd lays it out.
//!
//! Every call reads the directory afresh, so a version another instance added (or a file an
//! admin copied in) is seen on the next request. Writes go through [`crate::fsutil`], so an egg
//! is either absent or complete. Names are checked before any path is built from them: a project
//! that is empty, `.`, `..`, or contains `/`, `\` or NUL is refused with stock's
//! `DirectoryTraversalError: <name>` (stock accepts `""` and `.`, and deleting them wipes every
//! project).

pub mod spiders;
pub mod version;

use crate::fsutil;
use spiders::EggIdentity;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why an egg-storage operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum EggError {
    /// A project name that would resolve outside its own directory.
    #[error("DirectoryTraversalError: {0}")]
    Traversal(String),
    #[error("project '{0}' not found")]
    ProjectNotFound(String),
    #[error("version '{0}' not found")]
    VersionNotFound(String),
    /// The name of the spool's own directory, which no project may take.
    #[error("ReservedNameError: the project name '{0}' is reserved by scrapyd-rs")]
    Reserved(String),
    #[error("OSError: {0}")]
    Io(#[from] io::Error),
}

/// Checks that `project` names a single directory inside the eggs directory.
pub fn check_project_name(project: &str) -> Result<(), EggError> {
    let unsafe_name = matches!(project, "" | "." | "..") || project.contains(['/', '\\', '\0']);
    if unsafe_name {
        Err(EggError::Traversal(project.to_string()))
    } else if project == crate::spool::INTERNAL_DIR {
        Err(EggError::Reserved(project.to_string()))
    } else {
        Ok(())
    }
}

/// An egg found in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEgg {
    /// The version as stored: the sanitized file stem.
    pub version: String,
    pub path: PathBuf,
}

/// The eggs directory.
#[derive(Debug, Clone)]
pub struct EggStore {
    dir: PathBuf,
}

impl EggStore {
    pub fn new(dir: PathBuf) -> Self {
        EggStore { dir }
    }

    /// The eggs directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn project_dir(&self, project: &str) -> Result<PathBuf, EggError> {
        check_project_name(project)?;
        Ok(self.dir.join(project))
    }

    /// Project names: the sub-directories of the eggs directory, in directory order as stock
    /// lists them. Names that are not UTF-8 cannot be addressed through the API and are skipped.
    pub fn projects(&self) -> io::Result<Vec<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut projects = Vec::new();
        for entry in entries {
            let entry = entry?;
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if let (true, Ok(name)) = (is_dir, entry.file_name().into_string()) {
                projects.push(name);
            }
        }
        Ok(projects)
    }

    /// Whether `project` has a directory of eggs. Unsafe names never exist.
    pub fn has_project(&self, project: &str) -> bool {
        self.project_dir(project).map(|dir| dir.is_dir()).unwrap_or(false)
    }

    /// The stored versions of `project`, oldest first (see [`version::compare`]). An unknown
    /// project has no versions.
    pub fn versions(&self, project: &str) -> Result<Vec<String>, EggError> {
        let dir = self.project_dir(project)?;
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if matches!(err.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return Ok(Vec::new());
            }
            Err(err) => return Err(err.into()),
        };
        let mut versions = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            // Stock lists `*.egg` through a glob, which skips dot-files (so a blank version's
            // `.egg` is never listed) and our own temporary files.
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".egg")) else { continue };
            if !stem.is_empty() && !stem.starts_with('.') {
                versions.push(stem.to_string());
            }
        }
        version::sort(&mut versions);
        Ok(versions)
    }

    /// The egg for `requested` (sanitized as stock does), or the latest egg when `None`.
    pub fn get(&self, project: &str, requested: Option<&str>) -> Result<Option<StoredEgg>, EggError> {
        Ok(self.get_identified(project, requested)?.map(|(egg, _)| egg))
    }

    /// [`EggStore::get`], with the identity of the egg's file from the same `stat`.
    pub fn get_identified(
        &self,
        project: &str,
        requested: Option<&str>,
    ) -> Result<Option<(StoredEgg, EggIdentity)>, EggError> {
        let dir = self.project_dir(project)?;
        let version = match requested {
            Some(requested) => version::sanitize(requested),
            None => match self.versions(project)?.pop() {
                Some(latest) => latest,
                None => return Ok(None),
            },
        };
        let path = dir.join(format!("{version}.egg"));
        Ok(fs::metadata(&path)
            .ok()
            .filter(fs::Metadata::is_file)
            .map(|meta| (StoredEgg { version, path }, EggIdentity::from_metadata(&meta))))
    }

    /// Stores the already-written file `staged` as `project`'s egg for `version`, replacing an
    /// egg of the same (sanitized) version. Returns where it was stored.
    pub fn put(&self, project: &str, version: &str, staged: &Path) -> Result<StoredEgg, EggError> {
        let dir = self.project_dir(project)?;
        let version = version::sanitize(version);
        let path = dir.join(format!("{version}.egg"));
        // Another instance may remove the directory between our mkdir and rename (deleting the
        // project's last version); one retry settles that race.
        for attempt in 0..2 {
            fsutil::create_dir_all_durable(&dir)?;
            match fsutil::persist_file(staged, &path) {
                Ok(()) => return Ok(StoredEgg { version, path }),
                Err(err) if attempt == 0 && err.kind() == io::ErrorKind::NotFound && staged.exists() => continue,
                Err(err) => return Err(err.into()),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Deletes one version; the project goes with its last version, as in stock.
    pub fn delete_version(&self, project: &str, version: &str) -> Result<(), EggError> {
        let dir = self.project_dir(project)?;
        let path = dir.join(format!("{}.egg", version::sanitize(version)));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if matches!(err.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return Err(EggError::VersionNotFound(version.to_string()));
            }
            Err(err) => return Err(err.into()),
        }
        fsutil::sync_dir(&dir)?;
        let any_egg_left = fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .any(|entry| entry.file_name().to_str().is_some_and(|name| name.ends_with(".egg")));
        if !any_egg_left {
            self.remove_project_dir(project, &dir)?;
        }
        Ok(())
    }

    /// Deletes a project with all its versions.
    pub fn delete_project(&self, project: &str) -> Result<(), EggError> {
        let dir = self.project_dir(project)?;
        if !dir.is_dir() {
            return Err(EggError::ProjectNotFound(project.to_string()));
        }
        self.remove_project_dir(project, &dir)
    }

    fn remove_project_dir(&self, project: &str, dir: &Path) -> Result<(), EggError> {
        match fs::remove_dir_all(dir) {
            Ok(()) => {}
            // Another instance removed it first: the outcome is the same.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err.into()),
        }
        tracing::debug!(project, "removed the project's egg directory");
        fsutil::sync_dir(&self.dir).map_err(EggError::from)
    }
}

/// Whether `bytes` is a ZIP archive by Python's `zipfile.is_zipfile` rule: an end-of-central-
/// directory record is found, at the very end or before a trailing comment.
pub fn looks_like_zip(mut file: impl io::Read + io::Seek) -> io::Result<bool> {
    const EOCD_SIGNATURE: &[u8; 4] = b"PK\x05\x06";
    const EOCD_LEN: u64 = 22;
    const MAX_COMMENT: u64 = 0xffff;
    let len = file.seek(io::SeekFrom::End(0))?;
    if len < EOCD_LEN {
        return Ok(false);
    }
    let tail_len = len.min(EOCD_LEN + MAX_COMMENT);
    file.seek(io::SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0; tail_len as usize];
    file.read_exact(&mut tail)?;
    // Python 3.11 accepts any signature that leaves room for a whole record after it.
    let last_start = tail.len() - EOCD_LEN as usize;
    Ok(tail[..last_start + 4].windows(4).any(|window| window == EOCD_SIGNATURE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn store() -> (tempfile::TempDir, EggStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EggStore::new(dir.path().join("eggs"));
        (dir, store)
    }

    fn put(store: &EggStore, project: &str, version: &str) {
        let staged = store.dir().parent().unwrap().join("staged");
        fs::write(&staged, b"PK").unwrap();
        store.put(project, version, &staged).unwrap();
    }

    #[test]
    fn unsafe_project_names_are_refused_everywhere() {
        let (_tmp, store) = store();
        for name in ["", ".", "..", "../p", "a/b", "a\\b", "a\0b"] {
            assert!(matches!(store.versions(name), Err(EggError::Traversal(n)) if n == name));
            assert!(matches!(store.delete_project(name), Err(EggError::Traversal(_))));
            assert!(matches!(store.delete_version(name, "1"), Err(EggError::Traversal(_))));
            assert!(!store.has_project(name));
        }
        assert!(check_project_name("...").is_ok());
        assert!(matches!(check_project_name(".scrapyd-rs"), Err(EggError::Reserved(_))));
        assert!(check_project_name(".hidden").is_ok());
    }

    #[test]
    fn versions_are_sanitized_and_ordered_with_the_latest_last() {
        let (_tmp, store) = store();
        for version in ["1.10", "1.9", "1.2"] {
            put(&store, "p", version);
        }
        assert_eq!(store.versions("p").unwrap(), ["1_2", "1_9", "1_10"]);
        assert_eq!(store.get("p", None).unwrap().unwrap().version, "1_10");
        assert_eq!(store.get("p", Some("1.9")).unwrap().unwrap().version, "1_9");
        assert_eq!(store.get("p", Some("7")).unwrap(), None);
        assert_eq!(store.projects().unwrap(), ["p"]);
    }

    #[test]
    fn deleting_the_last_version_removes_the_project() {
        let (_tmp, store) = store();
        put(&store, "p", "r1");
        put(&store, "p", "r2");
        store.delete_version("p", "r2").unwrap();
        assert_eq!(store.versions("p").unwrap(), ["r1"]);
        assert!(matches!(store.delete_version("p", "r2"), Err(EggError::VersionNotFound(v)) if v == "r2"));
        store.delete_version("p", "r1").unwrap();
        assert!(!store.has_project("p"));
        assert!(matches!(store.delete_version("nope", "r1"), Err(EggError::VersionNotFound(_))));
        assert!(matches!(store.delete_project("p"), Err(EggError::ProjectNotFound(_))));
    }

    #[test]
    fn zip_detection_follows_python() {
        assert!(!looks_like_zip(Cursor::new(b"not a zip at all, definitely not".to_vec())).unwrap());
        assert!(!looks_like_zip(Cursor::new(Vec::new())).unwrap());
        let mut empty_zip = b"PK\x05\x06".to_vec();
        empty_zip.extend_from_slice(&[0; 18]);
        assert!(looks_like_zip(Cursor::new(empty_zip.clone())).unwrap());
        let mut with_prefix = b"garbage before".to_vec();
        with_prefix.extend_from_slice(&empty_zip);
        assert!(looks_like_zip(Cursor::new(with_prefix)).unwrap());
    }
}
