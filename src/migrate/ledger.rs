//! What has been imported, so that every stock row is imported once, whatever happens.
//!
//! ```text
//! spool/.scrapyd-rs/migrate/lock                 held by the one instance importing
//! spool/.scrapyd-rs/migrate/<file>.imported      the rows of dbs/<file> imported: a fingerprint
//!                                                 each, and for a pending job the id and enqueue
//!                                                 time it was given
//! spool/.scrapyd-rs/migrate/<file>.done          the size, mtime and inode dbs/<file> had when
//!                                                 all of it was imported
//! ```
//!
//! - Several instances starting together: the lock lets one import at a time; the others then
//!   find the work done.
//! - A start killed half-way: each batch of jobs is durable in the spool before its rows are
//!   appended to `<file>.imported`, so the next start skips exactly the rows already imported (a
//!   row whose job was written but not yet recorded is found pending and recorded then). The
//!   lock dies with the process.
//! - Later starts: a file whose size, modification time and inode still match `<file>.done` is
//!   not even opened, so a job imported and since run is never imported again.
//! - Going back to stock and back again: stock changes the file (it pops what it runs or
//!   cancels, and adds what is scheduled), so it is read again. Rows in `<file>.imported` are not
//!   imported again; rows not in it are new. A fingerprint covers the rowid and the whole row, so
//!   a job stock still holds from before is recognised and a new job in a reused rowid is not
//!   mistaken for it. An imported row that stock no longer holds was run or cancelled by stock
//!   meanwhile: if its job is still pending here (same id, same enqueue time), it is withdrawn,
//!   so it does not run a third time.
//!
//! When a file is done its list is rewritten with only the rows it still holds, so the list
//! never outgrows the file.

use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The state of the import, in `spool/.scrapyd-rs/migrate`.
#[derive(Debug, Clone)]
pub struct Ledger {
    dir: PathBuf,
}

/// What identifies a version of a stock file without reading its tables: its size, modification
/// time and inode, and SQLite's file change counter (header bytes 24 to 27), which every commit
/// in rollback-journal mode (stock's) increments, so even a change within one tick of the clock
/// that keeps the size is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    pub change_counter: u32,
}

impl Stamp {
    pub fn of(path: &Path) -> io::Result<Stamp> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let mut header = [0u8; 28];
        let change_counter = match file.read_exact(&mut header) {
            Ok(()) if header.starts_with(b"SQLite format 3\0") => {
                u32::from_be_bytes([header[24], header[25], header[26], header[27]])
            }
            Ok(()) => 0,
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(err) => return Err(err),
        };
        Ok(Stamp {
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            inode: meta.ino(),
            change_counter,
        })
    }
}

/// The record of a stock file imported in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// The file, as it was found (for people reading the ledger).
    pub source: PathBuf,
    pub stamp: Stamp,
    /// Local time of the import.
    pub imported_at: String,
}

/// What the ledger knows of one imported row: for a pending job that was written to the spool,
/// its id and enqueue time (what makes it this import's job and not a later one with its id).
pub type ImportedJob = Option<(String, u64)>;

/// The imported rows of one file, by fingerprint.
pub type Imported = HashMap<u64, ImportedJob>;

/// The appendable list of a file's imported rows.
#[derive(Debug)]
pub struct Journal {
    file: File,
}

impl Journal {
    /// Records rows as imported, durably. The jobs they became must be durable already.
    pub fn record<'a>(&mut self, rows: impl IntoIterator<Item = (u64, &'a ImportedJob)>) -> io::Result<()> {
        let text: String = rows.into_iter().map(|(fingerprint, job)| line(fingerprint, job)).collect();
        if text.is_empty() {
            return Ok(());
        }
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()
    }
}

/// `<fingerprint>` or `<fingerprint> <enqueue ns> <id as a JSON string>`, and a newline.
fn line(fingerprint: u64, job: &ImportedJob) -> String {
    match job {
        None => format!("{fingerprint:016x}\n"),
        Some((id, enqueued_ns)) => {
            format!("{fingerprint:016x} {enqueued_ns} {}\n", serde_json::Value::from(id.as_str()))
        }
    }
}

/// Reads a line written by [`line`]; `None` for a line torn by a crash.
fn parse_line(text: &str) -> Option<(u64, ImportedJob)> {
    let fingerprint = u64::from_str_radix(text.get(..16)?, 16).ok()?;
    let rest = text.get(16..)?;
    if rest.is_empty() {
        return Some((fingerprint, None));
    }
    let (enqueued_ns, id) = rest.strip_prefix(' ')?.split_once(' ')?;
    let id: String = serde_json::from_str(id).ok()?;
    Some((fingerprint, Some((id, enqueued_ns.parse().ok()?))))
}

impl Ledger {
    pub fn new(dir: &Path) -> Ledger {
        Ledger { dir: dir.to_path_buf() }
    }

