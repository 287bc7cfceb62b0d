//! The finished-job history: one JSON line per job in `spool/.scrapyd-rs/finished.jl`.
//!
//! Appends are serialised by a lock on a sidecar file (never the log itself, which compaction
//! replaces), written with one `write` and fsynced before the job counts as finished. Readers
//! keep a cursor (inode and offset) and read only what was appended since, so answering
//! `listjobs` or `status` never rescans history. When the log holds well over `finished_to_keep`
//! entries it is rewritten with the newest ones; readers notice the new inode and reload.
//!
//! A crash in the middle of an append leaves a torn last line; readers skip it and the next
//! writer cuts it off before appending.

use super::records::FinishedJob;
use crate::fsutil;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The log file and its lock.
#[derive(Debug, Clone)]
pub struct FinishedLog {
    path: PathBuf,
    lock_path: PathBuf,
}

/// How far a reader has read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    inode: u64,
    offset: u64,
}

/// What a reader learns from [`FinishedLog::read_since`].
#[derive(Debug)]
pub enum Update {
    /// Jobs appended since the cursor, oldest first.
    Appended(Vec<FinishedJob>),
    /// The log was replaced (compacted): its whole content, oldest first.
    Replaced(Vec<FinishedJob>),
}

impl FinishedLog {
    /// The log at `path`, with its lock beside it (`<path>.lock`).
    pub fn new(path: &Path) -> Self {
        let mut lock_name = path.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        FinishedLog { path: path.to_path_buf(), lock_path: path.with_file_name(lock_name) }
    }

    fn lock(&self) -> io::Result<File> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&self.lock_path)?;
        file.lock()?;
        Ok(file)
    }

    /// Records a finished job durably. With `keep` of zero nothing is kept, as stock documents
    /// `finished_to_keep = 0`. Once the log is well over `keep` lines (judged from its size and
    /// the length of the line just written, so no count is kept anywhere) it is compacted.
    pub fn append(&self, job: &FinishedJob, keep: usize) -> io::Result<()> {
        self.append_all(std::slice::from_ref(job), keep)
    }

    /// Records several finished jobs, oldest first, with one write and one fsync (an import).
    pub fn append_all(&self, jobs: &[FinishedJob], keep: usize) -> io::Result<()> {
        if keep == 0 || jobs.is_empty() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(&self.path)?;
        cut_torn_tail(&mut file)?;
        let mut lines = Vec::new();
        for job in jobs {
            serde_json::to_writer(&mut lines, job)?;
            lines.push(b'\n');
        }
        file.write_all(&lines)?;
        file.sync_data()?;
        let average_line = (lines.len() / jobs.len()).max(1) as u64;
        let estimated_lines = file.metadata()?.len() / average_line;
        if estimated_lines > (keep + slack(keep)) as u64 {
            self.compact(keep)?;
        }
        Ok(())
    }

    /// Rewrites the log with its newest `keep` entries. The caller holds the lock.
    fn compact(&self, keep: usize) -> io::Result<()> {
        let lines = read_lines(&self.path)?;
        let start = lines.len().saturating_sub(keep);
        let mut text = Vec::new();
        for line in &lines[start..] {
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        fsutil::write_atomic(&self.path, &text)
    }

    /// Whether the log is as `cursor` left it (same file, same length): one `stat`, so callers
    /// can check often.
    pub fn unchanged_since(&self, cursor: &Cursor) -> bool {
        match fs::metadata(&self.path) {
            Ok(meta) => meta.ino() == cursor.inode && meta.len() == cursor.offset,
            Err(err) if err.kind() == io::ErrorKind::NotFound => *cursor == Cursor::default(),
            Err(_) => false,
        }
    }

    /// Reads what was appended after `cursor`, and moves the cursor to the end.
    pub fn read_since(&self, cursor: &mut Cursor) -> io::Result<Update> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let replaced = *cursor != Cursor::default();
                *cursor = Cursor::default();
                return Ok(if replaced { Update::Replaced(Vec::new()) } else { Update::Appended(Vec::new()) });
            }
            Err(err) => return Err(err),
        };
        let meta = file.metadata()?;
        let replaced = meta.ino() != cursor.inode || meta.len() < cursor.offset;
        let start = if replaced { 0 } else { cursor.offset };
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        // Only whole lines: a line still being written is read next time.
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let jobs = parse_lines(&bytes[..complete]);
        *cursor = Cursor { inode: meta.ino(), offset: start + complete as u64 };
        Ok(if replaced { Update::Replaced(jobs) } else { Update::Appended(jobs) })
    }
}