    fn path(&self, file: &str, suffix: &str) -> PathBuf {
        self.dir.join(format!("{file}.{suffix}"))
    }

    /// Takes the import lock, waiting for an instance that holds it. `waiting` is called once if
    /// the lock is busy, before waiting.
    pub fn lock(&self, waiting: impl FnOnce()) -> io::Result<File> {
        fsutil::create_dir_all_durable(&self.dir)?;
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(self.dir.join("lock"))?;
        if file.try_lock().is_err() {
            waiting();
            file.lock()?;
        }
        Ok(file)
    }

    /// Whether `file` was imported in full when it had this stamp.
    pub fn is_done(&self, file: &str, stamp: &Stamp) -> bool {
        fs::read(self.path(file, "done"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Done>(&bytes).ok())
            .is_some_and(|done| done.stamp == *stamp)
    }

    /// The rows of `file` imported so far. A line torn by a crash is ignored.
    pub fn imported(&self, file: &str) -> io::Result<Imported> {
        let text = match fs::read_to_string(self.path(file, "imported")) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Imported::new()),
            Err(err) => return Err(err),
        };
        Ok(text.lines().filter_map(parse_line).collect())
    }

    /// Opens `file`'s list of imported rows for appending, ending a line torn by a crash first.
    pub fn journal(&self, file: &str) -> io::Result<Journal> {
        let mut journal = OpenOptions::new().create(true).read(true).append(true).open(self.path(file, "imported"))?;
        let len = journal.metadata()?.len();
        if len > 0 {
            let mut last = [0u8];
            journal.seek(SeekFrom::Start(len - 1))?;
            journal.read_exact(&mut last)?;
            if last[0] != b'\n' {
                journal.write_all(b"\n")?;
            }
        }
        Ok(Journal { file: journal })
    }

    /// Records `file` as imported in full at `done.stamp`; `present` are the imported rows it
    /// still holds, the only ones worth remembering.
    pub fn mark_done(&self, file: &str, done: &Done, present: &Imported) -> io::Result<()> {
        let mut sorted: Vec<(&u64, &ImportedJob)> = present.iter().collect();
        sorted.sort_unstable_by_key(|(fingerprint, _)| **fingerprint);
        let text: String = sorted.into_iter().map(|(fingerprint, job)| line(*fingerprint, job)).collect();
        fsutil::write_atomic(&self.path(file, "imported"), text.as_bytes())?;
        fsutil::write_atomic(&self.path(file, "done"), &serde_json::to_vec_pretty(done)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_survives_a_torn_line_and_is_pruned_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(&dir.path().join("migrate"));
        let _lock = ledger.lock(|| panic!("nobody else holds it")).unwrap();
        let job: ImportedJob = Some(("a b\"c".into(), 17));
        ledger.journal("p.db").unwrap().record([(1, &None), (2, &job)]).unwrap();
        // A crash in the middle of a line.
        OpenOptions::new()
            .append(true)
            .open(dir.path().join("migrate/p.db.imported"))
            .unwrap()
            .write_all(b"00000000000000ab 5 \"tor")
            .unwrap();
        assert_eq!(ledger.imported("p.db").unwrap(), Imported::from([(1, None), (2, job.clone())]));
        ledger.journal("p.db").unwrap().record([(3, &None)]).unwrap();
        assert_eq!(ledger.imported("p.db").unwrap(), Imported::from([(1, None), (2, job.clone()), (3, None)]));

        let stamp = Stamp { size: 1, mtime_ns: 2, inode: 3, change_counter: 4 };
        assert!(!ledger.is_done("p.db", &stamp));
        let done = Done { source: "dbs/p.db".into(), stamp, imported_at: "now".into() };
        ledger.mark_done("p.db", &done, &Imported::from([(2, job.clone())])).unwrap();
        assert!(ledger.is_done("p.db", &stamp));
        assert!(!ledger.is_done("p.db", &Stamp { size: 2, ..stamp }));
        assert!(!ledger.is_done("p.db", &Stamp { change_counter: 5, ..stamp }));
        assert_eq!(ledger.imported("p.db").unwrap(), Imported::from([(2, job)]));
    }

    #[test]
    fn every_commit_changes_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
        let before = Stamp::of(&path).unwrap();
        // Same size (the page exists already), maybe the same mtime tick: the counter moves.
        conn.execute_batch("UPDATE t SET x = 2;").unwrap();
        let after = Stamp::of(&path).unwrap();
        assert_eq!(before.size, after.size);
        assert_eq!(after.change_counter, before.change_counter + 1);
        std::fs::write(dir.path().join("short.db"), b"SQLite").unwrap();
        assert_eq!(Stamp::of(&dir.path().join("short.db")).unwrap().change_counter, 0);
    }
}