/// How far past `keep` the log may grow before it is compacted: compaction rewrites `keep`
/// entries, so it runs once per `slack` appends.
fn slack(keep: usize) -> usize {
    (keep / 10).max(16)
}

fn parse_lines(bytes: &[u8]) -> Vec<FinishedJob> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| match serde_json::from_slice(line) {
            Ok(job) => Some(job),
            Err(err) => {
                tracing::warn!("skipping an unreadable finished-job record: {err}");
                None
            }
        })
        .collect()
}

fn read_lines(path: &Path) -> io::Result<Vec<String>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    BufReader::new(file).lines().filter(|line| !matches!(line, Ok(l) if l.is_empty())).collect()
}

/// Cuts an incomplete last line (a crash during an append) so the next line starts cleanly.
fn cut_torn_tail(file: &mut File) -> io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let window = len.min(64 * 1024);
    file.seek(SeekFrom::Start(len - window))?;
    let mut tail = vec![0; window as usize];
    file.read_exact(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(());
    }
    let keep = match tail.iter().rposition(|&b| b == b'\n') {
        Some(index) => len - window + index as u64 + 1,
        // A single record longer than the window is unusual; scan the whole file for it.
        None => {
            let mut all = Vec::new();
            file.seek(SeekFrom::Start(0))?;
            file.read_to_end(&mut all)?;
            all.iter().rposition(|&b| b == b'\n').map_or(0, |i| i as u64 + 1)
        }
    };
    tracing::warn!("cutting a torn finished-job record ({} bytes) left by a crash", len - keep);
    file.set_len(keep)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::records::Outcome;

    fn job(id: &str) -> FinishedJob {
        FinishedJob {
            id: id.into(),
            project: "p".into(),
            spider: "s".into(),
            version: None,
            start_time: "2026-01-01 00:00:00.000000".into(),
            end_time: "2026-01-01 00:00:01.000000".into(),
            outcome: Outcome::Finished,
            exit_code: Some(0),
            signal: None,
            reason: None,
            node: "n".into(),
            pid: Some(1),
            stats: None,
        }
    }

    fn ids(jobs: &[FinishedJob]) -> Vec<&str> {
        jobs.iter().map(|j| j.id.as_str()).collect()
    }

    #[test]
    fn readers_see_only_new_entries_then_the_compacted_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = FinishedLog::new(&dir.path().join("finished.jl"));
        let mut cursor = Cursor::default();
        assert!(matches!(log.read_since(&mut cursor).unwrap(), Update::Appended(v) if v.is_empty()));
        log.append(&job("a"), 100).unwrap();
        log.append(&job("b"), 100).unwrap();
        // A reader that has read nothing yet gets everything, as a replacement of nothing.
        let Update::Replaced(first) = log.read_since(&mut cursor).unwrap() else { panic!() };
        assert_eq!(ids(&first), ["a", "b"]);
        log.append(&job("c"), 100).unwrap();
        let Update::Appended(next) = log.read_since(&mut cursor).unwrap() else { panic!() };
        assert_eq!(ids(&next), ["c"]);

        // Past keep + slack the log is rewritten with the newest `keep` entries.
        for i in 0..20 {
            log.append(&job(&format!("j{i}")), 2).unwrap();
        }
        let Update::Replaced(all) = log.read_since(&mut cursor).unwrap() else {
            panic!("compaction replaces the file")
        };
        assert!(all.len() <= 2 + slack(2), "{}", all.len());
        assert_eq!(all.last().unwrap().id, "j19");
    }

    #[test]
    fn a_torn_line_is_skipped_by_readers_and_cut_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let log = FinishedLog::new(&dir.path().join("finished.jl"));
        log.append(&job("a"), 100).unwrap();
        let mut file = OpenOptions::new().append(true).open(dir.path().join("finished.jl")).unwrap();
        file.write_all(b"{\"id\": \"torn").unwrap();
        let mut cursor = Cursor::default();
        let Update::Replaced(seen) = log.read_since(&mut cursor).unwrap() else { panic!() };
        assert_eq!(ids(&seen), ["a"]);
        log.append(&job("b"), 100).unwrap();
        let Update::Appended(next) = log.read_since(&mut cursor).unwrap() else { panic!() };
        assert_eq!(ids(&next), ["b"]);
    }

    #[test]
    fn keeping_none_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = FinishedLog::new(&dir.path().join("finished.jl"));
        log.append(&job("a"), 0).unwrap();
        assert!(!dir.path().join("finished.jl").exists());
    }
}
